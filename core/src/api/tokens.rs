//! ServiceAccount tokens over the API, as kube-apiserver 1.32 serves them:
//! `POST .../serviceaccounts/<name>/token` issues one (`TokenREST.Create`), the issuer's OIDC
//! discovery document and JWKS publish the key that checks them, and
//! [`Cluster::authenticate_service_account`] is kube's service-account authenticator with its
//! validator: signature, audiences, times, then the account and the bound object as the store
//! holds them now (a token bound to a deleted or recreated pod no longer authenticates).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::request::{self, ApiRequest, ApiResponse, OpenIdDocument, Query};
use crate::auth::{Identity, ServiceAccountUser};
use crate::cluster::Cluster;
use crate::error::Cause;
use crate::resource::ResourceId;
use crate::serviceaccount::{self as sa, Claims, ObjectRef};
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j};

const API_VERSION: &str = "authentication.k8s.io/v1";
const KIND: &str = "TokenRequest";
/// The group-qualified kind kube's Invalid errors name.
const QUALIFIED_KIND: &str = "TokenRequest.authentication.k8s.io";
/// The JWKS media type (`mimeJWKS`).
const JWKS_MEDIA_TYPE: &str = "application/jwk-set+json";
/// kube's caching of the issuer documents (the static key getter's one hour).
const DOCUMENT_CACHE_CONTROL: &str = "public, max-age=3600";

/// What the validator reads of a stored object.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Stored {
    metadata: StoredMeta,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StoredMeta {
    uid: String,
    #[serde(rename = "deletionTimestamp")]
    deletion_timestamp: Option<String>,
}

impl StoredMeta {
    /// Whether the object was deleted more than the leeway before `now` (kube's
    /// `DeletionTimestamp.Before(now - leeway)`): a terminating pod's tokens keep working
    /// through its grace period and one minute more.
    fn deleted_before(&self, now: UnixTime) -> bool {
        let Some(at) = self
            .deletion_timestamp
            .as_deref()
            .and_then(UnixTime::parse_rfc3339)
        else {
            return false;
        };
        let cutoff = now
            .nanos
            .saturating_sub(sa::LEEWAY_SECS.unsigned_abs().saturating_mul(1_000_000_000));
        at.nanos < cutoff
    }
}

/// A token's check of one object it names: missing, another uid, or deleted.
enum ObjectCheck {
    Missing,
    OtherUid(String),
    Deleted,
}

impl Cluster {
    fn stored_meta(&self, resource: ResourceId, namespace: &str, name: &str) -> Option<StoredMeta> {
        let stored = self.store.get(&ObjectKey::new(resource, namespace, name))?;
        Some(
            serde_json::from_slice::<Stored>(&stored.json.bytes())
                .unwrap_or_default()
                .metadata,
        )
    }

    fn check_object(
        &self,
        now: UnixTime,
        resource: ResourceId,
        namespace: &str,
        claimed: &ObjectRef,
    ) -> Result<(), ObjectCheck> {
        let meta = self
            .stored_meta(resource, namespace, &claimed.name)
            .ok_or(ObjectCheck::Missing)?;
        if meta.uid != claimed.uid {
            return Err(ObjectCheck::OtherUid(meta.uid));
        }
        if meta.deleted_before(now) {
            return Err(ObjectCheck::Deleted);
        }
        Ok(())
    }

    /// kube's JWT authenticator for this issuer, asked for `audiences` (`None`: the API's own):
    /// `Ok(None)` when the token is not a ServiceAccount token of this issuer (another
    /// authenticator's), the account and the audiences it is valid for, or the error kube gives
    /// (what a TokenReview shows; a request gets a bare 401). A signature verified once is
    /// remembered ([`sa::VerifiedTokens`]); everything else is checked on every call.
    pub(crate) fn authenticate_service_account(
        &mut self,
        now: UnixTime,
        token: &str,
        audiences: Option<&[&str]>,
    ) -> Result<Option<(ServiceAccountUser, Vec<String>)>, String> {
        let Some(key) = &self.config.service_account_key else {
            return Ok(None);
        };
        let verified = self.service_account_tokens.verify(
            key,
            &self.config.service_account_issuer,
            token,
            now,
        );
        let claims = match verified {
            Ok(claims) => claims,
            Err(rejection) => {
                return match rejection.message() {
                    None => Ok(None),
                    Some(message) => Err(message.into()),
                };
            }
        };
        // A token without audiences is for the API's own (kube's "legacy" tokens).
        let implicit = self.config.api_audiences();
        let audiences = audiences.unwrap_or(&implicit);
        let of_token: Vec<&str> = if claims.audiences.is_empty() {
            implicit.clone()
        } else {
            claims.audiences.iter().map(String::as_str).collect()
        };
        let valid_for: Vec<String> = audiences
            .iter()
            .filter(|a| of_token.contains(a))
            .map(ToString::to_string)
            .collect();
        if valid_for.is_empty() {
            return Err(alloc::format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quoted_list(&of_token),
                go_quoted_list(audiences)
            ));
        }
        claims.check_times(now).map_err(String::from)?;
        let user = self.validate_service_account(now, &claims)?;
        Ok(Some((user, valid_for)))
    }

    /// kube's `validator.Validate` after the times: the account still exists with the uid the
    /// token names, and so does the Secret, pod or Node the token is bound to.
    fn validate_service_account(
        &self,
        now: UnixTime,
        claims: &Claims,
    ) -> Result<ServiceAccountUser, String> {
        let namespace = claims.namespace.as_str();
        let account = &claims.service_account;
        match self.check_object(now, ResourceId::ServiceAccounts, namespace, account) {
            Ok(()) => {}
            Err(ObjectCheck::Missing) => {
                return Err(alloc::format!(
                    "serviceaccounts {} not found",
                    crate::gostr::quote(&account.name)
                ));
            }
            Err(ObjectCheck::OtherUid(uid)) => {
                return Err(alloc::format!(
                    "service account UID ({uid}) does not match claim ({})",
                    account.uid
                ));
            }
            Err(ObjectCheck::Deleted) => {
                return Err(alloc::format!(
                    "service account {namespace}/{} has been deleted",
                    account.name
                ));
            }
        }
        // A bound object that is gone (or deleted) invalidates the token; another uid is said.
        let bound = |resource, namespace, claimed: &ObjectRef, what: &str| {
            self.check_object(now, resource, namespace, claimed)
                .map_err(|check| match check {
                    ObjectCheck::OtherUid(uid) => alloc::format!(
                        "{what} UID ({uid}) does not match service account {what} ref claim ({})",
                        claimed.uid
                    ),
                    ObjectCheck::Missing | ObjectCheck::Deleted => {
                        String::from("service account token has been invalidated")
                    }
                })
        };
        if let Some(secret) = &claims.secret {
            bound(ResourceId::Secrets, namespace, secret, "secret")?;
        }
        if let Some(pod) = &claims.pod {
            bound(ResourceId::Pods, namespace, pod, "pod")?;
        }
        // A pod-bound token carries its pod's node for information; a node-bound one is
        // checked against the Node.
        if let (None, Some(node)) = (&claims.pod, &claims.node) {
            bound(ResourceId::Nodes, "", node, "node")?;
        }
        Ok(ServiceAccountUser {
            namespace: namespace.into(),
            name: account.name.clone(),
            uid: account.uid.clone(),
            pod: claims.pod.clone(),
            node: claims.node.clone(),
            credential_id: if claims.id.is_empty() {
                String::new()
            } else {
                alloc::format!("JTI={}", claims.id)
            },
        })
    }

    /// `GET /.well-known/openid-configuration` and `GET /openid/v1/jwks`: served when this
    /// server issues tokens under an issuer that is an https URL (as kube serves them).
    pub(super) fn openid_document(
        &self,
        document: OpenIdDocument,
        path: &str,
    ) -> Result<ApiResponse, Error> {
        let issuer = self.config.service_account_issuer.as_str();
        let Some(key) = self
            .config
            .service_account_key
            .as_ref()
            .filter(|_| sa::discoverable(issuer))
        else {
            return Err(Error::PathNotFound(path.into()));
        };
        let (content_type, body) = match document {
            OpenIdDocument::Configuration => (
                request::JSON,
                sa::openid_configuration(issuer, &self.config.jwks_uri()),
            ),
            OpenIdDocument::Keys => (JWKS_MEDIA_TYPE, key.jwks()),
        };
        Ok(ApiResponse {
            content_type,
            cache_control: Some(DOCUMENT_CACHE_CONTROL),
            ..ApiResponse::json(200, body.into_bytes())
        })
    }

    /// `POST /api/v1/namespaces/{namespace}/serviceaccounts/{name}/token`: kube's
    /// `TokenREST.Create`, after NodeRestriction's check of a node's request. Nothing is stored.
    pub(super) fn create_token(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        identity: &Identity,
        namespace: &str,
        name: &str,
    ) -> Result<ApiResponse, Error> {
        if self.config.service_account_key.is_none() {
            return Err(Error::PathNotFound(req.path.into()));
        }
        Query::parse(req.query)?.dry_run("CreateOptions")?;
        let mut body = self.decode_body(req, API_VERSION, KIND)?;
        check_type(&body)?;
        let spec = TokenSpec::parse(body.get("spec"), &self.config.api_audiences())?;
        if let Identity::Node(node) = identity {
            crate::admission::node_restriction::token_request(
                &node.node_id,
                namespace,
                name,
                &body,
                &self.store,
            )?;
        }
        let Some(map) = body.as_object_mut() else {
            return Err(Error::BadRequest(
                "the body of a TokenRequest must be a JSON object".into(),
            ));
        };
        let mut metadata = match map.remove("metadata") {
            Some(Value::Object(meta)) => meta,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(decode_error(
                    "TokenRequest",
                    "metadata",
                    "v1.ObjectMeta",
                    &other,
                ));
            }
        };
        for (field, path) in [("name", name), ("namespace", namespace)] {
            match metadata.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(given)) if given.is_empty() || given == path => {}
                Some(Value::String(given)) => {
                    return Err(Error::Invalid {
                        kind: QUALIFIED_KIND.into(),
                        name: name.into(),
                        causes: alloc::vec![Cause::invalid(
                            alloc::format!("metadata.{field}"),
                            given,
                            &alloc::format!("must match the service account {field} if specified"),
                        )],
                    });
                }
                Some(other) => {
                    let field = alloc::format!("metadata.{field}");
                    return Err(decode_error("ObjectMeta", &field, "string", other));
                }
            }
        }
        let account = self.stored_object(ResourceId::ServiceAccounts, namespace, name)?;
        let account_uid = j::string_at(&account, "/metadata/uid");
        metadata.insert("name".into(), name.into());
        metadata.insert("namespace".into(), namespace.into());
        metadata.insert("creationTimestamp".into(), now.rfc3339().into());
        spec.validate()?;
        let bound = self.bound_object(namespace, name, spec.bound.as_ref())?;
        // kube's `--service-account-extend-token-expiration` (on by default): a pod-bound token
        // asked for the kubelet's 3607 s for the API's audiences lives a year, warned after.
        let api_audiences = self.config.api_audiences();
        let extended = bound.pod.is_some()
            && spec.expiration_secs == sa::WARN_ONLY_EXPIRATION_SECS
            && spec
                .audiences
                .iter()
                .all(|a| api_audiences.contains(&a.as_str()));
        let issued = i64::try_from(now.secs()).unwrap_or(i64::MAX);
        let lifetime = if extended {
            sa::EXTENDED_EXPIRATION_SECS
        } else {
            spec.expiration_secs
        };
        let claims = Claims {
            issuer: self.config.service_account_issuer.clone(),
            subject: sa::username(namespace, name),
            audiences: spec.audiences.clone(),
            issued_at: Some(issued),
            not_before: Some(issued),
            expiry: Some(issued.saturating_add(lifetime)),
            id: self.ids.uuid(),
            namespace: namespace.into(),
            service_account: ObjectRef {
                name: name.into(),
                uid: account_uid,
            },
            pod: bound.pod,
            secret: bound.secret,
            node: bound.node,
            warn_after: extended.then(|| issued.saturating_add(spec.expiration_secs)),
        };
        let Some(key) = &self.config.service_account_key else {
            return Err(Error::PathNotFound(req.path.into()));
        };
        let token = key.sign(&claims);
        let expires = now.plus_secs(spec.expiration_secs.unsigned_abs());
        let mut spec_out = Map::new();
        spec_out.insert("audiences".into(), Value::from(spec.audiences));
        spec_out.insert("expirationSeconds".into(), spec.expiration_secs.into());
        if let Some(bound) = spec.bound {
            spec_out.insert("boundObjectRef".into(), bound.to_json());
        }
        let answer = json!({
            "kind": KIND,
            "apiVersion": API_VERSION,
            "metadata": metadata,
            "spec": spec_out,
            "status": {"token": token, "expirationTimestamp": expires.rfc3339()},
        });
        Ok(ApiResponse::json(201, j::to_vec(&answer)))
    }

    /// A stored object as JSON, or kube's 404 for it.
    fn stored_object(
        &self,
        resource: ResourceId,
        namespace: &str,
        name: &str,
    ) -> Result<Value, Error> {
        let plural = resource.info().plural;
        if name.is_empty() {
            return Err(Error::BadRequest("Name parameter required.".into()));
        }
        let stored = self
            .store
            .get(&ObjectKey::new(resource, namespace, name))
            .ok_or_else(|| Error::NotFound {
                resource: plural.into(),
                name: name.into(),
            })?;
        serde_json::from_slice(&stored.json.bytes())
            .map_err(|_| Error::Internal(alloc::format!("stored {plural} {name} does not parse")))
    }

    /// The object a TokenRequest binds its token to, looked up as kube does: a pod (with its
    /// node, when scheduled), a Node or a Secret, whose uid must be the reference's if it
    /// names one.
    fn bound_object(
        &self,
        namespace: &str,
        account: &str,
        reference: Option<&BoundRef>,
    ) -> Result<Bound, Error> {
        let mut bound = Bound::default();
        let Some(reference) = reference else {
            return Ok(bound);
        };
        let (group, version) = group_version(&reference.api_version);
        let uid = match (group, reference.kind.as_str()) {
            ("", "Pod") => {
                let pod = self.stored_object(ResourceId::Pods, namespace, &reference.name)?;
                if j::str_at(&pod, "/spec/serviceAccountName") != account {
                    return Err(Error::BadRequest(alloc::format!(
                        "cannot bind token for serviceaccount {} to pod running with different serviceaccount name.",
                        crate::gostr::quote(account)
                    )));
                }
                let node_name = j::str_at(&pod, "/spec/nodeName");
                if !node_name.is_empty() {
                    // A pod's node that is gone still names the node, without a uid.
                    let node_uid = self
                        .stored_meta(ResourceId::Nodes, "", node_name)
                        .map(|m| m.uid)
                        .unwrap_or_default();
                    bound.node = Some(ObjectRef {
                        name: node_name.into(),
                        uid: node_uid,
                    });
                }
                let uid = j::string_at(&pod, "/metadata/uid");
                bound.pod = Some(ObjectRef {
                    name: reference.name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            ("", "Node") => {
                let node = self.stored_object(ResourceId::Nodes, "", &reference.name)?;
                let uid = j::string_at(&node, "/metadata/uid");
                bound.node = Some(ObjectRef {
                    name: reference.name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            ("", "Secret") => {
                let secret = self.stored_object(ResourceId::Secrets, namespace, &reference.name)?;
                let uid = j::string_at(&secret, "/metadata/uid");
                bound.secret = Some(ObjectRef {
                    name: reference.name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            (group, kind) => {
                return Err(Error::BadRequest(alloc::format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        if !reference.uid.is_empty() && uid != reference.uid {
            return Err(Error::Conflict {
                resource: reference.kind.clone(),
                name: reference.name.clone(),
                detail: alloc::format!(
                    "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
                    reference.uid
                ),
            });
        }
        Ok(bound)
    }
}

/// What a token is bound to.
#[derive(Default)]
struct Bound {
    pod: Option<ObjectRef>,
    secret: Option<ObjectRef>,
    node: Option<ObjectRef>,
}

/// `spec.boundObjectRef`.
struct BoundRef {
    kind: String,
    api_version: String,
    name: String,
    uid: String,
}

impl BoundRef {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (key, value) in [
            ("kind", &self.kind),
            ("apiVersion", &self.api_version),
            ("name", &self.name),
            ("uid", &self.uid),
        ] {
            if !value.is_empty() {
                map.insert(key.into(), value.as_str().into());
            }
        }
        Value::Object(map)
    }
}

/// A TokenRequest's `spec`, defaulted as kube defaults it.
struct TokenSpec {
    audiences: Vec<String>,
    expiration_secs: i64,
    bound: Option<BoundRef>,
}

impl TokenSpec {
    fn parse(spec: Option<&Value>, api_audiences: &[&str]) -> Result<Self, Error> {
        static NO_SPEC: Value = Value::Null;
        let spec = match spec {
            None | Some(Value::Null) => &NO_SPEC,
            Some(value @ Value::Object(_)) => value,
            Some(other) => {
                return Err(decode_error(
                    "TokenRequest",
                    "spec",
                    "v1.TokenRequestSpec",
                    other,
                ));
            }
        };
        let audiences = match spec.get("audiences") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|a| {
                    a.as_str().map(ToString::to_string).ok_or_else(|| {
                        decode_error("TokenRequestSpec", "spec.audiences", "string", a)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(decode_error(
                    "TokenRequestSpec",
                    "spec.audiences",
                    "[]string",
                    other,
                ));
            }
        };
        let audiences = if audiences.is_empty() {
            api_audiences.iter().map(ToString::to_string).collect()
        } else {
            audiences
        };
        let expiration_secs = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => sa::DEFAULT_EXPIRATION_SECS,
            Some(other) => other.as_i64().ok_or_else(|| {
                decode_error("TokenRequestSpec", "spec.expirationSeconds", "int64", other)
            })?,
        };
        let bound = match spec.get("boundObjectRef") {
            None | Some(Value::Null) => None,
            Some(Value::Object(r)) => {
                let text = |key: &str| match r.get(key) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(decode_error(
                        "BoundObjectReference",
                        &alloc::format!("spec.boundObjectRef.{key}"),
                        "string",
                        other,
                    )),
                };
                Some(BoundRef {
                    kind: text("kind")?,
                    api_version: text("apiVersion")?,
                    name: text("name")?,
                    uid: text("uid")?,
                })
            }
            Some(other) => {
                return Err(decode_error(
                    "TokenRequestSpec",
                    "spec.boundObjectRef",
                    "v1.BoundObjectReference",
                    other,
                ));
            }
        };
        Ok(Self {
            audiences,
            expiration_secs,
            bound,
        })
    }

    /// `ValidateTokenRequest`.
    fn validate(&self) -> Result<(), Error> {
        let detail = if self.expiration_secs < sa::MIN_EXPIRATION_SECS {
            "may not specify a duration less than 10 minutes"
        } else if self.expiration_secs > sa::MAX_EXPIRATION_SECS {
            "may not specify a duration larger than 2^32 seconds"
        } else {
            return Ok(());
        };
        Err(Error::Invalid {
            kind: QUALIFIED_KIND.into(),
            name: String::new(),
            causes: alloc::vec![Cause {
                reason: "FieldValueInvalid",
                message: alloc::format!("Invalid value: {}: {detail}", self.expiration_secs),
                field: "spec.expirationSeconds".into(),
            }],
        })
    }
}

/// The body names this kind (or none), as the decoder requires.
fn check_type(body: &Value) -> Result<(), Error> {
    match body.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {}
        Some(v) if v == API_VERSION => {}
        Some(v) => {
            return Err(Error::BadRequest(alloc::format!(
                "the API version in the data ({v}) does not match the expected API version ({API_VERSION})"
            )));
        }
    }
    match body.get("kind").and_then(Value::as_str) {
        None | Some("") | Some(KIND) => Ok(()),
        Some(k) => Err(Error::BadRequest(alloc::format!(
            "{k} in version \"v1\" cannot be handled as a {KIND}: the kind in the data ({k}) does not match the expected kind ({KIND})"
        ))),
    }
}

/// The decoder's 400 for a field of the wrong JSON type (Go's `UnmarshalTypeError`, under
/// kube's "cannot be handled as" prefix).
fn decode_error(go_struct: &str, field: &str, go_type: &str, given: &Value) -> Error {
    let json_type = match given {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) => return number_error(go_struct, field, go_type, n),
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Error::BadRequest(alloc::format!(
        "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal {json_type} into Go struct field {go_struct}.{field} of type {go_type}"
    ))
}

fn number_error(go_struct: &str, field: &str, go_type: &str, n: &serde_json::Number) -> Error {
    let shown = if go_type == "int64" {
        alloc::format!("number {n}")
    } else {
        "number".into()
    };
    Error::BadRequest(alloc::format!(
        "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal {shown} into Go struct field {go_struct}.{field} of type {go_type}"
    ))
}

/// Go's `schema.ParseGroupVersion` as `FromAPIVersionAndKind` uses it: `v1` is the core group;
/// anything with more than one `/` names no group-version.
fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        None => ("", api_version),
        Some((_, rest)) if rest.contains('/') => ("", ""),
        Some((group, version)) => (group, version),
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| crate::gostr::quote(s)).collect();
    alloc::format!("[{}]", quoted.join(" "))
}
