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
use crate::tenants::{StaticTenants, Tenant, TenantDirectory};

/// The tenants the configuration names.
pub fn tenants(config: &Config) -> Arc<dyn TenantDirectory> {
    Arc::new(StaticTenants::new(
        config
            .single_location
            .iter()
            .map(|single| Tenant {
                location_id: single.location_id.clone(),
                ghl_token: single.ghl_token.clone(),
                holded_key: single.holded_key.clone(),
                delete_policy: config.delete_policy,
            })
            .collect(),
    ))
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
