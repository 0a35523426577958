//! The cluster data key, from AWS KMS (ARCHITECTURE.md §6). At start the enclave makes an
//! RSA-2048 key from the OS generator (inside a Nitro enclave, fed by the NSM), asks the NSM for
//! an attestation document whose `public_key` is that key, and calls KMS with it as `Recipient`:
//! `GenerateDataKey` on first start, `Decrypt` of the stored `CiphertextBlob` on restarts, both
//! with the encryption context `nautilus:cluster = <cluster id>`. KMS checks the document's
//! signature and PCRs against the key policy and answers `CiphertextForRecipient`, a CMS
//! envelope only this enclave's RSA key opens. The host keeps only the `CiphertextBlob` (blob
//! `cluster-key`) and a key check value (blob `cluster-key-check`, HKDF of the data key): CMS's
//! AES-CBC content has no integrity, so a changed envelope that decrypts to another key is
//! caught by the check instead of silently sealing with a wrong key.
//!
//! Requests go through the proxy's byte relay (the KMS endpoint is on its allowlist) with TLS
//! ending here, signed (SigV4) with the instance role's credentials, which the proxy hands in
//! over the storage channel: they are the host's own and not secret from it; what guards the
//! data key is the key policy's attestation conditions.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use nautilus_wire::kms;
use nautilus_wire::storage::{Answer, Request};
use rsa::pkcs8::EncodePublicKey as _;

use crate::durable::seal::Keys;
use crate::log_sink::SinkAddr;
use crate::nsm::Nsm;

/// Blob holding KMS's `CiphertextBlob`.
const BLOB: &str = "cluster-key";
/// Blob holding the key check value.
const CHECK_BLOB: &str = "cluster-key-check";
/// Largest KMS answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// How to reach KMS.
#[derive(Debug, Clone)]
pub(crate) struct KmsOptions {
    /// The KMS key (id, ARN or alias).
    pub(crate) key_id: String,
    /// AWS region (signing scope).
    pub(crate) region: String,
    /// `host:port` reached through the relay.
    pub(crate) endpoint: String,
    /// The proxy's relay.
    pub(crate) relay: crate::sui::RelayAddr,
    /// PEM roots for the endpoint's certificate (default: the WebPKI roots).
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// TESTS ONLY: accept a `Plaintext` answer (moto ignores `Recipient`).
    pub(crate) accept_plaintext: bool,
}

/// The data key and how it was obtained (for the start-up log line).
pub(crate) struct DataKey {
    pub(crate) key: [u8; 32],
    pub(crate) generated: bool,
}

/// The key check value stored beside the blob.
fn key_check(key: &[u8; 32], cluster_id: &str) -> [u8; 32] {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(cluster_id.as_bytes()), key);
    let mut check = [0u8; 32];
    let _ = hk.expand(b"nautilus data key check v1", &mut check);
    check
}

/// Fetches (or, on first start, creates) the cluster data key.
pub(crate) async fn data_key(
    options: &KmsOptions,
    cluster_id: &str,
    nsm: Arc<dyn Nsm>,
    store: &SinkAddr,
) -> anyhow::Result<DataKey> {
    let recipient = tokio::task::spawn_blocking(|| {
        let mut rng = getrandom4::SysRng;
        rsa::PrivateKey::new(&mut rng, 2048)
    })
    .await?
    .context("cannot make the KMS recipient key")?;
    let spki = recipient
        .as_ref()
        .to_public_key_der()
        .context("cannot encode the KMS recipient key")?;
    let document = nsm
        .attest(&[], &[], spki.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot attest the KMS recipient key: {e}"))?;
    let mut conn = crate::durable::connect_for_blobs(store).await?;
    let credentials = match conn.call(&Request::AwsCredentials).await? {
        Answer::Bytes(json) => kms::parse_credentials(&json).map_err(anyhow::Error::msg)?,
        Answer::Error { message, .. } => {
            anyhow::bail!("the proxy has no AWS credentials: {message}")
        }
        other => anyhow::bail!("unexpected answer to a credentials request: {other:?}"),
    };
    let blob = conn.get_blob(BLOB).await?;
    let (body, operation) = match &blob {
        Some(blob) => (
            kms::decrypt_body(&options.key_id, cluster_id, blob, &document),
            "Decrypt",
        ),
        None => (
            kms::generate_data_key_body(&options.key_id, cluster_id, &document),
            "GenerateDataKey",
        ),
    };
    let (status, answer) = call(options, &credentials, operation, body).await?;
    let answer = kms::parse_answer(status, &answer).map_err(anyhow::Error::msg)?;
    let key = match (&answer.for_recipient, &answer.plaintext) {
        (Some(envelope), _) => kms::cms::open(envelope, &recipient)
            .map_err(|e| anyhow::anyhow!("KMS's CiphertextForRecipient: {e}"))?,
        (None, Some(plain)) if options.accept_plaintext => plain.clone(),
        (None, _) => anyhow::bail!(
            "KMS answered {operation} without CiphertextForRecipient (is the endpoint real KMS?)"
        ),
    };
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| anyhow::anyhow!("KMS's data key is not 256 bits"))?;
    let check = key_check(&key, cluster_id);
    match blob {
        Some(_) => {
            let stored = conn
                .get_blob(CHECK_BLOB)
                .await?
                .context("the store has the cluster key but not its check value")?;
            if stored != check {
                return Err(anyhow::Error::new(crate::durable::DurableError::Tampered {
                    file: format!("blobs/{CHECK_BLOB}"),
                    position: 0,
                    reason: "the data key KMS returned does not match the key check value: the \
                             envelope or the blobs were changed, or they belong to another cluster"
                        .into(),
                }));
            }
            Ok(DataKey {
                key,
                generated: false,
            })
        }
        None => {
            let Some(new_blob) = answer.blob else {
                anyhow::bail!("KMS answered GenerateDataKey without CiphertextBlob");
            };
            // The check first: a blob without its check would be refused at the next start.
            conn.put_blob(CHECK_BLOB, check.to_vec()).await?;
            conn.put_blob(BLOB, new_blob).await?;
            Ok(DataKey {
                key,
                generated: true,
            })
        }
    }
}

/// The keys that seal the log, from the data key.
pub(crate) fn keys(data_key: &DataKey, cluster_id: &str) -> Keys {
    Keys::derive(&data_key.key, cluster_id)
}

/// Labels of the secrets derived from the data key, one per key.
pub(crate) const SERVICE_ACCOUNT_KEY: &[u8] = b"nautilus service account signing key v1";
pub(crate) const CLUSTER_CA_KEY: &[u8] = b"nautilus cluster ca key v1";

/// A secret from the data key under its own `label` (the ServiceAccount token signing key,
/// the cluster CA's key): the same after every restart of a durable cluster (what it signed
/// stays valid), and it exists only inside the enclave.
pub(crate) fn derived_secret(data_key: &DataKey, cluster_id: &str, label: &[u8]) -> [u8; 32] {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(cluster_id.as_bytes()), &data_key.key);
    let mut secret = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail.
    let _ = hk.expand(label, &mut secret);
    secret
}

/// One signed KMS call over the relay with TLS ending here: `(status, body)`.
async fn call(
    options: &KmsOptions,
    credentials: &kms::sigv4::Credentials,
    operation: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let host = options
        .endpoint
        .rsplit_once(':')
        .map_or(options.endpoint.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca_pem {
        Some(pem) => {
            for cert in <rustls::pki_types::CertificateDer<'_> as rustls::pki_types::pem::PemObject>::pem_slice_iter(pem) {
                roots.add(cert.context("--kms-ca-file")?)?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| anyhow::anyhow!("KMS endpoint host {host:?}: {e}"))?;
    let pipe = crate::sui::open_relay(&options.relay, &options.endpoint)
        .await
        .with_context(|| format!("cannot reach KMS at {} through the relay", options.endpoint))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, pipe)
        .await
        .with_context(|| format!("TLS with KMS at {}", options.endpoint))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let amz_date = kms::sigv4::amz_date(secs);
    let target = kms::target(operation);
    let content_type = "application/x-amz-json-1.1";
    let mut signed = vec![
        ("content-type", content_type),
        ("host", host.as_str()),
        ("x-amz-date", amz_date.as_str()),
        ("x-amz-target", target.as_str()),
    ];
    if let Some(token) = &credentials.session_token {
        signed.push(("x-amz-security-token", token.as_str()));
    }
    let authorization = kms::sigv4::authorization(
        &kms::sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &signed,
            body: &body,
        },
        credentials,
        &options.region,
        "kms",
        &amz_date,
    );
    let mut request = hyper::Request::post("/");
    for (name, value) in &signed {
        request = request.header(*name, *value);
    }
    let request = request
        .header("authorization", authorization)
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading KMS's answer: {e}"))?
        .to_bytes();
    Ok((status, body.to_vec()))
}

/// The cluster key as the store keeps it: the KMS-wrapped data key and its check value.
/// Neither is secret (only an attested enclave gets KMS to unwrap the first), so a replica
/// that joins a cluster copies them from a peer and unwraps them with its own KMS call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct KeyBlobs {
    #[serde(with = "serde_bytes")]
    pub(crate) wrapped: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(crate) check: Vec<u8>,
}

/// The key blobs in `store`, if the cluster has a key yet.
pub(crate) async fn key_blobs(store: &SinkAddr) -> anyhow::Result<Option<KeyBlobs>> {
    let mut conn = crate::durable::connect_for_blobs(store).await?;
    let (Some(wrapped), Some(check)) =
        (conn.get_blob(BLOB).await?, conn.get_blob(CHECK_BLOB).await?)
    else {
        return Ok(None);
    };
    Ok(Some(KeyBlobs { wrapped, check }))
}

/// Stores `blobs` (a peer's) in `store`: the check value first, so a store holding the
/// wrapped key always holds its check.
pub(crate) async fn put_key_blobs(store: &SinkAddr, blobs: KeyBlobs) -> anyhow::Result<()> {
    let mut conn = crate::durable::connect_for_blobs(store).await?;
    conn.put_blob(CHECK_BLOB, blobs.check).await?;
    conn.put_blob(BLOB, blobs.wrapped).await
}
