//! GET, LIST and WATCH of resource objects. A paginated LIST serves every page at one revision:
//! its continue token names the snapshot, and objects changed since are rebuilt from the watch
//! ring, as etcd's MVCC would serve them.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::not_found;
use crate::api::custom;
use crate::api::render::{ListFormat, ListRender};
use crate::api::request::{self, ApiRequest, ApiResponse, Query, Representation};
use crate::api::revision::{self, ReadAt};
use crate::api::table::{self, IncludeObject};
use crate::api::watch::{WatchFormat, Watcher};
use crate::api::{Cluster, Outcome};
use crate::cluster::object::parse_stored;
use crate::resource::{ResourceId, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjectKey, StoredObject};
use crate::{Error, UnixTime, json as j};

impl Cluster {
    pub(super) fn get(
        &self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: &str,
        name: &str,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let representation = request::negotiate(req.accept)?;
        // A non-zero resourceVersion asks for a state at least that new (kube's watch cache).
        if let ReadAt::NotOlderThan(wanted) = revision::get_read(query)?
            && let Some(pending) = self.await_revision(now, req, wanted)?
        {
            return Ok(pending);
        }
        let key = ObjectKey::new(rt.id, namespace, name);
        let object = self.store.get(&key).ok_or_else(|| not_found(rt, name))?;
        // A custom resource's answer also depends on its definition's latest state.
        let shows_revision = rt.custom.is_none().then_some(object.revision);
        let shows = |outcome: Outcome| match outcome {
            Outcome::Response(response) => Outcome::Response(ApiResponse {
                shows_revision,
                ..response
            }),
            other => other,
        };
        match (representation, rt.custom) {
            (Representation::Table, custom) => {
                let value = match custom {
                    Some(served) => custom::view(served, object)?,
                    None => parse_stored(object)?,
                };
                let rv = object.revision.to_string();
                let include = include_object(query);
                let table = match custom {
                    Some(served) => {
                        let row = table::row(served.version(), &value, now, include);
                        table::table(served.version(), alloc::vec![row], &rv, None, None, true)
                    }
                    None => {
                        let row = table::viewed_row(rt.id, rt.view, &value, now, include);
                        table::table(rt.id, alloc::vec![row], &rv, None, None, true)
                    }
                };
                Ok(shows(table_response(&table).into()))
            }
            (Representation::Metadata(view), _) => {
                crate::api::metadata::object_response(rt, view, &object.json.bytes())
                    .map(Outcome::from)
                    .map(shows)
            }
            (_, Some(served)) => {
                Ok(ApiResponse::json(200, custom::view_bytes(served, object).into_owned()).into())
            }
            (_, None) => {
                let json = match rt.view {
                    Some(view) => view.bytes_to_view(&object.json.bytes()).into_owned(),
                    None => object.json.bytes().into_owned(),
                };
                Ok(shows(ApiResponse::json(200, json).into()))
            }
        }
    }

    pub(super) fn list(
        &self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: Option<&str>,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let representation = request::negotiate(req.accept)?;
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields =
            FieldSelector::parse_in(rt.id, rt.view, query.get("fieldSelector").unwrap_or(""))?;
        let limit = query
            .number("limit")?
            .map_or(self.config.max_list_page, |l| {
                if l == 0 {
                    self.config.max_list_page
                } else {
                    usize::try_from(l)
                        .unwrap_or(usize::MAX)
                        .min(self.config.max_list_page)
                }
            });
        let paged = query.number("limit")?.is_some_and(|l| l > 0);
        let read = revision::list_read(query, paged)?;
        let continue_token = query.get("continue").filter(|c| !c.is_empty());
        let current = self.store.revision();
        // Whether the read is of a revision the caller named (a continue token's snapshot, an
        // exact resourceVersion), which compaction can take, or of the latest state, which it
        // never takes (kube's compaction is itself a write: etcd's latest revision stays above
        // what it compacts).
        let mut named = true;
        let (snapshot, start, too_old) = match continue_token {
            Some(token) => {
                if query
                    .get("resourceVersion")
                    .is_some_and(|rv| !rv.is_empty() && rv != "0")
                {
                    return Err(Error::BadRequest(
                        "specifying resource version is not allowed when using continue".into(),
                    ));
                }
                let (rv, ns, name) = revision::decode_continue(&self.continue_key, rt.id, token)?;
                // A token handed out with an expired snapshot's 410 continues at the latest
                // revision.
                named = rv.is_some();
                (
                    rv.unwrap_or(current),
                    Some((ns, name)),
                    revision::CONTINUE_EXPIRED,
                )
            }
            None => match read {
                ReadAt::Latest | ReadAt::Any => {
                    named = false;
                    (current, None, revision::LIST_EXPIRED)
                }
                ReadAt::NotOlderThan(wanted) => {
                    if let Some(pending) = self.await_revision(now, req, wanted)? {
                        return Ok(pending);
                    }
                    named = false;
                    (current, None, revision::LIST_EXPIRED)
                }
                // A state in the future cannot be served exactly (etcd's ErrFutureRev: no wait).
                ReadAt::Exact(wanted) if wanted > current => {
                    return Err(Error::ResourceVersionTooLarge {
                        requested: wanted,
                        current,
                        retry_after_secs: 0,
                    });
                }
                ReadAt::Exact(wanted) => (wanted, None, revision::LIST_EXPIRED),
            },
        };
        let expired = |start: &Option<(String, String)>| {
            let (ns, name) = start.clone().unwrap_or_default();
            Error::ContinueExpired {
                continue_token: revision::encode_continue_latest(
                    &self.continue_key,
                    rt.id,
                    &ns,
                    &name,
                ),
            }
        };
        // Compacted away (kube's etcd compactor): a continue token gets a way to go on at the
        // latest revision; an exact read is simply too old.
        if named && snapshot < self.compactor.compacted() {
            return Err(if start.is_some() {
                expired(&start)
            } else {
                Error::Expired(too_old.into())
            });
        }
        let page = self
            .snapshot_page(
                rt.id,
                namespace,
                snapshot,
                start.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                limit,
                &labels,
                &fields,
                too_old,
            )
            .map_err(|e| match e {
                Error::Expired(_) if start.is_some() => expired(&start),
                other => other,
            })?;
        let continue_token = page.next.as_ref().map(|(ns, name)| {
            revision::encode_continue(&self.continue_key, rt.id, snapshot, ns, name)
        });
        let format = match representation {
            Representation::Table => ListFormat::Table(include_object(query)),
            Representation::Metadata(view) if view.list => ListFormat::Metadata(view),
            Representation::Metadata(_) => return Err(crate::api::metadata::not_an_object(rt)),
            _ => ListFormat::Json,
        };
        Ok(Outcome::List(alloc::boxed::Box::new(ListRender {
            resource: rt.id,
            custom: rt.custom.cloned(),
            view: rt.view,
            format,
            items: page.items,
            revision: snapshot,
            continue_token,
            remaining: page.remaining,
            now,
        })))
    }

    /// One page of the list as it was at revision `snapshot`, strictly after `start`.
    ///
    /// Objects changed since `snapshot` are rebuilt from the watch ring's `previous` versions, so
    /// every page of a paginated list shows one consistent revision, like etcd's MVCC; once the
    /// ring no longer covers `snapshot` (it left the ring, or an earlier run made it) the answer
    /// is 410 Expired with `too_old`.
    #[allow(clippy::too_many_arguments)]
    fn snapshot_page(
        &self,
        resource: ResourceId,
        namespace: Option<&str>,
        snapshot: u64,
        start: Option<(&str, &str)>,
        limit: usize,
        labels: &LabelSelector,
        fields: &FieldSelector,
        too_old: &str,
    ) -> Result<Page, Error> {
        let in_scope = |key: &ObjectKey| {
            key.resource == resource
                && namespace.is_none_or(|ns| &*key.namespace == ns)
                && start.is_none_or(|(ns, name)| (&*key.namespace, &*key.name) > (ns, name))
        };
        // For each key changed after the snapshot: its state at the snapshot (None = absent).
        let mut then: BTreeMap<ObjectKey, Option<StoredObject>> = BTreeMap::new();
        if snapshot < self.store.revision() {
            let mut events = Vec::new();
            self.store
                .ring()
                .read_after(snapshot, usize::MAX, &mut events)
                .map_err(|_| Error::Expired(too_old.into()))?;
            for event in events {
                if in_scope(&event.key) && !then.contains_key(&event.key) {
                    then.insert(event.key.clone(), event.previous.clone());
                }
            }
        }
        let selected = |k: &ObjectKey, o: &StoredObject| {
            labels.matches(&*o.index) && fields.matches_object(&k.namespace, &k.name, &*o.index)
        };
        let current = self
            .store
            .range(resource, namespace, start)
            .filter(|(k, _)| !then.contains_key(*k));
        let mut merged = MergeByKey {
            a: current.peekable(),
            b: then
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|o| (k, o)))
                .peekable(),
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut remaining = 0u64;
        for (key, object) in &mut merged {
            if !selected(key, object) {
                continue;
            }
            if items.len() < limit {
                items.push(object.clone());
                if items.len() == limit {
                    next = Some((key.namespace.to_string(), key.name.to_string()));
                }
            } else {
                remaining += 1;
            }
        }
        if remaining == 0 {
            next = None;
        }
        Ok(Page {
            items,
            next,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

    pub(super) fn start_watch(
        &mut self,
        now: UnixTime,
        req: &ApiRequest<'_>,
        rt: &ResourceType<'_>,
        namespace: Option<&str>,
        name: Option<&str>,
        query: &Query,
    ) -> Result<Outcome, Error> {
        let format = match request::negotiate(req.accept)? {
            Representation::Table => WatchFormat::Table {
                include: include_object(query),
                columns_sent: false,
            },
            // A list form on a watch is not transformed (kube sends the objects whole).
            Representation::Metadata(view) if !view.list => WatchFormat::Metadata(view),
            _ => WatchFormat::Json,
        };
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
        let fields =
            FieldSelector::parse_in(rt.id, rt.view, query.get("fieldSelector").unwrap_or(""))?;
        let bookmarks = query.flag("allowWatchBookmarks")?;
        let send_initial = query.flag("sendInitialEvents")?;
        let rv_text = query.get("resourceVersion").unwrap_or("");
        if send_initial {
            if query.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(Error::Invalid {
                    kind: "ListOptions.meta.k8s.io".into(),
                    name: String::new(),
                    causes: alloc::vec![crate::error::Cause::forbidden(
                        "resourceVersionMatch",
                        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                    )],
                });
            }
            if !bookmarks {
                return Err(Error::Invalid {
                    kind: "ListOptions.meta.k8s.io".into(),
                    name: String::new(),
                    causes: alloc::vec![crate::error::Cause::forbidden(
                        "allowWatchBookmarks",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
                    )],
                });
            }
        }
        let requested = Some(revision::parse_resource_version(rv_text)?).filter(|rv| *rv > 0);
        let timeout = query.number("timeoutSeconds")?;
        // A revision the store has not reached: wait for it, then kube's 504 as the stream's
        // ERROR event (after the revision parsed, watch errors travel in the stream).
        let failed = match requested.map(|rv| self.await_revision(now, req, rv)) {
            Some(Ok(Some(pending))) => return Ok(pending),
            Some(Err(error)) => Some(error),
            _ => None,
        };
        let revision = self.store.revision();
        let slot = self.watch_slots.take()?;
        let mut watcher = Watcher::new(
            rt.id,
            rt.custom.cloned(),
            namespace.map(Into::into),
            name.map(Into::into),
            labels,
            fields,
            format,
            bookmarks,
        )
        .with_view(rt.view)
        .holding(slot);
        watcher.deadline = timeout.map(|t| now.plus_secs(t));
        if let Some(error) = failed {
            watcher.fail(error);
            return Ok(Outcome::Watch(alloc::boxed::Box::new(watcher)));
        }
        match requested {
            Some(rv) if !send_initial => watcher.cursor = rv,
            _ => {
                // Current state as ADDED events, then changes after this revision.
                let initial = self
                    .store
                    .range(rt.id, namespace, None)
                    .filter(|(k, _)| name.is_none_or(|n| &*k.name == n))
                    .map(|(k, o)| (k.clone(), o.clone()))
                    .collect();
                watcher.set_initial(initial, revision, send_initial);
            }
        }
        Ok(Outcome::Watch(alloc::boxed::Box::new(watcher)))
    }
}

struct Page {
    items: Vec<StoredObject>,
    next: Option<(String, String)>,
    remaining: Option<u64>,
}

/// Merges two key-ordered streams (current objects, and rebuilt snapshot versions).
struct MergeByKey<A: Iterator, B: Iterator> {
    a: core::iter::Peekable<A>,
    b: core::iter::Peekable<B>,
}

impl<'a, A, B> Iterator for MergeByKey<A, B>
where
    A: Iterator<Item = (&'a ObjectKey, &'a StoredObject)>,
    B: Iterator<Item = (&'a ObjectKey, &'a StoredObject)>,
{
    type Item = (&'a ObjectKey, &'a StoredObject);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some((ka, _)), Some((kb, _))) => {
                if ka <= kb {
                    self.a.next()
                } else {
                    self.b.next()
                }
            }
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

fn include_object(query: &Query) -> IncludeObject {
    match query.get("includeObject") {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

fn table_response(value: &Value) -> ApiResponse {
    ApiResponse {
        content_type: request::TABLE,
        ..ApiResponse::json(200, j::to_vec(value))
    }
}
