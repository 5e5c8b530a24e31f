#!/usr/bin/env bash
# A load run of at least 1,000,000 requests through a canary and a shadow, with request
# logging on (a canary phase logs every request).
#
# usage: bench/serving/load_1m.sh STEWARD_BIN
#
# Setup: `STEWARD_BIN serve` on a fresh data directory; retail/credit 1.0.0 (logreg.onnx)
# promoted to staging; 1.1.0 (logreg.onnx) as a 10 % canary and 1.2.0 (mlp.onnx) as a
# shadow of 10 % of requests, set with PUT .../routing/staging (both pass staging's gates).
# Load: wrk (bench/serving/infer.lua, one row per request) at CONNECTIONS (32) for
# DURATION (default 150s), enough for 1,000,000 requests on a 2-core machine; the run
# fails if fewer were answered.
# Checks, afterwards:
#   - every request was answered 200 (wrk's non-2xx and socket errors are 0);
#   - the requests the canary answered (steward_inference_requests_total of 1.1.0) equal
#     the request log's records of 1.1.0 (lines in requests/*/*.jsonl), and nothing was
#     dropped or failed (steward_request_log_records_total);
#   - memory stays bounded: the server's resident set (VmRSS) is sampled every 2 s; the
#     figures are reported at 10 %, 50 % and 100 % of the run and the peak (VmHWM).
# Output: a Markdown summary on stdout.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CONNECTIONS=${CONNECTIONS:-32} DURATION=${DURATION:-150s} THREADS=${THREADS:-2}
MIN_REQUESTS=${MIN_REQUESTS:-1000000}
work=$(mktemp -d /tmp/steward-load.XXXXXX)
pid=''
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
cd "$repo"
. "$here/lib.sh"
port=18590
data=$work/data
steward_up "$bin" "$data" "$port" 1000 1000
pid=$steward_pid model=$steward_model url=http://127.0.0.1:$port

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
: > "$work/rss.txt"
( while kill -0 "$pid" 2>/dev/null; do echo "$(date +%s) $(rss)" >> "$work/rss.txt"; sleep 2; done ) &
sampler=$!
start_rss=$(rss)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/infer.lua" "$model/infer" > "$work/wrk.txt" 2>&1
kill "$sampler" 2>/dev/null || true
line=$(grep '^BENCH ' "$work/wrk.txt")
requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")
socket=$(sed -E 's/.*socket_errors=([0-9]+).*/\1/' <<<"$line")
# The log drains: wait until every answered request has its record (or 60 s).
metric() { curl -sf "$url/metrics" | awk -v pat="$1" 'index($0, pat) == 1 {sum += $NF} END {printf "%d\n", sum}'; }
for _ in $(seq 1 120); do
  served=$(metric 'steward_inference_requests_total{')
  written=$(metric 'steward_request_log_records_total{outcome="written"}')
  [ "$written" -ge "$served" ] && break
  sleep 0.5
done
to_canary=$(metric 'steward_inference_requests_total{model="retail:credit",version="1.1.0"')
dropped=$(metric 'steward_request_log_records_total{outcome="dropped"}')
failed=$(metric 'steward_request_log_records_total{outcome="failed"}')
shadowed=$(metric 'steward_shadow_runs_total{')
shadow_dropped=$(metric 'steward_shadow_dropped_total{')
logged_canary=$(cat "$data"/requests/*/*.jsonl | grep -c '"modelversion":"1.1.0"')
logged_all=$(cat "$data"/requests/*/*.jsonl | wc -l)
log_bytes=$(du -sb "$data/requests" | cut -f1)
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
samples=$(wc -l < "$work/rss.txt")
at() { sed -n "$(( ($1 * samples + 99) / 100 ))p" "$work/rss.txt" | awk '{print $2}'; }
cat <<MD
| what | value |
|---|---|
| requests answered (wrk) | $requests ($(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line") /s, p50 $(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line") ms, p99 $(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line") ms) |
| non-2xx / socket errors | $non2xx / $socket |
| answered by the canary (metrics) | $to_canary |
| logged records of the canary | $logged_canary |
| logged records, all / written / dropped / failed | $logged_all / $written / $dropped / $failed ($((log_bytes / 1048576)) MiB) |
| shadow runs / copies dropped at the bound | $shadowed / $shadow_dropped |
| server RSS: before, at 10 %, 50 %, 100 % of the run; peak | $((start_rss / 1024)) MiB, $(( $(at 10) / 1024 )) MiB, $(( $(at 50) / 1024 )) MiB, $(( $(at 100) / 1024 )) MiB; $((peak / 1024)) MiB |
MD
[ "$requests" -ge "$MIN_REQUESTS" ] || { echo "only $requests requests: raise DURATION" >&2; exit 1; }
[ "$non2xx" = 0 ] && [ "$socket" = 0 ] || { echo "errors under load" >&2; exit 1; }
[ "$to_canary" = "$logged_canary" ] || { echo "canary requests $to_canary != logged $logged_canary" >&2; exit 1; }
[ "$dropped" = 0 ] && [ "$failed" = 0 ] || { echo "records were lost" >&2; exit 1; }
echo "ok: logged canary requests equal requests sent to the canary"
