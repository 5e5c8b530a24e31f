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
