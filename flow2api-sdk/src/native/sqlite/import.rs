//! Importing the JSON state file that earlier versions of the native host wrote to the data
//! directory (`store.json`, a snapshot of its in-memory store taken every few seconds).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rusqlite::params;
use serde::Deserialize;

use super::{to_sql_ms, SqliteDb, SqliteError};

/// The old state file's name under the data directory.
pub const SNAPSHOT_FILE: &str = "store.json";
/// What the file is renamed to once imported.
const IMPORTED_SUFFIX: &str = ".imported";
/// The only version of the file that was ever written.
const FORMAT_VERSION: u32 = 1;

/// The file: `{"version":1,"entries":[{"key","text"|"base64","expires_ms"}]}`, UTF-8 values as
/// text, others as base64.
#[derive(Deserialize)]
struct FileBody {
    version: u32,
    entries: Vec<FileEntry>,
}

#[derive(Deserialize)]
struct FileEntry {
    key: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    base64: Option<String>,
    #[serde(default)]
    expires_ms: Option<u64>,
}

/// What [`SqliteDb::import_snapshot`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Entries written to the database.
    pub imported: usize,
    /// Entries whose key the database already had (kept as they were in the database).
    pub already_present: usize,
    /// Entries that had expired.
    pub expired: usize,
    /// Where the file was moved.
    pub renamed_to: PathBuf,
}

/// One entry of the file: key, value, expiry (Unix ms).
type Entry = (String, Vec<u8>, Option<u64>);

fn parse(path: &Path, raw: &[u8]) -> Result<Vec<Entry>, SqliteError> {
    let bad = |message: String| SqliteError::Snapshot {
        path: path.to_owned(),
        message,
    };
    let file: FileBody = serde_json::from_slice(raw).map_err(|e| bad(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(bad(format!("unsupported version {}", file.version)));
    }
    file.entries
        .into_iter()
        .map(|e| {
            let value = match (e.text, e.base64) {
                (Some(t), None) => t.into_bytes(),
                (None, Some(b)) => base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|err| bad(format!("key {}: {err}", e.key)))?,
                _ => {
                    return Err(bad(format!(
                        "key {} needs exactly one of text, base64",
                        e.key
                    )))
                }
            };
            Ok((e.key, value, e.expires_ms))
        })
        .collect()
}

impl SqliteDb {
    /// Imports `<dir>/store.json`, if there is one, then renames it `store.json.imported`.
    /// `namespace_of` says which namespace each key goes to (the old file held every store's
    /// keys together). Keys the database already has keep their database value, so a second
    /// import of the same file (a crash between the commit and the rename) changes nothing;
    /// expired entries are skipped.
    ///
    /// # Errors
    /// When the file cannot be read, parsed (a damaged file is left in place, not skipped) or
    /// renamed, or the database cannot be written.
    pub async fn import_snapshot(
        &self,
        dir: &Path,
        namespace_of: fn(&str) -> &'static str,
    ) -> Result<Option<ImportReport>, SqliteError> {
        let path = dir.join(SNAPSHOT_FILE);
        let raw = match tokio::fs::read(&path).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SqliteError::Io { path, source }),
        };
        let entries = parse(&path, &raw)?;
        let total = entries.len();
        let now = self.now_ms();
        let (imported, expired) = self
            .write(move |c| {
                let tx = c.transaction()?;
                let (mut imported, mut expired) = (0, 0);
                {
                    let mut insert = tx.prepare(
                        "INSERT INTO kv (ns, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (ns, key) DO NOTHING",
                    )?;
                    for (key, value, expires) in &entries {
                        if expires.is_some_and(|e| e <= now) {
                            expired += 1;
                            continue;
                        }
                        let ns = namespace_of(key);
                        imported +=
                            insert.execute(params![ns, key, value, expires.map(to_sql_ms)])?;
                    }
                }
                tx.commit()?;
                Ok((imported, expired))
            })
            .await?;
        let mut renamed_to = path.clone().into_os_string();
        renamed_to.push(IMPORTED_SUFFIX);
        let renamed_to = PathBuf::from(renamed_to);
        tokio::fs::rename(&path, &renamed_to)
            .await
            .map_err(|source| SqliteError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Some(ImportReport {
            imported,
            already_present: total - imported - expired,
            expired,
            renamed_to,
        }))
    }
}
