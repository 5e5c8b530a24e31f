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
    assert!(problems[2].contains("Z") && problems[3].contains("start or rule"));
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
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("`No end`: neither DTEND nor DURATION"));
    assert!(problems[1].contains("`Bad rule`"));
    assert!(problems[2].contains("`Bad duration`: DURATION"));
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
            "FREQ=DAILY;BYMINUTE=5,35",
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

#[test]
fn the_parsed_rule_is_checked_not_its_text() {
    // Lines smuggled into the start, and look-alike letters, do not get past the checks.
    let smuggled = window(
        "DTSTART:20260101T000000Z\nRRULE:FREQ=SECONDLY",
        Some("FREQ=DAILY"),
        1,
    );
    assert!(
        smuggled
            .problems()
            .iter()
            .any(|p| p.contains("one DTSTART line"))
    );
    let lookalike = window(
        "DTSTART:20260101T000000Z",
        Some("FREQ=DAILY;BYM\u{131}NUTE=1,2,3"),
        1,
    );
    assert!(
        !lookalike.problems().is_empty(),
        "refused, one way or another"
    );
    // A floating time or an all-day date is taken as UTC, whatever the server's zone.
    assert_eq!(
        normalize_start("DTSTART:20261127T110000"),
        "DTSTART:20261127T110000Z"
    );
    assert_eq!(
        normalize_start("DTSTART;VALUE=DATE:20261127"),
        "DTSTART:20261127T000000Z"
    );
    assert_eq!(
        normalize_start("DTSTART;TZID=Europe/Berlin:20261127T110000"),
        "DTSTART;TZID=Europe/Berlin:20261127T110000"
    );
    let both = window("DTSTART;TZID=Europe/Berlin:20261127T110000Z", None, 1);
    assert!(both.problems().iter().any(|p| p.contains("not both")));
    // Durations that overflow are refused, not a panic.
    assert_eq!(parse_duration("P99999999999999999D"), None);
    let huge = window(
        "DTSTART:20260101T000000Z",
        None,
        200_000_000_000 * 86_400 / 86_400,
    );
    assert!(huge.problems().iter().any(|p| p.starts_with("duration")));
    // Evaluating it anyway does not panic.
    let _ = (
        huge.occurrences(1),
        huge.active_at(at("2026-01-01T00:00:00Z")),
    );
}

#[test]
fn icalendar_import_reads_components_and_parameters_as_rfc_5545_says() {
    let ics = "begin:vcalendar\r\nBEGIN:VEVENT\r\nsummary;LANGUAGE=en:Year-end\\, books\r\nSUMMARY;ALTREP=\"http://x\":ignored\r\nDTSTART;VALUE=DATE:20261220\r\nDTEND;VALUE=DATE:20270103\r\nBEGIN:VALARM\r\nSUMMARY:Reminder\r\nDURATION:PT5M\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Cancelled\r\nSTATUS:CANCELLED\r\nDTSTART:20261220T000000Z\r\nDURATION:P1D\r\nEND:VEVENT\r\nend:vcalendar\r\n";
    let windows = import_ics(ics, WindowKind::Freeze, &[], &[]).unwrap();
    assert_eq!(windows.len(), 1, "the cancelled event is no window");
    assert_eq!(
        windows[0].name, "Year-end, books",
        "escapes undone, the alarm's summary ignored"
    );
    assert_eq!(
        windows[0].duration_seconds,
        14 * 86_400,
        "the alarm's DURATION ignored"
    );
    assert_eq!(windows[0].dtstart, "DTSTART:20261220T000000Z");

    let with = |extra: &str| {
        format!(
            "BEGIN:VEVENT\nSUMMARY:E\nDTSTART:20261220T000000Z\nDURATION:P1D\n{extra}END:VEVENT\n"
        )
    };
    for (extra, expected) in [
        ("RDATE:20270101T000000Z\n", "RDATE is not taken"),
        (
            "EXDATE:20271220T000000Z\nRRULE:FREQ=YEARLY\n",
            "EXDATE is not taken",
        ),
        (
            "RRULE:FREQ=YEARLY\nRRULE:FREQ=MONTHLY\n",
            "more than one RRULE",
        ),
        ("RRULE;X-FOO=1:FREQ=YEARLY\n", "RRULE takes no parameters"),
    ] {
        let problems = import_ics(&with(extra), WindowKind::Freeze, &[], &[]).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{extra}: {problems:?}"
        );
    }
    let cut = "BEGIN:VEVENT\nSUMMARY:A\nDTSTART:20261220T000000Z\nDURATION:P1D\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:B\nDTSTART:20261221T000000Z\n";
    let problems = import_ics(cut, WindowKind::Freeze, &[], &[]).unwrap_err();
    assert!(problems[0].contains("cut off"), "{problems:?}");
    let too_many = "BEGIN:VEVENT\nEND:VEVENT\n".repeat(IMPORT_EVENTS_MAX + 1);
    let problems = import_ics(&too_many, WindowKind::Freeze, &[], &[]).unwrap_err();
    assert!(problems[0].contains("more than the limit"), "{problems:?}");
}
