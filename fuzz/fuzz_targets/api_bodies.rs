//! Fuzz the API request bodies: any bytes are either refused as JSON or parsed into a request whose
//! item list is checked into items; nothing panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use qm_server::api::*;

fn check_items(list: &[String]) {
    let _ = items(list);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 6 {
        0 => {
            if let Ok(r) = serde_json::from_slice::<IssueIn>(body) {
                check_items(&r.items);
            }
        }
        1 => {
            if let Ok(r) = serde_json::from_slice::<ReturnIn>(body) {
                check_items(&r.items);
            }
        }
        2 => {
            if let Ok(r) = serde_json::from_slice::<ReceiveIn>(body) {
                check_items(&r.items);
            }
        }
        3 => {
            if let Ok(r) = serde_json::from_slice::<MoveIn>(body) {
                check_items(&r.items);
            }
        }
        4 => {
            if let Ok(r) = serde_json::from_slice::<DispatchIn>(body) {
                check_items(&r.items);
            }
        }
        _ => {
            let _ = serde_json::from_slice::<LocationIn>(body);
            let _ = serde_json::from_slice::<ItemTypeIn>(body);
        }
    }
});
