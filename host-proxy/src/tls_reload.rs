//! Proxy-terminated TLS with an operator's certificate: the served certificate and key are read
//! from PEM files (ECDSA, RSA or Ed25519; a chain is allowed) and swapped atomically on SIGHUP,
//! without touching open connections; a bad new file keeps the old certificate and says why.
//! Optional client-certificate authentication (`--client-ca`): rustls verifies a presented
//! certificate against that CA (an unknown CA, an expired or otherwise invalid certificate fails
//! the handshake); clients without one still connect and use bearer tokens. The verified
//! certificate's subject CN is the user and its O values the groups, as kube-apiserver's x509
//! authenticator has it; [`client_identity`] reads them for the connection preamble.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use crate::tls;

/// The certificate and key files of `serve --cert/--key`.
#[derive(Clone, Debug)]
pub(crate) struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub(crate) cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub(crate) key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the files: the key must load and match the leaf certificate.
pub(crate) fn load(files: &CertFiles) -> Result<Arc<CertifiedKey>, String> {
    let identity = tls::load_pem(&files.cert, &files.key)?;
    let key = provider()
        .key_provider
        .load_private_key(identity.key)
        .map_err(|e| format!("{}: unusable private key: {e}", files.key.display()))?;
    let certified = CertifiedKey::new(identity.chain, key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(format!(
                "{} does not belong to the certificate in {}: {e}",
                files.key.display(),
                files.cert.display()
            ));
        }
    }
    Ok(Arc::new(certified))
}

/// Serves the current certificate; [`ReloadingCert::reload`] swaps it for new connections.
pub(crate) struct ReloadingCert {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the files once; an error here stops the start.
    pub(crate) fn new(files: CertFiles) -> Result<Arc<Self>, String> {
        let current = RwLock::new(load(&files)?);
        Ok(Arc::new(Self { files, current }))
    }

    /// Reads the files again; on success new handshakes get the new certificate, on failure
    /// the old one stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let fresh = load(&self.files)?;
        match self.current.write() {
            Ok(mut slot) => *slot = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(slot) => Arc::clone(&slot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Reloads `cert` on every SIGHUP until the process ends.
pub(crate) fn reload_on_sighup(cert: Arc<ReloadingCert>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGHUP; certificate reload is off");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match cert.reload() {
                Ok(()) => tracing::info!(
                    cert = %cert.files.cert.display(),
                    "SIGHUP: TLS certificate reloaded; new connections use it"
                ),
                Err(reason) => tracing::warn!(
                    reason,
                    "SIGHUP: TLS certificate NOT reloaded; still serving the previous one"
                ),
            }
        }
    });
}

/// Reads the PEM CA certificates that client certificates must chain to.
fn load_client_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read client CA from {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("client CA in {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(roots)
}

/// The TLS 1.3 server configuration for `serve`: the reloading certificate, ALPN `http/1.1`,
/// and, with `client_ca`, optional client certificates verified against it.
pub(crate) fn server_config(
    cert: Arc<ReloadingCert>,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, String> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = load_client_roots(path)?;
            // Unauthenticated clients are let through: they may still carry a bearer token.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("client CA {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A verified client certificate's user: the subject's (last) CN and its O values in order, as
/// Go's `pkix.Name` reads them for kube-apiserver. `None` when the certificate cannot be read
/// or names no CN.
pub(crate) fn client_identity(cert: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, certificate, _) = der(cert)?;
    let (_, mut tbs, _) = der(certificate)?;
    // [0] version is optional; then serial, signature algorithm, issuer, validity, subject.
    let (tag, _, rest) = der(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
    }
    let mut subject = None;
    for _ in 0..5 {
        let (_, contents, rest) = der(tbs)?;
        subject = Some(contents);
        tbs = rest;
    }
    let mut rdns = subject?;
    let mut cn = None;
    let mut groups = Vec::new();
    while !rdns.is_empty() {
        let (_, mut set, rest) = der(rdns)?;
        rdns = rest;
        while !set.is_empty() {
            let (_, attribute, rest) = der(set)?;
            set = rest;
            let (oid_tag, oid, value) = der(attribute)?;
            let (value_tag, value, _) = der(value)?;
            if oid_tag != 0x06 {
                return None;
            }
            // UTF8String, PrintableString, IA5String (what certificate tools write).
            let text = match value_tag {
                0x0C | 0x13 | 0x16 => String::from_utf8(value.to_vec()).ok(),
                _ => None,
            };
            match (oid, text) {
                ([0x55, 0x04, 0x03], Some(text)) => cn = Some(text),
                ([0x55, 0x04, 0x0A], Some(text)) => groups.push(text),
                _ => {}
            }
        }
    }
    cn.filter(|cn| !cn.is_empty()).map(|cn| (cn, groups))
}

/// The SubjectPublicKeyInfo DER of a certificate (what the enclave's attestation binds by
/// hash), or `None` when the certificate cannot be read.
#[cfg_attr(not(feature = "dev"), allow(dead_code))]
pub(crate) fn spki(cert: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = der(cert)?;
    let (_, mut tbs, _) = der(certificate)?;
    let (tag, _, rest) = der(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
    }
    // serial, signature, issuer, validity, subject, then subjectPublicKeyInfo.
    for _ in 0..5 {
        tbs = der(tbs)?.2;
    }
    let rest = der(tbs)?.2;
    let whole = tbs.len().checked_sub(rest.len())?;
    tbs.get(..whole)
}

/// One DER element: (tag, contents, rest). Single-byte tags, definite lengths up to 4 bytes.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn cert_with(names: &[(DnType, &str)]) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        for (kind, value) in names {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_cn_is_the_user_and_o_the_groups() {
        type Case<'a> = (Vec<(DnType, &'a str)>, Option<(&'a str, Vec<&'a str>)>);
        let cases: Vec<Case<'_>> = vec![
            (
                vec![
                    (DnType::CommonName, "alice"),
                    (DnType::OrganizationName, "dev"),
                ],
                Some(("alice", vec!["dev"])),
            ),
            (vec![(DnType::CommonName, "bob")], Some(("bob", vec![]))),
            (vec![(DnType::OrganizationName, "dev")], None),
            (
                vec![(DnType::CommonName, "ünï côde")],
                Some(("ünï côde", vec![])),
            ),
        ];
        for (names, want) in cases {
            let der = cert_with(&names);
            let got = client_identity(&der);
            let want = want.map(|(cn, g)| {
                (
                    cn.to_string(),
                    g.into_iter().map(String::from).collect::<Vec<_>>(),
                )
            });
            assert_eq!(got, want, "{names:?}");
        }
    }

    #[test]
    fn spki_is_the_key_rcgen_put_in() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(spki(cert.der()), Some(key.public_key_der().as_slice()));
        assert_eq!(spki(b"\x30\x03\x30\x01\x00"), None);
    }

    #[test]
    fn garbage_and_truncations_are_none_not_panics() {
        let der = cert_with(&[(DnType::CommonName, "alice")]);
        assert!(client_identity(&der).is_some());
        for len in 0..der.len() {
            // A certificate cut anywhere never panics (most cuts give None).
            let _ = client_identity(der.get(..len).unwrap());
        }
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x85\x00\x00\x00\x00\x00",
            b"\x30\x80",
        ] {
            assert_eq!(client_identity(input), None);
        }
    }

    fn write_pair(dir: &Path, name: &str) -> CertFiles {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let files = CertFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn reload_swaps_and_a_bad_file_keeps_the_old_certificate() {
        let dir = std::env::temp_dir().join(format!("nautilus-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = write_pair(&dir, "one.example");
        let resolver = ReloadingCert::new(files.clone()).unwrap();
        let first = resolver.get().cert.clone();
        write_pair(&dir, "two.example");
        resolver.reload().unwrap();
        let second = resolver.get().cert.clone();
        assert_ne!(first, second);
        // A key that does not match, then an unreadable file: both keep the second certificate.
        let other = KeyPair::generate().unwrap();
        std::fs::write(&files.key, other.serialize_pem()).unwrap();
        let err = resolver.reload().unwrap_err();
        assert!(err.contains("does not belong"), "{err}");
        std::fs::write(&files.cert, "not pem").unwrap();
        assert!(resolver.reload().is_err());
        assert_eq!(resolver.get().cert, second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
