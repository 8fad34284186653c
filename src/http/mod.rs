//! The HTTP edge: one router per resource; errors become statuses here and only here.
mod admin;
mod error;
mod health;
mod metrics;
mod webhooks;

use std::sync::Arc;

use axum::Router;

pub use error::ApiError;

use secrecy::SecretString;

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
}

/// The service's routes; `/admin/*` only when an admin token is configured.
pub fn router(state: AppState, admin_token: Option<SecretString>) -> Router {
    let admin = match admin_token {
        Some(token) => admin::router(state.clone(), token),
        None => Router::new(),
    };
    Router::new()
        .merge(webhooks::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(admin)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}
