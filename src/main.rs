use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ghl_holded_sync::app::App;
use ghl_holded_sync::config::Config;
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
    // The demo prints its own story; only problems should interrupt it.
    let level = if matches!(command, Command::Demo) {
        "warn"
    } else {
        "info"
    };
    telemetry::init(config.log_format, level);
    let result = match command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Demo => ghl_holded_sync::demo::run().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
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

async fn migrate(config: &Config) -> anyhow::Result<()> {
    ghl_holded_sync::store::open(&config.database_url).await?;
    tracing::info!("schema is up to date");
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
