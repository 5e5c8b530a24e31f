//! A deployment served by an external OIP server: the upstream here is another gateway on
//! a real socket (an OIP server like Triton or MLServer; CI also runs MLServer). Inference,
//! metadata, trace propagation and error mapping go through the same routes as in-process
//! models.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use steward_gateway::reqlog::LogConfig;
use steward_gateway::upstream::{Upstream, UpstreamConfig};
use steward_gateway::{Deployment, Gateway, Limits, OnnxModel, Table};
use tower::ServiceExt;

async fn serve_upstream(log_dir: &std::path::Path) -> (String, Arc<Gateway>) {
    let limits = Limits::default();
    let gateway = Gateway::new(limits.clone(), "upstream")
        .with_request_log(LogConfig {
            dir: log_dir.to_owned(),
            queue_records: 1_000,
            queue_bytes: steward_gateway::reqlog::QUEUE_BYTES_DEFAULT,
            sample_bp: 10_000,
            key: b"k".to_vec(),
        })
        .unwrap();
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/logreg.onnx"
    ))
    .unwrap();
    let mut table = Table::default();
    table
        .environments
        .entry("production".into())
        .or_default()
        .insert(
            "bank:scorer".into(),
            Arc::new(Deployment::new(
                "bank:scorer".into(),
                "7".into(),
                "sha256:7".into(),
                Arc::new(OnnxModel::load(&bytes).unwrap()),
                &limits,
            )),
        );
    gateway.swap(table);
    let gateway = Arc::new(gateway);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = steward_gateway::oip::router(gateway.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), gateway)
}

async fn call(
    gateway: &Arc<Gateway>,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = steward_gateway::oip::router(gateway.clone())
        .oneshot(
            request
                .body(body.map_or(Body::empty(), |body| Body::from(body.to_string())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_deployment_is_served_like_an_in_process_one() {
    let log_dir = std::env::temp_dir().join(format!(
        "steward-upstream-{}",
        steward_gateway::trace::random_id()
    ));
    let (url, upstream_gateway) = serve_upstream(&log_dir).await;
    let config = UpstreamConfig::parse(
        json!({"url": url, "model": "bank:scorer", "timeout_ms": 5000})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let upstream = Arc::new(Upstream::connect(config).await.unwrap());
    assert_eq!(upstream.inputs[0].name, "features");
    let limits = Limits::default();
    let gateway = Arc::new(Gateway::new(limits.clone(), "test"));
    let mut table = Table::default();
    table
        .environments
        .entry("production".into())
        .or_default()
        .insert(
            "retail:credit".into(),
            Arc::new(Deployment::new(
                "retail:credit".into(),
                "2.0.0".into(),
                "sha256:2".into(),
                upstream,
                &limits,
            )),
        );
    gateway.swap(table);

    let (status, metadata) = call(&gateway, "GET", "/v2/models/retail:credit", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{metadata}");
    assert_eq!(
        metadata["platform"], "onnx_onnxv1",
        "the upstream's platform"
    );
    assert_eq!(metadata["inputs"][0]["shape"], json!([-1, 6]));

    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/golden.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let cases = golden["models"]["logreg"]["cases"].as_array().unwrap();
    let rows: Vec<Value> = cases.iter().map(|case| case["features"].clone()).collect();
    let request = json!({"id": "up-1", "inputs": [{"name": "features", "datatype": "FP32", "shape": [rows.len(), 6], "data": rows}]});
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, answer) = call(
        &gateway,
        "POST",
        "/v2/models/retail:credit/infer",
        Some(request),
        &[("traceparent", traceparent)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["model_version"], "2.0.0");
    assert_eq!(answer["id"], "up-1");
    let data = answer["outputs"][0]["data"].as_array().unwrap();
    for (index, case) in cases.iter().enumerate() {
        for column in 0..2 {
            let want = case["probabilities"][column].as_f64().unwrap();
            let got = data[index * 2 + column].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-5, "case {index}: {got} vs {want}");
        }
    }
    // The upstream saw the caller's trace and request id.
    upstream_gateway.request_log.as_ref().unwrap().close();
    let day = std::fs::read_dir(log_dir.join("standard"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: Value = serde_json::from_str(
        std::fs::read_to_string(day)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["traceid"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(record["requestid"], "up-1");

    // A version the upstream does not serve to this caller (pinning needs a token there):
    // the deployment's fault, 502, not the caller's.
    let pinned = UpstreamConfig::parse(
        json!({"url": url, "model": "bank:scorer", "version": "7"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let pinned = Upstream::connect(pinned).await.unwrap();
    let err = pinned
        .infer(
            &[],
            None,
            None,
            &steward_gateway::trace::TraceContext::from_headers(&Default::default()),
            100,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, steward_gateway::upstream::UpstreamError::Failed(message) if message.contains("failed") && !message.contains("127.0.0.1")),
        "{err:?}"
    );
    // The upstream's refusal of the input is the caller's 400; an upstream that is gone
    // is not connected.
    let short = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], "data": [1, 2, 3, 4, 5]}]});
    let (status, answer) = call(
        &gateway,
        "POST",
        "/v2/models/retail:credit/infer",
        Some(short),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.contains("refused the request as invalid"),
        "{message}"
    );
    assert!(
        !message.contains("127.0.0.1"),
        "no internal address: {message}"
    );
    let gone = UpstreamConfig::parse(br#"{"url": "http://127.0.0.1:9", "model": "m"}"#).unwrap();
    let err = match Upstream::connect(gone).await {
        Err(err) => err,
        Ok(_) => panic!("an upstream that is not there was connected"),
    };
    assert!(
        err.contains("upstream http://127.0.0.1:9/v2/models/m"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(log_dir);
}
