//! The write-ahead log on the host's disk: segment files `wal/<first position, 20 digits>.wal`,
//! each a run of `[len: u32][position: u64][sealed record]`. The host only finds record
//! boundaries here; what a record says (and whether it was forged) is the enclave's to check,
//! so a file that ends inside a record is reported as a torn tail, never repaired on its own.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nautilus_wire::storage::{Answer, ErrorKind, MAX_ITEM, MAX_RECORDS, Torn};

use super::faults::Faults;

/// Bytes of a record's header in a segment file.
const HEADER: u64 = 12;
/// Most bytes one `Records` answer carries (well under the frame bound).
const READ_BATCH_BYTES: usize = 4 << 20;

/// A failure the enclave is told about.
pub(crate) type Failure = (ErrorKind, String);

fn failure(what: &str, error: &io::Error) -> Failure {
    (ErrorKind::of_io(error), format!("{what}: {error}"))
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    name: String,
    /// Position and byte offset of each complete record.
    records: Vec<(u64, u64)>,
    /// Length of the complete records (where the next one goes).
    len: u64,
    /// Offset and byte count of an incomplete record at the end.
    torn: Option<(u64, u64)>,
}

impl Segment {
    fn first(&self) -> Option<u64> {
        self.records.first().map(|r| r.0)
    }
    fn last(&self) -> Option<u64> {
        self.records.last().map(|r| r.0)
    }
}

/// The log, open for appends.
pub(crate) struct SegmentLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    /// The last segment, open for appending.
    file: Option<File>,
    rotate_bytes: u64,
    /// Last position known to be synced.
    durable: u64,
    /// Set by a failed append; appends are refused until `truncate_after`.
    fenced: bool,
    faults: Arc<Faults>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.wal")
}

/// Syncs a directory so a created, renamed or removed entry in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the record boundaries of one segment file.
fn scan(path: &Path, name: String) -> io::Result<Segment> {
    let bytes = fs::read(path)?;
    let mut records = Vec::new();
    let mut offset = 0u64;
    let total = bytes.len() as u64;
    let mut torn = None;
    while offset < total {
        let at = offset as usize;
        let header = bytes.get(at..at + HEADER as usize);
        let Some(header) = header else {
            torn = Some((offset, total - offset));
            break;
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let len = u64::from(u32::from_be_bytes(len));
        let mut position = [0u8; 8];
        position.copy_from_slice(&header[4..12]);
        let position = u64::from_be_bytes(position);
        if len > MAX_ITEM as u64 || offset + HEADER + len > total {
            torn = Some((offset, total - offset));
            break;
        }
        records.push((position, offset));
        offset += HEADER + len;
    }
    Ok(Segment {
        name,
        records,
        len: offset,
        torn,
    })
}

impl SegmentLog {
    /// Opens (creating) the log under `dir`, finding every segment's records.
    pub(crate) fn open(dir: &Path, rotate_bytes: u64, faults: Arc<Faults>) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut names: Vec<String> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".wal"))
            .collect();
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for name in names {
            segments.push(scan(&dir.join(&name), name)?);
        }
        let file = match segments.last() {
            Some(last) => Some(OpenOptions::new().write(true).open(dir.join(&last.name))?),
            None => None,
        };
        let durable = segments.iter().rev().find_map(Segment::last).unwrap_or(0);
        Ok(Self {
            dir: dir.to_path_buf(),
            segments,
            file,
            rotate_bytes,
            durable,
            fenced: false,
            faults,
        })
    }

    /// First and last complete positions (0, 0 when empty).
    pub(crate) fn bounds(&self) -> (u64, u64) {
        let first = self.segments.iter().find_map(Segment::first).unwrap_or(0);
        let last = self
            .segments
            .iter()
            .rev()
            .find_map(Segment::last)
            .unwrap_or(0);
        (first, last)
    }

    fn next(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find_map(Segment::last)
            .map(|l| l + 1)
    }

    /// Writes `records` at `first..` without syncing; `Ok(last position)`. A failure fences
    /// the log and leaves the files as they were durable.
    pub(crate) fn write(&mut self, first: u64, records: &[Vec<u8>]) -> Result<u64, Failure> {
        if self.fenced {
            return Err((
                ErrorKind::Fenced,
                "an earlier append failed; truncate first".into(),
            ));
        }
        if records.is_empty() || records.len() > MAX_RECORDS {
            return Err((
                ErrorKind::BadRequest,
                "an append needs 1..=8192 records".into(),
            ));
        }
        if let Some(next) = self.next()
            && first != next
        {
            return Err((
                ErrorKind::OutOfOrder,
                format!("append at {first}, but the log continues at {next}"),
            ));
        }
        let last = first + records.len() as u64 - 1;
        let result = self.write_unfenced(first, records);
        if let Err(e) = result {
            self.fenced = true;
            self.rollback();
            return Err(e);
        }
        Ok(last)
    }

    fn write_unfenced(&mut self, first: u64, records: &[Vec<u8>]) -> Result<(), Failure> {
        let rotate = self
            .segments
            .last()
            .is_none_or(|s| s.len >= self.rotate_bytes);
        if rotate {
            let name = segment_name(first);
            let path = self.dir.join(&name);
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)
                .map_err(|e| failure("cannot create a segment", &e))?;
            sync_dir(&self.dir).map_err(|e| failure("cannot sync the log directory", &e))?;
            self.file = Some(file);
            self.segments.push(Segment {
                name,
                records: Vec::new(),
                len: 0,
                torn: None,
            });
        }
        let Some(segment) = self.segments.last_mut() else {
            return Err((ErrorKind::Io, "no segment to append to".into()));
        };
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.len() + 12).sum());
        let mut offsets = Vec::with_capacity(records.len());
        for (position, record) in (first..).zip(records.iter()) {
            offsets.push((position, segment.len + buf.len() as u64));
            buf.extend_from_slice(
                &u32::try_from(record.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes(),
            );
            buf.extend_from_slice(&position.to_be_bytes());
            buf.extend_from_slice(record);
        }
        let Some(file) = self.file.as_mut() else {
            return Err((ErrorKind::Io, "the segment is not open".into()));
        };
        // A torn tail from a crash is cut before the first append after it.
        if segment.torn.is_some() {
            file.set_len(segment.len)
                .map_err(|e| failure("cannot cut a torn tail", &e))?;
        }
        file.seek(SeekFrom::Start(segment.len))
            .map_err(|e| failure("seek", &e))?;
        self.faults
            .write(file, &buf)
            .map_err(|e| failure("cannot write the log", &e))?;
        segment.len += buf.len() as u64;
        segment.torn = None;
        segment.records.extend(offsets);
        Ok(())
    }

    /// Syncs what was written (one `fdatasync` for a whole group of appends). A failure
    /// fences the log and cuts it back to what was durable before.
    pub(crate) fn sync(&mut self) -> Result<u64, Failure> {
        let Some(file) = self.file.as_ref() else {
            return Ok(self.durable);
        };
        if let Err(e) = self.faults.sync(file) {
            self.fenced = true;
            self.rollback();
            return Err(failure("fdatasync failed", &e));
        }
        self.durable = self.bounds().1;
        Ok(self.durable)
    }

    /// Cuts the files back to the last durable position (after a failed write or sync, whose
    /// bytes may or may not have reached the disk).
    fn rollback(&mut self) {
        if let Err(e) = self.cut_after(self.durable) {
            tracing::error!(error = %e, "storage: cannot cut the log back after a failure");
        }
    }

    /// Drops every record after `position` and lifts the fence.
    pub(crate) fn truncate_after(&mut self, position: u64) -> Result<(), Failure> {
        self.cut_after(position)
            .map_err(|e| failure("cannot truncate the log", &e))?;
        self.durable = self.durable.min(position).min(self.bounds().1);
        self.fenced = false;
        Ok(())
    }

    fn cut_after(&mut self, position: u64) -> io::Result<()> {
        let mut removed = false;
        while let Some(segment) = self.segments.last() {
            if segment.first().is_some_and(|f| f <= position) {
                break;
            }
            fs::remove_file(self.dir.join(&segment.name))?;
            self.segments.pop();
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        let Some(segment) = self.segments.last_mut() else {
            self.file = None;
            return Ok(());
        };
        let keep = segment.records.partition_point(|r| r.0 <= position);
        let cut_to = segment.records.get(keep).map_or(segment.len, |r| r.1);
        let file = OpenOptions::new()
            .write(true)
            .open(self.dir.join(&segment.name))?;
        // Bytes past the cut may be a torn tail or a failed write's leftovers.
        if file.metadata()?.len() != cut_to {
            file.set_len(cut_to)?;
            file.sync_all()?;
        }
        segment.records.truncate(keep);
        segment.len = cut_to;
        segment.torn = None;
        self.file = Some(file);
        Ok(())
    }

    /// Drops whole segments whose records all precede `position`, keeping the last one: each
    /// goes to `discard`, which takes it out of the directory (durably) and frees its disk.
    pub(crate) fn truncate_before(
        &mut self,
        position: u64,
        mut discard: impl FnMut(&Path) -> io::Result<()>,
    ) -> Result<(), Failure> {
        while self.segments.len() > 1 {
            let next_first = self.segments.get(1).and_then(Segment::first);
            // Every record of the first segment precedes the second's first.
            if next_first.is_some_and(|f| f <= position) {
                let segment = self.segments.remove(0);
                discard(&self.dir.join(&segment.name))
                    .map_err(|e| failure("cannot remove a segment", &e))?;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Streams records from `from` as `Records` answers, then the `LogEnd`.
    pub(crate) fn read(&self, from: u64, mut emit: impl FnMut(Answer)) -> Result<(), Failure> {
        for segment in &self.segments {
            if segment.last().is_none_or(|l| l < from) {
                continue;
            }
            let mut file = File::open(self.dir.join(&segment.name))
                .map_err(|e| failure("cannot open a segment", &e))?;
            let mut batch = Vec::new();
            let mut batch_bytes = 0usize;
            for (i, &(position, offset)) in segment.records.iter().enumerate() {
                if position < from {
                    continue;
                }
                let end = segment.records.get(i + 1).map_or(segment.len, |r| r.1);
                let mut bytes = vec![0u8; (end - offset).saturating_sub(HEADER) as usize];
                file.seek(SeekFrom::Start(offset + HEADER))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| failure("cannot read a segment", &e))?;
                batch_bytes += bytes.len();
                batch.push((position, bytes));
                if batch_bytes >= READ_BATCH_BYTES || batch.len() >= MAX_RECORDS {
                    emit(Answer::Records {
                        segment: segment.name.clone(),
                        records: std::mem::take(&mut batch),
                    });
                    batch_bytes = 0;
                }
            }
            if !batch.is_empty() {
                emit(Answer::Records {
                    segment: segment.name.clone(),
                    records: batch,
                });
            }
        }
        let (first, last) = self.bounds();
        let torn = self.segments.last().and_then(|s| {
            s.torn.map(|(offset, bytes)| Torn {
                segment: s.name.clone(),
                offset,
                bytes,
            })
        });
        emit(Answer::LogEnd { first, last, torn });
        Ok(())
    }

    /// Segment files in order (tests).
    #[cfg(test)]
    pub(crate) fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.name.clone()).collect()
    }
}

/// Makes sure a file written with `write_all` reached the disk before it is renamed into
/// place: write to `<path>.tmp`, sync, rename, sync the directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8], faults: &Faults) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = File::create(&tmp)?;
        faults.write(&mut file, bytes)?;
        faults.sync(&file)?;
        file.flush()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nautilus-wal-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn read_all(log: &SegmentLog, from: u64) -> (Vec<(u64, Vec<u8>)>, Answer) {
        let mut records = Vec::new();
        let mut end = None;
        log.read(from, |a| match a {
            Answer::Records { records: r, .. } => records.extend(r),
            other => end = Some(other),
        })
        .unwrap();
        (records, end.unwrap())
    }

    fn recs(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
        range.map(|i| vec![i as u8; (i % 7) as usize + 1]).collect()
    }

    #[test]
    fn appends_rotate_reopen_and_read_back() {
        let d = dir("rotate");
        let faults = Arc::new(Faults::none());
        let mut log = SegmentLog::open(&d, 64, faults.clone()).unwrap();
        for i in 0..10u64 {
            log.write(1 + i * 3, &recs(1 + i * 3..4 + i * 3)).unwrap();
            log.sync().unwrap();
        }
        assert!(log.segment_names().len() > 3, "{:?}", log.segment_names());
        drop(log);
        let log = SegmentLog::open(&d, 64, faults).unwrap();
        assert_eq!(log.bounds(), (1, 30));
        let (records, end) = read_all(&log, 5);
        assert_eq!(records.len(), 26);
        assert_eq!(records[0], (5, recs(5..6).remove(0)));
        assert_eq!(
            end,
            Answer::LogEnd {
                first: 1,
                last: 30,
                torn: None
            }
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn out_of_order_appends_are_refused_and_change_nothing() {
        let d = dir("order");
        let mut log = SegmentLog::open(&d, 1 << 20, Arc::new(Faults::none())).unwrap();
        log.write(5, &recs(5..7)).unwrap();
        assert_eq!(
            log.write(8, &recs(8..9)).unwrap_err().0,
            ErrorKind::OutOfOrder
        );
        assert_eq!(
            log.write(6, &recs(6..7)).unwrap_err().0,
            ErrorKind::OutOfOrder
        );
        assert_eq!(log.bounds(), (5, 6));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn truncation_after_and_before() {
        let d = dir("truncate");
        let mut log = SegmentLog::open(&d, 40, Arc::new(Faults::none())).unwrap();
        for i in 1..=20u64 {
            log.write(i, &recs(i..i + 1)).unwrap();
        }
        log.sync().unwrap();
        log.truncate_after(12).unwrap();
        assert_eq!(log.bounds(), (1, 12));
        log.write(13, &[b"new".to_vec()]).unwrap();
        log.sync().unwrap();
        let (records, _) = read_all(&log, 13);
        assert_eq!(records, vec![(13, b"new".to_vec())]);
        log.truncate_before(10, |path| fs::remove_file(path))
            .unwrap();
        let (first, last) = log.bounds();
        assert!(first > 1 && first <= 10, "{first}");
        assert_eq!(last, 13);
        drop(log);
        let mut log = SegmentLog::open(&d, 40, Arc::new(Faults::none())).unwrap();
        assert_eq!(log.bounds().1, 13);
        log.truncate_after(0).unwrap();
        assert_eq!(log.bounds(), (0, 0));
        log.write(1, &recs(1..2)).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_torn_tail_is_reported_and_overwritten_by_the_next_append() {
        let d = dir("torn");
        let mut log = SegmentLog::open(&d, 1 << 20, Arc::new(Faults::none())).unwrap();
        log.write(1, &recs(1..4)).unwrap();
        log.sync().unwrap();
        let name = log.segment_names()[0].clone();
        drop(log);
        let path = d.join(&name);
        let full = fs::read(&path).unwrap();
        fs::write(&path, &full[..full.len() - 2]).unwrap();
        let mut log = SegmentLog::open(&d, 1 << 20, Arc::new(Faults::none())).unwrap();
        let (records, end) = read_all(&log, 1);
        assert_eq!(records.len(), 2);
        let Answer::LogEnd {
            last: 2,
            torn: Some(torn),
            ..
        } = end
        else {
            panic!("{end:?}")
        };
        assert_eq!(torn.segment, name);
        log.write(3, &[b"again".to_vec()]).unwrap();
        log.sync().unwrap();
        drop(log);
        let log = SegmentLog::open(&d, 1 << 20, Arc::new(Faults::none())).unwrap();
        let (records, end) = read_all(&log, 3);
        assert_eq!(records, vec![(3, b"again".to_vec())]);
        assert!(matches!(end, Answer::LogEnd { torn: None, .. }));
        fs::remove_dir_all(&d).unwrap();
    }
}
