//! The ledger format, locked: the exact canonical bytes of one entry of every event type are checked
//! in (`tests/data/golden-entries.jsonl`), and each must decode and encode to the very same bytes,
//! so no refactoring can change what is hashed. Entries of old ledgers (a `person_registered` with its
//! `pin_hash`, written before credentials left the ledger) stay beside the shapes written today. `QM_BLESS=1` writes the file from the demo
//! site's ledger (`qm demo`); it is run once, when a new event type is added, never to accept a change.

use qm_app::{decode, encode, encode_reference};
use qm_core::Event;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-entries.jsonl")
}

/// Every event type, by the compiler: a new variant does not compile here until it is named, and a
/// named one fails the test until an entry of it is in the golden file.
fn type_of(e: &Event) -> &'static str {
    match e {
        Event::SiteInitialized { .. } => "site_initialized",
        Event::UnitCreated { .. } => "unit_created",
        Event::SiteTimeZoneSet { .. } => "site_time_zone_set",
        Event::LocationCreated { .. } => "location_created",
        Event::LocationSafetySet { .. } => "location_safety_set",
        Event::ItemTypeStorageSet { .. } => "item_type_storage_set",
        Event::ItemTypeAttributesSet { .. } => "item_type_attributes_set",
        Event::ReadingsRecorded { .. } => "readings_recorded",
        Event::ExcursionStarted { .. } => "excursion_started",
        Event::ExcursionEnded { .. } => "excursion_ended",
        Event::ItemTypeDefined { .. } => "item_type_defined",
        Event::PersonRegistered { .. } => "person_registered",
        Event::CredentialSet { .. } => "credential_set",
        Event::TokenIssued { .. } => "token_issued",
        Event::TokenRevoked { .. } => "token_revoked",
        Event::AccessDenied { .. } => "access_denied",
        Event::QualificationGranted { .. } => "qualification_granted",
        Event::PolicySet { .. } => "policy_set",
        Event::SerialRegistered { .. } => "serial_registered",
        Event::LotRegistered { .. } => "lot_registered",
        Event::Movement { .. } => "movement",
        Event::LotStatusChanged { .. } => "lot_status_changed",
        Event::TransferDispatched { .. } => "transfer_dispatched",
        Event::TransferReceived { .. } => "transfer_received",
        Event::CountStarted { .. } => "count_started",
        Event::CountRecorded { .. } => "count_recorded",
        Event::DiscrepancyOpened { .. } => "discrepancy_opened",
        Event::CountClosed { .. } => "count_closed",
        Event::DiscrepancyResolved { .. } => "discrepancy_resolved",
        Event::IncidentOpened { .. } => "incident_opened",
        Event::IncidentUpdated { .. } => "incident_updated",
        Event::DirectiveIssued { .. } => "directive_issued",
        Event::DirectiveUpdated { .. } => "directive_updated",
        Event::RosterGranted { .. } => "roster_granted",
        Event::RosterRevoked { .. } => "roster_revoked",
        Event::DoorEvents { .. } => "door_events",
        Event::AccessAlert { .. } => "access_alert",
        Event::FromParent { .. } => "from_parent",
        Event::RulesAdopted { .. } => "rules_adopted",
        Event::PersonChanged { .. } => "person_changed",
    }
}

const ALL_TYPES: usize = 40;

#[test]
fn one_entry_of_every_event_type_encodes_to_the_bytes_checked_in() {
    if std::env::var_os("QM_BLESS").is_some() {
        bless();
    }
    let text = std::fs::read_to_string(golden_path()).expect("tests/data/golden-entries.jsonl is checked in");
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let env = decode(line.as_bytes()).unwrap_or_else(|e| panic!("golden line {n} no longer decodes: {e}\n{line}"));
        let ty = type_of(&env.event);
        assert_eq!(env.event.type_name(), ty, "line {n}: the event's type name changed");
        assert_eq!(String::from_utf8(encode(&env).unwrap()).unwrap(), line, "line {n} ({ty}): the canonical bytes changed");
        assert_eq!(String::from_utf8(encode_reference(&env).unwrap()).unwrap(), line, "line {n} ({ty}): differs from RFC 8785");
        *seen.entry(ty).or_default() += 1;
        if !env.opens.is_empty() {
            *seen.entry("entry that opens an incident").or_default() += 1;
        }
    }
    assert!(seen.remove("entry that opens an incident").is_some(), "the golden file lacks an entry that opens an incident by itself");
    assert_eq!(seen.len(), ALL_TYPES, "the golden file lacks some event types: has {:?}", seen.keys().collect::<Vec<_>>());
}

/// Writes the golden file: the first entry of each type in the demo organization's ledger, plus the
/// first and last of each type the demo has more than one shape of (optional fields set or not).
fn bless() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("golden.db").display().to_string();
    let now = time::OffsetDateTime::now_utc();
    let (site, _) = qm_demo::demo::create(&db, &qm_app::default_key_path(std::path::Path::new(&db)), qm_demo::demo::last_day(now)).unwrap();
    let mut first: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    let mut opening = None;
    for e in site.store().read_entries(0, site.size() as usize).unwrap() {
        let env = decode(&e.bytes).unwrap();
        if !env.opens.is_empty() && opening.is_none() {
            opening = Some(e.bytes.clone());
        }
        first.entry(type_of(&env.event)).or_insert(e.bytes);
    }
    let mut out = String::new();
    let existing = std::fs::read_to_string(golden_path()).unwrap_or_default();
    // Lines already checked in stay as they are; the demo fills in the types they lack.
    let mut have: BTreeMap<&'static str, ()> = BTreeMap::new();
    for line in existing.lines() {
        if let Ok(env) = decode(line.as_bytes()) {
            have.insert(type_of(&env.event), ());
            out.push_str(line);
            out.push('\n');
        }
    }
    if !existing.lines().any(|l| decode(l.as_bytes()).is_ok_and(|e| !e.opens.is_empty())) {
        out.push_str(std::str::from_utf8(&opening.expect("the demo opens an incident by itself")).unwrap());
        out.push('\n');
    }
    for (ty, bytes) in first {
        if !have.contains_key(ty) {
            have.insert(ty, ());
            out.push_str(std::str::from_utf8(&bytes).unwrap());
            out.push('\n');
        }
    }
    // Types the demo does not make, written out by hand once and encoded by the encoder of the day.
    for event in HAND_MADE {
        let json = format!(
            r#"{{"site":"demo.quartermaster","seq":900,"at":"2026-11-23T06:00:00Z","actor":"0001","idempotency_key":"golden","event":{event}}}"#
        );
        let env: qm_core::Envelope = serde_json::from_str(&json).unwrap();
        if have.insert(type_of(&env.event), ()).is_none() {
            out.push_str(std::str::from_utf8(&encode(&env).unwrap()).unwrap());
            out.push('\n');
        }
    }
    std::fs::create_dir_all(golden_path().parent().unwrap()).unwrap();
    std::fs::write(golden_path(), out).unwrap();
}

const HAND_MADE: &[&str] = &[
    r#"{"type":"item_type_attributes_set","item_type":"TNT-BLOCK","attributes":["substance"]}"#,
    r#"{"type":"location_safety_set","location":"D11-MAG","flags":["separate_room"],"conditions":{"temperature_c":{"min":5.0,"max":30.5},"excursion_minutes":60}}"#,
    r#"{"type":"item_type_storage_set","item_type":"TNT-BLOCK","temperature_c":{"min":-10.0,"max":35.0},"humidity_pct":{"min":10.0,"max":70.0}}"#,
    r#"{"type":"readings_recorded","location":"D11-MAG","count":96,"first_at":"2026-11-22T06:00:00Z","last_at":"2026-11-23T05:45:00Z","temperature_c":{"min":18.0,"max":43.25},"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
    r#"{"type":"excursion_started","excursion":"X-1","location":"D11-MAG","measure":"temperature","direction":"high","started_at":"2026-11-22T18:30:00Z","limit":30.5,"peak":43.25,"lots_exposed":["TNT-D11-1"],"serials_exposed":0}"#,
    r#"{"type":"excursion_ended","excursion":"X-1","ended_at":"2026-11-22T21:30:00Z","peak":43.25}"#,
    r#"{"type":"token_issued","token":"tok-1","label":"Depot scanner","unit":"D-11","operations":["issue","return"],"secret_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}"#,
    r#"{"type":"token_revoked","token":"tok-1","reason":"scanner lost"}"#,
    r#"{"type":"access_denied","who":"1102","operation":"issue","reason":"badge 1102 (member) may not issue: no role of theirs allows it"}"#,
    r#"{"type":"policy_set","unit":"D-11","rules":{"two_person_explosives":true,"two_person_all_movements":false,"two_person_count_resolution":true,"counter_not_keeper":true,"counter_not_previous":false,"max_issue_quantity":120000}}"#,
    r#"{"type":"lot_status_changed","lot":"L556-D11-A","status":"suspended","reason":"misfires reported","unit":"NORTH"}"#,
    r#"{"type":"discrepancy_resolved","discrepancy":"D-1","adjusted":true,"note":"pistol found in the armorer's safe"}"#,
    r#"{"type":"person_changed","badge":"1117","change":{"kind":"suspended","reason":"on leave pending an inquiry"}}"#,
    r#"{"type":"rules_adopted","rules":"incident_rules","text":"[severity]\nledger_fork = \"critical\"\n"}"#,
    r#"{"type":"from_parent","origin":"hq.example","seq":57,"entry":"{\"actor\":\"0001\",\"at\":\"2026-11-23T05:00:00Z\",\"event\":{\"directive\":\"DIR-1.hq.example\",\"ends_at\":\"2026-11-30T05:00:00Z\",\"measures\":[],\"posture\":\"heightened\",\"starts_at\":\"2026-11-23T05:00:00Z\",\"text\":\"Double the guard.\",\"title\":\"Threat\",\"type\":\"directive_issued\",\"unit\":\"NHQ\"},\"idempotency_key\":\"dir-1\",\"seq\":57,\"site\":\"hq.example\"}","proof":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],"checkpoint":"hq.example\n58\nn4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n\n— hq.example AAAAAA==\n"}"#,
];
