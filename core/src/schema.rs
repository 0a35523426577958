//! Known fields of the served types (k8s.io/api 1.32), for `fieldValidation=Strict|Warn`.
//!
//! The schema is a static tree of field names. Free-form maps (labels, data, resource lists)
//! and rarely used deep subtrees are open: anything under them is accepted, because a manifest
//! kube accepts must never be rejected here. `status` is open for every type.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::resource::ResourceId;

/// The shape of one JSON value.
#[derive(Debug, Clone, Copy)]
enum S {
    /// A scalar, or a subtree whose contents are not checked.
    Any,
    /// An object with exactly these fields.
    Obj(&'static [F]),
    /// An array of one shape.
    List(&'static S),
    /// An object with free-form keys whose values have one shape.
    MapOf(&'static S),
}

type F = (&'static str, S);

/// A free-form `map[string]string` (or any map whose values are unchecked).
const MAP: S = S::MapOf(&S::Any);

const fn obj(fields: &'static [F]) -> S {
    S::Obj(fields)
}

const fn list(shape: &'static S) -> S {
    S::List(shape)
}

const NAME_ONLY: S = obj(&[("name", S::Any)]);
const OWNER_REF: S = obj(&[
    ("apiVersion", S::Any),
    ("kind", S::Any),
    ("name", S::Any),
    ("uid", S::Any),
    ("controller", S::Any),
    ("blockOwnerDeletion", S::Any),
]);
const MANAGED_FIELDS: S = obj(&[
    ("manager", S::Any),
    ("operation", S::Any),
    ("apiVersion", S::Any),
    ("time", S::Any),
    ("fieldsType", S::Any),
    ("fieldsV1", S::Any),
    ("subresource", S::Any),
]);
const OBJECT_META: S = obj(&[
    ("name", S::Any),
    ("generateName", S::Any),
    ("namespace", S::Any),
    ("selfLink", S::Any),
    ("uid", S::Any),
    ("resourceVersion", S::Any),
    ("generation", S::Any),
    ("creationTimestamp", S::Any),
    ("deletionTimestamp", S::Any),
    ("deletionGracePeriodSeconds", S::Any),
    ("labels", MAP),
    ("annotations", MAP),
    ("ownerReferences", list(&OWNER_REF)),
    ("finalizers", S::Any),
    ("managedFields", list(&MANAGED_FIELDS)),
]);
const OBJECT_REF: S = obj(&[
    ("kind", S::Any),
    ("namespace", S::Any),
    ("name", S::Any),
    ("uid", S::Any),
    ("apiVersion", S::Any),
    ("resourceVersion", S::Any),
    ("fieldPath", S::Any),
]);
const SELECTOR_REQ: S = obj(&[("key", S::Any), ("operator", S::Any), ("values", S::Any)]);
const LABEL_SELECTOR: S = obj(&[
    ("matchLabels", MAP),
    ("matchExpressions", list(&SELECTOR_REQ)),
]);
const KEY_TO_PATH: S = obj(&[("key", S::Any), ("path", S::Any), ("mode", S::Any)]);
const FIELD_REF: S = obj(&[("apiVersion", S::Any), ("fieldPath", S::Any)]);
const RESOURCE_FIELD_REF: S = obj(&[
    ("containerName", S::Any),
    ("resource", S::Any),
    ("divisor", S::Any),
]);
const KEY_REF: S = obj(&[("name", S::Any), ("key", S::Any), ("optional", S::Any)]);
const ENV_VAR: S = obj(&[
    ("name", S::Any),
    ("value", S::Any),
    (
        "valueFrom",
        obj(&[
            ("fieldRef", FIELD_REF),
            ("resourceFieldRef", RESOURCE_FIELD_REF),
            ("configMapKeyRef", KEY_REF),
            ("secretKeyRef", KEY_REF),
        ]),
    ),
]);
const OPTIONAL_REF: S = obj(&[("name", S::Any), ("optional", S::Any)]);
const ENV_FROM: S = obj(&[
    ("prefix", S::Any),
    ("configMapRef", OPTIONAL_REF),
    ("secretRef", OPTIONAL_REF),
]);
const RESOURCES: S = obj(&[
    ("limits", MAP),
    ("requests", MAP),
    (
        "claims",
        list(&obj(&[("name", S::Any), ("request", S::Any)])),
    ),
]);
const CONTAINER_PORT: S = obj(&[
    ("name", S::Any),
    ("hostPort", S::Any),
    ("containerPort", S::Any),
    ("protocol", S::Any),
    ("hostIP", S::Any),
]);
const VOLUME_MOUNT: S = obj(&[
    ("name", S::Any),
    ("readOnly", S::Any),
    ("recursiveReadOnly", S::Any),
    ("mountPath", S::Any),
    ("subPath", S::Any),
    ("mountPropagation", S::Any),
    ("subPathExpr", S::Any),
]);
const NAME_VALUE: S = obj(&[("name", S::Any), ("value", S::Any)]);
const EXEC: S = obj(&[("command", S::Any)]);
const HTTP_GET: S = obj(&[
    ("path", S::Any),
    ("port", S::Any),
    ("host", S::Any),
    ("scheme", S::Any),
    ("httpHeaders", list(&NAME_VALUE)),
]);
const TCP_SOCKET: S = obj(&[("port", S::Any), ("host", S::Any)]);
const PROBE: S = obj(&[
    ("exec", EXEC),
    ("httpGet", HTTP_GET),
    ("tcpSocket", TCP_SOCKET),
    ("grpc", obj(&[("port", S::Any), ("service", S::Any)])),
    ("initialDelaySeconds", S::Any),
    ("timeoutSeconds", S::Any),
    ("periodSeconds", S::Any),
    ("successThreshold", S::Any),
    ("failureThreshold", S::Any),
    ("terminationGracePeriodSeconds", S::Any),
]);
const HANDLER: S = obj(&[
    ("exec", EXEC),
    ("httpGet", HTTP_GET),
    ("tcpSocket", TCP_SOCKET),
    ("sleep", obj(&[("seconds", S::Any)])),
]);
const LIFECYCLE: S = obj(&[
    ("postStart", HANDLER),
    ("preStop", HANDLER),
    ("stopSignal", S::Any),
]);
const SE_LINUX: S = obj(&[
    ("user", S::Any),
    ("role", S::Any),
    ("type", S::Any),
    ("level", S::Any),
]);
const WINDOWS_OPTIONS: S = obj(&[
    ("gmsaCredentialSpecName", S::Any),
    ("gmsaCredentialSpec", S::Any),
    ("runAsUserName", S::Any),
    ("hostProcess", S::Any),
]);
const PROFILE: S = obj(&[("type", S::Any), ("localhostProfile", S::Any)]);
const SECURITY_CONTEXT: S = obj(&[
    ("capabilities", obj(&[("add", S::Any), ("drop", S::Any)])),
    ("privileged", S::Any),
    ("seLinuxOptions", SE_LINUX),
    ("windowsOptions", WINDOWS_OPTIONS),
    ("runAsUser", S::Any),
    ("runAsGroup", S::Any),
    ("runAsNonRoot", S::Any),
    ("readOnlyRootFilesystem", S::Any),
    ("allowPrivilegeEscalation", S::Any),
    ("procMount", S::Any),
    ("seccompProfile", PROFILE),
    ("appArmorProfile", PROFILE),
]);
const CONTAINER_FIELDS: &[F] = &[
    ("name", S::Any),
    ("image", S::Any),
    ("command", S::Any),
    ("args", S::Any),
    ("workingDir", S::Any),
    ("ports", list(&CONTAINER_PORT)),
    ("envFrom", list(&ENV_FROM)),
    ("env", list(&ENV_VAR)),
    ("resources", RESOURCES),
    (
        "resizePolicy",
        list(&obj(&[("resourceName", S::Any), ("restartPolicy", S::Any)])),
    ),
    ("restartPolicy", S::Any),
    ("volumeMounts", list(&VOLUME_MOUNT)),
    (
        "volumeDevices",
        list(&obj(&[("name", S::Any), ("devicePath", S::Any)])),
    ),
    ("livenessProbe", PROBE),
    ("readinessProbe", PROBE),
    ("startupProbe", PROBE),
    ("lifecycle", LIFECYCLE),
    ("terminationMessagePath", S::Any),
    ("terminationMessagePolicy", S::Any),
    ("imagePullPolicy", S::Any),
    ("securityContext", SECURITY_CONTEXT),
    ("stdin", S::Any),
    ("stdinOnce", S::Any),
    ("tty", S::Any),
];
const CONTAINER: S = S::Obj(CONTAINER_FIELDS);
/// An ephemeral container is a container plus `targetContainerName`; checked loosely.
const EPHEMERAL_CONTAINER: S = S::Any;
const POD_SECURITY_CONTEXT: S = obj(&[
    ("seLinuxOptions", SE_LINUX),
    ("windowsOptions", WINDOWS_OPTIONS),
    ("runAsUser", S::Any),
    ("runAsGroup", S::Any),
    ("runAsNonRoot", S::Any),
    ("supplementalGroups", S::Any),
    ("supplementalGroupsPolicy", S::Any),
    ("fsGroup", S::Any),
    ("sysctls", list(&NAME_VALUE)),
    ("fsGroupChangePolicy", S::Any),
    ("seccompProfile", PROFILE),
    ("appArmorProfile", PROFILE),
    ("seLinuxChangePolicy", S::Any),
]);
const NODE_SELECTOR_TERM: S = obj(&[
    ("matchExpressions", list(&SELECTOR_REQ)),
    ("matchFields", list(&SELECTOR_REQ)),
]);
const POD_AFFINITY_TERM: S = obj(&[
    ("labelSelector", LABEL_SELECTOR),
    ("namespaces", S::Any),
    ("topologyKey", S::Any),
    ("namespaceSelector", LABEL_SELECTOR),
    ("matchLabelKeys", S::Any),
    ("mismatchLabelKeys", S::Any),
]);
const POD_AFFINITY: S = obj(&[
    (
        "requiredDuringSchedulingIgnoredDuringExecution",
        list(&POD_AFFINITY_TERM),
    ),
    (
        "preferredDuringSchedulingIgnoredDuringExecution",
        list(&obj(&[
            ("weight", S::Any),
            ("podAffinityTerm", POD_AFFINITY_TERM),
        ])),
    ),
]);
const AFFINITY: S = obj(&[
    (
        "nodeAffinity",
        obj(&[
            (
                "requiredDuringSchedulingIgnoredDuringExecution",
                obj(&[("nodeSelectorTerms", list(&NODE_SELECTOR_TERM))]),
            ),
            (
                "preferredDuringSchedulingIgnoredDuringExecution",
                list(&obj(&[
                    ("weight", S::Any),
                    ("preference", NODE_SELECTOR_TERM),
                ])),
            ),
        ]),
    ),
    ("podAffinity", POD_AFFINITY),
    ("podAntiAffinity", POD_AFFINITY),
]);
const TOLERATION: S = obj(&[
    ("key", S::Any),
    ("operator", S::Any),
    ("value", S::Any),
    ("effect", S::Any),
    ("tolerationSeconds", S::Any),
]);
const TOPOLOGY_SPREAD: S = obj(&[
    ("maxSkew", S::Any),
    ("topologyKey", S::Any),
    ("whenUnsatisfiable", S::Any),
    ("labelSelector", LABEL_SELECTOR),
    ("minDomains", S::Any),
    ("nodeAffinityPolicy", S::Any),
    ("nodeTaintsPolicy", S::Any),
    ("matchLabelKeys", S::Any),
]);
const DOWNWARD_FILE: S = obj(&[
    ("path", S::Any),
    ("fieldRef", FIELD_REF),
    ("resourceFieldRef", RESOURCE_FIELD_REF),
    ("mode", S::Any),
]);
const PROJECTION: S = obj(&[
    (
        "secret",
        obj(&[
            ("name", S::Any),
            ("items", list(&KEY_TO_PATH)),
            ("optional", S::Any),
        ]),
    ),
    (
        "configMap",
        obj(&[
            ("name", S::Any),
            ("items", list(&KEY_TO_PATH)),
            ("optional", S::Any),
        ]),
    ),
    ("downwardAPI", obj(&[("items", list(&DOWNWARD_FILE))])),
    (
        "serviceAccountToken",
        obj(&[
            ("audience", S::Any),
            ("expirationSeconds", S::Any),
            ("path", S::Any),
        ]),
    ),
    ("clusterTrustBundle", S::Any),
]);
const VOLUME: S = obj(&[
    ("name", S::Any),
    (
        "configMap",
        obj(&[
            ("name", S::Any),
            ("items", list(&KEY_TO_PATH)),
            ("defaultMode", S::Any),
            ("optional", S::Any),
        ]),
    ),
    (
        "secret",
        obj(&[
            ("secretName", S::Any),
            ("items", list(&KEY_TO_PATH)),
            ("defaultMode", S::Any),
            ("optional", S::Any),
        ]),
    ),
    (
        "emptyDir",
        obj(&[("medium", S::Any), ("sizeLimit", S::Any)]),
    ),
    ("hostPath", obj(&[("path", S::Any), ("type", S::Any)])),
    (
        "persistentVolumeClaim",
        obj(&[("claimName", S::Any), ("readOnly", S::Any)]),
    ),
    (
        "projected",
        obj(&[("sources", list(&PROJECTION)), ("defaultMode", S::Any)]),
    ),
    (
        "downwardAPI",
        obj(&[("items", list(&DOWNWARD_FILE)), ("defaultMode", S::Any)]),
    ),
    (
        "nfs",
        obj(&[("server", S::Any), ("path", S::Any), ("readOnly", S::Any)]),
    ),
    (
        "csi",
        obj(&[
            ("driver", S::Any),
            ("readOnly", S::Any),
            ("fsType", S::Any),
            ("volumeAttributes", MAP),
            ("nodePublishSecretRef", NAME_ONLY),
        ]),
    ),
    (
        "image",
        obj(&[("reference", S::Any), ("pullPolicy", S::Any)]),
    ),
    // Rarely used sources: accepted without looking inside.
    ("ephemeral", S::Any),
    ("awsElasticBlockStore", S::Any),
    ("gcePersistentDisk", S::Any),
    ("gitRepo", S::Any),
    ("iscsi", S::Any),
    ("glusterfs", S::Any),
    ("rbd", S::Any),
    ("flexVolume", S::Any),
    ("cinder", S::Any),
    ("cephfs", S::Any),
    ("flocker", S::Any),
    ("fc", S::Any),
    ("azureFile", S::Any),
    ("azureDisk", S::Any),
    ("vsphereVolume", S::Any),
    ("quobyte", S::Any),
    ("photonPersistentDisk", S::Any),
    ("portworxVolume", S::Any),
    ("scaleIO", S::Any),
    ("storageos", S::Any),
]);
const POD_SPEC: S = obj(&[
    ("volumes", list(&VOLUME)),
    ("initContainers", list(&CONTAINER)),
    ("containers", list(&CONTAINER)),
    ("ephemeralContainers", list(&EPHEMERAL_CONTAINER)),
    ("restartPolicy", S::Any),
    ("terminationGracePeriodSeconds", S::Any),
    ("activeDeadlineSeconds", S::Any),
    ("dnsPolicy", S::Any),
    ("nodeSelector", MAP),
    ("serviceAccountName", S::Any),
    ("serviceAccount", S::Any),
    ("automountServiceAccountToken", S::Any),
    ("nodeName", S::Any),
    ("hostNetwork", S::Any),
    ("hostPID", S::Any),
    ("hostIPC", S::Any),
    ("shareProcessNamespace", S::Any),
    ("securityContext", POD_SECURITY_CONTEXT),
    ("imagePullSecrets", list(&NAME_ONLY)),
    ("hostname", S::Any),
    ("subdomain", S::Any),
    ("affinity", AFFINITY),
    ("schedulerName", S::Any),
    ("tolerations", list(&TOLERATION)),
    (
        "hostAliases",
        list(&obj(&[("ip", S::Any), ("hostnames", S::Any)])),
    ),
    ("priorityClassName", S::Any),
    ("priority", S::Any),
    (
        "dnsConfig",
        obj(&[
            ("nameservers", S::Any),
            ("searches", S::Any),
            ("options", list(&NAME_VALUE)),
        ]),
    ),
    ("readinessGates", list(&obj(&[("conditionType", S::Any)]))),
    ("runtimeClassName", S::Any),
    ("enableServiceLinks", S::Any),
    ("preemptionPolicy", S::Any),
    ("overhead", MAP),
    ("topologySpreadConstraints", list(&TOPOLOGY_SPREAD)),
    ("setHostnameAsFQDN", S::Any),
    ("os", NAME_ONLY),
    ("hostUsers", S::Any),
    ("schedulingGates", list(&NAME_ONLY)),
    (
        "resourceClaims",
        list(&obj(&[
            ("name", S::Any),
            ("resourceClaimName", S::Any),
            ("resourceClaimTemplateName", S::Any),
        ])),
    ),
    ("resources", RESOURCES),
]);
const POD_TEMPLATE: S = obj(&[("metadata", OBJECT_META), ("spec", POD_SPEC)]);
const SERVICE_SPEC: S = obj(&[
    (
        "ports",
        list(&obj(&[
            ("name", S::Any),
            ("protocol", S::Any),
            ("appProtocol", S::Any),
            ("port", S::Any),
            ("targetPort", S::Any),
            ("nodePort", S::Any),
        ])),
    ),
    ("selector", MAP),
    ("clusterIP", S::Any),
    ("clusterIPs", S::Any),
    ("type", S::Any),
    ("externalIPs", S::Any),
    ("sessionAffinity", S::Any),
    ("loadBalancerIP", S::Any),
    ("loadBalancerSourceRanges", S::Any),
    ("externalName", S::Any),
    ("externalTrafficPolicy", S::Any),
    ("healthCheckNodePort", S::Any),
    ("publishNotReadyAddresses", S::Any),
    (
        "sessionAffinityConfig",
        obj(&[("clientIP", obj(&[("timeoutSeconds", S::Any)]))]),
    ),
    ("ipFamilies", S::Any),
    ("ipFamilyPolicy", S::Any),
    ("allocateLoadBalancerNodePorts", S::Any),
    ("loadBalancerClass", S::Any),
    ("internalTrafficPolicy", S::Any),
    ("trafficDistribution", S::Any),
]);
const ENDPOINT_ADDRESS: S = obj(&[
    ("ip", S::Any),
    ("hostname", S::Any),
    ("nodeName", S::Any),
    ("targetRef", OBJECT_REF),
]);
const ENDPOINT_SUBSET: S = obj(&[
    ("addresses", list(&ENDPOINT_ADDRESS)),
    ("notReadyAddresses", list(&ENDPOINT_ADDRESS)),
    (
        "ports",
        list(&obj(&[
            ("name", S::Any),
            ("port", S::Any),
            ("protocol", S::Any),
            ("appProtocol", S::Any),
        ])),
    ),
]);
const NODE_SPEC: S = obj(&[
    ("podCIDR", S::Any),
    ("podCIDRs", S::Any),
    ("providerID", S::Any),
    ("unschedulable", S::Any),
    (
        "taints",
        list(&obj(&[
            ("key", S::Any),
            ("value", S::Any),
            ("effect", S::Any),
            ("timeAdded", S::Any),
        ])),
    ),
    ("configSource", S::Any),
    ("externalID", S::Any),
]);
const LEASE_SPEC: S = obj(&[
    ("holderIdentity", S::Any),
    ("leaseDurationSeconds", S::Any),
    ("acquireTime", S::Any),
    ("renewTime", S::Any),
    ("leaseTransitions", S::Any),
    ("strategy", S::Any),
    ("preferredHolder", S::Any),
]);
const DEPLOYMENT_SPEC: S = obj(&[
    ("replicas", S::Any),
    ("selector", LABEL_SELECTOR),
    ("template", POD_TEMPLATE),
    (
        "strategy",
        obj(&[
            ("type", S::Any),
            (
                "rollingUpdate",
                obj(&[("maxUnavailable", S::Any), ("maxSurge", S::Any)]),
            ),
        ]),
    ),
    ("minReadySeconds", S::Any),
    ("revisionHistoryLimit", S::Any),
    ("paused", S::Any),
    ("progressDeadlineSeconds", S::Any),
]);
const REPLICASET_SPEC: S = obj(&[
    ("replicas", S::Any),
    ("minReadySeconds", S::Any),
    ("selector", LABEL_SELECTOR),
    ("template", POD_TEMPLATE),
]);

macro_rules! top {
    ($($extra:expr),* $(,)?) => {
        S::Obj(&[
            ("apiVersion", S::Any),
            ("kind", S::Any),
            ("metadata", OBJECT_META),
            $($extra,)*
        ])
    };
}

const NAMESPACE: S = top!(("spec", obj(&[("finalizers", S::Any)])), ("status", S::Any));
const POD: S = top!(("spec", POD_SPEC), ("status", S::Any));
const NODE: S = top!(("spec", NODE_SPEC), ("status", S::Any));
const SERVICE: S = top!(("spec", SERVICE_SPEC), ("status", S::Any));
const ENDPOINTS: S = top!(("subsets", list(&ENDPOINT_SUBSET)));
const CONFIG_MAP: S = top!(("data", MAP), ("binaryData", MAP), ("immutable", S::Any));
const SECRET: S = top!(
    ("data", MAP),
    ("stringData", MAP),
    ("type", S::Any),
    ("immutable", S::Any)
);
const SERVICE_ACCOUNT: S = top!(
    ("secrets", list(&OBJECT_REF)),
    ("imagePullSecrets", list(&NAME_ONLY)),
    ("automountServiceAccountToken", S::Any)
);
const EVENT: S = top!(
    ("involvedObject", OBJECT_REF),
    ("reason", S::Any),
    ("message", S::Any),
    ("source", obj(&[("component", S::Any), ("host", S::Any)])),
    ("firstTimestamp", S::Any),
    ("lastTimestamp", S::Any),
    ("count", S::Any),
    ("type", S::Any),
    ("eventTime", S::Any),
    (
        "series",
        obj(&[("count", S::Any), ("lastObservedTime", S::Any)])
    ),
    ("action", S::Any),
    ("related", OBJECT_REF),
    ("reportingComponent", S::Any),
    ("reportingInstance", S::Any),
);
const LEASE: S = top!(("spec", LEASE_SPEC));
const DEPLOYMENT: S = top!(("spec", DEPLOYMENT_SPEC), ("status", S::Any));
const REPLICASET: S = top!(("spec", REPLICASET_SPEC), ("status", S::Any));

fn schema_of(resource: ResourceId) -> &'static S {
    match resource {
        ResourceId::Namespaces => &NAMESPACE,
        ResourceId::Pods => &POD,
        ResourceId::Nodes => &NODE,
        ResourceId::Services => &SERVICE,
        ResourceId::Endpoints => &ENDPOINTS,
        ResourceId::ConfigMaps => &CONFIG_MAP,
        ResourceId::Secrets => &SECRET,
        ResourceId::ServiceAccounts => &SERVICE_ACCOUNT,
        ResourceId::Events => &EVENT,
        ResourceId::Leases => &LEASE,
        ResourceId::Deployments => &DEPLOYMENT,
        ResourceId::ReplicaSets => &REPLICASET,
    }
}

/// Most unknown-field paths reported for one object; kube's list is also finite in practice.
pub const MAX_UNKNOWN_FIELDS: usize = 100;

fn walk(shape: &S, value: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= MAX_UNKNOWN_FIELDS {
        return;
    }
    match (shape, value) {
        (S::Obj(fields), Value::Object(map)) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match fields.iter().find(|(name, _)| name == key) {
                    Some((_, child_shape)) => walk(child_shape, child, &child_path, out),
                    None => {
                        if out.len() < MAX_UNKNOWN_FIELDS {
                            out.push(child_path);
                        }
                    }
                }
            }
        }
        (S::List(item), Value::Array(items)) => {
            for (i, child) in items.iter().enumerate() {
                walk(item, child, &format!("{path}[{i}]"), out);
            }
        }
        (S::MapOf(item), Value::Object(map)) => {
            for (key, child) in map {
                walk(item, child, &format!("{path}.{key}"), out);
            }
        }
        // Scalars, open subtrees and type mismatches (the decoder reports those) end here.
        _ => {}
    }
}

/// Paths (e.g. `spec.foo`, `spec.containers[0].foo`) of fields in `obj` that its type does not
/// define, in document order; kube words each as `unknown field "<path>"`. Recursion is bounded
/// by the JSON depth cap applied before this runs.
pub fn unknown_fields(resource: ResourceId, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema_of(resource), obj, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nginx_deployment() -> Value {
        // A JSON literal (json! would exceed the macro recursion limit at this depth).
        serde_json::from_str(
            r#"{
          "apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
          "spec": {
            "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "nginx"},
              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
              "metadata": {"labels": {"app": "nginx", "tier": "web"}},
              "spec": {
                "serviceAccountName": "default",
                "securityContext": {"runAsNonRoot": true, "fsGroup": 101, "seccompProfile": {"type": "RuntimeDefault"}},
                "affinity": {
                  "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]},
                  "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                    "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "nginx"}}, "topologyKey": "kubernetes.io/hostname"}}]}
                },
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                  "labelSelector": {"matchLabels": {"app": "nginx"}}}],
                "nodeSelector": {"disktype": "ssd"},
                "imagePullSecrets": [{"name": "regcred"}],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
                "containers": [{
                  "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                  "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                  "env": [
                    {"name": "A", "value": "1"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "mode", "optional": true}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}
                  ],
                  "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "C_"}],
                  "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi", "nvidia.com/gpu": 1}},
                  "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "httpHeaders": [{"name": "X", "value": "y"}]},
                    "initialDelaySeconds": 5, "periodSeconds": 10},
                  "readinessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
                  "startupProbe": {"exec": {"command": ["true"]}},
                  "lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}},
                  "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true},
                  "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d", "readOnly": true},
                    {"name": "tls", "mountPath": "/tls"}, {"name": "cache", "mountPath": "/var/cache/nginx"}]
                }],
                "volumes": [
                  {"name": "conf", "configMap": {"name": "nginx-conf", "items": [{"key": "default.conf", "path": "default.conf"}]}},
                  {"name": "tls", "secret": {"secretName": "nginx-tls", "defaultMode": 256}},
                  {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
                  {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
                ]
              }
            }
          },
          "status": {"replicas": 3, "conditions": [{"type": "Available"}]}
        }"#,
        )
        .unwrap()
    }

    #[test]
    fn realistic_manifests_have_no_unknown_fields() {
        assert_eq!(
            unknown_fields(ResourceId::Deployments, &nginx_deployment()),
            Vec::<String>::new()
        );
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "externalTrafficPolicy": "Local",
              "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}]}});
        assert_eq!(
            unknown_fields(ResourceId::Services, &svc),
            Vec::<String>::new()
        );
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "type": "Opaque", "stringData": {"password": "p"}, "data": {"user": "dXNlcg=="}});
        assert_eq!(
            unknown_fields(ResourceId::Secrets, &secret),
            Vec::<String>::new()
        );
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "n1", "namespace": "kube-node-lease",
              "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u"}]},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-01-01T00:00:00.000000Z"}});
        assert_eq!(
            unknown_fields(ResourceId::Leases, &lease),
            Vec::<String>::new()
        );
    }

    #[test]
    fn planted_typos_are_reported_by_path() {
        let mut d = nginx_deployment();
        d["spec"]["replica"] = json!(1);
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
        d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] =
            json!("/");
        d["spec"]["template"]["spec"]["volumes"][1]["secret"]["name"] = json!("x");
        d["metadata"]["label"] = json!({"a": "b"});
        // Unknown subtrees are reported once, not descended into.
        d["spec"]["template"]["spec"]["extra"] = json!({"deep": {"deeper": 1}});
        let mut got = unknown_fields(ResourceId::Deployments, &d);
        got.sort();
        assert_eq!(
            got,
            [
                "metadata.label",
                "spec.replica",
                "spec.template.spec.containers[0].imagePullPolicyy",
                "spec.template.spec.containers[0].livenessProbe.httpGet.paht",
                "spec.template.spec.extra",
                "spec.template.spec.volumes[1].secret.name",
            ]
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "b"}, {"name": "c", "image": "d", "foo": 1}]},
            "bogus": true});
        assert_eq!(
            unknown_fields(ResourceId::Pods, &pod),
            ["bogus", "spec.containers[1].foo"]
        );
        let cm = json!({"metadata": {"name": "c"}, "data": {"anything": "goes"}, "spec": {}});
        assert_eq!(unknown_fields(ResourceId::ConfigMaps, &cm), ["spec"]);
    }
}
