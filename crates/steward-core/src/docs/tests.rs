//! Documentation templates: loading, applicability and complete lists of missing fields.

use expect_test::{Expect, expect};

use super::*;
use crate::manifest::{BiasAssessment, DataSource, ModelCard};

fn facts(risk: &str, tier: i64, category: &str) -> ModelFacts {
    ModelFacts {
        risk_class: risk.parse().unwrap(),
        tier: Tier::new(tier).unwrap(),
        category: category.parse().unwrap(),
    }
}

#[track_caller]
fn check(facts: ModelFacts, manifest: &VersionManifest, expected: Expect) {
    let missing = TemplateSet::default_set().missing_fields(facts, manifest);
    let actual: Vec<String> = missing
        .iter()
        .map(|m| format!("{} ({})", m.field, m.required_by.join(", ")))
        .collect();
    expected.assert_eq(&actual.join("\n"));
}

fn minimal_complete() -> VersionManifest {
    serde_json::from_str(
        r##"{
            "version": "1.0.0",
            "artifacts": [{"name": "model.onnx", "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size_bytes": 0}],
            "intended_use": "Rank support tickets.",
            "licence": "Apache-2.0",
            "model_card": {"description": "Gradient-boosted ranker.", "markdown": "# Ticket ranker"}
        }"##,
    )
    .unwrap()
}

#[test]
fn shipped_templates_parse() {
    let set = TemplateSet::parse_yaml(DEFAULT_TEMPLATES_YAML).unwrap();
    assert_eq!(set.templates().len(), 5);
}

#[test]
fn every_field_path_is_checked() {
    // A manifest with nothing in it must miss every single-valued path.
    let empty = VersionManifest::default();
    for path in FIELD_PATHS.iter().filter(|path| !path.contains("[]")) {
        assert_eq!(
            missing_paths(path, &empty),
            vec![path.to_string()],
            "{path}"
        );
    }
    let mut with_source = VersionManifest::default();
    with_source.training_data.push(DataSource::default());
    for path in FIELD_PATHS.iter().filter(|path| path.contains("[]")) {
        assert_eq!(missing_paths(path, &with_source).len(), 1, "{path}");
    }
}

#[test]
fn minimal_risk_needs_the_baseline_only() {
    check(
        facts("minimal", 3, "tabular_classification"),
        &minimal_complete(),
        expect![""],
    );
    check(
        facts("minimal", 3, "tabular_classification"),
        &VersionManifest::default(),
        expect![[r#"
            version (baseline)
            artifacts (baseline)
            licence (baseline)
            intended_use (baseline)
            model_card.description (baseline)
            model_card.markdown (baseline)"#]],
    );
}

#[test]
fn high_risk_lists_every_missing_field_with_its_template() {
    let mut manifest = minimal_complete();
    manifest.training_data.push(DataSource {
        name: Some("applications-2025".into()),
        ..Default::default()
    });
    manifest.training_data.push(DataSource {
        name: Some("bureau".into()),
        location: Some("s3://data/bureau".into()),
        digest: Some(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        ),
        licence: Some("internal".into()),
        personal_data: Some(true),
    });
    manifest.bias_assessment = Some(BiasAssessment {
        summary: Some("Checked by age band.".into()),
        ..Default::default()
    });
    manifest.model_card = Some(ModelCard {
        description: Some("x".into()),
        markdown: Some("y".into()),
        ..Default::default()
    });
    check(
        facts("high", 1, "nlp"),
        &manifest,
        expect![[r#"
            out_of_scope_uses (transparency, generative-and-language)
            metrics (transparency, tier-1)
            model_card.limitations (transparency, generative-and-language)
            training_data[0].location (high-risk)
            training_data[0].digest (high-risk, tier-1)
            training_data[0].licence (high-risk, generative-and-language)
            training_data[0].personal_data (high-risk)
            training_config (high-risk)
            bias_assessment.protected_attributes (high-risk)
            bias_assessment.metrics (high-risk)
            bias_assessment.mitigations (high-risk)
            model_card.ethical_considerations (high-risk, generative-and-language)
            model_card.authors (high-risk)
            model_card.contact (high-risk)"#]],
    );
}

#[test]
fn blank_text_counts_as_missing() {
    let mut manifest = minimal_complete();
    manifest.intended_use = Some("   ".into());
    check(
        facts("minimal", 2, "vision"),
        &manifest,
        expect!["intended_use (baseline)"],
    );
}

#[test]
fn bad_template_files_list_every_problem() {
    let err = TemplateSet::parse_yaml(
        r#"
templates:
  - name: a
    when: { risk_classes: [severe], tiers: [4] }
    required: [model_card.descripton, licence]
  - name: a
    required: []
"#,
    )
    .unwrap_err();
    expect![[r#"documentation templates have 4 problem(s): template `a`: risk class `severe` is invalid: expected one of: prohibited, high, limited, minimal; template `a`: internal tier `4` is invalid: must be 1, 2 or 3; template `a`: unknown field `model_card.descripton`; template `a` is defined twice"#]]
        .assert_eq(&err.to_string());
}
