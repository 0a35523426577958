//! Validation of Pods and the pod specs that templates carry, as kube 1.32's
//! `pkg/apis/core/validation` does it: containers, volumes, ports, tolerations, node affinity,
//! and the few fields a pod update may change.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::causes::{Bad, Errs, arr, s};
use super::meta::validate_labels;
use super::names::{
    dns1123_label_errors, dns1123_subdomain_errors, label_key_errors, label_value_errors,
    port_name_errors, qualified_name_errors,
};
use super::policy;
use super::services::validate_protocol;

pub(super) const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

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
pub(super) fn validate_pod_spec(e: &mut Errs, spec: &Value, path: &str, is_pod: bool) {
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

pub(super) fn validate_toleration(e: &mut Errs, t: &Value, path: &str) {
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
pub(super) fn validate_pod_update(e: &mut Errs, obj: &Value, old: &Value) {
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
