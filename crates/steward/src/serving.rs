//! `steward serve`'s data plane: the gateway's routing table derived from the aliases.
//! A watcher notices any committed change (the audit head moved), reads where every alias
//! points, loads versions it has not loaded yet (re-verified whole, decrypted, then parsed
//! by tract off the async workers) and swaps the table at once. Requests never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use steward_gateway::{Deployment, Gateway, OnnxModel, Table};
use steward_server::App;

/// How often the watcher looks at the audit head.
pub const SERVING_REFRESH: Duration = Duration::from_millis(500);

/// Loaded models by version digest: `(version label, model)`.
type Loaded = HashMap<String, (String, Arc<OnnxModel>)>;

/// Watches the aliases forever, keeping `gateway`'s table in step with them.
pub async fn watch(app: App, gateway: Arc<Gateway>) {
    let mut loaded: Loaded = HashMap::new();
    let mut seen: Option<u64> = None;
    let mut ticker = tokio::time::interval(SERVING_REFRESH);
    loop {
        ticker.tick().await;
        let head = match app.store.audit_head().await {
            Ok((head, _)) => head,
            Err(err) => {
                tracing::warn!(error = %err, "Serving: cannot read the audit head.");
                continue;
            }
        };
        if seen == Some(head) {
            continue;
        }
        match refresh(&app, &gateway, &mut loaded).await {
            Ok(()) => seen = Some(head),
            Err(err) => {
                tracing::warn!(error = %err, "Serving: the routing table was not refreshed.")
            }
        }
    }
}

/// Rebuilds the table from where the aliases point now.
pub async fn refresh(app: &App, gateway: &Gateway, loaded: &mut Loaded) -> anyhow::Result<()> {
    let aliases = steward_server::serving::current_aliases(app)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut table = Table::default();
    for alias in &aliases {
        let Some(digest) = &alias.digest else {
            continue;
        };
        if !loaded.contains_key(digest) {
            match load(app, digest).await {
                Ok(model) => {
                    loaded.insert(digest.clone(), model);
                }
                Err(err) => {
                    // Not served rather than served wrong: the alias names this version.
                    tracing::warn!(version = %digest, error = %err, "Serving: a deployed version was not loaded.");
                    continue;
                }
            }
        }
        let Some((label, model)) = loaded.get(digest) else {
            continue;
        };
        let name = format!("{}:{}", alias.business_unit, alias.model);
        table
            .environments
            .entry(alias.environment.clone())
            .or_default()
            .insert(
                name.clone(),
                Arc::new(Deployment::new(
                    name,
                    label.clone(),
                    digest.clone(),
                    model.clone(),
                    &gateway.limits,
                )),
            );
    }
    loaded.retain(|digest, _| {
        aliases
            .iter()
            .any(|alias| alias.digest.as_ref() == Some(digest))
    });
    gateway.swap(table);
    Ok(())
}

async fn load(app: &App, digest: &str) -> anyhow::Result<(String, Arc<OnnxModel>)> {
    let (label, name, bytes) =
        steward_server::serving::verified_artifact(app, digest, |name| name.ends_with(".onnx"))
            .await
            .map_err(|err| anyhow::anyhow!(err))?;
    let model = tokio::task::spawn_blocking(move || OnnxModel::load(&bytes))
        .await?
        .map_err(|err| anyhow::anyhow!("`{name}`: {err}"))?;
    Ok((label, Arc::new(model)))
}
