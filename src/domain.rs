//! Validated domain types shared by every layer.
use std::fmt;

/// Why a value from outside could not become a domain type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// A GHL identifier (location, contact, task, note, appointment): opaque, non-empty,
/// printable ASCII without whitespace or path separators, at most 64 characters.
/// Anything else is refused before it reaches a URL path or the store.
fn parse_ghl_id(what: &str, raw: &str) -> Result<String, InvalidValue> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(InvalidValue(format!(
            "{what} must be 1-64 characters of letters, digits, '-' or '_'"
        )))
    }
}

macro_rules! ghl_id_type {
    ($name:ident, $what:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
                parse_ghl_id($what, raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ghl_id_type!(LocationId, "locationId");
ghl_id_type!(GhlId, "GHL record id");

/// The kinds of GHL record the service mirrors into Holded. Tasks, notes and
/// appointments hang off a contact (their parent) and become Holded CRM events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Contact,
    Task,
    Note,
    Appointment,
}

impl EntityKind {
    pub const ALL: [EntityKind; 4] = [
        EntityKind::Contact,
        EntityKind::Task,
        EntityKind::Note,
        EntityKind::Appointment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Contact => "contact",
            EntityKind::Task => "task",
            EntityKind::Note => "note",
            EntityKind::Appointment => "appointment",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| InvalidValue(format!("unknown entity kind {raw:?}")))
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One GHL record as the work queue and the links table know it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityKey {
    pub location_id: LocationId,
    pub kind: EntityKind,
    pub ghl_id: GhlId,
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.location_id, self.kind, self.ghl_id)
    }
}

/// What happens to the Holded contact when its GHL contact is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletePolicy {
    /// Keep the Holded record (it may carry invoices) and tag it `ghl-deleted`.
    #[default]
    Tag,
    Delete,
    Ignore,
}

impl DeletePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletePolicy::Tag => "tag",
            DeletePolicy::Delete => "delete",
            DeletePolicy::Ignore => "ignore",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "tag" => Ok(DeletePolicy::Tag),
            "delete" => Ok(DeletePolicy::Delete),
            "ignore" => Ok(DeletePolicy::Ignore),
            other => Err(InvalidValue(format!(
                "{other:?} is not one of tag, delete, ignore"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghl_ids_refuse_path_tricks_and_empties() {
        assert!(GhlId::parse("nmFmQEsNgz6AVpgLVUJ0").is_ok());
        for bad in ["", "../etc", "a/b", "a b", "a?b", &"x".repeat(65)] {
            assert!(GhlId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn delete_policy_names_the_choices() {
        assert_eq!(DeletePolicy::parse("delete"), Ok(DeletePolicy::Delete));
        let err = DeletePolicy::parse("purge").unwrap_err();
        assert!(err.0.contains("tag, delete, ignore"));
    }
}
