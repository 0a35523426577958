//! KMS's `CiphertextForRecipient`: a CMS (RFC 5652) `ContentInfo` holding `EnvelopedData`
//! with one `KeyTransRecipientInfo` (version 2, a subjectKeyIdentifier, RSAES-OAEP with
//! SHA-256 and MGF1-SHA-256) and AES-256-CBC content (PKCS#7 padding). KMS sends it as BER
//! with indefinite lengths and the encrypted content as a constructed `[0]` of OCTET STRING
//! segments; [`open`] reads BER or DER of that shape (bounded: at most [`MAX_ENVELOPE`] bytes,
//! nesting at most [`MAX_DEPTH`]), [`seal`] writes the shape KMS writes (for the simulated KMS
//! and the tests).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt as _, BlockModeEncrypt as _, KeyIvInit as _};
use rsa::{PrivateKey, PublicKey};
use sha2::{Digest as _, Sha256};

/// Largest envelope read (KMS caps the field at 6144 base64 characters).
pub const MAX_ENVELOPE: usize = 16 * 1024;
/// Deepest nesting read.
pub const MAX_DEPTH: usize = 16;

const OID_ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const NULL: u8 = 0x05;

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmsError {
    /// Not BER of the expected shape (the reason names the part).
    Malformed(&'static str),
    /// An algorithm other than RSAES-OAEP-SHA-256 / AES-256-CBC.
    Unsupported(&'static str),
    /// The key transport or the content did not decrypt (another key, or changed bytes).
    Decrypt(&'static str),
}

impl std::fmt::Display for CmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed CMS envelope: {why}"),
            Self::Unsupported(what) => write!(f, "unsupported CMS envelope: {what}"),
            Self::Decrypt(what) => write!(f, "the CMS envelope does not decrypt: {what}"),
        }
    }
}

impl std::error::Error for CmsError {}

/// One BER element: its tag byte and its content (for an indefinite length, the bytes up to
/// its end-of-contents).
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
}

impl Element<'_> {
    fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }
}

/// Reads BER elements one after another from a slice.
struct Reader<'a> {
    input: &'a [u8],
    depth: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8], depth: usize) -> Result<Self, CmsError> {
        if depth > MAX_DEPTH {
            return Err(CmsError::Malformed("nested too deep"));
        }
        Ok(Self { input, depth })
    }

    fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CmsError> {
        if self.input.len() < n {
            return Err(CmsError::Malformed("truncated"));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    /// The next element (high tag numbers are not part of this format and are refused).
    fn element(&mut self) -> Result<Element<'a>, CmsError> {
        let tag = *self
            .take(1)?
            .first()
            .ok_or(CmsError::Malformed("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(CmsError::Malformed("high tag number"));
        }
        let first = *self
            .take(1)?
            .first()
            .ok_or(CmsError::Malformed("truncated"))?;
        if first == 0x80 {
            if tag & 0x20 == 0 {
                return Err(CmsError::Malformed("indefinite length on a primitive"));
            }
            // Walk the children to find the end-of-contents.
            let start = self.input;
            let mut inner = Reader::new(self.input, self.depth + 1)?;
            loop {
                if inner.input.starts_with(&[0, 0]) {
                    let used = start.len() - inner.input.len();
                    let content = start.get(..used).ok_or(CmsError::Malformed("truncated"))?;
                    self.input = inner
                        .input
                        .get(2..)
                        .ok_or(CmsError::Malformed("truncated"))?;
                    return Ok(Element { tag, content });
                }
                if inner.is_empty() {
                    return Err(CmsError::Malformed("no end-of-contents"));
                }
                inner.element()?;
            }
        }
        let len = if first & 0x80 == 0 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count > 4 {
                return Err(CmsError::Malformed("length too long"));
            }
            self.take(count)?
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let content = self.take(len)?;
        Ok(Element { tag, content })
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Element<'a>, CmsError> {
        let element = self.element()?;
        if element.tag != tag {
            return Err(CmsError::Malformed(what));
        }
        Ok(element)
    }

    fn inside(&self, element: &Element<'a>) -> Result<Reader<'a>, CmsError> {
        Reader::new(element.content, self.depth + 1)
    }
}

/// The OCTET STRING `element`'s bytes, joining the segments of a constructed one.
fn octets(element: &Element<'_>, depth: usize, out: &mut Vec<u8>) -> Result<(), CmsError> {
    if !element.constructed() {
        out.extend_from_slice(element.content);
        return Ok(());
    }
    let mut inner = Reader::new(element.content, depth + 1)?;
    while !inner.is_empty() {
        let segment = inner.element()?;
        if segment.tag & 0x1f != OCTET_STRING {
            return Err(CmsError::Malformed(
                "a content segment is not an OCTET STRING",
            ));
        }
        octets(&segment, depth + 1, out)?;
    }
    Ok(())
}

/// Checks that an RSAES-OAEP parameters SEQUENCE names SHA-256 for the hash and for MGF1 (the
/// defaults, SHA-1, are refused).
fn check_oaep_params(params: &Element<'_>, depth: usize) -> Result<(), CmsError> {
    let unsupported = CmsError::Unsupported("RSAES-OAEP without SHA-256 and MGF1-SHA-256");
    let mut r = Reader::new(params.content, depth + 1)?;
    let mut hash_ok = false;
    let mut mgf_ok = false;
    while !r.is_empty() {
        let field = r.element()?;
        let mut inner = Reader::new(field.content, depth + 2)?;
        match field.tag {
            0xa0 => {
                let alg = inner.expect(SEQUENCE, "OAEP hash")?;
                let mut a = Reader::new(alg.content, depth + 3)?;
                hash_ok = a.expect(OID, "OAEP hash OID")?.content == OID_SHA256;
            }
            0xa1 => {
                let alg = inner.expect(SEQUENCE, "OAEP mask generation")?;
                let mut a = Reader::new(alg.content, depth + 3)?;
                let is_mgf1 = a.expect(OID, "MGF OID")?.content == OID_MGF1;
                let hash = a.expect(SEQUENCE, "MGF1 hash")?;
                let mut h = Reader::new(hash.content, depth + 4)?;
                mgf_ok = is_mgf1 && h.expect(OID, "MGF1 hash OID")?.content == OID_SHA256;
            }
            _ => return Err(unsupported),
        }
    }
    if hash_ok && mgf_ok {
        Ok(())
    } else {
        Err(unsupported)
    }
}

/// The parts of an envelope needed to open it.
struct Parts {
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn parse(envelope: &[u8]) -> Result<Parts, CmsError> {
    if envelope.len() > MAX_ENVELOPE {
        return Err(CmsError::Malformed("larger than 16 KiB"));
    }
    let mut top = Reader::new(envelope, 0)?;
    let info = top.expect(SEQUENCE, "ContentInfo")?;
    let mut info = top.inside(&info)?;
    if info.expect(OID, "contentType")?.content != OID_ENVELOPED_DATA {
        return Err(CmsError::Unsupported("content type is not envelopedData"));
    }
    let explicit = info.expect(0xa0, "[0] content")?;
    let mut explicit = info.inside(&explicit)?;
    let enveloped = explicit.expect(SEQUENCE, "EnvelopedData")?;
    let mut enveloped = explicit.inside(&enveloped)?;
    enveloped.expect(INTEGER, "EnvelopedData version")?;
    if enveloped.peek_tag() == Some(0xa0) {
        enveloped.element()?; // originatorInfo: nothing in it is needed.
    }
    let recipients = enveloped.expect(SET, "recipientInfos")?;
    let mut recipients = enveloped.inside(&recipients)?;
    let recipient = recipients.expect(SEQUENCE, "KeyTransRecipientInfo")?;
    if !recipients.is_empty() {
        return Err(CmsError::Unsupported("more than one recipient"));
    }
    let mut recipient = recipients.inside(&recipient)?;
    recipient.expect(INTEGER, "recipient version")?;
    recipient.element()?; // rid: subjectKeyIdentifier (KMS) or issuerAndSerialNumber.
    let algorithm = recipient.expect(SEQUENCE, "keyEncryptionAlgorithm")?;
    let mut algorithm = recipient.inside(&algorithm)?;
    if algorithm.expect(OID, "key encryption OID")?.content != OID_RSAES_OAEP {
        return Err(CmsError::Unsupported("key transport is not RSAES-OAEP"));
    }
    let params = algorithm.expect(SEQUENCE, "RSAES-OAEP parameters")?;
    check_oaep_params(&params, algorithm.depth)?;
    let encrypted_key = recipient
        .expect(OCTET_STRING, "encryptedKey")?
        .content
        .to_vec();
    let content = enveloped.expect(SEQUENCE, "EncryptedContentInfo")?;
    let mut content = enveloped.inside(&content)?;
    if content.expect(OID, "content type")?.content != OID_DATA {
        return Err(CmsError::Unsupported("encrypted content is not data"));
    }
    let algorithm = content.expect(SEQUENCE, "contentEncryptionAlgorithm")?;
    let mut algorithm = content.inside(&algorithm)?;
    if algorithm.expect(OID, "content encryption OID")?.content != OID_AES256_CBC {
        return Err(CmsError::Unsupported(
            "content encryption is not AES-256-CBC",
        ));
    }
    let iv = algorithm.expect(OCTET_STRING, "IV")?.content.to_vec();
    let encrypted = content.element()?;
    if encrypted.tag & 0xdf != 0x80 {
        return Err(CmsError::Malformed("encryptedContent"));
    }
    let mut ciphertext = Vec::new();
    octets(&encrypted, content.depth, &mut ciphertext)?;
    Ok(Parts {
        encrypted_key,
        iv,
        ciphertext,
    })
}

/// Opens an envelope with the recipient's RSA key: the plaintext (for KMS, the data key).
pub fn open(envelope: &[u8], key: &PrivateKey) -> Result<Vec<u8>, CmsError> {
    let parts = parse(envelope)?;
    let content_key = key
        .oaep_decrypt::<Sha256>(&parts.encrypted_key)
        .map_err(|_| CmsError::Decrypt("RSAES-OAEP key transport"))?;
    let content_key: [u8; 32] = content_key
        .try_into()
        .map_err(|_| CmsError::Decrypt("the content key is not 256 bits"))?;
    let iv: [u8; 16] = parts
        .iv
        .try_into()
        .map_err(|_| CmsError::Malformed("the IV is not 16 bytes"))?;
    cbc::Decryptor::<aes::Aes256>::new(&content_key.into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&parts.ciphertext)
        .map_err(|_| CmsError::Decrypt("AES-256-CBC content (bad padding)"))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(bytes.get(skip..).unwrap_or_default());
    }
    out.extend_from_slice(content);
    out
}

fn indefinite(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![tag, 0x80];
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// Seals `plaintext` to `recipient` in the shape KMS answers with: BER, indefinite lengths,
/// a subjectKeyIdentifier of SHA-256 over the key's DER, the content as `[0]` segments of at
/// most 1000 bytes.
pub fn seal(plaintext: &[u8], recipient: &PublicKey) -> Result<Vec<u8>, CmsError> {
    use rsa::pkcs8::EncodePublicKey as _;
    let mut content_key = [0u8; 32];
    let mut iv = [0u8; 16];
    getrandom::fill(&mut content_key).map_err(|_| CmsError::Decrypt("no randomness"))?;
    getrandom::fill(&mut iv).map_err(|_| CmsError::Decrypt("no randomness"))?;
    let encrypted_key = recipient
        .oaep_encrypt::<Sha256>(&content_key)
        .map_err(|_| CmsError::Decrypt("RSAES-OAEP key transport"))?;
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new(&content_key.into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext);
    let spki = recipient
        .to_public_key_der()
        .map_err(|_| CmsError::Malformed("the recipient key does not encode"))?;
    let sha256 = tlv(SEQUENCE, &[tlv(OID, OID_SHA256), tlv(NULL, &[])].concat());
    let oaep_params = tlv(
        SEQUENCE,
        &[
            tlv(0xa0, &sha256),
            tlv(
                0xa1,
                &tlv(SEQUENCE, &[tlv(OID, OID_MGF1), sha256.clone()].concat()),
            ),
        ]
        .concat(),
    );
    let recipient_info = tlv(
        SEQUENCE,
        &[
            tlv(INTEGER, &[2]),
            tlv(0x80, &Sha256::digest(spki.as_bytes())),
            tlv(SEQUENCE, &[tlv(OID, OID_RSAES_OAEP), oaep_params].concat()),
            tlv(OCTET_STRING, &encrypted_key),
        ]
        .concat(),
    );
    let segments: Vec<Vec<u8>> = ciphertext
        .chunks(1000)
        .map(|c| tlv(OCTET_STRING, c))
        .collect();
    let segment_refs: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
    let encrypted_content = indefinite(0xa0, &segment_refs);
    let content_info = indefinite(
        SEQUENCE,
        &[
            &tlv(OID, OID_DATA),
            &tlv(
                SEQUENCE,
                &[tlv(OID, OID_AES256_CBC), tlv(OCTET_STRING, &iv)].concat(),
            ),
            &encrypted_content,
        ],
    );
    let enveloped = indefinite(
        SEQUENCE,
        &[
            &tlv(INTEGER, &[2]),
            &tlv(SET, &recipient_info),
            &content_info,
        ],
    );
    Ok(indefinite(
        SEQUENCE,
        &[
            &tlv(OID, OID_ENVELOPED_DATA),
            &indefinite(0xa0, &[&enveloped]),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PrivateKey {
        let mut rng = getrandom::SysRng;
        PrivateKey::new(&mut rng, 2048).unwrap()
    }

    #[test]
    fn a_sealed_envelope_opens_with_its_key_only() {
        let k = key();
        let data_key = [9u8; 32];
        let envelope = seal(&data_key, k.as_ref()).unwrap();
        // KMS's shape: indefinite-length ContentInfo, envelopedData first.
        assert_eq!(&envelope[..4], &[0x30, 0x80, 0x06, 0x09]);
        assert_eq!(open(&envelope, &k).unwrap(), data_key);
        let other = key();
        assert_eq!(
            open(&envelope, &other).unwrap_err(),
            CmsError::Decrypt("RSAES-OAEP key transport")
        );
    }

    /// No flipped byte or cut makes the reader panic, and none before the IV yields another
    /// key. CMS content encryption (AES-CBC) carries no integrity: a flip in the IV or the
    /// ciphertext can change the key that comes out, which is why the enclave checks the key it
    /// gets against the key check stored with the blob.
    #[test]
    fn flipped_bytes_before_the_content_never_yield_another_key() {
        let k = key();
        let data_key = [5u8; 32];
        let envelope = seal(&data_key, k.as_ref()).unwrap();
        let iv = parse(&envelope).unwrap().iv;
        let iv_at = envelope
            .windows(16)
            .position(|w| w == iv.as_slice())
            .unwrap();
        for at in 0..envelope.len() {
            let mut bad = envelope.clone();
            bad[at] ^= 0x41;
            if let Ok(opened) = open(&bad, &k)
                && at < iv_at
            {
                assert_eq!(opened, data_key, "byte {at}");
            }
        }
        for cut in 0..envelope.len() {
            assert!(open(&envelope[..cut], &k).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn definite_lengths_and_primitive_content_also_read() {
        // The same envelope re-encoded as DER-like definite lengths with primitive content.
        let k = key();
        let envelope = seal(b"definite", k.as_ref()).unwrap();
        let parts = parse(&envelope).unwrap();
        let mut r = Reader::new(&envelope, 0).unwrap();
        let info = r.element().unwrap();
        let mut info_r = Reader::new(info.content, 1).unwrap();
        let oid = info_r.element().unwrap();
        assert_eq!(oid.content, OID_ENVELOPED_DATA);
        let rebuilt_content = tlv(
            SEQUENCE,
            &[
                tlv(OID, OID_DATA),
                tlv(
                    SEQUENCE,
                    &[tlv(OID, OID_AES256_CBC), tlv(OCTET_STRING, &parts.iv)].concat(),
                ),
                tlv(0x80, &parts.ciphertext),
            ]
            .concat(),
        );
        // Take the recipient SET from the original.
        let explicit = info_r.element().unwrap();
        let mut e = Reader::new(explicit.content, 2).unwrap();
        let env = e.element().unwrap();
        let mut env_r = Reader::new(env.content, 3).unwrap();
        env_r.element().unwrap();
        let set = env_r.element().unwrap();
        let der = tlv(
            SEQUENCE,
            &[
                tlv(OID, OID_ENVELOPED_DATA),
                tlv(
                    0xa0,
                    &tlv(
                        SEQUENCE,
                        &[tlv(INTEGER, &[2]), tlv(SET, set.content), rebuilt_content].concat(),
                    ),
                ),
            ]
            .concat(),
        );
        assert_eq!(open(&der, &k).unwrap(), b"definite");
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let k = key();
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        deep.extend(std::iter::repeat_n(0u8, 200));
        assert!(open(&deep, &k).is_err());
        assert_eq!(
            open(&vec![0x30; MAX_ENVELOPE + 1], &k).unwrap_err(),
            CmsError::Malformed("larger than 16 KiB")
        );
    }
}
