//! Change calendars (C3): a freeze window active for an environment and business unit refuses
//! alias moves there, naming the window and its end; maintenance windows and other scopes do
//! not; deleting the window lifts it; iCalendar files import; bad windows change nothing.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{ARTIFACT, TestServer, artifact_digest, complete_manifest, gate};

#[tokio::test]
async fn a_freeze_window_refuses_deployments_until_it_ends_or_is_deleted() {
    let server = TestServer::start().await;
    for unit in ["retail", "wholesale"] {
        server
            .admin(
                Method::POST,
                "/api/v1/business-units",
                Some(json!({"name": unit})),
            )
            .await;
    }
    let ds = server.user("ds", Some(("data_scientist", "retail"))).await;
    let mlops = server
        .user("mlops", Some(("mlops_engineer", "retail")))
        .await;
    let compliance = server.user("co", Some(("compliance_officer", "*"))).await;
    let model = json!({"business_unit": "retail", "name": "credit", "category": "tabular_classification", "risk_class": "high", "tier": 1});
    server
        .request(Some(&ds), Method::POST, "/api/v1/models", Some(model))
        .await;
    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    server
        .request(
            Some(&ds),
            Method::PUT,
            &blob,
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    let registered = server
        .request(
            Some(&ds),
            Method::POST,
            "/api/v1/models/retail/credit/versions",
            Some(complete_manifest("1.0.0")),
        )
        .await;
    let digest = registered.body["digest"].as_str().unwrap().to_owned();
    let move_to = |env: &'static str| {
        let (server, mlops, digest) = (&server, mlops.clone(), digest.clone());
        async move { server.promote(&mlops, &digest, env).await }
    };

    // A weekly freeze that is active now (started an hour ago, lasts a day), for staging in
    // retail; a maintenance window over everything; a freeze for wholesale only.
    let now = chrono::Utc::now();
    let window = |name: &str, kind: &str, units: Value| {
        json!({"name": name, "kind": kind, "start": (now - chrono::Duration::hours(1)).to_rfc3339(),
            "duration": "P1D", "rrule": "FREQ=WEEKLY", "environments": ["staging"], "business_units": units,
            "reason": "quarter close"})
    };
    let before = server.audit_size().await;
    // Bad input: every problem named, nothing stored.
    let refused = server
        .request(
            Some(&compliance),
            Method::POST,
            "/api/v1/calendar/windows",
            Some(json!({"name": "", "kind": "freeze", "start": "next friday", "duration": "2 days", "environments": ["nowhere"], "reason": ""})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let problems = refused.body["error"]["details"]["problems"]
        .as_array()
        .unwrap();
    assert!(problems.len() >= 4, "{problems:?}");
    assert_eq!(server.audit_size().await, before);
    // Only compliance officers (global) and administrators keep the calendar.
    let denied = server
        .request(
            Some(&mlops),
            Method::POST,
            "/api/v1/calendar/windows",
            Some(window("x", "freeze", json!([]))),
        )
        .await;
    assert_eq!(denied.status, 403);

    let created = server
        .request(
            Some(&compliance),
            Method::POST,
            "/api/v1/calendar/windows",
            Some(window("Quarter close", "freeze", json!(["retail"]))),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["active_now"], true);
    let id = created.body["id"].as_i64().unwrap();
    for (name, kind, units) in [
        ("Patching", "maintenance", json!([])),
        ("Wholesale close", "freeze", json!(["wholesale"])),
    ] {
        let other = server
            .request(
                Some(&compliance),
                Method::POST,
                "/api/v1/calendar/windows",
                Some(window(name, kind, units)),
            )
            .await;
        assert_eq!(other.status, 201, "{}", other.body);
    }

    // The request is recorded, and waits: the freeze gate blocks it, named.
    let frozen = move_to("staging").await;
    assert_eq!(frozen.status, 201, "{}", frozen.body);
    assert_eq!(frozen.body["state"], "pending", "{}", frozen.body);
    let freeze = gate(&frozen.body, "freeze");
    assert_eq!(freeze["status"], "block");
    assert_eq!(freeze["policy"], "steward.change.freeze");
    let message = freeze["message"].as_str().unwrap();
    assert!(
        message.contains("freeze window `Quarter close`") && message.contains("until "),
        "{message}"
    );
    let frozen_id = frozen.body["id"].as_i64().unwrap();
    assert!(
        !message.contains("Wholesale") && !message.contains("Patching"),
        "{message}"
    );
    assert_eq!(
        move_to("development").await.body["state"],
        "applied",
        "other environments are not frozen"
    );

    let listed = server
        .request(Some(&ds), Method::GET, "/api/v1/calendar/windows", None)
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3);
    let deleted = server
        .request(
            Some(&compliance),
            Method::DELETE,
            &format!("/api/v1/calendar/windows/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let applied = server
        .request(
            Some(&mlops),
            Method::POST,
            &format!("/api/v1/promotions/{frozen_id}/apply"),
            None,
        )
        .await;
    assert_eq!(applied.body["state"], "applied", "lifted: {}", applied.body);
    let again = server
        .request(
            Some(&compliance),
            Method::DELETE,
            &format!("/api/v1/calendar/windows/{id}"),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn icalendar_files_import_all_or_nothing() {
    let server = TestServer::start().await;
    let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Year-end freeze\r\nDTSTART:20261220T000000Z\r\nDTEND:20270103T000000Z\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Weekend\r\nDTSTART;TZID=Europe/Berlin:20260306T180000\r\nDURATION:P2DT12H\r\nRRULE:FREQ=WEEKLY;BYDAY=FR\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let imported = server
        .admin(
            Method::POST,
            "/api/v1/calendar/import",
            Some(json!({"ics": ics, "kind": "freeze", "environments": ["production"], "reason": "change policy 2026"})),
        )
        .await;
    assert_eq!(imported["imported"], 2, "{imported}");
    let before = server.audit_size().await;
    let broken = ics.replace("DURATION:P2DT12H", "DURATION:soon");
    let refused = server
        .request(
            Some(&server.admin_token),
            Method::POST,
            "/api/v1/calendar/import",
            Some(json!({"ics": broken, "kind": "freeze", "reason": "x"})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`Weekend`")
    );
    assert_eq!(server.audit_size().await, before, "nothing imported");
    let listed = server
        .admin(Method::GET, "/api/v1/calendar/windows", None)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
}
