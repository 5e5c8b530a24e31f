//! Promotions (issue 4): the only way an environment's alias moves. A request gathers gate
//! results and approvals; when every gate passes it is applied (alias move and audit event
//! in one transaction); otherwise it waits for approvals, or is rejected, withdrawn or
//! expires. `GET /versions/{digest}/gates` evaluates the same gates without changing anything
//! (the CI gate).
//!
//! Invariants:
//! - Gates are decided by the policy engine: each gate's finding is a context fact of the
//!   `alias.set` decision for the requester, and a `steward.gate.*` forbid turns it into a
//!   block. So the emergency path and organisation policies change outcomes in Cedar.
//! - Every transition happens under the audit head lock, re-reading the request's state:
//!   two approvers at once, or an approval racing the application, never apply twice, and
//!   an approval that was answered with success is recorded.
//! - Before an alias moves, under the lock: the request is still pending and unexpired, the
//!   version still live, no freeze began (unless emergency), and the alias still points where
//!   the gates were evaluated against (or the evaluation is repeated).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::audit::EventDraft;
use steward_core::docs::ModelFacts as DocFacts;
use steward_core::domain::{Digest, Tier};
use steward_core::manifest::VersionManifest;
use steward_core::promotion::{self, ApprovalFacts, Candidate, GateResult, GateStatus, Target};
use steward_policy::{Action, Decision, Request as PolicyRequest, Resource};
use steward_store::{AliasMove, Promotion, PromotionApproval};

use super::registry::{facts_of, load_model, load_version, version_resource};
use super::{ApiPath, ApiQuery, JsonBody, commit, created, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

/// How often an application re-evaluates when the alias moved under it before giving up
/// (the request stays pending; the next approval or `apply` tries again).
const APPLY_ATTEMPTS_MAX: usize = 8;
/// Bound on the pending promotions one sweep looks at (oldest first).
pub const SWEEP_PROMOTIONS_MAX: u32 = 1000;
/// Who the audit trail names for what the sweep does.
pub const SWEEP_ACTOR: &str = "steward-scheduler";

/// Bound on the comment and reason texts of promotions and approvals.
pub const PROMOTION_TEXT_BYTES_MAX: usize = 16 * 1024;
/// Bound on the features of an attached drift report.
pub const DRIFT_FEATURES_MAX: usize = 10_000;

fn bad(err: impl ToString) -> ApiError {
    ApiError::BadRequest(err.to_string())
}

fn check_text(what: &str, text: &str, required: bool) -> Result<(), ApiError> {
    if required && text.trim().is_empty() {
        return Err(bad(format!("{what} must not be empty")));
    }
    if text.len() > PROMOTION_TEXT_BYTES_MAX {
        return Err(bad(format!(
            "{what} is {} bytes, more than {PROMOTION_TEXT_BYTES_MAX}",
            text.len()
        )));
    }
    Ok(())
}

/// The state a reader sees: a pending request past its expiry is expired, whether or not
/// the transition has been recorded yet.
fn effective_state(promotion: &Promotion, now: &str) -> String {
    if promotion.state == "pending" && now >= promotion.expires_at.as_str() {
        "expired".into()
    } else {
        promotion.state.clone()
    }
}

fn promotion_json(promotion: &Promotion, now: &str) -> Value {
    json!({
        "id": promotion.id,
        "business_unit": promotion.business_unit,
        "model": promotion.model,
        "environment": promotion.environment,
        "digest": promotion.digest,
        "state": effective_state(promotion, now),
        "template": promotion.template,
        "reason": promotion.reason,
        "emergency": promotion.emergency_reason.is_some(),
        "emergency_reason": promotion.emergency_reason,
        "requested_by": promotion.requested_by,
        "requested_at": promotion.requested_at,
        "expires_at": promotion.expires_at,
        "closed_by": promotion.closed_by,
        "closed_at": promotion.closed_at,
        "close_reason": promotion.close_reason,
        "previous_digest": promotion.previous_digest,
        "review": promotion.emergency_reason.as_ref().map(|_| json!({
            "required": true,
            "reviewed_by": promotion.reviewed_by,
            "reviewed_at": promotion.reviewed_at,
            "comment": promotion.review_comment,
        })),
        "change": promotion.change_record.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok()),
        "impact_statement": promotion.impact_statement,
        "recorded_gates": serde_json::from_str::<Value>(&promotion.gates).unwrap_or(Value::Null),
        "audit_seq": promotion.audit_seq,
    })
}

fn approval_json(approval: &PromotionApproval) -> Value {
    json!({
        "approver": approval.approver,
        "token_issuer": approval.token_issuer,
        "roles": serde_json::from_str::<Value>(&approval.roles).unwrap_or(Value::Null),
        "checklist": serde_json::from_str::<Value>(&approval.checklist).unwrap_or(Value::Null),
        "mitigated": serde_json::from_str::<Value>(&approval.mitigated).unwrap_or(Value::Null),
        "accepts_breaking_changes": approval.accepts_breaking_changes != 0,
        "comment": approval.comment,
        "created_at": approval.created_at,
        "audit_seq": approval.audit_seq,
    })
}

fn approval_facts(approval: &PromotionApproval) -> ApprovalFacts {
    ApprovalFacts {
        approver: approval.approver.clone(),
        token_issuer: approval.token_issuer.clone(),
        roles: serde_json::from_str(&approval.roles).unwrap_or_default(),
        checklist: serde_json::from_str(&approval.checklist).unwrap_or_default(),
        accepts_breaking_changes: approval.accepts_breaking_changes != 0,
        mitigated: serde_json::from_str(&approval.mitigated).unwrap_or_default(),
    }
}

/// The outcome of evaluating every gate of a promotion.
pub(crate) struct Evaluation {
    pub template: String,
    pub results: Vec<GateResult>,
    pub decision: Decision,
    /// Every gate passed or was waived, and (when checked) the contents verified.
    pub allowed: bool,
    /// Where the alias pointed when the gates were evaluated.
    pub previous: Option<String>,
}

impl Evaluation {
    pub fn to_json(&self) -> Value {
        json!({
            "template": self.template,
            "allowed": self.allowed,
            "gates": self.results,
            "decision": self.decision.to_json(Action::AliasSet),
            "previous_digest": self.previous,
        })
    }
}

/// Where a promotion of `model` to `env` goes, and the deployment template that decides
/// its gates (none matching is the caller's configuration problem, named).
fn template_of<'a>(
    app: &'a App,
    model: &steward_store::Model,
    env: &steward_store::Environment,
) -> Result<(Target, &'a promotion::DeploymentTemplate), ApiError> {
    let target = Target {
        environment: env.name.clone(),
        production: env.production,
        business_unit: model.business_unit.clone(),
        risk_class: model.risk_class.clone(),
        tier: model.tier,
        category: model.category.clone(),
    };
    let template = app.gates.template_for(&target).ok_or_else(|| ApiError::Unprocessable {
        message: format!(
            "no deployment template matches a promotion of `{}/{}` to `{}`; add one to the gate configuration",
            model.business_unit, model.name, env.name
        ),
        details: Value::Null,
    })?;
    Ok((target, template))
}

/// Who asks for the move: the requester's roles and certification, read now.
struct Requester {
    name: String,
    roles: Vec<String>,
    certified_until: i64,
}

impl Requester {
    /// A policy request of the requester's on the model, with no facts yet.
    fn request(&self, app: &App, action: Action, model: &steward_store::Model) -> PolicyRequest {
        PolicyRequest {
            certified_until: self.certified_until,
            ..PolicyRequest::new(
                &self.name,
                self.roles.clone(),
                action,
                Resource::Model(facts_of(model)),
                app.now_unix(),
            )
        }
    }
}

async fn requester(app: &App, name: &str, unit: &str) -> Result<Requester, ApiError> {
    let bindings: Vec<steward_core::domain::RoleBinding> = app
        .store
        .role_bindings(name)
        .await?
        .into_iter()
        .filter_map(|binding| {
            Some(steward_core::domain::RoleBinding {
                role: binding.role.parse().ok()?,
                scope: steward_core::domain::Scope::parse(&binding.scope).ok()?,
            })
        })
        .collect();
    Ok(Requester {
        name: name.to_owned(),
        roles: steward_core::domain::effective_roles(&bindings, Some(unit))
            .into_iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        certified_until: crate::authz::certified_until(app, name).await?,
    })
}

fn gate(gate: &str, policy: &str, finding: Option<String>, pass: &str) -> GateResult {
    match finding {
        Some(message) => GateResult::new(gate, policy, GateStatus::Block, message),
        None => GateResult::new(gate, policy, GateStatus::Pass, pass.to_owned()),
    }
}

/// A move to evaluate: the version, where it goes, who asks, with which approvals.
#[derive(Clone, Copy)]
struct Proposal<'a> {
    version: &'a steward_store::Version,
    model: &'a steward_store::Model,
    env: &'a steward_store::Environment,
    requester: &'a Requester,
    approvals: &'a [ApprovalFacts],
    emergency: bool,
    change: Option<&'a promotion::ChangeRecord>,
}

/// Evaluates every gate for moving `environment`'s alias of the version's model to it, as
/// `requester`, with `approvals`. With `verify`, a promotion every other gate lets through
/// also has its contents re-verified (P8), the costly part.
async fn evaluate(
    app: &App,
    proposal: &Proposal<'_>,
    verify: bool,
) -> Result<Evaluation, ApiError> {
    let Proposal {
        version,
        model,
        env,
        requester,
        approvals,
        emergency,
        change,
    } = *proposal;
    let unit = &model.business_unit;
    let (target, template) = template_of(app, model, env)?;
    let manifest: Option<VersionManifest> = serde_json::from_str(&version.manifest).ok();
    let missing_documentation = match &manifest {
        Some(manifest) => {
            let facts = DocFacts {
                risk_class: model.risk_class.parse().map_err(ApiError::internal)?,
                tier: Tier::new(model.tier).map_err(ApiError::internal)?,
                category: model.category.parse().map_err(ApiError::internal)?,
            };
            app.templates
                .missing_fields(facts, manifest)
                .into_iter()
                .map(|field| field.field)
                .collect()
        }
        None => vec!["the version manifest (unreadable)".to_owned()],
    };
    let previous = app
        .store
        .alias(unit, &model.name, &env.name, None)
        .await?
        .and_then(|alias| alias.digest);
    let current_version = match &previous {
        Some(digest) => app.store.version(digest).await?,
        None => None,
    };
    let current_manifest: Option<VersionManifest> = current_version
        .as_ref()
        .and_then(|current| serde_json::from_str(&current.manifest).ok());
    let drift: Option<Vec<promotion::DriftItem>> =
        match app.store.drift_report(&version.digest).await? {
            Some(report) => serde_json::from_str::<Value>(&report.report)
                .ok()
                .and_then(|report| serde_json::from_value(report["items"].clone()).ok()),
            None => None,
        };
    let candidate = Candidate {
        author: &version.author,
        version_label: &version.version_label,
        missing_documentation,
        schema: manifest
            .as_ref()
            .and_then(|manifest| manifest.schema.as_ref()),
        current: current_version.as_ref().map(|current| {
            (
                current.version_label.as_str(),
                current_manifest
                    .as_ref()
                    .and_then(|manifest| manifest.schema.as_ref()),
            )
        }),
        drift: drift.as_deref(),
        approvals,
        change,
        emergency,
    };
    let mut results = promotion::evaluate(&app.gates, template, &target, &candidate);

    // The deployment facts every promotion is checked for, whatever the template.
    let classification_violation = {
        let violations = app.classification.violations(
            manifest
                .as_ref()
                .and_then(|manifest| manifest.schema.as_ref()),
            unit,
            steward_core::schema::Scope::Environment(&env.name),
        );
        (!violations.is_empty()).then(|| {
            violations
                .iter()
                .map(|v| v.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    let terms = manifest
        .as_ref()
        .and_then(|manifest| manifest.usage_terms.clone());
    let forbidding_term = terms.and_then(|terms| {
        terms
            .forbids_business_unit(unit)
            .or_else(|| terms.forbids_region(env.region.as_deref()))
    });
    let threshold = app.config.advisory_block_severity;
    let vulnerability = super::registry::scan_version(app, version.package.as_deref())
        .await?
        .iter()
        .find(|finding| finding.severity.blocks(threshold))
        .map(super::registry::finding_text);
    let freeze_window = super::calendar::active_freeze(app, &env.name, unit).await?;
    if template.gates.maintenance_window {
        let open = super::calendar::open_maintenance(app, &env.name, unit).await?;
        results.push(match open {
            Some(window) => GateResult::new(
                "maintenance_window",
                "steward.change.maintenance-window",
                GateStatus::Pass,
                format!("inside {window}"),
            ),
            None => GateResult::new(
                "maintenance_window",
                "steward.change.maintenance-window",
                GateStatus::Block,
                format!(
                    "changes to `{}` land only in a maintenance window, and none is open; apply the promotion when one opens",
                    env.name
                ),
            ),
        });
    }
    let deprecated = version.deprecated_at.is_some();
    results.extend([
        gate(
            "lifecycle",
            "steward.lifecycle.deprecated-never-deployed",
            deprecated.then(|| format!("version {} is deprecated", version.version_label)),
            "the version is live",
        ),
        gate(
            "classification",
            "steward.data.classification",
            classification_violation.clone(),
            "the classification policy allows every schema field here",
        ),
        gate(
            "usage_terms",
            "steward.terms.usage",
            forbidding_term
                .clone()
                .map(|term| format!("usage term {term}")),
            "the usage terms allow this deployment",
        ),
        gate(
            "vulnerabilities",
            "steward.supply-chain.vulnerable",
            vulnerability.clone(),
            "no advisory at or above the blocking severity",
        ),
        gate(
            "freeze",
            "steward.change.freeze",
            freeze_window.clone(),
            "no freeze window is active",
        ),
    ]);
    let finding = |policy: &str| {
        results
            .iter()
            .find(|result| result.policy == policy)
            .and_then(GateResult::fact)
    };
    let request = PolicyRequest {
        certified_until: requester.certified_until,
        production: Some(env.production),
        version_deprecated: Some(deprecated),
        forbidding_term,
        vulnerability,
        classification_violation,
        freeze_window,
        gate_documentation: finding("steward.gate.documentation"),
        gate_checklist: finding("steward.gate.checklist"),
        gate_board_quorum: results
            .iter()
            .filter(|result| result.policy == "steward.gate.board-quorum")
            .filter_map(GateResult::fact)
            .reduce(|a, b| format!("{a}; {b}")),
        gate_dpo: finding("steward.gate.dpo-sign-off"),
        gate_drift: finding("steward.gate.drift"),
        gate_api_compatibility: finding("steward.gate.api-compatibility"),
        gate_change_record: finding("steward.change.record"),
        gate_cab: finding("steward.change.cab"),
        gate_pre_mortem: finding("steward.change.pre-mortem"),
        gate_maintenance_window: finding("steward.change.maintenance-window"),
        emergency: Some(emergency),
        ..requester.request(app, Action::AliasSet, model)
    };
    let decision = app.engine.authorize(&request);
    // A finding the decision did not act on was waived (the emergency path, or an
    // organisation's policy); a reason no gate explains is a policy block of its own.
    for result in &mut results {
        if result.status != GateStatus::Pass && !decision.reasons.contains(&result.policy) {
            result.status = GateStatus::Waived;
        }
    }
    if !decision.allowed {
        for reason in &decision.reasons {
            if results.iter().any(|result| &result.policy == reason) {
                continue;
            }
            let message = if reason == steward_policy::DEFAULT_DENY {
                format!(
                    "no policy lets `{}` move `{}` aliases of `{unit}` (MLOps engineers request promotions)",
                    requester.name, env.name
                )
            } else {
                app.engine
                    .policy_descriptions()
                    .get(reason)
                    .cloned()
                    .unwrap_or_else(|| format!("policy `{reason}` forbids it"))
            };
            results.push(GateResult::new(
                "policy",
                reason,
                GateStatus::Block,
                message,
            ));
        }
        for error in &decision.errors {
            results.push(GateResult::new(
                "policy",
                "policy-error",
                GateStatus::Block,
                format!("a policy could not be evaluated: {error}"),
            ));
        }
    }
    let mut allowed = decision.allowed;
    if verify && allowed {
        let verification = super::registry::verify_contents(app, version).await?;
        if verification.failures.is_empty() {
            results.push(GateResult::new(
                "integrity",
                "steward.integrity",
                GateStatus::Pass,
                format!("{} blob(s) and checks re-verified", verification.checked),
            ));
        } else {
            allowed = false;
            results.push(GateResult::new(
                "integrity",
                "steward.integrity",
                GateStatus::Block,
                format!(
                    "the version failed verification: {}",
                    verification.failure_text()
                ),
            ));
        }
    }
    Ok(Evaluation {
        template: template.name.clone(),
        results,
        decision,
        allowed,
        previous,
    })
}

async fn load_environment(app: &App, name: &str) -> Result<steward_store::Environment, ApiError> {
    app.store
        .environment(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("environment `{name}`")))
}

/// Evaluates a stored request with its approvals and current facts.
async fn evaluate_promotion(
    app: &App,
    promotion: &Promotion,
    verify: bool,
) -> Result<Evaluation, ApiError> {
    let (version, model) = load_version(app, &promotion.digest).await?;
    let env = load_environment(app, &promotion.environment).await?;
    let requester = requester(app, &promotion.requested_by, &model.business_unit).await?;
    let approvals = current_approvals(app, promotion.id, &model.business_unit).await?;
    // The emergency path holds only while the requester may still take it.
    let emergency = promotion.emergency_reason.is_some()
        && requester_may(app, &requester, Action::PromotionEmergency, &model);
    let change = change_of(promotion);
    let proposal = Proposal {
        version: &version,
        model: &model,
        env: &env,
        requester: &requester,
        approvals: &approvals,
        emergency,
        change: change.as_ref(),
    };
    evaluate(app, &proposal, verify).await
}

/// The change record filed with a request.
fn change_of(promotion: &Promotion) -> Option<promotion::ChangeRecord> {
    promotion
        .change_record
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
}

/// The open (unexpired) request for a version in an environment, if any, with its
/// approvals (roles read now) and change record: what a gate check or a canary is judged
/// with, as applying the request would be.
struct OpenRequest {
    promotion: Option<Promotion>,
    approvals: Vec<ApprovalFacts>,
    change: Option<promotion::ChangeRecord>,
}

async fn open_request(
    app: &App,
    version: &steward_store::Version,
    model: &steward_store::Model,
    env: &steward_store::Environment,
) -> Result<OpenRequest, ApiError> {
    let promotion = app
        .store
        .open_promotion_of(&version.digest, &env.name)
        .await?
        .filter(|promotion| app.now() < promotion.expires_at);
    let (approvals, change) = match &promotion {
        Some(promotion) => (
            current_approvals(app, promotion.id, &model.business_unit).await?,
            change_of(promotion),
        ),
        None => (Vec::new(), None),
    };
    Ok(OpenRequest {
        promotion,
        approvals,
        change,
    })
}

/// A promotion's approvals with each approver's roles as they are now: a role revoked
/// since the approval no longer counts for the gates that need it.
async fn current_approvals(
    app: &App,
    promotion_id: i64,
    unit: &str,
) -> Result<Vec<ApprovalFacts>, ApiError> {
    let mut approvals = Vec::new();
    for approval in app.store.promotion_approvals(promotion_id).await? {
        let mut facts = approval_facts(&approval);
        facts.roles = requester(app, &approval.approver, unit).await?.roles;
        approvals.push(facts);
    }
    Ok(approvals)
}

/// Whether the policy lets the requester take `action` on the model now (nothing recorded).
fn requester_may(
    app: &App,
    requester: &Requester,
    action: Action,
    model: &steward_store::Model,
) -> bool {
    app.engine
        .authorize(&requester.request(app, action, model))
        .allowed
}

fn draft(
    actor: &str,
    action: &str,
    promotion: &Promotion,
    payload: Value,
    decision: Value,
) -> EventDraft {
    let mut payload = payload;
    payload["promotion"] = json!(promotion.id);
    payload["environment"] = json!(promotion.environment);
    payload["digest"] = json!(promotion.digest);
    EventDraft {
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: format!("model:{}/{}", promotion.business_unit, promotion.model),
        payload,
        decision,
    }
}

/// Records the expiry of a pending request past its time (audited); returns whether it did.
async fn expire_if_due(app: &App, promotion: &Promotion, actor: &str) -> Result<bool, ApiError> {
    let now = app.now();
    if promotion.state != "pending" || now < promotion.expires_at {
        return Ok(false);
    }
    let mut tx = app.store.begin().await?;
    if !tx
        .close_promotion(
            promotion.id,
            "expired",
            actor,
            &now,
            "expired before its gates passed",
        )
        .await?
    {
        tx.rollback().await?;
        return Ok(false);
    }
    let decision = json!({"effect": "allow", "action": "promotion.expire", "policies": ["steward.promotion.expiry"], "errors": [], "policy_set": app.engine.policy_set_hash()});
    commit(
        app,
        tx,
        draft(
            actor,
            "promotion.expire",
            promotion,
            json!({"expires_at": promotion.expires_at}),
            decision,
        ),
    )
    .await?;
    Ok(true)
}

/// Applies a pending request if every gate lets it through now. Returns the evaluation that
/// decided (or `None` when the request is no longer pending).
async fn try_apply(app: &App, id: i64, actor: &str) -> Result<Option<Evaluation>, ApiError> {
    // Optimistic: evaluate outside the lock, then apply only if no change at all was
    // committed since (the audit head did not move) — a revoked role, a new advisory, a
    // deprecation, a drift report, a calendar change all move it — else evaluate again.
    // Contents are verified on the first round only (blob bytes are not audited writes).
    let mut verified: Option<GateResult> = None;
    let mut last = None;
    for _ in 0..APPLY_ATTEMPTS_MAX {
        let Some(promotion) = app.store.promotion(id).await? else {
            return Ok(None);
        };
        if promotion.state != "pending" || expire_if_due(app, &promotion, actor).await? {
            return Ok(None);
        }
        let (head, _) = app.store.audit_head().await?;
        let mut evaluation = evaluate_promotion(app, &promotion, verified.is_none()).await?;
        match &verified {
            None => {
                verified = evaluation
                    .results
                    .iter()
                    .find(|result| result.gate == "integrity")
                    .cloned();
            }
            Some(integrity) if evaluation.allowed => evaluation.results.push(integrity.clone()),
            Some(_) => {}
        }
        if !evaluation.allowed {
            // Contents that fail verification are a deploy-time refusal worth its own entry
            // (P8), recorded when someone asks, not again by every sweep.
            if actor != SWEEP_ACTOR
                && let Some(integrity) = evaluation
                    .results
                    .iter()
                    .find(|result| result.gate == "integrity" && result.status == GateStatus::Block)
            {
                let decision = evaluation.decision.to_json(Action::AliasSet);
                super::append_event(
                    app,
                    draft(
                        actor,
                        "alias.set.refused",
                        &promotion,
                        json!({"reason": "integrity", "message": integrity.message}),
                        decision,
                    ),
                )
                .await?;
            }
            return Ok(Some(evaluation));
        }
        let mut tx = app.store.begin().await?;
        if tx.next_seq() != head + 1 {
            tx.rollback().await?;
            last = Some(evaluation);
            continue;
        }
        let Some(locked) = tx.promotion(id).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        if locked.state != "pending" || app.now() >= locked.expires_at {
            tx.rollback().await?;
            continue;
        }
        // Time alone opens a freeze window or closes a maintenance one; read the calendar
        // through the transaction.
        let windows = tx.calendar_windows().await?;
        let now_time = app.clock.now();
        let freeze_began = locked.emergency_reason.is_none()
            && super::calendar::freeze_among(
                &windows,
                &locked.environment,
                &locked.business_unit,
                now_time,
            )
            .is_some();
        let maintenance_closed = locked.emergency_reason.is_none()
            && evaluation
                .results
                .iter()
                .any(|result| result.gate == "maintenance_window")
            && super::calendar::maintenance_among(
                &windows,
                &locked.environment,
                &locked.business_unit,
                now_time,
            )
            .is_none();
        let alias_now = tx
            .current_alias(&locked.business_unit, &locked.model, &locked.environment)
            .await?;
        if freeze_began || maintenance_closed || alias_now != evaluation.previous {
            tx.rollback().await?;
            last = Some(evaluation);
            continue;
        }
        let now = app.now();
        let gates = evaluation.to_json();
        tx.move_alias(&AliasMove {
            id: 0,
            business_unit: locked.business_unit.clone(),
            model: locked.model.clone(),
            environment: locked.environment.clone(),
            digest: Some(locked.digest.clone()),
            previous_digest: alias_now.clone(),
            moved_by: actor.to_owned(),
            moved_at: now.clone(),
            reason: locked.reason.clone(),
            approval: Some(format!("promotion:{id}")),
            audit_seq: 0,
        })
        .await?;
        tx.apply_promotion(id, &gates.to_string(), alias_now.as_deref(), actor, &now)
            .await?;
        let mut decision = evaluation.decision.to_json(Action::AliasSet);
        decision["requested_by"] = json!(locked.requested_by);
        commit(
            app,
            tx,
            draft(
                actor,
                "promotion.apply",
                &locked,
                json!({
                    "previous_digest": alias_now, "reason": locked.reason,
                    "emergency_reason": locked.emergency_reason, "gates": gates["gates"],
                    "template": evaluation.template,
                }),
                decision,
            ),
        )
        .await?;
        return Ok(Some(evaluation));
    }
    // Busy: the request stays pending, and applying it again (or the next approval) retries.
    Ok(last)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromotion {
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub digest: String,
    pub environment: String,
    #[schema(min_length = 1)]
    pub reason: String,
    /// Takes the emergency path: approval gates and freezes give way; a review follows.
    #[serde(default)]
    pub emergency_reason: Option<String>,
    /// The change record, where the deployment template asks for one (production, by default).
    #[serde(default)]
    pub change: Option<promotion::ChangeRecord>,
}

/// The answer to every promotion change: the request as it stands, and the evaluation.
async fn answer(
    app: &App,
    id: i64,
    evaluation: Option<Evaluation>,
    extra: Value,
) -> Result<Value, ApiError> {
    let promotion = app
        .store
        .promotion(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("promotion {id}")))?;
    let mut body = promotion_json(&promotion, &app.now());
    body["evaluation"] = evaluation
        .map(|evaluation| evaluation.to_json())
        .unwrap_or(Value::Null);
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    Ok(body)
}

pub async fn request(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewPromotion>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text("reason", &body.reason, true)?;
    if let Some(reason) = &body.emergency_reason {
        check_text("emergency_reason", reason, true)?;
    }
    if let Some(change) = &body.change {
        let problems = change.problems();
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
    }
    let (version, model) = load_version(&app, &body.digest).await?;
    let env = load_environment(&app, &body.environment).await?;
    let unit = model.business_unit.clone();
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let mut decision_json = caller.decision_json(&decision);
    if body.emergency_reason.is_some() {
        let emergency = Caller {
            action: Action::PromotionEmergency,
            ..caller.clone()
        };
        let decision = authorize(
            &app,
            &emergency,
            Resource::Model(facts_of(&model)),
            RoleScope::Unit(unit.clone()),
            Facts::default(),
        )
        .await?;
        decision_json["emergency"] = emergency.decision_json(&decision);
    }
    let (target, template) = template_of(&app, &model, &env)?;
    let requester = requester(&app, &caller.name, &unit).await?;
    let proposal = Proposal {
        version: &version,
        model: &model,
        env: &env,
        requester: &requester,
        approvals: &[],
        emergency: body.emergency_reason.is_some(),
        change: body.change.as_ref(),
    };
    let evaluation = evaluate(&app, &proposal, false).await?;
    let impact_statement = match &body.change {
        Some(change) => {
            let replaces = match &evaluation.previous {
                Some(digest) => app.store.version(digest).await?.map(|v| v.version_label),
                None => None,
            };
            let text = promotion::impact_statement(
                app.gates
                    .impact_statement
                    .as_deref()
                    .unwrap_or(promotion::DEFAULT_IMPACT_TEMPLATE),
                &promotion::ImpactFacts {
                    model: &format!("{unit}/{}", model.name),
                    version: &version.version_label,
                    replaces: replaces.as_deref(),
                    target: &target,
                    change,
                },
            )
            .map_err(|err| ApiError::Unprocessable {
                message: err,
                details: Value::Null,
            })?;
            Some(text)
        }
        None => None,
    };
    let now = app.clock.now();
    let expires_at = crate::clock::format(
        now + chrono::Duration::hours(i64::from(template.expires_after_hours)),
    );
    let mut tx = app.store.begin().await?;
    if let Some(open) = tx.pending_promotion(&unit, &model.name, &env.name).await? {
        tx.rollback().await?;
        // One whose time is up is recorded as expired, and the new request proceeds.
        if let Some(stale) = app.store.promotion(open).await?
            && expire_if_due(&app, &stale, &caller.name).await?
        {
            return Box::pin(request(State(app), caller, JsonBody(body))).await;
        }
        return Err(ApiError::Conflict(format!(
            "promotion {open} of `{unit}/{}` to `{}` is still open; withdraw it first",
            model.name, env.name
        )));
    }
    if !tx.version_is_live(&version.digest).await? {
        tx.rollback().await?;
        return Err(ApiError::Conflict(format!(
            "version `{}` is deprecated and is never promoted",
            version.digest
        )));
    }
    let promotion = Promotion {
        id: 0,
        business_unit: unit.clone(),
        model: model.name.clone(),
        environment: env.name.clone(),
        digest: version.digest.clone(),
        state: "pending".into(),
        template: template.name.clone(),
        reason: body.reason.clone(),
        emergency_reason: body.emergency_reason.clone(),
        requested_by: caller.name.clone(),
        requested_at: crate::clock::format(now),
        expires_at,
        gates: evaluation.to_json().to_string(),
        closed_by: None,
        closed_at: None,
        close_reason: None,
        previous_digest: evaluation.previous.clone(),
        reviewed_by: None,
        reviewed_at: None,
        review_comment: None,
        change_record: body.change.as_ref().map(|change| json!(change).to_string()),
        impact_statement: impact_statement.clone(),
        audit_seq: 0,
    };
    let id = tx.insert_promotion(&promotion).await?;
    let stored = Promotion { id, ..promotion };
    commit(
        &app,
        tx,
        draft(
            &caller.name,
            "promotion.request",
            &stored,
            json!({
                "version": version.version_label, "reason": stored.reason,
                "emergency_reason": stored.emergency_reason, "template": stored.template,
                "expires_at": stored.expires_at, "gates": evaluation.to_json()["gates"],
                "change": body.change, "impact_statement": impact_statement,
            }),
            decision_json,
        ),
    )
    .await?;
    let evaluation = if evaluation.allowed {
        try_apply(&app, id, &caller.name)
            .await?
            .or(Some(evaluation))
    } else {
        Some(evaluation)
    };
    Ok(created(answer(&app, id, evaluation, Value::Null).await?))
}

async fn load_promotion(app: &App, id: i64) -> Result<Promotion, ApiError> {
    app.store
        .promotion(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("promotion {id}")))
}

pub async fn show(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let promotion = load_promotion(&app, id).await?;
    let model = load_model(&app, &promotion.business_unit, &promotion.model).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .await?;
    let approvals: Vec<Value> = app
        .store
        .promotion_approvals(id)
        .await?
        .iter()
        .map(approval_json)
        .collect();
    // A pending request shows its gates as they stand now (contents are verified when it
    // is applied, not on every read).
    let evaluation = if effective_state(&promotion, &app.now()) == "pending" {
        Some(evaluate_promotion(&app, &promotion, false).await?)
    } else {
        None
    };
    Ok(ok(answer(
        &app,
        id,
        evaluation,
        json!({"approvals": approvals}),
    )
    .await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most `page_items_max` (default 100).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

pub async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = super::page_limit(&app, query.limit)?;
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let now = app.now();
    let items: Vec<Value> = app
        .store
        .promotions(&unit, &name, limit)
        .await?
        .iter()
        .map(|promotion| {
            let mut item = promotion_json(promotion, &now);
            item.as_object_mut()
                .map(|item| item.remove("recorded_gates"));
            item
        })
        .collect();
    Ok(ok(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromotionApproval {
    #[serde(default)]
    pub comment: String,
    /// Review checklist items the approver checked (for the checklist gate).
    #[serde(default)]
    pub checklist: Vec<String>,
    /// The approver accepts the breaking schema changes the API compatibility gate lists.
    #[serde(default)]
    pub accept_breaking_changes: bool,
    /// Pre-mortem failure modes (ids) whose mitigations the approver checked are in place.
    #[serde(default)]
    pub mitigated: Vec<String>,
}

/// Checks a pending, unexpired request under the lock; on a problem, rolls back (recording
/// an expiry when that is the problem) and returns the conflict to answer with.
async fn conflict_unless_pending(
    app: &App,
    promotion: &Promotion,
    actor: &str,
) -> Result<(), ApiError> {
    if expire_if_due(app, promotion, actor).await? {
        return Err(ApiError::Conflict(format!(
            "promotion {} expired at {}",
            promotion.id, promotion.expires_at
        )));
    }
    Ok(())
}

pub async fn approve(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<NewPromotionApproval>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text("comment", &body.comment, false)?;
    for (what, items) in [
        ("checklist", &body.checklist),
        ("mitigated", &body.mitigated),
    ] {
        if items.len() > 1000 || items.iter().any(|item| item.len() > 200) {
            return Err(bad(format!(
                "{what}: at most 1000 items of at most 200 bytes"
            )));
        }
    }
    let promotion = load_promotion(&app, id).await?;
    let (version, model) = load_version(&app, &promotion.digest).await?;
    let decision = authorize(
        &app,
        &caller,
        version_resource(&version, &model),
        RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .await?;
    conflict_unless_pending(&app, &promotion, &caller.name).await?;
    let roles: Vec<String> = caller
        .roles(&RoleScope::Unit(model.business_unit.clone()))
        .into_iter()
        .map(|role| role.as_str().to_owned())
        .collect();
    let mut checklist = body.checklist.clone();
    checklist.sort();
    checklist.dedup();
    let mut mitigated = body.mitigated.clone();
    mitigated.sort();
    mitigated.dedup();
    let mut tx = app.store.begin().await?;
    let locked = tx
        .promotion(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("promotion {id}")))?;
    if locked.state == "pending" && app.now() >= locked.expires_at {
        // Expired between the check above and the lock: record it, refuse the approval.
        tx.rollback().await?;
        conflict_unless_pending(&app, &locked, &caller.name).await?;
        return Err(ApiError::Conflict(format!(
            "promotion {id} expired at {}",
            locked.expires_at
        )));
    }
    if locked.state != "pending" {
        tx.rollback().await?;
        // A retried approval that was already recorded gets the same answer as the first
        // time, even when the promotion was applied in between.
        let approvals = app.store.promotion_approvals(id).await?;
        if approvals
            .iter()
            .any(|approval| approval.approver == caller.name)
        {
            let body = answer(&app, id, None, json!({"already_approved": true})).await?;
            return Ok((StatusCode::OK, Json(body)));
        }
        return Err(ApiError::Conflict(format!(
            "promotion {id} is {}; approvals are taken only while it is pending",
            locked.state
        )));
    }
    let approval = PromotionApproval {
        id: 0,
        promotion_id: id,
        approver: caller.name.clone(),
        token_issuer: caller.token_issuer.clone(),
        roles: json!(roles).to_string(),
        checklist: json!(checklist).to_string(),
        mitigated: json!(mitigated).to_string(),
        accepts_breaking_changes: i64::from(body.accept_breaking_changes),
        comment: body.comment.clone(),
        created_at: app.now(),
        audit_seq: 0,
    };
    // Idempotent: the same approval again changes nothing and records nothing; a changed
    // one (more checklist items, a mitigation checked) replaces it, recorded as amended.
    let amended = if tx.insert_promotion_approval(&approval).await? {
        false
    } else if tx.amend_promotion_approval(&approval).await? {
        true
    } else {
        tx.rollback().await?;
        let evaluation = apply_after_approval(&app, id, &caller.name).await;
        let extra = json!({"already_approved": true, "apply_error": evaluation.as_ref().err()});
        let body = answer(&app, id, evaluation.ok().flatten(), extra).await?;
        return Ok((StatusCode::OK, Json(body)));
    };
    let entry = commit(
        &app,
        tx,
        draft(
            &caller.name,
            "promotion.approve",
            &locked,
            json!({
                "roles": roles, "checklist": checklist, "mitigated": mitigated,
                "accepts_breaking_changes": body.accept_breaking_changes, "comment": body.comment,
                "amended": amended,
            }),
            caller.decision_json(&decision),
        ),
    )
    .await?;
    // The approval is recorded whatever happens next: a failure to apply is reported with
    // it, not as a failure of the approval.
    let evaluation = apply_after_approval(&app, id, &caller.name).await;
    let extra = json!({"approval_audit": receipt(&entry), "amended": amended, "apply_error": evaluation.as_ref().err()});
    Ok(created(
        answer(&app, id, evaluation.ok().flatten(), extra).await?,
    ))
}

/// `try_apply` after an approval, with a failure as text (logged) instead of an error.
async fn apply_after_approval(
    app: &App,
    id: i64,
    actor: &str,
) -> Result<Option<Evaluation>, String> {
    try_apply(app, id, actor).await.map_err(|err| {
        tracing::warn!(promotion = id, error = %err, "Promotion could not be applied after an approval.");
        format!("the approval is recorded, but applying the promotion failed ({err}); `steward promotion apply {id}` tries again")
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Closing {
    #[schema(min_length = 1)]
    pub reason: String,
}

async fn close(
    app: &App,
    caller: &Caller,
    promotion: &Promotion,
    state: &str,
    reason: &str,
    decision: &Decision,
) -> Result<Value, ApiError> {
    check_text("reason", reason, true)?;
    conflict_unless_pending(app, promotion, &caller.name).await?;
    let mut tx = app.store.begin().await?;
    if !tx
        .close_promotion(promotion.id, state, &caller.name, &app.now(), reason)
        .await?
    {
        tx.rollback().await?;
        let now_state = app
            .store
            .promotion(promotion.id)
            .await?
            .map(|p| p.state)
            .unwrap_or_default();
        return Err(ApiError::Conflict(format!(
            "promotion {} is {now_state}, no longer pending",
            promotion.id
        )));
    }
    let action = if state == "rejected" {
        "promotion.reject"
    } else {
        "promotion.withdraw"
    };
    let entry = commit(
        app,
        tx,
        draft(
            &caller.name,
            action,
            promotion,
            json!({"reason": reason}),
            caller.decision_json(decision),
        ),
    )
    .await?;
    answer(app, promotion.id, None, json!({"audit": receipt(&entry)})).await
}

pub async fn reject(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<Closing>,
) -> Result<Json<Value>, ApiError> {
    let promotion = load_promotion(&app, id).await?;
    let (version, model) = load_version(&app, &promotion.digest).await?;
    let decision = authorize(
        &app,
        &caller,
        version_resource(&version, &model),
        RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .await?;
    Ok(ok(close(
        &app,
        &caller,
        &promotion,
        "rejected",
        &body.reason,
        &decision,
    )
    .await?))
}

pub async fn withdraw(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<Closing>,
) -> Result<Json<Value>, ApiError> {
    let promotion = load_promotion(&app, id).await?;
    let model = load_model(&app, &promotion.business_unit, &promotion.model).await?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(model.business_unit.clone()),
        Facts {
            target_is_self: Some(promotion.requested_by == caller.name),
            ..Facts::default()
        },
    )
    .await?;
    Ok(ok(close(
        &app,
        &caller,
        &promotion,
        "withdrawn",
        &body.reason,
        &decision,
    )
    .await?))
}

/// Tries to apply a pending request again (e.g. once a freeze is over).
pub async fn apply(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let promotion = load_promotion(&app, id).await?;
    let model = load_model(&app, &promotion.business_unit, &promotion.model).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .await?;
    conflict_unless_pending(&app, &promotion, &caller.name).await?;
    if promotion.state != "pending" {
        return Err(ApiError::Conflict(format!(
            "promotion {id} is {}, no longer pending",
            promotion.state
        )));
    }
    let evaluation = try_apply(&app, id, &caller.name).await?;
    Ok(ok(answer(&app, id, evaluation, Value::Null).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    #[schema(min_length = 1)]
    pub comment: String,
}

/// The review after the fact that every emergency promotion owes.
pub async fn review(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    JsonBody(body): JsonBody<Review>,
) -> Result<Json<Value>, ApiError> {
    check_text("comment", &body.comment, true)?;
    let promotion = load_promotion(&app, id).await?;
    let (version, model) = load_version(&app, &promotion.digest).await?;
    let involved = [promotion.requested_by.as_str(), version.author.as_str()];
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(model.business_unit.clone()),
        Facts {
            target_is_self: Some(
                involved.contains(&caller.name.as_str())
                    || involved.contains(&caller.token_issuer.as_str()),
            ),
            ..Facts::default()
        },
    )
    .await?;
    let mut tx = app.store.begin().await?;
    if !tx
        .review_promotion(id, &caller.name, &app.now(), &body.comment)
        .await?
    {
        tx.rollback().await?;
        return Err(ApiError::Conflict(format!(
            "promotion {id} has no review due: only applied emergency promotions are reviewed, once"
        )));
    }
    let entry = commit(
        &app,
        tx,
        draft(
            &caller.name,
            "promotion.review",
            &promotion,
            json!({"comment": body.comment}),
            caller.decision_json(&decision),
        ),
    )
    .await?;
    Ok(ok(answer(
        &app,
        id,
        None,
        json!({"audit": receipt(&entry)}),
    )
    .await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GateQuery {
    /// The environment the version would be promoted to.
    pub environment: String,
    /// Evaluate as the emergency path would.
    #[serde(default)]
    pub emergency: bool,
}

/// Evaluates every gate of promoting a version to an environment, changing nothing: with
/// the approvals of the open request for it if there is one, else as the caller's request.
pub async fn check(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
    ApiQuery(query): ApiQuery<GateQuery>,
) -> Result<Json<Value>, ApiError> {
    let (version, model) = load_version(&app, &digest).await?;
    authorize(
        &app,
        &caller,
        version_resource(&version, &model),
        RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .await?;
    let env = load_environment(&app, &query.environment).await?;
    let OpenRequest {
        promotion: open,
        approvals,
        change,
    } = open_request(&app, &version, &model, &env).await?;
    let (requester_name, emergency) = match &open {
        Some(promotion) => (
            promotion.requested_by.clone(),
            promotion.emergency_reason.is_some() || query.emergency,
        ),
        None => (caller.name.clone(), query.emergency),
    };
    let requester = requester(&app, &requester_name, &model.business_unit).await?;
    let proposal = Proposal {
        version: &version,
        model: &model,
        env: &env,
        requester: &requester,
        approvals: &approvals,
        emergency,
        change: change.as_ref(),
    };
    // Re-verifying every blob is the costly part; it is done for those who may ask for it
    // anyway (`version.verify`), and always when a promotion is applied.
    let verifier = Caller {
        action: Action::VersionVerify,
        ..caller.clone()
    };
    let may_verify = crate::authz::decide(
        &app,
        &verifier,
        version_resource(&version, &model),
        &RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .allowed;
    let evaluation = evaluate(&app, &proposal, may_verify).await?;
    let mut body = evaluation.to_json();
    if !may_verify {
        body["integrity"] = json!(
            "not checked: re-verifying the contents needs version.verify; they are verified when the promotion is applied"
        );
    }
    body["digest"] = json!(version.digest);
    body["version"] = json!(version.version_label);
    body["model"] = json!(format!("{}/{}", model.business_unit, model.name));
    body["environment"] = json!(env.name);
    body["promotion"] = json!(open.map(|promotion| promotion.id));
    body["requester"] = json!(requester_name);
    Ok(ok(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftAttachment {
    /// The report of `steward drift report --format json`: `items` with `column` and the
    /// `psi` and `ks_pvalue` of each feature; the rest is kept as given.
    #[schema(value_type = Object)]
    pub report: Value,
}

/// Attaches a drift report (validation sample against the training reference) to a version,
/// for the drift gate. The newest report counts.
pub async fn attach_drift(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
    JsonBody(body): JsonBody<DriftAttachment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Digest::parse(&digest).map_err(bad)?;
    let items: Vec<promotion::DriftItem> = serde_json::from_value(body.report["items"].clone())
        .map_err(|err| bad(format!("report.items: {err}")))?;
    if items.is_empty() || items.len() > DRIFT_FEATURES_MAX {
        return Err(bad(format!(
            "report.items: between 1 and {DRIFT_FEATURES_MAX} features, not {}",
            items.len()
        )));
    }
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if item.psi.is_some_and(|psi| !psi.is_finite() || psi < 0.0) {
            problems.push(format!(
                "report.items[{index}].psi: not a number at or above 0"
            ));
        }
        if item.ks_pvalue.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            problems.push(format!("report.items[{index}].ks_pvalue: not in [0, 1]"));
        }
    }
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    let (version, decision) = {
        let (version, model) = load_version(&app, &digest).await?;
        let decision = authorize(
            &app,
            &caller,
            version_resource(&version, &model),
            RoleScope::Unit(model.business_unit.clone()),
            Facts::default(),
        )
        .await?;
        (version, decision)
    };
    let mut tx = app.store.begin().await?;
    tx.insert_drift_report(
        &version.digest,
        &body.report.to_string(),
        &caller.name,
        &app.now(),
    )
    .await?;
    let drifts: Vec<Value> = items
        .iter()
        .map(|item| json!({"column": item.column, "psi": item.psi, "ks_pvalue": item.ks_pvalue}))
        .collect();
    let entry = commit(
        &app,
        tx,
        EventDraft {
            actor: caller.name.clone(),
            action: caller.action.as_str().to_owned(),
            subject: format!("version:{}", version.digest),
            payload: json!({"features": drifts}),
            decision: caller.decision_json(&decision),
        },
    )
    .await?;
    Ok(created(
        json!({"digest": version.digest, "features": items.len(), "audit": receipt(&entry)}),
    ))
}

/// Expires overdue requests and applies pending ones whose gates pass now (a freeze ended,
/// a maintenance window opened). Returns how many were applied.
pub async fn sweep(app: &App) -> Result<usize, ApiError> {
    let mut applied = 0;
    for promotion in app.store.pending_promotions(SWEEP_PROMOTIONS_MAX).await? {
        // One request that cannot be evaluated (e.g. no template matches it any more) does
        // not hold up the others.
        let tried = match try_apply(app, promotion.id, SWEEP_ACTOR).await {
            Ok(tried) => tried,
            Err(err) => {
                tracing::warn!(promotion = promotion.id, error = %err, "Sweep could not evaluate a promotion.");
                continue;
            }
        };
        if tried.is_some()
            && app
                .store
                .promotion(promotion.id)
                .await?
                .is_some_and(|now| now.state == "applied")
        {
            applied += 1;
        }
    }
    Ok(applied)
}

/// The gates a canary must pass before it takes any traffic in `env`: the same as
/// promoting it there, as `requester`, with the approvals of its open promotion (if any).
pub(super) async fn canary_gates(
    app: &App,
    requester_name: &str,
    version: &steward_store::Version,
    model: &steward_store::Model,
    env: &steward_store::Environment,
) -> Result<Evaluation, ApiError> {
    let OpenRequest {
        approvals, change, ..
    } = open_request(app, version, model, env).await?;
    let requester = requester(app, requester_name, &model.business_unit).await?;
    let proposal = Proposal {
        version,
        model,
        env,
        requester: &requester,
        approvals: &approvals,
        emergency: false,
        change: change.as_ref(),
    };
    evaluate(app, &proposal, true).await
}
