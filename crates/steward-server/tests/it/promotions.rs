//! Promotions through gates (issue 4): board quorum with the author excluded, idempotent and
//! race-safe approvals, the production gates (checklist, DPO, drift, API compatibility), the
//! emergency path with its review, rejection, withdrawal, expiry, the CI gate check, and bad
//! input changing nothing. Runs on PostgreSQL too (`STEWARD_TEST_BACKEND=postgres`).

use axum::http::Method;
use serde_json::{Value, json};
use steward_server::config::RawConfig;

use crate::support::{ARTIFACT, TestServer, artifact_digest, complete_manifest, gate};

const GATES: &str = r#"
boards:
  retail:
    model-risk:
      members: {ds: domain_expert, sec: security, law: legal, ann: compliance}
templates:
  - name: staging-board
    environments: [staging]
    gates:
      boards: [{board: model-risk, quorum: 2, including: [security]}]
  - name: default
"#;

struct World {
    server: TestServer,
    ds: String,
    mlops: String,
    sec: String,
    law: String,
}

/// A retail high-risk model by `ds`, board members `sec` (reviewer) and `law` (compliance
/// officer), a certified MLOps engineer; `gates` written as the data directory's gates.yaml.
async fn world(gates: Option<&str>) -> World {
    let server = TestServer::start().await;
    let server = match gates {
        Some(text) => {
            std::fs::write(server.dir.path().join("gates.yaml"), text).unwrap();
            let config =
                steward_server::config::Config::load(server.dir.path(), &RawConfig::default())
                    .unwrap();
            let app = steward_server::App::open_with_clock(config, server.clock.clone())
                .await
                .unwrap();
            TestServer { app, ..server }
        }
        None => server,
    };
    server
        .admin(
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "retail"})),
        )
        .await;
    let ds = server.user("ds", Some(("data_scientist", "retail"))).await;
    let mlops = server
        .user("mlops", Some(("mlops_engineer", "retail")))
        .await;
    let sec = server.user("sec", Some(("reviewer", "retail"))).await;
    let law = server
        .user("law", Some(("compliance_officer", "retail")))
        .await;
    server
        .admin(
            Method::POST,
            "/api/v1/users/mlops/certifications",
            Some(json!({"name": "ops", "issued_at": "2020-01-01", "expires_at": "2099-01-01"})),
        )
        .await;
    let model = json!({"business_unit": "retail", "name": "credit", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    assert_eq!(
        server
            .request(Some(&ds), Method::POST, "/api/v1/models", Some(model))
            .await
            .status,
        201
    );
    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    server
        .request(
            Some(&ds),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    World {
        server,
        ds,
        mlops,
        sec,
        law,
    }
}

async fn register(world: &World, manifest: Value) -> String {
    let reply = world
        .server
        .request(
            Some(&world.ds),
            Method::POST,
            "/api/v1/models/retail/credit/versions",
            Some(manifest),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["digest"].as_str().unwrap().to_owned()
}

async fn approve(world: &World, token: &str, id: i64, body: Value) -> crate::support::Reply {
    world
        .server
        .request(
            Some(token),
            Method::POST,
            &format!("/api/v1/promotions/{id}/approvals"),
            Some(body),
        )
        .await
}

fn change_record(change_type: &str, impact: &str) -> Value {
    json!({
        "type": change_type,
        "risk": {"impact": impact, "likelihood": "low"},
        "traffic_share": 0.25,
        "rollback_plan": "Promote the previous version again.",
        "rollback_dependencies": {"data_pipeline_version": "etl-7", "upstream_datasets": ["bureau-daily"]},
        "pre_mortem": [
            {"id": "fm-1", "failure_mode": "income arrives in cents", "mitigation": "range check"},
            {"id": "fm-2", "failure_mode": "approval rate drops", "mitigation": "canary with rollback"}
        ],
    })
}

async fn staging_alias(world: &World) -> Value {
    let aliases = world
        .server
        .admin(Method::GET, "/api/v1/models/retail/credit/aliases", None)
        .await;
    aliases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alias| alias["environment"] == "staging")
        .map(|alias| alias["digest"].clone())
        .unwrap_or(Value::Null)
}

async fn audit_actions(server: &TestServer, after: u64) -> Vec<String> {
    let events = server
        .admin(
            Method::GET,
            &format!("/api/v1/audit/events?after={after}"),
            None,
        )
        .await;
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_board_quorum_blocks_until_reached_and_the_author_never_counts() {
    let world = world(Some(GATES)).await;
    let digest = register(&world, complete_manifest("1.0.0")).await;
    let requested = world.server.promote(&world.mlops, &digest, "staging").await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    assert_eq!(requested.body["state"], "pending");
    assert_eq!(requested.body["template"], "staging-board");
    let board = gate(&requested.body, "board:model-risk");
    assert_eq!(board["status"], "block");
    assert_eq!(board["policy"], "steward.gate.board-quorum");
    assert!(
        board["message"]
            .as_str()
            .unwrap()
            .contains("needs 2 including security (the author never counts); has 0"),
        "{board}"
    );
    let id = requested.body["id"].as_i64().unwrap();

    // The author sits on the board, but may not approve their own version's promotion.
    let before = world.server.audit_size().await;
    let refused = approve(&world, &world.ds, id, json!({})).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["details"]["decision"]["policies"],
        json!(["steward.sod.author-cannot-approve-promotion"])
    );
    assert_eq!(
        audit_actions(&world.server, before).await,
        ["promotion.approve.denied"]
    );

    let first = approve(
        &world,
        &world.sec,
        id,
        json!({"comment": "security reviewed"}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["state"], "pending");
    assert!(
        gate(&first.body, "board:model-risk")["message"]
            .as_str()
            .unwrap()
            .contains("has 1: sec (security); missing 1 more approval(s)"),
        "{}",
        first.body
    );
    // Approving twice changes nothing and records nothing.
    let size = world.server.audit_size().await;
    let again = approve(
        &world,
        &world.sec,
        id,
        json!({"comment": "security reviewed"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["already_approved"], true);
    assert_eq!(world.server.audit_size().await, size);
    assert_eq!(staging_alias(&world).await, Value::Null, "not moved yet");

    let second = approve(&world, &world.law, id, json!({})).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.body["state"], "applied", "{}", second.body);
    assert_eq!(gate(&second.body, "board:model-risk")["status"], "pass");
    assert_eq!(staging_alias(&world).await, digest.as_str());
    assert_eq!(
        audit_actions(&world.server, size).await,
        ["promotion.approve", "promotion.apply"]
    );
    // Late approvals are refused, not lost silently; the request shows both approvals.
    let late = approve(&world, &world.mlops, id, json!({})).await;
    assert_eq!(late.status, 409, "{}", late.body);
    let shown = world
        .server
        .request(
            Some(&world.ds),
            Method::GET,
            &format!("/api/v1/promotions/{id}"),
            None,
        )
        .await;
    assert_eq!(shown.body["state"], "applied");
    assert_eq!(shown.body["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(shown.body["recorded_gates"]["allowed"], true);
}

#[tokio::test]
async fn concurrent_approvals_apply_exactly_once_and_keep_every_approval() {
    let world = world(Some(GATES)).await;
    for round in 0..6 {
        let digest = register(&world, complete_manifest(&format!("1.0.{round}"))).await;
        let requested = world.server.promote(&world.mlops, &digest, "staging").await;
        assert_eq!(requested.body["state"], "pending", "{}", requested.body);
        let id = requested.body["id"].as_i64().unwrap();
        let before = world.server.audit_size().await;
        // Two board members at once, one of them twice: one application, two approvals.
        let (a, b, c) = tokio::join!(
            approve(&world, &world.sec, id, json!({})),
            approve(&world, &world.law, id, json!({})),
            approve(&world, &world.sec, id, json!({})),
        );
        for reply in [&a, &b, &c] {
            assert!(
                reply.status == 201 || reply.status == 200,
                "{} {}",
                reply.status,
                reply.body
            );
        }
        let actions = audit_actions(&world.server, before).await;
        assert_eq!(
            actions
                .iter()
                .filter(|action| *action == "promotion.apply")
                .count(),
            1,
            "{actions:?}"
        );
        assert_eq!(
            actions
                .iter()
                .filter(|action| *action == "promotion.approve")
                .count(),
            2,
            "{actions:?}"
        );
        let shown = world
            .server
            .admin(Method::GET, &format!("/api/v1/promotions/{id}"), None)
            .await;
        assert_eq!(shown["state"], "applied");
        assert_eq!(shown["approvals"].as_array().unwrap().len(), 2);
        let history = world
            .server
            .admin(
                Method::GET,
                "/api/v1/models/retail/credit/aliases/staging/history",
                None,
            )
            .await;
        assert_eq!(history["items"].as_array().unwrap().len(), round + 1);
        assert_eq!(staging_alias(&world).await, digest.as_str());
    }
}

#[tokio::test]
async fn production_gates_and_the_emergency_path() {
    // The shipped templates: production needs a checklist, a DPO for high risk, drift under
    // thresholds and compatible schemas.
    let world = world(None).await;
    let server = &world.server;
    let dpo = server
        .user("dee", Some(("data_protection_officer", "retail")))
        .await;
    let digest = register(&world, complete_manifest("1.0.0")).await;

    // A reader without `version.verify` gets the gates, not a re-verification of every blob.
    let as_reader = server
        .request(
            Some(&world.ds),
            Method::GET,
            &format!("/api/v1/versions/{digest}/gates?environment=production"),
            None,
        )
        .await;
    assert!(
        as_reader.body["integrity"]
            .as_str()
            .unwrap()
            .starts_with("not checked"),
        "{}",
        as_reader.body
    );
    // The CI gate evaluates without changing anything.
    let before = server.audit_size().await;
    let check = server
        .request(
            Some(&world.mlops),
            Method::GET,
            &format!("/api/v1/versions/{digest}/gates?environment=production"),
            None,
        )
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    assert_eq!(check.body["allowed"], false);
    assert_eq!(check.body["template"], "production");
    assert_eq!(gate(&check.body, "documentation")["status"], "pass");
    assert_eq!(gate(&check.body, "checklist")["status"], "block");
    assert_eq!(gate(&check.body, "dpo")["status"], "block");
    assert_eq!(gate(&check.body, "drift")["status"], "missing");
    assert_eq!(gate(&check.body, "api_compatibility")["status"], "pass");
    assert_eq!(server.audit_size().await, before, "a check changes nothing");

    let no_record = server.promote(&world.mlops, &digest, "production").await;
    assert_eq!(
        gate(&no_record.body, "change_record")["status"],
        "missing",
        "{}",
        no_record.body
    );
    let no_record_id = no_record.body["id"].as_i64().unwrap();
    server
        .request(
            Some(&world.mlops),
            Method::POST,
            &format!("/api/v1/promotions/{no_record_id}/withdraw"),
            Some(json!({"reason": "file it with a change record"})),
        )
        .await;
    let requested = server
        .request(
            Some(&world.mlops),
            Method::POST,
            "/api/v1/promotions",
            Some(json!({"digest": digest, "environment": "production", "reason": "release", "change": change_record("standard", "low")})),
        )
        .await;
    assert_eq!(requested.body["state"], "pending", "{}", requested.body);
    assert_eq!(gate(&requested.body, "change_record")["status"], "pass");
    assert_eq!(
        gate(&requested.body, "cab")["status"],
        "pass",
        "standard changes are pre-approved"
    );
    let statement = requested.body["impact_statement"].as_str().unwrap();
    assert!(
        statement.starts_with("retail/credit version 1.0.0 will be deployed in production for the retail business unit, taking 25% of requests at first."),
        "{statement}"
    );
    let id = requested.body["id"].as_i64().unwrap();
    // A second request for the same environment waits for the first.
    let twice = server.promote(&world.mlops, &digest, "production").await;
    assert_eq!(twice.status, 409, "{}", twice.body);

    // Drift: a report over the thresholds blocks, naming metric, feature, value, threshold.
    // The author does not attach the report their version is judged by.
    let by_author = server
        .request(
            Some(&world.ds),
            Method::POST,
            &format!("/api/v1/versions/{digest}/drift"),
            Some(json!({"report": {"items": [{"column": "income", "psi": 0.01}]}})),
        )
        .await;
    assert_eq!(by_author.status, 403, "{}", by_author.body);
    let attach = |report: Value| {
        let (server, ds, digest) = (&world.server, world.mlops.clone(), digest.clone());
        async move {
            server
                .request(
                    Some(&ds),
                    Method::POST,
                    &format!("/api/v1/versions/{digest}/drift"),
                    Some(json!({"report": report})),
                )
                .await
        }
    };
    let bad = attach(json!({"items": [{"column": "income", "psi": -1.0}]})).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(
        attach(json!({"items": [{"column": "income", "psi": 0.31, "ks_pvalue": 0.2}]}))
            .await
            .status,
        201
    );
    let shown = server
        .request(
            Some(&world.ds),
            Method::GET,
            &format!("/api/v1/promotions/{id}"),
            None,
        )
        .await;
    let drift = gate(&shown.body, "drift");
    assert_eq!(drift["status"], "block");
    assert!(
        drift["message"]
            .as_str()
            .unwrap()
            .contains("PSI of `income` is 0.3100, at or above 0.2"),
        "{drift}"
    );
    attach(json!({"items": [{"column": "income", "psi": 0.02, "ks_pvalue": 0.6}]})).await;

    // The checklist counts only when complete and signed by a named role.
    let items = steward_core::promotion::DEFAULT_CHECKLIST;
    let partial = approve(&world, &world.sec, id, json!({"checklist": items[..2]})).await;
    assert!(
        gate(&partial.body, "checklist")["message"]
            .as_str()
            .unwrap()
            .contains("left unchecked"),
        "{}",
        partial.body
    );
    // The same reviewer completes their checklist: the approval is amended, not refused.
    let amended = approve(&world, &world.sec, id, json!({"checklist": items})).await;
    assert_eq!(amended.status, 201, "{}", amended.body);
    assert_eq!(amended.body["amended"], true);
    assert_eq!(
        gate(&amended.body, "checklist")["status"],
        "pass",
        "{}",
        amended.body
    );
    // A role revoked after the approval no longer counts.
    server
        .admin(
            Method::DELETE,
            "/api/v1/users/sec/roles/retail/reviewer",
            None,
        )
        .await;
    let shown = server
        .request(
            Some(&world.ds),
            Method::GET,
            &format!("/api/v1/promotions/{id}"),
            None,
        )
        .await;
    assert_eq!(
        gate(&shown.body, "checklist")["status"],
        "block",
        "{}",
        shown.body
    );
    let signed = approve(&world, &world.law, id, json!({"checklist": items})).await;
    assert_eq!(
        gate(&signed.body, "checklist")["status"],
        "pass",
        "{}",
        signed.body
    );
    assert_eq!(signed.body["state"], "pending", "the DPO has not signed");
    let applied = approve(&world, &dpo, id, json!({"comment": "DPIA on file"})).await;
    assert_eq!(applied.body["state"], "applied", "{}", applied.body);
    assert_eq!(gate(&applied.body, "dpo")["status"], "pass");
    assert_eq!(gate(&applied.body, "integrity")["status"], "pass");

    // Emergency: a freeze, no approvals, no drift report; a certified MLOps engineer with a
    // written reason goes through, the waived gates are said, and a review is due.
    let hotfix = register(&world, complete_manifest("1.0.1")).await;
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    server
        .admin(
            Method::POST,
            "/api/v1/calendar/windows",
            Some(json!({"name": "Quarter close", "kind": "freeze", "start": start, "duration": "P1D", "environments": ["production"], "reason": "books"})),
        )
        .await;
    let uncertified = server
        .user("otto", Some(("mlops_engineer", "retail")))
        .await;
    let emergency = |token: String| {
        let (server, hotfix) = (&world.server, hotfix.clone());
        async move {
            server
                .request(
                    Some(&token),
                    Method::POST,
                    "/api/v1/promotions",
                    Some(json!({"digest": hotfix, "environment": "production", "reason": "hotfix", "emergency_reason": "scores NaN for new applicants (INC-7)", "change": change_record("emergency", "high")})),
                )
                .await
        }
    };
    let refused = emergency(uncertified).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let done = emergency(world.mlops.clone()).await;
    assert_eq!(done.status, 201, "{}", done.body);
    assert_eq!(done.body["state"], "applied", "{}", done.body);
    assert_eq!(done.body["emergency"], true);
    for waived in [
        "checklist",
        "dpo",
        "drift",
        "freeze",
        "api_compatibility",
        "cab",
        "pre_mortem",
    ] {
        assert_eq!(
            gate(&done.body, waived)["status"],
            "waived",
            "{waived}: {}",
            done.body
        );
    }
    assert_eq!(done.body["review"]["reviewed_by"], Value::Null);
    let emergency_id = done.body["id"].as_i64().unwrap();
    let review = |token: String| {
        let server = &world.server;
        async move {
            server
                .request(
                    Some(&token),
                    Method::POST,
                    &format!("/api/v1/promotions/{emergency_id}/review"),
                    Some(json!({"comment": "justified; follow-up CHG-9"})),
                )
                .await
        }
    };
    assert_eq!(
        review(world.sec.clone()).await.status,
        403,
        "reviewers do not"
    );
    let reviewed = review(world.law.clone()).await;
    assert_eq!(reviewed.status, 200, "{}", reviewed.body);
    assert_eq!(reviewed.body["review"]["reviewed_by"], "law");
    assert_eq!(review(world.law.clone()).await.status, 409, "once");
}

#[tokio::test]
async fn breaking_schema_changes_need_a_major_version_and_an_explicit_approval() {
    let world = world(Some(
        "templates: [{name: compat, gates: {documentation: true, api_compatibility: true}}]",
    ))
    .await;
    let with_schema = |version: &str, inputs: Value| {
        let mut manifest = complete_manifest(version);
        manifest["schema"] = json!({"inputs": inputs, "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1, 1], "classification": "internal"}]});
        manifest
    };
    let field = |name: &str, datatype: &str| json!({"name": name, "datatype": datatype, "shape": [-1, 1], "classification": "internal"});
    let v1 = register(
        &world,
        with_schema(
            "1.0.0",
            json!([field("income", "FP32"), field("age", "INT32")]),
        ),
    )
    .await;
    assert_eq!(
        world
            .server
            .promote(&world.mlops, &v1, "staging")
            .await
            .body["state"],
        "applied"
    );
    let minor = register(
        &world,
        with_schema("1.1.0", json!([field("income", "FP64")])),
    )
    .await;
    let blocked = world.server.promote(&world.mlops, &minor, "staging").await;
    let compat = gate(&blocked.body, "api_compatibility");
    assert_eq!(compat["status"], "block");
    assert!(
        compat["message"]
            .as_str()
            .unwrap()
            .contains("1.0.0 → 1.1.0 is not one"),
        "{compat}"
    );
    let id = blocked.body["id"].as_i64().unwrap();
    let withdrawn = world
        .server
        .request(
            Some(&world.mlops),
            Method::POST,
            &format!("/api/v1/promotions/{id}/withdraw"),
            Some(json!({"reason": "needs a major version"})),
        )
        .await;
    assert_eq!(withdrawn.body["state"], "withdrawn", "{}", withdrawn.body);

    let major = register(
        &world,
        with_schema("2.0.0", json!([field("income", "FP64")])),
    )
    .await;
    let pending = world.server.promote(&world.mlops, &major, "staging").await;
    assert!(
        gate(&pending.body, "api_compatibility")["message"]
            .as_str()
            .unwrap()
            .contains("explicitly accepts them")
    );
    let id = pending.body["id"].as_i64().unwrap();
    let plain = approve(&world, &world.sec, id, json!({})).await;
    assert_eq!(plain.body["state"], "pending");
    let accepted = approve(
        &world,
        &world.law,
        id,
        json!({"accept_breaking_changes": true}),
    )
    .await;
    assert_eq!(accepted.body["state"], "applied", "{}", accepted.body);
}

#[tokio::test]
async fn requests_are_rejected_withdrawn_or_expire_and_bad_input_changes_nothing() {
    let world = world(Some(GATES)).await;
    let server = &world.server;
    let digest = register(&world, complete_manifest("1.0.0")).await;
    let before = server.audit_size().await;
    for (body, status) in [
        (
            json!({"digest": digest, "environment": "staging", "reason": " "}),
            400,
        ),
        (
            json!({"digest": digest, "environment": "moon", "reason": "x"}),
            404,
        ),
        (
            json!({"digest": "sha256:nope", "environment": "staging", "reason": "x"}),
            400,
        ),
        (json!({"digest": digest, "environment": "staging"}), 400),
    ] {
        let reply = server
            .request(
                Some(&world.mlops),
                Method::POST,
                "/api/v1/promotions",
                Some(body),
            )
            .await;
        assert_eq!(reply.status, status, "{}", reply.body);
    }
    assert_eq!(server.audit_size().await, before, "nothing recorded");

    let first = server.promote(&world.mlops, &digest, "staging").await;
    let id = first.body["id"].as_i64().unwrap();
    let rejected = server
        .request(
            Some(&world.sec),
            Method::POST,
            &format!("/api/v1/promotions/{id}/reject"),
            Some(json!({"reason": "monitoring plan missing"})),
        )
        .await;
    assert_eq!(rejected.body["state"], "rejected", "{}", rejected.body);
    assert_eq!(approve(&world, &world.law, id, json!({})).await.status, 409);

    // Someone else's request is withdrawn only by MLOps engineers; the requester may.
    let second = server.promote(&world.mlops, &digest, "staging").await;
    let id = second.body["id"].as_i64().unwrap();
    let not_theirs = server
        .request(
            Some(&world.sec),
            Method::POST,
            &format!("/api/v1/promotions/{id}/withdraw"),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(not_theirs.status, 403);

    // Past its expiry the request is expired: approvals are refused and the expiry recorded.
    server.clock.advance(chrono::Duration::hours(24 * 7 + 1));
    let listed = server
        .admin(Method::GET, "/api/v1/models/retail/credit/promotions", None)
        .await;
    assert_eq!(listed["items"][0]["state"], "expired", "{listed}");
    let size = server.audit_size().await;
    let late = approve(&world, &world.sec, id, json!({})).await;
    assert_eq!(late.status, 409, "{}", late.body);
    assert!(
        late.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(audit_actions(server, size).await, ["promotion.expire"]);
    let third = server.promote(&world.mlops, &digest, "staging").await;
    assert_eq!(third.status, 201, "{}", third.body);
    // An expired request whose expiry nobody recorded yet does not hold up a new one.
    let third_id = third.body["id"].as_i64().unwrap();
    server.clock.advance(chrono::Duration::hours(24 * 7 + 1));
    let size = server.audit_size().await;
    let fourth = server.promote(&world.mlops, &digest, "staging").await;
    assert_eq!(fourth.status, 201, "{}", fourth.body);
    assert_eq!(
        audit_actions(server, size).await,
        ["promotion.expire", "promotion.request"]
    );
    let expired = server
        .admin(Method::GET, &format!("/api/v1/promotions/{third_id}"), None)
        .await;
    assert_eq!(expired["state"], "expired");
}

#[tokio::test]
async fn normal_changes_need_the_cab_and_high_impact_ones_a_checked_pre_mortem() {
    let world = world(Some(
        r#"
boards:
  "*":
    cab:
      members: {sec: security, law: compliance}
templates:
  - name: changes
    gates:
      documentation: true
      change_record: {cab: {board: cab, quorum: 2}}
"#,
    ))
    .await;
    let server = &world.server;
    let digest = register(&world, complete_manifest("1.0.0")).await;
    let before = server.audit_size().await;
    let mut broken = change_record("normal", "high");
    broken["traffic_share"] = json!(1.5);
    let refused = server
        .request(
            Some(&world.mlops),
            Method::POST,
            "/api/v1/promotions",
            Some(json!({"digest": digest, "environment": "staging", "reason": "x", "change": broken})),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("traffic_share: 1.5")
    );
    assert_eq!(server.audit_size().await, before);

    let requested = server
        .request(
            Some(&world.mlops),
            Method::POST,
            "/api/v1/promotions",
            Some(json!({"digest": digest, "environment": "staging", "reason": "x", "change": change_record("normal", "high")})),
        )
        .await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    assert!(
        gate(&requested.body, "cab")["message"]
            .as_str()
            .unwrap()
            .contains("board `cab` needs 2")
    );
    assert_eq!(
        gate(&requested.body, "pre_mortem")["message"],
        "mitigations not checked off yet: fm-1, fm-2"
    );
    let id = requested.body["id"].as_i64().unwrap();
    let first = approve(&world, &world.sec, id, json!({"mitigated": ["fm-1"]})).await;
    assert_eq!(first.body["state"], "pending");
    assert_eq!(
        gate(&first.body, "pre_mortem")["message"],
        "mitigations not checked off yet: fm-2"
    );
    let second = approve(&world, &world.law, id, json!({"mitigated": ["fm-2"]})).await;
    assert_eq!(second.body["state"], "applied", "{}", second.body);
    assert_eq!(gate(&second.body, "cab")["status"], "pass");
    assert_eq!(
        second.body["change"]["rollback_dependencies"]["data_pipeline_version"],
        "etl-7"
    );
}

#[tokio::test]
async fn maintenance_windows_hold_a_promotion_until_one_opens_and_the_sweep_applies_it() {
    let world = world(Some(
        "templates: [{name: windows, gates: {documentation: true, maintenance_window: true}}]",
    ))
    .await;
    let server = &world.server;
    let digest = register(&world, complete_manifest("1.0.0")).await;
    // Weekly, from two hours from now, for four hours.
    let start = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    server
        .admin(
            Method::POST,
            "/api/v1/calendar/windows",
            Some(json!({"name": "Weekly patching", "kind": "maintenance", "start": start, "duration": "PT4H", "rrule": "FREQ=WEEKLY", "environments": ["staging"], "reason": "change policy"})),
        )
        .await;
    let requested = server.promote(&world.mlops, &digest, "staging").await;
    assert_eq!(requested.body["state"], "pending", "{}", requested.body);
    let window = gate(&requested.body, "maintenance_window");
    assert_eq!(window["status"], "block");
    assert!(window["message"].as_str().unwrap().contains("none is open"));
    assert_eq!(
        steward_server::routes::sweep_promotions(&server.app)
            .await
            .unwrap(),
        0
    );
    server.clock.advance(chrono::Duration::hours(3));
    assert_eq!(
        steward_server::routes::sweep_promotions(&server.app)
            .await
            .unwrap(),
        1
    );
    let id = requested.body["id"].as_i64().unwrap();
    let shown = server
        .admin(Method::GET, &format!("/api/v1/promotions/{id}"), None)
        .await;
    assert_eq!(shown["state"], "applied", "{shown}");
    assert_eq!(shown["closed_by"], "steward-scheduler");
    assert!(
        gate(&shown["recorded_gates"], "maintenance_window")["message"]
            .as_str()
            .unwrap()
            .contains("inside maintenance window `Weekly patching`")
    );
}

#[tokio::test]
async fn a_canary_is_set_only_beside_a_stable_version_and_only_if_it_passes_the_gates() {
    let world = world(None).await;
    let server = &world.server;
    let v1 = register(&world, complete_manifest("1.0.0")).await;
    let v2 = register(&world, complete_manifest("1.1.0")).await;
    let set = |env: &'static str, body: Value, token: String| {
        let server = &world.server;
        async move {
            server
                .request(
                    Some(&token),
                    Method::PUT,
                    &format!("/api/v1/models/retail/credit/routing/{env}"),
                    Some(body),
                )
                .await
        }
    };
    let canary = json!({"canary": v2, "canary_weight_bp": 1000, "sticky_header": "x-user-id", "reason": "try 1.1"});
    let before = server.audit_size().await;
    let none = set("staging", canary.clone(), world.mlops.clone()).await;
    assert_eq!(none.status, 409, "{}", none.body);
    assert!(
        none.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no stable version yet")
    );
    assert_eq!(
        server.promote(&world.mlops, &v1, "staging").await.body["state"],
        "applied"
    );
    assert_eq!(
        server.promote(&world.mlops, &v1, "production").await.body["state"],
        "pending"
    );
    let bad = set(
        "staging",
        json!({"canary": v2, "canary_weight_bp": 20000, "reason": "x"}),
        world.mlops.clone(),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        set("staging", canary.clone(), world.ds.clone())
            .await
            .status,
        403
    );
    let ok = set("staging", canary.clone(), world.mlops.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["stable"], v1.as_str());
    // A shadow sees real inputs: the same rules; a share without a shadow is refused.
    let shareless = set(
        "staging",
        json!({"shadow_share_bp": 100, "reason": "x"}),
        world.mlops.clone(),
    )
    .await;
    assert_eq!(shareless.status, 422, "{}", shareless.body);
    let shadow = set(
        "staging",
        json!({"shadow": v2, "shadow_share_bp": 2500, "reason": "compare 1.1 quietly"}),
        world.mlops.clone(),
    )
    .await;
    assert_eq!(shadow.status, 200, "{}", shadow.body);
    assert_eq!(shadow.body["shadow_share_bp"], 2500);
    // Production has no stable version either; and a canary there would face its gates.
    let production = set("production", canary, world.mlops.clone()).await;
    assert_eq!(production.status, 409, "{}", production.body);
    let shown = server
        .request(
            Some(&world.ds),
            Method::GET,
            "/api/v1/models/retail/credit/routing",
            None,
        )
        .await;
    // A rule replaces the one before it: the shadow rule ended the canary.
    assert_eq!(
        shown.body["items"][0]["canary"],
        Value::Null,
        "{}",
        shown.body
    );
    assert_eq!(
        shown.body["items"][0]["shadow"],
        v2.as_str(),
        "{}",
        shown.body
    );
    let actions = audit_actions(server, before).await;
    assert!(
        actions.iter().any(|action| action == "routing.set"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|action| action == "routing.set.denied"),
        "{actions:?}"
    );
}
