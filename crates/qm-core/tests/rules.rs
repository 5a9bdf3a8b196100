//! Unit tests for every rule in `qm_core::rules::decide`: each refusal (rule code and the facts in its message), the events each accepted command becomes, and the effective policy (tighten, never relax).

use qm_core::event::{CredentialKind, DiscrepancyFacts, DiscrepancyKind, DiscrepancySource};
use qm_core::policy::PolicyRules;
use qm_core::state::ApplyError;
use qm_core::*;
use time::macros::{date, datetime};
use time::OffsetDateTime;

#[path = "rules/people.rs"]
mod people;

/// When the fixture's books were written.
const T0: OffsetDateTime = datetime!(2025-03-10 08:00 UTC);
/// When the commands under test are decided.
const NOW: OffsetDateTime = datetime!(2025-03-12 09:30 UTC);

// ---- ids and small builders ---------------------------------------------------------------

fn b(s: &str) -> Badge {
    Badge::parse(s).unwrap()
}
fn u(s: &str) -> UnitId {
    UnitId::parse(s).unwrap()
}
fn l(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}
fn it(s: &str) -> ItemTypeId {
    ItemTypeId::parse(s).unwrap()
}
fn sn(s: &str) -> Serial {
    Serial::parse(s).unwrap()
}
fn lot(s: &str) -> LotNo {
    LotNo::parse(s).unwrap()
}
fn tr(s: &str) -> TransferId {
    TransferId::parse(s).unwrap()
}
fn cid(s: &str) -> CountId {
    CountId::parse(s).unwrap()
}
fn did(s: &str) -> DiscrepancyId {
    DiscrepancyId::parse(s).unwrap()
}
fn q(n: i64) -> Quantity {
    Quantity::units(n)
}
fn at_loc(s: &str) -> Account {
    Account::Location(l(s))
}
fn person(s: &str) -> Account {
    Account::Person(b(s))
}
fn ser(s: &str) -> ItemRef {
    ItemRef::Serial(sn(s))
}
fn lots(s: &str, n: i64) -> ItemRef {
    ItemRef::Lot { lot: lot(s), quantity: q(n) }
}
fn lot_line(s: &str, t: &str, n: i64) -> Line {
    Line::Lot { lot: lot(s), item_type: it(t), quantity: q(n) }
}
fn serial_line(s: &str, t: &str) -> Line {
    Line::Serial { serial: sn(s), item_type: it(t) }
}
fn movement(kind: MovementKind, from: Account, to: Account, lines: Vec<Line>) -> Event {
    Event::Movement { kind, from, to, lines, document: None }
}

// ---- the fixture: books built by applying events ---------------------------------------------

/// Applies one event as the next ledger entry.
fn push(
    state: &mut State,
    at: OffsetDateTime,
    actor: &str,
    witness: Option<&str>,
    corrects: Option<Correction>,
    event: Event,
) -> Result<Envelope, ApplyError> {
    push_opening(state, (at, actor, witness), corrects, event, vec![])
}

/// As `push`, with the incidents the entry opens by itself.
fn push_opening(
    state: &mut State,
    (at, actor, witness): (OffsetDateTime, &str, Option<&str>),
    corrects: Option<Correction>,
    event: Event,
    opens: Vec<Event>,
) -> Result<Envelope, ApplyError> {
    let env = Envelope {
        site: "test".into(),
        seq: state.next_seq,
        at,
        actor: b(actor),
        witness: witness.map(b),
        token: None,
        idempotency_key: format!("key-{}", state.next_seq),
        request: None,
        corrects,
        event,
        opens,
    };
    state.apply(&env)?;
    Ok(env)
}

/// A State made of `SiteInitialized` (site "test", root unit HQ) followed by `events`, seq from 0.
fn state_of(events: Vec<Event>) -> State {
    let mut state = State::new();
    let genesis = Event::SiteInitialized {
        site: "test".into(),
        verifier_key: "test-key".into(),
        root_unit: u("HQ"),
        root_unit_name: "Headquarters".into(),
    };
    for event in std::iter::once(genesis).chain(events) {
        push(&mut state, T0, "0001", None, None, event).unwrap_or_else(|e| panic!("{e}"));
    }
    state
}

fn ctx(actor: &str, witness: Option<&str>) -> Ctx {
    Ctx { token: None, actor: b(actor), witness: witness.map(b), at: NOW, zone: Default::default() }
}

fn run(state: &State, actor: &str, witness: Option<&str>, command: Command) -> Result<Decision, Rejection> {
    decide(state, &ctx(actor, witness), &command)
}

/// Applies a decision's events the way the application does (the correction on the last entry).
fn apply_decision(state: &mut State, actor: &str, witness: Option<&str>, decision: Decision) -> Result<Vec<Envelope>, ApplyError> {
    let n = decision.events.len();
    let mut out = vec![];
    for (i, event) in decision.events.into_iter().enumerate() {
        let corrects = if i + 1 == n { decision.corrects.clone() } else { None };
        let opens = decision.opens.iter().filter(|(at, _)| *at == i).map(|(_, e)| e.clone()).collect();
        out.push(push_opening(state, (NOW, actor, witness), corrects, event, opens)?);
    }
    Ok(out)
}

/// Decides and applies a command that must be accepted.
fn exec(state: &mut State, actor: &str, witness: Option<&str>, command: Command) -> Vec<Envelope> {
    let decision = run(state, actor, witness, command.clone()).unwrap_or_else(|e| panic!("{} by {actor} was refused: {e}", command.name()));
    apply_decision(state, actor, witness, decision).unwrap_or_else(|e| panic!("{e}"))
}

/// The rule code and message of a refusal; fails the test on anything else.
#[track_caller]
fn refused(result: Result<Decision, Rejection>) -> (&'static str, String) {
    match result {
        Err(Rejection::Refused { rule, message }) => (rule, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Asserts the refusal's rule and that each fact appears in its message.
#[track_caller]
fn assert_refused(result: Result<Decision, Rejection>, rule: &str, facts: &[&str]) {
    let (got, message) = refused(result);
    assert_eq!(got, rule, "wrong rule; message: {message}");
    for fact in facts {
        assert!(message.contains(fact), "message {message:?} does not mention {fact:?}");
    }
}

#[track_caller]
fn assert_not_found(result: Result<Decision, Rejection>, what: &str, id: &str) {
    match result {
        Err(Rejection::NotFound { what: w, id: i }) => {
            assert_eq!((w, i.as_str()), (what, id));
        }
        other => panic!("expected not found {what} {id}, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid(result: Result<Decision, Rejection>, fact: &str) {
    match result {
        Err(Rejection::Invalid(m)) => assert!(m.contains(fact), "message {m:?} does not mention {fact:?}"),
        other => panic!("expected invalid ({fact}), got {other:?}"),
    }
}

#[track_caller]
/// The events a command decides, without the incidents they open by themselves (those are
/// checked by the incident tests: `a_loss_and_a_count_discrepancy_open_incidents_by_themselves`).
fn events(result: Result<Decision, Rejection>) -> Vec<Event> {
    match result {
        Ok(d) => {
            assert_eq!(d.corrects, None);
            d.events.into_iter().filter(|e| !matches!(e, Event::IncidentOpened { .. })).collect()
        }
        Err(e) => panic!("expected events, got {e}"),
    }
}

#[test]
fn a_loss_and_a_count_discrepancy_open_incidents_by_themselves() {
    let mut s = stocked();
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    let d = run(&s, "0417", None, Command::ReportLost { from: person("1001"), items: vec![ser("R-1")], document: None }).unwrap();
    let opened: Vec<&Event> = d.opens.iter().map(|(_, e)| e).collect();
    assert_eq!(d.opens.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0], "the loss's own entry records the incident");
    assert_eq!(opened.len(), 1, "{:?}", d.events);
    let Event::IncidentOpened { incident, kind, severity, unit, objects, rule, .. } = opened[0] else { unreachable!() };
    assert_eq!((incident.as_str(), *kind, *severity, unit.as_str()), ("I-1", IncidentKind::Loss, Severity::Critical, "D-11"));
    assert_eq!((objects.serials.clone(), objects.badges.clone()), (vec![sn("R-1")], vec![b("1001")]));
    assert_eq!(rule.as_deref(), Some("open[1] on loss"));
}

fn unit_ev(unit: &str, parent: &str) -> Event {
    Event::UnitCreated { unit: u(unit), name: format!("Unit {unit}"), parent: u(parent) }
}

fn person_ev(badge: &str, name: &str, unit: &str, roles: &[Role]) -> Event {
    Event::PersonRegistered { badge: b(badge), name: name.into(), unit: u(unit), roles: roles.to_vec(), pin_hash: None }
}

fn location_ev(loc: &str, unit: &str, parent: Option<&str>, kind: LocationKind, keeper: Option<&str>) -> Event {
    Event::LocationCreated {
        location: l(loc),
        name: format!("Location {loc}"),
        unit: u(unit),
        parent: parent.map(l),
        kind,
        keeper: keeper.map(b),
        magazine: None,
    }
}

fn item_type_ev(id: &str, kind: ItemKind, tracking: Tracking, neq: f64, qualification: Option<&str>) -> Event {
    Event::ItemTypeDefined {
        item_type: it(id),
        name: format!("Item {id}"),
        kind,
        tracking,
        unit_of_measure: "each".into(),
        neq_kg_per_unit: neq,
        // Anything carrying explosive weight needs a classification to enter a magazine.
        un_code: (neq > 0.0).then(|| "1.1D".to_string()),
        qualification: qualification.map(String::from),
    }
}

/// HQ ─┬─ NORTH ─┬─ D-11   (ARM11 ⊃ RACK11, SAFE11; MAG11)
///     │         └─ D-12   (ARM12)
///     └─ SOUTH            (ARMS)
fn org() -> Vec<Event> {
    use Role::*;
    vec![
        unit_ev("NORTH", "HQ"),
        unit_ev("D-11", "NORTH"),
        unit_ev("D-12", "NORTH"),
        unit_ev("SOUTH", "HQ"),
        person_ev("0001", "A. Admin", "HQ", &[Admin]),
        person_ev("0002", "B. Local Admin", "D-11", &[Admin]),
        person_ev("0417", "J. Armstrong", "D-11", &[Armorer]),
        person_ev("0420", "K. Baker", "D-11", &[MagazineKeeper]),
        person_ev("0501", "L. Chen", "D-11", &[DutyOfficer]),
        person_ev("0502", "M. Diaz", "NORTH", &[Inspector]),
        person_ev("0503", "N. Ortiz", "NORTH", &[DutyOfficer]),
        person_ev("0611", "O. Fischer", "D-11", &[Logistics]),
        person_ev("0710", "P. Garcia", "D-12", &[Logistics, Armorer]),
        person_ev("0720", "Q. Novak", "D-12", &[DutyOfficer]),
        person_ev("1001", "Officer Q. Hughes", "D-11", &[Armorer]),
        person_ev("1002", "Officer R. Ito", "D-11", &[Armorer]),
        person_ev("1003", "Officer S. Jones", "D-11", &[Armorer]),
        person_ev("1201", "Officer T. Kim", "D-12", &[Armorer]),
        person_ev("2001", "U. Lopez", "SOUTH", &[Armorer]),
        Event::QualificationGranted { badge: b("1001"), qualification: "rifle".into(), expires: date!(2026 - 01 - 01) },
        Event::QualificationGranted { badge: b("1003"), qualification: "rifle".into(), expires: date!(2025 - 01 - 01) },
        location_ev("ARM11", "D-11", None, LocationKind::Armory, Some("0417")),
        location_ev("RACK11", "D-11", Some("ARM11"), LocationKind::Rack, None),
        location_ev("SAFE11", "D-11", Some("ARM11"), LocationKind::Safe, None),
        location_ev("MAG11", "D-11", None, LocationKind::Magazine, Some("0420")),
        location_ev("ARM12", "D-12", None, LocationKind::Armory, Some("0710")),
        location_ev("ARMS", "SOUTH", None, LocationKind::Armory, None),
        item_type_ev("RIFLE", ItemKind::Weapon, Tracking::Serial, 0.0, Some("rifle")),
        item_type_ev("AMMO", ItemKind::Ammunition, Tracking::Lot, 0.0, None),
        item_type_ev("EXPL", ItemKind::Explosive, Tracking::Lot, 1.0, None),
        item_type_ev("KEY", ItemKind::Key, Tracking::Serial, 0.0, None),
    ]
}

fn receipt(to: &str, lines: Vec<Line>) -> Event {
    Event::Movement {
        kind: MovementKind::Receive,
        from: Account::Supplier("ACME".into()),
        to: at_loc(to),
        lines,
        document: Some("DN-1".into()),
    }
}

fn lot_ev(no: &str, t: &str, expires: Option<time::Date>) -> Event {
    Event::LotRegistered { lot: lot(no), item_type: it(t), manufactured: Some(date!(2024 - 01 - 01)), expires }
}

fn serial_ev(s: &str, t: &str) -> Event {
    Event::SerialRegistered { serial: sn(s), item_type: it(t), lot: None }
}

/// The organization with stock on the shelves:
/// ARM11: A-1 ×1000, A-OLD ×100 (expired); RACK11: R-1, R-2; SAFE11: K-1; MAG11: E-1 ×50;
/// ARM12: A-2 ×300, R-3.
fn stock() -> Vec<Event> {
    let mut ev = org();
    ev.extend([
        lot_ev("A-1", "AMMO", Some(date!(2030 - 01 - 01))),
        lot_ev("A-OLD", "AMMO", Some(date!(2024 - 12 - 31))),
        lot_ev("A-2", "AMMO", Some(date!(2030 - 01 - 01))),
        lot_ev("E-1", "EXPL", None),
        receipt("ARM11", vec![lot_line("A-1", "AMMO", 1000), lot_line("A-OLD", "AMMO", 100)]),
        receipt("ARM12", vec![lot_line("A-2", "AMMO", 300)]),
        receipt("MAG11", vec![lot_line("E-1", "EXPL", 50)]),
        serial_ev("R-1", "RIFLE"),
        serial_ev("R-2", "RIFLE"),
        serial_ev("R-3", "RIFLE"),
        serial_ev("K-1", "KEY"),
        receipt("RACK11", vec![serial_line("R-1", "RIFLE"), serial_line("R-2", "RIFLE")]),
        receipt("ARM12", vec![serial_line("R-3", "RIFLE")]),
        receipt("SAFE11", vec![serial_line("K-1", "KEY")]),
    ]);
    ev
}

fn stocked() -> State {
    state_of(stock())
}

fn stocked_with(extra: Vec<Event>) -> State {
    let mut ev = stock();
    ev.extend(extra);
    state_of(ev)
}

fn policy_ev(unit: &str, rules: PolicyRules) -> Event {
    Event::PolicySet { unit: u(unit), rules }
}

fn issue(to: &str, from: Option<&str>, items: Vec<ItemRef>) -> Command {
    Command::Issue { to: b(to), from: from.map(l), items }
}

fn receive_line(t: &str, serial: Option<&str>, lot_no: Option<&str>, n: i64) -> ReceiptLine {
    ReceiptLine { item_type: it(t), serial: serial.map(sn), lot: lot_no.map(lot), quantity: q(n), manufactured: None, expires: None }
}

fn receive(to: &str, lines: Vec<ReceiptLine>) -> Command {
    Command::Receive { to: l(to), from: "ACME".into(), document: "DN-77".into(), lines }
}

fn dispatch(from: &str, to_unit: &str, items: Vec<ItemRef>) -> Command {
    Command::Dispatch { from: l(from), to_unit: u(to_unit), items, document: Some("TR-9".into()) }
}

fn receive_transfer(t: &str, to: &str, received: Vec<ItemRef>) -> Command {
    Command::ReceiveTransfer { transfer: tr(t), to: l(to), received }
}

fn resolve(d: &str, approve: bool, item_type: Option<&str>) -> Command {
    Command::ResolveDiscrepancy { discrepancy: did(d), approve, note: "checked the shelves".into(), item_type: item_type.map(it) }
}

fn opened(evs: &[Event]) -> Vec<(DiscrepancyId, DiscrepancyFacts)> {
    evs.iter()
        .filter_map(|e| match e {
            Event::DiscrepancyOpened { discrepancy, facts } => Some((discrepancy.clone(), facts.clone())),
            _ => None,
        })
        .collect()
}

// ---- who is acting -------------------------------------------------------------------------

#[test]
fn an_unknown_actor_is_not_found() {
    let s = stocked();
    assert_not_found(run(&s, "9999", None, issue("1001", None, vec![ser("R-1")])), "badge", "9999");
}

// ---- setup -----------------------------------------------------------------------------------

#[test]
fn create_unit() {
    let s = stocked();
    let cmd = |unit: &str, name: &str, parent: &str| Command::CreateUnit { unit: u(unit), name: name.into(), parent: u(parent) };
    assert_eq!(
        events(run(&s, "0001", None, cmd("D-13", "Lakeside", "NORTH"))),
        vec![Event::UnitCreated { unit: u("D-13"), name: "Lakeside".into(), parent: u("NORTH") }]
    );
    // A local administrator may create units below their own.
    assert!(run(&s, "0002", None, cmd("D-11-A", "Annex", "D-11")).is_ok());
    assert_refused(run(&s, "0001", None, cmd("D-11", "Again", "NORTH")), "unique", &["unit D-11 already exists"]);
    assert_not_found(run(&s, "0001", None, cmd("X", "X", "NOWHERE")), "unit", "NOWHERE");
    assert_refused(run(&s, "0417", None, cmd("D-13", "Lakeside", "NORTH")), "permission.role", &["badge 0417", "armorer", "may not setup"]);
    assert_refused(
        run(&s, "0002", None, cmd("D-13", "Lakeside", "NORTH")),
        "permission.subtree",
        &["badge 0002", "unit D-11", "unit NORTH", "outside its subtree"],
    );
    assert_invalid(run(&s, "0001", None, cmd("D-13", "  ", "NORTH")), "unit name is required");
    assert_invalid(run(&s, "0001", None, cmd("D-13", &"x".repeat(501), "NORTH")), "longer than 500");
}

#[test]
fn create_location() {
    let s = stocked();
    let cmd = |loc: &str, unit: &str, parent: Option<&str>, kind, keeper: Option<&str>| Command::CreateLocation {
        location: l(loc),
        name: "Somewhere".into(),
        unit: u(unit),
        parent: parent.map(l),
        kind,
        keeper: keeper.map(b),
        magazine: None,
    };
    assert_eq!(
        events(run(&s, "0002", None, cmd("BIN11", "D-11", Some("ARM11"), LocationKind::Bin, Some("0417")))),
        vec![Event::LocationCreated {
            location: l("BIN11"),
            name: "Somewhere".into(),
            unit: u("D-11"),
            parent: Some(l("ARM11")),
            kind: LocationKind::Bin,
            keeper: Some(b("0417")),
            magazine: None,
        }]
    );
    assert_refused(
        run(&s, "0001", None, cmd("ARM11", "D-11", None, LocationKind::Armory, None)),
        "unique",
        &["location ARM11 already exists"],
    );
    assert_refused(
        run(&s, "0001", None, cmd("BIN", "D-11", Some("ARM12"), LocationKind::Bin, None)),
        "location.same_unit",
        &["BIN", "D-11", "ARM12", "D-12"],
    );
    assert_not_found(run(&s, "0001", None, cmd("BIN", "D-11", Some("NOPE"), LocationKind::Bin, None)), "location", "NOPE");
    assert_not_found(run(&s, "0001", None, cmd("BIN", "D-11", None, LocationKind::Bin, Some("7777"))), "badge", "7777");
    assert_not_found(run(&s, "0001", None, cmd("BIN", "D-99", None, LocationKind::Bin, None)), "unit", "D-99");
    assert_refused(run(&s, "0002", None, cmd("BIN", "D-12", None, LocationKind::Bin, None)), "permission.subtree", &["badge 0002", "D-12"]);
    assert_refused(
        run(&s, "0501", None, cmd("BIN", "D-11", None, LocationKind::Bin, None)),
        "permission.role",
        &["badge 0501", "duty_officer"],
    );
    let licence = |neq: f64| MagazineLicence {
        neq_limit_kg: neq,
        hazard_divisions: vec!["1.1".into()],
        compatibility_groups: vec!["D".into()],
        exposed_sites: vec![],
    };
    let with_licence = |kind, neq| Command::CreateLocation {
        location: l("MAG-NEW"),
        name: "New magazine".into(),
        unit: u("D-11"),
        parent: None,
        kind,
        keeper: None,
        magazine: Some(licence(neq)),
    };
    assert!(run(&s, "0001", None, with_licence(LocationKind::Magazine, 500.0)).is_ok());
    assert_invalid(run(&s, "0001", None, with_licence(LocationKind::Armory, 500.0)), "only a magazine carries a licence");
    assert_invalid(run(&s, "0001", None, with_licence(LocationKind::Magazine, -1.0)), "finite, non-negative");
    assert_invalid(run(&s, "0001", None, with_licence(LocationKind::Magazine, f64::NAN)), "finite, non-negative");
}

#[test]
fn define_item_type() {
    let s = stocked();
    let cmd = |id: &str, kind, tracking, neq: f64, un: Option<&str>| Command::DefineItemType {
        item_type: it(id),
        name: "Thing".into(),
        kind,
        tracking,
        unit_of_measure: "kg".into(),
        neq_kg_per_unit: neq,
        un_code: un.map(String::from),
        qualification: None,
    };
    assert_eq!(
        events(run(&s, "0001", None, cmd("TNT", ItemKind::Explosive, Tracking::Lot, 1.0, Some("1.1D")))),
        vec![Event::ItemTypeDefined {
            item_type: it("TNT"),
            name: "Thing".into(),
            kind: ItemKind::Explosive,
            tracking: Tracking::Lot,
            unit_of_measure: "kg".into(),
            neq_kg_per_unit: 1.0,
            un_code: Some("1.1D".into()),
            qualification: None,
        }]
    );
    // The catalog belongs to the whole site: a local administrator may not change it.
    assert_refused(
        run(&s, "0002", None, cmd("TNT", ItemKind::Explosive, Tracking::Lot, 1.0, None)),
        "permission.subtree",
        &["badge 0002", "unit HQ"],
    );
    assert_refused(run(&s, "0417", None, cmd("TNT", ItemKind::Explosive, Tracking::Lot, 1.0, None)), "permission.role", &["badge 0417"]);
    assert_refused(
        run(&s, "0001", None, cmd("AMMO", ItemKind::Ammunition, Tracking::Lot, 0.0, None)),
        "unique",
        &["item type AMMO already exists"],
    );
    for neq in [-0.5, f64::NAN, f64::INFINITY] {
        assert_invalid(run(&s, "0001", None, cmd("TNT", ItemKind::Explosive, Tracking::Lot, neq, None)), "NEQ per unit");
    }
    for bad in ["2.1A", "1.7D", "1.1I", "1.1", "1.1DD"] {
        assert_invalid(run(&s, "0001", None, cmd("TNT", ItemKind::Explosive, Tracking::Lot, 1.0, Some(bad))), "UN code");
    }
    assert_invalid(run(&s, "0001", None, cmd("GUN", ItemKind::Weapon, Tracking::Lot, 0.0, None)), "tracked by serial");
    assert_invalid(run(&s, "0001", None, cmd("KEY2", ItemKind::Key, Tracking::Lot, 0.0, None)), "tracked by serial");
    assert!(run(&s, "0001", None, cmd("GUN", ItemKind::Weapon, Tracking::Both, 0.0, None)).is_ok());
}

#[test]
fn register_person_and_grant_qualification() {
    let s = stocked();
    let reg = |badge: &str, unit: &str, roles: Vec<Role>| Command::RegisterPerson {
        badge: b(badge),
        name: "New Person".into(),
        unit: u(unit),
        roles,
        pin_hash: "$argon2id$x".into(),
    };
    assert_eq!(
        events(run(&s, "0002", None, reg("3001", "D-11", vec![Role::Armorer]))),
        vec![
            Event::PersonRegistered {
                badge: b("3001"),
                name: "New Person".into(),
                unit: u("D-11"),
                roles: vec![Role::Armorer],
                pin_hash: None,
            },
            Event::CredentialSet { badge: b("3001"), kind: CredentialKind::Pin, hash: None }
        ]
    );
    // No event carries the hash: it goes to the credentials table, never into the ledger.
    let registered = events(run(&s, "0002", None, reg("3001", "D-11", vec![Role::Armorer])));
    assert!(!format!("{registered:?}").contains("argon2id"), "{registered:?}");
    assert_refused(run(&s, "0001", None, reg("0417", "D-11", vec![Role::Armorer])), "unique", &["badge 0417 is already registered"]);
    assert_invalid(run(&s, "0001", None, reg("3001", "D-11", vec![])), "at least one role");
    assert_not_found(run(&s, "0001", None, reg("3001", "D-99", vec![Role::Armorer])), "unit", "D-99");
    assert_refused(run(&s, "0002", None, reg("3001", "D-12", vec![Role::Armorer])), "permission.subtree", &["D-12"]);

    let grant =
        |badge: &str| Command::GrantQualification { badge: b(badge), qualification: "pistol".into(), expires: date!(2027 - 06 - 30) };
    assert_eq!(
        events(run(&s, "0002", None, grant("1002"))),
        vec![Event::QualificationGranted { badge: b("1002"), qualification: "pistol".into(), expires: date!(2027 - 06 - 30) }]
    );
    assert_not_found(run(&s, "0001", None, grant("7777")), "badge", "7777");
    assert_refused(run(&s, "0002", None, grant("1201")), "permission.subtree", &["D-12"]);
    assert_refused(run(&s, "0501", None, grant("1002")), "permission.role", &["badge 0501"]);
}

#[test]
fn set_policy() {
    let s = stocked();
    let rules = PolicyRules { counter_not_keeper: true, ..PolicyRules::default() };
    let cmd = |unit: &str| Command::SetPolicy { unit: u(unit), rules: rules.clone() };
    assert_eq!(events(run(&s, "0002", None, cmd("D-11"))), vec![Event::PolicySet { unit: u("D-11"), rules: rules.clone() }]);
    assert_not_found(run(&s, "0001", None, cmd("D-99")), "unit", "D-99");
    assert_refused(run(&s, "0002", None, cmd("NORTH")), "permission.subtree", &["NORTH"]);
    assert_refused(run(&s, "0503", None, cmd("D-11")), "permission.role", &["badge 0503"]);
}

// ---- receipts --------------------------------------------------------------------------------

#[test]
fn receiving_a_new_lot_registers_it_and_moves_it_in_from_the_supplier() {
    let s = stocked();
    let mut line = receive_line("AMMO", None, Some("A-9"), 500);
    line.manufactured = Some(date!(2025 - 01 - 01));
    line.expires = Some(date!(2035 - 01 - 01));
    let cmd = Command::Receive { to: l("ARM11"), from: "  ACME Arms  ".into(), document: "DN-77".into(), lines: vec![line] };
    assert_eq!(
        events(run(&s, "0417", None, cmd)),
        vec![
            Event::LotRegistered {
                lot: lot("A-9"),
                item_type: it("AMMO"),
                manufactured: Some(date!(2025 - 01 - 01)),
                expires: Some(date!(2035 - 01 - 01)),
            },
            Event::Movement {
                kind: MovementKind::Receive,
                from: Account::Supplier("ACME Arms".into()),
                to: at_loc("ARM11"),
                lines: vec![lot_line("A-9", "AMMO", 500)],
                document: Some("DN-77".into()),
            },
        ]
    );
}

#[test]
fn receiving_more_of_a_known_lot_only_moves_it() {
    let mut s = stocked();
    let evs = events(run(&s, "0611", None, receive("ARM11", vec![receive_line("AMMO", None, Some("A-1"), 250)])));
    assert_eq!(
        evs,
        vec![Event::Movement {
            kind: MovementKind::Receive,
            from: Account::Supplier("ACME".into()),
            to: at_loc("ARM11"),
            lines: vec![lot_line("A-1", "AMMO", 250)],
            document: Some("DN-77".into()),
        }]
    );
    apply_decision(&mut s, "0611", None, Decision { events: evs, corrects: None, opens: vec![] }).unwrap();
    assert_eq!(s.balance(&at_loc("ARM11"), &lot("A-1")), q(1250));
}

#[test]
fn receiving_a_new_serial_registers_it() {
    let mut s = stocked();
    let evs = events(run(
        &s,
        "0417",
        None,
        receive("RACK11", vec![receive_line("RIFLE", Some("R-10"), None, 1), receive_line("RIFLE", Some("R-11"), None, 1)]),
    ));
    assert_eq!(
        evs,
        vec![
            serial_ev("R-10", "RIFLE"),
            serial_ev("R-11", "RIFLE"),
            Event::Movement {
                kind: MovementKind::Receive,
                from: Account::Supplier("ACME".into()),
                to: at_loc("RACK11"),
                lines: vec![serial_line("R-10", "RIFLE"), serial_line("R-11", "RIFLE")],
                document: Some("DN-77".into()),
            },
        ]
    );
    apply_decision(&mut s, "0417", None, Decision { events: evs, corrects: None, opens: vec![] }).unwrap();
    assert_eq!(s.serials[&sn("R-10")].account, at_loc("RACK11"));
}

#[test]
fn receipt_refusals() {
    let s = stocked();
    let one = |line: ReceiptLine| receive("ARM11", vec![line]);
    assert_refused(
        run(&s, "0417", None, one(receive_line("RIFLE", Some("R-1"), None, 1))),
        "custody.one_account",
        &["line 1", "serial R-1 is already on the books", "location RACK11", "since 2025-03-10 08:00"],
    );
    assert_refused(
        run(&s, "0417", None, one(receive_line("EXPL", None, Some("A-1"), 5))),
        "lot.one_item_type",
        &["lot A-1", "item type AMMO, not EXPL"],
    );
    assert_refused(
        run(
            &s,
            "0417",
            None,
            receive("ARM11", vec![receive_line("AMMO", None, Some("NEW-1"), 5), receive_line("EXPL", None, Some("NEW-1"), 5)]),
        ),
        "lot.one_item_type",
        &["line 2", "lot NEW-1 is named with two item types"],
    );
    assert_invalid(
        run(
            &s,
            "0417",
            None,
            receive("ARM11", vec![receive_line("RIFLE", Some("R-20"), None, 1), receive_line("RIFLE", Some("R-20"), None, 1)]),
        ),
        "serial R-20 is named twice",
    );
    assert_invalid(run(&s, "0417", None, one(receive_line("AMMO", None, Some("A-1"), 0))), "quantity must be more than zero");
    assert_invalid(run(&s, "0417", None, one(receive_line("RIFLE", None, None, 1))), "tracked by serial; give a serial");
    assert_invalid(run(&s, "0417", None, one(receive_line("AMMO", Some("X-1"), Some("A-1"), 1))), "a serial is not expected");
    assert_invalid(run(&s, "0417", None, one(receive_line("AMMO", None, None, 1))), "give a lot number");
    let mut backwards = receive_line("AMMO", None, Some("A-9"), 1);
    backwards.manufactured = Some(date!(2025 - 01 - 01));
    backwards.expires = Some(date!(2024 - 01 - 01));
    assert_invalid(run(&s, "0417", None, one(backwards)), "expires (2024-01-01) before it was made");
    assert_not_found(run(&s, "0417", None, one(receive_line("NOPE", None, Some("A-1"), 1))), "item type", "NOPE");
    assert_not_found(run(&s, "0417", None, receive("NOWHERE", vec![receive_line("AMMO", None, Some("A-1"), 1)])), "location", "NOWHERE");
    assert_invalid(run(&s, "0417", None, receive("ARM11", vec![])), "at least one line");
    let mut no_doc = one(receive_line("AMMO", None, Some("A-1"), 1));
    if let Command::Receive { document, .. } = &mut no_doc {
        *document = " ".into();
    }
    assert_invalid(run(&s, "0417", None, no_doc), "document is required");
    assert_refused(
        run(&s, "0502", None, one(receive_line("AMMO", None, Some("A-1"), 1))),
        "permission.role",
        &["badge 0502", "inspector", "may not receive"],
    );
    assert_refused(
        run(&s, "0710", None, one(receive_line("AMMO", None, Some("A-1"), 1))),
        "permission.subtree",
        &["badge 0710", "unit D-12", "unit D-11"],
    );
}

#[test]
fn receiving_explosives_needs_a_witness() {
    let s = stocked();
    let cmd = receive("MAG11", vec![receive_line("EXPL", None, Some("E-1"), 10)]);
    assert_refused(run(&s, "0420", None, cmd.clone()), "two_person", &["receipt of explosives", "unit D-11", "requires a witness"]);
    assert!(run(&s, "0420", Some("0501"), cmd).is_ok());
}

// ---- issue -----------------------------------------------------------------------------------

#[test]
fn issuing_a_serial_takes_it_from_its_rack() {
    let s = stocked();
    assert_eq!(
        events(run(&s, "0417", None, issue("1001", None, vec![ser("R-1")]))),
        vec![movement(MovementKind::Issue, at_loc("RACK11"), person("1001"), vec![serial_line("R-1", "RIFLE")])]
    );
    // Serials from two places become one movement per place.
    let evs = events(run(&s, "0417", None, issue("1001", None, vec![ser("R-1"), ser("K-1")])));
    assert_eq!(
        evs,
        vec![
            movement(MovementKind::Issue, at_loc("RACK11"), person("1001"), vec![serial_line("R-1", "RIFLE")]),
            movement(MovementKind::Issue, at_loc("SAFE11"), person("1001"), vec![serial_line("K-1", "KEY")]),
        ]
    );
}

#[test]
fn a_serial_already_issued_names_its_holder_and_since_when() {
    let mut s = stocked();
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    assert_refused(
        run(&s, "0417", None, issue("1002", None, vec![ser("R-1")])),
        "custody.one_account",
        &["serial R-1", "badge 1001", "Officer Q. Hughes", "since 2025-03-12 09:30", "return it first"],
    );
    // Named with its rack, the serial is checked against that rack.
    assert_refused(
        run(&s, "0417", None, issue("1002", Some("RACK11"), vec![ser("R-1")])),
        "custody.one_account",
        &["serial R-1", "badge 1001", "since", "return it first", "not location:RACK11"],
    );
}

#[test]
fn issuing_from_a_lot() {
    let s = stocked();
    assert_eq!(
        events(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 60)]))),
        vec![movement(MovementKind::Issue, at_loc("ARM11"), person("1001"), vec![lot_line("A-1", "AMMO", 60)])]
    );
    assert_invalid(run(&s, "0417", None, issue("1001", None, vec![lots("A-1", 60)])), "lot A-1: say which location");
    assert_refused(
        run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 1001)])),
        "balance.not_negative",
        &["location:ARM11 holds 1000 of lot A-1, not 1001", "no balance may go negative"],
    );
    // Two lines of the same lot count together.
    assert_refused(
        run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 600), lots("A-1", 600)])),
        "balance.not_negative",
        &["not 1200"],
    );
    assert_invalid(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 0)])), "must be more than zero");
    assert_invalid(
        run(
            &s,
            "0417",
            None,
            issue("1001", Some("ARM11"), vec![ItemRef::Lot { lot: lot("A-1"), quantity: Quantity::from_thousandths(-5).unwrap() }]),
        ),
        "must be more than zero",
    );
    assert_invalid(run(&s, "0417", None, issue("1001", Some("RACK11"), vec![ser("R-1"), ser("R-1")])), "serial R-1 is named twice");
    assert_not_found(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("NO-LOT", 1)])), "lot", "NO-LOT");
    assert_not_found(run(&s, "0417", None, issue("1001", None, vec![ser("NO-SERIAL")])), "serial", "NO-SERIAL");
    assert_not_found(run(&s, "0417", None, issue("7777", None, vec![ser("R-1")])), "badge", "7777");
    assert_not_found(run(&s, "0417", None, issue("1001", Some("NOWHERE"), vec![lots("A-1", 1)])), "location", "NOWHERE");
    assert_invalid(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![])), "no items given");
}

#[test]
fn suspended_and_expired_lots_cannot_be_issued() {
    let mut s = stocked();
    assert_refused(
        run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-OLD", 10)])),
        "lot.expired",
        &["lot A-OLD expired on 2024-12-31", "cannot be issued"],
    );
    exec(
        &mut s,
        "0501",
        None,
        Command::SetLotStatus { lot: lot("A-1"), status: LotStatus::Suspended, reason: "misfires reported".into(), unit: None },
    );
    assert_refused(
        run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 10)])),
        "lot.status",
        &["lot A-1 is suspended", "cannot be issued"],
    );
    // A suspended lot may still be moved inside the unit.
    assert!(run(&s, "0417", None, Command::Move { from: l("ARM11"), to: l("SAFE11"), items: vec![lots("A-1", 10)] }).is_ok());
}

#[test]
fn a_serial_of_a_suspended_lot_cannot_be_issued() {
    let mut s = stocked_with(vec![
        item_type_ev("PISTOL", ItemKind::Weapon, Tracking::Both, 0.0, None),
        lot_ev("P-LOT", "PISTOL", None),
        Event::SerialRegistered { serial: sn("P-1"), item_type: it("PISTOL"), lot: Some(lot("P-LOT")) },
        receipt("RACK11", vec![serial_line("P-1", "PISTOL")]),
    ]);
    assert!(run(&s, "0417", None, issue("1002", None, vec![ser("P-1")])).is_ok());
    exec(
        &mut s,
        "0501",
        None,
        Command::SetLotStatus { lot: lot("P-LOT"), status: LotStatus::Unserviceable, reason: "recall".into(), unit: None },
    );
    assert_refused(run(&s, "0417", None, issue("1002", None, vec![ser("P-1")])), "lot.status", &["lot P-LOT is unserviceable"]);
}

#[test]
fn a_weapon_needs_an_unexpired_qualification() {
    let s = stocked();
    assert_refused(
        run(&s, "0417", None, issue("1002", None, vec![ser("R-1")])),
        "qualification",
        &["badge 1002", "Officer R. Ito", "not qualified on rifle", "item type RIFLE"],
    );
    assert_refused(
        run(&s, "0417", None, issue("1003", None, vec![ser("R-1")])),
        "qualification",
        &["badge 1003", "qualification rifle expired on 2025-01-01"],
    );
    assert!(run(&s, "0417", None, issue("1001", None, vec![ser("R-1")])).is_ok());
}

#[test]
fn issue_permissions() {
    let s = stocked();
    assert_refused(
        run(&s, "0611", None, issue("1001", Some("ARM11"), vec![lots("A-1", 1)])),
        "permission.role",
        &["badge 0611", "logistics", "may not issue"],
    );
    assert_refused(
        run(&s, "0710", None, issue("0710", Some("ARM11"), vec![lots("A-1", 1)])),
        "permission.subtree",
        &["badge 0710", "unit D-12", "unit D-11"],
    );
    // The person issued to must be inside the actor's subtree too.
    assert_refused(
        run(&s, "0710", None, issue("1001", Some("ARM12"), vec![lots("A-2", 1)])),
        "permission.subtree",
        &["badge 1001 belongs to unit D-11", "outside the subtree of badge 0710"],
    );
    assert!(run(&s, "0710", None, issue("1201", Some("ARM12"), vec![lots("A-2", 1)])).is_ok());
    // A duty officer may issue too.
    assert!(run(&s, "0501", None, issue("1001", Some("ARM11"), vec![lots("A-1", 1)])).is_ok());
}

#[test]
fn the_issue_cap_counts_ammunition_per_issue() {
    let s = stocked_with(vec![policy_ev("D-11", PolicyRules { max_issue_quantity: Some(q(60)), ..PolicyRules::default() })]);
    assert_refused(
        run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 40), lots("A-1", 21)])),
        "policy.max_issue_quantity",
        &["issue of 61 rounds to badge 1001", "cap of 60", "unit D-11"],
    );
    assert!(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 60)])).is_ok());
    // The sibling unit is not capped.
    assert!(run(&s, "0710", None, issue("1201", Some("ARM12"), vec![lots("A-2", 200)])).is_ok());
}

#[test]
fn issuing_explosives_needs_a_different_authorized_witness() {
    let s = stocked();
    let cmd = issue("1001", Some("MAG11"), vec![lots("E-1", 5)]);
    assert_refused(run(&s, "0420", None, cmd.clone()), "two_person", &["issue of explosives", "unit D-11", "requires a witness"]);
    assert_refused(run(&s, "0420", Some("0420"), cmd.clone()), "two_person", &["witness must be a different person from badge 0420"]);
    // Logistics may not witness.
    assert_refused(run(&s, "0420", Some("0611"), cmd.clone()), "two_person", &["badge 0611 is not authorized to witness at unit D-11"]);
    // A duty officer of the sibling unit may not witness here.
    assert_refused(run(&s, "0420", Some("0720"), cmd.clone()), "two_person", &["badge 0720 is not authorized to witness at unit D-11"]);
    assert_not_found(run(&s, "0420", Some("7777"), cmd.clone()), "badge", "7777");
    // An inspector of the parent unit may; so may a duty officer of the unit.
    assert_eq!(
        events(run(&s, "0420", Some("0502"), cmd.clone())),
        vec![movement(MovementKind::Issue, at_loc("MAG11"), person("1001"), vec![lot_line("E-1", "EXPL", 5)])]
    );
    assert!(run(&s, "0420", Some("0501"), cmd).is_ok());
    // Ordinary ammunition needs no witness under the baseline.
    assert!(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 5)])).is_ok());
}

// ---- return ----------------------------------------------------------------------------------

#[test]
fn returning_what_was_issued() {
    let mut s = stocked();
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    exec(&mut s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 30)]));
    let ret = |items| Command::return_to(b("1001"), l("ARM11"), items);
    assert_eq!(
        events(run(&s, "0417", None, ret(vec![ser("R-1"), lots("A-1", 30)]))),
        vec![movement(
            MovementKind::Return,
            person("1001"),
            at_loc("ARM11"),
            vec![serial_line("R-1", "RIFLE"), lot_line("A-1", "AMMO", 30)]
        )]
    );
    assert_refused(
        run(&s, "0417", None, ret(vec![ser("R-2")])),
        "custody.return_matches",
        &["serial R-2", "is at location RACK11", "a return must match what badge 1001 holds"],
    );
    assert_refused(run(&s, "0417", None, ret(vec![lots("A-1", 31)])), "balance.not_negative", &["badge 1001 holds 30 of lot A-1, not 31"]);
    assert_not_found(run(&s, "0417", None, Command::return_to(b("7777"), l("ARM11"), vec![ser("R-1")])), "badge", "7777");
    assert_refused(run(&s, "0502", None, ret(vec![ser("R-1")])), "permission.role", &["may not return"]);
    // An armorer of the sibling unit may not take back what a D-11 officer holds.
    assert_refused(
        run(&s, "0710", None, Command::return_to(b("1001"), l("ARM12"), vec![ser("R-1")])),
        "permission.subtree",
        &["badge 1001 belongs to unit D-11", "outside the subtree of badge 0710"],
    );
}

/// A rifle and its ammunition handed back together: the rifle to its rack, the rounds to the
/// armory's store, in one decision (one movement per place), or nothing at all.
#[test]
fn a_mixed_return_sends_each_item_to_its_own_place_or_nothing() {
    let mut s = stocked();
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    exec(&mut s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 30)]));
    let mixed = |rounds: i64, extra: Vec<ItemRef>| Command::Return {
        from: b("1001"),
        to: l("RACK11"),
        items: [vec![ser("R-1")], extra].concat(),
        elsewhere: vec![ReturnTo { to: l("ARM11"), items: vec![lots("A-1", rounds)] }],
    };
    assert_eq!(
        events(run(&s, "0417", None, mixed(30, vec![]))),
        vec![
            movement(MovementKind::Return, person("1001"), at_loc("RACK11"), vec![serial_line("R-1", "RIFLE")]),
            movement(MovementKind::Return, person("1001"), at_loc("ARM11"), vec![lot_line("A-1", "AMMO", 30)]),
        ]
    );
    // One line wrong refuses the whole return: the rifle is not booked in while the rounds are refused.
    assert_refused(run(&s, "0417", None, mixed(31, vec![])), "balance.not_negative", &["badge 1001 holds 30 of lot A-1, not 31"]);
    // The same serial in two groups is named twice.
    let twice = Command::Return {
        from: b("1001"),
        to: l("RACK11"),
        items: vec![ser("R-1")],
        elsewhere: vec![ReturnTo { to: l("ARM11"), items: vec![ser("R-1")] }],
    };
    assert_invalid(run(&s, "0417", None, twice), "serial R-1 is named twice");
    // Every place is checked: an armorer of D-11 may not send a line into the sibling unit's armory.
    let sibling = Command::Return {
        from: b("1001"),
        to: l("RACK11"),
        items: vec![ser("R-1")],
        elsewhere: vec![ReturnTo { to: l("ARM12"), items: vec![lots("A-1", 30)] }],
    };
    assert_refused(run(&s, "0417", None, sibling), "permission.subtree", &["may not return at unit D-12"]);
}

// ---- move ------------------------------------------------------------------------------------

fn mv(from: &str, to: &str, items: Vec<ItemRef>) -> Command {
    Command::Move { from: l(from), to: l(to), items }
}

#[test]
fn moving_stock_inside_a_unit() {
    let mut s = stocked();
    assert_eq!(
        events(run(&s, "0417", None, mv("RACK11", "SAFE11", vec![ser("R-2")]))),
        vec![movement(MovementKind::Move, at_loc("RACK11"), at_loc("SAFE11"), vec![serial_line("R-2", "RIFLE")])]
    );
    assert_eq!(
        events(run(&s, "0611", None, mv("ARM11", "SAFE11", vec![lots("A-1", 5)]))),
        vec![movement(MovementKind::Move, at_loc("ARM11"), at_loc("SAFE11"), vec![lot_line("A-1", "AMMO", 5)])]
    );
    assert_refused(
        run(&s, "0417", None, mv("ARM11", "ARM12", vec![lots("A-1", 5)])),
        "move.same_unit",
        &["ARM11 is in unit D-11", "ARM12 in unit D-12", "only by transfer"],
    );
    assert_invalid(run(&s, "0417", None, mv("ARM11", "ARM11", vec![lots("A-1", 5)])), "both source and destination");
    assert_refused(
        run(&s, "0417", None, mv("SAFE11", "ARM11", vec![ser("R-2")])),
        "custody.one_account",
        &["serial R-2 is at location RACK11", "not location:SAFE11"],
    );
    assert_refused(
        run(&s, "0417", None, mv("SAFE11", "ARM11", vec![lots("A-1", 1)])),
        "balance.not_negative",
        &["location:SAFE11 holds 0 of lot A-1, not 1"],
    );
    assert_refused(run(&s, "0502", None, mv("ARM11", "SAFE11", vec![lots("A-1", 5)])), "permission.role", &["may not move"]);
    assert_refused(run(&s, "0710", None, mv("ARM11", "SAFE11", vec![lots("A-1", 5)])), "permission.subtree", &["badge 0710"]);
    assert_not_found(run(&s, "0417", None, mv("ARM11", "NOWHERE", vec![lots("A-1", 5)])), "location", "NOWHERE");
    assert_invalid(run(&s, "0417", None, mv("ARM11", "SAFE11", vec![])), "no items given");
    assert_refused(run(&s, "0420", None, mv("MAG11", "ARM11", vec![lots("E-1", 1)])), "two_person", &["move of explosives"]);
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    assert_refused(
        run(&s, "0417", None, mv("RACK11", "SAFE11", vec![ser("R-1")])),
        "custody.one_account",
        &["serial R-1 is issued to badge 1001", "since 2025-03-12 09:30", "return it first"],
    );
}

// ---- transfers -------------------------------------------------------------------------------

/// Stocked, then T-1: 100 of A-1 and rifles R-1, R-2 dispatched from RACK11 to D-12.
fn in_transit() -> State {
    let mut s = stocked();
    exec(&mut s, "0417", None, mv("ARM11", "RACK11", vec![lots("A-1", 100)]));
    exec(&mut s, "0611", None, dispatch("RACK11", "D-12", vec![lots("A-1", 100), ser("R-1"), ser("R-2")]));
    s
}

#[test]
fn dispatching_puts_stock_in_transit() {
    let s = stocked();
    assert_eq!(
        events(run(&s, "0611", None, dispatch("RACK11", "D-12", vec![ser("R-1")]))),
        vec![
            Event::TransferDispatched { transfer: tr("T-1"), from_unit: u("D-11"), to_unit: u("D-12"), document: Some("TR-9".into()) },
            Event::Movement {
                kind: MovementKind::Dispatch,
                from: at_loc("RACK11"),
                to: Account::Transit(tr("T-1")),
                lines: vec![serial_line("R-1", "RIFLE")],
                document: Some("TR-9".into()),
            },
        ]
    );
    let s = in_transit();
    assert_eq!(s.balance(&Account::Transit(tr("T-1")), &lot("A-1")), q(100));
    assert_eq!(s.serials[&sn("R-1")].account, Account::Transit(tr("T-1")));
    // The next transfer gets the next id.
    let evs = events(run(&s, "0611", None, dispatch("ARM11", "SOUTH", vec![lots("A-1", 1)])));
    assert!(matches!(&evs[0], Event::TransferDispatched { transfer, .. } if *transfer == tr("T-2")));
}

#[test]
fn dispatch_refusals() {
    let s = stocked();
    assert_refused(
        run(&s, "0417", None, dispatch("ARM11", "D-12", vec![lots("A-1", 1)])),
        "permission.role",
        &["badge 0417", "may not transfer"],
    );
    assert_refused(
        run(&s, "0710", None, dispatch("ARM11", "D-12", vec![lots("A-1", 1)])),
        "permission.subtree",
        &["badge 0710", "unit D-11"],
    );
    assert_invalid(run(&s, "0611", None, dispatch("ARM11", "D-11", vec![lots("A-1", 1)])), "to itself; use move");
    assert_not_found(run(&s, "0611", None, dispatch("ARM11", "D-99", vec![lots("A-1", 1)])), "unit", "D-99");
    assert_refused(
        run(&s, "0611", None, dispatch("ARM11", "D-12", vec![lots("A-1", 1001)])),
        "balance.not_negative",
        &["holds 1000 of lot A-1, not 1001"],
    );
    assert_refused(run(&s, "0611", None, dispatch("MAG11", "D-12", vec![lots("E-1", 1)])), "two_person", &["dispatch of explosives"]);
    assert!(run(&s, "0611", Some("0501"), dispatch("MAG11", "D-12", vec![lots("E-1", 1)])).is_ok());
}

#[test]
fn receiving_a_whole_transfer() {
    let s = in_transit();
    assert_eq!(
        events(run(&s, "0710", None, receive_transfer("T-1", "ARM12", vec![ser("R-2"), lots("A-1", 100), ser("R-1")]))),
        vec![
            Event::Movement {
                kind: MovementKind::TransferReceive,
                from: Account::Transit(tr("T-1")),
                to: at_loc("ARM12"),
                lines: vec![serial_line("R-1", "RIFLE"), serial_line("R-2", "RIFLE"), lot_line("A-1", "AMMO", 100)],
                document: Some("TR-9".into()),
            },
            Event::TransferReceived { transfer: tr("T-1"), location: l("ARM12"), discrepancies: vec![] },
        ]
    );
}

#[test]
fn a_short_transfer_opens_discrepancies_that_would_move_transit_to_lost() {
    let mut s = in_transit();
    let evs = events(run(&s, "0710", None, receive_transfer("T-1", "ARM12", vec![lots("A-1", 60), lots("A-1", 30), ser("R-1")])));
    let transit = Account::Transit(tr("T-1"));
    let fact = |kind, serial: Option<&str>, lot_no: Option<&str>, t: &str, book: i64, got: i64, qty: i64| DiscrepancyFacts {
        kind,
        source: DiscrepancySource::Transfer(tr("T-1")),
        serial: serial.map(sn),
        lot: lot_no.map(lot),
        item_type: Some(it(t)),
        book_account: Some(transit.clone()),
        found_account: Some(at_loc("ARM12")),
        book_quantity: q(book),
        counted_quantity: q(got),
        adjust_from: transit.clone(),
        adjust_to: Account::Lost,
        adjust_quantity: q(qty),
    };
    assert_eq!(
        evs,
        vec![
            Event::Movement {
                kind: MovementKind::TransferReceive,
                from: transit.clone(),
                to: at_loc("ARM12"),
                lines: vec![serial_line("R-1", "RIFLE"), lot_line("A-1", "AMMO", 90)],
                document: Some("TR-9".into()),
            },
            Event::DiscrepancyOpened {
                discrepancy: did("D-1"),
                facts: fact(DiscrepancyKind::MissingSerial, Some("R-2"), None, "RIFLE", 1, 0, 1),
            },
            Event::DiscrepancyOpened {
                discrepancy: did("D-2"),
                facts: fact(DiscrepancyKind::QuantityShort, None, Some("A-1"), "AMMO", 100, 90, 10),
            },
            Event::TransferReceived { transfer: tr("T-1"), location: l("ARM12"), discrepancies: vec![did("D-1"), did("D-2")] },
        ]
    );
    apply_decision(&mut s, "0710", None, Decision { events: evs, corrects: None, opens: vec![] }).unwrap();
    assert_eq!(s.balance(&transit, &lot("A-1")), q(10));
    assert_eq!(s.transfers[&tr("T-1")].discrepancies, vec![did("D-1"), did("D-2")]);
    // Approving the shortage writes the rest off from transit to lost.
    assert_eq!(
        events(run(&s, "0720", Some("1201"), resolve("D-2", true, None))),
        vec![
            Event::DiscrepancyResolved { discrepancy: did("D-2"), adjusted: true, note: "checked the shelves".into() },
            Event::Movement {
                kind: MovementKind::Adjust,
                from: transit.clone(),
                to: Account::Lost,
                lines: vec![lot_line("A-1", "AMMO", 10)],
                document: Some("discrepancy D-2".into()),
            },
        ]
    );
    exec(&mut s, "0720", Some("1201"), resolve("D-1", true, None));
    assert_eq!(s.serials[&sn("R-2")].account, Account::Lost);
}

#[test]
fn an_over_delivered_transfer_opens_finds() {
    let s = in_transit();
    let evs = events(run(
        &s,
        "0710",
        None,
        receive_transfer("T-1", "ARM12", vec![ser("R-1"), ser("R-2"), ser("X-5"), lots("A-1", 105), lots("A-2", 3)]),
    ));
    let found = opened(&evs);
    let summary: Vec<_> = found
        .iter()
        .map(|(id, f)| (id.to_string(), f.kind, f.adjust_from.clone(), f.adjust_to.clone(), f.adjust_quantity, f.item_type.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("D-1".into(), DiscrepancyKind::UnexpectedSerial, Account::Found, at_loc("ARM12"), q(1), None),
            ("D-2".into(), DiscrepancyKind::QuantityOver, Account::Found, at_loc("ARM12"), q(5), Some(it("AMMO"))),
            ("D-3".into(), DiscrepancyKind::QuantityOver, Account::Found, at_loc("ARM12"), q(3), Some(it("AMMO"))),
        ]
    );
    // What was sent moves in full; the finds wait for a resolution.
    assert_eq!(
        evs[0],
        Event::Movement {
            kind: MovementKind::TransferReceive,
            from: Account::Transit(tr("T-1")),
            to: at_loc("ARM12"),
            lines: vec![serial_line("R-1", "RIFLE"), serial_line("R-2", "RIFLE"), lot_line("A-1", "AMMO", 100)],
            document: Some("TR-9".into()),
        }
    );
}

#[test]
fn transfer_receipt_refusals() {
    let mut s = in_transit();
    let all = || vec![lots("A-1", 100), ser("R-1"), ser("R-2")];
    assert_not_found(run(&s, "0710", None, receive_transfer("T-9", "ARM12", all())), "transfer", "T-9");
    assert_refused(
        run(&s, "0710", None, receive_transfer("T-1", "ARMS", all())),
        "transfer.destination",
        &["transfer T-1 is addressed to unit D-12", "ARMS is in unit SOUTH"],
    );
    assert_refused(run(&s, "1201", None, receive_transfer("T-1", "ARM12", all())), "permission.role", &["badge 1201", "may not transfer"]);
    assert_invalid(run(&s, "0710", None, receive_transfer("T-1", "ARM12", vec![ser("R-1"), ser("R-1")])), "serial R-1 is named twice");
    assert_not_found(run(&s, "0710", None, receive_transfer("T-1", "NOWHERE", all())), "location", "NOWHERE");
    exec(&mut s, "0710", None, receive_transfer("T-1", "ARM12", all()));
    assert_refused(run(&s, "0710", None, receive_transfer("T-1", "ARM12", all())), "transfer.once", &["transfer T-1 was already received"]);
}

#[test]
fn receiving_a_transfer_of_explosives_needs_a_witness() {
    let mut s = stocked();
    exec(&mut s, "0611", Some("0501"), dispatch("MAG11", "D-12", vec![lots("E-1", 5)]));
    assert_refused(
        run(&s, "0710", None, receive_transfer("T-1", "ARM12", vec![lots("E-1", 5)])),
        "two_person",
        &["transfer receipt of explosives", "unit D-12"],
    );
    assert!(run(&s, "0710", Some("1201"), receive_transfer("T-1", "ARM12", vec![lots("E-1", 5)])).is_ok());
}

// ---- expend, destroy, lose, recover ----------------------------------------------------------

#[test]
fn expending_stock() {
    let mut s = stocked();
    let expend = |from: Account, items| Command::Expend { from, items, document: "range day 12".into() };
    assert_eq!(
        events(run(&s, "0417", None, expend(at_loc("ARM11"), vec![lots("A-1", 50)]))),
        vec![Event::Movement {
            kind: MovementKind::Expend,
            from: at_loc("ARM11"),
            to: Account::Expended,
            lines: vec![lot_line("A-1", "AMMO", 50)],
            document: Some("range day 12".into()),
        }]
    );
    exec(&mut s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 30)]));
    assert!(run(&s, "0417", None, expend(person("1001"), vec![lots("A-1", 30)])).is_ok());
    assert_refused(
        run(&s, "0417", None, expend(person("1001"), vec![lots("A-1", 31)])),
        "balance.not_negative",
        &["badge 1001 holds 30 of lot A-1, not 31"],
    );
    assert_not_found(run(&s, "0417", None, expend(Account::Expended, vec![lots("A-1", 1)])), "account", "expended");
    assert_invalid(
        run(&s, "0417", None, Command::Expend { from: at_loc("ARM11"), items: vec![lots("A-1", 1)], document: "".into() }),
        "document is required",
    );
    assert_refused(run(&s, "0611", None, expend(at_loc("ARM11"), vec![lots("A-1", 1)])), "permission.role", &["may not expend"]);
    assert_refused(run(&s, "0710", None, expend(at_loc("ARM11"), vec![lots("A-1", 1)])), "permission.subtree", &["badge 0710"]);
    assert_refused(run(&s, "0420", None, expend(at_loc("MAG11"), vec![lots("E-1", 1)])), "two_person", &["expenditure of explosives"]);
}

#[test]
fn destroying_stock_is_for_the_duty_officer() {
    let s = stocked();
    let destroy = |from: &str, items| Command::Destroy { from: l(from), items, document: "demil order 4".into() };
    assert_refused(
        run(&s, "0417", None, destroy("ARM11", vec![lots("A-OLD", 100)])),
        "permission.role",
        &["badge 0417", "may not destroy"],
    );
    assert_eq!(
        events(run(&s, "0501", None, destroy("ARM11", vec![lots("A-OLD", 100)]))),
        vec![Event::Movement {
            kind: MovementKind::Destroy,
            from: at_loc("ARM11"),
            to: Account::Destroyed,
            lines: vec![lot_line("A-OLD", "AMMO", 100)],
            document: Some("demil order 4".into()),
        }]
    );
    assert_refused(run(&s, "0501", None, destroy("MAG11", vec![lots("E-1", 1)])), "two_person", &["destruction of explosives"]);
    assert_refused(run(&s, "0501", None, destroy("ARM11", vec![lots("A-OLD", 101)])), "balance.not_negative", &["not 101"]);
    assert_invalid(
        run(&s, "0501", None, Command::Destroy { from: l("ARM11"), items: vec![lots("A-OLD", 1)], document: " ".into() }),
        "document is required",
    );
}

#[test]
fn reporting_a_loss_and_recovering_it() {
    let mut s = stocked();
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    let lose = |from: Account, items| Command::ReportLost { from, items, document: Some("incident 7".into()) };
    assert_eq!(
        events(run(&s, "0417", None, lose(person("1001"), vec![ser("R-1")]))),
        vec![Event::Movement {
            kind: MovementKind::Lose,
            from: person("1001"),
            to: Account::Lost,
            lines: vec![serial_line("R-1", "RIFLE")],
            document: Some("incident 7".into()),
        }]
    );
    assert_refused(run(&s, "0611", None, lose(at_loc("ARM11"), vec![lots("A-1", 1)])), "permission.role", &["may not report_lost"]);
    assert_refused(
        run(&s, "0417", None, lose(person("1002"), vec![ser("R-1")])),
        "custody.one_account",
        &["serial R-1 is issued to badge 1001", "not person:1002"],
    );
    exec(&mut s, "0417", None, lose(at_loc("ARM11"), vec![lots("A-1", 20)]));
    exec(&mut s, "0417", None, lose(person("1001"), vec![ser("R-1")]));
    let recover = |items| Command::Recover { to: l("ARM11"), items, document: Some("found in vehicle".into()) };
    assert_eq!(
        events(run(&s, "0501", None, recover(vec![lots("A-1", 20), ser("R-1")]))),
        vec![Event::Movement {
            kind: MovementKind::Recover,
            from: Account::Lost,
            to: at_loc("ARM11"),
            lines: vec![lot_line("A-1", "AMMO", 20), serial_line("R-1", "RIFLE")],
            document: Some("found in vehicle".into()),
        }]
    );
    assert_refused(run(&s, "0501", None, recover(vec![lots("A-1", 21)])), "balance.not_negative", &["lost holds 20 of lot A-1, not 21"]);
    assert_refused(
        run(&s, "0501", None, recover(vec![ser("R-2")])),
        "custody.one_account",
        &["serial R-2 is at location RACK11", "not lost"],
    );
    assert_refused(run(&s, "0417", None, recover(vec![lots("A-1", 1)])), "permission.role", &["may not recover"]);
    assert_refused(run(&s, "0720", None, recover(vec![lots("A-1", 1)])), "permission.subtree", &["badge 0720"]);
}

// ---- lot status ------------------------------------------------------------------------------

#[test]
fn setting_a_lot_status() {
    let s = stocked();
    let set = |lot_no: &str, status, reason: &str, unit: Option<&str>| Command::SetLotStatus {
        lot: lot(lot_no),
        status,
        reason: reason.into(),
        unit: unit.map(|u| UnitId::parse(u).unwrap()),
    };
    // Without a unit, the decision is taken for the actor's own unit and its subtree.
    assert_eq!(
        events(run(&s, "0501", None, set("A-1", LotStatus::Suspended, "misfires", None))),
        vec![Event::LotStatusChanged {
            lot: lot("A-1"),
            status: LotStatus::Suspended,
            reason: "misfires".into(),
            unit: Some(UnitId::parse("D-11").unwrap())
        }]
    );
    assert_refused(
        run(&s, "0501", None, set("A-1", LotStatus::Serviceable, "fine", None)),
        "lot.status",
        &["lot A-1 is already serviceable"],
    );
    assert_not_found(run(&s, "0501", None, set("NO-LOT", LotStatus::Suspended, "x", None)), "lot", "NO-LOT");
    assert_refused(run(&s, "0417", None, set("A-1", LotStatus::Suspended, "x", None)), "permission.role", &["may not lot_status"]);
    // A decision for another unit's subtree needs authority there.
    assert_refused(
        run(&s, "0720", None, set("A-1", LotStatus::Suspended, "x", Some("D-11"))),
        "permission.subtree",
        &["badge 0720", "unit D-11"],
    );
    assert!(run(&s, "0720", None, set("A-1", LotStatus::Suspended, "x", None)).is_ok());
    assert!(run(&s, "0503", None, set("A-1", LotStatus::Suspended, "x", Some("D-11"))).is_ok());
    assert_invalid(run(&s, "0501", None, set("A-1", LotStatus::Suspended, " ", None)), "reason is required");
}

#[test]
fn a_suspension_decided_at_a_higher_unit_applies_in_its_whole_subtree_and_only_there() {
    let mut s = stocked();
    let north = UnitId::parse("NORTH").unwrap();
    exec(
        &mut s,
        "0503",
        None,
        Command::SetLotStatus { lot: lot("A-1"), status: LotStatus::Suspended, reason: "bulletin 26-14".into(), unit: Some(north.clone()) },
    );
    assert_eq!(s.lot_status_at(&lot("A-1"), &UnitId::parse("D-11").unwrap()).map(|x| x.0), Some(LotStatus::Suspended));
    assert_eq!(s.lot_status_at(&lot("A-1"), &UnitId::parse("D-12").unwrap()).map(|x| x.1), Some(Some(north.clone())));
    assert_eq!(s.lot_status_at(&lot("A-1"), &UnitId::parse("SOUTH").unwrap()).map(|x| x.0), Some(LotStatus::Serviceable));
    // A department cannot lift what its region decided: its own "serviceable" changes nothing above it.
    assert_refused(
        run(&s, "0501", None, Command::SetLotStatus { lot: lot("A-1"), status: LotStatus::Serviceable, reason: "x".into(), unit: None }),
        "lot.status",
        &["already serviceable"],
    );
    assert_eq!(s.lot_status_at(&lot("A-1"), &UnitId::parse("D-11").unwrap()).map(|x| x.0), Some(LotStatus::Suspended));
}

// ---- counts ----------------------------------------------------------------------------------

fn start(root: &str, kind: CountKind) -> Command {
    Command::StartCount { root: l(root), kind, blind: true }
}

fn record(count: &str, loc: &str, serials: &[&str], lot_counts: &[(&str, i64)]) -> Command {
    Command::RecordCount {
        count: cid(count),
        location: l(loc),
        serials: serials.iter().map(|s| sn(s)).collect(),
        lots: lot_counts.iter().map(|(x, n)| (lot(x), q(*n))).collect(),
    }
}

fn close(count: &str) -> Command {
    Command::CloseCount { count: cid(count) }
}

#[test]
fn starting_a_count() {
    let mut s = stocked();
    assert_eq!(
        events(run(&s, "0502", None, start("ARM11", CountKind::Full))),
        vec![Event::CountStarted { count: cid("C-1"), root: l("ARM11"), kind: CountKind::Full, blind: true, counter: b("0502") }]
    );
    // Without a policy, the keeper may count their own armory.
    assert!(run(&s, "0417", None, start("ARM11", CountKind::Full)).is_ok());
    assert_refused(run(&s, "0611", None, start("ARM11", CountKind::Full)), "permission.role", &["may not count"]);
    assert_refused(run(&s, "0710", None, start("ARM11", CountKind::Full)), "permission.subtree", &["badge 0710"]);
    assert_not_found(run(&s, "0502", None, start("NOWHERE", CountKind::Full)), "location", "NOWHERE");
    exec(&mut s, "0502", None, start("ARM11", CountKind::Full));
    assert_refused(run(&s, "0417", None, start("RACK11", CountKind::Cycle)), "count.one_open", &["count C-1 is still open over RACK11"]);
    assert_refused(run(&s, "0502", None, start("ARM11", CountKind::Full)), "count.one_open", &["count C-1"]);
    // A disjoint place may be counted at the same time, under the next id.
    let evs = events(run(&s, "0502", None, start("MAG11", CountKind::Full)));
    assert!(matches!(&evs[0], Event::CountStarted { count, .. } if *count == cid("C-2")));
}

#[test]
fn the_counter_may_not_be_the_keeper_when_policy_says_so() {
    let s = stocked_with(vec![policy_ev("D-11", PolicyRules { counter_not_keeper: true, ..PolicyRules::default() })]);
    assert_refused(
        run(&s, "0417", None, start("ARM11", CountKind::Full)),
        "count.counter_not_keeper",
        &["badge 0417 keeps location ARM11", "unit D-11", "someone else"],
    );
    // RACK11 has no keeper of its own; counting it alone is allowed.
    assert!(run(&s, "0417", None, start("RACK11", CountKind::Full)).is_ok());
    assert!(run(&s, "0502", None, start("ARM11", CountKind::Full)).is_ok());
    // The sibling unit has no such policy.
    assert!(run(&s, "0710", None, start("ARM12", CountKind::Full)).is_ok());
}

#[test]
fn the_counter_may_not_repeat_the_previous_count_when_policy_says_so() {
    // Set at the parent unit: applies to D-11 below it.
    let mut s = stocked_with(vec![policy_ev("NORTH", PolicyRules { counter_not_previous: true, ..PolicyRules::default() })]);
    exec(&mut s, "0502", None, start("ARM11", CountKind::Cycle));
    exec(&mut s, "0502", None, close("C-1"));
    assert_eq!(s.last_counter.get(&l("ARM11")), Some(&b("0502")));
    assert_refused(
        run(&s, "0502", None, start("ARM11", CountKind::Full)),
        "count.counter_not_previous",
        &["badge 0502 did the previous count of ARM11", "unit D-11", "different counter"],
    );
    assert!(run(&s, "0417", None, start("ARM11", CountKind::Full)).is_ok());
    assert!(run(&s, "0502", None, start("RACK11", CountKind::Full)).is_ok());
}

#[test]
fn recording_a_count() {
    let mut s = stocked();
    exec(&mut s, "0502", None, start("ARM11", CountKind::Full));
    assert_eq!(
        events(run(&s, "0502", None, record("C-1", "RACK11", &["R-1"], &[("A-1", 3)]))),
        vec![Event::CountRecorded { count: cid("C-1"), location: l("RACK11"), serials: vec![sn("R-1")], lots: vec![(lot("A-1"), q(3))] }]
    );
    assert_not_found(run(&s, "0502", None, record("C-9", "RACK11", &["R-1"], &[])), "count", "C-9");
    assert_refused(
        run(&s, "0417", None, record("C-1", "RACK11", &["R-1"], &[])),
        "count.counter",
        &["count C-1 is being counted by badge 0502, not 0417"],
    );
    assert_refused(
        run(&s, "0502", None, record("C-1", "MAG11", &[], &[("E-1", 50)])),
        "count.scope",
        &["location MAG11 is not inside ARM11"],
    );
    assert_not_found(run(&s, "0502", None, record("C-1", "NOWHERE", &[], &[])), "location", "NOWHERE");
    assert_invalid(run(&s, "0502", None, record("C-1", "ARM11", &[], &[("A-1", 0)])), "more than zero");
    exec(&mut s, "0502", None, close("C-1"));
    assert_refused(run(&s, "0502", None, record("C-1", "RACK11", &["R-1"], &[])), "count.open", &["count C-1 is closed"]);
    assert_refused(run(&s, "0502", None, close("C-1")), "count.open", &["already closed"]);
}

/// Stocked, then a full count C-1 of ARM11 by duty officer 0501 that finds:
/// RACK11: R-1 and an unknown X-99 (R-2 is missing there); SAFE11: R-2 and 5 of A-1 (K-1 missing);
/// ARM11: 990 of A-1 (10 short) and all 100 of A-OLD.
fn counted() -> State {
    let mut s = stocked();
    exec(&mut s, "0501", None, start("ARM11", CountKind::Full));
    exec(&mut s, "0501", None, record("C-1", "RACK11", &["R-1", "X-99"], &[]));
    exec(&mut s, "0501", None, record("C-1", "SAFE11", &["R-2"], &[("A-1", 5)]));
    exec(&mut s, "0501", None, record("C-1", "ARM11", &[], &[("A-1", 600), ("A-OLD", 100)]));
    exec(&mut s, "0501", None, record("C-1", "ARM11", &[], &[("A-1", 390)]));
    s
}

fn closed() -> State {
    let mut s = counted();
    exec(&mut s, "0501", None, close("C-1"));
    s
}

#[test]
fn closing_a_full_count_opens_one_discrepancy_per_difference() {
    let s = counted();
    let evs = events(run(&s, "0501", None, close("C-1")));
    let source = DiscrepancySource::Count(cid("C-1"));
    let expected = vec![
        (
            did("D-1"),
            DiscrepancyFacts {
                kind: DiscrepancyKind::MissingSerial,
                source: source.clone(),
                serial: Some(sn("K-1")),
                lot: None,
                item_type: Some(it("KEY")),
                book_account: Some(at_loc("SAFE11")),
                found_account: None,
                book_quantity: q(1),
                counted_quantity: q(0),
                adjust_from: at_loc("SAFE11"),
                adjust_to: Account::Lost,
                adjust_quantity: q(1),
            },
        ),
        (
            did("D-2"),
            DiscrepancyFacts {
                kind: DiscrepancyKind::WrongPlace,
                source: source.clone(),
                serial: Some(sn("R-2")),
                lot: None,
                item_type: Some(it("RIFLE")),
                book_account: Some(at_loc("RACK11")),
                found_account: Some(at_loc("SAFE11")),
                book_quantity: q(1),
                counted_quantity: q(1),
                adjust_from: at_loc("RACK11"),
                adjust_to: at_loc("SAFE11"),
                adjust_quantity: q(1),
            },
        ),
        (
            did("D-3"),
            DiscrepancyFacts {
                kind: DiscrepancyKind::UnexpectedSerial,
                source: source.clone(),
                serial: Some(sn("X-99")),
                lot: None,
                item_type: None,
                book_account: None,
                found_account: Some(at_loc("RACK11")),
                book_quantity: q(0),
                counted_quantity: q(1),
                adjust_from: Account::Found,
                adjust_to: at_loc("RACK11"),
                adjust_quantity: q(1),
            },
        ),
        (
            did("D-4"),
            DiscrepancyFacts {
                kind: DiscrepancyKind::QuantityShort,
                source: source.clone(),
                serial: None,
                lot: Some(lot("A-1")),
                item_type: Some(it("AMMO")),
                book_account: Some(at_loc("ARM11")),
                found_account: Some(at_loc("ARM11")),
                book_quantity: q(1000),
                counted_quantity: q(990),
                adjust_from: at_loc("ARM11"),
                adjust_to: Account::Lost,
                adjust_quantity: q(10),
            },
        ),
        (
            did("D-5"),
            DiscrepancyFacts {
                kind: DiscrepancyKind::QuantityOver,
                source: source.clone(),
                serial: None,
                lot: Some(lot("A-1")),
                item_type: Some(it("AMMO")),
                book_account: Some(at_loc("SAFE11")),
                found_account: Some(at_loc("SAFE11")),
                book_quantity: q(0),
                counted_quantity: q(5),
                adjust_from: Account::Found,
                adjust_to: at_loc("SAFE11"),
                adjust_quantity: q(5),
            },
        ),
    ];
    assert_eq!(opened(&evs), expected);
    assert_eq!(
        evs.last(),
        Some(&Event::CountClosed { count: cid("C-1"), discrepancies: (1..=5).map(|i| did(&format!("D-{i}"))).collect() })
    );
    assert_eq!(evs.len(), 6);
}

#[test]
fn a_cycle_count_looks_only_at_the_places_it_recorded() {
    let mut s = stocked();
    exec(&mut s, "0502", None, start("ARM11", CountKind::Cycle));
    exec(&mut s, "0502", None, record("C-1", "RACK11", &["R-1"], &[]));
    let evs = events(run(&s, "0502", None, close("C-1")));
    let found = opened(&evs);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1.kind, DiscrepancyKind::MissingSerial);
    assert_eq!(found[0].1.serial, Some(sn("R-2")));
}

#[test]
fn a_count_that_matches_the_books_closes_clean() {
    let mut s = stocked();
    exec(&mut s, "0502", None, start("ARM11", CountKind::Full));
    exec(&mut s, "0502", None, record("C-1", "RACK11", &["R-1", "R-2"], &[]));
    exec(&mut s, "0502", None, record("C-1", "SAFE11", &["K-1"], &[]));
    exec(&mut s, "0502", None, record("C-1", "ARM11", &[], &[("A-1", 1000), ("A-OLD", 100)]));
    assert_eq!(events(run(&s, "0502", None, close("C-1"))), vec![Event::CountClosed { count: cid("C-1"), discrepancies: vec![] }]);
}

#[test]
fn someone_else_closing_a_count_needs_authority_to_resolve() {
    let s = counted();
    assert_refused(run(&s, "0417", None, close("C-1")), "permission.role", &["badge 0417", "may not resolve"]);
    assert_refused(run(&s, "0720", None, close("C-1")), "permission.subtree", &["badge 0720"]);
    assert!(run(&s, "0503", None, close("C-1")).is_ok());
    assert_not_found(run(&s, "0501", None, close("C-9")), "count", "C-9");
}

// ---- resolving discrepancies -----------------------------------------------------------------

#[test]
fn approving_a_shortage_adjusts_the_books() {
    let mut s = closed();
    assert_eq!(
        events(run(&s, "0503", Some("0417"), resolve("D-4", true, None))),
        vec![
            Event::DiscrepancyResolved { discrepancy: did("D-4"), adjusted: true, note: "checked the shelves".into() },
            Event::Movement {
                kind: MovementKind::Adjust,
                from: at_loc("ARM11"),
                to: Account::Lost,
                lines: vec![lot_line("A-1", "AMMO", 10)],
                document: Some("discrepancy D-4".into()),
            },
        ]
    );
    let envs = exec(&mut s, "0503", Some("0417"), resolve("D-4", true, None));
    assert_eq!(s.balance(&at_loc("ARM11"), &lot("A-1")), q(990));
    let r = s.discrepancies[&did("D-4")].resolution.clone().unwrap();
    assert_eq!((r.adjusted, r.by, r.witness, r.seq), (true, b("0503"), Some(b("0417")), envs[0].seq));
    assert_refused(
        run(&s, "0503", Some("0417"), resolve("D-4", true, None)),
        "discrepancy.once",
        &[&format!("discrepancy D-4 was already resolved by badge 0503 in entry {}", envs[0].seq)],
    );
}

#[test]
fn an_explained_discrepancy_changes_no_books() {
    let s = closed();
    assert_eq!(
        events(run(&s, "0503", Some("0417"), resolve("D-1", false, None))),
        vec![Event::DiscrepancyResolved { discrepancy: did("D-1"), adjusted: false, note: "checked the shelves".into() }]
    );
}

#[test]
fn approving_wrong_place_and_over_moves_the_books_to_what_was_counted() {
    let mut s = closed();
    exec(&mut s, "0503", Some("0417"), resolve("D-2", true, None));
    assert_eq!(s.serials[&sn("R-2")].account, at_loc("SAFE11"));
    exec(&mut s, "0503", Some("0417"), resolve("D-5", true, None));
    assert_eq!(s.balance(&at_loc("SAFE11"), &lot("A-1")), q(5));
    exec(&mut s, "0503", Some("0417"), resolve("D-1", true, None));
    assert_eq!(s.serials[&sn("K-1")].account, Account::Lost);
}

#[test]
fn approving_an_unknown_find_needs_its_item_type_and_registers_it() {
    let mut s = closed();
    assert_invalid(run(&s, "0503", Some("0417"), resolve("D-3", true, None)), "give its item type");
    assert_not_found(run(&s, "0503", Some("0417"), resolve("D-3", true, Some("NOPE"))), "item type", "NOPE");
    let evs = events(run(&s, "0503", Some("0417"), resolve("D-3", true, Some("KEY"))));
    assert_eq!(
        evs,
        vec![
            serial_ev("X-99", "KEY"),
            Event::DiscrepancyResolved { discrepancy: did("D-3"), adjusted: true, note: "checked the shelves".into() },
            Event::Movement {
                kind: MovementKind::Adjust,
                from: Account::Found,
                to: at_loc("RACK11"),
                lines: vec![serial_line("X-99", "KEY")],
                document: Some("discrepancy D-3".into()),
            },
        ]
    );
    apply_decision(&mut s, "0503", Some("0417"), Decision { events: evs, corrects: None, opens: vec![] }).unwrap();
    assert_eq!(s.serials[&sn("X-99")].account, at_loc("RACK11"));
}

#[test]
fn resolution_refusals() {
    let mut s = closed();
    assert_refused(
        run(&s, "0503", None, resolve("D-4", true, None)),
        "two_person",
        &["resolving discrepancy D-4", "unit D-11", "requires a witness"],
    );
    // Explaining needs the witness too: the policy is about resolutions.
    assert_refused(run(&s, "0503", None, resolve("D-4", false, None)), "two_person", &["D-4"]);
    assert_refused(
        run(&s, "0501", Some("0417"), resolve("D-4", true, None)),
        "count.resolver_not_counter",
        &["badge 0501 counted C-1 and may not resolve its discrepancies"],
    );
    assert_refused(run(&s, "0417", Some("0420"), resolve("D-4", true, None)), "permission.role", &["badge 0417", "may not resolve"]);
    assert_refused(run(&s, "0720", Some("1201"), resolve("D-4", true, None)), "permission.subtree", &["badge 0720", "unit D-11"]);
    assert_not_found(run(&s, "0503", Some("0417"), resolve("D-99", true, None)), "discrepancy", "D-99");
    assert_invalid(
        run(
            &s,
            "0503",
            Some("0417"),
            Command::ResolveDiscrepancy { discrepancy: did("D-4"), approve: true, note: " ".into(), item_type: None },
        ),
        "note is required",
    );
    // The books changed since the count: 995 of the 1000 were issued, so 10 cannot be written off.
    exec(&mut s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 995)]));
    assert_refused(
        run(&s, "0503", Some("0417"), resolve("D-4", true, None)),
        "discrepancy.still_applies",
        &["the books changed since discrepancy D-4 was found", "holds 5 of lot A-1, not 10"],
    );
}

// ---- corrections -----------------------------------------------------------------------------

#[test]
fn a_correction_reverses_a_movement_once() {
    let mut s = stocked();
    let issued = exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")])).remove(0);
    let correct = |original: &Envelope, reason: &str| Command::Correct { original: Box::new(original.clone()), reason: reason.into() };
    let d = run(&s, "0501", None, correct(&issued, "wrong rifle handed over")).unwrap();
    assert_eq!(
        d,
        Decision {
            events: vec![movement(MovementKind::Correct, person("1001"), at_loc("RACK11"), vec![serial_line("R-1", "RIFLE")])],
            corrects: Some(Correction { seq: issued.seq, reason: "wrong rifle handed over".into() }),
            opens: vec![],
        }
    );
    assert_refused(run(&s, "0417", None, correct(&issued, "x")), "permission.role", &["badge 0417", "may not correct"]);
    assert_invalid(run(&s, "0501", None, correct(&issued, " ")), "reason is required");
    let reversal = apply_decision(&mut s, "0501", None, d).unwrap().remove(0);
    assert_eq!(s.serials[&sn("R-1")].account, at_loc("RACK11"));
    assert_eq!(s.corrected.get(&issued.seq), Some(&reversal.seq));
    assert_refused(
        run(&s, "0501", None, correct(&issued, "again")),
        "correction.once",
        &[&format!("entry {} was already corrected by entry {}", issued.seq, reversal.seq)],
    );
    assert_refused(
        run(&s, "0501", None, correct(&reversal, "undo the undo")),
        "correction.movement_only",
        &[&format!("entry {} is itself a correction", reversal.seq)],
    );
}

#[test]
fn only_movements_are_corrected_and_only_while_the_stock_is_still_there() {
    let mut s = stocked();
    let status =
        exec(&mut s, "0501", None, Command::SetLotStatus { lot: lot("A-1"), status: LotStatus::Suspended, reason: "x".into(), unit: None })
            .remove(0);
    assert_refused(
        run(&s, "0501", None, Command::Correct { original: Box::new(status.clone()), reason: "oops".into() }),
        "correction.movement_only",
        &[&format!("entry {} is a lot_status_changed", status.seq)],
    );
    let issued = exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")])).remove(0);
    exec(&mut s, "0417", None, Command::return_to(b("1001"), l("SAFE11"), vec![ser("R-1")]));
    assert_refused(
        run(&s, "0501", None, Command::Correct { original: Box::new(issued), reason: "oops".into() }),
        "custody.one_account",
        &["serial R-1 is at location SAFE11", "not person:1001"],
    );
}

// ---- effective policy and witnesses ------------------------------------------------------------

#[test]
fn a_child_unit_tightens_policy_for_itself_only() {
    let s = stocked_with(vec![policy_ev("D-11", PolicyRules { two_person_all_movements: true, ..PolicyRules::default() })]);
    assert!(s.effective_policy(&u("D-11"), NOW).0.two_person_all_movements);
    assert!(!s.effective_policy(&u("D-12"), NOW).0.two_person_all_movements);
    assert!(!s.effective_policy(&u("NORTH"), NOW).0.two_person_all_movements);
    let cmd = issue("1001", Some("ARM11"), vec![lots("A-1", 10)]);
    assert_refused(
        run(&s, "0417", None, cmd.clone()),
        "two_person",
        &["issue under a two-person posture", "unit D-11", "requires a witness"],
    );
    assert!(run(&s, "0417", Some("0420"), cmd).is_ok());
    // The sibling unit carries on alone.
    assert!(run(&s, "0710", None, issue("1201", Some("ARM12"), vec![lots("A-2", 10)])).is_ok());
    // Every kind of movement in D-11 needs the witness now.
    assert_refused(run(&s, "0417", None, mv("ARM11", "SAFE11", vec![lots("A-1", 1)])), "two_person", &["move under a two-person posture"]);
    assert_refused(
        run(&s, "0417", None, receive("ARM11", vec![receive_line("AMMO", None, Some("A-1"), 1)])),
        "two_person",
        &["receipt under a two-person posture"],
    );
}

#[test]
fn a_child_unit_cannot_relax_what_a_parent_set() {
    let mut s = stocked_with(vec![
        policy_ev("NORTH", PolicyRules { two_person_all_movements: true, max_issue_quantity: Some(q(60)), ..PolicyRules::default() }),
        // D-11 "sets" everything off and a looser cap: it adds nothing.
        policy_ev("D-11", PolicyRules { max_issue_quantity: Some(q(90)), ..PolicyRules::default() }),
        // HQ turning the baseline off relaxes nothing either.
        policy_ev("HQ", PolicyRules::default()),
    ]);
    let eff = s.effective_policy(&u("D-11"), NOW).0;
    assert!(eff.two_person_all_movements && eff.two_person_explosives && eff.two_person_count_resolution);
    assert_eq!(eff.max_issue_quantity, Some(q(60)));
    assert_refused(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 10)])), "two_person", &["two-person posture"]);
    assert_refused(
        run(&s, "0417", Some("0420"), issue("1001", Some("ARM11"), vec![lots("A-1", 61)])),
        "policy.max_issue_quantity",
        &["cap of 60"],
    );
    // SOUTH is outside NORTH: only the baseline applies there (explosives, resolutions).
    let south = s.effective_policy(&u("SOUTH"), NOW).0;
    assert_eq!(south, PolicyRules::baseline());
    // Setting a unit's policy again replaces that unit's own rules, never a parent's.
    exec(&mut s, "0002", None, Command::SetPolicy { unit: u("D-11"), rules: PolicyRules::default() });
    assert!(s.effective_policy(&u("D-11"), NOW).0.two_person_all_movements);
    assert_eq!(s.effective_policy(&u("D-11"), NOW).0.max_issue_quantity, Some(q(60)));
}

#[test]
fn the_witness_must_differ_and_be_allowed_to_witness_in_the_unit() {
    let s = stocked_with(vec![policy_ev("D-11", PolicyRules { two_person_all_movements: true, ..PolicyRules::default() })]);
    let cmd = issue("1001", None, vec![ser("R-1")]);
    assert_refused(run(&s, "0417", Some("0417"), cmd.clone()), "two_person", &["must be a different person from badge 0417"]);
    // Roles that may not witness: logistics, admin.
    for w in ["0611", "0002"] {
        assert_refused(
            run(&s, "0417", Some(w), cmd.clone()),
            "two_person",
            &[&format!("badge {w} is not authorized to witness at unit D-11")],
        );
    }
    // Outside the unit's subtree: a sibling unit, another region.
    for w in ["1201", "0720", "2001"] {
        assert_refused(
            run(&s, "0417", Some(w), cmd.clone()),
            "two_person",
            &[&format!("badge {w} is not authorized to witness at unit D-11")],
        );
    }
    // Armorer, keeper, duty officer of the unit; inspector or duty officer above it.
    for w in ["1002", "0420", "0501", "0502", "0503"] {
        assert!(run(&s, "0417", Some(w), cmd.clone()).is_ok(), "witness {w}");
    }
}

// ---- defects found while writing these tests ---------------------------------------------------
// These fail against the current core; each names what should hold.

#[test]
fn receiving_a_transfer_moves_only_what_is_still_in_transit() {
    // 100 rounds dispatched; 40 of them reported lost on the road (accepted: transit is an account of D-11).
    let mut s = stocked();
    exec(&mut s, "0611", None, dispatch("ARM11", "D-12", vec![lots("A-1", 100)]));
    exec(&mut s, "0417", None, Command::ReportLost { from: Account::Transit(tr("T-1")), items: vec![lots("A-1", 40)], document: None });
    let transit = Account::Transit(tr("T-1"));
    assert_eq!(s.balance(&transit, &lot("A-1")), q(60));
    // The receiver counts the 100 on the delivery note. Refusing is a sound answer; accepting must
    // not move more out of transit than transit holds.
    if let Ok(d) = run(&s, "0710", None, receive_transfer("T-1", "ARM12", vec![lots("A-1", 100)])) {
        apply_decision(&mut s, "0710", None, d).unwrap();
        let left = s.balance(&transit, &lot("A-1"));
        assert!(
            left >= Quantity::ZERO,
            "receiving T-1 left transit:T-1 holding {left} of lot A-1 (a negative internal balance): \
             it moved the 100 dispatched although only 60 were still in transit"
        );
    }
}

#[test]
fn receiving_a_transfer_whose_serial_left_transit_is_refused_or_applies() {
    let mut s = stocked();
    exec(&mut s, "0611", None, dispatch("RACK11", "D-12", vec![ser("R-1")]));
    exec(&mut s, "0417", None, Command::ReportLost { from: Account::Transit(tr("T-1")), items: vec![ser("R-1")], document: None });
    if let Ok(d) = run(&s, "0710", None, receive_transfer("T-1", "ARM12", vec![ser("R-1")])) {
        if let Err(e) = apply_decision(&mut s, "0710", None, d.clone()) {
            panic!("decide accepted the receipt of T-1 but its events cannot be applied: {e}; events: {:?}", d.events);
        }
    }
}

#[test]
fn receiving_a_transfer_refuses_negative_quantities() {
    let mut s = stocked();
    exec(&mut s, "0611", None, dispatch("ARM11", "D-12", vec![lots("A-1", 100)]));
    let received = vec![lots("A-1", 100), ItemRef::Lot { lot: lot("NEW-9"), quantity: Quantity::units(-5) }];
    let result = run(&s, "0710", None, receive_transfer("T-1", "ARM12", received));
    let Ok(d) = result else {
        assert!(matches!(result, Err(Rejection::Invalid(_))), "{result:?}");
        return;
    };
    // Accepted: show where it leads. The -5 "over" is approved and drives ARM12 negative.
    apply_decision(&mut s, "0710", None, d).unwrap();
    let facts = s.discrepancies[&did("D-1")].facts.clone();
    if let Ok(d) = run(&s, "0720", Some("1201"), resolve("D-1", true, Some("AMMO"))) {
        apply_decision(&mut s, "0720", Some("1201"), d).unwrap();
    }
    panic!(
        "a received quantity of -5 was accepted: it opened {:?} of {} and, once approved, \
         location ARM12 holds {} of lot NEW-9",
        facts.kind,
        facts.adjust_quantity,
        s.balance(&at_loc("ARM12"), &lot("NEW-9"))
    );
}

#[test]
fn approving_a_find_may_not_take_stock_from_another_unit() {
    // D-12 counts its armory and "finds" R-1, which the books hold on RACK11 in D-11.
    let mut s = stocked();
    exec(&mut s, "0710", None, start("ARM12", CountKind::Full));
    exec(&mut s, "0710", None, record("C-1", "ARM12", &["R-3", "R-1"], &[("A-2", 300)]));
    let evs = exec(&mut s, "0710", None, close("C-1"));
    let evs: Vec<Event> = evs.into_iter().map(|e| e.event).collect();
    let found = opened(&evs);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].1.kind, found[0].1.adjust_from.clone(), found[0].1.adjust_to.clone()),
        (DiscrepancyKind::WrongPlace, at_loc("RACK11"), at_loc("ARM12"))
    );
    // A D-12 duty officer has no authority over D-11's rack; stock leaves a unit only by transfer.
    let result = run(&s, "0720", Some("1201"), resolve("D-1", true, None));
    assert!(
        matches!(result, Err(Rejection::Refused { .. })),
        "a D-12 duty officer approved moving serial R-1 out of D-11 (location RACK11) into D-12: {result:?}"
    );
}

// ---- API tokens ---------------------------------------------------------------------------

/// A token acting for its issuer is held to its operations and unit by deciding itself, before the
/// issuer's own (wider) roles and unit; a revoked or unknown token, or one of another person, acts for nobody.
#[test]
fn a_token_is_held_to_its_operations_and_unit_whatever_its_issuer_may_do() {
    let token = |id: &str, unit: &str, ops: &[&str]| Event::TokenIssued {
        token: id.into(),
        label: "kiosk".into(),
        unit: u(unit),
        operations: ops.iter().map(|o| o.to_string()).collect(),
        secret_hash: None,
        acts_as: None,
    };
    let mut s = stocked();
    for t in [token("count-only", "D-11", &["count"]), token("recv-11", "D-11", &["receive"])] {
        push(&mut s, NOW, "0417", None, None, t).unwrap();
    }
    let by = |token: &str, actor: &str| Ctx { token: Some(token.into()), ..ctx(actor, None) };
    let rx = || receive("ARM11", vec![receive_line("RIFLE", Some("T-1"), None, 1)]);
    // The issuer (0417, an armorer of D-11) may receive at ARM11; through a count-only token, not.
    assert!(decide(&s, &ctx("0417", None), &rx()).is_ok());
    let (rule, msg) = refused(decide(&s, &by("count-only", "0417"), &rx()));
    assert_eq!(rule, "token.scope");
    assert!(msg.contains("API token count-only may not receive (it allows: count)"), "{msg}");
    // Its operation, but outside its unit.
    let (rule, msg) = refused(decide(&s, &by("recv-11", "0417"), &receive("ARM12", vec![receive_line("RIFLE", Some("T-2"), None, 1)])));
    assert_eq!(rule, "token.scope");
    assert!(msg.contains("limited to unit D-11 and may not receive at unit D-12"), "{msg}");
    assert!(decide(&s, &by("recv-11", "0417"), &rx()).is_ok());
    // A token of another issuer, an unknown token, a revoked token: refused.
    let (rule, msg) = refused(decide(&s, &by("recv-11", "0420"), &rx()));
    assert_eq!((rule, msg.contains("may not act for badge 0420")), ("token.scope", true), "{msg}");
    assert_eq!(refused(decide(&s, &by("nope", "0417"), &rx())).0, "token.scope");
    push(&mut s, NOW, "0001", None, None, Event::TokenRevoked { token: "recv-11".into(), reason: "lost".into() }).unwrap();
    assert_eq!(refused(decide(&s, &by("recv-11", "0417"), &rx())).0, "token.scope");
    // A refusal of authority, not of the facts.
    assert!(decide(&s, &by("recv-11", "0417"), &rx()).unwrap_err().is_denial());
}

/// A token issued for another badge (a person, or a device registered as staff with the roles it
/// needs) acts as that badge: an administrator, who may not move stock, gives a counter tablet a
/// token that may; it acts for nobody else, reaches no unit outside the badge's, and is held to its
/// operations.
#[test]
fn a_token_issued_for_a_badge_acts_as_that_badge() {
    let mut s = stocked();
    let mint = |id: &str, unit: &str, acts_as: &str| Command::IssueToken {
        token: id.into(),
        label: "counter tablet".into(),
        unit: u(unit),
        operations: vec!["issue".into(), "return".into()],
        secret_hash: "$argon2id$x".into(),
        acts_as: Some(b(acts_as)),
    };
    assert_refused(run(&s, "0002", None, mint("t-12", "D-12", "1201")), "permission.subtree", &["D-12"]);
    assert_refused(run(&s, "0001", None, mint("t-wide", "NORTH", "0417")), "token.scope", &["may not reach unit NORTH"]);
    let issued = events(run(&s, "0002", None, mint("tablet", "D-11", "0417")));
    assert!(matches!(&issued[0], Event::TokenIssued { acts_as: Some(a), .. } if a.as_str() == "0417"), "{issued:?}");
    exec(&mut s, "0002", None, mint("tablet", "D-11", "0417"));
    let by = |actor: &str| Ctx { token: Some("tablet".into()), ..ctx(actor, None) };
    // As the armorer: an issue goes through; the administrator who issued it cannot use it.
    assert!(decide(&s, &by("0417"), &issue("1001", None, vec![ser("R-1")])).is_ok());
    let (rule, msg) = refused(decide(&s, &by("0002"), &issue("1001", None, vec![ser("R-1")])));
    assert_eq!((rule, msg.contains("may not act for badge 0002")), ("token.scope", true), "{msg}");
    // Its operations only.
    let count = Command::StartCount { root: l("ARM11"), kind: CountKind::Full, blind: false };
    assert_refused(decide(&s, &by("0417"), &count), "token.scope", &["may not count (it allows: issue, return)"]);
    // Not for a suspended badge.
    let suspend =
        |who: &str| Command::ChangePerson { badge: b(who), change: qm_core::event::PersonChange::Suspended { reason: "leave".into() } };
    exec(&mut s, "0002", None, suspend("0420"));
    assert_refused(run(&s, "0002", None, mint("t-0420", "D-11", "0420")), "person.suspended", &["no token acts for them"]);
    // A device's work only: never setup (the administrator would act as a peer), whatever the badge's roles.
    let wider = match mint("t-wide", "D-11", "0417") {
        Command::IssueToken { token, label, unit, secret_hash, acts_as, .. } => {
            Command::IssueToken { token, label, unit, secret_hash, acts_as, operations: vec!["issue".into(), "setup".into()] }
        }
        other => other,
    };
    assert_refused(run(&s, "0002", None, wider), "token.scope", &["does a device's work only", "not setup"]);
    // The token holds only while its issuer may still issue it: suspended, the issuer's tokens stop.
    exec(&mut s, "0001", None, suspend("0002"));
    assert_refused(
        decide(&s, &by("0417"), &issue("1001", None, vec![ser("R-1")])),
        "token.scope",
        &["issued by badge 0002, who may no longer"],
    );
}

#[test]
fn a_token_mints_no_token_wider_than_itself() {
    let mut s = stocked();
    let setup_only = Event::TokenIssued {
        token: "setup-hq".into(),
        label: "provisioning".into(),
        unit: u("HQ"),
        operations: vec!["setup".into()],
        secret_hash: None,
        acts_as: None,
    };
    push(&mut s, NOW, "0001", None, None, setup_only).unwrap();
    let by = Ctx { token: Some("setup-hq".into()), ..ctx("0001", None) };
    let mint = |id: &str, ops: &[&str]| Command::IssueToken {
        token: id.into(),
        label: "scanner".into(),
        unit: u("D-11"),
        operations: ops.iter().map(|o| o.to_string()).collect(),
        secret_hash: "$argon2id$x".into(),
        acts_as: None,
    };
    // The probe's case: a setup-only token minted one allowed to issue, which then issued a rifle.
    let (rule, msg) = refused(decide(&s, &by, &mint("wide", &["setup", "issue"])));
    assert_eq!(rule, "token.scope");
    assert!(msg.contains("API token setup-hq may not issue token wide allowed to issue: it allows only setup"), "{msg}");
    // As narrow as itself, it may; the administrator signed in (no token) may mint any.
    assert!(decide(&s, &by, &mint("narrow", &["setup"])).is_ok());
    assert!(decide(&s, &ctx("0001", None), &mint("wide", &["setup", "issue"])).is_ok());
}

#[test]
fn identifiers_are_ascii_and_texts_hold_no_control_or_direction_characters() {
    // Look-alikes of G36-D11-001 (fullwidth G, Cherokee GE, Cyrillic ES) are not other serials.
    for id in ["\u{FF27}36-D11-001", "\u{13C0}36-D11-001", "G36-D11-00\u{0421}", "G36\u{0}D11", "G36\u{1b}[2J"] {
        let e = Serial::parse(id).unwrap_err().to_string();
        assert!(e.contains("use letters, digits and . _ - / only"), "{id:?}: {e}");
    }
    assert!(Serial::parse("G36-D11-001").is_ok());
    // Ledgers written before the rule still read their ids (never control characters).
    let old: Serial = serde_json::from_str("\"\u{FF27}36-D11-001\"").unwrap();
    assert_eq!(old.as_str(), "\u{FF27}36-D11-001");
    assert!(serde_json::from_str::<Serial>("\"G36\\u001b\"").is_err());
    // Names, documents, suppliers and reasons refuse NUL, ESC, CR/LF, tabs and bidirectional overrides.
    let s = stocked();
    for bad in ["Rifles\u{0}", "DN-1\u{1b}[31m", "DN-1\r\nforged line", "DN\u{202E}1-ND", "DN\u{2066}1"] {
        let c = receive("ARM11", vec![receive_line("RIFLE", Some("T-9"), None, 1)]);
        let c = match c {
            Command::Receive { to, from, lines, .. } => Command::Receive { to, from, document: bad.into(), lines },
            other => other,
        };
        assert_invalid(run(&s, "0417", None, c), "control characters (NUL, ESC, CR, LF, tab …) and text-direction overrides are refused");
        let name = Command::CreateUnit { unit: u("D-99"), name: bad.into(), parent: u("HQ") };
        assert_invalid(run(&s, "0001", None, name), "refused");
    }
}

fn open_incident(kind: IncidentKind, severity: Severity, unit: &str) -> Command {
    Command::OpenIncident {
        kind,
        severity,
        unit: u(unit),
        location: None,
        objects: Default::default(),
        summary: "door of ARM11 found unlocked at 02:00".into(),
        discovered_at: None,
    }
}

fn step(incident: &str, action: qm_core::event::IncidentAction) -> Command {
    Command::UpdateIncident { incident: IncidentId::parse(incident).unwrap(), action }
}

#[test]
fn an_incident_by_hand_goes_open_acknowledged_closed_and_reopened_by_the_rules() {
    use qm_core::event::IncidentAction::*;
    let mut s = stocked();
    // Any role that works with stock opens one in its subtree; outside it, no.
    exec(&mut s, "0417", None, open_incident(IncidentKind::Other, Severity::Medium, "D-11"));
    assert_refused(run(&s, "0417", None, open_incident(IncidentKind::Other, Severity::Low, "D-12")), "permission.subtree", &["unit D-12"]);
    assert_refused(
        run(&s, "0001", None, open_incident(IncidentKind::Other, Severity::Low, "HQ")),
        "permission.role",
        &["may not incident"],
    );
    exec(&mut s, "0417", None, step("I-1", Acknowledge));
    assert_refused(
        run(&s, "0501", None, step("I-1", Acknowledge)),
        "incident.state",
        &["incident I-1 is acknowledged", "acknowledged again"],
    );
    // A medium incident is closed by a duty officer or an inspector, not by the armorer.
    let close = || step("I-1", Close { resolution: "lock replaced; nothing missing at the count".into() });
    assert_refused(
        run(&s, "0417", None, close()),
        "incident.close_authority",
        &["badge 0417 may not close a medium incident", "duty_officer, inspector"],
    );
    exec(&mut s, "0501", None, close());
    assert_refused(run(&s, "0501", None, close()), "incident.state", &["closed again"]);
    assert_refused(run(&s, "0501", None, step("I-1", Acknowledge)), "incident.state", &["is closed"]);
    exec(&mut s, "0417", None, step("I-1", Reopen { reason: "the count found a rifle missing".into() }));
    assert_eq!(s.incidents[&IncidentId::parse("I-1").unwrap()].state, IncidentState::Open);
    assert_refused(run(&s, "0417", None, step("I-1", Reopen { reason: "again".into() })), "incident.state", &["cannot be reopened"]);
    // Escalation goes up only; a critical incident closes with a witness.
    let sideways = run(&s, "0417", None, step("I-1", Escalate { to: u("D-12"), reason: "x".into() }));
    assert!(matches!(&sideways, Err(Rejection::Invalid(m)) if m.contains("unit D-12 is not above unit D-11")), "{sideways:?}");
    exec(&mut s, "0417", None, step("I-1", Escalate { to: u("NORTH"), reason: "nobody at D-11 tonight".into() }));
    assert_eq!(s.incidents[&IncidentId::parse("I-1").unwrap()].responsible, u("NORTH"));
    exec(&mut s, "0417", None, open_incident(IncidentKind::Theft, Severity::Critical, "D-11"));
    let close2 = || step("I-2", Close { resolution: "recovered by the police".into() });
    assert_refused(run(&s, "0501", None, close2()), "two_person", &["closing critical incident I-2"]);
    assert!(run(&s, "0501", Some("0417"), close2()).is_ok());
}

#[test]
fn an_incident_about_a_discrepancy_closes_only_once_the_stock_question_is_settled() {
    use qm_core::event::IncidentAction::*;
    let mut s = stocked();
    exec(&mut s, "0417", None, Command::StartCount { root: l("RACK11"), kind: CountKind::Cycle, blind: false });
    exec(
        &mut s,
        "0417",
        None,
        Command::RecordCount { count: CountId::parse("C-1").unwrap(), location: l("RACK11"), serials: vec![], lots: vec![] },
    );
    exec(&mut s, "0417", None, Command::CloseCount { count: CountId::parse("C-1").unwrap() });
    let (id, i) = s.incidents.iter().next().map(|(k, v)| (k.clone(), v.clone())).expect("the count's discrepancy opened an incident");
    assert_eq!(i.kind, IncidentKind::CountDiscrepancy);
    let close = || step(id.as_str(), Close { resolution: "found".into() });
    let witness = (i.severity == Severity::Critical).then_some("0417");
    // Every discrepancy it is about must be settled, one after the other.
    for d in &i.objects.discrepancies {
        assert_refused(
            run(&s, "0501", witness, close()),
            "incident.stock_unsettled",
            &[&format!("discrepancy {d}, which is not resolved")],
        );
        let note = "found in the cleaning room".to_string();
        exec(&mut s, "0501", Some("0417"), Command::ResolveDiscrepancy { discrepancy: d.clone(), approve: false, note, item_type: None });
    }
    assert!(run(&s, "0501", witness, close()).is_ok());
}

#[test]
fn an_incident_nobody_acknowledges_escalates_up_the_tree_one_unit_per_period_as_the_site() {
    use qm_core::incidents::{escalation_due, overdue, SITE_ACTOR};
    let mut s = stocked();
    // High: 4 hours to acknowledge.
    exec(&mut s, "0417", None, open_incident(IncidentKind::Theft, Severity::High, "D-11"));
    let id = IncidentId::parse("I-1").unwrap();
    let opened = s.incidents[&id].opened_at;
    let at = |h: i64| opened + time::Duration::hours(h) + time::Duration::minutes(1);
    assert!(overdue(&s, opened + time::Duration::hours(3)).is_empty(), "still within its 4 hours");
    assert_eq!(escalation_due(&s, &s.incidents[&id], at(4)), Some(u("NORTH")));
    // Only the site escalates by itself; a person escalates by hand.
    let cmd = Command::EscalateOverdue { incident: id.clone() };
    assert_refused(run(&s, "0417", None, cmd.clone()), "incident.state", &["only the site escalates"]);
    let as_site =
        |s: &State, t| qm_core::decide(s, &Ctx { actor: b(SITE_ACTOR), witness: None, token: None, at: t, zone: Default::default() }, &cmd);
    let apply = |s: &mut State, d: Decision, t| {
        for e in d.events {
            let env = Envelope {
                site: "test".into(),
                seq: s.next_seq,
                at: t,
                actor: b(SITE_ACTOR),
                witness: None,
                token: None,
                idempotency_key: format!("k{}", s.next_seq),
                request: None,
                corrects: None,
                event: e,
                opens: vec![],
            };
            s.apply(&env).unwrap();
        }
    };
    let d = as_site(&s, at(4)).unwrap();
    apply(&mut s, d, at(4));
    assert_eq!(s.incidents[&id].responsible, u("NORTH"));
    // Not again in the same period; one more unit up after the next.
    assert_refused(as_site(&s, at(5)), "incident.state", &["not overdue"]);
    let d = as_site(&s, at(8)).unwrap();
    apply(&mut s, d, at(8));
    assert_eq!(s.incidents[&id].responsible, u("HQ"));
    // At the root it stays; acknowledged, it stops.
    assert!(overdue(&s, at(40)).is_empty(), "HQ has no unit above it");
    exec(&mut s, "0417", None, open_incident(IncidentKind::Other, Severity::High, "D-11"));
    exec(&mut s, "0501", None, step("I-2", qm_core::event::IncidentAction::Acknowledge));
    assert!(overdue(&s, at(40)).is_empty());
}

#[test]
fn a_count_with_many_discrepancies_opens_one_incident_about_all_of_them() {
    let s = counted();
    let d = run(&s, "0501", None, close("C-1")).unwrap();
    let discrepancies = d.events.iter().filter(|e| matches!(e, Event::DiscrepancyOpened { .. })).count();
    let opened: Vec<&Event> = d.opens.iter().map(|(_, e)| e).collect();
    assert_eq!((discrepancies, opened.len()), (5, 1), "{:?}", d.events);
    assert_eq!(d.opens[0].0, 4, "the last discrepancy's entry records the incident about all five");
    let Event::IncidentOpened { kind, objects, summary, .. } = opened[0] else { unreachable!() };
    assert_eq!(*kind, IncidentKind::CountDiscrepancy);
    assert_eq!(objects.discrepancies.len(), 5);
    assert!(summary.starts_with("5 discrepancies: discrepancy D-1 (missing serial): serial K-1"), "{summary}");
}

/// A loss or theft incident about serials closes only once the books tell each serial's fate:
/// reported lost (or written off), moved since (found and put back), or seen by a count since.
#[test]
fn a_theft_incident_closes_only_once_each_serials_fate_is_in_the_books() {
    use qm_core::event::IncidentAction::*;
    let theft = Command::OpenIncident {
        kind: IncidentKind::Theft,
        severity: Severity::High,
        unit: u("D-11"),
        location: Some(l("RACK11")),
        objects: qm_core::event::IncidentObjects { serials: vec![sn("R-1")], ..Default::default() },
        summary: "rifle R-1 gone from its rack at the shift change".into(),
        discovered_at: None,
    };
    let close = || step("I-1", Close { resolution: "settled".into() });
    let base = {
        let mut s = stocked();
        exec(&mut s, "0417", None, theft.clone());
        s
    };
    assert_refused(run(&base, "0501", None, close()), "incident.stock_unsettled", &["serial R-1", "location:RACK11", "report it lost"]);
    // Reported lost: settled.
    let mut lost = base.clone();
    exec(&mut lost, "0417", None, Command::ReportLost { from: Account::Location(l("RACK11")), items: vec![ser("R-1")], document: None });
    assert!(run(&lost, "0501", None, close()).is_ok());
    // Found where it belongs: a count sees it, and the incident closes with the books unchanged.
    let mut counted = base.clone();
    let count = CountId::parse("C-1").unwrap();
    exec(&mut counted, "0417", None, Command::StartCount { root: l("RACK11"), kind: CountKind::Cycle, blind: false });
    exec(
        &mut counted,
        "0417",
        None,
        Command::RecordCount { count: count.clone(), location: l("RACK11"), serials: vec![sn("R-1"), sn("R-2")], lots: vec![] },
    );
    assert_refused(run(&counted, "0501", None, close()), "incident.stock_unsettled", &["serial R-1"]);
    exec(&mut counted, "0417", None, Command::CloseCount { count });
    assert!(run(&counted, "0501", None, close()).is_ok(), "a closed count saw it");
    // Moved since (taken back to the rack from a person after it turned up): settled.
    let mut moved = base;
    exec(&mut moved, "0417", None, issue("1001", None, vec![ser("R-1")]));
    assert!(run(&moved, "0501", None, close()).is_ok());
    // Kinds that are not about missing stock close without it.
    let mut other = stocked();
    let Command::OpenIncident { severity, unit, location, objects, summary, discovered_at, .. } = theft else { unreachable!() };
    let accident = Command::OpenIncident { kind: IncidentKind::Accident, severity, unit, location, objects, summary, discovered_at };
    exec(&mut other, "0417", None, accident);
    assert!(run(&other, "0501", None, close()).is_ok());
}

// ---- directives (docs/directives.md) ----------------------------------------------------------

fn measure(s: &str) -> qm_core::directives::Measure {
    qm_core::directives::Measure::parse(s).unwrap()
}

/// The stocked organization with an HQ duty officer (0009) and a directive of HQ's for NORTH's
/// subtree in force from NOW for ten days, with `measures`.
fn under_directive(measures: &[&str]) -> (State, DirectiveId) {
    let mut s = stocked();
    exec(
        &mut s,
        "0001",
        None,
        Command::RegisterPerson {
            badge: b("0009"),
            name: "T. Hale".into(),
            unit: u("HQ"),
            roles: vec![Role::DutyOfficer],
            pin_hash: "x".into(),
        },
    );
    let out = exec(
        &mut s,
        "0009",
        None,
        Command::IssueDirective {
            unit: u("HQ"),
            applies_to: vec![u("NORTH")],
            title: "Visit".into(),
            text: "Tighten control so that not a single incident occurs.".into(),
            posture: "high".into(),
            starts_at: None,
            ends_at: NOW + time::Duration::days(10),
            measures: measures.iter().map(|m| measure(m)).collect(),
        },
    );
    let Event::DirectiveIssued { directive, .. } = &out[0].event else { panic!("not issued") };
    (s, directive.clone())
}

fn dstep(d: &DirectiveId, action: qm_core::event::DirectiveAction) -> Command {
    Command::UpdateDirective { directive: d.clone(), action }
}

fn at(state: &State, actor: &str, witness: Option<&str>, t: OffsetDateTime, c: &Command) -> Result<Decision, Rejection> {
    decide(state, &Ctx { token: None, actor: b(actor), witness: witness.map(b), at: t, zone: Default::default() }, c)
}

/// Tighten only, measure by measure: a relay looser than what HQ ordered is refused, a tighter one
/// passes; extending and cancelling are for the issuer or above; an extension must end later.
#[test]
fn a_lower_unit_may_tighten_a_directive_never_loosen_shorten_or_cancel_it() {
    use qm_core::event::DirectiveAction::*;
    let cases = [
        ("rounds-cap=30", "rounds-cap=60", "rounds-cap=20", "a higher cap"),
        ("issue-hours=06:00-22:00", "issue-hours=05:00-22:00", "issue-hours=07:00-21:00", "longer hours"),
        ("transfer-freeze=duty_officer", "transfer-freeze=logistics", "transfer-freeze=duty_officer", "another approver"),
        ("count=24h", "count=48h", "count=12h", "a later deadline"),
        ("count=24h/7d", "count=24h/14d", "count=24h/3d", "a longer interval"),
        ("count=24h/7d", "count=24h", "count=24h/7d", "no repeat"),
        ("transfer-review=24h/30d", "transfer-review=24h/7d", "transfer-review=12h/60d", "fewer days reviewed"),
        ("transfer-review=24h/30d", "transfer-review=36h/30d", "transfer-review=24h/30d", "a later deadline"),
        ("storage-review=24h/24h", "storage-review=24h/48h", "storage-review=24h/12h", "older readings accepted"),
        ("access-review=48h", "access-review=72h", "access-review=24h", "a later deadline"),
    ];
    for (ordered, looser, tighter, why) in cases {
        let (s, d) = under_directive(&[ordered]);
        let relay = |m: &str| dstep(&d, Relay { unit: u("NORTH"), text: "count today".into(), measures: vec![measure(m)] });
        assert_refused(run(&s, "0503", None, relay(looser)), "directive.tighten_only", &[why, looser, ordered]);
        assert!(run(&s, "0503", None, relay(tighter)).is_ok(), "{ordered}: {tighter} tightens");
    }
    // Booleans only ever tighten.
    let (s, d) = under_directive(&["rounds-cap=30"]);
    for m in ["two-person", "counter-not-keeper", "blind-counts"] {
        assert!(run(&s, "0503", None, dstep(&d, Relay { unit: u("NORTH"), text: "x".into(), measures: vec![measure(m)] })).is_ok(), "{m}");
    }
    // The region may neither end it early nor extend it; HQ may extend it, only later.
    let later = NOW + time::Duration::days(12);
    assert_refused(run(&s, "0503", None, dstep(&d, Cancel { reason: "quiet here".into() })), "directive.authority", &["below unit HQ"]);
    assert_refused(run(&s, "0503", None, dstep(&d, Extend { ends_at: later, reason: "x".into() })), "directive.authority", &["NORTH"]);
    let shorter = NOW + time::Duration::days(5);
    assert_refused(
        run(&s, "0009", None, dstep(&d, Extend { ends_at: shorter, reason: "x".into() })),
        "directive.tighten_only",
        &["must end later"],
    );
    assert!(run(&s, "0009", None, dstep(&d, Extend { ends_at: later, reason: "the visit moved".into() })).is_ok());
    // A unit's officer acknowledges for their own unit only; a department cannot relay (none below it).
    assert_refused(run(&s, "0501", None, dstep(&d, Acknowledge { unit: u("D-12") })), "permission.subtree", &["D-12"]);
    assert_refused(
        run(&s, "0501", None, dstep(&d, Relay { unit: u("D-11"), text: "x".into(), measures: vec![] })),
        "directive.scope",
        &["no unit below"],
    );
    // Not a measure, or given twice.
    assert!(qm_core::directives::Measure::parse("rounds-cap=0").is_err() && qm_core::directives::Measure::parse("curfew").is_err());
    assert!(qm_core::directives::Measure::parse("issue-hours=22:00-06:00").is_err());
}

/// The tightenings apply while the directive is in force and relax by themselves at its end; the
/// shift briefing comes before the first operation under it.
#[test]
fn a_directive_tightens_the_rules_while_in_force_and_relaxes_by_itself_at_its_end() {
    use qm_core::event::DirectiveAction::*;
    let (mut s, d) = under_directive(&["two-person", "issue-hours=06:00-22:00", "blind-counts", "transfer-freeze=duty_officer"]);
    let give = issue("1001", None, vec![ser("R-1")]);
    assert_refused(run(&s, "0417", None, give.clone()), "directive.briefing", &["badge 0417", "Visit", "qm directive brief"]);
    exec(&mut s, "0417", None, dstep(&d, Brief { unit: u("D-11") }));
    assert_refused(run(&s, "0417", None, dstep(&d, Brief { unit: u("D-11") })), "directive.state", &["briefed on directive"]);
    assert_refused(run(&s, "0417", None, give.clone()), "two_person", &["two-person posture", d.as_str()]);
    assert!(run(&s, "0417", Some("1002"), give.clone()).is_ok());
    // 23:10 is outside the issue hours.
    let night = datetime!(2025-03-12 23:10 UTC);
    assert_refused(at(&s, "0417", Some("1002"), night, &give), "directive.issue_hours", &["06:00-22:00", d.as_str()]);
    // Counts only blind; transfers only with a duty officer's approval.
    let count = Command::StartCount { root: l("ARM11"), kind: CountKind::Full, blind: false };
    assert_refused(run(&s, "0417", None, count), "directive.blind_counts", &["must be blind"]);
    exec(&mut s, "0611", None, dstep(&d, Brief { unit: u("D-11") }));
    let out = Command::Dispatch { from: l("ARM11"), to_unit: u("D-12"), items: vec![lots("A-1", 10)], document: None };
    assert_refused(run(&s, "0611", Some("0417"), out.clone()), "directive.transfer_freeze", &["duty_officer must approve"]);
    assert!(run(&s, "0611", Some("0501"), out).is_ok());
    // Outside its subtree nothing changes: SOUTH is not concerned.
    assert!(qm_core::directives::in_force_over(&s, &u("SOUTH"), NOW).is_empty());
    // Eleven days later it has ended: one person issues again, at any hour.
    let after = NOW + time::Duration::days(11) + time::Duration::hours(14);
    assert!(at(&s, "0417", None, after, &give).is_ok(), "the two-person rule stopped with the period");
    assert!(!s.effective_policy(&u("D-11"), after).0.two_person_all_movements);
    assert!(s.effective_policy(&u("D-11"), NOW).0.two_person_all_movements);
}

/// A count task is done from the books; a deadline passed unmet is recorded once by the site and
/// opens a directive_missed incident for the unit, which the incident rules escalate.
#[test]
fn a_missed_directive_deadline_is_recorded_once_and_opens_an_incident() {
    use qm_core::event::DirectiveAction::*;
    let (mut s, d) = under_directive(&["count=24h"]);
    exec(&mut s, "0501", None, dstep(&d, Acknowledge { unit: u("D-11") }));
    exec(&mut s, "0503", None, dstep(&d, Relay { unit: u("NORTH"), text: "count today".into(), measures: vec![] }));
    // D-11 counts its armory and its magazine, full and blind.
    exec(&mut s, "0502", None, dstep(&d, Brief { unit: u("D-11") }));
    for (n, root) in [(1, "ARM11"), (2, "MAG11")] {
        exec(&mut s, "0502", None, Command::StartCount { root: l(root), kind: CountKind::Full, blind: true });
        exec(&mut s, "0502", None, Command::CloseCount { count: CountId::parse(&format!("C-{n}")).unwrap() });
    }
    let dir = &s.directives[&d];
    let tasks = qm_core::directives::task_statuses(&s, dir, &u("D-11"), NOW);
    assert_eq!((tasks[0].task, tasks[0].status), ("count", "done"), "{tasks:?}");
    // A day later: D-12 neither acknowledged (12 h at high) nor counted.
    let later = NOW + time::Duration::hours(25);
    let mut missed = qm_core::directives::missed(&s, later);
    missed.sort();
    let what: Vec<(String, String)> = missed.iter().map(|(_, u, w)| (u.to_string(), w.clone())).collect();
    assert_eq!(what, [("D-12".to_string(), "acknowledge".to_string()), ("D-12".to_string(), "count".to_string())]);
    let site = Ctx { token: None, actor: b(qm_core::incidents::SITE_ACTOR), witness: None, at: later, zone: Default::default() };
    let record = Command::RecordDirectiveMissed { directive: d.clone(), unit: u("D-12"), what: "count".into() };
    assert_refused(run(&s, "0503", None, record.clone()), "directive.state", &["only the site"]);
    let decision = decide(&s, &site, &record).unwrap();
    let Some((_, Event::IncidentOpened { kind, unit, severity, .. })) = decision.opens.first() else { panic!("no incident: {decision:?}") };
    assert_eq!((*kind, unit.as_str(), *severity), (IncidentKind::DirectiveMissed, "D-12", Severity::High));
    let mut s2 = s.clone();
    for (i, e) in decision.events.into_iter().enumerate() {
        let env = Envelope {
            site: "test".into(),
            seq: s2.next_seq,
            at: later,
            actor: b(qm_core::incidents::SITE_ACTOR),
            witness: None,
            token: None,
            idempotency_key: format!("m{i}"),
            request: None,
            corrects: None,
            event: e,
            opens: decision.opens.iter().filter(|(k, _)| *k == i).map(|(_, e)| e.clone()).collect(),
        };
        s2.apply(&env).unwrap();
    }
    assert_refused(decide(&s2, &site, &record), "directive.state", &["recorded already"]);
    // A storage review needs recent readings for every magazine: MAG11 has none yet.
    let (s3, d3) = under_directive(&["storage-review=24h/24h"]);
    let sign =
        dstep(&d3, SignOff { unit: u("D-11"), task: "storage_review".into(), reviewed: vec![], note: "checked".into(), raised: vec![] });
    assert_refused(run(&s3, "0501", None, sign), "directive.review", &["MAG11 (no reading ever)"]);
    let count = dstep(&d3, SignOff { unit: u("D-11"), task: "count".into(), reviewed: vec![], note: "x".into(), raised: vec![] });
    assert_refused(run(&s3, "0501", None, count), "directive.scope", &["no task \"count\""]);
    assert_eq!(qm_core::directives::missed(&s2, later).len(), 1, "only the acknowledgment is left to record");
}

// ---- armory access control (docs/access.md) --------------------------------------------------

fn grant(loc: &str, badge: &str, role: Role, hours: &str) -> Command {
    let hours = qm_core::access::Hours::parse(hours).unwrap();
    Command::GrantAccess { location: l(loc), badge: b(badge), role, hours, reason: "shift roster".into() }
}

/// One door event: a terminal's request when `proof` is given, else an access-control system's.
fn door(
    id: &str,
    at: OffsetDateTime,
    badge: &str,
    kind: qm_core::access::DoorKind,
    proof: Option<qm_core::access::Proof>,
) -> qm_core::access::DoorInput {
    let event = qm_core::access::Passage {
        id: id.into(),
        at,
        door: "ARM11-main".into(),
        location: Some(l("ARM11")),
        card: None,
        badge: Some(b(badge)),
        kind,
        reason: String::new(),
        findings: vec![],
    };
    qm_core::access::DoorInput { event, proof }
}

/// The site records door events (or alerts) at `at`; returns the passages and the incidents opened.
fn site_records(state: &mut State, at: OffsetDateTime, command: Command) -> Result<(Vec<qm_core::access::Passage>, Vec<Event>), Rejection> {
    let ctx = Ctx { token: None, actor: b(qm_core::incidents::SITE_ACTOR), witness: None, at, zone: Default::default() };
    let d = decide(state, &ctx, &command)?;
    let passages = d.events.iter().flat_map(|e| match e {
        Event::DoorEvents { passages, .. } => passages.clone(),
        _ => vec![],
    });
    let passages: Vec<_> = passages.collect();
    let opened: Vec<Event> = d.opens.iter().map(|(_, e)| e.clone()).collect();
    for (i, event) in d.events.into_iter().enumerate() {
        let opens = d.opens.iter().filter(|(n, _)| *n == i).map(|(_, e)| e.clone()).collect();
        push_opening(state, (at, qm_core::incidents::SITE_ACTOR, None), None, event, opens).unwrap();
    }
    Ok((passages, opened))
}

fn doors(events: Vec<qm_core::access::DoorInput>) -> Command {
    Command::RecordDoorEvents { source: "terminal".into(), events, sha256: "ab".repeat(32) }
}

fn incident_kinds(opened: &[Event]) -> Vec<(IncidentKind, Severity)> {
    opened
        .iter()
        .filter_map(|e| if let Event::IncidentOpened { kind, severity, .. } = e { Some((*kind, *severity)) } else { None })
        .collect()
}

#[test]
fn rosters_are_kept_by_those_with_authority_for_armories_only() {
    let mut s = stocked();
    assert_refused(run(&s, "0417", None, grant("ARM11", "1001", Role::Armorer, "always")), "permission.role", &["roster"]);
    assert_refused(run(&s, "0720", None, grant("ARM11", "1001", Role::Armorer, "always")), "permission.subtree", &["D-11"]);
    assert_refused(run(&s, "0501", None, grant("RACK11", "1001", Role::Armorer, "always")), "access.place", &["RACK11", "rack"]);
    assert_refused(run(&s, "0501", None, grant("ARM11", "1001", Role::DutyOfficer, "always")), "access.role", &["1001", "armorer"]);
    exec(&mut s, "0501", None, grant("ARM11", "1001", Role::Armorer, "mon-fri 07:00-19:00"));
    assert_refused(run(&s, "0501", None, grant("ARM11", "1001", Role::Armorer, "mon-fri 07:00-19:00")), "access.unchanged", &["1001"]);
    let e = &s.access[&l("ARM11")].roster[&b("1001")];
    assert_eq!((e.role, e.granted_by.as_str(), e.hours.to_string().as_str()), (Role::Armorer, "0501", "mon-fri 07:00-19:00"));
    let revoke = |who: &str| Command::RevokeAccess { location: l("ARM11"), badge: b(who), reason: "moved".into() };
    assert_refused(run(&s, "0002", None, revoke("1002")), "access.roster", &["1002", "ARM11"]);
    exec(&mut s, "0002", None, revoke("1001"));
    assert!(s.access[&l("ARM11")].roster.is_empty());
}

#[test]
fn the_door_grants_roster_members_within_their_hours_and_every_other_attempt_is_an_incident() {
    use qm_core::access::{DoorKind::*, Finding, Proof};
    let mut s = stocked();
    // NOW is Wednesday 2025-03-12 09:30 UTC.
    exec(&mut s, "0501", None, grant("ARM11", "1001", Role::Armorer, "mon-fri 07:00-19:00"));
    exec(&mut s, "0501", None, grant("ARM11", "1002", Role::Armorer, "sat 08:00-12:00"));
    let (p, opened) = site_records(
        &mut s,
        NOW,
        doors(vec![
            door("t1", NOW, "1001", Entry, Some(Proof::Pin)),
            door("t2", NOW, "1002", Entry, Some(Proof::Pin)),
            door("t3", NOW, "1003", Entry, Some(Proof::Pin)),
            door("t4", NOW, "1003", Entry, Some(Proof::WrongPin)),
        ]),
    )
    .unwrap();
    assert_eq!(p.iter().map(|p| p.kind).collect::<Vec<_>>(), [Entry, Denied, Denied, Denied]);
    assert!(p[1].reason.contains("sat 08:00-12:00"), "{}", p[1].reason);
    assert!(p[2].reason.contains("not on the roster of ARM11"), "{}", p[2].reason);
    assert!(p[3].reason.contains("wrong PIN"), "{}", p[3].reason);
    assert_eq!(incident_kinds(&opened), vec![(IncidentKind::UnauthorizedAccess, Severity::Medium); 3]);
    assert_eq!(s.presence[&l("ARM11")].inside.keys().cloned().collect::<Vec<_>>(), [b("1001")]);
    // A duress PIN opens the door as the real one would, and raises the gravest incident.
    let later = NOW + time::Duration::minutes(1);
    let (p, opened) = site_records(
        &mut s,
        later,
        doors(vec![door("t5", later, "1001", Exit, Some(Proof::Pin)), door("t6", later, "1001", Entry, Some(Proof::Duress))]),
    )
    .unwrap();
    assert_eq!((p[1].kind, p[1].findings.clone()), (Entry, vec![Finding::Duress]));
    assert_eq!(incident_kinds(&opened), [(IncidentKind::Duress, Severity::Critical)]);
    // The site's access-control system decides by itself: the rules record what was wrong.
    let (p, opened) = site_records(
        &mut s,
        later,
        doors(vec![
            door("s1", later, "1002", Entry, None),
            door("s2", later, "1201", Forced, None),
            door("s3", later, "1201", HeldOpen, None),
        ]),
    )
    .unwrap();
    assert_eq!(p[0].findings, [Finding::AfterHours]);
    let kinds = incident_kinds(&opened);
    assert_eq!(
        kinds,
        [
            (IncidentKind::UnauthorizedAccess, Severity::High),
            (IncidentKind::DoorForced, Severity::High),
            (IncidentKind::DoorHeldOpen, Severity::Medium)
        ]
    );
    // Hours a policy (a directive's entry-hours) sets apply whatever the roster says.
    let mut s = stocked_with(vec![policy_ev(
        "D-11",
        PolicyRules { entry_hours: Some(qm_core::policy::IssueHours { from_min: 600, until_min: 1200 }), ..PolicyRules::default() },
    )]);
    exec(&mut s, "0501", None, grant("ARM11", "1001", Role::Armorer, "always"));
    let (p, _) = site_records(&mut s, NOW, doors(vec![door("t1", NOW, "1001", Entry, Some(Proof::Pin))])).unwrap();
    assert_eq!(p[0].kind, Denied);
    assert!(p[0].reason.contains("outside 10:00-20:00"), "{}", p[0].reason);
    // Only the site records door events.
    assert_refused(run(&s, "0501", None, doors(vec![door("x", NOW, "1001", Entry, None)])), "access.source", &["0501"]);
}

#[test]
fn under_two_person_entry_nobody_stays_alone() {
    use qm_core::access::{DoorKind::*, Proof};
    let two = PolicyRules { two_person_entry: true, partner_within_min: Some(5), ..PolicyRules::default() };
    let mut s = stocked_with(vec![policy_ev("D-11", two)]);
    for who in ["1001", "1002"] {
        exec(&mut s, "0501", None, grant("ARM11", who, Role::Armorer, "always"));
    }
    let t0 = NOW;
    site_records(&mut s, t0, doors(vec![door("a", t0, "1001", Entry, Some(Proof::Pin))])).unwrap();
    let alerts = Command::RecordAccessAlerts { location: l("ARM11") };
    // Within the partner window nothing is due; and only the site raises alerts.
    let early = site_records(&mut s, t0 + time::Duration::minutes(4), alerts.clone()).map(|_| ());
    assert!(matches!(early, Err(Rejection::Refused { rule: "access.alert", .. })), "{early:?}");
    assert_refused(run(&s, "0501", None, alerts.clone()), "access.source", &["0501"]);
    let (_, opened) = site_records(&mut s, t0 + time::Duration::minutes(6), alerts.clone()).unwrap();
    assert_eq!(incident_kinds(&opened), [(IncidentKind::LonePerson, Severity::High)]);
    assert!(matches!(
        site_records(&mut s, t0 + time::Duration::minutes(7), alerts.clone()),
        Err(Rejection::Refused { rule: "access.alert", .. })
    ));
    // A partner comes; the last two leave together (within the window): nothing more.
    let t1 = t0 + time::Duration::minutes(8);
    site_records(&mut s, t1, doors(vec![door("b", t1, "1002", Entry, Some(Proof::Pin))])).unwrap();
    assert!(s.presence[&l("ARM11")].alone_since.is_none() && s.presence[&l("ARM11")].alerted.is_empty());
    let t2 = t1 + time::Duration::minutes(30);
    site_records(&mut s, t2, doors(vec![door("c", t2, "1001", Exit, Some(Proof::Pin))])).unwrap();
    site_records(
        &mut s,
        t2 + time::Duration::minutes(2),
        doors(vec![door("d", t2 + time::Duration::minutes(2), "1002", Exit, Some(Proof::Pin))]),
    )
    .unwrap();
    assert!(matches!(
        site_records(&mut s, t2 + time::Duration::minutes(9), alerts.clone()),
        Err(Rejection::Refused { rule: "access.alert", .. })
    ));
    // One of two leaves and the other stays on alone: raised once the window has passed since the exit.
    let t3 = t2 + time::Duration::hours(1);
    site_records(&mut s, t3, doors(vec![door("e", t3, "1001", Entry, Some(Proof::Pin)), door("f", t3, "1002", Entry, Some(Proof::Pin))]))
        .unwrap();
    site_records(
        &mut s,
        t3 + time::Duration::minutes(20),
        doors(vec![door("g", t3 + time::Duration::minutes(20), "1001", Exit, Some(Proof::Pin))]),
    )
    .unwrap();
    assert!(matches!(
        site_records(&mut s, t3 + time::Duration::minutes(24), alerts.clone()),
        Err(Rejection::Refused { rule: "access.alert", .. })
    ));
    let (_, opened) = site_records(&mut s, t3 + time::Duration::minutes(26), alerts).unwrap();
    assert_eq!(incident_kinds(&opened), [(IncidentKind::LonePerson, Severity::High)]);
    let Event::IncidentOpened { summary, objects, .. } = &opened[0] else { unreachable!() };
    assert!(summary.contains("badge 1002 has been alone inside ARM11 since"), "{summary}");
    assert_eq!(objects.badges, [b("1002")]);
}

#[test]
fn a_key_goes_only_to_someone_on_the_roster_of_the_place_it_opens() {
    let mut s = stocked();
    let attrs = |a: &str| Command::SetItemTypeAttributes { item_type: it("KEY"), attributes: vec![a.into()] };
    assert_invalid(run(&s, "0001", None, attrs("opens:RACK11")), "not an armory");
    assert_invalid(
        run(&s, "0001", None, Command::SetItemTypeAttributes { item_type: it("RIFLE"), attributes: vec!["opens:ARM11".into()] }),
        "only a key",
    );
    exec(&mut s, "0001", None, attrs("opens:ARM11"));
    // A duress PIN is its holder's alone.
    let duress = |who: &str| Command::SetCredential { badge: b(who), kind: CredentialKind::Duress, hash: "$argon2id$x".into() };
    assert_refused(run(&s, "0002", None, duress("1001")), "credential.own_duress", &["1001"]);
    assert!(run(&s, "1001", None, duress("1001")).is_ok());
    assert_refused(run(&s, "0417", None, issue("1001", None, vec![ser("K-1")])), "access.key_roster", &["K-1", "ARM11", "1001"]);
    exec(&mut s, "0501", None, grant("ARM11", "1001", Role::Armorer, "always"));
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("K-1")]));
}

#[test]
fn entry_measures_read_back_tighten_the_policy_and_never_loosen() {
    use qm_core::directives::Measure;
    for text in ["two-person-entry", "two-person-entry=3m", "entry-hours=06:00-20:00", "max-inside=240m"] {
        assert_eq!(Measure::parse(text).unwrap().to_string(), text);
    }
    let p = Measure::parse("two-person-entry=3m").unwrap().as_policy();
    assert!(p.two_person_entry && p.partner_within_min == Some(3));
    assert_eq!(Measure::parse("max-inside=90").unwrap().as_policy().max_inside_min, Some(90));
    let h = Measure::parse("entry-hours=06:00-20:00").unwrap().as_policy().entry_hours.unwrap();
    assert_eq!((h.from_min, h.until_min), (360, 1200));
    // Below a stricter order from above, a looser one is refused.
    let loose = |a: &str, b: &str| Measure::parse(a).unwrap().loosens(&Measure::parse(b).unwrap());
    assert!(loose("max-inside=300m", "max-inside=240m").is_some() && loose("max-inside=60m", "max-inside=240m").is_none());
    assert!(loose("two-person-entry=10m", "two-person-entry").is_some());
    assert!(loose("entry-hours=05:00-20:00", "entry-hours=06:00-20:00").is_some());
    for bad in ["entry-hours", "entry-hours=20:00-06:00", "max-inside=0m", "max-inside", "two-person-entry=2h"] {
        assert!(Measure::parse(bad).is_err(), "{bad} should be refused");
    }
    // Both windows apply: the tighter policy is their intersection.
    let a = PolicyRules {
        entry_hours: Some(qm_core::policy::IssueHours { from_min: 360, until_min: 1200 }),
        max_inside_min: Some(60),
        ..Default::default()
    };
    let b = PolicyRules {
        entry_hours: Some(qm_core::policy::IssueHours { from_min: 480, until_min: 1320 }),
        max_inside_min: Some(30),
        ..Default::default()
    };
    let t = a.tighten(&b);
    assert_eq!((t.entry_hours.map(|h| (h.from_min, h.until_min)), t.max_inside_min), (Some((480, 1200)), Some(30)));
}

/// Decides and applies a command at `at` (the fixture's `exec` stamps NOW).
fn exec_at(state: &mut State, actor: &str, at: OffsetDateTime, command: Command) -> Vec<Event> {
    let ctx = Ctx { token: None, actor: b(actor), witness: None, at, zone: Default::default() };
    let d = decide(state, &ctx, &command).unwrap_or_else(|e| panic!("{} by {actor} was refused: {e}", command.name()));
    let opened: Vec<Event> = d.opens.iter().map(|(_, e)| e.clone()).collect();
    for (i, event) in d.events.into_iter().enumerate() {
        let opens = d.opens.iter().filter(|(n, _)| *n == i).map(|(_, e)| e.clone()).collect();
        push_opening(state, (at, actor, None), None, event, opens).unwrap();
    }
    opened
}

#[test]
fn a_key_changing_hands_calls_for_a_full_count_of_its_place() {
    let mut s = stocked();
    exec(&mut s, "0001", None, Command::SetItemTypeAttributes { item_type: it("KEY"), attributes: vec!["opens:ARM11".into()] });
    exec(&mut s, "0501", None, grant("ARM11", "1001", Role::Armorer, "always"));
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("K-1")]));
    let due = s.presence[&l("ARM11")].count_due.clone().expect("a count is due once the key changed hands");
    assert_eq!((due.serial.as_str(), due.badge.as_str(), due.why.as_str(), due.since), ("K-1", "1001", "custody", NOW));
    let h = |n: i64| NOW + time::Duration::hours(n);
    let alerts = Command::RecordAccessAlerts { location: l("ARM11") };
    assert!(matches!(site_records(&mut s, h(23), alerts.clone()), Err(Rejection::Refused { rule: "access.alert", .. })), "within 24 h");
    let (_, opened) = site_records(&mut s, h(25), alerts.clone()).unwrap();
    assert_eq!(incident_kinds(&opened), [(IncidentKind::CountMissed, Severity::High)]);
    let Event::IncidentOpened { summary, .. } = &opened[0] else { unreachable!() };
    assert!(summary.contains("no full count of ARM11 within 24 h after its key K-1 changed hands (badge 1001"), "{summary}");
    assert!(matches!(site_records(&mut s, h(25), alerts.clone()), Err(Rejection::Refused { .. })), "raised once");
    // A cycle count does not settle it; a full count of the armory, started since, does.
    let count = |s: &mut State, at: OffsetDateTime, kind: CountKind| {
        exec_at(s, "0502", at, Command::StartCount { root: l("ARM11"), kind, blind: false });
        let id = s.counts.keys().last().unwrap().clone();
        exec_at(s, "0502", at, Command::CloseCount { count: id });
    };
    count(&mut s, h(26), CountKind::Cycle);
    assert!(s.presence[&l("ARM11")].count_due.is_some());
    count(&mut s, h(27), CountKind::Full);
    assert!(s.presence[&l("ARM11")].count_due.is_none() && s.presence[&l("ARM11")].alerted.is_empty());
    // The key kept past its return (24 h): a count is due again, from then; missed, raised again.
    let (_, opened) = site_records(&mut s, h(30), alerts.clone()).unwrap();
    assert!(opened.is_empty(), "keeping it is the overdue return's incident, not this one");
    let due = s.presence[&l("ARM11")].count_due.clone().unwrap();
    assert_eq!((due.why.as_str(), due.since), ("overdue", h(24)));
    let (_, opened) = site_records(&mut s, h(49), alerts.clone()).unwrap();
    assert_eq!(incident_kinds(&opened), [(IncidentKind::CountMissed, Severity::High)]);
    // Returned: what its keeping raised ends with it.
    exec_at(&mut s, "0417", h(50), Command::return_to(b("1001"), l("SAFE11"), vec![ser("K-1")]));
    assert!(!s.presence[&l("ARM11")].alerted.iter().any(|a| a.starts_with("key_overdue:")));
}
