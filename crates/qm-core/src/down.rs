//! What a higher unit decides for the sites below it, besides directives (docs/sites.md, "Down the
//! tree"): its units, its catalog, its incident rules and safety tables, the status of its lots, its staff and their qualifications, its standing
//! policies. A parent keeps the entries of its ledger that flow down with whom they reach
//! (`State::down`); a child asks for those that reach the unit it serves, and records each as
//! `Event::FromParent`, which its books take into their own (`books/parent.rs`).

use crate::books::State;
use crate::event::{Event, RulesKind};
use crate::ids::UnitId;
use serde::{Deserialize, Serialize};

/// Whom an entry that flows down reaches, in the books of the site that sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reach", content = "unit", rename_all = "snake_case")]
pub enum Reach {
    /// Every site below (the unit tree; the catalog; a lot decided for the whole site).
    Every,
    /// A decision for a unit's subtree (a policy, a lot's status there): the sites serving that unit
    /// or one below it, and the sites serving a unit above it (whose tree holds it).
    Line(UnitId),
    /// A person of a unit: the sites serving that unit or one above it.
    Staff(UnitId),
}

/// Whom an entry of this site's own ledger reaches below, if it flows down at all.
pub fn own_reach(state: &State, event: &Event) -> Option<Reach> {
    match event {
        Event::UnitCreated { .. }
        | Event::ItemTypeDefined { .. }
        | Event::ItemTypeAttributesSet { .. }
        | Event::ItemTypeStorageSet { .. }
        | Event::RulesAdopted { .. } => Some(Reach::Every),
        Event::LotStatusChanged { unit: None, .. } => Some(Reach::Every),
        Event::LotStatusChanged { unit: Some(u), .. } | Event::PolicySet { unit: u, .. } => Some(Reach::Line(u.clone())),
        Event::PersonRegistered { unit, .. } => Some(Reach::Staff(unit.clone())),
        Event::QualificationGranted { badge, .. } | Event::PersonChanged { badge, .. } => {
            state.people.get(badge).map(|p| Reach::Staff(p.unit.clone()))
        }
        _ => None,
    }
}

/// Whom an entry received from the parent reaches below this site in turn (a region passing on what
/// headquarters decided): a decision for a unit this site does not know is above it, so it reaches
/// every site below; a person of a unit this site does not know reaches none.
pub fn received_reach(state: &State, decided: &Event) -> Option<Reach> {
    match own_reach(state, decided)? {
        Reach::Line(u) if !state.units.contains_key(&u) => Some(Reach::Every),
        Reach::Staff(u) if !state.units.contains_key(&u) => None,
        r => Some(r),
    }
}

/// Whether an entry that reaches `reach` concerns the child site serving `child`.
pub fn concerns(state: &State, reach: &Reach, child: &UnitId) -> bool {
    match reach {
        Reach::Every => true,
        Reach::Line(u) => !state.units.contains_key(u) || state.unit_within(child, u) || state.unit_within(u, child),
        Reach::Staff(u) => state.unit_within(u, child),
    }
}

/// Whether a parent's decided entry is one the books below take (directives aside).
pub fn takes(event: &Event) -> bool {
    matches!(
        event,
        Event::UnitCreated { .. }
            | Event::RulesAdopted { .. }
            | Event::ItemTypeDefined { .. }
            | Event::ItemTypeAttributesSet { .. }
            | Event::ItemTypeStorageSet { .. }
            | Event::LotStatusChanged { .. }
            | Event::PersonRegistered { .. }
            | Event::QualificationGranted { .. }
            | Event::PersonChanged { .. }
            | Event::PolicySet { .. }
    )
}

/// The key an entry of site `origin` is kept under in `State::received`: sorted by seq within a site.
pub fn received_key(origin: &str, seq: u64) -> String {
    format!("{origin}|{seq:020}")
}

/// The site and entry a `received` key names (the opposite of [`received_key`]).
pub fn parse_received_key(key: &str) -> Option<(&str, u64)> {
    let (origin, seq) = key.rsplit_once('|')?;
    Some((origin, seq.parse().ok()?))
}

/// The last entry of site `origin` these books took, if any (a child asks its parent for those after it).
pub fn last_taken(state: &State, origin: &str) -> Option<u64> {
    let ours = |k: &&String| parse_received_key(k).is_some_and(|(o, _)| o == origin);
    state.received.range(received_key(origin, 0)..).map(|(k, _)| k).take_while(ours).last().and_then(|k| Some(parse_received_key(k)?.1))
}

/// Incident rules or safety tables adopted in the ledger (`Event::RulesAdopted`): the text as
/// adopted, where, and from which site when received from above.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopted {
    pub entry: u64,
    pub text: String,
    /// The site that adopted them, when it is not this one (received from the parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Rules read from an adopted text.
pub enum Rules {
    Incidents(crate::incidents::IncidentRules),
    Tables(Box<qm_safety::SafetyTables>),
}

impl Adopted {
    /// Reads the text as the rules it is adopted as.
    pub fn read(kind: RulesKind, text: &str) -> Result<Rules, String> {
        let file = format!("the {} adopted", kind.words());
        match kind {
            RulesKind::IncidentRules => crate::incidents::IncidentRules::from_toml_str(text, &file).map(Rules::Incidents),
            RulesKind::SafetyTables => {
                qm_safety::SafetyTables::from_toml_str(text, &file).map(|t| Rules::Tables(Box::new(t))).map_err(|e| e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_key_reads_back_and_sorts_by_entry_within_a_site() {
        assert_eq!(parse_received_key(&received_key("hq.example", 57)), Some(("hq.example", 57)));
        assert!(received_key("hq.example", 9) < received_key("hq.example", 10));
        assert_eq!(parse_received_key("no separator"), None);
    }
}
