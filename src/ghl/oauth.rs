//! GHL's OAuth endpoints (reference §2.2–§2.4): the code exchange, refresh, and minting a
//! location token from an agency (Company) token. Both bodies are form-encoded, as the spec
//! declares; `/oauth/token` takes no `Version` header, `/oauth/locationToken` does.
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client::{checked, GhlError};
use crate::upstream;

/// `Version` of the OAuth family (specs/ghl/apps/oauth.json).
const OAUTH_VERSION: &str = "2021-07-28";

/// The Marketplace app's credentials.
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserType {
    Location,
    Company,
}

impl UserType {
    fn as_str(self) -> &'static str {
        match self {
            UserType::Location => "Location",
            UserType::Company => "Company",
        }
    }
}

/// What GHL granted: `GetAccessCodeSuccessfulResponseDto` (and the location-token answer,
/// which has no refresh token in v2).
pub struct TokenGrant {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Duration,
    pub scope: String,
    pub user_type: UserType,
    pub location_id: Option<String>,
    pub company_id: Option<String>,
    pub approved_locations: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// GHL said no (400/401/422): a used or revoked refresh token, a bad code. Retrying
    /// the same request cannot help.
    #[error("GHL refused the grant ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrantBody {
    #[serde(rename = "access_token")]
    access_token: String,
    #[serde(rename = "refresh_token")]
    refresh_token: Option<String>,
    #[serde(rename = "expires_in")]
    expires_in: Option<u64>,
    scope: Option<String>,
    user_type: Option<String>,
    location_id: Option<String>,
    company_id: Option<String>,
    #[serde(default)]
    approved_locations: Vec<String>,
}

/// A day, as SDK-TS assumes when `expires_in` is absent (reference §2.3).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(86_400);

#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    base: url::Url,
    app: OAuthApp,
}

impl OAuthClient {
    pub fn new(base: url::Url, app: OAuthApp, timeout: Duration) -> Self {
        OAuthClient {
            http: upstream::http_client(timeout),
            base,
            app,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.app.client_id
    }

    /// `grant_type=authorization_code`: the code the consent screen handed the browser.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, OAuthError> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    /// `grant_type=refresh_token`: GHL rotates, so the answer's refresh token replaces ours.
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        user_type: UserType,
    ) -> Result<TokenGrant, OAuthError> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("user_type", user_type.as_str()),
        ])
        .await
    }

    /// `POST /oauth/locationToken` with the agency's token.
    pub async fn location_token(
        &self,
        company_token: &SecretString,
        company_id: &str,
        location_id: &str,
    ) -> Result<TokenGrant, OAuthError> {
        let request = self
            .http
            .post(upstream::join(&self.base, &["oauth", "locationToken"]))
            .bearer_auth(company_token.expose_secret())
            .header("Version", OAUTH_VERSION)
            .form(&[("companyId", company_id), ("locationId", location_id)]);
        let mut grant = self.grant(request).await?;
        grant.user_type = UserType::Location;
        grant.location_id.get_or_insert_with(|| location_id.into());
        grant.company_id.get_or_insert_with(|| company_id.into());
        Ok(grant)
    }

    async fn token(&self, fields: &[(&str, &str)]) -> Result<TokenGrant, OAuthError> {
        let mut form = vec![
            ("client_id", self.app.client_id.as_str()),
            ("client_secret", self.app.client_secret.expose_secret()),
        ];
        form.extend_from_slice(fields);
        let request = self
            .http
            .post(upstream::join(&self.base, &["oauth", "token"]))
            .form(&form);
        self.grant(request).await
    }

    async fn grant(&self, request: reqwest::RequestBuilder) -> Result<TokenGrant, OAuthError> {
        let metrics = crate::metrics::global();
        let response = request.send().await.map_err(|e| {
            metrics.upstream_call("ghl", None);
            OAuthError::Unavailable(format!("GHL OAuth: {}", upstream::describe(&e)))
        })?;
        metrics.upstream_call("ghl", Some(response.status().as_u16()));
        let body = checked(response).await.map_err(|error| match error {
            GhlError::Unauthorized(message) => OAuthError::Refused {
                status: 401,
                message,
            },
            GhlError::Rejected { status, message } if status != 404 => {
                OAuthError::Refused { status, message }
            }
            other => OAuthError::Unavailable(other.to_string()),
        })?;
        let body: GrantBody = serde_json::from_slice(&body)
            .map_err(|e| OAuthError::Unavailable(format!("unreadable token answer: {e}")))?;
        Ok(TokenGrant {
            access_token: SecretString::from(body.access_token),
            refresh_token: body.refresh_token.map(SecretString::from),
            expires_in: body
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_LIFETIME),
            scope: body.scope.unwrap_or_default(),
            user_type: match body.user_type.as_deref() {
                Some("Company") => UserType::Company,
                _ => UserType::Location,
            },
            location_id: body.location_id,
            company_id: body.company_id,
            approved_locations: body.approved_locations,
        })
    }
}
