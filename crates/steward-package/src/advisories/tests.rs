//! Advisory matching: OSV ranges and lists, PEP 440 order (checked against Python's
//! `packaging` on a committed golden table), severities and CVSS scores.

use super::*;

fn dependency(name: &str, version: &str) -> Dependency {
    Dependency {
        name: name.into(),
        version: version.into(),
        source: "requirements.txt:1".into(),
    }
}

const ADVISORY: &str = r#"{
  "id": "GHSA-test-0001",
  "summary": "Remote code execution in example-lib",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "Example_Lib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.4.2"}, {"introduced": "2.0.0"}, {"fixed": "2.1.1"}]}],
    "versions": ["0.9"]
  }],
  "database_specific": {"severity": "HIGH"}
}"#;

#[test]
fn ranges_and_lists_match_as_osv_defines() {
    let advisory = parse(ADVISORY).unwrap();
    let check = |version: &str| {
        advisory
            .check(&dependency("example-lib", version))
            .map(|finding| finding.fixed)
    };
    assert_eq!(check("1.4.1"), Some(Some("1.4.2".into())));
    assert_eq!(check("1.4.2"), None);
    assert_eq!(check("1.10.0"), None);
    assert_eq!(
        check("2.0.0rc1"),
        None,
        "a pre-release of 2.0.0 sorts before 2.0.0"
    );
    assert_eq!(check("2.0.0"), Some(Some("2.1.1".into())));
    assert_eq!(check("2.1.1"), None);
    assert_eq!(
        check("2.1.1+cpu"),
        None,
        "a local build of the fix is fixed"
    );
    assert_eq!(check("0.9+local"), Some(Some("1.4.2".into())));
    assert_eq!(check("1.4.2.post1"), None);
    assert_eq!(
        check("1.4.2.dev0"),
        Some(Some("1.4.2".into())),
        "dev releases sort before the release"
    );
    assert_eq!(
        check("not-a-version"),
        Some(Some("1.4.2".into())),
        "legacy versions sort below every PEP 440 version"
    );
    assert!(advisory.check(&dependency("other-lib", "1.0")).is_none());
}

#[test]
fn last_affected_withdrawn_and_severity() {
    let advisory = parse(r#"{"id": "PYSEC-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.2"}]}]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}"#).unwrap();
    assert!(advisory.check(&dependency("x", "1.2")).is_some());
    assert!(advisory.check(&dependency("x", "1.2.1")).is_none());
    assert!(advisory.check(&dependency("x", "0.9")).is_none());
    // PEP 440: the local label is ignored against a public version.
    assert!(advisory.check(&dependency("x", "1.2+cpu")).is_some());
    assert!(advisory.check(&dependency("x", "1.2.1+cu121")).is_none());
    assert_eq!(advisory.severity(), Severity::Critical);
    let withdrawn = parse(r#"{"id": "PYSEC-2", "withdrawn": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}, "versions": ["1.0"]}]}"#).unwrap();
    assert!(withdrawn.check(&dependency("x", "1.0")).is_none());
}

#[test]
fn cvss_base_scores_match_the_specification_examples() {
    for (vector, score) in [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ] {
        assert_eq!(cvss3_base_score(vector), Some(score), "{vector}");
    }
    assert_eq!(cvss3_base_score("CVSS:3.1/AV:X"), None);
}

/// `test_data/pep440/golden.tsv` was written by `generate.py` with `packaging` (PyPI); each
/// line is `a<TAB>b<TAB>-1|0|1`. CI regenerates it and fails on any difference.
#[test]
fn pep440_order_agrees_with_packaging() {
    let golden = include_str!("../../test_data/pep440/golden.tsv");
    let mut n_cases = 0;
    let mut disagreements = Vec::new();
    for line in golden
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
    {
        let mut parts = line.split('\t');
        let (Some(a), Some(b), Some(expected)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("bad golden line {line:?}")
        };
        let expected = match expected {
            "-1" => Ordering::Less,
            "0" => Ordering::Equal,
            _ => Ordering::Greater,
        };
        n_cases += 1;
        if compare_versions(a, b) != expected {
            disagreements.push(format!(
                "{a} vs {b}: packaging says {expected:?}, we say {:?}",
                compare_versions(a, b)
            ));
        }
    }
    assert!(100 < n_cases, "only {n_cases} golden cases");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn an_unrated_advisory_blocks_at_every_threshold() {
    for threshold in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        assert!(Severity::Unknown.blocks(threshold));
        assert_eq!(
            Severity::Medium.blocks(threshold),
            threshold <= Severity::Medium
        );
    }
}
