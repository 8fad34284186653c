//! `GET /metrics`: Prometheus scrapes it (OpenMetrics text).
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::store::{StoreError, TenantState, WorkState};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = crate::metrics::global();
    // Counts come from the store, so every replica reports the shared truth; a store that
    // cannot answer leaves the last values and is logged.
    publish(
        "work",
        &WorkState::ALL,
        state.store.work_counts().await,
        WorkState::as_str,
        |s, n| metrics.set_work_items(s, n),
    );
    publish(
        "tenant",
        &TenantState::ALL,
        state.store.tenant_counts().await,
        TenantState::as_str,
        |s, n| metrics.set_tenants(s, n),
    );
    ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.render())
}

/// Sets one gauge per state, zero for states with no rows.
fn publish<S: Copy + PartialEq>(
    what: &str,
    all: &[S],
    counts: Result<Vec<(S, i64)>, StoreError>,
    label: fn(S) -> &'static str,
    set: impl Fn(&str, i64),
) {
    match counts {
        Ok(counts) => {
            for state in all {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                set(label(*state), n);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: {what} counts unavailable"),
    }
}
