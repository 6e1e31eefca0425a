//! The JSON-RPC envelope parser must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::jsonrpc::{call_params, parse, Parsed};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Parsed::Single(env)) => {
            let _ = env.kind();
            let _ = env.id_text();
            let _ = call_params(env.params);
        }
        Ok(Parsed::Batch(items)) => assert!(!items.is_empty()),
        Err((code, message)) => assert!(code < 0 && !message.is_empty()),
    }
});
