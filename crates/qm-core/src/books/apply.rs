//! Folding one ledger entry into the books.

use super::rows::*;
use super::*;
use crate::event::*;
use crate::quantity::Quantity;

impl State {
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
        self.touch_meta(NEXT_SEQ);
        self.last_at = Some(self.last_at.map_or(env.at, |t| t.max(env.at)));
        let applied = match &env.event {
            Event::SiteInitialized { .. }
            | Event::SiteTimeZoneSet { .. }
            | Event::UnitCreated { .. }
            | Event::LocationCreated { .. }
            | Event::ItemTypeDefined { .. }
            | Event::PersonRegistered { .. }
            | Event::CredentialSet { .. }
            | Event::TokenIssued { .. }
            | Event::TokenRevoked { .. }
            | Event::AccessDenied { .. }
            | Event::QualificationGranted { .. }
            | Event::PersonChanged { .. }
            | Event::RulesAdopted { .. }
            | Event::PolicySet { .. } => self.apply_setup(env),
            Event::LocationSafetySet { .. }
            | Event::ItemTypeStorageSet { .. }
            | Event::ItemTypeAttributesSet { .. }
            | Event::ReadingsRecorded { .. }
            | Event::ExcursionStarted { .. }
            | Event::ExcursionEnded { .. } => self.apply_conditions(env),
            Event::SerialRegistered { .. } | Event::LotRegistered { .. } | Event::Movement { .. } | Event::LotStatusChanged { .. } => {
                self.apply_custody(env)
            }
            Event::TransferDispatched { .. }
            | Event::TransferReceived { .. }
            | Event::CountStarted { .. }
            | Event::CountRecorded { .. }
            | Event::DiscrepancyOpened { .. }
            | Event::CountClosed { .. }
            | Event::DiscrepancyResolved { .. } => self.apply_flows(env),
            Event::IncidentOpened { .. } | Event::IncidentUpdated { .. } => self.apply_incident(env, &env.event),
            Event::DirectiveIssued { .. } | Event::DirectiveUpdated { .. } => self.apply_directive(env),
            Event::FromParent { .. } => self.apply_from_parent(env),
            Event::RosterGranted { .. } | Event::RosterRevoked { .. } | Event::DoorEvents { .. } | Event::AccessAlert { .. } => {
                self.apply_access(env)
            }
        };
        applied.map_err(fail)?;
        self.index_down(env);
        // The incidents the event opened by itself, recorded in the same entry.
        for opened in &env.opens {
            if !matches!(opened, Event::IncidentOpened { rule: Some(_), .. }) {
                return Err(fail(format!("an entry may carry only incidents opened by a rule, not {}", opened.type_name())));
            }
            self.apply_incident(env, opened).map_err(fail)?;
        }
        if let Some(c) = &env.corrects {
            self.corrected.insert(c.seq, env.seq);
            self.touch(&CORRECTED, &c.seq);
        }
        self.key_counts(env);
        #[cfg(debug_assertions)]
        crate::invariants::after_apply(self, env).map_err(|v| fail(v.to_string()))?;
        self.dispatched_lines(env);
        self.next_seq += 1;
        Ok(())
    }

    /// The site, its units, places, catalog, people, credentials, tokens and policies.
    pub(super) fn apply_setup(&mut self, env: &Envelope) -> Result<(), String> {
        match &env.event {
            Event::SiteInitialized { site, verifier_key, root_unit, root_unit_name } => {
                if self.site.is_some() {
                    return Err("site initialized twice".into());
                }
                self.site = Some(SiteInfo { site: site.clone(), verifier_key: verifier_key.clone(), root_unit: root_unit.clone() });
                self.touch_meta(SITE);
                self.units.insert(root_unit.clone(), Unit { name: root_unit_name.clone(), parent: None });
                self.touch(&UNITS, root_unit);
            }
            Event::SiteTimeZoneSet { zone } => {
                self.time_zone = Some(zone.clone());
                self.touch_meta(TIME_ZONE);
            }
            Event::UnitCreated { unit, name, parent } => {
                self.units.insert(unit.clone(), Unit { name: name.clone(), parent: Some(parent.clone()) });
                // A new unit below a directive in force is under it at once.
                crate::directives::refresh_periods(self, std::slice::from_ref(unit));
                self.touch(&UNITS, unit);
            }
            Event::LocationCreated { location, name, unit, parent, kind, keeper, magazine } => {
                let l = Location::new(name.clone(), unit.clone(), parent.clone(), *kind, keeper.clone(), magazine.clone());
                self.locations.insert(location.clone(), l);
                self.touch(&LOCATIONS, location);
            }
            Event::ItemTypeDefined { item_type, name, kind, tracking, unit_of_measure, neq_kg_per_unit, un_code, qualification } => {
                self.item_types.insert(
                    item_type.clone(),
                    ItemType {
                        name: name.clone(),
                        tracking: *tracking,
                        unit_of_measure: unit_of_measure.clone(),
                        neq_kg_per_unit: *neq_kg_per_unit,
                        un_code: un_code.clone(),
                        qualification: qualification.clone(),
                        ..ItemType::new(*kind)
                    },
                );
                self.touch(&ITEM_TYPES, item_type);
            }
            Event::PersonRegistered { badge, name, unit, roles, pin_hash } => {
                let qualifications = self.people.get(badge).map(|p| p.qualifications.clone()).unwrap_or_default();
                let password_hash = self.people.get(badge).and_then(|p| p.password_hash.clone());
                let suspended = self.people.get(badge).and_then(|p| p.suspended.clone());
                self.people.insert(
                    badge.clone(),
                    Person {
                        name: name.clone(),
                        unit: unit.clone(),
                        roles: roles.clone(),
                        pin_hash: pin_hash.clone(),
                        password_hash,
                        qualifications,
                        suspended,
                    },
                );
                self.touch(&PEOPLE, badge);
            }
            Event::CredentialSet { badge, kind, hash } => {
                let p = self.people.get_mut(badge).ok_or_else(|| format!("unknown badge {badge}"))?;
                match kind {
                    // A new credential supersedes one an old entry carried (None on new ledgers).
                    CredentialKind::Pin => p.pin_hash = hash.clone(),
                    CredentialKind::Password => p.password_hash = hash.clone(),
                    // Never carried by an entry: a duress PIN is only ever in the credentials table.
                    CredentialKind::Duress => {}
                }
                self.touch(&PEOPLE, badge);
            }
            Event::TokenIssued { token, label, unit, operations, secret_hash, acts_as } => {
                self.tokens.insert(
                    token.clone(),
                    ApiToken {
                        label: label.clone(),
                        unit: unit.clone(),
                        operations: operations.clone(),
                        secret_hash: secret_hash.clone(),
                        issued_by: env.actor.clone(),
                        revoked: false,
                        acts_as: acts_as.clone(),
                    },
                );
                self.touch(&TOKENS, token);
            }
            Event::TokenRevoked { token, .. } => {
                let t = self.tokens.get_mut(token).ok_or_else(|| format!("unknown token {token}"))?;
                t.revoked = true;
                self.touch(&TOKENS, token);
            }
            Event::AccessDenied { .. } => {}
            Event::RulesAdopted { rules, text } => self.adopt(*rules, text, env.seq, None)?,
            Event::QualificationGranted { badge, qualification, expires } => {
                let p = self.people.get_mut(badge).ok_or_else(|| format!("unknown badge {badge}"))?;
                p.qualifications.insert(qualification.clone(), *expires);
                self.touch(&PEOPLE, badge);
            }
            Event::PolicySet { unit, rules } => {
                self.policies.insert(unit.clone(), rules.clone());
                self.touch(&POLICIES, unit);
            }
            Event::PersonChanged { badge, change } => self.change_person(env, badge, change)?,
            other => return Err(format!("{} reached the wrong fold (a broken build)", other.type_name())),
        }
        Ok(())
    }

    /// A person suspended, restored or given other roles.
    fn change_person(&mut self, env: &Envelope, badge: &Badge, change: &PersonChange) -> Result<(), String> {
        let p = self.people.get_mut(badge).ok_or_else(|| format!("unknown badge {badge}"))?;
        match change {
            PersonChange::Suspended { reason } => {
                p.suspended = Some(Suspension { since: env.at, reason: reason.clone(), by: env.actor.clone(), from: None })
            }
            PersonChange::Restored { .. } => p.suspended = None,
            PersonChange::Roles { roles } => p.roles = roles.clone(),
        }
        self.touch(&PEOPLE, badge);
        Ok(())
    }

    /// Storage safety and conditions: flags, ranges, readings, excursions.
    pub(super) fn apply_conditions(&mut self, env: &Envelope) -> Result<(), String> {
        match &env.event {
            Event::LocationSafetySet { location, flags, conditions } => {
                let l = self.locations.get_mut(location).ok_or_else(|| format!("unknown location {location}"))?;
                l.flags = flags.clone();
                l.conditions = *conditions;
                self.touch(&LOCATIONS, location);
            }
            Event::ItemTypeAttributesSet { item_type, attributes } => {
                let t = self.item_types.get_mut(item_type).ok_or_else(|| format!("unknown item type {item_type}"))?;
                t.attributes = attributes.clone();
                self.touch(&ITEM_TYPES, item_type);
            }
            Event::ItemTypeStorageSet { item_type, temperature_c, humidity_pct } => {
                let t = self.item_types.get_mut(item_type).ok_or_else(|| format!("unknown item type {item_type}"))?;
                t.temperature_c = *temperature_c;
                t.humidity_pct = *humidity_pct;
                self.touch(&ITEM_TYPES, item_type);
            }
            Event::ReadingsRecorded { location, last_at, .. } => {
                if let Some(l) = self.locations.get_mut(location) {
                    if l.last_reading_at.is_none_or(|t| t < *last_at) {
                        l.last_reading_at = Some(*last_at);
                        self.touch(&LOCATIONS, location);
                    }
                }
            }
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
                self.touch(&EXCURSIONS, excursion);
            }
            Event::ExcursionEnded { excursion, ended_at, peak } => {
                let x = self.excursions.get_mut(excursion).ok_or_else(|| format!("unknown excursion {excursion}"))?;
                x.ended_at = Some(*ended_at);
                x.peak = *peak;
                self.touch(&EXCURSIONS, excursion);
            }
            other => return Err(format!("{} reached the wrong fold (a broken build)", other.type_name())),
        }
        Ok(())
    }

    /// Serials, lots and the movements between accounts.
    fn apply_custody(&mut self, env: &Envelope) -> Result<(), String> {
        match &env.event {
            Event::SerialRegistered { serial, item_type, lot } => {
                if self.serials.contains_key(serial) {
                    return Err(format!("serial {serial} registered twice"));
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
                self.touch(&SERIALS, serial);
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
                self.touch(&LOTS, lot);
            }
            Event::Movement { from, to, lines, kind, .. } => {
                for line in lines {
                    self.index_stock(from, line.item_type(), line.quantity().negated())?;
                    self.index_stock(to, line.item_type(), line.quantity())?;
                    match line {
                        Line::Serial { serial, .. } => {
                            let s = self.serials.get_mut(serial).ok_or_else(|| format!("unknown serial {serial}"))?;
                            // A receipt or a found item starts outside the books, wherever registration left it.
                            let entering =
                                matches!(kind, MovementKind::Receive | MovementKind::Adjust | MovementKind::Correct) && !from.is_internal();
                            if s.account != *from && !(entering && s.account == Account::Found) {
                                return Err(format!("serial {serial} is at {}, not at {from}", s.account));
                            }
                            s.account = to.clone();
                            s.since = env.at;
                            s.since_seq = env.seq;
                            self.touch(&SERIALS, serial);
                        }
                        Line::Lot { lot, quantity, .. } => {
                            self.add_balance(from, lot, quantity.negated(), env.at)?;
                            self.add_balance(to, lot, *quantity, env.at)?;
                        }
                    }
                }
            }
            Event::LotStatusChanged { lot, status, reason, unit } => {
                let root = self.site.as_ref().map(|s| s.root_unit.clone());
                let l = self.lots.get_mut(lot).ok_or_else(|| format!("unknown lot {lot}"))?;
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
                self.touch(&LOTS, lot);
            }
            other => return Err(format!("{} reached the wrong fold (a broken build)", other.type_name())),
        }
        Ok(())
    }

    /// Transfers, counts and their discrepancies.
    fn apply_flows(&mut self, env: &Envelope) -> Result<(), String> {
        match &env.event {
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
                self.touch(&TRANSFERS, transfer);
            }
            Event::TransferReceived { transfer, location, discrepancies } => {
                let t = self.transfers.get_mut(transfer).ok_or_else(|| format!("unknown transfer {transfer}"))?;
                t.received_at_location = Some(location.clone());
                t.discrepancies = discrepancies.clone();
                self.touch(&TRANSFERS, transfer);
            }
            Event::CountStarted { count, root, kind, blind, counter } => {
                self.counts.insert(count.clone(), Count::started(root.clone(), *kind, *blind, counter.clone(), env.at));
                self.touch(&COUNTS, count);
            }
            Event::CountRecorded { count, location, serials, lots } => {
                let c = self.counts.get_mut(count).ok_or_else(|| format!("unknown count {count}"))?;
                c.serials.entry(location.clone()).or_default().extend(serials.iter().cloned());
                let per_lot = c.lots.entry(location.clone()).or_default();
                for (lot, q) in lots {
                    let sum = per_lot.entry(lot.clone()).or_default();
                    *sum = sum
                        .checked_add(*q)
                        .ok_or_else(|| format!("count {count} at {location}: lot {lot} sums past the limit of a quantity"))?;
                }
                self.touch(&COUNTS, count);
            }
            Event::DiscrepancyOpened { discrepancy, facts } => {
                if let DiscrepancySource::Transfer(t) = &facts.source {
                    if let Some(tr) = self.transfers.get_mut(t) {
                        tr.discrepancies.push(discrepancy.clone());
                        self.touch(&TRANSFERS, t);
                    }
                }
                self.discrepancies.insert(discrepancy.clone(), Discrepancy { facts: facts.clone(), resolution: None });
                self.touch(&DISCREPANCIES, discrepancy);
            }
            Event::CountClosed { count, discrepancies } => {
                let c = self.counts.get_mut(count).ok_or_else(|| format!("unknown count {count}"))?;
                c.closed = true;
                c.closed_at = Some(env.at);
                c.discrepancies = discrepancies.clone();
                let (root, counter) = (c.root.clone(), c.counter.clone());
                self.last_counter.insert(root.clone(), counter);
                self.touch(&LAST_COUNTERS, &root);
                self.touch(&COUNTS, count);
            }
            Event::DiscrepancyResolved { discrepancy, adjusted, note } => {
                let d = self.discrepancies.get_mut(discrepancy).ok_or_else(|| format!("unknown discrepancy {discrepancy}"))?;
                d.resolution = Some(Resolution {
                    adjusted: *adjusted,
                    note: note.clone(),
                    by: env.actor.clone(),
                    witness: env.witness.clone(),
                    seq: env.seq,
                });
                self.touch(&DISCREPANCIES, discrepancy);
            }
            other => return Err(format!("{} reached the wrong fold (a broken build)", other.type_name())),
        }
        Ok(())
    }

    fn add_balance(&mut self, account: &Account, lot: &LotNo, delta: Quantity, at: OffsetDateTime) -> Result<(), String> {
        // Suppliers are sources without a balance: tracking them would only record negative numbers.
        if matches!(account, Account::Supplier(_)) {
            return Ok(());
        }
        let key = (account.clone(), lot.clone());
        self.touched.insert(RowKey { kind: BALANCES.kind, key: balance_key(account, lot) });
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

    pub(super) fn index_stock(&mut self, account: &Account, item_type: &ItemTypeId, delta: Quantity) -> Result<(), String> {
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
}

impl State {
    /// Incidents: opened, then each step; the books keep where each stands and its entries.
    fn apply_incident(&mut self, env: &Envelope, event: &Event) -> Result<(), String> {
        match event {
            Event::IncidentOpened { incident, kind, severity, unit, location, objects, summary, discovered_at, rule } => {
                if self.incidents.contains_key(incident) {
                    return Err(format!("incident {incident} is already open"));
                }
                let i = Incident {
                    kind: *kind,
                    severity: *severity,
                    unit: unit.clone(),
                    location: location.clone(),
                    objects: objects.clone(),
                    summary: summary.clone(),
                    discovered_at: *discovered_at,
                    discovered_by: env.actor.clone(),
                    opened_at: env.at,
                    rule: rule.clone(),
                    state: IncidentState::Open,
                    responsible: unit.clone(),
                    acknowledged_at: None,
                    reports: vec![],
                    resolution: None,
                    entries: vec![env.seq],
                    missed: vec![],
                };
                self.incidents.insert(incident.clone(), i);
            }
            Event::IncidentUpdated { incident, action } => {
                let i = self.incidents.get_mut(incident).ok_or_else(|| format!("unknown incident {incident}"))?;
                i.entries.push(env.seq);
                match action {
                    IncidentAction::Acknowledge => {
                        i.state = IncidentState::Acknowledged;
                        i.acknowledged_at.get_or_insert(env.at);
                    }
                    IncidentAction::Investigate => i.state = IncidentState::Investigating,
                    IncidentAction::Note { .. } => {}
                    IncidentAction::Escalate { to, .. } => i.responsible = to.clone(),
                    IncidentAction::Report { obligation, authority, reference, at } => i.reports.push(IncidentReport {
                        obligation: obligation.clone(),
                        authority: authority.clone(),
                        reference: reference.clone(),
                        at: *at,
                        by: env.actor.clone(),
                    }),
                    IncidentAction::Close { resolution } => {
                        i.state = IncidentState::Closed;
                        i.resolution = Some(resolution.clone());
                    }
                    IncidentAction::Reopen { .. } => {
                        i.state = IncidentState::Open;
                        i.resolution = None;
                    }
                    IncidentAction::DeadlineMissed { obligation } => i.missed.push(obligation.clone()),
                }
            }
            other => return Err(format!("{} is not an incident event", other.type_name())),
        }
        let id = match event {
            Event::IncidentOpened { incident, .. } | Event::IncidentUpdated { incident, .. } => incident.clone(),
            _ => return Ok(()),
        };
        self.touch(&INCIDENTS, &id);
        Ok(())
    }
}

impl State {
    /// Directives: issued, then each step under them; the books keep the order, each unit's
    /// acknowledgment, relay, sign-offs and missed deadlines, and the shift briefings.
    pub(super) fn apply_directive(&mut self, env: &Envelope) -> Result<(), String> {
        let id = match &env.event {
            Event::DirectiveIssued { directive, unit, applies_to, title, text, posture, starts_at, ends_at, measures } => {
                if self.directives.contains_key(directive) {
                    return Err(format!("directive {directive} is already issued"));
                }
                let d = Directive {
                    unit: unit.clone(),
                    applies_to: applies_to.clone(),
                    title: title.clone(),
                    text: text.clone(),
                    posture: posture.clone(),
                    starts_at: *starts_at,
                    ends_at: *ends_at,
                    measures: measures.clone(),
                    issued_by: env.actor.clone(),
                    issued_at: env.at,
                    cancelled: None,
                    extended: vec![],
                    units: BTreeMap::new(),
                    briefed: BTreeMap::new(),
                    entries: vec![env.seq],
                    received: vec![],
                };
                self.directives.insert(directive.clone(), d);
                self.directive_index.entry(unit.clone()).or_default().insert(directive.clone());
                directive.clone()
            }
            Event::DirectiveUpdated { directive, action } => {
                let d = self.directives.get_mut(directive).ok_or_else(|| format!("unknown directive {directive}"))?;
                d.entries.push(env.seq);
                step_directive(d, env, action);
                match action {
                    DirectiveAction::Relay { unit, .. } => {
                        self.directive_index.entry(unit.clone()).or_default().insert(directive.clone());
                    }
                    DirectiveAction::Brief { .. } => crate::directives::briefing_recorded(self, directive, &env.actor),
                    _ => {}
                }
                directive.clone()
            }
            other => return Err(format!("{} is not a directive event", other.type_name())),
        };
        // What is in force where changes only with an order, a relay, an extension or a cancellation.
        if matches!(
            &env.event,
            Event::DirectiveIssued { .. }
                | Event::DirectiveUpdated {
                    action: DirectiveAction::Relay { .. } | DirectiveAction::Extend { .. } | DirectiveAction::Cancel { .. },
                    ..
                }
        ) {
            let units = self.directives.get(&id).map(|d| crate::directives::units_concerned(self, d)).unwrap_or_default();
            crate::directives::refresh_periods(self, &units);
        }
        self.touch(&DIRECTIVES, &id);
        Ok(())
    }
}

/// One step under a directive, as the books keep it.
fn step_directive(d: &mut Directive, env: &Envelope, action: &DirectiveAction) {
    let done = |note: &str| Done { at: env.at, by: env.actor.clone(), note: note.to_string() };
    match action {
        DirectiveAction::Acknowledge { unit } => {
            d.units.entry(unit.clone()).or_default().acknowledged.get_or_insert(done(""));
        }
        DirectiveAction::Relay { unit, text, measures } => {
            let r = Relay { at: env.at, by: env.actor.clone(), text: text.clone(), measures: measures.clone() };
            let u = d.units.entry(unit.clone()).or_default();
            // Relaying it is acknowledging it too.
            u.acknowledged.get_or_insert(done(""));
            u.relayed = Some(r);
        }
        DirectiveAction::Brief { .. } => {
            d.briefed.entry(env.actor.clone()).or_insert(env.at);
        }
        DirectiveAction::SignOff { unit, task, reviewed, note, .. } => {
            let s = SignOff { at: env.at, by: env.actor.clone(), reviewed: reviewed.clone(), note: note.clone() };
            d.units.entry(unit.clone()).or_default().signoffs.insert(task.clone(), s);
        }
        DirectiveAction::Extend { ends_at, reason } => {
            d.ends_at = *ends_at;
            d.extended.push(done(reason));
        }
        DirectiveAction::Cancel { reason } => d.cancelled = Some(done(reason)),
        DirectiveAction::Missed { unit, what } => d.units.entry(unit.clone()).or_default().missed.push(what.clone()),
    }
}

impl State {
    /// Rosters, door events (who is inside) and the alerts about them (docs/access.md).
    fn apply_access(&mut self, env: &Envelope) -> Result<(), String> {
        use crate::access::{DoorKind, RosterEntry};
        match &env.event {
            Event::RosterGranted { location, badge, role, hours, reason } => {
                let entry = RosterEntry {
                    role: *role,
                    hours: hours.clone(),
                    granted_by: env.actor.clone(),
                    granted_at: env.at,
                    reason: reason.clone(),
                };
                self.access.entry(location.clone()).or_default().roster.insert(badge.clone(), entry);
                self.touch(&ACCESS, location);
            }
            Event::RosterRevoked { location, badge, .. } => {
                let place = self.access.get_mut(location).ok_or_else(|| format!("{location} has no roster"))?;
                place.roster.remove(badge).ok_or_else(|| format!("badge {badge} is not on the roster of {location}"))?;
                self.touch(&ACCESS, location);
            }
            Event::DoorEvents { passages, .. } => {
                for p in passages {
                    let Some(location) = &p.location else { continue };
                    let place = self.presence.entry(location.clone()).or_default();
                    place.last_event_at = Some(place.last_event_at.map_or(p.at, |t| t.max(p.at)));
                    match (p.kind, &p.badge) {
                        (DoorKind::Entry | DoorKind::Duress, Some(b)) => {
                            place.inside.entry(b.clone()).or_insert(p.at);
                        }
                        (DoorKind::Exit, Some(b)) => {
                            place.inside.remove(b);
                            let gone = |k: &String| k.rsplit_once(':').is_some_and(|(_, x)| x == b.as_str());
                            place.alerted.retain(|k| !gone(k));
                        }
                        _ => {}
                    }
                    // One person inside starts a wait for a partner; any other number ends it.
                    if place.inside.len() == 1 {
                        place.alone_since = Some(place.alone_since.unwrap_or(p.at));
                    } else {
                        place.alone_since = None;
                        place.alerted.retain(|k| !k.starts_with("lone:"));
                    }
                    self.touch(&PRESENCE, location);
                }
            }
            Event::AccessAlert { location, alert, badge, since, .. } => {
                let place = self.presence.entry(location.clone()).or_default();
                place.alerted.push(alert.clone());
                // A key kept past its return sets a count of its place due, as a change of hands does.
                if let (Some(rest), None) = (alert.strip_prefix("key_overdue:"), &place.count_due) {
                    let serial = Serial::stored(rest.split('@').next().unwrap_or_default()).map_err(|e| e.to_string())?;
                    place.count_due = Some(crate::access::KeyCount { since: *since, serial, badge: badge.clone(), why: "overdue".into() });
                }
                self.touch(&PRESENCE, location);
            }
            other => return Err(format!("{} is not an access event", other.type_name())),
        }
        Ok(())
    }
}

impl State {
    /// The key register's part in access control (docs/access.md): a key that opens a place going
    /// to a person sets a full count of the place due; a full count rooted at or above the place,
    /// started since, settles it; a key moving on ends what its keeping past its return raised.
    fn key_counts(&mut self, env: &Envelope) {
        match &env.event {
            Event::Movement { from, to, lines, .. } => {
                for l in lines {
                    let crate::event::Line::Serial { serial, item_type } = l else { continue };
                    let Some(place) = crate::access::key_opens(self, item_type) else { continue };
                    let p = self.presence.entry(place.clone()).or_default();
                    if let Account::Person(_) = from {
                        p.alerted.retain(|k| k.strip_prefix("key_overdue:").is_none_or(|r| r.split('@').next() != Some(serial.as_str())));
                    }
                    if let (Account::Person(badge), None) = (to, &p.count_due) {
                        let why = "custody".to_string();
                        p.count_due = Some(crate::access::KeyCount { since: env.at, serial: serial.clone(), badge: badge.clone(), why });
                    }
                    self.touch(&PRESENCE, &place);
                }
            }
            Event::CountClosed { count, .. } => {
                let Some(c) = self.counts.get(count) else { return };
                if c.kind != CountKind::Full {
                    return;
                }
                let (root, started) = (c.root.clone(), c.started_at);
                let covered: Vec<LocationId> = self
                    .presence
                    .iter()
                    .filter(|(l, p)| {
                        p.count_due.as_ref().is_some_and(|d| d.since <= started) && self.location_ancestors(l).any(|a| *a == root)
                    })
                    .map(|(l, _)| l.clone())
                    .collect();
                for l in covered {
                    if let Some(p) = self.presence.get_mut(&l) {
                        p.count_due = None;
                        p.alerted.retain(|k| !k.starts_with("key_count:"));
                    }
                    self.touch(&PRESENCE, &l);
                }
            }
            _ => {}
        }
    }
}

impl State {
    /// Transfers remember what was dispatched, for the receiving count.
    fn dispatched_lines(&mut self, env: &Envelope) {
        if let Event::Movement { kind: MovementKind::Dispatch, to: Account::Transit(t), lines, .. } = &env.event {
            if let Some(tr) = self.transfers.get_mut(t) {
                tr.lines.extend(lines.iter().cloned());
            }
        }
    }
}
