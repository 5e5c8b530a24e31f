//! Webhook subscriptions: administrators add and delete them; auditors and compliance
//! officers see them and their deliveries. The secret is shown once, at creation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_policy::Resource;
use steward_store::Webhook;

use super::{ApiPath, ApiQuery, JsonBody, commit, created, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;
use crate::webhooks::{DEFAULT_EVENTS, WEBHOOK_EVENTS_MAX};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub name: String,
    /// `http://host[:port]/path` (TLS is terminated by a proxy for now).
    pub url: String,
    /// Audit action prefixes to send (default: `promotion.`, `alias.`, `calendar.`).
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

fn webhook_json(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id, "name": webhook.name, "url": crate::webhooks::shown_url(&webhook.url),
        "events": serde_json::from_str::<Value>(&webhook.events).unwrap_or(Value::Null),
        "cursor_seq": webhook.cursor_seq, "created_by": webhook.created_by, "created_at": webhook.created_at,
    })
}

fn check(body: &NewWebhook, allow_private: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if steward_core::domain::Name::parse("webhook", &body.name).is_err() {
        problems.push(format!(
            "name `{}`: lowercase letters, digits, `.`, `_`, `-`, up to 63",
            body.name
        ));
    }
    match reqwest::Url::parse(&body.url) {
        Ok(url) if url.scheme() != "http" => problems.push(format!(
            "url `{}`: only http:// is supported (put a TLS-terminating proxy in front)",
            body.url
        )),
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            problems.push("url: must not carry credentials".into())
        }
        Ok(url) if url.host_str().is_none() => problems.push("url: has no host".into()),
        Ok(url)
            if !allow_private
                && (url.host_str() == Some("localhost")
                    || url
                        .host_str()
                        .and_then(|host| host.trim_matches(['[', ']']).parse().ok())
                        .is_some_and(crate::webhooks::is_private)) =>
        {
            problems.push(format!(
                "url `{}`: a private address; set webhook_private_addresses to allow it",
                crate::webhooks::shown_url(&body.url)
            ))
        }
        Ok(_) => {}
        Err(err) => problems.push(format!(
            "url `{}`: {err}",
            crate::webhooks::shown_url(&body.url)
        )),
    }
    if let Some(events) = &body.events {
        if events.is_empty() || events.len() > WEBHOOK_EVENTS_MAX {
            problems.push(format!(
                "events: between 1 and {WEBHOOK_EVENTS_MAX} prefixes"
            ));
        }
        for event in events {
            if event.is_empty()
                || event.len() > 100
                || !event
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            {
                problems.push(format!(
                    "events: `{event}` is not an action prefix (e.g. `promotion.`)"
                ));
            }
        }
    }
    problems
}

pub async fn create(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let problems = check(&body, app.config.webhook_private_addresses);
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            message: problems.join("; "),
            details: json!({"problems": problems}),
        });
    }
    let secret = crate::webhooks::new_secret().map_err(ApiError::internal)?;
    let events = body.events.clone().unwrap_or_else(|| {
        DEFAULT_EVENTS
            .iter()
            .map(|&prefix| prefix.to_owned())
            .collect()
    });
    let mut webhook = Webhook {
        id: 0,
        name: body.name.clone(),
        url: body.url.clone(),
        secret: secret.clone(),
        events: json!(events).to_string(),
        cursor_seq: 0,
        created_by: caller.name.clone(),
        created_at: app.now(),
    };
    let mut tx = app.store.begin().await?;
    webhook.id = tx.insert_webhook(&webhook).await?;
    let entry = commit(
        &app,
        tx,
        super::registry::event(
            &caller,
            format!("webhook:{}", webhook.id),
            json!({"name": webhook.name, "url": crate::webhooks::shown_url(&webhook.url), "events": events}),
            &decision,
        ),
    )
    .await?;
    let mut answer = webhook_json(&webhook);
    answer["secret"] = json!(secret);
    answer["audit"] = receipt(&entry);
    Ok(created(answer))
}

pub async fn list(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
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
        .webhooks()
        .await?
        .iter()
        .map(webhook_json)
        .collect();
    Ok(ok(json!({ "items": items })))
}

pub async fn delete(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let mut tx = app.store.begin().await?;
    if !tx.delete_webhook(id, &caller.name, &app.now()).await? {
        tx.rollback().await?;
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    let entry = commit(
        &app,
        tx,
        super::registry::event(&caller, format!("webhook:{id}"), Value::Null, &decision),
    )
    .await?;
    Ok(ok(
        json!({"id": id, "deleted": true, "audit": receipt(&entry)}),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

pub async fn deliveries(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(&app, query.limit)?;
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    if !app
        .store
        .webhooks()
        .await?
        .iter()
        .any(|webhook| webhook.id == id)
    {
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    let items: Vec<Value> = app
        .store
        .webhook_deliveries(id, limit)
        .await?
        .iter()
        .map(|delivery| {
            json!({
                "seq": delivery.seq, "type": delivery.event_type, "outcome": delivery.outcome,
                "attempts": delivery.attempts, "response_status": delivery.response_status,
                "error": delivery.error, "first_attempt_at": delivery.first_attempt_at,
                "last_attempt_at": delivery.last_attempt_at, "audit_seq": delivery.audit_seq,
            })
        })
        .collect();
    Ok(ok(json!({ "items": items })))
}
