//! A server on a fresh data directory, driven in-process.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use steward_server::config::{Config, RawConfig};
use steward_server::{App, router};
use tower::ServiceExt;

pub struct TestServer {
    pub clock: std::sync::Arc<ShiftClock>,
    pub app: App,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
}

/// The system clock, moved forward on demand (expiry, windows).
#[derive(Default)]
pub struct ShiftClock {
    offset_seconds: std::sync::atomic::AtomicI64,
}

impl ShiftClock {
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_seconds
            .fetch_add(by.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl steward_server::clock::Clock for ShiftClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            + chrono::Duration::seconds(
                self.offset_seconds
                    .load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(RawConfig::default()).await
    }

    /// With `STEWARD_TEST_BACKEND=postgres` (and `STEWARD_TEST_POSTGRES_URL`), on a fresh
    /// PostgreSQL database instead of SQLite.
    pub async fn start_with(overrides: RawConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let init_config = RawConfig {
            database_url: postgres_database().await,
            ..RawConfig::default()
        };
        let initialised = steward_server::init(dir.path(), &init_config, "admin")
            .await
            .unwrap();
        let config = Config::load(dir.path(), &overrides).unwrap();
        let clock = std::sync::Arc::new(ShiftClock::default());
        let app = App::open_with_clock(config, clock.clone()).await.unwrap();
        TestServer {
            clock,
            app,
            admin_token: initialised.admin_token,
            dir,
        }
    }

    pub fn database_path(&self) -> std::path::PathBuf {
        self.dir.path().join("steward.db")
    }

    pub async fn request(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(Value::String(raw)) => builder
                .header("content-type", "application/octet-stream")
                .body(Body::from(raw))
                .unwrap(),
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        let response = router(self.app.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, body }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let reply = self
            .request(Some(&self.admin_token), method, path, body)
            .await;
        assert!(
            reply.status < 300,
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }

    /// A user with `role` in `scope` (or no role), and their token.
    pub async fn user(&self, name: &str, role: Option<(&str, &str)>) -> String {
        self.admin(Method::POST, "/api/v1/users", Some(json!({"name": name})))
            .await;
        if let Some((role, scope)) = role {
            self.admin(
                Method::POST,
                &format!("/api/v1/users/{name}/roles"),
                Some(json!({"role": role, "scope": scope})),
            )
            .await;
        }
        let token = self
            .admin(
                Method::POST,
                &format!("/api/v1/users/{name}/tokens"),
                Some(json!({})),
            )
            .await;
        token["token"].as_str().unwrap().to_owned()
    }

    /// Requests a promotion of `digest` to `environment` as the token's user.
    pub async fn promote(&self, token: &str, digest: &str, environment: &str) -> Reply {
        self.request(
            Some(token),
            Method::POST,
            "/api/v1/promotions",
            Some(json!({"digest": digest, "environment": environment, "reason": "release"})),
        )
        .await
    }

    pub async fn audit_size(&self) -> u64 {
        self.app.store.audit_head().await.unwrap().0
    }
}

static DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn postgres_database() -> Option<String> {
    if std::env::var("STEWARD_TEST_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    let base = std::env::var("STEWARD_TEST_POSTGRES_URL")
        .expect("STEWARD_TEST_BACKEND=postgres needs STEWARD_TEST_POSTGRES_URL");
    let name = format!(
        "steward_test_it_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

pub const ARTIFACT: &str = "weights";

pub fn artifact_digest() -> String {
    steward_core::domain::Digest::of_bytes(ARTIFACT.as_bytes()).to_string()
}

/// A manifest complete for a high-risk tier-1 tabular model.
pub fn complete_manifest(version: &str) -> Value {
    json!({
        "version": version,
        "artifacts": [{"name": "model.onnx", "digest": artifact_digest(), "size_bytes": ARTIFACT.len()}],
        "licence": "Apache-2.0",
        "intended_use": "Score credit applications.",
        "out_of_scope_uses": ["employment"],
        "metrics": [{"name": "auc", "value": 0.8}],
        "training_config": {"C": 1.0},
        "training_data": [{"name": "apps", "location": "s3://x", "digest": artifact_digest(), "licence": "internal", "personal_data": true}],
        "bias_assessment": {"summary": "ok", "protected_attributes": ["age"], "metrics": [{"name": "di", "value": 0.9}], "mitigations": "none needed"},
        "model_card": {"description": "Gradient-boosted scorecard", "markdown": "# Credit", "limitations": "l", "ethical_considerations": "Monitored for disparate impact", "authors": ["alice"], "contact": "c"},
    })
}

/// The result of gate `name` in a promotion answer or a gate check.
pub fn gate<'a>(body: &'a Value, name: &str) -> &'a Value {
    let gates = if body["gates"].is_array() {
        &body["gates"]
    } else {
        &body["evaluation"]["gates"]
    };
    gates
        .as_array()
        .and_then(|gates| gates.iter().find(|gate| gate["gate"] == name))
        .unwrap_or_else(|| panic!("no gate `{name}` in {body}"))
}
