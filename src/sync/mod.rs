//! Turning "this record may be stale" into Holded writes. Knows nothing of axum.
mod activity;
mod activity_mapper;
mod backoff;
mod contact;
mod error;
mod mapper;
mod sweeper;
mod worker;

pub use activity::ActivitySync;
pub use activity_mapper::{unix_seconds, ActivityMapper, GhlActivity, MappedEvent};
pub use contact::{ContactSync, Synced};
pub use error::SyncError;
pub use mapper::{canonical_phone, ContactMapper, MappedContact};
pub use sweeper::{contact_work, Sweeper};
pub use worker::{WorkSignal, WorkerPool, WorkerSettings};
