//! Models, versions, approvals, aliases, blobs and the inventory search.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::audit::EventDraft;
use steward_core::docs::ModelFacts as DocFacts;
use steward_core::domain::{Category, Digest, Name, RiskClass, Tier};
use steward_core::manifest::{ModelCard, VersionManifest};
use steward_policy::{ModelFacts, Resource};
use steward_store::{AliasMove, SearchFilter};

use super::{ApiPath, ApiQuery, JsonBody, commit, created, ok, receipt};
use crate::authz::{Caller, Facts, RoleScope, authorize};
use crate::error::ApiError;
use crate::state::App;

fn bad(err: impl ToString) -> ApiError {
    ApiError::BadRequest(err.to_string())
}

pub(crate) fn facts_of(model: &steward_store::Model) -> ModelFacts {
    ModelFacts {
        business_unit: model.business_unit.clone(),
        name: model.name.clone(),
        owner: model.owner.clone(),
        risk_class: model.risk_class.clone(),
        tier: model.tier,
        category: model.category.clone(),
    }
}

fn model_json(model: &steward_store::Model) -> Value {
    json!({
        "business_unit": model.business_unit, "name": model.name, "owner": model.owner,
        "description": model.description, "category": model.category,
        "risk_class": model.risk_class, "tier": model.tier,
        "created_at": model.created_at, "created_by": model.created_by,
    })
}

fn version_json(version: &steward_store::Version) -> Value {
    let manifest: Value = serde_json::from_str(&version.manifest).unwrap_or(Value::Null);
    json!({
        "digest": version.digest, "business_unit": version.business_unit, "model": version.model,
        "version": version.version_label, "author": version.author, "registered_at": version.registered_at,
        "deprecated": version.deprecated_at.is_some(), "deprecated_at": version.deprecated_at,
        "deprecated_by": version.deprecated_by, "deprecation_reason": version.deprecation_reason,
        "manifest": manifest,
    })
}

fn alias_json(alias: &AliasMove) -> Value {
    json!({
        "environment": alias.environment, "digest": alias.digest, "previous_digest": alias.previous_digest,
        "moved_by": alias.moved_by, "moved_at": alias.moved_at, "reason": alias.reason,
        "approval": alias.approval, "audit_seq": alias.audit_seq,
    })
}

pub(super) fn event(
    caller: &Caller,
    subject: String,
    payload: Value,
    decision: &steward_policy::Decision,
) -> EventDraft {
    EventDraft {
        actor: caller.name.clone(),
        action: caller.action.as_str().to_owned(),
        subject,
        payload,
        decision: caller.decision_json(decision),
    }
}

pub(super) async fn load_model(
    app: &App,
    unit: &str,
    model: &str,
) -> Result<steward_store::Model, ApiError> {
    app.store
        .model(unit, model)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("model `{unit}/{model}`")))
}

pub(super) async fn load_version(
    app: &App,
    digest: &str,
) -> Result<(steward_store::Version, steward_store::Model), ApiError> {
    let digest = Digest::parse(digest).map_err(bad)?;
    let version = app
        .store
        .version(digest.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("version `{digest}`")))?;
    let model = load_model(app, &version.business_unit, &version.model).await?;
    Ok((version, model))
}

/// Loads a version and asks the policy whether the caller may take the route's action on it
/// (no facts beyond the version and its model).
async fn authorize_version(
    app: &App,
    caller: &Caller,
    digest: &str,
) -> Result<(steward_store::Version, steward_policy::Decision), ApiError> {
    let (version, model) = load_version(app, digest).await?;
    let decision = authorize(
        app,
        caller,
        version_resource(&version, &model),
        RoleScope::Unit(model.business_unit.clone()),
        Facts::default(),
    )
    .await?;
    Ok((version, decision))
}

pub(super) fn version_resource(
    version: &steward_store::Version,
    model: &steward_store::Model,
) -> Resource {
    Resource::Version {
        digest: version.digest.clone(),
        author: version.author.clone(),
        deprecated: version.deprecated_at.is_some(),
        model: facts_of(model),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModel {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub business_unit: String,
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub description: String,
    #[schema(
        pattern = "^(tabular_classification|regression|forecasting|nlp|vision|generative|recommendation|anomaly_detection|other)$"
    )]
    pub category: String,
    #[schema(pattern = "^(prohibited|high|limited|minimal)$")]
    pub risk_class: String,
    #[schema(minimum = 1, maximum = 3)]
    pub tier: i64,
}

pub async fn create_model(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<NewModel>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Parse every field and report every problem at once.
    let mut problems = Vec::new();
    let unit = Name::parse("business unit", &body.business_unit)
        .map_err(|err| problems.push(err.to_string()))
        .ok();
    let name = Name::parse("model", &body.name)
        .map_err(|err| problems.push(err.to_string()))
        .ok();
    let category = body
        .category
        .parse::<Category>()
        .map_err(|err| problems.push(err.to_string()))
        .ok();
    let risk_class = body
        .risk_class
        .parse::<RiskClass>()
        .map_err(|err| problems.push(err.to_string()))
        .ok();
    let tier = Tier::new(body.tier)
        .map_err(|err| problems.push(err.to_string()))
        .ok();
    let (Some(unit), Some(name), Some(category), Some(risk_class), Some(tier)) =
        (unit, name, category, risk_class, tier)
    else {
        return Err(ApiError::BadRequest(problems.join("; ")));
    };
    if app.store.business_unit(unit.as_str()).await?.is_none() {
        return Err(ApiError::NotFound(format!("business unit `{unit}`")));
    }
    let decision = authorize(
        &app,
        &caller,
        Resource::BusinessUnit {
            name: unit.to_string(),
        },
        RoleScope::Unit(unit.to_string()),
        Facts::default(),
    )
    .await?;
    let owner = body.owner.unwrap_or_else(|| caller.name.clone());
    if app.store.user(&owner).await?.is_none() {
        return Err(ApiError::NotFound(format!("user `{owner}` (owner)")));
    }
    let model = steward_store::Model {
        business_unit: unit.to_string(),
        name: name.to_string(),
        owner,
        description: body.description,
        category: category.as_str().to_owned(),
        risk_class: risk_class.as_str().to_owned(),
        tier: i64::from(tier.get()),
        created_at: app.now(),
        created_by: caller.name.clone(),
    };
    let mut tx = app.store.begin().await?;
    tx.insert_model(&model).await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("model:{unit}/{name}"),
            model_json(&model),
            &decision,
        ),
    )
    .await?;
    Ok(created(
        json!({"model": model_json(&model), "audit": receipt(&entry)}),
    ))
}

pub async fn show_model(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let aliases: Vec<Value> = app
        .store
        .aliases(&unit, &name, None)
        .await?
        .iter()
        .map(alias_json)
        .collect();
    let versions: Vec<Value> = app
        .store
        .versions(&unit, &name)
        .await?
        .iter()
        .map(|version| json!({"digest": version.digest, "version": version.version_label, "deprecated": version.deprecated_at.is_some(), "registered_at": version.registered_at}))
        .collect();
    Ok(ok(
        json!({"model": model_json(&model), "versions": versions, "aliases": aliases}),
    ))
}

pub async fn list_versions(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let versions: Vec<Value> = app
        .store
        .versions(&unit, &name)
        .await?
        .iter()
        .map(version_json)
        .collect();
    Ok(ok(json!({ "items": versions })))
}

/// The stored record of a new version (and its manifest as JSON, for the audit payload).
fn new_version(
    digest: String,
    unit: &str,
    name: &str,
    manifest: &VersionManifest,
    author: &str,
    now: String,
    package: Option<String>,
) -> Result<(steward_store::Version, Value), ApiError> {
    let manifest_value = serde_json::to_value(manifest).map_err(ApiError::internal)?;
    let version = steward_store::Version {
        digest,
        business_unit: unit.to_owned(),
        model: name.to_owned(),
        version_label: manifest.version.clone().unwrap_or_default(),
        manifest: steward_core::canonical::to_string(&manifest_value),
        card_text: manifest
            .model_card
            .as_ref()
            .map(ModelCard::text)
            .unwrap_or_default(),
        author: author.to_owned(),
        registered_at: now,
        deprecated_at: None,
        deprecated_by: None,
        deprecation_reason: None,
        package,
    };
    Ok((version, manifest_value))
}

/// What every registration must satisfy, plain or packaged: a well-formed manifest, the
/// documentation its model's templates require (every missing field listed), and every
/// artifact already in the blob store with the stated size.
async fn check_registration(
    app: &App,
    model: &steward_store::Model,
    manifest: &VersionManifest,
) -> Result<(), ApiError> {
    manifest.check().map_err(|err| ApiError::Unprocessable {
        message: err.to_string(),
        details: json!({"problems": err.problems}),
    })?;
    let facts = DocFacts {
        risk_class: model.risk_class.parse().map_err(ApiError::internal)?,
        tier: Tier::new(model.tier).map_err(ApiError::internal)?,
        category: model.category.parse().map_err(ApiError::internal)?,
    };
    let missing = app.templates.missing_fields(facts, manifest);
    if !missing.is_empty() {
        let fields: Vec<&str> = missing.iter().map(|field| field.field.as_str()).collect();
        let message = format!(
            "documentation is incomplete for a {} risk, tier {}, {} model: missing {}",
            model.risk_class,
            model.tier,
            model.category,
            fields.join(", ")
        );
        let details: Vec<Value> = missing
            .iter()
            .map(|field| json!({"field": field.field, "required_by": field.required_by}))
            .collect();
        return Err(ApiError::Unprocessable {
            message,
            details: json!({ "missing": details }),
        });
    }
    // The classification policy's rules for every environment (P6); rules for one
    // environment are checked when a version is deployed there.
    let violations = app.classification.violations(
        manifest.schema.as_ref(),
        &model.business_unit,
        steward_core::schema::Scope::Everywhere,
    );
    if !violations.is_empty() {
        let messages: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        return Err(ApiError::Unprocessable {
            message: format!(
                "the classification policy refuses this version: {}",
                messages.join("; ")
            ),
            details: json!({ "violations": violations }),
        });
    }
    let mut absent = Vec::new();
    for artifact in &manifest.artifacts {
        let digest = Digest::parse(&artifact.digest).map_err(bad)?;
        match app.store.blob(digest.as_str()).await? {
            Some(blob) if blob.size_bytes as u64 == artifact.size_bytes => {}
            Some(blob) => absent.push(format!(
                "{} (stored blob has {} bytes, manifest says {})",
                artifact.name, blob.size_bytes, artifact.size_bytes
            )),
            None => absent.push(format!("{} ({})", artifact.name, artifact.digest)),
        }
    }
    if !absent.is_empty() {
        let message = format!(
            "artifacts must be uploaded before registration: {}",
            absent.join(", ")
        );
        return Err(ApiError::Unprocessable {
            message,
            details: json!({ "missing_blobs": absent }),
        });
    }
    Ok(())
}

pub async fn register_version(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
    JsonBody(manifest): JsonBody<VersionManifest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    check_registration(&app, &model, &manifest).await?;
    let unit_name = Name::parse("business unit", &unit).map_err(bad)?;
    let model_name = Name::parse("model", &name).map_err(bad)?;
    let digest = manifest.digest(&unit_name, &model_name);
    let (version, manifest_value) = new_version(
        digest.to_string(),
        &unit,
        &name,
        &manifest,
        &caller.name,
        app.now(),
        None,
    )?;
    let mut tx = app.store.begin().await?;
    tx.insert_version(&version).await?;
    let payload = json!({"model": format!("{unit}/{name}"), "version": version.version_label, "artifacts": manifest_value["artifacts"]});
    let entry = commit(
        &app,
        tx,
        event(&caller, format!("version:{digest}"), payload, &decision),
    )
    .await?;
    Ok(created(
        json!({"digest": digest.as_str(), "version": version.version_label, "audit": receipt(&entry)}),
    ))
}

pub async fn show_version(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (version, _) = authorize_version(&app, &caller, &digest).await?;
    Ok(ok(version_json(&version)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deprecation {
    #[schema(min_length = 1)]
    pub reason: String,
}

pub async fn deprecate_version(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
    JsonBody(body): JsonBody<Deprecation>,
) -> Result<Json<Value>, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(bad("reason must not be empty"));
    }
    let (version, decision) = authorize_version(&app, &caller, &digest).await?;
    let mut tx = app.store.begin().await?;
    if !tx
        .deprecate_version(&version.digest, &body.reason, &caller.name, &app.now())
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "version `{}` is already deprecated",
            version.digest
        )));
    }
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("version:{}", version.digest),
            json!({"reason": body.reason}),
            &decision,
        ),
    )
    .await?;
    Ok(ok(
        json!({"digest": version.digest, "deprecated": true, "audit": receipt(&entry)}),
    ))
}

pub async fn list_approvals(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (version, _) = authorize_version(&app, &caller, &digest).await?;
    let approvals: Vec<Value> = app
        .store
        .approvals(&version.digest)
        .await?
        .into_iter()
        .map(|approval| json!({"id": approval.id, "approver": approval.approver, "comment": approval.comment, "created_at": approval.created_at}))
        .collect();
    Ok(ok(json!({ "items": approvals })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApproval {
    #[serde(default)]
    pub comment: String,
}

pub async fn approve_version(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
    JsonBody(body): JsonBody<NewApproval>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (version, decision) = authorize_version(&app, &caller, &digest).await?;
    let mut tx = app.store.begin().await?;
    tx.insert_approval(&version.digest, &caller.name, &body.comment, &app.now())
        .await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("version:{}", version.digest),
            json!({"comment": body.comment}),
            &decision,
        ),
    )
    .await?;
    Ok(created(
        json!({"digest": version.digest, "approver": caller.name, "audit": receipt(&entry)}),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AsOf {
    /// An RFC 3339 time or a date (midnight UTC).
    #[param(
        pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
    )]
    pub as_of: Option<String>,
}

fn parse_as_of(as_of: &Option<String>) -> Result<Option<String>, ApiError> {
    match as_of {
        None => Ok(None),
        Some(text) => crate::clock::parse(text)
            .map(|time| Some(crate::clock::format(time)))
            .ok_or_else(|| bad(format!("as_of `{text}` is not an RFC 3339 time or a date"))),
    }
}

pub async fn list_aliases(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<AsOf>,
) -> Result<Json<Value>, ApiError> {
    let as_of = parse_as_of(&query.as_of)?;
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let aliases: Vec<Value> = app
        .store
        .aliases(&unit, &name, as_of.as_deref())
        .await?
        .iter()
        .map(alias_json)
        .collect();
    Ok(ok(json!({"as_of": as_of, "items": aliases})))
}

pub async fn alias_history(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name, environment)): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<AsOf>,
) -> Result<Json<Value>, ApiError> {
    let as_of = parse_as_of(&query.as_of)?;
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    if app.store.environment(&environment).await?.is_none() {
        return Err(ApiError::NotFound(format!("environment `{environment}`")));
    }
    let history: Vec<Value> = app
        .store
        .alias_history(&unit, &name, &environment)
        .await?
        .iter()
        .map(alias_json)
        .collect();
    let at = match &as_of {
        Some(as_of) => app
            .store
            .alias(&unit, &name, &environment, Some(as_of))
            .await?
            .map(|alias| alias_json(&alias)),
        None => None,
    };
    Ok(ok(
        json!({"environment": environment, "as_of": as_of, "at": at, "items": history}),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// At most `page_items_max` (default 10,000).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

pub async fn model_audit(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<Limit>,
) -> Result<Json<Value>, ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let limit = crate::routes::page_limit(&app, query.limit)?;
    let entries = app
        .store
        .audit_entries_for(&format!("model:{unit}/{name}"), limit)
        .await?;
    let items: Vec<Value> = entries.iter().map(super::audit::entry_json).collect();
    Ok(ok(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Free text, matched against name, description and model card.
    pub q: Option<String>,
    pub business_unit: Option<String>,
    #[param(pattern = "^(prohibited|high|limited|minimal)$")]
    pub risk_class: Option<String>,
    #[param(
        pattern = "^(tabular_classification|regression|forecasting|nlp|vision|generative|recommendation|anomaly_detection|other)$"
    )]
    pub category: Option<String>,
    pub owner: Option<String>,
    #[param(minimum = 1, maximum = 3)]
    pub tier: Option<i64>,
    /// At most `page_items_max` (default 10,000).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
}

/// Only business units where the caller holds a role (or all, with a global role).
pub async fn search(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(risk_class) = &query.risk_class {
        risk_class.parse::<RiskClass>().map_err(bad)?;
    }
    if let Some(category) = &query.category {
        category.parse::<Category>().map_err(bad)?;
    }
    if let Some(tier) = query.tier {
        Tier::new(tier).map_err(bad)?;
    }
    authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Any,
        Facts::default(),
    )
    .await?;
    let has_global = !caller.roles(&RoleScope::Global).is_empty();
    let mut visible: Option<Vec<String>> = if has_global {
        None
    } else {
        let units: BTreeMap<String, ()> = caller
            .bindings
            .iter()
            .map(|binding| (binding.scope.as_str().to_owned(), ()))
            .collect();
        Some(units.into_keys().collect())
    };
    if let Some(unit) = &query.business_unit {
        visible = Some(match visible {
            None => vec![unit.clone()],
            Some(units) => units
                .into_iter()
                .filter(|visible_unit| visible_unit == unit)
                .collect(),
        });
    }
    let filter = SearchFilter {
        business_units: visible,
        risk_class: query.risk_class,
        category: query.category,
        owner: query.owner,
        tier: query.tier,
        text: query.q.filter(|text| !text.trim().is_empty()),
        limit: crate::routes::page_limit(&app, query.limit)?,
    };
    let models: Vec<Value> = app
        .store
        .search_models(&filter)
        .await?
        .iter()
        .map(model_json)
        .collect();
    Ok(ok(json!({ "items": models })))
}

pub async fn list_models(state: State<App>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let query = SearchQuery {
        q: None,
        business_unit: None,
        risk_class: None,
        category: None,
        owner: None,
        tier: None,
        limit: None,
    };
    search(state, caller, ApiQuery(query)).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPackage {
    /// The model manifest's bytes, base64: its SHA-256 becomes the version's id.
    #[schema(min_length = 1)]
    pub manifest: String,
    /// The governance referrer manifest's bytes, base64.
    #[schema(min_length = 1)]
    pub governance: String,
    /// The tag the layout carried (`org.opencontainers.image.ref.name`).
    #[schema(min_length = 1)]
    pub tag: String,
}

fn decode_base64(what: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
        .map_err(|err| bad(format!("{what} is not base64: {err}")))
}

/// Stores manifest bytes as a blob under their own digest (content addressing).
async fn store_manifest_blob(
    app: &App,
    bytes: &[u8],
    caller: &str,
    tx: &mut steward_store::AuditedTx,
) -> Result<Digest, ApiError> {
    let expected = Digest::of_bytes(bytes);
    if app.store.sealed_blob(expected.as_str()).await?.is_some() {
        // Someone sealed these bytes already: never write them back in plaintext.
        return Ok(expected);
    }
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes.to_vec())]);
    let (digest, size) = app
        .blobs
        .put(chunks, Some(&expected), bytes.len() as u64)
        .await
        .map_err(ApiError::internal)?;
    tx.insert_blob(digest.as_str(), size, caller, &app.now())
        .await?;
    Ok(digest)
}

/// Registers a version from an OCI package pushed blob by blob: its id is the model
/// manifest's digest, its documentation comes from the governance referrer.
pub async fn register_package(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<NewPackage>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let model = load_model(&app, &unit, &name).await?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts::default(),
    )
    .await?;
    let manifest_bytes = decode_base64("manifest", &body.manifest)?;
    let governance_bytes = decode_base64("governance", &body.governance)?;
    let facts =
        steward_package::inspect::inspect(&manifest_bytes, &governance_bytes).map_err(|err| {
            ApiError::Unprocessable {
                message: err.to_string(),
                details: json!({"problems": err.problems}),
            }
        })?;
    // The blobs that are not artifacts must be here too.
    let mut absent = Vec::new();
    let not_artifacts = [
        &facts.config,
        &facts.governance_config,
        &facts.governance_document,
    ]
    .into_iter()
    .chain(facts.governance_extra.iter());
    for blob in not_artifacts {
        match app.store.blob(blob.digest.as_str()).await? {
            Some(stored) if stored.size_bytes as u64 == blob.size => {}
            _ => absent.push(format!("{} ({})", blob.media_type, blob.digest)),
        }
    }
    if !absent.is_empty() {
        let message = format!(
            "blobs must be uploaded before registration: {}",
            absent.join(", ")
        );
        return Err(ApiError::Unprocessable {
            message,
            details: json!({ "missing_blobs": absent }),
        });
    }
    let signed_by = check_package_signature(&app, &unit, &name, &facts).await?;
    let provenance_by = check_provenance(&app, &unit, &facts).await?;
    if signed_by.is_some() && provenance_by.is_none() {
        // Steward signs provenance with every signed build; without it, it was removed.
        return Err(ApiError::Unprocessable {
            message: "the package is signed but carries no SLSA provenance; build it again with `steward package build --sign-key`".to_owned(),
            details: Value::Null,
        });
    }
    let document_bytes = super::blobs::read_blob(
        &app,
        &facts.governance_document.digest,
        steward_package::inspect::MANIFEST_BYTES_MAX as u64,
    )
    .await
    .map_err(ApiError::internal)?;
    let mut manifest: VersionManifest =
        serde_json::from_slice(&document_bytes).map_err(|err| ApiError::Unprocessable {
            message: format!("the governance document is not a version manifest: {err}"),
            details: Value::Null,
        })?;
    manifest.artifacts = facts
        .layers
        .iter()
        .map(|layer| steward_core::manifest::Artifact {
            name: layer.path.clone().unwrap_or_default(),
            digest: layer.digest.to_string(),
            size_bytes: layer.size,
            media_type: Some(layer.media_type.clone()),
        })
        .collect();
    check_registration(&app, &model, &manifest).await?;
    let mut package = json!({
        "tag": body.tag,
        "governance_digest": facts.governance_digest.as_str(),
        "config_digest": facts.config.digest.as_str(),
        "signed_by": signed_by,
        "provenance_signed_by": provenance_by,
        "sbom_digest": facts.governance_extra.iter().find(|blob| blob.media_type == steward_package::sbom::SBOM_MEDIA_TYPE).map(|blob| blob.digest.to_string()),
    });
    // The scan against the advisories known now is stored with the version; deployment
    // re-scans against the advisories known then.
    let findings = scan_version(&app, Some(&package.to_string())).await?;
    package["scan"] = json!(findings.iter().map(|finding| json!({
        "package": finding.package, "version": finding.version, "advisory": finding.advisory,
        "severity": finding.severity.name(), "fixed": finding.fixed,
    })).collect::<Vec<_>>());
    let (version, manifest_value) = new_version(
        facts.manifest_digest.to_string(),
        &unit,
        &name,
        &manifest,
        &caller.name,
        app.now(),
        Some(package.to_string()),
    )?;
    // A version that exists already is a conflict before any weights are sealed.
    if app.store.version(&version.digest).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "version `{}` is already registered",
            version.digest
        )));
    }
    // Weights are stored encrypted at rest (P5): any that arrived in plaintext are sealed now.
    let mut pending = Vec::new();
    for layer in facts
        .layers
        .iter()
        .filter(|layer| steward_package::classify::is_weight_media_type(&layer.media_type))
    {
        if let Some(seal) = super::blobs::seal_stored(&app, &layer.digest).await? {
            pending.push(seal);
        }
    }
    let registered = async {
        let mut tx = app.store.begin().await?;
        store_manifest_blob(&app, &manifest_bytes, &caller.name, &mut tx).await?;
        store_manifest_blob(&app, &governance_bytes, &caller.name, &mut tx).await?;
        tx.insert_version(&version).await?;
        let mut recorded = Vec::new();
        for seal in &pending {
            // A concurrent sealing of the same blob may have won; its row stands.
            if let Some(row) = super::blobs::record_sealed(&app, &mut tx, seal).await? {
                recorded.push(row);
            }
        }
        let payload = json!({"model": format!("{unit}/{name}"), "version": version.version_label, "package": package, "artifacts": manifest_value["artifacts"],
            "sealed_now": recorded.iter().map(|row| json!({"digest": row.digest, "sealed": super::blobs::sealed_json(row)})).collect::<Vec<_>>()});
        let entry = commit(
            &app,
            tx,
            event(
                &caller,
                format!("version:{}", version.digest),
                payload,
                &decision,
            ),
        )
        .await?;
        Ok::<_, ApiError>((entry, recorded))
    }
    .await;
    let (entry, sealed) = match registered {
        Ok(done) => done,
        Err(err) => {
            for seal in &pending {
                seal.discard(&app).await;
            }
            return Err(err);
        }
    };
    for seal in &pending {
        if !sealed
            .iter()
            .any(|row| row.digest == seal.digest().as_str())
        {
            seal.discard(&app).await;
        }
    }
    super::blobs::finish_sealing(&app, &sealed).await?;
    Ok(created(
        json!({"digest": version.digest, "version": version.version_label, "package": package, "audit": receipt(&entry)}),
    ))
}

/// The package's signature, checked against the keys trusted for `unit` (`trust/<unit>/`)
/// and for every unit (`trust/`): it must verify, and what it signed must be exactly the
/// package's files. Returns the signing key's fingerprint (`None`: unsigned, when allowed).
async fn check_package_signature(
    app: &App,
    unit: &str,
    model: &str,
    facts: &steward_package::inspect::PackageFacts,
) -> Result<Option<String>, ApiError> {
    use steward_package::signing;
    let refuse = |message: String| ApiError::Unprocessable {
        message,
        details: Value::Null,
    };
    let Some(bundle_ref) = facts
        .governance_extra
        .iter()
        .find(|blob| blob.media_type == signing::BUNDLE_MEDIA_TYPE)
    else {
        if app.config.require_signed_packages {
            return Err(refuse(format!(
                "package is not signed; build it with `steward package build --sign-key KEY`, with the public key trusted for `{unit}` (trust/ or trust/{unit}/)"
            )));
        }
        return Ok(None);
    };
    let keys = trusted_keys(app, unit)?;
    let bytes = super::blobs::read_blob(
        app,
        &bundle_ref.digest,
        steward_package::inspect::MANIFEST_BYTES_MAX as u64,
    )
    .await
    .map_err(ApiError::internal)?;
    let bundle: Value = serde_json::from_slice(&bytes)
        .map_err(|err| refuse(format!("the package signature is not JSON: {err}")))?;
    let (_, key_idx) = signing::verify_package(facts, &bundle, &keys)
        .map_err(|err| refuse(format!("package signature refused: {err}")))?;
    // The signature names the model it was made for; it is not valid for another one.
    let signed_for = signing::subject_name(&bundle).unwrap_or_default();
    if signed_for != format!("{unit}/{model}") {
        return Err(refuse(format!(
            "package was signed for `{signed_for}`, not `{unit}/{model}`; build it with `--name {unit}/{model}`"
        )));
    }
    Ok(keys.get(key_idx).map(signing::key_fingerprint))
}

/// Keys trusted for `unit`: `trust/<unit>/` and `trust/`.
fn trusted_keys(app: &App, unit: &str) -> Result<Vec<p256::ecdsa::VerifyingKey>, ApiError> {
    use steward_package::signing;
    let trust = app.config.data_dir.join(crate::state::TRUST_DIR);
    let mut keys = signing::load_trusted_keys(&trust.join(unit))
        .map_err(|err| ApiError::internal(std::io::Error::other(err.to_string())))?;
    keys.extend(
        signing::load_trusted_keys(&trust)
            .map_err(|err| ApiError::internal(std::io::Error::other(err.to_string())))?,
    );
    Ok(keys)
}

/// The package's SLSA provenance, when it has one: signed by a key trusted for `unit` and
/// about this package's model manifest. Returns the signing key's fingerprint.
async fn check_provenance(
    app: &App,
    unit: &str,
    facts: &steward_package::inspect::PackageFacts,
) -> Result<Option<String>, ApiError> {
    use steward_package::provenance;
    let Some(blob) = facts
        .governance_extra
        .iter()
        .find(|blob| blob.media_type == provenance::PROVENANCE_MEDIA_TYPE)
    else {
        return Ok(None);
    };
    let keys = trusted_keys(app, unit)?;
    let bytes = super::blobs::read_blob(
        app,
        &blob.digest,
        steward_package::inspect::MANIFEST_BYTES_MAX as u64,
    )
    .await
    .map_err(ApiError::internal)?;
    let refuse = |message: String| ApiError::Unprocessable {
        message,
        details: Value::Null,
    };
    let envelope: Value = serde_json::from_slice(&bytes)
        .map_err(|err| refuse(format!("the package's provenance is not JSON: {err}")))?;
    let index = provenance::verify(&envelope, &keys, &facts.manifest_digest)
        .map_err(|err| refuse(format!("package provenance refused: {err}")))?;
    Ok(keys
        .get(index)
        .map(steward_package::signing::key_fingerprint))
}

/// What `steward package pull` needs to give a packaged version back byte for byte.
pub async fn show_package(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (version, _) = authorize_version(&app, &caller, &digest).await?;
    let Some(package) = version.package.as_deref() else {
        return Err(ApiError::NotFound(format!(
            "package of version `{}` (it was registered from a plain manifest)",
            version.digest
        )));
    };
    let package: Value = serde_json::from_str(package).map_err(ApiError::internal)?;
    let manifest_digest = Digest::parse(&version.digest).map_err(ApiError::internal)?;
    let governance_digest =
        Digest::parse(package["governance_digest"].as_str().unwrap_or_default())
            .map_err(ApiError::internal)?;
    let limit = steward_package::inspect::MANIFEST_BYTES_MAX as u64;
    let manifest = super::blobs::read_blob(&app, &manifest_digest, limit)
        .await
        .map_err(ApiError::internal)?;
    let governance = super::blobs::read_blob(&app, &governance_digest, limit)
        .await
        .map_err(ApiError::internal)?;
    let encode =
        |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    Ok(ok(
        json!({"digest": version.digest, "tag": package["tag"], "manifest": encode(&manifest), "governance": encode(&governance)}),
    ))
}

/// What re-verifying a version found: how many blobs and manifests were checked, which key
/// signed it, and every failure (blob or check, with the problem).
pub(crate) struct Verification {
    pub checked: usize,
    pub signed_by: Value,
    pub failures: Vec<Value>,
}

impl Verification {
    /// One line naming every failure, for refusals.
    pub fn failure_text(&self) -> String {
        self.failures
            .iter()
            .map(|failure| {
                let what = failure["blob"]
                    .as_str()
                    .or(failure["check"].as_str())
                    .unwrap_or("?");
                format!(
                    "`{what}`: {}",
                    failure["problem"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Re-verifies everything a version is made of, as loading it for serving does (P8): every
/// blob re-hashed (sealed ones decrypted and authenticated), and for a package the manifests
/// re-read and the signature and provenance checked again against the keys trusted now.
pub(crate) async fn verify_contents(
    app: &App,
    version: &steward_store::Version,
) -> Result<Verification, ApiError> {
    let app = app.clone();
    let mut failures: Vec<Value> = Vec::new();
    let mut checked = 0usize;
    let mut signed_by = Value::Null;
    let manifest: Value = serde_json::from_str(&version.manifest).map_err(ApiError::internal)?;
    let mut blobs: Vec<(String, String)> = manifest["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|artifact| {
            (
                artifact["name"].as_str().unwrap_or_default().to_owned(),
                artifact["digest"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    if let Some(package) = version.package.as_deref() {
        let package: Value = serde_json::from_str(package).map_err(ApiError::internal)?;
        let governance = package["governance_digest"].as_str().unwrap_or_default();
        let limit = steward_package::inspect::MANIFEST_BYTES_MAX as u64;
        let read = |digest: String| {
            let app = app.clone();
            async move {
                let digest = Digest::parse(&digest).map_err(|err| err.to_string())?;
                super::blobs::read_blob(&app, &digest, limit)
                    .await
                    .map_err(|err| err.to_string())
            }
        };
        match (
            read(version.digest.clone()).await,
            read(governance.to_owned()).await,
        ) {
            (Ok(manifest_bytes), Ok(governance_bytes)) => {
                checked += 2;
                match steward_package::inspect::inspect(&manifest_bytes, &governance_bytes) {
                    Ok(facts) => {
                        for blob in [
                            &facts.config,
                            &facts.governance_config,
                            &facts.governance_document,
                        ]
                        .into_iter()
                        .chain(facts.governance_extra.iter())
                        {
                            blobs.push((blob.media_type.clone(), blob.digest.to_string()));
                        }
                        match check_package_signature(
                            &app,
                            &version.business_unit,
                            &version.model,
                            &facts,
                        )
                        .await
                        {
                            Ok(key) => signed_by = json!(key),
                            Err(err) => failures
                                .push(json!({"check": "signature", "problem": err.to_string()})),
                        }
                        if let Err(err) =
                            check_provenance(&app, &version.business_unit, &facts).await
                        {
                            failures
                                .push(json!({"check": "provenance", "problem": err.to_string()}));
                        }
                    }
                    Err(err) => {
                        failures.push(json!({"check": "manifest", "problem": err.to_string()}))
                    }
                }
            }
            (manifest, governance) => {
                for (name, result) in [("manifest", manifest), ("governance manifest", governance)]
                {
                    if let Err(problem) = result {
                        failures.push(json!({"check": name, "problem": problem}));
                    }
                }
            }
        }
    }
    for (name, digest) in &blobs {
        let outcome = match Digest::parse(digest) {
            Ok(digest) => super::blobs::verify_stored(&app, &digest).await,
            Err(err) => Err(err.to_string()),
        };
        match outcome {
            Ok(_) => checked += 1,
            Err(problem) => {
                failures.push(json!({"blob": name, "digest": digest, "problem": problem}))
            }
        }
    }
    Ok(Verification {
        checked,
        signed_by,
        failures,
    })
}

/// `POST /versions/{digest}/verify`: `verify_contents`, audited either way; a failure is a
/// 409 naming each blob or check that failed.
pub async fn verify_version(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (version, decision) = authorize_version(&app, &caller, &digest).await?;
    let Verification {
        checked,
        signed_by,
        failures,
    } = verify_contents(&app, &version).await?;
    let verified = failures.is_empty();
    let payload = json!({"verified": verified, "checked": checked, "signed_by": signed_by, "failures": failures});
    let tx = app.store.begin().await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("version:{}", version.digest),
            payload.clone(),
            &decision,
        ),
    )
    .await?;
    if !verified {
        let text = Verification {
            checked,
            signed_by,
            failures,
        }
        .failure_text();
        return Err(ApiError::Conflict(format!(
            "version `{}` failed verification and must not be loaded: {text}",
            version.digest
        )));
    }
    let mut body = payload;
    body["digest"] = json!(version.digest);
    body["audit"] = receipt(&entry);
    Ok(ok(body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Against {
    /// The version this one would replace (e.g. what an environment's alias points to).
    pub against: String,
}

/// API compatibility (V2): the schema changes from `against` to this version, which of them
/// break callers, and whether the version number announces it (a major bump).
pub async fn compatibility(
    State(app): State<App>,
    caller: Caller,
    ApiPath(digest): ApiPath<String>,
    ApiQuery(query): ApiQuery<Against>,
) -> Result<Json<Value>, ApiError> {
    let (new, _) = authorize_version(&app, &caller, &digest).await?;
    let (old, _) = authorize_version(&app, &caller, &query.against).await?;
    let schema_of = |version: &steward_store::Version| {
        serde_json::from_str::<VersionManifest>(&version.manifest)
            .ok()
            .and_then(|manifest| manifest.schema)
            .ok_or_else(|| ApiError::Unprocessable {
                message: format!(
                    "version `{}` declares no input/output schema to compare",
                    version.digest
                ),
                details: Value::Null,
            })
    };
    let changes = steward_core::schema::compatibility(&schema_of(&old)?, &schema_of(&new)?);
    let breaking = changes.iter().any(|change| change.breaking);
    let major_bump = steward_core::schema::is_major_bump(&old.version_label, &new.version_label);
    let compatible = !breaking || major_bump == Some(true);
    Ok(ok(json!({
        "digest": new.digest, "version": new.version_label,
        "against": old.digest, "against_version": old.version_label,
        "breaking": breaking, "major_bump": major_bump, "compatible": compatible,
        "items": changes,
    })))
}

/// Bound on advisories in one import request (the CLI sends batches).
pub const ADVISORIES_PER_REQUEST_MAX: usize = 2000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryImport {
    /// OSV records, as JSON objects.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
}

/// Imports OSV advisories (replacing records with the same id); every bad record is listed
/// and nothing is stored when any is bad.
pub async fn import_advisories(
    State(app): State<App>,
    caller: Caller,
    JsonBody(body): JsonBody<AdvisoryImport>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let decision = authorize(
        &app,
        &caller,
        Resource::Directory,
        RoleScope::Global,
        Facts::default(),
    )
    .await?;
    if body.records.len() > ADVISORIES_PER_REQUEST_MAX {
        return Err(bad(format!(
            "{} records, more than {ADVISORIES_PER_REQUEST_MAX} per request",
            body.records.len()
        )));
    }
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    for (idx, record) in body.records.iter().enumerate() {
        let text = record.to_string();
        match steward_package::advisories::parse(&text) {
            Ok(advisory) if !advisory.id.is_empty() => parsed.push((advisory.id.clone(), text)),
            Ok(_) => problems.push(format!("record {idx}: no id")),
            Err(err) => problems.push(format!("record {idx}: {err}")),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable {
            message: format!(
                "{} record(s) are not OSV advisories: {}",
                problems.len(),
                problems.join("; ")
            ),
            details: json!({"problems": problems}),
        });
    }
    let mut tx = app.store.begin().await?;
    for (id, text) in &parsed {
        tx.upsert_advisory(id, text, &caller.name, &app.now())
            .await?;
    }
    let ids: Vec<&str> = parsed.iter().map(|(id, _)| id.as_str()).collect();
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            "advisories".to_owned(),
            json!({"count": ids.len(), "ids": ids}),
            &decision,
        ),
    )
    .await?;
    Ok(created(
        json!({"imported": ids.len(), "audit": receipt(&entry)}),
    ))
}

/// Findings for a packaged version against every stored advisory (none for unpackaged ones).
pub(super) async fn scan_version(
    app: &App,
    package: Option<&str>,
) -> Result<Vec<steward_package::advisories::Finding>, ApiError> {
    let Some(sbom_digest) = package
        .and_then(|package| serde_json::from_str::<Value>(package).ok())
        .and_then(|package| {
            package["sbom_digest"]
                .as_str()
                .and_then(|digest| Digest::parse(digest).ok())
        })
    else {
        return Ok(Vec::new());
    };
    let sbom_bytes = super::blobs::read_blob(
        app,
        &sbom_digest,
        steward_package::inspect::MANIFEST_BYTES_MAX as u64,
    )
    .await
    .map_err(ApiError::internal)?;
    let sbom: Value = serde_json::from_slice(&sbom_bytes).map_err(ApiError::internal)?;
    let dependencies: Vec<steward_package::sbom::Dependency> = sbom["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|component| {
            component["purl"]
                .as_str()?
                .strip_prefix("pkg:pypi/")?
                .split_once('@')
        })
        .map(|(name, version)| steward_package::sbom::Dependency {
            name: steward_package::sbom::normalize_name(name),
            version: version.to_owned(),
            source: "sbom".to_owned(),
        })
        .collect();
    let advisories: Vec<steward_package::advisories::Advisory> = app
        .store
        .advisories()
        .await?
        .iter()
        .filter_map(|text| steward_package::advisories::parse(text).ok())
        .collect();
    Ok(steward_package::advisories::scan(
        &dependencies,
        &advisories,
    ))
}

pub(super) fn finding_text(finding: &steward_package::advisories::Finding) -> String {
    format!(
        "{} {} is affected by {} ({}){}",
        finding.package,
        finding.version,
        finding.advisory,
        finding.severity.name(),
        finding
            .fixed
            .as_ref()
            .map(|fixed| format!(", fixed in {fixed}"))
            .unwrap_or_else(|| ", no fixed version yet".to_owned())
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    #[schema(min_length = 1)]
    pub reason: String,
}

/// Manual rollback (V5): the alias goes back to where it pointed before its last move, in
/// one audited step without gates (that version was deployed there already), after the
/// version is re-verified (P8). The data plane follows with its next table swap.
pub async fn rollback_alias(
    State(app): State<App>,
    caller: Caller,
    ApiPath((unit, name, environment)): ApiPath<(String, String, String)>,
    JsonBody(body): JsonBody<Rollback>,
) -> Result<Json<Value>, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(bad("reason must not be empty"));
    }
    let model = load_model(&app, &unit, &name).await?;
    let env = app
        .store
        .environment(&environment)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("environment `{environment}`")))?;
    let decision = authorize(
        &app,
        &caller,
        Resource::Model(facts_of(&model)),
        RoleScope::Unit(unit.clone()),
        Facts {
            production: Some(env.production),
            ..Facts::default()
        },
    )
    .await?;
    let current = app
        .store
        .alias(&unit, &name, &environment, None)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "`{unit}/{name}` has never been deployed to `{environment}`"
            ))
        })?;
    // Rolling back a rollback would put back what was just taken away, without gates; a
    // retried rollback is refused instead, and moving forward again is a promotion.
    if current.approval.as_deref() == Some("rollback") {
        return Err(ApiError::Conflict(format!(
            "`{environment}` was just rolled back; to move it forward again, promote a version"
        )));
    }
    let Some(target) = current.previous_digest.clone() else {
        return Err(ApiError::Conflict(format!(
            "`{environment}` had nothing before its last move, so there is nothing to roll back to"
        )));
    };
    let (version, _) = load_version(&app, &target).await?;
    if version.deprecated_at.is_some() {
        return Err(ApiError::Conflict(format!(
            "the previous version `{target}` is deprecated and is never deployed again; promote another"
        )));
    }
    let verification = verify_contents(&app, &version).await?;
    if !verification.failures.is_empty() {
        let draft = EventDraft {
            actor: caller.name.clone(),
            action: "alias.set.refused".to_owned(),
            subject: format!("model:{unit}/{name}"),
            payload: json!({
                "environment": environment, "digest": target, "reason": "integrity",
                "checked": verification.checked, "failures": verification.failures,
            }),
            decision: caller.decision_json(&decision),
        };
        super::append_event(&app, draft).await?;
        return Err(ApiError::Conflict(format!(
            "version `{target}` failed verification, so it is not deployed: {}",
            verification.failure_text()
        )));
    }
    let mut tx = app.store.begin().await?;
    let now_target = tx.current_alias(&unit, &name, &environment).await?;
    if now_target != current.digest || !tx.version_is_live(&target).await? {
        tx.rollback().await?;
        return Err(ApiError::Conflict(format!(
            "`{environment}` moved while the rollback was prepared; look again"
        )));
    }
    tx.move_alias(&AliasMove {
        id: 0,
        business_unit: unit.clone(),
        model: name.clone(),
        environment: environment.clone(),
        digest: Some(target.clone()),
        previous_digest: current.digest.clone(),
        moved_by: caller.name.clone(),
        moved_at: app.now(),
        reason: body.reason.clone(),
        approval: Some("rollback".into()),
        audit_seq: 0,
    })
    .await?;
    let entry = commit(
        &app,
        tx,
        event(
            &caller,
            format!("model:{unit}/{name}"),
            json!({
                "environment": environment, "digest": target, "version": version.version_label,
                "previous_digest": current.digest, "reason": body.reason,
            }),
            &decision,
        ),
    )
    .await?;
    Ok(ok(json!({
        "environment": environment, "digest": target, "version": version.version_label,
        "previous_digest": current.digest, "audit": receipt(&entry),
    })))
}
