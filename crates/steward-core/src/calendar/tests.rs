//! Rule expansion against python-dateutil goldens, activity at an instant, iCalendar import.

use chrono::{DateTime, Utc};

use super::*;

const GOLDEN: &str = include_str!("../../test_data/calendar/golden.json");

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn window(dtstart: &str, rrule: Option<&str>, hours: i64) -> Window {
    Window {
        name: "freeze".into(),
        kind: WindowKind::Freeze,
        dtstart: dtstart.into(),
        duration_seconds: hours * 3600,
        rrule: rrule.map(str::to_owned),
        environments: vec!["production".into()],
        business_units: vec![],
    }
}

#[test]
fn expansions_match_python_dateutil() {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let w = window(case["dtstart"].as_str().unwrap(), case["rrule"].as_str(), 1);
        assert!(w.problems().is_empty(), "{name}: {:?}", w.problems());
        let ours: Vec<String> = w
            .occurrences(12)
            .iter()
            .map(|(start, _)| start.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect();
        let theirs: Vec<String> = case["occurrences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn a_window_is_active_from_its_start_until_just_before_its_end() {
    // Fridays 18:00 Berlin for 60 hours (the weekend): follows daylight saving time.
    let w = window(
        "DTSTART;TZID=Europe/Berlin:20260306T180000",
        Some("FREQ=WEEKLY;BYDAY=FR"),
        60,
    );
    assert_eq!(w.active_at(at("2026-03-06T16:59:59Z")), None);
    let (start, end) = w.active_at(at("2026-03-06T17:00:00Z")).unwrap();
    assert_eq!(
        (start, end),
        (at("2026-03-06T17:00:00Z"), at("2026-03-09T05:00:00Z"))
    );
    assert_eq!(
        w.active_at(at("2026-03-09T05:00:00Z")),
        None,
        "the end is not covered"
    );
    // After the switch to summer time, 18:00 in Berlin is 16:00 UTC.
    let (start, _) = w.active_at(at("2026-04-04T12:00:00Z")).unwrap();
    assert_eq!(start, at("2026-04-03T16:00:00Z"));
    assert_eq!(w.active_at(at("2026-04-08T12:00:00Z")), None);
    // A single window, no rule.
    let once = window("DTSTART:20261220T000000Z", None, 24 * 14);
    assert!(once.active_at(at("2027-01-02T23:59:59Z")).is_some());
    assert!(once.active_at(at("2027-01-03T00:00:00Z")).is_none());
    assert!(
        once.active_at(at("2027-12-25T00:00:00Z")).is_none(),
        "no recurrence"
    );
    assert!(once.applies_to("production", "retail") && !once.applies_to("staging", "retail"));
}

#[test]
fn malformed_windows_list_every_problem() {
    let mut bad = window("DTSTART:2026-12-20", Some("FREQ=SOMETIMES"), 0);
    bad.name = " ".into();
    let problems = bad.problems();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].contains("name") && problems[1].contains("duration"));
    assert!(problems[2].contains("FREQ") && problems[3].contains("DTSTART"));
    let prefixed = window("DTSTART:20261220T000000Z", Some("RRULE:FREQ=DAILY"), 1);
    assert!(prefixed.problems()[0].contains("the rule alone"));
}

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//Change calendar//EN\r\nBEGIN:VEVENT\r\nUID:1@example\r\nSUMMARY:Year-end\r\n  freeze\r\nDTSTART:20261220T000000Z\r\nDTEND:20270103T000000Z\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:2@example\r\nSUMMARY:Weekend\r\nDTSTART;TZID=Europe/Berlin:20260306T180000\r\nDURATION:P2DT12H\r\nRRULE:FREQ=WEEKLY;BYDAY=FR\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn icalendar_events_become_windows() {
    let windows = import_ics(ICS, WindowKind::Freeze, &["production".into()], &[]).unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0].name, "Year-end freeze", "folded line joined");
    assert_eq!(windows[0].duration_seconds, 14 * 86_400);
    assert_eq!(windows[0].rrule.as_deref(), Some("FREQ=YEARLY"));
    assert_eq!(windows[1].duration_seconds, 60 * 3600);
    assert_eq!(
        windows[1].dtstart,
        "DTSTART;TZID=Europe/Berlin:20260306T180000"
    );
    assert!(windows[0].active_at(at("2027-12-31T12:00:00Z")).is_some());

    let broken = "BEGIN:VEVENT\nSUMMARY:No end\nDTSTART:20261220T000000Z\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:Bad rule\nDTSTART:20261220T000000Z\nDURATION:PT1H\nRRULE:FREQ=NEVER\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:Bad duration\nDTSTART:20261220T000000Z\nDURATION:1 hour\nEND:VEVENT\n";
    let problems = import_ics(broken, WindowKind::Freeze, &[], &[]).unwrap_err();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].contains("`No end`: neither DTEND nor DURATION"));
    assert!(problems[1].contains("`Bad rule`") && problems[2].contains("`Bad rule`"));
    assert!(problems[3].contains("`Bad duration`: DURATION"));
    assert_eq!(
        import_ics(
            "BEGIN:VCALENDAR\nEND:VCALENDAR\n",
            WindowKind::Freeze,
            &[],
            &[]
        )
        .unwrap_err(),
        vec!["the file has no VEVENT".to_owned()]
    );
}

#[test]
fn durations_follow_rfc_5545() {
    assert_eq!(parse_duration("P1D"), Some(86_400));
    assert_eq!(parse_duration("PT4H30M"), Some(16_200));
    assert_eq!(parse_duration("P2W"), Some(14 * 86_400));
    assert_eq!(parse_duration("P1DT1S"), Some(86_401));
    assert_eq!(parse_duration("1D"), None);
    assert_eq!(parse_duration("P1X"), None);
    assert_eq!(parse_duration("P1"), None);
}

#[test]
fn rules_that_would_be_costly_to_evaluate_are_refused() {
    // Sub-daily rules, or rules starting long ago, would make every check walk millions of
    // occurrences: a change calendar needs neither.
    for (dtstart, rule, expected) in [
        (
            "DTSTART:20260101T000000Z",
            "FREQ=SECONDLY",
            "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY",
        ),
        (
            "DTSTART:20260101T000000Z",
            "FREQ=HOURLY",
            "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY",
        ),
        (
            "DTSTART:20260101T000000Z",
            "FREQ=DAILY;BYHOUR=1,2,3",
            "BYHOUR",
        ),
        (
            "DTSTART:20260101T000000Z",
            "FREQ=DAILY;BYMINUTE=5",
            "BYMINUTE",
        ),
        (
            "DTSTART:19990101T000000Z",
            "FREQ=DAILY",
            "starts before 2000",
        ),
    ] {
        let problems = window(dtstart, Some(rule), 1).problems();
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{rule}: {problems:?}"
        );
    }
    // A rule that never matches is refused, and checking it ends.
    let never = window(
        "DTSTART:20260101T000000Z",
        Some("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
        1,
    );
    assert!(
        never.problems().iter().any(|p| p.contains("no occurrence")),
        "{:?}",
        never.problems()
    );
    assert_eq!(never.active_at(at("2027-01-01T00:00:00Z")), None);
    // The densest rule allowed, from 2000, is still quick to check at any instant now.
    let dense = window("DTSTART:20000101T000000Z", Some("FREQ=DAILY"), 1);
    assert!(dense.problems().is_empty());
    let started = std::time::Instant::now();
    assert!(dense.active_at(at("2026-11-27T00:30:00Z")).is_some());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
