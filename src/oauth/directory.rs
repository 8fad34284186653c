//! Tenants from the store: every installed location that is active, with its Holded key
//! opened and its GHL token served by the token manager.
use std::sync::Arc;

use async_trait::async_trait;

use super::sealing;
use super::tokens::TokenManager;
use crate::domain::{DeletePolicy, LocationId};
use crate::secrets::SecretSealer;
use crate::store::{SharedStore, TenantRecord, TenantState};
use crate::tenants::{Absence, Tenant, TenantDirectory};

pub struct InstalledTenants {
    store: SharedStore,
    sealer: Arc<SecretSealer>,
    tokens: Arc<TokenManager>,
    delete_policy: DeletePolicy,
}

impl InstalledTenants {
    pub fn new(
        store: SharedStore,
        sealer: Arc<SecretSealer>,
        tokens: Arc<TokenManager>,
        delete_policy: DeletePolicy,
    ) -> Self {
        InstalledTenants {
            store,
            sealer,
            tokens,
            delete_policy,
        }
    }

    fn tenant_of(&self, record: TenantRecord) -> Option<Tenant> {
        if record.state != TenantState::Active {
            return None;
        }
        let context = sealing::holded_key_context(&record.location_id);
        let holded_key = match record
            .holded_key
            .as_deref()
            .map(|k| self.sealer.open_secret(k, &context))
        {
            Some(Ok(key)) => key,
            Some(Err(_)) => {
                tracing::error!(location = %record.location_id, "the stored Holded key cannot be decrypted (was ENCRYPTION_KEY changed?)");
                return None;
            }
            None => return None,
        };
        Some(Tenant {
            location_id: record.location_id,
            ghl_tokens: self.tokens.clone(),
            holded_key,
            delete_policy: self.delete_policy,
        })
    }
}

#[async_trait]
impl TenantDirectory for InstalledTenants {
    async fn tenant(&self, location_id: &LocationId) -> Option<Tenant> {
        match self.store.tenant(location_id).await {
            Ok(record) => record.and_then(|r| self.tenant_of(r)),
            Err(error) => {
                tracing::error!(location = %location_id, %error, "could not read the tenant");
                None
            }
        }
    }

    async fn absence(&self, location_id: &LocationId) -> Absence {
        match self.store.tenant(location_id).await {
            Ok(Some(record)) => Absence::Waiting(format!(
                "location {location_id} is {}",
                record.state.as_str()
            )),
            Ok(None) => Absence::Unknown,
            Err(error) => Absence::Unavailable(format!("tenant store: {error}")),
        }
    }

    async fn all(&self) -> Vec<Tenant> {
        match self.store.tenants().await {
            Ok(records) => records
                .into_iter()
                .filter_map(|r| self.tenant_of(r))
                .collect(),
            Err(error) => {
                tracing::error!(%error, "could not list tenants");
                Vec::new()
            }
        }
    }
}
