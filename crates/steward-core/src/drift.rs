//! Drift statistics between a reference sample and a current one (G4): the population
//! stability index and the two-sample Kolmogorov–Smirnov test. Golden values from scipy and
//! numpy are in `test_data/drift/golden.json` (made by `generate.py`, diffed in CI).
//!
//! PSI follows Evidently, the reference most tools are compared with: a numeric sample with
//! more than 20 distinct reference values is cut into Sturges bins over both samples
//! together (numpy's `histogram_bin_edges(…, "sturges")`: equal widths, the last bin closed),
//! any other sample gets one bin per value; an empty bin is filled, per sample, with the
//! smallest non-zero share / 10⁶ if that share is at most 10⁻⁴, else with 10⁻⁴; then
//! PSI = Σ (r − c) · ln(r / c).
//!
//! KS: D = sup |F_ref − F_cur| as scipy computes it, and the two-sided p-value that scipy's
//! `ks_2samp` gives with its default method for samples of at most 10,000 each: the exact
//! probability, under the null hypothesis, that a random path through the m × n lattice
//! reaches a distance of at least D. It is summed from the probabilities of the first steps
//! that leave the band, so small p-values keep their precision. Larger samples are refused
//! (`KS_EXACT_MAX`): scipy switches to another method there, which this module does not match.
//!
//! Non-finite values (NaN, ±∞) are dropped first, as Evidently does.

/// Samples larger than this are refused by the exact KS test (scipy's `MAX_AUTO_N`).
pub const KS_EXACT_MAX: usize = 10_000;
/// Distinct reference values above which a numeric sample is binned rather than counted.
pub const PSI_CATEGORICAL_MAX: usize = 20;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    #[error("the {0} sample has no finite values")]
    Empty(&'static str),
    #[error("the {which} sample has {size} values; the exact KS test takes at most {KS_EXACT_MAX}")]
    TooLarge { which: &'static str, size: usize },
    #[error("the values span more than a float can hold; bins cannot be cut")]
    Range,
}

fn finite(values: &[f64], which: &'static str) -> Result<Vec<f64>, DriftError> {
    let kept: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if kept.is_empty() {
        return Err(DriftError::Empty(which));
    }
    Ok(kept)
}

/// How PSI binned the samples.
#[derive(Debug, Clone, PartialEq)]
pub enum Binning {
    /// Sturges bins, with their edges.
    Numeric { edges: Vec<f64> },
    /// One bin per distinct value.
    Categorical { values: Vec<f64> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Psi {
    pub value: f64,
    pub binning: Binning,
    /// Shares per bin after the empty-bin fill.
    pub reference_shares: Vec<f64>,
    pub current_shares: Vec<f64>,
}

/// numpy's `linspace(start, stop, num)` (endpoint included), value for value.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let step = (stop - start) / div;
    let mut out: Vec<f64> = (0..num)
        .map(|k| {
            if step == 0.0 {
                (k as f64 / div) * (stop - start) + start
            } else {
                k as f64 * step + start
            }
        })
        .collect();
    if let Some(last) = out.last_mut() {
        *last = stop;
    }
    out
}

/// numpy's `histogram_bin_edges(values, bins="sturges")`; values spanning more than a float
/// can hold have no edges (numpy raises there too).
fn sturges_edges(values: &[f64]) -> Result<Vec<f64>, DriftError> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(max - min).is_finite() {
        return Err(DriftError::Range);
    }
    let (first, last) = if min == max {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    };
    let width = (max - min) / ((values.len() as f64).log2() + 1.0);
    let bins = if width > 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    Ok(linspace(first, last, bins.max(1) + 1))
}

/// numpy's `histogram(values, edges)` counts: bins `[e_k, e_{k+1})`, the last one closed.
fn histogram(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len() - 1;
    let mut counts = vec![0.0; bins];
    for &value in values {
        if value < edges[0] || value > edges[bins] {
            continue;
        }
        let at = edges.partition_point(|edge| *edge <= value);
        counts[(at - 1).min(bins - 1)] += 1.0;
    }
    counts
}

fn fill_empty(shares: &mut [f64]) {
    let smallest = shares
        .iter()
        .copied()
        .filter(|share| *share > 0.0)
        .fold(f64::INFINITY, f64::min);
    let fill = if smallest <= 1e-4 {
        smallest / 1e6
    } else {
        1e-4
    };
    for share in shares.iter_mut().filter(|share| **share == 0.0) {
        *share = fill;
    }
}

/// The population stability index of `current` against `reference` (Evidently's method).
pub fn psi(reference: &[f64], current: &[f64]) -> Result<Psi, DriftError> {
    let reference = finite(reference, "reference")?;
    let current = finite(current, "current")?;
    let mut distinct = reference.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let (binning, mut r, mut c) = if distinct.len() > PSI_CATEGORICAL_MAX {
        let mut both = reference.clone();
        both.extend_from_slice(&current);
        let edges = sturges_edges(&both)?;
        let r = histogram(&reference, &edges);
        let c = histogram(&current, &edges);
        (Binning::Numeric { edges }, r, c)
    } else {
        let mut values = distinct;
        values.extend_from_slice(&current);
        values.sort_by(f64::total_cmp);
        values.dedup();
        // One binary search per value over the sorted distinct values (-0.0 and 0.0 are one).
        let count = |sample: &[f64]| -> Vec<f64> {
            let mut counts = vec![0.0; values.len()];
            for x in sample {
                let at = values.partition_point(|v| v.total_cmp(x).is_lt() && v != x);
                if let Some(slot) = counts.get_mut(at) {
                    *slot += 1.0;
                }
            }
            counts
        };
        let (r, c) = (count(&reference), count(&current));
        (Binning::Categorical { values }, r, c)
    };
    let (n_ref, n_cur) = (reference.len() as f64, current.len() as f64);
    r.iter_mut().for_each(|count| *count /= n_ref);
    c.iter_mut().for_each(|count| *count /= n_cur);
    fill_empty(&mut r);
    fill_empty(&mut c);
    let value = r.iter().zip(&c).map(|(r, c)| (r - c) * (r / c).ln()).sum();
    Ok(Psi {
        value,
        binning,
        reference_shares: r,
        current_shares: c,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ks {
    pub statistic: f64,
    pub pvalue: f64,
}

/// The two-sample Kolmogorov–Smirnov test, two-sided, exact (scipy's default up to
/// `KS_EXACT_MAX` values per sample).
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Result<Ks, DriftError> {
    let mut a = finite(reference, "reference")?;
    let mut b = finite(current, "current")?;
    for (which, sample) in [("reference", &a), ("current", &b)] {
        if sample.len() > KS_EXACT_MAX {
            return Err(DriftError::TooLarge {
                which,
                size: sample.len(),
            });
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (m, n) = (a.len(), b.len());
    // D over every data point, as scipy: searchsorted(…, 'right') / size on each side. The
    // same maximum as integers, |i·n − j·m|, decides which lattice points lie outside.
    let (mut statistic, mut h) = (0.0f64, 0u64);
    for &x in a.iter().chain(b.iter()) {
        let i = a.partition_point(|v| *v <= x);
        let j = b.partition_point(|v| *v <= x);
        statistic = statistic.max((i as f64 / m as f64 - j as f64 / n as f64).abs());
        h = h.max((i as u64 * n as u64).abs_diff(j as u64 * m as u64));
    }
    Ok(Ks {
        statistic,
        pvalue: exact_two_sided(m, n, h),
    })
}

/// P(a uniformly random monotone lattice path from (0, 0) to (m, n) reaches a point with
/// |i·n − j·m| ≥ h). Forward over the lattice with the probability of arriving inside the
/// band; each step that leaves it adds its probability to the answer (no subtraction).
fn exact_two_sided(m: usize, n: usize, h: u64) -> f64 {
    if h == 0 {
        return 1.0;
    }
    let outside = |i: usize, j: usize| (i as u64 * n as u64).abs_diff(j as u64 * m as u64) >= h;
    // row[j]: probability of being at (i, j) having stayed inside.
    let mut row = vec![0.0f64; n + 1];
    let mut next = vec![0.0f64; n + 1];
    row[0] = 1.0;
    let mut left = 0.0f64;
    for i in 0..=m {
        next.iter_mut().for_each(|p| *p = 0.0);
        for j in 0..=n {
            let p = row[j];
            if p == 0.0 {
                continue;
            }
            let remaining = (m - i + n - j) as f64;
            if remaining == 0.0 {
                continue;
            }
            // Step in i (a reference value next) or in j, in proportion to what is left.
            if i < m {
                let q = p * (m - i) as f64 / remaining;
                if outside(i + 1, j) {
                    left += q;
                } else {
                    next[j] += q;
                }
            }
            if j < n {
                let q = p * (n - j) as f64 / remaining;
                if outside(i, j + 1) {
                    left += q;
                } else {
                    row[j + 1] += q;
                }
            }
        }
        std::mem::swap(&mut row, &mut next);
    }
    left.min(1.0)
}

#[cfg(test)]
mod tests;
