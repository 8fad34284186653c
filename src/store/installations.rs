//! Marketplace installs: which locations we sync for, their sealed credentials, and the GHL
//! token rows whose refresh is leased so one refresh runs per token owner across replicas.
//! The store only ever sees ciphertext; sealing happens in `oauth`.
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::LocationId;

/// Where an installed location stands. Only `Active` locations have their work claimed;
/// the others keep their pending work (and their links) until they are active again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantState {
    Active,
    /// Installed, but no Holded API key has been entered yet.
    AwaitingKey,
    /// GHL refused a token refresh; a re-install resumes it.
    NeedsReconnect,
    /// The app was uninstalled: tokens and key are gone, links are kept.
    Uninstalled,
}

impl TenantState {
    pub const ALL: [TenantState; 4] = [
        TenantState::Active,
        TenantState::AwaitingKey,
        TenantState::NeedsReconnect,
        TenantState::Uninstalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::AwaitingKey => "awaiting_key",
            TenantState::NeedsReconnect => "needs_reconnect",
            TenantState::Uninstalled => "uninstalled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// An installed location as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    pub location_id: LocationId,
    /// The agency whose Company token mints this location's tokens, for agency installs.
    pub company_id: Option<String>,
    /// The Holded API key, sealed.
    pub holded_key: Option<Vec<u8>>,
    pub state: TenantState,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnerType {
    Location,
    Company,
}

impl OwnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Location => "location",
            OwnerType::Company => "company",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [OwnerType::Location, OwnerType::Company]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

/// Who a token belongs to: a location, or an agency (company).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenOwner {
    pub owner_type: OwnerType,
    pub id: String,
}

impl TokenOwner {
    pub fn location(location_id: &LocationId) -> Self {
        TokenOwner {
            owner_type: OwnerType::Location,
            id: location_id.to_string(),
        }
    }

    pub fn company(company_id: &str) -> Self {
        TokenOwner {
            owner_type: OwnerType::Company,
            id: company_id.to_owned(),
        }
    }
}

/// A GHL token pair as stored; `access` and `refresh` are sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub owner: TokenOwner,
    /// For a location token minted from a Company token: that company. Such a token has no
    /// refresh token of its own; it is minted again instead.
    pub company_id: Option<String>,
    pub access: Vec<u8>,
    pub refresh: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
    pub refreshed_at: DateTime<Utc>,
    pub scopes: String,
    /// Bumped by every completed refresh; a waiter compares it to see that one happened.
    pub version: i64,
}

/// A location an install adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledLocation {
    pub location_id: LocationId,
    pub company_id: Option<String>,
}

/// Proof of a held refresh lease on one token row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshLease {
    pub owner: TokenOwner,
    pub lease_token: String,
}

#[async_trait]
pub trait Installations: Send + Sync {
    /// Every installed location, in location id order.
    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;

    async fn tenant(&self, location_id: &LocationId) -> Result<Option<TenantRecord>, StoreError>;

    /// Records an install in one transaction: upserts the tokens (version kept counting,
    /// lease cleared) and the locations. A location keeps its Holded key and becomes
    /// `Active` when it has one, else `AwaitingKey`; `company_id` is overwritten.
    async fn install(
        &self,
        locations: &[InstalledLocation],
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError>;

    /// Stores the sealed Holded key of an installed location and makes it `Active`, unless
    /// it is `Uninstalled` or `NeedsReconnect` (those need a re-install first). Returns the
    /// state the location is in afterwards, `None` when it is not installed.
    async fn set_holded_key(
        &self,
        location_id: &LocationId,
        sealed_key: &[u8],
    ) -> Result<Option<TenantState>, StoreError>;

    /// Sets the state of installed locations (unknown ones are ignored).
    async fn set_tenant_state(
        &self,
        location_ids: &[LocationId],
        state: TenantState,
    ) -> Result<(), StoreError>;

    /// The locations whose tokens come from this company.
    async fn company_locations(&self, company_id: &str) -> Result<Vec<LocationId>, StoreError>;

    /// Uninstall, in one transaction: deletes the owner's token, and for a company also the
    /// tokens of its locations; the affected locations lose their Holded key and become
    /// `Uninstalled`. Work and links are untouched. Returns the locations uninstalled.
    async fn uninstall(&self, owner: &TokenOwner) -> Result<Vec<LocationId>, StoreError>;

    async fn token(&self, owner: &TokenOwner) -> Result<Option<TokenRecord>, StoreError>;

    /// Takes the refresh lease of the owner's token row for `lease`, if the row exists, is
    /// still at `version`, and no live lease is held by anyone else.
    async fn lease_refresh(
        &self,
        owner: &TokenOwner,
        version: i64,
        lease: Duration,
    ) -> Result<Option<RefreshLease>, StoreError>;

    /// Writes the renewed pair (version + 1) and releases the lease in the same statement.
    /// `false` when the lease was lost (expired and taken): nothing is written.
    async fn complete_refresh(
        &self,
        lease: &RefreshLease,
        access: &[u8],
        refresh: Option<&[u8]>,
        expires_at: DateTime<Utc>,
        scopes: &str,
    ) -> Result<bool, StoreError>;

    /// Releases a lease without changing the tokens (the refresh failed).
    async fn abandon_refresh(&self, lease: &RefreshLease) -> Result<(), StoreError>;

    /// Owners whose access token expires before `expiring_before` or that were last
    /// refreshed before `refreshed_before`.
    async fn tokens_due(
        &self,
        expiring_before: DateTime<Utc>,
        refreshed_before: DateTime<Utc>,
    ) -> Result<Vec<TokenOwner>, StoreError>;

    /// Marks a single-use value (an OAuth `state` nonce) used; `false` when it already was.
    /// Values are kept until `expires_at` and purged after.
    async fn consume_nonce(
        &self,
        nonce: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn tenant_counts(&self) -> Result<Vec<(TenantState, i64)>, StoreError>;
}
