//! `steward policy test`: golden files of requests and the decisions they must get.
//!
//! A file is YAML: `cases:` a list of `{name, request, expect: allow|deny, reasons?}`. When
//! `reasons` is given, the decision's policy ids must equal it exactly, so a case pins not
//! only the outcome but the rule that produced it.

use serde::Deserialize;

use crate::{Decision, Engine, Request};

/// Bound on one test file.
pub const TEST_FILE_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestFileError {
    #[error("test file is {0} bytes, more than the limit of {TEST_FILE_BYTES_MAX}")]
    TooLarge(usize),
    #[error("test file is not valid: {0}")]
    Invalid(String),
    #[error("test file has no cases")]
    Empty,
}

#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub name: String,
    pub passed: bool,
    /// What was expected, e.g. `deny (steward.sod.author-cannot-approve)`.
    pub expected: String,
    pub decision: Decision,
}

impl CaseOutcome {
    pub fn actual(&self) -> String {
        describe(self.decision.allowed, &self.decision.reasons)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: Request,
    expect: Expected,
    #[serde(default)]
    reasons: Option<Vec<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Expected {
    Allow,
    Deny,
}

fn describe(allowed: bool, reasons: &[String]) -> String {
    let effect = if allowed { "allow" } else { "deny" };
    format!("{effect} ({})", reasons.join(", "))
}

/// Runs every case of one file; a malformed file is an error, a failing case is not.
pub fn run_test_file(engine: &Engine, text: &str) -> Result<Vec<CaseOutcome>, TestFileError> {
    if text.len() > TEST_FILE_BYTES_MAX {
        return Err(TestFileError::TooLarge(text.len()));
    }
    let file: File = serde_saphyr::from_str(text)
        .map_err(|err| TestFileError::Invalid(err.to_string().replace('\n', " ")))?;
    if file.cases.is_empty() {
        return Err(TestFileError::Empty);
    }
    let mut outcomes = Vec::new();
    for case in file.cases {
        let decision = engine.authorize(&case.request);
        let allowed_ok = decision.allowed == (case.expect == Expected::Allow);
        let reasons_ok = case.reasons.as_ref().is_none_or(|reasons| {
            let mut want = reasons.clone();
            want.sort();
            want == decision.reasons
        });
        let expected = match &case.reasons {
            Some(reasons) => describe(case.expect == Expected::Allow, reasons),
            None => (if case.expect == Expected::Allow {
                "allow"
            } else {
                "deny"
            })
            .to_owned(),
        };
        outcomes.push(CaseOutcome {
            name: case.name,
            passed: allowed_ok && reasons_ok,
            expected,
            decision,
        });
    }
    Ok(outcomes)
}
