//! The binary's contract: exit codes, offline verification, policy tests.

use crate::steward;

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
        output.status.success() && stdout.starts_with("ok: 1 entries, 1 checkpoints verified"),
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
    assert!(
        steward()
            .args(["init", "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap()
            .status
            .success()
    );
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
