//! Validation of the RBAC kinds as kube-apiserver 1.32 does it (`pkg/apis/rbac/validation`):
//! rules, role references and subjects, with kube's field paths and wording. Names are path
//! segments (`system:controller:x` is a valid name).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::causes::{Bad, Errs, arr, s};
use super::meta::validate_label_selector;
use super::names::dns1123_subdomain_errors;

const GROUP: &str = "rbac.authorization.k8s.io";

/// `path.IsValidPathSegmentName`, kube's `ValidateRBACName`.
pub(super) fn path_segment_errors(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return alloc::vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// Go's `%#v` of a string slice.
fn go_strings(values: &[Value]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| crate::gostr::quote(v.as_str().unwrap_or("")))
        .collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// A Role's (`namespaced`) or ClusterRole's rules, and a ClusterRole's aggregation rule.
pub(super) fn validate_role(e: &mut Errs, obj: &Value, namespaced: bool) {
    for (i, rule) in arr(obj, "rules").iter().enumerate() {
        let path = format!("rules[{i}]");
        if arr(rule, "verbs").is_empty() {
            e.required(
                &format!("{path}.verbs"),
                "verbs must contain at least one value",
            );
        }
        let urls = arr(rule, "nonResourceURLs");
        if !urls.is_empty() {
            let field = format!("{path}.nonResourceURLs");
            if namespaced {
                e.invalid(
                    &field,
                    Bad::Raw(go_strings(urls)),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if ["apiGroups", "resources", "resourceNames"]
                .iter()
                .any(|k| !arr(rule, k).is_empty())
            {
                e.invalid(
                    &field,
                    Bad::Raw(go_strings(urls)),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            e.required(
                &format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            );
        }
        if arr(rule, "resources").is_empty() {
            e.required(
                &format!("{path}.resources"),
                "resource rules must supply at least one resource",
            );
        }
    }
    if let Some(aggregation) = obj.get("aggregationRule").filter(|a| !a.is_null()) {
        let selectors = arr(aggregation, "clusterRoleSelectors");
        if selectors.is_empty() {
            e.required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            );
        }
        for (i, selector) in selectors.iter().enumerate() {
            validate_label_selector(
                e,
                selector,
                &format!("aggregationRule.clusterRoleSelectors[{i}]"),
            );
        }
    }
}

/// A RoleBinding (`namespaced`) or ClusterRoleBinding: its role reference (which never
/// changes) and its subjects.
pub(super) fn validate_binding(e: &mut Errs, obj: &Value, old: Option<&Value>, namespaced: bool) {
    let role_ref = obj.get("roleRef").unwrap_or(&Value::Null);
    let api_group = s(role_ref, "apiGroup");
    if api_group != GROUP {
        e.not_supported("roleRef.apiGroup", api_group, &[GROUP]);
    }
    let kind = s(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        e.not_supported("roleRef.kind", kind, kinds);
    }
    let name = s(role_ref, "name");
    if name.is_empty() {
        e.required("roleRef.name", "");
    } else {
        e.invalid_each("roleRef.name", name, path_segment_errors(name));
    }
    for (i, subject) in arr(obj, "subjects").iter().enumerate() {
        validate_subject(e, subject, namespaced, &format!("subjects[{i}]"));
    }
    if let Some(old) = old {
        let old_ref = old.get("roleRef").unwrap_or(&Value::Null);
        if ["apiGroup", "kind", "name"]
            .iter()
            .any(|k| s(role_ref, k) != s(old_ref, k))
        {
            let shown = format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                crate::gostr::quote(api_group),
                crate::gostr::quote(kind),
                crate::gostr::quote(name)
            );
            e.invalid("roleRef", Bad::Raw(shown), "cannot change roleRef");
        }
    }
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(e: &mut Errs, subject: &Value, namespaced: bool, path: &str) {
    let name = s(subject, "name");
    if name.is_empty() {
        e.required(&format!("{path}.name"), "");
    }
    let api_group = s(subject, "apiGroup");
    match s(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                e.invalid_each(
                    &format!("{path}.name"),
                    name,
                    dns1123_subdomain_errors(name),
                );
            }
            if !api_group.is_empty() {
                e.not_supported(&format!("{path}.apiGroup"), api_group, &[""]);
            }
            if !namespaced && s(subject, "namespace").is_empty() {
                e.required(&format!("{path}.namespace"), "");
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                e.not_supported(&format!("{path}.apiGroup"), api_group, &[GROUP]);
            }
        }
        kind => e.not_supported(
            &format!("{path}.kind"),
            kind,
            &["ServiceAccount", "User", "Group"],
        ),
    }
}
