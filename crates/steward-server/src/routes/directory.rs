//! Business units, users, roles, certifications, tokens and environments.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::audit::EventDraft;
use steward_core::domain::{Name, Role, Scope};
use steward_policy::Resource;

use super::{ApiPath, JsonBody, commit, created, ok, receipt};
use crate::auth;
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

fn parse_name(what: &'static str, value: &str) -> Result<Name, ApiError> {
    Name::parse(what, value).map_err(|err| ApiError::BadRequest(err.to_string()))
}

fn event(
    caller: &Caller,
    subject: String,
    payload: Value,
    decision: &steward_policy::Decision,
) -> EventDraft {
    EventDraft {
        actor: caller.name.clone(),
        action: caller.action.as_str().to_owned(),
        subject,
        payload,
        decision: caller.decision_json(decision),
    }
}

async fn user_json(app: &App, name: &str) -> Result<Value, ApiError> {
    let user = app
        .store
        .user(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user `{name}`")))?;
    let roles: Vec<Value> = app
        .store
        .role_bindings(name)
        .await?
        .into_iter()
        .map(|binding| json!({"role": binding.role, "scope": binding.scope, "granted_by": binding.granted_by, "granted_at": binding.granted_at}))
        .collect();
    let certifications: Vec<Value> = app
        .store
        .certifications(name)
        .await?
        .into_iter()
        .map(|cert| json!({"id": cert.id, "name": cert.name, "issued_at": cert.issued_at, "expires_at": cert.expires_at, "recorded_by": cert.recorded_by}))
        .collect();
    let certified_until = crate::authz::certified_until(app, name).await?;
    Ok(json!({
        "name": user.name, "display_name": user.display_name, "email": user.email,
        "created_at": user.created_at, "created_by": user.created_by,
        "roles": roles, "certifications": certifications,
        "certified": app.now_unix() < certified_until,
    }))
}

pub async fn whoami(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let resource = Resource::User {
        id: caller.name.clone(),
    };
    authorize(
        &app,
        &caller,
        resource,
        RoleScope::Any,
        Facts {
            target_is_self: Some(true),
            ..Facts::default()
        },
    )
    .await?;
    Ok(ok(user_json(&app, &caller.name).await?))
}

pub async fn list_units(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Any,
        Facts::default(),
    )
    .await?;
    let units: Vec<Value> = app
        .store
        .business_units()
        .await?
        .into_iter()
        .map(|unit| json!({"name": unit.name, "description": unit.description, "created_at": unit.created_at, "created_by": unit.created_by}))
        .collect();
    Ok(ok(json!({ "items": units })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

pub async fn create_unit(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUnit>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = parse_name("business unit", &body.name)?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let mut tx = app.store.begin().await?;
    tx.insert_business_unit(name.as_str(), &body.description, &caller.name, &app.now())
        .await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("business_unit:{name}"),
            json!({"description": body.description}),
            &decision,
        ),
    )
    .await?;
    Ok(created(
        json!({"name": name.as_str(), "audit": receipt(&entry)}),
    ))
}

pub async fn list_users(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let users: Vec<Value> = app
        .store
        .users()
        .await?
        .into_iter()
        .map(|user| json!({"name": user.name, "display_name": user.display_name, "email": user.email, "created_at": user.created_at}))
        .collect();
    Ok(ok(json!({ "items": users })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
}

pub async fn create_user(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = parse_name("user", &body.name)?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let mut tx = app.store.begin().await?;
    tx.insert_user(
        name.as_str(),
        &body.display_name,
        &body.email,
        &caller.name,
        &app.now(),
    )
    .await?;
    let payload = json!({"display_name": body.display_name, "email": body.email});
    let entry = commit(
        &app,
        tx,
        event(&caller, format!("user:{name}"), payload, &decision),
    )
    .await?;
    Ok(created(
        json!({"name": name.as_str(), "audit": receipt(&entry)}),
    ))
}

pub async fn show_user(
    State(app): State<App>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let facts = Facts {
        target_is_self: Some(user == caller.name),
        ..Facts::default()
    };
    authorize(
        &app,
        &caller,
        Resource::User { id: user.clone() },
        if user == caller.name {
            RoleScope::Any
        } else {
            RoleScope::Global
        },
        facts,
    )
    .await?;
    Ok(ok(user_json(&app, &user).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[schema(
        pattern = "^(data_scientist|mlops_engineer|compliance_officer|reviewer|data_protection_officer|auditor|admin)$"
    )]
    pub role: String,
    /// `*` (default) for global, or a business unit.
    #[serde(default = "global_scope")]
    #[schema(pattern = "^(\\*|[a-z0-9][a-z0-9._-]{0,62})$")]
    pub scope: String,
}

fn global_scope() -> String {
    "*".to_owned()
}

async fn role_change_decision(
    app: &App,
    caller: &Caller,
    user: &str,
    role: &str,
    scope: &str,
) -> Result<(Role, Scope, steward_policy::Decision), ApiError> {
    let role: Role = role
        .parse()
        .map_err(|err: steward_core::domain::ParseError| ApiError::BadRequest(err.to_string()))?;
    let scope = Scope::parse(scope).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    if app.store.user(user).await?.is_none() {
        return Err(ApiError::NotFound(format!("user `{user}`")));
    }
    if let Scope::BusinessUnit(unit) = &scope
        && app.store.business_unit(unit.as_str()).await?.is_none()
    {
        return Err(ApiError::NotFound(format!("business unit `{unit}`")));
    }
    let role_scope = match &scope {
        Scope::Global => RoleScope::Global,
        Scope::BusinessUnit(unit) => RoleScope::Unit(unit.to_string()),
    };
    let facts = Facts {
        granted_role: Some(role.as_str().to_owned()),
        granted_global: Some(scope == Scope::Global),
        target_is_self: Some(user == caller.name),
        ..Facts::default()
    };
    let decision = authorize(
        app,
        caller,
        Resource::User {
            id: user.to_owned(),
        },
        role_scope,
        facts,
    )
    .await?;
    Ok((role, scope, decision))
}

pub async fn grant_role(
    State(app): State<App>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<Grant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (role, scope, decision) =
        role_change_decision(&app, &caller, &user, &body.role, &body.scope).await?;
    let mut tx = app.store.begin().await?;
    tx.grant_role(
        &user,
        role.as_str(),
        scope.as_str(),
        &caller.name,
        &app.now(),
    )
    .await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("user:{user}"),
            json!({"role": role.as_str(), "scope": scope.as_str()}),
            &decision,
        ),
    )
    .await?;
    Ok(created(
        json!({"user": user, "role": role.as_str(), "scope": scope.as_str(), "audit": receipt(&entry)}),
    ))
}

pub async fn revoke_role(
    State(app): State<App>,
    caller: Caller,
    ApiPath((user, scope, role)): ApiPath<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (role, scope, decision) = role_change_decision(&app, &caller, &user, &role, &scope).await?;
    let mut tx = app.store.begin().await?;
    if !tx.revoke_role(&user, role.as_str(), scope.as_str()).await? {
        return Err(ApiError::NotFound(format!(
            "role `{role}` in scope `{}` for `{user}`",
            scope.as_str()
        )));
    }
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("user:{user}"),
            json!({"role": role.as_str(), "scope": scope.as_str()}),
            &decision,
        ),
    )
    .await?;
    Ok(ok(json!({"revoked": true, "audit": receipt(&entry)})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCertification {
    #[schema(min_length = 1)]
    pub name: String,
    /// An RFC 3339 time or a date.
    #[schema(
        pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
    )]
    pub issued_at: String,
    #[schema(
        pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
    )]
    pub expires_at: String,
}

pub async fn record_certification(
    State(app): State<App>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<NewCertification>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut problems = Vec::new();
    let issued = crate::clock::parse(&body.issued_at);
    let expires = crate::clock::parse(&body.expires_at);
    if issued.is_none() {
        problems.push(format!(
            "issued_at `{}` is not an RFC 3339 time or a date",
            body.issued_at
        ));
    }
    if expires.is_none() {
        problems.push(format!(
            "expires_at `{}` is not an RFC 3339 time or a date",
            body.expires_at
        ));
    }
    if let (Some(issued), Some(expires)) = (issued, expires)
        && expires <= issued
    {
        problems.push("expires_at must be after issued_at".to_owned());
    }
    if body.name.trim().is_empty() {
        problems.push("name must not be empty".to_owned());
    }
    let (Some(issued), Some(expires), true) = (issued, expires, problems.is_empty()) else {
        return Err(ApiError::BadRequest(problems.join("; ")));
    };
    if app.store.user(&user).await?.is_none() {
        return Err(ApiError::NotFound(format!("user `{user}`")));
    }
    let decision = authorize(
        &app,
        &caller,
        Resource::User { id: user.clone() },
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let (issued, expires) = (crate::clock::format(issued), crate::clock::format(expires));
    let mut tx = app.store.begin().await?;
    let id = tx
        .insert_certification(
            &user,
            &body.name,
            &issued,
            &expires,
            &caller.name,
            &app.now(),
        )
        .await?;
    let payload = json!({"id": id, "name": body.name, "issued_at": issued, "expires_at": expires});
    let entry = commit(
        &app,
        tx,
        event(&caller, format!("user:{user}"), payload, &decision),
    )
    .await?;
    Ok(created(json!({"id": id, "audit": receipt(&entry)})))
}

pub async fn list_tokens(
    State(app): State<App>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let facts = Facts {
        target_is_self: Some(user == caller.name),
        ..Facts::default()
    };
    authorize(
        &app,
        &caller,
        Resource::User { id: user.clone() },
        RoleScope::Global,
        facts,
    )
    .await?;
    if app.store.user(&user).await?.is_none() {
        return Err(ApiError::NotFound(format!("user `{user}`")));
    }
    let tokens: Vec<Value> = app
        .store
        .tokens(&user)
        .await?
        .into_iter()
        .map(|token| json!({"id": token.id, "name": token.name, "created_at": token.created_at, "created_by": token.created_by, "revoked_at": token.revoked_at}))
        .collect();
    Ok(ok(json!({ "items": tokens })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    pub name: String,
}

pub async fn create_token(
    State(app): State<App>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let facts = Facts {
        target_is_self: Some(user == caller.name),
        ..Facts::default()
    };
    let decision = authorize(
        &app,
        &caller,
        Resource::User { id: user.clone() },
        RoleScope::Global,
        facts,
    )
    .await?;
    if app.store.user(&user).await?.is_none() {
        return Err(ApiError::NotFound(format!("user `{user}`")));
    }
    let token = auth::generate()
        .map_err(|err| ApiError::Internal(Box::new(std::io::Error::other(err.to_string()))))?;
    let mut tx = app.store.begin().await?;
    tx.insert_token(
        &token.id,
        &user,
        &body.name,
        &token.secret_hash,
        &caller.name,
        &app.now(),
    )
    .await?;
    // The event names the token by id; its secret never enters the trail.
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("token:{}", token.id),
            json!({"user": user, "name": body.name}),
            &decision,
        ),
    )
    .await?;
    Ok(created(
        json!({"id": token.id, "user": user, "token": token.text, "note": "shown once; store it now", "audit": receipt(&entry)}),
    ))
}

pub async fn revoke_token(
    State(app): State<App>,
    caller: Caller,
    ApiPath((user, token_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    // Only an id: anything else may be a whole token (a secret in a URL), so it is refused
    // without being repeated.
    if !crate::auth::is_token_id(&token_id) {
        return Err(ApiError::BadRequest(
            "a token is revoked by its id (16 hex digits, `steward tokens list`); if the path held a whole token, treat it as exposed".to_owned(),
        ));
    }
    let token = app
        .store
        .token(&token_id)
        .await?
        .filter(|token| token.user_name == user);
    let Some(token) = token else {
        return Err(ApiError::NotFound(format!(
            "token `{token_id}` of `{user}`"
        )));
    };
    let facts = Facts {
        target_is_self: Some(user == caller.name),
        ..Facts::default()
    };
    let decision = authorize(
        &app,
        &caller,
        Resource::User { id: user.clone() },
        RoleScope::Global,
        facts,
    )
    .await?;
    let mut tx = app.store.begin().await?;
    if !tx.revoke_token(&token.id, &caller.name, &app.now()).await? {
        return Err(ApiError::Conflict(format!(
            "token `{token_id}` is already revoked"
        )));
    }
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("token:{}", token.id),
            json!({"user": user}),
            &decision,
        ),
    )
    .await?;
    Ok(ok(json!({"revoked": true, "audit": receipt(&entry)})))
}

pub async fn list_environments(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Any,
        Facts::default(),
    )
    .await?;
    let environments: Vec<Value> = app
        .store
        .environments()
        .await?
        .into_iter()
        .map(|env| json!({"name": env.name, "production": env.production, "region": env.region, "position": env.position, "created_at": env.created_at}))
        .collect();
    Ok(ok(json!({ "items": environments })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub name: String,
    #[serde(default)]
    pub production: bool,
    #[serde(default)]
    pub position: Option<i64>,
    /// The region it runs in, e.g. `eu-west`; usage terms may restrict deployment by region.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub region: Option<String>,
}

pub async fn create_environment(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewEnvironment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = parse_name("environment", &body.name)?;
    let region = body
        .region
        .as_deref()
        .map(|region| parse_name("region", region))
        .transpose()?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let position = match body.position {
        Some(position) => position,
        None => {
            app.store
                .environments()
                .await?
                .iter()
                .map(|env| env.position)
                .max()
                .unwrap_or(0)
                + 1
        }
    };
    let mut tx = app.store.begin().await?;
    tx.insert_environment(
        name.as_str(),
        body.production,
        position,
        &caller.name,
        &app.now(),
    )
    .await?;
    if let Some(region) = &region {
        tx.set_environment_region(name.as_str(), region.as_str())
            .await?;
    }
    let payload = json!({"production": body.production, "position": position, "region": region.as_ref().map(|region| region.as_str())});
    let entry = commit(
        &app,
        tx,
        event(&caller, format!("environment:{name}"), payload, &decision),
    )
    .await?;
    Ok(created(
        json!({"name": name.as_str(), "audit": receipt(&entry)}),
    ))
}
