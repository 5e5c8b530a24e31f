//! Personal data in text (P7): detection of structured identifiers and their redaction with
//! typed placeholders, before dataset and documentation files are packed.
//!
//! Entities: e-mail addresses, phone numbers, payment cards (Luhn-checked), IBANs (mod-97),
//! US social security numbers (with the SSA's never-issued ranges excluded), IPv4 and IPv6
//! addresses, and dates of birth (a date next to "born", "DOB", "date of birth", or in a CSV
//! column so named). Checksums and range rules are what keep precision high: a 16-digit
//! order number that fails Luhn is not a card.
//!
//! Invariants: pure (text in, text and counts out); a report never contains a detected
//! value, only counts; overlapping findings resolve to one (earliest, then longest).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Email,
    Phone,
    CreditCard,
    Iban,
    UsSsn,
    IpAddress,
    DateOfBirth,
}

impl Entity {
    pub const ALL: &'static [Entity] = &[
        Entity::Email,
        Entity::Phone,
        Entity::CreditCard,
        Entity::Iban,
        Entity::UsSsn,
        Entity::IpAddress,
        Entity::DateOfBirth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::Iban => "IBAN",
            Entity::UsSsn => "US_SSN",
            Entity::IpAddress => "IP_ADDRESS",
            Entity::DateOfBirth => "DATE_OF_BIRTH",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub entity: Entity,
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
}

fn regex(pattern: &str) -> Regex {
    // INVARIANT: the patterns are constants, compiled by the tests.
    Regex::new(pattern).expect("constant pattern compiles")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")
});
static CARD_OR_SHORT: LazyLock<Regex> = LazyLock::new(|| regex(r"\b[0-9](?:[ -]?[0-9]){11,18}\b"));
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b"));
static SSN: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\b([0-9]{3})([- ])([0-9]{2})([- ])([0-9]{4})\b"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b",
    )
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)(?:^|[^0-9a-f:])([0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7})(?:$|[^0-9a-f:])")
});
/// Phone numbers in the notations of ITU-T E.123 and national practice: an optional country
/// code (`+44`, with an optional trunk `(0)`), an optional area code in parentheses, digit
/// groups separated by space, dot or hyphen, and an optional extension (`x123`, `ext. 123`).
/// Group 1: country code; 2: parenthesised area code; 3: the groups after the first.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)(\+[0-9]{1,3}(?:[ .-]?\(0\))?[ .-]?)?(\([0-9]{1,5}\)[ .-]?)?[0-9]{1,11}((?:[ .-][0-9]{2,8}){0,5})(?:[ ]?(?:x|ext\.?|extension)[ ]?[0-9]{1,6})?\b",
    )
});
/// Words that make a bare run of digits a phone number when they come just before it.
static PHONE_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|fax|callback|whatsapp|sms)\b[^0-9]{0,30}$",
    )
});
/// Words that make a 12-digit Luhn-valid number a (Maestro) card number.
static CARD_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(?:card|pan|maestro|debit|credit|charged|refund)\b[^0-9]{0,30}$")
});
const DATE: &str = r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}|[0-9]{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? [0-9]{4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? [0-9]{1,2},? [0-9]{4})";
/// The shape of a US social security number (3-2-4), which no phone numbering plan uses.
static SSN_SHAPE: LazyLock<Regex> = LazyLock::new(|| regex(r"^[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}$"));
static DOB_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|born(?: on)?)\b[\s:=,-]*({DATE})"
    ))
});
static DATE_ONLY: LazyLock<Regex> = LazyLock::new(|| regex(&format!(r"(?i)^\s*{DATE}\s*$")));
static DOB_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)^\s*(?:dob|date_of_birth|date of birth|birth_?date|birthday)\s*$")
});

fn digits(text: &str) -> Vec<u32> {
    text.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn luhn_valid(number: &[u32]) -> bool {
    let sum: u32 = number
        .iter()
        .rev()
        .enumerate()
        .map(|(idx, &digit)| {
            if idx % 2 == 1 {
                let d = digit * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_valid(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let value = match c.to_digit(36) {
            Some(value) => value as u64,
            None => return false,
        };
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    remainder == 1
}

/// The SSA never issued area 000, 666 or 900–999, group 00 or serial 0000.
fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let area: u32 = area.parse().unwrap_or(0);
    area != 0 && area != 666 && area < 900 && group != "00" && serial != "0000"
}

/// Every finding in `text`, non-overlapping, in order. `csv` turns on column awareness
/// (a column headed `dob`, `date_of_birth`, … holds dates of birth).
pub fn detect(text: &str, csv: bool) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    let mut push =
        |entity: Entity, start: usize, end: usize| found.push(Finding { entity, start, end });
    for m in EMAIL.find_iter(text) {
        push(Entity::Email, m.start(), m.end());
    }
    // IBAN-shaped strings are never phones, whether or not their checksum holds.
    let mut iban_shaped = Vec::new();
    for m in IBAN.find_iter(text) {
        iban_shaped.push((m.start(), m.end()));
        if iban_valid(m.as_str()) {
            push(Entity::Iban, m.start(), m.end());
        }
    }
    for caps in SSN.captures_iter(text) {
        let (Some(all), Some(area), Some(sep1), Some(group), Some(sep2), Some(serial)) = (
            caps.get(0),
            caps.get(1),
            caps.get(2),
            caps.get(3),
            caps.get(4),
            caps.get(5),
        ) else {
            continue;
        };
        if sep1.as_str() == sep2.as_str()
            && ssn_valid(area.as_str(), group.as_str(), serial.as_str())
        {
            push(Entity::UsSsn, all.start(), all.end());
        }
    }
    for m in CARD_OR_SHORT.find_iter(text) {
        let number = digits(m.as_str());
        // Maestro numbers may have 12 digits, but one in ten 12-digit numbers passes Luhn,
        // so those count only next to a word about cards.
        let long_enough = (13..=19).contains(&number.len())
            || (number.len() == 12 && CARD_CONTEXT.is_match(&text[..m.start()]));
        if long_enough && luhn_valid(&number) {
            push(Entity::CreditCard, m.start(), m.end());
        }
    }
    for m in IPV4.find_iter(text) {
        push(Entity::IpAddress, m.start(), m.end());
    }
    for caps in IPV6.captures_iter(text) {
        if let Some(candidate) = caps.get(1)
            && candidate.as_str().parse::<std::net::Ipv6Addr>().is_ok()
        {
            push(Entity::IpAddress, candidate.start(), candidate.end());
        }
    }
    for caps in DOB_CONTEXT.captures_iter(text) {
        if let Some(date) = caps.get(1) {
            push(Entity::DateOfBirth, date.start(), date.end());
        }
    }
    if csv {
        for (start, end) in dob_column_cells(text) {
            push(Entity::DateOfBirth, start, end);
        }
    }
    for caps in PHONE.captures_iter(text) {
        let Some(m) = caps.get(0) else { continue };
        let body = caps.get(3).map_or("", |groups| groups.as_str());
        let number_end = m
            .as_str()
            .find(['x', 'X', 'e', 'E'])
            .map_or(m.end(), |at| m.start() + m.as_str()[..at].trim_end().len());
        let n_digits = digits(&text[m.start()..number_end]).len();
        let n_groups = body.matches([' ', '.', '-']).count() + 1;
        let trunk = text[m.start()..].starts_with('0');
        // E.164 numbers have at most 15 digits; fewer than 9 is a date, a time or a count.
        // Two bare groups (`2024-000123`) look like a reference number, so a phone needs a
        // country code, an area code in parentheses, at least three groups, two groups after
        // a trunk prefix (`020 7946…`, `08570 192489`), or a word such as "phone" before it.
        let shaped = caps.get(1).is_some()
            || caps.get(2).is_some()
            || 3 <= n_groups
            || (trunk && n_groups == 2)
            || PHONE_CONTEXT.is_match(&text[..m.start()]);
        let inside_iban = iban_shaped
            .iter()
            .any(|(start, end)| *start < m.end() && m.start() < *end);
        if (9..=15).contains(&n_digits) && shaped && !SSN_SHAPE.is_match(m.as_str()) && !inside_iban
        {
            push(Entity::Phone, m.start(), m.end());
        }
    }
    resolve_overlaps(found)
}

/// Cells of CSV columns headed like a date of birth (simple CSV: lines with quotes are skipped).
fn dob_column_cells(text: &str) -> Vec<(usize, usize)> {
    let mut lines = text.split_inclusive('\n');
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<usize> = header
        .trim_end()
        .split(',')
        .enumerate()
        .filter(|(_, name)| DOB_HEADER.is_match(name))
        .map(|(idx, _)| idx)
        .collect();
    if columns.is_empty() {
        return Vec::new();
    }
    let mut cells = Vec::new();
    let mut offset = header.len();
    for line in lines {
        if !line.contains('"') {
            let mut cell_start = offset;
            for (idx, cell) in line.trim_end_matches(['\n', '\r']).split(',').enumerate() {
                if columns.contains(&idx) && DATE_ONLY.is_match(cell) {
                    let leading = cell.len() - cell.trim_start().len();
                    cells.push((
                        cell_start + leading,
                        cell_start + leading + cell.trim().len(),
                    ));
                }
                cell_start += cell.len() + 1;
            }
        }
        offset += line.len();
    }
    cells
}

/// Keeps the earliest finding at each place, the longest when two start together.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Finding> = Vec::new();
    for finding in found {
        if kept.last().is_none_or(|last| last.end <= finding.start) {
            kept.push(finding);
        }
    }
    kept
}

/// Replaces every finding with `<ENTITY>`; returns the text and the counts per entity.
pub fn redact(text: &str, csv: bool) -> (String, BTreeMap<&'static str, u64>) {
    let mut out = String::with_capacity(text.len());
    let mut counts = BTreeMap::new();
    let mut at = 0;
    for finding in detect(text, csv) {
        out.push_str(&text[at..finding.start]);
        out.push('<');
        out.push_str(finding.entity.name());
        out.push('>');
        *counts.entry(finding.entity.name()).or_insert(0) += 1;
        at = finding.end;
    }
    out.push_str(&text[at..]);
    (out, counts)
}

#[cfg(test)]
mod tests;
