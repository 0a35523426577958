//! Level 2 (`light-client`) fixture: the SDK's real `AuthenticatedEventsClient`, seeded with
//! the fixture's epoch-0 committee, reads the package's authenticated event stream over TLS
//! from the fixture node. The scripted events come out in order with their contents (across
//! committee changes too), transient faults are survived, and every forgery ends the stream
//! with an error without a forged event ever being yielded. No nautilus binaries needed.

// Included by path until tests/src/lib.rs exports it (`pub mod sui_fixture;`).
#[path = "../src/sui_fixture/mod.rs"]
#[allow(dead_code, unreachable_pub)]
mod sui_fixture;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sui_fixture::ChainEvent;
use sui_fixture::dev::runtime;
use sui_fixture::light::{
    LightChain, LightNode, start_light, start_light_on, start_light_sharing_ca,
};
use sui_rpc::light_client::events::{AuthenticatedEventsClient, AuthenticatedEventsConfig};
use sui_rpc::light_client::{AuthenticatedEvent, LightClient, LightClientError};
use sui_sdk_types::{Address, ValidatorCommittee};

const PACKAGE: [u8; 32] = [0x5a; 32];

/// What a stream event must look like: position, level-1 transaction digest, type, BCS.
#[derive(Clone, Debug, PartialEq)]
struct Expected {
    checkpoint: u64,
    tx: u64,
    index: u32,
    digest: String,
    type_: String,
    contents: Vec<u8>,
}

/// Pushes a checkpoint and records the stream events it should yield.
fn push(chain: &mut LightChain, expected: &mut Vec<Expected>, txs: Vec<Vec<ChainEvent>>) -> u64 {
    let cp = chain.tip() + 1;
    for (t, events) in txs.iter().enumerate() {
        for (i, e) in events.iter().enumerate() {
            if let Some((name, contents)) = sui_fixture::staking_bcs(e) {
                expected.push(Expected {
                    checkpoint: cp,
                    tx: t as u64,
                    index: i as u32,
                    digest: sui_fixture::tx_digest(cp, t),
                    type_: format!("{}::staking::{name}", Address::new(PACKAGE)),
                    contents,
                });
            }
        }
    }
    let n = chain.push(txs);
    assert_eq!(n, cp);
    n
}

fn seen(e: &AuthenticatedEvent) -> Expected {
    Expected {
        checkpoint: e.checkpoint,
        tx: e.transaction_index,
        index: e.event_index,
        digest: e.transaction_digest.to_string(),
        type_: e.event.type_.to_string(),
        contents: e.event.contents.clone(),
    }
}

fn deposit(n: u8, amount: u64) -> ChainEvent {
    ChainEvent::Deposit {
        stake: [n; 32],
        owner: [n.wrapping_add(100); 32],
        amount,
    }
}

/// A script exercising every event kind, several transactions and events per checkpoint,
/// and checkpoints with foreign events only.
fn script(chain: &mut LightChain, expected: &mut Vec<Expected>) {
    push(chain, expected, vec![vec![deposit(1, 2_000_000_000)]]);
    push(chain, expected, vec![vec![ChainEvent::Foreign]]);
    push(
        chain,
        expected,
        vec![
            vec![
                ChainEvent::Foreign,
                deposit(2, 3_000_000_000),
                deposit(3, 7),
            ],
            vec![ChainEvent::Slash {
                stake: [1; 32],
                amount: 500,
            }],
            vec![ChainEvent::Foreign],
            vec![
                ChainEvent::Malformed,
                ChainEvent::Withdraw { stake: [3; 32] },
            ],
        ],
    );
    chain.tick(2);
    push(
        chain,
        expected,
        vec![vec![deposit(4, 1)], vec![deposit(5, 2)]],
    );
}

struct Knobs {
    start: Option<u64>,
    page: u32,
    interval: Duration,
    retries: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            start: Some(0),
            page: 1000,
            interval: Duration::from_millis(100),
            retries: 5,
        }
    }
}

fn sdk_client(node: &LightNode) -> sui_rpc::Client {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&node.ca_pem))
        .domain_name("localhost");
    let endpoint = tonic::transport::Endpoint::from_shared(node.url())
        .unwrap()
        .tls_config(tls)
        .unwrap();
    sui_rpc::Client::from_endpoint(&endpoint)
}

/// Runs the SDK's stream until `want` events came, an error came, it ended, or `limit`.
async fn read(
    node: &LightNode,
    anchor: ValidatorCommittee,
    knobs: &Knobs,
    want: usize,
    limit: Duration,
) -> (Vec<AuthenticatedEvent>, Option<LightClientError>) {
    let light = LightClient::new(sdk_client(node), anchor);
    let mut config = AuthenticatedEventsConfig::new(Address::new(PACKAGE));
    config.start_checkpoint = knobs.start;
    config.page_size = knobs.page;
    config.head_check_interval = knobs.interval;
    config.retry_backoff = Duration::from_millis(20);
    config.retry_jitter = Duration::from_millis(10);
    config.max_connect_retries = knobs.retries;
    let stream = AuthenticatedEventsClient::new(light, config).stream();
    let mut stream = Box::pin(stream);
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while events.len() < want {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(e))) => events.push(e),
            Ok(Some(Err(e))) => return (events, Some(e)),
            Ok(None) | Err(_) => break,
        }
    }
    (events, None)
}

/// Reads the whole scripted stream with the default knobs: no error, and exactly `expected`.
fn read_all(
    rt: &tokio::runtime::Runtime,
    node: &LightNode,
    anchor: ValidatorCommittee,
    expected: &[Expected],
) {
    let (events, err) = rt.block_on(read(
        node,
        anchor,
        &Knobs::default(),
        expected.len(),
        Duration::from_secs(30),
    ));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.iter().map(seen).collect::<Vec<_>>(), expected);
}

/// Waits until a client started after `base` calls has made its start (GetCheckpoint(latest)
/// and the head proof), then a little more.
fn after_start(chain: &Mutex<LightChain>, base: u64) {
    while chain.lock().unwrap().served() < base + 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(200));
}

fn setup(validators: usize) -> (LightChain, Vec<Expected>) {
    let mut chain = LightChain::new(PACKAGE, validators);
    let mut expected = Vec::new();
    script(&mut chain, &mut expected);
    // The tip does not touch the stream head, so the SDK starts from `start_checkpoint`
    // with an empty head (see `initial_state` in the SDK).
    chain.tick(1);
    (chain, expected)
}

#[test]
fn scripted_events_come_out_in_order_with_their_contents_and_live_ones_follow() {
    let rt = runtime();
    let (chain, mut expected) = setup(4);
    let anchor = chain.trust_anchor();
    assert_eq!(
        bcs::from_bytes::<ValidatorCommittee>(&chain.trust_anchor_bcs()).unwrap(),
        anchor
    );
    assert_eq!(chain.stream_events(), expected.len() as u64);
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    let (events, err) = rt.block_on(read(
        &node,
        anchor.clone(),
        &Knobs::default(),
        expected.len(),
        Duration::from_secs(30),
    ));
    assert!(err.is_none(), "{err:?}");
    let got: Vec<Expected> = events.iter().map(seen).collect();
    assert_eq!(got, expected);

    // A live tail: a client started at the tip sees what is pushed after it started. The SDK
    // takes its starting head from the tip's proof, so the tip must be a settlement (see
    // `tailing_from_a_quiet_tip_with_history_fails` for the other case).
    push(
        &mut chain.lock().unwrap(),
        &mut expected,
        vec![vec![deposit(8, 8)]],
    );
    let before = expected.len();
    let pusher = {
        let chain = chain.clone();
        let base = chain.lock().unwrap().served();
        std::thread::spawn(move || {
            after_start(&chain, base);
            let mut more = Vec::new();
            let mut c = chain.lock().unwrap();
            push(&mut c, &mut more, vec![vec![deposit(9, 9)]]);
            c.tick(1);
            push(
                &mut c,
                &mut more,
                vec![vec![ChainEvent::Withdraw { stake: [9; 32] }]],
            );
            more
        })
    };
    let knobs = Knobs {
        start: None,
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(&node, anchor, &knobs, 2, Duration::from_secs(30)));
    let more = pusher.join().unwrap();
    expected.extend(more.iter().cloned());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.iter().map(seen).collect::<Vec<_>>(), more);
    assert_eq!(expected.len(), before + 2);
}

#[test]
fn the_committee_ratchets_across_epoch_changes() {
    let rt = runtime();
    let mut chain = LightChain::new(PACKAGE, 4);
    let mut expected = Vec::new();
    push(&mut chain, &mut expected, vec![vec![deposit(1, 10)]]);
    let end0 = chain.end_epoch(7);
    push(
        &mut chain,
        &mut expected,
        vec![vec![deposit(2, 20)], vec![deposit(3, 30)]],
    );
    chain.tick(3);
    let end1 = chain.end_epoch(1);
    push(
        &mut chain,
        &mut expected,
        vec![vec![ChainEvent::Withdraw { stake: [2; 32] }]],
    );
    chain.tick(1);
    assert!(end0 < end1);
    assert_eq!(chain.epoch(), 2);
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    read_all(&rt, &node, anchor, &expected);
}

/// Runs the stream with `fault` set from the start and returns what it yielded.
fn forged(
    fault: impl FnOnce(&mut LightChain),
    epochs: bool,
) -> (Vec<Expected>, Vec<Expected>, Option<LightClientError>) {
    let rt = runtime();
    let (mut chain, mut expected) = setup(4);
    if epochs {
        chain.end_epoch(4);
        push(&mut chain, &mut expected, vec![vec![deposit(7, 70)]]);
        chain.tick(1);
    }
    fault(&mut chain);
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &Knobs::default(),
        usize::MAX,
        Duration::from_secs(20),
    ));
    let got: Vec<Expected> = events.iter().map(seen).collect();
    // Whatever was yielded before the error is genuine: a prefix of the chain's stream.
    assert!(
        expected.starts_with(&got),
        "forged events were yielded: {got:#?}"
    );
    (expected, got, err)
}

/// Which check of the SDK's light client a forgery must trip.
fn mmr(e: &LightClientError) -> bool {
    matches!(e, LightClientError::MmrMismatch(_))
}
fn signature(e: &LightClientError) -> bool {
    matches!(e, LightClientError::InvalidSignature(_))
}
fn artifacts(e: &LightClientError) -> bool {
    matches!(
        e,
        LightClientError::InvalidProof(sui_sdk_types::proof::ProofError::ArtifactsDigestMismatch)
    )
}

#[test]
fn every_forgery_is_refused_by_the_check_it_targets_and_yields_nothing() {
    type Case = (
        &'static str,
        fn(&mut LightChain),
        bool,
        fn(&LightClientError) -> bool,
    );
    let cases: [Case; 7] = [
        ("forged event", |c| c.faults.forge_event = true, false, mmr),
        (
            "foreign event in the stream",
            |c| c.faults.foreign_in_stream = true,
            false,
            mmr,
        ),
        (
            "duplicated events",
            |c| c.faults.duplicate = true,
            false,
            mmr,
        ),
        ("reordered events", |c| c.faults.reorder = true, false, mmr),
        // The OCS tree rebuilt over a forged head: its root is not the one the summary commits to.
        (
            "forged head proof",
            |c| c.faults.forge_head_proof = true,
            false,
            artifacts,
        ),
        (
            "summary signed by non-members",
            |c| c.faults.non_member_signature = true,
            false,
            signature,
        ),
        (
            "wrong committee transition",
            |c| c.faults.wrong_committee_transition = true,
            true,
            signature,
        ),
    ];
    for (name, fault, epochs, check) in cases {
        let (_, got, err) = forged(fault, epochs);
        assert!(err.as_ref().is_some_and(check), "{name}: {err:?}");
        assert!(got.is_empty(), "{name}: yielded {got:?}");
    }
}

#[test]
fn frames_served_out_of_order_never_yield_an_event() {
    // Across checkpoints: an event arrives before the settlement that covers it.
    let (_, got, err) = forged(|c| c.faults.reorder_frames = true, false);
    assert!(
        matches!(err, Some(LightClientError::UnexpectedObjectShape { .. })),
        "{err:?}"
    );
    assert!(got.is_empty());
    // Inside one checkpoint.
    let rt = runtime();
    let mut chain = LightChain::new(PACKAGE, 4);
    chain.push(vec![(1..=4).map(|n| deposit(n, 1)).collect()]);
    chain.tick(1);
    chain.faults.reorder_frames = true;
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &Knobs::default(),
        usize::MAX,
        Duration::from_secs(10),
    ));
    assert!(events.is_empty());
    // SDK 0.4 folds the swapped pair unsorted: `build_event_merkle_root` has a
    // `debug_assert!` on the order, so with debug assertions the SDK's task panics and the
    // stream just ends (no error item); without, the root differs and reconciliation fails.
    if cfg!(debug_assertions) {
        assert!(err.is_none(), "{err:?}");
    } else {
        assert!(
            matches!(err, Some(LightClientError::MmrMismatch(_))),
            "{err:?}"
        );
    }
}

#[test]
fn transient_errors_delays_and_cut_streams_are_survived_without_loss_or_repeats() {
    let rt = runtime();
    let (mut chain, expected) = setup(4);
    // SDK 0.4 does not retry its start (`initial_state`: GetCheckpoint(latest) and the first
    // head proof): an error there ends the stream at once, so the caller must restart it.
    chain.faults.errors = 1;
    let anchor = chain.trust_anchor();
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    let (events, err) = rt.block_on(read(
        &node,
        anchor.clone(),
        &Knobs::default(),
        usize::MAX,
        Duration::from_secs(20),
    ));
    assert!(events.is_empty());
    assert!(
        matches!(&err, Some(LightClientError::Rpc(s)) if s.code() == tonic::Code::Unavailable),
        "{err:?}"
    );

    // Once started, errors (on any call), delays and page streams aborted (`UNAVAILABLE`)
    // after two frames are retried and resumed from the last cursor: every event once, in
    // order.
    {
        let mut c = chain.lock().unwrap();
        c.faults.delay = Duration::from_millis(5);
        c.faults.unavailable_after_frames = Some(2);
    }
    let start_served = chain.lock().unwrap().served();
    let injector = {
        let chain = chain.clone();
        std::thread::spawn(move || {
            // After GetCheckpoint(latest) and the first proof, the next three calls fail.
            loop {
                let mut c = chain.lock().unwrap();
                if c.served() >= start_served + 2 {
                    c.faults.errors = 3;
                    return;
                }
                drop(c);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    // A head check falling due while a page has stopped inside a checkpoint fails in SDK 0.4
    // (see `a_head_check_due_inside_a_checkpoint_fails`): with the default 30 s interval the
    // check here only runs once the scan is level with the tip.
    let knobs = Knobs {
        page: 3,
        interval: Duration::from_secs(30),
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &knobs,
        expected.len(),
        Duration::from_secs(60),
    ));
    injector.join().unwrap();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        chain.lock().unwrap().faults.errors,
        0,
        "the errors were served"
    );
    assert_eq!(events.iter().map(seen).collect::<Vec<_>>(), expected);
}

#[test]
fn a_node_that_stays_down_ends_the_stream_with_unavailable_and_a_restart_recovers() {
    let rt = runtime();
    let (mut chain, expected) = setup(4);
    chain.faults.down = true;
    let anchor = chain.trust_anchor();
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    let knobs = Knobs {
        retries: 1,
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(
        &node,
        anchor.clone(),
        &knobs,
        usize::MAX,
        Duration::from_secs(20),
    ));
    assert!(events.is_empty());
    match err {
        Some(LightClientError::Rpc(status)) => {
            assert_eq!(status.code(), tonic::Code::Unavailable)
        }
        other => panic!("{other:?}"),
    }
    // The node comes back on the same port with the same certificate.
    chain.lock().unwrap().faults.down = false;
    let (addr, ca) = (node.addr, node.ca_pem.clone());
    let node = node.restart(rt.handle());
    assert_eq!((node.addr, &node.ca_pem), (addr, &ca));
    read_all(&rt, &node, anchor, &expected);
}

#[test]
fn a_backlog_of_100_000_stream_events_is_read_quickly() {
    let rt = runtime();
    let started = Instant::now();
    let mut chain = LightChain::new(PACKAGE, 4);
    for cp in 0..100u64 {
        let txs = (0..100u64)
            .map(|t| {
                (0..10u64)
                    .map(|i| {
                        let n = cp * 1000 + t * 10 + i;
                        ChainEvent::Deposit {
                            stake: [(n % 251) as u8; 32],
                            owner: [7; 32],
                            amount: n,
                        }
                    })
                    .collect()
            })
            .collect();
        chain.push(txs);
    }
    chain.tick(1);
    assert_eq!(chain.stream_events(), 100_000);
    let built = started.elapsed();
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    let started = Instant::now();
    let knobs = Knobs {
        interval: Duration::from_secs(30),
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &knobs,
        100_000,
        Duration::from_secs(300),
    ));
    let took = started.elapsed();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.len(), 100_000);
    for (k, e) in events.iter().enumerate() {
        let n = k as u64;
        assert_eq!(
            (e.checkpoint, e.transaction_index, e.event_index),
            (n / 1000 + 1, (n % 1000) / 10, (n % 10) as u32)
        );
        assert_eq!(e.event.contents[64..], n.to_le_bytes());
    }
    eprintln!(
        "light fixture: built 100,000 events in {built:?}; SDK read them in {took:?} ({:.0} events/s)",
        100_000.0 / took.as_secs_f64()
    );
}

/// SDK 0.4 behaviour pinned here: `initial_state` starts from an empty head when the stream
/// head was not modified at the tip (an authenticated non-inclusion), so tailing a stream that
/// already has history from a quiet tip can never reconcile: the first settlement after it
/// ends the stream with `MmrMismatch` (the chain's head counts the history, the local one
/// does not). The fixture is right to fail it; the enclave must start from a checkpoint at
/// which the head was settled, or from genesis.
#[test]
fn tailing_from_a_quiet_tip_with_history_fails() {
    let rt = runtime();
    let (chain, _) = setup(4);
    let anchor = chain.trust_anchor();
    let history = chain.stream_events();
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    let pusher = {
        let chain = chain.clone();
        let base = chain.lock().unwrap().served();
        std::thread::spawn(move || {
            after_start(&chain, base);
            chain.lock().unwrap().push(vec![vec![deposit(9, 9)]]);
        })
    };
    let knobs = Knobs {
        start: None,
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(&node, anchor, &knobs, 1, Duration::from_secs(30)));
    pusher.join().unwrap();
    assert!(events.is_empty());
    match err {
        Some(LightClientError::MmrMismatch(m)) => {
            assert_eq!(m.expected.num_events, history + 1);
            assert_eq!(m.actual.num_events, 1);
        }
        other => panic!("{other:?}"),
    }
}

/// SDK 0.4 behaviour pinned here: `buffer_response_batch` counts a checkpoint as scanned as
/// soon as one of its events arrived, so when the head check falls due while a page ended
/// (item limit, or a cut stream) inside a checkpoint, the client folds that checkpoint's
/// events only in part and ends the stream with `MmrMismatch`, though the node was honest.
/// The enclave must keep `head_check_interval` long (the check then runs once the scan is
/// level with the tip) and restart the stream on this error.
#[test]
fn a_head_check_due_inside_a_checkpoint_fails() {
    let rt = runtime();
    let (chain, _) = setup(4);
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    // Page 1 = checkpoint 1's event and two of checkpoint 3's five.
    let knobs = Knobs {
        page: 3,
        interval: Duration::from_millis(1),
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &knobs,
        usize::MAX,
        Duration::from_secs(20),
    ));
    assert!(events.is_empty());
    match err {
        Some(LightClientError::MmrMismatch(m)) => {
            assert_eq!(m.checkpoint, 3);
            assert_eq!((m.expected.num_events, m.actual.num_events), (6, 3));
        }
        other => panic!("{other:?}"),
    }
}

/// The same chain is readable at level 1: `GetCheckpoint` with the level-1 reader's read mask
/// carries every transaction's digest and events as `sui_fixture::start` serves them (plus the
/// settlement transaction, which has none), and the tip override reaches `GetServiceInfo` and
/// `GetCheckpoint(latest)`. A forged transition is visible in the served summary.
#[test]
fn the_chain_reads_at_level_1_and_reports_the_tip_it_is_told() {
    use sui_rpc::field::{FieldMask, FieldMaskUtil};
    use sui_rpc::proto::sui::rpc::v2::{
        GetCheckpointRequest, GetServiceInfoRequest, get_checkpoint_request,
    };
    let rt = runtime();
    let (mut chain, expected) = setup(4);
    let end = chain.end_epoch(2);
    let tip = chain.tip();
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    rt.block_on(async {
        let mut client = sdk_client(&node);
        let mut ledger = client.ledger_client();
        let mut request = GetCheckpointRequest::default();
        request.checkpoint_id = Some(get_checkpoint_request::CheckpointId::SequenceNumber(3));
        request.read_mask = Some(FieldMask::from_paths([
            "sequence_number",
            "transactions.digest",
            "transactions.events",
        ]));
        let cp = ledger
            .get_checkpoint(request)
            .await
            .unwrap()
            .into_inner()
            .checkpoint
            .unwrap();
        assert_eq!(cp.sequence_number, Some(3));
        assert!(cp.summary.is_none() && cp.signature.is_none());
        // Four user transactions and the settlement.
        assert_eq!(cp.transactions.len(), 5);
        let mut level1 = Vec::new();
        for (t, tx) in cp.transactions.iter().enumerate() {
            assert_eq!(
                tx.digest.as_deref(),
                Some(sui_fixture::tx_digest(3, t).as_str())
            );
            for (i, e) in tx.events.as_ref().unwrap().events.iter().enumerate() {
                let ours = format!("0x{}::staking::", "5a".repeat(32));
                if e.event_type.as_deref().unwrap().starts_with(&ours) {
                    let contents = e.contents.as_ref().unwrap().value.clone().unwrap();
                    level1.push((t as u64, i as u32, contents.to_vec()));
                }
            }
        }
        let want: Vec<_> = expected
            .iter()
            .filter(|e| e.checkpoint == 3)
            .map(|e| (e.tx, e.index, e.contents.clone()))
            .collect();
        assert_eq!(level1, want);

        let info = client
            .ledger_client()
            .get_service_info(GetServiceInfoRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.checkpoint_height, Some(tip));
        chain.lock().unwrap().faults.tip_override = Some(2);
        let info = client
            .ledger_client()
            .get_service_info(GetServiceInfoRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.checkpoint_height, Some(2));
        let latest = client
            .ledger_client()
            .get_checkpoint(GetCheckpointRequest::latest())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(latest.checkpoint.unwrap().sequence_number, Some(2));

        // The end-of-epoch summary names the next committee; forged, it names outsiders.
        let summary_at = |client: &mut sui_rpc::Client| {
            let mut ledger = client.ledger_client();
            async move {
                let cp = ledger
                    .get_checkpoint(GetCheckpointRequest::by_sequence_number(end))
                    .await
                    .unwrap()
                    .into_inner()
                    .checkpoint
                    .unwrap();
                let summary: sui_sdk_types::CheckpointSummary =
                    cp.summary.unwrap().bcs.unwrap().deserialize().unwrap();
                summary.end_of_epoch_data.unwrap().next_epoch_committee
            }
        };
        let honest = summary_at(&mut client).await;
        assert_eq!(honest.len(), 2);
        chain.lock().unwrap().faults.wrong_committee_transition = true;
        let forged = summary_at(&mut client).await;
        assert_eq!(forged.len(), 4);
        assert!(forged.iter().all(|m| !honest.contains(m)));
    });
}

/// Failover shapes: a second node certified by the first one's CA serves the same chain to a
/// client trusting only that CA, and a node can be started on a given (freed) port.
#[test]
fn a_node_sharing_the_ca_and_a_node_on_a_given_port_serve_the_chain() {
    let rt = runtime();
    let (chain, expected) = setup(4);
    let anchor = chain.trust_anchor();
    let chain = Arc::new(Mutex::new(chain));
    let first = start_light(rt.handle(), chain.clone());
    let second = start_light_sharing_ca(rt.handle(), chain.clone(), &first);
    assert_ne!(first.addr, second.addr);
    assert_eq!(second.ca_pem, first.ca_pem);
    read_all(&rt, &second, anchor.clone(), &expected);
    let addr = second.addr;
    drop(second);
    let third = start_light_on(rt.handle(), chain, addr);
    assert_eq!(third.addr, addr);
    read_all(&rt, &third, anchor, &expected);
}

/// SDK 0.4 behaviour pinned here: a page cut at the transport (every connection of the node
/// dropped after two frames, as a relay restart does) surfaces as `Rpc(Unknown)` ("error
/// reading a body from connection"), which `e_is_retryable` does not retry: the stream ends.
/// Nothing unverified was yielded; a new stream from genesis reads everything.
#[test]
fn a_transport_cut_mid_page_ends_the_sdk_stream() {
    let rt = runtime();
    let (mut chain, expected) = setup(4);
    chain.faults.drop_after_frames = Some(2);
    let anchor = chain.trust_anchor();
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    let knobs = Knobs {
        page: 3,
        interval: Duration::from_secs(30),
        ..Knobs::default()
    };
    let (events, err) = rt.block_on(read(
        &node,
        anchor.clone(),
        &knobs,
        usize::MAX,
        Duration::from_secs(20),
    ));
    assert!(events.is_empty());
    match err {
        Some(LightClientError::Rpc(status)) => assert_eq!(status.code(), tonic::Code::Unknown),
        other => panic!("{other:?}"),
    }
    chain.lock().unwrap().faults.drop_after_frames = None;
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &knobs,
        expected.len(),
        Duration::from_secs(30),
    ));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.iter().map(seen).collect::<Vec<_>>(), expected);
}

/// SDK 0.4 behaviour pinned here: with `start_checkpoint` set, the SDK still takes its
/// starting head from the tip's proof when the tip settled the stream, so reading from
/// genesis then refolds the whole history onto the tip's head and fails
/// (`InvalidEventBatch(NonMonotonicCheckpoint)`). (With a quiet tip it starts from an empty head and works; see
/// `tailing_from_a_quiet_tip_with_history_fails` for the converse.)
#[test]
fn reading_from_genesis_when_the_tip_settled_fails() {
    let rt = runtime();
    let mut chain = LightChain::new(PACKAGE, 4);
    let mut expected = Vec::new();
    script(&mut chain, &mut expected);
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &Knobs::default(),
        usize::MAX,
        Duration::from_secs(20),
    ));
    assert!(events.is_empty());
    // The tip's head is at checkpoint 6; folding checkpoint 1's batch onto it regresses.
    assert!(
        matches!(
            err,
            Some(LightClientError::InvalidEventBatch(
                sui_sdk_types::framework::ApplyStreamError::NonMonotonicCheckpoint {
                    previous_checkpoint_seq: 6,
                    batch_checkpoint_seq: 1,
                    ..
                }
            ))
        ),
        "{err:?}"
    );
    assert!(!expected.is_empty());
}

/// An hour of virtual time (14,400 checkpoints at 250 ms) without events, then a deposit: the
/// client crosses it with one page scan, one settlement lookup and one proof.
#[test]
fn an_hour_of_quiet_checkpoints_is_caught_up() {
    let rt = runtime();
    let started = Instant::now();
    let (mut chain, mut expected) = setup(4);
    let hour = 3_600_000 / sui_fixture::light::CHECKPOINT_MS;
    chain.tick(hour);
    push(&mut chain, &mut expected, vec![vec![deposit(42, 42)]]);
    chain.tick(1);
    let built = started.elapsed();
    let anchor = chain.trust_anchor();
    let chain = Arc::new(Mutex::new(chain));
    let node = start_light(rt.handle(), chain.clone());
    let started = Instant::now();
    let (events, err) = rt.block_on(read(
        &node,
        anchor,
        &Knobs::default(),
        expected.len(),
        Duration::from_secs(60),
    ));
    let took = started.elapsed();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.iter().map(seen).collect::<Vec<_>>(), expected);
    let served = chain.lock().unwrap().served();
    assert!(served < 30, "{served} calls");
    eprintln!(
        "light fixture: built an hour ({hour} checkpoints) in {built:?}; caught up in {took:?} with {served} calls"
    );
}

/// The List API as the SDK relies on it, read raw: pages of `limit` items end with
/// `ITEM_LIMIT` and a cursor to resume `after`; a scan reaching the tip ends with
/// `LEDGER_TIP` and the tip as watermark; `end_checkpoint` (exclusive) ends with
/// `CHECKPOINT_BOUND`, a `before` cursor with `CURSOR_BOUND`; `ListTransactions` on the head
/// object lists exactly the settlements. Proofs: the clock is included at every checkpoint, an
/// untouched object is proven absent.
#[test]
fn list_paging_and_proofs_follow_the_v2_contract() {
    use sui_rpc::light_client::CheckpointObjectProof;
    use sui_rpc::proto::sui::rpc::v2::filter::{event, transaction};
    use sui_rpc::proto::sui::rpc::v2::{
        EventFilter, ListEventsRequest, ListTransactionsRequest, QueryEndReason, QueryOptions,
        TransactionFilter,
    };
    let rt = runtime();
    let (chain, expected) = setup(4);
    let tip = chain.tip();
    let head = chain.head_object_id();
    let anchor = chain.trust_anchor();
    let node = start_light(rt.handle(), Arc::new(Mutex::new(chain)));
    rt.block_on(async {
        let mut client = sdk_client(&node);
        let page = |start: u64,
                    end: Option<u64>,
                    limit: u32,
                    after: Option<bytes::Bytes>,
                    before: Option<bytes::Bytes>| {
            let mut ledger = sdk_client(&node).ledger_client();
            async move {
                let mut options = QueryOptions::default();
                options.limit = Some(limit);
                options.after = after;
                options.before = before;
                let mut request = ListEventsRequest::default();
                request.start_checkpoint = Some(start);
                request.end_checkpoint = end;
                request.filter = Some(EventFilter::matching(event::event_stream_head(
                    Address::new(PACKAGE),
                )));
                request.options = Some(options);
                let mut stream = ledger.list_events(request).await.unwrap().into_inner();
                let (mut positions, mut cursor, mut mark, mut reason) =
                    (Vec::new(), None, None, None);
                while let Some(frame) = stream.next().await {
                    let frame = frame.unwrap();
                    if let Some(w) = frame.watermark {
                        cursor = w.cursor.or(cursor);
                        mark = w.checkpoint;
                    }
                    if let Some(e) = frame.event {
                        positions.push((
                            e.checkpoint.unwrap(),
                            e.transaction_index.unwrap(),
                            e.event_index.unwrap(),
                        ));
                    }
                    if let Some(end) = frame.end {
                        reason = end.reason;
                    }
                }
                (
                    positions,
                    cursor,
                    mark,
                    reason.map(|r| QueryEndReason::try_from(r).unwrap()),
                )
            }
        };
        let all: Vec<_> = expected
            .iter()
            .map(|e| (e.checkpoint, e.tx, e.index))
            .collect();
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let (positions, cursor, mark, reason) = page(0, None, 2, after.clone(), None).await;
            got.extend(positions);
            match reason.unwrap() {
                QueryEndReason::ItemLimit => after = cursor,
                QueryEndReason::LedgerTip => {
                    assert_eq!(mark, Some(tip));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, all);
        let (positions, _, mark, reason) = page(2, Some(4), 100, None, None).await;
        assert_eq!(reason, Some(QueryEndReason::CheckpointBound));
        assert_eq!(mark, Some(3));
        assert!(positions.iter().all(|p| p.0 == 3) && positions.len() == 5);
        let (_, third, _, _) = page(0, None, 3, None, None).await;
        let (positions, _, _, reason) = page(0, None, 100, None, third).await;
        assert_eq!(reason, Some(QueryEndReason::CursorBound));
        assert_eq!(positions, all[..2]);

        let mut request = ListTransactionsRequest::default();
        request.start_checkpoint = Some(0);
        request.end_checkpoint = Some(tip + 1);
        request.filter = Some(TransactionFilter::matching(transaction::affected_object(
            head,
        )));
        let mut stream = client
            .ledger_client()
            .list_transactions(request)
            .await
            .unwrap()
            .into_inner();
        let mut settlements = Vec::new();
        while let Some(frame) = stream.next().await {
            if let Some(tx) = frame.unwrap().transaction {
                settlements.push((tx.checkpoint.unwrap(), tx.transaction_index.unwrap()));
            }
        }
        assert_eq!(settlements, vec![(1, 1), (3, 4), (6, 2)]);
    });
    rt.block_on(async {
        let mut light = LightClient::new(sdk_client(&node), anchor);
        match light
            .prove_object_at_checkpoint(&Address::from_static("0x6"), 2)
            .await
            .unwrap()
        {
            CheckpointObjectProof::Inclusion {
                object: Some(clock),
                ..
            } => assert_eq!(clock.version(), 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            light.prove_object_at_checkpoint(&head, 2).await.unwrap(),
            CheckpointObjectProof::NonInclusion
        ));
        assert!(matches!(
            light.prove_object_at_checkpoint(&head, 3).await.unwrap(),
            CheckpointObjectProof::Inclusion {
                object: Some(_),
                ..
            }
        ));
    });
}
