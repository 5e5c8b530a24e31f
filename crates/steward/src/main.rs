//! `steward`: the server (`init`, `serve`), offline tools (`audit verify --data-dir`,
//! `audit check-proof`, `policy test`), the guided `demo`, and a kubectl-style client of
//! the API for everything governed.
//!
//! Invariant: no rules here. Exit codes: 0 ok, 1 failure or denied, 2 usage error.

mod client;
mod commands;
mod demo;
mod drift;
mod lake;
mod package;
mod progress;
mod promote;
mod register;
mod requests;
mod serving;
mod signer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "Governed deployment of machine-learning models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Server URL for client commands.
    #[arg(
        long,
        global = true,
        env = "STEWARD_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token for client commands.
    #[arg(long, global = true, env = "STEWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format of client commands.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    pub output: Output,
    /// Vault for `--sign-key vault:NAME`: an http:// address on loopback (Vault Agent).
    #[arg(
        long,
        global = true,
        env = "VAULT_ADDR",
        default_value = "http://127.0.0.1:8200"
    )]
    pub vault_addr: String,
    /// Vault token for `--sign-key vault:NAME`.
    #[arg(long, global = true, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,
    /// Vault transit mount for `--sign-key vault:NAME`.
    #[arg(long, global = true, default_value = "transit")]
    pub vault_transit_mount: String,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a data directory: config, database, blob folder, keys and the admin token file.
    Init {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value = "admin")]
        admin: String,
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run the server.
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        listen: Option<String>,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Walk through the lifecycle on a fresh temporary data directory.
    Demo {
        /// Keep the server running afterwards.
        #[arg(long)]
        serve: bool,
        /// Also write the CI gate's SARIF and JUnit reports into this folder.
        #[arg(long)]
        reports: Option<std::path::PathBuf>,
        /// Also send the demo's promotion events to this webhook (its secret is written to
        /// `webhook.secret` in the reports folder).
        #[arg(long, requires = "reports")]
        webhook: Option<String>,
    },
    /// Policy tools.
    #[command(subcommand)]
    Policy(commands::PolicyCommand),
    /// The audit trail: verify, prove, export, checkpoint.
    #[command(subcommand)]
    Audit(commands::AuditCommand),
    /// Business units.
    #[command(subcommand)]
    Units(commands::UnitCommand),
    /// Users, roles and certifications.
    #[command(subcommand)]
    Users(commands::UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Tokens(commands::TokenCommand),
    /// Environments.
    #[command(subcommand)]
    Envs(commands::EnvCommand),
    /// Models.
    #[command(subcommand)]
    Models(commands::ModelCommand),
    /// Model versions.
    #[command(subcommand)]
    Versions(commands::VersionCommand),
    /// Environment aliases (deployment pointers) and their history.
    #[command(subcommand)]
    Aliases(commands::AliasCommand),
    /// Request a promotion of a version to an environment (the only way an alias moves).
    Promote(promote::PromoteArgs),
    /// Roll an environment's alias back to where it pointed before its last move (at once,
    /// audited; what is served follows within a second).
    Rollback {
        /// UNIT/MODEL.
        model: String,
        #[arg(long = "env")]
        environment: String,
        #[arg(long)]
        reason: String,
    },
    /// Feature flags and kill switches of deployments (`serving` switches one off).
    #[command(subcommand)]
    Flags(commands::FlagCommand),
    /// Promotion requests: list, show, approve, reject, withdraw, apply, review.
    #[command(subcommand)]
    Promotion(promote::PromotionCommand),
    /// The CI gate: evaluate every promotion gate without changing anything.
    #[command(subcommand)]
    Gate(promote::GateCommand),
    /// Change events (promotions, approvals, blocks, calendar changes) for a data lake.
    #[command(subcommand)]
    Events(commands::EventsCommand),
    /// The data plane's request log (canary phases in full, else a sample), exported.
    #[command(subcommand)]
    Requests(commands::RequestsCommand),
    /// Search the inventory.
    Search(commands::SearchArgs),
    /// Vulnerability advisories (OSV) against a package's SBOM.
    #[command(subcommand)]
    Advisories(commands::AdvisoryCommand),
    /// The change calendar: freeze and maintenance windows.
    #[command(subcommand)]
    Calendar(commands::CalendarCommand),
    /// Drift between a reference sample and a current one (PSI, two-sample KS), offline.
    #[command(subcommand)]
    Drift(commands::DriftCommand),
    /// Key-encryption keys of blobs sealed at rest: status, rotation, retirement.
    #[command(subcommand)]
    Keys(commands::KeyCommand),
    /// Model packages (OCI image layouts with ModelPack media types).
    #[command(subcommand)]
    Package(commands::PackageCommand),
    /// Print the API's OpenAPI document (the same one the server serves).
    Openapi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
                .unwrap_or_else(|_| "warn,steward=info,steward_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        // Catches clashing flags (e.g. a subcommand reusing the global `-o`) at test time.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
