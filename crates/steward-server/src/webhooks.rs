//! Outbound events: audit entries (promotions, approvals, blocks, change transitions) sent to
//! webhooks as CloudEvents 1.0 (structured JSON mode), signed as Standard Webhooks specifies
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`), retried with backoff, every outcome recorded.
//!
//! Invariants:
//! - The audit log is the outbox: an event is sent only once it is committed, in log order
//!   per webhook, and none is skipped (a webhook's cursor moves past an entry only when its
//!   delivery outcome is recorded, in an audited transaction).
//! - At least once: a crash between sending and recording, or several replicas, may send an
//!   entry twice with the same `webhook-id`; receivers de-duplicate on it.
//! - The secret is never logged, audited or returned after creation.

use std::time::Duration;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use steward_core::audit::{EventDraft, StoredEntry};
use steward_store::{Webhook, WebhookDelivery};

use crate::error::ApiError;
use crate::state::App;

/// Attempts per event before it is recorded as failed.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 5;
/// Wait before the second attempt; doubled for each further one.
pub const WEBHOOK_BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// Bound on one attempt (connect, send, answer).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Audit entries read per webhook per round.
pub const WEBHOOK_BATCH_MAX: u32 = 100;
/// Bound on the subscriptions (prefixes) of one webhook.
pub const WEBHOOK_EVENTS_MAX: usize = 100;
/// The audit actions sent when a webhook names none: promotions, their approvals and
/// blocks, deploy-time refusals, change calendar changes.
pub const DEFAULT_EVENTS: &[&str] = &["promotion.", "alias.", "calendar."];
/// CloudEvents `type` prefix (reverse DNS, as the spec recommends).
pub const EVENT_TYPE_PREFIX: &str = "io.steward.";

/// The CloudEvent for an audit entry.
pub fn cloud_event(entry: &StoredEntry, origin: &str) -> Value {
    let parsed: Value = serde_json::from_str(&entry.entry).unwrap_or(Value::Null);
    json!({
        "specversion": "1.0",
        "id": entry.seq.to_string(),
        "source": format!("steward://{origin}"),
        "type": format!("{EVENT_TYPE_PREFIX}{}", entry.action),
        "subject": entry.subject,
        "time": entry.time,
        "datacontenttype": "application/json",
        "data": {
            "seq": entry.seq,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "payload": parsed["payload"],
            "decision": parsed["decision"],
            "entry_hash": entry.entry_hash,
        },
    })
}

/// `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` under the secret (`whsec_<base64>`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the webhook secret is not whsec_<base64>".to_owned())?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| "the webhook secret is empty".to_owned())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// A fresh secret: 32 random bytes.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// Whether an audit action is one the webhook subscribed to.
pub fn subscribed(events: &[String], action: &str) -> bool {
    !action.starts_with("webhook.") && events.iter().any(|prefix| action.starts_with(prefix))
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// One round for every webhook: send what was committed since its cursor, record the
/// outcomes. Returns how many events were delivered.
pub async fn deliver(app: &App, http: &reqwest::Client) -> Result<usize, ApiError> {
    let mut delivered = 0;
    for webhook in app.store.webhooks().await? {
        delivered += deliver_one(app, http, &webhook).await?;
    }
    Ok(delivered)
}

async fn deliver_one(
    app: &App,
    http: &reqwest::Client,
    webhook: &Webhook,
) -> Result<usize, ApiError> {
    let events: Vec<String> = serde_json::from_str(&webhook.events).unwrap_or_default();
    let mut cursor = webhook.cursor_seq as u64;
    let mut deliveries = Vec::new();
    // Entries nobody subscribed to are passed over without a record; the cursor is stored
    // with the next delivery (re-reading them after a restart costs a scan, not a send).
    loop {
        let entries = app.store.audit_entries(cursor, WEBHOOK_BATCH_MAX).await?;
        let Some(last) = entries.last() else { break };
        let last_seq = last.seq;
        for entry in entries
            .iter()
            .filter(|entry| subscribed(&events, &entry.action))
        {
            deliveries.push(send(app, http, webhook, entry).await);
        }
        cursor = last_seq;
        if !deliveries.is_empty() || (last_seq - webhook.cursor_seq as u64) >= 10_000 {
            break;
        }
    }
    if deliveries.is_empty() {
        return Ok(0);
    }
    let ok = deliveries
        .iter()
        .filter(|delivery| delivery.outcome == "delivered")
        .count();
    let failed: Vec<i64> = deliveries
        .iter()
        .filter(|delivery| delivery.outcome != "delivered")
        .map(|delivery| delivery.seq)
        .collect();
    let mut tx = app.store.begin().await?;
    if !tx
        .record_deliveries(webhook.id, webhook.cursor_seq, cursor as i64, &deliveries)
        .await?
    {
        tx.rollback().await?;
        return Ok(0);
    }
    let decision = json!({"effect": "allow", "action": "webhook.deliver", "policies": ["steward.webhooks.dispatch"], "errors": [], "policy_set": app.engine.policy_set_hash()});
    crate::routes::commit(
        app,
        tx,
        EventDraft {
            actor: "steward-dispatcher".into(),
            action: "webhook.deliver".into(),
            subject: format!("webhook:{}", webhook.id),
            payload: json!({
                "webhook": webhook.name, "delivered": ok, "failed": failed,
                "seqs": deliveries.iter().map(|delivery| delivery.seq).collect::<Vec<_>>(),
            }),
            decision,
        },
    )
    .await?;
    if !failed.is_empty() {
        tracing::warn!(webhook = %webhook.name, failed = ?failed, "Webhook events failed after every attempt.");
    }
    Ok(ok)
}

async fn send(
    app: &App,
    http: &reqwest::Client,
    webhook: &Webhook,
    entry: &StoredEntry,
) -> WebhookDelivery {
    let body = cloud_event(entry, &app.config.log_origin).to_string();
    let id = format!("steward-{}-{}", webhook.id, entry.seq);
    let first_attempt_at = app.now();
    let mut delivery = WebhookDelivery {
        id: 0,
        webhook_id: webhook.id,
        seq: entry.seq as i64,
        event_type: format!("{EVENT_TYPE_PREFIX}{}", entry.action),
        outcome: "failed".into(),
        attempts: 0,
        response_status: None,
        error: None,
        first_attempt_at,
        last_attempt_at: String::new(),
        audit_seq: 0,
    };
    let mut backoff = WEBHOOK_BACKOFF_FIRST;
    for attempt in 1..=WEBHOOK_ATTEMPTS_MAX {
        if attempt > 1 {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        delivery.attempts = i64::from(attempt);
        delivery.last_attempt_at = app.now();
        let timestamp = app.now_unix();
        let signature = match sign(&webhook.secret, &id, timestamp, body.as_bytes()) {
            Ok(signature) => signature,
            Err(err) => {
                delivery.error = Some(err);
                break;
            }
        };
        let sent = http
            .post(&webhook.url)
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                delivery.outcome = "delivered".into();
                delivery.response_status = Some(i64::from(response.status().as_u16()));
                delivery.error = None;
                break;
            }
            Ok(response) => {
                delivery.response_status = Some(i64::from(response.status().as_u16()));
                delivery.error = Some(format!("answered {}", response.status()));
            }
            // The error names the address, never the secret (it is only in a header value).
            Err(err) => {
                delivery.response_status = None;
                delivery.error = Some(if err.is_timeout() {
                    format!("no answer within {WEBHOOK_TIMEOUT:?}")
                } else if err.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                });
            }
        }
    }
    delivery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification (and its libraries' tests).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(sign("whsec_???", "x", 1, b"").is_err());
    }

    #[test]
    fn subscriptions_are_prefixes_and_never_the_dispatchers_own_records() {
        let events = vec!["promotion.".to_owned(), "webhook.".to_owned()];
        assert!(subscribed(&events, "promotion.apply"));
        assert!(!subscribed(&events, "alias.set.refused"));
        assert!(!subscribed(&events, "webhook.deliver"));
    }
}
