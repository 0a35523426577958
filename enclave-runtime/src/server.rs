//! The serving loop: accepts proxy streams, runs hyper on each, turns each request into one core
//! call under the store lock, and runs core's timers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use nautilus_core::api::{ApiRequest, ApiResponse, Method, Outcome};
use nautilus_core::auth::CertUser;
use nautilus_core::cluster::{Cluster, Recovery};
use nautilus_core::watch::WatchRing;
use nautilus_core::{Config, Error, UnixTime};
use tokio::sync::{Notify, watch};

use crate::budget::{Budget, Held};
use crate::cli::Cli;
use crate::http::{self, ResponseBody};
use crate::transport::Listener;

/// How long a client may take to send a request's headers (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How long an admitted client may take to send its whole request body (kube-apiserver's
/// default request timeout), so that a stalled body does not hold its budget share forever.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the body of a refused request is read and thrown away, so that a client still
/// sending it reads the answer instead of a reset (Go's server lingers likewise); a client that
/// stalls, or sends more than its discard limit, is cut off then.
const DISCARD_LINGER: Duration = Duration::from_secs(5);
/// Most bytes of an unauthenticated or unauthorized request's body read and thrown away: Go's
/// `maxPostHandlerReadBytes`. Reading more would let anonymous clients make the enclave decrypt
/// bodies for nothing: with twice the body limit (6 MiB each), 600 of them pushed 9 GB through
/// TLS in 30 s in `bench --only hostile-bodies`. An admitted caller's refused body (413, 429) is
/// read up to twice the body limit, so that a client that sends its whole body before reading
/// (Go's client reads the answer while it sends; others do not) still gets the answer.
const DISCARD_LIMIT_UNADMITTED: usize = 256 << 10;
/// Most bytes hyper buffers per connection, each way (its default is ~400 KB, to which its read
/// buffer grows while a fast client streams a body): 600 clients pushing refused bodies held
/// 320 MB in `bench --only hostile` with the default. A watch stream's chunks wait here too
/// (beside its own `--watch-buffer-bytes`) when its client stops reading, so this is most of what
/// 3,000 such watchers hold. A request head must fit (kube clients' heads are a few KB).
const CONNECTION_BUFFER_BYTES: usize = 32 * 1024;
/// LIST pages with more items than this are encoded off the async workers.
const BLOCKING_RENDER_ITEMS: usize = 256;

/// Where the cluster lives: alone under its own lock, or in a replica's core (issue 17),
/// where a rebuild or an installed snapshot may replace it.
pub(crate) enum CoreCell {
    /// One enclave keeps the cluster.
    Alone {
        cluster: Box<Mutex<Cluster>>,
        /// The cluster's watch ring, read by watch tasks without the core lock.
        ring: Arc<WatchRing>,
    },
    /// One replica of several.
    Replicated(Arc<crate::replica::state_machine::ReplicaCore>),
}

/// The locked cluster, either way it lives.
pub(crate) enum CoreGuard<'a> {
    Alone(MutexGuard<'a, Cluster>),
    Replicated(MutexGuard<'a, crate::replica::state_machine::CoreState>),
}

impl std::ops::Deref for CoreGuard<'_> {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        match self {
            Self::Alone(cluster) => cluster,
            Self::Replicated(state) => &state.cluster,
        }
    }
}

impl std::ops::DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Cluster {
        match self {
            Self::Alone(cluster) => cluster,
            Self::Replicated(state) => &mut state.cluster,
        }
    }
}

/// State shared by every connection and task.
pub(crate) struct Shared {
    core: CoreCell,
    /// With several replicas: this replica's part (forwarding, read index, role).
    pub(crate) replicated: Option<Arc<crate::replica::serving::Replicated>>,
    /// The store revision after the latest write; watch tasks wake on change.
    pub(crate) revision: watch::Sender<u64>,
    /// Set once when draining starts.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Open watch streams (core counts them against `--max-watches`).
    pub(crate) watches: nautilus_core::watch::WatchSlots,
    /// Seconds between bookmarks.
    pub(crate) bookmark_secs: u64,
    max_body: usize,
    /// Bytes held in flight for clients (`--inflight-bytes`).
    pub(crate) budget: Budget,
    /// Bytes one watch stream may have queued (`--watch-buffer-bytes`).
    pub(crate) watch_buffer: usize,
    timers: Notify,
    connections: AtomicUsize,
    /// The attested identity: signs answers, answers `/attestation`.
    pub(crate) attestation: crate::attestation::Attestation,
    /// In enclave TLS mode (`--tls enclave`), the SubjectPublicKeyInfo hashes of the serving
    /// key and of the cluster CA that certifies it: what the attestation's `user_data` binds.
    pub(crate) tls_binding: Option<nautilus_core::signed_answer::TlsBinding>,
    /// How each stream starts: the preamble rule and, in enclave TLS mode, the TLS acceptor.
    stream_setup: StreamSetup,
    /// The durable log, when `--storage` is given (issue 16), for its status.
    pub(crate) durable: Option<crate::durable::DurableLog>,
    /// Routes core's journal into `durable` (absent without `--storage`, and while the hidden
    /// test record stream owns the log).
    pub(crate) persistence: Option<Arc<crate::durable::Persistence>>,
    /// Reaching pods' kubelets (logs, exec, attach, port-forward) through the proxy's relay.
    kubelets: crate::kubelet::Kubelets,
}

/// Per-stream start-up before hyper: the proxy's preamble, then TLS in enclave TLS mode.
struct StreamSetup {
    /// Enclave TLS mode's acceptor (`None`: the proxy terminated TLS).
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// `--trust-proxy-client-cert` in proxy TLS mode: the preamble is required and its
    /// identity used.
    trust_preamble: bool,
}

impl Shared {
    /// How far the state is known to be the newest, for signed answers.
    pub(crate) fn freshness(&self) -> nautilus_core::signed_answer::Freshness {
        use nautilus_core::signed_answer::Freshness;
        if self.durable.is_some() {
            Freshness::Unverified
        } else {
            Freshness::InMemory
        }
    }

    /// After a call into core that reached `revision`: with persistence, the persistence task
    /// takes the journal and publishes the revision once durable; without, it is published now.
    pub(crate) fn written(&self, revision: u64) {
        match (&self.persistence, &self.core) {
            (Some(persistence), _) => persistence.wake(),
            // The driver takes the journal; the state machine publishes what commits.
            (None, CoreCell::Replicated(core)) => core.wake.notify_one(),
            (None, CoreCell::Alone { .. }) => self.publish(revision),
        }
    }

    /// The watch ring of the cluster served now, read by watch tasks without the core lock.
    pub(crate) fn ring(&self) -> Arc<WatchRing> {
        match &self.core {
            CoreCell::Alone { ring, .. } => ring.clone(),
            CoreCell::Replicated(core) => core.ring(),
        }
    }

    /// Whether `ring` is still the served cluster's: a replica that rebuilt its cluster or
    /// installed a snapshot ends the watch streams of the old one.
    pub(crate) fn serves_ring(&self, ring: &Arc<WatchRing>) -> bool {
        match &self.core {
            CoreCell::Alone { .. } => true,
            CoreCell::Replicated(core) => core.serves_ring(ring),
        }
    }

    /// Wakes watch streams and waiting reads: the store reached `revision` (with persistence,
    /// the ring's visible revision is moved first).
    pub(crate) fn publish(&self, revision: u64) {
        self.revision
            .send_if_modified(|r| std::mem::replace(r, revision) != revision);
    }

    /// Whether this enclave writes now, and as which leadership: one enclave alone always
    /// writes (`Some(0)`); a replica as [`ReplicaCore::writing_epoch`] says (what it wrote
    /// under an earlier epoch, uncommitted, may be gone).
    ///
    /// [`ReplicaCore::writing_epoch`]: crate::replica::state_machine::ReplicaCore::writing_epoch
    pub(crate) fn writing_epoch(&self) -> Option<u64> {
        match &self.core {
            CoreCell::Alone { .. } => Some(0),
            CoreCell::Replicated(core) => core.writing_epoch(),
        }
    }

    pub(crate) fn lock(&self) -> CoreGuard<'_> {
        match &self.core {
            // A panic cannot leave the core half-written: core is panic-free and every write
            // is atomic.
            CoreCell::Alone { cluster, .. } => CoreGuard::Alone(
                cluster
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            CoreCell::Replicated(core) => CoreGuard::Replicated(core.lock()),
        }
    }
}

/// The Sui reader's options when `--sui-node` is given (then `--sui-relay` and `--sui-package`
/// are required).
fn sui_reader_options(
    cli: &Cli,
    config: &Config,
) -> anyhow::Result<Option<crate::sui::ReaderOptions>> {
    if cli.sui_nodes.is_empty() {
        return Ok(None);
    }
    let relay = cli
        .sui_relay
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--sui-node needs --sui-relay (the proxy's relay)"))?
        .parse::<crate::sui::RelayAddr>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let package = config
        .sui_package
        .ok_or_else(|| anyhow::anyhow!("--sui-node needs --sui-package"))?;
    let ca_pem = match &cli.sui_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--sui-ca-file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(Some(crate::sui::ReaderOptions {
        relay,
        nodes: cli.sui_nodes.clone(),
        ca_pem,
        package,
        start: cli.sui_start_checkpoint,
        anchor: cli.sui_trust_anchor.as_ref().map(|a| a.committee.clone()),
    }))
}

/// What the cluster data key gives a durable start: the log's sealing keys, the
/// ServiceAccount signing key's secret and the cluster CA's.
struct DataKeys {
    store: crate::log_sink::SinkAddr,
    keys: crate::durable::seal::Keys,
    service_account_secret: [u8; 32],
    ca_secret: [u8; 32],
}

/// With `--storage`: the cluster data key from KMS, and the keys derived from it.
async fn data_keys(
    cli: &Cli,
    nsm: std::sync::Arc<dyn crate::nsm::Nsm>,
) -> anyhow::Result<Option<DataKeys>> {
    let Some(store) = &cli.storage else {
        return Ok(None);
    };
    let key_id = cli
        .kms_key_id
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--storage needs --kms-key-id"))?;
    let relay = cli
        .kms_relay()
        .ok_or_else(|| anyhow::anyhow!("--storage needs --kms-relay (or --sui-relay): KMS is reached through the proxy's relay"))?
        .parse::<crate::sui::RelayAddr>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let ca_pem = match &cli.kms_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--kms-ca-file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let options = crate::kms::KmsOptions {
        key_id,
        region: cli.kms_region.clone(),
        endpoint: cli.kms_endpoint(),
        relay,
        ca_pem,
        accept_plaintext: cli.kms_accept_plaintext,
    };
    let data_key = crate::kms::data_key(&options, &cli.cluster_id, nsm, store).await?;
    tracing::info!(
        cluster_id = %cli.cluster_id,
        kms_endpoint = %options.endpoint,
        generated = data_key.generated,
        "cluster data key from KMS (CiphertextForRecipient)"
    );
    Ok(Some(DataKeys {
        store: store.clone(),
        keys: crate::kms::keys(&data_key, &cli.cluster_id),
        service_account_secret: crate::kms::derived_secret(
            &data_key,
            &cli.cluster_id,
            crate::kms::SERVICE_ACCOUNT_KEY,
        ),
        ca_secret: crate::kms::derived_secret(
            &data_key,
            &cli.cluster_id,
            crate::kms::CLUSTER_CA_KEY,
        ),
    }))
}

/// The host's sealed log and snapshots, verified under `data`'s keys, each part handed to
/// `replay` as it verifies. A copy that does not verify stops the start (exit code 3) unless
/// `--recover-to-last-valid`.
async fn open_durable(
    cli: &Cli,
    data: DataKeys,
    replay: &mut dyn crate::durable::Replay,
) -> anyhow::Result<(crate::durable::DurableLog, crate::durable::Recovered)> {
    // One chain tag kept: the single replica never cuts its log's tail.
    let (log, recovered) = crate::durable::DurableLog::open(
        data.store,
        data.keys,
        cli.recover_to_last_valid,
        replay,
        1,
    )
    .await?;
    if let Some(dropped) = &recovered.dropped {
        tracing::error!(%dropped, "recover-to-last-valid dropped what did not verify");
    }
    tracing::info!(
        snapshot = ?recovered.snapshot.map(|s| (s.id, s.revision, s.position)),
        records = recovered.records,
        "durable log verified (freshness unverified: a rolled-back host copy cannot be detected by one enclave)"
    );
    Ok((log, recovered))
}

/// What the start made: the cluster, and the durable log with `--storage`.
struct Started {
    core: Cluster,
    durable: Option<crate::durable::DurableLog>,
    /// Records replayed from the log.
    replayed: u64,
    /// The log persists the cluster (the hidden test record stream owns it otherwise).
    persists: bool,
}

/// The cluster at start: replayed from the durable log when the log persists the cluster (a
/// new one when it holds none), each record as it is read and verified, else new.
async fn start_cluster(
    cli: &Cli,
    data: Option<DataKeys>,
    config: &Config,
    seed: [u8; 32],
) -> anyhow::Result<Started> {
    let Some(data) = data else {
        return Ok(Started {
            core: Cluster::new(config.clone(), seed, now()),
            durable: None,
            replayed: 0,
            persists: false,
        });
    };
    if let Some(path) = &cli.durable_test_listen {
        let mut kept = crate::durable::Kept::default();
        let (log, recovered) = open_durable(cli, data, &mut kept).await?;
        crate::durable::debug::spawn(
            path.clone(),
            log.clone(),
            &kept,
            recovered.dropped.as_deref(),
        )?;
        return Ok(Started {
            core: Cluster::new(config.clone(), seed, now()),
            durable: Some(log),
            replayed: 0,
            persists: false,
        });
    }
    let started = std::time::Instant::now();
    let mut replay = ClusterReplay {
        config: config.clone(),
        seed,
        now: now(),
        recovery: None,
    };
    let (log, recovered) = open_durable(cli, data, &mut replay).await?;
    let recovery = replay
        .recovery
        .unwrap_or_else(|| Recovery::new(config.clone(), seed, now()));
    let core = recovery
        .finish(now())
        .map_err(|e| anyhow::anyhow!("replaying the durable log failed: {}", e.message()))?;
    tracing::info!(
        snapshot_revision = recovered.snapshot.map(|s| s.revision),
        records = recovered.records,
        objects = core.store().len(),
        revision = core.store().revision(),
        millis = started.elapsed().as_millis() as u64,
        "cluster state replayed from the durable log"
    );
    Ok(Started {
        core,
        durable: Some(log),
        replayed: recovered.records,
        persists: true,
    })
}

/// Replays the durable log into core as it is read (see [`crate::durable::Replay`]).
struct ClusterReplay {
    config: Config,
    seed: [u8; 32],
    now: UnixTime,
    recovery: Option<Recovery>,
}

impl crate::durable::Replay for ClusterReplay {
    fn snapshot(
        &mut self,
        snapshot: Option<crate::durable::RecoveredSnapshot>,
    ) -> Result<(), String> {
        let mut recovery = Recovery::new(self.config.clone(), self.seed, self.now);
        // Each chunk is freed once restored, so the state is never held twice (as snapshot
        // bytes and as objects).
        for chunk in snapshot.map_or_else(Vec::new, |s| s.chunks) {
            recovery.restore_chunk(&chunk).map_err(|e| e.message())?;
        }
        recovery.end_snapshot().map_err(|e| e.message())?;
        self.recovery = Some(recovery);
        Ok(())
    }

    fn record(&mut self, record: crate::durable::RecoveredRecord) -> Result<(), String> {
        let recovery = self
            .recovery
            .as_mut()
            .ok_or_else(|| "a record came before the snapshot".to_string())?;
        recovery
            .replay(&record.payload)
            .map_err(|e| format!("record {}: {}", record.position, e.message()))
    }
}

/// Wall-clock time for core.
pub(crate) fn now() -> UnixTime {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    UnixTime {
        nanos: u64::try_from(nanos).unwrap_or(u64::MAX),
    }
}

fn usize_of(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Runs the enclave until SIGTERM/Ctrl-C.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let nsm = crate::nsm::select(cli.simulated_nsm)?;
    if cli.min_trust_level() == crate::cli::TrustArg::LightClient
        && (cli.sui_trust_anchor.is_none() || cli.sui_nodes.is_empty())
    {
        anyhow::bail!(
            "min_trust_level is light-client (the default outside development), which admits only \
             stakes the Sui light client verified: give --sui-trust-anchor and --sui-node, or \
             lower --min-trust-level"
        );
    }
    let config = Config {
        max_objects: usize_of(cli.max_objects),
        max_store_bytes: usize_of(cli.max_store_bytes),
        max_body_bytes: usize_of(cli.max_body_bytes),
        watch_ring_capacity: usize_of(cli.watch_ring),
        watch_ring_bytes: usize_of(cli.watch_ring_bytes),
        exemplars_per_resource: usize_of(cli.exemplars_per_resource),
        max_watches: usize_of(cli.max_watches),
        admin_token_sha256: cli.admin_token_sha256,
        bookmark_interval_secs: cli.bookmark_secs,
        sui_package: cli.sui_package,
        min_stake: cli.min_stake,
        token_max_lifetime_secs: cli.token_max_lifetime,
        relay_token_sha256: cli.relay_token_sha256,
        node_grace_secs: cli.node_grace_secs,
        event_ttl_secs: cli.event_ttl,
        compaction_interval_secs: cli.compaction_interval,
        service_cidr: cli.service_cidr,
        advertise_address: cli.advertise_address,
        node_port_range: cli.service_node_port_range,
        max_events: usize_of(cli.max_events),
        event_qps: cli.event_qps,
        event_burst: cli.event_burst,
        node_event_share_percent: cli.node_event_share_percent,
        node_events_total_percent: cli.node_events_total_percent,
        min_trust_level: cli.min_trust_level().level(),
        sui_stale_after_secs: cli.sui_stale_after,
        sui_max_stale_secs: cli.sui_max_stale,
        ..Config::default()
    };
    if config.admin_token_sha256.is_none() {
        tracing::warn!("no --admin-token-sha256 given: no caller can act as admin");
    }
    // The cluster data key (KMS) before anything else: the log's keys and the ServiceAccount
    // key come from it.
    // A replica of several: its identity for this start, and the cluster key's blobs copied
    // from a peer when it joins a cluster its store has not seen.
    let replica_identity = match cli.replica_listen {
        Some(_) => {
            let mut identity = crate::replica::serving::Identity::new(&cli, nsm.clone()).await?;
            let store = cli
                .storage
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("--replica-listen needs --storage"))?;
            identity.answer_peers(&cli, store).await?;
            identity.decide_bootstrap(&cli).await;
            let blobs = identity.ensure_key_blobs(store).await?;
            Some((identity, blobs))
        }
        None => None,
    };
    let data = data_keys(&cli, nsm.clone()).await?;
    // A bootstrapping replica's blobs are KMS's answer, now in its store.
    let replica_identity = match (replica_identity, &cli.storage) {
        (Some((identity, Some(blobs))), _) => Some((identity, blobs)),
        (Some((identity, None)), Some(store)) => {
            let blobs = crate::kms::key_blobs(store).await?.ok_or_else(|| {
                anyhow::anyhow!("the store holds no cluster key after KMS made one")
            })?;
            Some((identity, blobs))
        }
        _ => None,
    };
    // The ServiceAccount token key: from the data key when the cluster is durable (tokens
    // outlive restarts), else random for this run. It stays in core; only its public half is
    // ever served (the JWKS).
    let durable_key = data.is_some();
    let service_account_secret = match &data {
        Some(data) => data.service_account_secret,
        None => crate::nsm::random_seed(nsm.as_ref())?,
    };
    let ca_secret = match &data {
        Some(data) => data.ca_secret,
        None => crate::nsm::random_seed(nsm.as_ref())?,
    };
    let service_account_key =
        nautilus_core::serviceaccount::ServiceAccountKey::from_secret(&service_account_secret)
            .ok_or_else(|| anyhow::anyhow!("cannot make the service account signing key"))?;
    tracing::info!(
        issuer = %cli.service_account_issuer,
        key_id = %service_account_key.key_id(),
        derived_from_data_key = durable_key,
        "service account token issuer"
    );
    let config = Config {
        service_account_issuer: cli.service_account_issuer.clone(),
        service_account_key: Some(service_account_key),
        ..config
    };
    // The cluster CA: from the data key when the cluster is durable (the certificates it
    // signed stay valid across restarts), else random for this run. Its key stays in core.
    let cluster_ca = nautilus_core::csr::authority::ClusterCa::from_secret(&ca_secret)
        .ok_or_else(|| anyhow::anyhow!("no cluster CA key could be made"))?;
    let enclave_tls = match cli.tls {
        crate::tls::TlsMode::Proxy => None,
        crate::tls::TlsMode::Enclave => {
            // The TLS key comes from the NSM's randomness, like the identity key; the cluster
            // CA issues its certificate, so clients that trust the CA need no new pin after a
            // restart.
            let mut random = |out: &mut [u8]| {
                nsm.random(out)
                    .map_err(|e| anyhow::anyhow!("NSM random bytes for the TLS key: {e}"))
            };
            Some(crate::tls::generate(
                &mut random,
                &cli.tls_san,
                &cluster_ca,
                now(),
            )?)
        }
    };
    if cli.trust_proxy_client_cert && enclave_tls.is_some() {
        tracing::warn!("--trust-proxy-client-cert has no effect with --tls enclave");
    }
    // What a pod needs to verify the API server: the CA its serving certificate chains to. The
    // cluster CA when the enclave terminates TLS; otherwise the CA the operator names (the
    // proxy's certificate chains to it).
    let config = Config {
        enclave_tls: enclave_tls.is_some(),
        root_ca_pem: match (&enclave_tls, &cli.cluster_ca_file) {
            (Some(tls), _) => Some(crate::tls::certificate_pem(&tls.ca_der)),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("--cluster-ca-file {}: {e}", path.display()))?,
            ),
            (None, None) => None,
        },
        ..config
    };
    // Before the listener: a host copy that does not verify stops the start (exit code 3)
    // before anything can connect.
    let seed = crate::nsm::random_seed(nsm.as_ref())?;
    let (
        replicated,
        Started {
            mut core,
            durable,
            replayed,
            persists,
        },
    ) = match replica_identity {
        Some((mut identity, key_blobs)) => {
            let data = data.ok_or_else(|| anyhow::anyhow!("--replica-slot needs --storage"))?;
            identity.settle_id(&data.store, &data.keys).await?;
            let replica_core =
                crate::replica::state_machine::ReplicaCore::new(config.clone(), seed, now());
            let replicated = crate::replica::serving::Replicated::start(
                identity,
                &cli,
                replica_core.clone(),
                data.store,
                data.keys,
                key_blobs,
            )
            .await?;
            (
                Some((replicated, replica_core)),
                Started {
                    // Unused: the replica's core holds the cluster.
                    core: Cluster::follower(config.clone(), seed, now()),
                    durable: None,
                    replayed: 0,
                    persists: false,
                },
            )
        }
        None => (None, start_cluster(&cli, data, &config, seed).await?),
    };
    // In enclave TLS mode the enclave verifies client certificates against it itself; in
    // proxy TLS mode the proxy is untrusted, so nodes keep their bearer credentials there.
    let enclave_tls = match enclave_tls {
        Some(tls) => Some(tls.accepting_clients_of(cluster_ca.certificate_der())?),
        None => None,
    };
    // The enclave's client certificate for kubelets comes from the same CA.
    let kubelet_relay = cli
        .kubelet_relay()
        .map(str::parse::<crate::sui::RelayAddr>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--kubelet-relay: {e}"))?;
    let kubelets = crate::kubelet::Kubelets::new(
        kubelet_relay,
        &cluster_ca,
        usize_of(cli.kubelet_streams),
        usize_of(cli.kubelet_stream_buffer_bytes),
    )?;
    let listener = Listener::bind(&cli.listen)?;
    // Watchers see what is durable: the bootstrap's own writes wait for the log like any.
    let initial = if persists {
        core.take_records()
    } else {
        Vec::new()
    };
    let visible = initial
        .iter()
        .find_map(nautilus_core::cluster::Record::revision)
        .map_or(core.store().revision(), |first| first.saturating_sub(1));
    let (core_cell, watches, replicated) = match replicated {
        Some((replicated, replica_core)) => {
            replica_core.set_cluster_ca(cluster_ca);
            let watches = replica_core.lock().cluster.watch_slots();
            (
                CoreCell::Replicated(replica_core),
                watches,
                Some(replicated),
            )
        }
        None => {
            core.set_cluster_ca(Some(cluster_ca));
            let watches = core.watch_slots();
            let cell = CoreCell::Alone {
                ring: core.watch_ring(),
                cluster: Box::new(Mutex::new(core)),
            };
            (cell, watches, None)
        }
    };
    let persistence = durable.clone().filter(|_| persists).map(|log| {
        let pace = crate::durable::SnapshotPace::mib_per_sec(cli.snapshot_rate);
        crate::durable::Persistence::new(log, cli.snapshot_every, pace, replayed)
    });
    // Enclave-terminated TLS binds its serving key's and the cluster CA's SPKI SHA-256 in
    // user_data.
    let tls_binding = enclave_tls.as_ref().map(|t| t.binding);
    let attestation =
        crate::attestation::Attestation::new(nsm.clone(), cli.effective_toml(), tls_binding)
            .map_err(|e| anyhow::anyhow!("cannot make the enclave identity: {e}"))?;
    tracing::info!(
        config_digest = %hex::encode(attestation.config_digest()),
        identity = %hex::encode(attestation.identity_public_sec1()),
        "enclave identity made; GET /attestation binds it"
    );
    // Without persistence nothing was journaled, so this is the store's revision.
    let revision = visible;
    let shared = Arc::new(Shared {
        watches,
        core: core_cell,
        replicated,
        revision: watch::channel(revision).0,
        shutdown: watch::channel(false).0,
        bookmark_secs: config.bookmark_interval_secs,
        max_body: config.max_body_bytes,
        budget: Budget::new(usize_of(cli.inflight_bytes)),
        watch_buffer: usize_of(cli.watch_buffer_bytes),
        timers: Notify::new(),
        connections: AtomicUsize::new(0),
        attestation,
        tls_binding,
        stream_setup: StreamSetup {
            trust_preamble: cli.trust_proxy_client_cert && enclave_tls.is_none(),
            tls: enclave_tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config)),
        },
        durable,
        persistence,
        kubelets,
    });
    if let Some(persistence) = shared.persistence.clone() {
        shared.ring().set_visible(visible);
        tokio::spawn(crate::durable::persist::run(
            shared.clone(),
            persistence,
            initial,
        ));
    }
    if let Some(binding) = shared.tls_binding {
        tracing::info!(
            spki_sha256 = %hex::encode(binding.serving_spki_sha256),
            ca_spki_sha256 = %hex::encode(binding.ca_spki_sha256),
            "enclave TLS: the enclave terminates TLS 1.3 with its own key, certified by the cluster CA"
        );
    }
    tracing::info!(listen = ?cli.listen, nsm = %nsm.module_id(), simulated = nsm.is_simulated(), "nautilus-enclave serving");
    if let Some(replicated) = &shared.replicated {
        replicated.serve(&shared);
    }
    tokio::spawn(run_timers(shared.clone()));
    crate::heap::spawn_trimmer();
    if let Some(options) = sui_reader_options(&cli, &config)? {
        // On replicas it reads while this replica leads.
        tracing::info!(nodes = %options.nodes.join(","), "sui reader: reading stake events from full nodes (node-read)");
        crate::sui::spawn(shared.clone(), options);
    }
    let mut shutdown_rx = shared.shutdown.subscribe();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    tokio::spawn(serve_connection(shared.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut signal => break,
        }
    }
    tracing::info!("shutting down: draining connections");
    let _ = shared.shutdown.send(true);
    let _ = shutdown_rx.borrow_and_update();
    let started = tokio::time::Instant::now();
    while shared.connections.load(Ordering::Relaxed) > 0 && started.elapsed() < DRAIN_DEADLINE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(replicated) = &shared.replicated {
        // The peers elect another leader now rather than after an election timeout.
        replicated.stop().await;
    }
    if let crate::cli::ListenAddr::Unix(path) = &cli.listen {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// Pause between two `handle_timeout` calls while core has work due at once.
const BACKLOG_PAUSE: Duration = Duration::from_millis(1);

/// Runs core's background work when it is due (after writes, and every second).
async fn run_timers(shared: Arc<Shared>) {
    // Sleep until core's next deadline (at most a second), or until a request says work is due.
    let mut wait = Duration::from_secs(1);
    loop {
        tokio::select! {
            () = shared.timers.notified() => {},
            () = tokio::time::sleep(wait) => {},
        }
        // Only the writer runs core's background work: a follower's cluster is what the
        // writer's records made it.
        let writes = shared.replicated.as_ref().is_none_or(|r| r.writes());
        let (revision, next) = {
            let mut core = shared.lock();
            let at = now();
            if writes && core.poll_timeout().is_some_and(|due| due <= at) {
                core.handle_timeout(at);
            }
            (core.store().revision(), core.poll_timeout())
        };
        // Work still due (it shrinks with every call) is drained at once, with a millisecond
        // between calls to let requests take the lock.
        wait = next.map_or(Duration::from_secs(1), |due| {
            match due.nanos.checked_sub(now().nanos) {
                Some(ahead) if ahead > 0 => Duration::from_nanos(ahead)
                    .clamp(Duration::from_millis(1), Duration::from_secs(1)),
                _ => BACKLOG_PAUSE,
            }
        });
        shared.written(revision);
    }
}

/// Reads the proxy's preamble and, in enclave TLS mode, completes the TLS handshake, under the
/// header deadline. `None`: the stream is closed (bad preamble, failed handshake).
async fn set_up_stream(
    shared: &Shared,
    stream: Box<dyn crate::transport::Stream>,
) -> Option<(Option<Arc<CertUser>>, Box<dyn crate::transport::Stream>)> {
    let setup = &shared.stream_setup;
    let started = async {
        let (identity, stream) = crate::preamble::read(stream, setup.trust_preamble)
            .await
            .map_err(|e| e.to_string())?;
        // Only a trusted proxy's identity counts; in enclave TLS mode it is ignored.
        let mut identity = identity.filter(|_| setup.trust_preamble).map(Arc::new);
        let stream: Box<dyn crate::transport::Stream> = match &setup.tls {
            None => Box::new(stream),
            Some(acceptor) => match acceptor.accept(stream).await {
                Ok(tls) => {
                    // rustls verified it against the cluster CA: its subject is the user.
                    identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|cert| {
                            nautilus_core::csr::authority::certificate_subject(cert.as_ref())
                        })
                        .map(|(name, groups)| {
                            Arc::new(CertUser {
                                name,
                                groups,
                                cluster_ca: true,
                            })
                        });
                    Box::new(tls)
                }
                // A probe that connects and closes (the dev proxy's readiness check) is no news.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(String::new());
                }
                Err(e) => return Err(format!("TLS handshake failed: {e}")),
            },
        };
        Ok::<_, String>((identity, stream))
    };
    match tokio::time::timeout(HEADER_READ_TIMEOUT, started).await {
        Ok(Ok(ready)) => Some(ready),
        Ok(Err(reason)) => {
            if reason.is_empty() {
                tracing::debug!("stream closed before the TLS handshake");
            } else {
                tracing::info!(reason, "stream refused before HTTP");
            }
            None
        }
        Err(_) => {
            tracing::debug!("stream start timed out");
            None
        }
    }
}

/// Ends one connection at once (a watch whose client stopped reading): hyper's buffers and
/// every budget share they hold go with it, and the proxy closes the client's side.
#[derive(Clone, Default)]
pub(crate) struct Abort(Arc<Notify>);

impl Abort {
    /// Closes the connection this handle belongs to.
    pub(crate) fn connection(&self) {
        self.0.notify_one();
    }
}

async fn serve_connection(shared: Arc<Shared>, stream: Box<dyn crate::transport::Stream>) {
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let Some((identity, stream)) = set_up_stream(&shared, stream).await else {
        shared.connections.fetch_sub(1, Ordering::Relaxed);
        return;
    };
    let abort = Abort::default();
    let service = {
        let shared = shared.clone();
        let abort = abort.clone();
        service_fn(move |mut req: hyper::Request<Incoming>| {
            // The connection's client-certificate identity rides on each of its requests.
            if let Some(identity) = &identity {
                req.extensions_mut().insert(identity.clone());
            }
            req.extensions_mut().insert(abort.clone());
            crate::metrics::instrument(shared.clone(), req, handle)
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(CONNECTION_BUFFER_BYTES)
        .keep_alive(true);
    // Upgrades: a K3s agent's tunnel (`/v1-k3s/connect`) becomes a websocket; `kubectl exec`,
    // `attach` and `port-forward` are carried on to the kubelet.
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut shutdown = shared.shutdown.subscribe();
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        () = abort.0.notified() => {
            tracing::debug!("connection closed: its watch client stopped reading");
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_DEADLINE, conn.as_mut()).await;
        }
    }
    shared.connections.fetch_sub(1, Ordering::Relaxed);
}

/// A refused credential or action, at info with the reason core gave. Core's messages name the
/// rule that failed, never the token.
fn log_security_event(method: &str, path: &str, response: &ApiResponse) {
    let reason: Option<String> = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|body| {
            body.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    tracing::info!(
        method,
        path,
        code = response.status,
        reason = reason.as_deref().unwrap_or(""),
        "request refused"
    );
}

/// Why a request body was not read whole.
enum BodyError {
    /// Above `--max-body-bytes` (413 from core).
    TooLarge,
    /// The in-flight budget has no room (429).
    Busy,
    /// Broken or too slow (400).
    Unreadable(String),
}

/// Whether the request carries a body (a `Content-Length` above zero, or chunked).
fn has_body(body: &Incoming) -> bool {
    !body.is_end_stream()
}

/// Reads an admitted request's body, taking its bytes from the in-flight budget before they are
/// held: the whole declared `Content-Length` up front (refused at once when it is above the
/// limit), or frame by frame when the body is chunked.
async fn read_body(shared: &Shared, body: &mut Incoming) -> Result<(Bytes, Held), BodyError> {
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > shared.max_body as u64) {
        return Err(BodyError::TooLarge);
    }
    let declared = declared.map_or(0, usize_of);
    let mut held = shared.budget.try_take(declared).ok_or(BodyError::Busy)?;
    let read = async {
        let mut bytes = BytesMut::with_capacity(declared);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let total = bytes.len().saturating_add(data.len());
            if total > shared.max_body {
                return Err(BodyError::TooLarge);
            }
            if total > declared && !held.try_grow(&shared.budget, data.len()) {
                return Err(BodyError::Busy);
            }
            bytes.extend_from_slice(&data);
        }
        Ok(bytes.freeze())
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(bytes)) => Ok((bytes, held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Unreadable(format!(
            "the body did not arrive within {} s",
            BODY_READ_TIMEOUT.as_secs()
        ))),
    }
}

/// The 429 a request gets when the in-flight budget is full (kube-apiserver's max-in-flight
/// answer: `Retry-After: 1` and `details.retryAfterSeconds`).
fn budget_full_response() -> ApiResponse {
    crate::metrics::budget_refused();
    ApiResponse::error(&Error::TooManyRequests(
        "Too many requests, please try again later.".into(),
    ))
}

fn budget_full() -> hyper::Response<ResponseBody> {
    http::to_hyper(budget_full_response())
}

/// The answer to a request whose body is not (or no longer) read: `Connection: close`, and the
/// rest of the body read and thrown away in the background for [`DISCARD_LINGER`] at most, up to
/// `limit` bytes; nothing of it is held.
fn refuse_unread(
    body: Incoming,
    response: ApiResponse,
    limit: usize,
) -> hyper::Response<ResponseBody> {
    let mut body = body;
    tokio::spawn(async move {
        let discard = async {
            let mut seen = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                seen = seen.saturating_add(frame.data_ref().map_or(0, Bytes::len));
                if seen > limit {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DISCARD_LINGER, discard).await;
    });
    http::to_hyper_closing(response)
}

/// The hyper response for `response`, its body holding its share of the in-flight budget until
/// it is written; 429 when the budget has no room for it.
fn charged(shared: &Shared, response: ApiResponse) -> hyper::Response<ResponseBody> {
    match shared.budget.try_take(response.body.len()) {
        Some(held) => http::to_hyper_held(response, held),
        None => budget_full(),
    }
}

/// Core's view of a request: its head and `body`.
fn api_request<'a>(
    parts: &'a hyper::http::request::Parts,
    body: &'a [u8],
    body_too_large: bool,
) -> ApiRequest<'a> {
    ApiRequest {
        method: Method::parse(parts.method.as_str()),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        accept: http::header(&parts.headers, "accept"),
        content_type: http::header(&parts.headers, "content-type"),
        authorization: http::header(&parts.headers, "authorization"),
        user_agent: http::header(&parts.headers, "user-agent"),
        seal_token: http::header(&parts.headers, "x-seal-token"),
        k3s_node: nautilus_core::api::k3s::NodeHeaders {
            name: http::header(&parts.headers, "k3s-node-name"),
            password: http::header(&parts.headers, "k3s-node-password"),
            ips: http::header(&parts.headers, "k3s-node-ip"),
        },
        body,
        body_too_large,
        client_cert: parts.extensions.get::<Arc<CertUser>>().map(|u| &**u),
        waiting_since: None,
    }
}

/// What one call into core left.
struct Called {
    outcome: Outcome,
    /// The store's revision after the call.
    revision: u64,
    /// Core's journal entries after the call: what must be durable before the answer.
    journaled: u64,
    /// The call journaled entries of its own (a write, not a read).
    wrote: bool,
    /// Core has background work due.
    timers_due: bool,
}

/// Runs one request through core under the store lock. A read that needs a revision the store
/// has not reached (`Outcome::Pending`) is asked again, with the time core first saw it, when the
/// store's revision gets there or at core's deadline; core then serves it or answers 504.
async fn call_core(shared: &Shared, mut request: ApiRequest<'_>) -> Called {
    loop {
        let at = now();
        let called = {
            let mut core = shared.lock();
            let before = core.journaled();
            let outcome = core.handle_request(at, &request);
            let timers_due = core.poll_timeout().is_some_and(|due| due <= at);
            Called {
                outcome,
                revision: core.store().revision(),
                journaled: core.journaled(),
                wrote: core.journaled() > before,
                timers_due,
            }
        };
        let Outcome::Pending {
            revision: wanted,
            deadline,
        } = called.outcome
        else {
            return called;
        };
        request.waiting_since.get_or_insert(at);
        let wait = Duration::from_nanos(deadline.nanos.saturating_sub(now().nanos));
        let mut changes = shared.revision.subscribe();
        let _ = tokio::time::timeout(wait, changes.wait_for(|r| *r >= wanted)).await;
    }
}

/// A LIST page encoded whole, outside the store lock; big pages off the async workers.
async fn render_list(list: Box<nautilus_core::api::render::ListRender>) -> ApiResponse {
    if list.len() <= BLOCKING_RENDER_ITEMS {
        return list.render();
    }
    tokio::task::spawn_blocking(move || list.render())
        .await
        .unwrap_or_else(|e| {
            ApiResponse::error(&Error::Internal(format!("encoding the list failed: {e}")))
        })
}

/// What a follower passes on to the leader for a request with this head and body.
fn forwarded(
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> crate::replica::serving::Forwarded {
    let headers = crate::replica::serving::FORWARDED_HEADERS
        .iter()
        .filter_map(|name| {
            http::header(&parts.headers, name).map(|value| (name.to_string(), value.to_string()))
        })
        .collect();
    crate::replica::serving::Forwarded {
        method: parts.method.as_str().to_string(),
        uri: parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        ),
        headers,
        body: body.to_vec(),
        client_cert: parts
            .extensions
            .get::<Arc<CertUser>>()
            .map(|user| (user.name.clone(), user.groups.clone(), user.cluster_ca)),
    }
}

/// The response a follower sends for the leader's answer, and the leader's revision.
fn from_forward_answer(
    answer: crate::replica::serving::ForwardAnswer,
) -> (hyper::Response<ResponseBody>, u64) {
    let mut response = hyper::Response::new(ResponseBody::full(answer.body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            // The length is the body's, set again by hyper.
            if name != hyper::header::CONTENT_LENGTH {
                response.headers_mut().append(name, value);
            }
        }
    }
    (response, answer.revision)
}

/// The answer to a forwarded request this replica does not serve.
pub(crate) fn forward_refused(error: &Error) -> crate::replica::serving::ForwardAnswer {
    let response = ApiResponse::error(error);
    crate::replica::serving::ForwardAnswer {
        status: response.status,
        headers: vec![
            ("content-type".into(), response.content_type.to_string()),
            ("retry-after".into(), "1".into()),
        ],
        body: response.body,
        revision: 0,
    }
}

/// Serves a request a follower forwarded (issue 17): as [`handle`] does for a request whose
/// body is read, answered whole once what it wrote is committed. Watches, upgrades and
/// kubelet calls are served where they arrive and never forwarded.
pub(crate) async fn serve_forwarded(
    shared: &Arc<Shared>,
    forwarded: crate::replica::serving::Forwarded,
) -> crate::replica::serving::ForwardAnswer {
    let mut builder = hyper::Request::builder()
        .method(forwarded.method.as_str())
        .uri(forwarded.uri.as_str());
    for (name, value) in &forwarded.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let Ok(request) = builder.body(()) else {
        return forward_refused(&Error::BadRequest(
            "a forwarded request's head does not parse".into(),
        ));
    };
    let (mut parts, ()) = request.into_parts();
    if let Some((name, groups, cluster_ca)) = forwarded.client_cert {
        parts.extensions.insert(Arc::new(CertUser {
            name,
            groups,
            cluster_ca,
        }));
    }
    let body = Bytes::from(forwarded.body);
    let called = call_core(shared, api_request(&parts, &body, false)).await;
    shared.written(called.revision);
    if called.timers_due {
        shared.timers.notify_one();
    }
    if let Some(replicated) = &shared.replicated
        && let Err(refusal) = replicated
            .before_answering(&parts.method, called.wrote, called.journaled)
            .await
    {
        return forward_refused(&refusal);
    }
    let response = match called.outcome {
        Outcome::Response(response) if response.status != 101 => http::to_hyper(response),
        Outcome::List(list) => http::to_hyper(render_list(list).await),
        Outcome::OpenApi(served) => http::openapi_to_hyper(served, None),
        _ => {
            return forward_refused(&Error::BadRequest(
                "this request is served where it arrives and cannot be passed on to the leader"
                    .into(),
            ));
        }
    };
    let (head, body) = response.into_parts();
    let body = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(never) => match never {},
    };
    crate::replica::serving::ForwardAnswer {
        status: head.status.as_u16(),
        headers: head
            .headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body,
        revision: called.revision,
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<ResponseBody>, Infallible> {
    let started = std::time::Instant::now();
    if let Some(response) = crate::attestation::answer(&shared, &req).await {
        return Ok(response);
    }
    let sign = match crate::signing::requested(req.headers()) {
        Ok(sign) => sign,
        Err(response) => return Ok(*response),
    };
    let (mut parts, body) = req.into_parts();
    // Only a kubelet call (exec, attach, port-forward) and a K3s agent's tunnel are ever
    // answered 101.
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let path = parts.uri.path();
    // Nothing is read before core has authenticated and authorized the request on its head; a
    // refused request's body is never kept: the connection ends after the answer.
    let abort = parts.extensions.get::<Abort>().cloned().unwrap_or_default();
    let mut incoming = body;
    let (body, _body_held, body_too_large) = if has_body(&incoming) {
        let admitted = shared
            .lock()
            .admit_head(now(), &api_request(&parts, &[], false));
        if let Err(response) = admitted {
            if matches!(response.status, 401 | 403) {
                log_security_event(parts.method.as_str(), path, &response);
            }
            return Ok(refuse_unread(incoming, response, DISCARD_LIMIT_UNADMITTED));
        }
        // Admitted: its refused body may be read to the end (twice the limit at most).
        let admitted_limit = shared.max_body.saturating_mul(2);
        match read_body(&shared, &mut incoming).await {
            Ok((bytes, held)) => (bytes, held, false),
            Err(BodyError::TooLarge) => (Bytes::new(), Held::default(), true),
            Err(BodyError::Busy) => {
                return Ok(refuse_unread(
                    incoming,
                    budget_full_response(),
                    admitted_limit,
                ));
            }
            Err(BodyError::Unreadable(reason)) => {
                tracing::debug!("request body unreadable: {reason}");
                let error =
                    Error::BadRequest(format!("the request body could not be read: {reason}"));
                return Ok(refuse_unread(
                    incoming,
                    ApiResponse::error(&error),
                    admitted_limit,
                ));
            }
        }
    } else {
        (Bytes::new(), Held::default(), false)
    };
    if let Some(replicated) = shared.replicated.as_ref().filter(|_| !body_too_large) {
        use crate::replica::serving::Route;
        let watch = api_request(&parts, &body, false).asks_for_watch();
        match replicated.route(&parts, watch) {
            Route::Local => {}
            Route::AfterReadIndex => {
                if let Err(e) = replicated.read_barrier().await {
                    return Ok(http::to_hyper(ApiResponse::error(&e)));
                }
            }
            Route::Forward => {
                let (response, revision) = match replicated.forward(&forwarded(&parts, &body)).await
                {
                    Ok(answer) => from_forward_answer(answer),
                    Err(e) => (http::to_hyper(ApiResponse::error(&e)), 0),
                };
                tracing::debug!(method = %parts.method, path, code = response.status().as_u16(), "request forwarded to the leader");
                return Ok(crate::signing::apply(
                    &shared.attestation,
                    sign.as_ref(),
                    &parts,
                    &body,
                    revision,
                    shared.freshness(),
                    response,
                ));
            }
        }
    }
    let request = api_request(&parts, &body, body_too_large);
    let Called {
        outcome,
        revision,
        journaled,
        wrote,
        timers_due,
    } = call_core(&shared, request).await;
    shared.written(revision);
    if timers_due {
        shared.timers.notify_one();
    }
    // A read of one object whose version is durable shows nothing a crash could take back:
    // it does not wait behind other objects' writes (the ring's visible revision is durable).
    // Asked only when there is a log to wait for.
    let shown_durable = || {
        !wrote
            && matches!(&outcome, Outcome::Response(r)
                if r.shows_revision.is_some_and(|shown| shown <= shared.ring().newest_visible()))
    };
    if let Some(persistence) = shared.persistence.as_ref().filter(|_| !shown_durable()) {
        // Answered once everything the call wrote, or its answer shows, is durable. A read
        // goes on while the host refuses appends; a write that got in before gets the refusal.
        if let Err(failure) = persistence.wait(journaled).await
            && wrote
        {
            return Ok(http::to_hyper(ApiResponse::error(&failure.refusal(true))));
        }
    }
    if let Some(replicated) = shared.replicated.as_ref().filter(|_| !shown_durable()) {
        // Answered once a majority holds what the call wrote or its answer shows (and a write
        // that wrote nothing once this replica is known to still lead).
        if let Err(refusal) = replicated
            .before_answering(&parts.method, wrote, journaled)
            .await
        {
            return Ok(http::to_hyper(ApiResponse::error(&refusal)));
        }
    }
    let response = match outcome {
        Outcome::List(list) if list.len() > BLOCKING_RENDER_ITEMS && list.in_pieces() => {
            // A big JSON or Table page goes out a piece at a time as hyper asks for more: its
            // encoding overlaps its transfer, and the whole body is never held at once.
            tracing::debug!(method = %parts.method, path, code = 200, micros = started.elapsed().as_micros() as u64, "request");
            match (*list).chunks() {
                Ok(chunks) if shared.budget.try_take(http::LIST_PIECE).is_some() => {
                    http::list_in_pieces(chunks, shared.budget.clone())
                }
                Ok(_) => budget_full(),
                Err(list) => charged(&shared, list.render()),
            }
        }
        Outcome::List(list) => {
            let response = render_list(list).await;
            tracing::debug!(method = %parts.method, path, code = response.status, micros = started.elapsed().as_micros() as u64, "request");
            charged(&shared, response)
        }
        // Core admitted a K3s agent's tunnel: the connection becomes its websocket.
        Outcome::Response(response) if response.status == 101 => {
            tracing::debug!(method = %parts.method, path, code = 101, "request");
            if let Some(upgrade) = client_upgrade {
                parts.extensions.insert(upgrade);
            }
            return Ok(crate::k3s_tunnel::accept(hyper::Request::from_parts(
                parts, incoming,
            )));
        }
        Outcome::Response(response) => {
            tracing::debug!(method = %parts.method, path, code = response.status, micros = started.elapsed().as_micros() as u64, "request");
            if matches!(response.status, 401 | 403) {
                log_security_event(parts.method.as_str(), path, &response);
            }
            if body_too_large {
                // The body stays unread (413): end the connection after the answer.
                let limit = shared.max_body.saturating_mul(2);
                return Ok(refuse_unread(incoming, response, limit));
            }
            charged(&shared, response)
        }
        Outcome::OpenApi(served) => {
            tracing::debug!(method = %parts.method, path, code = served.status, micros = started.elapsed().as_micros() as u64, "request");
            http::openapi_to_hyper(served, http::header(&parts.headers, "if-none-match"))
        }
        Outcome::Kubelet(call) => {
            tracing::debug!(method = %parts.method, path, node = %call.node, "kubelet call");
            shared.kubelets.serve(&call, &parts, client_upgrade).await
        }
        Outcome::Pending { .. } => {
            // `call_core` waits pending reads out; this arm is not reached.
            let error = Error::Internal("a read was left waiting".into());
            http::to_hyper(ApiResponse::error(&error))
        }
        Outcome::Watch(watcher) => {
            // The state a watch without a revision queues (one handle per object) is held for
            // the stream's life.
            let Some(queued) = shared.budget.try_take(watcher.queued_bytes()) else {
                return Ok(budget_full());
            };
            tracing::debug!(method = %parts.method, path, "watch started");
            let content_type = watcher.content_type();
            let body = crate::watch_stream::WatchBody::start(
                shared.clone(),
                watcher,
                queued,
                abort.clone(),
            );
            let mut response = hyper::Response::new(ResponseBody::Watch(Box::new(body)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(content_type),
            );
            response.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-cache, private"),
            );
            response
        }
    };
    Ok(crate::signing::apply(
        &shared.attestation,
        sign.as_ref(),
        &parts,
        &body,
        revision,
        shared.freshness(),
        response,
    ))
}
