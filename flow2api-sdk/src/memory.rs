//! In-memory reference implementations of the seams, and a [`MediaStore`] over any
//! [`Storage`]. Natively these back the server; in tests they back everything.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::pool::state::{AccountCommand, AccountReply, AccountState};
use crate::seams::{
    boxed, BoxFuture, Bytes, Clock, Coordinator, Media, MediaStore, Storage, StorageError,
};
use crate::util;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take every later request down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`Storage`] in a `BTreeMap`, with TTLs measured by a [`Clock`].
pub struct MemoryStorage {
    clock: Arc<dyn Clock>,
    map: Mutex<BTreeMap<String, (Bytes, Option<u64>)>>,
    last_sweep_ms: std::sync::atomic::AtomicU64,
}

/// How often `put` drops expired entries, so that expiring records (media, sessions) do not
/// pile up in memory.
const SWEEP_EVERY_MS: u64 = 60_000;

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage").finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// An empty store.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            last_sweep_ms: clock.now_ms().into(),
            clock,
            map: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Storage for MemoryStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        let now = self.clock.now_ms();
        let v = lock(&self.map)
            .get(key)
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(v, _)| v.clone());
        boxed(async move { Ok(v) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        let now = self.clock.now_ms();
        let exp = ttl.map(|t| now + t.as_millis() as u64);
        let mut map = lock(&self.map);
        map.insert(key.to_owned(), (value, exp));
        let last = self
            .last_sweep_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) >= SWEEP_EVERY_MS {
            self.last_sweep_ms
                .store(now, std::sync::atomic::Ordering::Relaxed);
            map.retain(|_, (_, e)| e.is_none_or(|e| e > now));
        }
        boxed(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        lock(&self.map).remove(key);
        boxed(async { Ok(()) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        let now = self.clock.now_ms();
        let keys = lock(&self.map)
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, (_, exp))| exp.is_none_or(|e| e > now))
            .map(|(k, _)| k.clone())
            .collect();
        boxed(async move { Ok(keys) })
    }
}

/// A [`Coordinator`] for one process: an [`AccountState`] per account behind a mutex.
pub struct MemoryCoordinator {
    clock: Arc<dyn Clock>,
    states: Mutex<HashMap<String, AccountState>>,
}

impl std::fmt::Debug for MemoryCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCoordinator").finish_non_exhaustive()
    }
}

impl MemoryCoordinator {
    /// An empty coordinator.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl Coordinator for MemoryCoordinator {
    fn apply<'a>(
        &'a self,
        account_id: &'a str,
        command: AccountCommand,
    ) -> BoxFuture<'a, Result<AccountReply, StorageError>> {
        let now = self.clock.now_ms();
        let (reply, _) = lock(&self.states)
            .entry(account_id.to_owned())
            .or_default()
            .apply(command, now);
        boxed(async move { Ok(reply) })
    }
}

/// A [`MediaStore`] over any [`Storage`]: the bytes under `media:{id}`, the content type under
/// `media-type:{id}`, both with a TTL.
pub struct StorageMediaStore {
    storage: Arc<dyn Storage>,
    ttl: Option<Duration>,
}

impl std::fmt::Debug for StorageMediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageMediaStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl StorageMediaStore {
    /// Stores media in `storage`, each item kept for `ttl` (`None` = forever).
    pub fn new(storage: Arc<dyn Storage>, ttl: Option<Duration>) -> Self {
        Self { storage, ttl }
    }
}

/// Media ids are 32 hex characters: unguessable, and safe to use as keys and in paths.
pub fn is_media_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl MediaStore for StorageMediaStore {
    fn put(&self, media: Media) -> BoxFuture<'_, Result<String, StorageError>> {
        boxed(async move {
            let id = util::random_hex(16);
            self.storage
                .put(
                    &format!("media-type:{id}"),
                    Bytes::from(media.content_type),
                    self.ttl,
                )
                .await?;
            self.storage
                .put(&format!("media:{id}"), media.bytes, self.ttl)
                .await?;
            Ok(id)
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Media>, StorageError>> {
        boxed(async move {
            if !is_media_id(id) {
                return Ok(None);
            }
            let Some(bytes) = self.storage.get(&format!("media:{id}")).await? else {
                return Ok(None);
            };
            let content_type = self
                .storage
                .get(&format!("media-type:{id}"))
                .await?
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            Ok(Some(Media {
                content_type,
                bytes,
            }))
        })
    }
}

/// A [`Clock`] whose time only moves when told to, and whose sleeps return at once after
/// advancing it. For deterministic tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A clock at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self { now: now_ms.into() }
    }

    /// Moves time forward.
    pub fn advance(&self, d: Duration) {
        self.now
            .fetch_add(d.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.advance(duration);
        boxed(futures::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_entries_are_hidden_then_swept() {
        let clock = Arc::new(ManualClock::new(0));
        let store = MemoryStorage::new(clock.clone());
        let run =
            |f: BoxFuture<'_, Result<(), StorageError>>| futures::executor::block_on(f).unwrap();
        run(store.put("a", Bytes::from_static(b"1"), Some(Duration::from_secs(1))));
        run(store.put("b", Bytes::from_static(b"2"), None));
        clock.advance(Duration::from_secs(2));
        assert!(futures::executor::block_on(store.get("a"))
            .unwrap()
            .is_none());
        assert_eq!(
            futures::executor::block_on(store.list("")).unwrap(),
            vec!["b".to_owned()]
        );
        clock.advance(Duration::from_millis(SWEEP_EVERY_MS));
        run(store.put("c", Bytes::from_static(b"3"), None));
        assert_eq!(
            lock(&store.map).len(),
            2,
            "the expired entry is gone from memory"
        );
    }
}
