//! Defaults of the policy kinds, as their v1 `SetDefaults_*` functions set them: API priority
//! and fairness (precedence, shares, queuing) and admission registration (failure and match
//! policies, selectors, timeouts, rule scopes, service ports).

use alloc::string::String;
use serde_json::{Map, Value, json};

use super::set_default;
use crate::resource::ResourceId;

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

fn each<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// `SetDefaults_Rule`: scope `*`.
fn rules(map: &mut Map<String, Value>, key: &str) {
    for rule in each(map, key) {
        set_default(rule, "scope", Value::from("*"));
    }
}

/// `SetDefaults_MatchResources`.
fn match_resources(mr: &mut Map<String, Value>) {
    set_default(mr, "matchPolicy", Value::from("Equivalent"));
    set_default(mr, "namespaceSelector", json!({}));
    set_default(mr, "objectSelector", json!({}));
    rules(mr, "resourceRules");
    rules(mr, "excludeResourceRules");
}

/// `SetDefaults_ValidatingWebhook` / `SetDefaults_MutatingWebhook`.
fn webhook(hook: &mut Map<String, Value>, mutating: bool) {
    set_default(hook, "failurePolicy", Value::from("Fail"));
    set_default(hook, "matchPolicy", Value::from("Equivalent"));
    set_default(hook, "namespaceSelector", json!({}));
    set_default(hook, "objectSelector", json!({}));
    set_default(hook, "timeoutSeconds", Value::from(10));
    if mutating {
        set_default(hook, "reinvocationPolicy", Value::from("Never"));
    }
    rules(hook, "rules");
    if let Some(service) = object(hook, "clientConfig").and_then(|c| object(c, "service")) {
        set_default(service, "port", Value::from(443));
    }
}

/// Applies the defaults of `resource` to `map` (the whole object).
pub(super) fn apply(resource: ResourceId, map: &mut Map<String, Value>) {
    match resource {
        ResourceId::FlowSchemas => {
            if let Some(spec) = object(map, "spec")
                && spec
                    .get("matchingPrecedence")
                    .is_none_or(|p| p.is_null() || p.as_i64() == Some(0))
            {
                spec.insert("matchingPrecedence".into(), Value::from(1000));
            }
        }
        ResourceId::PriorityLevelConfigurations => {
            let Some(spec) = object(map, "spec") else {
                return;
            };
            if let Some(exempt) = object(spec, "exempt") {
                set_default(exempt, "nominalConcurrencyShares", Value::from(0));
                set_default(exempt, "lendablePercent", Value::from(0));
            }
            if let Some(limited) = object(spec, "limited") {
                set_default(limited, "nominalConcurrencyShares", Value::from(30));
                set_default(limited, "lendablePercent", Value::from(0));
                if let Some(queuing) =
                    object(limited, "limitResponse").and_then(|r| object(r, "queuing"))
                {
                    for (field, default) in
                        [("handSize", 8), ("queues", 64), ("queueLengthLimit", 50)]
                    {
                        if queuing
                            .get(field)
                            .is_none_or(|v| v.is_null() || v.as_i64() == Some(0))
                        {
                            queuing.insert(field.into(), Value::from(default));
                        }
                    }
                }
            }
        }
        ResourceId::ValidatingWebhookConfigurations | ResourceId::MutatingWebhookConfigurations => {
            let mutating = resource == ResourceId::MutatingWebhookConfigurations;
            for hook in each(map, "webhooks") {
                webhook(hook, mutating);
            }
        }
        ResourceId::ValidatingAdmissionPolicies => {
            if let Some(spec) = object(map, "spec") {
                set_default(spec, "failurePolicy", Value::from("Fail"));
                if let Some(mr) = object(spec, "matchConstraints") {
                    match_resources(mr);
                }
            }
        }
        ResourceId::ValidatingAdmissionPolicyBindings => {
            if let Some(mr) = object(map, "spec").and_then(|s| object(s, "matchResources")) {
                match_resources(mr);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_levels_and_webhooks_get_kube_defaults() {
        let mut pl = json!({"spec": {"type": "Limited", "limited": {
            "limitResponse": {"type": "Queue", "queuing": {}}}}});
        apply(
            ResourceId::PriorityLevelConfigurations,
            pl.as_object_mut().unwrap(),
        );
        assert_eq!(
            pl["spec"]["limited"],
            json!({"nominalConcurrencyShares": 30, "lendablePercent": 0, "limitResponse": {
                "type": "Queue", "queuing": {"handSize": 8, "queues": 64, "queueLengthLimit": 50}}})
        );
        let mut hooks = json!({"webhooks": [{"name": "a.b.c", "rules": [{"operations": ["CREATE"]}],
            "clientConfig": {"service": {"namespace": "n", "name": "s"}}}]});
        apply(
            ResourceId::MutatingWebhookConfigurations,
            hooks.as_object_mut().unwrap(),
        );
        let hook = &hooks["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["reinvocationPolicy"], "Never");
        assert_eq!(hook["rules"][0]["scope"], "*");
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
    }
}
