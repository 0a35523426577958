//! The request and response shapes between the runtime and core, and the parsing of paths,
//! query strings and media types that every handler shares.

use alloc::string::String;
use alloc::vec::Vec;

use crate::Error;
use crate::resource::{self, Resource};

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// Parses an HTTP method token.
    pub fn parse(text: &str) -> Self {
        match text {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

/// One HTTP request as the runtime hands it to core: only the parts core needs.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// Method.
    pub method: Method,
    /// Path without the query string.
    pub path: &'a str,
    /// Raw query string (without `?`), possibly empty.
    pub query: &'a str,
    /// `Accept` header.
    pub accept: Option<&'a str>,
    /// `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `User-Agent` header (default field manager).
    pub user_agent: Option<&'a str>,
    /// `X-Seal-Token` header of the seed's worker endpoints.
    pub seal_token: Option<&'a str>,
    /// The `K3s-Node-*` headers of a K3s agent's certificate requests.
    pub k3s_node: super::k3s::NodeHeaders<'a>,
    /// Body bytes (the runtime stops reading past the body limit and says so in `body_too_large`).
    pub body: &'a [u8],
    /// The body exceeded the runtime's read limit; `body` is empty.
    pub body_too_large: bool,
    /// The connection's client-certificate identity, set by the runtime only when it trusts the
    /// proxy that verified it; used when no `Authorization` header is present.
    pub client_cert: Option<&'a crate::auth::CertUser>,
    /// When core first saw this request, set by the runtime when it calls again after an
    /// [`Outcome::Pending`](super::Outcome::Pending) answer; `None`: now.
    pub waiting_since: Option<crate::UnixTime>,
}

impl<'a> ApiRequest<'a> {
    /// Whether this request asks for a watch stream (`watch=true`, or the legacy `/watch/`
    /// path), read as routing reads it: a replica serves watches from its own applied state,
    /// everything else after a read index or on the leader. A query that does not parse is
    /// no watch (core answers it 400 wherever it is served).
    pub fn asks_for_watch(&self) -> bool {
        let prefix = matches!(
            parse_path(self.path),
            Some(ParsedPath::Api(api)) if api.resource_shape().is_some_and(|s| s.watch_prefix)
        );
        prefix
            || Query::parse(self.query)
                .and_then(|query| query.flag("watch"))
                .unwrap_or(false)
    }

    /// The body's media type without parameters (`application/json` of
    /// `application/json; charset=utf-8`), `default` when no Content-Type was sent.
    pub(crate) fn media_type(&self, default: &'a str) -> &'a str {
        let full = self.content_type.unwrap_or(default);
        full.split(';').next().unwrap_or("").trim()
    }

    /// A request with only method and path (and query after `?`) set.
    pub fn new(method: Method, path_and_query: &'a str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method,
            path,
            query,
            accept: None,
            content_type: None,
            authorization: None,
            user_agent: None,
            seal_token: None,
            k3s_node: super::k3s::NodeHeaders::default(),
            body: &[],
            body_too_large: false,
            client_cert: None,
            waiting_since: None,
        }
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// `Warning` headers (text only; the runtime adds `299 - "..."`).
    pub warnings: Vec<String>,
    /// For a read of one built-in object: the revision of the version it shows. The answer
    /// shows nothing newer (that version is the object's latest), so a runtime that answers
    /// only what is durable may send it once that revision is, without waiting for changes to
    /// other objects. `None`: the answer may show anything up to the latest state.
    pub shows_revision: Option<u64>,
    /// `Cache-Control` when it is not kube's default for API answers (`no-cache, private`):
    /// the issuer's OIDC documents may be cached for an hour.
    pub cache_control: Option<&'static str>,
}

/// JSON media type.
pub const JSON: &str = "application/json";
/// Table media type as kube-apiserver labels it.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// Aggregated discovery media type.
pub const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Plain text (health endpoints).
pub const TEXT: &str = "text/plain; charset=utf-8";

impl ApiResponse {
    /// A JSON response.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: JSON,
            body,
            warnings: Vec::new(),
            shows_revision: None,
            cache_control: None,
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: body.as_bytes().to_vec(),
            warnings: Vec::new(),
            shows_revision: None,
            cache_control: None,
        }
    }

    /// The `Status` response for an error.
    pub fn error(error: &Error) -> Self {
        Self::json(error.code(), crate::json::to_vec(&error.to_status()))
    }
}

/// What the client accepts for object reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// Plain JSON objects and lists.
    Json,
    /// `meta.k8s.io/v1` Table.
    Table,
    /// Aggregated discovery (only meaningful on `/api` and `/apis`).
    AggregatedDiscovery,
    /// `meta.k8s.io` `PartialObjectMetadata` or `PartialObjectMetadataList`: only `metadata`.
    Metadata(MetadataView),
}

/// A metadata-only read's form: which kind was asked for, in which version and encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataView {
    /// `PartialObjectMetadataList` was asked for (a LIST), not `PartialObjectMetadata`.
    pub list: bool,
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub api_version: &'static str,
    /// Kubernetes protobuf rather than JSON.
    pub protobuf: bool,
}

impl MetadataView {
    /// `Content-Type` of a whole answer in this form.
    pub fn content_type(&self) -> &'static str {
        if self.protobuf {
            crate::protobuf::MEDIA_TYPE
        } else {
            JSON
        }
    }
}

/// Picks the first representation in `Accept` that core can produce, as kube-apiserver's
/// negotiation does: JSON objects, and the `meta.k8s.io` transforms (`as=Table` in JSON,
/// `as=PartialObjectMetadata[List]` in JSON or protobuf, versions `v1` and `v1beta1`).
pub fn negotiate(accept: Option<&str>) -> Result<Representation, Error> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Representation::Json);
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        // `*/*` and `application/*` stand for the first serializer, JSON.
        let protobuf = match media {
            "application/json" | "application/*" | "*/*" => false,
            crate::protobuf::MEDIA_TYPE => true,
            _ => continue,
        };
        let meta_version = match (param("g"), param("v")) {
            (Some("meta.k8s.io"), Some("v1")) => Some("meta.k8s.io/v1"),
            (Some("meta.k8s.io"), Some("v1beta1")) => Some("meta.k8s.io/v1beta1"),
            _ => None,
        };
        match (param("as"), meta_version) {
            // Whole objects are served as JSON only.
            (None, _) if !protobuf => return Ok(Representation::Json),
            (Some("Table"), Some(_)) if !protobuf => return Ok(Representation::Table),
            (Some(kind @ ("PartialObjectMetadata" | "PartialObjectMetadataList")), Some(v)) => {
                return Ok(Representation::Metadata(MetadataView {
                    list: kind == "PartialObjectMetadataList",
                    api_version: v,
                    protobuf,
                }));
            }
            (Some("APIGroupDiscoveryList"), _)
                if !protobuf
                    && param("g") == Some("apidiscovery.k8s.io")
                    && param("v") == Some("v2") =>
            {
                return Ok(Representation::AggregatedDiscovery);
            }
            _ => {}
        }
    }
    Err(Error::NotAcceptable(
        "only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf"
            .into(),
    ))
}

/// The query parameters of a request, percent-decoded.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// Most query parameters read from one request.
const MAX_QUERY_PARAMS: usize = 64;

impl Query {
    /// Parses `a=b&c=d` with `application/x-www-form-urlencoded` decoding (`+` is a space).
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            if pairs.len() >= MAX_QUERY_PARAMS {
                return Err(Error::BadRequest(alloc::format!(
                    "more than {MAX_QUERY_PARAMS} query parameters"
                )));
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Self { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (`dryRun=All&dryRun=All`).
    pub fn all<'q>(&'q self, name: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a write asks for a dry run (`dryRun=All`). `options_kind` is the options type kube
    /// names in its 422 for any other value (`CreateOptions`, `UpdateOptions`, `PatchOptions`,
    /// `DeleteOptions`).
    pub fn dry_run(&self, options_kind: &str) -> Result<bool, Error> {
        dry_run(self.all("dryRun"), options_kind)
    }

    /// A boolean parameter (`true`/`1`); absent is false, anything else is 400.
    pub fn flag(&self, name: &str) -> Result<bool, Error> {
        match self.get(name) {
            None | Some("false" | "0" | "") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(Error::BadRequest(alloc::format!(
                "invalid value for {name}: {other:?}, expected true or false"
            ))),
        }
    }

    /// A non-negative integer parameter.
    pub fn number(&self, name: &str) -> Result<Option<u64>, Error> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                Error::BadRequest(alloc::format!(
                    "invalid value for {name}: {text:?}, expected a non-negative integer"
                ))
            }),
        }
    }
}

pub use crate::cluster::object::dry_run;

fn decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| core::str::from_utf8(h).ok());
                let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(value) = value else {
                    return Err(Error::BadRequest(alloc::format!(
                        "malformed percent-encoding in query: {text:?}"
                    )));
                };
                out.push(value);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::BadRequest("query string is not valid UTF-8".into()))
}

/// Where a request path points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/healthz`, `/readyz`, `/livez` (and their sub-checks).
    Health(&'a str),
    /// `/version`.
    Version,
    /// `/api`.
    CoreApiVersions,
    /// `/apis`.
    ApiGroupList,
    /// `/apis/{group}`.
    ApiGroup(&'a str),
    /// `/api/v1` or `/apis/{group}/{version}`.
    ResourceList(&'a str, &'a str),
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/{api/v1|apis/g/v}`.
    OpenApiV3(&'a str),
    /// `/openapi/v2`.
    OpenApiV2,
    /// A resource collection, object or subresource.
    Resource(ResourcePath<'a>),
    /// A seed worker endpoint under `/api/v1/` (`register-worker`, `heartbeat`, `sui-events`).
    Worker(&'a str),
    /// An access review (`selfsubjectaccessreviews`, `selfsubjectrulesreviews`,
    /// `selfsubjectreviews`).
    Review(&'static super::access::Review),
    /// `apiregistration.k8s.io/v1` `apiservices`, the list or one by name.
    ApiServices(Option<&'a str>),
    /// The ServiceAccount issuer's OIDC discovery document or its JWKS.
    OpenId(OpenIdDocument),
    /// The K3s supervisor API an agent joins through (`/cacerts`, `/v1-k3s/...`).
    K3s(super::k3s::Endpoint<'a>),
}

/// The two documents of the ServiceAccount issuer's OIDC discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenIdDocument {
    /// `/.well-known/openid-configuration`.
    Configuration,
    /// `/openid/v1/jwks`.
    Keys,
}

/// A path naming a served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath<'a> {
    /// The resource type.
    pub resource: Resource,
    /// Namespace from the path, if any.
    pub namespace: Option<&'a str>,
    /// Object name, if any.
    pub name: Option<&'a str>,
    /// Subresource, if any.
    pub subresource: Option<&'a str>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

/// The served resource `group`/`version`/`plural`: a built-in one, or a custom resource that
/// `crds` serves.
fn resolve(
    crds: &crate::crd::Registry,
    group: &str,
    version: &str,
    plural: &str,
) -> Option<Resource> {
    if let Some(rt) = resource::lookup(group, version, plural) {
        return Some(Resource::Builtin(rt));
    }
    crds.lookup(group, version, plural).map(Resource::Custom)
}

/// Parses a request path, resolving custom resources in `crds`; `None` when it names nothing
/// served (404).
pub fn route<'a>(path: &'a str, crds: &crate::crd::Registry) -> Option<Route<'a>> {
    let api = match parse_path(path)? {
        ParsedPath::Fixed(route) => return Some(route),
        ParsedPath::Api(api) => api,
    };
    if let Some(review) = super::access::lookup(api.group, api.version, api.rest) {
        return Some(Route::Review(review));
    }
    if (api.group, api.version) == (super::apiservices::GROUP, super::apiservices::VERSION) {
        return match api.rest.split_once('/') {
            None if api.rest == super::apiservices::PLURAL => Some(Route::ApiServices(None)),
            Some((super::apiservices::PLURAL, name)) if !name.is_empty() && !name.contains('/') => {
                Some(Route::ApiServices(Some(name)))
            }
            _ => None,
        };
    }
    let shape = api.resource_shape()?;
    if api.group.is_empty()
        && !shape.watch_prefix
        && shape.namespace.is_none()
        && shape.name.is_none()
        && matches!(shape.plural, "register-worker" | "heartbeat" | "sui-events")
    {
        return Some(Route::Worker(shape.plural));
    }
    let resource = resolve(crds, api.group, api.version, shape.plural)
        .filter(|r| shape.fits(r.rt().namespaced))?;
    Some(Route::Resource(ResourcePath {
        resource,
        namespace: shape.namespace,
        name: shape.name,
        subresource: shape.subresource,
        watch_prefix: shape.watch_prefix,
    }))
}

/// A request path read as far as it can be without looking anything up; shared by [`route`]
/// and [`super::request_info::RequestInfo::parse`] so the two cannot read a path differently.
pub(super) enum ParsedPath<'a> {
    /// A path that names no group-version: health, version, discovery, OpenAPI.
    Fixed(Route<'a>),
    /// A path below `/api/v1/` or `/apis/{group}/{version}/`.
    Api(ApiPath<'a>),
}

/// A path below a group-version.
pub(super) struct ApiPath<'a> {
    /// API group; empty for the core group (`/api/v1`).
    pub(super) group: &'a str,
    /// API version.
    pub(super) version: &'a str,
    /// What follows the version and its `/`; never empty.
    pub(super) rest: &'a str,
}

/// Most segments below a group-version: `watch/namespaces/{ns}/{plural}/{name}/{sub}`.
const MAX_SEGMENTS: usize = 6;

/// A resource path split as kube-apiserver's RequestInfo splits it, before the plural is looked
/// up: whether it names a served resource depends on the lookup ([`ResourceShape::fits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResourceShape<'a> {
    /// The legacy `/watch/` prefix was used.
    pub(super) watch_prefix: bool,
    /// `{ns}` of `namespaces/{ns}/{plural}/...`.
    pub(super) namespace: Option<&'a str>,
    /// The resource's plural.
    pub(super) plural: &'a str,
    /// Object name, if any.
    pub(super) name: Option<&'a str>,
    /// Subresource, if any.
    pub(super) subresource: Option<&'a str>,
}

impl<'a> ApiPath<'a> {
    /// The resource path `rest` spells; `None` when it has an empty segment, too many segments,
    /// or more than a name and a subresource after the plural.
    pub(super) fn resource_shape(&self) -> Option<ResourceShape<'a>> {
        let mut segments = [""; MAX_SEGMENTS];
        let mut len = 0;
        for segment in self.rest.split('/') {
            if segment.is_empty() {
                return None;
            }
            *segments.get_mut(len)? = segment;
            len += 1;
        }
        let segments = segments.get(..len)?;
        let (watch_prefix, segments) = match segments {
            ["watch", rest @ ..] => (true, rest),
            _ => (false, segments),
        };
        let (namespace, plural, tail) = match segments {
            // `namespaces/{name}/status|finalize` is the namespace's own subresource.
            ["namespaces", tail @ ..]
                if self.group.is_empty() && matches!(tail, [_, "status" | "finalize"]) =>
            {
                (None, "namespaces", tail)
            }
            ["namespaces", namespace, plural, tail @ ..] => (Some(*namespace), *plural, tail),
            [plural, tail @ ..] => (None, *plural, tail),
            [] => return None,
        };
        let (name, subresource) = match tail {
            [] => (None, None),
            [name] => (Some(*name), None),
            [name, subresource] => (Some(*name), Some(*subresource)),
            _ => return None,
        };
        Some(ResourceShape {
            watch_prefix,
            namespace,
            plural,
            name,
            subresource,
        })
    }
}

impl ResourceShape<'_> {
    /// Whether a resource of this scope is served at this path: a namespaced one under
    /// `namespaces/{ns}/`, or as a collection across namespaces; a cluster one never under a
    /// namespace.
    pub(super) fn fits(&self, namespaced: bool) -> bool {
        match self.namespace {
            Some(_) => namespaced,
            None => !namespaced || self.name.is_none(),
        }
    }
}

/// Reads a request path up to what needs a lookup; `None` when it can name nothing (404).
pub(super) fn parse_path(path: &str) -> Option<ParsedPath<'_>> {
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let fixed = |route| Some(ParsedPath::Fixed(route));
    if let Some(endpoint) = super::k3s::Endpoint::of_path(trimmed) {
        return fixed(Route::K3s(endpoint));
    }
    match trimmed {
        "/version" => return fixed(Route::Version),
        "/api" => return fixed(Route::CoreApiVersions),
        "/apis" => return fixed(Route::ApiGroupList),
        "/openapi/v3" => return fixed(Route::OpenApiV3Index),
        "/openapi/v2" => return fixed(Route::OpenApiV2),
        crate::serviceaccount::OPENID_CONFIG_PATH => {
            return fixed(Route::OpenId(OpenIdDocument::Configuration));
        }
        crate::serviceaccount::JWKS_PATH => return fixed(Route::OpenId(OpenIdDocument::Keys)),
        _ => {}
    }
    for health in ["/healthz", "/readyz", "/livez"] {
        if trimmed == health
            || trimmed
                .strip_prefix(health)
                .is_some_and(|rest| rest.starts_with('/'))
        {
            return fixed(Route::Health(trimmed));
        }
    }
    if let Some(doc) = trimmed.strip_prefix("/openapi/v3/") {
        return fixed(Route::OpenApiV3(doc));
    }
    let (group, version, rest) = if let Some(rest) = trimmed
        .strip_prefix("/api/v1")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    {
        ("", "v1", rest)
    } else if let Some(rest) = trimmed.strip_prefix("/apis/") {
        let (group, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if rest.is_empty() {
            return fixed(Route::ApiGroup(group));
        }
        let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
        (group, version, rest)
    } else {
        return None;
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return fixed(Route::ResourceList(group, version));
    }
    Some(ParsedPath::Api(ApiPath {
        group,
        version,
        rest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceId;

    fn route(path: &str) -> Option<Route<'_>> {
        super::route(path, &crate::crd::Registry::new(&crate::Config::default()))
    }

    fn resource_route(path: &str) -> (ResourceId, Option<&str>, Option<&str>, Option<&str>, bool) {
        match route(path) {
            Some(Route::Resource(p)) => (
                p.resource.rt().id,
                p.namespace,
                p.name,
                p.subresource,
                p.watch_prefix,
            ),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn watches_are_asked_for_by_the_query_or_the_legacy_prefix() {
        let asks = |path, query| {
            ApiRequest {
                query,
                ..ApiRequest::new(crate::api::Method::Get, path)
            }
            .asks_for_watch()
        };
        assert!(asks("/api/v1/namespaces/default/configmaps", "watch=true"));
        assert!(asks("/api/v1/namespaces/default/configmaps", "a=b&watch=1"));
        assert!(asks("/api/v1/watch/namespaces/default/configmaps", ""));
        assert!(asks("/apis/apps/v1/watch/deployments", ""));
        assert!(!asks(
            "/api/v1/namespaces/default/configmaps",
            "watch=false"
        ));
        assert!(!asks(
            "/api/v1/namespaces/default/configmaps",
            "watch=maybe"
        ));
        assert!(!asks("/api/v1/namespaces/watch/configmaps", ""));
        assert!(!asks("/api/v1/namespaces/default/configmaps/watch", ""));
        assert!(!asks("/readyz", "watch=true&%zz"));
    }

    #[test]
    fn paths_route_like_kube_apiserver() {
        assert_eq!(
            resource_route("/api/v1/pods"),
            (ResourceId::Pods, None, None, None, false)
        );
        assert_eq!(
            resource_route("/api/v1/namespaces/default/pods/x"),
            (ResourceId::Pods, Some("default"), Some("x"), None, false)
        );
        assert_eq!(
            resource_route("/api/v1/namespaces/default/pods/x/status"),
            (
                ResourceId::Pods,
                Some("default"),
                Some("x"),
                Some("status"),
                false
            )
        );
        assert_eq!(
            resource_route("/api/v1/namespaces"),
            (ResourceId::Namespaces, None, None, None, false)
        );
        assert_eq!(
            resource_route("/api/v1/namespaces/kube-system"),
            (
                ResourceId::Namespaces,
                None,
                Some("kube-system"),
                None,
                false
            )
        );
        assert_eq!(
            resource_route("/api/v1/namespaces/ns1/status"),
            (
                ResourceId::Namespaces,
                None,
                Some("ns1"),
                Some("status"),
                false
            )
        );
        assert_eq!(
            resource_route("/api/v1/nodes/n1/status"),
            (ResourceId::Nodes, None, Some("n1"), Some("status"), false)
        );
        assert_eq!(
            resource_route("/apis/apps/v1/namespaces/d/deployments/web/scale"),
            (
                ResourceId::Deployments,
                Some("d"),
                Some("web"),
                Some("scale"),
                false
            )
        );
        assert_eq!(
            resource_route("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"),
            (
                ResourceId::Leases,
                Some("kube-node-lease"),
                None,
                None,
                false
            )
        );
        assert_eq!(
            resource_route("/api/v1/watch/pods"),
            (ResourceId::Pods, None, None, None, true)
        );
        assert_eq!(
            route("/api/v1/pods/x"),
            None,
            "namespaced objects need a namespace"
        );
        assert_eq!(route("/api/v1/widgets"), None);
        assert_eq!(route("/api/v1//pods"), None);
        assert_eq!(
            route("/apis/apps/v1"),
            Some(Route::ResourceList("apps", "v1"))
        );
        assert_eq!(route("/apis/apps"), Some(Route::ApiGroup("apps")));
        assert_eq!(route("/api/v1"), Some(Route::ResourceList("", "v1")));
        assert_eq!(route("/api/v1/heartbeat"), Some(Route::Worker("heartbeat")));
        assert_eq!(route("/readyz/ping"), Some(Route::Health("/readyz/ping")));
        assert_eq!(route("/nope"), None);
        assert!(matches!(
            route("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
            Some(Route::Review(r)) if r.kind == "SelfSubjectAccessReview"
        ));
        assert!(matches!(
            route("/apis/authentication.k8s.io/v1/selfsubjectreviews"),
            Some(Route::Review(r)) if r.kind == "SelfSubjectReview"
        ));
        assert_eq!(
            route("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x"),
            None
        );
        assert_eq!(route("/api/v1beta1/pods"), None);
        // A namespace named like a namespace subresource holds objects like any other.
        assert_eq!(
            resource_route("/api/v1/namespaces/status/pods"),
            (ResourceId::Pods, Some("status"), None, None, false)
        );
        assert_eq!(
            resource_route("/api/v1/namespaces/x/finalize/"),
            (
                ResourceId::Namespaces,
                None,
                Some("x"),
                Some("finalize"),
                false
            )
        );
        assert_eq!(
            resource_route("/api/v1/watch/namespaces/d/pods/x"),
            (ResourceId::Pods, Some("d"), Some("x"), None, true)
        );
        // At most a name and a subresource after the plural, six segments in all.
        assert_eq!(route("/api/v1/namespaces/d/pods/x/status/more"), None);
        assert_eq!(route("/api/v1/watch/namespaces/d/pods/x/status/more"), None);
        assert_eq!(route("/api/v1/nodes/n1/status/more"), None);
        assert_eq!(route("/api/v1/namespaces/x/status/more"), None);
        assert_eq!(route("/api/v1/namespaces/d/nodes"), None);
        assert_eq!(route("/api/v1/watch"), None);
        assert_eq!(route("/api/v1/watch/heartbeat"), None);
        assert_eq!(route("/api/v1/namespaces/d/pods//x"), None);
    }

    #[test]
    fn queries_decode_and_validate() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&limit=5").unwrap();
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch").unwrap());
        assert_eq!(q.number("limit").unwrap(), Some(5));
        assert!(Query::parse("a=%zz").is_err());
        assert!(Query::parse("limit=-1").unwrap().number("limit").is_err());
    }

    #[test]
    fn dry_run_accepts_only_all() {
        let q = Query::parse("dryRun=All&dryRun=All").unwrap();
        assert_eq!(q.dry_run("CreateOptions"), Ok(true));
        assert_eq!(
            Query::parse("").unwrap().dry_run("CreateOptions"),
            Ok(false)
        );
        let error = Query::parse("dryRun=All&dryRun=true")
            .unwrap()
            .dry_run("PatchOptions")
            .unwrap_err();
        assert_eq!(error.code(), 422);
        assert_eq!(
            error.message(),
            "PatchOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"All\",\"true\"]: supported values: \"All\""
        );
        let status = error.to_status();
        assert_eq!(status["details"]["group"], "meta.k8s.io");
        assert_eq!(status["details"]["kind"], "PatchOptions");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueNotSupported"
        );
        assert!(
            Query::parse("dryRun=")
                .unwrap()
                .dry_run("DeleteOptions")
                .is_err()
        );
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None), Ok(Representation::Json));
        assert_eq!(
            negotiate(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            )),
            Ok(Representation::Table)
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf,application/json")),
            Ok(Representation::Json)
        );
        assert!(matches!(
            negotiate(Some("application/vnd.kubernetes.protobuf")),
            Err(Error::NotAcceptable(_))
        ));
        assert_eq!(
            negotiate(Some(AGGREGATED_DISCOVERY)),
            Ok(Representation::AggregatedDiscovery)
        );
        // What client-go's metadata client sends, protobuf first.
        let metadata = |list, api_version, protobuf| {
            Ok(Representation::Metadata(MetadataView {
                list,
                api_version,
                protobuf,
            }))
        };
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            )),
            metadata(true, "meta.k8s.io/v1", true)
        );
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"
            )),
            metadata(false, "meta.k8s.io/v1beta1", false)
        );
        // Not served: another version, a protobuf Table; the next clause is taken.
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2,application/json"
            )),
            Ok(Representation::Json)
        );
        let refused = negotiate(Some(
            "application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1",
        ))
        .unwrap_err();
        assert_eq!(
            refused.message(),
            "only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf"
        );
        assert_eq!(refused.code(), 406);
    }
}
