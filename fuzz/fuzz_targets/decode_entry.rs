//! Fuzz the canonical event decoder: any bytes either fail to decode or round-trip through the
//! canonical encoder, and folding a decoded entry into fresh books never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = qm_app::decode(data) {
        let Ok(bytes) = qm_app::encode(&env) else { return };
        let again = qm_app::decode(&bytes).expect("canonical bytes decode");
        assert_eq!(again, env, "decode(encode(x)) != x");
        assert_eq!(qm_app::encode(&again).expect("encodes"), bytes, "the canonical form is not stable");
        let mut state = qm_core::State::new();
        let _ = state.apply(&env);
        let _ = state.all_rows();
    }
});
