//! Reading a package back: what a pushed model manifest and its governance referrer say,
//! checked against what Steward writes. Pure: bytes in, facts or every problem out.

use serde_json::Value;
use steward_core::domain::Digest;

use crate::{
    EMPTY_MEDIA_TYPE, GOVERNANCE_ARTIFACT_TYPE, MANIFEST_MEDIA_TYPE, MODEL_ARTIFACT_TYPE,
    MODEL_CONFIG_MEDIA_TYPE,
};

/// Bound on a manifest's bytes (OCI registries commonly cap manifests at 4 MiB).
pub const MANIFEST_BYTES_MAX: usize = 4 * 1024 * 1024;
const LAYER_MEDIA_TYPE_PREFIXES: &[&str] = &[
    "application/vnd.cncf.model.weight.",
    "application/vnd.cncf.model.doc.",
    "application/vnd.cncf.model.code.",
    "application/vnd.cncf.model.dataset.",
];

/// A blob a manifest refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `org.cncf.model.filepath`, for layers.
    pub path: Option<String>,
}

/// What a pushed package is, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFacts {
    pub manifest_digest: Digest,
    pub governance_digest: Digest,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
    /// The governance manifest's config (the empty blob) and its first layer, the documentation.
    pub governance_config: BlobRef,
    pub governance_document: BlobRef,
    /// Its other layers (the SBOM).
    pub governance_extra: Vec<BlobRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("package has {} problem(s): {}", .problems.len(), .problems.join("; "))]
pub struct InspectError {
    pub problems: Vec<String>,
}

fn blob_ref(value: &Value, what: &str, problems: &mut Vec<String>) -> Option<BlobRef> {
    let media_type = value["mediaType"].as_str();
    let digest = value["digest"].as_str().map(Digest::parse);
    let size = value["size"].as_u64();
    match (media_type, digest, size) {
        (Some(media_type), Some(Ok(digest)), Some(size)) => Some(BlobRef {
            media_type: media_type.to_owned(),
            digest,
            size,
            path: value["annotations"]["org.cncf.model.filepath"]
                .as_str()
                .map(str::to_owned),
        }),
        (_, Some(Err(err)), _) => {
            problems.push(format!("{what}: {err}"));
            None
        }
        _ => {
            problems.push(format!("{what} needs mediaType, digest and size"));
            None
        }
    }
}

fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Checks a model manifest and its governance referrer, byte for byte as pushed.
pub fn inspect(
    manifest_bytes: &[u8],
    governance_bytes: &[u8],
) -> Result<PackageFacts, InspectError> {
    let mut problems = Vec::new();
    for (what, bytes) in [
        ("manifest", manifest_bytes),
        ("governance manifest", governance_bytes),
    ] {
        if bytes.len() > MANIFEST_BYTES_MAX {
            problems.push(format!(
                "{what} is {} bytes, more than the limit of {MANIFEST_BYTES_MAX}",
                bytes.len()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(InspectError { problems });
    }
    let parse = |what: &str, bytes: &[u8], problems: &mut Vec<String>| match serde_json::from_slice::<
        Value,
    >(bytes)
    {
        Ok(value) if value.is_object() => Some(value),
        Ok(_) => {
            problems.push(format!("{what} is not a JSON object"));
            None
        }
        Err(err) => {
            problems.push(format!("{what} is not JSON: {err}"));
            None
        }
    };
    let manifest_digest = Digest::of_bytes(manifest_bytes);
    let governance_digest = Digest::of_bytes(governance_bytes);
    let (Some(manifest), Some(governance)) = (
        parse("manifest", manifest_bytes, &mut problems),
        parse("governance manifest", governance_bytes, &mut problems),
    ) else {
        return Err(InspectError { problems });
    };
    let expect =
        |value: &Value, field: &str, wanted: &str, what: &str, problems: &mut Vec<String>| {
            if value[field].as_str() != Some(wanted) {
                problems.push(format!(
                    "{what} {field} must be `{wanted}`, not `{}`",
                    value[field].as_str().unwrap_or("")
                ));
            }
        };
    if manifest["schemaVersion"] != 2 || governance["schemaVersion"] != 2 {
        problems.push("schemaVersion must be 2".to_owned());
    }
    expect(
        &manifest,
        "mediaType",
        MANIFEST_MEDIA_TYPE,
        "manifest",
        &mut problems,
    );
    expect(
        &manifest,
        "artifactType",
        MODEL_ARTIFACT_TYPE,
        "manifest",
        &mut problems,
    );
    expect(
        &governance,
        "mediaType",
        MANIFEST_MEDIA_TYPE,
        "governance manifest",
        &mut problems,
    );
    expect(
        &governance,
        "artifactType",
        GOVERNANCE_ARTIFACT_TYPE,
        "governance manifest",
        &mut problems,
    );
    let config = blob_ref(&manifest["config"], "manifest config", &mut problems);
    if let Some(config) = &config
        && config.media_type != MODEL_CONFIG_MEDIA_TYPE
    {
        problems.push(format!(
            "manifest config mediaType must be `{MODEL_CONFIG_MEDIA_TYPE}`, not `{}`",
            config.media_type
        ));
    }
    let mut layers = Vec::new();
    let mut paths = std::collections::BTreeSet::new();
    match manifest["layers"].as_array() {
        Some(items) if !items.is_empty() => {
            for (layer_idx, item) in items.iter().enumerate() {
                let what = format!("layer {layer_idx}");
                let Some(layer) = blob_ref(item, &what, &mut problems) else {
                    continue;
                };
                if !LAYER_MEDIA_TYPE_PREFIXES
                    .iter()
                    .any(|prefix| layer.media_type.starts_with(prefix))
                {
                    problems.push(format!(
                        "{what} mediaType `{}` is not a ModelPack layer type",
                        layer.media_type
                    ));
                }
                match &layer.path {
                    Some(path) if !safe_path(path) => problems.push(format!(
                        "{what} file path `{path}` must be relative, without `..`"
                    )),
                    Some(path)
                        if [crate::signing::SIGNED_GOVERNANCE_PATH, crate::signing::SIGNED_SBOM_PATH, crate::signing::SIGNED_CONFIG_PATH]
                            .contains(&path.as_str()) =>
                    {
                        problems.push(format!("{what} file path `{path}` is reserved for the signed governance content"))
                    }
                    Some(path) if !paths.insert(path.clone()) => {
                        problems.push(format!("{what} file path `{path}` appears twice"))
                    }
                    Some(_) => {}
                    None => {
                        problems.push(format!("{what} has no org.cncf.model.filepath annotation"))
                    }
                }
                layers.push(layer);
            }
        }
        _ => problems.push("manifest has no layers".to_owned()),
    }
    if governance["subject"]["digest"].as_str() != Some(manifest_digest.as_str()) {
        problems.push(format!(
            "governance manifest subject must be the model manifest `{manifest_digest}`"
        ));
    }
    let governance_config = blob_ref(&governance["config"], "governance config", &mut problems);
    if governance_config
        .as_ref()
        .is_some_and(|config| config.media_type != EMPTY_MEDIA_TYPE)
    {
        problems.push(format!(
            "governance config mediaType must be `{EMPTY_MEDIA_TYPE}`"
        ));
    }
    let mut governance_extra = Vec::new();
    let governance_document = match governance["layers"].as_array().map(Vec::as_slice) {
        Some([first, rest @ ..]) => {
            for (layer_idx, layer) in rest.iter().enumerate() {
                let what = format!("governance layer {}", layer_idx + 1);
                if let Some(extra) = blob_ref(layer, &what, &mut problems) {
                    if extra.media_type == crate::sbom::SBOM_MEDIA_TYPE
                        || extra.media_type == crate::signing::BUNDLE_MEDIA_TYPE
                        || extra.media_type == crate::provenance::PROVENANCE_MEDIA_TYPE
                    {
                        governance_extra.push(extra);
                    } else {
                        problems.push(format!(
                            "{what} mediaType `{}` is not one Steward attaches",
                            extra.media_type
                        ));
                    }
                }
            }
            blob_ref(first, "governance document", &mut problems).filter(|document| {
                let ok = document.media_type == GOVERNANCE_ARTIFACT_TYPE;
                if !ok {
                    problems.push(format!(
                        "governance document mediaType must be `{GOVERNANCE_ARTIFACT_TYPE}`"
                    ));
                }
                ok
            })
        }
        _ => {
            problems.push("governance manifest has no layers".to_owned());
            None
        }
    };
    match (config, governance_config, governance_document) {
        (Some(config), Some(governance_config), Some(governance_document))
            if problems.is_empty() =>
        {
            Ok(PackageFacts {
                manifest_digest,
                governance_digest,
                config,
                layers,
                governance_config,
                governance_document,
                governance_extra,
            })
        }
        _ => Err(InspectError { problems }),
    }
}
