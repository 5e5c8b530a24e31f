//! `steward promote`, `steward promotion …`, `steward gate check` and `steward drift attach`:
//! promotions through gates, and the CI gate with its report formats (text, JSON, SARIF
//! 2.1.0, JUnit XML).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::Output;
use crate::client::{Client, encode};

#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The version's digest (`sha256:…`).
    pub digest: String,
    /// The environment to promote it to.
    #[arg(long = "to")]
    pub environment: String,
    #[arg(long)]
    pub reason: String,
    /// Take the emergency path, with this written reason: approval gates and freezes give
    /// way, a compliance officer reviews it afterwards.
    #[arg(long)]
    pub emergency: Option<String>,
    /// The change record (YAML or JSON): type, risk, traffic_share, rollback_plan,
    /// rollback_dependencies, pre_mortem. Production promotions need one by default.
    #[arg(long)]
    pub change: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum PromotionCommand {
    /// A model's promotion requests, newest first.
    List {
        /// UNIT/MODEL.
        model: String,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// A request with its approvals and gates.
    Show { id: i64 },
    /// Approve a request (idempotent); it is applied when every gate passes.
    Approve {
        id: i64,
        #[arg(long, default_value = "")]
        comment: String,
        /// Review checklist items you checked (repeat or comma-separate).
        #[arg(long = "check", value_delimiter = ',')]
        checklist: Vec<String>,
        /// Accept the breaking schema changes the API compatibility gate lists.
        #[arg(long)]
        accept_breaking_changes: bool,
        /// Pre-mortem failure modes (ids) whose mitigations you checked are in place.
        #[arg(long, value_delimiter = ',')]
        mitigated: Vec<String>,
    },
    /// Reject a pending request.
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a pending request.
    Withdraw {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Evaluate a pending request again and apply it if every gate passes (e.g. after a freeze).
    Apply { id: i64 },
    /// Review an applied emergency promotion after the fact.
    Review {
        id: i64,
        #[arg(long)]
        comment: String,
    },
}

#[derive(Subcommand)]
pub enum GateCommand {
    /// Evaluate every gate of promoting DIGEST to ENV without changing anything; exits 0 when
    /// it would pass and 1 when it would block.
    Check {
        digest: String,
        #[arg(long = "to")]
        environment: String,
        #[arg(long, value_enum, default_value_t = GateFormat::Text)]
        format: GateFormat,
        /// Evaluate as the emergency path would.
        #[arg(long)]
        emergency: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

/// `steward drift attach`: computes the report locally and attaches it to the version.
#[derive(clap::Args)]
pub struct DriftAttachArgs {
    pub digest: String,
    #[arg(long)]
    pub reference: PathBuf,
    #[arg(long)]
    pub current: PathBuf,
    #[arg(long, value_delimiter = ',')]
    pub column: Vec<String>,
}

pub async fn promote(
    client: &Client,
    output: Output,
    args: PromoteArgs,
) -> anyhow::Result<ExitCode> {
    let change: Option<Value> = match &args.change {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                serde_saphyr::from_str(&text)
                    .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?,
            )
        }
        None => None,
    };
    let body = json!({
        "digest": args.digest, "environment": args.environment, "reason": args.reason,
        "emergency_reason": args.emergency, "change": change,
    });
    let value = client.post("/api/v1/promotions", &body).await?;
    show_promotion(output, &value);
    Ok(ExitCode::SUCCESS)
}

pub async fn promotion(
    client: &Client,
    output: Output,
    command: PromotionCommand,
) -> anyhow::Result<ExitCode> {
    let value = match command {
        PromotionCommand::List { model, limit } => {
            let (unit, name) = model
                .split_once('/')
                .ok_or_else(|| anyhow::anyhow!("`{model}` is not UNIT/MODEL"))?;
            let query = limit.map(|limit| format!("?limit={limit}")).unwrap_or_default();
            let value = client
                .get(&format!("/api/v1/models/{}/{}/promotions{query}", encode(unit), encode(name)))
                .await?;
            crate::commands::print_value(
                output,
                &value,
                &["id", "environment", "state", "digest", "requested_by", "requested_at", "emergency"],
            );
            return Ok(ExitCode::SUCCESS);
        }
        PromotionCommand::Show { id } => client.get(&format!("/api/v1/promotions/{id}")).await?,
        PromotionCommand::Approve {
            id,
            comment,
            checklist,
            accept_breaking_changes,
            mitigated,
        } => {
            client
                .post(
                    &format!("/api/v1/promotions/{id}/approvals"),
                    &json!({"comment": comment, "checklist": checklist, "accept_breaking_changes": accept_breaking_changes, "mitigated": mitigated}),
                )
                .await?
        }
        PromotionCommand::Reject { id, reason } => {
            client
                .post(&format!("/api/v1/promotions/{id}/reject"), &json!({"reason": reason}))
                .await?
        }
        PromotionCommand::Withdraw { id, reason } => {
            client
                .post(&format!("/api/v1/promotions/{id}/withdraw"), &json!({"reason": reason}))
                .await?
        }
        PromotionCommand::Apply { id } => {
            client
                .post(&format!("/api/v1/promotions/{id}/apply"), &json!({}))
                .await?
        }
        PromotionCommand::Review { id, comment } => {
            client
                .post(&format!("/api/v1/promotions/{id}/review"), &json!({"comment": comment}))
                .await?
        }
    };
    show_promotion(output, &value);
    Ok(ExitCode::SUCCESS)
}

fn show_promotion(output: Output, value: &Value) {
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        return;
    }
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_owned();
    println!(
        "Promotion {} of {}/{} to {}: {}{}",
        value["id"],
        text("business_unit"),
        text("model"),
        text("environment"),
        text("state"),
        if value["emergency"] == json!(true) {
            " (emergency)"
        } else {
            ""
        }
    );
    println!("  version    {}", text("digest"));
    println!(
        "  requested  by {} at {}, expires {}",
        text("requested_by"),
        text("requested_at"),
        text("expires_at")
    );
    if let Some(closed_by) = value["closed_by"].as_str() {
        println!(
            "  closed     by {closed_by} at {} {}",
            text("closed_at"),
            value["close_reason"].as_str().unwrap_or("")
        );
    }
    if let Some(statement) = value["impact_statement"].as_str() {
        println!("  impact     {statement}");
    }
    if value["already_approved"] == json!(true) {
        println!("  (you had approved it already; nothing changed)");
    }
    for approval in value["approvals"].as_array().into_iter().flatten() {
        println!(
            "  approved   by {} at {} {}",
            approval["approver"].as_str().unwrap_or("?"),
            approval["created_at"].as_str().unwrap_or("?"),
            approval["comment"].as_str().unwrap_or("")
        );
    }
    if let Some(review) = value["review"].as_object() {
        match review.get("reviewed_by").and_then(Value::as_str) {
            Some(by) => println!("  reviewed   by {by}"),
            None => println!("  review     due (emergency promotion)"),
        }
    }
    let gates = if value["evaluation"].is_object() {
        &value["evaluation"]["gates"]
    } else {
        &value["recorded_gates"]["gates"]
    };
    for gate in gates.as_array().into_iter().flatten() {
        println!(
            "  {:<8} {:<22} {}",
            gate["status"].as_str().unwrap_or("?"),
            gate["gate"].as_str().unwrap_or("?"),
            gate["message"].as_str().unwrap_or("")
        );
    }
}

pub async fn gate(client: &Client, command: GateCommand) -> anyhow::Result<ExitCode> {
    let GateCommand::Check {
        digest,
        environment,
        format,
        emergency,
    } = command;
    let value = client
        .get(&format!(
            "/api/v1/versions/{}/gates?environment={}&emergency={emergency}",
            encode(&digest),
            encode(&environment)
        ))
        .await?;
    let text = match format {
        GateFormat::Text => gate_text(&value),
        GateFormat::Json => serde_json::to_string_pretty(&value)?,
        GateFormat::Sarif => serde_json::to_string_pretty(&gate_sarif(&value))?,
        GateFormat::Junit => gate_junit(&value),
    };
    println!("{text}");
    Ok(if value["allowed"] == json!(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn gates(value: &Value) -> impl Iterator<Item = &Value> {
    value["gates"].as_array().into_iter().flatten()
}

fn subject(value: &Value) -> String {
    format!(
        "{}@{} → {}",
        value["model"].as_str().unwrap_or("?"),
        value["version"].as_str().unwrap_or("?"),
        value["environment"].as_str().unwrap_or("?")
    )
}

pub fn gate_text(value: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Gates for {} ({}), template `{}`:",
        subject(value),
        value["digest"].as_str().unwrap_or("?"),
        value["template"].as_str().unwrap_or("?")
    );
    for gate in gates(value) {
        let _ = writeln!(
            out,
            "  {:<8} {:<22} {}",
            gate["status"].as_str().unwrap_or("?").to_uppercase(),
            gate["gate"].as_str().unwrap_or("?"),
            gate["message"].as_str().unwrap_or("")
        );
    }
    let verdict = if value["allowed"] == json!(true) {
        "would pass"
    } else {
        "would block"
    };
    let _ = write!(out, "The promotion {verdict}.");
    out
}

/// SARIF 2.1.0: one rule per gate policy, one result per gate (`pass` results included, so
/// a report shows what was checked, not only what failed).
pub fn gate_sarif(value: &Value) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let subject_name = subject(value);
    for gate in gates(value) {
        let policy = gate["policy"].as_str().unwrap_or("steward.gate").to_owned();
        let index = match rule_ids.iter().position(|id| *id == policy) {
            Some(index) => index,
            None => {
                rule_ids.push(policy.clone());
                rules.push(json!({
                    "id": policy,
                    "name": gate["gate"],
                    "shortDescription": {"text": format!("Steward promotion gate `{}`", gate["gate"].as_str().unwrap_or("?"))},
                }));
                rule_ids.len() - 1
            }
        };
        let status = gate["status"].as_str().unwrap_or("block");
        let (kind, level) = match status {
            "pass" => ("pass", "none"),
            "waived" => ("fail", "warning"),
            _ => ("fail", "error"),
        };
        results.push(json!({
            "ruleId": policy,
            "ruleIndex": index,
            "kind": kind,
            "level": level,
            "message": {"text": format!("{status}: {}", gate["message"].as_str().unwrap_or(""))},
            "locations": [{"logicalLocations": [{
                "name": subject_name,
                "fullyQualifiedName": format!("{}@{}", value["model"].as_str().unwrap_or("?"), value["digest"].as_str().unwrap_or("?")),
                "kind": "module",
            }]}],
            "properties": {"gate": gate["gate"], "status": status},
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "steward",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
            "properties": {
                "environment": value["environment"], "digest": value["digest"],
                "template": value["template"], "allowed": value["allowed"],
                "policy_set": value["decision"]["policy_set"],
            },
        }],
    })
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML as CI test reporters read it (Jenkins' schema): one test case per gate; a
/// blocking or unevaluable gate is a failure, a waived one is skipped with its message.
pub fn gate_junit(value: &Value) -> String {
    let cases: Vec<&Value> = gates(value).collect();
    let failures = cases
        .iter()
        .filter(|gate| matches!(gate["status"].as_str(), Some("block" | "missing")))
        .count();
    let skipped = cases
        .iter()
        .filter(|gate| gate["status"] == json!("waived"))
        .count();
    let suite = xml_escape(&format!("steward gates: {}", subject(value)));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"steward gate check\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        cases.len()
    );
    for gate in cases {
        let name = xml_escape(gate["gate"].as_str().unwrap_or("?"));
        let class = xml_escape(gate["policy"].as_str().unwrap_or("steward.gate"));
        let message = xml_escape(gate["message"].as_str().unwrap_or(""));
        match gate["status"].as_str() {
            Some("pass") => {
                let _ = writeln!(out, "    <testcase classname=\"{class}\" name=\"{name}\"/>");
            }
            Some("waived") => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{name}\">\n      <skipped message=\"waived: {message}\"/>\n    </testcase>"
                );
            }
            status => {
                let status = xml_escape(status.unwrap_or("block"));
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure message=\"{message}\" type=\"{status}\">{message}</failure>\n    </testcase>"
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>");
    out
}

pub async fn drift_attach(
    client: &Client,
    output: Output,
    args: DriftAttachArgs,
) -> anyhow::Result<ExitCode> {
    let report = crate::drift::report(&args.reference, &args.current, &args.column)?;
    let value = client
        .post(
            &format!("/api/v1/versions/{}/drift", encode(&args.digest)),
            &json!({"report": report}),
        )
        .await?;
    crate::commands::print_value(output, &value, &[]);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation() -> Value {
        json!({
            "model": "retail/credit", "version": "1.2.0", "environment": "production",
            "digest": format!("sha256:{}", "a".repeat(64)), "template": "production", "allowed": false,
            "decision": {"policy_set": "sha256:00"},
            "gates": [
                {"gate": "documentation", "policy": "steward.gate.documentation", "status": "pass", "message": "complete"},
                {"gate": "board:model-risk", "policy": "steward.gate.board-quorum", "status": "block", "message": "needs 2 <of> 3 & \"security\""},
                {"gate": "drift", "policy": "steward.gate.drift", "status": "missing", "message": "no report"},
                {"gate": "freeze", "policy": "steward.change.freeze", "status": "waived", "message": "year-end"},
            ],
        })
    }

    #[test]
    fn junit_counts_and_escapes() {
        let xml = gate_junit(&evaluation());
        assert!(
            xml.contains("tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("needs 2 &lt;of&gt; 3 &amp; &quot;security&quot;"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"waived: year-end\"/>"),
            "{xml}"
        );
        assert!(xml.contains("type=\"missing\""), "{xml}");
        assert_eq!(xml_escape("a\u{1}b"), "a?b");
    }

    #[test]
    fn sarif_has_a_rule_per_policy_and_a_result_per_gate() {
        let sarif = gate_sarif(&evaluation());
        let run = &sarif["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 4);
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results[0]["kind"], "pass");
        assert_eq!(results[0]["level"], "none");
        assert_eq!(results[1]["level"], "error");
        assert_eq!(results[1]["ruleIndex"], 1);
        assert_eq!(results[3]["level"], "warning");
    }

    #[test]
    fn text_names_every_gate_and_the_verdict() {
        let text = gate_text(&evaluation());
        assert!(text.contains("BLOCK    board:model-risk"), "{text}");
        assert!(text.ends_with("The promotion would block."), "{text}");
    }
}
