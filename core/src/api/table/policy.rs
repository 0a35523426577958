//! Table columns of the policy kinds (ResourceQuota, PodDisruptionBudget, RuntimeClass, API
//! priority and fairness, admission registration), as kube-apiserver 1.32 prints them.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde_json::Value;

use super::{AGE, Column, NAME, col, int, list, text};
use crate::quantity::Quantity;
use crate::resource::ResourceId;

pub(super) const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    AGE,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
];

pub(super) const POD_DISRUPTION_BUDGET: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

/// kube's server-side printing is always wide, so PreemptionPolicy (priority 0) is printed.
pub(super) const PRIORITY_CLASS: &[Column] = &[
    NAME,
    col(
        "Value",
        "integer",
        "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
    ),
    col(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
    ),
];

/// kube describes Handler with `ObjectMeta{}.SwaggerDoc()["handler"]`, which is empty.
pub(super) const RUNTIME_CLASS: &[Column] = &[NAME, col("Handler", "string", ""), AGE];

pub(super) const FLOW_SCHEMA: &[Column] = &[
    NAME,
    col(
        "PriorityLevel",
        "string",
        "`name` is the name of the priority level configuration being referenced Required.",
    ),
    col(
        "MatchingPrecedence",
        "string",
        "`matchingPrecedence` is used to choose among the FlowSchemas that match a given request. The chosen FlowSchema is among those with the numerically lowest (which we take to be logically highest) MatchingPrecedence.  Each MatchingPrecedence value must be ranged in [1,10000]. Note that if the precedence is not specified, it will be set to 1000 as default.",
    ),
    col(
        "DistinguisherMethod",
        "string",
        "`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema. `nil` specifies that the distinguisher is disabled and thus will always be the empty string.",
    ),
    AGE,
    col(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

pub(super) const PRIORITY_LEVEL: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "`type` indicates whether this priority level is subject to limitation on request execution.  A value of `\"Exempt\"` means that requests of this priority level are not subject to a limit (and thus are never queued) and do not detract from the capacity made available to other priority levels.  A value of `\"Limited\"` means that (a) requests of this priority level _are_ subject to limits and (b) some of the server's limited capacity is made available exclusively to this priority level. Required.",
    ),
    col(
        "NominalConcurrencyShares",
        "string",
        "`nominalConcurrencyShares` (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level. This is the number of execution seats available at this priority level. This is used both for requests dispatched from this priority level as well as requests dispatched from other priority levels borrowing seats from this level. The server's concurrency limit (ServerCL) is divided among the Limited priority levels in proportion to their NCS values:\n\nNominalCL(i)  = ceil( ServerCL * NCS(i) / sum_ncs ) sum_ncs = sum[priority level k] NCS(k)\n\nBigger numbers mean a larger nominal concurrency limit, at the expense of every other priority level.\n\nIf not specified, this field defaults to a value of 30.\n\nSetting this field to zero supports the construction of a \"jail\" for this priority level that is used to hold some request(s)",
    ),
    col(
        "Queues",
        "string",
        "`queues` is the number of queues for this priority level. The queues exist independently at each apiserver. The value must be positive.  Setting it to 1 effectively precludes shufflesharding and thus makes the distinguisher method of associated flow schemas irrelevant.  This field has a default value of 64.",
    ),
    col(
        "HandSize",
        "string",
        "`handSize` is a small positive number that configures the shuffle sharding of requests into queues.  When enqueuing a request at this priority level the request's flow identifier (a string pair) is hashed and the hash value is used to shuffle the list of queues and deal a hand of the size specified here.  The request is put into one of the shortest queues in that hand. `handSize` must be no larger than `queues`, and should be significantly smaller (so that a few heavy flows do not saturate most of the queues).  See the user-facing documentation for more extensive guidance on setting this field.  This field has a default value of 8.",
    ),
    col(
        "QueueLengthLimit",
        "string",
        "`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time; excess requests are rejected.  This value must be positive.  If not specified, it will be defaulted to 50.",
    ),
    AGE,
];

pub(super) const WEBHOOK_CONFIGURATION: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

pub(super) const ADMISSION_POLICY: &[Column] = &[
    NAME,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    col(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE,
];

pub(super) const ADMISSION_POLICY_BINDING: &[Column] = &[
    NAME,
    col(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

/// `intstr.IntOrString.String()`, or `N/A` when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => format!("{n}"),
        _ => "N/A".to_owned(),
    }
}

/// A number cell, or `<none>` when unset (the printer's `interface{}` cells).
fn int_or_none(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_i64) {
        Some(n) => Value::from(n),
        None => Value::from("<none>"),
    }
}

/// `metav1.LabelSelector.String()` (the generated Go form the binding printer shows).
fn go_label_selector(sel: &Value) -> String {
    let mut expressions = String::from("[]LabelSelectorRequirement{");
    for e in list(sel, "/matchExpressions") {
        let values: Vec<&str> = list(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        expressions.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            text(e, "/key"),
            text(e, "/operator"),
            values.join(" ")
        ));
    }
    expressions.push('}');
    let mut labels: Vec<(&String, &Value)> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    labels.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = String::from("map[string]string{");
    for (k, v) in labels {
        map.push_str(&format!("{k}: {},", v.as_str().unwrap_or("")));
    }
    map.push('}');
    format!("&LabelSelector{{MatchLabels:{map},MatchExpressions:{expressions},}}")
}

/// `printResourceQuota`: `resource: used/hard` pairs, limits in their own column.
fn quota_columns(obj: &Value) -> (String, String) {
    let mut names: Vec<&String> = obj
        .pointer("/status/hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    names.sort();
    let quantity = |pointer: &str| {
        obj.pointer(pointer)
            .and_then(Quantity::from_json)
            .unwrap_or_default()
            .canonical()
    };
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for name in names {
        let entry = format!(
            "{name}: {}/{}",
            quantity(&format!("/status/used/{}", escape(name))),
            quantity(&format!("/status/hard/{}", escape(name)))
        );
        let mut pieces = name.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limit.push(entry);
        } else {
            request.push(entry);
        }
    }
    (request.join(", "), limit.join(", "))
}

/// A JSON pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(super) fn cells(resource: ResourceId, obj: &Value, name: Value, created: String) -> Vec<Value> {
    match resource {
        ResourceId::ResourceQuotas => {
            let (request, limit) = quota_columns(obj);
            vec![name, created.into(), request.into(), limit.into()]
        }
        ResourceId::PodDisruptionBudgets => vec![
            name,
            int_or_string(obj.pointer("/spec/minAvailable")).into(),
            int_or_string(obj.pointer("/spec/maxUnavailable")).into(),
            int(obj, "/status/disruptionsAllowed").into(),
            created.into(),
        ],
        ResourceId::RuntimeClasses => vec![name, text(obj, "/handler").into(), created.into()],
        ResourceId::PriorityClasses => vec![
            name,
            int(obj, "/value").into(),
            (obj.get("globalDefault").and_then(Value::as_bool) == Some(true)).into(),
            created.into(),
            text(obj, "/preemptionPolicy").into(),
        ],
        ResourceId::FlowSchemas => {
            let method = match text(obj, "/spec/distinguisherMethod/type") {
                "" => "<none>",
                t => t,
            };
            let missing = list(obj, "/status/conditions")
                .iter()
                .find(|c| text(c, "/type") == "Dangling")
                .map_or("?", |c| text(c, "/status"));
            vec![
                name,
                text(obj, "/spec/priorityLevelConfiguration/name").into(),
                int(obj, "/spec/matchingPrecedence").into(),
                method.into(),
                created.into(),
                missing.into(),
            ]
        }
        ResourceId::PriorityLevelConfigurations => {
            let limited = obj.pointer("/spec/limited").filter(|l| !l.is_null());
            let queuing = limited
                .and_then(|l| l.pointer("/limitResponse/queuing"))
                .filter(|q| !q.is_null());
            let shares = match limited {
                Some(l) => Value::from(int(l, "/nominalConcurrencyShares")),
                None => Value::from("<none>"),
            };
            vec![
                name,
                text(obj, "/spec/type").into(),
                shares,
                int_or_none(queuing.and_then(|q| q.get("queues"))),
                int_or_none(queuing.and_then(|q| q.get("handSize"))),
                int_or_none(queuing.and_then(|q| q.get("queueLengthLimit"))),
                created.into(),
            ]
        }
        ResourceId::ValidatingWebhookConfigurations | ResourceId::MutatingWebhookConfigurations => {
            vec![
                name,
                i64::try_from(list(obj, "/webhooks").len())
                    .unwrap_or(i64::MAX)
                    .into(),
                created.into(),
            ]
        }
        ResourceId::ValidatingAdmissionPolicies => {
            let param_kind = match obj.pointer("/spec/paramKind").filter(|p| !p.is_null()) {
                Some(p) => format!("{}/{}", text(p, "/apiVersion"), text(p, "/kind")),
                None => "<unset>".to_owned(),
            };
            vec![
                name,
                i64::try_from(list(obj, "/spec/validations").len())
                    .unwrap_or(i64::MAX)
                    .into(),
                param_kind.into(),
                created.into(),
            ]
        }
        ResourceId::ValidatingAdmissionPolicyBindings => {
            let param = match obj.pointer("/spec/paramRef").filter(|p| !p.is_null()) {
                Some(p) if !text(p, "/name").is_empty() => match text(p, "/namespace") {
                    "" => format!("*/{}", text(p, "/name")),
                    ns => format!("{ns}/{}", text(p, "/name")),
                },
                Some(p) => match p.get("selector").filter(|s| !s.is_null()) {
                    Some(sel) => go_label_selector(sel),
                    None => "<unset>".to_owned(),
                },
                None => "<unset>".to_owned(),
            };
            vec![
                name,
                text(obj, "/spec/policyName").into(),
                param.into(),
                created.into(),
            ]
        }
        _ => vec![name, created.into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quota_columns_split_limits() {
        let rq = json!({"status": {
            "hard": {"pods": "5", "limits.cpu": "2", "requests.memory": "1Gi", "limits.memory": "2Gi"},
            "used": {"pods": "1", "limits.cpu": "500m", "requests.memory": "256Mi"}}});
        let (request, limit) = quota_columns(&rq);
        assert_eq!(request, "pods: 1/5, requests.memory: 256Mi/1Gi");
        assert_eq!(limit, "limits.cpu: 500m/2, limits.memory: 0/2Gi");
    }

    #[test]
    fn policy_rows() {
        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "1%"},
            "status": {"disruptionsAllowed": 2}});
        assert_eq!(
            cells(
                ResourceId::PodDisruptionBudgets,
                &pdb,
                "p".into(),
                "1s".into()
            ),
            vec![json!("p"), json!("1%"), json!("N/A"), json!(2), json!("1s")]
        );
        let pl = json!({"spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 30,
            "limitResponse": {"type": "Reject"}}}});
        assert_eq!(
            cells(
                ResourceId::PriorityLevelConfigurations,
                &pl,
                "x".into(),
                "1s".into()
            ),
            vec![
                json!("x"),
                json!("Limited"),
                json!(30),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("1s")
            ]
        );
        let binding = json!({"spec": {"policyName": "p",
            "paramRef": {"selector": {"matchLabels": {"a": "b"}}}}});
        assert_eq!(
            cells(
                ResourceId::ValidatingAdmissionPolicyBindings,
                &binding,
                "b".into(),
                "1s".into()
            )[2],
            "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
    }
}
