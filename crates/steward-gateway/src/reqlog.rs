//! Request logging (R8, M6): during a canary phase every inference of the deployment is
//! logged, and otherwise a configured sample, as CloudEvents 1.0 records (structured JSON,
//! one per line) that carry the model, version, environment, tenant, request id and W3C
//! trace id.
//!
//! Invariants:
//! - The hot path only hands a record to a bounded queue (`try_send`); JSON encoding,
//!   keyed hashing and file writes happen on the writer thread, in batches.
//! - Nothing is lost silently: a record that finds the queue full, or whose batch cannot
//!   be written, is counted (`steward_request_log_records_total{outcome="dropped"|"failed"}`)
//!   and reported in the log (at most once per `WARN_EVERY`).
//! - Fields whose schema classification is personal are keyed-hashed element by element
//!   (HMAC-SHA256 with the audit trail's key, so `steward audit hash VALUE` finds a data
//!   subject's records); special-category fields are never written, only named.
//! - Each record has a retention class, and records of one class and day share one file
//!   (`<dir>/<class>/<YYYY-MM-DD>.jsonl`), so retention is enforced by deleting files.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use serde_json::Value;
use steward_core::schema::{Classification, DataSchema};

use crate::tensor::{self, Tensor};
use crate::trace::TraceContext;

/// Records waiting for the writer, at most (then they are dropped and counted).
pub const QUEUE_RECORDS_DEFAULT: usize = 65_536;
/// Tensor bytes the waiting records hold, at most (then they are dropped and counted): the
/// queue's memory bound, whatever the size of the requests.
pub const QUEUE_BYTES_DEFAULT: usize = 256 * 1024 * 1024;
/// Tensor elements one record carries, at most; beyond it a tensor is logged by name,
/// datatype and shape only (`"truncated": true`).
pub const RECORD_ELEMENTS_MAX: usize = 65_536;
/// Bound on the request id a record carries (longer ones are replaced by a fresh id).
pub const REQUEST_ID_MAX: usize = 128;
/// Records the writer takes from the queue per write, at most.
pub const BATCH_RECORDS: usize = 4_096;
/// A record's encoded size, about (a one-row tabular inference), for sizing buffers.
const RECORD_BYTES_TYPICAL: usize = 1_024;
/// How long the writer sleeps when the queue is empty (the most a record waits).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);
/// Loss is reported in the log at most this often (it is counted every time).
pub const WARN_EVERY: Duration = Duration::from_secs(1);

/// The CloudEvents `type` of a logged inference.
pub const EVENT_TYPE: &str = "dev.steward.inference.logged";

/// Retention classes: records holding (pseudonymised) personal data are kept for less time.
pub const RETENTION_STANDARD: &str = "standard";
pub const RETENTION_PERSONAL: &str = "personal";

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Where the record files go.
    pub dir: PathBuf,
    /// Bound on records waiting for the writer.
    pub queue_records: usize,
    /// Bound on the tensor bytes those records hold.
    pub queue_bytes: usize,
    /// Share of requests logged outside a canary phase, in basis points (0–10,000).
    pub sample_bp: u32,
    /// Key of the HMAC that pseudonymises personal fields.
    pub key: Vec<u8>,
}

/// How a request reached the version that answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Stable,
    Canary,
    /// The caller named the version (an authorised pin).
    Pinned,
    /// A switched-off flag sent it to the flag's fallback.
    Fallback,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Stable => "stable",
            Route::Canary => "canary",
            Route::Pinned => "pinned",
            Route::Fallback => "fallback",
        }
    }
}

/// The classification of each input and output, from the version's schema. Fields the
/// schema does not name are logged as they are.
#[derive(Debug, Clone, Default)]
pub struct FieldClasses {
    pub inputs: BTreeMap<String, Classification>,
    pub outputs: BTreeMap<String, Classification>,
}

impl FieldClasses {
    pub fn from_schema(schema: &DataSchema) -> FieldClasses {
        let classes = |fields: &[steward_core::schema::Field]| {
            fields
                .iter()
                .map(|field| (field.name.clone(), field.classification))
                .collect()
        };
        FieldClasses {
            inputs: classes(&schema.inputs),
            outputs: classes(&schema.outputs),
        }
    }
}

/// One logged inference, as the hot path hands it over (encoded later, off that path).
pub struct Record {
    pub time: SystemTime,
    pub request_id: String,
    pub trace: TraceContext,
    pub model: String,
    pub version: String,
    pub digest: String,
    pub environment: String,
    pub tenant: Option<String>,
    pub route: Route,
    pub canary_phase: bool,
    pub status: u16,
    pub latency: Duration,
    pub inputs: Option<Arc<Vec<Tensor>>>,
    pub outputs: Option<Arc<Vec<Tensor>>>,
    pub error: Option<String>,
    pub classes: Arc<FieldClasses>,
}

#[expect(
    clippy::large_enum_variant,
    reason = "a record moves through the queue by value, without an allocation per request"
)]
enum Message {
    Record(Record, usize),
    /// Written after every record queued before it; the writer stops.
    Close,
}

/// The bounded queue in front of the writer thread.
pub struct RequestLog {
    sender: SyncSender<Message>,
    closed: std::sync::atomic::AtomicBool,
    /// Tensor bytes held by queued records, and the bound on them.
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    queue_bytes: usize,
    sample_bp: u32,
    written: Counter,
    dropped: Counter,
    failed: Counter,
    warned: Mutex<Option<Instant>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The tensor bytes a record holds (what the queue's byte bound counts).
fn record_bytes(record: &Record) -> usize {
    let tensors = |tensors: &Option<Arc<Vec<Tensor>>>| {
        tensors.as_ref().map_or(0, |tensors| {
            tensors
                .iter()
                .map(|tensor| match &tensor.elements {
                    tensor::Elements::Bool(values) => values.len(),
                    tensor::Elements::Int(values) => 8 * values.len(),
                    tensor::Elements::Uint(values) => 8 * values.len(),
                    tensor::Elements::Float(values) => 8 * values.len(),
                    tensor::Elements::Bytes(values) => {
                        values.iter().map(|value| 24 + value.len()).sum()
                    }
                })
                .sum::<usize>()
        })
    };
    256 + tensors(&record.inputs) + tensors(&record.outputs)
}

impl RequestLog {
    /// Creates the folder and starts the writer thread.
    pub fn start(config: LogConfig, metrics: &crate::metrics::Metrics) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.queue_records.max(1));
        let outcome = |name: &str| {
            metrics
                .request_log
                .get_or_create(&crate::metrics::LogOutcome {
                    outcome: name.to_owned(),
                })
                .clone()
        };
        let (written, dropped, failed) =
            (outcome("written"), outcome("dropped"), outcome("failed"));
        let queued_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut writer = Writer {
            dropped: dropped.clone(),
            dir: config.dir,
            key: config.key,
            open: std::collections::HashMap::new(),
            written: written.clone(),
            failed: failed.clone(),
            queued_bytes: queued_bytes.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("steward-request-log".into())
            .spawn(move || writer.run(receiver))?;
        Ok(RequestLog {
            sender,
            closed: std::sync::atomic::AtomicBool::new(false),
            queued_bytes,
            queue_bytes: config.queue_bytes.max(1),
            sample_bp: config.sample_bp.min(steward_core::routing::BUCKETS),
            written,
            dropped,
            failed,
            warned: Mutex::new(None),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Whether this request is logged: all of them in a canary phase, else the sample.
    pub fn wants(&self, canary_phase: bool) -> bool {
        canary_phase
            || (self.sample_bp > 0
                && crate::oip::random_u64() % u64::from(steward_core::routing::BUCKETS)
                    < u64::from(self.sample_bp))
    }

    /// Hands a record to the writer; if the queue is full it is dropped, counted and
    /// reported.
    pub fn submit(&self, record: Record) {
        use std::sync::atomic::Ordering;
        let bytes = record_bytes(&record);
        let sent = !self.closed.load(Ordering::Acquire)
            && self.queued_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes <= self.queue_bytes
            && match self.sender.try_send(Message::Record(record, bytes)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            };
        if !sent {
            // Whatever was added for this record is taken back (a refused add leaves the
            // sum above the bound only until this subtraction).
            if !self.closed.load(Ordering::Acquire) {
                self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            }
            self.dropped.inc();
            self.warn_loss();
        }
    }

    fn warn_loss(&self) {
        let mut warned = match self.warned.lock() {
            Ok(warned) => warned,
            Err(poisoned) => poisoned.into_inner(),
        };
        if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *warned = Some(Instant::now());
            tracing::warn!(
                dropped_total = self.dropped.get(),
                "Request log: the writer's queue is full; records are being dropped (counted in steward_request_log_records_total{{outcome=\"dropped\"}})."
            );
        }
    }

    /// Records written, dropped at the queue, and lost to failed writes, so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.written.get(), self.dropped.get(), self.failed.get())
    }

    /// Stops taking records and waits until every queued one is written.
    pub fn close(&self) {
        if self.closed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        // After every record queued so far (waits for room, which the writer makes).
        let _ = self.sender.send(Message::Close);
        let handle = self.writer.lock().ok().and_then(|mut handle| handle.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

struct Writer {
    dropped: Counter,
    dir: PathBuf,
    key: Vec<u8>,
    open: std::collections::HashMap<PathBuf, std::fs::File>,
    written: Counter,
    failed: Counter,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Writer {
    fn run(&mut self, receiver: Receiver<Message>) {
        let mut batch = Vec::with_capacity(BATCH_RECORDS);
        let mut closing = false;
        // Polls rather than blocks: a sender never has to wake this thread (a system call
        // on the request's path); records wait at most `FLUSH_INTERVAL` for their write.
        while !closing {
            while batch.len() < BATCH_RECORDS {
                match receiver.try_recv() {
                    Ok(Message::Record(record, bytes)) => batch.push((record, bytes)),
                    Ok(Message::Close) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        closing = true;
                        // A record that raced `close()` into the queue after the sentinel
                        // is not written: counted as dropped, never silent.
                        while let Ok(message) = receiver.try_recv() {
                            if let Message::Record(..) = message {
                                self.dropped.inc();
                            }
                        }
                        break;
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                }
            }
            if batch.is_empty() {
                if !closing {
                    std::thread::sleep(FLUSH_INTERVAL);
                }
                continue;
            }
            let bytes: usize = batch.iter().map(|(_, bytes)| bytes).sum();
            let count = batch.len() as u64;
            let mut records: Vec<Record> = batch.drain(..).map(|(record, _)| record).collect();
            // A panic while encoding or writing loses this batch, counted, not the thread.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write(&mut records)));
            if outcome.is_err() {
                self.failed.inc_by(count);
                tracing::error!(
                    records = count,
                    "Request log: writing a batch panicked; its records are lost (counted as failed)."
                );
            }
            self.queued_bytes
                .fetch_sub(bytes, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Encodes a batch and appends it, one write per file.
    fn write(&mut self, batch: &mut Vec<Record>) {
        let mut files: BTreeMap<(&'static str, i64), (Vec<u8>, u64)> = BTreeMap::new();
        let expected = batch.len() * RECORD_BYTES_TYPICAL;
        for record in batch.drain(..) {
            let day = record
                .time
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| (since.as_secs() / 86_400) as i64);
            // Encoded straight into its file's buffer; the class is known only after, so a
            // record goes to the standard buffer first and moves if it is personal.
            // Sized for the batch up front: growing it by doubling copied every byte again.
            let standard = files
                .entry((RETENTION_STANDARD, day))
                .or_insert_with(|| (Vec::with_capacity(expected), 0));
            let start = standard.0.len();
            let class = encode_into(&record, &self.key, &mut standard.0);
            if class == RETENTION_STANDARD {
                standard.1 += 1;
            } else {
                let line = standard.0.split_off(start);
                let (buffer, count) = files.entry((class, day)).or_default();
                buffer.extend_from_slice(&line);
                *count += 1;
            }
        }
        for ((class, day), (buffer, count)) in files {
            if count == 0 {
                continue;
            }
            let date = chrono::DateTime::<chrono::Utc>::from_timestamp(day * 86_400, 0)
                .unwrap_or_default()
                .format("%Y-%m-%d");
            let path = self.dir.join(class).join(format!("{date}.jsonl"));
            match self.append(&path, &buffer) {
                Ok(()) => {
                    self.written.inc_by(count);
                }
                Err(err) => {
                    self.failed.inc_by(count);
                    tracing::warn!(path = %path.display(), error = %err, records = count, "Request log: records could not be written and are lost (counted in steward_request_log_records_total{{outcome=\"failed\"}}).");
                }
            }
        }
    }

    /// Appends to a file, kept open between batches (a few: one per class and day in use).
    fn append(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if !self.open.contains_key(path) {
            if self.open.len() >= OPEN_FILES_MAX {
                self.open.clear();
            }
            self.open.insert(path.to_owned(), open_append(path)?);
        }
        let Some(file) = self.open.get_mut(path) else {
            return Err(std::io::Error::other("the file was not opened"));
        };
        let written = append_whole(file, bytes);
        if written.is_err() {
            // Opened afresh next time.
            self.open.remove(path);
        }
        written
    }
}

/// Files the writer keeps open at once.
const OPEN_FILES_MAX: usize = 4;

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Append mode: lines of concurrent writers do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// One write of whole lines; a torn one (disk full) is cut off, so the file stays whole
/// lines.
fn append_whole(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    let length = file.metadata()?.len();
    let written = file.write_all(bytes);
    if written.is_err() {
        let _ = file.set_len(length);
    }
    written
}

/// Each element as the text a person would type for it, which is what is keyed-hashed, so
/// `steward audit hash VALUE` finds it: integers and whole floats without a fraction
/// (`44200`), other floats in the shortest form of their datatype (FP32 `0.29`), booleans
/// `true`/`false`, BYTES as UTF-8 (or lowercase hex when they are not).
fn element_texts(tensor: &Tensor) -> Vec<String> {
    let float = |value: f64| {
        if value.fract() == 0.0 && value.abs() < 9.007_199_254_740_992e15 {
            format!("{}", value as i64)
        } else if matches!(
            tensor.datatype,
            crate::tensor::Datatype::Fp32
                | crate::tensor::Datatype::Fp16
                | crate::tensor::Datatype::Bf16
        ) {
            format!("{}", value as f32)
        } else {
            format!("{value}")
        }
    };
    match &tensor.elements {
        tensor::Elements::Bool(values) => values.iter().map(bool::to_string).collect(),
        tensor::Elements::Int(values) => values.iter().map(i64::to_string).collect(),
        tensor::Elements::Uint(values) => values.iter().map(u64::to_string).collect(),
        tensor::Elements::Float(values) => values.iter().map(|&value| float(value)).collect(),
        tensor::Elements::Bytes(values) => values
            .iter()
            .map(|bytes| match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
            })
            .collect(),
    }
}

/// A tensor as a record carries it.
#[derive(Serialize)]
struct TensorView<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [u64],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pseudonymised: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
}

enum DataView<'a> {
    Plain(&'a tensor::Elements),
    Hashed(Vec<String>),
}

impl Serialize for DataView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        match self {
            DataView::Hashed(values) => values.serialize(serializer),
            DataView::Plain(tensor::Elements::Bool(values)) => values.serialize(serializer),
            DataView::Plain(tensor::Elements::Int(values)) => values.serialize(serializer),
            DataView::Plain(tensor::Elements::Uint(values)) => values.serialize(serializer),
            DataView::Plain(tensor::Elements::Float(values)) => {
                // JSON has no NaN or infinity: those are null, as in answers.
                let mut seq = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    if value.is_finite() {
                        seq.serialize_element(value)?;
                    } else {
                        seq.serialize_element(&None::<f64>)?;
                    }
                }
                seq.end()
            }
            DataView::Plain(tensor::Elements::Bytes(values)) => {
                let mut seq = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    seq.serialize_element(&String::from_utf8_lossy(value))?;
                }
                seq.end()
            }
        }
    }
}

#[derive(Serialize)]
struct Data<'a> {
    status: u16,
    latency_us: u64,
    inputs: Option<Vec<TensorView<'a>>>,
    outputs: Option<Vec<TensorView<'a>>>,
    error: Option<&'a str>,
}

/// The CloudEvent (structured JSON mode; extension attributes are lowercase alphanumeric
/// and never empty).
#[derive(Serialize)]
struct Event<'a> {
    specversion: &'static str,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: &'static str,
    // No `datacontenttype`: in the JSON format its absence means JSON data.
    time: String,
    model: &'a str,
    modelversion: &'a str,
    modeldigest: &'a str,
    environment: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    requestid: &'a str,
    traceid: String,
    /// The gateway's span in the trace (its parent is the caller's).
    spanid: String,
    route: &'static str,
    phase: &'static str,
    retentionclass: &'static str,
    data: Data<'a>,
}

/// The views of a record's tensors, and whether any holds personal data.
fn tensor_views<'a>(
    tensors: &'a Option<Arc<Vec<Tensor>>>,
    classes: &BTreeMap<String, Classification>,
    key: &[u8],
    personal: &mut bool,
) -> Option<Vec<TensorView<'a>>> {
    let tensors = tensors.as_ref()?;
    Some(
        tensors
            .iter()
            .map(|tensor| {
                let class = classes.get(&tensor.name).copied();
                let mut view = TensorView {
                    name: &tensor.name,
                    datatype: tensor.datatype.as_str(),
                    shape: &tensor.shape,
                    data: None,
                    pseudonymised: None,
                    redacted: None,
                    truncated: None,
                };
                if class.is_some_and(|class| class >= Classification::Personal) {
                    *personal = true;
                }
                if tensor.elements.len() > RECORD_ELEMENTS_MAX {
                    view.truncated = Some(true);
                    return view;
                }
                match class {
                    Some(Classification::SpecialCategory) => {
                        view.redacted = Some("special-category");
                    }
                    Some(Classification::Personal) => {
                        view.pseudonymised = Some("hmac-sha256");
                        view.data = Some(DataView::Hashed(
                            element_texts(tensor)
                                .into_iter()
                                .map(|text| {
                                    steward_core::audit::hmac_value(key, &Value::String(text))
                                })
                                .collect(),
                        ));
                    }
                    _ => view.data = Some(DataView::Plain(&tensor.elements)),
                }
                view
            })
            .collect(),
    )
}

/// RFC 3339 time with microseconds, UTC (`2026-11-27T15:04:05.123456Z`); the part up to the
/// second is formatted once per second and kept.
fn rfc3339(time: SystemTime) -> String {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != since.as_secs() {
            let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
            cached.0 = since.as_secs();
            cached.1 = chrono::DateTime::<chrono::Utc>::from_timestamp(seconds, 0)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
        }
        let mut text = String::with_capacity(cached.1.len() + 8);
        text.push_str(&cached.1);
        text.push('.');
        let micros = since.subsec_micros();
        for divisor in [100_000, 10_000, 1_000, 100, 10, 1] {
            text.push(char::from(b'0' + ((micros / divisor) % 10) as u8));
        }
        text.push('Z');
        text
    })
}

/// Appends the record as one CloudEvent line (structured JSON, then a newline) to `out`;
/// returns its retention class.
pub fn encode_into(record: &Record, key: &[u8], out: &mut Vec<u8>) -> &'static str {
    let mut personal = false;
    let inputs = tensor_views(&record.inputs, &record.classes.inputs, key, &mut personal);
    let outputs = tensor_views(&record.outputs, &record.classes.outputs, key, &mut personal);
    let class = if personal {
        RETENTION_PERSONAL
    } else {
        RETENTION_STANDARD
    };
    let event = Event {
        specversion: "1.0",
        id: crate::trace::random_id(),
        source: format!("/steward/gateway/{}", record.environment),
        kind: EVENT_TYPE,
        time: rfc3339(record.time),
        model: &record.model,
        modelversion: &record.version,
        modeldigest: &record.digest,
        environment: &record.environment,
        tenant: record.tenant.as_deref(),
        requestid: &record.request_id,
        traceid: record.trace.trace_id_hex(),
        spanid: record.trace.span_id_hex(),
        route: record.route.as_str(),
        phase: if record.canary_phase {
            "canary"
        } else {
            "sampled"
        },
        retentionclass: class,
        data: Data {
            status: record.status,
            latency_us: u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
            inputs,
            outputs,
            error: record.error.as_deref(),
        },
    };
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &event);
    out.push(b'\n');
    class
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{Datatype, Elements};
    use serde_json::json;

    /// The record as one CloudEvent line (without its newline) and its retention class.
    fn encode(record: &Record, key: &[u8]) -> (&'static str, String) {
        let mut line = Vec::new();
        let class = encode_into(record, key, &mut line);
        line.pop();
        (class, String::from_utf8(line).unwrap())
    }

    fn record(classes: FieldClasses) -> Record {
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            request_id: "r-1".into(),
            trace: TraceContext::from_headers(&axum::http::HeaderMap::new()),
            model: "retail:credit".into(),
            version: "1.1.0".into(),
            digest: "sha256:ab".into(),
            environment: "staging".into(),
            tenant: Some("acme".into()),
            route: Route::Canary,
            canary_phase: true,
            status: 200,
            latency: Duration::from_micros(250),
            inputs: Some(Arc::new(vec![
                Tensor {
                    name: "features".into(),
                    datatype: Datatype::Fp32,
                    shape: vec![1, 2],
                    elements: Elements::Float(vec![0.5, 2.0]),
                },
                Tensor {
                    name: "email".into(),
                    datatype: Datatype::Bytes,
                    shape: vec![1],
                    elements: Elements::Bytes(vec![b"alice@example.com".to_vec()]),
                },
                Tensor {
                    name: "health".into(),
                    datatype: Datatype::Int64,
                    shape: vec![1],
                    elements: Elements::Int(vec![3]),
                },
            ])),
            outputs: None,
            error: None,
            classes: Arc::new(classes),
        }
    }

    #[test]
    fn personal_fields_are_keyed_hashed_and_special_ones_never_written() {
        let classes = FieldClasses {
            inputs: BTreeMap::from([
                ("features".to_owned(), Classification::Internal),
                ("email".to_owned(), Classification::Personal),
                ("health".to_owned(), Classification::SpecialCategory),
            ]),
            outputs: BTreeMap::new(),
        };
        let (class, line) = encode(&record(classes), b"key");
        assert_eq!(class, RETENTION_PERSONAL);
        assert!(!line.contains("alice@example.com"), "{line}");
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], EVENT_TYPE);
        assert_eq!(event["time"], "2026-11-18T11:06:40.000000Z");
        assert_eq!(event["tenant"], "acme");
        assert_eq!(event["route"], "canary");
        let inputs = &event["data"]["inputs"];
        assert_eq!(inputs[0]["data"], json!([0.5, 2.0]));
        // The same hash `steward audit hash alice@example.com` gives.
        assert_eq!(
            inputs[1]["data"][0],
            steward_core::audit::hmac_value(b"key", &json!("alice@example.com"))
        );
        assert_eq!(inputs[2]["redacted"], "special-category");
        assert!(inputs[2].get("data").is_none());
    }

    #[test]
    fn records_without_personal_fields_are_standard() {
        let (class, line) = encode(&record(FieldClasses::default()), b"key");
        assert_eq!(class, RETENTION_STANDARD);
        assert!(line.contains("alice@example.com"));
    }

    #[test]
    fn the_writer_appends_by_class_and_day_and_counts_what_it_drops() {
        let dir =
            std::env::temp_dir().join(format!("steward-reqlog-{}", crate::trace::random_id()));
        let metrics = crate::metrics::Metrics::default();
        let log = RequestLog::start(
            LogConfig {
                dir: dir.clone(),
                queue_records: 4,
                queue_bytes: QUEUE_BYTES_DEFAULT,
                sample_bp: 0,
                key: b"key".to_vec(),
            },
            &metrics,
        )
        .unwrap();
        assert!(log.wants(true));
        assert!(!log.wants(false));
        for _ in 0..3 {
            log.submit(record(FieldClasses::default()));
        }
        log.close();
        // After close, records are refused and counted.
        log.submit(record(FieldClasses::default()));
        assert_eq!(log.counts(), (3, 1, 0));
        let text = std::fs::read_to_string(dir.join("standard/2026-11-18.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            metrics
                .encode()
                .contains("steward_request_log_records_total{outcome=\"dropped\"} 1")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
