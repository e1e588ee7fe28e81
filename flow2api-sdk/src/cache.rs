//! [`CachingStorage`]: a read-through cache in front of any [`Storage`], for read-mostly
//! records (accounts) on hosts where every read costs (KV at the edge).
//!
//! The cached values live in a [`StorageCache`] that the host may keep longer than one
//! [`CachingStorage`] (per Worker isolate at the edge), so that a request made within the TTL
//! of an earlier one reads nothing from the backend. `get` results (absent keys included) and
//! `list` pages are kept for the TTL; `put` and `delete` go through to the backend and then
//! drop the key and every cached list whose prefix the key starts with, so a writer reads its
//! own writes at once. Other instances see a write after at most the TTL (on top of whatever
//! delay the backend has of its own).
//!
//! Not for records that are written once and read once (media), nor for entries whose own
//! TTL is shorter than the cache's: a cached value may outlive the backend's expiry by up to
//! the cache TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::seams::{
    boxed, BoxFuture, Bytes, Capabilities, Clock, Consistency, Expect, ListPage, Storage,
    StorageError,
};

/// Above this many entries, an insert first drops the expired ones, and clears the map if
/// that is not enough: the cache stays bounded whatever keys are read.
const MAX_ENTRIES: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take every later request down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The arguments of one `list` call: prefix, limit, cursor.
type ListArgs = (String, usize, Option<String>);

#[derive(Default)]
struct Tables {
    /// `get` results with their expiry (Unix ms); `None` = the key was absent.
    values: HashMap<String, (Option<Bytes>, u64)>,
    /// `list` pages by their arguments, with their expiry.
    lists: HashMap<ListArgs, (ListPage, u64)>,
    /// Bumped by every write or delete. A read that started under an older generation does not
    /// store its result, which may predate the write.
    generation: u64,
}

impl Tables {
    fn invalidate(&mut self, key: &str) {
        self.generation = self.generation.wrapping_add(1);
        self.values.remove(key);
        self.lists
            .retain(|(prefix, _, _), _| !key.starts_with(prefix.as_str()));
    }
}

fn bound<K, V>(map: &mut HashMap<K, (V, u64)>, now_ms: u64) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, (_, exp)| *exp > now_ms);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
}

/// The cached reads shared by the [`CachingStorage`]s built over it: `get` values and
/// `list` results, each kept for `ttl` by `clock`.
pub struct StorageCache {
    clock: Arc<dyn Clock>,
    ttl_ms: u64,
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for StorageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = lock(&self.tables);
        f.debug_struct("StorageCache")
            .field("ttl_ms", &self.ttl_ms)
            .field("values", &t.values.len())
            .field("lists", &t.lists.len())
            .finish()
    }
}

impl StorageCache {
    /// An empty cache keeping entries for `ttl` (the `ACCOUNT_CACHE_TTL` setting,
    /// [`crate::Config::account_cache_ttl`]). A zero `ttl` caches nothing.
    pub fn new(clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            clock,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Drops every cached entry.
    pub fn clear(&self) {
        let mut t = lock(&self.tables);
        t.generation = t.generation.wrapping_add(1);
        t.values.clear();
        t.lists.clear();
    }

    fn enabled(&self) -> bool {
        self.ttl_ms > 0
    }

    fn cached_value(&self, key: &str) -> Option<Option<Bytes>> {
        let now = self.clock.now_ms();
        let t = lock(&self.tables);
        t.values
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }

    fn cached_list(&self, args: &ListArgs) -> Option<ListPage> {
        let now = self.clock.now_ms();
        let t = lock(&self.tables);
        t.lists
            .get(args)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }

    fn generation(&self) -> u64 {
        lock(&self.tables).generation
    }

    fn store_value(&self, key: &str, value: Option<Bytes>, generation: u64) {
        let now = self.clock.now_ms();
        let mut t = lock(&self.tables);
        if t.generation == generation {
            bound(&mut t.values, now);
            let exp = now.saturating_add(self.ttl_ms);
            t.values.insert(key.to_owned(), (value, exp));
        }
    }

    fn store_list(&self, args: ListArgs, page: ListPage, generation: u64) {
        let now = self.clock.now_ms();
        let mut t = lock(&self.tables);
        if t.generation == generation {
            bound(&mut t.lists, now);
            let exp = now.saturating_add(self.ttl_ms);
            t.lists.insert(args, (page, exp));
        }
    }

    fn invalidate(&self, key: &str) {
        lock(&self.tables).invalidate(key);
    }
}

/// A [`Storage`] that answers reads from a [`StorageCache`] within its TTL and passes
/// everything else to `inner` (see the [module docs](self)).
pub struct CachingStorage {
    inner: Arc<dyn Storage>,
    cache: Arc<StorageCache>,
}

impl std::fmt::Debug for CachingStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingStorage")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl CachingStorage {
    /// `inner` behind `cache`.
    pub fn new(inner: Arc<dyn Storage>, cache: Arc<StorageCache>) -> Self {
        Self { inner, cache }
    }
}

impl Storage for CachingStorage {
    /// The backend's, except that with the cache on other instances see a write only after
    /// the cache TTL, and an entry may be read up to that long after it expired: eventual.
    fn capabilities(&self) -> Capabilities {
        let inner = self.inner.capabilities();
        if self.cache.enabled() {
            inner.with_consistency(Consistency::Eventual)
        } else {
            inner
        }
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        if !self.cache.enabled() {
            return self.inner.get(key);
        }
        if let Some(hit) = self.cache.cached_value(key) {
            return boxed(async move { Ok(hit) });
        }
        boxed(async move {
            let generation = self.cache.generation();
            let value = self.inner.get(key).await?;
            self.cache.store_value(key, value.clone(), generation);
            Ok(value)
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let result = self.inner.put(key, value, ttl).await;
            // Even a failed write may have landed.
            self.cache.invalidate(key);
            result
        })
    }

    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        // The backend decides atomically; the cache only forgets what it held.
        boxed(async move {
            let result = self.inner.put_if(key, value, ttl, expect).await;
            self.cache.invalidate(key);
            result
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let result = self.inner.delete(key).await;
            self.cache.invalidate(key);
            result
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        if !self.cache.enabled() {
            return self.inner.list(prefix, limit, cursor);
        }
        let args: ListArgs = (prefix.to_owned(), limit, cursor.map(str::to_owned));
        if let Some(hit) = self.cache.cached_list(&args) {
            return boxed(async move { Ok(hit) });
        }
        boxed(async move {
            let generation = self.cache.generation();
            let page = self.inner.list(prefix, limit, cursor).await?;
            self.cache.store_list(args, page.clone(), generation);
            Ok(page)
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::memory::{ManualClock, MemoryStorage};
    use crate::probe::ProbeStorage;

    struct Setup {
        clock: Arc<ManualClock>,
        backend: Arc<ProbeStorage>,
        cache: Arc<StorageCache>,
    }

    impl Setup {
        fn new(ttl: Duration) -> Self {
            let clock = Arc::new(ManualClock::new(1_000));
            let backend = Arc::new(ProbeStorage::new(Arc::new(MemoryStorage::new(
                clock.clone(),
            ))));
            let cache = Arc::new(StorageCache::new(clock.clone(), ttl));
            Self {
                clock,
                backend,
                cache,
            }
        }

        /// A fresh decorator over the shared cache, as a host builds one per request.
        fn storage(&self) -> CachingStorage {
            CachingStorage::new(self.backend.clone(), self.cache.clone())
        }

        fn gets(&self) -> usize {
            self.backend.gets()
        }

        fn lists(&self) -> usize {
            self.backend.lists()
        }
    }

    fn put(s: &dyn Storage, key: &str, value: &'static str) {
        block_on(s.put(key, Bytes::from_static(value.as_bytes()), None)).unwrap();
    }

    fn get(s: &dyn Storage, key: &str) -> Option<String> {
        block_on(s.get(key))
            .unwrap()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    fn list(s: &dyn Storage, prefix: &str) -> Vec<String> {
        block_on(crate::seams::list_all(s, prefix)).unwrap()
    }

    #[test]
    fn reads_within_the_ttl_are_served_from_the_cache() {
        let t = Setup::new(Duration::from_secs(2));
        put(t.backend.inner(), "account:a", "1");
        put(t.backend.inner(), "account:b", "2");

        let s = t.storage();
        assert_eq!(list(&s, "account:"), ["account:a", "account:b"]);
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        assert_eq!(get(&s, "account:zz"), None);
        assert_eq!((t.gets(), t.lists()), (2, 1));

        // Another decorator over the same cache (the next request) reads nothing.
        t.clock.advance(Duration::from_millis(1_999));
        let s = t.storage();
        assert_eq!(list(&s, "account:"), ["account:a", "account:b"]);
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        assert_eq!(get(&s, "account:zz"), None, "absent keys are cached too");
        assert_eq!((t.gets(), t.lists()), (2, 1));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let t = Setup::new(Duration::from_secs(2));
        put(t.backend.inner(), "account:a", "1");
        let s = t.storage();
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        assert_eq!(list(&s, "account:"), ["account:a"]);

        // Written behind the cache's back (another instance): seen once the TTL is over.
        put(t.backend.inner(), "account:a", "2");
        put(t.backend.inner(), "account:b", "3");
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        assert_eq!(list(&s, "account:"), ["account:a"]);
        t.clock.advance(Duration::from_secs(2));
        assert_eq!(get(&s, "account:a").as_deref(), Some("2"));
        assert_eq!(list(&s, "account:"), ["account:a", "account:b"]);
        assert_eq!((t.gets(), t.lists()), (2, 2));
    }

    #[test]
    fn writes_and_deletes_go_through_and_invalidate() {
        let t = Setup::new(Duration::from_secs(60));
        let s = t.storage();
        put(&s, "account:a", "1");
        put(&s, "media:x", "m");
        assert_eq!(get(t.backend.inner(), "account:a").as_deref(), Some("1"));
        assert_eq!(list(&s, "account:"), ["account:a"]);
        assert_eq!(list(&s, "acc"), ["account:a"]);
        assert_eq!(list(&s, "media:"), ["media:x"]);
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        assert_eq!(get(&s, "account:b"), None);
        assert_eq!((t.gets(), t.lists()), (2, 3));

        // A put drops the key and every list whose prefix it matches, and nothing else.
        put(&s, "account:b", "2");
        assert_eq!(get(&s, "account:b").as_deref(), Some("2"));
        assert_eq!(list(&s, "account:"), ["account:a", "account:b"]);
        assert_eq!(list(&s, "acc"), ["account:a", "account:b"]);
        assert_eq!(list(&s, "media:"), ["media:x"]);
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        assert_eq!((t.gets(), t.lists()), (3, 5));

        put(&s, "account:a", "3");
        assert_eq!(get(&s, "account:a").as_deref(), Some("3"));

        // The same for a delete, seen by the next request over the same cache.
        block_on(s.delete("account:a")).unwrap();
        assert_eq!(get(t.backend.inner(), "account:a"), None);
        let s = t.storage();
        assert_eq!(get(&s, "account:a"), None);
        assert_eq!(list(&s, "account:"), ["account:b"]);
    }

    #[test]
    fn a_read_that_overlaps_a_write_is_not_cached() {
        let t = Setup::new(Duration::from_secs(60));
        put(t.backend.inner(), "account:a", "old");
        let s = t.storage();
        // The read starts (its generation is taken) before the write ends.
        let generation = t.cache.generation();
        let stale = get(t.backend.inner(), "account:a");
        put(&s, "account:a", "new");
        t.cache.store_value(
            "account:a",
            stale.map(|v| Bytes::from(v.into_bytes())),
            generation,
        );
        assert_eq!(get(&s, "account:a").as_deref(), Some("new"));
    }

    /// Pinned, not wished away: a cached value may outlive its entry's own expiry by up to
    /// the cache TTL, which is why the decorator reports itself eventually consistent.
    #[test]
    fn a_cached_value_may_outlive_its_entry_by_the_cache_ttl() {
        let t = Setup::new(Duration::from_secs(5));
        block_on(t.backend.inner().put(
            "account:a",
            Bytes::from_static(b"1"),
            Some(Duration::from_secs(1)),
        ))
        .unwrap();
        let s = t.storage();
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
        t.clock.advance(Duration::from_secs(2));
        assert_eq!(
            get(t.backend.inner(), "account:a"),
            None,
            "expired in the backend"
        );
        assert_eq!(get(&s, "account:a").as_deref(), Some("1"), "still cached");
        t.clock.advance(Duration::from_secs(3));
        assert_eq!(
            get(&s, "account:a"),
            None,
            "gone once the cache TTL is over"
        );
        assert_eq!(
            s.capabilities().consistency,
            crate::seams::Consistency::Eventual
        );
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let t = Setup::new(Duration::ZERO);
        put(t.backend.inner(), "account:a", "1");
        let s = t.storage();
        for _ in 0..3 {
            assert_eq!(get(&s, "account:a").as_deref(), Some("1"));
            assert_eq!(list(&s, "account:"), ["account:a"]);
        }
        assert_eq!((t.gets(), t.lists()), (3, 3));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let t = Setup::new(Duration::from_secs(60));
        let s = t.storage();
        for i in 0..(MAX_ENTRIES + 10) {
            let _ = get(&s, &format!("k{i}"));
        }
        assert!(lock(&t.cache.tables).values.len() <= MAX_ENTRIES);
    }
}
