//! Enclave TLS mode (`--tls enclave`): the enclave makes a fresh P-384 serving key at each start
//! from the random bytes it is given (the NSM's in production), has the cluster CA (whose key
//! comes from the cluster data key and never leaves the enclave) issue its certificate for
//! `localhost`, `127.0.0.1` and the `--tls-san` names, and terminates TLS 1.3 itself on every
//! stream the proxy hands over, so the host only ever relays ciphertext. Clients trust the
//! cluster CA, as kube's clients trust the cluster CA that issues kube-apiserver's serving
//! certificate, so a restart of a durable cluster (new serving key, same CA) needs no new pin.
//! The attestation document binds both (`user_data`, [`TlsBinding`]): this boot's serving key
//! and the CA's key; the handshake presents the serving certificate and the CA certificate.

use std::net::IpAddr;
use std::sync::Arc;

use nautilus_core::UnixTime;
use nautilus_core::csr::authority::{ClusterCa, DEFAULT_CERT_TTL_SECS};
use nautilus_core::der::tlv;
use nautilus_core::signed_answer::TlsBinding;
use rcgen::KeyPair;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};

/// Bytes of a P-384 private scalar.
const SCALAR_LEN: usize = 48;
/// Fresh scalars tried before giving up (a random 384-bit string is out of range with
/// probability below 2^-190, so a second try already means a broken generator).
const SCALAR_TRIES: usize = 4;

/// Where TLS ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// The host proxy terminates TLS and hands over plaintext HTTP (the default).
    Proxy,
    /// The enclave terminates TLS itself; the proxy only splices ciphertext (`--passthrough`).
    Enclave,
}

impl TlsMode {
    /// The option's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Enclave => "enclave",
        }
    }
}

/// The enclave's TLS identity: the serving certificate, the CA that issued it, the key and what
/// the attestation binds.
pub(crate) struct EnclaveTls {
    /// The serving certificate (DER), issued by the cluster CA for this boot's key.
    pub(crate) cert_der: CertificateDer<'static>,
    /// The cluster CA's certificate (DER): what clients trust, sent after the serving
    /// certificate in the handshake.
    pub(crate) ca_der: CertificateDer<'static>,
    /// SHA-256 of the serving key's and of the CA's SubjectPublicKeyInfo DER.
    pub(crate) binding: TlsBinding,
    /// TLS 1.3 server configuration with ALPN `http/1.1`.
    pub(crate) config: Arc<ServerConfig>,
    /// The key (PKCS#8), to make the configuration again with client certificates.
    pkcs8: Vec<u8>,
}

impl EnclaveTls {
    /// The certificates the handshake presents: the serving certificate, then the CA's.
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert_der.clone(), self.ca_der.clone()]
    }

    /// The same identity, also asking clients for a certificate and verifying one that is
    /// shown against `client_ca` (the cluster CA); a client without one still connects (and
    /// authenticates with its bearer token, or not at all), as kube-apiserver allows.
    pub(crate) fn accepting_clients_of(self, client_ca: &[u8]) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(client_ca.to_vec()))
            .map_err(|e| anyhow::anyhow!("cluster CA: {e}"))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| anyhow::anyhow!("client certificate verifier: {e}"))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.chain(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone())),
            )
            .map_err(|e| anyhow::anyhow!("TLS certificate/key: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            ..self
        })
    }
}

/// `cert` as one PEM `CERTIFICATE` block (64-column base64), as `ca.crt` files carry it.
pub(crate) fn certificate_pem(cert: &CertificateDer<'_>) -> String {
    nautilus_core::der::pem("CERTIFICATE", cert.as_ref())
}

/// Makes this boot's serving key from `random` (filled with fresh random bytes on each call)
/// and has `ca` issue its certificate at `now`, valid for a year, for `localhost`, `127.0.0.1`
/// and `extra_sans` (IP addresses or DNS names).
pub(crate) fn generate(
    random: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>,
    extra_sans: &[String],
    ca: &ClusterCa,
    now: UnixTime,
) -> anyhow::Result<EnclaveTls> {
    let pkcs8 = p384_pkcs8(random)?;
    let key = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    )
    .map_err(|e| anyhow::anyhow!("TLS key: {e}"))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for san in extra_sans {
        if !san.is_empty() && !names.contains(san) {
            names.push(san.clone());
        }
    }
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    for name in &names {
        match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ip_addresses.push(ip.octets().to_vec()),
            Ok(IpAddr::V6(ip)) => ip_addresses.push(ip.octets().to_vec()),
            Err(_) => {
                // What a certificate may name (rustls' rules for a server name).
                rustls::pki_types::DnsName::try_from(name.as_str())
                    .map_err(|e| anyhow::anyhow!("--tls-san {name:?}: {e}"))?;
                dns_names.push(name.as_str());
            }
        }
    }
    let mut serial = [0u8; 16];
    random(&mut serial)?;
    let spki = key.public_key_der();
    let cert_der = ca
        .sign_server_certificate(
            &spki,
            &dns_names,
            &ip_addresses,
            DEFAULT_CERT_TTL_SECS,
            now,
            serial,
        )
        .map_err(|e| anyhow::anyhow!("TLS certificate: {e}"))?;
    let ca_der = ca.certificate_der().to_vec();
    let ca_spki = nautilus_core::attestation::subject_public_key_info(&ca_der)
        .ok_or_else(|| anyhow::anyhow!("the cluster CA certificate has no readable key"))?;
    let binding = TlsBinding {
        serving_spki_sha256: Sha256::digest(&spki).into(),
        ca_spki_sha256: Sha256::digest(ca_spki).into(),
    };
    let cert_der = CertificateDer::from(cert_der);
    let ca_der = CertificateDer::from(ca_der);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert_der.clone(), ca_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.clone())),
        )
        .map_err(|e| anyhow::anyhow!("TLS certificate/key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(EnclaveTls {
        cert_der,
        ca_der,
        binding,
        config: Arc::new(config),
        pkcs8,
    })
}

/// A P-384 private key as PKCS#8 DER (RFC 5208 wrapping RFC 5915's ECPrivateKey with the
/// public key, the shape ring reads), from a scalar drawn from `random`.
pub(crate) fn p384_pkcs8(
    random: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    let mut scalar = [0u8; SCALAR_LEN];
    for _ in 0..SCALAR_TRIES {
        random(&mut scalar)?;
        let Ok(secret) = p384::SecretKey::from_slice(&scalar) else {
            continue;
        };
        let public = secret.public_key().to_sec1_bytes();
        scalar.fill(0);
        // 1.2.840.10045.2.1 (id-ecPublicKey) and 1.3.132.0.34 (secp384r1).
        const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
        const SECP384R1: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];
        let mut bit_string = vec![0u8];
        bit_string.extend_from_slice(&public);
        let ec_private_key = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x04, secret.to_bytes().as_slice()),
                tlv(0xA1, &tlv(0x03, &bit_string)),
            ]
            .concat(),
        );
        let algorithm = tlv(0x30, &[EC_PUBLIC_KEY, SECP384R1].concat());
        return Ok(tlv(
            0x30,
            &[tlv(0x02, &[0]), algorithm, tlv(0x04, &ec_private_key)].concat(),
        ));
    }
    anyhow::bail!("the random source gave {SCALAR_TRIES} invalid P-384 scalars in a row")
}

#[cfg(test)]
mod tests {
    /// Random bytes from the OS generator (the runtime passes the NSM's).
    fn os_random(buf: &mut [u8]) -> anyhow::Result<()> {
        getrandom::fill(buf).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))
    }

    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::ServerName;

    fn ca(seed: u8) -> ClusterCa {
        ClusterCa::from_secret(&[seed; 32]).unwrap()
    }

    fn now() -> UnixTime {
        crate::server::now()
    }

    /// A verifier that trusts only `anchor`, as a kubeconfig's `certificate-authority-data`.
    fn trusting(anchor: &CertificateDer<'_>) -> Arc<rustls::client::WebPkiServerVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(anchor.clone().into_owned()).unwrap();
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap()
    }

    #[test]
    fn the_certificate_chains_to_the_cluster_ca_for_its_names() {
        let tls = generate(
            &mut os_random,
            &["api.example.com".into(), "10.1.2.3".into()],
            &ca(7),
            now(),
        )
        .unwrap();
        assert_eq!(tls.ca_der.as_ref(), ca(7).certificate_der());
        let verifier = trusting(&tls.ca_der);
        for (host, ok) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("api.example.com", true),
            ("10.1.2.3", true),
            ("example.org", false),
        ] {
            let name = ServerName::try_from(host).unwrap();
            let result = verifier.verify_server_cert(
                &tls.cert_der,
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            );
            assert_eq!(result.is_ok(), ok, "{host}: {result:?}");
        }
        assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        // Another CA's clients do not trust it, and it is no anchor of its own.
        let name = ServerName::try_from("localhost").unwrap();
        let other = CertificateDer::from(ca(8).certificate_der().to_vec());
        for anchor in [&other, &tls.cert_der] {
            assert!(
                trusting(anchor)
                    .verify_server_cert(
                        &tls.cert_der,
                        &[],
                        &name,
                        &[],
                        rustls::pki_types::UnixTime::now()
                    )
                    .is_err()
            );
        }
    }

    #[test]
    fn the_binding_covers_the_serving_key_and_the_ca_key() {
        let tls = generate(&mut os_random, &[], &ca(7), now()).unwrap();
        let hash = |der: &[u8]| -> [u8; 32] {
            Sha256::digest(nautilus_core::attestation::subject_public_key_info(der).unwrap()).into()
        };
        assert_eq!(tls.binding.serving_spki_sha256, hash(tls.cert_der.as_ref()));
        assert_eq!(tls.binding.ca_spki_sha256, hash(tls.ca_der.as_ref()));
        // A restart: a new serving key, the same CA.
        let again = generate(&mut os_random, &[], &ca(7), now()).unwrap();
        assert_ne!(
            again.binding.serving_spki_sha256,
            tls.binding.serving_spki_sha256
        );
        assert_eq!(again.binding.ca_spki_sha256, tls.binding.ca_spki_sha256);
    }

    #[test]
    fn the_key_comes_from_the_given_random_bytes() {
        let fixed = |buf: &mut [u8]| -> anyhow::Result<()> {
            buf.fill(7);
            Ok(())
        };
        let a = generate(&mut { fixed }, &[], &ca(7), now()).unwrap();
        let b = generate(&mut { fixed }, &[], &ca(7), now()).unwrap();
        assert_eq!(a.binding, b.binding, "same bytes, same key");
        let c = generate(&mut os_random, &[], &ca(7), now()).unwrap();
        assert_ne!(a.binding, c.binding);
        // An all-zero scalar is not a key; a source that only gives zeros is refused.
        let zeros = |buf: &mut [u8]| -> anyhow::Result<()> {
            buf.fill(0);
            Ok(())
        };
        assert!(generate(&mut { zeros }, &[], &ca(7), now()).is_err());
        let failing = |_: &mut [u8]| -> anyhow::Result<()> { anyhow::bail!("no entropy") };
        assert!(generate(&mut { failing }, &[], &ca(7), now()).is_err());
    }

    #[test]
    fn bad_san_is_an_error() {
        assert!(generate(&mut os_random, &["ünïcode.example".into()], &ca(7), now()).is_err());
    }
}
