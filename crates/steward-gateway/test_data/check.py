#!/usr/bin/env python3
"""Check the committed ONNX fixtures against golden.json with onnxruntime.

For each model in golden.json: the file's sha256 must match, its input and
output must be `features` [batch, 6] and `probabilities` [batch, 2] (FP32),
and running the golden inputs must reproduce the golden probabilities within
1e-6. Exits 1 on any mismatch.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-6


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def check_model(name, spec, golden):
    errors = []
    path = HERE / spec["file"]
    data = path.read_bytes()

    digest = hashlib.sha256(data).hexdigest()
    if digest != spec["sha256"]:
        errors.append(f"sha256 {digest} != golden {spec['sha256']}")

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    n_features = len(golden["feature_names"])
    ins, outs = model.graph.input, model.graph.output
    if [i.name for i in ins] != [golden["input_name"]] or dims(ins[0]) != ["batch", n_features]:
        errors.append(f"unexpected inputs {[(i.name, dims(i)) for i in ins]}")
    if [o.name for o in outs] != [golden["output_name"]] or dims(outs[0]) != ["batch", 2]:
        errors.append(f"unexpected outputs {[(o.name, dims(o)) for o in outs]}")
    for vi in list(ins) + list(outs):
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            errors.append(f"{vi.name} is not FP32")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])

    cases = spec["cases"]
    x = np.array([c["features"] for c in cases], dtype=np.float32)
    want = np.array([c["probabilities"] for c in cases], dtype=np.float64)
    # The whole batch at once, and each row alone (batch of 1).
    got_batch = sess.run([golden["output_name"]], {golden["input_name"]: x})[0]
    got_rows = np.concatenate([sess.run([golden["output_name"]], {golden["input_name"]: x[i : i + 1]})[0] for i in range(len(x))])
    for label, got in (("batch", got_batch), ("row by row", got_rows)):
        if got.shape != want.shape:
            errors.append(f"{label}: output shape {got.shape} != {want.shape}")
            continue
        err = np.abs(got.astype(np.float64) - want)
        for i in np.argwhere(err.max(axis=1) > TOLERANCE)[:, 0]:
            errors.append(f"{label}: row {cases[i]['row']}: got {got[i].tolist()}, want {want[i].tolist()}")
        print(f"{name}: {label}: {len(cases)} cases, max abs error {err.max():.3g}")
    return errors


def main():
    golden = json.loads((HERE / "golden.json").read_text(encoding="utf-8"))
    passed = failed = 0
    for name, spec in golden["models"].items():
        try:
            errors = check_model(name, spec, golden)
        except Exception as e:  # unreadable or invalid model, missing file, ...
            errors = [f"{type(e).__name__}: {e}"]
        for e in errors:
            print(f"FAIL {name}: {e}", file=sys.stderr)
        if errors:
            failed += 1
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
