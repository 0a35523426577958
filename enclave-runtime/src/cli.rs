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

/// A Go duration of hours, minutes and seconds (`1h`, `1h30m`, `90s`, `1h0m0s`) or whole
/// seconds, as a number of seconds (at least 1).
fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let bad =
        || format!("expected a duration such as 1h, 30m or 90s (or whole seconds), got {text:?}");
    let secs = if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        text.parse::<u64>().map_err(|_| bad())?
    } else {
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let n: u64 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if !digits.is_empty() || text.is_empty() {
            return Err(bad());
        }
        total
    };
    if secs == 0 {
        return Err("the duration must be at least 1 s".into());
    }
    Ok(secs)
}

/// A duration as [`parse_duration_secs`] reads it, or `0` (off).
fn parse_interval_secs(text: &str) -> Result<u64, String> {
    if text == "0" {
        return Ok(0);
    }
    parse_duration_secs(text)
}

/// A cluster id: 1 to 63 bytes of `[a-z0-9-]` (it names the cluster in the KMS encryption
/// context and in every sealed record).
fn parse_cluster_id(text: &str) -> Result<String, String> {
    if (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(text.to_string())
    } else {
        Err("expected 1 to 63 characters of a-z, 0-9 and -".into())
    }
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

    /// Bytes of object versions the watch ring may hold (each event counts its object and its
    /// previous version); past it the oldest events go, as past --watch-ring.
    #[arg(long, env = "NAUTILUS_WATCH_RING_BYTES", default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range((1 << 20)..=(1 << 36)))]
    pub watch_ring_bytes: u64,

    /// Exemplars kept per resource for packing stored objects: each object is kept
    /// LZ4-compressed against an earlier object of its resource (a 2.3 KB pod in ~100 B).
    /// 0 keeps every object whole (more memory, a little less CPU per write).
    #[arg(long, env = "NAUTILUS_EXEMPLARS_PER_RESOURCE", default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub exemplars_per_resource: u64,

    /// Most concurrent watch streams.
    #[arg(long, env = "NAUTILUS_MAX_WATCHES", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_watches: u64,

    /// Bytes held in flight for clients, all together: request bodies being read, responses
    /// being written, watch chunks not yet sent. A request that does not fit gets 429 with
    /// `Retry-After`.
    #[arg(long, env = "NAUTILUS_INFLIGHT_BYTES", default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range((1u64 << 20)..=(1u64 << 40)))]
    pub inflight_bytes: u64,

    /// A watch stream's share of bytes on their way to its client: it sends chunks of a quarter
    /// of this, and hyper stops polling it once its connection buffer is full; a stream with
    /// something to send that stays unpolled for 5 s is closed as unresponsive (its client
    /// re-lists). 3,000 non-reading watchers hold ~130 MB (`bench --only hostile-watchers`).
    #[arg(long, env = "NAUTILUS_WATCH_BUFFER_BYTES", default_value_t = 16 << 10, value_parser = clap::value_parser!(u64).range(4096..=(64u64 << 20)))]
    pub watch_buffer_bytes: u64,

    /// With `--storage`: journal entries between two snapshots of the cluster; a snapshot lets
    /// the host drop the log before it, bounding its disk and the replay at restart (0: none).
    #[arg(long, env = "NAUTILUS_SNAPSHOT_EVERY", default_value_t = 50_000)]
    pub snapshot_every: u64,

    /// With `--storage`: most MiB per second a snapshot is written at (0: as fast as it goes).
    /// A snapshot is background work: paced, it takes longer and leaves the CPU and the disk
    /// to requests and the log's fsyncs.
    #[arg(long, env = "NAUTILUS_SNAPSHOT_RATE", default_value_t = 16)]
    pub snapshot_rate: u64,

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

    /// How long an Event lives after its last write, as kube-apiserver's `--event-ttl`: a Go
    /// duration (`1h`, `90s`, `1h30m`) or whole seconds.
    #[arg(long, env = "NAUTILUS_EVENT_TTL", default_value = "1h", value_parser = parse_duration_secs)]
    pub event_ttl: u64,

    /// How often LIST snapshots are compacted, as kube-apiserver's `--etcd-compaction-interval`:
    /// a `continue` token expires one to two intervals after its first page (410 with a token
    /// that continues at the latest revision), and each compaction moves the revision by one.
    /// A Go duration or whole seconds; `0` never compacts.
    #[arg(long, env = "NAUTILUS_COMPACTION_INTERVAL", default_value = "5m", value_parser = parse_interval_secs)]
    pub compaction_interval: u64,

    /// Most Events the store holds; creating more is refused with 507 until some expire.
    #[arg(long, env = "NAUTILUS_MAX_EVENTS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_events: u64,

    /// Event writes per second each node identity may make (kube's EventRateLimit, type User).
    #[arg(long, env = "NAUTILUS_EVENT_QPS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_qps: u32,

    /// Event writes a node identity may make at once before `--event-qps` applies.
    #[arg(long, env = "NAUTILUS_EVENT_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_burst: u32,

    /// Percent of the store's object and byte budgets one node identity's Events may hold.
    #[arg(long, env = "NAUTILUS_NODE_EVENT_SHARE_PERCENT", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub node_event_share_percent: u8,

    /// Percent of the store's object and byte budgets all node identities' Events may hold.
    #[arg(long, env = "NAUTILUS_NODE_EVENTS_TOTAL_PERCENT", default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub node_events_total_percent: u8,

    /// The IPv4 range Service cluster IPs come from (k3s' `--service-cidr`); its first address is
    /// the `kubernetes` Service's.
    #[arg(long, env = "NAUTILUS_SERVICE_CIDR", default_value = "10.43.0.0/16", value_parser = nautilus_core::net::ServiceCidr::parse)]
    pub service_cidr: nautilus_core::net::ServiceCidr,

    /// Where pods reach the API server, `IPv4:PORT` (kube-apiserver's `--advertise-address` and
    /// secure port): the `kubernetes` Service's Endpoints and EndpointSlice list it. Unset, they
    /// are not written.
    #[arg(long, env = "NAUTILUS_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<std::net::SocketAddrV4>,

    /// The ServiceAccount token issuer (kube-apiserver's `--service-account-issuer`): the `iss`
    /// of the tokens TokenRequest issues, the only one accepted, the API audience, and, when it
    /// is an https URL, what OIDC discovery announces.
    #[arg(long, env = "NAUTILUS_SERVICE_ACCOUNT_ISSUER", default_value = nautilus_core::serviceaccount::DEFAULT_ISSUER, value_parser = parse_issuer)]
    pub service_account_issuer: String,

    /// The range Service node ports come from (`--service-node-port-range`).
    #[arg(long, env = "NAUTILUS_SERVICE_NODE_PORT_RANGE", default_value = "30000-32767", value_parser = nautilus_core::net::PortRange::parse)]
    pub service_node_port_range: nautilus_core::net::PortRange,

    /// Where TLS ends: `proxy` (the host proxy terminates it and sends plaintext) or `enclave`
    /// (the enclave makes its own key, certified by the cluster CA, and terminates TLS 1.3
    /// itself; run the proxy with `serve --passthrough`).
    #[arg(long, env = "NAUTILUS_TLS", value_enum, default_value_t = crate::tls::TlsMode::Proxy)]
    pub tls: crate::tls::TlsMode,

    /// Extra subject alternative name (DNS name or IP address) of the enclave TLS certificate,
    /// besides `localhost` and `127.0.0.1` (repeatable, or comma-separated).
    #[arg(long, env = "NAUTILUS_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// Accept the client-certificate identity the proxy sends in each stream's preamble (proxy
    /// TLS mode with `--client-ca`). The proxy sees all plaintext in that mode anyway; in
    /// enclave TLS mode the preamble is ignored.
    #[arg(long, env = "NAUTILUS_TRUST_PROXY_CLIENT_CERT")]
    pub trust_proxy_client_cert: bool,

    /// The proxy's Sui relay as the enclave reaches it: `unix:PATH` (development) or
    /// `vsock:CID:PORT` (production; the host is CID 3).
    #[arg(long, env = "NAUTILUS_SUI_RELAY")]
    pub sui_relay: Option<String>,

    /// The proxy's byte relay for reaching kubelets (`kubectl logs`, `exec`, `attach`,
    /// `port-forward`): `unix:PATH` or `vsock:CID:PORT` (default: `--sui-relay`). Only a
    /// registered Node's address is ever asked for; the proxy allows only its kubelet networks.
    #[arg(long, env = "NAUTILUS_KUBELET_RELAY")]
    pub kubelet_relay: Option<String>,

    /// Most kubelet streams open at once (logs, exec, attach, port-forward); one more gets 429.
    #[arg(long, env = "NAUTILUS_KUBELET_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub kubelet_streams: u64,

    /// Bytes a kubelet stream holds on its way to the client, each direction: the kubelet is
    /// read only as fast as the client takes it.
    #[arg(long, env = "NAUTILUS_KUBELET_STREAM_BUFFER_BYTES", default_value_t = 64 << 10, value_parser = clap::value_parser!(u64).range(8192..=(16u64 << 20)))]
    pub kubelet_stream_buffer_bytes: u64,

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

    /// PEM of the CA that signs the certificate clients verify at the API port when the proxy
    /// terminates TLS; published in every namespace's `kube-root-ca.crt` ConfigMap so pods can
    /// verify the API server. In enclave TLS mode the cluster CA, which issues the enclave's
    /// certificate, is published.
    #[arg(long, env = "NAUTILUS_CLUSTER_CA_FILE")]
    pub cluster_ca_file: Option<PathBuf>,

    /// Checkpoint to start reading from when the registry has applied none.
    #[arg(long, env = "NAUTILUS_SUI_START_CHECKPOINT", default_value_t = 0)]
    pub sui_start_checkpoint: u64,

    /// The Sui light client's trust anchor: base64 of the BCS of an epoch's validator
    /// committee (`ValidatorCommittee`). With it, the enclave reads the staking package's
    /// authenticated event stream (level 2, `light-client`) instead of plain checkpoints.
    #[arg(long, env = "NAUTILUS_SUI_TRUST_ANCHOR", value_parser = crate::sui::parse_trust_anchor)]
    pub(crate) sui_trust_anchor: Option<crate::sui::TrustAnchor>,

    /// Lowest trust level whose stakes admit workers: relay-pushed, node-read or light-client.
    /// Default: relay-pushed with the simulated NSM (development), light-client otherwise.
    #[arg(long, env = "NAUTILUS_MIN_TRUST_LEVEL", value_enum)]
    pub min_trust_level: Option<TrustArg>,

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

    /// Send log lines to the host proxy instead of stderr: `unix:PATH` or `vsock:CID:PORT`
    /// (production has no console; `nautilus-proxy serve --enclave-logs` receives them).
    #[arg(long, env = "NAUTILUS_LOG_SINK", value_parser = crate::log_sink::parse_addr)]
    pub log_sink: Option<crate::log_sink::SinkAddr>,

    /// The proxy's storage channel (`unix:PATH` or `vsock:CID:PORT`, the host is CID 3): the
    /// sealed log and snapshots live there. Needs `--kms-key-id`. Default: nothing persisted.
    #[arg(long, env = "NAUTILUS_STORAGE", value_parser = crate::log_sink::parse_addr, requires = "kms_key_id")]
    pub storage: Option<crate::log_sink::SinkAddr>,

    /// This cluster's name: bound into every sealed record and into the KMS encryption context,
    /// so one cluster's data never opens as another's. Give each cluster its own.
    #[arg(long, env = "NAUTILUS_CLUSTER_ID", default_value = "nautilus", value_parser = parse_cluster_id)]
    pub cluster_id: String,

    /// When the host's sealed log does not verify, cut it after the last valid record (and drop
    /// a bad snapshot) instead of refusing to start (exit code 3); what is dropped is logged.
    #[arg(long, env = "NAUTILUS_RECOVER_TO_LAST_VALID")]
    pub recover_to_last_valid: bool,

    /// The KMS key (id, ARN or alias) that wraps the cluster data key; its key policy should
    /// require this enclave's measurements (`kms:RecipientAttestation:PCR0` ...).
    #[arg(long, env = "NAUTILUS_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,

    /// AWS region of the KMS key.
    #[arg(long, env = "NAUTILUS_KMS_REGION", default_value = "us-east-1")]
    pub kms_region: String,

    /// KMS endpoint `HOST:PORT` (default `kms.<region>.amazonaws.com:443`), reached through
    /// the proxy's relay, which must allow it.
    #[arg(long, env = "NAUTILUS_KMS_ENDPOINT")]
    pub kms_endpoint: Option<String>,

    /// The proxy's byte relay for KMS: `unix:PATH` or `vsock:CID:PORT` (default: `--sui-relay`).
    #[arg(long, env = "NAUTILUS_KMS_RELAY")]
    pub kms_relay: Option<String>,

    /// PEM file of the CA that signs the KMS endpoint's certificate (default: the WebPKI roots).
    #[arg(long, env = "NAUTILUS_KMS_CA_FILE")]
    pub kms_ca_file: Option<PathBuf>,

    /// TESTS ONLY: accept a KMS answer with `Plaintext` instead of `CiphertextForRecipient`
    /// (moto ignores `Recipient`).
    #[arg(long, hide = true)]
    pub kms_accept_plaintext: bool,

    /// This replica's slot (its index in `--replica-peer`); without it the replica finds its
    /// own address among the peers' (every replica can then run one measured configuration).
    /// An untrusted routing label: peers are admitted by attestation.
    #[arg(long, env = "NAUTILUS_REPLICA_SLOT", requires = "replica_listen")]
    pub replica_slot: Option<u8>,

    /// Where this replica's peers reach it (`unix:PATH` or `vsock:PORT`): the cluster is kept
    /// by several enclave replicas (issue 17), writes go to the elected leader and every
    /// replica serves. Needs `--storage` and `--replica-peer`.
    #[arg(long, env = "NAUTILUS_REPLICA_LISTEN", value_parser = parse_listen, requires = "storage")]
    pub replica_listen: Option<ListenAddr>,

    /// Every replica's peer address, in slot order, this one's included; repeatable:
    /// `relay:HOST:PORT` (through `--replica-relay` to that replica's proxy's
    /// `--replica-peer-listen`) or `unix:PATH` (one machine).
    #[arg(
        long = "replica-peer",
        env = "NAUTILUS_REPLICA_PEERS",
        value_delimiter = ','
    )]
    pub replica_peers: Vec<String>,

    /// The proxy's byte relay the replica reaches `relay:` peers through (`unix:PATH` or
    /// `vsock:CID:PORT`; default: `--kms-relay`, then `--sui-relay`).
    #[arg(long, env = "NAUTILUS_REPLICA_RELAY")]
    pub replica_relay: Option<String>,

    /// Start a new replicated cluster with slot 0 as its only voter, when slot 0's store holds
    /// no replica log yet (the others join it); the other slots ignore it.
    #[arg(long, env = "NAUTILUS_REPLICA_BOOTSTRAP")]
    pub replica_bootstrap: bool,

    /// Admit peers whose attestation comes from the SIMULATED NSM (development only).
    #[arg(long, env = "NAUTILUS_ALLOW_SIMULATED_PEERS")]
    pub allow_simulated_peers: bool,

    /// TESTS ONLY: serve the durable log's test record stream on this Unix socket.
    #[arg(long, hide = true)]
    pub durable_test_listen: Option<PathBuf>,

    /// Request metrics (counter, duration histogram, in-flight gauge) on the hot path;
    /// `--metrics=false` turns them off (store, watch, token and node figures remain).
    #[arg(long, env = "NAUTILUS_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,
}

impl Cli {
    /// The configured minimum trust level, or the mode's default (issue 6: development trusts the relay,
    /// production only the committee).
    pub(crate) fn min_trust_level(&self) -> TrustArg {
        self.min_trust_level.unwrap_or(if self.simulated_nsm {
            TrustArg::RelayPushed
        } else {
            TrustArg::LightClient
        })
    }

    /// The KMS endpoint: the flag, or the region's public one.
    pub(crate) fn kms_endpoint(&self) -> String {
        self.kms_endpoint
            .clone()
            .unwrap_or_else(|| format!("kms.{}.amazonaws.com:443", self.kms_region))
    }

    /// The relay kubelets are reached through: the flag, or the Sui relay.
    pub(crate) fn kubelet_relay(&self) -> Option<&str> {
        self.kubelet_relay.as_deref().or(self.sui_relay.as_deref())
    }

    /// The relay KMS is reached through: the flag, or the Sui relay.
    pub(crate) fn kms_relay(&self) -> Option<&str> {
        self.kms_relay.as_deref().or(self.sui_relay.as_deref())
    }

    /// The effective options as canonical TOML: what `--print-config` prints and
    /// `GET /attestation/config` serves, and whose SHA-256 is the configuration digest bound into
    /// the attestation document's `user_data` (see `attestation.rs`). A verifier recomputes the
    /// digest from this text, so it is canonical: one `key = value` line per option, keys sorted
    /// bytewise, strings as TOML basic strings (`"` `\\` and control characters escaped),
    /// integers in decimal, booleans `true`/`false`, each line ending in `\n`. The enclave holds
    /// no secret here: tokens appear only as their SHA-256 hashes (hex).
    pub(crate) fn effective_toml(&self) -> String {
        let hex_opt = |v: &Option<[u8; 32]>| toml_string(&v.map_or_else(String::new, hex::encode));
        let listen = match &self.listen {
            ListenAddr::Unix(path) => format!("unix:{}", path.display()),
            ListenAddr::Vsock(port) => format!("vsock:{port}"),
        };
        let package = self
            .sui_package
            .map_or_else(String::new, |p| format!("0x{}", hex::encode(p)));
        let mut entries: Vec<(&str, String)> = vec![
            ("listen", toml_string(&listen)),
            ("admin_token_sha256", hex_opt(&self.admin_token_sha256)),
            ("simulated_nsm", self.simulated_nsm.to_string()),
            ("max_objects", self.max_objects.to_string()),
            ("max_store_bytes", self.max_store_bytes.to_string()),
            ("max_body_bytes", self.max_body_bytes.to_string()),
            ("watch_ring", self.watch_ring.to_string()),
            ("watch_ring_bytes", self.watch_ring_bytes.to_string()),
            (
                "exemplars_per_resource",
                self.exemplars_per_resource.to_string(),
            ),
            ("inflight_bytes", self.inflight_bytes.to_string()),
            ("watch_buffer_bytes", self.watch_buffer_bytes.to_string()),
            ("snapshot_every", self.snapshot_every.to_string()),
            ("snapshot_rate", self.snapshot_rate.to_string()),
            ("max_watches", self.max_watches.to_string()),
            ("bookmark_secs", self.bookmark_secs.to_string()),
            ("sui_package", toml_string(&package)),
            ("min_stake", self.min_stake.to_string()),
            ("token_max_lifetime", self.token_max_lifetime.to_string()),
            ("relay_token_sha256", hex_opt(&self.relay_token_sha256)),
            ("node_grace_secs", self.node_grace_secs.to_string()),
            ("event_ttl", self.event_ttl.to_string()),
            ("compaction_interval", self.compaction_interval.to_string()),
            ("service_cidr", toml_string(&self.service_cidr.to_string())),
            (
                "advertise_address",
                toml_string(
                    &self
                        .advertise_address
                        .map_or_else(String::new, |a| a.to_string()),
                ),
            ),
            (
                "service_account_issuer",
                toml_string(&self.service_account_issuer),
            ),
            (
                "service_node_port_range",
                toml_string(&self.service_node_port_range.to_string()),
            ),
            ("max_events", self.max_events.to_string()),
            ("event_qps", self.event_qps.to_string()),
            ("event_burst", self.event_burst.to_string()),
            (
                "node_event_share_percent",
                self.node_event_share_percent.to_string(),
            ),
            (
                "node_events_total_percent",
                self.node_events_total_percent.to_string(),
            ),
            ("log_level", toml_string(&self.log_level)),
            (
                "log_sink",
                toml_string(
                    &self
                        .log_sink
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                ),
            ),
            ("metrics", self.metrics.to_string()),
            (
                "sui_relay",
                toml_string(self.sui_relay.as_deref().unwrap_or("")),
            ),
            ("sui_node", toml_string(&self.sui_nodes.join(","))),
            (
                "sui_ca_file",
                toml_string(
                    &self
                        .sui_ca_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
            ),
            (
                "cluster_ca_file",
                toml_string(
                    &self
                        .cluster_ca_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
            ),
            (
                "sui_start_checkpoint",
                self.sui_start_checkpoint.to_string(),
            ),
            (
                "min_trust_level",
                toml_string(self.min_trust_level().level().as_str()),
            ),
            (
                "sui_trust_anchor",
                toml_string(
                    self.sui_trust_anchor
                        .as_ref()
                        .map_or("", |anchor| anchor.text.as_str()),
                ),
            ),
            ("sui_stale_after", self.sui_stale_after.to_string()),
            ("sui_max_stale", self.sui_max_stale.to_string()),
            ("tls", toml_string(self.tls.as_str())),
            ("tls_san", toml_string(&self.tls_san.join(","))),
            (
                "trust_proxy_client_cert",
                self.trust_proxy_client_cert.to_string(),
            ),
            (
                "storage",
                toml_string(
                    &self
                        .storage
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                ),
            ),
            ("cluster_id", toml_string(&self.cluster_id)),
            (
                "recover_to_last_valid",
                self.recover_to_last_valid.to_string(),
            ),
            (
                "kms_key_id",
                toml_string(self.kms_key_id.as_deref().unwrap_or("")),
            ),
            ("kms_region", toml_string(&self.kms_region)),
            ("kms_endpoint", toml_string(&self.kms_endpoint())),
            ("kms_relay", toml_string(self.kms_relay().unwrap_or(""))),
            (
                "kubelet_relay",
                toml_string(self.kubelet_relay().unwrap_or("")),
            ),
            ("kubelet_streams", self.kubelet_streams.to_string()),
            (
                "kubelet_stream_buffer_bytes",
                self.kubelet_stream_buffer_bytes.to_string(),
            ),
            (
                "kms_ca_file",
                toml_string(
                    &self
                        .kms_ca_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
            ),
            (
                "kms_accept_plaintext",
                self.kms_accept_plaintext.to_string(),
            ),
            (
                "allow_simulated_peers",
                self.allow_simulated_peers.to_string(),
            ),
            ("replica_peer", toml_string(&self.replica_peers.join(","))),
        ];
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect()
    }
}

impl Cli {
    /// The configuration every replica of one cluster runs alike, whose digest a peer's
    /// attestation must bind: the effective options without this replica's own sockets (its
    /// API listener and its store; the slot, its peer listener and the bootstrap flag are
    /// routing labels and not in it).
    pub(crate) fn shared_toml(&self) -> String {
        self.effective_toml()
            .lines()
            .filter(|line| !line.starts_with("listen = ") && !line.starts_with("storage = "))
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

/// A service-account issuer: kube accepts any non-empty string; one with blanks or control
/// characters is a mistake.
fn parse_issuer(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("expected a non-empty issuer without spaces (e.g. https://kubernetes.default.svc.cluster.local)".into());
    }
    Ok(text.into())
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Installs the global tracing subscriber (stderr).
pub(crate) fn init_logging(cli: &Cli) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(&cli.log_level));
    if let Some(addr) = &cli.log_sink {
        crate::log_sink::init_logging(filter, addr, cli.log_format == LogFormat::Json);
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match cli.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_configuration_is_canonical_toml() {
        let cli = Cli::try_parse_from([
            "nautilus-enclave",
            "--listen",
            "unix:/tmp/a \"b\"\\c.sock",
            "--max-objects",
            "7",
            "--simulated-nsm",
        ])
        .unwrap();
        let text = cli.effective_toml();
        assert!(text.ends_with('\n'));
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split_once(" = ").unwrap().0)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "keys are sorted bytewise");
        // The text is TOML that reads back to the same values (escapes included).
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table.len(), keys.len());
        assert_eq!(
            table.get("listen").and_then(|v| v.as_str()),
            Some("unix:/tmp/a \"b\"\\c.sock")
        );
        assert_eq!(
            table.get("max_objects").and_then(|v| v.as_integer()),
            Some(7)
        );
        assert_eq!(
            table.get("simulated_nsm").and_then(|v| v.as_bool()),
            Some(true)
        );
        assert_eq!(
            text,
            cli.effective_toml(),
            "the same options, the same bytes"
        );
        assert_eq!(toml_string("a\u{1}\n"), "\"a\\u0001\\n\"");
    }

    #[test]
    fn durations_read_like_kube_flags() {
        assert_eq!(parse_duration_secs("1h"), Ok(3600));
        assert_eq!(parse_duration_secs("1h0m0s"), Ok(3600));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400));
        assert_eq!(parse_duration_secs("90s"), Ok(90));
        assert_eq!(parse_duration_secs("45"), Ok(45));
        for bad in ["", "0", "0s", "1d", "h", "1h5", "-1s", "1.5h"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
