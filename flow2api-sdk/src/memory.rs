//! In-memory reference implementations of the seams, and a [`MediaStore`] over any
//! [`Storage`]. Natively these back the server; in tests they back everything.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::coordination::{AccountCommand, AccountReply, AccountState};
use crate::seams::media::slice_chunk;
use crate::seams::{
    boxed, boxed_stream, clamp_list_limit, BoxFuture, ByteRange, Bytes, Capabilities, Clock,
    Coordinator, Expect, ListPage, MediaObject, MediaRead, MediaStore, MediaUpload, Storage,
    StorageError,
};
use crate::util;
use futures::StreamExt;

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

    fn insert(
        &self,
        map: &mut BTreeMap<String, (Bytes, Option<u64>)>,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        now: u64,
    ) {
        let exp = ttl.map(|t| now.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        map.insert(key.to_owned(), (value, exp));
        let last = self
            .last_sweep_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) >= SWEEP_EVERY_MS {
            self.last_sweep_ms
                .store(now, std::sync::atomic::Ordering::Relaxed);
            map.retain(|_, (_, e)| e.is_none_or(|e| e > now));
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
        let mut map = lock(&self.map);
        self.insert(&mut map, key, value, ttl, now);
        boxed(async { Ok(()) })
    }

    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        let now = self.clock.now_ms();
        // Checked and written under one lock: atomic.
        let mut map = lock(&self.map);
        let current = map
            .get(key)
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(v, _)| v);
        let matches = expect.matches(current.map(|v| &v[..]));
        if matches {
            self.insert(&mut map, key, value, ttl, now);
        }
        boxed(async move { Ok(matches) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        lock(&self.map).remove(key);
        boxed(async { Ok(()) })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        use std::ops::Bound;
        let now = self.clock.now_ms();
        let limit = clamp_list_limit(limit);
        // The cursor is the last key of the previous page; the next page starts after it.
        let from = match cursor {
            Some(c) if c >= prefix => Bound::Excluded(c.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let map = lock(&self.map);
        let mut live = map
            .range((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, (_, exp))| exp.is_none_or(|e| e > now))
            .map(|(k, _)| k);
        let keys: Vec<String> = live.by_ref().take(limit).cloned().collect();
        let more = live.next().is_some();
        let cursor = more.then(|| keys.last().cloned()).flatten();
        boxed(async move { Ok(ListPage { keys, cursor }) })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::strong()
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

/// A [`MediaStore`] over any [`Storage`], in pieces so that neither a write nor a range read
/// holds more than one piece in memory: `media/{id}` holds the object's metadata (type, length,
/// expiry) and `media/{id}/{n}` its `n`-th piece of `chunk_size` bytes, all with the object's
/// TTL. The pieces are written first and the metadata last, so an object is visible only whole.
pub struct StorageMediaStore {
    storage: Arc<dyn Storage>,
    ttl: Option<Duration>,
    chunk_size: usize,
}

/// What `media/{id}` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MediaMeta {
    content_type: String,
    len: u64,
    chunk_size: u64,
}

/// The default piece: 4 MiB, so an image is one or two writes (KV values may reach 25 MiB).
pub const DEFAULT_MEDIA_CHUNK: usize = 4 << 20;

impl std::fmt::Debug for StorageMediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageMediaStore")
            .field("ttl", &self.ttl)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

impl StorageMediaStore {
    /// Stores media in `storage`, each item kept for `ttl` (`None` = forever) unless its
    /// upload says otherwise.
    pub fn new(storage: Arc<dyn Storage>, ttl: Option<Duration>) -> Self {
        Self {
            storage,
            ttl,
            chunk_size: DEFAULT_MEDIA_CHUNK,
        }
    }

    /// The same with pieces of `chunk_size` bytes (at least 1).
    #[must_use]
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size.max(1);
        self
    }
}

/// Media ids are 32 hex characters: unguessable, and safe to use as keys and in paths.
pub(crate) fn is_media_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn chunk_key(id: &str, n: u64) -> String {
    format!("media/{id}/{n}")
}

impl MediaStore for StorageMediaStore {
    fn put(&self, upload: MediaUpload) -> BoxFuture<'_, Result<String, StorageError>> {
        boxed(async move {
            // The id is the only key to the media (`/media/{id}` needs none): never a guessable one.
            let id = util::secret_hex(16).map_err(|e| StorageError(e.to_string()))?;
            let ttl = upload.ttl.or(self.ttl);
            let mut body = upload.body;
            let mut buf: Vec<u8> = Vec::new();
            let (mut n, mut len) = (0u64, 0u64);
            loop {
                let next = body.next().await.transpose()?;
                if let Some(bytes) = &next {
                    len += bytes.len() as u64;
                    buf.extend_from_slice(bytes);
                }
                while buf.len() >= self.chunk_size || (next.is_none() && !buf.is_empty()) {
                    let rest = buf.split_off(self.chunk_size.min(buf.len()));
                    let piece = std::mem::replace(&mut buf, rest);
                    self.storage
                        .put(&chunk_key(&id, n), Bytes::from(piece), ttl)
                        .await?;
                    n += 1;
                }
                if next.is_none() {
                    break;
                }
            }
            let meta = MediaMeta {
                content_type: upload.content_type,
                len,
                chunk_size: self.chunk_size as u64,
            };
            let json = serde_json::to_vec(&meta)
                .map_err(|e| StorageError(format!("encoding media metadata: {e}")))?;
            self.storage
                .put(&format!("media/{id}"), Bytes::from(json), ttl)
                .await?;
            Ok(id)
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<MediaRead, StorageError>> {
        boxed(async move {
            if !is_media_id(id) {
                return Ok(MediaRead::Missing);
            }
            let Some(raw) = self.storage.get(&format!("media/{id}")).await? else {
                return Ok(MediaRead::Missing);
            };
            let meta: MediaMeta = serde_json::from_slice(&raw)
                .map_err(|e| StorageError(format!("corrupt media metadata: {e}")))?;
            let span = match range {
                None => 0..meta.len,
                Some(r) => match r.resolve(meta.len) {
                    Some(span) => span,
                    None => {
                        return Ok(MediaRead::Unsatisfiable {
                            total_len: meta.len,
                        })
                    }
                },
            };
            let size = meta.chunk_size.max(1);
            let (first, last) = (span.start / size, span.end.div_ceil(size));
            let storage = self.storage.clone();
            let id = id.to_owned();
            let wanted = span.clone();
            // One piece read per item pulled, so the reader's pace bounds memory.
            let body = futures::stream::iter(first..last).then(move |n| {
                let (storage, id, wanted) = (storage.clone(), id.clone(), wanted.clone());
                async move {
                    match storage.get(&chunk_key(&id, n)).await? {
                        Some(piece) => Ok(slice_chunk(&piece, n * size, &wanted)),
                        None => Err(StorageError(format!("media piece {n} is missing"))),
                    }
                }
            });
            Ok(MediaRead::Found(MediaObject {
                content_type: meta.content_type,
                total_len: meta.len,
                range: span,
                body: boxed_stream(body),
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
            futures::executor::block_on(crate::seams::list_all(&store, "")).unwrap(),
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
