//! The Marketplace install: consent redirect with a signed single-use `state`, the code
//! exchange for a Location or an agency (Company) install, the Holded key each location
//! connects with, and the `INSTALL` / `UNINSTALL` webhooks.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use super::sealing;
use super::tokens::TokenManager;
use crate::domain::LocationId;
use crate::ghl::{OAuthClient, OAuthError, UserType};
use crate::holded::{HoldedClient, HoldedError};
use crate::secrets::{SecretSealer, SignedClaims, TokenRejected, TokenSigner};
use crate::store::{InstalledLocation, SharedStore, StoreError, TenantState, TokenOwner};
use crate::sync::WorkSignal;
use crate::webhook::AppLifecycle;

/// What the service asks GHL for: reading contacts, their tasks, notes and appointments,
/// the task search for `TaskCreate` events without a contact, and minting location tokens
/// from an agency install (reference §2.5). Nothing is written to GHL.
pub const SCOPES: &str =
    "contacts.readonly calendars/events.readonly locations/tasks.readonly oauth.write";

/// Long enough to pick locations on the consent screen, short enough to be useless later.
const STATE_TTL: Duration = Duration::from_secs(15 * 60);
/// How long the connect form stays usable after an install.
const TICKET_TTL: Duration = Duration::from_secs(60 * 60);
const STATE_SUBJECT: &str = "install";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the install link is invalid ({0}); start the install again")]
    State(TokenRejected),
    #[error("this install link was already used; start the install again")]
    StateReused,
    #[error("GHL did not accept the install: {0}")]
    Refused(String),
    #[error("GHL could not be reached to finish the install; try again")]
    Unavailable(String),
    #[error("GHL's answer did not say which {0} was installed")]
    Incomplete(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("this form has expired or was altered ({0}); install the app again")]
    Ticket(TokenRejected),
    #[error(
        "this form was already used to connect Holded; install the app again to change the key"
    )]
    TicketUsed,
    #[error("enter the Holded API key")]
    KeyMissing,
    #[error(
        "Holded refused this API key; copy it again from Holded (Settings → Developers → API)"
    )]
    WrongKey,
    #[error("Holded could not be reached to check the key; try again in a minute")]
    HoldedUnavailable(String),
    #[error("location {0} is {1}; install the app again first")]
    NotInstalled(LocationId, &'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checked connect-form ticket: the location it is for, and its single-use nonce.
pub struct ConnectTicket {
    pub location_id: LocationId,
    claims: SignedClaims,
}

/// A location the install connected, with the signed ticket its connect form carries.
pub struct ConnectedLocation {
    pub location_id: LocationId,
    pub ticket: String,
}

pub struct InstallFlow {
    store: SharedStore,
    sealer: Arc<SecretSealer>,
    states: TokenSigner,
    tickets: TokenSigner,
    oauth: OAuthClient,
    holded: HoldedClient,
    tokens: Arc<TokenManager>,
    signal: WorkSignal,
    consent_url: url::Url,
    redirect_uri: String,
}

pub struct InstallFlowParts {
    pub store: SharedStore,
    pub sealer: Arc<SecretSealer>,
    pub oauth: OAuthClient,
    pub holded: HoldedClient,
    pub tokens: Arc<TokenManager>,
    pub signal: WorkSignal,
    /// `…/v2/oauth/chooselocation` on the Marketplace host.
    pub consent_url: url::Url,
    pub redirect_uri: String,
}

impl InstallFlow {
    pub fn new(parts: InstallFlowParts) -> Self {
        InstallFlow {
            states: parts.sealer.signer("oauth-state"),
            tickets: parts.sealer.signer("connect-ticket"),
            store: parts.store,
            sealer: parts.sealer,
            oauth: parts.oauth,
            holded: parts.holded,
            tokens: parts.tokens,
            signal: parts.signal,
            consent_url: parts.consent_url,
            redirect_uri: parts.redirect_uri,
        }
    }

    /// Where `/oauth/install` sends the browser (reference §2.1), with a fresh `state`.
    pub fn consent_redirect(&self) -> url::Url {
        let mut url = self.consent_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("client_id", self.oauth.client_id())
            .append_pair("scope", SCOPES)
            .append_pair("state", &self.states.issue(STATE_SUBJECT, STATE_TTL));
        url
    }

    /// The callback: checks `state` (signature, expiry, first use), exchanges the code and
    /// stores the tokens sealed. An agency install mints a token for every approved location.
    pub async fn complete(
        &self,
        code: &str,
        state: &str,
    ) -> Result<Vec<ConnectedLocation>, InstallError> {
        let claims = self
            .states
            .verify(state, Utc::now())
            .map_err(InstallError::State)?;
        if claims.subject != STATE_SUBJECT {
            return Err(InstallError::State(TokenRejected::Forged));
        }
        if !self
            .store
            .consume_nonce(&claims.nonce, claims.expires_at)
            .await?
        {
            return Err(InstallError::StateReused);
        }
        let grant = self
            .oauth
            .exchange_code(code, &self.redirect_uri)
            .await
            .map_err(install_error)?;
        let (locations, tokens) = match grant.user_type {
            UserType::Location => {
                let location_id = grant
                    .location_id
                    .as_deref()
                    .and_then(|l| LocationId::parse(l).ok())
                    .ok_or(InstallError::Incomplete("location"))?;
                let owner = TokenOwner::location(&location_id);
                let token = self.tokens.record(owner, None, &grant);
                let location = InstalledLocation {
                    location_id,
                    company_id: None,
                };
                (vec![location], vec![token])
            }
            UserType::Company => {
                let company_id = grant
                    .company_id
                    .clone()
                    .ok_or(InstallError::Incomplete("company"))?;
                let company = TokenOwner::company(&company_id);
                let mut tokens = vec![self.tokens.record(company, None, &grant)];
                let mut locations = Vec::new();
                for location in &grant.approved_locations {
                    let Ok(location_id) = LocationId::parse(location) else {
                        tracing::warn!(
                            location,
                            "GHL approved a location id we cannot use; skipped"
                        );
                        continue;
                    };
                    let minted = self
                        .oauth
                        .location_token(&grant.access_token, &company_id, location)
                        .await
                        .map_err(install_error)?;
                    let owner = TokenOwner::location(&location_id);
                    tokens.push(self.tokens.record(owner, Some(company_id.clone()), &minted));
                    locations.push(InstalledLocation {
                        location_id,
                        company_id: Some(company_id.clone()),
                    });
                }
                (locations, tokens)
            }
        };
        self.store.install(&locations, &tokens).await?;
        // A re-install may have made paused work claimable again.
        self.signal.notify();
        for location in &locations {
            tracing::info!(location = %location.location_id, company = location.company_id.as_deref().unwrap_or("-"), "app installed");
        }
        Ok(locations
            .into_iter()
            .map(|l| ConnectedLocation {
                ticket: self.tickets.issue(l.location_id.as_str(), TICKET_TTL),
                location_id: l.location_id,
            })
            .collect())
    }

    /// The connect form's ticket, checked: signed by us, not expired.
    pub fn open_ticket(&self, ticket: &str) -> Result<ConnectTicket, ConnectError> {
        let claims = self
            .tickets
            .verify(ticket, Utc::now())
            .map_err(ConnectError::Ticket)?;
        let location_id = LocationId::parse(&claims.subject)
            .map_err(|_| ConnectError::Ticket(TokenRejected::Forged))?;
        Ok(ConnectTicket {
            location_id,
            claims,
        })
    }

    /// Stores the location's Holded key, sealed, once a real Holded call accepted it. A
    /// ticket connects once: a wrong key may be corrected, but a ticket that leaked after
    /// the install cannot point the location at another Holded account.
    pub async fn connect(
        &self,
        ticket: &ConnectTicket,
        holded_key: &SecretString,
    ) -> Result<(), ConnectError> {
        let ConnectTicket {
            location_id,
            claims,
        } = ticket;
        let key = SecretString::from(holded_key.expose_secret().trim().to_owned());
        if key.expose_secret().is_empty() {
            return Err(ConnectError::KeyMissing);
        }
        match self.holded.check_key(&key).await {
            Ok(()) => {}
            Err(HoldedError::Unauthorized(_)) => return Err(ConnectError::WrongKey),
            Err(error) => return Err(ConnectError::HoldedUnavailable(error.to_string())),
        }
        if !self
            .store
            .consume_nonce(&claims.nonce, claims.expires_at)
            .await?
        {
            return Err(ConnectError::TicketUsed);
        }
        let sealed = self
            .sealer
            .seal_secret(&key, &sealing::holded_key_context(location_id));
        match self.store.set_holded_key(location_id, &sealed).await? {
            Some(TenantState::Active) => {
                tracing::info!(location = %location_id, "Holded connected");
                self.signal.notify();
                Ok(())
            }
            Some(state) => Err(ConnectError::NotInstalled(
                location_id.clone(),
                state.as_str(),
            )),
            None => Err(ConnectError::NotInstalled(
                location_id.clone(),
                "not installed",
            )),
        }
    }
}

fn install_error(error: OAuthError) -> InstallError {
    match error {
        OAuthError::Refused { .. } => InstallError::Refused(error.to_string()),
        OAuthError::Unavailable(reason) => InstallError::Unavailable(reason),
    }
}

#[async_trait]
impl AppLifecycle for InstallFlow {
    /// A location added to an agency install: its token is minted from the agency's on
    /// first use. Other installs are completed by the callback, which holds the code.
    async fn installed(
        &self,
        location_id: Option<&LocationId>,
        company_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let (Some(location_id), Some(company_id)) = (location_id, company_id) else {
            return Ok(());
        };
        let company = TokenOwner::company(company_id);
        if self.store.token(&company).await?.is_none() {
            return Ok(());
        }
        let location = InstalledLocation {
            location_id: location_id.clone(),
            company_id: Some(company_id.to_owned()),
        };
        self.store.install(&[location], &[]).await?;
        tracing::info!(location = %location_id, company = company_id, "location added to the agency install");
        Ok(())
    }

    /// Tokens and keys go; links stay, so a re-install finds every record it made.
    async fn uninstalled(
        &self,
        location_id: Option<&LocationId>,
        company_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let owner = match (location_id, company_id) {
            (Some(location_id), _) => TokenOwner::location(location_id),
            (None, Some(company_id)) => TokenOwner::company(company_id),
            (None, None) => return Ok(()),
        };
        let removed = self.store.uninstall(&owner).await?;
        tracing::info!(
            owner = %owner.id, owner_type = owner.owner_type.as_str(),
            locations = ?removed.iter().map(LocationId::as_str).collect::<Vec<_>>(),
            "app uninstalled; tokens and keys deleted, links kept"
        );
        Ok(())
    }
}
