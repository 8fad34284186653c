//! Faithful simulators of the GHL and Holded APIs, for tests, the demo and benchmarks.
//!
//! Each simulator is a real HTTP server on `127.0.0.1:0` whose in-memory state tests read and
//! change directly. Both share the fault-injection and request-recording middleware, so a test
//! can make either API slow, flaky or silent in the same way.

pub mod faults;
pub mod ghl;
pub mod holded;
pub mod recorder;
pub mod webhooks;

mod clock;
mod ids;
mod rate_window;
mod server;
