//! The committed fixture models, served through the OIP routes, give onnxruntime's outputs
//! (`test_data/golden.json`, made by `test_data/generate.py`) within 1e-5; bad requests get
//! the status and JSON error body the real clients expect.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use steward_gateway::{Deployment, Gateway, Limits, OnnxModel, Table};
use tower::ServiceExt;

fn golden() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/golden.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

/// A token allowed to pin (tests add it to their tables with `pinner`).
const PIN_ID: &str = "00112233445566ff";
const PIN_SECRET: &str = "aa00000000000000000000000000000000000000000000000000000000000000";

fn pin_token() -> String {
    format!("stw_{PIN_ID}_{PIN_SECRET}")
}

/// Lets the test token pin every deployment of the table.
fn allow_pins(table: &mut Table) {
    let grants = table
        .environments
        .iter()
        .flat_map(|(env, models)| models.keys().map(move |name| (env.clone(), name.clone())))
        .collect();
    table.pinners.insert(
        PIN_ID.into(),
        steward_gateway::Pinner {
            user: "pat".into(),
            secret_hash: steward_core::token::hash_secret(PIN_SECRET),
            grants,
        },
    );
}

fn gateway() -> Arc<Gateway> {
    let limits = Limits::default();
    let gateway = Arc::new(Gateway::new(limits.clone(), "test"));
    let mut table = Table::default();
    for (name, file) in [("retail:logreg", "logreg.onnx"), ("retail:mlp", "mlp.onnx")] {
        let bytes =
            std::fs::read(format!("{}/test_data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let model = Arc::new(OnnxModel::load(&bytes).unwrap());
        table
            .environments
            .entry("production".into())
            .or_default()
            .insert(
                name.into(),
                Arc::new(Deployment::new(
                    name.into(),
                    "1.0.0".into(),
                    "sha256:x".into(),
                    model,
                    &limits,
                )),
            );
    }
    allow_pins(&mut table);
    gateway.swap(table);
    gateway
}

async fn call(
    gateway: &Arc<Gateway>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", pin_token()))
        .body(body.map_or(Body::empty(), |body| Body::from(body.to_string())))
        .unwrap();
    let response = steward_gateway::oip::router(gateway.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn fixture_models_give_onnxruntimes_outputs() {
    let golden = golden();
    let gateway = gateway();
    for model in ["logreg", "mlp"] {
        let cases = golden["models"][model]["cases"].as_array().unwrap();
        // All cases in one batch, nested data.
        let rows: Vec<Value> = cases.iter().map(|case| case["features"].clone()).collect();
        let request = json!({"id": "batch-1", "inputs": [{"name": "features", "datatype": "FP32", "shape": [rows.len(), 6], "data": rows}]});
        let (status, content_type, body) = call(
            &gateway,
            "POST",
            &format!("/v2/models/retail:{model}/infer"),
            Some(request),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(content_type, "application/json");
        assert_eq!(body["id"], "batch-1");
        assert_eq!(body["model_name"], format!("retail:{model}"));
        assert_eq!(body["model_version"], "1.0.0");
        let output = &body["outputs"][0];
        assert_eq!(output["name"], "probabilities");
        assert_eq!(output["datatype"], "FP32");
        assert_eq!(output["shape"], json!([cases.len(), 2]));
        let data: Vec<f64> = output["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for (index, case) in cases.iter().enumerate() {
            for column in 0..2 {
                let want = case["probabilities"][column].as_f64().unwrap();
                let got = data[index * 2 + column];
                assert!(
                    (got - want).abs() <= 1e-5,
                    "{model} case {index} column {column}: {got} vs {want}"
                );
            }
        }
    }
}

#[tokio::test]
async fn metadata_health_and_errors_follow_the_protocol() {
    let gateway = gateway();
    let (status, _, body) = call(&gateway, "GET", "/v2/health/live", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"live": true})));
    let (status, _, body) = call(&gateway, "GET", "/v2/health/ready", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ready": true})));
    let (_, _, body) = call(&gateway, "GET", "/v2", None).await;
    assert_eq!(body["name"], "steward");
    let (status, _, body) = call(&gateway, "GET", "/v2/models/retail:mlp", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["platform"], "onnx_onnxv1");
    assert_eq!(body["versions"], json!(["1.0.0"]));
    assert_eq!(
        body["inputs"],
        json!([{"name": "features", "datatype": "FP32", "shape": [-1, 6]}])
    );
    assert_eq!(body["outputs"][0]["name"], "probabilities");
    let (status, _, body) = call(
        &gateway,
        "GET",
        "/v2/models/retail:mlp/versions/1.0.0/ready",
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"name": "retail:mlp", "ready": true}))
    );

    for (path, want) in [
        ("/v2/models/nope", StatusCode::NOT_FOUND),
        (
            "/v2/models/retail:mlp/versions/9.9.9",
            StatusCode::NOT_FOUND,
        ),
        ("/env/staging/v2/models/retail:mlp", StatusCode::NOT_FOUND),
    ] {
        let (status, content_type, body) = call(&gateway, "GET", path, None).await;
        assert_eq!(status, want, "{path}");
        assert_eq!(content_type, "application/json");
        assert!(body["error"].is_string(), "{body}");
    }
    let infer = "/v2/models/retail:logreg/infer";
    for (request, needle) in [
        (
            json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3]}]}),
            "needs 6 elements, data has 3",
        ),
        (
            json!({"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}),
            "is FP32 in the model, not FP64",
        ),
        (
            json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], "data": [1, 2, 3, 4, 5]}]}),
            "the model takes [-1, 6]",
        ),
        (
            json!({"inputs": [{"name": "other", "datatype": "FP32", "shape": [1], "data": [1]}]}),
            "input `features` is missing",
        ),
        (
            json!({"inputs": [{"name": "features", "datatype": "FLOAT", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}),
            "`datatype` must be one of",
        ),
        (json!({"inputs": "x"}), "`inputs` must be an array"),
        (
            json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}], "outputs": [{"name": "nope"}]}),
            "no output `nope`",
        ),
    ] {
        let (status, content_type, body) = call(&gateway, "POST", infer, Some(request)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(content_type, "application/json");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(needle), "{message} does not say {needle}");
    }
}

#[tokio::test]
async fn binary_tensors_in_and_out_as_tritonclient_sends_them() {
    let golden = golden();
    let gateway = gateway();
    let cases = golden["models"]["mlp"]["cases"].as_array().unwrap();
    let mut blob = Vec::new();
    for case in cases {
        for value in case["features"].as_array().unwrap() {
            blob.extend((value.as_f64().unwrap() as f32).to_le_bytes());
        }
    }
    let header = json!({
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [cases.len(), 6], "parameters": {"binary_data_size": blob.len()}}],
        "parameters": {"binary_data_output": true},
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(&blob);
    let request = Request::builder()
        .method("POST")
        .uri("/v2/models/retail:mlp/infer")
        .header("content-type", "application/octet-stream")
        .header("inference-header-content-length", header.len())
        .body(Body::from(body))
        .unwrap();
    let response = steward_gateway::oip::router(gateway.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let length: usize = response.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&bytes[..length]).unwrap();
    let output = &json["outputs"][0];
    assert!(output.get("data").is_none(), "{json}");
    assert_eq!(
        output["parameters"]["binary_data_size"],
        cases.len() * 2 * 4
    );
    let values: Vec<f32> = bytes[length..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for (index, case) in cases.iter().enumerate() {
        for column in 0..2 {
            let want = case["probabilities"][column].as_f64().unwrap();
            assert!(
                (f64::from(values[index * 2 + column]) - want).abs() <= 1e-5,
                "case {index}"
            );
        }
    }
    // A size that claims more than was sent, and bytes nobody claims, are refused.
    for (size, extra) in [(blob.len() + 4, 0), (blob.len(), 4)] {
        let header = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [cases.len(), 6], "parameters": {"binary_data_size": size}}]}).to_string();
        let mut body = header.clone().into_bytes();
        body.extend(&blob);
        body.extend(vec![0u8; extra]);
        let request = Request::builder()
            .method("POST")
            .uri("/v2/models/retail:mlp/infer")
            .header("inference-header-content-length", header.len())
            .body(Body::from(body))
            .unwrap();
        let response = steward_gateway::oip::router(gateway.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}

#[tokio::test]
async fn metrics_count_requests_latency_and_confidence_per_deployment() {
    let gateway = gateway();
    let good = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 6], "data": [[44200, 0.29, 29, 3, 1, 20350], [31900, 0.13, 42, 4, 0, 10050]]}]});
    let bad =
        json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1]}]});
    for body in [good.clone(), good, bad] {
        call(
            &gateway,
            "POST",
            "/v2/models/retail:logreg/infer",
            Some(body),
        )
        .await;
    }
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = steward_gateway::oip::router(gateway.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let labels = r#"model="retail:logreg",version="1.0.0",environment="production",tenant="""#;
    assert!(
        text.contains(&format!(
            "steward_inference_requests_total{{{labels},code=\"200\"}} 2"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "steward_inference_requests_total{{{labels},code=\"400\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "steward_inference_duration_seconds_count{{{labels}}} 3"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "steward_prediction_confidence_count{{{labels}}} 4"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn readiness_waits_for_the_first_table_and_unknown_paths_answer_json() {
    let fresh = Arc::new(Gateway::new(Limits::default(), "test"));
    let (status, _, body) = call(&fresh, "GET", "/v2/health/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    fresh.swap(Table::default());
    let (status, _, _) = call(&fresh, "GET", "/v2/health/ready", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v2/models/retail:mlp/config",
        "/v2/repository/index",
        "/env/staging/v2/models/x/stats",
    ] {
        let (status, content_type, body) = call(&gateway(), "GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(content_type, "application/json");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_shadow_gets_copies_off_the_response_path_and_its_differences_are_counted() {
    let limits = Limits::default();
    let gateway = Arc::new(Gateway::new(limits.clone(), "test"));
    let load = |file: &str| {
        let bytes =
            std::fs::read(format!("{}/test_data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        Arc::new(OnnxModel::load(&bytes).unwrap())
    };
    let deployment = |version: &str, file: &str| {
        Arc::new(Deployment::new(
            "retail:credit".into(),
            version.into(),
            format!("sha256:{version}"),
            load(file),
            &limits,
        ))
    };
    let mut table = Table::default();
    table
        .environments
        .entry("production".into())
        .or_default()
        .insert("retail:credit".into(), deployment("1.0.0", "logreg.onnx"));
    table.shadows.insert(
        ("production".into(), "retail:credit".into()),
        steward_gateway::Shadow {
            deployment: deployment("2.0.0", "mlp.onnx"),
            share_bp: 10_000,
        },
    );
    allow_pins(&mut table);
    gateway.swap(table);
    let request = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [44200, 0.29, 29, 3, 1, 20350]}]});
    for _ in 0..5 {
        let (status, _, body) = call(
            &gateway,
            "POST",
            "/v2/models/retail:credit/infer",
            Some(request.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["model_version"], "1.0.0",
            "the shadow's answer is never returned"
        );
    }
    let labels = r#"model="retail:credit",version="2.0.0",environment="production",tenant="""#;
    let mut text = String::new();
    for _ in 0..100 {
        text = gateway.metrics.encode();
        if text.contains(&format!(
            "steward_shadow_runs_total{{{labels},code=\"differ\"}} 5"
        )) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        text.contains(&format!(
            "steward_shadow_runs_total{{{labels},code=\"differ\"}} 5"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("steward_shadow_difference_count{{{labels}}} 5")),
        "{text}"
    );
    // Pinned requests are not copied.
    call(
        &gateway,
        "POST",
        "/v2/models/retail:credit/versions/1.0.0/infer",
        Some(request),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(gateway.metrics.encode().contains(&format!(
        "steward_shadow_runs_total{{{labels},code=\"differ\"}} 5"
    )));
}

#[tokio::test]
async fn a_kill_switch_stops_inference_but_metadata_still_describes_the_pinned_version() {
    let gateway = gateway();
    let mut table = Table::default();
    for (env, models) in &gateway.table().environments {
        table.environments.insert(env.clone(), models.clone());
    }
    allow_pins(&mut table);
    table
        .flags
        .entry(("production".into(), "retail:logreg".into()))
        .or_default()
        .insert(
            "serving".into(),
            steward_gateway::Flag {
                enabled: false,
                fallback: None,
            },
        );
    gateway.swap(table);
    let (status, _, body) = call(
        &gateway,
        "GET",
        "/v2/models/retail:logreg/versions/1.0.0",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["versions"], json!(["1.0.0"]));
    let request = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]});
    let (status, _, body) = call(
        &gateway,
        "POST",
        "/v2/models/retail:logreg/versions/1.0.0/infer",
        Some(request),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("switched off"));
}
