//! Invariants of the books, checked by code that shares nothing with `State::apply`: an auditor's own
//! small fold over the entries, and a comparison of what it found with the books.
//!
//! What must hold of any ledger, however its entries were made:
//! * **no negative balance** in an internal account (a place, a person, a transfer in transit);
//! * **one place per serial**: a serial moves only from where it is, and is registered once;
//! * **quantity is conserved**: stock enters or leaves the books only through external accounts
//!   (supplier, expended, destroyed, lost, found), so every lot's balances sum to what came from
//!   its suppliers;
//! * **counts and transfers are consistent**: a transfer is dispatched and received once, a count
//!   is recorded only while open and closed once, a discrepancy is opened and resolved once;
//! * **time only moves forward** from one entry to the next.
//!
//! `verify` runs an [`Audit`] over every entry and compares it with the replayed books, the property
//! tests do the same over random command sequences, and debug builds check [`after_apply`] after
//! every event `State::apply` folds in.

use crate::event::{Envelope, Event, Line};
use crate::ids::*;
use crate::model::Account;
use crate::state::State;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// One broken invariant, at one entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {message} (rule {rule})")]
pub struct Violation {
    pub seq: u64,
    /// A stable code: `invariant.balance`, `invariant.serial`, `invariant.conserved`,
    /// `invariant.transfer`, `invariant.count`, `invariant.discrepancy`, `invariant.time`.
    pub rule: &'static str,
    pub message: String,
}

/// Things with a life of their own in the ledger.
#[derive(Clone, Copy)]
enum Life {
    Transfer,
    Count,
    Discrepancy,
}

/// A step in that life, with the verb the messages use.
#[derive(Clone, Copy)]
enum Step {
    Begin(&'static str),
    Use(&'static str),
    End(&'static str),
}

/// Stops after this many violations: a ledger that breaks one invariant often breaks it everywhere.
pub const VIOLATIONS_KEPT: usize = 100;

/// The auditor's own books: where each serial is, each balance as an exact wide integer, and what
/// came from suppliers per lot. Folded from the entries without `State`.
#[derive(Debug, Default)]
pub struct Audit {
    serials: BTreeMap<Serial, Account>,
    balances: BTreeMap<(Account, LotNo), i128>,
    supplied: BTreeMap<LotNo, i128>,
    /// Transfers, counts and discrepancies seen begun, by id: `true` once ended.
    transfers: BTreeMap<String, bool>,
    counts: BTreeMap<String, bool>,
    discrepancies: BTreeMap<String, bool>,
    last_at: Option<OffsetDateTime>,
    violations: Vec<Violation>,
    /// Entries seen.
    pub entries: u64,
}

impl Audit {
    pub fn new() -> Audit {
        Audit::default()
    }

    /// The violations found so far (at most [`VIOLATIONS_KEPT`]).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn flag(&mut self, seq: u64, rule: &'static str, message: String) {
        if self.violations.len() < VIOLATIONS_KEPT {
            self.violations.push(Violation { seq, rule, message });
        }
    }

    /// Folds one entry in, noting any invariant it breaks.
    pub fn observe(&mut self, env: &Envelope) {
        self.entries += 1;
        let seq = env.seq;
        if let Some(last) = self.last_at {
            if env.at < last {
                self.flag(seq, "invariant.time", format!("stamped {} before the entry ahead of it ({last})", env.at));
            }
        }
        self.last_at = Some(self.last_at.map_or(env.at, |t| t.max(env.at)));
        match &env.event {
            Event::SerialRegistered { serial, .. } => {
                if self.serials.contains_key(serial) {
                    self.flag(seq, "invariant.serial", format!("serial {serial} is registered a second time"));
                } else {
                    self.serials.insert(serial.clone(), Account::Found);
                }
            }
            Event::Movement { from, to, lines, .. } => self.movement(seq, from, to, lines),
            Event::TransferDispatched { transfer, .. } => self.step(seq, Life::Transfer, transfer, Step::Begin("dispatched")),
            Event::TransferReceived { transfer, .. } => self.step(seq, Life::Transfer, transfer, Step::End("received")),
            Event::CountStarted { count, .. } => self.step(seq, Life::Count, count, Step::Begin("started")),
            Event::CountRecorded { count, .. } => self.step(seq, Life::Count, count, Step::Use("recorded")),
            Event::CountClosed { count, .. } => self.step(seq, Life::Count, count, Step::End("closed")),
            Event::DiscrepancyOpened { discrepancy, .. } => self.step(seq, Life::Discrepancy, discrepancy, Step::Begin("opened")),
            Event::DiscrepancyResolved { discrepancy, .. } => self.step(seq, Life::Discrepancy, discrepancy, Step::End("resolved")),
            _ => {}
        }
    }

    /// One step in the life of a transfer, count or discrepancy: begun once, used only while open,
    /// ended once after it began.
    fn step(&mut self, seq: u64, life: Life, id: &impl std::fmt::Display, step: Step) {
        let (what, rule, begin) = match life {
            Life::Transfer => ("transfer", "invariant.transfer", "dispatched"),
            Life::Count => ("count", "invariant.count", "started"),
            Life::Discrepancy => ("discrepancy", "invariant.discrepancy", "opened"),
        };
        let key = id.to_string();
        let map = match life {
            Life::Transfer => &mut self.transfers,
            Life::Count => &mut self.counts,
            Life::Discrepancy => &mut self.discrepancies,
        };
        let problem = match (step, map.get(&key).copied()) {
            (Step::Begin(_), None) => {
                map.insert(key.clone(), false);
                None
            }
            (Step::Begin(verb), Some(_)) => Some(format!("is {verb} a second time")),
            (Step::Use(_), Some(false)) => None,
            (Step::Use(verb), Some(true)) => Some(format!("is {verb} after it ended")),
            (Step::End(_), Some(false)) => {
                map.insert(key.clone(), true);
                None
            }
            (Step::End(verb), Some(true)) => Some(format!("is {verb} a second time")),
            (Step::Use(verb) | Step::End(verb), None) => Some(format!("is {verb} but was never {begin}")),
        };
        if let Some(p) = problem {
            self.flag(seq, rule, format!("{what} {key} {p}"));
        }
    }

    fn movement(&mut self, seq: u64, from: &Account, to: &Account, lines: &[Line]) {
        for line in lines {
            match line {
                Line::Serial { serial, .. } => match self.serials.get(serial) {
                    None => self.flag(seq, "invariant.serial", format!("serial {serial} moves but was never registered")),
                    Some(at) if at == from || (*at == Account::Found && !from.is_internal()) => {
                        self.serials.insert(serial.clone(), to.clone());
                    }
                    Some(at) => {
                        let at = at.clone();
                        self.flag(seq, "invariant.serial", format!("serial {serial} moves from {from} to {to} while it is at {at}"));
                    }
                },
                Line::Lot { lot, quantity, .. } => {
                    let q = i128::from(quantity.thousandths());
                    if q <= 0 {
                        self.flag(seq, "invariant.balance", format!("a line of lot {lot} moves {quantity}, not a positive quantity"));
                    }
                    for (account, delta) in [(from, -q), (to, q)] {
                        if let Account::Supplier(_) = account {
                            *self.supplied.entry(lot.clone()).or_default() -= delta;
                            continue;
                        }
                        let b = self.balances.entry((account.clone(), lot.clone())).or_default();
                        *b += delta;
                        let b = *b;
                        if account.is_internal() && b < 0 {
                            self.flag(seq, "invariant.balance", format!("{account} would hold {} of lot {lot}", show(b)));
                        }
                    }
                }
            }
        }
    }

    /// Compares the auditor's findings with the books a replay built, after the last entry:
    /// every serial's place, every balance, and each lot's balances against what its suppliers gave.
    pub fn compare(&mut self, books: &State) {
        let seq = self.entries.saturating_sub(1);
        for (lot, supplied) in &self.supplied.clone() {
            let held: i128 = self.balances.iter().filter(|((_, l), _)| l == lot).map(|(_, q)| *q).sum();
            if held != *supplied {
                self.flag(
                    seq,
                    "invariant.conserved",
                    format!("lot {lot}: {} came from suppliers but {} is on the books", show(*supplied), show(held)),
                );
            }
        }
        let mine: BTreeSet<(&Account, &LotNo, i128)> =
            self.balances.iter().filter(|(_, q)| **q != 0).map(|((a, l), q)| (a, l, *q)).collect();
        let theirs: BTreeSet<(&Account, &LotNo, i128)> = books
            .balances
            .iter()
            .filter(|((a, _), _)| !matches!(a, Account::Supplier(_)))
            .map(|((a, l), b)| (a, l, i128::from(b.quantity.thousandths())))
            .collect();
        let mut found = vec![];
        for (a, l, q) in mine.symmetric_difference(&theirs).take(10) {
            let said = if mine.contains(&(*a, *l, *q)) { "the entries give" } else { "the books say" };
            found.push(format!("{a} / lot {l}: {said} {}", show(*q)));
        }
        for f in found {
            self.flag(seq, "invariant.conserved", format!("balance differs between the entries and the books: {f}"));
        }
        let mut misplaced = vec![];
        for (s, at) in &self.serials {
            match books.serials.get(s) {
                Some(item) if item.account == *at => {}
                Some(item) => misplaced.push(format!("serial {s}: the entries put it at {at}, the books at {}", item.account)),
                None => misplaced.push(format!("serial {s}: registered in the entries, absent from the books")),
            }
        }
        misplaced.extend(
            books.serials.keys().filter(|s| !self.serials.contains_key(*s)).map(|s| format!("serial {s}: on the books, never registered")),
        );
        for m in misplaced.into_iter().take(10) {
            self.flag(seq, "invariant.serial", m);
        }
    }
}

fn show(thousandths: i128) -> String {
    crate::quantity::format_thousandths(thousandths)
}

/// The cheap check debug builds make after each event is applied: the balances and serials the
/// event touched are possible (no internal account below zero, every moved serial where it went).
pub fn after_apply(books: &State, env: &Envelope) -> Result<(), Violation> {
    let Event::Movement { from, to, lines, .. } = &env.event else { return Ok(()) };
    let bad = |rule, message| Err(Violation { seq: env.seq, rule, message });
    for line in lines {
        match line {
            Line::Serial { serial, .. } => match books.serials.get(serial) {
                Some(s) if s.account == *to => {}
                _ => return bad("invariant.serial", format!("serial {serial} is not at {to} after moving there")),
            },
            Line::Lot { lot, .. } => {
                for account in [from, to] {
                    let q = books.balance(account, lot);
                    if account.is_internal() && q.thousandths() < 0 {
                        return bad("invariant.balance", format!("{account} holds {q} of lot {lot}"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn env(seq: u64, minute: i64, event: Event) -> Envelope {
        Envelope {
            site: "t".into(),
            seq,
            at: datetime!(2026-11-23 06:00 UTC) + time::Duration::minutes(minute),
            actor: Badge::parse("0001").unwrap(),
            witness: None,
            token: None,
            idempotency_key: format!("k{seq}"),
            request: None,
            corrects: None,
            event,
            opens: vec![],
        }
    }

    fn rules_broken(events: Vec<(i64, Event)>) -> Vec<&'static str> {
        let mut a = Audit::new();
        for (i, (minute, e)) in events.into_iter().enumerate() {
            a.observe(&env(i as u64, minute, e));
        }
        a.violations().iter().map(|v| v.rule).collect()
    }

    #[test]
    fn twice_done_and_backward_entries_are_reported() {
        let t = TransferId::parse("T-1").unwrap();
        let u = UnitId::parse("HQ").unwrap();
        let dispatched = Event::TransferDispatched { transfer: t.clone(), from_unit: u.clone(), to_unit: u, document: None };
        let loc = LocationId::parse("ARM").unwrap();
        let received = Event::TransferReceived { transfer: t, location: loc.clone(), discrepancies: vec![] };
        assert_eq!(rules_broken(vec![(0, dispatched), (1, received.clone()), (2, received)]), vec!["invariant.transfer"]);
        let c = CountId::parse("C-1").unwrap();
        let started = Event::CountStarted {
            count: c.clone(),
            root: loc.clone(),
            kind: crate::model::CountKind::Full,
            blind: false,
            counter: Badge::parse("0001").unwrap(),
        };
        let closed = Event::CountClosed { count: c.clone(), discrepancies: vec![] };
        let recorded = Event::CountRecorded { count: c, location: loc, serials: vec![], lots: vec![] };
        assert_eq!(
            rules_broken(vec![(0, started), (1, closed.clone()), (2, recorded), (3, closed)]),
            vec!["invariant.count", "invariant.count"]
        );
        let d = DiscrepancyId::parse("D-1").unwrap();
        let resolved = Event::DiscrepancyResolved { discrepancy: d, adjusted: false, note: "x".into() };
        assert_eq!(rules_broken(vec![(0, resolved)]), vec!["invariant.discrepancy"]);
        let unit = |n: &str| Event::UnitCreated { unit: UnitId::parse(n).unwrap(), name: n.into(), parent: UnitId::parse("HQ").unwrap() };
        assert_eq!(rules_broken(vec![(5, unit("A")), (4, unit("B"))]), vec!["invariant.time"]);
    }

    #[test]
    fn books_that_differ_from_the_entries_are_reported() {
        let lot = LotNo::parse("L-1").unwrap();
        let it = ItemTypeId::parse("AMMO").unwrap();
        let to = Account::Location(LocationId::parse("ARM").unwrap());
        let received = Event::Movement {
            kind: crate::model::MovementKind::Receive,
            from: Account::Supplier("S".into()),
            to: to.clone(),
            lines: vec![Line::Lot { lot: lot.clone(), item_type: it, quantity: crate::quantity::Quantity::units(10) }],
            document: None,
        };
        let mut a = Audit::new();
        a.observe(&env(0, 0, received));
        // Books that never saw the receipt: the auditor's balance has no match there.
        a.compare(&State::new());
        let rules: Vec<&str> = a.violations().iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec!["invariant.conserved"], "{:?}", a.violations());
        assert!(a.violations()[0].message.contains("lot L-1"), "{:?}", a.violations());
    }
}
