//! Prometheus metrics of the enclave, served at `/metrics` to the admin only, before the request
//! reaches core. Names and labels follow kube-apiserver where they mean the same thing. The hot
//! path allocates nothing: label sets are small `Copy` structs of static strings and numbers,
//! and store figures are read only when scraped.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use hyper::body::Incoming;
use nautilus_core::Error;
use nautilus_core::api::request_info::RequestInfo;
use nautilus_core::api::{ApiRequest, ApiResponse, Method, WatchPoll};
use nautilus_core::auth::CertUser;
use nautilus_core::resource::{RESOURCES, ResourceId};
use nautilus_core::scheduler::{LATENCY_BUCKETS_MICROS, LatencyHistogram, SchedulerStats};
use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelSetEncoder,
    LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::http::{self, ResponseBody};
use crate::server::Shared;

/// `--metrics`: whether requests are measured (the `/metrics` scrape works either way).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the per-request instrumentation on or off (`--metrics=false`), once at start.
pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The path the runtime answers itself.
const METRICS_PATH: &str = "/metrics";

/// kube-apiserver's request duration buckets, with finer ones below 5 ms where this server
/// answers most requests.
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25,
    1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// Labels of the request counter and histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RequestLabels {
    info: RequestInfo,
    code: u16,
}

/// Writes one `key="value"` label.
fn label(
    encoder: &mut LabelSetEncoder,
    key: &'static str,
    value: impl EncodeLabelValue,
) -> Result<(), std::fmt::Error> {
    EncodeLabel::encode(&(key, value), encoder.encode_label())
}

/// A label value written with `Display`.
struct Shown<T>(T);

impl<T: std::fmt::Display> EncodeLabelValue for Shown<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let (group, version, resource) = self
            .info
            .resource
            .map_or(("", "", ""), |r| (r.group, r.version, r.plural));
        label(encoder, "verb", self.info.verb.as_str())?;
        label(encoder, "group", group)?;
        label(encoder, "version", version)?;
        label(encoder, "resource", resource)?;
        label(encoder, "subresource", self.info.subresource)?;
        label(encoder, "scope", self.info.scope.as_str())?;
        label(encoder, "code", Shown(self.code))
    }
}

/// kube-apiserver's `apiserver_storage_objects` label: `plural` or `plural.group`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct StorageLabels(ResourceId);

impl EncodeLabelSet for StorageLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let info = self.0.info();
        if info.group.is_empty() {
            label(encoder, "resource", info.plural)
        } else {
            let name = Shown(format_args!("{}.{}", info.plural, info.group));
            label(encoder, "resource", name)
        }
    }
}

/// A single static label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Label(&'static str, &'static str);

impl EncodeLabelSet for Label {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        (self.0, self.1).encode(encoder.encode_label())
    }
}

/// `result` and `reason` of a token validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TokenLabels(&'static str, &'static str);

impl EncodeLabelSet for TokenLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        label(encoder, "result", self.0)?;
        label(encoder, "reason", self.1)
    }
}

/// kube-scheduler's `result` and `profile` labels of `scheduler_schedule_attempts_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct AttemptLabels(&'static str);

impl EncodeLabelSet for AttemptLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        label(encoder, "result", self.0)?;
        label(
            encoder,
            "profile",
            nautilus_core::scheduler::DEFAULT_SCHEDULER,
        )
    }
}

/// Core's queue-to-bind latency histogram, encoded as seconds. Core keeps one count per bucket
/// (not cumulative) with a last, unbounded bucket, which is what the encoder takes: it sums the
/// counts into the cumulative `le` series itself and writes an infinite bound as `+Inf`.
#[derive(Debug)]
struct SchedulingLatency(LatencyHistogram);

impl SchedulingLatency {
    /// `(upper bound in seconds, count in that bucket alone)`, ending with `+Inf`.
    fn buckets(&self) -> Vec<(f64, u64)> {
        let bounds = LATENCY_BUCKETS_MICROS
            .iter()
            .map(|micros| *micros as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY));
        bounds.zip(self.0.counts.iter().copied()).collect()
    }
}

impl TypedMetric for SchedulingLatency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for SchedulingLatency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let sum = self.0.sum_micros as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, self.0.count, &self.buckets(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The process-wide request and watch metrics.
struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    inflight: Family<Label, Gauge>,
    inflight_read_only: Gauge,
    inflight_mutating: Gauge,
    watch_events: Counter,
    watch_expired: Counter,
    sui_verified_events: Counter,
    sui_refusals: Counter,
    budget_refusals: Counter,
    terminated_watchers: Family<[(&'static str, String); 1], Counter>,
}

fn new_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let inflight = Family::<Label, Gauge>::default();
    // Resolved once so a request touches only its gauge's atomic.
    let inflight_read_only = inflight.get_or_create_owned(&Label("request_kind", "readOnly"));
    let inflight_mutating = inflight.get_or_create_owned(&Label("request_kind", "mutating"));
    Metrics {
        requests: Family::default(),
        durations: Family::new_with_constructor(new_histogram as fn() -> Histogram),
        inflight,
        inflight_read_only,
        inflight_mutating,
        watch_events: Counter::default(),
        watch_expired: Counter::default(),
        sui_verified_events: Counter::default(),
        sui_refusals: Counter::default(),
        budget_refusals: Counter::default(),
        terminated_watchers: Family::default(),
    }
});

/// One request being measured; leaving the in-flight gauge when dropped (also on cancel).
struct InFlight {
    info: RequestInfo,
    started: Instant,
}

impl InFlight {
    fn start(info: RequestInfo) -> Self {
        let metrics = &*METRICS;
        if info.verb.read_only() {
            metrics.inflight_read_only.inc();
        } else {
            metrics.inflight_mutating.inc();
        }
        InFlight {
            info,
            started: Instant::now(),
        }
    }

    fn finish(self, code: u16) {
        let metrics = &*METRICS;
        let labels = RequestLabels {
            info: self.info,
            code,
        };
        metrics.requests.get_or_create(&labels).inc();
        metrics
            .durations
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let metrics = &*METRICS;
        if self.info.verb.read_only() {
            metrics.inflight_read_only.dec();
        } else {
            metrics.inflight_mutating.dec();
        }
    }
}

/// Wraps the request handler: answers `/metrics` itself and measures every other request.
pub(crate) async fn instrument<F, Fut>(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
    handler: F,
) -> Result<hyper::Response<ResponseBody>, Infallible>
where
    F: FnOnce(Arc<Shared>, hyper::Request<Incoming>) -> Fut,
    Fut: Future<Output = Result<hyper::Response<ResponseBody>, Infallible>>,
{
    if !ENABLED.load(Ordering::Relaxed) {
        // Off: no classification, no clock read, no atomics beyond this one load.
        if req.uri().path() == METRICS_PATH {
            return Ok(scrape(&shared, &req));
        }
        return handler(shared, req).await;
    }
    let content_type = http::header(req.headers(), "content-type");
    // Classified here, before the request waits for core's lock: the in-flight gauge counts
    // requests from their start, as kube-apiserver's does.
    let info = RequestInfo::parse(
        req.method().as_str(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
        content_type,
    );
    let in_flight = InFlight::start(info);
    let response = if req.uri().path() == METRICS_PATH {
        scrape(&shared, &req)
    } else {
        match handler(shared, req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    in_flight.finish(response.status().as_u16());
    Ok(response)
}

/// Counts what one watch poll sent; an ERROR event closing the stream is a 410 Expired (the
/// only way a poll both writes and closes).
pub(crate) fn watch_polled(poll: &WatchPoll, written: usize) {
    match poll {
        WatchPoll::Wrote(events) => {
            METRICS
                .watch_events
                .inc_by(u64::try_from(*events).unwrap_or(u64::MAX));
        }
        WatchPoll::Closed if written > 0 => {
            METRICS.watch_events.inc();
            METRICS.watch_expired.inc();
        }
        WatchPoll::Closed | WatchPoll::Idle => {}
    }
}

/// A request refused with 429 because the in-flight byte budget was full.
pub(crate) fn budget_refused() {
    METRICS.budget_refusals.inc();
}

/// A watch of `resource` closed because its client stopped reading (kube's
/// `apiserver_terminated_watchers_total`; label values are the served resources only).
pub(crate) fn watcher_terminated(resource: &str) {
    METRICS
        .terminated_watchers
        .get_or_create(&[("resource", resource.to_string())])
        .inc();
}

/// The light client released `events` staking events of the package (verified).
pub(crate) fn sui_light_client_events(events: usize) {
    METRICS
        .sui_verified_events
        .inc_by(u64::try_from(events).unwrap_or(u64::MAX));
}

/// The light client refused a node's data (failed verification, schema or rollback check).
pub(crate) fn sui_light_client_refused() {
    METRICS.sui_refusals.inc();
}

/// Store and ring figures read at scrape time.
struct Snapshot {
    objects: Vec<(ResourceId, usize)>,
    used_bytes: usize,
    max_bytes: usize,
    max_objects: usize,
    revision: u64,
    tokens: nautilus_core::token::TokenStats,
    nodes: NodeCounts,
    scheduler: SchedulerStats,
    sui: nautilus_core::api::SuiStatus,
}

/// Node counts by readiness (core's `NodeReadiness`, copied out under the lock).
#[derive(Clone, Copy, Debug, Default)]
struct NodeCounts {
    registered: usize,
    ready: usize,
    not_ready: usize,
    unreachable: usize,
}

fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The stake registry: its checkpoint, how long Sui has been silent, stakes by trust level.
fn register_sui(registry: &mut Registry, sui: &nautilus_core::api::SuiStatus) {
    if let Some(checkpoint) = sui.checkpoint {
        registry.register(
            "nautilus_sui_checkpoint",
            "The last Sui checkpoint whose staking events the registry applied",
            ConstGauge::new(i64::try_from(checkpoint).unwrap_or(i64::MAX)),
        );
    }
    if let Some(stale) = sui.stale_secs {
        registry.register(
            "nautilus_sui_seconds_since_progress",
            "Seconds since the enclave's Sui reader last made progress (the registry's lag; readiness degrades past --sui-stale-after)",
            ConstGauge::new(i64::try_from(stale).unwrap_or(i64::MAX)),
        );
    }
    let stakes = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    for (level, count) in ["relay-pushed", "node-read", "light-client"]
        .into_iter()
        .zip(sui.stakes_by_trust)
    {
        stakes.get_or_create(&[("trust", level)]).set(to_i64(count));
    }
    registry.register(
        "nautilus_stakes",
        "Stakes in the registry by the trust level of their source",
        stakes,
    );
}

fn scrape(shared: &Shared, req: &hyper::Request<Incoming>) -> hyper::Response<ResponseBody> {
    let head = ApiRequest {
        authorization: http::header(req.headers(), "authorization"),
        client_cert: req.extensions().get::<Arc<CertUser>>().map(|u| &**u),
        ..ApiRequest::new(Method::parse(req.method().as_str()), METRICS_PATH)
    };
    let snapshot = {
        let mut core = shared.lock();
        // Core decides who may read: the administrator only (a node's Seal token is 403).
        if let Err(refusal) = core.admit_admin_path(crate::server::now(), &head) {
            return http::to_hyper(refusal);
        }
        let store = core.store();
        Snapshot {
            objects: RESOURCES
                .iter()
                .map(|r| (r.id, store.count(r.id)))
                .collect(),
            used_bytes: store.used_bytes(),
            max_bytes: core.config().max_store_bytes,
            max_objects: core.config().max_objects,
            revision: store.revision(),
            tokens: core.token_stats(),
            nodes: {
                let n = core.node_readiness();
                NodeCounts {
                    registered: n.registered,
                    ready: n.ready,
                    not_ready: n.not_ready(),
                    unreachable: n.unreachable,
                }
            },
            scheduler: core.scheduler_stats(),
            sui: core.sui_status(crate::server::now()),
        }
    };
    if !matches!(req.method().as_str(), "GET" | "HEAD") {
        let error = Error::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({METRICS_PATH})"
        ));
        return http::to_hyper(ApiResponse::error(&error));
    }
    let ring = shared.ring().stats();
    let watches = shared.watches.open();
    let inflight = (shared.budget.in_use(), shared.budget.limit());
    let replica = shared.replicated.as_ref().map(|r| r.status());
    match encode(&snapshot, ring, watches, inflight, replica.as_ref()) {
        Ok(text) => http::to_hyper(ApiResponse {
            status: 200,
            content_type: prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            body: text.into_bytes(),
            warnings: Vec::new(),
            shows_revision: None,
            cache_control: None,
        }),
        Err(_) => http::to_hyper(ApiResponse::error(&Error::Internal(
            "encoding the metrics failed".into(),
        ))),
    }
}

/// Renders every family in the Prometheus text format (0.0.4).
fn encode(
    snapshot: &Snapshot,
    (ring_events, ring_capacity, ring_evicted): (usize, usize, u64),
    watches: usize,
    inflight: (usize, usize),
    replica: Option<&crate::replica::serving::Status>,
) -> Result<String, std::fmt::Error> {
    let metrics = &*METRICS;
    let mut registry = Registry::default();
    if let Some(replica) = replica {
        register_replica(&mut registry, replica);
    }
    registry.register(
        "apiserver_request_duration_seconds",
        "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and code",
        metrics.durations.clone(),
    );
    registry.register(
        "apiserver_request",
        "Counter of apiserver requests broken out for each verb, group, version, resource, subresource, scope and HTTP response code",
        metrics.requests.clone(),
    );
    registry.register(
        "apiserver_current_inflight_requests",
        "Requests being served now by request kind (a watch counts until its stream starts)",
        metrics.inflight.clone(),
    );
    registry.register(
        "apiserver_registered_watchers",
        "Number of currently open watch streams",
        ConstGauge::new(to_i64(watches)),
    );
    registry.register(
        "apiserver_watch_events",
        "Number of events sent in watch clients",
        metrics.watch_events.clone(),
    );
    registry.register(
        "nautilus_watchers_expired",
        "Watch streams closed with 410 Expired because they fell behind the watch ring",
        metrics.watch_expired.clone(),
    );
    registry.register(
        "apiserver_terminated_watchers",
        "Counter of watchers closed due to unresponsiveness",
        metrics.terminated_watchers.clone(),
    );
    registry.register(
        "nautilus_inflight_bytes",
        "Bytes held in flight for clients now: request bodies being read, responses and watch chunks not yet written",
        ConstGauge::new(to_i64(inflight.0)),
    );
    registry.register(
        "nautilus_inflight_bytes_budget",
        "Most bytes held in flight for clients (--inflight-bytes)",
        ConstGauge::new(to_i64(inflight.1)),
    );
    registry.register(
        "nautilus_inflight_refusals",
        "Requests answered 429 because the in-flight byte budget was full",
        metrics.budget_refusals.clone(),
    );
    registry.register(
        "nautilus_sui_light_client_events",
        "Staking events the Sui light client released after verifying them against the validator committee",
        metrics.sui_verified_events.clone(),
    );
    registry.register(
        "nautilus_sui_light_client_refusals",
        "Times the Sui light client refused a full node's data (failed proof or signature, schema, rollback) and moved to the next node",
        metrics.sui_refusals.clone(),
    );
    let objects = Family::<StorageLabels, Gauge>::default();
    for (resource, count) in &snapshot.objects {
        objects
            .get_or_create(&StorageLabels(*resource))
            .set(to_i64(*count));
    }
    registry.register(
        "apiserver_storage_objects",
        "Number of stored objects at the time of last check split by kind",
        objects,
    );
    let total: usize = snapshot.objects.iter().map(|(_, n)| n).sum();
    registry.register(
        "nautilus_store_objects",
        "Objects in the store, all kinds together",
        ConstGauge::new(to_i64(total)),
    );
    registry.register(
        "nautilus_store_objects_budget",
        "Most objects the store accepts (--max-objects)",
        ConstGauge::new(to_i64(snapshot.max_objects)),
    );
    registry.register(
        "nautilus_store_bytes",
        "Bytes charged against the store's byte budget",
        ConstGauge::new(to_i64(snapshot.used_bytes)),
    );
    registry.register(
        "nautilus_store_bytes_budget",
        "Most bytes the store accepts (--max-store-bytes)",
        ConstGauge::new(to_i64(snapshot.max_bytes)),
    );
    registry.register(
        "nautilus_store_revision",
        "The store's current revision (resourceVersion of the latest write)",
        ConstGauge::new(i64::try_from(snapshot.revision).unwrap_or(i64::MAX)),
    );
    registry.register(
        "nautilus_watch_ring_events",
        "Events held in the watch ring",
        ConstGauge::new(to_i64(ring_events)),
    );
    registry.register(
        "nautilus_watch_ring_capacity",
        "Events the watch ring holds before evicting the oldest (--watch-ring)",
        ConstGauge::new(to_i64(ring_capacity)),
    );
    registry.register(
        "nautilus_watch_ring_evictions",
        "Events evicted from the watch ring; a watch resuming before them gets 410 Expired",
        ConstCounter::new(ring_evicted),
    );
    let tokens = Family::<TokenLabels, Counter>::default();
    for (result, count) in [
        ("accepted", snapshot.tokens.accepted_verified),
        ("cached", snapshot.tokens.accepted_cached),
    ] {
        tokens.get_or_create(&TokenLabels(result, "")).inc_by(count);
    }
    for (reason, count) in snapshot.tokens.rejected_by_reason() {
        tokens
            .get_or_create(&TokenLabels("rejected", reason))
            .inc_by(count);
    }
    registry.register(
        "nautilus_token_validations",
        "Seal-token validations by result: accepted (signature verified), cached (signature from the cache, every rule rechecked), rejected (with the reason)",
        tokens,
    );
    registry.register(
        "nautilus_nodes_registered",
        "Node objects in the store",
        ConstGauge::new(to_i64(snapshot.nodes.registered)),
    );
    let nodes = Family::<Label, Gauge>::default();
    nodes
        .get_or_create(&Label("condition", "Ready"))
        .set(to_i64(snapshot.nodes.ready));
    nodes
        .get_or_create(&Label("condition", "NotReady"))
        .set(to_i64(snapshot.nodes.not_ready));
    registry.register(
        "nautilus_nodes",
        "Registered nodes by readiness: Ready (heartbeats within the grace period) or NotReady (heartbeats stopped, or never sent)",
        nodes,
    );
    registry.register(
        "nautilus_nodes_unreachable",
        "Nodes marked Ready=Unknown with the unreachable taints (heartbeats stopped)",
        ConstGauge::new(to_i64(snapshot.nodes.unreachable)),
    );
    register_scheduler(&mut registry, &snapshot.scheduler);
    register_sui(&mut registry, &snapshot.sui);
    registry.register(
        "nautilus_log_lines_dropped",
        "Log lines dropped because the log sink (the proxy) was slow or unreachable",
        ConstCounter::new(crate::log_sink::dropped()),
    );
    registry.register(
        "nautilus_log_sink_connects",
        "Log streams opened to the proxy (the first and every reconnect)",
        ConstCounter::new(crate::log_sink::connects()),
    );
    registry.register(
        "nautilus_request_metrics_enabled",
        "1 when requests are measured (--metrics), 0 when the request families are off",
        ConstGauge::new(i64::from(ENABLED.load(Ordering::Relaxed))),
    );
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The scheduler's families, under kube-scheduler's names where they mean the same.
/// A replica's role, term, log and lag (issue 17).
fn register_replica(registry: &mut Registry, status: &crate::replica::serving::Status) {
    let role = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for name in ["leader", "follower", "learner", "candidate", "shutdown"] {
        role.get_or_create(&vec![("role", name)])
            .set(i64::from(status.role == name));
    }
    registry.register(
        "nautilus_replica_role",
        "This replica's role in the replicated cluster (1 for the current one)",
        role,
    );
    let gauges: [(&str, &str, u64); 6] = [
        (
            "nautilus_replica_slot",
            "This replica's slot",
            u64::from(status.slot),
        ),
        (
            "nautilus_replica_term",
            "The raft term this replica is in",
            status.term,
        ),
        (
            "nautilus_replica_last_log_index",
            "The last log index this replica holds",
            status.last_log,
        ),
        (
            "nautilus_replica_applied_index",
            "The last log index this replica applied",
            status.applied,
        ),
        (
            "nautilus_replica_applied_revision",
            "The store revision this replica applied (what it shows)",
            status.revision,
        ),
        (
            "nautilus_replica_leader_slot",
            "The slot of the leader this replica knows of (-1: none)",
            status.leader_slot.map_or(u64::MAX, u64::from),
        ),
    ];
    for (name, help, value) in gauges {
        let value = if value == u64::MAX {
            -1
        } else {
            i64::try_from(value).unwrap_or(i64::MAX)
        };
        registry.register(name, help, ConstGauge::new(value));
    }
    let lag = Family::<Vec<(&'static str, String)>, Gauge>::default();
    for (slot, behind) in &status.lag {
        lag.get_or_create(&vec![("peer_slot", slot.to_string())])
            .set(i64::try_from(*behind).unwrap_or(i64::MAX));
    }
    registry.register(
        "nautilus_replica_lag_entries",
        "On the leader: log entries each other replica is behind",
        lag,
    );
    let counters: [(&str, &str, u64); 5] = [
        (
            "nautilus_replica_read_index_rounds",
            "Read index rounds this replica ran (one serves every read that arrived before it began)",
            status.read_rounds,
        ),
        (
            "nautilus_replica_forwarded",
            "Client requests this replica passed on to the leader",
            status.forwarded,
        ),
        (
            "nautilus_replica_leader_changes",
            "Times the leader this replica knows of changed",
            status.leader_changes,
        ),
        (
            "nautilus_replica_peer_refusals",
            "Peers refused because their attestation did not verify",
            status.peer_refusals,
        ),
        (
            "nautilus_replica_rollbacks_detected",
            "On the leader: replicas that joined holding less of their sealed log than their slot had acknowledged (a host served an older copy, or lost it)",
            status.rollbacks_detected,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
}

fn register_scheduler(registry: &mut Registry, stats: &SchedulerStats) {
    let attempts = Family::<AttemptLabels, Counter>::default();
    for (result, count) in [
        ("scheduled", stats.attempts_scheduled),
        ("unschedulable", stats.attempts_unschedulable),
        ("error", stats.attempts_error),
    ] {
        attempts.get_or_create(&AttemptLabels(result)).inc_by(count);
    }
    registry.register(
        "scheduler_schedule_attempts",
        "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem",
        attempts,
    );
    let pending = Family::<Label, Gauge>::default();
    pending
        .get_or_create(&Label("queue", "active"))
        .set(to_i64(stats.pending_active));
    pending
        .get_or_create(&Label("queue", "unschedulable"))
        .set(to_i64(stats.pending_unschedulable));
    registry.register(
        "scheduler_pending_pods",
        "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'unschedulable' means number of pods that fit nowhere, waiting for a change or their backoff",
        pending,
    );
    registry.register(
        "scheduler_pod_scheduling_sli_duration_seconds",
        "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue to its bind, possibly over several attempts",
        SchedulingLatency(stats.latency.clone()),
    );
    registry.register(
        "nautilus_scheduler_nodes",
        "Nodes in the scheduler's cache",
        ConstGauge::new(to_i64(stats.nodes)),
    );
    registry.register(
        "nautilus_scheduler_queue_overflowed",
        "1 while the scheduling queue is over its budget (--scheduler-queue-capacity) and pending pods are found by periodic scans of the store",
        ConstGauge::new(i64::from(stats.queue_overflowed)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_labels_encode_kube_names() {
        let mut registry = Registry::default();
        let family = Family::<RequestLabels, Counter>::default();
        let count = |path: &str, code: u16| {
            family
                .get_or_create(&RequestLabels {
                    info: RequestInfo::parse("GET", path, "", None),
                    code,
                })
                .inc();
        };
        count("/apis/apps/v1/namespaces/d/deployments", 200);
        // A second group-version of a stored kind is labelled with its own, as kube labels it.
        count("/apis/events.k8s.io/v1/namespaces/d/events", 200);
        count("/api/v1/namespaces/d/events", 200);
        // A custom resource gets no resource label.
        count("/apis/example.com/v1/namespaces/d/widgets", 404);
        registry.register("apiserver_request", "help", family);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "apiserver_request_total{verb=\"LIST\",group=\"apps\",version=\"v1\",resource=\"deployments\",subresource=\"\",scope=\"namespace\",code=\"200\"} 1",
            "apiserver_request_total{verb=\"LIST\",group=\"events.k8s.io\",version=\"v1\",resource=\"events\",subresource=\"\",scope=\"namespace\",code=\"200\"} 1",
            "apiserver_request_total{verb=\"LIST\",group=\"\",version=\"v1\",resource=\"events\",subresource=\"\",scope=\"namespace\",code=\"200\"} 1",
            "apiserver_request_total{verb=\"LIST\",group=\"\",version=\"\",resource=\"\",subresource=\"\",scope=\"\",code=\"404\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn scheduler_families_use_kube_scheduler_names_and_cumulative_buckets() {
        let mut counts = [0; LATENCY_BUCKETS_MICROS.len() + 1];
        // 2 binds within 1 ms, 3 within (5 ms, 10 ms], 1 beyond the last bound.
        counts[0] = 2;
        counts[2] = 3;
        counts[LATENCY_BUCKETS_MICROS.len()] = 1;
        let stats = SchedulerStats {
            attempts_scheduled: 5,
            attempts_unschedulable: 2,
            attempts_error: 0,
            pending_active: 4,
            pending_unschedulable: 1,
            nodes: 3,
            latency: LatencyHistogram {
                counts,
                sum_micros: 2_500_000,
                count: 6,
            },
            ..SchedulerStats::default()
        };
        let mut registry = Registry::default();
        register_scheduler(&mut registry, &stats);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE scheduler_schedule_attempts_total counter",
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 5",
            "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"} 2",
            "scheduler_schedule_attempts_total{result=\"error\",profile=\"default-scheduler\"} 0",
            "scheduler_pending_pods{queue=\"active\"} 4",
            "scheduler_pending_pods{queue=\"unschedulable\"} 1",
            "# TYPE scheduler_pod_scheduling_sli_duration_seconds histogram",
            "scheduler_pod_scheduling_sli_duration_seconds_sum 2.5",
            "scheduler_pod_scheduling_sli_duration_seconds_count 6",
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"0.001\"} 2",
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"0.005\"} 2",
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"0.01\"} 5",
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"60\"} 5",
            "scheduler_pod_scheduling_sli_duration_seconds_bucket{le=\"+Inf\"} 6",
            "nautilus_scheduler_nodes 3",
            "nautilus_scheduler_queue_overflowed 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn storage_labels_name_groups_like_kube() {
        let objects = Family::<StorageLabels, Gauge>::default();
        objects
            .get_or_create(&StorageLabels(ResourceId::Pods))
            .set(3);
        objects
            .get_or_create(&StorageLabels(ResourceId::Deployments))
            .set(1);
        let mut registry = Registry::default();
        registry.register("apiserver_storage_objects", "help", objects);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("apiserver_storage_objects{resource=\"pods\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("apiserver_storage_objects{resource=\"deployments.apps\"} 1"),
            "{text}"
        );
    }
}
