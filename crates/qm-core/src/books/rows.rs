//! The books as rows: one codec per book (its row kind, how its key is written and read, and the
//! map it lives in), so writing, listing and loading rows cannot drift apart. The bytes of every row
//! are locked by `tests/books.rs`.

use super::State;
use crate::ids::*;
use crate::model::Account;
use crate::quantity::Quantity;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// A projected row's address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub kind: &'static str,
    pub key: String,
}

/// A book's key, as the text a row is stored under.
pub(super) trait RowKeyText: Sized {
    fn to_key(&self) -> String;
    fn from_key(key: &str) -> Result<Self, String>;
}

macro_rules! id_keys {
    ($($t:ty),+) => {$(
        impl RowKeyText for $t {
            fn to_key(&self) -> String {
                self.to_string()
            }
            fn from_key(key: &str) -> Result<Self, String> {
                <$t>::stored(key).map_err(|e| e.to_string())
            }
        }
    )+};
}
id_keys!(UnitId, LocationId, ItemTypeId, Badge, Serial, LotNo, TransferId, CountId, DiscrepancyId, IncidentId, DirectiveId);

impl RowKeyText for String {
    fn to_key(&self) -> String {
        self.clone()
    }
    fn from_key(key: &str) -> Result<Self, String> {
        Ok(key.to_string())
    }
}

/// Adopted rules, by kind.
impl RowKeyText for crate::event::RulesKind {
    fn to_key(&self) -> String {
        self.as_str().to_string()
    }
    fn from_key(key: &str) -> Result<Self, String> {
        crate::event::RulesKind::parse(key)
    }
}

/// Entry sequence numbers (corrections).
impl RowKeyText for u64 {
    fn to_key(&self) -> String {
        self.to_string()
    }
    fn from_key(key: &str) -> Result<Self, String> {
        key.parse().map_err(|_| "is not a number".to_string())
    }
}

/// A balance: `account|lot` (a lot number has no '|', an account may).
impl RowKeyText for (Account, LotNo) {
    fn to_key(&self) -> String {
        balance_key(&self.0, &self.1)
    }
    fn from_key(key: &str) -> Result<Self, String> {
        let (a, l) = key.rsplit_once('|').ok_or("has no '|'")?;
        Ok((Account::try_from(a.to_string())?, LotNo::stored(l).map_err(|e| e.to_string())?))
    }
}

pub(super) fn balance_key(account: &Account, lot: &LotNo) -> String {
    format!("{account}|{lot}")
}

/// One book: a map of the state stored as one row per entry, the value as JSON.
pub(super) struct Book<K: 'static, V: 'static> {
    pub kind: &'static str,
    map: fn(&State) -> &BTreeMap<K, V>,
    map_mut: fn(&mut State) -> &mut BTreeMap<K, V>,
}

impl<K: RowKeyText, V> Book<K, V> {
    /// The address of the row of `key`.
    pub fn row_key(&self, key: &K) -> RowKey {
        RowKey { kind: self.kind, key: key.to_key() }
    }
}

pub(super) const UNITS: Book<UnitId, super::Unit> = Book { kind: "unit", map: |s| &s.units, map_mut: |s| &mut s.units };
pub(super) const LOCATIONS: Book<LocationId, super::Location> =
    Book { kind: "location", map: |s| &s.locations, map_mut: |s| &mut s.locations };
pub(super) const ITEM_TYPES: Book<ItemTypeId, super::ItemType> =
    Book { kind: "item_type", map: |s| &s.item_types, map_mut: |s| &mut s.item_types };
pub(super) const PEOPLE: Book<Badge, super::Person> = Book { kind: "person", map: |s| &s.people, map_mut: |s| &mut s.people };
pub(super) const POLICIES: Book<UnitId, crate::policy::PolicyRules> =
    Book { kind: "policy", map: |s| &s.policies, map_mut: |s| &mut s.policies };
pub(super) const TOKENS: Book<String, super::ApiToken> = Book { kind: "token", map: |s| &s.tokens, map_mut: |s| &mut s.tokens };
pub(super) const SERIALS: Book<Serial, super::SerialItem> = Book { kind: "serial", map: |s| &s.serials, map_mut: |s| &mut s.serials };
pub(super) const LOTS: Book<LotNo, super::Lot> = Book { kind: "lot", map: |s| &s.lots, map_mut: |s| &mut s.lots };
pub(super) const BALANCES: Book<(Account, LotNo), super::Balance> =
    Book { kind: "balance", map: |s| &s.balances, map_mut: |s| &mut s.balances };
pub(super) const TRANSFERS: Book<TransferId, super::Transfer> =
    Book { kind: "transfer", map: |s| &s.transfers, map_mut: |s| &mut s.transfers };
pub(super) const COUNTS: Book<CountId, super::Count> = Book { kind: "count", map: |s| &s.counts, map_mut: |s| &mut s.counts };
pub(super) const DISCREPANCIES: Book<DiscrepancyId, super::Discrepancy> =
    Book { kind: "discrepancy", map: |s| &s.discrepancies, map_mut: |s| &mut s.discrepancies };
pub(super) const EXCURSIONS: Book<String, super::Excursion> =
    Book { kind: "excursion", map: |s| &s.excursions, map_mut: |s| &mut s.excursions };
pub(super) const INCIDENTS: Book<IncidentId, super::Incident> =
    Book { kind: "incident", map: |s| &s.incidents, map_mut: |s| &mut s.incidents };
pub(super) const DIRECTIVES: Book<DirectiveId, super::Directive> =
    Book { kind: "directive", map: |s| &s.directives, map_mut: |s| &mut s.directives };
pub(super) const ACCESS: Book<LocationId, crate::access::AccessPlace> =
    Book { kind: "access", map: |s| &s.access, map_mut: |s| &mut s.access };
pub(super) const PRESENCE: Book<LocationId, crate::access::Presence> =
    Book { kind: "presence", map: |s| &s.presence, map_mut: |s| &mut s.presence };
pub(super) const LAST_COUNTERS: Book<LocationId, Badge> =
    Book { kind: "last_counter", map: |s| &s.last_counter, map_mut: |s| &mut s.last_counter };
pub(super) const RECEIVED: Book<String, super::Taken> = Book { kind: "received", map: |s| &s.received, map_mut: |s| &mut s.received };
pub(super) const DOWN: Book<u64, crate::down::Reach> = Book { kind: "down", map: |s| &s.down, map_mut: |s| &mut s.down };
pub(super) const ADOPTED: Book<crate::event::RulesKind, crate::down::Adopted> =
    Book { kind: "adopted", map: |s| &s.adopted, map_mut: |s| &mut s.adopted };
pub(super) const ELSEWHERE: Book<UnitId, super::Unit> = Book { kind: "elsewhere", map: |s| &s.elsewhere, map_mut: |s| &mut s.elsewhere };
pub(super) const ABOVE_POLICIES: Book<UnitId, crate::policy::PolicyRules> =
    Book { kind: "above_policy", map: |s| &s.above_policies, map_mut: |s| &mut s.above_policies };
pub(super) const ABOVE_LOTS: Book<LotNo, BTreeMap<UnitId, super::LotDecision>> =
    Book { kind: "above_lot", map: |s| &s.above_lots, map_mut: |s| &mut s.above_lots };
pub(super) const CORRECTED: Book<u64, u64> = Book { kind: "corrected", map: |s| &s.corrected, map_mut: |s| &mut s.corrected };

/// The site's single values, each one row of kind `meta`.
pub(super) const META: &str = "meta";
pub(super) const NEXT_SEQ: &str = "next_seq";
pub(super) const SITE: &str = "site";
pub(super) const TIME_ZONE: &str = "time_zone";

/// What every book can do with its rows, whatever its key and value.
trait Rows {
    fn kind(&self) -> &'static str;
    fn keys(&self, state: &State, out: &mut Vec<RowKey>);
    fn row(&self, state: &State, key: &str) -> Option<String>;
    fn load(&self, state: &mut State, key: &str, value: &str) -> Result<(), String>;
}

impl<K: RowKeyText + Ord, V: Serialize + DeserializeOwned> Rows for Book<K, V> {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn keys(&self, state: &State, out: &mut Vec<RowKey>) {
        out.extend((self.map)(state).keys().map(|k| self.row_key(k)));
    }
    fn row(&self, state: &State, key: &str) -> Option<String> {
        let value = (self.map)(state).get(&K::from_key(key).ok()?)?;
        serde_json::to_string(value).ok()
    }
    fn load(&self, state: &mut State, key: &str, value: &str) -> Result<(), String> {
        let kind = self.kind;
        let k = K::from_key(key).map_err(|e| format!("stored {kind} row key {key:?}: {e}"))?;
        let v = serde_json::from_str(value).map_err(|e| format!("stored {kind} row {key:?} is unreadable: {e}"))?;
        (self.map_mut)(state).insert(k, v);
        Ok(())
    }
}

/// The `meta` rows: the next sequence number, the site, its time zone.
struct Meta;

impl Rows for Meta {
    fn kind(&self) -> &'static str {
        META
    }
    fn keys(&self, state: &State, out: &mut Vec<RowKey>) {
        let present = [(NEXT_SEQ, true), (SITE, state.site.is_some()), (TIME_ZONE, state.time_zone.is_some())];
        out.extend(present.into_iter().filter(|(_, p)| *p).map(|(k, _)| RowKey { kind: META, key: k.into() }));
    }
    fn row(&self, state: &State, key: &str) -> Option<String> {
        match key {
            NEXT_SEQ => Some(state.next_seq.to_string()),
            SITE => serde_json::to_string(state.site.as_ref()?).ok(),
            TIME_ZONE => serde_json::to_string(state.time_zone.as_ref()?).ok(),
            _ => None,
        }
    }
    fn load(&self, state: &mut State, key: &str, value: &str) -> Result<(), String> {
        let unreadable = |e: serde_json::Error| format!("stored meta row {key:?} is unreadable: {e}");
        match key {
            NEXT_SEQ => state.next_seq = value.parse().map_err(|_| format!("stored next_seq {value:?} is not a number"))?,
            SITE => state.site = Some(serde_json::from_str(value).map_err(unreadable)?),
            TIME_ZONE => state.time_zone = Some(serde_json::from_str(value).map_err(unreadable)?),
            other => return Err(format!("unknown meta row {other:?}")),
        }
        Ok(())
    }
}

/// Every book, each once.
const BOOKS: [&dyn Rows; 26] = [
    &Meta,
    &UNITS,
    &LOCATIONS,
    &ITEM_TYPES,
    &PEOPLE,
    &POLICIES,
    &TOKENS,
    &SERIALS,
    &LOTS,
    &BALANCES,
    &TRANSFERS,
    &COUNTS,
    &DISCREPANCIES,
    &EXCURSIONS,
    &INCIDENTS,
    &DIRECTIVES,
    &ACCESS,
    &PRESENCE,
    &LAST_COUNTERS,
    &CORRECTED,
    &RECEIVED,
    &DOWN,
    &ELSEWHERE,
    &ADOPTED,
    &ABOVE_POLICIES,
    &ABOVE_LOTS,
];

fn book(kind: &str) -> Option<&'static dyn Rows> {
    BOOKS.iter().copied().find(|b| b.kind() == kind)
}

impl State {
    /// Marks the row of `key` in `book` as changed.
    pub(super) fn touch<K: RowKeyText, V>(&mut self, book: &Book<K, V>, key: &K) {
        self.touched.insert(book.row_key(key));
    }

    /// Marks one of the `meta` rows as changed.
    pub(super) fn touch_meta(&mut self, key: &'static str) {
        self.touched.insert(RowKey { kind: META, key: key.into() });
    }

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
        let mut keys = vec![];
        for b in BOOKS {
            b.keys(self, &mut keys);
        }
        let mut rows: Vec<(RowKey, String)> = keys.into_iter().filter_map(|k| self.row(&k).map(|v| (k, v))).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    fn row(&self, k: &RowKey) -> Option<String> {
        book(k.kind)?.row(self, &k.key)
    }

    /// Loads one stored row into the books (the opposite of `row`); used when opening a store.
    pub fn load_row(&mut self, kind: &str, key: &str, value: &str) -> Result<(), String> {
        book(kind).ok_or_else(|| format!("unknown projection row kind {kind:?}"))?.load(self, key, value)
    }

    /// Recomputes the derived indexes after rows were loaded. Fails when the stored rows hold more
    /// of one item type in one store than a quantity can (rows no `decide` could have produced).
    pub fn rebuild_indexes(&mut self) -> Result<(), String> {
        for (kind, a) in self.adopted.clone() {
            self.put_rules(kind, &a.text)?;
        }
        self.directive_index.clear();
        for (id, d) in &self.directives {
            let relays = d.units.iter().filter(|(_, c)| c.relayed.is_some()).map(|(u, _)| u.clone());
            for u in std::iter::once(d.unit.clone()).chain(relays) {
                self.directive_index.entry(u).or_default().insert(id.clone());
            }
        }
        crate::directives::rebuild_periods(self);
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
}
