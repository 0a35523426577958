//! A fixture Sui full node for the enclave's `node-read` tests: the SDK's generated
//! `LedgerService` server over TLS (a test CA made here), serving a scripted chain of
//! checkpoints whose transactions carry the staking package's events as BCS, with fault
//! injection (errors, delays, dropped connections, an older tip, foreign and malformed events).

pub mod dev;
pub mod light;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sui_rpc::proto::sui::rpc::v2::ledger_service_server::{LedgerService, LedgerServiceServer};
use sui_rpc::proto::sui::rpc::v2::{
    Bcs, Checkpoint, Event, ExecutedTransaction, GetCheckpointRequest, GetCheckpointResponse,
    GetServiceInfoRequest, GetServiceInfoResponse, TransactionEvents, get_checkpoint_request,
};
use tonic::{Request, Response, Status};

pub(crate) use nautilus_tests::pki::{Pki, pki};

/// One event in a scripted transaction.
#[derive(Clone, Debug)]
pub enum ChainEvent {
    /// `StakeDeposited {stake_id, owner, amount}`.
    Deposit {
        /// Stake object id.
        stake: [u8; 32],
        /// Owner address.
        owner: [u8; 32],
        /// MIST.
        amount: u64,
    },
    /// `StakeWithdrawn {stake_id}`.
    Withdraw {
        /// Stake object id.
        stake: [u8; 32],
    },
    /// `StakeSlashed {stake_id, amount}`.
    Slash {
        /// Stake object id.
        stake: [u8; 32],
        /// MIST.
        amount: u64,
    },
    /// An event of another package (must be ignored).
    Foreign,
    /// Our type name with contents that do not match the schema (must be refused).
    Malformed,
}

/// `checkpoints` checkpoints that each top `stake` up by a different amount (every 7th also
/// slashes a little), with foreign events around: an event applied twice or skipped changes
/// the final amount. Returns each checkpoint's transactions and the final amount.
pub fn top_ups(
    stake: [u8; 32],
    owner: [u8; 32],
    checkpoints: u64,
) -> (Vec<Vec<Vec<ChainEvent>>>, u64) {
    let mut expected = 0u64;
    let chain = (0..checkpoints)
        .map(|n| {
            let mut tx = vec![ChainEvent::Deposit {
                stake,
                owner,
                amount: 1_000 + n,
            }];
            expected += 1_000 + n;
            if n % 7 == 3 {
                tx.push(ChainEvent::Slash { stake, amount: 10 });
                expected -= 10;
            }
            tx.push(ChainEvent::Foreign);
            vec![tx, vec![ChainEvent::Foreign]]
        })
        .collect();
    (chain, expected)
}

/// Fault injection, consulted on every call.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The next N `GetCheckpoint` calls answer `UNAVAILABLE`.
    pub errors: u32,
    /// Every call waits this long first.
    pub delay: Duration,
    /// Report this tip instead of the real one (an older tip is a rollback attempt).
    pub tip_override: Option<u64>,
    /// Answer `GetCheckpoint(n)` with checkpoint `n + 1` (reordered / wrong data).
    pub reorder: bool,
    /// Every call answers `UNAVAILABLE` (a Sui outage).
    pub down: bool,
}

/// The scripted chain and its faults, shared with the test.
#[derive(Debug, Default)]
pub struct ChainState {
    /// Checkpoints 0.. in order; each holds transactions, each a list of events.
    pub checkpoints: Vec<Vec<Vec<ChainEvent>>>,
    /// Faults in force.
    pub faults: Faults,
    /// `GetCheckpoint` calls served.
    pub served: u64,
}

impl ChainState {
    /// Appends a checkpoint with one transaction per event list; returns its number.
    pub fn push(&mut self, transactions: Vec<Vec<ChainEvent>>) -> u64 {
        self.checkpoints.push(transactions);
        self.checkpoints.len() as u64 - 1
    }
}

/// A running fixture node.
pub struct FixtureNode {
    /// Where it listens (TLS, gRPC).
    pub addr: SocketAddr,
    /// The test CA that signed its certificate (PEM), for `--sui-ca-file`.
    pub ca_pem: String,
    /// The chain, editable while it runs.
    pub chain: Arc<Mutex<ChainState>>,
    pki: Pki,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FixtureNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Service {
    chain: Arc<Mutex<ChainState>>,
    package: [u8; 32],
}

/// A base58 transaction digest unique to (checkpoint, transaction).
pub fn tx_digest(checkpoint: u64, tx: usize) -> String {
    let mut bytes = [7u8; 32];
    bytes[..8].copy_from_slice(&checkpoint.to_le_bytes());
    bytes[8..16].copy_from_slice(&(tx as u64).to_le_bytes());
    base58(&bytes)
}

fn base58(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = vec![0];
    for &b in bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    std::iter::repeat_n(b'1', zeros)
        .chain(digits.iter().rev().map(|d| ALPHABET[*d as usize]))
        .map(char::from)
        .collect()
}

/// The staking event's name and its BCS contents as the Move structs lay them out
/// (`StakeDeposited {stake_id, owner, amount}`, `StakeWithdrawn {stake_id}`, `StakeSlashed
/// {stake_id, amount}`); `Malformed` claims `StakeDeposited` with 5 bytes; `None` for an
/// event of another package.
pub fn staking_bcs(e: &ChainEvent) -> Option<(&'static str, Vec<u8>)> {
    Some(match e {
        ChainEvent::Deposit {
            stake,
            owner,
            amount,
        } => {
            let mut b = stake.to_vec();
            b.extend(owner);
            b.extend(amount.to_le_bytes());
            ("StakeDeposited", b)
        }
        ChainEvent::Withdraw { stake } => ("StakeWithdrawn", stake.to_vec()),
        ChainEvent::Slash { stake, amount } => {
            let mut b = stake.to_vec();
            b.extend(amount.to_le_bytes());
            ("StakeSlashed", b)
        }
        ChainEvent::Malformed => ("StakeDeposited", vec![0; 5]),
        ChainEvent::Foreign => return None,
    })
}

pub(crate) fn event(package: &[u8; 32], e: &ChainEvent) -> Event {
    let pkg = format!("0x{}", hex32(package));
    let (ty, bcs) = match staking_bcs(e) {
        Some((name, bcs)) => (format!("{pkg}::staking::{name}"), bcs),
        None => ("0x2::coin::CoinMinted".to_string(), vec![1, 2, 3]),
    };
    let mut contents = Bcs::default();
    contents.value = Some(bcs.into());
    let mut out = Event::default();
    out.package_id = Some(pkg);
    out.module = Some("staking".into());
    out.event_type = Some(ty);
    out.contents = Some(contents);
    out
}

pub(crate) fn hex32(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Service {
    fn checkpoint(&self, n: u64) -> Option<Checkpoint> {
        let chain = self.chain.lock().expect("chain lock");
        let txs = chain.checkpoints.get(n as usize)?;
        let mut cp = Checkpoint::default();
        cp.sequence_number = Some(n);
        cp.transactions = txs
            .iter()
            .enumerate()
            .map(|(t, events)| {
                let mut tx = ExecutedTransaction::default();
                tx.digest = Some(tx_digest(n, t));
                let mut te = TransactionEvents::default();
                te.events = events.iter().map(|e| event(&self.package, e)).collect();
                tx.events = Some(te);
                tx.checkpoint = Some(n);
                tx
            })
            .collect();
        Some(cp)
    }

    fn faults(&self) -> Faults {
        self.chain.lock().expect("chain lock").faults.clone()
    }
}

#[tonic::async_trait]
impl LedgerService for Service {
    async fn get_service_info(
        &self,
        _request: Request<GetServiceInfoRequest>,
    ) -> Result<Response<GetServiceInfoResponse>, Status> {
        let faults = self.faults();
        tokio::time::sleep(faults.delay).await;
        if faults.down {
            return Err(Status::unavailable("fixture: node down"));
        }
        let len = self.chain.lock().expect("chain lock").checkpoints.len() as u64;
        let mut info = GetServiceInfoResponse::default();
        info.chain = Some("nautilus-fixture".into());
        info.checkpoint_height = faults.tip_override.or(len.checked_sub(1));
        Ok(Response::new(info))
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<GetCheckpointResponse>, Status> {
        let faults = {
            let mut chain = self.chain.lock().expect("chain lock");
            chain.served += 1;
            let f = chain.faults.clone();
            if chain.faults.errors > 0 {
                chain.faults.errors -= 1;
            }
            f
        };
        tokio::time::sleep(faults.delay).await;
        if faults.errors > 0 || faults.down {
            return Err(Status::unavailable("fixture: injected error"));
        }
        let Some(get_checkpoint_request::CheckpointId::SequenceNumber(n)) =
            request.into_inner().checkpoint_id
        else {
            return Err(Status::invalid_argument("fixture: by sequence number only"));
        };
        let n = if faults.reorder { n + 1 } else { n };
        let cp = self
            .checkpoint(n)
            .ok_or_else(|| Status::not_found(format!("checkpoint {n} not found")))?;
        let mut answer = GetCheckpointResponse::default();
        answer.checkpoint = Some(cp);
        Ok(Response::new(answer))
    }
}

/// Starts a fixture node for `package` on 127.0.0.1 (a fresh port), inside `runtime`.
pub fn start(
    runtime: &tokio::runtime::Handle,
    package: [u8; 32],
    chain: Arc<Mutex<ChainState>>,
) -> FixtureNode {
    start_on(
        runtime,
        package,
        chain,
        "127.0.0.1:0".parse().expect("addr"),
    )
}

/// Another node with its own chain, certified by the same test CA as `other` (so one
/// `--sui-ca-file` trusts both).
pub fn start_sharing_ca(
    runtime: &tokio::runtime::Handle,
    package: [u8; 32],
    chain: Arc<Mutex<ChainState>>,
    other: &FixtureNode,
) -> FixtureNode {
    let addr = "127.0.0.1:0".parse().expect("addr");
    serve(runtime, package, chain, addr, other.pki.clone())
}

/// As [`start`], on `addr` (to restart a node on the same port).
pub fn start_on(
    runtime: &tokio::runtime::Handle,
    package: [u8; 32],
    chain: Arc<Mutex<ChainState>>,
    addr: SocketAddr,
) -> FixtureNode {
    serve(runtime, package, chain, addr, pki())
}

fn serve(
    runtime: &tokio::runtime::Handle,
    package: [u8; 32],
    chain: Arc<Mutex<ChainState>>,
    addr: SocketAddr,
    pki: Pki,
) -> FixtureNode {
    let Pki {
        ca_pem,
        cert_pem,
        key_pem,
    } = pki.clone();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .expect("bind fixture node");
    let addr = listener.local_addr().expect("local addr");
    let identity = tonic::transport::Identity::from_pem(cert_pem, key_pem);
    let service = Service {
        chain: chain.clone(),
        package,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(async move {
        // TCP_NODELAY as real full nodes serve: without it small answers wait on delayed ACKs.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let result = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("fixture tls")
            .serve_with_incoming_shutdown(LedgerServiceServer::new(service), incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            eprintln!("fixture node stopped: {e}");
        }
    });
    FixtureNode {
        addr,
        ca_pem,
        chain,
        pki,
        stop: Some(stop),
    }
}
