//! Fuzz the CSV importer: any file is either imported or refused with file, line and column, and a
//! refused file changes nothing (the books before and after are equal).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    site: qm_app::Site,
}

fn fixture() -> &'static Mutex<Fixture> {
    static F: OnceLock<Mutex<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("fuzz.db");
        let day = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
        let (site, _) = qm_demo::demo::create(db.to_str().expect("utf-8"), &dir.path().join("k"), day).expect("demo site");
        let path = dir.path().join("input.csv");
        Mutex::new(Fixture { _dir: dir, path, site })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    // People are left out: each row hashes a PIN with Argon2, which would make the fuzzer crawl.
    let (kind, actor) = match kind % 3 {
        0 => (qm_app::import::ImportKind::ItemTypes, "0001"),
        1 => (qm_app::import::ImportKind::Serials, "0417"),
        _ => (qm_app::import::ImportKind::Lots, "0417"),
    };
    let mut f = fixture().lock().unwrap_or_else(|p| p.into_inner());
    std::fs::write(&f.path, body).expect("write input");
    let before = f.site.state().clone();
    let actor = qm_core::Badge::parse(actor).expect("badge");
    let path = f.path.clone();
    match qm_app::import::import(&mut f.site, kind, &path, &actor, time::OffsetDateTime::now_utc(), &mut |_, _| {}) {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("input.csv"), "an import error names the file: {msg}");
            assert_eq!(f.site.state(), &before, "a refused file changed the books");
        }
    }
});
