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

fn parse(line: &[u8]) -> Result<Option<nautilus_core::auth::CertUser>, String> {
    preamble::parse(line).map_err(|e| e.to_string())
}

/// The proxy's encoding of a preamble field.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(user)) = parse(data) else {
        return;
    };
    assert!(!user.name.is_empty(), "a preamble identity without a name");
    let groups: Vec<String> = user.groups.iter().map(|g| encode(g)).collect();
    let line = format!(
        "NAUTILUS/1 client-cert-cn={} groups={}",
        encode(&user.name),
        groups.join(",")
    );
    let again = parse(line.as_bytes());
    assert_eq!(
        again,
        Ok(Some(user)),
        "the preamble did not survive re-encoding"
    );
});
