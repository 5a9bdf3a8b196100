//! Browser tests: the web UI in headless Chromium through WebDriver (Debian's chromium and
//! chromium-driver). Sign-in, a counter issue and return typed like a USB scanner, a refusal, a count
//! from start to reconciliation, the HQ dashboard, the explosives-safety pages; screenshots go to target/screenshots/.

use crate::util::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use thirtyfour::prelude::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ENTER: &str = "\u{e007}";

/// chromedriver on a free loopback port, killed by PID when dropped.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromedriver() -> Driver {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: the browser tests need Debian's chromium and chromium-driver \
             (`apt-get install -y --no-install-recommends chromium chromium-driver`; scripts/test-all installs them)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port, _profile: tempfile::tempdir().unwrap() }
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser(d: &Driver) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).unwrap();
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1280,900",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", d._profile.path().display())).unwrap();
    WebDriver::new(format!("http://127.0.0.1:{}", d.port), caps).await.unwrap()
}

async fn shot(b: &WebDriver, name: &str) {
    b.screenshot(&shots().join(format!("{name}.png"))).await.unwrap();
}

async fn sign_in_as(b: &WebDriver, url: &str, badge: &str, password: &str) {
    b.delete_all_cookies().await.unwrap();
    b.goto(format!("{url}/signin")).await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(badge).await.unwrap();
    b.find(By::Id("password")).await.unwrap().send_keys(format!("{password}{ENTER}")).await.unwrap();
    // Under load (other tests share the two cores) the next page can take a while: poll, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while b.find(By::Css("header .who")).await.is_err() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if b.find(By::Css("header .who")).await.is_err() {
        shot(b, &format!("failed-signin-{badge}")).await;
        let body = b.find(By::Css("main")).await.unwrap().text().await.unwrap_or_default();
        panic!("sign-in of {badge} did not open a page: {body}");
    }
    ready(b).await;
}

/// Waits until the page's script has wired up the keyboard helpers (call it once an element of the
/// new page was found after a navigation, so that Enter is not taken by the browser's own submit).
async fn ready(b: &WebDriver) {
    b.find(By::Css("body[data-ready]")).await.unwrap();
}

/// Waits (up to 10 s) until the element's text contains `needle`: after a click the old page may
/// still be on screen for a moment.
async fn wait_for(b: &WebDriver, css: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = b.find(By::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                ready(b).await;
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {needle:?}; last: {last:?}");
}

/// Reloads `page` until `css` shows `needle` (what a background task writes: bounded, 10 s).
async fn wait_for_reload(b: &WebDriver, page: &str, css: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        b.goto(page).await.unwrap();
        if let Ok(e) = b.find(By::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                ready(b).await;
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{page}: {css} never showed {needle:?}; last: {last:?}");
}

/// Waits (up to 5 s) until the element with `id` has the focus (the badge is checked over the
/// network before the focus moves on), and returns it.
async fn focused(b: &WebDriver, id: &str) -> WebElement {
    let mut last = None;
    for _ in 0..50 {
        let e = b.active_element().await.unwrap();
        last = e.id().await.unwrap();
        if last.as_deref() == Some(id) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(b, &format!("failed-focus-{id}")).await;
    let check = b.find(By::Id("badge-check")).await.ok();
    let said = match check {
        Some(c) => c.text().await.unwrap_or_default(),
        None => String::new(),
    };
    panic!("the focus never reached #{id}; it is on {last:?} (badge check: {said:?})");
}

async fn text(b: &WebDriver, css: &str) -> String {
    b.find(By::Css(css)).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn the_web_ui_in_chromium() {
    let started = std::time::Instant::now();
    let driver = start_chromedriver();
    // The demo organization, as `qm serve --demo` makes it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db").display().to_string();
    let site = tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            let now = time::OffsetDateTime::now_utc();
            let mut site = qm_demo::demo_org::create(&db, &qm_app::default_key_path(std::path::Path::new(&db)), now).unwrap();
            // A day of temperature readings in D-11's magazine, with a hot afternoon (an excursion).
            let readings = (0..=96)
                .map(|i: i64| qm_core::conditions::Reading {
                    at: now - time::Duration::minutes(24 * 60 - 15 * i),
                    temperature_c: Some(if (50..=62).contains(&i) { 39.0 + (i - 50) as f64 / 3.0 } else { 18.0 + (i % 12) as f64 / 2.0 }),
                    humidity_pct: Some(55.0),
                })
                .collect();
            let keeper = qm_core::Badge::parse("1103").unwrap();
            let mag = qm_core::LocationId::parse("D11-MAG").unwrap();
            // 1500 more TNT blocks (300 kg) bring D-11's magazine to 95 % of its licence: a warning.
            site.execute(qm_app::Request {
                token: None,
                actor: keeper.clone(),
                witness: Some(qm_core::Badge::parse("1104").unwrap()),
                command: qm_core::Command::Receive {
                    to: mag.clone(),
                    from: "Explosives Supply Co.".into(),
                    document: "DN-D11-0099".into(),
                    lines: vec![qm_core::ReceiptLine {
                        item_type: qm_core::ItemTypeId::parse("TNT-BLOCK").unwrap(),
                        serial: None,
                        lot: Some(qm_core::LotNo::parse("TNT-D11-2").unwrap()),
                        quantity: qm_core::Quantity::units(1500),
                        manufactured: None,
                        expires: Some(now.date() + time::Duration::days(60)),
                    }],
                },
                idempotency_key: "browser-tnt".into(),
                at: now - time::Duration::minutes(1),
            })
            .unwrap();
            site.record_readings(&keeper, &mag, readings, "browser-readings", now).unwrap();
            // Detonators (1.4S) in a magazine built under the detonator provisions: footnote 4 in play.
            let admin = qm_core::Badge::parse("0001").unwrap();
            let det = qm_core::ItemTypeId::parse("DET-S").unwrap();
            let setup = [
                qm_core::Command::DefineItemType {
                    item_type: det.clone(),
                    name: "Detonators, non-electric".into(),
                    kind: qm_core::ItemKind::Component,
                    tracking: qm_core::Tracking::Lot,
                    unit_of_measure: "each".into(),
                    neq_kg_per_unit: 0.001,
                    un_code: Some("1.4S".into()),
                    qualification: None,
                },
                qm_core::Command::SetItemTypeAttributes { item_type: det.clone(), attributes: vec!["detonator".into()] },
                qm_core::Command::SetLocationSafety { location: mag.clone(), flags: vec!["detonator_provisions".into()], conditions: None },
            ];
            for (i, c) in setup.into_iter().enumerate() {
                site.execute(qm_app::Request::new(admin.clone(), c, format!("browser-det-{i}"), now)).unwrap();
            }
            let lines = vec![qm_core::ReceiptLine {
                item_type: det,
                serial: None,
                lot: Some(qm_core::LotNo::parse("DET-D11-1").unwrap()),
                quantity: qm_core::Quantity::units(50),
                manufactured: None,
                expires: None,
            }];
            let receive =
                qm_core::Command::Receive { to: mag.clone(), from: "Explosives Supply Co.".into(), document: "DN-D11-0100".into(), lines };
            let mut r = qm_app::Request::new(keeper.clone(), receive, "browser-det-receive".into(), now);
            r.witness = Some(qm_core::Badge::parse("1104").unwrap());
            site.execute(r).unwrap();
            // The site's time zone: pages show times in it, with its abbreviation.
            site.execute(qm_app::Request {
                token: None,
                actor: qm_core::Badge::parse("0001").unwrap(),
                witness: None,
                command: qm_core::Command::SetTimeZone { zone: "Europe/Paris".into() },
                idempotency_key: "browser-zone".into(),
                at: now,
            })
            .unwrap();
            site
        }
    })
    .await
    .unwrap();
    eprintln!("demo organization created in {:?}", started.elapsed());
    // Notifications: each unit's duty officers in the web UI, and a webhook whose receiver is down
    // (a port nobody listens on), so the administrator's outbox shows a failing delivery.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rules = dir.path().join("notifications.toml");
    std::fs::write(
        &rules,
        format!(
            "[webhooks.soc]\nurl = \"http://127.0.0.1:{closed}/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\n\
             [[notify]]\nunit = \"*\"\nroles = [\"duty_officer\"]\n\n[[notify]]\nunit = \"HQ\"\nwebhooks = [\"soc\"]\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rules, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rules = rules.display().to_string();
    // Headquarters witnesses three departments' sites (docs/sites.md).
    let kids = crate::sites::children(dir.path());
    let kids_file = kids.file.clone();
    let app = serve_with(dir, db, site, move |c| {
        c.children = Some(kids_file);
        c.notifications = Some(rules);
        c.notify_every_ms = 200;
        c.due_every_ms = 200;
    })
    .await;
    let url = app.url.clone();
    let pw = qm_demo::demo_org::DEMO_PASSWORD;
    let b = browser(&driver).await;

    // Sign-in: a wrong password is refused on the page; the right one opens the dashboard.
    b.goto(format!("{url}/signin")).await.unwrap();
    shot(&b, "01-signin").await;
    b.find(By::Id("badge")).await.unwrap().send_keys("1101").await.unwrap();
    b.find(By::Id("password")).await.unwrap().send_keys(format!("not-it{ENTER}")).await.unwrap();
    shot(&b, "01b-signin-refused").await;
    let refused = wait_for(&b, ".msg.err", "not accepted").await;
    assert!(refused.contains("badge or password not accepted"), "{refused}");
    // Five wrong passwords by one person at the armory terminal lock that badge only, and the
    // message says so; the next person at the same terminal signs in (below, 1101).
    for i in 0..5 {
        b.goto(format!("{url}/signin")).await.unwrap();
        b.find(By::Id("badge")).await.unwrap().send_keys("1105").await.unwrap();
        b.find(By::Id("password")).await.unwrap().send_keys(format!("wrong-{i}{ENTER}")).await.unwrap();
        wait_for(&b, ".msg.err", "refused").await;
    }
    b.goto(format!("{url}/signin")).await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys("1105").await.unwrap();
    b.find(By::Id("password")).await.unwrap().send_keys(format!("{pw}{ENTER}")).await.unwrap();
    let locked = wait_for(&b, ".msg.err", "failed attempts").await;
    assert!(locked.contains("for badge 1105") && locked.contains("others may sign in"), "{locked}");
    shot(&b, "01c-signin-one-badge-waits").await;
    eprintln!("signed-in page checks at {:?}", started.elapsed());
    sign_in_as(&b, &url, "1101", pw).await;
    assert!(text(&b, "h1").await.contains("Dashboard"));
    shot(&b, "02-dashboard-armorer").await;

    // Counter: an issue, typed as a scanner types (each scan ends with Enter).
    b.goto(format!("{url}/counter")).await.unwrap();
    b.find(By::Id("location")).await.unwrap().send_keys("D11-AMMO").await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1110{ENTER}")).await.unwrap();
    // Enter after the badge shows who it is and moves to the scan field (the location is given).
    let scan = focused(&b, "scan").await;
    assert!(text(&b, "#badge-check").await.contains("Officer"), "the badge is named as soon as it is scanned");
    for item in ["G36-D11-040", "L9-D11-A:30"] {
        scan.send_keys(format!("{item}{ENTER}")).await.unwrap();
    }
    assert_eq!(b.find(By::Id("items")).await.unwrap().value().await.unwrap().unwrap_or_default().lines().count(), 2);
    shot(&b, "03-counter-scanned").await;
    scan.send_keys(ENTER).await.unwrap();
    let will = wait_for(&b, "#will", "issue").await;
    assert!(will.contains("issue: serial G36-D11-040"), "{will}");
    ready(&b).await;
    shot(&b, "04-counter-preview").await;
    b.find(By::Id("confirm-button")).await.unwrap().send_keys(ENTER).await.unwrap();
    let done = wait_for(&b, "#done", "Issued").await;
    assert!(done.contains("Issued"), "{done}");
    ready(&b).await;
    shot(&b, "05-counter-issued").await;

    // The return of the rifle to its rack.
    b.find(By::Css("input[name=mode][value=return]")).await.unwrap().click().await.unwrap();
    let loc = b.find(By::Id("location")).await.unwrap();
    loc.clear().await.unwrap();
    loc.send_keys("D11-RACK-A").await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1110{ENTER}")).await.unwrap();
    let scan = focused(&b, "scan").await;
    scan.send_keys(format!("G36-D11-040{ENTER}")).await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    wait_for(&b, "#will", "return: serial G36-D11-040").await;
    ready(&b).await;
    b.find(By::Id("confirm-button")).await.unwrap().send_keys(ENTER).await.unwrap();
    wait_for(&b, "#done", "Returned").await;

    // A refusal explained before confirming: officer 1117's rifle qualification has lapsed.
    b.goto(format!("{url}/counter")).await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1117{ENTER}")).await.unwrap();
    // Said as soon as the badge is scanned; an issue without a location asks for the place next.
    let warned = wait_for(&b, "#badge-check", "expired").await;
    assert!(warned.contains("qualification") && warned.contains("will be refused"), "{warned}");
    focused(&b, "location").await.send_keys(ENTER).await.unwrap();
    let scan = focused(&b, "scan").await;
    scan.send_keys(format!("G36-D11-039{ENTER}")).await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    let refusal = wait_for(&b, "#refusal", "rule").await;
    assert!(refusal.contains("rule qualification"), "{refusal}");
    assert!(b.find(By::Id("confirm-button")).await.is_err(), "a refused issue offers no confirmation");
    shot(&b, "06-counter-refusal").await;

    // Explosives need a second person: the witness sees what they confirm, in full and calmly (a
    // request, not a refusal: no "refused", no warning colour). Nothing is recorded here.
    b.goto(format!("{url}/counter")).await.unwrap();
    b.find(By::Id("location")).await.unwrap().send_keys("D11-MAG").await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1104{ENTER}")).await.unwrap();
    let scan = focused(&b, "scan").await;
    scan.send_keys(format!("TNT-D11-1:2{ENTER}")).await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    let step = wait_for(&b, "#witness-step", "second person").await;
    assert!(step.contains("2 of lot TNT-D11-1 (TNT-BLOCK) from D11-MAG D-11 explosives magazine") && step.contains("Why:"), "{step}");
    assert!(!step.to_lowercase().contains("refused") && b.find_all(By::Css("#refusal, .msg.warn, .msg.err")).await.unwrap().is_empty());
    assert!(text(&b, "#preview-card h2").await.contains("1104"));
    assert!(b.find(By::Id("witness_badge")).await.is_ok());
    shot(&b, "06b-counter-witness-step").await;
    the_counter_from_a_scanner(&b, &url).await;

    // Stock, an item's history, the event log, labels.
    b.goto(format!("{url}/stock")).await.unwrap();
    // Names beside ids (the officer who holds a rifle, the rack), and totals per item type.
    let stock = text(&b, "#stock").await;
    assert!(stock.contains("person:1110 Officer") && stock.contains("location:D11-AMMO Ammunition locker"), "{stock}");
    let totals = text(&b, "#stock-totals").await;
    assert!(totals.contains("Item type") && totals.lines().count() >= 3, "{totals}");
    shot(&b, "07-stock").await;
    b.goto(format!("{url}/items/G36-D11-040")).await.unwrap();
    assert!(text(&b, "#where").await.contains("location:D11-RACK-A"));
    shot(&b, "08-item-history").await;
    b.goto(format!("{url}/log")).await.unwrap();
    let log = text(&b, "table").await;
    assert!(log.contains(" CET") || log.contains(" CEST"), "the log shows times in the site's zone: {log}");
    shot(&b, "09-log").await;
    b.goto(format!("{url}/labels?location=D11-RACK-B")).await.unwrap();
    assert!(b.find_all(By::Css(".label svg")).await.unwrap().len() > 10);
    shot(&b, "10-labels").await;

    // A count from start to reconciliation: the region's inspector counts D-12's key safe.
    sign_in_as(&b, &url, "0101", pw).await;
    b.goto(format!("{url}/counts")).await.unwrap();
    b.find(By::Id("count-location")).await.unwrap().send_keys("D12-KEYS").await.unwrap();
    b.find(By::Css("input[name=blind]")).await.unwrap().click().await.unwrap();
    b.find(By::Id("start")).await.unwrap().click().await.unwrap();
    wait_for(&b, "#count-state", "open").await;
    ready(&b).await;
    let scan = b.find(By::Id("scan")).await.unwrap();
    scan.send_keys(format!("KEY-D12-1{ENTER}")).await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    wait_for(&b, ".msg.ok", "Recorded").await;
    ready(&b).await;
    // The place stays the one recorded and the scan field has the focus for the next item.
    let at = b.find(By::Id("record-location")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(at.as_deref(), Some("D12-KEYS"));
    focused(&b, "scan").await;
    shot(&b, "11-count-recorded").await;
    b.find(By::Id("close")).await.unwrap().click().await.unwrap();
    wait_for(&b, "#count-state", "closed").await;
    let disc = text(&b, ".discrepancy").await;
    assert!(disc.contains("missing serial") && disc.contains("KEY-D12-2"), "{disc}");
    // The inspector counts; resolving is a duty officer's: no form for them.
    assert!(b.find_all(By::Css("form.resolve")).await.unwrap().is_empty(), "{disc}");
    assert!(text(&b, ".unresolved").await.contains("a duty officer of the unit resolves it"));
    shot(&b, "12-count-reconciled").await;
    let count_url = b.current_url().await.unwrap().to_string();

    // The department's duty officer explains it, witnessed by an armorer.
    sign_in_as(&b, &url, "1204", pw).await;
    b.goto(count_url).await.unwrap();
    // Nothing is chosen for them: approving a missing key would write it off the books.
    for radio in b.find_all(By::Css("form.resolve input[name=decision]")).await.unwrap() {
        assert!(radio.prop("checked").await.unwrap().as_deref() != Some("true"), "a decision is preselected");
    }
    b.find(By::Css("form.resolve input[name=note]")).await.unwrap().send_keys("key with the locksmith for repair").await.unwrap();
    b.find(By::Css("form.resolve input[value=explain]")).await.unwrap().click().await.unwrap();
    b.find(By::Css("form.resolve input[name=witness_badge]")).await.unwrap().send_keys("1201").await.unwrap();
    b.find(By::Css("form.resolve input[name=witness_pin]"))
        .await
        .unwrap()
        .send_keys(format!("{}{ENTER}", qm_demo::demo_org::DEMO_PIN))
        .await
        .unwrap();
    wait_for(&b, ".resolved", "explained by badge 1204, witness 1201").await;

    // The HQ dashboard: every unit, its open discrepancies, overdue returns and transfers in transit.
    sign_in_as(&b, &url, "0002", pw).await;
    let units = text(&b, "#units").await;
    for u in ["HQ", "NORTH", "SOUTH", "D-11", "D-12", "D-21", "D-22"] {
        assert!(units.contains(u), "{u} missing from the dashboard: {units}");
    }
    assert!(b.find_all(By::Css("#units td.bad")).await.unwrap().len() >= 3, "{units}");
    assert!(units.contains("Magazines near a limit"), "{units}");
    // The last full count of every place, and the next due; the magazines were never counted.
    let last = text(&b, "#last-counts").await;
    assert!(last.contains("D11-ARM") && last.contains("C-") && last.contains("D21-MAG") && last.contains("never"), "{last}");
    // The demo's open excursion: the Harbour magazine.
    assert!(text(&b, "#excursions-open").await.contains("D21-MAG"));
    shot(&b, "13-dashboard-hq").await;
    b.find(By::Id("last-counts")).await.unwrap().scroll_into_view().await.unwrap();
    shot(&b, "13b-dashboard-last-counts").await;
    // Counts newest first (C-13 no longer between C-1 and C-2), each with its unit, place, times and
    // result; the schedule of full counts per place, overdue ones first and on the dashboard.
    let due = text(&b, "#counts-due").await;
    assert!(due.contains("places overdue"), "{due}");
    assert!(text(&b, "#excursions-open").await.contains("open excursions"));
    // Staff over the whole subtree: headquarters' row counts everyone (more than a department's).
    let mut staff = vec![];
    for row in [1, 2] {
        staff.push(text(&b, &format!("#units tbody tr:nth-child({row}) td:nth-child(8)")).await.trim().parse::<usize>().unwrap());
    }
    let (hq_staff, next) = (staff[0], staff[1]);
    assert!(hq_staff > next && hq_staff >= 40, "HQ {hq_staff}, the next row {next}");
    assert!(b.find_all(By::Css("#units tbody td.n a")).await.unwrap().len() >= 20, "every number links to its list");
    b.goto(format!("{url}/counts")).await.unwrap();
    let opened: Vec<String> = {
        let mut v = vec![];
        for c in b.find_all(By::Css("#counts tbody td:nth-child(6)")).await.unwrap() {
            v.push(c.text().await.unwrap());
        }
        v
    };
    assert!(opened.len() >= 10 && opened.windows(2).all(|w| w[0] >= w[1]), "newest first: {opened:?}");
    let head = text(&b, "#counts thead").await;
    for col in ["Unit", "Place", "Kind", "Counter", "Opened", "Closed", "Result"] {
        assert!(head.contains(col), "{head}");
    }
    let schedule = text(&b, "#count-schedule").await;
    assert!(schedule.contains("7 days") && schedule.contains("D12-ARM") && schedule.contains("never"), "{schedule}");
    let first_due = text(&b, "#count-schedule tbody tr:first-child").await;
    assert!(due.contains("0 places overdue") || first_due.contains("overdue"), "overdue first: {first_due}");
    shot(&b, "50-counts-newest-first-and-schedule").await;
    // The menu fits the role: HQ logistics has no counter it cannot use; the QD calculator has a page.
    let menu = text(&b, "header nav").await;
    assert!(!menu.contains("Counter") && menu.contains("Counts") && menu.contains("QD calculator"), "{menu}");
    b.goto(format!("{url}/qd?hd=1.1&neq_kg=1000")).await.unwrap();
    let qd = text(&b, "#qd-distances").await;
    assert!(qd.contains("Exposed site") && qd.lines().count() >= 3, "{qd}");
    shot(&b, "51-qd-calculator").await;
    // An officer who only draws weapons sees what they hold, the directives and the dashboard; not
    // the unit's log, nor a button to sign checkpoints (the log is refused, and the attempt recorded).
    sign_in_as(&b, &url, "1110", pw).await;
    let menu = text(&b, "header nav").await;
    assert_eq!(menu.split_whitespace().collect::<Vec<_>>(), ["Dashboard", "Custody", "Directives"], "{menu}");
    b.goto(format!("{url}/log")).await.unwrap();
    let refused = text(&b, "main").await;
    assert!(refused.contains("may not see the unit's log") && refused.contains("permission.role"), "{refused}");
    assert!(b.find_all(By::Css("form[action='/log/checkpoint']")).await.unwrap().is_empty());
    shot(&b, "52-member-menu-and-log-refused").await;
    sign_in_as(&b, &url, "0002", pw).await;
    b.goto(format!("{url}/transfers")).await.unwrap();
    assert!(text(&b, "#transfers").await.contains("D-22"));
    shot(&b, "14-transfers").await;

    // Explosives safety: every magazine against its limits; a magazine's storage conditions (the
    // chart is an <img> of its own SVG route, so the CSP stays strict); lots; the daily summary.
    b.goto(format!("{url}/magazines")).await.unwrap();
    ready(&b).await;
    let mags = text(&b, "#magazines").await;
    assert!(mags.contains("D11-MAG") && mags.contains("licence"), "{mags}");
    assert!(
        mags.contains("footnote 4 (detonator provisions of 177.835(g)): DET-S 1.4S with TNT-BLOCK 1.1D — met"),
        "the footnote in play: {mags}"
    );
    assert!(!mags.contains("footnote 5"), "cartridges are not fireworks: {mags}");
    assert!(!b.find_all(By::Css("#magazines meter")).await.unwrap().is_empty());
    assert!(text(&b, "#near-limit").await.contains("D11-MAG"), "the warning within 10 % of a limit");
    shot(&b, "15-magazines").await;
    b.goto(format!("{url}/conditions")).await.unwrap();
    ready(&b).await;
    b.find(By::Css("#cond-location option[value='D11-MAG']")).await.unwrap().click().await.unwrap();
    b.find(By::Id("cond-show")).await.unwrap().click().await.unwrap();
    wait_for(&b, "#excursions", "temperature").await;
    let mut width = 0;
    for _ in 0..50 {
        let r =
            b.execute("const i = document.getElementById('cond-chart'); return i.complete ? i.naturalWidth : 0;", vec![]).await.unwrap();
        width = r.json().as_i64().unwrap_or(0);
        if width > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(width > 0, "the chart did not load");
    assert!(text(&b, "#excursions").await.contains("TNT-D11-1"));
    shot(&b, "16-conditions").await;
    b.find(By::Id("excursions")).await.unwrap().scroll_into_view().await.unwrap();
    shot(&b, "16b-conditions-excursions").await;
    // HQ logistics does not record readings; D-11's keeper enters one by hand (no sensor there).
    assert!(b.find_all(By::Id("reading")).await.unwrap().is_empty(), "no reading form for logistics");
    sign_in_as(&b, &url, "1103", pw).await;
    b.goto(format!("{url}/conditions?location=D11-MAG")).await.unwrap();
    ready(&b).await;
    b.find(By::Id("reading-temp")).await.unwrap().send_keys("21,5").await.unwrap();
    b.find(By::Id("reading-hum")).await.unwrap().send_keys("55").await.unwrap();
    b.find(By::Id("reading-record")).await.unwrap().click().await.unwrap();
    wait_for(&b, ".msg.ok", "Reading recorded").await;
    shot(&b, "53-reading-entered-by-hand").await;
    b.goto(format!("{url}/log")).await.unwrap();
    assert!(text(&b, "main").await.contains("D11-MAG"), "the reading's digest is in the ledger");
    sign_in_as(&b, &url, "0002", pw).await;
    b.goto(format!("{url}/lots?filter=expiring&days=365")).await.unwrap();
    ready(&b).await;
    shot(&b, "17-lots").await;
    b.goto(format!("{url}/dsmt?magazine=D11-MAG")).await.unwrap();
    ready(&b).await;
    assert!(b.find(By::Id("dsmt-csv")).await.is_ok());
    shot(&b, "18-dsmt").await;

    // Hardening, as a user meets it: an inspector (no counter role) previews an issue to an officer
    // who holds ammunition: refused by role, and the page shows nothing of what the officer holds.
    sign_in_as(&b, &url, "0101", pw).await;
    b.goto(format!("{url}/counter")).await.unwrap();
    ready(&b).await;
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1110{ENTER}")).await.unwrap();
    focused(&b, "location").await.send_keys(ENTER).await.unwrap();
    let scan = focused(&b, "scan").await;
    scan.send_keys(format!("G36-D11-039{ENTER}")).await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    let refusal = wait_for(&b, "#refusal", "rule").await;
    assert!(refusal.contains("rule permission.role"), "{refusal}");
    let page = text(&b, "main").await;
    assert!(!page.contains("Holds now") && !page.contains("L9-D11-A"), "holdings shown to an inspector: {page}");
    shot(&b, "19-counter-no-holdings-for-inspector").await;
    // A link cannot make a page say what its sender wants.
    b.goto(format!("{url}/log?msg=Your+badge+is+locked%3A+call+555-0100")).await.unwrap();
    ready(&b).await;
    assert!(!text(&b, "main").await.contains("555-0100"), "a banner from the URL");

    // Incidents: the region's inspector opens one by hand for D-11, acknowledges it, adds a note;
    // the list shows it with its clock.
    b.goto(format!("{url}/incidents")).await.unwrap();
    ready(&b).await;
    b.find(By::Css("#open-incident summary")).await.unwrap().click().await.unwrap();
    let form = b.find(By::Css("#open-incident form")).await.unwrap();
    form.find(By::Css("select[name=kind]")).await.unwrap().send_keys("other").await.unwrap();
    let unit = form.find(By::Css("input[name=unit]")).await.unwrap();
    unit.clear().await.unwrap();
    unit.send_keys("D-11").await.unwrap();
    b.find(By::Id("incident-summary")).await.unwrap().send_keys("Armory door of D-11 found unlocked at 02:10").await.unwrap();
    shot(&b, "20-incident-open-form").await;
    b.find(By::Id("open-incident-button")).await.unwrap().click().await.unwrap();
    let title = wait_for(&b, "#incident-title", "Incident I-").await;
    assert!(title.contains("other") && title.contains("open"), "{title}");
    assert!(text(&b, "main").await.contains("opened."), "the outcome is shown once");
    b.find(By::Id("acknowledge")).await.unwrap().click().await.unwrap();
    wait_for(&b, "#incident-state", "acknowledged").await;
    assert!(text(&b, "#incident-clocks").await.contains("acknowledge"));
    b.find(By::Id("note-text")).await.unwrap().send_keys(format!("lock replaced; counted, nothing missing{ENTER}")).await.unwrap();
    wait_for(&b, "main table.log", "note: lock replaced").await;
    shot(&b, "21-incident-page").await;
    b.goto(format!("{url}/incidents")).await.unwrap();
    ready(&b).await;
    let list = text(&b, "#incidents").await;
    assert!(list.contains("Armory door of D-11 found unlocked"), "{list}");
    // The badge beside "Incidents" counts those nobody has acknowledged yet (filled by the page's script).
    let mut badge = String::new();
    for _ in 0..50 {
        badge = b.find(By::Id("incident-badge")).await.unwrap().text().await.unwrap_or_default();
        if !badge.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unacknowledged = list.matches("open").count();
    assert!(badge.parse::<usize>().is_ok_and(|n| n >= 1 && n <= unacknowledged), "badge {badge:?} for the list {list}");
    shot(&b, "22-incidents").await;

    // The D-11 duty officer was told of it in the web UI; the site's administrator sees the
    // webhook to the security desk failing, with its error, and may try it again.
    sign_in_as(&b, &url, "1104", pw).await;
    b.goto(format!("{url}/notifications")).await.unwrap();
    let mine = wait_for_reload(&b, &format!("{url}/notifications"), "#my-notifications", "other at D-11").await;
    assert!(mine.contains("opened"), "{mine}");
    shot(&b, "23-notifications-officer").await;
    // Live: an armorer opens another incident at D-11 over the API; the officer's open page shows it
    // without a reload.
    let armorer = client();
    let r = armorer.post(format!("{url}/api/session")).json(&serde_json::json!({"badge": "1101", "password": pw})).send().await.unwrap();
    let csrf = r.json::<serde_json::Value>().await.unwrap()["csrf"].as_str().unwrap().to_string();
    let body =
        serde_json::json!({"kind": "accident", "severity": "medium", "unit": "D-11", "summary": "round discharged at the clearing barrel"});
    let r = armorer.post(format!("{url}/api/incidents")).header("x-csrf-token", csrf).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut live = String::new();
    for _ in 0..150 {
        live = text(&b, "#my-notifications").await;
        if live.contains("accident at D-11") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live.contains("accident at D-11") && live.contains("other at D-11"), "the list did not update by itself: {live}");
    sign_in_as(&b, &url, "0001", pw).await;
    let outbox = wait_for_reload(&b, &format!("{url}/notifications"), "#outbox", "failing").await;
    assert!(outbox.contains("webhook") && outbox.contains("soc"), "{outbox}");
    assert!(text(&b, "#outbox-failing").await.contains("could not be delivered"));
    shot(&b, "24-notifications-outbox").await;
    people_in_chromium(&b, &url).await;
    crate::sites::sync_children(&kids, &url, &app.db).await;
    sites_in_chromium(&b, &url).await;
    // Access control first: the directive's part ends under a simulated clock days ahead.
    access_in_chromium(&b, &url).await;
    eprintln!("access control in the browser done at {:?}", started.elapsed());
    a_directive_in_chromium(&b, &url).await;
    eprintln!("directives in the browser done at {:?}", started.elapsed());

    b.quit().await.unwrap();
    drop(driver);
    app.stop().await;
}

/// The people page as headquarters' administrator uses it (signed in as 0001): D-11's staff with
/// roles, qualifications and their expiry, holdings; a clerk added and given another role; an
/// officer suspended (and refused at sign-in) and restored — each recorded.
async fn people_in_chromium(b: &WebDriver, url: &str) {
    b.goto(format!("{url}/people?unit=D-11")).await.unwrap();
    let staff = wait_for(b, "#people", "1110").await;
    assert!(staff.contains("G36 until") && staff.contains("(expired)"), "1117's lapsed G36 is marked: {staff}");
    assert!(!staff.contains("D-12"), "only D-11 and below: {staff}");
    shot(b, "54-people").await;
    // A new armorer, added from the page.
    let form = b.find(By::Id("person-add")).await.unwrap();
    form.find(By::Css("input[name=badge]")).await.unwrap().send_keys("1190").await.unwrap();
    form.find(By::Css("input[name=name]")).await.unwrap().send_keys("Clerk Novak").await.unwrap();
    form.find(By::Css("select[name=unit] option[value='D-11']")).await.unwrap().click().await.unwrap();
    form.find(By::Css("input[name=role][value=logistics]")).await.unwrap().click().await.unwrap();
    form.find(By::Css("input[name=pin]")).await.unwrap().send_keys("4826").await.unwrap();
    form.find(By::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for(b, ".msg.ok", "Badge 1190 registered").await;
    assert!(text(b, "#people").await.contains("Clerk Novak"));
    // Another role for the new clerk.
    b.find(By::Css("#person-roles input[name=role][value=inspector]")).await.unwrap().click().await.unwrap();
    b.find(By::Css("#person-roles button")).await.unwrap().click().await.unwrap();
    wait_for(b, ".msg.ok", "given the roles chosen").await;
    assert!(text(b, "#people").await.contains("inspector, logistics") || text(b, "#people").await.contains("logistics, inspector"));
    // Suspended: the page says so, and the person's sign-in is refused with the reason.
    b.goto(format!("{url}/people/1117")).await.unwrap();
    ready(b).await;
    b.find(By::Css("#person-suspend input[name=reason]"))
        .await
        .unwrap()
        .send_keys(format!("weapon handling inquiry{ENTER}"))
        .await
        .unwrap();
    let status = wait_for(b, "#people", "suspended").await;
    assert!(status.contains("by 0001: weapon handling inquiry"), "{status}");
    assert!(b.find(By::Id("person-restore")).await.is_ok() && b.find(By::Id("person-suspend")).await.is_err());
    shot(b, "55-person-suspended").await;
    let r = client()
        .post(format!("{url}/api/session"))
        .json(&serde_json::json!({"badge": "1117", "password": qm_demo::demo_org::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a suspended person may not sign in");
    // Restored.
    b.find(By::Css("#person-restore input[name=reason]")).await.unwrap().send_keys(format!("inquiry closed{ENTER}")).await.unwrap();
    wait_for(b, ".msg.ok", "restored").await;
    b.goto(format!("{url}/log")).await.unwrap();
    let log = wait_for(b, "table", "badge 1117 restored").await;
    assert!(log.contains("badge 1117 suspended: weapon handling inquiry") && log.contains("badge 1190 now holds the roles"), "{log}");
}

/// The counter as a scanner works it (signed in as D-11's armorer): an unknown badge said at once, a
/// serial scanned twice kept once, a lot label asking for its quantity, every bad line named, a mixed
/// return sending the rifle to its rack and the rounds to the locker, the scans kept across an
/// expired session, and a refusal page that keeps the menu.
async fn the_counter_from_a_scanner(b: &WebDriver, url: &str) {
    b.goto(format!("{url}/counter")).await.unwrap();
    ready(b).await;
    let badge = b.find(By::Id("badge")).await.unwrap();
    badge.send_keys(format!("9999{ENTER}")).await.unwrap();
    let unknown = wait_for(b, "#badge-check", "9999").await;
    assert!(unknown.contains("not found"), "{unknown}");
    assert_eq!(focused(b, "badge").await.id().await.unwrap().as_deref(), Some("badge"), "an unknown badge keeps the focus");
    shot(b, "06c-counter-unknown-badge").await;
    badge.clear().await.unwrap();
    badge.send_keys(format!("1110{ENTER}")).await.unwrap();
    focused(b, "location").await.send_keys(format!("D11-AMMO{ENTER}")).await.unwrap();
    let scan = focused(b, "scan").await;
    scan.send_keys(format!("G36-D11-040{ENTER}")).await.unwrap();
    scan.send_keys(format!("G36-D11-040{ENTER}")).await.unwrap();
    assert!(text(b, "#scan-notice").await.contains("already on the list; it is kept once"));
    scan.send_keys(format!("L9-D11-A{ENTER}")).await.unwrap();
    assert!(text(b, "#qty-row").await.contains("L9-D11-A"), "a lot label asks for its quantity");
    focused(b, "qty").await.send_keys(format!("30{ENTER}")).await.unwrap();
    let scan = focused(b, "scan").await;
    let items = b.find(By::Id("items")).await.unwrap().value().await.unwrap().unwrap_or_default();
    assert_eq!(items.lines().collect::<Vec<_>>(), ["G36-D11-040", "L9-D11-A:30"]);
    shot(b, "06d-counter-scanner").await;
    // Typed lines with two mistakes: both are named, not only the first.
    let list = b.find(By::Id("items")).await.unwrap();
    list.send_keys("NOPE-1\nL9-D11-A:x\n").await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    let wrong = wait_for(b, ".msg.err", "line 3").await;
    assert!(wrong.contains("line 3 \"NOPE-1\"") && wrong.contains("line 4 \"L9-D11-A:x\""), "{wrong}");
    shot(b, "06e-counter-every-error").await;
    let list = b.find(By::Id("items")).await.unwrap();
    list.clear().await.unwrap();
    list.send_keys("G36-D11-040\nL9-D11-A:30\n").await.unwrap();
    b.find(By::Id("preview")).await.unwrap().click().await.unwrap();
    wait_for(b, "#will", "issue: serial G36-D11-040").await;
    b.find(By::Id("confirm-button")).await.unwrap().send_keys(ENTER).await.unwrap();
    wait_for(b, "#done", "Issued").await;

    // The rifle and its rounds come back together, nothing chosen: each goes home.
    b.find(By::Css("input[name=mode][value=return]")).await.unwrap().click().await.unwrap();
    b.find(By::Id("location")).await.unwrap().clear().await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1110{ENTER}")).await.unwrap();
    let scan = focused(b, "scan").await;
    for item in ["G36-D11-040", "L9-D11-A:30"] {
        scan.send_keys(format!("{item}{ENTER}")).await.unwrap();
    }
    scan.send_keys(ENTER).await.unwrap();
    let to = wait_for(b, "#where-to", "back to").await;
    assert!(to.contains("serial G36-D11-040 (RIFLE-G36), now at person:1110 → back to D11-RACK-A"), "{to}");
    assert!(to.contains("30 of lot L9-D11-A") && to.contains("→ back to D11-AMMO"), "{to}");
    shot(b, "06f-counter-mixed-return").await;
    b.find(By::Id("confirm-button")).await.unwrap().send_keys(ENTER).await.unwrap();
    wait_for(b, "#done", "Returned").await;
    b.goto(format!("{url}/items/G36-D11-040")).await.unwrap();
    assert!(text(b, "#where").await.contains("location:D11-RACK-A"), "the rifle is on its rack, not in the ammunition locker");

    // The session ends in the middle of an issue: the scans wait in the page, and come back after
    // signing in again.
    b.goto(format!("{url}/counter")).await.unwrap();
    ready(b).await;
    b.find(By::Id("location")).await.unwrap().send_keys("D11-AMMO").await.unwrap();
    b.find(By::Id("badge")).await.unwrap().send_keys(format!("1110{ENTER}")).await.unwrap();
    let scan = focused(b, "scan").await;
    scan.send_keys(format!("G36-D11-040{ENTER}")).await.unwrap();
    b.delete_cookie("qm_session").await.unwrap();
    scan.send_keys(ENTER).await.unwrap();
    b.find(By::Id("password")).await.unwrap();
    assert!(b.current_url().await.unwrap().as_str().contains("next=%2Fcounter"), "{}", b.current_url().await.unwrap());
    b.find(By::Id("badge")).await.unwrap().send_keys("1101").await.unwrap();
    b.find(By::Id("password")).await.unwrap().send_keys(format!("{}{ENTER}", qm_demo::demo_org::DEMO_PASSWORD)).await.unwrap();
    let restored = wait_for(b, "#scan-notice", "Restored").await;
    assert!(restored.contains("before signing in again"), "{restored}");
    assert_eq!(b.find(By::Id("items")).await.unwrap().value().await.unwrap().unwrap_or_default().trim(), "G36-D11-040");
    assert_eq!(b.find(By::Id("badge")).await.unwrap().value().await.unwrap().as_deref(), Some("1110"));
    shot(b, "06g-counter-restored-after-signin").await;
    b.find(By::Id("items")).await.unwrap().clear().await.unwrap();

    // A refusal keeps the menu and a way back.
    b.goto(format!("{url}/counts/C-999")).await.unwrap();
    let refused = wait_for(b, "main", "C-999").await;
    assert!(refused.contains("Back to the dashboard"), "{refused}");
    assert!(text(b, "header nav").await.contains("Counter"), "the refusal page keeps the menu");
    shot(b, "06h-refusal-keeps-the-menu").await;
}

/// The real case in the browser, on the demo organization: HQ's duty officer issues the directive
/// from the directives page; the Northern Region's officer sees the banner and relays it with a
/// rounds cap; Riverside's officer acknowledges it; the armorer is asked at the counter for the
/// shift briefing, reads the order and acknowledges it with their PIN; HQ's compliance page shows
/// who has done what. (The end of the period under a simulated clock is the CLI test's.)
/// (A part of `the_web_ui_in_chromium`, on its site and browser: the demo organization is made once.)
async fn a_directive_in_chromium(b: &WebDriver, url: &str) {
    let (b, pw) = (b.clone(), qm_demo::demo_org::DEMO_PASSWORD);

    // HQ issues it.
    sign_in_as(&b, url, "0004", pw).await;
    b.goto(format!("{url}/directives")).await.unwrap();
    ready(&b).await;
    let form = b.find(By::Id("issue")).await.unwrap();
    form.find(By::Css("input[name=title]")).await.unwrap().send_keys("Visit of the head of state").await.unwrap();
    let order = "Tighten control of weapons, ammunition and explosives so that not a single incident occurs.";
    form.find(By::Css("textarea[name=text]")).await.unwrap().send_keys(order).await.unwrap();
    form.find(By::Css("select[name=posture] option[value=high]")).await.unwrap().click().await.unwrap();
    form.find(By::Css("textarea[name=measures]")).await.unwrap().send_keys("two-person\ncount=24h\ntransfer-review=24h/30d").await.unwrap();
    shot(&b, "30-directive-issue-form").await;
    b.find(By::Id("issue-button")).await.unwrap().click().await.unwrap();
    let done = wait_for(&b, ".msg.ok", "Issued directive").await;
    let id = done.split_whitespace().nth(2).unwrap().trim_end_matches(';').to_string();
    assert!(id.starts_with("DIR-1."), "{done}");
    assert!(text(&b, "#order-text").await.contains("not a single incident"));
    // At headquarters it shows at the sites below too, from their mirrors: not received yet.
    let at_sites = wait_for(&b, "#directive-sites", "d11.example").await;
    assert!(at_sites.contains("not yet") && at_sites.contains("0 of 0"), "d11 takes no directive from here yet: {at_sites}");
    shot(&b, "49-directive-at-sites").await;

    // The region sees the banner on every page, and relays it with a rounds cap.
    sign_in_as(&b, url, "0103", pw).await;
    let banner = wait_for(&b, "#directive-banner", "Visit of the head of state").await;
    assert!(banner.contains("high posture") && banner.contains("two-person"), "{banner}");
    shot(&b, "31-directive-banner-region").await;
    b.goto(format!("{url}/directives/{id}")).await.unwrap();
    ready(&b).await;
    b.find(By::Css("form textarea[name=text]")).await.unwrap().send_keys("Departments: count today; brief every shift.").await.unwrap();
    b.find(By::Css("form textarea[name=measures]")).await.unwrap().send_keys("rounds-cap=30").await.unwrap();
    b.find(By::Id("relay-pin")).await.unwrap().send_keys(PIN_DEMO).await.unwrap();
    b.find(By::Id("relay-button")).await.unwrap().click().await.unwrap();
    wait_for(&b, ".msg.ok", "relayed by unit NORTH").await;

    // Riverside's duty officer acknowledges it.
    sign_in_as(&b, url, "1104", pw).await;
    b.goto(format!("{url}/directives/{id}")).await.unwrap();
    ready(&b).await;
    assert!(text(&b, "#order").await.contains("Departments: count today"), "the relay's instructions reach the department");
    // A wrong PIN is refused; the right one acknowledges.
    b.find(By::Id("ack-pin")).await.unwrap().send_keys("0000").await.unwrap();
    b.find(By::Id("ack-button")).await.unwrap().click().await.unwrap();
    wait_for(&b, ".msg.err", "not accepted").await;
    b.find(By::Id("ack-pin")).await.unwrap().send_keys(PIN_DEMO).await.unwrap();
    b.find(By::Id("ack-button")).await.unwrap().click().await.unwrap();
    wait_for(&b, ".msg.ok", "acknowledged by unit D-11").await;

    // The armorer is asked at the counter, once, for the shift briefing.
    sign_in_as(&b, url, "1101", pw).await;
    b.goto(format!("{url}/counter")).await.unwrap();
    ready(&b).await;
    let card = text(&b, "form.briefing").await;
    assert!(card.contains("Shift briefing") && card.contains("not a single incident") && card.contains("rounds-cap=30"), "{card}");
    shot(&b, "32-counter-briefing").await;
    b.find(By::Css("form.briefing input.brief-pin")).await.unwrap().send_keys(PIN_DEMO).await.unwrap();
    b.find(By::Css("form.briefing button.brief-button")).await.unwrap().click().await.unwrap();
    wait_for(&b, ".msg.ok", "shift briefing acknowledged by badge 1101").await;
    assert!(b.find(By::Css("form.briefing")).await.is_err(), "asked once per directive and person");

    // HQ's compliance page: who has done what, slowest first.
    sign_in_as(&b, url, "0004", pw).await;
    b.goto(format!("{url}/directives/{id}")).await.unwrap();
    ready(&b).await;
    let table = text(&b, "#compliance").await;
    assert!(table.contains("NORTH") && table.contains("by 0103") && table.contains("by 1104"), "{table}");
    let d11 = text(&b, "#compliance tr[data-unit='D-11']").await;
    assert!(d11.contains("1 / 3") && d11.contains("count: open"), "one of three counter staff briefed, the count still due: {d11}");
    let summary = text(&b, "#compliance-summary").await;
    assert!(summary.contains("2 of") && summary.contains("units acknowledged"), "{summary}");
    b.find(By::Id("compliance")).await.unwrap().scroll_into_view().await.unwrap();
    shot(&b, "33-directive-compliance").await;

    // A simulated clock (the site's clock looks every 200 ms here): a day later, Hilltop (D-12)
    // has neither acknowledged nor counted, and the site has raised both as incidents.
    qm_server::auth::simulate_clock(time::Duration::hours(25));
    let row = wait_for_reload(&b, &format!("{url}/directives/{id}"), "#compliance tr[data-unit='D-12']", "directive_missed").await;
    assert!(row.contains("not acknowledged — overdue") && row.contains("count: overdue"), "{row}");
    b.find(By::Id("compliance")).await.unwrap().scroll_into_view().await.unwrap();
    shot(&b, "34-directive-compliance-a-day-later").await;
    // Nobody at Hilltop acknowledges them: four hours later they have gone up to the region.
    let incident = row.split_whitespace().find(|w| w.starts_with("I-")).unwrap().to_string();
    qm_server::auth::simulate_clock(time::Duration::hours(30));
    let page = wait_for_reload(&b, &format!("{url}/incidents/{incident}"), "main", "escalated to unit NORTH").await;
    assert!(page.contains("directive_missed"), "{page}");
    // At the end of the period it stops applying with nobody acting: no banner, no briefing asked.
    qm_server::auth::simulate_clock(time::Duration::days(11));
    wait_for_reload(&b, &format!("{url}/directives/{id}"), "#order", "ended").await;
    sign_in_as(&b, url, "1102", pw).await;
    b.goto(format!("{url}/counter")).await.unwrap();
    ready(&b).await;
    assert!(b.find(By::Css("form.briefing")).await.is_err(), "no briefing is asked once the directive has ended");
    assert!(!b.find(By::Id("directive-banner")).await.unwrap().is_displayed().await.unwrap(), "no banner once it has ended");
    qm_server::auth::simulate_clock(time::Duration::ZERO);
}

const PIN_DEMO: &str = qm_demo::demo_org::DEMO_PIN;

/// Armory access control in the browser (docs/access.md): Riverside's duty officer puts an officer
/// on the armory's roster and makes the browser the armory's door terminal; people badge in from
/// the keyboard (a badge reader types like one): granted, refused off the roster, and a duress PIN
/// that looks exactly like the real one; the terminal's session reaches nothing else; the officer
/// sees who is inside, the day's log and the duress incident.
async fn access_in_chromium(b: &WebDriver, url: &str) {
    let (b, pw) = (b.clone(), qm_demo::demo_org::DEMO_PASSWORD);
    // 1110 sets a duress PIN for themselves (it must differ from their PIN).
    let officer_api = client();
    let r =
        officer_api.post(format!("{url}/api/session")).json(&serde_json::json!({"badge": "1110", "password": pw})).send().await.unwrap();
    let csrf = r.json::<serde_json::Value>().await.unwrap()["csrf"].as_str().unwrap().to_string();
    let set = |secret: &str| {
        officer_api
            .post(format!("{url}/api/people/1110/duress-pin"))
            .header("x-csrf-token", csrf.clone())
            .json(&serde_json::json!({ "secret": secret }))
            .send()
    };
    assert_eq!(set(qm_demo::demo_org::DEMO_PIN).await.unwrap().status(), 422, "the same as the PIN");
    assert_eq!(set("9876").await.unwrap().status(), 200);

    sign_in_as(&b, url, "1104", pw).await;
    b.goto(format!("{url}/access")).await.unwrap();
    wait_for(&b, "#places", "D11-ARM").await;
    b.goto(format!("{url}/access/D11-ARM")).await.unwrap();
    wait_for(&b, "#roster", "1101").await;
    b.find(By::Css("#grant summary")).await.unwrap().click().await.unwrap();
    b.find(By::Id("grant-badge")).await.unwrap().send_keys("1110").await.unwrap();
    b.find(By::Css("#grant select[name=role] option[value=member]")).await.unwrap().click().await.unwrap();
    let hours = b.find(By::Id("grant-hours")).await.unwrap();
    hours.clear().await.unwrap();
    hours.send_keys("always").await.unwrap();
    b.find(By::Id("grant-reason")).await.unwrap().send_keys("escort duty this week").await.unwrap();
    b.find(By::Id("grant-button")).await.unwrap().click().await.unwrap();
    let roster = wait_for(&b, "#roster", "1110").await;
    assert!(roster.contains("escort duty this week"), "{roster}");
    shot(&b, "40-access-place-roster").await;

    // This browser becomes the armory's door terminal.
    b.find(By::Id("open-terminal")).await.unwrap().click().await.unwrap();
    wait_for(&b, "#door-terminal", "Badge").await;
    shot(&b, "41-door-terminal").await;
    let badge_in = |badge: &'static str, pin: &'static str| {
        let b = b.clone();
        async move {
            b.find(By::Id("door-badge")).await.unwrap().send_keys(format!("{badge}{ENTER}")).await.unwrap();
            // Enter after the badge moves to the PIN, as a badge reader's Enter does.
            let active = b.active_element().await.unwrap();
            assert_eq!(active.id().await.unwrap().as_deref(), Some("door-pin"), "the PIN takes the focus after the badge");
            // The answer on the page the submission loads, not the one on the page it leaves.
            b.execute("document.body.setAttribute('data-left', '1')", vec![]).await.unwrap();
            active.send_keys(format!("{pin}{ENTER}")).await.unwrap();
            wait_for(&b, "body:not([data-left]) #door-answer", "").await;
            let answer = b.find(By::Id("door-answer")).await.unwrap();
            let class = answer.attr("class").await.unwrap().unwrap_or_default();
            (answer.text().await.unwrap(), class)
        }
    };
    let (granted, class) = badge_in("1104", qm_demo::demo_org::DEMO_PIN).await;
    assert!(granted.starts_with("granted:") && class.contains("granted"), "{granted} {class}");
    shot(&b, "42-door-granted").await;
    let (refused, class) = badge_in("1103", qm_demo::demo_org::DEMO_PIN).await;
    assert!(refused.contains("refused: badge 1103 is not on the roster of D11-ARM") && class.contains("refused"), "{refused}");
    shot(&b, "43-door-refused").await;
    // The real PIN, out again, then the duress PIN: the same screen, word for word.
    let (real, real_class) = badge_in("1110", qm_demo::demo_org::DEMO_PIN).await;
    b.find(By::Id("door-badge")).await.unwrap().send_keys(format!("1110{ENTER}")).await.unwrap();
    b.active_element().await.unwrap().send_keys(qm_demo::demo_org::DEMO_PIN).await.unwrap();
    b.find(By::Id("door-leave")).await.unwrap().click().await.unwrap();
    wait_for(&b, "#door-answer", "exit recorded").await;
    let (duress, duress_class) = badge_in("1110", "9876").await;
    assert_eq!((&duress, &duress_class), (&real, &real_class), "nothing on the screen tells a duress PIN apart");
    shot(&b, "44-door-duress-looks-granted").await;
    // The terminal's session opens nothing else.
    b.goto(format!("{url}/counter")).await.unwrap();
    b.find(By::Id("password")).await.expect("any other page asks for a sign-in");

    // The officer sees who is inside, the day's log and the alarm.
    sign_in_as(&b, url, "1104", pw).await;
    b.goto(format!("{url}/access/D11-ARM")).await.unwrap();
    let inside = wait_for(&b, "#inside", "1110").await;
    assert!(inside.contains("1104"), "{inside}");
    let log = text(&b, "#door-log").await;
    assert!(log.contains("denied") && log.contains("not on the roster") && log.contains("(duress)"), "{log}");
    shot(&b, "45-access-who-is-inside").await;
    b.goto(format!("{url}/incidents?kind=duress")).await.unwrap();
    let duress = wait_for(&b, "#incidents", "DURESS").await;
    assert!(duress.contains("critical") && duress.contains("1110"), "{duress}");
    b.goto(format!("{url}/")).await.unwrap();
    let summary = wait_for(&b, "#access-summary", "open access incidents").await;
    assert!(summary.contains("who is inside"), "{summary}");
    shot(&b, "46-dashboard-access").await;
}

/// Headquarters' administrator sees on the dashboard that one child site was rewritten and one never
/// synced, and the child sites page says which (docs/sites.md).
async fn sites_in_chromium(b: &WebDriver, url: &str) {
    b.goto(format!("{url}/")).await.unwrap();
    let summary = wait_for(b, "#sites-summary", "witnessed").await;
    assert!(summary.contains("3 witnessed") && summary.contains("1 rewritten") && summary.contains("1 never synced"), "{summary}");
    assert!(summary.contains("3 entries witnessed, not yet mirrored"), "d13's entries wait for its mirror upload: {summary}");
    b.find(By::Css("#sites-summary a")).await.unwrap().click().await.unwrap();
    let table = wait_for(b, "#sites", "d11.example").await;
    assert!(table.contains("REWRITTEN") && table.contains("never synced") && table.contains("consistent"), "{table}");
    let first = text(b, "#sites tbody tr:first-child").await;
    assert!(first.starts_with("d13.example"), "the rewritten site comes first: {first}");
    let header = text(b, "#sites thead").await;
    assert!(header.contains("Entries mirrored") && header.contains("Backlog"), "{header}");
    let d11 = text(b, "#sites tbody tr.site-consistent").await;
    assert!(header.contains("Units") && header.contains("Open incidents") && header.contains("Issued"), "{header}");
    assert!(d11.starts_with("d11.example") && d11.ends_with("3 0 1 0 0 0"), "d11 mirrored whole, nothing waiting, its one unit: {d11}");
    assert!(text(b, "#no-span-stock").await.contains("No site's stock"));
    assert!(text(b, "#no-site-transfers").await.contains("No transfer between the sites"));
    shot(b, "47-child-sites").await;
    // d11's books, as its mirrored entries replay them.
    b.find(By::Css("#sites tbody tr.site-consistent a")).await.unwrap().click().await.unwrap();
    let as_of = wait_for(b, "#site-books-as-of", "mirrored entries").await;
    assert!(as_of.contains("d11.example") && as_of.contains("root unit D-11") && as_of.contains("3 mirrored entries"), "{as_of}");
    shot(b, "48-child-site-books").await;
}
