//! Audit-trail benchmarks (`cargo bench -p steward-server --bench audit`):
//!
//! 1. audited state changes per second, each a durable transaction with its audit event,
//!    on SQLite (WAL, synchronous=FULL) and PostgreSQL (synchronous_commit=on), with one
//!    writer and with eight;
//! 2. verifying a log of 1,000,000 entries end to end (read from SQLite, re-hash, chain,
//!    Merkle root, checkpoint signature), as `steward audit verify --data-dir` does.
//!
//! PostgreSQL runs when `STEWARD_TEST_POSTGRES_URL` is set. Peers for the same run are
//! measured by `bench/audit.sh` (pgbench, sqlite3). Figures go to BENCHMARKS.md.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::json;
use steward_core::audit::EventDraft;
use steward_core::audit::checkpoint::NoteSigner;
use steward_store::{Store, StoreOptions};

const ORIGIN: &str = "bench.steward/audit";
const NOW: &str = "2026-11-27T08:00:00.000000Z";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn draft(name: &str) -> EventDraft {
    EventDraft {
        actor: "bench".into(),
        action: "business_unit.create".into(),
        subject: format!("business_unit:{name}"),
        payload: json!({"description": "benchmark unit", "n": name}),
        decision: json!({"effect": "allow", "action": "business_unit.create", "policies": ["steward.admin"], "errors": [], "policy_set": "sha256:00"}),
    }
}

async fn changes_per_second(store: &Store, run: usize, writers: usize, per_writer: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..per_writer {
                let name = format!("r{run}-w{writer}-{n}");
                let mut tx = store.begin().await.unwrap();
                tx.insert_business_unit(&name, "benchmark unit", "bench", NOW)
                    .await
                    .unwrap();
                tx.commit(draft(&name), NOW).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (writers * per_writer) as f64 / started.elapsed().as_secs_f64()
}

async fn open_postgres(base: &str, name: &str) -> Store {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(base).await.unwrap();
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
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Store::open(&format!("{prefix}/{name}"), options())
        .await
        .unwrap()
}

fn options() -> StoreOptions {
    StoreOptions {
        statement_timeout: Duration::from_secs(60),
        connections_max: 16,
        sqlite_pages_max: None,
    }
}

async fn throughput(label: &str, store: &Store) {
    for (writers, per_writer) in [(1, 1000), (8, 250)] {
        let mut runs = Vec::new();
        for run in 0..3 {
            runs.push(changes_per_second(store, run + writers * 10, writers, per_writer).await);
        }
        println!(
            "audited changes/s  {label:<10} writers={writers}  median {:>8.0}  runs {:?}",
            median(runs.clone()),
            runs.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
}

async fn verify_million(dir: &std::path::Path) {
    const ENTRIES: u64 = 1_000_000;
    const BATCH: usize = 10_000;
    let url = format!("sqlite://{}", dir.join("verify.db").display());
    let store = Store::open(&url, options()).await.unwrap();
    let started = Instant::now();
    let mut written = 0;
    while written < ENTRIES {
        let tx = store.begin().await.unwrap();
        let drafts: Vec<EventDraft> = (0..BATCH)
            .map(|n| draft(&format!("v{}", written + n as u64)))
            .collect();
        tx.commit_all(drafts, NOW).await.unwrap();
        written += BATCH as u64;
    }
    println!(
        "wrote {ENTRIES} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap();
    steward_server::routes::make_checkpoint(&store, &signer, ORIGIN, NOW)
        .await
        .unwrap();
    let verifier = signer.verifier();
    // The floor: streaming every entry out of storage, checking nothing.
    let mut read_runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel(2);
        let counter = tokio::spawn(async move {
            let mut n_read = 0;
            while let Some(page) = pages_rx.recv().await {
                let page: Vec<steward_core::audit::StoredEntry> = page;
                n_read += page.len();
            }
            n_read
        });
        store
            .stream_audit_entries(0, 20_000, pages_tx)
            .await
            .unwrap();
        assert_eq!(counter.await.unwrap() as u64, ENTRIES);
        read_runs.push(started.elapsed().as_secs_f64());
    }
    println!(
        "audit read only    sqlite     entries={ENTRIES}  median {:.2} s  runs {:?}",
        median(read_runs.clone()),
        read_runs
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let report = steward_server::routes::verify_log(&store, ORIGIN, &verifier, &[])
            .await
            .unwrap();
        assert_eq!(report.entries, ENTRIES);
        runs.push(started.elapsed().as_secs_f64());
    }
    println!(
        "audit verify       sqlite     entries={ENTRIES}  median {:.2} s  runs {:?}",
        median(runs.clone()),
        runs.iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    store.close().await;
    println!("database file: {}", dir.join("verify.db").display());
}

#[tokio::main]
async fn main() {
    let keep = std::env::var_os("STEWARD_BENCH_KEEP").is_some();
    let dir = tempfile::tempdir().unwrap();
    if std::env::var("STEWARD_BENCH_ONLY").as_deref() == Ok("verify") {
        verify_million(dir.path()).await;
        return;
    }
    let sqlite = Store::open(
        &format!("sqlite://{}", dir.path().join("throughput.db").display()),
        options(),
    )
    .await
    .unwrap();
    throughput("sqlite", &sqlite).await;
    sqlite.close().await;
    if let Ok(base) = std::env::var("STEWARD_TEST_POSTGRES_URL") {
        let postgres = open_postgres(&base, "steward_bench").await;
        throughput("postgres", &postgres).await;
        postgres.close().await;
    }
    verify_million(dir.path()).await;
    if keep {
        let kept = dir.keep();
        println!("kept {}", kept.display());
    }
}
