//! Defaults and admission that kube-apiserver applies before storing: pod and template defaults,
//! DefaultTolerationSeconds, Service defaults (allocation is `services.rs`), namespace
//! finalizers, Secret `stringData`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::resource::ResourceId;
use crate::{Error, UnixTime};

mod policy;
mod workloads;

fn entry<'a>(map: &'a mut Map<String, Value>, key: &str, default: Value) -> &'a mut Value {
    map.entry(key).or_insert(default)
}

fn set_default(map: &mut Map<String, Value>, key: &str, default: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.into(), default);
    }
}

/// How far a write has gone when defaults are applied.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// As kube decodes a request (its `SetDefaults_*`): what the field manager records a
    /// create's ownership from, before mutating admission, the strategy and allocation.
    Decoded,
    /// Everything kube does before storing: also the strategy's create-time fields (a Job's
    /// generated selector), DefaultTolerationSeconds and the priority, and a Service's
    /// prepared IP families.
    Stored,
}

/// Applies defaults to `obj` of `resource` (`old` is the stored version on update).
pub(crate) fn apply(
    resource: ResourceId,
    obj: &mut Value,
    old: Option<&Value>,
    _now: UnixTime,
) -> Result<(), Error> {
    apply_stage(resource, obj, old, Stage::Stored)?;
    template_creation_times(resource, obj);
    Ok(())
}

/// Every pod (and job) template's metadata has `"creationTimestamp": null`, as kube stores and
/// serves it: a template's `ObjectMeta` is a struct, and its zero time encodes as `null`.
/// Not in what a create's manager owns ([`decoded`]): kube's field sets leave it out.
fn template_creation_times(resource: ResourceId, obj: &mut Value) {
    let paths: &[&str] = match resource {
        ResourceId::Deployments
        | ResourceId::ReplicaSets
        | ResourceId::ReplicationControllers
        | ResourceId::Jobs => &["/spec/template"],
        ResourceId::CronJobs => &["/spec/jobTemplate", "/spec/jobTemplate/spec/template"],
        ResourceId::PodTemplates => &["/template"],
        _ => &[],
    };
    for path in paths {
        let Some(template) = obj.pointer_mut(path).and_then(Value::as_object_mut) else {
            continue;
        };
        let meta = entry(template, "metadata", json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
}

/// The defaults a create request has once decoded (kube's `SetDefaults_*`, nothing that
/// admission, the strategy or allocation add later): the object whose fields a create's
/// manager owns. kube's field manager runs before mutating admission, so what admission adds
/// (a pod's token volume, tolerations, priority; a Service's cluster IPs; a Job's generated
/// selector) belongs to no manager.
pub(crate) fn decoded(resource: ResourceId, obj: &mut Value) -> Result<(), Error> {
    apply_stage(resource, obj, None, Stage::Decoded)
}

fn apply_stage(
    resource: ResourceId,
    obj: &mut Value,
    old: Option<&Value>,
    stage: Stage,
) -> Result<(), Error> {
    let Some(map) = obj.as_object_mut() else {
        return Ok(());
    };
    match resource {
        ResourceId::Namespaces => {
            let name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(meta) = entry(map, "metadata", json!({})).as_object_mut() {
                let labels = entry(meta, "labels", json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), Value::from(name));
                }
            }
            // The strategy's PrepareForCreate (no manager owns it); kept on update.
            if stage == Stage::Stored
                && let Some(spec) = entry(map, "spec", json!({})).as_object_mut()
            {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if old.is_none() {
                map.insert("status".into(), json!({"phase": "Active"}));
            }
        }
        ResourceId::Pods => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                pod_spec(spec);
                // SetDefaults_Pod (not a template's spec): a kubelet refuses to start containers
                // without it ("nil pod.spec.enableServiceLinks encountered").
                set_default(spec, "enableServiceLinks", Value::from(true));
                if old.is_none() && stage == Stage::Stored {
                    // `serviceAccountName` itself is ServiceAccount admission's (`default`
                    // unless a mirror pod).
                    default_tolerations(spec);
                    set_default(spec, "priority", Value::from(0));
                }
            }
            if old.is_none() {
                let qos = qos_class(map.get("spec"));
                let status = entry(map, "status", json!({}));
                if let Some(status) = status.as_object_mut() {
                    set_default(status, "phase", Value::from("Pending"));
                    set_default(status, "qosClass", Value::from(qos));
                }
            }
        }
        ResourceId::Deployments | ResourceId::ReplicaSets => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "replicas", Value::from(1));
                set_default(spec, "revisionHistoryLimit", Value::from(10));
                if resource == ResourceId::Deployments {
                    set_default(spec, "progressDeadlineSeconds", Value::from(600));
                    let strategy = entry(spec, "strategy", json!({}));
                    if let Some(strategy) = strategy.as_object_mut() {
                        set_default(strategy, "type", Value::from("RollingUpdate"));
                        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                            let rolling = entry(strategy, "rollingUpdate", json!({}));
                            if let Some(rolling) = rolling.as_object_mut() {
                                set_default(rolling, "maxUnavailable", Value::from("25%"));
                                set_default(rolling, "maxSurge", Value::from("25%"));
                            }
                        }
                    }
                } else {
                    spec.remove("revisionHistoryLimit");
                }
                if let Some(template_spec) = spec
                    .get_mut("template")
                    .and_then(|t| t.get_mut("spec"))
                    .and_then(Value::as_object_mut)
                {
                    pod_spec(template_spec);
                }
            }
            if old.is_none() {
                map.insert("status".into(), json!({}));
            }
        }
        ResourceId::Services => service(map, old, stage),
        ResourceId::CustomResourceDefinitions => crate::crd::validation::default(obj, old),
        ResourceId::PodTemplates => workloads::pod_template(map),
        ResourceId::ReplicationControllers => workloads::replication_controller(map, old.is_none()),
        ResourceId::Jobs => {
            // On create the uid is already there, as kube fills it before the strategy.
            let uid = map
                .get("metadata")
                .and_then(|m| m.get("uid"))
                .and_then(Value::as_str)
                .map(String::from);
            workloads::job(
                map,
                uid.as_deref()
                    .filter(|_| old.is_none() && stage == Stage::Stored),
            );
        }
        ResourceId::CronJobs => workloads::cron_job(map, old.is_none()),
        ResourceId::Secrets => {
            set_default(map, "type", Value::from("Opaque"));
            if let Some(Value::Object(string_data)) = map.remove("stringData") {
                let data = entry(map, "data", json!({}));
                if let Some(data) = data.as_object_mut() {
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or("");
                        data.insert(k, Value::from(STANDARD.encode(text.as_bytes())));
                    }
                }
            }
        }
        ResourceId::ResourceQuotas
        | ResourceId::PodDisruptionBudgets
        | ResourceId::FlowSchemas
        | ResourceId::PriorityLevelConfigurations
        | ResourceId::ValidatingAdmissionPolicies
            if old.is_none() =>
        {
            // Status belongs to the controllers; a create starts without one, as kube's
            // strategies' PrepareForCreate clears it.
            map.remove("status");
            policy::apply(resource, map);
        }
        ResourceId::RoleBindings | ResourceId::ClusterRoleBindings => rbac_binding(map),
        ResourceId::CSIDrivers => csi_driver(map),
        // The Ingress strategy's PrepareForCreate: status is the controller's, and starts as
        // kube encodes an empty one.
        ResourceId::Ingresses if old.is_none() => {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
        // The VolumeAttachment strategy's PrepareForCreate: status is the controller's, and
        // an empty one encodes `attached: false`.
        ResourceId::VolumeAttachments if old.is_none() => {
            map.insert("status".into(), json!({"attached": false}));
        }
        ResourceId::HorizontalPodAutoscalers => {
            // The strategy's PrepareForCreate: status is the controller's; kube encodes an
            // empty one with `currentMetrics: null` (no omitempty).
            if old.is_none() {
                map.insert(
                    "status".into(),
                    json!({"currentMetrics": null, "desiredReplicas": 0}),
                );
            }
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                hpa_spec(spec);
            }
        }
        // `SetDefaults_IngressClass`: parameters are cluster-scoped unless said otherwise.
        ResourceId::IngressClasses => {
            let parameters = map
                .get_mut("spec")
                .and_then(|s| s.get_mut("parameters"))
                .and_then(Value::as_object_mut);
            if let Some(parameters) = parameters {
                set_default(parameters, "scope", Value::from("Cluster"));
            }
        }
        // `SetDefaults_PriorityClass`.
        ResourceId::PriorityClasses => {
            set_default(map, "preemptionPolicy", Value::from("PreemptLowerPriority"));
        }
        // `SetDefaults_EndpointPort` (core/v1): a port's protocol is TCP unless said.
        ResourceId::Endpoints => {
            let subsets = map.get_mut("subsets").and_then(Value::as_array_mut);
            for subset in subsets.into_iter().flatten() {
                let ports = subset.get_mut("ports").and_then(Value::as_array_mut);
                for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                    set_default(port, "protocol", Value::from("TCP"));
                }
            }
        }
        ResourceId::EndpointSlices => {
            // `SetDefaults_EndpointPort`: a port has a name (maybe empty) and a protocol.
            let ports = map.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                set_default(port, "name", Value::from(""));
                set_default(port, "protocol", Value::from("TCP"));
            }
        }
        _ => policy::apply(resource, map),
    }
    Ok(())
}

/// `SetDefaults_CSIDriver` (with SELinuxMountReadWriteOncePod on, as in 1.32).
fn csi_driver(map: &mut Map<String, Value>) {
    let Some(spec) = entry(map, "spec", json!({})).as_object_mut() else {
        return;
    };
    set_default(spec, "attachRequired", Value::from(true));
    set_default(spec, "podInfoOnMount", Value::from(false));
    set_default(spec, "storageCapacity", Value::from(false));
    set_default(
        spec,
        "fsGroupPolicy",
        Value::from("ReadWriteOnceWithFSType"),
    );
    if spec
        .get("volumeLifecycleModes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    set_default(spec, "requiresRepublish", Value::from(false));
    set_default(spec, "seLinuxMount", Value::from(false));
}

/// kube's RBAC defaults: an empty `roleRef.apiGroup`, and a User's or Group's subject
/// `apiGroup`, is `rbac.authorization.k8s.io`.
fn rbac_binding(map: &mut Map<String, Value>) {
    const GROUP: &str = "rbac.authorization.k8s.io";
    let empty = |m: &Map<String, Value>| {
        m.get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    if let Some(role_ref) = map.get_mut("roleRef").and_then(Value::as_object_mut)
        && empty(role_ref)
    {
        role_ref.insert("apiGroup".into(), Value::from(GROUP));
    }
    let subjects = map.get_mut("subjects").and_then(Value::as_array_mut);
    for subject in subjects
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        let user_or_group = matches!(
            subject.get("kind").and_then(Value::as_str),
            Some("User" | "Group")
        );
        if user_or_group && empty(subject) {
            subject.insert("apiGroup".into(), Value::from(GROUP));
        }
    }
}

/// PodSpec defaults shared by pods and pod templates.
fn pod_spec(spec: &mut Map<String, Value>) {
    // kube's v1 conversion: `serviceAccount` is the deprecated alias of `serviceAccountName`,
    // read when the name is empty and always written as the name.
    let account = [spec.get("serviceAccountName"), spec.get("serviceAccount")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|name| !name.is_empty())
        .map(String::from);
    match account {
        Some(name) => {
            spec.insert("serviceAccountName".into(), Value::from(name.as_str()));
            spec.insert("serviceAccount".into(), Value::from(name));
        }
        None => {
            spec.remove("serviceAccount");
            spec.remove("serviceAccountName");
        }
    }
    set_default(spec, "restartPolicy", Value::from("Always"));
    set_default(spec, "terminationGracePeriodSeconds", Value::from(30));
    set_default(spec, "dnsPolicy", Value::from("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", Value::from("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                let image = container.get("image").and_then(Value::as_str).unwrap_or("");
                let policy = if image_is_latest(image) {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                set_default(container, "imagePullPolicy", Value::from(policy));
                set_default(
                    container,
                    "terminationMessagePath",
                    Value::from("/dev/termination-log"),
                );
                set_default(container, "terminationMessagePolicy", Value::from("File"));
                set_default(container, "resources", json!({}));
                if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(port, "protocol", Value::from("TCP"));
                    }
                }
                container_handlers(container);
            }
        }
    }
    if let Some(containers) = spec
        .get_mut("ephemeralContainers")
        .and_then(Value::as_array_mut)
    {
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            container_handlers(container);
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes.iter_mut().filter_map(Value::as_object_mut) {
            volume_source(volume);
        }
    }
}

/// A container's env selectors, probes and lifecycle handlers as kube's v1 defaulting leaves
/// them (`SetDefaults_Probe`, `SetDefaults_HTTPGetAction`, `SetDefaults_ObjectFieldSelector`;
/// a resource selector's zero divisor encodes as `"0"`). A kubelet reads probe periods and
/// thresholds as they are stored: without these a probe would run with a period of 0.
fn container_handlers(container: &mut Map<String, Value>) {
    if let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) {
        for var in env.iter_mut() {
            if let Some(from) = var.get_mut("valueFrom").and_then(Value::as_object_mut) {
                selectors(from);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = container.get_mut(probe).and_then(Value::as_object_mut) else {
            continue;
        };
        set_default(probe, "timeoutSeconds", Value::from(1));
        set_default(probe, "periodSeconds", Value::from(10));
        set_default(probe, "successThreshold", Value::from(1));
        set_default(probe, "failureThreshold", Value::from(3));
        http_get(probe);
    }
    if let Some(lifecycle) = container
        .get_mut("lifecycle")
        .and_then(Value::as_object_mut)
    {
        for hook in ["postStart", "preStop"] {
            if let Some(handler) = lifecycle.get_mut(hook).and_then(Value::as_object_mut) {
                http_get(handler);
            }
        }
    }
}

/// `SetDefaults_HTTPGetAction` on a handler's `httpGet`: path `/`, scheme `HTTP`.
fn http_get(handler: &mut Map<String, Value>) {
    if let Some(get) = handler.get_mut("httpGet").and_then(Value::as_object_mut) {
        if get
            .get("path")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            get.insert("path".into(), Value::from("/"));
        }
        set_default(get, "scheme", Value::from("HTTP"));
    }
}

/// A `fieldRef`'s API version (`v1`) and a `resourceFieldRef`'s divisor (`"0"`), in an env
/// var's `valueFrom` or a downward API item.
fn selectors(holder: &mut Map<String, Value>) {
    if let Some(field) = holder.get_mut("fieldRef").and_then(Value::as_object_mut) {
        set_default(field, "apiVersion", Value::from("v1"));
    }
    if let Some(resource) = holder
        .get_mut("resourceFieldRef")
        .and_then(Value::as_object_mut)
    {
        set_default(resource, "divisor", Value::from("0"));
    }
}

/// File mode 0644, what kube defaults a volume's files to.
const DEFAULT_MODE: i64 = 0o644;

/// A volume's source as kube's v1 defaulting leaves it: secret, configMap, downward API and
/// projected volumes' `defaultMode` 0644, a projected token's one-hour expiry, a host path's
/// empty `type`, downward API items' selectors.
fn volume_source(volume: &mut Map<String, Value>) {
    for kind in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(source) = volume.get_mut(kind).and_then(Value::as_object_mut) {
            set_default(source, "defaultMode", Value::from(DEFAULT_MODE));
        }
    }
    if let Some(host_path) = volume.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(host_path, "type", Value::from(""));
    }
    downward_items(volume.get_mut("downwardAPI"));
    let sources = volume
        .get_mut("projected")
        .and_then(|p| p.get_mut("sources"))
        .and_then(Value::as_array_mut);
    for source in sources
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        if let Some(token) = source
            .get_mut("serviceAccountToken")
            .and_then(Value::as_object_mut)
        {
            set_default(token, "expirationSeconds", Value::from(3600));
        }
        downward_items(source.get_mut("downwardAPI"));
    }
}

fn downward_items(downward: Option<&mut Value>) {
    let items = downward
        .and_then(|d| d.get_mut("items"))
        .and_then(Value::as_array_mut);
    for item in items.into_iter().flatten().filter_map(Value::as_object_mut) {
        selectors(item);
    }
}

/// `:latest` or no tag (and no digest) pulls Always, as kube's defaulting says.
fn image_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => true,
        Some((_, tag)) => tag == "latest",
    }
}

/// DefaultTolerationSeconds admission: tolerate not-ready/unreachable for 300 s unless the pod
/// says otherwise.
fn default_tolerations(spec: &mut Map<String, Value>) {
    let tolerations = entry(spec, "tolerations", json!([]));
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str);
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == Some(key)
                || (k.is_none() && t.get("operator").and_then(Value::as_str) == Some("Exists")))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !present {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
}

fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource));
            let request = requests.and_then(|r| r.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn service(map: &mut Map<String, Value>, old: Option<&Value>, stage: Stage) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        set_default(spec, "type", Value::from("ClusterIP"));
        let kind = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        set_default(spec, "sessionAffinity", Value::from("None"));
        if kind != "ExternalName" {
            set_default(spec, "internalTrafficPolicy", Value::from("Cluster"));
        }
        if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
            set_default(spec, "externalTrafficPolicy", Value::from("Cluster"));
        }
        if kind == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", Value::from(true));
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                set_default(port, "protocol", Value::from("TCP"));
                if let Some(p) = port.get("port").cloned() {
                    set_default(port, "targetPort", p);
                }
            }
        }
    }
    if old.is_none() {
        map.insert("status".into(), json!({"loadBalancer": {}}));
    }
    if stage == Stage::Decoded {
        return;
    }
    // Cluster IPs and node ports are allocated after validation (`services.rs`); what an update
    // leaves out of them is carried over here, before validation, as kube's PrepareForUpdate does.
    let mut whole = Value::Object(core::mem::take(map));
    crate::admission::services::prepare(&mut whole, old);
    if let Value::Object(back) = whole {
        *map = back;
    }
}

/// `autoscaling/v2`'s `SetDefaults_HorizontalPodAutoscaler`: one replica at least, cpu at 80%
/// utilization when no metric is named, and a behavior's missing rules and fields from kube's
/// default scale-up (4 pods or 100% per 15 s, no stabilization) and scale-down (100% per 15 s).
fn hpa_spec(spec: &mut serde_json::Map<String, Value>) {
    set_default(spec, "minReplicas", Value::from(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) else {
        return;
    };
    let defaults = [
        (
            "scaleUp",
            json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]}),
        ),
        (
            "scaleDown",
            json!({"selectPolicy": "Max", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]}),
        ),
    ];
    for (key, default) in defaults {
        let mut rules = default;
        if let (Some(given), Some(out)) = (
            behavior.get(key).and_then(Value::as_object),
            rules.as_object_mut(),
        ) {
            for field in ["selectPolicy", "stabilizationWindowSeconds", "policies"] {
                if let Some(v) = given.get(field).filter(|v| !v.is_null()) {
                    out.insert(field.into(), v.clone());
                }
            }
        }
        behavior.insert(key.into(), rules);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kube's SetDefaults_Pod turns service links on for a pod (a kubelet refuses a nil one),
    /// keeps an explicit false, and leaves templates alone (their pods get it when created).
    #[test]
    fn a_pod_gets_service_links_and_a_template_does_not() {
        let pod = |spec: Value| json!({"metadata": {"name": "p"}, "spec": spec});
        let mut plain = pod(json!({"containers": [{"name": "c", "image": "i:1"}]}));
        apply(ResourceId::Pods, &mut plain, None, UnixTime::default()).unwrap();
        assert_eq!(plain["spec"]["enableServiceLinks"], true);
        let mut off = pod(json!({"enableServiceLinks": false, "containers": [{"name": "c"}]}));
        apply(ResourceId::Pods, &mut off, None, UnixTime::default()).unwrap();
        assert_eq!(off["spec"]["enableServiceLinks"], false);
        let mut template = json!({"metadata": {"name": "t"},
            "template": {"spec": {"containers": [{"name": "c"}]}}});
        apply(
            ResourceId::PodTemplates,
            &mut template,
            None,
            UnixTime::default(),
        )
        .unwrap();
        assert!(
            template["template"]["spec"]
                .get("enableServiceLinks")
                .is_none()
        );
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert!(image_is_latest("nginx"));
        assert!(image_is_latest("nginx:latest"));
        assert!(!image_is_latest("nginx:1.25"));
        assert!(!image_is_latest("registry:5000/nginx@sha256:abc"));
        assert!(image_is_latest("registry:5000/nginx"));
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(Some(&json!({"containers": [{"name": "a"}]}))),
            "BestEffort"
        );
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(Some(&g)), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(Some(&b)), "Burstable");
    }
}
