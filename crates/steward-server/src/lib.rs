//! Steward's control-plane server: the `/api/v1` HTTP API (axum), its middleware stack,
//! configuration, the data directory and its bootstrap.
//!
//! Invariants:
//! - The only crate that knows HTTP. Handlers decode, ask the policy, call the store,
//!   encode; rules live in `steward_core` and `steward_policy`.
//! - `error::ApiError` is the only place that picks statuses and error codes.

pub mod auth;
pub mod authz;
pub mod clock;
pub mod config;
pub mod error;
pub mod keys;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod serving;
pub mod state;
pub mod webhooks;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use steward_core::audit::EventDraft;
use tower::ServiceBuilder;

pub use state::App;

/// The application router with its middleware stack.
pub fn router(app: App) -> Router {
    with_stack(routes::api_routes(), app)
}

/// Wraps `routes` in the stack; tests use it to add a route and check it is refused.
pub fn with_stack(routes: Router<App>, app: App) -> Router {
    let config = &app.config;
    routes
        // Authentication, and refusal of routes without a policy mapping.
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), authz::middleware))
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .with_state(app.clone())
        // Read bottom-up for request order. Innermost: bodies over the limit are refused
        // before an extractor buffers them.
        .layer(DefaultBodyLimit::max(config.request_body_bytes_max))
        // Bound in-flight requests; when full, answer 503 at once instead of queueing, and
        // bound every request so a slow one cannot pin a connection.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|err: tower::BoxError| async move {
                    let (status, code) = if err.is::<tower::timeout::error::Elapsed>() {
                        (StatusCode::SERVICE_UNAVAILABLE, "timeout")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
                    };
                    (status, axum::Json(json!({"error": {"code": code, "message": err.to_string(), "details": null}})))
                }))
                .load_shed()
                .concurrency_limit(config.inflight_requests_max)
                .timeout(config.request_timeout),
        )
        // Outermost: a panic in one handler becomes a 500 for that request only.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
}

/// Serves until `shutdown` resolves; makes periodic checkpoints meanwhile.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(app, listener, shutdown, Router::new()).await
}

/// `serve`, with more routes beside the API (the data plane's), outside its middleware.
pub async fn serve_with(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    extra: Router,
) -> std::io::Result<()> {
    match routes::blobs::remove_sealed_plaintexts(&app).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "Removed plaintext copies of sealed blobs."),
        Err(err) => return Err(std::io::Error::other(err.to_string())),
    }
    if let Some(interval) = app.config.checkpoint_interval {
        let app = app.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(err) = routes::make_checkpoint(
                    &app.store,
                    &app.signer,
                    &app.config.log_origin,
                    &app.now(),
                )
                .await
                {
                    tracing::warn!(error = %err, "Periodic checkpoint failed.");
                }
            }
        });
    }
    {
        let app = app.clone();
        let mut dispatcher =
            webhooks::Dispatcher::new().map_err(|err| std::io::Error::other(err.to_string()))?;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(WEBHOOK_POLL);
            loop {
                ticker.tick().await;
                if let Err(err) = dispatcher.round(&app).await {
                    tracing::warn!(error = %err, "Webhook delivery round failed.");
                }
            }
        });
    }
    if let Some(interval) = app.config.promotion_sweep_interval {
        let app = app.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                if let Err(err) = routes::sweep_promotions(&app).await {
                    tracing::warn!(error = %err, "Promotion sweep failed.");
                }
            }
        });
    }
    axum::serve(listener, router(app).merge(extra))
        .with_graceful_shutdown(shutdown)
        .await
}

/// How often the dispatcher looks for new events to send to webhooks.
pub const WEBHOOK_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// What `steward init` made.
pub struct Initialised {
    pub admin_token_path: std::path::PathBuf,
    pub admin_token: String,
}

/// Creates a data directory: config, keys, database (migrated), default environments, the
/// admin user with a global admin role, and its token in `admin.token` (mode 0600). Every
/// step is an audit event by `steward-init`.
pub async fn init(
    data_dir: &std::path::Path,
    overrides: &config::RawConfig,
    admin: &str,
) -> Result<Initialised, anyhow::Error> {
    use anyhow::Context as _;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let config_path = data_dir.join(config::CONFIG_FILE);
    if config_path.exists() {
        anyhow::bail!(
            "{} already exists: this data directory is initialised",
            config_path.display()
        );
    }
    let config = config::Config::build(data_dir, overrides.clone(), &config::RawConfig::default())?;
    let file_text = toml::to_string(overrides).context("writing config")?;
    let header = "# Steward configuration. Keys: listen_addr, database_url, log_origin, request_body_bytes_max,\n# blob_bytes_max, request_timeout_ms, storage_timeout_ms, inflight_requests_max, page_items_max,\n# checkpoint_interval_secs, policy_dir, documentation_templates, request_log_sample_bp,\n# request_log_queue_records, request_log_dir, request_log_enabled (the data plane's request log),\n# otlp_endpoint (an OpenTelemetry collector for inference spans).\n";
    std::fs::write(&config_path, format!("{header}{file_text}"))
        .with_context(|| format!("writing {}", config_path.display()))?;
    std::fs::create_dir_all(data_dir.join("policies")).context("creating policies folder")?;
    state::create_keys(data_dir, &config.log_origin)?;
    let app = App::open(config).await?;
    let admin = steward_core::domain::Name::parse("user", admin)?;
    let now = app.now();
    let decision = json!({"effect": "allow", "action": "bootstrap", "policies": ["bootstrap"], "errors": [], "policy_set": app.engine.policy_set_hash()});
    let token = auth::generate().map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let mut tx = app.store.begin().await?;
    for (position, (name, production)) in [
        ("development", false),
        ("staging", false),
        ("production", true),
    ]
    .into_iter()
    .enumerate()
    {
        tx.insert_environment(name, production, position as i64 + 1, "steward-init", &now)
            .await?;
    }
    tx.insert_user(admin.as_str(), "Administrator", "", "steward-init", &now)
        .await?;
    tx.grant_role(admin.as_str(), "admin", "*", "steward-init", &now)
        .await?;
    tx.insert_token(
        &token.id,
        admin.as_str(),
        "init",
        &token.secret_hash,
        "steward-init",
        &now,
    )
    .await?;
    let draft = EventDraft {
        actor: "steward-init".into(),
        action: "steward.init".into(),
        subject: "directory".into(),
        payload: json!({
            "environments": ["development", "staging", "production"],
            "admin": admin.as_str(), "admin_token_id": token.id,
            "log_public_key": app.verifier.to_string(), "policy_set": app.engine.policy_set_hash(),
        }),
        decision,
    };
    routes::commit(&app, tx, draft)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    routes::make_checkpoint(&app.store, &app.signer, &app.config.log_origin, &app.now())
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let admin_token_path = data_dir.join(state::ADMIN_TOKEN_FILE);
    state::write_secret_file(&admin_token_path, &format!("{}\n", token.text))?;
    app.store.close().await;
    Ok(Initialised {
        admin_token_path,
        admin_token: token.text,
    })
}
