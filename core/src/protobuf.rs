//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`, what kubectl's typed
//! commands and client-go clientsets send) decoded into the JSON object kube-apiserver would have
//! decoded, so the JSON-only handlers serve them unchanged; [`encode`] writes the answers that
//! clients ask for in protobuf (metadata-only reads) from the same tables. Bounded, linear,
//! panic-free: malformed input is a 400, data we have no table for is a 415 asking for JSON,
//! never silently dropped.
//!
//! The wire form is the magic `k8s\0` then a `runtime.Unknown` message (typeMeta=1, raw=2,
//! contentEncoding=3, contentType=4) whose `raw` is the typed object. Field tables live in
//! `protobuf/tables.rs`, generated from upstream `generated.proto` + `types.go` (k8s.io/api
//! 1.32) by `tools/gen-kube-facts`. The JSON mirrors Go's `encoding/json` of the decoded
//! struct: a present zero scalar on a pointer field is kept (`replicas: 0`), `omitempty`
//! scalars that are zero are dropped, absent value structs appear as their zero form
//! (`status: {}`), and 1.32's zero `creationTimestamp` is `null`.

// Generated, one row per line; rustfmt would spread long rows over five lines each.
#[rustfmt::skip]
mod tables;
pub mod encode;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::Error;
use crate::resource::ResourceId;

/// Media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Prefix of every Kubernetes protobuf body (`k8s` and a NUL).
const MAGIC: &[u8] = b"k8s\x00";

/// Deepest JSON nesting the decoded object may reach (arrays and objects, fieldsV1 included).
const MAX_DEPTH: usize = 64;

/// One protobuf message type: its fields sorted by number.
struct Msg {
    name: &'static str,
    fields: &'static [Field],
}

/// One field: number, JSON name (empty when inlined), value kind and `FLAG` bits.
struct Field {
    num: u32,
    json: &'static str,
    kind: Kind,
    flags: u8,
}

/// How one value is encoded on the wire and shown in JSON.
#[derive(Clone, Copy)]
enum Kind {
    /// `string`.
    Str,
    /// `bytes`, shown base64 (standard alphabet) as Go's `encoding/json` does for `[]byte`.
    Bytes,
    /// `bool` varint.
    Bool,
    /// `int32` varint (sign-extended to 10 bytes when negative; k8s never uses zigzag).
    I32,
    /// `int64` varint.
    I64,
    /// `double` (fixed 64 bits), shown as Go's `encoding/json` writes a `float64`.
    F64,
    /// A nested message, shown as an object.
    Message(&'static Msg),
    /// `meta/v1.Time` (`Timestamp{seconds=1, nanos=2}`), RFC 3339 in seconds, zero → `null`.
    Time,
    /// `meta/v1.MicroTime`, RFC 3339 with microseconds, zero → `null`.
    MicroTime,
    /// `resource.Quantity{string=1}`, shown as its string.
    Quantity,
    /// `intstr.IntOrString{type=1, intVal=2, strVal=3}`, shown as a number or a string.
    IntOrString,
    /// `runtime.RawExtension` / `meta/v1.FieldsV1` (`raw=1` JSON bytes), shown as embedded JSON.
    RawJson,
    /// A named `[]string` (`ExtraValue{items=1}`), shown as the bare list.
    StrList,
    /// `JSONSchemaPropsOrArray{schema=1, jSONSchemas=2}`: the schema when set, else the list.
    SchemaOrArray(&'static Msg),
    /// `JSONSchemaPropsOrBool{allows=1, schema=2}`: the schema when set, else the boolean.
    SchemaOrBool(&'static Msg),
    /// `JSONSchemaPropsOrStringArray{schema=1, property=2}`: the schema when set, else the
    /// strings.
    SchemaOrStrings(&'static Msg),
}

/// The field is `repeated`.
const REP: u8 = 1;
/// The field is a `map<string, kind>` (entries: key=1, value=2).
const MAP: u8 = 2;
/// The Go field is a pointer: present means shown, even when zero.
const PTR: u8 = 4;
/// The Go JSON tag has `omitempty`.
const OMITEMPTY: u8 = 8;
/// The Go JSON tag has `omitzero`.
const OMITZERO: u8 = 16;
/// The Go field is embedded: its JSON fields are merged into the parent object.
const INLINE: u8 = 32;

/// Builds one table row (keeps the generated tables short).
const fn f(num: u32, json: &'static str, kind: Kind, flags: u8) -> Field {
    Field {
        num,
        json,
        kind,
        flags,
    }
}

/// Whole objects a body may carry, by `apiVersion` and `kind`.
static TOP_LEVEL: &[(&str, &str, &Msg)] = &[
    ("v1", "Namespace", &tables::NAMESPACE),
    ("v1", "Pod", &tables::POD),
    ("v1", "Node", &tables::NODE),
    ("v1", "Service", &tables::SERVICE),
    ("v1", "Endpoints", &tables::ENDPOINTS),
    ("v1", "ConfigMap", &tables::CONFIG_MAP),
    ("v1", "Secret", &tables::SECRET),
    ("v1", "ServiceAccount", &tables::SERVICE_ACCOUNT),
    ("v1", "Event", &tables::EVENT),
    ("events.k8s.io/v1", "Event", &tables::EVENTS_EVENT),
    (
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &tables::CERTIFICATE_SIGNING_REQUEST,
    ),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        &tables::AUTOSCALING_V2_HORIZONTAL_POD_AUTOSCALER,
    ),
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        &tables::AUTOSCALING_HORIZONTAL_POD_AUTOSCALER,
    ),
    ("v1", "Binding", &tables::BINDING),
    ("v1", "PodTemplate", &tables::POD_TEMPLATE),
    (
        "v1",
        "ReplicationController",
        &tables::REPLICATION_CONTROLLER,
    ),
    ("batch/v1", "Job", &tables::JOB),
    ("batch/v1", "CronJob", &tables::CRON_JOB),
    ("coordination.k8s.io/v1", "Lease", &tables::COORD_LEASE),
    ("apps/v1", "Deployment", &tables::APPS_DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &tables::APPS_REPLICA_SET),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &tables::APIEXTENSIONS_CUSTOM_RESOURCE_DEFINITION,
    ),
    ("autoscaling/v1", "Scale", &tables::AUTOSCALING_SCALE),
    ("v1", "ResourceQuota", &tables::RESOURCE_QUOTA),
    (
        "policy/v1",
        "PodDisruptionBudget",
        &tables::POD_DISRUPTION_BUDGET,
    ),
    ("policy/v1", "Eviction", &tables::EVICTION),
    ("node.k8s.io/v1", "RuntimeClass", &tables::RUNTIME_CLASS),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        "FlowSchema",
        &tables::FLOW_SCHEMA,
    ),
    (
        "flowcontrol.apiserver.k8s.io/v1",
        "PriorityLevelConfiguration",
        &tables::PRIORITY_LEVEL_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        &tables::VALIDATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        &tables::MUTATING_WEBHOOK_CONFIGURATION,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        &tables::VALIDATING_ADMISSION_POLICY,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        &tables::VALIDATING_ADMISSION_POLICY_BINDING,
    ),
    ("rbac.authorization.k8s.io/v1", "Role", &tables::RBAC_ROLE),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &tables::RBAC_CLUSTER_ROLE,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &tables::RBAC_ROLE_BINDING,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &tables::RBAC_CLUSTER_ROLE_BINDING,
    ),
    ("storage.k8s.io/v1", "CSINode", &tables::STORAGE_CSI_NODE),
    (
        "storage.k8s.io/v1",
        "CSIDriver",
        &tables::STORAGE_CSI_DRIVER,
    ),
    (
        "storage.k8s.io/v1",
        "VolumeAttachment",
        &tables::STORAGE_VOLUME_ATTACHMENT,
    ),
    (
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &tables::DISCOVERY_ENDPOINT_SLICE,
    ),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        &tables::PRIORITY_CLASS,
    ),
    ("networking.k8s.io/v1", "Ingress", &tables::INGRESS),
    (
        "networking.k8s.io/v1",
        "IngressClass",
        &tables::INGRESS_CLASS,
    ),
    (
        "meta.k8s.io/v1",
        "PartialObjectMetadata",
        &tables::META_PARTIAL_OBJECT_METADATA,
    ),
    (
        "meta.k8s.io/v1",
        "PartialObjectMetadataList",
        &tables::META_PARTIAL_OBJECT_METADATA_LIST,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &tables::AUTHZ_SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &tables::AUTHZ_SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &tables::AUTHN_SELF_SUBJECT_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "TokenReview",
        &tables::AUTHN_TOKEN_REVIEW,
    ),
    // What a kubelet posts to `serviceaccounts/<name>/token`.
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        &tables::AUTHN_TOKEN_REQUEST,
    ),
];

/// Decodes a protobuf request body of `resource` into its JSON object form.
///
/// The object's `apiVersion`/`kind` come from the envelope's `typeMeta` (the resource's own when
/// the envelope leaves them empty). Besides the resource's kind, any whole object in the tables
/// decodes (e.g. `Binding`, `Scale` for subresources); the caller checks that the kind fits the
/// path, as it does for JSON.
pub fn decode(resource: ResourceId, body: &[u8]) -> Result<Value, Error> {
    let info = resource.info();
    decode_as(&info.api_version(), info.kind, body)
}

/// Decodes a protobuf body whose kind is `kind` of `api_version` unless its envelope says
/// otherwise (e.g. the access reviews, which are no stored resource).
pub fn decode_as(
    default_api_version: &str,
    default_kind: &str,
    body: &[u8],
) -> Result<Value, Error> {
    let envelope = Envelope::parse(body)?;
    let (api_version, kind) = if envelope.kind.is_empty() {
        (default_api_version, default_kind)
    } else {
        (envelope.api_version, envelope.kind)
    };
    let Some(&(_, _, desc)) = TOP_LEVEL
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    else {
        return Err(Error::UnsupportedMediaType(format!(
            "protobuf bodies of kind \"{kind}\" in version \"{api_version}\" are not supported; send JSON"
        )));
    };
    typed(desc, api_version, kind, envelope.raw, body.len())
}

/// Calls `visit` on every `metav1.Time` / `MicroTime` field present in `obj`, a JSON object of
/// `resource`, in the tables' field order: the tables are the served types' schema, so a time is found
/// wherever kube's typed decoder would parse one (conditions, container states, taints,
/// managedFields, pod templates...). Fields whose JSON value has the wrong shape (a string
/// where an object is due) are left for the decoder's other checks.
pub(crate) fn visit_times(
    resource: ResourceId,
    obj: &mut Value,
    visit: &mut dyn FnMut(crate::metatime::Precision, &mut Value),
) {
    let info = resource.info();
    let api_version = info.api_version();
    if let Some(&(_, _, desc)) = TOP_LEVEL
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == info.kind)
    {
        visit_message(desc, obj, visit, 0);
    }
}

fn visit_message(
    desc: &'static Msg,
    obj: &mut Value,
    visit: &mut dyn FnMut(crate::metatime::Precision, &mut Value),
    depth: usize,
) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    for field in desc.fields {
        if field.flags & INLINE != 0 {
            if let Kind::Message(inner) = field.kind {
                // The embedded struct's fields live in this same object.
                let mut whole = Value::Object(core::mem::take(map));
                visit_message(inner, &mut whole, visit, depth + 1);
                if let Value::Object(back) = whole {
                    *map = back;
                }
            }
            continue;
        }
        let Some(value) = map.get_mut(field.json) else {
            continue;
        };
        let mut each = |v: &mut Value| match field.kind {
            Kind::Time => visit(crate::metatime::Precision::Seconds, v),
            Kind::MicroTime => visit(crate::metatime::Precision::Micros, v),
            Kind::Message(inner) => visit_message(inner, v, visit, depth + 1),
            _ => {}
        };
        if field.flags & REP != 0 {
            if let Some(items) = value.as_array_mut() {
                items.iter_mut().for_each(&mut each);
            }
        } else if field.flags & MAP != 0 {
            if let Some(entries) = value.as_object_mut() {
                entries.values_mut().for_each(&mut each);
            }
        } else {
            each(value);
        }
    }
}

/// Decodes a protobuf `DeleteOptions` body (DELETE requests) into its JSON form.
pub fn decode_delete_options(body: &[u8]) -> Result<Value, Error> {
    let envelope = Envelope::parse(body)?;
    if !matches!(envelope.kind, "" | "DeleteOptions") {
        return Err(Error::BadRequest(format!(
            "the body of a delete request must be DeleteOptions, not {}",
            envelope.kind
        )));
    }
    typed(
        &tables::META_DELETE_OPTIONS,
        envelope.api_version,
        envelope.kind,
        envelope.raw,
        body.len(),
    )
}

/// Decodes `raw` as `desc` and stamps `apiVersion`/`kind` (Go's inlined `TypeMeta`, `omitempty`).
fn typed(
    desc: &'static Msg,
    api_version: &str,
    kind: &str,
    raw: &[u8],
    body_len: usize,
) -> Result<Value, Error> {
    let mut budget = Budget::for_body(body_len);
    let mut object = message(desc, raw, 1, &mut budget)?;
    if !api_version.is_empty() {
        object.insert("apiVersion".into(), Value::from(api_version));
    }
    if !kind.is_empty() {
        object.insert("kind".into(), Value::from(kind));
    }
    Ok(Value::Object(object))
}

/// The `runtime.Unknown` envelope after the magic prefix.
struct Envelope<'a> {
    api_version: &'a str,
    kind: &'a str,
    raw: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let Some(rest) = body.strip_prefix(MAGIC) else {
            return Err(malformed(
                "it does not start with the Kubernetes protobuf prefix k8s\\0",
            ));
        };
        let mut envelope = Envelope {
            api_version: "",
            kind: "",
            raw: &[],
        };
        let (mut encoding, mut content_type) = ("", "");
        let mut r = Reader { buf: rest };
        while !r.is_empty() {
            let (num, wire) = r.tag()?;
            expect_wire("Unknown", num, wire, 2)?;
            let bytes = r.bytes()?;
            match num {
                1 => {
                    let mut meta = Reader { buf: bytes };
                    while !meta.is_empty() {
                        let (num, wire) = meta.tag()?;
                        expect_wire("TypeMeta", num, wire, 2)?;
                        let text = utf8("TypeMeta", num, meta.bytes()?)?;
                        match num {
                            1 => envelope.api_version = text,
                            2 => envelope.kind = text,
                            _ => return Err(unsupported("TypeMeta", num)),
                        }
                    }
                }
                2 => envelope.raw = bytes,
                3 => encoding = utf8("Unknown", num, bytes)?,
                4 => content_type = utf8("Unknown", num, bytes)?,
                _ => return Err(unsupported("Unknown", num)),
            }
        }
        if !encoding.is_empty() {
            return Err(Error::UnsupportedMediaType(format!(
                "protobuf bodies with content encoding \"{encoding}\" are not supported; send JSON"
            )));
        }
        if !content_type.is_empty() && content_type != MEDIA_TYPE {
            return Err(Error::UnsupportedMediaType(format!(
                "protobuf envelopes carrying \"{content_type}\" are not supported; send JSON"
            )));
        }
        Ok(envelope)
    }
}

/// Caps the JSON values made, so a small body of empty entries (each expanding to its Go zero
/// form) cannot grow a tree far beyond its own size.
struct Budget {
    left: usize,
}

impl Budget {
    fn for_body(len: usize) -> Self {
        Self {
            left: len.saturating_mul(8).saturating_add(4096),
        }
    }

    fn spend(&mut self) -> Result<(), Error> {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(Error::TooLarge(String::from(
                "the protobuf body expands to too many JSON values; send JSON",
            ))),
        }
    }
}

/// Cursor over one message's bytes; every read checks the remaining length.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some((&byte, rest)) = self.buf.split_first() else {
                return Err(malformed("a varint is truncated"));
            };
            self.buf = rest;
            // The tenth byte may only carry the 64th bit.
            if shift == 63 && byte > 1 {
                return Err(malformed("a varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint is longer than 10 bytes"))
    }

    fn tag(&mut self) -> Result<(u32, u8), Error> {
        let key = self.varint()?;
        let num = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..=0x1fff_ffff).contains(n))
            .ok_or_else(|| malformed("a field number is out of range"))?;
        // Masked to three bits, so the cast keeps the whole value.
        Ok((num, (key & 7) as u8))
    }

    fn fixed64(&mut self) -> Result<u64, Error> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<8>()
            .ok_or_else(|| malformed("a fixed64 is truncated"))?;
        self.buf = rest;
        Ok(u64::from_le_bytes(*head))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.buf.len())
            .ok_or_else(|| malformed("a length runs past the end of its message"))?;
        let (head, rest) = self
            .buf
            .split_at_checked(len)
            .ok_or_else(|| malformed("a length runs past the end of its message"))?;
        self.buf = rest;
        Ok(head)
    }
}

fn malformed(detail: &str) -> Error {
    Error::BadRequest(format!("the protobuf body is malformed: {detail}"))
}

fn unsupported(message: &str, num: u32) -> Error {
    Error::UnsupportedMediaType(format!(
        "protobuf field {num} of {message} is not supported; send JSON"
    ))
}

fn expect_wire(message: &str, num: u32, wire: u8, want: u8) -> Result<(), Error> {
    if wire == want {
        Ok(())
    } else {
        Err(malformed(&format!(
            "field {num} of {message} has wire type {wire}, expected {want}"
        )))
    }
}

fn utf8<'a>(message: &str, num: u32, bytes: &'a [u8]) -> Result<&'a str, Error> {
    core::str::from_utf8(bytes)
        .map_err(|_| malformed(&format!("field {num} of {message} is not valid UTF-8")))
}

impl Kind {
    /// Wire type of one (unpacked) value.
    fn wire(self) -> u8 {
        match self {
            Self::Bool | Self::I32 | Self::I64 => 0,
            Self::F64 => 1,
            _ => 2,
        }
    }
}

/// Decodes one message into the JSON object Go would marshal for it. `depth` is the JSON depth of
/// the object being built.
fn message(
    desc: &'static Msg,
    bytes: &[u8],
    depth: usize,
    budget: &mut Budget,
) -> Result<Map<String, Value>, Error> {
    if depth > MAX_DEPTH {
        return Err(malformed("it nests deeper than 64 levels"));
    }
    let mut slots: Vec<Option<Value>> = Vec::new();
    slots.resize_with(desc.fields.len(), || None);
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        let (Ok(index) | Err(index)) = desc.fields.binary_search_by_key(&num, |f| f.num);
        let (Some(field), Some(slot)) = (desc.fields.get(index), slots.get_mut(index)) else {
            return Err(unsupported(desc.name, num));
        };
        if field.num != num {
            return Err(unsupported(desc.name, num));
        }
        if field.flags & MAP != 0 {
            expect_wire(desc.name, num, wire, 2)?;
            let (key, value) = map_entry(desc, field, r.bytes()?, depth, budget)?;
            budget.spend()?;
            if let Value::Object(map) = slot.get_or_insert_with(|| Value::Object(Map::new())) {
                map.insert(key, value);
            }
        } else if field.flags & REP != 0 {
            let mut items = Vec::new();
            if wire == 2 && field.kind.wire() == 0 {
                // Packed scalars: proto2 parsers accept both forms.
                let mut packed = Reader { buf: r.bytes()? };
                while !packed.is_empty() {
                    items.push(varint_value(field.kind, packed.varint()?));
                }
            } else {
                expect_wire(desc.name, num, wire, field.kind.wire())?;
                items.push(value(desc, field, &mut r, depth + 1, budget)?);
            }
            if let Value::Array(list) = slot.get_or_insert_with(|| Value::Array(Vec::new())) {
                for item in items {
                    budget.spend()?;
                    list.push(item);
                }
            }
        } else {
            expect_wire(desc.name, num, wire, field.kind.wire())?;
            // Go merges a repeated singular message; no client sends one, so refuse it rather
            // than guess.
            if slot.is_some() && matches!(field.kind, Kind::Message(_)) {
                return Err(Error::UnsupportedMediaType(format!(
                    "protobuf field {num} of {} appears more than once; send JSON",
                    desc.name
                )));
            }
            *slot = Some(value(desc, field, &mut r, depth, budget)?);
        }
    }
    let mut out = Map::new();
    let mut inlined = Vec::new();
    for (field, slot) in desc.fields.iter().zip(slots) {
        let value = match slot {
            Some(value) => value,
            None if field.flags & (REP | MAP | PTR) != 0 => {
                // A nil slice, map or pointer: `null` unless `omitempty`.
                if field.flags & OMITEMPTY != 0 {
                    continue;
                }
                Value::Null
            }
            None => zero(field.kind, depth, budget)?,
        };
        if field.flags & INLINE != 0 {
            if let Value::Object(map) = value {
                inlined.push(map);
            }
            continue;
        }
        if omitted(field, &value) {
            continue;
        }
        budget.spend()?;
        out.insert(String::from(field.json), value);
    }
    // Go gives the outer struct's own field precedence over a promoted one of the same name.
    for map in inlined {
        for (key, value) in map {
            out.entry(key).or_insert(value);
        }
    }
    Ok(out)
}

/// Whether Go's `encoding/json` leaves a present (or zero-filled) value out.
fn omitted(field: &Field, value: &Value) -> bool {
    if field.flags & OMITZERO != 0 && value.is_null() {
        return true;
    }
    if field.flags & OMITEMPTY == 0 || field.flags & (PTR | REP | MAP) != 0 {
        return false;
    }
    // `omitempty` never drops a struct (Time, Quantity, IntOrString, messages) in Go.
    match field.kind {
        Kind::Str | Kind::Bytes => value.as_str().is_none_or(str::is_empty),
        Kind::Bool => value.as_bool() == Some(false),
        Kind::I32 | Kind::I64 => value.as_i64() == Some(0),
        Kind::F64 => value.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The JSON of Go's zero value for a non-pointer field the body left out.
fn zero(kind: Kind, depth: usize, budget: &mut Budget) -> Result<Value, Error> {
    Ok(match kind {
        Kind::Str => Value::from(""),
        Kind::Bytes | Kind::Time | Kind::MicroTime | Kind::RawJson => Value::Null,
        Kind::Bool => Value::Bool(false),
        Kind::I32 | Kind::I64 | Kind::F64 | Kind::IntOrString => Value::from(0),
        Kind::SchemaOrArray(_) | Kind::SchemaOrBool(_) | Kind::SchemaOrStrings(_) => Value::Null,
        Kind::Quantity => Value::from("0"),
        Kind::StrList => Value::Array(Vec::new()),
        Kind::Message(desc) => Value::Object(message(desc, &[], depth + 1, budget)?),
    })
}

fn varint_value(kind: Kind, raw: u64) -> Value {
    // Two's complement reinterpretation, then Go's int32(...) truncation for int32 fields.
    let signed = raw as i64;
    match kind {
        Kind::Bool => Value::Bool(raw != 0),
        Kind::I32 => Value::from(signed as i32),
        _ => Value::from(signed),
    }
}

/// Decodes one value of `field` whose wire type was already checked.
fn value(
    desc: &'static Msg,
    field: &Field,
    r: &mut Reader<'_>,
    depth: usize,
    budget: &mut Budget,
) -> Result<Value, Error> {
    match field.kind.wire() {
        0 => return Ok(varint_value(field.kind, r.varint()?)),
        1 => return Ok(float_value(r.fixed64()?)),
        _ => {}
    }
    let bytes = r.bytes()?;
    typed_value(desc, field.num, field.kind, bytes, depth, budget)
}

/// Decodes the length-delimited payload of one value of `kind`.
fn typed_value(
    desc: &'static Msg,
    num: u32,
    kind: Kind,
    bytes: &[u8],
    depth: usize,
    budget: &mut Budget,
) -> Result<Value, Error> {
    Ok(match kind {
        Kind::Str => Value::from(utf8(desc.name, num, bytes)?),
        Kind::Bytes => Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Kind::Bool | Kind::I32 | Kind::I64 | Kind::F64 => {
            return Err(malformed(&format!(
                "field {num} of {} is not length-delimited",
                desc.name
            )));
        }
        Kind::SchemaOrArray(schema)
        | Kind::SchemaOrBool(schema)
        | Kind::SchemaOrStrings(schema) => {
            schema_or(desc, num, kind, schema, bytes, depth, budget)?
        }
        Kind::Message(inner) => Value::Object(message(inner, bytes, depth + 1, budget)?),
        Kind::Time => timestamp(bytes, false)?,
        Kind::MicroTime => timestamp(bytes, true)?,
        Kind::Quantity => quantity(bytes)?,
        Kind::IntOrString => int_or_string(bytes)?,
        Kind::RawJson => raw_json(bytes, depth)?,
        Kind::StrList => {
            let mut items = Vec::new();
            let mut r = Reader { buf: bytes };
            while !r.is_empty() {
                let (num, wire) = r.tag()?;
                expect_wire(desc.name, num, wire, 2)?;
                budget.spend()?;
                items.push(Value::from(utf8(desc.name, num, r.bytes()?)?));
            }
            Value::Array(items)
        }
    })
}

/// A `float64` as Go's `encoding/json` writes it: whole numbers without a fraction.
fn float_value(bits: u64) -> Value {
    let f = f64::from_bits(bits);
    // Below 2^53 every whole float64 is an exact i64.
    let whole = f as i64;
    if whole as f64 == f && f.abs() < 9_007_199_254_740_992.0 {
        return Value::from(whole);
    }
    // NaN and infinities have no JSON form (Go refuses to marshal them): null.
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Decodes a `JSONSchemaPropsOr*` union as its custom `MarshalJSON` shows it: the schema
/// (field `schema`) when present, else the other arm.
fn schema_or(
    desc: &'static Msg,
    num: u32,
    kind: Kind,
    schema_desc: &'static Msg,
    bytes: &[u8],
    depth: usize,
    budget: &mut Budget,
) -> Result<Value, Error> {
    // Field numbers of the schema and of the other arm.
    let (schema_num, other_num) = match kind {
        Kind::SchemaOrBool(_) => (2, 1),
        _ => (1, 2),
    };
    let mut schema = None;
    let mut items = Vec::new();
    let mut allows = false;
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (field, wire) = r.tag()?;
        if field == schema_num {
            expect_wire(desc.name, num, wire, 2)?;
            if schema.is_some() {
                return Err(unsupported(desc.name, num));
            }
            schema = Some(Value::Object(message(
                schema_desc,
                r.bytes()?,
                depth + 1,
                budget,
            )?));
        } else if field == other_num {
            budget.spend()?;
            match kind {
                Kind::SchemaOrBool(_) => {
                    expect_wire(desc.name, num, wire, 0)?;
                    allows = r.varint()? != 0;
                }
                Kind::SchemaOrArray(_) => {
                    expect_wire(desc.name, num, wire, 2)?;
                    let item = message(schema_desc, r.bytes()?, depth + 2, budget)?;
                    items.push(Value::Object(item));
                }
                _ => {
                    expect_wire(desc.name, num, wire, 2)?;
                    items.push(Value::from(utf8(desc.name, num, r.bytes()?)?));
                }
            }
        } else {
            return Err(unsupported(desc.name, num));
        }
    }
    Ok(match (schema, kind) {
        (Some(schema), _) => schema,
        (None, Kind::SchemaOrBool(_)) => Value::Bool(allows),
        (None, _) => Value::Array(items),
    })
}

/// Decodes one `map<string, kind>` entry message (key=1, value=2).
fn map_entry(
    desc: &'static Msg,
    field: &Field,
    bytes: &[u8],
    depth: usize,
    budget: &mut Budget,
) -> Result<(String, Value), Error> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        match num {
            1 => {
                expect_wire(desc.name, field.num, wire, 2)?;
                key = String::from(utf8(desc.name, field.num, r.bytes()?)?);
            }
            2 => {
                expect_wire(desc.name, field.num, wire, field.kind.wire())?;
                value = Some(match field.kind.wire() {
                    0 => varint_value(field.kind, r.varint()?),
                    1 => float_value(r.fixed64()?),
                    _ => typed_value(desc, field.num, field.kind, r.bytes()?, depth + 1, budget)?,
                });
            }
            _ => {
                return Err(malformed(&format!(
                    "an entry of map field {} of {} has field {num}",
                    field.num, desc.name
                )));
            }
        }
    }
    let value = match (value, field.kind) {
        (Some(value), _) => value,
        // Go decodes a missing map value as an empty (non-nil) one.
        (None, Kind::Bytes) => Value::from(""),
        (None, kind) => zero(kind, depth + 1, budget)?,
    };
    Ok((key, value))
}

/// Go's `time.Time{}` as a proto `Timestamp` (seconds of 0001-01-01T00:00:00Z).
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// `Time`/`MicroTime` from a `Timestamp{seconds=1, nanos=2}`. `Time` keeps whole seconds (as
/// apimachinery's `Time.Unmarshal` does), `MicroTime` microseconds.
fn timestamp(bytes: &[u8], micro: bool) -> Result<Value, Error> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        expect_wire("Timestamp", num, wire, 0)?;
        let raw = r.varint()? as i64;
        match num {
            1 => seconds = raw,
            2 => nanos = i64::from(raw as i32),
            _ => return Err(unsupported("Timestamp", num)),
        }
    }
    // apimachinery writes nothing for the zero time; an empty message reads back as zero.
    if bytes.is_empty() || (seconds == ZERO_TIME_SECONDS && nanos == 0) {
        return Ok(Value::Null);
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(malformed("a timestamp's nanos are out of range"));
    }
    let nanos = u32::try_from(nanos).unwrap_or(0);
    crate::time::rfc3339_signed(seconds, nanos, micro)
        .map(Value::from)
        .ok_or_else(|| malformed("a timestamp is outside the years 0001 to 9999"))
}

/// `Quantity{string=1}` as its string.
fn quantity(bytes: &[u8]) -> Result<Value, Error> {
    let mut text = "";
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        expect_wire("Quantity", num, wire, 2)?;
        if num != 1 {
            return Err(unsupported("Quantity", num));
        }
        text = utf8("Quantity", num, r.bytes()?)?;
    }
    if text.is_empty() {
        // apimachinery's ParseQuantity refuses an empty string with this message.
        return Err(Error::BadRequest(String::from(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        )));
    }
    Ok(Value::from(text))
}

/// `IntOrString{type=1 (0 int, 1 string), intVal=2, strVal=3}` as a number or a string.
fn int_or_string(bytes: &[u8]) -> Result<Value, Error> {
    let (mut kind, mut int, mut text) = (0u64, 0i32, String::new());
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        match num {
            1 | 2 => {
                expect_wire("IntOrString", num, wire, 0)?;
                let raw = r.varint()?;
                if num == 1 {
                    kind = raw;
                } else {
                    int = raw as i32;
                }
            }
            3 => {
                expect_wire("IntOrString", num, wire, 2)?;
                text = String::from(utf8("IntOrString", num, r.bytes()?)?);
            }
            _ => return Err(unsupported("IntOrString", num)),
        }
    }
    match kind {
        0 => Ok(Value::from(int)),
        1 => Ok(Value::from(text)),
        _ => Err(malformed(
            "an IntOrString has a type other than 0 (int) or 1 (string)",
        )),
    }
}

/// `RawExtension`/`FieldsV1{raw=1}`: the bytes are JSON and are embedded as such.
fn raw_json(bytes: &[u8], depth: usize) -> Result<Value, Error> {
    let mut raw: &[u8] = &[];
    let mut r = Reader { buf: bytes };
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        expect_wire("RawExtension", num, wire, 2)?;
        if num != 1 {
            return Err(unsupported("RawExtension", num));
        }
        raw = r.bytes()?;
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    crate::json::check_depth(raw, MAX_DEPTH.saturating_sub(depth))?;
    serde_json::from_slice(raw).map_err(|_| malformed("an embedded JSON field is not valid JSON"))
}

#[cfg(test)]
mod tests;
