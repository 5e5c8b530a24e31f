//! Model packaging: a model directory becomes an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) with CNCF ModelPack media types, and the version's
//! documentation travels beside it as an OCI referrer whose `subject` is the model manifest.
//!
//! Invariants:
//! - Reproducible: the same files and documentation give byte-identical blobs, hence the
//!   same manifest digest. Files are taken in byte order of their paths, every timestamp is
//!   `PackOptions::created` (default the Unix epoch), owners are 0 and modes are 0644 or 0755.
//! - Every blob is written under the SHA-256 of its bytes, streamed (never whole in memory),
//!   through a temporary file renamed into place.
//! - Nothing outside the model directory is read: symbolic links are refused, not followed.

pub mod advisories;
pub mod archive;
pub mod classify;
pub mod inspect;
pub mod pii;
pub mod provenance;
pub mod sbom;
pub mod signing;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use steward_core::domain::Digest;
use steward_core::manifest::VersionManifest;

use classify::{LayerKind, classify, weight_format};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MODEL_ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
pub const MODEL_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
/// Steward's governance document (the version's documentation), attached as a referrer.
pub const GOVERNANCE_ARTIFACT_TYPE: &str = "application/vnd.steward.governance.v1+json";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The file in a model directory that holds its documentation; it is not a layer.
pub const PACKAGE_MANIFEST_FILE: &str = "steward.yaml";
/// Bounds on what one package may hold.
pub const FILES_MAX: usize = 100_000;
pub const PATH_BYTES_MAX: usize = 4096;
const COPY_CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{0}` is a symbolic link; packages take only regular files from inside the model directory"
    )]
    Symlink(String),
    #[error("`{0}` is not valid UTF-8; file names in a package must be")]
    NonUtf8Path(PathBuf),
    #[error("the model directory holds more than {FILES_MAX} files")]
    TooManyFiles,
    #[error("path `{0}` is longer than {PATH_BYTES_MAX} bytes")]
    PathTooLong(String),
    #[error("the model directory has no files to pack")]
    Empty,
    #[error("output `{0}` already exists and is not empty; packages are never written over")]
    OutputExists(PathBuf),
    #[error("tag `{0}` is not a valid OCI reference name")]
    BadTag(String),
    #[error(transparent)]
    Sbom(#[from] sbom::SbomError),
    #[error("`{0}` is under `.steward/`, which packages reserve for what Steward adds")]
    Reserved(String),
    #[error(
        "`{0}` is not a regular file (a pipe, socket or device); packages take regular files only"
    )]
    NotRegular(String),
    #[error(
        "`{0}` is not UTF-8 text, so it cannot be scanned for personal data; convert it to UTF-8 or move it out of the package"
    )]
    NotText(String),
    #[error("`{0}` is not UTF-8 text or is too large to read as a dependency file")]
    BadDependencyFile(String),
    #[error(
        "`{0}` is larger than {SCANNED_FILE_BYTES_MAX} bytes and cannot be scanned for personal data; split it or move it out of the package"
    )]
    TooLargeToScan(String),
    #[error("the input/output schema is malformed: {}", .0.join("; "))]
    Schema(Vec<String>),
    #[error("the classification policy refuses this package: {}", .0.join("; "))]
    Classification(Vec<String>),
    #[error(
        "a classification policy applies per business unit, so the package needs `--name UNIT/MODEL`, not `{0}`"
    )]
    NoBusinessUnit(String),
    #[error("not a package archive: {0}")]
    BadArchive(String),
    #[error("signing: {0}")]
    Sign(#[from] signing::SignError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct PackOptions {
    /// `descriptor.name` of the ModelPack config, e.g. `retail/credit-risk`.
    pub name: String,
    /// The tag in `index.json` (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// RFC 3339 time recorded as the creation time (reproducible builds pin it).
    pub created: String,
    /// The organisation's classification policy: its rules for every environment are
    /// checked against the declared schema before anything is written (P6).
    pub classification_policy: Option<steward_core::schema::ClassificationPolicy>,
}

/// Checks the declared schema, and the classification policy's rules that apply everywhere
/// for the package's business unit; every problem is listed.
pub fn check_classification(
    documentation: &VersionManifest,
    options: &PackOptions,
) -> Result<(), PackError> {
    if let Some(schema) = &documentation.schema {
        let problems = schema.problems();
        if !problems.is_empty() {
            return Err(PackError::Schema(problems));
        }
    }
    let Some(policy) = &options.classification_policy else {
        return Ok(());
    };
    let Some((unit, _)) = options.name.split_once('/') else {
        return Err(PackError::NoBusinessUnit(options.name.clone()));
    };
    let violations = policy.violations(
        documentation.schema.as_ref(),
        unit,
        steward_core::schema::Scope::Everywhere,
    );
    if violations.is_empty() {
        Ok(())
    } else {
        Err(PackError::Classification(
            violations.into_iter().map(|v| v.message).collect(),
        ))
    }
}

/// One packed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub path: String,
    pub media_type: &'static str,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Packed {
    /// The model manifest's digest: the package's identity.
    pub manifest_digest: Digest,
    pub governance_digest: Digest,
    pub layers: Vec<Layer>,
}

/// Packs `model_dir` into a new OCI image layout at `out`.
pub fn pack(
    model_dir: &Path,
    out: &Path,
    documentation: &VersionManifest,
    options: &PackOptions,
    signer: Option<&dyn signing::Signer>,
) -> Result<Packed, PackError> {
    pack_with_progress(model_dir, out, documentation, options, signer, &|_, _| {})
}

/// A reader that reports the bytes read through it, adding to a running count.
struct Counting<'a, R> {
    inner: R,
    done: &'a std::cell::Cell<u64>,
    total: u64,
    progress: &'a dyn Fn(u64, u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done.set(self.done.get() + n as u64);
        (self.progress)(self.done.get(), self.total);
        Ok(n)
    }
}

/// `pack`, calling `progress(bytes packed, bytes in all)` as model files are read.
pub fn pack_with_progress(
    model_dir: &Path,
    out: &Path,
    documentation: &VersionManifest,
    options: &PackOptions,
    signer: Option<&dyn signing::Signer>,
    progress: &dyn Fn(u64, u64),
) -> Result<Packed, PackError> {
    if !is_valid_tag(&options.tag) {
        return Err(PackError::BadTag(options.tag.clone()));
    }
    check_classification(documentation, options)?;
    let files = list_files(model_dir)?;
    if files.is_empty() {
        return Err(PackError::Empty);
    }
    let mut total = 0u64;
    for (_, absolute, _) in &files {
        total += std::fs::metadata(absolute).map_err(io(absolute))?.len();
    }
    let done = std::cell::Cell::new(0u64);
    let layout = Layout::create(out)?;
    let mut layers = Vec::with_capacity(files.len());
    let mut report = RedactionReport::default();
    let mut dependency_files = Vec::new();
    for (path, absolute, executable) in &files {
        let kind = classify(path);
        if sbom::is_dependency_file(path) {
            let text = read_text(absolute, sbom::DEPENDENCY_FILE_BYTES_MAX)?;
            dependency_files.push((path.clone(), text));
        }
        let (digest, size) = if is_scanned(kind, path) {
            // Datasets and documents are scanned for personal data and packed redacted.
            let redacted = redact_file(absolute, path, &mut report)?;
            let written = layout.write_blob(&redacted)?;
            done.set(done.get() + std::fs::metadata(absolute).map_err(io(absolute))?.len());
            progress(done.get(), total);
            written
        } else {
            let file = std::fs::File::open(absolute).map_err(io(absolute))?;
            let counting = Counting {
                inner: file,
                done: &done,
                total,
                progress,
            };
            layout.write_blob_from(counting, absolute)?
        };
        layers.push((
            Layer {
                path: path.clone(),
                media_type: kind.raw_media_type(),
                digest,
                size,
            },
            *executable,
        ));
    }
    // The redaction report travels in the package: counts per file and entity, no values.
    let report_bytes = to_json_bytes(&serde_json::to_value(&report).unwrap_or(Value::Null));
    let (report_digest, report_size) = layout.write_blob(&report_bytes)?;
    layers.push((
        Layer {
            path: REDACTION_REPORT_PATH.to_owned(),
            media_type: LayerKind::Doc.raw_media_type(),
            digest: report_digest,
            size: report_size,
        },
        false,
    ));
    let weight_paths: Vec<&str> = layers
        .iter()
        .filter(|(layer, _)| classify(&layer.path) == LayerKind::Weight)
        .map(|(layer, _)| layer.path.as_str())
        .collect();
    let config = model_config(
        documentation,
        options,
        weight_format(&weight_paths),
        &layers,
    );
    let config_bytes = to_json_bytes(&config);
    let (config_digest, config_size) = layout.write_blob(&config_bytes)?;
    let layer_descriptors: Vec<Value> = layers
        .iter()
        .map(|(layer, executable)| {
            let metadata = json!({
                "name": layer.path, "mode": if *executable { 0o755 } else { 0o644 }, "uid": 0, "gid": 0,
                "size": layer.size, "mtime": options.created, "typeflag": 48,
            });
            json!({
                "mediaType": layer.media_type,
                "digest": layer.digest.as_str(),
                "size": layer.size,
                "annotations": {
                    "org.cncf.model.filepath": layer.path,
                    "org.cncf.model.file.metadata+json": metadata.to_string(),
                    "org.cncf.model.file.mediatype.untested": "true",
                    "org.opencontainers.image.title": layer.path,
                },
            })
        })
        .collect();
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "org.opencontainers.image.created".into(),
        json!(options.created),
    );
    annotations.insert("org.opencontainers.image.title".into(), json!(options.name));
    if let Some(version) = &documentation.version {
        annotations.insert("org.opencontainers.image.version".into(), json!(version));
    }
    if let Some(licence) = &documentation.licence {
        annotations.insert("org.opencontainers.image.licenses".into(), json!(licence));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": MODEL_ARTIFACT_TYPE,
        "config": {"mediaType": MODEL_CONFIG_MEDIA_TYPE, "digest": config_digest.as_str(), "size": config_size},
        "layers": layer_descriptors,
        "annotations": annotations,
    });
    let manifest_bytes = to_json_bytes(&manifest);
    let (manifest_digest, manifest_size) = layout.write_blob(&manifest_bytes)?;

    // The documentation, as a referrer of the model manifest: it names the model, the model
    // does not name it, so the model's identity is its files and ModelPack config alone.
    let mut governance_doc = documentation.clone();
    governance_doc.artifacts.clear();
    let governance_bytes = steward_core::canonical::to_string(
        &serde_json::to_value(&governance_doc).unwrap_or(Value::Null),
    )
    .into_bytes();
    let (governance_doc_digest, governance_doc_size) = layout.write_blob(&governance_bytes)?;
    let (empty_digest, empty_size) = layout.write_blob(b"{}")?;
    // The SBOM travels in the same referrer: every pinned dependency, or the build fails.
    let dependencies = sbom::dependencies(&dependency_files)?;
    let bom = sbom::cyclonedx(
        &options.name,
        &options.created,
        documentation,
        &dependencies,
    );
    let (sbom_digest, sbom_size) = layout.write_blob(&to_json_bytes(&bom))?;
    let mut governance_layers = vec![
        json!({"mediaType": GOVERNANCE_ARTIFACT_TYPE, "digest": governance_doc_digest.as_str(), "size": governance_doc_size}),
        json!({"mediaType": sbom::SBOM_MEDIA_TYPE, "digest": sbom_digest.as_str(), "size": sbom_size}),
    ];
    // The signature covers the packed bytes (after redaction), file by file, in the
    // OpenSSF model-signing format: unpacking the layers and running `model_signing verify`
    // checks the same thing the server checks on push.
    if let Some(key) = signer {
        // The documentation (usage terms included) and the SBOM are signed too, under
        // fixed names, so the whole governance content is covered.
        let mut files: Vec<(String, String)> = layers
            .iter()
            .map(|(layer, _)| (layer.path.clone(), layer.digest.hex().to_owned()))
            .collect();
        files.push((
            signing::SIGNED_GOVERNANCE_PATH.to_owned(),
            governance_doc_digest.hex().to_owned(),
        ));
        files.push((
            signing::SIGNED_SBOM_PATH.to_owned(),
            sbom_digest.hex().to_owned(),
        ));
        files.push((
            signing::SIGNED_CONFIG_PATH.to_owned(),
            config_digest.hex().to_owned(),
        ));
        let files = signing::sorted_files(files);
        let bundle = signing::sign_files(&options.name, &files, key)?;
        let (bundle_digest, bundle_size) = layout.write_blob(&to_json_bytes(&bundle))?;
        governance_layers.push(json!({"mediaType": signing::BUNDLE_MEDIA_TYPE, "digest": bundle_digest.as_str(), "size": bundle_size}));
        // SLSA provenance of this build, about the model manifest and every packed file.
        let packed_layers: Vec<Layer> = layers.iter().map(|(layer, _)| layer.clone()).collect();
        let statement = provenance::statement(&provenance::BuildFacts {
            name: &options.name,
            tag: &options.tag,
            created: &options.created,
            manifest_digest: &manifest_digest,
            layers: &packed_layers,
            dependencies: &dependencies,
            classification_checked: options.classification_policy.is_some(),
        });
        let envelope = provenance::sign(&statement, key)?;
        let (provenance_digest, provenance_size) = layout.write_blob(&to_json_bytes(&envelope))?;
        governance_layers.push(json!({
            "mediaType": provenance::PROVENANCE_MEDIA_TYPE, "digest": provenance_digest.as_str(), "size": provenance_size,
            "annotations": {"in-toto.io/predicate-type": provenance::SLSA_PREDICATE_TYPE},
        }));
    }
    let governance = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": GOVERNANCE_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty_digest.as_str(), "size": empty_size},
        "layers": governance_layers,
        "subject": {"mediaType": MANIFEST_MEDIA_TYPE, "artifactType": MODEL_ARTIFACT_TYPE, "digest": manifest_digest.as_str(), "size": manifest_size},
        "annotations": {"org.opencontainers.image.created": options.created},
    });
    let governance_bytes = to_json_bytes(&governance);
    let (governance_digest, governance_size) = layout.write_blob(&governance_bytes)?;
    layout.write_file(
        "index.json",
        &index_json(
            &options.tag,
            (&manifest_digest, manifest_size),
            (&governance_digest, governance_size),
        ),
    )?;
    layout.write_file("oci-layout", &oci_layout_json())?;
    Ok(Packed {
        manifest_digest,
        governance_digest,
        layers: layers.into_iter().map(|(layer, _)| layer).collect(),
    })
}

/// Where the redaction report sits in a package.
pub const REDACTION_REPORT_PATH: &str = ".steward/redaction-report.json";
/// Text files larger than this are refused rather than packed unscanned.
pub const SCANNED_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
const SCANNED_EXTENSIONS: &[&str] = &[
    "txt", "csv", "tsv", "jsonl", "json", "md", "log", "xml", "html", "yaml", "yml",
];

/// Counts of what redaction replaced, per file and in total; never a value.
#[derive(Debug, Default, serde::Serialize)]
pub struct RedactionReport {
    pub files: std::collections::BTreeMap<String, std::collections::BTreeMap<&'static str, u64>>,
    pub totals: std::collections::BTreeMap<&'static str, u64>,
}

fn read_text(absolute: &Path, bytes_max: usize) -> Result<String, PackError> {
    let size = std::fs::metadata(absolute).map_err(io(absolute))?.len();
    let bad = || PackError::BadDependencyFile(absolute.display().to_string());
    if size > bytes_max as u64 {
        return Err(bad());
    }
    String::from_utf8(std::fs::read(absolute).map_err(io(absolute))?).map_err(|_| bad())
}

fn is_scanned(kind: LayerKind, path: &str) -> bool {
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(kind, LayerKind::Dataset | LayerKind::Doc)
        && SCANNED_EXTENSIONS.contains(&extension.as_str())
}

fn redact_file(
    absolute: &Path,
    path: &str,
    report: &mut RedactionReport,
) -> Result<Vec<u8>, PackError> {
    let size = std::fs::metadata(absolute).map_err(io(absolute))?.len();
    if size > SCANNED_FILE_BYTES_MAX {
        return Err(PackError::TooLargeToScan(path.to_owned()));
    }
    let bytes = std::fs::read(absolute).map_err(io(absolute))?;
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(PackError::NotText(path.to_owned()));
    };
    let csv = path.to_ascii_lowercase().ends_with(".csv");
    let (redacted, counts) = pii::redact(&text, csv);
    for (entity, n) in &counts {
        *report.totals.entry(entity).or_insert(0) += n;
    }
    if !counts.is_empty() {
        report.files.insert(path.to_owned(), counts);
    }
    Ok(redacted.into_bytes())
}

/// The layout's `index.json`: the model manifest under `tag`, then its governance referrer.
/// Pull writes the same bytes, so a pulled layout is identical to the pushed one.
pub fn index_json(tag: &str, manifest: (&Digest, u64), governance: (&Digest, u64)) -> Vec<u8> {
    to_json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE, "artifactType": MODEL_ARTIFACT_TYPE,
                "digest": manifest.0.as_str(), "size": manifest.1,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            },
            {
                "mediaType": MANIFEST_MEDIA_TYPE, "artifactType": GOVERNANCE_ARTIFACT_TYPE,
                "digest": governance.0.as_str(), "size": governance.1,
            },
        ],
    }))
}

/// The `oci-layout` file.
pub fn oci_layout_json() -> Vec<u8> {
    to_json_bytes(&json!({"imageLayoutVersion": "1.0.0"}))
}

fn model_config(
    documentation: &VersionManifest,
    options: &PackOptions,
    format: Option<&str>,
    layers: &[(Layer, bool)],
) -> Value {
    let card = documentation.model_card.as_ref();
    let mut descriptor = serde_json::Map::new();
    descriptor.insert("createdAt".into(), json!(options.created));
    descriptor.insert("name".into(), json!(options.name));
    if let Some(version) = &documentation.version {
        descriptor.insert("version".into(), json!(version));
    }
    if let Some(licence) = &documentation.licence {
        descriptor.insert("licenses".into(), json!([licence]));
    }
    if let Some(authors) = card
        .map(|card| &card.authors)
        .filter(|authors| !authors.is_empty())
    {
        descriptor.insert("authors".into(), json!(authors));
    }
    if let Some(description) = card.and_then(|card| card.description.as_ref()) {
        descriptor.insert("description".into(), json!(description));
    }
    let mut config = serde_json::Map::new();
    if let Some(format) = format {
        config.insert("format".into(), json!(format));
    }
    // Raw layers are stored uncompressed, so each layer's diffId is its digest.
    let diff_ids: Vec<&str> = layers
        .iter()
        .map(|(layer, _)| layer.digest.as_str())
        .collect();
    json!({"descriptor": descriptor, "config": config, "modelfs": {"type": "layers", "diffIds": diff_ids}})
}

fn to_json_bytes(value: &Value) -> Vec<u8> {
    // INVARIANT: serde_json cannot fail on a `Value`; field order is the insertion order
    // above (serde_json `preserve_order`), which is fixed, so the bytes are reproducible.
    serde_json::to_vec(value).unwrap_or_default()
}

/// OCI `ref.name`: components of `[A-Za-z0-9]` joined by `-._:@+` (or `--`), `/` between.
fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.split('/').all(|component| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:@+".contains(b))
        })
}

/// Every regular file under `root` except `steward.yaml` and `model.sig`: `(relative path, path, executable)`,
/// in byte order of the relative path.
fn list_files(root: &Path) -> Result<Vec<(String, PathBuf, bool)>, PackError> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let Some(relative) = relative.to_str() else {
                return Err(PackError::NonUtf8Path(path));
            };
            let relative = relative.replace(std::path::MAIN_SEPARATOR, "/");
            let file_type = entry.file_type().map_err(io(&path))?;
            if file_type.is_symlink() {
                return Err(PackError::Symlink(relative));
            }
            if file_type.is_dir() {
                pending.push(path);
                continue;
            }
            // `steward.yaml` becomes the governance document; a directory signature
            // (`model.sig`) is superseded by the package signature over the packed bytes.
            if relative == PACKAGE_MANIFEST_FILE || relative == signing::SIGNATURE_FILE {
                continue;
            }
            if relative.starts_with(".steward/") {
                return Err(PackError::Reserved(relative));
            }
            if !file_type.is_file() {
                return Err(PackError::NotRegular(relative));
            }
            if relative.len() > PATH_BYTES_MAX {
                return Err(PackError::PathTooLong(relative));
            }
            #[cfg(unix)]
            let executable = {
                use std::os::unix::fs::PermissionsExt;
                entry.metadata().map_err(io(&path))?.permissions().mode() & 0o111 != 0
            };
            #[cfg(not(unix))]
            let executable = false;
            files.push((relative, path, executable));
            if files.len() > FILES_MAX {
                return Err(PackError::TooManyFiles);
            }
        }
    }
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(files)
}

/// An image layout being written.
struct Layout {
    root: PathBuf,
    blobs: PathBuf,
}

impl Layout {
    fn create(root: &Path) -> Result<Layout, PackError> {
        if root.exists() && std::fs::read_dir(root).map_err(io(root))?.next().is_some() {
            return Err(PackError::OutputExists(root.to_owned()));
        }
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        Ok(Layout {
            root: root.to_owned(),
            blobs,
        })
    }

    fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), PackError> {
        self.write_blob_from(bytes, &self.root)
    }

    /// Streams `reader` into `blobs/sha256/<hex>` through a temporary file.
    fn write_blob_from(
        &self,
        mut reader: impl Read,
        source: &Path,
    ) -> Result<(Digest, u64), PackError> {
        let temp = self.root.join(".blob.tmp");
        let mut file = std::fs::File::create(&temp).map_err(io(&temp))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut chunk = vec![0u8; COPY_CHUNK_BYTES];
        loop {
            let n = reader.read(&mut chunk).map_err(io(source))?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            file.write_all(&chunk[..n]).map_err(io(&temp))?;
            size += n as u64;
        }
        file.sync_all().map_err(io(&temp))?;
        let digest = Digest::from_sha256(hasher.finalize().into());
        let target = self.blobs.join(digest.hex());
        std::fs::rename(&temp, &target).map_err(io(&target))?;
        Ok((digest, size))
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), PackError> {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))
    }
}

#[cfg(test)]
mod tests;
