//! Budgets and policy the runtime configures at start; every growing structure reads its bound here.

/// Core configuration. Defaults are documented on each field.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most objects the store holds, all kinds together. Default 250,000.
    pub max_objects: usize,
    /// Most bytes of stored objects (JSON plus keys and per-entry overhead). Default 1 GiB.
    pub max_store_bytes: usize,
    /// Largest accepted request body. Default 3 MiB, like kube-apiserver.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted in a body. Default 64.
    pub max_json_depth: usize,
    /// Events kept in the watch ring; older revisions answer 410 Expired. Default 10,000.
    pub watch_ring_capacity: usize,
    /// Bytes of object versions the watch ring may hold (each event counts its object and its
    /// previous version); past it the oldest events go, as past the count. Without it, 10,000
    /// events of 1.5 MB objects would pin 30 GB. Default 64 MiB: the whole count of ~2 KB
    /// objects.
    pub watch_ring_bytes: usize,
    /// Most gaps in revisions the watch ring remembers (one per restart its events span: the
    /// revisions a recovered run skipped); past it the oldest gap is forgotten by expiring the
    /// events before it, so a reader there still gets 410. Default 64.
    pub watch_ring_gaps: usize,
    /// Exemplars kept per resource for packing stored objects (`packing.rs`): objects are
    /// LZ4-compressed against one of them. 0 stores every object whole. Default 4.
    pub exemplars_per_resource: usize,
    /// Most concurrent watches. Default 10,000.
    pub max_watches: usize,
    /// Most change records kept for the runtime while it records them
    /// (`Cluster::record_changes`) and has not taken them yet; past it a write is refused
    /// with 429. The records share their bytes with the store. Default 100,000.
    pub max_pending_changes: usize,
    /// SHA-256 of the admin bearer token; `None` disables admin access.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// Seconds between BOOKMARK events on watches that ask for them. Default 60.
    pub bookmark_interval_secs: u64,
    /// Seconds without a heartbeat before a node turns `Ready=Unknown` and is tainted
    /// unreachable. Default 40 (kube-controller-manager's node-monitor-grace-period).
    pub node_grace_secs: u64,
    /// Seconds an Event lives after its last write (create or update), whatever its
    /// timestamps say. Default 3,600 (kube-apiserver's `--event-ttl`, an etcd lease per write).
    pub event_ttl_secs: u64,
    /// Most Events the store holds (the expiry index's budget); a create beyond it is 507.
    /// Default 100,000.
    pub max_events: usize,
    /// Event writes (create, update, patch) each node identity may make per second, refilled
    /// continuously (kube's EventRateLimit admission, limit type `User`). Default 50, kubelet's
    /// own `eventRecordQPS`.
    pub event_qps: u32,
    /// Event writes a node identity may make at once before `event_qps` applies. Default 100,
    /// kubelet's `eventBurst`.
    pub event_burst: u32,
    /// Node identities whose token buckets are kept; the least recently used is forgotten (and
    /// starts full again) when more write events, as kube's LRU cache does. Default 4,096.
    pub event_rate_identities: usize,
    /// Percent of the store's object and byte budgets that one node identity's Events may
    /// hold; beyond it that node's Event writes get 429 until its Events expire. Default 1.
    pub node_event_share_percent: u8,
    /// Percent of the store's object and byte budgets that all node identities' Events together
    /// may hold. Default 25.
    pub node_events_total_percent: u8,
    /// SHA-256 of the Sui event relay's bearer token; `None`: only the admin may push events.
    pub relay_token_sha256: Option<[u8; 32]>,
    /// The Move package whose staking events build the stake registry; `None` refuses pushes.
    pub sui_package: Option<[u8; 32]>,
    /// Smallest stake, in MIST, that admits a worker. Default 1 SUI (1,000,000,000).
    pub min_stake: u64,
    /// Longest Seal token lifetime (`exp - iat`) accepted. Default 86,400 s.
    pub token_max_lifetime_secs: u64,
    /// Verified Seal tokens remembered so repeated calls skip the signature check (oldest
    /// forgotten first). Default 16,384 (under 7 MiB at the 2 KiB token limit); 0 disables it.
    pub token_cache_entries: usize,
    /// How far a worker registration's `timestamp` may be from now before it is taken as a
    /// replay. Default 300 s.
    pub registration_skew_secs: u64,
    /// The IPv4 range Service cluster IPs come from (`--service-cidr`). Default 10.43.0.0/16, as
    /// k3s; its first address is the `kubernetes` Service's.
    pub service_cidr: crate::net::ServiceCidr,
    /// The range Service node ports come from (`--service-node-port-range`). Default
    /// 30000-32767, as kube-apiserver.
    pub node_port_range: crate::net::PortRange,
    /// Most stakes the registry holds. Default 100,000.
    pub max_stakes: usize,
    /// Most Sui events in one push or batch; a larger one is refused whole. Default 10,000.
    pub max_stake_events_per_push: usize,
    /// Largest single Sui event (its estimated JSON size). Default 16 KiB: a staking event is a
    /// few hundred bytes.
    pub max_stake_event_bytes: usize,
    /// Most `(txDigest, eventSeq)` pairs remembered for the last applied checkpoint (what makes
    /// a re-sent event count once). Default 100,000.
    pub max_seen_stake_events: usize,
    /// Largest page a LIST returns when the client asks for more (or none). Default 500,000.
    pub max_list_page: usize,
    /// Most pending pods the scheduler queues (active and unschedulable together). Pods beyond
    /// it are not lost: a periodic scan of the store finds them. Default 50,000.
    pub scheduler_queue_capacity: usize,
    /// Most scheduling attempts per `handle_timeout` call, which bounds how long one call holds
    /// the core. Default 1,000.
    pub scheduler_batch: usize,
    /// Seconds after which unschedulable pods are retried even if nothing changed (kube's
    /// `podMaxInUnschedulablePodsDuration` is 300). Default 60.
    pub scheduler_retry_secs: u64,
    /// Seconds between scans of the store for pending pods while the queue is over budget.
    /// Default 5.
    pub scheduler_rescan_secs: u64,
    /// Most keys the workload controllers' work queues hold; the change feed pauses while they
    /// are full. Default 100,000.
    pub controller_queue_limit: usize,
    /// Most change events the controllers take from the watch ring per batch. Default 10,000.
    pub controller_events_per_run: usize,
    /// Most controller syncs per `handle_timeout`; the rest wait for the next call.
    /// Default 10,000.
    pub controller_syncs_per_run: usize,
    /// Most pods a ReplicaSet creates or deletes in one sync (kube-controller-manager's
    /// `burstReplicas`). Default 500.
    pub controller_burst: usize,
    /// Lowest trust level whose stakes admit workers (`--min-trust-level`). Default
    /// `relay-pushed` (development); production deployments set `light-client`.
    pub min_trust_level: crate::stake::TrustLevel,
    /// Seconds without Sui progress before readiness reports the stake registry degraded.
    /// Default 600 (10 min).
    pub sui_stale_after_secs: u64,
    /// Seconds without Sui progress after which new registrations are refused. Default 3,600.
    pub sui_max_stale_secs: u64,
    /// Most references (Secrets, ConfigMaps, claims, service accounts named by pods) the node
    /// authorizer's index holds, all pods together; a pod write beyond it is refused with 507.
    /// Default 1,000,000 (a pod typically names 1 to 5).
    pub max_pod_references: usize,
    /// Most CustomResourceDefinitions installed at once; a create beyond it is refused with
    /// 507. Default 1,000.
    pub max_crds: usize,
    /// Most bytes of compiled CRD schemas (and their published forms), all definitions
    /// together; a CRD write beyond it is refused with 507. Default 64 MiB.
    pub max_crd_schema_bytes: usize,
    /// PEM certificate(s) a pod needs to verify the API server, published as `ca.crt` in every
    /// namespace's `kube-root-ca.crt` ConfigMap (kube-controller-manager's root-CA publisher).
    /// `None` publishes nothing. Default `None`.
    pub root_ca_pem: Option<alloc::string::String>,
    /// The cluster CA, whose key the runtime derives inside the enclave: kube-controller-manager's
    /// kubelet signers sign approved kubelet CSRs with it, it is published as `client-ca-file`
    /// in kube-system's `extension-apiserver-authentication` ConfigMap, and client
    /// certificates it issued authenticate in enclave TLS mode. `None` signs nothing. Default
    /// `None`.
    pub cluster_ca: Option<crate::csr::authority::ClusterCa>,
    /// The enclave terminates TLS itself (enclave TLS mode) and verifies client certificates
    /// against [`Config::cluster_ca`]: only then do certificates issued to K3s agents
    /// authenticate, so only then are they issued. Default `false`.
    pub enclave_tls: bool,
    /// The signers' certificate lifetime (`--cluster-signing-duration`), seconds; a request's
    /// `expirationSeconds` may shorten it (to no less than 10 minutes). Default one year.
    pub cluster_signing_duration_secs: u64,
    /// Where pods reach the API server (kube-apiserver's `--advertise-address` and secure
    /// port): the `kubernetes` Service's Endpoints and EndpointSlice list it, as kube's endpoint
    /// reconciler writes them. `None` writes neither. Default `None`.
    pub advertise_address: Option<core::net::SocketAddrV4>,
    /// Seconds between compactions of LIST snapshots (kube-apiserver's
    /// `--etcd-compaction-interval`): a `continue` token expires one to two intervals after its
    /// first page, with 410 and a token that continues inconsistently. 0 never expires them
    /// by time. Default 300.
    pub compaction_interval_secs: u64,
    /// CEL cost units one ValidatingAdmissionPolicy evaluation (one binding and one param: its
    /// variables, match conditions, validations and messages together) may spend before it
    /// fails with kube's `operation cancelled: actual cost limit exceeded`. A unit is one
    /// evaluation step or one element a function walks. Default 1,000,000 (kube's per-expression
    /// limit).
    pub admission_policy_cost_budget: u64,
    /// The ServiceAccount token issuer (`--service-account-issuer`): the `iss` of the tokens
    /// TokenRequest issues, the only one accepted, and the API audience (kube's default for
    /// `--api-audiences`). Default `https://kubernetes.default.svc.cluster.local`.
    pub service_account_issuer: alloc::string::String,
    /// The key ServiceAccount tokens are signed with, which the runtime derives inside the
    /// enclave. `None` serves no TokenRequest and no OIDC discovery, and authenticates no
    /// ServiceAccount token. Default `None`.
    pub service_account_key: Option<crate::serviceaccount::ServiceAccountKey>,
    /// ServiceAccount tokens whose verified signature is remembered, so a token's ECDSA check
    /// runs once (its times, audiences and bound objects are still checked on every request).
    /// Default 4,096 (about 12 MiB at most: a token and its claims are about 3 KiB); 0 disables
    /// it.
    pub service_account_token_cache_entries: usize,
    /// The key `continue` tokens are signed with. Replicas of one cluster share it (the
    /// runtime derives it from the cluster's data key), so a token one replica issued
    /// continues on another. `None` derives one from the run's seed, so a new run refuses an
    /// earlier run's tokens. Default `None`.
    pub continue_key: Option<[u8; 32]>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_objects: 250_000,
            max_store_bytes: 1 << 30,
            max_body_bytes: 3 << 20,
            max_json_depth: 64,
            watch_ring_capacity: 10_000,
            watch_ring_bytes: 64 << 20,
            watch_ring_gaps: 64,
            exemplars_per_resource: 4,
            max_watches: 10_000,
            max_pending_changes: 100_000,
            admin_token_sha256: None,
            bookmark_interval_secs: 60,
            max_list_page: 500_000,
            node_grace_secs: 40,
            event_ttl_secs: 3600,
            max_events: 100_000,
            event_qps: 50,
            event_burst: 100,
            event_rate_identities: 4096,
            node_event_share_percent: 1,
            node_events_total_percent: 25,
            relay_token_sha256: None,
            sui_package: None,
            min_stake: 1_000_000_000,
            token_max_lifetime_secs: 86_400,
            token_cache_entries: 16_384,
            registration_skew_secs: 300,
            service_cidr: crate::net::ServiceCidr::K3S,
            node_port_range: crate::net::PortRange::DEFAULT,
            max_stakes: 100_000,
            max_stake_events_per_push: 10_000,
            max_stake_event_bytes: 16 << 10,
            max_seen_stake_events: 100_000,
            scheduler_queue_capacity: 50_000,
            scheduler_batch: 1_000,
            scheduler_retry_secs: 60,
            scheduler_rescan_secs: 5,
            controller_queue_limit: 100_000,
            controller_events_per_run: 10_000,
            controller_syncs_per_run: 10_000,
            controller_burst: 500,
            min_trust_level: crate::stake::TrustLevel::RelayPushed,
            sui_stale_after_secs: 600,
            sui_max_stale_secs: 3600,
            max_pod_references: 1_000_000,
            max_crds: 1_000,
            max_crd_schema_bytes: 64 << 20,
            root_ca_pem: None,
            cluster_ca: None,
            enclave_tls: false,
            cluster_signing_duration_secs: crate::csr::authority::DEFAULT_CERT_TTL_SECS,
            advertise_address: None,
            compaction_interval_secs: 300,
            admission_policy_cost_budget: 1_000_000,
            service_account_issuer: crate::serviceaccount::DEFAULT_ISSUER.into(),
            service_account_key: None,
            service_account_token_cache_entries: 4_096,
            continue_key: None,
        }
    }
}

impl Config {
    /// kube's `--api-audiences`, which default to the service-account issuer: the audiences a
    /// token must have one of to authenticate a request, and those a TokenRequest gets by
    /// default.
    pub fn api_audiences(&self) -> alloc::vec::Vec<&str> {
        alloc::vec![self.service_account_issuer.as_str()]
    }

    /// The JWKS URL the discovery document names: kube's default, `https://` + the external
    /// address + `/openid/v1/jwks`, with the advertised address; without one, under the issuer.
    pub fn jwks_uri(&self) -> alloc::string::String {
        match self.advertise_address {
            Some(address) => {
                alloc::format!("https://{address}{}", crate::serviceaccount::JWKS_PATH)
            }
            None => alloc::format!(
                "{}{}",
                self.service_account_issuer.trim_end_matches('/'),
                crate::serviceaccount::JWKS_PATH
            ),
        }
    }
}
