//! `nautilus-proxy`: the untrusted host proxy. It terminates TLS at the API port and splices
//! bytes into one enclave stream per client connection; it holds no cluster secret, makes no
//! state decision and never parses Kubernetes paths or logs payloads.

mod config;
#[cfg(feature = "dev")]
mod dev;
mod enclave_stream;
mod fallback;
mod log_sink;
mod metrics;
#[cfg(feature = "dev")]
mod peer_faults;
mod peer_splice;
mod penalty;
mod relay;
#[cfg(feature = "dev")]
mod replica_route;
mod serve;
#[cfg(feature = "dev")]
mod simulated_kms;
mod slots;
mod storage;
// `serve` builds its configuration in tls_reload; the fixed one here is dev's.
#[cfg_attr(not(feature = "dev"), allow(dead_code))]
mod tls;
mod tls_reload;

#[cfg(feature = "dev")]
use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::enclave_stream::EnclaveConnector;
use crate::serve::ServeOptions;

/// Exit code when the listen address cannot be bound (documented contract for scripts).
const EXIT_CANNOT_LISTEN: u8 = 2;
/// The most enclave children `dev --replicas` starts (each is a full enclave process).
#[cfg(feature = "dev")]
const MAX_DEV_REPLICAS: i64 = 9;

#[derive(Parser, Debug)]
#[command(
    name = "nautilus-proxy",
    version,
    about = "Untrusted host proxy for Nautilus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Terminate TLS on a TCP port and splice each connection into the enclave.
    Serve(ServeCli),
    /// Development mode: dev CA, admin kubeconfig, enclave child with a SIMULATED NSM.
    #[cfg(feature = "dev")]
    Dev(DevCli),
    /// Runs the enclave runtime in this process (used by `dev` to start its child).
    #[cfg(feature = "dev")]
    #[command(name = "__enclave", hide = true, disable_help_flag = true)]
    Enclave {
        /// Arguments handed unchanged to the enclave runtime.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    #[default]
    Text,
    Json,
}

#[cfg(feature = "dev")]
impl LogFormat {
    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Args, Debug, Clone)]
struct LogCli {
    /// Log output format (logs go to stderr).
    #[arg(long, env = "NAUTILUS_PROXY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `nautilus_proxy=debug` (`dev` hands it to the enclave too,
    /// unless `--enclave-arg=--log-level=...` is given).
    #[arg(long, env = "NAUTILUS_PROXY_LOG_LEVEL", default_value = "info", value_parser = config::parse_log_filter)]
    log_level: String,
}

#[derive(Args, Debug, Clone)]
struct TuningCli {
    /// Maximum concurrent client connections. When all are taken, a new connection gets the
    /// slot of the oldest waiting (or idle) connection of the source address holding the most,
    /// if that source holds more than the newcomer's; otherwise it is closed at once.
    #[arg(long, env = "NAUTILUS_PROXY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections: usize,
    /// Maximum concurrent connections from one source IP address; more are closed at once.
    #[arg(long, env = "NAUTILUS_PROXY_MAX_CONNECTIONS_PER_SOURCE", default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections_per_source: usize,
    /// Seconds a client may take to complete the TLS handshake.
    #[arg(
        long,
        env = "NAUTILUS_PROXY_HANDSHAKE_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    handshake_timeout_secs: u64,
    /// Seconds a connection may stay silent after its TLS handshake (passthrough: after the
    /// accept) before its first request bytes; no enclave stream is opened until they arrive.
    #[arg(
        long,
        env = "NAUTILUS_PROXY_FIRST_REQUEST_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    first_request_timeout_secs: u64,
    /// Seconds without a byte in either direction before a connection is closed.
    #[arg(long, env = "NAUTILUS_PROXY_IDLE_TIMEOUT_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    idle_timeout_secs: u64,
    /// Seconds open connections get to finish after SIGTERM/Ctrl-C.
    #[arg(long, env = "NAUTILUS_PROXY_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    shutdown_grace_secs: u64,
    /// Loopback address for the proxy's own Prometheus metrics over plain HTTP (default: off).
    #[arg(long, env = "NAUTILUS_PROXY_METRICS_LISTEN", value_name = "ADDR", value_parser = metrics::parse_listen)]
    metrics_listen: Option<SocketAddr>,
}

impl TuningCli {
    fn options(&self, enclave: EnclaveConnector) -> ServeOptions {
        ServeOptions {
            enclave,
            max_connections: self.max_connections.max(1),
            max_connections_per_source: self.max_connections_per_source.max(1),
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
            first_request_timeout: Duration::from_secs(self.first_request_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            enclave_connect_timeout: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        }
    }
}

/// The Sui byte relay (enclave → allowlisted full nodes); off when no `--sui-node` is given.
#[derive(Args, Debug, Clone)]
struct RelayCli {
    /// A Sui full node (gRPC, `HOST:PORT`) the enclave may reach through the relay; repeatable.
    /// Nothing else is reachable.
    #[arg(
        long = "sui-node",
        env = "NAUTILUS_PROXY_SUI_NODES",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    sui_nodes: Vec<relay::NodeAddr>,
    /// Enclave-facing relay endpoint: `unix:/path` or `vsock:PORT` (`dev`: a socket in the
    /// data directory).
    #[arg(long, env = "NAUTILUS_PROXY_SUI_RELAY_LISTEN", value_name = "ADDR")]
    sui_relay_listen: Option<relay::RelayListen>,
    /// The AWS KMS endpoint the enclave may reach through the same relay (`HOST:PORT`, e.g.
    /// `kms.us-east-1.amazonaws.com:443`); repeatable. TLS to it ends in the enclave.
    #[arg(
        long = "kms-endpoint",
        env = "NAUTILUS_PROXY_KMS_ENDPOINTS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    kms_endpoints: Vec<relay::NodeAddr>,
    /// A network (`ADDR/PREFIX`, or one address) whose kubelets the enclave may reach through
    /// the relay, for `kubectl logs`, `exec`, `attach` and `port-forward`; repeatable. The
    /// enclave asks only for registered Nodes' addresses; this keeps a compromised enclave from
    /// reaching anything else. Default: none (`dev`: loopback).
    #[arg(
        long = "kubelet-network",
        env = "NAUTILUS_PROXY_KUBELET_NETWORKS",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    kubelet_networks: Vec<relay::KubeletNetwork>,
    /// Ports kubelets may be reached on, `PORT` or `LOW-HIGH`; repeatable. Default: 10250.
    #[arg(
        long = "kubelet-ports",
        env = "NAUTILUS_PROXY_KUBELET_PORTS",
        value_delimiter = ',',
        value_name = "PORTS"
    )]
    kubelet_ports: Vec<relay::PortRange>,
    /// Another enclave replica's proxy (`HOST:PORT` of its `--replica-peer-listen`) this
    /// enclave may reach through the relay; repeatable (issue 17).
    #[arg(
        long = "replica-peer",
        env = "NAUTILUS_PROXY_REPLICA_PEERS",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    replica_peers: Vec<relay::NodeAddr>,
}

impl RelayCli {
    /// Where kubelets may be reached: the flags, or `defaults` (networks, ports) for what is
    /// not given.
    fn kubelets(&self, defaults: Option<relay::KubeletAllow>) -> relay::KubeletAllow {
        let defaults = defaults.unwrap_or_else(|| relay::KubeletAllow {
            networks: Vec::new(),
            ports: vec![relay::PortRange::KUBELET],
        });
        relay::KubeletAllow {
            networks: if self.kubelet_networks.is_empty() {
                defaults.networks
            } else {
                self.kubelet_networks.clone()
            },
            ports: if self.kubelet_ports.is_empty() {
                defaults.ports
            } else {
                self.kubelet_ports.clone()
            },
        }
    }

    /// Binds and starts the relay when nodes, KMS endpoints (plus `extra`) or kubelet networks
    /// are allowed; whether it started.
    fn start(
        &self,
        default_listen: Option<relay::RelayListen>,
        extra: &[relay::NodeAddr],
        kubelets: relay::KubeletAllow,
    ) -> Result<bool, String> {
        let mut allow = self.sui_nodes.clone();
        allow.extend(self.kms_endpoints.iter().cloned());
        allow.extend(self.replica_peers.iter().cloned());
        allow.extend(extra.iter().cloned());
        if allow.is_empty() && kubelets.networks.is_empty() {
            return Ok(false);
        }
        let Some(listen) = self.sui_relay_listen.clone().or(default_listen) else {
            return Err(
                "error: --sui-node, --kms-endpoint and --kubelet-network need --sui-relay-listen (unix:/path or vsock:PORT)"
                    .into(),
            );
        };
        let relay = relay::Relay::bind(&relay::RelayOptions {
            listen,
            allow,
            kubelets,
        })
        .map_err(|e| format!("error: {e}"))?;
        metrics::set_relay(relay.counters());
        tokio::spawn(relay.run(std::future::pending()));
        Ok(true)
    }
}

#[derive(Args, Debug)]
struct ServeCli {
    /// TCP address to listen on.
    #[arg(long, env = "NAUTILUS_PROXY_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Enclave address: `unix:/path/to/sock` or `vsock:CID:PORT`.
    #[arg(long, env = "NAUTILUS_PROXY_ENCLAVE")]
    enclave: EnclaveConnector,
    /// PEM certificate chain presented to clients (leaf first; ECDSA or RSA). Re-read on SIGHUP.
    #[arg(
        long,
        visible_alias = "cert",
        env = "NAUTILUS_PROXY_TLS_CERT",
        required_unless_present = "passthrough"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate. Re-read on SIGHUP.
    #[arg(
        long,
        visible_alias = "key",
        env = "NAUTILUS_PROXY_TLS_KEY",
        required_unless_present = "passthrough"
    )]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) for client-certificate authentication: a client certificate that
    /// chains to one becomes the user named by its subject CN (O values: groups), passed to the
    /// enclave in the stream preamble (start the enclave with --trust-proxy-client-cert).
    /// Clients without a certificate still connect (bearer tokens).
    #[arg(long, env = "NAUTILUS_PROXY_CLIENT_CA")]
    client_ca: Option<PathBuf>,
    /// Enclave TLS mode: splice the client's TCP bytes into the enclave untouched; the enclave
    /// (`--tls enclave`) terminates TLS and the proxy holds no key. While the enclave is down
    /// connections are closed at once (no plaintext `/readyz` answer is possible).
    #[arg(long, env = "NAUTILUS_PROXY_PASSTHROUGH", conflicts_with_all = ["tls_cert", "tls_key", "client_ca"])]
    passthrough: bool,
    /// Where the enclave's log stream arrives: `unix:PATH` or `vsock:PORT`; its lines are
    /// printed on this process's stderr marked as the enclave's (default: off).
    #[arg(long, env = "NAUTILUS_PROXY_ENCLAVE_LOGS", value_name = "ADDR")]
    enclave_logs: Option<log_sink::SinkListen>,
    /// Where the enclave's storage channel connects: `unix:PATH` or `vsock:PORT` (the enclave's
    /// `--storage vsock:3:PORT`); needs `--storage-dir`. Default: off (nothing persisted).
    #[arg(
        long,
        env = "NAUTILUS_PROXY_STORAGE_LISTEN",
        value_name = "ADDR",
        requires = "storage_dir"
    )]
    storage_listen: Option<storage::StorageListen>,
    /// Directory of the enclave's sealed log, snapshots and key blob (created with mode 0700).
    #[arg(
        long,
        env = "NAUTILUS_PROXY_STORAGE_DIR",
        value_name = "DIR",
        requires = "storage_listen"
    )]
    storage_dir: Option<PathBuf>,
    /// With enclave replicas (issue 17): where the other replicas' proxies reach this
    /// replica's enclave (`HOST:PORT`, e.g. `0.0.0.0:7443`); each connection is spliced into
    /// `--enclave-peer`. Needs `--enclave-peer`.
    #[arg(
        long,
        env = "NAUTILUS_PROXY_REPLICA_PEER_LISTEN",
        value_name = "HOST:PORT",
        requires = "enclave_peer"
    )]
    replica_peer_listen: Option<SocketAddr>,
    /// The enclave's replica peer listener (its `--replica-listen`): `vsock:CID:PORT` or
    /// `unix:/path`.
    #[arg(
        long,
        env = "NAUTILUS_PROXY_ENCLAVE_PEER",
        value_name = "ADDR",
        requires = "replica_peer_listen"
    )]
    enclave_peer: Option<EnclaveConnector>,
    #[command(flatten)]
    relay: RelayCli,
    #[command(flatten)]
    tuning: TuningCli,
    #[command(flatten)]
    log: LogCli,
}

#[cfg(feature = "dev")]
#[derive(Args, Debug)]
struct DevCli {
    /// TCP address to listen on.
    #[arg(long, env = "NAUTILUS_PROXY_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for the dev CA, kubeconfig and enclave socket (created with mode 0700).
    #[arg(
        long,
        env = "NAUTILUS_PROXY_DATA_DIR",
        default_value = "./.nautilus-dev"
    )]
    data_dir: PathBuf,
    /// Extra argument appended to the enclave child's command line (repeatable).
    #[arg(long = "enclave-arg", allow_hyphen_values = true)]
    enclave_args: Vec<OsString>,
    /// The Sui Move package whose staking events admit workers (passed to the enclave).
    #[arg(long, env = "NAUTILUS_PROXY_SUI_PACKAGE")]
    sui_package: Option<String>,
    /// Smallest stake in MIST that admits a worker (passed to the enclave).
    #[arg(long, env = "NAUTILUS_PROXY_MIN_STAKE")]
    min_stake: Option<u64>,
    /// Longest accepted Seal token lifetime in seconds (passed to the enclave).
    #[arg(long, env = "NAUTILUS_PROXY_TOKEN_MAX_LIFETIME", value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    token_max_lifetime: Option<u64>,
    /// The ServiceAccount token issuer (kube's `--service-account-issuer`; passed to the
    /// enclave, whose default is `https://kubernetes.default.svc.cluster.local`).
    #[arg(long, env = "NAUTILUS_PROXY_SERVICE_ACCOUNT_ISSUER")]
    service_account_issuer: Option<String>,
    /// Enclave TLS mode: the enclave makes its own key and terminates TLS (`--tls enclave`), the
    /// proxy only splices bytes; the kubeconfig pins the enclave's certificate, learned by one
    /// handshake at start (trust on first use; production uses `nautilus-verify kubeconfig`).
    #[arg(long)]
    enclave_tls: bool,
    /// Enclave replicas to run, each in `DATA_DIR/replica-<slot>/` with its own sealed log;
    /// clients are routed to the leader. More than one needs the durable store and proxy TLS.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_DEV_REPLICAS))]
    replicas: u16,
    /// Shut down when the process that started `dev` exits (test harnesses use this so no
    /// cluster outlives its test run).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
    /// Keep the cluster only in the enclave's memory: a restart loses it. By default the
    /// cluster is kept in a sealed durable log in `DATA_DIR/storage` (the host stores only
    /// ciphertext), with the cluster data key from a SIMULATED KMS in this process, and comes
    /// back after any restart of the enclave or of this process on the same data directory.
    #[arg(long, conflicts_with = "durable_log")]
    in_memory: bool,
    /// The default (kept for scripts written when the durable log was a preview).
    #[arg(long, hide = true)]
    durable_log: bool,
    /// TESTS ONLY: inject storage faults named in `DATA_DIR/storage-faults` (`fsync-eio`,
    /// `short-write`, `disk-full`, one per line) while that file exists.
    #[arg(long, hide = true, conflicts_with = "in_memory")]
    storage_faults: bool,
    /// TESTS ONLY, with `--replicas` > 1: take faults on the replicas' peer links (cut, delay,
    /// reset, isolate, heal) from the Unix socket `DATA_DIR/replica-faults.sock`.
    #[arg(long, hide = true)]
    replica_faults: bool,
    /// TESTS ONLY: a PCR the simulated KMS's key policy requires, `INDEX=HEX` (repeatable);
    /// the simulated NSM's PCRs are zero, so any other value makes KMS refuse the enclave.
    #[arg(long = "simulated-kms-pcr", hide = true, conflicts_with = "in_memory", value_parser = parse_pcr)]
    simulated_kms_pcrs: Vec<(u8, Vec<u8>)>,
    /// With `--kms-endpoint` (then used instead of the simulated KMS, e.g. a real KMS or moto):
    /// the PEM CA its certificate chains to (default: the WebPKI roots).
    #[arg(long, hide = true, requires = "kms_key_id")]
    kms_ca_file: Option<PathBuf>,
    /// With `--kms-endpoint`: the KMS key (id, ARN or alias).
    #[arg(long, hide = true)]
    kms_key_id: Option<String>,
    /// With `--kms-endpoint`: the key's region.
    #[arg(long, hide = true, default_value = "us-east-1")]
    kms_region: String,
    #[command(flatten)]
    relay: RelayCli,
    #[command(flatten)]
    tuning: TuningCli,
    #[command(flatten)]
    log: LogCli,
}

#[cfg(feature = "dev")]
fn parse_pcr(text: &str) -> Result<(u8, Vec<u8>), String> {
    let (index, value) = text.split_once('=').ok_or("expected INDEX=HEX")?;
    let index = index.parse().map_err(|_| "bad PCR index")?;
    let value = hex::decode(value).map_err(|_| "bad PCR hex")?;
    Ok((index, value))
}

fn main() -> ExitCode {
    let cli = match config::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Command::Serve(args) => {
            init_logging(&args.log);
            with_runtime(run_serve(args))
        }
        #[cfg(feature = "dev")]
        Command::Dev(args) => {
            init_logging(&args.log);
            with_runtime(run_dev(args))
        }
        #[cfg(feature = "dev")]
        Command::Enclave { args } => {
            // The enclave builds its own runtime, so it must not run inside ours.
            let argv = std::iter::once(OsString::from("nautilus-enclave")).chain(args);
            nautilus_enclave::cli_main(argv)
        }
    }
}

fn with_runtime<F: std::future::Future<Output = ExitCode>>(fut: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &LogCli) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&log.log_level).unwrap_or_else(|err| {
        eprintln!(
            "warning: bad --log-level {:?} ({err}); using info",
            log.log_level
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

async fn run_serve(args: ServeCli) -> ExitCode {
    let listener = match serve::bind(args.listen, "nautilus-proxy").await {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_CANNOT_LISTEN);
        }
    };
    if let Err(message) = metrics::start(args.tuning.metrics_listen).await {
        eprintln!("{message}");
        return ExitCode::from(EXIT_CANNOT_LISTEN);
    }
    if let Some(addr) = &args.enclave_logs
        && let Err(message) = log_sink::start(addr).await
    {
        eprintln!("{message}");
        return ExitCode::from(EXIT_CANNOT_LISTEN);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) if !args.passthrough => {
            let files = tls_reload::CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            let config = tls_reload::ReloadingCert::new(files).and_then(|cert| {
                let config = tls_reload::server_config(cert.clone(), args.client_ca.as_deref())?;
                tls_reload::reload_on_sighup(cert);
                Ok(config)
            });
            match config {
                Ok(config) => Some(config),
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => None,
    };
    if let (Some(listen), Some(enclave_peer)) = (args.replica_peer_listen, &args.enclave_peer) {
        match peer_splice::bind(listen).await {
            Ok(listener) => {
                tracing::info!(%listen, enclave = %enclave_peer, "replica peers: splicing into the enclave's peer listener");
                tokio::spawn(peer_splice::run(listener, enclave_peer.clone()));
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_CANNOT_LISTEN);
            }
        }
    }
    if let Err(message) = args.relay.start(None, &[], args.relay.kubelets(None)) {
        eprintln!("{message}");
        return ExitCode::from(EXIT_CANNOT_LISTEN);
    }
    if let (Some(listen), Some(dir)) = (args.storage_listen.clone(), args.storage_dir.as_deref()) {
        let credentials = std::sync::Arc::new(storage::credentials_from_env);
        if let Err(message) =
            start_storage(listen, dir, storage::faults::Faults::none(), credentials).await
        {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_CANNOT_LISTEN);
        }
    }
    let options = args.tuning.options(args.enclave);
    serve::serve(listener, tls, options, serve::shutdown_signal()).await;
    ExitCode::SUCCESS
}

#[cfg(feature = "dev")]
async fn run_dev(args: DevCli) -> ExitCode {
    let replicas = usize::from(args.replicas);
    if let Err(message) = dev::check_replicas(replicas, !args.in_memory) {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let listener = match serve::bind(args.listen, "nautilus-proxy dev").await {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_CANNOT_LISTEN);
        }
    };
    if let Err(message) = metrics::start(args.tuning.metrics_listen).await {
        eprintln!("{message}");
        return ExitCode::from(EXIT_CANNOT_LISTEN);
    }
    let mut enclave_args = args.enclave_args;
    // One --log-level for both processes, unless the enclave is given its own.
    if !enclave_args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--log-level"))
    {
        enclave_args.push(OsString::from(format!(
            "--log-level={}",
            args.log.log_level
        )));
    }
    for (flag, value) in [
        ("--sui-package", args.sui_package.clone()),
        ("--min-stake", args.min_stake.map(|v| v.to_string())),
        (
            "--token-max-lifetime",
            args.token_max_lifetime.map(|v| v.to_string()),
        ),
        (
            "--service-account-issuer",
            args.service_account_issuer.clone(),
        ),
    ] {
        if let Some(value) = value {
            enclave_args.push(OsString::from(format!("{flag}={value}")));
        }
    }
    // The data directory holds the relay socket and, unless `--in-memory`, the store and the
    // simulated KMS's key (dev::run creates it too; doing it here first changes nothing).
    let data_dir = match dev::create_data_dir(&args.data_dir) {
        Ok(dir) => dir,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Unless `--in-memory`, the cluster data key comes from the SIMULATED KMS, reached through
    // the relay as in production.
    // A `--kms-endpoint` given to dev is used instead (a real KMS, or a test's moto).
    let kms = match (args.in_memory, args.relay.kms_endpoints.first()) {
        (true, _) => None,
        (false, Some(endpoint)) => {
            let Some(key_id) = args.kms_key_id.clone() else {
                eprintln!("error: dev --kms-endpoint needs --kms-key-id");
                return ExitCode::FAILURE;
            };
            Some(DevKms {
                endpoint: endpoint.clone(),
                ca: args.kms_ca_file.clone(),
                key_id,
                region: args.kms_region.clone(),
            })
        }
        (false, None) => {
            match start_simulated_kms(&data_dir, args.simulated_kms_pcrs.clone()).await {
                Ok((endpoint, ca)) => Some(DevKms {
                    endpoint,
                    ca: Some(ca),
                    key_id: simulated_kms::KEY_ID.to_string(),
                    region: simulated_kms::REGION.to_string(),
                }),
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    // The enclave's way out (Sui full nodes, KMS): one relay socket in the data directory,
    // started only when something is allowed through it.
    let socket = data_dir.join("sui-relay.sock");
    let mut kms_endpoints: Vec<relay::NodeAddr> = kms.iter().map(|k| k.endpoint.clone()).collect();
    if args.replica_faults && replicas < 2 {
        eprintln!("error: --replica-faults needs --replicas > 1");
        return ExitCode::FAILURE;
    }
    // Replicas reach each other as in production: through the relay to a TCP peer listener
    // that splices into the replica's peer socket (one per replica here, on loopback).
    let mut peer_addrs = Vec::new();
    let mut peer_nodes = Vec::new();
    if replicas > 1 {
        for paths in dev::ReplicaPaths::all(&data_dir, replicas) {
            let listener = match peer_splice::bind("127.0.0.1:0".parse().expect("an address")).await
            {
                Ok(listener) => listener,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(EXIT_CANNOT_LISTEN);
                }
            };
            let Ok(local) = listener.local_addr() else {
                eprintln!("error: cannot read a peer listener's address");
                return ExitCode::from(EXIT_CANNOT_LISTEN);
            };
            let Some(peer_socket) = paths.peer_socket.clone() else {
                continue;
            };
            tokio::spawn(peer_splice::run(
                listener,
                enclave_stream::EnclaveConnector::Unix(peer_socket),
            ));
            peer_nodes.push(relay::NodeAddr {
                host: local.ip().to_string(),
                port: local.port(),
            });
            peer_addrs.push(format!("relay:{local}"));
        }
    }
    kms_endpoints.extend(peer_nodes.iter().cloned());
    // With `--replica-faults`, each replica dials its peers through its own relay in front of
    // that one, which knows the dialer and so each directed link, and puts the link's faults
    // on it. (The peer list is in the configuration every replica attests, so it is the
    // same for all; the relay a replica dials through is not.)
    if args.replica_faults {
        if replicas < 2 {
            eprintln!("error: --replica-faults needs --replicas > 1");
            return ExitCode::FAILURE;
        }
        let faults = peer_faults::LinkFaults::new(replicas);
        let peers: Vec<String> = peer_nodes.iter().map(ToString::to_string).collect();
        for paths in dev::ReplicaPaths::all(&data_dir, replicas) {
            let Some(front) = &paths.peer_relay else {
                continue;
            };
            let started = paths.prepare().and_then(|()| {
                peer_faults::start_front(front, paths.slot, peers.clone(), socket.clone(), &faults)
            });
            if let Err(message) = started {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_CANNOT_LISTEN);
            }
        }
        if let Err(message) =
            peer_faults::serve_control(&data_dir.join("replica-faults.sock"), faults)
        {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_CANNOT_LISTEN);
        }
    }
    // dev's kubelets run on this machine: loopback, on the kubelet port unless told others
    // (nothing else on the machine is reachable).
    let dev_kubelets = relay::KubeletAllow {
        networks: relay::KubeletNetwork::loopback().to_vec(),
        ports: vec![relay::PortRange::KUBELET],
    };
    let relay_started = match args.relay.start(
        Some(relay::RelayListen::Unix(socket.clone())),
        &kms_endpoints,
        args.relay.kubelets(Some(dev_kubelets)),
    ) {
        Ok(started) => started,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_CANNOT_LISTEN);
        }
    };
    let mut relay_arg = OsString::from("unix:");
    relay_arg.push(&socket);
    if relay_started
        && !enclave_args
            .iter()
            .any(|a| a.to_string_lossy().starts_with("--kubelet-relay"))
    {
        // The enclave reaches pods' kubelets through the same relay.
        let mut kubelet_relay = OsString::from("--kubelet-relay=");
        kubelet_relay.push(&relay_arg);
        enclave_args.insert(0, kubelet_relay);
    }
    if !args.relay.sui_nodes.is_empty() {
        // The enclave reads Sui through the relay; it is told the same node list.
        let mut listen = OsString::from("--sui-relay=");
        listen.push(&relay_arg);
        enclave_args.push(listen);
        for node in &args.relay.sui_nodes {
            enclave_args.push(OsString::from(format!("--sui-node={node}")));
        }
    }
    let durable = kms.is_some();
    if let Some(kms) = kms {
        // Each enclave's sealed log and snapshots live in its own storage directory (one
        // enclave: DATA_DIR/storage); dev::run gives each its `--storage`.
        if args.storage_faults {
            let place = if replicas > 1 {
                "each replica's directory"
            } else {
                "the data directory"
            };
            tracing::warn!("TESTS ONLY: storage faults are read from storage-faults in {place}");
        }
        for paths in dev::ReplicaPaths::all(&data_dir, replicas) {
            if let Err(message) = paths.prepare() {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
            let faults = if args.storage_faults {
                storage::faults::Faults::from_control_file(paths.storage_faults.clone())
            } else {
                storage::faults::Faults::none()
            };
            let credentials: std::sync::Arc<dyn Fn() -> Result<String, String> + Send + Sync> =
                std::sync::Arc::new(|| Ok(simulated_kms::credentials_json()));
            if let Err(message) = start_storage(
                storage::StorageListen::Unix(paths.storage_socket.clone()),
                &paths.storage_dir,
                faults,
                credentials,
            )
            .await
            {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_CANNOT_LISTEN);
            }
        }
        let mut kms_relay = OsString::from("--kms-relay=");
        kms_relay.push(&relay_arg);
        let mut durable_args = vec![
            OsString::from(format!("--kms-key-id={}", kms.key_id)),
            OsString::from(format!("--kms-region={}", kms.region)),
            OsString::from(format!("--kms-endpoint={}", kms.endpoint)),
            kms_relay,
            OsString::from("--cluster-id=dev"),
        ];
        if let Some(ca) = &kms.ca {
            let mut kms_ca_arg = OsString::from("--kms-ca-file=");
            kms_ca_arg.push(ca);
            durable_args.push(kms_ca_arg);
        }
        // First, so that `--enclave-arg` given by the caller can override them.
        for (i, arg) in durable_args.into_iter().enumerate() {
            enclave_args.insert(i, arg);
        }
    }
    let settings = dev::DevSettings {
        data_dir: args.data_dir,
        enclave_args,
        log_format: args.log.log_format.as_str(),
        exit_with_parent: args.exit_with_parent,
        enclave_tls: args.enclave_tls,
        replicas,
        durable,
        peer_addrs,
        fault_relays: args.replica_faults,
    };
    match dev::run(listener, settings, |enclave| args.tuning.options(enclave)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The KMS dev's enclave gets its cluster data key from.
#[cfg(feature = "dev")]
struct DevKms {
    endpoint: relay::NodeAddr,
    /// The CA its certificate chains to (none: the WebPKI roots).
    ca: Option<PathBuf>,
    key_id: String,
    region: String,
}

/// Starts dev's SIMULATED KMS and writes its CA for the enclave: `(endpoint, CA file)`.
#[cfg(feature = "dev")]
async fn start_simulated_kms(
    data_dir: &std::path::Path,
    pcrs: Vec<(u8, Vec<u8>)>,
) -> Result<(relay::NodeAddr, PathBuf), String> {
    let kms = simulated_kms::start(data_dir, pcrs).await?;
    let kms_ca = data_dir.join("simulated-kms-ca.crt");
    std::fs::write(&kms_ca, &kms.ca_pem)
        .map_err(|e| format!("cannot write {}: {e}", kms_ca.display()))?;
    let endpoint = relay::NodeAddr {
        host: kms.addr.ip().to_string(),
        port: kms.addr.port(),
    };
    Ok((endpoint, kms_ca))
}

/// Opens the store under `dir` (mode 0700) and serves the enclave's storage channel on
/// `listen`.
async fn start_storage(
    listen: storage::StorageListen,
    dir: &std::path::Path,
    faults: storage::faults::Faults,
    credentials: std::sync::Arc<dyn Fn() -> Result<String, String> + Send + Sync>,
) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("cannot create the storage directory {}: {e}", dir.display()))?;
    let mut store = storage::Store::open(dir, faults)
        .map_err(|e| format!("cannot open the storage directory {}: {e}", dir.display()))?;
    store.set_credentials(credentials);
    storage::run(listen, store).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    // Without the `dev` feature `serve` is the only subcommand.
    #[allow(irrefutable_let_patterns)]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "nautilus-proxy",
            "serve",
            "--enclave",
            "vsock:16:5000",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--idle-timeout-secs",
            "30",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(!args.passthrough);
        assert_eq!(args.listen, "127.0.0.1:6443".parse().unwrap());
        assert_eq!(
            args.enclave,
            EnclaveConnector::Vsock {
                cid: 16,
                port: 5000
            }
        );
        let options = args.tuning.options(args.enclave.clone());
        assert_eq!(options.max_connections, 4096);
        assert_eq!(options.handshake_timeout, Duration::from_secs(10));
        assert_eq!(options.idle_timeout, Duration::from_secs(30));
        assert_eq!(args.log.log_format, LogFormat::Json);
    }

    #[test]
    fn passthrough_needs_no_key_and_refuses_one() {
        let base = ["nautilus-proxy", "serve", "--enclave", "unix:/e.sock"];
        let parse = |extra: &[&str]| {
            Cli::try_parse_from(base.iter().chain(extra).copied()).map(|cli| match cli.command {
                Command::Serve(args) => (args.passthrough, args.tls_cert, args.client_ca),
                #[allow(unreachable_patterns)]
                _ => panic!("not serve"),
            })
        };
        assert_eq!(parse(&["--passthrough"]).unwrap(), (true, None, None));
        assert!(parse(&[]).is_err(), "proxy TLS needs a certificate");
        assert!(parse(&["--passthrough", "--cert", "c.pem"]).is_err());
        assert!(parse(&["--passthrough", "--client-ca", "ca.pem"]).is_err());
        let (passthrough, cert, ca) =
            parse(&["--cert", "c.pem", "--key", "k.pem", "--client-ca", "ca.pem"]).unwrap();
        assert!(!passthrough);
        assert_eq!(cert, Some(PathBuf::from("c.pem")));
        assert_eq!(ca, Some(PathBuf::from("ca.pem")));
    }

    #[cfg(feature = "dev")]
    #[test]
    fn hidden_enclave_subcommand_passes_everything_through() {
        let cli = Cli::try_parse_from([
            "nautilus-proxy",
            "__enclave",
            "--listen",
            "unix:/d/enclave.sock",
            "--simulated-nsm",
            "--help",
            "extra",
        ])
        .unwrap();
        let Command::Enclave { args } = cli.command else {
            panic!("not __enclave")
        };
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--listen",
                "unix:/d/enclave.sock",
                "--simulated-nsm",
                "--help",
                "extra"
            ]
        );
    }

    #[cfg(feature = "dev")]
    #[test]
    fn dev_enclave_args_accept_flags() {
        let cli = Cli::try_parse_from([
            "nautilus-proxy",
            "dev",
            "--enclave-arg",
            "--max-objects",
            "--enclave-arg",
            "1000",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        let Command::Dev(args) = cli.command else {
            panic!("not dev")
        };
        assert_eq!(args.enclave_args, ["--max-objects", "1000"]);
        assert_eq!(args.data_dir, PathBuf::from("/tmp/x"));
        assert!(
            !Cli::command()
                .render_help()
                .to_string()
                .contains("__enclave")
        );
    }
}
