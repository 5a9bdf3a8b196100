//! A demo organization and a realistic day of operations, for the README's first command and for tests.

use qm_app::{AppError, Genesis, Outcome, Request, Result, Site};
use qm_backends::open_store;
use qm_core::*;
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// The PIN every demo person gets; printed by `qm demo` so a visitor can try commands.
pub const DEMO_PIN: &str = "1234";

fn id<T>(r: std::result::Result<T, IdError>) -> Result<T> {
    r.map_err(|e| AppError::Internal(e.to_string()))
}

struct Runner<'a> {
    site: &'a mut Site,
    n: u64,
}

impl Runner<'_> {
    /// Acknowledges every incident not yet acknowledged in `actor`'s subtree, as `actor`.
    fn acknowledge_incidents(&mut self, actor: &str, at: OffsetDateTime) -> Result<()> {
        let s = self.site.state();
        let unit = s.people.get(&id(Badge::parse(actor))?).map(|p| p.unit.clone());
        let mine = |i: &qm_core::state::Incident| unit.as_ref().is_some_and(|u| s.unit_within(&i.responsible, u));
        let open: Vec<IncidentId> =
            s.incidents.iter().filter(|(_, i)| i.acknowledged_at.is_none() && mine(i)).map(|(k, _)| k.clone()).collect();
        for incident in open {
            self.run(actor, None, at, Command::UpdateIncident { incident, action: qm_core::event::IncidentAction::Acknowledge })?;
        }
        Ok(())
    }

    fn run(&mut self, actor: &str, witness: Option<&str>, at: OffsetDateTime, command: Command) -> Result<Outcome> {
        self.n += 1;
        let req = Request {
            token: None,
            actor: id(Badge::parse(actor))?,
            witness: witness.map(Badge::parse).transpose().map_err(|e| AppError::Internal(e.to_string()))?,
            command,
            idempotency_key: format!("demo-{}", self.n),
            at,
        };
        self.site.execute(req)
    }
}

fn items(list: &[&str]) -> Result<Vec<ItemRef>> {
    list.iter().map(|s| ItemRef::parse(s).map_err(AppError::Internal)).collect()
}

/// The day a demo made now plays: the last whole day, yesterday (UTC). A demo of today would stamp
/// entries after now, and time only moves forward in a ledger: the first real command would be
/// refused as coming from a clock stepped back.
pub fn last_day(now: OffsetDateTime) -> OffsetDateTime {
    (now - Duration::days(1)).replace_time(time::Time::MIDNIGHT)
}

/// Creates the demo site in `db` (key next to it) and runs one realistic day; returns the site and
/// the id of the count it closed.
pub fn create(db: &str, key: &Path, day: OffsetDateTime) -> Result<(Site, CountId)> {
    let hq = id(UnitId::parse("HQ"))?;
    let genesis = Genesis {
        site: "demo.quartermaster",
        root_unit: &hq,
        root_unit_name: "National Headquarters",
        admin: &id(Badge::parse("0001"))?,
        admin_name: "A. Admin",
        admin_pin: DEMO_PIN,
        at: day - Duration::days(2),
    };
    let mut site = Site::init(open_store, db, key, &genesis)?;
    let setup_at = day - Duration::days(2);
    let mut r = Runner { site: &mut site, n: 0 };
    let admin = "0001";
    let pin = qm_app::hash_secret(DEMO_PIN)?;
    for (unit, name, parent) in
        [("NORTH", "Northern Region", "HQ"), ("D-11", "Riverside Department", "NORTH"), ("D-12", "Hilltop Department", "NORTH")]
    {
        r.run(
            admin,
            None,
            setup_at,
            Command::CreateUnit { unit: id(UnitId::parse(unit))?, name: name.into(), parent: id(UnitId::parse(parent))? },
        )?;
    }
    for (badge, name, unit, roles) in [
        ("0417", "J. Armstrong", "D-11", vec![Role::Armorer]),
        ("0420", "K. Baker", "D-11", vec![Role::MagazineKeeper]),
        ("0501", "L. Chen", "D-11", vec![Role::DutyOfficer]),
        ("0502", "M. Diaz", "NORTH", vec![Role::Inspector]),
        ("0610", "N. Evans", "D-11", vec![Role::Armorer]),
        ("0611", "O. Fischer", "D-11", vec![Role::Logistics]),
        ("0710", "P. Garcia", "D-12", vec![Role::Logistics, Role::Armorer]),
        ("1001", "Officer Q. Hughes", "D-11", vec![Role::Member]),
        ("1002", "Officer R. Ito", "D-11", vec![Role::Member]),
        ("1003", "Officer S. Jones", "D-11", vec![Role::Member]),
    ] {
        r.run(
            admin,
            None,
            setup_at,
            Command::RegisterPerson {
                badge: id(Badge::parse(badge))?,
                name: name.into(),
                unit: id(UnitId::parse(unit))?,
                roles,
                pin_hash: pin.clone(),
            },
        )?;
    }
    let loc = |l: &str| id(LocationId::parse(l));
    for (l, name, unit, parent, kind, keeper) in [
        ("D11-ARM", "Riverside armory", "D-11", None, LocationKind::Armory, None),
        ("D11-RACK-A", "Rifle rack A", "D-11", Some("D11-ARM"), LocationKind::Rack, Some("0417")),
        ("D11-RACK-B", "Pistol rack B", "D-11", Some("D11-ARM"), LocationKind::Rack, Some("0417")),
        ("D11-AMMO", "Ammunition locker", "D-11", Some("D11-ARM"), LocationKind::Locker, Some("0417")),
        ("D11-KEYS", "Key safe", "D-11", Some("D11-ARM"), LocationKind::Safe, Some("0501")),
        ("D12-ARM", "Hilltop armory", "D-12", None, LocationKind::Armory, None),
    ] {
        r.run(
            admin,
            None,
            setup_at,
            Command::CreateLocation {
                location: loc(l)?,
                name: name.into(),
                unit: id(UnitId::parse(unit))?,
                parent: parent.map(loc).transpose()?,
                kind,
                keeper: keeper.map(Badge::parse).transpose().map_err(|e| AppError::Internal(e.to_string()))?,
                magazine: None,
            },
        )?;
    }
    r.run(
        admin,
        None,
        setup_at,
        Command::CreateLocation {
            location: loc("D11-MAG-1")?,
            name: "Explosives magazine 1".into(),
            unit: id(UnitId::parse("D-11"))?,
            parent: None,
            kind: LocationKind::Magazine,
            keeper: Some(id(Badge::parse("0420"))?),
            magazine: Some(MagazineLicence {
                neq_limit_kg: 500.0,
                hazard_divisions: vec!["1.1".into(), "1.4".into()],
                compatibility_groups: vec!["D".into(), "S".into()],
                exposed_sites: vec![ExposedSite { kind: "inhabited_building".into(), distance_m: 400.0 }],
            }),
        },
    )?;
    for (t, name, kind, tracking, uom, neq, un, qual) in [
        ("RIFLE-G36", "Rifle G36, 5.56 mm", ItemKind::Weapon, Tracking::Serial, "each", 0.0, None, Some("G36")),
        ("PISTOL-P8", "Pistol P8, 9 mm", ItemKind::Weapon, Tracking::Serial, "each", 0.0, None, Some("P8")),
        ("AMMO-556", "Cartridge 5.56 mm ball", ItemKind::Ammunition, Tracking::Lot, "round", 0.0, Some("1.4S"), None),
        ("AMMO-9MM", "Cartridge 9 mm", ItemKind::Ammunition, Tracking::Lot, "round", 0.0, Some("1.4S"), None),
        ("TNT-BLOCK", "TNT demolition block 200 g", ItemKind::Explosive, Tracking::Lot, "each", 0.2, Some("1.1D"), None),
        ("KEY-ARM", "Armory key", ItemKind::Key, Tracking::Serial, "each", 0.0, None, None),
    ] {
        r.run(
            admin,
            None,
            setup_at,
            Command::DefineItemType {
                item_type: id(ItemTypeId::parse(t))?,
                name: name.into(),
                kind,
                tracking,
                unit_of_measure: uom.into(),
                neq_kg_per_unit: neq,
                un_code: un.map(String::from),
                qualification: qual.map(String::from),
            },
        )?;
    }
    let quals_until = day.date() + Duration::days(365);
    for badge in ["1001", "1002", "1003"] {
        r.run(
            admin,
            None,
            setup_at,
            Command::GrantQualification { badge: id(Badge::parse(badge))?, qualification: "G36".into(), expires: quals_until },
        )?;
        r.run(
            admin,
            None,
            setup_at,
            Command::GrantQualification { badge: id(Badge::parse(badge))?, qualification: "P8".into(), expires: quals_until },
        )?;
    }
    // Officer Jones's G36 qualification lapsed last month: the counter will refuse her a rifle.
    r.run(
        admin,
        None,
        setup_at,
        Command::GrantQualification {
            badge: id(Badge::parse("1003"))?,
            qualification: "G36".into(),
            expires: day.date() - Duration::days(30),
        },
    )?;
    drill(&mut r, setup_at, &hq, &pin)?;
    // The day before: deliveries.
    let before = day - Duration::days(1) + Duration::hours(10);
    let receipt = |t: &str, serial: Option<&str>, lot: Option<&str>, q: i64, exp: Option<time::Date>| -> Result<ReceiptLine> {
        Ok(ReceiptLine {
            item_type: id(ItemTypeId::parse(t))?,
            serial: serial.map(Serial::parse).transpose().map_err(|e| AppError::Internal(e.to_string()))?,
            lot: lot.map(LotNo::parse).transpose().map_err(|e| AppError::Internal(e.to_string()))?,
            quantity: Quantity::units(q),
            manufactured: None,
            expires: exp,
        })
    };
    let mut rifles = vec![];
    for i in 1..=12 {
        rifles.push(receipt("RIFLE-G36", Some(&format!("R-{}", 1040 + i)), None, 1, None)?);
    }
    r.run(
        "0417",
        None,
        before,
        Command::Receive { to: loc("D11-RACK-A")?, from: "National Arms Depot".into(), document: "DN-2026-0871".into(), lines: rifles },
    )?;
    let mut pistols = vec![];
    for i in 1..=8 {
        pistols.push(receipt("PISTOL-P8", Some(&format!("P-{}", 220 + i)), None, 1, None)?);
    }
    pistols.push(receipt("KEY-ARM", Some("KEY-ARM-1"), None, 1, None)?);
    r.run(
        "0417",
        None,
        before,
        Command::Receive { to: loc("D11-RACK-B")?, from: "National Arms Depot".into(), document: "DN-2026-0872".into(), lines: pistols },
    )?;
    let exp = Some(day.date() + Duration::days(900));
    r.run(
        "0417",
        None,
        before,
        Command::Receive {
            to: loc("D11-AMMO")?,
            from: "National Arms Depot".into(),
            document: "DN-2026-0873".into(),
            lines: vec![
                receipt("AMMO-556", None, Some("L556-2024-07"), 3000, exp)?,
                receipt("AMMO-9MM", None, Some("L9-2025-02"), 2000, exp)?,
                receipt("AMMO-9MM", None, Some("L9-2021-11"), 500, Some(day.date() - Duration::days(10)))?,
            ],
        },
    )?;
    r.run(
        "0420",
        Some("0501"),
        before,
        Command::Receive {
            to: loc("D11-MAG-1")?,
            from: "Explosives Supply Co.".into(),
            document: "DN-2026-0874".into(),
            lines: vec![receipt("TNT-BLOCK", None, Some("TNT-3"), 400, exp)?],
        },
    )?;
    access_morning(&mut r, day)?;
    // Shift start, 06:00: officers draw rifles, pistols and ammunition.
    let shift = day + Duration::hours(6);
    r.run("0417", None, shift, Command::Issue { to: id(Badge::parse("1001"))?, from: None, items: items(&["R-1041", "P-221"])? })?;
    r.run(
        "0417",
        None,
        shift,
        Command::Issue {
            to: id(Badge::parse("1001"))?,
            from: Some(loc("D11-AMMO")?),
            items: items(&["L556-2024-07:60", "L9-2025-02:30"])?,
        },
    )?;
    r.run(
        "0417",
        None,
        shift + Duration::minutes(2),
        Command::Issue { to: id(Badge::parse("1002"))?, from: None, items: items(&["R-1042", "P-222"])? },
    )?;
    r.run(
        "0417",
        None,
        shift + Duration::minutes(2),
        Command::Issue { to: id(Badge::parse("1002"))?, from: Some(loc("D11-AMMO")?), items: items(&["L556-2024-07:60"])? },
    )?;
    r.run(
        "0417",
        None,
        shift + Duration::minutes(4),
        Command::Issue { to: id(Badge::parse("1003"))?, from: None, items: items(&["P-223"])? },
    )?;
    // The duty officer takes the armory key for the day: the key register is the ledger too.
    r.run(
        "0501",
        None,
        shift + Duration::minutes(5),
        Command::Issue { to: id(Badge::parse("0501"))?, from: None, items: items(&["KEY-ARM-1"])? },
    )?;
    // Mid-morning: the magazine keeper draws demolition charges for training, witnessed.
    r.run(
        "0420",
        Some("0501"),
        day + Duration::hours(9),
        Command::Expend { from: Account::Location(loc("D11-MAG-1")?), items: items(&["TNT-3:12"])?, document: "TRG-ORDER-2026-33".into() },
    )?;
    // A transfer of spare rifles to the Hilltop department.
    r.run(
        "0611",
        None,
        day + Duration::hours(10),
        Command::Dispatch {
            from: loc("D11-RACK-A")?,
            to_unit: id(UnitId::parse("D-12"))?,
            items: items(&["R-1051", "R-1052"])?,
            document: Some("TR-2026-114".into()),
        },
    )?;
    r.run(
        "0710",
        None,
        day + Duration::hours(13),
        Command::ReceiveTransfer { transfer: id(TransferId::parse("T-1"))?, to: loc("D12-ARM")?, received: items(&["R-1051", "R-1052"])? },
    )?;
    // Shift end, 18:00: returns; Officer Ito fired 12 rounds on the range, recorded as expended.
    let end = day + Duration::hours(18);
    r.run("0610", None, end, Command::return_to(id(Badge::parse("1001"))?, loc("D11-RACK-A")?, items(&["R-1041"])?))?;
    r.run("0610", None, end, Command::return_to(id(Badge::parse("1001"))?, loc("D11-RACK-B")?, items(&["P-221"])?))?;
    r.run(
        "0610",
        None,
        end,
        Command::return_to(id(Badge::parse("1001"))?, loc("D11-AMMO")?, items(&["L556-2024-07:60", "L9-2025-02:30"])?),
    )?;
    r.run(
        "0610",
        None,
        end + Duration::minutes(3),
        Command::return_to(id(Badge::parse("1002"))?, loc("D11-RACK-A")?, items(&["R-1042"])?),
    )?;
    r.run("0610", None, end + Duration::minutes(3), Command::return_to(id(Badge::parse("1002"))?, loc("D11-RACK-B")?, items(&["P-222"])?))?;
    r.run(
        "0610",
        None,
        end + Duration::minutes(3),
        Command::Expend {
            from: Account::Person(id(Badge::parse("1002"))?),
            items: items(&["L556-2024-07:12"])?,
            document: "RANGE-LOG-2026-11-23".into(),
        },
    )?;
    r.run(
        "0610",
        None,
        end + Duration::minutes(4),
        Command::return_to(id(Badge::parse("1002"))?, loc("D11-AMMO")?, items(&["L556-2024-07:48"])?),
    )?;
    r.run("0610", None, end + Duration::minutes(5), Command::return_to(id(Badge::parse("1003"))?, loc("D11-RACK-B")?, items(&["P-223"])?))?;
    r.run(
        "0501",
        None,
        end + Duration::minutes(10),
        Command::return_to(id(Badge::parse("0501"))?, loc("D11-KEYS")?, items(&["KEY-ARM-1"])?),
    )?;
    // Evening: the inspector's blind full count finds R-1049 racked in B, not A, and 20 rounds short.
    access_evening(&mut r, day)?;
    let count_at = day + Duration::hours(19);
    let c = r.run("0502", None, count_at, Command::StartCount { root: loc("D11-ARM")?, kind: CountKind::Full, blind: true })?;
    let Some(Event::CountStarted { count, .. }) = c.entries.first().map(|e| e.event.clone()) else {
        return Err(AppError::Internal("no count".into()));
    };
    let rack_a: Vec<&str> = vec!["R-1041", "R-1042", "R-1043", "R-1044", "R-1045", "R-1046", "R-1047", "R-1048", "R-1050"];
    let serials = |v: &[&str]| -> Result<Vec<Serial>> { v.iter().map(|s| id(Serial::parse(s))).collect() };
    r.run(
        "0502",
        None,
        count_at,
        Command::RecordCount { count: count.clone(), location: loc("D11-RACK-A")?, serials: serials(&rack_a)?, lots: vec![] },
    )?;
    r.run(
        "0502",
        None,
        count_at,
        Command::RecordCount {
            count: count.clone(),
            location: loc("D11-RACK-B")?,
            serials: serials(&["P-221", "P-222", "P-223", "P-224", "P-225", "P-226", "P-227", "P-228", "R-1049"])?,
            lots: vec![],
        },
    )?;
    r.run(
        "0502",
        None,
        count_at,
        Command::RecordCount { count: count.clone(), location: loc("D11-KEYS")?, serials: serials(&["KEY-ARM-1"])?, lots: vec![] },
    )?;
    r.run(
        "0502",
        None,
        count_at,
        Command::RecordCount {
            count: count.clone(),
            location: loc("D11-AMMO")?,
            serials: vec![],
            lots: vec![
                (id(LotNo::parse("L556-2024-07"))?, Quantity::units(2968)),
                (id(LotNo::parse("L9-2025-02"))?, Quantity::units(2000)),
                (id(LotNo::parse("L9-2021-11"))?, Quantity::units(500)),
            ],
        },
    )?;
    r.run("0502", None, count_at + Duration::minutes(40), Command::CloseCount { count: count.clone() })?;
    // The duty officer explains the misplaced rifle (it is moved back physically, books unchanged
    // until approved) by approving the move, witnessed by the armorer.
    let first = r.site.state().counts.get(&count).and_then(|c| c.discrepancies.first().cloned());
    if let Some(d) = first {
        r.run(
            "0501",
            Some("0417"),
            count_at + Duration::hours(1),
            Command::ResolveDiscrepancy {
                discrepancy: d,
                approve: true,
                note: "rifle R-1049 found racked in B; books follow the count".into(),
                item_type: None,
            },
        )?;
    }
    r.acknowledge_incidents("0501", count_at + Duration::hours(1))?;

    site.checkpoint()?;
    Ok((site, count))
}

/// Two days ago HQ's duty officer ordered a short stocktaking drill for the Northern Region; Riverside
/// acknowledged it. It ended that morning (docs/directives.md).
fn drill(r: &mut Runner<'_>, setup_at: OffsetDateTime, hq: &UnitId, pin: &str) -> Result<()> {
    // HQ's duty officer issues directives; the Northern Region's relays them.
    for (badge, name, unit) in [("0009", "T. Hale", hq.clone()), ("0503", "U. Baptiste", id(UnitId::parse("NORTH"))?)] {
        let roles = vec![Role::DutyOfficer];
        let person = Command::RegisterPerson { badge: id(Badge::parse(badge))?, name: name.into(), unit, roles, pin_hash: pin.to_string() };
        r.run("0001", None, setup_at, person)?;
    }
    let drill_at = setup_at + Duration::hours(1);
    let drill = r.run(
        "0009",
        None,
        drill_at,
        Command::IssueDirective {
            unit: hq.clone(),
            applies_to: vec![id(UnitId::parse("NORTH"))?],
            title: "Stocktaking drill".into(),
            text: "Check the books against the racks before the new quarter; counts blind.".into(),
            posture: "heightened".into(),
            starts_at: None,
            ends_at: drill_at + Duration::hours(8),
            measures: vec![qm_core::directives::Measure::BlindCountsOnly],
        },
    )?;
    let directive = match &drill.entries[0].event {
        Event::DirectiveIssued { directive, .. } => directive.clone(),
        _ => return Err(AppError::Internal("the drill was not issued".into())),
    };
    r.run(
        "0501",
        None,
        drill_at + Duration::minutes(20),
        Command::UpdateDirective { directive, action: qm_core::event::DirectiveAction::Acknowledge { unit: id(UnitId::parse("D-11"))? } },
    )?;

    Ok(())
}

/// Who may enter Riverside's armory and magazine, and when (docs/access.md), set up before the day's
/// shift, and the morning at their doors. Nobody is alone in them (two-person entry at D-11); the armory key goes only to
/// someone on the armory's roster.
fn access_morning(r: &mut Runner<'_>, day: OffsetDateTime) -> Result<()> {
    use qm_core::access::Hours;
    let at = day + Duration::hours(5);
    let grant = |location: &str, badge: &str, role: Role, hours: &str, reason: &str| -> Result<Command> {
        Ok(Command::GrantAccess {
            location: id(LocationId::parse(location))?,
            badge: id(Badge::parse(badge))?,
            role,
            hours: Hours::parse(hours).map_err(AppError::Internal)?,
            reason: reason.into(),
        })
    };
    r.run(
        "0001",
        None,
        at,
        Command::SetItemTypeAttributes { item_type: id(ItemTypeId::parse("KEY-ARM"))?, attributes: vec!["opens:D11-ARM".into()] },
    )?;
    // Nobody alone inside; every armory, depot and magazine counted in full at least weekly.
    let rules = qm_core::policy::PolicyRules {
        two_person_entry: true,
        partner_within_min: Some(5),
        full_count_every_days: Some(7),
        ..Default::default()
    };
    r.run("0001", None, at, Command::SetPolicy { unit: id(UnitId::parse("D-11"))?, rules })?;
    for c in [
        grant("D11-ARM", "0417", Role::Armorer, "daily 05:30-21:00", "day armorer")?,
        grant("D11-ARM", "0610", Role::Armorer, "always", "armorer on call")?,
        grant("D11-ARM", "0501", Role::DutyOfficer, "always", "duty officer: counts, keys, incidents")?,
        grant("D11-ARM", "0502", Role::Inspector, "mon-fri 08:00-20:00", "regional inspections")?,
        grant("D11-MAG-1", "0420", Role::MagazineKeeper, "daily 06:00-18:00", "magazine keeper")?,
        grant("D11-MAG-1", "0610", Role::Armorer, "always", "second person for the magazine this week")?,
    ] {
        r.run("0501", None, at, c)?;
    }
    doors(r, day, &MORNING)
}

/// One door event of the demo: minutes after midnight, source, door, place, badge or card, kind, proof.
type DoorLine =
    (i64, &'static str, &'static str, Option<&'static str>, &'static str, qm_core::access::DoorKind, Option<qm_core::access::Proof>);

/// The armory opens before the shift: the armorers badge in at its terminal; the magazine keeper,
/// not on the armory's roster, is refused. The magazine's door is on the site's access-control
/// system; the keeper is early, and a delivery holds the door open.
const MORNING: [DoorLine; 9] = {
    use qm_core::access::{DoorKind::*, Proof::*};
    [
        (5 * 60 + 50, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0417", Entry, Some(Pin)),
        (5 * 60 + 52, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0610", Entry, Some(Pin)),
        (5 * 60 + 54, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0420", Entry, Some(Pin)),
        (5 * 60 + 55, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0610", Exit, Some(Pin)),
        (5 * 60 + 56, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "0420", Entry, None),
        (5 * 60 + 57, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "0610", Entry, None),
        (5 * 60 + 58, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "", HeldOpen, None),
        (5 * 60 + 59, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "", Closed, None),
        (5 * 60 + 59, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0501", Entry, Some(Pin)),
    ]
};

/// The evening: the magazine keeper leaves the armorer alone in the magazine (the site's clock
/// raises it) before he leaves too; the day armorer and the duty officer close the armory together.
const EVENING: [DoorLine; 5] = {
    use qm_core::access::{DoorKind::*, Proof::*};
    [
        (18 * 60 + 20, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "0420", Exit, None),
        (18 * 60 + 30, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0417", Exit, Some(Pin)),
        (18 * 60 + 31, "terminal-D11-ARM", "terminal:D11-ARM", Some("D11-ARM"), "0501", Exit, Some(Pin)),
        (18 * 60 + 40, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "0610", Exit, None),
        (18 * 60 + 41, "acs-main", "MAG1-DOOR", Some("D11-MAG-1"), "", Closed, None),
    ]
};

/// Records the demo's door events, one batch per source and time, as the terminal and the system do.
fn doors(r: &mut Runner<'_>, day: OffsetDateTime, lines: &[DoorLine]) -> Result<()> {
    for (i, (min, source, door, place, who, kind, proof)) in lines.iter().enumerate() {
        let at = day + Duration::minutes(*min);
        // The terminal knows the badge; the system reports its card, which its configuration maps.
        let badge = (!who.is_empty()).then(|| Badge::parse(who)).transpose().map_err(|e| AppError::Internal(e.to_string()))?;
        let card = badge.as_ref().filter(|_| proof.is_none()).map(|b| format!("C{b}"));
        let input = qm_core::access::DoorInput {
            event: qm_core::access::Passage {
                id: format!("demo-{}-{i}", min),
                at,
                door: door.to_string(),
                location: place.map(LocationId::parse).transpose().map_err(|e| AppError::Internal(e.to_string()))?,
                card,
                badge,
                kind: *kind,
                reason: String::new(),
                findings: vec![],
            },
            proof: *proof,
        };
        r.site.record_door_events(source, vec![input], None, at)?;
    }
    Ok(())
}

/// The site's clock finds the armorer alone in the magazine after the keeper left; the temporary
/// cover ends and comes off the magazine's roster.
fn access_evening(r: &mut Runner<'_>, day: OffsetDateTime) -> Result<()> {
    doors(r, day, &EVENING[..1])?;
    r.run(
        "site",
        None,
        day + Duration::minutes(18 * 60 + 26),
        Command::RecordAccessAlerts { location: id(LocationId::parse("D11-MAG-1"))? },
    )?;
    doors(r, day, &EVENING[1..])?;
    let revoke = Command::RevokeAccess {
        location: id(LocationId::parse("D11-MAG-1"))?,
        badge: id(Badge::parse("0610"))?,
        reason: "cover for the magazine ended".into(),
    };
    r.run("0501", None, day + Duration::minutes(18 * 60 + 45), revoke)?;
    Ok(())
}
