//! Building a registration from a model directory: every file becomes an artifact (digest,
//! size), `steward.yaml` supplies the documentation, and an MLflow `MLmodel` or a Hugging
//! Face `README.md` front matter fills what it can.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use steward_core::domain::Digest;
use steward_core::import;
use steward_core::manifest::{Artifact, VersionManifest};

/// Files a model directory may hold, at most.
pub const MODEL_FILES_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// Only `steward.yaml` (and the files).
    Plain,
    /// An MLflow model directory (`MLmodel`).
    Mlflow,
    /// A Hugging Face model repository (`README.md` model card).
    Huggingface,
}

pub struct Registration {
    pub manifest: VersionManifest,
    /// `(artifact, path on disk)`, to upload before registering.
    pub files: Vec<(Artifact, PathBuf)>,
    pub warnings: Vec<String>,
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(root, &path, out)?;
        } else if file_type.is_file() {
            out.push(path);
        }
        if out.len() > MODEL_FILES_MAX {
            anyhow::bail!("{} holds more than {MODEL_FILES_MAX} files", root.display());
        }
    }
    Ok(())
}

/// The version's documentation from a model directory: imported from `MLmodel` or a Hugging
/// Face card per `layout`, then `steward.yaml` over it, then `version` over that. Returns it
/// with the importers' warnings; artifacts are not listed.
pub fn documentation(
    dir: &Path,
    layout: Layout,
    version: Option<&str>,
) -> anyhow::Result<(VersionManifest, Vec<String>)> {
    let mut warnings = Vec::new();
    let read = |name: &str| -> anyhow::Result<Option<String>> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    };
    let mut manifest = match layout {
        Layout::Plain => VersionManifest::default(),
        Layout::Mlflow => {
            let text = read("MLmodel")?
                .with_context(|| format!("{} has no MLmodel file", dir.display()))?;
            let imported = import::from_mlflow(&text)?;
            warnings.extend(imported.warnings);
            imported.manifest
        }
        Layout::Huggingface => {
            let text = read("README.md")?
                .with_context(|| format!("{} has no README.md model card", dir.display()))?;
            let imported = import::from_huggingface_card(&text)?;
            warnings.extend(imported.warnings);
            imported.manifest
        }
    };
    if let Some(text) = read("steward.yaml")? {
        manifest = import::merge(manifest, import::manifest_from_yaml(&text)?);
    }
    if let Some(version) = version {
        manifest.version = Some(version.to_owned());
    }
    Ok((manifest, warnings))
}

pub fn from_dir(dir: &Path, layout: Layout, version: Option<&str>) -> anyhow::Result<Registration> {
    let (manifest, warnings) = documentation(dir, layout, version)?;
    let mut manifest = manifest;
    let mut paths = Vec::new();
    walk(dir, dir, &mut paths)?;
    let mut files = Vec::new();
    for path in paths {
        let relative = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        if relative == "steward.yaml" {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let artifact = Artifact {
            name: relative,
            digest: Digest::of_bytes(&bytes).to_string(),
            size_bytes: bytes.len() as u64,
            media_type: None,
        };
        files.push((artifact, path));
    }
    manifest.artifacts = files.iter().map(|(artifact, _)| artifact.clone()).collect();
    Ok(Registration {
        manifest,
        files,
        warnings,
    })
}
