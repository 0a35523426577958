//! The pod subresources kube-apiserver hands to the pod's kubelet (`log`, `exec`, `attach`,
//! `portforward`): core checks the request as kube's `LogLocation`, `ExecLocation`,
//! `AttachLocation` and `PortForwardLocation` do and resolves where the kubelet is; the runtime
//! makes the connection and moves the bytes ([`KubeletCall`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use super::not_found;
use crate::api::request::{ApiRequest, ApiResponse, Method, Query};
use crate::api::{Cluster, Outcome};
use crate::cluster::object::parse_stored;
use crate::error::Cause;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, json as j};

/// The pod subresources that reach the kubelet.
pub(crate) const SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward"];

/// The kubelet's port when its Node says none (kube-apiserver's `--kubelet-port` default).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// Node address types tried in order for the kubelet's address. kube-apiserver's default puts
/// `Hostname` first; k3s passes `InternalIP,ExternalIP,Hostname`, which is what stakers' nodes
/// need (their hostnames resolve nowhere the proxy can see, and the proxy's kubelet allowlist is
/// by address).
const PREFERRED_ADDRESS_TYPES: &[&str] = &["InternalIP", "ExternalIP", "Hostname"];

/// What the runtime does for a connect subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletCallKind {
    /// `GET /containerLogs/...`: a streamed `text/plain` answer (flushed as it comes when
    /// `follow`).
    Logs {
        /// The client asked to follow the log.
        follow: bool,
    },
    /// `exec` or `attach`: an HTTP/1.1 Upgrade (SPDY or WebSocket) to the kubelet's remote
    /// command server, with the streams the client asked for (a WebSocket
    /// `v5.channel.k8s.io` client is answered by the runtime and carried to the kubelet as
    /// SPDY with exactly these streams, as kube's stream translator does).
    RemoteCommand(StreamOptions),
    /// `portforward`: an HTTP/1.1 Upgrade (SPDY, or SPDY tunnelled in WebSocket) to the
    /// kubelet's port-forward server.
    PortForward,
}

impl KubeletCallKind {
    /// The request is an HTTP/1.1 Upgrade whose bytes are copied both ways once the kubelet
    /// answers 101 (exec, attach, port-forward).
    pub fn is_upgrade(&self) -> bool {
        !matches!(self, Self::Logs { .. })
    }
}

/// The streams of an `exec` or `attach` (kube's `PodExecOptions`/`PodAttachOptions` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamOptions {
    /// `stdin`: the client sends the container's input.
    pub stdin: bool,
    /// `stdout`: the container's output is sent back.
    pub stdout: bool,
    /// `stderr`: the container's error output is sent back (not with a TTY).
    pub stderr: bool,
    /// `tty`: the container's terminal, resized by the client.
    pub tty: bool,
}

/// A request to relay to a pod's kubelet, decided and checked by core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletCall {
    /// The node the pod is bound to; the kubelet's serving certificate must name it.
    pub node: String,
    /// The kubelet's address (from the Node's `status.addresses`).
    pub host: String,
    /// The kubelet's port (`status.daemonEndpoints.kubeletEndpoint.Port`, default 10250).
    pub port: u16,
    /// The HTTP method to use on the kubelet.
    pub method: Method,
    /// Path and query on the kubelet, as kube-apiserver builds them.
    pub path_and_query: String,
    /// How the answer is carried back.
    pub kind: KubeletCallKind,
    /// The pod's name (kube's error texts name it).
    pub pod: String,
}

impl KubeletCall {
    /// `https://host:port/path?query`, as kube's errors show the location.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            alloc::format!(
                "https://[{}]:{}{}",
                self.host,
                self.port,
                self.path_and_query
            )
        } else {
            alloc::format!("https://{}:{}{}", self.host, self.port, self.path_and_query)
        }
    }
}

impl Cluster {
    /// Answers `GET pods/{name}/log`, and `GET`/`POST` of `exec`, `attach` and `portforward`,
    /// with the kubelet call to make (or kube's error before any connection).
    pub(super) fn connect(
        &self,
        req: &ApiRequest<'_>,
        namespace: &str,
        name: &str,
        subresource: &str,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let allowed = match subresource {
            "log" => matches!(req.method, Method::Get | Method::Head),
            _ => matches!(req.method, Method::Get | Method::Post),
        };
        if !allowed {
            return Err(Error::MethodNotAllowed(alloc::format!(
                "the server does not allow this method on the requested resource ({})",
                req.path
            )));
        }
        let log_params = if subresource == "log" {
            Some(log_options(name, query)?)
        } else {
            None
        };
        let key = ObjectKey::new(ResourceId::Pods, namespace, name);
        let stored = self
            .store
            .get(&key)
            .ok_or_else(|| not_found(ResourceId::Pods.info(), name))?;
        let pod = parse_stored(stored)?;
        let container = if subresource == "portforward" {
            None
        } else {
            Some(container(&pod, name, query.get("container").unwrap_or(""))?)
        };
        let node = j::str_at(&pod, "/spec/nodeName");
        if node.is_empty() {
            if subresource == "log" {
                // kube's LogLocation gives no location, and the answer is an empty log.
                let mut empty = ApiResponse::text(200, "");
                empty.content_type = "text/plain";
                return Ok(empty.into());
            }
            return Err(Error::BadRequest(alloc::format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let (host, port) = self.kubelet_address(node)?;
        let (path, params, kind, method) = match (subresource, log_params) {
            ("log", Some((params, follow))) => (
                alloc::format!(
                    "/containerLogs/{namespace}/{name}/{}",
                    container.unwrap_or_default()
                ),
                params,
                KubeletCallKind::Logs { follow },
                Method::Get,
            ),
            ("portforward", _) => (
                alloc::format!("/portForward/{namespace}/{name}"),
                port_forward_params(query)?,
                KubeletCallKind::PortForward,
                req.method,
            ),
            (verb, _) => {
                let (params, options) = stream_params(query, verb == "exec")?;
                (
                    alloc::format!(
                        "/{verb}/{namespace}/{name}/{}",
                        container.unwrap_or_default()
                    ),
                    params,
                    KubeletCallKind::RemoteCommand(options),
                    req.method,
                )
            }
        };
        Ok(Outcome::Kubelet(alloc::boxed::Box::new(KubeletCall {
            node: node.to_string(),
            host,
            port,
            method,
            path_and_query: with_query(path, &params),
            kind,
            pod: name.to_string(),
        })))
    }

    /// kube's `NodeConnectionInfoGetter`: the registered Node's preferred address and its
    /// kubelet port. Only a Node in the store is ever named, so a request cannot point the
    /// enclave at an address of its choosing.
    fn kubelet_address(&self, node_name: &str) -> Result<(String, u16), Error> {
        let key = ObjectKey::new(ResourceId::Nodes, "", node_name);
        let stored = self
            .store
            .get(&key)
            .ok_or_else(|| not_found(ResourceId::Nodes.info(), node_name))?;
        let node = parse_stored(stored)?;
        let addresses = node
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let host = PREFERRED_ADDRESS_TYPES.iter().find_map(|wanted| {
            addresses
                .iter()
                .find(|a| j::str_at(a, "/type") == *wanted && !j::str_at(a, "/address").is_empty())
                .map(|a| j::str_at(a, "/address").to_string())
        });
        let Some(host) = host else {
            let known: Vec<String> = addresses
                .iter()
                .map(|a| {
                    alloc::format!("{{{} {}}}", j::str_at(a, "/type"), j::str_at(a, "/address"))
                })
                .collect();
            return Err(Error::Internal(alloc::format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            )));
        };
        let port = node
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_KUBELET_PORT);
        Ok((host, port))
    }
}

/// kube's `validateContainer`: the named container must be in the pod (containers, init or
/// ephemeral); with none named, the pod's only container.
fn container(pod: &Value, pod_name: &str, wanted: &str) -> Result<String, Error> {
    let names = |list: &str| -> Vec<String> {
        pod.pointer(list)
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| j::str_at(c, "/name").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("/spec/containers");
    let mut all = names("/spec/initContainers");
    all.extend(containers.iter().cloned());
    all.extend(names("/spec/ephemeralContainers"));
    if wanted.is_empty() {
        return match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Error::BadRequest(alloc::format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            _ => Err(Error::BadRequest(alloc::format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                visit_order(pod).join(" ")
            ))),
        };
    }
    if all.iter().any(|c| c == wanted) {
        Ok(wanted.to_string())
    } else {
        Err(Error::BadRequest(alloc::format!(
            "container {wanted} is not valid for pod {pod_name}"
        )))
    }
}

/// kube's `VisitContainers` order: init containers, containers, ephemeral containers.
fn visit_order(pod: &Value) -> Vec<String> {
    [
        "/spec/initContainers",
        "/spec/containers",
        "/spec/ephemeralContainers",
    ]
    .iter()
    .filter_map(|list| pod.pointer(list).and_then(Value::as_array))
    .flatten()
    .map(|c| j::str_at(c, "/name").to_string())
    .collect()
}

/// An integer query parameter, as kube's query conversion reads an `int64` (400 otherwise).
fn int64(query: &Query, name: &str) -> Result<Option<i64>, Error> {
    match query.get(name) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            Error::BadRequest(alloc::format!(
                "strconv.ParseInt: parsing {text:?}: invalid syntax"
            ))
        }),
    }
}

/// `PodLogOptions` from the query, validated as `ValidatePodLogOptions`: the kubelet's query
/// parameters (in `url.Values.Encode` order, sorted) and whether the log is followed.
fn log_options(pod: &str, query: &Query) -> Result<(Vec<(String, String)>, bool), Error> {
    let follow = query.flag("follow")?;
    let previous = query.flag("previous")?;
    let timestamps = query.flag("timestamps")?;
    let since_seconds = int64(query, "sinceSeconds")?;
    let tail_lines = int64(query, "tailLines")?;
    let limit_bytes = int64(query, "limitBytes")?;
    let since_time = match query.get("sinceTime").filter(|t| !t.is_empty()) {
        Some(text) => Some(
            crate::metatime::parse(text, crate::metatime::Precision::Seconds)
                .map_err(Error::BadRequest)?,
        ),
        None => None,
    };
    let mut causes = Vec::new();
    if let Some(n) = tail_lines.filter(|n| *n < 0) {
        causes.push(int_invalid(
            "tailLines",
            n,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = limit_bytes.filter(|n| *n < 1) {
        causes.push(int_invalid("limitBytes", n, "must be greater than 0"));
    }
    match (since_seconds, since_time) {
        (Some(_), Some(_)) => causes.push(Cause::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(n), None) if n < 1 => {
            causes.push(int_invalid("sinceSeconds", n, "must be greater than 0"));
        }
        _ => {}
    }
    if query.get("stream").is_some() {
        // kube 1.32 serves `stream` only behind the alpha PodLogsQuerySplitStreams gate.
        causes.push(Cause::forbidden("stream", "may not be specified"));
    }
    if !causes.is_empty() {
        return Err(Error::Invalid {
            kind: "PodLogOptions".into(),
            name: pod.into(),
            causes,
        });
    }
    let mut params: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: String| params.push((k.to_string(), v));
    if follow {
        add("follow", "true".into());
    }
    if previous {
        add("previous", "true".into());
    }
    if timestamps {
        add("timestamps", "true".into());
    }
    if let Some(n) = since_seconds {
        add("sinceSeconds", n.to_string());
    }
    if let Some(t) = since_time
        && let Some(text) = crate::metatime::format(t, crate::metatime::Precision::Seconds)
    {
        add("sinceTime", text);
    }
    if let Some(n) = tail_lines {
        add("tailLines", n.to_string());
    }
    if let Some(n) = limit_bytes {
        add("limitBytes", n.to_string());
    }
    Ok((params, follow))
}

/// Go's `field.Invalid` of an integer: `Invalid value: -1: <detail>`.
fn int_invalid(field: &str, value: i64, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: alloc::format!("Invalid value: {value}: {detail}"),
        field: field.into(),
    }
}

/// kube's `streamParams` of `PodExecOptions` / `PodAttachOptions`: `input`, `output`, `error`,
/// `tty` as `1`, and each `command`; and the streams asked for.
fn stream_params(
    query: &Query,
    exec: bool,
) -> Result<(Vec<(String, String)>, StreamOptions), Error> {
    let mut params = Vec::new();
    let mut options = StreamOptions::default();
    for (option, param, flag) in [
        ("stdin", "input", &mut options.stdin),
        ("stdout", "output", &mut options.stdout),
        ("stderr", "error", &mut options.stderr),
        ("tty", "tty", &mut options.tty),
    ] {
        if query.flag(option)? {
            *flag = true;
            params.push((param.to_string(), "1".to_string()));
        }
    }
    if exec {
        for command in query.all("command") {
            params.push(("command".to_string(), command.to_string()));
        }
    }
    Ok((params, options))
}

/// kube's `streamParams` of `PodPortForwardOptions`: the `ports` joined by commas, each a
/// valid port (kube's conversion refuses others).
fn port_forward_params(query: &Query) -> Result<Vec<(String, String)>, Error> {
    let mut ports = Vec::new();
    for text in query.all("ports") {
        for one in text.split(',').filter(|p| !p.is_empty()) {
            let port = one.parse::<i32>().map_err(|_| {
                Error::BadRequest(alloc::format!(
                    "strconv.ParseInt: parsing {one:?}: invalid syntax"
                ))
            })?;
            ports.push(port.to_string());
        }
    }
    if ports.is_empty() {
        return Ok(Vec::new());
    }
    Ok(alloc::vec![("port".to_string(), ports.join(","))])
}

/// `path?query` with the parameters encoded as Go's `url.Values.Encode` does (sorted by key,
/// each value in its order, `QueryEscape`d).
fn with_query(path: String, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = path;
    for (i, (k, v)) in sorted.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        query_escape(&mut out, k);
        out.push('=');
        query_escape(&mut out, v);
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(
                    HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
                ));
                out.push(char::from(
                    HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0'),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_encode_as_go_does() {
        let params = [
            ("command".to_string(), "sh".to_string()),
            ("output".to_string(), "1".to_string()),
            ("command".to_string(), "echo a b&c=/é".to_string()),
            ("input".to_string(), "1".to_string()),
        ];
        assert_eq!(
            with_query("/exec/d/p/c".into(), &params),
            "/exec/d/p/c?command=sh&command=echo+a+b%26c%3D%2F%C3%A9&input=1&output=1"
        );
        assert_eq!(with_query("/x".into(), &[]), "/x");
    }
}
