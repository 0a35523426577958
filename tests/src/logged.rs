//! A peer's child process whose output goes to a log file (a hollow kubelet at `-v=6`, KWOK
//! logging every request: too much to keep in memory), for a test to read; `kill -9` and
//! reaped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;

/// A running child with its stdout and stderr in one log file.
pub struct LoggedChild {
    child: Mutex<Child>,
    log: PathBuf,
}

impl LoggedChild {
    /// Starts `command` (stdin closed) with its output in a new file at `log`.
    pub fn spawn(command: &mut Command, log: PathBuf) -> std::io::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()?;
        Ok(Self {
            child: Mutex::new(child),
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().expect("child lock").id()
    }

    /// Whether it has exited, and how.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child
            .lock()
            .expect("child lock")
            .try_wait()
            .ok()
            .flatten()
    }

    /// `kill -9`, as a machine losing power, and waits for it.
    pub fn kill(&self) {
        let mut child = self.child.lock().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        self.kill();
    }
}
