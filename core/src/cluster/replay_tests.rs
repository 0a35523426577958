//! Determinism: a seeded random workload over every resource kind, with the controllers, the
//! scheduler and every timer running in virtual time, records its changes; replaying the
//! encoded records into an empty cluster (with another seed) gives the same store byte for
//! byte, the same revision, and the same derived state.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::record::Record;
use crate::api::{ApiRequest, Cluster, Method};
use crate::resource::{RESOURCES, ResourceId};
use crate::{Config, UnixTime};

const TOKEN: &str = "admin";
const T0: UnixTime = UnixTime::from_secs(1_750_000_000);
const NAMESPACES: [&str; 3] = ["team-a", "team-b", "team-c"];
const APPS: [&str; 3] = ["web", "api", "db"];

/// xorshift64*: a small deterministic generator for the workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn config() -> Config {
    Config {
        admin_token_sha256: Some(Sha256::digest(TOKEN.as_bytes()).into()),
        ..Config::default()
    }
}

struct Live {
    server: Cluster,
    now: UnixTime,
    rng: Rng,
    /// Successful requests per resource (plural), to show every kind was exercised.
    written: BTreeMap<&'static str, usize>,
    serial: usize,
}

impl Live {
    fn call(&mut self, method: Method, path: &str, body: &Value, content_type: &str) -> u16 {
        let bytes = serde_json::to_vec(body).unwrap();
        let auth = alloc::format!("Bearer {TOKEN}");
        let mut req = ApiRequest::new(method, path);
        req.authorization = Some(&auth);
        req.content_type = Some(content_type);
        if !body.is_null() {
            req.body = &bytes;
        }
        self.server
            .handle_request(self.now, &req)
            .into_response()
            .expect("not a watch")
            .status
    }

    fn send(&mut self, kind: &'static str, method: Method, path: &str, body: Value) {
        let content_type = if method == Method::Patch {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let status = self.call(method, path, &body, content_type);
        if (200..300).contains(&status) {
            *self.written.entry(kind).or_default() += 1;
        }
    }

    fn name(&mut self, prefix: &str) -> String {
        // A small name space, so that later steps update and delete what earlier ones made.
        alloc::format!("{prefix}-{}", self.rng.below(6))
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.serial += 1;
        alloc::format!("{prefix}-{}", self.serial)
    }

    /// A checkpoint of stake events for one of the stakes nodes register to: deposits, a
    /// slash, or a withdrawal (whose revocation cordons and evicts through writes of its own).
    fn stake_batch(&mut self) {
        use crate::stake::{EventBatch, EventId, StakeEvent, StakeEventKind, TrustTheRelay};
        self.serial += 1;
        let mut stake_id = [0u8; 32];
        stake_id[31] = self.rng.below(3) as u8;
        let kind = match self.rng.below(4) {
            0 => StakeEventKind::Withdrawn,
            1 => StakeEventKind::Slashed { amount: 1_000 },
            _ => StakeEventKind::Deposited {
                owner: crate::token::SuiAddress([5; 32]),
                amount: 2_000_000_000,
            },
        };
        let batch = EventBatch {
            checkpoint: self.serial as u64,
            foreign: 0,
            events: alloc::vec![StakeEvent {
                id: EventId {
                    tx_digest: alloc::format!("tx{}", self.serial),
                    event_seq: 0,
                },
                stake_id,
                kind,
            }],
        };
        self.server
            .apply_sui_batch(self.now, &batch, &mut TrustTheRelay)
            .expect("a valid batch");
        *self.written.entry("stake batches").or_default() += 1;
    }

    /// Runs whatever the timers have due now, as the runtime would.
    fn run_timers(&mut self) {
        for _ in 0..20 {
            let due = self.server.poll_timeout().is_some_and(|t| t <= self.now);
            if !due {
                return;
            }
            self.server.handle_timeout(self.now);
        }
    }

    /// One random request.
    #[allow(clippy::too_many_lines)]
    fn step(&mut self) {
        let ns = self.rng.pick(&NAMESPACES);
        let app = self.rng.pick(&APPS);
        let container = json!([{"name": "c", "image": alloc::format!("nginx:1.{}", self.rng.below(3)),
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]);
        let template =
            json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": container}});
        let small = self.rng.below(3);
        let pick = self.rng.below(34);
        match pick {
            0 => {
                let name = self.name("node");
                // Registered to a stake, as the seed endpoint annotates a worker's node.
                let stake = alloc::format!("0x{:064x}", self.rng.below(3));
                self.send(
                    "nodes",
                    Method::Post,
                    "/api/v1/nodes",
                    json!({"metadata": {"name": name, "labels": {"zone": app},
                        "annotations": {"nautilus.io/stake-id": stake}}}),
                );
                let status = json!({"status": {
                    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "lastHeartbeatTime": self.now.rfc3339(), "lastTransitionTime": self.now.rfc3339()}]}});
                self.send(
                    "nodes",
                    Method::Patch,
                    &alloc::format!("/api/v1/nodes/{name}/status"),
                    status,
                );
            }
            1 => {
                let name = self.name("node");
                let renew = self.now.rfc3339_micros();
                let path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
                self.send(
                    "leases",
                    Method::Post,
                    path,
                    json!({"metadata": {"name": name}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew}}),
                );
                self.send(
                    "leases",
                    Method::Patch,
                    &alloc::format!("{path}/{name}"),
                    json!({"spec": {"renewTime": renew}}),
                );
            }
            2 => {
                let name = self.name("node");
                self.send(
                    "nodes",
                    Method::Delete,
                    &alloc::format!("/api/v1/nodes/{name}"),
                    Value::Null,
                );
            }
            3..=5 => {
                let name = self.fresh("pod");
                let mut pod = json!({"metadata": {"name": name, "labels": {"app": app}},
                    "spec": {"containers": container}});
                if self.rng.below(8) == 0 {
                    // Fits nowhere: parked by the scheduler.
                    pod["spec"]["nodeSelector"] = json!({"zone": "nowhere"});
                }
                self.send(
                    "pods",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/pods"),
                    pod,
                );
            }
            6 => self.pod_status(ns),
            7 => {
                let pod = self.any_name(ResourceId::Pods, ns);
                if let Some(pod) = pod {
                    let grace = if self.rng.below(2) == 0 { 0 } else { 30 };
                    self.send(
                        "pods",
                        Method::Delete,
                        &alloc::format!("/api/v1/namespaces/{ns}/pods/{pod}"),
                        json!({"gracePeriodSeconds": grace}),
                    );
                }
            }
            8 | 9 => {
                let name = self.name("deploy");
                let path = alloc::format!("/apis/apps/v1/namespaces/{ns}/deployments");
                self.send(
                    "deployments",
                    Method::Post,
                    &path,
                    json!({"metadata": {"name": name}, "spec": {"replicas": 1 + small,
                        "selector": {"matchLabels": {"app": app}}, "template": template}}),
                );
                let patch = json!({"spec": {"replicas": self.rng.below(4),
                    "template": {"spec": {"containers": container}}}});
                self.send(
                    "deployments",
                    Method::Patch,
                    &alloc::format!("{path}/{name}"),
                    patch,
                );
            }
            10 => {
                let name = self.name("deploy");
                self.send(
                    "deployments",
                    Method::Delete,
                    &alloc::format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
                    Value::Null,
                );
            }
            11 => {
                let name = self.name("rs");
                self.send(
                    "replicasets",
                    Method::Post,
                    &alloc::format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
                    json!({"metadata": {"name": name}, "spec": {"replicas": small,
                        "selector": {"matchLabels": {"app": app}}, "template": template}}),
                );
            }
            12 => {
                let name = self.name("rc");
                self.send(
                    "replicationcontrollers",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/replicationcontrollers"),
                    json!({"metadata": {"name": name}, "spec": {"replicas": 1,
                        "selector": {"rc": name},
                        "template": {"metadata": {"labels": {"rc": name}}, "spec": {"containers": container}}}}),
                );
            }
            13 => {
                let name = self.fresh("job");
                self.send(
                    "jobs",
                    Method::Post,
                    &alloc::format!("/apis/batch/v1/namespaces/{ns}/jobs"),
                    json!({"metadata": {"name": name}, "spec": {"completions": 1,
                        "template": {"spec": {"restartPolicy": "Never", "containers": container}}}}),
                );
            }
            14 => {
                let name = self.name("cron");
                self.send(
                    "cronjobs",
                    Method::Post,
                    &alloc::format!("/apis/batch/v1/namespaces/{ns}/cronjobs"),
                    json!({"metadata": {"name": name}, "spec": {"schedule": "*/1 * * * *",
                        "successfulJobsHistoryLimit": 1,
                        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": container}}}}}}),
                );
            }
            15 | 16 => {
                let name = self.name("svc");
                let path = alloc::format!("/api/v1/namespaces/{ns}/services");
                let kind = if self.rng.below(2) == 0 {
                    "NodePort"
                } else {
                    "ClusterIP"
                };
                self.send(
                    "services",
                    Method::Post,
                    &path,
                    json!({"metadata": {"name": name}, "spec": {"type": kind, "selector": {"app": app},
                        "ports": [{"port": 80, "targetPort": 8080}]}}),
                );
                // Changing the type allocates (NodePort) or releases node ports on update.
                let other = if kind == "NodePort" {
                    "ClusterIP"
                } else {
                    "NodePort"
                };
                self.send(
                    "services",
                    Method::Patch,
                    &alloc::format!("{path}/{name}"),
                    json!({"spec": {"type": other}}),
                );
            }
            17 => {
                let name = self.name("svc");
                self.send(
                    "services",
                    Method::Delete,
                    &alloc::format!("/api/v1/namespaces/{ns}/services/{name}"),
                    Value::Null,
                );
            }
            18 => {
                let name = self.name("ext");
                self.send(
                    "endpoints",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/endpoints"),
                    json!({"metadata": {"name": name}, "subsets": [{"addresses": [{"ip": "10.9.0.1"}], "ports": [{"port": 80}]}]}),
                );
            }
            19 => {
                let name = self.name("cm");
                let path = alloc::format!("/api/v1/namespaces/{ns}/configmaps");
                self.send(
                    "configmaps",
                    Method::Post,
                    &path,
                    json!({"metadata": {"name": name}, "data": {"k": "v"}}),
                );
                let value = alloc::format!("{}", self.rng.next());
                self.send(
                    "configmaps",
                    Method::Patch,
                    &alloc::format!("{path}/{name}"),
                    json!({"data": {"k": value}}),
                );
            }
            20 => {
                let name = self.name("cm");
                self.send(
                    "configmaps",
                    Method::Delete,
                    &alloc::format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
                    Value::Null,
                );
            }
            21 => {
                let name = self.name("secret");
                self.send(
                    "secrets",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/secrets"),
                    json!({"metadata": {"name": name}, "stringData": {"password": "hunter2"}}),
                );
            }
            22 => {
                let name = self.name("sa");
                self.send(
                    "serviceaccounts",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                    json!({"metadata": {"name": name}}),
                );
            }
            23 => {
                let name = self.fresh("event");
                self.send(
                    "events",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/events"),
                    json!({"metadata": {"name": name},
                        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "p"},
                        "reason": "Tested", "message": "a test event", "type": "Normal"}),
                );
            }
            24 => {
                let name = self.name("tpl");
                self.send(
                    "podtemplates",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/podtemplates"),
                    json!({"metadata": {"name": name}, "template": template}),
                );
            }
            25 => {
                let name = self.name("quota");
                self.send(
                    "resourcequotas",
                    Method::Post,
                    &alloc::format!("/api/v1/namespaces/{ns}/resourcequotas"),
                    json!({"metadata": {"name": name}, "spec": {"hard": {"pods": "1000", "services": "1000"}}}),
                );
            }
            26 => {
                let name = self.name("pdb");
                self.send(
                    "poddisruptionbudgets",
                    Method::Post,
                    &alloc::format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"),
                    json!({"metadata": {"name": name}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}}}),
                );
            }
            27 => {
                let name = self.name("rtc");
                self.send(
                    "runtimeclasses",
                    Method::Post,
                    "/apis/node.k8s.io/v1/runtimeclasses",
                    json!({"metadata": {"name": name}, "handler": "runc"}),
                );
                let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
                let kinds = [
                    (
                        "csinodes",
                        "storage.k8s.io/v1/csinodes",
                        json!({"spec": {"drivers": []}}),
                    ),
                    (
                        "csidrivers",
                        "storage.k8s.io/v1/csidrivers",
                        json!({"spec": {}}),
                    ),
                    (
                        "priorityclasses",
                        "scheduling.k8s.io/v1/priorityclasses",
                        json!({"value": 100}),
                    ),
                    (
                        "volumeattachments",
                        "storage.k8s.io/v1/volumeattachments",
                        json!({"spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv"}}}),
                    ),
                    (
                        "ingressclasses",
                        "networking.k8s.io/v1/ingressclasses",
                        json!({"spec": {"controller": "example.com/ingress"}}),
                    ),
                    (
                        "endpointslices",
                        &alloc::format!("discovery.k8s.io/v1/namespaces/{ns}/endpointslices"),
                        json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.9.0.2"]}], "ports": [{"port": 80}]}),
                    ),
                    (
                        "ingresses",
                        &alloc::format!("networking.k8s.io/v1/namespaces/{ns}/ingresses"),
                        json!({"spec": {"defaultBackend": backend}}),
                    ),
                    (
                        "certificatesigningrequests",
                        "certificates.k8s.io/v1/certificatesigningrequests",
                        json!({"spec": {"request": base64::Engine::encode(
                                &base64::engine::general_purpose::STANDARD,
                                include_str!("../csr/fixtures/p256-sha256.pem"),
                            ),
                            "signerName": "example.com/signer", "usages": ["client auth"]}}),
                    ),
                    (
                        "horizontalpodautoscalers",
                        &alloc::format!("autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers"),
                        json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}}),
                    ),
                ];
                for (plural, path, mut body) in kinds {
                    body["metadata"] = json!({"name": name});
                    self.send(plural, Method::Post, &alloc::format!("/apis/{path}"), body);
                }
                let rbac = "/apis/rbac.authorization.k8s.io/v1";
                let rules = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
                self.send(
                    "roles",
                    Method::Post,
                    &alloc::format!("{rbac}/namespaces/{ns}/roles"),
                    json!({"metadata": {"name": name}, "rules": rules}),
                );
                self.send(
                    "rolebindings",
                    Method::Post,
                    &alloc::format!("{rbac}/namespaces/{ns}/rolebindings"),
                    json!({"metadata": {"name": name}, "roleRef": {"kind": "Role", "name": name},
                        "subjects": [{"kind": "User", "name": "jane"}]}),
                );
                self.send(
                    "clusterroles",
                    Method::Post,
                    &alloc::format!("{rbac}/clusterroles"),
                    json!({"metadata": {"name": name}, "rules": rules}),
                );
                self.send(
                    "clusterrolebindings",
                    Method::Post,
                    &alloc::format!("{rbac}/clusterrolebindings"),
                    json!({"metadata": {"name": name}, "roleRef": {"kind": "ClusterRole", "name": name},
                        "subjects": [{"kind": "Group", "name": "devs"}]}),
                );
            }
            28 => {
                let plc = self.name("plc");
                let base = "/apis/flowcontrol.apiserver.k8s.io/v1";
                self.send(
                    "prioritylevelconfigurations",
                    Method::Post,
                    &alloc::format!("{base}/prioritylevelconfigurations"),
                    json!({"metadata": {"name": plc}, "spec": {"type": "Limited",
                        "limited": {"nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}}),
                );
                let fs = self.name("fs");
                self.send(
                    "flowschemas",
                    Method::Post,
                    &alloc::format!("{base}/flowschemas"),
                    json!({"metadata": {"name": fs}, "spec": {"priorityLevelConfiguration": {"name": plc},
                        "matchingPrecedence": 500,
                        "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:authenticated"}}],
                            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"]}]}]}}),
                );
            }
            29 => {
                let name = self.name("hook");
                let base = "/apis/admissionregistration.k8s.io/v1";
                self.send(
                    "validatingwebhookconfigurations",
                    Method::Post,
                    &alloc::format!("{base}/validatingwebhookconfigurations"),
                    json!({"metadata": {"name": name}, "webhooks": []}),
                );
                self.send(
                    "mutatingwebhookconfigurations",
                    Method::Post,
                    &alloc::format!("{base}/mutatingwebhookconfigurations"),
                    json!({"metadata": {"name": name}, "webhooks": []}),
                );
            }
            30 => {
                let name = self.name("policy");
                let base = "/apis/admissionregistration.k8s.io/v1";
                self.send(
                    "validatingadmissionpolicies",
                    Method::Post,
                    &alloc::format!("{base}/validatingadmissionpolicies"),
                    json!({"metadata": {"name": name}, "spec": {
                        "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""],
                            "apiVersions": ["v1"], "resources": ["secrets"]}]},
                        "validations": [{"expression": "true"}]}}),
                );
                self.send(
                    "validatingadmissionpolicybindings",
                    Method::Post,
                    &alloc::format!("{base}/validatingadmissionpolicybindings"),
                    json!({"metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}}),
                );
            }
            31 => {
                let group = alloc::format!("g{}.example.com", self.rng.below(3));
                self.send(
                    "customresourcedefinitions",
                    Method::Post,
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    json!({"metadata": {"name": alloc::format!("widgets.{group}")},
                        "spec": {"group": group, "scope": "Namespaced",
                            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                            "versions": [{"name": "v1", "served": true, "storage": true,
                                "schema": {"openAPIV3Schema": {"type": "object",
                                    "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}}),
                );
                let name = self.name("widget");
                self.send(
                    "widgets",
                    Method::Post,
                    &alloc::format!("/apis/{group}/v1/namespaces/{ns}/widgets"),
                    json!({"apiVersion": alloc::format!("{group}/v1"), "kind": "Widget",
                        "metadata": {"name": name}, "spec": {"size": small}}),
                );
            }
            32 => {
                let group = alloc::format!("g{}.example.com", self.rng.below(3));
                if self.rng.below(4) == 0 {
                    self.send(
                        "customresourcedefinitions",
                        Method::Delete,
                        &alloc::format!(
                            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"
                        ),
                        Value::Null,
                    );
                } else {
                    let name = self.name("widget");
                    self.send(
                        "widgets",
                        Method::Delete,
                        &alloc::format!("/apis/{group}/v1/namespaces/{ns}/widgets/{name}"),
                        Value::Null,
                    );
                }
            }
            _ => {
                let name = self.name("extra");
                if self.rng.below(3) == 0 {
                    self.send(
                        "namespaces",
                        Method::Delete,
                        &alloc::format!("/api/v1/namespaces/{name}"),
                        Value::Null,
                    );
                } else {
                    self.send(
                        "namespaces",
                        Method::Post,
                        "/api/v1/namespaces",
                        json!({"metadata": {"name": name}}),
                    );
                    self.send(
                        "configmaps",
                        Method::Post,
                        &alloc::format!("/api/v1/namespaces/{name}/configmaps"),
                        json!({"metadata": {"name": "inside"}}),
                    );
                }
            }
        }
    }

    /// A stored object's name of `resource` in `ns`, at random.
    fn any_name(&mut self, resource: ResourceId, ns: &str) -> Option<String> {
        let names: Vec<String> = self
            .server
            .store()
            .range(resource, Some(ns), None)
            .map(|(k, _)| String::from(&*k.name))
            .collect();
        (!names.is_empty()).then(|| names[self.rng.below(names.len())].clone())
    }

    /// What a kubelet reports for a bound pod: running and ready, or finished.
    fn pod_status(&mut self, ns: &str) {
        let Some(pod) = self.any_name(ResourceId::Pods, ns) else {
            return;
        };
        let phase = if self.rng.below(3) == 0 {
            "Succeeded"
        } else {
            "Running"
        };
        let ip = alloc::format!("10.1.{}.{}", self.rng.below(250), self.rng.below(250));
        let status = json!({"status": {"phase": phase, "podIP": ip,
            "conditions": [{"type": "Ready", "status": if phase == "Running" { "True" } else { "False" },
                "lastTransitionTime": self.now.rfc3339()}]}});
        self.send(
            "pods",
            Method::Patch,
            &alloc::format!("/api/v1/namespaces/{ns}/pods/{pod}/status"),
            status,
        );
    }
}

/// Every stored object, with its revision and bytes.
fn objects(server: &Cluster) -> Vec<(String, u64, Vec<u8>)> {
    let mut ids: Vec<ResourceId> = RESOURCES.iter().map(|r| r.id).collect();
    ids.extend((0..64).map(ResourceId::Custom));
    ids.into_iter()
        .flat_map(|id| {
            server
                .store()
                .range(id, None, None)
                .map(|(k, o)| {
                    (
                        alloc::format!("{:?}/{}/{}", k.resource, k.namespace, k.name),
                        o.revision,
                        o.json.bytes().into_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The derived state a replay must reproduce.
fn derived(server: &Cluster) -> Vec<(&'static str, String)> {
    alloc::vec![
        (
            "service allocations",
            alloc::format!("{:?}", server.services)
        ),
        (
            "node authorizer index",
            alloc::format!("{:?}", server.references)
        ),
        ("crd registry", alloc::format!("{:?}", server.crds)),
        ("event ledger", server.event_ttl.fingerprint()),
        ("scheduler", server.scheduler.fingerprint()),
        (
            "node heartbeats",
            alloc::format!("{:?}", server.lifecycle.heartbeats())
        ),
        (
            "terminating namespaces",
            alloc::format!("{:?}", server.terminating)
        ),
        ("stake registrations", server.registrations.fingerprint()),
        ("stake registry", {
            let mut stakes = server.stakes().iter().collect::<Vec<_>>();
            stakes.sort_by_key(|(id, _)| **id);
            alloc::format!("{:?} {stakes:?}", server.stakes().last_checkpoint())
        }),
        (
            "store usage",
            alloc::format!(
                "{} {} {}",
                server.store().revision(),
                server.store().len(),
                server.store().used_bytes()
            )
        ),
    ]
}

#[test]
fn replaying_the_records_of_a_random_workload_rebuilds_the_same_cluster() {
    let mut live = Live {
        server: Cluster::empty(config(), [7; 32], T0),
        now: T0,
        rng: Rng(0x5eed_0f15),
        written: BTreeMap::new(),
        serial: 0,
    };
    live.server.record_changes(true);
    live.server.bootstrap(T0);
    for ns in NAMESPACES {
        live.send(
            "namespaces",
            Method::Post,
            "/api/v1/namespaces",
            json!({"metadata": {"name": ns}}),
        );
    }
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut middle: Option<(Vec<Vec<u8>>, usize)> = None;
    let mut capturing: Option<(crate::cluster::SnapshotCapture, usize)> = None;
    let mut steps = 0;
    while records.len() < 10_000 {
        steps += 1;
        assert!(steps < 40_000, "the workload stopped writing");
        live.step();
        if live.rng.below(40) == 0 {
            live.stake_batch();
        }
        if live.rng.below(3) == 0 {
            let millis = live.rng.below(4_000) as u64;
            live.now = UnixTime {
                nanos: live.now.nanos + millis * 1_000_000,
            };
        }
        live.run_timers();
        records.extend(live.server.take_records().iter().map(Record::encode));
        if let Some((capture, _)) = &mut capturing {
            // A step of the capture between requests, as the runtime takes them.
            if let Some(snapshot) = live.server.continue_snapshot(capture, 50).unwrap() {
                let chunks = snapshot.encode_chunks(64 << 10);
                assert!(chunks.len() > 2, "the state spans several chunks");
                for chunk in &chunks {
                    assert!(chunk.len() <= 64 << 10, "a chunk over its size");
                }
                let at = capturing.take().map_or(0, |(_, at)| at);
                middle = Some((chunks, at));
            }
        }
        if middle.is_none() && capturing.is_none() && records.len() >= 5_000 {
            // A snapshot of this point of the journal, begun as the runtime begins one and
            // captured in steps while the workload goes on.
            capturing = Some((live.server.begin_snapshot(live.now), records.len()));
        }
    }
    assert!(capturing.is_none(), "the capture ended");
    // Every built-in kind and a custom resource were written by a request.
    for rt in RESOURCES {
        assert!(
            live.written.get(rt.plural).copied().unwrap_or(0) > 0,
            "no {} was written: {:?}",
            rt.plural,
            live.written
        );
    }
    assert!(live.written.get("widgets").copied().unwrap_or(0) > 0);
    assert!(
        !live.server.registrations.fingerprint().starts_with("{}"),
        "nodes were registered to stakes"
    );

    let marks = records
        .iter()
        .filter(|r| matches!(Record::decode(r), Ok(Record::Compaction(_))))
        .count();
    assert!(marks > 0, "the compactor's ticks wrote marks");

    // A different seed: whatever was random must come from the records.
    let mut replica = Cluster::empty(config(), [9; 32], T0);
    for record in &records {
        replica
            .replay_record(&Record::decode(record).unwrap())
            .unwrap();
    }
    assert_eq!(replica.store().revision(), live.server.store().revision());
    let (a, b) = (objects(&live.server), objects(&replica));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x,
            y,
            "{} differs after replay:\nlive   {}\nreplay {}",
            x.0,
            String::from_utf8_lossy(&x.2),
            String::from_utf8_lossy(&y.2)
        );
    }
    for ((what, x), (_, y)) in derived(&live.server).into_iter().zip(derived(&replica)) {
        assert!(
            x == y,
            "{what} differs after replay: {}",
            first_difference(&x, &y)
        );
    }

    // A restart from the same records, later and with another seed: the same objects, and
    // revisions continue past whatever the earlier run may have shown without persisting it.
    let later = UnixTime {
        nanos: live.now.nanos + 3_600_000_000_000,
    };
    let last = live.server.store().revision();
    let no_snapshot: &[Vec<u8>] = &[];
    let mut recovered = Cluster::recover(config(), [11; 32], later, no_snapshot, &records).unwrap();
    assert_eq!(objects(&recovered), a, "recovered objects differ");
    let skip = config().max_pending_changes as u64;
    assert_eq!(recovered.store().revision(), last + skip + 1);
    let ring = recovered.watch_ring();
    let mut events = Vec::new();
    assert!(
        ring.read_visible_after(last - 5, 100, &mut events).is_ok() && events.len() == 5,
        "a watch from a revision the records hold continues"
    );
    for phantom in [last + 1, last + skip] {
        assert!(
            ring.read_visible_after(phantom, 100, &mut events).is_err(),
            "a watch from {phantom}, which no record holds, gets 410"
        );
    }
    assert!(ring.read_visible_after(last + skip + 1, 100, &mut Vec::new()) == Ok(0));
    // A watch that was caught up at `last` before the restart (an informer reconnecting with
    // its resourceVersion) is caught up after it too: the skipped revisions hold no event to
    // wait for, and a poll that finds none moves it past them (it used to keep looking: a hot
    // loop in the runtime's watch stream). The next write is delivered.
    let auth = alloc::format!("Bearer {TOKEN}");
    let path = alloc::format!("/api/v1/namespaces?watch=true&resourceVersion={last}");
    let mut req = ApiRequest::new(Method::Get, &path);
    req.authorization = Some(&auth);
    let crate::api::Outcome::Watch(mut watcher) = recovered.handle_request(later, &req) else {
        panic!("a watch");
    };
    assert!(!watcher.caught_up(&ring));
    let mut out = Vec::new();
    assert_eq!(
        watcher.poll(&ring, later, &mut out, 100),
        crate::api::WatchPoll::Idle
    );
    assert!(out.is_empty());
    assert!(watcher.caught_up(&ring), "nothing left to read");
    // From the snapshot taken halfway and the records after it: the same objects and the
    // same derived state as the live run (what a restart after log truncation rebuilds).
    let (chunks, at) = middle.expect("a snapshot was taken");
    assert!(chunks.len() > 1, "the snapshot spans several chunks");
    let from_snapshot =
        Cluster::recover(config(), [12; 32], later, &chunks, &records[at..]).unwrap();
    assert_eq!(
        objects(&from_snapshot),
        a,
        "objects differ after a snapshot restore"
    );
    for ((what, x), (_, y)) in derived(&live.server)
        .into_iter()
        .zip(derived(&from_snapshot))
    {
        // Times a restore cannot know (event expiry, heartbeats, queue times) differ by design.
        if matches!(
            what,
            "event ledger" | "node heartbeats" | "scheduler" | "store usage"
        ) {
            continue;
        }
        // The CRD registry's generation is a cache key for its OpenAPI documents, not state.
        let uncached = |s: &str| match s.rfind(", generation: ") {
            Some(at) => String::from(&s[..at]),
            None => String::from(s),
        };
        let (x, y) = (uncached(&x), uncached(&y));
        assert!(
            x == y,
            "{what} differs after a snapshot restore: {}",
            first_difference(&x, &y)
        );
    }
    assert_eq!(from_snapshot.store().len(), live.server.store().len());
    assert_eq!(
        from_snapshot.store().used_bytes(),
        live.server.store().used_bytes()
    );
    // A damaged snapshot is refused, never half-restored.
    let mut damaged = chunks.clone();
    let tail = damaged.last_mut().unwrap();
    tail.truncate(tail.len() - 3);
    assert!(Cluster::recover(config(), [12; 32], later, &damaged, no_snapshot).is_err());

    // New writes are journaled and continue upward.
    recovered.take_records();
    let status = {
        let auth = alloc::format!("Bearer {TOKEN}");
        let mut req = ApiRequest::new(Method::Post, "/api/v1/namespaces");
        req.authorization = Some(&auth);
        req.content_type = Some("application/json");
        let body = br#"{"metadata":{"name":"after-restart"}}"#;
        req.body = body;
        recovered
            .handle_request(later, &req)
            .into_response()
            .unwrap()
            .status
    };
    assert_eq!(status, 201);
    // The watch from before the restart gets the new namespace.
    ring.set_visible(u64::MAX);
    assert!(!watcher.caught_up(&ring));
    let mut out = Vec::new();
    assert_eq!(
        watcher.poll(&ring, later, &mut out, 100),
        crate::api::WatchPoll::Wrote(1)
    );
    assert!(String::from_utf8_lossy(&out).contains("after-restart"));
    assert!(watcher.caught_up(&ring));
    let journal = recovered.take_records();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].revision(), Some(last + skip + 2));

    // A second restart replays the log across the first one's gap, and skips again; readers in
    // either gap get 410, a reader at a revision the log holds continues.
    let mut all = records.clone();
    all.extend(journal.iter().map(Record::encode));
    let again = UnixTime {
        nanos: later.nanos + 60_000_000_000,
    };
    let twice = Cluster::recover(config(), [13; 32], again, no_snapshot, &all).unwrap();
    let second_last = last + skip + 2;
    assert_eq!(twice.store().revision(), second_last + skip + 1);
    assert_eq!(
        objects(&twice).len(),
        a.len() + 1,
        "the write after the first restart"
    );
    let ring = twice.watch_ring();
    for phantom in [last + 1, second_last + 1] {
        assert!(
            ring.read_visible_after(phantom, 10, &mut Vec::new())
                .is_err()
        );
    }
    let mut events = Vec::new();
    assert!(ring.read_visible_after(last, 10, &mut events).is_ok());
    assert_eq!(
        events.len(),
        1,
        "the one write after the first restart follows"
    );
}

/// A restore fed chunk by chunk, one item each, with the custom objects before their
/// definitions (a snapshot writes them after): the cluster is the same as the one the snapshot
/// was taken of, so objects restore in any order; a chunk after the snapshot ended is refused.
#[test]
fn a_snapshot_restored_chunk_by_chunk_in_any_order_of_kinds_rebuilds_the_cluster() {
    let mut live = Live {
        server: Cluster::empty(config(), [7; 32], T0),
        now: T0,
        rng: Rng(0x5eed_0f16),
        written: BTreeMap::new(),
        serial: 0,
    };
    live.server.bootstrap(T0);
    live.send(
        "customresourcedefinitions",
        Method::Post,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json!({"metadata": {"name": "widgets.g.example.com"},
            "spec": {"group": "g.example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}}),
    );
    live.run_timers();
    for i in 0..3 {
        live.send(
            "widgets",
            Method::Post,
            "/apis/g.example.com/v1/namespaces/default/widgets",
            json!({"apiVersion": "g.example.com/v1", "kind": "Widget",
                "metadata": {"name": alloc::format!("w{i}")}, "spec": {"size": i}}),
        );
    }
    assert_eq!(live.written.get("widgets"), Some(&3), "{:?}", live.written);
    let mut capture = live.server.begin_snapshot(live.now);
    let snapshot = loop {
        if let Some(snapshot) = live.server.continue_snapshot(&mut capture, 1_000).unwrap() {
            break snapshot;
        }
    };
    let items = snapshot_items(&snapshot.encode_chunks(64 << 10));
    let (header, rest) = items.split_first().unwrap();
    let (custom, builtin): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
        rest.iter().partition(|item| is_custom(item));
    assert_eq!(custom.len(), 3, "the snapshot holds the custom objects");
    let mut recovery = super::Recovery::new(config(), [12; 32], live.now);
    for item in core::iter::once(header).chain(custom).chain(builtin) {
        recovery.restore_chunk(&framed(item)).unwrap();
    }
    recovery.end_snapshot().unwrap();
    assert!(
        recovery.restore_chunk(&framed(header)).is_err(),
        "a chunk after the snapshot ended"
    );
    let restored = recovery.finish(live.now).unwrap();
    assert_eq!(objects(&restored), objects(&live.server));
    assert_eq!(
        restored.store().used_bytes(),
        live.server.store().used_bytes()
    );
    assert!(
        restored.crds.get("widgets.g.example.com").is_some(),
        "the definition is installed"
    );
}

/// The items of snapshot chunks (each chunk a run of `u32` length + item).
fn snapshot_items(chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    for chunk in chunks {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            items.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
    }
    items
}

/// One item as a chunk of its own.
fn framed(item: &[u8]) -> Vec<u8> {
    let mut chunk = (item.len() as u32).to_le_bytes().to_vec();
    chunk.extend_from_slice(item);
    chunk
}

/// Whether a snapshot item is an object of a custom resource.
fn is_custom(item: &[u8]) -> bool {
    let mut r = super::change::Reader { bytes: &item[1..] };
    item[0] == 2
        && matches!(
            super::change::read_resource(&mut r),
            Ok(ResourceId::Custom(_))
        )
}

/// Where two descriptions first differ, with a little context.
fn first_difference(x: &str, y: &str) -> String {
    let at = x
        .bytes()
        .zip(y.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(x.len().min(y.len()));
    let start = at.saturating_sub(200);
    let window = |s: &str| {
        String::from_utf8_lossy(&s.as_bytes()[start..(at + 200).min(s.len())]).into_owned()
    };
    alloc::format!("\nlive   …{}\nreplay …{}", window(x), window(y))
}

/// One admin request at `T0`: its status.
fn status_of(server: &mut Cluster, method: Method, path: &str, body: &[u8]) -> u16 {
    let auth = alloc::format!("Bearer {TOKEN}");
    let mut req = ApiRequest::new(method, path);
    req.authorization = Some(&auth);
    req.content_type = Some("application/json");
    req.body = body;
    server
        .handle_request(T0, &req)
        .into_response()
        .unwrap()
        .status
}

#[test]
fn while_the_runtime_cannot_persist_writes_are_refused_and_reads_go_on() {
    use crate::stake::{EventBatch, TrustTheRelay};
    let mut server = Cluster::new(config(), [5; 32], T0);
    server.record_changes(true);
    server.take_records();
    let full = crate::Error::InsufficientStorage("the host's disk is full".into());
    server.refuse_writes(Some(full.clone()));
    let (revision, journaled) = (server.store().revision(), server.journaled());

    let create = br#"{"metadata":{"name":"refused"}}"#;
    assert_eq!(
        status_of(&mut server, Method::Post, "/api/v1/namespaces", create),
        507
    );
    assert_eq!(
        status_of(&mut server, Method::Get, "/api/v1/namespaces", b""),
        200
    );
    let batch = EventBatch {
        checkpoint: 1,
        events: Vec::new(),
        foreign: 0,
    };
    assert_eq!(
        server
            .apply_sui_batch(T0, &batch, &mut TrustTheRelay)
            .unwrap_err(),
        full
    );
    // The server's own work is refused too (its controllers retry later).
    server.handle_timeout(T0);
    assert_eq!(
        (server.store().revision(), server.journaled()),
        (revision, journaled),
        "nothing changed and nothing was journaled"
    );

    server.refuse_writes(None);
    assert_eq!(
        status_of(&mut server, Method::Post, "/api/v1/namespaces", create),
        201
    );
    assert!(server.journaled() > journaled);
}
