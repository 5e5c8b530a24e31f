#!/usr/bin/env python3
"""Regenerate the steward-gateway ONNX test fixtures.

Writes, next to this file:
  credit.csv   synthetic credit-scoring data set (2,000 rows)
  logreg.onnx  StandardScaler + LogisticRegression, hand-built ONNX graph
  mlp.onnx     StandardScaler + MLPClassifier(16, 8), hand-built ONNX graph
  golden.json  golden inputs/outputs (onnxruntime), versions, sha256 of models

Deterministic: fixed seeds, single-threaded BLAS and onnxruntime, fixed
float formatting. Running it twice with the versions in requirements.txt
gives byte-identical files.

The graphs use only standard ai.onnx ops (Sub, Div, MatMul, Add, Relu,
Sigmoid, Concat), opset 13, so that tract-onnx can run them.
"""

# Pin BLAS/OpenMP to one thread before numpy is imported, so reductions are
# evaluated in a fixed order.
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent

FEATURES = [
    "income",
    "debt_ratio",
    "age",
    "credit_lines",
    "late_payments",
    "loan_amount",
]
LABEL = "default"
N_ROWS = 2000
DATA_SEED = 20240501
MODEL_SEED = 7
OPSET = 13
IR_VERSION = 8
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
BATCH = "batch"
TOLERANCE_VS_SKLEARN = 1e-5


# ---------------------------------------------------------------- data set


def make_dataset():
    rng = np.random.default_rng(DATA_SEED)
    n = N_ROWS
    # Annual income in whole currency units, log-normal around ~50k.
    income = np.clip(np.round(rng.lognormal(np.log(52000.0), 0.5, n), -2), 8000, 400000)
    # Debt-to-income ratio, 4 decimals.
    debt_ratio = np.round(np.clip(rng.beta(2.0, 5.0, n) * 1.2, 0.0, 1.5), 4)
    # Age in whole years.
    age = np.clip(np.round(rng.normal(42.0, 13.0, n)), 18, 85)
    # Open credit lines.
    credit_lines = np.clip(rng.poisson(4.0, n), 0, 30).astype(np.float64)
    # Late payments in the last 24 months (more likely with high debt).
    late_payments = np.clip(rng.poisson(0.3 + 1.5 * debt_ratio), 0, 20).astype(np.float64)
    # Requested loan amount, rounded to 50.
    loan_amount = np.clip(np.round(rng.lognormal(np.log(15000.0), 0.7, n) / 50.0) * 50.0, 500, 200000)

    logit = (
        -1.6
        - 0.9 * np.log(income / 50000.0)
        + 3.0 * (debt_ratio - 0.3)
        - 0.025 * (age - 42.0)
        + 0.06 * (credit_lines - 4.0)
        + 0.55 * late_payments
        + 0.5 * np.log(loan_amount / 15000.0)
        + rng.normal(0.0, 0.5, n)
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(n) < p).astype(np.int64)

    X = np.column_stack([income, debt_ratio, age, credit_lines, late_payments, loan_amount])
    return X, label


def fmt_value(name, v):
    if name == "debt_ratio":
        return f"{v:.4f}"
    return f"{int(v)}"


def write_csv(path, X, y):
    buf = io.StringIO()
    buf.write(",".join(FEATURES + [LABEL]) + "\n")
    for row, lab in zip(X, y):
        buf.write(",".join(fmt_value(f, v) for f, v in zip(FEATURES, row)))
        buf.write(f",{int(lab)}\n")
    path.write_bytes(buf.getvalue().encode("ascii"))


def read_csv(path):
    lines = path.read_text(encoding="ascii").splitlines()
    header = lines[0].split(",")
    assert header == FEATURES + [LABEL], header
    rows = [[float(x) for x in line.split(",")] for line in lines[1:]]
    arr = np.array(rows, dtype=np.float64)
    return arr[:, :-1], arr[:, -1].astype(np.int64)


# ---------------------------------------------------------------- ONNX graphs


def f32(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name=name)


def standardise_nodes(scaler):
    """Nodes and initialisers for (features - mean) / scale."""
    inits = [
        f32("scaler_mean", scaler.mean_.reshape(1, -1)),
        f32("scaler_scale", scaler.scale_.reshape(1, -1)),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "scaler_mean"], ["centred"], name="centre"),
        helper.make_node("Div", ["centred", "scaler_scale"], ["standardised"], name="scale"),
    ]
    return nodes, inits, "standardised"


def binary_head_nodes(logit_name):
    """[N,1] logit -> [N,2] probabilities = [1 - sigmoid(z), sigmoid(z)]."""
    inits = [f32("one", np.array([1.0]))]
    nodes = [
        helper.make_node("Sigmoid", [logit_name], ["p_default"], name="sigmoid"),
        helper.make_node("Sub", ["one", "p_default"], ["p_no_default"], name="complement"),
        helper.make_node("Concat", ["p_no_default", "p_default"], [OUTPUT_NAME], name="concat", axis=1),
    ]
    return nodes, inits


def dense_nodes(prefix, x, W, b):
    inits = [f32(f"{prefix}_W", W), f32(f"{prefix}_b", b.reshape(1, -1))]
    nodes = [
        helper.make_node("MatMul", [x, f"{prefix}_W"], [f"{prefix}_mm"], name=f"{prefix}_matmul"),
        helper.make_node("Add", [f"{prefix}_mm", f"{prefix}_b"], [f"{prefix}_out"], name=f"{prefix}_add"),
    ]
    return nodes, inits, f"{prefix}_out"


def build_model(graph_name, doc, nodes, inits):
    n_features = len(FEATURES)
    inp = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH, n_features])
    out = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH, 2])
    inp.doc_string = "raw features, in order: " + ", ".join(FEATURES)
    out.doc_string = "column 0 = P(no default), column 1 = P(default)"
    graph = helper.make_graph(nodes, graph_name, [inp], [out], initializer=inits, doc_string=doc)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="steward-gateway test_data/generate.py",
        producer_version="1",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def export_logreg(scaler, clf):
    nodes, inits, x = standardise_nodes(scaler)
    n2, i2, z = dense_nodes("logit", x, clf.coef_.T, clf.intercept_)
    n3, i3 = binary_head_nodes(z)
    return build_model(
        "credit_logreg",
        "StandardScaler + LogisticRegression on the synthetic credit data set",
        nodes + n2 + n3,
        inits + i2 + i3,
    )


def export_mlp(scaler, clf):
    assert clf.out_activation_ == "logistic" and clf.activation == "relu"
    nodes, inits, x = standardise_nodes(scaler)
    n_layers = len(clf.coefs_)
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        prefix = f"layer{i}" if i < n_layers - 1 else "logit"
        n, ini, x = dense_nodes(prefix, x, W, b)
        nodes += n
        inits += ini
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [x], [f"{prefix}_relu"], name=f"{prefix}_relu"))
            x = f"{prefix}_relu"
    n3, i3 = binary_head_nodes(x)
    return build_model(
        "credit_mlp",
        "StandardScaler + MLPClassifier(16, 8, relu) on the synthetic credit data set",
        nodes + n3,
        inits + i3,
    )


# ---------------------------------------------------------------- run / check


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(path, X):
    return session(path).run([OUTPUT_NAME], {INPUT_NAME: X.astype(np.float32)})[0]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def golden_rows(X, p_default):
    """First 20 rows, then a few extreme rows (deduplicated, in order)."""
    idx = list(range(20))
    col = {f: i for i, f in enumerate(FEATURES)}
    extremes = [
        int(np.argmin(X[:, col["income"]])),
        int(np.argmax(X[:, col["income"]])),
        int(np.argmax(X[:, col["debt_ratio"]])),
        int(np.argmax(X[:, col["late_payments"]])),
        int(np.argmax(X[:, col["loan_amount"]])),
        int(np.argmin(p_default)),
        int(np.argmax(p_default)),
    ]
    for i in extremes:
        if i not in idx:
            idx.append(i)
    return idx


def main():
    warnings.simplefilter("error", ConvergenceWarning)

    csv_path = HERE / "credit.csv"
    X_gen, y_gen = make_dataset()
    write_csv(csv_path, X_gen, y_gen)
    # Train on exactly what is committed.
    X, y = read_csv(csv_path)
    assert np.array_equal(X, X_gen) and np.array_equal(y, y_gen)

    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)

    logreg = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000, random_state=MODEL_SEED).fit(Xs, y)
    mlp = MLPClassifier(
        hidden_layer_sizes=(16, 8),
        activation="relu",
        solver="adam",
        alpha=1e-3,
        max_iter=2000,
        random_state=MODEL_SEED,
    ).fit(Xs, y)

    models = {
        "logreg": (logreg, export_logreg(scaler, logreg)),
        "mlp": (mlp, export_mlp(scaler, mlp)),
    }

    golden_models = {}
    rows = None
    for name, (clf, model) in models.items():
        path = HERE / f"{name}.onnx"
        path.write_bytes(model.SerializeToString(deterministic=True))
        onnx.checker.check_model(str(path), full_check=True)

        got = run_onnx(path, X)
        want = clf.predict_proba(Xs)
        err = float(np.max(np.abs(got.astype(np.float64) - want)))
        acc = float(np.mean(clf.predict(Xs) == y))
        print(f"{name}: max |onnx - sklearn| = {err:.3g}, train accuracy = {acc:.4f}", file=sys.stderr)
        assert got.shape == (len(X), 2), got.shape
        assert err <= TOLERANCE_VS_SKLEARN, (name, err)

        if rows is None:  # same rows for both models, chosen from the logreg output
            rows = golden_rows(X, got[:, 1])
        inputs = X[rows]
        outputs = run_onnx(path, inputs)
        golden_models[name] = {
            "file": path.name,
            "sha256": sha256(path),
            "cases": [
                {
                    "row": int(r),
                    "features": [float(v) for v in inp],
                    "probabilities": [float(v) for v in out],
                }
                for r, inp, out in zip(rows, inputs, outputs)
            ],
        }

    golden = {
        "description": "Golden outputs of onnxruntime for the models in this folder; see README.md",
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "feature_names": FEATURES,
        "output_columns": ["p_no_default", "p_default"],
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "versions": {
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
        "models": golden_models,
    }
    text = json.dumps(golden, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    (HERE / "golden.json").write_bytes(text.encode("ascii"))
    print(f"wrote credit.csv, logreg.onnx, mlp.onnx, golden.json ({len(rows)} golden rows)", file=sys.stderr)


if __name__ == "__main__":
    main()
