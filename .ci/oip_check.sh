#!/usr/bin/env bash
# Serves the gateway's fixture model through the whole governed path (register, promote
# to staging, the table follows the alias) and runs tritonclient[http] against it.
# usage: oip_check.sh STEWARD_BIN PYTHON PROMTOOL
set -euo pipefail
bin=$1 python=$2 promtool=$3
work=$(mktemp -d)
"$bin" init --data-dir "$work/data" >/dev/null
# Every request is logged (outside a canary phase too), so the log can be checked; spans go
# to an OTLP receiver that parses them with the OpenTelemetry protocol's own types.
printf 'request_log_sample_bp = 10000\notlp_endpoint = "http://127.0.0.1:18599"\n' >> "$work/data/steward.toml"
"$python" .ci/otlp_receiver.py 18599 "$work/spans.jsonl" &
receiver=$!
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:18556 2>"$work/serve.log" &
pid=$!
trap 'kill $pid $receiver 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18556/healthz >/dev/null && break; sleep 0.2; done
export STEWARD_URL=http://127.0.0.1:18556 STEWARD_TOKEN
STEWARD_TOKEN=$(cat "$work/data/admin.token")
token() { "$bin" tokens create "$1" -o json | "$python" -c 'import json, sys; print(json.load(sys.stdin)["token"])'; }
"$bin" units create retail >/dev/null
"$bin" users create alice >/dev/null && "$bin" users grant alice data_scientist --scope retail >/dev/null
"$bin" users create dave >/dev/null && "$bin" users grant dave mlops_engineer --scope retail >/dev/null
alice=$(token alice) dave=$(token dave)
STEWARD_TOKEN=$alice "$bin" models create retail/credit --category tabular_classification --risk-class minimal --tier 3 >/dev/null
mkdir -p "$work/model"
cp crates/steward-gateway/test_data/mlp.onnx "$work/model/model.onnx"
printf 'version: 1.0.0\nlicence: Apache-2.0\nintended_use: Score credit applications.\nmodel_card: {description: A small MLP., markdown: "# Credit"}\n' > "$work/model/steward.yaml"
digest=$(STEWARD_TOKEN=$alice "$bin" versions register retail/credit --dir "$work/model" -o json | "$python" -c 'import json, sys; print(json.load(sys.stdin)["digest"])')
promoted=$(STEWARD_TOKEN=$dave "$bin" promote "$digest" --to staging --reason "OIP interop" -o json)
grep -q '"state": "applied"' <<<"$promoted"
for _ in $(seq 1 40); do curl -sf http://127.0.0.1:18556/env/staging/v2/models/retail:credit/ready >/dev/null && break; sleep 0.25; done
"$python" .ci/oip_clients.py 127.0.0.1:18556 /env/staging retail:credit crates/steward-gateway/test_data/golden.json mlp "$dave"
# W3C trace context: the caller's trace is joined (traceresponse names it) and recorded.
traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
curl -sf -D "$work/headers.txt" -o /dev/null -X POST -H 'content-type: application/json' -H "traceparent: $traceparent" \
  -d '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}' \
  http://127.0.0.1:18556/env/staging/v2/models/retail:credit/infer
grep -qi '^traceresponse: 00-4bf92f3577b34da6a3ce929d0e0e4736-' "$work/headers.txt"
for _ in $(seq 1 40); do grep -rqs 4bf92f3577b34da6a3ce929d0e0e4736 "$work/data/requests" && break; sleep 0.25; done
"$python" .ci/reqlog_check.py "$work/data/requests" 5 "$traceparent"
# The traced request's span reached the OTLP receiver, a child of the caller's span.
for _ in $(seq 1 40); do grep -qs 4bf92f3577b34da6a3ce929d0e0e4736 "$work/spans.jsonl" && break; sleep 0.25; done
"$python" - "$work/spans.jsonl" <<'PY'
import json, sys
spans = [json.loads(line) for line in open(sys.argv[1])]
assert not [s for s in spans if "error" in s], [s for s in spans if "error" in s]
traced = [s for s in spans if s["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
assert len(traced) == 1 and traced[0]["parent_span_id"] == "00f067aa0ba902b7", traced
assert traced[0]["attributes"]["steward.model"] == {"stringValue": "retail:credit"}, traced[0]
print(f"opentelemetry-proto: {len(spans)} exported spans parse as ExportTraceServiceRequest; the traced one is a child of the caller's span")
PY
# The log exported as JSONL and Parquet; DuckDB reads the Parquet file.
"$bin" requests export --data-dir "$work/data" --format jsonl --out "$work/requests.jsonl" >/dev/null
"$bin" requests export --data-dir "$work/data" --format parquet --out "$work/requests.parquet" >/dev/null
"$python" - "$work/requests.jsonl" "$work/requests.parquet" <<'PY'
import sys, duckdb
lines = sum(1 for _ in open(sys.argv[1]))
rows, traced = duckdb.sql(f"select count(*), count(*) filter (where traceid = '4bf92f3577b34da6a3ce929d0e0e4736') from read_parquet('{sys.argv[2]}')").fetchall()[0]
assert rows == lines and lines >= 5 and traced == 1, (rows, lines, traced)
print(f"duckdb: the Parquet export holds the {rows} logged requests")
PY
# The kill switch: off, the next requests get 503 and OFREP says so; on again, served.
STEWARD_TOKEN=$dave "$bin" flags set retail/credit serving --env staging --off --reason "CI kill switch" >/dev/null
off=0
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}' \
    http://127.0.0.1:18556/env/staging/v2/models/retail:credit/infer)
  [ "$code" = 503 ] && { off=1; break; }
  sleep 0.25
done
[ "$off" = 1 ] || { echo "the kill switch did not take effect" >&2; exit 1; }
"$python" .ci/ofrep_check.py http://127.0.0.1:18556 retail:credit:staging:serving false
STEWARD_TOKEN=$dave "$bin" flags set retail/credit serving --env staging --on --reason "CI done" >/dev/null
for _ in $(seq 1 40); do
  "$python" .ci/ofrep_check.py http://127.0.0.1:18556 retail:credit:staging:serving true >/dev/null 2>&1 && break
  sleep 0.25
done
"$python" .ci/ofrep_check.py http://127.0.0.1:18556 retail:credit:staging:serving true

# The metrics the requests above left, as Prometheus' own linter reads them.
curl -sf http://127.0.0.1:18556/metrics > "$work/metrics.txt"
grep -q 'steward_inference_requests_total{model="retail:credit",version="1.0.0",environment="staging",tenant="",code="200"}' "$work/metrics.txt"
grep -q 'steward_prediction_confidence_bucket' "$work/metrics.txt"
grep -q "steward_input_feature_values_total{model=\"retail:credit\",version=\"1.0.0\",environment=\"staging\",feature=\"features\[5\]\"}" "$work/metrics.txt"
grep -q "steward_request_log_records_total{outcome=\"written\"}" "$work/metrics.txt"
"$promtool" check metrics < "$work/metrics.txt"
echo "promtool accepts /metrics"
