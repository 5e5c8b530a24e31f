//! `steward package push` and `pull`: moving an OCI layout to and from the server, blob by
//! blob, so that the version's id is its manifest digest and a pulled layout is the pushed
//! one, byte for byte.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};
use steward_package::inspect::{BlobRef, inspect};
use steward_package::{GOVERNANCE_ARTIFACT_TYPE, MODEL_ARTIFACT_TYPE};

use crate::client::Client;

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs")
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn read_blob(layout: &Path, digest: &str) -> anyhow::Result<Vec<u8>> {
    let path = blob_path(layout, digest);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let actual = steward_core::domain::Digest::of_bytes(&bytes);
    anyhow::ensure!(
        actual.as_str() == digest,
        "{} hashes to `{actual}`, not its name",
        path.display()
    );
    Ok(bytes)
}

/// Finds the model manifest (by tag, or the only one) and its governance referrer.
fn find_manifests(layout: &Path, tag: Option<&str>) -> anyhow::Result<(String, Vec<u8>, Vec<u8>)> {
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(
        &std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", index_path.display()))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let models: Vec<&Value> = entries
        .iter()
        .filter(|entry| entry["artifactType"] == MODEL_ARTIFACT_TYPE)
        .filter(|entry| {
            tag.is_none_or(|tag| entry["annotations"]["org.opencontainers.image.ref.name"] == tag)
        })
        .collect();
    let model = match models.as_slice() {
        [model] => *model,
        [] => anyhow::bail!(
            "{} has no ModelPack manifest{}",
            index_path.display(),
            tag.map(|tag| format!(" tagged `{tag}`"))
                .unwrap_or_default()
        ),
        _ => anyhow::bail!(
            "{} has several ModelPack manifests; name one with --tag",
            index_path.display()
        ),
    };
    let model_digest = model["digest"]
        .as_str()
        .context("manifest descriptor without digest")?
        .to_owned();
    let tag = model["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or("latest")
        .to_owned();
    let manifest = read_blob(layout, &model_digest)?;
    for entry in entries
        .iter()
        .filter(|entry| entry["artifactType"] == GOVERNANCE_ARTIFACT_TYPE)
    {
        let digest = entry["digest"].as_str().unwrap_or_default();
        let governance = read_blob(layout, digest)?;
        let parsed: Value = serde_json::from_slice(&governance).unwrap_or(Value::Null);
        if parsed["subject"]["digest"] == model_digest.as_str() {
            return Ok((tag, manifest, governance));
        }
    }
    anyhow::bail!(
        "{} has no governance referrer for {model_digest}; build it with `steward package build`",
        layout.display()
    )
}

fn encode(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

fn decode(what: &str, value: &Value) -> anyhow::Result<Vec<u8>> {
    base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        value.as_str().unwrap_or_default(),
    )
    .with_context(|| format!("{what} from the server"))
}

fn all_blobs(facts: &steward_package::inspect::PackageFacts) -> Vec<&BlobRef> {
    let mut blobs: Vec<&BlobRef> = vec![
        &facts.config,
        &facts.governance_config,
        &facts.governance_document,
    ];
    blobs.extend(facts.governance_extra.iter());
    blobs.extend(facts.layers.iter());
    blobs
}

/// A `.tar` path names the single-file form of a package.
pub fn is_archive(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "tar")
}

/// A temporary folder beside `out` (same file system), removed when dropped.
pub fn staging_dir(out: &Path) -> anyhow::Result<tempfile::TempDir> {
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".steward-package-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))
}

/// Bound on what a package archive may unpack to.
pub const ARCHIVE_BYTES_MAX: u64 = 1 << 40;

pub async fn push(
    client: &Client,
    layout: &Path,
    model: &str,
    tag: Option<&str>,
) -> anyhow::Result<Value> {
    if is_archive(layout) {
        let staging = staging_dir(layout)?;
        let unpacked = staging.path().join("layout");
        steward_package::archive::extract_archive(layout, &unpacked, ARCHIVE_BYTES_MAX)?;
        return Box::pin(push(client, &unpacked, model, tag)).await;
    }
    let (unit, name) = model
        .split_once('/')
        .with_context(|| format!("model `{model}` must be written UNIT/MODEL"))?;
    let (tag, manifest, governance) = find_manifests(layout, tag)?;
    let facts = inspect(&manifest, &governance)?;
    let progress = crate::progress::Progress::bytes(
        "uploading",
        all_blobs(&facts).iter().map(|blob| blob.size).sum(),
    );
    for blob in all_blobs(&facts) {
        // Weights are sealed as they arrive, so their plaintext never reaches the server's disk.
        let seal = if steward_package::classify::is_weight_media_type(&blob.media_type) {
            "?seal=true"
        } else {
            ""
        };
        client
            .put_file(
                &format!("/api/v1/blobs/{}{seal}", blob.digest),
                &blob_path(layout, blob.digest.as_str()),
                &progress,
            )
            .await?;
    }
    progress.finish();
    let body =
        json!({"manifest": encode(&manifest), "governance": encode(&governance), "tag": tag});
    Ok(client
        .post(&format!("/api/v1/models/{unit}/{name}/packages"), &body)
        .await?)
}

pub async fn pull(client: &Client, digest: &str, out: &Path) -> anyhow::Result<Value> {
    if is_archive(out) {
        if out.exists() {
            anyhow::bail!(
                "{} already exists; packages are never written over",
                out.display()
            );
        }
        let staging = staging_dir(out)?;
        let layout = staging.path().join("layout");
        let mut summary = Box::pin(pull(client, digest, &layout)).await?;
        steward_package::archive::write_archive(&layout, out)?;
        summary["layout"] = json!(out.display().to_string());
        return Ok(summary);
    }
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        anyhow::bail!("{} already exists and is not empty", out.display());
    }
    let package = client
        .get(&format!("/api/v1/versions/{digest}/package"))
        .await?;
    let manifest = decode("manifest", &package["manifest"])?;
    let governance = decode("governance manifest", &package["governance"])?;
    let facts = inspect(&manifest, &governance)?;
    anyhow::ensure!(
        facts.manifest_digest.as_str() == digest,
        "the server sent a manifest that hashes to `{}`, not `{digest}`",
        facts.manifest_digest
    );
    let blobs_dir = out.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs_dir)
        .with_context(|| format!("creating {}", blobs_dir.display()))?;
    for (bytes, blob_digest) in [
        (&manifest, &facts.manifest_digest),
        (&governance, &facts.governance_digest),
    ] {
        std::fs::write(blob_path(out, blob_digest.as_str()), bytes)?;
    }
    let progress = crate::progress::Progress::bytes(
        "downloading",
        all_blobs(&facts).iter().map(|blob| blob.size).sum(),
    );
    for blob in all_blobs(&facts) {
        client
            .download(
                &format!("/api/v1/blobs/{}", blob.digest),
                &blob_path(out, blob.digest.as_str()),
                blob.digest.as_str(),
                blob.size,
                &progress,
            )
            .await?;
    }
    progress.finish();
    let tag = package["tag"].as_str().unwrap_or("latest");
    std::fs::write(
        out.join("index.json"),
        steward_package::index_json(
            tag,
            (&facts.manifest_digest, manifest.len() as u64),
            (&facts.governance_digest, governance.len() as u64),
        ),
    )?;
    std::fs::write(out.join("oci-layout"), steward_package::oci_layout_json())?;
    Ok(
        json!({"digest": digest, "tag": tag, "layout": out.display().to_string(), "blobs": all_blobs(&facts).len() + 2}),
    )
}

/// Bound on advisory files read from one folder.
pub const ADVISORY_FILES_MAX: usize = 200_000;

/// `steward advisories scan`: the SBOM's PyPI libraries against OSV records.
pub fn scan(
    layout: &Path,
    folder: &Path,
    fail_on: &str,
    output: crate::Output,
) -> anyhow::Result<std::process::ExitCode> {
    use steward_package::advisories::{self, Severity};
    let threshold = Severity::parse(fail_on)
        .with_context(|| format!("--fail-on `{fail_on}` must be low, medium, high or critical"))?;
    let (_, _, governance) = find_manifests(layout, None)?;
    let governance: Value = serde_json::from_slice(&governance)?;
    let sbom_digest = governance["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|layer| layer["mediaType"] == steward_package::sbom::SBOM_MEDIA_TYPE)
        .and_then(|layer| layer["digest"].as_str())
        .with_context(|| {
            format!(
                "{} has no SBOM; rebuild it with `steward package build`",
                layout.display()
            )
        })?;
    let sbom: Value = serde_json::from_slice(&read_blob(layout, sbom_digest)?)?;
    let dependencies: Vec<steward_package::sbom::Dependency> = sbom["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|component| component["purl"].as_str())
        .filter_map(|purl| purl.strip_prefix("pkg:pypi/"))
        .filter_map(|rest| rest.split_once('@'))
        .map(|(name, version)| steward_package::sbom::Dependency {
            name: name.to_owned(),
            version: version.to_owned(),
            source: "sbom".to_owned(),
        })
        .collect();
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (name, bytes) in read_advisory_files(folder)? {
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|err| err.to_string())
            .and_then(|text| advisories::parse(text).map_err(|err| err.to_string()));
        match parsed {
            Ok(record) => records.push(record),
            Err(err) => problems.push(format!("{name}: {err}")),
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "{} advisory file(s) are not OSV records: {}",
        problems.len(),
        problems.join("; ")
    );
    let findings = advisories::scan(&dependencies, &records);
    let blocking: Vec<&advisories::Finding> = findings
        .iter()
        .filter(|finding| finding.severity.blocks(threshold))
        .collect();
    let rows: Vec<Value> = findings
        .iter()
        .map(|finding| json!({"package": finding.package, "version": finding.version, "advisory": finding.advisory, "severity": finding.severity.name(), "fixed": finding.fixed, "summary": finding.summary}))
        .collect();
    let report = json!({"dependencies": dependencies.len(), "advisories": records.len(), "findings": rows.len(), "blocking": blocking.len(), "fail_on": threshold.name(), "items": rows});
    crate::commands::print_value(
        output,
        &report,
        &["package", "version", "advisory", "severity", "fixed"],
    );
    if blocking.is_empty() {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    for finding in blocking {
        eprintln!(
            "blocked: {} {} is affected by {} ({}){}",
            finding.package,
            finding.version,
            finding.advisory,
            finding.severity.name(),
            finding
                .fixed
                .as_ref()
                .map(|fixed| format!("; fixed in {fixed}"))
                .unwrap_or_else(|| "; no fixed version yet".to_owned())
        );
    }
    Ok(std::process::ExitCode::from(1))
}

/// Verifies a layout's signature: every blob re-hashed, then the signed file list against
/// the layers.
pub fn verify_layout(layout: &Path, key: &p256::ecdsa::VerifyingKey) -> anyhow::Result<usize> {
    let (_, manifest, governance) = find_manifests(layout, None)?;
    let facts = inspect(&manifest, &governance)?;
    for blob in all_blobs(&facts) {
        let path = blob.path.as_deref().unwrap_or(blob.media_type.as_str());
        read_blob(layout, blob.digest.as_str()).with_context(|| format!("blob of `{path}`"))?;
    }
    let bundle_ref = facts
        .governance_extra
        .iter()
        .find(|blob| blob.media_type == steward_package::signing::BUNDLE_MEDIA_TYPE)
        .context("the package is not signed")?;
    let bundle: Value = serde_json::from_slice(&read_blob(layout, bundle_ref.digest.as_str())?)?;
    let (n_files, _) =
        steward_package::signing::verify_package(&facts, &bundle, std::slice::from_ref(key))?;
    if let Some(provenance) = facts
        .governance_extra
        .iter()
        .find(|blob| blob.media_type == steward_package::provenance::PROVENANCE_MEDIA_TYPE)
    {
        let envelope: Value =
            serde_json::from_slice(&read_blob(layout, provenance.digest.as_str())?)?;
        steward_package::provenance::verify(
            &envelope,
            std::slice::from_ref(key),
            &facts.manifest_digest,
        )
        .context("the package's SLSA provenance")?;
    }
    Ok(n_files)
}

/// Bounds on the bytes of one advisory record, and of all records of one source.
pub const ADVISORY_RECORD_BYTES_MAX: u64 = 4 << 20;
pub const ADVISORY_SOURCE_BYTES_MAX: u64 = 4 << 30;

/// OSV records from a folder of `*.json` files or a zip of them (an OSV database export such
/// as `PyPI/all.zip`), in name order. A file that is not JSON is named in the error.
pub fn read_advisories(source: &Path) -> anyhow::Result<Vec<Value>> {
    read_advisory_files(source)?
        .into_iter()
        .map(|(name, bytes)| {
            serde_json::from_slice::<Value>(&bytes).with_context(|| format!("{name} is not JSON"))
        })
        .collect()
}

/// The `*.json` files of a folder or zip, as `(name, bytes)` in name order.
pub fn read_advisory_files(source: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut named: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |name: String, bytes: Vec<u8>| -> anyhow::Result<()> {
        if named.len() >= ADVISORY_FILES_MAX {
            anyhow::bail!(
                "{} holds more than {ADVISORY_FILES_MAX} advisories",
                source.display()
            );
        }
        named.push((name, bytes));
        Ok(())
    };
    if source.is_file() && source.extension().is_some_and(|ext| ext == "zip") {
        let file =
            std::fs::File::open(source).with_context(|| format!("reading {}", source.display()))?;
        let mut total = 0u64;
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
            .with_context(|| format!("{} is not a zip archive", source.display()))?;
        for index in 0..archive.len() {
            let mut entry = archive
                .by_index(index)
                .with_context(|| format!("{}: entry {index}", source.display()))?;
            let name = entry
                .name()
                .with_context(|| format!("{}: entry {index} has no valid name", source.display()))?
                .into_owned();
            if !entry.is_file() || !name.ends_with(".json") {
                continue;
            }
            if entry.size() > ADVISORY_RECORD_BYTES_MAX {
                anyhow::bail!(
                    "{}: `{name}` is larger than {ADVISORY_RECORD_BYTES_MAX} bytes",
                    source.display()
                );
            }
            let mut bytes = Vec::new();
            // The declared size is the archive's word; the bytes are counted as they inflate.
            std::io::Read::read_to_end(
                &mut std::io::Read::take(&mut entry, ADVISORY_RECORD_BYTES_MAX + 1),
                &mut bytes,
            )
            .with_context(|| format!("{}: reading `{name}`", source.display()))?;
            if bytes.len() as u64 > ADVISORY_RECORD_BYTES_MAX {
                anyhow::bail!(
                    "{}: `{name}` inflates to more than {ADVISORY_RECORD_BYTES_MAX} bytes",
                    source.display()
                );
            }
            total += bytes.len() as u64;
            if total > ADVISORY_SOURCE_BYTES_MAX {
                anyhow::bail!(
                    "{} holds more than {ADVISORY_SOURCE_BYTES_MAX} bytes of advisories",
                    source.display()
                );
            }
            push(format!("{}:{name}", source.display()), bytes)?;
        }
    } else {
        let entries = std::fs::read_dir(source).with_context(|| {
            format!(
                "reading {} (a folder of OSV files or a .zip)",
                source.display()
            )
        })?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                if std::fs::metadata(&path)?.len() > ADVISORY_RECORD_BYTES_MAX {
                    anyhow::bail!(
                        "{} is larger than {ADVISORY_RECORD_BYTES_MAX} bytes",
                        path.display()
                    );
                }
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                push(path.display().to_string(), bytes)?;
            }
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(path: &Path, entries: &[(&str, &str)]) {
        let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(text.as_bytes()).unwrap();
        }
        writer.finish().unwrap();
    }

    #[test]
    fn advisories_come_from_an_osv_zip_export_or_a_folder_alike() {
        let dir = tempfile::tempdir().unwrap();
        let record = r#"{"id": "PYSEC-2024-1", "affected": []}"#;
        let export = dir.path().join("all.zip");
        zip_of(
            &export,
            &[
                ("PYSEC-2024-2.json", r#"{"id": "PYSEC-2024-2"}"#),
                ("PYSEC-2024-1.json", record),
                ("README.md", "not a record"),
            ],
        );
        let from_zip = read_advisories(&export).unwrap();
        assert_eq!(from_zip.len(), 2);
        assert_eq!(from_zip[0]["id"], "PYSEC-2024-1", "name order");
        let folder = dir.path().join("osv");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("PYSEC-2024-1.json"), record).unwrap();
        std::fs::write(
            folder.join("PYSEC-2024-2.json"),
            r#"{"id": "PYSEC-2024-2"}"#,
        )
        .unwrap();
        assert_eq!(read_advisories(&folder).unwrap(), from_zip);

        let broken = dir.path().join("broken.zip");
        zip_of(&broken, &[("GHSA-x.json", "{not json")]);
        let err = format!("{:#}", read_advisories(&broken).unwrap_err());
        assert!(err.contains("broken.zip:GHSA-x.json is not JSON"), "{err}");
        let big = dir.path().join("big.zip");
        let padding = " ".repeat(5 << 20);
        zip_of(
            &big,
            &[(
                "GHSA-big.json",
                &format!("{{\"id\": \"GHSA-big\"{padding}}}"),
            )],
        );
        let err = format!("{:#}", read_advisories(&big).unwrap_err());
        assert!(
            err.contains("GHSA-big.json") && err.contains("4194304 bytes"),
            "{err}"
        );
        std::fs::write(dir.path().join("fake.zip"), "not a zip").unwrap();
        let err = format!(
            "{:#}",
            read_advisories(&dir.path().join("fake.zip")).unwrap_err()
        );
        assert!(err.contains("is not a zip archive"), "{err}");
    }
}
