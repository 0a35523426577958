//! The K3s supervisor API a K3s v1.32 agent joins through, answered in the enclave with the
//! staker's Seal token as the agent's credential ([`crate::k3s`] has the token format).
//!
//! What k3s v1.32 serves (`pkg/server/handlers/router.go`, `handlers.go`) and what is served
//! here:
//! - `/cacerts` (anonymous): the CA bundle the agent trusts for the API server. Here the
//!   cluster CA in enclave TLS mode (it issues the enclave's TLS certificate; both are bound in
//!   the attestation document), as k3s answers its server CA; in proxy TLS mode the CA of
//!   `--cluster-ca-file`, which the proxy's certificate chains to. `/ping` (anonymous) answers
//!   `pong`.
//! - Under `/v1-k3s/`, for a caller in `k3s:agent`, `system:nodes` or `system:bootstrappers`
//!   (here: a valid Seal token as basic-auth password of user `node`, or a cluster-CA node
//!   certificate): `serving-kubelet.crt`, `client-kubelet.crt` (both need the headers
//!   `K3s-Node-Name` and `K3s-Node-Password`; the serving one reads `K3s-Node-IP`, a comma
//!   list), `client-kube-proxy.crt`, `client-k3s-controller.crt`, `client-ca.crt`,
//!   `server-ca.crt`, `apiservers`, `config` and `readyz`. Since v1.32 the agent makes its own
//!   keys and POSTs a DER PKCS#10 request with an empty subject, whose key alone the server
//!   uses; the answer is the certificate and the CA that signed it, PEM (a GET makes the server
//!   send a key it made: refused here, the enclave never holds a node's key).
//! - `connect`, for a caller in `system:nodes` only (the agent dials it with its kubelet client
//!   certificate): the agent's remotedialer websocket, by which kube-apiserver reaches kubelets
//!   through the agent. The agent's `tunnel.Setup` waits for it before it starts the kubelet.
//!   Accepted and held open here (core answers 101, the runtime upgrades and answers pings)
//!   but never dialed through: the enclave reaches kubelets through the proxy's outbound
//!   relay, and the config answered says egress-selector mode `disabled`.
//! - Server-only paths (`encrypt/*`, `cert/cacerts`, `server-bootstrap`, `token`) are 403 to
//!   an agent, as in k3s; other paths fall through to the API server (kube's 404).
//!
//! Refusals are k3s' `util.SendError` Status answers: no credential 403 `forbidden`, a
//! credential that does not authenticate 401 `not authorized`, a missing node header 400,
//! a node the credential may not act for 403.
//!
//! Differences, and why: kubelet serving certificates are signed by the cluster CA (k3s signs
//! them with its server CA, whose key here is the enclave's TLS key, held outside core); the
//! request's signature must verify (k3s reads only its key); a kubelet client certificate is
//! recorded as an issued CertificateSigningRequest carrying the stake (as TLS bootstrap
//! records one), so the certificate authenticates the node against that stake before it
//! registers; and the node password is required but not stored (below).
//!
//! Node passwords: k3s keeps a `<node>.node-password.k3s` Secret in `kube-system` holding the
//! first password a node name came with, so a second machine with the same hostname cannot
//! take the name (403). Here the Seal token already binds the name to a stake: the token's
//! `node_id` must be the node, and a node registered to one stake is refused to every other
//! (403, as a wrong password is). A stored password would add nothing a staker cannot show
//! with its key, and would lock a staker out of its own node after reinstalling the machine.

use alloc::string::String;
use alloc::vec::Vec;
use base64::Engine as _;
use serde_json::{Value, json};

use super::request::{ApiRequest, ApiResponse, Method};
use crate::cluster::Cluster;
use crate::csr::authority::{self, Request};
use crate::resource::ResourceId;
use crate::token::{NodeIdentity, hex32};
use crate::{Error, UnixTime};

/// The plain-text type k3s answers files and certificates with.
const TEXT: &str = "text/plain";

/// The headers an agent names itself with on the node-named certificate requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeHeaders<'a> {
    /// `K3s-Node-Name`.
    pub name: Option<&'a str>,
    /// `K3s-Node-Password`.
    pub password: Option<&'a str>,
    /// `K3s-Node-IP`: the node's addresses, comma-separated.
    pub ips: Option<&'a str>,
}

/// A supervisor path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/cacerts`.
    CaCerts,
    /// `/ping`.
    Ping,
    /// `/v1-k3s/serving-kubelet.crt`.
    ServingKubelet,
    /// `/v1-k3s/client-kubelet.crt`.
    ClientKubelet,
    /// `/v1-k3s/client-kube-proxy.crt`.
    ClientKubeProxy,
    /// `/v1-k3s/client-k3s-controller.crt`.
    ClientController,
    /// `/v1-k3s/client-ca.crt`.
    ClientCa,
    /// `/v1-k3s/server-ca.crt`.
    ServerCa,
    /// `/v1-k3s/apiservers`.
    ApiServers,
    /// `/v1-k3s/config`.
    Config,
    /// `/v1-k3s/readyz`.
    Readyz,
    /// `/v1-k3s/connect`.
    Connect,
    /// A path only a K3s server may use.
    ServerOnly,
    /// Any other path below `/v1-k3s/`.
    Other(&'a str),
}

impl<'a> Endpoint<'a> {
    /// The supervisor endpoint `path` names, if it is one.
    pub fn of_path(path: &'a str) -> Option<Self> {
        match path {
            "/cacerts" => return Some(Self::CaCerts),
            "/ping" => return Some(Self::Ping),
            _ => {}
        }
        let rest = path.strip_prefix(crate::k3s::PREFIX)?;
        Some(match rest {
            "serving-kubelet.crt" => Self::ServingKubelet,
            "client-kubelet.crt" => Self::ClientKubelet,
            "client-kube-proxy.crt" => Self::ClientKubeProxy,
            "client-k3s-controller.crt" => Self::ClientController,
            "client-ca.crt" => Self::ClientCa,
            "server-ca.crt" => Self::ServerCa,
            "apiservers" => Self::ApiServers,
            "config" => Self::Config,
            "readyz" => Self::Readyz,
            "connect" => Self::Connect,
            "encrypt/status" | "encrypt/config" | "cert/cacerts" | "server-bootstrap" | "token" => {
                Self::ServerOnly
            }
            _ => Self::Other(path),
        })
    }

    fn anonymous(self) -> bool {
        matches!(self, Self::CaCerts | Self::Ping)
    }
}

/// k3s' `util.SendError`: a Kubernetes `Status` with apimachinery's reason for the code.
fn refusal(code: u16, message: &str) -> ApiResponse {
    let (reason, message) = match code {
        400 => ("BadRequest", String::from(message)),
        401 => ("Unauthorized", String::from(message)),
        403 => ("Forbidden", String::from(message)),
        503 => ("ServiceUnavailable", String::from(message)),
        _ => (
            "InternalError",
            alloc::format!("Internal error occurred: {message}"),
        ),
    };
    let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code});
    if reason == "InternalError"
        && let Some(map) = status.as_object_mut()
    {
        map.insert("details".into(), json!({"causes": [{"message": message}]}));
    }
    ApiResponse::json(code, crate::json::to_vec(&status))
}

fn not_authorized() -> ApiResponse {
    refusal(401, "not authorized")
}

/// The agent as authenticated: its stake, and whether a certificate (not a token) said so.
struct Agent {
    node: NodeIdentity,
    by_certificate: bool,
}

/// What a certificate endpoint signs: subject, names and usages.
struct Issue<'a> {
    common_name: String,
    organizations: &'a [&'a str],
    dns_names: Vec<String>,
    ips: Vec<Vec<u8>>,
    usages: &'a [&'a str],
}

/// Reads `K3s-Node-IP` as k3s does: every comma-separated part must be an address.
fn node_ips(header: Option<&str>) -> Result<Vec<Vec<u8>>, ApiResponse> {
    let mut out = alloc::vec![alloc::vec![127, 0, 0, 1]];
    for part in header
        .filter(|h| !h.is_empty())
        .into_iter()
        .flat_map(|h| h.split(','))
    {
        match part.parse::<core::net::IpAddr>() {
            Ok(core::net::IpAddr::V4(ip)) => out.push(ip.octets().to_vec()),
            Ok(core::net::IpAddr::V6(ip)) => out.push(ip.octets().to_vec()),
            // k3s prints the nil address it failed to parse.
            Err(_) => return Err(refusal(500, "invalid node IP address <nil>")),
        }
    }
    Ok(out)
}

impl Cluster {
    /// Authenticates a supervisor request on its head: the Seal token of the `Authorization`
    /// header (basic auth as `node`, or bearer) decides when there is one; else a cluster-CA
    /// node certificate; else no one (403, as k3s' authenticator finding no user).
    fn k3s_agent(&mut self, now: UnixTime, req: &ApiRequest<'_>) -> Result<Agent, ApiResponse> {
        if let Some(header) = req.authorization {
            let token = crate::k3s::seal_token_of(header).ok_or_else(not_authorized)?;
            let node = self
                .tokens
                .validate(&token, now, None, &self.stakes)
                .map_err(|_| not_authorized())?;
            self.check_stake_trust(&node)
                .map_err(|_| not_authorized())?;
            return Ok(Agent {
                node,
                by_certificate: false,
            });
        }
        if let Some(user) = req.client_cert.filter(|u| u.cluster_ca) {
            let node = self
                .node_by_certificate(user)
                .map_err(|_| not_authorized())?;
            return Ok(Agent {
                node,
                by_certificate: true,
            });
        }
        Err(refusal(403, "forbidden"))
    }

    /// What a supervisor request's head decides: its caller (the anonymous paths need none).
    pub(super) fn admit_k3s_head(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        endpoint: Endpoint<'_>,
    ) -> Result<(), ApiResponse> {
        if endpoint.anonymous() {
            return Ok(());
        }
        self.k3s_agent(now, req).map(drop)
    }

    /// Answers one supervisor request.
    pub(super) fn handle_k3s(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        endpoint: Endpoint<'_>,
    ) -> ApiResponse {
        match endpoint {
            Endpoint::CaCerts => return self.server_ca(),
            Endpoint::Ping => return ApiResponse::text(200, "pong"),
            _ => {}
        }
        let agent = match self.k3s_agent(now, req) {
            Ok(agent) => agent,
            Err(refused) => return refused,
        };
        match endpoint {
            Endpoint::ServingKubelet | Endpoint::ClientKubelet => {
                self.node_certificate(now, req, endpoint, &agent)
            }
            Endpoint::ClientKubeProxy => self.agent_certificate(
                now,
                req,
                &Issue {
                    common_name: "system:kube-proxy".into(),
                    organizations: &[],
                    dns_names: Vec::new(),
                    ips: Vec::new(),
                    usages: &["digital signature", "key encipherment", "client auth"],
                },
            ),
            Endpoint::ClientController => self.agent_certificate(
                now,
                req,
                &Issue {
                    common_name: "system:k3s-controller".into(),
                    organizations: &[],
                    dns_names: Vec::new(),
                    ips: Vec::new(),
                    usages: &["digital signature", "key encipherment", "client auth"],
                },
            ),
            Endpoint::ClientCa => match &self.config.cluster_ca {
                Some(ca) => pem_answer(ca.certificate_pem().into_bytes()),
                None => refusal(500, "no cluster CA is configured"),
            },
            Endpoint::ServerCa => self.server_ca(),
            Endpoint::ApiServers => self.api_servers(),
            Endpoint::Config => self.agent_config(),
            Endpoint::Readyz => ApiResponse {
                content_type: TEXT,
                ..ApiResponse::text(200, "ok")
            },
            Endpoint::ServerOnly => refusal(403, "forbidden"),
            // k3s' `nodeAuthed` router: `system:nodes` only, which a token's `node` user is not.
            Endpoint::Connect if !agent.by_certificate => refusal(403, "forbidden"),
            Endpoint::Connect => ApiResponse {
                content_type: TEXT,
                ..ApiResponse::text(101, "")
            },
            Endpoint::Other(_) | Endpoint::CaCerts | Endpoint::Ping => {
                ApiResponse::error(&Error::PathNotFound(req.path.into()))
            }
        }
    }

    /// The bundle the agent verifies the API server with (`/cacerts`, `server-ca.crt`).
    fn server_ca(&self) -> ApiResponse {
        match &self.config.root_ca_pem {
            Some(pem) => pem_answer(pem.clone().into_bytes()),
            None => refusal(
                503,
                "no CA bundle is known for the API server's certificate (--cluster-ca-file)",
            ),
        }
    }

    /// `apiservers`: the API endpoints, `host:port`, as the `kubernetes` EndpointSlice lists
    /// them (the advertised address). Without one, 503 rather than k3s' `[]`: on an error the
    /// agent keeps its `--server` address, on `[]` it waits for addresses forever.
    fn api_servers(&self) -> ApiResponse {
        match self.config.advertise_address {
            Some(address) => {
                let mut body = crate::json::to_vec(&json!([alloc::format!("{address}")]));
                body.push(b'\n');
                ApiResponse::json(200, body)
            }
            None => refusal(
                503,
                "no API server address is advertised (--advertise-address)",
            ),
        }
    }

    /// `config`: the fields of k3s' `config.Control` (Go field names, no JSON tags) that a
    /// v1.32 agent reads in `pkg/agent/config.get` and `getKubeProxyDisabled`: the cluster CIDR
    /// (10.42.0.0/16, k3s' default), the service CIDR and node-port range, cluster DNS (the
    /// service CIDR's tenth address, as k3s) and domain, the flannel backend (`vxlan`), the
    /// ports (equal, so the agent keeps its supervisor address for the API), egress-selector
    /// mode `disabled` (no API traffic through the agent's tunnel), the cloud controller and
    /// network policy controller off (none runs against this server; a cloud-provider
    /// `external` kubelet would wait for one). Go's `net.IPNet` is `{"IP","Mask"}` with the
    /// mask in base64.
    fn agent_config(&self) -> ApiResponse {
        let cidr = |network: u32, prefix: u8| {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            json!({"IP": ipv4(network),
                "Mask": base64::engine::general_purpose::STANDARD.encode(mask.to_be_bytes())})
        };
        let cluster = cidr(CLUSTER_CIDR.0, CLUSTER_CIDR.1);
        let service = cidr(
            self.config.service_cidr.network,
            self.config.service_cidr.prefix,
        );
        let dns = ipv4(self.config.service_cidr.network.saturating_add(10));
        let ports = &self.config.node_port_range;
        let port = self.config.advertise_address.map_or(6443, |a| a.port());
        let config = json!({
            "ClusterIPRange": cluster.clone(), "ClusterIPRanges": [cluster],
            "ServiceIPRange": service.clone(), "ServiceIPRanges": [service],
            "ServiceNodePortRange": {"Base": ports.first,
                "Size": u32::from(ports.last).saturating_sub(u32::from(ports.first)).saturating_add(1)},
            "ClusterDNS": dns, "ClusterDNSs": [dns], "ClusterDomain": "cluster.local",
            "FlannelBackend": "vxlan", "FlannelIPv6Masq": false, "FlannelExternalIP": false,
            "EgressSelectorMode": "disabled", "EmbeddedRegistry": false, "SupervisorMetrics": false,
            "HTTPSPort": port, "SupervisorPort": port, "APIServerPort": port,
            "DisableCCM": true, "DisableNPC": true, "DisableKubeProxy": false,
            "DisableServiceLB": true, "SystemDefaultRegistry": "",
        });
        let mut body = crate::json::to_vec(&config);
        body.push(b'\n');
        ApiResponse::json(200, body)
    }

    /// `serving-kubelet.crt` and `client-kubelet.crt`: only for the node the headers name, which
    /// must be the credential's node, held to its stake.
    fn node_certificate(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        endpoint: Endpoint<'_>,
        agent: &Agent,
    ) -> ApiResponse {
        let Some(name) = req.k3s_node.name.filter(|n| !n.is_empty()) else {
            return refusal(400, "node name not set");
        };
        if req.k3s_node.password.is_none_or(str::is_empty) {
            return refusal(400, "node password not set");
        }
        let name = name.to_ascii_lowercase();
        if agent.by_certificate && agent.node.node_id != name {
            return refusal(400, "header node name does not match auth node name");
        }
        if agent.node.node_id != name {
            return refusal(
                403,
                &alloc::format!(
                    "unable to verify node '{name}': the Seal token is for node '{}'",
                    agent.node.node_id
                ),
            );
        }
        if let Some(holder) = self.registrations.stake_of(&name)
            && holder != agent.node.stake_id
        {
            return refusal(
                403,
                &alloc::format!(
                    "unable to verify node '{name}': it is registered to stake {}",
                    hex32(&holder)
                ),
            );
        }
        if endpoint == Endpoint::ServingKubelet {
            let mut ips = match node_ips(req.k3s_node.ips) {
                Ok(ips) => ips,
                Err(refused) => return refused,
            };
            ips.dedup();
            return self.agent_certificate(
                now,
                req,
                &Issue {
                    common_name: name.clone(),
                    organizations: &[],
                    dns_names: alloc::vec![name, "localhost".into()],
                    ips,
                    usages: &["digital signature", "key encipherment", "server auth"],
                },
            );
        }
        let issue = Issue {
            common_name: alloc::format!("system:node:{name}"),
            organizations: &["system:nodes"],
            dns_names: Vec::new(),
            ips: Vec::new(),
            usages: &["digital signature", "key encipherment", "client auth"],
        };
        let (request, answer) = match self.sign_agent_request(now, req, &issue) {
            Ok(signed) => signed,
            Err(refused) => return refused,
        };
        // The stake the certificate answers to until the node registers: an issued request,
        // as TLS bootstrap leaves one. A refused write (store full) issues nothing.
        if let Err(e) = self.record_issued(now, &name, &agent.node, &request, &answer) {
            return ApiResponse::error(&e);
        }
        pem_answer(answer.into_bytes())
    }

    /// Signs a certificate for the key of the request in the body, or refuses.
    fn agent_certificate(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        issue: &Issue<'_>,
    ) -> ApiResponse {
        match self.sign_agent_request(now, req, issue) {
            Ok((_, answer)) => pem_answer(answer.into_bytes()),
            Err(refused) => refused,
        }
    }

    /// The agent's request (PEM) and the answer: the certificate and the cluster CA, PEM.
    fn sign_agent_request(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        issue: &Issue<'_>,
    ) -> Result<(String, String), ApiResponse> {
        if !self.config.enclave_tls {
            return Err(refusal(
                503,
                "K3s agent certificates need enclave TLS mode (--tls enclave): behind a proxy that terminates TLS the enclave never sees a client certificate",
            ));
        }
        if let Err(e) = self.check_sui_fresh(now) {
            return Err(refusal(503, &e.message()));
        }
        let Some(ca) = self.config.cluster_ca.clone() else {
            return Err(refusal(500, "no cluster CA is configured"));
        };
        if req.body_too_large {
            return Err(ApiResponse::error(&Error::TooLarge(alloc::format!(
                "the request body is larger than the limit of {} bytes",
                self.config.max_body_bytes
            ))));
        }
        if req.method != Method::Post {
            return Err(refusal(
                400,
                "a certificate request is required (POST, DER PKCS#10): the server makes no keys for agents",
            ));
        }
        let dns: Vec<&str> = issue.dns_names.iter().map(String::as_str).collect();
        let request = Request::for_key_of(
            req.body,
            &issue.common_name,
            issue.organizations,
            &dns,
            &issue.ips,
        )
        .map_err(|e| refusal(400, &e))?;
        let serial = self.ids.serial();
        let cert = ca
            .sign(
                &request,
                issue.usages,
                self.config.cluster_signing_duration_secs,
                now,
                serial,
            )
            .map_err(|e| refusal(500, &e))?;
        let mut answer = cert;
        answer.push_str(&ca.certificate_pem());
        Ok((crate::der::pem("CERTIFICATE REQUEST", req.body), answer))
    }

    /// Records a kubelet client certificate issued through the supervisor as an approved,
    /// issued CertificateSigningRequest of the kubelet client signer, requested by the node
    /// with its stake in `spec.extra` (what [`Cluster::identify`] reads for a certificate
    /// before its node registers).
    fn record_issued(
        &mut self,
        now: UnixTime,
        node: &str,
        identity: &NodeIdentity,
        request_pem: &str,
        answer: &str,
    ) -> Result<(), Error> {
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let certificate = answer
            .find("-----END CERTIFICATE-----")
            .and_then(|end| answer.get(..end + "-----END CERTIFICATE-----\n".len()))
            .unwrap_or(answer);
        let serial: String = self
            .ids
            .serial()
            .iter()
            .take(4)
            .map(|b| alloc::format!("{b:02x}"))
            .collect();
        let mut csr = json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": alloc::format!("k3s-{node}-{serial}"),
                "annotations": {"nautilus.io/issued-by": "k3s-supervisor"}},
            "spec": {"request": encode(request_pem),
                "signerName": authority::KUBELET_CLIENT_SIGNER,
                "usages": ["digital signature", "key encipherment", "client auth"],
                "username": alloc::format!("system:node:{node}"),
                "groups": ["system:nodes", "system:authenticated"],
                "extra": {"nautilus.io/stake-id": [hex32(&identity.stake_id)]}},
            "status": {"conditions": [{"type": "Approved", "status": "True",
                    "reason": "AutoApproved",
                    "message": "Auto approving K3s agent kubelet client certificate for its Seal token's node.",
                    "lastUpdateTime": now.rfc3339(), "lastTransitionTime": now.rfc3339()}],
                "certificate": encode(certificate)},
        });
        let ctx = crate::cluster::WriteContext::request(now, None);
        self.create_internal(
            &ctx,
            ResourceId::CertificateSigningRequests,
            "",
            &mut csr,
            "k3s-supervisor",
        )
        .map(drop)
    }
}

/// k3s' default cluster CIDR, 10.42.0.0/16 (`--cluster-cidr`).
const CLUSTER_CIDR: (u32, u8) = (0x0a2a_0000, 16);

fn ipv4(address: u32) -> Value {
    Value::from(alloc::format!("{}", core::net::Ipv4Addr::from(address)))
}

fn pem_answer(body: Vec<u8>) -> ApiResponse {
    ApiResponse {
        content_type: TEXT,
        ..ApiResponse::json(200, body)
    }
}
