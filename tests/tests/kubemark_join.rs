//! Real kubelets join with Seal tokens (issue 18): ten stakers stake, nine register through
//! the seed's endpoint and the tenth does not, then each runs kubemark's hollow kubelet (the
//! real kubelet over a fake container runtime) whose kubeconfig's credential plugin is
//! `nautilus-seal --exec-credential`, minting one-minute Seal tokens from the staker's key (so
//! client-go must mint again during the test). The kubelets take over their Nodes and Leases
//! (the tenth creates its own, which gets the enclave's record of its stake); a Deployment of
//! 50 replicas becomes Available with every pod Running and Ready on them; a Service's Endpoints
//! and EndpointSlices hold the pods' addresses. A rolling update (`kubectl set image`, then
//! `kubectl rollout undo`) keeps within maxSurge and maxUnavailable, watched pod by pod;
//! `kubectl drain` under a PodDisruptionBudget evicts through `pods/eviction`, is refused with
//! kube's 429 and retries, never breaks the budget, and the pods come back on the other nodes;
//! scaling down to 10 has the kubelets remove the pods; a `kill -9`ed kubelet's Node turns
//! Ready=Unknown, its pods are evicted and replaced on the other nodes. Every non-2xx answer a
//! kubelet got is printed at the end (client-go's `-v=6` request lines), and the unexpected ones
//! fail the test.
//!
//! Builds kubemark with `tests/peers/build.sh` when Go is there (as `peers.rs` does; cached
//! after the first build); skips, saying so, when Go is missing and no kubemark was built.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use nautilus_core::token::hex32;
use nautilus_tests::DevCluster;
use nautilus_tests::kubemark::{
    self, HollowKubelet, PodWatch, Workspace, condition, get, refused_requests, renews_since,
    wait_for, wait_nodes_ready, write_seal_kubeconfig,
};
use nautilus_tests::simulator::{DEFAULT_PACKAGE, SimConfig, Simulator, now_secs, package_arg};
use serde_json::{Value, json};

const NODES: usize = 10;
const REPLICAS: usize = 50;
/// Seconds without a kubelet heartbeat before a node turns Ready=Unknown: two of the kubelet's
/// 10-second lease renewals, so a live kubelet never flaps and a dead one is noticed soon.
const GRACE_SECS: u64 = 20;
/// The pods' own toleration of an unreachable node (kube's default is 300 s).
const TOLERATION_SECS: u64 = 5;
/// The kubelets' Seal token lifetime and how early client-go asks for the next one: every
/// kubelet mints a new token every 30 s, several times during the test.
const TOKEN_TTL: Duration = Duration::from_secs(60);
const REFRESH_BEFORE: Duration = Duration::from_secs(30);
/// The rollout's bounds: 20% of 50 rounded up and 10% rounded down, as kube scales them.
const MAX_SURGE: usize = 10;
const MAX_UNAVAILABLE: usize = 5;
/// The drain's PodDisruptionBudget: at most two of the 50 pods down at a time.
const PDB_MAX_UNAVAILABLE: usize = 2;
const IMAGE: &str = "registry.k8s.io/pause:3.10";
const NEXT_IMAGE: &str = "registry.k8s.io/pause:3.9";

fn deployment(replicas: usize) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "20%", "maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 10,
                    "containers": [{
                        "name": "web",
                        "image": IMAGE,
                        "ports": [{"containerPort": 80}],
                        // A hollow node has one core (cadvisor's fake machine).
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    }],
                    "tolerations": [
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": TOLERATION_SECS},
                        {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": TOLERATION_SECS},
                    ],
                },
            },
        },
    })
    .to_string()
}

const SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "web", "namespace": "default"},
  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}}"#;

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// The Deployment's pods.
fn pods(c: &DevCluster) -> Vec<Value> {
    items(&get(
        c,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
    ))
}

/// A pod a kubelet runs: Running, Ready, with an IP, on one of `nodes`, not terminating.
fn running_on(pod: &Value, nodes: &BTreeSet<String>) -> bool {
    pod.pointer("/status/phase") == Some(&json!("Running"))
        && condition(pod, "Ready") == "True"
        && pod["status"]["podIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty())
        && pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| nodes.contains(n))
        && !terminating(pod)
}

/// Exactly `n` pods, all running on `nodes`, and the Deployment says so.
fn deployment_runs(c: &DevCluster, n: usize, nodes: &BTreeSet<String>) -> Option<Vec<Value>> {
    let pods = pods(c);
    let live: Vec<Value> = pods.iter().filter(|p| !terminating(p)).cloned().collect();
    if live.len() != n || !live.iter().all(|p| running_on(p, nodes)) {
        return None;
    }
    let d = get(c, "/apis/apps/v1/namespaces/default/deployments/web");
    let status = &d["status"];
    let want = json!(n);
    (status["availableReplicas"] == want
        && status["readyReplicas"] == want
        && status["updatedReplicas"] == want
        && condition(&d, "Available") == "True")
        .then_some(live)
}

/// The Deployment's ReplicaSets.
fn replica_sets(c: &DevCluster) -> Vec<Value> {
    items(&get(
        c,
        "/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Dweb",
    ))
}

/// `(pod name, IP, node)` of each pod.
fn addresses_of(pods: &[Value]) -> BTreeSet<(String, String, String)> {
    pods.iter()
        .map(|p| {
            (
                name(p),
                p["status"]["podIP"].as_str().unwrap_or("").to_string(),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The ready addresses of the Service's Endpoints, as `(pod, IP, node)`, if none is not ready.
fn endpoints(c: &DevCluster) -> Option<BTreeSet<(String, String, String)>> {
    let reply = c
        .request("GET", "/api/v1/namespaces/default/endpoints/web", None, &[])
        .ok()?;
    if reply.status != 200 {
        return None;
    }
    let ep = reply.json();
    let mut out = BTreeSet::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        if subset["notReadyAddresses"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return None;
        }
        for a in subset["addresses"].as_array().into_iter().flatten() {
            out.insert((
                a["targetRef"]["name"].as_str().unwrap_or("").to_string(),
                a["ip"].as_str().unwrap_or("").to_string(),
                a["nodeName"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    Some(out)
}

/// The ready endpoints of the Service's EndpointSlices, as `(pod, IP, node)`, if every endpoint
/// not terminating is ready (terminating pods stay listed, `ready: false`, as kube lists them).
fn endpoint_slices(c: &DevCluster) -> Option<BTreeSet<(String, String, String)>> {
    let slices = get(
        c,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb",
    );
    let mut out = BTreeSet::new();
    for slice in items(&slices) {
        if slice["addressType"] != "IPv4" {
            return None;
        }
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            if e["conditions"]["terminating"] == true {
                if e["conditions"]["ready"] == true {
                    return None;
                }
                continue;
            }
            if e["conditions"]["ready"] != true {
                return None;
            }
            out.insert((
                e["targetRef"]["name"].as_str().unwrap_or("").to_string(),
                e["addresses"][0].as_str().unwrap_or("").to_string(),
                e["nodeName"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    Some(out)
}

/// The value of the metric line starting with `series`.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn hollow_kubelets_join_with_seal_tokens_and_run_a_deployment() {
    let kubemark = match kubemark::kubemark_binary() {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!(
                "kubemark_join: SKIPPED: kubemark is not built and `go` is not on the PATH to \
                 build it (tests/peers/build.sh kubemark)"
            );
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let version = kubemark::version(&kubemark).expect("kubemark --version");
    assert!(version.starts_with("v1.32."), "{version}");
    let c = DevCluster::start_with(&[
        &package_arg(&DEFAULT_PACKAGE),
        "--min-stake=1000000000",
        &format!("--node-grace-secs={GRACE_SECS}"),
    ]);
    let sim = Simulator::new(
        c.port,
        &c.ca_pem,
        &c.token,
        SimConfig {
            workers: NODES,
            prefix: "hollow".into(),
            connections: 4,
            labels: BTreeMap::new(),
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    // The stakes reach the enclave as Sui events; all stakers but the last register their
    // nodes with a Seal token (the seed's endpoint creates the Node with the stake's record and
    // its Lease); the last one's kubelet registers its Node itself.
    sim.stake_all().expect("stake");
    let unregistered = NODES - 1;
    for i in 0..unregistered {
        let reply = sim.register_one(i).expect("register");
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let self_registered = sim.worker(unregistered).node.clone();
    assert_eq!(
        c.request(
            "GET",
            &format!("/api/v1/nodes/{self_registered}"),
            None,
            &[]
        )
        .expect("GET node")
        .status,
        404
    );

    let workspace = Workspace::new().expect("kubemark workspace");
    let started = Instant::now();
    let kubelets: Vec<HollowKubelet> = sim
        .workers()
        .iter()
        .map(|w| {
            let kubeconfig = workspace.path().join(format!("{}.kubeconfig", w.node));
            write_seal_kubeconfig(&c, &workspace, w, TOKEN_TTL, REFRESH_BEFORE, &kubeconfig)
                .expect("kubeconfig");
            HollowKubelet::start(&kubemark, &workspace, &w.node, &kubeconfig)
                .expect("start kubemark")
        })
        .collect();
    let nodes: BTreeSet<String> = kubelets.iter().map(|k| k.node.clone()).collect();
    let context = |kubelets: &[HollowKubelet]| kubemark::context(&c, kubelets, 15);

    // 1. Every kubelet takes over its Node: its own version in nodeInfo (the seed's
    //    registration writes k3s's), Ready from the kubelet. Each Node, the self-registered one
    //    too, carries the enclave's record of its staker's stake.
    wait_nodes_ready(&c, &kubelets, &version, Duration::from_secs(90));
    let nodes_ready = started.elapsed();
    for w in sim.workers() {
        let n = &w.node;
        let node = get(&c, &format!("/api/v1/nodes/{n}"));
        let annotations = &node["metadata"]["annotations"];
        assert_eq!(
            (
                &annotations["nautilus.io/stake-id"],
                &annotations["nautilus.io/staker-address"]
            ),
            (&json!(hex32(&w.stake_id)), &json!(w.owner)),
            "the enclave's stake record on {n}: {node}"
        );
        assert_eq!(
            node["metadata"]["labels"]["kubernetes.io/hostname"], *n,
            "the kubelet's own labels: {node}"
        );
        let lease = get(
            &c,
            &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{n}"),
        );
        assert_eq!(lease["spec"]["holderIdentity"], *n, "{lease}");
    }
    println!("kubemark_join: {NODES} Nodes Ready from their kubelets in {nodes_ready:.1?}");

    // 2. 50 replicas, all Running and Ready on the hollow nodes.
    let created = Instant::now();
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&deployment(REPLICAS)));
    assert!(out.status.success(), "{out:?}");
    let running = wait_for(
        Duration::from_secs(120),
        "50 pods Running and Ready, the Deployment Available",
        || deployment_runs(&c, REPLICAS, &nodes),
        || {
            format!(
                "pods: {:?}\n{}",
                pods(&c)
                    .iter()
                    .map(|p| (
                        name(p),
                        p["spec"]["nodeName"].clone(),
                        p["status"]["phase"].clone()
                    ))
                    .collect::<Vec<_>>(),
                context(&kubelets)
            )
        },
    );
    let pods_running = created.elapsed();
    let spread: BTreeSet<&str> = running
        .iter()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    println!(
        "kubemark_join: {REPLICAS} pods Running and Ready in {pods_running:.1?} on {} nodes",
        spread.len()
    );
    assert!(
        spread.len() > 1,
        "the scheduler spreads the replicas: {spread:?}"
    );

    // 3. A Service over them: Endpoints and EndpointSlices hold every pod's address.
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(SERVICE));
    assert!(out.status.success(), "{out:?}");
    let want = addresses_of(&running);
    wait_for(
        Duration::from_secs(30),
        "the Service's Endpoints and EndpointSlices to hold the 50 pods",
        || (endpoints(&c)? == want && endpoint_slices(&c)? == want).then_some(()),
        || {
            format!(
                "want {want:?}\nendpoints {:?}\nslices {:?}",
                endpoints(&c),
                endpoint_slices(&c)
            )
        },
    );

    // 4. A rolling update: the new ReplicaSet scales up and the old one down within maxSurge
    //    and maxUnavailable, checked on every pod event of a `kubectl get -w`; `kubectl rollout
    //    status` waits for it; the old ReplicaSet ends at 0. `kubectl rollout undo` then brings
    //    the first template (and its ReplicaSet) back the same way.
    let watch = PodWatch::start(&c, "default", "app=web");
    wait_for(
        Duration::from_secs(30),
        "the pod watch to see the 50 pods",
        || (watch.counts() == (REPLICAS, REPLICAS)).then_some(()),
        || format!("the watch sees {:?}", watch.counts()),
    );
    let first_rs = replica_sets(&c);
    assert_eq!(first_rs.len(), 1, "{first_rs:?}");
    let first_rs = name(&first_rs[0]);
    let mut rolled_rs = String::new();
    for (step, image, revision) in [("set image", NEXT_IMAGE, "2"), ("rollout undo", IMAGE, "3")] {
        let rolling = Instant::now();
        watch.restart_extremes();
        if image == NEXT_IMAGE {
            c.kubectl_ok(&["set", "image", "deployment/web", &format!("web={image}")]);
        } else {
            let out = c.kubectl_ok(&["rollout", "undo", "deployment/web"]);
            assert!(out.contains("rolled back"), "{out}");
        }
        let out = c.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
        assert!(out.contains("successfully rolled out"), "{out}");
        let live = wait_for(
            Duration::from_secs(60),
            "the new template's pods Running and Ready, the old ReplicaSet at 0",
            || {
                let live = deployment_runs(&c, REPLICAS, &nodes)?;
                let sets = replica_sets(&c);
                let scaled_down = sets
                    .iter()
                    .filter(|rs| rs["spec"]["template"]["spec"]["containers"][0]["image"] != image)
                    .all(|rs| rs["spec"]["replicas"] == 0 && rs["status"]["replicas"] == 0);
                (scaled_down && sets.len() == 2).then_some((live, sets))
            },
            || context(&kubelets),
        );
        let (live, sets) = live;
        assert!(
            live.iter()
                .all(|p| p["spec"]["containers"][0]["image"] == image),
            "{step}: every pod runs {image}"
        );
        let current: Vec<String> = sets
            .iter()
            .filter(|rs| rs["spec"]["replicas"] == REPLICAS)
            .map(name)
            .collect();
        assert_eq!(current.len(), 1, "{step}: {sets:?}");
        if image == NEXT_IMAGE {
            assert_ne!(current[0], first_rs, "a new ReplicaSet");
            rolled_rs = current[0].clone();
        } else {
            assert_eq!(
                current[0], first_rs,
                "the undo scales the first ReplicaSet back up"
            );
        }
        let d = get(&c, "/apis/apps/v1/namespaces/default/deployments/web");
        assert_eq!(
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], revision,
            "{d}"
        );
        let (most, fewest_ready) = watch.extremes();
        println!(
            "kubemark_join: {step} rolled out in {:.1?}: at most {most} pods, at least \
             {fewest_ready} Ready",
            rolling.elapsed()
        );
        assert!(
            most <= REPLICAS + MAX_SURGE,
            "{step}: {most} pods at once, more than {REPLICAS} + maxSurge {MAX_SURGE}"
        );
        assert!(
            fewest_ready >= REPLICAS - MAX_UNAVAILABLE,
            "{step}: {fewest_ready} Ready pods, fewer than {REPLICAS} - maxUnavailable \
             {MAX_UNAVAILABLE}"
        );
    }
    assert!(!rolled_rs.is_empty());

    // 5. Drain a node under a PodDisruptionBudget of maxUnavailable 2: `kubectl drain` cordons
    //    it and evicts its pods through `pods/eviction`; evictions past the budget are refused
    //    with kube's 429 and kubectl retries them; each evicted pod gets the DisruptionTarget
    //    condition, the hollow kubelet ends it gracefully, the replacements run on the other
    //    nodes, and the budget holds on every pod event. Then `kubectl uncordon`.
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": PDB_MAX_UNAVAILABLE,
                 "selector": {"matchLabels": {"app": "web"}}}});
    let out = c.kubectl_with_input(&["create", "-f", "-"], Some(&pdb.to_string()));
    assert!(out.status.success(), "{out:?}");
    const PDB: &str = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web";
    let budget_settled = |what: &str| {
        wait_for(
            Duration::from_secs(30),
            what,
            || {
                let pdb = get(&c, PDB);
                let status = &pdb["status"];
                (status["observedGeneration"] == 1
                    && status["currentHealthy"] == REPLICAS
                    && status["desiredHealthy"] == REPLICAS - PDB_MAX_UNAVAILABLE
                    && status["expectedPods"] == REPLICAS
                    && status["disruptionsAllowed"] == PDB_MAX_UNAVAILABLE
                    && condition(&pdb, "DisruptionAllowed") == "True")
                    .then_some(())
            },
            || get(&c, PDB).to_string(),
        );
    };
    budget_settled("the budget to allow 2 disruptions of 50 healthy pods");
    let live = deployment_runs(&c, REPLICAS, &nodes).expect("50 pods run before the drain");
    let mut per_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &live {
        per_node
            .entry(p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
            .or_default()
            .insert(name(p));
    }
    let (drained, drained_pods) = per_node
        .into_iter()
        .max_by_key(|(_, pods)| pods.len())
        .expect("a node runs pods");
    assert!(
        drained_pods.len() > PDB_MAX_UNAVAILABLE,
        "{drained} runs {} pods: the budget must refuse some",
        drained_pods.len()
    );
    watch.restart_extremes();
    let draining = Instant::now();
    let out = c.kubectl(&[
        "drain",
        &drained,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=180s",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "drain:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("node/{drained} cordoned"))
            && stdout.contains(&format!("node/{drained} drained")),
        "{stdout}"
    );
    let refusals = stderr
        .lines()
        .filter(|l| {
            l.contains("(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.")
        })
        .count();
    assert!(
        refusals > 0,
        "the budget refused evictions and kubectl retried:\n{stdout}\n{stderr}"
    );
    let drain_took = draining.elapsed();
    let node = get(&c, &format!("/api/v1/nodes/{drained}"));
    assert_eq!(node["spec"]["unschedulable"], true, "{node}");
    let others: BTreeSet<String> = nodes.iter().filter(|n| **n != drained).cloned().collect();
    let after = wait_for(
        Duration::from_secs(60),
        "50 pods running on the other nodes",
        || deployment_runs(&c, REPLICAS, &others),
        || context(&kubelets),
    );
    assert!(after.iter().all(|p| !drained_pods.contains(&name(p))));
    let (_, fewest_ready) = watch.extremes();
    assert!(
        fewest_ready >= REPLICAS - PDB_MAX_UNAVAILABLE,
        "the budget broke: {fewest_ready} Ready pods"
    );
    let evicted = watch.evicted();
    assert!(
        drained_pods.is_subset(&evicted),
        "evicted through the eviction API: {drained_pods:?} marked {evicted:?}"
    );
    budget_settled("the budget back at 2 disruptions");
    let out = c.kubectl_ok(&["uncordon", &drained]);
    assert!(out.contains(&format!("node/{drained} uncordoned")), "{out}");
    let node = get(&c, &format!("/api/v1/nodes/{drained}"));
    assert!(node["spec"]["unschedulable"] != true, "{node}");
    c.kubectl_ok(&["delete", "poddisruptionbudget", "web"]);
    println!(
        "kubemark_join: drained {drained} ({} pods) in {drain_took:.1?}: {refusals} evictions \
         refused by the budget and retried, at least {fewest_ready} pods Ready throughout",
        drained_pods.len()
    );
    drop(watch);

    // 6. Scale down to 10: the kubelets stop the pods and confirm their deletion.
    let scaled = Instant::now();
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=10"]);
    let ten = wait_for(
        Duration::from_secs(60),
        "10 pods left, the others deleted by their kubelets",
        || {
            let live = deployment_runs(&c, 10, &nodes)?;
            (pods(&c).len() == 10).then_some(live)
        },
        || context(&kubelets),
    );
    let want = addresses_of(&ten);
    wait_for(
        Duration::from_secs(30),
        "the Service's endpoints to follow the scale-down",
        || (endpoints(&c)? == want && endpoint_slices(&c)? == want).then_some(()),
        || format!("want {want:?}\nendpoints {:?}", endpoints(&c)),
    );
    println!(
        "kubemark_join: scaled down to 10 in {:.1?}",
        scaled.elapsed()
    );

    // 7. kill -9 a kubelet that runs some of them: its Node turns Ready=Unknown, its pods are
    //    evicted once their toleration runs out, and replaced on the other nodes.
    let victim = ten[0]["spec"]["nodeName"]
        .as_str()
        .expect("nodeName")
        .to_string();
    let victim_pods: BTreeSet<String> = ten
        .iter()
        .filter(|p| p["spec"]["nodeName"] == victim.as_str())
        .map(name)
        .collect();
    let killed = Instant::now();
    kubelets
        .iter()
        .find(|k| k.node == victim)
        .expect("the victim's kubelet")
        .kill();
    wait_for(
        Duration::from_secs(GRACE_SECS + 30),
        "the killed kubelet's Node to turn Ready=Unknown",
        || {
            (condition(&get(&c, &format!("/api/v1/nodes/{victim}")), "Ready") == "Unknown")
                .then_some(())
        },
        || context(&kubelets),
    );
    let unknown = killed.elapsed();
    let survivors: BTreeSet<String> = nodes.iter().filter(|n| **n != victim).cloned().collect();
    let replaced = wait_for(
        Duration::from_secs(TOLERATION_SECS + 60),
        "the dead node's pods evicted and replaced on the others",
        || {
            let all = pods(&c);
            let evicted = victim_pods
                .iter()
                .all(|v| all.iter().find(|p| name(p) == *v).is_none_or(terminating));
            if !evicted {
                return None;
            }
            deployment_runs(&c, 10, &survivors)
        },
        || context(&kubelets),
    );
    assert!(
        replaced.iter().all(|p| !victim_pods.contains(&name(p))),
        "{replaced:?}"
    );
    let want = addresses_of(&replaced);
    wait_for(
        Duration::from_secs(30),
        "the Service's endpoints to drop the evicted pods",
        || (endpoints(&c)? == want && endpoint_slices(&c)? == want).then_some(()),
        || format!("want {want:?}\nendpoints {:?}", endpoints(&c)),
    );
    println!(
        "kubemark_join: killed {victim}'s kubelet: Ready=Unknown after {unknown:.1?}, its {} \
         pods replaced after {:.1?}",
        victim_pods.len(),
        killed.elapsed()
    );

    // 8. Past the first tokens' lifetime, the surviving kubelets still renew their Leases and
    //    keep their Nodes Ready: client-go ran the plugin again before each token expired, the
    //    enclave verified the new tokens and refused none.
    let first_tokens_expired = started + TOKEN_TTL + Duration::from_secs(5);
    wait_for(
        TOKEN_TTL + Duration::from_secs(60),
        "the surviving kubelets to keep their Nodes Ready past their first token's expiry",
        || {
            if Instant::now() < first_tokens_expired {
                return None;
            }
            let recently = now_secs().saturating_sub(GRACE_SECS + 1);
            survivors
                .iter()
                .all(|n| renews_since(&c, n, recently))
                .then_some(())
        },
        || context(&kubelets),
    );
    let metrics = c
        .request("GET", "/metrics", None, &[])
        .expect("metrics")
        .body;
    let metrics = String::from_utf8_lossy(&metrics);
    let accepted = sample(
        &metrics,
        "nautilus_token_validations_total{result=\"accepted\"",
    );
    let rejected = sample(
        &metrics,
        "nautilus_token_validations_total{result=\"rejected\"",
    );
    assert_eq!(
        rejected, 0.0,
        "no kubelet presented a stale token:\n{metrics}"
    );
    // One token per registration, one first token per kubelet, and at least one more per
    // surviving kubelet.
    let minimum = NODES + NODES + (NODES - 1);
    assert!(
        accepted >= minimum as f64,
        "the kubelets minted new tokens: {accepted} verified, want at least {minimum}"
    );

    // 9. What the kubelets were refused. Expected, as kube-apiserver answers them too: the
    //    create of a Node that already exists (409; the seed's endpoint registered it, and the
    //    kubelet then reads and patches it), the GETs of its own CSINode before it creates one
    //    (404: once while waiting for the API server, once before the create), and
    //    optimistic-concurrency conflicts on writes (409). The self-registered kubelet may also
    //    read its Node and its Lease before it has created the Node (404, as in kube) and find
    //    its Lease create refused (409): the enclave writes a node's Lease with its Node, as
    //    register-worker does, where kube leaves it to the kubelet, which then reads and renews
    //    the one that is there. Anything else is a gap.
    let mut refused: BTreeMap<kubemark::Refusal, usize> = BTreeMap::new();
    for k in &kubelets {
        for (what, n) in refused_requests(&k.logs()) {
            *refused.entry(what).or_insert(0) += n;
        }
    }
    println!("kubemark_join: non-2xx answers the kubelets got (verb, path, code: count):");
    for ((verb, path, code), n) in &refused {
        println!("  {verb} {path} {code}: {n}");
    }
    let own_lease =
        format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self_registered}");
    let own_node = format!("/api/v1/nodes/{self_registered}");
    let expected = |verb: &str, path: &str, code: u16| match (verb, code) {
        ("POST", 409) => {
            path == "/api/v1/nodes"
                || path == "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        }
        ("PUT" | "PATCH", 409) => true,
        ("GET", 404) => {
            path == own_lease
                || path == own_node
                || path
                    .strip_prefix("/apis/storage.k8s.io/v1/csinodes/")
                    .is_some_and(|node| nodes.contains(node))
        }
        _ => false,
    };
    let unexpected: Vec<_> = refused
        .iter()
        .filter(|((verb, path, code), _)| !expected(verb, path, *code))
        .collect();
    assert!(
        unexpected.is_empty(),
        "the kubelets were refused: {unexpected:?}"
    );
    println!(
        "kubemark_join: {accepted} Seal tokens verified, none refused; the whole run took {:.1?}",
        started.elapsed()
    );
    drop(kubelets);
}
