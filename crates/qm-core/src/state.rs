//! Projections: the current books, derived from the ledger by folding events, and stored as rows.
//!
//! The store keeps one row per projected object (kind, key, JSON value). After each event, `touched`
//! names the rows that changed so the store writes only those; `verify` rebuilds a fresh `State`
//! from the ledger and compares every row with the stored one.

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
}

impl ItemType {
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

/// The safety tables the rules read (configuration, not books: they are not stored as rows).
/// Equal by content, so that two states built with the same tables compare equal.
#[derive(Clone, Debug, PartialEq)]
pub struct Tables(pub std::sync::Arc<qm_safety::SafetyTables>);

impl Default for Tables {
    fn default() -> Tables {
        Tables(std::sync::Arc::new(qm_safety::SafetyTables::default_tables()))
    }
}

/// A projected row's address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub kind: &'static str,
    pub key: String,
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
    /// Per magazine or depot: quantity held per item type in its whole subtree. An index derived from
    /// serials and balances (rebuilt on load), so the safety check does not scan every lot.
    pub store_stock: BTreeMap<LocationId, BTreeMap<ItemTypeId, Quantity>>,
    pub safety: Tables,
    /// The counter of the last closed count rooted at each location.
    pub last_counter: BTreeMap<LocationId, Badge>,
    /// Entries already corrected, so that nothing is corrected twice.
    pub corrected: BTreeMap<u64, u64>,
    /// The time of the latest entry applied: no later entry may be stamped before it
    /// (`Site` refuses one at append). Not a row: opening a site reads it from the last entry.
    pub last_at: Option<OffsetDateTime>,
    /// The site's time zone (tz database name), once set; UTC until then.
    pub time_zone: Option<String>,
    /// Rows changed since the last `take_touched`.
    touched: BTreeSet<RowKey>,
}

fn rk(kind: &'static str, key: impl ToString) -> RowKey {
    RowKey { kind, key: key.to_string() }
}

fn balance_key(account: &Account, lot: &LotNo) -> String {
    format!("{account}|{lot}")
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
        for u in self.unit_path(unit) {
            if let Some(d) = l.decisions.get(&u) {
                if severity(d.status) > severity(best.0) {
                    best = (d.status, Some(u.clone()));
                }
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
        let mut cur = Some(location);
        let mut steps = 0;
        while let Some(l) = cur {
            let loc = self.locations.get(l)?;
            if matches!(loc.kind, LocationKind::Magazine | LocationKind::Depot) {
                return self.locations.get_key_value(l).map(|(k, _)| k);
            }
            steps += 1;
            if steps > self.locations.len() {
                return None;
            }
            cur = loc.parent.as_ref();
        }
        None
    }

    /// Recomputes the derived indexes after rows were loaded. Fails when the stored rows hold more
    /// of one item type in one store than a quantity can (rows no `decide` could have produced).
    pub fn rebuild_indexes(&mut self) -> Result<(), String> {
        self.store_stock.clear();
        let serials: Vec<(Account, ItemTypeId)> = self.serials.values().map(|s| (s.account.clone(), s.item_type.clone())).collect();
        for (a, t) in serials {
            self.index_stock(&a, &t, Quantity::ONE)?;
        }
        let lots: Vec<(Account, ItemTypeId, Quantity)> =
            self.balances.iter().filter_map(|((a, l), b)| self.lots.get(l).map(|x| (a.clone(), x.item_type.clone(), b.quantity))).collect();
        for (a, t, q) in lots {
            self.index_stock(&a, &t, q)?;
        }
        Ok(())
    }

    fn index_stock(&mut self, account: &Account, item_type: &ItemTypeId, delta: Quantity) -> Result<(), String> {
        let Account::Location(l) = account else { return Ok(()) };
        let Some(store) = self.enclosing_store(l).cloned() else { return Ok(()) };
        let per_type = self.store_stock.entry(store.clone()).or_default();
        let q = per_type.entry(item_type.clone()).or_default();
        *q = q.checked_add(delta).ok_or_else(|| format!("{store} would hold more of item type {item_type} than a quantity can"))?;
        if *q == Quantity::ZERO {
            per_type.remove(item_type);
            if per_type.is_empty() {
                self.store_stock.remove(&store);
            }
        }
        Ok(())
    }

    /// Is `unit` equal to `ancestor` or below it?
    pub fn unit_within(&self, unit: &UnitId, ancestor: &UnitId) -> bool {
        let mut cur = Some(unit);
        let mut steps = 0;
        while let Some(u) = cur {
            if u == ancestor {
                return true;
            }
            // A tree never has a path longer than its size; this bound stops a damaged cycle.
            steps += 1;
            if steps > self.units.len() + 1 {
                return false;
            }
            cur = self.units.get(u).and_then(|x| x.parent.as_ref());
        }
        false
    }

    /// Units from the root down to `unit`.
    pub fn unit_path(&self, unit: &UnitId) -> Vec<UnitId> {
        let mut path = vec![];
        let mut cur = Some(unit.clone());
        while let Some(u) = cur {
            if path.len() > self.units.len() {
                break;
            }
            cur = self.units.get(&u).and_then(|x| x.parent.clone());
            path.push(u);
        }
        path.reverse();
        path
    }

    pub fn effective_policy(&self, unit: &UnitId) -> EffectivePolicy {
        let mut p = PolicyRules::baseline();
        for u in self.unit_path(unit) {
            if let Some(rules) = self.policies.get(&u) {
                p = p.tighten(rules);
            }
        }
        EffectivePolicy(p)
    }

    /// Is location `loc` equal to `ancestor` or inside it?
    pub fn location_within(&self, loc: &LocationId, ancestor: &LocationId) -> bool {
        let mut cur = Some(loc);
        let mut steps = 0;
        while let Some(l) = cur {
            if l == ancestor {
                return true;
            }
            steps += 1;
            if steps > self.locations.len() + 1 {
                return false;
            }
            cur = self.locations.get(l).and_then(|x| x.parent.as_ref());
        }
        false
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

    // ---- rows ----------------------------------------------------------------------------

    /// The rows changed since the last call, with their new values (None: row deleted).
    pub fn take_touched(&mut self) -> Vec<(RowKey, Option<String>)> {
        let keys = std::mem::take(&mut self.touched);
        keys.into_iter()
            .map(|k| {
                let v = self.row(&k);
                (k, v)
            })
            .collect()
    }

    /// Every row, sorted by kind and key.
    pub fn all_rows(&self) -> Vec<(RowKey, String)> {
        let mut keys: Vec<RowKey> = vec![rk("meta", "next_seq")];
        if self.site.is_some() {
            keys.push(rk("meta", "site"));
        }
        if self.time_zone.is_some() {
            keys.push(rk("meta", "time_zone"));
        }
        keys.extend(self.units.keys().map(|k| rk("unit", k)));
        keys.extend(self.locations.keys().map(|k| rk("location", k)));
        keys.extend(self.item_types.keys().map(|k| rk("item_type", k)));
        keys.extend(self.people.keys().map(|k| rk("person", k)));
        keys.extend(self.policies.keys().map(|k| rk("policy", k)));
        keys.extend(self.tokens.keys().map(|k| rk("token", k)));
        keys.extend(self.serials.keys().map(|k| rk("serial", k)));
        keys.extend(self.lots.keys().map(|k| rk("lot", k)));
        keys.extend(self.balances.keys().map(|(a, l)| rk("balance", balance_key(a, l))));
        keys.extend(self.transfers.keys().map(|k| rk("transfer", k)));
        keys.extend(self.counts.keys().map(|k| rk("count", k)));
        keys.extend(self.discrepancies.keys().map(|k| rk("discrepancy", k)));
        keys.extend(self.excursions.keys().map(|k| rk("excursion", k)));
        keys.extend(self.last_counter.keys().map(|k| rk("last_counter", k)));
        keys.extend(self.corrected.keys().map(|k| rk("corrected", k)));
        let mut rows: Vec<(RowKey, String)> = keys.into_iter().filter_map(|k| self.row(&k).map(|v| (k, v))).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    fn row(&self, k: &RowKey) -> Option<String> {
        fn js<T: Serialize>(v: Option<&T>) -> Option<String> {
            v.and_then(|v| serde_json::to_string(v).ok())
        }
        let key = k.key.as_str();
        match k.kind {
            "meta" if key == "next_seq" => Some(self.next_seq.to_string()),
            "meta" if key == "site" => js(self.site.as_ref()),
            "meta" if key == "time_zone" => js(self.time_zone.as_ref()),
            "unit" => js(UnitId::parse(key).ok().and_then(|id| self.units.get(&id))),
            "location" => js(LocationId::parse(key).ok().and_then(|id| self.locations.get(&id))),
            "item_type" => js(ItemTypeId::parse(key).ok().and_then(|id| self.item_types.get(&id))),
            "person" => js(Badge::parse(key).ok().and_then(|id| self.people.get(&id))),
            "policy" => js(UnitId::parse(key).ok().and_then(|id| self.policies.get(&id))),
            "token" => js(self.tokens.get(key)),
            "serial" => js(Serial::parse(key).ok().and_then(|id| self.serials.get(&id))),
            "lot" => js(LotNo::parse(key).ok().and_then(|id| self.lots.get(&id))),
            "balance" => {
                let (a, l) = key.rsplit_once('|')?;
                let a = Account::try_from(a.to_string()).ok()?;
                let l = LotNo::parse(l).ok()?;
                js(self.balances.get(&(a, l)))
            }
            "transfer" => js(TransferId::parse(key).ok().and_then(|id| self.transfers.get(&id))),
            "excursion" => js(self.excursions.get(key)),
            "count" => js(CountId::parse(key).ok().and_then(|id| self.counts.get(&id))),
            "discrepancy" => js(DiscrepancyId::parse(key).ok().and_then(|id| self.discrepancies.get(&id))),
            "last_counter" => js(LocationId::parse(key).ok().and_then(|id| self.last_counter.get(&id))),
            "corrected" => key.parse::<u64>().ok().and_then(|s| self.corrected.get(&s)).map(|v| v.to_string()),
            _ => None,
        }
    }

    /// Loads one stored row into the books (the opposite of `row`); used when opening a store.
    pub fn load_row(&mut self, kind: &str, key: &str, value: &str) -> Result<(), String> {
        fn de<T: for<'a> Deserialize<'a>>(kind: &str, key: &str, v: &str) -> Result<T, String> {
            serde_json::from_str(v).map_err(|e| format!("stored {kind} row {key:?} is unreadable: {e}"))
        }
        let bad = |e: crate::ids::IdError| format!("stored {kind} row key {key:?}: {e}");
        match kind {
            "meta" if key == "next_seq" => {
                self.next_seq = value.parse().map_err(|_| format!("stored next_seq {value:?} is not a number"))?
            }
            "meta" if key == "site" => self.site = Some(de(kind, key, value)?),
            "meta" if key == "time_zone" => self.time_zone = Some(de(kind, key, value)?),
            "unit" => {
                self.units.insert(UnitId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "location" => {
                self.locations.insert(LocationId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "item_type" => {
                self.item_types.insert(ItemTypeId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "person" => {
                self.people.insert(Badge::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "policy" => {
                self.policies.insert(UnitId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "token" => {
                self.tokens.insert(key.to_string(), de(kind, key, value)?);
            }
            "serial" => {
                self.serials.insert(Serial::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "lot" => {
                self.lots.insert(LotNo::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "balance" => {
                let (a, l) = key.rsplit_once('|').ok_or_else(|| format!("stored balance key {key:?} has no '|'"))?;
                let a = Account::try_from(a.to_string())?;
                let l = LotNo::parse(l).map_err(bad)?;
                self.balances.insert((a, l), de(kind, key, value)?);
            }
            "excursion" => {
                self.excursions.insert(key.to_string(), de(kind, key, value)?);
            }
            "transfer" => {
                self.transfers.insert(TransferId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "count" => {
                self.counts.insert(CountId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "discrepancy" => {
                self.discrepancies.insert(DiscrepancyId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "last_counter" => {
                self.last_counter.insert(LocationId::parse(key).map_err(bad)?, de(kind, key, value)?);
            }
            "corrected" => {
                let k = key.parse().map_err(|_| format!("stored corrected key {key:?} is not a number"))?;
                self.corrected.insert(k, value.parse().map_err(|_| format!("stored corrected value {value:?} is not a number"))?);
            }
            other => return Err(format!("unknown projection row kind {other:?}")),
        }
        Ok(())
    }

    // ---- applying ------------------------------------------------------------------------

    /// Folds one ledger entry into the books. Rules have checked it before it was appended;
    /// an error here on replay means the ledger is damaged or was written by a broken build.
    pub fn apply(&mut self, env: &Envelope) -> Result<(), ApplyError> {
        let fail = |reason: String| ApplyError { seq: env.seq, reason };
        if env.seq != self.next_seq {
            return Err(fail(format!("expected sequence number {}, found {}", self.next_seq, env.seq)));
        }
        if let Some(site) = &self.site {
            if env.site != site.site {
                return Err(fail(format!("entry belongs to site {:?}, not {:?}", env.site, site.site)));
            }
        }
        self.touched.insert(rk("meta", "next_seq"));
        self.last_at = Some(self.last_at.map_or(env.at, |t| t.max(env.at)));
        match &env.event {
            Event::SiteInitialized { site, verifier_key, root_unit, root_unit_name } => {
                if self.site.is_some() {
                    return Err(fail("site initialized twice".into()));
                }
                self.site = Some(SiteInfo { site: site.clone(), verifier_key: verifier_key.clone(), root_unit: root_unit.clone() });
                self.touched.insert(rk("meta", "site"));
                self.units.insert(root_unit.clone(), Unit { name: root_unit_name.clone(), parent: None });
                self.touched.insert(rk("unit", root_unit));
            }
            Event::SiteTimeZoneSet { zone } => {
                self.time_zone = Some(zone.clone());
                self.touched.insert(rk("meta", "time_zone"));
            }
            Event::UnitCreated { unit, name, parent } => {
                self.units.insert(unit.clone(), Unit { name: name.clone(), parent: Some(parent.clone()) });
                self.touched.insert(rk("unit", unit));
            }
            Event::LocationCreated { location, name, unit, parent, kind, keeper, magazine } => {
                self.locations.insert(
                    location.clone(),
                    Location {
                        name: name.clone(),
                        unit: unit.clone(),
                        parent: parent.clone(),
                        kind: *kind,
                        keeper: keeper.clone(),
                        magazine: magazine.clone(),
                        flags: vec![],
                        conditions: None,
                    },
                );
                self.touched.insert(rk("location", location));
            }
            Event::ItemTypeDefined { item_type, name, kind, tracking, unit_of_measure, neq_kg_per_unit, un_code, qualification } => {
                self.item_types.insert(
                    item_type.clone(),
                    ItemType {
                        name: name.clone(),
                        kind: *kind,
                        tracking: *tracking,
                        unit_of_measure: unit_of_measure.clone(),
                        neq_kg_per_unit: *neq_kg_per_unit,
                        un_code: un_code.clone(),
                        qualification: qualification.clone(),
                        temperature_c: None,
                        humidity_pct: None,
                    },
                );
                self.touched.insert(rk("item_type", item_type));
            }
            Event::LocationSafetySet { location, flags, conditions } => {
                let l = self.locations.get_mut(location).ok_or_else(|| fail(format!("unknown location {location}")))?;
                l.flags = flags.clone();
                l.conditions = *conditions;
                self.touched.insert(rk("location", location));
            }
            Event::ItemTypeStorageSet { item_type, temperature_c, humidity_pct } => {
                let t = self.item_types.get_mut(item_type).ok_or_else(|| fail(format!("unknown item type {item_type}")))?;
                t.temperature_c = *temperature_c;
                t.humidity_pct = *humidity_pct;
                self.touched.insert(rk("item_type", item_type));
            }
            Event::ReadingsRecorded { .. } => {}
            Event::ExcursionStarted { excursion, location, measure, direction, started_at, limit, peak, lots_exposed, serials_exposed } => {
                self.excursions.insert(
                    excursion.clone(),
                    Excursion {
                        location: location.clone(),
                        measure: *measure,
                        direction: *direction,
                        started_at: *started_at,
                        ended_at: None,
                        limit: *limit,
                        peak: *peak,
                        lots_exposed: lots_exposed.clone(),
                        serials_exposed: *serials_exposed,
                    },
                );
                self.touched.insert(rk("excursion", excursion));
            }
            Event::ExcursionEnded { excursion, ended_at, peak } => {
                let x = self.excursions.get_mut(excursion).ok_or_else(|| fail(format!("unknown excursion {excursion}")))?;
                x.ended_at = Some(*ended_at);
                x.peak = *peak;
                self.touched.insert(rk("excursion", excursion));
            }
            Event::PersonRegistered { badge, name, unit, roles, pin_hash } => {
                let qualifications = self.people.get(badge).map(|p| p.qualifications.clone()).unwrap_or_default();
                let password_hash = self.people.get(badge).and_then(|p| p.password_hash.clone());
                self.people.insert(
                    badge.clone(),
                    Person {
                        name: name.clone(),
                        unit: unit.clone(),
                        roles: roles.clone(),
                        pin_hash: pin_hash.clone(),
                        password_hash,
                        qualifications,
                    },
                );
                self.touched.insert(rk("person", badge));
            }
            Event::CredentialSet { badge, kind, hash } => {
                let p = self.people.get_mut(badge).ok_or_else(|| fail(format!("unknown badge {badge}")))?;
                match kind {
                    // A new credential supersedes one an old entry carried (None on new ledgers).
                    CredentialKind::Pin => p.pin_hash = hash.clone(),
                    CredentialKind::Password => p.password_hash = hash.clone(),
                }
                self.touched.insert(rk("person", badge));
            }
            Event::TokenIssued { token, label, unit, operations, secret_hash } => {
                self.tokens.insert(
                    token.clone(),
                    ApiToken {
                        label: label.clone(),
                        unit: unit.clone(),
                        operations: operations.clone(),
                        secret_hash: secret_hash.clone(),
                        issued_by: env.actor.clone(),
                        revoked: false,
                    },
                );
                self.touched.insert(rk("token", token));
            }
            Event::TokenRevoked { token, .. } => {
                let t = self.tokens.get_mut(token).ok_or_else(|| fail(format!("unknown token {token}")))?;
                t.revoked = true;
                self.touched.insert(rk("token", token));
            }
            Event::AccessDenied { .. } => {}
            Event::QualificationGranted { badge, qualification, expires } => {
                let p = self.people.get_mut(badge).ok_or_else(|| fail(format!("unknown badge {badge}")))?;
                p.qualifications.insert(qualification.clone(), *expires);
                self.touched.insert(rk("person", badge));
            }
            Event::PolicySet { unit, rules } => {
                self.policies.insert(unit.clone(), rules.clone());
                self.touched.insert(rk("policy", unit));
            }
            Event::SerialRegistered { serial, item_type, lot } => {
                if self.serials.contains_key(serial) {
                    return Err(fail(format!("serial {serial} registered twice")));
                }
                // A registered serial starts at its supplier; the receipt's movement brings it in.
                self.serials.insert(
                    serial.clone(),
                    SerialItem {
                        item_type: item_type.clone(),
                        lot: lot.clone(),
                        account: Account::Found,
                        since: env.at,
                        since_seq: env.seq,
                    },
                );
                self.touched.insert(rk("serial", serial));
            }
            Event::LotRegistered { lot, item_type, manufactured, expires } => {
                self.lots.insert(
                    lot.clone(),
                    Lot {
                        item_type: item_type.clone(),
                        manufactured: *manufactured,
                        expires: *expires,
                        status: LotStatus::Serviceable,
                        decisions: BTreeMap::new(),
                    },
                );
                self.touched.insert(rk("lot", lot));
            }
            Event::Movement { from, to, lines, kind, .. } => {
                for line in lines {
                    self.index_stock(from, line.item_type(), line.quantity().negated()).map_err(fail)?;
                    self.index_stock(to, line.item_type(), line.quantity()).map_err(fail)?;
                    match line {
                        Line::Serial { serial, .. } => {
                            let s = self.serials.get_mut(serial).ok_or_else(|| fail(format!("unknown serial {serial}")))?;
                            // A receipt or a found item starts outside the books, wherever registration left it.
                            let entering =
                                matches!(kind, MovementKind::Receive | MovementKind::Adjust | MovementKind::Correct) && !from.is_internal();
                            if s.account != *from && !(entering && s.account == Account::Found) {
                                return Err(fail(format!("serial {serial} is at {}, not at {from}", s.account)));
                            }
                            s.account = to.clone();
                            s.since = env.at;
                            s.since_seq = env.seq;
                            self.touched.insert(rk("serial", serial));
                        }
                        Line::Lot { lot, quantity, .. } => {
                            self.add_balance(from, lot, quantity.negated(), env.at).map_err(fail)?;
                            self.add_balance(to, lot, *quantity, env.at).map_err(fail)?;
                        }
                    }
                }
            }
            Event::LotStatusChanged { lot, status, reason, unit } => {
                let root = self.site.as_ref().map(|s| s.root_unit.clone());
                let l = self.lots.get_mut(lot).ok_or_else(|| fail(format!("unknown lot {lot}")))?;
                match unit {
                    Some(u) if Some(u) != root.as_ref() => {
                        if *status == LotStatus::Serviceable {
                            l.decisions.remove(u);
                        } else {
                            l.decisions.insert(u.clone(), LotDecision { status: *status, reason: reason.clone() });
                        }
                    }
                    _ => l.status = *status,
                }
                self.touched.insert(rk("lot", lot));
            }
            Event::TransferDispatched { transfer, from_unit, to_unit, document } => {
                self.transfers.insert(
                    transfer.clone(),
                    Transfer {
                        from_unit: from_unit.clone(),
                        to_unit: to_unit.clone(),
                        document: document.clone(),
                        dispatched_at: env.at,
                        lines: vec![],
                        received_at_location: None,
                        discrepancies: vec![],
                    },
                );
                self.touched.insert(rk("transfer", transfer));
            }
            Event::TransferReceived { transfer, location, discrepancies } => {
                let t = self.transfers.get_mut(transfer).ok_or_else(|| fail(format!("unknown transfer {transfer}")))?;
                t.received_at_location = Some(location.clone());
                t.discrepancies = discrepancies.clone();
                self.touched.insert(rk("transfer", transfer));
            }
            Event::CountStarted { count, root, kind, blind, counter } => {
                self.counts.insert(
                    count.clone(),
                    Count {
                        root: root.clone(),
                        kind: *kind,
                        blind: *blind,
                        counter: counter.clone(),
                        started_at: env.at,
                        serials: BTreeMap::new(),
                        lots: BTreeMap::new(),
                        closed: false,
                        discrepancies: vec![],
                    },
                );
                self.touched.insert(rk("count", count));
            }
            Event::CountRecorded { count, location, serials, lots } => {
                let c = self.counts.get_mut(count).ok_or_else(|| fail(format!("unknown count {count}")))?;
                c.serials.entry(location.clone()).or_default().extend(serials.iter().cloned());
                let per_lot = c.lots.entry(location.clone()).or_default();
                for (lot, q) in lots {
                    let sum = per_lot.entry(lot.clone()).or_default();
                    *sum = sum
                        .checked_add(*q)
                        .ok_or_else(|| fail(format!("count {count} at {location}: lot {lot} sums past the limit of a quantity")))?;
                }
                self.touched.insert(rk("count", count));
            }
            Event::DiscrepancyOpened { discrepancy, facts } => {
                if let DiscrepancySource::Transfer(t) = &facts.source {
                    if let Some(tr) = self.transfers.get_mut(t) {
                        tr.discrepancies.push(discrepancy.clone());
                        self.touched.insert(rk("transfer", t));
                    }
                }
                self.discrepancies.insert(discrepancy.clone(), Discrepancy { facts: facts.clone(), resolution: None });
                self.touched.insert(rk("discrepancy", discrepancy));
            }
            Event::CountClosed { count, discrepancies } => {
                let c = self.counts.get_mut(count).ok_or_else(|| fail(format!("unknown count {count}")))?;
                c.closed = true;
                c.discrepancies = discrepancies.clone();
                self.last_counter.insert(c.root.clone(), c.counter.clone());
                self.touched.insert(rk("last_counter", &c.root));
                self.touched.insert(rk("count", count));
            }
            Event::DiscrepancyResolved { discrepancy, adjusted, note } => {
                let d = self.discrepancies.get_mut(discrepancy).ok_or_else(|| fail(format!("unknown discrepancy {discrepancy}")))?;
                d.resolution = Some(Resolution {
                    adjusted: *adjusted,
                    note: note.clone(),
                    by: env.actor.clone(),
                    witness: env.witness.clone(),
                    seq: env.seq,
                });
                self.touched.insert(rk("discrepancy", discrepancy));
            }
        }
        if let Some(c) = &env.corrects {
            self.corrected.insert(c.seq, env.seq);
            self.touched.insert(rk("corrected", c.seq));
        }
        #[cfg(debug_assertions)]
        crate::invariants::after_apply(self, env).map_err(|v| fail(v.to_string()))?;
        // Transfers remember what was dispatched, for the receiving count.
        if let Event::Movement { kind: MovementKind::Dispatch, to: Account::Transit(t), lines, .. } = &env.event {
            if let Some(tr) = self.transfers.get_mut(t) {
                tr.lines.extend(lines.iter().cloned());
            }
        }
        self.next_seq += 1;
        Ok(())
    }

    fn add_balance(&mut self, account: &Account, lot: &LotNo, delta: Quantity, at: OffsetDateTime) -> Result<(), String> {
        // Suppliers are sources without a balance: tracking them would only record negative numbers.
        if matches!(account, Account::Supplier(_)) {
            return Ok(());
        }
        let key = (account.clone(), lot.clone());
        self.touched.insert(rk("balance", balance_key(account, lot)));
        let entry = self.balances.entry(key.clone()).or_insert(Balance { quantity: Quantity::ZERO, since: at });
        if !entry.quantity.is_positive() && delta.is_positive() {
            entry.since = at;
        }
        entry.quantity =
            entry.quantity.checked_add(delta).ok_or_else(|| format!("{account} would hold more of lot {lot} than a quantity can"))?;
        if entry.quantity == Quantity::ZERO {
            self.balances.remove(&key);
        }
        Ok(())
    }
}
