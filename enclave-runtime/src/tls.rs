//! Enclave TLS mode (`--tls enclave`): the enclave makes its own P-384 TLS key from the random
//! bytes it is given (the NSM's in production), a self-signed certificate for `localhost`,
//! `127.0.0.1` and the `--tls-san` names, and terminates TLS 1.3 itself on every stream the
//! proxy hands over, so the host only ever relays ciphertext. The SHA-256 of the certificate's
//! SubjectPublicKeyInfo is what the attestation document binds (`user_data`); a client that
//! checked the document pins that key, and the certificate itself arrives in the handshake.

use std::net::IpAddr;
use std::sync::Arc;

use nautilus_core::der::tlv;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
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

/// The enclave's TLS identity: certificate, key and the hash the attestation binds.
pub(crate) struct EnclaveTls {
    /// The self-signed certificate (DER); clients get it from the handshake.
    pub(crate) cert_der: CertificateDer<'static>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo DER.
    pub(crate) spki_sha256: [u8; 32],
    /// TLS 1.3 server configuration with ALPN `http/1.1`.
    pub(crate) config: Arc<ServerConfig>,
    /// The key (PKCS#8), to make the configuration again with client certificates.
    pkcs8: Vec<u8>,
}

impl EnclaveTls {
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
                vec![self.cert_der.clone()],
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

/// Makes the TLS key from `random` (filled with fresh random bytes on each call) and a
/// self-signed certificate for `localhost`, `127.0.0.1` and `extra_sans` (IP addresses or DNS
/// names).
pub(crate) fn generate(
    random: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>,
    extra_sans: &[String],
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
    let mut params = CertificateParams::default();
    for name in &names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|e| anyhow::anyhow!("--tls-san {name:?}: {e}"))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "nautilus-enclave");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .self_signed(&key)
        .map_err(|e| anyhow::anyhow!("TLS certificate: {e}"))?;
    let spki_sha256: [u8; 32] = Sha256::digest(key.public_key_der()).into();
    let cert_der = cert.der().clone();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.clone())),
        )
        .map_err(|e| anyhow::anyhow!("TLS certificate/key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(EnclaveTls {
        cert_der,
        spki_sha256,
        config: Arc::new(config),
        pkcs8,
    })
}

/// A P-384 private key as PKCS#8 DER (RFC 5208 wrapping RFC 5915's ECPrivateKey with the
/// public key, the shape ring reads), from a scalar drawn from `random`.
fn p384_pkcs8(random: &mut dyn FnMut(&mut [u8]) -> anyhow::Result<()>) -> anyhow::Result<Vec<u8>> {
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
    use rustls::pki_types::{ServerName, UnixTime};

    #[test]
    fn the_certificate_verifies_as_its_own_anchor_for_its_names() {
        let tls = generate(
            &mut os_random,
            &["api.example.com".into(), "10.1.2.3".into()],
        )
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(tls.cert_der.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        for (host, ok) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("api.example.com", true),
            ("10.1.2.3", true),
            ("example.org", false),
        ] {
            let name = ServerName::try_from(host).unwrap();
            let result =
                verifier.verify_server_cert(&tls.cert_der, &[], &name, &[], UnixTime::now());
            assert_eq!(result.is_ok(), ok, "{host}: {result:?}");
        }
        assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn the_spki_hash_covers_the_certificate_key() {
        let tls = generate(&mut os_random, &[]).unwrap();
        // The SPKI sits inside the certificate DER verbatim; find it by its hash.
        let der = tls.cert_der.as_ref();
        let found = der
            .windows(120)
            .any(|w| <[u8; 32]>::from(Sha256::digest(w)) == tls.spki_sha256);
        assert!(
            found,
            "a P-384 SPKI (120 bytes) hashing to spki_sha256 is in the certificate"
        );
    }

    #[test]
    fn the_key_comes_from_the_given_random_bytes() {
        let fixed = |buf: &mut [u8]| -> anyhow::Result<()> {
            buf.fill(7);
            Ok(())
        };
        let a = generate(&mut { fixed }, &[]).unwrap();
        let b = generate(&mut { fixed }, &[]).unwrap();
        assert_eq!(a.spki_sha256, b.spki_sha256, "same bytes, same key");
        let c = generate(&mut os_random, &[]).unwrap();
        assert_ne!(a.spki_sha256, c.spki_sha256);
        // An all-zero scalar is not a key; a source that only gives zeros is refused.
        let zeros = |buf: &mut [u8]| -> anyhow::Result<()> {
            buf.fill(0);
            Ok(())
        };
        assert!(generate(&mut { zeros }, &[]).is_err());
        let failing = |_: &mut [u8]| -> anyhow::Result<()> { anyhow::bail!("no entropy") };
        assert!(generate(&mut { failing }, &[]).is_err());
    }

    #[test]
    fn bad_san_is_an_error() {
        assert!(generate(&mut os_random, &["ünïcode.example".into()]).is_err());
    }
}
