//! `nautilus-verify`: checks an enclave's attestation document against the pinned AWS Nitro
//! root, then signed answers or a kubeconfig pinning the attested cluster CA that issues the
//! enclave-TLS certificate.
//! Needs no enclave secret; every check is printed with ✓/✗ and any ✗ means exit 1.

pub(crate) mod client;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use nautilus_core::attestation::{self, Policy, VerifiedDocument};
use nautilus_core::signed_answer;
use nautilus_wire::kubeconfig;
use sha2::{Digest as _, Sha256};

use client::{Target, Trust};

/// Response header carrying hex(SHA-256 of the enclave's effective configuration).
pub(crate) const CONFIG_DIGEST_HEADER: &str = "x-nautilus-config-digest";
/// The enclave's canonical configuration text, whose SHA-256 is the config digest.
pub(crate) const CONFIG_PATH: &str = "/attestation/config";
/// How far a signed answer's timestamp may be from this machine's clock.
pub(crate) const ANSWER_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Prints checks and remembers whether any failed.
pub(crate) struct Report {
    failed: bool,
    to_stderr: bool,
}

impl Report {
    pub(crate) fn new(to_stderr: bool) -> Self {
        Self {
            failed: false,
            to_stderr,
        }
    }

    pub(crate) fn check(&mut self, ok: bool, what: &str) -> bool {
        let line = format!("{} {what}", if ok { "✓" } else { "✗" });
        self.print(&line);
        self.failed |= !ok;
        ok
    }

    pub(crate) fn result<T, E: std::fmt::Display>(
        &mut self,
        r: Result<T, E>,
        what: &str,
    ) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(true, what);
                Some(v)
            }
            Err(e) => {
                self.check(false, &format!("{what}: {e}"));
                None
            }
        }
    }

    pub(crate) fn info(&self, line: &str) {
        self.print(&format!("  {line}"));
    }

    fn print(&self, line: &str) {
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    pub(crate) fn failed(&self) -> bool {
        self.failed
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The embedded AWS Nitro root G1, fingerprint-checked.
pub(crate) fn pinned_root(report: &mut Report) -> Option<Vec<u8>> {
    report.result(
        attestation::pinned_root_der(attestation::AWS_NITRO_ROOT_G1_PEM),
        &format!(
            "pinned AWS Nitro root G1, SHA-256 {}",
            hex::encode(attestation::AWS_NITRO_ROOT_G1_SHA256)
        ),
    )
}

/// `--pcr N=HEX` values.
pub(crate) fn parse_pcrs(pcrs: &[String]) -> Result<BTreeMap<u8, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    for p in pcrs {
        let (i, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--pcr {p}: expected INDEX=HEX"))?;
        let i: u8 = i
            .parse()
            .ok()
            .filter(|i| usize::from(*i) < attestation::MAX_PCRS)
            .ok_or_else(|| format!("--pcr {p}: index must be 0 to 31"))?;
        let v = hex::decode(v).map_err(|e| format!("--pcr {p}: not hex: {e}"))?;
        if v.len() != attestation::PCR_LEN {
            return Err(format!(
                "--pcr {p}: a SHA-384 PCR is 48 bytes, got {}",
                v.len()
            ));
        }
        out.insert(i, v);
    }
    Ok(out)
}

/// What the document must say beyond its signature and chain.
pub(crate) struct Expect<'a> {
    pub(crate) pcrs: &'a BTreeMap<u8, Vec<u8>>,
    pub(crate) nonce: Option<&'a [u8]>,
    /// The `user_data` the enclave must have bound, with a description of how it was derived.
    pub(crate) user_data: Option<([u8; 32], String)>,
    pub(crate) allow_simulated: bool,
}

/// Verifies `doc` at its own time and at `at_ms`, then nonce, PCRs and user_data; prints every
/// check. Returns the document if the signature and chain held.
pub(crate) fn check_document(
    report: &mut Report,
    doc: &[u8],
    root: &[u8],
    at_ms: u64,
    expect: &Expect<'_>,
) -> Option<VerifiedDocument> {
    let parsed = report.result(
        attestation::parse(doc),
        &format!("COSE_Sign1 ES384 document ({} bytes) parses", doc.len()),
    )?;
    report.info(&format!("module_id {}", parsed.module_id));
    report.info(&format!("timestamp {} ms", parsed.timestamp_ms));
    for (i, v) in &parsed.pcrs {
        report.info(&format!("PCR{i} {}", hex::encode(v)));
    }
    let simulated = parsed.module_id.starts_with(attestation::SIMULATED_PREFIX);
    let doc_time = parsed.timestamp_ms;
    let policy = Policy {
        allow_simulated: expect.allow_simulated,
        ..Policy::default()
    };
    let anchor = if simulated {
        "its own simulated root (--allow-simulated)"
    } else {
        "the pinned AWS root"
    };
    let at_doc = report.result(
        attestation::verify(doc, root, doc_time, &policy),
        &format!(
            "signature with the leaf key, chain to {anchor}, validity, basicConstraints, keyUsage at the document time {doc_time}"
        ),
    );
    let verified = at_doc?;
    report.result(
        attestation::verify(doc, root, at_ms, &policy),
        &format!("certificate chain valid at {at_ms} ms"),
    );
    if let Some(nonce) = expect.nonce {
        report.check(
            verified.nonce.as_deref() == Some(nonce),
            &format!("nonce {} echoed", hex::encode(nonce)),
        );
    }
    for (i, want) in expect.pcrs {
        let got = verified.pcrs.get(i);
        report.check(
            got == Some(want),
            &match got {
                Some(g) if g == want => format!("PCR{i} is the expected value"),
                Some(g) => format!(
                    "PCR{i} is {} (expected {})",
                    hex::encode(g),
                    hex::encode(want)
                ),
                None => format!("PCR{i} is absent"),
            },
        );
    }
    if let Some((want, how)) = &expect.user_data {
        let got = verified.user_data.as_deref();
        report.check(
            got == Some(want.as_slice()),
            &format!(
                "user_data {} = {how}",
                got.map_or_else(|| "absent".to_string(), hex::encode)
            ),
        );
    }
    if let Some(pk) = &verified.public_key {
        report.info(&format!("public_key {}", hex::encode(pk)));
    }
    if simulated {
        report.info("WARNING: simulated NSM document, not a real Nitro enclave");
    }
    Some(verified)
}

/// Options shared by the network commands.
pub(crate) struct Remote {
    pub(crate) target: Target,
    pub(crate) trust: Trust,
    pub(crate) enclave_tls: bool,
    pub(crate) pcrs: BTreeMap<u8, Vec<u8>>,
    pub(crate) allow_simulated: bool,
}

/// The outcome of a live attestation.
pub(crate) struct Attested {
    pub(crate) doc: VerifiedDocument,
    pub(crate) peer_certificate: Option<Vec<u8>>,
    /// In enclave TLS mode, the CA certificate the attestation binds (what a kubeconfig pins).
    pub(crate) ca_certificate: Option<Vec<u8>>,
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| format!("OS randomness: {e}"))?;
    Ok(out)
}

/// Fetches `/attestation?nonce=...` with a fresh nonce and checks it at its time and now.
pub(crate) async fn attest(report: &mut Report, remote: &Remote) -> Option<Attested> {
    let root = pinned_root(report)?;
    let nonce = report.result(random::<32>(), "fresh 32-byte nonce")?;
    let fetched = report.result(
        client::get(
            &remote.target,
            &remote.trust,
            &format!("/attestation?nonce={}", hex::encode(nonce)),
            &[("accept", "application/cbor".to_string())],
        )
        .await,
        &format!("GET {}/attestation", remote.target.base),
    )?;
    if !report.check(
        fetched.status == 200,
        &format!("/attestation answered {}", fetched.status),
    ) {
        return None;
    }
    let digest = fetched
        .headers
        .get(CONFIG_DIGEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| hex::decode(v.trim()).ok())
        .and_then(|v| <[u8; 32]>::try_from(v).ok());
    let digest = report.result(
        digest.ok_or("missing or not 32 bytes of hex"),
        "X-Nautilus-Config-Digest header",
    )?;
    // The digest means something only with the configuration it hashes: show it when the
    // enclave serves it, and check that it is what the digest says.
    let mut tls_mode = None;
    match client::get(&remote.target, &remote.trust, CONFIG_PATH, &[]).await {
        Ok(config) if config.status == 200 => {
            let hashes = report.check(
                Sha256::digest(&config.body).as_slice() == digest,
                &format!("{CONFIG_PATH} hashes to the config digest"),
            );
            for line in String::from_utf8_lossy(&config.body).lines() {
                report.info(&format!("config {line}"));
                if let Some(mode) = line.strip_prefix("tls = ").filter(|_| hashes) {
                    tls_mode = Some(mode.trim().trim_matches('"').to_string());
                }
            }
        }
        Ok(config) => report.info(&format!(
            "{CONFIG_PATH} answered {}: the digest is checked, the configuration is not shown",
            config.status
        )),
        Err(e) => report.info(&format!("{CONFIG_PATH}: {e}")),
    }
    let binding = if remote.enclave_tls {
        Some(report.result(
            presented_binding(&fetched.peer_chain),
            "enclave TLS certificate presented, issued by the CA presented with it",
        )?)
    } else {
        None
    };
    let how = match &binding {
        Some(b) => format!(
            "SHA-256(config digest {}, SHA-256 of the presented TLS SPKI {}, SHA-256 of its issuing CA's SPKI {})",
            hex::encode(digest),
            hex::encode(b.serving_spki_sha256),
            hex::encode(b.ca_spki_sha256)
        ),
        None => format!(
            "SHA-256(config digest {}, zero SPKI hash: proxy-terminated TLS, not bound)",
            hex::encode(digest)
        ),
    };
    let expect = Expect {
        pcrs: &remote.pcrs,
        nonce: Some(&nonce),
        user_data: Some((signed_answer::user_data(&digest, binding.as_ref()), how)),
        allow_simulated: remote.allow_simulated,
    };
    let doc = check_document(report, &fetched.body, &root, now_ms(), &expect)?;
    // A wrong TLS-mode flag fails the user_data check; the attested configuration says which
    // mode the enclave runs in, so say which flag fits.
    match (tls_mode.as_deref(), remote.enclave_tls) {
        (Some("enclave"), false) => report.info(
            "hint: the attested configuration has tls = \"enclave\": the enclave terminates TLS, \
             verify with --enclave-tls so its certificate is checked against user_data",
        ),
        (Some("proxy"), true) => report.info(
            "hint: the attested configuration has tls = \"proxy\": the certificate presented is \
             the proxy's, which the enclave does not attest; verify with --ca instead of --enclave-tls",
        ),
        _ => {}
    }
    if report.failed() {
        return None;
    }
    Some(Attested {
        doc,
        ca_certificate: binding.and(fetched.peer_chain.last().cloned()),
        peer_certificate: fetched.peer_certificate,
    })
}

/// What enclave TLS must present and the attestation then binds: the serving certificate, then
/// the CA certificate that issued it (the cluster CA, what a kubeconfig trusts). `Err` says what
/// is missing or wrong: no certificate, no CA after it, or a certificate that CA did not issue.
pub(crate) fn presented_binding(chain: &[Vec<u8>]) -> Result<signed_answer::TlsBinding, String> {
    let spki_hash = |der: &[u8]| {
        attestation::subject_public_key_info(der).map(|spki| <[u8; 32]>::from(Sha256::digest(spki)))
    };
    let serving = chain.first().ok_or("the server presented no certificate")?;
    let serving_spki_sha256 = spki_hash(serving).ok_or("the server's certificate does not read")?;
    let ca = chain
        .last()
        .filter(|_| chain.len() >= 2)
        .ok_or("the server presented no CA certificate after its own")?;
    let ca_spki_sha256 = spki_hash(ca).ok_or("the presented CA certificate does not read")?;
    client::issued_by(serving, ca)
        .map_err(|e| format!("the server's certificate is not issued by the presented CA: {e}"))?;
    Ok(signed_answer::TlsBinding {
        serving_spki_sha256,
        ca_spki_sha256,
    })
}

/// A signed GET checked with the attested key; returns the (authentic) status and body.
pub(crate) async fn signed_get(
    report: &mut Report,
    remote: &Remote,
    attested: &Attested,
    path: &str,
    token: Option<&str>,
) -> Option<(u16, Vec<u8>)> {
    let key = report.result(
        attested
            .doc
            .public_key
            .clone()
            .ok_or("the document binds no public_key"),
        "attested identity key",
    )?;
    let nonce = report.result(random::<16>(), "fresh answer nonce")?;
    let mut headers = vec![
        (signed_answer::SIGN_REQUEST_HEADER, "1".to_string()),
        (signed_answer::NONCE_HEADER, hex::encode(nonce)),
    ];
    if let Some(t) = token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    let fetched = report.result(
        client::get(&remote.target, &remote.trust, path, &headers).await,
        &format!("GET {path}"),
    )?;
    if remote.enclave_tls {
        report.check(
            fetched.peer_certificate == attested.peer_certificate,
            "same attested enclave TLS certificate on this connection",
        );
    }
    let header = |name: &str| {
        fetched
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let signature = report.result(
        header(signed_answer::SIGNATURE_HEADER)
            .ok_or_else(|| "absent".to_string())
            .and_then(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| format!("not base64: {e}"))
            }),
        "X-Nautilus-Signature",
    )?;
    let revision = report.result(
        header(signed_answer::REVISION_HEADER)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or("absent or not a number"),
        "X-Nautilus-Revision",
    )?;
    let timestamp = report.result(
        header(signed_answer::TIMESTAMP_HEADER)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or("absent or not a number"),
        "X-Nautilus-Timestamp",
    )?;
    let freshness = report.result(
        header(signed_answer::FRESHNESS_HEADER)
            .and_then(|s| signed_answer::Freshness::parse(s.trim()))
            .ok_or("absent or not in-memory|unverified"),
        "X-Nautilus-Freshness",
    )?;
    let echoed = header(signed_answer::NONCE_HEADER).unwrap_or_default();
    report.check(
        echoed == hex::encode(nonce),
        &format!("nonce echoed ({echoed:?})"),
    );
    let now = now_ms();
    report.check(
        timestamp.abs_diff(now) <= ANSWER_WINDOW_MS,
        &format!("answer timestamp {timestamp} within 5 minutes of this clock ({now})"),
    );
    let fields = signed_answer::SignedFields {
        method: "GET",
        path_and_query: path,
        request_body: b"",
        status: fetched.status,
        response_body: &fetched.body,
        revision,
        timestamp_ms: timestamp,
        freshness,
        nonce: &nonce,
    };
    report.result(
        signed_answer::verify(&key, &fields, &signature),
        &format!(
            "answer signature (status {}, revision {revision}) with the attested key",
            fetched.status
        ),
    );
    report.info(&format!(
        "freshness: {} ({})",
        freshness.as_str(),
        match freshness {
            signed_answer::Freshness::InMemory =>
                "the state never left the enclave; a restart loses it",
            signed_answer::Freshness::Unverified =>
                "restored from the host's sealed log: authentic, but one enclave cannot detect a host serving an older copy",
        }
    ));
    if report.failed() {
        None
    } else {
        Some((fetched.status, fetched.body))
    }
}

/// A kubeconfig whose only CA is the attested cluster CA.
pub(crate) fn kubeconfig(server: &str, cert_der: &[u8], token: Option<&str>) -> String {
    let pem = nautilus_core::der::pem("CERTIFICATE", cert_der);
    let names = kubeconfig::Names {
        cluster: "nautilus-attested",
        user: "nautilus-attested",
        context: "nautilus-attested",
    };
    kubeconfig::kubeconfig(&names, server, pem.as_bytes(), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_flags_are_index_equals_48_hex_bytes() {
        let good = format!("3={}", "ab".repeat(48));
        let parsed = parse_pcrs(std::slice::from_ref(&good)).unwrap();
        assert_eq!(parsed.get(&3), Some(&vec![0xab; 48]));
        for (bad, why) in [
            ("3", "expected INDEX=HEX"),
            ("x=00", "index must be 0 to 31"),
            ("32=00", "index must be 0 to 31"),
            ("0=zz", "not hex"),
            ("0=abc", "not hex"),
            ("0=00", "48 bytes"),
        ] {
            let err = parse_pcrs(&[bad.to_string()]).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    /// A serving certificate for `localhost` issued by the cluster CA of `secret`, as the
    /// enclave makes it, and that CA's certificate.
    fn issued(secret: u8) -> (Vec<u8>, Vec<u8>) {
        let ca = nautilus_core::csr::authority::ClusterCa::from_secret(&[secret; 32]).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let now = nautilus_core::UnixTime::from_secs(now_ms() / 1000);
        let cert = ca
            .sign_server_certificate(
                &key.public_key_der(),
                &["localhost"],
                &[],
                3600,
                now,
                [3; 16],
            )
            .unwrap();
        (cert, ca.certificate_der().to_vec())
    }

    #[test]
    fn the_binding_needs_the_serving_certificate_and_the_ca_that_issued_it() {
        let (cert, ca) = issued(7);
        let binding = presented_binding(&[cert.clone(), ca.clone()]).unwrap();
        let hash = |der: &[u8]| -> [u8; 32] {
            Sha256::digest(attestation::subject_public_key_info(der).unwrap()).into()
        };
        assert_eq!(binding.serving_spki_sha256, hash(&cert));
        assert_eq!(binding.ca_spki_sha256, hash(&ca));
        // A certificate not issued by the CA presented with it is refused, whichever CA that is.
        let (_, other_ca) = issued(8);
        let err = presented_binding(&[cert.clone(), other_ca.clone()]).unwrap_err();
        assert!(err.contains("not issued by the presented CA"), "{err}");
        let (other_cert, _) = issued(8);
        assert!(presented_binding(&[other_cert.clone(), ca.clone()]).is_err());
        // A self-signed certificate presented as its own CA is not the cluster CA's.
        assert!(presented_binding(&[ca.clone(), ca.clone()]).is_err());
        assert!(presented_binding(&[cert.clone(), cert.clone()]).is_err());
        // Nothing, or no CA after the certificate.
        assert!(presented_binding(&[]).is_err());
        let err = presented_binding(std::slice::from_ref(&cert)).unwrap_err();
        assert!(err.contains("no CA certificate"), "{err}");
        // What the attestation binds then differs from what the attested enclave presents: a
        // relay with another CA's certificate (or another key from the same CA) fails user_data.
        let digest = [9u8; 32];
        let attested = signed_answer::user_data(&digest, Some(&binding));
        let relayed = presented_binding(&[other_cert, other_ca]).unwrap();
        assert_ne!(signed_answer::user_data(&digest, Some(&relayed)), attested);
        let (same_ca_other_key, _) = issued(7);
        let relayed = presented_binding(&[same_ca_other_key, ca]).unwrap();
        assert_ne!(signed_answer::user_data(&digest, Some(&relayed)), attested);
    }

    #[test]
    fn kubeconfig_pins_the_certificate_and_carries_the_token() {
        let cfg = kubeconfig(
            "https://10.0.0.1:6443",
            b"\x30\x03\x02\x01\x01",
            Some("t0k"),
        );
        assert!(cfg.contains("server: \"https://10.0.0.1:6443\"\n"));
        assert!(cfg.contains("    token: \"t0k\"\n"));
        // A token YAML would read as a number, or with quotes, stays one exact string.
        let numeric = kubeconfig("https://h:1", b"x", Some("12345"));
        assert!(numeric.contains("    token: \"12345\"\n"), "{numeric}");
        let odd = kubeconfig("https://h:1", b"x", Some("a: #\"b"));
        assert!(odd.contains("    token: \"a: #\\\"b\"\n"), "{odd}");
        assert!(cfg.contains("current-context: \"nautilus-attested\"\n"));
        let data = cfg
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
            .unwrap()
            .trim_matches('"');
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let pem = String::from_utf8(pem).unwrap();
        assert_eq!(
            pem,
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
        );
        let anonymous = kubeconfig("https://h:1", b"x", None);
        assert!(anonymous.contains("  user: {}\n"));
        assert!(!anonymous.contains("token"));
    }
}
