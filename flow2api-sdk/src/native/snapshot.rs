//! [`FileSnapshot`]: keeps a [`MemoryStorage`] in `<dir>/store.json` across restarts.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::memory::MemoryStorage;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "store.json";
const FORMAT_VERSION: u32 = 1;

/// The file: `{"version":1,"entries":[{"key","text"|"base64","expires_ms"}]}`. Values that are
/// UTF-8 (the SDK's JSON records) are kept as text so the file stays readable.
#[derive(Serialize, Deserialize)]
struct FileBody {
    version: u32,
    entries: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
    #[serde(default)]
    expires_ms: Option<u64>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Persists a [`MemoryStorage`] to `<dir>/store.json`: loaded by [`FileSnapshot::open`], written
/// atomically (temporary file, fsync, rename) by [`FileSnapshot::save`] when the contents
/// changed. Run [`FileSnapshot::autosave`] in a task and call [`FileSnapshot::save`] once more
/// at shutdown.
///
/// The file holds session tokens in clear (the storage must keep them); it is created readable by
/// its owner only on Unix.
#[derive(Debug)]
pub struct FileSnapshot {
    storage: Arc<MemoryStorage>,
    path: PathBuf,
    /// Hash of the last contents written or loaded.
    last: Mutex<Option<u64>>,
}

impl FileSnapshot {
    /// Creates `dir` if needed and loads `<dir>/store.json` into `storage` when it exists.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or the file cannot be read or parsed (a damaged
    /// file is not overwritten silently).
    pub fn open(dir: impl AsRef<Path>, storage: Arc<MemoryStorage>) -> io::Result<Self> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let snapshot = Self {
            storage,
            path,
            last: Mutex::new(None),
        };
        match fs::read(&snapshot.path) {
            Ok(raw) => snapshot.load(&raw)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // No file is the same as an empty store: nothing to write until a change.
                let empty = encode_entries(Vec::new())?;
                *snapshot.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash(&empty));
            }
            Err(e) => return Err(e),
        }
        Ok(snapshot)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self, raw: &[u8]) -> io::Result<()> {
        let file: FileBody = serde_json::from_slice(raw)
            .map_err(|e| invalid(format!("{}: {e}", self.path.display())))?;
        if file.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "{}: unsupported version {}",
                self.path.display(),
                file.version
            )));
        }
        let mut entries = Vec::with_capacity(file.entries.len());
        for e in file.entries {
            let value = match (e.text, e.base64) {
                (Some(t), None) => Bytes::from(t),
                (None, Some(b)) => base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map(Bytes::from)
                    .map_err(|err| {
                        invalid(format!("{}: key {}: {err}", self.path.display(), e.key))
                    })?,
                _ => {
                    return Err(invalid(format!(
                        "{}: key {} needs exactly one of text, base64",
                        self.path.display(),
                        e.key
                    )))
                }
            };
            entries.push((e.key, value, e.expires_ms));
        }
        self.storage.restore(entries);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash(&self.encode()?));
        Ok(())
    }

    fn encode(&self) -> io::Result<Vec<u8>> {
        let entries = self
            .storage
            .snapshot()
            .into_iter()
            .map(|(key, value, expires_ms)| {
                let (text, base64) = match std::str::from_utf8(&value) {
                    Ok(t) => (Some(t.to_owned()), None),
                    Err(_) => (
                        None,
                        Some(base64::engine::general_purpose::STANDARD.encode(&value)),
                    ),
                };
                FileEntry {
                    key,
                    text,
                    base64,
                    expires_ms,
                }
            })
            .collect();
        encode_entries(entries)
    }

    /// Writes the file if the storage changed since the last save or load. Blocking: call it
    /// from `spawn_blocking` or at shutdown. Returns whether it wrote.
    ///
    /// # Errors
    ///
    /// When the temporary file cannot be written, synced or renamed.
    pub fn save(&self) -> io::Result<bool> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let encoded = self.encode()?;
        let h = hash(&encoded);
        if *last == Some(h) {
            return Ok(false);
        }
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&tmp)?;
            f.write_all(&encoded)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        *last = Some(h);
        Ok(true)
    }

    /// Saves every `every` for as long as it runs (abort the task to stop it). Failures are
    /// reported on stderr and retried at the next tick.
    pub async fn autosave(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.save()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("snapshot: cannot save {}: {e}", self.path.display()),
                Err(e) => eprintln!("snapshot: save task failed: {e}"),
            }
        }
    }
}

fn encode_entries(entries: Vec<FileEntry>) -> io::Result<Vec<u8>> {
    let body = FileBody {
        version: FORMAT_VERSION,
        entries,
    };
    serde_json::to_vec_pretty(&body).map_err(|e| invalid(e.to_string()))
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::ManualClock;
    use crate::Storage;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flow2api-snapshot-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn round_trips_text_binary_and_expiry() {
        let dir = temp_dir("roundtrip");
        let clock = Arc::new(ManualClock::new(1_000));
        let storage = Arc::new(MemoryStorage::new(clock.clone()));
        let snapshot = FileSnapshot::open(&dir, storage.clone()).unwrap();
        assert!(
            !snapshot.save().unwrap(),
            "an empty store equals the missing file"
        );
        storage
            .put("account:1", Bytes::from_static(br#"{"st":"x"}"#), None)
            .await
            .unwrap();
        storage
            .put("bin", Bytes::from_static(&[0, 159, 146, 150]), None)
            .await
            .unwrap();
        storage
            .put(
                "ttl",
                Bytes::from_static(b"t"),
                Some(Duration::from_secs(10)),
            )
            .await
            .unwrap();
        assert!(snapshot.save().unwrap());
        assert!(
            !snapshot.save().unwrap(),
            "unchanged contents are not rewritten"
        );
        assert!(!dir.join("store.json.tmp").exists());
        let text = fs::read_to_string(dir.join("store.json")).unwrap();
        assert!(text.contains(r#""text": "{\"st\":\"x\"}""#), "{text}");
        assert!(text.contains(r#""base64": "AJ+Slg==""#), "{text}");

        let restored = Arc::new(MemoryStorage::new(clock.clone()));
        let again = FileSnapshot::open(&dir, restored.clone()).unwrap();
        assert_eq!(
            restored.get("account:1").await.unwrap().unwrap(),
            &br#"{"st":"x"}"#[..]
        );
        assert_eq!(
            restored.get("bin").await.unwrap().unwrap(),
            &[0, 159, 146, 150][..]
        );
        assert_eq!(restored.get("ttl").await.unwrap().unwrap(), &b"t"[..]);
        assert!(
            !again.save().unwrap(),
            "a freshly loaded store is not rewritten"
        );
        clock.advance(Duration::from_secs(11));
        assert_eq!(
            restored.get("ttl").await.unwrap(),
            None,
            "expiries survive the file"
        );
        assert!(
            again.save().unwrap(),
            "an expired entry changes the contents"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_store() {
        let dir = temp_dir("damaged");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("store.json"), b"{\"version\":1,\"entries\":[").unwrap();
        let storage = Arc::new(MemoryStorage::new(Arc::new(ManualClock::new(0))));
        let err = FileSnapshot::open(&dir, storage).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let _ = fs::remove_dir_all(&dir);
    }
}
