//! Who is calling: the bearer token is resolved to an identity here, in core, so the untrusted
//! proxy never decides access.

use sha2::{Digest, Sha256};

use crate::{Config, Error};

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// No credential: only health, version and attestation paths.
    Anonymous,
    /// The cluster administrator (the admin token).
    Admin,
    /// The Sui event relay (its credential may push stake events and nothing else).
    Relay,
    /// A worker node, by a valid Seal token: may act only as its own node.
    Node(alloc::boxed::Box<crate::token::NodeIdentity>),
    /// A user named by a verified client certificate (subject CN; O values are the groups), as
    /// kube-apiserver's x509 authenticator does. There is no RBAC here, so a user is authorised
    /// like [`Identity::Admin`]: only put CAs in `--client-ca` whose holders may administer.
    User(alloc::boxed::Box<CertUser>),
    /// A ServiceAccount, by a token this server signed (TokenRequest) whose account, and bound
    /// object if any, still exist. Until RBAC is enforced it may only read discovery and the
    /// issuer's OIDC documents and ask reviews about itself.
    ServiceAccount(alloc::boxed::Box<ServiceAccountUser>),
    /// A K3s agent's component, by a cluster-CA certificate the supervisor issued to an
    /// agent (any staker's): it may only read what that component reads.
    Component(Component),
}

/// The K3s agent components the supervisor issues certificates to, besides the kubelet
/// (k3s' `client-kube-proxy.crt` and `client-k3s-controller.crt`, no organization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `system:kube-proxy`: reads Services, their Endpoints and EndpointSlices, and Nodes
    /// (kube's `system:node-proxier` role, without writing Events).
    KubeProxy,
    /// `system:k3s-controller`: the agent's tunnel reads its Node and the `kubernetes`
    /// Endpoints (what a v1.32 agent reads with egress-selector mode `disabled`).
    K3sController,
}

impl Component {
    /// The component a cluster-CA certificate's subject names.
    pub fn of_user(name: &str) -> Option<Self> {
        match name {
            "system:kube-proxy" => Some(Self::KubeProxy),
            "system:k3s-controller" => Some(Self::K3sController),
            _ => None,
        }
    }

    /// Its user name (the certificate's common name).
    pub fn username(self) -> &'static str {
        match self {
            Self::KubeProxy => "system:kube-proxy",
            Self::K3sController => "system:k3s-controller",
        }
    }

    /// What it may read: (API group, resource) pairs, verbs `get`, `list` and `watch` only.
    pub fn readable(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::KubeProxy => &[
                ("", "services"),
                ("", "endpoints"),
                ("", "nodes"),
                ("discovery.k8s.io", "endpointslices"),
            ],
            Self::K3sController => &[("", "nodes"), ("", "endpoints")],
        }
    }
}

/// The user name the admin token authenticates as. It is in `system:masters`, the group
/// kube-apiserver lets do everything, so reviews and `kubectl auth whoami` show what a
/// kube administrator would see.
pub const ADMIN_USER: &str = "nautilus:admin";
/// The user name of the Sui event relay's credential.
pub const RELAY_USER: &str = "nautilus:sui-relay";

impl Identity {
    /// The user name kube-apiserver would give this caller (`system:node:<name>` for a node, the
    /// certificate's CN for a user, `system:anonymous` without credentials).
    pub fn username(&self) -> alloc::string::String {
        match self {
            Self::Anonymous => "system:anonymous".into(),
            Self::Admin => ADMIN_USER.into(),
            Self::Relay => RELAY_USER.into(),
            Self::Node(node) => alloc::format!("system:node:{}", node.node_id),
            Self::User(user) => user.name.clone(),
            Self::ServiceAccount(sa) => crate::serviceaccount::username(&sa.namespace, &sa.name),
            Self::Component(component) => component.username().into(),
        }
    }

    /// The caller's uid (kube's `user.Info.GetUID`): a ServiceAccount's; empty for the others.
    pub fn uid(&self) -> &str {
        match self {
            Self::ServiceAccount(sa) => &sa.uid,
            _ => "",
        }
    }

    /// The caller's extra attributes (`user.Info.GetExtra`), sorted by key: a ServiceAccount
    /// token's pod, node and credential id, as kube's `ServiceAccountInfo.UserInfo` sets them.
    pub fn extra(&self) -> alloc::vec::Vec<(&'static str, alloc::string::String)> {
        let Self::ServiceAccount(sa) = self else {
            return alloc::vec::Vec::new();
        };
        let mut extra = alloc::vec::Vec::new();
        if !sa.credential_id.is_empty() {
            extra.push((
                "authentication.kubernetes.io/credential-id",
                sa.credential_id.clone(),
            ));
        }
        if let Some(node) = &sa.node {
            extra.push(("authentication.kubernetes.io/node-name", node.name.clone()));
            if !node.uid.is_empty() {
                extra.push(("authentication.kubernetes.io/node-uid", node.uid.clone()));
            }
        }
        if let Some(pod) = sa
            .pod
            .as_ref()
            .filter(|p| !p.name.is_empty() && !p.uid.is_empty())
        {
            extra.push(("authentication.kubernetes.io/pod-name", pod.name.clone()));
            extra.push(("authentication.kubernetes.io/pod-uid", pod.uid.clone()));
        }
        extra.sort_unstable_by_key(|(key, _)| *key);
        extra
    }

    /// `userInfo` as reviews show it (`username`, `uid`, `groups`, `extra`; empty ones left
    /// out, as kube's `omitempty` does).
    pub fn user_info(&self) -> serde_json::Value {
        let mut user = serde_json::Map::new();
        user.insert("username".into(), self.username().into());
        if !self.uid().is_empty() {
            user.insert("uid".into(), self.uid().into());
        }
        user.insert("groups".into(), serde_json::Value::from(self.groups()));
        let extra = self.extra();
        if !extra.is_empty() {
            let map = extra
                .into_iter()
                .map(|(key, value)| (key.into(), serde_json::Value::from(alloc::vec![value])))
                .collect();
            user.insert("extra".into(), serde_json::Value::Object(map));
        }
        serde_json::Value::Object(user)
    }

    /// The caller's groups, with kube's `system:authenticated` for every authenticated caller.
    pub fn groups(&self) -> alloc::vec::Vec<alloc::string::String> {
        let mut groups: alloc::vec::Vec<alloc::string::String> = match self {
            Self::Anonymous => return alloc::vec!["system:unauthenticated".into()],
            Self::Admin => alloc::vec!["system:masters".into()],
            Self::Relay | Self::Component(_) => alloc::vec::Vec::new(),
            Self::Node(_) => alloc::vec!["system:nodes".into()],
            Self::User(user) => user.groups.clone(),
            Self::ServiceAccount(sa) => alloc::vec![
                "system:serviceaccounts".into(),
                alloc::format!("system:serviceaccounts:{}", sa.namespace),
            ],
        };
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        groups
    }
}

/// The identity of a client certificate the proxy verified and the runtime chose to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUser {
    /// The subject's common name (the user name); never empty.
    pub name: alloc::string::String,
    /// The subject's organization values (the groups).
    pub groups: alloc::vec::Vec<alloc::string::String>,
    /// Verified by the enclave itself against the cluster CA ([`crate::Config::cluster_ca`]),
    /// in enclave TLS mode: a `system:node:NAME` certificate then authenticates that node, held
    /// to its stake as a Seal token is. `false` for the proxy's `--client-ca` users.
    pub cluster_ca: bool,
}

/// The ServiceAccount a valid token names (kube's `ServiceAccountInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountUser {
    /// The account's namespace.
    pub namespace: alloc::string::String,
    /// The account's name.
    pub name: alloc::string::String,
    /// The account's uid, as the token claims it (checked against the stored account).
    pub uid: alloc::string::String,
    /// The pod the token is bound to.
    pub pod: Option<crate::serviceaccount::ObjectRef>,
    /// The node the token is bound to, or its bound pod's node.
    pub node: Option<crate::serviceaccount::ObjectRef>,
    /// `JTI=<jti>`: which issued token this is (kube's credential id).
    pub credential_id: alloc::string::String,
}

/// The bearer token of an `Authorization` header, if it is one.
pub fn bearer(authorization: &str) -> Option<&str> {
    authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Resolves an `Authorization` header value. A header that is present but wrong is 401, never
/// a silent downgrade to anonymous.
pub fn authenticate(config: &Config, authorization: Option<&str>) -> Result<Identity, Error> {
    let Some(header) = authorization else {
        return Ok(Identity::Anonymous);
    };
    let token = bearer(header).ok_or_else(|| Error::Unauthorized("Unauthorized".into()))?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    match (&config.admin_token_sha256, &config.relay_token_sha256) {
        (Some(admin), _) if constant_time_eq(admin, &digest) => Ok(Identity::Admin),
        (_, Some(relay)) if constant_time_eq(relay, &digest) => Ok(Identity::Relay),
        _ => Err(Error::Unauthorized("Unauthorized".into())),
    }
}

/// Resolves the caller from the `Authorization` header, or, when there is none, from a client
/// certificate identity the runtime trusts. A bearer token, when present, decides alone.
pub fn authenticate_with_cert(
    config: &Config,
    authorization: Option<&str>,
    client_cert: Option<&CertUser>,
) -> Result<Identity, Error> {
    match (authorization, client_cert) {
        (None, Some(user)) if !user.name.is_empty() && !user.cluster_ca => {
            Ok(Identity::User(alloc::boxed::Box::new(user.clone())))
        }
        _ => authenticate(config, authorization),
    }
}

/// Compares two digests without an early exit, so timing does not reveal a prefix match.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_admin_token_is_admin() {
        let mut config = Config {
            admin_token_sha256: Some(Sha256::digest(b"s3cret").into()),
            ..Config::default()
        };
        assert_eq!(
            authenticate(&config, Some("Bearer s3cret")),
            Ok(Identity::Admin)
        );
        assert_eq!(authenticate(&config, None), Ok(Identity::Anonymous));
        assert!(matches!(
            authenticate(&config, Some("Bearer s3creT")),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            authenticate(&config, Some("Basic s3cret")),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            authenticate(&config, Some("Bearer ")),
            Err(Error::Unauthorized(_))
        ));
        config.admin_token_sha256 = None;
        assert!(matches!(
            authenticate(&config, Some("Bearer s3cret")),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn a_client_certificate_names_the_user_only_without_a_token() {
        let config = Config {
            admin_token_sha256: Some(Sha256::digest(b"s3cret").into()),
            ..Config::default()
        };
        let alice = CertUser {
            name: "alice".into(),
            groups: alloc::vec!["dev".into()],
            cluster_ca: false,
        };
        let empty = CertUser {
            name: "".into(),
            groups: alloc::vec::Vec::new(),
            cluster_ca: false,
        };
        type Case<'a> = (Option<&'a str>, Option<&'a CertUser>, Result<Identity, u16>);
        let cases: &[Case<'_>] = &[
            (
                None,
                Some(&alice),
                Ok(Identity::User(alloc::boxed::Box::new(alice.clone()))),
            ),
            (None, None, Ok(Identity::Anonymous)),
            // An empty CN names nobody (kube-apiserver rejects such certificates too).
            (None, Some(&empty), Ok(Identity::Anonymous)),
            (Some("Bearer s3cret"), Some(&alice), Ok(Identity::Admin)),
            // A wrong token is 401 even with a good certificate: no silent fallback.
            (Some("Bearer nope"), Some(&alice), Err(401)),
        ];
        for (header, cert, want) in cases {
            let got = authenticate_with_cert(&config, *header, *cert).map_err(|e| e.code());
            assert_eq!(&got, want, "{header:?} {cert:?}");
        }
    }
}
