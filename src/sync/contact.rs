//! One contact, GHL → Holded: fetch fresh, map, and write only what changed.
use secrecy::SecretString;

use super::error::SyncError;
use super::mapper::ContactMapper;
use crate::domain::{DeletePolicy, EntityKey};
use crate::ghl::GhlClient;
use crate::holded::{HoldedClient, HoldedError};
use crate::store::{Link, LinkUpdate, SharedStore, WorkItem};
use crate::tenants::Tenant;

/// Tag the `tag` delete policy puts on a Holded contact whose GHL contact is gone.
pub const DELETED_TAG: &str = "ghl-deleted";
/// The link hash of a contact already handled by the `tag` policy.
const TAGGED_AS_DELETED: &str = "deleted:tagged";

/// What a sync did, for the log line, and what the link becomes.
#[derive(Debug)]
pub struct Synced {
    pub outcome: &'static str,
    pub holded_id: Option<String>,
    pub link: LinkUpdate,
}

impl Synced {
    fn new(outcome: &'static str, holded_id: Option<String>, link: LinkUpdate) -> Self {
        Synced {
            outcome,
            holded_id,
            link,
        }
    }
}

pub struct ContactSync {
    store: SharedStore,
    ghl: GhlClient,
    holded: HoldedClient,
}

impl ContactSync {
    pub fn new(store: SharedStore, ghl: GhlClient, holded: HoldedClient) -> Self {
        ContactSync { store, ghl, holded }
    }

    pub async fn sync(&self, tenant: &Tenant, item: &WorkItem) -> Result<Synced, SyncError> {
        let link = self.store.link(&item.key).await?;
        if item.deleted {
            return self.apply_delete_policy(tenant, &item.key, link).await;
        }
        let Some(contact) = self
            .ghl
            .get_contact(&tenant.ghl_token, &item.key.ghl_id)
            .await?
        else {
            return self.apply_delete_policy(tenant, &item.key, link).await;
        };
        let mapped = ContactMapper::map(&contact);
        if let Some(link) = link.as_ref().filter(|l| l.hash == mapped.hash) {
            return Ok(Synced::new(
                "unchanged",
                Some(link.holded_id.clone()),
                LinkUpdate::Keep,
            ));
        }
        let key = &tenant.holded_key;
        let known = match link {
            Some(link) => Some(link.holded_id),
            None => self.find_by_custom_id(key, &item.key).await?,
        };
        let saved = |holded_id: String| LinkUpdate::Save {
            holded_id,
            hash: mapped.hash.clone(),
        };
        if let Some(holded_id) = known {
            match self
                .holded
                .update_contact(key, &holded_id, &mapped.fields)
                .await
            {
                Ok(()) => {
                    return Ok(Synced::new(
                        "updated",
                        Some(holded_id.clone()),
                        saved(holded_id),
                    ))
                }
                // Removed by hand in Holded: GHL is the source, so the contact comes back.
                Err(HoldedError::NotFound) => {
                    tracing::warn!(%holded_id, key = %item.key, "linked Holded contact is gone; recreating");
                }
                Err(other) => return Err(other.into()),
            }
        }
        let holded_id = self
            .holded
            .create_contact(key, item.key.ghl_id.as_str(), &mapped.fields)
            .await?;
        Ok(Synced::new(
            "created",
            Some(holded_id.clone()),
            saved(holded_id),
        ))
    }

    /// The Holded contact carrying this GHL id as `customId`, found before any create so a
    /// crash between create and commit never makes a duplicate.
    async fn find_by_custom_id(
        &self,
        key: &SecretString,
        entity: &EntityKey,
    ) -> Result<Option<String>, SyncError> {
        let found = self
            .holded
            .find_contacts_by_custom_id(key, entity.ghl_id.as_str())
            .await?;
        if found.len() > 1 {
            tracing::warn!(key = %entity, count = found.len(), "several Holded contacts carry this customId; using the first");
        }
        Ok(found.into_iter().next().map(|c| c.id))
    }

    async fn apply_delete_policy(
        &self,
        tenant: &Tenant,
        entity: &EntityKey,
        link: Option<Link>,
    ) -> Result<Synced, SyncError> {
        if tenant.delete_policy == DeletePolicy::Ignore {
            return Ok(Synced::new(
                "deleted in GHL; ignored by policy",
                None,
                LinkUpdate::Keep,
            ));
        }
        if let Some(link) = link.as_ref().filter(|l| l.hash == TAGGED_AS_DELETED) {
            return Ok(Synced::new(
                "unchanged",
                Some(link.holded_id.clone()),
                LinkUpdate::Keep,
            ));
        }
        let key = &tenant.holded_key;
        let holded_id = match link {
            Some(link) => Some(link.holded_id),
            None => self.find_by_custom_id(key, entity).await?,
        };
        let Some(holded_id) = holded_id else {
            return Ok(Synced::new(
                "deleted in GHL; nothing in Holded",
                None,
                LinkUpdate::Remove,
            ));
        };
        if tenant.delete_policy == DeletePolicy::Delete {
            return match self.holded.delete_contact(key, &holded_id).await {
                Ok(()) | Err(HoldedError::NotFound) => {
                    Ok(Synced::new("deleted", Some(holded_id), LinkUpdate::Remove))
                }
                Err(other) => Err(other.into()),
            };
        }
        {
            {
                let mut tags = match self.holded.get_contact(key, &holded_id).await {
                    Ok(contact) => contact.tags,
                    Err(HoldedError::NotFound) => {
                        return Ok(Synced::new(
                            "deleted in GHL; gone from Holded",
                            Some(holded_id),
                            LinkUpdate::Remove,
                        ));
                    }
                    Err(other) => return Err(other.into()),
                };
                if !tags.iter().any(|t| t == DELETED_TAG) {
                    tags.push(DELETED_TAG.to_owned());
                    self.holded.set_contact_tags(key, &holded_id, &tags).await?;
                }
                Ok(Synced::new(
                    "tagged as deleted",
                    Some(holded_id.clone()),
                    LinkUpdate::Save {
                        holded_id,
                        hash: TAGGED_AS_DELETED.to_owned(),
                    },
                ))
            }
        }
    }
}
