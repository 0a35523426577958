//! The Kubernetes API subset: one request in, one response (or a watch) out.
//!
//! [`ApiServer::handle_request`] authenticates, routes and answers; writes go through the store
//! and land in the watch ring. [`ApiServer::handle_timeout`] advances background work (namespace
//! deletion, node lifecycle) and [`ApiServer::poll_timeout`] says when it is next due.

pub mod access;
#[cfg(test)]
mod admission_tests;
pub mod apiservices;
mod custom;
pub mod defaults;
pub(crate) mod deletion;
#[cfg(test)]
mod deletion_tests;
pub mod discovery;
mod metadata;
#[cfg(test)]
mod node_restriction_tests;
mod objects;
pub mod openapi;
pub mod render;
pub mod request;
mod revision;
pub mod services;
pub mod table;
pub mod watch;
mod workers;
#[cfg(test)]
mod workers_tests;

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod admission_policy_tests;
#[cfg(test)]
mod apiservices_tests;
#[cfg(test)]
mod decode_tests;
#[cfg(test)]
mod dry_run_tests;
#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod metadata_tests;
#[cfg(test)]
mod rbac_tests;
#[cfg(test)]
mod revision_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod yaml_body_tests;

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

pub(crate) use objects::qualified;
pub use request::{ApiRequest, ApiResponse, Method, Route};
pub use watch::{WatchPoll, Watcher};
pub use workers::SuiStatus;

use crate::auth::Identity;
use crate::store::Store;
use crate::sync::Arc;
use crate::watch::WatchRing;
use crate::{Config, Error, UnixTime};

/// The result of one request.
#[derive(Debug)]
pub enum Outcome {
    /// A complete answer.
    Response(ApiResponse),
    /// A watch stream: the runtime polls the watcher against the ring until it ends.
    Watch(alloc::boxed::Box<Watcher>),
    /// A LIST page captured under the lock; the runtime encodes it after releasing the lock.
    List(alloc::boxed::Box<render::ListRender>),
    /// An embedded OpenAPI document with its caching headers; the runtime sends the static
    /// bytes without copying them, or 304 when `If-None-Match` names them
    /// ([`openapi::Served::not_modified`]).
    OpenApi(openapi::Served),
    /// The read needs `revision`, which the store has not reached yet. The runtime calls again
    /// with the same request, its `waiting_since` set to this call's `now`, once the store's
    /// revision reaches `revision` or at `deadline`, whichever comes first; core then serves it
    /// or answers kube's 504 `ResourceVersionTooLarge`.
    Pending {
        /// The revision the read needs.
        revision: u64,
        /// When core stops waiting.
        deadline: UnixTime,
    },
}

impl Outcome {
    /// The complete response, encoding a captured LIST; `None` for a watch or a pending read.
    pub fn into_response(self) -> Option<ApiResponse> {
        match self {
            Self::Response(response) => Some(response),
            Self::List(list) => Some(list.render()),
            Self::OpenApi(served) => Some(ApiResponse {
                status: served.status,
                content_type: served.content_type,
                body: served.body.into_owned(),
                warnings: Vec::new(),
            }),
            Self::Watch(_) | Self::Pending { .. } => None,
        }
    }
}

impl From<ApiResponse> for Outcome {
    fn from(response: ApiResponse) -> Self {
        Self::Response(response)
    }
}

/// Unique ids and random names from a seed the runtime passes in (core has no RNG).
#[derive(Debug)]
pub(crate) struct IdSource {
    seed: [u8; 32],
    counter: u64,
}

impl IdSource {
    fn next_block(&mut self) -> [u8; 32] {
        self.counter = self.counter.wrapping_add(1);
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_le_bytes());
        hasher.finalize().into()
    }

    /// An RFC 4122 version-4 UUID string.
    pub(crate) fn uuid(&mut self) -> String {
        let mut b = self.next_block();
        if let Some(x) = b.get_mut(6) {
            *x = (*x & 0x0f) | 0x40;
        }
        if let Some(x) = b.get_mut(8) {
            *x = (*x & 0x3f) | 0x80;
        }
        let mut out = String::with_capacity(36);
        for (i, byte) in b.iter().take(16).enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
        out
    }

    /// Five characters from kube's `generateName` alphabet.
    pub(crate) fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.next_block()
            .iter()
            .take(5)
            .map(|b| {
                char::from(
                    *ALPHABET
                        .get(usize::from(*b) % ALPHABET.len())
                        .unwrap_or(&b'x'),
                )
            })
            .collect()
    }
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// What the write path's bookkeeping needs from the entry point that runs: its time, and the
/// node identity it acts for (`None` for the admin and for the server's own work). Set at each
/// entry point, so every write is stamped without threading both through every helper.
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub(crate) now: UnixTime,
    pub(crate) node: Option<String>,
    /// Warnings raised below the handler (a `Warn` admission policy binding), added to the
    /// response's own.
    pub(crate) warnings: Vec<String>,
}

/// The API server state machine.
#[derive(Debug)]
pub struct ApiServer {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) ids: IdSource,
    /// Namespaces being deleted, finished by `handle_timeout`.
    pub(crate) terminating: BTreeSet<String>,
    /// Terminating namespaces to look at again: new ones, and those where something changed
    /// since a pass found their contents held (by a grace period or a finalizer), so that a
    /// namespace waiting on kubelets costs nothing until one of its objects changes.
    pub(crate) namespaces_due: BTreeSet<String>,
    /// Cluster IPs and node ports held by the stored Services.
    pub(crate) services: services::Allocations,
    /// Heartbeat tracking for the node lifecycle controller.
    pub(crate) lifecycle: crate::controllers::node_lifecycle::NodeLifecycle,
    /// Expiry and share ledger of events.
    pub(crate) event_ttl: crate::controllers::event_ttl::EventTtl,
    /// Event writes per node identity (kube's EventRateLimit, limit type `User`).
    pub(crate) event_rate: crate::ratelimit::RateLimiter,
    /// The current entry point's time and acting node, read by the write path's bookkeeping.
    pub(crate) call: Call,
    /// This run's key for continue tokens.
    pub(crate) continue_key: [u8; 32],
    /// Stakes learned from Sui events.
    pub(crate) stakes: crate::stake::StakeRegistry,
    /// Seal-token validation with its signature cache.
    pub(crate) tokens: crate::token::TokenValidator,
    /// Nodes registered per stake.
    pub(crate) registrations: workers::Registrations,
    /// The pod scheduler's queue and node cache.
    pub(crate) scheduler: crate::scheduler::Scheduler,
    /// Workload controllers' change feed, work queues and ownership graph.
    pub(crate) controllers: crate::controllers::Controllers,
    /// What the pods bound to each node use, for the node authorizer.
    pub(crate) references: crate::authz::references::ReferenceIndex,
    /// The installed CustomResourceDefinitions: the resource table's dynamic part.
    pub(crate) crds: crate::crd::Registry,
    /// The OpenAPI documents of custom resources, built when first asked for after a change.
    pub(crate) custom_openapi: openapi::CustomCache,
    /// When LIST snapshots (continue tokens) expire.
    pub(crate) compactor: crate::compaction::Compactor,
}

impl ApiServer {
    /// A server with the bootstrap namespaces and the `kubernetes` service, created at `now`.
    /// `seed` is fresh secret randomness from the runtime (uids, generated names, the key of
    /// continue tokens).
    ///
    /// Until state is persisted, revisions start at `now` in microseconds: a run hands out one
    /// revision per write, and no run writes a million times a second for long, so every
    /// revision an earlier run handed out is below this run's start and is answered 410 Expired
    /// (clients re-list) instead of being served as if it were current. Microseconds since 1970
    /// stay below 2^53 (JavaScript's exact integers) until the year 2255.
    pub fn new(config: Config, seed: [u8; 32], now: UnixTime) -> Self {
        let store = Store::starting_at(&config, start_revision(now));
        let stakes = crate::stake::StakeRegistry::new(crate::stake::StakeLimits {
            max_stakes: config.max_stakes,
            min_stake: config.min_stake,
            ..Default::default()
        });
        let tokens = crate::token::TokenValidator::new(crate::token::TokenPolicy {
            max_lifetime_secs: config.token_max_lifetime_secs,
            ..Default::default()
        });
        let scheduler = crate::scheduler::Scheduler::new(&config);
        let references = crate::authz::references::ReferenceIndex::new(config.max_pod_references);
        let crds = crate::crd::Registry::new(&config);
        let event_rate = crate::ratelimit::RateLimiter::new(
            config.event_qps,
            config.event_burst,
            config.event_rate_identities,
        );
        let compactor = crate::compaction::Compactor::new(config.compaction_interval_secs, now);
        let mut server = Self {
            config,
            store,
            ids: IdSource { seed, counter: 0 },
            terminating: BTreeSet::new(),
            namespaces_due: BTreeSet::new(),
            services: Default::default(),
            lifecycle: Default::default(),
            event_ttl: Default::default(),
            event_rate,
            call: Call {
                now,
                node: None,
                warnings: Vec::new(),
            },
            continue_key: Self::continue_key(&seed),
            stakes,
            tokens,
            registrations: Default::default(),
            scheduler,
            controllers: Default::default(),
            references,
            crds,
            custom_openapi: Default::default(),
            compactor,
        };
        server.bootstrap(now);
        server
    }

    /// The ring that watch streams read.
    pub fn watch_ring(&self) -> Arc<WatchRing> {
        self.store.ring().clone()
    }

    /// The store (read-only), for metrics and tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The installed CustomResourceDefinitions.
    pub fn crds(&self) -> &crate::crd::Registry {
        &self.crds
    }

    /// Answers one request at `now`. Never panics; errors become `Status` responses.
    pub fn handle_request(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Outcome {
        self.scheduler.clock = now;
        self.call = Call {
            now,
            node: None,
            warnings: Vec::new(),
        };
        match self.dispatch(now, req) {
            Ok(Outcome::Response(mut response)) if !self.call.warnings.is_empty() => {
                let mut warnings = core::mem::take(&mut self.call.warnings);
                warnings.append(&mut response.warnings);
                response.warnings = warnings;
                Outcome::Response(response)
            }
            Ok(outcome) => outcome,
            Err(error) => Outcome::Response(ApiResponse::error(&error)),
        }
    }

    /// Decides a request on its head alone (method, path, query and headers, no body): the
    /// caller is authenticated and authorized for the verb on the path, with the answer the whole
    /// request would get when it is not. The runtime calls this before it reads a body, so no
    /// byte of an unauthorized request is held; [`ApiServer::handle_request`] repeats the checks.
    pub fn admit_head(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<(), ApiResponse> {
        let route = request::route(req.path, &self.crds);
        if let Some(Route::Worker(endpoint)) = route {
            return self
                .admit_worker_head(now, req, endpoint)
                .map_err(|e| workers::seed_error(&e));
        }
        self.admit(now, req, route.as_ref())
            .map(drop)
            .map_err(|e| ApiResponse::error(&e))
    }

    /// Admits a request for a path the runtime answers itself and only the administrator may
    /// read (`/metrics`): 401 without a valid credential, 403 for any other caller, worded like
    /// kube-apiserver's denial of a non-resource path.
    pub fn admit_admin_path(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
    ) -> Result<(), ApiResponse> {
        let identity = self
            .identify(now, req)
            .map_err(|e| ApiResponse::error(&e))?;
        let user = match &identity {
            Identity::Admin | Identity::User(_) => return Ok(()),
            Identity::Anonymous => {
                return Err(ApiResponse::error(&Error::Unauthorized(
                    "Unauthorized".into(),
                )));
            }
            Identity::Node(node) => alloc::format!("system:node:{}", node.node_id),
            _ => "system:nautilus:relay".into(),
        };
        let verb = match req.method {
            Method::Get | Method::Head => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
            Method::Options | Method::Other => "use",
        };
        Err(ApiResponse::error(&Error::Forbidden {
            resource: String::new(),
            name: String::new(),
            message: alloc::format!(
                "forbidden: User \"{user}\" cannot {verb} path \"{}\"",
                req.path
            ),
            causes: Vec::new(),
        }))
    }

    /// Who is calling and whether they may use this method on this path: everything a request's
    /// head decides, shared by [`ApiServer::admit_head`] and `dispatch`. Health and version
    /// paths are open to anonymous callers (a credential that is present must still be valid).
    fn admit(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        route: Option<&Route<'_>>,
    ) -> Result<Identity, Error> {
        let identity = self.identify(now, req)?;
        // Any caller may ask an access review about itself, anonymous ones included.
        if matches!(
            route,
            Some(Route::Health(_) | Route::Version | Route::Review(_))
        ) {
            return Ok(identity);
        }
        self.require_user(&identity)?;
        if let Some(Route::Resource(path)) = route {
            crate::authz::authorize(
                &identity,
                req.method,
                path,
                req.query,
                &self.store,
                &self.references,
            )?;
        }
        Ok(identity)
    }

    fn dispatch(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<Outcome, Error> {
        let route = request::route(req.path, &self.crds);
        // The seed's worker endpoints authenticate by X-Seal-Token (or the relay credential).
        if let Some(Route::Worker(endpoint)) = route {
            return Ok(self.handle_worker(now, req, endpoint));
        }
        let identity = self.admit(now, req, route.as_ref())?;
        let Some(route) = route else {
            return Err(Error::PathNotFound(req.path.into()));
        };
        if let Route::Health(path) = route {
            return Ok(health(path).into());
        }
        if route == Route::Version {
            return Ok(json_response(&discovery::version()).into());
        }
        if let Route::Review(review) = route {
            return self
                .handle_review(now, req, &identity, review)
                .map(Into::into);
        }
        if let Route::ApiServices(name) = route {
            return self
                .handle_api_services(now, req, &identity, name)
                .map(Into::into);
        }
        if req.body_too_large {
            return Err(Error::TooLarge(alloc::format!(
                "the request body is larger than the limit of {} bytes",
                self.config.max_body_bytes
            )));
        }
        // After admission, not in it: the runtime's head check must not spend a token.
        if let (Route::Resource(path), Identity::Node(node)) = (&route, &identity) {
            let query = request::Query::parse(req.query)?;
            self.limit_node_events(now, node, req.method, path, &query)?;
            self.call.node = Some(node.node_id.clone());
        }
        let read_only = matches!(req.method, Method::Get | Method::Head);
        match route {
            Route::Resource(path) => self.handle_resource(now, req, &path, &identity),
            Route::Worker(endpoint) => Ok(self.handle_worker(now, req, endpoint)),
            _ if !read_only => Err(Error::MethodNotAllowed(alloc::format!(
                "the server does not allow this method on the requested resource ({})",
                req.path
            ))),
            Route::CoreApiVersions | Route::ApiGroupList => {
                let core_group = route == Route::CoreApiVersions;
                match request::negotiate(req.accept)? {
                    request::Representation::AggregatedDiscovery => Ok(ApiResponse {
                        status: 200,
                        content_type: request::AGGREGATED_DISCOVERY,
                        body: crate::json::to_vec(&discovery::aggregated(core_group, &self.crds)),
                        warnings: Vec::new(),
                    }
                    .into()),
                    _ if core_group => Ok(json_response(&discovery::core_api_versions()).into()),
                    _ => Ok(json_response(&discovery::api_group_list(&self.crds)).into()),
                }
            }
            Route::ApiGroup(group) => discovery::api_group(group, &self.crds)
                .map(|v| json_response(&v).into())
                .ok_or_else(|| Error::PathNotFound(req.path.into())),
            Route::ResourceList(group, version) => {
                discovery::api_resource_list(group, version, &self.crds)
                    .map(|v| json_response(&v).into())
                    .ok_or_else(|| Error::PathNotFound(req.path.into()))
            }
            Route::OpenApiV3Index => Ok(Outcome::OpenApi(self.openapi_v3_index())),
            Route::OpenApiV3(doc) => self
                .openapi_v3_document(now, doc, req.query, req.accept)
                .map(Outcome::OpenApi),
            Route::OpenApiV2 => self.openapi_v2(req.accept).map(Outcome::OpenApi),
            Route::Health(_) | Route::Version | Route::Review(_) | Route::ApiServices(_) => {
                Err(Error::PathNotFound(req.path.into()))
            }
        }
    }

    fn require_user(&self, identity: &Identity) -> Result<(), Error> {
        match identity {
            Identity::Anonymous => Err(Error::Unauthorized("Unauthorized".into())),
            _ => Ok(()),
        }
    }

    /// When [`ApiServer::handle_timeout`] next has work, if ever.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let namespaces = (!self.namespaces_due.is_empty()).then_some(UnixTime::default());
        let nodes = self.lifecycle.due();
        let controllers = self
            .controllers_pending()
            .then_some(UnixTime::default())
            .or(self.controllers.next_delayed());
        [
            namespaces,
            nodes,
            self.event_ttl.due(),
            self.scheduler.due(),
            controllers,
            self.compactor.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether [`ApiServer::handle_timeout`] has work due at once (a namespace to finish, store
    /// changes the controllers have not processed, or queued controller work), as
    /// opposed to deadlines the runtime's timer reaches anyway. O(1): asked after every request.
    pub fn has_immediate_work(&self) -> bool {
        !self.namespaces_due.is_empty()
            || self.scheduler.has_immediate_work()
            || self.controllers_pending()
    }

    /// Whether [`ApiServer::handle_timeout`] has work that shrinks with every call and should
    /// be drained at once (pods beyond one scheduling batch, a ReplicaSet's next burst, the
    /// changes the last call wrote), as opposed to work that stays due until something else
    /// changes (a namespace whose deletion a write refused), which the runtime retries at a
    /// gentle pace.
    /// O(1).
    pub fn has_backlog(&self) -> bool {
        self.has_scheduling_backlog() || self.controllers_pending() || self.event_ttl.backlog
    }

    /// kube's EventRateLimit admission for a node identity's event writes (dry runs are not
    /// counted, as in kube): 429 once its token bucket is empty.
    fn limit_node_events(
        &mut self,
        now: UnixTime,
        node: &crate::token::NodeIdentity,
        method: Method,
        path: &request::ResourcePath<'_>,
        query: &request::Query,
    ) -> Result<(), Error> {
        let writes = matches!(method, Method::Post | Method::Put | Method::Patch);
        if path.resource.rt().id != crate::resource::ResourceId::Events
            || !writes
            || query.get("dryRun") == Some("All")
        {
            return Ok(());
        }
        if self.event_rate.try_accept(&node.node_id, now) {
            return Ok(());
        }
        Err(Error::TooManyRequests(alloc::format!(
            "Too many requests: limit reached on type User for key system:node:{}",
            node.node_id
        )))
    }

    /// Advances background work due at `now`: the node lifecycle (unreachable nodes, evictions),
    /// the deletion of terminating namespaces, and the workload controllers (ReplicaSet,
    /// Deployment, Endpoints, garbage collection).
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.call = Call {
            now,
            node: None,
            warnings: Vec::new(),
        };
        self.compactor.handle_timeout(now, self.store.revision());
        self.run_node_lifecycle(now);
        self.expire_events(now);
        for namespace in core::mem::take(&mut self.namespaces_due) {
            match self.finish_namespace_deletion(now, &namespace) {
                objects::NamespacePass::Done => {
                    self.terminating.remove(&namespace);
                }
                objects::NamespacePass::Held => {}
                objects::NamespacePass::Retry => {
                    self.namespaces_due.insert(namespace);
                }
            }
        }
        self.run_controllers(now);
        // Last, so that pods the controllers just made are bound in the same call.
        self.run_scheduler(now);
    }
}

/// The revision a run starting at `now` starts from (see [`ApiServer::new`]).
pub fn start_revision(now: UnixTime) -> u64 {
    now.nanos / 1_000
}

fn json_response(value: &serde_json::Value) -> ApiResponse {
    ApiResponse::json(200, crate::json::to_vec(value))
}

fn health(path: &str) -> ApiResponse {
    let (endpoint, check) = match path.split_once('/').map(|_| path.trim_start_matches('/')) {
        Some(rest) => rest.split_once('/').unwrap_or((rest, "")),
        None => ("healthz", ""),
    };
    let checks = [
        "ping",
        "log",
        "etcd",
        "poststarthook/start-kube-apiserver-admission-initializer",
    ];
    if check.is_empty() || check == "verbose" {
        return ApiResponse::text(200, "ok");
    }
    if checks.contains(&check) {
        return ApiResponse::text(200, "ok");
    }
    let _ = endpoint;
    ApiResponse::error(&Error::PathNotFound(path.into()))
}
