//! The one door to shared-memory primitives: std's under the `std` feature, loom's under
//! `cfg(loom)`, and a small spin lock for bare `no_std` builds. Every structure built on it has a
//! model in `loom-tests/`.

#[cfg(loom)]
pub use loom::sync::{Arc, MutexGuard};

#[cfg(loom)]
pub use loom::sync::atomic::AtomicUsize;

#[cfg(not(loom))]
pub use core::sync::atomic::AtomicUsize;

#[cfg(all(not(loom), feature = "std"))]
pub use std::sync::{Arc, MutexGuard};

#[cfg(loom)]
use loom::sync as inner;
#[cfg(all(not(loom), feature = "std"))]
use std::sync as inner;

#[cfg(all(not(loom), not(feature = "std")))]
pub use alloc::sync::Arc;

#[cfg(all(not(loom), not(feature = "std")))]
pub use spin::{Mutex, MutexGuard};

/// std's (or loom's) mutex with poisoning folded away: a panic elsewhere must not wedge the store.
#[cfg(any(loom, feature = "std"))]
#[derive(Debug, Default)]
pub struct Mutex<T>(inner::Mutex<T>);

#[cfg(any(loom, feature = "std"))]
impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub fn new(value: T) -> Self {
        Self(inner::Mutex::new(value))
    }

    /// Locks, ignoring poison (core never panics while holding a lock on input it was given).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

// Compiled in every non-loom build (not only the bare one that uses it) so its test runs in the
// workspace's `cargo test` too, where core has std.
#[cfg(not(loom))]
#[cfg_attr(feature = "std", allow(dead_code, unreachable_pub))]
mod spin {
    //! Test-and-set lock for targets with no OS; critical sections in core are a few pointer moves.
    use core::cell::UnsafeCell;
    use core::ops::{Deref, DerefMut};
    use core::sync::atomic::{AtomicBool, Ordering};

    /// A spin lock with the same `lock()` shape as the other two.
    #[derive(Debug, Default)]
    pub struct Mutex<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: access to `value` is serialized by `locked` (acquire on lock, release on unlock).
    #[allow(unsafe_code)]
    unsafe impl<T: Send> Sync for Mutex<T> {}

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(value: T) -> Self {
            Self {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        /// Spins until the lock is free, then holds it until the guard drops.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            while self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                core::hint::spin_loop();
            }
            MutexGuard { lock: self }
        }
    }

    /// Holds the lock; releases on drop.
    #[derive(Debug)]
    pub struct MutexGuard<'a, T> {
        lock: &'a Mutex<T>,
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        #[allow(unsafe_code)]
        fn deref(&self) -> &T {
            // SAFETY: the guard proves exclusive access.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        #[allow(unsafe_code)]
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard proves exclusive access.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::Mutex;
        use std::sync::Arc;
        use std::vec::Vec;

        /// Four threads add to one counter under the lock: no increment is lost, so no two
        /// held it at once, and every guard's drop released it (or a thread would spin forever).
        #[test]
        fn the_spin_lock_excludes_and_releases() {
            const THREADS: usize = 4;
            const ROUNDS: usize = 20_000;
            let counter = Arc::new(Mutex::new((0usize, false)));
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let counter = Arc::clone(&counter);
                    std::thread::spawn(move || {
                        for _ in 0..ROUNDS {
                            let mut held = counter.lock();
                            // A second holder would see the flag set.
                            assert!(!held.1, "two holders at once");
                            held.1 = true;
                            held.0 += 1;
                            core::hint::spin_loop();
                            held.1 = false;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("a thread panicked");
            }
            assert_eq!(counter.lock().0, THREADS * ROUNDS);
        }
    }
}
