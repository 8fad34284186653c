//! The Marketplace app side: installs, sealed credentials, and tokens that never lapse.
//! Knows the store and the GHL/Holded clients; knows nothing of axum.
mod directory;
mod install;
mod sealing;
mod tokens;

use std::sync::Arc;

pub use directory::InstalledTenants;
pub use install::{
    ConnectError, ConnectTicket, ConnectedLocation, InstallError, InstallFlow, SCOPES,
};
pub use tokens::{TokenManager, TokenSettings};

use crate::config::{Config, MarketplaceApp};
use crate::ghl::{OAuthApp, OAuthClient};
use crate::holded::HoldedClient;
use crate::secrets::SecretSealer;
use crate::store::SharedStore;
use crate::sync::WorkSignal;
use crate::tenants::{CombinedTenants, StaticTenants, TenantDirectory};

/// The parts a Marketplace-app deployment runs.
pub struct Marketplace {
    pub flow: Arc<InstallFlow>,
    pub tokens: Arc<TokenManager>,
    pub tenants: Arc<InstalledTenants>,
}

impl Marketplace {
    /// `None` without `GHL_CLIENT_ID` (the Private Integration setup).
    pub fn from_config(
        config: &Config,
        store: &SharedStore,
        holded: &HoldedClient,
        signal: &WorkSignal,
    ) -> anyhow::Result<Option<Marketplace>> {
        let (Some(app), Some(key)) = (&config.marketplace_app, &config.encryption_key) else {
            return Ok(None);
        };
        let sealer = Arc::new(
            SecretSealer::from_base64_key(key)
                .map_err(|e| anyhow::anyhow!("ENCRYPTION_KEY: {e}"))?,
        );
        let oauth = OAuthClient::new(
            config.ghl_api_base.clone(),
            OAuthApp {
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
            },
            config.upstream_timeout,
        );
        let tokens = Arc::new(TokenManager::new(
            store.clone(),
            sealer.clone(),
            oauth.clone(),
            TokenSettings {
                keep_every: config.token_check_interval,
                ..TokenSettings::default()
            },
        ));
        let flow = Arc::new(InstallFlow::new(install::InstallFlowParts {
            store: store.clone(),
            sealer: sealer.clone(),
            oauth,
            holded: holded.clone(),
            tokens: tokens.clone(),
            signal: signal.clone(),
            consent_url: consent_url(app),
            redirect_uri: redirect_uri(app),
        }));
        let tenants = Arc::new(InstalledTenants::new(
            store.clone(),
            sealer,
            tokens.clone(),
            config.delete_policy,
        ));
        Ok(Some(Marketplace {
            flow,
            tokens,
            tenants,
        }))
    }
}

/// Who the service syncs for: the Private Integration location of the environment, then
/// the Marketplace installs.
pub fn tenant_directory(
    config: &Config,
    marketplace: Option<&Marketplace>,
) -> Arc<dyn TenantDirectory> {
    let mut directories: Vec<Arc<dyn TenantDirectory>> =
        vec![Arc::new(StaticTenants::from_config(config))];
    if let Some(marketplace) = marketplace {
        directories.push(marketplace.tenants.clone());
    }
    Arc::new(CombinedTenants::new(directories))
}

/// `PUBLIC_URL` + `/oauth/callback`: what the app's redirect URL must be set to.
pub fn redirect_uri(app: &MarketplaceApp) -> String {
    format!(
        "{}/oauth/callback",
        app.public_url.as_str().trim_end_matches('/')
    )
}

fn consent_url(app: &MarketplaceApp) -> url::Url {
    let mut url = app.marketplace_url.clone();
    url.set_path("/v2/oauth/chooselocation");
    url.set_query(None);
    url
}
