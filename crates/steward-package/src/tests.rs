//! Packing: reproducible digests, a well-formed layout, ModelPack config and manifest, the
//! governance referrer, and refusals that name what is wrong.

use std::path::Path;

use expect_test::expect;
use serde_json::Value;

use super::*;

fn options() -> PackOptions {
    PackOptions {
        name: "retail/credit-risk".into(),
        tag: "1.0.0".into(),
        created: "1970-01-01T00:00:00Z".into(),
        classification_policy: None,
    }
}

fn documentation() -> VersionManifest {
    serde_json::from_value(json!({
        "version": "1.0.0",
        "licence": "Apache-2.0",
        "intended_use": "Score credit applications.",
        "model_card": {"description": "Logistic regression.", "authors": ["alice"], "markdown": "# Credit"},
    }))
    .unwrap()
}

fn model_dir(root: &Path) -> PathBuf {
    let dir = root.join("model");
    for (path, bytes) in [
        ("model.onnx", &b"onnx weights"[..]),
        ("config.json", b"{\"threshold\": 0.5}"),
        ("README.md", b"# Credit risk"),
        ("requirements.txt", b"scikit-learn==1.5.2\n"),
        ("data/sample.csv", b"income,age\n1,2\n"),
        ("steward.yaml", b"version: 1.0.0\n"),
    ] {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(out: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        out.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

#[test]
fn packing_is_reproducible_and_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let first = pack(
        &dir,
        &tmp.path().join("one"),
        &documentation(),
        &options(),
        None,
    )
    .unwrap();
    // Same content, other timestamps and another output folder: the same bytes.
    std::fs::write(dir.join("README.md"), b"# Credit risk").unwrap();
    let second = pack(
        &dir,
        &tmp.path().join("two"),
        &documentation(),
        &options(),
        None,
    )
    .unwrap();
    assert_eq!(first.manifest_digest, second.manifest_digest);
    for name in ["index.json", "oci-layout"] {
        assert_eq!(
            std::fs::read(tmp.path().join("one").join(name)).unwrap(),
            std::fs::read(tmp.path().join("two").join(name)).unwrap()
        );
    }
    // Pinned: a change here changes the identity of every package already built.
    expect!["sha256:a1bf204e937fcbe205c8648c38ccbc26e8e8b3d35ba21bfaf1df6e9320b59d8d"]
        .assert_eq(first.manifest_digest.as_str());
    // One byte of one file changes the identity.
    std::fs::write(dir.join("model.onnx"), b"onnx weightz").unwrap();
    let third = pack(
        &dir,
        &tmp.path().join("three"),
        &documentation(),
        &options(),
        None,
    )
    .unwrap();
    assert_ne!(first.manifest_digest, third.manifest_digest);
}

#[test]
fn the_layout_manifest_and_config_follow_oci_and_modelpack() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let packed = pack(
        &model_dir(tmp.path()),
        &out,
        &documentation(),
        &options(),
        None,
    )
    .unwrap();
    assert_eq!(
        read_json(&out.join("oci-layout")),
        json!({"imageLayoutVersion": "1.0.0"})
    );
    // Every blob hashes to its name.
    for entry in std::fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(Digest::of_bytes(&std::fs::read(&path).unwrap()).hex(), name);
    }
    let index = read_json(&out.join("index.json"));
    assert_eq!(
        index["manifests"][0]["digest"],
        packed.manifest_digest.as_str()
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0.0"
    );
    let manifest: Value =
        serde_json::from_slice(&blob(&out, packed.manifest_digest.as_str())).unwrap();
    assert_eq!(manifest["artifactType"], MODEL_ARTIFACT_TYPE);
    let kinds: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            format!(
                "{} {}",
                layer["annotations"]["org.cncf.model.filepath"]
                    .as_str()
                    .unwrap(),
                layer["mediaType"].as_str().unwrap()
            )
        })
        .collect();
    expect![[r#"
        README.md application/vnd.cncf.model.doc.v1.raw
        config.json application/vnd.cncf.model.weight.config.v1.raw
        data/sample.csv application/vnd.cncf.model.dataset.v1.raw
        model.onnx application/vnd.cncf.model.weight.v1.raw
        requirements.txt application/vnd.cncf.model.code.v1.raw
        .steward/redaction-report.json application/vnd.cncf.model.doc.v1.raw"#]]
    .assert_eq(&kinds.join("\n"));
    let config: Value =
        serde_json::from_slice(&blob(&out, manifest["config"]["digest"].as_str().unwrap()))
            .unwrap();
    assert_eq!(config["config"]["format"], "onnx");
    assert_eq!(config["descriptor"]["licenses"], json!(["Apache-2.0"]));
    let diff_ids: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    assert_eq!(config["modelfs"]["diffIds"], json!(diff_ids));
    // The documentation is a referrer of the model manifest.
    let governance: Value =
        serde_json::from_slice(&blob(&out, packed.governance_digest.as_str())).unwrap();
    assert_eq!(
        governance["subject"]["digest"],
        packed.manifest_digest.as_str()
    );
    let document: Value = serde_json::from_slice(&blob(
        &out,
        governance["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(document["intended_use"], "Score credit applications.");
}

#[test]
fn bad_inputs_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let out = tmp.path().join("out");
    pack(&dir, &out, &documentation(), &options(), None).unwrap();
    let err = pack(&dir, &out, &documentation(), &options(), None).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("already exists and is not empty; packages are never written over"),
        "{err}"
    );
    let err = pack(
        &dir,
        &tmp.path().join("x"),
        &documentation(),
        &PackOptions {
            tag: "-bad".into(),
            ..options()
        },
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tag `-bad` is not a valid OCI reference name"
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("steward.yaml"), "version: 1.0.0").unwrap();
    assert_eq!(
        pack(
            &empty,
            &tmp.path().join("y"),
            &documentation(),
            &options(),
            None
        )
        .unwrap_err()
        .to_string(),
        "the model directory has no files to pack"
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/passwd", dir.join("escape")).unwrap();
        let err = pack(
            &dir,
            &tmp.path().join("z"),
            &documentation(),
            &options(),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`escape` is a symbolic link; packages take only regular files from inside the model directory"
        );
        std::fs::remove_file(dir.join("escape")).unwrap();
    }
    // `.steward/` holds what Steward signs on the package's behalf; a model file there
    // could stand in for the governance record, so it is refused.
    std::fs::create_dir_all(dir.join(".steward")).unwrap();
    std::fs::write(dir.join(".steward/governance.json"), "{}").unwrap();
    let err = pack(
        &dir,
        &tmp.path().join("r"),
        &documentation(),
        &options(),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`.steward/governance.json`"),
        "{err}"
    );
    std::fs::remove_dir_all(dir.join(".steward")).unwrap();
    // A dataset that is not UTF-8 cannot be scanned for personal data, so it is refused
    // rather than packed unscanned.
    std::fs::write(dir.join("latin1.csv"), b"name\n\xe9mile\n").unwrap();
    let err = pack(
        &dir,
        &tmp.path().join("t"),
        &documentation(),
        &options(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`latin1.csv` is not UTF-8 text, so it cannot be scanned for personal data; convert it to UTF-8 or move it out of the package"
    );
}

#[test]
fn tags_follow_the_oci_grammar() {
    for tag in ["1.0.0", "latest", "v1.2.3-rc.1", "team/model:1", "a--b"] {
        assert!(is_valid_tag(tag), "{tag}");
    }
    for tag in ["", "-x", "x-", "a b", "ü", "a//b"] {
        assert!(!is_valid_tag(tag), "{tag}");
    }
}

#[test]
fn inspect_reads_back_what_pack_wrote_and_lists_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let packed = pack(
        &model_dir(tmp.path()),
        &out,
        &documentation(),
        &options(),
        None,
    )
    .unwrap();
    let manifest = blob(&out, packed.manifest_digest.as_str());
    let governance = blob(&out, packed.governance_digest.as_str());
    let facts = inspect::inspect(&manifest, &governance).unwrap();
    assert_eq!(facts.manifest_digest, packed.manifest_digest);
    assert_eq!(facts.layers.len(), 6, "five files and the redaction report");
    assert_eq!(facts.layers[3].path.as_deref(), Some("model.onnx"));

    let mut bad: Value = serde_json::from_slice(&manifest).unwrap();
    bad["artifactType"] = json!("application/x-other");
    bad["layers"][0]["annotations"]["org.cncf.model.filepath"] = json!("../escape");
    bad["layers"][1]["mediaType"] = json!("text/plain");
    let err = inspect::inspect(&serde_json::to_vec(&bad).unwrap(), &governance).unwrap_err();
    expect!["package has 4 problem(s): manifest artifactType must be `application/vnd.cncf.model.manifest.v1+json`, not `application/x-other`; layer 0 file path `../escape` must be relative, without `..`; layer 1 mediaType `text/plain` is not a ModelPack layer type; governance manifest subject must be the model manifest `sha256:d6416d6c5944b9aba9f6b808394cef7b0804a1ffc41938539764dacb90f8db01`"]
        .assert_eq(&err.to_string());
    let err = inspect::inspect(b"[]", b"{").unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
}

#[test]
fn datasets_and_documents_are_packed_redacted_with_a_report_of_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    std::fs::write(
        dir.join("data/sample.csv"),
        "id,email,dob\n1,ann@example.com,1984-02-29\n2,bob@example.net,1979-11-07\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("README.md"),
        "# Credit risk\nQuestions: risk-team@example.com\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("model.onnx"),
        "weights with ann@example.com inside are not text to scan",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let packed = pack(&dir, &out, &documentation(), &options(), None).unwrap();
    let layer = |path: &str| {
        let layer = packed
            .layers
            .iter()
            .find(|layer| layer.path == path)
            .unwrap();
        String::from_utf8(blob(&out, layer.digest.as_str())).unwrap()
    };
    assert_eq!(
        layer("data/sample.csv"),
        "id,email,dob\n1,<EMAIL>,<DATE_OF_BIRTH>\n2,<EMAIL>,<DATE_OF_BIRTH>\n"
    );
    assert_eq!(layer("README.md"), "# Credit risk\nQuestions: <EMAIL>\n");
    assert!(
        layer("model.onnx").contains("ann@example.com"),
        "weights are not rewritten"
    );
    let report = layer(REDACTION_REPORT_PATH);
    expect![[r#"{"files":{"README.md":{"EMAIL":1},"data/sample.csv":{"DATE_OF_BIRTH":2,"EMAIL":2}},"totals":{"DATE_OF_BIRTH":2,"EMAIL":3}}"#]]
        .assert_eq(&report);
    assert!(
        !report.contains("example.com"),
        "the report holds counts, never values"
    );
}

#[test]
fn the_schema_and_classification_policy_are_checked_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let mut documented = documentation();
    documented.schema = Some(
        serde_json::from_value(json!({
            "inputs": [
                {"name": "income", "datatype": "FP32", "shape": [-1, 1], "classification": "confidential"},
                {"name": "health", "datatype": "FP32", "shape": [-1, 1], "classification": "special-category"},
            ],
            "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1], "classification": "internal"}],
        }))
        .unwrap(),
    );
    let policy = steward_core::schema::ClassificationPolicy::parse_yaml(
        "rules:\n  - name: no-special-category\n    inputs: [public, internal, confidential, personal]\n  - name: dev-only-public\n    environments: [dev]\n    inputs: [public]\n",
    )
    .unwrap();
    let strict = PackOptions {
        classification_policy: Some(policy.clone()),
        ..options()
    };
    let out = tmp.path().join("refused");
    let err = pack(&dir, &out, &documented, &strict, None).unwrap_err();
    // Only the rule for every environment applies at build; `dev` is checked on deployment.
    assert_eq!(
        err.to_string(),
        "the classification policy refuses this package: inputs.health is `special-category`; rule `no-special-category` allows inputs: [public, internal, confidential, personal]"
    );
    assert!(!out.exists(), "nothing written");
    // Without a business unit in the name, a policy cannot be applied.
    let err = pack(
        &dir,
        &out,
        &documented,
        &PackOptions {
            name: "credit-risk".into(),
            ..strict.clone()
        },
        None,
    )
    .unwrap_err();
    assert!(matches!(err, PackError::NoBusinessUnit(_)), "{err}");
    // A malformed schema is refused with or without a policy.
    let mut malformed = documented.clone();
    malformed.schema.as_mut().unwrap().outputs[0].shape = vec![0];
    let err = pack(&dir, &out, &malformed, &options(), None).unwrap_err();
    assert!(err.to_string().contains("schema.outputs[0].shape"), "{err}");

    documented.schema.as_mut().unwrap().inputs[1].classification =
        steward_core::schema::Classification::Personal;
    let packed = pack(&dir, &out, &documented, &strict, None).unwrap();
    // The schema travels in the (signed) governance document.
    let governance = read_json(
        &out.join("blobs/sha256")
            .join(packed.governance_digest.hex()),
    );
    let document = governance["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|layer| layer["mediaType"] == GOVERNANCE_ARTIFACT_TYPE)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let document: Value = serde_json::from_slice(&blob(&out, &document)).unwrap();
    assert_eq!(
        document["schema"]["inputs"][1]["classification"],
        "personal"
    );
}

#[test]
fn archives_are_reproducible_and_extract_only_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let layout = tmp.path().join("layout");
    pack(&dir, &layout, &documentation(), &options(), None).unwrap();
    let one = tmp.path().join("one.tar");
    let two = tmp.path().join("two.tar");
    archive::write_archive(&layout, &one).unwrap();
    archive::write_archive(&layout, &two).unwrap();
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
    assert!(matches!(
        archive::write_archive(&layout, &one),
        Err(PackError::OutputExists(_))
    ));
    let back = tmp.path().join("back");
    archive::extract_archive(&one, &back, 1 << 30).unwrap();
    for name in ["index.json", "oci-layout"] {
        assert_eq!(
            std::fs::read(back.join(name)).unwrap(),
            std::fs::read(layout.join(name)).unwrap()
        );
    }
    assert_eq!(
        std::fs::read_dir(back.join("blobs/sha256"))
            .unwrap()
            .count(),
        std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .count()
    );
    // Too large for the limit.
    let err = archive::extract_archive(&one, &tmp.path().join("small"), 10).unwrap_err();
    assert!(err.to_string().contains("more than 10 bytes"), "{err}");

    // Entries outside a layout, and links, are refused by name.
    let craft = |name: &str, kind: tar::EntryType| {
        let path = tmp.path().join(format!("crafted-{}.tar", name.len()));
        let _ = std::fs::remove_file(&path);
        let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(if kind == tar::EntryType::Regular {
            3
        } else {
            0
        });
        header.set_mode(0o644);
        if kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        // `append_data` refuses `..`, so the name is written into the header directly.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        let data: &[u8] = if kind == tar::EntryType::Regular {
            b"abc"
        } else {
            b""
        };
        builder.append(&header, data).unwrap();
        builder.finish().unwrap();
        path
    };
    let evil = craft("../evil", tar::EntryType::Regular);
    let err = archive::extract_archive(&evil, &tmp.path().join("x1"), 1 << 20).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a package archive: entry `../evil` is not part of an OCI image layout"
    );
    assert!(!tmp.path().join("evil").exists());
    let link = craft("index.json", tar::EntryType::Symlink);
    let err = archive::extract_archive(&link, &tmp.path().join("x2"), 1 << 20).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
}

#[test]
fn signed_builds_carry_slsa_provenance_about_the_manifest_and_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let build = |out: &str| {
        let out = tmp.path().join(out);
        let packed = pack(&dir, &out, &documentation(), &options(), Some(&key)).unwrap();
        (out, packed)
    };
    let (out, packed) = build("one");
    let (_, again) = build("two");
    assert_eq!(
        packed.governance_digest, again.governance_digest,
        "reproducible, provenance included"
    );
    let governance = read_json(
        &out.join("blobs/sha256")
            .join(packed.governance_digest.hex()),
    );
    let layer = governance["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|layer| layer["mediaType"] == provenance::PROVENANCE_MEDIA_TYPE)
        .unwrap()
        .clone();
    assert_eq!(
        layer["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v1"
    );
    let envelope: Value =
        serde_json::from_slice(&blob(&out, layer["digest"].as_str().unwrap())).unwrap();
    let trusted = *key.verifying_key();
    assert_eq!(
        provenance::verify(&envelope, &[trusted], &packed.manifest_digest).unwrap(),
        0
    );
    let payload = signing::open_dsse(&envelope, signing::PAYLOAD_TYPE, &trusted).unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        packed.manifest_digest.hex()
    );
    let names: Vec<&str> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|subject| subject["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"model.onnx") && names.contains(&"data/sample.csv"),
        "{names:?}"
    );
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["buildType"], provenance::BUILD_TYPE);
    assert_eq!(definition["externalParameters"]["tag"], "1.0.0");
    assert_eq!(
        definition["resolvedDependencies"][0]["uri"],
        "pkg:pypi/scikit-learn@1.5.2"
    );
    assert!(
        statement["predicate"]["runDetails"]["builder"]["id"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    // Another key, another package's manifest, or a changed statement: refused.
    let stranger = *p256::ecdsa::SigningKey::from_slice(&[9u8; 32])
        .unwrap()
        .verifying_key();
    assert!(provenance::verify(&envelope, &[stranger], &packed.manifest_digest).is_err());
    let other = Digest::of_bytes(b"another manifest");
    let err = provenance::verify(&envelope, &[trusted], &other).unwrap_err();
    assert!(
        err.to_string().contains("not the package's manifest"),
        "{err}"
    );
    let mut changed = statement.clone();
    changed["predicate"]["buildDefinition"]["externalParameters"]["tag"] = json!("9.9.9");
    let mut forged = envelope.clone();
    forged["payload"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&changed).unwrap()
    ));
    assert!(provenance::verify(&forged, &[trusted], &packed.manifest_digest).is_err());
    // Unsigned builds have no provenance: nobody could vouch for it.
    let unsigned = pack(
        &dir,
        &tmp.path().join("three"),
        &documentation(),
        &options(),
        None,
    )
    .unwrap();
    let governance = read_json(
        &tmp.path()
            .join("three/blobs/sha256")
            .join(unsigned.governance_digest.hex()),
    );
    assert!(
        !governance
            .to_string()
            .contains(provenance::PROVENANCE_MEDIA_TYPE)
    );
}
