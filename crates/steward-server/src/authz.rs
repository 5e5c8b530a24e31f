//! Authentication and authorisation at the edge of `/api/v1`.
//!
//! Invariants:
//! - Every route is in `ROUTES` with its action; the middleware refuses (403) any request
//!   whose matched route has no entry, so a route added without a policy mapping is denied.
//! - Every decision comes from the Cedar engine; a deny is audited (fail closed: when the
//!   denial cannot be recorded the answer is 503) and returned with its reasons.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steward_core::audit::EventDraft;
use steward_core::domain::{Role, RoleBinding, Scope, effective_roles};
use steward_policy::{Action, Decision, Request as PolicyRequest, Resource};

use crate::auth;
use crate::error::ApiError;
use crate::routes::{
    audit, blobs, calendar, directory, flags, keys, promotions, registry, routing, webhooks,
};
use crate::state::App;

/// One API route and the action it asks the policy about (`None`: public).
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub action: Option<Action>,
    pub summary: &'static str,
    /// Adds the request body's schema (and those it refers to) to the list; returns its name.
    pub body: Option<SchemaFn>,
    /// The query parameters, for the OpenAPI document.
    pub query: Option<ParamsFn>,
}

pub type Schemas = Vec<(
    String,
    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
)>;
pub type SchemaFn = fn(&mut Schemas) -> String;
pub type ParamsFn = fn() -> Vec<utoipa::openapi::path::Parameter>;

fn schema_of<T: utoipa::ToSchema>(schemas: &mut Schemas) -> String {
    let name = T::name().into_owned();
    schemas.push((name.clone(), T::schema()));
    T::schemas(schemas);
    name
}

fn params_of<T: utoipa::IntoParams>() -> Vec<utoipa::openapi::path::Parameter> {
    T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
}

macro_rules! routes {
    (@body) => { None };
    (@body $ty:ty) => { Some(schema_of::<$ty> as SchemaFn) };
    (@query) => { None };
    (@query $ty:ty) => { Some(params_of::<$ty> as ParamsFn) };
    ($($method:ident $path:literal $(body($body:ty))? $(query($query:ty))? => $action:expr, $summary:literal;)+) => {
        pub fn routes() -> Vec<Route> {
            vec![$(Route {
                method: Method::$method,
                path: $path,
                action: $action,
                summary: $summary,
                body: routes!(@body $($body)?),
                query: routes!(@query $($query)?),
            }),+]
        }
    };
}

routes! {
    GET "/api/v1/openapi.json" => None, "This OpenAPI document";
    GET "/api/v1/whoami" => Some(Action::UserRead), "The calling user, roles and certification";
    GET "/api/v1/business-units" => Some(Action::BusinessUnitRead), "List business units";
    POST "/api/v1/business-units" body(directory::NewUnit) => Some(Action::BusinessUnitCreate), "Create a business unit";
    GET "/api/v1/users" => Some(Action::UserList), "List users";
    POST "/api/v1/users" body(directory::NewUser) => Some(Action::UserCreate), "Create a user";
    GET "/api/v1/users/{user}" => Some(Action::UserRead), "Show a user with roles and certifications";
    POST "/api/v1/users/{user}/roles" body(directory::Grant) => Some(Action::RoleGrant), "Grant a role in a scope";
    DELETE "/api/v1/users/{user}/roles/{scope}/{role}" => Some(Action::RoleRevoke), "Revoke a role";
    POST "/api/v1/users/{user}/certifications" body(directory::NewCertification) => Some(Action::CertificationRecord), "Record a training certification";
    GET "/api/v1/users/{user}/tokens" => Some(Action::TokenList), "List a user's tokens (never their secrets)";
    POST "/api/v1/users/{user}/tokens" body(directory::NewToken) => Some(Action::TokenCreate), "Create a token; its secret is shown once";
    DELETE "/api/v1/users/{user}/tokens/{token_id}" => Some(Action::TokenRevoke), "Revoke a token by its id (never the token itself)";
    GET "/api/v1/environments" => Some(Action::EnvironmentRead), "List environments";
    POST "/api/v1/environments" body(directory::NewEnvironment) => Some(Action::EnvironmentCreate), "Create an environment";
    GET "/api/v1/models" => Some(Action::InventorySearch), "List models the caller may see";
    POST "/api/v1/models" body(registry::NewModel) => Some(Action::ModelCreate), "Create a model";
    GET "/api/v1/models/{unit}/{model}" => Some(Action::ModelRead), "Show a model";
    GET "/api/v1/models/{unit}/{model}/versions" => Some(Action::ModelRead), "List a model's versions";
    POST "/api/v1/models/{unit}/{model}/versions" body(steward_core::manifest::VersionManifest) => Some(Action::VersionRegister), "Register a version (documentation is checked)";
    POST "/api/v1/models/{unit}/{model}/packages" body(registry::NewPackage) => Some(Action::VersionRegister), "Register a version from a pushed OCI package (id = manifest digest)";
    GET "/api/v1/models/{unit}/{model}/aliases" query(registry::AsOf) => Some(Action::AliasRead), "Current aliases, or as of a time";
    GET "/api/v1/models/{unit}/{model}/aliases/{environment}/history" query(registry::AsOf) => Some(Action::AliasRead), "Every move of an alias";
    POST "/api/v1/models/{unit}/{model}/aliases/{environment}/rollback" body(registry::Rollback) => Some(Action::AliasRollback), "Roll an alias back to where it pointed before its last move (at once, audited)";
    GET "/api/v1/models/{unit}/{model}/audit" query(registry::Limit) => Some(Action::ModelRead), "Audit entries about a model";
    GET "/api/v1/models/{unit}/{model}/flags" => Some(Action::ModelRead), "Feature flags and kill switches in force per environment";
    PUT "/api/v1/models/{unit}/{model}/flags/{environment}/{flag}" body(flags::FlagState) => Some(Action::FlagSet), "Turn a feature flag on or off (`serving` is the kill switch); optionally with a fallback version";
    GET "/api/v1/models/{unit}/{model}/routing" => Some(Action::ModelRead), "Canary routing in force per environment";
    PUT "/api/v1/models/{unit}/{model}/routing/{environment}" body(routing::NewRouting) => Some(Action::RoutingSet), "Set an environment's canary (weight in basis points, sticky header); the canary must pass the environment's gates";
    GET "/api/v1/models/{unit}/{model}/promotions" query(promotions::ListQuery) => Some(Action::ModelRead), "A model's promotion requests, newest first";
    POST "/api/v1/promotions" body(promotions::NewPromotion) => Some(Action::PromotionRequest), "Request a promotion of a version to an environment (the only way an alias moves); applied at once when every gate passes";
    GET "/api/v1/promotions/{id}" => Some(Action::ModelRead), "A promotion request with its approvals and gates";
    POST "/api/v1/promotions/{id}/approvals" body(promotions::NewPromotionApproval) => Some(Action::PromotionApprove), "Approve a promotion (idempotent); applied when every gate passes";
    POST "/api/v1/promotions/{id}/reject" body(promotions::Closing) => Some(Action::PromotionReject), "Reject a pending promotion";
    POST "/api/v1/promotions/{id}/withdraw" body(promotions::Closing) => Some(Action::PromotionWithdraw), "Withdraw a pending promotion";
    POST "/api/v1/promotions/{id}/apply" => Some(Action::PromotionRequest), "Evaluate a pending promotion again and apply it if every gate passes";
    POST "/api/v1/promotions/{id}/review" body(promotions::Review) => Some(Action::PromotionReview), "Review an emergency promotion after the fact";
    GET "/api/v1/versions/{digest}/gates" query(promotions::GateQuery) => Some(Action::VersionRead), "Evaluate every gate of promoting a version to an environment, changing nothing (the CI gate)";
    POST "/api/v1/versions/{digest}/drift" body(promotions::DriftAttachment) => Some(Action::VersionDrift), "Attach a drift report (validation against reference) for the drift gate";
    GET "/api/v1/versions/{digest}" => Some(Action::VersionRead), "Show a version by digest (deprecated ones too)";
    GET "/api/v1/versions/{digest}/package" => Some(Action::VersionRead), "A packaged version's manifests, to pull it back byte for byte";
    POST "/api/v1/versions/{digest}/deprecate" body(registry::Deprecation) => Some(Action::VersionDeprecate), "Deprecate a version";
    GET "/api/v1/versions/{digest}/approvals" => Some(Action::VersionRead), "List sign-offs of a version";
    POST "/api/v1/versions/{digest}/approvals" body(registry::NewApproval) => Some(Action::VersionApprove), "Sign off a version";
    GET "/api/v1/versions/{digest}/compatibility" query(registry::Against) => Some(Action::VersionRead), "Schema changes against another version, which break callers, and whether the version number says so";
    POST "/api/v1/versions/{digest}/verify" => Some(Action::VersionVerify), "Re-verify every blob and the signature of a version, as loading it to serve does";
    GET "/api/v1/calendar/windows" => Some(Action::CalendarRead), "Freeze and maintenance windows, with whether each is active now";
    POST "/api/v1/calendar/windows" body(calendar::NewWindow) => Some(Action::CalendarManage), "Add a freeze or maintenance window (RFC 5545 start, duration, rule)";
    DELETE "/api/v1/calendar/windows/{id}" => Some(Action::CalendarManage), "Delete a window (kept, marked deleted)";
    POST "/api/v1/calendar/import" body(calendar::CalendarImport) => Some(Action::CalendarManage), "Import the events of an iCalendar file as windows";
    GET "/api/v1/keys" => Some(Action::KeyRead), "Key-encryption key versions and how many data keys each wraps";
    POST "/api/v1/keys/rotate" => Some(Action::KeyRotate), "Add a key version and re-wrap every data key under it (no data re-encrypted)";
    POST "/api/v1/keys/retire" body(keys::Retirement) => Some(Action::KeyRetire), "Destroy a key version no data key is wrapped under";
    PUT "/api/v1/blobs/{digest}" query(blobs::UploadQuery) => Some(Action::BlobUpload), "Upload a blob (streamed, verified against its digest; `seal=true` encrypts it at rest)";
    GET "/api/v1/blobs/{digest}" => Some(Action::BlobRead), "Download a blob (re-verified before it is sent)";
    POST "/api/v1/advisories" body(registry::AdvisoryImport) => Some(Action::AdvisoryImport), "Import vulnerability advisories (OSV records)";
    GET "/api/v1/webhooks" => Some(Action::WebhookRead), "Webhook subscriptions (never their secrets)";
    POST "/api/v1/webhooks" body(webhooks::NewWebhook) => Some(Action::WebhookManage), "Subscribe a webhook to audit actions (CloudEvents, Standard Webhooks signatures); the secret is shown once";
    DELETE "/api/v1/webhooks/{id}" => Some(Action::WebhookManage), "Delete a webhook (kept, marked deleted)";
    GET "/api/v1/webhooks/{id}/deliveries" query(webhooks::DeliveryQuery) => Some(Action::WebhookRead), "A webhook's deliveries: outcome, attempts, answer";
    GET "/api/v1/search" query(registry::SearchQuery) => Some(Action::InventorySearch), "Search the inventory";
    GET "/api/v1/audit/events" query(audit::Page) => Some(Action::AuditRead), "Audit entries after a sequence number";
    GET "/api/v1/audit/verify" => Some(Action::AuditVerify), "Verify the chain and every checkpoint";
    GET "/api/v1/audit/checkpoints" => Some(Action::AuditRead), "Signed checkpoints";
    POST "/api/v1/audit/checkpoints" => Some(Action::AuditCheckpoint), "Make a signed checkpoint now";
    GET "/api/v1/audit/consistency" query(audit::ConsistencyQuery) => Some(Action::AuditRead), "Consistency proof between two checkpoints (for witnesses)";
    GET "/api/v1/audit/proof/{seq}" query(audit::ProofQuery) => Some(Action::AuditRead), "Inclusion proof of an entry against a checkpoint";
    GET "/api/v1/audit/export" => Some(Action::AuditExport), "All entries as JSON lines";
    POST "/api/v1/audit/hash" body(audit::HashRequest) => Some(Action::AuditHash), "HMAC a value as the audit trail stores secrets";
}

/// The authenticated caller of a governed route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub bindings: Vec<RoleBinding>,
    pub certified_until: i64,
    pub action: Action,
    pub route: &'static str,
    /// The token the request came with (its public id), and who issued it. Both go into
    /// every decision, so an action through a token minted by someone else is visible.
    pub token_id: String,
    pub token_issuer: String,
}

impl Caller {
    /// The decision as recorded with audit events and returned in 403 bodies.
    pub fn decision_json(&self, decision: &steward_policy::Decision) -> serde_json::Value {
        let mut json = decision.to_json(self.action);
        json["credential"] =
            serde_json::json!({"token": self.token_id, "issued_by": self.token_issuer});
        json
    }
}

/// Which role bindings count for a decision.
#[derive(Debug, Clone)]
pub enum RoleScope {
    /// Global bindings plus those in this business unit.
    Unit(String),
    /// Global bindings only (administration, the audit log).
    Global,
    /// Any binding anywhere (reading shared things such as environments).
    Any,
}

/// Extra facts for one decision.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub production: Option<bool>,
    pub granted_role: Option<String>,
    pub granted_global: Option<bool>,
    pub target_is_self: Option<bool>,
}

impl Caller {
    pub fn roles(&self, scope: &RoleScope) -> Vec<Role> {
        match scope {
            RoleScope::Unit(unit) => effective_roles(&self.bindings, Some(unit)),
            RoleScope::Global => effective_roles(&self.bindings, None),
            RoleScope::Any => {
                let mut roles: Vec<Role> =
                    self.bindings.iter().map(|binding| binding.role).collect();
                roles.sort();
                roles.dedup();
                roles
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

fn route_for(method: &Method, path: &str) -> Option<Route> {
    routes()
        .into_iter()
        .find(|route| route.method == *method && route.path == path)
}

/// Authenticates, and refuses routes without a policy mapping.
pub async fn middleware(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned())
        .unwrap_or_default();
    let route = route_for(request.method(), &path);
    if let Some(Route { action: None, .. }) = route {
        return next.run(request).await;
    }
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let caller = match authenticate(&app, &header).await {
        Ok(caller) => caller,
        Err(err) => {
            // Failed authentication is logged, not written to the audit trail: anyone can
            // send these, and they must not be able to grow the tamper-evident log. The
            // presented token never appears, only whether there was one.
            if matches!(err, ApiError::Unauthenticated) {
                tracing::warn!(path = %path, token_presented = !header.is_empty(), "Request was not authenticated.");
            }
            return err.into_response();
        }
    };
    if !app
        .rate_limiter
        .allow(&caller.name, std::time::Instant::now())
    {
        return ApiError::TooManyRequests(app.config.user_requests_per_second_max).into_response();
    }
    let Some(Route {
        action: Some(action),
        path,
        ..
    }) = route
    else {
        // A route nobody mapped to an action: deny, and record the attempt.
        let decision = json!({"effect": "deny", "action": "unmapped", "policies": ["unmapped-route"], "errors": [], "policy_set": app.engine.policy_set_hash()});
        let subject = format!("route:{} {}", request.method(), request.uri().path());
        let draft = EventDraft {
            actor: caller.name.clone(),
            action: "unmapped.denied".into(),
            subject,
            payload: Value::Null,
            decision: decision.clone(),
        };
        if let Err(err) = crate::routes::append_event(&app, draft).await {
            return err.into_response();
        }
        return ApiError::Forbidden {
            message: "route has no policy mapping".into(),
            decision,
        }
        .into_response();
    };
    request.extensions_mut().insert(Caller {
        action,
        route: path,
        ..caller
    });
    next.run(request).await
}

async fn authenticate(app: &App, header: &str) -> Result<Caller, ApiError> {
    let presented = header
        .strip_prefix("Bearer ")
        .ok_or(ApiError::Unauthenticated)?;
    let (id, secret) = auth::parse(presented.trim()).ok_or(ApiError::Unauthenticated)?;
    let token = app
        .store
        .token(id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if token.revoked_at.is_some()
        || !auth::hashes_equal(&auth::hash_secret(secret), &token.secret_hash)
    {
        return Err(ApiError::Unauthenticated);
    }
    token_caller(app, token).await
}

/// The caller a (checked, unrevoked) token stands for: its user's role bindings and
/// certification as they are now.
pub async fn token_caller(app: &App, token: steward_store::Token) -> Result<Caller, ApiError> {
    let bindings = app
        .store
        .role_bindings(&token.user_name)
        .await?
        .into_iter()
        .filter_map(|binding| {
            Some(RoleBinding {
                role: binding.role.parse().ok()?,
                scope: Scope::parse(&binding.scope).ok()?,
            })
        })
        .collect();
    let certified_until = certified_until(app, &token.user_name).await?;
    Ok(Caller {
        name: token.user_name,
        bindings,
        certified_until,
        action: Action::UserRead,
        route: "",
        token_id: token.id,
        token_issuer: token.created_by,
    })
}

/// Unix seconds until which the user holds a current certification (0: none).
pub async fn certified_until(app: &App, user: &str) -> Result<i64, ApiError> {
    let now = app.now_unix();
    let certifications = app.store.certifications(user).await?;
    Ok(certifications
        .iter()
        .filter_map(|cert| {
            let issued = crate::clock::parse(&cert.issued_at)?.timestamp();
            let expires = crate::clock::parse(&cert.expires_at)?.timestamp();
            (issued <= now).then_some(expires)
        })
        .max()
        .unwrap_or(0))
}

/// Asks the policy; on deny, audits the attempt and returns 403 with the reasons.
pub async fn authorize(
    app: &App,
    caller: &Caller,
    resource: Resource,
    scope: RoleScope,
    facts: Facts,
) -> Result<Decision, ApiError> {
    let decision = decide(app, caller, resource.clone(), &scope, facts);
    if decision.allowed {
        return Ok(decision);
    }
    refuse(app, caller, &resource, decision).await
}

/// The policy's decision for the caller's action, without recording anything (for
/// answers that depend on a permission, e.g. whether a gate check may re-verify blobs).
pub fn decide(
    app: &App,
    caller: &Caller,
    resource: Resource,
    scope: &RoleScope,
    facts: Facts,
) -> Decision {
    let roles = caller
        .roles(scope)
        .into_iter()
        .map(|role| role.as_str().to_owned())
        .collect();
    let request = PolicyRequest {
        certified_until: caller.certified_until,
        production: facts.production,
        granted_role: facts.granted_role,
        granted_global: facts.granted_global,
        target_is_self: facts.target_is_self,
        token_issuer: Some(caller.token_issuer.clone()),
        ..PolicyRequest::new(&caller.name, roles, caller.action, resource, app.now_unix())
    };
    app.engine.authorize(&request)
}

async fn refuse(
    app: &App,
    caller: &Caller,
    resource: &Resource,
    decision: Decision,
) -> Result<Decision, ApiError> {
    let decision_json = caller.decision_json(&decision);
    let draft = EventDraft {
        actor: caller.name.clone(),
        action: format!("{}.denied", caller.action.as_str()),
        subject: subject_of(resource),
        payload: json!({"route": caller.route}),
        decision: decision_json.clone(),
    };
    crate::routes::append_event(app, draft).await?;
    let message = format!(
        "`{}` may not {} here: {}",
        caller.name,
        caller.action.as_str(),
        decision.reasons.join(", ")
    );
    Err(ApiError::Forbidden {
        message,
        decision: decision_json,
    })
}

pub fn subject_of(resource: &Resource) -> String {
    match resource {
        Resource::Directory => "directory".to_owned(),
        Resource::BusinessUnit { name } => format!("business_unit:{name}"),
        Resource::User { id } => format!("user:{id}"),
        Resource::Model(model) => format!("model:{}/{}", model.business_unit, model.name),
        Resource::Version { digest, .. } => format!("version:{digest}"),
    }
}
