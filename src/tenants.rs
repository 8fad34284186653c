//! Who we sync for: a location's credentials and settings.
use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::{DeletePolicy, LocationId};
use crate::ghl::GhlAccess;

#[derive(Clone, Debug)]
pub struct Tenant {
    pub location_id: LocationId,
    pub ghl_token: SecretString,
    pub holded_key: SecretString,
    pub delete_policy: DeletePolicy,
}

impl Tenant {
    pub fn ghl(&self) -> GhlAccess<'_> {
        GhlAccess {
            location_id: &self.location_id,
            token: &self.ghl_token,
        }
    }
}

#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// The tenant for a location, or `None` when we hold no credentials for it.
    async fn tenant(&self, location_id: &LocationId) -> Option<Tenant>;

    /// Every tenant we sync for (the sweeper walks them).
    async fn all(&self) -> Vec<Tenant>;
}

/// Tenants fixed at start-up from the environment (the Private Integration setup).
pub struct StaticTenants(Vec<Tenant>);

impl StaticTenants {
    pub fn new(tenants: Vec<Tenant>) -> Self {
        StaticTenants(tenants)
    }
}

#[async_trait]
impl TenantDirectory for StaticTenants {
    async fn tenant(&self, location_id: &LocationId) -> Option<Tenant> {
        self.0
            .iter()
            .find(|t| &t.location_id == location_id)
            .cloned()
    }

    async fn all(&self) -> Vec<Tenant> {
        self.0.clone()
    }
}
