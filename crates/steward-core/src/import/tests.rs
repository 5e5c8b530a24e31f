//! Import tests, data-driven: each fixture under `test_data/import/` is imported and the
//! whole result snapshotted, then error cases, the no-panic property and merge semantics.
//!
//! Fixtures are compiled in with `include_str!`, so the crate stays free of I/O. Snapshots
//! are refreshed with `UPDATE_EXPECT=1 cargo test`; review the diff like code.

use expect_test::{Expect, expect};
use serde_json::{Value, json};

use super::*;

const MLFLOW_SKLEARN: &str = include_str!("../../test_data/import/mlflow-sklearn/MLmodel");
const MLFLOW_PYTORCH: &str = include_str!("../../test_data/import/mlflow-pytorch/MLmodel");
const MLFLOW_METADATA: &str = include_str!("../../test_data/import/mlflow-metadata/MLmodel");
const HF_DISTILBERT: &str =
    include_str!("../../test_data/import/hf-distilbert-sentiment/README.md");
const HF_TRAINER: &str = include_str!("../../test_data/import/hf-trainer/README.md");
const HF_TEMPLATE: &str = include_str!("../../test_data/import/hf-template/README.md");
const STEWARD_YAML: &str = include_str!("../../test_data/import/steward.yaml");

/// Snapshots an import as pretty JSON with sorted keys, or its error message.
///
/// `model_card.markdown` is shown by size only (the card tests compare it verbatim), so
/// that the snapshot shows what was extracted rather than the whole card again. Every
/// successful import must also pass the manifest's structural checks.
#[track_caller]
fn check(result: Result<Imported, ImportError>, expect: Expect) {
    let rendered = match result {
        Ok(imported) => {
            if let Err(err) = imported.manifest.check() {
                panic!("imported manifest fails its checks: {err}");
            }
            let mut value = serde_json::to_value(&imported).unwrap();
            if let Some(markdown) = value.pointer_mut("/manifest/model_card/markdown") {
                let bytes = markdown.as_str().map_or(0, str::len);
                *markdown = Value::String(format!("<{bytes} bytes>"));
            }
            pretty(&value)
        }
        Err(err) => format!("error: {err}"),
    };
    expect.assert_eq(&rendered);
}

#[track_caller]
fn check_manifest(manifest: &VersionManifest, expect: Expect) {
    expect.assert_eq(&pretty(&serde_json::to_value(manifest).unwrap()));
}

/// Pretty JSON with object keys sorted, as in the canonical form, so snapshots do not
/// depend on field or file order.
fn pretty(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(value)).unwrap()
}

/// The card's body as the importer must keep it: everything after the closing `---`.
fn body_of(card: &str) -> &str {
    card.split_once("\n---\n").unwrap().1
}

#[test]
fn mlflow_sklearn_with_column_signature() {
    check(
        from_mlflow(MLFLOW_SKLEARN),
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "source": {
                  "flavors": [
                    "python_function",
                    "sklearn"
                  ],
                  "kind": "mlflow",
                  "model_uuid": "5f0c6e8a2b4d4c1f9e3a7b6d8c2e1f40",
                  "run_id": "3c9a7e21d4b84f0e8a6c5b2d1e0f9a87",
                  "signature": {
                    "inputs": [
                      {
                        "name": "annual_income",
                        "required": true,
                        "type": "double"
                      },
                      {
                        "name": "age",
                        "required": true,
                        "type": "long"
                      },
                      {
                        "name": "employment_status",
                        "required": true,
                        "type": "string"
                      },
                      {
                        "name": "debt_to_income",
                        "required": false,
                        "type": "double"
                      }
                    ],
                    "outputs": [
                      {
                        "tensor-spec": {
                          "dtype": "float64",
                          "shape": [
                            -1,
                            2
                          ]
                        },
                        "type": "tensor"
                      }
                    ]
                  }
                }
              },
              "provenance": {
                "mlflow_version": "2.11.3",
                "utc_time_created": "2024-03-14 09:26:53.118204"
              },
              "unmapped": [
                "artifact_path",
                "databricks_runtime",
                "model_size_bytes",
                "saved_input_example_info"
              ],
              "warnings": []
            }"#]],
    );
}

#[test]
fn mlflow3_pytorch_with_tensor_signature() {
    check(
        from_mlflow(MLFLOW_PYTORCH),
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "source": {
                  "flavors": [
                    "python_function",
                    "pytorch"
                  ],
                  "kind": "mlflow",
                  "model_uuid": "m-8e2f41c07a9b4d35b1c6e0a9f3d27b14",
                  "run_id": "0b7d5e93c2a14f6e8d1f27a4c9b03e65",
                  "signature": {
                    "inputs": [
                      {
                        "tensor-spec": {
                          "dtype": "float32",
                          "shape": [
                            -1,
                            3,
                            224,
                            224
                          ]
                        },
                        "type": "tensor"
                      }
                    ],
                    "outputs": [
                      {
                        "tensor-spec": {
                          "dtype": "float32",
                          "shape": [
                            -1,
                            1000
                          ]
                        },
                        "type": "tensor"
                      }
                    ],
                    "params": [
                      {
                        "default": 5,
                        "name": "top_k",
                        "shape": null,
                        "type": "long"
                      },
                      {
                        "default": 1.0,
                        "name": "temperature",
                        "shape": null,
                        "type": "double"
                      }
                    ]
                  }
                }
              },
              "provenance": {
                "mlflow_version": "3.1.0",
                "model_id": "m-8e2f41c07a9b4d35b1c6e0a9f3d27b14",
                "utc_time_created": "2025-06-02 13:41:07.552310"
              },
              "unmapped": [
                "artifact_path",
                "is_signature_from_type_hint",
                "model_size_bytes",
                "prompts",
                "type_hint_from_example"
              ],
              "warnings": []
            }"#]],
    );
}

#[test]
fn mlflow_metadata_maps_manifest_fields() {
    check(
        from_mlflow(MLFLOW_METADATA),
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "intended_use": "Rank incoming customer-support tickets by urgency so that the triage team sees the most urgent ones first.",
                "licence": "LicenseRef-Acme-Internal",
                "model_card": {
                  "authors": [
                    "Support ML team"
                  ],
                  "contact": "support-ml@acme.example",
                  "limitations": "Trained on English tickets only; urgency is under-estimated for other languages."
                },
                "out_of_scope_uses": [
                  "Closing or rejecting tickets without a human decision",
                  "Evaluating the performance of support staff"
                ],
                "source": {
                  "flavors": [
                    "python_function",
                    "xgboost"
                  ],
                  "kind": "mlflow",
                  "model_uuid": "m-2a6c9d14e8f04b7a9c3e5d1f0b8a6c27",
                  "run_id": "9d41f6b2e07a4c83b5e2a1d7c6f09b38",
                  "signature": {
                    "inputs": [
                      {
                        "name": "customer_tier",
                        "required": true,
                        "type": "long"
                      },
                      {
                        "name": "hours_open",
                        "required": true,
                        "type": "double"
                      },
                      {
                        "name": "previous_contacts",
                        "required": true,
                        "type": "long"
                      },
                      {
                        "name": "channel",
                        "required": true,
                        "type": "string"
                      }
                    ],
                    "outputs": [
                      {
                        "required": true,
                        "type": "long"
                      }
                    ]
                  }
                },
                "version": "2.3.0"
              },
              "provenance": {
                "mlflow_version": "3.3.2",
                "model_id": "m-2a6c9d14e8f04b7a9c3e5d1f0b8a6c27",
                "utc_time_created": "2025-09-22 07:05:41.310962"
              },
              "unmapped": [
                "artifact_path",
                "is_signature_from_type_hint",
                "metadata.metrics",
                "metadata.owner_team",
                "model_size_bytes",
                "prompts",
                "saved_input_example_info",
                "type_hint_from_example"
              ],
              "warnings": [
                "MLmodel: `metadata.metrics` does not have the shape of the manifest field: invalid type: map, expected a sequence"
              ]
            }"#]],
    );
}

#[test]
fn huggingface_fine_tuned_card() {
    let imported = from_huggingface_card(HF_DISTILBERT);
    let markdown = imported
        .as_ref()
        .ok()
        .and_then(|i| i.manifest.model_card.as_ref())
        .and_then(|c| c.markdown.as_deref());
    assert_eq!(markdown, Some(body_of(HF_DISTILBERT)));
    check(
        imported,
        expect![[r#"
            {
              "card_tags": [
                "language:en",
                "library_name:transformers",
                "pipeline_tag:text-classification",
                "sentiment-analysis",
                "generated_from_trainer"
              ],
              "manifest": {
                "intended_use": "Route incoming support messages: negative messages are shown to a senior agent first.\nThe score is a triage hint; every message is still read by a person.",
                "licence": "apache-2.0",
                "metrics": [
                  {
                    "dataset": "GLUE SST-2",
                    "name": "Accuracy",
                    "split": "validation",
                    "value": 0.9071100917431193
                  },
                  {
                    "dataset": "GLUE SST-2",
                    "name": "F1",
                    "split": "validation",
                    "value": 0.9093
                  },
                  {
                    "dataset": "Acme support tickets (sentiment)",
                    "name": "accuracy",
                    "split": "test",
                    "value": 0.8842
                  },
                  {
                    "dataset": "Acme support tickets (sentiment)",
                    "name": "Macro F1",
                    "split": "test",
                    "value": 0.871
                  }
                ],
                "model_card": {
                  "authors": [
                    "Priya Raman",
                    "Tomás Oliveira"
                  ],
                  "contact": "support-ml@acme.example",
                  "description": "This model labels a customer-support message as POSITIVE or NEGATIVE. It was fine-tuned\nfirst on SST-2 and then on 48,000 anonymised support tickets, so that it copes with the\nshort, informal and often angry language of support queues.",
                  "limitations": "The model inherits the biases of DistilBERT and of SST-2 movie reviews. On our test set\nit rates messages that mention a disability or a non-English name as negative more often\nthan comparable messages without them (false-negative gap of 3.1 points).\n\nSarcasm and mixed messages (\"great, another delay\") are frequently misclassified.",
                  "markdown": "<2948 bytes>"
                },
                "out_of_scope_uses": [
                  "Rating or ranking the performance of individual support agents.",
                  "Any decision about a customer's account, refund or credit without human review.",
                  "Messages in languages other than English; accuracy drops sharply."
                ],
                "source": {
                  "base_model": [
                    "distilbert/distilbert-base-uncased"
                  ],
                  "datasets": [
                    "stanfordnlp/sst2",
                    "acme/support-tickets-sentiment"
                  ],
                  "kind": "huggingface"
                },
                "training_data": [
                  {
                    "location": "https://huggingface.co/datasets/stanfordnlp/sst2",
                    "name": "stanfordnlp/sst2"
                  },
                  {
                    "location": "https://huggingface.co/datasets/acme/support-tickets-sentiment",
                    "name": "acme/support-tickets-sentiment"
                  }
                ]
              },
              "provenance": {},
              "unmapped": [
                "co2_eq_emissions",
                "metrics",
                "widget"
              ],
              "warnings": []
            }"#]],
    );
}

#[test]
fn huggingface_trainer_generated_card() {
    check(
        from_huggingface_card(HF_TRAINER),
        expect![[r#"
            {
              "card_tags": [
                "library_name:transformers",
                "generated_from_trainer"
              ],
              "manifest": {
                "licence": "mit",
                "metrics": [
                  {
                    "dataset": "imdb",
                    "name": "Accuracy",
                    "split": "test",
                    "value": 0.94316
                  }
                ],
                "model_card": {
                  "description": "This model is a fine-tuned version of [microsoft/deberta-v3-small](https://huggingface.co/microsoft/deberta-v3-small) on the imdb dataset.\nIt achieves the following results on the evaluation set:",
                  "markdown": "<1341 bytes>"
                },
                "source": {
                  "base_model": [
                    "microsoft/deberta-v3-small"
                  ],
                  "datasets": [
                    "imdb"
                  ],
                  "kind": "huggingface"
                },
                "training_data": [
                  {
                    "location": "https://huggingface.co/datasets/imdb",
                    "name": "imdb"
                  }
                ]
              },
              "provenance": {},
              "unmapped": [
                "metrics"
              ],
              "warnings": []
            }"#]],
    );
}

#[test]
fn huggingface_bare_template_yields_nothing_but_the_markdown() {
    let imported = from_huggingface_card(HF_TEMPLATE);
    let markdown = imported
        .as_ref()
        .ok()
        .and_then(|i| i.manifest.model_card.as_ref())
        .and_then(|c| c.markdown.as_deref());
    assert_eq!(markdown, Some(body_of(HF_TEMPLATE)));
    check(
        imported,
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "model_card": {
                  "markdown": "<3398 bytes>"
                },
                "source": {
                  "kind": "huggingface"
                }
              },
              "provenance": {},
              "unmapped": [],
              "warnings": []
            }"#]],
    );
}

#[test]
fn mlflow_errors_name_the_file_and_the_field() {
    let cases: [(&str, Expect); _] = [
        (
            "flavors: [python_function\nrun_id: x\n",
            expect![
                "error: MLmodel: not valid YAML: illegal placement of ':' indicator at line 2, column 7"
            ],
        ),
        (
            "- flavors\n",
            expect!["error: MLmodel: the document is a list, not a mapping of keys"],
        ),
        (
            "# only a comment\n",
            expect!["error: MLmodel: the document is empty, not a mapping of keys"],
        ),
        (
            "run_id: a\nrun_id: b\n",
            expect![
                "error: MLmodel: not valid YAML: duplicate mapping key `run_id` is not allowed here at line 2, column 1"
            ],
        ),
        (
            "flavors: {sklearn: {}}\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\"'\n",
            expect![
                "error: MLmodel: `signature.inputs` is not valid JSON: EOF while parsing an object at line 1 column 31"
            ],
        ),
        (
            "signature:\n  inputs: '{\"type\": \"double\"}'\n",
            expect![
                "error: MLmodel: `signature.inputs` must be a JSON list of columns, tensors or parameters, not a mapping"
            ],
        ),
        (
            "signature: '[1]'\n",
            expect!["error: MLmodel: `signature` is a string, not a mapping"],
        ),
        (
            "flavors: [sklearn]\n",
            expect!["error: MLmodel: `flavors` is a list, not a mapping of flavor names"],
        ),
        (
            "run_id: 12\n",
            expect!["error: MLmodel: `run_id` is a number, not a string"],
        ),
        (
            "metadata: [a, b]\n",
            expect!["error: MLmodel: `metadata` is a list, not a mapping"],
        ),
    ];
    for (input, expect) in cases {
        check(from_mlflow(input), expect);
    }
}

#[test]
fn mlflow_lenient_cases() {
    // Signature parts written as YAML lists, `params: null`, an unknown signature key, a
    // missing `flavors`, `model_id` standing in for `model_uuid`, both licence spellings.
    let input = "model_id: m-1\nsignature:\n  inputs:\n  - {type: double, name: x}\n  params: null\n  extra: 1\nmetadata:\n  license: MIT\n  licence: Apache-2.0\n  version: 2\n";
    check(
        from_mlflow(input),
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "licence": "Apache-2.0",
                "source": {
                  "kind": "mlflow",
                  "model_uuid": "m-1",
                  "signature": {
                    "inputs": [
                      {
                        "name": "x",
                        "type": "double"
                      }
                    ]
                  }
                }
              },
              "provenance": {
                "model_id": "m-1"
              },
              "unmapped": [
                "metadata.license",
                "metadata.version",
                "signature.extra"
              ],
              "warnings": [
                "MLmodel: both `metadata.licence` and `metadata.license` are set; `metadata.licence` is used",
                "MLmodel: `metadata.version` does not have the shape of the manifest field: invalid type: integer `2`, expected a string",
                "MLmodel: no `flavors`; MLflow cannot load a model without one"
              ]
            }"#]],
    );
}

#[test]
fn huggingface_errors_name_the_file_and_the_problem() {
    let cases: [(&str, Expect); _] = [
        (
            "---\nlicense: mit\n# Model\n",
            expect![
                "error: README.md: the front matter opened by `---` on line 1 is not closed by a `---` line"
            ],
        ),
        (
            "---\nlicense: mit\ndatasets: [a\n---\n# Model\n",
            expect!["error: README.md: not valid YAML: unclosed bracket '[' at line 3, column 11"],
        ),
        (
            "---\n- a list\n---\n",
            expect!["error: README.md: the document is a list, not a mapping of keys"],
        ),
        (
            "---\nlicense: [mit]\n---\n",
            expect!["error: README.md: `license` is a list, not a string"],
        ),
        (
            "---\ndatasets: [glue, 3]\n---\n",
            expect!["error: README.md: `datasets[1]` is a number, not a string"],
        ),
    ];
    for (input, expect) in cases {
        check(from_huggingface_card(input), expect);
    }
}

#[test]
fn huggingface_unusable_metrics_are_warnings() {
    let card = r#"---
license: other
license_name: acme-research
license_link: https://acme.example/licence
datasets: my data set
model-index:
- name: m
  results:
  - dataset: {name: Holdout, type: acme/holdout, split: test}
    metrics:
    - {type: accuracy, value: n/a}
    - {type: f1, value: .nan}
    - {name: Recall, type: recall, value: 0.8}
    - {value: 0.5}
    - {type: loss}
  - dataset: {type: acme/holdout}
    metric: {type: precision, value: 0.75}
  - task: {type: text-classification}
- name: no results
---
Scores support tickets.
"#;
    check(
        from_huggingface_card(card),
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "licence": "acme-research (https://acme.example/licence)",
                "metrics": [
                  {
                    "dataset": "Holdout",
                    "name": "Recall",
                    "split": "test",
                    "value": 0.8
                  },
                  {
                    "dataset": "acme/holdout",
                    "name": "precision",
                    "value": 0.75
                  }
                ],
                "model_card": {
                  "description": "Scores support tickets.",
                  "markdown": "<24 bytes>"
                },
                "source": {
                  "datasets": [
                    "my data set"
                  ],
                  "kind": "huggingface"
                },
                "training_data": [
                  {
                    "name": "my data set"
                  }
                ]
              },
              "provenance": {},
              "unmapped": [],
              "warnings": [
                "README.md: `model-index[0].results[0].metrics[0]` `accuracy` has value `n/a`, which is not a finite number; skipped",
                "README.md: `model-index[0].results[0].metrics[1]` `f1` has value `.nan`, which is not a finite number; skipped",
                "README.md: `model-index[0].results[0].metrics[3]` has neither `name` nor `type`; skipped",
                "README.md: `model-index[0].results[0].metrics[4]` `loss` has no `value`; skipped",
                "README.md: `model-index[0].results[2]` has no `metrics` list; skipped",
                "README.md: `model-index[1]` has no `results` list; skipped",
                "README.md: `datasets[0]` `my data set` is not a Hugging Face dataset id; its location is left for the registration"
              ]
            }"#]],
    );
}

#[test]
fn huggingface_card_without_front_matter_still_yields_the_body() {
    let card = "# Ticket router\n\nRoutes tickets.\n\n## Out-of-scope uses\n\nAnything medical.\n\n## Model Card Authors\n\nAda Lovelace, Charles Babbage, and Mary Somerville\n";
    check(
        from_huggingface_card(card),
        expect![[r#"
            {
              "card_tags": [],
              "manifest": {
                "model_card": {
                  "authors": [
                    "Ada Lovelace",
                    "Charles Babbage",
                    "Mary Somerville"
                  ],
                  "description": "Routes tickets.",
                  "markdown": "<149 bytes>"
                },
                "out_of_scope_uses": [
                  "Anything medical."
                ],
                "source": {
                  "kind": "huggingface"
                }
              },
              "provenance": {},
              "unmapped": [],
              "warnings": [
                "README.md: no YAML front matter; licence, datasets and metrics must come from steward.yaml"
              ]
            }"#]],
    );
}

#[test]
fn windows_line_endings_and_a_byte_order_mark_are_accepted() {
    let card = "\u{feff}---\r\nlicense: mit\r\n---\r\n# Router\r\n\r\nRoutes tickets.\r\n\r\n## Out of scope\r\n\r\n* medical advice\r\n";
    let imported = from_huggingface_card(card).unwrap();
    let card = imported.manifest.model_card.unwrap_or_default();
    assert_eq!(imported.manifest.licence.as_deref(), Some("mit"));
    assert_eq!(card.description.as_deref(), Some("Routes tickets."));
    assert_eq!(imported.manifest.out_of_scope_uses, ["medical advice"]);
    assert_eq!(
        card.markdown.as_deref(),
        Some("# Router\r\n\r\nRoutes tickets.\r\n\r\n## Out of scope\r\n\r\n* medical advice\r\n")
    );
}

#[test]
fn headings_in_code_fences_and_comments_are_not_sections() {
    let card = "---\n---\nIntro paragraph.\n\n```markdown\n## Direct Use\nnot this\n```\n\n<!--\n## Model Card Contact\nnot this either\n-->\n\n#### DIRECT USE ####\n\nThis, with a list:\n- one\n- two\n";
    let imported = from_huggingface_card(card).unwrap();
    expect![[r#"
        (
            Some(
                "This, with a list:\n- one\n- two",
            ),
            None,
        )
    "#]]
    .assert_debug_eq(&(
        imported.manifest.intended_use,
        imported.manifest.model_card.and_then(|c| c.contact),
    ));
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    let text = "a".repeat(IMPORT_TEXT_BYTES_MAX + 1);
    check(
        from_mlflow(&text),
        expect!["error: MLmodel: input is 4194305 bytes, more than the limit of 4194304"],
    );
    check(
        from_huggingface_card(&text),
        expect!["error: README.md: input is 4194305 bytes, more than the limit of 4194304"],
    );
    expect!["steward.yaml: input is 4194305 bytes, more than the limit of 4194304"]
        .assert_eq(&manifest_from_yaml(&text).unwrap_err().to_string());
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let deep_flow = format!("flavors: {}", "[".repeat(100_000));
    let deep_block: String = (0..2_000)
        .map(|depth| format!("{}k:\n", " ".repeat(depth)))
        .collect();
    let aliases = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    check(
        from_mlflow(&deep_flow),
        expect!["error: MLmodel: not valid YAML: recursion limit exceeded at line 1, column 265"],
    );
    check(
        from_mlflow(&deep_block),
        expect![
            "error: MLmodel: not valid YAML: YAML document too large or too complex: limits breached: Depth { depth: 65 } at line 65, column 65"
        ],
    );
    check(
        from_mlflow(aliases),
        expect![
            "error: MLmodel: not valid YAML: YAML document too large or too complex: limits breached: Nodes { nodes: 250001 } at line 1, column 11 (defined at line 5, column 7) (used at line 6, column 9)"
        ],
    );
    let deep_json = format!("signature:\n  inputs: '{}'\n", "[".repeat(10_000));
    check(
        from_mlflow(&deep_json),
        expect![
            "error: MLmodel: `signature.inputs` is not valid JSON: recursion limit exceeded at line 1 column 128"
        ],
    );
}

#[test]
fn large_inputs_take_linear_time() {
    // Near the size limit, in the shapes that would expose quadratic work: a long list in
    // the front matter, many headings, one long list section. Each runs in well under a
    // second; a quadratic step would make this test hang.
    let many_datasets: String = (0..200_000).map(|n| format!("- d{}\n", n % 1000)).collect();
    let card = format!("---\ndatasets:\n{many_datasets}---\n");
    let imported = from_huggingface_card(&card).unwrap();
    assert_eq!(imported.manifest.training_data.len(), 1000);
    let many_headings = "## Out-of-Scope Use\n- a\n".repeat(150_000);
    assert!(many_headings.len() < IMPORT_TEXT_BYTES_MAX);
    let imported = from_huggingface_card(&many_headings).unwrap();
    assert_eq!(imported.manifest.out_of_scope_uses, ["a"]);
    let long_list = format!("## Out-of-Scope Use\n{}", "- misuse\n".repeat(400_000));
    let imported = from_huggingface_card(&long_list).unwrap();
    assert_eq!(imported.manifest.out_of_scope_uses.len(), 400_000);
    let comments = "<!-- x -->".repeat(400_000);
    assert!(
        from_huggingface_card(&comments)
            .unwrap()
            .manifest
            .model_card
            .is_some()
    );
}

#[test]
fn no_prefix_of_a_fixture_panics() {
    // Truncated files are the most likely malformed input; every prefix must import or fail
    // cleanly. Cards are cut on line boundaries (every character would take minutes of YAML
    // parsing in debug builds); MLmodel files at every character.
    for fixture in [MLFLOW_SKLEARN, MLFLOW_PYTORCH, MLFLOW_METADATA] {
        for (idx, _) in fixture.char_indices() {
            let _ = from_mlflow(&fixture[..idx]);
            let _ = manifest_from_yaml(&fixture[..idx]);
        }
    }
    for fixture in [HF_DISTILBERT, HF_TRAINER, HF_TEMPLATE, STEWARD_YAML] {
        for (idx, _) in fixture.match_indices('\n') {
            let _ = from_huggingface_card(&fixture[..idx]);
            let _ = from_huggingface_card(&fixture[idx..]);
            let _ = manifest_from_yaml(&fixture[..idx]);
        }
    }
}

#[test]
fn steward_yaml_reads_every_manifest_field() {
    let manifest = manifest_from_yaml(STEWARD_YAML).unwrap();
    manifest.check().unwrap();
    check_manifest(
        &manifest,
        expect![[r#"
        {
          "bias_assessment": {
            "protected_attributes": [
              "age",
              "sex"
            ],
            "summary": "Approval-rate ratio between age bands stays above 0.9 on the holdout set."
          },
          "intended_use": "Score retail credit applications for the manual underwriting queue; the score orders the queue and never approves or declines on its own.",
          "licence": "LicenseRef-Acme-Internal",
          "metrics": [
            {
              "dataset": "applications-2024-holdout",
              "name": "auc",
              "split": "test",
              "value": 0.874
            }
          ],
          "model_card": {
            "authors": [
              "Credit Risk Analytics"
            ],
            "contact": "credit-models@acme.example"
          },
          "out_of_scope_uses": [
            "Automated approval or decline of applications",
            "Pricing or limit setting"
          ],
          "training_config": {
            "class_weight": "balanced",
            "max_depth": 6,
            "n_estimators": 400
          },
          "training_data": [
            {
              "digest": "sha256:4f9b1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
              "licence": "LicenseRef-Acme-Internal",
              "location": "s3://acme-credit/curated/applications/2023-12-31/",
              "name": "applications-2019-2023",
              "personal_data": true
            }
          ],
          "version": "1.4.0"
        }"#]],
    );
}

#[test]
fn steward_yaml_errors() {
    let cases: [(&str, Expect); _] = [
        (
            "version: 1.0.0\nverison: 1.0.1\n",
            expect![
                "steward.yaml: unknown field `verison`, expected one of version, artifacts, training_data, training_config, metrics, bias_assessment, intended_use, out_of_scope_uses, model_card, licence, source, usage_terms, schema at line 2, column 1"
            ],
        ),
        (
            "model_card:\n  descrption: x\n",
            expect![
                "steward.yaml: unknown field `descrption`, expected one of description, limitations, ethical_considerations, authors, contact, markdown at line 2, column 3"
            ],
        ),
        (
            "metrics:\n- name: auc\n  value: high\n",
            expect!["steward.yaml: invalid floating point at line 3, column 10"],
        ),
        (
            "version: [1\n",
            expect!["steward.yaml: not valid YAML: unclosed bracket '[' at line 1, column 10"],
        ),
        (
            "- version\n",
            expect!["steward.yaml: the document is a list, not a mapping of keys"],
        ),
    ];
    for (input, expect) in cases {
        expect.assert_eq(&manifest_from_yaml(input).unwrap_err().to_string());
    }
    assert_eq!(
        manifest_from_yaml("# nothing yet\n"),
        Ok(VersionManifest::default())
    );
}

#[test]
fn merge_overlay_present_fields_win() {
    let base: VersionManifest = serde_json::from_value(json!({
        "version": "1.0.0",
        "training_data": [{"name": "base-data"}],
        "training_config": {"lr": 0.1, "epochs": 3},
        "metrics": [{"name": "auc", "value": 0.8}],
        "bias_assessment": {"summary": "base summary", "protected_attributes": ["age"]},
        "intended_use": "base use",
        "out_of_scope_uses": ["base misuse"],
        "model_card": {"description": "base description", "authors": ["Base Author"], "markdown": "# Base"},
        "licence": "MIT",
        "source": {"kind": "mlflow", "run_id": "r1", "flavors": ["sklearn"], "signature": {"inputs": []}}
    }))
    .unwrap();
    let overlay: VersionManifest = serde_json::from_value(json!({
        "version": "1.1.0",
        "training_config": {"lr": 0.05},
        "metrics": [{"name": "f1", "value": 0.7}, {"name": "auc", "value": 0.85}],
        "bias_assessment": {"mitigations": "reweighting"},
        "out_of_scope_uses": [],
        "model_card": {"description": "overlay description", "contact": "ml@acme.example"},
        "source": {"kind": "", "model_uuid": "u1"}
    }))
    .unwrap();
    check_manifest(
        &merge(base.clone(), overlay.clone()),
        expect![[r##"
        {
          "bias_assessment": {
            "mitigations": "reweighting",
            "protected_attributes": [
              "age"
            ],
            "summary": "base summary"
          },
          "intended_use": "base use",
          "licence": "MIT",
          "metrics": [
            {
              "name": "f1",
              "value": 0.7
            },
            {
              "name": "auc",
              "value": 0.85
            }
          ],
          "model_card": {
            "authors": [
              "Base Author"
            ],
            "contact": "ml@acme.example",
            "description": "overlay description",
            "markdown": "# Base"
          },
          "out_of_scope_uses": [
            "base misuse"
          ],
          "source": {
            "flavors": [
              "sklearn"
            ],
            "kind": "mlflow",
            "model_uuid": "u1",
            "run_id": "r1",
            "signature": {
              "inputs": []
            }
          },
          "training_config": {
            "lr": 0.05
          },
          "training_data": [
            {
              "name": "base-data"
            }
          ],
          "version": "1.1.0"
        }"##]],
    );
    // Merging with an empty manifest changes nothing, on either side.
    assert_eq!(merge(base.clone(), VersionManifest::default()), base);
    assert_eq!(merge(VersionManifest::default(), base.clone()), base);
    // Nested sections present on one side only are taken whole.
    let only_card = VersionManifest {
        model_card: overlay.model_card.clone(),
        ..VersionManifest::default()
    };
    assert_eq!(
        merge(only_card.clone(), VersionManifest::default()).model_card,
        overlay.model_card
    );
}

#[test]
fn import_then_steward_yaml_completes_the_registration() {
    let imported = from_mlflow(MLFLOW_SKLEARN).unwrap();
    let merged = merge(imported.manifest, manifest_from_yaml(STEWARD_YAML).unwrap());
    merged.check().unwrap();
    let source = merged.source.as_ref().unwrap();
    assert_eq!((source.kind.as_str(), source.flavors.len()), ("mlflow", 2));
    assert!(source.signature.is_some());
    assert_eq!(merged.version.as_deref(), Some("1.4.0"));
    assert_eq!(merged.training_data.len(), 1);
}
