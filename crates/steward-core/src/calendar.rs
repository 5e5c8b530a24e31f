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
pub const IMPORT_EVENTS_MAX: usize = 1000;
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
        if let Some(rule) = &self.rrule {
            if rule.contains('\n') || rule.to_ascii_uppercase().starts_with("RRULE") {
                problems.push("rrule is the rule alone, e.g. FREQ=WEEKLY;BYDAY=FR".to_owned());
                return problems;
            }
            // Every check walks the occurrences from the start: sub-daily rules would make
            // that walk millions long, and a change calendar does not need them.
            for part in rule.to_ascii_uppercase().split(';') {
                let (key, value) = part.split_once('=').unwrap_or((part, ""));
                match key {
                    "FREQ" if !matches!(value, "DAILY" | "WEEKLY" | "MONTHLY" | "YEARLY") => {
                        problems.push(format!(
                            "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY, not {value}"
                        ))
                    }
                    "BYHOUR" | "BYMINUTE" | "BYSECOND" => problems.push(format!(
                        "{key} is not taken: a window starts at its DTSTART time and lasts its duration"
                    )),
                    _ => {}
                }
            }
        }
        match self.set() {
            Err(err) => problems.push(format!("start or rule: {err}")),
            Ok(_) => {
                if let Ok(first) = instant(&self.dtstart)
                    && first.year() < EARLIEST_YEAR
                {
                    problems.push(format!("the window starts before {EARLIEST_YEAR}"));
                }
                if self.occurrences(1).is_empty() {
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
        let duration = Duration::seconds(self.duration_seconds);
        let set = self.set().ok()?;
        let mut covering = None;
        // `limit` keeps rrule's own guard on: a rule that never matches (30 February) ends the
        // walk instead of looping.
        for (walked, start) in set.limit().into_iter().enumerate() {
            let start = start.with_timezone(&Utc);
            if start > at {
                return covering;
            }
            if at < start + duration {
                covering = Some((start, start + duration));
            }
            if walked >= WALK_MAX {
                return Some((at, at + duration));
            }
        }
        covering
    }

    /// The first `count` occurrences from the start, as UTC intervals.
    pub fn occurrences(&self, count: u16) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let duration = Duration::seconds(self.duration_seconds);
        self.set()
            .map(|set| {
                set.all(count)
                    .dates
                    .iter()
                    .map(|start| {
                        let start = start.with_timezone(&Utc);
                        (start, start + duration)
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
    for c in date.chars() {
        match c {
            '0'..='9' => number.push(c),
            'W' => seconds += number.parse::<i64>().ok()? * 7 * 86_400,
            'D' => seconds += number.parse::<i64>().ok()? * 86_400,
            _ => return None,
        }
        if !c.is_ascii_digit() {
            number.clear();
        }
    }
    for c in time.chars() {
        match c {
            '0'..='9' => number.push(c),
            'H' => seconds += number.parse::<i64>().ok()? * 3600,
            'M' => seconds += number.parse::<i64>().ok()? * 60,
            'S' => seconds += number.parse::<i64>().ok()?,
            _ => return None,
        }
        if !c.is_ascii_digit() {
            number.clear();
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
    let mut event: Option<Vec<String>> = None;
    for line in lines {
        match line.as_str() {
            "BEGIN:VEVENT" => event = Some(Vec::new()),
            "END:VEVENT" => {
                let Some(properties) = event.take() else {
                    problems.push("END:VEVENT without BEGIN:VEVENT".to_owned());
                    continue;
                };
                let get = |name: &str| {
                    properties.iter().find(|line| {
                        line.strip_prefix(name)
                            .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(';'))
                    })
                };
                let summary = get("SUMMARY")
                    .and_then(|line| line.split_once(':'))
                    .map_or("(no summary)".to_owned(), |(_, value)| {
                        value.trim().to_owned()
                    });
                let Some(dtstart) = get("DTSTART") else {
                    problems.push(format!("event `{summary}`: no DTSTART"));
                    continue;
                };
                let duration = match (get("DURATION"), get("DTEND")) {
                    (Some(line), _) => line
                        .split_once(':')
                        .and_then(|(_, value)| parse_duration(value.trim()))
                        .ok_or_else(|| {
                            format!("event `{summary}`: DURATION is not an RFC 5545 duration")
                        }),
                    (None, Some(end)) => match (instant(dtstart), instant(end)) {
                        (Ok(start), Ok(end)) => Ok((end - start).num_seconds()),
                        (Err(err), _) | (_, Err(err)) => Err(format!("event `{summary}`: {err}")),
                    },
                    (None, None) => Err(format!("event `{summary}`: neither DTEND nor DURATION")),
                };
                let duration = match duration {
                    Ok(duration) => duration,
                    Err(problem) => {
                        problems.push(problem);
                        continue;
                    }
                };
                let window = Window {
                    name: summary.clone(),
                    kind,
                    dtstart: dtstart.clone(),
                    duration_seconds: duration,
                    rrule: get("RRULE").map(|line| line.trim_start_matches("RRULE:").to_owned()),
                    environments: environments.to_vec(),
                    business_units: business_units.to_vec(),
                };
                for problem in window.problems() {
                    problems.push(format!("event `{summary}`: {problem}"));
                }
                windows.push(window);
            }
            _ => {
                if let Some(properties) = event.as_mut() {
                    properties.push(line);
                }
            }
        }
    }
    if windows.is_empty() && problems.is_empty() {
        problems.push("the file has no VEVENT".to_owned());
    }
    if windows.len() > IMPORT_EVENTS_MAX {
        problems.push(format!("more than {IMPORT_EVENTS_MAX} events"));
    }
    if problems.is_empty() {
        Ok(windows)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
