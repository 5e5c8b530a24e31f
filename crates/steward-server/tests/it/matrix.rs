//! Every `/api/v1` route × every role, against what the shipped policy should allow
//! (broken object-, property- and function-level authorisation, OWASP API Top 10 2023).
//! A route missing from `EXPECTED` fails `every_route_has_an_expectation`, and a route
//! with no policy mapping is refused (`an_unmapped_route_is_denied`).

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{Value, json};
use steward_server::authz::routes;

use crate::support::{ARTIFACT, TestServer, artifact_digest, complete_manifest};

const ROLES: &[&str] = &[
    "ds",
    "mlops",
    "compliance",
    "reviewer",
    "dpo",
    "auditor",
    "admin",
    "outsider",
    "nobody",
];
const READERS: &[&str] = &[
    "ds",
    "mlops",
    "compliance",
    "reviewer",
    "dpo",
    "auditor",
    "admin",
];
const ANY_ROLE: &[&str] = &[
    "ds",
    "mlops",
    "compliance",
    "reviewer",
    "dpo",
    "auditor",
    "admin",
    "outsider",
];
const ADMIN: &[&str] = &["admin"];
const AUDIT: &[&str] = &["auditor", "admin"];

/// `(method, route template, roles allowed)`.
const EXPECTED: &[(&str, &str, &[&str])] = &[
    ("GET", "/api/v1/openapi.json", ROLES),
    ("GET", "/api/v1/whoami", ROLES),
    ("GET", "/api/v1/business-units", ANY_ROLE),
    ("POST", "/api/v1/business-units", ADMIN),
    ("GET", "/api/v1/users", ADMIN),
    ("POST", "/api/v1/users", ADMIN),
    ("GET", "/api/v1/users/{user}", ADMIN),
    ("POST", "/api/v1/users/{user}/roles", ADMIN),
    ("DELETE", "/api/v1/users/{user}/roles/{scope}/{role}", ADMIN),
    ("POST", "/api/v1/users/{user}/certifications", ADMIN),
    ("GET", "/api/v1/users/{user}/tokens", ADMIN),
    ("POST", "/api/v1/users/{user}/tokens", ADMIN),
    ("DELETE", "/api/v1/users/{user}/tokens/{token_id}", ADMIN),
    ("GET", "/api/v1/environments", ANY_ROLE),
    ("POST", "/api/v1/environments", ADMIN),
    ("GET", "/api/v1/models", ANY_ROLE),
    ("POST", "/api/v1/models", &["ds", "admin"]),
    ("GET", "/api/v1/models/{unit}/{model}", READERS),
    ("GET", "/api/v1/models/{unit}/{model}/versions", READERS),
    (
        "POST",
        "/api/v1/models/{unit}/{model}/versions",
        &["ds", "mlops", "admin"],
    ),
    (
        "POST",
        "/api/v1/models/{unit}/{model}/packages",
        &["ds", "mlops", "admin"],
    ),
    ("GET", "/api/v1/models/{unit}/{model}/aliases", READERS),
    (
        "POST",
        "/api/v1/models/{unit}/{model}/aliases/{environment}/rollback",
        &["mlops", "admin"],
    ),
    ("GET", "/api/v1/models/{unit}/{model}/flags", READERS),
    (
        "PUT",
        "/api/v1/models/{unit}/{model}/flags/{environment}/{flag}",
        &["mlops", "compliance", "admin"],
    ),
    ("GET", "/api/v1/models/{unit}/{model}/routing", READERS),
    (
        "PUT",
        "/api/v1/models/{unit}/{model}/routing/{environment}",
        &["mlops", "admin"],
    ),
    ("GET", "/api/v1/models/{unit}/{model}/promotions", READERS),
    ("POST", "/api/v1/promotions", &["mlops", "admin"]),
    ("GET", "/api/v1/promotions/{id}", READERS),
    (
        "POST",
        "/api/v1/promotions/{id}/approvals",
        &["mlops", "compliance", "reviewer", "dpo", "admin"],
    ),
    (
        "POST",
        "/api/v1/promotions/{id}/reject",
        &["mlops", "compliance", "reviewer", "dpo", "admin"],
    ),
    (
        "POST",
        "/api/v1/promotions/{id}/withdraw",
        &["mlops", "admin"],
    ),
    ("POST", "/api/v1/promotions/{id}/apply", &["mlops", "admin"]),
    (
        "POST",
        "/api/v1/promotions/{id}/review",
        &["compliance", "admin"],
    ),
    ("GET", "/api/v1/versions/{digest}/gates", READERS),
    (
        "POST",
        "/api/v1/versions/{digest}/drift",
        &["mlops", "admin"],
    ),
    (
        "GET",
        "/api/v1/models/{unit}/{model}/aliases/{environment}/history",
        READERS,
    ),
    ("GET", "/api/v1/models/{unit}/{model}/audit", READERS),
    ("GET", "/api/v1/versions/{digest}", READERS),
    ("GET", "/api/v1/versions/{digest}/package", READERS),
    (
        "POST",
        "/api/v1/versions/{digest}/deprecate",
        &["mlops", "compliance", "admin"],
    ),
    ("GET", "/api/v1/versions/{digest}/approvals", READERS),
    (
        "POST",
        "/api/v1/versions/{digest}/approvals",
        &["compliance", "reviewer", "dpo", "admin"],
    ),
    (
        "POST",
        "/api/v1/versions/{digest}/verify",
        &["mlops", "compliance", "auditor", "admin"],
    ),
    ("GET", "/api/v1/versions/{digest}/compatibility", READERS),
    ("GET", "/api/v1/calendar/windows", ANY_ROLE),
    ("POST", "/api/v1/calendar/windows", ADMIN),
    ("DELETE", "/api/v1/calendar/windows/{id}", ADMIN),
    ("POST", "/api/v1/calendar/import", ADMIN),
    ("GET", "/api/v1/keys", AUDIT),
    ("POST", "/api/v1/keys/rotate", ADMIN),
    ("POST", "/api/v1/keys/retire", ADMIN),
    (
        "PUT",
        "/api/v1/blobs/{digest}",
        &["ds", "mlops", "admin", "outsider"],
    ),
    ("GET", "/api/v1/blobs/{digest}", ANY_ROLE),
    ("POST", "/api/v1/advisories", ADMIN),
    ("GET", "/api/v1/webhooks", AUDIT),
    ("POST", "/api/v1/webhooks", ADMIN),
    ("DELETE", "/api/v1/webhooks/{id}", ADMIN),
    ("GET", "/api/v1/webhooks/{id}/deliveries", AUDIT),
    ("GET", "/api/v1/search", ANY_ROLE),
    ("GET", "/api/v1/audit/events", AUDIT),
    ("GET", "/api/v1/audit/verify", AUDIT),
    ("GET", "/api/v1/audit/checkpoints", AUDIT),
    ("POST", "/api/v1/audit/checkpoints", ADMIN),
    ("GET", "/api/v1/audit/consistency", AUDIT),
    ("GET", "/api/v1/audit/proof/{seq}", AUDIT),
    ("GET", "/api/v1/audit/export", AUDIT),
    ("POST", "/api/v1/audit/hash", AUDIT),
];

struct Fixture {
    server: TestServer,
    tokens: BTreeMap<&'static str, String>,
    digest: String,
    tess_token_id: String,
}

async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    for unit in ["retail", "wholesale"] {
        server
            .admin(
                Method::POST,
                "/api/v1/business-units",
                Some(json!({"name": unit})),
            )
            .await;
    }
    let mut tokens = BTreeMap::new();
    let people: [(&str, Option<(&str, &str)>); 8] = [
        ("ds", Some(("data_scientist", "retail"))),
        ("mlops", Some(("mlops_engineer", "retail"))),
        ("compliance", Some(("compliance_officer", "retail"))),
        ("reviewer", Some(("reviewer", "retail"))),
        ("dpo", Some(("data_protection_officer", "retail"))),
        ("auditor", Some(("auditor", "*"))),
        ("outsider", Some(("data_scientist", "wholesale"))),
        ("nobody", None),
    ];
    for (name, role) in people {
        tokens.insert(name, server.user(name, role).await);
    }
    tokens.insert("admin", server.admin_token.clone());
    let certification =
        json!({"name": "ops", "issued_at": "2020-01-01", "expires_at": "2099-01-01"});
    server
        .admin(
            Method::POST,
            "/api/v1/users/mlops/certifications",
            Some(certification.clone()),
        )
        .await;
    server
        .admin(Method::POST, "/api/v1/users", Some(json!({"name": "tess"})))
        .await;
    server
        .admin(
            Method::POST,
            "/api/v1/users/tess/roles",
            Some(json!({"role": "reviewer", "scope": "retail"})),
        )
        .await;
    let tess_token = server
        .admin(Method::POST, "/api/v1/users/tess/tokens", Some(json!({})))
        .await;
    let ds = tokens["ds"].clone();
    let model = json!({"business_unit": "retail", "name": "credit", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    assert_eq!(
        server
            .request(Some(&ds), Method::POST, "/api/v1/models", Some(model))
            .await
            .status,
        201
    );
    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    assert_eq!(
        server
            .request(
                Some(&ds),
                Method::PUT,
                &blob,
                Some(Value::String(ARTIFACT.into()))
            )
            .await
            .status,
        201
    );
    let reply = server
        .request(
            Some(&ds),
            Method::POST,
            "/api/v1/models/retail/credit/versions",
            Some(complete_manifest("1.0.0")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Promotion 1: to production, where the shipped gates keep it pending.
    let digest = reply.body["digest"].as_str().unwrap().to_owned();
    let pending = server
        .promote(&tokens["mlops"], &digest, "production")
        .await;
    assert_eq!(pending.body["id"], 1, "{}", pending.body);
    assert_eq!(pending.body["state"], "pending", "{}", pending.body);
    server
        .admin(Method::POST, "/api/v1/audit/checkpoints", Some(json!({})))
        .await;
    Fixture {
        server,
        tokens,
        digest: reply.body["digest"].as_str().unwrap().to_owned(),
        tess_token_id: tess_token["id"].as_str().unwrap().to_owned(),
    }
}

fn concrete(path: &str, fixture: &Fixture) -> String {
    path.replace("{user}", "tess")
        .replace("{scope}", "retail")
        .replace("{role}", "reviewer")
        .replace("{token_id}", &fixture.tess_token_id)
        .replace("{unit}", "retail")
        .replace("{model}", "credit")
        .replace("{environment}", "staging")
        .replace(
            "{digest}",
            if path.contains("/blobs/") {
                "BLOB"
            } else {
                &fixture.digest
            },
        )
        .replace("BLOB", &artifact_digest())
        .replace("{flag}", "serving")
        .replace("{seq}", "1")
        .replace("{id}", "1")
        + &if path.ends_with("/consistency") {
            "?from=1".to_owned()
        } else if path.ends_with("/compatibility") {
            format!("?against={}", fixture.digest)
        } else if path.ends_with("/gates") {
            "?environment=staging".to_owned()
        } else {
            String::new()
        }
}

fn body(method: &str, path: &str, fixture: &Fixture, role: &str) -> Option<Value> {
    let value = match (method, path) {
        ("POST", "/api/v1/business-units") => json!({"name": format!("unit-{role}")}),
        ("POST", "/api/v1/users") => json!({"name": format!("new-{role}")}),
        ("POST", "/api/v1/users/{user}/roles") => json!({"role": "reviewer", "scope": "wholesale"}),
        ("POST", "/api/v1/users/{user}/certifications") => {
            json!({"name": "c", "issued_at": "2026-01-01", "expires_at": "2027-01-01"})
        }
        ("POST", "/api/v1/users/{user}/tokens") => json!({"name": role}),
        ("POST", "/api/v1/environments") => json!({"name": format!("env-{role}")}),
        ("POST", "/api/v1/models") => {
            json!({"business_unit": "retail", "name": format!("m-{role}"), "category": "regression", "risk_class": "minimal", "tier": 3})
        }
        ("POST", "/api/v1/models/{unit}/{model}/versions") => {
            complete_manifest(&format!("2.0.{}", role.len()))
        }
        ("POST", "/api/v1/models/{unit}/{model}/packages") => {
            json!({"manifest": "e30=", "governance": "e30=", "tag": "1"})
        }
        ("POST", "/api/v1/promotions") => {
            json!({"digest": fixture.digest, "environment": "staging", "reason": "test"})
        }
        ("POST", "/api/v1/promotions/{id}/approvals") => json!({"comment": role}),
        ("POST", "/api/v1/promotions/{id}/reject" | "/api/v1/promotions/{id}/withdraw") => {
            json!({"reason": role})
        }
        ("POST", "/api/v1/promotions/{id}/review") => json!({"comment": role}),
        ("PUT", "/api/v1/models/{unit}/{model}/flags/{environment}/{flag}") => {
            json!({"enabled": false, "reason": role})
        }
        ("PUT", "/api/v1/models/{unit}/{model}/routing/{environment}") => {
            json!({"canary_weight_bp": 0, "reason": role})
        }
        ("POST", "/api/v1/models/{unit}/{model}/aliases/{environment}/rollback") => {
            json!({"reason": role})
        }
        ("POST", "/api/v1/versions/{digest}/drift") => {
            json!({"report": {"items": [{"column": "income", "psi": 0.01, "ks_pvalue": 0.5}]}})
        }
        ("POST", "/api/v1/versions/{digest}/deprecate") => json!({"reason": "test"}),
        ("POST", "/api/v1/versions/{digest}/approvals") => json!({"comment": role}),
        ("PUT", "/api/v1/blobs/{digest}") => Value::String(ARTIFACT.into()),
        ("POST", "/api/v1/audit/checkpoints") => json!({}),
        ("POST", "/api/v1/keys/retire") => json!({"version": 1}),
        ("POST", "/api/v1/calendar/windows") => {
            json!({"name": role, "kind": "maintenance", "start": "2030-01-01T00:00:00Z", "duration": "PT1H", "reason": "test"})
        }
        ("POST", "/api/v1/calendar/import") => {
            json!({"ics": "", "kind": "freeze", "reason": "test"})
        }
        ("POST", "/api/v1/advisories") => json!({"records": []}),
        ("POST", "/api/v1/webhooks") => {
            json!({"name": format!("hook-{role}"), "url": "http://hooks.example.com/events"})
        }
        ("POST", "/api/v1/audit/hash") => json!({"value": "secret"}),
        _ => return None,
    };
    Some(value)
}

#[test]
fn every_route_has_an_expectation() {
    let mut missing = Vec::new();
    for route in routes() {
        if !EXPECTED
            .iter()
            .any(|(method, path, _)| *method == route.method.as_str() && *path == route.path)
        {
            missing.push(format!("{} {}", route.method, route.path));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a role expectation: {missing:?}"
    );
    assert_eq!(EXPECTED.len(), routes().len());
}

#[tokio::test]
async fn every_role_against_every_route() {
    let mut mismatches = Vec::new();
    let mut n_checks = 0;
    for (method, path, allowed) in EXPECTED {
        let fixture = fixture().await;
        let url = concrete(path, &fixture);
        for role in ROLES {
            let token = fixture.tokens[role].clone();
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let reply = fixture
                .server
                .request(
                    Some(&token),
                    method.clone(),
                    &url,
                    body(method.as_str(), path, &fixture, role),
                )
                .await;
            n_checks += 1;
            let denied = reply.status == 403 || reply.status == 401;
            let should_allow = allowed.contains(role);
            if should_allow == denied {
                mismatches.push(format!(
                    "{method} {path} as {role}: expected {}, got {} {}",
                    if should_allow { "allowed" } else { "403" },
                    reply.status,
                    reply.body
                ));
            }
            if denied && reply.status == 403 {
                // A refusal names the rule that refused.
                assert!(
                    reply.body["error"]["details"]["decision"]["policies"].is_array(),
                    "{path}: {}",
                    reply.body
                );
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {n_checks} checks differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthenticated() {
    let fixture = fixture().await;
    for token in [
        None,
        Some(
            "stw_0000000000000000_0000000000000000000000000000000000000000000000000000000000000000",
        ),
        Some("garbage"),
    ] {
        let reply = fixture
            .server
            .request(token, Method::GET, "/api/v1/models", None)
            .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.body["error"]["code"], "unauthenticated");
    }
    // A revoked token stops working at once.
    let tess_token = fixture
        .server
        .admin(Method::POST, "/api/v1/users/tess/tokens", Some(json!({})))
        .await;
    let token = tess_token["token"].as_str().unwrap();
    assert_eq!(
        fixture
            .server
            .request(Some(token), Method::GET, "/api/v1/whoami", None)
            .await
            .status,
        200
    );
    fixture
        .server
        .admin(
            Method::DELETE,
            &format!(
                "/api/v1/users/tess/tokens/{}",
                tess_token["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(
        fixture
            .server
            .request(Some(token), Method::GET, "/api/v1/whoami", None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn an_unmapped_route_is_denied() {
    let fixture = fixture().await;
    let routes = steward_server::routes::api_routes().route(
        "/api/v1/forgotten",
        axum::routing::get(|| async { "leaked" }),
    );
    let router = steward_server::with_stack(routes, fixture.server.app.clone());
    let request = axum::http::Request::builder()
        .uri("/api/v1/forgotten")
        .header(
            "authorization",
            format!("Bearer {}", fixture.server.admin_token),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
    assert_eq!(response.status(), 403);
    let entries = fixture
        .server
        .app
        .store
        .audit_entries(0, 10_000)
        .await
        .unwrap();
    assert_eq!(
        entries.last().unwrap().action,
        "unmapped.denied",
        "the refusal is audited"
    );
}

#[tokio::test]
async fn denials_are_audited_with_their_reasons() {
    let fixture = fixture().await;
    let before = fixture.server.audit_size().await;
    let reply = fixture
        .server
        .request(
            Some(&fixture.tokens["ds"]),
            Method::POST,
            &format!("/api/v1/versions/{}/approvals", fixture.digest),
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body["error"]["details"]["decision"]["policies"],
        json!(["steward.sod.author-cannot-approve"])
    );
    let entries = fixture
        .server
        .app
        .store
        .audit_entries(before, 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "version.approve.denied");
    assert!(
        entries[0]
            .entry
            .contains("steward.sod.author-cannot-approve")
    );
}

#[tokio::test]
async fn incomplete_documentation_lists_every_missing_field() {
    let fixture = fixture().await;
    let mut manifest = complete_manifest("3.0.0");
    manifest.as_object_mut().unwrap().remove("bias_assessment");
    manifest["model_card"]
        .as_object_mut()
        .unwrap()
        .remove("contact");
    manifest["training_data"][0]
        .as_object_mut()
        .unwrap()
        .remove("digest");
    let before = fixture.server.audit_size().await;
    let reply = fixture
        .server
        .request(
            Some(&fixture.tokens["ds"]),
            Method::POST,
            "/api/v1/models/retail/credit/versions",
            Some(manifest),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    let fields: Vec<&str> = reply.body["error"]["details"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "training_data[0].digest",
            "bias_assessment.summary",
            "bias_assessment.protected_attributes",
            "bias_assessment.metrics",
            "bias_assessment.mitigations",
            "model_card.contact"
        ]
    );
    assert_eq!(
        fixture.server.audit_size().await,
        before,
        "a refused registration changes nothing"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_audit_trail() {
    let fixture = fixture().await;
    let created = fixture
        .server
        .admin(
            Method::POST,
            "/api/v1/users/tess/tokens",
            Some(json!({"name": "ci"})),
        )
        .await;
    let secret = created["token"].as_str().unwrap();
    let export = fixture
        .server
        .request(
            Some(&fixture.server.admin_token),
            Method::GET,
            "/api/v1/audit/export",
            None,
        )
        .await;
    let text = export.body.as_str().unwrap().to_owned();
    assert!(
        text.contains(created["id"].as_str().unwrap()),
        "the token is named by id"
    );
    assert!(
        !text.contains(secret) && !text.contains(&secret[21..]),
        "a token secret leaked into the audit trail"
    );
    assert!(!text.contains(&fixture.server.admin_token));
}

#[tokio::test]
async fn alias_moves_answer_as_of_with_who_and_why() {
    let fixture = fixture().await;
    let mlops = fixture.tokens["mlops"].clone();
    let moved = fixture
        .server
        .promote(&mlops, &fixture.digest, "staging")
        .await;
    assert_eq!(moved.body["state"], "applied", "{}", moved.body);
    let history = fixture
        .server
        .request(
            Some(&mlops),
            Method::GET,
            "/api/v1/models/retail/credit/aliases/staging/history?as_of=2999-01-01",
            None,
        )
        .await;
    assert_eq!(history.body["at"]["digest"], fixture.digest.as_str());
    assert_eq!(history.body["at"]["moved_by"], "mlops");
    assert_eq!(history.body["at"]["reason"], "release");
    let promotion = moved.body["id"].as_i64().unwrap();
    assert_eq!(
        history.body["at"]["approval"],
        format!("promotion:{promotion}")
    );
    let audit = fixture
        .server
        .admin(Method::GET, "/api/v1/models/retail/credit/audit", None)
        .await;
    let applied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "promotion.apply")
        .unwrap_or_else(|| panic!("no promotion.apply in {audit}"));
    assert_eq!(history.body["at"]["audit_seq"], applied["seq"]);
    let before = fixture
        .server
        .request(
            Some(&mlops),
            Method::GET,
            "/api/v1/models/retail/credit/aliases?as_of=2000-01-01",
            None,
        )
        .await;
    assert_eq!(before.body["items"], json!([]));
    let bad = fixture
        .server
        .request(
            Some(&mlops),
            Method::GET,
            "/api/v1/models/retail/credit/aliases?as_of=yesterday",
            None,
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_unit_admin_cannot_escalate_beyond_their_unit() {
    let fixture = fixture().await;
    let server = &fixture.server;
    let uma = server.user("uma", Some(("admin", "retail"))).await;
    let grant = |role: &str, scope: &str| json!({"role": role, "scope": scope});
    // Inside their unit a unit admin may grant.
    let reply = server
        .request(
            Some(&uma),
            Method::POST,
            "/api/v1/users/tess/roles",
            Some(grant("data_scientist", "retail")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Not globally, not in another unit, and not to themselves.
    for (user, role, scope) in [
        ("tess", "admin", "*"),
        ("tess", "auditor", "*"),
        ("tess", "reviewer", "wholesale"),
        ("uma", "reviewer", "retail"),
    ] {
        let reply = server
            .request(
                Some(&uma),
                Method::POST,
                &format!("/api/v1/users/{user}/roles"),
                Some(grant(role, scope)),
            )
            .await;
        assert_eq!(reply.status, 403, "{user} {role} {scope}: {}", reply.body);
    }
    let user = server.admin(Method::GET, "/api/v1/users/tess", None).await;
    let held: Vec<String> = user["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{}@{}",
                b["role"].as_str().unwrap(),
                b["scope"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(held, ["data_scientist@retail", "reviewer@retail"]);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let server = TestServer::start_with(steward_server::config::RawConfig {
        request_body_bytes_max: Some(4096),
        ..Default::default()
    })
    .await;
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "big", "description": "x".repeat(10_000)})),
        )
        .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(
        reply.body["error"]["message"],
        "request body is larger than the limit of 4096 bytes"
    );
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"nmae": "typo"})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `nmae`"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn search_filters_by_unit_risk_tier_category_owner_and_text() {
    let fixture = fixture().await;
    let ds = fixture.tokens["ds"].clone();
    let outsider = fixture.tokens["outsider"].clone();
    let search = |token: String, query: &'static str| {
        let server = &fixture.server;
        async move {
            let reply = server
                .request(
                    Some(&token),
                    Method::GET,
                    &format!("/api/v1/search?{query}"),
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.body);
            reply.body["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(search(ds.clone(), "q=credit").await, 1);
    assert_eq!(
        search(
            ds.clone(),
            "risk_class=high&tier=1&category=tabular_classification&owner=ds"
        )
        .await,
        1
    );
    assert_eq!(search(ds.clone(), "tier=2").await, 0);
    // Field names of the manifest are not text of the card.
    assert_eq!(search(ds.clone(), "q=ethical").await, 0);
    assert_eq!(search(ds.clone(), "q=considerations").await, 0);
    assert_eq!(
        search(ds.clone(), "q=SCORECARD").await,
        1,
        "the card's description is searched"
    );
    assert_eq!(
        search(ds.clone(), "q=disparate%20impact").await,
        1,
        "the card's other fields are searched"
    );
    // Object-level: someone from another unit does not see retail's models.
    assert_eq!(search(outsider, "q=credit").await, 0);
    let reply = fixture
        .server
        .request(Some(&ds), Method::GET, "/api/v1/search?tier=9", None)
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn deprecated_versions_stay_retrievable_but_are_never_deployed() {
    let fixture = fixture().await;
    let mlops = fixture.tokens["mlops"].clone();
    let path = format!("/api/v1/versions/{}", fixture.digest);
    let reply = fixture
        .server
        .request(
            Some(&mlops),
            Method::POST,
            &format!("{path}/deprecate"),
            Some(json!({"reason": "superseded"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let again = fixture
        .server
        .request(
            Some(&mlops),
            Method::POST,
            &format!("{path}/deprecate"),
            Some(json!({"reason": "twice"})),
        )
        .await;
    assert_eq!(again.status, 409);
    let shown = fixture
        .server
        .request(Some(&fixture.tokens["auditor"]), Method::GET, &path, None)
        .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["deprecated"], true);
    assert_eq!(shown.body["deprecation_reason"], "superseded");
    assert_eq!(
        shown.body["manifest"]["version"], "1.0.0",
        "the whole manifest is kept"
    );
    let blob = fixture
        .server
        .request(
            Some(&fixture.tokens["auditor"]),
            Method::GET,
            &format!("/api/v1/blobs/{}", artifact_digest()),
            None,
        )
        .await;
    assert_eq!(
        blob.body,
        Value::String(ARTIFACT.into()),
        "its artifacts too"
    );
    let moved = fixture
        .server
        .promote(&mlops, &fixture.digest, "staging")
        .await;
    assert_eq!(moved.status, 409, "{}", moved.body);
    assert!(
        moved.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deprecated and is never promoted"),
        "{}",
        moved.body
    );
}

#[tokio::test]
async fn a_token_minted_by_an_admin_does_not_let_the_admin_bypass_separation_of_duties() {
    let fixture = fixture().await;
    let server = &fixture.server;
    // The admin registers a version, then mints a token for a reviewer to approve it.
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/models/retail/credit/versions",
            Some(complete_manifest("9.0.0")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let admins_version = reply.body["digest"].as_str().unwrap().to_owned();
    let minted = server
        .admin(
            Method::POST,
            "/api/v1/users/reviewer/tokens",
            Some(json!({"name": "minted"})),
        )
        .await;
    let minted = minted["token"].as_str().unwrap().to_owned();
    let reply = server
        .request(
            Some(&minted),
            Method::POST,
            &format!("/api/v1/versions/{admins_version}/approvals"),
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(
        reply.body["error"]["details"]["decision"]["policies"],
        json!(["steward.sod.minted-token-cannot-approve"])
    );
    assert_eq!(
        reply.body["error"]["details"]["decision"]["credential"]["issued_by"],
        "admin"
    );
    // A token the reviewer issued to themselves may approve it.
    let own = server
        .request(
            Some(&minted),
            Method::POST,
            "/api/v1/users/reviewer/tokens",
            Some(json!({"name": "own"})),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.body);
    let own = own.body["token"].as_str().unwrap().to_owned();
    let reply = server
        .request(
            Some(&own),
            Method::POST,
            &format!("/api/v1/versions/{admins_version}/approvals"),
            Some(json!({})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let entries = server.app.store.audit_entries(0, 10_000).await.unwrap();
    let approval = entries
        .iter()
        .rev()
        .find(|entry| entry.action == "version.approve")
        .unwrap();
    assert!(
        approval.entry.contains(r#""issued_by":"reviewer""#),
        "the event names the credential: {}",
        approval.entry
    );
    // No self-certification.
    let certification =
        json!({"name": "ops", "issued_at": "2026-01-01", "expires_at": "2030-01-01"});
    let reply = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/users/admin/certifications",
            Some(certification),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body["error"]["details"]["decision"]["policies"],
        json!(["steward.training.no-self-certification"])
    );
}

#[tokio::test]
async fn a_whole_token_in_a_path_is_refused_without_being_repeated() {
    let server = crate::support::TestServer::start().await;
    server
        .admin(Method::POST, "/api/v1/users", Some(json!({"name": "tess"})))
        .await;
    let created = server
        .admin(
            Method::POST,
            "/api/v1/users/tess/tokens",
            Some(json!({"name": "ci"})),
        )
        .await;
    let whole = created["token"].as_str().unwrap().to_owned();
    let refused = server
        .request(
            Some(&server.admin_token),
            Method::DELETE,
            &format!("/api/v1/users/tess/tokens/{whole}"),
            None,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let secret = whole.rsplit('_').next().unwrap().to_owned();
    assert!(
        !refused.body.to_string().contains(&secret),
        "{}",
        refused.body
    );
    // Near misses (no prefix, a trailing space, upper case) are refused the same way.
    let id = whole.split('_').nth(1).unwrap().to_owned();
    for near in [
        format!("{id}_{secret}"),
        format!("{whole}%20"),
        whole.to_uppercase(),
    ] {
        let refused = server
            .request(
                Some(&server.admin_token),
                Method::DELETE,
                &format!("/api/v1/users/tess/tokens/{near}"),
                None,
            )
            .await;
        assert_eq!(refused.status, 400, "{near}: {}", refused.body);
        assert!(
            !refused.body.to_string().to_lowercase().contains(&secret),
            "{}",
            refused.body
        );
    }
    let by_id = server
        .request(
            Some(&server.admin_token),
            Method::DELETE,
            &format!(
                "/api/v1/users/tess/tokens/{}",
                created["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(by_id.status, 200, "{}", by_id.body);
}
