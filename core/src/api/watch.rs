//! One watch stream's state: its filter, its position in the ring and its output format. The
//! runtime owns a [`Watcher`] per stream and calls [`Watcher::poll`] whenever the ring has grown;
//! a watcher never blocks a writer, and a watcher that falls behind the ring ends with the
//! `ERROR` event (410 Expired) kube-apiserver sends, so the client re-lists.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Value, json};

use super::request::MetadataView;
use super::table::{self, IncludeObject};
use crate::resource::ResourceId;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ObjectIndex, ObjectKey, StoredObject};
use crate::sync::Arc;
use crate::watch::{EventType, WatchEvent, WatchRing};
use crate::{Error, UnixTime};

/// How events are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFormat {
    /// Plain objects.
    Json,
    /// One-row Tables (`kubectl get -w`); only the first carries `columnDefinitions`.
    Table {
        /// What each row's `object` holds.
        include: IncludeObject,
        /// Whether the column definitions went out already.
        columns_sent: bool,
    },
    /// `PartialObjectMetadata` objects, as JSON lines or protobuf frames.
    Metadata(MetadataView),
}

/// What a poll produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchPoll {
    /// Wrote this many events; poll again.
    Wrote(usize),
    /// Nothing new; wait for the ring to grow (or a bookmark/deadline timer).
    Idle,
    /// The stream is over (an ERROR event was written, or the deadline passed).
    Closed,
}

/// One watch stream.
#[derive(Debug)]
pub struct Watcher {
    resource: ResourceId,
    /// The served version of a custom resource: its objects are rewritten to it.
    custom: Option<crate::crd::Served>,
    /// The view of a built-in kind the stream serves: its objects are converted to it.
    view: Option<crate::resource::View>,
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    format: WatchFormat,
    bookmarks: bool,
    /// Changes after this revision are still to be sent.
    pub(crate) cursor: u64,
    /// When the stream ends (`timeoutSeconds`).
    pub(crate) deadline: Option<UnixTime>,
    initial: VecDeque<StoredObject>,
    initial_end_bookmark: bool,
    closed: bool,
    /// An error the stream reports as its only event (`ERROR`), then closes.
    failure: Option<Error>,
    scratch: Vec<Arc<WatchEvent>>,
    /// Its place among the open watches, given back when the watcher is dropped.
    slot: Option<crate::watch::WatchSlot>,
}

impl Watcher {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        resource: ResourceId,
        custom: Option<crate::crd::Served>,
        namespace: Option<String>,
        name: Option<String>,
        labels: LabelSelector,
        fields: FieldSelector,
        format: WatchFormat,
        bookmarks: bool,
    ) -> Self {
        Self {
            resource,
            custom,
            view: None,
            namespace,
            name,
            labels,
            fields,
            format,
            bookmarks,
            cursor: 0,
            deadline: None,
            initial: VecDeque::new(),
            initial_end_bookmark: false,
            closed: false,
            failure: None,
            scratch: Vec::new(),
            slot: None,
        }
    }

    /// The watcher holding `slot` among the open watches until it is dropped.
    pub(crate) fn holding(mut self, slot: crate::watch::WatchSlot) -> Self {
        self.slot = Some(slot);
        self
    }

    /// Queues the current state as ADDED events, then follows changes after `revision`.
    pub(crate) fn set_initial(
        &mut self,
        objects: Vec<(ObjectKey, StoredObject)>,
        revision: u64,
        end_bookmark: bool,
    ) {
        self.initial = objects
            .into_iter()
            .filter(|(k, o)| self.selects(k, &o.index))
            .map(|(_, o)| o)
            .collect();
        self.cursor = revision;
        self.initial_end_bookmark = end_bookmark;
    }

    /// Makes the stream one `ERROR` event carrying `error`'s Status, as kube-apiserver's error
    /// watcher does for errors found after the request was accepted.
    pub(crate) fn fail(&mut self, error: Error) {
        self.initial.clear();
        self.failure = Some(error);
    }

    /// The revision up to which this stream has sent everything.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Whether the stream has written everything there is to write: its initial state, and the
    /// ring up to its newest event. The runtime then waits for the next write instead of polling
    /// again at once (with 3,000 watchers, that second poll per event was a third of the work).
    pub fn caught_up(&self, ring: &WatchRing) -> bool {
        self.initial.is_empty()
            && !self.initial_end_bookmark
            && self.failure.is_none()
            && self.cursor >= ring.newest_visible()
    }

    /// Bytes this watcher holds beyond itself: the current state queued for a watch without a
    /// revision (one handle per object; the objects themselves are shared with the store).
    pub fn queued_bytes(&self) -> usize {
        self.initial
            .len()
            .saturating_mul(core::mem::size_of::<StoredObject>())
    }

    /// The resource watched, group-qualified (`pods`, `deployments.apps`), for metrics labels.
    pub fn resource_name(&self) -> String {
        crate::cluster::object::qualified(self.resource.info())
    }

    /// When the stream should end, if the client set `timeoutSeconds`.
    pub fn deadline(&self) -> Option<UnixTime> {
        self.deadline
    }

    /// `Content-Type` of the stream.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            WatchFormat::Json => super::request::JSON,
            WatchFormat::Table { .. } => super::request::TABLE,
            WatchFormat::Metadata(view) if view.protobuf => {
                crate::protobuf::encode::WATCH_MEDIA_TYPE
            }
            WatchFormat::Metadata(_) => super::request::JSON,
        }
    }

    /// Whether the client asked for BOOKMARK events.
    pub fn wants_bookmarks(&self) -> bool {
        self.bookmarks && !matches!(self.format, WatchFormat::Table { .. })
    }

    /// The protobuf form, when the stream is one.
    /// An `ERROR` event carrying `error`'s Status, framed as this watch's events are.
    fn write_error(&self, error: &Error, out: &mut Vec<u8>) {
        if self.protobuf().is_some() {
            let status = crate::protobuf::encode::status(&error.to_status());
            crate::protobuf::encode::watch_frame("ERROR", &status, out);
        } else {
            out.extend_from_slice(b"{\"type\":\"ERROR\",\"object\":");
            out.extend_from_slice(&crate::json::to_vec(&error.to_status()));
            out.extend_from_slice(b"}\n");
        }
    }

    fn protobuf(&self) -> Option<MetadataView> {
        match self.format {
            WatchFormat::Metadata(view) if view.protobuf => Some(view),
            _ => None,
        }
    }

    fn selects(&self, key: &ObjectKey, index: &ObjectIndex) -> bool {
        self.labels.matches(index) && self.fields.matches_object(&key.namespace, &key.name, index)
    }

    fn in_scope(&self, key: &ObjectKey) -> bool {
        key.resource == self.resource
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| &*key.namespace == ns)
            && self.name.as_deref().is_none_or(|n| &*key.name == n)
    }

    /// Writes up to `max_events` pending events to `out` as newline-delimited JSON.
    pub fn poll(
        &mut self,
        ring: &WatchRing,
        now: UnixTime,
        out: &mut Vec<u8>,
        max_events: usize,
    ) -> WatchPoll {
        self.poll_limited(ring, now, out, max_events, usize::MAX)
    }

    /// Like [`Watcher::poll`], and stops adding events once `out` holds `max_bytes` (after at
    /// least one event, so one event larger than the limit still goes out whole): the runtime
    /// sizes each chunk to what the stream's buffer may hold. `Wrote` (possibly of zero events,
    /// when a full batch was all outside the watch's scope) means there may be more: poll again.
    pub fn poll_limited(
        &mut self,
        ring: &WatchRing,
        now: UnixTime,
        out: &mut Vec<u8>,
        max_events: usize,
        max_bytes: usize,
    ) -> WatchPoll {
        if self.closed {
            return WatchPoll::Closed;
        }
        if let Some(error) = self.failure.take() {
            self.write_error(&error, out);
            self.closed = true;
            return WatchPoll::Closed;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.closed = true;
            return WatchPoll::Closed;
        }
        let mut wrote = 0;
        while wrote < max_events && out.len() < max_bytes {
            let Some(object) = self.initial.pop_front() else {
                break;
            };
            self.write_event(EventType::Added.as_str(), &object, now, out);
            wrote += 1;
        }
        if !self.initial.is_empty() {
            return WatchPoll::Wrote(wrote);
        }
        if self.initial_end_bookmark {
            self.initial_end_bookmark = false;
            self.write_bookmark_with(out, true);
            wrote += 1;
        }
        let mut events = core::mem::take(&mut self.scratch);
        events.clear();
        let batch = max_events.saturating_sub(wrote).max(1);
        let reached = match ring.read_visible_after_reaching(self.cursor, batch, &mut events) {
            Ok((_, reached)) => reached,
            Err(expired) => {
                let error = Error::Expired(alloc::format!(
                    "too old resource version: {} ({})",
                    expired.requested,
                    expired.oldest.saturating_add(1)
                ));
                self.write_error(&error, out);
                self.closed = true;
                self.scratch = events;
                return WatchPoll::Closed;
            }
        };
        // A full batch, or a chunk that reached `max_bytes`, may leave events behind.
        let mut more = events.len() >= batch;
        for event in &events {
            if out.len() >= max_bytes && wrote > 0 {
                more = true;
                break;
            }
            self.cursor = event.revision();
            if !self.in_scope(&event.key) {
                continue;
            }
            let now_selected = self.selects(&event.key, &event.object.index);
            let was_selected = event
                .previous
                .as_ref()
                .is_some_and(|p| self.selects(&event.key, &p.index));
            let kind = match (event.kind, was_selected, now_selected) {
                (EventType::Added, _, true) => EventType::Added,
                (EventType::Modified, true, true) => EventType::Modified,
                (EventType::Modified, false, true) => EventType::Added,
                (EventType::Modified, true, false) => EventType::Deleted,
                (EventType::Deleted, _, true) => EventType::Deleted,
                _ => continue,
            };
            self.write_event(kind.as_str(), &event.object, now, out);
            wrote += 1;
        }
        if !more {
            // Every event up to `reached` is written: revisions without one (skipped by a
            // recovered run, compaction marks) are passed too, so the stream is caught up.
            self.cursor = self.cursor.max(reached);
        }
        events.clear();
        self.scratch = events;
        if wrote == 0 && !more {
            WatchPoll::Idle
        } else {
            WatchPoll::Wrote(wrote)
        }
    }

    /// The stream serves `view` of its kind (its objects converted to that shape).
    pub(crate) fn with_view(mut self, view: Option<crate::resource::View>) -> Self {
        self.view = view;
        self
    }

    /// Writes a BOOKMARK event at the current cursor.
    pub fn write_bookmark(&mut self, out: &mut Vec<u8>) {
        self.write_bookmark_with(out, false);
    }

    fn write_bookmark_with(&mut self, out: &mut Vec<u8>, initial_end: bool) {
        let (kind, api_version) = match &self.custom {
            Some(served) => (served.definition.kind.clone(), served.api_version()),
            None => {
                let info = self.view.map_or(self.resource.info(), |v| v.info());
                (String::from(info.kind), String::from(info.api_version()))
            }
        };
        let mut metadata = json!({"resourceVersion": self.cursor.to_string()});
        if initial_end && let Some(meta) = metadata.as_object_mut() {
            meta.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        let object = match self.format {
            WatchFormat::Metadata(view) => super::metadata::partial_of(view.api_version, metadata),
            _ => json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}),
        };
        if let Some(view) = self.protobuf() {
            let body = crate::protobuf::encode::partial_object_metadata(view.api_version, &object);
            crate::protobuf::encode::watch_frame("BOOKMARK", &body, out);
            return;
        }
        out.extend_from_slice(b"{\"type\":\"BOOKMARK\",\"object\":");
        out.extend_from_slice(&crate::json::to_vec(&object));
        out.extend_from_slice(b"}\n");
    }

    fn write_event(&mut self, kind: &str, object: &StoredObject, now: UnixTime, out: &mut Vec<u8>) {
        if let WatchFormat::Metadata(view) = self.format {
            let partial = super::metadata::partial(view.api_version, &object.json.bytes());
            if view.protobuf {
                let body =
                    crate::protobuf::encode::partial_object_metadata(view.api_version, &partial);
                crate::protobuf::encode::watch_frame(kind, &body, out);
            } else {
                out.extend_from_slice(b"{\"type\":\"");
                out.extend_from_slice(kind.as_bytes());
                out.extend_from_slice(b"\",\"object\":");
                out.extend_from_slice(&crate::json::to_vec(&partial));
                out.extend_from_slice(b"}\n");
            }
            return;
        }
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match (&mut self.format, &self.custom) {
            (WatchFormat::Json | WatchFormat::Metadata(_), None) => match self.view {
                Some(view) => out.extend_from_slice(&view.bytes_to_view(&object.json.bytes())),
                None => object.json.append_to(out),
            },
            (WatchFormat::Json | WatchFormat::Metadata(_), Some(served)) => {
                out.extend_from_slice(&super::custom::view_bytes(served, object));
            }
            (
                WatchFormat::Table {
                    include,
                    columns_sent,
                },
                custom,
            ) => {
                let rv = object.revision.to_string();
                let t = match custom {
                    Some(served) => {
                        let value = super::custom::view(served, object).unwrap_or(Value::Null);
                        let row = table::row(served.version(), &value, now, *include);
                        table::table(
                            served.version(),
                            alloc::vec![row],
                            &rv,
                            None,
                            None,
                            !*columns_sent,
                        )
                    }
                    None => {
                        let value: Value =
                            serde_json::from_slice(&object.json.bytes()).unwrap_or(Value::Null);
                        let row =
                            table::viewed_row(self.resource, self.view, &value, now, *include);
                        table::table(
                            self.resource,
                            alloc::vec![row],
                            &rv,
                            None,
                            None,
                            !*columns_sent,
                        )
                    }
                };
                *columns_sent = true;
                out.extend_from_slice(&crate::json::to_vec(&t));
            }
        }
        out.extend_from_slice(b"}\n");
    }
}
