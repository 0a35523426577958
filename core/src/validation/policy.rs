//! Validation of the policy kinds as kube-apiserver 1.32 does it: ResourceQuota, the pod
//! sysctls, PodDisruptionBudget, RuntimeClass, API priority and fairness, admission
//! registration. Field paths and wording follow kube's validation packages.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, arr, s};
use super::meta::{validate_label_selector, validate_labels};
use super::names::{dns1123_label_errors, dns1123_subdomain_errors, qualified_name_errors};
use super::pods::validate_toleration;
use crate::quantity::Quantity;

/// Resource names a quota may limit without a `/` (`helper.standardQuotaResources`).
const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// Quota resources counted in whole objects (`helper.integerResources`).
const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// Scopes a quota may name (`helper.IsStandardResourceQuotaScope`).
const QUOTA_SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Whether `name` is one of kube's standard resource names (`helper.IsStandardResourceName`).
fn is_standard_resource_name(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || name.starts_with("limits.hugepages-")
}

/// Whether a quota `scope` may restrict `resource` (`helper.IsResourceQuotaScopeValidForResource`).
fn scope_valid_for(scope: &str, resource: &str) -> bool {
    const COMPUTE: &[&str] = &[
        "cpu",
        "memory",
        "limits.cpu",
        "limits.memory",
        "requests.cpu",
        "requests.memory",
    ];
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => resource == "pods" || COMPUTE.contains(&resource),
        "BestEffort" => resource == "pods",
        _ => true,
    }
}

/// One `ResourceList` of a quota (`spec.hard`, `status.hard`, `status.used`).
fn validate_quota_list(e: &mut Errs, list: Option<&Value>, path: &str) {
    let Some(map) = list.and_then(Value::as_object) else {
        return;
    };
    for (name, value) in map {
        let p = format!("{path}[{name}]");
        let errs = qualified_name_errors(name);
        if !errs.is_empty() {
            e.invalid_each(&p, name, errs);
        } else if !name.contains('/') {
            if !is_standard_resource_name(name) {
                e.invalid(
                    &p,
                    Bad::Str(name),
                    "must be a standard resource type or fully qualified",
                );
            } else if !STANDARD_QUOTA_RESOURCES.contains(&name.as_str()) {
                e.invalid(&p, Bad::Str(name), "must be a standard resource for quota");
            }
        }
        let Some(q) = Quantity::from_json(value) else {
            e.invalid(
                &p,
                Bad::Raw(value.to_string()),
                crate::quantity::PARSE_ERROR,
            );
            continue;
        };
        if q.is_negative() {
            e.invalid(
                &p,
                Bad::Str(&q.canonical()),
                "must be greater than or equal to 0",
            );
        }
        // `IsIntegerResourceName`: object counts and extended resources.
        let integer = INTEGER_RESOURCES.contains(&name.as_str())
            || (name.contains('/')
                && !name.contains("kubernetes.io/")
                && !name.starts_with("requests.")
                && qualified_name_errors(&format!("requests.{name}")).is_empty());
        if integer && q.milli_value() % 1000 != 0 {
            e.invalid(&p, Bad::Raw(q.canonical()), "must be an integer");
        }
    }
}

/// `ValidateResourceQuota` (spec and status).
pub(super) fn validate_resource_quota(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    validate_quota_list(e, spec.get("hard"), "spec.hard");
    let hard: Vec<&str> = spec
        .get("hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let scopes: Vec<&str> = arr(spec, "scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let scopes_raw = || {
        Bad::Raw(format!(
            "[]core.ResourceQuotaScope{{{}}}",
            scopes
                .iter()
                .map(|s| crate::gostr::quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    for scope in &scopes {
        if !QUOTA_SCOPES.contains(scope) {
            e.invalid("spec.scopes", scopes_raw(), "unsupported scope");
        }
        for resource in &hard {
            if STANDARD_QUOTA_RESOURCES.contains(resource) && !scope_valid_for(scope, resource) {
                e.invalid(
                    "spec.scopes",
                    scopes_raw(),
                    "unsupported scope applied to resource",
                );
            }
        }
    }
    for (a, b) in [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ] {
        if scopes.contains(&a) && scopes.contains(&b) {
            e.invalid("spec.scopes", scopes_raw(), "conflicting scopes");
        }
    }
    let mut selected: Vec<&str> = Vec::new();
    for req in spec
        .pointer("/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = "spec.scopeSelector.matchExpressions";
        let scope = s(req, "scopeName");
        let op = s(req, "operator");
        if !QUOTA_SCOPES.contains(&scope) {
            e.invalid(
                &format!("{p}.scopeName"),
                Bad::Str(scope),
                "unsupported scope",
            );
        }
        if matches!(
            scope,
            "BestEffort"
                | "NotBestEffort"
                | "Terminating"
                | "NotTerminating"
                | "CrossNamespacePodAffinity"
        ) && op != "Exists"
        {
            e.invalid(
                &format!("{p}.operator"),
                Bad::Str(op),
                "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            );
        }
        let values = arr(req, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        &format!("{p}.values"),
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.invalid(
                        &format!("{p}.values"),
                        Bad::Raw(go_strings(values)),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    );
                }
            }
            other => e.invalid(
                &format!("{p}.operator"),
                Bad::Str(other),
                "not a valid selector operator",
            ),
        }
        selected.push(scope);
    }
    for (a, b) in [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ] {
        if selected.contains(&a) && selected.contains(&b) {
            e.invalid(
                "spec.scopeSelector.matchExpressions",
                scopes_raw(),
                "conflicting scopes",
            );
        }
    }
    validate_quota_list(e, obj.pointer("/status/hard"), "status.hard");
    validate_quota_list(e, obj.pointer("/status/used"), "status.used");
}

/// A Go `[]string` as `%v` prints it.
fn go_strings(values: &[Value]) -> String {
    let items: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    format!("[{}]", items.join(" "))
}

/// The sysctl-name regular expression as Go prints it.
const SYSCTL_RE: &str = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";

/// `IsValidSysctlName`: segments of `[a-z0-9]([-_a-z0-9]*[a-z0-9])?` joined by `.` or `/`, at
/// most 253 characters.
fn is_valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 || name.is_empty() {
        return false;
    }
    name.split(['.', '/']).all(|segment| {
        let b = segment.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                (f.is_ascii_lowercase() || f.is_ascii_digit())
                    && (l.is_ascii_lowercase() || l.is_ascii_digit())
                    && b.iter().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_'
                    })
            }
            _ => false,
        }
    })
}

/// Which host namespace a sysctl belongs to (`utilsysctl.GetNamespace`): `net` or `ipc`.
fn sysctl_namespace(name: &str) -> Option<&'static str> {
    let name = name.replace('/', ".");
    if name.starts_with("net.") {
        return Some("net");
    }
    if name == "kernel.sem"
        || name.starts_with("kernel.shm")
        || name.starts_with("kernel.msg")
        || name.starts_with("fs.mqueue.")
    {
        return Some("ipc");
    }
    None
}

/// `validateSysctls` of a pod's `securityContext`.
pub(super) fn validate_sysctls(e: &mut Errs, spec: &Value, path: &str) {
    let Some(sysctls) = spec
        .pointer("/securityContext/sysctls")
        .and_then(Value::as_array)
    else {
        return;
    };
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let host_ipc = spec.get("hostIPC").and_then(Value::as_bool) == Some(true);
    let mut names: Vec<&str> = Vec::new();
    for (i, sysctl) in sysctls.iter().enumerate() {
        let p = format!("{path}.securityContext.sysctls[{i}].name");
        let name = s(sysctl, "name");
        if name.is_empty() {
            e.required(&p, "");
        } else if !is_valid_sysctl_name(name) {
            e.invalid(
                &p,
                Bad::Str(name),
                &format!("must have at most 253 characters and match regex {SYSCTL_RE}"),
            );
        } else if names.contains(&name) {
            e.duplicate(&p, Bad::Str(name));
        }
        match sysctl_namespace(name) {
            Some("net") if host_network => {
                e.invalid(
                    &p,
                    Bad::Str(name),
                    "may not be specified when 'hostNetwork' is true",
                );
            }
            Some("ipc") if host_ipc => {
                e.invalid(
                    &p,
                    Bad::Str(name),
                    "may not be specified when 'hostIPC' is true",
                );
            }
            _ => {}
        }
        names.push(name);
    }
}

/// An IntOrString as kube's `intstr.IntOrString.String()` prints it.
fn int_or_string_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
fn validate_int_or_percent(e: &mut Errs, v: &Value, path: &str) {
    match v {
        Value::String(text) => {
            let digits = text.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                e.invalid(
                    path,
                    Bad::Raw(text.clone()),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                );
            } else if digits.parse::<u64>().map_or(true, |n| n > 100) {
                e.invalid(
                    path,
                    Bad::Raw(text.clone()),
                    "must not be greater than 100%",
                );
            }
        }
        Value::Number(n) => {
            if let Some(n) = n.as_i64()
                && n < 0
            {
                e.invalid(path, Bad::Int(n), "must be greater than or equal to 0");
            }
        }
        other => e.invalid(
            path,
            Bad::Raw(int_or_string_text(other)),
            "must be an integer or percentage (e.g '5%%')",
        ),
    }
}

/// `ValidatePodDisruptionBudget`.
pub(super) fn validate_pdb(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let min = spec.get("minAvailable").filter(|v| !v.is_null());
    let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
    if min.is_some() && max.is_some() {
        e.invalid(
            "spec",
            Bad::Raw(format!(
                "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, MaxUnavailable:{}}}",
                int_or_string_text(min.unwrap_or(&empty)),
                int_or_string_text(max.unwrap_or(&empty))
            )),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    if let Some(v) = min {
        validate_int_or_percent(e, v, "spec.minAvailable");
    }
    if let Some(v) = max {
        validate_int_or_percent(e, v, "spec.maxUnavailable");
    }
    if let Some(sel) = spec.get("selector").filter(|v| !v.is_null()) {
        validate_label_selector(e, sel, "spec.selector");
    }
    if let Some(policy) = spec
        .get("unhealthyPodEvictionPolicy")
        .and_then(Value::as_str)
    {
        const POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];
        if !POLICIES.contains(&policy) {
            e.not_supported("spec.unhealthyPodEvictionPolicy", policy, POLICIES);
        }
    }
}

/// `ValidateRuntimeClass` / `ValidateRuntimeClassUpdate`.
pub(super) fn validate_runtime_class(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let handler = s(obj, "handler");
    if let Some(old) = old {
        if handler != s(old, "handler") {
            e.invalid("handler", Bad::Str(handler), super::causes::FIELD_IMMUTABLE);
        }
        return;
    }
    if handler.is_empty() {
        e.required("handler", "");
    } else {
        e.invalid_each("handler", handler, dns1123_label_errors(handler));
    }
    if let Some(fixed) = obj.pointer("/overhead/podFixed").and_then(Value::as_object) {
        for (name, value) in fixed {
            let p = format!("overhead.podFixed[{name}]");
            match Quantity::from_json(value) {
                None => e.invalid(
                    &p,
                    Bad::Raw(value.to_string()),
                    crate::quantity::PARSE_ERROR,
                ),
                Some(q) if q.is_negative() => e.invalid(
                    &p,
                    Bad::Str(&q.canonical()),
                    "must be greater than or equal to 0",
                ),
                Some(_) => {}
            }
        }
    }
    if let Some(scheduling) = obj.get("scheduling").filter(|v| !v.is_null()) {
        validate_labels(e, scheduling.get("nodeSelector"), "scheduling.nodeSelector");
        for (i, t) in arr(scheduling, "tolerations").iter().enumerate() {
            validate_toleration(e, t, &format!("scheduling.tolerations[{i}]"));
        }
    }
}

/// `ValidateFlowSchema` (the parts clients meet: precedence, level reference, distinguisher,
/// subjects and rules).
pub(super) fn validate_flow_schema(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    if let Some(p) = spec.get("matchingPrecedence").and_then(Value::as_i64)
        && !(1..=10_000).contains(&p)
    {
        e.invalid(
            "spec.matchingPrecedence",
            Bad::Int(p),
            "must be between 1 and 10000, inclusive",
        );
    }
    let level = s(
        spec.get("priorityLevelConfiguration").unwrap_or(&empty),
        "name",
    );
    if level.is_empty() {
        e.required(
            "spec.priorityLevelConfiguration.name",
            "must reference a priority level",
        );
    } else {
        e.invalid_each(
            "spec.priorityLevelConfiguration.name",
            level,
            dns1123_subdomain_errors(level),
        );
    }
    if let Some(method) = spec.get("distinguisherMethod").filter(|v| !v.is_null()) {
        const METHODS: &[&str] = &["ByNamespace", "ByUser"];
        let t = s(method, "type");
        if !METHODS.contains(&t) {
            e.not_supported("spec.distinguisherMethod.type", t, METHODS);
        }
    }
    for (i, rule) in arr(spec, "rules").iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        if arr(rule, "subjects").is_empty() {
            e.required(
                &format!("{p}.subjects"),
                "subjects must contain at least one value",
            );
        }
        for (j, subject) in arr(rule, "subjects").iter().enumerate() {
            const KINDS: &[&str] = &["Group", "ServiceAccount", "User"];
            let kind = s(subject, "kind");
            if !KINDS.contains(&kind) {
                e.not_supported(&format!("{p}.subjects[{j}].kind"), kind, KINDS);
            }
        }
        if arr(rule, "resourceRules").is_empty() && arr(rule, "nonResourceRules").is_empty() {
            e.required(
                &p,
                "at least one of resourceRules and nonResourceRules has to be non-empty",
            );
        }
    }
}

/// `ValidatePriorityLevelConfiguration` (type and its one matching configuration).
pub(super) fn validate_priority_level(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let ty = s(spec, "type");
    let limited = spec.get("limited").filter(|v| !v.is_null());
    let exempt = spec.get("exempt").filter(|v| !v.is_null());
    match ty {
        "Limited" => {
            if exempt.is_some() {
                e.forbidden("spec.exempt", "must be nil if the type is Limited");
            }
            match limited {
                None => e.required("spec.limited", "must not be empty when type is Limited"),
                Some(l) => {
                    let response = l.get("limitResponse").unwrap_or(&empty);
                    const TYPES: &[&str] = &["Queue", "Reject"];
                    let rt = s(response, "type");
                    if !TYPES.contains(&rt) {
                        e.not_supported("spec.limited.limitResponse.type", rt, TYPES);
                    }
                    if let Some(q) = response.get("queuing").filter(|v| !v.is_null()) {
                        if rt == "Reject" {
                            e.forbidden(
                                "spec.limited.limitResponse.queuing",
                                "must be nil if limited.limitResponse.type is not Limited",
                            );
                        }
                        for field in ["queueLengthLimit", "queues", "handSize"] {
                            if let Some(n) = q.get(field).and_then(Value::as_i64)
                                && n <= 0
                            {
                                e.invalid(
                                    &format!("spec.limited.limitResponse.queuing.{field}"),
                                    Bad::Int(n),
                                    "must be positive",
                                );
                            }
                        }
                    }
                    for field in ["lendablePercent", "borrowingLimitPercent"] {
                        if let Some(n) = l.get(field).and_then(Value::as_i64)
                            && n < 0
                        {
                            e.invalid(
                                &format!("spec.limited.{field}"),
                                Bad::Int(n),
                                "must be between 0 and 100, inclusive",
                            );
                        }
                    }
                }
            }
        }
        "Exempt" => {
            if limited.is_some() {
                e.forbidden("spec.limited", "must be nil if the type is not Limited");
            }
        }
        other => e.not_supported("spec.type", other, &["Exempt", "Limited"]),
    }
}

/// One admission rule (`validateRule` with operations).
fn validate_rule(e: &mut Errs, rule: &Value, path: &str) {
    let groups = arr(rule, "apiGroups");
    if groups.is_empty() {
        e.required(&format!("{path}.apiGroups"), "");
    }
    let versions = arr(rule, "apiVersions");
    if versions.is_empty() {
        e.required(&format!("{path}.apiVersions"), "");
    }
    let resources = arr(rule, "resources");
    if resources.is_empty() {
        e.required(&format!("{path}.resources"), "");
    }
    for (i, r) in resources.iter().enumerate() {
        if r.as_str().is_none_or(str::is_empty) {
            e.required(&format!("{path}.resources[{i}]"), "");
        }
    }
    let operations = arr(rule, "operations");
    if operations.is_empty() {
        e.required(&format!("{path}.operations"), "");
    }
    const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
    for (i, op) in operations.iter().enumerate() {
        let op = op.as_str().unwrap_or("");
        if !OPERATIONS.contains(&op) {
            e.not_supported(&format!("{path}.operations[{i}]"), op, OPERATIONS);
        }
    }
    if let Some(scope) = rule.get("scope").and_then(Value::as_str) {
        const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
        if !SCOPES.contains(&scope) {
            e.not_supported(&format!("{path}.scope"), scope, SCOPES);
        }
    }
}

/// `ValidateValidatingWebhookConfiguration` / `ValidateMutatingWebhookConfiguration`.
pub(super) fn validate_webhook_configuration(e: &mut Errs, obj: &Value, mutating: bool) {
    let mut names: Vec<&str> = Vec::new();
    for (i, hook) in arr(obj, "webhooks").iter().enumerate() {
        let p = format!("webhooks[{i}]");
        let name = s(hook, "name");
        let errs = dns1123_subdomain_errors(name);
        if name.is_empty() {
            e.required(&format!("{p}.name"), "");
        } else if !errs.is_empty() || name.split('.').count() < 3 {
            e.invalid(
                &format!("{p}.name"),
                Bad::Str(name),
                "should be a domain with at least three segments separated by dots",
            );
        }
        if names.contains(&name) {
            e.duplicate(&format!("webhooks[{i}].name"), Bad::Str(name));
        }
        names.push(name);
        for (j, rule) in arr(hook, "rules").iter().enumerate() {
            validate_rule(e, rule, &format!("{p}.rules[{j}]"));
        }
        const POLICIES: &[&str] = &["Fail", "Ignore"];
        let policy = s(hook, "failurePolicy");
        if !POLICIES.contains(&policy) {
            e.not_supported(&format!("{p}.failurePolicy"), policy, POLICIES);
        }
        const MATCH: &[&str] = &["Equivalent", "Exact"];
        let policy = s(hook, "matchPolicy");
        if !MATCH.contains(&policy) {
            e.not_supported(&format!("{p}.matchPolicy"), policy, MATCH);
        }
        const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
        match hook.get("sideEffects").and_then(Value::as_str) {
            None => e.required(
                &format!("{p}.sideEffects"),
                "must specify one of None, NoneOnDryRun",
            ),
            Some(se) if !SIDE_EFFECTS.contains(&se) => {
                e.not_supported(&format!("{p}.sideEffects"), se, SIDE_EFFECTS);
            }
            Some(_) => {}
        }
        if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64)
            && !(1..=30).contains(&t)
        {
            e.invalid(
                &format!("{p}.timeoutSeconds"),
                Bad::Int(t),
                "the timeout value must be between 1 and 30 seconds",
            );
        }
        let versions = arr(hook, "admissionReviewVersions");
        if !versions
            .iter()
            .any(|v| matches!(v.as_str(), Some("v1" | "v1beta1")))
        {
            e.required(
                &format!("{p}.admissionReviewVersions"),
                "must specify one of v1, v1beta1",
            );
        }
        if mutating && let Some(r) = hook.get("reinvocationPolicy").and_then(Value::as_str) {
            const REINVOCATION: &[&str] = &["IfNeeded", "Never"];
            if !REINVOCATION.contains(&r) {
                e.not_supported(&format!("{p}.reinvocationPolicy"), r, REINVOCATION);
            }
        }
        let config = hook.get("clientConfig").unwrap_or(&Value::Null);
        let url = config.get("url").filter(|v| !v.is_null());
        let service = config.get("service").filter(|v| !v.is_null());
        if url.is_some() == service.is_some() {
            e.required(
                &format!("{p}.clientConfig"),
                "exactly one of url or service is required",
            );
        }
        if let Some(service) = service {
            for field in ["namespace", "name"] {
                if s(service, field).is_empty() {
                    e.required(
                        &format!("{p}.clientConfig.service.{field}"),
                        &format!("service {field} is required"),
                    );
                }
            }
        }
        for selector in ["namespaceSelector", "objectSelector"] {
            if let Some(sel) = hook.get(selector).filter(|v| !v.is_null()) {
                validate_label_selector(e, sel, &format!("{p}.{selector}"));
            }
        }
    }
}

/// The match constraints of a policy or a binding (`validateMatchResources`).
fn validate_match_resources(e: &mut Errs, mr: &Value, path: &str, policy: bool) {
    const MATCH: &[&str] = &["Equivalent", "Exact"];
    match mr.get("matchPolicy").and_then(Value::as_str) {
        None => e.required(&format!("{path}.matchPolicy"), ""),
        Some(p) if !MATCH.contains(&p) => {
            e.not_supported(&format!("{path}.matchPolicy"), p, MATCH);
        }
        Some(_) => {}
    }
    for selector in ["namespaceSelector", "objectSelector"] {
        match mr.get(selector).filter(|v| !v.is_null()) {
            None => e.required(&format!("{path}.{selector}"), ""),
            Some(sel) => validate_label_selector(e, sel, &format!("{path}.{selector}")),
        }
    }
    let rules = arr(mr, "resourceRules");
    if policy && rules.is_empty() {
        e.required(&format!("{path}.resourceRules"), "");
    }
    for (i, rule) in rules.iter().enumerate() {
        validate_rule(e, rule, &format!("{path}.resourceRules[{i}]"));
    }
    for (i, rule) in arr(mr, "excludeResourceRules").iter().enumerate() {
        validate_rule(e, rule, &format!("{path}.excludeResourceRules[{i}]"));
    }
}

/// A CEL expression that must compile: kube's `compilation failed: ERROR: <input>:L:C: ...`.
/// Only the syntax is checked (there is no type checker: a reference to an undeclared name
/// or a type confusion is found when the expression runs, as a runtime error).
fn validate_expression(e: &mut Errs, expression: &str, path: &str) {
    if let Err(err) = crate::cel::parse(expression) {
        e.invalid(
            path,
            Bad::Str(expression),
            &format!("compilation failed: {err}"),
        );
    }
}

/// `[_a-zA-Z][_a-zA-Z0-9]*`, a CEL identifier.
fn is_cel_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    b.first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `ValidateValidatingAdmissionPolicy`.
pub(super) fn validate_admission_policy(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    const POLICIES: &[&str] = &["Fail", "Ignore"];
    match spec.get("failurePolicy").and_then(Value::as_str) {
        None => e.required("spec.failurePolicy", ""),
        Some(p) if !POLICIES.contains(&p) => e.not_supported("spec.failurePolicy", p, POLICIES),
        Some(_) => {}
    }
    match spec.get("matchConstraints").filter(|v| !v.is_null()) {
        None => e.required("spec.matchConstraints", ""),
        Some(mc) => validate_match_resources(e, mc, "spec.matchConstraints", true),
    }
    let validations = arr(spec, "validations");
    let audits = arr(spec, "auditAnnotations");
    if validations.is_empty() && audits.is_empty() {
        e.required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        );
        e.required(
            "spec.auditAnnotations",
            "validations or auditAnnotations must contain at least one item",
        );
    }
    let mut variables: Vec<&str> = Vec::new();
    for (i, v) in arr(spec, "variables").iter().enumerate() {
        let p = format!("spec.variables[{i}]");
        let name = s(v, "name");
        if name.is_empty() {
            e.required(&format!("{p}.name"), "name is not specified");
        } else if !is_cel_identifier(name) {
            e.invalid(
                &format!("{p}.name"),
                Bad::Str(name),
                "name is not a valid CEL identifier",
            );
        }
        if variables.contains(&name) {
            e.duplicate(&format!("{p}.name"), Bad::Str(name));
        }
        variables.push(name);
        let expression = s(v, "expression");
        if expression.is_empty() {
            e.required(&format!("{p}.expression"), "expression is not specified");
        } else {
            validate_expression(e, expression, &format!("{p}.expression"));
        }
    }
    for (i, v) in validations.iter().enumerate() {
        let p = format!("spec.validations[{i}]");
        let expression = s(v, "expression");
        if expression.trim().is_empty() {
            e.required(&format!("{p}.expression"), "expression is not specified");
        } else {
            validate_expression(e, expression, &format!("{p}.expression"));
        }
        if let Some(m) = v.get("messageExpression").and_then(Value::as_str) {
            if m.trim().is_empty() {
                e.invalid(
                    &format!("{p}.messageExpression"),
                    Bad::Str(m),
                    "must be non-empty if specified",
                );
            } else {
                validate_expression(e, m, &format!("{p}.messageExpression"));
            }
        }
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            if m.trim().is_empty() {
                e.invalid(
                    &format!("{p}.message"),
                    Bad::Str(m),
                    "message must be non-empty if specified",
                );
            } else if m.contains('\n') {
                e.invalid(
                    &format!("{p}.message"),
                    Bad::Str(m),
                    "message must not contain line breaks",
                );
            }
        } else if expression.contains('\n') {
            e.required(
                &format!("{p}.message"),
                "message must be specified if expression contains line breaks",
            );
        }
        if let Some(r) = v.get("reason").and_then(Value::as_str) {
            const REASONS: &[&str] = &[
                "Forbidden",
                "Invalid",
                "RequestEntityTooLarge",
                "Unauthorized",
            ];
            if !REASONS.contains(&r) {
                e.not_supported(&format!("{p}.reason"), r, REASONS);
            }
        }
    }
    for (i, c) in arr(spec, "matchConditions").iter().enumerate() {
        let p = format!("spec.matchConditions[{i}]");
        if s(c, "name").is_empty() {
            e.required(&format!("{p}.name"), "");
        }
        let expression = s(c, "expression");
        if expression.is_empty() {
            e.required(&format!("{p}.expression"), "");
        } else {
            validate_expression(e, expression, &format!("{p}.expression"));
        }
    }
}

/// `ValidateValidatingAdmissionPolicyBinding`.
pub(super) fn validate_admission_policy_binding(e: &mut Errs, obj: &Value) {
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    let policy = s(spec, "policyName");
    if policy.is_empty() {
        e.required("spec.policyName", "");
    } else {
        e.invalid_each("spec.policyName", policy, dns1123_subdomain_errors(policy));
    }
    if let Some(pr) = spec.get("paramRef").filter(|v| !v.is_null()) {
        let name = s(pr, "name");
        let selector = pr.get("selector").filter(|v| !v.is_null());
        if !name.is_empty() && selector.is_some() {
            e.forbidden(
                "spec.paramRef.name",
                "name and selector are mutually exclusive",
            );
            e.forbidden(
                "spec.paramRef.selector",
                "name and selector are mutually exclusive",
            );
        }
        if name.is_empty() && selector.is_none() {
            e.required("spec.paramRef", "one of name or selector must be specified");
        }
        match pr.get("parameterNotFoundAction").and_then(Value::as_str) {
            None => e.required("spec.paramRef.parameterNotFoundAction", ""),
            Some(a) if a != "Deny" && a != "Allow" => e.not_supported(
                "spec.paramRef.parameterNotFoundAction",
                a,
                &["Deny", "Allow"],
            ),
            Some(_) => {}
        }
    }
    if let Some(mr) = spec.get("matchResources").filter(|v| !v.is_null()) {
        validate_match_resources(e, mr, "spec.matchResources", false);
    }
    let actions: Vec<&str> = arr(spec, "validationActions")
        .iter()
        .map(|a| a.as_str().unwrap_or(""))
        .collect();
    const ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
    for (i, action) in actions.iter().enumerate() {
        let p = format!("spec.validationActions[{i}]");
        if !ACTIONS.contains(action) {
            e.not_supported(&p, action, ACTIONS);
        } else if actions
            .get(..i)
            .is_some_and(|before| before.contains(action))
        {
            e.duplicate(&p, Bad::Str(action));
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        e.invalid(
            "spec.validationActions",
            Bad::Raw(format!("[{}]", actions.join(" "))),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        );
    }
    if actions.is_empty() {
        e.required(
            "spec.validationActions",
            "at least one validation action is required",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names() {
        for good in [
            "kernel.shmmax",
            "net.ipv4.ip_forward",
            "safe-and-unsafe",
            "a/b.c",
        ] {
            assert!(is_valid_sysctl_name(good), "{good}");
        }
        for bad in ["foo-", "bar..", "", "-a", "A.b", "a..b"] {
            assert!(!is_valid_sysctl_name(bad), "{bad}");
        }
        assert_eq!(sysctl_namespace("net.core.somaxconn"), Some("net"));
        assert_eq!(sysctl_namespace("kernel.shmmax"), Some("ipc"));
        assert_eq!(sysctl_namespace("kernel.pid_max"), None);
    }
}
