//! `steward demo`: the lifecycle built so far, on a fresh temporary data directory, through
//! the real API. Every step prints what it did and what the server answered; any step that
//! does not get the answer it should makes the demo fail (exit 1).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use steward_server::config::{Config, RawConfig};

use crate::client::{Client, ClientError};
use crate::commands::register_dir;
use crate::register::Layout;

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

fn expect_refused(res: Result<Value, ClientError>, status: u16) -> anyhow::Result<String> {
    match res {
        Err(ClientError::Api {
            status: got,
            code,
            message,
            details,
        }) if got == status => {
            println!("   refused as expected: {got} {code}: {message}");
            Ok(details.to_string())
        }
        Err(err) => bail!("expected a {status} refusal, got: {err}"),
        Ok(value) => bail!("expected a {status} refusal, but it succeeded: {value}"),
    }
}

async fn start(
    data_dir: &Path,
) -> anyhow::Result<(
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
    std::sync::Arc<steward_gateway::Gateway>,
)> {
    let overrides = RawConfig {
        listen_addr: Some("127.0.0.1:0".into()),
        // The demo's webhook receiver (if any) listens on loopback.
        webhook_private_addresses: Some(true),
        ..RawConfig::default()
    };
    let config = Config::load(data_dir, &overrides)?;
    let app = steward_server::App::open(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The data plane too: what the aliases point to is served over OIP.
    let gateway = crate::serving::start(&app)?;
    let data_plane = steward_gateway::oip::router(gateway.clone());
    let handle = tokio::spawn(steward_server::serve_with(
        app,
        listener,
        async move {
            let _ = stop_rx.await;
        },
        data_plane,
    ));
    Ok((url, stop_tx, handle, gateway))
}

/// The gateway's fixture models (ONNX, synthetic credit data; see
/// `crates/steward-gateway/test_data/generate.py`): a logistic regression and a small MLP.
const LOGREG_ONNX: &[u8] = include_bytes!("../../steward-gateway/test_data/logreg.onnx");
const MLP_ONNX: &[u8] = include_bytes!("../../steward-gateway/test_data/mlp.onnx");

/// The fixture models' schema: the six features of an applicant are personal data.
const SCHEMA_YAML: &str = "schema:\n  inputs: [{name: features, datatype: FP32, shape: [-1, 6], classification: personal, description: 'income, debt ratio, age, credit lines, late payments, loan amount'}]\n  outputs: [{name: probabilities, datatype: FP32, shape: [-1, 2], classification: internal}]\n";

/// One OIP call: the status and the JSON answer.
async fn oip(
    http: &reqwest::Client,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, Value)> {
    let mut request = match body {
        Some(body) => http.post(url).json(body),
        None => http.get(url),
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Waits (up to 10 s) until `url` answers metadata listing exactly `versions`.
async fn wait_serving(http: &reqwest::Client, url: &str, versions: &[&str]) -> anyhow::Result<()> {
    for _ in 0..40 {
        let (status, body) = oip(http, url, None, &[]).await?;
        if status == 200 && body["versions"] == json!(versions) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    bail!("{url} did not serve {versions:?} within 10 s")
}

fn write_model_dir(dir: &Path, complete: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("model.onnx"), LOGREG_ONNX)?;
    std::fs::write(
        dir.join("preprocessing.json"),
        br#"{"scaler": "standard", "features": ["income", "debt_ratio", "age"]}"#,
    )?;
    std::fs::write(
        dir.join("requirements.txt"),
        "scikit-learn==1.3.0\nnumpy==1.26.4\n",
    )?;
    let mut yaml = String::from(
        "version: 1.0.0\nlicence: Apache-2.0\nintended_use: Score retail credit applications for manual review.\n\
         model_card:\n  description: Logistic regression on bureau and application data.\n  markdown: \"# Credit risk v1\\nA calibrated logistic regression.\"\n",
    );
    if complete {
        yaml.push_str(
            "  limitations: Not validated for small-business lending.\n  ethical_considerations: Age is a protected attribute; monitored for disparate impact.\n\
             \x20 authors: [alice]\n  contact: credit-models@example.com\n\
             out_of_scope_uses: [small-business lending, employment decisions]\n\
             metrics:\n  - {name: auc, value: 0.87, dataset: holdout-2026q3}\n  - {name: ks, value: 0.41}\n\
             training_config: {algorithm: logistic_regression, C: 0.5, seed: 7}\n\
             training_data:\n  - {name: applications-2025, location: s3://retail-data/applications/2025, digest: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', licence: internal, personal_data: true}\n\
             bias_assessment:\n  summary: Disparate impact ratio by age band is 0.91 (four-fifths rule met).\n  protected_attributes: [age, sex]\n  metrics: [{name: disparate_impact_age, value: 0.91}]\n  mitigations: Reweighing of the training sample.\n",
        );
    }
    std::fs::write(dir.join("steward.yaml"), yaml)?;
    Ok(())
}

/// The gates of a promotion answer that did not pass, as `gate: message` lines.
fn gates_not_passing(promotion: &Value) -> Vec<String> {
    promotion["evaluation"]["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|gate| gate["status"] != "pass")
        .map(|gate| {
            format!(
                "{}: {}",
                gate["gate"].as_str().unwrap_or("?"),
                gate["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn blocking(promotion: &Value) -> String {
    let gates = gates_not_passing(promotion);
    if gates.is_empty() {
        "every gate passes".into()
    } else {
        gates.join("; ")
    }
}

/// A synthetic sample of two features (deterministic), for the drift report.
fn write_sample(path: &Path, seed: u64) -> anyhow::Result<()> {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut text = String::from("income,debt_ratio\n");
    for _ in 0..400 {
        let income = 20_000.0 + 60_000.0 * (next() + next() + next()) / 3.0;
        let debt_ratio = 0.1 + 0.5 * next();
        text.push_str(&format!("{income:.0},{debt_ratio:.3}\n"));
    }
    std::fs::write(path, text)?;
    Ok(())
}

const DEMO_GATES: &str = "\
# Review boards per business unit, and the gates each promotion must pass (first match wins).
boards:
  retail:
    model-risk:
      members: {carol: security, lee: legal, alice: domain_expert}
  '*':
    cab:
      members: {lee: chair}
templates:
  - name: production
    production: true
    gates:
      checklist:
        roles: [compliance_officer, reviewer]
        items: [intended-use, limitations, evaluation, fairness, data-sources, monitoring-plan]
      dpo_sign_off: [high]
      drift: {psi_max: 0.2, ks_alpha: 0.05}
      api_compatibility: true
      change_record:
        cab: {board: cab, quorum: 1}
  - name: staging
    environments: [staging]
    gates:
      boards: [{board: model-risk, quorum: 2, including: [security]}]
  - name: default
";

pub async fn run(
    keep_serving: bool,
    reports: Option<&Path>,
    webhook: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    step(
        1,
        "Initialise a data directory (SQLite, local blob folder, log key, admin token)",
    );
    let initialised = steward_server::init(&data_dir, &RawConfig::default(), "admin").await?;
    println!(
        "   data directory {}; admin token in {} (mode 0600)",
        data_dir.display(),
        initialised.admin_token_path.display()
    );
    std::fs::write(data_dir.join("gates.yaml"), DEMO_GATES)?;
    println!("   review boards and deployment templates in gates.yaml");
    let (url, stop, handle, gateway) = start(&data_dir).await?;
    println!("   server listening on {url}");
    let admin = Client::new(&url, Some(initialised.admin_token.clone()));

    let hook = match (webhook, reports) {
        (Some(url), Some(dir)) => {
            let created = admin
                .post(
                    "/api/v1/webhooks",
                    &json!({"name": "demo-events", "url": url, "events": ["promotion.", "alias.", "calendar."]}),
                )
                .await?;
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join("webhook.secret"),
                created["secret"].as_str().unwrap_or_default(),
            )?;
            println!("   webhook `demo-events` subscribed: {url} (CloudEvents, signed)");
            created["id"].as_i64()
        }
        _ => None,
    };

    step(2, "Admin creates a business unit, users, roles and tokens");
    admin
        .post(
            "/api/v1/business-units",
            &json!({"name": "retail", "description": "Retail banking"}),
        )
        .await?;
    let people = [
        ("alice", "data_scientist", "retail"),
        ("dave", "mlops_engineer", "retail"),
        ("carol", "reviewer", "retail"),
        ("lee", "compliance_officer", "*"),
        ("paula", "data_protection_officer", "retail"),
        ("erin", "auditor", "*"),
    ];
    let mut tokens = std::collections::BTreeMap::new();
    for (name, role, scope) in people {
        admin
            .post(
                "/api/v1/users",
                &json!({"name": name, "display_name": name}),
            )
            .await?;
        admin
            .post(
                &format!("/api/v1/users/{name}/roles"),
                &json!({"role": role, "scope": scope}),
            )
            .await?;
        let token = admin
            .post(
                &format!("/api/v1/users/{name}/tokens"),
                &json!({"name": "demo"}),
            )
            .await?;
        tokens.insert(
            name,
            admin.with_token(token["token"].as_str().context("token in response")?),
        );
        println!("   {name}: {role} in {scope}");
    }
    let mut as_user = |name: &str| tokens.remove(name).context("user client");
    let (alice, dave, carol, lee, paula, erin) = (
        as_user("alice")?,
        as_user("dave")?,
        as_user("carol")?,
        as_user("lee")?,
        as_user("paula")?,
        as_user("erin")?,
    );

    step(3, "Alice registers a high-risk model");
    let model = json!({"business_unit": "retail", "name": "credit-risk", "description": "Retail credit default risk", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    alice.post("/api/v1/models", &model).await?;
    println!("   retail/credit-risk: EU AI Act high risk, internal tier 1");

    step(
        4,
        "An incomplete registration is refused, listing every missing field",
    );
    let incomplete = work.path().join("model-incomplete");
    write_model_dir(&incomplete, false)?;
    let details = match register_dir(
        &alice,
        "retail/credit-risk",
        &incomplete,
        Layout::Plain,
        None,
    )
    .await
    {
        Err(err) => match err.downcast::<ClientError>() {
            Ok(client_err) => expect_refused(Err(client_err), 422)?,
            Err(other) => return Err(other),
        },
        Ok(value) => bail!("incomplete registration succeeded: {value}"),
    };
    let missing: Value = serde_json::from_str(&details)?;
    println!(
        "   {} fields missing",
        missing["missing"].as_array().map_or(0, Vec::len)
    );

    step(
        5,
        "The complete registration is accepted; the version is named by its digest",
    );
    let complete = work.path().join("model-complete");
    write_model_dir(&complete, true)?;
    let registered =
        register_dir(&alice, "retail/credit-risk", &complete, Layout::Plain, None).await?;
    let digest = registered["digest"].as_str().context("digest")?.to_owned();
    println!("   version 1.0.0 = {digest}");

    step(
        6,
        "Separation of duties: the author cannot approve; a reviewer can",
    );
    expect_refused(
        alice
            .post(
                &format!("/api/v1/versions/{digest}/approvals"),
                &json!({"comment": "mine"}),
            )
            .await,
        403,
    )?;
    carol
        .post(
            &format!("/api/v1/versions/{digest}/approvals"),
            &json!({"comment": "Card and bias assessment reviewed"}),
        )
        .await?;
    println!("   carol (reviewer) signed off");

    step(
        7,
        "Promotion to staging: blocked by the review board's quorum, then approved",
    );
    let check = dave
        .get(&format!(
            "/api/v1/versions/{digest}/gates?environment=staging"
        ))
        .await?;
    for line in crate::promote::gate_text(&check).lines() {
        println!("   {line}");
    }
    let promote = |digest: &str, environment: &str, reason: &str| json!({"digest": digest, "environment": environment, "reason": reason});
    expect_refused(
        alice
            .post(
                "/api/v1/promotions",
                &promote(&digest, "staging", "first release"),
            )
            .await,
        403,
    )?;
    let requested = dave
        .post(
            "/api/v1/promotions",
            &promote(&digest, "staging", "first release"),
        )
        .await?;
    let staging_id = requested["id"].as_i64().context("promotion id")?;
    println!(
        "   dave requested promotion {staging_id}: {} ({})",
        requested["state"].as_str().unwrap_or("?"),
        blocking(&requested)
    );
    let approvals = |id: i64| format!("/api/v1/promotions/{id}/approvals");
    expect_refused(alice.post(&approvals(staging_id), &json!({})).await, 403)?;
    println!("   alice sits on the board but authored the version: she never counts");
    let first = carol
        .post(
            &approvals(staging_id),
            &json!({"comment": "threat model reviewed"}),
        )
        .await?;
    println!(
        "   carol (security) approved: {} ({})",
        first["state"].as_str().unwrap_or("?"),
        blocking(&first)
    );
    let applied = lee
        .post(
            &approvals(staging_id),
            &json!({"comment": "contract terms fine"}),
        )
        .await?;
    if applied["state"] != "applied" {
        bail!("the quorum was reached but the promotion was not applied: {applied}");
    }
    println!("   lee (legal) approved: quorum of 2 including security reached, applied");

    step(
        8,
        "Promotion to production: blocked by a freeze window and a DPO sign-off, then applied",
    );
    admin.post("/api/v1/users/dave/certifications", &json!({"name": "responsible-ml-ops", "issued_at": "2026-01-01", "expires_at": "2030-01-01"})).await?;
    println!("   admin recorded dave's training certification (production needs one)");
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let freeze_window = json!({"name": "Quarter close", "kind": "freeze", "start": start, "duration": "P1D",
        "environments": ["production"], "reason": "books close"});
    let freeze = lee.post("/api/v1/calendar/windows", &freeze_window).await?;
    println!("   lee (compliance) froze production for the quarter close");
    let change = |change_type: &str| {
        json!({
            "type": change_type,
            "risk": {"impact": "high", "likelihood": "low", "notes": "Scores route applications to manual review; no automatic decline."},
            "traffic_share": 0.1,
            "rollback_plan": "Promote the previous version again; the alias moves back in one step.",
            "rollback_dependencies": {"data_pipeline_version": "applications-etl 2026.11.3", "feature_store_schema_version": "credit-features v7"},
            "pre_mortem": [{"id": "fm-1", "failure_mode": "Income arrives in cents after the ETL upgrade", "mitigation": "Range check on income in the pipeline; canary at 10%"}],
        })
    };
    let mut request = promote(&digest, "production", "first release");
    request["change"] = change("normal");
    let requested = dave.post("/api/v1/promotions", &request).await?;
    println!(
        "   the change record's impact statement, for non-technical readers:\n     {}",
        requested["impact_statement"].as_str().unwrap_or("?")
    );
    let production_id = requested["id"].as_i64().context("promotion id")?;
    println!("   dave requested promotion {production_id}: pending, blocked by:");
    for gate in gates_not_passing(&requested) {
        println!("     {gate}");
    }
    let (reference, current) = (
        work.path().join("reference.csv"),
        work.path().join("validation.csv"),
    );
    write_sample(&reference, 1)?;
    write_sample(&current, 2)?;
    let report = crate::drift::report(&reference, &current, &[])?;
    dave.post(
        &format!("/api/v1/versions/{digest}/drift"),
        &json!({"report": report}),
    )
    .await?;
    println!("   dave attached the validation-vs-training drift report (PSI, KS per feature)");
    let items = steward_core::promotion::DEFAULT_CHECKLIST;
    carol
        .post(
            &approvals(production_id),
            &json!({"checklist": items, "mitigated": ["fm-1"], "comment": "model card reviewed"}),
        )
        .await?;
    println!(
        "   carol signed off the model-card checklist ({}) and checked the pre-mortem's mitigation",
        items.join(", ")
    );
    lee.post(
        &approvals(production_id),
        &json!({"comment": "CAB: approved for the next window"}),
    )
    .await?;
    println!("   lee approved the normal change for the change advisory board");
    let after_dpo = paula
        .post(
            &approvals(production_id),
            &json!({"comment": "DPIA on file"}),
        )
        .await?;
    println!(
        "   paula (data protection officer) signed off; still {}: {}",
        after_dpo["state"].as_str().unwrap_or("?"),
        blocking(&after_dpo)
    );
    lee.delete(&format!("/api/v1/calendar/windows/{}", freeze["id"]))
        .await?;
    println!("   the quarter close ended (window deleted, kept in the history)");
    let applied = dave
        .post(
            &format!("/api/v1/promotions/{production_id}/apply"),
            &json!({}),
        )
        .await?;
    if applied["state"] != "applied" {
        bail!("production promotion not applied: {applied}");
    }
    let history = dave
        .get("/api/v1/models/retail/credit-risk/aliases/production/history")
        .await?;
    let seq = history["items"][0]["audit_seq"]
        .as_u64()
        .context("audit seq")?;
    println!("   dave applied it: production points at {digest} (audit entry {seq})");

    step(
        9,
        "An emergency change: a hotfix during a freeze, reviewed afterwards",
    );
    let hotfix_dir = work.path().join("model-hotfix");
    write_model_dir(&hotfix_dir, true)?;
    let yaml = std::fs::read_to_string(hotfix_dir.join("steward.yaml"))?;
    std::fs::write(
        hotfix_dir.join("steward.yaml"),
        yaml.replace("version: 1.0.0", "version: 1.0.1"),
    )?;
    std::fs::write(hotfix_dir.join("preprocessing.json"), br#"{"scaler": "standard", "features": ["income", "debt_ratio", "age"], "impute": "median"}"#)?;
    let hotfix = register_dir(
        &alice,
        "retail/credit-risk",
        &hotfix_dir,
        Layout::Plain,
        None,
    )
    .await?;
    let hotfix = hotfix["digest"].as_str().context("digest")?.to_owned();
    lee.post("/api/v1/calendar/windows", &freeze_window).await?;
    println!("   production is frozen again; 1.0.1 fixes missing-value handling (INC-42)");
    let mut emergency = promote(&hotfix, "production", "hotfix for INC-42");
    emergency["change"] = change("emergency");
    emergency["emergency_reason"] =
        json!("applications with a missing income get NaN scores (INC-42)");
    let done = dave.post("/api/v1/promotions", &emergency).await?;
    if done["state"] != "applied" {
        bail!("emergency promotion not applied: {done}");
    }
    let waived: Vec<&str> = done["evaluation"]["gates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|gate| gate["status"] == "waived")
        .filter_map(|gate| gate["gate"].as_str())
        .collect();
    println!(
        "   dave took the emergency path: applied at once; waived: {}",
        waived.join(", ")
    );
    let emergency_id = done["id"].as_i64().context("id")?;
    lee.post(
        &format!("/api/v1/promotions/{emergency_id}/review"),
        &json!({"comment": "justified; root cause tracked in CHG-77"}),
    )
    .await?;
    println!("   lee (compliance) reviewed it after the fact, as every emergency change must be");

    step(
        10,
        "The CI gate (`steward gate check --format sarif`) and the change data lake",
    );
    let check = dave
        .get(&format!(
            "/api/v1/versions/{digest}/gates?environment=production"
        ))
        .await?;
    let sarif = crate::promote::gate_sarif(&check);
    for result in sarif["runs"][0]["results"].as_array().into_iter().flatten() {
        println!(
            "   {:<7} {:<44} {}",
            result["level"].as_str().unwrap_or("?"),
            result["ruleId"].as_str().unwrap_or("?"),
            result["message"]["text"].as_str().unwrap_or("")
        );
    }
    println!(
        "   rolling back to 1.0.0 would {} (exit code {} in CI)",
        if check["allowed"] == true {
            "pass"
        } else {
            "block"
        },
        if check["allowed"] == true { 0 } else { 1 }
    );
    let exported = crate::lake::export(&admin, &work.path().join("lake")).await?;
    println!(
        "   change events for the data lake: {} Parquet file(s), partitioned by day, {} row(s)",
        exported.files.len(),
        exported.rows
    );
    if let Some(dir) = reports {
        std::fs::create_dir_all(dir)?;
        crate::lake::export(&admin, &dir.join("lake")).await?;
        std::fs::write(
            dir.join("gate.sarif"),
            serde_json::to_string_pretty(&sarif)?,
        )?;
        std::fs::write(
            dir.join("gate.junit.xml"),
            crate::promote::gate_junit(&check),
        )?;
        println!("   reports written to {}", dir.display());
    }

    if let Some(id) = hook {
        // The dispatcher sends committed events within a second or so; wait for the three
        // applications and the emergency review to be delivered.
        let mut applied = 0;
        for _ in 0..60 {
            let deliveries = admin
                .get(&format!("/api/v1/webhooks/{id}/deliveries?limit=1000"))
                .await?;
            let items = deliveries["items"].as_array().cloned().unwrap_or_default();
            if let Some(failed) = items.iter().find(|item| item["outcome"] != "delivered") {
                bail!("a webhook delivery failed: {failed}");
            }
            applied = items
                .iter()
                .filter(|item| item["type"] == "io.steward.promotion.apply")
                .count();
            if applied >= 3
                && items
                    .iter()
                    .any(|item| item["type"] == "io.steward.promotion.review")
            {
                println!(
                    "   the webhook received {} events, each signed and delivered once recorded",
                    items.len()
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        if applied < 3 {
            bail!("the webhook did not receive every promotion within 30 s");
        }
    }

    serving_scenes(
        &url,
        &alice,
        &dave,
        &lee,
        &work.path().join("model-mlp"),
        &gateway,
    )
    .await?;

    step(
        12,
        "The audit trail: checkpoint, verify, and an inclusion proof checked offline",
    );
    let checkpoint = admin.post("/api/v1/audit/checkpoints", &json!({})).await?;
    println!("   signed checkpoint at size {}", checkpoint["tree_size"]);
    let report = erin.get("/api/v1/audit/verify").await?;
    if report["ok"] != json!(true) {
        bail!("audit verification failed: {report}");
    }
    println!(
        "   erin (auditor) verified {} entries and {} checkpoints",
        report["entries"], report["checkpoints"]
    );
    let proof = erin.get(&format!("/api/v1/audit/proof/{seq}")).await?;
    let file = steward_core::audit::checkpoint::InclusionProofFile::parse(
        proof["tlog_proof"].as_str().unwrap_or_default(),
    )?;
    let public_key = steward_core::audit::checkpoint::NoteVerifier::parse(
        std::fs::read_to_string(data_dir.join("keys/log.pub"))?.trim(),
    )?;
    let entry = proof["entry"].as_str().unwrap_or_default();
    let checked = steward_core::audit::checkpoint::verify_inclusion_file(
        &file,
        entry.as_bytes(),
        &[public_key],
    )?;
    println!(
        "   entry {seq} is included in the log at size {} (checked with only the public key)",
        checked.size
    );

    step(
        13,
        "Packaging: a signed OCI layout (ModelPack), pushed, blocked by an advisory, pulled back",
    );
    let layout = work.path().join("credit-risk.oci");
    let options = steward_package::PackOptions {
        name: "retail/credit-risk".into(),
        tag: "2.0.0".into(),
        created: "1970-01-01T00:00:00Z".into(),
        classification_policy: None,
    };
    let (mut documentation, _) =
        crate::register::documentation(&complete, crate::register::Layout::Plain, Some("2.0.0"))?;
    documentation.artifacts.clear();
    let signer = steward_package::signing::load_signing_key(
        &data_dir.join(steward_server::state::PACKAGE_SIGNING_KEY_FILE),
    )?;
    let packed =
        steward_package::pack(&complete, &layout, &documentation, &options, Some(&signer))?;
    println!(
        "   built {} ({} layers); the same files always give this digest",
        packed.manifest_digest,
        packed.layers.len()
    );
    let pushed = crate::package::push(&alice, &layout, "retail/credit-risk", None).await?;
    println!(
        "   pushed: version 2.0.0 is {}",
        pushed["digest"].as_str().unwrap_or_default()
    );
    // A known vulnerability in a pinned dependency blocks deployment of the package.
    let advisory = json!({
        "id": "GHSA-demo-sklearn",
        "summary": "Sensitive data leakage in TfidfVectorizer",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "scikit-learn"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5.0"}]}]}],
        "database_specific": {"severity": "HIGH"},
    });
    admin
        .post("/api/v1/advisories", &json!({"records": [advisory]}))
        .await?;
    let vulnerable = dave
        .post(
            "/api/v1/promotions",
            &promote(
                packed.manifest_digest.as_str(),
                "staging",
                "ship the package",
            ),
        )
        .await?;
    let finding = gates_not_passing(&vulnerable)
        .into_iter()
        .find(|gate| gate.starts_with("vulnerabilities"))
        .context("the vulnerability gate did not block")?;
    println!("   promotion to staging blocked: {finding}");
    let pulled = work.path().join("pulled.oci");
    crate::package::pull(&erin, packed.manifest_digest.as_str(), &pulled).await?;
    let files = |root: &Path| -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut files = vec![
            (
                "index.json".to_owned(),
                std::fs::read(root.join("index.json"))?,
            ),
            (
                "oci-layout".to_owned(),
                std::fs::read(root.join("oci-layout"))?,
            ),
        ];
        for entry in std::fs::read_dir(root.join("blobs/sha256"))? {
            let entry = entry?;
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path())?,
            ));
        }
        files.sort();
        Ok(files)
    };
    if files(&layout)? != files(&pulled)? {
        bail!("the pulled layout differs from the pushed one");
    }
    println!("   pulled back by erin: every file identical to the pushed layout");
    // The weights are stored encrypted at rest; keys rotate without re-encrypting data.
    let sealed_dir = data_dir.join("blobs/sealed");
    let sealed_files: Vec<std::path::PathBuf> = std::fs::read_dir(&sealed_dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    let plaintext = b"demo weights: logistic regression coefficients 0.12 -0.7 1.3";
    for path in &sealed_files {
        if std::fs::read(path)?
            .windows(plaintext.len())
            .any(|w| w == plaintext)
        {
            bail!("a sealed blob holds its plaintext");
        }
    }
    println!(
        "   weights stored encrypted at rest: {} sealed blob(s) under blobs/sealed/, no plaintext copy",
        sealed_files.len()
    );
    let rotated = admin.post("/api/v1/keys/rotate", &json!({})).await?;
    println!(
        "   key rotated to version {}: {} data key(s) re-wrapped, no data re-encrypted",
        rotated["version"], rotated["data_keys_rewrapped"]
    );
    let verify_path = format!("/api/v1/versions/{}/verify", packed.manifest_digest);
    let verified = dave.post(&verify_path, &json!({})).await?;
    println!(
        "   dave re-verifies it as a deploy would: {} blobs re-hashed (weights decrypted), signature and provenance checked",
        verified["checked"]
    );
    let sealed_weights = &sealed_files[0];
    let original = std::fs::read(sealed_weights)?;
    let mut flipped = original.clone();
    flipped[0] ^= 1;
    std::fs::write(sealed_weights, &flipped)?;
    match dave.post(&verify_path, &json!({})).await {
        Err(err) => {
            println!("   one flipped bit in the encrypted weights: refused, audited: {err}")
        }
        Ok(value) => bail!("changed ciphertext verified: {value}"),
    }
    std::fs::write(sealed_weights, &original)?;
    let weights = steward_core::domain::Digest::of_bytes(
        b"demo weights: logistic regression coefficients 0.12 -0.7 1.3",
    );
    std::fs::write(
        layout.join("blobs/sha256").join(weights.hex()),
        b"poisoned weights",
    )?;
    match crate::package::push(&alice, &layout, "retail/credit-risk", None).await {
        Err(err) => println!("   a layout with a swapped weights file is refused: {err}"),
        Ok(value) => bail!("a tampered package was accepted: {value}"),
    }

    let _ = stop.send(());
    handle.await??;

    step(
        14,
        "Tampering is detected: a database entry, a blob, a checkpoint",
    );
    let verify = |dir: &Path| {
        let dir = dir.to_owned();
        async move {
            let config = Config::load(&dir, &RawConfig::default())?;
            let verifier = steward_server::state::load_verifier(&dir)?;
            let store = steward_store::Store::open(
                &config.database_url,
                steward_store::StoreOptions::default(),
            )
            .await?;
            let res =
                steward_server::routes::verify_log(&store, &config.log_origin, &verifier, &[])
                    .await;
            store.close().await;
            anyhow::Ok(
                res.map(|report| report.entries)
                    .map_err(|err| err.to_string()),
            )
        }
    };
    match verify(&data_dir).await? {
        Ok(entries) => println!("   original: {entries} entries verify"),
        Err(err) => bail!("the untouched log does not verify: {err}"),
    }
    for (what, from, to) in [
        (
            "an approval comment in an audit entry",
            &br#""comment":"Card and bias assessment reviewed""#[..],
            &br#""comment":"Card and bias assessment REVIEWED""#[..],
        ),
        (
            "a checkpoint's signature",
            b"\xe2\x80\x94 steward.local/audit ",
            b"\xe2\x80\x94 steward.local/audiT ",
        ),
    ] {
        let copy = work.path().join("tampered");
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&data_dir, &copy)?;
        let db = copy.join("steward.db");
        let mut bytes = std::fs::read(&db)?;
        let at = bytes
            .windows(from.len())
            .position(|window| window == from)
            .context("text to tamper with")?;
        bytes[at..at + to.len()].copy_from_slice(to);
        std::fs::write(&db, bytes)?;
        match verify(&copy).await? {
            Err(err) => println!("   tampered {what}: detected: {err}"),
            Ok(_) => bail!("tampering with {what} was not detected"),
        }
    }
    let copy = work.path().join("tampered");
    let blobs = steward_store::blob::BlobStore::open(&copy.join("blobs"))?;
    // The package's manifest: stored in plaintext (only weights are sealed), re-hashed on read.
    let mut manifest = std::fs::read(blobs.path(&packed.manifest_digest))?;
    let at = manifest.len() / 2;
    manifest[at] ^= 1;
    std::fs::write(blobs.path(&packed.manifest_digest), &manifest)?;
    match blobs.read_verified(&packed.manifest_digest, 1 << 20).await {
        Err(err) => println!("   tampered package manifest: detected: {err}"),
        Ok(_) => bail!("tampered blob was served"),
    }

    println!("\nDemo complete: every step got the answer it should.");
    if keep_serving {
        let overrides = RawConfig {
            listen_addr: Some("127.0.0.1:8080".into()),
            ..RawConfig::default()
        };
        let config = Config::load(&data_dir, &overrides)?;
        let app = steward_server::App::open(config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:8080")
            .await
            .context("binding 127.0.0.1:8080")?;
        println!(
            "Serving on http://127.0.0.1:8080 ; admin token: {}",
            data_dir.join("admin.token").display()
        );
        println!(
            "Try: STEWARD_TOKEN=$(cat {}) steward models show retail/credit-risk",
            data_dir.join("admin.token").display()
        );
        println!("OIP: curl http://127.0.0.1:8080/v2/models/retail:credit-risk");
        let gateway = crate::serving::start(&app)?;
        let data_plane = steward_gateway::oip::router(gateway);
        steward_server::serve_with(
            app,
            listener,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            data_plane,
        )
        .await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Step 11: the data plane. Production serves its version over OIP; in development a
/// canary takes a sticky share of users while a shadow gets copies; every canary-phase
/// request is logged with personal inputs keyed-hashed; a kill switch stops serving at
/// once; production rolls back.
async fn serving_scenes(
    url: &str,
    alice: &Client,
    dave: &Client,
    lee: &Client,
    mlp_dir: &Path,
    gateway: &steward_gateway::Gateway,
) -> anyhow::Result<()> {
    step(
        11,
        "Serving: OIP, a canary with a shadow, request logging, a kill switch, a rollback",
    );
    let http = reqwest::Client::new();
    let production = format!("{url}/v2/models/retail:credit-risk");
    wait_serving(&http, &production, &["1.0.1"]).await?;
    let one = json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [44200, 0.29, 29, 3, 1, 20350]}]});
    let (status, answer) = oip(&http, &format!("{production}/infer"), Some(&one), &[]).await?;
    if status != 200 {
        bail!("production inference failed: {status} {answer}");
    }
    println!(
        "   production serves 1.0.1 over the Open Inference Protocol: P(default) = {:.4}",
        answer["outputs"][0]["data"][1].as_f64().unwrap_or(f64::NAN)
    );

    // Development: 1.0.1 stable, 1.1.0 (an MLP) as a sticky canary, 1.0.0 as a shadow.
    write_model_dir(mlp_dir, true)?;
    std::fs::write(mlp_dir.join("model.onnx"), MLP_ONNX)?;
    let yaml = std::fs::read_to_string(mlp_dir.join("steward.yaml"))?;
    // Its schema marks the features as personal data: the request log keyed-hashes them.
    std::fs::write(
        mlp_dir.join("steward.yaml"),
        yaml.replace("version: 1.0.0", "version: 1.1.0") + SCHEMA_YAML,
    )?;
    let mlp = register_dir(alice, "retail/credit-risk", mlp_dir, Layout::Plain, None).await?;
    let mlp = mlp["digest"].as_str().context("digest")?.to_owned();
    let versions = alice
        .get("/api/v1/models/retail/credit-risk/versions")
        .await?;
    let digest_of = |label: &str| -> anyhow::Result<String> {
        versions["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|version| version["version"] == label)
            .and_then(|version| version["digest"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("version {label}"))
    };
    let (v100, v101) = (digest_of("1.0.0")?, digest_of("1.0.1")?);
    let applied = dave
        .post(
            "/api/v1/promotions",
            &json!({"digest": v101, "environment": "development", "reason": "try the hotfix with the new model beside it"}),
        )
        .await?;
    if applied["state"] != "applied" {
        bail!("promotion to development not applied: {applied}");
    }
    dave.put(
        "/api/v1/models/retail/credit-risk/routing/development",
        &json!({"canary": mlp, "canary_weight_bp": 2000, "sticky_header": "x-user-id",
                "shadow": v100, "shadow_share_bp": 10000, "reason": "MLP for 20 % of users; 1.0.0 shadowed"}),
    )
    .await?;
    println!(
        "   dave: development serves 1.0.1, canary 1.1.0 for 20 % of users (sticky by x-user-id), shadow 1.0.0 on every request"
    );
    let development = format!("{url}/env/development/v2/models/retail:credit-risk");
    wait_serving(&http, &development, &["1.0.1", "1.1.0"]).await?;
    let mut on_canary = 0;
    for user in 0..200 {
        let id = format!("user-{user}");
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (status, answer) = oip(
                &http,
                &format!("{development}/infer"),
                Some(&one),
                &[("x-user-id", &id), ("x-steward-tenant", "retail-web")],
            )
            .await?;
            if status != 200 {
                bail!("development inference failed: {status} {answer}");
            }
            seen.push(answer["model_version"].clone());
        }
        if seen[0] != seen[1] {
            bail!("{id} moved between versions: {seen:?}");
        }
        if seen[0] == "1.1.0" {
            on_canary += 1;
        }
    }
    println!(
        "   400 requests from 200 users: {on_canary} users on the canary, each user always on the same version"
    );
    // Shadow copies and the request log leave the response path; give them a moment.
    let mut shadowed = 0.0;
    let mut logged = 0;
    for _ in 0..40 {
        let text = gateway.metrics.encode();
        shadowed = text
            .lines()
            .filter(|line| {
                line.starts_with("steward_shadow_runs_total{")
                    && line.contains("environment=\"development\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        logged = gateway.request_log.as_ref().map_or(0, |log| log.counts().0);
        if shadowed >= 400.0 && logged >= 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    println!(
        "   the shadow answered {shadowed} copies off the response path (compared in steward_shadow_runs_total and steward_shadow_difference)"
    );
    if logged < 400 {
        bail!("only {logged} of 400 canary-phase requests were logged");
    }
    println!(
        "   every canary-phase request was logged as a CloudEvent ({logged} records; the canary's schema marks the features personal, so they are keyed-hashed); `steward requests export` writes them as JSONL or Parquet"
    );

    // The kill switch: lee (compliance) stops the development deployment.
    lee.put(
        "/api/v1/models/retail/credit-risk/flags/development/serving",
        &json!({"enabled": false, "reason": "scores look wrong for new-to-credit applicants"}),
    )
    .await?;
    let mut stopped = None;
    for _ in 0..40 {
        let (status, answer) = oip(&http, &format!("{development}/infer"), Some(&one), &[]).await?;
        if status == 503 {
            stopped = Some(answer["error"].as_str().unwrap_or_default().to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let message = stopped.context("the kill switch did not take effect within 4 s")?;
    println!("   lee turned the kill switch off: the next requests get 503: {message}");
    let (_, flag) = oip(
        &http,
        &format!("{url}/ofrep/v1/evaluate/flags/retail:credit-risk:development:serving"),
        Some(&json!({"context": {}})),
        &[],
    )
    .await?;
    println!(
        "   OFREP (OpenFeature) reports the flag to applications: value {}",
        flag["value"]
    );

    // Production rolls back from the hotfix to 1.0.0, at once.
    let rolled = dave
        .post(
            "/api/v1/models/retail/credit-risk/aliases/production/rollback",
            &json!({"reason": "1.0.1 raised the approval rate beyond the risk appetite"}),
        )
        .await?;
    wait_serving(&http, &production, &["1.0.0"]).await?;
    println!(
        "   dave rolled production back to {} (audited); the gateway serves it within a second",
        rolled["version"].as_str().unwrap_or("1.0.0")
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
