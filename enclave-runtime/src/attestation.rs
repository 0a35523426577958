//! The enclave's identity and attestation endpoints, answered by the runtime before a request
//! reaches core (they need the NSM):
//!
//! - `GET /attestation?nonce=HEX` (anonymous; nonce optional, hex, at most 64 bytes): a fresh
//!   COSE_Sign1 document from the NSM, `Content-Type: application/cbor`, binding
//!   `public_key` = the identity key (SEC1 uncompressed P-384 point), `nonce`, and
//!   `user_data = signed_answer::user_data(config_digest, tls_binding)`. The response header
//!   `X-Nautilus-Config-Digest` carries the configuration digest (hex).
//! - `GET /attestation/config`: the canonical configuration text (`--print-config`'s output);
//!   its SHA-256 is the configuration digest, so a verifier recomputes `user_data` from it.
//! - `GET /readyz?verbose` (and `/healthz`, `/livez`): kube-apiserver's check list with an `nsm`
//!   line that says SIMULATED in development.
//!
//! Each document costs an NSM call, so at most [`CONCURRENT_DOCUMENTS`] are made at once;
//! a request that waits longer than [`PERMIT_WAIT`] for its turn gets 429.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use nautilus_core::Error;
use nautilus_core::api::ApiResponse;
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use crate::http::{self, ResponseBody};
use crate::nsm::{Nsm, NsmError};
use crate::server::Shared;

/// Path of the attestation document.
pub(crate) const ATTESTATION_PATH: &str = "/attestation";
/// Path of the canonical configuration text.
pub(crate) const CONFIG_PATH: &str = "/attestation/config";
/// Response header with the configuration digest (hex).
pub(crate) const CONFIG_DIGEST_HEADER: &str = "x-nautilus-config-digest";
/// Documents made at once (each is one NSM call).
pub(crate) const CONCURRENT_DOCUMENTS: usize = 4;
/// Longest wait for a turn before answering 429.
pub(crate) const PERMIT_WAIT: Duration = Duration::from_secs(2);
/// `/readyz?verbose`'s line for the simulated NSM.
pub(crate) const SIMULATED_CHECK_LINE: &str = "[+]nsm SIMULATED (development only) ok";

/// The enclave's attested identity.
pub(crate) struct Attestation {
    nsm: Arc<dyn Nsm>,
    identity: p384::ecdsa::SigningKey,
    identity_sec1: Vec<u8>,
    config_text: String,
    config_digest: [u8; 32],
    config_digest_hex: HeaderValue,
    user_data: [u8; 32],
    permits: Semaphore,
}

impl Attestation {
    /// Makes the identity key from NSM randomness and fixes what documents bind:
    /// `config_text` is the canonical configuration (`Cli::effective_toml`), and `tls` the
    /// SubjectPublicKeyInfo hashes of the enclave-terminated TLS serving key and of the CA
    /// that certifies it (None when the enclave terminates no TLS).
    pub(crate) fn new(
        nsm: Arc<dyn Nsm>,
        config_text: String,
        tls: Option<nautilus_core::signed_answer::TlsBinding>,
    ) -> Result<Self, NsmError> {
        let identity = crate::nsm::p384_key(nsm.as_ref())?;
        let identity_sec1 = identity
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec();
        let config_digest: [u8; 32] = Sha256::digest(config_text.as_bytes()).into();
        let config_digest_hex = HeaderValue::from_str(&hex::encode(config_digest))
            .map_err(|e| NsmError::Device(format!("digest header: {e}")))?;
        let user_data = nautilus_core::signed_answer::user_data(&config_digest, tls.as_ref());
        Ok(Self {
            nsm,
            identity,
            identity_sec1,
            config_text,
            config_digest,
            config_digest_hex,
            user_data,
            permits: Semaphore::new(CONCURRENT_DOCUMENTS),
        })
    }

    /// The identity key that signs answers.
    pub(crate) fn identity(&self) -> &p384::ecdsa::SigningKey {
        &self.identity
    }

    /// The identity's public key, SEC1 uncompressed (what documents carry in `public_key`).
    pub(crate) fn identity_public_sec1(&self) -> &[u8] {
        &self.identity_sec1
    }

    /// SHA-256 of the canonical configuration text.
    pub(crate) fn config_digest(&self) -> [u8; 32] {
        self.config_digest
    }

    /// The module this enclave runs with.
    pub(crate) fn nsm(&self) -> &dyn Nsm {
        self.nsm.as_ref()
    }

    /// A fresh document binding the identity key, `user_data` and `nonce`.
    pub(crate) fn document(&self, nonce: &[u8]) -> Result<Vec<u8>, NsmError> {
        self.nsm.attest(&self.user_data, nonce, &self.identity_sec1)
    }
}

/// Parses an optional hex nonce of at most `signed_answer::MAX_NONCE_BYTES` bytes (upper- or
/// lower-case digits; empty means none).
pub(crate) fn parse_nonce(text: &str) -> Result<Vec<u8>, Error> {
    let max = nautilus_core::signed_answer::MAX_NONCE_BYTES;
    if text.len() > 2 * max {
        return Err(Error::BadRequest(format!(
            "the nonce is longer than {max} bytes ({} hex digits)",
            2 * max
        )));
    }
    hex::decode(text).map_err(|_| {
        Error::BadRequest("the nonce must be an even number of hex digits".to_string())
    })
}

/// The `nonce` query parameter, if present; more than one is refused.
fn nonce_param(query: &str) -> Result<Vec<u8>, Error> {
    let mut found: Option<&str> = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "nonce" {
            if found.is_some() {
                return Err(Error::BadRequest(
                    "the nonce is given more than once".into(),
                ));
            }
            found = Some(value);
        }
    }
    parse_nonce(found.unwrap_or(""))
}

fn has_param(query: &str, name: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split_once('=').map_or(pair, |(k, _)| k) == name)
}

fn error(error: &Error) -> hyper::Response<ResponseBody> {
    http::to_hyper(ApiResponse::error(error))
}

fn with_body(
    content_type: &'static str,
    body: Vec<u8>,
    digest: &HeaderValue,
) -> hyper::Response<ResponseBody> {
    let mut response = hyper::Response::new(ResponseBody::full(body));
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(CONFIG_DIGEST_HEADER, digest.clone());
    response
}

/// Answers the runtime's own endpoints; `None` passes the request on to core.
pub(crate) async fn answer(
    shared: &Arc<Shared>,
    req: &hyper::Request<Incoming>,
) -> Option<hyper::Response<ResponseBody>> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let method = req.method();
    let readable = method == hyper::Method::GET || method == hyper::Method::HEAD;
    match path {
        ATTESTATION_PATH | CONFIG_PATH if !readable => Some(error(&Error::MethodNotAllowed(
            format!("{method} is not supported on {path}; use GET"),
        ))),
        CONFIG_PATH => {
            let attestation = &shared.attestation;
            Some(with_body(
                "text/plain; charset=utf-8",
                attestation.config_text.as_bytes().to_vec(),
                &attestation.config_digest_hex,
            ))
        }
        ATTESTATION_PATH => Some(document(shared, query).await),
        "/readyz" | "/healthz" | "/livez" if readable => {
            // Readiness also covers the stake registry (core decides when Sui is stale); a
            // failing check is answered with the check list, as kube-apiserver does.
            let sui =
                (path == "/readyz").then(|| shared.lock().sui_readiness(crate::server::now()));
            // A replica is ready once it leads or follows a known leader (issue 17).
            let replica = shared.replicated.as_ref().map(|r| r.status());
            let failing = matches!(sui, Some(Err(_)))
                || (path == "/readyz" && replica.as_ref().is_some_and(|r| !r.ready));
            (failing || has_param(query, "verbose"))
                .then(|| verbose_health(shared, path, sui, replica.as_ref()))
        }
        _ => None,
    }
}

async fn document(shared: &Arc<Shared>, query: &str) -> hyper::Response<ResponseBody> {
    let nonce = match nonce_param(query) {
        Ok(nonce) => nonce,
        Err(e) => return error(&e),
    };
    let permit = match tokio::time::timeout(PERMIT_WAIT, shared.attestation.permits.acquire()).await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            return error(&Error::TooManyRequests(
                "too many attestation requests at once; retry shortly".into(),
            ));
        }
    };
    // Signing is CPU work (and a device call in production): off the async workers.
    let task_shared = shared.clone();
    let made = tokio::task::spawn_blocking(move || task_shared.attestation.document(&nonce)).await;
    drop(permit);
    match made {
        Ok(Ok(doc)) => with_body(
            "application/cbor",
            doc,
            &shared.attestation.config_digest_hex,
        ),
        Ok(Err(e)) => {
            tracing::warn!("attestation failed: {e}");
            error(&Error::Internal(format!("attestation failed: {e}")))
        }
        Err(e) => error(&Error::Internal(format!("attestation failed: {e}"))),
    }
}

/// kube-apiserver's verbose check list (`[+]name ok` lines, then `<endpoint> check passed`)
/// with the NSM's line. The other checks are core's (`ping`, `log`, `etcd`: the in-memory store
/// is always reachable).
fn verbose_health(
    shared: &Shared,
    path: &str,
    sui: Option<Result<String, String>>,
    replica: Option<&crate::replica::serving::Status>,
) -> hyper::Response<ResponseBody> {
    let nsm = shared.attestation.nsm();
    let nsm_line = if nsm.is_simulated() {
        SIMULATED_CHECK_LINE.to_string()
    } else {
        "[+]nsm ok".to_string()
    };
    let endpoint = path.trim_start_matches('/');
    let (sui_line, sui_ready) = match &sui {
        None => (String::new(), true),
        Some(Ok(detail)) => (format!("[+]sui-stake-registry ok: {detail}\n"), true),
        Some(Err(detail)) => (format!("[-]sui-stake-registry failed: {detail}\n"), false),
    };
    // A failing durable log refuses writes, not reads: readiness (traffic) stays, the line says
    // why. Absent without `--storage`.
    let durable_line = shared.durable.as_ref().map_or_else(String::new, |log| {
        let (line, _ok) = log.status().check_line();
        format!("{line}\n")
    });
    let (replica_line, replica_ready) = replica.map_or((String::new(), true), |status| {
        (format!("{}\n", status.check_line()), status.ready)
    });
    let ready = sui_ready && (replica_ready || path != "/readyz");
    let verdict = if ready { "passed" } else { "failed" };
    let text = format!(
        "[+]ping ok\n[+]log ok\n[+]etcd ok\n{nsm_line}\n{sui_line}{durable_line}{replica_line}{endpoint} check {verdict}\n"
    );
    let mut response = hyper::Response::new(ResponseBody::full(text));
    if !ready {
        *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    }
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_hex_of_at_most_64_bytes() {
        let table: &[(&str, Result<Vec<u8>, ()>)] = &[
            ("", Ok(vec![])),
            ("nonce=", Ok(vec![])),
            ("nonce=00ff", Ok(vec![0x00, 0xff])),
            ("nonce=ABcd", Ok(vec![0xab, 0xcd])),
            ("other=1&nonce=01", Ok(vec![0x01])),
            ("nonce=abc", Err(())),
            ("nonce=zz", Err(())),
            ("nonce=%30%30", Err(())),
            ("nonce=01&nonce=02", Err(())),
        ];
        for (query, want) in table {
            let got = nonce_param(query).map_err(|_| ());
            assert_eq!(&got, want, "{query}");
        }
        let max = format!("nonce={}", "ab".repeat(64));
        assert_eq!(nonce_param(&max).unwrap().len(), 64);
        let over = format!("nonce={}", "ab".repeat(65));
        let Err(Error::BadRequest(message)) = nonce_param(&over) else {
            panic!("65 bytes must be refused");
        };
        assert!(message.contains("64 bytes"), "{message}");
    }

    #[test]
    fn the_document_binds_identity_config_and_nonce() {
        use ciborium::value::Value;
        let nsm: Arc<dyn Nsm> = Arc::new(crate::nsm::simulated::SimulatedNsm::new().unwrap());
        let config = "listen = \"unix:/x\"\n".to_string();
        let attestation = Attestation::new(nsm, config.clone(), None).unwrap();
        let digest: [u8; 32] = Sha256::digest(config.as_bytes()).into();
        assert_eq!(attestation.config_digest(), digest);
        let doc = attestation.document(&[1, 2, 3]).unwrap();
        let cose: Value = ciborium::from_reader(doc.as_slice()).unwrap();
        let payload = cose.as_array().unwrap()[2].as_bytes().unwrap().clone();
        let body: Value = ciborium::from_reader(payload.as_slice()).unwrap();
        let get = |key: &str| {
            body.as_map()
                .unwrap()
                .iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .unwrap()
                .1
                .as_bytes()
                .unwrap()
                .clone()
        };
        assert_eq!(
            get("user_data"),
            nautilus_core::signed_answer::user_data(&digest, None)
        );
        assert_eq!(get("nonce"), vec![1, 2, 3]);
        assert_eq!(get("public_key"), attestation.identity_public_sec1());
        assert_eq!(
            p384::ecdsa::VerifyingKey::from_sec1_bytes(&get("public_key")).unwrap(),
            *attestation.identity().verifying_key()
        );
        // The TLS serving key's and CA's SPKI hashes change what is bound.
        let nsm: Arc<dyn Nsm> = Arc::new(crate::nsm::simulated::SimulatedNsm::new().unwrap());
        let binding = nautilus_core::signed_answer::TlsBinding {
            serving_spki_sha256: [5u8; 32],
            ca_spki_sha256: [6u8; 32],
        };
        let with_tls = Attestation::new(nsm, config, Some(binding)).unwrap();
        assert_eq!(
            with_tls.user_data,
            nautilus_core::signed_answer::user_data(&digest, Some(&binding))
        );
        assert_ne!(
            with_tls.user_data,
            nautilus_core::signed_answer::user_data(&digest, None)
        );
    }
}
