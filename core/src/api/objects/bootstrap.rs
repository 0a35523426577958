//! What the server creates itself: the objects kube-apiserver creates at start, and objects
//! created on the server's own behalf by controllers, owned by the component kube names.

use alloc::vec::Vec;
use serde_json::{Value, json};

use super::writes::has_generation;
use crate::admission;
use crate::api::{Cluster, defaults};
use crate::cluster::WriteContext;
use crate::cluster::object::set_meta;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{Error, UnixTime, json as j, patch, validation};

/// The field manager of what kube-apiserver creates itself (default namespaces, the
/// `kubernetes` service).
const APISERVER: &str = "kube-apiserver";

impl Cluster {
    /// What kube-apiserver creates at start: the default namespaces, the `kubernetes`
    /// Service and the mandatory flow-control objects.
    pub(crate) fn bootstrap(&mut self, now: UnixTime) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut obj =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let _ = self.create_internal(
                &WriteContext::server(now),
                ResourceId::Namespaces,
                "",
                &mut obj,
                APISERVER,
            );
        }
        let mut service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                // The range's first address, as kube's bootstrap controller gives it.
                "clusterIP": alloc::format!("{}", crate::net::Ipv4(self.config.service_cidr.first()))}
        });
        let _ = self.create_internal(
            &WriteContext::server(now),
            ResourceId::Services,
            "default",
            &mut service,
            APISERVER,
        );
        self.reconcile_apiserver_endpoints(now);
        // The scheduling post-start hook's system PriorityClasses.
        for mut class in admission::priority::system_classes() {
            let _ = self.create_internal(
                &WriteContext::server(now),
                ResourceId::PriorityClasses,
                "",
                &mut class,
                APISERVER,
            );
        }
        self.ensure_apf_configuration(now, false);
    }

    /// Creates an object on the server's own behalf (bootstrap, controllers), owned by
    /// `manager`, the component kube would create it from (`kube-controller-manager`,
    /// `kubelet`, ...), so that later writes keep tracking its fields.
    pub(crate) fn create_internal(
        &mut self,
        ctx: &WriteContext,
        resource: ResourceId,
        namespace: &str,
        obj: &mut Value,
        manager: &str,
    ) -> Result<Vec<u8>, Error> {
        let now = ctx.at;
        if resource == ResourceId::Pods {
            // Controllers' pods meet ServiceAccount and Priority admission as any client's.
            // kube's controllers send only a generateName, which admission's errors name.
            let mut admitted_as = j::string_at(obj, "/metadata/generateName");
            if admitted_as.is_empty() {
                admitted_as = j::string_at(obj, "/metadata/name");
            }
            self.admit_service_account(namespace, &admitted_as, obj)?;
            admission::priority::admit_pod(&self.store, obj)?;
        }
        set_meta(obj, "uid", Value::from(self.ids.uuid()));
        defaults::apply(resource, obj, None, now)?;
        validation::validate(resource, obj, None)?;
        let name = j::string_at(obj, "/metadata/name");
        if resource == ResourceId::Services {
            let key = ObjectKey::new(resource, namespace, &name);
            self.allocate_service(&key, obj, None)?;
        }
        set_meta(obj, "creationTimestamp", Value::from(now.rfc3339()));
        if has_generation(resource) {
            set_meta(obj, "generation", Value::from(1));
        }
        patch::record_update(resource, None, None, obj, manager, None, now);
        let key = ObjectKey::new(resource, namespace, &name);
        self.write_new(&ctx.as_server_share(), key, obj)
    }
}
