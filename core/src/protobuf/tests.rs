//! Real kubectl 1.32 bodies (fixtures/*.bin, captured from `kubectl create ...` against a
//! recording server) and hand-built ones from a tiny encoder, checked against the JSON
//! kube-apiserver decodes for them.

use super::*;
use alloc::vec;
use serde_json::json;

/// Minimal protobuf writer for tests: each helper returns one encoded field.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(num: u32, wire: u8) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(num) << 3) | u64::from(wire), &mut out);
    out
}

/// A length-delimited field (string, bytes or message).
fn b(num: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = key(num, 2);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn s(num: u32, text: &str) -> Vec<u8> {
    b(num, text.as_bytes())
}

/// A varint field (bool, int32, int64; negatives as 10-byte two's complement).
fn v(num: u32, value: i64) -> Vec<u8> {
    let mut out = key(num, 0);
    varint(value as u64, &mut out);
    out
}

/// A nested message field.
fn m(num: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    b(num, &parts.concat())
}

/// A `map<string, string>` entry.
fn kv(num: u32, k: &str, val: &str) -> Vec<u8> {
    m(num, &[s(1, k), s(2, val)])
}

/// A `map<string, Quantity>` entry.
fn kq(num: u32, k: &str, quantity: &str) -> Vec<u8> {
    m(num, &[s(1, k), m(2, &[s(1, quantity)])])
}

/// The whole body: magic, then `runtime.Unknown{typeMeta, raw}`.
fn envelope(api_version: &str, kind: &str, raw: &[Vec<u8>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(m(1, &[s(1, api_version), s(2, kind)]));
    out.extend(b(2, &raw.concat()));
    out
}

fn meta(name: &str) -> Vec<u8> {
    m(1, &[s(1, name)])
}

#[test]
fn real_kubectl_create_bodies_decode_to_their_dry_run_json() {
    // (fixture, resource): bodies captured from kubectl 1.32 POSTs; the .json beside each is
    // `kubectl create ... --dry-run=client -o json` for the same command.
    let cases: &[(&str, &[u8], &str, ResourceId)] = &[
        (
            "namespace",
            include_bytes!("fixtures/namespace.bin"),
            include_str!("fixtures/namespace.json"),
            ResourceId::Namespaces,
        ),
        (
            "configmap",
            include_bytes!("fixtures/configmap.bin"),
            include_str!("fixtures/configmap.json"),
            ResourceId::ConfigMaps,
        ),
        (
            "secret generic",
            include_bytes!("fixtures/secret_generic.bin"),
            include_str!("fixtures/secret_generic.json"),
            ResourceId::Secrets,
        ),
        (
            "secret tls",
            include_bytes!("fixtures/secret_tls.bin"),
            include_str!("fixtures/secret_tls.json"),
            ResourceId::Secrets,
        ),
        (
            "secret docker-registry",
            include_bytes!("fixtures/secret_docker.bin"),
            include_str!("fixtures/secret_docker.json"),
            ResourceId::Secrets,
        ),
        (
            "service clusterip",
            include_bytes!("fixtures/service_clusterip.bin"),
            include_str!("fixtures/service_clusterip.json"),
            ResourceId::Services,
        ),
        (
            "service nodeport",
            include_bytes!("fixtures/service_nodeport.bin"),
            include_str!("fixtures/service_nodeport.json"),
            ResourceId::Services,
        ),
        (
            "service loadbalancer",
            include_bytes!("fixtures/service_loadbalancer.bin"),
            include_str!("fixtures/service_loadbalancer.json"),
            ResourceId::Services,
        ),
        (
            "service externalname",
            include_bytes!("fixtures/service_externalname.bin"),
            include_str!("fixtures/service_externalname.json"),
            ResourceId::Services,
        ),
        (
            "deployment",
            include_bytes!("fixtures/deployment.bin"),
            include_str!("fixtures/deployment.json"),
            ResourceId::Deployments,
        ),
        (
            "serviceaccount",
            include_bytes!("fixtures/serviceaccount.bin"),
            include_str!("fixtures/serviceaccount.json"),
            ResourceId::ServiceAccounts,
        ),
    ];
    for (name, body, expected, resource) in cases {
        // As kubectl 1.32 prints it, `creationTimestamp: null` included (1.32's ObjectMeta
        // has no `omitzero`).
        let expected: Value = serde_json::from_str(expected).unwrap();
        let got = decode(*resource, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn real_bodies_spot_checks() {
    // `kubectl create deployment web --image=nginx --replicas=6 --port=80`.
    let d = decode(
        ResourceId::Deployments,
        include_bytes!("fixtures/deployment.bin"),
    )
    .unwrap();
    assert_eq!(d["spec"]["replicas"], 6);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    // `kubectl create secret generic s --from-literal=k=v`: bytes are base64 in JSON.
    let s = decode(
        ResourceId::Secrets,
        include_bytes!("fixtures/secret_generic.bin"),
    )
    .unwrap();
    assert_eq!(s["data"]["k"], "dg==");
    // `kubectl create service nodeport n --tcp=80:8080`: targetPort is an IntOrString int.
    let n = decode(
        ResourceId::Services,
        include_bytes!("fixtures/service_nodeport.bin"),
    )
    .unwrap();
    assert_eq!(n["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(n["spec"]["type"], "NodePort");
}

#[test]
fn hand_built_kubectl_create_bodies() {
    // What `kubectl create namespace demo` sends, minus the empty fields Go always writes.
    let body = envelope("v1", "Namespace", &[meta("demo"), m(2, &[]), m(3, &[])]);
    assert_eq!(
        decode(ResourceId::Namespaces, &body).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "creationTimestamp": null},
               "spec": {}, "status": {}})
    );
    // `kubectl create configmap c --from-literal=a=1`.
    let body = envelope("v1", "ConfigMap", &[meta("c"), kv(2, "a", "1")]);
    assert_eq!(
        decode(ResourceId::ConfigMaps, &body).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "creationTimestamp": null},
               "data": {"a": "1"}})
    );
    // `kubectl create secret generic s --from-literal=k=v`, plus binary bytes.
    let body = envelope(
        "v1",
        "Secret",
        &[
            meta("s"),
            kv(2, "k", "v"),
            m(2, &[s(1, "bin"), b(2, &[0, 0xff, 0x10])]),
            s(3, "Opaque"),
        ],
    );
    assert_eq!(
        decode(ResourceId::Secrets, &body).unwrap(),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "s", "creationTimestamp": null},
               "data": {"k": "dg==", "bin": "AP8Q"}, "type": "Opaque"})
    );
    // `kubectl create deployment web --image=nginx --replicas=6 --port=80`.
    let labels = kv(11, "app", "web");
    let body = envelope(
        "apps/v1",
        "Deployment",
        &[
            m(1, &[s(1, "web"), labels.clone()]),
            m(
                2,
                &[
                    v(1, 6),
                    m(2, &[kv(1, "app", "web")]),
                    m(
                        3,
                        &[
                            m(1, &[labels]),
                            m(
                                2,
                                &[m(
                                    2,
                                    &[s(1, "nginx"), s(2, "nginx"), m(6, &[v(3, 80)]), m(8, &[])],
                                )],
                            ),
                        ],
                    ),
                    m(4, &[]),
                ],
            ),
            m(3, &[]),
        ],
    );
    assert_eq!(
        decode(ResourceId::Deployments, &body).unwrap(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": null},
               "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"},
                                                  "creationTimestamp": null},
                                     "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                              "ports": [{"containerPort": 80}], "resources": {}}]}},
                        "strategy": {}},
               "status": {}})
    );
    // `kubectl create service nodeport n --tcp=80:8080`.
    let body = envelope(
        "v1",
        "Service",
        &[
            m(1, &[s(1, "n"), kv(11, "app", "n")]),
            m(
                2,
                &[
                    m(
                        1,
                        &[
                            s(1, "80-8080"),
                            s(2, "TCP"),
                            v(3, 80),
                            m(4, &[v(1, 0), v(2, 8080)]),
                        ],
                    ),
                    kv(2, "app", "n"),
                    s(4, "NodePort"),
                ],
            ),
            m(3, &[m(1, &[])]),
        ],
    );
    assert_eq!(
        decode(ResourceId::Services, &body).unwrap(),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "n", "labels": {"app": "n"}, "creationTimestamp": null},
               "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                                   "targetPort": 8080}],
                        "selector": {"app": "n"}, "type": "NodePort"},
               "status": {"loadBalancer": {}}})
    );
}

#[test]
fn pointer_zero_is_kept_and_value_zero_follows_omitempty() {
    // `replicas` is `*int32`: a present 0 must survive (kubectl scale-to-zero, `--replicas=0`).
    let body = envelope("apps/v1", "ReplicaSet", &[meta("rs"), m(2, &[v(1, 0)])]);
    let rs = decode(ResourceId::ReplicaSets, &body).unwrap();
    assert_eq!(rs["spec"]["replicas"], 0);
    // `minReadySeconds` is a plain int32 with omitempty: a written 0 is not shown.
    let body = envelope("apps/v1", "ReplicaSet", &[meta("rs"), m(2, &[v(4, 0)])]);
    let rs = decode(ResourceId::ReplicaSets, &body).unwrap();
    // `selector` is a pointer without omitempty: absent reads as `null`.
    assert_eq!(
        rs["spec"],
        json!({"selector": null,
               "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}})
    );
    // `status.replicas` is a plain int32 without omitempty: shown even when absent.
    assert_eq!(rs["status"], json!({"replicas": 0}));
}

#[test]
fn full_pod_spec_decodes() {
    let container = m(
        2,
        &[
            s(1, "app"),
            s(2, "nginx:1.27"),
            s(3, "/bin/sh"),
            s(4, "-c"),
            m(6, &[s(1, "http"), v(3, 8080), s(4, "TCP")]),
            m(7, &[s(1, "A"), s(2, "B")]),
            m(
                7,
                &[
                    s(1, "PASS"),
                    m(
                        3,
                        &[m(4, &[m(1, &[s(1, "creds")]), s(2, "password"), v(3, 1)])],
                    ),
                ],
            ),
            m(8, &[kq(1, "cpu", "500m"), kq(2, "memory", "64Mi")]),
            m(9, &[s(1, "data"), s(3, "/data"), v(2, 1)]),
            // livenessProbe: ProbeHandler is inlined into the probe's JSON.
            m(
                10,
                &[
                    m(
                        1,
                        &[m(2, &[s(1, "/healthz"), m(2, &[v(1, 1), s(3, "http")])])],
                    ),
                    v(2, 5),
                    v(6, 3),
                ],
            ),
            m(12, &[m(2, &[m(1, &[s(1, "sleep"), s(1, "1")])])]),
            s(14, "IfNotPresent"),
            m(15, &[v(4, 1000), v(2, 1), m(1, &[s(2, "NET_ADMIN")])]),
            m(19, &[m(3, &[m(1, &[s(1, "cm")])])]),
        ],
    );
    let volumes = [
        m(
            1,
            &[
                s(1, "data"),
                m(2, &[m(2, &[s(1, "Memory"), m(2, &[s(1, "1Gi")])])]),
            ],
        ),
        m(
            1,
            &[
                s(1, "cfg"),
                m(
                    2,
                    &[m(
                        19,
                        &[
                            m(1, &[s(1, "app-config")]),
                            m(2, &[s(1, "k"), s(2, "p")]),
                            v(3, 420),
                        ],
                    )],
                ),
            ],
        ),
        m(
            1,
            &[s(1, "claim"), m(2, &[m(10, &[s(1, "pvc-1"), v(2, 1)])])],
        ),
        m(
            1,
            &[
                s(1, "host"),
                m(2, &[m(1, &[s(1, "/var/log"), s(2, "Directory")])]),
            ],
        ),
        m(
            1,
            &[
                s(1, "proj"),
                m(
                    2,
                    &[m(
                        26,
                        &[m(1, &[m(4, &[s(1, "api"), v(2, 3600), s(3, "token")])])],
                    )],
                ),
            ],
        ),
    ];
    let mut spec_parts = volumes.to_vec();
    spec_parts.extend([
        container,
        s(3, "Always"),
        v(4, 30),
        s(6, "ClusterFirst"),
        kv(7, "disktype", "ssd"),
        s(8, "default"),
        v(11, 0),
        m(14, &[v(5, 2000)]),
        m(
            18,
            &[m(
                1,
                &[m(
                    1,
                    &[m(
                        1,
                        &[m(1, &[s(1, "zone"), s(2, "In"), s(3, "a"), s(3, "b")])],
                    )],
                )],
            )],
        ),
        m(
            22,
            &[
                s(1, "node.kubernetes.io/not-ready"),
                s(2, "Exists"),
                s(4, "NoExecute"),
                v(5, 300),
            ],
        ),
        m(
            33,
            &[
                v(1, 1),
                s(2, "kubernetes.io/hostname"),
                s(3, "DoNotSchedule"),
                m(4, &[kv(1, "app", "x")]),
            ],
        ),
    ]);
    let body = envelope(
        "v1",
        "Pod",
        &[
            m(
                1,
                &[
                    s(1, "p"),
                    s(3, "default"),
                    m(
                        13,
                        &[
                            s(1, "ReplicaSet"),
                            s(3, "rs"),
                            s(4, "uid-1"),
                            s(5, "apps/v1"),
                            v(6, 1),
                            v(7, 1),
                        ],
                    ),
                    s(14, "example.com/f"),
                ],
            ),
            m(2, &spec_parts),
        ],
    );
    let pod = decode(ResourceId::Pods, &body).unwrap();
    assert_eq!(
        pod,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "default", "creationTimestamp": null,
                "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "uid-1",
                    "apiVersion": "apps/v1", "controller": true, "blockOwnerDeletion": true}],
                "finalizers": ["example.com/f"]
            },
            "spec": {
                "volumes": [
                    {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                    {"name": "cfg", "configMap": {"name": "app-config",
                        "items": [{"key": "k", "path": "p"}], "defaultMode": 420}},
                    {"name": "claim", "persistentVolumeClaim": {"claimName": "pvc-1", "readOnly": true}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {"name": "proj", "projected": {"sources": [{"serviceAccountToken":
                        {"audience": "api", "expirationSeconds": 3600, "path": "token"}}]}}
                ],
                "containers": [{
                    "name": "app", "image": "nginx:1.27", "command": ["/bin/sh"], "args": ["-c"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "B"},
                            {"name": "PASS", "valueFrom": {"secretKeyRef":
                                {"name": "creds", "key": "password", "optional": true}}}],
                    "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                      "initialDelaySeconds": 5, "failureThreshold": 3},
                    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"runAsUser": 1000, "privileged": true,
                                        "capabilities": {"drop": ["NET_ADMIN"]}},
                    "envFrom": [{"secretRef": {"name": "cm"}}]
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"disktype": "ssd"},
                "serviceAccountName": "default",
                "securityContext": {"fsGroup": 2000},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions":
                        [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": 300}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}]
            },
            "status": {}
        })
    );
}

#[test]
fn times_managed_fields_and_leases() {
    // 2024-01-02T03:04:05Z = 1704164645; Time drops nanos, MicroTime keeps microseconds.
    let lease = envelope(
        "coordination.k8s.io/v1",
        "Lease",
        &[
            m(
                1,
                &[
                    s(1, "node-1"),
                    m(8, &[v(1, 1_704_164_645), v(2, 999_999_999)]),
                    m(
                        17,
                        &[
                            s(1, "kubelet"),
                            s(2, "Update"),
                            s(3, "coordination.k8s.io/v1"),
                            m(4, &[v(1, 1_704_164_645)]),
                            s(6, "FieldsV1"),
                            m(7, &[s(1, r#"{"f:spec":{"f:holderIdentity":{}}}"#)]),
                        ],
                    ),
                ],
            ),
            m(
                2,
                &[
                    s(1, "node-1"),
                    v(2, 40),
                    m(4, &[v(1, 1_704_164_645), v(2, 123_456_789)]),
                    v(5, 0),
                ],
            ),
        ],
    );
    assert_eq!(
        decode(ResourceId::Leases, &lease).unwrap(),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "node-1", "creationTimestamp": "2024-01-02T03:04:05Z",
                   "managedFields": [{"manager": "kubelet", "operation": "Update",
                       "apiVersion": "coordination.k8s.io/v1", "time": "2024-01-02T03:04:05Z",
                       "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:spec": {"f:holderIdentity": {}}}}]},
               "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                        "renewTime": "2024-01-02T03:04:05.123456Z", "leaseTransitions": 0}})
    );
    // An Event: zero times (empty Timestamp messages, as Go writes them) are `null`.
    let event = envelope(
        "v1",
        "Event",
        &[
            meta("e"),
            m(2, &[s(1, "Pod"), s(3, "p")]),
            s(3, "Started"),
            m(6, &[]),
            m(7, &[v(1, 1_704_164_645)]),
            v(8, 1),
            m(10, &[]),
        ],
    );
    assert_eq!(
        decode(ResourceId::Events, &event).unwrap(),
        json!({"apiVersion": "v1", "kind": "Event",
               "metadata": {"name": "e", "creationTimestamp": null},
               "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
               "source": {}, "firstTimestamp": null, "lastTimestamp": "2024-01-02T03:04:05Z",
               "count": 1, "eventTime": null, "reportingComponent": "",
               "reportingInstance": ""})
    );
}

#[test]
fn scalars_packed_negative_and_int_or_string() {
    // Negative int32 is a sign-extended 10-byte varint; `maxSurge: "25%"` is a string
    // IntOrString; `maxUnavailable: 0` a present pointer zero.
    let body = envelope(
        "apps/v1",
        "Deployment",
        &[
            meta("d"),
            m(
                2,
                &[
                    v(9, -1),
                    m(
                        4,
                        &[
                            s(1, "RollingUpdate"),
                            m(
                                2,
                                &[m(1, &[v(1, 0), v(2, 0)]), m(2, &[v(1, 1), s(3, "25%")])],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    );
    let d = decode(ResourceId::Deployments, &body).unwrap();
    assert_eq!(d["spec"]["progressDeadlineSeconds"], -1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}})
    );
    // Packed and unpacked repeated varints (PodSecurityContext.supplementalGroups) both read.
    let groups = |values: Vec<u8>| envelope("v1", "Pod", &[m(2, &[m(14, &[values])])]);
    let packed = groups(b(4, &[1, 2, 3]));
    let unpacked = groups([v(4, 1), v(4, 2), v(4, 3)].concat());
    for body in [packed, unpacked] {
        let pod = decode(ResourceId::Pods, &body).unwrap();
        assert_eq!(
            pod["spec"]["securityContext"]["supplementalGroups"],
            json!([1, 2, 3])
        );
    }
}

#[test]
fn delete_options_and_envelope_fallbacks() {
    let body = envelope(
        "v1",
        "DeleteOptions",
        &[
            v(1, 0),
            m(2, &[s(1, "uid-1")]),
            s(4, "Background"),
            s(5, "All"),
        ],
    );
    assert_eq!(
        decode_delete_options(&body).unwrap(),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Background",
               "dryRun": ["All"]})
    );
    let pod = envelope("v1", "Pod", &[meta("p")]);
    assert!(matches!(
        decode_delete_options(&pod),
        Err(Error::BadRequest(_))
    ));
    // An empty typeMeta takes the resource's kind, as kube-apiserver defaults it from the path.
    let mut body = MAGIC.to_vec();
    body.extend(b(2, &meta("x")));
    let ns = decode(ResourceId::Namespaces, &body).unwrap();
    assert_eq!(
        (ns["apiVersion"].as_str(), ns["kind"].as_str()),
        (Some("v1"), Some("Namespace"))
    );
    // Subresource kinds decode too.
    let binding = envelope(
        "v1",
        "Binding",
        &[meta("p"), m(2, &[s(1, "Node"), s(3, "n1")])],
    );
    assert_eq!(
        decode(ResourceId::Pods, &binding).unwrap(),
        json!({"apiVersion": "v1", "kind": "Binding",
               "metadata": {"name": "p", "creationTimestamp": null},
               "target": {"kind": "Node", "name": "n1"}})
    );
    let scale = envelope("autoscaling/v1", "Scale", &[meta("d"), m(2, &[v(1, 3)])]);
    assert_eq!(
        decode(ResourceId::Deployments, &scale).unwrap()["spec"]["replicas"],
        3
    );
    // A kind we have no table for, or a compressed envelope: 415, the client should send JSON.
    let job = envelope("storage.k8s.io/v1", "StorageClass", &[meta("j")]);
    assert!(matches!(
        decode(ResourceId::Pods, &job),
        Err(Error::UnsupportedMediaType(_))
    ));
    let mut gz = envelope("v1", "Pod", &[meta("p")]);
    gz.extend(s(3, "gzip"));
    assert!(matches!(
        decode(ResourceId::Pods, &gz),
        Err(Error::UnsupportedMediaType(_))
    ));
}

#[test]
fn unknown_fields_are_refused_not_dropped() {
    // ObjectMeta field 15 (clusterName) was removed upstream; field 200 never existed.
    for (raw, message, num) in [
        (vec![m(1, &[s(15, "c")])], "ObjectMeta", 15),
        (vec![m(2, &[s(200, "x")])], "NamespaceSpec", 200),
        (vec![v(99, 1)], "Namespace", 99),
    ] {
        let body = envelope("v1", "Namespace", &raw);
        let err = decode(ResourceId::Namespaces, &body).unwrap_err();
        assert_eq!(
            err,
            Error::UnsupportedMediaType(format!(
                "protobuf field {num} of {message} is not supported; send JSON"
            )),
        );
        assert_eq!(err.code(), 415);
    }
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let good = envelope("v1", "Namespace", &[meta("demo")]);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("bad magic", b"k8s\x01rest".to_vec()),
        ("json", br#"{"kind":"Namespace"}"#.to_vec()),
        (
            "huge length",
            [MAGIC, &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]].concat(),
        ),
        ("varint too long", [MAGIC, &[0x80; 11][..]].concat()),
        (
            "varint overflow",
            [
                MAGIC,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..],
            ]
            .concat(),
        ),
        ("field number zero", [MAGIC, &[0x02, 0x00][..]].concat()),
        // metadata.name sent as a varint.
        (
            "wrong wire type",
            envelope("v1", "Namespace", &[m(1, &[v(1, 5)])]),
        ),
        (
            "bad utf8",
            envelope("v1", "Namespace", &[m(1, &[b(1, &[0xff, 0xfe])])]),
        ),
        (
            "bad fieldsV1",
            envelope("v1", "Namespace", &[m(1, &[m(17, &[m(7, &[s(1, "{")])])])]),
        ),
        ("group wire type", [MAGIC, &[0x0b][..]].concat()),
    ];
    for cut in 1..good.len() {
        if cut > MAGIC.len() {
            cases.push(("truncated", good[..cut].to_vec()));
        }
    }
    for (name, body) in cases {
        match decode(ResourceId::Namespaces, &body) {
            Err(Error::BadRequest(message)) => assert!(
                message.starts_with("the protobuf body is malformed: "),
                "{name}: {message}"
            ),
            // A cut that lands between whole fields is a valid, shorter body.
            Ok(_) if name == "truncated" => {}
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn nesting_and_expansion_are_bounded() {
    // fieldsV1 JSON nested past the remaining depth budget.
    let deep = "[".repeat(80) + &"]".repeat(80);
    let body = envelope(
        "v1",
        "Namespace",
        &[m(1, &[m(17, &[m(7, &[s(1, &deep)])])])],
    );
    assert!(matches!(
        decode(ResourceId::Namespaces, &body),
        Err(Error::BadRequest(_))
    ));
    // Empty container statuses: each 2-byte entry expands to a zero ContainerStatus (one of
    // the largest zero forms), still within the budget of 8 values per body byte.
    let many: Vec<Vec<u8>> = (0..20_000).map(|_| m(8, &[])).collect();
    let body = envelope("v1", "Pod", &[m(3, &many)]);
    let pod = decode(ResourceId::Pods, &body).unwrap();
    let statuses = pod["status"]["containerStatuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 20_000);
    assert_eq!(
        statuses[0],
        json!({"name": "", "state": {}, "lastState": {}, "ready": false, "restartCount": 0,
               "image": "", "imageID": ""})
    );
    // The budget itself refuses once spent, with 413.
    let mut budget = Budget { left: 2 };
    assert!(budget.spend().is_ok() && budget.spend().is_ok());
    assert_eq!(budget.spend().unwrap_err().code(), 413);
}

#[test]
fn every_table_is_sorted_and_unique() {
    fn walk(desc: &'static Msg, seen: &mut Vec<&'static str>) {
        if seen.contains(&desc.name) {
            return;
        }
        seen.push(desc.name);
        assert!(
            desc.fields.windows(2).all(|w| w[0].num < w[1].num),
            "{} fields must be sorted by number",
            desc.name
        );
        for field in desc.fields {
            assert_eq!(
                field.json.is_empty(),
                field.flags & INLINE != 0,
                "{}",
                desc.name
            );
            if let Kind::Message(inner) = field.kind {
                walk(inner, seen);
            }
        }
    }
    let mut seen = Vec::new();
    for (_, _, desc) in TOP_LEVEL {
        walk(desc, &mut seen);
    }
    walk(&tables::META_DELETE_OPTIONS, &mut seen);
    assert!(seen.len() > 150, "{}", seen.len());
}
