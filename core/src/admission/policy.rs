//! ValidatingAdmissionPolicy enforcement (kube's `ValidatingAdmissionPolicy` admission plugin):
//! every ValidatingAdmissionPolicyBinding whose policy matches a write (the policy's
//! `matchConstraints`, then the binding's `matchResources`, then the policy's
//! `matchConditions`) has the policy's `validations` evaluated by the bounded CEL evaluator
//! ([`crate::cel`]) over `object`, `oldObject`, `request`, `params`, `namespaceObject` and
//! `variables`. A failed validation under a `Deny` binding refuses the write with kube's
//! wording; under `Warn` it becomes a warning; `Audit` has no audit log to go to here.
//!
//! Runs after defaulting and validation, on the object as it would be stored, as kube's
//! validating admission does. The admissionregistration.k8s.io resources themselves are
//! exempt, as in kube, so a bad policy cannot lock itself in.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::{Attempt, Operation};
use crate::auth::Identity;
use crate::cel::{self, Bindings, Environment, Expr};
use crate::resource::{RESOURCES, ResourceId, ResourceType};
use crate::selector::{LabelSelector, labels_of};
use crate::store::{ObjectKey, Store};
use crate::{Error, json as j};

/// What a write's policies decided.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The `Warn` bindings' failures, as kube's warning headers word them.
    pub(crate) warnings: Vec<String>,
}

/// Evaluates the policies bound to `attempt`; the first `Deny` failure is the error.
/// `budget` is the CEL cost each policy evaluation (one binding, one param) may spend.
pub(crate) fn validate(
    store: &Store,
    identity: &Identity,
    attempt: &Attempt<'_>,
    dry_run: bool,
    budget: u64,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    if store.count(ResourceId::ValidatingAdmissionPolicyBindings) == 0
        || attempt.resource.group == "admissionregistration.k8s.io"
    {
        return Ok(outcome);
    }
    let request = Request::new(store, identity, attempt, dry_run);
    for (_, stored) in store.range(ResourceId::ValidatingAdmissionPolicyBindings, None, None) {
        let Ok(binding) = serde_json::from_slice::<Value>(&stored.json.bytes()) else {
            continue;
        };
        let policy_name = j::str_at(&binding, "/spec/policyName");
        let key = ObjectKey::new(ResourceId::ValidatingAdmissionPolicies, "", policy_name);
        let Some(policy) = store
            .get(&key)
            .and_then(|p| serde_json::from_slice::<Value>(&p.json.bytes()).ok())
        else {
            continue;
        };
        if !request.matches(policy.pointer("/spec/matchConstraints"), false) {
            continue;
        }
        if let Some(resources) = binding
            .pointer("/spec/matchResources")
            .filter(|v| !v.is_null())
            && !request.matches(Some(resources), true)
        {
            continue;
        }
        let failures = evaluate(store, &request, &policy, &binding, budget);
        let binding_name = j::str_at(&binding, "/metadata/name");
        let actions = j::array_at(&binding, "/spec/validationActions");
        let has = |action: &str| actions.iter().any(|a| a.as_str() == Some(action));
        if let Some(failure) = failures.first()
            && has("Deny")
        {
            return Err(Error::PolicyDenied {
                resource: crate::cluster::object::qualified(attempt.resource),
                name: attempt.name.to_owned(),
                message: format!(
                    "ValidatingAdmissionPolicy '{}' with binding '{binding_name}' denied request: {}",
                    j::str_at(&policy, "/metadata/name"),
                    failure.message
                ),
                reason: failure.reason,
            });
        }
        if has("Warn") {
            for failure in &failures {
                outcome.warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{binding_name}': {}",
                    j::str_at(&policy, "/metadata/name"),
                    failure.message
                ));
            }
        }
    }
    Ok(outcome)
}

/// One failed validation (or an evaluation error under `failurePolicy: Fail`).
#[derive(Debug)]
struct Failure {
    message: String,
    reason: &'static str,
}

impl Failure {
    fn invalid(message: String) -> Self {
        Self {
            message,
            reason: "Invalid",
        }
    }
}

/// The write as the policies see it.
struct Request<'a> {
    attempt: &'a Attempt<'a>,
    /// `object` and `oldObject` (JSON null when absent, as kube binds them).
    object: Value,
    old_object: Value,
    /// `request`, kube's `admissionv1.AdmissionRequest` as CEL reads it.
    request: Value,
    /// `namespaceObject`: the namespace of a namespaced write (null otherwise).
    namespace_object: Value,
}

impl<'a> Request<'a> {
    fn new(store: &Store, identity: &Identity, attempt: &'a Attempt<'a>, dry_run: bool) -> Self {
        let (object, old_object, operation) = match attempt.operation {
            Operation::Create(new) => (new.clone(), Value::Null, "CREATE"),
            Operation::Update { old, new } => (new.clone(), old.clone(), "UPDATE"),
            Operation::Delete(old) => (Value::Null, old.clone(), "DELETE"),
        };
        let rt = attempt.resource;
        let (kind_group, kind_version, kind) = if attempt.subresource == Some("scale") {
            ("autoscaling", "v1", "Scale")
        } else {
            (rt.group, rt.version, rt.kind)
        };
        let gvk = json!({"group": kind_group, "version": kind_version, "kind": kind});
        let gvr = json!({"group": rt.group, "version": rt.version, "resource": rt.plural});
        let sub = attempt.subresource.unwrap_or("");
        let request = json!({
            "kind": gvk, "requestKind": gvk,
            "resource": gvr, "requestResource": gvr,
            "subResource": sub, "requestSubResource": sub,
            "name": attempt.name, "namespace": attempt.namespace,
            "operation": operation,
            "userInfo": {"username": identity.username(), "groups": identity.groups()},
            "dryRun": dry_run,
        });
        let namespace_object = if rt.namespaced && !attempt.namespace.is_empty() {
            let key = ObjectKey::new(ResourceId::Namespaces, "", attempt.namespace);
            store
                .get(&key)
                .and_then(|n| serde_json::from_slice(&n.json.bytes()).ok())
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        Self {
            attempt,
            object,
            old_object,
            request,
            namespace_object,
        }
    }

    fn operation(&self) -> &str {
        j::str_at(&self.request, "/operation")
    }

    /// Kube's `matching.Matcher.Matches` for a policy's `matchConstraints` or a binding's
    /// `matchResources`: namespace selector, object selector, excluded rules, then the rules
    /// (no rules matches everything for a binding and nothing for a policy).
    fn matches(&self, constraints: Option<&Value>, binding: bool) -> bool {
        let Some(constraints) = constraints.filter(|v| !v.is_null()) else {
            return binding;
        };
        if !self.namespace_selected(constraints.get("namespaceSelector"))
            || !self.object_selected(constraints.get("objectSelector"))
        {
            return false;
        }
        if j::array_at(constraints, "/excludeResourceRules")
            .iter()
            .any(|rule| self.rule_matches(rule))
        {
            return false;
        }
        let rules = j::array_at(constraints, "/resourceRules");
        (binding && rules.is_empty()) || rules.iter().any(|rule| self.rule_matches(rule))
    }

    fn namespace_selected(&self, selector: Option<&Value>) -> bool {
        let Some(selector) = selector.filter(|v| !v.is_null()) else {
            return true;
        };
        let Ok(selector) = LabelSelector::from_json(selector) else {
            return false;
        };
        if selector.is_empty() {
            return true;
        }
        let rt = self.attempt.resource;
        if rt.id == ResourceId::Namespaces {
            // A namespace is selected by its own labels.
            let own = if self.object.is_null() {
                &self.old_object
            } else {
                &self.object
            };
            return selector.matches(&labels_of(own));
        }
        if !rt.namespaced {
            // Cluster-scoped objects are never exempted by a namespace selector.
            return true;
        }
        selector.matches(&labels_of(&self.namespace_object))
    }

    fn object_selected(&self, selector: Option<&Value>) -> bool {
        let Some(selector) = selector.filter(|v| !v.is_null()) else {
            return true;
        };
        let Ok(selector) = LabelSelector::from_json(selector) else {
            return false;
        };
        selector.is_empty()
            || [&self.object, &self.old_object]
                .into_iter()
                .filter(|o| !o.is_null())
                .any(|o| selector.matches(&labels_of(o)))
    }

    /// Kube's `rules.Matcher` for one `NamedRuleWithOperations`.
    fn rule_matches(&self, rule: &Value) -> bool {
        let rt: &ResourceType = self.attempt.resource;
        let listed = |field: &str, value: &str| {
            j::array_at(rule, field)
                .iter()
                .filter_map(Value::as_str)
                .any(|v| v == "*" || v == value)
        };
        let scope = match j::str_at(rule, "/scope") {
            "Cluster" => self.attempt.namespace.is_empty(),
            "Namespaced" => rt.id != ResourceId::Namespaces && !self.attempt.namespace.is_empty(),
            _ => true,
        };
        let names = j::array_at(rule, "/resourceNames");
        let sub = self.attempt.subresource.unwrap_or("");
        let resource = j::array_at(rule, "/resources")
            .iter()
            .filter_map(Value::as_str)
            .any(|r| {
                let (res, rsub) = r.split_once('/').unwrap_or((r, ""));
                (res == "*" || res == rt.plural) && (rsub == "*" || rsub == sub)
            });
        scope
            && listed("/operations", self.operation())
            && listed("/apiGroups", rt.group)
            && listed("/apiVersions", rt.version)
            && resource
            && (names.is_empty() || names.iter().any(|n| n.as_str() == Some(self.attempt.name)))
    }
}

/// The parameter objects a binding selects for its policy: `[None]` for a policy without
/// `paramKind`; `Err` is a configuration failure or a `Deny` for missing params.
fn params(
    store: &Store,
    request: &Request<'_>,
    policy: &Value,
    binding: &Value,
) -> Result<Vec<Option<Value>>, String> {
    let Some(kind) = policy.pointer("/spec/paramKind").filter(|v| !v.is_null()) else {
        return Ok(alloc::vec![None]);
    };
    let Some(param_ref) = binding.pointer("/spec/paramRef").filter(|v| !v.is_null()) else {
        return Err("policy requires a paramRef, but binding has none".into());
    };
    let api_version = j::str_at(kind, "/apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind_name = j::str_at(kind, "/kind");
    let Some(rt) = RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind_name)
    else {
        return Err(format!(
            "failed to find resource referenced by paramKind: '{api_version}, Kind={kind_name}'"
        ));
    };
    let namespace = if rt.namespaced {
        let given = j::str_at(param_ref, "/namespace");
        let ns = if given.is_empty() {
            request.attempt.namespace
        } else {
            given
        };
        if ns.is_empty() {
            return Err("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into());
        }
        ns
    } else {
        ""
    };
    let name = j::str_at(param_ref, "/name");
    let found: Vec<Option<Value>> = if name.is_empty() {
        let selector = param_ref
            .get("selector")
            .filter(|v| !v.is_null())
            .map(LabelSelector::from_json)
            .transpose()?
            .unwrap_or_default();
        store
            .range(rt.id, Some(namespace), None)
            .filter_map(|(_, o)| serde_json::from_slice::<Value>(&o.json.bytes()).ok())
            .filter(|o| selector.matches(&labels_of(o)))
            .map(Some)
            .collect()
    } else {
        store
            .get(&ObjectKey::new(rt.id, namespace, name))
            .and_then(|o| serde_json::from_slice::<Value>(&o.json.bytes()).ok())
            .map(Some)
            .into_iter()
            .collect()
    };
    if found.is_empty() {
        return if j::str_at(param_ref, "/parameterNotFoundAction") == "Allow" {
            Ok(Vec::new())
        } else {
            Err("no params found for policy binding with `Deny` parameterNotFoundAction".into())
        };
    }
    Ok(found)
}

/// The failures of `policy` under `binding` for `request`.
fn evaluate(
    store: &Store,
    request: &Request<'_>,
    policy: &Value,
    binding: &Value,
    budget: u64,
) -> Vec<Failure> {
    let ignore = j::str_at(policy, "/spec/failurePolicy") == "Ignore";
    let params = match params(store, request, policy, binding) {
        Ok(params) => params,
        Err(_) if ignore => return Vec::new(),
        Err(message) => return alloc::vec![Failure::invalid(message)],
    };
    let variables = cel::compile_variables(j::array_at(policy, "/spec/variables"));
    let conditions = compiled(policy, "/spec/matchConditions");
    let validations = compiled(policy, "/spec/validations");
    let mut failures = Vec::new();
    for param in &params {
        let null = Value::Null;
        let bindings = Bindings {
            vars: [
                ("object", &request.object),
                ("oldObject", &request.old_object),
                ("request", &request.request),
                ("namespaceObject", &request.namespace_object),
                ("params", param.as_ref().unwrap_or(&null)),
            ]
            .into_iter()
            .collect(),
            variables: &variables,
        };
        let env = Environment::new(&bindings);
        let mut session = env.session(budget);
        let mut applies = true;
        for (source, condition, _) in &conditions {
            let outcome = match condition {
                Ok(expr) => session.eval_bool(expr),
                Err(e) => Err(e.clone()),
            };
            match outcome {
                Ok(true) => {}
                Ok(false) => {
                    applies = false;
                    break;
                }
                Err(e) => {
                    applies = false;
                    if !ignore {
                        failures.push(Failure::invalid(format!(
                            "failed to evaluate match condition '{source}': {e}"
                        )));
                    }
                    break;
                }
            }
        }
        if !applies {
            continue;
        }
        for (source, validation, spec) in &validations {
            let outcome = match validation {
                Ok(expr) => session.eval_bool(expr),
                Err(e) => Err(e.clone()),
            };
            match outcome {
                Ok(true) => {}
                Ok(false) => failures.push(Failure {
                    message: message(&mut session, spec, source),
                    reason: reason(j::str_at(spec, "/reason")),
                }),
                Err(_) if ignore => {}
                Err(e) => failures.push(Failure::invalid(format!(
                    "expression '{source}' resulted in error: {e}"
                ))),
            }
        }
    }
    failures
}

/// The expressions at `pointer` (a list of objects with `expression`), parsed.
fn compiled(policy: &Value, pointer: &str) -> Vec<(String, Result<Expr, String>, Value)> {
    j::array_at(policy, pointer)
        .iter()
        .map(|v| {
            let source = j::str_at(v, "/expression");
            (source.to_owned(), cel::parse(source), v.clone())
        })
        .collect()
}

/// A failed validation's message: its `messageExpression` if that yields a non-empty
/// single-line string, else its `message`, else kube's `failed expression: ...`.
fn message(session: &mut cel::Session<'_, '_>, validation: &Value, source: &str) -> String {
    let from_expression = validation
        .get("messageExpression")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .and_then(|m| cel::parse(m).ok())
        .and_then(|expr| session.eval(&expr).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty() && !m.contains('\n'));
    if let Some(m) = from_expression {
        return m;
    }
    let message = j::str_at(validation, "/message");
    if message.is_empty() {
        format!("failed expression: {}", source.trim())
    } else {
        message.to_string()
    }
}

/// A validation's `reason` (kube allows four; `Invalid` by default).
fn reason(given: &str) -> &'static str {
    match given {
        "Unauthorized" => "Unauthorized",
        "Forbidden" => "Forbidden",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        _ => "Invalid",
    }
}
