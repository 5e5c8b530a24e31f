//! Signing and verification round trips, and every refusal naming what failed.

use p256::pkcs8::EncodePrivateKey;

use super::*;

fn key() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn model(root: &Path) -> PathBuf {
    let dir = root.join("model");
    std::fs::create_dir_all(dir.join("weights")).unwrap();
    std::fs::write(dir.join("weights/a.safetensors"), "aaa").unwrap();
    std::fs::write(dir.join("weights-b.bin"), "bbb").unwrap();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/HEAD"), "ref").unwrap();
    dir
}

#[test]
fn files_are_ordered_by_path_components_and_git_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let files = hash_files(&dir, &dir.join(SIGNATURE_FILE)).unwrap();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    // `weights/a…` sorts before `weights-b…` by components, after it by raw bytes.
    assert_eq!(
        names,
        ["config.json", "weights/a.safetensors", "weights-b.bin"]
    );
}

#[test]
fn a_signature_verifies_and_every_change_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model(tmp.path());
    let sig = dir.join(SIGNATURE_FILE);
    let bundle = sign(&dir, &sig, &key()).unwrap();
    let public = *key().verifying_key();
    assert_eq!(verify(&dir, &sig, &bundle, &public).unwrap(), 3);

    std::fs::write(dir.join("config.json"), "{\"x\":1}").unwrap();
    assert_eq!(
        verify(&dir, &sig, &bundle, &public)
            .unwrap_err()
            .to_string(),
        "file `config.json` does not match its signed digest (it was changed)"
    );
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    std::fs::write(dir.join("extra.txt"), "x").unwrap();
    assert_eq!(
        verify(&dir, &sig, &bundle, &public)
            .unwrap_err()
            .to_string(),
        "file `extra.txt` is not covered by the signature"
    );
    std::fs::remove_file(dir.join("extra.txt")).unwrap();
    std::fs::remove_file(dir.join("weights-b.bin")).unwrap();
    assert_eq!(
        verify(&dir, &sig, &bundle, &public)
            .unwrap_err()
            .to_string(),
        "signed file `weights-b.bin` is missing"
    );
    std::fs::write(dir.join("weights-b.bin"), "bbb").unwrap();

    let other = *SigningKey::from_slice(&[9u8; 32]).unwrap().verifying_key();
    let err = verify(&dir, &sig, &bundle, &other).unwrap_err().to_string();
    assert_eq!(
        err,
        "signature is not valid: the bundle names another public key"
    );
    let mut no_hint = bundle.clone();
    no_hint["verificationMaterial"]["publicKey"]["hint"] = json!("");
    assert_eq!(
        verify(&dir, &sig, &no_hint, &other)
            .unwrap_err()
            .to_string(),
        "signature is not valid: no signature verifies with the public key"
    );
    let mut forged = bundle.clone();
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(
        engine
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    forged["dsseEnvelope"]["payload"] =
        json!(engine.encode(payload.replace("config.json", "config.jsom")));
    assert!(
        verify(&dir, &sig, &forged, &public).is_err(),
        "an edited statement must not verify"
    );
}

#[test]
fn keys_load_from_pem_and_world_readable_private_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("key.pem");
    let pem = key().to_pkcs8_pem(LineEnding::LF).unwrap();
    std::fs::write(&path, pem.as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_signing_key(&path),
            Err(SignError::KeyReadable(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(
        load_signing_key(&path).unwrap().verifying_key(),
        key().verifying_key()
    );
    let public = tmp.path().join("key.pub");
    std::fs::write(
        &public,
        key()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(&load_verifying_key(&public).unwrap(), key().verifying_key());
    std::fs::write(&public, "not a key").unwrap();
    assert!(matches!(
        load_verifying_key(&public),
        Err(SignError::BadPublicKey(_))
    ));
}

#[test]
fn a_name_twice_on_either_side_is_refused() {
    let entry = |name: &str, digest: &str| (name.to_owned(), digest.to_owned());
    let signed = vec![entry("a", "1"), entry(".steward/governance.json", "g1")];
    // A layer stands in for the governance document while the real one changed: refused.
    let actual = vec![
        entry("a", "1"),
        entry(".steward/governance.json", "g1"),
        entry(".steward/governance.json", "g2"),
    ];
    assert_eq!(
        compare(&signed, &actual).unwrap_err().to_string(),
        "signature is not valid: `.steward/governance.json` appears twice in the package"
    );
    let twice = vec![entry("a", "1"), entry("a", "1")];
    assert!(compare(&twice, &twice[..1]).is_err());
    assert_eq!(compare(&signed, &signed).unwrap(), 2);
}
