//! Gives freed heap back to the system. glibc keeps what a burst freed (a flood of refused
//! bodies, thousands of watch buffers, a large LIST) mapped in its arenas, so without this the
//! enclave's resident memory stays at the attack's peak long after it ended; inside a Nitro
//! enclave that memory is the whole machine's.

use std::time::Duration;

/// How often the heap is trimmed: rare enough that the walk over free chunks (a few ms on a
/// large heap) costs nothing measurable, often enough that a burst's memory is back soon after.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Starts the periodic trim (a no-op where the allocator is not glibc's).
pub(crate) fn spawn_trimmer() {
    if !TRIMS {
        return;
    }
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Off the async workers: the walk may take a few milliseconds.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

const TRIMS: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointer from us; it only walks glibc's own free lists and
    // returns whole free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
