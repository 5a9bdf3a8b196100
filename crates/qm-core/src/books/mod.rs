//! The books: the current state, derived from the ledger by folding events (`apply.rs`), and
//! stored as rows (`rows.rs`, one codec per book).
//!
//! The store keeps one row per projected object (kind, key, JSON value). After each event, `touched`
//! names the rows that changed so the store writes only those; `verify` rebuilds a fresh `State`
//! from the ledger and compares every row with the stored one. Both trees (units, locations) are
//! walked upwards by one function, `ancestors`.

mod apply;
mod parent;
mod rows;

pub use rows::RowKey;

use crate::conditions::{Band, Direction, Measure, Range, DEFAULT_BAND};
use crate::event::*;
use crate::ids::*;
use crate::model::*;
use crate::policy::{EffectivePolicy, PolicyRules};
use crate::quantity::Quantity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, OffsetDateTime};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteInfo {
    pub site: String,
    pub verifier_key: String,
    pub root_unit: UnitId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    pub parent: Option<UnitId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub name: String,
    pub unit: UnitId,
    pub parent: Option<LocationId>,
    pub kind: LocationKind,
    pub keeper: Option<Badge>,
    pub magazine: Option<MagazineLicence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<LocationConditions>,
    /// The time of the latest condition reading recorded for it (a directive's storage review).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_reading_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemType {
    pub name: String,
    pub kind: ItemKind,
    pub tracking: Tracking,
    pub unit_of_measure: String,
    pub neq_kg_per_unit: f64,
    pub un_code: Option<String>,
    pub qualification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub humidity_pct: Option<Range>,
    /// What the mixing chart's footnotes may be about (`qm_safety`'s `mixing.attributes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
}

impl ItemType {
    /// An item type of this kind with nothing else known yet: counted by the unit, no explosive
    /// weight, no classification, no storage range, no attributes.
    pub fn new(kind: ItemKind) -> ItemType {
        ItemType {
            name: String::new(),
            kind,
            tracking: Tracking::Lot,
            unit_of_measure: String::new(),
            neq_kg_per_unit: 0.0,
            un_code: None,
            qualification: None,
            temperature_c: None,
            humidity_pct: None,
            attributes: vec![],
        }
    }

    /// Explosive for two-person purposes: anything that carries explosive weight.
    pub fn is_explosive(&self) -> bool {
        self.neq_kg_per_unit > 0.0 || matches!(self.kind, ItemKind::Explosive)
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub unit: UnitId,
    pub roles: Vec<Role>,
    /// Only on ledgers begun before credentials moved to their own table: the PIN hash their entries
    /// carry, until a newer PIN supersedes it. New ledgers never hold one (docs/ledger.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_hash: Option<String>,
    /// As `pin_hash`, for the web password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    pub qualifications: BTreeMap<String, Date>,
    /// Set while the person is suspended (`PersonChange::Suspended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
}

/// Why and since when a person is suspended, and by whom.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suspension {
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub reason: String,
    pub by: Badge,
    /// The site above that suspended them, when received from it: only it restores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// An API token's scope; the secret is kept only as a hash.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub label: String,
    pub unit: UnitId,
    pub operations: Vec<String>,
    /// Only on old ledgers (see `Person::pin_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    pub issued_by: Badge,
    pub revoked: bool,
    /// Whom the token acts as, when not its issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acts_as: Option<Badge>,
}

impl ApiToken {
    /// The badge the token acts as: the one it was issued for, else its issuer.
    pub fn actor(&self) -> &Badge {
        self.acts_as.as_ref().unwrap_or(&self.issued_by)
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("label", &self.label)
            .field("unit", &self.unit)
            .field("operations", &self.operations)
            .field("revoked", &self.revoked)
            .finish()
    }
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("name", &self.name)
            .field("unit", &self.unit)
            .field("roles", &self.roles)
            .field("pin_hash", &"<redacted>")
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .field("qualifications", &self.qualifications)
            .field("suspended", &self.suspended)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SerialItem {
    pub item_type: ItemTypeId,
    pub lot: Option<LotNo>,
    pub account: Account,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub since_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lot {
    pub item_type: ItemTypeId,
    pub manufactured: Option<Date>,
    pub expires: Option<Date>,
    /// The site-wide status (decided at the root unit).
    pub status: LotStatus,
    /// Decisions taken at lower units, each covering that unit's subtree.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decisions: BTreeMap<UnitId, LotDecision>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LotDecision {
    pub status: LotStatus,
    pub reason: String,
}

fn severity(s: LotStatus) -> u8 {
    match s {
        LotStatus::Serviceable => 0,
        LotStatus::Suspended => 1,
        LotStatus::Unserviceable => 2,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    pub quantity: Quantity,
    /// When this account last went from holding none of the lot to holding some.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub from_unit: UnitId,
    pub to_unit: UnitId,
    pub document: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub dispatched_at: OffsetDateTime,
    pub lines: Vec<Line>,
    pub received_at_location: Option<LocationId>,
    pub discrepancies: Vec<DiscrepancyId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub root: LocationId,
    pub kind: CountKind,
    pub blind: bool,
    pub counter: Badge,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Per location: serials seen and quantities counted per lot (summed over recordings).
    pub serials: BTreeMap<LocationId, BTreeSet<Serial>>,
    pub lots: BTreeMap<LocationId, BTreeMap<LotNo, Quantity>>,
    pub closed: bool,
    pub discrepancies: Vec<DiscrepancyId>,
    /// When it closed (counts closed before this was kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub facts: DiscrepancyFacts,
    pub resolution: Option<Resolution>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub adjusted: bool,
    pub note: String,
    pub by: Badge,
    pub witness: Option<Badge>,
    pub seq: u64,
}

/// What one account holds: its serials, and its lot balances.
pub type Holdings<'a> = (Vec<(&'a Serial, &'a SerialItem)>, Vec<(&'a LotNo, &'a Balance)>);

/// An excursion of storage conditions: an incident with start, end, peak and what was exposed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Excursion {
    pub location: LocationId,
    pub measure: Measure,
    pub direction: Direction,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub limit: f64,
    pub peak: f64,
    pub lots_exposed: Vec<LotNo>,
    pub serials_exposed: u64,
}

/// An incident as the books hold it: what was opened, and every step since (docs/incidents.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub severity: Severity,
    pub unit: UnitId,
    pub location: Option<LocationId>,
    pub objects: IncidentObjects,
    pub summary: String,
    #[serde(with = "time::serde::rfc3339")]
    pub discovered_at: OffsetDateTime,
    pub discovered_by: Badge,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    pub rule: Option<String>,
    pub state: IncidentState,
    /// The unit that must act on it now: its own unit, or one above after escalation.
    pub responsible: UnitId,
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    pub reports: Vec<IncidentReport>,
    pub resolution: Option<String>,
    /// The entries about it, oldest first.
    pub entries: Vec<u64>,
    /// Obligations whose report was not recorded by its deadline (as the site recorded them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
}

/// A report made to an authority, as recorded (`IncidentAction::Report`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    pub obligation: String,
    pub authority: String,
    pub reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: Badge,
}

impl Location {
    /// A location as it is created: no flags, no conditions, no readings yet.
    pub fn new(
        name: String,
        unit: UnitId,
        parent: Option<LocationId>,
        kind: LocationKind,
        keeper: Option<Badge>,
        magazine: Option<MagazineLicence>,
    ) -> Location {
        Location { name, unit, parent, kind, keeper, magazine, flags: vec![], conditions: None, last_reading_at: None }
    }
}

impl Count {
    /// A count as it starts: nothing recorded, not closed.
    pub fn started(root: LocationId, kind: CountKind, blind: bool, counter: Badge, at: OffsetDateTime) -> Count {
        let (serials, lots) = (BTreeMap::new(), BTreeMap::new());
        Count { root, kind, blind, counter, started_at: at, serials, lots, closed: false, discrepancies: vec![], closed_at: None }
    }
}

/// A directive as the books keep it: the order, and per unit concerned what it has done under it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Directive {
    pub unit: UnitId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<UnitId>,
    pub title: String,
    pub text: String,
    pub posture: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub measures: Vec<crate::directives::Measure>,
    pub issued_by: Badge,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Done>,
    /// Each extension: when, by whom, why (the new end is `ends_at`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extended: Vec<Done>,
    /// Per unit concerned: what it has done under the directive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub units: BTreeMap<UnitId, DirectiveUnit>,
    /// Shift briefings: who acknowledged it, when.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "briefings")]
    pub briefed: BTreeMap<Badge, OffsetDateTime>,
    /// The entries about it, oldest first.
    pub entries: Vec<u64>,
    /// Received from the parent site: where each of its entries about it is in the parent's ledger
    /// (the issue first), and the unit that issued it there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<Received>,
}

/// An entry of the parent site's ledger that this site's books took (`Event::FromParent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub origin: String,
    pub seq: u64,
    /// The unit it was decided at, in the parent's books.
    pub unit: UnitId,
    /// This site's entry that recorded it.
    pub entry: u64,
}

/// An entry of the parent site's ledger this site recorded (`Event::FromParent`), and how its books
/// took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// This site's entry that recorded it.
    pub entry: u64,
    /// What the parent decided (its event's type).
    pub what: String,
    /// Why the books here could not take it, when they could not (it is recorded all the same).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Something done by someone at a time, with the reason given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Done {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: Badge,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One unit under a directive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectiveUnit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Done>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayed: Option<Relay>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signoffs: BTreeMap<String, SignOff>,
    /// Deadlines the site recorded as missed (`acknowledge`, `count#1` …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Relay {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: Badge,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<crate::directives::Measure>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignOff {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: Badge,
    pub reviewed: Vec<String>,
    pub note: String,
}

/// Briefing times as RFC 3339 text.
mod briefings {
    use super::*;
    pub fn serialize<S: serde::Serializer>(m: &BTreeMap<Badge, OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        let text: BTreeMap<&Badge, String> =
            m.iter().map(|(b, t)| (b, t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())).collect();
        text.serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<Badge, OffsetDateTime>, D::Error> {
        let text = BTreeMap::<Badge, String>::deserialize(d)?;
        text.into_iter()
            .map(|(b, t)| {
                OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).map(|t| (b, t)).map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// The posture levels directives are issued at (configuration, not books: not stored as rows).
#[derive(Clone, Debug, PartialEq)]
pub struct PosturesRef(pub std::sync::Arc<crate::directives::Postures>);

impl Default for PosturesRef {
    fn default() -> PosturesRef {
        PosturesRef(std::sync::Arc::new(crate::directives::Postures::default_levels()))
    }
}

/// The incident rules the books are judged by (configuration, not books: not stored as rows).
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentRulesRef(pub std::sync::Arc<crate::incidents::IncidentRules>);

impl Default for IncidentRulesRef {
    fn default() -> IncidentRulesRef {
        IncidentRulesRef(std::sync::Arc::new(crate::incidents::IncidentRules::default_rules()))
    }
}

/// The safety tables the rules read (configuration, not books: they are not stored as rows).
/// Equal by content, so that two states built with the same tables compare equal.
#[derive(Clone, Debug, PartialEq)]
pub struct Tables(pub std::sync::Arc<qm_safety::SafetyTables>);

impl Default for Tables {
    fn default() -> Tables {
        Tables(std::sync::Arc::new(qm_safety::SafetyTables::default_tables()))
    }
}

/// Why an event could not be applied to the books; on replay, a sign that the ledger is damaged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event {seq} cannot be applied: {reason}")]
pub struct ApplyError {
    pub seq: u64,
    pub reason: String,
}

/// The books. Every field is derived from the ledger and can be rebuilt from it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub site: Option<SiteInfo>,
    pub next_seq: u64,
    pub units: BTreeMap<UnitId, Unit>,
    pub locations: BTreeMap<LocationId, Location>,
    pub item_types: BTreeMap<ItemTypeId, ItemType>,
    pub people: BTreeMap<Badge, Person>,
    pub policies: BTreeMap<UnitId, PolicyRules>,
    pub tokens: BTreeMap<String, ApiToken>,
    pub serials: BTreeMap<Serial, SerialItem>,
    pub lots: BTreeMap<LotNo, Lot>,
    pub balances: BTreeMap<(Account, LotNo), Balance>,
    pub transfers: BTreeMap<TransferId, Transfer>,
    pub counts: BTreeMap<CountId, Count>,
    pub discrepancies: BTreeMap<DiscrepancyId, Discrepancy>,
    pub excursions: BTreeMap<String, Excursion>,
    pub incidents: BTreeMap<IncidentId, Incident>,
    pub incident_rules: IncidentRulesRef,
    pub directives: BTreeMap<DirectiveId, Directive>,
    /// Per unit: the directives issued or relayed there (an index derived from `directives`,
    /// rebuilt on load), so the policy in force is found along a unit's path.
    pub directive_index: BTreeMap<UnitId, BTreeSet<DirectiveId>>,
    /// Per unit: the periods over which the same directives are in force there, with the policy
    /// they add (an index derived from `directives`, rebuilt when one is issued, relayed, extended
    /// or cancelled, or a unit is created), so a rule check finds what is in force by a binary search.
    pub directive_periods: BTreeMap<UnitId, Vec<crate::directives::Period>>,
    pub postures: PosturesRef,
    /// Per armory, depot or magazine under access control: its roster.
    pub access: BTreeMap<LocationId, crate::access::AccessPlace>,
    /// Per armory, depot or magazine: who is inside, the clock's alerts, a count its key calls for.
    pub presence: BTreeMap<LocationId, crate::access::Presence>,
    /// Per magazine or depot: quantity held per item type in its whole subtree. An index derived from
    /// serials and balances (rebuilt on load), so the safety check does not scan every lot.
    pub store_stock: BTreeMap<LocationId, BTreeMap<ItemTypeId, Quantity>>,
    pub safety: Tables,
    /// The counter of the last closed count rooted at each location.
    pub last_counter: BTreeMap<LocationId, Badge>,
    /// Entries already corrected, so that nothing is corrected twice.
    pub corrected: BTreeMap<u64, u64>,
    /// What this site took from its parent site's ledger, by `down::received_key` (origin, seq).
    pub received: BTreeMap<String, Taken>,
    /// The entries of this site's ledger that flow down to the sites below it, with whom they reach.
    pub down: BTreeMap<u64, crate::down::Reach>,
    /// The organization's incident rules and safety tables adopted in the ledger (here, or received
    /// from the parent): they replace the configured ones in `incident_rules` and `safety`.
    pub adopted: BTreeMap<crate::event::RulesKind, crate::down::Adopted>,
    /// Units of the organization outside this site's tree, as the parent site made them known
    /// (received): where a transfer may be addressed to another site.
    pub elsewhere: BTreeMap<UnitId, Unit>,
    /// Standing policies the parent site set for a unit: this site's root or one above it
    /// (received; they tighten every policy below them as a unit's own does).
    pub above_policies: BTreeMap<UnitId, PolicyRules>,
    /// A lot's status decided at the parent site, per deciding unit there (received).
    pub above_lots: BTreeMap<LotNo, BTreeMap<UnitId, LotDecision>>,
    /// The time of the latest entry applied: no later entry may be stamped before it
    /// (`Site` refuses one at append). Not a row: opening a site reads it from the last entry.
    pub last_at: Option<OffsetDateTime>,
    /// The site's time zone (tz database name), once set; UTC until then.
    pub time_zone: Option<String>,
    /// Rows changed since the last `take_touched`.
    touched: BTreeSet<RowKey>,
}

/// `start` and every node above it in a tree stored as a map with parent links, nearest first.
/// A tree never has a path longer than its size; the bound stops a damaged cycle.
fn ancestors<'a, K: Ord, V>(map: &'a BTreeMap<K, V>, start: &'a K, parent: fn(&V) -> Option<&K>) -> impl Iterator<Item = &'a K> + 'a {
    let mut cur = Some(start);
    std::iter::from_fn(move || {
        let here = cur?;
        cur = map.get(here).and_then(parent);
        Some(here)
    })
    .take(map.len() + 1)
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    // ---- reading -------------------------------------------------------------------------

    pub fn balance(&self, account: &Account, lot: &LotNo) -> Quantity {
        self.balances.get(&(account.clone(), lot.clone())).map(|b| b.quantity).unwrap_or_default()
    }

    /// The status of a lot as it applies at `unit`: the strictest of the site-wide status and every
    /// decision taken at `unit` or above it, with the unit that decided (None: site-wide).
    pub fn lot_status_at(&self, lot: &LotNo, unit: &UnitId) -> Option<(LotStatus, Option<UnitId>)> {
        let l = self.lots.get(lot)?;
        let mut best = (l.status, None);
        let path = self.unit_path(unit);
        for u in &path {
            if let Some(d) = l.decisions.get(u) {
                if severity(d.status) > severity(best.0) {
                    best = (d.status, Some(u.clone()));
                }
            }
        }
        // Decided at the parent site: for a unit above this site's tree, or on the path here.
        for (u, d) in self.above_lots.get(lot).into_iter().flatten() {
            if (!self.units.contains_key(u) || path.contains(u)) && severity(d.status) > severity(best.0) {
                best = (d.status, Some(u.clone()));
            }
        }
        Some(best)
    }

    /// The storage-condition band at a place: its own settings (or the defaults), tightened by the
    /// range of every item type stored there or below.
    pub fn band_at(&self, location: &LocationId) -> Band {
        let own = self.locations.get(location).and_then(|l| l.conditions).unwrap_or_default();
        let defaults = self.default_band();
        let mut band = Band {
            temperature_c: own.temperature_c.unwrap_or(defaults.temperature_c),
            humidity_pct: own.humidity_pct.unwrap_or(defaults.humidity_pct),
            excursion_minutes: own.excursion_minutes.unwrap_or(defaults.excursion_minutes),
        };
        let (lots, serial_types) = self.stored_below(location);
        let mut types: std::collections::BTreeSet<&ItemTypeId> = serial_types.keys().collect();
        types.extend(lots.iter().filter_map(|l| self.lots.get(l).map(|x| &x.item_type)));
        for t in types {
            if let Some(it) = self.item_types.get(t) {
                if let Some(r) = it.temperature_c {
                    band.temperature_c = band.temperature_c.tighten(r);
                }
                if let Some(r) = it.humidity_pct {
                    band.humidity_pct = band.humidity_pct.tighten(r);
                }
            }
        }
        band
    }

    /// The band a place gets when it sets none: up to the safety tables' sustained-heat alarm and
    /// humidity warning level, with their default excursion time; the lower bound is freezing.
    pub fn default_band(&self) -> Band {
        let sc = self.safety.0.storage_conditions();
        Band {
            temperature_c: Range { min: DEFAULT_BAND.temperature_c.min, max: sc.temperature_alarm_c },
            humidity_pct: Range { min: DEFAULT_BAND.humidity_pct.min, max: sc.humidity_warn_pct },
            excursion_minutes: i64::from(sc.excursion_default_minutes),
        }
    }

    /// Lots held at `location` or below it, and serial items there by item type.
    pub fn stored_below(&self, location: &LocationId) -> (Vec<LotNo>, BTreeMap<ItemTypeId, u64>) {
        let places = self.location_subtree(location);
        let mut lots: Vec<LotNo> = self
            .balances
            .iter()
            .filter(|((a, _), b)| b.quantity.is_positive() && matches!(a, Account::Location(l) if places.contains(l)))
            .map(|((_, lot), _)| lot.clone())
            .collect();
        lots.dedup();
        let mut serials: BTreeMap<ItemTypeId, u64> = BTreeMap::new();
        for s in self.serials.values() {
            if matches!(&s.account, Account::Location(l) if places.contains(l)) {
                *serials.entry(s.item_type.clone()).or_default() += 1;
            }
        }
        (lots, serials)
    }

    /// The magazine or depot that contains `location` (itself included), if any.
    pub fn enclosing_store(&self, location: &LocationId) -> Option<&LocationId> {
        let store = self
            .location_ancestors(location)
            .find(|l| self.locations.get(l).is_some_and(|x| matches!(x.kind, LocationKind::Magazine | LocationKind::Depot)))?;
        self.locations.get_key_value(store).map(|(k, _)| k)
    }

    /// `unit` and every unit above it, nearest first.
    pub fn unit_ancestors<'a>(&'a self, unit: &'a UnitId) -> impl Iterator<Item = &'a UnitId> + 'a {
        ancestors(&self.units, unit, |u| u.parent.as_ref())
    }

    /// `location` and every location that contains it, nearest first.
    pub fn location_ancestors<'a>(&'a self, location: &'a LocationId) -> impl Iterator<Item = &'a LocationId> + 'a {
        ancestors(&self.locations, location, |l| l.parent.as_ref())
    }

    /// Is `unit` equal to `ancestor` or below it?
    pub fn unit_within(&self, unit: &UnitId, ancestor: &UnitId) -> bool {
        self.unit_ancestors(unit).any(|u| u == ancestor)
    }

    /// Units from the root down to `unit`.
    pub fn unit_path(&self, unit: &UnitId) -> Vec<UnitId> {
        let mut path: Vec<UnitId> = self.unit_ancestors(unit).cloned().collect();
        path.reverse();
        path
    }

    /// The policy in force at `unit` at `at`: the baseline, tightened by every unit's standing
    /// policy from the root down and by every directive in force over it then.
    pub fn effective_policy(&self, unit: &UnitId, at: OffsetDateTime) -> EffectivePolicy {
        let mut p = PolicyRules::baseline();
        let path = self.unit_path(unit);
        for (u, rules) in &self.above_policies {
            if !self.units.contains_key(u) || path.contains(u) {
                p = p.tighten(rules);
            }
        }
        for u in path {
            if let Some(rules) = self.policies.get(&u) {
                p = p.tighten(rules);
            }
        }
        if let Some(d) = crate::directives::policy_over(self, unit, at) {
            p = p.tighten(&d);
        }
        EffectivePolicy(p)
    }

    /// Is location `loc` equal to `ancestor` or inside it?
    pub fn location_within(&self, loc: &LocationId, ancestor: &LocationId) -> bool {
        self.location_ancestors(loc).any(|l| l == ancestor)
    }

    /// `root` and every location inside it.
    pub fn location_subtree(&self, root: &LocationId) -> BTreeSet<LocationId> {
        self.locations.keys().filter(|l| self.location_within(l, root)).cloned().collect()
    }

    /// The unit an account belongs to, for authorization; external accounts have none.
    pub fn account_unit(&self, account: &Account) -> Option<UnitId> {
        match account {
            Account::Location(l) => self.locations.get(l).map(|x| x.unit.clone()),
            Account::Person(b) => self.people.get(b).map(|x| x.unit.clone()),
            Account::Transit(t) => self.transfers.get(t).map(|x| x.from_unit.clone()),
            _ => None,
        }
    }

    /// Everything a person holds: serials and lot balances.
    pub fn custody(&self, badge: &Badge) -> Holdings<'_> {
        let account = Account::Person(badge.clone());
        let serials = self.serials.iter().filter(|(_, s)| s.account == account).collect();
        let lots = self.balances.iter().filter(|((a, _), b)| *a == account && b.quantity.is_positive()).map(|((_, l), b)| (l, b)).collect();
        (serials, lots)
    }
}
