//! [`DirMediaStore`]: generated media as files, so that images do not live in memory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::memory::is_media_id;
use crate::seams::{boxed, BoxFuture, Media, StorageError};
use crate::{util, MediaStore};
use bytes::Bytes;

/// At most one sweep of expired files per this long, started by a `put`.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
const TYPE_SUFFIX: &str = ".type";

/// A [`MediaStore`] in a directory: `<dir>/<id>` holds the bytes and `<dir>/<id>.type` the
/// content type, each written to a temporary name and renamed. An item older than `ttl` (by
/// its modification time) is not served, and is deleted by a sweep that a `put` starts at most
/// every ten minutes, so the directory does not grow without bound and no timer runs when idle.
#[derive(Debug, Clone)]
pub struct DirMediaStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    ttl: Duration,
    /// Unix seconds of the last sweep.
    last_sweep: AtomicU64,
}

fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("media directory: {e}"))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl DirMediaStore {
    /// Uses `dir` (created if needed); items are kept for `ttl`.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created.
    pub fn open(dir: impl AsRef<Path>, ttl: Duration) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                ttl,
                last_sweep: AtomicU64::new(0),
            }),
        })
    }

    /// Deletes every expired item now. Blocking.
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    pub fn sweep(&self) -> io::Result<usize> {
        self.inner.sweep()
    }
}

impl Inner {
    fn expired(&self, modified: SystemTime) -> bool {
        SystemTime::now()
            .duration_since(modified)
            .is_ok_and(|age| age > self.ttl)
    }

    fn sweep(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let id = name.strip_suffix(TYPE_SUFFIX).unwrap_or(name);
            let stale_tmp = name.ends_with(".tmp");
            if !(is_media_id(id) || stale_tmp) {
                continue;
            }
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            if self.expired(modified) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts a sweep in the background when the last one is old enough.
    fn maybe_sweep(self: &Arc<Self>) {
        let now = unix_secs(SystemTime::now());
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY.as_secs()
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = this.sweep() {
                eprintln!("media: sweep of {} failed: {e}", this.dir.display());
            }
        });
    }
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", util::random_hex(4)));
    tokio::fs::write(&tmp, bytes).await?;
    if let Err(e) = tokio::fs::rename(&tmp, path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    Ok(())
}

impl MediaStore for DirMediaStore {
    fn put(&self, media: Media) -> BoxFuture<'_, Result<String, StorageError>> {
        boxed(async move {
            let inner = &self.inner;
            inner.maybe_sweep();
            let id = util::random_hex(16);
            let data = inner.dir.join(&id);
            // The type first: an item is visible once its bytes are.
            write_atomically(
                &inner.dir.join(format!("{id}{TYPE_SUFFIX}")),
                media.content_type.as_bytes(),
            )
            .await
            .map_err(backend)?;
            write_atomically(&data, &media.bytes)
                .await
                .map_err(backend)?;
            Ok(id)
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Media>, StorageError>> {
        boxed(async move {
            if !is_media_id(id) {
                return Ok(None);
            }
            let inner = &self.inner;
            let path = inner.dir.join(id);
            let modified = match tokio::fs::metadata(&path).await {
                Ok(m) => m.modified().map_err(backend)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(backend(e)),
            };
            if inner.expired(modified) {
                return Ok(None);
            }
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => Bytes::from(b),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(backend(e)),
            };
            let content_type =
                tokio::fs::read_to_string(inner.dir.join(format!("{id}{TYPE_SUFFIX}")))
                    .await
                    .ok()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
            Ok(Some(Media {
                content_type,
                bytes,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_reads_and_expires() {
        let dir = std::env::temp_dir().join(format!("flow2api-media-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = DirMediaStore::open(&dir, Duration::from_secs(3600)).unwrap();
        let id = store
            .put(Media {
                content_type: "image/png".into(),
                bytes: Bytes::from_static(b"\x89PNG...."),
            })
            .await
            .unwrap();
        assert!(is_media_id(&id));
        let m = store.get(&id).await.unwrap().unwrap();
        assert_eq!(m.content_type, "image/png");
        assert_eq!(m.bytes, &b"\x89PNG...."[..]);
        assert!(store.get("../../etc/passwd").await.unwrap().is_none());
        assert!(store.get(&"0".repeat(32)).await.unwrap().is_none());
        assert_eq!(store.sweep().unwrap(), 0);

        let short = DirMediaStore::open(&dir, Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(short.get(&id).await.unwrap().is_none(), "past its TTL");
        assert_eq!(short.sweep().unwrap(), 2, "bytes and type removed");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
