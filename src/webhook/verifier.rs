//! GHL webhook signatures: Ed25519 (`x-ghl-signature`) or, only when that header is
//! absent, the legacy RSA-SHA256 PKCS#1 v1.5 (`x-wh-signature`). Always over the raw bytes.
use axum::http::HeaderMap;
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;

pub const OFFICIAL_ED25519_KEY_PEM: &str = include_str!("keys/ghl-ed25519.pem");
pub const OFFICIAL_RSA_KEY_PEM: &str = include_str!("keys/ghl-rsa.pem");

pub const ED25519_HEADER: &str = "x-ghl-signature";
pub const RSA_HEADER: &str = "x-wh-signature";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureScheme {
    Ed25519,
    Rsa,
}

impl SignatureScheme {
    pub fn header(self) -> &'static str {
        match self {
            SignatureScheme::Ed25519 => ED25519_HEADER,
            SignatureScheme::Rsa => RSA_HEADER,
        }
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("no x-ghl-signature or x-wh-signature header")]
    Missing,
    #[error("{0} is not a base64 signature of the expected length")]
    Malformed(&'static str),
    #[error("{0} does not match the body")]
    Mismatch(&'static str),
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct KeyError {
    pub variable: &'static str,
    pub problem: String,
}

#[derive(Clone)]
pub struct WebhookVerifier {
    ed25519: ed25519_dalek::VerifyingKey,
    rsa: rsa::pkcs1v15::VerifyingKey<sha2::Sha256>,
}

impl WebhookVerifier {
    /// Builds the verifier from PEM overrides, defaulting to GHL's published keys.
    pub fn from_pem(ed25519_pem: Option<&str>, rsa_pem: Option<&str>) -> Result<Self, KeyError> {
        let ed25519 = ed25519_dalek::VerifyingKey::from_public_key_pem(
            ed25519_pem.unwrap_or(OFFICIAL_ED25519_KEY_PEM),
        )
        .map_err(|e| KeyError {
            variable: "GHL_WEBHOOK_ED25519_KEY",
            problem: format!("not an Ed25519 SPKI public key in PEM: {e}"),
        })?;
        let rsa = rsa::RsaPublicKey::from_public_key_pem(rsa_pem.unwrap_or(OFFICIAL_RSA_KEY_PEM))
            .map_err(|e| KeyError {
            variable: "GHL_WEBHOOK_RSA_KEY",
            problem: format!("not an RSA SPKI public key in PEM: {e}"),
        })?;
        Ok(WebhookVerifier {
            ed25519,
            rsa: rsa::pkcs1v15::VerifyingKey::new(rsa),
        })
    }

    /// Checks the signature over exactly `body`. A present but failing `x-ghl-signature`
    /// never falls back to the legacy header: that would let a downgrade through.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<SignatureScheme, SignatureError> {
        if let Some(value) = headers.get(ED25519_HEADER) {
            let bytes = decode(value.as_bytes(), ED25519_HEADER)?;
            let signature = ed25519_dalek::Signature::from_slice(&bytes)
                .map_err(|_| SignatureError::Malformed(ED25519_HEADER))?;
            self.ed25519
                .verify_strict(body, &signature)
                .map_err(|_| SignatureError::Mismatch(ED25519_HEADER))?;
            return Ok(SignatureScheme::Ed25519);
        }
        if let Some(value) = headers.get(RSA_HEADER) {
            let bytes = decode(value.as_bytes(), RSA_HEADER)?;
            let signature = rsa::pkcs1v15::Signature::try_from(bytes.as_slice())
                .map_err(|_| SignatureError::Malformed(RSA_HEADER))?;
            self.rsa
                .verify(body, &signature)
                .map_err(|_| SignatureError::Mismatch(RSA_HEADER))?;
            return Ok(SignatureScheme::Rsa);
        }
        Err(SignatureError::Missing)
    }
}

fn decode(value: &[u8], header: &'static str) -> Result<Vec<u8>, SignatureError> {
    let trimmed = value.trim_ascii();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|_| SignatureError::Malformed(header))?;
    if bytes.is_empty() || bytes.len() > 1024 {
        return Err(SignatureError::Malformed(header));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::SignatureEncoding;
    use sha2::Digest;

    fn der_fingerprint(pem: &str) -> String {
        let (_, der) = pem_to_der(pem);
        hex::encode(sha2::Sha256::digest(der))
    }

    fn pem_to_der(pem: &str) -> (String, Vec<u8>) {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        (
            body.clone(),
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
    }

    /// The fingerprints recorded in shared/reference/ghl-api.md §4.6.
    #[test]
    fn embedded_keys_match_the_recorded_fingerprints() {
        assert_eq!(
            der_fingerprint(OFFICIAL_ED25519_KEY_PEM),
            "5a2c1b2749d3efcc233fb27d4ab43d56b8d20818c42cd226f6c9a3ff20d3097c"
        );
        assert_eq!(
            der_fingerprint(OFFICIAL_RSA_KEY_PEM),
            "2f62045d413b1b7747e26770ce7f57840cbf86288cd20ceb90d299a62501fd25"
        );
        let verifier = WebhookVerifier::from_pem(None, None).unwrap();
        assert_eq!(
            hex::encode(verifier.ed25519.as_bytes()),
            "8b61d1d6cacbe28d7c3bc0516bb815258ec6edbba96cddc7f40c09ac708388e8"
        );
        use rsa::traits::PublicKeyParts;
        assert_eq!(verifier.rsa.as_ref().size(), 512, "4096-bit key");
    }

    struct Keys {
        ed: ed25519_dalek::SigningKey,
        rsa: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
        verifier: WebhookVerifier,
    }

    fn keys() -> Keys {
        let ed = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let rsa_private =
            rsa::RsaPrivateKey::from_pkcs8_pem(crate::sim::webhooks::TEST_ONLY_RSA_PRIVATE_KEY_PEM)
                .unwrap();
        use rsa::pkcs8::EncodePublicKey as _;
        let rsa_pem = rsa_private
            .to_public_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        let ed_pem = ed
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        Keys {
            verifier: WebhookVerifier::from_pem(Some(&ed_pem), Some(&rsa_pem)).unwrap(),
            ed,
            rsa: rsa::pkcs1v15::SigningKey::new(rsa_private),
        }
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn ed25519_over_raw_bytes() {
        let k = keys();
        let body = br#"{"type":"ContactCreate", "id":"x"}"#;
        let sig = b64(&k.ed.sign(body).to_bytes());
        let h = headers(&[(ED25519_HEADER, sig)]);
        assert_eq!(k.verifier.verify(&h, body), Ok(SignatureScheme::Ed25519));
        // The same JSON re-serialised is different bytes and must fail.
        let reserialised = br#"{"type":"ContactCreate","id":"x"}"#;
        assert_eq!(
            k.verifier.verify(&h, reserialised),
            Err(SignatureError::Mismatch(ED25519_HEADER))
        );
    }

    #[test]
    fn rsa_only_when_ed25519_header_is_absent() {
        let k = keys();
        let body = br#"{"type":"ContactCreate"}"#;
        let rsa_sig = b64(&k.rsa.sign(body).to_bytes());
        let h = headers(&[(RSA_HEADER, rsa_sig.clone())]);
        assert_eq!(k.verifier.verify(&h, body), Ok(SignatureScheme::Rsa));

        // A bad Ed25519 signature next to a good RSA one is refused: no downgrade.
        let bad_ed = b64(&[0u8; 64]);
        let both = headers(&[(ED25519_HEADER, bad_ed), (RSA_HEADER, rsa_sig)]);
        assert_eq!(
            k.verifier.verify(&both, body),
            Err(SignatureError::Mismatch(ED25519_HEADER))
        );
    }

    #[test]
    fn missing_and_malformed_signatures_fail_closed() {
        let k = keys();
        let body = b"{}";
        assert_eq!(
            k.verifier.verify(&HeaderMap::new(), body),
            Err(SignatureError::Missing)
        );
        for bad in ["not base64!", "", &b64(&[1u8; 10])] {
            let h = headers(&[(ED25519_HEADER, bad.to_string())]);
            assert_eq!(
                k.verifier.verify(&h, body),
                Err(SignatureError::Malformed(ED25519_HEADER)),
                "{bad:?}"
            );
        }
        let h = headers(&[(RSA_HEADER, b64(&[1u8; 512]))]);
        assert!(k.verifier.verify(&h, body).is_err());
    }

    #[test]
    fn configured_keys_must_parse() {
        let err = WebhookVerifier::from_pem(Some("not a key"), None)
            .err()
            .unwrap();
        assert_eq!(err.variable, "GHL_WEBHOOK_ED25519_KEY");
        let err = WebhookVerifier::from_pem(None, Some(OFFICIAL_ED25519_KEY_PEM))
            .err()
            .unwrap();
        assert_eq!(err.variable, "GHL_WEBHOOK_RSA_KEY");
    }
}
