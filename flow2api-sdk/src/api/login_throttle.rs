//! Throttling of admin password checks (login, change-password), per client address and for
//! all addresses together, so that neither one client nor a botnet of them can guess the
//! password.
//!
//! The policy: each counter has a fixed window (`LOGIN_WINDOW`) that starts at its first
//! failure. A client address may fail `LOGIN_MAX_FAILURES` times in its window, all addresses
//! together `LOGIN_MAX_FAILURES_GLOBAL` times in theirs; a counter at its limit refuses every
//! attempt (the right password too) until its window ends, and refused attempts are not
//! counted, so the lockout does not grow. A correct password clears its address's counter.
//!
//! Every attempt is counted *before* its password is checked, and given back when the password
//! was right: parallel guesses cannot all start before the first failure is recorded, and a
//! locked-out client costs no bcrypt. The counters are records in the strongly consistent
//! store (a Durable Object at the edge, SQLite natively), changed with its conditional write
//! and retried on conflict, so every process and isolate counts into the same ones. Each
//! record expires with its window.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::seams::{Bytes, Expect, Storage, StorageError};

/// Where a client address's counter lives (followed by its bucket, see
/// `client_addr::bucket`).
const CLIENT_PREFIX: &str = "login-throttle:client:";
/// The counter of all addresses together.
const GLOBAL_KEY: &str = "login-throttle:global";
/// Conditional writes that may lose a race before an attempt gives up (503).
const MAX_CONFLICTS: usize = 16;

/// The numbers of the policy, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Failures one address may have per window.
    pub(crate) max_failures: u32,
    /// Failures all addresses together may have per window.
    pub(crate) max_failures_global: u32,
    /// The window, in milliseconds.
    pub(crate) window_ms: u64,
}

impl From<&Config> for Policy {
    fn from(c: &Config) -> Self {
        Self {
            max_failures: c.login_max_failures,
            max_failures_global: c.login_max_failures_global,
            window_ms: u64::try_from(c.login_window.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// One counter record: failures since the window started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    start_ms: u64,
    count: u32,
}

impl Counter {
    fn decode(record: Option<&[u8]>) -> Result<Self, StorageError> {
        record.map_or(Ok(Self::default()), |bytes| {
            serde_json::from_slice(bytes)
                .map_err(|e| StorageError(format!("login throttle record unreadable: {e}")))
        })
    }

    fn encode(self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self).unwrap_or_default())
    }

    fn end_ms(self, window_ms: u64) -> u64 {
        self.start_ms.saturating_add(window_ms)
    }

    /// The counter as it stands at `now`: a window that has ended counts nothing.
    fn at(self, now_ms: u64, window_ms: u64) -> Self {
        if now_ms >= self.end_ms(window_ms) {
            Self::default()
        } else {
            self
        }
    }

    /// When the counter stops refusing, if it refuses at `now` with a limit of `max`.
    fn locked_until(self, now_ms: u64, window_ms: u64, max: u32) -> Option<u64> {
        let c = self.at(now_ms, window_ms);
        (c.count >= max).then(|| c.end_ms(window_ms))
    }

    /// One more failure; the first one of a window starts it.
    fn plus_one(self, now_ms: u64, window_ms: u64) -> Self {
        match self.at(now_ms, window_ms) {
            c if c.count == 0 => Self {
                start_ms: now_ms,
                count: 1,
            },
            c => Self {
                count: c.count.saturating_add(1),
                ..c
            },
        }
    }
}

/// Whether a password check may run.
#[derive(Debug)]
#[must_use]
pub(crate) enum Admission {
    /// It may; the attempt counts as a failure until [`LoginThrottle::succeeded`].
    Admitted(Attempt),
    /// Refused without checking: the client's or everyone's limit is reached.
    Locked {
        /// Seconds until the lockout ends (at least 1).
        retry_after_secs: u32,
    },
}

/// An admitted attempt, counted as a failure.
#[derive(Debug)]
pub(crate) struct Attempt {
    key: String,
    /// The global window it was counted in.
    global_start_ms: u64,
}

/// The throttle over a strongly consistent store.
pub(crate) struct LoginThrottle<'a> {
    store: &'a dyn Storage,
    policy: Policy,
}

impl<'a> LoginThrottle<'a> {
    /// A throttle keeping its counters in `store`.
    pub(crate) fn new(store: &'a dyn Storage, policy: Policy) -> Self {
        Self { store, policy }
    }

    /// Admits one password check from the client whose address counts under `bucket`, and
    /// counts it, or refuses it while the client's or everyone's limit is reached.
    ///
    /// # Errors
    /// Storage failures, and a counter so contended that it could not be written.
    pub(crate) async fn admit(&self, bucket: &str, now_ms: u64) -> Result<Admission, StorageError> {
        let p = self.policy;
        let keys = [format!("{CLIENT_PREFIX}{bucket}"), GLOBAL_KEY.to_owned()];
        let mut records = self.store.get_many(&keys).await?.into_iter();
        let (mine, all) = (records.next().flatten(), records.next().flatten());
        // Refused on what was read: a locked-out client costs no write.
        let until = Counter::decode(mine.as_deref())?
            .locked_until(now_ms, p.window_ms, p.max_failures)
            .max(Counter::decode(all.as_deref())?.locked_until(
                now_ms,
                p.window_ms,
                p.max_failures_global,
            ));
        if let Some(until) = until {
            return Ok(locked(until, now_ms));
        }
        if let Err(until) = self.bump(&keys[0], mine, p.max_failures, now_ms).await? {
            return Ok(locked(until, now_ms));
        }
        // A race lost here leaves the client's count one high: only ever in the safe direction.
        match self
            .bump(GLOBAL_KEY, all, p.max_failures_global, now_ms)
            .await?
        {
            Err(until) => Ok(locked(until, now_ms)),
            Ok(global) => Ok(Admission::Admitted(Attempt {
                key: keys[0].clone(),
                global_start_ms: global.start_ms,
            })),
        }
    }

    /// The attempt's password was right: its client's failures are forgiven, and the global
    /// counter gets the attempt back (when it is still in the same window).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn succeeded(
        &self,
        attempt: Attempt,
        now_ms: u64,
    ) -> Result<(), StorageError> {
        self.store.delete(&attempt.key).await?;
        let window_ms = self.policy.window_ms;
        let mut current = self.store.get(GLOBAL_KEY).await?;
        for _ in 0..MAX_CONFLICTS {
            let c = Counter::decode(current.as_deref())?.at(now_ms, window_ms);
            if c.count == 0 || c.start_ms != attempt.global_start_ms {
                return Ok(());
            }
            let next = Counter {
                count: c.count - 1,
                ..c
            };
            if self.write(GLOBAL_KEY, next, now_ms, current).await? {
                return Ok(());
            }
            current = self.store.get(GLOBAL_KEY).await?;
        }
        // Only a courtesy: under contention the count stays one high.
        Ok(())
    }

    /// Adds a failure to the counter under `key` (last read as `current`) unless it is at
    /// `max`: `Ok(Err(until))` then.
    async fn bump(
        &self,
        key: &str,
        mut current: Option<Bytes>,
        max: u32,
        now_ms: u64,
    ) -> Result<Result<Counter, u64>, StorageError> {
        let window_ms = self.policy.window_ms;
        for _ in 0..MAX_CONFLICTS {
            let c = Counter::decode(current.as_deref())?;
            if let Some(until) = c.locked_until(now_ms, window_ms, max) {
                return Ok(Err(until));
            }
            let next = c.plus_one(now_ms, window_ms);
            if self.write(key, next, now_ms, current).await? {
                return Ok(Ok(next));
            }
            current = self.store.get(key).await?;
        }
        Err(StorageError(
            "login throttle: too many concurrent attempts".into(),
        ))
    }

    /// Writes `next` where `current` was read, expiring with its window; false when the record
    /// changed meanwhile.
    async fn write(
        &self,
        key: &str,
        next: Counter,
        now_ms: u64,
        current: Option<Bytes>,
    ) -> Result<bool, StorageError> {
        let ttl = Duration::from_millis(next.end_ms(self.policy.window_ms).saturating_sub(now_ms));
        if self.store.capabilities().conditional_writes {
            let expect = current.map_or(Expect::Absent, Expect::Value);
            self.store
                .put_if(key, next.encode(), Some(ttl), expect)
                .await
        } else {
            // A store without conditional writes (not what hosts give): counts may be lost in
            // races, the limit still holds against one client at a time.
            self.store.put(key, next.encode(), Some(ttl)).await?;
            Ok(true)
        }
    }
}

fn locked(until_ms: u64, now_ms: u64) -> Admission {
    let secs = until_ms.saturating_sub(now_ms).div_ceil(1000).max(1);
    Admission::Locked {
        retry_after_secs: u32::try_from(secs).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use futures::executor::block_on;

    use super::*;
    use crate::memory::MemoryStorage;
    use crate::seams::{boxed, BoxFuture, Capabilities, Clock, ListPage};

    /// Time that moves only when told.
    #[derive(Default)]
    struct Manual(AtomicU64);

    impl Manual {
        fn advance(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for Manual {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            boxed(async {})
        }
    }

    const POLICY: Policy = Policy {
        max_failures: 5,
        max_failures_global: 12,
        window_ms: 300_000,
    };

    struct Fixture {
        clock: Arc<Manual>,
        store: MemoryStorage,
    }

    impl Fixture {
        fn new() -> Self {
            let clock = Arc::new(Manual(AtomicU64::new(1_000_000)));
            let store = MemoryStorage::new(clock.clone());
            Self { clock, store }
        }

        fn admit(&self, bucket: &str) -> Admission {
            let t = LoginThrottle::new(&self.store, POLICY);
            block_on(t.admit(bucket, self.clock.now_ms())).unwrap()
        }

        fn succeed(&self, attempt: Attempt) {
            let t = LoginThrottle::new(&self.store, POLICY);
            block_on(t.succeeded(attempt, self.clock.now_ms())).unwrap();
        }

        fn count(&self, key: &str) -> u32 {
            let record = block_on(self.store.get(key)).unwrap();
            Counter::decode(record.as_deref()).unwrap().count
        }
    }

    fn admitted(a: Admission) -> Attempt {
        match a {
            Admission::Admitted(attempt) => attempt,
            Admission::Locked { retry_after_secs } => {
                panic!("locked for {retry_after_secs} s")
            }
        }
    }

    fn retry_after(a: Admission) -> u32 {
        match a {
            Admission::Locked { retry_after_secs } => retry_after_secs,
            Admission::Admitted(_) => panic!("admitted"),
        }
    }

    #[test]
    fn five_failures_lock_until_the_window_ends() {
        let f = Fixture::new();
        for _ in 0..5 {
            admitted(f.admit("198.51.100.7"));
            f.clock.advance(1_000);
        }
        // The window started at the first failure, 5 s ago.
        assert_eq!(retry_after(f.admit("198.51.100.7")), 295);
        f.clock.advance(100_000);
        assert_eq!(retry_after(f.admit("198.51.100.7")), 195);
        f.clock.advance(194_500);
        assert_eq!(retry_after(f.admit("198.51.100.7")), 1);
        // Refused attempts were not counted, and another address is not affected.
        assert_eq!(f.count("login-throttle:client:198.51.100.7"), 5);
        admitted(f.admit("203.0.113.1"));
        // The window is over: the address may try again, in a new window.
        f.clock.advance(500);
        admitted(f.admit("198.51.100.7"));
        assert_eq!(f.count("login-throttle:client:198.51.100.7"), 1);
    }

    #[test]
    fn the_global_ceiling_locks_every_address() {
        let f = Fixture::new();
        // Twelve addresses, one failure each: none reaches its own limit.
        for i in 0..12 {
            admitted(f.admit(&format!("10.0.0.{i}")));
        }
        assert_eq!(f.count(GLOBAL_KEY), 12);
        f.clock.advance(60_000);
        assert_eq!(retry_after(f.admit("10.0.0.200")), 240);
        assert_eq!(retry_after(f.admit("10.0.0.1")), 240);
        f.clock.advance(240_000);
        admitted(f.admit("10.0.0.200"));
    }

    #[test]
    fn a_right_password_forgives_its_address_and_gives_the_global_count_back() {
        let f = Fixture::new();
        for _ in 0..4 {
            admitted(f.admit("198.51.100.7"));
        }
        let right = admitted(f.admit("198.51.100.7"));
        f.succeed(right);
        assert_eq!(f.count("login-throttle:client:198.51.100.7"), 0);
        assert_eq!(f.count(GLOBAL_KEY), 4);
        // Five more failures before the next lockout.
        for _ in 0..5 {
            admitted(f.admit("198.51.100.7"));
        }
        assert!(matches!(f.admit("198.51.100.7"), Admission::Locked { .. }));
    }

    #[test]
    fn a_right_password_does_not_open_a_lock() {
        let f = Fixture::new();
        for _ in 0..5 {
            admitted(f.admit("unknown"));
        }
        // Nothing was admitted, so nothing can succeed: the lock is checked first.
        assert_eq!(retry_after(f.admit("unknown")), 300);
    }

    /// A store on which another writer adds a failure under each of the keys in `races` just
    /// before the first conditional write to it, as a second isolate would.
    struct Racing {
        inner: MemoryStorage,
        clock: Arc<Manual>,
        races: std::sync::Mutex<Vec<&'static str>>,
    }

    impl Storage for Racing {
        fn capabilities(&self) -> Capabilities {
            Capabilities::strong()
        }
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
            self.inner.get(key)
        }
        fn put<'a>(
            &'a self,
            key: &'a str,
            value: Bytes,
            ttl: Option<Duration>,
        ) -> BoxFuture<'a, Result<(), StorageError>> {
            self.inner.put(key, value, ttl)
        }
        fn put_if<'a>(
            &'a self,
            key: &'a str,
            value: Bytes,
            ttl: Option<Duration>,
            expect: Expect,
        ) -> BoxFuture<'a, Result<bool, StorageError>> {
            boxed(async move {
                let race = {
                    let mut races = self.races.lock().unwrap();
                    let at = races.iter().position(|k| *k == key);
                    at.map(|i| races.remove(i)).is_some()
                };
                if race {
                    let theirs = Counter::decode(self.inner.get(key).await?.as_deref())?
                        .plus_one(self.clock.now_ms(), POLICY.window_ms);
                    self.inner.put(key, theirs.encode(), ttl).await?;
                }
                self.inner.put_if(key, value, ttl, expect).await
            })
        }
        fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
            self.inner.delete(key)
        }
        fn list<'a>(
            &'a self,
            prefix: &'a str,
            limit: usize,
            cursor: Option<&'a str>,
        ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
            self.inner.list(prefix, limit, cursor)
        }
    }

    #[test]
    fn a_lost_race_is_retried_and_no_failure_is_lost() {
        let clock = Arc::new(Manual(AtomicU64::new(1_000_000)));
        let store = Racing {
            inner: MemoryStorage::new(clock.clone()),
            clock: clock.clone(),
            races: std::sync::Mutex::new(vec!["login-throttle:client:198.51.100.7", GLOBAL_KEY]),
        };
        let t = LoginThrottle::new(&store, POLICY);
        admitted(block_on(t.admit("198.51.100.7", clock.now_ms())).unwrap());
        let count = |key: &str| {
            let r = block_on(store.inner.get(key)).unwrap();
            Counter::decode(r.as_deref()).unwrap().count
        };
        // The other writer's failure and ours, on both counters.
        assert_eq!(count("login-throttle:client:198.51.100.7"), 2);
        assert_eq!(count(GLOBAL_KEY), 2);
    }

    #[test]
    fn records_expire_with_their_window() {
        let f = Fixture::new();
        admitted(f.admit("198.51.100.7"));
        f.clock.advance(300_000);
        assert_eq!(
            block_on(f.store.get("login-throttle:client:198.51.100.7")).unwrap(),
            None
        );
    }
}
