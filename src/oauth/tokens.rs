//! Keeps every installed owner's GHL token valid: refreshes ahead of expiry and at least
//! daily, once per owner at a time across workers and replicas, and pauses a location whose
//! refresh GHL refuses instead of failing its work over and over.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::sealing;
use crate::domain::LocationId;
use crate::ghl::{GhlError, OAuthClient, OAuthError, TokenGrant, TokenSource, UserType};
use crate::secrets::SecretSealer;
use crate::store::{
    OwnerType, RefreshLease, SharedStore, StoreError, TenantState, TokenOwner, TokenRecord,
};

#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// Refresh when less than this is left (GHL access tokens live a day).
    pub refresh_margin: Duration,
    /// Refresh at least this often, so an idle install's refresh token stays in use.
    pub max_age: Duration,
    /// How long one refresh may hold an owner's row. Shorter than GHL's 30 s grace window:
    /// if a replica dies after GHL rotated the pair but before it was saved, the next
    /// holder's identical request still gets the same pair back (reference §2.3).
    pub lease: Duration,
    /// How often a waiter looks whether another replica's refresh has landed.
    pub poll: Duration,
    /// How often the keeper looks for tokens that are due.
    pub keep_every: Duration,
}

impl TokenSettings {
    /// Near expiry, or not refreshed for `max_age`.
    fn due(&self, lifetime: &Lifetime, now: DateTime<Utc>) -> bool {
        let margin = chrono::Duration::from_std(self.refresh_margin).unwrap_or_default();
        let max_age = chrono::Duration::from_std(self.max_age).unwrap_or_default();
        lifetime.expires_at - margin <= now || lifetime.refreshed_at + max_age <= now
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            refresh_margin: Duration::from_secs(5 * 60),
            max_age: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(20),
            poll: Duration::from_millis(100),
            keep_every: Duration::from_secs(60),
        }
    }
}

/// When a stored access token expires and when it was last refreshed.
struct Lifetime {
    expires_at: DateTime<Utc>,
    refreshed_at: DateTime<Utc>,
}

impl From<&TokenRecord> for Lifetime {
    fn from(row: &TokenRecord) -> Self {
        Lifetime {
            expires_at: row.expires_at,
            refreshed_at: row.refreshed_at,
        }
    }
}

pub struct TokenManager {
    store: SharedStore,
    sealer: Arc<SecretSealer>,
    oauth: OAuthClient,
    settings: TokenSettings,
    /// One refresh per owner inside this process; the row lease covers other replicas.
    gates: Mutex<HashMap<TokenOwner, Arc<tokio::sync::Mutex<()>>>>,
    /// Tokens opened from the store and not yet due: a sync makes several GHL calls, and each
    /// would otherwise read and decrypt the row again. One refreshed by another replica
    /// meanwhile is picked up on the 401 it earns (`renew` reads the store).
    opened: Mutex<HashMap<TokenOwner, (SecretString, Lifetime)>>,
}

fn store_error(error: StoreError) -> GhlError {
    GhlError::Transport(format!("token store: {error}"))
}

impl TokenManager {
    pub fn new(
        store: SharedStore,
        sealer: Arc<SecretSealer>,
        oauth: OAuthClient,
        settings: TokenSettings,
    ) -> Self {
        TokenManager {
            store,
            sealer,
            oauth,
            settings,
            gates: Mutex::new(HashMap::new()),
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// A stored row for a fresh grant (what an install saves).
    pub fn record(
        &self,
        owner: TokenOwner,
        company_id: Option<String>,
        grant: &TokenGrant,
    ) -> TokenRecord {
        let now = Utc::now();
        TokenRecord {
            access: self
                .sealer
                .seal_secret(&grant.access_token, &sealing::access_context(&owner)),
            refresh: grant.refresh_token.as_ref().map(|r| {
                self.sealer
                    .seal_secret(r, &sealing::refresh_context(&owner))
            }),
            expires_at: now + chrono::Duration::from_std(grant.expires_in).unwrap_or_default(),
            refreshed_at: now,
            scopes: grant.scope.clone(),
            version: 0,
            owner,
            company_id,
        }
    }

    /// Refreshes whatever is due until `shutdown`: tokens near expiry and tokens not
    /// refreshed for `max_age`, so no install lapses while nobody syncs.
    pub async fn keep_fresh(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.keep_every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = Utc::now();
            let due = self
                .store
                .tokens_due(
                    now + chrono::Duration::from_std(self.settings.refresh_margin)
                        .unwrap_or_default(),
                    now - chrono::Duration::from_std(self.settings.max_age).unwrap_or_default(),
                )
                .await;
            let owners = match due {
                Ok(owners) => owners,
                Err(error) => {
                    tracing::error!(%error, "could not list tokens due for refresh");
                    continue;
                }
            };
            for owner in owners {
                let access = self.access(&owner).await;
                if let Err(error) = self.paused_on_reconnect(&owner, access).await {
                    tracing::warn!(owner = %owner.id, %error, "scheduled token refresh failed");
                }
            }
        }
    }

    fn due(&self, row: &TokenRecord) -> bool {
        self.settings.due(&row.into(), Utc::now())
    }

    /// The access token of a stored row, decrypted and remembered.
    fn open_access(&self, row: &TokenRecord) -> Result<SecretString, GhlError> {
        let access = self
            .sealer
            .open_secret(&row.access, &sealing::access_context(&row.owner))
            .map_err(|_| {
                GhlError::Reconnect(format!(
                    "the stored token of {} cannot be decrypted (was ENCRYPTION_KEY changed?)",
                    row.owner.id
                ))
            })?;
        self.remember(row, &access);
        Ok(access)
    }

    fn remember(&self, row: &TokenRecord, access: &SecretString) {
        self.opened
            .lock()
            .expect("opened tokens lock")
            .insert(row.owner.clone(), (access.clone(), row.into()));
    }

    /// The remembered token of `owner`, unless it is due.
    fn remembered(&self, owner: &TokenOwner) -> Option<SecretString> {
        let opened = self.opened.lock().expect("opened tokens lock");
        let (access, lifetime) = opened.get(owner)?;
        (!self.settings.due(lifetime, Utc::now())).then(|| access.clone())
    }

    /// A valid access token of `owner`, refreshed (or minted) first when due.
    async fn access(&self, owner: &TokenOwner) -> Result<SecretString, GhlError> {
        if let Some(access) = self.remembered(owner) {
            return Ok(access);
        }
        let row = self.store.token(owner).await.map_err(store_error)?;
        match row {
            Some(row) if !self.due(&row) => self.open_access(&row),
            Some(row) => match self.refresh(owner, row.version).await {
                // A failed early refresh is no reason to stop using a token that still works.
                Err(GhlError::Transport(reason)) if row.expires_at > Utc::now() => {
                    tracing::warn!(owner = %owner.id, %reason, "token refresh failed; the current token is still valid");
                    self.open_access(&row)
                }
                renewed => renewed,
            },
            None => self.mint_first(owner).await,
        }
    }

    /// A location of an agency install announced by an `INSTALL` webhook has no token of
    /// its own yet: mint one from the agency's.
    async fn mint_first(&self, owner: &TokenOwner) -> Result<SecretString, GhlError> {
        let no_token = || {
            GhlError::Reconnect(format!(
                "no GHL token for {}; install the app for it",
                owner.id
            ))
        };
        if owner.owner_type != OwnerType::Location {
            return Err(no_token());
        }
        let location_id = LocationId::parse(&owner.id).map_err(|_| no_token())?;
        let tenant = self.store.tenant(&location_id).await.map_err(store_error)?;
        let company_id = tenant.and_then(|t| t.company_id).ok_or_else(no_token)?;
        let grant = self.mint(&company_id, &owner.id).await?;
        let record = self.record(owner.clone(), Some(company_id), &grant);
        self.store
            .install(&[], std::slice::from_ref(&record))
            .await
            .map_err(store_error)?;
        self.remember(&record, &grant.access_token);
        Ok(grant.access_token)
    }

    /// A location token from the agency's; an agency token GHL refuses (401) is renewed
    /// once, like any other.
    async fn mint(&self, company_id: &str, location_id: &str) -> Result<TokenGrant, GhlError> {
        let company = TokenOwner::company(company_id);
        let company_token = Box::pin(self.access(&company)).await?;
        let minted = self
            .oauth
            .location_token(&company_token, company_id, location_id)
            .await;
        let minted = match minted {
            Err(OAuthError::Refused { status: 401, .. }) => {
                let renewed = Box::pin(self.renew_refused(&company, &company_token)).await?;
                self.oauth
                    .location_token(&renewed, company_id, location_id)
                    .await
            }
            other => other,
        };
        minted.map_err(|error| self.refused_or_failed(error))
    }

    fn refused_or_failed(&self, error: OAuthError) -> GhlError {
        match error {
            OAuthError::Refused { .. } => GhlError::Reconnect(error.to_string()),
            OAuthError::Unavailable(reason) => GhlError::Transport(reason),
        }
    }

    fn gate(&self, owner: &TokenOwner) -> Arc<tokio::sync::Mutex<()>> {
        self.gates
            .lock()
            .expect("gate map lock")
            .entry(owner.clone())
            .or_default()
            .clone()
    }

    /// Renews the token that was current at `seen_version`, unless someone (here or on
    /// another replica) already has: then their result is used.
    async fn refresh(
        &self,
        owner: &TokenOwner,
        seen_version: i64,
    ) -> Result<SecretString, GhlError> {
        let gate = self.gate(owner);
        let _single_flight = gate.lock().await;
        // A lease lasts `lease`; past that (plus slack) the holder is gone and we take over.
        let deadline = Instant::now() + self.settings.lease * 2;
        loop {
            let row = self
                .store
                .token(owner)
                .await
                .map_err(store_error)?
                .ok_or_else(|| GhlError::Reconnect(format!("no GHL token for {}", owner.id)))?;
            if row.version != seen_version {
                return self.open_access(&row);
            }
            let lease = self
                .store
                .lease_refresh(owner, row.version, self.settings.lease)
                .await
                .map_err(store_error)?;
            if let Some(lease) = lease {
                return self.refresh_leased(&row, &lease).await;
            }
            if Instant::now() >= deadline {
                return Err(GhlError::Transport(format!(
                    "another replica's refresh of {} did not finish",
                    owner.id
                )));
            }
            tokio::time::sleep(self.settings.poll).await;
        }
    }

    async fn refresh_leased(
        &self,
        row: &TokenRecord,
        lease: &RefreshLease,
    ) -> Result<SecretString, GhlError> {
        let owner = &row.owner;
        let renewed = match (&row.refresh, &row.company_id) {
            (Some(sealed), _) => match self
                .sealer
                .open_secret(sealed, &sealing::refresh_context(owner))
            {
                Ok(refresh_token) => self
                    .oauth
                    .refresh(&refresh_token, user_type(owner.owner_type))
                    .await
                    .map_err(|error| self.refused_or_failed(error)),
                Err(_) => Err(GhlError::Reconnect(
                    "stored refresh token is unreadable".into(),
                )),
            },
            (None, Some(company_id)) => self.mint(company_id, &owner.id).await,
            (None, None) => Err(GhlError::Reconnect("no refresh token stored".into())),
        };
        let metrics = crate::metrics::global();
        let grant = match renewed {
            Ok(grant) => grant,
            Err(error) => {
                if let Err(store) = self.store.abandon_refresh(lease).await {
                    tracing::error!(owner = %owner.id, error = %store, "could not release a refresh lease");
                }
                let outcome = match error {
                    GhlError::Reconnect(_) => "refused",
                    _ => "failed",
                };
                metrics.token_refresh(outcome);
                return Err(error);
            }
        };
        let fresh = self.record(owner.clone(), row.company_id.clone(), &grant);
        // GHL has rotated the pair: losing it here would cost the install. The lease is
        // shorter than GHL's grace window, so the next holder's identical request recovers it.
        let saved = self
            .store
            .complete_refresh(
                lease,
                &fresh.access,
                fresh.refresh.as_deref(),
                fresh.expires_at,
                &fresh.scopes,
            )
            .await
            .map_err(store_error)?;
        if !saved {
            metrics.token_refresh("lease_lost");
            return Err(GhlError::Transport(format!(
                "the refresh lease of {} expired before the new token was saved",
                owner.id
            )));
        }
        metrics.token_refresh("renewed");
        self.remember(&fresh, &grant.access_token);
        tracing::info!(owner = %owner.id, owner_type = owner.owner_type.as_str(), expires_at = %fresh.expires_at, "token refreshed");
        Ok(grant.access_token)
    }

    async fn renew_refused(
        &self,
        owner: &TokenOwner,
        refused: &SecretString,
    ) -> Result<SecretString, GhlError> {
        let Some(row) = self.store.token(owner).await.map_err(store_error)? else {
            return Err(GhlError::Reconnect(format!(
                "no GHL token for {}",
                owner.id
            )));
        };
        let current = self.open_access(&row)?;
        // Another worker renewed it since this call began: use theirs.
        let same = current
            .expose_secret()
            .as_bytes()
            .ct_eq(refused.expose_secret().as_bytes());
        if !bool::from(same) {
            return Ok(current);
        }
        self.refresh(owner, row.version).await
    }

    /// Whatever the cause (a refused refresh, no token, an unreadable one), an owner that
    /// cannot get a token has its locations paused, so their work waits instead of spinning.
    /// The one place that pauses: callers (`bearer`, `renew`, the keeper) pass results here.
    async fn paused_on_reconnect(
        &self,
        owner: &TokenOwner,
        result: Result<SecretString, GhlError>,
    ) -> Result<SecretString, GhlError> {
        if let Err(GhlError::Reconnect(reason)) = &result {
            self.pause_owner(owner, reason).await;
        }
        result
    }

    /// GHL refused: every location depending on this token waits for a re-install.
    async fn pause_owner(&self, owner: &TokenOwner, reason: &str) {
        let locations = match owner.owner_type {
            OwnerType::Location => LocationId::parse(&owner.id).into_iter().collect(),
            OwnerType::Company => match self.store.company_locations(&owner.id).await {
                Ok(locations) => locations,
                Err(error) => {
                    tracing::error!(owner = %owner.id, %error, "could not list the company's locations");
                    Vec::new()
                }
            },
        };
        tracing::error!(
            owner = %owner.id, owner_type = owner.owner_type.as_str(), %reason,
            locations = ?locations.iter().map(LocationId::as_str).collect::<Vec<_>>(),
            "GHL refused the token refresh; the location needs the app installed again"
        );
        if let Err(error) = self
            .store
            .set_tenant_state(&locations, TenantState::NeedsReconnect)
            .await
        {
            tracing::error!(owner = %owner.id, %error, "could not mark the location needs_reconnect");
        }
    }
}

fn user_type(owner_type: OwnerType) -> UserType {
    match owner_type {
        OwnerType::Location => UserType::Location,
        OwnerType::Company => UserType::Company,
    }
}

#[async_trait]
impl TokenSource for TokenManager {
    async fn bearer(&self, location_id: &LocationId) -> Result<SecretString, GhlError> {
        let owner = TokenOwner::location(location_id);
        let access = self.access(&owner).await;
        self.paused_on_reconnect(&owner, access).await
    }

    async fn renew(
        &self,
        location_id: &LocationId,
        refused: &SecretString,
    ) -> Result<Option<SecretString>, GhlError> {
        let owner = TokenOwner::location(location_id);
        let renewed = self.renew_refused(&owner, refused).await;
        self.paused_on_reconnect(&owner, renewed).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(expires_in: chrono::Duration, refreshed_ago: chrono::Duration) -> Lifetime {
        let now = Utc::now();
        Lifetime {
            expires_at: now + expires_in,
            refreshed_at: now - refreshed_ago,
        }
    }

    #[test]
    fn tokens_are_due_near_expiry_and_once_a_day() {
        let settings = TokenSettings::default();
        let now = Utc::now();
        let hours = chrono::Duration::hours;
        let minutes = chrono::Duration::minutes;
        assert!(!settings.due(&lifetime(hours(20), hours(4)), now), "fresh");
        assert!(
            settings.due(&lifetime(minutes(4), hours(4)), now),
            "under 5 minutes left"
        );
        assert!(
            settings.due(&lifetime(minutes(-1), hours(4)), now),
            "expired"
        );
        // An access token GHL issued with a long life still gets its daily refresh, so the
        // refresh token is used and never lapses on an idle install.
        assert!(
            settings.due(&lifetime(hours(48), hours(25)), now),
            "a day old"
        );
    }
}
