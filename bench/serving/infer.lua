-- wrk script for bench/serving/run.sh: every request is the same Open Inference Protocol v2
-- (REST/JSON) call with one row of the credit fixture (row 0 of credit.csv, rounded).
-- The same body goes to both servers: Steward's gateway feeds the one input to the ONNX
-- graph's `features`; MLServer's scikit-learn runtime decodes a single input whatever its
-- name, and answers predict_proba because the model's settings make that the default output
-- (export_sklearn.py), so the body needs no "outputs" field.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"features","datatype":"FP32","shape":[1,6],"data":[44200,0.29,29,3,1,20350]}]}'

-- One machine-readable line for run.sh, beside wrk's own report. Latencies in milliseconds.
-- errors.status counts responses with a status of 400 or more (wrk's "Non-2xx or 3xx").
function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
      summary.requests, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
