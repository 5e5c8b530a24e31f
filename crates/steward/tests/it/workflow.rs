//! The client commands end to end against a real `steward serve`: registration from MLflow
//! and Hugging Face layouts, search, and an inclusion proof checked by a third party with
//! only the public key.

use std::path::Path;

use serde_json::Value;

use crate::{init, start, steward};

struct Session {
    url: String,
    token: String,
}

impl Session {
    /// Runs a client command; returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = steward()
            .args(["--server", &self.url, "--token", &self.token])
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "steward {args:?}: {stderr}{stdout}");
        stdout
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    fn as_user(&self, token: &str) -> Session {
        Session {
            url: self.url.clone(),
            token: token.to_owned(),
        }
    }
}

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../steward-core/test_data/import"
);

fn model_dir(
    root: &Path,
    name: &str,
    card_file: &str,
    fixture: &str,
    steward_yaml: &str,
) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join(fixture).join(card_file),
        dir.join(card_file),
    )
    .unwrap();
    std::fs::write(dir.join("model.bin"), format!("weights of {name}")).unwrap();
    std::fs::write(dir.join("steward.yaml"), steward_yaml).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_from_mlflow_and_hugging_face_then_prove_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let token = init(&data_dir, None);
    let (_server, url) = start(&data_dir);
    let admin = Session { url, token };
    admin.ok(&["units", "create", "retail"]);
    admin.ok(&["users", "create", "alice"]);
    admin.ok(&[
        "users",
        "grant",
        "alice",
        "data_scientist",
        "--scope",
        "retail",
    ]);
    let token = admin.json(&["tokens", "create", "alice", "--name", "laptop"]);
    let alice = admin.as_user(token["token"].as_str().unwrap());
    assert_eq!(
        alice.json(&["users", "whoami"])["roles"][0]["role"],
        "data_scientist"
    );

    // MLflow: flavors, signature and run id come from MLmodel; the rest from steward.yaml.
    alice.ok(&[
        "models",
        "create",
        "retail/churn",
        "--category",
        "tabular_classification",
        "--risk-class",
        "minimal",
        "--tier",
        "3",
    ]);
    let mlflow = model_dir(
        dir.path(),
        "churn",
        "MLmodel",
        "mlflow-sklearn",
        "licence: Apache-2.0\nintended_use: Rank churn risk.\nmodel_card: {description: Gradient boosting., markdown: '# Churn'}\n",
    );
    let registered = alice.json(&[
        "versions",
        "register",
        "retail/churn",
        "--dir",
        mlflow.to_str().unwrap(),
        "--layout",
        "mlflow",
        "--version",
        "1.0.0",
    ]);
    let digest = registered["digest"].as_str().unwrap().to_owned();
    let version = alice.json(&["versions", "show", &digest]);
    assert_eq!(version["manifest"]["source"]["kind"], "mlflow");
    assert_eq!(
        version["manifest"]["source"]["run_id"],
        "3c9a7e21d4b84f0e8a6c5b2d1e0f9a87"
    );
    let artifacts: Vec<&str> = version["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(artifacts, ["MLmodel", "model.bin"]);
    // The same directory again is the same content: same digest, refused as a duplicate.
    let (code, _, stderr) = alice.run(&[
        "versions",
        "register",
        "retail/churn",
        "--dir",
        mlflow.to_str().unwrap(),
        "--layout",
        "mlflow",
        "--version",
        "1.0.0",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("409 conflict"), "{stderr}");

    // Hugging Face: licence, metrics and the card come from README.md.
    alice.ok(&[
        "models",
        "create",
        "retail/sentiment",
        "--category",
        "nlp",
        "--risk-class",
        "minimal",
        "--tier",
        "3",
    ]);
    let hf = model_dir(
        dir.path(),
        "sentiment",
        "README.md",
        "hf-distilbert-sentiment",
        "intended_use: Route reviews.\nout_of_scope_uses: [medical advice]\n\
         model_card: {limitations: English only., ethical_considerations: Reviews may contain personal data.}\n\
         training_data: [{name: sst2, location: 'https://huggingface.co/datasets/sst2', licence: unknown}]\n",
    );
    let registered = alice.json(&[
        "versions",
        "register",
        "retail/sentiment",
        "--dir",
        hf.to_str().unwrap(),
        "--layout",
        "huggingface",
        "--version",
        "0.1.0",
    ]);
    let version = alice.json(&["versions", "show", registered["digest"].as_str().unwrap()]);
    assert_eq!(version["manifest"]["source"]["kind"], "huggingface");
    assert!(
        !version["manifest"]["metrics"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(version["manifest"]["licence"].is_string());

    let found = alice.json(&["search", "churn"]);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);

    // A third party checks an entry with only the public key.
    admin.ok(&["audit", "checkpoint"]);
    let proof_path = dir.path().join("entry.tlog-proof");
    admin.ok(&["audit", "proof", "5", "--out", proof_path.to_str().unwrap()]);
    let entry_path = format!("{}.entry", proof_path.display());
    let public_key = data_dir.join("keys/log.pub");
    let check = |entry: &str| {
        steward()
            .args(["audit", "check-proof"])
            .arg(&proof_path)
            .args(["--entry", entry, "--public-key"])
            .arg(&public_key)
            .output()
            .unwrap()
    };
    let output = check(&entry_path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let tampered = dir.path().join("tampered.entry");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&entry_path)
            .unwrap()
            .replace("alice", "mallory"),
    )
    .unwrap();
    let output = check(tampered.to_str().unwrap());
    assert_eq!(
        output.status.code(),
        Some(1),
        "a tampered entry must not verify"
    );
    let (code, stdout, _) = admin.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{stdout}");
}

fn copy_tree(from: &Path, to: &Path) {
    for name in walk(from) {
        let target = to.join(&name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&name), target).unwrap();
    }
}

fn same_tree(a: &Path, b: &Path) {
    let mut names_a: Vec<_> = walk(a);
    let mut names_b: Vec<_> = walk(b);
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b);
    for name in names_a {
        assert_eq!(
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
            "{name}"
        );
    }
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_pushes_as_a_version_named_by_its_manifest_digest_and_pulls_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let token = init(&data_dir, None);
    let (_server, url) = start(&data_dir);
    let admin = Session { url, token };
    admin.ok(&["units", "create", "retail"]);
    admin.ok(&[
        "models",
        "create",
        "retail/churn",
        "--category",
        "tabular_classification",
        "--risk-class",
        "minimal",
        "--tier",
        "3",
    ]);
    let model = dir.path().join("churn");
    std::fs::create_dir_all(model.join("data")).unwrap();
    std::fs::write(model.join("model.onnx"), "weights").unwrap();
    std::fs::write(model.join("data/sample.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(model.join("requirements.txt"), "numpy==2.1.0\n").unwrap();
    std::fs::write(model.join("steward.yaml"), "version: 2.0.0\nlicence: MIT\n").unwrap();
    let key = data_dir.join("keys/package-signing.key");
    let build = |out: &str, signed: bool| {
        let layout = dir.path().join(out);
        let mut args = vec![
            "package",
            "build",
            model.to_str().unwrap(),
            "--out",
            layout.to_str().unwrap(),
            "--name",
            "retail/churn",
        ];
        if signed {
            args.extend(["--sign-key", key.to_str().unwrap()]);
        }
        let built = admin.json(&args);
        (layout, built)
    };
    let push = |layout: &Path| {
        admin.run(&[
            "package",
            "push",
            layout.to_str().unwrap(),
            "--model",
            "retail/churn",
        ])
    };

    // Unsigned: refused.
    let (layout, _) = build("unsigned.oci", false);
    let (code, _, stderr) = push(&layout);
    assert_eq!(code, 1);
    assert!(stderr.contains("package is not signed"), "{stderr}");

    // Signed, but the documentation in steward.yaml is incomplete for the model's
    // templates: refused, with every missing field named.
    let (layout, _) = build("churn.oci", true);
    let (code, _, stderr) = push(&layout);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("422 unprocessable")
            && stderr.contains("intended_use")
            && stderr.contains("model_card.description"),
        "{stderr}"
    );

    std::fs::write(model.join("steward.yaml"), "version: 2.0.0\nlicence: MIT\nintended_use: Rank churn.\nmodel_card: {description: Boosted trees., markdown: '# Churn'}\nusage_terms: {allowed_regions: [eu], prohibited_uses: [credit decisions]}\n").unwrap();

    // Signed by a key nobody trusts: refused.
    let stranger = dir.path().join("stranger.key");
    let openssl = std::process::Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(openssl.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stranger, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let strange_layout = dir.path().join("stranger.oci");
    admin.ok(&[
        "package",
        "build",
        model.to_str().unwrap(),
        "--out",
        strange_layout.to_str().unwrap(),
        "--name",
        "retail/churn",
        "--sign-key",
        stranger.to_str().unwrap(),
    ]);
    let (code, _, stderr) = push(&strange_layout);
    assert_eq!(code, 1);
    assert!(stderr.contains("package signature refused"), "{stderr}");

    // Signed by a trusted key, but for another model: a signature made for one
    // model cannot be replayed onto another.
    let misnamed = dir.path().join("misnamed.oci");
    admin.ok(&[
        "package",
        "build",
        model.to_str().unwrap(),
        "--out",
        misnamed.to_str().unwrap(),
        "--name",
        "retail/other",
        "--sign-key",
        key.to_str().unwrap(),
    ]);
    let (code, _, stderr) = push(&misnamed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("signed for `retail/other`, not `retail/churn`"),
        "{stderr}"
    );

    let (layout, built) = build("churn2.oci", true);
    let trusted = data_dir.join("trust/package-signing.pem");
    let verified = admin.ok(&[
        "package",
        "verify",
        layout.to_str().unwrap(),
        "--key",
        trusted.to_str().unwrap(),
    ]);
    assert!(
        verified.starts_with("ok: the package's 7 files match its signature"),
        "{verified}"
    );
    // The same signed package with its SLSA provenance removed: refused.
    let stripped = dir.path().join("stripped.oci");
    copy_tree(&layout, &stripped);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stripped.join("index.json")).unwrap()).unwrap();
    let blob_file = |digest: &str| {
        stripped
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let governance_digest = index["manifests"][1]["digest"].as_str().unwrap().to_owned();
    let mut governance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_file(&governance_digest)).unwrap()).unwrap();
    governance["layers"]
        .as_array_mut()
        .unwrap()
        .retain(|layer| layer["mediaType"] != "application/vnd.dsse.envelope.v1+json");
    let bytes = serde_json::to_vec(&governance).unwrap();
    let new_digest = steward_core::domain::Digest::of_bytes(&bytes).to_string();
    std::fs::write(blob_file(&new_digest), &bytes).unwrap();
    let mut index = index;
    index["manifests"][1]["digest"] = serde_json::json!(new_digest);
    index["manifests"][1]["size"] = serde_json::json!(bytes.len());
    std::fs::write(
        stripped.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let (code, _, stderr) = push(&stripped);
    assert_eq!(code, 1);
    assert!(stderr.contains("carries no SLSA provenance"), "{stderr}");

    // The card's description is part of the ModelPack config, so this is a new digest.
    let digest = built["manifest_digest"].as_str().unwrap().to_owned();
    let pushed = admin.json(&[
        "package",
        "push",
        layout.to_str().unwrap(),
        "--model",
        "retail/churn",
    ]);
    assert_eq!(
        pushed["digest"],
        digest.as_str(),
        "the version's id is the manifest digest"
    );
    let version = admin.json(&["versions", "show", &digest]);
    assert_eq!(version["manifest"]["intended_use"], "Rank churn.");

    // The weights are stored sealed (P5): no plaintext file, and the sealed file holds
    // ciphertext only.
    let weights = version["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "model.onnx")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let weights_hex = weights.trim_start_matches("sha256:");
    assert!(!data_dir.join("blobs/sha256").join(weights_hex).exists());
    let sealed: Vec<std::path::PathBuf> = std::fs::read_dir(data_dir.join("blobs/sealed"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    let ciphertext = std::fs::read(&sealed[0]).unwrap();
    assert_eq!(ciphertext.len(), "weights".len() + 16);
    assert!(!ciphertext.windows(7).any(|w| w == b"weights"));
    let keys = admin.json(&["keys", "list"]);
    assert_eq!(keys["current_version"], 1, "{keys}");
    assert_eq!(keys["versions"][0]["data_keys"], 1, "{keys}");
    // Rotation re-wraps the data key; the ciphertext is not rewritten.
    let rotated = admin.json(&["keys", "rotate"]);
    assert_eq!(rotated["version"], 2, "{rotated}");
    assert_eq!(rotated["data_keys_rewrapped"], 1, "{rotated}");
    assert_eq!(std::fs::read(&sealed[0]).unwrap(), ciphertext);
    let (code, _, stderr) = admin.run(&["keys", "retire", "2"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("current version"), "{stderr}");
    admin.ok(&["keys", "retire", "1"]);
    assert!(!data_dir.join("keys/kek/v1.key").exists());
    // Anyone who may upload may seal any blob, the package's own manifest included: readers
    // of manifests (verification, pull) read it either way, and no plaintext copy remains.
    let manifest_file = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let sealed_manifest = reqwest::Client::new()
        .put(format!("{}/api/v1/blobs/{digest}?seal=true", admin.url))
        .bearer_auth(&admin.token)
        .body(std::fs::read(&manifest_file).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(sealed_manifest.status(), 201);
    assert!(
        !data_dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
            .exists()
    );
    let verified = admin.json(&["versions", "verify", &digest]);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["checked"], 12, "{verified}");
    assert_eq!(
        pushed["package"]["provenance_signed_by"], verified["signed_by"],
        "{pushed}"
    );
    let artifacts: Vec<&str> = version["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        artifacts,
        [
            "data/sample.csv",
            "model.onnx",
            "requirements.txt",
            ".steward/redaction-report.json"
        ]
    );

    // Usage terms are enforced on deployment, naming the term: the request waits, blocked.
    let promoted = admin.json(&["promote", &digest, "--to", "staging", "--reason", "try"]);
    assert_eq!(promoted["state"], "pending", "{promoted}");
    let blocks = |promotion: &Value, gate: &str| -> String {
        promotion["evaluation"]["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|result| result["gate"] == gate && result["status"] == "block")
            .map(|result| result["message"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("`{gate}` does not block: {promotion}"))
    };
    assert!(
        blocks(&promoted, "usage_terms").contains("allowed_regions: [eu]"),
        "{promoted}"
    );
    let text = admin.ok(&["promotion", "show", &promoted["id"].to_string()]);
    assert!(
        text.contains("pending") && text.contains("block    usage_terms"),
        "{text}"
    );
    admin.ok(&["envs", "create", "eu-staging", "--region", "eu"]);
    let inside = admin.json(&[
        "promote",
        &digest,
        "--to",
        "eu-staging",
        "--reason",
        "inside the terms",
    ]);
    assert_eq!(inside["state"], "applied", "{inside}");

    // An advisory imported later blocks further deployment, naming the finding; the CI gate
    // says so with exit code 1 in every format.
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("numpy.json"),
        r#"{"id": "PYSEC-TEST-9", "affected": [{"package": {"ecosystem": "PyPI", "name": "numpy"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}, {"fixed": "2.1.1"}]}]}], "database_specific": {"severity": "CRITICAL"}}"#,
    )
    .unwrap();
    admin.ok(&["advisories", "import", osv.to_str().unwrap()]);
    let (code, stdout, stderr) = admin.run(&["gate", "check", &digest, "--to", "eu-staging"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("numpy 2.1.0 is affected by PYSEC-TEST-9 (critical), fixed in 2.1.1")
            && stdout.ends_with("The promotion would block.\n"),
        "{stdout}"
    );
    for (format, needle) in [
        ("json", "\"allowed\": false"),
        ("sarif", "\"ruleId\": \"steward.supply-chain.vulnerable\""),
        (
            "junit",
            "<failure message=\"numpy 2.1.0 is affected by PYSEC-TEST-9",
        ),
    ] {
        let (code, stdout, _) = admin.run(&[
            "gate",
            "check",
            &digest,
            "--to",
            "eu-staging",
            "--format",
            format,
        ]);
        assert_eq!(code, 1, "{format}");
        assert!(stdout.contains(needle), "{format}: {stdout}");
    }
    let (code, _, _) = admin.run(&["gate", "check", &digest, "--to", "staging-nowhere"]);
    assert_eq!(code, 1, "an unknown environment is an error");
    let again = admin.json(&[
        "promote",
        &digest,
        "--to",
        "eu-staging",
        "--reason",
        "again",
    ]);
    assert!(
        blocks(&again, "vulnerabilities")
            .contains("numpy 2.1.0 is affected by PYSEC-TEST-9 (critical), fixed in 2.1.1"),
        "{again}"
    );

    // The change data lake: Parquet per day, appended, never rewritten.
    let lake = dir.path().join("lake");
    let first = admin.json(&["events", "export", "--out", lake.to_str().unwrap()]);
    let files: Vec<String> = serde_json::from_value(first["files"].clone()).unwrap();
    assert!(
        !files.is_empty() && first["rows"].as_u64().unwrap() >= 3,
        "{first}"
    );
    let mut rows = 0;
    for file in &files {
        assert!(file.contains("/date=20"), "{file}");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        rows += reader.map(|batch| batch.unwrap().num_rows()).sum::<usize>();
    }
    assert_eq!(rows as u64, first["rows"].as_u64().unwrap());
    let again = admin.json(&["events", "export", "--out", lake.to_str().unwrap()]);
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(again["files"], serde_json::json!([]));

    let pulled = dir.path().join("pulled.oci");
    admin.ok(&[
        "package",
        "pull",
        &digest,
        "--out",
        pulled.to_str().unwrap(),
    ]);
    same_tree(&layout, &pulled);

    // The single-file form: reproducible, verifiable, and what a pull to `.tar` gives back.
    let (archive, built_archive) = build("churn.tar", true);
    assert_eq!(built_archive["manifest_digest"], digest.as_str());
    let (again, _) = build("churn-again.tar", true);
    let archive_bytes = std::fs::read(&archive).unwrap();
    assert_eq!(archive_bytes, std::fs::read(&again).unwrap());
    let verified = admin.ok(&[
        "package",
        "verify",
        archive.to_str().unwrap(),
        "--key",
        trusted.to_str().unwrap(),
    ]);
    assert!(
        verified.starts_with("ok: the package's 7 files"),
        "{verified}"
    );
    let pulled_archive = dir.path().join("pulled.tar");
    admin.ok(&[
        "package",
        "pull",
        &digest,
        "--out",
        pulled_archive.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&pulled_archive).unwrap(), archive_bytes);

    // Changed ciphertext is never served: verification names the blob, a pull fails.
    let mut changed = ciphertext.clone();
    changed[3] ^= 1;
    std::fs::write(&sealed[0], &changed).unwrap();
    let (code, _, stderr) = admin.run(&["versions", "verify", &digest]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("failed verification") && stderr.contains("`model.onnx`"),
        "{stderr}"
    );
    let (code, _, _) = admin.run(&[
        "package",
        "pull",
        &digest,
        "--out",
        dir.path().join("pulled-again.oci").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);

    // A layout whose blob was changed after the build is refused before anything is sent.
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        "{}",
    )
    .unwrap();
    let (code, _, stderr) = admin.run(&[
        "package",
        "push",
        layout.to_str().unwrap(),
        "--model",
        "retail/churn",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("hashes to"), "{stderr}");
}

/// A promoted version is served over the Open Inference Protocol by `steward serve`: the
/// table follows the alias, and predictions are onnxruntime's (the gateway's goldens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_version_is_served_over_the_open_inference_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let token = init(&data_dir, None);
    let (_server, url) = start(&data_dir);
    let admin = Session {
        url: url.clone(),
        token,
    };
    admin.ok(&["units", "create", "retail"]);
    let mut sessions = Vec::new();
    for (name, role) in [("alice", "data_scientist"), ("dave", "mlops_engineer")] {
        admin.ok(&["users", "create", name]);
        admin.ok(&["users", "grant", name, role, "--scope", "retail"]);
        let token = admin.json(&["tokens", "create", name, "--name", "laptop"]);
        sessions.push(admin.as_user(token["token"].as_str().unwrap()));
    }
    let (alice, dave) = (&sessions[0], &sessions[1]);
    alice.ok(&[
        "models",
        "create",
        "retail/credit",
        "--category",
        "tabular_classification",
        "--risk-class",
        "minimal",
        "--tier",
        "3",
    ]);
    let gateway_data = concat!(env!("CARGO_MANIFEST_DIR"), "/../steward-gateway/test_data");
    let model = dir.path().join("credit");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(
        format!("{gateway_data}/logreg.onnx"),
        model.join("model.onnx"),
    )
    .unwrap();
    std::fs::write(
        model.join("steward.yaml"),
        "version: 1.0.0\nlicence: Apache-2.0\nintended_use: Score credit applications.\nmodel_card: {description: Logistic regression., markdown: '# Credit'}\nschema:\n  inputs: [{name: features, datatype: FP32, shape: [-1, 6], classification: personal}]\n  outputs: [{name: probabilities, datatype: FP32, shape: [-1, 2], classification: internal}]\n",
    )
    .unwrap();
    let registered = alice.json(&[
        "versions",
        "register",
        "retail/credit",
        "--dir",
        model.to_str().unwrap(),
    ]);
    let digest = registered["digest"].as_str().unwrap().to_owned();
    let promoted = dave.json(&["promote", &digest, "--to", "staging", "--reason", "first"]);
    assert_eq!(promoted["state"], "applied", "{promoted}");

    let http = reqwest::Client::new();
    let base = format!("{url}/env/staging/v2/models/retail:credit");
    let mut ready = false;
    for _ in 0..40 {
        let response = http.get(format!("{base}/ready")).send().await.unwrap();
        if response.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(ready, "the promoted version was not served within 10 s");
    let metadata: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["versions"], serde_json::json!(["1.0.0"]));
    assert_eq!(metadata["inputs"][0]["name"], "features");

    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{gateway_data}/golden.json")).unwrap(),
    )
    .unwrap();
    let cases = golden["models"]["logreg"]["cases"].as_array().unwrap();
    let rows: Vec<Value> = cases.iter().map(|case| case["features"].clone()).collect();
    let request = serde_json::json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [rows.len(), 6], "data": rows}]});
    // A versioned path pins a version: only for callers the policy lets pin (data
    // scientists may outside production), with their token.
    let anonymous = http
        .post(format!("{base}/versions/1.0.0/infer"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let answer: Value = http
        .post(format!("{base}/versions/1.0.0/infer"))
        .bearer_auth(&alice.token)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = answer["outputs"][0]["data"].as_array().unwrap();
    for (index, case) in cases.iter().enumerate() {
        for column in 0..2 {
            let want = case["probabilities"][column].as_f64().unwrap();
            let got = data[index * 2 + column].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-5, "case {index}: {got} vs {want}");
        }
    }
    // A revoked token stops pinning at the next refresh of the table.
    let alice_id = alice.token.split('_').nth(1).unwrap().to_owned();
    admin.ok(&["tokens", "revoke", "alice", &alice_id]);
    let mut refused = false;
    for _ in 0..40 {
        let status = http
            .post(format!("{base}/versions/1.0.0/infer"))
            .bearer_auth(&alice.token)
            .json(&request)
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(refused, "a revoked token still pinned after 10 s");
    let token = admin.json(&["tokens", "create", "alice", "--name", "laptop-2"]);
    let alice = &admin.as_user(token["token"].as_str().unwrap());
    // A second version, then a manual rollback: what staging serves follows each move.
    let wait_for = |label: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            for _ in 0..40 {
                let metadata: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
                if metadata["versions"] == serde_json::json!([label]) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            panic!("staging did not serve {label} within 10 s");
        }
    };
    std::fs::copy(format!("{gateway_data}/mlp.onnx"), model.join("model.onnx")).unwrap();
    let yaml = std::fs::read_to_string(model.join("steward.yaml")).unwrap();
    std::fs::write(model.join("steward.yaml"), yaml.replace("1.0.0", "1.1.0")).unwrap();
    let second = alice.json(&[
        "versions",
        "register",
        "retail/credit",
        "--dir",
        model.to_str().unwrap(),
    ]);
    let promoted = dave.json(&[
        "promote",
        second["digest"].as_str().unwrap(),
        "--to",
        "staging",
        "--reason",
        "mlp",
    ]);
    assert_eq!(promoted["state"], "applied", "{promoted}");
    wait_for("1.1.0").await;
    let (code, _, stderr) = alice.run(&[
        "rollback",
        "retail/credit",
        "--env",
        "staging",
        "--reason",
        "x",
    ]);
    assert_eq!(code, 1, "data scientists do not roll back: {stderr}");
    let rolled = dave.json(&[
        "rollback",
        "retail/credit",
        "--env",
        "staging",
        "--reason",
        "approval rate dropped",
    ]);
    assert_eq!(rolled["version"], "1.0.0", "{rolled}");
    wait_for("1.0.0").await;
    let (code, _, stderr) = dave.run(&[
        "rollback",
        "retail/credit",
        "--env",
        "staging",
        "--reason",
        "again",
    ]);
    assert_eq!(code, 1, "a retried rollback does not flip back: {stderr}");
    assert!(stderr.contains("was just rolled back"), "{stderr}");

    // A canary beside the stable version: half the users, sticky by a header, audited.
    let canary = second["digest"].as_str().unwrap().to_owned();
    let routing = format!("{url}/api/v1/models/retail/credit/routing/staging");
    let set = |body: Value, token: String| {
        let (http, routing) = (http.clone(), routing.clone());
        async move {
            http.put(&routing)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = serde_json::json!({"canary": canary, "canary_weight_bp": 5000, "sticky_header": "x-user-id", "reason": "try the MLP"});
    assert_eq!(set(body.clone(), alice.token.clone()).await.status(), 403);
    let answer = set(body, dave.token.clone()).await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let mut seen_canary = false;
    for _ in 0..40 {
        let metadata: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
        if metadata["versions"] == serde_json::json!(["1.0.0", "1.1.0"]) {
            seen_canary = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(seen_canary, "the canary was not served within 10 s");
    let one = serde_json::json!({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 6], "data": [44200, 0.29, 29, 3, 1, 20350]}]});
    let mut on_canary = 0;
    for user in 0..60 {
        let mut versions = Vec::new();
        for _ in 0..2 {
            let answer: Value = http
                .post(format!("{base}/infer"))
                .header("x-user-id", format!("user-{user}"))
                .json(&one)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            versions.push(answer["model_version"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            versions[0], versions[1],
            "user {user} moved between versions"
        );
        if versions[0] == "1.1.0" {
            on_canary += 1;
        }
    }
    assert!(
        (15..=45).contains(&on_canary),
        "{on_canary} of 60 users on a 50 % canary"
    );
    // During the canary phase every request is logged; personal inputs are keyed-hashed.
    let logged = |route: &'static str| {
        let folder = data_dir.join("requests/personal");
        std::fs::read_dir(&folder)
            .map(|days| {
                days.flat_map(|day| {
                    std::fs::read_to_string(day.unwrap().path())
                        .unwrap()
                        .lines()
                        .map(|line| serde_json::from_str::<Value>(line).unwrap())
                        .filter(|record| record["route"] == route)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let mut canary_records = Vec::new();
    for _ in 0..40 {
        canary_records = logged("canary");
        if canary_records.len() == 2 * on_canary {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        canary_records.len(),
        2 * on_canary,
        "one record per canary request"
    );
    assert_eq!(canary_records[0]["modelversion"], "1.1.0");
    assert_eq!(canary_records[0]["retentionclass"], "personal");
    assert!(!canary_records[0].to_string().contains("44200"));
    assert_eq!(logged("stable").len(), 120 - 2 * on_canary);
    let pinned: Value = http
        .post(format!("{base}/versions/1.1.0/infer"))
        .bearer_auth(&dave.token)
        .json(&one)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pinned["model_version"], "1.1.0");

    // Kill switches: `serving` off answers 503 on the next requests; a capability flag off
    // with a fallback sends those requests to the fallback; OFREP reports both.
    let flag = |name: &'static str, body: Value| {
        let (http, url, token) = (http.clone(), url.clone(), dave.token.clone());
        async move {
            let answer = http
                .put(format!(
                    "{url}/api/v1/models/retail/credit/flags/staging/{name}"
                ))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        }
    };
    let infer_status = |capability: Option<&'static str>| {
        let (http, base, one) = (http.clone(), base.clone(), one.clone());
        async move {
            let mut request = http.post(format!("{base}/infer")).json(&one);
            if let Some(capability) = capability {
                request = request.header("x-steward-capability", capability);
            }
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    };
    flag(
        "serving",
        serde_json::json!({"enabled": false, "reason": "bad scores"}),
    )
    .await;
    let mut switched_off = false;
    for _ in 0..40 {
        let (status, body) = infer_status(None).await;
        if status == 503 {
            assert!(
                body["error"].as_str().unwrap().contains("switched off"),
                "{body}"
            );
            switched_off = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        switched_off,
        "the kill switch did not take effect within 10 s"
    );
    let ofrep: Value = http
        .post(format!(
            "{url}/ofrep/v1/evaluate/flags/retail:credit:staging:serving"
        ))
        .json(&serde_json::json!({"context": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ofrep["value"], false, "{ofrep}");
    flag(
        "serving",
        serde_json::json!({"enabled": true, "reason": "fixed"}),
    )
    .await;
    flag("explanations", serde_json::json!({"enabled": false, "fallback": canary, "reason": "explanations are slow"})).await;
    let mut fell_back = false;
    for _ in 0..40 {
        let (status, body) = infer_status(Some("explanations")).await;
        if status == 200 && body["model_version"] == "1.1.0" {
            fell_back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        fell_back,
        "the capability flag's fallback did not take effect within 10 s"
    );
    // Every such request now (not the canary's random half): ten in a row.
    for _ in 0..10 {
        let (status, body) = infer_status(Some("explanations")).await;
        assert_eq!(
            (status, body["model_version"].clone()),
            (200, serde_json::json!("1.1.0"))
        );
    }

    // Production serves nothing yet; the API's own routes are unaffected.
    let production = http
        .get(format!("{url}/v2/models/retail:credit"))
        .send()
        .await
        .unwrap();
    assert_eq!(production.status(), 404);
    assert_eq!(production.headers()["content-type"], "application/json");
}
