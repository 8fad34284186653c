//! Secrets at rest (AES-256-GCM) and signed, expiring tokens (HMAC-SHA256), both keyed from the
//! one configured ENCRYPTION_KEY so an operator has a single secret to generate and rotate.
use std::fmt;
use std::time::Duration;

use aes_gcm::aead::{self, Aead, AeadCore, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Leads every sealed value, so a later format can be told apart instead of guessed at.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Prefixed to a signer's purpose, so derived keys cannot collide with another program's use
/// of the same key material.
const SIGNER_LABEL: &[u8] = b"ghl-holded-sync/";
const MAC_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("ENCRYPTION_KEY must be 32 random bytes in standard base64")]
pub struct InvalidKey;

/// Deliberately without a reason: a wrong key, tampering and a ciphertext moved to another row
/// must look the same to a caller, a log and an attacker.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("sealed secret could not be opened")]
pub struct SealError;

/// AES-256-GCM with the ENCRYPTION_KEY; what the database stores is `seal`'s output only.
#[derive(Clone)]
pub struct SecretSealer {
    cipher: Aes256Gcm,
    /// HMAC keyed with the ENCRYPTION_KEY, used only to derive `TokenSigner` keys.
    derive: HmacSha256,
}

// By hand: it must stay printable inside other state without ever showing key material.
impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSealer").finish_non_exhaustive()
    }
}

impl SecretSealer {
    /// `key_base64`: 32 random bytes, standard base64 (as config validates).
    pub fn from_base64_key(key_base64: &SecretString) -> Result<Self, InvalidKey> {
        let key = Zeroizing::new(
            STANDARD
                .decode(key_base64.expose_secret())
                .map_err(|_| InvalidKey)?,
        );
        if key.len() != KEY_LEN {
            return Err(InvalidKey);
        }
        Ok(SecretSealer {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
            derive: <HmacSha256 as KeyInit>::new_from_slice(&key)
                .expect("HMAC accepts keys of any length"),
        })
    }

    /// version byte (1) || 96-bit random nonce || ciphertext+tag. `context` is bound as AAD so a
    /// ciphertext copied to another row/column (e.g. "tokens.access:location:abc") does not open.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        // Random nonces are safe while one key seals far fewer than 2^32 values, which a
        // per-installation token store never approaches.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .expect("AES-GCM only refuses inputs larger than 64 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError)?;
        if version != SEAL_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        self.cipher
            .decrypt(aead::Nonce::<Aes256Gcm>::from_slice(nonce), payload)
            .map_err(|_| SealError)
    }

    pub fn seal_secret(&self, secret: &SecretString, context: &str) -> Vec<u8> {
        self.seal(secret.expose_secret().as_bytes(), context)
    }

    pub fn open_secret(&self, sealed: &[u8], context: &str) -> Result<SecretString, SealError> {
        let plaintext = Zeroizing::new(self.open(sealed, context)?);
        std::str::from_utf8(&plaintext)
            .map(SecretString::from)
            .map_err(|_| SealError)
    }

    /// A key for `TokenSigner` derived from the same ENCRYPTION_KEY for one purpose
    /// (HMAC-SHA256(key, "ghl-holded-sync/" + purpose)), so one configured secret serves both
    /// and the two uses never share key bytes.
    pub fn signer(&self, purpose: &str) -> TokenSigner {
        let mut derive = self.derive.clone();
        derive.update(SIGNER_LABEL);
        derive.update(purpose.as_bytes());
        TokenSigner::from_key(&derive.finalize().into_bytes())
    }
}

/// HMAC-SHA256-signed, expiring tokens carried through a browser (the OAuth `state`, the
/// connect form's ticket). Single use is NOT its job (the caller records the nonce).
#[derive(Clone)]
pub struct TokenSigner {
    mac: HmacSha256,
}

// By hand, for the same reason as `SecretSealer`'s.
impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedClaims {
    pub subject: String,
    pub nonce: String,
    /// Whole seconds: the token carries a Unix timestamp.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TokenRejected {
    #[error("malformed")]
    Malformed,
    #[error("signature does not match")]
    Forged,
    #[error("expired")]
    Expired,
}

impl TokenSigner {
    fn from_key(key: &[u8]) -> Self {
        TokenSigner {
            mac: <HmacSha256 as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length"),
        }
    }

    fn mac_of(&self, payload: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac
    }

    /// URL-safe text (base64url, no padding; only [A-Za-z0-9_-.]) holding subject, a fresh
    /// random 128-bit nonce (hex) and the expiry, plus the MAC.
    pub fn issue(&self, subject: &str, ttl: Duration) -> String {
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        // Saturating rather than failing: a TTL beyond chrono's range can only mean "never".
        let expires_at = TimeDelta::from_std(ttl)
            .ok()
            .and_then(|ttl| Utc::now().checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // The subject goes last so it may contain anything, dots included.
        let claims = format!(
            "{}.{}.{subject}",
            expires_at.timestamp(),
            hex::encode(nonce)
        );
        let payload = URL_SAFE_NO_PAD.encode(claims);
        let mac = URL_SAFE_NO_PAD.encode(self.mac_of(&payload).finalize().into_bytes());
        format!("{payload}.{mac}")
    }

    /// Checks the MAC in constant time (hmac's verify_slice), then the expiry against `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<SignedClaims, TokenRejected> {
        let (payload, mac) = token.split_once('.').ok_or(TokenRejected::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenRejected::Malformed)?;
        if mac.len() != MAC_LEN {
            return Err(TokenRejected::Malformed);
        }
        self.mac_of(payload)
            .verify_slice(&mac)
            .map_err(|_| TokenRejected::Forged)?;
        // Parsed only once authentic, so forged input never reaches the parser.
        let claims = parse_claims(payload).ok_or(TokenRejected::Malformed)?;
        if now >= claims.expires_at {
            return Err(TokenRejected::Expired);
        }
        Ok(claims)
    }
}

fn parse_claims(payload: &str) -> Option<SignedClaims> {
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let mut parts = claims.splitn(3, '.');
    let expires_at = DateTime::from_timestamp(parts.next()?.parse().ok()?, 0)?;
    let nonce = parts.next()?.to_owned();
    let subject = parts.next()?.to_owned();
    Some(SignedClaims {
        subject,
        nonce,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> SecretSealer {
        let key = SecretString::from(STANDARD.encode([byte; KEY_LEN]));
        SecretSealer::from_base64_key(&key).unwrap()
    }

    const CONTEXT: &str = "tokens.access:location:abc";

    #[test]
    fn seal_round_trips() {
        let sealer = sealer(7);
        let sealed = sealer.seal(b"pit-123-secret", CONTEXT);
        assert_eq!(sealer.open(&sealed, CONTEXT).unwrap(), b"pit-123-secret");
        assert_eq!(sealed[0], SEAL_VERSION);
        assert_eq!(
            sealed.len(),
            1 + NONCE_LEN + b"pit-123-secret".len() + TAG_LEN
        );
        assert_eq!(
            sealer.open(&sealer.seal(b"", CONTEXT), CONTEXT).unwrap(),
            b""
        );
    }

    #[test]
    fn secret_strings_round_trip() {
        let sealer = sealer(7);
        let secret = SecretString::from("holded-key-ñ-✓");
        let sealed = sealer.seal_secret(&secret, CONTEXT);
        let opened = sealer.open_secret(&sealed, CONTEXT).unwrap();
        assert_eq!(opened.expose_secret(), "holded-key-ñ-✓");
    }

    #[test]
    fn open_secret_rejects_non_utf8() {
        let sealer = sealer(7);
        let sealed = sealer.seal(&[0xff, 0xfe, 0x00], CONTEXT);
        assert_eq!(sealer.open_secret(&sealed, CONTEXT).unwrap_err(), SealError);
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce_and_hides_the_plaintext() {
        let sealer = sealer(7);
        let plaintext = b"a-very-recognisable-plaintext";
        let first = sealer.seal(plaintext, CONTEXT);
        let second = sealer.seal(plaintext, CONTEXT);
        assert_ne!(first, second);
        assert_ne!(first[1..1 + NONCE_LEN], second[1..1 + NONCE_LEN]);
        for sealed in [&first, &second] {
            assert!(!sealed
                .windows(plaintext.len())
                .any(|window| window == plaintext));
        }
    }

    #[test]
    fn wrong_context_does_not_open() {
        let sealer = sealer(7);
        let sealed = sealer.seal(b"secret", CONTEXT);
        assert_eq!(
            sealer.open(&sealed, "tokens.refresh:location:abc"),
            Err(SealError)
        );
        assert_eq!(sealer.open(&sealed, ""), Err(SealError));
    }

    #[test]
    fn another_key_does_not_open() {
        let sealed = sealer(7).seal(b"secret", CONTEXT);
        assert_eq!(sealer(8).open(&sealed, CONTEXT), Err(SealError));
    }

    #[test]
    fn any_flipped_bit_does_not_open() {
        let sealer = sealer(7);
        let sealed = sealer.seal(b"secret", CONTEXT);
        for index in 0..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[index] ^= 1 << bit;
                assert_eq!(
                    sealer.open(&tampered, CONTEXT),
                    Err(SealError),
                    "byte {index} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_input_does_not_open() {
        let sealer = sealer(7);
        let sealed = sealer.seal(b"secret", CONTEXT);
        for len in 0..sealed.len() {
            assert_eq!(sealer.open(&sealed[..len], CONTEXT), Err(SealError));
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert_eq!(sealer.open(&extended, CONTEXT), Err(SealError));
    }

    #[test]
    fn key_must_be_32_bytes_of_base64() {
        for bad in [
            String::new(),
            STANDARD.encode([1u8; 16]),
            STANDARD.encode([1u8; 31]),
            STANDARD.encode([1u8; 33]),
            "not base64 at all!".to_owned(),
            // URL-safe alphabet: config validates standard base64, so must this.
            URL_SAFE_NO_PAD.encode([0xfbu8; 32]),
        ] {
            let key = SecretString::from(bad.clone());
            assert_eq!(
                SecretSealer::from_base64_key(&key).unwrap_err(),
                InvalidKey,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let sealer = sealer(7);
        assert_eq!(format!("{sealer:?}"), "SecretSealer { .. }");
        assert_eq!(format!("{:?}", sealer.signer("x")), "TokenSigner { .. }");
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn token_round_trips() {
        let signer = sealer(7).signer("oauth-state");
        let before = Utc::now();
        let token = signer.issue("location:abc", HOUR);
        let claims = signer.verify(&token, Utc::now()).unwrap();
        assert_eq!(claims.subject, "location:abc");
        assert_eq!(claims.nonce.len(), 32);
        assert!(claims.nonce.chars().all(|c| c.is_ascii_hexdigit()));
        let ttl = claims.expires_at - before;
        assert!(
            ttl > TimeDelta::minutes(59) && ttl <= TimeDelta::hours(1),
            "{ttl}"
        );
    }

    #[test]
    fn tokens_are_url_safe_and_carry_fresh_nonces() {
        let signer = sealer(7).signer("oauth-state");
        let first = signer.issue("same subject", HOUR);
        let second = signer.issue("same subject", HOUR);
        for token in [&first, &second] {
            assert!(token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        }
        let now = Utc::now();
        assert_ne!(
            signer.verify(&first, now).unwrap().nonce,
            signer.verify(&second, now).unwrap().nonce
        );
    }

    #[test]
    fn awkward_subjects_survive() {
        let signer = sealer(7).signer("ticket");
        for subject in [
            "",
            "a.b.c",
            "...",
            "ünïcödé ✓ 日本",
            "spaces & <html> \"quotes\"",
            "line\nbreak",
        ] {
            let token = signer.issue(subject, HOUR);
            assert_eq!(signer.verify(&token, Utc::now()).unwrap().subject, subject);
        }
    }

    #[test]
    fn tampered_subject_is_forged() {
        let signer = sealer(7).signer("ticket");
        let token = signer.issue("location:abc", HOUR);
        let (payload, mac) = token.split_once('.').unwrap();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let altered = URL_SAFE_NO_PAD.encode(claims.replace("location:abc", "location:xyz"));
        assert_eq!(
            signer.verify(&format!("{altered}.{mac}"), Utc::now()),
            Err(TokenRejected::Forged)
        );
    }

    #[test]
    fn tampered_mac_is_forged() {
        let signer = sealer(7).signer("ticket");
        let token = signer.issue("location:abc", HOUR);
        let (payload, mac) = token.split_once('.').unwrap();
        // The first character is all signal bits; the last one also holds padding bits.
        let first = if mac.starts_with('A') { 'B' } else { 'A' };
        let altered = format!("{payload}.{first}{}", &mac[1..]);
        assert_eq!(
            signer.verify(&altered, Utc::now()),
            Err(TokenRejected::Forged)
        );
    }

    #[test]
    fn another_purpose_or_key_is_forged() {
        let token = sealer(7).signer("oauth-state").issue("location:abc", HOUR);
        let now = Utc::now();
        assert_eq!(
            sealer(7).signer("connect-ticket").verify(&token, now),
            Err(TokenRejected::Forged)
        );
        assert_eq!(
            sealer(8).signer("oauth-state").verify(&token, now),
            Err(TokenRejected::Forged)
        );
    }

    #[test]
    fn signer_key_is_the_documented_derivation_not_the_raw_key() {
        let master = [7u8; KEY_LEN];
        let mut derive = <HmacSha256 as KeyInit>::new_from_slice(&master).unwrap();
        derive.update(b"ghl-holded-sync/oauth-state");
        let expected = TokenSigner::from_key(&derive.finalize().into_bytes());
        let token = sealer(7).signer("oauth-state").issue("s", HOUR);
        assert!(expected.verify(&token, Utc::now()).is_ok());
        assert_eq!(
            TokenSigner::from_key(&master).verify(&token, Utc::now()),
            Err(TokenRejected::Forged)
        );
    }

    #[test]
    fn expired_token_is_rejected() {
        let signer = sealer(7).signer("ticket");
        let token = signer.issue("location:abc", Duration::from_secs(60));
        assert!(signer.verify(&token, Utc::now()).is_ok());
        let later = Utc::now() + TimeDelta::seconds(61);
        assert_eq!(signer.verify(&token, later), Err(TokenRejected::Expired));
        let zero = signer.issue("location:abc", Duration::ZERO);
        assert_eq!(
            signer.verify(&zero, Utc::now()),
            Err(TokenRejected::Expired)
        );
    }

    #[test]
    fn huge_ttl_saturates_instead_of_panicking() {
        let signer = sealer(7).signer("ticket");
        let token = signer.issue("s", Duration::MAX);
        assert!(signer.verify(&token, Utc::now()).is_ok());
    }

    #[test]
    fn garbage_is_malformed() {
        let signer = sealer(7).signer("ticket");
        let valid = signer.issue("s", HOUR);
        let (payload, _) = valid.split_once('.').unwrap();
        for garbage in [
            "",
            ".",
            "no-dot-here",
            "abc.def",
            "%%%.%%%",
            &format!("{payload}."),
            &format!("{payload}.not*base64"),
        ] {
            assert_eq!(
                signer.verify(garbage, Utc::now()),
                Err(TokenRejected::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn rejection_messages() {
        assert_eq!(TokenRejected::Malformed.to_string(), "malformed");
        assert_eq!(
            TokenRejected::Forged.to_string(),
            "signature does not match"
        );
        assert_eq!(TokenRejected::Expired.to_string(), "expired");
    }
}
