//! Matching a package's dependencies against advisories in the OSV format (P4): PyPI
//! `ECOSYSTEM` ranges and `versions` lists, PEP 440 order from `pep440_rs`, and severities
//! from the advisory (GitHub's `database_specific.severity`, else the CVSS v3 base score).
//!
//! Versions that are not PEP 440 are "legacy" and sort below every PEP 440 version, as
//! osv-scanner's PyPI comparator does. Invariant: pure; advisories are data handed in.

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::Version;
use serde::Deserialize;

use crate::sbom::{Dependency, normalize_name};

/// Bound on one advisory file.
pub const ADVISORY_BYTES_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            "unknown" => Some(Severity::Unknown),
            _ => None,
        }
    }

    /// Whether a finding of this severity stops a gate set at `threshold`. An advisory
    /// nobody has rated is not known to be harmless, so it always blocks.
    pub fn blocks(self, threshold: Severity) -> bool {
        self == Severity::Unknown || threshold <= self
    }

    /// CVSS v3 qualitative rating of a base score.
    fn from_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Unknown,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    severity: Vec<SeverityEntry>,
    #[serde(default)]
    affected: Vec<Affected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct SeverityEntry {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Affected {
    package: Option<Package>,
    #[serde(default)]
    ranges: Vec<Range>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Package {
    ecosystem: String,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Debug, Clone, Deserialize)]
struct Event {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

/// A dependency an advisory affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub package: String,
    pub version: String,
    pub advisory: String,
    pub severity: Severity,
    /// The lowest fixed version above the dependency's, if the advisory names one.
    pub fixed: Option<String>,
    pub summary: String,
}

pub fn parse(text: &str) -> Result<Advisory, String> {
    if text.len() > ADVISORY_BYTES_MAX {
        return Err(format!(
            "advisory is {} bytes, more than the limit of {ADVISORY_BYTES_MAX}",
            text.len()
        ));
    }
    serde_json::from_str(text).map_err(|err| format!("not an OSV record: {err}"))
}

/// A version as osv-scanner orders PyPI versions: PEP 440, else legacy (below all PEP 440).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PyVersion {
    Legacy(String),
    Pep440(Version),
}

impl PyVersion {
    fn parse(text: &str) -> PyVersion {
        let trimmed = text.trim();
        let without_v = trimmed.strip_prefix(['v', 'V']).unwrap_or(trimmed);
        match Version::from_str(without_v) {
            Ok(version) => PyVersion::Pep440(version),
            Err(_) => PyVersion::Legacy(trimmed.to_owned()),
        }
    }
}

impl PartialOrd for PyVersion {
    fn partial_cmp(&self, other: &PyVersion) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PyVersion {
    fn cmp(&self, other: &PyVersion) -> Ordering {
        match (self, other) {
            (PyVersion::Pep440(a), PyVersion::Pep440(b)) => a.cmp(b),
            (PyVersion::Legacy(a), PyVersion::Legacy(b)) => a.cmp(b),
            (PyVersion::Legacy(_), PyVersion::Pep440(_)) => Ordering::Less,
            (PyVersion::Pep440(_), PyVersion::Legacy(_)) => Ordering::Greater,
        }
    }
}

/// Compares two PyPI version strings as the matcher does (exposed for the golden table).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    PyVersion::parse(a).cmp(&PyVersion::parse(b))
}

fn range_affects(range: &Range, version: &PyVersion) -> bool {
    if range.kind != "ECOSYSTEM" {
        return false;
    }
    // Sort the events by version ("0" first), then walk them.
    let mut events: Vec<(PyVersion, &Event)> = range
        .events
        .iter()
        .filter_map(|event| {
            let at = event
                .introduced
                .as_deref()
                .or(event.fixed.as_deref())
                .or(event.last_affected.as_deref())
                .or(event.limit.as_deref())?;
            let key = if at == "0" {
                PyVersion::Legacy(String::new())
            } else {
                PyVersion::parse(at)
            };
            Some((key, event))
        })
        .collect();
    events.sort_by(|a, b| a.0.cmp(&b.0));
    let mut vulnerable = false;
    for (at, event) in events {
        if event.introduced.is_some() {
            if event.introduced.as_deref() == Some("0") || at <= *version {
                vulnerable = true;
            }
        } else if event.fixed.is_some() {
            if at <= *version {
                vulnerable = false;
            }
        } else if event.last_affected.is_some() {
            if at < *version {
                vulnerable = false;
            }
        } else if event.limit.as_deref().is_some_and(|limit| limit != "*") && at <= *version {
            vulnerable = false;
        }
    }
    vulnerable
}

impl Advisory {
    pub fn severity(&self) -> Severity {
        if let Some(severity) = self
            .database_specific
            .as_ref()
            .and_then(|specific| specific["severity"].as_str())
            .and_then(Severity::parse)
        {
            return severity;
        }
        self.severity
            .iter()
            .filter(|entry| entry.kind.starts_with("CVSS_V3"))
            .filter_map(|entry| cvss3_base_score(&entry.score))
            .map(Severity::from_score)
            .max()
            .unwrap_or(Severity::Unknown)
    }

    /// The finding for one dependency, if this advisory affects it.
    pub fn check(&self, dependency: &Dependency) -> Option<Finding> {
        if self.withdrawn.is_some() {
            return None;
        }
        // PEP 440: advisories name public versions, and against a public version the
        // candidate's local label (`+cpu`) is ignored, so a local build of an affected
        // release is affected and one of a fixed release is fixed.
        let version = match PyVersion::parse(&dependency.version) {
            PyVersion::Pep440(version) => PyVersion::Pep440(version.without_local()),
            legacy => legacy,
        };
        let mut hit = false;
        let mut fixes: Vec<PyVersion> = Vec::new();
        for affected in &self.affected {
            let Some(package) = &affected.package else {
                continue;
            };
            if package.ecosystem != "PyPI" || normalize_name(&package.name) != dependency.name {
                continue;
            }
            if affected
                .versions
                .iter()
                .any(|listed| listed == &dependency.version || PyVersion::parse(listed) == version)
                || affected
                    .ranges
                    .iter()
                    .any(|range| range_affects(range, &version))
            {
                hit = true;
            }
            fixes.extend(
                affected
                    .ranges
                    .iter()
                    .flat_map(|range| range.events.iter())
                    .filter_map(|event| event.fixed.as_deref())
                    .map(PyVersion::parse),
            );
        }
        if !hit {
            return None;
        }
        fixes.retain(|fixed| *fixed > version);
        fixes.sort();
        let fixed = fixes.first().map(|fixed| match fixed {
            PyVersion::Pep440(version) => version.to_string(),
            PyVersion::Legacy(text) => text.clone(),
        });
        Some(Finding {
            package: dependency.name.clone(),
            version: dependency.version.clone(),
            advisory: self.id.clone(),
            severity: self.severity(),
            fixed,
            summary: self.summary.clone(),
        })
    }
}

/// Every finding, most severe first.
pub fn scan(dependencies: &[Dependency], advisories: &[Advisory]) -> Vec<Finding> {
    let mut findings: Vec<Finding> = dependencies
        .iter()
        .flat_map(|dependency| {
            advisories
                .iter()
                .filter_map(|advisory| advisory.check(dependency))
        })
        .collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.package.cmp(&b.package))
            .then(a.advisory.cmp(&b.advisory))
    });
    findings
}

/// CVSS v3.x base score from a vector (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`).
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut metrics = std::collections::BTreeMap::new();
    for part in vector.split('/').skip(1) {
        let (key, value) = part.split_once(':')?;
        metrics.insert(key, value);
    }
    let scope_changed = *metrics.get("S")? == "C";
    let av = match *metrics.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *metrics.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*metrics.get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *metrics.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |key: &str| -> Option<f64> {
        match *metrics.get(key)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    // CVSS 3.1 "round up" to one decimal, with the specification's integer trick.
    let scaled = (raw * 100_000.0).round() as i64;
    Some(if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        ((scaled / 10_000) + 1) as f64 / 10.0
    })
}

#[cfg(test)]
mod tests;
