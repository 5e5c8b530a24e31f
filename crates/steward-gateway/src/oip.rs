//! The Open Inference Protocol v2 over HTTP: health, server and model metadata, model
//! readiness and inference, unversioned and versioned, for each environment (production at
//! `/v2`, others at `/env/{environment}/v2`).
//!
//! Invariants:
//! - The hot path never touches the database: requests read the routing table, an
//!   immutable snapshot swapped whole (`Gateway::swap`) when what the aliases point to
//!   changes.
//! - Errors are `{"error": "…"}` with `Content-Type: application/json` exactly: 400 bad
//!   input, 401/403 a versioned path without a pin grant, 404 unknown model or version, 502
//!   an upstream failed, 503 switched off, not ready or busy, 500 otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::reqlog::{FieldClasses, Record, RequestLog, Route};
use crate::runtime::Runtime;
use crate::tensor::{self, Datatype};
use crate::trace::TraceContext;

/// The protocol extensions this server implements (server metadata).
pub const EXTENSIONS: &[&str] = &["binary_tensor_data"];
/// The header that says how long the JSON part of a body with binary tensors is.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Named limits of the data plane.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bound on an inference request body.
    pub request_body_bytes: usize,
    /// Bound on the elements of one tensor.
    pub tensor_elements: u64,
    /// Inferences running at once per deployment; more wait for a slot up to the timeout.
    pub concurrent_inferences: usize,
    /// Bound on one inference, waiting included (then 503).
    pub inference_timeout: Duration,
    /// Data-plane requests being handled at once; more wait their turn.
    pub requests_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_body_bytes: 16 * 1024 * 1024,
            tensor_elements: 16 * 1024 * 1024,
            concurrent_inferences: 64,
            inference_timeout: Duration::from_secs(10),
            requests_in_flight: 256,
        }
    }
}

/// What an environment serves under one model name.
pub struct Deployment {
    /// The OIP model name: `unit:model`.
    pub name: String,
    /// The version label (`1.2.0`), the OIP model version.
    pub version: String,
    /// The governed version id.
    pub digest: String,
    pub runtime: Runtime,
    /// The classification of each input and output (request log redaction).
    pub classes: Arc<FieldClasses>,
    slots: Arc<tokio::sync::Semaphore>,
    /// A moving average of this model's run time per input element, in nanoseconds (0: not
    /// measured yet).
    run_nanos: std::sync::atomic::AtomicU64,
    /// Summary handles per input (by the model's input order), one per feature.
    features: OnceLock<Vec<Vec<crate::metrics::FeatureSummary>>>,
}

impl Deployment {
    pub fn new(
        name: String,
        version: String,
        digest: String,
        runtime: impl Into<Runtime>,
        limits: &Limits,
    ) -> Deployment {
        Deployment {
            name,
            version,
            digest,
            runtime: runtime.into(),
            classes: Arc::new(FieldClasses::default()),
            slots: Arc::new(tokio::sync::Semaphore::new(limits.concurrent_inferences)),
            run_nanos: std::sync::atomic::AtomicU64::new(0),
            features: OnceLock::new(),
        }
    }

    /// The deployment with its schema's field classifications.
    pub fn with_classes(mut self, classes: FieldClasses) -> Deployment {
        self.classes = Arc::new(classes);
        self
    }

    /// Adds numeric inputs to the per-feature summaries: a vector is one feature, each
    /// column of a matrix is one (the first `FEATURE_COLUMNS_MAX`). Inputs the schema marks
    /// confidential, personal or special-category are not summarised: `/metrics` is not
    /// access-controlled, and a sum over one request is its value.
    fn summarise(
        &self,
        metrics: &crate::metrics::Metrics,
        environment: &str,
        inputs: &[tensor::Tensor],
    ) {
        let summaries = self.features.get_or_init(|| {
            self.runtime
                .inputs()
                .iter()
                .map(|spec| {
                    let sensitive = self.classes.inputs.get(&spec.name).is_some_and(|class| {
                        *class >= steward_core::schema::Classification::Confidential
                    });
                    if sensitive {
                        return Vec::new();
                    }
                    let columns = match spec.shape.as_slice() {
                        [_, columns] => usize::try_from(*columns).unwrap_or(0),
                        [_] => 1,
                        _ => 0,
                    }
                    .min(crate::metrics::FEATURE_COLUMNS_MAX);
                    (0..columns)
                        .map(|column| {
                            metrics.feature(&crate::metrics::Feature {
                                model: self.name.clone(),
                                version: self.version.clone(),
                                environment: environment.to_owned(),
                                feature: if spec.shape.len() == 2 {
                                    format!("{}[{column}]", spec.name)
                                } else {
                                    spec.name.clone()
                                },
                            })
                        })
                        .collect()
                })
                .collect()
        });
        for (spec, summaries) in self.runtime.inputs().iter().zip(summaries) {
            let Some(input) = inputs.iter().find(|input| input.name == spec.name) else {
                continue;
            };
            let width = match input.shape.as_slice() {
                [_, columns] => usize::try_from(*columns).unwrap_or(0),
                _ => 1,
            };
            if width == 0 {
                continue;
            }
            for (column, summary) in summaries.iter().enumerate() {
                match &input.elements {
                    tensor::Elements::Float(values) => {
                        summary.observe(values.iter().skip(column).step_by(width).copied())
                    }
                    tensor::Elements::Int(values) => summary
                        .observe(values.iter().skip(column).step_by(width).map(|&v| v as f64)),
                    tensor::Elements::Uint(values) => summary
                        .observe(values.iter().skip(column).step_by(width).map(|&v| v as f64)),
                    _ => {}
                }
            }
        }
    }
}

/// Runs expected (from the model's average time per input element) to take less than this
/// run on the async worker that handles the request: handing a few microseconds of work to the blocking pool and back costs more
/// than the work. Longer ones run on the blocking pool, so they never stall other requests.
pub const INLINE_RUN_MAX: Duration = Duration::from_micros(50);
/// Input elements of a request run inline, at most.
pub const INLINE_ELEMENTS_MAX: usize = 4_096;

impl Deployment {
    /// Runs the ONNX model: inline when it is known to be quick, else on the blocking pool
    /// (the slot is held by the work itself there, so a request that times out does not
    /// free it while its inference still runs).
    async fn run_onnx(
        &self,
        model: &Arc<crate::runtime::OnnxModel>,
        inputs: Arc<Vec<tensor::Tensor>>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<Result<Vec<tensor::Tensor>, String>, ()> {
        use std::sync::atomic::Ordering;
        let per_element = self.run_nanos.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        // Expected to be quick for this request's size (a large batch of a quick model is
        // not quick), and a small request.
        let elements: usize = inputs.iter().map(|input| input.elements.len()).sum();
        let inline = per_element > 0
            && elements <= INLINE_ELEMENTS_MAX
            && per_element.saturating_mul(elements.max(1) as u64)
                < INLINE_RUN_MAX.as_nanos() as u64;
        let outputs = if inline {
            let _slot = slot;
            // A panic is this request's 500, counted and logged like any other.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.run(&inputs)))
                .map_err(|_| ())?
        } else {
            let model = model.clone();
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                let started = std::time::Instant::now();
                (model.run(&inputs), started.elapsed())
            })
            .await
            .map(|(outputs, took)| {
                self.record_run(took, elements);
                outputs
            })
            .map_err(|_| ())?
        };
        if inline {
            self.record_run(started.elapsed(), elements);
        }
        Ok(outputs)
    }

    /// Folds one run's time per input element into the moving average (weight 1/8).
    fn record_run(&self, took: Duration, elements: usize) {
        use std::sync::atomic::Ordering;
        let took =
            (u64::try_from(took.as_nanos()).unwrap_or(u64::MAX) / elements.max(1) as u64).max(1);
        let average = self.run_nanos.load(Ordering::Relaxed);
        let next = if average == 0 {
            took
        } else {
            average - average / 8 + took / 8
        };
        self.run_nanos.store(next.max(1), Ordering::Relaxed);
    }
}

/// A caller allowed to pin versions by the versioned path: the hash of its token's
/// secret, and where it may pin (decided by the policy when the table is built).
#[derive(Debug, Clone)]
pub struct Pinner {
    pub user: String,
    pub secret_hash: String,
    /// `(environment, model name)`.
    pub grants: BTreeSet<(String, String)>,
}

/// The routing table: environment → model name → stable deployment, and canaries beside
/// some of them.
#[derive(Default, Clone)]
pub struct Table {
    pub environments: BTreeMap<String, BTreeMap<String, Arc<Deployment>>>,
    /// `(environment, model name)` → the canary there.
    pub canaries: BTreeMap<(String, String), Canary>,
    /// `(environment, model name)` → flag name → state. A flag not listed is on.
    pub flags: BTreeMap<(String, String), BTreeMap<String, Flag>>,
    /// `(environment, model name)` → the shadow that gets copies of requests there.
    pub shadows: BTreeMap<(String, String), Shadow>,
    /// Token id → who may pin versions where.
    pub pinners: BTreeMap<String, Pinner>,
}

/// A shadow: a version that gets a copy of a share of requests, off the response path.
#[derive(Clone)]
pub struct Shadow {
    pub deployment: Arc<Deployment>,
    pub share_bp: u32,
}

/// Bound on shadow runs in flight at once (then copies are dropped and counted).
pub const SHADOW_IN_FLIGHT_MAX: usize = 32;

/// A feature flag's state: off answers 503, or sends the requests to `fallback`.
#[derive(Clone)]
pub struct Flag {
    pub enabled: bool,
    pub fallback: Option<Arc<Deployment>>,
}

/// The flag that switches a deployment off as a whole.
pub const KILL_SWITCH: &str = "serving";
/// The request header naming the capability a request uses (a flag of that name).
pub const CAPABILITY_HEADER: &str = "x-steward-capability";

/// A canary beside a stable deployment: its own deployment and the rule that sends
/// requests to it.
#[derive(Clone)]
pub struct Canary {
    pub deployment: Arc<Deployment>,
    pub rule: steward_core::routing::RoutingRule,
}

/// A uniform draw for requests without a sticky key.
fn draw() -> u32 {
    random_u64() as u32
}

/// Uniform random bits for draws and ids (not for secrets: a counter hashed with this
/// process's random hasher keys).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut hasher = KEYS
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.finish()
}

/// The request header naming the caller's tenant (metrics label and request log).
pub const TENANT_HEADER: &str = "x-steward-tenant";

/// The request's tenant (`x-steward-tenant`): a name of lowercase letters, digits, `.`,
/// `_`, `-`, up to 63; anything else is a 400.
fn parse_tenant(headers: &HeaderMap) -> Result<Option<String>, OipError> {
    let Some(value) = headers.get(TENANT_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|text| {
            !text.is_empty()
                && text.len() <= 63
                && text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
        .map(|text| Some(text.to_owned()))
        .ok_or_else(|| {
            OipError::new(
                StatusCode::BAD_REQUEST,
                format!("{TENANT_HEADER} must be a name: lowercase letters, digits, `.`, `_`, `-`, up to 63"),
            )
        })
}

/// A request id fit for a record: non-empty, printable, at most `REQUEST_ID_MAX` long.
fn request_id(text: &str) -> Option<String> {
    (!text.is_empty()
        && text.len() <= crate::reqlog::REQUEST_ID_MAX
        && !text.chars().any(char::is_control))
    .then(|| text.to_owned())
}

/// The data plane's shared state.
pub struct Gateway {
    table: RwLock<Arc<Table>>,
    shadow_slots: Arc<tokio::sync::Semaphore>,
    /// Set once the first routing table is in place.
    loaded: std::sync::atomic::AtomicBool,
    pub limits: Limits,
    pub server_version: String,
    pub metrics: crate::metrics::Metrics,
    /// Where logged requests go; `None`: nothing is logged.
    pub request_log: Option<RequestLog>,
    /// Where inference spans go; `None`: no OTLP export.
    pub otlp: Option<crate::otlp::Exporter>,
    /// Tenant label values in use (bounded by `TENANT_LABELS_MAX`).
    tenants: RwLock<BTreeSet<String>>,
}

impl Gateway {
    pub fn new(limits: Limits, server_version: &str) -> Gateway {
        Gateway {
            table: RwLock::new(Arc::new(Table::default())),
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(SHADOW_IN_FLIGHT_MAX)),
            loaded: std::sync::atomic::AtomicBool::new(false),
            limits,
            server_version: server_version.to_owned(),
            metrics: crate::metrics::Metrics::default(),
            request_log: None,
            otlp: None,
            tenants: RwLock::new(BTreeSet::new()),
        }
    }

    /// Starts request logging (the writer thread) with this gateway's metrics.
    pub fn with_request_log(
        mut self,
        config: crate::reqlog::LogConfig,
    ) -> std::io::Result<Gateway> {
        self.request_log = Some(RequestLog::start(config, &self.metrics)?);
        Ok(self)
    }

    /// The metrics label of a tenant: itself while fewer than `TENANT_LABELS_MAX` are in
    /// use, then `other`; empty for none. Called only for requests that reached a
    /// deployment, so refused requests cannot use the labels up.
    fn tenant_label(&self, tenant: Option<&str>) -> String {
        let Some(tenant) = tenant else {
            return String::new();
        };
        let known = match self.tenants.read() {
            Ok(tenants) => tenants.contains(tenant),
            Err(poisoned) => poisoned.into_inner().contains(tenant),
        };
        if known {
            return tenant.to_owned();
        }
        let mut tenants = match self.tenants.write() {
            Ok(tenants) => tenants,
            Err(poisoned) => poisoned.into_inner(),
        };
        if tenants.len() < crate::metrics::TENANT_LABELS_MAX || tenants.contains(tenant) {
            tenants.insert(tenant.to_owned());
            tenant.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// The current table (a snapshot: later swaps do not change it).
    pub fn table(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the whole table at once.
    pub fn swap(&self, table: Table) {
        let table = Arc::new(table);
        match self.table.write() {
            Ok(mut current) => *current = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Replaces the pin grants of the current table (the rest of it unchanged).
    pub fn swap_pinners(&self, pinners: BTreeMap<String, Pinner>) {
        let mut current = match self.table.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut table = Table::clone(&current);
        table.pinners = pinners;
        *current = Arc::new(table);
    }

    /// Whether the first routing table is in place (until then the server is not ready).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// An OIP error answer.
pub struct OipError {
    status: StatusCode,
    message: String,
}

impl OipError {
    fn new(status: StatusCode, message: impl Into<String>) -> OipError {
        OipError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = json_response(self.status, json!({"error": self.message}));
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"steward\""),
            );
        }
        response
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

const PRODUCTION: &str = "production";

/// The OIP routes for every environment.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.limits.request_body_bytes;
    let requests_in_flight = gateway.limits.requests_in_flight;
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(metadata_production))
        .route("/v2/models/{name}/ready", get(ready_production))
        .route("/v2/models/{name}/infer", post(infer_production))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(metadata_production_version),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(ready_production_version),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_production_version),
        )
        .route("/env/{env}/v2", get(server_metadata))
        .route("/env/{env}/v2/health/live", get(live))
        .route("/env/{env}/v2/health/ready", get(ready))
        .route("/env/{env}/v2/models/{name}", get(metadata_env))
        .route("/env/{env}/v2/models/{name}/ready", get(ready_env))
        .route("/env/{env}/v2/models/{name}/infer", post(infer_env))
        .route(
            "/env/{env}/v2/models/{name}/versions/{version}",
            get(metadata_env_version),
        )
        .route(
            "/env/{env}/v2/models/{name}/versions/{version}/ready",
            get(ready_env_version),
        )
        .route(
            "/env/{env}/v2/models/{name}/versions/{version}/infer",
            post(infer_env_version),
        )
        .route("/ofrep/v1/evaluate/flags", post(ofrep_bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(ofrep_one))
        .route("/v2/{*rest}", axum::routing::any(unknown_path))
        .route("/env/{env}/v2/{*rest}", axum::routing::any(unknown_path))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        // Requests being read or answered at once (bounds the memory bodies take), and a
        // panic in one request answered as a 500 for that request only.
        .layer(tower::limit::ConcurrencyLimitLayer::new(requests_in_flight))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(gateway)
}

type Shared = State<Arc<Gateway>>;

async fn metadata_production(s: Shared, Path(name): Path<String>) -> Result<Response, OipError> {
    model_metadata(s, PRODUCTION.into(), name, None).await
}
async fn ready_production(s: Shared, Path(name): Path<String>) -> Result<Response, OipError> {
    model_ready(s, PRODUCTION.into(), name, None).await
}
async fn infer_production(
    s: Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OipError> {
    infer(s, PRODUCTION.into(), name, None, headers, body).await
}
async fn metadata_production_version(
    s: Shared,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, OipError> {
    model_metadata(s, PRODUCTION.into(), name, Some(version)).await
}
async fn ready_production_version(
    s: Shared,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, OipError> {
    model_ready(s, PRODUCTION.into(), name, Some(version)).await
}
async fn infer_production_version(
    s: Shared,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OipError> {
    infer(s, PRODUCTION.into(), name, Some(version), headers, body).await
}
async fn metadata_env(
    s: Shared,
    Path((env, name)): Path<(String, String)>,
) -> Result<Response, OipError> {
    model_metadata(s, env, name, None).await
}
async fn ready_env(
    s: Shared,
    Path((env, name)): Path<(String, String)>,
) -> Result<Response, OipError> {
    model_ready(s, env, name, None).await
}
async fn infer_env(
    s: Shared,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OipError> {
    infer(s, env, name, None, headers, body).await
}
async fn metadata_env_version(
    s: Shared,
    Path((env, name, version)): Path<(String, String, String)>,
) -> Result<Response, OipError> {
    model_metadata(s, env, name, Some(version)).await
}
async fn ready_env_version(
    s: Shared,
    Path((env, name, version)): Path<(String, String, String)>,
) -> Result<Response, OipError> {
    model_ready(s, env, name, Some(version)).await
}
async fn infer_env_version(
    s: Shared,
    Path((env, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OipError> {
    infer(s, env, name, Some(version), headers, body).await
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let mut response = (StatusCode::OK, gateway.metrics.encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn server_metadata(State(gateway): State<Arc<Gateway>>) -> Response {
    json_response(
        StatusCode::OK,
        json!({"name": "steward", "version": gateway.server_version, "extensions": EXTENSIONS}),
    )
}

async fn live() -> Response {
    json_response(StatusCode::OK, json!({"live": true}))
}

async fn ready(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.is_loaded() {
        json_response(StatusCode::OK, json!({"ready": true}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "error": "the routing table is not loaded yet"}),
        )
    }
}

/// Runs the shadow on a copy of the inputs, off the response path, bounded in flight (a
/// copy that finds no slot is dropped and counted); compares its outputs with the served
/// ones and counts the outcome. Its answer is never returned.
fn start_shadow(
    gateway: &Gateway,
    shadow: Arc<Deployment>,
    labels: &crate::metrics::Deployed,
    inputs: Arc<Vec<tensor::Tensor>>,
    served: Arc<Vec<tensor::Tensor>>,
    trace: &TraceContext,
) {
    let shadow_labels = crate::metrics::Deployed {
        model: labels.model.clone(),
        version: shadow.version.clone(),
        environment: labels.environment.clone(),
        tenant: labels.tenant.clone(),
    };
    let Ok(slot) = gateway.shadow_slots.clone().try_acquire_owned() else {
        gateway
            .metrics
            .shadow_dropped
            .get_or_create(&shadow_labels)
            .inc();
        return;
    };
    let (runs, differences) = (
        gateway.metrics.shadow.clone(),
        gateway.metrics.shadow_difference.clone(),
    );
    // The shadow's call is a child of the request's span.
    let trace = trace.child();
    let limit = gateway.limits.tensor_elements;
    tokio::spawn(async move {
        let _slot = slot;
        let result = match &shadow.runtime {
            Runtime::Onnx(model) => {
                let (model, inputs) = (model.clone(), inputs.clone());
                tokio::task::spawn_blocking(move || model.run(&inputs))
                    .await
                    .unwrap_or_else(|_| Err("the shadow's inference panicked".into()))
            }
            Runtime::Upstream(upstream) => upstream
                .infer(&inputs, None, None, &trace, limit)
                .await
                .map_err(|_| "the shadow's upstream failed".to_owned()),
        };
        let outcome = match result {
            Ok(outputs) => {
                let difference = largest_difference(&served, &outputs);
                if let Some(difference) = difference {
                    differences
                        .get_or_create(&shadow_labels)
                        .observe(difference);
                }
                match difference {
                    Some(difference) if difference <= 1e-6 => "match",
                    _ => "differ",
                }
            }
            Err(_) => "error",
        };
        runs.get_or_create(&crate::metrics::Outcome {
            model: shadow_labels.model.clone(),
            version: shadow_labels.version.clone(),
            environment: shadow_labels.environment.clone(),
            tenant: shadow_labels.tenant.clone(),
            code: outcome.to_owned(),
        })
        .inc();
    });
}

/// The largest absolute difference between two sets of outputs (by name; `None` when their
/// names, shapes or kinds differ).
fn largest_difference(served: &[tensor::Tensor], shadow: &[tensor::Tensor]) -> Option<f64> {
    let mut largest: f64 = 0.0;
    for output in served {
        let other = shadow.iter().find(|other| other.name == output.name)?;
        if other.shape != output.shape {
            return None;
        }
        let pairs: Vec<(f64, f64)> = match (&output.elements, &other.elements) {
            (tensor::Elements::Float(a), tensor::Elements::Float(b)) => {
                a.iter().copied().zip(b.iter().copied()).collect()
            }
            (tensor::Elements::Int(a), tensor::Elements::Int(b)) => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64, y as f64))
                .collect(),
            (tensor::Elements::Uint(a), tensor::Elements::Uint(b)) => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64, y as f64))
                .collect(),
            (tensor::Elements::Bool(a), tensor::Elements::Bool(b)) => a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (f64::from(u8::from(x)), f64::from(u8::from(y))))
                .collect(),
            _ => return None,
        };
        for (x, y) in pairs {
            largest = largest.max((x - y).abs());
        }
    }
    Some(largest)
}

/// An OFREP flag key: `unit:model:environment:flag` (no part of it may hold a `:`).
fn ofrep_value(key: &str, flag: &Flag) -> Value {
    json!({
        "key": key,
        "value": flag.enabled,
        "reason": "STATIC",
        "variant": if flag.enabled { "on" } else { "off" },
        "metadata": {"fallback": flag.fallback.as_ref().map(|fallback| fallback.version.clone())},
    })
}

/// OpenFeature Remote Evaluation Protocol, one flag: applications read the kill switches
/// and capability flags the data plane enforces.
async fn ofrep_one(State(gateway): State<Arc<Gateway>>, Path(key): Path<String>) -> Response {
    let table = gateway.table();
    let found = match key.split(':').collect::<Vec<_>>().as_slice() {
        [unit, model, env, flag] => table
            .flags
            .get(&((*env).to_owned(), format!("{unit}:{model}")))
            .and_then(|flags| flags.get(*flag)),
        _ => None,
    };
    match found {
        Some(flag) => json_response(StatusCode::OK, ofrep_value(&key, flag)),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": "no flag with this key (unit:model:environment:flag) was set"}),
        ),
    }
}

/// OFREP, every flag.
async fn ofrep_bulk(State(gateway): State<Arc<Gateway>>) -> Response {
    let table = gateway.table();
    let flags: Vec<Value> = table
        .flags
        .iter()
        .flat_map(|((env, name), flags)| {
            flags.iter().map(move |(flag_name, flag)| {
                let (unit, model) = name.split_once(':').unwrap_or((name.as_str(), ""));
                ofrep_value(&format!("{unit}:{model}:{env}:{flag_name}"), flag)
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({ "flags": flags }))
}

/// Any other path under an OIP prefix: the JSON error clients parse (e.g. Triton's model
/// configuration and repository extensions, which are not implemented).
async fn unknown_path() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": "no such Open Inference Protocol endpoint here"}),
    )
}

/// The deployment an inference goes to. Kill switches first (the deployment's, then the
/// capability the request names); then the version the path pins; then, unpinned, the
/// canary for the requests its rule sends there (sticky by header); else the stable one.
fn route(
    table: &Table,
    env: &str,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
) -> Result<(Arc<Deployment>, Route), OipError> {
    let key = (env.to_owned(), name.to_owned());
    if let Some(flags) = table.flags.get(&key) {
        let capability = headers
            .get(CAPABILITY_HEADER)
            .and_then(|value| value.to_str().ok());
        for flag_name in std::iter::once(KILL_SWITCH).chain(capability) {
            if let Some(flag) = flags.get(flag_name).filter(|flag| !flag.enabled) {
                return match &flag.fallback {
                    Some(fallback) => Ok((fallback.clone(), Route::Fallback)),
                    None => Err(OipError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("`{flag_name}` of model `{name}` is switched off in `{env}`"),
                    )),
                };
            }
        }
    }
    if let (None, Some(canary)) = (version, table.canaries.get(&key)) {
        let sticky = canary
            .rule
            .sticky_header
            .as_deref()
            .and_then(|header| headers.get(header))
            .and_then(|value| value.to_str().ok());
        if steward_core::routing::to_canary(&canary.rule, name, sticky, draw()) {
            return Ok((canary.deployment.clone(), Route::Canary));
        }
    }
    let deployment = resolve(table, env, name, version)?;
    Ok((
        deployment,
        if version.is_some() {
            Route::Pinned
        } else {
            Route::Stable
        },
    ))
}

/// Who pins a version: the caller's token must be one the table lists as allowed to pin
/// this model in this environment (401 without a valid token, 403 without the grant).
fn authorize_pin(
    table: &Table,
    env: &str,
    name: &str,
    headers: &HeaderMap,
) -> Result<String, OipError> {
    let unauthenticated = || {
        OipError::new(
            StatusCode::UNAUTHORIZED,
            "a versioned path pins a version, which needs `Authorization: Bearer <token>` of a caller allowed to pin; call the unversioned path to be routed",
        )
    };
    let (id, secret) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| steward_core::token::parse(token.trim()))
        .ok_or_else(unauthenticated)?;
    let pinner = table
        .pinners
        .get(id)
        .filter(|pinner| {
            steward_core::token::hashes_equal(
                &steward_core::token::hash_secret(secret),
                &pinner.secret_hash,
            )
        })
        .ok_or_else(unauthenticated)?;
    if !pinner.grants.contains(&(env.to_owned(), name.to_owned())) {
        return Err(OipError::new(
            StatusCode::FORBIDDEN,
            format!(
                "`{}` may not pin versions of `{name}` in `{env}` (policy action version.pin)",
                pinner.user
            ),
        ));
    }
    Ok(pinner.user.clone())
}

/// The deployment a path names: the version it pins (the stable one or the canary), or
/// the stable one.
fn resolve(
    table: &Table,
    env: &str,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<Deployment>, OipError> {
    let deployment = table
        .environments
        .get(env)
        .and_then(|models| models.get(name))
        .ok_or_else(|| {
            OipError::new(
                StatusCode::NOT_FOUND,
                format!("model `{name}` is not served in `{env}`"),
            )
        })?;
    match version {
        None => Ok(deployment.clone()),
        Some(version) if version == deployment.version => Ok(deployment.clone()),
        Some(version) => table
            .canaries
            .get(&(env.to_owned(), name.to_owned()))
            .map(|canary| &canary.deployment)
            .filter(|canary| canary.version == version)
            .cloned()
            .ok_or_else(|| {
                OipError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "model `{name}` version `{version}` is not served in `{env}` (it serves {})",
                        deployment.version
                    ),
                )
            }),
    }
}

async fn model_metadata(
    State(gateway): State<Arc<Gateway>>,
    env: String,
    name: String,
    version: Option<String>,
) -> Result<Response, OipError> {
    let table = gateway.table();
    let deployment = resolve(&table, &env, &name, version.as_deref())?;
    let canary = table
        .canaries
        .get(&(env.clone(), name.clone()))
        .map(|canary| canary.deployment.version.clone());
    let tensors = |specs: &[crate::runtime::TensorSpec]| -> Vec<Value> {
        specs
            .iter()
            .map(|spec| json!({"name": spec.name, "datatype": spec.datatype.as_str(), "shape": spec.shape}))
            .collect()
    };
    Ok(json_response(
        StatusCode::OK,
        json!({
            "name": deployment.name,
            "versions": std::iter::once(deployment.version.clone()).chain(canary.filter(|v| *v != deployment.version)).collect::<Vec<_>>(),
            "platform": deployment.runtime.platform(),
            "inputs": tensors(deployment.runtime.inputs()),
            "outputs": tensors(deployment.runtime.outputs()),
        }),
    ))
}

async fn model_ready(
    State(gateway): State<Arc<Gateway>>,
    env: String,
    name: String,
    version: Option<String>,
) -> Result<Response, OipError> {
    let deployment = resolve(&gateway.table(), &env, &name, version.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        json!({"name": deployment.name, "ready": true}),
    ))
}

async fn infer(
    State(gateway): State<Arc<Gateway>>,
    env: String,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OipError> {
    let trace = TraceContext::from_headers(&headers);
    // Its own task: a caller that hangs up does not cancel the inference half-way, so what
    // ran is still counted and logged.
    let task = {
        let trace = trace.clone();
        tokio::spawn(async move {
            infer_traced(&gateway, env, name, version, headers, body, &trace)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        })
    };
    let mut answer = task.await.unwrap_or_else(|_| {
        OipError::new(StatusCode::INTERNAL_SERVER_ERROR, "the inference failed").into_response()
    });
    if let Ok(value) = HeaderValue::from_str(&trace.header()) {
        answer
            .headers_mut()
            .insert(crate::trace::TRACERESPONSE, value);
    }
    Ok(answer)
}

/// What an inference read and answered, for the request log.
#[derive(Default)]
struct Exchange {
    request_id: Option<String>,
    inputs: Option<Arc<Vec<tensor::Tensor>>>,
    outputs: Option<Arc<Vec<tensor::Tensor>>>,
}

async fn infer_traced(
    gateway: &Gateway,
    env: String,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    trace: &TraceContext,
) -> Result<Response, OipError> {
    let started = std::time::Instant::now();
    // One snapshot of the table decides the whole request.
    let table = gateway.table();
    let admitted = parse_tenant(&headers)
        .map_err(|error| (error, "bad_request"))
        .and_then(|tenant| {
            if version.is_some() {
                authorize_pin(&table, &env, &name, &headers).map_err(|error| {
                    let reason = if error.status == StatusCode::FORBIDDEN {
                        "forbidden"
                    } else {
                        "unauthenticated"
                    };
                    (error, reason)
                })?;
            }
            let (deployment, route) = route(&table, &env, &name, version.as_deref(), &headers)
                .map_err(|error| {
                    let reason = if error.status == StatusCode::NOT_FOUND {
                        "not_found"
                    } else {
                        "switched_off"
                    };
                    (error, reason)
                })?;
            Ok((tenant, deployment, route))
        });
    let (tenant, deployment, route) = match admitted {
        Ok(admitted) => admitted,
        Err((error, reason)) => {
            let environment = if table.environments.contains_key(&env) {
                env.clone()
            } else {
                "unknown".to_owned()
            };
            gateway
                .metrics
                .rejected
                .get_or_create(&crate::metrics::Rejected {
                    environment,
                    reason: reason.to_owned(),
                })
                .inc();
            return Err(error);
        }
    };
    let tenant_label = gateway.tenant_label(tenant.as_deref());
    let key = (env.clone(), name.clone());
    let canary_phase = table.canaries.contains_key(&key);
    let log = gateway
        .request_log
        .as_ref()
        .filter(|log| log.wants(canary_phase));
    // A copy for the shadow, for unpinned requests its share selects.
    let shadow = version
        .is_none()
        .then(|| table.shadows.get(&key).cloned())
        .flatten()
        .filter(|shadow| {
            shadow.share_bp > 0 && draw() % steward_core::routing::BUCKETS < shadow.share_bp
        })
        .map(|shadow| shadow.deployment);
    let labels = crate::metrics::Deployed {
        model: deployment.name.clone(),
        version: deployment.version.clone(),
        environment: env.clone(),
        tenant: tenant_label,
    };
    let mut exchange = Exchange::default();
    let answer = infer_deployed(
        gateway,
        &deployment,
        &labels,
        shadow,
        &headers,
        body,
        &mut exchange,
        trace,
    )
    .await;
    let code = match &answer {
        Ok(response) => response.status(),
        Err(error) => error.status,
    };
    gateway
        .metrics
        .requests
        .get_or_create(&crate::metrics::Outcome {
            model: labels.model.clone(),
            version: labels.version.clone(),
            environment: labels.environment.clone(),
            tenant: labels.tenant.clone(),
            code: code.as_u16().to_string(),
        })
        .inc();
    let elapsed = started.elapsed();
    gateway
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
    // Parent-based sampling: a caller's trace marked not sampled is not exported.
    if let Some(otlp) = gateway.otlp.as_ref().filter(|_| trace.flags & 0x01 == 1) {
        otlp.submit(crate::otlp::Span {
            trace: trace.clone(),
            start: std::time::SystemTime::now() - elapsed,
            duration: elapsed,
            model: deployment.name.clone(),
            version: deployment.version.clone(),
            environment: env.clone(),
            route: route.as_str(),
            status: code.as_u16(),
        });
    }
    if let Some(log) = log {
        log.submit(Record {
            time: std::time::SystemTime::now(),
            request_id: exchange
                .request_id
                .or_else(|| {
                    headers
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .and_then(request_id)
                })
                .unwrap_or_else(crate::trace::random_id),
            trace: trace.clone(),
            model: deployment.name.clone(),
            version: deployment.version.clone(),
            digest: deployment.digest.clone(),
            environment: env,
            tenant,
            route,
            canary_phase,
            status: code.as_u16(),
            latency: elapsed,
            inputs: exchange.inputs,
            outputs: exchange.outputs,
            error: answer.as_ref().err().map(|error| error.message.clone()),
            classes: deployment.classes.clone(),
        });
    }
    answer
}

fn upstream_error(error: crate::upstream::UpstreamError) -> OipError {
    match error {
        crate::upstream::UpstreamError::Refused(message) => {
            OipError::new(StatusCode::BAD_REQUEST, message)
        }
        crate::upstream::UpstreamError::Failed(message) => {
            OipError::new(StatusCode::BAD_GATEWAY, message)
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one inference, each used once; a struct would only rename them"
)]
async fn infer_deployed(
    gateway: &Gateway,
    deployment: &Deployment,
    labels: &crate::metrics::Deployed,
    shadow: Option<Arc<Deployment>>,
    headers: &HeaderMap,
    body: Bytes,
    exchange: &mut Exchange,
    trace: &TraceContext,
) -> Result<Response, OipError> {
    let bad = |message: String| OipError::new(StatusCode::BAD_REQUEST, message);
    // With binary tensors, the JSON header comes first and its length is in a header.
    let (header_part, mut binary) = match headers.get(HEADER_LENGTH) {
        Some(value) => {
            let length: usize = value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .filter(|&length| length <= body.len())
                .ok_or_else(|| {
                    bad(format!(
                        "Inference-Header-Content-Length must be a length within the {}-byte body",
                        body.len()
                    ))
                })?;
            (&body[..length], &body[length..])
        }
        None => (&body[..], &body[body.len()..]),
    };
    let request: Value = serde_json::from_slice(header_part).map_err(|error| {
        OipError::new(
            StatusCode::BAD_REQUEST,
            format!("the request is not JSON: {error}"),
        )
    })?;
    exchange.request_id = request
        .get("id")
        .and_then(Value::as_str)
        .and_then(request_id);
    let inputs_json = request["inputs"]
        .as_array()
        .ok_or_else(|| bad("`inputs` must be an array".into()))?;
    let mut inputs = Vec::with_capacity(inputs_json.len());
    for (index, input) in inputs_json.iter().enumerate() {
        let input_name = input["name"]
            .as_str()
            .ok_or_else(|| bad(format!("inputs[{index}].name must be a string")))?;
        let datatype = input["datatype"]
            .as_str()
            .and_then(Datatype::parse)
            .ok_or_else(|| bad(format!("input `{input_name}`: `datatype` must be one of BOOL, UINT8-64, INT8-64, FP16, BF16, FP32, FP64, BYTES")))?;
        let shape: Vec<u64> = input["shape"]
            .as_array()
            .and_then(|dims| dims.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                bad(format!(
                    "input `{input_name}`: `shape` must be an array of non-negative integers"
                ))
            })?;
        if let Some(size) = input["parameters"].get("binary_data_size") {
            let size = size
                .as_u64()
                .and_then(|size| usize::try_from(size).ok())
                .filter(|&size| size <= binary.len())
                .ok_or_else(|| {
                    bad(format!(
                        "input `{input_name}`: binary_data_size is more than the {} binary bytes left",
                        binary.len()
                    ))
                })?;
            let (bytes, rest) = binary.split_at(size);
            binary = rest;
            inputs.push(
                crate::binary::decode(
                    input_name,
                    datatype,
                    &shape,
                    bytes,
                    gateway.limits.tensor_elements,
                )
                .map_err(bad)?,
            );
            continue;
        }
        if input.get("data").is_none() {
            return Err(bad(format!("input `{input_name}` has no `data`")));
        }
        inputs.push(
            tensor::from_json(
                input_name,
                datatype,
                &shape,
                &input["data"],
                gateway.limits.tensor_elements,
            )
            .map_err(bad)?,
        );
    }
    if !binary.is_empty() {
        return Err(bad(format!(
            "{} bytes of binary data follow the inputs that no input claims",
            binary.len()
        )));
    }
    // Binary outputs: all of them when the request asks (`binary_data_output`), or those
    // requested with `binary_data`.
    let all_binary = request["parameters"]["binary_data_output"].as_bool() == Some(true);
    let binary_output = |name: &str| -> bool {
        request["outputs"]
            .as_array()
            .and_then(|outputs| outputs.iter().find(|output| output["name"] == name))
            .and_then(|output| output["parameters"]["binary_data"].as_bool())
            .unwrap_or(all_binary)
    };
    let requested: Option<Vec<String>> = request["outputs"].as_array().map(|outputs| {
        outputs
            .iter()
            .filter_map(|output| output["name"].as_str().map(str::to_owned))
            .collect()
    });
    if let Some(requested) = &requested
        && let Some(unknown) = requested.iter().find(|name| {
            !deployment
                .runtime
                .outputs()
                .iter()
                .any(|spec| &spec.name == *name)
        })
    {
        return Err(bad(format!("the model has no output `{unknown}`")));
    }
    let inputs = Arc::new(inputs);
    exchange.inputs = Some(inputs.clone());
    deployment.summarise(&gateway.metrics, &labels.environment, &inputs);
    let shadow_inputs = shadow.as_ref().map(|_| inputs.clone());
    // Bounded: a slot per running inference, then the CPU-bound work off the async workers.
    let timeout = gateway.limits.inference_timeout;
    let run = async {
        let slot = deployment
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| {
                OipError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the model is being unloaded",
                )
            })?;
        match &deployment.runtime {
            Runtime::Onnx(model) => deployment
                .run_onnx(model, inputs, slot)
                .await
                .map_err(|_| {
                    OipError::new(StatusCode::INTERNAL_SERVER_ERROR, "the inference failed")
                })?
                .map_err(bad),
            Runtime::Upstream(upstream) => {
                let _slot = slot;
                upstream
                    .infer(
                        &inputs,
                        requested.as_deref(),
                        exchange.request_id.as_deref(),
                        trace,
                        gateway.limits.tensor_elements,
                    )
                    .await
                    .map_err(upstream_error)
            }
        }
    };
    let outputs = tokio::time::timeout(timeout, run).await.map_err(|_| {
        OipError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the inference took longer than {timeout:?}"),
        )
    })??;
    let outputs = Arc::new(outputs);
    exchange.outputs = Some(outputs.clone());
    if let (Some(shadow), Some(inputs)) = (shadow, shadow_inputs) {
        start_shadow(gateway, shadow, labels, inputs, outputs.clone(), trace);
    }
    // Prediction confidence: the top probability of each row of class-probability outputs.
    for output in outputs.iter() {
        if let (tensor::Elements::Float(values), [rows, classes]) =
            (&output.elements, output.shape.as_slice())
            && *classes >= 2
            && values.iter().all(|p| (0.0..=1.0).contains(p))
        {
            let histogram = gateway.metrics.confidence.get_or_create(labels);
            for row in values.chunks(*classes as usize).take(*rows as usize) {
                histogram.observe(row.iter().copied().fold(0.0, f64::max));
            }
        }
    }
    let mut blobs: Vec<u8> = Vec::new();
    let outputs: Vec<Value> = outputs
        .iter()
        .filter(|output| {
            requested
                .as_ref()
                .is_none_or(|requested| requested.contains(&output.name))
        })
        .map(|output| {
            let mut json = json!({
                "name": output.name, "datatype": output.datatype.as_str(), "shape": output.shape,
            });
            if binary_output(&output.name) {
                let bytes = crate::binary::encode(output);
                json["parameters"] = json!({"binary_data_size": bytes.len()});
                blobs.extend(bytes);
            } else {
                json["data"] = tensor::to_json(&output.elements);
            }
            json
        })
        .collect();
    let mut response = json!({
        "model_name": deployment.name,
        "model_version": deployment.version,
        "outputs": outputs,
    });
    if let Some(id) = request.get("id").and_then(Value::as_str) {
        response["id"] = json!(id);
    }
    if blobs.is_empty()
        && !outputs
            .iter()
            .any(|output| output["parameters"]["binary_data_size"].is_u64())
    {
        return Ok(json_response(StatusCode::OK, response));
    }
    let header = response.to_string();
    let length = header.len();
    let mut body = header.into_bytes();
    body.extend(blobs);
    let mut answer = (StatusCode::OK, body).into_response();
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(HEADER_LENGTH, HeaderValue::from(length));
    Ok(answer)
}
