//! The server's integration tests, one binary: in-process requests through the full router
//! (`tower::ServiceExt::oneshot`) on a fresh data directory with SQLite.
//!
//! - `matrix`: every route × every role against the policy's expectation (OWASP API1/3/5).
//! - `tamper`: edits to the stored log that only a pinned checkpoint or the head can reveal,
//!   and checkpoints refused over tampered entries.
//! - `faults`: the audit store failing, full or hanging → 503 and nothing changed; no start
//!   without a writable audit store.

mod classification;
mod faults;
mod freeze;
mod integrity;
mod matrix;
mod promotions;
mod support;
mod tamper;
mod vault;
mod webhooks;
