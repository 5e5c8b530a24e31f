//! The storage contract: one suite, run against SQLite always and against PostgreSQL when
//! `STEWARD_TEST_POSTGRES_URL` is set (CI sets it and fails if the suite did not run there;
//! see `.ci/run`). Each PostgreSQL test gets a fresh database.

use std::time::Duration;

use serde_json::json;
use steward_core::audit::{EventDraft, Verifier};
use steward_core::domain::Digest;

use super::*;

const NOW: &str = "2026-11-27T08:00:00.000000Z";

struct TestStore {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite(options: StoreOptions) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("steward.db").display());
    TestStore {
        store: Store::open(&url, options).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres(options: StoreOptions) -> Option<TestStore> {
    let base = std::env::var("STEWARD_TEST_POSTGRES_URL").ok()?;
    let name = format!(
        "steward_test_{}_{}",
        std::process::id(),
        TEST_DB_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("connect to STEWARD_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("postgres url has a database path");
    let url = format!("{prefix}/{name}");
    Some(TestStore {
        store: Store::open(&url, options).await.unwrap(),
        _dir: None,
    })
}

static TEST_DB_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Every backend this run can reach.
async fn backends(options: StoreOptions) -> Vec<TestStore> {
    let mut res = vec![sqlite(options.clone()).await];
    if let Some(pg) = postgres(options).await {
        res.push(pg);
    }
    res
}

fn draft(action: &str, subject: &str) -> EventDraft {
    EventDraft {
        actor: "alice".into(),
        action: action.into(),
        subject: subject.into(),
        payload: json!({"n": 1}),
        decision: json!({"effect": "allow"}),
    }
}

async fn verify(store: &Store) -> u64 {
    let mut verifier = Verifier::new(Vec::new());
    for entry in store.audit_entries(0, 1_000_000).await.unwrap() {
        verifier.push(&entry).unwrap();
    }
    verifier.finish("test", &[], &[]).unwrap().entries
}

async fn count(store: &Store, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn postgres_suite_runs_when_asked() {
    // CI sets STEWARD_TEST_REQUIRE_POSTGRES=1 so that a missing database fails loudly.
    if std::env::var_os("STEWARD_TEST_REQUIRE_POSTGRES").is_some() {
        assert!(
            postgres(StoreOptions::default()).await.is_some(),
            "STEWARD_TEST_POSTGRES_URL is not set"
        );
    }
}

#[tokio::test]
async fn a_change_commits_with_its_event() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        let mut tx = store.begin().await.unwrap();
        tx.insert_business_unit("retail", "Retail banking", "alice", NOW)
            .await
            .unwrap();
        let entry = tx
            .commit(draft("business_unit.create", "business_unit:retail"), NOW)
            .await
            .unwrap();
        assert_eq!(entry.seq, 1);
        assert_eq!(entry.prev_hash, steward_core::audit::GENESIS_PREV_HASH);
        assert_eq!(
            store
                .business_unit("retail")
                .await
                .unwrap()
                .unwrap()
                .description,
            "Retail banking"
        );
        let (seq, hash) = store.audit_head().await.unwrap();
        assert_eq!((seq, hash.len()), (1, 64));
        assert_eq!(verify(&store).await, 1);
    }
}

#[tokio::test]
async fn a_dropped_transaction_leaves_nothing() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        let mut tx = store.begin().await.unwrap();
        tx.insert_business_unit("retail", "", "alice", NOW)
            .await
            .unwrap();
        drop(tx);
        assert!(store.business_unit("retail").await.unwrap().is_none());
        assert_eq!(count(&store, "audit_events").await, 0);
        // And the head lock was released.
        store.probe_writable().await.unwrap();
    }
}

#[tokio::test]
async fn a_failing_audit_write_rolls_the_change_back() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        match store.backend() {
            Backend::Sqlite => {
                sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit store refuses'); END")
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                sqlx::query("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit store refuses'; END $$ LANGUAGE plpgsql")
                    .execute(store.pool())
                    .await
                    .unwrap();
                sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse()")
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
        }
        let mut tx = store.begin().await.unwrap();
        tx.insert_business_unit("retail", "", "alice", NOW)
            .await
            .unwrap();
        let err = tx
            .commit(draft("business_unit.create", "business_unit:retail"), NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(
            store.business_unit("retail").await.unwrap().is_none(),
            "change survived a failed audit write"
        );
        assert_eq!(store.audit_head().await.unwrap().0, 0);
    }
}

#[tokio::test]
async fn a_held_audit_lock_times_out_instead_of_hanging() {
    let options = StoreOptions {
        statement_timeout: Duration::from_millis(300),
        connections_max: 4,
        sqlite_pages_max: None,
    };
    for TestStore { store, .. } in backends(options).await {
        let holder = store.begin().await.unwrap();
        let started = std::time::Instant::now();
        let err = store.begin().await.err().unwrap();
        assert!(
            matches!(err, StoreError::Timeout(_) | StoreError::Backend(_)),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "waited {:?}",
            started.elapsed()
        );
        drop(holder);
        store.probe_writable().await.unwrap();
    }
}

#[tokio::test]
async fn duplicates_are_conflicts() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        let mut tx = store.begin().await.unwrap();
        tx.insert_business_unit("retail", "", "alice", NOW)
            .await
            .unwrap();
        tx.commit(draft("business_unit.create", "business_unit:retail"), NOW)
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        let err = tx
            .insert_business_unit("retail", "", "alice", NOW)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "business unit `retail` already exists");
    }
}

#[tokio::test]
async fn concurrent_writers_never_fork_the_chain() {
    for TestStore { store, .. } in backends(StoreOptions {
        statement_timeout: Duration::from_secs(20),
        connections_max: 8,
        sqlite_pages_max: None,
    })
    .await
    {
        let mut tasks = Vec::new();
        for task_idx in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for item_idx in 0..10 {
                    let name = format!("unit-{task_idx}-{item_idx}");
                    let mut tx = store.begin().await.unwrap();
                    tx.insert_business_unit(&name, "", "alice", NOW)
                        .await
                        .unwrap();
                    tx.commit(
                        draft("business_unit.create", &format!("business_unit:{name}")),
                        NOW,
                    )
                    .await
                    .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(verify(&store).await, 80);
        assert_eq!(count(&store, "business_units").await, 80);
    }
}

async fn given_model(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_business_unit("retail", "", "admin", NOW)
        .await
        .unwrap();
    tx.insert_environment("staging", false, 1, "admin", NOW)
        .await
        .unwrap();
    tx.insert_environment("production", true, 2, "admin", NOW)
        .await
        .unwrap();
    tx.insert_model(&Model {
        business_unit: "retail".into(),
        name: "credit".into(),
        owner: "alice".into(),
        description: "Scores credit applications".into(),
        category: "tabular_classification".into(),
        risk_class: "high".into(),
        tier: 1,
        created_at: NOW.into(),
        created_by: "alice".into(),
    })
    .await
    .unwrap();
    for (label, digest) in [("1.0.0", "sha256:01"), ("1.1.0", "sha256:02")] {
        tx.insert_version(&Version {
            digest: digest.into(),
            business_unit: "retail".into(),
            model: "credit".into(),
            version_label: label.into(),
            manifest: r#"{"model_card":{"markdown":"Gradient boosting, 100% tabular"}}"#.into(),
            card_text: "Gradient boosting, 100% tabular".into(),
            author: "alice".into(),
            registered_at: NOW.into(),
            deprecated_at: None,
            deprecated_by: None,
            deprecation_reason: None,
            package: None,
        })
        .await
        .unwrap();
    }
    tx.commit(draft("setup", "model:retail/credit"), NOW)
        .await
        .unwrap();
}

fn alias_to(digest: Option<&str>, previous: Option<&str>, at: &str) -> AliasMove {
    AliasMove {
        id: 0,
        business_unit: "retail".into(),
        model: "credit".into(),
        environment: "production".into(),
        digest: digest.map(str::to_owned),
        previous_digest: previous.map(str::to_owned),
        moved_by: "dave".into(),
        moved_at: at.into(),
        reason: "release".into(),
        approval: None,
        audit_seq: 0,
    }
}

#[tokio::test]
async fn alias_history_answers_as_of_questions() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        given_model(&store).await;
        let times = ["2026-11-27T09:00:00.000000Z", "2026-11-27T10:00:00.000000Z"];
        for (digest, previous, at) in [
            ("sha256:01", None, times[0]),
            ("sha256:02", Some("sha256:01"), times[1]),
        ] {
            let mut tx = store.begin().await.unwrap();
            assert_eq!(
                tx.current_alias("retail", "credit", "production")
                    .await
                    .unwrap()
                    .as_deref(),
                previous
            );
            tx.move_alias(&alias_to(Some(digest), previous, at))
                .await
                .unwrap();
            tx.commit(draft("alias.set", "model:retail/credit"), at)
                .await
                .unwrap();
        }
        let at = |as_of| {
            let store = store.clone();
            async move {
                store
                    .alias("retail", "credit", "production", as_of)
                    .await
                    .unwrap()
                    .and_then(|alias| alias.digest)
            }
        };
        assert_eq!(at(Some("2026-11-27T08:59:59.999999Z")).await, None);
        assert_eq!(
            at(Some("2026-11-27T09:00:00.000000Z")).await.as_deref(),
            Some("sha256:01")
        );
        assert_eq!(
            at(Some("2026-11-27T09:30:00.000000Z")).await.as_deref(),
            Some("sha256:01")
        );
        assert_eq!(at(None).await.as_deref(), Some("sha256:02"));
        let history = store
            .alias_history("retail", "credit", "production")
            .await
            .unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            history[1].audit_seq, 3,
            "each move points at its audit event"
        );
    }
}

#[tokio::test]
async fn search_filters_and_matches_text_in_cards() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        given_model(&store).await;
        let search = |filter: SearchFilter| {
            let store = store.clone();
            async move {
                store
                    .search_models(&SearchFilter {
                        limit: 10,
                        ..filter
                    })
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(search(SearchFilter::default()).await, 1);
        assert_eq!(
            search(SearchFilter {
                text: Some("GRADIENT".into()),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            search(SearchFilter {
                text: Some("credit app".into()),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            search(SearchFilter {
                text: Some("100%".into()),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            search(SearchFilter {
                text: Some("_x%".into()),
                ..Default::default()
            })
            .await,
            0
        );
        assert_eq!(
            search(SearchFilter {
                risk_class: Some("minimal".into()),
                ..Default::default()
            })
            .await,
            0
        );
        assert_eq!(
            search(SearchFilter {
                business_units: Some(vec!["wholesale".into()]),
                ..Default::default()
            })
            .await,
            0
        );
        assert_eq!(
            search(SearchFilter {
                business_units: Some(vec![]),
                ..Default::default()
            })
            .await,
            0
        );
        assert_eq!(
            search(SearchFilter {
                owner: Some("alice".into()),
                category: Some("tabular_classification".into()),
                ..Default::default()
            })
            .await,
            1
        );
    }
}

#[tokio::test]
async fn blobs_are_verified_on_write_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob::BlobStore::open(dir.path()).unwrap();
    let chunks = || {
        futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(b"hello ".to_vec()),
            Ok(b"world".to_vec()),
        ])
    };
    let expected = steward_core::domain::Digest::of_bytes(b"hello world");
    let (digest, size) = blobs.put(chunks(), Some(&expected), 100).await.unwrap();
    assert_eq!((digest.clone(), size), (expected.clone(), 11));
    assert_eq!(
        blobs.read_verified(&digest, 100).await.unwrap(),
        b"hello world"
    );

    let wrong = steward_core::domain::Digest::of_bytes(b"other");
    let err = blobs.put(chunks(), Some(&wrong), 100).await.unwrap_err();
    assert!(
        matches!(err, blob::BlobError::DigestMismatch { .. }),
        "{err}"
    );
    assert!(!blobs.contains(&wrong));
    let err = blobs.put(chunks(), None, 10).await.unwrap_err();
    assert_eq!(err.to_string(), "blob is larger than the limit of 10 bytes");
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "temporary files are cleaned up"
    );

    std::fs::write(blobs.path(&digest), b"hello w0rld").unwrap();
    let err = blobs.read_verified(&digest, 100).await.unwrap_err();
    assert!(matches!(err, blob::BlobError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn streaming_the_log_yields_every_entry_in_order_and_stops_when_asked() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        for n in 0..25 {
            let mut tx = store.begin().await.unwrap();
            tx.insert_business_unit(&format!("u{n}"), "", "alice", NOW)
                .await
                .unwrap();
            tx.commit(
                draft("business_unit.create", &format!("business_unit:u{n}")),
                NOW,
            )
            .await
            .unwrap();
        }
        let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel(1);
        let reader = {
            let store = store.clone();
            tokio::spawn(async move { store.stream_audit_entries(5, 7, pages_tx).await })
        };
        let mut seqs = Vec::new();
        let mut sizes = Vec::new();
        while let Some(page) = pages_rx.recv().await {
            sizes.push(page.len());
            seqs.extend(page.iter().map(|entry| entry.seq));
        }
        reader.await.unwrap().unwrap();
        assert_eq!(
            seqs,
            (6..=25).collect::<Vec<u64>>(),
            "{:?}",
            store.backend()
        );
        assert_eq!(sizes, [7, 7, 6]);
        // A receiver that goes away ends the stream without an error.
        let (pages_tx, pages_rx) = tokio::sync::mpsc::channel(1);
        drop(pages_rx);
        store.stream_audit_entries(0, 3, pages_tx).await.unwrap();
    }
}

#[tokio::test]
async fn an_abandoned_upload_leaves_no_temporary_file() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob::BlobStore::open(dir.path()).unwrap();
    // One chunk, then the client goes silent; the request is dropped by its timeout.
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(b"partial".to_vec())])
        .chain(futures_util::stream::pending());
    let put = blobs.put(Box::pin(chunks), None, 1 << 20);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), put)
            .await
            .is_err()
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "the partial upload was removed"
    );
}

#[tokio::test]
async fn blobs_verify_and_stream_without_buffering() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob::BlobStore::open(dir.path()).unwrap();
    let bytes: Vec<u8> = (0..700_000u32).map(|n| (n % 251) as u8).collect();
    let (digest, _) = blobs
        .put(
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes.clone())]),
            None,
            1 << 21,
        )
        .await
        .unwrap();
    assert_eq!(blobs.verify(&digest).await.unwrap(), 700_000);
    let streamed: Vec<u8> = blobs
        .open_stream(&digest)
        .await
        .unwrap()
        .map(|chunk| chunk.unwrap())
        .concat()
        .await;
    assert_eq!(streamed, bytes);
    std::fs::write(blobs.path(&digest), &bytes[1..]).unwrap();
    assert!(matches!(
        blobs.verify(&digest).await,
        Err(blob::BlobError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn sealed_blobs_hold_only_ciphertext_and_refuse_changes() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob::BlobStore::open(dir.path()).unwrap();
    let bytes: Vec<u8> = (0..200_000u32).map(|n| (n % 241) as u8).collect();
    let digest = Digest::of_bytes(&bytes);
    let key = crate::sealed::DataKey::generate().unwrap();
    // Uploaded in uneven chunks, so segment boundaries fall inside them.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(70_001).map(|c| Ok(c.to_vec())).collect();
    let sealed = blobs
        .put_sealed(futures_util::stream::iter(chunks), &digest, 1 << 20, &key)
        .await
        .unwrap();
    assert_eq!(sealed.size, 200_000);
    assert_eq!(sealed.ciphertext_size, crate::sealed::sealed_size(200_000));
    assert!(!blobs.path(&digest).exists(), "no plaintext file");
    let path = blobs.sealed_path(&sealed.ciphertext_digest);
    let on_disk = std::fs::read(&path).unwrap();
    assert!(!on_disk.windows(64).any(|w| w == &bytes[1000..1064]));
    assert_eq!(
        blobs
            .verify_sealed(&digest, &sealed.ciphertext_digest)
            .await
            .unwrap(),
        sealed.ciphertext_size
    );
    let key_again = || crate::sealed::DataKey::from_bytes(key.as_bytes()).unwrap();
    let opened = blobs
        .read_sealed(&digest, &sealed.ciphertext_digest, key_again(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(opened, bytes);

    // Wrong plaintext digest on upload: nothing kept.
    let wrong = Digest::of_bytes(b"other");
    let err = blobs
        .put_sealed(
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes.clone())]),
            &wrong,
            1 << 20,
            &key,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, blob::BlobError::DigestMismatch { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("sealed"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );

    // A changed byte: the ciphertext digest catches it before anything is sent, and the
    // segment's tag catches it even when the digest check is skipped.
    let mut changed = on_disk.clone();
    changed[70_000] ^= 0x80;
    std::fs::write(&path, &changed).unwrap();
    assert!(matches!(
        blobs
            .verify_sealed(&digest, &sealed.ciphertext_digest)
            .await,
        Err(blob::BlobError::Corrupt { .. })
    ));
    let results: Vec<std::io::Result<Vec<u8>>> = blobs
        .open_sealed_stream(&digest, &sealed.ciphertext_digest, key_again())
        .await
        .unwrap()
        .collect()
        .await;
    let first_error = results.iter().position(|r| r.is_err()).unwrap();
    assert_eq!(
        first_error, 1,
        "segment 0 is intact, segment 1 fails its tag"
    );
    assert!(
        results[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("failed authentication")
    );
    assert!(
        blobs
            .read_sealed(&digest, &sealed.ciphertext_digest, key_again(), 1 << 20)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sealing_a_stored_blob_re_hashes_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = blob::BlobStore::open(dir.path()).unwrap();
    let (digest, _) = blobs
        .put(
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(b"weights".to_vec())]),
            None,
            100,
        )
        .await
        .unwrap();
    let key = crate::sealed::DataKey::generate().unwrap();
    let sealed = blobs.seal_stored(&digest, &key).await.unwrap();
    assert_eq!(sealed.size, 7);
    blobs.remove_plaintext(&digest).await.unwrap();
    assert!(!blobs.path(&digest).exists());
    // A plaintext file that no longer matches its name is not sealed.
    let (other, _) = blobs
        .put(
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(b"biases".to_vec())]),
            None,
            100,
        )
        .await
        .unwrap();
    std::fs::write(blobs.path(&other), b"bia5es").unwrap();
    assert!(matches!(
        blobs.seal_stored(&other, &key).await,
        Err(blob::BlobError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn sealed_blob_rows_rewrap_only_from_the_version_read() {
    for TestStore { store, .. } in backends(StoreOptions::default()).await {
        let digest = Digest::of_bytes(b"weights").to_string();
        let row = SealedBlob {
            digest: digest.clone(),
            ciphertext_digest: Digest::of_bytes(b"ciphertext").to_string(),
            ciphertext_size: 23,
            algorithm: crate::sealed::ALGORITHM.into(),
            key_id: "local:kek".into(),
            key_version: 1,
            wrapped_key: "steward:v1:AAAA".into(),
            sealed_at: NOW.into(),
        };
        let mut tx = store.begin().await.unwrap();
        assert!(tx.insert_blob(&digest, 7, "alice", NOW).await.unwrap());
        assert!(tx.insert_sealed_blob(&row).await.unwrap());
        assert!(
            !tx.insert_sealed_blob(&row).await.unwrap(),
            "first sealing stands"
        );
        tx.commit(draft("blob.upload", "blob:x"), NOW)
            .await
            .unwrap();
        assert_eq!(store.sealed_blob(&digest).await.unwrap().unwrap(), row);
        assert_eq!(
            store.sealed_key_versions().await.unwrap(),
            vec![("local:kek".to_owned(), 1, 1)]
        );

        let mut tx = store.begin().await.unwrap();
        assert!(
            tx.rewrap_sealed_blob(&digest, 1, 2, "steward:v2:BBBB")
                .await
                .unwrap()
        );
        // A second rotation that read version 1 finds the row moved on and leaves it.
        assert!(
            !tx.rewrap_sealed_blob(&digest, 1, 3, "steward:v3:CCCC")
                .await
                .unwrap()
        );
        assert_eq!(tx.count_wrapped_up_to("local:kek", 1).await.unwrap(), 0);
        assert_eq!(tx.count_wrapped_up_to("local:kek", 2).await.unwrap(), 1);
        tx.commit(draft("key.rotate", "key:local:kek"), NOW)
            .await
            .unwrap();
        let after = store.sealed_blob(&digest).await.unwrap().unwrap();
        assert_eq!(
            (after.key_version, after.wrapped_key.as_str()),
            (2, "steward:v2:BBBB")
        );
        assert_eq!(after.ciphertext_digest, row.ciphertext_digest);
        assert_eq!(store.sealed_blobs().await.unwrap().len(), 1);
    }
}
