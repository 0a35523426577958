//! The replicas' attested mesh (design §3.2–3.3): a byte stream between two replicas becomes a
//! [`Link`] only after mutual TLS 1.3 and an exchange of [`Hello`]s whose NSM attestation
//! documents both sides verified; before that no other frame is read or written.
//!
//! - TLS: each start makes a P-384 key and a self-signed certificate ([`PeerTls`]); ALPN
//!   [`ALPN`], client certificates required, no resumption. The verifiers check only that the
//!   peer holds the key of the one certificate it presents (the CertificateVerify signature):
//!   nothing about the peer is trusted until its `Hello`.
//! - `Hello`: a fresh document whose `user_data` binds this replica's configuration digest and
//!   its peer certificate's SPKI ([`peer_user_data`]) and whose `nonce` is this TLS session's
//!   exporter ([`EXPORTER_LABEL`]), so a document proves "the enclave holding the key at the
//!   other end of this very session". The receiver verifies it against the pinned AWS Nitro
//!   root (the simulated root only with `allow_simulated`), the PCRs against its own or an
//!   allowlisted set, the binding against the certificate of this handshake and a known
//!   configuration, and the cluster id ([`Admission`]).
//! - Frames: `u32 length | u8 kind | u64 request id | postcard body`, the length counting what
//!   follows it, at most [`MAX_FRAME_BYTES`] (a `Hello` at most [`MAX_HELLO_BYTES`], so an
//!   unauthenticated peer cannot make us allocate more); answers carry the request's id.
//!
//! Malformed input ends the connection with a typed [`MeshError`], never a panic.

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use nautilus_core::attestation::{self, AttestationError, Policy};
use nautilus_core::signed_answer::TlsBinding;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_rustls::TlsStream;

use super::types::NodeId;
use crate::attestation::Attestation;
use crate::nsm::{Nsm, NsmError};
use crate::transport::Stream;

/// The one application protocol a peer speaks.
pub(crate) const ALPN: &[u8] = b"nautilus-peer/1";
/// The TLS exporter label whose 32 bytes are a `Hello` document's nonce.
pub(crate) const EXPORTER_LABEL: &[u8] = b"nautilus peer v1";
/// Largest frame after the `Hello`s (the length field's value).
pub(crate) const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;
/// Largest `Hello` frame: a document is at most 16 KiB (`attestation::MAX_DOCUMENT_BYTES`).
pub(crate) const MAX_HELLO_BYTES: u32 = 64 * 1024;
/// The TLS handshake and the `Hello` exchange must be over by then.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections being admitted at once: each costs this replica an NSM document before it
/// knows who is calling, and the host decides how many arrive.
pub(crate) const CONCURRENT_ADMISSIONS: usize = 8;
/// The PCRs a peer must share with this replica (or with an allowlisted set): the image
/// (0), the kernel and boot ramdisk (1), the application (2) and the signing certificate (8).
pub(crate) const MEASURED_PCRS: [u16; 4] = [0, 1, 2, 8];
/// The name the client asks for; the verifiers ignore it (a peer is known by its `Hello`).
const SERVER_NAME: &str = "nautilus-peer";
/// Bytes of the kind and request id after the length.
const PREFIX_BYTES: u32 = 9;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The attested greeting, first in each direction.
    Hello = 1,
    /// openraft's `AppendEntriesRequest`.
    AppendEntries = 2,
    /// openraft's `VoteRequest`.
    Vote = 3,
    /// A snapshot's vote, metadata and chunk sizes.
    SnapshotBegin = 4,
    /// A piece of a snapshot's chunks, in order.
    SnapshotPiece = 5,
    /// The snapshot is complete: install it.
    SnapshotEnd = 6,
    /// The answer to the request with the same id.
    Answer = 7,
    /// The request with the same id was not understood; the connection ends.
    Error = 8,
    /// A replica asks to be a voter (it joins as a learner first): `serving::JoinRequest`.
    Join = 9,
    /// A replica without the cluster's key asks for the KMS-wrapped key blobs.
    KeyBlobs = 10,
    /// A client request a follower passes on to the leader: `serving::Forwarded`.
    Forward = 11,
    /// A follower asks the leader for a read index (linearizable reads).
    ReadIndex = 12,
    /// A starting replica asks whether a leader is known (a warm restart, or a cold start).
    Summary = 13,
}

impl Kind {
    fn from_byte(byte: u8) -> Result<Self, FrameError> {
        Ok(match byte {
            1 => Self::Hello,
            2 => Self::AppendEntries,
            3 => Self::Vote,
            4 => Self::SnapshotBegin,
            5 => Self::SnapshotPiece,
            6 => Self::SnapshotEnd,
            7 => Self::Answer,
            8 => Self::Error,
            9 => Self::Join,
            10 => Self::KeyBlobs,
            11 => Self::Forward,
            12 => Self::ReadIndex,
            13 => Self::Summary,
            other => return Err(FrameError::UnknownKind(other)),
        })
    }
}

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// What it carries.
    pub(crate) kind: Kind,
    /// The request it is or answers.
    pub(crate) id: u64,
    /// The postcard body.
    pub(crate) body: Vec<u8>,
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The length is below the kind and id's 9 bytes.
    Short(u32),
    /// The length is above what this point of the conversation allows.
    TooLarge {
        /// The length announced (or needed, when sending).
        len: u64,
        /// The bound.
        max: u32,
    },
    /// A kind byte nobody defined.
    UnknownKind(u8),
    /// A kind that has no place here (e.g. a request before the `Hello`s).
    Unexpected(Kind),
    /// An answer to another request than the one waited for.
    WrongAnswer {
        /// The request's id.
        expected: u64,
        /// The answer's.
        got: u64,
    },
    /// The body is not the postcard the kind calls for.
    Decode(String),
    /// A value could not be encoded.
    Encode(String),
    /// A snapshot's pieces do not add up to what its beginning announced.
    Snapshot(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short(len) => write!(f, "frame length {len} is below {PREFIX_BYTES}"),
            Self::TooLarge { len, max } => write!(f, "frame of {len} bytes is over {max}"),
            Self::UnknownKind(kind) => write!(f, "unknown frame kind {kind}"),
            Self::Unexpected(kind) => write!(f, "unexpected {kind:?} frame"),
            Self::WrongAnswer { expected, got } => {
                write!(f, "answer to request {got} while waiting for {expected}")
            }
            Self::Decode(e) => write!(f, "undecodable body: {e}"),
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
            Self::Snapshot(why) => write!(f, "snapshot transfer: {why}"),
        }
    }
}

/// Why a peer was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its first frame was not a `Hello`.
    NotHello(Kind),
    /// The session negotiated no (or another) application protocol.
    Alpn,
    /// The session has no peer certificate.
    NoCertificate,
    /// The document does not verify (signature, chain, root, simulated, nonce of another
    /// session).
    Attestation(AttestationError),
    /// The document's PCRs are neither this replica's nor an allowlisted set (the error for
    /// this replica's own set).
    Pcrs(AttestationError),
    /// `user_data` binds neither this session's certificate under a known configuration.
    Binding,
    /// Another cluster's replica.
    ClusterId(String),
    /// The replica answering is not the one dialed.
    NodeId {
        /// The replica dialed.
        expected: NodeId,
        /// The one that answered.
        presented: NodeId,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHello(kind) => write!(f, "a {kind:?} frame before the Hello"),
            Self::Alpn => write!(
                f,
                "the session did not negotiate \"{}\"",
                ALPN.escape_ascii()
            ),
            Self::NoCertificate => f.write_str("no peer certificate"),
            Self::Attestation(e) => write!(f, "attestation: {e}"),
            Self::Pcrs(e) => write!(f, "measurements: {e}"),
            Self::Binding => {
                f.write_str("user_data binds another certificate or an unknown configuration")
            }
            Self::ClusterId(id) => write!(f, "member of cluster {id:?}"),
            Self::NodeId {
                expected,
                presented,
            } => write!(f, "replica {presented} answered for {expected}"),
        }
    }
}

/// Why the mesh could not talk to a peer.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum MeshError {
    /// The stream failed.
    Io(std::io::Error),
    /// The peer closed the stream.
    Closed,
    /// The TLS handshake failed.
    Tls(String),
    /// Something took longer than allowed.
    Timeout(&'static str),
    /// A malformed or misplaced frame.
    Frame(FrameError),
    /// The peer did not prove itself.
    Refused(Refusal),
    /// This replica's NSM could not make a document.
    Nsm(NsmError),
    /// The peer did not understand a request.
    Remote(String),
    /// A peer address this mesh cannot dial.
    Address(String),
}

impl fmt::Display for MeshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "peer stream: {e}"),
            Self::Closed => f.write_str("the peer closed the stream"),
            Self::Tls(e) => write!(f, "peer TLS: {e}"),
            Self::Timeout(what) => write!(f, "{what} timed out"),
            Self::Frame(e) => write!(f, "peer frame: {e}"),
            Self::Refused(r) => write!(f, "refused peer: {r}"),
            Self::Nsm(e) => write!(f, "peer attestation: {e}"),
            Self::Remote(e) => write!(f, "the peer refused the request: {e}"),
            Self::Address(a) => write!(f, "cannot dial peer address {a:?}"),
        }
    }
}

impl std::error::Error for MeshError {}

impl From<std::io::Error> for MeshError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Self::Closed
        } else {
            Self::Io(e)
        }
    }
}

impl From<FrameError> for MeshError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

impl From<Refusal> for MeshError {
    fn from(e: Refusal) -> Self {
        Self::Refused(e)
    }
}

/// `value` as a frame body.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    postcard::to_allocvec(value).map_err(|e| FrameError::Encode(e.to_string()))
}

/// A frame body as `T`.
pub(crate) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Writes one frame (without flushing).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    kind: Kind,
    id: u64,
    body: &[u8],
) -> Result<(), MeshError> {
    let len = u64::try_from(body.len())
        .unwrap_or(u64::MAX)
        .saturating_add(u64::from(PREFIX_BYTES));
    let len = u32::try_from(len)
        .ok()
        .filter(|&len| len <= MAX_FRAME_BYTES)
        .ok_or(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES,
        })?;
    let mut header = [0u8; 13];
    let (length, rest) = header.split_at_mut(4);
    length.copy_from_slice(&len.to_be_bytes());
    let (kind_byte, request) = rest.split_at_mut(1);
    kind_byte.fill(kind as u8);
    request.copy_from_slice(&id.to_be_bytes());
    writer.write_all(&header).await?;
    writer.write_all(body).await?;
    Ok(())
}

/// Reads one frame of at most `max` bytes; `None` when the peer closed between frames. An
/// announced length over `max` is refused before anything is allocated for it.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Frame>, MeshError> {
    let mut length = [0u8; 4];
    let (first, rest) = length.split_at_mut(1);
    if reader.read(first).await? == 0 {
        return Ok(None);
    }
    reader.read_exact(rest).await?;
    let len = u32::from_be_bytes(length);
    if len > max {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        }
        .into());
    }
    let body_len = len
        .checked_sub(PREFIX_BYTES)
        .ok_or(FrameError::Short(len))?;
    let mut prefix = [0u8; PREFIX_BYTES as usize];
    reader.read_exact(&mut prefix).await?;
    let [kind, id @ ..] = prefix;
    let kind = Kind::from_byte(kind)?;
    let id = u64::from_be_bytes(id);
    let mut body = vec![0u8; body_len as usize];
    reader.read_exact(&mut body).await?;
    Ok(Some(Frame { kind, id, body }))
}

/// The greeting each side sends first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The cluster the sender serves.
    pub(crate) cluster_id: String,
    /// The sender's replica id.
    pub(crate) node_id: NodeId,
    /// The sender's slot (an untrusted routing label).
    pub(crate) slot: u8,
    /// A fresh NSM document for this session (COSE_Sign1).
    #[serde(with = "serde_bytes")]
    pub(crate) document: Vec<u8>,
}

/// What a peer's document binds in `user_data`: the configuration digest, and the peer
/// certificate's SPKI hash in enclave TLS mode's binding (a self-signed certificate is its own
/// issuer, so both hashes are its key's).
pub(crate) fn peer_user_data(config_digest: &[u8; 32], spki_sha256: &[u8; 32]) -> [u8; 32] {
    nautilus_core::signed_answer::user_data(
        config_digest,
        Some(&TlsBinding {
            serving_spki_sha256: *spki_sha256,
            ca_spki_sha256: *spki_sha256,
        }),
    )
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo.
fn spki_sha256(cert_der: &[u8]) -> Option<[u8; 32]> {
    attestation::subject_public_key_info(cert_der).map(|spki| Sha256::digest(spki).into())
}

/// This start's peer key and certificate, and the TLS configurations that present them.
pub(crate) struct PeerTls {
    /// SHA-256 of its SubjectPublicKeyInfo, bound into every `Hello`.
    pub(crate) spki_sha256: [u8; 32],
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl PeerTls {
    /// A fresh P-384 key from `random` and its self-signed certificate.
    pub(crate) fn generate(
        random: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let pkcs8 = crate::tls::p384_pkcs8(random)?;
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_ECDSA_P384_SHA384,
        )
        .map_err(|e| anyhow::anyhow!("peer key: {e}"))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| anyhow::anyhow!("peer certificate: {e}"))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nautilus peer");
        let cert = params
            .self_signed(&key)
            .map_err(|e| anyhow::anyhow!("peer certificate: {e}"))?;
        let cert_der = cert.der().clone();
        let spki_sha256 = spki_sha256(&cert_der)
            .ok_or_else(|| anyhow::anyhow!("the peer certificate has no readable key"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(HandshakeOnly {
            algorithms: provider.signature_verification_algorithms,
        });
        let key_der = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.clone()));
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| anyhow::anyhow!("peer TLS: {e}"))?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(vec![cert_der.clone()], key_der())
            .map_err(|e| anyhow::anyhow!("peer TLS: {e}"))?;
        server.alpn_protocols = vec![ALPN.to_vec()];
        // Every session attests afresh: no tickets, no resumption.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| anyhow::anyhow!("peer TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![cert_der.clone()], key_der())
            .map_err(|e| anyhow::anyhow!("peer TLS: {e}"))?;
        client.alpn_protocols = vec![ALPN.to_vec()];
        client.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            spki_sha256,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// Accepts the one certificate a peer presents if it holds its key (TLS 1.3, ECDSA P-384
/// with SHA-384); what the peer is, its `Hello` proves.
#[derive(Debug)]
struct HandshakeOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl HandshakeOnly {
    fn one_certificate(
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::General(
                "a peer presents one self-signed certificate".into(),
            ));
        }
        attestation::subject_public_key_info(end_entity)
            .map(|_| ())
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ))
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ECDSA_NISTP384_SHA384 {
            return Err(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for HandshakeOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Self::one_certificate(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("peers speak TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP384_SHA384]
    }
}

impl ClientCertVerifier for HandshakeOnly {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::one_certificate(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("peers speak TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP384_SHA384]
    }
}

/// What a peer's `Hello` must prove to be admitted.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    /// The cluster both serve.
    pub(crate) cluster_id: String,
    /// Accept simulated-NSM documents (development only: they prove nothing).
    pub(crate) allow_simulated: bool,
    /// The PCR sets a peer may show: this replica's own, then the allowlist (rolling upgrades).
    pub(crate) pcrs: Vec<BTreeMap<u8, Vec<u8>>>,
    /// The configuration digests a peer may run: this replica's own, then the allowlist.
    pub(crate) config_digests: Vec<[u8; 32]>,
    /// The pinned AWS Nitro root G1 (DER).
    root_der: Vec<u8>,
}

impl Admission {
    /// Admits peers of `cluster_id` measured as this replica (`nsm`'s [`MEASURED_PCRS`]) and
    /// running its configuration (`config_digest`).
    pub(crate) fn new(
        nsm: &dyn Nsm,
        cluster_id: &str,
        config_digest: [u8; 32],
        allow_simulated: bool,
    ) -> anyhow::Result<Self> {
        let mut own = BTreeMap::new();
        for index in MEASURED_PCRS {
            let value = nsm
                .describe_pcr(index)
                .map_err(|e| anyhow::anyhow!("PCR{index}: {e}"))?;
            own.insert(u8::try_from(index)?, value);
        }
        let root_der = attestation::pinned_root_der(attestation::AWS_NITRO_ROOT_G1_PEM)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self {
            cluster_id: cluster_id.to_string(),
            allow_simulated,
            pcrs: vec![own],
            config_digests: vec![config_digest],
            root_der,
        })
    }

    /// Checks `hello`, received over the session whose exporter is `exporter` and whose peer
    /// presented `peer_cert`, at `now_ms` (unix milliseconds).
    pub(crate) fn check(
        &self,
        hello: &Hello,
        exporter: &[u8; 32],
        peer_cert: &[u8],
        now_ms: u64,
    ) -> Result<(), Refusal> {
        if hello.cluster_id != self.cluster_id {
            return Err(Refusal::ClusterId(hello.cluster_id.clone()));
        }
        let policy = Policy {
            expected_pcrs: BTreeMap::new(),
            expected_nonce: Some(exporter.to_vec()),
            allow_simulated: self.allow_simulated,
        };
        let doc = attestation::verify(&hello.document, &self.root_der, now_ms, &policy)
            .map_err(Refusal::Attestation)?;
        let verdicts: Vec<Result<(), AttestationError>> = self
            .pcrs
            .iter()
            .map(|pcrs| {
                Policy {
                    expected_pcrs: pcrs.clone(),
                    ..Policy::default()
                }
                .check(&doc)
            })
            .collect();
        if !verdicts.iter().any(Result::is_ok) {
            let first = verdicts.into_iter().find_map(Result::err);
            return Err(Refusal::Pcrs(
                first.unwrap_or(AttestationError::PcrMissing(0)),
            ));
        }
        let spki = spki_sha256(peer_cert).ok_or(Refusal::NoCertificate)?;
        let bound = self
            .config_digests
            .iter()
            .any(|digest| doc.user_data.as_deref() == Some(&peer_user_data(digest, &spki)[..]));
        if !bound {
            return Err(Refusal::Binding);
        }
        Ok(())
    }
}

/// A TLS session before the `Hello`s: what tests forge on, and what [`MeshEndpoint`] greets
/// over.
pub(crate) struct Session {
    /// The TLS stream.
    pub(crate) stream: TlsStream<Box<dyn Stream>>,
    /// The session's exporter, every `Hello` document's nonce.
    pub(crate) exporter: [u8; 32],
    /// The certificate the peer presented (DER).
    pub(crate) peer_cert: Vec<u8>,
}

fn session_facts(
    state: &rustls::CommonState,
    exporter: Result<[u8; 32], rustls::Error>,
) -> Result<([u8; 32], Vec<u8>), MeshError> {
    if state.alpn_protocol() != Some(ALPN) {
        return Err(Refusal::Alpn.into());
    }
    let peer_cert = state
        .peer_certificates()
        .and_then(<[CertificateDer<'_>]>::first)
        .ok_or(Refusal::NoCertificate)?
        .to_vec();
    let exporter = exporter.map_err(|e| MeshError::Tls(format!("exporter: {e}")))?;
    Ok((exporter, peer_cert))
}

/// An admitted peer: frames in both directions.
pub(crate) struct Link {
    stream: TlsStream<Box<dyn Stream>>,
    peer: NodeId,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").field("peer", &self.peer).finish()
    }
}

impl Link {
    /// The replica at the other end.
    pub(crate) fn peer(&self) -> NodeId {
        self.peer
    }

    /// Sends one frame.
    pub(crate) async fn send(&mut self, kind: Kind, id: u64, body: &[u8]) -> Result<(), MeshError> {
        write_frame(&mut self.stream, kind, id, body).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next frame; `None` once the peer closed.
    pub(crate) async fn receive(&mut self) -> Result<Option<Frame>, MeshError> {
        read_frame(&mut self.stream, MAX_FRAME_BYTES).await
    }
}

/// This replica's side of the mesh: its TLS identity, how it attests, whom it admits.
pub(crate) struct MeshEndpoint {
    node_id: NodeId,
    slot: u8,
    tls: PeerTls,
    attestation: Arc<Attestation>,
    user_data: [u8; 32],
    admission: Admission,
    refused: AtomicU64,
    admissions: tokio::sync::Semaphore,
}

impl MeshEndpoint {
    /// Replica `node_id` in `slot`, attesting with `attestation` over `tls`, admitting peers
    /// by `admission`.
    pub(crate) fn new(
        node_id: NodeId,
        slot: u8,
        tls: PeerTls,
        attestation: Arc<Attestation>,
        admission: Admission,
    ) -> Self {
        let user_data = peer_user_data(&attestation.config_digest(), &tls.spki_sha256);
        Self {
            node_id,
            slot,
            tls,
            attestation,
            user_data,
            admission,
            refused: AtomicU64::new(0),
            admissions: tokio::sync::Semaphore::new(CONCURRENT_ADMISSIONS),
        }
    }

    /// This replica's id.
    pub(crate) fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Peers refused since the start.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// This replica's `Hello` for the session whose exporter is `exporter` (an NSM call, off
    /// the async workers).
    pub(crate) async fn hello(&self, exporter: [u8; 32]) -> Result<Hello, MeshError> {
        let attestation = self.attestation.clone();
        let user_data = self.user_data;
        let document = tokio::task::spawn_blocking(move || {
            attestation
                .nsm()
                .attest(&user_data, &exporter, attestation.identity_public_sec1())
        })
        .await
        .map_err(|e| MeshError::Nsm(NsmError::Device(format!("attestation task: {e}"))))?
        .map_err(MeshError::Nsm)?;
        Ok(Hello {
            cluster_id: self.admission.cluster_id.clone(),
            node_id: self.node_id,
            slot: self.slot,
            document,
        })
    }

    /// The TLS handshake as the dialing side.
    pub(crate) async fn tls_connect(&self, stream: Box<dyn Stream>) -> Result<Session, MeshError> {
        let name = ServerName::try_from(SERVER_NAME).map_err(|e| MeshError::Tls(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(self.tls.client.clone())
            .connect(name, stream)
            .await
            .map_err(|e| MeshError::Tls(e.to_string()))?;
        let connection = stream.get_ref().1;
        let exporter = connection.export_keying_material([0u8; 32], EXPORTER_LABEL, None);
        let (exporter, peer_cert) = session_facts(connection, exporter)?;
        Ok(Session {
            stream: TlsStream::Client(stream),
            exporter,
            peer_cert,
        })
    }

    /// The TLS handshake as the accepting side.
    pub(crate) async fn tls_accept(&self, stream: Box<dyn Stream>) -> Result<Session, MeshError> {
        let stream = tokio_rustls::TlsAcceptor::from(self.tls.server.clone())
            .accept(stream)
            .await
            .map_err(|e| MeshError::Tls(e.to_string()))?;
        let connection = stream.get_ref().1;
        let exporter = connection.export_keying_material([0u8; 32], EXPORTER_LABEL, None);
        let (exporter, peer_cert) = session_facts(connection, exporter)?;
        Ok(Session {
            stream: TlsStream::Server(stream),
            exporter,
            peer_cert,
        })
    }

    /// Dials through `stream` to replica `target` and admits it.
    pub(crate) async fn connect(
        &self,
        stream: Box<dyn Stream>,
        target: NodeId,
    ) -> Result<Link, MeshError> {
        self.counted(async {
            let session = self.tls_connect(stream).await?;
            self.greet(session, Some(target)).await
        })
        .await
    }

    /// Dials through `stream` to whichever replica of the cluster answers there (a replica
    /// joining knows addresses, not ids) and admits it.
    pub(crate) async fn connect_any(&self, stream: Box<dyn Stream>) -> Result<Link, MeshError> {
        self.counted(async {
            let session = self.tls_connect(stream).await?;
            self.greet(session, None).await
        })
        .await
    }

    /// Admits the replica that connected through `stream`: at most
    /// [`CONCURRENT_ADMISSIONS`] at once, each within [`HANDSHAKE_TIMEOUT`] of its turn.
    pub(crate) async fn accept(&self, stream: Box<dyn Stream>) -> Result<Link, MeshError> {
        let _turn = self
            .admissions
            .acquire()
            .await
            .map_err(|_| MeshError::Closed)?;
        self.counted(async {
            let session = self.tls_accept(stream).await?;
            self.greet(session, None).await
        })
        .await
    }

    /// Bounds a handshake in time; counts and logs a refusal.
    async fn counted(
        &self,
        handshake: impl Future<Output = Result<Link, MeshError>>,
    ) -> Result<Link, MeshError> {
        let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or(Err(MeshError::Timeout("the peer handshake")));
        if let Err(MeshError::Refused(reason)) = &result {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = self.node_id, %reason, "replica mesh: refused peer");
        }
        result
    }

    /// Sends this replica's `Hello` and admits the peer's; `expected` is the replica dialed.
    async fn greet(&self, session: Session, expected: Option<NodeId>) -> Result<Link, MeshError> {
        let Session {
            mut stream,
            exporter,
            peer_cert,
        } = session;
        let hello = self.hello(exporter).await?;
        write_frame(&mut stream, Kind::Hello, 0, &encode(&hello)?).await?;
        stream.flush().await?;
        let frame = read_frame(&mut stream, MAX_HELLO_BYTES)
            .await?
            .ok_or(MeshError::Closed)?;
        if frame.kind != Kind::Hello {
            return Err(Refusal::NotHello(frame.kind).into());
        }
        let theirs: Hello = decode(&frame.body)?;
        self.admission
            .check(&theirs, &exporter, &peer_cert, unix_ms())?;
        if let Some(expected) = expected
            && theirs.node_id != expected
        {
            return Err(Refusal::NodeId {
                expected,
                presented: theirs.node_id,
            }
            .into());
        }
        Ok(Link {
            stream,
            peer: theirs.node_id,
        })
    }
}

/// Unix milliseconds now, the time documents are checked at.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
