//! For tests: an in-memory host that speaks the real storage frames (`nautilus_wire::storage`)
//! over a Unix socket, as the proxy's store does. What it holds is shared with the test, which
//! plays the hostile or failing host by changing it between boots, refusing appends, or holding
//! a sync.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use nautilus_wire::storage::{Answer, ErrorKind, Request, read_request};
use tokio::io::AsyncWriteExt as _;

use crate::log_sink::SinkAddr;

/// A snapshot on the host: its manifest (once committed) and chunks.
pub(crate) type HostSnapshot = (Option<Vec<u8>>, BTreeMap<u32, Vec<u8>>);

/// What the host holds.
#[derive(Default)]
pub(crate) struct Host {
    pub(crate) log: BTreeMap<u64, Vec<u8>>,
    pub(crate) snapshots: BTreeMap<u64, HostSnapshot>,
    pub(crate) blobs: BTreeMap<String, Vec<u8>>,
    /// When set, appends fail with this kind (and fence until a truncate).
    pub(crate) fail_appends: Option<ErrorKind>,
    pub(crate) fenced: bool,
    /// While set, the host holds back its sync acknowledgements (a sync that does not return):
    /// appends are written but not acknowledged, while other requests are still answered (a
    /// host that does not keep the order of its answers, to test that the enclave does).
    pub(crate) hold_syncs: bool,
}

impl Host {
    pub(crate) fn answer(&mut self, request: Request) -> Vec<Answer> {
        match request {
            Request::Append { first, records } => {
                if let Some(kind) = self.fail_appends {
                    self.fenced = true;
                    return vec![Answer::Error {
                        kind,
                        message: "injected".into(),
                    }];
                }
                if self.fenced {
                    return vec![Answer::Error {
                        kind: ErrorKind::Fenced,
                        message: "fenced".into(),
                    }];
                }
                let next = self.log.keys().next_back().map_or(1, |l| l + 1);
                if first != next && !(self.log.is_empty() && first > 0) {
                    return vec![Answer::Error {
                        kind: ErrorKind::OutOfOrder,
                        message: format!("{first} != {next}"),
                    }];
                }
                let mut position = first;
                for record in records {
                    self.log.insert(position, record);
                    position += 1;
                }
                vec![Answer::Durable {
                    through: position - 1,
                }]
            }
            Request::ReadLog { from } => {
                let records: Vec<(u64, Vec<u8>)> = self
                    .log
                    .range(from..)
                    .map(|(p, r)| (*p, r.clone()))
                    .collect();
                vec![
                    Answer::Records {
                        segment: "00000001.wal".into(),
                        records,
                    },
                    Answer::LogEnd {
                        first: self.log.keys().next().copied().unwrap_or(0),
                        last: self.log.keys().next_back().copied().unwrap_or(0),
                        torn: None,
                    },
                ]
            }
            Request::TruncateAfter { position } => {
                self.log.retain(|p, _| *p <= position);
                self.fenced = false;
                vec![Answer::Done]
            }
            Request::TruncateBefore { position } => {
                self.log.retain(|p, _| *p >= position);
                vec![Answer::Done]
            }
            Request::PutChunk {
                snapshot,
                index,
                bytes,
            } => {
                self.snapshots
                    .entry(snapshot)
                    .or_default()
                    .1
                    .insert(index, bytes);
                vec![Answer::Done]
            }
            Request::CommitSnapshot { snapshot, manifest } => {
                self.snapshots.entry(snapshot).or_default().0 = Some(manifest);
                vec![Answer::Done]
            }
            Request::ListSnapshots => vec![Answer::Snapshots(
                self.snapshots
                    .iter()
                    .filter(|(_, (m, _))| m.is_some())
                    .map(|(id, _)| *id)
                    .collect(),
            )],
            Request::GetManifest { snapshot } => {
                match self.snapshots.get(&snapshot).and_then(|s| s.0.clone()) {
                    Some(m) => vec![Answer::Bytes(m)],
                    None => vec![not_found()],
                }
            }
            Request::GetChunk { snapshot, index } => {
                match self.snapshots.get(&snapshot).and_then(|s| s.1.get(&index)) {
                    Some(c) => vec![Answer::Bytes(c.clone())],
                    None => vec![not_found()],
                }
            }
            Request::DeleteSnapshot { snapshot } => {
                self.snapshots.remove(&snapshot);
                vec![Answer::Done]
            }
            Request::GetBlob { name } => match self.blobs.get(&name) {
                Some(blob) => vec![Answer::Bytes(blob.clone())],
                None => vec![not_found()],
            },
            Request::PutBlob { name, bytes } => {
                self.blobs.insert(name, bytes);
                vec![Answer::Done]
            }
            Request::AwsCredentials => vec![not_found()],
        }
    }
}

fn not_found() -> Answer {
    Answer::Error {
        kind: ErrorKind::NotFound,
        message: "none".into(),
    }
}

/// Serves `host` on a fresh Unix socket.
pub(crate) fn serve(host: Arc<Mutex<Host>>) -> (SinkAddr, tokio::task::JoinHandle<()>) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "nautilus-durable-test-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let host = host.clone();
            let (mut reader, mut writer) = tokio::io::split(stream);
            let (answers, mut to_write) = tokio::sync::mpsc::unbounded_channel::<(u64, Answer)>();
            let reading_host = host.clone();
            tokio::spawn(async move {
                while let Ok(Some((id, request))) = read_request(&mut reader).await {
                    for answer in reading_host.lock().unwrap().answer(request) {
                        if answers.send((id, answer)).is_err() {
                            return;
                        }
                    }
                }
            });
            tokio::spawn(async move {
                // Sync acknowledgements held back, in order (other answers pass them).
                let mut held: Vec<(u64, Answer)> = Vec::new();
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
                loop {
                    let next = tokio::select! {
                        next = to_write.recv() => match next {
                            Some(next) => Some(next),
                            None => return,
                        },
                        _ = tick.tick() => None,
                    };
                    let holding = host.lock().unwrap().hold_syncs;
                    let mut out = Vec::new();
                    if !holding {
                        out.append(&mut held);
                    }
                    if let Some((id, answer)) = next {
                        if holding && matches!(answer, Answer::Durable { .. }) {
                            held.push((id, answer));
                        } else {
                            out.push((id, answer));
                        }
                    }
                    for (id, answer) in out {
                        if writer.write_all(&answer.encode(id)).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (SinkAddr::Unix(path), task)
}
