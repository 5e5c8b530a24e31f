//! Canary routing (R1, R4): beside an environment's alias (the stable version), a canary
//! version takes a share of requests, sticky by a header when asked. Set only through this
//! audited route, by those the policy allows, and only for a canary that passes the
//! environment's gates as a promotion would; the data plane swaps its table when it
//! changes.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::routing::RoutingRule;
use steward_policy::Resource;
use steward_store::RoutingRuleRow;

use super::registry::{event, facts_of, load_model, load_version};
use super::{ApiPath, JsonBody, commit, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRouting {
    /// The canary version's digest; absent: no canary (ends one).
    #[serde(default)]
    pub canary: Option<String>,
    /// Share of requests (or sticky keys) for the canary, in basis points (0 to 10000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10000)]
    pub canary_weight_bp: u32,
    /// A request header whose value keeps a caller on one side.
    #[serde(default)]
    pub sticky_header: Option<String>,
    /// A shadow version's digest: it gets a copy of a share of requests, off the response
    /// path; its answers are compared with the served ones, never returned.
    #[serde(default)]
    pub shadow: Option<String>,
    /// Share of requests copied to the shadow, in basis points (0 to 10000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10000)]
    pub shadow_share_bp: u32,
    #[schema(min_length = 1)]
    pub reason: String,
}

fn rule_json(row: &RoutingRuleRow) -> Value {
    json!({
        "environment": row.environment, "canary": row.canary_digest,
        "canary_weight_bp": row.canary_weight_bp, "sticky_header": row.sticky_header,
        "shadow": row.shadow_digest, "shadow_share_bp": row.shadow_share_bp,
        "reason": row.reason, "set_by": row.set_by, "set_at": row.set_at, "audit_seq": row.audit_seq,
    })
}

pub async fn show(
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
        .current_routing_rules()
        .await?
        .iter()
        .filter(|row| row.business_unit == unit && row.model == name)
        .map(rule_json)
        .collect();
    Ok(ok(json!({ "items": items })))
}

pub async fn set(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name, environment)): ApiPath<(String, String, String)>,
    JsonBody(body): JsonBody<NewRouting>,
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
    let rule = RoutingRule {
        canary: body.canary.clone(),
        canary_weight_bp: body.canary_weight_bp,
        sticky_header: body.sticky_header.clone(),
        shadow: body.shadow.clone(),
        shadow_share_bp: body.shadow_share_bp,
    };
    let mut problems = rule.problems();
    if body.reason.trim().is_empty() {
        problems.push("reason: must not be empty".into());
    }
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            message: problems.join("; "),
            details: json!({ "problems": problems }),
        });
    }
    let stable = app
        .store
        .alias(&unit, &name, &environment, None)
        .await?
        .and_then(|alias| alias.digest);
    // A canary takes real traffic and a shadow sees real inputs: both must pass the
    // environment's gates as a promotion would.
    for (role, candidate) in [("canary", &rule.canary), ("shadow", &rule.shadow)] {
        let Some(canary) = candidate else { continue };
        let (version, _) = load_version(&app, canary).await?;
        if version.business_unit != unit || version.model != name {
            return Err(ApiError::Unprocessable {
                message: format!("version `{canary}` is not a version of `{unit}/{name}`"),
                details: Value::Null,
            });
        }
        let Some(stable) = &stable else {
            return Err(ApiError::Conflict(format!(
                "`{environment}` has no stable version yet: promote one before adding a {role}"
            )));
        };
        if stable == canary {
            return Err(ApiError::Conflict(format!(
                "`{canary}` is already the stable version in `{environment}`"
            )));
        }
        let evaluation =
            super::promotions::canary_gates(&app, &caller.name, &version, &model, &env).await?;
        if !evaluation.allowed {
            let blocking: Vec<String> = evaluation
                .results
                .iter()
                .filter(|result| {
                    matches!(
                        result.status,
                        steward_core::promotion::GateStatus::Block
                            | steward_core::promotion::GateStatus::Missing
                    )
                })
                .map(|result| format!("{}: {}", result.gate, result.message))
                .collect();
            return Err(ApiError::Conflict(format!(
                "a {role} takes real traffic, so it must pass `{environment}`'s gates first: {}",
                blocking.join("; ")
            )));
        }
    }
    let row = RoutingRuleRow {
        id: 0,
        business_unit: unit.clone(),
        model: name.clone(),
        environment: environment.clone(),
        canary_digest: rule.canary.clone(),
        canary_weight_bp: i64::from(rule.canary_weight_bp),
        sticky_header: rule.sticky_header.clone(),
        shadow_digest: rule.shadow.clone(),
        shadow_share_bp: i64::from(rule.shadow_share_bp),
        reason: body.reason.clone(),
        set_by: caller.name.clone(),
        set_at: app.now(),
        audit_seq: 0,
    };
    let mut tx = app.store.begin().await?;
    tx.insert_routing_rule(&row).await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("model:{unit}/{name}"),
            json!({
                "environment": environment, "stable": stable, "canary": row.canary_digest,
                "canary_weight_bp": row.canary_weight_bp, "sticky_header": row.sticky_header,
                "shadow": row.shadow_digest, "shadow_share_bp": row.shadow_share_bp,
                "reason": row.reason,
            }),
            &decision,
        ),
    )
    .await?;
    let mut answer = rule_json(&row);
    answer["stable"] = json!(stable);
    answer["audit"] = receipt(&entry);
    Ok(ok(answer))
}
