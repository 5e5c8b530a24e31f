//! Tampering with the stored log, as someone with write access to the database would: cut
//! the tail, delete checkpoints, move the head. The head comparison catches a bare cut; only
//! a checkpoint kept outside the database (pinned) catches a cut that also rewrote the
//! checkpoints and the head. A checkpoint is never signed over tampered entries.

use axum::http::Method;
use serde_json::json;
use sqlx::Connection;
use steward_server::routes::{make_checkpoint, verify_log};

use crate::support::TestServer;

async fn given_log(server: &TestServer, n_units: usize) {
    for n in 0..n_units {
        server
            .admin(
                Method::POST,
                "/api/v1/business-units",
                Some(json!({"name": format!("unit-{n}")})),
            )
            .await;
    }
}

async fn verify(server: &TestServer, pinned: &[String]) -> Result<u64, String> {
    let app = &server.app;
    verify_log(&app.store, &app.config.log_origin, &app.verifier, pinned)
        .await
        .map(|report| report.entries)
        .map_err(|err| err.to_string())
}

pub(crate) async fn sql(server: &TestServer, statements: &[&str]) {
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", server.database_path().display()))
            .await
            .unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn cutting_the_tail_is_caught_by_the_head() {
    let server = TestServer::start().await;
    given_log(&server, 5).await;
    assert_eq!(verify(&server, &[]).await, Ok(7));
    sql(&server, &["DELETE FROM audit_events WHERE seq > 5"]).await;
    let err = verify(&server, &[]).await.unwrap_err();
    assert!(
        err.starts_with("log: the stored head says 7 entries"),
        "{err}"
    );
}

#[tokio::test]
async fn a_cut_that_hides_its_tracks_is_caught_by_a_pinned_checkpoint() {
    let server = TestServer::start().await;
    given_log(&server, 5).await;
    let (size, pinned) = make_checkpoint(
        &server.app.store,
        &server.app.signer,
        &server.app.config.log_origin,
        "2026-11-27T09:00:00.000000Z",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(size, 7);
    // Cut back to entry 4 and make the stored facts agree: delete the newer checkpoints and
    // point the head at the new last entry.
    sql(
        &server,
        &[
            "DELETE FROM audit_events WHERE seq > 4",
            "DELETE FROM checkpoints WHERE tree_size > 4",
            "UPDATE audit_head SET seq = 4, hash = (SELECT entry_hash FROM audit_events WHERE seq = 4)",
        ],
    )
    .await;
    // Nothing stored can tell...
    assert_eq!(verify(&server, &[]).await, Ok(4));
    // ...but a checkpoint kept elsewhere can.
    let err = verify(&server, std::slice::from_ref(&pinned))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "checkpoint at size 7: log has only 4 entries (entries were removed)"
    );
    // A pinned checkpoint must verify with the log's key.
    let forged = pinned.replacen("7\n", "8\n", 1);
    let err = verify(&server, &[forged]).await.unwrap_err();
    assert!(
        err.starts_with("log: a pinned checkpoint does not verify"),
        "{err}"
    );
}

#[tokio::test]
async fn no_checkpoint_is_signed_over_tampered_entries() {
    let server = TestServer::start().await;
    given_log(&server, 3).await;
    let app = &server.app;
    make_checkpoint(
        &app.store,
        &app.signer,
        &app.config.log_origin,
        "2026-11-27T09:00:00.000000Z",
    )
    .await
    .unwrap();
    server
        .admin(
            Method::POST,
            "/api/v1/business-units",
            Some(json!({"name": "later"})),
        )
        .await;
    // Rewrite the newest entry's bytes: no later entry links to it, so only the signer's
    // own check, re-hashing before it signs, can refuse.
    sql(
        &server,
        &["UPDATE audit_events SET entry = replace(entry, 'later', 'LATER') WHERE seq = 6"],
    )
    .await;
    let err = make_checkpoint(
        &app.store,
        &app.signer,
        &app.config.log_origin,
        "2026-11-27T09:01:00.000000Z",
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("refusing to sign a checkpoint: entry 6"),
        "{err}"
    );
    // An edit below the latest checkpoint is refused too.
    sql(
        &server,
        &["UPDATE audit_events SET entry = replace(entry, 'unit-0', 'unit-X') WHERE seq = 3"],
    )
    .await;
    sql(
        &server,
        &["UPDATE audit_events SET entry = replace(entry, 'LATER', 'later') WHERE seq = 6"],
    )
    .await;
    sql(
        &server,
        &["UPDATE audit_events SET entry_hash = '00' || substr(entry_hash, 3) WHERE seq = 3"],
    )
    .await;
    let err = make_checkpoint(
        &app.store,
        &app.signer,
        &app.config.log_origin,
        "2026-11-27T09:02:00.000000Z",
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("no longer match the checkpoint signed at size 5"),
        "{err}"
    );
}
