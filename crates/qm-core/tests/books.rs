//! The books' rows, locked: a small ledger that touches every book (site, time zone, units,
//! locations, item types, people, policies, tokens, serials, lots with their decisions, balances,
//! transfers, counts, discrepancies, excursions, directives, last counters, corrections, what the
//! parent site decided and the entries that flow down) is folded into a `State`,
//! and its rows must be exactly the bytes checked in (`tests/data/books-rows.txt`): stored rows of
//! every existing database must keep reading back. The rows then load into fresh books that are
//! equal, row for row. `QM_BLESS=1` writes the file; run it only when a book is added.

use qm_core::{Envelope, Event, State};
use std::path::PathBuf;
use time::macros::datetime;

/// Each line: an event in its JSON form, optionally `corrects=SEQ` after a tab.
const LEDGER: &str = r#"
{"type":"site_initialized","site":"test","verifier_key":"test-key","root_unit":"HQ","root_unit_name":"Headquarters"}
{"type":"site_time_zone_set","zone":"Europe/Paris"}
{"type":"unit_created","unit":"NORTH","name":"Northern Region","parent":"HQ"}
{"type":"unit_created","unit":"D-11","name":"Department 11","parent":"NORTH"}
{"type":"unit_created","unit":"D-12","name":"Department 12","parent":"NORTH"}
{"type":"location_created","location":"D11-ARM","name":"Armory","unit":"D-11","kind":"armory","keeper":"0101"}
{"type":"location_created","location":"D11-RACK","name":"Rack A","unit":"D-11","parent":"D11-ARM","kind":"rack"}
{"type":"location_created","location":"D11-MAG","name":"Magazine","unit":"D-11","kind":"magazine"}
{"type":"location_created","location":"D12-ARM","name":"Armory","unit":"D-12","kind":"armory"}
{"type":"location_safety_set","location":"D11-MAG","flags":["separate_room"],"conditions":{"excursion_minutes":60,"temperature_c":{"max":30.5,"min":5}}}
{"type":"item_type_defined","item_type":"RIFLE","name":"Rifle","kind":"weapon","tracking":"serial","unit_of_measure":"each","neq_kg_per_unit":0,"qualification":"G36"}
{"type":"item_type_defined","item_type":"AMMO","name":"Cartridge 5.56","kind":"ammunition","tracking":"lot","unit_of_measure":"round","neq_kg_per_unit":0.0015,"un_code":"UN0012"}
{"type":"item_type_storage_set","item_type":"AMMO","temperature_c":{"max":35,"min":-10},"humidity_pct":{"max":70,"min":10}}
{"type":"person_registered","badge":"0101","name":"A. Keeper","unit":"D-11","roles":["armorer","magazine_keeper"],"pin_hash":"$argon2id$old-ledger-pin"}
{"type":"person_registered","badge":"0202","name":"B. Officer","unit":"D-11","roles":["member"]}
{"type":"credential_set","badge":"0101","kind":"password","hash":"$argon2id$old-ledger-password"}
{"type":"credential_set","badge":"0202","kind":"pin"}
{"type":"qualification_granted","badge":"0202","qualification":"G36","expires":"2027-12-02"}
{"type":"token_issued","token":"tok-1","label":"Scanner","unit":"D-11","operations":["issue","return"],"secret_hash":"$argon2id$old-ledger-token"}
{"type":"token_issued","token":"tok-2","label":"Counter","unit":"D-11","operations":["count"]}
{"type":"token_revoked","token":"tok-1","reason":"scanner lost"}
{"type":"access_denied","who":"0202","operation":"issue","reason":"no role of theirs allows it"}
{"type":"policy_set","unit":"D-11","rules":{"counter_not_keeper":true,"counter_not_previous":false,"max_issue_quantity":120000,"two_person_all_movements":false,"two_person_count_resolution":true,"two_person_explosives":true}}
{"type":"serial_registered","serial":"R-1","item_type":"RIFLE"}
{"type":"serial_registered","serial":"R-2","item_type":"RIFLE"}
{"type":"lot_registered","lot":"L-1","item_type":"AMMO","manufactured":"2024-01-10","expires":"2030-05-20"}
{"type":"movement","kind":"receive","from":"supplier:Factory","to":"location:D11-RACK","lines":[{"by":"serial","serial":"R-1","item_type":"RIFLE"},{"by":"serial","serial":"R-2","item_type":"RIFLE"}],"document":"DN-1"}
{"type":"movement","kind":"receive","from":"supplier:Factory","to":"location:D11-MAG","lines":[{"by":"lot","lot":"L-1","item_type":"AMMO","quantity":900000}]}
{"type":"movement","kind":"issue","from":"location:D11-RACK","to":"person:0202","lines":[{"by":"serial","serial":"R-1","item_type":"RIFLE"}]}
{"type":"movement","kind":"issue","from":"location:D11-MAG","to":"person:0202","lines":[{"by":"lot","lot":"L-1","item_type":"AMMO","quantity":30000}]}
{"type":"movement","kind":"return","from":"person:0202","to":"location:D11-MAG","lines":[{"by":"lot","lot":"L-1","item_type":"AMMO","quantity":5000}]}	corrects=29
{"type":"lot_status_changed","lot":"L-1","status":"suspended","reason":"misfires reported","unit":"NORTH"}
{"type":"transfer_dispatched","transfer":"T-1","from_unit":"D-11","to_unit":"D-12","document":"TR-1"}
{"type":"movement","kind":"dispatch","from":"location:D11-MAG","to":"transit:T-1","lines":[{"by":"lot","lot":"L-1","item_type":"AMMO","quantity":100000}]}
{"type":"movement","kind":"transfer_receive","from":"transit:T-1","to":"location:D12-ARM","lines":[{"by":"lot","lot":"L-1","item_type":"AMMO","quantity":99000}]}
{"type":"discrepancy_opened","discrepancy":"D-1","facts":{"adjust_from":"transit:T-1","adjust_quantity":1000,"adjust_to":"lost","book_account":"transit:T-1","book_quantity":100000,"counted_quantity":99000,"found_account":"location:D12-ARM","item_type":"AMMO","kind":"quantity_short","lot":"L-1","source":{"transfer":"T-1"}}}
{"type":"transfer_received","transfer":"T-1","location":"D12-ARM","discrepancies":["D-1"]}
{"type":"discrepancy_resolved","discrepancy":"D-1","adjusted":false,"note":"recounted at the dock"}
{"type":"count_started","count":"C-1","root":"D11-ARM","kind":"full","blind":true,"counter":"0101"}
{"type":"count_recorded","count":"C-1","location":"D11-RACK","serials":["R-2"],"lots":[]}
{"type":"count_closed","count":"C-1","discrepancies":[]}
{"type":"readings_recorded","location":"D11-MAG","count":2,"first_at":"2026-11-22T06:00:00Z","last_at":"2026-11-22T06:15:00Z","temperature_c":{"max":43.25,"min":18},"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
{"type":"excursion_started","excursion":"X-1","location":"D11-MAG","measure":"temperature","direction":"high","started_at":"2026-11-22T06:00:00Z","limit":30.5,"peak":43.25,"lots_exposed":["L-1"],"serials_exposed":0}
{"type":"excursion_ended","excursion":"X-1","ended_at":"2026-11-22T06:15:00Z","peak":43.25}
{"type":"directive_issued","directive":"DIR-1.test","unit":"HQ","title":"Visit","text":"Tighten control.","posture":"high","starts_at":"2026-11-22T07:00:00Z","ends_at":"2026-12-02T07:00:00Z","measures":[{"measure":"two_person"},{"measure":"count","within_h":24}]}
{"type":"directive_updated","directive":"DIR-1.test","action":{"action":"relay","unit":"NORTH","text":"Departments: count today.","measures":[{"measure":"rounds_cap","per_issue":30000}]}}
{"type":"directive_updated","directive":"DIR-1.test","action":{"action":"brief","unit":"D-11"}}
{"type":"from_parent","origin":"nat.test","seq":5,"entry":"{\"site\":\"nat.test\",\"seq\":5,\"at\":\"2026-11-21T07:00:00Z\",\"actor\":\"0001\",\"idempotency_key\":\"p-5\",\"event\":{\"type\":\"policy_set\",\"unit\":\"NATIONAL\",\"rules\":{\"two_person_all_movements\":true}}}","proof":["abababababababababababababababababababababababababababababababab"],"checkpoint":"nat.test\n8\nAAAA\n"}
{"type":"from_parent","origin":"nat.test","seq":6,"entry":"{\"site\":\"nat.test\",\"seq\":6,\"at\":\"2026-11-21T07:00:00Z\",\"actor\":\"0001\",\"idempotency_key\":\"p-6\",\"event\":{\"type\":\"lot_status_changed\",\"lot\":\"L-1\",\"status\":\"unserviceable\",\"reason\":\"recall\"}}","proof":["abababababababababababababababababababababababababababababababab"],"checkpoint":"nat.test\n8\nAAAA\n"}
{"type":"person_registered","badge":"0303","name":"C. Away","unit":"D-11","roles":["armorer"]}
{"type":"person_changed","badge":"0303","change":{"kind":"suspended","reason":"on leave pending an inquiry"}}
{"type":"person_changed","badge":"0202","change":{"kind":"roles","roles":["member","armorer"]}}
"#;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/books-rows.txt")
}

fn books() -> State {
    let mut state = State::new();
    let at = datetime!(2026-11-22 07:00 UTC);
    for line in LEDGER.lines().filter(|l| !l.trim().is_empty()) {
        let (json, corrects) = match line.split_once('\t') {
            Some((j, c)) => (j, c.strip_prefix("corrects=").and_then(|s| s.parse::<u64>().ok())),
            None => (line, None),
        };
        let event: Event = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let env = Envelope {
            site: "test".into(),
            seq: state.next_seq,
            at,
            actor: qm_core::Badge::parse("0101").unwrap(),
            witness: None,
            token: None,
            idempotency_key: format!("k-{}", state.next_seq),
            request: None,
            corrects: corrects.map(|seq| qm_core::Correction { seq, reason: "wrong quantity".into() }),
            event,
            opens: vec![],
        };
        state.apply(&env).unwrap_or_else(|e| panic!("{json}: {e}"));
    }
    state
}

fn render(state: &State) -> String {
    state.all_rows().iter().map(|(k, v)| format!("{}\t{}\t{}\n", k.kind, k.key, v)).collect()
}

#[test]
fn every_book_writes_the_rows_checked_in_and_reads_them_back() {
    let state = books();
    let text = render(&state);
    if std::env::var_os("QM_BLESS").is_some() {
        std::fs::write(golden_path(), &text).unwrap();
    }
    let golden = std::fs::read_to_string(golden_path()).expect("tests/data/books-rows.txt is checked in");
    for (i, (got, want)) in text.lines().zip(golden.lines()).enumerate() {
        assert_eq!(got, want, "row {} differs from the checked-in bytes", i + 1);
    }
    assert_eq!(text.lines().count(), golden.lines().count(), "the books have a different number of rows");
    // Every kind of row is present, so that no book goes untested.
    let kinds: std::collections::BTreeSet<&str> = text.lines().filter_map(|l| l.split('\t').next()).collect();
    for kind in [
        "meta",
        "unit",
        "location",
        "item_type",
        "person",
        "policy",
        "token",
        "serial",
        "lot",
        "balance",
        "transfer",
        "count",
        "discrepancy",
        "excursion",
        "directive",
        "last_counter",
        "corrected",
    ] {
        assert!(kinds.contains(kind), "no {kind} row in the books");
    }

    let mut loaded = State::new();
    loaded.safety = state.safety.clone();
    for (k, v) in state.all_rows() {
        loaded.load_row(k.kind, &k.key, &v).unwrap_or_else(|e| panic!("{} {}: {e}", k.kind, k.key));
    }
    loaded.rebuild_indexes().unwrap();
    assert_eq!(render(&loaded), text);
    assert_eq!(loaded.store_stock, state.store_stock, "the derived index is rebuilt the same");
}

#[test]
fn a_row_that_is_not_ours_is_refused_with_its_kind_and_key() {
    let mut s = State::new();
    let e = s.load_row("unit", "not a unit id!", "{}").unwrap_err();
    assert!(e.contains("unit") && e.contains("not a unit id!"), "{e}");
    let e = s.load_row("unit", "HQ", "{\"name\":1}").unwrap_err();
    assert!(e.contains("stored unit row \"HQ\" is unreadable"), "{e}");
    let e = s.load_row("balance", "no-bar", "{}").unwrap_err();
    assert!(e.contains("no-bar"), "{e}");
    let e = s.load_row("corrected", "x", "1").unwrap_err();
    assert!(e.contains("not a number"), "{e}");
    let e = s.load_row("ghost", "1", "{}").unwrap_err();
    assert!(e.contains("unknown projection row kind \"ghost\""), "{e}");
}
