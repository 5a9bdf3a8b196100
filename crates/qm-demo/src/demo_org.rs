//! The bigger demo organization for `qm serve --demo`: a headquarters, two regions, four departments,
//! armories, an ammunition depot, two explosives magazines, some three hundred weapons and dozens of
//! lots, sixty staff, and three weeks of shifts, transfers, expenditures and counts.
//!
//! Demo shortcut: Argon2id is slow on purpose, so the PIN and the password are each hashed once and
//! the same PHC string is given to every demo person. A real site hashes each person's own secret.

use qm_app::{AppError, Genesis, Request, Result, Site};
use qm_core::event::CredentialKind;
use qm_core::*;
use std::path::Path;
use time::{Duration, OffsetDateTime, Time};

/// Every demo person's PIN (counter and witness).
pub const DEMO_PIN: &str = "1234";
/// Every demo person's web password.
pub const DEMO_PASSWORD: &str = "quartermaster";

/// Departments: (unit, name, region, badge prefix, has a magazine).
const DEPARTMENTS: [(&str, &str, &str, u32, bool); 4] = [
    ("D-11", "Riverside Department", "NORTH", 11, true),
    ("D-12", "Hilltop Department", "NORTH", 12, false),
    ("D-21", "Harbour Department", "SOUTH", 21, true),
    ("D-22", "Valley Department", "SOUTH", 22, false),
];

/// Officers per department (badges xx10 … xx17); the last one's rifle qualification has lapsed.
const OFFICERS: u32 = 8;
const RIFLES: u32 = 40;
const PISTOLS: u32 = 30;
const SHOTGUNS: u32 = 5;
const HISTORY_DAYS: i64 = 21;

/// The sign-ins `qm serve --demo` prints: (badge, who).
pub fn sign_ins() -> Vec<(&'static str, &'static str)> {
    vec![
        ("0001", "administrator, HQ (sets up units, people, tokens)"),
        ("0002", "HQ logistics (transfers; sees every unit)"),
        ("0003", "HQ inspector (counts anywhere; sees every unit)"),
        ("1101", "armorer, D-11 Riverside (the counter)"),
        ("1103", "magazine keeper, D-11 Riverside"),
        ("1104", "duty officer, D-11 Riverside (witness, resolves discrepancies)"),
        ("0004", "duty officer, HQ (issues directives)"),
        ("0101", "inspector, Northern Region"),
        ("0103", "duty officer, Northern Region (relays directives)"),
    ]
}

fn e(what: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("demo organization: {what}"))
}

fn b(s: &str) -> Result<Badge> {
    Badge::parse(s).map_err(e)
}
fn u(s: &str) -> Result<UnitId> {
    UnitId::parse(s).map_err(e)
}
fn l(s: &str) -> Result<LocationId> {
    LocationId::parse(s).map_err(e)
}
fn t(s: &str) -> Result<ItemTypeId> {
    ItemTypeId::parse(s).map_err(e)
}
fn it(list: &[String]) -> Result<Vec<ItemRef>> {
    qm_core::command::parse_items(list).map_err(e)
}

/// Collects requests and runs them in batches (group commit), failing on the first refusal.
struct Batch<'a> {
    site: &'a mut Site,
    reqs: Vec<Request>,
    n: u64,
}

impl Batch<'_> {
    /// Acknowledges, as `actor`, every incident of `unit` not yet acknowledged.
    fn acknowledge_incidents(&mut self, unit: &str, actor: &str, at: OffsetDateTime) -> Result<()> {
        let s = self.site.state();
        let open: Vec<IncidentId> =
            s.incidents.iter().filter(|(_, i)| i.unit.as_str() == unit && i.acknowledged_at.is_none()).map(|(k, _)| k.clone()).collect();
        for incident in open {
            self.add(actor, None, at, Command::UpdateIncident { incident, action: qm_core::event::IncidentAction::Acknowledge })?;
        }
        self.flush()
    }

    fn add(&mut self, actor: &str, witness: Option<&str>, at: OffsetDateTime, command: Command) -> Result<()> {
        self.n += 1;
        self.reqs.push(Request {
            token: None,
            actor: b(actor)?,
            witness: witness.map(b).transpose()?,
            command,
            idempotency_key: format!("demo-org-{}", self.n),
            at,
        });
        Ok(())
    }

    /// Runs every request added, in the order of their times (time only moves forward in a ledger;
    /// requests of the same time keep the order they were added in).
    fn flush(&mut self) -> Result<()> {
        self.flush_until(OffsetDateTime::new_utc(time::Date::MAX, Time::MIDNIGHT))
    }

    /// Runs the requests stamped at or before `until`, in the order of their times; keeps the rest.
    fn flush_until(&mut self, until: OffsetDateTime) -> Result<()> {
        self.reqs.sort_by_key(|r| r.at);
        let later = self.reqs.partition_point(|r| r.at <= until);
        let rest = self.reqs.split_off(later);
        let reqs = std::mem::replace(&mut self.reqs, rest);
        let names: Vec<String> = reqs.iter().map(|r| format!("{} by {}", r.command.name(), r.actor)).collect();
        for (i, r) in self.site.execute_batch(reqs).into_iter().enumerate() {
            if let Err(err) = r {
                return Err(e(format!("{}: {err}", names.get(i).map(String::as_str).unwrap_or("?"))));
            }
        }
        Ok(())
    }
}

/// A location to create: id, name, unit, parent, kind, keeper, magazine licence.
type LocationRow = (String, String, &'static str, Option<String>, LocationKind, Option<String>, Option<MagazineLicence>);

fn code(unit: &str) -> String {
    unit.replace('-', "")
}

/// Opens the demo database at `db`, or creates it (with its key at `key`) when it does not exist yet.
pub fn open_or_create(db: &str, key: &Path, now: OffsetDateTime) -> Result<Site> {
    if qm_backends::is_url(db) {
        // A PostgreSQL database: open our schema if it is there, create the demo in it if it is empty.
        return match Site::open(qm_backends::open_store, db, Some(key)) {
            Err(qm_app::AppError::Store(qm_store::StoreError::Missing(_))) => create(db, key, now),
            other => other,
        };
    }
    if Path::new(db).exists() {
        return Site::open(qm_backends::open_store, db, Some(key));
    }
    if let Some(dir) = Path::new(db).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| AppError::Usage(format!("cannot create {}: {err}", dir.display())))?;
    }
    create(db, key, now)
}

/// Creates the demo organization and its history, ending just before `now`.
pub fn create(db: &str, key: &Path, now: OffsetDateTime) -> Result<Site> {
    let today = now.replace_time(Time::MIDNIGHT);
    let start = today - Duration::days(HISTORY_DAYS + 1);
    let mut site = Site::init(
        qm_backends::open_store,
        db,
        key,
        &Genesis {
            site: "demo.quartermaster",
            root_unit: &u("HQ")?,
            root_unit_name: "National Headquarters",
            admin: &b("0001")?,
            admin_name: "A. Adeyemi",
            admin_pin: DEMO_PIN,
            at: start,
        },
    )?;
    let pin = qm_app::hash_secret(DEMO_PIN)?;
    let password = qm_app::hash_secret(DEMO_PASSWORD)?;
    let mut x = Batch { site: &mut site, reqs: vec![], n: 0 };
    setup(&mut x, start, &pin, &password, today)?;
    rosters(&mut x, start)?;
    x.flush()?;
    stock_up(&mut x, start + Duration::hours(10), today)?;
    x.flush()?;
    for d in (1..=HISTORY_DAYS).rev() {
        day(&mut x, today - Duration::days(d), d)?;
    }
    x.site.checkpoint()?;
    Ok(site)
}

/// HQ's and the regions' staff: logistics, inspectors, duty officers (who issue and relay directives).
fn staff_above_departments() -> Vec<(String, String, &'static str, Vec<Role>)> {
    vec![
        ("0002".into(), "B. Okafor".into(), "HQ", vec![Role::Logistics]),
        ("0003".into(), "C. Lindqvist".into(), "HQ", vec![Role::Inspector]),
        ("0004".into(), "D. Moreau".into(), "HQ", vec![Role::DutyOfficer]),
        ("0101".into(), "E. Novak".into(), "NORTH", vec![Role::Inspector]),
        ("0102".into(), "F. Haddad".into(), "NORTH", vec![Role::Logistics]),
        ("0103".into(), "I. Brandt".into(), "NORTH", vec![Role::DutyOfficer]),
        ("0201".into(), "G. Silva".into(), "SOUTH", vec![Role::Inspector]),
        ("0202".into(), "H. Tanaka".into(), "SOUTH", vec![Role::Logistics]),
        ("0203".into(), "J. Costa".into(), "SOUTH", vec![Role::DutyOfficer]),
    ]
}

/// Who may enter each department's armory and magazine, and when (docs/access.md): its armorers
/// from 06:00 to 22:00, its keeper the magazine by day, its duty officer always.
fn rosters(x: &mut Batch, at: OffsetDateTime) -> Result<()> {
    use qm_core::access::Hours;
    let hours = |h: &str| Hours::parse(h).map_err(AppError::Internal);
    for (unit, _, _, n, magazine) in DEPARTMENTS {
        let c = code(unit);
        let mut grants = vec![
            (format!("{c}-ARM"), format!("{n}01"), Role::Armorer, hours("daily 06:00-22:00")?),
            (format!("{c}-ARM"), format!("{n}02"), Role::Armorer, hours("daily 06:00-22:00")?),
            (format!("{c}-ARM"), format!("{n}04"), Role::DutyOfficer, Hours::always()),
        ];
        if magazine {
            grants.push((format!("{c}-MAG"), format!("{n}03"), Role::MagazineKeeper, hours("daily 06:00-20:00")?));
            grants.push((format!("{c}-MAG"), format!("{n}04"), Role::DutyOfficer, Hours::always()));
        }
        for (place, badge, role, hours) in grants {
            let reason = format!("{unit} roster");
            x.add("0001", None, at, Command::GrantAccess { location: l(&place)?, badge: b(&badge)?, role, hours, reason })?;
        }
    }
    Ok(())
}

fn setup(x: &mut Batch, at: OffsetDateTime, pin: &str, password: &str, today: OffsetDateTime) -> Result<()> {
    let admin = "0001";
    for (unit, name, parent) in [("NORTH", "Northern Region", "HQ"), ("SOUTH", "Southern Region", "HQ")] {
        x.add(admin, None, at, Command::CreateUnit { unit: u(unit)?, name: name.into(), parent: u(parent)? })?;
    }
    for (unit, name, region, _, _) in DEPARTMENTS {
        x.add(admin, None, at, Command::CreateUnit { unit: u(unit)?, name: name.into(), parent: u(region)? })?;
    }
    // The count schedule: every armory, depot and magazine counted in full at least every week.
    let weekly = qm_core::policy::PolicyRules { full_count_every_days: Some(7), ..Default::default() };
    x.add(admin, None, at, Command::SetPolicy { unit: u("HQ")?, rules: weekly })?;
    let mut people = staff_above_departments();
    let surnames = [
        "Abbott", "Bauer", "Castillo", "Dube", "Eriksen", "Fontaine", "Gupta", "Horvat", "Ibrahim", "Jansen", "Kowalski", "Laine",
        "Mensah", "Nakamura", "Olsen", "Petrov", "Quinn", "Rossi", "Schmidt", "Tremblay", "Uddin", "Varga", "Weber", "Xu", "Yilmaz",
        "Zhou",
    ];
    let mut si = 0;
    let mut name = |first: &str| {
        si += 1;
        format!("{first} {}", surnames[si % surnames.len()])
    };
    for (unit, _, _, n, _) in DEPARTMENTS {
        people.push((format!("{n}01"), name("Armorer"), unit, vec![Role::Armorer]));
        people.push((format!("{n}02"), name("Armorer"), unit, vec![Role::Armorer]));
        people.push((format!("{n}03"), name("Keeper"), unit, vec![Role::MagazineKeeper]));
        people.push((format!("{n}04"), name("Lt."), unit, vec![Role::DutyOfficer]));
        people.push((format!("{n}05"), name("Sgt."), unit, vec![Role::Logistics]));
        for o in 0..OFFICERS {
            // Officers only draw and return; the core has no role for that, so they are registered
            // as armorers, as in `qm demo` (see docs/server.md, "Demo").
            people.push((format!("{n}{}", 10 + o), name("Officer"), unit, vec![Role::Member]));
        }
    }
    for (badge, n, unit, roles) in &people {
        x.add(
            admin,
            None,
            at,
            Command::RegisterPerson { badge: b(badge)?, name: n.clone(), unit: u(unit)?, roles: roles.clone(), pin_hash: pin.into() },
        )?;
    }
    for badge in std::iter::once("0001".to_string()).chain(people.iter().map(|p| p.0.clone())) {
        x.add(admin, None, at, Command::SetCredential { badge: b(&badge)?, kind: CredentialKind::Password, hash: password.into() })?;
    }
    // Locations: the national depot, then per department an armory with racks, a locker and a key safe.
    let mut locs: Vec<LocationRow> = vec![
        ("HQ-DEPOT".into(), "National ammunition depot".into(), "HQ", None, LocationKind::Depot, None, None),
        ("HQ-DEPOT-BAY1".into(), "Depot bay 1".into(), "HQ", Some("HQ-DEPOT".into()), LocationKind::Room, None, None),
    ];
    for (unit, _, _, n, magazine) in DEPARTMENTS {
        let c = code(unit);
        let arm = format!("{c}-ARM");
        locs.push((arm.clone(), format!("{unit} armory"), unit, None, LocationKind::Armory, None, None));
        locs.push((
            format!("{c}-RACK-A"),
            "Long-gun rack A".into(),
            unit,
            Some(arm.clone()),
            LocationKind::Rack,
            Some(format!("{n}01")),
            None,
        ));
        locs.push((
            format!("{c}-RACK-B"),
            "Pistol rack B".into(),
            unit,
            Some(arm.clone()),
            LocationKind::Rack,
            Some(format!("{n}01")),
            None,
        ));
        locs.push((
            format!("{c}-AMMO"),
            "Ammunition locker".into(),
            unit,
            Some(arm.clone()),
            LocationKind::Locker,
            Some(format!("{n}02")),
            None,
        ));
        locs.push((format!("{c}-KEYS"), "Key safe".into(), unit, Some(arm), LocationKind::Safe, Some(format!("{n}04")), None));
        if magazine {
            let licence = MagazineLicence {
                neq_limit_kg: 500.0,
                hazard_divisions: vec!["1.1".into(), "1.4".into()],
                compatibility_groups: vec!["D".into(), "S".into()],
                exposed_sites: vec![ExposedSite { kind: "inhabited_building".into(), distance_m: 450.0 }],
            };
            locs.push((
                format!("{c}-MAG"),
                format!("{unit} explosives magazine"),
                unit,
                None,
                LocationKind::Magazine,
                Some(format!("{n}03")),
                Some(licence),
            ));
        }
    }
    for (id, n, unit, parent, kind, keeper, magazine) in locs {
        x.add(
            admin,
            None,
            at,
            Command::CreateLocation {
                location: l(&id)?,
                name: n,
                unit: u(unit)?,
                parent: parent.as_deref().map(l).transpose()?,
                kind,
                keeper: keeper.as_deref().map(b).transpose()?,
                magazine,
            },
        )?;
    }
    for (id, n, kind, tracking, uom, neq, un, qual) in [
        ("RIFLE-G36", "Rifle G36, 5.56 mm", ItemKind::Weapon, Tracking::Serial, "each", 0.0, None, Some("G36")),
        ("PISTOL-P8", "Pistol P8, 9 mm", ItemKind::Weapon, Tracking::Serial, "each", 0.0, None, Some("P8")),
        ("SHOTGUN-870", "Shotgun 870, 12 gauge", ItemKind::Weapon, Tracking::Serial, "each", 0.0, None, Some("870")),
        ("AMMO-556", "Cartridge 5.56 mm ball", ItemKind::Ammunition, Tracking::Lot, "round", 0.0, Some("1.4S"), None),
        ("AMMO-9MM", "Cartridge 9 mm", ItemKind::Ammunition, Tracking::Lot, "round", 0.0, Some("1.4S"), None),
        ("AMMO-12G", "Shotshell 12 gauge", ItemKind::Ammunition, Tracking::Lot, "round", 0.0, Some("1.4S"), None),
        ("TNT-BLOCK", "TNT demolition block 200 g", ItemKind::Explosive, Tracking::Lot, "each", 0.2, Some("1.1D"), None),
        ("PETN-CHARGE", "PETN shaped charge 500 g", ItemKind::Explosive, Tracking::Lot, "each", 0.5, Some("1.1D"), None),
        ("KEY-ARM", "Armory key", ItemKind::Key, Tracking::Serial, "each", 0.0, None, None),
    ] {
        x.add(
            admin,
            None,
            at,
            Command::DefineItemType {
                item_type: t(id)?,
                name: n.into(),
                kind,
                tracking,
                unit_of_measure: uom.into(),
                neq_kg_per_unit: neq,
                un_code: un.map(String::from),
                qualification: qual.map(String::from),
            },
        )?;
    }
    let until = today.date() + Duration::days(365);
    for (_, _, _, n, _) in DEPARTMENTS {
        for o in 0..OFFICERS {
            let badge = format!("{n}{}", 10 + o);
            for q in ["G36", "P8", "870"] {
                // The last officer's rifle qualification lapsed last week: the counter refuses them a rifle.
                let expires = if o + 1 == OFFICERS && q == "G36" { today.date() - Duration::days(7) } else { until };
                x.add(admin, None, at, Command::GrantQualification { badge: b(&badge)?, qualification: q.into(), expires })?;
            }
        }
    }
    Ok(())
}

fn line(item_type: &str, serial: Option<String>, lot: Option<&str>, quantity: i64, expires: Option<time::Date>) -> Result<ReceiptLine> {
    Ok(ReceiptLine {
        item_type: t(item_type)?,
        serial: serial.as_deref().map(|s| Serial::parse(s).map_err(e)).transpose()?,
        lot: lot.map(|s| LotNo::parse(s).map_err(e)).transpose()?,
        quantity: Quantity::units(quantity),
        manufactured: None,
        expires,
    })
}

fn stock_up(x: &mut Batch, at: OffsetDateTime, today: OffsetDateTime) -> Result<()> {
    let exp = Some(today.date() + Duration::days(900));
    let soon = Some(today.date() + Duration::days(20));
    x.add(
        "0002",
        None,
        at,
        Command::Receive {
            to: l("HQ-DEPOT-BAY1")?,
            from: "National Arms Factory".into(),
            document: "DN-HQ-0001".into(),
            lines: vec![
                line("AMMO-556", None, Some("L556-HQ-1"), 60_000, exp)?,
                line("AMMO-556", None, Some("L556-HQ-2"), 40_000, exp)?,
                line("AMMO-9MM", None, Some("L9-HQ-1"), 50_000, exp)?,
                line("AMMO-9MM", None, Some("L9-HQ-2"), 8_000, soon)?,
                line("AMMO-12G", None, Some("L12-HQ-1"), 5_000, exp)?,
            ],
        },
    )?;
    for (unit, _, _, n, magazine) in DEPARTMENTS {
        let c = code(unit);
        let armorer = format!("{n}01");
        let mut rifles = vec![];
        for i in 1..=RIFLES {
            rifles.push(line("RIFLE-G36", Some(format!("G36-{c}-{i:03}")), None, 1, None)?);
        }
        for i in 1..=SHOTGUNS {
            rifles.push(line("SHOTGUN-870", Some(format!("SG-{c}-{i:02}")), None, 1, None)?);
        }
        x.add(
            &armorer,
            None,
            at,
            Command::Receive {
                to: l(&format!("{c}-RACK-A"))?,
                from: "National Arms Factory".into(),
                document: format!("DN-{c}-0001"),
                lines: rifles,
            },
        )?;
        let mut pistols = vec![];
        for i in 1..=PISTOLS {
            pistols.push(line("PISTOL-P8", Some(format!("P8-{c}-{i:03}")), None, 1, None)?);
        }
        x.add(
            &armorer,
            None,
            at,
            Command::Receive {
                to: l(&format!("{c}-RACK-B"))?,
                from: "National Arms Factory".into(),
                document: format!("DN-{c}-0002"),
                lines: pistols,
            },
        )?;
        x.add(
            &armorer,
            None,
            at,
            Command::Receive {
                to: l(&format!("{c}-KEYS"))?,
                from: "Locksmith".into(),
                document: format!("DN-{c}-0003"),
                lines: vec![
                    line("KEY-ARM", Some(format!("KEY-{c}-1")), None, 1, None)?,
                    line("KEY-ARM", Some(format!("KEY-{c}-2")), None, 1, None)?,
                ],
            },
        )?;
        x.add(
            &armorer,
            None,
            at,
            Command::Receive {
                to: l(&format!("{c}-AMMO"))?,
                from: "National ammunition depot".into(),
                document: format!("DN-{c}-0004"),
                lines: vec![
                    line("AMMO-556", None, Some(&format!("L556-{c}-A")), 6_000, exp)?,
                    line("AMMO-9MM", None, Some(&format!("L9-{c}-A")), 4_000, exp)?,
                    line("AMMO-12G", None, Some(&format!("L12-{c}-A")), 500, exp)?,
                ],
            },
        )?;
        if magazine {
            x.add(
                &format!("{n}03"),
                Some(&format!("{n}04")),
                at,
                Command::Receive {
                    to: l(&format!("{c}-MAG"))?,
                    from: "Explosives Supply Co.".into(),
                    document: format!("DN-{c}-0005"),
                    lines: vec![
                        line("TNT-BLOCK", None, Some(&format!("TNT-{c}-1")), 600, exp)?,
                        line("PETN-CHARGE", None, Some(&format!("PETN-{c}-1")), 120, soon)?,
                    ],
                },
            )?;
        }
    }
    Ok(())
}

/// One day `d` days ago: shifts in every department, and the weekly transfers, training and counts.
fn day(x: &mut Batch, date: OffsetDateTime, d: i64) -> Result<()> {
    for (k, (unit, _, _, n, magazine)) in DEPARTMENTS.iter().enumerate() {
        let c = code(unit);
        let armorer = if d % 2 == 0 { format!("{n}01") } else { format!("{n}02") };
        let morning = date + Duration::hours(6) + Duration::minutes(k as i64);
        let evening = date + Duration::hours(18) + Duration::minutes(k as i64);
        // Four officers a day, in turn (the one with the lapsed rifle qualification draws a pistol only).
        for s in 0..4u32 {
            let o = (d as u32 * 4 + s) % OFFICERS;
            let officer = format!("{n}{}", 10 + o);
            let rifle = format!("G36-{c}-{:03}", 1 + (d as u32 * 4 + s) % RIFLES);
            let pistol = format!("P8-{c}-{:03}", 1 + (d as u32 * 4 + s) % PISTOLS);
            let mut serials = vec![pistol.clone()];
            if o + 1 != OFFICERS {
                serials.push(rifle.clone());
            }
            let at = morning + Duration::minutes(2 * s as i64);
            x.add(&armorer, None, at, Command::Issue { to: b(&officer)?, from: None, items: it(&serials)? })?;
            let lots = vec![format!("L9-{c}-A:30"), format!("L556-{c}-A:60")];
            x.add(&armorer, None, at, Command::Issue { to: b(&officer)?, from: Some(l(&format!("{c}-AMMO"))?), items: it(&lots)? })?;
            // Two days ago in D-12, one officer did not come back: an overdue return on the dashboard.
            if d == 2 && *unit == "D-12" && s == 0 {
                continue;
            }
            let back = evening + Duration::minutes(2 * s as i64);
            let spent = if d % 7 == 3 { 20 } else { 0 };
            x.add(&armorer, None, back, Command::return_to(b(&officer)?, l(&format!("{c}-RACK-B"))?, it(&[pistol])?))?;
            if o + 1 != OFFICERS {
                x.add(&armorer, None, back, Command::return_to(b(&officer)?, l(&format!("{c}-RACK-A"))?, it(&[rifle])?))?;
            }
            let returned = vec![format!("L9-{c}-A:30"), format!("L556-{c}-A:{}", 60 - spent)];
            x.add(&armorer, None, back, Command::return_to(b(&officer)?, l(&format!("{c}-AMMO"))?, it(&returned)?))?;
            if spent > 0 {
                x.add(
                    &armorer,
                    None,
                    back,
                    Command::Expend {
                        from: Account::Person(b(&officer)?),
                        items: it(&[format!("L556-{c}-A:{spent}")])?,
                        document: format!("RANGE-{c}-{d}"),
                    },
                )?;
            }
        }
        // Weekly training with explosives, witnessed by the duty officer.
        if *magazine && d % 7 == 5 {
            x.add(
                &format!("{n}03"),
                Some(&format!("{n}04")),
                date + Duration::hours(10),
                Command::Expend {
                    from: Account::Location(l(&format!("{c}-MAG"))?),
                    items: it(&[format!("TNT-{c}-1:8")])?,
                    document: format!("TRG-{c}-{d}"),
                },
            )?;
        }
    }
    // Weekly resupply from the national depot; the last one (yesterday, to D-22) is still in transit.
    if d % 7 == 1 {
        for (k, (unit, _, _, n, _)) in DEPARTMENTS.iter().enumerate() {
            let at = date + Duration::hours(8) + Duration::minutes(k as i64);
            x.add(
                "0002",
                None,
                at,
                Command::Dispatch {
                    from: l("HQ-DEPOT-BAY1")?,
                    to_unit: u(unit)?,
                    items: it(&["L556-HQ-1:2000".to_string()])?,
                    document: Some(format!("TR-{d}-{unit}")),
                },
            )?;
            if !(d == 1 && *unit == "D-22") {
                // The dispatch and what came before it; the evening's returns wait for their time.
                x.flush_until(at)?;
                let doc = format!("TR-{d}-{unit}");
                let transfer = x
                    .site
                    .state()
                    .transfers
                    .iter()
                    .find(|(_, t)| t.document.as_deref() == Some(doc.as_str()))
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| e(format!("transfer {doc} is not on the books")))?;
                x.add(
                    &format!("{n}05"),
                    None,
                    at + Duration::hours(5),
                    Command::ReceiveTransfer {
                        transfer,
                        to: l(&format!("{}-AMMO", code(unit)))?,
                        received: it(&["L556-HQ-1:2000".to_string()])?,
                    },
                )?;
            }
        }
    }
    x.flush()?;
    // Weekly counts of every armory by the region's inspector; the last one in D-11 misses a pistol.
    if d % 7 == 2 {
        for (k, (unit, _, region, _, _)) in DEPARTMENTS.iter().enumerate() {
            let inspector = if *region == "NORTH" { "0101" } else { "0201" };
            let arm = l(&format!("{}-ARM", code(unit)))?;
            // One armory after the other, each count taking an hour.
            let at = date + Duration::hours(19) + Duration::minutes(61 * k as i64);
            x.add(inspector, None, at, Command::StartCount { root: arm.clone(), kind: CountKind::Full, blind: true })?;
            x.flush()?;
            let s = x.site.state();
            let count = s
                .counts
                .iter()
                .rev()
                .find(|(_, c)| c.root == arm && !c.closed)
                .map(|(k, _)| k.clone())
                .ok_or_else(|| e("the started count is not on the books"))?;
            let mut records = vec![];
            for loc in s.location_subtree(&arm) {
                let acc = Account::Location(loc.clone());
                let mut serials: Vec<Serial> = s.serials.iter().filter(|(_, si)| si.account == acc).map(|(k, _)| k.clone()).collect();
                let lots: Vec<(LotNo, Quantity)> = s
                    .balances
                    .iter()
                    .filter(|((a, _), q)| *a == acc && q.quantity.is_positive())
                    .map(|((_, lot), q)| (lot.clone(), q.quantity))
                    .collect();
                if d == 2 && *unit == "D-11" && loc.as_str().ends_with("RACK-B") {
                    serials.pop();
                }
                records.push(Command::RecordCount { count: count.clone(), location: loc, serials, lots });
            }
            records.into_iter().try_for_each(|r| x.add(inspector, None, at + Duration::minutes(30), r))?;
            x.add(inspector, None, at + Duration::hours(1), Command::CloseCount { count })?;
            x.flush()?;
        }
        x.acknowledge_incidents("D-11", "1104", date + Duration::hours(23) + Duration::minutes(59))?;
    }
    readings(x, date, d)
}

/// Every magazine's temperature and humidity that day, every 30 minutes, recorded by its keeper at
/// the end of the day: a mild daily swing, and yesterday evening the Harbour magazine's ventilation
/// failed (above the 37.8 °C alarm from 19:00 on: an excursion still open, its incident unacknowledged).
fn readings(x: &mut Batch, date: OffsetDateTime, d: i64) -> Result<()> {
    for (unit, _, _, n, magazine) in DEPARTMENTS {
        if !magazine {
            continue;
        }
        let failed = d == 1 && unit == "D-21";
        let list = (0..48)
            .map(|i: i64| {
                let hour = i as f64 / 2.0;
                let warm = 5.0 * (1.0 - (hour - 14.0).abs() / 7.0).max(0.0);
                let hot = failed && hour >= 19.0;
                qm_core::conditions::Reading {
                    at: date + Duration::minutes(30 * i),
                    temperature_c: Some(if hot { 38.5 + (hour - 19.0) / 2.0 } else { 14.0 + warm + (i % 3) as f64 * 0.2 }),
                    humidity_pct: Some(48.0 + (i % 5) as f64),
                }
            })
            .collect();
        let keeper = b(&format!("{n}03"))?;
        let mag = l(&format!("{}-MAG", code(unit)))?;
        x.site.record_readings(
            &keeper,
            &mag,
            list,
            &format!("demo-org-readings-{unit}-{d}"),
            date + Duration::hours(23) + Duration::minutes(59) + Duration::seconds(50),
        )?;
    }
    Ok(())
}
