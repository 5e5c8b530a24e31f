//! Signing through HashiCorp Vault's transit engine (`--sign-key vault:NAME`), against a
//! stand-in for the documented endpoints (`GET /v1/transit/keys/:name`, `POST
//! /v1/transit/sign/:name/sha2-256` with `marshaling_algorithm=asn1`): no Vault server can be
//! installed here. The stand-in signs with a P-256 key only it holds; what it returns must
//! verify with the public key it publishes, offline and in model_signing's format.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

use crate::steward;

const TOKEN: &str = "hvs.signing-token";

/// Requests the stand-in saw: method, path, JSON body.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Serves Vault-shaped answers on a thread; returns the address and the requests it saw.
fn stand_in(key: SigningKey) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let (mut length, mut token) = (0usize, String::new());
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or_default();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "x-vault-token" => token = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.lock()
                .unwrap()
                .push((method.clone(), path.clone(), body.clone()));
            let (status, answer) = if token != TOKEN {
                (403, json!({"errors": ["permission denied"]}))
            } else if method == "GET" && path == "/v1/transit/keys/signer" {
                (
                    200,
                    json!({"data": {"type": "ecdsa-p256", "latest_version": 1, "keys": {"1": {"public_key": public, "name": "P-256"}}}}),
                )
            } else if method == "POST" && path == "/v1/transit/sign/signer/sha2-256" {
                let engine = base64::engine::general_purpose::STANDARD;
                let input = engine
                    .decode(body["input"].as_str().unwrap_or_default())
                    .unwrap();
                let signature: p256::ecdsa::Signature =
                    p256::ecdsa::signature::Signer::sign(&key, &input);
                let der = signature.to_der();
                (
                    200,
                    json!({"data": {"signature": format!("vault:v1:{}", engine.encode(der.as_bytes())), "key_version": 1}}),
                )
            } else {
                (404, json!({"errors": ["no handler for route"]}))
            };
            let text = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (addr, seen)
}

#[test]
fn packages_and_models_are_signed_by_a_vault_transit_key() {
    let key = SigningKey::from_slice(&[11u8; 32]).unwrap();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let (addr, seen) = stand_in(key);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.onnx"), "weights").unwrap();
    std::fs::write(model.join("steward.yaml"), "version: 1.0.0\n").unwrap();
    let public_key = dir.path().join("vault.pub");
    std::fs::write(&public_key, public).unwrap();
    let run = |args: &[&str], token: &str| {
        let output = steward()
            .args(args)
            .args(["--vault-addr", &addr, "--vault-token", token])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let layout = dir.path().join("signed.oci");
    let (code, _, stderr) = run(
        &[
            "package",
            "build",
            model.to_str().unwrap(),
            "--out",
            layout.to_str().unwrap(),
            "--name",
            "retail/m",
            "--sign-key",
            "vault:signer",
        ],
        TOKEN,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = run(
        &[
            "package",
            "verify",
            layout.to_str().unwrap(),
            "--key",
            public_key.to_str().unwrap(),
        ],
        TOKEN,
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: the package's"), "{stdout}");
    // Two signatures (model_signing bundle and provenance), each asked of Vault as ASN.1
    // over SHA-256, at the key version read.
    let signs: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, path, _)| path.ends_with("/sha2-256"))
        .map(|(_, _, body)| body.clone())
        .collect();
    assert_eq!(signs.len(), 2, "{signs:?}");
    assert!(
        signs
            .iter()
            .all(|body| body["marshaling_algorithm"] == "asn1" && body["key_version"] == 1)
    );

    // A model directory, in the OpenSSF model-signing format.
    let (code, _, stderr) = run(
        &[
            "package",
            "sign",
            model.to_str().unwrap(),
            "--key",
            "vault:signer",
        ],
        TOKEN,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, _) = run(
        &[
            "package",
            "verify",
            model.to_str().unwrap(),
            "--key",
            public_key.to_str().unwrap(),
        ],
        TOKEN,
    );
    assert_eq!(code, Some(0), "{stdout}");

    // A wrong token: refused before anything is written, and the token is not shown.
    let refused = dir.path().join("refused.oci");
    let (code, _, stderr) = run(
        &[
            "package",
            "build",
            model.to_str().unwrap(),
            "--out",
            refused.to_str().unwrap(),
            "--sign-key",
            "vault:signer",
        ],
        "hvs.wrong",
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("permission denied") && !stderr.contains("hvs."),
        "{stderr}"
    );
    assert!(!refused.exists());
    // Only loopback over plain HTTP.
    let output = steward()
        .args([
            "package",
            "sign",
            model.to_str().unwrap(),
            "--key",
            "vault:signer",
            "--vault-addr",
            "http://vault.example:8200",
            "--vault-token",
            TOKEN,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("on loopback"));
}
