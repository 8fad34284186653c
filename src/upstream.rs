//! What the GHL and Holded clients share about talking to an upstream API.
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// An HTTP client whose every request ends within `timeout`: no worker hangs on a peer.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("ghl-holded-sync/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("TLS backend initialises")
}

/// `Retry-After` in seconds (the HTTP-date form is not used by either API).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A transport failure described without the URL (which is ours, but noisy in logs).
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Appends path segments (escaped) to a base URL, keeping any path the base already has.
pub fn join(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("http(s) base URL")
        .pop_if_empty()
        .extend(segments);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }

    #[test]
    fn join_escapes_ids_and_keeps_base_paths() {
        let base: url::Url = "http://127.0.0.1:9/prefix/".parse().unwrap();
        assert_eq!(
            join(&base, &["contacts", "a b"]).as_str(),
            "http://127.0.0.1:9/prefix/contacts/a%20b"
        );
    }
}
