//! Identifier formats of the two APIs.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// GHL ids are 20 alphanumeric characters (e.g. `ve9EPM428h8vShlRW1KT` in every spec example).
pub(crate) fn ghl_id() -> String {
    random_alphanumeric(20)
}

/// Opaque bearer/refresh token; long enough that guessing one is not a concern in tests.
pub(crate) fn token() -> String {
    random_alphanumeric(48)
}

/// Holded ids are 24-hex Mongo ObjectIds (`5ac4f2cec839ea004e18a463`).
pub(crate) fn holded_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

fn random_alphanumeric(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
