//! Model signatures in the OpenSSF model-signing format (v1.0), so that the `model_signing`
//! verifier (PyPI) accepts ours offline: a Sigstore bundle v0.3 holding a DSSE envelope
//! around an in-toto v1 statement whose predicate lists every file's SHA-256, signed with
//! ECDSA P-256 over the DSSE pre-authentication encoding.
//!
//! Invariants:
//! - Files are hashed streaming, in `PurePosixPath` order (by path components), symbolic
//!   links refused; `.git`, `.github`, `.gitattributes`, `.gitignore` and the signature file
//!   itself are left out, as model_signing does.
//! - Verification recomputes everything from the files and names the first file that does
//!   not match, or the extra or missing one.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
pub const SIGNATURE_FILE: &str = "model.sig";
/// Names under which a package signature covers its governance document and SBOM.
pub const SIGNED_GOVERNANCE_PATH: &str = ".steward/governance.json";
pub const SIGNED_SBOM_PATH: &str = ".steward/sbom.cdx.json";
pub const SIGNED_CONFIG_PATH: &str = ".steward/config.json";
const IGNORED: &[&str] = &[".git", ".github", ".gitattributes", ".gitignore"];
const CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is a symbolic link; signed models take regular files only")]
    Symlink(String),
    #[error("`{0}` is not a P-256 EC private key in PEM (PKCS#8 or SEC1 `EC PRIVATE KEY`)")]
    BadPrivateKey(String),
    #[error("`{0}` is not a P-256 public key in PEM (`PUBLIC KEY`)")]
    BadPublicKey(String),
    #[error("key file `{0}` is readable by group or others; chmod 600 it")]
    KeyReadable(String),
    #[error("signature is not valid: {0}")]
    Invalid(String),
    #[error("file `{0}` does not match its signed digest (it was changed)")]
    Tampered(String),
    #[error("file `{0}` is not covered by the signature")]
    Unsigned(String),
    #[error("signed file `{0}` is missing")]
    Missing(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SignError + '_ {
    move |source| SignError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `(relative path, sha256 hex)` of every file, in model_signing's order.
pub fn hash_files(root: &Path, signature_file: &Path) -> Result<Vec<(String, String)>, SignError> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            let first = relative.split('/').next().unwrap_or_default();
            if IGNORED.contains(&first) || path == signature_file {
                continue;
            }
            let file_type = entry.file_type().map_err(io(&path))?;
            if file_type.is_symlink() {
                return Err(SignError::Symlink(relative));
            }
            if file_type.is_dir() {
                pending.push(path);
            } else {
                files.push((relative, path));
            }
        }
    }
    // PurePosixPath order compares components, not raw strings (`a/b` < `a-b`).
    files.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
    // Hash files in parallel, one file per worker at a time: a multi-file model verifies
    // at several times one core's hashing speed (BENCHMARKS.md).
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<String, SignError>>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let idx = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, path)) = files.get(idx) else {
                        break;
                    };
                    let digest = hash_file(path);
                    if let Some(slot) = results.get(idx) {
                        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                            Some(digest);
                    }
                }
            });
        }
    });
    let mut res = Vec::with_capacity(files.len());
    for ((relative, _), slot) in files.into_iter().zip(results) {
        let digest = slot
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // INVARIANT: every index below `files.len()` was taken by exactly one worker.
        res.push((relative, digest.expect("every file was hashed")?));
    }
    Ok(res)
}

fn hash_file(path: &Path) -> Result<String, SignError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = file.read(&mut chunk).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn root_digest(files: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    for (_, digest) in files {
        hasher.update(hex::decode(digest).unwrap_or_default());
    }
    hex::encode(hasher.finalize())
}

/// DSSE pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn read_key_text(path: &Path, secret: bool) -> Result<String, SignError> {
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(SignError::KeyReadable(path.display().to_string()));
        }
    }
    std::fs::read_to_string(path).map_err(io(path))
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey, SignError> {
    let text = read_key_text(path, true)?;
    let bad = || SignError::BadPrivateKey(path.display().to_string());
    if let Ok(key) = SigningKey::from_pkcs8_pem(&text) {
        return Ok(key);
    }
    let secret = p256::SecretKey::from_sec1_pem(&text).map_err(|_| bad())?;
    Ok(SigningKey::from(secret))
}

pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, SignError> {
    let text = read_key_text(path, false)?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|_| SignError::BadPublicKey(path.display().to_string()))
}

/// The hint model_signing checks: SHA-256 of the public key's PEM text.
fn key_hint(key: &VerifyingKey) -> Option<String> {
    key.to_public_key_pem(LineEnding::LF)
        .ok()
        .map(|pem| hex::encode(Sha256::digest(pem.as_bytes())))
}

fn statement(model_name: &str, files: &[(String, String)]) -> Value {
    let resources: Vec<Value> = files
        .iter()
        .map(|(name, digest)| json!({"algorithm": "sha256", "name": name, "digest": digest}))
        .collect();
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root_digest(files)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false, "ignore_paths": [".git", SIGNATURE_FILE, ".gitattributes", ".gitignore", ".github"]},
            "resources": resources,
        },
    })
}

/// What signs: an ECDSA P-256 key held here (PEM) or elsewhere (Vault transit). `sign`
/// returns a DER signature over SHA-256 of `message`.
pub trait Signer {
    fn verifying_key(&self) -> VerifyingKey;
    fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A key in memory; ECDSA here is deterministic (RFC 6979), so the same payload and key give
/// the same signature.
impl Signer for SigningKey {
    fn verifying_key(&self) -> VerifyingKey {
        *SigningKey::verifying_key(self)
    }

    fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: Signature = p256::ecdsa::signature::Signer::sign(self, message);
        let der: DerSignature = signature.to_der();
        Ok(der.as_bytes().to_vec())
    }
}

/// Signs the model directory `root`; returns the bundle (to be written to `model.sig`).
pub fn sign(root: &Path, signature_file: &Path, key: &dyn Signer) -> Result<Value, SignError> {
    let files = hash_files(root, signature_file)?;
    let name = root
        .canonicalize()
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    sign_files(&name, &files, key)
}

/// A DSSE envelope over `payload`, signed with `key` (ECDSA P-256, DER).
pub fn dsse_envelope(
    payload_type: &str,
    payload: &[u8],
    key: &dyn Signer,
) -> Result<Value, SignError> {
    let der = key.sign_der(&pae(payload_type, payload))?;
    // A signer elsewhere (Vault) is checked: what goes out must verify.
    let signature = Signature::from_der(&der)
        .map_err(|_| SignError::Invalid("the signer returned a malformed signature".into()))?;
    key.verifying_key()
        .verify(&pae(payload_type, payload), &signature)
        .map_err(|_| {
            SignError::Invalid("the signer's signature does not verify with its public key".into())
        })?;
    let engine = base64::engine::general_purpose::STANDARD;
    Ok(json!({
        "payload": engine.encode(payload),
        "payloadType": payload_type,
        // DSSE verifiers such as securesystemslib match signatures to keys by `keyid`;
        // it is not authenticated, so it is the key hint again.
        "signatures": [{"sig": engine.encode(&der), "keyid": key_hint(&key.verifying_key()).unwrap_or_default()}],
    }))
}

/// The payload of a DSSE envelope of `payload_type` that one of its signatures verifies with
/// `key`.
pub fn open_dsse(
    envelope: &Value,
    payload_type: &str,
    key: &VerifyingKey,
) -> Result<Vec<u8>, SignError> {
    let invalid = |reason: &str| SignError::Invalid(reason.to_owned());
    if envelope["payloadType"] != payload_type {
        return Err(invalid(
            "the envelope's payload type is not the expected one",
        ));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine
        .decode(envelope["payload"].as_str().unwrap_or_default())
        .map_err(|_| invalid("payload is not base64"))?;
    let verified = envelope["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|signature| {
            let Ok(der) = engine.decode(signature["sig"].as_str().unwrap_or_default()) else {
                return false;
            };
            Signature::from_der(&der)
                .is_ok_and(|sig| key.verify(&pae(payload_type, &payload), &sig).is_ok())
        });
    if !verified {
        return Err(invalid("no signature verifies with the public key"));
    }
    Ok(payload)
}

/// Signs a list of `(path, sha256 hex)` (already in model_signing order): the bundle.
pub fn sign_files(
    name: &str,
    files: &[(String, String)],
    key: &dyn Signer,
) -> Result<Value, SignError> {
    let payload = serde_json::to_vec(&statement(name, files)).unwrap_or_default();
    Ok(json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(&key.verifying_key()).unwrap_or_default()}, "tlogEntries": []},
        "dsseEnvelope": dsse_envelope(PAYLOAD_TYPE, &payload, key)?,
    }))
}

/// Checks the bundle's signature with `key` and returns the signed `(path, sha256 hex)` list.
pub fn open_bundle(bundle: &Value, key: &VerifyingKey) -> Result<Vec<(String, String)>, SignError> {
    let invalid = |reason: &str| SignError::Invalid(reason.to_owned());
    if bundle["mediaType"] != BUNDLE_MEDIA_TYPE {
        return Err(invalid("not a Sigstore bundle v0.3"));
    }
    if let Some(hint) = bundle["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .filter(|hint| !hint.is_empty())
        && Some(hint.to_owned()) != key_hint(key)
    {
        return Err(invalid("the bundle names another public key"));
    }
    let envelope = &bundle["dsseEnvelope"];
    if envelope["payloadType"] != PAYLOAD_TYPE {
        return Err(invalid("payload is not an in-toto statement"));
    }
    let payload = open_dsse(envelope, PAYLOAD_TYPE, key)?;
    let statement: Value =
        serde_json::from_slice(&payload).map_err(|_| invalid("statement is not JSON"))?;
    if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
        return Err(invalid("not a model_signing v1.0 statement"));
    }
    let signed: Vec<(String, String)> = statement["predicate"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|resource| {
            (
                resource["name"].as_str().unwrap_or_default().to_owned(),
                resource["digest"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let subjects = statement["subject"].as_array().cloned().unwrap_or_default();
    if subjects.len() != 1 || subjects[0]["digest"]["sha256"] != root_digest(&signed) {
        return Err(invalid(
            "the subject digest does not match the signed file list",
        ));
    }
    Ok(signed)
}

/// The statement's subject name (the model the signature was made for).
pub fn subject_name(bundle: &Value) -> Option<String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine
        .decode(bundle["dsseEnvelope"]["payload"].as_str()?)
        .ok()?;
    let statement: Value = serde_json::from_slice(&payload).ok()?;
    statement["subject"][0]["name"].as_str().map(str::to_owned)
}

/// Compares what was signed with what is there, exactly: names the first changed, missing
/// or extra file, and refuses a name that appears twice on either side (so one entry can
/// never stand in for another).
pub fn compare(
    signed: &[(String, String)],
    actual: &[(String, String)],
) -> Result<usize, SignError> {
    let mut signed_map = std::collections::BTreeMap::new();
    for (name, digest) in signed {
        if signed_map.insert(name.as_str(), digest.as_str()).is_some() {
            return Err(SignError::Invalid(format!("`{name}` is signed twice")));
        }
    }
    let mut actual_map = std::collections::BTreeMap::new();
    for (name, digest) in actual {
        if actual_map.insert(name.as_str(), digest.as_str()).is_some() {
            return Err(SignError::Invalid(format!(
                "`{name}` appears twice in the package"
            )));
        }
    }
    for (name, digest) in &signed_map {
        match actual_map.get(name) {
            None => return Err(SignError::Missing((*name).to_owned())),
            Some(actual_digest) if actual_digest != digest => {
                return Err(SignError::Tampered((*name).to_owned()));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = actual_map
        .keys()
        .find(|name| !signed_map.contains_key(*name))
    {
        return Err(SignError::Unsigned((*extra).to_owned()));
    }
    Ok(signed_map.len())
}

/// Verifies `bundle` over the files of `root`: the signature, then every file.
pub fn verify(
    root: &Path,
    signature_file: &Path,
    bundle: &Value,
    key: &VerifyingKey,
) -> Result<usize, SignError> {
    let signed = open_bundle(bundle, key)?;
    compare(&signed, &hash_files(root, signature_file)?)
}

/// `(path, sha256 hex)` in model_signing's order (by path components).
pub fn sorted_files(mut files: Vec<(String, String)>) -> Vec<(String, String)> {
    files.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
    files
}

#[cfg(test)]
mod tests;

/// A package's signature: the bundle must verify with one of `keys` (returns which), and
/// what it signed must be exactly the package's layers, path and digest.
pub fn verify_package(
    facts: &crate::inspect::PackageFacts,
    bundle: &Value,
    keys: &[VerifyingKey],
) -> Result<(usize, usize), SignError> {
    let mut last_error = SignError::Invalid("no trusted key for this package".to_owned());
    for (key_idx, key) in keys.iter().enumerate() {
        match open_bundle(bundle, key) {
            Ok(signed) => {
                let mut files: Vec<(String, String)> = facts
                    .layers
                    .iter()
                    .map(|layer| {
                        (
                            layer.path.clone().unwrap_or_default(),
                            layer.digest.hex().to_owned(),
                        )
                    })
                    .collect();
                files.push((
                    SIGNED_GOVERNANCE_PATH.to_owned(),
                    facts.governance_document.digest.hex().to_owned(),
                ));
                files.push((
                    SIGNED_CONFIG_PATH.to_owned(),
                    facts.config.digest.hex().to_owned(),
                ));
                if let Some(sbom) = facts
                    .governance_extra
                    .iter()
                    .find(|blob| blob.media_type == crate::sbom::SBOM_MEDIA_TYPE)
                {
                    files.push((SIGNED_SBOM_PATH.to_owned(), sbom.digest.hex().to_owned()));
                }
                return compare(&signed, &files).map(|n_files| (n_files, key_idx));
            }
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// A short, stable name for a public key: SHA-256 of its PEM, first 16 hex digits.
pub fn key_fingerprint(key: &VerifyingKey) -> String {
    key_hint(key)
        .map(|hint| hint[..16].to_owned())
        .unwrap_or_default()
}

/// Every `*.pem` / `*.pub` public key in a folder (missing folder: none).
pub fn load_trusted_keys(dir: &Path) -> Result<Vec<VerifyingKey>, SignError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(SignError::Io {
                path: dir.to_owned(),
                source: err,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "pem" || ext == "pub")
        })
        .collect();
    paths.sort();
    paths.iter().map(|path| load_verifying_key(path)).collect()
}
