//! What the data plane needs from the control plane: where every alias points, and the
//! bytes of a deployed version's model file, loaded only after the whole version is
//! re-verified (P8: every blob re-hashed, sealed ones decrypted and authenticated, the
//! signature and provenance checked against the keys trusted now).

use steward_core::domain::Digest;
use steward_store::AliasMove;

use crate::error::ApiError;
use crate::state::App;

/// Bound on a model file loaded into memory to serve.
pub const MODEL_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;

/// The latest move of every alias.
pub async fn current_aliases(app: &App) -> Result<Vec<AliasMove>, ApiError> {
    Ok(app.store.current_aliases().await?)
}

/// A deployed version's model file, verified, with what serving it needs to know.
pub struct ServedArtifact {
    pub version_label: String,
    pub name: String,
    pub bytes: Vec<u8>,
    /// The version's input and output schema (classifications), when it declares one.
    pub schema: Option<steward_core::schema::DataSchema>,
}

/// A deployed version's model file. The artifact is the version's only one whose name
/// `pick` accepts; none, or several, is an error.
pub async fn verified_artifact(
    app: &App,
    digest: &str,
    pick: impl Fn(&str) -> bool,
) -> Result<ServedArtifact, String> {
    let version = app
        .store
        .version(digest)
        .await
        .map_err(|err| err.to_string())?
        .ok_or_else(|| format!("version `{digest}` is not registered"))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&version.manifest).map_err(|err| err.to_string())?;
    let candidates: Vec<(String, String)> = manifest["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|artifact| {
            let name = artifact["name"].as_str()?;
            let digest = artifact["digest"].as_str()?;
            pick(name).then(|| (name.to_owned(), digest.to_owned()))
        })
        .collect();
    let [(name, blob)] = candidates.as_slice() else {
        return Err(format!(
            "version `{digest}` has {} model file(s) this runtime can serve; it needs exactly one",
            candidates.len()
        ));
    };
    let verification = crate::routes::registry::verify_contents(app, &version)
        .await
        .map_err(|err| err.to_string())?;
    if !verification.failures.is_empty() {
        return Err(format!(
            "version `{digest}` failed verification, so it is not loaded: {}",
            verification.failure_text()
        ));
    }
    let blob = Digest::parse(blob).map_err(|err| err.to_string())?;
    let bytes = crate::routes::blobs::read_blob(app, &blob, MODEL_BYTES_MAX)
        .await
        .map_err(|err| format!("`{name}`: {err}"))?;
    let schema = match manifest.get("schema") {
        None | Some(serde_json::Value::Null) => None,
        Some(schema) => Some(
            serde_json::from_value(schema.clone())
                .map_err(|err| format!("version `{digest}`: its schema does not parse: {err}"))?,
        ),
    };
    Ok(ServedArtifact {
        version_label: version.version_label,
        name: name.clone(),
        bytes,
        schema,
    })
}

/// A served deployment: `(environment, business unit, model)`.
pub type Target = (String, String, String);

/// A token that may pin versions by the versioned path, and where (the policy's
/// `version.pin` for its user, with the user's roles as they are now).
pub struct PinGrant {
    pub token_id: String,
    pub user: String,
    pub secret_hash: String,
    /// `(environment, business unit, model)`.
    pub grants: Vec<(String, String, String)>,
}

/// Who may pin which of `deployments` (`(environment, business unit, model)`), for every
/// token not revoked, decided once per user and token issuer (the policies see both).
pub async fn pin_grants(
    app: &App,
    deployments: &[(String, String, String)],
) -> Result<Vec<PinGrant>, ApiError> {
    use crate::authz::{Facts, RoleScope};
    let mut targets = Vec::new();
    for (environment, unit, model) in deployments {
        let (Some(found), Some(env)) = (
            app.store.model(unit, model).await?,
            app.store.environment(environment).await?,
        ) else {
            continue;
        };
        targets.push((
            (environment.clone(), unit.clone(), model.clone()),
            crate::routes::registry::facts_of(&found),
            env.production,
        ));
    }
    // (user, token issuer) → the deployments they may pin.
    let mut decided: std::collections::HashMap<(String, String), Vec<Target>> =
        std::collections::HashMap::new();
    let mut grants = Vec::new();
    for token in app.store.active_tokens().await? {
        let (token_id, secret_hash) = (token.id.clone(), token.secret_hash.clone());
        let user = token.user_name.clone();
        let key = (user.clone(), token.created_by.clone());
        if !decided.contains_key(&key) {
            let mut caller = crate::authz::token_caller(app, token).await?;
            caller.action = steward_policy::Action::VersionPin;
            let allowed = targets
                .iter()
                .filter(|(target, facts, production)| {
                    crate::authz::decide(
                        app,
                        &caller,
                        steward_policy::Resource::Model(facts.clone()),
                        &RoleScope::Unit(target.1.clone()),
                        Facts {
                            production: Some(*production),
                            ..Facts::default()
                        },
                    )
                    .allowed
                })
                .map(|(target, _, _)| target.clone())
                .collect();
            decided.insert(key.clone(), allowed);
        }
        let allowed = decided.get(&key).cloned().unwrap_or_default();
        if !allowed.is_empty() {
            grants.push(PinGrant {
                token_id,
                user,
                secret_hash,
                grants: allowed,
            });
        }
    }
    Ok(grants)
}
