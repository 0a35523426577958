//! `/openapi/v3` and `/openapi/v2`: kube-apiserver 1.32's own OpenAPI documents, cut down by
//! `tools/gen-kube-facts` to the served resources, verbs and the schemas they reach (full nested
//! schemas with every `x-kubernetes-*` extension), embedded as bytes and never built per
//! request. They are answered the way kube-openapi's handlers answer: content negotiation on
//! `Accept`, an `ETag` (upper-case hex SHA-512 of the JSON) for `If-None-Match`, v3 index URLs
//! carrying `?hash=` that may be cached for a year, a 301 to the current URL for a stale hash.
//!
//! What kubectl 1.32 reads from them: `explain` walks a group-version document's
//! `components.schemas`; `create/apply/replace` validation finds the kind's PATCH operation with
//! the `fieldValidation` parameter and leaves validation to the server (`fieldValidation=Strict`);
//! client-side `apply` builds strategic merge patches from the schemas' patch strategies and
//! merge keys. client-go's `OpenAPISchema` (helm, kubectl's v2 paths) asks `/openapi/v2` for
//! protobuf. The v3 protobuf form is not served: a client that accepts only it gets 406.

// Generated: one document per line.
#[rustfmt::skip]
mod documents;

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::Cluster;
use super::request::Query;
use crate::crd::openapi::{self as crd_openapi, Form, PathTemplate};
use crate::{Error, UnixTime};

/// One embedded document and its ETag.
pub(crate) struct Document {
    json: &'static [u8],
    etag: &'static str,
}

/// The JSON media type.
const JSON: &str = "application/json";
/// The protobuf media type of `/openapi/v2` as kube-openapi writes it in answers (it also
/// accepts the `...spec.v2@v1.0+protobuf` spelling client-go sends).
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A precomputed OpenAPI answer: embedded bytes and the headers kube-openapi sends with them.
#[derive(Debug)]
pub struct Served {
    /// 200, or 301 to the current `?hash=` URL.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The document (static), or the redirect's note.
    pub body: Cow<'static, [u8]>,
    /// The document's ETag, unquoted.
    pub etag: Cow<'static, str>,
    /// Add `Vary: Accept` (the answer depends on `Accept`).
    pub vary_accept: bool,
    /// The request named the current hash: `Cache-Control: public, immutable` and this
    /// `Expires` (a year from now).
    pub expires: Option<String>,
    /// `Location` of a 301.
    pub location: Option<String>,
}

impl Served {
    fn document(doc: &Document, content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            status: 200,
            content_type,
            body: Cow::Borrowed(body),
            etag: Cow::Borrowed(doc.etag),
            vary_accept: true,
            expires: None,
            location: None,
        }
    }

    /// Headers besides `Content-Type`: `ETag`, `Vary`, `Cache-Control` and `Expires` when
    /// immutable, `Location`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(5);
        out.push(("etag", format!("\"{}\"", self.etag)));
        if self.vary_accept {
            out.push(("vary", String::from("Accept")));
        }
        if let Some(expires) = &self.expires {
            out.push(("cache-control", String::from("public, immutable")));
            out.push(("expires", expires.clone()));
        }
        if let Some(location) = &self.location {
            out.push(("location", location.clone()));
        }
        out
    }

    /// Whether `If-None-Match` names this document, so the answer is 304 Not Modified (weak
    /// comparison, `*` matches, as Go's `http.ServeContent` decides for kube).
    pub fn not_modified(&self, if_none_match: &str) -> bool {
        self.status == 200
            && if_none_match.split(',').map(str::trim).any(|tag| {
                tag == "*"
                    || tag
                        .strip_prefix("W/")
                        .unwrap_or(tag)
                        .strip_prefix('"')
                        .and_then(|t| t.strip_suffix('"'))
                        == Some(&*self.etag)
            })
    }
}

/// The media types an `Accept` header lists, best first: by `q` (clauses with `q=0` dropped),
/// then exact types before wildcards, as goautoneg orders them for kube-openapi.
fn accepted(accept: Option<&str>) -> Vec<(&str, &str)> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut clauses: Vec<(u16, bool, bool, &str, &str)> = Vec::new();
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let (kind, sub) = media.split_once('/').unwrap_or((media, "*"));
        let mut q = 1000u16;
        for p in parts {
            if let Some(v) = p.strip_prefix("q=") {
                q = quality(v);
            }
        }
        if q > 0 && !kind.is_empty() {
            clauses.push((q, kind == "*", sub == "*", kind, sub));
        }
    }
    clauses.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    clauses.into_iter().map(|c| (c.3, c.4)).collect()
}

/// `q` in thousandths (`0.5` → 500); anything unreadable counts as 1.
fn quality(v: &str) -> u16 {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let mut q: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return 1000,
    };
    let mut scale = 100u16;
    for c in frac.bytes().take(3) {
        if !c.is_ascii_digit() {
            return 1000;
        }
        q = q.saturating_add(u16::from(c - b'0').saturating_mul(scale));
        scale /= 10;
    }
    q.min(1000)
}

/// The first of `offered` (type, subtype, answer) that the best matching `Accept` clause takes.
fn negotiate<T: Copy>(accept: Option<&str>, offered: &[(&str, &str, T)]) -> Option<T> {
    for (kind, sub) in accepted(accept) {
        for (k, s, answer) in offered {
            if (kind == "*" || kind == *k) && (sub == "*" || sub == *s) {
                return Some(*answer);
            }
        }
    }
    None
}

fn not_acceptable(offered: &str) -> Error {
    Error::NotAcceptable(format!(
        "only the following media types are accepted: {offered}"
    ))
}

/// `GET /openapi/v3` for the built-in documents alone: the index of the documents, each URL
/// with its document's hash.
pub fn v3_index() -> Served {
    let doc = &documents::V3_INDEX;
    Served {
        vary_accept: false,
        ..Served::document(doc, JSON, doc.json)
    }
}

/// `GET /openapi/v3/{key}` (`api/v1`, `apis/apps/v1`, `apis`, `version`, ...) of a built-in
/// document. With `?hash=` of the current document the answer may be cached for good; with a
/// stale one it is a 301 to the current URL.
pub fn v3_document(
    now: UnixTime,
    key: &str,
    query: &str,
    accept: Option<&str>,
) -> Result<Served, Error> {
    let Some((_, doc)) = documents::V3.iter().find(|(k, _)| *k == key) else {
        return Err(Error::PathNotFound(format!("/openapi/v3/{key}")));
    };
    if negotiate(accept, &[("application", "json", ())]).is_none() {
        return Err(not_acceptable(JSON));
    }
    let served = Served::document(doc, JSON, doc.json);
    with_hash(served, now, key, query)
}

/// The `?hash=` handling of a v3 document: cacheable for a year when it names the current
/// document, a 301 to the current URL when stale.
fn with_hash(mut served: Served, now: UnixTime, key: &str, query: &str) -> Result<Served, Error> {
    if let Some(hash) = Query::parse(query)?.get("hash").filter(|h| !h.is_empty()) {
        if hash == served.etag {
            served.expires = Some(now.plus_one_year().http_date());
        } else {
            let url = format!("/openapi/v3/{key}?hash={}", served.etag);
            served.status = 301;
            served.content_type = "text/html; charset=utf-8";
            served.body =
                Cow::Owned(format!("<a href=\"{url}\">Moved Permanently</a>.\n\n").into_bytes());
            served.location = Some(url);
        }
    }
    Ok(served)
}

/// `GET /openapi/v2` of the built-in kinds: one document for everything served, as JSON or as
/// gnostic's protobuf.
pub fn v2(accept: Option<&str>) -> Result<Served, Error> {
    let doc = &documents::V2;
    let offered = [
        ("application", "json", false),
        (
            "application",
            "com.github.proto-openapi.spec.v2@v1.0+protobuf",
            true,
        ),
        (
            "application",
            "com.github.proto-openapi.spec.v2.v1.0+protobuf",
            true,
        ),
    ];
    match negotiate(accept, &offered) {
        Some(false) => Ok(Served::document(doc, JSON, doc.json)),
        Some(true) => Ok(Served::document(doc, V2_PROTOBUF, documents::V2_PROTOBUF)),
        None => Err(not_acceptable(&format!("{JSON}, {V2_PROTOBUF}"))),
    }
}

/// Upper-case hex SHA-512, kube-openapi's ETag.
fn etag_of(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(128);
    for b in Sha512::digest(bytes) {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// One document built at run time, with its ETag.
#[derive(Debug, Clone)]
struct Built {
    json: Vec<u8>,
    etag: String,
}

impl Built {
    fn new(json: Vec<u8>) -> Self {
        let etag = etag_of(&json);
        Self { json, etag }
    }

    fn served(&self, content_type: &'static str) -> Served {
        Served {
            status: 200,
            content_type,
            body: Cow::Owned(self.json.clone()),
            etag: Cow::Owned(self.etag.clone()),
            vary_accept: true,
            expires: None,
            location: None,
        }
    }
}

/// The documents that include custom resources, rebuilt when the installed definitions
/// change (the registry's generation), and the templates their paths are made from (parsed
/// once from the embedded documents). Bounded by the definitions' budget.
#[derive(Debug, Default)]
pub(crate) struct CustomCache {
    generation: Option<u64>,
    v2: Option<Built>,
    index: Option<Built>,
    v3: BTreeMap<String, Built>,
    templates: Option<Templates>,
}

#[derive(Debug)]
struct Templates {
    v2_paths: PathTemplate,
    v3_paths: PathTemplate,
    /// `components.schemas` of the `apps/v1` document: the shared schemas custom resources'
    /// documents reference.
    v3_schemas: Map<String, Value>,
}

fn parse_document(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

impl Templates {
    fn load() -> Self {
        let apps = documents::V3
            .iter()
            .find(|(k, _)| *k == "apis/apps/v1")
            .map_or(Value::Null, |(_, d)| parse_document(d.json));
        let v2 = parse_document(documents::V2.json);
        Self {
            v2_paths: PathTemplate::from_document(&v2),
            v3_paths: PathTemplate::from_document(&apps),
            v3_schemas: apps
                .pointer("/components/schemas")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// A document's `paths` and `components.schemas` being assembled.
type PathsAndSchemas = (Map<String, Value>, Map<String, Value>);

/// Inserts `entries` (serialized `"key":value` pairs) at the start of the object that begins
/// at `at` (just after its `{`).
fn splice(doc: &mut Vec<u8>, at: usize, entries: &[(String, Value)]) {
    if entries.is_empty() {
        return;
    }
    let mut text = Vec::new();
    for (key, value) in entries {
        text.extend_from_slice(&crate::json::to_vec(&Value::from(key.as_str())));
        text.push(b':');
        text.extend_from_slice(&crate::json::to_vec(value));
        text.push(b',');
    }
    let tail = doc.split_off(at);
    doc.extend_from_slice(&text);
    doc.extend_from_slice(&tail);
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

impl Cluster {
    /// Brings the custom documents up to the installed definitions.
    fn refresh_custom_openapi(&mut self) {
        let generation = self.crds.generation();
        if self.custom_openapi.generation == Some(generation) {
            return;
        }
        let mut templates = self
            .custom_openapi
            .templates
            .take()
            .unwrap_or_else(Templates::load);
        self.build_custom_openapi(&mut templates, generation);
        self.custom_openapi.templates = Some(templates);
    }

    fn build_custom_openapi(&mut self, templates: &mut Templates, generation: u64) {
        let mut v2_defs = Vec::new();
        let mut v2_paths = Vec::new();
        let mut v3_docs: BTreeMap<String, PathsAndSchemas> = BTreeMap::new();
        for d in self.crds.definitions().filter(|d| d.established) {
            for version in d.versions.iter().filter(|v| v.served) {
                v2_defs.extend(crd_openapi::definitions(d, version, Form::V2));
                v2_paths.extend(templates.v2_paths.paths(d, version, Form::V2));
                let key = format!("apis/{}/{}", d.group, version.name);
                let (paths, schemas) = v3_docs.entry(key).or_default();
                for (name, schema) in crd_openapi::definitions(d, version, Form::V3) {
                    schemas.insert(name, schema);
                }
                for (path, item) in templates.v3_paths.paths(d, version, Form::V3) {
                    paths.insert(path, item);
                }
            }
        }
        let cache = &mut self.custom_openapi;
        cache.generation = Some(generation);
        cache.v3.clear();
        if v2_defs.is_empty() {
            cache.v2 = None;
            cache.index = None;
            return;
        }
        let mut v2 = documents::V2.json.to_vec();
        let prefix = b"{\"definitions\":{";
        if v2.starts_with(prefix) {
            splice(&mut v2, prefix.len(), &v2_defs);
        }
        if let Some(at) = rfind(&v2, b",\"paths\":{") {
            splice(&mut v2, at + b",\"paths\":{".len(), &v2_paths);
        }
        cache.v2 = Some(Built::new(v2));
        for (key, (paths, mut schemas)) in v3_docs {
            let mut wanted = Vec::new();
            let path_value = Value::Object(paths);
            crd_openapi::refs(&path_value, "#/components/schemas/", &mut wanted);
            crd_openapi::refs(
                &Value::Object(schemas.clone()),
                "#/components/schemas/",
                &mut wanted,
            );
            let mut i = 0;
            while let Some(name) = wanted.get(i).cloned() {
                i += 1;
                if schemas.contains_key(&name) {
                    continue;
                }
                if let Some(shared) = templates.v3_schemas.get(&name) {
                    crd_openapi::refs(shared, "#/components/schemas/", &mut wanted);
                    schemas.insert(name, shared.clone());
                }
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
                "paths": path_value,
                "components": {"schemas": schemas},
            });
            cache.v3.insert(key, Built::new(crate::json::to_vec(&doc)));
        }
        let mut index = parse_document(documents::V3_INDEX.json);
        if let Some(paths) = index.get_mut("paths").and_then(Value::as_object_mut) {
            for (key, built) in &cache.v3 {
                paths.insert(
                    key.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", built.etag)}),
                );
            }
        }
        cache.index = Some(Built::new(crate::json::to_vec(&index)));
    }

    /// `GET /openapi/v3`, with the custom resources' documents.
    pub(super) fn openapi_v3_index(&mut self) -> Served {
        self.refresh_custom_openapi();
        match &self.custom_openapi.index {
            Some(index) => Served {
                vary_accept: false,
                ..index.served(JSON)
            },
            None => v3_index(),
        }
    }

    /// `GET /openapi/v3/{key}`, built-in or custom.
    pub(super) fn openapi_v3_document(
        &mut self,
        now: UnixTime,
        key: &str,
        query: &str,
        accept: Option<&str>,
    ) -> Result<Served, Error> {
        self.refresh_custom_openapi();
        let Some(built) = self.custom_openapi.v3.get(key) else {
            return v3_document(now, key, query, accept);
        };
        if negotiate(accept, &[("application", "json", ())]).is_none() {
            return Err(not_acceptable(JSON));
        }
        with_hash(built.served(JSON), now, key, query)
    }

    /// `GET /openapi/v2`, with the custom resources' definitions and paths. The protobuf form
    /// is the built-in document's: custom resources are published in JSON only.
    pub(super) fn openapi_v2(&mut self, accept: Option<&str>) -> Result<Served, Error> {
        self.refresh_custom_openapi();
        let served = v2(accept)?;
        match &self.custom_openapi.v2 {
            Some(built) if served.content_type == JSON => Ok(built.served(JSON)),
            _ => Ok(served),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{GROUPS, builtin};
    use alloc::vec;
    use serde_json::{Value, json};
    use sha2::{Digest, Sha512};

    fn json_of(served: &Served) -> Value {
        serde_json::from_slice(&served.body).unwrap()
    }

    fn hex_sha512(bytes: &[u8]) -> String {
        use core::fmt::Write as _;
        let mut out = String::new();
        for b in Sha512::digest(bytes) {
            let _ = write!(out, "{b:02X}");
        }
        out
    }

    fn doc_path(group: &str, version: &str) -> String {
        if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        }
    }

    #[test]
    fn etags_are_the_sha512_of_the_embedded_bytes() {
        for (key, doc) in documents::V3 {
            assert_eq!(doc.etag, hex_sha512(doc.json), "{key}");
        }
        let index = &documents::V3_INDEX;
        assert_eq!(index.etag, hex_sha512(index.json));
        assert_eq!(documents::V2.etag, hex_sha512(documents::V2.json));
    }

    #[test]
    fn index_lists_every_document_with_its_hash() {
        let index = json_of(&v3_index());
        let paths = index["paths"].as_object().unwrap();
        let mut want = vec![
            String::from("api"),
            String::from("apis"),
            String::from("version"),
        ];
        want.push(doc_path("", "v1"));
        for (g, v) in GROUPS {
            want.push(format!("apis/{g}"));
            want.push(doc_path(g, v));
        }
        want.sort();
        want.dedup();
        assert_eq!(paths.keys().cloned().collect::<Vec<_>>(), want);
        for (key, entry) in paths {
            let url = entry["serverRelativeURL"].as_str().unwrap();
            let hash = url
                .strip_prefix(&format!("/openapi/v3/{key}?hash="))
                .unwrap();
            let served = v3_document(UnixTime::default(), key, "", None).unwrap();
            assert_eq!(hash, served.etag);
            assert_eq!(hash, hex_sha512(&served.body));
        }
        for missing in ["apis/apps/v2", "apis/batch/v2", "api/v2", "logs", ""] {
            assert!(matches!(
                v3_document(UnixTime::default(), missing, "", None),
                Err(Error::PathNotFound(_))
            ));
        }
    }

    /// What kubectl's `hasGVKParameterV3` requires for server-side field validation, and what
    /// `explain` walks: every served kind's full nested schema.
    #[test]
    fn every_kind_has_patch_with_field_validation_and_a_nested_schema() {
        for r in builtin() {
            let doc = json_of(
                &v3_document(UnixTime::default(), &doc_path(r.group, r.version), "", None).unwrap(),
            );
            assert_eq!(doc["openapi"], "3.0.0");
            assert_eq!(doc["info"]["version"], "v1.32.0");
            let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
            let patch = doc["paths"].as_object().unwrap().values().find(|item| {
                item["patch"]["x-kubernetes-group-version-kind"] == gvk
                    && item["patch"]["x-kubernetes-action"] == "patch"
            });
            let patch = &patch.unwrap_or_else(|| panic!("{}", r.kind))["patch"];
            assert!(
                patch["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                "{}",
                r.kind
            );
            assert!(
                patch["requestBody"]["content"]
                    .get("application/strategic-merge-patch+json")
                    .is_some()
            );
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            let (_, kind) = schemas
                .iter()
                .find(|(_, s)| s["x-kubernetes-group-version-kind"] == json!([gvk]))
                .unwrap_or_else(|| panic!("no schema for {}", r.kind));
            let metadata = kind["properties"]["metadata"]["allOf"][0]["$ref"]
                .as_str()
                .unwrap();
            assert!(metadata.ends_with("ObjectMeta"));
        }
        let core = json_of(&v3_document(UnixTime::default(), "api/v1", "", None).unwrap());
        let schemas = &core["components"]["schemas"];
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(
            containers["items"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        assert!(schemas["io.k8s.api.core.v1.Container"]["properties"]["livenessProbe"].is_object());
        let apps = json_of(&v3_document(UnixTime::default(), "apis/apps/v1", "", None).unwrap());
        let rolling = &apps["components"]["schemas"]["io.k8s.api.apps.v1.RollingUpdateDeployment"];
        assert!(rolling["properties"]["maxSurge"].is_object());
    }

    #[test]
    fn only_served_paths_and_verbs() {
        let core = json_of(&v3_document(UnixTime::default(), "api/v1", "", None).unwrap());
        let paths = core["paths"].as_object().unwrap();
        let pod = "/api/v1/namespaces/{namespace}/pods/{name}";
        for kept in [
            pod,
            "/api/v1/",
            "/api/v1/pods",
            "/api/v1/namespaces/{namespace}/pods/{name}/binding",
            "/api/v1/namespaces/{namespace}/pods/{name}/status",
            "/api/v1/namespaces/{name}/finalize",
            "/api/v1/watch/namespaces/{namespace}/pods",
            "/api/v1/nodes/{name}",
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
        ] {
            assert!(paths.contains_key(kept), "{kept}");
        }
        for dropped in [
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "/api/v1/namespaces/{namespace}/bindings",
            "/api/v1/nodes/{name}/proxy",
            "/api/v1/namespaces/{namespace}/limitranges",
            "/api/v1/componentstatuses",
        ] {
            assert!(!paths.contains_key(dropped), "{dropped}");
        }
        let ops: Vec<&String> = paths[pod].as_object().unwrap().keys().collect();
        assert_eq!(ops, ["delete", "get", "parameters", "patch", "put"]);
        let schemas = core["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("io.k8s.api.core.v1.Binding"));
        assert!(schemas.contains_key("io.k8s.api.core.v1.PodTemplate"));
        assert!(!schemas.contains_key("io.k8s.api.core.v1.LimitRange"));
        assert!(schemas.contains_key("io.k8s.api.policy.v1.Eviction"));
    }

    #[test]
    fn hash_makes_immutable_or_redirects() {
        let now = UnixTime::from_secs(784_111_777);
        let plain = v3_document(now, "apis/apps/v1", "", None).unwrap();
        assert_eq!(plain.expires, None);
        let etag = plain.etag;
        let cached = v3_document(now, "apis/apps/v1", &format!("hash={etag}"), None).unwrap();
        assert_eq!(cached.status, 200);
        assert_eq!(
            cached.expires.as_deref(),
            Some("Mon, 06 Nov 1995 08:49:37 GMT")
        );
        let headers = cached.headers();
        assert!(headers.contains(&("cache-control", String::from("public, immutable"))));
        assert!(headers.contains(&("etag", format!("\"{etag}\""))));
        assert!(headers.contains(&("vary", String::from("Accept"))));
        let stale = v3_document(now, "apis/apps/v1", "hash=0123", None).unwrap();
        assert_eq!(stale.status, 301);
        let location = format!("/openapi/v3/apis/apps/v1?hash={etag}");
        assert_eq!(stale.location.as_deref(), Some(location.as_str()));
        assert_eq!(stale.expires, None);
        assert!(!stale.not_modified(&format!("\"{etag}\"")));
    }

    #[test]
    fn if_none_match_compares_etags() {
        let served = v3_document(UnixTime::default(), "version", "", None).unwrap();
        let tag = format!("\"{}\"", served.etag);
        assert!(served.not_modified(&tag));
        assert!(served.not_modified(&format!("\"x\", W/{tag}")));
        assert!(served.not_modified("*"));
        assert!(!served.not_modified("\"x\""));
        assert!(!served.not_modified(&served.etag));
    }

    #[test]
    fn accept_negotiation() {
        let proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        let v2_of = |accept: Option<&str>| v2(accept).map(|s| s.content_type);
        assert_eq!(v2_of(None).unwrap(), JSON);
        assert_eq!(v2_of(Some("*/*")).unwrap(), JSON);
        assert_eq!(v2_of(Some(proto)).unwrap(), V2_PROTOBUF);
        assert_eq!(v2_of(Some(V2_PROTOBUF)).unwrap(), V2_PROTOBUF);
        assert_eq!(
            v2_of(Some(&format!("application/json;q=0.5, {proto}"))).unwrap(),
            V2_PROTOBUF
        );
        assert_eq!(
            v2_of(Some(&format!("{proto};q=0, application/*"))).unwrap(),
            JSON
        );
        assert!(matches!(
            v2_of(Some("text/html")),
            Err(Error::NotAcceptable(_))
        ));
        let v3_proto = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf";
        assert!(matches!(
            v3_document(UnixTime::default(), "api/v1", "", Some(v3_proto)),
            Err(Error::NotAcceptable(_))
        ));
        let both = format!("{v3_proto}, application/json");
        assert!(v3_document(UnixTime::default(), "api/v1", "", Some(&both)).is_ok());
        // Both v2 forms carry the JSON's ETag, and the answer varies by Accept.
        let json = v2(None).unwrap();
        let pb = v2(Some(proto)).unwrap();
        assert_eq!(json.etag, pb.etag);
        assert!(pb.vary_accept);
        assert_eq!(&*pb.body, documents::V2_PROTOBUF);
    }

    #[test]
    fn v2_holds_every_served_path() {
        let doc = json_of(&v2(None).unwrap());
        assert_eq!(doc["swagger"], "2.0");
        let paths = doc["paths"].as_object().unwrap();
        for key in [
            "/api/",
            "/apis/",
            "/version/",
            "/apis/apps/",
            "/apis/apps/v1/",
        ] {
            assert!(paths.contains_key(key), "{key}");
        }
        for r in builtin() {
            let prefix = if r.group.is_empty() {
                String::from("/api/v1")
            } else {
                format!("/apis/{}/{}", r.group, r.version)
            };
            let collection = if r.namespaced {
                format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
            } else {
                format!("{prefix}/{}", r.plural)
            };
            assert!(paths.contains_key(&collection), "{collection}");
            let definitions = doc["definitions"].as_object().unwrap();
            assert!(
                definitions
                    .values()
                    .any(|d| d["x-kubernetes-group-version-kind"]
                        == json!([{"group": r.group, "version": r.version, "kind": r.kind}])),
                "{}",
                r.kind
            );
        }
    }
}
