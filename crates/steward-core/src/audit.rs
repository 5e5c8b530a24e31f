//! The audit log: hash-chained entries that are also the leaves of an RFC 9162 Merkle tree,
//! with signed checkpoints (C2SP tlog-checkpoint), and the offline verifier.
//!
//! Invariants:
//! - An entry's bytes are the canonical JSON of its fields (`Entry::canonical`); its hash is
//!   the RFC 9162 leaf hash of those bytes, so the hash chain and the Merkle tree agree.
//! - Entry `seq` n (counting from 1) is leaf index n - 1. `prev_hash` of entry 1 is
//!   `GENESIS_PREV_HASH`.
//! - Secret values never enter an entry in clear: `redact_secrets` replaces them with an
//!   HMAC-SHA256 under the log's audit key, as Vault's audit devices do.
//! - The verifier trusts nothing but the entry bytes and the pinned public keys: indexed
//!   columns, chain links, checkpoint roots and checkpoint sizes are all recomputed.

pub mod checkpoint;
pub mod merkle;

use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;

use crate::canonical;
use checkpoint::{Checkpoint, NoteVerifier};
use merkle::{CompactTree, Hash};

/// `prev_hash` of the first entry.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";
/// Keys whose values are HMAC'd wherever they appear in a payload.
pub const SECRET_KEYS: &[&str] = &[
    "token",
    "secret",
    "password",
    "api_key",
    "private_key",
    "authorization",
    "credential",
];

/// What a caller wants recorded; the log adds the sequence number, time and chain link.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub payload: Value,
    /// The policy decision that allowed (or denied) the action, with its reasons.
    pub decision: Value,
}

/// One audit entry, as chained and hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339 UTC time with microseconds, e.g. `2026-11-27T07:47:45.123456Z`.
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub payload: Value,
    pub decision: Value,
    /// Hex SHA-256 entry hash of entry `seq - 1`.
    pub prev_hash: String,
}

impl Entry {
    pub fn new(seq: u64, time: String, prev_hash: String, draft: EventDraft) -> Entry {
        Entry {
            seq,
            time,
            actor: draft.actor,
            action: draft.action,
            subject: draft.subject,
            payload: draft.payload,
            decision: draft.decision,
            prev_hash,
        }
    }

    /// The bytes that are hashed and stored.
    pub fn canonical(&self) -> String {
        canonical::to_string(&serde_json::json!({
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": self.payload,
            "decision": self.decision,
            "prev_hash": self.prev_hash,
        }))
    }

    pub fn parse(canonical_text: &str) -> Result<Entry, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            seq: u64,
            time: String,
            actor: String,
            action: String,
            subject: String,
            payload: Value,
            decision: Value,
            prev_hash: String,
        }
        let raw: Raw = serde_json::from_str(canonical_text)
            .map_err(|err| format!("entry is not valid JSON: {err}"))?;
        Ok(Entry {
            seq: raw.seq,
            time: raw.time,
            actor: raw.actor,
            action: raw.action,
            subject: raw.subject,
            payload: raw.payload,
            decision: raw.decision,
            prev_hash: raw.prev_hash,
        })
    }
}

/// Hex entry hash of canonical entry bytes (the RFC 9162 leaf hash).
pub fn entry_hash(canonical_text: &str) -> String {
    hex::encode(merkle::leaf_hash(canonical_text.as_bytes()))
}

/// `hmac-sha256:<hex>` of a value's canonical JSON, as stored in place of a secret.
pub fn hmac_value(audit_key: &[u8], value: &Value) -> String {
    let text = match value {
        // Strings are hashed as their raw text, so an operator can check a known secret
        // with `steward audit hash` without knowing our JSON quoting.
        Value::String(text) => text.clone(),
        other => canonical::to_string(other),
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(audit_key)
        .expect("HMAC accepts keys of any length");
    mac.update(text.as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

/// A key names a secret when it is one of `SECRET_KEYS` or ends with `_<one of them>`
/// (`client_secret`, `db_password`). Identifiers of secrets (`token_id`) are not secrets.
pub fn is_secret_key(key: &str) -> bool {
    let lowered = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|secret| {
        lowered == *secret
            || lowered
                .strip_suffix(secret)
                .is_some_and(|head| head.ends_with('_') || head.ends_with('-'))
    })
}

/// Replaces every value under a key from `SECRET_KEYS` (at any depth, any JSON type) by
/// its HMAC. Unlike Vault, numbers and booleans are hashed too.
pub fn redact_secrets(audit_key: &[u8], payload: &mut Value) {
    match payload {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if is_secret_key(key) && !value.is_null() {
                    *value = Value::String(hmac_value(audit_key, value));
                } else {
                    redact_secrets(audit_key, value);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| redact_secrets(audit_key, item)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// An entry as stored: the canonical bytes plus the columns the store indexes.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub entry: String,
    pub entry_hash: String,
}

/// The first thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("entry {seq}: {reason}")]
    Entry { seq: u64, reason: String },
    #[error("checkpoint at size {size}: {reason}")]
    Checkpoint { size: u64, reason: String },
    /// The log as a whole disagrees with a fact outside the entries (its stored head).
    #[error("log: {0}")]
    Log(String),
}

/// Streaming verifier: push entries in order, then `finish` with the checkpoints.
/// Memory is O(log n); a million entries need no more than a few kilobytes of state.
pub struct Verifier {
    tree: CompactTree,
    prev_hash: String,
    /// Roots at the sizes that checkpoints claim, filled as the tree passes them.
    wanted_sizes: Vec<u64>,
    roots_at: Vec<(u64, Hash)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// Hex root hash of the whole log.
    pub root: String,
    /// Hex entry hash of the last entry (`GENESIS_PREV_HASH` for an empty log).
    pub last_hash: String,
}

impl Verifier {
    /// `checkpoint_sizes`: the tree sizes of the checkpoints that `finish` will check.
    pub fn new(mut checkpoint_sizes: Vec<u64>) -> Verifier {
        checkpoint_sizes.sort_unstable();
        checkpoint_sizes.dedup();
        Verifier {
            tree: CompactTree::new(),
            prev_hash: GENESIS_PREV_HASH.to_owned(),
            wanted_sizes: checkpoint_sizes,
            roots_at: Vec::new(),
        }
    }

    pub fn push(&mut self, stored: &StoredEntry) -> Result<(), VerifyError> {
        /// The fields the verifier compares, borrowed from the entry's bytes: no copies and
        /// no re-serialisation, because a million entries must verify in about a second.
        #[derive(Deserialize)]
        struct Fields<'a> {
            seq: u64,
            #[serde(borrow)]
            time: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            actor: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            action: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            subject: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            prev_hash: std::borrow::Cow<'a, str>,
            #[serde(borrow, rename = "payload")]
            _payload: &'a serde_json::value::RawValue,
            #[serde(borrow, rename = "decision")]
            _decision: &'a serde_json::value::RawValue,
        }
        let expected_seq = self.tree.size() + 1;
        let fail = |reason: String| VerifyError::Entry {
            seq: stored.seq,
            reason,
        };
        if stored.seq != expected_seq {
            return Err(fail(format!(
                "expected sequence number {expected_seq} (an entry is missing or out of order)"
            )));
        }
        // The hash covers the bytes as stored, so any change to them is caught here or by
        // the next entry's link; their exact formatting needs no separate check.
        let leaf = merkle::leaf_hash(stored.entry.as_bytes());
        let mut stored_hash = [0u8; 32];
        if hex::decode_to_slice(&stored.entry_hash, &mut stored_hash).is_err()
            || stored_hash != leaf
        {
            return Err(fail(
                "entry hash does not match the entry's bytes (the entry was modified)".to_owned(),
            ));
        }
        let fields: Fields<'_> = serde_json::from_str(&stored.entry)
            .map_err(|err| fail(format!("entry is not valid JSON: {err}")))?;
        if fields.prev_hash != self.prev_hash {
            return Err(fail(
                "previous-hash link does not match the entry before it (the chain is broken)"
                    .to_owned(),
            ));
        }
        // The indexed columns must say what the hashed entry says.
        let text_columns = [
            ("time", &fields.time, &stored.time),
            ("actor", &fields.actor, &stored.actor),
            ("action", &fields.action, &stored.action),
            ("subject", &fields.subject, &stored.subject),
        ];
        let mismatch = match text_columns
            .into_iter()
            .find(|(_, in_entry, in_column)| in_entry.as_ref() != in_column.as_str())
        {
            _ if fields.seq != stored.seq => {
                Some(("seq", fields.seq.to_string(), stored.seq.to_string()))
            }
            Some((column, in_entry, in_column)) => {
                Some((column, in_entry.to_string(), in_column.clone()))
            }
            None => None,
        };
        if let Some((column, in_entry, in_column)) = mismatch {
            return Err(fail(format!(
                "indexed column `{column}` says `{in_column}` but the signed entry says `{in_entry}`"
            )));
        }
        self.tree.push(leaf);
        self.prev_hash.clone_from(&stored.entry_hash);
        let size = self.tree.size();
        if self.wanted_sizes.binary_search(&size).is_ok() {
            self.roots_at.push((size, self.tree.root()));
        }
        Ok(())
    }

    /// Checks every checkpoint note against the pinned keys and the recomputed roots.
    pub fn finish(
        self,
        origin: &str,
        checkpoint_notes: &[(u64, String)],
        keys: &[NoteVerifier],
    ) -> Result<VerifyReport, VerifyError> {
        for (size, note) in checkpoint_notes {
            let fail = |reason: String| VerifyError::Checkpoint {
                size: *size,
                reason,
            };
            let checkpoint = Checkpoint::open(note, keys)
                .map_err(|err| fail(format!("signature check failed: {err}")))?;
            if checkpoint.origin != origin {
                return Err(fail(format!(
                    "origin `{}` is not this log's origin `{origin}`",
                    checkpoint.origin
                )));
            }
            if checkpoint.size != *size {
                return Err(fail(format!(
                    "signed size {} differs from the stored size",
                    checkpoint.size
                )));
            }
            if checkpoint.size > self.tree.size() {
                return Err(fail(format!(
                    "log has only {} entries (entries were removed)",
                    self.tree.size()
                )));
            }
            let root = if checkpoint.size == 0 {
                merkle::empty_root()
            } else {
                match self.roots_at.iter().find(|(at, _)| *at == checkpoint.size) {
                    Some((_, root)) => *root,
                    None => return Err(fail("size was not announced to the verifier".to_owned())),
                }
            };
            if root != checkpoint.root {
                return Err(fail(
                    "signed root hash differs from the root recomputed from the entries".to_owned(),
                ));
            }
        }
        Ok(VerifyReport {
            entries: self.tree.size(),
            checkpoints: checkpoint_notes.len() as u64,
            root: hex::encode(self.tree.root()),
            last_hash: self.prev_hash,
        })
    }
}

#[cfg(test)]
mod tests;
