//! Command-line options of `nautilus-enclave`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Where the enclave listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A Unix socket path (development).
    Unix(PathBuf),
    /// A vsock port on any CID (production, inside the Nitro enclave).
    Vsock(u32),
}

fn parse_listen(text: &str) -> Result<ListenAddr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a socket path, e.g. unix:/run/nautilus/enclave.sock".into());
        }
        return Ok(ListenAddr::Unix(PathBuf::from(path)));
    }
    if let Some(port) = text.strip_prefix("vsock:") {
        return port
            .parse()
            .map(ListenAddr::Vsock)
            .map_err(|_| format!("vsock: needs a port number, got {port:?}"));
    }
    Err(format!("expected unix:PATH or vsock:PORT, got {text:?}"))
}

fn parse_sha256_hex(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|_| "expected 64 hex digits".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "expected 64 hex digits (a SHA-256 digest)".to_string())
}

fn parse_object_id(text: &str) -> Result<[u8; 32], String> {
    let hex_digits = text
        .strip_prefix("0x")
        .ok_or("expected 0x followed by 64 hex digits")?;
    parse_sha256_hex(hex_digits).map_err(|_| "expected 0x followed by 64 hex digits".to_string())
}

/// Trust levels of stake facts (ARCHITECTURE.md §4), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrustArg {
    /// Pushed by the host's relay (`POST /api/v1/sui-events`).
    RelayPushed,
    /// Read by the enclave from a Sui full node over TLS.
    NodeRead,
    /// Verified by the Sui light client against the validator committee.
    LightClient,
}

impl TrustArg {
    /// The core's level.
    pub fn level(self) -> nautilus_core::stake::TrustLevel {
        use nautilus_core::stake::TrustLevel;
        match self {
            TrustArg::RelayPushed => TrustLevel::RelayPushed,
            TrustArg::NodeRead => TrustLevel::NodeRead,
            TrustArg::LightClient => TrustLevel::LightClient,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The trusted enclave runtime of the Nautilus control plane.
#[derive(Debug, Parser)]
#[command(name = "nautilus-enclave", version, about)]
pub struct Cli {
    /// Where to accept streams from the host proxy: `unix:PATH` (development) or `vsock:PORT`.
    #[arg(long, env = "NAUTILUS_LISTEN", value_parser = parse_listen)]
    pub listen: ListenAddr,

    /// SHA-256 (hex) of the admin bearer token; the token itself never enters the enclave's
    /// configuration.
    #[arg(long, env = "NAUTILUS_ADMIN_TOKEN_SHA256", value_parser = parse_sha256_hex)]
    pub admin_token_sha256: Option<[u8; 32]>,

    /// Use the SIMULATED NSM (development only): nothing it attests is trustworthy.
    #[arg(long, env = "NAUTILUS_SIMULATED_NSM")]
    pub simulated_nsm: bool,

    /// Most objects the store holds.
    #[arg(long, env = "NAUTILUS_MAX_OBJECTS", default_value_t = 250_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_objects: u64,

    /// Most bytes of stored objects.
    #[arg(long, env = "NAUTILUS_MAX_STORE_BYTES", default_value_t = 1 << 30, value_parser = clap::value_parser!(u64).range(4096..=(1u64 << 40)))]
    pub max_store_bytes: u64,

    /// Largest request body in bytes (kube-apiserver's default is 3 MiB).
    #[arg(long, env = "NAUTILUS_MAX_BODY_BYTES", default_value_t = 3 << 20, value_parser = clap::value_parser!(u64).range(1024..=(64u64 << 20)))]
    pub max_body_bytes: u64,

    /// Events kept in the watch ring; watches from older revisions get 410 Expired.
    #[arg(long, env = "NAUTILUS_WATCH_RING", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub watch_ring: u64,

    /// Most concurrent watch streams.
    #[arg(long, env = "NAUTILUS_MAX_WATCHES", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_watches: u64,

    /// Seconds between BOOKMARK events on watches that ask for them.
    #[arg(long, env = "NAUTILUS_BOOKMARK_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub bookmark_secs: u64,

    /// The Sui Move package (0x + 64 hex) whose staking events build the stake registry.
    #[arg(long, env = "NAUTILUS_SUI_PACKAGE", value_parser = parse_object_id)]
    pub sui_package: Option<[u8; 32]>,

    /// Smallest stake in MIST that admits a worker (1 SUI = 1000000000).
    #[arg(long, env = "NAUTILUS_MIN_STAKE", default_value_t = 1_000_000_000)]
    pub min_stake: u64,

    /// Longest accepted Seal token lifetime, in seconds.
    #[arg(long, env = "NAUTILUS_TOKEN_MAX_LIFETIME", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub token_max_lifetime: u64,

    /// SHA-256 (hex) of the Sui event relay's bearer token.
    #[arg(long, env = "NAUTILUS_RELAY_TOKEN_SHA256", value_parser = parse_sha256_hex)]
    pub relay_token_sha256: Option<[u8; 32]>,

    /// Seconds without a heartbeat before a node turns Ready=Unknown.
    #[arg(long, env = "NAUTILUS_NODE_GRACE_SECS", default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub node_grace_secs: u64,

    /// The proxy's Sui relay as the enclave reaches it: `unix:PATH` (development) or
    /// `vsock:CID:PORT` (production; the host is CID 3).
    #[arg(long, env = "NAUTILUS_SUI_RELAY")]
    pub sui_relay: Option<String>,

    /// Sui full nodes (gRPC, `HOST:PORT`) read through the relay, tried in this order.
    #[arg(
        long = "sui-node",
        env = "NAUTILUS_SUI_NODES",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub sui_nodes: Vec<String>,

    /// PEM file of the CA that signs the full nodes' certificates (default: the WebPKI roots).
    #[arg(long, env = "NAUTILUS_SUI_CA_FILE")]
    pub sui_ca_file: Option<PathBuf>,

    /// Checkpoint to start reading from when the registry has applied none.
    #[arg(long, env = "NAUTILUS_SUI_START_CHECKPOINT", default_value_t = 0)]
    pub sui_start_checkpoint: u64,

    /// Lowest trust level whose stakes admit workers: relay-pushed, node-read or light-client.
    #[arg(long, env = "NAUTILUS_MIN_TRUST_LEVEL", value_enum, default_value_t = TrustArg::RelayPushed)]
    pub min_trust_level: TrustArg,

    /// Seconds without Sui progress before `/readyz` reports the registry degraded.
    #[arg(long, env = "NAUTILUS_SUI_STALE_AFTER", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub sui_stale_after: u64,

    /// Seconds without Sui progress after which new worker registrations are refused.
    #[arg(long, env = "NAUTILUS_SUI_MAX_STALE", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub sui_max_stale: u64,

    /// A TOML file with any of these options (`max_objects = 5000`); flags and environment
    /// variables win over it.
    #[arg(long, env = "NAUTILUS_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Log format.
    #[arg(long, env = "NAUTILUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level filter (e.g. `info`, `debug`, `nautilus_enclave=debug`); `RUST_LOG` also works.
    #[arg(long, env = "NAUTILUS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl Cli {
    /// The effective options as TOML (the enclave holds no secret here: tokens appear only as
    /// their hashes).
    pub(crate) fn effective_toml(&self) -> String {
        let hex_opt = |v: &Option<[u8; 32]>| {
            v.map_or_else(|| "\"\"".to_string(), |d| format!("\"{}\"", hex::encode(d)))
        };
        let listen = match &self.listen {
            ListenAddr::Unix(path) => format!("unix:{}", path.display()),
            ListenAddr::Vsock(port) => format!("vsock:{port}"),
        };
        let package = self
            .sui_package
            .map_or_else(String::new, |p| format!("0x{}", hex::encode(p)));
        format!(
            "listen = \"{listen}\"\nadmin_token_sha256 = {}\nsimulated_nsm = {}\nmax_objects = {}\nmax_store_bytes = {}\n\
             max_body_bytes = {}\nwatch_ring = {}\nmax_watches = {}\nbookmark_secs = {}\nsui_package = \"{package}\"\n\
             min_stake = {}\ntoken_max_lifetime = {}\nrelay_token_sha256 = {}\nnode_grace_secs = {}\nlog_level = \"{}\"\n\
             sui_relay = \"{}\"\nsui_node = \"{}\"\nsui_ca_file = \"{}\"\nsui_start_checkpoint = {}\nmin_trust_level = \"{}\"\n\
             sui_stale_after = {}\nsui_max_stale = {}\n",
            hex_opt(&self.admin_token_sha256),
            self.simulated_nsm,
            self.max_objects,
            self.max_store_bytes,
            self.max_body_bytes,
            self.watch_ring,
            self.max_watches,
            self.bookmark_secs,
            self.min_stake,
            self.token_max_lifetime,
            hex_opt(&self.relay_token_sha256),
            self.node_grace_secs,
            self.log_level,
            self.sui_relay.as_deref().unwrap_or(""),
            self.sui_nodes.join(","),
            self.sui_ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            self.sui_start_checkpoint,
            self.min_trust_level.level().as_str(),
            self.sui_stale_after,
            self.sui_max_stale,
        )
    }
}

/// Installs the global tracing subscriber (stderr).
pub(crate) fn init_logging(cli: &Cli) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(&cli.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match cli.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
