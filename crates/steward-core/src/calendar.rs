//! Change calendars (C3): freeze windows, when no change may land, and maintenance windows,
//! when changes are planned. A window is an RFC 5545 start (`DTSTART`, UTC or with a `TZID`,
//! so a weekly freeze follows daylight saving time), a duration, and an optional `RRULE`;
//! it covers environments and business units (none listed: all). Occurrences are expanded
//! by the `rrule` crate; `test_data/calendar/golden.json` holds python-dateutil's expansions
//! of the same rules (`generate.py`, diffed in CI).
//!
//! `import_ics` reads the `VEVENT`s of an iCalendar file (line folding, `SUMMARY`, `DTSTART`,
//! `DTEND` or `DURATION`, `RRULE`), listing every problem at once.

use chrono::{DateTime, Datelike, Duration, Utc};
use rrule::RRuleSet;
use serde::{Deserialize, Serialize};

/// Bounds: a window's length, the windows of one import, and the occurrences examined when
/// a rule is checked at one instant.
pub const DURATION_MAX_SECONDS: i64 = 366 * 24 * 3600;
pub const IMPORT_EVENTS_MAX: usize = 200;
/// Occurrences walked to answer one question; with the rules allowed (at most one occurrence
/// a day on average, from 2000 on) this is centuries of calendar.
const WALK_MAX: usize = 100_000;
/// The earliest start a rule may have, which bounds the walk from the start to now.
const EARLIEST_YEAR: i32 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    Freeze,
    Maintenance,
}

impl WindowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Freeze => "freeze",
            WindowKind::Maintenance => "maintenance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub name: String,
    pub kind: WindowKind,
    /// The iCalendar start line, e.g. `DTSTART:20261220T000000Z` or
    /// `DTSTART;TZID=Europe/Berlin:20261127T180000`.
    pub dtstart: String,
    pub duration_seconds: i64,
    /// The rule without its `RRULE:` prefix, e.g. `FREQ=WEEKLY;BYDAY=FR`.
    pub rrule: Option<String>,
    pub environments: Vec<String>,
    pub business_units: Vec<String>,
}

/// A start as stored: a floating time (no zone) or an all-day date is taken as UTC, so that
/// a window never depends on the server's own time zone.
pub fn normalize_start(line: &str) -> String {
    let line = line.trim();
    let (head, value) = match split_property(line) {
        Some(parts) => parts,
        None => return line.to_owned(),
    };
    let head_upper = head.to_ascii_uppercase();
    let name = if head_upper.starts_with("DTEND") {
        "DTEND"
    } else {
        "DTSTART"
    };
    if head_upper.contains("VALUE=DATE")
        && !head_upper.contains("VALUE=DATE-TIME")
        && value.len() == 8
    {
        return format!("{name}:{value}T000000Z");
    }
    if !head_upper.contains("TZID=") && !value.ends_with('Z') {
        return format!("{name}:{value}Z");
    }
    format!("{head}:{value}")
}

/// `NAME;PARAM="a:b":value` → (`NAME;PARAM="a:b"`, `value`): the value starts at the first
/// colon outside double quotes (RFC 5545 3.1).
fn split_property(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (at, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..at], &line[at + 1..])),
            _ => {}
        }
    }
    None
}

/// RFC 5545 TEXT unescaping (`\,` `\;` `\\` `\n`).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `DTSTART` for a UTC instant.
pub fn dtstart_utc(at: DateTime<Utc>) -> String {
    format!("DTSTART:{}", at.format("%Y%m%dT%H%M%SZ"))
}

impl Window {
    fn set(&self) -> Result<RRuleSet, String> {
        let rule = self.rrule.as_deref().unwrap_or("FREQ=DAILY;COUNT=1");
        format!("{}\nRRULE:{rule}", self.dtstart)
            .parse::<RRuleSet>()
            .map_err(|err| err.to_string())
    }

    /// Every way the window is malformed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("name must not be empty".to_owned());
        }
        if self.duration_seconds <= 0 || self.duration_seconds > DURATION_MAX_SECONDS {
            problems.push(format!(
                "duration must be between 1 second and {} days",
                DURATION_MAX_SECONDS / 86_400
            ));
        }
        if self.dtstart.contains(['\r', '\n']) || !self.dtstart.starts_with("DTSTART") {
            problems.push("start must be one DTSTART line".to_owned());
            return problems;
        }
        if let Some(rule) = &self.rrule
            && (rule.contains(['\r', '\n']) || rule.to_ascii_uppercase().starts_with("RRULE"))
        {
            problems.push("rrule is the rule alone, e.g. FREQ=WEEKLY;BYDAY=FR".to_owned());
            return problems;
        }
        let upper = self.dtstart.to_ascii_uppercase();
        if upper.contains("TZID=") == self.dtstart.trim_end().ends_with('Z') {
            problems.push(
                "start must be UTC (ending in Z) or carry a TZID, not both and not neither"
                    .to_owned(),
            );
        }
        // The parsed rule is what is checked, not its text: every check walks the occurrences
        // from the start, so sub-daily rules (which would make that walk millions long) are
        // refused; a change calendar does not need them.
        match self.set() {
            Err(err) => problems.push(format!("start or rule: {err}")),
            Ok(set) => {
                use rrule::Frequency;
                for rule in set.get_rrule() {
                    if !matches!(
                        rule.get_freq(),
                        Frequency::Daily
                            | Frequency::Weekly
                            | Frequency::Monthly
                            | Frequency::Yearly
                    ) {
                        problems.push(format!(
                            "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY, not {}",
                            rule.get_freq()
                        ));
                    }
                    for (part, values) in [
                        ("BYHOUR", rule.get_by_hour().len()),
                        ("BYMINUTE", rule.get_by_minute().len()),
                        ("BYSECOND", rule.get_by_second().len()),
                    ] {
                        // rrule fills one value in from DTSTART; more is a sub-daily rule.
                        if values > 1 {
                            problems.push(format!(
                                "{part} is not taken: a window starts at its DTSTART time and lasts its duration"
                            ));
                        }
                    }
                }
                if set.get_rrule().len() != 1
                    || !set.get_rdate().is_empty()
                    || !set.get_exdate().is_empty()
                {
                    problems.push("exactly one rule, without RDATE or EXDATE".to_owned());
                }
                if set.get_dt_start().year() < EARLIEST_YEAR {
                    problems.push(format!("the window starts before {EARLIEST_YEAR}"));
                }
                if problems.is_empty() && self.occurrences(1).is_empty() {
                    problems.push("the rule has no occurrence".to_owned());
                }
            }
        }
        problems
    }

    pub fn applies_to(&self, environment: &str, business_unit: &str) -> bool {
        (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
            && (self.business_units.is_empty()
                || self.business_units.iter().any(|u| u == business_unit))
    }

    /// The occurrence covering `at` (start ≤ at < start + duration), if any. The walk from
    /// the start is bounded (`WALK_MAX`); a window whose rule could not be walked to `at` is
    /// reported active (it freezes rather than let a change through unchecked).
    pub fn active_at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let duration = Duration::try_seconds(self.duration_seconds)?;
        let set = self.set().ok()?;
        let mut covering = None;
        // `limit` keeps rrule's own guard on: a rule that never matches (30 February) ends the
        // walk instead of looping.
        for (walked, start) in set.limit().into_iter().enumerate() {
            let start = start.with_timezone(&Utc);
            if start > at {
                return covering;
            }
            // An end past chrono's range is no end: the window covers everything after its start.
            let end = start
                .checked_add_signed(duration)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if at < end {
                covering = Some((start, end));
            }
            if walked >= WALK_MAX {
                return Some((
                    at,
                    at.checked_add_signed(duration)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC),
                ));
            }
        }
        covering
    }

    /// The first `count` occurrences from the start, as UTC intervals.
    pub fn occurrences(&self, count: u16) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let Some(duration) = Duration::try_seconds(self.duration_seconds) else {
            return Vec::new();
        };
        self.set()
            .map(|set| {
                set.all(count)
                    .dates
                    .iter()
                    .map(|start| {
                        let start = start.with_timezone(&Utc);
                        (
                            start,
                            start
                                .checked_add_signed(duration)
                                .unwrap_or(DateTime::<Utc>::MAX_UTC),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// RFC 5545 `DURATION` (`P1D`, `PT4H30M`, `P2W`) in seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut seconds = 0i64;
    let mut number = String::new();
    let mut add = |number: &mut String, unit: i64| -> Option<()> {
        let value = number.parse::<i64>().ok()?.checked_mul(unit)?;
        seconds = seconds.checked_add(value)?;
        number.clear();
        Some(())
    };
    for c in date.chars() {
        match c {
            '0'..='9' => number.push(c),
            'W' => add(&mut number, 7 * 86_400)?,
            'D' => add(&mut number, 86_400)?,
            _ => return None,
        }
    }
    if !number.is_empty() {
        return None;
    }
    for c in time.chars() {
        match c {
            '0'..='9' => number.push(c),
            'H' => add(&mut number, 3600)?,
            'M' => add(&mut number, 60)?,
            'S' => add(&mut number, 1)?,
            _ => return None,
        }
    }
    number.is_empty().then_some(seconds)
}

/// The first instant of a `DTSTART`/`DTEND` line, through `rrule`'s own parser.
fn instant(line: &str) -> Result<DateTime<Utc>, String> {
    let start = line.replacen("DTEND", "DTSTART", 1);
    let set = format!("{start}\nRRULE:FREQ=DAILY;COUNT=1")
        .parse::<RRuleSet>()
        .map_err(|err| err.to_string())?;
    set.all(1)
        .dates
        .first()
        .map(|date| date.with_timezone(&Utc))
        .ok_or_else(|| "no instant".to_owned())
}

/// Windows from the `VEVENT`s of an iCalendar file, all of `kind`, for the given scope.
/// Every problem is listed (with the event's summary) and no window is returned then.
pub fn import_ics(
    text: &str,
    kind: WindowKind,
    environments: &[String],
    business_units: &[String],
) -> Result<Vec<Window>, Vec<String>> {
    // Counted before anything is checked, so an oversized file costs nothing.
    let events = text
        .lines()
        .filter(|line| line.trim_end().eq_ignore_ascii_case("BEGIN:VEVENT"))
        .count();
    if events > IMPORT_EVENTS_MAX {
        return Err(vec![format!(
            "the file has {events} events, more than the limit of {IMPORT_EVENTS_MAX}"
        )]);
    }
    // Unfold continuation lines (RFC 5545 3.1): CRLF followed by a space or a tab.
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => lines.push(raw.to_owned()),
        }
    }
    let mut windows = Vec::new();
    let mut problems = Vec::new();
    // The open VEVENT's own properties, and how deep inside nested components (VALARM) we are.
    let mut event: Option<Vec<(String, String, String)>> = None;
    let mut nested = 0usize;
    for line in lines {
        let Some((head, value)) = split_property(&line) else {
            continue;
        };
        let name = head
            .split(';')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let upper_value = value.trim().to_ascii_uppercase();
        match (name.as_str(), upper_value.as_str()) {
            ("BEGIN", "VEVENT") if event.is_some() && nested == 0 => {
                problems.push("a VEVENT begins inside another".to_owned());
            }
            ("BEGIN", "VEVENT") => event = Some(Vec::new()),
            ("BEGIN", _) if event.is_some() => nested += 1,
            ("END", "VEVENT") if nested == 0 => {
                let Some(properties) = event.take() else {
                    problems.push("END:VEVENT without BEGIN:VEVENT".to_owned());
                    continue;
                };
                match event_window(&properties, kind, environments, business_units) {
                    Ok(Some(window)) => windows.push(window),
                    Ok(None) => {}
                    Err(more) => problems.extend(more),
                }
            }
            ("END", _) if nested > 0 => nested -= 1,
            _ => {
                if let Some(properties) = event.as_mut()
                    && nested == 0
                {
                    properties.push((name, head.to_owned(), value.to_owned()));
                }
            }
        }
    }
    if event.is_some() {
        problems.push("the last VEVENT has no END:VEVENT (is the file cut off?)".to_owned());
    }
    if windows.is_empty() && problems.is_empty() {
        problems.push("the file has no VEVENT".to_owned());
    }
    if problems.is_empty() {
        Ok(windows)
    } else {
        Err(problems)
    }
}

/// One VEVENT's window; `None` for a cancelled event.
fn event_window(
    properties: &[(String, String, String)],
    kind: WindowKind,
    environments: &[String],
    business_units: &[String],
) -> Result<Option<Window>, Vec<String>> {
    let all = |name: &str| {
        properties
            .iter()
            .filter(move |(property, _, _)| property == name)
            .collect::<Vec<_>>()
    };
    let first = |name: &str| all(name).first().copied();
    let summary = first("SUMMARY").map_or("(no summary)".to_owned(), |(_, _, value)| {
        unescape(value.trim())
    });
    let problem = |text: String| vec![format!("event `{summary}`: {text}")];
    if first("STATUS").is_some_and(|(_, _, value)| value.trim().eq_ignore_ascii_case("CANCELLED")) {
        return Ok(None);
    }
    for refused in ["RDATE", "EXDATE", "EXRULE"] {
        if first(refused).is_some() {
            return Err(problem(format!(
                "{refused} is not taken; split the event or adjust its rule"
            )));
        }
    }
    if all("RRULE").len() > 1 {
        return Err(problem("more than one RRULE".to_owned()));
    }
    let Some((_, head, value)) = first("DTSTART") else {
        return Err(problem("no DTSTART".to_owned()));
    };
    let dtstart = normalize_start(&format!("{head}:{value}"));
    let duration = match (first("DURATION"), first("DTEND")) {
        (Some((_, _, value)), _) => parse_duration(value.trim())
            .ok_or_else(|| problem("DURATION is not an RFC 5545 duration".to_owned()))?,
        (None, Some((_, head, value))) => {
            let end = normalize_start(&format!("{head}:{value}"));
            match (instant(&dtstart), instant(&end)) {
                (Ok(start), Ok(end)) => (end - start).num_seconds(),
                (Err(err), _) | (_, Err(err)) => return Err(problem(err)),
            }
        }
        (None, None) => return Err(problem("neither DTEND nor DURATION".to_owned())),
    };
    let rrule = match first("RRULE") {
        Some((_, head, _)) if head.contains(';') => {
            return Err(problem("RRULE takes no parameters".to_owned()));
        }
        Some((_, _, value)) => Some(value.trim().to_owned()),
        None => None,
    };
    let window = Window {
        name: summary.clone(),
        kind,
        dtstart,
        duration_seconds: duration,
        rrule,
        environments: environments.to_vec(),
        business_units: business_units.to_vec(),
    };
    let problems = window.problems();
    if problems.is_empty() {
        Ok(Some(window))
    } else {
        Err(problems
            .into_iter()
            .map(|text| format!("event `{summary}`: {text}"))
            .collect())
    }
}

#[cfg(test)]
mod tests;
