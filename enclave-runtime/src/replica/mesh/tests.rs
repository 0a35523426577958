//! Every way to forge a peer is refused (design §3.2), and frames are bounded and typed: two
//! honest replicas admit each other; a wrong PCR, a simulated document where those are not
//! allowed, a document binding another certificate or configuration, a document from another
//! TLS session, another cluster, another replica answering, a frame before the `Hello`, an
//! oversize frame and garbage are each refused with their own reason, and counted.

use std::sync::Arc;

use super::*;
use crate::nsm::simulated::SimulatedNsm;

const CONFIG: &str = "listen = \"unix:/replica.sock\"\n";
const CLUSTER: &str = "cluster-a";

fn os_random(buf: &mut [u8]) -> anyhow::Result<()> {
    getrandom::fill(buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))
}

/// Replica `node_id` of `cluster` with `nsm`, its admission adjusted by `admit`.
pub(crate) fn endpoint_with(
    node_id: NodeId,
    nsm: SimulatedNsm,
    cluster: &str,
    admit: impl FnOnce(&mut Admission),
) -> Arc<MeshEndpoint> {
    let nsm: Arc<dyn Nsm> = Arc::new(nsm);
    let attestation = Arc::new(Attestation::new(nsm.clone(), CONFIG.into(), None).unwrap());
    let mut admission =
        Admission::new(nsm.as_ref(), cluster, attestation.config_digest(), true).unwrap();
    admit(&mut admission);
    let tls = PeerTls::generate(&mut os_random).unwrap();
    Arc::new(MeshEndpoint::new(node_id, 0, tls, attestation, admission))
}

/// An honest replica of [`CLUSTER`] that admits simulated documents (development).
pub(crate) fn endpoint(node_id: NodeId) -> Arc<MeshEndpoint> {
    endpoint_with(node_id, SimulatedNsm::new().unwrap(), CLUSTER, |_| {})
}

/// Two ends of one stream.
fn pipe() -> (Box<dyn Stream>, Box<dyn Stream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (Box::new(a), Box::new(b))
}

/// `client` dials `server` (as replica `target`) honestly: both verdicts.
async fn dial(
    client: &MeshEndpoint,
    server: &MeshEndpoint,
    target: NodeId,
) -> (Result<Link, MeshError>, Result<Link, MeshError>) {
    let (x, y) = pipe();
    tokio::join!(client.connect(x, target), server.accept(y))
}

/// `server`'s verdict on a client that completes TLS as `client`, then does `forge`.
async fn accept_forged<F, Fut>(
    server: &MeshEndpoint,
    client: &MeshEndpoint,
    forge: F,
) -> Result<Link, MeshError>
where
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = Session>,
{
    let (x, y) = pipe();
    let forger = async {
        let session = client.tls_connect(x).await.unwrap();
        forge(session).await
    };
    // The forger's session stays open until the server decided.
    let (verdict, _session) = tokio::join!(server.accept(y), forger);
    verdict
}

/// A `Hello` from `client` whose document binds `user_data` and `nonce` as given.
fn hello_binding(client: &MeshEndpoint, user_data: &[u8], nonce: &[u8]) -> Hello {
    let document = client
        .attestation
        .nsm()
        .attest(user_data, nonce, client.attestation.identity_public_sec1())
        .unwrap();
    Hello {
        cluster_id: CLUSTER.into(),
        node_id: client.node_id,
        slot: 0,
        document,
    }
}

async fn send_raw(session: &mut Session, bytes: &[u8]) {
    session.stream.write_all(bytes).await.unwrap();
    session.stream.flush().await.unwrap();
}

async fn send_hello(mut session: Session, hello: &Hello) -> Session {
    let mut frame = Vec::new();
    write_frame(&mut frame, Kind::Hello, 0, &encode(hello).unwrap())
        .await
        .unwrap();
    send_raw(&mut session, &frame).await;
    session
}

fn refusal(verdict: Result<Link, MeshError>) -> Refusal {
    match verdict {
        Err(MeshError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn two_replicas_of_one_cluster_admit_each_other_and_exchange_frames() {
    let (a, b) = (endpoint(1), endpoint(2));
    let (dialed, accepted) = dial(&a, &b, 2).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!((dialed.peer(), accepted.peer()), (2, 1));
    dialed.send(Kind::Vote, 7, b"request").await.unwrap();
    let frame = accepted.receive().await.unwrap();
    assert_eq!(
        frame,
        Some(Frame {
            kind: Kind::Vote,
            id: 7,
            body: b"request".to_vec()
        })
    );
    accepted.send(Kind::Answer, 7, b"answer").await.unwrap();
    assert_eq!(dialed.receive().await.unwrap().unwrap().body, b"answer");
    dialed.stream.shutdown().await.unwrap();
    assert_eq!(accepted.receive().await.unwrap(), None, "a clean close");
    assert_eq!(a.refused() + b.refused(), 0);
}

#[tokio::test]
async fn a_peer_measured_otherwise_is_refused_unless_allowlisted() {
    let other_image = || SimulatedNsm::new().unwrap().measuring(0, [7u8; 48]);
    let server = endpoint(1);
    let upgraded = endpoint_with(2, other_image(), CLUSTER, |_| {});
    let (_, verdict) = dial(&upgraded, &server, 1).await;
    assert_eq!(
        refusal(verdict),
        Refusal::Pcrs(AttestationError::PcrMismatch(0))
    );
    assert_eq!(server.refused(), 1);

    // The measured configuration allowlists the new image: admitted (rolling upgrade).
    let mut new_image = server.admission.pcrs[0].clone();
    new_image.insert(0, vec![7u8; 48]);
    let server = endpoint_with(1, SimulatedNsm::new().unwrap(), CLUSTER, |a| {
        a.pcrs.push(new_image);
    });
    let upgraded = endpoint_with(2, other_image(), CLUSTER, |a| {
        let mut old_image = a.pcrs[0].clone();
        old_image.insert(0, vec![0u8; 48]);
        a.pcrs.push(old_image);
    });
    let (dialed, accepted) = dial(&upgraded, &server, 1).await;
    assert_eq!(accepted.unwrap().peer(), 2);
    assert_eq!(dialed.unwrap().peer(), 1);
}

#[tokio::test]
async fn a_simulated_document_is_refused_unless_simulated_ones_are_allowed() {
    let production = endpoint_with(1, SimulatedNsm::new().unwrap(), CLUSTER, |a| {
        a.allow_simulated = false;
    });
    let (_, verdict) = dial(&endpoint(2), &production, 1).await;
    assert_eq!(
        refusal(verdict),
        Refusal::Attestation(AttestationError::Simulated)
    );
    assert_eq!(production.refused(), 1);
}

#[tokio::test]
async fn a_document_binding_another_certificate_or_configuration_is_refused() {
    let server = endpoint(1);
    let client = endpoint(2);
    let client = &*client;
    let digest = client.attestation.config_digest();
    // Another key's certificate (e.g. a host relaying a genuine replica's document over its
    // own TLS session), with this session's nonce.
    let stranger = PeerTls::generate(&mut os_random).unwrap();
    let stranger = &stranger;
    let verdict = accept_forged(&server, client, |session| async move {
        let user_data = peer_user_data(&digest, &stranger.spki_sha256);
        let hello = hello_binding(client, &user_data, &session.exporter);
        send_hello(session, &hello).await
    })
    .await;
    assert_eq!(refusal(verdict), Refusal::Binding);
    // The right certificate under a configuration the server does not know.
    let verdict = accept_forged(&server, client, |session| async move {
        let user_data = peer_user_data(&[9u8; 32], &client.tls.spki_sha256);
        let hello = hello_binding(client, &user_data, &session.exporter);
        send_hello(session, &hello).await
    })
    .await;
    assert_eq!(refusal(verdict), Refusal::Binding);
    // No user_data at all.
    let verdict = accept_forged(&server, client, |session| async move {
        let hello = hello_binding(client, &[], &session.exporter);
        send_hello(session, &hello).await
    })
    .await;
    assert_eq!(refusal(verdict), Refusal::Binding);
    // The control: the same forger, binding what it should, is admitted.
    let verdict = accept_forged(&server, client, |session| async move {
        let user_data = peer_user_data(&digest, &client.tls.spki_sha256);
        let hello = hello_binding(client, &user_data, &session.exporter);
        send_hello(session, &hello).await
    })
    .await;
    assert_eq!(verdict.unwrap().peer(), 2);
    assert_eq!(server.refused(), 3);
}

#[tokio::test]
async fn a_document_from_another_tls_session_is_refused() {
    let server = endpoint(1);
    let client = endpoint(2);
    let client = &*client;
    let mut recorded = None;
    let slot = &mut recorded;
    let verdict = accept_forged(&server, client, |session| async move {
        let hello = client.hello(session.exporter).await.unwrap();
        *slot = Some(hello.clone());
        send_hello(session, &hello).await
    })
    .await;
    assert_eq!(verdict.unwrap().peer(), 2, "the genuine session");
    // The same certificate, the same replica, the document of the first session.
    let replayed = recorded.unwrap();
    let verdict = accept_forged(&server, client, |session| async move {
        let nonce = attestation::parse(&replayed.document).unwrap().nonce;
        assert_ne!(nonce, Some(&session.exporter[..]), "a new session");
        send_hello(session, &replayed).await
    })
    .await;
    assert_eq!(
        refusal(verdict),
        Refusal::Attestation(AttestationError::NonceMismatch)
    );
    // A document without a nonce.
    let verdict = accept_forged(&server, client, |session| async move {
        let user_data =
            peer_user_data(&client.attestation.config_digest(), &client.tls.spki_sha256);
        let hello = hello_binding(client, &user_data, &[]);
        send_hello(session, &hello).await
    })
    .await;
    assert_eq!(
        refusal(verdict),
        Refusal::Attestation(AttestationError::NonceMismatch)
    );
}

#[tokio::test]
async fn a_replica_of_another_cluster_is_refused() {
    let server = endpoint(1);
    let stranger = endpoint_with(2, SimulatedNsm::new().unwrap(), "cluster-b", |_| {});
    let (dialed, accepted) = dial(&stranger, &server, 1).await;
    assert_eq!(refusal(accepted), Refusal::ClusterId("cluster-b".into()));
    assert_eq!(refusal(dialed), Refusal::ClusterId(CLUSTER.into()));
    assert_eq!((server.refused(), stranger.refused()), (1, 1));
}

#[tokio::test]
async fn another_replica_answering_for_the_one_dialed_is_refused() {
    // A host routes the dial for replica 2 to replica 3: genuine, but its votes must not count
    // as 2's.
    let (client, three) = (endpoint(1), endpoint(3));
    let (dialed, _) = dial(&client, &three, 2).await;
    assert_eq!(
        refusal(dialed),
        Refusal::NodeId {
            expected: 2,
            presented: 3
        }
    );
}

#[tokio::test]
async fn a_frame_before_the_hello_is_refused() {
    let (server, client) = (endpoint(1), endpoint(2));
    let client = &*client;
    let verdict = accept_forged(&server, client, |mut session| async move {
        let mut frame = Vec::new();
        write_frame(&mut frame, Kind::AppendEntries, 1, b"entries")
            .await
            .unwrap();
        send_raw(&mut session, &frame).await;
        session
    })
    .await;
    assert_eq!(refusal(verdict), Refusal::NotHello(Kind::AppendEntries));
    assert_eq!(server.refused(), 1);
}

#[tokio::test]
async fn oversize_frames_are_refused_before_and_after_the_hello() {
    let (server, client) = (endpoint(1), endpoint(2));
    let client = &*client;
    // Before: a Hello longer than any document allows, refused from its length alone.
    let verdict = accept_forged(&server, client, |mut session| async move {
        let mut header = (MAX_HELLO_BYTES + 1).to_be_bytes().to_vec();
        header.push(Kind::Hello as u8);
        send_raw(&mut session, &header).await;
        session
    })
    .await;
    assert!(
        matches!(
            verdict,
            Err(MeshError::Frame(FrameError::TooLarge { len, max: MAX_HELLO_BYTES }))
                if len == u64::from(MAX_HELLO_BYTES) + 1
        ),
        "{verdict:?}"
    );
    // After: 16 MiB and one byte.
    let (dialed, accepted) = dial(client, &server, 1).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let header = (MAX_FRAME_BYTES + 1).to_be_bytes();
    dialed.stream.write_all(&header).await.unwrap();
    dialed.stream.flush().await.unwrap();
    let received = accepted.receive().await;
    assert!(
        matches!(
            received,
            Err(MeshError::Frame(FrameError::TooLarge { len, max: MAX_FRAME_BYTES }))
                if len == u64::from(MAX_FRAME_BYTES) + 1
        ),
        "{received:?}"
    );
    // And nobody sends one.
    let body = vec![0u8; MAX_FRAME_BYTES as usize];
    let sent = dialed.send(Kind::AppendEntries, 1, &body).await;
    assert!(
        matches!(sent, Err(MeshError::Frame(FrameError::TooLarge { .. }))),
        "{sent:?}"
    );
}

#[tokio::test]
async fn garbage_after_the_handshake_is_refused() {
    let (server, client) = (endpoint(1), endpoint(2));
    let client = &*client;
    // Plain text where the Hello should be: its first bytes read as a huge length.
    let verdict = accept_forged(&server, client, |mut session| async move {
        send_raw(&mut session, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        session
    })
    .await;
    assert!(
        matches!(verdict, Err(MeshError::Frame(FrameError::TooLarge { .. }))),
        "{verdict:?}"
    );
    // A Hello frame whose body is not a Hello.
    let verdict = accept_forged(&server, client, |mut session| async move {
        let mut frame = Vec::new();
        write_frame(&mut frame, Kind::Hello, 0, &[0xff; 40])
            .await
            .unwrap();
        send_raw(&mut session, &frame).await;
        session
    })
    .await;
    assert!(
        matches!(verdict, Err(MeshError::Frame(FrameError::Decode(_)))),
        "{verdict:?}"
    );
    // An unknown kind, and a length too short for a frame.
    for bytes in [
        &[0, 0, 0, 9, 0xee, 0, 0, 0, 0, 0, 0, 0, 0][..],
        &[0, 0, 0, 3][..],
    ] {
        let verdict = accept_forged(&server, client, |mut session| async move {
            send_raw(&mut session, bytes).await;
            session
        })
        .await;
        assert!(
            matches!(
                verdict,
                Err(MeshError::Frame(
                    FrameError::UnknownKind(0xee) | FrameError::Short(3)
                ))
            ),
            "{verdict:?}"
        );
    }
    // After the Hellos, on an admitted link.
    let (dialed, accepted) = dial(client, &server, 1).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    dialed
        .stream
        .write_all(&[0, 0, 0, 12, 0x42, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        .await
        .unwrap();
    dialed.stream.flush().await.unwrap();
    let received = accepted.receive().await;
    assert!(
        matches!(
            received,
            Err(MeshError::Frame(FrameError::UnknownKind(0x42)))
        ),
        "{received:?}"
    );
}

#[tokio::test]
async fn frames_round_trip_and_a_truncated_frame_is_an_error() {
    let mut bytes = Vec::new();
    write_frame(&mut bytes, Kind::Answer, u64::MAX, b"body")
        .await
        .unwrap();
    assert_eq!(&bytes[..4], &13u32.to_be_bytes());
    let frame = read_frame(&mut &bytes[..], MAX_FRAME_BYTES).await.unwrap();
    assert_eq!(
        frame,
        Some(Frame {
            kind: Kind::Answer,
            id: u64::MAX,
            body: b"body".to_vec()
        })
    );
    assert_eq!(
        read_frame(&mut &[][..], MAX_FRAME_BYTES).await.unwrap(),
        None
    );
    for cut in 1..bytes.len() {
        let read = read_frame(&mut &bytes[..cut], MAX_FRAME_BYTES).await;
        assert!(matches!(read, Err(MeshError::Closed)), "{cut}: {read:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn silent_connections_hold_at_most_the_admission_budget_until_they_time_out() {
    let (server, client) = (endpoint(1), endpoint(2));
    let mut silent = Vec::new();
    let mut admitting = Vec::new();
    for _ in 0..CONCURRENT_ADMISSIONS {
        let (x, y) = pipe();
        silent.push(x);
        let server = server.clone();
        admitting.push(tokio::spawn(async move { server.accept(y).await }));
    }
    tokio::time::sleep(HANDSHAKE_TIMEOUT / 2).await;
    assert_eq!(server.admissions.available_permits(), 0);
    // An honest peer waits for a turn, then is admitted within its own time.
    let started = tokio::time::Instant::now();
    let (dialed, accepted) = dial(&client, &server, 1).await;
    assert_eq!((dialed.unwrap().peer(), accepted.unwrap().peer()), (1, 2));
    assert!(started.elapsed() >= HANDSHAKE_TIMEOUT / 2, "it waited");
    for admission in admitting {
        let verdict = admission.await.unwrap();
        assert!(matches!(verdict, Err(MeshError::Timeout(_))), "{verdict:?}");
    }
    assert_eq!(server.refused(), 0, "silence is no refusal");
}

/// A TLS client outside the mesh's rules: its own certificate key (if any), with or without
/// the mesh's ALPN.
fn outsider(key: Option<&rcgen::KeyPair>, alpn: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(HandshakeOnly {
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match key {
        None => builder.with_no_client_auth(),
        Some(key) => {
            let cert = rcgen::CertificateParams::new(Vec::<String>::new())
                .unwrap()
                .self_signed(key)
                .unwrap();
            let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            builder
                .with_client_auth_cert(vec![cert.der().clone()], der)
                .unwrap()
        }
    };
    if alpn {
        config.alpn_protocols = vec![ALPN.to_vec()];
    }
    Arc::new(config)
}

/// `server`'s verdict on a TLS client configured as `config`.
async fn accept_outsider(
    server: &MeshEndpoint,
    config: Arc<ClientConfig>,
) -> Result<Link, MeshError> {
    let (x, y) = pipe();
    let client = async {
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        tokio_rustls::TlsConnector::from(config)
            .connect(name, x)
            .await
    };
    let (verdict, _client) = tokio::join!(server.accept(y), client);
    verdict
}

#[tokio::test]
async fn tls_clients_outside_the_mesh_rules_are_refused() {
    let server = endpoint(1);
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    // No client certificate: client authentication is required.
    let verdict = accept_outsider(&server, outsider(None, true)).await;
    assert!(matches!(verdict, Err(MeshError::Tls(_))), "{verdict:?}");
    // A P-256 key: only ECDSA P-384 with SHA-384 signs a peer's handshake.
    let verdict = accept_outsider(&server, outsider(Some(&p256), true)).await;
    assert!(matches!(verdict, Err(MeshError::Tls(_))), "{verdict:?}");
    // The right kind of key, without the mesh's protocol.
    let verdict = accept_outsider(&server, outsider(Some(&p384), false)).await;
    assert_eq!(refusal(verdict), Refusal::Alpn);
}
