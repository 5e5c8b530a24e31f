#!/usr/bin/env python3
"""Check a server's OIP v2 answers against golden.json before it is load-tested.

usage: check_outputs.py INFER_URL OUTPUT_NAME [MODEL]

Posts every golden case of MODEL (default logreg) in crates/steward-gateway/test_data/
golden.json, one row per request, as FP32 `features` [1, 6], and checks that the output
OUTPUT_NAME (Steward: `probabilities`; MLServer's scikit-learn runtime: `predict_proba`)
equals onnxruntime's golden probabilities within 1e-5. Standard library only.
"""

import json
import sys
import urllib.request
from pathlib import Path

TEST_DATA = Path(__file__).resolve().parent.parent.parent / "crates" / "steward-gateway" / "test_data"
TOLERANCE = 1e-5


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__.strip().splitlines()[2])
    url, output_name = sys.argv[1], sys.argv[2]
    model = sys.argv[3] if len(sys.argv) == 4 else "logreg"
    golden = json.loads((TEST_DATA / "golden.json").read_text(encoding="ascii"))
    cases = golden["models"][model]["cases"]
    worst = 0.0
    for case in cases:
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": case["features"]}]}
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        outputs = {output["name"]: output for output in answer["outputs"]}
        if output_name not in outputs:
            raise SystemExit(f"{url}: no output `{output_name}` in the answer (got {sorted(outputs)})")
        got = outputs[output_name]["data"]
        if outputs[output_name]["shape"] != [1, 2] or len(got) != 2:
            raise SystemExit(f"{url}: row {case['row']}: shape {outputs[output_name]['shape']}, want [1, 2]")
        err = max(abs(g - w) for g, w in zip(got, case["probabilities"]))
        worst = max(worst, err)
        if not err <= TOLERANCE:
            raise SystemExit(f"{url}: row {case['row']}: {got} vs golden {case['probabilities']} (|diff| {err:.3g})")
    print(f"{len(cases)} golden {model} cases within {TOLERANCE} (max |diff| {worst:.3g}): {url}")


if __name__ == "__main__":
    main()
