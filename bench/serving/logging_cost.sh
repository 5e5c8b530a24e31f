#!/usr/bin/env bash
# What request logging costs at saturation, over HTTP: two Steward servers, identical
# (canary 1.1.0 at 10 % beside 1.0.0 in staging, metrics on) except that one logs every
# request (a canary phase) and the other has `request_log_enabled = false`. wrk
# (bench/serving/infer.lua) at CONNECTIONS (32) for DURATION (15s) per round, the two
# alternating for ROUNDS (5) rounds; medians and the cost (1 - on/off) are printed.
# usage: bench/serving/logging_cost.sh STEWARD_BIN
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
. "$here/lib.sh"
CONNECTIONS=${CONNECTIONS:-32} DURATION=${DURATION:-15s} THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-5}
work=$(mktemp -d /tmp/steward-logcost.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
mkdir -p "$work/off" "$work/on"
steward_up "$bin" "$work/off/data" 18591 1000 0 'request_log_enabled = false'; pids+=("$steward_pid"); off=$steward_model
steward_up "$bin" "$work/on/data" 18592 1000 0; pids+=("$steward_pid"); on=$steward_model
run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/infer.lua" "$1/infer" | grep '^BENCH ' | sed -E 's/.*rps=([0-9.]+).*p99_ms=([0-9.]+).*non2xx=([0-9]+) socket_errors=([0-9]+).*/\1 \2 \3 \4/'; }
run "$off" >/dev/null; run "$on" >/dev/null   # warm-up
: > "$work/runs.txt"
for round in $(seq 1 "$ROUNDS"); do
  echo "off $(run "$off")" >> "$work/runs.txt"
  echo "on $(run "$on")" >> "$work/runs.txt"
done
awk '$4 != 0 || $5 != 0 {bad = 1} END {exit bad}' "$work/runs.txt" || { cat "$work/runs.txt"; echo "errors under load" >&2; exit 1; }
median() { awk -v m="$1" -v c="$2" '$1 == m {print $c}' "$work/runs.txt" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
off_rps=$(median off 2) on_rps=$(median on 2) off_p99=$(median off 3) on_p99=$(median on 3)
logged=$(curl -sf "${on%%/env/*}/metrics" | awk '/^steward_request_log_records_total\{outcome="written"\}/ {print $NF}')
dropped=$(curl -sf "${on%%/env/*}/metrics" | awk '/^steward_request_log_records_total\{outcome="dropped"\}/ {print $NF}')
cat <<MD
| Steward, canary 10 % | req/s (median of $ROUNDS) | p99 ms (median) |
|---|---|---|
| request logging off (\`request_log_enabled = false\`) | $off_rps | $off_p99 |
| request logging on (every request) | $on_rps | $on_p99 |
| cost of logging | $(awk -v a="$off_rps" -v b="$on_rps" 'BEGIN {printf "%.1f %%", 100 * (1 - b / a)}') | |

Rounds (mode, req/s, p99 ms, non-2xx, socket errors):
$(sed 's/^/    /' "$work/runs.txt")
Records written by the logging server: ${logged:-0}, dropped: ${dropped:-0}.
MD
