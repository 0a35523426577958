//! Connection slots: a total limit (`--max-connections`), a limit per source address
//! (`--max-connections-per-source`), and, when every slot is taken, room made for the newcomer
//! by evicting the oldest connection that is still handshaking or waiting for its first request
//! (else the longest-idle one) of the source holding the most, provided that source holds more
//! than the newcomer's would. A flood from one source (or a few) thus never locks out another:
//! the flood competes only with itself.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A connection spliced to the enclave this long without a byte may be evicted.
const IDLE_EVICTABLE: Duration = Duration::from_secs(1);

/// Where a connection is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Stage {
    /// Accepted; the TLS handshake (or, passing through, the first bytes) has not finished.
    Handshake = 0,
    /// TLS is up; no request byte yet.
    AwaitingRequest = 1,
    /// Bytes flow to and from the enclave.
    Spliced = 2,
}

/// Byte counts and last activity of one connection.
pub(crate) struct Traffic {
    epoch: Instant,
    last_ms: AtomicU64,
    pub(crate) from_client: AtomicU64,
    pub(crate) from_enclave: AtomicU64,
}

impl Traffic {
    pub(crate) fn new() -> Self {
        Traffic {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            from_client: AtomicU64::new(0),
            from_enclave: AtomicU64::new(0),
        }
    }

    /// Counts `bytes` read from the client (`from_client`) or the enclave.
    pub(crate) fn record(&self, from_client: bool, bytes: usize) {
        let counter = if from_client {
            &self.from_client
        } else {
            &self.from_enclave
        };
        counter.fetch_add(bytes as u64, Ordering::Relaxed);
        crate::metrics::relayed(from_client, bytes);
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub(crate) fn last_activity(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// What a connection's task shares with the slot table.
pub(crate) struct SlotState {
    stage: AtomicU8,
    pub(crate) traffic: Arc<Traffic>,
    evicted: Notify,
}

impl SlotState {
    /// Moves the connection to `stage`.
    pub(crate) fn enter(&self, stage: Stage) {
        self.stage.store(stage as u8, Ordering::Relaxed);
    }

    fn stage(&self) -> Stage {
        match self.stage.load(Ordering::Relaxed) {
            0 => Stage::Handshake,
            1 => Stage::AwaitingRequest,
            _ => Stage::Spliced,
        }
    }

    /// Completes when the slot table evicts this connection to make room for another source.
    pub(crate) async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

/// Why a new connection got no slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its source already holds `--max-connections-per-source`.
    SourceLimit,
    /// Every slot is taken and no source holds more than the newcomer's would.
    Full,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::SourceLimit => "source_limit",
            Refusal::Full => "limit",
        }
    }
}

struct Table {
    next_id: u64,
    total: usize,
    sources: HashMap<IpAddr, BTreeMap<u64, Arc<SlotState>>>,
}

/// The slot table, shared by the accept loop and the connection tasks.
pub(crate) struct Slots {
    table: Mutex<Table>,
    max_total: usize,
    max_per_source: usize,
}

/// One connection's slot, given back when dropped.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    source: IpAddr,
    id: u64,
    pub(crate) state: Arc<SlotState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(self.source, self.id);
    }
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Slots {
            table: Mutex::new(Table {
                next_id: 0,
                total: 0,
                sources: HashMap::new(),
            }),
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // The table is consistent after every statement; a panic elsewhere cannot tear it.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().total
    }

    /// A slot for a connection from `source`, evicting another source's connection when every
    /// slot is taken (the evicted task is told and closes its connection).
    pub(crate) fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Slot, Refusal> {
        let mut table = self.lock();
        let mine = table.sources.get(&source).map_or(0, BTreeMap::len);
        if mine >= self.max_per_source {
            return Err(Refusal::SourceLimit);
        }
        if table.total >= self.max_total {
            let victim = evictable(&table, mine).ok_or(Refusal::Full)?;
            let (victim_source, victim_id) = victim;
            if let Some(state) = remove(&mut table, victim_source, victim_id) {
                state.evicted.notify_one();
                crate::metrics::connection_evicted();
            }
        }
        let id = table.next_id;
        table.next_id = table.next_id.wrapping_add(1);
        let state = Arc::new(SlotState {
            stage: AtomicU8::new(Stage::Handshake as u8),
            traffic: Arc::new(Traffic::new()),
            evicted: Notify::new(),
        });
        table
            .sources
            .entry(source)
            .or_default()
            .insert(id, Arc::clone(&state));
        table.total += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            source,
            id,
            state,
        })
    }

    fn release(&self, source: IpAddr, id: u64) {
        remove(&mut self.lock(), source, id);
    }
}

/// Takes connection `id` of `source` out of the table (once: an evicted connection is already
/// gone when its task drops its slot).
fn remove(table: &mut Table, source: IpAddr, id: u64) -> Option<Arc<SlotState>> {
    let conns = table.sources.get_mut(&source)?;
    let state = conns.remove(&id)?;
    if conns.is_empty() {
        table.sources.remove(&source);
    }
    table.total = table.total.saturating_sub(1);
    Some(state)
}

/// The connection to evict for a newcomer whose source holds `mine`: of the source holding the
/// most (more than `mine + 1`, so the eviction never leaves it below the newcomer's source), the
/// oldest one still handshaking or awaiting its first request, else its longest-idle one.
fn evictable(table: &Table, mine: usize) -> Option<(IpAddr, u64)> {
    let (source, conns) = table
        .sources
        .iter()
        .filter(|(_, conns)| conns.len() > mine.saturating_add(1))
        .max_by_key(|(_, conns)| conns.len())?;
    // Ids grow with age, so the first match is the oldest.
    if let Some((id, _)) = conns
        .iter()
        .find(|(_, state)| state.stage() != Stage::Spliced)
    {
        return Some((*source, *id));
    }
    let now = Instant::now();
    conns
        .iter()
        .map(|(id, state)| (id, state.traffic.last_activity()))
        .filter(|(_, last)| now.saturating_duration_since(*last) >= IDLE_EVICTABLE)
        .min_by_key(|(_, last)| *last)
        .map(|(id, _)| (*source, *id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test]
    async fn a_source_at_its_limit_is_refused_and_others_still_get_in() {
        let slots = Slots::new(10, 3);
        let flood: Vec<Slot> = (0..3).map(|_| slots.admit(ip(1)).unwrap()).collect();
        assert_eq!(slots.admit(ip(1)).err(), Some(Refusal::SourceLimit));
        let other = slots.admit(ip(2)).unwrap();
        drop(flood);
        assert_eq!(slots.open(), 1);
        drop(other);
        assert_eq!(slots.open(), 0);
    }

    #[tokio::test]
    async fn a_full_table_evicts_the_oldest_waiting_connection_of_the_biggest_source() {
        let slots = Slots::new(4, 4);
        let flood: Vec<Slot> = (0..4).map(|_| slots.admit(ip(1)).unwrap()).collect();
        // The oldest has a request under way; the next one is only handshaking.
        flood[0].state.enter(Stage::Spliced);
        flood[0].state.traffic.record(true, 1);
        let newcomer = slots.admit(ip(2)).unwrap();
        assert_eq!(slots.open(), 4);
        // The evicted task is told (a stored notification: it need not be waiting yet).
        tokio::time::timeout(Duration::from_secs(5), flood[1].state.evicted())
            .await
            .expect("the oldest handshaking connection is evicted");
        // Dropping the evicted slot later changes nothing.
        let mut flood = flood;
        drop(flood.remove(1));
        assert_eq!(slots.open(), 4);
        // A source that would hold as many as the biggest is not given another's slot.
        let _second = slots.admit(ip(2)).unwrap();
        assert_eq!(slots.open(), 4);
        assert_eq!(slots.admit(ip(2)).err(), Some(Refusal::Full));
        drop(newcomer);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_spliced_connections_are_not_evicted_but_idle_ones_are() {
        let slots = Slots::new(2, 2);
        let flood: Vec<Slot> = (0..2).map(|_| slots.admit(ip(1)).unwrap()).collect();
        for slot in &flood {
            slot.state.enter(Stage::Spliced);
            slot.state.traffic.record(true, 1);
        }
        assert_eq!(slots.admit(ip(2)).err(), Some(Refusal::Full));
        tokio::time::advance(IDLE_EVICTABLE).await;
        flood[0].state.traffic.record(false, 1);
        let _newcomer = slots.admit(ip(2)).unwrap();
        tokio::time::timeout(Duration::from_secs(5), flood[1].state.evicted())
            .await
            .expect("the idle connection is evicted");
    }
}
