//! Background work at a lower CPU priority. A snapshot's encoding and sealing take about a
//! core-second per 100,000 objects; on a small enclave that core is the one requests need, so
//! the snapshot's thread yields to them instead of taking an equal share.

/// The nice value of background threads: Linux gives a nice-10 thread about a tenth of the CPU
/// a nice-0 thread contends for, and all of it when nothing else runs.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`]. On Linux the nice value
/// is per thread, and `setpriority(PRIO_PROCESS, 0, ..)` sets the calling thread's. Best
/// effort: a refusal leaves the thread at its priority.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn background() {
    // SAFETY: setpriority takes no pointer; it only changes the calling thread's nice value
    // (raising it needs no privilege).
    let status = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, BACKGROUND_NICE) };
    if status != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not lower a background thread's priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn background() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The thread's own nice value, from /proc (the kernel's view, not ours).
    fn nice_of_this_thread() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command (which may hold spaces) start after the last ')'; nice is
        // field 19, the 17th after it.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = nice_of_this_thread();
        let lowered = std::thread::spawn(|| {
            super::background();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, super::BACKGROUND_NICE as i64);
        assert_eq!(nice_of_this_thread(), before, "the caller's thread only");
    }
}
