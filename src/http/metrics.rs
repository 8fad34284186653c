//! `GET /metrics`: Prometheus scrapes it (OpenMetrics text).
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::store::WorkState;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = crate::metrics::global();
    // Work counts come from the store, so every replica reports the shared truth; a
    // store that cannot answer leaves the last values and is logged.
    match state.store.work_counts().await {
        Ok(counts) => {
            for work_state in WorkState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == work_state)
                    .map_or(0, |(_, n)| *n);
                metrics.set_work_items(work_state.as_str(), n);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: work counts unavailable"),
    }
    ([(header::CONTENT_TYPE, OPENMETRICS)], metrics.render())
}
