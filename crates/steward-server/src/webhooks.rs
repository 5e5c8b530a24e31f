//! Outbound events: audit entries (promotions, approvals, blocks, change transitions) sent to
//! webhooks as CloudEvents 1.0 (structured JSON mode), signed as Standard Webhooks specifies
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`), retried with backoff, every outcome recorded.
//!
//! Invariants:
//! - The audit log is the outbox: an event is sent only once it is committed, in log order
//!   per webhook, and none is skipped (a webhook's cursor moves past an entry only when its
//!   delivery outcome is recorded, in an audited transaction).
//! - At least once, in order: an event that fails every attempt stops its webhook's cursor
//!   before it, and is retried after a pause (doubling, up to 15 minutes). A crash between
//!   sending and recording, or several replicas, may send an entry twice with the same
//!   `webhook-id`; receivers de-duplicate on it.
//! - Private addresses (loopback, RFC 1918, link-local such as cloud metadata) are refused
//!   at creation and again after each name resolution, unless `webhook_private_addresses`.
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

pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Audit entries one webhook's round may scan past without finding one to send.
pub const WEBHOOK_SCAN_MAX: u64 = 10_000;
/// Longest pause before a failing webhook is tried again (doubling from the first backoff).
pub const WEBHOOK_PAUSE_MAX: Duration = Duration::from_secs(15 * 60);

/// Where each webhook stands in this process: how far its log was scanned (entries nobody
/// subscribed to are passed over without a record; the position is stored with the next
/// delivery) and, after a failure, when to try again.
#[derive(Clone, Default)]
struct Progress {
    scanned: u64,
    pause: Duration,
    retry_at: Option<std::time::Instant>,
}

/// Sends committed events to every webhook, each in its own task, so a slow or failing
/// receiver holds up only itself.
pub struct Dispatcher {
    http: reqwest::Client,
    progress: std::collections::HashMap<i64, Progress>,
}

impl Dispatcher {
    pub fn new() -> Result<Dispatcher, reqwest::Error> {
        Ok(Dispatcher {
            http: http_client()?,
            progress: std::collections::HashMap::new(),
        })
    }

    /// One round. Returns how many events were delivered; a webhook's failure is logged
    /// and paused, never an error of the round.
    pub async fn round(&mut self, app: &App) -> Result<usize, ApiError> {
        let webhooks = app.store.webhooks().await?;
        self.progress
            .retain(|id, _| webhooks.iter().any(|webhook| webhook.id == *id));
        let now = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for webhook in webhooks {
            let progress = self.progress.get(&webhook.id).cloned().unwrap_or_default();
            if progress.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            let (app, http) = (app.clone(), self.http.clone());
            tasks.spawn(async move {
                let id = webhook.id;
                (
                    id,
                    deliver_one(&app, &http, &webhook, progress.scanned).await,
                )
            });
        }
        let mut delivered = 0;
        while let Some(joined) = tasks.join_next().await {
            let Ok((id, outcome)) = joined else { continue };
            let progress = self.progress.entry(id).or_default();
            match outcome {
                Ok(round) => {
                    delivered += round.delivered;
                    progress.scanned = round.scanned;
                    if round.failed {
                        progress.pause = (progress.pause * 2)
                            .clamp(WEBHOOK_BACKOFF_FIRST * 4, WEBHOOK_PAUSE_MAX);
                        progress.retry_at = Some(std::time::Instant::now() + progress.pause);
                    } else {
                        progress.pause = Duration::ZERO;
                        progress.retry_at = None;
                    }
                }
                Err(err) => {
                    tracing::warn!(webhook = id, error = %err, "Webhook round failed.");
                }
            }
        }
        Ok(delivered)
    }
}

/// One round with a fresh dispatcher (tests, and tools that deliver on demand).
pub async fn deliver(app: &App) -> Result<usize, ApiError> {
    let mut dispatcher = Dispatcher::new().map_err(ApiError::internal)?;
    dispatcher.round(app).await
}

struct Round {
    delivered: usize,
    scanned: u64,
    failed: bool,
}

/// Sends, in log order, the subscribed entries after the webhook's position. An event that
/// fails every attempt stops the round there: the cursor stays before it and it is tried
/// again after a pause (at least once, in order; nothing skipped).
async fn deliver_one(
    app: &App,
    http: &reqwest::Client,
    webhook: &Webhook,
    scanned: u64,
) -> Result<Round, ApiError> {
    let events: Vec<String> = serde_json::from_str(&webhook.events).unwrap_or_default();
    let stored = webhook.cursor_seq as u64;
    let mut position = stored.max(scanned);
    let start = position;
    let mut deliveries = Vec::new();
    let mut failed = false;
    'scan: while position - start < WEBHOOK_SCAN_MAX {
        let entries = app.store.audit_entries(position, WEBHOOK_BATCH_MAX).await?;
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            if subscribed(&events, &entry.action) {
                let delivery = send(app, http, webhook, entry).await;
                failed = delivery.outcome != "delivered";
                deliveries.push(delivery);
                if failed {
                    break 'scan;
                }
            }
            position = entry.seq;
        }
        if !deliveries.is_empty() {
            break;
        }
    }
    if deliveries.is_empty() {
        return Ok(Round {
            delivered: 0,
            scanned: position,
            failed: false,
        });
    }
    let ok = deliveries
        .iter()
        .filter(|delivery| delivery.outcome == "delivered")
        .count();
    let failed_seqs: Vec<i64> = deliveries
        .iter()
        .filter(|delivery| delivery.outcome != "delivered")
        .map(|delivery| delivery.seq)
        .collect();
    let mut tx = app.store.begin().await?;
    if !tx
        .record_deliveries(webhook.id, webhook.cursor_seq, position as i64, &deliveries)
        .await?
    {
        // Deleted meanwhile, or another replica recorded these first.
        tx.rollback().await?;
        return Ok(Round {
            delivered: 0,
            scanned: stored,
            failed: false,
        });
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
                "webhook": webhook.name, "delivered": ok, "failed": failed_seqs,
                "seqs": deliveries.iter().map(|delivery| delivery.seq).collect::<Vec<_>>(),
            }),
            decision,
        },
    )
    .await?;
    if failed {
        tracing::warn!(webhook = %webhook.name, failed = ?failed_seqs, "A webhook event failed every attempt; it is retried after a pause.");
    }
    Ok(Round {
        delivered: ok,
        scanned: position,
        failed,
    })
}

/// Whether an address is one a webhook may not reach unless the configuration allows it
/// (`webhook_private_addresses`): loopback, private, link-local (cloud metadata), unspecified.
pub fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(ip) => {
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
        }
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(std::net::IpAddr::V4(v4)))
        }
    }
}

/// A webhook URL as shown and audited: the query string (which may carry a token) hidden.
pub fn shown_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

/// Refuses a URL whose host resolves to a private address (names can change what they
/// point at; an address check at creation alone would not hold).
async fn check_resolves_public(url: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(url).map_err(|_| "the URL does not parse".to_owned())?;
    let host = url.host_str().ok_or("the URL has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| format!("`{host}` does not resolve"))?;
    for address in addresses {
        if is_private(address.ip()) {
            return Err(format!(
                "`{host}` resolves to a private address; set webhook_private_addresses to allow it"
            ));
        }
    }
    Ok(())
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
    if !app.config.webhook_private_addresses
        && let Err(err) = check_resolves_public(&webhook.url).await
    {
        delivery.attempts = 1;
        delivery.last_attempt_at = app.now();
        delivery.error = Some(err);
        return delivery;
    }
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
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(
            shown_url("http://hooks.example/x?token=abc"),
            "http://hooks.example/x?…"
        );
    }

    #[test]
    fn subscriptions_are_prefixes_and_never_the_dispatchers_own_records() {
        let events = vec!["promotion.".to_owned(), "webhook.".to_owned()];
        assert!(subscribed(&events, "promotion.apply"));
        assert!(!subscribed(&events, "alias.set.refused"));
        assert!(!subscribed(&events, "webhook.deliver"));
    }
}
