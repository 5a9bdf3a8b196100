//! Transfers between sites, matched by headquarters from both ledgers (docs/sites.md, "Transfers
//! between sites"). A site dispatches to a unit that another site serves (the parent's children
//! file says which: the unit a child serves, or the root unit of its books); the transfer stays in
//! transit in the sender's books. The receiving site records the receipt from the sender as
//! `<origin>/<transfer>` (`qm receive --from d11.example/T-3`). Headquarters reads both from its
//! mirrors and matches them, every id qualified by its site: received as sent, received with
//! differences, or awaited (overdue after `RECEIPT_DUE_H`).

use crate::sites::Children;
use crate::{Result, Site};
use qm_core::{Account, Event, Line, MovementKind, State};
use serde::Serialize;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// A transfer between sites not received this long after its dispatch is overdue.
pub const RECEIPT_DUE_H: i64 = 72;

/// A receipt at a site from another site's transfer (`from`: `<origin>/<transfer>`).
#[derive(Clone, Debug, Serialize)]
pub struct SiteReceipt {
    pub from: String,
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub lines: Vec<String>,
}

/// The receipt `env` records, if it is one from another site's transfer.
pub(crate) fn receipt_of(seq: u64, env: &qm_core::Envelope) -> Option<SiteReceipt> {
    match &env.event {
        Event::Movement { kind: MovementKind::Receive, from: Account::Supplier(from), lines, .. } if from.contains('/') => {
            Some(SiteReceipt { from: from.clone(), seq, at: env.at, lines: labels(lines) })
        }
        _ => None,
    }
}

fn labels(lines: &[Line]) -> Vec<String> {
    let mut l: Vec<String> = lines.iter().map(Line::label).collect();
    l.sort();
    l
}

/// A transfer still in transit in the books of the site that sent it.
#[derive(Clone, Debug, Serialize)]
pub struct SentTransfer {
    pub transfer: String,
    pub to_unit: String,
    pub document: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub dispatched_at: OffsetDateTime,
    pub lines: Vec<String>,
}

pub(crate) fn in_transit(s: &State) -> Vec<SentTransfer> {
    s.transfers
        .iter()
        .filter(|(_, t)| t.received_at_location.is_none())
        .map(|(id, t)| SentTransfer {
            transfer: id.to_string(),
            to_unit: t.to_unit.to_string(),
            document: t.document.clone(),
            dispatched_at: t.dispatched_at,
            lines: labels(&t.lines),
        })
        .collect()
}

/// One transfer between two sites as headquarters matches it.
#[derive(Clone, Debug, Serialize)]
pub struct SiteTransfer {
    /// `<origin>/<transfer>`.
    pub id: String,
    pub from_site: String,
    pub to_site: String,
    pub to_unit: String,
    pub document: Option<String>,
    pub dispatched_at: String,
    pub lines: Vec<String>,
    /// `received`, `mismatch`, `awaited`, `overdue`.
    pub status: &'static str,
    /// The receipt's entry in the receiving site's ledger, and what it differs in.
    pub receipt_seq: Option<u64>,
    pub differences: Vec<String>,
    pub hours: i64,
}

/// What differs between the lines sent and those received.
fn differences(sent: &[String], received: &[String]) -> Vec<String> {
    fn count(v: &[String]) -> BTreeMap<&str, i32> {
        let mut m = BTreeMap::new();
        for l in v {
            *m.entry(l.as_str()).or_default() += 1;
        }
        m
    }
    let (s, r) = (count(sent), count(received));
    let mut out: Vec<String> =
        s.iter().filter(|(l, n)| r.get(*l) != Some(n)).map(|(l, _)| format!("sent {l}, not received as such")).collect();
    out.extend(r.iter().filter(|(l, n)| s.get(*l) != Some(n)).map(|(l, _)| format!("received {l}, not sent as such")));
    out
}

/// Every transfer in transit at a child site to a unit another child serves, matched with the
/// receipts recorded there; mismatches and overdue ones first. Each child's summary is made if it
/// is not yet (after a restart, a replay of its mirror).
pub fn transfers_across(site: &mut Site, children: &Children, now: OffsetDateTime) -> Result<Vec<SiteTransfer>> {
    for (origin, child) in &children.children {
        site.child_summary(origin, &child.unit, now)?;
    }
    Ok(matched(site, children, now))
}

/// The transfers between the children whose summaries are made, matched.
fn matched(site: &Site, children: &Children, now: OffsetDateTime) -> Vec<SiteTransfer> {
    let mut serves: BTreeMap<String, String> = BTreeMap::new();
    let mut sent = vec![];
    let mut receipts: BTreeMap<String, (String, SiteReceipt)> = BTreeMap::new();
    for (origin, child) in &children.children {
        let Some(c) = site.child_summaries.get(origin) else { continue };
        serves.insert(child.unit.clone(), origin.clone());
        if let Some(root) = &c.row.root_unit {
            serves.insert(root.clone(), origin.clone());
        }
        sent.extend(c.transfers.iter().map(|t| (origin.clone(), t.clone())));
        for r in &c.receipts {
            receipts.insert(r.from.clone(), (origin.clone(), r.clone()));
        }
    }
    let mut out: Vec<SiteTransfer> = sent
        .into_iter()
        .filter_map(|(from, t)| {
            let to = serves.get(&t.to_unit).filter(|to| **to != from)?.clone();
            let id = format!("{from}/{}", t.transfer);
            let got = receipts.get(&id).filter(|(at, _)| *at == to).map(|(_, r)| r);
            let diff = got.map(|r| differences(&t.lines, &r.lines)).unwrap_or_default();
            let hours = (now - t.dispatched_at).whole_hours();
            let status = match got {
                Some(_) if diff.is_empty() => "received",
                Some(_) => "mismatch",
                None if now - t.dispatched_at > Duration::hours(RECEIPT_DUE_H) => "overdue",
                None => "awaited",
            };
            let dispatched_at = t.dispatched_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            Some(SiteTransfer {
                id,
                from_site: from,
                to_site: to,
                to_unit: t.to_unit,
                document: t.document,
                dispatched_at,
                lines: t.lines,
                status,
                receipt_seq: got.map(|r| r.seq),
                differences: diff,
                hours,
            })
        })
        .collect();
    let rank = |s: &str| ["mismatch", "overdue", "awaited", "received"].iter().position(|x| *x == s).unwrap_or(4);
    out.sort_by(|a, b| (rank(a.status), &a.id).cmp(&(rank(b.status), &b.id)));
    out
}

impl Site {
    /// Opens, once each, an incident for every transfer between the child sites received with
    /// differences (high) or overdue (medium), at the unit the sending site serves here: it sent
    /// the stock and accounts for it. Called when a mirror cosigns the new entries of `origin`:
    /// only the transfers it sent or received are looked at, among the summaries already made (no
    /// child's ledger is replayed on the way); returns how many it opened now.
    pub fn transfer_incidents(&mut self, children: &Children, origin: &str, now: OffsetDateTime) -> Result<usize> {
        self.open_transfer_incidents(children, Some(origin), now)
    }

    /// What headquarters' clock finds due between its children (the server every
    /// `due_every_ms`, `qm tick`): every transfer received with differences or overdue, among the
    /// summaries already made, opened once each — so a receipt that never comes is raised after 72
    /// hours even when neither site sends anything new.
    pub fn transfers_due(&mut self, children: &Children, now: OffsetDateTime) -> Result<usize> {
        self.open_transfer_incidents(children, None, now)
    }

    fn open_transfer_incidents(&mut self, children: &Children, origin: Option<&str>, now: OffsetDateTime) -> Result<usize> {
        let mut opened = 0;
        let concerned = matched(self, children, now).into_iter().filter(|t| origin.is_none_or(|o| t.from_site == o || t.to_site == o));
        for t in concerned.collect::<Vec<_>>() {
            let Some(child) = children.children.get(&t.from_site) else { continue };
            let (severity, what) = match t.status {
                "mismatch" => (qm_core::Severity::High, format!("was received with differences: {}", t.differences.join("; "))),
                "overdue" => {
                    (qm_core::Severity::Medium, format!("dispatched {} is not received there after {RECEIPT_DUE_H} hours", t.dispatched_at))
                }
                _ => continue,
            };
            let summary = format!("transfer {} from site {} to site {} (unit {}) {what}", t.id, t.from_site, t.to_site, t.to_unit);
            let key = format!("site-transfer-{}-{}", t.id, t.status);
            let kind = (qm_core::IncidentKind::CountDiscrepancy, severity);
            match self.child_incident_of(&t.from_site, child, kind, &summary, key, now) {
                Ok(new) => opened += usize::from(new),
                // Opened before with other facts (the same key): it stands as it is.
                Err(crate::AppError::Rejected(qm_core::Rejection::Refused { rule: "idempotency.mismatch", .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_what_was_sent_and_not_received_and_the_other_way() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(differences(&s(&["serial R-1", "60 of lot L"]), &s(&["60 of lot L", "serial R-1"])).is_empty());
        assert_eq!(
            differences(&s(&["serial R-1", "60 of lot L"]), &s(&["50 of lot L", "serial R-1"])),
            vec!["sent 60 of lot L, not received as such", "received 50 of lot L, not sent as such"]
        );
    }
}
