//! Where package signatures come from: a PEM file (`--sign-key key.pem`), or a HashiCorp Vault
//! transit key (`--sign-key vault:NAME`, type `ecdsa-p256`), which signs without the private
//! key ever leaving Vault.
//!
//! Vault is reached over plain HTTP on loopback (Vault Agent's listener; this build has no
//! TLS), with the token from `--vault-token` / `VAULT_TOKEN`, sent only as a sensitive header
//! and never printed. Vault's ECDSA signatures are randomised, so a package signed through
//! Vault has a new signature (and governance digest) at each build; its model manifest digest,
//! the version's id, stays reproducible.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use steward_package::signing::{SignError, Signer};

/// Bound on each call to Vault.
pub const VAULT_SIGN_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach Vault, from the command line or the environment.
#[derive(Debug, Clone)]
pub struct VaultAccess {
    pub addr: String,
    pub token: Option<String>,
    pub mount: String,
}

/// The signer a `--sign-key` argument names.
pub async fn load(spec: &Path, vault: &VaultAccess) -> anyhow::Result<Box<dyn Signer>> {
    let text = spec.to_string_lossy();
    match text.strip_prefix("vault:") {
        Some(name) => Ok(Box::new(VaultSigner::connect(name, vault).await?)),
        None => Ok(Box::new(steward_package::signing::load_signing_key(spec)?)),
    }
}

pub struct VaultSigner {
    http: reqwest::Client,
    base: String,
    key: String,
    token: reqwest::header::HeaderValue,
    version: u64,
    public: VerifyingKey,
    runtime: tokio::runtime::Handle,
}

impl VaultSigner {
    pub async fn connect(key: &str, vault: &VaultAccess) -> anyhow::Result<VaultSigner> {
        anyhow::ensure!(
            steward_server::keys::is_loopback_http(&vault.addr),
            "--vault-addr `{}` must be an http:// address on loopback (Vault Agent's listener); this build has no TLS",
            vault.addr
        );
        let token = vault
            .token
            .as_deref()
            .context("signing with Vault needs a token: --vault-token or VAULT_TOKEN")?;
        let mut token = reqwest::header::HeaderValue::from_str(token)
            .context("the Vault token holds characters a header cannot")?;
        token.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(VAULT_SIGN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = format!(
            "{}/v1/{}",
            vault.addr.trim_end_matches('/'),
            vault.mount.trim_matches('/')
        );
        let response = http
            .get(format!("{base}/keys/{key}"))
            .header("X-Vault-Token", token.clone())
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("Vault did not answer: {}", err.without_url()))?;
        let info = answer(response, &format!("keys/{key}")).await?;
        let data = &info["data"];
        anyhow::ensure!(
            data["type"] == "ecdsa-p256",
            "Vault transit key `{key}` is of type {}, not ecdsa-p256 (model_signing verifies P-256)",
            data["type"]
        );
        let version = data["latest_version"]
            .as_u64()
            .context("Vault's key has no latest_version")?;
        let pem = data["keys"][version.to_string()]["public_key"]
            .as_str()
            .context("Vault's key has no public key for its latest version")?;
        let public = VerifyingKey::from_public_key_pem(pem)
            .map_err(|err| anyhow::anyhow!("Vault's public key is not a P-256 PEM key: {err}"))?;
        Ok(VaultSigner {
            http,
            base,
            key: key.to_owned(),
            token,
            version,
            public,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    async fn sign_async(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let engine = base64::engine::general_purpose::STANDARD;
        let body = json!({
            "input": engine.encode(message), "marshaling_algorithm": "asn1", "key_version": self.version,
        });
        let response = self
            .http
            .post(format!("{}/sign/{}/sha2-256", self.base, self.key))
            .header("X-Vault-Token", self.token.clone())
            .json(&body)
            .send()
            .await
            .map_err(|err| anyhow::anyhow!("Vault did not answer: {}", err.without_url()))?;
        let value = answer(response, &format!("sign/{}", self.key)).await?;
        let signature = value["data"]["signature"]
            .as_str()
            .context("Vault's sign answer has no signature")?;
        let encoded = signature
            .strip_prefix(&format!("vault:v{}:", self.version))
            .context("Vault signed with another key version than the one asked for")?;
        engine
            .decode(encoded)
            .context("Vault's signature is not base64")
    }
}

async fn answer(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let errors: Vec<&str> = value["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        anyhow::bail!("Vault refused `{what}` ({status}): {}", errors.join("; "));
    }
    Ok(value)
}

impl Signer for VaultSigner {
    fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        // Packing is synchronous; the call to Vault runs on this runtime meanwhile.
        tokio::task::block_in_place(|| self.runtime.block_on(self.sign_async(message)))
            .map_err(|err| SignError::Invalid(format!("{err:#}")))
    }
}
