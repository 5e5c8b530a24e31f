//! Blob upload and download, and sealing (encryption at rest, P5).
//!
//! A blob is stored either in plaintext (`blobs/sha256/<digest>`) or sealed
//! (`blobs/sealed/<ciphertext digest>` plus a `sealed_blobs` row with its wrapped data key).
//! Weight layers are sealed: `package push` uploads them with `?seal=true`, so their
//! plaintext never reaches the disk, and registering a package seals any weight layer that
//! arrived in plaintext and then removes the plaintext file.
//!
//! Invariants:
//! - Once a blob is sealed it is never stored in plaintext again: a later plain upload of the
//!   same bytes is checked and discarded.
//! - A sealed blob is served only after its ciphertext re-hashes to the recorded digest; each
//!   segment is authenticated (AES-GCM tag) and the plaintext re-hashed as it streams.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::domain::Digest;
use steward_policy::Resource;
use steward_store::SealedBlob;
use steward_store::blob::BlobError;
use steward_store::sealed::{ALGORITHM, DataKey};

use super::registry::event;
use super::{ApiPath, ApiQuery, commit, created, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Store the blob encrypted at rest under a fresh data key (model weights).
    pub seal: Option<bool>,
}

fn blob_error(digest: &Digest) -> impl Fn(BlobError) -> ApiError + '_ {
    move |err| match err {
        BlobError::NotFound(_) => ApiError::NotFound(format!("blob `{digest}`")),
        BlobError::TooLarge { limit } => ApiError::PayloadTooLarge(limit),
        BlobError::DigestMismatch { .. } | BlobError::Upload(_) => {
            ApiError::BadRequest(err.to_string())
        }
        other => ApiError::internal(other),
    }
}

fn key_error(err: crate::keys::KeyError) -> ApiError {
    ApiError::internal(std::io::Error::other(err.to_string()))
}

/// A blob sealed on disk whose data key is not yet recorded: the key is wrapped and the row
/// written inside the transaction that records it (`record_sealed`).
pub(crate) struct PendingSeal {
    digest: Digest,
    key: DataKey,
    sealed: steward_store::blob::Sealed,
}

impl PendingSeal {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Removes the sealed file when it was not recorded (a concurrent sealing won, or the
    /// registration failed).
    pub async fn discard(&self, app: &App) {
        let path = app.blobs.sealed_path(&self.sealed.ciphertext_digest);
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// The version new data keys are wrapped under, read under the lock: the newest version the
/// database records and has not retired, provided this server's key provider holds the same
/// key material (its check value). Retirement takes the same lock and never retires the
/// newest version, so nothing is recorded under a destroyed key; a provider that is behind or
/// different (another replica's rotation, an unrecorded version) refuses instead of wrapping.
pub(crate) async fn wrapping_version(
    app: &App,
    tx: &mut steward_store::AuditedTx,
) -> Result<u32, ApiError> {
    let key_id = app.keys.key_id();
    let Some((version, check_value)) = tx.latest_usable_key_version(key_id).await? else {
        return Err(ApiError::internal(std::io::Error::other(format!(
            "no usable version of `{key_id}` is recorded; restart the server to record its keys"
        ))));
    };
    let version = version as u32;
    let ours = app.keys.check_value(version).await.map_err(key_error)?;
    if ours != check_value {
        return Err(ApiError::internal(std::io::Error::other(format!(
            "key version {version} of `{key_id}` here is not the one the database records; this server's keys are behind or different (copy keys/kek from the server that rotated, or check the key provider)"
        ))));
    }
    Ok(version)
}

/// Wraps the data key under `wrapping_version` inside `tx` and records the sealed blob.
/// `None`: a concurrent sealing of the same blob was recorded first; its row stands and this
/// sealed file is to be discarded.
pub(crate) async fn record_sealed(
    app: &App,
    tx: &mut steward_store::AuditedTx,
    pending: &PendingSeal,
) -> Result<Option<SealedBlob>, ApiError> {
    let version = wrapping_version(app, tx).await?;
    let wrapped = app
        .keys
        .wrap(&pending.key, pending.digest.as_str(), version)
        .await
        .map_err(key_error)?;
    let row = SealedBlob {
        digest: pending.digest.to_string(),
        ciphertext_digest: pending.sealed.ciphertext_digest.to_string(),
        ciphertext_size: pending.sealed.ciphertext_size as i64,
        algorithm: ALGORITHM.to_owned(),
        key_id: app.keys.key_id().to_owned(),
        key_version: i64::from(wrapped.version),
        wrapped_key: wrapped.text,
        sealed_at: app.now(),
    };
    Ok(tx.insert_sealed_blob(&row).await?.then_some(row))
}

/// What the audit trail says about a sealed blob (never a key, wrapped or not).
pub(crate) fn sealed_json(row: &SealedBlob) -> Value {
    json!({
        "algorithm": row.algorithm, "ciphertext_digest": row.ciphertext_digest,
        "ciphertext_size": row.ciphertext_size, "key_id": row.key_id, "key_version": row.key_version,
    })
}

pub async fn upload_blob(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let expected = Digest::parse(&digest).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Any,
        Facts::default(),
    )
    .await?;
    let limit = app.config.blob_bytes_max;
    let already_sealed = app.store.sealed_blob(expected.as_str()).await?;
    let mut pending = None;
    let size = if already_sealed.is_some() {
        // Stored sealed already: check the bytes are what they claim, keep nothing.
        check_discard(body, &expected, limit).await?
    } else if query.seal == Some(true) {
        let key = DataKey::generate().map_err(ApiError::internal)?;
        let sealed = app
            .blobs
            .put_sealed(body.into_data_stream(), &expected, limit, &key)
            .await
            .map_err(blob_error(&expected))?;
        let size = sealed.size;
        pending = Some(PendingSeal {
            digest: expected.clone(),
            key,
            sealed,
        });
        size
    } else {
        let (_, size) = app
            .blobs
            .put(body.into_data_stream(), Some(&expected), limit)
            .await
            .map_err(blob_error(&expected))?;
        size
    };
    let result = async {
        let mut tx = app.store.begin().await?;
        let inserted = tx
            .insert_blob(expected.as_str(), size, &caller.name, &app.now())
            .await?;
        let mut payload = json!({"size_bytes": size, "new": inserted});
        let mut recorded = None;
        if let Some(pending) = &pending {
            recorded = record_sealed(&app, &mut tx, pending).await?;
        }
        // What is stored now: ours, or the sealing that was recorded first.
        let row = match &recorded {
            Some(row) => Some(row.clone()),
            None if pending.is_some() || already_sealed.is_some() => {
                app.store.sealed_blob(expected.as_str()).await?
            }
            None => None,
        };
        if let Some(row) = &row {
            payload["sealed"] = sealed_json(row);
        }
        let entry = commit(
            &app,
            tx,
            event(
                &caller,
                format!("blob:{expected}"),
                payload.clone(),
                &decision,
            ),
        )
        .await?;
        Ok::<_, ApiError>((payload, entry, recorded.is_some(), row.is_some()))
    }
    .await;
    let (mut payload, entry, recorded, sealed_now) = match result {
        Ok(done) => done,
        Err(err) => {
            if let Some(pending) = &pending {
                pending.discard(&app).await;
            }
            return Err(err);
        }
    };
    if let Some(pending) = &pending
        && !recorded
    {
        pending.discard(&app).await;
    }
    // A plain upload that raced with a sealing of the same bytes: the sealing may have
    // committed while this file was being written; no plaintext copy may outlive it.
    let sealed_now = sealed_now
        || (pending.is_none() && app.store.sealed_blob(expected.as_str()).await?.is_some());
    if sealed_now {
        // Sealed (by this upload or an earlier one): no plaintext copy may outlive it, also
        // one a plain upload racing with the sealing put back.
        app.blobs
            .remove_plaintext(&expected)
            .await
            .map_err(ApiError::internal)?;
    }
    payload["digest"] = json!(expected.as_str());
    payload["audit"] = receipt(&entry);
    Ok(created(payload))
}

/// Reads an upload only to check its digest and size (the blob is already stored).
async fn check_discard(body: Body, expected: &Digest, limit: u64) -> Result<u64, ApiError> {
    use sha2::Digest as _;
    let mut stream = body.into_data_stream();
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::BadRequest(format!("upload was interrupted: {err}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        hasher.update(&chunk);
    }
    let actual = Digest::from_sha256(hasher.finalize().into());
    if actual != *expected {
        return Err(ApiError::BadRequest(
            BlobError::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            }
            .to_string(),
        ));
    }
    Ok(size)
}

/// Seals a blob stored in plaintext (registration of a package whose weights arrived in
/// plaintext). Runs before the registering transaction, so that encrypting gigabytes never
/// holds the write lock; `record_sealed` records it in that transaction, and the caller
/// removes the plaintext file after the commit (`finish_sealing`). `None`: sealed already.
pub(crate) async fn seal_stored(
    app: &App,
    digest: &Digest,
) -> Result<Option<PendingSeal>, ApiError> {
    if app.store.sealed_blob(digest.as_str()).await?.is_some() {
        return Ok(None);
    }
    let key = DataKey::generate().map_err(ApiError::internal)?;
    let sealed = app
        .blobs
        .seal_stored(digest, &key)
        .await
        .map_err(blob_error(digest))?;
    Ok(Some(PendingSeal {
        digest: digest.clone(),
        key,
        sealed,
    }))
}

/// Removes the plaintext files of blobs that were just sealed.
pub(crate) async fn finish_sealing(app: &App, sealed: &[SealedBlob]) -> Result<(), ApiError> {
    for row in sealed {
        let digest = Digest::parse(&row.digest).map_err(ApiError::internal)?;
        app.blobs
            .remove_plaintext(&digest)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(())
}

/// At start: a crash between sealing's commit and the removal of the plaintext leaves a
/// plaintext file behind; remove every such file.
pub async fn remove_sealed_plaintexts(app: &App) -> Result<usize, ApiError> {
    let mut removed = 0;
    for row in app.store.sealed_blobs().await? {
        let digest = Digest::parse(&row.digest).map_err(ApiError::internal)?;
        if app.blobs.path(&digest).exists() {
            app.blobs
                .remove_plaintext(&digest)
                .await
                .map_err(ApiError::internal)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A sealed blob's ciphertext digest and its data key, unwrapped by the key provider.
async fn sealed_key(
    app: &App,
    row: &SealedBlob,
    digest: &Digest,
) -> Result<(Digest, DataKey), String> {
    let ciphertext_digest = Digest::parse(&row.ciphertext_digest).map_err(|err| err.to_string())?;
    let key = app
        .keys
        .unwrap(&row.wrapped_key, digest.as_str())
        .await
        .map_err(|err| err.to_string())?;
    Ok((ciphertext_digest, key))
}

/// A small blob (a manifest, document, SBOM, signature) in memory, verified, whether it is
/// stored in plaintext or sealed: anyone may seal any blob they can upload, so readers never
/// assume which.
pub async fn read_blob(
    app: &App,
    digest: &Digest,
    size_max: u64,
) -> Result<Vec<u8>, std::io::Error> {
    let other = |err: &dyn std::fmt::Display| std::io::Error::other(err.to_string());
    match app
        .store
        .sealed_blob(digest.as_str())
        .await
        .map_err(|err| other(&err))?
    {
        None => app
            .blobs
            .read_verified(digest, size_max)
            .await
            .map_err(|err| other(&err)),
        Some(row) => {
            let (ciphertext_digest, key) = sealed_key(app, &row, digest)
                .await
                .map_err(std::io::Error::other)?;
            app.blobs
                .read_sealed(digest, &ciphertext_digest, key, size_max)
                .await
                .map_err(|err| other(&err))
        }
    }
}

/// Re-checks a stored blob end to end without holding it (P8): plaintext re-hashed, or for a
/// sealed blob the ciphertext re-hashed, the data key unwrapped, every segment authenticated
/// and the plaintext re-hashed. Returns the plaintext size, or what is wrong.
pub async fn verify_stored(app: &App, digest: &Digest) -> Result<u64, String> {
    let row = app
        .store
        .sealed_blob(digest.as_str())
        .await
        .map_err(|err| err.to_string())?;
    let Some(row) = row else {
        return app
            .blobs
            .verify(digest)
            .await
            .map_err(|err| err.to_string());
    };
    let (ciphertext_digest, key) = sealed_key(app, &row, digest).await?;
    app.blobs
        .verify_sealed(digest, &ciphertext_digest)
        .await
        .map_err(|err| err.to_string())?;
    let mut stream = Box::pin(
        app.blobs
            .open_sealed_stream(digest, &ciphertext_digest, key)
            .await
            .map_err(|err| err.to_string())?,
    );
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        size += chunk.map_err(|err| err.to_string())?.len() as u64;
    }
    Ok(size)
}

pub async fn download_blob(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
) -> Result<Response, ApiError> {
    let digest = Digest::parse(&digest).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Any,
        Facts::default(),
    )
    .await?;
    let Some(blob) = app.store.blob(digest.as_str()).await? else {
        return Err(ApiError::NotFound(format!("blob `{digest}`")));
    };
    // Re-hash the whole blob (or its ciphertext) before sending a byte (P8: a mismatch is
    // never served), then stream it; neither step holds the blob in memory.
    let body = match app.store.sealed_blob(digest.as_str()).await? {
        None => {
            app.blobs
                .verify(&digest)
                .await
                .map_err(blob_error(&digest))?;
            Body::from_stream(
                app.blobs
                    .open_stream(&digest)
                    .await
                    .map_err(blob_error(&digest))?,
            )
        }
        Some(row) => {
            let (ciphertext_digest, key) = sealed_key(&app, &row, &digest)
                .await
                .map_err(|err| ApiError::internal(std::io::Error::other(err)))?;
            app.blobs
                .verify_sealed(&digest, &ciphertext_digest)
                .await
                .map_err(blob_error(&digest))?;
            Body::from_stream(
                app.blobs
                    .open_sealed_stream(&digest, &ciphertext_digest, key)
                    .await
                    .map_err(blob_error(&digest))?,
            )
        }
    };
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_LENGTH, blob.size_bytes.to_string()),
    ];
    Ok((headers, body).into_response())
}
