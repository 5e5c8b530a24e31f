//! Crash consistency: start `steward serve`, fire mutations, SIGKILL it at a random moment,
//! again and again. Afterwards every acknowledged change is present with its audit event,
//! no change exists without its event, and the whole log verifies.
//!
//! `STEWARD_KILL_ITERATIONS` sets the number of kills (CI: 200 per backend); PostgreSQL runs
//! when `STEWARD_TEST_POSTGRES_URL` is set.

use std::collections::BTreeSet;
use std::time::Duration;

use steward_server::config::{Config, RawConfig};
use steward_store::{Store, StoreOptions};

use crate::{init, start};

fn iterations() -> u32 {
    std::env::var("STEWARD_KILL_ITERATIONS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(25)
}

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn run(backend: &str, database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let token = init(&data_dir, database_url);
    let seed = 0x5eed_0000 + u64::from(iterations());
    let mut rng = Rng(seed);
    let client = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    for iteration in 0..iterations() {
        let (server, url) = start(&data_dir);
        // Up to 80 ms: long enough that some writes are acknowledged on a loaded machine.
        let kill_after = Duration::from_micros(rng.next() % 80_000);
        let mut tasks = Vec::new();
        for writer in 0..4 {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0..1000 {
                    let name = format!("u{iteration}-{writer}-{n}");
                    let response = client
                        .post(format!("{url}/api/v1/business-units"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"name": name}))
                        .send()
                        .await;
                    match response {
                        Ok(response) if response.status().as_u16() == 201 => acked.push(name),
                        _ => break,
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(kill_after).await;
        drop(server);
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
    }
    let config = Config::load(&data_dir, &RawConfig::default()).unwrap();
    let store = Store::open(&config.database_url, StoreOptions::default())
        .await
        .unwrap();
    let verifier = steward_server::state::load_verifier(&data_dir).unwrap();
    let report = steward_server::routes::verify_log(&store, &config.log_origin, &verifier, &[])
        .await
        .unwrap_or_else(|err| panic!("{backend} seed {seed:#x}: {err}"));
    let units: BTreeSet<String> = store
        .business_units()
        .await
        .unwrap()
        .into_iter()
        .map(|unit| unit.name)
        .collect();
    let entries = store.audit_entries(0, u32::MAX).await.unwrap();
    let audited: BTreeSet<String> = entries
        .iter()
        .filter(|entry| entry.action == "business_unit.create")
        .filter_map(|entry| {
            entry
                .subject
                .strip_prefix("business_unit:")
                .map(str::to_owned)
        })
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&units).collect();
    assert!(
        lost.is_empty(),
        "{backend} seed {seed:#x}: acknowledged but lost: {lost:?}"
    );
    assert_eq!(
        units, audited,
        "{backend} seed {seed:#x}: every change has exactly its audit event"
    );
    assert!(
        !acknowledged.is_empty(),
        "{backend}: no mutation was acknowledged; the loop tested nothing"
    );
    eprintln!(
        "{backend}: {} kills, {} acknowledged changes, {} stored, {} audit entries verified",
        iterations(),
        acknowledged.len(),
        units.len(),
        report.entries
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_loses_no_acknowledged_change_sqlite() {
    run("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_loses_no_acknowledged_change_postgres() {
    let Ok(base) = std::env::var("STEWARD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("STEWARD_TEST_REQUIRE_POSTGRES").is_none(),
            "STEWARD_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let name = format!("steward_kill_{}", std::process::id());
    let admin = std::process::Command::new("psql")
        .arg(&base)
        .args(["-qAtc", &format!("DROP DATABASE IF EXISTS {name}; ")])
        .output();
    let created = std::process::Command::new("psql")
        .arg(&base)
        .args(["-qAtc", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(
        admin.is_ok() && created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let (prefix, _) = base.rsplit_once('/').unwrap();
    run("postgres", Some(&format!("{prefix}/{name}"))).await;
}
