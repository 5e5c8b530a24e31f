//! Authorisation with Cedar: Steward's schema, its shipped policy set, the organisation's
//! policies, and decisions that carry their reasons.
//!
//! Invariants:
//! - Default deny; forbid beats permit (Cedar's semantics).
//! - Deviation from Cedar, on purpose: a policy that errors during evaluation makes the
//!   decision a deny. Cedar would skip it, which would silently disable a broken forbid.
//! - A policy set that fails to parse or to validate against the schema (strict mode) is
//!   refused as a whole; `Engine::load` is the only constructor.
//! - Every decision names the policies that determined it (their `@id`), or `default-deny`.

mod testing;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, Policy, PolicyId, PolicySet, Schema, ValidationMode,
    Validator,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest as _;

pub use testing::{CaseOutcome, TestFileError, run_test_file};

pub const SCHEMA_TEXT: &str = include_str!("../policies/steward.cedarschema");
pub const SHIPPED_POLICIES: &str = include_str!("../policies/shipped.cedar");
/// Bound on the organisation's policy text, all files together.
pub const POLICY_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Reason given when no policy matched.
pub const DEFAULT_DENY: &str = "default-deny";

/// Every action the API can ask about. The server maps each route to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "business_unit.create")]
    BusinessUnitCreate,
    #[serde(rename = "business_unit.read")]
    BusinessUnitRead,
    #[serde(rename = "user.create")]
    UserCreate,
    #[serde(rename = "user.list")]
    UserList,
    #[serde(rename = "user.read")]
    UserRead,
    #[serde(rename = "user.role.grant")]
    RoleGrant,
    #[serde(rename = "user.role.revoke")]
    RoleRevoke,
    #[serde(rename = "user.certification.record")]
    CertificationRecord,
    #[serde(rename = "token.create")]
    TokenCreate,
    #[serde(rename = "token.list")]
    TokenList,
    #[serde(rename = "token.revoke")]
    TokenRevoke,
    #[serde(rename = "environment.create")]
    EnvironmentCreate,
    #[serde(rename = "environment.read")]
    EnvironmentRead,
    #[serde(rename = "inventory.search")]
    InventorySearch,
    #[serde(rename = "model.create")]
    ModelCreate,
    #[serde(rename = "model.read")]
    ModelRead,
    #[serde(rename = "version.register")]
    VersionRegister,
    #[serde(rename = "version.read")]
    VersionRead,
    #[serde(rename = "version.deprecate")]
    VersionDeprecate,
    #[serde(rename = "version.approve")]
    VersionApprove,
    #[serde(rename = "alias.read")]
    AliasRead,
    #[serde(rename = "alias.set")]
    AliasSet,
    #[serde(rename = "audit.read")]
    AuditRead,
    #[serde(rename = "audit.verify")]
    AuditVerify,
    #[serde(rename = "audit.checkpoint")]
    AuditCheckpoint,
    #[serde(rename = "audit.export")]
    AuditExport,
    #[serde(rename = "audit.hash")]
    AuditHash,
    #[serde(rename = "blob.upload")]
    BlobUpload,
    #[serde(rename = "blob.read")]
    BlobRead,
    #[serde(rename = "advisory.import")]
    AdvisoryImport,
    #[serde(rename = "key.read")]
    KeyRead,
    #[serde(rename = "key.rotate")]
    KeyRotate,
    #[serde(rename = "key.retire")]
    KeyRetire,
    #[serde(rename = "version.verify")]
    VersionVerify,
    #[serde(rename = "calendar.read")]
    CalendarRead,
    #[serde(rename = "calendar.manage")]
    CalendarManage,
    #[serde(rename = "version.drift")]
    VersionDrift,
    #[serde(rename = "promotion.request")]
    PromotionRequest,
    #[serde(rename = "promotion.emergency")]
    PromotionEmergency,
    #[serde(rename = "promotion.approve")]
    PromotionApprove,
    #[serde(rename = "promotion.reject")]
    PromotionReject,
    #[serde(rename = "promotion.withdraw")]
    PromotionWithdraw,
    #[serde(rename = "promotion.review")]
    PromotionReview,
    #[serde(rename = "webhook.read")]
    WebhookRead,
    #[serde(rename = "webhook.manage")]
    WebhookManage,
    #[serde(rename = "alias.rollback")]
    AliasRollback,
    #[serde(rename = "routing.set")]
    RoutingSet,
    #[serde(rename = "flag.set")]
    FlagSet,
    #[serde(rename = "version.pin")]
    VersionPin,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::BusinessUnitCreate,
        Action::BusinessUnitRead,
        Action::UserCreate,
        Action::UserList,
        Action::UserRead,
        Action::RoleGrant,
        Action::RoleRevoke,
        Action::CertificationRecord,
        Action::TokenCreate,
        Action::TokenList,
        Action::TokenRevoke,
        Action::EnvironmentCreate,
        Action::EnvironmentRead,
        Action::InventorySearch,
        Action::ModelCreate,
        Action::ModelRead,
        Action::VersionRegister,
        Action::VersionRead,
        Action::VersionDeprecate,
        Action::VersionApprove,
        Action::AliasRead,
        Action::AliasSet,
        Action::AuditRead,
        Action::AuditVerify,
        Action::AuditCheckpoint,
        Action::AuditExport,
        Action::AuditHash,
        Action::BlobUpload,
        Action::BlobRead,
        Action::AdvisoryImport,
        Action::KeyRead,
        Action::KeyRotate,
        Action::KeyRetire,
        Action::VersionVerify,
        Action::CalendarRead,
        Action::CalendarManage,
        Action::VersionDrift,
        Action::PromotionRequest,
        Action::PromotionEmergency,
        Action::PromotionApprove,
        Action::PromotionReject,
        Action::PromotionWithdraw,
        Action::PromotionReview,
        Action::WebhookRead,
        Action::WebhookManage,
        Action::AliasRollback,
        Action::RoutingSet,
        Action::FlagSet,
        Action::VersionPin,
    ];

    pub fn as_str(self) -> &'static str {
        // One name per variant, matching the serde renames above (`action_names_match_serde`).
        match self {
            Action::BusinessUnitCreate => "business_unit.create",
            Action::BusinessUnitRead => "business_unit.read",
            Action::UserCreate => "user.create",
            Action::UserList => "user.list",
            Action::UserRead => "user.read",
            Action::RoleGrant => "user.role.grant",
            Action::RoleRevoke => "user.role.revoke",
            Action::CertificationRecord => "user.certification.record",
            Action::TokenCreate => "token.create",
            Action::TokenList => "token.list",
            Action::TokenRevoke => "token.revoke",
            Action::EnvironmentCreate => "environment.create",
            Action::EnvironmentRead => "environment.read",
            Action::InventorySearch => "inventory.search",
            Action::ModelCreate => "model.create",
            Action::ModelRead => "model.read",
            Action::VersionRegister => "version.register",
            Action::VersionRead => "version.read",
            Action::VersionDeprecate => "version.deprecate",
            Action::VersionApprove => "version.approve",
            Action::AliasRead => "alias.read",
            Action::AliasSet => "alias.set",
            Action::AuditRead => "audit.read",
            Action::AuditVerify => "audit.verify",
            Action::AuditCheckpoint => "audit.checkpoint",
            Action::AuditExport => "audit.export",
            Action::AuditHash => "audit.hash",
            Action::BlobUpload => "blob.upload",
            Action::BlobRead => "blob.read",
            Action::AdvisoryImport => "advisory.import",
            Action::KeyRead => "key.read",
            Action::KeyRotate => "key.rotate",
            Action::KeyRetire => "key.retire",
            Action::VersionVerify => "version.verify",
            Action::CalendarRead => "calendar.read",
            Action::CalendarManage => "calendar.manage",
            Action::VersionDrift => "version.drift",
            Action::PromotionRequest => "promotion.request",
            Action::PromotionEmergency => "promotion.emergency",
            Action::PromotionApprove => "promotion.approve",
            Action::PromotionReject => "promotion.reject",
            Action::PromotionWithdraw => "promotion.withdraw",
            Action::PromotionReview => "promotion.review",
            Action::WebhookRead => "webhook.read",
            Action::WebhookManage => "webhook.manage",
            Action::AliasRollback => "alias.rollback",
            Action::RoutingSet => "routing.set",
            Action::FlagSet => "flag.set",
            Action::VersionPin => "version.pin",
        }
    }
}

/// The model an authorisation concerns, as the policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFacts {
    pub business_unit: String,
    pub name: String,
    pub owner: String,
    pub risk_class: String,
    pub tier: i64,
    pub category: String,
}

/// What the action is applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resource {
    Directory,
    BusinessUnit {
        name: String,
    },
    User {
        id: String,
    },
    Model(ModelFacts),
    Version {
        digest: String,
        author: String,
        deprecated: bool,
        model: ModelFacts,
    },
}

/// Everything the policies may look at. Built by the server from stored facts; built by
/// `steward policy test` from golden files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub principal: String,
    #[serde(default)]
    pub certified_until: i64,
    /// The principal's roles that apply to the resource (global plus its business unit).
    pub roles: Vec<String>,
    pub action: Action,
    pub resource: Resource,
    /// Unix seconds.
    #[serde(default)]
    pub now: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_deprecated: Option<bool>,
    /// The usage term that forbids this deployment, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidding_term: Option<String>,
    /// The blocking advisory finding, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    /// The schema fields the classification policy forbids in the target environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification_violation: Option<String>,
    /// The freeze window that is active for the target environment (for the message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_window: Option<String>,
    /// Promotion gates' findings (only those that did not pass), for the gate policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_documentation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_checklist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_board_quorum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_dpo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_drift: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_api_compatibility: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_change_record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_cab: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_pre_mortem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_maintenance_window: Option<String>,
    /// The promotion takes the emergency path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_global: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_is_self: Option<bool>,
    /// Who issued the token the request came with; `None` means the principal did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_issuer: Option<String>,
}

impl Request {
    /// A request with no optional facts: add those a decision needs with `..`.
    pub fn new(
        principal: &str,
        roles: Vec<String>,
        action: Action,
        resource: Resource,
        now: i64,
    ) -> Request {
        Request {
            principal: principal.to_owned(),
            certified_until: 0,
            roles,
            action,
            resource,
            now,
            production: None,
            version_deprecated: None,
            forbidding_term: None,
            vulnerability: None,
            classification_violation: None,
            freeze_window: None,
            gate_documentation: None,
            gate_checklist: None,
            gate_board_quorum: None,
            gate_dpo: None,
            gate_drift: None,
            gate_api_compatibility: None,
            gate_change_record: None,
            gate_cab: None,
            gate_pre_mortem: None,
            gate_maintenance_window: None,
            emergency: None,
            granted_role: None,
            granted_global: None,
            target_is_self: None,
            token_issuer: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the policies that determined the decision, or `default-deny`.
    pub reasons: Vec<String>,
    /// Evaluation errors; any error makes the decision a deny.
    pub errors: Vec<String>,
    /// `sha256:` of the policy set that decided, so the audit trail pins the rules in force.
    pub policy_set: String,
}

impl Decision {
    /// The form stored with audit events and returned in 403 bodies.
    pub fn to_json(&self, action: Action) -> Value {
        json!({
            "effect": if self.allowed { "allow" } else { "deny" },
            "action": action.as_str(),
            "policies": self.reasons,
            "errors": self.errors,
            "policy_set": self.policy_set,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy set has {} problem(s): {}", .problems.len(), .problems.join("; "))]
pub struct LoadError {
    pub problems: Vec<String>,
}

/// A validated policy set, ready to decide.
pub struct Engine {
    schema: Schema,
    policies: PolicySet,
    policy_set_hash: String,
    descriptions: BTreeMap<String, String>,
}

impl Engine {
    /// Shipped policies plus the organisation's, given as `(file name, text)` pairs.
    pub fn load(org_policies: &[(String, String)]) -> Result<Engine, LoadError> {
        let mut problems = Vec::new();
        let schema = match Schema::from_cedarschema_str(SCHEMA_TEXT) {
            Ok((schema, _warnings)) => schema,
            Err(err) => {
                return Err(LoadError {
                    problems: vec![format!("schema: {err}")],
                });
            }
        };
        let total_bytes: usize = org_policies.iter().map(|(_, text)| text.len()).sum();
        if total_bytes > POLICY_BYTES_MAX {
            problems.push(format!("organisation policies are {total_bytes} bytes, more than the limit of {POLICY_BYTES_MAX}"));
        }
        let mut policies = PolicySet::new();
        let mut descriptions = BTreeMap::new();
        let mut hasher = sha2::Sha256::new();
        let sources = std::iter::once(("shipped.cedar".to_owned(), SHIPPED_POLICIES.to_owned()))
            .chain(org_policies.iter().cloned());
        for (file, text) in sources {
            hasher.update(file.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            let parsed = match PolicySet::from_str(&text) {
                Ok(parsed) => parsed,
                Err(err) => {
                    problems.push(format!("{file}: {}", one_line(&err.to_string())));
                    continue;
                }
            };
            let stem = file.trim_end_matches(".cedar").to_owned();
            let mut parsed_policies: Vec<&Policy> = parsed.policies().collect();
            // Default ids (`policy0`, ...) follow source order; keep it.
            parsed_policies.sort_by_key(|policy| policy_index(policy.id()));
            for (policy_idx, policy) in parsed_policies.into_iter().enumerate() {
                let id = policy
                    .annotation("id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{stem}.{policy_idx}"));
                if let Some(description) = policy.annotation("description") {
                    descriptions.insert(id.clone(), description.to_owned());
                }
                if let Err(err) = policies.add(policy.new_id(PolicyId::new(&id))) {
                    problems.push(format!(
                        "{file}: policy `{id}`: {}",
                        one_line(&err.to_string())
                    ));
                }
            }
            if !parsed.templates().collect::<Vec<_>>().is_empty() {
                problems.push(format!("{file}: policy templates are not supported"));
            }
        }
        if problems.is_empty() {
            let validation =
                Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
            for err in validation.validation_errors() {
                problems.push(format!("validation: {}", one_line(&err.to_string())));
            }
        }
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        let policy_set_hash = format!("sha256:{}", hex::encode(hasher.finalize()));
        Ok(Engine {
            schema,
            policies,
            policy_set_hash,
            descriptions,
        })
    }

    pub fn policy_set_hash(&self) -> &str {
        &self.policy_set_hash
    }

    /// `(id, description)` of every policy in force.
    pub fn policy_descriptions(&self) -> &BTreeMap<String, String> {
        &self.descriptions
    }

    /// Total: never fails, never panics. Anything unexpected becomes a deny with the
    /// problem in `errors`.
    pub fn authorize(&self, request: &Request) -> Decision {
        let deny = |errors: Vec<String>| Decision {
            allowed: false,
            reasons: vec![DEFAULT_DENY.to_owned()],
            errors,
            policy_set: self.policy_set_hash.clone(),
        };
        let (principal, action, resource, context, entities) = match self.build(request) {
            Ok(parts) => parts,
            Err(err) => return deny(vec![err]),
        };
        let cedar_request = match cedar_policy::Request::new(
            principal,
            action,
            resource,
            context,
            Some(&self.schema),
        ) {
            Ok(cedar_request) => cedar_request,
            Err(err) => {
                return deny(vec![format!(
                    "request does not match the schema: {}",
                    one_line(&err.to_string())
                )]);
            }
        };
        let response = Authorizer::new().is_authorized(&cedar_request, &self.policies, &entities);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        reasons.sort();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|err| one_line(&err.to_string()))
            .collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow && errors.is_empty();
        if reasons.is_empty() {
            reasons.push(DEFAULT_DENY.to_owned());
        }
        Decision {
            allowed,
            reasons,
            errors,
            policy_set: self.policy_set_hash.clone(),
        }
    }

    fn build(
        &self,
        request: &Request,
    ) -> Result<(EntityUid, EntityUid, EntityUid, Context, Entities), String> {
        let uid = |type_name: &str, id: &str| -> Result<EntityUid, String> {
            EntityUid::from_str(&format!(
                "Steward::{type_name}::{}",
                Value::String(id.to_owned())
            ))
            .map_err(|err| format!("bad entity id `{id}`: {}", one_line(&err.to_string())))
        };
        let mut entities: BTreeMap<String, Value> = BTreeMap::new();
        let add_user = |id: &str, certified_until: i64, entities: &mut BTreeMap<String, Value>| {
            let key = format!("User::{id}");
            entities.entry(key).or_insert_with(|| {
                json!({"uid": {"type": "Steward::User", "id": id}, "attrs": {"certified_until": certified_until}, "parents": []})
            });
        };
        add_user(&request.principal, request.certified_until, &mut entities);
        let token_issuer = request
            .token_issuer
            .as_deref()
            .unwrap_or(&request.principal);
        add_user(token_issuer, 0, &mut entities);
        let model_entity = |model: &ModelFacts| {
            json!({
                "uid": {"type": "Steward::Model", "id": format!("{}/{}", model.business_unit, model.name)},
                "attrs": {
                    "business_unit": model.business_unit, "owner": model.owner, "risk_class": model.risk_class,
                    "tier": model.tier, "category": model.category,
                },
                "parents": [{"type": "Steward::BusinessUnit", "id": model.business_unit}],
            })
        };
        let unit_entity = |name: &str| json!({"uid": {"type": "Steward::BusinessUnit", "id": name}, "attrs": {}, "parents": []});
        let resource = match &request.resource {
            Resource::Directory => {
                entities.insert("Directory".into(), json!({"uid": {"type": "Steward::Directory", "id": "steward"}, "attrs": {}, "parents": []}));
                uid("Directory", "steward")?
            }
            Resource::BusinessUnit { name } => {
                entities.insert(format!("BusinessUnit::{name}"), unit_entity(name));
                uid("BusinessUnit", name)?
            }
            Resource::User { id } => {
                add_user(id, 0, &mut entities);
                uid("User", id)?
            }
            Resource::Model(model) => {
                entities.insert(
                    format!("BusinessUnit::{}", model.business_unit),
                    unit_entity(&model.business_unit),
                );
                entities.insert("Model".into(), model_entity(model));
                uid("Model", &format!("{}/{}", model.business_unit, model.name))?
            }
            Resource::Version {
                digest,
                author,
                deprecated,
                model,
            } => {
                add_user(author, 0, &mut entities);
                entities.insert(
                    format!("BusinessUnit::{}", model.business_unit),
                    unit_entity(&model.business_unit),
                );
                entities.insert("Model".into(), model_entity(model));
                entities.insert(
                    "Version".into(),
                    json!({
                        "uid": {"type": "Steward::Version", "id": digest},
                        "attrs": {"author": {"__entity": {"type": "Steward::User", "id": author}}, "deprecated": deprecated, "risk_class": model.risk_class},
                        "parents": [{"type": "Steward::Model", "id": format!("{}/{}", model.business_unit, model.name)}],
                    }),
                );
                uid("Version", digest)?
            }
        };
        let entities = Entities::from_json_value(
            Value::Array(entities.into_values().collect()),
            Some(&self.schema),
        )
        .map_err(|err| {
            format!(
                "entities do not match the schema: {}",
                one_line(&err.to_string())
            )
        })?;
        let action = EntityUid::from_str(&format!(
            "Steward::Action::{}",
            Value::String(request.action.as_str().to_owned())
        ))
        .map_err(|err| one_line(&err.to_string()))?;
        let roles: BTreeSet<&str> = request.roles.iter().map(String::as_str).collect();
        let mut context = json!({
            "roles": roles,
            "now": request.now,
            "token_issuer": {"__entity": {"type": "Steward::User", "id": token_issuer}},
        });
        let optional = [
            ("production", request.production.map(Value::Bool)),
            (
                "version_deprecated",
                request.version_deprecated.map(Value::Bool),
            ),
            (
                "forbidding_term",
                request.forbidding_term.clone().map(Value::String),
            ),
            (
                "vulnerability",
                request.vulnerability.clone().map(Value::String),
            ),
            (
                "classification_violation",
                request.classification_violation.clone().map(Value::String),
            ),
            (
                "freeze_window",
                request.freeze_window.clone().map(Value::String),
            ),
            (
                "granted_role",
                request.granted_role.clone().map(Value::String),
            ),
            ("granted_global", request.granted_global.map(Value::Bool)),
            (
                "gate_documentation",
                request.gate_documentation.clone().map(Value::String),
            ),
            (
                "gate_checklist",
                request.gate_checklist.clone().map(Value::String),
            ),
            (
                "gate_board_quorum",
                request.gate_board_quorum.clone().map(Value::String),
            ),
            ("gate_dpo", request.gate_dpo.clone().map(Value::String)),
            ("gate_drift", request.gate_drift.clone().map(Value::String)),
            (
                "gate_api_compatibility",
                request.gate_api_compatibility.clone().map(Value::String),
            ),
            (
                "gate_change_record",
                request.gate_change_record.clone().map(Value::String),
            ),
            ("gate_cab", request.gate_cab.clone().map(Value::String)),
            (
                "gate_pre_mortem",
                request.gate_pre_mortem.clone().map(Value::String),
            ),
            (
                "gate_maintenance_window",
                request.gate_maintenance_window.clone().map(Value::String),
            ),
            ("emergency", request.emergency.map(Value::Bool)),
            ("target_is_self", request.target_is_self.map(Value::Bool)),
        ];
        for (key, value) in optional {
            if let (Some(value), Some(map)) = (value, context.as_object_mut()) {
                map.insert(key.to_owned(), value);
            }
        }
        let context =
            Context::from_json_value(context, Some((&self.schema, &action))).map_err(|err| {
                format!(
                    "context does not match the schema: {}",
                    one_line(&err.to_string())
                )
            })?;
        Ok((
            uid("User", &request.principal)?,
            action,
            resource,
            context,
            entities,
        ))
    }
}

fn policy_index(id: &PolicyId) -> usize {
    id.to_string()
        .trim_start_matches("policy")
        .parse()
        .unwrap_or(usize::MAX)
}

/// Cedar's messages may span lines; ours never do.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
