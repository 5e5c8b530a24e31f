//! The binary's contract: exit codes, offline verification, policy tests.

use crate::{init, steward};

#[test]
fn usage_errors_exit_2() {
    let output = steward().args(["models", "create"]).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = steward().arg("no-such-command").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn an_unreachable_server_is_a_failure_with_a_clear_message() {
    let output = steward()
        .args([
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "x",
            "models",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach http://127.0.0.1:9"),
        "{stderr}"
    );
}

#[test]
fn init_then_offline_verify_and_a_refused_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let output = steward()
        .args(["init", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["admin.token", "keys/log.key", "keys/audit-hmac.key"] {
            let mode = std::fs::metadata(data_dir.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }
    let output = steward()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("ok: 2 entries, 1 checkpoints verified"),
        "{stdout}"
    );
    let output = steward()
        .args(["init", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

#[test]
fn a_world_readable_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    init(&data_dir, None);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data_dir.join("keys/log.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let output = steward()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("must not be readable by group or others"),
            "{stderr}"
        );
    }
}

#[test]
fn policy_test_reports_each_case_and_fails_on_a_failing_case() {
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../steward-policy/test_data");
    let output = steward().args(["policy", "test", golden]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yaml"),
        "cases:\n  - name: an auditor may not create models\n    request: {principal: erin, roles: [auditor], action: model.create, resource: {type: business_unit, name: retail}}\n    expect: allow\n",
    )
    .unwrap();
    let output = steward()
        .args(["policy", "test"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("expected allow, got deny (default-deny)"),
        "{stdout}"
    );
}

#[test]
fn advisories_scan_blocks_on_severity_and_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.onnx"), "w").unwrap();
    std::fs::write(
        model.join("requirements.txt"),
        "numpy==2.1.0\nscikit-learn==1.5.2\n",
    )
    .unwrap();
    std::fs::write(model.join("steward.yaml"), "version: 1.0.0\n").unwrap();
    let layout = dir.path().join("out");
    assert!(
        steward()
            .args(["package", "build"])
            .arg(&model)
            .arg("--out")
            .arg(&layout)
            .output()
            .unwrap()
            .status
            .success()
    );
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("numpy.json"),
        r#"{"id": "PYSEC-TEST-1", "summary": "overflow", "affected": [{"package": {"ecosystem": "PyPI", "name": "NumPy"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}, {"fixed": "2.1.1"}]}]}], "database_specific": {"severity": "MODERATE"}}"#,
    )
    .unwrap();
    let scan = |fail_on: &str| {
        steward()
            .args(["advisories", "scan"])
            .arg(&layout)
            .arg("--advisories")
            .arg(&osv)
            .args(["--fail-on", fail_on])
            .output()
            .unwrap()
    };
    let output = scan("high");
    assert_eq!(
        output.status.code(),
        Some(0),
        "a medium finding passes a high threshold"
    );
    let output = scan("medium");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("blocked: numpy 2.1.0 is affected by PYSEC-TEST-1 (medium); fixed in 2.1.1"),
        "{stderr}"
    );
    std::fs::write(osv.join("broken.json"), "{").unwrap();
    let output = scan("high");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.json: not an OSV record"));
}

/// Long operations draw progress (bytes, rate, time left) on a terminal and nothing when
/// standard error is not one. The terminal is a pseudo-terminal from util-linux `script`.
#[test]
fn packing_shows_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.onnx"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(model.join("steward.yaml"), "version: 1.0.0\n").unwrap();
    let quiet = steward()
        .args(["package", "build"])
        .arg(&model)
        .arg("--out")
        .arg(dir.path().join("quiet"))
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );

    let program = steward().get_program().to_owned();
    let command = format!(
        "{} package build {} --out {}",
        program.to_string_lossy(),
        model.display(),
        dir.path().join("tty").display()
    );
    let on_tty = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .expect("util-linux `script` runs the command on a pseudo-terminal");
    assert!(on_tty.status.success());
    let drawn = String::from_utf8_lossy(&on_tty.stdout);
    assert!(
        drawn.contains("packing [")
            && drawn.contains("MiB")
            && drawn.contains("B/s")
            && drawn.contains("left"),
        "{drawn}"
    );
}

/// `steward drift report` over CSV files gives the golden scipy/numpy values per column and
/// exits 1 when a column drifted.
#[test]
fn drift_report_over_csv_matches_the_goldens_and_gates() {
    let golden: serde_json::Value = serde_json::from_str(include_str!(
        "../../../steward-core/test_data/drift/golden.json"
    ))
    .unwrap();
    let case = |name: &str| {
        golden["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|case| case["name"] == name)
            .unwrap()
            .clone()
    };
    let stable = case("same distribution, 300 vs 250");
    let income = case("skewed incomes, 1000 vs 800");
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, side: &str| {
        let (a, b) = (
            stable[side].as_array().unwrap(),
            income[side].as_array().unwrap(),
        );
        let mut text = String::from("stable,income,comment\n");
        for row in 0..a.len().max(b.len()) {
            let cell = |values: &Vec<serde_json::Value>| {
                values.get(row).map_or(String::new(), |v| v.to_string())
            };
            text.push_str(&format!("{},{},note\n", cell(a), cell(b)));
        }
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (reference, current) = (
        write("reference.csv", "reference"),
        write("current.csv", "current"),
    );
    let output = steward()
        .args(["drift", "report", "-o", "json", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["drifted"], serde_json::json!(["income"]), "{report}");
    for (column, case) in [("stable", &stable), ("income", &income)] {
        let item = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["column"] == column)
            .unwrap();
        for (ours, theirs) in [
            ("psi", "psi"),
            ("ks_statistic", "ks_statistic"),
            ("ks_pvalue", "ks_pvalue"),
        ] {
            let (a, b) = (item[ours].as_f64().unwrap(), case[theirs].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * b.abs(),
                "{column} {ours}: {a} vs {b}"
            );
        }
    }
    // Text columns cannot be compared and say so, without counting as drift.
    let comment = &report["items"][2];
    assert_eq!(comment["column"], "comment");
    assert!(
        comment["note"].as_str().unwrap().contains("not compared"),
        "{comment}"
    );
    let stable_only = steward()
        .args(["drift", "report", "--column", "stable", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .output()
        .unwrap();
    assert_eq!(
        stable_only.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&stable_only.stdout)
    );
    let missing = steward()
        .args(["drift", "report", "--column", "nope", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("column `nope` is not in both files")
    );
}
