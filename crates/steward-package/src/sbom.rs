//! The package's SBOM (P4, first part): a CycloneDX 1.6 JSON document with the model as a
//! `machine-learning-model` component (its model card), its training datasets as `data`
//! components, and every Python dependency pinned in the package's requirements or lock
//! files as a `library` with a `pkg:pypi` purl.
//!
//! Invariants: an unpinned dependency is an error that names the file and the line; the
//! document is reproducible (no serial number, a fixed timestamp), so the same package gives
//! the same SBOM bytes.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};
use steward_core::manifest::VersionManifest;

pub const SBOM_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// Bound on one requirements or lock file.
pub const DEPENDENCY_FILE_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    /// PEP 503 normalised name.
    pub name: String,
    pub version: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbomError {
    #[error("dependencies must be pinned (`name==version`); unpinned: {}", .0.join("; "))]
    Unpinned(Vec<String>),
    #[error("`{file}` is not a valid lock file: {message}")]
    BadLock { file: String, message: String },
}

/// Is this path a dependency file we read?
pub fn is_dependency_file(path: &str) -> bool {
    let file_name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    (file_name.starts_with("requirements") && file_name.ends_with(".txt"))
        || file_name == "uv.lock"
        || file_name == "poetry.lock"
}

static REQUIREMENT: LazyLock<Regex> = LazyLock::new(|| {
    // INVARIANT: a constant pattern, exercised by the tests.
    Regex::new(
        r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?$",
    )
    .expect("constant pattern compiles")
});

/// PEP 503: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Reads pinned dependencies from `(path, text)` files; lists every unpinned one.
pub fn dependencies(files: &[(String, String)]) -> Result<Vec<Dependency>, SbomError> {
    let mut found = Vec::new();
    let mut unpinned = Vec::new();
    for (path, text) in files {
        let file_name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        if file_name.ends_with(".lock") {
            let parsed: toml::Table =
                text.parse()
                    .map_err(|err: toml::de::Error| SbomError::BadLock {
                        file: path.clone(),
                        message: err.message().to_owned(),
                    })?;
            for package in parsed
                .get("package")
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
            {
                match (
                    package.get("name").and_then(toml::Value::as_str),
                    package.get("version").and_then(toml::Value::as_str),
                ) {
                    (Some(name), Some(version)) => found.push(Dependency {
                        name: normalize_name(name),
                        version: version.to_owned(),
                        source: path.clone(),
                    }),
                    (Some(name), None) => unpinned.push(format!("{path}: `{name}` has no version")),
                    _ => {}
                }
            }
            continue;
        }
        for (line_idx, raw) in text.lines().enumerate() {
            let line = raw.split(" #").next().unwrap_or(raw).trim();
            if line.is_empty()
                || line.starts_with('#')
                || line.starts_with("-r ")
                || line.starts_with("-c ")
                || line.starts_with("--")
            {
                continue;
            }
            let place = format!("{path}:{}", line_idx + 1);
            if line.starts_with("-e ") || line.contains("://") || line.contains(" @ ") {
                unpinned.push(format!(
                    "{place} `{line}` (an editable or URL requirement has no version)"
                ));
                continue;
            }
            let Some(caps) = REQUIREMENT.captures(line) else {
                unpinned.push(format!("{place} `{line}` (not a requirement)"));
                continue;
            };
            let name = caps.get(1).map_or("", |m| m.as_str());
            let spec: String = caps
                .get(2)
                .map_or("", |m| m.as_str())
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let pinned = spec
                .strip_prefix("===")
                .or_else(|| spec.strip_prefix("=="))
                .filter(|version| {
                    !version.is_empty() && !version.contains(['*', ',', '<', '>', '!', '~', '='])
                });
            match pinned {
                Some(version) => found.push(Dependency {
                    name: normalize_name(name),
                    version: version.to_owned(),
                    source: place,
                }),
                None => unpinned.push(format!("{place} `{line}`")),
            }
        }
    }
    if !unpinned.is_empty() {
        return Err(SbomError::Unpinned(unpinned));
    }
    found.sort();
    found.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    Ok(found)
}

/// The CycloneDX 1.6 document.
pub fn cyclonedx(
    name: &str,
    created: &str,
    documentation: &VersionManifest,
    dependencies: &[Dependency],
) -> Value {
    let card = documentation.model_card.as_ref();
    let datasets: Vec<Value> = documentation
        .training_data
        .iter()
        .enumerate()
        .map(|(idx, source)| {
            let mut data = json!({"type": "dataset", "name": source.name.clone().unwrap_or_else(|| format!("dataset-{idx}"))});
            if let Some(location) = &source.location {
                data["contents"] = json!({"url": location});
            }
            if source.personal_data == Some(true) {
                data["sensitiveData"] = json!(["personal data"]);
            }
            let mut component = json!({
                "type": "data",
                "bom-ref": format!("dataset-{idx}"),
                "name": source.name.clone().unwrap_or_else(|| format!("dataset-{idx}")),
                "data": [data],
            });
            if let Some(hex) = source.digest.as_deref().and_then(|digest| digest.strip_prefix("sha256:")) {
                component["hashes"] = json!([{"alg": "SHA-256", "content": hex}]);
            }
            if let Some(licence) = &source.licence {
                component["licenses"] = json!([{"license": {"name": licence}}]);
            }
            component
        })
        .collect();
    let mut considerations = serde_json::Map::new();
    if let Some(intended_use) = &documentation.intended_use {
        considerations.insert("useCases".into(), json!([intended_use]));
    }
    if let Some(limitations) = card.and_then(|card| card.limitations.as_ref()) {
        considerations.insert("technicalLimitations".into(), json!([limitations]));
    }
    if let Some(ethics) = card.and_then(|card| card.ethical_considerations.as_ref()) {
        considerations.insert("ethicalConsiderations".into(), json!([{"name": ethics}]));
    }
    let metrics: Vec<Value> = documentation
        .metrics
        .iter()
        .map(|metric| json!({"type": metric.name, "value": metric.value.to_string()}))
        .collect();
    let mut model_card = json!({
        "bom-ref": "model-card",
        "modelParameters": {"datasets": (0..datasets.len()).map(|idx| json!({"ref": format!("dataset-{idx}")})).collect::<Vec<_>>()},
    });
    if !metrics.is_empty() {
        model_card["quantitativeAnalysis"] = json!({"performanceMetrics": metrics});
    }
    if !considerations.is_empty() {
        model_card["considerations"] = Value::Object(considerations);
    }
    let mut model = json!({"type": "machine-learning-model", "bom-ref": "model", "name": name, "modelCard": model_card});
    if let Some(version) = &documentation.version {
        model["version"] = json!(version);
    }
    if let Some(licence) = &documentation.licence {
        model["licenses"] = json!([{"license": {"name": licence}}]);
    }
    if let Some(description) = card.and_then(|card| card.description.as_ref()) {
        model["description"] = json!(description);
    }
    let libraries: Vec<Value> = dependencies
        .iter()
        .map(|dependency| {
            let purl = format!("pkg:pypi/{}@{}", dependency.name, dependency.version);
            json!({"type": "library", "bom-ref": purl, "name": dependency.name, "version": dependency.version, "purl": purl})
        })
        .collect();
    let depends_on: Vec<Value> = libraries
        .iter()
        .map(|library| library["bom-ref"].clone())
        .collect();
    let mut components = libraries;
    components.extend(datasets);
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {"timestamp": created, "component": model, "tools": {"components": [{"type": "application", "name": "steward"}]}},
        "components": components,
        "dependencies": [{"ref": "model", "dependsOn": depends_on}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> Vec<(String, String)> {
        vec![("requirements.txt".to_owned(), text.to_owned())]
    }

    #[test]
    fn pinned_requirements_are_read_and_normalised() {
        let deps = dependencies(&files("# comment\nScikit_Learn==1.5.2\nnumpy == 2.1.0 ; python_version >= '3.10'\n--index-url https://x\n-r other.txt\npandas[performance]===2.2.3  # pinned\n")).unwrap();
        let names: Vec<String> = deps
            .iter()
            .map(|dep| format!("{}@{}", dep.name, dep.version))
            .collect();
        assert_eq!(names, ["numpy@2.1.0", "pandas@2.2.3", "scikit-learn@1.5.2"]);
    }

    #[test]
    fn every_unpinned_dependency_is_named() {
        let err = dependencies(&files(
            "requests>=2\nflask\ntorch==2.*\n-e ./local\nnumpy==1.26.4\nfoo @ https://x/foo.whl\n",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependencies must be pinned (`name==version`); unpinned: requirements.txt:1 `requests>=2`; requirements.txt:2 `flask`; requirements.txt:3 `torch==2.*`; requirements.txt:4 `-e ./local` (an editable or URL requirement has no version); requirements.txt:6 `foo @ https://x/foo.whl` (an editable or URL requirement has no version)"
        );
    }

    #[test]
    fn lock_files_are_read() {
        let lock = "[[package]]\nname = \"Jinja2\"\nversion = \"3.1.4\"\n\n[[package]]\nname = \"markupsafe\"\nversion = \"2.1.5\"\n";
        let deps = dependencies(&[("uv.lock".to_owned(), lock.to_owned())]).unwrap();
        assert_eq!(
            deps.iter().map(|dep| dep.name.as_str()).collect::<Vec<_>>(),
            ["jinja2", "markupsafe"]
        );
        assert!(matches!(
            dependencies(&[("uv.lock".to_owned(), "[[package".to_owned())]),
            Err(SbomError::BadLock { .. })
        ));
    }
}
