//! Schema classification (P6): the organisation's policy is checked when a version is
//! registered (rules for every environment) and when it is deployed (rules for that
//! environment), naming every offending field; refused registrations change nothing.

use axum::http::Method;
use serde_json::{Value, json};
use steward_server::config::RawConfig;

use crate::support::{ARTIFACT, TestServer, artifact_digest, complete_manifest};

const POLICY: &str = r#"
rules:
  - name: no-special-category
    inputs: [public, internal, confidential, personal]
    outputs: [public, internal, confidential]
  - name: no-personal-data-in-dev
    environments: [dev]
    inputs: [public, internal, confidential]
"#;

fn field(name: &str, classification: &str) -> Value {
    json!({"name": name, "datatype": "FP32", "shape": [-1, 1], "classification": classification})
}

fn with_schema(version: &str, inputs: Vec<Value>) -> Value {
    let mut manifest = complete_manifest(version);
    manifest["schema"] = json!({"inputs": inputs, "outputs": [field("score", "internal")]});
    manifest
}

#[tokio::test]
async fn the_classification_policy_is_checked_at_registration_and_on_deployment() {
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("classification.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let server = TestServer::start_with(RawConfig {
        classification_policy: Some(policy.display().to_string()),
        ..RawConfig::default()
    })
    .await;
    server
        .admin(
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "retail"})),
        )
        .await;
    let environments = server
        .admin(Method::GET, "/api/v1/environments", None)
        .await;
    if !environments.to_string().contains("\"dev\"") {
        server
            .admin(
                Method::POST,
                "/api/v1/environments",
                Some(json!({"name": "dev"})),
            )
            .await;
    }
    let ds = server.user("ds", Some(("data_scientist", "retail"))).await;
    let mlops = server
        .user("mlops", Some(("mlops_engineer", "retail")))
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
    let put = server
        .request(
            Some(&ds),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    let register = |manifest: Value| {
        let server = &server;
        let ds = ds.clone();
        async move {
            server
                .request(
                    Some(&ds),
                    Method::POST,
                    "/api/v1/models/retail/credit/versions",
                    Some(manifest),
                )
                .await
        }
    };

    let before = server.audit_size().await;
    // Special-category data is refused everywhere, each field named with its rule.
    let refused = register(with_schema(
        "1.0.0",
        vec![
            field("ethnicity", "special-category"),
            field("religion", "special-category"),
            field("income", "confidential"),
        ],
    ))
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("inputs.ethnicity is `special-category`; rule `no-special-category`")
            && message.contains("inputs.religion"),
        "{message}"
    );
    assert_eq!(
        refused.body["error"]["details"]["violations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // No schema at all: the rules require one.
    let refused = register(complete_manifest("1.0.0")).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no input/output schema is declared"),
        "{}",
        refused.body
    );
    // A malformed schema: every problem listed.
    let mut malformed = with_schema(
        "1.0.0",
        vec![field("age", "personal"), field("age", "personal")],
    );
    malformed["schema"]["outputs"][0]["datatype"] = json!("FLOAT");
    let refused = register(malformed).await;
    assert_eq!(refused.status, 422);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`age` appears twice") && message.contains("`FLOAT` is not one of"),
        "{message}"
    );
    assert_eq!(
        server.audit_size().await,
        before,
        "refusals of bad input change nothing"
    );

    // Personal data is allowed in general...
    let registered = register(with_schema(
        "1.0.0",
        vec![field("age", "personal"), field("income", "confidential")],
    ))
    .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let digest = registered.body["digest"].as_str().unwrap().to_owned();
    let shown = server
        .request(
            Some(&ds),
            Method::GET,
            &format!("/api/v1/versions/{digest}"),
            None,
        )
        .await;
    assert_eq!(
        shown.body["manifest"]["schema"]["inputs"][0]["classification"],
        "personal"
    );

    // ...but not in dev: the deployment is refused by the policy, naming the field.
    let move_to = |env: &'static str| {
        let server = &server;
        let mlops = mlops.clone();
        let digest = digest.clone();
        async move { server.promote(&mlops, &digest, env).await }
    };
    let refused = move_to("dev").await;
    assert_eq!(refused.body["state"], "pending", "{}", refused.body);
    let classification = crate::support::gate(&refused.body, "classification");
    assert_eq!(classification["status"], "block");
    assert_eq!(classification["policy"], "steward.data.classification");
    let message = classification["message"].as_str().unwrap();
    assert!(
        message.contains("inputs.age is `personal`; rule `no-personal-data-in-dev`"),
        "{message}"
    );
    assert!(!message.contains("income"), "{message}");
    let moved = move_to("staging").await;
    assert_eq!(moved.body["state"], "applied", "{}", moved.body);
}

#[tokio::test]
async fn a_malformed_classification_policy_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    steward_server::init(dir.path(), &RawConfig::default(), "admin")
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("classification.yaml"),
        "rules:\n  - name: a\n    inputs: [secret]\n",
    )
    .unwrap();
    let config = steward_server::config::Config::load(dir.path(), &RawConfig::default()).unwrap();
    let err = steward_server::state::App::open(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("classification.yaml") && err.contains("secret"),
        "{err}"
    );
}

/// API compatibility (V2): schema changes against the version being replaced, which of them
/// break callers, and whether the version number announces it.
#[tokio::test]
async fn breaking_schema_changes_need_a_major_version() {
    let server = TestServer::start().await;
    server
        .admin(
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "retail"})),
        )
        .await;
    let ds = server.user("ds", Some(("data_scientist", "retail"))).await;
    let model = json!({"business_unit": "retail", "name": "credit", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    server
        .request(Some(&ds), Method::POST, "/api/v1/models", Some(model))
        .await;
    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    server
        .request(
            Some(&ds),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    let register = |version: &'static str, inputs: Vec<Value>| {
        let (server, ds) = (&server, ds.clone());
        async move {
            let reply = server
                .request(
                    Some(&ds),
                    Method::POST,
                    "/api/v1/models/retail/credit/versions",
                    Some(with_schema(version, inputs)),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body["digest"].as_str().unwrap().to_owned()
        }
    };
    let v1 = register(
        "1.0.0",
        vec![field("income", "confidential"), field("age", "personal")],
    )
    .await;
    let minor = register("1.1.0", vec![field("income", "confidential")]).await;
    let major = register("2.0.0", vec![field("income", "confidential")]).await;
    let additive = register(
        "1.2.0",
        vec![field("income", "confidential"), field("age", "internal")],
    )
    .await;
    let compare = |digest: &str| {
        let (server, ds) = (&server, ds.clone());
        let path = format!("/api/v1/versions/{digest}/compatibility?against={v1}");
        async move { server.request(Some(&ds), Method::GET, &path, None).await }
    };
    let broken = compare(&minor).await;
    assert_eq!(broken.status, 200, "{}", broken.body);
    assert_eq!(
        (
            broken.body["breaking"].clone(),
            broken.body["compatible"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(broken.body["items"][0]["message"], "inputs.age was removed");
    let announced = compare(&major).await;
    assert_eq!(announced.body["compatible"], true, "{}", announced.body);
    let reclassified = compare(&additive).await;
    assert_eq!(
        reclassified.body["breaking"], false,
        "{}",
        reclassified.body
    );
    assert_eq!(reclassified.body["items"][0]["kind"], "reclassified");
    let missing = server
        .request(
            Some(&ds),
            Method::GET,
            &format!(
                "/api/v1/versions/{minor}/compatibility?against=sha256:{}",
                "0".repeat(64)
            ),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
}
