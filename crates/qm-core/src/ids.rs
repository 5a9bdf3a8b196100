//! Checked identifier newtypes: serial numbers, lot numbers, badges and the ids of units, locations and the rest.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest identifier we accept: ids are typed at a counter or scanned from a label, never prose.
pub const ID_LEN_MAX: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} {value:?} is longer than {ID_LEN_MAX} characters")]
    TooLong { what: &'static str, value: String },
    #[error("{what} {value:?} contains {ch:?}; use letters, digits and . _ - / only")]
    BadChar { what: &'static str, value: String, ch: char },
}

/// The characters an identifier may hold when it is typed, scanned or sent: ASCII letters and digits
/// and `. _ - /`. Look-alikes (fullwidth `Ｇ`, Cherokee `Ꮐ`, Cyrillic `С`) would make two serials
/// that read the same; control and direction characters would make a record print as another.
pub fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

fn check(what: &'static str, value: &str, allowed: fn(char) -> bool) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.chars().count() > ID_LEN_MAX {
        return Err(IdError::TooLong { what, value: value.to_string() });
    }
    if let Some(ch) = value.chars().find(|c| !allowed(*c)) {
        return Err(IdError::BadChar { what, value: value.to_string(), ch });
    }
    Ok(())
}

/// What ledgers written before the ASCII rule may hold (any letter or digit): they must still open.
fn stored_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        // Written as a plain string, borrowed rather than copied into one.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            /// The one way in at an edge: every id is checked where it enters (see [`id_char`]).
            pub fn parse(value: &str) -> Result<Self, IdError> {
                let value = value.trim();
                check($what, value, id_char)?;
                Ok(Self(value.to_string()))
            }
            /// An id read back from the ledger or the books: as [`Self::parse`], except that letters
            /// and digits outside ASCII, accepted before, still read (never control characters).
            pub fn stored(value: &str) -> Result<Self, IdError> {
                check($what, value, stored_char)?;
                Ok(Self(value.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        /// Deserializing reads what is stored (entries, rows): see [`Self::stored`].
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                check($what, &value, stored_char)?;
                Ok(Self(value))
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

id_type!(/// A node of the organization tree.
    UnitId, "unit id");
id_type!(/// A place inside a unit: armory, magazine, rack, bin …
    LocationId, "location id");
id_type!(/// A catalog entry.
    ItemTypeId, "item type id");
id_type!(/// A staff member's badge number.
    Badge, "badge");
id_type!(/// The serial number of one physical item.
    Serial, "serial");
id_type!(/// A production lot number.
    LotNo, "lot number");
id_type!(/// A transfer between units.
    TransferId, "transfer id");
id_type!(/// An inventory count.
    CountId, "count id");
id_type!(/// A discrepancy found by a count or a transfer.
    DiscrepancyId, "discrepancy id");
id_type!(/// An incident: something that went wrong, followed until it is closed.
    IncidentId, "incident id");
id_type!(/// A directive: an order from a unit to its subtree for a period. Qualified by the issuing
    /// site (`DIR-3.hq.example`), so that it keeps its name in every ledger it travels to.
    DirectiveId, "directive id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(Serial::parse("R-1042").is_ok());
        assert_eq!(Serial::parse(" R-1042 ").map(|s| s.to_string()), Ok("R-1042".to_string()));
        assert!(matches!(Serial::parse(""), Err(IdError::Empty { .. })));
        assert!(matches!(Serial::parse("a b"), Err(IdError::BadChar { ch: ' ', .. })));
        assert!(matches!(Serial::parse(&"x".repeat(65)), Err(IdError::TooLong { .. })));
        let json = serde_json::to_string(&Badge::parse("0417").unwrap()).unwrap();
        assert_eq!(json, "\"0417\"");
        assert!(serde_json::from_str::<Badge>("\"a;b\"").is_err());
    }
}
