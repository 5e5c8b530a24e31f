//! Mandatory documentation (G3): templates that say which manifest fields a version must
//! carry, by risk class, internal tier and use-case category.
//!
//! Invariants:
//! - A template set is checked when loaded: unknown field paths and unknown conditions are
//!   refused, all of them listed, so a typo can never silently drop a requirement.
//! - `missing_fields` reports every missing field, never only the first.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::{Category, RiskClass, Tier};
use crate::manifest::VersionManifest;

/// The templates Steward ships; organisations may replace them with their own file.
pub const DEFAULT_TEMPLATES_YAML: &str = include_str!("docs/default_templates.yaml");
pub const TEMPLATES_MAX: usize = 100;

/// Every field path a template may require.
pub const FIELD_PATHS: &[&str] = &[
    "version",
    "artifacts",
    "licence",
    "intended_use",
    "out_of_scope_uses",
    "metrics",
    "training_config",
    "training_data",
    "training_data[].name",
    "training_data[].location",
    "training_data[].digest",
    "training_data[].licence",
    "training_data[].personal_data",
    "bias_assessment",
    "bias_assessment.summary",
    "bias_assessment.protected_attributes",
    "bias_assessment.metrics",
    "bias_assessment.mitigations",
    "model_card",
    "model_card.description",
    "model_card.limitations",
    "model_card.ethical_considerations",
    "model_card.authors",
    "model_card.contact",
    "model_card.markdown",
];

#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub description: String,
    risk_classes: Vec<RiskClass>,
    tiers: Vec<Tier>,
    categories: Vec<Category>,
    required: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub struct TemplateSet {
    templates: Vec<Template>,
}

/// What a model is, as far as documentation rules care.
#[derive(Debug, Clone, Copy)]
pub struct ModelFacts {
    pub risk_class: RiskClass,
    pub tier: Tier,
    pub category: Category,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingField {
    /// Concrete path, e.g. `training_data[1].digest`.
    pub field: String,
    /// Names of the templates that require it.
    pub required_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("documentation templates have {} problem(s): {}", .problems.len(), .problems.join("; "))]
pub struct TemplateError {
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    templates: Vec<RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    when: RawWhen,
    required: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    risk_classes: Vec<String>,
    #[serde(default)]
    tiers: Vec<i64>,
    #[serde(default)]
    categories: Vec<String>,
}

impl TemplateSet {
    pub fn default_set() -> TemplateSet {
        // The shipped file is tested to parse (`shipped_templates_parse`).
        TemplateSet::parse_yaml(DEFAULT_TEMPLATES_YAML).unwrap_or(TemplateSet {
            templates: Vec::new(),
        })
    }

    pub fn parse_yaml(text: &str) -> Result<TemplateSet, TemplateError> {
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|err| TemplateError {
            problems: vec![format!("not a valid template file: {err}")],
        })?;
        let mut problems = Vec::new();
        if raw.templates.len() > TEMPLATES_MAX {
            problems.push(format!(
                "{} templates, more than the limit of {TEMPLATES_MAX}",
                raw.templates.len()
            ));
        }
        let mut templates = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for raw_template in raw.templates {
            let name = raw_template.name;
            if !seen.insert(name.clone()) {
                problems.push(format!("template `{name}` is defined twice"));
            }
            let mut template = Template {
                name: name.clone(),
                description: raw_template.description,
                risk_classes: Vec::new(),
                tiers: Vec::new(),
                categories: Vec::new(),
                required: Vec::new(),
            };
            for value in raw_template.when.risk_classes {
                match value.parse() {
                    Ok(class) => template.risk_classes.push(class),
                    Err(err) => problems.push(format!("template `{name}`: {err}")),
                }
            }
            for value in raw_template.when.tiers {
                match Tier::new(value) {
                    Ok(tier) => template.tiers.push(tier),
                    Err(err) => problems.push(format!("template `{name}`: {err}")),
                }
            }
            for value in raw_template.when.categories {
                match value.parse() {
                    Ok(category) => template.categories.push(category),
                    Err(err) => problems.push(format!("template `{name}`: {err}")),
                }
            }
            for path in raw_template.required {
                match FIELD_PATHS.iter().find(|known| **known == path) {
                    Some(known) => template.required.push(known),
                    None => problems.push(format!("template `{name}`: unknown field `{path}`")),
                }
            }
            templates.push(template);
        }
        if problems.is_empty() {
            Ok(TemplateSet { templates })
        } else {
            Err(TemplateError { problems })
        }
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The templates that apply to a model with these facts.
    pub fn applicable(&self, facts: ModelFacts) -> Vec<&Template> {
        self.templates
            .iter()
            .filter(|template| template.applies_to(facts))
            .collect()
    }

    /// Every required field the manifest lacks, in template-file order, each once.
    pub fn missing_fields(
        &self,
        facts: ModelFacts,
        manifest: &VersionManifest,
    ) -> Vec<MissingField> {
        let mut missing: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
        for template in self.applicable(facts) {
            for path in &template.required {
                for field in missing_paths(path, manifest) {
                    let n_seen = missing.len();
                    let entry = missing.entry(field).or_insert((n_seen, Vec::new()));
                    if !entry.1.contains(&template.name) {
                        entry.1.push(template.name.clone());
                    }
                }
            }
        }
        let mut res: Vec<(usize, MissingField)> = missing
            .into_iter()
            .map(|(field, (order, required_by))| (order, MissingField { field, required_by }))
            .collect();
        res.sort_by_key(|(order, _)| *order);
        res.into_iter().map(|(_, field)| field).collect()
    }
}

impl Template {
    fn applies_to(&self, facts: ModelFacts) -> bool {
        (self.risk_classes.is_empty() || self.risk_classes.contains(&facts.risk_class))
            && (self.tiers.is_empty() || self.tiers.contains(&facts.tier))
            && (self.categories.is_empty() || self.categories.contains(&facts.category))
    }

    pub fn required(&self) -> &[&'static str] {
        &self.required
    }
}

fn text_missing(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|text| text.trim().is_empty())
}

/// The concrete paths under `path` that are absent or empty in `manifest`.
fn missing_paths(path: &str, manifest: &VersionManifest) -> Vec<String> {
    let card = manifest.model_card.as_ref();
    let bias = manifest.bias_assessment.as_ref();
    let single = |is_missing: bool| {
        if is_missing {
            vec![path.to_owned()]
        } else {
            Vec::new()
        }
    };
    if let Some(field) = path.strip_prefix("training_data[].") {
        return manifest
            .training_data
            .iter()
            .enumerate()
            .filter(|(_, source)| match field {
                "name" => text_missing(&source.name),
                "location" => text_missing(&source.location),
                "digest" => text_missing(&source.digest),
                "licence" => text_missing(&source.licence),
                "personal_data" => source.personal_data.is_none(),
                _ => false,
            })
            .map(|(idx, _)| format!("training_data[{idx}].{field}"))
            .collect();
    }
    single(match path {
        "version" => text_missing(&manifest.version),
        "artifacts" => manifest.artifacts.is_empty(),
        "licence" => text_missing(&manifest.licence),
        "intended_use" => text_missing(&manifest.intended_use),
        "out_of_scope_uses" => manifest
            .out_of_scope_uses
            .iter()
            .all(|use_| use_.trim().is_empty()),
        "metrics" => manifest.metrics.is_empty(),
        "training_config" => manifest.training_config.is_empty(),
        "training_data" => manifest.training_data.is_empty(),
        "bias_assessment" => bias.is_none(),
        "bias_assessment.summary" => bias.is_none_or(|b| text_missing(&b.summary)),
        "bias_assessment.protected_attributes" => {
            bias.is_none_or(|b| b.protected_attributes.is_empty())
        }
        "bias_assessment.metrics" => bias.is_none_or(|b| b.metrics.is_empty()),
        "bias_assessment.mitigations" => bias.is_none_or(|b| text_missing(&b.mitigations)),
        "model_card" => card.is_none(),
        "model_card.description" => card.is_none_or(|c| text_missing(&c.description)),
        "model_card.limitations" => card.is_none_or(|c| text_missing(&c.limitations)),
        "model_card.ethical_considerations" => {
            card.is_none_or(|c| text_missing(&c.ethical_considerations))
        }
        "model_card.authors" => card.is_none_or(|c| c.authors.is_empty()),
        "model_card.contact" => card.is_none_or(|c| text_missing(&c.contact)),
        "model_card.markdown" => card.is_none_or(|c| text_missing(&c.markdown)),
        // INVARIANT: paths come from FIELD_PATHS, checked at load; a path without an arm
        // here is caught by `every_field_path_is_checked`.
        _ => false,
    })
}

#[cfg(test)]
mod tests;
