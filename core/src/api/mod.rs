//! The Kubernetes API subset: one request in, one response (or a watch) out.
//!
//! [`Cluster::handle_request`] authenticates, routes and answers; writes go through the store
//! and land in the watch ring. [`Cluster::handle_timeout`] advances background work (namespace
//! deletion, node lifecycle) and [`Cluster::poll_timeout`] says when it is next due.

pub mod access;
#[cfg(test)]
mod admission_tests;
mod admit;
pub mod apiservices;
#[cfg(test)]
mod autoscaling_tests;
mod certificates;
#[cfg(test)]
mod certificates_tests;
#[cfg(test)]
mod connect_tests;
#[cfg(test)]
mod csr_signing_tests;
mod custom;
pub mod defaults;
#[cfg(test)]
mod deletion_tests;
pub mod discovery;
pub mod k3s;
#[cfg(test)]
mod k3s_tests;
mod metadata;
#[cfg(test)]
mod node_restriction_tests;
mod objects;
pub mod openapi;
pub mod render;
pub mod request;
pub mod request_info;
mod revision;
pub mod table;
mod tokens;
#[cfg(test)]
mod tokens_tests;
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
mod custom_resource_tests;
#[cfg(test)]
mod decode_tests;
#[cfg(test)]
mod dry_run_tests;
#[cfg(test)]
mod endpointslice_tests;
#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod metadata_tests;
#[cfg(test)]
mod networking_tests;
#[cfg(test)]
mod priority_tests;
#[cfg(test)]
mod rbac_tests;
#[cfg(test)]
mod render_tests;
#[cfg(test)]
mod revision_tests;
#[cfg(test)]
mod service_account_admission_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod storage_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod yaml_body_tests;

use alloc::string::String;
use alloc::vec::Vec;

pub use crate::cluster::{Cluster, start_revision};
pub(crate) use objects::NamespacePass;
pub use objects::connect::{DEFAULT_KUBELET_PORT, KubeletCall, KubeletCallKind, StreamOptions};
pub use request::{ApiRequest, ApiResponse, Method, Route};
pub use watch::{WatchPoll, Watcher};
pub(crate) use workers::Registrations;
pub use workers::SuiStatus;

use crate::auth::Identity;
use crate::{Error, UnixTime};

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
    /// or answers kube's 504 `ResourceVersionTooLarge`. A pod create waiting for its
    /// namespace's `default` ServiceAccount is asked again the same way (it changed nothing).
    Pending {
        /// The revision the request needs.
        revision: u64,
        /// When core stops waiting.
        deadline: UnixTime,
    },
    /// A pod subresource kube-apiserver hands to the pod's kubelet (`log`, `exec`, `attach`,
    /// `portforward`): checked and resolved here; the runtime connects and relays.
    Kubelet(alloc::boxed::Box<KubeletCall>),
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
                shows_revision: None,
                cache_control: None,
            }),
            Self::Watch(_) | Self::Pending { .. } | Self::Kubelet(_) => None,
        }
    }
}

impl From<ApiResponse> for Outcome {
    fn from(response: ApiResponse) -> Self {
        Self::Response(response)
    }
}

/// What one request gathers below its handler: warnings raised by a `Warn` admission policy
/// binding, added to the response's own.
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub(crate) warnings: Vec<String>,
    /// A pod create was refused because its namespace has no `default` ServiceAccount yet.
    pub(crate) missing_default_account: bool,
}

/// How long a pod create waits for its namespace's `default` ServiceAccount: kube's
/// ServiceAccount admission looks it up ten times, 100 to 200 ms apart, before refusing.
const DEFAULT_ACCOUNT_WAIT_SECS: u64 = 2;

impl Cluster {
    /// Answers one request at `now`. Never panics; errors become `Status` responses.
    pub fn handle_request(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Outcome {
        self.call = Call::default();
        match self.dispatch(now, req) {
            Ok(Outcome::Response(mut response)) if !self.call.warnings.is_empty() => {
                let mut warnings = core::mem::take(&mut self.call.warnings);
                warnings.append(&mut response.warnings);
                response.warnings = warnings;
                Outcome::Response(response)
            }
            Ok(outcome) => outcome,
            Err(error) => self
                .wait_for_default_account(now, req)
                .unwrap_or_else(|| Outcome::Response(ApiResponse::error(&error))),
        }
    }

    /// A pod create refused for want of its namespace's `default` ServiceAccount, which the
    /// serviceaccount controller creates right after the namespace: asked again at the next
    /// write, for up to [`DEFAULT_ACCOUNT_WAIT_SECS`], before the refusal is the answer. The
    /// refused attempt changed nothing.
    fn wait_for_default_account(&self, now: UnixTime, req: &ApiRequest<'_>) -> Option<Outcome> {
        if !self.call.missing_default_account {
            return None;
        }
        let deadline = req
            .waiting_since
            .unwrap_or(now)
            .plus_secs(DEFAULT_ACCOUNT_WAIT_SECS);
        (now < deadline).then(|| Outcome::Pending {
            revision: self.store.revision().saturating_add(1),
            deadline,
        })
    }

    fn dispatch(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<Outcome, Error> {
        let route = request::route(req.path, &self.crds);
        // The seed's worker endpoints authenticate by X-Seal-Token (or the relay credential).
        if let Some(Route::Worker(endpoint)) = route {
            return Ok(self.handle_worker(now, req, endpoint));
        }
        // The K3s supervisor authenticates its own way (basic auth as `node`), as k3s does.
        if let Some(Route::K3s(endpoint)) = route {
            return Ok(self.handle_k3s(now, req, endpoint).into());
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
                        shows_revision: None,
                        cache_control: None,
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
            Route::OpenId(document) => self.openid_document(document, req.path).map(Into::into),
            Route::Health(_)
            | Route::Version
            | Route::Review(_)
            | Route::ApiServices(_)
            | Route::K3s(_) => Err(Error::PathNotFound(req.path.into())),
        }
    }
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
