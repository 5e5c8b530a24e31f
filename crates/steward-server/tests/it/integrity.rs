//! Checksum validation at deploy (P8): moving an alias re-verifies what the version is made
//! of; a changed blob refuses the move, is audited, and leaves the alias where it was.

use axum::http::Method;
use serde_json::{Value, json};
use steward_server::config::RawConfig;

use crate::support::{ARTIFACT, TestServer, artifact_digest, complete_manifest};

#[tokio::test]
async fn a_changed_blob_refuses_the_deployment_and_keeps_the_previous_target() {
    let server = TestServer::start().await;
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
    let model = json!({"business_unit": "retail", "name": "credit", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    server
        .request(Some(&ds), Method::POST, "/api/v1/models", Some(model))
        .await;
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
    let mut digests = Vec::new();
    for version in ["1.0.0", "1.1.0"] {
        let registered = server
            .request(
                Some(&ds),
                Method::POST,
                "/api/v1/models/retail/credit/versions",
                Some(complete_manifest(version)),
            )
            .await;
        assert_eq!(registered.status, 201, "{}", registered.body);
        digests.push(registered.body["digest"].as_str().unwrap().to_owned());
    }
    let move_to = |digest: String| {
        let server = &server;
        let mlops = mlops.clone();
        async move { server.promote(&mlops, &digest, "staging").await }
    };
    assert_eq!(move_to(digests[0].clone()).await.body["state"], "applied");

    // The stored weights change under the server (disk fault, or someone with file access).
    let hex = artifact_digest().trim_start_matches("sha256:").to_owned();
    std::fs::write(server.dir.path().join("blobs/sha256").join(&hex), "weightz").unwrap();
    let before = server.audit_size().await;
    let refused = move_to(digests[1].clone()).await;
    assert_eq!(refused.status, 201, "{}", refused.body);
    assert_eq!(refused.body["state"], "pending", "{}", refused.body);
    let integrity = crate::support::gate(&refused.body, "integrity");
    assert_eq!(integrity["status"], "block");
    let message = integrity["message"].as_str().unwrap();
    assert!(
        message.contains("failed verification") && message.contains("`model.onnx`"),
        "{message}"
    );
    assert_eq!(
        server.audit_size().await,
        before + 2,
        "the request and the refusal are audited"
    );
    let events = server
        .admin(
            Method::GET,
            &format!("/api/v1/audit/events?after={before}"),
            None,
        )
        .await;
    let event = &events["items"][1];
    assert_eq!(event["action"], "alias.set.refused", "{event}");
    assert_eq!(event["payload"]["reason"], "integrity");
    let promotion = refused.body["id"].as_i64().unwrap();
    let aliases = server
        .request(
            Some(&mlops),
            Method::GET,
            "/api/v1/models/retail/credit/aliases",
            None,
        )
        .await;
    let staging = aliases.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alias| alias["environment"] == "staging")
        .unwrap()
        .clone();
    assert_eq!(
        staging["digest"],
        digests[0].as_str(),
        "the previous target stays"
    );

    // The explicit check says the same, and the fixed blob deploys again.
    let verify = server
        .request(
            Some(&mlops),
            Method::POST,
            &format!("/api/v1/versions/{}/verify", digests[1]),
            None,
        )
        .await;
    assert_eq!(verify.status, 409, "{}", verify.body);
    std::fs::write(server.dir.path().join("blobs/sha256").join(&hex), ARTIFACT).unwrap();
    let applied = server
        .request(
            Some(&mlops),
            Method::POST,
            &format!("/api/v1/promotions/{promotion}/apply"),
            None,
        )
        .await;
    assert_eq!(applied.body["state"], "applied", "{}", applied.body);
}

/// A data key is wrapped under the lock, with a key version the database says is usable:
/// a server whose keyring is behind (the version was retired through another replica) refuses
/// to seal, records nothing and keeps no ciphertext, instead of wrapping under a destroyed key.
#[tokio::test]
async fn a_keyring_behind_the_database_refuses_to_seal_and_keeps_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_token.clone();
    let keys = server.admin(Method::GET, "/api/v1/keys", None).await;
    assert_eq!(keys["current_version"], 1, "{keys}");
    crate::tamper::sql(
        &server,
        &["UPDATE key_versions SET retired_at = '2026-11-27T09:00:00.000000Z' WHERE version = 1"],
    )
    .await;
    let before = server.audit_size().await;
    let blob = format!("/api/v1/blobs/{}?seal=true", artifact_digest());
    let put = server
        .request(
            Some(&admin),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(put.status, 500, "{}", put.body);
    assert_eq!(server.audit_size().await, before);
    let sealed_dir = server.dir.path().join("blobs/sealed");
    assert_eq!(
        std::fs::read_dir(&sealed_dir).unwrap().count(),
        0,
        "ciphertext discarded"
    );
    assert!(
        server
            .app
            .store
            .sealed_blob(&artifact_digest())
            .await
            .unwrap()
            .is_none(),
        "nothing recorded"
    );
    // The error names no key material.
    assert!(!put.body.to_string().contains("steward:v"), "{}", put.body);
}

/// Sealing any blob (anyone may upload with `seal=true`) never breaks readers that expect it
/// in plaintext: manifests and documents are read whichever way they are stored.
#[tokio::test]
async fn a_sealed_non_weight_blob_is_still_served_and_never_written_back_in_plaintext() {
    let server = TestServer::start().await;
    let admin = server.admin_token.clone();
    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    let plain = server
        .request(
            Some(&admin),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(plain.status, 201);
    let sealed = server
        .request(
            Some(&admin),
            Method::PUT,
            &format!("{blob}?seal=true"),
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(sealed.status, 201, "{}", sealed.body);
    assert_eq!(sealed.body["sealed"]["key_version"], 1, "{}", sealed.body);
    let hex = artifact_digest().trim_start_matches("sha256:").to_owned();
    let plaintext = server.dir.path().join("blobs/sha256").join(&hex);
    assert!(!plaintext.exists(), "the plaintext copy is gone");
    // A plain upload of the same bytes later is checked and discarded.
    let again = server
        .request(
            Some(&admin),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert!(!plaintext.exists());
    assert!(again.body["sealed"].is_object(), "{}", again.body);
    // And the bytes come back through the sealed path.
    let response = server.request(Some(&admin), Method::GET, &blob, None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, Value::String(ARTIFACT.into()));
}

/// Retiring "up to N" destroys every older version at once, only once no data key needs any
/// of them, and never the current one.
#[tokio::test]
async fn retiring_up_to_a_version_destroys_every_older_one() {
    let server = TestServer::start().await;
    let admin = server.admin_token.clone();
    let blob = format!("/api/v1/blobs/{}?seal=true", artifact_digest());
    let put = server
        .request(
            Some(&admin),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    for expected in [2, 3] {
        let rotated = server
            .admin(Method::POST, "/api/v1/keys/rotate", Some(json!({})))
            .await;
        assert_eq!(rotated["version"], expected, "{rotated}");
    }
    let kek = server.dir.path().join("keys/kek");
    for version in 1..=3 {
        assert!(kek.join(format!("v{version}.key")).exists(), "v{version}");
    }
    let retired = server
        .admin(
            Method::POST,
            "/api/v1/keys/retire",
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(retired["retired"], json!([1, 2]), "{retired}");
    assert!(!kek.join("v1.key").exists() && !kek.join("v2.key").exists());
    assert!(kek.join("v1.retired").exists() && kek.join("v2.retired").exists());
    let keys = server.admin(Method::GET, "/api/v1/keys", None).await;
    assert_eq!(keys["current_version"], 3, "{keys}");
    let refused = server
        .request(
            Some(&admin),
            Method::POST,
            "/api/v1/keys/retire",
            Some(json!({"version": 3})),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let read = server
        .request(
            Some(&admin),
            Method::GET,
            &format!("/api/v1/blobs/{}", artifact_digest()),
            None,
        )
        .await;
    assert_eq!(read.body, Value::String(ARTIFACT.into()));
    // A restart keeps the keyring as the database says.
    let config =
        steward_server::config::Config::load(server.dir.path(), &RawConfig::default()).unwrap();
    steward_server::state::App::open(config).await.unwrap();
    assert!(kek.join("v3.key").exists());
}
