//! Manifest structure checks and the stability of the version digest.

use expect_test::expect;

use super::*;

fn names() -> (Name, Name) {
    (
        Name::parse("business unit", "retail").unwrap(),
        Name::parse("model", "credit").unwrap(),
    )
}

fn sample() -> VersionManifest {
    serde_json::from_str(
        r#"{
            "version": "1.0.0",
            "artifacts": [{"name": "model.onnx", "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size_bytes": 0}],
            "metrics": [{"name": "auc", "value": 0.91}],
            "intended_use": "Score retail credit applications.",
            "licence": "Apache-2.0"
        }"#,
    )
    .unwrap()
}

#[test]
fn digest_is_stable_and_covers_model_identity() {
    let (unit, model) = names();
    let manifest = sample();
    // Pinned: changing this value changes every stored version id.
    expect!["sha256:c8004d108ca577373614e43bc64e2325c26f5face1e6c7d829fd2b99c17d85af"]
        .assert_eq(manifest.digest(&unit, &model).as_str());
    let other_model = Name::parse("model", "credit2").unwrap();
    assert_ne!(
        manifest.digest(&unit, &model),
        manifest.digest(&unit, &other_model)
    );
    let mut changed = manifest.clone();
    changed.artifacts[0].digest = Digest::of_bytes(b"x").to_string();
    assert_ne!(
        manifest.digest(&unit, &model),
        changed.digest(&unit, &model)
    );
}

#[test]
fn check_lists_every_problem() {
    let mut manifest = sample();
    manifest.version = Some("one".into());
    manifest.artifacts.push(manifest.artifacts[0].clone());
    manifest.artifacts[1].digest = "md5:00".into();
    manifest.artifacts.push(Artifact {
        name: "../etc/passwd".into(),
        ..manifest.artifacts[0].clone()
    });
    manifest.training_data.push(DataSource {
        digest: Some("sha256:XY".into()),
        ..Default::default()
    });
    let err = manifest.check().unwrap_err();
    expect![[r#"manifest has 5 problem(s): version `one` is not a semantic version: unexpected character 'o' while parsing major version number; artifacts[1].digest: digest `md5:00` is invalid: must start with `sha256:`; artifacts[1].name `model.onnx` appears twice; artifacts[2].name `../etc/passwd` must be a relative path inside the model; training_data[0].digest: digest `sha256:XY` is invalid: must be `sha256:` and 64 lowercase hex digits"#]]
        .assert_eq(&err.to_string());
}

#[test]
fn unknown_fields_are_refused() {
    let err = serde_json::from_str::<VersionManifest>(r#"{"verison": "1.0.0"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `verison`"), "{err}");
}
