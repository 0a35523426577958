//! The cluster CA and kube-controller-manager's CSR signer (`pkg/controller/certificates/signer`
//! and `authority`): an ECDSA P-256 CA whose key the runtime derives inside the enclave, the
//! checks kube's signer makes per signer name (`ValidateKubeletClientCSR`,
//! `ValidateKubeletServingCSR`), and `CertificateAuthority.Sign` under kube's
//! `PermissiveSigningPolicy` (5 minutes of backdating, the end not backdated below 8 hours).
//! One difference: the certificate's subject is the request's subject DER as sent, where Go
//! re-encodes the parsed name (same attributes; Go may reorder them and pick string types).

use alloc::string::String;
use alloc::vec::Vec;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use sha1::Digest as _;

use super::{ATTRIBUTES_TAG, BIT_STRING, INTEGER, OBJECT_IDENTIFIER, SEQUENCE};
use crate::UnixTime;
use crate::attestation::x509::Der;
use crate::der::{pem, tlv};

/// The signer names whose requests this signer signs (kube's `csrsigning` controller runs one
/// signer per name; the other two, `kube-apiserver-client` and `legacy-unknown`, are not run).
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The kubelet serving certificate signer.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// kube-controller-manager's `--cluster-signing-duration` default (8760h).
pub const DEFAULT_CERT_TTL_SECS: u64 = 365 * 24 * 3600;
/// The signer's backdating of `notBefore`, and of `notAfter` for certificates of at least
/// [`SHORT_SECS`].
const BACKDATE_SECS: u64 = 5 * 60;
const SHORT_SECS: u64 = 8 * 3600;
/// The signer's floor for a requested `expirationSeconds` (twice the backdate).
const MIN_TTL_SECS: u64 = 10 * 60;

/// The CA certificate's validity: from 2025-01-01 to RFC 5280's "no well-defined expiration",
/// fixed so that the same key always makes the same certificate (restarts of a durable cluster).
const CA_NOT_BEFORE: &str = "250101000000Z";
const CA_NOT_AFTER: &str = "99991231235959Z";
/// The CA's subject common name.
pub const CA_COMMON_NAME: &str = "nautilus-cluster-ca";
/// The subject common name of the API server's own serving certificate (enclave TLS mode).
pub const API_SERVER_COMMON_NAME: &str = "nautilus-enclave";

mod oid {
    pub(super) const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub(super) const EC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub(super) const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub(super) const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    pub(super) const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    pub(super) const EXTENSION_REQUEST: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
    pub(super) const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub(super) const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub(super) const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub(super) const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub(super) const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub(super) const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
}

/// The subject and names of a certificate request, as Go's `x509.CertificateRequest` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `Subject.CommonName` (the last CN, as Go keeps it).
    pub common_name: String,
    /// `Subject.Organization`, in order.
    pub organizations: Vec<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs (raw 4 or 16 bytes).
    pub ip_addresses: Vec<Vec<u8>>,
    /// Email SANs.
    pub email_addresses: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    subject_der: Vec<u8>,
    spki_der: Vec<u8>,
    san_value: Option<Vec<u8>>,
}

impl Request {
    /// Reads a request's PEM after [`super::check_request`] accepted it (a signature that does
    /// not verify is refused here too). `Err` is the reason.
    pub fn parse(pem: &[u8]) -> Result<Self, String> {
        super::check_request(pem)?;
        let text = core::str::from_utf8(pem).unwrap_or("");
        let der = super::pem_block(text)
            .and_then(|b| b.der)
            .ok_or_else(|| String::from(super::MALFORMED))?;
        Self::of_der(&der).ok_or_else(|| String::from(super::MALFORMED))
    }

    /// A request whose subject and names the signer chooses, for the public key of the DER
    /// PKCS#10 request `der`, whose signature must verify (the caller holds the key). This is
    /// how k3s' supervisor signs an agent's certificates: it takes only the key of the
    /// agent's request (an empty subject) and names the certificate itself. Organizations come
    /// before the common name in the subject, as Go orders them. `Err` is the reason, in Go's
    /// words.
    pub fn for_key_of(
        der: &[u8],
        common_name: &str,
        organizations: &[&str],
        dns_names: &[&str],
        ip_addresses: &[Vec<u8>],
    ) -> Result<Self, String> {
        super::verify(der)?;
        let read = Self::of_der(der).ok_or_else(|| String::from(super::MALFORMED))?;
        let attribute = |kind: &[u8], value: &str| {
            tlv(
                SET,
                &tlv(
                    SEQUENCE,
                    &[
                        tlv(OBJECT_IDENTIFIER, kind),
                        tlv(UTF8_STRING, value.as_bytes()),
                    ]
                    .concat(),
                ),
            )
        };
        let mut rdns: Vec<u8> = organizations
            .iter()
            .flat_map(|o| attribute(oid::ORGANIZATION, o))
            .collect();
        rdns.extend(attribute(oid::COMMON_NAME, common_name));
        let names: Vec<u8> = dns_names
            .iter()
            .flat_map(|d| tlv(0x82, d.as_bytes()))
            .chain(ip_addresses.iter().flat_map(|ip| tlv(0x87, ip)))
            .collect();
        Ok(Self {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|&o| o.into()).collect(),
            dns_names: dns_names.iter().map(|&d| d.into()).collect(),
            ip_addresses: ip_addresses.to_vec(),
            email_addresses: Vec::new(),
            uris: Vec::new(),
            subject_der: tlv(SEQUENCE, &rdns),
            spki_der: read.spki_der,
            san_value: (!names.is_empty()).then(|| tlv(SEQUENCE, &names)),
        })
    }

    fn of_der(der: &[u8]) -> Option<Self> {
        let mut outer = Der::new(der);
        let mut req = Der::new(outer.expect(SEQUENCE, "").ok()?);
        let mut info = Der::new(req.expect(SEQUENCE, "").ok()?);
        info.expect(INTEGER, "").ok()?;
        let subject_der = info.expect_whole(SEQUENCE, "").ok()?.to_vec();
        let spki_der = info.expect_whole(SEQUENCE, "").ok()?.to_vec();
        let mut out = Self {
            subject_der,
            spki_der,
            ..Self::default()
        };
        out.read_subject()?;
        if !info.is_empty() {
            let mut attributes = Der::new(info.expect(ATTRIBUTES_TAG, "").ok()?);
            while !attributes.is_empty() {
                let mut attribute = Der::new(attributes.expect(SEQUENCE, "").ok()?);
                let kind = attribute.expect(OBJECT_IDENTIFIER, "").ok()?;
                let mut values = Der::new(attribute.expect(SET, "").ok()?);
                if kind != oid::EXTENSION_REQUEST {
                    continue;
                }
                while !values.is_empty() {
                    let mut extensions = Der::new(values.expect(SEQUENCE, "").ok()?);
                    while !extensions.is_empty() {
                        let mut ext = Der::new(extensions.expect(SEQUENCE, "").ok()?);
                        let id = ext.expect(OBJECT_IDENTIFIER, "").ok()?;
                        if ext.peek() == Some(BOOLEAN) {
                            ext.tlv().ok()?;
                        }
                        let value = ext.expect(OCTET_STRING, "").ok()?;
                        if id == oid::SUBJECT_ALT_NAME {
                            out.read_names(value)?;
                            out.san_value = Some(value.to_vec());
                        }
                    }
                }
            }
        }
        Some(out)
    }

    fn read_subject(&mut self) -> Option<()> {
        let mut name = Der::new(self.subject_der.get(..)?);
        let mut name = Der::new(name.expect(SEQUENCE, "").ok()?);
        let mut found = (None, Vec::new());
        while !name.is_empty() {
            let mut rdn = Der::new(name.expect(SET, "").ok()?);
            while !rdn.is_empty() {
                let mut atv = Der::new(rdn.expect(SEQUENCE, "").ok()?);
                let kind = atv.expect(OBJECT_IDENTIFIER, "").ok()?;
                let (_, value, _) = atv.tlv().ok()?;
                let value = String::from(core::str::from_utf8(value).ok()?);
                if kind == oid::COMMON_NAME {
                    found.0 = Some(value);
                } else if kind == oid::ORGANIZATION {
                    found.1.push(value);
                }
            }
        }
        self.common_name = found.0.unwrap_or_default();
        self.organizations = found.1;
        Some(())
    }

    fn read_names(&mut self, value: &[u8]) -> Option<()> {
        let mut outer = Der::new(value);
        let mut names = Der::new(outer.expect(SEQUENCE, "").ok()?);
        while !names.is_empty() {
            let (tag, content, _) = names.tlv().ok()?;
            let text = || core::str::from_utf8(content).ok().map(String::from);
            match tag {
                0x81 => self.email_addresses.push(text()?),
                0x82 => self.dns_names.push(text()?),
                0x86 => self.uris.push(text()?),
                0x87 => self.ip_addresses.push(content.to_vec()),
                _ => {}
            }
        }
        Some(())
    }

    fn no_other_subject_alt_names(&self, dns_allowed: bool) -> Result<(), String> {
        if !dns_allowed && !self.dns_names.is_empty() {
            return Err("DNS subjectAltNames are not allowed".into());
        }
        if !self.email_addresses.is_empty() {
            return Err("Email subjectAltNames are not allowed".into());
        }
        if !dns_allowed && !self.ip_addresses.is_empty() {
            return Err("IP subjectAltNames are not allowed".into());
        }
        if !self.uris.is_empty() {
            return Err("URI subjectAltNames are not allowed".into());
        }
        Ok(())
    }

    fn organization_is_system_nodes(&self) -> Result<(), String> {
        if self.organizations.len() == 1
            && self
                .organizations
                .first()
                .is_some_and(|o| o == "system:nodes")
        {
            Ok(())
        } else {
            Err("subject organization is not system:nodes".into())
        }
    }

    fn common_name_is_node(&self) -> Result<(), String> {
        if self.common_name.starts_with("system:node:") {
            Ok(())
        } else {
            Err("subject common name does not begin with system:node:".into())
        }
    }
}

/// Whether a kubelet's serving certificate (DER) names `node` as kube's `kubelet-serving`
/// signer issues it: subject `CN=system:node:NODE` in organization `system:nodes`.
/// kube-apiserver checks only the kubelet's address; this also refuses, for that address,
/// another node's certificate. `Err` holds the common name found (`None`: it does not read).
pub fn serving_certificate_names_node(der: &[u8], node: &str) -> Result<(), Option<String>> {
    let (common_name, organizations) = certificate_subject(der).ok_or(None)?;
    let names_node = common_name
        .strip_prefix("system:node:")
        .is_some_and(|name| name == node);
    if names_node && organizations.iter().any(|o| o == "system:nodes") {
        Ok(())
    } else {
        Err(Some(common_name))
    }
}

/// The subject's common name and organizations of a DER certificate (a client certificate the
/// TLS handshake verified), as kube's x509 authenticator reads them into a user.
pub fn certificate_subject(der: &[u8]) -> Option<(String, Vec<String>)> {
    let mut outer = Der::new(der);
    let mut cert = Der::new(outer.expect(SEQUENCE, "").ok()?);
    let mut tbs = Der::new(cert.expect(SEQUENCE, "").ok()?);
    if tbs.peek() == Some(0xa0) {
        tbs.tlv().ok()?;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        tbs.tlv().ok()?;
    }
    let mut req = Request {
        subject_der: tbs.expect_whole(SEQUENCE, "").ok()?.to_vec(),
        ..Request::default()
    };
    req.read_subject()?;
    Some((req.common_name, req.organizations))
}

const SET: u8 = 0x31;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;

/// `usages` as a set equals one of `wanted` (kube compares `sets.String`s).
fn usages_are(usages: &[&str], wanted: &[&[&str]]) -> bool {
    let mut have: Vec<&str> = usages.to_vec();
    have.sort_unstable();
    have.dedup();
    wanted.iter().any(|w| {
        let mut w = w.to_vec();
        w.sort_unstable();
        w == have
    })
}

/// `ValidateKubeletClientCSR`, with kube's error texts.
pub fn validate_kubelet_client(req: &Request, usages: &[&str]) -> Result<(), String> {
    req.organization_is_system_nodes()?;
    req.no_other_subject_alt_names(false)?;
    req.common_name_is_node()?;
    if !usages_are(
        usages,
        &[
            &["digital signature", "key encipherment", "client auth"],
            &["digital signature", "client auth"],
        ],
    ) {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// `ValidateKubeletServingCSR`, with kube's error texts.
pub fn validate_kubelet_serving(req: &Request, usages: &[&str]) -> Result<(), String> {
    req.organization_is_system_nodes()?;
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    req.no_other_subject_alt_names(true)?;
    if !usages_are(
        usages,
        &[
            &["digital signature", "key encipherment", "server auth"],
            &["digital signature", "server auth"],
        ],
    ) {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    req.common_name_is_node()
}

/// The signer's check for `signer_name`: `Ok(false)` for a name this signer does not sign.
pub fn check_for_signer(req: &Request, usages: &[&str], signer_name: &str) -> Result<bool, String> {
    match signer_name {
        KUBELET_CLIENT_SIGNER => validate_kubelet_client(req, usages).map(|()| true),
        KUBELET_SERVING_SIGNER => validate_kubelet_serving(req, usages).map(|()| true),
        _ => Ok(false),
    }
}

/// The signer's `duration`: the requested `expirationSeconds` within [10 min, `ttl`].
pub fn duration_secs(expiration_seconds: Option<u64>, ttl: u64) -> u64 {
    match expiration_seconds {
        None => ttl,
        Some(requested) if requested > ttl => ttl,
        Some(requested) => requested.max(MIN_TTL_SECS),
    }
}

/// The cluster CA: a P-256 key and its self-signed certificate.
#[derive(Clone)]
pub struct ClusterCa {
    signing: SigningKey,
    key_id: [u8; 20],
    subject_der: Vec<u8>,
    cert_der: Vec<u8>,
}

impl core::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// The CA whose scalar is `secret` (32 secret bytes from the runtime: derived from the
    /// cluster data key, or random); a secret that is no valid scalar is rehashed, so the same
    /// secret always gives the same CA. `None` only if 256 rehashes all fail.
    pub fn from_secret(secret: &[u8; 32]) -> Option<Self> {
        let signing = core::iter::once(*secret)
            .chain((0u8..=u8::MAX).map(|round| {
                let mut h = sha2::Sha256::new();
                h.update(b"nautilus cluster ca rehash");
                h.update(secret);
                h.update([round]);
                h.finalize().into()
            }))
            .find_map(|bytes: [u8; 32]| SigningKey::from_slice(&bytes).ok())?;
        let point = signing.verifying_key().to_sec1_point(false);
        let public = point.as_bytes();
        // RFC 5280's method 1: the SHA-1 of the subjectPublicKey bits (Go does the same).
        let key_id: [u8; 20] = sha1::Sha1::digest(public).into();
        let spki = ec_spki(public);
        let subject_der = tlv(
            SEQUENCE,
            &tlv(
                SET,
                &tlv(
                    SEQUENCE,
                    &[
                        tlv(OBJECT_IDENTIFIER, oid::COMMON_NAME),
                        tlv(UTF8_STRING, CA_COMMON_NAME.as_bytes()),
                    ]
                    .concat(),
                ),
            ),
        );
        let extensions = [
            // digitalSignature, keyEncipherment, keyCertSign (kubeadm's CA usages).
            extension(oid::KEY_USAGE, true, &tlv(BIT_STRING, &[0x02, 0xa4])),
            extension(
                oid::BASIC_CONSTRAINTS,
                true,
                &tlv(SEQUENCE, &tlv(BOOLEAN, &[0xff])),
            ),
            extension(oid::SUBJECT_KEY_ID, false, &tlv(OCTET_STRING, &key_id)),
        ]
        .concat();
        let mut ca = Self {
            signing,
            key_id,
            subject_der: subject_der.clone(),
            cert_der: Vec::new(),
        };
        let tbs = ca.tbs(
            &[0x01],
            CA_NOT_BEFORE,
            CA_NOT_AFTER,
            &subject_der,
            &spki,
            &extensions,
        );
        ca.cert_der = ca.signed(&tbs);
        Some(ca)
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate as one PEM block, as `ca.crt` and `client-ca-file` carry it.
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.cert_der)
    }

    /// `CertificateAuthority.Sign` of a parsed, checked request for `ttl_secs` under kube's
    /// permissive policy at `now`, with `serial` (16 random bytes): the certificate's PEM, or
    /// Go's error for usages it does not know.
    pub fn sign(
        &self,
        req: &Request,
        usages: &[&str],
        ttl_secs: u64,
        now: UnixTime,
        serial: [u8; 16],
    ) -> Result<String, String> {
        self.sign_der(req, usages, ttl_secs, now, serial)
            .map(|der| pem("CERTIFICATE", &der))
    }

    /// The API server's own serving certificate (enclave TLS mode), DER: for the key whose DER
    /// `SubjectPublicKeyInfo` is `spki_der` (a key the caller made and holds, so there is no
    /// request to verify), subject `CN=`[`API_SERVER_COMMON_NAME`], the given DNS and IP (4 or 16 raw bytes)
    /// names, `server auth` with `digital signature`, signed as [`Self::sign`] signs. Clients
    /// that trust this CA (kubeconfigs, kubelets, pods through `kube-root-ca.crt`) then trust
    /// every serving key the enclave makes, across restarts. `Err` when `spki_der` is not one
    /// DER SEQUENCE.
    pub fn sign_server_certificate(
        &self,
        spki_der: &[u8],
        dns_names: &[&str],
        ip_addresses: &[Vec<u8>],
        ttl_secs: u64,
        now: UnixTime,
        serial: [u8; 16],
    ) -> Result<Vec<u8>, String> {
        let mut spki = Der::new(spki_der);
        let whole = spki
            .expect_whole(SEQUENCE, "")
            .map_err(|_| String::from("the public key is not a DER SubjectPublicKeyInfo"))?;
        if !spki.is_empty() || whole.len() != spki_der.len() {
            return Err("the public key is not a DER SubjectPublicKeyInfo".into());
        }
        let subject = tlv(
            SEQUENCE,
            &tlv(
                SET,
                &tlv(
                    SEQUENCE,
                    &[
                        tlv(OBJECT_IDENTIFIER, oid::COMMON_NAME),
                        tlv(UTF8_STRING, API_SERVER_COMMON_NAME.as_bytes()),
                    ]
                    .concat(),
                ),
            ),
        );
        let names: Vec<u8> = dns_names
            .iter()
            .flat_map(|d| tlv(0x82, d.as_bytes()))
            .chain(ip_addresses.iter().flat_map(|ip| tlv(0x87, ip)))
            .collect();
        let req = Request {
            common_name: API_SERVER_COMMON_NAME.into(),
            dns_names: dns_names.iter().map(|&d| d.into()).collect(),
            ip_addresses: ip_addresses.to_vec(),
            subject_der: subject,
            spki_der: spki_der.to_vec(),
            san_value: (!names.is_empty()).then(|| tlv(SEQUENCE, &names)),
            ..Request::default()
        };
        self.sign_der(
            &req,
            &["digital signature", "server auth"],
            ttl_secs,
            now,
            serial,
        )
    }

    fn sign_der(
        &self,
        req: &Request,
        usages: &[&str],
        ttl_secs: u64,
        now: UnixTime,
        serial: [u8; 16],
    ) -> Result<Vec<u8>, String> {
        let (key_usage, ext_key_usages) = key_usages(usages)?;
        let not_before = now.secs().saturating_sub(BACKDATE_SECS);
        let not_after = if ttl_secs < SHORT_SECS {
            now.secs().saturating_add(ttl_secs)
        } else {
            now.secs()
                .saturating_add(ttl_secs)
                .saturating_sub(BACKDATE_SECS)
        };
        let mut extensions = Vec::new();
        if key_usage != 0 {
            extensions.extend(extension(oid::KEY_USAGE, true, &key_usage_bits(key_usage)));
        }
        if !ext_key_usages.is_empty() {
            let list: Vec<u8> = ext_key_usages
                .iter()
                .flat_map(|o| tlv(OBJECT_IDENTIFIER, o))
                .collect();
            extensions.extend(extension(oid::EXT_KEY_USAGE, false, &tlv(SEQUENCE, &list)));
        }
        extensions.extend(extension(oid::BASIC_CONSTRAINTS, true, &tlv(SEQUENCE, &[])));
        extensions.extend(extension(
            oid::AUTHORITY_KEY_ID,
            false,
            &tlv(SEQUENCE, &tlv(0x80, &self.key_id)),
        ));
        if let Some(san) = &req.san_value {
            extensions.extend(extension(oid::SUBJECT_ALT_NAME, false, san));
        }
        let mut serial = serial;
        // A positive INTEGER in minimal form: top bit clear, first byte not zero.
        if let Some(first) = serial.first_mut() {
            *first = (*first & 0x7f) | 0x40;
        }
        let tbs = self.tbs(
            &serial,
            &time(not_before),
            &time(not_after),
            &req.subject_der,
            &req.spki_der,
            &extensions,
        );
        Ok(self.signed(&tbs))
    }

    fn tbs(
        &self,
        serial: &[u8],
        not_before: &str,
        not_after: &str,
        subject: &[u8],
        spki: &[u8],
        extensions: &[u8],
    ) -> Vec<u8> {
        let time_tlv = |t: &str| {
            let tag = if t.len() == 13 {
                UTC_TIME
            } else {
                GENERALIZED_TIME
            };
            tlv(tag, t.as_bytes())
        };
        tlv(
            SEQUENCE,
            &[
                tlv(0xa0, &tlv(INTEGER, &[0x02])),
                tlv(INTEGER, serial),
                signature_algorithm(),
                self.subject_der.clone(),
                tlv(
                    SEQUENCE,
                    &[time_tlv(not_before), time_tlv(not_after)].concat(),
                ),
                subject.to_vec(),
                spki.to_vec(),
                tlv(0xa3, &tlv(SEQUENCE, extensions)),
            ]
            .concat(),
        )
    }

    /// The Certificate of `tbs`, signed with ECDSA-SHA256.
    fn signed(&self, tbs: &[u8]) -> Vec<u8> {
        let signature: Signature = self.signing.sign(tbs);
        let bytes = signature.to_bytes();
        let (r, s) = bytes.split_at(32);
        let sig = tlv(SEQUENCE, &[der_uint(r), der_uint(s)].concat());
        let mut bits = alloc::vec![0u8];
        bits.extend_from_slice(&sig);
        tlv(
            SEQUENCE,
            &[tbs.to_vec(), signature_algorithm(), tlv(BIT_STRING, &bits)].concat(),
        )
    }
}

const UTF8_STRING: u8 = 0x0c;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

fn signature_algorithm() -> Vec<u8> {
    tlv(SEQUENCE, &tlv(OBJECT_IDENTIFIER, oid::ECDSA_SHA256))
}

pub(super) fn ec_spki(public: &[u8]) -> Vec<u8> {
    let mut bits = alloc::vec![0u8];
    bits.extend_from_slice(public);
    tlv(
        SEQUENCE,
        &[
            tlv(
                SEQUENCE,
                &[
                    tlv(OBJECT_IDENTIFIER, oid::EC_KEY),
                    tlv(OBJECT_IDENTIFIER, oid::P256),
                ]
                .concat(),
            ),
            tlv(BIT_STRING, &bits),
        ]
        .concat(),
    )
}

pub(super) fn extension(id: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut body = tlv(OBJECT_IDENTIFIER, id);
    if critical {
        body.extend(tlv(BOOLEAN, &[0xff]));
    }
    body.extend(tlv(OCTET_STRING, value));
    tlv(SEQUENCE, &body)
}

/// An unsigned big-endian integer as a DER INTEGER (leading zeros dropped, one added when the
/// top bit is set).
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let trimmed = bytes.get(start..).unwrap_or(&[0]);
    let mut out = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    tlv(INTEGER, &out)
}

/// X.509 time: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
fn time(secs: u64) -> String {
    let text = UnixTime::from_secs(secs).rfc3339();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let year: u32 = digits.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    if year < 2050 {
        alloc::format!("{}Z", digits.get(2..).unwrap_or(""))
    } else {
        alloc::format!("{digits}Z")
    }
}

/// Go's `x509.KeyUsage` bits.
const DIGITAL_SIGNATURE: u16 = 1 << 0;
const CONTENT_COMMITMENT: u16 = 1 << 1;
const KEY_ENCIPHERMENT: u16 = 1 << 2;
const DATA_ENCIPHERMENT: u16 = 1 << 3;
const KEY_AGREEMENT: u16 = 1 << 4;
const CERT_SIGN: u16 = 1 << 5;
const CRL_SIGN: u16 = 1 << 6;
const ENCIPHER_ONLY: u16 = 1 << 7;
const DECIPHER_ONLY: u16 = 1 << 8;

/// `keyUsagesFromStrings`: key usage bits and the extended usages' OIDs in Go's order.
fn key_usages(usages: &[&str]) -> Result<(u16, Vec<&'static [u8]>), String> {
    const EKU: &[(&str, u8, &[u8])] = &[
        ("any", 0, &[0x55, 0x1d, 0x25, 0x00]),
        (
            "server auth",
            1,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01],
        ),
        (
            "client auth",
            2,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02],
        ),
        (
            "code signing",
            3,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03],
        ),
        (
            "email protection",
            4,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04],
        ),
        (
            "s/mime",
            4,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04],
        ),
        (
            "ipsec end system",
            5,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x05],
        ),
        (
            "ipsec tunnel",
            6,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x06],
        ),
        (
            "ipsec user",
            7,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x07],
        ),
        (
            "timestamping",
            8,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08],
        ),
        (
            "ocsp signing",
            9,
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09],
        ),
    ];
    let mut bits = 0u16;
    let mut ext: Vec<(u8, &'static [u8])> = Vec::new();
    let mut unrecognized = Vec::new();
    for usage in usages {
        let bit = match *usage {
            "signing" | "digital signature" => DIGITAL_SIGNATURE,
            "content commitment" => CONTENT_COMMITMENT,
            "key encipherment" => KEY_ENCIPHERMENT,
            "key agreement" => KEY_AGREEMENT,
            "data encipherment" => DATA_ENCIPHERMENT,
            "cert sign" => CERT_SIGN,
            "crl sign" => CRL_SIGN,
            "encipher only" => ENCIPHER_ONLY,
            "decipher only" => DECIPHER_ONLY,
            _ => 0,
        };
        if bit != 0 {
            bits |= bit;
        } else if let Some((_, order, id)) = EKU.iter().find(|(name, _, _)| name == usage) {
            if !ext.iter().any(|(o, _)| o == order) {
                ext.push((*order, id));
            }
        } else {
            unrecognized.push(alloc::format!("{usage:?}"));
        }
    }
    if !unrecognized.is_empty() {
        return Err(alloc::format!(
            "unrecognized usage values: [{}]",
            unrecognized.join(" ")
        ));
    }
    ext.sort_unstable_by_key(|(o, _)| *o);
    Ok((bits, ext.into_iter().map(|(_, id)| id).collect()))
}

/// Go's `asn1` BIT STRING of key usage bits (bit 0 is the most significant of the first byte),
/// trailing zero bits dropped.
fn key_usage_bits(bits: u16) -> Vec<u8> {
    let mut bytes = [0u8; 2];
    for i in 0..9u16 {
        if bits & (1 << i) != 0
            && let Some(b) = bytes.get_mut(usize::from(i / 8))
        {
            *b |= 0x80 >> (i % 8);
        }
    }
    let len = if bytes.get(1).is_some_and(|b| *b != 0) {
        2
    } else {
        1
    };
    let last = bytes.get(len - 1).copied().unwrap_or(0);
    let unused = if last == 0 {
        0
    } else {
        last.trailing_zeros() as u8
    };
    let mut out = alloc::vec![unused];
    out.extend_from_slice(bytes.get(..len).unwrap_or(&[]));
    tlv(BIT_STRING, &out)
}
