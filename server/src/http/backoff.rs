//! Failed logins per user name and per client address: a few free tries,
//! then each further failure doubles the wait, up to [`BACKOFF_MAX_S`]. A
//! success clears the user's count. The counters live in this process:
//! with several replicas each keeps its own, which slows guessing per
//! replica.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures a user name may have before backoff starts.
pub const FREE_FAILURES_PER_USER: u32 = 5;
/// Failures an address may have before backoff starts (a township office
/// shares one address among many users).
pub const FREE_FAILURES_PER_ADDRESS: u32 = 30;
/// Longest wait backoff imposes, seconds.
pub const BACKOFF_MAX_S: u64 = 15 * 60;
/// Counters kept at most; the oldest are forgotten first.
const KEYS_MAX: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// Failed logins per key (`user:NAME`, `addr:IP`).
#[derive(Default)]
pub struct Limiter {
    keys: Mutex<HashMap<String, Failures>>,
}

impl Limiter {
    /// After `free` failures, each try waits: 1 s, then 2, 4, … doubling
    /// with every further failure, up to [`BACKOFF_MAX_S`].
    fn wait_s(f: &Failures, free: u32, now: i64) -> Option<u64> {
        let over = f.count.checked_sub(free)?;
        let wait = 1u64
            .checked_shl(over.min(20))
            .unwrap_or(u64::MAX)
            .min(BACKOFF_MAX_S);
        let until = f.last_ms.saturating_add((wait * 1000) as i64);
        (until > now).then(|| ((until - now) as u64).div_ceil(1000))
    }

    /// Seconds to wait before `keys` may try again, if any must.
    pub fn check(&self, keys: &[(String, u32)], now: i64) -> Option<u64> {
        let map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|(k, free)| map.get(k).and_then(|f| Self::wait_s(f, *free, now)))
            .max()
    }

    pub fn fail(&self, keys: &[(String, u32)], now: i64) {
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= KEYS_MAX {
            // Forget counters idle for longer than the longest backoff;
            // if none are, the oldest half.
            let horizon = now - (BACKOFF_MAX_S as i64) * 2000;
            map.retain(|_, f| f.last_ms > horizon);
            if map.len() >= KEYS_MAX {
                let mut ages: Vec<i64> = map.values().map(|f| f.last_ms).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                map.retain(|_, f| f.last_ms > cut);
            }
        }
        for (k, _) in keys {
            let f = map.entry(k.clone()).or_insert(Failures {
                count: 0,
                last_ms: now,
            });
            f.count = f.count.saturating_add(1);
            f.last_ms = now;
        }
    }

    pub fn succeed(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_tries_and_a_success_clears_it() {
        let l = Limiter::default();
        let keys = [("user:a".to_owned(), 2)];
        let t = 1_000_000;
        l.fail(&keys, t);
        assert_eq!(l.check(&keys, t), None, "one failure of two free");
        l.fail(&keys, t);
        assert_eq!(l.check(&keys, t), Some(1), "two free failures, then a wait");
        l.fail(&keys, t);
        assert_eq!(l.check(&keys, t), Some(2));
        l.fail(&keys, t);
        assert_eq!(l.check(&keys, t), Some(4));
        assert_eq!(l.check(&keys, t + 4_000), None);
        for _ in 0..40 {
            l.fail(&keys, t);
        }
        assert_eq!(l.check(&keys, t), Some(BACKOFF_MAX_S));
        l.succeed("user:a");
        assert_eq!(l.check(&keys, t), None);
    }
}
