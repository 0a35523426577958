//! Revisions from the future and from the past, end to end (issue 13, item 6): a watch or a read
//! from a revision the store has not reached waits and then gets kube's 504 instead of silence,
//! `Exact` lists come from history, garbage revisions are 400, a forged continue token claims
//! nothing, and an in-memory enclave restarted by `dev` answers the previous run's revisions with 410 so
//! informers re-list.

use std::time::{Duration, Instant};

use nautilus_tests::DevCluster;
use nautilus_tests::client::{Reply, tls_config};
use nautilus_tests::simulator::WatchStream;
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn get(c: &DevCluster, path: &str) -> Reply {
    c.request("GET", path, None, &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn create_cm(c: &DevCluster, name: &str, value: &str) -> Value {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        "data": {"v": value}});
    let reply = c
        .request("POST", CMS, Some(body.to_string().as_bytes()), &[])
        .unwrap();
    assert_eq!(reply.status, 201, "{}", text(&reply));
    reply.json()
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion: {object}"))
}

/// Opens a watch with the admin token and returns its events until the server ends it.
fn watch_all(c: &DevCluster, path: &str, during: impl FnOnce()) -> Vec<Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let headers = [("authorization".to_string(), format!("Bearer {}", c.token))];
    let (port, tls) = (c.port, tls_config(&c.ca_pem));
    let path = path.to_string();
    let task = runtime.spawn(async move {
        let mut stream = WatchStream::connect(port, tls, &path, &headers).await?;
        let mut events = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(30), stream.next_event())
            .await
            .map_err(|_| "the watch stayed silent for 30 s".to_string())??
        {
            events.push(event);
        }
        Ok::<_, String>(events)
    });
    during();
    runtime.block_on(task).unwrap().unwrap()
}

#[test]
fn a_watch_from_a_future_revision_ends_with_504_instead_of_staying_silent() {
    let c = DevCluster::start();
    let before = rv(&get(&c, CMS).json());
    let started = Instant::now();
    let events = watch_all(
        &c,
        &format!("{CMS}?watch=1&resourceVersion=99999999999999999"),
        || {
            // Writes while it waits are not what it asked for.
            create_cm(&c, "meanwhile", "1");
        },
    );
    let waited = started.elapsed();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    let status = &events[0]["object"];
    assert_eq!(status["code"], 504, "{status}");
    assert_eq!(status["reason"], "Timeout");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("Timeout: Too large resource version: 99999999999999999, current: "),
        "{message}"
    );
    let current: u64 = message.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(current > before, "{message}");
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
    );
    eprintln!("the future watch was answered after {waited:?}");
}

#[test]
fn reads_from_the_future_get_504_and_garbage_gets_400() {
    let c = DevCluster::start();
    let current = rv(&get(&c, CMS).json());
    let future = current + 1_000_000;
    for path in [
        format!("{CMS}?resourceVersion={future}"),
        format!("{CMS}?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
        format!("/api/v1/namespaces/default?resourceVersion={future}"),
    ] {
        let reply = get(&c, &path);
        assert_eq!(reply.status, 504, "{path}: {}", text(&reply));
        assert_eq!(reply.header("retry-after"), Some("1"));
        let status = reply.json();
        assert_eq!(status["reason"], "Timeout");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
    }
    for bad in ["abc", "-1"] {
        for path in [
            format!("{CMS}?resourceVersion={bad}"),
            format!("/api/v1/namespaces/default?resourceVersion={bad}"),
            format!("{CMS}?watch=1&resourceVersion={bad}"),
        ] {
            let reply = get(&c, &path);
            assert_eq!(reply.status, 400, "{path}: {}", text(&reply));
            assert_eq!(
                reply.json()["message"],
                format!(
                    "invalid resource version: resourceVersion: Invalid value: \"{bad}\": strconv.ParseUint: parsing \"{bad}\": invalid syntax"
                )
            );
        }
    }
    // kubectl shows it too.
    let err = c.kubectl_err(&["get", "--raw", &format!("{CMS}?resourceVersion=abc")]);
    assert!(err.contains("invalid resource version"), "{err}");
}

#[test]
fn exact_lists_come_from_history_and_forged_continue_tokens_claim_nothing() {
    let c = DevCluster::start();
    let first = create_cm(&c, "a", "old");
    let reply = c
        .request(
            "PATCH",
            &format!("{CMS}/a"),
            Some(br#"{"data":{"v":"new"}}"#),
            &[("content-type", "application/merge-patch+json")],
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", text(&reply));
    create_cm(&c, "b", "x");
    let then = get(
        &c,
        &format!(
            "{CMS}?resourceVersion={}&resourceVersionMatch=Exact",
            rv(&first)
        ),
    );
    assert_eq!(then.status, 200, "{}", text(&then));
    let then = then.json();
    assert_eq!(rv(&then), rv(&first));
    // Besides the namespace's kube-root-ca.crt (made before `a`), only `a` as it was then.
    let items: Vec<&Value> = then["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["metadata"]["name"] != "kube-root-ca.crt")
        .collect();
    assert_eq!(items.len(), 1, "{then}");
    assert_eq!(items[0]["data"]["v"], "old");
    // A genuine token pages on; the issue's forgery is refused and claims no revision.
    let page = get(&c, &format!("{CMS}?limit=1")).json();
    let token = page["metadata"]["continue"].as_str().unwrap();
    let next = get(&c, &format!("{CMS}?limit=1&continue={token}"));
    assert_eq!(next.status, 200, "{}", text(&next));
    assert_eq!(next.json()["items"][0]["metadata"]["name"], "b");
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"v":"meta.k8s.io/v1","rv":99999999999999,"start":"default/a"}"#);
    let reply = get(&c, &format!("{CMS}?continue={forged}"));
    assert_eq!(reply.status, 400, "{}", text(&reply));
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid continue token: continue key is not valid"),
        "{}",
        text(&reply)
    );
    let mut tampered: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .unwrap(),
    )
    .unwrap();
    tampered["rv"] = json!(99_999_999_999_999u64);
    let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered.to_string());
    let reply = get(&c, &format!("{CMS}?continue={tampered}"));
    assert_eq!(reply.status, 410, "{}", text(&reply));
    assert_eq!(reply.json()["reason"], "Expired");
}

#[test]
fn an_in_memory_enclave_restarted_answers_the_previous_run_s_revisions_with_410() {
    // Without the durable log (`--in-memory`) a restarted enclave starts empty; with it, see
    // `durable_cluster.rs`.
    let c = DevCluster::start_opts(&["--in-memory"], &[]);
    let created = create_cm(&c, "before-restart", "1");
    let seen = rv(&get(&c, CMS).json());
    let page = get(&c, "/api/v1/namespaces?limit=1").json();
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    let old = c.enclave_pid().expect("the enclave runs");
    nautilus_tests::signal(old, libc::SIGKILL);
    // dev restarts it, empty.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let restarted = c.enclave_pid().is_some_and(|pid| pid != old);
        let answers = || {
            c.request("GET", CMS, None, &[])
                .is_ok_and(|r| r.status == 200)
        };
        if restarted && answers() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the enclave did not come back:\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let now = rv(&get(&c, CMS).json());
    assert!(
        now > seen,
        "the new run's revisions ({now}) start above every one the old run handed out ({seen})"
    );
    assert!(now < 1 << 53, "revisions stay exact in JavaScript");
    // An informer resuming its watch is told to re-list.
    let events = watch_all(&c, &format!("{CMS}?watch=1&resourceVersion={seen}"), || {});
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    let exact = get(
        &c,
        &format!(
            "{CMS}?resourceVersion={}&resourceVersionMatch=Exact",
            rv(&created)
        ),
    );
    assert_eq!(exact.status, 410, "{}", text(&exact));
    let paged = get(&c, &format!("/api/v1/namespaces?limit=1&continue={token}"));
    assert_eq!(paged.status, 410, "{}", text(&paged));
    // kubectl's own watch from a fresh list works at once.
    create_cm(&c, "after-restart", "1");
    let out = c.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    assert!(out.contains("configmap/after-restart"), "{out}");
}
