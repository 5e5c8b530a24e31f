#!/usr/bin/env bash
# A deployment served by an external OIP server nobody here wrote: Seldon MLServer (with its
# scikit-learn runtime) serves the fixture logistic regression; a version holding only
# `upstream.json` that points at it is registered, promoted to staging, and called through
# Steward's gateway, whose answers must be onnxruntime's goldens (within 1e-5), with the
# caller's W3C trace forwarded.
# usage: upstream_check.sh STEWARD_BIN BENCH_VENV_PYTHON
set -euo pipefail
bin=$1 py=$2
venv_bin=$(dirname "$py")
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

"$py" bench/serving/export_sklearn.py "$work/export" >/dev/null
mkdir -p "$work/mlserver"
mv "$work/export/credit-logreg" "$work/mlserver/"
cat > "$work/mlserver/settings.json" <<JSON
{"host": "127.0.0.1", "http_port": 18580, "grpc_port": 18581, "metrics_port": 18582, "parallel_workers": 1, "debug": true}
JSON
(cd "$work/mlserver" && exec "$venv_bin/mlserver" start .) >"$work/mlserver.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 240); do curl -sf http://127.0.0.1:18580/v2/models/credit-logreg/ready >/dev/null && break; sleep 0.5; done
curl -sf http://127.0.0.1:18580/v2/models/credit-logreg/ready >/dev/null || { cat "$work/mlserver.log" >&2; echo "MLServer did not start" >&2; exit 1; }

"$bin" init --data-dir "$work/data" >/dev/null
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:18557 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18557/healthz >/dev/null && break; sleep 0.2; done
export STEWARD_URL=http://127.0.0.1:18557 STEWARD_TOKEN
STEWARD_TOKEN=$(cat "$work/data/admin.token")
token() { "$bin" tokens create "$1" -o json | "$py" -c 'import json, sys; print(json.load(sys.stdin)["token"])'; }
"$bin" units create retail >/dev/null
"$bin" users create alice >/dev/null && "$bin" users grant alice data_scientist --scope retail >/dev/null
"$bin" users create dave >/dev/null && "$bin" users grant dave mlops_engineer --scope retail >/dev/null
alice=$(token alice) dave=$(token dave)
STEWARD_TOKEN=$alice "$bin" models create retail/credit --category tabular_classification --risk-class minimal --tier 3 >/dev/null
mkdir -p "$work/model"
printf '{"url": "http://127.0.0.1:18580", "model": "credit-logreg", "timeout_ms": 5000}\n' > "$work/model/upstream.json"
printf 'version: 1.0.0\nlicence: Apache-2.0\nintended_use: Score credit applications (served by MLServer).\nmodel_card: {description: Logistic regression served by an external OIP server., markdown: "# Credit"}\n' > "$work/model/steward.yaml"
digest=$(STEWARD_TOKEN=$alice "$bin" versions register retail/credit --dir "$work/model" -o json | "$py" -c 'import json, sys; print(json.load(sys.stdin)["digest"])')
STEWARD_TOKEN=$dave "$bin" promote "$digest" --to staging --reason "upstream interop" -o json | grep -q '"state": "applied"'
model=http://127.0.0.1:18557/env/staging/v2/models/retail:credit
for _ in $(seq 1 40); do curl -sf "$model/ready" >/dev/null && break; sleep 0.25; done
curl -sf "$model/ready" >/dev/null || { cat "$work/serve.log" >&2; echo "the upstream version was not served" >&2; exit 1; }
"$py" bench/serving/check_outputs.py "$model/infer" predict_proba
# The caller's trace reaches MLServer (its access log shows the request; the trace header
# is checked on Steward's side: the answer names the caller's trace).
curl -sf -D "$work/headers.txt" -o /dev/null -X POST -H 'content-type: application/json' \
  -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
  -d '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [44200, 0.29, 29, 3, 1, 20350]}]}' "$model/infer"
grep -qi '^traceresponse: 00-0af7651916cd43dd8448eb211c80319c-' "$work/headers.txt"
# MLServer stopped: the gateway answers 502 with a JSON error, not a hang.
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
code=$(curl -s -o "$work/err.json" -w '%{http_code}' -X POST -H 'content-type: application/json' \
  -d '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}' "$model/infer")
[ "$code" = 502 ] && grep -q '"error"' "$work/err.json" || { echo "expected 502 from a stopped upstream, got $code: $(cat "$work/err.json")" >&2; exit 1; }
echo "MLServer as an upstream: goldens match through Steward's gateway; a stopped upstream answers 502"
