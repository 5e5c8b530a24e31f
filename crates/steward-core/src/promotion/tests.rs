//! Gate evaluation: templates, boards, checklist, DPO, drift, compatibility, change records.

use super::*;
use crate::schema::{Classification, Field};

const CONFIG: &str = r#"
boards:
  retail:
    model-risk:
      members: {sam: security, lee: legal, dom: domain_expert, ann: compliance}
templates:
  - name: prod-high
    production: true
    risk_classes: [high]
    gates:
      checklist: {roles: [compliance_officer], items: [intended-use, fairness]}
      boards: [{board: model-risk, quorum: 2, including: [security]}]
      dpo_sign_off: [high]
      drift: {psi_max: 0.2, ks_alpha: 0.05}
      api_compatibility: true
    expires_after_hours: 48
  - name: rest
"#;

fn config() -> GateConfig {
    GateConfig::parse_yaml(CONFIG).unwrap()
}

fn target(risk: &str, production: bool) -> Target {
    Target {
        environment: if production { "production" } else { "staging" }.into(),
        production,
        business_unit: "retail".into(),
        risk_class: risk.into(),
        tier: 1,
        category: "tabular_classification".into(),
    }
}

fn approval(who: &str, roles: &[&str]) -> ApprovalFacts {
    ApprovalFacts {
        approver: who.into(),
        token_issuer: who.into(),
        roles: roles.iter().map(|&role| role.into()).collect(),
        checklist: Vec::new(),
        accepts_breaking_changes: false,
        mitigated: Vec::new(),
    }
}

fn schema(inputs: &[(&str, &str)]) -> DataSchema {
    let field = |(name, datatype): &(&str, &str)| Field {
        name: (*name).into(),
        datatype: (*datatype).into(),
        shape: vec![-1, 1],
        classification: Classification::Internal,
        description: None,
    };
    DataSchema {
        inputs: inputs.iter().map(field).collect(),
        outputs: vec![field(&("score", "FP32"))],
    }
}

fn candidate<'a>(approvals: &'a [ApprovalFacts]) -> Candidate<'a> {
    Candidate {
        author: "ada",
        version_label: "1.1.0",
        missing_documentation: Vec::new(),
        schema: None,
        current: None,
        drift: None,
        approvals,
        change: None,
        emergency: false,
    }
}

fn result<'a>(results: &'a [GateResult], gate: &str) -> &'a GateResult {
    results
        .iter()
        .find(|result| result.gate == gate)
        .unwrap_or_else(|| panic!("no gate `{gate}` in {results:?}"))
}

#[test]
fn templates_match_in_order() {
    let config = config();
    assert_eq!(
        config.template_for(&target("high", true)).unwrap().name,
        "prod-high"
    );
    assert_eq!(
        config.template_for(&target("minimal", true)).unwrap().name,
        "rest"
    );
    assert_eq!(
        config.template_for(&target("high", false)).unwrap().name,
        "rest"
    );
    let shipped = GateConfig::shipped();
    assert_eq!(
        shipped.template_for(&target("minimal", true)).unwrap().name,
        "production"
    );
    assert_eq!(
        shipped
            .template_for(&target("minimal", false))
            .unwrap()
            .name,
        "default"
    );
}

#[test]
fn bad_configs_name_every_problem() {
    let text = r#"
boards:
  retail:
    tiny:
      members: {sam: security}
templates:
  - name: a
    expires_after_hours: 0
    gates:
      checklist: {roles: [wizard], items: []}
      boards: [{board: tiny, quorum: 2, including: [security, legal, x]}]
      dpo_sign_off: [huge]
      drift: {psi_max: -1, ks_alpha: 0.05}
  - name: a
"#;
    let err = GateConfig::parse_yaml(text).unwrap_err();
    for needle in [
        "expires_after_hours: 0",
        "`wizard` is not a role",
        "items: list at least one",
        "3 capacities cannot fit in a quorum of 2",
        "board `retail/tiny` has 1 members, fewer than the quorum of 2",
        "`huge` is not a risk class",
        "gates.drift",
        "`a` appears twice",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    assert!(
        GateConfig::parse_yaml("templates: []")
            .unwrap_err()
            .contains("at least one")
    );
    assert!(GateConfig::parse_yaml("templates: [{name: x, colour: red}]").is_err());
}

#[test]
fn board_quorum_counts_members_never_the_author() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let evaluate = |approvals: &[ApprovalFacts]| {
        let candidate = candidate(approvals);
        evaluate(&config, template, &target("high", true), &candidate)
    };
    // Nobody yet.
    let results = evaluate(&[]);
    let board = result(&results, "board:model-risk");
    assert_eq!(board.status, GateStatus::Block);
    assert!(
        board
            .message
            .contains("has 0: none; missing 2 more approval(s) and a security member"),
        "{}",
        board.message
    );
    // Two members, but not security.
    let results = evaluate(&[
        approval("lee", &["reviewer"]),
        approval("dom", &["data_scientist"]),
    ]);
    let board = result(&results, "board:model-risk");
    assert_eq!(board.status, GateStatus::Block);
    assert!(
        board
            .message
            .contains("lee (legal), dom (domain_expert); missing a security member"),
        "{}",
        board.message
    );
    // Security plus one: passes; a non-member does not count.
    let results = evaluate(&[
        approval("zed", &["reviewer"]),
        approval("sam", &["reviewer"]),
        approval("lee", &["reviewer"]),
    ]);
    assert_eq!(
        result(&results, "board:model-risk").status,
        GateStatus::Pass
    );
    // The author is on the board: never counted, nor a token the author issued.
    let mut board_config = config.clone();
    board_config
        .boards
        .get_mut("retail")
        .unwrap()
        .get_mut("model-risk")
        .unwrap()
        .members
        .insert("ada".into(), "security".into());
    let mut minted = approval("lee", &["reviewer"]);
    minted.token_issuer = "ada".into();
    let approvals = [
        approval("ada", &["reviewer"]),
        minted,
        approval("dom", &["reviewer"]),
    ];
    let candidate = candidate(&approvals);
    let results = super::evaluate(&board_config, template, &target("high", true), &candidate);
    let board = result(&results, "board:model-risk");
    assert_eq!(board.status, GateStatus::Block, "{}", board.message);
    assert!(
        board.message.contains("has 1: dom (domain_expert)"),
        "{}",
        board.message
    );
}

#[test]
fn a_board_the_unit_lacks_cannot_be_evaluated() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let mut elsewhere = target("high", true);
    elsewhere.business_unit = "wholesale".into();
    let results = evaluate(&config, template, &elsewhere, &candidate(&[]));
    let board = result(&results, "board:model-risk");
    assert_eq!(board.status, GateStatus::Missing);
    assert!(
        board
            .message
            .contains("`wholesale` has no review board `model-risk`")
    );
}

#[test]
fn checklist_needs_every_item_from_a_named_role() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let run = |approvals: &[ApprovalFacts]| {
        result(
            &evaluate(
                &config,
                template,
                &target("high", true),
                &candidate(approvals),
            ),
            "checklist",
        )
        .clone()
    };
    let none = run(&[]);
    assert_eq!(none.status, GateStatus::Block);
    assert!(
        none.message
            .contains("needs a sign-off by a compliance_officer")
    );
    let mut partial = approval("ann", &["compliance_officer"]);
    partial.checklist = vec!["intended-use".into()];
    let part = run(&[partial.clone()]);
    assert_eq!(part.status, GateStatus::Block);
    assert!(
        part.message.contains("`ann` left unchecked fairness"),
        "{}",
        part.message
    );
    // Every item, but the wrong role.
    let mut reviewer = approval("rui", &["reviewer"]);
    reviewer.checklist = vec!["intended-use".into(), "fairness".into()];
    assert_eq!(run(&[reviewer]).status, GateStatus::Block);
    partial.checklist.push("fairness".into());
    let done = run(&[partial]);
    assert_eq!(done.status, GateStatus::Pass);
    assert!(done.message.contains("`ann`"));
}

#[test]
fn dpo_sign_off_only_for_the_listed_risk_classes() {
    let config = GateConfig::parse_yaml(
        "templates: [{name: all, gates: {documentation: false, dpo_sign_off: [high]}}]",
    )
    .unwrap();
    let template = &config.templates[0];
    let high = evaluate(&config, template, &target("high", true), &candidate(&[]));
    assert_eq!(result(&high, "dpo").status, GateStatus::Block);
    assert!(
        result(&high, "dpo")
            .message
            .contains("a high risk model needs a data protection officer")
    );
    let approvals = [approval("dee", &["data_protection_officer"])];
    let signed = evaluate(
        &config,
        template,
        &target("high", true),
        &candidate(&approvals),
    );
    assert_eq!(result(&signed, "dpo").status, GateStatus::Pass);
    let minimal = evaluate(&config, template, &target("minimal", true), &candidate(&[]));
    assert!(minimal.is_empty(), "{minimal:?}");
}

#[test]
fn drift_names_metric_feature_value_and_threshold() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let run = |items: Option<&[DriftItem]>| {
        let mut candidate = candidate(&[]);
        candidate.drift = items;
        result(
            &evaluate(&config, template, &target("high", true), &candidate),
            "drift",
        )
        .clone()
    };
    let missing = run(None);
    assert_eq!(missing.status, GateStatus::Missing);
    assert!(missing.message.contains("no drift report"));
    let item = |column: &str, psi: Option<f64>, ks: Option<f64>| DriftItem {
        column: column.into(),
        psi,
        ks_pvalue: ks,
    };
    let calm = [
        item("income", Some(0.01), Some(0.9)),
        item("age", Some(0.19), None),
    ];
    assert_eq!(run(Some(&calm)).status, GateStatus::Pass);
    let drifted = [
        item("income", Some(0.2), Some(0.9)),
        item("age", Some(0.01), Some(1e-6)),
    ];
    let block = run(Some(&drifted));
    assert_eq!(block.status, GateStatus::Block);
    assert!(
        block
            .message
            .contains("PSI of `income` is 0.2000, at or above 0.2"),
        "{}",
        block.message
    );
    assert!(
        block
            .message
            .contains("KS p-value of `age` is 1.000e-6, at or below 0.05"),
        "{}",
        block.message
    );
    let empty = [item("name", None, None)];
    assert_eq!(run(Some(&empty)).status, GateStatus::Missing);
}

#[test]
fn breaking_changes_need_a_major_version_and_an_explicit_approval() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let old = schema(&[("income", "FP32"), ("age", "INT32")]);
    let same = schema(&[("income", "FP32"), ("age", "INT32")]);
    let broken = schema(&[("income", "FP64")]);
    let run = |label: &str,
               new: Option<&DataSchema>,
               current: Option<(&str, Option<&DataSchema>)>,
               approvals: &[ApprovalFacts]| {
        let mut candidate = candidate(approvals);
        candidate.version_label = label;
        candidate.schema = new;
        candidate.current = current;
        result(
            &evaluate(&config, template, &target("high", true), &candidate),
            "api_compatibility",
        )
        .clone()
    };
    assert_eq!(
        run("1.1.0", Some(&broken), None, &[]).status,
        GateStatus::Pass
    );
    assert_eq!(
        run("1.1.0", Some(&same), Some(("1.0.0", Some(&old))), &[]).status,
        GateStatus::Pass
    );
    let minor = run("1.1.0", Some(&broken), Some(("1.0.0", Some(&old))), &[]);
    assert_eq!(minor.status, GateStatus::Block);
    assert!(
        minor
            .message
            .contains("need a major version bump, but 1.0.0 → 1.1.0 is not one"),
        "{}",
        minor.message
    );
    assert!(
        minor.message.contains("inputs.age was removed"),
        "{}",
        minor.message
    );
    let unapproved = run("2.0.0", Some(&broken), Some(("1.0.0", Some(&old))), &[]);
    assert_eq!(unapproved.status, GateStatus::Block);
    assert!(unapproved.message.contains("explicitly accepts them"));
    let mut accepting = approval("ops", &["mlops_engineer"]);
    accepting.accepts_breaking_changes = true;
    assert_eq!(
        run(
            "2.0.0",
            Some(&broken),
            Some(("1.0.0", Some(&old))),
            &[accepting.clone()]
        )
        .status,
        GateStatus::Pass
    );
    // The author accepting their own breaking change does not count.
    accepting.approver = "ada".into();
    assert_eq!(
        run(
            "2.0.0",
            Some(&broken),
            Some(("1.0.0", Some(&old))),
            &[accepting]
        )
        .status,
        GateStatus::Block
    );
    let unknown = run("2.0.0", None, Some(("1.0.0", Some(&old))), &[]);
    assert_eq!(unknown.status, GateStatus::Missing);
    assert!(
        unknown
            .message
            .contains("version 2.0.0 declares no input/output schema")
    );
    assert_eq!(
        run("2.0.0", Some(&broken), Some(("1.0.0", None)), &[]).status,
        GateStatus::Missing
    );
}

#[test]
fn documentation_gate_names_the_missing_fields() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let mut candidate = candidate(&[]);
    candidate.missing_documentation = vec!["model_card.limitations".into()];
    let results = evaluate(&config, template, &target("high", true), &candidate);
    let docs = result(&results, "documentation");
    assert_eq!(docs.status, GateStatus::Block);
    assert_eq!(docs.policy, "steward.gate.documentation");
    assert!(
        docs.message
            .contains("tier 1 is missing: model_card.limitations")
    );
    assert_eq!(
        results
            .iter()
            .map(|result| result.gate.as_str())
            .collect::<Vec<_>>(),
        [
            "documentation",
            "checklist",
            "board:model-risk",
            "dpo",
            "drift",
            "api_compatibility"
        ]
    );
}

const CHANGE_CONFIG: &str = r#"
boards:
  "*":
    cab:
      members: {cora: chair, ivan: infrastructure, sam: security}
templates:
  - name: prod
    production: true
    gates:
      documentation: false
      change_record:
        cab: {board: cab, quorum: 2}
  - name: routine
    gates:
      documentation: false
      change_record: {standard_allowed: true, pre_mortem_for: [medium, high]}
"#;

fn change(change_type: ChangeType, impact: Level) -> ChangeRecord {
    ChangeRecord {
        change_type,
        risk: RiskAssessment {
            impact,
            likelihood: Level::Low,
            notes: "Scores feed a manual review queue.".into(),
        },
        traffic_share: 0.1,
        rollback_plan: "Promote 1.0.0 again; the alias moves back in one step.".into(),
        rollback_dependencies: RollbackDependencies {
            data_pipeline_version: Some("etl-2026.11.3".into()),
            feature_store_schema_version: None,
            upstream_datasets: vec!["bureau-daily".into()],
        },
        pre_mortem: vec![
            FailureMode {
                id: "fm-1".into(),
                failure_mode: "Income feature arrives in cents".into(),
                mitigation: "Range check in the pipeline".into(),
            },
            FailureMode {
                id: "fm-2".into(),
                failure_mode: "Approval rate drops".into(),
                mitigation: "Canary at 10% with rollback".into(),
            },
        ],
    }
}

fn change_results(
    config: &GateConfig,
    production: bool,
    record: Option<&ChangeRecord>,
    emergency: bool,
    approvals: &[ApprovalFacts],
) -> Vec<GateResult> {
    let target = target("high", production);
    let template = config.template_for(&target).unwrap();
    let mut candidate = candidate(approvals);
    candidate.change = record;
    candidate.emergency = emergency;
    evaluate(config, template, &target, &candidate)
}

#[test]
fn a_change_record_is_required_and_names_its_rollback_dependencies() {
    let config = GateConfig::parse_yaml(CHANGE_CONFIG).unwrap();
    let missing = change_results(&config, true, None, false, &[]);
    assert_eq!(
        result(&missing, "change_record").status,
        GateStatus::Missing
    );
    assert!(
        result(&missing, "change_record")
            .message
            .contains("needs a change record")
    );
    let mut bare = change(ChangeType::Normal, Level::Low);
    bare.rollback_dependencies = RollbackDependencies::default();
    let results = change_results(&config, true, Some(&bare), false, &[]);
    assert!(
        result(&results, "change_record")
            .message
            .contains("names no rollback dependency")
    );
    // The emergency type only on the emergency path, and the path only with that type.
    let emergency = change(ChangeType::Emergency, Level::Low);
    let results = change_results(&config, true, Some(&emergency), false, &[]);
    assert_eq!(result(&results, "change_record").status, GateStatus::Block);
    let results = change_results(&config, true, Some(&emergency), true, &[]);
    assert_eq!(result(&results, "change_record").status, GateStatus::Pass);
    assert!(result(&results, "cab").message.contains("after the fact"));
    let normal = change(ChangeType::Normal, Level::Low);
    let results = change_results(&config, true, Some(&normal), true, &[]);
    assert_eq!(result(&results, "change_record").status, GateStatus::Block);
}

#[test]
fn normal_changes_need_the_cab_and_standard_ones_a_template_that_allows_them() {
    let config = GateConfig::parse_yaml(CHANGE_CONFIG).unwrap();
    let normal = change(ChangeType::Normal, Level::Low);
    let results = change_results(
        &config,
        true,
        Some(&normal),
        false,
        &[approval("cora", &["reviewer"])],
    );
    let cab = result(&results, "cab");
    assert_eq!(cab.status, GateStatus::Block);
    assert_eq!(cab.policy, "steward.change.cab");
    assert!(
        cab.message.contains("board `cab` needs 2"),
        "{}",
        cab.message
    );
    let results = change_results(
        &config,
        true,
        Some(&normal),
        false,
        &[approval("cora", &[]), approval("ivan", &[])],
    );
    assert_eq!(result(&results, "cab").status, GateStatus::Pass);
    let standard = change(ChangeType::Standard, Level::Low);
    let results = change_results(&config, true, Some(&standard), false, &[]);
    assert!(
        result(&results, "cab")
            .message
            .contains("pre-approves no standard change")
    );
    let results = change_results(&config, false, Some(&standard), false, &[]);
    assert_eq!(result(&results, "cab").status, GateStatus::Pass);
    let risky = change(ChangeType::Standard, Level::Medium);
    let results = change_results(&config, false, Some(&risky), false, &[]);
    assert!(
        result(&results, "cab")
            .message
            .contains("a standard change is a low-impact one")
    );
}

#[test]
fn pre_mortem_mitigations_are_checked_off_by_approvers() {
    let config = GateConfig::parse_yaml(CHANGE_CONFIG).unwrap();
    let low = change(ChangeType::Standard, Level::Low);
    let results = change_results(&config, false, Some(&low), false, &[]);
    assert!(
        results.iter().all(|result| result.gate != "pre_mortem"),
        "low impact needs none"
    );
    let mut medium = change(ChangeType::Standard, Level::Medium);
    let results = change_results(&config, false, Some(&medium), false, &[]);
    assert_eq!(
        result(&results, "pre_mortem").message,
        "mitigations not checked off yet: fm-1, fm-2"
    );
    let mut checker = approval("rui", &["reviewer"]);
    checker.mitigated = vec!["fm-2".into()];
    let mut other = approval("sue", &["reviewer"]);
    other.mitigated = vec!["fm-1".into()];
    let results = change_results(
        &config,
        false,
        Some(&medium),
        false,
        &[checker.clone(), other],
    );
    assert_eq!(result(&results, "pre_mortem").status, GateStatus::Pass);
    // The author checking off their own mitigations does not count.
    let mut author = approval("ada", &["reviewer"]);
    author.mitigated = vec!["fm-1".into()];
    let results = change_results(&config, false, Some(&medium), false, &[checker, author]);
    assert_eq!(result(&results, "pre_mortem").status, GateStatus::Block);
    medium.pre_mortem.clear();
    let results = change_results(&config, false, Some(&medium), false, &[]);
    assert_eq!(result(&results, "pre_mortem").status, GateStatus::Missing);
}

#[test]
fn change_records_with_bad_form_name_every_problem() {
    let mut record = change(ChangeType::Normal, Level::High);
    record.traffic_share = 0.0;
    record.rollback_plan = " ".into();
    record.pre_mortem[1].id = "fm-1".into();
    record.pre_mortem[0].mitigation = String::new();
    record
        .rollback_dependencies
        .upstream_datasets
        .push(" ".into());
    let problems = record.problems().join("; ");
    for needle in [
        "traffic_share: 0 is not in (0, 1]",
        "rollback_plan: must not be empty",
        "`fm-1` appears twice",
        "pre_mortem[0].mitigation: must not be empty",
        "a dependency named is blank",
    ] {
        assert!(problems.contains(needle), "{needle} not in {problems}");
    }
    assert!(
        change(ChangeType::Normal, Level::High)
            .problems()
            .is_empty()
    );
}

#[test]
fn the_impact_statement_is_plain_language_from_the_facts() {
    let record = change(ChangeType::Normal, Level::High);
    let target = target("high", true);
    let facts = ImpactFacts {
        model: "retail/credit",
        version: "1.1.0",
        replaces: Some("1.0.0"),
        target: &target,
        change: &record,
    };
    expect_test::expect![[r#"retail/credit version 1.1.0 will replace version 1.0.0 in production for the retail business unit, taking 10% of requests at first. It is a high-risk model under the EU AI Act (internal tier 1) that is used for tabular classification. Its owners rate the impact of a failure as high and its likelihood as low. Scores feed a manual review queue. If something goes wrong it is rolled back as follows: Promote 1.0.0 again; the alias moves back in one step. Rolling back also involves data pipeline version etl-2026.11.3, upstream dataset bureau-daily. Before release, the team listed 2 way(s) it could fail and how each is mitigated."#]]
    .assert_eq(&impact_statement(DEFAULT_IMPACT_TEMPLATE, &facts).unwrap());
    // An organisation's template; a runaway one is stopped by the fuel limit.
    assert_eq!(
        impact_statement(
            "{{ model }} to {{ environment }} at {{ traffic_percent }}%",
            &facts
        )
        .unwrap(),
        "retail/credit to production at 10%"
    );
    let runaway = impact_statement(
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        &facts,
    );
    assert!(runaway.unwrap_err().contains("fuel"));
    assert!(
        GateConfig::parse_yaml("impact_statement: \"{{ oops\"\ntemplates: [{name: x}]")
            .unwrap_err()
            .contains("impact_statement")
    );
}

#[test]
fn one_person_counts_once_even_through_a_token_minted_for_another_member() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    // `sam` approves, and also approves as `lee` through a token `sam` issued.
    let mut as_lee = approval("lee", &["reviewer"]);
    as_lee.token_issuer = "sam".into();
    let approvals = [approval("sam", &["reviewer"]), as_lee];
    let results = evaluate(
        &config,
        template,
        &target("high", true),
        &candidate(&approvals),
    );
    let board = result(&results, "board:model-risk");
    assert_eq!(board.status, GateStatus::Block, "{}", board.message);
    assert!(
        board.message.contains("has 1: sam (security)"),
        "{}",
        board.message
    );
}

#[test]
fn a_drift_report_covers_every_numeric_input_of_the_schema() {
    let config = config();
    let template = config.template_for(&target("high", true)).unwrap();
    let schema = schema(&[("income", "FP32"), ("age", "INT32"), ("name", "BYTES")]);
    let items = [DriftItem {
        column: "income".into(),
        psi: Some(0.01),
        ks_pvalue: Some(0.9),
    }];
    let mut candidate = candidate(&[]);
    candidate.schema = Some(&schema);
    candidate.drift = Some(&items);
    let results = evaluate(&config, template, &target("high", true), &candidate);
    let drift = result(&results, "drift");
    assert_eq!(drift.status, GateStatus::Block);
    assert_eq!(
        drift.message,
        "the drift report does not compare the numeric input(s) age"
    );
}

#[test]
fn a_normal_change_under_a_template_without_a_cab_cannot_be_approved() {
    let config = GateConfig::parse_yaml(
        "templates: [{name: bare, gates: {documentation: false, change_record: {}}}]",
    )
    .unwrap();
    let normal = change(ChangeType::Normal, Level::Low);
    let results = change_results(&config, true, Some(&normal), false, &[]);
    let cab = result(&results, "cab");
    assert_eq!(cab.status, GateStatus::Missing);
    assert!(
        cab.message.contains("names no change advisory board"),
        "{}",
        cab.message
    );
}
