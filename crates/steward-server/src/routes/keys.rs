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
    let key_id = app.keys.key_id().to_owned();
    let available = app.keys.versions().await.map_err(key_error)?;
    let recorded = app.store.key_versions(&key_id).await?;
    let counts = app.store.sealed_key_versions().await?;
    let current = recorded
        .iter()
        .filter(|row| row.retired_at.is_none())
        .map(|row| row.version)
        .max();
    let versions: Vec<Value> = recorded
        .iter()
        .map(|row| {
            let data_keys = counts
                .iter()
                .find(|(id, version, _)| *id == key_id && *version == row.version)
                .map_or(0, |(_, _, count)| *count);
            json!({
                "version": row.version,
                "created_at": row.created_at,
                "retired_at": row.retired_at,
                "available": available.iter().any(|v| i64::from(*v) == row.version),
                "data_keys": data_keys,
            })
        })
        .collect();
    let other_keys: Vec<Value> = counts
        .iter()
        .filter(|(id, _, _)| *id != key_id)
        .map(|(id, version, count)| json!({"key_id": id, "version": version, "data_keys": count}))
        .collect();
    Ok(json!({
        "provider": app.keys.provider(),
        "key_id": key_id,
        "current_version": current,
        "versions": versions,
        "other_keys": other_keys,
    }))
}

/// The newest version the database records as usable.
async fn recorded_current(app: &App) -> Result<u32, ApiError> {
    app.store
        .key_versions(app.keys.key_id())
        .await?
        .iter()
        .filter(|row| row.retired_at.is_none())
        .map(|row| row.version as u32)
        .max()
        .ok_or_else(|| ApiError::Conflict("no usable key version is recorded".into()))
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

/// Adds a key version and re-wraps every data key under it. The version is recorded first,
/// with its check value, in its own audited transaction (if that fails, a local key file made
/// for it is removed: nothing can be wrapped under an unrecorded version). The data keys are
/// then re-wrapped outside the lock (for Vault, one `rewrap` call each) and written in a second
/// audited transaction, each guarded by the version it was read at and by the new version
/// still being usable. A data key that does not re-wrap stays where it is and is named.
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
    let recorded = app.store.key_versions(&key_id).await?;
    let previous = recorded
        .iter()
        .filter(|row| row.retired_at.is_none())
        .map(|row| row.version)
        .max();
    let known_max = recorded
        .iter()
        .map(|row| row.version as u32)
        .max()
        .unwrap_or(0);
    let version = app.keys.rotate(known_max).await.map_err(key_error)?;
    let recorded = async {
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
        commit(
            &app,
            tx,
            event(
                &caller,
                format!("key:{key_id}"),
                json!({"key_id": key_id, "previous_version": previous, "version": version, "step": "version recorded"}),
                &decision,
            ),
        )
        .await
    }
    .await;
    if let Err(err) = recorded {
        let _ = app.keys.discard(version).await;
        return Err(err);
    }
    let mut rewrapped = Vec::new();
    let mut failures = Vec::new();
    for row in app.store.sealed_blobs().await? {
        if row.key_id != key_id || row.key_version == i64::from(version) {
            continue;
        }
        match app
            .keys
            .rewrap(&row.wrapped_key, &row.digest, version)
            .await
        {
            Ok(new) => rewrapped.push((row, new)),
            Err(err) => failures.push(json!({"digest": row.digest, "problem": err.to_string()})),
        }
    }
    let mut tx = app.store.begin().await?;
    let mut count = 0u64;
    if tx.key_version_usable(&key_id, i64::from(version)).await? {
        for (row, new) in &rewrapped {
            // Guarded by the version read: a row another rotation moved is left to it.
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
    let current = recorded_current(&app).await?;
    if body.version >= current {
        return Err(key_error(KeyError::Current(current)));
    }
    let retiring: Vec<u32> = app
        .store
        .key_versions(app.keys.key_id())
        .await?
        .iter()
        .filter(|row| row.retired_at.is_none() && row.version <= i64::from(body.version))
        .map(|row| row.version as u32)
        .collect();
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
    // Nothing left to retire in the database: finish destroying what an earlier retirement
    // recorded (it is safe to repeat), without a new event.
    if retiring.is_empty() {
        tx.rollback().await?;
        app.keys.retire(body.version).await.map_err(key_error)?;
        return Ok(created(
            json!({"key_id": app.keys.key_id(), "up_to_version": body.version, "retired": []}),
        ));
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
