//! Server configuration: built-in defaults, then `steward.toml` in the data directory, then
//! command-line overrides. Every limit is named here, with a ceiling no file can raise.
//!
//! Invariant: `Config::load` reports every problem at once and never reads the process
//! environment (the binary passes what it read).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "steward.toml";
/// Hard ceilings on the configurable limits.
pub const REQUEST_BODY_BYTES_LIMIT: u64 = 64 * 1024 * 1024;
pub const BLOB_BYTES_LIMIT: u64 = 64 * 1024 * 1024 * 1024;
pub const TIMEOUT_MS_LIMIT: u64 = 300_000;
pub const INFLIGHT_REQUESTS_LIMIT: u64 = 100_000;
pub const USER_REQUESTS_PER_SECOND_LIMIT: u64 = 100_000;
pub const PAGE_ITEMS_LIMIT: u64 = 100_000;
pub const REQUEST_LOG_QUEUE_LIMIT: u64 = 10_000_000;

/// The file as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen_addr: Option<String>,
    /// `sqlite://...` or `postgres://...`; default: `steward.db` in the data directory.
    pub database_url: Option<String>,
    /// Identity of the audit log in its checkpoints (C2SP origin line).
    pub log_origin: Option<String>,
    pub request_body_bytes_max: Option<u64>,
    pub blob_bytes_max: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    /// Bound on waiting for the database, the audit write included.
    pub storage_timeout_ms: Option<u64>,
    pub inflight_requests_max: Option<u64>,
    /// Requests each user may make per second, on average (bursts of twice that).
    pub user_requests_per_second_max: Option<u64>,
    pub page_items_max: Option<u64>,
    /// Seconds between automatic checkpoints (0: only on demand).
    pub checkpoint_interval_secs: Option<u64>,
    /// Webhooks may reach loopback, private and link-local addresses (default false).
    pub webhook_private_addresses: Option<bool>,
    /// Seconds between sweeps that expire overdue promotions and apply pending ones whose
    /// gates now pass, e.g. when a maintenance window opens (0: only on demand).
    pub promotion_sweep_interval_secs: Option<u64>,
    /// Folder of organisation `.cedar` policies, relative to the data directory.
    pub policy_dir: Option<String>,
    /// Documentation template file (YAML), relative to the data directory.
    pub documentation_templates: Option<String>,
    /// SQLite only: cap on the database file in 4 KiB pages; writes beyond it fail closed.
    pub sqlite_pages_max: Option<u64>,
    /// Refuse pushed packages without a signature from a trusted key (default true).
    pub require_signed_packages: Option<bool>,
    /// Advisories at or above this severity block deployment: low, medium, high (default), critical.
    pub advisory_block_severity: Option<String>,
    /// Classification policy file (YAML), relative to the data directory (default
    /// `classification.yaml` when it exists).
    pub classification_policy: Option<String>,
    /// Review boards and deployment templates for promotion gates (YAML), relative to the
    /// data directory (default `gates.yaml` when it exists, else the shipped templates).
    pub gate_config: Option<String>,
    /// Where key-encryption keys come from: `local` (default, `keys/kek/`) or `vault`.
    pub key_provider: Option<String>,
    /// Vault (transit): an http:// address, e.g. Vault Agent's listener on loopback.
    pub vault_addr: Option<String>,
    /// Vault: the transit mount (default `transit`).
    pub vault_transit_mount: Option<String>,
    /// Vault: the transit key's name (created with `derived=true`).
    pub vault_key: Option<String>,
    /// Vault: a file holding the token (mode 0600), relative to the data directory.
    pub vault_token_file: Option<String>,
    /// Vault Enterprise: the namespace.
    pub vault_namespace: Option<String>,
    /// The data plane's request log: share of requests logged outside a canary phase, in
    /// basis points (default 0; during a canary phase every request is logged).
    pub request_log_sample_bp: Option<u64>,
    /// The request log's queue in records (default 65,536); when full, records are dropped
    /// and counted.
    pub request_log_queue_records: Option<u64>,
    /// The request log's folder, relative to the data directory (default `requests`).
    pub request_log_dir: Option<String>,
    /// Whether the data plane logs requests at all (default true).
    pub request_log_enabled: Option<bool>,
    /// An OpenTelemetry collector's OTLP/HTTP base address (e.g. `http://127.0.0.1:4318`):
    /// a span per inference is exported there (default: none).
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    pub log_origin: String,
    pub request_body_bytes_max: usize,
    pub blob_bytes_max: u64,
    pub request_timeout: Duration,
    pub storage_timeout: Duration,
    pub inflight_requests_max: usize,
    pub user_requests_per_second_max: u32,
    pub page_items_max: u32,
    pub checkpoint_interval: Option<Duration>,
    pub promotion_sweep_interval: Option<Duration>,
    pub webhook_private_addresses: bool,
    pub policy_dir: PathBuf,
    pub documentation_templates: Option<PathBuf>,
    pub sqlite_pages_max: Option<u64>,
    pub require_signed_packages: bool,
    pub advisory_block_severity: steward_package::advisories::Severity,
    /// `None`: no classification policy (schemas are still checked for form).
    pub classification_policy: Option<PathBuf>,
    /// `None`: the shipped deployment templates, no boards.
    pub gate_config: Option<PathBuf>,
    /// `None`: the local keyring.
    pub vault: Option<crate::keys::VaultSettings>,
    pub request_log_sample_bp: u32,
    pub request_log_queue_records: usize,
    pub request_log_dir: PathBuf,
    pub request_log_enabled: bool,
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("config has {} problem(s): {}", .problems.len(), .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Reads `steward.toml` from the data directory (if present) and applies `overrides`.
    pub fn load(data_dir: &Path, overrides: &RawConfig) -> Result<Config, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let file: RawConfig = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|err| ConfigError {
                problems: vec![format!("{}: {}", path.display(), err.message())],
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => RawConfig::default(),
            Err(err) => {
                return Err(ConfigError {
                    problems: vec![format!("{}: {err}", path.display())],
                });
            }
        };
        Config::build(data_dir, file, overrides)
    }

    pub fn build(
        data_dir: &Path,
        file: RawConfig,
        overrides: &RawConfig,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        macro_rules! pick {
            ($field:ident) => {
                overrides.$field.clone().or(file.$field.clone())
            };
        }
        let mut limit = |name: &str, value: u64, min: u64, max: u64| -> u64 {
            if (min..=max).contains(&value) {
                value
            } else {
                problems.push(format!("{name} must be in {min}..={max}, got {value}"));
                min
            }
        };
        let request_body_bytes_max = limit(
            "request_body_bytes_max",
            pick!(request_body_bytes_max).unwrap_or(16 * 1024 * 1024),
            1024,
            REQUEST_BODY_BYTES_LIMIT,
        );
        let blob_bytes_max = limit(
            "blob_bytes_max",
            pick!(blob_bytes_max).unwrap_or(4 * 1024 * 1024 * 1024),
            1,
            BLOB_BYTES_LIMIT,
        );
        let request_timeout_ms = limit(
            "request_timeout_ms",
            pick!(request_timeout_ms).unwrap_or(30_000),
            1,
            TIMEOUT_MS_LIMIT,
        );
        let storage_timeout_ms = limit(
            "storage_timeout_ms",
            pick!(storage_timeout_ms).unwrap_or(5_000),
            1,
            TIMEOUT_MS_LIMIT,
        );
        let user_requests_per_second_max = limit(
            "user_requests_per_second_max",
            pick!(user_requests_per_second_max).unwrap_or(200),
            1,
            USER_REQUESTS_PER_SECOND_LIMIT,
        );
        let inflight_requests_max = limit(
            "inflight_requests_max",
            pick!(inflight_requests_max).unwrap_or(1024),
            1,
            INFLIGHT_REQUESTS_LIMIT,
        );
        let page_items_max = limit(
            "page_items_max",
            pick!(page_items_max).unwrap_or(10_000),
            1,
            PAGE_ITEMS_LIMIT,
        );
        let checkpoint_interval_secs = limit(
            "checkpoint_interval_secs",
            pick!(checkpoint_interval_secs).unwrap_or(60),
            0,
            86_400,
        );
        let promotion_sweep_interval_secs = limit(
            "promotion_sweep_interval_secs",
            pick!(promotion_sweep_interval_secs).unwrap_or(60),
            0,
            86_400,
        );
        let request_log_sample_bp = limit(
            "request_log_sample_bp",
            pick!(request_log_sample_bp).unwrap_or(0),
            0,
            10_000,
        );
        let request_log_queue_records = limit(
            "request_log_queue_records",
            pick!(request_log_queue_records).unwrap_or(65_536),
            1,
            REQUEST_LOG_QUEUE_LIMIT,
        );
        let listen_text = pick!(listen_addr).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen_addr = match listen_text.parse() {
            Ok(addr) => addr,
            Err(err) => {
                problems.push(format!("listen_addr `{listen_text}`: {err}"));
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        };
        let database_url = pick!(database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("steward.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres:")
            || database_url.starts_with("postgresql:"))
        {
            problems.push("database_url must start with `sqlite:` or `postgres:`".to_owned());
        }
        let severity_text = pick!(advisory_block_severity).unwrap_or_else(|| "high".to_owned());
        let advisory_block_severity = match steward_package::advisories::Severity::parse(
            &severity_text,
        ) {
            Some(severity) if severity != steward_package::advisories::Severity::Unknown => {
                severity
            }
            _ => {
                problems.push(format!("advisory_block_severity `{severity_text}` must be low, medium, high or critical"));
                steward_package::advisories::Severity::High
            }
        };
        let vault = match pick!(key_provider).as_deref() {
            None | Some("local") => None,
            Some("vault") => {
                let addr = pick!(vault_addr).unwrap_or_default();
                let key = pick!(vault_key).unwrap_or_default();
                let token_file = pick!(vault_token_file).unwrap_or_default();
                if !crate::keys::is_loopback_http(&addr) {
                    problems.push(format!("vault_addr `{addr}` must be an http:// address on loopback (Vault Agent's listener; this build has no TLS)"));
                }
                if key.is_empty() {
                    problems.push("vault_key must name the transit key".to_owned());
                }
                if token_file.is_empty() {
                    problems.push("vault_token_file must name a file holding the token".to_owned());
                }
                Some(crate::keys::VaultSettings {
                    addr,
                    mount: pick!(vault_transit_mount).unwrap_or_else(|| "transit".to_owned()),
                    key,
                    token_file: data_dir.join(token_file),
                    namespace: pick!(vault_namespace),
                })
            }
            Some(other) => {
                problems.push(format!("key_provider `{other}` must be `local` or `vault`"));
                None
            }
        };
        let log_origin = pick!(log_origin).unwrap_or_else(|| "steward.local/audit".to_owned());
        if log_origin.is_empty()
            || log_origin
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            problems.push(format!(
                "log_origin `{log_origin}` must be non-empty without spaces or control characters"
            ));
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            data_dir: data_dir.to_owned(),
            listen_addr,
            database_url,
            log_origin,
            request_body_bytes_max: request_body_bytes_max as usize,
            blob_bytes_max,
            request_timeout: Duration::from_millis(request_timeout_ms),
            storage_timeout: Duration::from_millis(storage_timeout_ms),
            inflight_requests_max: inflight_requests_max as usize,
            user_requests_per_second_max: user_requests_per_second_max as u32,
            page_items_max: page_items_max as u32,
            checkpoint_interval: (checkpoint_interval_secs > 0)
                .then(|| Duration::from_secs(checkpoint_interval_secs)),
            webhook_private_addresses: pick!(webhook_private_addresses).unwrap_or(false),
            promotion_sweep_interval: (promotion_sweep_interval_secs > 0)
                .then(|| Duration::from_secs(promotion_sweep_interval_secs)),
            policy_dir: data_dir.join(pick!(policy_dir).unwrap_or_else(|| "policies".to_owned())),
            documentation_templates: pick!(documentation_templates).map(|path| data_dir.join(path)),
            sqlite_pages_max: pick!(sqlite_pages_max),
            request_log_sample_bp: request_log_sample_bp as u32,
            request_log_queue_records: request_log_queue_records as usize,
            request_log_dir: data_dir
                .join(pick!(request_log_dir).unwrap_or_else(|| "requests".to_owned())),
            request_log_enabled: pick!(request_log_enabled).unwrap_or(true),
            otlp_endpoint: pick!(otlp_endpoint),
            require_signed_packages: pick!(require_signed_packages).unwrap_or(true),
            advisory_block_severity,
            vault,
            classification_policy: match pick!(classification_policy) {
                Some(path) => Some(data_dir.join(path)),
                None => Some(data_dir.join("classification.yaml")).filter(|path| path.exists()),
            },
            gate_config: match pick!(gate_config) {
                Some(path) => Some(data_dir.join(path)),
                None => Some(data_dir.join("gates.yaml")).filter(|path| path.exists()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_at_once() {
        let file = RawConfig {
            listen_addr: Some("nowhere".into()),
            request_timeout_ms: Some(0),
            ..Default::default()
        };
        let overrides = RawConfig {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        let err = Config::build(Path::new("/data"), file, &overrides).unwrap_err();
        expect_test::expect![[r#"config has 3 problem(s): request_timeout_ms must be in 1..=300000, got 0; listen_addr `nowhere`: invalid socket address syntax; database_url must start with `sqlite:` or `postgres:`"#]]
            .assert_eq(&err.to_string());
    }

    #[test]
    fn overrides_beat_the_file() {
        let file = RawConfig {
            listen_addr: Some("127.0.0.1:1".into()),
            ..Default::default()
        };
        let overrides = RawConfig {
            listen_addr: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let config = Config::build(Path::new("/data"), file, &overrides).unwrap();
        assert_eq!(config.listen_addr.port(), 2);
        assert_eq!(config.database_url, "sqlite:///data/steward.db");
    }
}
