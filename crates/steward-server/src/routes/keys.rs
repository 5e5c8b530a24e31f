//! Key-encryption key administration: status, rotation (re-wrap every data key under a new
//! version, the ciphertext untouched) and retirement of versions no data key needs.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_policy::Resource;

use super::registry::event;
use super::{JsonBody, commit, created, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::keys::KeyError;
use crate::state::App;

fn key_error(err: KeyError) -> ApiError {
    match err {
        KeyError::StillInUse { .. } | KeyError::Current(_) | KeyError::VersionMissing { .. } => {
            ApiError::Conflict(err.to_string())
        }
        other => ApiError::internal(std::io::Error::other(other.to_string())),
    }
}

async fn status(app: &App) -> Result<Value, ApiError> {
    let available = app.keys.versions().await.map_err(key_error)?;
    let current = app.keys.current_version().await.map_err(key_error)?;
    let counts = app.store.sealed_key_versions().await?;
    let mut versions: Vec<Value> = Vec::new();
    let mut numbers: Vec<i64> = available
        .iter()
        .map(|version| i64::from(*version))
        .collect();
    for (key_id, version, _) in &counts {
        if key_id == app.keys.key_id() && !numbers.contains(version) {
            numbers.push(*version);
        }
    }
    numbers.sort_unstable();
    for version in numbers {
        let data_keys = counts
            .iter()
            .find(|(key_id, v, _)| key_id == app.keys.key_id() && *v == version)
            .map_or(0, |(_, _, count)| *count);
        versions.push(json!({
            "version": version,
            "available": available.iter().any(|v| i64::from(*v) == version),
            "data_keys": data_keys,
        }));
    }
    let other_keys: Vec<Value> = counts
        .iter()
        .filter(|(key_id, _, _)| key_id != app.keys.key_id())
        .map(|(key_id, version, count)| json!({"key_id": key_id, "version": version, "data_keys": count}))
        .collect();
    Ok(json!({
        "provider": app.keys.provider(),
        "key_id": app.keys.key_id(),
        "current_version": current,
        "versions": versions,
        "other_keys": other_keys,
    }))
}

pub async fn show(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    Ok(ok(status(&app).await?))
}

/// Adds a key version and re-wraps every data key under it, in one audited transaction that
/// also records the version (with its check value). The re-wrapping happens under the write
/// lock, so no retirement can interleave; a data key that does not unwrap is left where it
/// is and named in the answer, never lost. Safe to repeat.
pub async fn rotate(
    State(app): State<App>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let key_id = app.keys.key_id().to_owned();
    let previous = app.keys.current_version().await.map_err(key_error)?;
    let known_max = app
        .store
        .key_versions(&key_id)
        .await?
        .iter()
        .map(|row| row.version as u32)
        .max()
        .unwrap_or(0);
    let version = app.keys.rotate(known_max).await.map_err(key_error)?;
    let record = steward_store::KeyVersion {
        key_id: key_id.clone(),
        version: i64::from(version),
        check_value: app.keys.check_value(version).await.map_err(key_error)?,
        created_at: app.now(),
        retired_at: None,
    };
    let mut tx = app.store.begin().await?;
    if !tx.insert_key_version(&record).await? {
        return Err(ApiError::Conflict(format!(
            "key version {version} of `{key_id}` was made elsewhere at the same time; rotate again"
        )));
    }
    let mut count = 0u64;
    let mut failures = Vec::new();
    for row in app.store.sealed_blobs().await? {
        if row.key_id != key_id || row.key_version == i64::from(version) {
            continue;
        }
        match app.keys.rewrap(&row.wrapped_key, &row.digest).await {
            // Guarded by the version read: a row another rotation moved is left to it.
            Ok(new) => {
                if tx
                    .rewrap_sealed_blob(
                        &row.digest,
                        row.key_version,
                        i64::from(new.version),
                        &new.text,
                    )
                    .await?
                {
                    count += 1;
                }
            }
            Err(err) => failures.push(json!({"digest": row.digest, "problem": err.to_string()})),
        }
    }
    let payload = json!({
        "key_id": key_id, "previous_version": previous, "version": version,
        "data_keys_rewrapped": count, "failures": failures,
    });
    let entry = commit(
        &app,
        tx,
        event(&caller, format!("key:{key_id}"), payload.clone(), &decision),
    )
    .await?;
    let mut body = payload;
    body["audit"] = receipt(&entry);
    Ok(created(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retirement {
    /// Retire every key version up to this one: it must be below the current version, and no
    /// data key may be wrapped under any of them.
    pub version: u32,
}

/// Destroys the key material of every version up to `version` once no data key is wrapped
/// under any of them (as Vault's `min_decryption_version` does).
pub async fn retire(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<Retirement>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let current = app.keys.current_version().await.map_err(key_error)?;
    if body.version >= current {
        return Err(key_error(KeyError::Current(current)));
    }
    let available = app.keys.versions().await.map_err(key_error)?;
    let retiring: Vec<u32> = available
        .iter()
        .copied()
        .filter(|version| *version <= body.version)
        .collect();
    if retiring.is_empty() {
        return Err(key_error(KeyError::VersionMissing {
            key_id: app.keys.key_id().to_owned(),
            version: body.version,
        }));
    }
    // The count is read under the write lock, and sealing and rotation wrap under that same
    // lock with the current version, which is above these: nothing can be wrapped under them
    // after this transaction.
    let mut tx = app.store.begin().await?;
    let count = tx
        .count_wrapped_up_to(app.keys.key_id(), i64::from(body.version))
        .await?;
    if count > 0 {
        return Err(key_error(KeyError::StillInUse {
            version: body.version,
            count,
        }));
    }
    tx.retire_key_versions_up_to(app.keys.key_id(), i64::from(body.version), &app.now())
        .await?;
    let payload =
        json!({"key_id": app.keys.key_id(), "up_to_version": body.version, "retired": retiring});
    // Record first, then destroy: if the commit fails the keys still exist (nothing
    // happened); if destroying fails after the commit, the answer is an error, and the next
    // start destroys them (the database says they are retired), here and on every replica.
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("key:{}", app.keys.key_id()),
            payload.clone(),
            &decision,
        ),
    )
    .await?;
    app.keys.retire(body.version).await.map_err(key_error)?;
    let mut body = payload;
    body["audit"] = receipt(&entry);
    Ok(created(body))
}
