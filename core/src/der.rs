//! Writing DER and PEM: the few pieces a certificate or a key needs (the cluster CA's
//! certificates, the enclave's TLS key and certificate). Reading is `attestation::x509::Der`.

use alloc::string::String;
use alloc::vec::Vec;

/// One DER tag-length-value, its length in the definite, minimal form.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = alloc::vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(contents);
    out
}

/// `der` as one PEM block of `kind` (`CERTIFICATE`, `EC PRIVATE KEY`, ...): base64 in lines of
/// 64 columns, as Go's `pem.Encode` writes it.
pub fn pem(kind: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = alloc::format!("-----BEGIN {kind}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(core::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&alloc::format!("-----END {kind}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::{pem, tlv};
    use crate::attestation::x509::Der;

    /// Every length is written in its minimal form, and reads back with the project's DER reader.
    #[test]
    fn lengths_are_minimal_and_read_back() {
        for (len, head) in [
            (0usize, &[0x04, 0x00][..]),
            (0x7f, &[0x04, 0x7f]),
            (0x80, &[0x04, 0x81, 0x80]),
            (0xff, &[0x04, 0x81, 0xff]),
            (0x100, &[0x04, 0x82, 0x01, 0x00]),
            (0x1_0000, &[0x04, 0x83, 0x01, 0x00, 0x00]),
        ] {
            let contents = alloc::vec![7u8; len];
            let out = tlv(0x04, &contents);
            assert_eq!(&out[..head.len()], head, "length {len}");
            assert_eq!(out.len(), head.len() + len);
            if len <= 0xffff {
                // The reader takes lengths of up to two bytes, as certificates need.
                let mut der = Der::new(&out);
                assert_eq!(der.expect(0x04, "").unwrap(), &contents[..]);
            }
        }
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let text = pem("CERTIFICATE", &[0xab; 100]);
        let lines: alloc::vec::Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(text.ends_with('\n'));
    }
}
