//! Routes core's journal into the durable log: one task takes the entries each call left in
//! core's journal (in order, under the store lock), submits them to the log (which batches
//! them into one sealed frame and one fsync: group commit), and publishes how far they are
//! durable. What depends on that:
//!
//! - a request is answered only once every entry journaled up to the end of its call is
//!   durable (its own write, and any state its answer shows), so an acknowledged write
//!   survives `kill -9`;
//! - watch streams see events up to the durable revision only, so no client sees a change a
//!   crash could take back;
//! - while the host refuses appends (disk full, `EIO`), writes are refused before core
//!   (507/503), reads are served, and the entries taken are sent again, in order, until the
//!   host takes them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};

use nautilus_core::cluster::Record;

use super::{DurableError, DurableLog};
use crate::server::Shared;

/// Most entries taken from core and not yet durable. Beyond it, entries wait in core's
/// journal, whose own budget (`max_pending_changes`) then refuses writes with 429.
const MAX_UNACKED: usize = 16_384;
/// First and longest pause before entries the host refused are sent again.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How far the journal is durable.
#[derive(Debug, Clone, Default)]
pub(crate) struct Persisted {
    /// Journal entries durable, counted since start as core's `journaled()` counts them.
    pub(crate) entries: u64,
    /// The store revision those entries reach.
    pub(crate) revision: u64,
    /// Set while the host refuses appends: what a write gets meanwhile.
    pub(crate) failure: Option<DurableError>,
}

/// The persistence handle the serving code holds.
pub(crate) struct Persistence {
    log: DurableLog,
    wake: Notify,
    state: watch::Sender<Persisted>,
}

impl Persistence {
    /// A handle for `log`, with everything up to `revision` already durable (what was
    /// replayed at start).
    pub(crate) fn new(log: DurableLog, revision: u64) -> Arc<Self> {
        Arc::new(Self {
            log,
            wake: Notify::new(),
            state: watch::channel(Persisted {
                revision,
                ..Persisted::default()
            })
            .0,
        })
    }

    /// Tells the task that core's journal has new entries.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// The host's refusal, while appends fail.
    pub(crate) fn failure(&self) -> Option<DurableError> {
        self.state.borrow().failure.clone()
    }

    /// Waits until the first `entries` journal entries are durable; the host's refusal when
    /// appends fail before that.
    pub(crate) async fn wait(&self, entries: u64) -> Result<(), DurableError> {
        let mut state = self.state.subscribe();
        let reached = state
            .wait_for(|p| p.entries >= entries || p.failure.is_some())
            .await
            .map(|p| (p.entries >= entries, p.failure.clone()));
        match reached {
            Ok((true, _)) => Ok(()),
            Ok((false, Some(failure))) => Err(failure),
            _ => Err(DurableError::Unavailable(
                "the durable log stopped".to_string(),
            )),
        }
    }
}

/// One entry taken from core and not yet durable.
struct Unacked {
    /// Journal entries up to and including this one.
    entries: u64,
    /// The store revision after it.
    revision: u64,
    /// Its bytes, kept to send again after a refusal.
    bytes: Vec<u8>,
    /// Resolves once it is durable (or refused).
    durable: Option<oneshot::Receiver<Result<u64, DurableError>>>,
}

/// Runs the persistence task until the log stops, starting with `initial`, the entries core
/// journaled before serving (the bootstrap's).
pub(crate) async fn run(shared: Arc<Shared>, persistence: Arc<Persistence>, initial: Vec<Record>) {
    let ring = shared.ring.clone();
    let (mut taken, mut last_revision) = {
        let state = persistence.state.borrow();
        (state.entries, state.revision)
    };
    let mut initial = Some(initial);
    let mut unacked: VecDeque<Unacked> = VecDeque::new();
    let mut retry = RETRY_FIRST;
    // Set by a refusal: everything in flight failed with it and is sent again, in order.
    let mut resend = false;
    loop {
        if resend {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
            for entry in &mut unacked {
                match persistence
                    .log
                    .submit(entry.revision, entry.bytes.clone())
                    .await
                {
                    Ok(durable) => entry.durable = Some(durable),
                    Err(e) => {
                        tracing::error!(error = %e, "a journal entry cannot be persisted");
                        persistence.state.send_modify(|p| p.failure = Some(e));
                        return;
                    }
                }
            }
            resend = false;
        } else if unacked.len() < MAX_UNACKED && persistence.failure().is_none() {
            let records = match initial.take() {
                Some(records) => records,
                None => shared.lock().take_records(),
            };
            for record in records {
                taken = taken.saturating_add(1);
                last_revision = record.revision().unwrap_or(last_revision);
                let bytes = record.encode();
                match persistence.log.submit(last_revision, bytes.clone()).await {
                    Ok(durable) => unacked.push_back(Unacked {
                        entries: taken,
                        revision: last_revision,
                        bytes,
                        durable: Some(durable),
                    }),
                    Err(e) => {
                        // Nothing after an entry that cannot be persisted can be, in order.
                        tracing::error!(error = %e, "a journal entry cannot be persisted");
                        persistence.state.send_modify(|p| p.failure = Some(e));
                        return;
                    }
                }
            }
        }
        // Wait for the oldest entry to be durable, or for new entries.
        let outcome = match unacked.front_mut().and_then(|e| e.durable.as_mut()) {
            Some(durable) => tokio::select! {
                outcome = durable => Some(outcome),
                () = persistence.wake.notified() => None,
            },
            None => {
                persistence.wake.notified().await;
                None
            }
        };
        let refused = match outcome {
            None => continue,
            Some(Err(_)) => Some(DurableError::Unavailable(
                "the durable log stopped".to_string(),
            )),
            Some(Ok(Err(refused))) => Some(refused),
            Some(Ok(Ok(_position))) => {
                // The oldest is durable; so is whatever after it resolved already.
                let mut reached = unacked.pop_front();
                let mut refused = None;
                while let Some(next) = unacked.front_mut() {
                    match next.durable.as_mut().map(oneshot::Receiver::try_recv) {
                        Some(Ok(Ok(_))) => reached = unacked.pop_front(),
                        Some(Ok(Err(e))) => {
                            refused = Some(e);
                            break;
                        }
                        _ => break,
                    }
                }
                if let Some(entry) = reached {
                    retry = RETRY_FIRST;
                    ring.set_visible(entry.revision);
                    if persistence.failure().is_some() {
                        tracing::info!("the host takes appends again; writes resume");
                    }
                    persistence.state.send_modify(|p| {
                        p.entries = entry.entries;
                        p.revision = entry.revision;
                        p.failure = None;
                    });
                    shared.revision.send_if_modified(|r| {
                        std::mem::replace(r, entry.revision) != entry.revision
                    });
                }
                refused
            }
        };
        if let Some(refused) = refused {
            tracing::error!(error = %refused, waiting = unacked.len(), "the host refused appends; writes are refused until it takes them again");
            for entry in &mut unacked {
                entry.durable = None;
            }
            persistence.state.send_modify(|p| p.failure = Some(refused));
            resend = true;
        }
    }
}
