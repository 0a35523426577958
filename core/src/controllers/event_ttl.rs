//! Events expire an hour after they are recorded (kube-apiserver's `--event-ttl`), so a busy
//! cluster's event stream cannot fill the store's budget.

use alloc::collections::VecDeque;

use crate::api::ApiServer;
use crate::resource::ResourceId;
use crate::store::ObjectKey;
use crate::{UnixTime, json as j};

/// Expiry times of recorded events, oldest first (creation order is time order).
#[derive(Debug, Default)]
pub(crate) struct EventTtl {
    queue: VecDeque<(UnixTime, ObjectKey)>,
}

impl EventTtl {
    /// When the oldest event expires.
    pub(crate) fn due(&self) -> Option<UnixTime> {
        self.queue.front().map(|(t, _)| *t)
    }
}

impl ApiServer {
    /// Schedules the expiry of a just-created event.
    pub(crate) fn note_event_created(&mut self, now: UnixTime, key: ObjectKey) {
        if key.resource == ResourceId::Events {
            self.event_ttl
                .queue
                .push_back((now.plus_secs(self.config.event_ttl_secs), key));
        }
    }

    /// Deletes the events whose time has come.
    pub(crate) fn expire_events(&mut self, now: UnixTime) {
        while let Some((due, _)) = self.event_ttl.queue.front() {
            if *due > now {
                break;
            }
            let Some((_, key)) = self.event_ttl.queue.pop_front() else {
                break;
            };
            let Some(object) = self.store.get(&key) else {
                continue;
            };
            let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(&object.json) else {
                continue;
            };
            // An event updated since (count bumped) lives on from its last timestamp.
            let last = crate::UnixTime::parse_rfc3339(j::str_at(&event, "/lastTimestamp"));
            if let Some(last) = last
                && last.plus_secs(self.config.event_ttl_secs) > now
            {
                self.event_ttl
                    .queue
                    .push_back((last.plus_secs(self.config.event_ttl_secs), key));
                continue;
            }
            let _ = self.write_delete(&key, &mut event);
        }
    }
}
