//! The demo organization (`qm serve --demo`) reads like a real history: entries in time order, every
//! magazine with storage readings, and a few things left for the first user to find — an open count
//! discrepancy, an open excursion with its incident not yet acknowledged, a return overdue, a
//! transfer in transit.

mod common;

use common::*;
use qm_core::*;
use time::OffsetDateTime;

#[test]
fn the_demo_organization_reads_like_a_real_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("org.db").display().to_string();
    let now = OffsetDateTime::now_utc();
    let site = qm_demo::demo_org::create(&db, &qm_app::default_key_path(std::path::Path::new(&db)), now).unwrap();
    // Times in order, all before now.
    let entries = site.store().read_entries(0, site.size() as usize).unwrap();
    let times: Vec<OffsetDateTime> = entries.iter().map(|e| qm_app::decode(&e.bytes).unwrap().at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "entries out of time order");
    assert!(*times.last().unwrap() <= now);
    let s = site.state();
    // Every magazine has readings, each of the last three weeks' days.
    let magazines: Vec<&LocationId> = s.locations.iter().filter(|(_, l)| l.kind == LocationKind::Magazine).map(|(k, _)| k).collect();
    assert!(magazines.len() >= 2, "{magazines:?}");
    for m in &magazines {
        let from = (now - time::Duration::days(21)).unix_timestamp() * 1000;
        let n = site.store().readings(m.as_str(), from, now.unix_timestamp() * 1000, 5000).unwrap().len();
        assert!(n >= 20 * 48, "magazine {m}: {n} readings");
    }
    // Left open for the first user: an excursion (its incident unacknowledged), a discrepancy.
    let open: Vec<&qm_core::state::Excursion> = s.excursions.values().filter(|x| x.ended_at.is_none()).collect();
    assert_eq!(open.iter().map(|x| x.location.as_str()).collect::<Vec<_>>(), ["D21-MAG"]);
    assert!(s.incidents.values().any(|i| i.kind == IncidentKind::Excursion && i.acknowledged_at.is_none()));
    assert!(s.discrepancies.values().any(|d| d.resolution.is_none()), "an open discrepancy");
    assert_verifies(&site);
}
