//! Optional OTLP trace export (M6): one server span per inference (its trace and parent
//! from the caller's `traceparent`), sent to an OpenTelemetry collector as OTLP/HTTP with
//! the JSON encoding (`POST {endpoint}/v1/traces`, ids as hex, times as nanosecond strings).
//!
//! Invariants:
//! - The request only `try_send`s a span into a bounded queue; an exporter task batches
//!   them (`BATCH_SPANS`, or every `EXPORT_INTERVAL`) and posts them off the request path.
//! - Nothing is lost silently: spans that find the queue full, or whose export fails, are
//!   counted (`steward_otlp_spans_total{outcome="dropped"|"failed"}`); export is not
//!   retried (traces are diagnostics, not records: the request log is the record).

use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use serde_json::{Value, json};

use crate::trace::TraceContext;

/// Spans waiting for export, at most.
pub const QUEUE_SPANS: usize = 8_192;
/// Spans per export request, at most.
pub const BATCH_SPANS: usize = 512;
/// How often the exporter sends what it has.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on one export request.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// One inference as a span.
pub struct Span {
    pub trace: TraceContext,
    pub start: SystemTime,
    pub duration: Duration,
    pub model: String,
    pub version: String,
    pub environment: String,
    pub route: &'static str,
    pub status: u16,
}

/// The queue in front of the exporter task.
pub struct Exporter {
    sender: tokio::sync::mpsc::Sender<Span>,
    dropped: Counter,
}

impl Exporter {
    /// Starts the exporter task (on the current runtime) for `endpoint` (an http:// base).
    pub fn start(
        endpoint: &str,
        service_version: &str,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Exporter, String> {
        let base = endpoint.trim_end_matches('/');
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(format!(
                "the OTLP endpoint `{endpoint}` must be an http:// address (e.g. a collector's http://127.0.0.1:4318)"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| format!("no HTTP client: {err}"))?;
        let outcome = |name: &str| {
            metrics
                .otlp
                .get_or_create(&crate::metrics::LogOutcome {
                    outcome: name.to_owned(),
                })
                .clone()
        };
        let (exported, dropped, failed) =
            (outcome("exported"), outcome("dropped"), outcome("failed"));
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Span>(QUEUE_SPANS);
        let url = format!("{base}/v1/traces");
        let version = service_version.to_owned();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH_SPANS);
            let mut ticker = tokio::time::interval(EXPORT_INTERVAL);
            loop {
                tokio::select! {
                    span = receiver.recv() => match span {
                        Some(span) => {
                            batch.push(span);
                            if batch.len() < BATCH_SPANS {
                                continue;
                            }
                        }
                        None => {
                            send(&client, &url, &version, &mut batch, &exported, &failed).await;
                            return;
                        }
                    },
                    _ = ticker.tick() => {}
                }
                send(&client, &url, &version, &mut batch, &exported, &failed).await;
            }
        });
        Ok(Exporter { sender, dropped })
    }

    /// Queues a span; a full queue drops it (counted).
    pub fn submit(&self, span: Span) {
        if self.sender.try_send(span).is_err() {
            self.dropped.inc();
        }
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    version: &str,
    batch: &mut Vec<Span>,
    exported: &Counter,
    failed: &Counter,
) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len() as u64;
    let body = request_json(version, batch);
    batch.clear();
    let sent = client.post(url).json(&body).send().await;
    match sent {
        Ok(response) if response.status().is_success() => {
            exported.inc_by(count);
        }
        Ok(response) => {
            failed.inc_by(count);
            tracing::warn!(status = %response.status(), spans = count, "OTLP: the collector refused a batch of spans.");
        }
        Err(err) => {
            failed.inc_by(count);
            tracing::warn!(error = %err, spans = count, "OTLP: a batch of spans was not exported.");
        }
    }
}

fn nanos(time: SystemTime) -> String {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
        .to_string()
}

fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// An `ExportTraceServiceRequest` in OTLP's JSON encoding.
pub fn request_json(service_version: &str, spans: &[Span]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut json = json!({
                "traceId": span.trace.trace_id_hex(),
                "spanId": span.trace.span_id_hex(),
                "name": format!("infer {}", span.model),
                // SPAN_KIND_SERVER
                "kind": 2,
                "startTimeUnixNano": nanos(span.start),
                "endTimeUnixNano": nanos(span.start + span.duration),
                "attributes": [
                    attribute("steward.model", &span.model),
                    attribute("steward.model_version", &span.version),
                    attribute("steward.environment", &span.environment),
                    attribute("steward.route", span.route),
                    {"key": "http.response.status_code", "value": {"intValue": span.status.to_string()}},
                ],
                // STATUS_CODE_ERROR for server errors, else unset.
                "status": if span.status >= 500 { json!({"code": 2}) } else { json!({}) },
            });
            if let Some(parent) = span.trace.parent_id_hex() {
                json["parentSpanId"] = json!(parent);
            }
            json
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                attribute("service.name", "steward"),
                attribute("service.version", service_version),
            ]},
            "scopeSpans": [{
                "scope": {"name": "steward-gateway", "version": service_version},
                "spans": spans,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_follow_the_otlp_json_encoding() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            crate::trace::TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let span = Span {
            trace: TraceContext::from_headers(&headers),
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Duration::from_micros(250),
            model: "retail:credit".into(),
            version: "1.1.0".into(),
            environment: "production".into(),
            route: "canary",
            status: 503,
        };
        let body = request_json("0.0.0", &[span]);
        let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(span["startTimeUnixNano"], "1800000000000000000");
        assert_eq!(span["endTimeUnixNano"], "1800000000000250000");
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["kind"], 2);
    }
}
