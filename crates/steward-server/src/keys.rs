//! Key-encryption keys for blobs sealed at rest (P5).
//!
//! Every sealed blob has its own random data key; only its wrapped form is stored
//! (`sealed_blobs.wrapped_key`). A key provider wraps and unwraps data keys with a
//! customer-managed key that has versions: rotation adds a version and re-wraps every data
//! key under it (the ciphertext is never rewritten); a version no data key needs any more can
//! be retired.
//!
//! The local keyring keeps versions as `keys/kek/v<N>.key` (32 random bytes, hex, mode 0600,
//! refused when others can read them). A wrapped key reads `steward:v<N>:<base64(nonce ‖
//! AES-256-GCM(kek_N, data key))>`, the shape of Vault transit's `vault:v<N>:…`, and its
//! associated data is the blob's plaintext digest, so a wrapped key copied onto another blob
//! does not unwrap (KMS calls this the encryption context).
//!
//! Invariants:
//! - Data keys and key-encryption keys never leave this module in clear except as the
//!   `DataKey` that opens one blob; neither is ever logged or put in an error.
//! - The current version is the highest one present; retiring it is refused.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use steward_store::sealed::DataKey;
use zeroize::Zeroizing;

use crate::state::{read_secret_file, write_secret_file};

mod vault;
pub use vault::{VAULT_REQUEST_TIMEOUT, VaultSettings, VaultTransit, is_loopback_http};

/// Where the local keyring lives, under the data directory.
pub const KEK_DIR: &str = "keys/kek";
/// The key id recorded with data keys the local keyring wraps.
pub const LOCAL_KEY_ID: &str = "local:kek";
const WRAP_PREFIX: &str = "steward:v";
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key version {version} of `{key_id}` is not available (retired or never made)")]
    VersionMissing { key_id: String, version: u32 },
    #[error("wrapped data key is malformed: {0}")]
    Malformed(String),
    #[error(
        "data key does not unwrap under `{key_id}` version {version}: it was changed or belongs to another blob"
    )]
    Unwrap { key_id: String, version: u32 },
    #[error("key versions up to {version} still wrap {count} data key(s); rotate first")]
    StillInUse { version: u32, count: i64 },
    #[error("key version {0} is the current version and cannot be retired; rotate first")]
    Current(u32),
    #[error("keyring `{path}`: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "key version {version} of `{key_id}` in this data directory is not the key the database knows (check value differs); copy keys/kek from the data directory that made it"
    )]
    Mismatch { key_id: String, version: u32 },
    #[error(
        "the database knows key version(s) {versions:?} of `{key_id}`, which the key provider does not hold (local keyring: copy keys/kek from the data directory that made them)"
    )]
    Absent { key_id: String, versions: Vec<u32> },
    #[error("key provider: {0}")]
    Provider(String),
    #[error("key provider: {message}")]
    ProviderRefused { status: u16, message: String },
}

/// A key version as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownVersion {
    pub version: u32,
    pub check_value: String,
    pub retired: bool,
}

/// A data key wrapped by version `version` of a key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub version: u32,
    pub text: String,
}

/// Where key-encryption keys come from. One variant per provider.
pub enum KeyProvider {
    Local(LocalKeyring),
    Vault(VaultTransit),
}

impl KeyProvider {
    pub fn key_id(&self) -> &str {
        match self {
            KeyProvider::Local(_) => LOCAL_KEY_ID,
            KeyProvider::Vault(vault) => vault.key_id(),
        }
    }

    pub fn provider(&self) -> &'static str {
        match self {
            KeyProvider::Local(_) => "local",
            KeyProvider::Vault(_) => "vault-transit",
        }
    }

    /// Versions whose key material is still available, ascending.
    pub async fn versions(&self) -> Result<Vec<u32>, KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.versions(),
            KeyProvider::Vault(vault) => vault.versions().await,
        }
    }

    pub async fn current_version(&self) -> Result<u32, KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.current(),
            KeyProvider::Vault(vault) => vault.current().await,
        }
    }

    /// Wraps `key` under `version` (the newest the database records as usable), bound to
    /// `context` (the blob's digest).
    pub async fn wrap(
        &self,
        key: &DataKey,
        context: &str,
        version: u32,
    ) -> Result<WrappedKey, KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.wrap(key, context, version),
            KeyProvider::Vault(vault) => vault.wrap(key, context, version).await,
        }
    }

    pub async fn unwrap(&self, wrapped: &str, context: &str) -> Result<DataKey, KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.unwrap(wrapped, context),
            KeyProvider::Vault(vault) => vault.unwrap(wrapped, context).await,
        }
    }

    /// Re-wraps a data key under `version` (Vault does it inside, never returning the key).
    pub async fn rewrap(
        &self,
        wrapped: &str,
        context: &str,
        version: u32,
    ) -> Result<WrappedKey, KeyError> {
        match self {
            KeyProvider::Local(keyring) => {
                let key = keyring.unwrap(wrapped, context)?;
                keyring.wrap(&key, context, version)
            }
            KeyProvider::Vault(vault) => vault.rewrap(wrapped, context, version).await,
        }
    }

    /// Forgets a version that was made but never recorded (its rotation failed): nothing can
    /// have been wrapped under it, since wrapping needs a recorded version. Vault keeps it.
    pub async fn discard(&self, version: u32) -> Result<(), KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.discard(version),
            KeyProvider::Vault(_) => Ok(()),
        }
    }

    /// Makes a new version, numbered above every local version and `known_max` (the highest
    /// the database knows), which becomes current. Returns it.
    pub async fn rotate(&self, known_max: u32) -> Result<u32, KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.rotate(known_max),
            // Vault numbers its versions itself; a database that knows more than Vault does is
            // caught by the check values.
            KeyProvider::Vault(vault) => vault.rotate().await,
        }
    }

    /// A value that identifies the key material of `version` without revealing it: HMAC-SHA256
    /// under the key of a fixed label. Replicas compare it with the database's.
    pub async fn check_value(&self, version: u32) -> Result<String, KeyError> {
        match self {
            KeyProvider::Local(keyring) => keyring.check_value(version),
            KeyProvider::Vault(vault) => vault.check_value(version).await,
        }
    }

    /// Destroys the key material of every version up to `version` (as Vault's
    /// `min_decryption_version` does); the caller has checked no data key needs them and that
    /// `version` is below the current one.
    pub async fn retire(&self, version: u32) -> Result<(), KeyError> {
        match self {
            KeyProvider::Local(keyring) => {
                for old in keyring.versions()?.into_iter().filter(|v| *v <= version) {
                    keyring.retire(old)?;
                }
                Ok(())
            }
            KeyProvider::Vault(vault) => vault.retire(version).await,
        }
    }
}

/// Key-encryption keys in files of the data directory.
pub struct LocalKeyring {
    dir: PathBuf,
}

fn file_error(path: &Path, message: impl ToString) -> KeyError {
    KeyError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

impl LocalKeyring {
    /// Opens the keyring in `dir` and checks it against the versions the database knows:
    /// every one not retired must be here with the same key material (check value), and a
    /// version the database retired is destroyed here too. An empty keyring gets version 1,
    /// unless the database knows versions (then this data directory lost or never had them).
    /// Interrupted rotations and retirements are finished first.
    pub fn open(dir: &Path, known: &[KnownVersion]) -> Result<LocalKeyring, KeyError> {
        std::fs::create_dir_all(dir).map_err(|err| file_error(dir, err))?;
        let keyring = LocalKeyring {
            dir: dir.to_owned(),
        };
        for version in keyring.numbers(".key.tmp")? {
            let path = keyring.dir.join(format!("v{version}.key.tmp"));
            std::fs::remove_file(&path).map_err(|err| file_error(&path, err))?;
        }
        for version in keyring.numbers(".retiring")? {
            keyring.finish_retiring(version)?;
        }
        // Every check before anything is destroyed: a data directory pointed at the wrong
        // database must not lose keys.
        for version in keyring.versions()? {
            keyring.load(version)?;
        }
        let mut absent = Vec::new();
        for known in known {
            if !keyring.path(known.version).exists() {
                if !known.retired {
                    absent.push(known.version);
                }
            } else if keyring.check_value(known.version)? != known.check_value {
                return Err(KeyError::Mismatch {
                    key_id: LOCAL_KEY_ID.to_owned(),
                    version: known.version,
                });
            }
        }
        if !absent.is_empty() {
            return Err(KeyError::Absent {
                key_id: LOCAL_KEY_ID.to_owned(),
                versions: absent,
            });
        }
        // Retired in the database (here or through another replica): destroyed here too.
        for known in known.iter().filter(|known| known.retired) {
            if keyring.path(known.version).exists() {
                keyring.destroy(known.version)?;
            }
        }
        // A version above every recorded one that the database does not know is what a
        // rotation left when it failed before recording it: nothing was wrapped under it.
        if let Some(known_max) = known.iter().map(|known| known.version).max() {
            for version in keyring.versions()? {
                if version > known_max {
                    keyring.discard(version)?;
                }
            }
        }
        if keyring.versions()?.is_empty() && known.iter().all(|known| known.retired) {
            let first = known.iter().map(|known| known.version).max().unwrap_or(0) + 1;
            keyring.create(first)?;
        }
        Ok(keyring)
    }

    fn path(&self, version: u32) -> PathBuf {
        self.dir.join(format!("v{version}.key"))
    }

    /// Versions with key material (`v<N>.key`) and retired ones (`v<N>.retired`).
    fn numbers(&self, suffix: &str) -> Result<Vec<u32>, KeyError> {
        let mut versions = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|err| file_error(&self.dir, err))? {
            let name = entry.map_err(|err| file_error(&self.dir, err))?.file_name();
            let name = name.to_string_lossy();
            if let Some(version) = name
                .strip_prefix('v')
                .and_then(|rest| rest.strip_suffix(suffix))
                .and_then(|number| number.parse::<u32>().ok())
            {
                versions.push(version);
            }
        }
        versions.sort_unstable();
        Ok(versions)
    }

    fn versions(&self) -> Result<Vec<u32>, KeyError> {
        self.numbers(".key")
    }

    fn current(&self) -> Result<u32, KeyError> {
        self.versions()?
            .last()
            .copied()
            .ok_or_else(|| file_error(&self.dir, "the keyring holds no key version"))
    }

    /// Writes a new version durably: a temporary file (0600, fsynced), renamed into place,
    /// then the folder fsynced, so a crash leaves either no version or a whole one.
    fn create(&self, version: u32) -> Result<(), KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|err| file_error(&self.dir, err))?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_ref())));
        let temp = self.dir.join(format!("v{version}.key.tmp"));
        write_secret_file(&temp, &text).map_err(|err| file_error(&temp, err))?;
        let path = self.path(version);
        // A hard link never replaces an existing file, unlike a rename.
        let linked = std::fs::hard_link(&temp, &path);
        let _ = std::fs::remove_file(&temp);
        linked.map_err(|err| file_error(&path, err))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), KeyError> {
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|err| file_error(&self.dir, err))
    }

    fn check_value(&self, version: u32) -> Result<String, KeyError> {
        use hmac::{KeyInit as _, Mac};
        let path = self.path(version);
        let text = Zeroizing::new(read_secret_file(&path).map_err(|err| file_error(&path, err))?);
        let key = Zeroizing::new(
            hex::decode(text.as_str())
                .map_err(|_| file_error(&path, "key file is not 64 hex digits"))?,
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
            .map_err(|_| file_error(&path, "key file is not 64 hex digits"))?;
        mac.update(b"steward key-encryption key check value v1");
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    fn load(&self, version: u32) -> Result<Aes256Gcm, KeyError> {
        let path = self.path(version);
        if !path.exists() {
            return Err(KeyError::VersionMissing {
                key_id: LOCAL_KEY_ID.to_owned(),
                version,
            });
        }
        let text = Zeroizing::new(read_secret_file(&path).map_err(|err| file_error(&path, err))?);
        let bytes = Zeroizing::new(
            hex::decode(text.as_str())
                .map_err(|_| file_error(&path, "key file is not 64 hex digits"))?,
        );
        let array: Zeroizing<[u8; 32]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| file_error(&path, "key file is not 64 hex digits"))?,
        );
        Ok(Aes256Gcm::new(&(*array).into()))
    }

    fn wrap(&self, key: &DataKey, context: &str, version: u32) -> Result<WrappedKey, KeyError> {
        let cipher = self.load(version)?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|err| file_error(&self.dir, err))?;
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: key.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| file_error(&self.dir, "wrapping a data key failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(WrappedKey {
            version,
            text: format!(
                "{WRAP_PREFIX}{version}:{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
        })
    }

    fn unwrap(&self, wrapped: &str, context: &str) -> Result<DataKey, KeyError> {
        let (version, bytes) = parse_wrapped(wrapped)?;
        let cipher = self.load(version)?;
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| KeyError::Malformed("nonce has the wrong length".to_owned()))?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: context.as_bytes(),
                    },
                )
                .map_err(|_| KeyError::Unwrap {
                    key_id: LOCAL_KEY_ID.to_owned(),
                    version,
                })?,
        );
        DataKey::from_bytes(&plain).map_err(|err| KeyError::Malformed(err.to_string()))
    }

    fn discard(&self, version: u32) -> Result<(), KeyError> {
        let path = self.path(version);
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(file_error(&path, err)),
        }
    }

    fn rotate(&self, known_max: u32) -> Result<u32, KeyError> {
        // A retired number is never used again, so a wrapped key names one key for good.
        let retired = self.numbers(".retired")?.last().copied().unwrap_or(0);
        let next = self.current()?.max(retired).max(known_max) + 1;
        self.create(next)?;
        Ok(next)
    }

    fn retire(&self, version: u32) -> Result<(), KeyError> {
        if version == self.current()? {
            return Err(KeyError::Current(version));
        }
        self.destroy(version)
    }

    fn destroy(&self, version: u32) -> Result<(), KeyError> {
        let path = self.path(version);
        if !path.exists() {
            return Err(KeyError::VersionMissing {
                key_id: LOCAL_KEY_ID.to_owned(),
                version,
            });
        }
        // Renamed first, so the version is unusable from here on; a crash is finished at the
        // next start (`open`).
        let retiring = self.dir.join(format!("v{version}.retiring"));
        std::fs::rename(&path, &retiring).map_err(|err| file_error(&path, err))?;
        self.finish_retiring(version)
    }

    /// Overwrites a retiring key's bytes in place (no truncation, so the same blocks are
    /// written on simple file systems; journals and SSDs may still hold copies), then leaves
    /// an empty `v<N>.retired` marker so the number is never reused.
    fn finish_retiring(&self, version: u32) -> Result<(), KeyError> {
        use std::io::Write;
        let retiring = self.dir.join(format!("v{version}.retiring"));
        let len = std::fs::metadata(&retiring)
            .map_err(|err| file_error(&retiring, err))?
            .len();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&retiring)
            .map_err(|err| file_error(&retiring, err))?;
        file.write_all(&vec![0u8; len as usize])
            .and_then(|()| file.sync_all())
            .map_err(|err| file_error(&retiring, err))?;
        file.set_len(0).map_err(|err| file_error(&retiring, err))?;
        drop(file);
        let marker = self.dir.join(format!("v{version}.retired"));
        std::fs::rename(&retiring, &marker).map_err(|err| file_error(&marker, err))?;
        self.sync_dir()
    }
}

/// `steward:v<N>:<base64>` → `(N, bytes)`.
pub fn parse_wrapped(wrapped: &str) -> Result<(u32, Vec<u8>), KeyError> {
    let rest = wrapped
        .strip_prefix(WRAP_PREFIX)
        .ok_or_else(|| KeyError::Malformed(format!("it does not start with `{WRAP_PREFIX}`")))?;
    let (version, encoded) = rest
        .split_once(':')
        .ok_or_else(|| KeyError::Malformed("no `:` after the version".to_owned()))?;
    let version = version
        .parse::<u32>()
        .map_err(|_| KeyError::Malformed("the version is not a number".to_owned()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| KeyError::Malformed("the key is not base64".to_owned()))?;
    if bytes.len() <= NONCE_BYTES {
        return Err(KeyError::Malformed("the key is too short".to_owned()));
    }
    Ok((version, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOB: &str = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    fn provider(dir: &Path) -> KeyProvider {
        KeyProvider::Local(LocalKeyring::open(&dir.join("kek"), &[]).unwrap())
    }

    #[tokio::test]
    async fn wraps_unwraps_rotates_and_retires() {
        let dir = tempfile::tempdir().unwrap();
        let keys = provider(dir.path());
        assert_eq!(keys.versions().await.unwrap(), vec![1]);
        let data_key = DataKey::generate().unwrap();
        let wrapped = keys.wrap(&data_key, BLOB, 1).await.unwrap();
        assert_eq!(wrapped.version, 1);
        assert!(wrapped.text.starts_with("steward:v1:"));
        // Never the key's bytes in the wrapped key.
        let (_, raw) = parse_wrapped(&wrapped.text).unwrap();
        assert!(!raw.windows(32).any(|window| window == data_key.as_bytes()));
        let back = keys.unwrap(&wrapped.text, BLOB).await.unwrap();
        assert_eq!(back.as_bytes(), data_key.as_bytes());

        assert_eq!(keys.rotate(0).await.unwrap(), 2);
        let rewrapped = keys.rewrap(&wrapped.text, BLOB, 2).await.unwrap();
        assert_eq!(rewrapped.version, 2);
        assert!(matches!(
            keys.retire(2).await.unwrap_err(),
            KeyError::Current(2)
        ));
        keys.retire(1).await.unwrap();
        assert_eq!(keys.versions().await.unwrap(), vec![2]);
        assert!(dir.path().join("kek/v1.retired").exists());
        // The old wrapping is now useless; the new one still opens the same data key.
        assert!(matches!(
            keys.unwrap(&wrapped.text, BLOB).await.unwrap_err(),
            KeyError::VersionMissing { version: 1, .. }
        ));
        let back = keys.unwrap(&rewrapped.text, BLOB).await.unwrap();
        assert_eq!(back.as_bytes(), data_key.as_bytes());
        // Numbers are never reused, even when the newest version is retired later.
        assert_eq!(keys.rotate(0).await.unwrap(), 3);
        keys.retire(2).await.unwrap();
        assert_eq!(keys.rotate(0).await.unwrap(), 4);
        // Nor is one the database knows from another replica.
        assert_eq!(keys.rotate(9).await.unwrap(), 10);
    }

    #[tokio::test]
    async fn a_wrapped_key_is_bound_to_its_blob_and_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let keys = provider(dir.path());
        let wrapped = keys
            .wrap(&DataKey::generate().unwrap(), BLOB, 1)
            .await
            .unwrap();
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert!(matches!(
            keys.unwrap(&wrapped.text, other).await.unwrap_err(),
            KeyError::Unwrap { version: 1, .. }
        ));
        let (_, mut bytes) = parse_wrapped(&wrapped.text).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let changed = format!(
            "steward:v1:{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
        assert!(matches!(
            keys.unwrap(&changed, BLOB).await.unwrap_err(),
            KeyError::Unwrap { .. }
        ));
        for bad in [
            "vault:v1:AAAA",
            "steward:vX:AAAA",
            "steward:v1:!!",
            "steward:v1:AAAA",
        ] {
            assert!(
                matches!(
                    keys.unwrap(bad, BLOB).await.unwrap_err(),
                    KeyError::Malformed(_)
                ),
                "{bad}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let kek = dir.path().join("kek");
        LocalKeyring::open(&kek, &[]).unwrap();
        std::fs::set_permissions(kek.join("v1.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = LocalKeyring::open(&kek, &[]).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}

#[cfg(test)]
mod database_tests {
    use super::*;

    #[tokio::test]
    async fn the_keyring_must_match_what_the_database_knows() {
        let dir = tempfile::tempdir().unwrap();
        let kek = dir.path().join("kek");
        let keys = KeyProvider::Local(LocalKeyring::open(&kek, &[]).unwrap());
        let v1 = KnownVersion {
            version: 1,
            check_value: keys.check_value(1).await.unwrap(),
            retired: false,
        };
        // Same key: opens. The check value reveals nothing of the key but identifies it.
        LocalKeyring::open(&kek, std::slice::from_ref(&v1)).unwrap();
        assert_eq!(v1.check_value.len(), 64);
        // Another replica's data directory without the key: refused, not silently replaced.
        let other = dir.path().join("other");
        let err = LocalKeyring::open(&other, std::slice::from_ref(&v1))
            .err()
            .unwrap();
        assert!(
            matches!(err, KeyError::Absent { ref versions, .. } if versions == &[1]),
            "{err}"
        );
        assert!(
            !other.join("v1.key").exists(),
            "nothing made under a known number"
        );
        // A different key under the same number: refused.
        let stranger = dir.path().join("stranger");
        LocalKeyring::open(&stranger, &[]).unwrap();
        let err = LocalKeyring::open(&stranger, std::slice::from_ref(&v1))
            .err()
            .unwrap();
        assert!(
            matches!(err, KeyError::Mismatch { version: 1, .. }),
            "{err}"
        );
        // Retired in the database (by another replica): destroyed here at start.
        let retired = KnownVersion {
            retired: true,
            ..v1.clone()
        };
        keys.rotate(1).await.unwrap();
        LocalKeyring::open(&kek, &[retired]).unwrap();
        assert!(!kek.join("v1.key").exists() && kek.join("v1.retired").exists());
    }

    #[tokio::test]
    async fn interrupted_rotations_and_retirements_are_finished_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let kek = dir.path().join("kek");
        let keys = KeyProvider::Local(LocalKeyring::open(&kek, &[]).unwrap());
        keys.rotate(0).await.unwrap();
        // A crash after the rename to `.retiring` and one during the write of a new version.
        std::fs::rename(kek.join("v1.key"), kek.join("v1.retiring")).unwrap();
        std::fs::write(kek.join("v3.key.tmp"), "partial").unwrap();
        let keys = KeyProvider::Local(LocalKeyring::open(&kek, &[]).unwrap());
        assert_eq!(keys.versions().await.unwrap(), vec![2]);
        assert_eq!(std::fs::read(kek.join("v1.retired")).unwrap(), b"");
        assert!(!kek.join("v1.retiring").exists() && !kek.join("v3.key.tmp").exists());
    }
}
