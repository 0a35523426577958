//! Service cluster IPs and node ports, allocated as kube-apiserver's allocators do
//! (`registry/core/service/storage/alloc.go`, `ipallocator`, `portallocator`): a configured IPv4
//! service range and node-port range, explicit values checked against the range and against
//! every other Service (kube's 422 wording), new values taken from the dynamic band first so they
//! rarely collide with explicit ones.
//!
//! The bookkeeping is derived from what is stored: before a write, [`Cluster::allocate_service`]
//! fills and checks the Service without changing anything; after the write commits,
//! [`Allocations::commit`] replaces what the Service held by what it holds now (on every path:
//! create, update, patch, apply, type change, delete), so the tables always equal the union of
//! the stored Services.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::cluster::Cluster;
use crate::error::Cause;
use crate::net::{Ipv4, PortRange, ServiceCidr, parse_ipv4};
use crate::store::ObjectKey;
use crate::{Error, json as j};

/// What one Service holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Held {
    ip: Option<u32>,
    ports: Vec<u16>,
}

/// Cluster IPs and node ports in use, each with the Service holding it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Allocations {
    ips: BTreeMap<u32, ObjectKey>,
    ports: BTreeMap<u16, ObjectKey>,
    held: BTreeMap<ObjectKey, Held>,
}

#[cfg(test)]
impl Allocations {
    /// (cluster IPs, node ports) allocated.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.ips.len(), self.ports.len())
    }
}

fn service_type(svc: &Value) -> &str {
    let t = j::str_at(svc, "/spec/type");
    if t.is_empty() { "ClusterIP" } else { t }
}

fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

fn needs_node_port(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

fn needs_health_check_port(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer" && j::str_at(svc, "/spec/externalTrafficPolicy") == "Local"
}

/// kube's `shouldAllocateNodePorts`: a LoadBalancer may opt out.
fn should_allocate_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

fn ports(svc: &Value) -> &[Value] {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn node_port(port: &Value) -> u16 {
    port.get("nodePort")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn node_ports(svc: &Value) -> BTreeSet<u16> {
    ports(svc)
        .iter()
        .map(node_port)
        .filter(|p| *p != 0)
        .collect()
}

fn cluster_ips(svc: &Value) -> Vec<&str> {
    svc.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn spec_mut(svc: &mut Value) -> Option<&mut Map<String, Value>> {
    svc.get_mut("spec").and_then(Value::as_object_mut)
}

/// What a stored Service holds, by its stored fields.
fn holdings(cidr: ServiceCidr, range: PortRange, svc: &Value) -> Held {
    let ip = needs_cluster_ip(svc)
        .then(|| parse_ipv4(j::str_at(svc, "/spec/clusterIP")))
        .flatten()
        .filter(|ip| cidr.usable(*ip));
    let mut ports: Vec<u16> = if needs_node_port(svc) {
        node_ports(svc).into_iter().collect()
    } else {
        Vec::new()
    };
    if needs_health_check_port(svc)
        && let Some(hc) = svc
            .pointer("/spec/healthCheckNodePort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0 && !ports.contains(p))
    {
        ports.push(hc);
    }
    ports.retain(|p| range.contains(*p));
    Held { ip, ports }
}

impl Allocations {
    /// After a committed write of Service `key` (`None`: deleted): what it held is released,
    /// what it holds now is recorded.
    pub(crate) fn commit(
        &mut self,
        cidr: ServiceCidr,
        range: PortRange,
        key: &ObjectKey,
        svc: Option<&Value>,
    ) {
        if let Some(old) = self.held.remove(key) {
            if let Some(ip) = old.ip
                && self.ips.get(&ip) == Some(key)
            {
                self.ips.remove(&ip);
            }
            for port in old.ports {
                if self.ports.get(&port) == Some(key) {
                    self.ports.remove(&port);
                }
            }
        }
        let Some(svc) = svc else {
            return;
        };
        let held = holdings(cidr, range, svc);
        if held == Held::default() {
            return;
        }
        if let Some(ip) = held.ip {
            self.ips.insert(ip, key.clone());
        }
        for port in &held.ports {
            self.ports.insert(*port, key.clone());
        }
        self.held.insert(key.clone(), held);
    }

    /// The tables as the stored Services define them (tests compare the live tables with it).
    #[cfg(test)]
    pub(crate) fn rebuild(
        cidr: ServiceCidr,
        range: PortRange,
        store: &crate::store::Store,
    ) -> Self {
        let mut out = Self::default();
        for (key, object) in store.range(crate::resource::ResourceId::Services, None, None) {
            let svc: Value = serde_json::from_slice(&object.json.bytes()).unwrap_or(Value::Null);
            out.commit(cidr, range, key, Some(&svc));
        }
        out
    }

    fn ip_holder(&self, ip: u32) -> Option<&ObjectKey> {
        self.ips.get(&ip)
    }

    fn port_holder(&self, port: u16) -> Option<&ObjectKey> {
        self.ports.get(&port)
    }

    /// The lowest free address of the dynamic band, else of the static band (kube scans the
    /// upper band first, so explicit requests in the lower band rarely collide).
    fn next_ip(&self, cidr: ServiceCidr, taken: &BTreeSet<u32>) -> Option<u32> {
        let first = cidr.first();
        let last = cidr.network.wrapping_add(cidr.size() - 2);
        let dynamic = first.saturating_add(cidr.static_band()).min(last);
        let free = |ip: &u32| !self.ips.contains_key(ip) && !taken.contains(ip);
        (dynamic..=last)
            .find(free)
            .or_else(|| (first..dynamic).find(free))
    }

    fn next_port(&self, range: PortRange, taken: &BTreeSet<u16>) -> Option<u16> {
        let dynamic = range
            .first
            .saturating_add(range.static_band())
            .min(range.last);
        let free = |p: &u16| !self.ports.contains_key(p) && !taken.contains(p);
        (dynamic..=range.last)
            .find(free)
            .or_else(|| (range.first..dynamic).find(free))
    }
}

/// One Service write's allocations, checked against the tables and against each other.
struct Operation<'a> {
    table: &'a Allocations,
    key: &'a ObjectKey,
    range: PortRange,
    taken: BTreeSet<u16>,
}

impl Operation<'_> {
    /// kube's `Allocate(port)`: the port must be in range and not held by another Service.
    fn allocate(&mut self, port: u16) -> Result<(), String> {
        if !self.range.contains(port) {
            return Err(alloc::format!(
                "provided port is not in the valid range. The range of valid ports is {}",
                self.range
            ));
        }
        let other = self.table.port_holder(port).is_some_and(|k| k != self.key);
        if other || !self.taken.insert(port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    fn allocate_next(&mut self) -> Result<u16, Error> {
        // Ports this Service already holds stay its own until the write commits.
        let mut busy = self.taken.clone();
        if let Some(held) = self.table.held.get(self.key) {
            busy.extend(held.ports.iter().copied());
        }
        let port = self.table.next_port(self.range, &busy).ok_or_else(|| {
            Error::Internal(
                "Internal error occurred: failed to allocate a nodePort: range is full".into(),
            )
        })?;
        self.taken.insert(port);
        Ok(port)
    }
}

fn port_invalid(name: &str, index: usize, port: u16, detail: &str) -> Error {
    Error::Invalid {
        kind: "Service".into(),
        name: name.into(),
        causes: alloc::vec![Cause {
            reason: "FieldValueInvalid",
            message: alloc::format!("Invalid value: {port}: {detail}"),
            field: alloc::format!("spec.ports[{index}].nodePort"),
        }],
    }
}

/// kube's `patchAllocatedValues`, `NormalizeClusterIPs` and `dropTypeDependentFields`, which run
/// before validation: an update that leaves allocated values out keeps them, `clusterIPs` follows
/// `clusterIP`, and a type change clears what the new type does not use (if left unchanged).
pub(crate) fn prepare(svc: &mut Value, old: Option<&Value>) {
    let Some(old) = old else {
        // Create: an old client sets only the singular field.
        let ip = j::string_at(svc, "/spec/clusterIP");
        if !ip.is_empty()
            && cluster_ips(svc).is_empty()
            && let Some(spec) = spec_mut(svc)
        {
            spec.insert("clusterIPs".into(), Value::from(alloc::vec![ip]));
        }
        return;
    };
    if needs_cluster_ip(old) && needs_cluster_ip(svc) {
        let old_ip = j::string_at(old, "/spec/clusterIP");
        let old_ips = old.pointer("/spec/clusterIPs").cloned();
        let no_ip = j::str_at(svc, "/spec/clusterIP").is_empty();
        let no_ips = cluster_ips(svc).is_empty();
        if let Some(spec) = spec_mut(svc) {
            if no_ip && !old_ip.is_empty() {
                spec.insert("clusterIP".into(), Value::from(old_ip.as_str()));
            }
            if no_ips && let Some(ips) = old_ips {
                spec.insert("clusterIPs".into(), ips);
            }
        }
        // NormalizeClusterIPs: a client that changed only the singular field changed both
        // (validation then says whether it may).
        let ip = j::string_at(svc, "/spec/clusterIP");
        if ip != old_ip
            && !ip.is_empty()
            && cluster_ips(svc) == cluster_ips(old)
            && let Some(spec) = spec_mut(svc)
        {
            spec.insert("clusterIPs".into(), Value::from(alloc::vec![ip]));
        }
    }
    if needs_node_port(old) && needs_node_port(svc) {
        let used: BTreeSet<u16> = node_ports(old)
            .intersection(&node_ports(svc))
            .copied()
            .collect();
        let by_name: BTreeMap<String, u16> = ports(old)
            .iter()
            .map(|p| (j::string_at(p, "/name"), node_port(p)))
            .collect();
        if let Some(list) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for port in list.iter_mut() {
                let name = j::string_at(port, "/name");
                let known = by_name.get(&name).copied().unwrap_or(0);
                if node_port(port) == 0
                    && known != 0
                    && !used.contains(&known)
                    && let Some(map) = port.as_object_mut()
                {
                    map.insert("nodePort".into(), Value::from(known));
                }
            }
        }
    }
    if needs_health_check_port(old)
        && needs_health_check_port(svc)
        && svc.pointer("/spec/healthCheckNodePort").is_none()
        && let (Some(hc), Some(spec)) = (
            old.pointer("/spec/healthCheckNodePort").cloned(),
            spec_mut(svc),
        )
    {
        spec.insert("healthCheckNodePort".into(), hc);
    }
    // dropTypeDependentFields
    if needs_cluster_ip(old) && !needs_cluster_ip(svc) {
        let same_ips = j::str_at(old, "/spec/clusterIP") == j::str_at(svc, "/spec/clusterIP")
            && cluster_ips(old) == cluster_ips(svc);
        let same = |field: &str| old.pointer(field) == svc.pointer(field);
        let (families, policy) = (same("/spec/ipFamilies"), same("/spec/ipFamilyPolicy"));
        if let Some(spec) = spec_mut(svc) {
            if same_ips {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            if families {
                spec.remove("ipFamilies");
            }
            if policy {
                spec.remove("ipFamilyPolicy");
            }
        }
    }
    if needs_node_port(old)
        && !needs_node_port(svc)
        && node_ports(old).is_superset(&node_ports(svc))
        && let Some(list) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
    {
        for port in list.iter_mut().filter_map(Value::as_object_mut) {
            port.remove("nodePort");
        }
    }
    if needs_health_check_port(old)
        && !needs_health_check_port(svc)
        && old.pointer("/spec/healthCheckNodePort") == svc.pointer("/spec/healthCheckNodePort")
        && let Some(spec) = spec_mut(svc)
    {
        spec.remove("healthCheckNodePort");
    }
}

impl Cluster {
    /// Fills and checks the cluster IP and node ports of Service `key` about to be written
    /// (`old`: its stored version on update), after validation, changing nothing: the tables
    /// follow at commit. Errors are kube's: 422 for an explicit value out of range or held by
    /// another Service, 500 when a range is full.
    pub(crate) fn allocate_service(
        &self,
        key: &ObjectKey,
        svc: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), Error> {
        let name = j::string_at(svc, "/metadata/name");
        let cidr = self.config.service_cidr;
        let table = &self.services;
        // Cluster IP: allocated on create and when leaving ExternalName; immutable otherwise.
        let allocate_ip = needs_cluster_ip(svc)
            && old.is_none_or(|o| !needs_cluster_ip(o))
            && j::str_at(svc, "/spec/clusterIP") != "None";
        if allocate_ip {
            let requested = j::string_at(svc, "/spec/clusterIP");
            let ip = if requested.is_empty() {
                let none = BTreeSet::new();
                table.next_ip(cidr, &none).ok_or_else(|| {
                    Error::Internal(
                        "Internal error occurred: failed to allocate a serviceIP: range is full"
                            .into(),
                    )
                })?
            } else {
                let shown = crate::gostr::go_strings(&cluster_ips(svc));
                let fail = |detail: String| Error::Invalid {
                    kind: "Service".into(),
                    name: name.clone(),
                    causes: alloc::vec![Cause {
                        reason: "FieldValueInvalid",
                        message: alloc::format!(
                            "Invalid value: {shown}: failed to allocate IP {requested}: {detail}"
                        ),
                        field: "spec.clusterIPs".into(),
                    }],
                };
                let Some(ip) = parse_ipv4(&requested) else {
                    return Err(Error::Invalid {
                        kind: "Service".into(),
                        name,
                        causes: alloc::vec![Cause {
                            reason: "FieldValueInvalid",
                            message: alloc::format!(
                                "Invalid value: {shown}: IPv6 is not configured on this cluster"
                            ),
                            field: "spec.clusterIPs[0]".into(),
                        }],
                    });
                };
                if !cidr.usable(ip) {
                    return Err(fail(alloc::format!(
                        "the provided IP ({}) is not in the valid range. The range of valid IPs is {cidr}",
                        Ipv4(ip)
                    )));
                }
                if table.ip_holder(ip).is_some_and(|k| k != key) {
                    return Err(fail("provided IP is already allocated".into()));
                }
                ip
            };
            let text = alloc::format!("{}", Ipv4(ip));
            if let Some(spec) = spec_mut(svc) {
                spec.insert("clusterIP".into(), Value::from(text.clone()));
                spec.insert("clusterIPs".into(), Value::from(alloc::vec![text]));
            }
        }
        if needs_cluster_ip(svc)
            && let Some(spec) = spec_mut(svc)
        {
            if spec.get("ipFamilies").is_none_or(Value::is_null) {
                spec.insert("ipFamilies".into(), Value::from(alloc::vec!["IPv4"]));
            }
            if spec.get("ipFamilyPolicy").is_none_or(Value::is_null) {
                spec.insert("ipFamilyPolicy".into(), Value::from("SingleStack"));
            }
        }
        let mut op = Operation {
            table,
            key,
            range: self.config.node_port_range,
            taken: BTreeSet::new(),
        };
        if needs_node_port(svc) {
            let allocate = should_allocate_node_ports(svc);
            // What this Service holds now (not what its old spec says: an ExternalName Service
            // may carry node port values it never held).
            let old_ports: BTreeSet<u16> = table
                .held
                .get(key)
                .map(|h| h.ports.iter().copied().collect())
                .unwrap_or_default();
            let list: Vec<Value> = ports(svc).to_vec();
            let mut chosen: Vec<u16> = Vec::with_capacity(list.len());
            // On create, ports that share a port number share a node port (kube's
            // initNodePorts); on update each explicit value is checked once.
            let mut by_port: BTreeMap<i64, u16> = BTreeMap::new();
            for (i, port) in list.iter().enumerate() {
                let wanted = node_port(port);
                let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
                let got = if wanted == 0 && !allocate {
                    0
                } else if old.is_some() {
                    if wanted == 0 {
                        op.allocate_next()?
                    } else {
                        if !old_ports.contains(&wanted) && !op.taken.contains(&wanted) {
                            op.allocate(wanted)
                                .map_err(|e| port_invalid(&name, i, wanted, &e))?;
                        }
                        wanted
                    }
                } else {
                    match by_port.get(&number).copied() {
                        Some(shared) if wanted == 0 || wanted == shared => shared,
                        _ if wanted != 0 => {
                            op.allocate(wanted)
                                .map_err(|e| port_invalid(&name, i, wanted, &e))?;
                            wanted
                        }
                        _ => {
                            let requested = list
                                .iter()
                                .skip(i)
                                .find(|p| p.get("port").and_then(Value::as_i64) == Some(number))
                                .map(node_port)
                                .filter(|p| *p != 0);
                            match requested {
                                Some(p) => {
                                    op.allocate(p).map_err(|e| port_invalid(&name, i, p, &e))?;
                                    p
                                }
                                None => op.allocate_next()?,
                            }
                        }
                    }
                };
                if got != 0 {
                    by_port.entry(number).or_insert(got);
                }
                chosen.push(got);
            }
            if let Some(list) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for (port, value) in list.iter_mut().zip(chosen) {
                    if value != 0
                        && let Some(map) = port.as_object_mut()
                    {
                        map.insert("nodePort".into(), Value::from(value));
                    }
                }
            }
        }
        if needs_health_check_port(svc) {
            let wanted = svc
                .pointer("/spec/healthCheckNodePort")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            let kept = old.is_some_and(|o| {
                needs_health_check_port(o)
                    && o.pointer("/spec/healthCheckNodePort")
                        .and_then(Value::as_u64)
                        == Some(u64::from(wanted))
            });
            let hc = if wanted == 0 {
                op.allocate_next().map_err(|_| {
                    Error::Internal("Internal error occurred: failed to allocate a HealthCheck NodePort 0: range is full".into())
                })?
            } else {
                if !kept {
                    op.allocate(wanted).map_err(|e| {
                        Error::Internal(alloc::format!(
                            "Internal error occurred: failed to allocate requested HealthCheck NodePort {wanted}: {e}"
                        ))
                    })?;
                }
                wanted
            };
            if let Some(spec) = spec_mut(svc) {
                spec.insert("healthCheckNodePort".into(), Value::from(hc));
            }
        }
        Ok(())
    }

    /// After a committed write of `key` (`None`: deleted), for Services.
    pub(crate) fn service_committed(&mut self, key: &ObjectKey, svc: Option<&Value>) {
        if key.resource == crate::resource::ResourceId::Services {
            let (cidr, range) = (self.config.service_cidr, self.config.node_port_range);
            self.services.commit(cidr, range, key, svc);
        }
    }
}
