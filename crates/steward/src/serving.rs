//! `steward serve`'s data plane: the gateway's routing table derived from the aliases.
//! A watcher notices any committed change (the audit head moved), reads where every alias
//! points, loads versions it has not loaded yet (re-verified whole, decrypted, then parsed
//! by tract off the async workers) and swaps the table at once. Requests never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use steward_gateway::reqlog::FieldClasses;
use steward_gateway::upstream::{UPSTREAM_FILE, Upstream, UpstreamConfig};
use steward_gateway::{Deployment, Gateway, OnnxModel, Runtime, Table};
use steward_server::App;

/// How often the watcher looks at the audit head.
pub const SERVING_REFRESH: Duration = Duration::from_millis(500);

/// Loaded versions by digest: `(version label, runtime, field classifications)`.
type Loaded = HashMap<String, (String, Runtime, FieldClasses)>;

/// Wait before retrying a version that failed to load; doubled each time, up to the max.
pub const LOAD_RETRY_FIRST: Duration = Duration::from_secs(5);
pub const LOAD_RETRY_MAX: Duration = Duration::from_secs(300);

/// What the watcher keeps between refreshes.
#[derive(Default)]
pub struct Serving {
    loaded: Loaded,
    /// Versions that failed to load: when to try again, and the pause after that.
    failed: HashMap<String, (std::time::Instant, Duration)>,
    /// The audit head the table's pin grants were computed at.
    grants_head: Option<u64>,
}

/// The data plane of `app`: a gateway with the request log the configuration names, kept
/// in step with the aliases by a watcher task. Serve it with `steward_gateway::oip::router`.
pub fn start(app: &App) -> anyhow::Result<Arc<Gateway>> {
    // Requests are logged (canary phases in full, else the configured sample) with
    // personal fields keyed by the audit trail's HMAC key.
    let log = steward_gateway::reqlog::LogConfig {
        dir: app.config.request_log_dir.clone(),
        queue_records: app.config.request_log_queue_records,
        queue_bytes: steward_gateway::reqlog::QUEUE_BYTES_DEFAULT,
        sample_bp: app.config.request_log_sample_bp,
        key: app.audit_key.clone(),
    };
    let gateway = Gateway::new(
        steward_gateway::Limits::default(),
        env!("CARGO_PKG_VERSION"),
    );
    let mut gateway = if app.config.request_log_enabled {
        gateway
            .with_request_log(log)
            .map_err(|err| anyhow::anyhow!("starting the request log: {err}"))?
    } else {
        gateway
    };
    if let Some(endpoint) = &app.config.otlp_endpoint {
        gateway.otlp = Some(
            steward_gateway::otlp::Exporter::start(
                endpoint,
                env!("CARGO_PKG_VERSION"),
                &gateway.metrics,
            )
            .map_err(|err| anyhow::anyhow!(err))?,
        );
    }
    let gateway = Arc::new(gateway);
    tokio::spawn(watch(app.clone(), gateway.clone()));
    Ok(gateway)
}

/// Watches the aliases forever, keeping `gateway`'s table in step with them.
pub async fn watch(app: App, gateway: Arc<Gateway>) {
    let mut serving = Serving::default();
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
        match refresh(&app, &gateway, &mut serving, head).await {
            // A version that did not load is tried again (after its pause) even if nothing
            // else changes.
            Ok(complete) => seen = complete.then_some(head),
            Err(err) => {
                tracing::warn!(error = %err, "Serving: the routing table was not refreshed.")
            }
        }
    }
}

/// Rebuilds the table from where the aliases point now, with the canaries beside them;
/// returns whether every deployed version is served. Deployments that did not change are
/// kept as they are (with their inference slots), and the versions aliases pointed to
/// before stay loaded, so a rollback is served at once.
pub async fn refresh(
    app: &App,
    gateway: &Gateway,
    serving: &mut Serving,
    head: u64,
) -> anyhow::Result<bool> {
    let aliases = steward_server::serving::current_aliases(app)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let rules = app
        .store
        .current_routing_rules()
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let flags = app
        .store
        .current_flags()
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let current = gateway.table();
    let mut table = Table::default();
    let mut complete = true;
    let mut fallbacks: HashMap<(String, String, String), Arc<Deployment>> = HashMap::new();
    let mut wanted: Vec<Wanted<'_>> = aliases
        .iter()
        .filter_map(|alias| {
            Some(Wanted {
                unit: &alias.business_unit,
                model: &alias.model,
                environment: &alias.environment,
                digest: alias.digest.as_deref()?,
                kind: Kind::Stable,
            })
        })
        .collect();
    for rule in &rules {
        let served = aliases.iter().any(|alias| {
            alias.business_unit == rule.business_unit
                && alias.model == rule.model
                && alias.environment == rule.environment
                && alias.digest.is_some()
        });
        if let (true, Some(canary)) = (served, rule.canary_digest.as_deref()) {
            wanted.push(Wanted {
                unit: &rule.business_unit,
                model: &rule.model,
                environment: &rule.environment,
                digest: canary,
                kind: Kind::Canary(rule),
            });
        }
        if let (true, Some(shadow)) = (served, rule.shadow_digest.as_deref()) {
            wanted.push(Wanted {
                unit: &rule.business_unit,
                model: &rule.model,
                environment: &rule.environment,
                digest: shadow,
                kind: Kind::Shadow(rule),
            });
        }
    }
    for flag in &flags {
        if let Some(fallback) = flag.fallback_digest.as_deref() {
            wanted.push(Wanted {
                unit: &flag.business_unit,
                model: &flag.model,
                environment: &flag.environment,
                digest: fallback,
                kind: Kind::Fallback,
            });
        }
    }
    for want in wanted {
        let digest = want.digest.to_owned();
        if !serving.loaded.contains_key(&digest) {
            if serving
                .failed
                .get(&digest)
                .is_some_and(|(retry_at, _)| *retry_at > std::time::Instant::now())
            {
                complete = false;
                continue;
            }
            match load(app, &digest).await {
                Ok(model) => {
                    serving.failed.remove(&digest);
                    serving.loaded.insert(digest.clone(), model);
                }
                Err(err) => {
                    // Not served rather than served wrong: the alias names this version.
                    let pause = serving
                        .failed
                        .get(&digest)
                        .map_or(LOAD_RETRY_FIRST, |(_, pause)| {
                            (*pause * 2).min(LOAD_RETRY_MAX)
                        });
                    serving
                        .failed
                        .insert(digest.clone(), (std::time::Instant::now() + pause, pause));
                    tracing::warn!(version = %digest, error = %err, retry_in = ?pause, "Serving: a deployed version was not loaded.");
                    complete = false;
                    continue;
                }
            }
        }
        let Some((label, model, classes)) = serving.loaded.get(&digest) else {
            continue;
        };
        let name = format!("{}:{}", want.unit, want.model);
        let key = (want.environment.to_owned(), name.clone());
        let kept = match want.kind {
            Kind::Stable => current
                .environments
                .get(want.environment)
                .and_then(|models| models.get(&name)),
            Kind::Canary(_) => current.canaries.get(&key).map(|canary| &canary.deployment),
            Kind::Fallback => None,
            Kind::Shadow(_) => current.shadows.get(&key).map(|shadow| &shadow.deployment),
        }
        .filter(|deployment| deployment.digest == digest)
        .cloned();
        let deployment = kept.unwrap_or_else(|| {
            Arc::new(
                Deployment::new(
                    name.clone(),
                    label.clone(),
                    digest.clone(),
                    model.clone(),
                    &gateway.limits,
                )
                .with_classes(classes.clone()),
            )
        });
        match want.kind {
            Kind::Fallback => {
                fallbacks.insert(
                    (want.environment.to_owned(), name.clone(), digest.clone()),
                    deployment,
                );
            }
            Kind::Stable => {
                table
                    .environments
                    .entry(want.environment.to_owned())
                    .or_default()
                    .insert(name, deployment);
            }
            Kind::Shadow(rule) => {
                table.shadows.insert(
                    key,
                    steward_gateway::Shadow {
                        deployment,
                        share_bp: u32::try_from(rule.shadow_share_bp).unwrap_or(0),
                    },
                );
            }
            Kind::Canary(rule) => {
                let rule = steward_core::routing::RoutingRule {
                    canary: rule.canary_digest.clone(),
                    canary_weight_bp: u32::try_from(rule.canary_weight_bp).unwrap_or(0),
                    sticky_header: rule.sticky_header.clone(),
                    shadow: rule.shadow_digest.clone(),
                    shadow_share_bp: u32::try_from(rule.shadow_share_bp).unwrap_or(0),
                };
                table
                    .canaries
                    .insert(key, steward_gateway::Canary { deployment, rule });
            }
        }
    }
    for flag in &flags {
        let name = format!("{}:{}", flag.business_unit, flag.model);
        let fallback = match &flag.fallback_digest {
            Some(digest) => {
                let found = fallbacks
                    .get(&(flag.environment.clone(), name.clone(), digest.clone()))
                    .cloned();
                if found.is_none() {
                    // A kill switch must hold even when its fallback cannot be served.
                    complete = false;
                }
                found
            }
            None => None,
        };
        table
            .flags
            .entry((flag.environment.clone(), name))
            .or_default()
            .insert(
                flag.flag.clone(),
                steward_gateway::Flag {
                    enabled: flag.enabled != 0,
                    fallback,
                },
            );
    }
    let in_use = |digest: &String| {
        aliases.iter().any(|alias| {
            alias.digest.as_ref() == Some(digest) || alias.previous_digest.as_ref() == Some(digest)
        }) || rules.iter().any(|rule| {
            rule.canary_digest.as_ref() == Some(digest)
                || rule.shadow_digest.as_ref() == Some(digest)
        }) || flags
            .iter()
            .any(|flag| flag.fallback_digest.as_ref() == Some(digest))
    };
    serving.loaded.retain(|digest, _| in_use(digest));
    serving.failed.retain(|digest, _| in_use(digest));
    // The routing table first, with the grants it had: kill switches and rollbacks do not
    // wait for the policy decisions below.
    table.pinners = current.pinners.clone();
    gateway.swap(table);
    // Who may pin versions by path, as the policy says now (every change moves the audit
    // head, so a revoked token or role stops pinning at the next refresh). Computed once
    // per head, then swapped in with the table as it is then.
    if serving.grants_head != Some(head) {
        let served: Vec<(String, String, String)> = aliases
            .iter()
            .filter(|alias| alias.digest.is_some())
            .map(|alias| {
                (
                    alias.environment.clone(),
                    alias.business_unit.clone(),
                    alias.model.clone(),
                )
            })
            .collect();
        match steward_server::serving::pin_grants(app, &served).await {
            Ok(grants) => {
                let pinners = grants
                    .into_iter()
                    .map(|grant| {
                        (
                            grant.token_id,
                            steward_gateway::Pinner {
                                user: grant.user,
                                secret_hash: grant.secret_hash,
                                grants: grant
                                    .grants
                                    .into_iter()
                                    .map(|(env, unit, model)| (env, format!("{unit}:{model}")))
                                    .collect(),
                            },
                        )
                    })
                    .collect();
                gateway.swap_pinners(pinners);
                serving.grants_head = Some(head);
            }
            Err(err) => {
                tracing::warn!(error = %err, "Serving: pin grants were not refreshed; the previous ones stay.")
            }
        }
    }
    // Not complete until the grants match this head too: a failed computation is retried
    // at the next tick, so a revoked token does not keep pinning.
    Ok(complete && serving.grants_head == Some(head))
}

/// A version the table should serve: a stable one, a canary, or a flag's fallback.
struct Wanted<'a> {
    unit: &'a str,
    model: &'a str,
    environment: &'a str,
    digest: &'a str,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Stable,
    Canary(&'a steward_store::RoutingRuleRow),
    Shadow(&'a steward_store::RoutingRuleRow),
    Fallback,
}

/// Loads a deployed version: its ONNX model, or (when it holds `upstream.json` instead) the
/// external OIP server it names, whose metadata must describe the model.
async fn load(app: &App, digest: &str) -> anyhow::Result<(String, Runtime, FieldClasses)> {
    let artifact = steward_server::serving::verified_artifact(app, digest, |name| {
        name.ends_with(".onnx") || name == UPSTREAM_FILE
    })
    .await
    .map_err(|err| anyhow::anyhow!(err))?;
    let classes = artifact
        .schema
        .as_ref()
        .map(FieldClasses::from_schema)
        .unwrap_or_default();
    let (name, bytes) = (artifact.name, artifact.bytes);
    let runtime = if name == UPSTREAM_FILE {
        let config = UpstreamConfig::parse(&bytes).map_err(|err| anyhow::anyhow!(err))?;
        Runtime::Upstream(Arc::new(
            Upstream::connect(config)
                .await
                .map_err(|err| anyhow::anyhow!(err))?,
        ))
    } else {
        let model = tokio::task::spawn_blocking(move || OnnxModel::load(&bytes))
            .await?
            .map_err(|err| anyhow::anyhow!("`{name}`: {err}"))?;
        Runtime::Onnx(Arc::new(model))
    };
    Ok((artifact.version_label, runtime, classes))
}
