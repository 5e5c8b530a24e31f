//! Gateway overhead (issue 5): the latency an inference through the full governed path
//! adds over calling the runtime in-process, on the committed logistic regression with one
//! row. The governed path is the OIP router with a canary beside the stable version (10 %),
//! metrics on, request logging on (a canary phase logs every request) or off, a tenant and
//! a `traceparent`: JSON parsing, routing, the inference slot, the blocking hand-off,
//! per-feature summaries, the response, the log record.
//!
//! Rounds alternate the three ways so that machine noise falls on all of them alike; each
//! prints medians and p99 of every request, and the added latency (governed minus direct).
//!
//! Run: `cargo bench -p steward-gateway --bench overhead` (release build).
//! Environment: `OVERHEAD_ROUNDS` (default 10), `OVERHEAD_REQUESTS` per round and way
//! (default 5,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use steward_gateway::reqlog::LogConfig;
use steward_gateway::tensor::{Datatype, Elements, Tensor};
use steward_gateway::{Canary, Deployment, Gateway, Limits, OnnxModel, Table};
use tower::ServiceExt;

const ROW: [f64; 6] = [44200.0, 0.29, 29.0, 3.0, 1.0, 20350.0];

fn gateway(canary: bool, logging: Option<&std::path::Path>) -> Arc<Gateway> {
    let limits = Limits::default();
    let mut gateway = Gateway::new(limits.clone(), "bench");
    if let Some(dir) = logging {
        gateway = gateway
            .with_request_log(LogConfig {
                dir: dir.to_owned(),
                queue_records: 65_536,
                queue_bytes: steward_gateway::reqlog::QUEUE_BYTES_DEFAULT,
                sample_bp: 0,
                key: b"bench".to_vec(),
            })
            .unwrap();
    }
    let model = |file: &str| {
        let bytes =
            std::fs::read(format!("{}/test_data/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        Arc::new(OnnxModel::load(&bytes).unwrap())
    };
    let deployment = |version: &str| {
        Arc::new(Deployment::new(
            "retail:credit".into(),
            version.into(),
            format!("sha256:{version}"),
            model("logreg.onnx"),
            &limits,
        ))
    };
    let mut table = Table::default();
    table
        .environments
        .entry("production".into())
        .or_default()
        .insert("retail:credit".into(), deployment("1.0.0"));
    if canary {
        table.canaries.insert(
            ("production".into(), "retail:credit".into()),
            Canary {
                deployment: deployment("1.1.0"),
                rule: steward_core::routing::RoutingRule {
                    canary: Some("sha256:1.1.0".into()),
                    canary_weight_bp: 1_000,
                    sticky_header: None,
                    shadow: None,
                    shadow_share_bp: 0,
                },
            },
        );
    }
    gateway.swap(table);
    Arc::new(gateway)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let rounds: usize = std::env::var("OVERHEAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let per_round: usize = std::env::var("OVERHEAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log_dir = std::env::temp_dir().join(format!(
        "steward-overhead-{}",
        steward_gateway::trace::random_id()
    ));
    let plain = gateway(false, None);
    let logged = gateway(true, Some(&log_dir));
    let canary_only = gateway(true, None);
    let steward_gateway::Runtime::Onnx(direct_model) =
        plain.table().environments["production"]["retail:credit"]
            .runtime
            .clone()
    else {
        unreachable!("the bench serves an ONNX model")
    };
    let inputs = vec![Tensor {
        name: "features".into(),
        datatype: Datatype::Fp32,
        shape: vec![1, 6],
        elements: Elements::Float(ROW.to_vec()),
    }];
    let body = serde_json::json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": ROW}]}).to_string();
    // Built once, as the server does; a clone per request is an `Arc` clone.
    let (plain_router, logged_router) = (
        steward_gateway::oip::router(plain.clone()),
        steward_gateway::oip::router(logged.clone()),
    );
    let governed = move |router: axum::Router| {
        let body = body.clone();
        async move {
            let request = Request::builder()
                .method("POST")
                .uri("/v2/models/retail:credit/infer")
                .header("content-type", "application/json")
                .header("x-steward-tenant", "bench")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(Body::from(body))
                .unwrap();
            let started = Instant::now();
            let response = router.oneshot(request).await.unwrap();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            let elapsed = started.elapsed();
            assert!(bytes.starts_with(b"{\"model_name\""), "{bytes:?}");
            elapsed
        }
    };
    // Requests start on a runtime worker, as the server's connection tasks do.
    let measure = |router: axum::Router, count: usize| -> Vec<Duration> {
        let governed = governed.clone();
        runtime
            .block_on(runtime.spawn(async move {
                let mut samples = Vec::with_capacity(count);
                for _ in 0..count {
                    samples.push(governed(router.clone()).await);
                }
                samples
            }))
            .unwrap()
    };
    let (mut direct, mut off, mut on) = (Vec::new(), Vec::new(), Vec::new());
    // Warm-up.
    for _ in 0..1_000 {
        direct_model.run(&inputs).unwrap();
    }
    measure(plain_router.clone(), 1_000);
    measure(logged_router.clone(), 1_000);
    for _ in 0..rounds {
        for _ in 0..per_round {
            let started = Instant::now();
            std::hint::black_box(direct_model.run(std::hint::black_box(&inputs)).unwrap());
            direct.push(started.elapsed());
        }
        off.extend(measure(plain_router.clone(), per_round));
        on.extend(measure(logged_router.clone(), per_round));
    }
    for samples in [&mut direct, &mut off, &mut on] {
        samples.sort();
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| path | requests | p50 µs | p99 µs | added p50 µs | added p99 µs |\n|---|---|---|---|---|---|"
    );
    for (name, samples) in [
        ("runtime in-process (tract, direct call)", &direct),
        ("governed path, logging off (no canary)", &off),
        ("governed path, canary 10 %, logging on", &on),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            samples.len(),
            us(percentile(samples, 0.5)),
            us(percentile(samples, 0.99)),
            us(percentile(samples, 0.5)) - us(percentile(&direct, 0.5)),
            us(percentile(samples, 0.99)) - us(percentile(&direct, 0.99)),
        );
    }
    // The writer's cost per record (encoding only).
    {
        // What the handler holds already: the tensors (shared, not copied).
        let (shared_inputs, shared_outputs) = (
            Arc::new(inputs.clone()),
            Arc::new(direct_model.run(&inputs).unwrap()),
        );
        let record = || steward_gateway::reqlog::Record {
            time: std::time::SystemTime::now(),
            request_id: "r".into(),
            trace: steward_gateway::trace::TraceContext::from_headers(&Default::default()),
            model: "retail:credit".into(),
            version: "1.1.0".into(),
            digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                .into(),
            environment: "production".into(),
            tenant: Some("bench".into()),
            route: steward_gateway::reqlog::Route::Canary,
            canary_phase: true,
            status: 200,
            latency: Duration::from_micros(20),
            inputs: Some(shared_inputs.clone()),
            outputs: Some(shared_outputs.clone()),
            error: None,
            classes: Arc::new(Default::default()),
        };
        let sample = record();
        let mut out = Vec::with_capacity(1 << 20);
        let started = Instant::now();
        for _ in 0..200_000 {
            out.clear();
            steward_gateway::reqlog::encode_into(&sample, b"key", &mut out);
        }
        let encode = started.elapsed() / 200_000;
        let started = Instant::now();
        for _ in 0..200_000 {
            std::hint::black_box(record());
        }
        let build = started.elapsed() / 200_000;
        println!(
            "\nper record: encoding {encode:?} ({} bytes), building (hot path) {build:?}",
            out.len()
        );
    }
    // Throughput at saturation: 32 concurrent callers for `OVERHEAD_SECONDS` (default 3)
    // per round, logging off and on alternating; requests completed per second.
    let seconds: u64 = std::env::var("OVERHEAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let saturate = |router: axum::Router| -> f64 {
        let governed = governed.clone();
        runtime.block_on(async move {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let (router, governed) = (router.clone(), governed.clone());
                    tokio::spawn(async move {
                        let mut done = 0u64;
                        while Instant::now() < deadline {
                            governed(router.clone()).await;
                            done += 1;
                        }
                        done
                    })
                })
                .collect();
            let mut total = 0;
            for task in tasks {
                total += task.await.unwrap();
            }
            total as f64 / seconds as f64
        })
    };
    let canary_router = steward_gateway::oip::router(canary_only.clone());
    let (mut rps_off, mut rps_canary, mut rps_on) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        rps_off.push(saturate(plain_router.clone()));
        rps_canary.push(saturate(canary_router.clone()));
        rps_on.push(saturate(logged_router.clone()));
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (off_median, canary_median, on_median) = (
        median(&mut rps_off),
        median(&mut rps_canary),
        median(&mut rps_on),
    );
    println!(
        "\n| saturation, 32 callers, 5 rounds of {seconds} s | requests/s (median) |\n|---|---|\n| no canary, logging off | {off_median:.0} |\n| canary 10 %, logging off | {canary_median:.0} |\n| canary 10 %, logging on (every request) | {on_median:.0} |\n| cost of logging (canary on vs off) | {:.1} % |",
        100.0 * (1.0 - on_median / canary_median)
    );
    if let Some(log) = &logged.request_log {
        log.close();
        let (written, dropped, failed) = log.counts();
        println!("\nrequest log: {written} written, {dropped} dropped, {failed} failed");
    }
    let _ = std::fs::remove_dir_all(log_dir);
}
