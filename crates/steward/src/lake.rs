//! `steward events export`: change events (promotions, approvals, blocks, alias refusals,
//! calendar changes) from the audit trail to a change data lake (C6): Parquet files
//! partitioned by day (`date=YYYY-MM-DD/`, Hive style, as DuckDB, Spark and pyarrow read
//! them), append-only.
//!
//! Invariants:
//! - A file, once written, is never rewritten: each run writes new files for the entries
//!   after the folder's cursor (`_steward_cursor`, or the highest entry a part already holds,
//!   if a run crashed before moving it), which moves only after its files are in place
//!   (written to a new temporary name, synced, renamed, the folder synced). One run at a
//!   time (`_steward_lock`).
//! - Rows are in audit order, one per entry, with the entry's hash, so a row can be checked
//!   against the tamper-evident log.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::client::Client;

/// The audit actions that are change events.
pub const CHANGE_EVENT_PREFIXES: &[&str] = &["promotion.", "alias.", "calendar."];
pub const CURSOR_FILE: &str = "_steward_cursor";
pub const LOCK_FILE: &str = "_steward_lock";

fn schema() -> Arc<Schema> {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("actor", false),
        text("action", false),
        text("subject", false),
        text("business_unit", true),
        text("model", true),
        text("environment", true),
        text("digest", true),
        Field::new("promotion_id", DataType::Int64, true),
        text("effect", true),
        text("policies", true),
        text("payload", false),
        text("entry_hash", false),
    ]))
}

/// One audit entry as a lake row.
struct Row {
    seq: i64,
    time_micros: i64,
    date: String,
    actor: String,
    action: String,
    subject: String,
    business_unit: Option<String>,
    model: Option<String>,
    environment: Option<String>,
    digest: Option<String>,
    promotion_id: Option<i64>,
    effect: Option<String>,
    policies: Option<String>,
    payload: String,
    entry_hash: String,
}

fn row(item: &Value) -> anyhow::Result<Row> {
    let text = |key: &str| item[key].as_str().map(str::to_owned);
    let time = text("time").context("entry without a time")?;
    let parsed = chrono::DateTime::parse_from_rfc3339(&time)
        .with_context(|| format!("entry time `{time}`"))?
        .with_timezone(&chrono::Utc);
    let subject = text("subject").unwrap_or_default();
    let (business_unit, model) = match subject
        .strip_prefix("model:")
        .and_then(|m| m.split_once('/'))
    {
        Some((unit, name)) => (Some(unit.to_owned()), Some(name.to_owned())),
        None => (None, None),
    };
    let payload = &item["payload"];
    Ok(Row {
        seq: item["seq"].as_i64().context("entry without a seq")?,
        time_micros: parsed.timestamp_micros(),
        date: parsed.format("%Y-%m-%d").to_string(),
        actor: text("actor").unwrap_or_default(),
        action: text("action").unwrap_or_default(),
        subject,
        business_unit,
        model,
        environment: payload["environment"].as_str().map(str::to_owned),
        digest: payload["digest"].as_str().map(str::to_owned),
        promotion_id: payload["promotion"].as_i64(),
        effect: item["decision"]["effect"].as_str().map(str::to_owned),
        policies: item["decision"]["policies"]
            .as_array()
            .map(|policies| Value::Array(policies.clone()).to_string()),
        payload: payload.to_string(),
        entry_hash: text("entry_hash").unwrap_or_default(),
    })
}

fn batch(rows: &[Row]) -> anyhow::Result<RecordBatch> {
    let strings = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.time_micros).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        strings(&|r| Some(r.actor.clone())),
        strings(&|r| Some(r.action.clone())),
        strings(&|r| Some(r.subject.clone())),
        strings(&|r| r.business_unit.clone()),
        strings(&|r| r.model.clone()),
        strings(&|r| r.environment.clone()),
        strings(&|r| r.digest.clone()),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.promotion_id).collect::<Vec<_>>(),
        )),
        strings(&|r| r.effect.clone()),
        strings(&|r| r.policies.clone()),
        strings(&|r| Some(r.payload.clone())),
        strings(&|r| Some(r.entry_hash.clone())),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Writes `rows` (one day) to `dir/date=DAY/part-FIRST-LAST.parquet`, atomically.
fn write_part(dir: &Path, date: &str, rows: &[Row]) -> anyhow::Result<PathBuf> {
    let partition = dir.join(format!("date={date}"));
    std::fs::create_dir_all(&partition)
        .with_context(|| format!("creating {}", partition.display()))?;
    let (first, last) = (rows[0].seq, rows[rows.len() - 1].seq);
    let path = partition.join(format!("part-{first:012}-{last:012}.parquet"));
    anyhow::ensure!(
        !path.exists(),
        "{} exists already; parts are never rewritten",
        path.display()
    );
    let temporary = partition.join(format!(".part-{first:012}-{last:012}.parquet.tmp"));
    let _ = std::fs::remove_file(&temporary); // left by a run that crashed (we hold the lock)
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("steward {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema(), Some(properties))?;
    writer.write(&batch(rows)?)?;
    let file = writer.into_inner()?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("renaming to {}", path.display()))?;
    sync_dir(&partition)?;
    Ok(path)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// The highest sequence number any part file already holds (a run that crashed after
/// writing files but before moving the cursor must not write those rows again).
fn highest_exported(dir: &Path) -> anyhow::Result<u64> {
    let mut highest = 0;
    for partition in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let partition = partition?;
        if !partition.file_name().to_string_lossy().starts_with("date=") {
            continue;
        }
        for part in std::fs::read_dir(partition.path())? {
            let name = part?.file_name().to_string_lossy().into_owned();
            if let Some(last) = name
                .strip_prefix("part-")
                .and_then(|rest| rest.strip_suffix(".parquet"))
                .and_then(|range| range.split_once('-'))
                .and_then(|(_, last)| last.parse::<u64>().ok())
            {
                highest = highest.max(last);
            }
        }
    }
    Ok(highest)
}

/// Held while an export runs: a second run at once is refused rather than interleaved.
struct Lock(PathBuf);

impl Lock {
    fn take(dir: &Path) -> anyhow::Result<Lock> {
        let path = dir.join(LOCK_FILE);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "another export holds {} (remove it if no export is running)",
                    path.display()
                )
            })?;
        Ok(Lock(path))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn read_cursor(dir: &Path) -> anyhow::Result<u64> {
    match std::fs::read_to_string(dir.join(CURSOR_FILE)) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{}: not a sequence number", dir.join(CURSOR_FILE).display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err).context("reading the cursor"),
    }
}

fn write_cursor(dir: &Path, seq: u64) -> anyhow::Result<()> {
    let temporary = dir.join(format!(".{CURSOR_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{seq}")?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(CURSOR_FILE))?;
    sync_dir(dir)
}

/// What one export run did.
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub rows: usize,
    pub cursor: u64,
}

/// Exports the change events after the folder's cursor, a page of audit entries at a
/// time (the server's page size): each page's rows are written, then the cursor moves.
pub async fn export(client: &Client, dir: &Path) -> anyhow::Result<Exported> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = Lock::take(dir)?;
    let mut cursor = read_cursor(dir)?.max(highest_exported(dir)?);
    let mut files = Vec::new();
    let mut rows = 0;
    loop {
        let page = client
            .get(&format!("/api/v1/audit/events?after={cursor}"))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let Some(last) = items.last() else { break };
        let last_seq = last["seq"].as_u64().context("entry without a seq")?;
        let mut by_day: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for item in &items {
            let action = item["action"].as_str().unwrap_or_default();
            if CHANGE_EVENT_PREFIXES
                .iter()
                .any(|prefix| action.starts_with(prefix))
            {
                let row = row(item)?;
                by_day.entry(row.date.clone()).or_default().push(row);
            }
        }
        for (date, day) in &by_day {
            files.push(write_part(dir, date, day)?);
            rows += day.len();
        }
        cursor = last_seq;
        write_cursor(dir, cursor)?;
    }
    Ok(Exported {
        files,
        rows,
        cursor,
    })
}
