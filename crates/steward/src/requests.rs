//! `steward requests export`: the data plane's request log (CloudEvents records, one per
//! line, in `<data dir>/requests/<retention class>/<YYYY-MM-DD>.jsonl`) out as one JSONL or
//! Parquet file, filtered by day, retention class, model, version and route.
//!
//! Invariants:
//! - Read-only: the log is never changed; the output is written to a temporary name, synced
//!   and renamed, so a reader never sees half a file.
//! - Every line is checked: one that is not a JSON object is an error naming its file and
//!   line, never skipped silently.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Parquet,
}

/// What to take from the log.
#[derive(Debug, Default)]
pub struct Filter {
    /// First and last day (`YYYY-MM-DD`, inclusive).
    pub from: Option<String>,
    pub to: Option<String>,
    pub retention_class: Option<String>,
    /// `unit:model`.
    pub model: Option<String>,
    pub version: Option<String>,
    pub route: Option<String>,
}

/// Rows written to one Parquet row group, at most (bounds memory on large logs).
pub const ROWS_PER_GROUP: usize = 65_536;

/// The day files of the log that the filter's days and class select, in order.
fn day_files(dir: &Path, filter: &Filter) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if !dir.exists() {
        anyhow::bail!("{} does not exist: nothing was logged there", dir.display());
    }
    for class in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let class = class?;
        let name = class.file_name().to_string_lossy().into_owned();
        if !class.file_type()?.is_dir()
            || filter
                .retention_class
                .as_ref()
                .is_some_and(|wanted| *wanted != name)
        {
            continue;
        }
        for day in std::fs::read_dir(class.path())? {
            let path = day?.path();
            let Some(date) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".jsonl"))
            else {
                continue;
            };
            if filter.from.as_deref().is_some_and(|from| date < from)
                || filter.to.as_deref().is_some_and(|to| date > to)
            {
                continue;
            }
            files.push(path);
        }
    }
    files.sort_by(|a, b| (a.file_name(), a.parent()).cmp(&(b.file_name(), b.parent())));
    Ok(files)
}

fn selected(record: &Value, filter: &Filter) -> bool {
    let is = |key: &str, wanted: &Option<String>| {
        wanted
            .as_deref()
            .is_none_or(|wanted| record[key].as_str() == Some(wanted))
    };
    is("model", &filter.model) && is("modelversion", &filter.version) && is("route", &filter.route)
}

/// Writes the selected records to `out`; returns how many.
pub fn export(dir: &Path, filter: &Filter, format: Format, out: &Path) -> anyhow::Result<u64> {
    let files = day_files(dir, filter)?;
    let temporary = out.with_file_name(format!(
        ".{}.tmp",
        out.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".into())
    ));
    let file = std::fs::File::create(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    let mut count = 0u64;
    let file = match format {
        Format::Jsonl => {
            let mut writer = std::io::BufWriter::new(file);
            for_each(&files, filter, |line, _| {
                writer.write_all(line.as_bytes())?;
                writer.write_all(b"\n")?;
                count += 1;
                Ok(())
            })?;
            writer.into_inner().map_err(|err| err.into_error())?
        }
        Format::Parquet => {
            let properties = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by(format!("steward {}", env!("CARGO_PKG_VERSION")))
                .build();
            let mut writer = ArrowWriter::try_new(file, schema(), Some(properties))?;
            let mut rows: Vec<Value> = Vec::new();
            for_each(&files, filter, |_, record| {
                rows.push(record);
                count += 1;
                if rows.len() == ROWS_PER_GROUP {
                    writer.write(&batch(&rows)?)?;
                    rows.clear();
                }
                Ok(())
            })?;
            if !rows.is_empty() {
                writer.write(&batch(&rows)?)?;
            }
            writer.into_inner()?
        }
    };
    file.sync_all()?;
    std::fs::rename(&temporary, out).with_context(|| format!("renaming to {}", out.display()))?;
    Ok(count)
}

/// Calls `each` with every selected record (its line and its JSON), in file order.
fn for_each(
    files: &[PathBuf],
    filter: &Filter,
    mut each: impl FnMut(&str, Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for path in files {
        let file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut reader = std::io::BufReader::new(file);
        let mut line = String::new();
        for number in 1.. {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .with_context(|| format!("reading {}", path.display()))?;
            if read == 0 {
                break;
            }
            // A last line without its newline is being written right now: not yet a record.
            let Some(complete) = line.strip_suffix('\n') else {
                break;
            };
            if complete.is_empty() {
                continue;
            }
            let record: Value = serde_json::from_str(complete)
                .ok()
                .filter(Value::is_object)
                .with_context(|| {
                    format!(
                        "{} line {number}: not a request log record (a JSON object)",
                        path.display()
                    )
                })?;
            if selected(&record, filter) {
                each(complete, record)?;
            }
        }
    }
    Ok(())
}

const TEXT_COLUMNS: &[&str] = &[
    "id",
    "source",
    "model",
    "modelversion",
    "modeldigest",
    "environment",
    "tenant",
    "requestid",
    "traceid",
    "spanid",
    "route",
    "phase",
    "retentionclass",
];

fn schema() -> Arc<Schema> {
    let mut fields = vec![Field::new(
        "time",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )];
    fields.extend(
        TEXT_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, true)),
    );
    fields.push(Field::new("status", DataType::Int64, true));
    fields.push(Field::new("latency_us", DataType::Int64, true));
    // The payload (inputs, outputs, error) as the record holds it: JSON text.
    fields.push(Field::new("data", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

fn batch(rows: &[Value]) -> anyhow::Result<RecordBatch> {
    let mut times = Vec::with_capacity(rows.len());
    for row in rows {
        let text = row["time"].as_str().unwrap_or_default();
        let time = chrono::DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("record `{}` has no valid time", row["id"]))?;
        times.push(time.timestamp_micros());
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(
        TimestampMicrosecondArray::from(times).with_timezone("UTC"),
    )];
    for name in TEXT_COLUMNS {
        columns.push(Arc::new(StringArray::from(
            rows.iter()
                .map(|row| row[*name].as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
        )));
    }
    for name in ["status", "latency_us"] {
        columns.push(Arc::new(Int64Array::from(
            rows.iter()
                .map(|row| row["data"][name].as_i64())
                .collect::<Vec<_>>(),
        )));
    }
    columns.push(Arc::new(StringArray::from(
        rows.iter()
            .map(|row| row["data"].to_string())
            .collect::<Vec<_>>(),
    )));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, time: &str, version: &str, route: &str) -> String {
        serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/steward/gateway/staging/retail:credit",
            "type": "dev.steward.inference.logged", "time": time, "model": "retail:credit",
            "modelversion": version, "modeldigest": "sha256:ab", "environment": "staging",
            "requestid": "r", "traceid": "4bf92f3577b34da6a3ce929d0e0e4736", "route": route,
            "phase": "canary", "retentionclass": "standard",
            "data": {"status": 200, "latency_us": 120, "inputs": [], "outputs": [], "error": null},
        })
        .to_string()
    }

    #[test]
    fn exports_filter_by_day_and_version_and_refuse_broken_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests");
        std::fs::create_dir_all(log.join("standard")).unwrap();
        std::fs::write(
            log.join("standard/2026-11-26.jsonl"),
            format!(
                "{}\n{}\n",
                record("a", "2026-11-26T10:00:00.000000Z", "1.0.0", "stable"),
                record("b", "2026-11-26T10:00:01.000000Z", "1.1.0", "canary")
            ),
        )
        .unwrap();
        std::fs::write(
            log.join("standard/2026-11-27.jsonl"),
            format!(
                "{}\n",
                record("c", "2026-11-27T10:00:00.000000Z", "1.1.0", "canary")
            ),
        )
        .unwrap();
        let out = dir.path().join("canary.jsonl");
        let filter = Filter {
            version: Some("1.1.0".into()),
            ..Filter::default()
        };
        assert_eq!(export(&log, &filter, Format::Jsonl, &out).unwrap(), 2);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("\"id\":\"b\"") && text.contains("\"id\":\"c\""));
        let filter = Filter {
            from: Some("2026-11-27".into()),
            ..Filter::default()
        };
        let parquet = dir.path().join("day.parquet");
        assert_eq!(export(&log, &filter, Format::Parquet, &parquet).unwrap(), 1);
        let bytes = std::fs::read(&parquet).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        // A line being written (no newline yet) is not a record yet; a broken whole line is
        // an error.
        std::fs::write(log.join("standard/2026-11-28.jsonl"), "{\"id\":").unwrap();
        assert_eq!(
            export(&log, &Filter::default(), Format::Jsonl, &out).unwrap(),
            3
        );
        std::fs::write(log.join("standard/2026-11-28.jsonl"), "{\"id\":\n").unwrap();
        let err = export(&log, &Filter::default(), Format::Jsonl, &out).unwrap_err();
        assert!(
            format!("{err:#}").contains("2026-11-28.jsonl line 1"),
            "{err:#}"
        );
    }
}
