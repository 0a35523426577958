//! The PKCS#10 request of a CertificateSigningRequest (`spec.request`), checked as kube checks
//! it: DER parsing, RSA/ECDSA/Ed25519 keys and signatures, RSA-PSS parameters.
//!
//! Input: the request's DER (wrapped here in the PEM block the API takes).
//!
//! Invariants: no panic, no unbounded allocation; an RSA key above the size bound is refused
//! before any arithmetic (a run stays fast: libFuzzer's timeout catches one that is not).
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    let _ = nautilus_core::csr::check_request(pem.as_bytes());
});
