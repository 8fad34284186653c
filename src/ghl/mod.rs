//! GoHighLevel API v2: client and models. Knows nothing of the store.
mod client;
mod models;

pub use client::{GhlClient, GhlError};
pub use models::{GhlAppointment, GhlContact, GhlNote, GhlTask};
