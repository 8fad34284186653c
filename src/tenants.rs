//! Who we sync for: a location's credentials and settings.
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::Config;
use crate::domain::{DeletePolicy, LocationId};
use crate::ghl::{FixedToken, GhlAccess, TokenSource};

#[derive(Clone)]
pub struct Tenant {
    pub location_id: LocationId,
    pub ghl_tokens: Arc<dyn TokenSource>,
    pub holded_key: SecretString,
    pub delete_policy: DeletePolicy,
}

impl Tenant {
    pub fn ghl(&self) -> GhlAccess<'_> {
        GhlAccess {
            location_id: &self.location_id,
            tokens: &*self.ghl_tokens,
        }
    }
}

#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// The tenant for a location, or `None` when we hold no credentials for it.
    async fn tenant(&self, location_id: &LocationId) -> Option<Tenant>;

    /// Every tenant we sync for (the sweeper walks them).
    async fn all(&self) -> Vec<Tenant>;

    /// Why `tenant` found nothing for this location.
    async fn absence(&self, _location_id: &LocationId) -> Absence {
        Absence::Unknown
    }
}

/// Why a location has no tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Absence {
    /// We hold nothing for it: its work cannot succeed.
    Unknown,
    /// Installed, but waiting for a person (a re-install, a Holded key); its work waits too.
    Waiting(String),
    /// The directory could not be read; try again later.
    Unavailable(String),
}

/// Several directories asked in turn: the environment's Private Integration location,
/// then the Marketplace installs.
pub struct CombinedTenants(Vec<Arc<dyn TenantDirectory>>);

impl CombinedTenants {
    pub fn new(directories: Vec<Arc<dyn TenantDirectory>>) -> Self {
        CombinedTenants(directories)
    }
}

#[async_trait]
impl TenantDirectory for CombinedTenants {
    async fn tenant(&self, location_id: &LocationId) -> Option<Tenant> {
        for directory in &self.0 {
            if let Some(tenant) = directory.tenant(location_id).await {
                return Some(tenant);
            }
        }
        None
    }

    async fn all(&self) -> Vec<Tenant> {
        let mut all = Vec::new();
        for directory in &self.0 {
            all.extend(directory.all().await);
        }
        all
    }

    async fn absence(&self, location_id: &LocationId) -> Absence {
        for directory in &self.0 {
            match directory.absence(location_id).await {
                Absence::Unknown => continue,
                known => return known,
            }
        }
        Absence::Unknown
    }
}

/// Tenants fixed at start-up from the environment (the Private Integration setup).
pub struct StaticTenants(Vec<Tenant>);

impl StaticTenants {
    pub fn new(tenants: Vec<Tenant>) -> Self {
        StaticTenants(tenants)
    }

    /// The location `GHL_LOCATION_ID` names, if any.
    pub fn from_config(config: &Config) -> Self {
        StaticTenants::new(
            config
                .single_location
                .iter()
                .map(|single| Tenant {
                    location_id: single.location_id.clone(),
                    ghl_tokens: Arc::new(FixedToken(single.ghl_token.clone())),
                    holded_key: single.holded_key.clone(),
                    delete_policy: config.delete_policy,
                })
                .collect(),
        )
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
