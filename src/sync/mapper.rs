//! DESIGN.md's default mapping from a GHL contact to the Holded contact it should produce.
use sha2::Digest;

use crate::ghl::GhlContact;
use crate::holded::{BillAddress, HoldedContactFields, SocialNetworks};

/// The Holded record a GHL contact maps to, with the hash that says whether it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedContact {
    pub fields: HoldedContactFields,
    pub hash: String,
}

pub struct ContactMapper;

impl ContactMapper {
    pub fn map(contact: &GhlContact) -> MappedContact {
        let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_owned();
        let company = text(&contact.company_name);
        let mut tags: Vec<String> = contact
            .tags
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        // GHL does not promise a tag order; sorting keeps the hash stable across reads.
        tags.sort();
        tags.dedup();
        let fields = HoldedContactFields {
            name: display_name(contact),
            email: text(&contact.email).to_lowercase(),
            phone: canonical_phone(&text(&contact.phone)),
            contact_type: match contact.contact_type.as_deref() {
                Some("customer") => Some("client".to_owned()),
                Some("lead") => Some("lead".to_owned()),
                _ => None,
            },
            isperson: company.is_empty(),
            bill_address: BillAddress {
                address: text(&contact.address1),
                city: text(&contact.city),
                postal_code: text(&contact.postal_code),
                province: text(&contact.state),
                country: text(&contact.country),
            },
            tags,
            social_networks: SocialNetworks {
                website: text(&contact.website),
            },
        };
        let hash = content_hash(&fields);
        MappedContact { fields, hash }
    }
}

/// companyName, else first + last, else GHL's `name`, else email, else phone, else the id:
/// Holded shows contacts by name, so it is never empty.
fn display_name(contact: &GhlContact) -> String {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let full = [clean(&contact.first_name), clean(&contact.last_name)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    clean(&contact.company_name)
        .or_else(|| Some(full).filter(|f| !f.is_empty()))
        .or_else(|| clean(&contact.name))
        .or_else(|| clean(&contact.email))
        .or_else(|| clean(&contact.phone))
        .unwrap_or_else(|| format!("GHL contact {}", contact.id))
}

/// One canonical form (E.164 style: `+` and digits) so the same number never reads as a
/// change, and Holded's exact-match phone filter finds it. Anything we can't read as a
/// phone number is kept as typed.
pub fn canonical_phone(raw: &str) -> String {
    let trimmed = raw.trim();
    let (plus, rest) = if let Some(rest) = trimmed.strip_prefix('+') {
        (true, rest)
    } else if let Some(rest) = trimmed.strip_prefix("00") {
        (true, rest)
    } else {
        (false, trimmed)
    };
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/'))
        .collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return trimmed.to_owned();
    }
    if plus {
        format!("+{digits}")
    } else {
        digits
    }
}

/// Versioned so that a change to the mapping re-syncs every record once.
fn content_hash(fields: &HoldedContactFields) -> String {
    let bytes = serde_json::to_vec(fields).expect("plain struct serialises");
    format!("contact-v1:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> GhlContact {
        GhlContact {
            id: "c1".into(),
            first_name: Some("John".into()),
            last_name: Some("Deo".into()),
            email: Some("JohnDeo@Gmail.com ".into()),
            phone: Some("+91 950-959 7501".into()),
            contact_type: Some("customer".into()),
            address1: Some("3535 1st St N".into()),
            city: Some("Dolomite".into()),
            state: Some("AL".into()),
            postal_code: Some("452001".into()),
            country: Some("DE".into()),
            website: Some("https://example.com".into()),
            tags: vec!["vip".into(), "b2b".into(), "vip".into()],
            ..Default::default()
        }
    }

    #[test]
    fn maps_every_field_per_design() {
        let mapped = ContactMapper::map(&contact()).fields;
        assert_eq!(mapped.name, "John Deo");
        assert_eq!(mapped.email, "johndeo@gmail.com");
        assert_eq!(mapped.phone, "+919509597501");
        assert_eq!(mapped.contact_type.as_deref(), Some("client"));
        assert!(mapped.isperson);
        assert_eq!(mapped.bill_address.address, "3535 1st St N");
        assert_eq!(mapped.bill_address.province, "AL");
        assert_eq!(mapped.bill_address.postal_code, "452001");
        assert_eq!(mapped.tags, vec!["b2b", "vip"]);
        assert_eq!(mapped.social_networks.website, "https://example.com");
    }

    #[test]
    fn name_falls_back_in_design_order() {
        let mut c = contact();
        c.company_name = Some("Acme SL".into());
        assert_eq!(ContactMapper::map(&c).fields.name, "Acme SL");
        assert!(!ContactMapper::map(&c).fields.isperson);
        let c = GhlContact {
            id: "c9".into(),
            email: Some("a@b.es".into()),
            ..Default::default()
        };
        assert_eq!(ContactMapper::map(&c).fields.name, "a@b.es");
        let c = GhlContact {
            id: "c9".into(),
            ..Default::default()
        };
        assert_eq!(ContactMapper::map(&c).fields.name, "GHL contact c9");
        let c = GhlContact {
            id: "c9".into(),
            contact_type: Some("lead".into()),
            ..Default::default()
        };
        assert_eq!(
            ContactMapper::map(&c).fields.contact_type.as_deref(),
            Some("lead")
        );
    }

    #[test]
    fn phones_have_one_canonical_form() {
        assert_eq!(canonical_phone("+34 600 11 22 33"), "+34600112233");
        assert_eq!(canonical_phone("0034 (600) 11-22-33"), "+34600112233");
        assert_eq!(canonical_phone("600.112.233"), "600112233");
        assert_eq!(canonical_phone("ext. 12"), "ext. 12");
        assert_eq!(canonical_phone(""), "");
    }

    #[test]
    fn hash_ignores_tag_order_and_spelling_of_the_same_phone() {
        let a = contact();
        let mut b = contact();
        b.tags = vec!["b2b".into(), "vip".into()];
        b.phone = Some("+919509597501".into());
        assert_eq!(ContactMapper::map(&a).hash, ContactMapper::map(&b).hash);
        b.city = Some("Elsewhere".into());
        assert_ne!(ContactMapper::map(&a).hash, ContactMapper::map(&b).hash);
    }
}
