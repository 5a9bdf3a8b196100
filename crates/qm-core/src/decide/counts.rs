//! Counts: closing a count into discrepancies, and resolving a discrepancy.

use super::*;

pub(super) fn decide_close_count(c: &Checker, count: &CountId) -> R<Decision> {
    let state = c.state;
    let Some(k) = state.counts.get(count) else {
        return not_found("count", count);
    };
    if k.closed {
        return refuse("count.open", format!("count {count} is already closed"));
    }
    let root = c.location(&k.root)?;
    if k.counter != c.ctx.actor {
        c.authorize(Op::Resolve, &root.unit)?;
    } else {
        c.authorize(Op::Count, &root.unit)?;
    }
    // A full count covers every place in the subtree; a cycle count only the places it recorded.
    let counted: BTreeSet<LocationId> = match k.kind {
        CountKind::Full => state.location_subtree(&k.root),
        CountKind::Cycle => k.serials.keys().chain(k.lots.keys()).cloned().collect(),
    };
    let mut seen_at: BTreeMap<&Serial, &LocationId> = BTreeMap::new();
    for (loc, serials) in &k.serials {
        for s in serials {
            seen_at.entry(s).or_insert(loc);
        }
    }
    let source = DiscrepancySource::Count(count.clone());
    let mut facts = vec![];
    let mut explained: BTreeSet<&Serial> = BTreeSet::new();
    for (s, si) in &state.serials {
        let Account::Location(book) = &si.account else {
            continue;
        };
        if !counted.contains(book) {
            continue;
        }
        match seen_at.get(s) {
            Some(found) if *found == book => {
                explained.insert(s);
            }
            Some(found) => {
                explained.insert(s);
                facts.push(DiscrepancyFacts {
                    kind: DiscrepancyKind::WrongPlace,
                    source: source.clone(),
                    serial: Some(s.clone()),
                    lot: None,
                    item_type: Some(si.item_type.clone()),
                    book_account: Some(si.account.clone()),
                    found_account: Some(Account::Location((*found).clone())),
                    book_quantity: Quantity::ONE,
                    counted_quantity: Quantity::ONE,
                    adjust_from: si.account.clone(),
                    adjust_to: Account::Location((*found).clone()),
                    adjust_quantity: Quantity::ONE,
                });
            }
            None => facts.push(DiscrepancyFacts {
                kind: DiscrepancyKind::MissingSerial,
                source: source.clone(),
                serial: Some(s.clone()),
                lot: None,
                item_type: Some(si.item_type.clone()),
                book_account: Some(si.account.clone()),
                found_account: None,
                book_quantity: Quantity::ONE,
                counted_quantity: Quantity::ZERO,
                adjust_from: si.account.clone(),
                adjust_to: Account::Lost,
                adjust_quantity: Quantity::ONE,
            }),
        }
    }
    for (s, found) in &seen_at {
        if explained.contains(s) {
            continue;
        }
        let known = state.serials.get(*s);
        let book = known.map(|k| k.account.clone());
        let kind = match &book {
            Some(a) if a.is_internal() => DiscrepancyKind::WrongPlace,
            _ => DiscrepancyKind::UnexpectedSerial,
        };
        facts.push(DiscrepancyFacts {
            kind,
            source: source.clone(),
            serial: Some((*s).clone()),
            lot: None,
            item_type: known.map(|k| k.item_type.clone()),
            book_account: book.clone(),
            found_account: Some(Account::Location((*found).clone())),
            book_quantity: Quantity::ZERO,
            counted_quantity: Quantity::ONE,
            adjust_from: book.unwrap_or(Account::Found),
            adjust_to: Account::Location((*found).clone()),
            adjust_quantity: Quantity::ONE,
        });
    }
    // Lots: compare book and count per place; a box in the wrong place shows as short here and over there.
    let mut book_lots: BTreeMap<(&LocationId, &LotNo), Quantity> = BTreeMap::new();
    for ((a, lot), b) in &state.balances {
        if let Account::Location(l) = a {
            if counted.contains(l) && b.quantity.is_positive() {
                book_lots.insert((l, lot), b.quantity);
            }
        }
    }
    let mut all_keys: BTreeSet<(&LocationId, &LotNo)> = book_lots.keys().copied().collect();
    for (loc, lots) in &k.lots {
        for lot in lots.keys() {
            all_keys.insert((loc, lot));
        }
    }
    for (loc, lot) in all_keys {
        let book = book_lots.get(&(loc, lot)).copied().unwrap_or_default();
        let got = k.lots.get(loc).and_then(|m| m.get(lot)).copied().unwrap_or_default();
        if book == got {
            continue;
        }
        let here = Account::Location(loc.clone());
        let (kind, from, to, q) = if got < book {
            (DiscrepancyKind::QuantityShort, here.clone(), Account::Lost, book.checked_sub(got))
        } else {
            (DiscrepancyKind::QuantityOver, Account::Found, here.clone(), got.checked_sub(book))
        };
        let q = q.ok_or_else(|| over_limit(lot, "the difference between book and count"))?;
        facts.push(DiscrepancyFacts {
            kind,
            source: source.clone(),
            serial: None,
            lot: Some(lot.clone()),
            item_type: state.lots.get(lot).map(|l| l.item_type.clone()),
            book_account: Some(here.clone()),
            found_account: Some(here),
            book_quantity: book,
            counted_quantity: got,
            adjust_from: from,
            adjust_to: to,
            adjust_quantity: q,
        });
    }
    let ids = next_discrepancy_ids(state, facts.len())?;
    let mut events: Vec<Event> =
        ids.iter().zip(facts).map(|(id, f)| Event::DiscrepancyOpened { discrepancy: id.clone(), facts: f }).collect();
    events.push(Event::CountClosed { count: count.clone(), discrepancies: ids });
    Ok(Decision { events, corrects: None, opens: vec![] })
}

pub(super) fn decide_resolve(c: &Checker, id: &DiscrepancyId, approve: bool, note: &str, item_type: Option<&ItemTypeId>) -> R<Decision> {
    let state = c.state;
    text("note", note, true)?;
    let Some(d) = state.discrepancies.get(id) else {
        return not_found("discrepancy", id);
    };
    if let Some(r) = &d.resolution {
        return refuse("discrepancy.once", format!("discrepancy {id} was already resolved by badge {} in entry {}", r.by, r.seq));
    }
    let f = &d.facts;
    let place = f.found_account.as_ref().or(f.book_account.as_ref());
    let unit = match place.and_then(|a| state.account_unit(a)) {
        Some(u) => u,
        None => c.actor.unit.clone(),
    };
    c.authorize(Op::Resolve, &unit)?;
    // The adjustment may touch a second unit (a find whose books are elsewhere): the resolver needs
    // authority there too, and stock never changes unit except by transfer.
    // A transit account belongs to both ends of its transfer; the receiving unit may write off a shortage.
    for account in [&f.adjust_from, &f.adjust_to].into_iter().filter(|a| !matches!(a, Account::Transit(_))) {
        if let Some(u) = state.account_unit(account) {
            c.authorize(Op::Resolve, &u)?;
            if u != unit && matches!(account, Account::Location(_)) {
                return refuse(
                    "move.same_unit",
                    format!("approving discrepancy {id} would move stock between unit {u} and unit {unit}; stock leaves a unit only by transfer: transfer it, then resolve with --explain"),
                );
            }
        }
    }
    if let DiscrepancySource::Count(count) = &f.source {
        if state.counts.get(count).is_some_and(|k| k.counter == c.ctx.actor) {
            return refuse(
                "count.resolver_not_counter",
                format!("badge {} counted {count} and may not resolve its discrepancies", c.ctx.actor),
            );
        }
    }
    if state.effective_policy(&unit, c.ctx.at).0.two_person_count_resolution {
        c.witness(&unit, &format!("resolving discrepancy {id}"))?;
    }
    let mut events = vec![];
    if approve {
        let it = match (&f.item_type, item_type) {
            (Some(t), _) => t.clone(),
            (None, Some(t)) => {
                c.item_type(t)?;
                t.clone()
            }
            (None, None) => {
                return invalid(format!("discrepancy {id} is about something the catalog does not know; give its item type to approve it"))
            }
        };
        // Bring unknown finds onto the books first, so the adjustment moves a known thing.
        let mut items = vec![];
        if let Some(s) = &f.serial {
            if !state.serials.contains_key(s) {
                events.push(Event::SerialRegistered { serial: s.clone(), item_type: it.clone(), lot: None });
            }
            items.push(ItemRef::Serial(s.clone()));
        }
        if let Some(lot) = &f.lot {
            if !state.lots.contains_key(lot) {
                events.push(Event::LotRegistered { lot: lot.clone(), item_type: it.clone(), manufactured: None, expires: None });
            }
            items.push(ItemRef::Lot { lot: lot.clone(), quantity: f.adjust_quantity });
        }
        let lines = if events.is_empty() {
            c.take(&f.adjust_from, &items).map_err(|e| match e {
                Rejection::Refused { message, .. } => Rejection::Refused {
                    rule: "discrepancy.still_applies",
                    message: format!("the books changed since discrepancy {id} was found: {message}"),
                },
                other => other,
            })?
        } else {
            vec![match &f.serial {
                Some(s) => Line::Serial { serial: s.clone(), item_type: it.clone() },
                None => Line::Lot {
                    lot: f.lot.clone().ok_or_else(|| Rejection::Invalid("discrepancy without serial or lot".into()))?,
                    item_type: it.clone(),
                    quantity: f.adjust_quantity,
                },
            }]
        };
        events.push(Event::DiscrepancyResolved { discrepancy: id.clone(), adjusted: true, note: note.to_string() });
        events.push(Event::Movement {
            kind: MovementKind::Adjust,
            from: f.adjust_from.clone(),
            to: f.adjust_to.clone(),
            lines,
            document: Some(format!("discrepancy {id}")),
        });
    } else {
        events.push(Event::DiscrepancyResolved { discrepancy: id.clone(), adjusted: false, note: note.to_string() });
    }
    Ok(Decision { events, corrects: None, opens: vec![] })
}

/// Starting a count and recording what was found.
pub(super) fn decide_count(c: &Checker, command: &Command) -> R<Decision> {
    let (state, ctx) = (c.state, c.ctx);
    let one = |e: Event| Ok(Decision { events: vec![e], corrects: None, opens: vec![] });
    match command {
        Command::StartCount { root, kind, blind } => {
            let loc = c.location(root)?;
            c.authorize(Op::Count, &loc.unit)?;
            let policy = state.effective_policy(&loc.unit, ctx.at).0;
            if policy.blind_counts_only && !*blind {
                let by = crate::directives::ordered_by(state, &loc.unit, ctx.at, "blind_counts_only", &ctx.zone);
                return refuse(
                    "directive.blind_counts",
                    format!("counts at unit {} must be blind{by}; start the count of {root} with --blind", loc.unit),
                );
            }
            let subtree = state.location_subtree(root);
            if policy.counter_not_keeper {
                if let Some(l) = subtree.iter().find(|l| state.locations.get(*l).and_then(|x| x.keeper.as_ref()) == Some(&ctx.actor)) {
                    return refuse(
                        "count.counter_not_keeper",
                        format!(
                            "badge {} keeps location {l} in the counted subtree; policy at unit {} requires someone else to count it",
                            ctx.actor, loc.unit
                        ),
                    );
                }
            }
            if policy.counter_not_previous && state.last_counter.get(root) == Some(&ctx.actor) {
                return refuse(
                    "count.counter_not_previous",
                    format!(
                        "badge {} did the previous count of {root}; policy at unit {} requires a different counter",
                        ctx.actor, loc.unit
                    ),
                );
            }
            if let Some((id, _)) =
                state.counts.iter().find(|(_, k)| !k.closed && (subtree.contains(&k.root) || state.location_within(root, &k.root)))
            {
                return refuse("count.one_open", format!("count {id} is still open over {root}; close it first"));
            }
            let count = CountId::parse(&format!("C-{}", state.counts.len() + 1)).map_err(|e| Rejection::Invalid(e.to_string()))?;
            one(Event::CountStarted { count, root: root.clone(), kind: *kind, blind: *blind, counter: ctx.actor.clone() })
        }
        Command::RecordCount { count, location, serials, lots } => {
            let Some(k) = state.counts.get(count) else {
                return not_found("count", count);
            };
            if k.closed {
                return refuse("count.open", format!("count {count} is closed"));
            }
            if k.counter != ctx.actor {
                return refuse("count.counter", format!("count {count} is being counted by badge {}, not {}", k.counter, ctx.actor));
            }
            c.location(location)?;
            if !state.location_within(location, &k.root) {
                return refuse("count.scope", format!("location {location} is not inside {}, the subtree of count {count}", k.root));
            }
            if serials.len() + lots.len() > LINES_MAX {
                return invalid(format!("at most {LINES_MAX} lines per recording"));
            }
            if lots.iter().any(|(_, q)| !q.is_positive()) {
                return invalid("counted quantities must be more than zero; leave out what is not there");
            }
            one(Event::CountRecorded { count: count.clone(), location: location.clone(), serials: serials.clone(), lots: lots.clone() })
        }
        other => invalid(format!("{} is not a count command", other.name())),
    }
}
