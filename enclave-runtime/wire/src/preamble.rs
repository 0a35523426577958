//! The preamble line the host proxy writes before a client's bytes in proxy TLS mode, and the
//! enclave runtime parses (`nautilus-enclave`'s `preamble` module):
//! `NAUTILUS/1 client-cert-cn=<pct> groups=<pct>,<pct>\n`, every byte outside
//! `A-Z a-z 0-9 - . _ ~` percent-encoded, empty values when the client showed no certificate.
//! Written once here so the writer and its tests cannot drift from each other. (Self-contained:
//! the fuzz target includes this file by path.)

/// The line for a client certificate's `cn` and `groups` (empty `cn`: none was shown).
pub fn line(cn: &str, groups: &[String]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| percent_encode(g)).collect();
    format!(
        "NAUTILUS/1 client-cert-cn={} groups={}\n",
        percent_encode(cn),
        groups.join(",")
    )
}

/// One field's encoding: unreserved bytes as they are, every other byte as `%XX`.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
