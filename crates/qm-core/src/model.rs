//! The nouns of the domain: roles, kinds of location and item, lot status, and accounts where stock sits.

use crate::ids::{Badge, LocationId, TransferId};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
            pub fn parse(text: &str) -> Result<Self, String> {
                match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!(
                        "{:?} is not a {}; expected one of: {}",
                        other,
                        stringify!($name),
                        [$($word),+].join(", ")
                    )),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

word_enum!(/// What a staff member may do; see docs/permissions.md.
Role {
    Armorer => "armorer",
    MagazineKeeper => "magazine_keeper",
    DutyOfficer => "duty_officer",
    Inspector => "inspector",
    Logistics => "logistics",
    Admin => "admin",
    Member => "member",
});

word_enum!(/// What went wrong (docs/incidents.md).
IncidentKind {
    Loss => "loss",
    Theft => "theft",
    CountDiscrepancy => "count_discrepancy",
    Excursion => "excursion",
    UnauthorizedAccess => "unauthorized_access",
    DoorForced => "door_forced",
    DoorHeldOpen => "door_held_open",
    Duress => "duress",
    LonePerson => "lone_person",
    Overstay => "overstay",
    CountMissed => "count_missed",
    SafetyRefusal => "safety_refusal",
    OverdueReturn => "overdue_return",
    DirectiveMissed => "directive_missed",
    LedgerFork => "ledger_fork",
    Accident => "accident",
    Other => "other",
});

word_enum!(/// How grave an incident is, least first: it sets how soon it must be acknowledged and who closes it.
Severity {
    Low => "low",
    Medium => "medium",
    High => "high",
    Critical => "critical",
});

word_enum!(/// Where an incident stands: open → acknowledged → investigating → closed (and reopened: open again).
IncidentState {
    Open => "open",
    Acknowledged => "acknowledged",
    Investigating => "investigating",
    Closed => "closed",
});

word_enum!(/// Kinds of location, from a facility down to a bin.
LocationKind {
    Armory => "armory",
    Depot => "depot",
    Magazine => "magazine",
    Room => "room",
    Rack => "rack",
    Locker => "locker",
    Safe => "safe",
    Bin => "bin",
});

word_enum!(/// Kinds of catalog item.
ItemKind {
    Weapon => "weapon",
    Ammunition => "ammunition",
    Explosive => "explosive",
    Component => "component",
    Key => "key",
    Accessory => "accessory",
});

word_enum!(/// How an item type is tracked.
Tracking {
    Serial => "serial",
    Lot => "lot",
    Both => "both",
});

word_enum!(/// Condition of a lot.
LotStatus {
    Serviceable => "serviceable",
    Suspended => "suspended",
    Unserviceable => "unserviceable",
});

word_enum!(/// Full (everything in the subtree) or cycle (only the places recorded).
CountKind {
    Full => "full",
    Cycle => "cycle",
});

word_enum!(/// Why stock moved; one movement event carries one of these.
MovementKind {
    Receive => "receive",
    Issue => "issue",
    Return => "return",
    Move => "move",
    Dispatch => "dispatch",
    TransferReceive => "transfer_receive",
    Expend => "expend",
    Destroy => "destroy",
    Lose => "lose",
    Recover => "recover",
    Adjust => "adjust",
    Correct => "correct",
});

/// Where stock sits. Internal accounts (location, person, transit) hold the books;
/// external accounts are where stock enters and leaves them, so quantity is conserved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Account {
    Location(LocationId),
    Person(Badge),
    Transit(TransferId),
    /// A named supplier or outside unit that delivered stock.
    Supplier(String),
    Expended,
    Destroyed,
    Lost,
    /// Stock that a count or a transfer found and the books did not know.
    Found,
}

impl Account {
    pub fn is_internal(&self) -> bool {
        matches!(self, Account::Location(_) | Account::Person(_) | Account::Transit(_))
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Location(l) => write!(f, "location:{l}"),
            Account::Person(b) => write!(f, "person:{b}"),
            Account::Transit(t) => write!(f, "transit:{t}"),
            Account::Supplier(s) => write!(f, "supplier:{s}"),
            Account::Expended => f.write_str("expended"),
            Account::Destroyed => f.write_str("destroyed"),
            Account::Lost => f.write_str("lost"),
            Account::Found => f.write_str("found"),
        }
    }
}

/// Written as its display form (`person:0417`), straight into the output.
impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl TryFrom<String> for Account {
    type Error = String;
    fn try_from(s: String) -> Result<Account, String> {
        let err = |e: crate::ids::IdError| e.to_string();
        Ok(match s.split_once(':') {
            Some(("location", v)) => Account::Location(LocationId::stored(v).map_err(err)?),
            Some(("person", v)) => Account::Person(Badge::stored(v).map_err(err)?),
            Some(("transit", v)) => Account::Transit(TransferId::stored(v).map_err(err)?),
            Some(("supplier", v)) if !v.trim().is_empty() && v.len() <= 128 => Account::Supplier(v.trim().to_string()),
            None if s == "expended" => Account::Expended,
            None if s == "destroyed" => Account::Destroyed,
            None if s == "lost" => Account::Lost,
            None if s == "found" => Account::Found,
            _ => return Err(format!("{s:?} is not an account")),
        })
    }
}
impl From<Account> for String {
    fn from(a: Account) -> String {
        a.to_string()
    }
}

/// A distance from a magazine to something its explosions could harm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExposedSite {
    /// e.g. inhabited_building, public_traffic_route, magazine
    pub kind: String,
    pub distance_m: f64,
}

/// What a magazine's licence allows; enforced by the safety rules (issue 3), recorded here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MagazineLicence {
    pub neq_limit_kg: f64,
    pub hazard_divisions: Vec<String>,
    pub compatibility_groups: Vec<String>,
    pub exposed_sites: Vec<ExposedSite>,
}
