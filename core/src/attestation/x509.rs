//! The slice of X.509 (RFC 5280) a Nitro chain needs, read with a bounded DER reader: raw
//! tbsCertificate, issuer and subject bytes, validity, a P-384 key, basicConstraints and
//! keyUsage. Anything outside ecdsa-with-SHA384 over P-384 is refused.

use p384::ecdsa::signature::Verifier as _;

use super::AttestationError;

/// A certificate problem, before the caller adds the chain position.
pub(crate) type CertResult<T> = Result<T, &'static str>;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION_TAG: u8 = 0xa0;
const ISSUER_UID_TAG: u8 = 0x81;
const SUBJECT_UID_TAG: u8 = 0x82;
const EXTENSIONS_TAG: u8 = 0xa3;

/// AlgorithmIdentifier { ecdsa-with-SHA384 (1.2.840.10045.4.3.3) } with absent parameters, as
/// RFC 5758 §3.2 requires.
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
/// The content of SPKI's AlgorithmIdentifier: id-ecPublicKey, namedCurve secp384r1.
const EC_P384: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];

/// keyUsage bits as they sit in the first content byte (bit 0 is the most significant).
pub(crate) const KU_DIGITAL_SIGNATURE: u8 = 0x80;
pub(crate) const KU_KEY_CERT_SIGN: u8 = 0x04;

/// One parsed certificate; slices borrow the document.
pub(crate) struct Certificate<'a> {
    pub(crate) tbs: &'a [u8],
    pub(crate) issuer: &'a [u8],
    pub(crate) subject: &'a [u8],
    /// Unix seconds, inclusive bounds.
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
    pub(crate) key: p384::ecdsa::VerifyingKey,
    signature: p384::ecdsa::Signature,
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u64>,
    /// First byte of the keyUsage bits; `None` when the extension is absent.
    pub(crate) key_usage: Option<u8>,
}

/// A bounded DER reader (also the CSR parser's, [`crate::csr`]).
pub(crate) struct Der<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Der<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> CertResult<u8> {
        let b = self.peek().ok_or("truncated DER")?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    /// One TLV: (tag, content, whole encoding). Only low tag numbers and minimal definite
    /// lengths (DER) are accepted; the length is checked against the bytes left.
    pub(crate) fn tlv(&mut self) -> CertResult<(u8, &'a [u8], &'a [u8])> {
        let start = self.pos;
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err("high-tag-number DER form");
        }
        let first = self.byte()?;
        let len = match first {
            0..=0x7f => usize::from(first),
            0x81 => {
                let l = self.byte()?;
                if l < 0x80 {
                    return Err("non-minimal DER length");
                }
                usize::from(l)
            }
            0x82 => {
                let hi = self.byte()?;
                let lo = self.byte()?;
                if hi == 0 {
                    return Err("non-minimal DER length");
                }
                usize::from(hi) << 8 | usize::from(lo)
            }
            _ => return Err("unsupported DER length"),
        };
        let end = self.pos.checked_add(len).ok_or("DER length overflow")?;
        let content = self
            .buf
            .get(self.pos..end)
            .ok_or("DER length past the end")?;
        let whole = self.buf.get(start..end).ok_or("DER length past the end")?;
        self.pos = end;
        Ok((tag, content, whole))
    }

    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> CertResult<&'a [u8]> {
        let (t, content, _) = self.tlv()?;
        if t == tag { Ok(content) } else { Err(what) }
    }

    pub(crate) fn expect_whole(&mut self, tag: u8, what: &'static str) -> CertResult<&'a [u8]> {
        let (t, _, whole) = self.tlv()?;
        if t == tag { Ok(whole) } else { Err(what) }
    }

    pub(crate) fn finish(&self, what: &'static str) -> CertResult<()> {
        if self.is_empty() { Ok(()) } else { Err(what) }
    }
}

/// Parses one DER certificate (the whole input must be one Certificate).
pub(crate) fn parse(der: &[u8]) -> CertResult<Certificate<'_>> {
    let mut outer = Der::new(der);
    let body = outer.expect(SEQUENCE, "certificate is not a SEQUENCE")?;
    outer.finish("bytes after the certificate")?;
    let mut cert = Der::new(body);
    let tbs = cert.expect_whole(SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let sig_alg = cert.expect_whole(SEQUENCE, "signatureAlgorithm is not a SEQUENCE")?;
    if sig_alg != ECDSA_SHA384 {
        return Err("signature algorithm is not ecdsa-with-SHA384");
    }
    let sig_bits = cert.expect(BIT_STRING, "signatureValue is not a BIT STRING")?;
    cert.finish("bytes after signatureValue")?;
    let sig_der = match sig_bits.split_first() {
        Some((0, rest)) => rest,
        _ => return Err("signatureValue has unused bits"),
    };
    let signature = p384::ecdsa::Signature::from_der(sig_der)
        .map_err(|_| "signatureValue is not an ECDSA signature")?;

    let mut t = Der::new(tbs);
    let t_body = t.expect(SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut t = Der::new(t_body);
    // Extensions exist only in v3, and the chain rules need them.
    if t.expect(VERSION_TAG, "certificate is not X.509 v3")? != [INTEGER, 1, 2] {
        return Err("certificate is not X.509 v3");
    }
    t.expect(INTEGER, "serialNumber is not an INTEGER")?;
    if t.expect_whole(SEQUENCE, "signature is not a SEQUENCE")? != ECDSA_SHA384 {
        return Err("tbsCertificate signature algorithm is not ecdsa-with-SHA384");
    }
    let issuer = t.expect_whole(SEQUENCE, "issuer is not a Name")?;
    let validity = t.expect(SEQUENCE, "validity is not a SEQUENCE")?;
    let subject = t.expect_whole(SEQUENCE, "subject is not a Name")?;
    let spki = t.expect(SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;

    let mut v = Der::new(validity);
    let not_before = time(&mut v)?;
    let not_after = time(&mut v)?;
    v.finish("bytes after the validity")?;

    let mut s = Der::new(spki);
    if s.expect(SEQUENCE, "public key algorithm is not a SEQUENCE")? != EC_P384 {
        return Err("public key is not an EC P-384 key");
    }
    let point = match s
        .expect(BIT_STRING, "public key is not a BIT STRING")?
        .split_first()
    {
        Some((0, rest)) => rest,
        _ => return Err("public key has unused bits"),
    };
    s.finish("bytes after the public key")?;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| "public key is not a P-384 point")?;

    if t.peek() == Some(ISSUER_UID_TAG) {
        t.tlv()?;
    }
    if t.peek() == Some(SUBJECT_UID_TAG) {
        t.tlv()?;
    }
    let mut ca = false;
    let mut path_len = None;
    let mut key_usage = None;
    if !t.is_empty() {
        let exts = t.expect(EXTENSIONS_TAG, "unexpected field after the public key")?;
        t.finish("bytes after the extensions")?;
        let mut e = Der::new(exts);
        let list = e.expect(SEQUENCE, "extensions is not a SEQUENCE")?;
        e.finish("bytes after the extensions")?;
        let mut list = Der::new(list);
        let (mut seen_bc, mut seen_ku) = (false, false);
        while !list.is_empty() {
            let mut ext = Der::new(list.expect(SEQUENCE, "extension is not a SEQUENCE")?);
            let oid = ext.expect(OID, "extension id is not an OID")?;
            let mut critical = false;
            if ext.peek() == Some(BOOLEAN) {
                critical = boolean(ext.expect(BOOLEAN, "critical is not a BOOLEAN")?)?;
            }
            let value = ext.expect(OCTET_STRING, "extension value is not an OCTET STRING")?;
            ext.finish("bytes after an extension")?;
            if oid == OID_BASIC_CONSTRAINTS {
                if seen_bc {
                    return Err("basicConstraints appears twice");
                }
                seen_bc = true;
                (ca, path_len) = basic_constraints(value)?;
            } else if oid == OID_KEY_USAGE {
                if seen_ku {
                    return Err("keyUsage appears twice");
                }
                seen_ku = true;
                key_usage = Some(key_usage_bits(value)?);
            } else if critical {
                // RFC 5280 §4.2: a critical extension we do not understand rejects the certificate.
                return Err("unknown critical extension");
            }
        }
    }
    Ok(Certificate {
        tbs,
        issuer,
        subject,
        not_before,
        not_after,
        key,
        signature,
        ca,
        path_len,
        key_usage,
    })
}

impl Certificate<'_> {
    /// Checks this certificate's signature with `issuer`'s key.
    pub(crate) fn signed_by(&self, issuer: &Certificate<'_>) -> CertResult<()> {
        issuer
            .key
            .verify(self.tbs, &self.signature)
            .map_err(|_| "signature does not verify with the issuer's key")
    }
}

fn boolean(content: &[u8]) -> CertResult<bool> {
    match content {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err("BOOLEAN is not DER"),
    }
}

fn basic_constraints(value: &[u8]) -> CertResult<(bool, Option<u64>)> {
    let mut outer = Der::new(value);
    let mut d = Der::new(outer.expect(SEQUENCE, "basicConstraints is not a SEQUENCE")?);
    outer.finish("bytes after basicConstraints")?;
    let mut ca = false;
    if d.peek() == Some(BOOLEAN) {
        ca = boolean(d.expect(BOOLEAN, "cA is not a BOOLEAN")?)?;
    }
    let mut path_len = None;
    if !d.is_empty() {
        let int = d.expect(INTEGER, "pathLenConstraint is not an INTEGER")?;
        d.finish("bytes after pathLenConstraint")?;
        path_len = Some(match int {
            [n] if *n < 0x80 => u64::from(*n),
            [0, n] if *n >= 0x80 => u64::from(*n),
            _ => return Err("pathLenConstraint out of range"),
        });
    }
    Ok((ca, path_len))
}

fn key_usage_bits(value: &[u8]) -> CertResult<u8> {
    let mut d = Der::new(value);
    let bits = d.expect(BIT_STRING, "keyUsage is not a BIT STRING")?;
    d.finish("bytes after keyUsage")?;
    match bits {
        [unused, first, ..] if *unused < 8 => Ok(*first),
        _ => Err("keyUsage is empty"),
    }
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049 per RFC 5280 §4.1.2.5.1) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) as unix seconds.
fn time(d: &mut Der<'_>) -> CertResult<u64> {
    let (tag, content, _) = d.tlv()?;
    let (year, rest) = match (tag, content.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(content, 0, 2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 15) => (digits(content, 0, 4)?, 4),
        _ => return Err("validity time is not UTCTime or GeneralizedTime"),
    };
    if content.last() != Some(&b'Z') {
        return Err("validity time is not in UTC");
    }
    let month = digits(content, rest, 2)?;
    let day = digits(content, rest + 2, 2)?;
    let hour = digits(content, rest + 4, 2)?;
    let minute = digits(content, rest + 6, 2)?;
    let second = digits(content, rest + 8, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err("validity time out of range");
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(s: &[u8], at: usize, n: usize) -> CertResult<u64> {
    let slice = s
        .get(at..at.saturating_add(n))
        .ok_or("validity time too short")?;
    let mut v = 0u64;
    for c in slice {
        if !c.is_ascii_digit() {
            return Err("validity time has a non-digit");
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Ok(v)
}

const fn leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

const fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a date on or after it (years here are ≥ 1950, so earlier dates
/// saturate to 0, which only makes a notBefore more permissive for pre-1970 certificates).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let mut days = 0u64;
    // Bounded: year ≤ 9999 from four digits.
    for y in 1970..year {
        days += if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
            366
        } else {
            365
        };
    }
    for m in 1..month {
        days += days_in_month(year, m);
    }
    days + day - 1
}

/// The DER SubjectPublicKeyInfo of any X.509 certificate (whatever its key type), e.g. to
/// hash a TLS certificate for attestation `user_data`.
pub(crate) fn subject_public_key_info(der: &[u8]) -> Option<&[u8]> {
    let mut outer = Der::new(der);
    let body = outer.expect(SEQUENCE, "").ok()?;
    let tbs = Der::new(body).expect(SEQUENCE, "").ok()?;
    let mut t = Der::new(tbs);
    if t.peek() == Some(VERSION_TAG) {
        t.tlv().ok()?;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        t.tlv().ok()?;
    }
    t.expect_whole(SEQUENCE, "").ok()
}

/// Maps a certificate problem to its chain position.
pub(crate) const fn at(index: usize, reason: &'static str) -> AttestationError {
    AttestationError::Certificate { index, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_to_unix_seconds() {
        let cases: &[(u8, &[u8], Option<u64>)] = &[
            (UTC_TIME, b"700101000000Z", Some(0)),
            (UTC_TIME, b"241114212426Z", Some(1_731_619_466)),
            (UTC_TIME, b"491028142805Z", Some(2_519_044_085)),
            // Before the epoch: saturates to day 0 (see days_from_civil).
            (UTC_TIME, b"500101000000Z", Some(0)),
            (GENERALIZED_TIME, b"20240229235959Z", Some(1_709_251_199)),
            (GENERALIZED_TIME, b"20230229000000Z", None),
            (UTC_TIME, b"241314212426Z", None),
            (UTC_TIME, b"24111421242Z", None),
            (UTC_TIME, b"241114212426+", None),
            (UTC_TIME, b"2411142124a6Z", None),
            (OCTET_STRING, b"241114212426Z", None),
        ];
        for (tag, text, want) in cases {
            let mut enc = alloc::vec![*tag, text.len() as u8];
            enc.extend_from_slice(text);
            let got = time(&mut Der::new(&enc)).ok();
            assert_eq!(got, *want, "{}", core::str::from_utf8(text).unwrap());
        }
    }

    #[test]
    fn der_lengths_are_minimal_and_bounded() {
        assert!(Der::new(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).tlv().is_err());
        assert!(Der::new(&[0x30, 0x82, 0x00, 0x90]).tlv().is_err());
        assert!(
            Der::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff])
                .tlv()
                .is_err()
        );
        assert!(Der::new(&[0x30, 0x80, 0, 0]).tlv().is_err());
        assert!(Der::new(&[0x30, 0x82, 0xff, 0xff, 1]).tlv().is_err());
        assert!(Der::new(&[0x1f, 0x01, 0]).tlv().is_err());
        assert_eq!(Der::new(&[0x04, 0x01, 7]).tlv().unwrap().1, &[7]);
    }
}
