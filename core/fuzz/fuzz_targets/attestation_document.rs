//! Any bytes given to the attestation parser and verifier end in a typed error or a document,
//! never a panic, an abort or unbounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nautilus_core::attestation;

fuzz_target!(|data: &[u8]| {
    let _ = attestation::parse(data);
    // The pinned root is irrelevant to safety; any bytes exercise the chain code too when the
    // document claims to be simulated.
    let policy = attestation::Policy {
        allow_simulated: true,
        ..attestation::Policy::default()
    };
    let _ = attestation::verify(data, b"", 1_731_627_989_450, &policy);
});
