//! A model version's manifest: everything a version is, and the digest that names it.
//!
//! Invariants:
//! - A manifest is immutable once registered; its digest is computed here and nowhere else
//!   (`VersionManifest::digest`). The packaging work will replace this function with the
//!   OCI manifest digest; callers only see a `Digest`.
//! - Every list and text field has a named upper bound (`*_MAX`), checked by `check_limits`.

use serde::{Deserialize, Serialize};

use crate::canonical;
use crate::domain::{Digest, Name};

/// The identity of the digest document; bump it only with a migration of every stored id.
pub const DIGEST_DOCUMENT_SCHEMA: &str = "steward.dev/version/v1";
/// Bound on the serialised manifest (the API also caps the whole request body).
pub const MANIFEST_BYTES_MAX: usize = 1024 * 1024;
pub const ARTIFACTS_MAX: usize = 1000;
pub const TRAINING_DATA_MAX: usize = 1000;
pub const METRICS_MAX: usize = 1000;
pub const LIST_ITEMS_MAX: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionManifest {
    /// Semantic version label, e.g. `1.4.0`; unique per model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub training_data: Vec<DataSource>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub training_config: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_assessment: Option<BiasAssessment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_scope_uses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_card: Option<ModelCard>,
    /// SPDX identifier or licence name of the model itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// Where the registration was imported from, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Terms of use (P3): enforced where the version may be registered and deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_terms: Option<UsageTerms>,
    /// Inputs and outputs with a data classification per field (P6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<crate::schema::DataSchema>,
}

/// What a model may and may not be used for, and where. Empty lists mean "no restriction".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageTerms {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permitted_uses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibited_uses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_use_limitations: Vec<String>,
    /// Business units that may register and deploy the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_business_units: Vec<String>,
    /// Regions (of environments) where the model may be deployed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_regions: Vec<String>,
}

impl UsageTerms {
    /// The term that forbids registering or deploying in `business_unit`, if any.
    pub fn forbids_business_unit(&self, business_unit: &str) -> Option<String> {
        (!self.allowed_business_units.is_empty()
            && !self
                .allowed_business_units
                .iter()
                .any(|unit| unit == business_unit))
        .then(|| {
            format!(
                "allowed_business_units: [{}]",
                self.allowed_business_units.join(", ")
            )
        })
    }

    /// The term that forbids deploying to an environment in `region` (`None`: no region set).
    pub fn forbids_region(&self, region: Option<&str>) -> Option<String> {
        let allowed = |region: &str| self.allowed_regions.iter().any(|allowed| allowed == region);
        (!self.allowed_regions.is_empty() && !region.is_some_and(allowed))
            .then(|| format!("allowed_regions: [{}]", self.allowed_regions.join(", ")))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Path of the file inside the model directory, e.g. `model.onnx`.
    pub name: String,
    pub digest: String,
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BiasAssessment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_attributes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigations: Option<String>,
}

/// Structured model-card fields (after the Hugging Face and Model Card Toolkit layouts)
/// plus the card as Markdown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethical_considerations: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `mlflow`, `huggingface` or `directory`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flavors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub signature: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_model: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
}

impl ModelCard {
    /// Every text field of the card, one per line, for search.
    pub fn text(&self) -> String {
        let fields = [
            &self.description,
            &self.limitations,
            &self.ethical_considerations,
            &self.contact,
            &self.markdown,
        ];
        let mut lines: Vec<&str> = fields.into_iter().flatten().map(String::as_str).collect();
        lines.extend(self.authors.iter().map(String::as_str));
        lines.join("\n")
    }
}

/// A manifest that failed the structural checks; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest has {} problem(s): {}", .problems.len(), .problems.join("; "))]
pub struct ManifestError {
    pub problems: Vec<String>,
}

impl VersionManifest {
    /// Structural checks that hold whatever the documentation template says: well-formed
    /// digests and version label, finite metrics, bounded sizes. Lists every problem.
    pub fn check(&self) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        if let Some(version) = &self.version
            && let Err(err) = semver::Version::parse(version)
        {
            problems.push(format!(
                "version `{version}` is not a semantic version: {err}"
            ));
        }
        let limits = [
            ("artifacts", self.artifacts.len(), ARTIFACTS_MAX),
            ("training_data", self.training_data.len(), TRAINING_DATA_MAX),
            ("metrics", self.metrics.len(), METRICS_MAX),
            (
                "out_of_scope_uses",
                self.out_of_scope_uses.len(),
                LIST_ITEMS_MAX,
            ),
        ];
        for (field, n_items, n_max) in limits {
            if n_items > n_max {
                problems.push(format!(
                    "{field} has {n_items} items, more than the limit of {n_max}"
                ));
            }
        }
        if let Some(schema) = &self.schema {
            problems.extend(schema.problems());
        }
        let mut names = std::collections::BTreeSet::new();
        for (idx, artifact) in self.artifacts.iter().enumerate() {
            if let Err(err) = Digest::parse(&artifact.digest) {
                problems.push(format!("artifacts[{idx}].digest: {err}"));
            }
            if artifact.name.is_empty()
                || artifact.name.starts_with('/')
                || artifact.name.split('/').any(|part| part == "..")
            {
                problems.push(format!(
                    "artifacts[{idx}].name `{}` must be a relative path inside the model",
                    artifact.name
                ));
            }
            if !names.insert(artifact.name.as_str()) {
                problems.push(format!(
                    "artifacts[{idx}].name `{}` appears twice",
                    artifact.name
                ));
            }
        }
        for (idx, source) in self.training_data.iter().enumerate() {
            if let Some(digest) = &source.digest
                && let Err(err) = Digest::parse(digest)
            {
                problems.push(format!("training_data[{idx}].digest: {err}"));
            }
        }
        let all_metrics = self.metrics.iter().map(|m| ("metrics", m));
        let bias_metrics = self
            .bias_assessment
            .iter()
            .flat_map(|b| b.metrics.iter().map(|m| ("bias_assessment.metrics", m)));
        for (field, metric) in all_metrics.chain(bias_metrics) {
            if !metric.value.is_finite() {
                problems.push(format!("{field} `{}` is not a finite number", metric.name));
            }
        }
        let size = serde_json::to_vec(self)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX);
        if size > MANIFEST_BYTES_MAX {
            problems.push(format!(
                "manifest is {size} bytes, more than the limit of {MANIFEST_BYTES_MAX}"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError { problems })
        }
    }

    /// The version id: SHA-256 over the canonical JSON of the digest document, which holds
    /// the model's identity and the whole manifest (artifact digests included).
    pub fn digest(&self, business_unit: &Name, model: &Name) -> Digest {
        Digest::of_bytes(self.digest_document(business_unit, model).as_bytes())
    }

    /// The exact bytes the version id is computed over, for anyone who wants to recompute it.
    pub fn digest_document(&self, business_unit: &Name, model: &Name) -> String {
        let manifest = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let document = serde_json::json!({
            "schema": DIGEST_DOCUMENT_SCHEMA,
            "business_unit": business_unit.as_str(),
            "model": model.as_str(),
            "manifest": manifest,
        });
        canonical::to_string(&document)
    }
}

#[cfg(test)]
mod tests;
