//! SLSA provenance v1 for a package build: an in-toto v1 statement whose subjects are the
//! model manifest and every packed file, signed as a DSSE envelope with the package's
//! signing key and attached to the governance referrer.
//!
//! Invariant: reproducible, like the rest of the package. The statement holds no clock
//! reading and no random id; the build time is the pinned `created` of the package, and
//! ECDSA signing is deterministic.

use p256::ecdsa::VerifyingKey;
use serde_json::{Value, json};
use steward_core::domain::Digest;

use crate::Layer;
use crate::sbom::Dependency;
use crate::signing::{self, PAYLOAD_TYPE, STATEMENT_TYPE, SignError};

/// Media type of the governance layer holding the signed provenance.
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const SLSA_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `externalParameters` mean: a `steward package build` of a model directory.
pub const BUILD_TYPE: &str = "https://steward.dev/buildtypes/package-build/v1";
/// Who built it: this program, at this version.
pub fn builder_id() -> String {
    format!(
        "https://steward.dev/builders/steward-cli@{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// What a build was asked to do, and what it produced and used.
pub struct BuildFacts<'a> {
    pub name: &'a str,
    pub tag: &'a str,
    pub created: &'a str,
    pub manifest_digest: &'a Digest,
    pub layers: &'a [Layer],
    pub dependencies: &'a [Dependency],
    pub classification_checked: bool,
}

pub fn statement(facts: &BuildFacts<'_>) -> Value {
    let mut subjects = vec![json!({
        "name": format!("{}:{}", facts.name, facts.tag),
        "digest": {"sha256": facts.manifest_digest.hex()},
        "annotations": {"mediaType": crate::MANIFEST_MEDIA_TYPE},
    })];
    subjects.extend(facts.layers.iter().map(|layer| {
        json!({"name": layer.path, "digest": {"sha256": layer.digest.hex()}, "annotations": {"mediaType": layer.media_type}})
    }));
    let dependencies: Vec<Value> = facts
        .dependencies
        .iter()
        .map(|dependency| {
            json!({
                "name": dependency.name,
                "uri": format!("pkg:pypi/{}@{}", dependency.name, dependency.version),
                "annotations": {"declaredIn": dependency.source},
            })
        })
        .collect();
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "name": facts.name,
                    "tag": facts.tag,
                    "created": facts.created,
                },
                "internalParameters": {
                    "redaction": "personal data in dataset and document text replaced by typed placeholders",
                    "classificationPolicyChecked": facts.classification_checked,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id()},
                "metadata": {"invocationId": format!("{}@{}", facts.name, facts.manifest_digest)},
            },
        },
    })
}

/// The statement signed as a DSSE envelope.
pub fn sign(statement: &Value, key: &dyn signing::Signer) -> Result<Value, SignError> {
    let payload = serde_json::to_vec(statement).unwrap_or_default();
    signing::dsse_envelope(PAYLOAD_TYPE, &payload, key)
}

/// Checks a provenance envelope: signed by one of `keys`, a SLSA v1 statement, and its first
/// subject is the model manifest `manifest_digest`. Returns the index of the key.
pub fn verify(
    envelope: &Value,
    keys: &[VerifyingKey],
    manifest_digest: &Digest,
) -> Result<usize, SignError> {
    let invalid = |reason: String| SignError::Invalid(reason);
    let mut last = invalid("no trusted key for the provenance".to_owned());
    for (index, key) in keys.iter().enumerate() {
        let payload = match signing::open_dsse(envelope, PAYLOAD_TYPE, key) {
            Ok(payload) => payload,
            Err(err) => {
                last = err;
                continue;
            }
        };
        let statement: Value = serde_json::from_slice(&payload)
            .map_err(|_| invalid("the provenance statement is not JSON".to_owned()))?;
        if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != SLSA_PREDICATE_TYPE
        {
            return Err(invalid(
                "the provenance is not a SLSA v1 in-toto statement".to_owned(),
            ));
        }
        let subject = &statement["subject"][0]["digest"]["sha256"];
        if subject != manifest_digest.hex() {
            return Err(invalid(format!(
                "the provenance is about `sha256:{}`, not the package's manifest `{manifest_digest}`",
                subject.as_str().unwrap_or("?")
            )));
        }
        return Ok(index);
    }
    Err(last)
}
