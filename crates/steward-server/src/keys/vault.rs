//! HashiCorp Vault's transit secrets engine as the key-encryption key provider.
//!
//! The key never leaves Vault: data keys are wrapped with `encrypt`, unwrapped with
//! `decrypt`, re-wrapped after a rotation with `rewrap` (Vault never returns the data key
//! then), and the blob's digest is the derivation `context`, so a wrapped key only unwraps
//! for its blob. The transit key must be created with `derived=true`:
//! `vault write -f transit/keys/steward type=aes256-gcm96 derived=true`.
//! Retiring version N raises `min_decryption_version` to N + 1 and trims older versions.
//!
//! The token comes from a file (mode 0600 enforced) and is only ever sent in the
//! `X-Vault-Token` header; it is never logged and never part of an error.
//! Transport is plain HTTP to a loopback address, as Vault Agent's listener provides (it
//! holds the TLS connection to Vault and can authenticate itself): this build has no TLS.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use steward_store::sealed::DataKey;
use zeroize::Zeroizing;

use super::{KeyError, WrappedKey};
use crate::state::read_secret_file;

/// Bound on each call to Vault.
pub const VAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CHECK_LABEL: &[u8] = b"steward key-encryption key check value v1";

pub struct VaultTransit {
    http: reqwest::Client,
    addr: String,
    mount: String,
    key: String,
    token: Zeroizing<String>,
    namespace: Option<String>,
    key_id: String,
}

/// Where to find the transit key.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub addr: String,
    pub mount: String,
    pub key: String,
    pub token_file: std::path::PathBuf,
    pub namespace: Option<String>,
}

fn provider_error(message: impl Into<String>) -> KeyError {
    KeyError::Provider(message.into())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The ciphertext of an encrypt or rewrap answer, which must be under `version`.
fn wrapped_from(value: &Value, version: u32) -> Result<WrappedKey, KeyError> {
    let text = value["data"]["ciphertext"]
        .as_str()
        .ok_or_else(|| provider_error("Vault's answer has no ciphertext"))?
        .to_owned();
    let got = version_of(&text)?;
    if got != version {
        return Err(provider_error(format!(
            "Vault wrapped under version {got}, not the requested {version}"
        )));
    }
    Ok(WrappedKey { version, text })
}

/// `http://` to a loopback host (`127.0.0.0/8`, `[::1]`, `localhost`), with an optional port.
pub fn is_loopback_http(addr: &str) -> bool {
    let Some(rest) = addr.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _)| host)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `vault:v<N>:…` → N.
fn version_of(ciphertext: &str) -> Result<u32, KeyError> {
    ciphertext
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(version, _)| version.parse().ok())
        .ok_or_else(|| KeyError::Malformed("it is not a Vault ciphertext (`vault:v<N>:…`)".into()))
}

impl VaultTransit {
    /// Connects and checks that the transit key exists and derives keys from a context.
    pub async fn connect(settings: &VaultSettings) -> Result<VaultTransit, KeyError> {
        if !is_loopback_http(&settings.addr) {
            return Err(provider_error(format!(
                "vault_addr `{}` must be an http:// address on loopback (Vault Agent's listener); this build has no TLS",
                settings.addr
            )));
        }
        let token = Zeroizing::new(read_secret_file(&settings.token_file).map_err(|err| {
            KeyError::File {
                path: settings.token_file.clone(),
                message: err.to_string(),
            }
        })?);
        // No redirects: the token and data keys go to the configured address and nowhere else.
        let http = reqwest::Client::builder()
            .timeout(VAULT_REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| provider_error(format!("cannot make an HTTP client: {err}")))?;
        let transit = VaultTransit {
            http,
            addr: settings.addr.trim_end_matches('/').to_owned(),
            mount: settings.mount.trim_matches('/').to_owned(),
            key: settings.key.clone(),
            token,
            namespace: settings.namespace.clone(),
            key_id: format!(
                "vault:{}/{}",
                settings.mount.trim_matches('/'),
                settings.key
            ),
        };
        let info = transit.info().await?;
        if info["derived"] != true {
            return Err(provider_error(format!(
                "transit key `{}` does not derive keys from a context; create it with `derived=true`",
                transit.key
            )));
        }
        Ok(transit)
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, KeyError> {
        let url = format!("{}/v1/{}/{path}", self.addr, self.mount);
        let mut token = reqwest::header::HeaderValue::from_str(self.token.as_str())
            .map_err(|_| provider_error("the Vault token file holds characters a header cannot"))?;
        token.set_sensitive(true);
        let mut request = self
            .http
            .request(method, &url)
            .header("X-Vault-Token", token);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|err| {
            provider_error(format!(
                "Vault at {url} did not answer: {}",
                err.without_url()
            ))
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|err| {
            provider_error(format!(
                "Vault's answer could not be read: {}",
                err.without_url()
            ))
        })?;
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let errors: Vec<String> = value["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|error| error.as_str().map(str::to_owned))
                .collect();
            return Err(provider_error(format!(
                "Vault refused `{path}` ({status}): {}",
                if errors.is_empty() {
                    "no reason given".to_owned()
                } else {
                    errors.join("; ")
                }
            )));
        }
        Ok(value)
    }

    async fn info(&self) -> Result<Value, KeyError> {
        let value = self
            .call(reqwest::Method::GET, &format!("keys/{}", self.key), None)
            .await?;
        Ok(value["data"].clone())
    }

    /// Versions Vault can still decrypt with, ascending.
    pub async fn versions(&self) -> Result<Vec<u32>, KeyError> {
        let info = self.info().await?;
        let minimum = info["min_decryption_version"].as_u64().unwrap_or(1) as u32;
        let keys: BTreeMap<u32, ()> = info["keys"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(version, _)| version.parse().ok().map(|version| (version, ())))
            .collect();
        Ok(keys
            .into_keys()
            .filter(|version| *version >= minimum)
            .collect())
    }

    pub async fn current(&self) -> Result<u32, KeyError> {
        let info = self.info().await?;
        info["latest_version"]
            .as_u64()
            .map(|version| version as u32)
            .ok_or_else(|| provider_error("Vault's key has no latest_version"))
    }

    pub async fn wrap(
        &self,
        key: &DataKey,
        context: &str,
        version: u32,
    ) -> Result<WrappedKey, KeyError> {
        let plaintext = Zeroizing::new(b64(key.as_bytes()));
        let body = json!({"plaintext": plaintext.as_str(), "context": b64(context.as_bytes()), "key_version": version});
        let value = self
            .call(
                reqwest::Method::POST,
                &format!("encrypt/{}", self.key),
                Some(body),
            )
            .await?;
        wrapped_from(&value, version)
    }

    pub async fn unwrap(&self, wrapped: &str, context: &str) -> Result<DataKey, KeyError> {
        let version = version_of(wrapped)?;
        let body = json!({"ciphertext": wrapped, "context": b64(context.as_bytes())});
        let value = self
            .call(
                reqwest::Method::POST,
                &format!("decrypt/{}", self.key),
                Some(body),
            )
            .await
            .map_err(|err| match err {
                // Vault's 400: the ciphertext does not open (changed, another blob's, too old).
                // Anything else (down, sealed, forbidden) is an outage, not tampering.
                KeyError::ProviderRefused { status: 400, .. } => KeyError::Unwrap {
                    key_id: self.key_id.clone(),
                    version,
                },
                other => other,
            })?;
        let plaintext = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(value["data"]["plaintext"].as_str().unwrap_or_default())
                .map_err(|_| KeyError::Malformed("Vault's plaintext is not base64".into()))?,
        );
        DataKey::from_bytes(&plaintext).map_err(|err| KeyError::Malformed(err.to_string()))
    }

    /// Re-wraps under `version` inside Vault: the data key is never returned.
    pub async fn rewrap(
        &self,
        wrapped: &str,
        context: &str,
        version: u32,
    ) -> Result<WrappedKey, KeyError> {
        let body = json!({"ciphertext": wrapped, "context": b64(context.as_bytes()), "key_version": version});
        let value = self
            .call(
                reqwest::Method::POST,
                &format!("rewrap/{}", self.key),
                Some(body),
            )
            .await?;
        wrapped_from(&value, version)
    }

    pub async fn rotate(&self) -> Result<u32, KeyError> {
        self.call(
            reqwest::Method::POST,
            &format!("keys/{}/rotate", self.key),
            Some(json!({})),
        )
        .await?;
        self.current().await
    }

    /// Every version up to `version` stops encrypting and decrypting, and its material is
    /// trimmed (Vault trims only below both minimums). Safe to repeat.
    pub async fn retire(&self, version: u32) -> Result<(), KeyError> {
        let floor = version + 1;
        self.call(
            reqwest::Method::POST,
            &format!("keys/{}/config", self.key),
            Some(json!({"min_decryption_version": floor, "min_encryption_version": floor})),
        )
        .await?;
        self.call(
            reqwest::Method::POST,
            &format!("keys/{}/trim", self.key),
            Some(json!({"min_available_version": floor})),
        )
        .await?;
        Ok(())
    }

    /// The lowest version Vault still decrypts with.
    pub async fn min_decryption_version(&self) -> Result<u32, KeyError> {
        let info = self.info().await?;
        Ok(info["min_decryption_version"].as_u64().unwrap_or(1) as u32)
    }

    /// Vault's HMAC of a fixed label under `version`: identifies the version's key material.
    pub async fn check_value(&self, version: u32) -> Result<String, KeyError> {
        let body = json!({"input": b64(CHECK_LABEL), "key_version": version});
        let value = self
            .call(
                reqwest::Method::POST,
                &format!("hmac/{}/sha2-256", self.key),
                Some(body),
            )
            .await?;
        value["data"]["hmac"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| provider_error("Vault's hmac answer has no hmac"))
    }
}
