//! The HTTP edge: one router per resource; errors become statuses here and only here.
mod admin;
pub mod connect_page;
mod error;
mod health;
mod metrics;
mod oauth;
mod webhooks;

use std::sync::Arc;

use axum::Router;

pub use error::ApiError;

use secrecy::SecretString;

use crate::domain::DeletePolicy;
use crate::oauth::InstallFlow;
use crate::store::SharedStore;
use crate::sync::WorkSignal;
use crate::tenants::TenantDirectory;
use crate::webhook::WebhookIntake;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<WebhookIntake>,
    pub store: SharedStore,
    pub tenants: Arc<dyn TenantDirectory>,
    pub signal: WorkSignal,
    pub delete_policy: DeletePolicy,
}

/// The service's routes; `/admin/*` only when an admin token is configured, `/oauth/*`
/// only for a Marketplace app.
pub fn router(
    state: AppState,
    admin_token: Option<SecretString>,
    install: Option<Arc<InstallFlow>>,
) -> Router {
    let admin = match admin_token {
        Some(token) => admin::router(state.clone(), token),
        None => Router::new(),
    };
    let oauth = install.map(oauth::router).unwrap_or_default();
    Router::new()
        .merge(webhooks::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(admin)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .merge(oauth)
}
