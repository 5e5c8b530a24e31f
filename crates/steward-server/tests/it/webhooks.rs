//! Outbound events: promotions reach a local webhook receiver as signed CloudEvents, in log
//! order; a receiver that fails is retried with backoff and the outcome recorded; the
//! secret is shown once and never audited.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ARTIFACT, TestServer, artifact_digest, complete_manifest};

#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, String)>,
    /// Answer 500 to this many requests first.
    fail_first: usize,
}

async fn receiver(state: Arc<Mutex<Received>>) -> String {
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let mut state = state.lock().unwrap();
                state.requests.push((headers, body));
                if state.fail_first > 0 {
                    state.fail_first -= 1;
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn promotions_reach_a_webhook_as_signed_cloudevents_with_retries_recorded() {
    // A default server refuses private addresses (SSRF); this one is told to allow them.
    let strict = TestServer::start().await;
    let refused = strict
        .request(
            Some(&strict.admin_token),
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "local", "url": "http://169.254.169.254/latest?token=x"})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a private address") && !message.contains("token=x"),
        "{message}"
    );
    let server = TestServer::start_with(steward_server::config::RawConfig {
        webhook_private_addresses: Some(true),
        ..Default::default()
    })
    .await;
    let received = Arc::new(Mutex::new(Received {
        fail_first: 2,
        ..Received::default()
    }));
    let url = receiver(received.clone()).await;

    let refused = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "cab-bot", "url": "https://example.com/x"})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let created = server
        .admin(
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({"name": "cab-bot", "url": url, "events": ["promotion."]})),
        )
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = server.admin(Method::GET, "/api/v1/webhooks", None).await;
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once"
    );

    server
        .admin(
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "retail"})),
        )
        .await;
    let ds = server.user("ds", Some(("data_scientist", "retail"))).await;
    let mlops = server
        .user("mlops", Some(("mlops_engineer", "retail")))
        .await;
    let model = json!({"business_unit": "retail", "name": "credit", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    server
        .request(Some(&ds), Method::POST, "/api/v1/models", Some(model))
        .await;
    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    server
        .request(
            Some(&ds),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    let registered = server
        .request(
            Some(&ds),
            Method::POST,
            "/api/v1/models/retail/credit/versions",
            Some(complete_manifest("1.0.0")),
        )
        .await;
    let digest = registered.body["digest"].as_str().unwrap().to_owned();
    let promoted = server.promote(&mlops, &digest, "staging").await;
    assert_eq!(promoted.body["state"], "applied", "{}", promoted.body);

    let delivered = steward_server::webhooks::deliver(&server.app)
        .await
        .unwrap();
    assert_eq!(delivered, 2, "the request and its application");
    let requests = received.lock().unwrap().requests.clone();
    // The first event took three attempts (two 500s), the second one.
    assert_eq!(requests.len(), 4);
    let mut types = Vec::new();
    for (headers, body) in &requests {
        assert_eq!(
            headers["content-type"],
            "application/cloudevents+json; charset=utf-8"
        );
        let id = headers["webhook-id"].to_str().unwrap();
        let timestamp: i64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let expected =
            steward_server::webhooks::sign(&secret, id, timestamp, body.as_bytes()).unwrap();
        assert_eq!(headers["webhook-signature"].to_str().unwrap(), expected);
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["subject"], "model:retail/credit");
        types.push(event["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        types,
        [
            "io.steward.promotion.request",
            "io.steward.promotion.request",
            "io.steward.promotion.request",
            "io.steward.promotion.apply"
        ]
    );
    let id = created["id"].as_i64().unwrap();
    let deliveries = server
        .admin(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
    let items = deliveries["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["attempts"], 3, "{deliveries}");
    assert_eq!(items[1]["outcome"], "delivered");
    // Nothing new: nothing sent again.
    assert_eq!(
        steward_server::webhooks::deliver(&server.app)
            .await
            .unwrap(),
        0
    );
    assert_eq!(received.lock().unwrap().requests.len(), 4);

    // A receiver that fails: every attempt made, the failure recorded, and the cursor stays
    // before the event, which is sent again once the receiver is back (nothing skipped).
    received.lock().unwrap().fail_first = 100;
    let withdrawn_target = server.promote(&mlops, &digest, "development").await;
    assert_eq!(withdrawn_target.body["state"], "applied");
    assert_eq!(
        steward_server::webhooks::deliver(&server.app)
            .await
            .unwrap(),
        0
    );
    let deliveries = server
        .admin(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
    let newest = &deliveries["items"][0];
    assert_eq!(newest["outcome"], "failed", "{deliveries}");
    assert_eq!(newest["attempts"], 5);
    assert_eq!(newest["response_status"], 500);
    received.lock().unwrap().fail_first = 0;
    assert_eq!(
        steward_server::webhooks::deliver(&server.app)
            .await
            .unwrap(),
        2,
        "the failed event again, then the one after it"
    );
    let deliveries = server
        .admin(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(deliveries["items"][1]["outcome"], "delivered");
    assert_eq!(deliveries["items"][1]["seq"], newest["seq"]);
    let export = server
        .request(
            Some(&server.admin_token),
            Method::GET,
            "/api/v1/audit/export",
            None,
        )
        .await;
    let text = export.body.as_str().unwrap();
    assert!(text.contains("\"webhook.deliver\""));
    assert!(
        !text.contains(&secret[6..]),
        "the secret never reaches the audit trail"
    );
}
