//! Who is calling and what they may do: authentication (admin and user credentials, client
//! certificates, Seal tokens of nodes) and authorization (the node authorizer, kube's
//! EventRateLimit for nodes) of a request, decided on its head before any body is read.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::request::{self, ApiRequest, ApiResponse, Method, ResourcePath, Route};
use super::workers;
use crate::auth::Identity;
use crate::authz::Attributes;
use crate::cluster::Cluster;
use crate::{Error, UnixTime};

impl Cluster {
    /// Resolves the caller: Seal tokens through the validator, ServiceAccount tokens through
    /// their issuer's key and the store, other tokens in `auth`. A ServiceAccount token that
    /// does not authenticate is kube's bare 401 `Unauthorized` (kube logs the reason; a
    /// TokenReview shows it).
    pub(crate) fn identify(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
    ) -> Result<Identity, Error> {
        if let Some(token) = req.authorization.and_then(crate::auth::bearer) {
            if token.starts_with(crate::token::TOKEN_PREFIX) {
                let node = self.tokens.validate(token, now, None, &self.stakes)?;
                return Ok(Identity::Node(Box::new(node)));
            }
            match self.authenticate_service_account(now, token, None) {
                Ok(None) => {}
                Ok(Some((user, _))) => return Ok(Identity::ServiceAccount(Box::new(user))),
                Err(_) => return Err(Error::Unauthorized("Unauthorized".into())),
            }
        }
        if let (None, Some(user)) = (req.authorization, req.client_cert)
            && user.cluster_ca
        {
            if let Some(component) = crate::auth::Component::of_user(&user.name) {
                return Ok(Identity::Component(component));
            }
            return self
                .node_by_certificate(user)
                .map(|node| Identity::Node(Box::new(node)));
        }
        crate::auth::authenticate_with_cert(&self.config, req.authorization, req.client_cert)
    }

    /// The node a cluster-CA client certificate names (`system:node:NAME` in `system:nodes`,
    /// the only certificates the kubelet signers issue), held to its stake as a Seal token is:
    /// the stake its Node is registered to, or, before it registered, the stake of the Seal
    /// token that asked for its newest issued certificate (`spec.extra`); a withdrawn stake or
    /// one below the minimum is 401 like an expired token.
    pub(super) fn node_by_certificate(
        &self,
        user: &crate::auth::CertUser,
    ) -> Result<crate::token::NodeIdentity, Error> {
        let unauthorized = || Error::Unauthorized("Unauthorized".into());
        let node = user
            .name
            .strip_prefix("system:node:")
            .filter(|n| !n.is_empty() && user.groups.iter().any(|g| g == "system:nodes"))
            .ok_or_else(unauthorized)?;
        let stake_id = self
            .registrations
            .stake_of(node)
            .or_else(|| self.stake_of_issued_certificate(&user.name))
            .ok_or_else(unauthorized)?;
        let stake = self.stakes.get(&stake_id).ok_or_else(unauthorized)?;
        if !self.stakes.admits(stake) {
            return Err(unauthorized());
        }
        Ok(crate::token::NodeIdentity {
            node_id: node.into(),
            stake_id,
            owner: stake.owner,
            amount: stake.amount,
            trust: stake.trust,
            stake_generation: stake.generation,
            // The certificate's own validity was checked in the handshake.
            expires: u64::MAX,
            // The certificate's key type (no Sui signature is involved).
            scheme: crate::token::SignatureScheme::Secp256r1,
        })
    }

    /// The stake recorded (`spec.extra`) on the newest issued CSR of `username`.
    fn stake_of_issued_certificate(&self, username: &str) -> Option<[u8; 32]> {
        self.store
            .range(
                crate::resource::ResourceId::CertificateSigningRequests,
                None,
                None,
            )
            .filter_map(|(_, o)| serde_json::from_slice::<serde_json::Value>(&o.json.bytes()).ok())
            .filter(|csr| {
                crate::json::str_at(csr, "/spec/username") == username
                    && !crate::json::str_at(csr, "/status/certificate").is_empty()
            })
            .max_by_key(|csr| crate::json::string_at(csr, "/metadata/creationTimestamp"))
            .and_then(|csr| {
                let hex = crate::json::string_at(&csr, "/spec/extra/nautilus.io~1stake-id/0");
                crate::token::parse_hex32(&hex)
            })
    }

    /// Decides a request on its head alone (method, path, query and headers, no body): the
    /// caller is authenticated and authorized for the verb on the path, with the answer the whole
    /// request would get when it is not. The runtime calls this before it reads a body, so no
    /// byte of an unauthorized request is held; [`Cluster::handle_request`] repeats the checks.
    pub fn admit_head(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<(), ApiResponse> {
        let route = request::route(req.path, &self.crds);
        if let Some(Route::Worker(endpoint)) = route {
            return self
                .admit_worker_head(now, req, endpoint)
                .map_err(|e| workers::seed_error(&e));
        }
        if let Some(Route::K3s(endpoint)) = route {
            return self.admit_k3s_head(now, req, endpoint);
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
            Identity::ServiceAccount(_) | Identity::Component(_) => identity.username(),
            _ => "system:nautilus:relay".into(),
        };
        Err(ApiResponse::error(&path_forbidden(&user, req)))
    }

    /// Who is calling and whether they may use this method on this path: everything a request's
    /// head decides, shared by [`Cluster::admit_head`] and `dispatch`. Health and version
    /// paths are open to anonymous callers (a credential that is present must still be valid).
    pub(super) fn admit(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        route: Option<&Route<'_>>,
    ) -> Result<Identity, Error> {
        let identity = self.identify(now, req)?;
        // Any caller may ask a review about itself, anonymous ones included; the others (a
        // TokenReview) are decided on the head like any resource.
        if let Some(Route::Review(review)) = route {
            super::access::may_create(&identity, review)?;
        }
        if matches!(
            route,
            Some(Route::Health(_) | Route::Version | Route::Review(_))
        ) {
            return Ok(identity);
        }
        self.require_user(&identity)?;
        if let Some(Route::OpenId(_)) = route {
            let reads = matches!(req.method, Method::Get | Method::Head);
            let allowed = matches!(identity, Identity::Admin | Identity::User(_))
                || (reads && super::access::may_read_issuer_documents(&identity));
            if !allowed {
                return Err(path_forbidden(&identity.username(), req));
            }
        }
        if let Some(Route::Resource(path)) = route {
            crate::authz::authorize(
                &identity,
                || {
                    let query = request::Query::parse(req.query)?;
                    let watch = path.watch_prefix || query.flag("watch")?;
                    Ok(attributes(
                        req.method,
                        path,
                        watch,
                        query.get("fieldSelector"),
                    ))
                },
                &self.store,
                &self.references,
            )?;
        }
        Ok(identity)
    }

    fn require_user(&self, identity: &Identity) -> Result<(), Error> {
        match identity {
            Identity::Anonymous => Err(Error::Unauthorized("Unauthorized".into())),
            _ => Ok(()),
        }
    }

    /// kube's EventRateLimit admission for a node identity's event writes (dry runs are not
    /// counted, as in kube): 429 once its token bucket is empty.
    pub(super) fn limit_node_events(
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
}

/// kube-apiserver's denial of a non-resource path: `forbidden: User "<user>" cannot <verb>
/// path "<path>"`, the verb the lower-cased HTTP method.
fn path_forbidden(user: &str, req: &ApiRequest<'_>) -> Error {
    let verb = match req.method {
        Method::Get | Method::Head => "get",
        Method::Post => "post",
        Method::Put => "put",
        Method::Patch => "patch",
        Method::Delete => "delete",
        Method::Options | Method::Other => "use",
    };
    Error::Forbidden {
        resource: String::new(),
        name: String::new(),
        message: alloc::format!(
            "forbidden: User \"{user}\" cannot {verb} path \"{}\"",
            req.path
        ),
        causes: Vec::new(),
    }
}

/// What authorization is asked about a request: kube's request-info verb of `method` on `path`
/// (a GET is a watch, a get or a list), with the path's parts and the field selector.
pub(crate) fn attributes<'a>(
    method: Method,
    path: &'a ResourcePath<'a>,
    watch: bool,
    field_selector: Option<&str>,
) -> Attributes<'a> {
    let verb = match (method, path.name, watch) {
        (Method::Get | Method::Head, _, true) => "watch",
        (Method::Get | Method::Head, Some(_), false) => "get",
        (Method::Get | Method::Head, None, false) => "list",
        (Method::Post, _, _) => "create",
        (Method::Put, _, _) => "update",
        (Method::Patch, _, _) => "patch",
        (Method::Delete, Some(_), _) => "delete",
        _ => "deletecollection",
    };
    Attributes::new(
        verb,
        path.resource.rt(),
        path.namespace,
        path.name,
        path.subresource,
        field_selector,
    )
}
