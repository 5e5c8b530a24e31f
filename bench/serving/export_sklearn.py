#!/usr/bin/env python3
"""Export the gateway fixture's sklearn models as MLServer model folders.

usage: export_sklearn.py OUT_DIR

Trains, exactly as crates/steward-gateway/test_data/generate.py does, the two
pipelines behind logreg.onnx and mlp.onnx (StandardScaler + LogisticRegression,
StandardScaler + MLPClassifier(16, 8)) on the committed credit.csv, and writes

  OUT_DIR/credit-logreg/{model.joblib,model-settings.json}
  OUT_DIR/credit-mlp/{model.joblib,model-settings.json}

for MLServer's scikit-learn runtime (mlserver_sklearn.SKLearnModel). Each
model-settings.json sets parameters.extra.predict_fn = "predict_proba", so a
request without an "outputs" field gets predict_proba(), whose [batch, 2]
result is the ONNX graphs' `probabilities` (column 0 = P(no default),
column 1 = P(default)); the response names that output "predict_proba".

Before writing, each pipeline's predict_proba on golden.json's inputs (sent as
FP32, as an OIP request carries them) is checked against onnxruntime's golden
outputs within 1e-5; the export fails otherwise.

generate.py is imported, not modified: its data reader, feature list and seeds
are reused; its main() trains inline, so the estimator settings below repeat
the ones in main() (the golden check catches any drift between the two).
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_DATA = HERE.parent.parent / "crates" / "steward-gateway" / "test_data"
sys.path.insert(0, str(TEST_DATA))
sys.dont_write_bytecode = True  # no __pycache__ left in test_data/

# Imported before numpy: generate.py pins BLAS/OpenMP to one thread first.
import generate  # noqa: E402

import warnings  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

TOLERANCE = 1e-5


def pipelines():
    """The fitted pipelines, as generate.main() fits them (scaler on X, classifier on X scaled)."""
    X, y = generate.read_csv(TEST_DATA / "credit.csv")
    logreg = Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "clf",
                LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000, random_state=generate.MODEL_SEED),
            ),
        ]
    ).fit(X, y)
    mlp = Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "clf",
                MLPClassifier(
                    hidden_layer_sizes=(16, 8),
                    activation="relu",
                    solver="adam",
                    alpha=1e-3,
                    max_iter=2000,
                    random_state=generate.MODEL_SEED,
                ),
            ),
        ]
    ).fit(X, y)
    return {"logreg": logreg, "mlp": mlp}


def check_against_golden(name, pipeline, golden):
    cases = golden["models"][name]["cases"]
    inputs = np.array([case["features"] for case in cases], dtype=np.float32)
    want = np.array([case["probabilities"] for case in cases], dtype=np.float64)
    got = pipeline.predict_proba(inputs)
    err = float(np.max(np.abs(got - want)))
    print(f"{name}: {len(cases)} golden cases, max |sklearn - onnxruntime| = {err:.3g}", file=sys.stderr)
    if not err <= TOLERANCE:
        raise SystemExit(f"{name}: sklearn pipeline differs from golden.json by {err} (> {TOLERANCE})")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[2])
    out = Path(sys.argv[1])
    warnings.simplefilter("error", ConvergenceWarning)
    golden = json.loads((TEST_DATA / "golden.json").read_text(encoding="ascii"))
    for name, pipeline in pipelines().items():
        check_against_golden(name, pipeline, golden)
        folder = out / f"credit-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(pipeline, folder / "model.joblib")
        settings = {
            "name": f"credit-{name}",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {
                "uri": "./model.joblib",
                "version": "1.0.0",
                # Without "outputs" in the request, SKLearnModel calls predict() (class
                # labels); this makes predict_proba() the default, like the ONNX graphs.
                "extra": {"predict_fn": "predict_proba"},
            },
        }
        (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="ascii")
        print(f"wrote {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
