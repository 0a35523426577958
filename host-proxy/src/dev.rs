//! `nautilus-proxy dev`: one command for a local cluster. Makes a throw-away CA and server
//! certificate, a random admin token (the enclave only ever sees its SHA-256), starts the
//! enclave runtime as a supervised child on a Unix socket with a SIMULATED NSM, writes a
//! kubeconfig, then serves exactly like `serve`. With `--enclave-tls` there is no dev CA: the
//! enclave makes its own key, certified by the cluster CA (`--tls enclave`), the proxy splices
//! bytes (passthrough), and the kubeconfig trusts the cluster CA `dev` saw in one TLS handshake
//! with the enclave at start (trust on first use, said in the banner; production pins the
//! attested CA with `nautilus-verify kubeconfig`). A durable cluster keeps its CA across enclave
//! restarts, so the kubeconfig stays as it is. With `--replicas N` (N > 1, durable, proxy TLS)
//! it starts N enclave children, each in `DATA/replica-<slot>/` with its own storage server,
//! supervised one by one, and routes clients to the leader (`replica_route`).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nautilus_wire::kubeconfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::enclave_stream::EnclaveConnector;
use crate::replica_route::ReplicaSet;
use crate::serve::{self, ServeOptions};
use crate::tls;

/// How long the first enclave start may take before `dev` gives up.
const ENCLAVE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the enclave gets to stop after SIGTERM before it is killed.
const ENCLAVE_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Restart backoff cap.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A child that ran this long resets the backoff to its first step.
const STABLE_RUN: Duration = Duration::from_secs(30);
/// Unix socket paths are limited to 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// What `dev` needs beyond the serve options.
pub(crate) struct DevSettings {
    /// Where the CA, kubeconfig and enclave socket live.
    pub(crate) data_dir: PathBuf,
    /// Appended verbatim to the enclave child's arguments.
    pub(crate) enclave_args: Vec<OsString>,
    /// `text` or `json`, handed to the enclave so both logs look alike.
    pub(crate) log_format: &'static str,
    /// Stop when the parent process goes away.
    pub(crate) exit_with_parent: bool,
    /// Enclave TLS mode: the enclave terminates TLS, the proxy passes bytes through.
    pub(crate) enclave_tls: bool,
    /// How many enclave children (1: the single enclave, in the data directory itself).
    pub(crate) replicas: usize,
    /// Each child gets `--storage` on its storage socket (the caller started the servers);
    /// false: `--in-memory`.
    pub(crate) durable: bool,
    /// Each replica's peer address through the relay (`relay:HOST:PORT`), in slot order;
    /// empty: the replicas dial each other's peer sockets.
    pub(crate) peer_addrs: Vec<String>,
    /// Each replica dials its peers through its own fault-injecting relay
    /// (`--replica-faults`, at [`ReplicaPaths::peer_relay`]).
    pub(crate) fault_relays: bool,
}

/// Refuses the combinations `--replicas` does not support yet.
pub(crate) fn check_replicas(replicas: usize, durable: bool) -> Result<(), String> {
    if replicas > 1 && !durable {
        return Err("--replicas > 1 needs the durable store (drop --in-memory)".into());
    }
    Ok(())
}

/// Where one enclave child's files live: the data directory itself for a single enclave (the
/// paths `dev` always used), `DATA/replica-<slot>/` for each of several.
pub(crate) struct ReplicaPaths {
    /// Index in the replica set; the enclave's `--replica-slot`.
    pub(crate) slot: usize,
    pub(crate) dir: PathBuf,
    /// The enclave's API socket.
    pub(crate) enclave_socket: PathBuf,
    /// The enclave's replica mesh listener (it binds it); none for a single enclave.
    pub(crate) peer_socket: Option<PathBuf>,
    /// The relay it dials its peers through with `--replica-faults` (dev binds it; its name
    /// is no longer than the other sockets', so it fits wherever they do); none for a single
    /// enclave.
    pub(crate) peer_relay: Option<PathBuf>,
    pub(crate) storage_socket: PathBuf,
    pub(crate) storage_dir: PathBuf,
    /// `--storage-faults`'s control file.
    pub(crate) storage_faults: PathBuf,
    /// The current child's pid, rewritten at every (re)spawn; none for a single enclave.
    pub(crate) pid_file: Option<PathBuf>,
}

impl ReplicaPaths {
    /// Every child's paths in slot order.
    pub(crate) fn all(data_dir: &Path, replicas: usize) -> Vec<ReplicaPaths> {
        if replicas <= 1 {
            return vec![ReplicaPaths {
                slot: 0,
                dir: data_dir.to_path_buf(),
                enclave_socket: data_dir.join("enclave.sock"),
                peer_socket: None,
                peer_relay: None,
                storage_socket: data_dir.join("storage.sock"),
                storage_dir: data_dir.join("storage"),
                storage_faults: data_dir.join("storage-faults"),
                pid_file: None,
            }];
        }
        (0..replicas)
            .map(|slot| {
                let dir = data_dir.join(format!("replica-{slot}"));
                ReplicaPaths {
                    slot,
                    enclave_socket: dir.join("enclave.sock"),
                    peer_socket: Some(dir.join("peer.sock")),
                    peer_relay: Some(dir.join("relay.sock")),
                    storage_socket: dir.join("storage.sock"),
                    storage_dir: dir.join("storage"),
                    storage_faults: dir.join("storage-faults"),
                    pid_file: Some(dir.join("enclave.pid")),
                    dir,
                }
            })
            .collect()
    }

    /// Creates the directory (mode 0700) and checks that every socket path fits a Unix socket.
    pub(crate) fn prepare(&self) -> Result<(), String> {
        create_data_dir(&self.dir)?;
        let sockets = [
            Some(&self.enclave_socket),
            self.peer_socket.as_ref(),
            self.peer_relay.as_ref(),
            Some(&self.storage_socket),
        ];
        for socket in sockets.into_iter().flatten() {
            if socket.as_os_str().as_bytes().len() > MAX_SOCKET_PATH {
                return Err(format!(
                    "socket path {} is too long for a Unix socket; use a shorter --data-dir",
                    socket.display()
                ));
            }
        }
        Ok(())
    }
}

/// Resolves once this process has been re-parented (its starter exited).
async fn parent_gone() {
    let parent = std::os::unix::process::parent_id();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if std::os::unix::process::parent_id() != parent {
            tracing::info!("the process that started dev exited; shutting down");
            return;
        }
    }
}

/// Runs development mode on an already bound `listener` until SIGTERM/Ctrl-C.
pub(crate) async fn run(
    listener: TcpListener,
    settings: DevSettings,
    options: impl FnOnce(EnclaveConnector) -> ServeOptions,
) -> Result<(), String> {
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listen address: {e}"))?;
    let data_dir = create_data_dir(&settings.data_dir)?;

    let pki = if settings.enclave_tls {
        None
    } else {
        let pki =
            DevPki::generate().map_err(|e| format!("cannot generate dev certificates: {e}"))?;
        let ca_path = data_dir.join("ca.crt");
        write_file(&ca_path, pki.ca_pem.as_bytes(), 0o644)
            .map_err(|e| format!("cannot write {}: {e}", ca_path.display()))?;
        Some(pki)
    };
    let mut enclave_args = settings.enclave_args.clone();
    // Pods (and the `kubernetes` Service's endpoints) reach the API where the proxy listens,
    // unless the operator says otherwise, or it listens on every address or on loopback (which
    // kube's endpoint validation refuses, and no pod on another host could reach).
    let named = enclave_args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--advertise-address"));
    if let std::net::SocketAddr::V4(address) = local
        && !named
        && !address.ip().is_unspecified()
        && !address.ip().is_loopback()
    {
        enclave_args.push(format!("--advertise-address={address}").into());
    }
    if settings.enclave_tls {
        enclave_args.extend(["--tls".into(), "enclave".into()]);
    } else {
        // Pods verify the API server with the CA that signs the proxy's certificate.
        let mut arg = OsString::from("--cluster-ca-file=");
        arg.push(data_dir.join("ca.crt").as_os_str());
        enclave_args.push(arg);
    }
    let token = new_admin_token().map_err(|e| format!("cannot read OS randomness: {e}"))?;

    check_replicas(settings.replicas, settings.durable)?;
    let replicas = ReplicaPaths::all(&data_dir, settings.replicas);
    for paths in &replicas {
        paths.prepare()?;
    }
    let socket = data_dir.join("enclave.sock");
    // The enclave's logs come back over a stream as in production, where it has no console.
    let log_socket = data_dir.join("enclave-logs.sock");
    crate::log_sink::start(&crate::log_sink::SinkListen::Unix(log_socket.clone()))
        .await
        .map_err(|e| e.trim_start_matches("error: ").to_string())?;
    let common = ChildArgs {
        log_socket,
        token_sha256: token_sha256_hex(&token),
        log_format: settings.log_format,
        durable: settings.durable,
        peer_addrs: settings.peer_addrs.clone(),
        fault_relays: settings.fault_relays,
        extra: enclave_args,
    };
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the nautilus-proxy executable: {e}"))?;
    let mut children = start_children(&exe, &common, &replicas, &data_dir).await?;

    let kubeconfig_path = data_dir.join("kubeconfig");
    let server = server_url(local);
    let cert_path = data_dir.join("enclave-tls.crt");
    let (trusted_pem, tls) = match pki {
        Some(pki) => {
            let tls = tls::server_config(tls::Identity {
                chain: pki.server_chain,
                key: pki.server_key,
            })?;
            (pki.ca_pem, Some(tls))
        }
        None => {
            // Every replica shows a certificate of the same cluster CA (it comes from the
            // cluster's data key); the first one up is asked.
            let sockets: Vec<PathBuf> = replicas.iter().map(|r| r.enclave_socket.clone()).collect();
            let learned = learn_from_any(&sockets).await;
            let (serving, ca) = match learned {
                Ok(chain) => chain,
                Err(err) => {
                    terminate_all(&mut children).await;
                    return Err(err);
                }
            };
            let pem = certificate_pem(&ca);
            write_file(&cert_path, pem.as_bytes(), 0o644)
                .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
            print_tofu(&cert_path, &ca, &serving);
            (pem, None)
        }
    };
    // A restarted enclave makes a new TLS key, certified by the same CA when the cluster is
    // durable; a new CA (`--in-memory`) is pinned again the same way, from the child's own
    // socket.
    let repins: Vec<_> = children
        .iter()
        .map(|(_, spec)| {
            settings.enclave_tls.then(|| {
                std::sync::Arc::new(Repin {
                    socket: spec.socket.clone(),
                    cert_path: cert_path.clone(),
                    kubeconfig: kubeconfig_path.clone(),
                    server: server.clone(),
                    token: token.clone(),
                })
            })
        })
        .collect();
    write_file(
        &kubeconfig_path,
        kubeconfig_yaml(&server, &trusted_pem, &token).as_bytes(),
        0o600,
    )
    .map_err(|e| format!("cannot write {}: {e}", kubeconfig_path.display()))?;
    drop(token);
    print_banner(&kubeconfig_path, &server, &replicas);

    let (stop_tx, stop_rx) = watch::channel(false);
    let connector = if replicas.len() > 1 {
        let mut set = ReplicaSet::new(replicas.iter().map(|r| r.enclave_socket.clone()).collect());
        if settings.enclave_tls {
            set = set.with_probe_tls(first_use_client_config()?);
        }
        let mut stop = stop_rx.clone();
        tokio::spawn(
            set.clone()
                .track_leader(async move { stopped(&mut stop).await }),
        );
        EnclaveConnector::Replicas(set)
    } else {
        EnclaveConnector::Unix(socket)
    };
    let supervisors: Vec<_> = children
        .into_iter()
        .zip(repins)
        .map(|((child, spec), repin)| {
            let span = spec.span();
            tokio::spawn(supervise(child, spec, stop_rx.clone(), repin).instrument(span))
        })
        .collect();
    // The signal both stops accepting and (through the supervisor) SIGTERMs the enclave.
    let exit_with_parent = settings.exit_with_parent;
    let shutdown = async move {
        tokio::select! {
            () = serve::shutdown_signal() => {}
            () = parent_gone(), if exit_with_parent => {}
        }
        let _ = stop_tx.send(true);
    };
    serve::serve(listener, tls, options(connector), shutdown).await;
    for supervisor in supervisors {
        if let Err(err) = supervisor.await {
            tracing::error!(error = %err, "enclave supervisor failed");
        }
    }
    Ok(())
}

/// Starts every child at once and waits until each accepts connections. In a fresh replica
/// set slot 0 alone is told to bootstrap (`--replica-bootstrap`): it makes the cluster once a
/// majority of the replicas say they hold none, and the others join it. A set bootstrapped
/// before starts the same way (a cold start needs a majority up). On failure the children
/// started are stopped.
async fn start_children(
    exe: &Path,
    common: &ChildArgs,
    replicas: &[ReplicaPaths],
    data_dir: &Path,
) -> Result<Vec<(Child, EnclaveSpec)>, String> {
    let marker = data_dir.join("replicas-bootstrapped");
    let bootstrap = replicas.len() > 1 && !marker.exists();
    let mut children: Vec<(Child, EnclaveSpec)> = Vec::with_capacity(replicas.len());
    let mut ready = 0;
    for paths in replicas {
        let spec = EnclaveSpec::new(
            exe,
            common.argv(paths, replicas, false),
            paths,
            replicas.len(),
        );
        let first_args = common.argv(paths, replicas, bootstrap && paths.slot == 0);
        let spawned = spec
            .span()
            .in_scope(|| spec.spawn_with(&first_args))
            .map_err(|e| format!("{}cannot start the enclave: {e}", spec.label()));
        match spawned {
            Ok(child) => children.push((child, spec)),
            Err(err) => {
                terminate_all(&mut children).await;
                return Err(err);
            }
        }
    }
    if let Err(err) = wait_all_ready(&mut children, &mut ready).await {
        terminate_all(&mut children).await;
        return Err(err);
    }
    if bootstrap && let Err(err) = write_file(&marker, b"", 0o600) {
        terminate_all(&mut children).await;
        return Err(format!("cannot write {}: {err}", marker.display()));
    }
    Ok(children)
}

/// Waits for the children from index `ready` on; `ready` counts those that accepted.
async fn wait_all_ready(
    children: &mut [(Child, EnclaveSpec)],
    ready: &mut usize,
) -> Result<(), String> {
    for (child, spec) in children.iter_mut().skip(*ready) {
        wait_ready(child, &spec.socket, ENCLAVE_START_TIMEOUT)
            .instrument(spec.span())
            .await
            .map_err(|e| format!("{}{e}", spec.label()))?;
        *ready += 1;
    }
    Ok(())
}

async fn terminate_all(children: &mut [(Child, EnclaveSpec)]) {
    for (child, spec) in children.iter_mut() {
        terminate(child).instrument(spec.span()).await;
    }
}

fn print_banner(kubeconfig: &Path, server: &str, replicas: &[ReplicaPaths]) {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "\n*** DEVELOPMENT MODE: the enclave runs as a local process with a SIMULATED NSM. ***\n\
         *** Its attestation documents are NOT trustworthy. Never use this for real workloads. ***\n\
         server: {server}\n\
         kubeconfig: {}\n\
         export KUBECONFIG={}\n",
        kubeconfig.display(),
        kubeconfig.display()
    );
    if replicas.len() > 1 {
        let _ = writeln!(
            out,
            "replicas: {} enclaves, one directory each:",
            replicas.len()
        );
        for paths in replicas {
            let _ = writeln!(out, "  slot {}: {}", paths.slot, paths.dir.display());
        }
        let _ = writeln!(out);
    }
    let _ = out.flush();
    tracing::warn!("development mode: SIMULATED NSM, throw-away TLS identity and admin token");
}

/// Says that the pinned CA was trusted on first use, and which keys it and the enclave's
/// serving certificate hold.
fn print_tofu(path: &Path, ca: &CertificateDer<'_>, serving: &CertificateDer<'_>) {
    let hash = |cert: &CertificateDer<'_>| {
        crate::tls_reload::spki(cert.as_ref()).map_or_else(
            || "unreadable".to_string(),
            |spki| hex::encode(Sha256::digest(spki)),
        )
    };
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "\n*** ENCLAVE TLS: the enclave terminates TLS; this proxy only passes bytes through. ***\n\
         *** The kubeconfig trusts the cluster CA seen in one handshake with the enclave at start ***\n\
         *** (TRUST ON FIRST USE, not attestation; use `nautilus-verify kubeconfig` in production). ***\n\
         *** The CA issues the enclave's serving certificate; a durable cluster keeps it across restarts. ***\n\
         enclave serving key: SubjectPublicKeyInfo sha256 {}\n\
         cluster CA: {} (CA SubjectPublicKeyInfo sha256 {})",
        hash(serving),
        path.display(),
        hash(ca)
    );
    let _ = out.flush();
}

/// One TLS handshake with the enclave on its socket, accepting whatever certificates it shows
/// (trust on first use): its serving certificate and the CA certificate after it, which must
/// have issued it.
/// A TLS 1.3 client that accepts any certificate (the handshake signature is still checked
/// against it): what learns the enclave's certificate on first use, and what `dev`'s replica
/// poller probes enclave TLS replicas with (their answers are only a routing hint).
pub(crate) fn first_use_client_config() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(FirstUse(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`learn_enclave_certificates`] from the first of `sockets` that completes a handshake,
/// trying them in turn until [`ENCLAVE_START_TIMEOUT`] (replicas come up in any order).
async fn learn_from_any(
    sockets: &[PathBuf],
) -> Result<(CertificateDer<'static>, CertificateDer<'static>), String> {
    let deadline = Instant::now() + ENCLAVE_START_TIMEOUT;
    loop {
        let mut last = String::from("no enclave socket");
        for socket in sockets {
            match learn_enclave_certificates(socket).await {
                Ok(chain) => return Ok(chain),
                Err(err) => last = err,
            }
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn learn_enclave_certificates(
    socket: &Path,
) -> Result<(CertificateDer<'static>, CertificateDer<'static>), String> {
    let config = first_use_client_config()?;
    let provider = config.crypto_provider().clone();
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot reach the enclave at {}: {e}", socket.display()))?;
    let name = rustls::pki_types::ServerName::try_from("localhost")
        .map_err(|e| format!("server name: {e}"))?;
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
    let tls = tokio::time::timeout(ENCLAVE_START_TIMEOUT, handshake)
        .await
        .map_err(|_| "the enclave did not complete a TLS handshake in time".to_string())?
        .map_err(|e| {
            format!("TLS handshake with the enclave failed (is it in --tls enclave mode?): {e}")
        })?;
    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
    let (Some(serving), Some(ca)) = (chain.first(), chain.get(1)) else {
        return Err("the enclave showed no certificate and CA".to_string());
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| format!("the enclave's CA certificate: {e}"))?;
    let parsed = rustls::server::ParsedCertificate::try_from(serving)
        .map_err(|e| format!("the enclave's certificate: {e}"))?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        &[],
        rustls::pki_types::UnixTime::now(),
        provider.signature_verification_algorithms.all,
    )
    .map_err(|e| format!("the enclave's certificate is not issued by the CA it showed: {e}"))?;
    Ok((serving.clone().into_owned(), ca.clone().into_owned()))
}

/// Enclave TLS mode after an enclave restart: learn the new certificate and its CA; the CA
/// pinned already (a durable cluster) leaves the kubeconfig as it is, another one (a cluster
/// that did not survive) is pinned again, trusted on first use as at start.
struct Repin {
    socket: PathBuf,
    cert_path: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    token: String,
}

impl Repin {
    async fn run(self: std::sync::Arc<Self>) {
        let deadline = Instant::now() + ENCLAVE_START_TIMEOUT;
        let (serving, ca) = loop {
            match learn_enclave_certificates(&self.socket).await {
                Ok(chain) => break chain,
                Err(err) if Instant::now() >= deadline => {
                    tracing::error!(error = %err, "cannot pin the restarted enclave's certificate");
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let pem = certificate_pem(&ca);
        if fs::read_to_string(&self.cert_path).is_ok_and(|pinned| pinned == pem) {
            tracing::info!(
                ca = %self.cert_path.display(),
                "the enclave restarted with a new TLS key issued by the pinned cluster CA; kubeconfig unchanged"
            );
            return;
        }
        let written = write_file(&self.cert_path, pem.as_bytes(), 0o644).and_then(|()| {
            write_file(
                &self.kubeconfig,
                kubeconfig_yaml(&self.server, &pem, &self.token).as_bytes(),
                0o600,
            )
        });
        match written {
            Ok(()) => {
                print_tofu(&self.cert_path, &ca, &serving);
                tracing::warn!(
                    kubeconfig = %self.kubeconfig.display(),
                    "the enclave restarted with a new cluster CA; kubeconfig re-pinned (trust on first use)"
                );
            }
            Err(err) => tracing::error!(error = %err, "cannot rewrite the kubeconfig"),
        }
    }
}

/// Accepts any certificate (the handshake signature is still checked against it).
#[derive(Debug)]
struct FirstUse(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for FirstUse {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A DER certificate as PEM.
fn certificate_pem(cert: &CertificateDer<'_>) -> String {
    nautilus_core::der::pem("CERTIFICATE", cert.as_ref())
}

/// Creates `dir` (mode 0700, tightened if it already exists) and returns its absolute path.
pub(crate) fn create_data_dir(dir: &Path) -> Result<PathBuf, String> {
    let what = |e: io::Error| format!("cannot create data dir {}: {e}", dir.display());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(what)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(what)?;
    fs::canonicalize(dir).map_err(what)
}

/// Writes `contents` to `path` with `mode` via a temporary file and a rename, so readers never
/// see a half-written file and a secret never sits in a file with looser permissions.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path)
}

/// The dev CA and a server certificate it signed.
pub(crate) struct DevPki {
    /// The CA certificate, PEM (written to `ca.crt` and into the kubeconfig).
    pub(crate) ca_pem: String,
    /// Server certificate then CA certificate.
    pub(crate) server_chain: Vec<CertificateDer<'static>>,
    /// The server certificate's key.
    pub(crate) server_key: PrivateKeyDer<'static>,
}

impl DevPki {
    /// A fresh CA and a server certificate for 127.0.0.1, ::1 and localhost.
    pub(crate) fn generate() -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("nautilus-dev CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params.distinguished_name = name("nautilus-dev apiserver");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let server = params.signed_by(&server_key, &ca, &ca_key)?;

        Ok(DevPki {
            ca_pem: ca.pem(),
            server_chain: vec![server.der().clone(), ca.der().clone()],
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "nautilus-dev");
    dn
}

/// 32 bytes from the OS RNG, hex encoded (64 characters).
pub(crate) fn new_admin_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Lower-case hex SHA-256 of the token's bytes as sent in `Authorization: Bearer <token>`.
pub(crate) fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The URL clients use: loopback when listening on every address.
fn server_url(local: SocketAddr) -> String {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, local.port()))
}

/// The admin kubeconfig: the cluster and context called after the dev cluster, the user
/// `nautilus-admin` with the admin token.
pub(crate) fn kubeconfig_yaml(server: &str, ca_pem: &str, token: &str) -> String {
    let names = kubeconfig::Names {
        cluster: "nautilus-dev",
        user: "nautilus-admin",
        context: "nautilus-dev",
    };
    kubeconfig::kubeconfig(&names, server, ca_pem.as_bytes(), Some(token))
}

/// The enclave's command line after the program name (contract with `nautilus-enclave`).
fn enclave_argv(
    socket: &Path,
    token_sha256: &str,
    log_format: &str,
    extra: &[OsString],
) -> Vec<OsString> {
    let mut listen = OsString::from("unix:");
    listen.push(socket.as_os_str());
    let mut args: Vec<OsString> = vec![
        "--listen".into(),
        listen,
        "--admin-token-sha256".into(),
        token_sha256.into(),
        "--simulated-nsm".into(),
        "--log-format".into(),
        log_format.into(),
    ];
    args.extend(extra.iter().cloned());
    args
}

/// What every enclave child's command line shares.
struct ChildArgs {
    /// The one log sink all children write to.
    log_socket: PathBuf,
    token_sha256: String,
    log_format: &'static str,
    /// Pass `--storage` (the child's own storage server).
    durable: bool,
    /// Each replica's peer address through the relay, in slot order (none: their sockets).
    peer_addrs: Vec<String>,
    /// Each replica dials through its own relay, its `peer_relay` (`--replica-faults`).
    fault_relays: bool,
    /// The rest, the same for every child.
    extra: Vec<OsString>,
}

impl ChildArgs {
    /// `own`'s command line after the program name: the single enclave's on `own`'s sockets,
    /// plus, among several replicas, its slot, its peer listener, every replica's peer address
    /// in slot order (itself included; the same list for all, as it is in the configuration
    /// they attest), its own fault-injecting relay when there are, and, when `bootstrap`,
    /// `--replica-bootstrap` (contract with `nautilus-enclave`).
    fn argv(&self, own: &ReplicaPaths, all: &[ReplicaPaths], bootstrap: bool) -> Vec<OsString> {
        let unix = |flag: &str, path: &Path| {
            let mut arg = OsString::from(flag);
            arg.push("unix:");
            arg.push(path.as_os_str());
            arg
        };
        let mut extra = Vec::new();
        if self.durable {
            extra.push(unix("--storage=", &own.storage_socket));
        }
        if let Some(peer_socket) = &own.peer_socket {
            extra.push(format!("--replica-slot={}", own.slot).into());
            extra.push(unix("--replica-listen=", peer_socket));
            if self.peer_addrs.is_empty() {
                for peer in all.iter().filter_map(|r| r.peer_socket.as_deref()) {
                    extra.push(unix("--replica-peer=", peer));
                }
            } else {
                for peer in &self.peer_addrs {
                    extra.push(format!("--replica-peer={peer}").into());
                }
            }
            if let Some(relay) = own.peer_relay.as_deref().filter(|_| self.fault_relays) {
                extra.push(unix("--replica-relay=", relay));
            }
            extra.push("--allow-simulated-peers".into());
            if bootstrap {
                extra.push("--replica-bootstrap".into());
            }
        }
        extra.extend(self.extra.iter().cloned());
        let mut args = vec![unix("--log-sink=", &self.log_socket)];
        args.extend(enclave_argv(
            &own.enclave_socket,
            &self.token_sha256,
            self.log_format,
            &extra,
        ));
        args
    }
}

/// How to (re)start one enclave child.
struct EnclaveSpec {
    exe: PathBuf,
    /// The arguments of every restart.
    args: Vec<OsString>,
    socket: PathBuf,
    /// Sockets a killed child leaves behind, removed before each start so it can bind them.
    stale: Vec<PathBuf>,
    pid_file: Option<PathBuf>,
    /// The replica slot, when there are several.
    slot: Option<usize>,
}

impl EnclaveSpec {
    fn new(exe: &Path, args: Vec<OsString>, paths: &ReplicaPaths, replicas: usize) -> Self {
        EnclaveSpec {
            exe: exe.to_path_buf(),
            args,
            socket: paths.enclave_socket.clone(),
            stale: std::iter::once(paths.enclave_socket.clone())
                .chain(paths.peer_socket.clone())
                .collect(),
            pid_file: paths.pid_file.clone(),
            slot: (replicas > 1).then_some(paths.slot),
        }
    }

    /// The span this child's start and supervision log in (none for a single enclave).
    fn span(&self) -> tracing::Span {
        match self.slot {
            Some(slot) => tracing::info_span!("replica", slot),
            None => tracing::Span::none(),
        }
    }

    /// Prefix for errors about this child.
    fn label(&self) -> String {
        self.slot
            .map_or_else(String::new, |slot| format!("replica {slot}: "))
    }

    fn spawn(&self) -> io::Result<Child> {
        self.spawn_with(&self.args)
    }

    /// Starts the child with `args` (the first start of a replica set's slot 0 bootstraps).
    fn spawn_with(&self, args: &[OsString]) -> io::Result<Child> {
        for socket in &self.stale {
            match fs::remove_file(socket) {
                Ok(()) => tracing::debug!(socket = %socket.display(), "removed stale socket"),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        let mut command = Command::new(&self.exe);
        command
            .arg("__enclave")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            // Own process group: a terminal Ctrl-C reaches only the proxy, which then stops
            // the child in order instead of racing its exit against a restart.
            .process_group(0)
            .kill_on_drop(true);
        // The kernel sends the child SIGTERM if the proxy dies without stopping it (SIGKILL,
        // crash), so no enclave outlives its dev proxy.
        #[allow(unsafe_code)]
        // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
        // async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Some(nix::sys::signal::Signal::SIGTERM))
                    .map_err(io::Error::from)
            });
        }
        let child = command.spawn()?;
        tracing::info!(pid = child.id(), "enclave started");
        if let (Some(path), Some(pid)) = (&self.pid_file, child.id())
            && let Err(err) = write_pid_file(path, pid)
        {
            tracing::error!(path = %path.display(), error = %err, "cannot write the enclave's pid file");
        }
        Ok(child)
    }
}

/// Replaces `path` with `pid` atomically (temporary file and rename): a reader sees the old
/// pid or the new one, never a partial write.
fn write_pid_file(path: &Path, pid: u32) -> io::Result<()> {
    write_file(path, format!("{pid}\n").as_bytes(), 0o644)
}

/// Waits until the enclave's socket accepts a connection.
async fn wait_ready(child: &mut Child, socket: &Path, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("cannot watch the enclave process: {e}"))?
        {
            return Err(format!(
                "the enclave exited during start-up ({})",
                describe(status)
            ));
        }
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            tracing::info!(socket = %socket.display(), "enclave is accepting connections");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the enclave did not accept connections on {} within {} s",
                socket.display(),
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Keeps the enclave running: restarts it with backoff (1 s, 2 s, 4 s, ... 10 s) when it
/// exits; on stop, SIGTERMs it and waits.
async fn supervise(
    mut child: Child,
    spec: EnclaveSpec,
    mut stop: watch::Receiver<bool>,
    repin: Option<std::sync::Arc<Repin>>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), describe);
                if started.elapsed() >= STABLE_RUN {
                    backoff = Duration::from_secs(1);
                }
                tracing::error!(status, restart_in_secs = backoff.as_secs(), "the enclave exited unexpectedly");
            }
            () = stopped(&mut stop) => {
                terminate(&mut child).await;
                return;
            }
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stopped(&mut stop) => return,
            }
            backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            match spec.spawn() {
                Ok(new_child) => {
                    child = new_child;
                    if let Some(repin) = &repin {
                        tokio::spawn(std::sync::Arc::clone(repin).run());
                    }
                    break;
                }
                Err(err) => {
                    tracing::error!(error = %err, restart_in_secs = backoff.as_secs(), "cannot restart the enclave")
                }
            }
        }
    }
}

/// Completes once a stop was requested (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// SIGTERM, then SIGKILL after `ENCLAVE_STOP_TIMEOUT`.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let pid = nix::unistd::Pid::from_raw(pid);
        if let Err(err) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM) {
            tracing::warn!(error = %err, "cannot send SIGTERM to the enclave");
        }
    }
    match tokio::time::timeout(ENCLAVE_STOP_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => tracing::info!(status = describe(status), "enclave stopped"),
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot wait for the enclave"),
        Err(_) => {
            tracing::warn!("the enclave ignored SIGTERM; killing it");
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    use std::sync::Arc;

    fn verifier(pki: &DevPki) -> Arc<WebPkiServerVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = pki.server_chain.get(1).unwrap().clone();
        roots.add(ca).unwrap();
        WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap()
    }

    #[test]
    fn server_cert_verifies_for_loopback_names() {
        let pki = DevPki::generate().unwrap();
        let verifier = verifier(&pki);
        let leaf = pki.server_chain.first().unwrap();
        let cases = [
            ("127.0.0.1", true),
            ("::1", true),
            ("localhost", true),
            ("example.com", false),
            ("10.0.0.1", false),
        ];
        for (host, ok) in cases {
            let name = ServerName::try_from(host).unwrap();
            let result = verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now());
            assert_eq!(result.is_ok(), ok, "{host}: {result:?}");
        }
    }

    #[test]
    fn another_ca_does_not_verify() {
        let pki = DevPki::generate().unwrap();
        let other = DevPki::generate().unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let leaf = pki.server_chain.first().unwrap();
        let result = verifier(&other).verify_server_cert(leaf, &[], &name, &[], UnixTime::now());
        assert!(result.is_err());
    }

    #[test]
    fn ca_pem_is_the_chain_root() {
        use rustls::pki_types::pem::PemObject;
        let pki = DevPki::generate().unwrap();
        let parsed = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap();
        assert_eq!(Some(&parsed), pki.server_chain.get(1));
    }

    #[test]
    fn tls_config_accepts_dev_identity() {
        let pki = DevPki::generate().unwrap();
        let config = tls::server_config(tls::Identity {
            chain: pki.server_chain,
            key: pki.server_key,
        })
        .unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn certificate_pem_round_trips() {
        use rustls::pki_types::pem::PemObject;
        let pki = DevPki::generate().unwrap();
        let leaf = pki.server_chain.first().unwrap();
        let pem = certificate_pem(leaf);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(
            &CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
            leaf
        );
    }

    #[test]
    fn admin_token_is_random_hex_and_hash_matches() {
        let a = new_admin_token().unwrap();
        let b = new_admin_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            token_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn server_url_uses_loopback_for_unspecified() {
        let cases = [
            ("127.0.0.1:6443", "https://127.0.0.1:6443"),
            ("0.0.0.0:6443", "https://127.0.0.1:6443"),
            ("[::]:7000", "https://[::1]:7000"),
            ("[::1]:7000", "https://[::1]:7000"),
        ];
        for (listen, want) in cases {
            assert_eq!(server_url(listen.parse().unwrap()), want);
        }
    }

    #[test]
    fn enclave_argv_passes_only_the_hash() {
        let args = enclave_argv(
            Path::new("/d/enclave.sock"),
            "ab".repeat(32).as_str(),
            "json",
            &["--max-objects".into(), "10".into()],
        );
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        let hash = "ab".repeat(32);
        assert_eq!(
            args,
            [
                "--listen",
                "unix:/d/enclave.sock",
                "--admin-token-sha256",
                hash.as_str(),
                "--simulated-nsm",
                "--log-format",
                "json",
                "--max-objects",
                "10"
            ]
        );
    }

    fn child_args(durable: bool) -> ChildArgs {
        ChildArgs {
            log_socket: PathBuf::from("/d/enclave-logs.sock"),
            token_sha256: "ab".repeat(32),
            log_format: "json",
            durable,
            peer_addrs: Vec::new(),
            fault_relays: false,
            extra: vec!["--kms-key-id=k".into(), "--cluster-id=dev".into()],
        }
    }

    /// With peer listeners, each replica names every peer by its relay address, in slot
    /// order, the same list for all.
    #[test]
    fn replicas_name_their_peers_by_relay_address_when_given() {
        let all = ReplicaPaths::all(Path::new("/d"), 3);
        let args = ChildArgs {
            peer_addrs: vec![
                "relay:127.0.0.1:7001".into(),
                "relay:127.0.0.1:7002".into(),
                "relay:127.0.0.1:7003".into(),
            ],
            ..child_args(true)
        };
        let argv: Vec<String> = args
            .argv(&all[1], &all, false)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let peers: Vec<&str> = argv
            .iter()
            .filter_map(|a| a.strip_prefix("--replica-peer="))
            .collect();
        assert_eq!(
            peers,
            [
                "relay:127.0.0.1:7001",
                "relay:127.0.0.1:7002",
                "relay:127.0.0.1:7003"
            ]
        );
        assert!(argv.contains(&"--replica-listen=unix:/d/replica-1/peer.sock".to_string()));
        assert!(
            !argv.iter().any(|a| a.starts_with("--replica-relay")),
            "the shared relay (--kms-relay) unless faults are on"
        );
    }

    /// With `--replica-faults`, each replica dials through its own relay (which knows the
    /// dialer, so each link), next to its slot; the peer list, part of the configuration every
    /// replica attests, stays the same for all.
    #[test]
    fn with_faults_each_replica_dials_through_its_own_relay() {
        let all = ReplicaPaths::all(Path::new("/d"), 3);
        let list = vec![
            "relay:127.0.0.1:7001".to_string(),
            "relay:127.0.0.1:7002".into(),
            "relay:127.0.0.1:7003".into(),
        ];
        let args = ChildArgs {
            peer_addrs: list.clone(),
            fault_relays: true,
            ..child_args(true)
        };
        for own in &all {
            let argv: Vec<String> = args
                .argv(own, &all, false)
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let peers: Vec<&str> = argv
                .iter()
                .filter_map(|a| a.strip_prefix("--replica-peer="))
                .collect();
            assert_eq!(peers, list);
            let slot = own.slot;
            let relays: Vec<&String> = argv
                .iter()
                .filter(|a| a.starts_with("--replica-relay="))
                .collect();
            assert_eq!(
                relays,
                [&format!(
                    "--replica-relay=unix:/d/replica-{slot}/relay.sock"
                )]
            );
            assert!(argv.contains(&format!("--replica-slot={slot}")));
        }
    }

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn a_single_enclave_keeps_its_argv_and_paths() {
        let all = ReplicaPaths::all(Path::new("/d"), 1);
        let [one] = all.as_slice() else {
            panic!("one enclave: {}", all.len())
        };
        assert_eq!(one.dir, Path::new("/d"));
        assert_eq!(one.storage_dir, Path::new("/d/storage"));
        assert_eq!(one.storage_faults, Path::new("/d/storage-faults"));
        assert_eq!((&one.peer_socket, &one.pid_file), (&None, &None));
        let hash = "ab".repeat(32);
        // What `dev` passed before replicas existed: the log sink first, then the listen
        // socket, the hash and the simulated NSM, then the store, then the rest.
        for bootstrap in [false, true] {
            let args = child_args(true).argv(one, &all, bootstrap);
            assert_eq!(
                strings(&args),
                [
                    "--log-sink=unix:/d/enclave-logs.sock",
                    "--listen",
                    "unix:/d/enclave.sock",
                    "--admin-token-sha256",
                    hash.as_str(),
                    "--simulated-nsm",
                    "--log-format",
                    "json",
                    "--storage=unix:/d/storage.sock",
                    "--kms-key-id=k",
                    "--cluster-id=dev",
                ]
            );
        }
        let in_memory = child_args(false).argv(one, &all, false);
        assert!(
            !strings(&in_memory)
                .iter()
                .any(|a| a.starts_with("--storage"))
        );
    }

    #[test]
    fn replicas_get_their_own_sockets_and_every_peer_in_slot_order() {
        let all = ReplicaPaths::all(Path::new("/d"), 3);
        assert_eq!(all.len(), 3);
        let hash = "ab".repeat(32);
        let peers = [
            "--replica-peer=unix:/d/replica-0/peer.sock",
            "--replica-peer=unix:/d/replica-1/peer.sock",
            "--replica-peer=unix:/d/replica-2/peer.sock",
        ];
        for (slot, paths) in all.iter().enumerate() {
            assert_eq!(paths.slot, slot);
            let dir = format!("/d/replica-{slot}");
            assert_eq!(paths.dir, Path::new(&dir));
            assert_eq!(paths.storage_dir, Path::new(&format!("{dir}/storage")));
            assert_eq!(
                paths.storage_faults,
                Path::new(&format!("{dir}/storage-faults"))
            );
            assert_eq!(
                paths.pid_file.as_deref(),
                Some(Path::new(&format!("{dir}/enclave.pid")))
            );
            let listen = format!("unix:{dir}/enclave.sock");
            let storage = format!("--storage=unix:{dir}/storage.sock");
            let slot_arg = format!("--replica-slot={slot}");
            let replica_listen = format!("--replica-listen=unix:{dir}/peer.sock");
            let mut want = vec![
                "--log-sink=unix:/d/enclave-logs.sock",
                "--listen",
                listen.as_str(),
                "--admin-token-sha256",
                hash.as_str(),
                "--simulated-nsm",
                "--log-format",
                "json",
                storage.as_str(),
                slot_arg.as_str(),
                replica_listen.as_str(),
            ];
            want.extend(peers);
            want.push("--allow-simulated-peers");
            let tail = ["--kms-key-id=k", "--cluster-id=dev"];
            let restart = child_args(true).argv(paths, &all, false);
            assert_eq!(
                strings(&restart),
                [want.as_slice(), &tail].concat(),
                "slot {slot}"
            );
            let first = child_args(true).argv(paths, &all, true);
            want.push("--replica-bootstrap");
            assert_eq!(
                strings(&first),
                [want.as_slice(), &tail].concat(),
                "slot {slot}"
            );
        }
    }

    #[test]
    fn only_slot_0_of_a_fresh_set_bootstraps_and_never_on_restart() {
        let all = ReplicaPaths::all(Path::new("/d"), 3);
        let common = child_args(true);
        let specs: Vec<_> = all
            .iter()
            .map(|paths| {
                let spec = EnclaveSpec::new(
                    Path::new("/bin/true"),
                    common.argv(paths, &all, false),
                    paths,
                    all.len(),
                );
                (paths.slot, spec)
            })
            .collect();
        let bootstraps = |args: &[OsString]| args.iter().any(|a| a == "--replica-bootstrap");
        for (slot, spec) in &specs {
            // Restarts use the spec's own arguments.
            assert!(!bootstraps(&spec.args), "slot {slot} restart");
            assert_eq!(spec.slot, Some(*slot));
            assert_eq!(spec.socket, all[*slot].enclave_socket);
            assert_eq!(
                spec.stale,
                [
                    all[*slot].enclave_socket.clone(),
                    all[*slot].peer_socket.clone().unwrap()
                ]
            );
        }
        // `start_children`'s rule for the first start.
        for fresh in [true, false] {
            for paths in &all {
                let first = common.argv(paths, &all, fresh && paths.slot == 0);
                assert_eq!(bootstraps(&first), fresh && paths.slot == 0);
            }
        }
    }

    #[test]
    fn replicas_refuse_in_memory() {
        assert!(check_replicas(1, false).is_ok());
        assert!(check_replicas(1, true).is_ok());
        assert!(check_replicas(3, true).is_ok());
        let err = check_replicas(3, false).unwrap_err();
        assert!(
            err.contains("--replicas > 1 needs the durable store"),
            "{err}"
        );
    }

    #[test]
    fn pid_file_is_replaced_on_each_write() {
        let dir = temp_dir("pid");
        let path = dir.join("enclave.pid");
        write_pid_file(&path, 4242).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242\n");
        write_pid_file(&path, 7).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "7\n");
        // Only the pid file: the temporary file was renamed over it.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["enclave.pid"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replica_directories_are_private_and_socket_paths_checked() {
        let dir = temp_dir("replicas");
        for paths in ReplicaPaths::all(&dir, 2) {
            paths.prepare().unwrap();
            let mode = fs::metadata(&paths.dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        let long = dir.join("x".repeat(MAX_SOCKET_PATH));
        let err = ReplicaPaths::all(&long, 2)
            .first()
            .unwrap()
            .prepare()
            .unwrap_err();
        assert!(err.contains("too long"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nautilus-proxy-unit-{tag}-{}-{}",
            std::process::id(),
            new_admin_token().unwrap().get(..8).unwrap()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn kubeconfig_file_is_private_and_complete() {
        let dir = temp_dir("kubeconfig");
        let path = dir.join("kubeconfig");
        // A pre-existing world-readable file must not keep its mode.
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let yaml = kubeconfig_yaml("https://127.0.0.1:6443", pem, "tok123");
        write_file(&path, yaml.as_bytes(), 0o600).unwrap();

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, yaml);
        let ca_b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        for line in [
            "- name: \"nautilus-dev\"",
            "    server: \"https://127.0.0.1:6443\"",
            &format!("    certificate-authority-data: \"{ca_b64}\""),
            "- name: \"nautilus-admin\"",
            "    token: \"tok123\"",
            "    cluster: \"nautilus-dev\"",
            "    user: \"nautilus-admin\"",
            "current-context: \"nautilus-dev\"",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn data_dir_is_created_private() {
        let dir = temp_dir("datadir").join("nested");
        let abs = create_data_dir(&dir).unwrap();
        assert!(abs.is_absolute());
        let mode = fs::metadata(&abs).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
