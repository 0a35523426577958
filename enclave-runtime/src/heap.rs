//! The enclave's heap: its allocator, and giving freed memory back to the system.
//!
//! The allocator is mimalloc, not the C library's: with glibc's, `malloc` and `free` were about a
//! quarter of the enclave's CPU on a stream of creates (a request allocates and frees many small
//! JSON values); mimalloc's per-thread free lists cut the enclave's CPU per create by about a
//! fifth (measured side by side, `bench --only durable`). In the static (musl) enclave image it
//! also replaces musl's allocator, which is slower still.
//!
//! Built without transparent huge pages (`no_thp`): with them mimalloc asks the kernel for 2 MiB
//! pages, and an idle enclave held 27 MB instead of 16 MB and one with 10,000 pods 9 % more;
//! without them it holds what it held with glibc (18.4 MB idle, 86.5 MB at 10,000 pods,
//! `bench --only memory`).
//!
//! Freed memory must go back: what a burst freed (a flood of refused bodies, thousands of watch
//! buffers, a large LIST) would otherwise stay resident long after it ended, and inside a Nitro
//! enclave that memory is the whole machine's. mimalloc purges empty pages after a delay, but only
//! when the allocator is next used; the periodic collection below purges them on an idle enclave
//! too.

use std::time::Duration;

/// How often freed memory is collected: rare enough to cost nothing measurable, often enough
/// that a burst's memory is back soon after.
const TRIM_EVERY: Duration = Duration::from_secs(5);

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starts the periodic collection.
pub(crate) fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Off the async workers: purging a large heap may take a few milliseconds.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

#[allow(unsafe_code)]
fn trim() {
    // SAFETY: mi_collect takes no pointer from us; it frees the calling thread's empty pages and
    // purges (MADV_DONTNEED) the free pages of the allocator's arenas, program-wide.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
