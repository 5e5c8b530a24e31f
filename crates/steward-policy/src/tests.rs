//! Policy semantics (Cedar's, with deny-on-error), loading rules, and the golden cases in
//! `test_data/*.yaml`, which are also the example for `steward policy test`.

use expect_test::expect;

use super::*;

fn engine() -> Engine {
    Engine::load(&[]).unwrap()
}

fn model() -> ModelFacts {
    ModelFacts {
        business_unit: "retail".into(),
        name: "credit".into(),
        owner: "alice".into(),
        risk_class: "high".into(),
        tier: 1,
        category: "tabular_classification".into(),
    }
}

fn request(principal: &str, roles: &[&str], action: Action, resource: Resource) -> Request {
    Request::new(
        principal,
        roles.iter().map(|role| role.to_string()).collect(),
        action,
        resource,
        1_800_000_000,
    )
}

fn version_by(author: &str) -> Resource {
    Resource::Version {
        digest: format!("sha256:{}", "a".repeat(64)),
        author: author.into(),
        deprecated: false,
        model: model(),
    }
}

#[test]
fn action_names_match_serde() {
    for action in Action::ALL {
        assert_eq!(
            serde_json::to_value(action).unwrap(),
            Value::String(action.as_str().to_owned())
        );
    }
}

#[test]
fn shipped_policies_all_have_ids_and_descriptions() {
    let engine = engine();
    assert_eq!(
        engine.policy_descriptions().len(),
        SHIPPED_POLICIES.matches("@id(").count()
    );
    assert!(
        engine
            .policy_descriptions()
            .keys()
            .all(|id| id.starts_with("steward."))
    );
}

#[test]
fn no_matching_policy_denies_by_default() {
    let decision = engine().authorize(&request(
        "bob",
        &[],
        Action::ModelRead,
        Resource::Model(model()),
    ));
    assert!(!decision.allowed);
    assert_eq!(decision.reasons, vec![DEFAULT_DENY]);
}

#[test]
fn forbid_beats_permit() {
    // Admin is permitted everything, but the separation-of-duties forbid still applies.
    let decision = engine().authorize(&request(
        "alice",
        &["admin"],
        Action::VersionApprove,
        version_by("alice"),
    ));
    assert!(!decision.allowed);
    assert_eq!(decision.reasons, vec!["steward.sod.author-cannot-approve"]);
    let decision = engine().authorize(&request(
        "carol",
        &["reviewer"],
        Action::VersionApprove,
        version_by("alice"),
    ));
    assert!(decision.allowed);
    assert_eq!(decision.reasons, vec!["steward.review.approve"]);
}

#[test]
fn an_erroring_forbid_denies() {
    // Validates (Long * Long), but overflows at run time. Cedar would skip it and allow.
    let org = vec![(
        "overflow.cedar".to_owned(),
        r#"@id("org.overflowing-guardrail")
forbid (principal, action == Steward::Action::"model.read", resource)
when { context.now * 100000000000000 > 0 };"#
            .to_owned(),
    )];
    let engine = Engine::load(&org).unwrap();
    let decision = engine.authorize(&request(
        "alice",
        &["admin"],
        Action::ModelRead,
        Resource::Model(model()),
    ));
    assert!(!decision.allowed);
    assert_eq!(decision.errors.len(), 1, "{:?}", decision.errors);
    assert!(
        decision.errors[0].contains("org.overflowing-guardrail"),
        "{:?}",
        decision.errors
    );
}

#[test]
fn a_policy_set_that_does_not_validate_refuses_to_load() {
    let org = vec![
        ("typo.cedar".to_owned(), r#"permit (principal, action == Steward::Action::"model.read", resource) when { resource.riskclass == "high" };"#.to_owned()),
    ];
    let err = Engine::load(&org).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("policy set has 1 problem(s): validation:"),
        "{err}"
    );
    assert!(err.to_string().contains("riskclass"), "{err}");

    let org = vec![(
        "syntax.cedar".to_owned(),
        "permit (principal, action, resource) when {".to_owned(),
    )];
    let err = Engine::load(&org).err().unwrap();
    assert!(err.to_string().contains("syntax.cedar: "), "{err}");

    let org = vec![(
        "dup.cedar".to_owned(),
        "@id(\"steward.admin\") permit (principal, action, resource);".to_owned(),
    )];
    let err = Engine::load(&org).err().unwrap();
    assert!(err.to_string().contains("policy `steward.admin`"), "{err}");
}

#[test]
fn organisation_policies_get_ids_from_their_file() {
    let org = vec![(
        "retail.cedar".to_owned(),
        r#"forbid (principal, action == Steward::Action::"alias.set", resource) when { resource.tier == 1 };"#.to_owned(),
    )];
    let engine = Engine::load(&org).unwrap();
    let decision = engine.authorize(&request(
        "dave",
        &["mlops_engineer"],
        Action::AliasSet,
        Resource::Model(model()),
    ));
    assert!(!decision.allowed);
    assert_eq!(decision.reasons, vec!["retail.0"]);
    assert_ne!(engine.policy_set_hash(), self::engine().policy_set_hash());
}

#[test]
fn production_needs_a_current_certification() {
    let engine = engine();
    let mut req = request(
        "dave",
        &["mlops_engineer"],
        Action::AliasSet,
        Resource::Model(model()),
    );
    req.production = Some(true);
    let decision = engine.authorize(&req);
    expect![[r#"Decision { allowed: false, reasons: ["steward.training.production-needs-certification"], errors: [], policy_set: "" }"#]]
        .assert_eq(&format!("{:?}", Decision { policy_set: String::new(), ..decision }));
    req.certified_until = req.now + 1;
    assert!(engine.authorize(&req).allowed);
    req.certified_until = req.now;
    assert!(
        !engine.authorize(&req).allowed,
        "a certification expiring now is expired"
    );
}

#[test]
fn decisions_are_recorded_with_their_reasons() {
    let decision = engine().authorize(&request(
        "carol",
        &["reviewer"],
        Action::VersionApprove,
        version_by("alice"),
    ));
    let json = decision.to_json(Action::VersionApprove);
    assert_eq!(json["effect"], "allow");
    assert_eq!(json["policies"][0], "steward.review.approve");
    assert!(json["policy_set"].as_str().unwrap().starts_with("sha256:"));
}

/// Every `test_data/*.yaml` file passes; the same runner backs `steward policy test`.
#[test]
fn golden_cases() {
    let engine = engine();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    let mut n_cases = 0;
    let mut failures = Vec::new();
    for path in paths
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        for outcome in run_test_file(&engine, &text).unwrap() {
            n_cases += 1;
            if !outcome.passed {
                failures.push(format!(
                    "{}: {}: expected {}, got {} {:?}",
                    path.display(),
                    outcome.name,
                    outcome.expected,
                    outcome.actual(),
                    outcome.decision.errors
                ));
            }
        }
    }
    assert!(
        20 < n_cases,
        "only {n_cases} golden cases in {}",
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "golden failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn test_files_that_are_malformed_are_errors() {
    let engine = engine();
    assert_eq!(
        run_test_file(&engine, "cases: []").unwrap_err(),
        TestFileError::Empty
    );
    let err = run_test_file(&engine, "cases:\n  - name: x\n    expect: maybe\n").unwrap_err();
    assert!(
        err.to_string().starts_with("test file is not valid:"),
        "{err}"
    );
}

#[test]
fn a_token_minted_by_the_author_cannot_approve_or_change_its_issuers_roles() {
    let engine = engine();
    // Admin `root` mints a token for reviewer `carol` and tries to approve root's version.
    let mut req = request(
        "carol",
        &["reviewer"],
        Action::VersionApprove,
        version_by("root"),
    );
    req.token_issuer = Some("root".into());
    let decision = engine.authorize(&req);
    assert!(!decision.allowed);
    assert_eq!(
        decision.reasons,
        vec!["steward.sod.minted-token-cannot-approve"]
    );
    // Admin `root` mints a token for another admin `x` and has `x` grant root a role.
    let mut req = request(
        "x",
        &["admin"],
        Action::RoleGrant,
        Resource::User { id: "root".into() },
    );
    req.granted_role = Some("auditor".into());
    req.granted_global = Some(true);
    req.token_issuer = Some("root".into());
    assert_eq!(
        engine.authorize(&req).reasons,
        vec!["steward.roles.no-self-grant"]
    );
    // Nobody certifies themselves, directly or through a minted token.
    let req = request(
        "root",
        &["admin"],
        Action::CertificationRecord,
        Resource::User { id: "root".into() },
    );
    assert_eq!(
        engine.authorize(&req).reasons,
        vec!["steward.training.no-self-certification"]
    );
    let mut req = request(
        "x",
        &["admin"],
        Action::CertificationRecord,
        Resource::User { id: "root".into() },
    );
    req.token_issuer = Some("root".into());
    assert_eq!(
        engine.authorize(&req).reasons,
        vec!["steward.training.no-self-certification"]
    );
}

#[test]
fn usage_terms_forbid_deployment_with_the_term_as_fact() {
    let mut req = request(
        "dave",
        &["mlops_engineer"],
        Action::AliasSet,
        Resource::Model(model()),
    );
    req.production = Some(false);
    assert!(engine().authorize(&req).allowed);
    req.forbidding_term = Some("allowed_regions: [eu]".into());
    assert_eq!(
        engine().authorize(&req).reasons,
        vec!["steward.terms.usage"]
    );
}

#[test]
fn a_blocking_vulnerability_forbids_deployment() {
    let mut req = request(
        "dave",
        &["mlops_engineer"],
        Action::AliasSet,
        Resource::Model(model()),
    );
    req.production = Some(false);
    req.vulnerability = Some("numpy 2.1.0 is affected by PYSEC-1 (critical)".into());
    assert_eq!(
        engine().authorize(&req).reasons,
        vec!["steward.supply-chain.vulnerable"]
    );
}
