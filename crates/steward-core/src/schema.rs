//! Input and output schemas with a data-classification label per field, and the
//! enterprise classification policy that says which labels may be processed where (P6).
//!
//! A package declares `schema: {inputs: [...], outputs: [...]}` in `steward.yaml`; each field
//! has a name, an Open Inference Protocol datatype, a shape (`-1` for a variable dimension)
//! and a classification. The schema is part of the signed governance document.
//!
//! A classification policy is a list of rules. A rule names the business units and the
//! environments it covers (none listed: all) and the labels it allows for inputs and for
//! outputs (absent: any). Rules without environments apply everywhere, so they are checked
//! when a package is built and when it is pushed; rules for named environments are checked
//! when a version is deployed there. Every offending field is reported, never just the first.

use serde::{Deserialize, Serialize};

/// Data classification labels, from least to most sensitive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    Public,
    Internal,
    Confidential,
    /// Personal data (GDPR Art. 4(1)).
    Personal,
    /// Special categories of personal data (GDPR Art. 9).
    SpecialCategory,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Personal => "personal",
            Classification::SpecialCategory => "special-category",
        }
    }
}

/// The Open Inference Protocol's tensor datatypes.
pub const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "BF16", "FP32", "FP64", "BYTES",
];

/// Fields per side and dimensions per shape a schema may have.
pub const FIELDS_MAX: usize = 10_000;
pub const DIMENSIONS_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    /// An Open Inference Protocol datatype (`FP32`, `INT64`, `BYTES`, …).
    pub datatype: String,
    /// Dimensions; `-1` is a variable one (e.g. the batch).
    #[serde(default)]
    pub shape: Vec<i64>,
    pub classification: Classification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSchema {
    #[serde(default)]
    pub inputs: Vec<Field>,
    #[serde(default)]
    pub outputs: Vec<Field>,
}

impl DataSchema {
    /// Every way the schema is malformed (empty or repeated names, unknown datatypes, bad
    /// dimensions, too many fields).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.inputs.is_empty() {
            problems.push("schema.inputs: at least one input is required".to_owned());
        }
        if self.outputs.is_empty() {
            problems.push("schema.outputs: at least one output is required".to_owned());
        }
        for (side, fields) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            if fields.len() > FIELDS_MAX {
                problems.push(format!(
                    "schema.{side}: {} fields, more than the limit of {FIELDS_MAX}",
                    fields.len()
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (index, field) in fields.iter().enumerate() {
                let at = format!("schema.{side}[{index}]");
                if field.name.trim().is_empty() {
                    problems.push(format!("{at}.name: must not be empty"));
                } else if !seen.insert(field.name.as_str()) {
                    problems.push(format!("{at}.name: `{}` appears twice", field.name));
                }
                if !DATATYPES.contains(&field.datatype.as_str()) {
                    problems.push(format!(
                        "{at}.datatype: `{}` is not one of {}",
                        field.datatype,
                        DATATYPES.join(", ")
                    ));
                }
                if field.shape.len() > DIMENSIONS_MAX {
                    problems.push(format!(
                        "{at}.shape: {} dimensions, more than the limit of {DIMENSIONS_MAX}",
                        field.shape.len()
                    ));
                }
                if let Some(bad) = field.shape.iter().find(|dim| **dim < -1 || **dim == 0) {
                    problems.push(format!(
                        "{at}.shape: dimension {bad} is neither positive nor -1 (variable)"
                    ));
                }
            }
        }
        problems
    }
}

/// The organisation's rules on which classifications may be processed where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationPolicy {
    #[serde(default)]
    pub rules: Vec<ClassificationRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationRule {
    /// Named in every violation.
    pub name: String,
    /// Business units the rule covers; none listed: every unit.
    #[serde(default)]
    pub business_units: Vec<String>,
    /// Environments the rule covers; none listed: everywhere, checked at build and push.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Labels inputs may carry; absent: any.
    #[serde(default)]
    pub inputs: Option<Vec<Classification>>,
    /// Labels outputs may carry; absent: any.
    #[serde(default)]
    pub outputs: Option<Vec<Classification>>,
    /// A version without a schema violates the rule (default: true).
    #[serde(default = "yes")]
    pub require_schema: bool,
}

fn yes() -> bool {
    true
}

/// One field (or a missing schema) that a rule forbids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: String,
    /// `inputs.age`, `outputs.score`, or `schema` when none is declared.
    pub field: String,
    pub classification: Option<Classification>,
    pub message: String,
}

/// Where a check happens: at build and push (`Everywhere`), or on deployment to an
/// environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Everywhere,
    Environment(&'a str),
}

impl ClassificationPolicy {
    pub fn parse_yaml(text: &str) -> Result<ClassificationPolicy, String> {
        let policy: ClassificationPolicy =
            serde_saphyr::from_str(text).map_err(|err| err.to_string().replace('\n', " "))?;
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (index, rule) in policy.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                problems.push(format!("rules[{index}].name: must not be empty"));
            } else if !names.insert(rule.name.as_str()) {
                problems.push(format!(
                    "rules[{index}].name: `{}` appears twice",
                    rule.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems.join("; "))
        }
    }

    /// Every violation of the rules that apply to `business_unit` in `scope`.
    pub fn violations(
        &self,
        schema: Option<&DataSchema>,
        business_unit: &str,
        scope: Scope<'_>,
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        for rule in &self.rules {
            let unit_applies = rule.business_units.is_empty()
                || rule.business_units.iter().any(|unit| unit == business_unit);
            let scope_applies = match scope {
                Scope::Everywhere => rule.environments.is_empty(),
                Scope::Environment(env) => {
                    rule.environments.is_empty() || rule.environments.iter().any(|e| e == env)
                }
            };
            if !unit_applies || !scope_applies {
                continue;
            }
            let Some(schema) = schema else {
                if rule.require_schema {
                    violations.push(Violation {
                        rule: rule.name.clone(),
                        field: "schema".to_owned(),
                        classification: None,
                        message: format!(
                            "no input/output schema is declared; rule `{}` requires one",
                            rule.name
                        ),
                    });
                }
                continue;
            };
            for (side, fields, allowed) in [
                ("inputs", &schema.inputs, &rule.inputs),
                ("outputs", &schema.outputs, &rule.outputs),
            ] {
                let Some(allowed) = allowed else { continue };
                for field in fields {
                    if !allowed.contains(&field.classification) {
                        let labels: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
                        violations.push(Violation {
                            rule: rule.name.clone(),
                            field: format!("{side}.{}", field.name),
                            classification: Some(field.classification),
                            message: format!(
                                "{side}.{} is `{}`; rule `{}` allows {side}: [{}]",
                                field.name,
                                field.classification.as_str(),
                                rule.name,
                                labels.join(", ")
                            ),
                        });
                    }
                }
            }
        }
        violations
    }
}

/// One difference between the schema a version replaces and its own (V2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `inputs.age`, `outputs.score`.
    pub field: String,
    pub kind: ChangeKind,
    /// Whether callers written against the old schema can break.
    pub breaking: bool,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Removed,
    Added,
    Retyped,
    Reshaped,
    Reclassified,
}

/// The changes from `old` to `new`. Breaking: an input or output removed, retyped or
/// reshaped, or a new input (old callers do not send it). Not breaking: a new output, a new
/// classification (it is governed separately).
pub fn compatibility(old: &DataSchema, new: &DataSchema) -> Vec<Change> {
    let mut changes = Vec::new();
    for (side, before, after) in [
        ("inputs", &old.inputs, &new.inputs),
        ("outputs", &old.outputs, &new.outputs),
    ] {
        for field in before {
            let name = format!("{side}.{}", field.name);
            let Some(now) = after.iter().find(|f| f.name == field.name) else {
                changes.push(Change {
                    message: format!("{name} was removed"),
                    field: name,
                    kind: ChangeKind::Removed,
                    breaking: true,
                });
                continue;
            };
            if now.datatype != field.datatype {
                changes.push(Change {
                    message: format!(
                        "{name} changed type from {} to {}",
                        field.datatype, now.datatype
                    ),
                    field: name.clone(),
                    kind: ChangeKind::Retyped,
                    breaking: true,
                });
            }
            if now.shape != field.shape {
                changes.push(Change {
                    message: format!(
                        "{name} changed shape from {:?} to {:?}",
                        field.shape, now.shape
                    ),
                    field: name.clone(),
                    kind: ChangeKind::Reshaped,
                    breaking: true,
                });
            }
            if now.classification != field.classification {
                changes.push(Change {
                    message: format!(
                        "{name} is now `{}` (was `{}`)",
                        now.classification.as_str(),
                        field.classification.as_str()
                    ),
                    field: name.clone(),
                    kind: ChangeKind::Reclassified,
                    breaking: false,
                });
            }
        }
        for field in after
            .iter()
            .filter(|f| !before.iter().any(|b| b.name == f.name))
        {
            let name = format!("{side}.{}", field.name);
            let breaking = side == "inputs";
            changes.push(Change {
                message: format!(
                    "{name} was added{}",
                    if breaking {
                        " (callers of the old version do not send it)"
                    } else {
                        ""
                    }
                ),
                field: name,
                kind: ChangeKind::Added,
                breaking,
            });
        }
    }
    changes
}

/// Whether going from version `old` to `new` announces breaking changes: a higher major
/// version, or for 0.x versions a higher minor one (semver: anything may change before 1.0).
pub fn is_major_bump(old: &str, new: &str) -> Option<bool> {
    let (old, new) = (
        semver::Version::parse(old).ok()?,
        semver::Version::parse(new).ok()?,
    );
    Some(if old.major == 0 && new.major == 0 {
        new.minor > old.minor
    } else {
        new.major > old.major
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, classification: Classification) -> Field {
        Field {
            name: name.into(),
            datatype: "FP32".into(),
            shape: vec![-1, 1],
            classification,
            description: None,
        }
    }

    fn schema() -> DataSchema {
        DataSchema {
            inputs: vec![
                field("income", Classification::Confidential),
                field("age", Classification::Personal),
                field("ethnicity", Classification::SpecialCategory),
            ],
            outputs: vec![field("score", Classification::Internal)],
        }
    }

    const POLICY: &str = r#"
rules:
  - name: no-special-category
    inputs: [public, internal, confidential, personal]
  - name: retail-outputs-internal
    business_units: [retail]
    outputs: [public]
  - name: no-personal-data-in-dev
    environments: [dev]
    inputs: [public, internal, confidential]
"#;

    #[test]
    fn every_offending_field_is_named_with_its_rule() {
        let policy = ClassificationPolicy::parse_yaml(POLICY).unwrap();
        let messages = |unit: &str, scope| -> Vec<String> {
            policy
                .violations(Some(&schema()), unit, scope)
                .into_iter()
                .map(|v| v.message)
                .collect()
        };
        assert_eq!(
            messages("retail", Scope::Everywhere),
            [
                "inputs.ethnicity is `special-category`; rule `no-special-category` allows inputs: [public, internal, confidential, personal]",
                "outputs.score is `internal`; rule `retail-outputs-internal` allows outputs: [public]",
            ]
        );
        assert_eq!(messages("wholesale", Scope::Everywhere).len(), 1);
        // Environment rules apply on deployment there, on top of the rules for everywhere.
        let dev = messages("wholesale", Scope::Environment("dev"));
        assert_eq!(dev.len(), 3, "{dev:?}");
        assert!(dev[1].starts_with("inputs.age is `personal`; rule `no-personal-data-in-dev`"));
        assert_eq!(messages("wholesale", Scope::Environment("prod")).len(), 1);
    }

    #[test]
    fn a_missing_schema_violates_rules_that_require_one() {
        let policy = ClassificationPolicy::parse_yaml(
            "rules:\n  - name: labelled\n  - name: lax\n    require_schema: false\n",
        )
        .unwrap();
        let violations = policy.violations(None, "retail", Scope::Everywhere);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "schema");
        assert!(
            ClassificationPolicy::default()
                .violations(None, "retail", Scope::Everywhere)
                .is_empty()
        );
    }

    #[test]
    fn malformed_schemas_and_policies_list_every_problem() {
        let mut bad = schema();
        bad.inputs[1].name = "income".into();
        bad.inputs[2].datatype = "FLOAT".into();
        bad.outputs[0].shape = vec![-2, 0];
        bad.outputs.push(field(" ", Classification::Public));
        assert_eq!(
            bad.problems(),
            [
                "schema.inputs[1].name: `income` appears twice",
                "schema.inputs[2].datatype: `FLOAT` is not one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES",
                "schema.outputs[0].shape: dimension -2 is neither positive nor -1 (variable)",
                "schema.outputs[1].name: must not be empty",
            ]
        );
        assert!(schema().problems().is_empty());
        assert_eq!(DataSchema::default().problems().len(), 2);
        let err =
            ClassificationPolicy::parse_yaml("rules:\n  - name: a\n  - name: a\n").unwrap_err();
        assert!(err.contains("`a` appears twice"), "{err}");
        let err = ClassificationPolicy::parse_yaml("rules:\n  - name: a\n    inputs: [secret]\n")
            .unwrap_err();
        assert!(err.contains("secret"), "{err}");
        let field: Result<Field, _> = serde_json::from_value(serde_json::json!(
            {"name": "x", "datatype": "FP32", "classification": "top-secret"}
        ));
        assert!(field.is_err());
    }

    #[test]
    fn breaking_changes_are_found_and_need_a_major_version() {
        let old = schema();
        let mut new = schema();
        new.inputs.retain(|f| f.name != "ethnicity");
        new.inputs[0].datatype = "FP64".into();
        new.inputs[1].shape = vec![-1, 2];
        new.inputs[1].classification = Classification::Confidential;
        new.inputs.push(field("region", Classification::Internal));
        new.outputs
            .push(field("explanation", Classification::Internal));
        let changes = compatibility(&old, &new);
        let summary: Vec<(&str, ChangeKind, bool)> = changes
            .iter()
            .map(|c| (c.field.as_str(), c.kind, c.breaking))
            .collect();
        assert_eq!(
            summary,
            [
                ("inputs.income", ChangeKind::Retyped, true),
                ("inputs.age", ChangeKind::Reshaped, true),
                ("inputs.age", ChangeKind::Reclassified, false),
                ("inputs.ethnicity", ChangeKind::Removed, true),
                ("inputs.region", ChangeKind::Added, true),
                ("outputs.explanation", ChangeKind::Added, false),
            ]
        );
        assert_eq!(
            changes[0].message,
            "inputs.income changed type from FP32 to FP64"
        );
        assert!(compatibility(&old, &old).is_empty());
        assert_eq!(is_major_bump("1.4.0", "2.0.0"), Some(true));
        assert_eq!(is_major_bump("1.4.0", "1.5.0"), Some(false));
        assert_eq!(is_major_bump("0.3.1", "0.4.0"), Some(true));
        assert_eq!(is_major_bump("0.3.1", "0.3.2"), Some(false));
        assert_eq!(is_major_bump("one", "2.0.0"), None);
    }
}
