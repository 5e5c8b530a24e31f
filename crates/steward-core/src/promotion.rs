//! Promotion gates (G1, G3, G4, G8, C5, V2): deployment templates that say which gates apply
//! to a promotion, review boards, and the evaluation of each gate from the facts handed in.
//!
//! A gate here only establishes facts (passed, or what blocks it and why, or what is missing
//! to evaluate it). Whether a fact blocks the promotion is the policy engine's decision
//! (`steward.gate.*` in the shipped Cedar policies), so an organisation can tighten or waive
//! gates in Cedar, and the emergency path is a policy condition, not a code path.
//!
//! Pure: approvals, documentation, schemas and drift reports are passed in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::schema::{self, DataSchema};

/// Bound on review boards, templates and board members in a gate configuration.
pub const GATE_CONFIG_ITEMS_MAX: usize = 10_000;
/// Hours a promotion request stays open by default (then it expires).
pub const DEFAULT_EXPIRY_HOURS: u32 = 168;
/// Longest a template may keep a request open: 90 days.
pub const EXPIRY_HOURS_MAX: u32 = 90 * 24;

/// The organisation's review boards and deployment templates (`gates.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Business unit → board name → board.
    #[serde(default)]
    pub boards: BTreeMap<String, BTreeMap<String, Board>>,
    /// Tried in order; the first that matches a promotion decides its gates.
    #[serde(default)]
    pub templates: Vec<DeploymentTemplate>,
    /// A minijinja template for change impact statements (default: `DEFAULT_IMPACT_TEMPLATE`).
    #[serde(default)]
    pub impact_statement: Option<String>,
}

/// A review board: members by name, each with the capacity they sit in (legal, security,
/// domain expert, compliance, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub members: BTreeMap<String, String>,
}

/// Which gates apply to promotions matching it. An empty list matches everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentTemplate {
    pub name: String,
    #[serde(default)]
    pub environments: Vec<String>,
    /// Matches only production (true) or only other environments (false).
    #[serde(default)]
    pub production: Option<bool>,
    #[serde(default)]
    pub business_units: Vec<String>,
    #[serde(default)]
    pub risk_classes: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<i64>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub gates: Gates,
    /// Hours until an open request expires.
    #[serde(default = "default_expiry")]
    pub expires_after_hours: u32,
}

fn default_expiry() -> u32 {
    DEFAULT_EXPIRY_HOURS
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// The documentation the version's risk tier requires is complete (G3).
    #[serde(default = "yes")]
    pub documentation: bool,
    /// A model-card review checklist signed off by someone holding one of the roles (G8).
    #[serde(default)]
    pub checklist: Option<Checklist>,
    /// Review-board quorums (G1).
    #[serde(default)]
    pub boards: Vec<BoardGate>,
    /// Risk classes that need a data protection officer's sign-off (C5).
    #[serde(default)]
    pub dpo_sign_off: Vec<String>,
    /// Drift of the validation sample against the reference (G4).
    #[serde(default)]
    pub drift: Option<DriftGate>,
    /// Breaking schema changes against the version in place need a major version and an
    /// explicit approval (V2).
    #[serde(default)]
    pub api_compatibility: bool,
    /// A change record (C1, C2, C4, C7) with the CAB that approves normal changes.
    #[serde(default)]
    pub change_record: Option<ChangeGate>,
    /// Applied only during one of the environment's maintenance windows (C3).
    #[serde(default)]
    pub maintenance_window: bool,
}

impl Default for Gates {
    fn default() -> Gates {
        Gates {
            documentation: true,
            checklist: None,
            boards: Vec::new(),
            dpo_sign_off: Vec::new(),
            drift: None,
            api_compatibility: false,
            change_record: None,
            maintenance_window: false,
        }
    }
}

/// What a template asks of change records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeGate {
    /// The change advisory board that approves normal changes, and its quorum.
    #[serde(default)]
    pub cab: Option<BoardGate>,
    /// Standard changes are pre-approved by this template (no CAB).
    #[serde(default)]
    pub standard_allowed: bool,
    /// Impact levels of the risk assessment that need a pre-mortem (default: high).
    #[serde(default = "high_impact")]
    pub pre_mortem_for: Vec<Level>,
}

fn high_impact() -> Vec<Level> {
    vec![Level::High]
}

/// ITIL change types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    /// Pre-approved by the deployment template.
    Standard,
    /// Approved by the change advisory board.
    Normal,
    /// Made at once on the emergency path, reviewed afterwards.
    Emergency,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// Bound on each text of a change record, and on its lists.
pub const CHANGE_TEXT_BYTES_MAX: usize = 8 * 1024;
pub const CHANGE_ITEMS_MAX: usize = 100;

/// A change record (C1): the risk assessment, the traffic the release takes, how it is
/// rolled back and what a rollback depends on (C4), and for high-impact releases a
/// pre-mortem (C7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRecord {
    #[serde(rename = "type")]
    pub change_type: ChangeType,
    pub risk: RiskAssessment,
    /// Share of requests the new version takes at first, in (0, 1].
    pub traffic_share: f64,
    pub rollback_plan: String,
    pub rollback_dependencies: RollbackDependencies,
    #[serde(default)]
    pub pre_mortem: Vec<FailureMode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskAssessment {
    pub impact: Level,
    pub likelihood: Level,
    #[serde(default)]
    pub notes: String,
}

/// What must be rolled back with the model (C4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackDependencies {
    #[serde(default)]
    pub data_pipeline_version: Option<String>,
    #[serde(default)]
    pub feature_store_schema_version: Option<String>,
    #[serde(default)]
    pub upstream_datasets: Vec<String>,
}

/// One failure mode of a pre-mortem, with its mitigation; approvers check it off by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureMode {
    pub id: String,
    pub failure_mode: String,
    pub mitigation: String,
}

impl ChangeRecord {
    /// Every problem of form (empty texts, bounds, duplicate ids).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.traffic_share > 0.0 && self.traffic_share <= 1.0) {
            problems.push(format!(
                "change.traffic_share: {} is not in (0, 1]",
                self.traffic_share
            ));
        }
        let mut texts: Vec<(String, &str)> = vec![
            ("change.rollback_plan".into(), self.rollback_plan.as_str()),
            ("change.risk.notes".into(), self.risk.notes.as_str()),
        ];
        let deps = &self.rollback_dependencies;
        texts.extend(deps.data_pipeline_version.iter().map(|text| {
            (
                "change.rollback_dependencies.data_pipeline_version".into(),
                text.as_str(),
            )
        }));
        texts.extend(deps.feature_store_schema_version.iter().map(|text| {
            (
                "change.rollback_dependencies.feature_store_schema_version".into(),
                text.as_str(),
            )
        }));
        for (index, dataset) in deps.upstream_datasets.iter().enumerate() {
            texts.push((
                format!("change.rollback_dependencies.upstream_datasets[{index}]"),
                dataset,
            ));
        }
        let mut ids = BTreeSet::new();
        for (index, mode) in self.pre_mortem.iter().enumerate() {
            let at = format!("change.pre_mortem[{index}]");
            if mode.id.trim().is_empty() || mode.id.len() > 64 {
                problems.push(format!("{at}.id: between 1 and 64 bytes"));
            } else if !ids.insert(mode.id.as_str()) {
                problems.push(format!("{at}.id: `{}` appears twice", mode.id));
            }
            for (field, text) in [
                ("failure_mode", &mode.failure_mode),
                ("mitigation", &mode.mitigation),
            ] {
                if text.trim().is_empty() {
                    problems.push(format!("{at}.{field}: must not be empty"));
                }
                texts.push((format!("{at}.{field}"), text));
            }
        }
        if self.rollback_plan.trim().is_empty() {
            problems.push("change.rollback_plan: must not be empty".into());
        }
        let blank =
            |text: &Option<String>| text.as_ref().is_some_and(|text| text.trim().is_empty());
        if blank(&deps.data_pipeline_version)
            || blank(&deps.feature_store_schema_version)
            || deps
                .upstream_datasets
                .iter()
                .any(|dataset| dataset.trim().is_empty())
        {
            problems.push("change.rollback_dependencies: a dependency named is blank".into());
        }
        for (field, text) in texts {
            if text.len() > CHANGE_TEXT_BYTES_MAX {
                problems.push(format!("{field}: more than {CHANGE_TEXT_BYTES_MAX} bytes"));
            }
        }
        if self.pre_mortem.len() > CHANGE_ITEMS_MAX
            || deps.upstream_datasets.len() > CHANGE_ITEMS_MAX
        {
            problems.push(format!(
                "change: at most {CHANGE_ITEMS_MAX} failure modes and upstream datasets"
            ));
        }
        problems
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    /// Steward roles whose sign-off counts (e.g. `compliance_officer`).
    pub roles: Vec<String>,
    /// Every item must be checked by the signer.
    pub items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardGate {
    pub board: String,
    pub quorum: u32,
    /// Capacities that must be among the approvals counted (e.g. `security`).
    #[serde(default)]
    pub including: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftGate {
    /// A feature drifts when its PSI is at or above this (Evidently's `>=`).
    pub psi_max: f64,
    /// A feature drifts when its KS p-value is at or below this (Evidently's `<=`).
    pub ks_alpha: f64,
}

/// The review checklist shipped for production (model and system cards, G8).
pub const DEFAULT_CHECKLIST: &[&str] = &[
    "intended-use",
    "limitations",
    "evaluation",
    "fairness",
    "data-sources",
    "monitoring-plan",
];

impl GateConfig {
    /// What ships: production needs complete documentation, a checklist signed by a
    /// compliance officer or reviewer, a DPO for high-risk models, drift under PSI 0.2 and
    /// KS α 0.05, and compatible schemas; other environments need complete documentation.
    pub fn shipped() -> GateConfig {
        GateConfig {
            boards: BTreeMap::new(),
            impact_statement: None,
            templates: vec![
                DeploymentTemplate {
                    name: "production".into(),
                    environments: Vec::new(),
                    production: Some(true),
                    business_units: Vec::new(),
                    risk_classes: Vec::new(),
                    tiers: Vec::new(),
                    categories: Vec::new(),
                    gates: Gates {
                        documentation: true,
                        checklist: Some(Checklist {
                            roles: vec!["compliance_officer".into(), "reviewer".into()],
                            items: DEFAULT_CHECKLIST.iter().map(|&item| item.into()).collect(),
                        }),
                        boards: Vec::new(),
                        dpo_sign_off: vec!["high".into()],
                        drift: Some(DriftGate {
                            psi_max: 0.2,
                            ks_alpha: 0.05,
                        }),
                        api_compatibility: true,
                        change_record: Some(ChangeGate {
                            cab: None,
                            standard_allowed: true,
                            pre_mortem_for: high_impact(),
                        }),
                        maintenance_window: false,
                    },
                    expires_after_hours: DEFAULT_EXPIRY_HOURS,
                },
                DeploymentTemplate {
                    name: "default".into(),
                    environments: Vec::new(),
                    production: None,
                    business_units: Vec::new(),
                    risk_classes: Vec::new(),
                    tiers: Vec::new(),
                    categories: Vec::new(),
                    gates: Gates::default(),
                    expires_after_hours: DEFAULT_EXPIRY_HOURS,
                },
            ],
        }
    }

    /// Parses and checks a configuration; every problem is listed.
    pub fn parse_yaml(text: &str) -> Result<GateConfig, String> {
        let config: GateConfig =
            serde_saphyr::from_str(text).map_err(|err| err.to_string().replace('\n', " "))?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems.join("; "))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let members: usize = self
            .boards
            .values()
            .flat_map(|boards| boards.values())
            .map(|board| board.members.len())
            .sum();
        if self.templates.len() + members > GATE_CONFIG_ITEMS_MAX {
            problems.push(format!(
                "more than {GATE_CONFIG_ITEMS_MAX} templates and board members"
            ));
        }
        if self.templates.is_empty() {
            problems.push(
                "templates: at least one is needed (promotions that match none are refused)".into(),
            );
        }
        if let Some(text) = &self.impact_statement
            && let Err(err) = minijinja::Environment::new().add_template("impact", text)
        {
            problems.push(format!("impact_statement: {err}"));
        }
        let mut names = BTreeSet::new();
        for (index, template) in self.templates.iter().enumerate() {
            let at = format!("templates[{index}]");
            if template.name.trim().is_empty() {
                problems.push(format!("{at}.name: must not be empty"));
            } else if !names.insert(template.name.as_str()) {
                problems.push(format!("{at}.name: `{}` appears twice", template.name));
            }
            if template.expires_after_hours == 0 || template.expires_after_hours > EXPIRY_HOURS_MAX
            {
                problems.push(format!(
                    "{at}.expires_after_hours: {} is not between 1 and {EXPIRY_HOURS_MAX}",
                    template.expires_after_hours
                ));
            }
            let gates = &template.gates;
            if let Some(checklist) = &gates.checklist {
                if checklist.roles.is_empty() {
                    problems.push(format!(
                        "{at}.gates.checklist.roles: name at least one role"
                    ));
                }
                for role in &checklist.roles {
                    if role.parse::<crate::domain::Role>().is_err() {
                        problems.push(format!(
                            "{at}.gates.checklist.roles: `{role}` is not a role"
                        ));
                    }
                }
                if checklist.items.is_empty() {
                    problems.push(format!(
                        "{at}.gates.checklist.items: list at least one item"
                    ));
                }
            }
            for risk in &gates.dpo_sign_off {
                if risk.parse::<crate::domain::RiskClass>().is_err() {
                    problems.push(format!(
                        "{at}.gates.dpo_sign_off: `{risk}` is not a risk class"
                    ));
                }
            }
            let cab = gates
                .change_record
                .as_ref()
                .and_then(|change| change.cab.as_ref())
                .map(|cab| (format!("{at}.gates.change_record.cab"), cab));
            let boards = gates
                .boards
                .iter()
                .enumerate()
                .map(|(board_idx, gate)| (format!("{at}.gates.boards[{board_idx}]"), gate));
            for (at, gate) in boards.chain(cab) {
                if gate.quorum == 0 {
                    problems.push(format!("{at}.quorum: must be at least 1"));
                }
                if gate.including.len() > gate.quorum as usize {
                    problems.push(format!(
                        "{at}.including: {} capacities cannot fit in a quorum of {}",
                        gate.including.len(),
                        gate.quorum
                    ));
                }
                // Every unit the template can match must have the board, with room for the quorum.
                for (unit, boards) in &self.boards {
                    if !template.business_units.is_empty()
                        && !template.business_units.contains(unit)
                    {
                        continue;
                    }
                    if let Some(board) = boards.get(&gate.board)
                        && board.members.len() < gate.quorum as usize
                    {
                        problems.push(format!(
                            "{at}: board `{unit}/{}` has {} members, fewer than the quorum of {}",
                            gate.board,
                            board.members.len(),
                            gate.quorum
                        ));
                    }
                }
            }
            if let Some(drift) = &gates.drift
                && !(drift.psi_max.is_finite()
                    && drift.psi_max > 0.0
                    && (0.0..1.0).contains(&drift.ks_alpha))
            {
                problems.push(format!(
                    "{at}.gates.drift: psi_max must be above 0 and ks_alpha in [0, 1)"
                ));
            }
        }
        problems
    }

    /// The first template that matches.
    pub fn template_for(&self, target: &Target) -> Option<&DeploymentTemplate> {
        self.templates
            .iter()
            .find(|template| template.matches(target))
    }
}

impl DeploymentTemplate {
    fn matches(&self, target: &Target) -> bool {
        fn any_or<T: PartialEq>(list: &[T], value: &T) -> bool {
            list.is_empty() || list.contains(value)
        }
        any_or(&self.environments, &target.environment)
            && self
                .production
                .is_none_or(|production| production == target.production)
            && any_or(&self.business_units, &target.business_unit)
            && any_or(&self.risk_classes, &target.risk_class)
            && any_or(&self.tiers, &target.tier)
            && any_or(&self.categories, &target.category)
    }
}

/// Where a promotion goes and what it moves there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub environment: String,
    pub production: bool,
    pub business_unit: String,
    pub risk_class: String,
    pub tier: i64,
    pub category: String,
}

/// One approval of a promotion request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalFacts {
    pub approver: String,
    /// Who issued the token the approval came with.
    pub token_issuer: String,
    /// The approver's Steward roles in the model's business unit when they approved.
    pub roles: Vec<String>,
    /// Checklist items the approver checked.
    pub checklist: Vec<String>,
    /// The approver accepts the breaking schema changes listed when they approved.
    pub accepts_breaking_changes: bool,
    /// Pre-mortem failure modes (ids) whose mitigations the approver checked are in place.
    #[serde(default)]
    pub mitigated: Vec<String>,
}

/// The version that would be promoted, and what it would replace.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub author: &'a str,
    pub version_label: &'a str,
    /// Documentation fields the tier requires and the version lacks (G3).
    pub missing_documentation: Vec<String>,
    pub schema: Option<&'a DataSchema>,
    /// What the environment's alias points to now: version label and schema.
    pub current: Option<(&'a str, Option<&'a DataSchema>)>,
    /// Per-feature drift statistics attached to the version.
    pub drift: Option<&'a [DriftItem]>,
    pub approvals: &'a [ApprovalFacts],
    /// The change record filed with the request, if any.
    pub change: Option<&'a ChangeRecord>,
    /// The request takes the emergency path.
    pub emergency: bool,
}

/// One feature of an attached drift report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftItem {
    pub column: String,
    #[serde(default)]
    pub psi: Option<f64>,
    #[serde(default)]
    pub ks_pvalue: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Pass,
    Block,
    /// The gate could not be evaluated (data missing); it blocks.
    Missing,
    /// The gate did not pass, but the policy let the promotion through (emergency path).
    Waived,
}

impl GateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStatus::Pass => "pass",
            GateStatus::Block => "block",
            GateStatus::Missing => "missing",
            GateStatus::Waived => "waived",
        }
    }
}

/// A gate's outcome, with the policy that decides it and the facts behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: String,
    /// The `@id` of the Cedar policy that turns this gate's facts into a block.
    pub policy: String,
    pub status: GateStatus,
    pub message: String,
}

impl GateResult {
    pub fn new(gate: &str, policy: &str, status: GateStatus, message: String) -> GateResult {
        GateResult {
            gate: gate.into(),
            policy: policy.into(),
            status,
            message,
        }
    }

    /// The text handed to the policy as a fact when the gate did not pass.
    pub fn fact(&self) -> Option<String> {
        (self.status != GateStatus::Pass).then(|| self.message.clone())
    }
}

/// Evaluates the template's gates for the candidate. Returns one result per gate, in a
/// fixed order: documentation, checklist, boards, DPO, drift, API compatibility.
pub fn evaluate(
    config: &GateConfig,
    template: &DeploymentTemplate,
    target: &Target,
    candidate: &Candidate<'_>,
) -> Vec<GateResult> {
    let gates = &template.gates;
    let mut results = Vec::new();
    // Approvals that count at all: never the author's, never through a token the author issued.
    // And one person counts once: an approval through a token issued by someone who also
    // approved is that person acting twice.
    let counted: Vec<&ApprovalFacts> = candidate
        .approvals
        .iter()
        .filter(|approval| {
            approval.approver != candidate.author && approval.token_issuer != candidate.author
        })
        .filter(|approval| {
            approval.token_issuer == approval.approver
                || !candidate
                    .approvals
                    .iter()
                    .any(|other| other.approver == approval.token_issuer)
        })
        .collect();
    if gates.documentation {
        results.push(if candidate.missing_documentation.is_empty() {
            GateResult::new(
                "documentation",
                "steward.gate.documentation",
                GateStatus::Pass,
                "documentation is complete for the tier".into(),
            )
        } else {
            GateResult::new(
                "documentation",
                "steward.gate.documentation",
                GateStatus::Block,
                format!(
                    "documentation required for tier {} is missing: {}",
                    target.tier,
                    candidate.missing_documentation.join(", ")
                ),
            )
        });
    }
    if let Some(checklist) = &gates.checklist {
        results.push(checklist_result(checklist, &counted));
    }
    for gate in &gates.boards {
        results.push(board_result(config, gate, target, &counted));
    }
    if gates.dpo_sign_off.contains(&target.risk_class) {
        let signer = counted.iter().find(|approval| {
            approval
                .roles
                .iter()
                .any(|role| role == "data_protection_officer")
        });
        results.push(match signer {
            Some(approval) => GateResult::new(
                "dpo",
                "steward.gate.dpo-sign-off",
                GateStatus::Pass,
                format!(
                    "signed off by data protection officer `{}`",
                    approval.approver
                ),
            ),
            None => GateResult::new(
                "dpo",
                "steward.gate.dpo-sign-off",
                GateStatus::Block,
                format!(
                    "a {} risk model needs a data protection officer's sign-off; none has approved",
                    target.risk_class
                ),
            ),
        });
    }
    if let Some(drift) = &gates.drift {
        results.push(drift_result(drift, target, candidate));
    }
    if gates.api_compatibility {
        results.push(compatibility_result(candidate, &counted));
    }
    if let Some(gate) = &gates.change_record {
        change_results(
            config,
            gate,
            template,
            target,
            candidate,
            &counted,
            &mut results,
        );
    }
    results
}

fn change_results(
    config: &GateConfig,
    gate: &ChangeGate,
    template: &DeploymentTemplate,
    target: &Target,
    candidate: &Candidate<'_>,
    counted: &[&ApprovalFacts],
    results: &mut Vec<GateResult>,
) {
    let record_policy = "steward.change.record";
    let Some(change) = candidate.change else {
        results.push(GateResult::new(
            "change_record",
            record_policy,
            GateStatus::Missing,
            format!(
                "a promotion to `{}` needs a change record: type, risk assessment, traffic share, rollback plan and rollback dependencies",
                target.environment
            ),
        ));
        return;
    };
    let deps = &change.rollback_dependencies;
    let emergency_type = change.change_type == ChangeType::Emergency;
    results.push(if emergency_type != candidate.emergency {
        GateResult::new(
            "change_record",
            record_policy,
            GateStatus::Block,
            "an emergency change is filed on the emergency path, and only there".into(),
        )
    } else if deps.data_pipeline_version.is_none()
        && deps.feature_store_schema_version.is_none()
        && deps.upstream_datasets.is_empty()
    {
        GateResult::new(
            "change_record",
            record_policy,
            GateStatus::Block,
            "the change record names no rollback dependency (data pipeline version, feature-store schema version or upstream datasets)".into(),
        )
    } else {
        GateResult::new(
            "change_record",
            record_policy,
            GateStatus::Pass,
            format!(
                "{} change, impact {}, likelihood {}, {}% of traffic at first",
                serde_json::to_value(change.change_type).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                change.risk.impact.as_str(),
                change.risk.likelihood.as_str(),
                percent(change.traffic_share)
            ),
        )
    });
    let cab_policy = "steward.change.cab";
    results.push(match change.change_type {
        // A requester cannot make a risky change "standard" to skip the board.
        ChangeType::Standard if change.risk.impact != Level::Low => GateResult::new(
            "cab",
            cab_policy,
            GateStatus::Block,
            format!(
                "a standard change is a low-impact one; this one's impact is {}, so file a normal change for the CAB",
                change.risk.impact.as_str()
            ),
        ),
        ChangeType::Standard if gate.standard_allowed => GateResult::new(
            "cab",
            cab_policy,
            GateStatus::Pass,
            format!(
                "a standard change, pre-approved by template `{}`",
                template.name
            ),
        ),
        ChangeType::Standard => GateResult::new(
            "cab",
            cab_policy,
            GateStatus::Block,
            format!(
                "template `{}` pre-approves no standard change; file a normal change for the CAB",
                template.name
            ),
        ),
        ChangeType::Emergency => GateResult::new(
            "cab",
            cab_policy,
            GateStatus::Block,
            "an emergency change is approved by the CAB after the fact (the review)".into(),
        ),
        ChangeType::Normal => match &gate.cab {
            Some(cab) => {
                let mut result = board_result(config, cab, target, counted);
                result.gate = "cab".into();
                result.policy = cab_policy.into();
                result
            }
            None => GateResult::new(
                "cab",
                cab_policy,
                GateStatus::Missing,
                format!(
                    "template `{}` names no change advisory board for normal changes",
                    template.name
                ),
            ),
        },
    });
    if gate.pre_mortem_for.contains(&change.risk.impact) {
        let policy = "steward.change.pre-mortem";
        let checked: BTreeSet<&str> = counted
            .iter()
            .flat_map(|approval| approval.mitigated.iter().map(String::as_str))
            .collect();
        let unchecked: Vec<&str> = change
            .pre_mortem
            .iter()
            .map(|mode| mode.id.as_str())
            .filter(|id| !checked.contains(id))
            .collect();
        results.push(if change.pre_mortem.is_empty() {
            GateResult::new(
                "pre_mortem",
                policy,
                GateStatus::Missing,
                format!(
                    "a {}-impact release needs a pre-mortem: failure modes with mitigations",
                    change.risk.impact.as_str()
                ),
            )
        } else if unchecked.is_empty() {
            GateResult::new(
                "pre_mortem",
                policy,
                GateStatus::Pass,
                format!(
                    "{} failure mode(s), every mitigation checked off",
                    change.pre_mortem.len()
                ),
            )
        } else {
            GateResult::new(
                "pre_mortem",
                policy,
                GateStatus::Block,
                format!("mitigations not checked off yet: {}", unchecked.join(", ")),
            )
        });
    }
}

fn percent(share: f64) -> String {
    let value = share * 100.0;
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The impact statement shipped for change records (C2): plain language, from the facts.
pub const DEFAULT_IMPACT_TEMPLATE: &str = "\
{{ model }} version {{ version }} will {% if replaces %}replace version {{ replaces }}{% else %}be deployed{% endif %} \
in {{ environment }} for the {{ business_unit }} business unit{% if traffic_percent != \"100\" %}, \
taking {{ traffic_percent }}% of requests at first{% endif %}. \
It is a {{ risk_class }}-risk model under the EU AI Act (internal tier {{ tier }}) that is used for {{ use }}. \
Its owners rate the impact of a failure as {{ impact }} and its likelihood as {{ likelihood }}.\
{% if notes %} {{ notes }}{% endif %} \
If something goes wrong it is rolled back as follows: {{ rollback_plan }}\
{% if dependencies %} Rolling back also involves {{ dependencies | join(\", \") }}.{% endif %}\
{% if failure_modes %} Before release, the team listed {{ failure_modes }} way(s) it could fail and how each is mitigated.{% endif %}";

/// Bound on the work of rendering an impact statement (minijinja fuel).
pub const IMPACT_TEMPLATE_FUEL: u64 = 100_000;

/// Facts an impact statement is written from.
pub struct ImpactFacts<'a> {
    pub model: &'a str,
    pub version: &'a str,
    pub replaces: Option<&'a str>,
    pub target: &'a Target,
    pub change: &'a ChangeRecord,
}

/// Renders the impact statement (C2) with `template` (the shipped one unless the gate
/// configuration overrides it).
pub fn impact_statement(template: &str, facts: &ImpactFacts<'_>) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(IMPACT_TEMPLATE_FUEL));
    env.add_template("impact", template)
        .map_err(|err| format!("impact statement template: {err}"))?;
    let change = facts.change;
    let deps = &change.rollback_dependencies;
    let mut dependencies: Vec<String> = Vec::new();
    if let Some(version) = &deps.data_pipeline_version {
        dependencies.push(format!("data pipeline version {version}"));
    }
    if let Some(version) = &deps.feature_store_schema_version {
        dependencies.push(format!("feature-store schema version {version}"));
    }
    for dataset in &deps.upstream_datasets {
        dependencies.push(format!("upstream dataset {dataset}"));
    }
    let use_text = facts.target.category.replace('_', " ");
    let context = minijinja::context! {
        model => facts.model,
        version => facts.version,
        replaces => facts.replaces,
        environment => facts.target.environment.as_str(),
        business_unit => facts.target.business_unit.as_str(),
        risk_class => facts.target.risk_class.as_str(),
        tier => facts.target.tier,
        category => facts.target.category.as_str(),
        use => use_text,
        traffic_percent => percent(change.traffic_share),
        impact => change.risk.impact.as_str(),
        likelihood => change.risk.likelihood.as_str(),
        notes => change.risk.notes.trim(),
        rollback_plan => change.rollback_plan.trim(),
        dependencies => dependencies,
        failure_modes => change.pre_mortem.len(),
    };
    env.get_template("impact")
        .and_then(|template| template.render(context))
        .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
        .map_err(|err| format!("impact statement: {err}"))
}

fn checklist_result(checklist: &Checklist, counted: &[&ApprovalFacts]) -> GateResult {
    let policy = "steward.gate.checklist";
    let qualified: Vec<&&ApprovalFacts> = counted
        .iter()
        .filter(|approval| {
            approval
                .roles
                .iter()
                .any(|role| checklist.roles.contains(role))
        })
        .collect();
    let complete = qualified.iter().find(|approval| {
        checklist
            .items
            .iter()
            .all(|item| approval.checklist.contains(item))
    });
    if let Some(approval) = complete {
        return GateResult::new(
            "checklist",
            policy,
            GateStatus::Pass,
            format!("review checklist signed off by `{}`", approval.approver),
        );
    }
    let best = qualified.iter().max_by_key(|approval| {
        checklist
            .items
            .iter()
            .filter(|item| approval.checklist.contains(item))
            .count()
    });
    let message = match best {
        None => format!(
            "the review checklist ({}) needs a sign-off by a {}; none has signed",
            checklist.items.join(", "),
            checklist.roles.join(" or ")
        ),
        Some(approval) => {
            let unchecked: Vec<&str> = checklist
                .items
                .iter()
                .filter(|item| !approval.checklist.contains(item))
                .map(String::as_str)
                .collect();
            format!(
                "the review checklist is not complete: `{}` left unchecked {}",
                approval.approver,
                unchecked.join(", ")
            )
        }
    };
    GateResult::new("checklist", policy, GateStatus::Block, message)
}

fn board_result(
    config: &GateConfig,
    gate: &BoardGate,
    target: &Target,
    counted: &[&ApprovalFacts],
) -> GateResult {
    let policy = "steward.gate.board-quorum";
    let name = format!("board:{}", gate.board);
    let Some(board) = config
        .boards
        .get(&target.business_unit)
        .and_then(|boards| boards.get(&gate.board))
        .or_else(|| {
            config
                .boards
                .get("*")
                .and_then(|boards| boards.get(&gate.board))
        })
    else {
        return GateResult::new(
            &name,
            policy,
            GateStatus::Missing,
            format!(
                "business unit `{}` has no review board `{}`, so its quorum cannot be counted",
                target.business_unit, gate.board
            ),
        );
    };
    let members: Vec<(&str, &str)> = counted
        .iter()
        .filter_map(|approval| {
            board
                .members
                .get(&approval.approver)
                .map(|capacity| (approval.approver.as_str(), capacity.as_str()))
        })
        .collect();
    let missing_capacities: Vec<&str> = gate
        .including
        .iter()
        .filter(|capacity| !members.iter().any(|(_, held)| held == capacity))
        .map(String::as_str)
        .collect();
    let have = members.len() as u32;
    let listed = if members.is_empty() {
        "none".to_owned()
    } else {
        members
            .iter()
            .map(|(who, capacity)| format!("{who} ({capacity})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let including = if gate.including.is_empty() {
        String::new()
    } else {
        format!(" including {}", gate.including.join(", "))
    };
    if have >= gate.quorum && missing_capacities.is_empty() {
        return GateResult::new(
            &name,
            policy,
            GateStatus::Pass,
            format!(
                "board `{}` reached its quorum of {}{including}: {listed}",
                gate.board, gate.quorum
            ),
        );
    }
    let mut missing = Vec::new();
    if have < gate.quorum {
        missing.push(format!("{} more approval(s)", gate.quorum - have));
    }
    if !missing_capacities.is_empty() {
        missing.push(format!("a {} member", missing_capacities.join(" and a ")));
    }
    GateResult::new(
        &name,
        policy,
        GateStatus::Block,
        format!(
            "board `{}` needs {}{including} (the author never counts); has {have}: {listed}; missing {}",
            gate.board,
            gate.quorum,
            missing.join(" and ")
        ),
    )
}

fn drift_result(gate: &DriftGate, target: &Target, candidate: &Candidate<'_>) -> GateResult {
    let policy = "steward.gate.drift";
    let report = candidate.drift;
    let Some(items) = report else {
        return GateResult::new(
            "drift",
            policy,
            GateStatus::Missing,
            format!(
                "no drift report is attached to the version, so drift against `{}`'s thresholds (PSI < {}, KS p-value > {}) cannot be checked",
                target.environment, gate.psi_max, gate.ks_alpha
            ),
        );
    };
    let mut drifted = Vec::new();
    let mut compared = 0;
    for item in items {
        if item.psi.is_some() || item.ks_pvalue.is_some() {
            compared += 1;
        }
        if let Some(psi) = item.psi.filter(|psi| *psi >= gate.psi_max) {
            drifted.push(format!(
                "PSI of `{}` is {psi:.4}, at or above {}",
                item.column, gate.psi_max
            ));
        }
        if let Some(p) = item.ks_pvalue.filter(|p| *p <= gate.ks_alpha) {
            drifted.push(format!(
                "KS p-value of `{}` is {p:.3e}, at or below {}",
                item.column, gate.ks_alpha
            ));
        }
    }
    if compared == 0 {
        return GateResult::new(
            "drift",
            policy,
            GateStatus::Missing,
            "the attached drift report compares no feature".into(),
        );
    }
    // Every numeric input the schema declares must be in the report, so a report on one
    // calm feature cannot stand for the rest.
    let uncovered: Vec<&str> = candidate
        .schema
        .map(|schema| schema.inputs.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|field| {
            ["INT", "UINT", "FP", "BF"]
                .iter()
                .any(|prefix| field.datatype.starts_with(prefix))
        })
        .filter(|field| {
            !items.iter().any(|item| {
                item.column == field.name && (item.psi.is_some() || item.ks_pvalue.is_some())
            })
        })
        .map(|field| field.name.as_str())
        .collect();
    if !uncovered.is_empty() {
        drifted.push(format!(
            "the drift report does not compare the numeric input(s) {}",
            uncovered.join(", ")
        ));
    }
    if drifted.is_empty() {
        GateResult::new(
            "drift",
            policy,
            GateStatus::Pass,
            format!(
                "{compared} feature(s) within PSI < {} and KS p-value > {}",
                gate.psi_max, gate.ks_alpha
            ),
        )
    } else {
        GateResult::new("drift", policy, GateStatus::Block, drifted.join("; "))
    }
}

fn compatibility_result(candidate: &Candidate<'_>, counted: &[&ApprovalFacts]) -> GateResult {
    let policy = "steward.gate.api-compatibility";
    let gate = "api_compatibility";
    let Some((current_label, current_schema)) = candidate.current else {
        return GateResult::new(
            gate,
            policy,
            GateStatus::Pass,
            "nothing is deployed there yet, so no caller can break".into(),
        );
    };
    let (Some(old), Some(new)) = (current_schema, candidate.schema) else {
        let which = if current_schema.is_none() {
            format!("the deployed version {current_label}")
        } else {
            format!("version {}", candidate.version_label)
        };
        return GateResult::new(
            gate,
            policy,
            GateStatus::Missing,
            format!("{which} declares no input/output schema, so compatibility cannot be checked"),
        );
    };
    let breaking: Vec<String> = schema::compatibility(old, new)
        .into_iter()
        .filter(|change| change.breaking)
        .map(|change| change.message)
        .collect();
    if breaking.is_empty() {
        return GateResult::new(
            gate,
            policy,
            GateStatus::Pass,
            format!("no breaking schema change against {current_label}"),
        );
    }
    let major = schema::is_major_bump(current_label, candidate.version_label) == Some(true);
    let approver = counted
        .iter()
        .find(|approval| approval.accepts_breaking_changes);
    let changes = breaking.join("; ");
    match (major, approver) {
        (true, Some(approval)) => GateResult::new(
            gate,
            policy,
            GateStatus::Pass,
            format!(
                "breaking changes against {current_label} ({changes}) come with a major version and were accepted by `{}`",
                approval.approver
            ),
        ),
        (false, _) => GateResult::new(
            gate,
            policy,
            GateStatus::Block,
            format!(
                "breaking changes against {current_label} ({changes}) need a major version bump, but {current_label} → {} is not one",
                candidate.version_label
            ),
        ),
        (true, None) => GateResult::new(
            gate,
            policy,
            GateStatus::Block,
            format!(
                "breaking changes against {current_label} ({changes}) need an approval that explicitly accepts them"
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
