//! Prometheus metrics of the data plane (M1, M6): requests by outcome, latency, and the
//! confidence of predictions, labelled by model, version, environment and tenant; a
//! summary (count, sum of positive and of negative values, sum of squares, all counters so
//! `increase()` survives restarts) of every numeric input feature the schema does not mark
//! confidential, personal or special-category (metrics are not access-controlled); the
//! request log's outcomes; requests refused before reaching a deployment. Labels are low cardinality by construction: models and versions are what the
//! aliases point to, the code is one of a handful of statuses, tenants are capped at
//! `TENANT_LABELS_MAX` (later ones are labelled `other`), and features at
//! `FEATURE_COLUMNS_MAX` per input (features carry no tenant).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

/// Distinct tenant label values, at most (later tenants are labelled `other`).
pub const TENANT_LABELS_MAX: usize = 64;
/// Columns of one input summarised per feature, at most (the first ones).
pub const FEATURE_COLUMNS_MAX: usize = 64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Deployed {
    pub model: String,
    pub version: String,
    pub environment: String,
    /// The caller's tenant (`x-steward-tenant`), empty when none was given.
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub model: String,
    pub version: String,
    pub environment: String,
    pub tenant: String,
    /// The HTTP status answered.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LogOutcome {
    /// `written`, `dropped` (the queue was full) or `failed` (the write failed).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Feature {
    pub model: String,
    pub version: String,
    pub environment: String,
    /// `input` for a vector, `input[column]` for a column of a matrix.
    pub feature: String,
}

/// A counter of real amounts.
pub type Amount = Counter<f64, std::sync::atomic::AtomicU64>;

/// The running summary of one feature: finite values seen, the sums of their positive
/// parts, negative parts (as magnitudes) and squares (mean and standard deviation over a
/// window follow in PromQL), and non-finite values.
#[derive(Clone, Default)]
pub struct FeatureSummary {
    pub count: Counter,
    pub positive: Amount,
    pub negative: Amount,
    pub squares: Amount,
    pub non_finite: Counter,
}

impl FeatureSummary {
    pub fn observe(&self, values: impl Iterator<Item = f64>) {
        let (mut count, mut positive, mut negative, mut squares, mut bad) =
            (0u64, 0.0, 0.0, 0.0, 0u64);
        for value in values {
            if value.is_finite() {
                count += 1;
                if value >= 0.0 {
                    positive += value;
                } else {
                    negative -= value;
                }
                squares += value * value;
            } else {
                bad += 1;
            }
        }
        if count > 0 {
            self.count.inc_by(count);
            self.positive.inc_by(positive);
            self.negative.inc_by(negative);
            self.squares.inc_by(squares);
        }
        if bad > 0 {
            self.non_finite.inc_by(bad);
        }
    }
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
    /// Request log records by outcome.
    pub request_log: Family<LogOutcome, Counter>,
    /// OTLP spans by outcome (exported, dropped, failed).
    pub otlp: Family<LogOutcome, Counter>,
    feature_count: Family<Feature, Counter>,
    feature_positive: Family<Feature, Amount>,
    feature_negative: Family<Feature, Amount>,
    feature_squares: Family<Feature, Amount>,
    feature_non_finite: Family<Feature, Counter>,
    /// Requests refused before they reached a deployment, by environment and reason.
    pub rejected: Family<Rejected, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Rejected {
    /// An environment the table serves, or `unknown` (the path is the caller's).
    pub environment: String,
    /// `unauthenticated`, `forbidden`, `not_found`, `switched_off`, `bad_request`.
    pub reason: String,
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
        let request_log = Family::<LogOutcome, Counter>::default();
        registry.register(
            "request_log_records",
            "Request log records by outcome: written, dropped (the writer's queue was full) or failed (the write failed)",
            request_log.clone(),
        );
        let otlp = Family::<LogOutcome, Counter>::default();
        registry.register(
            "otlp_spans",
            "Inference spans for OTLP export by outcome: exported, dropped (the queue was full) or failed (the collector did not take them)",
            otlp.clone(),
        );
        let feature_count = Family::<Feature, Counter>::default();
        registry.register(
            "input_feature_values",
            "Finite values of each numeric input feature seen (per column of a matrix input)",
            feature_count.clone(),
        );
        let feature_positive = Family::<Feature, Amount>::default();
        registry.register(
            "input_feature_positive",
            "Sum of the positive finite values of each numeric input feature (mean over a window: (increase of this - increase of steward_input_feature_negative_total) / increase of steward_input_feature_values_total)",
            feature_positive.clone(),
        );
        let feature_negative = Family::<Feature, Amount>::default();
        registry.register(
            "input_feature_negative",
            "Sum of the magnitudes of the negative finite values of each numeric input feature",
            feature_negative.clone(),
        );
        let feature_squares = Family::<Feature, Amount>::default();
        registry.register(
            "input_feature_squares",
            "Sum of the squares of the finite values of each numeric input feature (for the standard deviation)",
            feature_squares.clone(),
        );
        let rejected = Family::<Rejected, Counter>::default();
        registry.register(
            "inference_rejected",
            "Inference requests refused before reaching a deployment, by environment and reason (unauthenticated, forbidden, not_found, switched_off, bad_request)",
            rejected.clone(),
        );
        let feature_non_finite = Family::<Feature, Counter>::default();
        registry.register(
            "input_feature_non_finite",
            "NaN and infinite values of each numeric input feature",
            feature_non_finite.clone(),
        );
        Metrics {
            registry,
            request_log,
            otlp,
            feature_count,
            feature_positive,
            feature_negative,
            feature_squares,
            feature_non_finite,
            rejected,
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
    /// The summary handles of one feature (made once per deployment and feature, so the
    /// hot path does not build labels).
    pub fn feature(&self, labels: &Feature) -> FeatureSummary {
        FeatureSummary {
            count: self.feature_count.get_or_create(labels).clone(),
            positive: self.feature_positive.get_or_create(labels).clone(),
            negative: self.feature_negative.get_or_create(labels).clone(),
            squares: self.feature_squares.get_or_create(labels).clone(),
            non_finite: self.feature_non_finite.get_or_create(labels).clone(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus reserves `_sum`, `_count` and `_bucket` for histograms and summaries (promtool
    /// refuses other metrics named so).
    #[test]
    fn metric_names_avoid_reserved_suffixes() {
        let metrics = Metrics::default();
        metrics.feature(&Feature {
            model: "m".into(),
            version: "1".into(),
            environment: "e".into(),
            feature: "f".into(),
        });
        let text = metrics.encode();
        for line in text.lines().filter(|line| line.starts_with("# TYPE ")) {
            let mut parts = line.split(' ').skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            if kind != "histogram" {
                for suffix in ["_sum", "_count", "_bucket"] {
                    assert!(!name.ends_with(suffix), "{line}");
                }
            }
        }
        assert!(
            text.contains("# TYPE steward_input_feature_positive_total counter"),
            "{text}"
        );
    }
}
