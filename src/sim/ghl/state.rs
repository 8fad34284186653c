//! In-memory state of the GHL simulator: credentials, rate budgets and CRM records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::InstallGrant;
use crate::sim::clock::Clock;
use crate::sim::rate_window::RateWindow;

/// Documented access-token lifetime: `expires_in: 86399` (reference §2.3).
pub(super) const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(86_399);

pub(super) type Shared = Arc<Mutex<GhlState>>;

pub(super) struct GhlState {
    pub(super) clock: Clock,
    pub(super) apps: HashMap<String, String>,
    pub(super) codes: HashMap<String, IssuedCode>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    pub(super) refresh_tokens: HashMap<String, RefreshToken>,
    pub(super) access_token_ttl: Duration,
    pub(super) successful_refreshes: usize,
    pub(super) rate: RateLimits,
    pub(super) contacts: BTreeMap<String, Value>,
    /// Tasks and notes by contact id, in insertion order.
    pub(super) tasks: BTreeMap<String, Vec<Value>>,
    pub(super) notes: BTreeMap<String, Vec<Value>>,
    pub(super) appointments: BTreeMap<String, Value>,
}

impl GhlState {
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            clock,
            apps: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            successful_refreshes: 0,
            rate: RateLimits::default(),
            contacts: BTreeMap::new(),
            tasks: BTreeMap::new(),
            notes: BTreeMap::new(),
            appointments: BTreeMap::new(),
        }
    }

    pub(super) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The principal behind a bearer token, if it is known and not expired.
    pub(super) fn caller(&self, bearer: &str) -> Option<Caller> {
        let token = self.access_tokens.get(bearer)?;
        let live = token.expires_at.is_none_or(|at| self.now() < at);
        live.then(|| token.caller.clone())
    }
}

/// Who a token acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    Location(String),
    Company(String),
}

impl Principal {
    /// Rate budgets are "per resource (i.e., Location or Company)" (reference §5).
    pub(super) fn budget_key(&self) -> String {
        match self {
            Principal::Location(id) => format!("location:{id}"),
            Principal::Company(id) => format!("company:{id}"),
        }
    }
}

/// The authenticated caller of a request, handed to handlers as an extension.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(super) principal: Principal,
    /// Locations a Company token may mint location tokens for.
    pub(super) approved_locations: Vec<String>,
}

pub(super) struct AccessToken {
    pub(super) caller: Caller,
    /// `None` for Private Integration tokens, which do not expire.
    pub(super) expires_at: Option<Instant>,
}

pub(super) struct IssuedCode {
    pub(super) client_id: String,
    pub(super) grant: InstallGrant,
}

pub(super) struct RefreshToken {
    pub(super) client_id: String,
    pub(super) grant: InstallGrant,
    /// Set once the token has been exchanged; it is dead afterwards except for the grace window.
    pub(super) rotation: Option<Rotation>,
}

/// The first successful use of a refresh token, replayed to identical requests within 30 s.
pub(super) struct Rotation {
    pub(super) at: Instant,
    pub(super) client_secret: String,
    pub(super) response: Value,
}

/// Burst and daily budgets per location/company. Enforcement is off by default; the headers
/// count down either way.
#[derive(Default)]
pub(super) struct RateLimits {
    pub(super) enforced: Option<(u32, Duration)>,
    pub(super) budgets: HashMap<String, Budget>,
}

pub(super) struct Budget {
    pub(super) burst: RateWindow,
    pub(super) daily: RateWindow,
}

impl Caller {
    /// Sub-Account routes accept only a token of the location that owns the resource.
    pub(super) fn may_access(&self, location_id: &str) -> Result<(), axum::response::Response> {
        match &self.principal {
            Principal::Location(id) if id == location_id => Ok(()),
            Principal::Location(_) => Err(super::errors::forbidden_location()),
            Principal::Company(_) => Err(super::errors::wrong_token_class()),
        }
    }
}
