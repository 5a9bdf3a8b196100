//! Custody: receipts and issues — where stock comes from and who holds it.

use super::*;

pub(super) fn decide_receive(c: &Checker, to: &LocationId, from: &str, document: &str, lines: &[ReceiptLine]) -> R<Decision> {
    let state = c.state;
    text("document", document, true)?;
    text("supplier", from, true)?;
    let loc = c.location(to)?;
    c.authorize(Op::Receive, &loc.unit)?;
    if lines.is_empty() {
        return invalid("a receipt needs at least one line");
    }
    if lines.len() > LINES_MAX {
        return invalid(format!("{} lines; at most {LINES_MAX} per receipt", lines.len()));
    }
    let mut events = vec![];
    let mut out = vec![];
    let mut new_serials = BTreeSet::new();
    let mut new_lots: BTreeMap<&LotNo, &ItemTypeId> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let t = c.item_type(&line.item_type)?;
        match (t.tracking, &line.serial, &line.lot) {
            (Tracking::Serial, None, _) | (Tracking::Both, None, _) => {
                return invalid(format!("line {n}: item type {} is tracked by serial; give a serial", line.item_type))
            }
            (Tracking::Both, Some(_), None) => {
                return invalid(format!("line {n}: item type {} is tracked by serial and lot; give both", line.item_type))
            }
            (Tracking::Lot, Some(_), _) => {
                return invalid(format!("line {n}: item type {} is tracked by lot; a serial is not expected", line.item_type))
            }
            (Tracking::Lot, None, None) => {
                return invalid(format!("line {n}: item type {} is tracked by lot; give a lot number", line.item_type))
            }
            _ => {}
        }
        if let Some(lot) = &line.lot {
            match state.lots.get(lot) {
                Some(l) if l.item_type != line.item_type => {
                    return refuse(
                        "lot.one_item_type",
                        format!("line {n}: lot {lot} is already on the books as item type {}, not {}", l.item_type, line.item_type),
                    );
                }
                Some(_) => {}
                None => match new_lots.get(lot) {
                    Some(t) if **t != line.item_type => {
                        return refuse("lot.one_item_type", format!("line {n}: lot {lot} is named with two item types"))
                    }
                    Some(_) => {}
                    None => {
                        new_lots.insert(lot, &line.item_type);
                        if let (Some(m), Some(e)) = (line.manufactured, line.expires) {
                            if e < m {
                                return invalid(format!("line {n}: lot {lot} expires ({e}) before it was made ({m})"));
                            }
                        }
                        events.push(Event::LotRegistered {
                            lot: lot.clone(),
                            item_type: line.item_type.clone(),
                            manufactured: line.manufactured,
                            expires: line.expires,
                        });
                    }
                },
            }
        }
        if let Some(s) = &line.serial {
            if let Some(si) = state.serials.get(s) {
                return refuse(
                    "custody.one_account",
                    format!("line {n}: serial {s} is already on the books: it {}", c.whereabouts(&si.account, si.since)),
                );
            }
            if !new_serials.insert(s) {
                return invalid(format!("line {n}: serial {s} is named twice"));
            }
            events.push(Event::SerialRegistered { serial: s.clone(), item_type: line.item_type.clone(), lot: line.lot.clone() });
            out.push(Line::Serial { serial: s.clone(), item_type: line.item_type.clone() });
        } else if let Some(lot) = &line.lot {
            if !line.quantity.is_positive() {
                return invalid(format!("line {n}: quantity must be more than zero"));
            }
            out.push(Line::Lot { lot: lot.clone(), item_type: line.item_type.clone(), quantity: line.quantity });
        }
    }
    c.movement_witness(&loc.unit, &out, "receipt")?;
    events.push(Event::Movement {
        kind: MovementKind::Receive,
        from: Account::Supplier(from.trim().to_string()),
        to: Account::Location(to.clone()),
        lines: out,
        document: Some(document.to_string()),
    });
    Ok(Decision { events, corrects: None, opens: vec![] })
}

/// No issue outside the hours a directive in force sets (in the site's local time).
fn issue_hours(c: &Checker, policy: &crate::policy::PolicyRules, unit: &UnitId) -> R<()> {
    let Some(hours) = policy.issue_hours else { return Ok(()) };
    let local = c.ctx.at.to_offset(c.ctx.zone.offset);
    if hours.contains(u16::from(local.hour()) * 60 + u16::from(local.minute())) {
        return Ok(());
    }
    let by = crate::directives::ordered_by(c.state, unit, c.ctx.at, "issue_hours", &c.ctx.zone);
    refuse("directive.issue_hours", format!("no issue at unit {unit} outside {hours}{by}; it is {}", c.ctx.zone.show(c.ctx.at)))
}

/// At most the rounds per issue the policy in force allows.
fn rounds_cap(c: &Checker, policy: &crate::policy::PolicyRules, unit: &UnitId, to: &Badge, ammunition: Quantity) -> R<()> {
    match policy.max_issue_quantity {
        Some(cap) if ammunition > cap => {
            let by = crate::directives::ordered_by(c.state, unit, c.ctx.at, "rounds_cap", &c.ctx.zone);
            let what = format!("issue of {ammunition} rounds to badge {to} exceeds the cap of {cap} per issue in force at unit {unit}{by}");
            refuse("policy.max_issue_quantity", what)
        }
        _ => Ok(()),
    }
}

/// Nothing goes out to a suspended person.
fn not_suspended(badge: &Badge, person: &Person) -> R<()> {
    match &person.suspended {
        Some(s) => refuse(
            "issue.suspended",
            format!("badge {badge} ({}) is suspended since {}: {}; nothing is issued to them", person.name, s.since.date(), s.reason),
        ),
        None => Ok(()),
    }
}

pub(super) fn decide_issue(c: &Checker, to: &Badge, from: Option<&LocationId>, items: &[ItemRef]) -> R<Decision> {
    let state = c.state;
    // Authority before custody: a refusal about where a serial is tells only someone who may issue.
    c.authorize_role(Op::Issue)?;
    let person = c.person(to)?;
    if !state.unit_within(&person.unit, &c.actor.unit) {
        return refuse(
            "permission.subtree",
            format!("badge {to} belongs to unit {}, outside the subtree of badge {}", person.unit, c.ctx.actor),
        );
    }
    not_suspended(to, person)?;
    if items.is_empty() {
        return invalid("no items given");
    }
    // Serials come from wherever they are racked; lots need the place they are drawn from.
    let mut by_source: BTreeMap<LocationId, Vec<ItemRef>> = BTreeMap::new();
    for item in items {
        let source = match (item, from) {
            (_, Some(f)) => f.clone(),
            (ItemRef::Serial(s), None) => match state.serials.get(s) {
                None => return not_found("serial", s),
                Some(si) => match &si.account {
                    Account::Location(l) => l.clone(),
                    other => {
                        let hint = if matches!(other, Account::Person(_)) && c.within_reach(other) { "; return it first" } else { "" };
                        return refuse("custody.one_account", format!("serial {s} {}{hint}", c.whereabouts(other, si.since)));
                    }
                },
            },
            (ItemRef::Lot { lot, .. }, None) => return invalid(format!("lot {lot}: say which location it is drawn from")),
        };
        by_source.entry(source).or_default().push(item.clone());
    }
    let mut events = vec![];
    for (source, items) in &by_source {
        let loc = c.location(source)?;
        c.authorize(Op::Issue, &loc.unit)?;
        let lines = c.take(&Account::Location(source.clone()), items)?;
        let policy = state.effective_policy(&loc.unit, c.ctx.at).0;
        issue_hours(c, &policy, &loc.unit)?;
        let mut ammunition = Quantity::ZERO;
        for line in &lines {
            c.issuable(line, &loc.unit)?;
            let t = c.item_type(line.item_type())?;
            if let Some(q) = &t.qualification {
                match person.qualifications.get(q) {
                    None => {
                        return refuse(
                            "qualification",
                            format!("badge {to} ({}) is not qualified on {q}, required for item type {}", person.name, line.item_type()),
                        )
                    }
                    Some(exp) if *exp < c.ctx.at.date() => {
                        return refuse(
                            "qualification",
                            format!(
                                "badge {to} ({}) qualification {q} expired on {exp}; item type {} requires it",
                                person.name,
                                line.item_type()
                            ),
                        )
                    }
                    Some(_) => {}
                }
            }
            if t.kind == ItemKind::Ammunition {
                ammunition = ammunition.checked_add(line.quantity()).ok_or_else(|| over_limit_text("the ammunition of this issue"))?;
            }
        }
        rounds_cap(c, &policy, &loc.unit, to, ammunition)?;
        super::access::check_key_holder(state, to, &lines)?;
        c.movement_witness(&loc.unit, &lines, "issue")?;
        events.push(Event::Movement {
            kind: MovementKind::Issue,
            from: Account::Location(source.clone()),
            to: Account::Person(to.clone()),
            lines,
            document: None,
        });
    }
    Ok(Decision { events, corrects: None, opens: vec![] })
}

/// A return: every item must be what the person holds; each group of items goes back to its own
/// place (one movement per place, all in one entry, so a mixed return is recorded whole or not at all).
fn decide_return(c: &Checker, from: &Badge, to: &LocationId, items: &[ItemRef], elsewhere: &[ReturnTo]) -> R<Decision> {
    let groups: Vec<(&LocationId, &[ItemRef])> = crate::command::return_groups(to, items, elsewhere).collect();
    let mut places = Vec::with_capacity(groups.len());
    for (place, _) in &groups {
        let loc = c.location(place)?;
        c.authorize(Op::Return, &loc.unit)?;
        places.push(loc.unit.clone());
    }
    let p = c.person(from)?;
    if !c.state.unit_within(&p.unit, &c.actor.unit) {
        return refuse(
            "permission.subtree",
            format!("badge {from} belongs to unit {}, outside the subtree of badge {}", p.unit, c.ctx.actor),
        );
    }
    let account = Account::Person(from.clone());
    let matches = |e: Rejection| match e {
        Rejection::Refused { rule: "custody.one_account", message } => Rejection::Refused {
            rule: "custody.return_matches",
            message: format!("{message}; a return must match what badge {from} holds"),
        },
        other => other,
    };
    // Every line at once first: a serial named in two groups, or more of a lot than is held, is refused.
    let all: Vec<ItemRef> = items.iter().chain(elsewhere.iter().flat_map(|e| e.items.iter())).cloned().collect();
    c.take(&account, &all).map_err(matches)?;
    let mut events = vec![];
    for ((place, group), unit) in groups.into_iter().zip(places).filter(|((_, g), _)| !g.is_empty()) {
        let lines = c.take(&account, group).map_err(matches)?;
        c.movement_witness(&unit, &lines, "return")?;
        events.push(Event::Movement {
            kind: MovementKind::Return,
            from: account.clone(),
            to: Account::Location(place.clone()),
            lines,
            document: None,
        });
    }
    Ok(Decision { events, corrects: None, opens: vec![] })
}

/// Returns, moves within a unit, expenditure, destruction, losses and recoveries, lot status.
pub(super) fn decide_custody(c: &Checker, command: &Command) -> R<Decision> {
    let (state, actor) = (c.state, c.actor);
    let one = |e: Event| Ok(Decision { events: vec![e], corrects: None, opens: vec![] });
    match command {
        Command::Return { from, to, items, elsewhere } => decide_return(c, from, to, items, elsewhere),
        Command::Move { from, to, items } => {
            let (fl, tl) = (c.location(from)?, c.location(to)?);
            c.authorize(Op::Move, &fl.unit)?;
            if fl.unit != tl.unit {
                return refuse(
                    "move.same_unit",
                    format!("{from} is in unit {} and {to} in unit {}; stock leaves a unit only by transfer", fl.unit, tl.unit),
                );
            }
            if from == to {
                return invalid(format!("{from} is both source and destination"));
            }
            let lines = c.take(&Account::Location(from.clone()), items)?;
            c.movement_witness(&fl.unit, &lines, "move")?;
            Ok(single_movement(MovementKind::Move, Account::Location(from.clone()), Account::Location(to.clone()), lines, None))
        }
        Command::Expend { from, items, document } => {
            text("document", document, true)?;
            let unit = c.unit_of(from)?;
            c.authorize(Op::Expend, &unit)?;
            let lines = c.take(from, items)?;
            c.movement_witness(&unit, &lines, "expenditure")?;
            Ok(single_movement(MovementKind::Expend, from.clone(), Account::Expended, lines, Some(document.clone())))
        }
        Command::Destroy { from, items, document } => {
            text("document", document, true)?;
            let fl = c.location(from)?;
            c.authorize(Op::Destroy, &fl.unit)?;
            let lines = c.take(&Account::Location(from.clone()), items)?;
            c.movement_witness(&fl.unit, &lines, "destruction")?;
            Ok(single_movement(MovementKind::Destroy, Account::Location(from.clone()), Account::Destroyed, lines, Some(document.clone())))
        }
        Command::ReportLost { from, items, document } => {
            if let Some(d) = document {
                text("document", d, false)?;
            }
            let unit = c.unit_of(from)?;
            c.authorize(Op::ReportLost, &unit)?;
            let lines = c.take(from, items)?;
            Ok(single_movement(MovementKind::Lose, from.clone(), Account::Lost, lines, document.clone()))
        }
        Command::Recover { to, items, document } => {
            let loc = c.location(to)?;
            c.authorize(Op::Recover, &loc.unit)?;
            let lines = c.take(&Account::Lost, items)?;
            c.movement_witness(&loc.unit, &lines, "recovery")?;
            Ok(single_movement(MovementKind::Recover, Account::Lost, Account::Location(to.clone()), lines, document.clone()))
        }
        Command::SetLotStatus { lot, status, reason, unit } => {
            text("reason", reason, true)?;
            let Some(l) = state.lots.get(lot) else {
                return not_found("lot", lot);
            };
            let unit = unit.clone().unwrap_or_else(|| actor.unit.clone());
            if !state.units.contains_key(&unit) {
                return not_found("unit", &unit);
            }
            c.authorize(Op::LotStatus, &unit)?;
            let root = state.site.as_ref().map(|s| &s.root_unit);
            let current =
                if Some(&unit) == root { l.status } else { l.decisions.get(&unit).map(|d| d.status).unwrap_or(LotStatus::Serviceable) };
            if current == *status {
                return refuse("lot.status", format!("lot {lot} is already {status} by decision of unit {unit}"));
            }
            one(Event::LotStatusChanged { lot: lot.clone(), status: *status, reason: reason.clone(), unit: Some(unit) })
        }
        other => invalid(format!("{} is not a custody command", other.name())),
    }
}
