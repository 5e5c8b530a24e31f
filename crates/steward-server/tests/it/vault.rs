//! The Vault transit key provider against a stand-in for Vault's transit HTTP API.
//!
//! No Vault server can be installed on this machine (it is in none of the package registries
//! it reaches), so the stand-in below implements the documented endpoints and their answers
//! (`/v1/transit/{encrypt,decrypt,rewrap,hmac}/:name`, `keys/:name`, `rotate`, `config`,
//! `trim`), including what a derived key requires (a `context` on every call) and refusing
//! versions below `min_decryption_version`. It checks our requests and our handling of the
//! answers; it is not evidence that a real Vault agrees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use steward_server::config::RawConfig;

use crate::support::{ARTIFACT, TestServer, artifact_digest};

const TOKEN: &str = "hvs.test-token-never-logged";

#[derive(Default)]
struct Transit {
    derived: bool,
    versions: BTreeMap<u32, [u8; 32]>,
    min_decryption_version: u32,
    min_encryption_version: u32,
    calls: Vec<String>,
}

type Shared = Arc<Mutex<Transit>>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"errors": [message]}))).into_response()
}

fn derive(key: &[u8; 32], context: &[u8]) -> Aes256Gcm {
    let derived: [u8; 32] = sha2::Sha256::new()
        .chain_update(key)
        .chain_update(context)
        .finalize()
        .into();
    Aes256Gcm::new(&derived.into())
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    key
}

impl Transit {
    fn latest(&self) -> u32 {
        self.versions.keys().copied().max().unwrap_or(0)
    }

    fn encrypt(&self, version: u32, plaintext: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).unwrap();
        let sealed = derive(&self.versions[&version], context)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: b"",
                },
            )
            .unwrap();
        format!(
            "vault:v{version}:{}",
            b64(&[nonce.as_slice(), &sealed].concat())
        )
    }

    fn decrypt(&self, ciphertext: &str, context: &[u8]) -> Result<Vec<u8>, String> {
        let (version, rest) = ciphertext
            .strip_prefix("vault:v")
            .and_then(|rest| rest.split_once(':'))
            .ok_or("invalid ciphertext: no prefix")?;
        let version: u32 = version.parse().map_err(|_| "invalid ciphertext version")?;
        if version < self.min_decryption_version {
            return Err("ciphertext or signature version is disallowed by policy (too old)".into());
        }
        let key = self.versions.get(&version).ok_or("invalid key version")?;
        let bytes = unb64(rest);
        if bytes.len() < 12 {
            return Err("invalid ciphertext: too short".into());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| "invalid nonce")?;
        derive(key, context)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: b"",
                },
            )
            .map_err(|_| "cipher: message authentication failed".into())
    }
}

async fn guard(headers: &HeaderMap) -> Result<(), Response> {
    if headers.get("X-Vault-Token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return Err(refuse(StatusCode::FORBIDDEN, "permission denied"));
    }
    Ok(())
}

fn context(transit: &Transit, body: &Value) -> Result<Vec<u8>, &'static str> {
    match body["context"].as_str() {
        Some(context) => Ok(unb64(context)),
        None if transit.derived => Err(
            "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key",
        ),
        None => Ok(Vec::new()),
    }
}

async fn read_key(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(_name): Path<String>,
) -> Response {
    if let Err(response) = guard(&headers).await {
        return response;
    }
    let transit = state.lock().unwrap();
    let keys: serde_json::Map<String, Value> = transit
        .versions
        .keys()
        .map(|version| (version.to_string(), json!(1_700_000_000 + version)))
        .collect();
    Json(json!({"data": {
        "name": "steward", "type": "aes256-gcm96", "derived": transit.derived,
        "latest_version": transit.latest(), "min_decryption_version": transit.min_decryption_version,
        "min_encryption_version": transit.min_encryption_version, "keys": keys,
    }}))
    .into_response()
}

async fn operation(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((operation, _name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(response) = guard(&headers).await {
        return response;
    }
    let mut transit = state.lock().unwrap();
    transit.calls.push(operation.clone());
    let context = match context(&transit, &body) {
        Ok(context) => context,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    // `key_version` (encrypt, rewrap) must exist and be at least min_encryption_version.
    let version = body["key_version"]
        .as_u64()
        .map_or(transit.latest(), |v| v as u32);
    if (operation == "encrypt" || operation == "rewrap")
        && (version < transit.min_encryption_version || !transit.versions.contains_key(&version))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "requested version for encryption is not valid",
        );
    }
    match operation.as_str() {
        "encrypt" => {
            let plaintext = unb64(body["plaintext"].as_str().unwrap_or_default());
            let ciphertext = transit.encrypt(version, &plaintext, &context);
            Json(json!({"data": {"ciphertext": ciphertext, "key_version": version}}))
                .into_response()
        }
        "decrypt" => match transit
            .decrypt(body["ciphertext"].as_str().unwrap_or_default(), &context)
        {
            Ok(plaintext) => Json(json!({"data": {"plaintext": b64(&plaintext)}})).into_response(),
            Err(err) => refuse(StatusCode::BAD_REQUEST, &err),
        },
        "rewrap" => {
            match transit.decrypt(body["ciphertext"].as_str().unwrap_or_default(), &context) {
                Ok(plaintext) => {
                    let ciphertext = transit.encrypt(version, &plaintext, &context);
                    Json(json!({"data": {"ciphertext": ciphertext, "key_version": version}}))
                        .into_response()
                }
                Err(err) => refuse(StatusCode::BAD_REQUEST, &err),
            }
        }
        _ => refuse(StatusCode::NOT_FOUND, "unsupported path"),
    }
}

async fn hmac(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(_name): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    use hmac::{KeyInit as _, Mac};
    if let Err(response) = guard(&headers).await {
        return response;
    }
    let transit = state.lock().unwrap();
    let version = body["key_version"]
        .as_u64()
        .map_or(transit.latest(), |v| v as u32);
    let Some(key) = transit
        .versions
        .get(&version)
        .filter(|_| version >= transit.min_encryption_version)
    else {
        return refuse(StatusCode::BAD_REQUEST, "invalid key version");
    };
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&[key.as_slice(), b"hmac"].concat()).unwrap();
    mac.update(&unb64(body["input"].as_str().unwrap_or_default()));
    Json(json!({"data": {"hmac": format!("vault:v{version}:{}", b64(&mac.finalize().into_bytes()))}})).into_response()
}

async fn manage(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((_name, what)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(response) = guard(&headers).await {
        return response;
    }
    let mut transit = state.lock().unwrap();
    transit.calls.push(what.clone());
    match what.as_str() {
        "rotate" => {
            let next = transit.latest() + 1;
            transit.versions.insert(next, random_key());
            StatusCode::NO_CONTENT.into_response()
        }
        "config" => {
            if let Some(min) = body["min_decryption_version"].as_u64() {
                transit.min_decryption_version = min as u32;
            }
            if let Some(min) = body["min_encryption_version"].as_u64() {
                transit.min_encryption_version = min as u32;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        "trim" => {
            // Vault trims only below both minimums, and only once min_encryption_version is set.
            let min = body["min_available_version"].as_u64().unwrap_or(0) as u32;
            if transit.min_encryption_version == 0 {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "minimum encryption version should be set before trimming",
                );
            }
            if min > transit.min_decryption_version || min > transit.min_encryption_version {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "cannot be set greater than min_decryption_version or min_encryption_version",
                );
            }
            transit.versions.retain(|version, _| *version >= min);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => refuse(StatusCode::NOT_FOUND, "unsupported path"),
    }
}

async fn fake_vault(derived: bool) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new(Transit {
        derived,
        versions: BTreeMap::from([(1, random_key())]),
        min_decryption_version: 1,
        min_encryption_version: 0,
        calls: Vec::new(),
    }));
    let router = axum::Router::new()
        .route("/v1/transit/keys/{name}", get(read_key))
        .route("/v1/transit/keys/{name}/{what}", post(manage))
        .route("/v1/transit/hmac/{name}/sha2-256", post(hmac))
        .route("/v1/transit/{operation}/{name}", post(operation))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn vault_config(url: &str, token_file: &std::path::Path) -> RawConfig {
    RawConfig {
        key_provider: Some("vault".into()),
        vault_addr: Some(url.to_owned()),
        vault_key: Some("steward".into()),
        vault_token_file: Some(token_file.display().to_string()),
        ..RawConfig::default()
    }
}

fn token_file(dir: &std::path::Path, token: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("vault.token");
    std::fs::write(&path, token).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_sealed_rotated_and_retired_through_vault_transit() {
    let (url, vault) = fake_vault(true).await;
    let secrets = tempfile::tempdir().unwrap();
    let token = token_file(secrets.path(), TOKEN);
    let server = TestServer::start_with(vault_config(&url, &token)).await;
    let admin = server.admin_token.clone();
    let keys = server.admin(Method::GET, "/api/v1/keys", None).await;
    assert_eq!(keys["provider"], "vault-transit", "{keys}");
    assert_eq!(keys["key_id"], "vault:transit/steward");

    let blob = format!("/api/v1/blobs/{}", artifact_digest());
    let put = server
        .request(
            Some(&admin),
            Method::PUT,
            &format!("{blob}?seal=true"),
            Some(Value::String(ARTIFACT.into())),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["sealed"]["key_id"], "vault:transit/steward");
    let row = server
        .app
        .store
        .sealed_blob(&artifact_digest())
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.wrapped_key.starts_with("vault:v1:"),
        "{}",
        row.wrapped_key
    );
    let read = server.request(Some(&admin), Method::GET, &blob, None).await;
    assert_eq!(read.body, Value::String(ARTIFACT.into()));

    let rotated = server
        .admin(Method::POST, "/api/v1/keys/rotate", Some(json!({})))
        .await;
    assert_eq!(rotated["version"], 2, "{rotated}");
    assert_eq!(rotated["data_keys_rewrapped"], 1, "{rotated}");
    let row = server
        .app
        .store
        .sealed_blob(&artifact_digest())
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.wrapped_key.starts_with("vault:v2:"),
        "{}",
        row.wrapped_key
    );
    // Re-wrapped inside Vault: the data key was never asked for during the rotation.
    let calls = vault.lock().unwrap().calls.clone();
    let after_rotate = calls.iter().position(|call| call == "rotate").unwrap();
    assert!(
        calls[after_rotate..].contains(&"rewrap".to_owned()),
        "{calls:?}"
    );
    assert!(
        !calls[after_rotate..].contains(&"decrypt".to_owned()),
        "{calls:?}"
    );

    let retired = server
        .admin(
            Method::POST,
            "/api/v1/keys/retire",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(retired["retired"], json!([1]), "{retired}");
    assert_eq!(vault.lock().unwrap().min_decryption_version, 2);
    assert!(!vault.lock().unwrap().versions.contains_key(&1), "trimmed");
    let read = server.request(Some(&admin), Method::GET, &blob, None).await;
    assert_eq!(read.body, Value::String(ARTIFACT.into()));
    let refused = server
        .request(
            Some(&admin),
            Method::POST,
            "/api/v1/keys/retire",
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    // Repeating a retirement is harmless.
    let again = server
        .admin(
            Method::POST,
            "/api/v1/keys/retire",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(again["retired"], json!([]), "{again}");

    // A version made in Vault outside Steward (a manual or automatic rotation) is not used
    // until it is recorded: sealing goes on under the recorded version.
    vault.lock().unwrap().versions.insert(3, random_key());
    let other = steward_core::domain::Digest::of_bytes(b"other weights").to_string();
    let put = server
        .request(
            Some(&admin),
            Method::PUT,
            &format!("/api/v1/blobs/{other}?seal=true"),
            Some(Value::String("other weights".into())),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["sealed"]["key_version"], 2, "{}", put.body);
    vault.lock().unwrap().versions.remove(&3);

    // The same data directory against a Vault whose key is not the one the database knows.
    vault.lock().unwrap().versions.insert(2, random_key());
    let config =
        steward_server::config::Config::load(server.dir.path(), &vault_config(&url, &token))
            .unwrap();
    let err = steward_server::state::App::open(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("check value differs"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_an_underived_key_stops_the_start_without_showing_the_token() {
    let (url, _) = fake_vault(true).await;
    let dir = tempfile::tempdir().unwrap();
    steward_server::init(dir.path(), &RawConfig::default(), "admin")
        .await
        .unwrap();
    let wrong = token_file(dir.path(), "hvs.the-wrong-one");
    let config =
        steward_server::config::Config::load(dir.path(), &vault_config(&url, &wrong)).unwrap();
    let err = steward_server::state::App::open(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("permission denied") && !err.contains("hvs."),
        "{err}"
    );

    let (underived, _) = fake_vault(false).await;
    let token = token_file(dir.path(), TOKEN);
    let config =
        steward_server::config::Config::load(dir.path(), &vault_config(&underived, &token))
            .unwrap();
    let err = steward_server::state::App::open(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("derived=true"), "{err}");

    let problems = steward_server::config::Config::load(
        dir.path(),
        &RawConfig {
            key_provider: Some("vault".into()),
            vault_addr: Some("https://vault.example:8200".into()),
            ..RawConfig::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        problems.contains("must be an http:// address")
            && problems.contains("vault_key")
            && problems.contains("vault_token_file"),
        "{problems}"
    );
}
