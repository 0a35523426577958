//! The vsock preamble line the host proxy sends before the HTTP bytes (the client certificate's
//! verified identity), parsed by the enclave runtime's own `preamble.rs`, compiled in here.
//!
//! Invariants: no panic, no unbounded allocation; an identity that parses has a name, and
//! written again the way the proxy writes it (percent-encoding) it parses to the same identity.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../../enclave-runtime/src/preamble.rs"]
#[allow(dead_code, unreachable_pub)]
mod preamble;

// The proxy's writer, from the shared protocol crate.
#[path = "../../../enclave-runtime/wire/src/preamble.rs"]
mod wire_preamble;

fn parse(line: &[u8]) -> Result<Option<nautilus_core::auth::CertUser>, String> {
    preamble::parse(line).map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(user)) = parse(data) else {
        return;
    };
    assert!(!user.name.is_empty(), "a preamble identity without a name");
    let line = wire_preamble::line(&user.name, &user.groups);
    let again = parse(line.trim_end_matches('\n').as_bytes());
    assert_eq!(
        again,
        Ok(Some(user)),
        "the preamble did not survive re-encoding"
    );
});
