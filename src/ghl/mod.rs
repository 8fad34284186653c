//! GoHighLevel API v2: the REST client, the OAuth token endpoints, and models. Knows
//! nothing of the store.
mod client;
mod models;
mod oauth;

pub use client::{
    FixedToken, GhlAccess, GhlClient, GhlError, TokenSource, DEFAULT_BURST, DEFAULT_DAILY,
};
pub use models::{GhlAppointment, GhlContact, GhlNote, GhlTask, SearchHit, SearchPage};
pub use oauth::{OAuthApp, OAuthClient, OAuthError, TokenGrant, UserType};
