//! `steward drift report`: PSI and the two-sample KS test for every numeric column shared by
//! a reference sample and a current (validation) sample, both CSV with a header row. The
//! report is what the drift gate of a promotion checks against an environment's thresholds.
//!
//! Cells that are empty or not numbers are skipped per column (and counted); a column with no
//! numbers on either side is reported as not comparable.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};
use steward_core::drift::{self, Binning};

/// Bound on the rows read from each file (the exact KS test takes at most 10,000 per sample).
pub const DRIFT_ROWS_MAX: usize = 1_000_000;

struct Table {
    columns: Vec<String>,
    values: BTreeMap<String, Vec<f64>>,
    skipped: BTreeMap<String, usize>,
    rows: usize,
}

fn read(path: &Path) -> anyhow::Result<Table> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let columns: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .iter()
        .map(|name| name.trim().to_owned())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for column in &columns {
        anyhow::ensure!(
            seen.insert(column.as_str()),
            "{}: column `{column}` appears twice in the header",
            path.display()
        );
    }
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows = 0;
    for (index, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), index + 2))?;
        rows += 1;
        anyhow::ensure!(
            rows <= DRIFT_ROWS_MAX,
            "{} has more than {DRIFT_ROWS_MAX} rows",
            path.display()
        );
        for (column, cell) in columns.iter().zip(record.iter()) {
            match cell.trim().parse::<f64>() {
                Ok(value) if value.is_finite() => {
                    values.entry(column.clone()).or_default().push(value)
                }
                _ => *skipped.entry(column.clone()).or_default() += 1,
            }
        }
    }
    Ok(Table {
        columns,
        values,
        skipped,
        rows,
    })
}

/// The drift report of `current` against `reference`, over `only` (default: every column in
/// both files).
pub fn report(reference: &Path, current: &Path, only: &[String]) -> anyhow::Result<Value> {
    let (reference_table, current_table) = (read(reference)?, read(current)?);
    let columns: Vec<String> = if only.is_empty() {
        reference_table
            .columns
            .iter()
            .filter(|column| current_table.columns.contains(column))
            .cloned()
            .collect()
    } else {
        for column in only {
            anyhow::ensure!(
                reference_table.columns.contains(column) && current_table.columns.contains(column),
                "column `{column}` is not in both files"
            );
        }
        only.to_vec()
    };
    anyhow::ensure!(!columns.is_empty(), "the two files share no column");
    let mut items = Vec::new();
    for column in &columns {
        let empty = Vec::new();
        let a = reference_table.values.get(column).unwrap_or(&empty);
        let b = current_table.values.get(column).unwrap_or(&empty);
        let skipped = json!({
            "reference": reference_table.skipped.get(column).copied().unwrap_or(0),
            "current": current_table.skipped.get(column).copied().unwrap_or(0),
        });
        let mut item = json!({"column": column, "reference_values": a.len(), "current_values": b.len(), "skipped": skipped});
        match (drift::psi(a, b), drift::ks_2samp(a, b)) {
            (Ok(psi), ks) => {
                item["psi"] = json!(psi.value);
                item["psi_binning"] = json!(match psi.binning {
                    Binning::Numeric { edges } => format!("{} Sturges bins", edges.len() - 1),
                    Binning::Categorical { values } => format!("{} values", values.len()),
                });
                match ks {
                    Ok(ks) => {
                        item["ks_statistic"] = json!(ks.statistic);
                        item["ks_pvalue"] = json!(ks.pvalue);
                    }
                    // Too large for the exact test: decided by PSI alone, and said so.
                    Err(err) => item["note"] = json!(format!("KS not computed: {err}")),
                }
            }
            (Err(err), _) => item["note"] = json!(format!("not compared: {err}")),
        }
        items.push(item);
    }
    Ok(json!({
        "reference": {"file": reference.display().to_string(), "rows": reference_table.rows},
        "current": {"file": current.display().to_string(), "rows": current_table.rows},
        "methods": {
            "psi": "Evidently: Sturges bins over both samples when the reference has more than 20 distinct values, else one bin per value; empty bins filled",
            "ks": "two-sample Kolmogorov-Smirnov, two-sided, exact (scipy ks_2samp's default up to 10,000 values per sample)",
        },
        "items": items,
    }))
}

/// Columns that drifted: PSI at or above `psi_threshold` (Evidently's `>=`), or a KS p-value at
/// or below `ks_alpha` (Evidently's `<=`). Columns that could not be compared (no numbers) are
/// reported with a note, not as drift.
pub fn drifted(report: &Value, psi_threshold: f64, ks_alpha: f64) -> Vec<String> {
    report["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| {
            item["psi"].as_f64().is_some_and(|psi| psi >= psi_threshold)
                || item["ks_pvalue"].as_f64().is_some_and(|p| p <= ks_alpha)
        })
        .map(|item| item["column"].as_str().unwrap_or_default().to_owned())
        .collect()
}
