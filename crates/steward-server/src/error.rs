//! The one place that decides HTTP statuses and public error codes for `/api/v1`.
//!
//! Body: `{"error": {"code", "message", "details"}}`. Codes are part of the API: never
//! rename, only add. Server-side failures get a generic message; the cause is logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steward_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    #[error("{message}")]
    Forbidden { message: String, decision: Value },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(u64),
    #[error("more than {0} requests per second from this user; slow down")]
    TooManyRequests(u32),
    #[error("{message}")]
    Unprocessable { message: String, details: Value },
    /// Storage (and with it the audit trail) cannot be written or read: fail closed.
    #[error("storage is unavailable; nothing was changed")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The change and its audit event were committed together or not at all, but storage
    /// did not say which.
    #[error(
        "storage did not confirm the change in time: it was made completely or not at all; read the audit trail before retrying"
    )]
    OutcomeUnknown(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(err))
    }

    /// Deliberately no `_ =>` arm: a new variant must choose its code here.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::TooManyRequests(_) => "too_many_requests",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::OutcomeUnknown(_) => "outcome_unknown",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::OutcomeUnknown(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::Forbidden { decision, .. } => json!({ "decision": decision }),
            ApiError::Unprocessable { details, .. } => details.clone(),
            ApiError::Unauthenticated
            | ApiError::NotFound(_)
            | ApiError::BadRequest(_)
            | ApiError::Conflict(_)
            | ApiError::PayloadTooLarge(_)
            | ApiError::TooManyRequests(_)
            | ApiError::Unavailable(_)
            | ApiError::OutcomeUnknown(_)
            | ApiError::Internal(_) => Value::Null,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Timeout(_) | StoreError::Backend(_) => ApiError::Unavailable(Box::new(err)),
            StoreError::OutcomeUnknown(_) => ApiError::OutcomeUnknown(Box::new(err)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The message never carries the cause (it may hold paths or SQL); the log does.
            let cause = std::error::Error::source(&self)
                .map(|source| format!("{source:?}"))
                .unwrap_or_default();
            tracing::error!(code = self.code(), error = %self, %cause, "Request failed on the server side.");
        }
        let body = json!({"error": {"code": self.code(), "message": self.to_string(), "details": self.details()}});
        (status, Json(body)).into_response()
    }
}
