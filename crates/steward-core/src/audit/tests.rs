//! The audit chain and its verifier: honest logs verify, every kind of tampering is found
//! and named by the first bad entry or checkpoint.

use ed25519_dalek::SigningKey;
use serde_json::json;

use super::checkpoint::{Checkpoint, NoteSigner};
use super::*;

const ORIGIN: &str = "steward.test/audit";

fn signer(seed: u8) -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

/// A log of `n` entries as a store would hold it.
fn log(n: u64) -> Vec<StoredEntry> {
    let mut prev = GENESIS_PREV_HASH.to_owned();
    (1..=n)
        .map(|seq| {
            let draft = EventDraft {
                actor: format!("user{}", seq % 3),
                action: "model.create".into(),
                subject: format!("model:retail/m{seq}"),
                payload: json!({"n": seq, "z": [1, 2], "a": {"b": null}}),
                decision: json!({"effect": "allow", "policies": ["steward.data_scientist.register"]}),
            };
            let entry = Entry::new(seq, format!("2026-11-27T08:00:{:02}.000000Z", seq % 60), prev.clone(), draft);
            let text = entry.canonical();
            let hash = entry_hash(&text);
            prev.clone_from(&hash);
            StoredEntry { seq, time: entry.time, actor: entry.actor, action: entry.action, subject: entry.subject, entry: text, entry_hash: hash }
        })
        .collect()
}

fn checkpoint_at(entries: &[StoredEntry], size: u64, signer: &NoteSigner) -> (u64, String) {
    let leaves: Vec<merkle::Hash> = entries[..size as usize]
        .iter()
        .map(|e| merkle::leaf_hash(e.entry.as_bytes()))
        .collect();
    let checkpoint = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: merkle::root_of(&leaves),
        extensions: Vec::new(),
    };
    (size, checkpoint.sign(signer).unwrap())
}

fn verify(
    entries: &[StoredEntry],
    checkpoints: &[(u64, String)],
) -> Result<VerifyReport, VerifyError> {
    let mut verifier = Verifier::new(checkpoints.iter().map(|(size, _)| *size).collect());
    for entry in entries {
        verifier.push(entry)?;
    }
    verifier.finish(ORIGIN, checkpoints, &[signer(7).verifier()])
}

#[test]
fn an_honest_log_verifies() {
    let entries = log(50);
    let checkpoints = vec![
        checkpoint_at(&entries, 1, &signer(7)),
        checkpoint_at(&entries, 33, &signer(7)),
        checkpoint_at(&entries, 50, &signer(7)),
    ];
    let report = verify(&entries, &checkpoints).unwrap();
    assert_eq!((report.entries, report.checkpoints), (50, 3));
    let leaves: Vec<merkle::Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(e.entry.as_bytes()))
        .collect();
    assert_eq!(report.root, hex::encode(merkle::root_of(&leaves)));
}

#[test]
fn each_kind_of_tampering_is_found_at_the_first_bad_entry() {
    let entries = log(20);
    let check = |mutate: &dyn Fn(&mut Vec<StoredEntry>), expected: &str| {
        let mut tampered = entries.clone();
        mutate(&mut tampered);
        let err = verify(&tampered, &[]).unwrap_err();
        assert_eq!(err.to_string(), expected);
    };
    check(
        &|log| log[4].entry = log[4].entry.replace("user2", "user9"),
        "entry 5: entry hash does not match the entry's bytes (the entry was modified)",
    );
    check(
        &|log| {
            // Rewriting the entry and its hash is caught by the next entry's link.
            log[4].entry = log[4].entry.replace("user2", "user9");
            log[4].actor = "user9".into();
            log[4].entry_hash = entry_hash(&log[4].entry);
        },
        "entry 6: previous-hash link does not match the entry before it (the chain is broken)",
    );
    check(
        &|log| log[9].actor = "mallory".into(),
        "entry 10: indexed column `actor` says `mallory` but the signed entry says `user1`",
    );
    check(
        &|log| drop(log.remove(7)),
        "entry 9: expected sequence number 8 (an entry is missing or out of order)",
    );
    check(
        &|log| log.swap(2, 3),
        "entry 4: expected sequence number 3 (an entry is missing or out of order)",
    );
}

#[test]
fn checkpoints_catch_truncation_rewrites_and_foreign_keys() {
    let entries = log(30);
    let good = checkpoint_at(&entries, 30, &signer(7));
    // The tail was cut: the checkpoint still claims 30 entries.
    let err = verify(&entries[..25], std::slice::from_ref(&good)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint at size 30: log has only 25 entries (entries were removed)"
    );
    // The whole log was rewritten consistently (a new chain): the signed root differs.
    let mut rewritten = log(30);
    let mut prev = GENESIS_PREV_HASH.to_owned();
    for stored in &mut rewritten {
        let mut entry = Entry::parse(&stored.entry).unwrap();
        entry.prev_hash = prev.clone();
        entry.payload = json!({"rewritten": true});
        stored.entry = entry.canonical();
        stored.entry_hash = entry_hash(&stored.entry);
        prev.clone_from(&stored.entry_hash);
    }
    let err = verify(&rewritten, std::slice::from_ref(&good)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint at size 30: signed root hash differs from the root recomputed from the entries"
    );
    // A checkpoint signed by a key we do not know is rejected.
    let foreign = checkpoint_at(&entries, 30, &signer(8));
    let err = verify(&entries, &[foreign]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("checkpoint at size 30: signature check failed"),
        "{err}"
    );
    // A tampered note.
    let (size, note) = good;
    let err = verify(&entries, &[(size, note.replacen("30", "29", 1))]).unwrap_err();
    assert!(
        err.to_string().starts_with("checkpoint at size 30: "),
        "{err}"
    );
}

#[test]
fn secrets_are_hmacd_at_any_depth_and_of_any_type() {
    let mut payload = json!({"name": "ci", "token": "stw_abc", "nested": [{"api_key": 12345, "password": true}], "note": "token rotated"});
    redact_secrets(b"k", &mut payload);
    let text = payload.to_string();
    assert!(
        !text.contains("stw_abc") && !text.contains("12345"),
        "{text}"
    );
    assert_eq!(payload["token"], hmac_value(b"k", &json!("stw_abc")));
    assert_eq!(
        payload["note"], "token rotated",
        "values are redacted by key, not by content"
    );
    assert!(
        payload["nested"][0]["password"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_ne!(
        hmac_value(b"k", &json!("x")),
        hmac_value(b"other key", &json!("x"))
    );
}
