//! Holded v1 response envelopes (reference §2.3, §2.4).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `{"status":1,"info":"Created"|"Updated"|"Successfully deleted","id":…}`.
pub(crate) fn success(status: StatusCode, info: &str, id: &str) -> Response {
    (status, Json(json!({"status": 1, "info": info, "id": id}))).into_response()
}

/// `Standard_Error` `{"status":0,"info":…}`; the live API often sends it with HTTP 200.
pub(crate) fn failure(status: StatusCode, info: &str) -> Response {
    (status, Json(json!({"status": 0, "info": info}))).into_response()
}

/// Error body for an arbitrary status (fault injection, rate limit).
pub(crate) fn failure_for_status(status: StatusCode) -> Response {
    failure(status, status.canonical_reason().unwrap_or("Error"))
}

/// The live API answers unknown routes with its HTML 404 page and HTTP 200 (DRIFT-INV-13).
pub(crate) fn html_not_found() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        HTML_NOT_FOUND_PAGE,
    )
        .into_response()
}

const HTML_NOT_FOUND_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Page not found | Holded</title></head>\n<body><h1>404</h1><p>Sorry, the page you are looking for does not exist.</p></body>\n</html>\n";
