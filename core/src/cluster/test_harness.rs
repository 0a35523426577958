//! The one harness of the tests that drive a cluster through its API as the administrator, in
//! virtual time: the cluster, a request, the controllers run until they settle, and the causes
//! of a refusal.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{ApiRequest, Method, Outcome, WatchPoll, Watcher};
use crate::cluster::Cluster as Core;
use crate::{Config, UnixTime};

/// The administrator's bearer token.
pub(crate) const ADMIN: &str = "admin";
/// The time of every call.
pub(crate) const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);
/// What kubectl asks for a table.
pub(crate) const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A new cluster that knows the administrator's token, its controllers settled.
pub(crate) fn server() -> Cluster {
    Cluster::new()
}

/// One request as the administrator (a PATCH as a merge patch), accepting `accept`: status and
/// body.
pub(crate) fn call(
    c: &mut Cluster,
    method: Method,
    path: &str,
    accept: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let content_type = if method == Method::Patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    c.request(method, path, accept, body, content_type)
}

/// `req` answered as the runtime answers it: a request that waits (for a revision, or a pod
/// for its namespace's `default` ServiceAccount) is asked again once the controllers due at
/// `now` have run, then at its deadline.
pub(crate) fn answer(server: &mut Core, now: UnixTime, req: &ApiRequest<'_>) -> Outcome {
    let mut req = *req;
    let mut outcome = server.handle_request(now, &req);
    let mut at = now;
    let mut settled = false;
    while let Outcome::Pending { deadline, .. } = outcome {
        req.waiting_since.get_or_insert(now);
        if settled {
            at = deadline.max(at);
        } else {
            for _ in 0..50 {
                if server.poll_timeout().is_none_or(|t| t > now) {
                    break;
                }
                server.handle_timeout(now);
            }
            settled = true;
        }
        outcome = server.handle_request(at, &req);
    }
    outcome
}

/// A refusal's causes as (field, message).
pub(crate) fn causes(answer: &Value) -> Vec<(String, String)> {
    answer["details"]["causes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    (
                        String::from(c["field"].as_str().unwrap_or("")),
                        String::from(c["message"].as_str().unwrap_or("")),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A cluster driven through its API in virtual time.
pub(crate) struct Cluster {
    pub(crate) server: Core,
    pub(crate) now: UnixTime,
}

impl Cluster {
    pub(crate) fn new() -> Self {
        Self::with(Config::default())
    }

    pub(crate) fn with(config: Config) -> Self {
        let mut c = Self::unsettled(config);
        c.settle();
        c
    }

    /// A new cluster whose controllers have not run yet (the tests of what the first timer
    /// does).
    pub(crate) fn unsettled(config: Config) -> Self {
        let now = NOW;
        let config = Config {
            admin_token_sha256: Some(Sha256::digest(ADMIN.as_bytes()).into()),
            ..config
        };
        Self {
            server: Core::new(config, [7; 32], now),
            now,
        }
    }

    pub(crate) fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Value,
        content_type: &str,
    ) -> (u16, Value) {
        self.request(method, path, None, &body, content_type)
    }

    /// One request as the administrator at the cluster's virtual time: status and body.
    pub(crate) fn request(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: &Value,
        content_type: &str,
    ) -> (u16, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).unwrap()
        };
        self.send(method, path, accept, content_type, &bytes)
    }

    /// One request with an already encoded body as the administrator: status and JSON body.
    fn send(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let auth = alloc::format!("Bearer {ADMIN}");
        let mut req = ApiRequest::new(method, path);
        req.authorization = Some(&auth);
        req.accept = accept;
        req.content_type = Some(content_type);
        req.body = body;
        let r = answer(&mut self.server, self.now, &req)
            .into_response()
            .expect("not a watch");
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// `path` read as kubectl's Table (the admin's GET with the Table `Accept`).
    pub(crate) fn table(&mut self, path: &str) -> Value {
        self.request(
            Method::Get,
            path,
            Some(TABLE),
            &Value::Null,
            "application/json",
        )
        .1
    }

    pub(crate) fn get(&mut self, path: &str) -> (u16, Value) {
        self.call(Method::Get, path, Value::Null, "application/json")
    }

    pub(crate) fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::Post, path, body, "application/json")
    }

    pub(crate) fn patch(&mut self, path: &str, body: Value, kind: &str) -> (u16, Value) {
        self.call(Method::Patch, path, body, kind)
    }

    pub(crate) fn delete(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::Delete, path, body, "application/json")
    }

    pub(crate) fn put(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::Put, path, body, "application/json")
    }

    pub(crate) fn merge_patch(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::Patch, path, body, "application/merge-patch+json")
    }

    /// A PUT of an already encoded body (a protobuf one, say) as the administrator.
    pub(crate) fn put_bytes(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        self.send(Method::Put, path, None, content_type, body)
    }

    /// Advances virtual time by `secs`, running every timer that falls due on the way at its
    /// own time.
    pub(crate) fn advance(&mut self, secs: u64) {
        let end = self.now.plus_secs(secs);
        loop {
            let next = self.server.poll_timeout().map(|t| t.max(self.now));
            match next {
                Some(t) if t <= end => {
                    self.now = t;
                    self.server.handle_timeout(t);
                    if self.server.poll_timeout() == Some(t) {
                        self.now = t.plus_secs(1).min(end);
                    }
                }
                _ => break,
            }
        }
        self.now = end;
        self.server.handle_timeout(end);
    }

    /// A watch of `path` (which says `watch=1`) as the administrator, with `accept` if given.
    pub(crate) fn watch(&mut self, path: &str, accept: Option<&str>) -> Watcher {
        let auth = alloc::format!("Bearer {ADMIN}");
        let mut req = ApiRequest::new(Method::Get, path);
        req.authorization = Some(&auth);
        req.accept = accept;
        match self.server.handle_request(self.now, &req) {
            Outcome::Watch(w) => *w,
            other => panic!("not a watch: {:?}", other.into_response()),
        }
    }

    /// Every JSON event `watcher` has to write now.
    pub(crate) fn drain(&self, watcher: &mut Watcher) -> Vec<Value> {
        let mut out = Vec::new();
        let ring = self.server.watch_ring();
        while let WatchPoll::Wrote(_) = watcher.poll(&ring, self.now, &mut out, 100) {}
        out.split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).unwrap())
            .collect()
    }

    /// Runs what is due at the current virtual time, once.
    pub(crate) fn run_timers(&mut self) {
        self.server.handle_timeout(self.now);
    }

    /// Runs the controllers until they have nothing left to do (bounded).
    pub(crate) fn settle(&mut self) {
        for _ in 0..50 {
            if self.server.poll_timeout().is_none_or(|t| t > self.now) {
                return;
            }
            self.server.handle_timeout(self.now);
        }
        panic!("controllers did not settle");
    }

    pub(crate) fn items(&mut self, path: &str) -> Vec<Value> {
        let (code, list) = self.get(path);
        assert_eq!(code, 200, "{list}");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    pub(crate) fn names(&mut self, path: &str) -> Vec<String> {
        self.items(path)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().into())
            .collect()
    }

    /// Reports every pod Running and Ready with an IP, as a kubelet would.
    pub(crate) fn make_pods_ready(&mut self) {
        let now = self.now.rfc3339();
        for (i, pod) in self
            .items("/api/v1/namespaces/default/pods")
            .into_iter()
            .enumerate()
        {
            if pod["status"]["phase"] == "Running" {
                continue;
            }
            let name = pod["metadata"]["name"].as_str().unwrap().to_string();
            let status = json!({"status": {"phase": "Running", "podIP": alloc::format!("10.1.0.{}", i + 1),
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
            let (code, body) = self.patch(
                &alloc::format!("/api/v1/namespaces/default/pods/{name}/status"),
                status,
                "application/merge-patch+json",
            );
            assert_eq!(code, 200, "{body}");
        }
        self.settle();
    }

    pub(crate) fn deployment(&mut self, name: &str) -> Value {
        self.get(&alloc::format!(
            "/apis/apps/v1/namespaces/default/deployments/{name}"
        ))
        .1
    }

    pub(crate) fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
        obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or("").into(),
                    c["reason"].as_str().unwrap_or("").into(),
                    c["message"].as_str().unwrap_or("").into(),
                )
            })
    }

    pub(crate) fn events(&mut self) -> Vec<(String, String)> {
        self.items("/api/v1/namespaces/default/events")
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap().into(),
                    e["message"].as_str().unwrap().into(),
                )
            })
            .collect()
    }
}

/// A refusal's causes as `field: message`.
pub(crate) fn messages(answer: &Value) -> Vec<String> {
    causes(answer)
        .into_iter()
        .map(|(field, message)| alloc::format!("{field}: {message}"))
        .collect()
}

/// The column names of a `Table` answer.
pub(crate) fn column_names(table: &Value) -> Vec<&str> {
    table["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect()
}
