//! Change calendars (C3): freeze and maintenance windows, created one by one or imported from
//! an iCalendar file, listed with whether they are active now, and deleted (kept, marked).
//! A freeze window active for an environment and business unit refuses alias moves there
//! (`steward.change.freeze`), naming the window and when it ends.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::calendar::{self, Window, WindowKind};
use steward_policy::Resource;
use steward_store::CalendarWindow;

use super::registry::event;
use super::{ApiPath, JsonBody, commit, created, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    pub name: String,
    pub kind: WindowKind,
    /// RFC 3339 start (UTC or with an offset), or an iCalendar line such as
    /// `DTSTART;TZID=Europe/Berlin:20261127T180000` for rules that follow local time.
    pub start: String,
    /// RFC 5545 duration, e.g. `P14D`, `PT4H`, `P2DT12H`.
    pub duration: String,
    /// RFC 5545 recurrence rule without `RRULE:`, e.g. `FREQ=WEEKLY;BYDAY=FR`.
    #[serde(default)]
    pub rrule: Option<String>,
    /// Environments covered (none: all).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Business units covered (none: all).
    #[serde(default)]
    pub business_units: Vec<String>,
    pub reason: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarImport {
    /// The iCalendar file's text; each VEVENT becomes a window.
    pub ics: String,
    pub kind: WindowKind,
    #[serde(default)]
    pub environments: Vec<String>,
    #[serde(default)]
    pub business_units: Vec<String>,
    pub reason: String,
}

fn unprocessable(problems: Vec<String>) -> ApiError {
    ApiError::Unprocessable {
        message: format!("the window is refused: {}", problems.join("; ")),
        details: json!({ "problems": problems }),
    }
}

pub(crate) fn to_window(row: &CalendarWindow) -> Window {
    Window {
        name: row.name.clone(),
        kind: if row.kind == "maintenance" {
            WindowKind::Maintenance
        } else {
            WindowKind::Freeze
        },
        dtstart: row.dtstart.clone(),
        duration_seconds: row.duration_seconds,
        rrule: row.rrule.clone(),
        environments: serde_json::from_str(&row.environments).unwrap_or_default(),
        business_units: serde_json::from_str(&row.business_units).unwrap_or_default(),
    }
}

fn window_json(row: &CalendarWindow, now: DateTime<Utc>) -> Value {
    let window = to_window(row);
    let active = window.active_at(now);
    json!({
        "id": row.id, "name": row.name, "kind": row.kind, "dtstart": row.dtstart,
        "duration_seconds": row.duration_seconds, "rrule": row.rrule,
        "environments": window.environments, "business_units": window.business_units,
        "reason": row.reason, "source": row.source, "created_by": row.created_by, "created_at": row.created_at,
        "active_now": active.is_some(),
        "active_until": active.map(|(_, end)| end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}

/// The freeze windows active now for `environment` and `business_unit`, as the refusal
/// names them (`None`: no freeze).
pub(crate) async fn active_freeze(
    app: &App,
    environment: &str,
    business_unit: &str,
) -> Result<Option<String>, ApiError> {
    let rows = app.store.calendar_windows().await?;
    Ok(freeze_among(
        &rows,
        environment,
        business_unit,
        app.clock.now(),
    ))
}

/// The freeze windows among `rows` active at `now` for `environment` and `business_unit`.
pub(crate) fn freeze_among(
    rows: &[CalendarWindow],
    environment: &str,
    business_unit: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    windows_among(rows, WindowKind::Freeze, environment, business_unit, now)
}

/// The maintenance windows among `rows` open at `now` for `environment` and `business_unit`.
pub(crate) fn maintenance_among(
    rows: &[CalendarWindow],
    environment: &str,
    business_unit: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    windows_among(
        rows,
        WindowKind::Maintenance,
        environment,
        business_unit,
        now,
    )
}

/// The maintenance windows open now for `environment` and `business_unit`, named.
pub(crate) async fn open_maintenance(
    app: &App,
    environment: &str,
    business_unit: &str,
) -> Result<Option<String>, ApiError> {
    let rows = app.store.calendar_windows().await?;
    Ok(windows_among(
        &rows,
        WindowKind::Maintenance,
        environment,
        business_unit,
        app.clock.now(),
    ))
}

fn windows_among(
    rows: &[CalendarWindow],
    kind: WindowKind,
    environment: &str,
    business_unit: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let mut active = Vec::new();
    for row in rows {
        let window = to_window(row);
        if window.kind != kind || !window.applies_to(environment, business_unit) {
            continue;
        }
        if let Some((_, end)) = window.active_at(now) {
            active.push(format!(
                "{} window `{}` (id {}) until {}",
                if kind == WindowKind::Freeze {
                    "freeze"
                } else {
                    "maintenance"
                },
                row.name,
                row.id,
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    (!active.is_empty()).then(|| active.join("; "))
}

pub async fn list(State(app): State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Any,
        Facts::default(),
    )
    .await?;
    let now = app.clock.now();
    let items: Vec<Value> = app
        .store
        .calendar_windows()
        .await?
        .iter()
        .map(|row| window_json(row, now))
        .collect();
    Ok(ok(json!({ "items": items })))
}

/// Checks what a window names: environments and business units must exist.
async fn check_scope(
    app: &App,
    environments: &[String],
    units: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut problems = Vec::new();
    let known: Vec<String> = app
        .store
        .environments()
        .await?
        .into_iter()
        .map(|env| env.name)
        .collect();
    for environment in environments {
        if !known.contains(environment) {
            problems.push(format!("environment `{environment}` does not exist"));
        }
    }
    for unit in units {
        if app.store.business_unit(unit).await?.is_none() {
            problems.push(format!("business unit `{unit}` does not exist"));
        }
    }
    Ok(problems)
}

fn row_of(
    window: &Window,
    reason: &str,
    source: &str,
    caller: &Caller,
    now: &str,
) -> CalendarWindow {
    CalendarWindow {
        id: 0,
        name: window.name.clone(),
        kind: window.kind.as_str().to_owned(),
        dtstart: window.dtstart.clone(),
        duration_seconds: window.duration_seconds,
        rrule: window.rrule.clone(),
        environments: json!(window.environments).to_string(),
        business_units: json!(window.business_units).to_string(),
        reason: reason.to_owned(),
        source: source.to_owned(),
        created_by: caller.name.clone(),
        created_at: now.to_owned(),
    }
}

pub async fn create(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewWindow>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let mut problems = Vec::new();
    let dtstart = if body.start.starts_with("DTSTART") {
        calendar::normalize_start(&body.start)
    } else {
        match DateTime::parse_from_rfc3339(&body.start) {
            Ok(start) => calendar::dtstart_utc(start.with_timezone(&Utc)),
            Err(err) => {
                problems.push(format!(
                    "start `{}` is not RFC 3339 or a DTSTART line: {err}",
                    body.start
                ));
                String::new()
            }
        }
    };
    let duration = calendar::parse_duration(&body.duration).unwrap_or_else(|| {
        problems.push(format!(
            "duration `{}` is not an RFC 5545 duration (e.g. P14D, PT4H)",
            body.duration
        ));
        0
    });
    if body.reason.trim().is_empty() {
        problems.push("reason must not be empty".to_owned());
    }
    let window = Window {
        name: body.name.clone(),
        kind: body.kind,
        dtstart,
        duration_seconds: duration,
        rrule: body.rrule.clone(),
        environments: body.environments.clone(),
        business_units: body.business_units.clone(),
    };
    if problems.is_empty() {
        problems.extend(window.problems());
    }
    problems.extend(check_scope(&app, &body.environments, &body.business_units).await?);
    if !problems.is_empty() {
        return Err(unprocessable(problems));
    }
    let now = app.now();
    let row = row_of(&window, &body.reason, "api", &caller, &now);
    let mut tx = app.store.begin().await?;
    let id = tx.insert_calendar_window(&row).await?;
    let stored = CalendarWindow { id, ..row };
    let payload = window_json(&stored, app.clock.now());
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("calendar_window:{id}"),
            payload.clone(),
            &decision,
        ),
    )
    .await?;
    let mut answer = payload;
    answer["audit"] = receipt(&entry);
    Ok(created(answer))
}

pub async fn import(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<CalendarImport>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let mut problems = check_scope(&app, &body.environments, &body.business_units).await?;
    if body.reason.trim().is_empty() {
        problems.push("reason must not be empty".to_owned());
    }
    // Checking rules is CPU work (bounded by IMPORT_EVENTS_MAX): off the async workers.
    let (ics, kind, environments, units) = (
        body.ics.clone(),
        body.kind,
        body.environments.clone(),
        body.business_units.clone(),
    );
    let parsed = tokio::task::spawn_blocking(move || {
        calendar::import_ics(&ics, kind, &environments, &units)
    })
    .await
    .map_err(ApiError::internal)?;
    let windows = match parsed {
        Ok(windows) => windows,
        Err(more) => {
            problems.extend(more);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(unprocessable(problems));
    }
    let now = app.now();
    let mut tx = app.store.begin().await?;
    let mut ids = Vec::new();
    for window in &windows {
        ids.push(
            tx.insert_calendar_window(&row_of(window, &body.reason, "ics", &caller, &now))
                .await?,
        );
    }
    let payload = json!({
        "imported": ids.len(), "ids": ids, "kind": body.kind.as_str(),
        "names": windows.iter().map(|window| window.name.clone()).collect::<Vec<_>>(),
    });
    let entry = commit(
        &app,
        tx,
        event(&caller, "calendar".to_owned(), payload.clone(), &decision),
    )
    .await?;
    let mut answer = payload;
    answer["audit"] = receipt(&entry);
    Ok(created(answer))
}

pub async fn delete(
    State(app): State<App>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    let mut tx = app.store.begin().await?;
    if !tx
        .delete_calendar_window(id, &caller.name, &app.now())
        .await?
    {
        return Err(ApiError::NotFound(format!("calendar window {id}")));
    }
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("calendar_window:{id}"),
            json!({"deleted": id}),
            &decision,
        ),
    )
    .await?;
    Ok(ok(json!({"deleted": id, "audit": receipt(&entry)})))
}
