//! Feature flags and kill switches (issue 5): per model, environment and flag name, turned
//! on and off through this audited route. The flag `serving` switches a deployment off as a
//! whole; other names are capabilities a request asks for (`parameters.capability`). A flag
//! that is off answers 503, or sends requests to the fallback version it names. The data
//! plane picks a change up with its next table swap (within a second) and serves the state
//! over OFREP too.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::domain::Name;
use steward_policy::Resource;
use steward_store::FlagRow;

use super::registry::{event, facts_of, load_model, load_version};
use super::{ApiPath, JsonBody, commit, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagState {
    pub enabled: bool,
    /// While the flag is off, send its requests to this version (a digest) instead of
    /// answering 503.
    #[serde(default)]
    pub fallback: Option<String>,
    #[schema(min_length = 1)]
    pub reason: String,
}

fn flag_json(row: &FlagRow) -> Value {
    json!({
        "environment": row.environment, "flag": row.flag, "enabled": row.enabled != 0,
        "fallback": row.fallback_digest, "reason": row.reason, "set_by": row.set_by,
        "set_at": row.set_at, "audit_seq": row.audit_seq,
    })
}

pub async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let items: Vec<Value> = app
        .store
        .current_flags()
        .await?
        .iter()
        .filter(|row| row.business_unit == unit && row.model == name)
        .map(flag_json)
        .collect();
    Ok(ok(json!({ "items": items })))
}

pub async fn set(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name, environment, flag)): ApiPath<(String, String, String, String)>,
    JsonBody(body): JsonBody<FlagState>,
) -> Result<Json<Value>, ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    let env = app
        .store
        .environment(&environment)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("environment `{environment}`")))?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts {
            production: Some(env.production),
            ..Facts::default()
        },
    )
    .await?;
    let mut problems = Vec::new();
    if Name::parse("flag", &flag).is_err() {
        problems.push(format!(
            "flag `{flag}`: lowercase letters, digits, `.`, `_`, `-`, up to 63"
        ));
    }
    if body.reason.trim().is_empty() {
        problems.push("reason: must not be empty".into());
    }
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            message: problems.join("; "),
            details: json!({ "problems": problems }),
        });
    }
    if let Some(fallback) = &body.fallback {
        let (version, _) = load_version(&app, fallback).await?;
        if version.business_unit != unit || version.model != name {
            return Err(ApiError::Unprocessable {
                message: format!("fallback `{fallback}` is not a version of `{unit}/{name}`"),
                details: Value::Null,
            });
        }
        if version.deprecated_at.is_some() {
            return Err(ApiError::Conflict(format!(
                "fallback `{fallback}` is deprecated and is never deployed"
            )));
        }
        // A fallback takes real traffic: it must have been deployed in this environment.
        let history = app.store.alias_history(&unit, &name, &environment).await?;
        if !history
            .iter()
            .any(|alias| alias.digest.as_deref() == Some(fallback.as_str()))
        {
            return Err(ApiError::Conflict(format!(
                "fallback `{fallback}` was never deployed in `{environment}`; only such versions may take its traffic"
            )));
        }
    }
    let row = FlagRow {
        id: 0,
        business_unit: unit.clone(),
        model: name.clone(),
        environment: environment.clone(),
        flag: flag.clone(),
        enabled: i64::from(body.enabled),
        fallback_digest: body.fallback.clone(),
        reason: body.reason.clone(),
        set_by: caller.name.clone(),
        set_at: app.now(),
        audit_seq: 0,
    };
    let mut tx = app.store.begin().await?;
    tx.insert_flag(&row).await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("model:{unit}/{name}"),
            json!({
                "environment": environment, "flag": flag, "enabled": body.enabled,
                "fallback": body.fallback, "reason": body.reason,
            }),
            &decision,
        ),
    )
    .await?;
    let mut answer = flag_json(&row);
    answer["audit"] = receipt(&entry);
    Ok(ok(answer))
}
