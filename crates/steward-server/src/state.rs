//! The server's state (`App`) and the data directory it lives in: config, database, blob
//! folder, log signing key, audit HMAC key, organisation policies.
//!
//! Invariants:
//! - Key files are created with mode 0600 and refused when group- or world-readable.
//! - The server starts only with a valid policy set, valid documentation templates and an
//!   audit store that accepts writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use steward_core::audit::checkpoint::{NoteSigner, NoteVerifier};
use steward_core::docs::TemplateSet;
use steward_policy::Engine;
use steward_store::blob::BlobStore;
use steward_store::{Store, StoreOptions};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;

pub const LOG_KEY_FILE: &str = "keys/log.key";
pub const LOG_PUBLIC_KEY_FILE: &str = "keys/log.pub";
pub const AUDIT_HMAC_KEY_FILE: &str = "keys/audit-hmac.key";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// A package-signing key made at `init` for single-machine setups; its public half is trusted
/// for every business unit (`trust/package-signing.pem`). Organisations add their own keys
/// under `trust/` (all units) or `trust/<business unit>/`.
pub const PACKAGE_SIGNING_KEY_FILE: &str = "keys/package-signing.key";
pub const TRUST_DIR: &str = "trust";

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub inner: Arc<AppInner>,
}

pub struct AppInner {
    pub config: Config,
    pub store: Store,
    pub blobs: BlobStore,
    pub engine: Engine,
    pub templates: TemplateSet,
    pub clock: Arc<dyn Clock>,
    pub signer: NoteSigner,
    pub verifier: NoteVerifier,
    pub audit_key: Vec<u8>,
    pub rate_limiter: crate::ratelimit::RateLimiter,
    pub keys: crate::keys::KeyProvider,
    pub classification: steward_core::schema::ClassificationPolicy,
    pub gates: steward_core::promotion::GateConfig,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.inner
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("organisation policies: {0}")]
    Policy(#[from] steward_policy::LoadError),
    #[error("documentation templates: {0}")]
    Templates(#[from] steward_core::docs::TemplateError),
    #[error("database: {0}")]
    Store(#[source] steward_store::StoreError),
    #[error("the audit store does not accept writes, refusing to start: {0}")]
    AuditNotWritable(#[source] steward_store::StoreError),
    #[error("key-encryption keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("blob folder: {0}")]
    Blobs(#[from] steward_store::blob::BlobError),
}

fn file_error(path: &Path, message: impl ToString) -> StartError {
    StartError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Reads a secret file, refusing one that others can read.
pub fn read_secret_file(path: &Path) -> Result<String, StartError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|err| file_error(path, err))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(file_error(
                path,
                format!(
                    "key file has mode {:o}; it must not be readable by group or others (chmod 600)",
                    mode & 0o777
                ),
            ));
        }
    }
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|err| file_error(path, err))
}

/// Writes a new secret file with mode 0600; refuses to overwrite.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), StartError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|err| file_error(path, err))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| file_error(path, err))
}

/// Creates the key files of a new data directory.
pub fn create_keys(data_dir: &Path, log_origin: &str) -> Result<(), StartError> {
    let keys_dir = data_dir.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(|err| file_error(&keys_dir, err))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|err| file_error(&keys_dir, err))?;
    let signer = NoteSigner::new(log_origin, SigningKey::from_bytes(&seed))
        .map_err(|err| file_error(&keys_dir, err))?;
    write_secret_file(
        &data_dir.join(LOG_KEY_FILE),
        &format!("{}\n", signer.to_private_key_text()),
    )?;
    let public_path = data_dir.join(LOG_PUBLIC_KEY_FILE);
    std::fs::write(&public_path, format!("{}\n", signer.verifier()))
        .map_err(|err| file_error(&public_path, err))?;
    let mut hmac_key = [0u8; 32];
    getrandom::fill(&mut hmac_key).map_err(|err| file_error(&keys_dir, err))?;
    write_secret_file(
        &data_dir.join(AUDIT_HMAC_KEY_FILE),
        &format!("{}\n", hex::encode(hmac_key)),
    )?;
    create_package_signing_key(data_dir)
}

fn create_package_signing_key(data_dir: &Path) -> Result<(), StartError> {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let mut seed = [0u8; 32];
    let key = loop {
        getrandom::fill(&mut seed).map_err(|err| file_error(data_dir, err))?;
        // Rejection sampling: almost every 32-byte string is a valid P-256 scalar.
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&seed) {
            break key;
        }
    };
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|err| file_error(data_dir, err))?;
    write_secret_file(&data_dir.join(PACKAGE_SIGNING_KEY_FILE), &private)?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|err| file_error(data_dir, err))?;
    let trust = data_dir.join(TRUST_DIR);
    std::fs::create_dir_all(&trust).map_err(|err| file_error(&trust, err))?;
    std::fs::write(trust.join("package-signing.pem"), public).map_err(|err| file_error(&trust, err))
}

pub fn load_verifier(data_dir: &Path) -> Result<NoteVerifier, StartError> {
    let path = data_dir.join(LOG_PUBLIC_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|err| file_error(&path, err))?;
    NoteVerifier::parse(text.trim()).map_err(|err| file_error(&path, err))
}

/// Organisation policies: every `*.cedar` file in the folder, in name order.
pub fn read_policy_dir(dir: &Path) -> Result<Vec<(String, String)>, StartError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(file_error(dir, err)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|err| file_error(dir, err))?.path();
        if path.extension().is_some_and(|ext| ext == "cedar") {
            let text = std::fs::read_to_string(&path).map_err(|err| file_error(&path, err))?;
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, text));
        }
    }
    files.sort();
    Ok(files)
}

/// Opens the key-encryption keys, checked against the versions the database knows (see
/// `LocalKeyring::open`; with Vault, every recorded version must still give the same check
/// value), finishes retirements the database recorded, and on the first start records the
/// provider's current version (audited, `key.create`). Sealed blobs under another key
/// provider refuse the start: they could not be opened.
async fn open_keys(
    data_dir: &Path,
    vault: Option<&crate::keys::VaultSettings>,
    store: &Store,
    clock: &dyn Clock,
) -> Result<crate::keys::KeyProvider, StartError> {
    use crate::keys::{
        KeyError, KeyProvider, KnownVersion, LOCAL_KEY_ID, LocalKeyring, VaultTransit,
    };
    let remote = match vault {
        Some(settings) => Some(VaultTransit::connect(settings).await?),
        None => None,
    };
    let key_id = remote
        .as_ref()
        .map_or(LOCAL_KEY_ID.to_owned(), |vault| vault.key_id().to_owned());
    let strangers: Vec<String> = store
        .sealed_key_versions()
        .await
        .map_err(StartError::Store)?
        .into_iter()
        .filter(|(id, _, _)| *id != key_id)
        .map(|(id, version, count)| format!("{count} under `{id}` v{version}"))
        .collect();
    if !strangers.is_empty() {
        return Err(KeyError::Provider(format!(
            "sealed blobs are wrapped by another key provider ({}); configure that provider, not `{key_id}`",
            strangers.join(", ")
        ))
        .into());
    }
    let known: Vec<KnownVersion> = store
        .key_versions(&key_id)
        .await
        .map_err(StartError::Store)?
        .into_iter()
        .map(|row| KnownVersion {
            version: row.version as u32,
            check_value: row.check_value,
            retired: row.retired_at.is_some(),
        })
        .collect();
    let keys = match remote {
        Some(vault) => {
            let available = vault.versions().await?;
            for known in known.iter().filter(|known| !known.retired) {
                if !available.contains(&known.version) {
                    return Err(KeyError::Absent {
                        key_id: key_id.clone(),
                        versions: vec![known.version],
                    }
                    .into());
                }
                if vault.check_value(known.version).await? != known.check_value {
                    return Err(KeyError::Mismatch {
                        key_id: key_id.clone(),
                        version: known.version,
                    }
                    .into());
                }
            }
            if let Some(retired) = known.iter().filter(|k| k.retired).map(|k| k.version).max()
                && vault.min_decryption_version().await? <= retired
            {
                vault.retire(retired).await?;
            }
            KeyProvider::Vault(vault)
        }
        None => KeyProvider::Local(LocalKeyring::open(
            &data_dir.join(crate::keys::KEK_DIR),
            &known,
        )?),
    };
    if known.iter().any(|known| !known.retired) {
        return Ok(keys);
    }
    // First start (or every version retired): record the provider's current version.
    let version = keys.current_version().await?;
    let now = crate::clock::format(clock.now());
    let row = steward_store::KeyVersion {
        key_id: key_id.clone(),
        version: i64::from(version),
        check_value: keys.check_value(version).await?,
        created_at: now.clone(),
        retired_at: None,
    };
    let mut tx = store.begin().await.map_err(StartError::Store)?;
    if !tx
        .insert_key_version(&row)
        .await
        .map_err(StartError::Store)?
    {
        // Another server recorded it at the same moment: it must be the same key.
        drop(tx);
        let theirs = store
            .key_versions(&key_id)
            .await
            .map_err(StartError::Store)?
            .into_iter()
            .find(|known| known.version == i64::from(version));
        if theirs.is_some_and(|theirs| theirs.check_value == row.check_value) {
            return Ok(keys);
        }
        return Err(KeyError::Mismatch { key_id, version }.into());
    }
    let draft = steward_core::audit::EventDraft {
        actor: "steward".to_owned(),
        action: "key.create".to_owned(),
        subject: format!("key:{key_id}"),
        payload: serde_json::json!({"version": version, "reason": "first start: the key provider's current version"}),
        decision: serde_json::json!({"effect": "allow", "reasons": ["steward.startup"]}),
    };
    tx.commit(draft, &now).await.map_err(StartError::Store)?;
    Ok(keys)
}

impl App {
    /// Opens everything the configuration names and checks it; see the module invariants.
    pub async fn open(config: Config) -> Result<App, StartError> {
        App::open_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<App, StartError> {
        let data_dir = config.data_dir.clone();
        let engine = Engine::load(&read_policy_dir(&config.policy_dir)?)?;
        let templates = match &config.documentation_templates {
            Some(path) => TemplateSet::parse_yaml(
                &std::fs::read_to_string(path).map_err(|err| file_error(path, err))?,
            )?,
            None => TemplateSet::default_set(),
        };
        let classification = match &config.classification_policy {
            Some(path) => steward_core::schema::ClassificationPolicy::parse_yaml(
                &std::fs::read_to_string(path).map_err(|err| file_error(path, err))?,
            )
            .map_err(|err| file_error(path, err))?,
            None => steward_core::schema::ClassificationPolicy::default(),
        };
        let gates = match &config.gate_config {
            Some(path) => steward_core::promotion::GateConfig::parse_yaml(
                &std::fs::read_to_string(path).map_err(|err| file_error(path, err))?,
            )
            .map_err(|err| file_error(path, err))?,
            None => steward_core::promotion::GateConfig::shipped(),
        };
        let signer_path = data_dir.join(LOG_KEY_FILE);
        let signer = NoteSigner::parse(&read_secret_file(&signer_path)?)
            .map_err(|err| file_error(&signer_path, err))?;
        let verifier = load_verifier(&data_dir)?;
        if verifier.key_id() != signer.key_id() || verifier.name() != config.log_origin {
            return Err(file_error(
                &data_dir.join(LOG_PUBLIC_KEY_FILE),
                "public key does not match the log key and origin",
            ));
        }
        let hmac_path = data_dir.join(AUDIT_HMAC_KEY_FILE);
        let audit_key = hex::decode(read_secret_file(&hmac_path)?)
            .map_err(|err| file_error(&hmac_path, err))?;
        let blobs = BlobStore::open(&data_dir.join("blobs"))?;
        let options = StoreOptions {
            statement_timeout: config.storage_timeout,
            connections_max: 16,
            sqlite_pages_max: config.sqlite_pages_max,
        };
        let store = Store::open(&config.database_url, options)
            .await
            .map_err(StartError::Store)?;
        store
            .probe_writable()
            .await
            .map_err(StartError::AuditNotWritable)?;
        let keys = open_keys(&data_dir, config.vault.as_ref(), &store, clock.as_ref()).await?;
        let rate_limiter = crate::ratelimit::RateLimiter::new(config.user_requests_per_second_max);
        Ok(App {
            inner: Arc::new(AppInner {
                rate_limiter,
                config,
                store,
                blobs,
                engine,
                templates,
                clock,
                signer,
                verifier,
                audit_key,
                keys,
                classification,
                gates,
            }),
        })
    }

    pub fn now(&self) -> String {
        crate::clock::format(self.clock.now())
    }

    pub fn now_unix(&self) -> i64 {
        self.clock.now().timestamp()
    }
}
