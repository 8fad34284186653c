use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ghl_holded_sync::app::App;
use ghl_holded_sync::commands;
use ghl_holded_sync::config::Config;
use ghl_holded_sync::domain::LocationId;
use ghl_holded_sync::store::{self, SharedStore, StoreRole};
use ghl_holded_sync::telemetry;

/// Keeps Holded in step with GoHighLevel sub-accounts.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Show the whole path against built-in GHL and Holded simulators (no account, no network).
    Demo,
    /// Check every location's GHL token and scopes, its Holded key, and the store.
    Check,
    /// Dead work items: list them, or queue them again.
    Dead {
        #[command(subcommand)]
        action: DeadAction,
    },
    /// Queue one GHL record for a fresh sync (the running service does it).
    Sync {
        /// contact, task, note or appointment
        kind: String,
        ghl_id: String,
        /// Location of the record (defaults to GHL_LOCATION_ID).
        #[arg(long)]
        location: Option<String>,
        /// The contact a task or note belongs to.
        #[arg(long)]
        contact: Option<String>,
    },
    /// Queue every GHL contact of a location (resumable; safe while the service runs).
    Backfill {
        #[arg(long)]
        location: String,
        /// Start from the first page again instead of resuming.
        #[arg(long)]
        restart: bool,
    },
}

#[derive(Subcommand)]
enum DeadAction {
    /// List dead items with their reasons.
    List,
    /// Queue one dead item (by id) or all of them again.
    Replay {
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    // Only the service logs at info; the other commands print their own story.
    let level = if matches!(command, Command::Serve | Command::Migrate) {
        "info"
    } else {
        "warn"
    };
    telemetry::init(config.log_format, level);
    match run(command, config).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn tool_store(config: &Config) -> anyhow::Result<SharedStore> {
    store::open(&config.database_url, StoreRole::Tool)
        .await
        .context("DATABASE_URL")
}

/// `Ok(false)`: the command ran and its verdict is a failure.
async fn run(command: Command, config: Config) -> anyhow::Result<bool> {
    match command {
        Command::Serve => serve(config).await.map(|()| true),
        Command::Migrate => {
            tool_store(&config).await?;
            println!("schema is up to date");
            Ok(true)
        }
        Command::Demo => ghl_holded_sync::demo::run().await.map(|()| true),
        Command::Check => {
            let store = tool_store(&config).await;
            let store = match store {
                Ok(store) => store,
                Err(error) => {
                    println!("FAIL  store: {error:#}");
                    return Ok(false);
                }
            };
            let tenants = commands::tenants(&config, &store)?;
            let ghl = commands::ghl_client(&config);
            let holded = commands::holded_client(&config);
            Ok(commands::check::run(&store, tenants.as_ref(), &ghl, &holded).await)
        }
        Command::Dead { action } => {
            let store = tool_store(&config).await?;
            match action {
                DeadAction::List => commands::dead::list(&store).await?,
                DeadAction::Replay { id, all } => {
                    if id.is_none() && !all {
                        anyhow::bail!("give a dead item id, or --all");
                    }
                    commands::dead::replay(&store, id).await?
                }
            }
            Ok(true)
        }
        Command::Sync {
            kind,
            ghl_id,
            location,
            contact,
        } => {
            let location = match location {
                Some(raw) => {
                    LocationId::parse(&raw).map_err(|e| anyhow::anyhow!("--location: {e}"))?
                }
                None => config
                    .single_location
                    .as_ref()
                    .map(|s| s.location_id.clone())
                    .context("--location is required when GHL_LOCATION_ID is not set")?,
            };
            let store = tool_store(&config).await?;
            commands::resync::run(&store, location, &kind, &ghl_id, contact.as_deref()).await?;
            Ok(true)
        }
        Command::Backfill { location, restart } => {
            let location =
                LocationId::parse(&location).map_err(|e| anyhow::anyhow!("--location: {e}"))?;
            let store = tool_store(&config).await?;
            let tenant = commands::tenants(&config, &store)?
                .tenant(&location)
                .await
                .with_context(|| format!("no credentials for location {location}"))?;
            let ghl = commands::ghl_client(&config);
            commands::backfill::run(&store, &ghl, &tenant, restart).await?;
            Ok(true)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::start(config).await?;
    let token = app.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    app.wait().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
