//! ServiceAccount JWTs as a bearer token: the issuer peek, the JOSE header, the key id, the
//! signature, and (for inputs the target signs itself, which the fuzzer cannot forge) the
//! claims and their times.
//!
//! Input: `control FF header FF payload FF token text`. Control bit 0 set: the header and
//! payload bytes are signed with the issuer's key and that token is read; else the token text
//! is read as sent.
//!
//! Invariants: no panic, no unbounded allocation; claims read from a signed token sign and
//! read back the same.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nautilus_core::serviceaccount::{DEFAULT_ISSUER, ServiceAccountKey};

fuzz_target!(|data: &[u8]| {
    let Some(key) = ServiceAccountKey::from_secret(&[7; 32]) else {
        return;
    };
    let parts = common::fields(data, 4);
    let control = common::field(&parts, 0).first().copied().unwrap_or(0);
    if control & 1 == 1 {
        let token =
            key.sign_raw_for_fuzzing(common::field(&parts, 1), common::field(&parts, 2));
        if let Ok(claims) = key.verify(DEFAULT_ISSUER, &token) {
            let _ = claims.check_times(common::NOW);
            // What was read signs again and reads back the same.
            let again = key.sign(&claims);
            assert_eq!(key.verify(DEFAULT_ISSUER, &again), Ok(claims));
        }
    } else {
        let _ = key.verify(DEFAULT_ISSUER, &common::text(&parts, 3));
    }
});
