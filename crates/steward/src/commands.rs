//! Every subcommand: parse, call the server (or the data directory, offline), print.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use steward_core::audit::checkpoint::{InclusionProofFile, NoteVerifier, verify_inclusion_file};
use steward_server::config::{Config, RawConfig};

use crate::client::{Client, encode};
use crate::register::{self, Layout};
use crate::{Cli, Command, Output};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Run every `*.yaml` policy test file in DIR against the shipped policies plus
    /// `--policies` (a folder of organisation `.cedar` files).
    Test {
        dir: PathBuf,
        #[arg(long)]
        policies: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify the whole chain and every checkpoint; with `--data-dir`, offline.
    Verify {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A signed checkpoint kept outside the data directory (`audit checkpoint --out`);
        /// the log must reach it. Repeatable. Offline only.
        #[arg(long = "checkpoint", requires = "data_dir")]
        checkpoints: Vec<PathBuf>,
        /// The log's public key, from a copy you trust (default: `keys/log.pub` of the data
        /// directory, which someone able to edit the database may also have replaced).
        #[arg(long, requires = "data_dir")]
        public_key: Option<PathBuf>,
    },
    /// Print an inclusion proof of entry SEQ (C2SP tlog-proof) against the latest checkpoint.
    Proof {
        seq: u64,
        /// Write the proof file here (and the entry to FILE.entry).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Act as a witness: check that the log only grew since the checkpoint kept in STATE
    /// (a consistency proof against the log's public key), then keep the newer checkpoint.
    /// The first run trusts and keeps the current checkpoint.
    Witness {
        /// Where the witness keeps the last checkpoint it accepted (outside the data directory).
        #[arg(long)]
        state: PathBuf,
        /// The log's public key, from a copy you trust.
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Check a proof file offline, with only the log's public key.
    CheckProof {
        proof: PathBuf,
        /// The entry's canonical bytes (as printed by `audit proof`).
        #[arg(long)]
        entry: PathBuf,
        /// The log's public key (`keys/log.pub` of the data directory).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Write every entry as JSON lines.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Make a signed checkpoint now (and keep a copy outside the data directory with `--out`).
    Checkpoint {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show how the trail stores a secret value (HMAC under the audit key), to search for it.
    Hash { value: String },
    /// List entries after a sequence number.
    Events {
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum UnitCommand {
    List,
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    List,
    Show {
        name: String,
    },
    Create {
        name: String,
        #[arg(long, default_value = "")]
        display_name: String,
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Grant ROLE in SCOPE (`*` for global, or a business unit).
    Grant {
        name: String,
        role: String,
        #[arg(long, default_value = "*")]
        scope: String,
    },
    Revoke {
        name: String,
        role: String,
        #[arg(long, default_value = "*")]
        scope: String,
    },
    /// Record a training certification.
    Certify {
        name: String,
        certification: String,
        #[arg(long)]
        issued: String,
        #[arg(long)]
        expires: String,
    },
    /// Who am I, with which roles.
    Whoami,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    List {
        user: String,
    },
    /// Create a token; the secret is printed once.
    Create {
        user: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    Revoke {
        user: String,
        id: String,
    },
}

#[derive(Subcommand)]
pub enum EnvCommand {
    List,
    Create {
        name: String,
        #[arg(long)]
        production: bool,
        /// The region it runs in (usage terms may restrict deployment by region).
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ModelCommand {
    List,
    /// Show UNIT/MODEL with its versions and aliases.
    Show {
        model: String,
    },
    Create {
        /// UNIT/MODEL
        model: String,
        #[arg(long)]
        category: String,
        #[arg(long)]
        risk_class: String,
        #[arg(long)]
        tier: i64,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum VersionCommand {
    /// List versions of UNIT/MODEL.
    List {
        model: String,
    },
    /// Register a version of UNIT/MODEL from a model directory (uploads its files first).
    Register {
        model: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "plain")]
        layout: Layout,
        #[arg(long)]
        version: Option<String>,
    },
    Show {
        digest: String,
    },
    Deprecate {
        digest: String,
        #[arg(long)]
        reason: String,
    },
    Approve {
        digest: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Re-verify every stored blob (decrypting sealed ones) and the signature of a version,
    /// as loading it to serve does; exits 1 naming what failed.
    Verify {
        digest: String,
    },
    /// Schema changes from AGAINST to DIGEST; exits 1 when some break callers and the
    /// version number does not announce it (a major bump).
    Compatibility {
        digest: String,
        #[arg(long)]
        against: String,
    },
}

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// Windows, and whether each is active now.
    List,
    /// Add a window: NAME, a start (RFC 3339 or an iCalendar DTSTART line), a duration
    /// (RFC 5545, e.g. P14D) and an optional recurrence rule (e.g. FREQ=WEEKLY;BYDAY=FR).
    Add {
        name: String,
        #[arg(long, value_parser = ["freeze", "maintenance"], default_value = "freeze")]
        kind: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        duration: String,
        #[arg(long)]
        rrule: Option<String>,
        /// Environments covered (repeat or comma-separate; none: all).
        #[arg(long = "env", value_delimiter = ',')]
        environments: Vec<String>,
        /// Business units covered (none: all).
        #[arg(long = "unit", value_delimiter = ',')]
        business_units: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Import the events of an iCalendar (.ics) file as windows.
    Import {
        file: PathBuf,
        #[arg(long, value_parser = ["freeze", "maintenance"], default_value = "freeze")]
        kind: String,
        #[arg(long = "env", value_delimiter = ',')]
        environments: Vec<String>,
        #[arg(long = "unit", value_delimiter = ',')]
        business_units: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Delete a window by id (it stays in the history, marked deleted).
    Delete { id: i64 },
}

#[derive(Subcommand)]
pub enum FlagCommand {
    /// Flags in force for UNIT/MODEL, per environment.
    List { model: String },
    /// Turn FLAG of UNIT/MODEL in ENV on or off (`serving` is the kill switch); while off,
    /// requests get 503, or go to `--fallback` (a version deployed there before).
    Set {
        model: String,
        flag: String,
        #[arg(long = "env")]
        environment: String,
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        on: bool,
        #[arg(long)]
        off: bool,
        #[arg(long)]
        fallback: Option<String>,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Append the change events since the last export to OUT as Parquet files partitioned
    /// by day (`date=YYYY-MM-DD/part-FIRST-LAST.parquet`); existing files are never touched.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum RequestsCommand {
    /// Write the logged requests (CloudEvents records) that match to one JSONL or Parquet
    /// file; the log itself is not changed.
    Export {
        /// The server's data directory (its log is `requests/` there, or `request_log_dir`).
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: crate::requests::Format,
        #[arg(long)]
        out: PathBuf,
        /// First day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        to: Option<String>,
        /// Only this retention class (`standard` or `personal`).
        #[arg(long = "class")]
        retention_class: Option<String>,
        /// Only this model (`unit:model`).
        #[arg(long)]
        model: Option<String>,
        /// Only this version label.
        #[arg(long)]
        version: Option<String>,
        /// Only requests routed this way: stable, canary, pinned, fallback.
        #[arg(long)]
        route: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum DriftCommand {
    /// PSI and the two-sample KS test for every column shared by two CSV files (with a header
    /// row); exits 1 when a column drifted (PSI >= --psi-threshold, or KS p <= --ks-alpha).
    Report {
        /// The reference sample (e.g. training data).
        #[arg(long)]
        reference: PathBuf,
        /// The current sample (e.g. validation data, or recent traffic).
        #[arg(long)]
        current: PathBuf,
        /// Only these columns (repeat or comma-separate); default every shared column.
        #[arg(long, value_delimiter = ',')]
        column: Vec<String>,
        #[arg(long, default_value_t = 0.1)]
        psi_threshold: f64,
        #[arg(long, default_value_t = 0.05)]
        ks_alpha: f64,
    },
    /// Compute the report of a validation sample against the reference and attach it to a
    /// version, for the drift gate of its promotions.
    Attach(crate::promote::DriftAttachArgs),
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Key versions and how many data keys each wraps.
    List,
    /// Add a key version and re-wrap every data key under it; no data is re-encrypted.
    Rotate,
    /// Destroy every key version up to VERSION once no data key is wrapped under any of them
    /// (below the current version; with Vault, raises min_decryption_version and trims).
    Retire { version: u32 },
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Current aliases of UNIT/MODEL (or as of a time).
    List {
        model: String,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Every move of ENV's alias; with `--as-of`, also where it pointed then.
    History {
        model: String,
        environment: String,
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PackageCommand {
    /// Pack a model directory (its files and `steward.yaml`) into an OCI image layout at OUT.
    /// The same inputs always give the same manifest digest.
    Build {
        dir: PathBuf,
        /// The layout folder to create, or with a `.tar` name the layout as one tar archive
        /// (`-o` is the output format, as for every command).
        #[arg(long = "out")]
        out: PathBuf,
        /// The model's name in the package (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// Tag in the layout's index (default: the version, else `latest`).
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, value_enum, default_value = "plain")]
        layout: Layout,
        #[arg(long)]
        version: Option<String>,
        /// Creation time recorded in the package (default: the Unix epoch, for reproducibility).
        #[arg(long, default_value = "1970-01-01T00:00:00Z")]
        created: String,
        /// Sign the packed files with this ECDSA P-256 private key (PEM), or `vault:NAME` for a
        /// Vault transit key of type ecdsa-p256. Servers refuse unsigned packages unless
        /// configured otherwise.
        #[arg(long)]
        sign_key: Option<PathBuf>,
        /// The organisation's classification policy (YAML): its rules for every environment
        /// are checked against the package's schema before anything is written.
        #[arg(long)]
        classification_policy: Option<PathBuf>,
    },
    /// Upload a layout's blobs and register it as a version of UNIT/MODEL; the version's
    /// id is the package's manifest digest.
    Push {
        layout: PathBuf,
        #[arg(long)]
        model: String,
        #[arg(long)]
        tag: Option<String>,
    },
    /// Sign a model directory with an ECDSA P-256 key (PEM), writing `model.sig` in the
    /// OpenSSF model-signing format (`model_signing verify key` accepts it).
    Sign {
        dir: PathBuf,
        /// An ECDSA P-256 private key (PEM), or `vault:NAME` for a Vault transit key.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signature (default: DIR/model.sig).
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// Verify a signature with a public key: a model directory's `model.sig`, or a package
    /// layout's (every blob re-hashed); names the file that fails.
    Verify {
        dir: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// Give a packaged version back as an OCI layout, byte for byte (every blob re-hashed).
    Pull {
        digest: String,
        #[arg(long = "out")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AdvisoryCommand {
    /// Import the OSV records (`*.json`) of a folder, or of a zip such as OSV's `PyPI/all.zip`,
    /// into the server; deployments of versions they affect at or above the server's blocking
    /// severity (or with no severity) are then refused.
    Import { dir: PathBuf },
    /// Match the dependencies in LAYOUT's SBOM against the OSV records (`*.json`) in a folder
    /// or zip; exit 1 when any finding is at or above `--fail-on`, or has no severity at all.
    Scan {
        layout: PathBuf,
        #[arg(long)]
        advisories: PathBuf,
        /// low, medium, high or critical.
        #[arg(long, default_value = "high")]
        fail_on: String,
    },
}

#[derive(Args)]
pub struct SearchArgs {
    text: Option<String>,
    #[arg(long)]
    business_unit: Option<String>,
    #[arg(long)]
    risk_class: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    tier: Option<i64>,
}

fn split_model(model: &str) -> anyhow::Result<(&str, &str)> {
    model
        .split_once('/')
        .with_context(|| format!("model `{model}` must be written UNIT/MODEL"))
}

pub fn print_value(output: Output, value: &Value, columns: &[&str]) {
    print(output, value, columns);
}

fn print(output: Output, value: &Value, columns: &[&str]) {
    if output == Output::Json || columns.is_empty() {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
        return;
    }
    let items: Vec<&Value> = match value.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![value],
    };
    let cell = |item: &Value, column: &str| match &item[column] {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|column| {
            items
                .iter()
                .map(|item| cell(item, column).len())
                .max()
                .unwrap_or(0)
                .max(column.len())
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!(
        "{}",
        line(columns.iter().map(|column| column.to_uppercase()).collect()).trim_end()
    );
    for item in items {
        println!(
            "{}",
            line(columns.iter().map(|column| cell(item, column)).collect()).trim_end()
        );
    }
}

fn overrides(listen: Option<String>, database_url: Option<String>) -> RawConfig {
    RawConfig {
        listen_addr: listen,
        database_url,
        ..RawConfig::default()
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let client = Client::new(&cli.server, cli.token.clone());
    let output = cli.output;
    let vault = crate::signer::VaultAccess {
        addr: cli.vault_addr.clone(),
        token: cli.vault_token.clone(),
        mount: cli.vault_transit_mount.clone(),
    };
    match cli.command {
        Command::Init {
            data_dir,
            admin,
            database_url,
            listen,
        } => {
            let initialised =
                steward_server::init(&data_dir, &overrides(listen, database_url), &admin).await?;
            println!("Initialised {}.", data_dir.display());
            println!(
                "Admin token written to {} (mode 0600); it is not shown again.",
                initialised.admin_token_path.display()
            );
        }
        Command::Serve {
            data_dir,
            listen,
            database_url,
        } => serve(&data_dir, overrides(listen, database_url)).await?,
        Command::Demo {
            serve,
            reports,
            webhook,
        } => {
            return crate::demo::run(serve, reports.as_deref(), webhook.as_deref()).await;
        }
        Command::Package(PackageCommand::Build {
            dir,
            out,
            name,
            tag,
            layout,
            version,
            created,
            sign_key,
            classification_policy,
        }) => {
            let classification_policy = classification_policy
                .map(|path| {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    steward_core::schema::ClassificationPolicy::parse_yaml(&text)
                        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
                })
                .transpose()?;
            let signer = match sign_key.as_deref() {
                Some(spec) => Some(crate::signer::load(spec, &vault).await?),
                None => None,
            };
            let (documentation, warnings) =
                register::documentation(&dir, layout, version.as_deref())?;
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            let name = match name {
                Some(name) => name,
                None => dir
                    .canonicalize()?
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "model".to_owned()),
            };
            let tag = tag
                .or_else(|| documentation.version.clone())
                .unwrap_or_else(|| "latest".to_owned());
            let options = steward_package::PackOptions {
                name,
                tag: tag.clone(),
                created,
                classification_policy,
            };
            // `--out X.tar`: the single-file form, packed beside it first.
            let progress = crate::progress::Progress::bytes("packing", 0);
            let report = |done: u64, total: u64| {
                progress.set_total(total);
                progress.set(done);
            };
            let packed = if crate::package::is_archive(&out) {
                let staging = crate::package::staging_dir(&out)?;
                let layout = staging.path().join("layout");
                let packed = steward_package::pack_with_progress(
                    &dir,
                    &layout,
                    &documentation,
                    &options,
                    signer.as_deref(),
                    &report,
                )?;
                steward_package::archive::write_archive(&layout, &out)?;
                packed
            } else {
                steward_package::pack_with_progress(
                    &dir,
                    &out,
                    &documentation,
                    &options,
                    signer.as_deref(),
                    &report,
                )?
            };
            progress.finish();
            let summary = json!({
                "layout": out.display().to_string(),
                "tag": tag,
                "manifest_digest": packed.manifest_digest.as_str(),
                "governance_digest": packed.governance_digest.as_str(),
                "layers": packed.layers.iter().map(|layer| json!({"path": layer.path, "media_type": layer.media_type, "digest": layer.digest.as_str(), "size": layer.size})).collect::<Vec<_>>(),
            });
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
                Output::Table => {
                    println!(
                        "Packed {} ({} layers) into {} as `{tag}`.",
                        packed.manifest_digest,
                        packed.layers.len(),
                        out.display()
                    );
                    print(
                        Output::Table,
                        &json!({"items": summary["layers"]}),
                        &["path", "media_type", "size"],
                    );
                }
            }
        }
        Command::Package(PackageCommand::Push { layout, model, tag }) => {
            print(
                output,
                &crate::package::push(&client, &layout, &model, tag.as_deref()).await?,
                &[],
            );
        }
        Command::Package(PackageCommand::Pull { digest, out }) => {
            print(
                output,
                &crate::package::pull(&client, &digest, &out).await?,
                &[],
            );
        }
        Command::Package(PackageCommand::Sign {
            dir,
            key,
            signature,
        }) => {
            let signature =
                signature.unwrap_or_else(|| dir.join(steward_package::signing::SIGNATURE_FILE));
            let key = crate::signer::load(&key, &vault).await?;
            let bundle = steward_package::signing::sign(&dir, &signature, key.as_ref())?;
            std::fs::write(&signature, serde_json::to_vec(&bundle)?)
                .with_context(|| format!("writing {}", signature.display()))?;
            println!("Signed {} into {}.", dir.display(), signature.display());
        }
        Command::Package(PackageCommand::Verify { dir, key, .. })
            if dir.join("index.json").is_file() || crate::package::is_archive(&dir) =>
        {
            let key = steward_package::signing::load_verifying_key(&key)?;
            let staging;
            let dir = if crate::package::is_archive(&dir) {
                staging = crate::package::staging_dir(&dir)?;
                let unpacked = staging.path().join("layout");
                steward_package::archive::extract_archive(
                    &dir,
                    &unpacked,
                    crate::package::ARCHIVE_BYTES_MAX,
                )?;
                unpacked
            } else {
                dir
            };
            match crate::package::verify_layout(&dir, &key) {
                Ok(n_files) => println!("ok: the package's {n_files} files match its signature"),
                Err(err) => {
                    println!("FAILED: {err:#}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Package(PackageCommand::Verify {
            dir,
            key,
            signature,
        }) => {
            let signature =
                signature.unwrap_or_else(|| dir.join(steward_package::signing::SIGNATURE_FILE));
            let key = steward_package::signing::load_verifying_key(&key)?;
            let text = std::fs::read_to_string(&signature).with_context(|| {
                format!("reading {} (is the model signed?)", signature.display())
            })?;
            let bundle: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", signature.display()))?;
            match steward_package::signing::verify(&dir, &signature, &bundle, &key) {
                Ok(n_files) => println!("ok: {n_files} files match the signature"),
                Err(err) => {
                    println!("FAILED: {err}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Calendar(CalendarCommand::List) => print(
            output,
            &client.get("/api/v1/calendar/windows").await?,
            &["id", "name", "kind", "dtstart", "rrule", "duration_seconds", "active_now", "active_until"],
        ),
        Command::Calendar(CalendarCommand::Add {
            name,
            kind,
            start,
            duration,
            rrule,
            environments,
            business_units,
            reason,
        }) => print(
            output,
            &client
                .post(
                    "/api/v1/calendar/windows",
                    &json!({"name": name, "kind": kind, "start": start, "duration": duration, "rrule": rrule,
                        "environments": environments, "business_units": business_units, "reason": reason}),
                )
                .await?,
            &[],
        ),
        Command::Calendar(CalendarCommand::Import {
            file,
            kind,
            environments,
            business_units,
            reason,
        }) => {
            let ics = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            print(
                output,
                &client
                    .post(
                        "/api/v1/calendar/import",
                        &json!({"ics": ics, "kind": kind, "environments": environments,
                            "business_units": business_units, "reason": reason}),
                    )
                    .await?,
                &[],
            );
        }
        Command::Calendar(CalendarCommand::Delete { id }) => print(
            output,
            &client.delete(&format!("/api/v1/calendar/windows/{id}")).await?,
            &[],
        ),
        Command::Drift(DriftCommand::Report {
            reference,
            current,
            column,
            psi_threshold,
            ks_alpha,
        }) => {
            let mut report = crate::drift::report(&reference, &current, &column)?;
            let drifted = crate::drift::drifted(&report, psi_threshold, ks_alpha);
            report["thresholds"] = json!({"psi": psi_threshold, "ks_alpha": ks_alpha});
            report["drifted"] = json!(drifted);
            print(
                output,
                &report,
                &[
                    "column",
                    "psi",
                    "ks_statistic",
                    "ks_pvalue",
                    "reference_values",
                    "current_values",
                    "note",
                ],
            );
            if !drifted.is_empty() {
                if output == Output::Table {
                    println!("Drifted: {}", drifted.join(", "));
                }
                return Ok(ExitCode::from(1));
            }
        }
        Command::Keys(KeyCommand::List) => {
            let value = client.get("/api/v1/keys").await?;
            match output {
                Output::Json => print(output, &value, &[]),
                Output::Table => {
                    println!(
                        "{} ({}), current version {}",
                        value["key_id"].as_str().unwrap_or_default(),
                        value["provider"].as_str().unwrap_or_default(),
                        value["current_version"]
                    );
                    print(
                        output,
                        &value["versions"],
                        &["version", "available", "data_keys"],
                    );
                }
            }
        }
        Command::Keys(KeyCommand::Rotate) => print(
            output,
            &client.post("/api/v1/keys/rotate", &json!({})).await?,
            &[],
        ),
        Command::Keys(KeyCommand::Retire { version }) => print(
            output,
            &client
                .post("/api/v1/keys/retire", &json!({"version": version}))
                .await?,
            &[],
        ),
        Command::Advisories(AdvisoryCommand::Import { dir }) => {
            let records = crate::package::read_advisories(&dir)?;
            let mut imported = 0;
            for batch in records.chunks(1000) {
                let answer = client
                    .post("/api/v1/advisories", &json!({"records": batch}))
                    .await?;
                imported += answer["imported"].as_u64().unwrap_or(0);
            }
            println!("Imported {imported} advisories from {}.", dir.display());
        }
        Command::Advisories(AdvisoryCommand::Scan {
            layout,
            advisories,
            fail_on,
        }) => {
            return crate::package::scan(&layout, &advisories, &fail_on, output);
        }
        Command::Openapi => println!(
            "{}",
            serde_json::to_string_pretty(&steward_server::openapi::build())?
        ),
        Command::Policy(PolicyCommand::Test { dir, policies }) => {
            return policy_test(&dir, policies.as_deref());
        }
        Command::Audit(command) => return audit(&client, output, command).await,
        Command::Units(UnitCommand::List) => print(
            output,
            &client.get("/api/v1/business-units").await?,
            &["name", "description", "created_by"],
        ),
        Command::Units(UnitCommand::Create { name, description }) => print(
            output,
            &client
                .post(
                    "/api/v1/business-units",
                    &json!({"name": name, "description": description}),
                )
                .await?,
            &[],
        ),
        Command::Users(command) => users(&client, output, command).await?,
        Command::Tokens(TokenCommand::List { user }) => print(
            output,
            &client.get(&format!("/api/v1/users/{user}/tokens")).await?,
            &["id", "name", "created_at", "revoked_at"],
        ),
        Command::Tokens(TokenCommand::Create { user, name }) => print(
            output,
            &client
                .post(
                    &format!("/api/v1/users/{user}/tokens"),
                    &json!({"name": name}),
                )
                .await?,
            &[],
        ),
        Command::Tokens(TokenCommand::Revoke { user, id }) => {
            // A whole token would put its secret in a URL: refuse it here, before sending.
            anyhow::ensure!(
                !id.starts_with(steward_server::auth::TOKEN_PREFIX) && !id.contains('_'),
                "pass the token's id (16 hex digits, `steward tokens list`), not the token itself; treat that token as exposed"
            );
            print(
                output,
                &client
                    .delete(&format!("/api/v1/users/{user}/tokens/{id}"))
                    .await?,
                &[],
            );
        }
        Command::Envs(EnvCommand::List) => print(
            output,
            &client.get("/api/v1/environments").await?,
            &["name", "production", "position"],
        ),
        Command::Envs(EnvCommand::Create {
            name,
            production,
            region,
        }) => print(
            output,
            &client
                .post(
                    "/api/v1/environments",
                    &json!({"name": name, "production": production, "region": region}),
                )
                .await?,
            &[],
        ),
        Command::Models(command) => models(&client, output, command).await?,
        Command::Versions(command) => return versions(&client, output, command).await,
        Command::Aliases(command) => aliases(&client, output, command).await?,
        Command::Promote(args) => return crate::promote::promote(&client, output, args).await,
        Command::Rollback {
            model,
            environment,
            reason,
        } => {
            let (unit, name) = split_model(&model)?;
            let value = client
                .post(
                    &format!(
                        "/api/v1/models/{unit}/{name}/aliases/{}/rollback",
                        encode(&environment)
                    ),
                    &json!({"reason": reason}),
                )
                .await?;
            match output {
                Output::Json => print(output, &value, &[]),
                Output::Table => println!(
                    "{environment} rolled back to {} ({}), audit entry {}",
                    value["version"].as_str().unwrap_or("?"),
                    value["digest"].as_str().unwrap_or("?"),
                    value["audit"]["seq"]
                ),
            }
        }
        Command::Promotion(command) => {
            return crate::promote::promotion(&client, output, command).await;
        }
        Command::Gate(command) => return crate::promote::gate(&client, command).await,
        Command::Flags(FlagCommand::List { model }) => {
            let (unit, name) = split_model(&model)?;
            print(
                output,
                &client
                    .get(&format!("/api/v1/models/{unit}/{name}/flags"))
                    .await?,
                &["environment", "flag", "enabled", "fallback", "set_by", "set_at", "reason"],
            );
        }
        Command::Flags(FlagCommand::Set {
            model,
            flag,
            environment,
            on,
            off: _,
            fallback,
            reason,
        }) => {
            let (unit, name) = split_model(&model)?;
            print(
                output,
                &client
                    .put(
                        &format!(
                            "/api/v1/models/{unit}/{name}/flags/{}/{}",
                            encode(&environment),
                            encode(&flag)
                        ),
                        &json!({"enabled": on, "fallback": fallback, "reason": reason}),
                    )
                    .await?,
                &[],
            );
        }
        Command::Events(EventsCommand::Export { out }) => {
            let exported = crate::lake::export(&client, &out).await?;
            let value = json!({
                "files": exported.files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>(),
                "rows": exported.rows, "cursor": exported.cursor,
            });
            match output {
                Output::Json => print(output, &value, &[]),
                Output::Table => {
                    for file in &exported.files {
                        println!("{}", file.display());
                    }
                    println!(
                        "{} change event(s) in {} new file(s); exported up to audit entry {}",
                        exported.rows,
                        exported.files.len(),
                        exported.cursor
                    );
                }
            }
        }
        Command::Requests(RequestsCommand::Export {
            data_dir,
            format,
            out,
            from,
            to,
            retention_class,
            model,
            version,
            route,
        }) => {
            let mut problems = Vec::new();
            for (flag, day) in [("--from", &from), ("--to", &to)] {
                if let Some(day) = day
                    && chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_err()
                {
                    problems.push(format!("{flag} `{day}` must be a date, YYYY-MM-DD"));
                }
            }
            if let Some(class) = &retention_class
                && !["standard", "personal"].contains(&class.as_str())
            {
                problems.push(format!("--class `{class}` must be `standard` or `personal`"));
            }
            if let Some(route) = &route
                && !["stable", "canary", "pinned", "fallback"].contains(&route.as_str())
            {
                problems.push(format!(
                    "--route `{route}` must be stable, canary, pinned or fallback"
                ));
            }
            if !problems.is_empty() {
                anyhow::bail!("{}", problems.join("; "));
            }
            let config = Config::load(&data_dir, &RawConfig::default())?;
            let filter = crate::requests::Filter {
                from,
                to,
                retention_class,
                model,
                version,
                route,
            };
            let count = crate::requests::export(&config.request_log_dir, &filter, format, &out)?;
            match output {
                Output::Json => print(
                    output,
                    &json!({"records": count, "out": out.display().to_string()}),
                    &[],
                ),
                Output::Table => println!("{count} record(s) written to {}", out.display()),
            }
        }
        Command::Drift(DriftCommand::Attach(args)) => {
            return crate::promote::drift_attach(&client, output, args).await;
        }
        Command::Search(args) => {
            let mut query = Vec::new();
            let pairs = [
                ("q", args.text),
                ("business_unit", args.business_unit),
                ("risk_class", args.risk_class),
                ("category", args.category),
                ("owner", args.owner),
                ("tier", args.tier.map(|tier| tier.to_string())),
            ];
            for (key, value) in pairs {
                if let Some(value) = value {
                    query.push(format!("{key}={}", encode(&value)));
                }
            }
            let value = client
                .get(&format!("/api/v1/search?{}", query.join("&")))
                .await?;
            print(
                output,
                &value,
                &[
                    "business_unit",
                    "name",
                    "risk_class",
                    "tier",
                    "category",
                    "owner",
                ],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(data_dir: &Path, overrides: RawConfig) -> anyhow::Result<()> {
    let config = Config::load(data_dir, &overrides)?;
    let listen = config.listen_addr;
    let app = steward_server::App::open(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("Steward is serving on http://{}", listener.local_addr()?);
    // Ctrl-C, or SIGTERM as service managers and Kubernetes send it.
    let shutdown = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match terminate.as_mut() {
                    Some(terminate) => { terminate.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    };
    // The data plane: OIP at /v2 (production) and /env/{environment}/v2, from the aliases.
    let gateway = crate::serving::start(&app)?;
    let data_plane = steward_gateway::oip::router(gateway.clone());
    let served = steward_server::serve_with(app, listener, shutdown, data_plane).await;
    // What is queued for the request log is written before the process ends, however the
    // server stopped.
    if let Some(log) = &gateway.request_log {
        log.close();
    }
    served?;
    Ok(())
}

fn policy_test(dir: &Path, policies: Option<&Path>) -> anyhow::Result<ExitCode> {
    let org = match policies {
        Some(folder) => steward_server::state::read_policy_dir(folder)?,
        None => Vec::new(),
    };
    let engine = steward_policy::Engine::load(&org)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        anyhow::bail!("{} has no .yaml test files", dir.display());
    }
    let (mut n_passed, mut n_failed) = (0, 0);
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let outcomes = steward_policy::run_test_file(&engine, &text)
            .with_context(|| path.display().to_string())?;
        for outcome in outcomes {
            if outcome.passed {
                n_passed += 1;
                println!("ok    {}: {}", path.display(), outcome.name);
            } else {
                n_failed += 1;
                println!(
                    "FAIL  {}: {}: expected {}, got {}",
                    path.display(),
                    outcome.name,
                    outcome.expected,
                    outcome.actual()
                );
            }
        }
    }
    println!("{n_passed} passed, {n_failed} failed");
    Ok(if n_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn audit(client: &Client, output: Output, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            data_dir: Some(data_dir),
            checkpoints,
            public_key,
        } => {
            let config = Config::load(&data_dir, &RawConfig::default())?;
            let verifier = match public_key {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    NoteVerifier::parse(text.trim()).with_context(|| path.display().to_string())?
                }
                None => steward_server::state::load_verifier(&data_dir)?,
            };
            let mut pinned = Vec::new();
            for path in &checkpoints {
                pinned.push(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                );
            }
            let store = steward_store::Store::open(
                &config.database_url,
                steward_store::StoreOptions::default(),
            )
            .await?;
            let res =
                steward_server::routes::verify_log(&store, &config.log_origin, &verifier, &pinned)
                    .await;
            store.close().await;
            return Ok(match res {
                Ok(report) => {
                    println!(
                        "ok: {} entries, {} checkpoints verified; root {}",
                        report.entries, report.checkpoints, report.root
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    println!("FAILED: {err}");
                    ExitCode::from(1)
                }
            });
        }
        AuditCommand::Verify { data_dir: None, .. } => {
            let report = client.get("/api/v1/audit/verify").await?;
            if report["ok"] == json!(true) {
                println!(
                    "ok: {} entries, {} checkpoints verified; root {}",
                    report["entries"],
                    report["checkpoints"],
                    report["root"].as_str().unwrap_or("")
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("FAILED: {}", report["error"].as_str().unwrap_or("unknown"));
            return Ok(ExitCode::from(1));
        }
        AuditCommand::Proof { seq, out } => {
            let proof = client.get(&format!("/api/v1/audit/proof/{seq}")).await?;
            let text = proof["tlog_proof"].as_str().unwrap_or_default();
            let entry = proof["entry"].as_str().unwrap_or_default();
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    let entry_path = PathBuf::from(format!("{}.entry", path.display()));
                    std::fs::write(&entry_path, entry)
                        .with_context(|| format!("writing {}", entry_path.display()))?;
                    println!("Wrote {} and {}.", path.display(), entry_path.display());
                }
                None if output == Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&proof)?)
                }
                None => print!("{text}"),
            }
        }
        AuditCommand::CheckProof {
            proof,
            entry,
            public_key,
        } => {
            let proof_text = std::fs::read_to_string(&proof)
                .with_context(|| format!("reading {}", proof.display()))?;
            let entry_bytes =
                std::fs::read(&entry).with_context(|| format!("reading {}", entry.display()))?;
            let key_text = std::fs::read_to_string(&public_key)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let verifier = NoteVerifier::parse(key_text.trim())?;
            let file = InclusionProofFile::parse(&proof_text)?;
            match verify_inclusion_file(&file, &entry_bytes, &[verifier]) {
                Ok(checkpoint) => println!(
                    "ok: entry is leaf {} of the {} log at size {}",
                    file.index, checkpoint.origin, checkpoint.size
                ),
                Err(err) => {
                    println!("FAILED: {err}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        AuditCommand::Export { out } => {
            let text = client.get_text("/api/v1/audit/export").await?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
        }
        AuditCommand::Witness { state, public_key } => {
            return witness(client, &state, &public_key).await;
        }
        AuditCommand::Hash { value } => print(
            output,
            &client
                .post("/api/v1/audit/hash", &json!({"value": value}))
                .await?,
            &[],
        ),
        AuditCommand::Checkpoint { out } => {
            let made = client.post("/api/v1/audit/checkpoints", &json!({})).await?;
            if let Some(path) = out {
                let note = made["note"]
                    .as_str()
                    .context("the log has no checkpoint yet")?;
                std::fs::write(&path, note)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "Kept the checkpoint at size {} in {}.",
                    made["tree_size"],
                    path.display()
                );
            }
            print(output, &made, &[]);
        }
        AuditCommand::Events { after, limit } => print(
            output,
            &client
                .get(&format!("/api/v1/audit/events?after={after}&limit={limit}"))
                .await?,
            &["seq", "time", "actor", "action", "subject"],
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// One witness round; exit 1 with `SECURITY ERROR` when the log did not only grow.
async fn witness(client: &Client, state: &Path, public_key: &Path) -> anyhow::Result<ExitCode> {
    use steward_core::audit::checkpoint::Checkpoint;
    use steward_core::audit::merkle;
    let key_text = std::fs::read_to_string(public_key)
        .with_context(|| format!("reading {}", public_key.display()))?;
    let key =
        NoteVerifier::parse(key_text.trim()).with_context(|| public_key.display().to_string())?;
    let keys = std::slice::from_ref(&key);
    let latest = client.get("/api/v1/audit/checkpoints").await?;
    let Some(newest_note) = latest["items"]
        .as_array()
        .and_then(|items| items.last())
        .and_then(|item| item["note"].as_str())
    else {
        anyhow::bail!("the log has no checkpoint yet; make one with `steward audit checkpoint`");
    };
    let newest = Checkpoint::open(newest_note, keys)
        .context("the server's latest checkpoint does not verify with the public key")?;
    let security_error = |reason: String| {
        println!("SECURITY ERROR: {reason}");
        Ok(ExitCode::from(1))
    };
    let kept_note = match std::fs::read_to_string(state) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            write_state(state, newest_note)?;
            println!(
                "Trusting the log at size {} (first run); kept in {}.",
                newest.size,
                state.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(err) => return Err(err).with_context(|| format!("reading {}", state.display())),
    };
    let kept = Checkpoint::open(&kept_note, keys)
        .context("the kept checkpoint does not verify with the public key")?;
    if kept.origin != newest.origin {
        return security_error(format!(
            "the log's origin changed from `{}` to `{}`",
            kept.origin, newest.origin
        ));
    }
    if newest.size < kept.size {
        return security_error(format!(
            "the log shrank from {} to {} entries",
            kept.size, newest.size
        ));
    }
    if newest.size == kept.size {
        if newest.root != kept.root {
            return security_error(format!("two different logs at size {}", kept.size));
        }
        println!("ok: the log is still at size {}", kept.size);
        return Ok(ExitCode::SUCCESS);
    }
    let answer = client
        .get(&format!(
            "/api/v1/audit/consistency?from={}&to={}",
            kept.size, newest.size
        ))
        .await?;
    let mut proof = Vec::new();
    for item in answer["proof"]
        .as_array()
        .context("consistency proof in the answer")?
    {
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            item.as_str().unwrap_or_default(),
        )?;
        proof.push(
            merkle::Hash::try_from(bytes.as_slice())
                .map_err(|_| anyhow::anyhow!("a proof hash is not 32 bytes"))?,
        );
    }
    if let Err(err) =
        merkle::verify_consistency(kept.size, newest.size, &kept.root, &newest.root, &proof)
    {
        return security_error(format!(
            "the log at size {} does not extend the one kept at size {}: {err}",
            newest.size, kept.size
        ));
    }
    write_state(state, newest_note)?;
    println!(
        "ok: the log grew from {} to {} entries and kept every earlier one",
        kept.size, newest.size
    );
    Ok(ExitCode::SUCCESS)
}

/// Replaces the witness state atomically (write, then rename).
fn write_state(state: &Path, note: &str) -> anyhow::Result<()> {
    let temp = state.with_extension("tmp");
    std::fs::write(&temp, note).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, state).with_context(|| format!("writing {}", state.display()))
}

async fn users(client: &Client, output: Output, command: UserCommand) -> anyhow::Result<()> {
    let value = match command {
        UserCommand::List => {
            return {
                print(
                    output,
                    &client.get("/api/v1/users").await?,
                    &["name", "display_name", "email", "created_at"],
                );
                Ok(())
            };
        }
        UserCommand::Show { name } => client.get(&format!("/api/v1/users/{name}")).await?,
        UserCommand::Whoami => client.get("/api/v1/whoami").await?,
        UserCommand::Create {
            name,
            display_name,
            email,
        } => {
            client
                .post(
                    "/api/v1/users",
                    &json!({"name": name, "display_name": display_name, "email": email}),
                )
                .await?
        }
        UserCommand::Grant { name, role, scope } => {
            client
                .post(
                    &format!("/api/v1/users/{name}/roles"),
                    &json!({"role": role, "scope": scope}),
                )
                .await?
        }
        UserCommand::Revoke { name, role, scope } => {
            client
                .delete(&format!(
                    "/api/v1/users/{name}/roles/{}/{role}",
                    encode(&scope)
                ))
                .await?
        }
        UserCommand::Certify {
            name,
            certification,
            issued,
            expires,
        } => {
            client
                .post(
                    &format!("/api/v1/users/{name}/certifications"),
                    &json!({"name": certification, "issued_at": issued, "expires_at": expires}),
                )
                .await?
        }
    };
    print(output, &value, &[]);
    Ok(())
}

async fn models(client: &Client, output: Output, command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::List => print(
            output,
            &client.get("/api/v1/models").await?,
            &[
                "business_unit",
                "name",
                "risk_class",
                "tier",
                "category",
                "owner",
            ],
        ),
        ModelCommand::Show { model } => {
            let (unit, name) = split_model(&model)?;
            print(
                output,
                &client.get(&format!("/api/v1/models/{unit}/{name}")).await?,
                &[],
            );
        }
        ModelCommand::Create {
            model,
            category,
            risk_class,
            tier,
            description,
            owner,
        } => {
            let (unit, name) = split_model(&model)?;
            let body = json!({"business_unit": unit, "name": name, "category": category, "risk_class": risk_class, "tier": tier, "description": description, "owner": owner});
            print(output, &client.post("/api/v1/models", &body).await?, &[]);
        }
    }
    Ok(())
}

/// Uploads every file of a registration, then registers it.
pub async fn register_dir(
    client: &Client,
    model: &str,
    dir: &Path,
    layout: Layout,
    version: Option<&str>,
) -> anyhow::Result<Value> {
    let (unit, name) = split_model(model)?;
    let registration = register::from_dir(dir, layout, version)?;
    for warning in &registration.warnings {
        eprintln!("warning: {warning}");
    }
    for (artifact, path) in &registration.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        client
            .put_bytes(&format!("/api/v1/blobs/{}", artifact.digest), bytes)
            .await?;
    }
    let manifest = serde_json::to_value(&registration.manifest)?;
    Ok(client
        .post(&format!("/api/v1/models/{unit}/{name}/versions"), &manifest)
        .await?)
}

async fn versions(
    client: &Client,
    output: Output,
    command: VersionCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        VersionCommand::List { model } => {
            let (unit, name) = split_model(&model)?;
            let value = client
                .get(&format!("/api/v1/models/{unit}/{name}/versions"))
                .await?;
            print(
                output,
                &value,
                &["version", "digest", "author", "registered_at", "deprecated"],
            );
        }
        VersionCommand::Register {
            model,
            dir,
            layout,
            version,
        } => {
            print(
                output,
                &register_dir(client, &model, &dir, layout, version.as_deref()).await?,
                &[],
            );
        }
        VersionCommand::Show { digest } => print(
            output,
            &client.get(&format!("/api/v1/versions/{digest}")).await?,
            &[],
        ),
        VersionCommand::Deprecate { digest, reason } => print(
            output,
            &client
                .post(
                    &format!("/api/v1/versions/{digest}/deprecate"),
                    &json!({"reason": reason}),
                )
                .await?,
            &[],
        ),
        VersionCommand::Compatibility { digest, against } => {
            let answer = client
                .get(&format!(
                    "/api/v1/versions/{digest}/compatibility?against={against}"
                ))
                .await?;
            print(output, &answer, &["field", "kind", "breaking", "message"]);
            if answer["compatible"] != true {
                if output == Output::Table {
                    println!(
                        "Breaking changes from {} to {} need a major version.",
                        answer["against_version"].as_str().unwrap_or("?"),
                        answer["version"].as_str().unwrap_or("?")
                    );
                }
                return Ok(ExitCode::from(1));
            }
        }
        VersionCommand::Verify { digest } => print(
            output,
            &client
                .post(&format!("/api/v1/versions/{digest}/verify"), &json!({}))
                .await?,
            &[],
        ),
        VersionCommand::Approve { digest, comment } => print(
            output,
            &client
                .post(
                    &format!("/api/v1/versions/{digest}/approvals"),
                    &json!({"comment": comment}),
                )
                .await?,
            &[],
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn aliases(client: &Client, output: Output, command: AliasCommand) -> anyhow::Result<()> {
    let columns = [
        "environment",
        "digest",
        "moved_by",
        "moved_at",
        "reason",
        "audit_seq",
    ];
    match command {
        AliasCommand::List { model, as_of } => {
            let (unit, name) = split_model(&model)?;
            let query = as_of
                .map(|as_of| format!("?as_of={}", encode(&as_of)))
                .unwrap_or_default();
            print(
                output,
                &client
                    .get(&format!("/api/v1/models/{unit}/{name}/aliases{query}"))
                    .await?,
                &columns,
            );
        }
        AliasCommand::History {
            model,
            environment,
            as_of,
        } => {
            let (unit, name) = split_model(&model)?;
            let query = as_of
                .as_ref()
                .map(|as_of| format!("?as_of={}", encode(as_of)))
                .unwrap_or_default();
            let value = client
                .get(&format!(
                    "/api/v1/models/{unit}/{name}/aliases/{environment}/history{query}"
                ))
                .await?;
            if let (Some(as_of), Output::Table) = (&as_of, output) {
                match value["at"]["digest"].as_str() {
                    Some(digest) => println!(
                        "At {as_of}: {digest} (moved by {} at {})",
                        value["at"]["moved_by"].as_str().unwrap_or(""),
                        value["at"]["moved_at"].as_str().unwrap_or("")
                    ),
                    None => println!("At {as_of}: no version"),
                }
            }
            print(output, &value, &columns);
        }
    }
    Ok(())
}
