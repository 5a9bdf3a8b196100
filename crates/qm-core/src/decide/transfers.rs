//! Transfers between units: receiving what is still in transit, and the discrepancies found on arrival.

use super::*;

pub(super) fn next_discrepancy_ids(state: &State, n: usize) -> R<Vec<DiscrepancyId>> {
    let start = state.discrepancies.len() + 1;
    (start..start + n).map(|i| DiscrepancyId::parse(&format!("D-{i}")).map_err(|e| Rejection::Invalid(e.to_string()))).collect()
}

pub(super) fn decide_receive_transfer(c: &Checker, transfer: &TransferId, to: &LocationId, received: &[ItemRef]) -> R<Decision> {
    let state = c.state;
    let Some(t) = state.transfers.get(transfer) else {
        return not_found("transfer", transfer);
    };
    if t.received_at_location.is_some() {
        return refuse("transfer.once", format!("transfer {transfer} was already received"));
    }
    let loc = c.location(to)?;
    if loc.unit != t.to_unit {
        return refuse(
            "transfer.destination",
            format!("transfer {transfer} is addressed to unit {}, and {to} is in unit {}", t.to_unit, loc.unit),
        );
    }
    c.authorize(Op::Transfer, &loc.unit)?;
    let transit = Account::Transit(transfer.clone());
    let dest = Account::Location(to.clone());
    let mut sent_serials: BTreeMap<&Serial, &ItemTypeId> = BTreeMap::new();
    let mut sent_lots: BTreeMap<&LotNo, (Quantity, &ItemTypeId)> = BTreeMap::new();
    // What is still in transit, not what was dispatched: stock may have left transit since
    // (reported lost on the road, or the dispatch corrected), and only what is there can arrive.
    for l in &t.lines {
        match l {
            Line::Serial { serial, item_type } => {
                if state.serials.get(serial).is_some_and(|s| s.account == transit) {
                    sent_serials.insert(serial, item_type);
                }
            }
            Line::Lot { lot, item_type, .. } => {
                let held = state.balance(&transit, lot);
                if held.is_positive() {
                    sent_lots.insert(lot, (held, item_type));
                }
            }
        }
    }
    let mut got_serials = BTreeSet::new();
    let mut got_lots: BTreeMap<&LotNo, Quantity> = BTreeMap::new();
    for r in received {
        match r {
            ItemRef::Serial(s) => {
                if !got_serials.insert(s) {
                    return invalid(format!("serial {s} is named twice"));
                }
            }
            ItemRef::Lot { lot, quantity } => {
                if !quantity.is_positive() {
                    return invalid(format!("received quantity of lot {lot} must be more than zero; leave out what did not arrive"));
                }
                let got = got_lots.entry(lot).or_default();
                *got = got.checked_add(*quantity).ok_or_else(|| over_limit(lot, "the received lines"))?;
            }
        }
    }
    let mut lines = vec![];
    let mut facts = vec![];
    let fact = |kind,
                serial: Option<&Serial>,
                lot: Option<&LotNo>,
                item_type: Option<&ItemTypeId>,
                book: Quantity,
                counted: Quantity,
                from: Account,
                to_acc: Account,
                qty: Quantity| DiscrepancyFacts {
        kind,
        source: DiscrepancySource::Transfer(transfer.clone()),
        serial: serial.cloned(),
        lot: lot.cloned(),
        item_type: item_type.cloned(),
        book_account: Some(transit.clone()),
        found_account: Some(dest.clone()),
        book_quantity: book,
        counted_quantity: counted,
        adjust_from: from,
        adjust_to: to_acc,
        adjust_quantity: qty,
    };
    for (s, it) in &sent_serials {
        if got_serials.contains(*s) {
            lines.push(Line::Serial { serial: (*s).clone(), item_type: (*it).clone() });
        } else {
            facts.push(fact(
                DiscrepancyKind::MissingSerial,
                Some(s),
                None,
                Some(it),
                Quantity::ONE,
                Quantity::ZERO,
                transit.clone(),
                Account::Lost,
                Quantity::ONE,
            ));
        }
    }
    for s in &got_serials {
        if !sent_serials.contains_key(*s) {
            let known = state.serials.get(*s);
            let from = known.map(|k| k.account.clone()).unwrap_or(Account::Found);
            facts.push(fact(
                DiscrepancyKind::UnexpectedSerial,
                Some(s),
                None,
                known.map(|k| &k.item_type),
                Quantity::ZERO,
                Quantity::ONE,
                from,
                dest.clone(),
                Quantity::ONE,
            ));
        }
    }
    for (lot, (sent, it)) in &sent_lots {
        let got = got_lots.get(*lot).copied().unwrap_or_default();
        let moved = got.min(*sent);
        if moved.is_positive() {
            lines.push(Line::Lot { lot: (*lot).clone(), item_type: (*it).clone(), quantity: moved });
        }
        if got < *sent {
            facts.push(fact(
                DiscrepancyKind::QuantityShort,
                None,
                Some(lot),
                Some(it),
                *sent,
                got,
                transit.clone(),
                Account::Lost,
                sent.checked_sub(got).ok_or_else(|| over_limit(lot, "the shortage"))?,
            ));
        } else if got > *sent {
            facts.push(fact(
                DiscrepancyKind::QuantityOver,
                None,
                Some(lot),
                Some(it),
                *sent,
                got,
                Account::Found,
                dest.clone(),
                got.checked_sub(*sent).ok_or_else(|| over_limit(lot, "the excess"))?,
            ));
        }
    }
    for (lot, got) in &got_lots {
        if !sent_lots.contains_key(*lot) {
            let it = state.lots.get(*lot).map(|l| &l.item_type);
            facts.push(fact(DiscrepancyKind::QuantityOver, None, Some(lot), it, Quantity::ZERO, *got, Account::Found, dest.clone(), *got));
        }
    }
    let mut events = vec![];
    if !lines.is_empty() {
        c.movement_witness(&loc.unit, &lines, "transfer receipt")?;
        events.push(Event::Movement {
            kind: MovementKind::TransferReceive,
            from: transit.clone(),
            to: dest.clone(),
            lines,
            document: t.document.clone(),
        });
    }
    let ids = next_discrepancy_ids(state, facts.len())?;
    for (id, f) in ids.iter().zip(facts) {
        events.push(Event::DiscrepancyOpened { discrepancy: id.clone(), facts: f });
    }
    events.push(Event::TransferReceived { transfer: transfer.clone(), location: to.clone(), discrepancies: ids });
    Ok(Decision { events, corrects: None, opens: vec![] })
}

/// A dispatch to another unit: the stock goes into transit on a new transfer.
pub(super) fn decide_dispatch(c: &Checker, command: &Command) -> R<Decision> {
    let state = c.state;
    match command {
        Command::Dispatch { from, to_unit, items, document } => {
            if let Some(d) = document {
                text("document", d, false)?;
            }
            let fl = c.location(from)?;
            c.authorize(Op::Transfer, &fl.unit)?;
            // A unit of another site, known from the parent, receives at its own site (docs/sites.md).
            if !state.units.contains_key(to_unit) && !state.elsewhere.contains_key(to_unit) {
                return not_found("unit", to_unit);
            }
            if *to_unit == fl.unit {
                return invalid(format!("transfer from unit {} to itself; use move", fl.unit));
            }
            let lines = c.take(&Account::Location(from.clone()), items)?;
            // Suspended stock stays where it is until the unit that suspended it decides otherwise.
            for line in &lines {
                if let Line::Lot { lot, .. } = line {
                    if let Some((LotStatus::Suspended, by)) = state.lot_status_at(lot, &fl.unit) {
                        let by = by.map(|u| format!(" by decision of unit {u}")).unwrap_or_default();
                        return refuse(
                            "lot.status",
                            format!("lot {lot} is suspended{by}; suspended stock does not move until that decision is lifted"),
                        );
                    }
                }
            }
            c.movement_witness(&fl.unit, &lines, "dispatch")?;
            if let Some(role) = state.effective_policy(&fl.unit, c.ctx.at).0.transfer_approver {
                let approved = c.ctx.witness.as_ref().and_then(|w| state.people.get(w)).is_some_and(|w| w.roles.contains(&role));
                if !approved {
                    let by = crate::directives::ordered_by(state, &fl.unit, c.ctx.at, "transfer_freeze", &c.ctx.zone);
                    return refuse(
                        "directive.transfer_freeze",
                        format!("transfers from unit {} are frozen{by}; a {role} must approve this one as witness", fl.unit),
                    );
                }
            }
            let transfer = TransferId::parse(&format!("T-{}", state.transfers.len() + 1)).map_err(|e| Rejection::Invalid(e.to_string()))?;
            Ok(Decision {
                events: vec![
                    Event::TransferDispatched {
                        transfer: transfer.clone(),
                        from_unit: fl.unit.clone(),
                        to_unit: to_unit.clone(),
                        document: document.clone(),
                    },
                    Event::Movement {
                        kind: MovementKind::Dispatch,
                        from: Account::Location(from.clone()),
                        to: Account::Transit(transfer),
                        lines,
                        document: document.clone(),
                    },
                ],
                corrects: None,
                opens: vec![],
            })
        }
        other => invalid(format!("{} is not a dispatch", other.name())),
    }
}
