//! Setup: the genesis of a site, units, places, the catalog, people and their credentials, tokens,
//! policies and the site's time zone.

use super::*;

/// The first events of a new site: its identity, its root unit, and its first administrator.
pub fn genesis(site: &str, verifier_key: &str, root_unit: &UnitId, root_unit_name: &str, admin: &Badge, admin_name: &str) -> Vec<Event> {
    vec![
        Event::SiteInitialized {
            site: site.to_string(),
            verifier_key: verifier_key.to_string(),
            root_unit: root_unit.clone(),
            root_unit_name: root_unit_name.to_string(),
        },
        Event::PersonRegistered {
            badge: admin.clone(),
            name: admin_name.to_string(),
            unit: root_unit.clone(),
            roles: vec![Role::Admin],
            pin_hash: None,
        },
        Event::CredentialSet { badge: admin.clone(), kind: CredentialKind::Pin, hash: None },
    ]
}

/// `1.1D`, `1.4S` …: division 1 to 6 and a compatibility group letter.
pub fn valid_un_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 4 && b[0] == b'1' && b[1] == b'.' && (b'1'..=b'6').contains(&b[2]) && b"ABCDEFGHJKLNS".contains(&b[3])
}

/// The setup commands: what the organization, its places, catalog, people and rules are.
pub(super) fn decide_setup(c: &Checker, command: &Command) -> R<Decision> {
    let (state, ctx, actor) = (c.state, c.ctx, c.actor);
    let one = |e: Event| Ok(Decision { events: vec![e], corrects: None, opens: vec![] });
    match command {
        Command::CreateUnit { unit, name, parent } => {
            text("unit name", name, true)?;
            if !state.units.contains_key(parent) {
                return not_found("unit", parent);
            }
            c.authorize(Op::Setup, parent)?;
            if state.units.contains_key(unit) {
                return refuse("unique", format!("unit {unit} already exists"));
            }
            one(Event::UnitCreated { unit: unit.clone(), name: name.clone(), parent: parent.clone() })
        }
        Command::CreateLocation { location, name, unit, parent, kind, keeper, magazine } => {
            text("location name", name, true)?;
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            if state.locations.contains_key(location) {
                return refuse("unique", format!("location {location} already exists"));
            }
            if let Some(p) = parent {
                let pl = c.location(p)?;
                if pl.unit != *unit {
                    return refuse(
                        "location.same_unit",
                        format!("location {location} is in unit {unit} but its parent {p} is in unit {}", pl.unit),
                    );
                }
            }
            if let Some(k) = keeper {
                c.person(k)?;
            }
            if let Some(m) = magazine {
                if *kind != LocationKind::Magazine {
                    return invalid(format!("only a magazine carries a licence; {location} is a {kind}"));
                }
                if !(m.neq_limit_kg.is_finite() && m.neq_limit_kg >= 0.0)
                    || m.exposed_sites.iter().any(|e| !(e.distance_m.is_finite() && e.distance_m >= 0.0))
                {
                    return invalid("licence figures must be finite, non-negative numbers");
                }
            }
            one(Event::LocationCreated {
                location: location.clone(),
                name: name.clone(),
                unit: unit.clone(),
                parent: parent.clone(),
                kind: *kind,
                keeper: keeper.clone(),
                magazine: magazine.clone(),
            })
        }
        Command::DefineItemType { item_type, name, kind, tracking, unit_of_measure, neq_kg_per_unit, un_code, qualification } => {
            text("item type name", name, true)?;
            text("unit of measure", unit_of_measure, true)?;
            let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| actor.unit.clone());
            // The catalog is shared by the whole site, so only an administrator at the root may change it.
            c.authorize(Op::Setup, &root)?;
            if state.item_types.contains_key(item_type) {
                return refuse("unique", format!("item type {item_type} already exists"));
            }
            if !(neq_kg_per_unit.is_finite() && *neq_kg_per_unit >= 0.0) {
                return invalid(format!("NEQ per unit {neq_kg_per_unit} kg must be a finite number ≥ 0"));
            }
            if let Some(code) = un_code {
                if !valid_un_code(code) {
                    return invalid(format!("UN code {code:?} is not a class 1 classification code such as 1.1D or 1.4S"));
                }
            }
            if matches!(kind, ItemKind::Weapon | ItemKind::Key) && *tracking == Tracking::Lot {
                return invalid(format!("a {kind} is tracked by serial, not by lot alone"));
            }
            if let Some(q) = qualification {
                text("qualification", q, true)?;
            }
            one(Event::ItemTypeDefined {
                item_type: item_type.clone(),
                name: name.clone(),
                kind: *kind,
                tracking: *tracking,
                unit_of_measure: unit_of_measure.clone(),
                neq_kg_per_unit: *neq_kg_per_unit,
                un_code: un_code.clone(),
                qualification: qualification.clone(),
            })
        }
        Command::RegisterPerson { badge, name, unit, roles, pin_hash } => {
            text("name", name, true)?;
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            if state.people.contains_key(badge) {
                return refuse("unique", format!("badge {badge} is already registered"));
            }
            if roles.is_empty() {
                return invalid("a person needs at least one role");
            }
            if pin_hash.is_empty() {
                return invalid("empty credential hash");
            }
            // The ledger records that a PIN was set; its hash goes to the credentials table (qm-app).
            Ok(Decision::of(vec![
                Event::PersonRegistered {
                    badge: badge.clone(),
                    name: name.clone(),
                    unit: unit.clone(),
                    roles: roles.clone(),
                    pin_hash: None,
                },
                Event::CredentialSet { badge: badge.clone(), kind: CredentialKind::Pin, hash: None },
            ]))
        }
        Command::GrantQualification { badge, qualification, expires } => {
            text("qualification", qualification, true)?;
            let p = c.person(badge)?;
            c.authorize(Op::Setup, &p.unit)?;
            one(Event::QualificationGranted { badge: badge.clone(), qualification: qualification.clone(), expires: *expires })
        }
        Command::SetLocationSafety { location, flags, conditions } => {
            let loc = c.location(location)?;
            c.authorize(Op::Setup, &loc.unit)?;
            if flags.len() > 32
                || flags.iter().any(|f| f.is_empty() || f.len() > 64 || !f.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
            {
                return invalid("flags are up to 32 words of letters, digits and '_'");
            }
            if let Some(cond) = conditions {
                for r in [cond.temperature_c, cond.humidity_pct].into_iter().flatten() {
                    if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
                        return invalid(format!("range {}–{} is not a range", r.min, r.max));
                    }
                }
                if cond.excursion_minutes.is_some_and(|m| !(0..=60 * 24 * 30).contains(&m)) {
                    return invalid("excursion time is 0 to 43200 minutes");
                }
            }
            one(Event::LocationSafetySet { location: location.clone(), flags: flags.clone(), conditions: *conditions })
        }
        Command::SetTimeZone { zone } => {
            let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| actor.unit.clone());
            c.authorize(Op::Setup, &root)?;
            if !crate::zone::valid_zone_name(zone) {
                return invalid(format!("{zone:?} is not a time zone name such as Europe/Paris or UTC"));
            }
            one(Event::SiteTimeZoneSet { zone: zone.clone() })
        }
        Command::SetItemTypeAttributes { item_type, attributes } => decide_attributes(c, item_type, attributes),
        Command::SetItemTypeStorage { item_type, temperature_c, humidity_pct } => decide_storage(c, item_type, temperature_c, humidity_pct),
        Command::SetCredential { badge, kind, hash } => {
            let p = own_duress(c, badge, *kind)?;
            if *badge != ctx.actor {
                c.authorize(Op::Setup, &p.unit)?;
            }
            if hash.is_empty() {
                return invalid("empty credential hash");
            }
            one(Event::CredentialSet { badge: badge.clone(), kind: *kind, hash: None })
        }
        Command::IssueToken { .. } => decide_token(c, command),
        Command::RevokeToken { token, reason } => {
            text("reason", reason, true)?;
            let Some(t) = state.tokens.get(token) else { return not_found("token", token) };
            c.authorize(Op::Setup, &t.unit)?;
            if t.revoked {
                return refuse("token.revoked", format!("token {token} is already revoked"));
            }
            one(Event::TokenRevoked { token: token.clone(), reason: reason.clone() })
        }
        Command::SetPolicy { unit, rules } => {
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            one(Event::PolicySet { unit: unit.clone(), rules: rules.clone() })
        }
        other => invalid(format!("{} is not a setup command", other.name())),
    }
}

/// The most text of a rules file one entry carries (an entry holds at most 65,535 bytes).
const RULES_TEXT_MAX: usize = 48_000;

/// The organization's incident rules or safety tables, adopted at the root from a file's text that
/// reads as such; the same text adopted again changes nothing and is refused.
pub(super) fn decide_rules(c: &Checker, rules: crate::event::RulesKind, text: &str) -> R<Decision> {
    let state = c.state;
    let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| c.actor.unit.clone());
    c.authorize(Op::Setup, &root)?;
    if text.len() > RULES_TEXT_MAX {
        return invalid(format!("the {} are {} bytes; at most {RULES_TEXT_MAX} fit in one entry", rules.words(), text.len()));
    }
    crate::down::Adopted::read(rules, text).map_err(Rejection::Invalid)?;
    if let Some(a) = state.adopted.get(&rules).filter(|a| a.text == text) {
        return refuse("rules.unchanged", format!("these {} are in force already (entry {})", rules.words(), a.entry));
    }
    Ok(Decision { events: vec![Event::RulesAdopted { rules, text: text.to_string() }], corrects: None, opens: vec![] })
}

/// An item type's attributes, from those the safety tables' footnotes may be about; set at the root.
fn decide_attributes(c: &Checker, item_type: &ItemTypeId, attributes: &[String]) -> R<Decision> {
    let t = c.item_type(item_type)?;
    let state = c.state;
    let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| c.actor.unit.clone());
    c.authorize(Op::Setup, &root)?;
    let known = state.safety.0.item_attributes();
    for a in attributes.iter().filter(|a| !known.contains(a)) {
        // A key names the place it opens (docs/access.md): the key register checks its holders.
        let Some(place) = a.strip_prefix("opens:") else {
            return invalid(format!(
                "{a:?} is not an item attribute of the safety tables (known: {}), nor opens:<location> on a key",
                known.join(", ")
            ));
        };
        if t.kind != ItemKind::Key {
            return invalid(format!("{a:?}: only a key opens a place; item type {item_type} is a {}", t.kind));
        }
        let place = LocationId::parse(place).map_err(|e| Rejection::Invalid(format!("{a:?}: {e}")))?;
        if !state.locations.get(&place).is_some_and(|l| crate::access::controlled(l.kind)) {
            return invalid(format!("{a:?}: {place} is not an armory, depot or magazine of these books"));
        }
    }
    let mut attributes = attributes.to_vec();
    attributes.sort();
    attributes.dedup();
    Ok(Decision::of(vec![Event::ItemTypeAttributesSet { item_type: item_type.clone(), attributes }]))
}

/// The storage range an item type needs; set at the root.
fn decide_storage(
    c: &Checker,
    item_type: &ItemTypeId,
    temperature_c: &Option<crate::conditions::Range>,
    humidity_pct: &Option<crate::conditions::Range>,
) -> R<Decision> {
    c.item_type(item_type)?;
    let state = c.state;
    let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| c.actor.unit.clone());
    c.authorize(Op::Setup, &root)?;
    for r in [temperature_c, humidity_pct].into_iter().flatten() {
        if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
            return invalid(format!("range {}–{} is not a range", r.min, r.max));
        }
    }
    Ok(Decision::of(vec![Event::ItemTypeStorageSet {
        item_type: item_type.clone(),
        temperature_c: *temperature_c,
        humidity_pct: *humidity_pct,
    }]))
}

/// The person whose credential is set. A duress PIN is set by its holder alone: anyone else who set it could open the door as them and
/// raise a false alarm, or know how to stay silent (docs/access.md).
fn own_duress<'a>(c: &Checker<'a>, badge: &Badge, kind: crate::event::CredentialKind) -> R<&'a Person> {
    let p = c.person(badge)?;
    if kind == crate::event::CredentialKind::Duress && *badge != c.ctx.actor {
        let who = &c.ctx.actor;
        return refuse(
            "credential.own_duress",
            format!("a duress PIN is set by its holder alone; badge {who} may not set one for badge {badge}"),
        );
    }
    Ok(p)
}

/// Suspending, restoring or changing the roles of a person: an administrator of their unit, never
/// about themselves (`person.self`), and only a change that changes something (`person.unchanged`).
pub(super) fn decide_person_change(c: &Checker, badge: &Badge, change: &PersonChange) -> R<Decision> {
    let p = c.person(badge)?;
    c.authorize(Op::Setup, &p.unit)?;
    if *badge == c.ctx.actor {
        return refuse(
            "person.self",
            format!("badge {badge} may not suspend, restore or change the roles of themselves; ask another administrator"),
        );
    }
    match change {
        PersonChange::Suspended { reason } | PersonChange::Restored { reason } => text("reason", reason, true)?,
        PersonChange::Roles { roles } if roles.is_empty() => return invalid("a person needs at least one role"),
        PersonChange::Roles { .. } => {}
    }
    if let (PersonChange::Restored { .. }, Some(from)) = (change, p.suspended.as_ref().and_then(|s| s.from.as_ref())) {
        return refuse(
            "person.suspended_above",
            format!("badge {badge} was suspended by site {from}, above this one: only it restores them"),
        );
    }
    let unchanged = match change {
        PersonChange::Suspended { .. } => {
            p.suspended.as_ref().map(|s| format!("badge {badge} is already suspended since {}", s.since.date()))
        }
        PersonChange::Restored { .. } => p.suspended.is_none().then(|| format!("badge {badge} is not suspended")),
        PersonChange::Roles { roles } => {
            let (mut now, mut asked) = (p.roles.clone(), roles.clone());
            now.sort();
            asked.sort();
            asked.dedup();
            (now == asked).then(|| format!("badge {badge} already holds exactly these roles"))
        }
    };
    if let Some(m) = unchanged {
        return refuse("person.unchanged", m);
    }
    let change = match change {
        PersonChange::Roles { roles } => {
            let mut roles = roles.clone();
            roles.sort();
            roles.dedup();
            PersonChange::Roles { roles }
        }
        other => other.clone(),
    };
    Ok(Decision::of(vec![Event::PersonChanged { badge: badge.clone(), change }]))
}

/// A token for another badge (a person, or a device registered as staff): an administrator of their
/// unit issues it, never for a suspended badge; its unit lies within theirs, and it does a device's
/// work only — moving and counting stock, recording conditions — never setup, resolutions,
/// corrections or directives, whatever roles the badge holds (`token.scope`).
fn token_for(c: &Checker, unit: &UnitId, operations: &[String], acts_as: Option<&Badge>) -> R<()> {
    let Some(b) = acts_as else { return Ok(()) };
    let p = c.person(b)?;
    c.authorize(Op::Setup, &p.unit)?;
    if let Some(s) = &p.suspended {
        return refuse("person.suspended", format!("badge {b} is suspended since {}: no token acts for them", s.since.date()));
    }
    if !c.state.unit_within(unit, &p.unit) {
        return refuse("token.scope", format!("a token for badge {b} (unit {}) may not reach unit {unit}, outside it", p.unit));
    }
    if let Some(op) = operations.iter().find(|o| !super::scope::DEVICE_WORK.contains(&o.as_str())) {
        return refuse(
            "token.scope",
            format!("a token acting for badge {b} does a device's work only ({}), not {op}", super::scope::DEVICE_WORK.join(", ")),
        );
    }
    Ok(())
}

/// An API token: its id, label, unit and operations, and whom it acts as.
fn decide_token(c: &Checker, command: &Command) -> R<Decision> {
    let Command::IssueToken { token, label, unit, operations, secret_hash, acts_as } = command else {
        return invalid("not a token");
    };
    let (state, one) = (c.state, |e: Event| Ok(Decision { events: vec![e], corrects: None, opens: vec![] }));
    text("token label", label, true)?;
    if !state.units.contains_key(unit) {
        return not_found("unit", unit);
    }
    c.authorize(Op::Setup, unit)?;
    token_for(c, unit, operations, acts_as.as_ref())?;
    if token.is_empty() || token.len() > 64 || !token.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
        return invalid("a token id has 1 to 64 letters, digits or '-'");
    }
    if state.tokens.contains_key(token) {
        return refuse("unique", format!("token {token} already exists"));
    }
    if operations.is_empty() {
        return invalid("a token needs at least one operation");
    }
    if secret_hash.is_empty() {
        return invalid("empty credential hash");
    }
    one(Event::TokenIssued {
        token: token.clone(),
        label: label.clone(),
        unit: unit.clone(),
        operations: operations.clone(),
        acts_as: acts_as.clone(),
        secret_hash: None,
    })
}
