//! The HTTP edge: one router per resource; errors become statuses here and only here.
mod error;
mod health;
mod webhooks;

use std::sync::Arc;

use axum::Router;

pub use error::ApiError;

use crate::store::SharedStore;
use crate::webhook::WebhookIntake;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<WebhookIntake>,
    pub store: SharedStore,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(webhooks::router())
        .merge(health::router())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}
