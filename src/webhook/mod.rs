//! GHL webhooks: signature schemes, the typed envelope, and intake into the store.
mod envelope;
mod intake;
mod verifier;

pub use envelope::{EnvelopeError, WebhookAction, WebhookEnvelope};
pub use intake::{AppLifecycle, IntakeError, IntakeOutcome, WebhookIntake};
pub use verifier::{
    KeyError, SignatureError, SignatureScheme, WebhookVerifier, ED25519_HEADER,
    OFFICIAL_ED25519_KEY_PEM, OFFICIAL_RSA_KEY_PEM, RSA_HEADER,
};
