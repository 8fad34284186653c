//! GHL v2 error bodies (reference §1.3, DOCS:common; 403/404 from the v3 common schemas).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `BadRequestDTO`-style `{statusCode, message}` for any status.
pub(crate) fn status(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"statusCode": status.as_u16(), "message": message})),
    )
        .into_response()
}

/// Error body for an arbitrary status (fault injection).
pub(crate) fn for_status(code: StatusCode) -> Response {
    status(code, code.canonical_reason().unwrap_or("Error"))
}

pub(crate) fn bad_request(message: &str) -> Response {
    status(StatusCode::BAD_REQUEST, message)
}

/// `UnauthorizedDTO`.
pub(crate) fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"statusCode": 401, "message": message, "error": "Unauthorized"})),
    )
        .into_response()
}

pub(crate) fn invalid_token() -> Response {
    unauthorized("Invalid token: access token is invalid")
}

/// An agency (Company) token on a Sub-Account route, or the reverse. Not in the v2 spec; the
/// message is the one integrators report from the live API (UNVERIFIED).
pub(crate) fn wrong_token_class() -> Response {
    unauthorized(
        "This authClass type is not allowed to access this scope. \
         Please reach out to the Platform team to get it added.",
    )
}

/// A valid token of another location. The v2 spec declares no 403, but v3 has `ForbiddenDTO`
/// and a token that is valid yet scoped elsewhere is a permission problem, not an
/// authentication one; the message is the one integrators report (UNVERIFIED).
pub(crate) fn forbidden_location() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "statusCode": 403,
            "message": "The token does not have access to this location.",
            "error": "Forbidden",
        })),
    )
        .into_response()
}

/// The v2 spec declares no 404; this follows v3 `NotFoundDTO {statusCode, message}`.
pub(crate) fn not_found(message: &str) -> Response {
    status(StatusCode::NOT_FOUND, message)
}

/// `UnprocessableDTO`: `message` is an array.
pub(crate) fn unprocessable(messages: &[String]) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "statusCode": 422,
            "message": messages,
            "error": "Unprocessable Entity",
        })),
    )
        .into_response()
}
