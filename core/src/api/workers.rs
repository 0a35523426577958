//! The stakers' side of the API: the seed's worker endpoints (`register-worker`, `heartbeat`,
//! `sui-events`, with their exact wire formats), Seal-token identities on the Kubernetes API
//! restricted like kube-apiserver's NodeRestriction, and what a revoked stake does to its node.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::request::{ApiRequest, ApiResponse, Method};
use super::{Cluster, Outcome};
use crate::auth::Identity;
use crate::cluster::WriteContext;
use crate::controllers::events::Involved;
use crate::controllers::node_lifecycle::{Toleration, toleration_seconds};
use crate::resource::ResourceId;
use crate::stake::RevocationReason;
use crate::store::ObjectKey;
use crate::token::{NodeIdentity, hex32};
use crate::{Error, UnixTime, json as j};

/// Taint put on the node of a withdrawn or slashed stake.
pub(crate) const STAKE_REVOKED_TAINT: &str = "nautilus.io/stake-revoked";
/// Annotations a registration writes on the Node.
const ANNOTATION_ADDRESS: &str = "nautilus.io/staker-address";
const ANNOTATION_STAKE: &str = "nautilus.io/stake-id";
const ANNOTATION_TRUST: &str = "nautilus.io/stake-trust-level";
/// Largest seed message body (they are a few hundred bytes).
const MAX_SEED_BODY: usize = 64 << 10;

/// The seed's registration and heartbeat bodies (extra fields a Go worker sends are skipped).
#[derive(Deserialize)]
struct SeedMessage<'a> {
    node_id: &'a str,
    seal_token: &'a str,
    timestamp: u64,
}

/// Which nodes each stake registered, so a revocation reaches them: learned from the nodes'
/// `nautilus.io/stake-id` annotation as node writes go by (which a node cannot change itself).
#[derive(Debug, Default)]
pub(crate) struct Registrations {
    by_stake: BTreeMap<[u8; 32], BTreeSet<String>>,
    by_node: BTreeMap<String, [u8; 32]>,
    /// When the runtime's own Sui reader started (`None`: push only).
    sui_reader_since: Option<UnixTime>,
}

impl Registrations {
    /// Notes node `name` as written (`None`: deleted), registered to the stake its annotation
    /// names, if any. O(log n).
    pub(crate) fn observe(&mut self, name: &str, node: Option<&Value>) {
        let stake = node
            .and_then(|n| n.pointer("/metadata/annotations"))
            .and_then(|a| a.get(ANNOTATION_STAKE))
            .and_then(Value::as_str)
            .and_then(crate::token::parse_hex32);
        if self.by_node.get(name) == stake.as_ref() {
            return;
        }
        if let Some(old) = self.by_node.remove(name)
            && let Some(nodes) = self.by_stake.get_mut(&old)
        {
            nodes.remove(name);
            if nodes.is_empty() {
                self.by_stake.remove(&old);
            }
        }
        if let Some(stake) = stake {
            self.by_node.insert(name.into(), stake);
            self.by_stake.entry(stake).or_default().insert(name.into());
        }
    }

    /// The stake node `name` is registered to.
    pub(crate) fn stake_of(&self, name: &str) -> Option<[u8; 32]> {
        self.by_node.get(name).copied()
    }

    /// The stake of every registered node, to compare two clusters.
    #[cfg(test)]
    pub(crate) fn fingerprint(&self) -> alloc::string::String {
        alloc::format!("{:?} {:?}", self.by_stake, self.by_node)
    }
}

/// An error on a seed endpoint, in the seed's JSON shape rather than a Kubernetes `Status`.
pub(super) fn seed_error(error: &Error) -> ApiResponse {
    let body = json!({"status": "error", "code": error.code(), "reason": error.reason(), "message": error.message()});
    ApiResponse::json(error.code(), j::to_vec(&body))
}

fn worker_method_not_allowed(endpoint: &str) -> Error {
    Error::MethodNotAllowed(alloc::format!("only POST is served on /api/v1/{endpoint}"))
}

impl Cluster {
    /// `POST /api/v1/{register-worker|heartbeat|sui-events}`.
    pub(super) fn handle_worker(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        endpoint: &str,
    ) -> Outcome {
        if req.body_too_large {
            return Outcome::Response(seed_error(&Error::TooLarge(alloc::format!(
                "the request body is larger than the limit of {} bytes",
                self.config.max_body_bytes
            ))));
        }
        let result = match (req.method, endpoint) {
            (Method::Post, "register-worker") => self.register_worker(now, req),
            (Method::Post, "heartbeat") => self.heartbeat(now, req),
            (Method::Post, "sui-events") => self.push_sui_events(now, req),
            (Method::Get, "sui-events") => self.sui_events_position(now, req),
            _ => Err(worker_method_not_allowed(endpoint)),
        };
        Outcome::Response(result.unwrap_or_else(|e| seed_error(&e)))
    }

    /// What a seed endpoint decides before its body is read: the method, and a credential that
    /// authenticates (the Seal token of `X-Seal-Token` for registration and heartbeats, for any
    /// node: the body names the node and is checked with it; the relay's bearer for Sui events).
    pub(super) fn admit_worker_head(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        endpoint: &str,
    ) -> Result<(), Error> {
        match (req.method, endpoint) {
            (Method::Post, "register-worker" | "heartbeat") => {
                let token = req.seal_token.ok_or_else(|| {
                    Error::Unauthorized("the X-Seal-Token header is missing".into())
                })?;
                self.tokens
                    .validate(token.trim(), now, None, &self.stakes)
                    .map(drop)
                    .map_err(Error::from)
            }
            (Method::Post | Method::Get, "sui-events") => self.require_relay(now, req),
            _ => Err(worker_method_not_allowed(endpoint)),
        }
    }

    /// Parses and authenticates a seed message: header and body tokens agree, the timestamp is
    /// fresh, and the token is valid for the node it names.
    fn seed_message(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
    ) -> Result<(String, NodeIdentity), Error> {
        if req.body.len() > MAX_SEED_BODY {
            return Err(Error::TooLarge(alloc::format!(
                "the body is larger than {MAX_SEED_BODY} bytes"
            )));
        }
        crate::json::check_depth(req.body, 16)?;
        let mut scratch = [0u8; 2048];
        let (message, _) =
            serde_json_core::from_slice_escaped::<SeedMessage<'_>>(req.body, &mut scratch)
                .map_err(|e| {
                    Error::BadRequest(alloc::format!(
                        "the body must be {{\"node_id\",\"seal_token\",\"timestamp\"}}: {e}"
                    ))
                })?;
        let header = req
            .seal_token
            .ok_or_else(|| Error::Unauthorized("the X-Seal-Token header is missing".into()))?;
        if header.trim() != message.seal_token {
            return Err(Error::Unauthorized(
                "the X-Seal-Token header and the body's seal_token differ".into(),
            ));
        }
        let skew = self.config.registration_skew_secs;
        let now_secs = now.secs();
        if message.timestamp.saturating_add(skew) < now_secs
            || message.timestamp > now_secs.saturating_add(skew)
        {
            return Err(Error::Unauthorized(alloc::format!(
                "the message timestamp {} is more than {skew} s from the server's time {now_secs}; replayed or clock skew",
                message.timestamp
            )));
        }
        let node =
            self.tokens
                .validate(message.seal_token, now, Some(message.node_id), &self.stakes)?;
        Ok((message.node_id.to_string(), node))
    }

    fn register_worker(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
    ) -> Result<ApiResponse, Error> {
        let (node_name, identity) = self.seed_message(now, req)?;
        self.check_stake_trust(&identity)?;
        self.check_sui_fresh(now)?;
        // Optional extras (capacity, labels, addresses) need a tree; the fixed part was parsed above.
        let extras: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
        let key = ObjectKey::new(ResourceId::Nodes, "", &node_name);
        let existing = self
            .store
            .get(&key)
            .map(|o| serde_json::from_slice::<Value>(&o.json.bytes()))
            .transpose()
            .map_err(|e| Error::Internal(alloc::format!("{e}")))?;
        if let Some(existing) = &existing {
            let holder = j::str_at(
                existing,
                &alloc::format!(
                    "/metadata/annotations/{}",
                    ANNOTATION_STAKE.replace('/', "~1")
                ),
            );
            if !holder.is_empty() && holder != hex32(&identity.stake_id) {
                return Err(Error::Conflict {
                    resource: "nodes".into(),
                    name: node_name,
                    detail: "the node is registered to another stake".into(),
                });
            }
        }
        let stamp = now.rfc3339();
        let mut labels = Map::new();
        labels.insert(
            "kubernetes.io/hostname".into(),
            Value::from(node_name.as_str()),
        );
        labels.insert("kubernetes.io/os".into(), Value::from("linux"));
        if let Some(extra) = extras.get("labels").and_then(Value::as_object) {
            for (k, v) in extra.iter().filter(|(_, v)| v.is_string()).take(64) {
                labels.insert(k.clone(), v.clone());
            }
        }
        let capacity = extras
            .get("capacity")
            .filter(|c| c.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"cpu": "2", "memory": "4Gi", "pods": "110"}));
        let addresses = extras
            .get("addresses")
            .filter(|a| a.is_array())
            .cloned()
            .unwrap_or_else(|| json!([]));
        let is_new = existing.is_none();
        let before = existing.clone();
        let mut node = existing.unwrap_or_else(|| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}, "spec": {}}));
        if let Some(meta) = node.get_mut("metadata").and_then(Value::as_object_mut) {
            let existing_labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(map) = existing_labels.as_object_mut() {
                map.extend(labels);
            }
        }
        stamp_stake(&mut node, &identity);
        // The worker's labels meet NodeRestriction's allowlist, as a kubelet's would.
        crate::admission::node_restriction::check_registration_labels(
            &node_name,
            before.as_ref(),
            &node,
        )?;
        if let Some(map) = node.as_object_mut() {
            map.insert(
                "status".into(),
                json!({
                    "capacity": capacity.clone(),
                    "allocatable": capacity,
                    "addresses": addresses,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}],
                    "nodeInfo": {"kubeletVersion": "v1.32.0+k3s1", "kubeProxyVersion": "v1.32.0+k3s1", "operatingSystem": "linux",
                        "architecture": "amd64", "containerRuntimeVersion": "containerd://1.7", "osImage": "K3s-DaaS worker",
                        "kernelVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
                }),
            );
        }
        let request = WriteContext::request(now, None);
        if is_new {
            self.create_internal(&request, ResourceId::Nodes, "", &mut node, "kubelet")?;
        } else {
            self.write_existing(&request, &key, &mut node)?;
        }
        self.finish_registration(now, &identity, &node)?;
        let body = json!({
            "status": "registered",
            "node_id": node_name,
            "message": "Worker node registered with Seal token",
        });
        Ok(ApiResponse::json(200, j::to_vec(&body)))
    }

    /// A kubelet's own `POST /api/v1/nodes` (by its Seal token or its cluster-CA certificate,
    /// NodeRestriction passed): what `register-worker` checks and writes, on the kubelet's
    /// Node before it is stored — a stake trusted enough, Sui fresh, and the enclave's record
    /// of the stake in the annotations (which the node itself may not set).
    pub(crate) fn stamp_self_registration(
        &self,
        now: UnixTime,
        identity: &NodeIdentity,
        node: &mut Value,
    ) -> Result<(), Error> {
        self.check_stake_trust(identity)?;
        self.check_sui_fresh(now)?;
        stamp_stake(node, identity);
        Ok(())
    }

    /// After a Node was registered (by `register-worker` or by its kubelet's own create):
    /// its Lease and the registration event.
    pub(crate) fn finish_registration(
        &mut self,
        now: UnixTime,
        identity: &NodeIdentity,
        node: &Value,
    ) -> Result<(), Error> {
        let name = j::string_at(node, "/metadata/name");
        self.renew_lease(now, &name)?;
        let involved = Involved::of(node);
        let message = alloc::format!(
            "Node {name} registered by staker {}",
            identity.owner.to_hex()
        );
        self.record_event(
            now,
            &involved,
            "Normal",
            "RegisteredNode",
            &message,
            "nautilus",
        );
        Ok(())
    }

    fn heartbeat(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<ApiResponse, Error> {
        let (node_name, _) = self.seed_message(now, req)?;
        let key = ObjectKey::new(ResourceId::Nodes, "", &node_name);
        let Some(stored) = self.store.get(&key) else {
            return Err(Error::NotFound {
                resource: "nodes".into(),
                name: node_name,
            });
        };
        // Like a kubelet: renew the Lease every time, post Ready only when it was not (read
        // from the conditions alone: the whole Node is parsed only to be rewritten).
        if !crate::controllers::node_lifecycle::posts_ready(&stored.json.bytes()) {
            let mut node: Value = serde_json::from_slice(&stored.json.bytes())
                .map_err(|e| Error::Internal(alloc::format!("{e}")))?;
            let stamp = now.rfc3339();
            if let Some(conditions) = node
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            {
                conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("Ready"));
                conditions.push(json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}));
            }
            self.write_existing(&WriteContext::request(now, None), &key, &mut node)?;
        }
        self.renew_lease(now, &node_name)?;
        Ok(ApiResponse::json(
            200,
            j::to_vec(&json!({"status": "acknowledged", "timestamp": now.secs()})),
        ))
    }

    /// Creates or renews `kube-node-lease/<node>` (a heartbeat for the lifecycle controller).
    fn renew_lease(&mut self, now: UnixTime, node: &str) -> Result<(), Error> {
        let request = WriteContext::request(now, None);
        let key = ObjectKey::new(ResourceId::Leases, "kube-node-lease", node);
        let renew = now.rfc3339_micros();
        match self.store.get(&key) {
            None => {
                let mut lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": node, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": renew}});
                self.create_internal(
                    &request,
                    ResourceId::Leases,
                    "kube-node-lease",
                    &mut lease,
                    "kubelet",
                )?;
            }
            Some(stored) => {
                let mut lease: Value = serde_json::from_slice(&stored.json.bytes())
                    .map_err(|e| Error::Internal(alloc::format!("{e}")))?;
                if let Some(spec) = lease.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("renewTime".into(), Value::from(renew));
                    spec.insert("holderIdentity".into(), Value::from(node));
                }
                self.write_existing(&request, &key, &mut lease)?;
            }
        }
        Ok(())
    }

    fn push_sui_events(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
    ) -> Result<ApiResponse, Error> {
        self.require_relay(now, req)?;
        let Some(package) = self.config.sui_package else {
            return Err(Error::Unavailable(
                "no Sui package is configured (--sui-package); stake events are refused".into(),
            ));
        };
        if req.body.len() > self.config.max_body_bytes {
            return Err(Error::TooLarge(alloc::format!(
                "the body is larger than {} bytes",
                self.config.max_body_bytes
            )));
        }
        crate::json::check_depth(req.body, self.config.max_json_depth)?;
        let batch = self.stakes.parse_push(req.body, &package)?;
        let outcome = self.apply_stake_batch(now, &batch, &mut crate::stake::TrustTheRelay)?;
        Ok(ApiResponse::json(200, j::to_vec(&outcome.to_json())))
    }

    /// Applies a batch of staking events the runtime read from Sui itself (already filtered to
    /// the configured package and in checkpoint order), believing `verifier`; revoked stakes
    /// lose their nodes as with a push. All or nothing.
    pub fn apply_sui_batch(
        &mut self,
        now: UnixTime,
        batch: &crate::stake::EventBatch,
        verifier: &mut dyn crate::stake::EventVerifier,
    ) -> Result<crate::stake::PushOutcome, Error> {
        self.apply_stake_batch(now, batch, verifier)
    }

    /// Applies a batch to the registry, journals it (when it changed anything), then revokes
    /// what it revoked: the revocations' writes follow the batch in the journal.
    fn apply_stake_batch(
        &mut self,
        now: UnixTime,
        batch: &crate::stake::EventBatch,
        verifier: &mut dyn crate::stake::EventVerifier,
    ) -> Result<crate::stake::PushOutcome, Error> {
        self.journal_admits()?;
        let outcome = self.stakes.apply_batch(batch, verifier, now)?;
        if !outcome.stale {
            self.journal_stakes(now, verifier.trust_level(), batch);
        }
        for revocation in &outcome.revoked {
            self.revoke_stake(now, &revocation.stake_id, revocation.reason);
        }
        Ok(outcome)
    }

    /// The runtime's Sui reader reached the chain's tip at `now` with nothing new.
    pub fn sui_synced(&mut self, now: UnixTime) {
        self.stakes.mark_synced(now);
    }

    /// The stake registry (read-only): resume position, stakes and their trust levels.
    pub fn stakes(&self) -> &crate::stake::StakeRegistry {
        &self.stakes
    }

    /// Where the stake registry stands, for readiness and metrics.
    pub fn sui_status(&self, now: UnixTime) -> SuiStatus {
        let mut stakes_by_trust = [0usize; 3];
        for (_, stake) in self.stakes.iter() {
            let slot = match stake.trust {
                crate::stake::TrustLevel::RelayPushed => stakes_by_trust.get_mut(0),
                crate::stake::TrustLevel::NodeRead => stakes_by_trust.get_mut(1),
                crate::stake::TrustLevel::LightClient => stakes_by_trust.get_mut(2),
            };
            if let Some(n) = slot {
                *n = n.saturating_add(1);
            }
        }
        SuiStatus {
            checkpoint: self.stakes.last_checkpoint(),
            stale_secs: self.sui_stale_secs(now),
            stakes_by_trust,
        }
    }

    /// The stake registry's readiness at `now`: `Ok(detail)` or `Err(detail)` when degraded
    /// (no Sui progress for `sui_stale_after_secs`), for `/readyz?verbose`.
    pub fn sui_readiness(&self, now: UnixTime) -> Result<String, String> {
        let status = self.sui_status(now);
        let [pushed, read, light] = status.stakes_by_trust;
        let checkpoint = status
            .checkpoint
            .map_or_else(|| "none".to_string(), |c| alloc::format!("{c}"));
        let detail = alloc::format!(
            "sui stake registry: checkpoint {checkpoint}, stakes relay-pushed={pushed} node-read={read} light-client={light}, min-trust-level {}",
            self.config.min_trust_level.as_str()
        );
        match status.stale_secs {
            Some(stale) if stale >= self.config.sui_stale_after_secs => Err(alloc::format!(
                "{detail}: degraded, no Sui progress for {stale} s (stale after {} s)",
                self.config.sui_stale_after_secs
            )),
            _ => Ok(detail),
        }
    }

    /// The runtime started reading Sui itself at `now`: from here on, silence counts as
    /// staleness (a push-only relay reports nothing between events, so it does not).
    pub fn sui_reader_started(&mut self, now: UnixTime) {
        self.registrations.sui_reader_since.get_or_insert(now);
    }

    /// The runtime's Sui reader stopped here: this cluster stepped down, and the writer
    /// reads Sui (its batches arrive as records), so silence here is no staleness.
    pub(crate) fn sui_reader_stopped(&mut self) {
        self.registrations.sui_reader_since = None;
    }

    /// Seconds without Sui progress (counted from the reader's start before the first), when
    /// the runtime reads Sui itself.
    fn sui_stale_secs(&self, now: UnixTime) -> Option<u64> {
        let since = self.registrations.sui_reader_since?;
        Some(
            self.stakes
                .staleness_secs(now)
                .unwrap_or_else(|| now.nanos.saturating_sub(since.nanos) / 1_000_000_000),
        )
    }

    /// A stake admits only if it is known at the configured minimum trust level or above.
    pub(super) fn check_stake_trust(&self, identity: &NodeIdentity) -> Result<(), Error> {
        let min = self.config.min_trust_level;
        if identity.trust < min {
            return Err(Error::Unauthorized(alloc::format!(
                "stake {} is known only at trust level {}; this cluster admits stakes at {} or above",
                hex32(&identity.stake_id),
                identity.trust.as_str(),
                min.as_str()
            )));
        }
        Ok(())
    }

    /// New registrations wait while the registry is older than `sui_max_stale_secs`: a stake
    /// withdrawn during the outage would otherwise still admit.
    pub(super) fn check_sui_fresh(&self, now: UnixTime) -> Result<(), Error> {
        match self.sui_stale_secs(now) {
            Some(stale) if stale >= self.config.sui_max_stale_secs => {
                Err(Error::Unavailable(alloc::format!(
                    "the stake registry has had no Sui progress for {stale} s (limit {} s); new workers are refused until Sui is reachable again",
                    self.config.sui_max_stale_secs
                )))
            }
            _ => Ok(()),
        }
    }

    /// Only the relay's credential (or the admin's) reaches the Sui event endpoints.
    fn require_relay(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<(), Error> {
        match self.identify(now, req)? {
            Identity::Admin | Identity::Relay => Ok(()),
            Identity::Anonymous => Err(Error::Unauthorized(
                "the relay's credential is required".into(),
            )),
            _ => Err(Error::Forbidden {
                resource: String::new(),
                name: String::new(),
                message: "only the relay (or the admin) may use the Sui event endpoints".into(),
                causes: Vec::new(),
            }),
        }
    }

    /// `GET /api/v1/sui-events`: where a relay resumes — the last applied checkpoint.
    fn sui_events_position(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
    ) -> Result<ApiResponse, Error> {
        self.require_relay(now, req)?;
        let mut body = json!({
            "checkpoint": self.stakes.last_checkpoint(),
            "stakes": self.stakes.len(),
        });
        // `?stake=0x...`: one stake as the registry knows it (operators and tests check
        // amounts and trust levels without reading the Node).
        let query = super::request::Query::parse(req.query)?;
        if let Some(id) = query.get("stake") {
            let id = crate::token::parse_hex32(id)
                .ok_or_else(|| Error::BadRequest("stake must be 0x and 64 hex digits".into()))?;
            let stake = self.stakes.get(&id).map(|s| {
                json!({
                    "owner": s.owner.to_hex(),
                    "amount": s.amount.to_string(),
                    "slashed": s.slashed.to_string(),
                    "withdrawn": s.withdrawn,
                    "trust": s.trust.as_str(),
                    "checkpoint": s.checkpoint,
                    "admits": self.stakes.admits(s),
                })
            });
            if let Some(obj) = body.as_object_mut() {
                obj.insert("stake".into(), stake.unwrap_or(Value::Null));
            }
        }
        Ok(ApiResponse::json(200, j::to_vec(&body)))
    }

    /// Cordons and taints every node of a withdrawn or slashed stake, and evicts its pods.
    fn revoke_stake(&mut self, now: UnixTime, stake_id: &[u8; 32], reason: RevocationReason) {
        let nodes: Vec<String> = self
            .registrations
            .by_stake
            .get(stake_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let why = match reason {
            RevocationReason::Withdrawn => "withdrawn",
            RevocationReason::SlashedBelowMinimum => "slashed below the minimum",
        };
        for name in nodes {
            let key = ObjectKey::new(ResourceId::Nodes, "", &name);
            let Some(stored) = self.store.get(&key) else {
                continue;
            };
            let Ok(mut node) = serde_json::from_slice::<Value>(&stored.json.bytes()) else {
                continue;
            };
            if let Some(map) = node.as_object_mut() {
                let spec = map.entry("spec").or_insert_with(|| json!({}));
                if let Some(spec) = spec.as_object_mut() {
                    spec.insert("unschedulable".into(), Value::Bool(true));
                    let taints = spec.entry("taints").or_insert_with(|| json!([]));
                    if let Some(list) = taints.as_array_mut() {
                        list.retain(|t| {
                            t.get("key").and_then(Value::as_str) != Some(STAKE_REVOKED_TAINT)
                        });
                        list.push(json!({"key": STAKE_REVOKED_TAINT, "value": why, "effect": "NoExecute", "timeAdded": now.rfc3339()}));
                    }
                }
            }
            if self
                .write_existing(&WriteContext::server(now), &key, &mut node)
                .is_err()
            {
                continue;
            }
            let message = alloc::format!(
                "Stake {} was {why}: node cordoned and its pods evicted",
                hex32(stake_id)
            );
            self.record_event(
                now,
                &Involved::of(&node),
                "Warning",
                "StakeRevoked",
                &message,
                "nautilus",
            );
            self.evict_untolerating(now, &name, STAKE_REVOKED_TAINT);
        }
    }

    /// Deletes the pods on `node` that do not tolerate the NoExecute taint `taint` at all.
    fn evict_untolerating(&mut self, now: UnixTime, node: &str, taint: &str) {
        let victims: Vec<ObjectKey> = self
            .store
            .pods_on(node)
            .filter(|(_, o)| {
                serde_json::from_slice::<Value>(&o.json.bytes())
                    .is_ok_and(|pod| matches!(toleration_seconds(&pod, taint), Toleration::None))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in victims {
            self.evict_pod(now, &key);
        }
    }
}

/// The enclave's record of a node's stake in the Node's annotations (the staker's address, the
/// stake id and its trust level), as `register-worker` and a kubelet's own registration write
/// it; annotations that are not a map are replaced.
fn stamp_stake(node: &mut Value, identity: &NodeIdentity) {
    let Some(meta) = node.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    let Some(annotations) = annotations.as_object_mut() else {
        return;
    };
    annotations.insert(
        ANNOTATION_ADDRESS.into(),
        Value::from(identity.owner.to_hex()),
    );
    annotations.insert(
        ANNOTATION_STAKE.into(),
        Value::from(hex32(&identity.stake_id)),
    );
    annotations.insert(
        ANNOTATION_TRUST.into(),
        Value::from(identity.trust.as_str()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::stake::{
        EventBatch, EventId, StakeEvent, StakeEventKind, TrustLevel, TrustTheCommittee,
        TrustTheFullNode, TrustTheRelay,
    };
    use crate::token::{SealClaims, ed25519_address, mint_ed25519};

    const T0: UnixTime = UnixTime::from_secs(1_750_000_000);
    const SECRET: [u8; 32] = [7; 32];
    const STAKE: [u8; 32] = [9; 32];

    fn server(min: TrustLevel) -> Cluster {
        let config = Config {
            sui_package: Some([0xab; 32]),
            min_trust_level: min,
            sui_stale_after_secs: 60,
            sui_max_stale_secs: 300,
            ..Config::default()
        };
        Cluster::new(config, [1; 32], T0)
    }

    fn deposit(checkpoint: u64, digest: char) -> EventBatch {
        EventBatch {
            checkpoint,
            events: alloc::vec![StakeEvent {
                id: EventId {
                    tx_digest: core::iter::repeat_n(digest, 44).collect(),
                    event_seq: 0,
                },
                stake_id: STAKE,
                kind: StakeEventKind::Deposited {
                    owner: ed25519_address(&SECRET),
                    amount: 2_000_000_000,
                },
            }],
            foreign: 0,
        }
    }

    fn register(s: &mut Cluster, now: UnixTime) -> (u16, Value) {
        let token = mint_ed25519(
            &SECRET,
            &SealClaims {
                node_id: "node-a".into(),
                stake_id: STAKE,
                iat: now.secs(),
                exp: now.secs() + 3600,
            },
        );
        let body =
            j::to_vec(&json!({"node_id": "node-a", "seal_token": token, "timestamp": now.secs()}));
        let mut req = ApiRequest::new(Method::Post, "/api/v1/register-worker");
        req.seal_token = Some(&token);
        req.content_type = Some("application/json");
        req.body = &body;
        let r = s
            .handle_request(now, &req)
            .into_response()
            .unwrap_or_else(|| ApiResponse::json(0, Vec::new()));
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    #[test]
    fn a_stake_below_the_minimum_trust_level_does_not_admit() {
        let mut s = server(TrustLevel::NodeRead);
        s.apply_sui_batch(T0, &deposit(1, 'A'), &mut TrustTheRelay)
            .unwrap();
        let (code, body) = register(&mut s, T0);
        assert_eq!(code, 401, "{body}");
        let message = body.get("message").and_then(Value::as_str).unwrap();
        assert!(
            message.contains("trust level relay-pushed") && message.contains("node-read"),
            "{message}"
        );
        // The same stake confirmed by a full-node read (a later deposit) now admits, and the
        // Node carries the level it was admitted at.
        s.apply_sui_batch(T0, &deposit(2, 'B'), &mut TrustTheFullNode)
            .unwrap();
        assert_eq!(s.stakes().get(&STAKE).unwrap().trust, TrustLevel::NodeRead);
        let (code, body) = register(&mut s, T0);
        assert_eq!(code, 200, "{body}");
        let node = s
            .store()
            .get(&ObjectKey::new(ResourceId::Nodes, "", "node-a"))
            .unwrap();
        let node: Value = serde_json::from_slice(&node.json.bytes()).unwrap();
        assert_eq!(
            node.pointer("/metadata/annotations/nautilus.io~1stake-trust-level"),
            Some(&json!("node-read"))
        );
    }

    #[test]
    fn at_light_client_only_a_committee_verified_stake_admits() {
        let mut s = server(TrustLevel::LightClient);
        s.apply_sui_batch(T0, &deposit(1, 'A'), &mut TrustTheFullNode)
            .unwrap();
        let (code, body) = register(&mut s, T0);
        assert_eq!(code, 401, "a full-node read is not enough: {body}");
        s.apply_sui_batch(T0, &deposit(2, 'B'), &mut TrustTheCommittee)
            .unwrap();
        assert_eq!(
            s.stakes().get(&STAKE).unwrap().trust,
            TrustLevel::LightClient
        );
        assert_eq!(register(&mut s, T0).0, 200);
        assert!(
            s.sui_readiness(T0)
                .unwrap()
                .contains("light-client=1, min-trust-level light-client")
        );
        // A later relay push about the same stake downgrades it: the host can only lower trust.
        s.apply_sui_batch(T0, &deposit(3, 'C'), &mut TrustTheRelay)
            .unwrap();
        assert_eq!(register(&mut s, T0).0, 401);
    }

    #[test]
    fn trust_levels_order_and_parse() {
        for (text, level) in [
            ("relay-pushed", TrustLevel::RelayPushed),
            ("node-read", TrustLevel::NodeRead),
            ("light-client", TrustLevel::LightClient),
        ] {
            assert_eq!(TrustLevel::parse(text), Some(level));
            assert_eq!(level.as_str(), text);
        }
        assert_eq!(TrustLevel::parse("trusted"), None);
        assert!(TrustLevel::RelayPushed < TrustLevel::NodeRead);
        assert!(TrustLevel::NodeRead < TrustLevel::LightClient);
    }

    #[test]
    fn a_sui_outage_degrades_readiness_then_refuses_registrations_until_recovery() {
        let mut s = server(TrustLevel::RelayPushed);
        // Push-only: silence is not staleness.
        assert!(s.sui_readiness(T0.plus_secs(10_000)).is_ok());
        s.sui_reader_started(T0);
        s.apply_sui_batch(T0, &deposit(1, 'A'), &mut TrustTheFullNode)
            .unwrap();
        assert!(s.sui_readiness(T0.plus_secs(59)).is_ok());
        let degraded = s.sui_readiness(T0.plus_secs(60)).unwrap_err();
        assert!(degraded.contains("no Sui progress for 60 s"), "{degraded}");
        assert_eq!(register(&mut s, T0.plus_secs(299)).0, 200);
        let (code, body) = register(&mut s, T0.plus_secs(300));
        assert_eq!(code, 503, "{body}");
        assert!(
            body.get("message")
                .and_then(Value::as_str)
                .unwrap()
                .contains("no Sui progress for 300 s"),
            "{body}"
        );
        // The registry was kept through the outage; the reader catches up and it admits again.
        assert!(s.stakes().get(&STAKE).is_some());
        s.sui_synced(T0.plus_secs(400));
        assert!(s.sui_readiness(T0.plus_secs(400)).is_ok());
        assert_eq!(register(&mut s, T0.plus_secs(400)).0, 200);
    }

    #[test]
    fn a_replica_that_steps_down_stops_reading_sui_and_reports_no_staleness() {
        let mut s = server(TrustLevel::RelayPushed);
        s.sui_reader_started(T0);
        s.apply_sui_batch(T0, &deposit(1, 'A'), &mut TrustTheFullNode)
            .unwrap();
        assert!(s.sui_readiness(T0.plus_secs(60)).is_err());
        s.step_down();
        assert!(s.follows());
        // The writer reads Sui now: silence here is no staleness, and a batch is refused.
        assert!(s.sui_readiness(T0.plus_secs(10_000)).is_ok());
        assert_eq!(s.sui_status(T0.plus_secs(10_000)).stale_secs, None);
        let refused = s.apply_sui_batch(T0.plus_secs(61), &deposit(2, 'A'), &mut TrustTheFullNode);
        assert!(
            matches!(refused, Err(crate::Error::NotLeader)),
            "{refused:?}"
        );
        assert_eq!(s.stakes().last_checkpoint(), Some(1));
    }
}

/// The stake registry's position and make-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiStatus {
    /// The last Sui checkpoint applied, if any.
    pub checkpoint: Option<u64>,
    /// Seconds since the registry last made progress, once the enclave reads Sui itself.
    pub stale_secs: Option<u64>,
    /// Stakes known at each trust level: relay-pushed, node-read, light-client.
    pub stakes_by_trust: [usize; 3],
}
