//! The SIMULATED KMS of `nautilus-proxy dev` (development and tests only): it answers the two
//! KMS calls the enclave makes, `GenerateDataKey` and `Decrypt`, in KMS's JSON shapes and only
//! with `Recipient`, so the enclave's production path runs unchanged. Like KMS it verifies the
//! attestation document (COSE signature and certificate chain, here to the simulated NSM's own
//! root) and checks its PCRs against its key policy (`--simulated-kms-pcr`), checks the SigV4
//! signature with the simulated credentials, and answers `CiphertextForRecipient`: a CMS
//! envelope to the RSA key in the document. Unlike KMS, its master key is a file in the data
//! directory (`simulated-kms.key`): whoever holds the host holds the cluster's data, which is
//! why it is only for development.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use nautilus_wire::kms::{self, cms, sigv4};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

/// The simulated credentials the proxy hands the enclave in dev, and the only ones this KMS
/// accepts.
pub(crate) const ACCESS_KEY_ID: &str = "SIMULATEDKMSDEVONLY";
const SECRET_ACCESS_KEY: &str = "simulated-kms-development-only-not-a-secret";
/// The key id dev gives the enclave.
pub(crate) const KEY_ID: &str = "alias/nautilus-simulated";
/// The region dev gives the enclave (the signing scope).
pub(crate) const REGION: &str = "simulated";
/// Blob format tag.
const BLOB_MAGIC: &[u8] = b"NAUTILUS-SIMULATED-KMS-1";

/// The credentials JSON the proxy's store hands in for dev.
pub(crate) fn credentials_json() -> String {
    format!(
        "{{\"AccessKeyId\":\"{ACCESS_KEY_ID}\",\"SecretAccessKey\":\"{SECRET_ACCESS_KEY}\",\"Token\":\"\"}}"
    )
}

/// A running simulated KMS.
pub(crate) struct SimulatedKms {
    /// Where it listens (loopback).
    pub(crate) addr: SocketAddr,
    /// PEM of the CA its TLS certificate chains to (the enclave's `--kms-ca-file`).
    pub(crate) ca_pem: String,
}

struct State {
    master: XChaCha20Poly1305,
    policy: nautilus_core::attestation::Policy,
}

/// Starts the simulated KMS on 127.0.0.1 with the master key in `data_dir` (made on first
/// use) and the key policy `pcrs` (index → expected value).
pub(crate) async fn start(
    data_dir: &Path,
    pcrs: Vec<(u8, Vec<u8>)>,
) -> Result<SimulatedKms, String> {
    let master = master_key(&data_dir.join("simulated-kms.key"))?;
    let (ca_pem, tls) = tls_config().map_err(|e| format!("simulated KMS certificates: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("simulated KMS cannot listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("simulated KMS address: {e}"))?;
    let state = Arc::new(State {
        master: XChaCha20Poly1305::new(&master.into()),
        policy: nautilus_core::attestation::Policy {
            expected_pcrs: pcrs.into_iter().collect(),
            expected_nonce: None,
            allow_simulated: true,
        },
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tracing::warn!(%addr, "SIMULATED KMS (development only): its master key is a file on this host");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(SimulatedKms { addr, ca_pem })
}

fn master_key(path: &Path) -> Result<[u8; 32], String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Ok(bytes) = std::fs::read(path) {
        return bytes
            .try_into()
            .map_err(|_| format!("{} is not a 32-byte key", path.display()));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, &key)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(key)
}

fn tls_config() -> Result<(String, Arc<rustls::ServerConfig>), Box<dyn std::error::Error>> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(
        DnType::CommonName,
        "nautilus SIMULATED KMS CA (development only)",
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "nautilus SIMULATED KMS");
    leaf.subject_alt_names = vec![
        SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into()?),
    ];
    let leaf = leaf.signed_by(&key, &ca, &ca_key)?;
    let config = crate::tls::server_config(crate::tls::Identity {
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    })?;
    Ok((ca.pem(), config))
}

fn error(status: u16, kind: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response
}

/// Recomputes the request's SigV4 signature with the simulated credentials.
fn signature_holds(parts: &hyper::http::request::Parts, body: &[u8]) -> bool {
    let Some(auth) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(signed) = auth
        .split(", ")
        .find_map(|p| p.strip_prefix("SignedHeaders="))
    else {
        return false;
    };
    let Some(date) = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let values: Vec<(String, String)> = signed
        .split(';')
        .map(|name| {
            let value = parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            (name.to_string(), value.to_string())
        })
        .collect();
    let headers: Vec<(&str, &str)> = values
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let credentials = sigv4::Credentials {
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: SECRET_ACCESS_KEY.into(),
        session_token: None,
    };
    let expected = sigv4::authorization(
        &sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body,
        },
        &credentials,
        REGION,
        "kms",
        date,
    );
    expected == auth
}

fn context_aad(request: &serde_json::Value) -> Vec<u8> {
    let cluster = request
        .get("EncryptionContext")
        .and_then(|c| c.get(kms::CONTEXT_KEY))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    format!("{}={cluster}", kms::CONTEXT_KEY).into_bytes()
}

async fn handle(
    state: Arc<State>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, 256 * 1024).collect().await else {
        return Ok(error(400, "ValidationException", "body too large"));
    };
    let body = body.to_bytes();
    if !signature_holds(&parts, &body) {
        return Ok(error(
            400,
            "InvalidSignatureException",
            "the SigV4 signature does not match the simulated credentials",
        ));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok(error(400, "SerializationException", "the body is not JSON"));
    };
    // Recipient: the document must verify and satisfy the key policy, and bind an RSA key.
    let Some(document) = request
        .get("Recipient")
        .and_then(|r| r.get("AttestationDocument"))
        .and_then(|d| d.as_str())
        .and_then(|d| B64.decode(d).ok())
    else {
        return Ok(error(
            400,
            "ValidationException",
            "the simulated KMS answers only requests with Recipient",
        ));
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let verified = match nautilus_core::attestation::verify(&document, &[], now_ms, &state.policy) {
        Ok(verified) => verified,
        Err(e) => {
            tracing::warn!(reason = %e, "simulated KMS: attestation refused by the key policy");
            return Ok(error(
                400,
                "AccessDeniedException",
                &format!("the attestation document does not satisfy the key policy: {e}"),
            ));
        }
    };
    let recipient = match verified
        .public_key
        .as_deref()
        .map(<kms::rsa::PublicKey as kms::rsa::pkcs8::DecodePublicKey>::from_public_key_der)
    {
        Some(Ok(key)) => key,
        _ => {
            return Ok(error(
                400,
                "ValidationException",
                "the attestation document binds no RSA public key",
            ));
        }
    };
    let aad = context_aad(&request);
    let (data_key, blob) = match target {
        "TrentService.GenerateDataKey" => {
            let mut key = [0u8; 32];
            let mut nonce = [0u8; 24];
            if getrandom::fill(&mut key)
                .and(getrandom::fill(&mut nonce))
                .is_err()
            {
                return Ok(error(500, "KMSInternalException", "no randomness"));
            }
            let Ok(sealed) = state.master.encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &key,
                    aad: &aad,
                },
            ) else {
                return Ok(error(500, "KMSInternalException", "sealing failed"));
            };
            let blob = [BLOB_MAGIC, &nonce, &sealed].concat();
            (key.to_vec(), Some(blob))
        }
        "TrentService.Decrypt" => {
            let blob = request
                .get("CiphertextBlob")
                .and_then(|b| b.as_str())
                .and_then(|b| B64.decode(b).ok())
                .unwrap_or_default();
            let opened = blob
                .strip_prefix(BLOB_MAGIC)
                .filter(|rest| rest.len() > 24)
                .and_then(|rest| {
                    let (nonce, sealed) = rest.split_at(24);
                    let nonce: [u8; 24] = nonce.try_into().ok()?;
                    state
                        .master
                        .decrypt(
                            &XNonce::from(nonce),
                            Payload {
                                msg: sealed,
                                aad: &aad,
                            },
                        )
                        .ok()
                });
            let Some(key) = opened else {
                return Ok(error(
                    400,
                    "InvalidCiphertextException",
                    "the ciphertext or its encryption context does not match",
                ));
            };
            (key, None)
        }
        other => {
            return Ok(error(
                400,
                "UnknownOperationException",
                &format!("the simulated KMS does not answer {other:?}"),
            ));
        }
    };
    let envelope = match cms::seal(&data_key, &recipient) {
        Ok(envelope) => envelope,
        Err(e) => return Ok(error(500, "KMSInternalException", &e.to_string())),
    };
    let mut answer = serde_json::json!({
        "KeyId": "arn:aws:kms:simulated:000000000000:key/simulated",
        "CiphertextForRecipient": B64.encode(envelope),
    });
    if let Some(blob) = blob {
        answer["CiphertextBlob"] = serde_json::Value::String(B64.encode(blob));
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    Ok(response)
}
