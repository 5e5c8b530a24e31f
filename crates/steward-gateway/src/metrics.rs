//! Prometheus metrics of the data plane (M1): requests by outcome, latency, and the
//! confidence of predictions, labelled by model, version and environment. Labels are low
//! cardinality by construction: models and versions are what the aliases point to, the
//! code is one of a handful of statuses.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Deployed {
    pub model: String,
    pub version: String,
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub model: String,
    pub version: String,
    pub environment: String,
    /// The HTTP status answered.
    pub code: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<Outcome, Counter>,
    pub latency: Family<Deployed, Histogram>,
    pub confidence: Family<Deployed, Histogram>,
    /// Shadow runs by outcome (`match`, `differ`, `error`); the version is the shadow's.
    pub shadow: Family<Outcome, Counter>,
    /// The largest absolute difference between shadow and served outputs, per request.
    pub shadow_difference: Family<Deployed, Histogram>,
    /// Copies not made because the shadow's in-flight bound was reached.
    pub shadow_dropped: Family<Deployed, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("steward");
        let requests = Family::<Outcome, Counter>::default();
        registry.register(
            "inference_requests",
            "Inference requests answered, by model, version, environment and HTTP status",
            requests.clone(),
        );
        // 50 µs to about 13 s.
        let latency = Family::<Deployed, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
        });
        registry.register(
            "inference_duration_seconds",
            "Time to answer an inference request, body read to response built",
            latency.clone(),
        );
        let confidence = Family::<Deployed, Histogram>::new_with_constructor(|| {
            Histogram::new(linear_buckets(0.5, 0.05, 10))
        });
        registry.register(
            "prediction_confidence",
            "The highest class probability of each predicted row (outputs of shape [N, K], K >= 2, values in [0, 1])",
            confidence.clone(),
        );
        let shadow = Family::<Outcome, Counter>::default();
        registry.register(
            "shadow_runs",
            "Requests copied to a shadow version, by outcome (code: match, differ, error) and the shadow's version",
            shadow.clone(),
        );
        let shadow_difference = Family::<Deployed, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-7, 10.0, 8))
        });
        registry.register(
            "shadow_difference",
            "Largest absolute difference between a shadow's outputs and the served ones, per request",
            shadow_difference.clone(),
        );
        let shadow_dropped = Family::<Deployed, Counter>::default();
        registry.register(
            "shadow_dropped",
            "Copies to a shadow not made because its in-flight bound was reached",
            shadow_dropped.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            confidence,
            shadow,
            shadow_difference,
            shadow_dropped,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition format (0.0.4). The client writes OpenMetrics, whose
    /// counter families are named without `_total`; Prometheus' format names them as their
    /// samples, so HELP and TYPE of counters get the suffix, and `# EOF` is dropped.
    pub fn encode(&self) -> String {
        let mut open_metrics = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry);
        let counters: Vec<String> = open_metrics
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.strip_suffix(" counter"))
            .map(str::to_owned)
            .collect();
        let mut text = String::with_capacity(open_metrics.len());
        for line in open_metrics.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = counters.iter().find_map(|name| {
                ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                    line.strip_prefix(&format!("{prefix}{name} "))
                        .map(|rest| format!("{prefix}{name}_total {rest}"))
                })
            });
            text.push_str(renamed.as_deref().unwrap_or(line));
            text.push('\n');
        }
        text
    }
}
