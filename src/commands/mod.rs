//! Operator commands of the binary besides `serve`: they work on the same store as a
//! running service, safely alongside it.
pub mod backfill;
pub mod check;
pub mod dead;
pub mod resync;

use std::sync::Arc;

use crate::config::Config;
use crate::ghl::GhlClient;
use crate::holded::{HoldedClient, HoldedEndpoints};
use crate::oauth::{self, Marketplace};
use crate::store::SharedStore;
use crate::sync::WorkSignal;
use crate::tenants::TenantDirectory;

/// The tenants the configuration names and the store's Marketplace installs.
pub fn tenants(config: &Config, store: &SharedStore) -> anyhow::Result<Arc<dyn TenantDirectory>> {
    let marketplace = Marketplace::from_config(
        config,
        store,
        &holded_client(config),
        &WorkSignal::default(),
    )?;
    Ok(oauth::tenant_directory(config, marketplace.as_ref()))
}

pub fn ghl_client(config: &Config) -> GhlClient {
    GhlClient::with_budget(
        config.ghl_api_base.clone(),
        config.upstream_timeout,
        config.ghl_rate_limit,
        config.ghl_daily_limit,
    )
}

pub fn holded_client(config: &Config) -> HoldedClient {
    HoldedClient::with_budget(
        HoldedEndpoints::from_base(&config.holded_api_base),
        config.upstream_timeout,
        config.holded_rate_limit,
    )
}
