//! [`DirMediaStore`]: generated media as files, so that images do not live in memory.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::memory::is_media_id;
use crate::seams::{
    boxed, boxed_stream, BoxFuture, ByteRange, MediaObject, MediaRead, MediaUpload, StorageError,
};
use crate::{util, MediaStore};
use bytes::Bytes;

/// At most one sweep of expired files per this long, started by a `put`.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
const TYPE_SUFFIX: &str = ".type";
/// The size of the chunks a read streams.
const READ_CHUNK: usize = 64 << 10;

/// A [`MediaStore`] in a directory: `<dir>/<id>` holds the bytes and `<dir>/<id>.type` the
/// content type and, on a second line `expires <unix ms>`, the object's expiry (files written
/// before per-object TTLs have none: they live `ttl` from their modification time). Each file
/// is written to a temporary name and renamed, the bytes streamed to disk as they arrive. An
/// expired item is not served, and is deleted by a sweep that a `put` starts at most every
/// ten minutes, so the directory does not grow without bound and no timer runs when idle.
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

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `.type` file: content type, then the expiry if any.
struct Meta {
    content_type: String,
    expires_ms: Option<u64>,
}

impl Meta {
    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let content_type = lines
            .next()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let expires_ms = lines
            .filter_map(|l| l.trim().strip_prefix("expires "))
            .find_map(|v| v.trim().parse().ok());
        Self {
            content_type,
            expires_ms,
        }
    }

    fn render(&self) -> String {
        match self.expires_ms {
            Some(e) => format!("{}\nexpires {e}\n", self.content_type),
            None => format!("{}\n", self.content_type),
        }
    }
}

impl DirMediaStore {
    /// Uses `dir` (created if needed); items are kept for `ttl` unless their upload says
    /// otherwise.
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

    /// Deletes every expired item now and returns how many it deleted. Blocking (the
    /// [`MediaStore::purge_expired`] of this store runs it on tokio's blocking pool).
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    pub fn sweep(&self) -> io::Result<usize> {
        self.inner.sweep()
    }
}

impl Inner {
    /// Whether an item whose files say `meta` and whose bytes were written at `modified` has
    /// expired.
    fn expired(&self, meta: Option<&Meta>, modified: SystemTime) -> bool {
        let now = unix_ms(SystemTime::now());
        match meta.and_then(|m| m.expires_ms) {
            Some(e) => now >= e,
            None => SystemTime::now()
                .duration_since(modified)
                .is_ok_and(|age| age > self.ttl),
        }
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
            let is_type = name.ends_with(TYPE_SUFFIX);
            // An item is judged by its bytes' file, which takes its type file along; a type
            // file alone (its bytes never written) goes by its own expiry.
            if is_type && self.dir.join(id).exists() {
                continue;
            }
            let type_path = self.dir.join(format!("{id}{TYPE_SUFFIX}"));
            let meta = (!stale_tmp)
                .then(|| std::fs::read_to_string(&type_path).ok())
                .flatten()
                .map(|t| Meta::parse(&t));
            if self.expired(meta.as_ref(), modified) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
                // One object, two files: counted once.
                if !stale_tmp && !is_type {
                    let _ = std::fs::remove_file(&type_path);
                }
            }
        }
        Ok(removed)
    }

    /// Starts a sweep in the background when the last one is old enough.
    fn maybe_sweep(self: &Arc<Self>) {
        let now = unix_ms(SystemTime::now()) / 1000;
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
                tracing::warn!("media: sweep of {} failed: {e}", this.dir.display());
            }
        });
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    path.with_extension(format!("{}.tmp", util::random_hex(4)))
}

async fn rename_into_place(tmp: &Path, path: &Path) -> io::Result<()> {
    if let Err(e) = tokio::fs::rename(tmp, path).await {
        let _ = tokio::fs::remove_file(tmp).await;
        return Err(e);
    }
    Ok(())
}

/// Streams `upload`'s body into a temporary file, then renames it to `path`.
async fn write_stream(path: &Path, upload: &mut MediaUpload) -> Result<(), StorageError> {
    let tmp = tmp_path(path);
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(backend)?;
        while let Some(chunk) = upload.body.next().await {
            file.write_all(&chunk?).await.map_err(backend)?;
        }
        file.flush().await.map_err(backend)?;
        file.sync_all().await.map_err(backend)
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    rename_into_place(&tmp, path).await.map_err(backend)
}

impl MediaStore for DirMediaStore {
    fn put(&self, mut upload: MediaUpload) -> BoxFuture<'_, Result<String, StorageError>> {
        boxed(async move {
            let inner = &self.inner;
            inner.maybe_sweep();
            // The id is the only key to the media (`/media/{id}` needs none): never a guessable one.
            let id = util::secret_hex(16).map_err(|e| StorageError(e.to_string()))?;
            let ttl = upload.ttl.unwrap_or(inner.ttl);
            let meta = Meta {
                content_type: std::mem::take(&mut upload.content_type),
                expires_ms: Some(
                    unix_ms(SystemTime::now())
                        .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
                ),
            };
            // The type first: an item is visible once its bytes are.
            let type_path = inner.dir.join(format!("{id}{TYPE_SUFFIX}"));
            let tmp = tmp_path(&type_path);
            tokio::fs::write(&tmp, meta.render())
                .await
                .map_err(backend)?;
            rename_into_place(&tmp, &type_path).await.map_err(backend)?;
            if let Err(e) = write_stream(&inner.dir.join(&id), &mut upload).await {
                let _ = tokio::fs::remove_file(&type_path).await;
                return Err(e);
            }
            Ok(id)
        })
    }

    fn purge_expired(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        let inner = self.inner.clone();
        boxed(async move {
            let removed = tokio::task::spawn_blocking(move || inner.sweep())
                .await
                .map_err(backend)?
                .map_err(backend)?;
            Ok(removed as u64)
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
            let inner = &self.inner;
            let path = inner.dir.join(id);
            let mut file = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(MediaRead::Missing),
                Err(e) => return Err(backend(e)),
            };
            let stat = file.metadata().await.map_err(backend)?;
            let meta = tokio::fs::read_to_string(inner.dir.join(format!("{id}{TYPE_SUFFIX}")))
                .await
                .ok()
                .map(|t| Meta::parse(&t));
            if inner.expired(meta.as_ref(), stat.modified().map_err(backend)?) {
                return Ok(MediaRead::Missing);
            }
            let total_len = stat.len();
            let span = match range {
                None => 0..total_len,
                Some(r) => match r.resolve(total_len) {
                    Some(span) => span,
                    None => return Ok(MediaRead::Unsatisfiable { total_len }),
                },
            };
            file.seek(SeekFrom::Start(span.start))
                .await
                .map_err(backend)?;
            let remaining = span.end - span.start;
            // Reads as the consumer pulls, one chunk at a time.
            let body = futures::stream::unfold((file, remaining), |(mut file, left)| async move {
                if left == 0 {
                    return None;
                }
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_CHUNK);
                let mut buf = vec![0u8; want];
                match file.read(&mut buf).await {
                    Ok(0) => Some((
                        Err(StorageError("media file ended early".into())),
                        (file, 0),
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
                    }
                    Err(e) => Some((Err(backend(e)), (file, 0))),
                }
            });
            let content_type =
                meta.map_or_else(|| "application/octet-stream".to_owned(), |m| m.content_type);
            Ok(MediaRead::Found(MediaObject {
                content_type,
                total_len,
                range: span,
                body: boxed_stream(body),
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
        let upload = MediaUpload::from(crate::seams::Media {
            content_type: "image/png".into(),
            bytes: Bytes::from_static(b"\x89PNG...."),
        });
        let id = store
            .put(upload.with_ttl(Duration::from_millis(800)))
            .await
            .unwrap();
        assert!(is_media_id(&id));
        let m = store.get(&id, None).await.unwrap().found().unwrap();
        assert_eq!(m.content_type, "image/png");
        assert_eq!(m.collect().await.unwrap(), &b"\x89PNG...."[..]);
        assert!(matches!(
            store.get("../../etc/passwd", None).await.unwrap(),
            MediaRead::Missing
        ));
        assert!(matches!(
            store.get(&"0".repeat(32), None).await.unwrap(),
            MediaRead::Missing
        ));
        assert_eq!(store.sweep().unwrap(), 0);

        std::thread::sleep(Duration::from_millis(900));
        assert!(
            matches!(store.get(&id, None).await.unwrap(), MediaRead::Missing),
            "past its own TTL, though the store's is an hour"
        );
        assert_eq!(store.purge_expired().await.unwrap(), 1, "one object");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "bytes and type removed"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
