//! What GHL checks before any handler runs: rate budget, bearer token and `Version` header;
//! and the five `X-RateLimit-*` headers it adds to every answer (reference §1.2, §5).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::errors;
use super::state::{Budget, Caller, GhlState, Shared};
use crate::sim::rate_window::RateWindow;

/// "100 API requests per 10 seconds … 200,000 API requests per day" per app per resource.
const DEFAULT_BURST: (u32, Duration) = (100, Duration::from_secs(10));
const DAILY_LIMIT: u32 = 200_000;
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Requests without a usable token share this budget. GHL budgets per resource, which an
/// unauthenticated request does not name, so this budget is reported but never enforced.
const ANONYMOUS_BUDGET: &str = "anonymous";

/// `/oauth/token` is the only route without bearer token and without `Version` (reference §1.2).
const TOKEN_ENDPOINT: &str = "/oauth/token";

pub(super) async fn layer(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let (caller, admission) = {
        let mut state = state.lock().unwrap();
        let caller = bearer(request.headers()).and_then(|token| state.caller(token));
        let admission = admit(&mut state, caller.as_ref());
        (caller, admission)
    };
    let response = match (admission.refused, caller) {
        // GHL documents neither a 429 body nor `Retry-After` (reference §5: NOT FOUND), so
        // the refusal carries only the rate headers, which say when the window resets.
        (true, _) => errors::status(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        (false, _) if path == TOKEN_ENDPOINT => next.run(request).await,
        (false, None) => errors::invalid_token(),
        (false, Some(caller)) => match check_version(&path, request.headers()) {
            Err(refusal) => refusal,
            Ok(()) => {
                request.extensions_mut().insert(caller);
                next.run(request).await
            }
        },
    };
    with_rate_headers(response, &admission)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The `Version` each API family's spec enumerates (reference §1.2 table).
fn expected_version(path: &str) -> &'static str {
    if path.starts_with("/calendars/") {
        "2021-04-15"
    } else {
        "2021-07-28"
    }
}

fn check_version(path: &str, headers: &HeaderMap) -> Result<(), Response> {
    let expected = expected_version(path);
    match headers.get("version").and_then(|v| v.to_str().ok()) {
        Some(sent) if sent == expected => Ok(()),
        Some(sent) => Err(errors::bad_request(&format!(
            "Version header value {sent} is not supported here; expected {expected}"
        ))),
        None => Err(errors::bad_request("Version header was not found")),
    }
}

struct Admission {
    refused: bool,
    burst_max: u32,
    burst_interval: Duration,
    burst_remaining: u32,
    daily_remaining: u32,
}

/// Counts the request against its caller's budget, refusing it when enforcement is on and a
/// window is exhausted. Refused requests are not counted.
fn admit(state: &mut GhlState, caller: Option<&Caller>) -> Admission {
    let now = state.now();
    let enforced = state.rate.enforced;
    let (burst_max, burst_interval) = enforced.unwrap_or(DEFAULT_BURST);
    let key = caller.map_or_else(|| ANONYMOUS_BUDGET.to_owned(), |c| c.principal.budget_key());
    let budget = state.rate.budgets.entry(key).or_insert_with(|| Budget {
        burst: RateWindow::new(now),
        daily: RateWindow::new(now),
    });
    budget.burst.roll(now, burst_interval);
    // The daily reset time and timezone are NOT FOUND; a rolling 24 h window from first use.
    budget.daily.roll(now, DAY);
    let exhausted = budget.burst.used() >= burst_max || budget.daily.used() >= DAILY_LIMIT;
    let refused = enforced.is_some() && caller.is_some() && exhausted;
    if !refused {
        budget.burst.record();
        budget.daily.record();
    }
    Admission {
        refused,
        burst_max,
        burst_interval,
        burst_remaining: budget.burst.remaining(burst_max),
        daily_remaining: budget.daily.remaining(DAILY_LIMIT),
    }
}

fn with_rate_headers(mut response: Response, admission: &Admission) -> Response {
    let values = [
        ("x-ratelimit-limit-daily", u64::from(DAILY_LIMIT)),
        (
            "x-ratelimit-daily-remaining",
            u64::from(admission.daily_remaining),
        ),
        (
            "x-ratelimit-interval-milliseconds",
            admission.burst_interval.as_millis() as u64,
        ),
        ("x-ratelimit-max", u64::from(admission.burst_max)),
        (
            "x-ratelimit-remaining",
            u64::from(admission.burst_remaining),
        ),
    ];
    let headers = response.headers_mut();
    for (name, value) in values {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}
