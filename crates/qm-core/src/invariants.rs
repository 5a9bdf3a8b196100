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

/// Stops after this many violations: a ledger that breaks one invariant often breaks it everywhere.
pub const VIOLATIONS_KEPT: usize = 100;

/// The auditor's own books: where each serial is, each balance as an exact wide integer, and what
/// came from suppliers per lot. Folded from the entries without `State`.
#[derive(Debug, Default)]
pub struct Audit {
    serials: BTreeMap<Serial, Account>,
    balances: BTreeMap<(Account, LotNo), i128>,
    supplied: BTreeMap<LotNo, i128>,
    transfers: BTreeMap<TransferId, bool>,
    counts: BTreeMap<CountId, bool>,
    discrepancies: BTreeMap<DiscrepancyId, bool>,
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
            Event::TransferDispatched { transfer, .. } => {
                let again = self.transfers.insert(transfer.clone(), false).is_some();
                if again {
                    self.flag(seq, "invariant.transfer", format!("transfer {transfer} is dispatched a second time"));
                }
            }
            Event::TransferReceived { transfer, .. } => match self.transfers.get_mut(transfer) {
                Some(received @ false) => *received = true,
                Some(true) => self.flag(seq, "invariant.transfer", format!("transfer {transfer} is received a second time")),
                None => self.flag(seq, "invariant.transfer", format!("transfer {transfer} is received but was never dispatched")),
            },
            Event::CountStarted { count, .. } => {
                let again = self.counts.insert(count.clone(), false).is_some();
                if again {
                    self.flag(seq, "invariant.count", format!("count {count} is started a second time"));
                }
            }
            Event::CountRecorded { count, .. } => match self.counts.get(count) {
                Some(false) => {}
                Some(true) => self.flag(seq, "invariant.count", format!("count {count} is recorded after it was closed")),
                None => self.flag(seq, "invariant.count", format!("count {count} is recorded but was never started")),
            },
            Event::CountClosed { count, .. } => match self.counts.get_mut(count) {
                Some(closed @ false) => *closed = true,
                Some(true) => self.flag(seq, "invariant.count", format!("count {count} is closed a second time")),
                None => self.flag(seq, "invariant.count", format!("count {count} is closed but was never started")),
            },
            Event::DiscrepancyOpened { discrepancy, .. } => {
                let again = self.discrepancies.insert(discrepancy.clone(), false).is_some();
                if again {
                    self.flag(seq, "invariant.discrepancy", format!("discrepancy {discrepancy} is opened a second time"));
                }
            }
            Event::DiscrepancyResolved { discrepancy, .. } => match self.discrepancies.get_mut(discrepancy) {
                Some(resolved @ false) => *resolved = true,
                Some(true) => self.flag(seq, "invariant.discrepancy", format!("discrepancy {discrepancy} is resolved a second time")),
                None => self.flag(seq, "invariant.discrepancy", format!("discrepancy {discrepancy} is resolved but was never opened")),
            },
            _ => {}
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
