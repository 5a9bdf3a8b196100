//! Entries of the parent site's ledger taken into these books (`Event::FromParent`, docs/sites.md,
//! "Down the tree"): a directive; a unit; the incident rules or safety tables; an item type of the catalog; a lot's status; a person of a unit
//! here and their qualifications; a standing policy. Each is kept in `received` with how it was
//! taken; what cannot be taken here (an item type tracked otherwise here, a qualification of a
//! person unknown here) is recorded all the same, with the reason, so the child can show it.

use super::rows::*;
use super::*;
use crate::down::{received_key, received_reach, takes};

impl State {
    /// Takes an entry of the parent's ledger. Times and actors of what it carries are the parent's;
    /// the entries listed are this site's.
    pub(super) fn apply_from_parent(&mut self, env: &Envelope) -> Result<(), String> {
        let Event::FromParent { origin, seq, entry, .. } = &env.event else {
            return Err(format!("{} is not an entry of the parent", env.event.type_name()));
        };
        let parent = crate::directives::decided_entry(entry)?;
        let note = match &parent.event {
            Event::DirectiveIssued { .. } | Event::DirectiveUpdated { .. } => {
                self.take_directive(env, origin, *seq, parent.clone())?;
                String::new()
            }
            e if takes(e) => {
                let note = self.take_decision(env.seq, &parent)?;
                if let Some(reach) = received_reach(self, &parent.event).filter(|_| note.is_empty()) {
                    self.down.insert(env.seq, reach);
                    self.touch(&DOWN, &env.seq);
                }
                note
            }
            other => return Err(format!("a {} entry of the parent does not flow down", other.type_name())),
        };
        let key = received_key(origin, *seq);
        self.received.insert(key.clone(), Taken { entry: env.seq, what: parent.event.type_name().to_string(), note });
        self.touch(&RECEIVED, &key);
        Ok(())
    }

    /// A directive issued at the parent becomes one of this site's root unit, for the units it names
    /// that are here (else the whole tree); an extension or cancellation steps the one received before.
    fn take_directive(&mut self, env: &Envelope, origin: &str, seq: u64, parent: Envelope) -> Result<(), String> {
        let (event, unit) = match parent.event.clone() {
            Event::DirectiveIssued { directive, unit, applies_to, title, text, posture, starts_at, ends_at, measures } => {
                let root = self.root_unit()?;
                let here: Vec<UnitId> = applies_to.into_iter().filter(|u| self.units.contains_key(u) && *u != root).collect();
                let local =
                    Event::DirectiveIssued { directive, unit: root, applies_to: here, title, text, posture, starts_at, ends_at, measures };
                (local, unit)
            }
            Event::DirectiveUpdated { directive, action } => {
                let unit = self.directives.get(&directive).and_then(|d| d.received.first()).map(|r| r.unit.clone());
                let unit = unit.ok_or_else(|| format!("directive {directive} was not received from a parent"))?;
                (Event::DirectiveUpdated { directive, action }, unit)
            }
            other => return Err(format!("a {} entry of the parent is not a directive", other.type_name())),
        };
        let id = match &event {
            Event::DirectiveIssued { directive, .. } | Event::DirectiveUpdated { directive, .. } => directive.clone(),
            _ => return Err("not a directive".into()),
        };
        self.apply_directive(&Envelope { seq: env.seq, event, ..parent })?;
        if let Some(d) = self.directives.get_mut(&id) {
            d.received.push(Received { origin: origin.to_string(), seq, unit, entry: env.seq });
        }
        Ok(())
    }

    /// The catalog, a lot's status, staff, a policy, decided at the parent: into these books as the
    /// same event would be here (a person of a unit not here joins the root unit; a lot's status and
    /// a policy are kept as decided above). Returns why it could not be taken, or "".
    fn take_decision(&mut self, seq: u64, parent: &Envelope) -> Result<String, String> {
        let local = |event: Event| Envelope { seq, event, ..parent.clone() };
        match parent.event.clone() {
            // A unit below one here joins the tree; one elsewhere in the organization is kept in the
            // directory, so a transfer may be addressed to it.
            Event::UnitCreated { unit, .. } if self.units.contains_key(&unit) => {}
            Event::UnitCreated { parent: up, .. } if self.units.contains_key(&up) => self.apply_setup(&local(parent.event.clone()))?,
            Event::UnitCreated { unit, name, parent: up } => {
                self.elsewhere.insert(unit.clone(), Unit { name, parent: Some(up) });
                self.touch(&ELSEWHERE, &unit);
            }
            Event::ItemTypeDefined { item_type, kind, tracking, .. } => {
                if let Some(t) = self.item_types.get(&item_type).filter(|t| t.kind != kind || t.tracking != tracking) {
                    return Ok(format!(
                        "item type {item_type} is {:?} tracked by {:?} here, {kind:?} tracked by {tracking:?} above",
                        t.kind, t.tracking
                    ));
                }
                self.apply_setup(&local(parent.event.clone()))?;
            }
            Event::ItemTypeAttributesSet { item_type, .. } | Event::ItemTypeStorageSet { item_type, .. } => {
                if !self.item_types.contains_key(&item_type) {
                    return Ok(format!("item type {item_type} is not in the catalog here"));
                }
                self.apply_conditions(&local(parent.event.clone()))?;
            }
            Event::LotStatusChanged { lot, status, reason, unit } => {
                let unit = match unit {
                    Some(u) => u,
                    None => self.root_unit()?,
                };
                let decisions = self.above_lots.entry(lot.clone()).or_default();
                if status == LotStatus::Serviceable {
                    decisions.remove(&unit);
                } else {
                    decisions.insert(unit, LotDecision { status, reason });
                }
                self.touch(&ABOVE_LOTS, &lot);
            }
            Event::RulesAdopted { rules, text } => self.adopt(rules, &text, seq, Some(parent.site.clone()))?,
            Event::PolicySet { unit, rules } => {
                self.above_policies.insert(unit.clone(), rules);
                self.touch(&ABOVE_POLICIES, &unit);
            }
            Event::PersonRegistered { badge, name, unit, roles, .. } => {
                let unit = if self.units.contains_key(&unit) { unit } else { self.root_unit()? };
                // No secret travels: the person sets a PIN and password here.
                self.apply_setup(&local(Event::PersonRegistered { badge, name, unit, roles, pin_hash: None }))?;
            }
            Event::QualificationGranted { badge, .. } | Event::PersonChanged { badge, .. } => {
                if !self.people.contains_key(&badge) {
                    return Ok(format!("badge {badge} is not registered here"));
                }
                self.apply_setup(&local(parent.event.clone()))?;
                // A suspension decided above is kept as such: the site's own administrators may not lift it.
                if let (Event::PersonChanged { .. }, Some(p)) = (&parent.event, self.people.get_mut(&badge)) {
                    if let Some(s) = p.suspended.as_mut() {
                        s.from = Some(parent.site.clone());
                    }
                }
            }
            other => return Err(format!("a {} entry of the parent does not flow down", other.type_name())),
        }
        Ok(String::new())
    }

    /// Incident rules or safety tables adopted (here, or above when `from` names the site): they are
    /// what the rules read from now on.
    pub(super) fn adopt(&mut self, kind: RulesKind, text: &str, entry: u64, from: Option<String>) -> Result<(), String> {
        self.put_rules(kind, text)?;
        let a = crate::down::Adopted { entry, text: text.to_string(), from };
        self.adopted.insert(kind, a);
        self.touch(&ADOPTED, &kind);
        Ok(())
    }

    /// Puts rules read from an adopted text in force.
    pub(super) fn put_rules(&mut self, kind: RulesKind, text: &str) -> Result<(), String> {
        match crate::down::Adopted::read(kind, text)? {
            crate::down::Rules::Incidents(r) => self.incident_rules = IncidentRulesRef(std::sync::Arc::new(r)),
            crate::down::Rules::Tables(t) => self.safety = Tables(std::sync::Arc::new(*t)),
        }
        Ok(())
    }

    /// Keeps an entry of this site's own that flows down to the sites below, with whom it reaches.
    pub(super) fn index_down(&mut self, env: &Envelope) {
        if let Some(reach) = crate::down::own_reach(self, &env.event) {
            self.down.insert(env.seq, reach);
            self.touch(&DOWN, &env.seq);
        }
    }

    /// The unit at the top of these books.
    pub fn root_unit(&self) -> Result<UnitId, String> {
        self.units.iter().find(|(_, u)| u.parent.is_none()).map(|(id, _)| id.clone()).ok_or_else(|| "these books have no root unit".into())
    }
}
