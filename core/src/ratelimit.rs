//! Token buckets per identity, as kube's EventRateLimit admission keeps them for its `User`
//! limit type: `qps` tokens a second up to `burst`, in a bounded cache that forgets the least
//! recently used identity when full (a forgotten identity starts with a full bucket again, as
//! with kube's LRU). Every operation is O(log n) in the cache's size.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use crate::UnixTime;

/// One token, in the nano-token units the buckets count in (exact integer refills).
const TOKEN: u128 = 1_000_000_000;

#[derive(Debug)]
struct Bucket {
    /// Tokens left, in nano-tokens.
    tokens: u128,
    /// When `tokens` was last brought up to date.
    at: UnixTime,
    /// This bucket's place in the use order.
    used: (UnixTime, u64),
}

/// Token buckets keyed by identity.
#[derive(Debug)]
pub struct RateLimiter {
    qps: u128,
    burst: u128,
    capacity: usize,
    buckets: BTreeMap<Box<str>, Bucket>,
    /// Identities by last use, oldest first.
    by_use: BTreeMap<(UnixTime, u64), Box<str>>,
    seq: u64,
}

impl RateLimiter {
    /// Buckets of `burst` tokens refilled at `qps` a second, for at most `capacity` identities.
    pub fn new(qps: u32, burst: u32, capacity: usize) -> Self {
        Self {
            qps: u128::from(qps),
            burst: u128::from(burst.max(1)) * TOKEN,
            capacity: capacity.max(1),
            buckets: BTreeMap::new(),
            by_use: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Takes one token from `identity`'s bucket at `now`; false when it has none left (the
    /// request is refused and the bucket is left as it was, as `TryAccept` does).
    pub fn try_accept(&mut self, identity: &str, now: UnixTime) -> bool {
        self.seq = self.seq.wrapping_add(1);
        let used = (now, self.seq);
        let bucket = match self.buckets.get_mut(identity) {
            Some(bucket) => bucket,
            None => {
                if self.buckets.len() >= self.capacity
                    && let Some((_, oldest)) = self.by_use.pop_first()
                {
                    self.buckets.remove(&oldest);
                }
                self.buckets.entry(identity.into()).or_insert(Bucket {
                    tokens: self.burst,
                    at: now,
                    used,
                })
            }
        };
        self.by_use.remove(&bucket.used);
        bucket.used = used;
        self.by_use.insert(used, identity.into());
        let elapsed = u128::from(now.nanos.saturating_sub(bucket.at.nanos));
        bucket.tokens = bucket
            .tokens
            .saturating_add(elapsed.saturating_mul(self.qps))
            .min(self.burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens < TOKEN {
            return false;
        }
        bucket.tokens -= TOKEN;
        true
    }

    /// Identities tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no identity is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut limiter = RateLimiter::new(10, 3, 8);
        let t0 = UnixTime::from_secs(1_000);
        assert!((0..3).all(|_| limiter.try_accept("a", t0)));
        assert!(!limiter.try_accept("a", t0), "the burst is spent");
        assert!(
            limiter.try_accept("b", t0),
            "another identity has its own bucket"
        );
        // 10 a second: one token every 100 ms, never more than the burst.
        let t1 = UnixTime {
            nanos: t0.nanos + 99_000_000,
        };
        assert!(!limiter.try_accept("a", t1));
        let t2 = UnixTime {
            nanos: t0.nanos + 100_000_000,
        };
        assert!(limiter.try_accept("a", t2));
        assert!(!limiter.try_accept("a", t2));
        let later = t0.plus_secs(3600);
        assert!((0..3).all(|_| limiter.try_accept("a", later)));
        assert!(!limiter.try_accept("a", later));
        // A clock that steps back refills nothing and breaks nothing.
        assert!(!limiter.try_accept("a", t0));
    }

    #[test]
    fn the_cache_forgets_the_least_recently_used() {
        let mut limiter = RateLimiter::new(1, 1, 2);
        let t = UnixTime::from_secs(5);
        assert!(limiter.try_accept("a", t));
        assert!(limiter.try_accept("b", t));
        assert!(!limiter.try_accept("a", t));
        assert!(limiter.try_accept("c", t), "b was used least recently");
        assert_eq!(limiter.len(), 2);
        assert!(!limiter.try_accept("a", t), "a is still remembered");
        assert!(
            limiter.try_accept("b", t),
            "b was forgotten and starts full"
        );
    }
}
