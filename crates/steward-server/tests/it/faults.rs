//! Audit-sink faults, as Vault tests its audit broker: the store failing, full or hanging
//! makes a mutation answer 503 within a bounded time with nothing changed; the server
//! refuses to start without a writable audit store.

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::json;
use sqlx::Connection;
use steward_server::config::{Config, RawConfig};

use crate::support::TestServer;

async fn raw(server: &TestServer) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", server.database_path().display()))
        .await
        .unwrap()
}

async fn assert_refused_and_unchanged(server: &TestServer, name: &str) {
    let before = server.audit_size().await;
    let started = Instant::now();
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        server
            .app
            .store
            .business_unit(name)
            .await
            .unwrap()
            .is_none(),
        "the change survived"
    );
    assert_eq!(server.audit_size().await, before);
}

#[tokio::test]
async fn a_failing_audit_store_refuses_the_change() {
    let server = TestServer::start().await;
    let mut conn = raw(&server).await;
    sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit store refuses'); END").execute(&mut conn).await.unwrap();
    assert_refused_and_unchanged(&server, "failing").await;
}

#[tokio::test]
async fn a_full_audit_store_refuses_the_change() {
    let first = TestServer::start().await;
    let mut conn = raw(&first).await;
    let (pages,): (i64,) = sqlx::query_as("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    drop(conn);
    // Reopen the same data directory with the file capped at its current size: the next
    // page the change and its audit entry need is refused with SQLITE_FULL.
    let overrides = RawConfig {
        sqlite_pages_max: Some(pages as u64),
        ..RawConfig::default()
    };
    let config = Config::load(first.dir.path(), &overrides).unwrap();
    let app = steward_server::App::open(config).await.unwrap();
    let server = TestServer {
        clock: first.clock.clone(),
        app,
        admin_token: first.admin_token.clone(),
        dir: first.dir,
    };
    let before = server.audit_size().await;
    let big = "x".repeat(200_000);
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "full", "description": big})),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        server
            .app
            .store
            .business_unit("full")
            .await
            .unwrap()
            .is_none(),
        "the change survived"
    );
    assert_eq!(server.audit_size().await, before);
}

#[tokio::test]
async fn a_hanging_audit_store_answers_503_in_bounded_time() {
    let overrides = RawConfig {
        storage_timeout_ms: Some(300),
        ..RawConfig::default()
    };
    let server = TestServer::start_with(overrides).await;
    let mut conn = raw(&server).await;
    // Another writer holds the database's write lock and does not let go.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_refused_and_unchanged(&server, "hanging").await;
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "after"})),
        )
        .await;
    assert_eq!(
        reply.status, 201,
        "the server recovers once the lock is released: {}",
        reply.body
    );
}

#[tokio::test]
async fn the_server_refuses_to_start_without_a_writable_audit_store() {
    let server = TestServer::start().await;
    let url = format!("sqlite://{}?mode=ro", server.database_path().display());
    let overrides = RawConfig {
        database_url: Some(url),
        ..RawConfig::default()
    };
    let config = Config::load(server.dir.path(), &overrides).unwrap();
    let err = steward_server::App::open(config)
        .await
        .err()
        .expect("a read-only audit store must refuse to start");
    assert!(
        err.to_string()
            .starts_with("the audit store does not accept writes, refusing to start"),
        "{err}"
    );
}

#[tokio::test]
async fn an_invalid_policy_set_or_template_file_refuses_to_start() {
    let server = TestServer::start().await;
    let policies = server.dir.path().join("policies");
    std::fs::write(
        policies.join("broken.cedar"),
        "permit (principal, action, resource) when { resource.nope };",
    )
    .unwrap();
    let config = Config::load(server.dir.path(), &RawConfig::default()).unwrap();
    let err = steward_server::App::open(config)
        .await
        .err()
        .expect("an invalid policy set must refuse to start");
    assert!(
        err.to_string()
            .starts_with("organisation policies: policy set has"),
        "{err}"
    );
    std::fs::remove_file(policies.join("broken.cedar")).unwrap();

    std::fs::write(
        server.dir.path().join("templates.yaml"),
        "templates:\n  - name: x\n    required: [model_card.nope]\n",
    )
    .unwrap();
    let overrides = RawConfig {
        documentation_templates: Some("templates.yaml".into()),
        ..RawConfig::default()
    };
    let config = Config::load(server.dir.path(), &overrides).unwrap();
    let err = steward_server::App::open(config)
        .await
        .err()
        .expect("invalid templates must refuse to start");
    assert!(
        err.to_string().contains("unknown field `model_card.nope`"),
        "{err}"
    );
}

#[tokio::test]
async fn organisation_templates_from_a_file_decide_what_is_required() {
    let first = TestServer::start().await;
    std::fs::write(
        first.dir.path().join("templates.yaml"),
        "templates:\n  - name: strict\n    required: [version, artifacts, training_config]\n",
    )
    .unwrap();
    let overrides = RawConfig {
        documentation_templates: Some("templates.yaml".into()),
        ..RawConfig::default()
    };
    let app = steward_server::App::open(Config::load(first.dir.path(), &overrides).unwrap())
        .await
        .unwrap();
    let server = TestServer {
        clock: first.clock.clone(),
        app,
        admin_token: first.admin_token.clone(),
        dir: first.dir,
    };
    server
        .admin(
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "retail"})),
        )
        .await;
    let model = json!({"business_unit": "retail", "name": "m", "category": "regression", "risk_class": "minimal", "tier": 3});
    server
        .admin(Method::POST, "/api/v1/models", Some(model))
        .await;
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/models/retail/m/versions",
            Some(json!({"version": "1.0.0"})),
        )
        .await;
    assert_eq!(reply.status, 422);
    let missing: Vec<&str> = reply.body["error"]["details"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["artifacts", "training_config"]);
}

#[tokio::test]
async fn a_user_over_their_rate_gets_429() {
    let server = TestServer::start_with(RawConfig {
        user_requests_per_second_max: Some(1),
        ..RawConfig::default()
    })
    .await;
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(
                server
                    .request(
                        Some(&server.admin_token),
                        Method::GET,
                        "/api/v1/whoami",
                        None,
                    )
                    .await
                    .status,
            );
        }
        statuses
    };
    // A burst of twice the rate, then refusals (the clock barely moves between requests).
    assert_eq!(&statuses[..2], [200, 200]);
    assert_eq!(statuses[3], 429);
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::GET,
            "/api/v1/whoami",
            None,
        )
        .await;
    assert_eq!(reply.body["error"]["code"], "too_many_requests");
}
