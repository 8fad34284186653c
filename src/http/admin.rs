//! `/admin/*`: work by state, dead letters and their replay, resync, tenants. Bearer
//! `ADMIN_TOKEN`, compared in constant time; not mounted at all without a token.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::domain::{EntityKey, EntityKind, GhlId, LocationId};
use crate::store::{TenantState, WorkRequest, WorkState, WorkStatus};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router(state: AppState, token: SecretString) -> Router<AppState> {
    Router::new()
        .route("/admin/work", get(work))
        .route("/admin/dead", get(dead))
        .route("/admin/dead/replay", post(replay_all))
        .route("/admin/dead/{id}/replay", post(replay_one))
        .route("/admin/resync", post(resync))
        .route("/admin/tenants", get(tenants))
        .route_layer(middleware::from_fn_with_state(token, require_token))
        .with_state(state)
}

/// Both sides are hashed first so the comparison takes the same time whatever the lengths.
fn token_matches(presented: &str, expected: &SecretString) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    presented.ct_eq(&expected).into()
}

async fn require_token(
    State(token): State<SecretString>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if presented.is_empty() || !token_matches(presented, &token) {
        return Err(ApiError {
            www_authenticate: true,
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid admin bearer token is required",
            )
        });
    }
    Ok(next.run(request).await)
}

#[derive(Deserialize)]
struct WorkQuery {
    state: Option<String>,
    limit: Option<i64>,
}

fn store_error(error: crate::store::StoreError) -> ApiError {
    tracing::error!(%error, "admin: store error");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store could not answer",
    )
}

fn item_json(item: &WorkStatus) -> Value {
    json!({
        "id": item.id,
        "location_id": item.key.location_id.as_str(),
        "kind": item.key.kind.as_str(),
        "ghl_id": item.key.ghl_id.as_str(),
        "state": item.state.as_str(),
        "generation": item.generation,
        "attempts": item.attempts,
        "last_error": item.last_error,
        "updated_at": item.updated_at.to_rfc3339(),
    })
}

fn parse_state(raw: &str) -> Result<WorkState, ApiError> {
    WorkState::parse(raw).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_state",
            "state must be pending, done or dead",
        )
    })
}

fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// The query string, or the JSON 400 every other bad input gets.
fn work_query(query: Result<Query<WorkQuery>, QueryRejection>) -> Result<WorkQuery, ApiError> {
    query
        .map(|Query(query)| query)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

async fn work(
    State(state): State<AppState>,
    query: Result<Query<WorkQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = work_query(query)?;
    let filter = query.state.as_deref().map(parse_state).transpose()?;
    let limit = limit(query.limit)?;
    let counts = state.store.work_counts().await.map_err(store_error)?;
    let items = state
        .store
        .list_work(filter, limit)
        .await
        .map_err(store_error)?;
    let counts: serde_json::Map<String, Value> = WorkState::ALL
        .into_iter()
        .map(|s| {
            let n = counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
            (s.as_str().to_owned(), json!(n))
        })
        .collect();
    Ok(Json(
        json!({ "counts": counts, "items": items.iter().map(item_json).collect::<Vec<_>>() }),
    ))
}

async fn dead(
    State(state): State<AppState>,
    query: Result<Query<WorkQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = work_query(query)?;
    let limit = limit(query.limit)?;
    let items = state
        .store
        .list_work(Some(WorkState::Dead), limit)
        .await
        .map_err(store_error)?;
    Ok(Json(
        json!({ "items": items.iter().map(item_json).collect::<Vec<_>>() }),
    ))
}

async fn replay_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "the id must be a number",
        )
    })?;
    let replayed = state
        .store
        .replay_dead(Some(id))
        .await
        .map_err(store_error)?;
    if replayed == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no dead item with that id",
        ));
    }
    state.signal.notify();
    Ok(Json(json!({ "replayed": replayed })))
}

async fn replay_all(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let replayed = state.store.replay_dead(None).await.map_err(store_error)?;
    state.signal.notify();
    Ok(Json(json!({ "replayed": replayed })))
}

#[derive(Deserialize)]
struct ResyncBody {
    location_id: String,
    kind: String,
    ghl_id: String,
    /// The contact of a task or note (appointments name their own).
    parent_id: Option<String>,
}

async fn resync(
    State(state): State<AppState>,
    body: Result<Json<ResyncBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text()))?;
    let invalid = |field: &str, problem: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("{field}: {problem}"),
        )
    };
    let key = EntityKey {
        location_id: LocationId::parse(&body.location_id)
            .map_err(|e| invalid("location_id", e.0))?,
        kind: EntityKind::parse(&body.kind).map_err(|e| invalid("kind", e.0))?,
        ghl_id: GhlId::parse(&body.ghl_id).map_err(|e| invalid("ghl_id", e.0))?,
    };
    let parent = body
        .parent_id
        .as_deref()
        .map(GhlId::parse)
        .transpose()
        .map_err(|e| invalid("parent_id", e.0))?;
    state
        .store
        .enqueue(&[WorkRequest {
            key,
            parent,
            deleted: false,
        }])
        .await
        .map_err(store_error)?;
    state.signal.notify();
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": true }))))
}

/// The environment's Private Integration location, then every Marketplace install with its
/// state (an install that is not `active` has its work paused).
async fn tenants(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let installed = state.store.tenants().await.map_err(store_error)?;
    let synced = state.tenants.all().await;
    let private = synced
        .iter()
        .filter(|t| !installed.iter().any(|i| i.location_id == t.location_id))
        .map(|t| {
            json!({
                "location_id": t.location_id.as_str(),
                "setup": "private_integration",
                "state": TenantState::Active.as_str(),
                "company_id": null,
                "delete_policy": t.delete_policy.as_str(),
            })
        });
    let marketplace = installed.iter().map(|i| {
        json!({
            "location_id": i.location_id.as_str(),
            "setup": "marketplace",
            "state": i.state.as_str(),
            "company_id": i.company_id,
            "delete_policy": state.delete_policy.as_str(),
        })
    });
    Ok(Json(
        json!({ "tenants": private.chain(marketplace).collect::<Vec<_>>() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content_only() {
        let expected = SecretString::from("s3cret-admin-token");
        assert!(token_matches("s3cret-admin-token", &expected));
        assert!(!token_matches("s3cret-admin-tokeN", &expected));
        assert!(!token_matches("s3cret", &expected));
        assert!(!token_matches("", &expected));
    }
}
