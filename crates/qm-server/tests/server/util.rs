//! Test helpers: a fresh site with a small organization, and the real server on port 0.

use qm_app::{Genesis, Request, Site};
use qm_core::event::CredentialKind;
use qm_core::*;
use serde_json::{json, Value};
use time::OffsetDateTime;

pub const PIN: &str = "1234";
pub const PASSWORD: &str = "correct horse";

/// The D-11 person holding each role (the actor of the permission matrix); D-12 has 12xx likewise.
pub const ROLE_BADGES: [(Role, &str); 6] = [
    (Role::Armorer, "01"),
    (Role::MagazineKeeper, "02"),
    (Role::DutyOfficer, "03"),
    (Role::Inspector, "04"),
    (Role::Logistics, "05"),
    (Role::Admin, "06"),
];

pub struct App {
    pub url: String,
    pub client: reqwest::Client,
    pub running: Option<qm_server::Running>,
    pub dir: tempfile::TempDir,
    pub db: String,
}

impl App {
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}

fn id<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.unwrap()
}

fn items(list: &[&str]) -> Vec<ItemRef> {
    list.iter()
        .map(|s| match s.split_once(':') {
            Some((l, q)) => ItemRef::Lot { lot: id(LotNo::parse(l)), quantity: id(Quantity::parse(q)) },
            None => ItemRef::Serial(id(Serial::parse(s))),
        })
        .collect()
}

/// HQ → NORTH → D-11, D-12; in each department one person per role, an officer and a second
/// magazine keeper; an armory with a rack and a magazine; rifles, a lot of ammunition, explosives.
pub fn fixture(db: &str) -> Site {
    let key = qm_app::default_key_path(std::path::Path::new(db));
    let at = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let mut site = Site::init(
        qm_backends::open_store,
        db,
        &key,
        &Genesis {
            site: "test.site",
            root_unit: &id(UnitId::parse("HQ")),
            root_unit_name: "HQ",
            admin: &id(Badge::parse("0001")),
            admin_name: "Admin",
            admin_pin: PIN,
            at,
        },
    )
    .unwrap();
    let pin = qm_app::hash_secret(PIN).unwrap();
    let pw = qm_app::hash_secret(PASSWORD).unwrap();
    let mut reqs = vec![];
    let mut n = 0;
    let mut add = |actor: &str, witness: Option<&str>, command: Command| {
        n += 1;
        reqs.push(Request {
            token: None,
            actor: id(Badge::parse(actor)),
            witness: witness.map(|w| id(Badge::parse(w))),
            command,
            idempotency_key: format!("fixture-{n}"),
            at,
        });
    };
    add("0001", None, Command::SetCredential { badge: id(Badge::parse("0001")), kind: CredentialKind::Password, hash: pw.clone() });
    add("0001", None, Command::CreateUnit { unit: id(UnitId::parse("NORTH")), name: "North".into(), parent: id(UnitId::parse("HQ")) });
    // HQ's duty officer, who issues directives (docs/directives.md).
    let officer = Command::RegisterPerson {
        badge: id(Badge::parse("0003")),
        name: "HQ duty officer".into(),
        unit: id(UnitId::parse("HQ")),
        roles: vec![Role::DutyOfficer],
        pin_hash: pin.clone(),
    };
    add("0001", None, officer);
    add("0001", None, Command::SetCredential { badge: id(Badge::parse("0003")), kind: CredentialKind::Password, hash: pw.clone() });
    for d in ["11", "12"] {
        let unit = id(UnitId::parse(&format!("D-{d}")));
        add("0001", None, Command::CreateUnit { unit: unit.clone(), name: format!("Department {d}"), parent: id(UnitId::parse("NORTH")) });
        let mut people: Vec<(String, Vec<Role>)> = ROLE_BADGES.iter().map(|(r, s)| (format!("{d}{s}"), vec![*r])).collect();
        people.push((format!("{d}10"), vec![Role::Armorer]));
        people.push((format!("{d}20"), vec![Role::MagazineKeeper]));
        for (badge, roles) in people {
            let b = id(Badge::parse(&badge));
            add(
                "0001",
                None,
                Command::RegisterPerson {
                    badge: b.clone(),
                    name: format!("Person {badge}"),
                    unit: unit.clone(),
                    roles,
                    pin_hash: pin.clone(),
                },
            );
            add("0001", None, Command::SetCredential { badge: b, kind: CredentialKind::Password, hash: pw.clone() });
        }
        for (l, kind, parent, magazine) in [
            (format!("D{d}-ARM"), LocationKind::Armory, None, None),
            (format!("D{d}-RACK"), LocationKind::Rack, Some(format!("D{d}-ARM")), None),
            (
                format!("D{d}-MAG"),
                LocationKind::Magazine,
                None,
                Some(MagazineLicence {
                    neq_limit_kg: 1000.0,
                    hazard_divisions: vec!["1.1".into()],
                    compatibility_groups: vec!["D".into()],
                    exposed_sites: vec![],
                }),
            ),
        ] {
            add(
                "0001",
                None,
                Command::CreateLocation {
                    location: id(LocationId::parse(&l)),
                    name: l.clone(),
                    unit: unit.clone(),
                    parent: parent.map(|p| id(LocationId::parse(&p))),
                    kind,
                    keeper: None,
                    magazine,
                },
            );
        }
    }
    for (t, kind, tracking, neq, un) in [
        ("RIFLE", ItemKind::Weapon, Tracking::Serial, 0.0, None),
        ("AMMO", ItemKind::Ammunition, Tracking::Lot, 0.0, Some("1.4S")),
        ("TNT", ItemKind::Explosive, Tracking::Lot, 0.2, Some("1.1D")),
    ] {
        add(
            "0001",
            None,
            Command::DefineItemType {
                item_type: id(ItemTypeId::parse(t)),
                name: t.into(),
                kind,
                tracking,
                unit_of_measure: "each".into(),
                neq_kg_per_unit: neq,
                un_code: un.map(String::from),
                qualification: None,
            },
        );
    }
    let exp = Some(at.date() + time::Duration::days(800));
    for d in ["11", "12"] {
        let line = |t: &str, serial: Option<String>, lot: Option<String>, q: i64| ReceiptLine {
            item_type: id(ItemTypeId::parse(t)),
            serial: serial.map(|s| id(Serial::parse(&s))),
            lot: lot.map(|s| id(LotNo::parse(&s))),
            quantity: Quantity::units(q),
            manufactured: None,
            expires: exp,
        };
        let rifles = (1..=20).map(|i| line("RIFLE", Some(format!("R{d}-{i:03}")), None, 1)).collect();
        add(
            &format!("{d}01"),
            None,
            Command::Receive {
                to: id(LocationId::parse(&format!("D{d}-RACK"))),
                from: "Factory".into(),
                document: "DN-1".into(),
                lines: rifles,
            },
        );
        add(
            &format!("{d}01"),
            None,
            Command::Receive {
                to: id(LocationId::parse(&format!("D{d}-ARM"))),
                from: "Factory".into(),
                document: "DN-2".into(),
                lines: vec![line("AMMO", None, Some(format!("A{d}")), 100_000), line("AMMO", None, Some(format!("LS{d}")), 100)],
            },
        );
        // The officer holds some ammunition (so returns can succeed); some is reported lost (so recoveries can).
        add(
            &format!("{d}01"),
            None,
            Command::Issue {
                to: id(Badge::parse(&format!("{d}10"))),
                from: Some(id(LocationId::parse(&format!("D{d}-ARM")))),
                items: items(&[&format!("A{d}:1000")]),
            },
        );
        add(
            &format!("{d}01"),
            None,
            Command::ReportLost {
                from: Account::Location(id(LocationId::parse(&format!("D{d}-ARM")))),
                items: items(&[&format!("A{d}:100")]),
                document: None,
            },
        );
        add(
            &format!("{d}01"),
            None,
            Command::Move {
                from: id(LocationId::parse(&format!("D{d}-ARM"))),
                to: id(LocationId::parse(&format!("D{d}-RACK"))),
                items: items(&[&format!("A{d}:10")]),
            },
        );
    }
    for r in site.execute_batch(reqs) {
        r.unwrap();
    }
    // A closed count in each department with one discrepancy (a rifle not seen), for resolutions.
    for d in ["11", "12"] {
        let inspector = id(Badge::parse(&format!("{d}04")));
        let rack = id(LocationId::parse(&format!("D{d}-RACK")));
        let o = site
            .execute(Request {
                token: None,
                actor: inspector.clone(),
                witness: None,
                command: Command::StartCount { root: rack.clone(), kind: CountKind::Cycle, blind: false },
                idempotency_key: format!("count-{d}"),
                at,
            })
            .unwrap();
        let count = o
            .entries
            .iter()
            .find_map(|e| if let Event::CountStarted { count, .. } = &e.event { Some(count.clone()) } else { None })
            .unwrap();
        let serials = (2..=20).map(|i| id(Serial::parse(&format!("R{d}-{i:03}")))).collect();
        let lots = vec![(id(LotNo::parse(&format!("A{d}"))), Quantity::units(10))];
        site.execute(Request {
            token: None,
            actor: inspector.clone(),
            witness: None,
            command: Command::RecordCount { count: count.clone(), location: rack, serials, lots },
            idempotency_key: format!("record-{d}"),
            at,
        })
        .unwrap();
        site.execute(Request {
            token: None,
            actor: inspector,
            witness: None,
            command: Command::CloseCount { count },
            idempotency_key: format!("close-{d}"),
            at,
        })
        .unwrap();
    }
    site.checkpoint().unwrap();
    site
}

/// A fresh database with the fixture, served on a free loopback port.
pub async fn spawn_app() -> App {
    spawn_app_with(|_| {}).await
}

/// As `spawn_app`, with the test's changes to the configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut qm_server::Config)) -> App {
    spawn_app_prepared(|_| {}, configure).await
}

/// The fixture site after `prepare` (run on a blocking thread: it may record much), served.
pub async fn spawn_app_prepared(prepare: impl FnOnce(&mut Site) + Send + 'static, configure: impl FnOnce(&mut qm_server::Config)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db").display().to_string();
    let site = tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            let mut site = fixture(&db);
            prepare(&mut site);
            site
        }
    })
    .await
    .unwrap();
    serve_with(dir, db, site, configure).await
}

pub async fn serve(dir: tempfile::TempDir, db: String, site: Site) -> App {
    serve_with(dir, db, site, |_| {}).await
}

pub async fn serve_with(dir: tempfile::TempDir, db: String, site: Site, configure: impl FnOnce(&mut qm_server::Config)) -> App {
    let mut config =
        qm_server::Config { addr: "127.0.0.1:0".into(), db: db.clone(), body_limit_bytes: 64 * 1024, ..qm_server::Config::default() };
    configure(&mut config);
    let running = qm_server::start(config, site).await.unwrap();
    let url = format!("http://{}", running.addr);
    App { url, client: client(), running: Some(running), dir, db }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A signed-in API session: a client with the cookie, and the CSRF token to send on writes.
pub struct Session {
    pub client: reqwest::Client,
    pub csrf: String,
    pub url: String,
}

impl Session {
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.post(format!("{}{path}", self.url)).header("x-csrf-token", &self.csrf).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    /// A write with extra headers and a raw body (a CSV, an Idempotency-Key), with the CSRF token.
    pub async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: String) -> (u16, Value) {
        let mut r = self.client.post(format!("{}{path}", self.url)).header("x-csrf-token", &self.csrf).body(body);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(format!("{}{path}", self.url)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// The newest ledger lines, as the session's holder sees them.
pub async fn log(s: &Session, limit: usize) -> Vec<Value> {
    let (status, v) = s.get(&format!("/api/log?limit={limit}")).await;
    assert_eq!(status, 200, "{v}");
    v.as_array().unwrap().clone()
}

pub async fn sign_in(app: &App, badge: &str) -> Session {
    let client = client();
    let r = client.post(format!("{}/api/session", app.url)).json(&json!({"badge": badge, "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), 200, "sign-in of {badge}");
    let v: Value = r.json().await.unwrap();
    Session { client, csrf: v["csrf"].as_str().unwrap().to_string(), url: app.url.clone() }
}
