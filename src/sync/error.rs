//! How a failed sync is retried: later (transient) or never without a human (permanent).
use std::time::Duration;

use crate::ghl::GhlError;
use crate::holded::HoldedError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
    /// The location cannot be synced until the app is installed again; its work waits,
    /// neither retried nor dead-lettered.
    #[error("{0}")]
    Paused(String),
}

impl SyncError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SyncError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

impl From<GhlError> for SyncError {
    fn from(error: GhlError) -> Self {
        match error {
            GhlError::RateLimited { retry_after } => SyncError::Transient {
                reason: error.to_string(),
                retry_after,
            },
            // A 4xx other than 401/429 will not change by retrying; neither will a body we
            // cannot read.
            GhlError::Rejected { .. } | GhlError::BadBody(_) => {
                SyncError::Permanent(error.to_string())
            }
            GhlError::Reconnect(_) => SyncError::Paused(error.to_string()),
            GhlError::Unauthorized(_) | GhlError::Unavailable { .. } | GhlError::Transport(_) => {
                SyncError::transient(error.to_string())
            }
        }
    }
}

impl From<HoldedError> for SyncError {
    fn from(error: HoldedError) -> Self {
        match error {
            HoldedError::RateLimited { retry_after } => SyncError::Transient {
                reason: error.to_string(),
                retry_after,
            },
            HoldedError::Rejected { .. } | HoldedError::BadBody(_) | HoldedError::NotFound => {
                SyncError::Permanent(error.to_string())
            }
            HoldedError::Unauthorized(_)
            | HoldedError::Unavailable { .. }
            | HoldedError::HtmlPage { .. }
            | HoldedError::Transport(_) => SyncError::transient(error.to_string()),
        }
    }
}

impl From<StoreError> for SyncError {
    fn from(error: StoreError) -> Self {
        SyncError::transient(format!("store: {error}"))
    }
}
