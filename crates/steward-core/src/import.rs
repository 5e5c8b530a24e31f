//! Importing a registration from files teams already have: an MLflow `MLmodel`, a Hugging
//! Face model card (`README.md`) and Steward's own `steward.yaml`.
//!
//! Invariants:
//! - Pure: text in, manifest out. The CLI reads the files and hands their text in, so every
//!   mapping rule is tested from fixtures compiled into the tests.
//! - Every input is refused above `IMPORT_TEXT_BYTES_MAX` before it is parsed, and YAML is
//!   read under serde-saphyr's budgets (nesting depth, nodes, aliases), so no input can
//!   exhaust the stack or memory. No input panics.
//! - Nothing is dropped silently: a top-level key (or an entry of MLflow's `signature` or
//!   `metadata`) that is not carried over is named in `Imported::unmapped`, and a value that
//!   could not be used is explained in `Imported::warnings`. Errors are kept for text that
//!   cannot be read at all and for mapped fields of the wrong shape.
//! - An import is a draft: digests, data licences and personal-data flags are never
//!   guessed. The registration asks for whatever the documentation template requires.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::manifest::{BiasAssessment, DataSource, Metric, ModelCard, Source, VersionManifest};

/// Largest `MLmodel`, model card or `steward.yaml` accepted (the real ones are kilobytes).
pub const IMPORT_TEXT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Longest excerpt of user input quoted back in a message.
const QUOTE_CHARS_MAX: usize = 80;
/// Longest parser message passed on; a parser may echo input back.
const MESSAGE_CHARS_MAX: usize = 300;
/// Where a Hugging Face dataset id resolves to.
const HF_DATASETS_URL: &str = "https://huggingface.co/datasets/";

/// The text huggingface_hub's template (`[More Information Needed]`) and the Trainer's
/// generated cards (`More information needed`) leave in unfilled sections, normalised.
const PLACEHOLDER: &str = "more information needed";

/// The kinds of file this module reads, named as the user knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFile {
    MlModel,
    HuggingFaceCard,
    StewardYaml,
}

impl SourceFile {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFile::MlModel => "MLmodel",
            SourceFile::HuggingFaceCard => "README.md",
            SourceFile::StewardYaml => "steward.yaml",
        }
    }
}

impl fmt::Display for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: input is {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        file: SourceFile,
        bytes: usize,
        limit: usize,
    },
    #[error("{file}: not valid YAML: {message}")]
    Yaml { file: SourceFile, message: String },
    #[error("{file}: the document is {found}, not a mapping of keys")]
    NotAMapping {
        file: SourceFile,
        found: &'static str,
    },
    #[error("{file}: the front matter opened by `---` on line 1 is not closed by a `---` line")]
    FrontMatterNotClosed { file: SourceFile },
    #[error("{file}: `{field}` {problem}")]
    Field {
        file: SourceFile,
        field: String,
        problem: String,
    },
    /// Valid YAML that is not a manifest: an unknown field, a wrong type.
    #[error("{file}: {message}")]
    Manifest { file: SourceFile, message: String },
}

/// The result of an import: a draft manifest and what the user should know about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Imported {
    pub manifest: VersionManifest,
    /// Values that were read but could not be used, each naming the file and the field.
    pub warnings: Vec<String>,
    /// Keys (dotted below the top level) carried neither into the manifest nor into
    /// `provenance`, sorted.
    pub unmapped: Vec<String>,
    /// Hugging Face `tags` as written, and `pipeline_tag`, `library_name` and `language` as
    /// `pipeline_tag:<value>` and so on, in front-matter order. For search, not governance.
    pub card_tags: Vec<String>,
    /// Facts about the source that the manifest has no field for, such as MLflow's
    /// `model_id`, `utc_time_created` and `mlflow_version`, for the CLI to show or record.
    pub provenance: BTreeMap<String, String>,
}

/// Reads an MLflow `MLmodel` file (`mlflow/models/model.py` `Model.to_yaml`).
pub fn from_mlflow(mlmodel_yaml: &str) -> Result<Imported, ImportError> {
    let file = SourceFile::MlModel;
    check_size(file, mlmodel_yaml)?;
    let top = match parse_yaml(file, mlmodel_yaml, 0)? {
        Value::Object(map) => map,
        other => {
            return Err(ImportError::NotAMapping {
                file,
                found: kind_of(&other),
            });
        }
    };
    let mut out = Imported::default();
    let mut source = Source {
        kind: "mlflow".into(),
        ..Source::default()
    };
    for (key, value) in top {
        match key.as_str() {
            "flavors" => source.flavors = flavor_names(file, value)?,
            "signature" => source.signature = mlflow_signature(file, value, &mut out)?,
            "run_id" => source.run_id = opt_string(file, &key, value)?,
            "model_uuid" => source.model_uuid = opt_string(file, &key, value)?,
            "model_id" | "utc_time_created" | "mlflow_version" => match scalar_text(&value) {
                Some(text) => {
                    out.provenance.insert(key, text);
                }
                None if value.is_null() => {}
                None => {
                    out.warnings.push(format!(
                        "{file}: `{key}` is {}, not a single value; not kept",
                        kind_of(&value)
                    ));
                    out.unmapped.push(key);
                }
            },
            "metadata" => mlflow_metadata(file, value, &mut out)?,
            _ => out.unmapped.push(key),
        }
    }
    if source.model_uuid.is_none() {
        // MLflow 3 writes the LoggedModel id as both `model_id` and `model_uuid`; a file with
        // only the former still names the model.
        source.model_uuid = out.provenance.get("model_id").cloned();
    }
    if source.flavors.is_empty() {
        out.warnings.push(format!(
            "{file}: no `flavors`; MLflow cannot load a model without one"
        ));
    }
    out.manifest.source = Some(source);
    out.unmapped.sort();
    Ok(out)
}

/// Reads a Hugging Face model card: YAML front matter between leading `---` lines, then a
/// Markdown body in the layout of huggingface_hub's `modelcard_template.md`.
///
/// Headings are matched case-insensitively at any level (ATX `#` headings; setext
/// underlines are not recognised). A front-matter key Steward maps with the wrong shape is
/// an error; an evaluation result Steward cannot use is skipped with a warning, so that one
/// bad metric does not block importing the rest.
pub fn from_huggingface_card(readme_md: &str) -> Result<Imported, ImportError> {
    let file = SourceFile::HuggingFaceCard;
    check_size(file, readme_md)?;
    let text = readme_md.strip_prefix('\u{feff}').unwrap_or(readme_md);
    let (front_matter, body) = split_front_matter(file, text)?;
    let mut out = Imported::default();
    let mut source = Source {
        kind: "huggingface".into(),
        ..Source::default()
    };
    match front_matter {
        // The YAML starts on line 2 of the file; messages should say so.
        Some(yaml) => match parse_yaml(file, yaml, 1)? {
            Value::Null => {}
            Value::Object(map) => card_metadata(file, map, &mut source, &mut out)?,
            other => return Err(ImportError::NotAMapping { file, found: kind_of(&other) }),
        },
        None => out.warnings.push(format!(
            "{file}: no YAML front matter; licence, datasets and metrics must come from steward.yaml"
        )),
    }
    card_body(body, &mut out.manifest);
    out.manifest.source = Some(source);
    out.unmapped.sort();
    Ok(out)
}

/// Parses a `steward.yaml`: the manifest's own field names, unknown fields refused.
/// An empty file is an empty manifest.
pub fn manifest_from_yaml(text: &str) -> Result<VersionManifest, ImportError> {
    let file = SourceFile::StewardYaml;
    check_size(file, text)?;
    // Read once as plain YAML so that a syntax error is reported as one, then as the
    // manifest so that a misspelt field is refused with its name and line.
    match parse_yaml(file, text, 0)? {
        Value::Null => return Ok(VersionManifest::default()),
        Value::Object(_) => {}
        other => {
            return Err(ImportError::NotAMapping {
                file,
                found: kind_of(&other),
            });
        }
    }
    serde_saphyr::from_str_with_options::<VersionManifest>(text, yaml_options()).map_err(|err| {
        ImportError::Manifest {
            file,
            message: yaml_message(&err, 0),
        }
    })
}

/// Combines two manifests; `overlay`'s present fields win (`Some`, a non-empty list or map).
/// `model_card`, `bias_assessment` and `source` are combined field by field; lists and maps
/// are replaced whole, never concatenated, so the overlay can state a complete list.
pub fn merge(base: VersionManifest, overlay: VersionManifest) -> VersionManifest {
    // Destructured, so that a new manifest field cannot be forgotten here.
    let VersionManifest {
        version,
        artifacts,
        training_data,
        training_config,
        metrics,
        bias_assessment,
        intended_use,
        out_of_scope_uses,
        model_card,
        licence,
        source,
        usage_terms,
        schema,
    } = overlay;
    VersionManifest {
        version: version.or(base.version),
        artifacts: list_or(artifacts, base.artifacts),
        training_data: list_or(training_data, base.training_data),
        training_config: if training_config.is_empty() {
            base.training_config
        } else {
            training_config
        },
        metrics: list_or(metrics, base.metrics),
        bias_assessment: merge_opt(base.bias_assessment, bias_assessment, merge_bias),
        intended_use: intended_use.or(base.intended_use),
        out_of_scope_uses: list_or(out_of_scope_uses, base.out_of_scope_uses),
        model_card: merge_opt(base.model_card, model_card, merge_card),
        licence: licence.or(base.licence),
        source: merge_opt(base.source, source, merge_source),
        usage_terms: usage_terms.or(base.usage_terms),
        schema: schema.or(base.schema),
    }
}

fn list_or<T>(overlay: Vec<T>, base: Vec<T>) -> Vec<T> {
    if overlay.is_empty() { base } else { overlay }
}

fn merge_opt<T>(base: Option<T>, overlay: Option<T>, both: fn(T, T) -> T) -> Option<T> {
    match (base, overlay) {
        (Some(base), Some(overlay)) => Some(both(base, overlay)),
        (base, overlay) => overlay.or(base),
    }
}

fn merge_bias(base: BiasAssessment, overlay: BiasAssessment) -> BiasAssessment {
    let BiasAssessment {
        summary,
        protected_attributes,
        metrics,
        mitigations,
    } = overlay;
    BiasAssessment {
        summary: summary.or(base.summary),
        protected_attributes: list_or(protected_attributes, base.protected_attributes),
        metrics: list_or(metrics, base.metrics),
        mitigations: mitigations.or(base.mitigations),
    }
}

fn merge_card(base: ModelCard, overlay: ModelCard) -> ModelCard {
    let ModelCard {
        description,
        limitations,
        ethical_considerations,
        authors,
        contact,
        markdown,
    } = overlay;
    ModelCard {
        description: description.or(base.description),
        limitations: limitations.or(base.limitations),
        ethical_considerations: ethical_considerations.or(base.ethical_considerations),
        authors: list_or(authors, base.authors),
        contact: contact.or(base.contact),
        markdown: markdown.or(base.markdown),
    }
}

fn merge_source(base: Source, overlay: Source) -> Source {
    let Source {
        kind,
        run_id,
        model_uuid,
        flavors,
        signature,
        base_model,
        datasets,
    } = overlay;
    Source {
        kind: if kind.is_empty() { base.kind } else { kind },
        run_id: run_id.or(base.run_id),
        model_uuid: model_uuid.or(base.model_uuid),
        flavors: list_or(flavors, base.flavors),
        signature: signature.or(base.signature),
        base_model: list_or(base_model, base.base_model),
        datasets: list_or(datasets, base.datasets),
    }
}

// ---- MLflow ----

fn flavor_names(file: SourceFile, value: Value) -> Result<Vec<String>, ImportError> {
    match value {
        Value::Null => Ok(Vec::new()),
        // Sorted: the file's order carries no meaning and the manifest digest should not
        // depend on it.
        Value::Object(map) => {
            let mut names: Vec<String> = map.into_iter().map(|(name, _)| name).collect();
            names.sort();
            Ok(names)
        }
        other => Err(field_error(
            file,
            "flavors",
            format!("is {}, not a mapping of flavor names", kind_of(&other)),
        )),
    }
}

/// MLflow stores `inputs`, `outputs` and `params` as JSON text inside the YAML; the
/// manifest keeps them decoded, as `{"inputs": [...], "outputs": [...], "params": [...]}`.
fn mlflow_signature(
    file: SourceFile,
    value: Value,
    out: &mut Imported,
) -> Result<Option<Value>, ImportError> {
    let parts = match value {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        other => {
            return Err(field_error(
                file,
                "signature",
                format!("is {}, not a mapping", kind_of(&other)),
            ));
        }
    };
    let mut decoded: BTreeMap<&'static str, Value> = BTreeMap::new();
    for (key, part) in parts {
        let name = match key.as_str() {
            "inputs" => "inputs",
            "outputs" => "outputs",
            "params" => "params",
            _ => {
                out.unmapped.push(format!("signature.{key}"));
                continue;
            }
        };
        let field = format!("signature.{name}");
        let schema = match part {
            Value::Null => continue,
            Value::String(text) => serde_json::from_str::<Value>(&text)
                .map_err(|err| field_error(file, &field, format!("is not valid JSON: {err}")))?,
            // A hand-written file may give the schema as YAML rather than as JSON text; it
            // means the same.
            Value::Array(items) => Value::Array(items),
            other => {
                return Err(field_error(
                    file,
                    &field,
                    format!("is {}, not a JSON string", kind_of(&other)),
                ));
            }
        };
        if !schema.is_array() {
            let problem = format!(
                "must be a JSON list of columns, tensors or parameters, not {}",
                kind_of(&schema)
            );
            return Err(field_error(file, &field, problem));
        }
        decoded.insert(name, schema);
    }
    if decoded.is_empty() {
        return Ok(None);
    }
    let mut signature = Map::new();
    for name in ["inputs", "outputs", "params"] {
        if let Some(schema) = decoded.remove(name) {
            signature.insert(name.to_owned(), schema);
        }
    }
    Ok(Some(Value::Object(signature)))
}

/// `metadata` is a free dictionary. Keys named like manifest fields (or `license`, or a
/// model-card field) are mapped when their value has the field's shape; each is converted
/// on its own, so one badly shaped entry costs only itself.
fn mlflow_metadata(file: SourceFile, value: Value, out: &mut Imported) -> Result<(), ImportError> {
    let entries = match value {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        other => {
            return Err(field_error(
                file,
                "metadata",
                format!("is {}, not a mapping", kind_of(&other)),
            ));
        }
    };
    let both_spellings = entries.contains_key("licence") && entries.contains_key("license");
    let mut mapped = VersionManifest::default();
    for (key, item) in entries {
        let document = match key.as_str() {
            "license" if both_spellings => {
                out.warnings.push(format!("{file}: both `metadata.licence` and `metadata.license` are set; `metadata.licence` is used"));
                out.unmapped.push(format!("metadata.{key}"));
                continue;
            }
            "license" | "licence" => json_object("licence", item),
            "version" | "training_data" | "training_config" | "metrics" | "bias_assessment"
            | "intended_use" | "out_of_scope_uses" | "model_card" => json_object(&key, item),
            "description" | "limitations" | "ethical_considerations" | "authors" | "contact" => {
                json_object("model_card", json_object(&key, item))
            }
            // `artifacts` and `source` are deliberately absent: artifact digests come from
            // the files themselves and `source` is what this import writes.
            _ => {
                out.unmapped.push(format!("metadata.{key}"));
                continue;
            }
        };
        match serde_json::from_value::<VersionManifest>(document) {
            Ok(partial) => mapped = merge(mapped, partial),
            Err(err) => {
                // serde's message may quote the value; keep it short.
                let err = bounded(&err.to_string(), MESSAGE_CHARS_MAX);
                out.warnings.push(format!(
                    "{file}: `metadata.{key}` does not have the shape of the manifest field: {err}"
                ));
                out.unmapped.push(format!("metadata.{key}"));
            }
        }
    }
    out.manifest = merge(std::mem::take(&mut out.manifest), mapped);
    Ok(())
}

fn json_object(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

// ---- Hugging Face front matter ----

/// Splits `---\n<yaml>---\n<body>`; text not starting with a `---` line has no front matter.
fn split_front_matter(file: SourceFile, text: &str) -> Result<(Option<&str>, &str), ImportError> {
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return Ok((None, text));
    };
    if first.trim_end() != "---" {
        return Ok((None, text));
    }
    let yaml_start = first.len();
    let mut offset = yaml_start;
    for line in lines {
        if line.trim_end() == "---" {
            let yaml = text.get(yaml_start..offset).unwrap_or_default();
            let body = text.get(offset + line.len()..).unwrap_or_default();
            return Ok((Some(yaml), body));
        }
        offset += line.len();
    }
    Err(ImportError::FrontMatterNotClosed { file })
}

fn card_metadata(
    file: SourceFile,
    meta: Map<String, Value>,
    source: &mut Source,
    out: &mut Imported,
) -> Result<(), ImportError> {
    let mut license = None;
    let mut license_name = None;
    let mut license_link = None;
    for (key, value) in meta {
        match key.as_str() {
            "license" => license = opt_string(file, &key, value)?,
            "license_name" => license_name = opt_string(file, &key, value)?,
            "license_link" => license_link = opt_string(file, &key, value)?,
            "datasets" => source.datasets = string_list(file, &key, value)?,
            "base_model" => source.base_model = string_list(file, &key, value)?,
            // `model_index` is the spelling of cards written before the Hub settled on
            // `model-index`.
            "model-index" | "model_index" => model_index_metrics(file, &key, value, out),
            "tags" => card_tags(file, &key, value, None, out),
            "pipeline_tag" | "library_name" | "language" => {
                card_tags(file, &key, value, Some(&key), out)
            }
            _ => out.unmapped.push(key),
        }
    }
    let named = match (license_name, license_link) {
        (Some(name), Some(link)) => Some(format!("{name} ({link})")),
        (name, link) => name.or(link),
    };
    out.manifest.licence = match license {
        Some(id) if id != "other" => {
            if let Some(named) = named {
                out.warnings.push(format!(
                    "{file}: `license` is `{}`, so `license_name`/`license_link` `{}` is not used",
                    quote(&id),
                    quote(&named)
                ));
            }
            Some(id)
        }
        other => {
            if named.is_none() && other.is_some() {
                out.warnings.push(format!("{file}: `license` is `other` without `license_name` or `license_link`; name the licence in steward.yaml"));
            }
            named
        }
    };
    for (idx, id) in source.datasets.iter().enumerate() {
        let location = if is_hub_id(id) {
            Some(format!("{HF_DATASETS_URL}{id}"))
        } else {
            out.warnings.push(format!("{file}: `datasets[{idx}]` `{}` is not a Hugging Face dataset id; its location is left for the registration", quote(id)));
            None
        };
        // Digest, licence and personal-data flag are left unset: the card does not state
        // them and the registration asks.
        out.manifest.training_data.push(DataSource {
            name: Some(id.clone()),
            location,
            ..DataSource::default()
        });
    }
    Ok(())
}

/// `model-index[].results[]`: one manifest metric per result metric with a numeric value.
fn model_index_metrics(file: SourceFile, key: &str, value: Value, out: &mut Imported) {
    let Value::Array(models) = value else {
        out.warnings.push(format!(
            "{file}: `{key}` is {}, not a list; no metrics imported",
            kind_of(&value)
        ));
        return;
    };
    for (model_idx, model) in models.iter().enumerate() {
        let Some(results) = model.get("results").and_then(Value::as_array) else {
            out.warnings.push(format!(
                "{file}: `{key}[{model_idx}]` has no `results` list; skipped"
            ));
            continue;
        };
        for (result_idx, result) in results.iter().enumerate() {
            let path = format!("{key}[{model_idx}].results[{result_idx}]");
            let dataset = result.get("dataset");
            let dataset_name = dataset
                .and_then(|d| d.get("name").or_else(|| d.get("type")))
                .and_then(Value::as_str);
            let split = dataset.and_then(|d| d.get("split")).and_then(Value::as_str);
            // Cards from before the `metrics` list carry a single `metric` mapping.
            let metrics: Vec<&Value> = match (result.get("metrics"), result.get("metric")) {
                (Some(Value::Array(list)), _) => list.iter().collect(),
                (None, Some(single @ Value::Object(_))) => vec![single],
                _ => {
                    out.warnings
                        .push(format!("{file}: `{path}` has no `metrics` list; skipped"));
                    continue;
                }
            };
            for (metric_idx, metric) in metrics.into_iter().enumerate() {
                let metric_path = format!("{path}.metrics[{metric_idx}]");
                let Some(name) = metric
                    .get("name")
                    .or_else(|| metric.get("type"))
                    .and_then(Value::as_str)
                else {
                    out.warnings.push(format!(
                        "{file}: `{metric_path}` has neither `name` nor `type`; skipped"
                    ));
                    continue;
                };
                let Some(raw) = metric.get("value") else {
                    out.warnings.push(format!(
                        "{file}: `{metric_path}` `{}` has no `value`; skipped",
                        quote(name)
                    ));
                    continue;
                };
                // `.nan` and `.inf` arrive as strings (see `yaml_options`) and are refused here.
                let Some(value) = raw.as_f64().filter(|v| v.is_finite()) else {
                    let shown = quote(&value_text(raw));
                    out.warnings.push(format!("{file}: `{metric_path}` `{}` has value `{shown}`, which is not a finite number; skipped", quote(name)));
                    continue;
                };
                out.manifest.metrics.push(Metric {
                    name: name.to_owned(),
                    value,
                    dataset: dataset_name.map(str::to_owned),
                    split: split.map(str::to_owned),
                });
            }
        }
    }
}

fn card_tags(file: SourceFile, key: &str, value: Value, prefix: Option<&str>, out: &mut Imported) {
    let items = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        single => vec![single],
    };
    for item in items {
        match scalar_text(&item) {
            Some(text) => out.card_tags.push(match prefix {
                Some(prefix) => format!("{prefix}:{text}"),
                None => text,
            }),
            None => out.warnings.push(format!(
                "{file}: an entry of `{key}` is {}, not a tag; skipped",
                kind_of(&item)
            )),
        }
    }
}

/// `name` or `namespace/name`, in the characters the Hub allows, so that it is safe to put
/// in a URL path.
fn is_hub_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    id.len() <= 200
        && parts.len() <= 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && !part.starts_with(['.', '-'])
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
}

// ---- Hugging Face Markdown body ----

/// Normalised heading titles (see `normalise_title`) for each extracted field.
const DESCRIPTION_TITLES: &[&str] = &["model description", "description"];
const INTENDED_USE_TITLES: &[&str] = &[
    "direct use",
    "direct uses",
    "intended use",
    "intended uses",
    "primary intended uses",
    // The Trainer's generated card has one section for both.
    "intended uses limitations",
];
const LIMITATIONS_TITLES: &[&str] = &[
    "bias risks and limitations",
    "risks limitations and biases",
    "limitations",
    "known limitations",
    "limitations and bias",
    "limitations and biases",
    "bias and limitations",
    "risks and limitations",
];
const ETHICS_TITLES: &[&str] = &["ethical considerations", "ethics"];
const AUTHORS_TITLES: &[&str] = &["model card authors"];
const CONTACT_TITLES: &[&str] = &["model card contact"];

/// The text under one heading, up to the next heading of any level.
struct Section<'a> {
    /// `None` for the text before the first heading.
    title: Option<String>,
    lines: Vec<&'a str>,
}

fn card_body(body: &str, manifest: &mut VersionManifest) {
    let cleaned = strip_html_comments(body);
    let sections = split_sections(&cleaned);
    let titled = |titles: &[&str]| -> Vec<&Section<'_>> {
        sections
            .iter()
            .filter(|s| s.title.as_deref().is_some_and(|t| titles.contains(&t)))
            .collect()
    };
    // A card may repeat a heading (a parent and a child section); the first one with content
    // wins.
    let first = |sections: Vec<&Section<'_>>, extract: fn(&[&str]) -> Option<String>| {
        sections.into_iter().find_map(|s| extract(&s.lines))
    };
    // Without a description section, the card's opening paragraph describes the model: the
    // text before the first heading or directly under it (the title).
    let lead: Vec<&Section<'_>> = sections.iter().take(2).collect();
    let description =
        first(titled(DESCRIPTION_TITLES), first_paragraph).or_else(|| first(lead, first_paragraph));
    let out_of_scope: Vec<&Section<'_>> = sections
        .iter()
        .filter(|s| {
            s.title
                .as_deref()
                .is_some_and(|t| t == "out of scope" || t.contains("out of scope use"))
        })
        .collect();

    manifest.intended_use = first(titled(INTENDED_USE_TITLES), section_text);
    manifest.out_of_scope_uses = out_of_scope
        .into_iter()
        .map(|s| list_items(&s.lines))
        .find(|items| !items.is_empty())
        .unwrap_or_default();
    let card = ModelCard {
        description,
        limitations: first(titled(LIMITATIONS_TITLES), section_text),
        ethical_considerations: first(titled(ETHICS_TITLES), section_text),
        authors: titled(AUTHORS_TITLES)
            .into_iter()
            .map(|s| authors(&s.lines))
            .find(|names| !names.is_empty())
            .unwrap_or_default(),
        contact: first(titled(CONTACT_TITLES), section_text),
        // Verbatim, comments and placeholders included: it is the card as published.
        markdown: (!body.trim().is_empty()).then(|| body.to_owned()),
    };
    if card != ModelCard::default() {
        manifest.model_card = Some(card);
    }
}

/// Removes `<!-- ... -->` but keeps the line breaks inside, so that line structure and
/// paragraph breaks survive. An unclosed comment runs to the end, as in CommonMark.
fn strip_html_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after_open)) = rest.split_once("<!--") {
        out.push_str(before);
        let (comment, after) = after_open.split_once("-->").unwrap_or((after_open, ""));
        out.extend(comment.chars().filter(|&c| c == '\n'));
        rest = after;
    }
    out.push_str(rest);
    out
}

fn split_sections(text: &str) -> Vec<Section<'_>> {
    let mut sections = vec![Section {
        title: None,
        lines: Vec::new(),
    }];
    let mut fence = None;
    for line in text.lines() {
        if let Some(open) = fence {
            if closes_fence(open, line) {
                fence = None;
            }
        } else if let Some(open) = opening_fence(line) {
            fence = Some(open);
        } else if let Some(title) = atx_heading(line) {
            sections.push(Section {
                title: Some(normalise_title(title)),
                lines: Vec::new(),
            });
            continue;
        }
        if let Some(section) = sections.last_mut() {
            section.lines.push(line);
        }
    }
    sections
}

/// The title of an ATX heading (`#` to `######`, at most three spaces of indent).
fn atx_heading(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    if line.len() - rest.len() > 3 {
        return None;
    }
    let after = rest.trim_start_matches('#');
    let level = rest.len() - after.len();
    if !(1..=6).contains(&level) || !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let title = after.trim();
    // An optional closing run of `#`, when separated by a space.
    let unclosed = title.trim_end_matches('#');
    if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        Some(unclosed.trim_end())
    } else {
        Some(title)
    }
}

/// Lowercase words only: `Out-of-Scope Use [optional]` becomes `out of scope use`.
fn normalise_title(title: &str) -> String {
    let lower = title.to_lowercase().replace("[optional]", " ");
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A code fence opener: three or more backticks or tildes, at most three spaces of indent.
fn opening_fence(line: &str) -> Option<(char, usize)> {
    let rest = line.trim_start_matches(' ');
    if line.len() - rest.len() > 3 {
        return None;
    }
    let marker = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run = rest.chars().take_while(|c| *c == marker).count();
    (run >= 3).then_some((marker, run))
}

fn closes_fence(open: (char, usize), line: &str) -> bool {
    let (marker, run) = open;
    let rest = line.trim();
    let close_run = rest.chars().take_while(|c| *c == marker).count();
    close_run >= run
        && rest.chars().all(|c| c == marker)
        && line.len() - line.trim_start_matches(' ').len() <= 3
}

/// Groups lines into blocks separated by blank lines; a fenced code block stays one block
/// whatever it contains.
fn blocks<'a>(lines: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    let mut fence = None;
    for &line in lines {
        if let Some(open) = fence {
            current.push(line);
            if closes_fence(open, line) {
                fence = None;
            }
        } else if let Some(open) = opening_fence(line) {
            fence = Some(open);
            current.push(line);
        } else if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// The template's placeholder in any dress: brackets, emphasis, a list marker, a period.
fn is_placeholder(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.join(" ") == PLACEHOLDER
}

/// The section's text with placeholder lines removed; `None` if nothing is left.
fn section_text(lines: &[&str]) -> Option<String> {
    let parts: Vec<String> = blocks(lines)
        .into_iter()
        .filter_map(|block| {
            let kept: Vec<&str> = block
                .into_iter()
                .filter(|line| !is_placeholder(line))
                .map(str::trim_end)
                .collect();
            (!kept.is_empty()).then(|| kept.join("\n"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// The first prose paragraph: lines of a block up to the first list item, table row,
/// fence, HTML or image line (any of which ends a paragraph or is not prose).
fn first_paragraph(lines: &[&str]) -> Option<String> {
    blocks(lines).into_iter().find_map(|block| {
        let prose: Vec<&str> = block
            .iter()
            .map(|line| line.trim())
            .take_while(|line| !starts_non_prose(line))
            .collect();
        let text = prose.join("\n");
        (!prose.is_empty() && !is_placeholder(&text)).then_some(text)
    })
}

fn starts_non_prose(line: &str) -> bool {
    list_item(line).is_some()
        || line.starts_with(['|', '<', '`', '~', '#', '>'])
        || line.starts_with("![")
        || line.starts_with("[![")
}

/// The text of a bullet or numbered list item (`- x`, `* x`, `+ x`, `1. x`, `1) x`).
fn list_item(trimmed: &str) -> Option<&str> {
    if trimmed == "-" || trimmed == "*" || trimmed == "+" {
        return Some("");
    }
    if let Some(rest) = trimmed.strip_prefix(['-', '*', '+']) {
        return rest.starts_with([' ', '\t']).then(|| rest.trim());
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if !(1..=9).contains(&digits) {
        return None;
    }
    let rest = trimmed.get(digits..)?.strip_prefix(['.', ')'])?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then(|| rest.trim())
}

/// One entry per list item (continuation lines joined with a space), or the section's text
/// as a single entry when it has no list.
fn list_items(lines: &[&str]) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    // Whether the previous non-blank line belongs to an item, and whether a list is open.
    let mut in_item = false;
    let mut in_list = false;
    let mut fence = None;
    for &line in lines {
        if let Some(open) = fence {
            if closes_fence(open, line) {
                fence = None;
            }
            continue;
        }
        if let Some(open) = opening_fence(line) {
            fence = Some(open);
            in_item = false;
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            in_item = false;
        } else if let Some(text) = list_item(trimmed) {
            items.push(text.to_owned());
            in_item = true;
            in_list = true;
        } else if in_item || (in_list && line.starts_with([' ', '\t'])) {
            if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(trimmed);
            }
            in_item = true;
        } else {
            in_item = false;
            in_list = false;
        }
    }
    items.retain(|item| !item.is_empty() && !is_placeholder(item));
    if items.is_empty() {
        section_text(lines).into_iter().collect()
    } else {
        items
    }
}

/// Bullets, or a comma-separated list (`A, B, and C`).
fn authors(lines: &[&str]) -> Vec<String> {
    if let Some(text) = section_text(lines)
        && !lines.iter().any(|line| list_item(line.trim()).is_some())
    {
        return text
            .split([',', ';', '\n'])
            .map(|name| {
                let name = name.trim();
                name.strip_prefix("and ").unwrap_or(name).trim().to_owned()
            })
            .filter(|name| !name.is_empty())
            .collect();
    }
    list_items(lines)
}

// ---- shared ----

fn check_size(file: SourceFile, text: &str) -> Result<(), ImportError> {
    if text.len() > IMPORT_TEXT_BYTES_MAX {
        return Err(ImportError::TooLarge {
            file,
            bytes: text.len(),
            limit: IMPORT_TEXT_BYTES_MAX,
        });
    }
    Ok(())
}

fn yaml_options() -> serde_saphyr::Options {
    // `.nan` and `.inf` become the strings they are written as, so that a metric such as
    // `value: .nan` is reported as not a number instead of failing the whole file.
    serde_saphyr::options! { non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString }
}

fn parse_yaml(file: SourceFile, text: &str, line_offset: u64) -> Result<Value, ImportError> {
    serde_saphyr::from_str_with_options::<Value>(text, yaml_options()).map_err(|err| {
        ImportError::Yaml {
            file,
            message: yaml_message(&err, line_offset),
        }
    })
}

/// One line, without the source snippet (which would echo the input), with line numbers
/// counted in the whole file.
fn yaml_message(err: &serde_saphyr::Error, line_offset: u64) -> String {
    let message = err.render_with_options(serde_saphyr::render_options! {
        formatter: &serde_saphyr::UserMessageFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
        line_offset: line_offset,
    });
    bounded(&message, MESSAGE_CHARS_MAX)
}

fn field_error(file: SourceFile, field: &str, problem: String) -> ImportError {
    ImportError::Field {
        file,
        field: field.to_owned(),
        problem,
    }
}

fn opt_string(file: SourceFile, field: &str, value: Value) -> Result<Option<String>, ImportError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        other => Err(field_error(
            file,
            field,
            format!("is {}, not a string", kind_of(&other)),
        )),
    }
}

/// A string or a list of strings, duplicates removed, order kept.
fn string_list(file: SourceFile, field: &str, value: Value) -> Result<Vec<String>, ImportError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::String(text) => vec![Value::String(text)],
        Value::Array(items) => items,
        other => {
            return Err(field_error(
                file,
                field,
                format!("is {}, not a string or a list of strings", kind_of(&other)),
            ));
        }
    };
    let mut out: Vec<String> = Vec::new();
    // A set, not `out.contains`: the list may have a quarter of a million entries.
    let mut seen = std::collections::BTreeSet::new();
    for (idx, item) in items.into_iter().enumerate() {
        match item {
            Value::String(text) => {
                if seen.insert(text.clone()) {
                    out.push(text);
                }
            }
            other => {
                return Err(field_error(
                    file,
                    &format!("{field}[{idx}]"),
                    format!("is {}, not a string", kind_of(&other)),
                ));
            }
        }
    }
    Ok(out)
}

/// A scalar as text; `None` for null, lists and mappings.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn value_text(value: &Value) -> String {
    scalar_text(value).unwrap_or_else(|| value.to_string())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// User input for a message: at most `QUOTE_CHARS_MAX` characters, on one line.
fn quote(text: &str) -> String {
    bounded(&text.replace(['\n', '\r'], " "), QUOTE_CHARS_MAX)
}

fn bounded(text: &str, chars_max: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(chars_max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
