//! GoHighLevel API v2: client and models. Knows nothing of the store.
mod client;
mod models;

pub use client::{GhlAccess, GhlClient, GhlError, DEFAULT_BURST, DEFAULT_DAILY};
pub use models::{GhlAppointment, GhlContact, GhlNote, GhlTask, SearchHit, SearchPage};
