//! What the data plane needs from the control plane: where every alias points, and the
//! bytes of a deployed version's model file, loaded only after the whole version is
//! re-verified (P8: every blob re-hashed, sealed ones decrypted and authenticated, the
//! signature and provenance checked against the keys trusted now).

use steward_core::domain::Digest;
use steward_store::AliasMove;

use crate::error::ApiError;
use crate::state::App;

/// Bound on a model file loaded into memory to serve.
pub const MODEL_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;

/// The latest move of every alias.
pub async fn current_aliases(app: &App) -> Result<Vec<AliasMove>, ApiError> {
    Ok(app.store.current_aliases().await?)
}

/// A deployed version's model file: `(version label, artifact name, bytes)`. The artifact
/// is the version's only one whose name `pick` accepts; none, or several, is an error.
pub async fn verified_artifact(
    app: &App,
    digest: &str,
    pick: impl Fn(&str) -> bool,
) -> Result<(String, String, Vec<u8>), String> {
    let version = app
        .store
        .version(digest)
        .await
        .map_err(|err| err.to_string())?
        .ok_or_else(|| format!("version `{digest}` is not registered"))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&version.manifest).map_err(|err| err.to_string())?;
    let candidates: Vec<(String, String)> = manifest["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|artifact| {
            let name = artifact["name"].as_str()?;
            let digest = artifact["digest"].as_str()?;
            pick(name).then(|| (name.to_owned(), digest.to_owned()))
        })
        .collect();
    let [(name, blob)] = candidates.as_slice() else {
        return Err(format!(
            "version `{digest}` has {} model file(s) this runtime can serve; it needs exactly one",
            candidates.len()
        ));
    };
    let verification = crate::routes::registry::verify_contents(app, &version)
        .await
        .map_err(|err| err.to_string())?;
    if !verification.failures.is_empty() {
        return Err(format!(
            "version `{digest}` failed verification, so it is not loaded: {}",
            verification.failure_text()
        ));
    }
    let blob = Digest::parse(blob).map_err(|err| err.to_string())?;
    let bytes = crate::routes::blobs::read_blob(app, &blob, MODEL_BYTES_MAX)
        .await
        .map_err(|err| format!("`{name}`: {err}"))?;
    Ok((version.version_label, name.clone(), bytes))
}
