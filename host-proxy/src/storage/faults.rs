//! Fault injection for tests: `nautilus-proxy dev --storage-faults` (a hidden flag only `dev`
//! honours) makes the store read the control file `storage-faults` in its directory before
//! every write and sync. Each line names one fault that holds while the line is there:
//! `fsync-eio` (every sync fails with EIO), `short-write` (writes stop halfway and fail),
//! `disk-full` (writes fail with ENOSPC), `fsync-stall` (every sync waits until the line is
//! gone, as a sync on a disk that stopped answering). Tests write and remove the file while
//! the cluster runs, to see writes refused or held and then resume.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::PathBuf;

/// The injected faults (none in production).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    control: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Active {
    fsync_eio: bool,
    short_write: bool,
    disk_full: bool,
    fsync_stall: bool,
}

/// How often a stalled sync looks at the control file again.
const STALL_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Linux errno values the faults stand for.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

impl Faults {
    /// No faults: writes and syncs go straight to the file.
    pub(crate) fn none() -> Self {
        Self { control: None }
    }

    /// Faults named in the control file `path` (read at every write and sync).
    pub(crate) fn from_control_file(path: PathBuf) -> Self {
        Self {
            control: Some(path),
        }
    }

    fn active(&self) -> Active {
        let Some(path) = &self.control else {
            return Active::default();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut active = Active::default();
        for line in text.lines() {
            match line.trim() {
                "fsync-eio" => active.fsync_eio = true,
                "short-write" => active.short_write = true,
                "disk-full" => active.disk_full = true,
                "fsync-stall" => active.fsync_stall = true,
                _ => {}
            }
        }
        active
    }

    /// `write_all`, unless a fault says otherwise.
    pub(crate) fn write(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        let active = self.active();
        if active.disk_full {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        if active.short_write {
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            file.write_all(half)?;
            return Err(io::Error::other("short write (injected)"));
        }
        file.write_all(bytes)
    }

    /// `fdatasync`, unless a fault says otherwise.
    pub(crate) fn sync(&self, file: &File) -> io::Result<()> {
        let mut active = self.active();
        while active.fsync_stall {
            std::thread::sleep(STALL_POLL);
            active = self.active();
        }
        if active.fsync_eio {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_file_switches_faults_on_and_off() {
        let dir = std::env::temp_dir().join(format!("nautilus-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let control = dir.join("storage-faults");
        let faults = Faults::from_control_file(control.clone());
        let path = dir.join("f");
        let mut file = File::create(&path).unwrap();
        faults.write(&mut file, b"abcd").unwrap();
        faults.sync(&file).unwrap();
        std::fs::write(&control, "disk-full\n").unwrap();
        let e = faults.write(&mut file, b"abcd").unwrap_err();
        assert_eq!(
            nautilus_wire::storage::ErrorKind::of_io(&e),
            nautilus_wire::storage::ErrorKind::DiskFull
        );
        std::fs::write(&control, "fsync-eio\nshort-write\n").unwrap();
        assert_eq!(faults.sync(&file).unwrap_err().raw_os_error(), Some(EIO));
        assert!(faults.write(&mut file, b"abcdef").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdabc");
        std::fs::remove_file(&control).unwrap();
        faults.write(&mut file, b"x").unwrap();
        faults.sync(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
