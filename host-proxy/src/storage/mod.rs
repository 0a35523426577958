//! The host's side of the storage channel (`nautilus_wire::storage`): it keeps the enclave's
//! sealed log and snapshots on disk under the storage directory and answers over a Unix socket
//! (development) or vsock (production). It never reads a record (they are sealed), never
//! decides what is valid, and acknowledges an append only after `fdatasync`.
//!
//! Group commit: one thread owns the files; it takes every append that has arrived, writes
//! them, syncs once and sends one `Durable { through }` for all of them. Requests are handled
//! in arrival order, at most [`QUEUE`] frames are queued (then the socket pushes back), and one
//! enclave connection is served at a time.
//!
//! Layout: `wal/<first position>.wal` (see [`log`]), `snapshots/<id>/chunk-<n>` and
//! `snapshots/<id>/manifest` (the manifest is written last: a snapshot without one is
//! incomplete and not listed), `blobs/<name>`, and `trash/`: discarded segments and snapshots
//! whose disk [`reclaim`] is giving back. A chunk is synced when its snapshot is
//! committed (see [`ChunkWriter`]); every other file but the log is written to a temporary
//! name, synced, renamed and its directory synced.

pub(crate) mod faults;
mod log;
mod reclaim;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use nautilus_wire::storage::{self, Answer, ErrorKind, MAX_SNAPSHOTS, Request};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

use faults::Faults;
use log::{SegmentLog, write_durably};

/// Frames queued between the socket and the file thread.
const QUEUE: usize = 256;
/// A segment is closed once it holds this many bytes.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Most bytes of appends written before one group's sync.
const GROUP_BYTES: usize = 32 << 20;

/// Where the store listens for the enclave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StorageListen {
    /// A Unix socket (development).
    Unix(PathBuf),
    /// A vsock port on the host (production; the enclave connects to CID 3).
    Vsock(u32),
}

impl fmt::Display for StorageListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Vsock(port) => write!(f, "vsock:{port}"),
        }
    }
}

impl FromStr for StorageListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(port) = s.strip_prefix("vsock:") {
            return port
                .parse()
                .map(Self::Vsock)
                .map_err(|_| format!("bad vsock port {port:?}"));
        }
        Err(format!("expected unix:PATH or vsock:PORT, got {s:?}"))
    }
}

fn snapshot_dir(root: &Path, snapshot: u64) -> PathBuf {
    root.join("snapshots").join(format!("{snapshot:020}"))
}

/// Writes snapshots: their chunks, their commit and their deletion, on a thread of its own
/// beside the log's, so that appends never queue behind a snapshot's megabytes, its syncs or
/// its deletion. Each snapshot has a directory of its own, which only its requests touch, and
/// the enclave waits for each answer before its next request of that snapshot, so nothing of
/// the log's needs ordering with them.
///
/// A chunk is written without a sync of its own: each sync of a new file is a commit of the
/// file system's journal, which the log's fsyncs would queue behind (three per chunk stretched
/// the log's group commits tenfold). Its writeback is started at once, so the disk takes the
/// snapshot a chunk at a time instead of all at the commit, and the commit syncs every chunk
/// (one journal commit covers them all) before the manifest makes the snapshot exist.
pub(crate) struct SnapshotWriter {
    root: PathBuf,
    faults: Arc<Faults>,
    reclaimer: reclaim::Reclaimer,
    /// The snapshot whose directory this writer made last.
    made: Option<u64>,
}

impl SnapshotWriter {
    /// Handles a snapshot's write (`PutChunk`, `CommitSnapshot`, `DeleteSnapshot`); any other
    /// request is refused.
    pub(crate) fn handle(&mut self, request: Request) -> Answer {
        match request {
            Request::PutChunk {
                snapshot,
                index,
                bytes,
            } => self.put(snapshot, index, &bytes),
            Request::CommitSnapshot { snapshot, manifest } => self.commit(snapshot, &manifest),
            Request::DeleteSnapshot { snapshot } => self.delete(snapshot),
            _ => Answer::Error {
                kind: ErrorKind::BadRequest,
                message: "the snapshot writer takes snapshot writes only".into(),
            },
        }
    }

    /// Writes chunk `index` of `snapshot` (durable once the snapshot is committed).
    fn put(&mut self, snapshot: u64, index: u32, bytes: &[u8]) -> Answer {
        let dir = snapshot_dir(&self.root, snapshot);
        let written = self.make_dir(snapshot, &dir).and_then(|()| {
            let mut file = File::create(dir.join(chunk_name(index)))?;
            self.faults.write(&mut file, bytes)?;
            // A hint: Linux starts writing the dirty pages back now (and drops them once
            // clean); the commit's sync still decides durability.
            let _ = nix::fcntl::posix_fadvise(
                &file,
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
            Ok(())
        });
        match written {
            Ok(()) => Answer::Done,
            Err(e) => Store::io_error("cannot write a snapshot chunk", &e),
        }
    }

    fn make_dir(&mut self, snapshot: u64, dir: &Path) -> io::Result<()> {
        if self.made != Some(snapshot) {
            fs::create_dir_all(dir)?;
            self.made = Some(snapshot);
        }
        Ok(())
    }

    /// Makes the chunks durable, then writes the manifest: the snapshot exists from then on.
    fn commit(&mut self, snapshot: u64, manifest: &[u8]) -> Answer {
        let dir = snapshot_dir(&self.root, snapshot);
        if !dir.is_dir() {
            return Store::not_found(format!("snapshot {snapshot} has no chunks"));
        }
        match sync_chunks(&self.root, &dir, &self.faults)
            .and_then(|()| write_durably(&dir.join("manifest"), manifest, &self.faults))
        {
            Ok(()) => Answer::Done,
            Err(e) => Store::io_error("cannot write a snapshot manifest", &e),
        }
    }

    fn delete(&mut self, snapshot: u64) -> Answer {
        if self.made == Some(snapshot) {
            self.made = None;
        }
        match self.reclaimer.discard(&snapshot_dir(&self.root, snapshot)) {
            Ok(()) => Answer::Done,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Answer::Done,
            Err(e) => Store::io_error("cannot delete a snapshot", &e),
        }
    }
}

/// The file name of chunk `index`.
fn chunk_name(index: u32) -> String {
    format!("chunk-{index:08}")
}

/// Makes a snapshot's chunks durable: every chunk file, the snapshot's directory and its entry.
fn sync_chunks(root: &Path, dir: &Path, faults: &Faults) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("chunk-") {
            faults.sync(&File::open(entry.path())?)?;
        }
    }
    log::sync_dir(dir)?;
    log::sync_dir(&root.join("snapshots"))
}

/// The files, owned by one thread at a time.
pub(crate) struct Store {
    root: PathBuf,
    log: SegmentLog,
    faults: Arc<Faults>,
    /// Gives back the disk of discarded segments and snapshots in the background.
    reclaimer: reclaim::Reclaimer,
    /// The instance credentials handed to the enclave (JSON), if any.
    credentials: Option<Arc<dyn Fn() -> Result<String, String> + Send + Sync>>,
}

impl Store {
    /// Opens (creating) the store under `root`.
    pub(crate) fn open(root: &Path, faults: Faults) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        for sub in ["snapshots", "blobs"] {
            fs::create_dir_all(root.join(sub))?;
        }
        let faults = Arc::new(faults);
        let log = SegmentLog::open(&root.join("wal"), SEGMENT_BYTES, faults.clone())?;
        Ok(Self {
            root: root.to_path_buf(),
            log,
            faults,
            reclaimer: reclaim::Reclaimer::start(root)?,
            credentials: None,
        })
    }

    /// Where `AwsCredentials` answers come from.
    pub(crate) fn set_credentials(
        &mut self,
        source: Arc<dyn Fn() -> Result<String, String> + Send + Sync>,
    ) {
        self.credentials = Some(source);
    }

    fn snapshot_dir(&self, snapshot: u64) -> PathBuf {
        snapshot_dir(&self.root, snapshot)
    }

    /// What writes snapshots, on a thread of its own beside the log's.
    pub(crate) fn snapshot_writer(&self) -> SnapshotWriter {
        SnapshotWriter {
            root: self.root.clone(),
            faults: self.faults.clone(),
            reclaimer: self.reclaimer.clone(),
            made: None,
        }
    }

    fn io_error(what: &str, e: &io::Error) -> Answer {
        Answer::Error {
            kind: ErrorKind::of_io(e),
            message: format!("{what}: {e}"),
        }
    }

    fn not_found(what: String) -> Answer {
        Answer::Error {
            kind: ErrorKind::NotFound,
            message: what,
        }
    }

    fn read_file(path: &Path, what: String) -> Answer {
        match fs::read(path) {
            Ok(bytes) if bytes.len() <= storage::MAX_ITEM => Answer::Bytes(bytes),
            Ok(_) => Answer::Error {
                kind: ErrorKind::Io,
                message: format!("{what} is over the item bound"),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::not_found(what),
            Err(e) => Self::io_error(&what, &e),
        }
    }

    /// Handles one request other than an append or a chunk; `emit` receives its answers.
    fn handle(&mut self, request: Request, mut emit: impl FnMut(Answer)) {
        let answer = match request {
            Request::Append { .. } => Answer::Error {
                kind: ErrorKind::BadRequest,
                message: "appends go through the group".into(),
            },
            Request::PutChunk { .. }
            | Request::CommitSnapshot { .. }
            | Request::DeleteSnapshot { .. } => Answer::Error {
                kind: ErrorKind::BadRequest,
                message: "snapshot writes go through the snapshot writer".into(),
            },
            Request::ReadLog { from } => match self.log.read(from, &mut emit) {
                Ok(()) => return,
                Err((kind, message)) => Answer::Error { kind, message },
            },
            Request::TruncateAfter { position } => match self.log.truncate_after(position) {
                Ok(()) => Answer::Done,
                Err((kind, message)) => Answer::Error { kind, message },
            },
            Request::TruncateBefore { position } => match self
                .log
                .truncate_before(position, |path| self.reclaimer.discard(path))
            {
                Ok(()) => Answer::Done,
                Err((kind, message)) => Answer::Error { kind, message },
            },
            Request::ListSnapshots => {
                let mut ids: Vec<u64> = fs::read_dir(self.root.join("snapshots"))
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok())
                            .filter(|e| e.path().join("manifest").is_file())
                            .filter_map(|e| e.file_name().into_string().ok()?.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                ids.sort_unstable();
                let skip = ids.len().saturating_sub(MAX_SNAPSHOTS);
                Answer::Snapshots(ids.split_off(skip))
            }
            Request::GetManifest { snapshot } => Self::read_file(
                &self.snapshot_dir(snapshot).join("manifest"),
                format!("snapshot {snapshot}'s manifest"),
            ),
            Request::GetChunk { snapshot, index } => Self::read_file(
                &self.snapshot_dir(snapshot).join(chunk_name(index)),
                format!("snapshot {snapshot}'s chunk {index}"),
            ),
            Request::GetBlob { name } if storage::valid_blob_name(&name) => {
                Self::read_file(&self.root.join("blobs").join(&name), format!("blob {name}"))
            }
            Request::PutBlob { name, bytes } if storage::valid_blob_name(&name) => {
                match write_durably(&self.root.join("blobs").join(&name), &bytes, &self.faults) {
                    Ok(()) => Answer::Done,
                    Err(e) => Self::io_error("cannot write a blob", &e),
                }
            }
            Request::GetBlob { .. } | Request::PutBlob { .. } => Answer::Error {
                kind: ErrorKind::BadRequest,
                message: "blob names are [a-z0-9-], 1 to 64 bytes".into(),
            },
            Request::AwsCredentials => match &self.credentials {
                None => Answer::Error {
                    kind: ErrorKind::Unavailable,
                    message: "this proxy has no AWS credentials to hand in".into(),
                },
                Some(source) => match source() {
                    Ok(json) => Answer::Bytes(json.into_bytes()),
                    Err(message) => Answer::Error {
                        kind: ErrorKind::Unavailable,
                        message,
                    },
                },
            },
        };
        emit(answer);
    }

    /// Writes a group of appends (each `(id, first, records)`), syncs once, and answers: one
    /// `Durable` for everything written, an error for each append that was not.
    fn append_group(
        &mut self,
        group: Vec<(u64, u64, Vec<Vec<u8>>)>,
        mut emit: impl FnMut(u64, Answer),
    ) {
        let mut written = Vec::new();
        for (id, first, records) in group {
            match self.log.write(first, &records) {
                Ok(_) => written.push(id),
                Err((kind, message)) => {
                    if kind != ErrorKind::Fenced {
                        tracing::warn!(%kind, %message, "storage: an append failed; fenced until the enclave truncates");
                    }
                    emit(id, Answer::Error { kind, message });
                }
            }
        }
        let Some(&last_id) = written.last() else {
            return;
        };
        match self.log.sync() {
            Ok(through) => emit(last_id, Answer::Durable { through }),
            Err((kind, message)) => {
                tracing::warn!(%kind, %message, "storage: sync failed; the unsynced appends were cut back");
                for id in written {
                    emit(
                        id,
                        Answer::Error {
                            kind,
                            message: message.clone(),
                        },
                    );
                }
            }
        }
    }
}

/// The instance's AWS credentials from the standard variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), as the enclave's KMS client reads them. They
/// are the host's own (an instance role's), so handing them in reveals nothing to the host;
/// the key policy, not the credentials, is what limits the data key to the measured enclave.
pub(crate) fn credentials_from_env() -> Result<String, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
        return Err("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set for the proxy".into());
    };
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!(
        "{{\"AccessKeyId\":\"{}\",\"SecretAccessKey\":\"{}\",\"Token\":\"{}\"}}",
        quote(&id),
        quote(&secret),
        quote(&var("AWS_SESSION_TOKEN").unwrap_or_default())
    ))
}

/// Serves enclave connections on `listen` until the process ends, one at a time.
pub(crate) async fn run(listen: StorageListen, store: Store) -> Result<(), String> {
    let store = Arc::new(Mutex::new(store));
    match &listen {
        StorageListen::Unix(path) => {
            let _ = fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            tracing::info!(%listen, "storage channel listening");
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => serve(stream, store.clone()).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "storage: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        StorageListen::Vsock(port) => {
            let addr = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, *port);
            let listener = tokio_vsock::VsockListener::bind(addr)
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            tracing::info!(%listen, "storage channel listening");
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => serve(stream, store.clone()).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "storage: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
    }
    Ok(())
}

/// Serves one enclave connection until it closes.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    store: Arc<Mutex<Store>>,
) {
    tracing::info!("storage: the enclave connected");
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (requests_tx, mut requests_rx) = mpsc::channel::<(u64, Request)>(QUEUE);
    let (answers_tx, mut answers_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let read = tokio::spawn(async move {
        loop {
            match storage::read_request(&mut reader).await {
                Ok(Some(request)) => {
                    if requests_tx.send(request).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "storage: closing the enclave's connection");
                    return;
                }
            }
        }
    });
    let (snapshots_tx, mut snapshots_rx) = mpsc::channel::<(u64, Request)>(QUEUE);
    let mut snapshot_writer = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .snapshot_writer();
    let snapshot_answers = answers_tx.clone();
    let snapshots = tokio::task::spawn_blocking(move || {
        while let Some((id, request)) = snapshots_rx.blocking_recv() {
            let answer = snapshot_writer.handle(request);
            let _ = snapshot_answers.blocking_send(answer.encode(id));
        }
    });
    let files = tokio::task::spawn_blocking(move || {
        let mut store = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let send = |id: u64, answer: Answer| {
            let _ = answers_tx.blocking_send(answer.encode(id));
        };
        let mut held: Option<(u64, Request)> = None;
        loop {
            let next = held.take().or_else(|| requests_rx.blocking_recv());
            let Some((id, request)) = next else { return };
            let request = match request {
                snapshot @ (Request::PutChunk { .. }
                | Request::CommitSnapshot { .. }
                | Request::DeleteSnapshot { .. }) => {
                    if snapshots_tx.blocking_send((id, snapshot)).is_err() {
                        return;
                    }
                    continue;
                }
                other => other,
            };
            let Request::Append { first, records } = request else {
                store.handle(request, |answer| send(id, answer));
                continue;
            };
            // Group commit: every append already waiting joins this one's sync.
            let mut bytes: usize = records.iter().map(Vec::len).sum();
            let mut group = vec![(id, first, records)];
            while bytes < GROUP_BYTES {
                match requests_rx.try_recv() {
                    Ok((id, Request::Append { first, records })) => {
                        bytes += records.iter().map(Vec::len).sum::<usize>();
                        group.push((id, first, records));
                    }
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            store.append_group(group, send);
        }
    });
    let write = tokio::spawn(async move {
        while let Some(frame) = answers_rx.recv().await {
            if storage::write_frame(&mut writer, &frame).await.is_err() {
                return;
            }
            // Flush once the queue is drained, so a group's answers go out together.
            if answers_rx.is_empty() && writer.flush().await.is_err() {
                return;
            }
        }
    });
    let _ = read.await;
    let _ = files.await;
    let _ = snapshots.await;
    let _ = write.await;
    tracing::info!("storage: the enclave's connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nautilus-store-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// A real connection over an in-memory duplex: many appends sent back to back are
    /// answered with fewer `Durable` answers than appends (group commit), each covering every
    /// append before it; then fault injection: EIO on sync fails the group and fences later
    /// appends until a truncate, and appends resume once the fault is gone.
    #[tokio::test]
    async fn group_commit_and_faults_over_a_connection() {
        let dir = temp("group");
        let control = dir.join("storage-faults");
        let store = Store::open(&dir, Faults::from_control_file(control.clone())).unwrap();
        let (enclave, host) = tokio::io::duplex(1 << 20);
        tokio::spawn(serve(host, Arc::new(Mutex::new(store))));
        let (mut r, mut w) = tokio::io::split(enclave);
        let appends = 200u64;
        let mut frames = Vec::new();
        for i in 0..appends {
            frames.extend(
                Request::Append {
                    first: i + 1,
                    records: vec![vec![i as u8; 100]],
                }
                .encode(i + 1),
            );
        }
        w.write_all(&frames).await.unwrap();
        let mut acks = 0;
        let mut through = 0;
        while through < appends {
            let (_, answer) = storage::read_answer(&mut r).await.unwrap().unwrap();
            let Answer::Durable { through: t } = answer else {
                panic!("{answer:?}")
            };
            assert!(t > through);
            through = t;
            acks += 1;
        }
        assert!(
            acks < appends,
            "{acks} acknowledgements for {appends} appends"
        );

        fs::write(&control, "fsync-eio\n").unwrap();
        let send = |request: Request, id: u64| request.encode(id);
        let frame = send(
            Request::Append {
                first: appends + 1,
                records: vec![b"lost".to_vec()],
            },
            1000,
        );
        w.write_all(&frame).await.unwrap();
        let (id, answer) = storage::read_answer(&mut r).await.unwrap().unwrap();
        assert_eq!(id, 1000);
        assert!(
            matches!(
                answer,
                Answer::Error {
                    kind: ErrorKind::Io,
                    ..
                }
            ),
            "{answer:?}"
        );
        fs::remove_file(&control).unwrap();
        // Fenced until the enclave says where its log ends.
        w.write_all(&send(
            Request::Append {
                first: appends + 1,
                records: vec![b"x".to_vec()],
            },
            1001,
        ))
        .await
        .unwrap();
        let (_, answer) = storage::read_answer(&mut r).await.unwrap().unwrap();
        assert!(
            matches!(
                answer,
                Answer::Error {
                    kind: ErrorKind::Fenced,
                    ..
                }
            ),
            "{answer:?}"
        );
        w.write_all(&send(Request::TruncateAfter { position: appends }, 1002))
            .await
            .unwrap();
        assert_eq!(
            storage::read_answer(&mut r).await.unwrap().unwrap(),
            (1002, Answer::Done)
        );
        w.write_all(&send(
            Request::Append {
                first: appends + 1,
                records: vec![b"kept".to_vec()],
            },
            1003,
        ))
        .await
        .unwrap();
        assert_eq!(
            storage::read_answer(&mut r).await.unwrap().unwrap(),
            (
                1003,
                Answer::Durable {
                    through: appends + 1
                }
            )
        );
        // The read shows the kept record, not the lost one.
        w.write_all(&send(Request::ReadLog { from: appends }, 1004))
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            match storage::read_answer(&mut r).await.unwrap().unwrap().1 {
                Answer::Records { records, .. } => got.extend(records),
                Answer::LogEnd { last, torn, .. } => {
                    assert_eq!((last, torn), (appends + 1, None));
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got.last(), Some(&(appends + 1, b"kept".to_vec())));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Chunks are synced by the commit: a commit whose chunk sync fails is refused and leaves
    /// no snapshot; once syncs work again the same chunks commit.
    #[test]
    fn a_snapshot_commits_only_once_its_chunks_are_synced() {
        let dir = temp("chunk-sync");
        fs::create_dir_all(&dir).unwrap();
        let control = dir.join("faults");
        let mut store = Store::open(&dir, Faults::from_control_file(control.clone())).unwrap();
        let mut answers = Vec::new();
        let mut run = |store: &mut Store, request| {
            store.handle(request, |a| answers.push(a));
            answers.pop().unwrap()
        };
        let mut snapshots = store.snapshot_writer();
        fs::write(&control, "fsync-eio\n").unwrap();
        for index in 0..2 {
            let put = Request::PutChunk {
                snapshot: 3,
                index,
                bytes: vec![1; 10],
            };
            assert_eq!(snapshots.handle(put), Answer::Done, "no sync per chunk");
        }
        let commit = || Request::CommitSnapshot {
            snapshot: 3,
            manifest: b"m".to_vec(),
        };
        assert!(matches!(snapshots.handle(commit()), Answer::Error { .. }));
        assert_eq!(
            run(&mut store, Request::ListSnapshots),
            Answer::Snapshots(vec![])
        );
        fs::remove_file(&control).unwrap();
        assert_eq!(snapshots.handle(commit()), Answer::Done);
        assert_eq!(
            run(&mut store, Request::ListSnapshots),
            Answer::Snapshots(vec![3])
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn snapshots_and_blobs_are_written_durably_and_listed_only_when_complete() {
        let dir = temp("snap");
        let mut store = Store::open(&dir, Faults::none()).unwrap();
        let mut answers = Vec::new();
        let mut run = |store: &mut Store, request| {
            store.handle(request, |a| answers.push(a));
            answers.pop().unwrap()
        };
        let mut snapshots = store.snapshot_writer();
        for index in 0..3 {
            let put = Request::PutChunk {
                snapshot: 7,
                index,
                bytes: vec![index as u8; 10],
            };
            assert_eq!(snapshots.handle(put), Answer::Done);
        }
        assert_eq!(
            run(&mut store, Request::ListSnapshots),
            Answer::Snapshots(vec![])
        );
        let commit = Request::CommitSnapshot {
            snapshot: 7,
            manifest: b"m".to_vec(),
        };
        assert!(
            matches!(run(&mut store, commit.clone()), Answer::Error { .. }),
            "the log's thread refuses snapshot writes"
        );
        assert_eq!(snapshots.handle(commit), Answer::Done);
        assert_eq!(
            run(&mut store, Request::ListSnapshots),
            Answer::Snapshots(vec![7])
        );
        assert_eq!(
            run(
                &mut store,
                Request::GetChunk {
                    snapshot: 7,
                    index: 2
                }
            ),
            Answer::Bytes(vec![2; 10])
        );
        assert!(matches!(
            run(
                &mut store,
                Request::GetChunk {
                    snapshot: 7,
                    index: 3
                }
            ),
            Answer::Error {
                kind: ErrorKind::NotFound,
                ..
            }
        ));
        assert_eq!(
            snapshots.handle(Request::DeleteSnapshot { snapshot: 7 }),
            Answer::Done
        );
        assert_eq!(
            run(&mut store, Request::ListSnapshots),
            Answer::Snapshots(vec![])
        );
        let put = Request::PutBlob {
            name: "cluster-key".into(),
            bytes: b"blob".to_vec(),
        };
        assert_eq!(run(&mut store, put), Answer::Done);
        assert_eq!(
            run(
                &mut store,
                Request::GetBlob {
                    name: "cluster-key".into()
                }
            ),
            Answer::Bytes(b"blob".to_vec())
        );
        assert!(matches!(
            run(
                &mut store,
                Request::GetBlob {
                    name: "../etc".into()
                }
            ),
            Answer::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ));
        assert!(matches!(
            run(&mut store, Request::AwsCredentials),
            Answer::Error {
                kind: ErrorKind::Unavailable,
                ..
            }
        ));
        // No temporary file is left behind.
        let leftovers: Vec<_> = walk(&dir)
            .into_iter()
            .filter(|p| p.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
        out
    }
}
