//! Object validation as kube-apiserver 1.32 does it for the served types: names, required fields,
//! immutable fields on update. Every cause carries kube's field path and message wording; all
//! causes found are reported together, as kube does.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::Error;
use crate::error::Cause;
use crate::gostr::quote;
use crate::resource::ResourceId;
use crate::selector::LabelSelector;

mod autoscaling;
mod certificates;
mod discovery;
mod events;
mod networking;
mod policy;
mod rbac;
mod storage;
mod workloads;
pub(crate) use discovery::endpoint_slice_changed;
pub(crate) use workloads::{CONTROLLER_UID, JOB_NAME, LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME};

const QNAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QNAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const FIELD_IMMUTABLE: &str = "field is immutable";
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";
/// kube's `TotalAnnotationSizeLimitB`.
const ANNOTATIONS_MAX: usize = 256 * 1024;
/// kube's `core.MaxSecretSize` (also the ConfigMap limit).
const MAX_SECRET_SIZE: usize = 1024 * 1024;
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `validation.RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = String::from(msg);
    out.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(e);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn dns_label_re(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

fn dns_subdomain_re(s: &str) -> bool {
    s.split('.').all(dns_label_re)
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn qname_re(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_alnum(f)
                && is_alnum(l)
                && b.iter()
                    .all(|&c| is_alnum(c) || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `validation.IsDNS1123Label` messages (empty when valid).
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !dns_label_re(value) {
        if dns_subdomain_re(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `validation.IsDNS1123Subdomain` messages (empty when valid).
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !dns_subdomain_re(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsDNS1035Label` messages (empty when valid).
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    let b = value.as_bytes();
    let ok = match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_lowercase()
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    };
    if !ok {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Whether `name` is a DNS-1123 subdomain (lower-case alphanumerics, `-`, `.`; ≤ 253).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    dns1123_subdomain_errors(name).is_empty()
}

/// Whether `name` is a DNS-1123 label (lower-case alphanumerics and `-`; ≤ 63).
pub fn is_dns1123_label(name: &str) -> bool {
    dns1123_label_errors(name).is_empty()
}

/// Whether `name` is a DNS-1035 label (like a DNS-1123 label, but starts with a letter).
pub fn is_dns1035_label(name: &str) -> bool {
    dns1035_label_errors(name).is_empty()
}

/// `validation.IsQualifiedName` messages: label keys, annotation keys, finalizers.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let mut parts = value.split('/');
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    if parts.next().is_some() {
        errs.push(format!(
            "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            regex_error(QNAME_MSG, QNAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
        return errs;
    }
    let name = match second {
        None => first,
        Some(name) => {
            if first.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(first) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            name
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !qname_re(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QNAME_MSG, QNAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

/// Label key messages (a qualified name).
pub fn label_key_errors(key: &str) -> Vec<String> {
    qualified_name_errors(key)
}

/// `validation.IsValidLabelValue` messages.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !qname_re(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            &format!("({QNAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `validation.IsConfigMapKey` messages (ConfigMap and Secret data keys).
pub fn config_map_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push(max_len_error(253));
    }
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|c| is_alnum(c) || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        errs.push(regex_error(
            CONFIG_KEY_MSG,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if key == "." {
        errs.push("must not be '.'".into());
    } else if key == ".." {
        errs.push("must not be '..'".into());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

/// `validation.IsValidPortName` messages (IANA_SVC_NAME).
pub fn port_name_errors(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// The name rule of each served type (`ValidateXName` in kube-apiserver 1.32).
fn name_errors(resource: ResourceId, name: &str, prefix: bool) -> Vec<String> {
    // `maskTrailingDash`: a generateName prefix may end in '-'.
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        masked = format!(
            "{}a",
            name.get(..name.len().saturating_sub(2)).unwrap_or("")
        );
        masked.as_str()
    } else {
        name
    };
    match resource {
        ResourceId::Namespaces => dns1123_label_errors(name),
        ResourceId::Services => dns1035_label_errors(name),
        ResourceId::Roles
        | ResourceId::ClusterRoles
        | ResourceId::RoleBindings
        | ResourceId::ClusterRoleBindings => rbac::path_segment_errors(name),
        _ => dns1123_subdomain_errors(name),
    }
}

/// The error detail kube gives for an invalid `name` of `resource` (messages joined by `, `),
/// or `None` when the name is valid.
pub fn validate_name(resource: ResourceId, name: &str) -> Option<String> {
    let errs = name_errors(resource, name, false);
    if errs.is_empty() {
        None
    } else {
        Some(errs.join(", "))
    }
}

/// A field error's bad value, rendered as kube 1.32's `ErrorBody` renders it.
enum Bad<'a> {
    Str(&'a str),
    Int(i64),
    /// Already rendered (Go `%#v` of a composite value).
    Raw(String),
}

impl Bad<'_> {
    fn render(&self) -> String {
        match self {
            Bad::Str(s) => quote(s),
            Bad::Int(n) => n.to_string(),
            Bad::Raw(s) => s.clone(),
        }
    }
}

/// Collects causes, worded as `field.Error.ErrorBody()`.
#[derive(Default)]
struct Errs {
    causes: Vec<Cause>,
}

impl Errs {
    fn push(&mut self, reason: &'static str, field: &str, message: String) {
        self.causes.push(Cause {
            reason,
            message,
            field: field.to_string(),
        });
    }

    fn required(&mut self, field: &str, detail: &str) {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push("FieldValueRequired", field, message);
    }

    fn invalid(&mut self, field: &str, value: Bad<'_>, detail: &str) {
        let message = if detail.is_empty() {
            format!("Invalid value: {}", value.render())
        } else {
            format!("Invalid value: {}: {detail}", value.render())
        };
        self.push("FieldValueInvalid", field, message);
    }

    fn invalid_each(&mut self, field: &str, value: &str, msgs: Vec<String>) {
        for m in msgs {
            self.invalid(field, Bad::Str(value), &m);
        }
    }

    fn not_supported(&mut self, field: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        self.push(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
        );
    }

    fn forbidden(&mut self, field: &str, detail: &str) {
        self.push("FieldValueForbidden", field, format!("Forbidden: {detail}"));
    }

    fn duplicate(&mut self, field: &str, value: Bad<'_>) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", value.render()),
        );
    }

    fn not_found(&mut self, field: &str, value: &str) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", quote(value)),
        );
    }

    fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        );
    }

    fn port_num(&mut self, field: &str, port: i64) {
        if !(1..=65535).contains(&port) {
            self.invalid(
                field,
                Bad::Int(port),
                "must be between 1 and 65535, inclusive",
            );
        }
    }

    fn nonnegative(&mut self, field: &str, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_i64)
            && n < 0
        {
            self.invalid(field, Bad::Int(n), "must be greater than or equal to 0");
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn obj_at<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// Validates a custom resource of kind `kind` (with `old` on update): its metadata as every
/// object's, then the causes its schema gave (`schema`); errors are 422 Invalid with causes.
pub fn validate_custom(
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
    schema: Vec<Cause>,
) -> Result<(), Error> {
    let mut e = Errs::default();
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    validate_meta(&mut e, ResourceId::Custom(0), meta);
    if let Some(old) = old {
        validate_meta_update(&mut e, meta, old.get("metadata").unwrap_or(&empty));
    }
    e.causes.extend(schema);
    if e.causes.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid {
        kind: kind.to_string(),
        name: s(meta, "name").to_string(),
        causes: e.causes,
    })
}

/// Validates `obj` (with `old` on update); errors are 422 Invalid with causes.
pub fn validate(resource: ResourceId, obj: &Value, old: Option<&Value>) -> Result<(), Error> {
    validate_as(resource.info(), None, obj, old)
}

/// Validates `obj`, in its stored shape, written through `rt` (a storage row or a view of one:
/// some kinds have rules that depend on the API a write came through, as kube's validation
/// takes the request's group-version) and subresource `sub` (a CertificateSigningRequest's
/// `approval` and `status` may change different things); errors are 422 Invalid naming `rt`'s
/// group kind.
pub fn validate_as(
    rt: &crate::resource::ResourceType<'_>,
    sub: Option<&str>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), Error> {
    let resource = rt.id;
    let mut e = Errs::default();
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    validate_meta(&mut e, resource, meta);
    if let Some(old) = old {
        validate_meta_update(&mut e, meta, old.get("metadata").unwrap_or(&empty));
    }
    match resource {
        ResourceId::Pods => {
            validate_pod_spec(&mut e, obj.get("spec").unwrap_or(&empty), "spec", true);
            if let Some(old) = old {
                validate_pod_update(&mut e, obj, old);
            }
        }
        ResourceId::Services => validate_service(&mut e, obj, old),
        ResourceId::ConfigMaps => validate_config_map(&mut e, obj, old),
        ResourceId::Secrets => validate_secret(&mut e, obj, old),
        ResourceId::Deployments | ResourceId::ReplicaSets => {
            validate_workload(&mut e, resource, obj, old);
        }
        ResourceId::Nodes => validate_node(&mut e, obj),
        ResourceId::Leases => validate_lease(&mut e, obj),
        ResourceId::Events => {
            events::validate_legacy(&mut e, obj);
            if rt.view == Some(crate::resource::View::EventsV1) {
                match old {
                    None => events::validate_v1_create(&mut e, obj),
                    Some(old) => events::validate_v1_update(&mut e, obj, old),
                }
            }
        }
        ResourceId::Endpoints => validate_endpoints(&mut e, obj),
        ResourceId::ResourceQuotas => policy::validate_resource_quota(&mut e, obj),
        ResourceId::PodDisruptionBudgets => policy::validate_pdb(&mut e, obj),
        ResourceId::RuntimeClasses => policy::validate_runtime_class(&mut e, obj, old),
        ResourceId::FlowSchemas => policy::validate_flow_schema(&mut e, obj),
        ResourceId::PriorityLevelConfigurations => policy::validate_priority_level(&mut e, obj),
        ResourceId::ValidatingWebhookConfigurations => {
            policy::validate_webhook_configuration(&mut e, obj, false);
        }
        ResourceId::MutatingWebhookConfigurations => {
            policy::validate_webhook_configuration(&mut e, obj, true);
        }
        ResourceId::ValidatingAdmissionPolicies => policy::validate_admission_policy(&mut e, obj),
        ResourceId::ValidatingAdmissionPolicyBindings => {
            policy::validate_admission_policy_binding(&mut e, obj);
        }
        ResourceId::CustomResourceDefinitions => {
            e.causes.extend(crate::crd::validation::validate(obj, old));
        }
        ResourceId::Namespaces | ResourceId::ServiceAccounts | ResourceId::Custom(_) => {}
        ResourceId::PodTemplates => workloads::validate_pod_template(&mut e, obj),
        ResourceId::ReplicationControllers => {
            workloads::validate_replication_controller(&mut e, obj);
        }
        ResourceId::Jobs => workloads::validate_job(&mut e, obj, old),
        ResourceId::CronJobs => workloads::validate_cron_job(&mut e, obj, old),
        ResourceId::Roles => rbac::validate_role(&mut e, obj, true),
        ResourceId::ClusterRoles => rbac::validate_role(&mut e, obj, false),
        ResourceId::RoleBindings => rbac::validate_binding(&mut e, obj, old, true),
        ResourceId::ClusterRoleBindings => rbac::validate_binding(&mut e, obj, old, false),
        ResourceId::CSINodes => storage::validate_csi_node(&mut e, obj, old),
        ResourceId::CSIDrivers => storage::validate_csi_driver(&mut e, obj, old),
        ResourceId::VolumeAttachments => storage::validate_volume_attachment(&mut e, obj, old),
        ResourceId::EndpointSlices => discovery::validate_endpoint_slice(&mut e, obj, old),
        ResourceId::PriorityClasses => validate_priority_class(&mut e, obj, old),
        ResourceId::Ingresses => networking::validate_ingress(&mut e, obj),
        ResourceId::IngressClasses => networking::validate_ingress_class(&mut e, obj, old),
        ResourceId::HorizontalPodAutoscalers => autoscaling::validate_hpa(&mut e, obj, old),
        ResourceId::CertificateSigningRequests => {
            certificates::validate_csr(&mut e, obj, old, sub);
        }
    }
    if e.causes.is_empty() {
        return Ok(());
    }
    // kube's `NewInvalid` names the group kind: `Deployment.apps "web" is invalid`.
    Err(Error::Invalid {
        kind: crate::resource::group_kind(rt),
        name: s(meta, "name").to_string(),
        causes: e.causes,
    })
}

fn validate_labels(e: &mut Errs, labels: Option<&Value>, path: &str) {
    let Some(map) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        e.invalid_each(path, k, qualified_name_errors(k));
        match v.as_str() {
            Some(v) => e.invalid_each(path, v, label_value_errors(v)),
            None => e.invalid(path, Bad::Raw(v.to_string()), "must be a string"),
        }
    }
}

fn validate_annotations(e: &mut Errs, annotations: Option<&Value>, path: &str) {
    let Some(map) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total: usize = 0;
    for (k, v) in map {
        e.invalid_each(path, k, qualified_name_errors(&k.to_ascii_lowercase()));
        let len = v.as_str().map_or(0, str::len);
        total = total.saturating_add(k.len()).saturating_add(len);
    }
    if total > ANNOTATIONS_MAX {
        e.too_long(path, ANNOTATIONS_MAX);
    }
}

fn validate_meta(e: &mut Errs, resource: ResourceId, meta: &Value) {
    let generate = s(meta, "generateName");
    if !generate.is_empty() {
        e.invalid_each(
            "metadata.generateName",
            generate,
            name_errors(resource, generate, true),
        );
    }
    let name = s(meta, "name");
    if name.is_empty() {
        e.required("metadata.name", "name or generateName is required");
    } else {
        e.invalid_each("metadata.name", name, name_errors(resource, name, false));
    }
    e.nonnegative("metadata.generation", meta.get("generation"));
    validate_labels(e, meta.get("labels"), "metadata.labels");
    validate_annotations(e, meta.get("annotations"), "metadata.annotations");
    for r in arr(meta, "ownerReferences") {
        let p = "metadata.ownerReferences";
        let api_version = s(r, "apiVersion");
        // `schema.FromAPIVersionAndKind`: the version is after the last '/'.
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            e.invalid(
                &format!("{p}.apiVersion"),
                Bad::Str(api_version),
                "version must not be empty",
            );
        }
        for (field, what) in [("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if s(r, field).is_empty() {
                e.invalid(
                    &format!("{p}.{field}"),
                    Bad::Str(""),
                    &format!("{what} must not be empty"),
                );
            }
        }
    }
    for f in arr(meta, "finalizers") {
        let f = f.as_str().unwrap_or("");
        e.invalid_each("metadata.finalizers", f, qualified_name_errors(f));
    }
}

/// Go's `time.Time.String()` for the RFC 3339 UTC form kube stores (`2024-01-02T03:04:05Z`).
fn go_time(value: &str) -> String {
    match value.strip_suffix('Z').and_then(|v| v.split_once('T')) {
        Some((date, time)) => format!("{date} {time} +0000 UTC"),
        None => value.to_string(),
    }
}

fn validate_meta_update(e: &mut Errs, meta: &Value, old: &Value) {
    for key in ["name", "namespace", "uid"] {
        let (new_v, old_v) = (s(meta, key), s(old, key));
        if new_v != old_v {
            e.invalid(&format!("metadata.{key}"), Bad::Str(new_v), FIELD_IMMUTABLE);
        }
    }
    let (new_ts, old_ts) = (s(meta, "creationTimestamp"), s(old, "creationTimestamp"));
    if new_ts != old_ts {
        e.invalid(
            "metadata.creationTimestamp",
            Bad::Raw(go_time(new_ts)),
            FIELD_IMMUTABLE,
        );
    }
    if let (Some(n), Some(o)) = (
        meta.get("generation").and_then(Value::as_i64),
        old.get("generation").and_then(Value::as_i64),
    ) && n < o
    {
        e.invalid(
            "metadata.generation",
            Bad::Int(n),
            "must not be decremented",
        );
    }
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_protocol(e: &mut Errs, port: &Value, path: &str) {
    match port.get("protocol").and_then(Value::as_str) {
        // Absent is defaulted to TCP before validation in kube.
        None => {}
        Some("") => e.required(&format!("{path}.protocol"), ""),
        Some(p) if !PROTOCOLS.contains(&p) => {
            e.not_supported(&format!("{path}.protocol"), p, PROTOCOLS);
        }
        Some(_) => {}
    }
}

fn validate_container(
    e: &mut Errs,
    c: &Value,
    path: &str,
    names: &mut Vec<String>,
    volumes: &[&str],
    is_pod: bool,
) {
    let name = s(c, "name");
    let name_path = format!("{path}.name");
    if name.is_empty() {
        e.required(&name_path, "");
    } else {
        e.invalid_each(&name_path, name, dns1123_label_errors(name));
    }
    if names.iter().any(|n| n == name) {
        e.duplicate(&name_path, Bad::Str(name));
    } else {
        names.push(name.to_string());
    }
    let image = s(c, "image");
    if image.is_empty() {
        e.required(&format!("{path}.image"), "");
    } else if is_pod && image.trim() != image {
        e.invalid(
            &format!("{path}.image"),
            Bad::Str(image),
            "must not have leading or trailing whitespace",
        );
    }
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in arr(c, "ports").iter().enumerate() {
        let pp = format!("{path}.ports[{i}]");
        let pname = s(p, "name");
        if !pname.is_empty() {
            e.invalid_each(&format!("{pp}.name"), pname, port_name_errors(pname));
            if port_names.contains(&pname) {
                e.duplicate(&format!("{pp}.name"), Bad::Str(pname));
            } else {
                port_names.push(pname);
            }
        }
        match p.get("containerPort").and_then(Value::as_i64) {
            None | Some(0) => e.required(&format!("{pp}.containerPort"), ""),
            Some(n) => e.port_num(&format!("{pp}.containerPort"), n),
        }
        if let Some(n) = p.get("hostPort").and_then(Value::as_i64)
            && n != 0
        {
            e.port_num(&format!("{pp}.hostPort"), n);
        }
        validate_protocol(e, p, &pp);
    }
    for (i, env) in arr(c, "env").iter().enumerate() {
        let ep = format!("{path}.env[{i}].name");
        let n = s(env, "name");
        if n.is_empty() {
            e.required(&ep, "");
        } else if n.bytes().any(|b| !(0x20..0x7f).contains(&b) || b == b'=') {
            // RelaxedEnvironmentVariableValidation is on by default in 1.32.
            e.invalid(
                &ep,
                Bad::Str(n),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            );
        }
    }
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let mp = format!("{path}.volumeMounts[{i}]");
        let n = s(m, "name");
        if n.is_empty() {
            e.required(&format!("{mp}.name"), "");
        } else if !volumes.contains(&n) {
            e.not_found(&format!("{mp}.name"), n);
        }
        if s(m, "mountPath").is_empty() {
            e.required(&format!("{mp}.mountPath"), "");
        }
    }
    if let Some(policy) = c.get("imagePullPolicy").and_then(Value::as_str) {
        const POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
        if !POLICIES.contains(&policy) {
            e.not_supported(&format!("{path}.imagePullPolicy"), policy, POLICIES);
        }
    }
}

/// `ValidatePodSpec` (the common part) under `path` (`spec` or `spec.template.spec`).
fn validate_pod_spec(e: &mut Errs, spec: &Value, path: &str, is_pod: bool) {
    let mut volumes: Vec<&str> = Vec::new();
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let vp = format!("{path}.volumes[{i}].name");
        let n = s(v, "name");
        if n.is_empty() {
            e.required(&vp, "");
        } else {
            e.invalid_each(&vp, n, dns1123_label_errors(n));
            if volumes.contains(&n) {
                e.duplicate(&vp, Bad::Str(n));
            }
        }
        volumes.push(n);
    }
    let mut names: Vec<String> = Vec::new();
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        e.required(&format!("{path}.containers"), "");
    }
    for (i, c) in containers.iter().enumerate() {
        let cp = format!("{path}.containers[{i}]");
        validate_container(e, c, &cp, &mut names, &volumes, is_pod);
    }
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let cp = format!("{path}.initContainers[{i}]");
        validate_container(e, c, &cp, &mut names, &volumes, is_pod);
    }
    if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str) {
        const POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
        if policy.is_empty() {
            e.required(&format!("{path}.restartPolicy"), "");
        } else if !POLICIES.contains(&policy) {
            e.not_supported(&format!("{path}.restartPolicy"), policy, POLICIES);
        }
    }
    if let Some(policy) = spec.get("dnsPolicy").and_then(Value::as_str) {
        const POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
        if !POLICIES.contains(&policy) {
            e.not_supported(&format!("{path}.dnsPolicy"), policy, POLICIES);
        }
    }
    if let Some(n) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && !(1..=i64::from(i32::MAX)).contains(&n)
    {
        e.invalid(
            &format!("{path}.activeDeadlineSeconds"),
            Bad::Int(n),
            "must be between 1 and 2147483647, inclusive",
        );
    }
    // A negative terminationGracePeriodSeconds is accepted (kube rewrites it to 1).
    let sa = s(spec, "serviceAccountName");
    if !sa.is_empty() {
        e.invalid_each(
            &format!("{path}.serviceAccountName"),
            sa,
            dns1123_subdomain_errors(sa),
        );
    }
    let node = s(spec, "nodeName");
    if !node.is_empty() {
        e.invalid_each(
            &format!("{path}.nodeName"),
            node,
            dns1123_subdomain_errors(node),
        );
    }
    validate_labels(e, spec.get("nodeSelector"), &format!("{path}.nodeSelector"));
    for (i, t) in arr(spec, "tolerations").iter().enumerate() {
        validate_toleration(e, t, &format!("{path}.tolerations[{i}]"));
    }
    if let Some(na) = spec.pointer("/affinity/nodeAffinity") {
        validate_node_affinity(e, na, &format!("{path}.affinity.nodeAffinity"));
    }
    policy::validate_sysctls(e, spec, path);
}

/// `validateNodeAffinity`: required terms (at least one) and preferred terms (weight 1-100).
fn validate_node_affinity(e: &mut Errs, na: &Value, path: &str) {
    if let Some(required) = na
        .get("requiredDuringSchedulingIgnoredDuringExecution")
        .filter(|r| !r.is_null())
    {
        let terms_path =
            format!("{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
        let terms = arr(required, "nodeSelectorTerms");
        if terms.is_empty() {
            e.required(&terms_path, "must have at least one node selector term");
        }
        for (i, term) in terms.iter().enumerate() {
            validate_node_selector_term(e, term, &format!("{terms_path}[{i}]"));
        }
    }
    for (i, p) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        let pp = format!("{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
        let weight = p.get("weight").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=100).contains(&weight) {
            e.invalid(
                &format!("{pp}.weight"),
                Bad::Int(weight),
                "must be in the range 1-100",
            );
        }
        let empty = Value::Null;
        let preference = p.get("preference").unwrap_or(&empty);
        validate_node_selector_term(e, preference, &format!("{pp}.preference"));
    }
}

fn validate_node_selector_term(e: &mut Errs, term: &Value, path: &str) {
    for (j, req) in arr(term, "matchExpressions").iter().enumerate() {
        validate_node_selector_requirement(e, req, &format!("{path}.matchExpressions[{j}]"));
    }
    for (j, req) in arr(term, "matchFields").iter().enumerate() {
        let rp = format!("{path}.matchFields[{j}]");
        let op = s(req, "operator");
        let values = arr(req, "values");
        match op {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    e.required(
                        &format!("{rp}.values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    );
                }
            }
            _ => e.invalid(
                &format!("{rp}.operator"),
                Bad::Str(op),
                "not a valid selector operator",
            ),
        }
        let key = s(req, "key");
        if key == "metadata.name" {
            for (i, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                e.invalid_each(&format!("{rp}.values[{i}]"), v, dns1123_subdomain_errors(v));
            }
        } else {
            e.invalid(
                &format!("{rp}.key"),
                Bad::Str(key),
                "not a valid field selector key",
            );
        }
    }
}

/// `ValidateNodeSelectorRequirement`. Beyond kube 1.32, a Gt/Lt value must also be an integer:
/// kube admits one that is not and its scheduler then fails the pod on every attempt.
fn validate_node_selector_requirement(e: &mut Errs, req: &Value, path: &str) {
    let op = s(req, "operator");
    let values = arr(req, "values");
    let values_path = format!("{path}.values");
    match op {
        "In" | "NotIn" => {
            if values.is_empty() {
                e.required(
                    &values_path,
                    "must be specified when `operator` is 'In' or 'NotIn'",
                );
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                e.forbidden(
                    &values_path,
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                );
            }
        }
        "Gt" | "Lt" => {
            if let [one] = values {
                let text = one.as_str().unwrap_or("");
                if text.parse::<i64>().is_err() {
                    e.invalid(
                        &format!("{values_path}[0]"),
                        Bad::Str(text),
                        "must be an integer when `operator` is 'Lt' or 'Gt'",
                    );
                }
            } else {
                e.required(
                    &values_path,
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                );
            }
        }
        _ => e.invalid(
            &format!("{path}.operator"),
            Bad::Str(op),
            "not a valid selector operator",
        ),
    }
    let key = s(req, "key");
    e.invalid_each(&format!("{path}.key"), key, label_key_errors(key));
}

fn validate_toleration(e: &mut Errs, t: &Value, path: &str) {
    let key = s(t, "key");
    if !key.is_empty() {
        e.invalid_each(&format!("{path}.key"), key, qualified_name_errors(key));
    }
    let op = t.get("operator").and_then(Value::as_str).unwrap_or("");
    match op {
        "Exists" => {
            let v = s(t, "value");
            if !v.is_empty() {
                e.invalid(
                    &format!("{path}.operator"),
                    Bad::Str(v),
                    "value must be empty when `operator` is 'Exists'",
                );
            }
        }
        "" | "Equal" => {
            if key.is_empty() {
                e.invalid(
                    &format!("{path}.operator"),
                    Bad::Str(op),
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                );
            }
            let v = s(t, "value");
            e.invalid_each(&format!("{path}.value"), v, label_value_errors(v));
        }
        other => e.not_supported(&format!("{path}.operator"), other, &["Equal", "Exists"]),
    }
    let effect = s(t, "effect");
    if !effect.is_empty() {
        const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
        if !EFFECTS.contains(&effect) {
            e.not_supported(&format!("{path}.effect"), effect, EFFECTS);
        }
    }
}

/// A toleration with `tolerationSeconds` dropped, for the "additions only" comparison.
fn toleration_core(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("tolerationSeconds");
    }
    t
}

/// `ValidatePodUpdate`: the spec may change only in images, activeDeadlineSeconds,
/// tolerations (additions) and terminationGracePeriodSeconds (negative → 1).
fn validate_pod_update(e: &mut Errs, obj: &Value, old: &Value) {
    let empty = Value::Object(Map::new());
    let new_spec = obj.get("spec").unwrap_or(&empty);
    let old_spec = old.get("spec").unwrap_or(&empty);
    let new_ads = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    let old_ads = old_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            e.invalid(
                "spec.activeDeadlineSeconds",
                Bad::Int(n),
                "must be between 0 and 2147483647, inclusive",
            );
            return;
        }
        (Some(n), Some(o)) if o < n => {
            e.invalid(
                "spec.activeDeadlineSeconds",
                Bad::Int(n),
                "must be less than or equal to previous value",
            );
            return;
        }
        (None, Some(_)) => {
            e.invalid(
                "spec.activeDeadlineSeconds",
                Bad::Str("null"),
                "must not update from a positive integer to nil value",
            );
        }
        _ => {}
    }
    let mut munged = new_spec.clone();
    let Some(m) = munged.as_object_mut() else {
        return;
    };
    for key in ["containers", "initContainers"] {
        let old_list = arr(old_spec, key);
        if let Some(list) = m.get_mut(key).and_then(Value::as_array_mut)
            && list.len() == old_list.len()
        {
            for (c, oc) in list.iter_mut().zip(old_list) {
                if let (Some(c), Some(img)) = (c.as_object_mut(), oc.get("image")) {
                    c.insert("image".into(), img.clone());
                }
            }
        }
    }
    match old_spec.get("activeDeadlineSeconds") {
        Some(v) => {
            m.insert("activeDeadlineSeconds".into(), v.clone());
        }
        None => {
            m.remove("activeDeadlineSeconds");
        }
    }
    let new_tol: Vec<Value> = arr(new_spec, "tolerations")
        .iter()
        .map(toleration_core)
        .collect();
    let only_added = arr(old_spec, "tolerations")
        .iter()
        .all(|t| new_tol.contains(&toleration_core(t)));
    if only_added {
        match old_spec.get("tolerations") {
            Some(v) => m.insert("tolerations".into(), v.clone()),
            None => m.remove("tolerations"),
        };
    }
    let old_grace = old_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = new_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0)
        && new_grace == Some(1)
        && let Some(v) = old_spec.get("terminationGracePeriodSeconds")
    {
        m.insert("terminationGracePeriodSeconds".into(), v.clone());
    }
    if munged != *old_spec {
        e.forbidden("spec", POD_UPDATE_FORBIDDEN);
    }
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn validate_service(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let ty = spec.get("type").and_then(Value::as_str);
    if let Some(t) = ty
        && !SERVICE_TYPES.contains(&t)
    {
        e.not_supported("spec.type", t, SERVICE_TYPES);
    }
    let ty = ty.unwrap_or("ClusterIP");
    let headless = s(spec, "clusterIP") == "None";
    validate_cluster_ips(e, spec, ty);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        e.required("spec.ports", "");
    }
    if ty == "ExternalName" {
        let name = s(spec, "externalName");
        if name.is_empty() {
            e.required("spec.externalName", "");
        } else {
            let trimmed = name.strip_suffix('.').unwrap_or(name);
            let errs = dns1123_subdomain_errors(trimmed);
            if !errs.is_empty() {
                e.invalid("spec.externalName", Bad::Str(trimmed), &errs.join(","));
            } else if !trimmed.contains('.') {
                e.invalid(
                    "spec.externalName",
                    Bad::Str(trimmed),
                    "should be a domain with at least two segments separated by dots",
                );
            }
        }
    }
    let require_name = ports.len() > 1;
    let mut names: Vec<&str> = Vec::new();
    let mut node_ports: Vec<(&str, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = s(p, "name");
        if name.is_empty() {
            if require_name {
                e.required(&format!("{pp}.name"), "");
            }
        } else {
            e.invalid_each(&format!("{pp}.name"), name, dns1123_label_errors(name));
            if names.contains(&name) {
                e.duplicate(&format!("{pp}.name"), Bad::Str(name));
            } else {
                names.push(name);
            }
        }
        e.port_num(
            &format!("{pp}.port"),
            p.get("port").and_then(Value::as_i64).unwrap_or(0),
        );
        validate_protocol(e, p, &pp);
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                // 0 is defaulted to `port` in kube.
                if n != 0 {
                    e.port_num(&format!("{pp}.targetPort"), n);
                }
            }
            Some(Value::String(t)) if !t.is_empty() => {
                e.invalid_each(&format!("{pp}.targetPort"), t, port_name_errors(t));
            }
            _ => {}
        }
        if let Some(n) = p.get("nodePort").and_then(Value::as_i64)
            && n != 0
        {
            if ty == "ClusterIP" {
                e.forbidden(
                    &format!("{pp}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                );
            } else {
                e.port_num(&format!("{pp}.nodePort"), n);
            }
            // One node port per protocol within a Service.
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if node_ports.contains(&(protocol, n)) {
                e.duplicate(&format!("{pp}.nodePort"), Bad::Int(n));
            } else {
                node_ports.push((protocol, n));
            }
        }
    }
    validate_labels(e, spec.get("selector"), "spec.selector");
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&empty);
        let old_ty = s(old_spec, "type");
        if ty == "ExternalName" || old_ty == "ExternalName" {
            return;
        }
        let old_ip = s(old_spec, "clusterIP");
        let new_ip = s(spec, "clusterIP");
        // An omitted clusterIP keeps the allocated one (kube copies it over before validating).
        if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip {
            let ips: Vec<String> = match spec.get("clusterIPs").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|v| quote(v.as_str().unwrap_or("")))
                    .collect(),
                None => alloc::vec![quote(new_ip)],
            };
            e.invalid(
                "spec.clusterIPs[0]",
                Bad::Raw(format!("[]string{{{}}}", ips.join(", "))),
                "may not change once set",
            );
        }
    }
}

/// kube's `ValidateServiceClusterIPsRelatedFields` for a single-stack IPv4 cluster: `clusterIP`
/// and `clusterIPs` agree, each is an IP (or `None` alone), and the type allows them.
fn validate_cluster_ips(e: &mut Errs, spec: &Value, ty: &str) {
    let ip = s(spec, "clusterIP");
    let ips: Vec<&str> = arr(spec, "clusterIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    let shown = || Bad::Raw(crate::api::services::go_strings(&ips));
    if ty == "ExternalName" {
        if !ip.is_empty() || !ips.is_empty() {
            e.forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            );
        }
        return;
    }
    if !ip.is_empty() {
        match ips.first() {
            None => e.required("spec.clusterIPs", ""),
            Some(first) if *first != ip => {
                e.invalid(
                    "spec.clusterIPs",
                    shown(),
                    "first value must match `clusterIP`",
                );
            }
            Some(_) => {}
        }
    } else if !ips.is_empty() {
        e.invalid(
            "spec.clusterIPs",
            shown(),
            "must be empty when `clusterIP` is not specified",
        );
    }
    for (i, value) in ips.iter().enumerate() {
        if i == 0 && *value == "None" {
            if ips.len() > 1 {
                e.invalid(
                    "spec.clusterIPs",
                    shown(),
                    "'None' must be the first and only value",
                );
            }
            continue;
        }
        if !crate::api::services::is_ip(value) {
            e.invalid(
                &format!("spec.clusterIPs[{i}]"),
                Bad::Str(value),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            );
        }
    }
    if ip == "None" && matches!(ty, "NodePort" | "LoadBalancer") {
        e.invalid(
            "spec.clusterIPs[0]",
            Bad::Str("None"),
            &format!("may not be set to 'None' for {ty} services"),
        );
    }
}

/// Decoded length of base64 `data` (what kube counts against the 1 MiB limit).
fn b64_len(v: &str) -> usize {
    let pad = v.bytes().rev().take_while(|&b| b == b'=').count();
    (v.len() / 4).saturating_mul(3).saturating_sub(pad)
        + match v.len() % 4 {
            2 => 1,
            3 => 2,
            _ => 0,
        }
}

fn validate_data_keys(e: &mut Errs, data: Option<&Map<String, Value>>, path: &str) {
    for k in data.into_iter().flat_map(|m| m.keys()) {
        e.invalid_each(&format!("{path}[{k}]"), k, config_map_key_errors(k));
    }
}

fn immutable_update(e: &mut Errs, obj: &Value, old: &Value, fields: &[&str]) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        e.forbidden("immutable", IMMUTABLE_SET);
    }
    for f in fields {
        let n = obj
            .get(*f)
            .filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
        let o = old
            .get(*f)
            .filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
        if n != o {
            e.forbidden(f, IMMUTABLE_SET);
        }
    }
}

fn validate_config_map(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let data = obj.get("data").and_then(Value::as_object);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    let mut total: usize = 0;
    for (k, v) in data.into_iter().flatten() {
        let p = format!("data[{k}]");
        e.invalid_each(&p, k, config_map_key_errors(k));
        if binary.is_some_and(|b| b.contains_key(k)) {
            e.invalid(&p, Bad::Str(k), "duplicate of key present in binaryData");
        }
        total = total.saturating_add(v.as_str().map_or(0, str::len));
    }
    for (k, v) in binary.into_iter().flatten() {
        let p = format!("binaryData[{k}]");
        e.invalid_each(&p, k, config_map_key_errors(k));
        if data.is_some_and(|d| d.contains_key(k)) {
            e.invalid(&p, Bad::Str(k), "duplicate of key present in data");
        }
        total = total.saturating_add(v.as_str().map_or(0, b64_len));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("", MAX_SECRET_SIZE);
    }
    if let Some(old) = old {
        immutable_update(e, obj, old, &["data", "binaryData"]);
    }
}

fn validate_secret(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let data = obj.get("data").and_then(Value::as_object);
    let string_data = obj.get("stringData").and_then(Value::as_object);
    validate_data_keys(e, data, "data");
    validate_data_keys(e, string_data, "data");
    let mut total: usize = 0;
    for v in data.into_iter().flat_map(|m| m.values()) {
        total = total.saturating_add(v.as_str().map_or(0, b64_len));
    }
    for v in string_data.into_iter().flat_map(|m| m.values()) {
        total = total.saturating_add(v.as_str().map_or(0, str::len));
    }
    if total > MAX_SECRET_SIZE {
        e.too_long("data", MAX_SECRET_SIZE);
    }
    let has = |k: &str| {
        data.is_some_and(|m| {
            m.get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        }) || string_data.is_some_and(|m| m.contains_key(k))
    };
    match s(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                e.required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                );
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            e.required("data[username]", "");
            e.required("data[password]", "");
        }
        t => {
            let needed: &[&str] = match t {
                "kubernetes.io/dockercfg" => &[".dockercfg"],
                "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
                "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
                "kubernetes.io/tls" => &["tls.crt", "tls.key"],
                _ => &[],
            };
            for k in needed {
                if !has(k) {
                    e.required(&format!("data[{k}]"), "");
                }
            }
        }
    }
    if let Some(old) = old {
        let (new_t, old_t) = (s(obj, "type"), s(old, "type"));
        // An omitted type is defaulted to Opaque; only a stated change is an error.
        if !new_t.is_empty() && !old_t.is_empty() && new_t != old_t {
            e.invalid("type", Bad::Str(new_t), FIELD_IMMUTABLE);
        }
        immutable_update(e, obj, old, &["data"]);
    }
}

/// Go's `%#v` of a `map[string]string`, keys sorted as fmt prints them.
fn go_map(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else {
        return "map[string]string(nil)".into();
    };
    let mut entries: Vec<(&String, &str)> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    entries.sort();
    let inner: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
        .collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

/// Go's `%#v` of a `v1.LabelSelector`.
fn go_label_selector(sel: &Value) -> String {
    let labels = sel.get("matchLabels").and_then(Value::as_object);
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|x| {
                    let values = match x.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(v) => {
                            let v: Vec<String> =
                                v.iter().map(|s| quote(s.as_str().unwrap_or(""))).collect();
                            format!("[]string{{{}}}", v.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        quote(s(x, "key")),
                        quote(s(x, "operator")),
                        values
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_map(labels),
        exprs
    )
}

fn validate_label_selector(e: &mut Errs, sel: &Value, path: &str) {
    validate_labels(e, sel.get("matchLabels"), &format!("{path}.matchLabels"));
    for (i, x) in arr(sel, "matchExpressions").iter().enumerate() {
        let xp = format!("{path}.matchExpressions[{i}]");
        let values = arr(x, "values");
        match s(x, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        &format!("{xp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.forbidden(
                        &format!("{xp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => e.invalid(
                &format!("{xp}.operator"),
                Bad::Str(other),
                "not a valid selector operator",
            ),
        }
        let key = s(x, "key");
        e.invalid_each(&format!("{xp}.key"), key, qualified_name_errors(key));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            e.invalid_each(&format!("{xp}.values[{j}]"), v, label_value_errors(v));
        }
    }
}

fn validate_workload(e: &mut Errs, resource: ResourceId, obj: &Value, old: Option<&Value>) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    e.nonnegative("spec.replicas", spec.get("replicas"));
    e.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"));
    let kind = if resource == ResourceId::Deployments {
        "deployment"
    } else {
        "replicaset"
    };
    let mut selector = None;
    match spec.get("selector").filter(|v| !v.is_null()) {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, sel, "spec.selector");
            let n = obj_len(sel, "matchLabels").saturating_add(arr(sel, "matchExpressions").len());
            if n == 0 {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(sel)),
                    &format!("empty selector is invalid for {kind}"),
                );
            }
            match LabelSelector::from_json(sel) {
                Ok(s) => selector = Some(s),
                Err(_) => e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(sel)),
                    "invalid label selector",
                ),
            }
        }
    }
    let template = spec.get("template").unwrap_or(&empty);
    let tmeta = template.get("metadata").unwrap_or(&empty);
    if let Some(sel) = &selector
        && !sel.is_empty()
    {
        let labels = crate::selector::labels_of(template);
        if !sel.matches(&labels) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_map(obj_at(tmeta, "labels"))),
                "`selector` does not match template `labels`",
            );
        }
    }
    validate_labels(e, tmeta.get("labels"), "spec.template.metadata.labels");
    validate_annotations(
        e,
        tmeta.get("annotations"),
        "spec.template.metadata.annotations",
    );
    let tspec = template.get("spec").unwrap_or(&empty);
    validate_pod_spec(e, tspec, "spec.template.spec", false);
    if let Some(policy) = tspec.get("restartPolicy").and_then(Value::as_str)
        && policy != "Always"
    {
        e.not_supported("spec.template.spec.restartPolicy", policy, &["Always"]);
    }
    if tspec
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        );
    }
    if resource == ResourceId::Deployments {
        e.nonnegative(
            "spec.revisionHistoryLimit",
            spec.get("revisionHistoryLimit"),
        );
        if let Some(strategy) = spec.get("strategy") {
            let t = s(strategy, "type");
            const TYPES: &[&str] = &["Recreate", "RollingUpdate"];
            if !t.is_empty() && !TYPES.contains(&t) {
                e.not_supported("spec.strategy.type", t, TYPES);
            }
            if t == "Recreate" && strategy.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
                e.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        if let (Some(p), Some(m)) = (
            spec.get("progressDeadlineSeconds").and_then(Value::as_i64),
            spec.get("minReadySeconds").and_then(Value::as_i64),
        ) && p <= m
        {
            e.invalid(
                "spec.progressDeadlineSeconds",
                Bad::Int(p),
                "must be greater than minReadySeconds",
            );
        }
    }
    if let Some(old) = old {
        let new_sel = spec.get("selector").unwrap_or(&empty);
        let old_sel = old.pointer("/spec/selector").unwrap_or(&empty);
        if new_sel != old_sel {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(new_sel)),
                FIELD_IMMUTABLE,
            );
        }
    }
}

fn obj_len(v: &Value, key: &str) -> usize {
    obj_at(v, key).map_or(0, Map::len)
}

fn validate_node(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let tp = format!("spec.taints[{i}]");
        let key = s(t, "key");
        if key.is_empty() {
            e.required(&format!("{tp}.key"), "");
        } else {
            e.invalid_each(&format!("{tp}.key"), key, qualified_name_errors(key));
        }
        let v = s(t, "value");
        e.invalid_each(&format!("{tp}.value"), v, label_value_errors(v));
        const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
        let effect = s(t, "effect");
        if effect.is_empty() {
            e.required(&format!("{tp}.effect"), "");
        } else if !EFFECTS.contains(&effect) {
            e.not_supported(&format!("{tp}.effect"), effect, EFFECTS);
        }
    }
}

fn validate_lease(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    if let Some(n) = spec.get("leaseDurationSeconds").and_then(Value::as_i64)
        && n <= 0
    {
        e.invalid(
            "spec.leaseDurationSeconds",
            Bad::Int(n),
            "must be greater than 0",
        );
    }
    e.nonnegative("spec.leaseTransitions", spec.get("leaseTransitions"));
}

/// `ValidatePriorityClass` and, with `old`, `ValidatePriorityClassUpdate`.
fn validate_priority_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    use crate::admission::priority::{HIGHEST_USER_DEFINABLE, SYSTEM_PREFIX, known_system_class};
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    let global_default = obj.get("globalDefault").and_then(Value::as_bool) == Some(true);
    if name.starts_with(SYSTEM_PREFIX) {
        if let Err(error) = known_system_class(name, value, global_default) {
            e.forbidden(
                "metadata.name",
                &format!(
                    "priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {error}"
                ),
            );
        }
    } else if value > HIGHEST_USER_DEFINABLE {
        e.forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"
            ),
        );
    }
    let policy = obj.get("preemptionPolicy").and_then(Value::as_str);
    match policy {
        None | Some("PreemptLowerPriority" | "Never") => {}
        Some("") => e.required("preemptionPolicy", ""),
        Some(other) => e.not_supported(
            "preemptionPolicy",
            other,
            &["PreemptLowerPriority", "Never"],
        ),
    }
    let Some(old) = old else {
        return;
    };
    if old.get("value").and_then(Value::as_i64).unwrap_or(0) != value {
        e.forbidden("value", "may not be changed in an update.");
    }
    let old_policy = old.get("preemptionPolicy").and_then(Value::as_str);
    if policy != old_policy {
        let shown = policy.map_or_else(|| "null".to_string(), quote);
        e.invalid("preemptionPolicy", Bad::Raw(shown), FIELD_IMMUTABLE);
    }
}

fn validate_endpoints(e: &mut Errs, obj: &Value) {
    for (i, subset) in arr(obj, "subsets").iter().enumerate() {
        for (j, p) in arr(subset, "ports").iter().enumerate() {
            let pp = format!("subsets[{i}].ports[{j}]");
            e.port_num(
                &format!("{pp}.port"),
                p.get("port").and_then(Value::as_i64).unwrap_or(0),
            );
            validate_protocol(e, p, &pp);
            let name = s(p, "name");
            if !name.is_empty() {
                e.invalid_each(&format!("{pp}.name"), name, dns1123_label_errors(name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn causes(resource: ResourceId, obj: &Value, old: Option<&Value>) -> Vec<(String, String)> {
        match validate(resource, obj, old) {
            Ok(()) => Vec::new(),
            Err(Error::Invalid { causes, .. }) => {
                causes.into_iter().map(|c| (c.field, c.message)).collect()
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                         "creationTimestamp": "2024-01-02T03:04:05Z"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}],
                "restartPolicy": "Always",
                "tolerations": [{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}})
    }

    #[test]
    fn name_rules() {
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(is_dns1123_label("abc-1"));
        assert!(!is_dns1123_label("a.b"));
        assert!(is_dns1035_label("a1"));
        assert!(!is_dns1035_label("1a"));
        assert_eq!(validate_name(ResourceId::Pods, "a.b"), None);
        assert_eq!(
            validate_name(ResourceId::Namespaces, "a.b").as_deref(),
            Some("must not contain dots")
        );
        // kube: `a lowercase RFC 1123 subdomain must consist of ... (e.g. 'example.com', regex ...)`.
        assert_eq!(
            validate_name(ResourceId::ConfigMaps, "Bad_Name").as_deref(),
            Some(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            )
        );
        assert!(validate_name(ResourceId::Services, "1web").is_some());
        assert_eq!(
            qualified_name_errors("/a"),
            alloc::vec!["prefix part must be non-empty".to_string()]
        );
    }

    #[test]
    fn valid_objects_pass() {
        assert_eq!(causes(ResourceId::Pods, &pod(), None), alloc::vec![]);
        let ns = json!({"metadata": {"name": "kube-node-lease"}});
        assert_eq!(causes(ResourceId::Namespaces, &ns, None), alloc::vec![]);
        let lease = json!({"metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}});
        assert_eq!(causes(ResourceId::Leases, &lease, None), alloc::vec![]);
    }

    #[test]
    fn pod_causes_are_all_reported_with_kube_wording() {
        let bad = json!({"metadata": {"name": "Web", "labels": {"a/b/c": "x", "ok": "-bad"}},
            "spec": {"restartPolicy": "Sometimes", "containers": [
                {"name": "c", "ports": [{"containerPort": 70000, "protocol": "HTTP"}],
                 "env": [{"name": "A=B"}], "volumeMounts": [{"name": "missing", "mountPath": "/x"}]},
                {"name": "c", "image": "x"}]}});
        let got = causes(ResourceId::Pods, &bad, None);
        let want: &[(&str, &str)] = &[
            (
                "metadata.name",
                "Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of",
            ),
            (
                "metadata.labels",
                "Invalid value: \"a/b/c\": a qualified name must consist of",
            ),
            (
                "metadata.labels",
                "Invalid value: \"-bad\": a valid label must be an empty string",
            ),
            ("spec.containers[0].image", "Required value"),
            (
                "spec.containers[0].ports[0].containerPort",
                "Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                "spec.containers[0].ports[0].protocol",
                "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ),
            (
                "spec.containers[0].env[0].name",
                "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            ),
            (
                "spec.containers[0].volumeMounts[0].name",
                "Not found: \"missing\"",
            ),
            ("spec.containers[1].name", "Duplicate value: \"c\""),
            (
                "spec.restartPolicy",
                "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((field, msg), (wf, wm)) in got.iter().zip(want) {
            assert_eq!(field, wf);
            assert!(msg.starts_with(wm), "{field}: {msg}");
        }
        let err = validate(
            ResourceId::Pods,
            &json!({"metadata": {"name": "x"}, "spec": {}}),
            None,
        )
        .unwrap_err();
        // KUBE-WIRE.md: `Pod "x" is invalid: spec.containers: Required value`.
        assert_eq!(
            err.message(),
            "Pod \"x\" is invalid: spec.containers: Required value"
        );
        let err = validate(
            ResourceId::Pods,
            &json!({"metadata": {}, "spec": {"containers": [{"name": "a", "image": "b"}]}}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn pod_update_rules() {
        let old = pod();
        let mut new = pod();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "b", "operator": "Exists"}));
        new["metadata"]["labels"] = json!({"x": "y"});
        assert_eq!(causes(ResourceId::Pods, &new, Some(&old)), alloc::vec![]);

        let mut changed = pod();
        changed["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(81);
        let got = causes(ResourceId::Pods, &changed, Some(&old));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "spec");
        assert_eq!(
            got[0].1,
            alloc::format!("Forbidden: {POD_UPDATE_FORBIDDEN}")
        );

        let mut removed = pod();
        removed["spec"]["tolerations"] = json!([]);
        assert_eq!(causes(ResourceId::Pods, &removed, Some(&old))[0].0, "spec");

        let mut with_deadline = pod();
        with_deadline["spec"]["activeDeadlineSeconds"] = json!(10);
        let mut raised = with_deadline.clone();
        raised["spec"]["activeDeadlineSeconds"] = json!(20);
        assert_eq!(
            causes(ResourceId::Pods, &raised, Some(&with_deadline)),
            alloc::vec![(
                "spec.activeDeadlineSeconds".to_string(),
                "Invalid value: 20: must be less than or equal to previous value".to_string()
            )]
        );

        let mut renamed = pod();
        renamed["metadata"]["uid"] = json!("u2");
        renamed["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        let got = causes(ResourceId::Pods, &renamed, Some(&old));
        assert_eq!(
            got,
            alloc::vec![
                (
                    "metadata.uid".to_string(),
                    "Invalid value: \"u2\": field is immutable".to_string()
                ),
                (
                    "metadata.creationTimestamp".to_string(),
                    "Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable".to_string()
                ),
            ]
        );
    }

    #[test]
    fn service_rules() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
            "selector": {"app": "web"}, "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}]}});
        assert_eq!(causes(ResourceId::Services, &svc, None), alloc::vec![]);
        let headless = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        assert_eq!(causes(ResourceId::Services, &headless, None), alloc::vec![]);
        let bad = json!({"metadata": {"name": "1web"}, "spec": {"type": "Magic",
            "ports": [{"port": 0}, {"name": "a", "port": 80}, {"name": "a", "port": 81, "targetPort": 0}]}});
        let got = causes(ResourceId::Services, &bad, None);
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.type",
                "spec.ports[0].name",
                "spec.ports[0].port",
                "spec.ports[2].name"
            ]
        );
        assert!(got[0].1.contains("a DNS-1035 label must consist of"));
        assert_eq!(
            got[1].1,
            "Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
        assert_eq!(got[2].1, "Required value");
        assert_eq!(got[4].1, "Duplicate value: \"a\"");
        let no_ports = json!({"metadata": {"name": "web"}, "spec": {}});
        assert_eq!(
            causes(ResourceId::Services, &no_ports, None),
            alloc::vec![("spec.ports".to_string(), "Required value".to_string())]
        );
        let mut moved = svc.clone();
        moved["spec"]["clusterIP"] = json!("10.0.0.6");
        moved["spec"]["clusterIPs"] = json!(["10.0.0.6"]);
        assert_eq!(
            causes(ResourceId::Services, &moved, Some(&svc)),
            alloc::vec![(
                "spec.clusterIPs[0]".to_string(),
                "Invalid value: []string{\"10.0.0.6\"}: may not change once set".to_string()
            )]
        );
        let mut omitted = svc.clone();
        omitted["spec"].as_object_mut().unwrap().remove("clusterIP");
        omitted["spec"]
            .as_object_mut()
            .unwrap()
            .remove("clusterIPs");
        assert_eq!(
            causes(ResourceId::Services, &omitted, Some(&svc)),
            alloc::vec![]
        );
    }

    #[test]
    fn configmap_and_secret_rules() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a.conf": "x", "bad key": "y"}});
        let got = causes(ResourceId::ConfigMaps, &cm, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "data[bad key]");
        assert!(got[0].1.starts_with("Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
        let big =
            json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(MAX_SECRET_SIZE + 1)}});
        assert_eq!(
            causes(ResourceId::ConfigMaps, &big, None),
            alloc::vec![(
                String::new(),
                "Too long: may not be more than 1048576 bytes".to_string()
            )]
        );
        let frozen = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let mut thawed = frozen.clone();
        thawed["data"]["a"] = json!("2");
        thawed["immutable"] = json!(false);
        assert_eq!(
            causes(ResourceId::ConfigMaps, &thawed, Some(&frozen)),
            alloc::vec![
                (
                    "immutable".to_string(),
                    "Forbidden: field is immutable when `immutable` is set".to_string()
                ),
                (
                    "data".to_string(),
                    "Forbidden: field is immutable when `immutable` is set".to_string()
                ),
            ]
        );
        let secret =
            json!({"metadata": {"name": "s"}, "type": "Opaque", "stringData": {"password": "p"}});
        assert_eq!(causes(ResourceId::Secrets, &secret, None), alloc::vec![]);
        let tls = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        assert_eq!(
            causes(ResourceId::Secrets, &tls, None),
            alloc::vec![("data[tls.key]".to_string(), "Required value".to_string())]
        );
        let mut retyped = tls.clone();
        retyped["type"] = json!("Opaque");
        assert_eq!(
            causes(ResourceId::Secrets, &retyped, Some(&tls)),
            alloc::vec![(
                "type".to_string(),
                "Invalid value: \"Opaque\": field is immutable".to_string()
            )]
        );
    }

    #[test]
    fn deployment_rules() {
        let dep = json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
        assert_eq!(causes(ResourceId::Deployments, &dep, None), alloc::vec![]);
        let mut mismatch = dep.clone();
        mismatch["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        mismatch["spec"]["replicas"] = json!(-1);
        mismatch["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image");
        assert_eq!(
            causes(ResourceId::Deployments, &mismatch, None),
            alloc::vec![
                ("spec.replicas".to_string(), "Invalid value: -1: must be greater than or equal to 0".to_string()),
                (
                    "spec.template.metadata.labels".to_string(),
                    "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`".to_string()
                ),
                ("spec.template.spec.containers[0].image".to_string(), "Required value".to_string()),
            ]
        );
        let no_selector = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}});
        assert_eq!(
            causes(ResourceId::ReplicaSets, &no_selector, None),
            alloc::vec![("spec.selector".to_string(), "Required value".to_string())]
        );
        let mut reselected = dep.clone();
        reselected["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
        reselected["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
        // The familiar kubectl apply error for a changed Deployment selector.
        assert_eq!(
            causes(ResourceId::Deployments, &reselected, Some(&dep)),
            alloc::vec![(
                "spec.selector".to_string(),
                "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".to_string()
            )]
        );
    }

    #[test]
    fn node_lease_event_rules() {
        let node = json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}});
        assert_eq!(
            causes(ResourceId::Nodes, &node, None),
            alloc::vec![(
                "spec.taints[0].effect".to_string(),
                "Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string()
            )]
        );
        let lease = json!({"metadata": {"name": "n1"}, "spec": {"leaseDurationSeconds": 0}});
        assert_eq!(
            causes(ResourceId::Leases, &lease, None),
            alloc::vec![(
                "spec.leaseDurationSeconds".to_string(),
                "Invalid value: 0: must be greater than 0".to_string()
            )]
        );
        let event = json!({"metadata": {"name": "e.1", "namespace": "a"}, "involvedObject": {"namespace": "b"}});
        assert_eq!(
            causes(ResourceId::Events, &event, None),
            alloc::vec![(
                "involvedObject.namespace".to_string(),
                "Invalid value: \"b\": does not match event.namespace".to_string()
            )]
        );
    }
}
