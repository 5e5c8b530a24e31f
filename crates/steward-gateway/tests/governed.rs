//! The governed parts of an inference: version pinning only for callers the table allows,
//! request logging during a canary phase (every request to the canary is logged, personal
//! fields keyed-hashed), W3C trace context, tenant labels and per-feature summaries.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use steward_core::schema::Classification;
use steward_gateway::reqlog::{FieldClasses, LogConfig};
use steward_gateway::{Canary, Deployment, Gateway, Limits, OnnxModel, Pinner, Table};
use tower::ServiceExt;

const ID: &str = "0123456789abcdef";
const SECRET: &str = "5e000000000000000000000000000000000000000000000000000000000000ff";

fn model(file: &str) -> Arc<OnnxModel> {
    let bytes = std::fs::read(format!("{}/test_data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    Arc::new(OnnxModel::load(&bytes).unwrap())
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "steward-governed-{}",
        steward_gateway::trace::random_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stable 1.0.0 (logistic regression) with a canary 2.0.0 (MLP) at `weight_bp`; the
/// features input is personal data in both.
fn gateway(log_dir: &std::path::Path, weight_bp: u32) -> Arc<Gateway> {
    let limits = Limits::default();
    let gateway = Gateway::new(limits.clone(), "test")
        .with_request_log(LogConfig {
            dir: log_dir.to_owned(),
            queue_records: 100_000,
            queue_bytes: steward_gateway::reqlog::QUEUE_BYTES_DEFAULT,
            sample_bp: 0,
            key: b"log key".to_vec(),
        })
        .unwrap();
    let classes = || FieldClasses {
        inputs: BTreeMap::from([("features".to_owned(), Classification::Personal)]),
        outputs: BTreeMap::from([("probabilities".to_owned(), Classification::Internal)]),
    };
    let deployment = |version: &str, file: &str| {
        Arc::new(
            Deployment::new(
                "retail:credit".into(),
                version.into(),
                format!("sha256:{version}"),
                model(file),
                &limits,
            )
            .with_classes(classes()),
        )
    };
    let mut table = Table::default();
    table
        .environments
        .entry("staging".into())
        .or_default()
        .insert("retail:credit".into(), deployment("1.0.0", "logreg.onnx"));
    table.canaries.insert(
        ("staging".into(), "retail:credit".into()),
        Canary {
            deployment: deployment("2.0.0", "mlp.onnx"),
            rule: steward_core::routing::RoutingRule {
                canary: Some("sha256:2.0.0".into()),
                canary_weight_bp: weight_bp,
                sticky_header: None,
                shadow: None,
                shadow_share_bp: 0,
            },
        },
    );
    table.pinners.insert(
        ID.into(),
        Pinner {
            user: "dave".into(),
            secret_hash: steward_core::token::hash_secret(SECRET),
            grants: [("staging".to_owned(), "retail:credit".to_owned())].into(),
        },
    );
    gateway.swap(table);
    Arc::new(gateway)
}

async fn infer(
    gateway: &Arc<Gateway>,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = json!({"id": "req-7", "inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 6], "data": [44200, 0.29, 29, 3, 1, 20350, 61000, 0.1, 50, 2, 0, 5000]}]});
    let response = steward_gateway::oip::router(gateway.clone())
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn records(dir: &std::path::Path) -> Vec<Value> {
    let mut records = Vec::new();
    for class in ["standard", "personal"] {
        let Ok(days) = std::fs::read_dir(dir.join(class)) else {
            continue;
        };
        for day in days {
            let text = std::fs::read_to_string(day.unwrap().path()).unwrap();
            records.extend(
                text.lines()
                    .map(|line| serde_json::from_str::<Value>(line).unwrap()),
            );
        }
    }
    records
}

#[tokio::test]
async fn pinning_a_version_needs_a_token_the_table_allows() {
    let dir = temp_dir();
    let gateway = gateway(&dir, 0);
    let path = "/env/staging/v2/models/retail:credit/versions/2.0.0/infer";
    let (status, headers, body) = infer(&gateway, path, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(body["error"].as_str().unwrap().contains("Authorization"));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = format!("Bearer stw_{ID}_{}", "0".repeat(64));
    let (status, _, _) = infer(&gateway, path, &[("authorization", &wrong)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let right = format!("Bearer stw_{ID}_{SECRET}");
    let (status, _, body) = infer(&gateway, path, &[("authorization", &right)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_version"], "2.0.0");
    // The same token may not pin in another environment.
    let (status, _, body) = infer(
        &gateway,
        "/v2/models/retail:credit/versions/2.0.0/infer",
        &[("authorization", &right)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`dave` may not pin")
    );
    // Refusals are counted, by reason.
    let text = gateway.metrics.encode();
    for (reason, count) in [("unauthenticated", 2), ("forbidden", 0)] {
        let line = format!(
            "steward_inference_rejected_total{{environment=\"staging\",reason=\"{reason}\"}} {count}"
        );
        assert!(count == 0 || text.contains(&line), "{text}");
    }
    assert!(
        text.contains(
            "steward_inference_rejected_total{environment=\"production\",reason=\"forbidden\"} 1"
        ) || text.contains(
            "steward_inference_rejected_total{environment=\"unknown\",reason=\"forbidden\"} 1"
        ),
        "{text}"
    );
    // Unversioned requests need no token.
    let (status, _, _) = infer(&gateway, "/env/staging/v2/models/retail:credit/infer", &[]).await;
    assert_eq!(status, StatusCode::OK);
    gateway.request_log.as_ref().unwrap().close();
    let routes: Vec<String> = records(&dir)
        .iter()
        .map(|record| record["route"].as_str().unwrap().to_owned())
        .collect();
    assert!(routes.contains(&"pinned".to_owned()), "{routes:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn every_canary_request_is_logged_with_its_trace_and_personal_data_hashed() {
    let dir = temp_dir();
    let gateway = gateway(&dir, 5_000);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut to_canary = 0;
    for _ in 0..200 {
        let (status, headers, body) = infer(
            &gateway,
            "/env/staging/v2/models/retail:credit/infer",
            &[("traceparent", traceparent), ("x-steward-tenant", "acme")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let response = headers["traceresponse"].to_str().unwrap();
        assert!(response.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!response.contains("00f067aa0ba902b7"), "a span of its own");
        if body["model_version"] == "2.0.0" {
            to_canary += 1;
        }
    }
    assert!(to_canary > 50 && to_canary < 150, "{to_canary}");
    let (status, _, body) = infer(
        &gateway,
        "/env/staging/v2/models/retail:credit/infer",
        &[("x-steward-tenant", "Not A Name")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    gateway.request_log.as_ref().unwrap().close();
    let records = records(&dir);
    // In a canary phase every request is logged, to the canary and to the stable version.
    assert_eq!(records.len(), 200);
    let canary_records = records
        .iter()
        .filter(|record| record["modelversion"] == "2.0.0")
        .count();
    assert_eq!(canary_records, to_canary);
    let record = &records[0];
    assert_eq!(record["specversion"], "1.0");
    assert_eq!(record["type"], "dev.steward.inference.logged");
    assert_eq!(record["traceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(record["tenant"], "acme");
    assert_eq!(record["requestid"], "req-7");
    assert_eq!(record["phase"], "canary");
    assert_eq!(record["environment"], "staging");
    assert_eq!(record["retentionclass"], "personal");
    let features = &record["data"]["inputs"][0];
    assert_eq!(features["pseudonymised"], "hmac-sha256");
    assert_eq!(
        features["data"][0],
        steward_core::audit::hmac_value(b"log key", &json!("44200")),
        "hashed as `steward audit hash 44200` hashes"
    );
    assert!(!record.to_string().contains("20350"));
    assert_eq!(record["data"]["outputs"][0]["shape"], json!([2, 2]));
    // The metrics carry the tenant, the log's outcomes and the features' summaries.
    let text = gateway.metrics.encode();
    assert!(
        text.contains(&format!(
            "steward_inference_requests_total{{model=\"retail:credit\",version=\"2.0.0\",environment=\"staging\",tenant=\"acme\",code=\"200\"}} {to_canary}"
        )),
        "{text}"
    );
    assert!(text.contains("steward_request_log_records_total{outcome=\"written\"} 200"));
    // Personal inputs are never summarised in metrics (which anyone on the port reads).
    assert!(
        !text.contains("steward_input_feature_values_total"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn outside_a_canary_phase_only_the_sample_is_logged() {
    let dir = temp_dir();
    let gateway = gateway(&dir, 0);
    // Weight 0 still names a canary: a canary phase. Without the rule, steady state.
    let mut table = Table::default();
    for (env, models) in &gateway.table().environments {
        table.environments.insert(env.clone(), models.clone());
    }
    gateway.swap(table);
    for _ in 0..20 {
        let (status, _, _) =
            infer(&gateway, "/env/staging/v2/models/retail:credit/infer", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    gateway.request_log.as_ref().unwrap().close();
    assert_eq!(records(&dir).len(), 0, "sample_bp 0 logs nothing");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn internal_inputs_are_summarised_per_feature() {
    let limits = Limits::default();
    let gateway = Arc::new(Gateway::new(limits.clone(), "test"));
    let mut table = Table::default();
    table
        .environments
        .entry("staging".into())
        .or_default()
        .insert(
            "retail:credit".into(),
            Arc::new(
                Deployment::new(
                    "retail:credit".into(),
                    "1.0.0".into(),
                    "sha256:1".into(),
                    model("logreg.onnx"),
                    &limits,
                )
                .with_classes(FieldClasses {
                    inputs: BTreeMap::from([("features".to_owned(), Classification::Internal)]),
                    outputs: BTreeMap::new(),
                }),
            ),
        );
    gateway.swap(table);
    for _ in 0..3 {
        let (status, _, _) =
            infer(&gateway, "/env/staging/v2/models/retail:credit/infer", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let text = gateway.metrics.encode();
    let feature =
        "model=\"retail:credit\",version=\"1.0.0\",environment=\"staging\",feature=\"features[0]\"";
    assert!(
        text.contains(&format!(
            "steward_input_feature_values_total{{{feature}}} 6"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "steward_input_feature_positive_total{{{feature}}} {}",
            (44200.0 + 61000.0) * 3.0
        )),
        "{text}"
    );
}
