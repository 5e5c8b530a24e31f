//! The audit trail over HTTP, and the two operations the CLI also runs offline:
//! `verify_log` (whole chain plus every checkpoint) and `make_checkpoint`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::audit::checkpoint::{Checkpoint, InclusionProofFile, NoteSigner, NoteVerifier};
use steward_core::audit::merkle::{self, Hash};
use steward_core::audit::{Entry, StoredEntry, Verifier, VerifyError, VerifyReport, hmac_value};
use steward_policy::Resource;
use steward_store::{Store, StoreError};

use super::{ApiPath, ApiQuery, JsonBody, created, ok};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

/// Entries are streamed from storage in pages of this many.
const VERIFY_PAGE_ENTRIES: u32 = 20_000;

pub fn entry_json(stored: &StoredEntry) -> Value {
    let entry = Entry::parse(&stored.entry).ok();
    json!({
        "seq": stored.seq, "time": stored.time, "actor": stored.actor, "action": stored.action,
        "subject": stored.subject, "entry_hash": stored.entry_hash,
        "payload": entry.as_ref().map(|entry| entry.payload.clone()),
        "decision": entry.as_ref().map(|entry| entry.decision.clone()),
        "prev_hash": entry.as_ref().map(|entry| entry.prev_hash.clone()),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyLogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] VerifyError),
}

/// Verifies every entry and every checkpoint. The first problem is the error.
///
/// `pinned` are checkpoint notes kept outside the database (by an auditor or a witness):
/// the stored checkpoints can be deleted together with the entries they cover, pinned ones
/// cannot, so a log cut back or rewritten below a pinned size is caught. The end of the log
/// must also match the stored audit head.
///
/// Reading and checking overlap: one task pages entries out of storage into a bounded
/// channel while a blocking thread hashes and checks them, so the whole takes about as long
/// as the slower of the two rather than their sum.
pub async fn verify_log(
    store: &Store,
    origin: &str,
    verifier_key: &NoteVerifier,
    pinned: &[String],
) -> Result<VerifyReport, VerifyLogError> {
    /// Pages in flight between the reader and the checker.
    const PAGES_IN_FLIGHT: usize = 2;
    let mut notes: Vec<(u64, String)> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|checkpoint| (checkpoint.tree_size, checkpoint.note))
        .collect();
    for note in pinned {
        let checkpoint =
            Checkpoint::open(note, std::slice::from_ref(verifier_key)).map_err(|err| {
                VerifyError::Log(format!(
                    "a pinned checkpoint does not verify with the log's key: {err}"
                ))
            })?;
        notes.push((checkpoint.size, note.clone()));
    }
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut verifier = Verifier::new(notes.iter().map(|(size, _)| *size).collect());
    let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel::<Vec<StoredEntry>>(PAGES_IN_FLIGHT);
    let checker = tokio::task::spawn_blocking(move || {
        while let Some(page) = pages_rx.blocking_recv() {
            for stored in &page {
                verifier.push(stored)?;
            }
        }
        Ok::<_, VerifyError>(verifier)
    });
    let read_result = store
        .stream_audit_entries(0, VERIFY_PAGE_ENTRIES as usize, pages_tx)
        .await;
    let checked = checker
        .await
        .map_err(|err| VerifyLogError::Store(StoreError::Backend(Box::new(err))))?;
    read_result?;
    let report = checked?.finish(origin, &notes, std::slice::from_ref(verifier_key))?;
    // Entries cut from the end (after the last checkpoint) leave the head pointing past them.
    if head_seq != report.entries || head_hash != report.last_hash {
        let reason = format!(
            "the stored head says {head_seq} entries ending in {head_hash}, but the log has {} ending in {} (entries were removed, or added outside a transaction)",
            report.entries, report.last_hash
        );
        return Err(VerifyError::Log(reason).into());
    }
    Ok(report)
}

fn leaf_hashes(hex_hashes: &[String]) -> Result<Vec<Hash>, ApiError> {
    hex_hashes
        .iter()
        .map(|text| {
            let bytes = hex::decode(text).map_err(ApiError::internal)?;
            bytes.try_into().map_err(|_| {
                ApiError::Internal(Box::new(std::io::Error::other(
                    "stored entry hash is not 32 bytes",
                )))
            })
        })
        .collect()
}

/// Signs a checkpoint of the log as it is now. Returns `None` if the log is empty or the
/// latest checkpoint already covers it.
///
/// A log must never sign a checkpoint inconsistent with one it signed before (C2SP), nor
/// sign entries it has not checked: the stored leaves must still give the latest signed
/// root, and every newer entry is re-hashed from its bytes and its chain link checked.
pub async fn make_checkpoint(
    store: &Store,
    signer: &NoteSigner,
    origin: &str,
    now: &str,
) -> Result<Option<(u64, String)>, ApiError> {
    let (size, _) = store.audit_head().await?;
    let latest = store.checkpoints().await?.pop();
    let latest_size = latest
        .as_ref()
        .map(|checkpoint| checkpoint.tree_size)
        .unwrap_or(0);
    if size == 0 || size <= latest_size {
        return Ok(None);
    }
    let refuse =
        |reason: String| ApiError::Conflict(format!("refusing to sign a checkpoint: {reason}"));
    let leaves = leaf_hashes(&store.audit_leaf_hashes(size).await?)?;
    if leaves.len() as u64 != size {
        return Err(refuse(format!(
            "the head says {size} entries but {} are stored",
            leaves.len()
        )));
    }
    if let Some(latest) = &latest {
        let signed = Checkpoint::open(&latest.note, &[signer.verifier()])
            .map_err(|err| refuse(format!("the latest checkpoint does not verify: {err}")))?;
        let stored_root = merkle::root_of(&leaves[..latest_size as usize]);
        if signed.size != latest_size || signed.root != stored_root {
            return Err(refuse(format!(
                "the stored entries no longer match the checkpoint signed at size {latest_size}"
            )));
        }
    }
    let mut prev_hash = match latest_size {
        0 => steward_core::audit::GENESIS_PREV_HASH.to_owned(),
        n => hex::encode(leaves[n as usize - 1]),
    };
    for stored in store
        .audit_entries(latest_size, (size - latest_size) as u32)
        .await?
    {
        let leaf = merkle::leaf_hash(stored.entry.as_bytes());
        let entry = Entry::parse(&stored.entry)
            .map_err(|err| refuse(format!("entry {}: {err}", stored.seq)))?;
        if leaves[stored.seq as usize - 1] != leaf
            || entry.prev_hash != prev_hash
            || entry.seq != stored.seq
        {
            return Err(refuse(format!(
                "entry {} does not match its hash or chain link",
                stored.seq
            )));
        }
        prev_hash = hex::encode(leaf);
    }
    let checkpoint = Checkpoint {
        origin: origin.to_owned(),
        size,
        root: merkle::root_of(&leaves),
        extensions: Vec::new(),
    };
    let note = checkpoint.sign(signer).map_err(ApiError::internal)?;
    store.insert_checkpoint(size, &note, now).await?;
    Ok(Some((size, note)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Entries with a greater sequence number are returned.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most `page_items_max` (default 10,000).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

pub async fn events(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let after = u64::try_from(page.after.unwrap_or(0))
        .map_err(|_| ApiError::BadRequest("after must not be negative".into()))?;
    let limit = crate::routes::page_limit(&app, page.limit)?;
    let entries = app.store.audit_entries(after, limit).await?;
    Ok(ok(
        json!({ "items": entries.iter().map(entry_json).collect::<Vec<_>>() }),
    ))
}

pub async fn verify(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    match verify_log(&app.store, &app.config.log_origin, &app.verifier, &[]).await {
        Ok(report) => Ok(ok(
            json!({"ok": true, "entries": report.entries, "checkpoints": report.checkpoints, "root": report.root}),
        )),
        Err(VerifyLogError::Invalid(err)) => Ok(ok(json!({"ok": false, "error": err.to_string()}))),
        Err(VerifyLogError::Store(err)) => Err(err.into()),
    }
}

pub async fn checkpoints(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let items: Vec<Value> = app
        .store
        .checkpoints()
        .await?
        .into_iter()
        .map(|checkpoint| json!({"tree_size": checkpoint.tree_size, "note": checkpoint.note, "created_at": checkpoint.created_at}))
        .collect();
    Ok(ok(
        json!({"public_key": app.verifier.to_string(), "items": items}),
    ))
}

pub async fn create_checkpoint(
    State(app): State<App>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    match make_checkpoint(&app.store, &app.signer, &app.config.log_origin, &app.now()).await? {
        Some((size, note)) => Ok(created(json!({"tree_size": size, "note": note}))),
        None => {
            let latest = app.store.checkpoints().await?.pop();
            Ok((
                StatusCode::OK,
                Json(
                    json!({"tree_size": latest.as_ref().map(|c| c.tree_size), "note": latest.map(|c| c.note), "unchanged": true}),
                ),
            ))
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    pub size: Option<u64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The size of the checkpoint the witness holds.
    #[param(minimum = 1)]
    pub from: u64,
    /// A checkpointed size at least `from` (default: the latest checkpoint).
    #[param(minimum = 1)]
    pub to: Option<u64>,
}

/// RFC 9162 consistency proof from the tree of size `from` to a checkpointed size, with
/// that checkpoint, so a witness holding an older checkpoint can check the log only grew.
pub async fn consistency(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let checkpoints = app.store.checkpoints().await?;
    let target = match query.to {
        Some(size) => checkpoints
            .into_iter()
            .find(|checkpoint| checkpoint.tree_size == size),
        None => checkpoints.into_iter().last(),
    };
    let Some(target) = target else {
        return Err(ApiError::NotFound("checkpoint at that size".into()));
    };
    if query.from == 0 || target.tree_size < query.from {
        return Err(ApiError::BadRequest(format!(
            "from must be in 1..={}, got {}",
            target.tree_size, query.from
        )));
    }
    let leaves = leaf_hashes(&app.store.audit_leaf_hashes(target.tree_size).await?)?;
    let proof = merkle::consistency_proof(&leaves, query.from, target.tree_size)
        .map_err(ApiError::internal)?;
    Ok(ok(json!({
        "from": query.from,
        "to": target.tree_size,
        "proof": proof.iter().map(|hash| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash)).collect::<Vec<_>>(),
        "checkpoint": target.note,
    })))
}

pub async fn proof(
    State(app): State<App>,
    caller: Caller,
    ApiPath(seq): ApiPath<u64>,
    ApiQuery(query): ApiQuery<ProofQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let checkpoints = app.store.checkpoints().await?;
    let checkpoint = match query.size {
        Some(size) => checkpoints
            .into_iter()
            .find(|checkpoint| checkpoint.tree_size == size),
        None => checkpoints.into_iter().last(),
    };
    let Some(checkpoint) = checkpoint else {
        return Err(ApiError::NotFound(
            "checkpoint (make one with `steward audit checkpoint`)".into(),
        ));
    };
    if seq == 0 || checkpoint.tree_size < seq {
        return Err(ApiError::Conflict(format!(
            "entry {seq} is not covered by the checkpoint at size {}; make a newer checkpoint",
            checkpoint.tree_size
        )));
    }
    let stored = app
        .store
        .audit_entries(seq - 1, 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("audit entry {seq}")))?;
    let leaves = leaf_hashes(&app.store.audit_leaf_hashes(checkpoint.tree_size).await?)?;
    let path = merkle::inclusion_proof(&leaves, seq - 1, checkpoint.tree_size)
        .map_err(ApiError::internal)?;
    let file = InclusionProofFile {
        index: seq - 1,
        proof: path,
        checkpoint_note: checkpoint.note.clone(),
        extra: None,
    };
    Ok(ok(json!({
        "seq": seq, "index": seq - 1, "tree_size": checkpoint.tree_size,
        "entry": stored.entry, "public_key": app.verifier.to_string(), "tlog_proof": file.to_text(),
    })))
}

pub async fn export(State(app): State<App>, caller: Caller) -> Result<Response, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    // Stream page by page: an export of millions of entries never sits in memory whole.
    let (pages_tx, pages_rx) = tokio::sync::mpsc::channel::<Vec<StoredEntry>>(2);
    let store = app.store.clone();
    tokio::spawn(async move {
        if let Err(err) = store
            .stream_audit_entries(0, VERIFY_PAGE_ENTRIES as usize, pages_tx)
            .await
        {
            // Headers are sent; the client sees a short export, which `audit verify` of the
            // export's entries would not match against a checkpoint.
            tracing::error!(error = %err, "Audit export stopped early.");
        }
    });
    let lines = futures_util::stream::unfold(pages_rx, |mut pages_rx| async move {
        let page = pages_rx.recv().await?;
        let mut text = String::new();
        for stored in &page {
            text.push_str(&export_line(stored));
            text.push('\n');
        }
        Some((Ok::<_, std::convert::Infallible>(text), pages_rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}

/// One JSON line: the canonical entry verbatim (so its hash can be recomputed) and its hash.
pub fn export_line(stored: &StoredEntry) -> String {
    format!(
        "{{\"seq\":{},\"entry_hash\":\"{}\",\"entry\":{}}}",
        stored.seq, stored.entry_hash, stored.entry
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashRequest {
    pub value: Value,
}

/// Lets an operator check whether a known secret appears in the trail, as Vault's audit-hash.
pub async fn hash(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<HashRequest>,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    Ok(ok(json!({"hash": hmac_value(&app.audit_key, &body.value)})))
}
