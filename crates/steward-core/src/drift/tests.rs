//! Golden values from scipy 1.17.1 and numpy (`test_data/drift/generate.py`), and the edges.

use super::*;

const GOLDEN: &str = include_str!("../../test_data/drift/golden.json");

fn relative(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs())
    }
}

fn numbers(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn psi_and_ks_match_scipy_and_numpy_on_every_golden_case() {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (reference, current) = (numbers(&case["reference"]), numbers(&case["current"]));
        let psi = psi(&reference, &current).unwrap();
        let expected = case["psi"].as_f64().unwrap();
        assert!(
            relative(psi.value, expected) < 1e-12,
            "{name}: PSI {} vs numpy {expected}",
            psi.value
        );
        let ks = ks_2samp(&reference, &current).unwrap();
        let (d, p) = (
            case["ks_statistic"].as_f64().unwrap(),
            case["ks_pvalue"].as_f64().unwrap(),
        );
        assert!(
            relative(ks.statistic, d) < 1e-15,
            "{name}: D {} vs scipy {d}",
            ks.statistic
        );
        assert!(
            relative(ks.pvalue, p) < 1e-9,
            "{name}: p {} vs scipy {p}",
            ks.pvalue
        );
    }
}

#[test]
fn psi_bins_as_evidently_does() {
    // Few distinct values: one bin per value, a category only in current filled with 1e-4.
    let psi = psi(&[1.0, 1.0, 2.0], &[1.0, 3.0]).unwrap();
    assert_eq!(
        psi.binning,
        Binning::Categorical {
            values: vec![1.0, 2.0, 3.0]
        }
    );
    assert_eq!(psi.reference_shares[2], 1e-4);
    // Many: Sturges bins over both samples; all values land in a bin (the last one closed).
    let reference: Vec<f64> = (0..100).map(f64::from).collect();
    let psi = super::psi(&reference, &reference).unwrap();
    let Binning::Numeric { edges } = &psi.binning else {
        panic!("numeric")
    };
    assert_eq!(edges.len(), 10, "ceil(log2(200) + 1) = 9 bins");
    assert_eq!((edges[0], edges[9]), (0.0, 99.0));
    assert!((psi.reference_shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(psi.value, 0.0);
}

#[test]
fn bad_samples_are_refused_by_name() {
    assert_eq!(
        psi(&[f64::NAN], &[1.0]).unwrap_err(),
        DriftError::Empty("reference")
    );
    assert_eq!(
        ks_2samp(&[1.0], &[]).unwrap_err(),
        DriftError::Empty("current")
    );
    let big = vec![0.5; KS_EXACT_MAX + 1];
    assert_eq!(
        ks_2samp(&big, &[1.0]).unwrap_err(),
        DriftError::TooLarge {
            which: "reference",
            size: KS_EXACT_MAX + 1
        }
    );
    // Non-finite values are dropped, not counted.
    let with_nan = ks_2samp(&[1.0, f64::NAN, 2.0], &[1.5, f64::INFINITY]).unwrap();
    assert_eq!(with_nan, ks_2samp(&[1.0, 2.0], &[1.5]).unwrap());
}

#[test]
fn identical_samples_have_p_one_and_disjoint_ones_a_tiny_p() {
    let same = ks_2samp(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!((same.statistic, same.pvalue), (0.0, 1.0));
    let apart = ks_2samp(
        &(0..50).map(f64::from).collect::<Vec<_>>(),
        &(100..150).map(f64::from).collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(apart.statistic, 1.0);
    // Exactly 2 / C(100, 50): the two paths that run along the edges.
    let expected = 2.0 / 1.008_913_445_455_642e29;
    assert!(relative(apart.pvalue, expected) < 1e-12, "{}", apart.pvalue);
}

#[test]
fn extreme_values_and_large_categorical_samples_are_handled() {
    let mut extreme: Vec<f64> = (0..21).map(f64::from).collect();
    extreme.extend([-1.7e308, 1.7e308]);
    assert_eq!(psi(&extreme, &[0.0]).unwrap_err(), DriftError::Range);
    // Two categories against 200,000 values: counted by search, not by scanning.
    let reference: Vec<f64> = (0..200_000).map(|i| f64::from(i % 2)).collect();
    let started = std::time::Instant::now();
    let result = psi(&reference, &reference).unwrap();
    assert_eq!(result.value, 0.0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // -0.0 and 0.0 are one value.
    let signed = psi(&[-0.0, 0.0, 1.0], &[0.0, 1.0]).unwrap();
    assert_eq!(
        signed.binning,
        Binning::Categorical {
            values: vec![-0.0, 1.0]
        }
    );
}
