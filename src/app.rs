//! Builds the service from a `Config` and runs its parts: HTTP, workers, housekeeping.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ghl::GhlClient;
use crate::holded::{HoldedClient, HoldedEndpoints};
use crate::http::{self, AppState};
use crate::oauth::{self, Marketplace};
use crate::store::{self, SharedStore, StoreRole};
use crate::sync::{ActivitySync, ContactSync, Sweeper, WorkSignal, WorkerPool, WorkerSettings};
use crate::webhook::{WebhookIntake, WebhookVerifier};

/// A running service. Dropping it does not stop it: call [`App::shutdown`].
pub struct App {
    addr: SocketAddr,
    store: SharedStore,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl App {
    /// Opens the store (running migrations), binds `LISTEN_ADDR` and starts everything.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        let listener = TcpListener::bind(config.listen_addr).await.map_err(|e| {
            anyhow::anyhow!("LISTEN_ADDR: cannot listen on {}: {e}", config.listen_addr)
        })?;
        Self::start_on(config, listener).await
    }

    pub async fn start_on(config: Config, listener: TcpListener) -> anyhow::Result<App> {
        let verifier = WebhookVerifier::from_pem(
            config.ghl_webhook_ed25519_key.as_deref(),
            config.ghl_webhook_rsa_key.as_deref(),
        )?;
        let store = store::open(&config.database_url, StoreRole::Service)
            .await
            .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
        if let Some(missing) = config.missing_sync_settings() {
            tracing::warn!("{missing}");
        }
        let signal = WorkSignal::default();
        let intake = WebhookIntake::new(
            verifier,
            store.clone(),
            signal.clone(),
            config.webhook_replay_window,
            config.webhook_settle,
            config
                .marketplace_app
                .as_ref()
                .map(|a| a.client_id.as_str()),
        );
        let ghl = GhlClient::with_budget(
            config.ghl_api_base.clone(),
            config.upstream_timeout,
            config.ghl_rate_limit,
            config.ghl_daily_limit,
        );
        let holded = HoldedClient::with_budget(
            HoldedEndpoints::from_base(&config.holded_api_base),
            config.upstream_timeout,
            config.holded_rate_limit,
        );
        let marketplace = Marketplace::from_config(&config, &store, &holded, &signal)?;
        let tenants = oauth::tenant_directory(&config, marketplace.as_ref());
        let intake = match &marketplace {
            Some(marketplace) => intake.with_lifecycle(marketplace.flow.clone()),
            None => intake,
        };
        let sweeper = Sweeper::new(
            store.clone(),
            ghl.clone(),
            tenants.clone(),
            signal.clone(),
            config.sweep_interval,
        );
        let workers = WorkerPool::new(
            store.clone(),
            tenants.clone(),
            ContactSync::new(store.clone(), ghl.clone(), holded.clone()),
            ActivitySync::new(store.clone(), ghl, holded),
            signal.clone(),
            WorkerSettings {
                workers: config.workers,
                max_attempts: i64::from(config.max_attempts),
                retry_base: config.retry_base_delay,
                retry_cap: config.retry_max_delay,
                lease: config.work_lease,
                ..WorkerSettings::default()
            },
        );

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let addr = listener.local_addr()?;
        let router = http::router(
            AppState {
                intake: Arc::new(intake),
                store: store.clone(),
                tenants,
                signal,
                delete_policy: config.delete_policy,
            },
            config.admin_token.clone(),
            marketplace.as_ref().map(|m| m.flow.clone()),
        );
        let http_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(http_shutdown.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "HTTP server stopped");
            }
        });
        tasks.spawn(workers.run(shutdown.clone()));
        tasks.spawn(sweeper.run(shutdown.clone()));
        if let Some(marketplace) = &marketplace {
            tasks.spawn(marketplace.tokens.clone().keep_fresh(shutdown.clone()));
        }
        tasks.spawn(purge_events(
            store.clone(),
            config.event_retention,
            shutdown.clone(),
        ));
        tracing::info!(%addr, "listening");
        Ok(App {
            addr,
            store,
            shutdown,
            tasks,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Stops accepting requests, lets in-flight requests and syncs finish, and returns.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until a part stops on its own (it should not) or the token is cancelled.
    pub async fn wait(mut self) {
        self.tasks.join_next().await;
        self.shutdown().await;
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Events are kept for audit and replay, then dropped. Their dedupe keys live as long,
/// which is far longer than the replay window (checked by `Config`).
async fn purge_events(store: SharedStore, retention: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        match store.purge_events(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "old events purged"),
            Err(error) => tracing::error!(%error, "could not purge old events"),
        }
    }
}
