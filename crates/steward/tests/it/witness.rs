//! `steward audit witness`: a checkpoint kept outside the server catches a log that was cut
//! back and regrown, even when the database's own checkpoints and head were rewritten.

use std::path::Path;

use sqlx::Connection;

use crate::{init, start, steward};

fn run(url: &str, token: &str, args: &[&str]) -> (i32, String) {
    let output = steward()
        .args(["--server", url, "--token", token])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn create_units(url: &str, token: &str, names: &[&str]) {
    for name in names {
        assert_eq!(run(url, token, &["units", "create", name]).0, 0);
    }
    assert_eq!(run(url, token, &["audit", "checkpoint"]).0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_catches_a_log_that_was_cut_back_and_regrown() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let token = init(&data_dir, None);
    // The witness keeps its own copy of the public key and its state outside the data dir.
    let public_key = dir.path().join("log.pub");
    std::fs::copy(data_dir.join("keys/log.pub"), &public_key).unwrap();
    let state = dir.path().join("witness.checkpoint");
    let witness = |url: &str| {
        run(
            url,
            &token,
            &[
                "audit",
                "witness",
                "--state",
                state.to_str().unwrap(),
                "--public-key",
                public_key.to_str().unwrap(),
            ],
        )
    };

    let (server, url) = start(&data_dir);
    create_units(&url, &token, &["a", "b"]);
    let (code, out) = witness(&url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Trusting the log at size 4"), "{out}");
    create_units(&url, &token, &["c"]);
    let (code, out) = witness(&url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("grew from 4 to 5"), "{out}");
    drop(server);

    // Someone with the database rewrites history after entry 3 and hides it.
    cut_back(&data_dir.join("steward.db"), 3).await;
    let (server, url) = start(&data_dir);
    create_units(&url, &token, &["x", "y", "z"]);
    let (code, _) = run(&url, &token, &["audit", "verify"]);
    assert_eq!(code, 0, "the database alone cannot tell");
    let (code, out) = witness(&url);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("SECURITY ERROR: the log at size 6 does not extend the one kept at size 5"),
        "{out}"
    );
    drop(server);
}

async fn cut_back(db: &Path, keep: u64) {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for statement in [
        "DELETE FROM business_units WHERE name IN ('b', 'c')".to_owned(),
        format!("DELETE FROM audit_events WHERE seq > {keep}"),
        format!("DELETE FROM checkpoints WHERE tree_size > {keep}"),
        format!(
            "UPDATE audit_head SET seq = {keep}, hash = (SELECT entry_hash FROM audit_events WHERE seq = {keep})"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}
