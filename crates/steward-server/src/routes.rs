//! `/api/v1` handlers. Each one decodes, loads the facts the policy needs, asks the policy,
//! changes state through one `AuditedTx` whose commit carries the audit event, and encodes.
//! Rules live in `steward_core` and the policy; handlers only wire them.

pub(crate) mod audit;
pub mod blobs;
pub(crate) mod calendar;
pub(crate) mod directory;
pub(crate) mod flags;
pub(crate) mod keys;
pub(crate) mod promotions;
pub mod registry;
pub(crate) mod routing;
pub(crate) mod webhooks;

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use steward_core::audit::{Entry, EventDraft, redact_secrets};
use steward_store::AuditedTx;

use crate::error::ApiError;
use crate::state::App;

pub use audit::{make_checkpoint, verify_log};
pub use promotions::sweep as sweep_promotions;

/// The routes, without authentication; `crate::router` adds the middleware stack.
pub fn api_routes() -> Router<App> {
    Router::new()
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/api/v1/whoami", get(directory::whoami))
        .route(
            "/api/v1/business-units",
            get(directory::list_units).post(directory::create_unit),
        )
        .route(
            "/api/v1/users",
            get(directory::list_users).post(directory::create_user),
        )
        .route("/api/v1/users/{user}", get(directory::show_user))
        .route("/api/v1/users/{user}/roles", post(directory::grant_role))
        .route(
            "/api/v1/users/{user}/roles/{scope}/{role}",
            axum::routing::delete(directory::revoke_role),
        )
        .route(
            "/api/v1/users/{user}/certifications",
            post(directory::record_certification),
        )
        .route(
            "/api/v1/users/{user}/tokens",
            get(directory::list_tokens).post(directory::create_token),
        )
        .route(
            "/api/v1/users/{user}/tokens/{token_id}",
            axum::routing::delete(directory::revoke_token),
        )
        .route(
            "/api/v1/environments",
            get(directory::list_environments).post(directory::create_environment),
        )
        .route(
            "/api/v1/models",
            get(registry::list_models).post(registry::create_model),
        )
        .route("/api/v1/models/{unit}/{model}", get(registry::show_model))
        .route(
            "/api/v1/models/{unit}/{model}/versions",
            get(registry::list_versions).post(registry::register_version),
        )
        .route(
            "/api/v1/models/{unit}/{model}/packages",
            post(registry::register_package),
        )
        .route(
            "/api/v1/models/{unit}/{model}/aliases",
            get(registry::list_aliases),
        )
        .route(
            "/api/v1/models/{unit}/{model}/promotions",
            get(promotions::list),
        )
        .route("/api/v1/models/{unit}/{model}/flags", get(flags::list))
        .route(
            "/api/v1/models/{unit}/{model}/flags/{environment}/{flag}",
            put(flags::set),
        )
        .route("/api/v1/models/{unit}/{model}/routing", get(routing::show))
        .route(
            "/api/v1/models/{unit}/{model}/routing/{environment}",
            put(routing::set),
        )
        .route("/api/v1/promotions", post(promotions::request))
        .route("/api/v1/promotions/{id}", get(promotions::show))
        .route(
            "/api/v1/promotions/{id}/approvals",
            post(promotions::approve),
        )
        .route("/api/v1/promotions/{id}/reject", post(promotions::reject))
        .route(
            "/api/v1/promotions/{id}/withdraw",
            post(promotions::withdraw),
        )
        .route("/api/v1/promotions/{id}/apply", post(promotions::apply))
        .route("/api/v1/promotions/{id}/review", post(promotions::review))
        .route("/api/v1/versions/{digest}/gates", get(promotions::check))
        .route(
            "/api/v1/versions/{digest}/drift",
            post(promotions::attach_drift),
        )
        .route(
            "/api/v1/models/{unit}/{model}/aliases/{environment}/history",
            get(registry::alias_history),
        )
        .route(
            "/api/v1/models/{unit}/{model}/aliases/{environment}/rollback",
            post(registry::rollback_alias),
        )
        .route(
            "/api/v1/models/{unit}/{model}/audit",
            get(registry::model_audit),
        )
        .route("/api/v1/versions/{digest}", get(registry::show_version))
        .route(
            "/api/v1/versions/{digest}/package",
            get(registry::show_package),
        )
        .route("/api/v1/advisories", post(registry::import_advisories))
        .route(
            "/api/v1/versions/{digest}/verify",
            post(registry::verify_version),
        )
        .route(
            "/api/v1/calendar/windows",
            get(calendar::list).post(calendar::create),
        )
        .route(
            "/api/v1/calendar/windows/{id}",
            axum::routing::delete(calendar::delete),
        )
        .route("/api/v1/calendar/import", post(calendar::import))
        .route(
            "/api/v1/versions/{digest}/compatibility",
            get(registry::compatibility),
        )
        .route("/api/v1/keys", get(keys::show))
        .route("/api/v1/keys/rotate", post(keys::rotate))
        .route("/api/v1/keys/retire", post(keys::retire))
        .route(
            "/api/v1/versions/{digest}/deprecate",
            post(registry::deprecate_version),
        )
        .route(
            "/api/v1/versions/{digest}/approvals",
            get(registry::list_approvals).post(registry::approve_version),
        )
        .route(
            "/api/v1/blobs/{digest}",
            put(blobs::upload_blob).get(blobs::download_blob),
        )
        .route(
            "/api/v1/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/v1/webhooks/{id}",
            axum::routing::delete(webhooks::delete),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route("/api/v1/search", get(registry::search))
        .route("/api/v1/audit/events", get(audit::events))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route(
            "/api/v1/audit/checkpoints",
            get(audit::checkpoints).post(audit::create_checkpoint),
        )
        .route("/api/v1/audit/proof/{seq}", get(audit::proof))
        .route("/api/v1/audit/consistency", get(audit::consistency))
        .route("/api/v1/audit/export", get(audit::export))
        .route("/api/v1/audit/hash", post(audit::hash))
}

/// A JSON body whose errors are API errors (400 naming the problem, 413 over the limit).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &App,
    ) -> Result<JsonBody<T>, ApiError> {
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge(state.config.request_body_bytes_max as u64)
                    } else {
                        ApiError::BadRequest(format!(
                            "request body could not be read: {}",
                            rejection.body_text()
                        ))
                    }
                })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|err| ApiError::BadRequest(format!("request body is invalid: {err}")))
    }
}

/// A path extractor whose rejections are API errors (JSON, 400), not axum's plain text.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ApiPath<T>, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                ApiError::BadRequest(format!("path is invalid: {}", rejection.body_text()))
            })
    }
}

/// A query extractor whose rejections are API errors (JSON, 400), naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<ApiQuery<T>, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::BadRequest(format!("query is invalid: {}", rejection.body_text()))
            })
    }
}

/// Items per page: 100 unless asked; more than `page_items_max` is refused, not clamped, so
/// a client never mistakes a short page for the end.
pub fn page_limit(app: &App, asked: Option<u32>) -> Result<u32, ApiError> {
    match asked {
        None => Ok(100.min(app.config.page_items_max)),
        Some(0) => Err(ApiError::BadRequest("limit must be at least 1".into())),
        Some(limit) if limit <= app.config.page_items_max => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit {limit} is more than page_items_max ({})",
            app.config.page_items_max
        ))),
    }
}

/// Commits `tx` with its event; secrets in the payload are HMAC'd first.
pub async fn commit(app: &App, tx: AuditedTx, mut draft: EventDraft) -> Result<Entry, ApiError> {
    redact_secrets(&app.audit_key, &mut draft.payload);
    Ok(tx.commit(draft, &app.now()).await?)
}

/// An event with no other change (denied attempts, reads worth recording).
pub async fn append_event(app: &App, draft: EventDraft) -> Result<Entry, ApiError> {
    let tx = app.store.begin().await?;
    commit(app, tx, draft).await
}

pub fn ok(value: Value) -> Json<Value> {
    Json(value)
}

pub fn created(value: Value) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(value))
}

/// The receipt a mutation returns: which audit entry recorded it.
pub fn receipt(entry: &Entry) -> Value {
    json!({"seq": entry.seq, "time": entry.time})
}
