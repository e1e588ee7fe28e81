//! Bulk imports too large for one request (`IMPORT_BATCH_SIZE`): the items are stored, the
//! client gets `202` with the import's progress, and the job runner adds one batch per step
//! (at the edge each step is a Durable Object alarm, an invocation with its own subrequest
//! budget), until every item is done. `GET /api/tokens/import/{id}` reads the progress.
//!
//! Keys, in the pool's storage: `import:{id}` the progress, `import:{id}:items:{n}` the
//! items still to import, in pieces small enough for any backend's value limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seams::{list_all, Bytes, Expect, StorageError};
use crate::util;

use super::records::{ImportItem, ImportReport};
use super::AccountPool;

const PREFIX: &str = "import:";
/// The most bytes of items one stored piece holds (Durable Object values may be 128 KiB).
const PIECE_BYTES: usize = 96 * 1024;
/// How long a finished import's progress stays readable.
const FINISHED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether `id` names an import (`import_` and hex), so that a route or a runner never
/// builds a storage key from junk.
pub fn is_import_id(id: &str) -> bool {
    id.strip_prefix("import_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The progress of a background import, as `POST /api/tokens/import` (202) and
/// `GET /api/tokens/import/{id}` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    /// The import's id.
    pub import_id: String,
    /// `running` or `done`.
    pub status: String,
    /// Items in the import.
    pub total: usize,
    /// Items handled so far (added, updated or failed).
    pub done: usize,
    /// Accounts added.
    pub added: usize,
    /// Accounts updated (same email).
    pub updated: usize,
    /// One line per failed item (no secrets).
    pub errors: Vec<String>,
    /// Stored pieces of items.
    #[serde(default)]
    pieces: usize,
    /// The next piece to import.
    #[serde(default)]
    next_piece: usize,
}

impl ImportProgress {
    /// Whether every item was handled.
    pub fn finished(&self) -> bool {
        self.status == "done"
    }
}

fn progress_key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

fn piece_key(id: &str, n: usize) -> String {
    format!("{PREFIX}{id}:items:{n:06}")
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, StorageError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| StorageError(format!("encoding an import: {e}")))
}

/// Splits items into pieces of at most `batch` items and about [`PIECE_BYTES`] each.
fn pieces(items: &[ImportItem], batch: usize) -> Result<Vec<Bytes>, StorageError> {
    let mut out = Vec::new();
    let mut piece: Vec<&ImportItem> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = encode(item)?.len();
        if !piece.is_empty() && (piece.len() >= batch || bytes + size > PIECE_BYTES) {
            out.push(encode(&piece)?);
            piece.clear();
            bytes = 0;
        }
        piece.push(item);
        bytes += size;
    }
    if !piece.is_empty() {
        out.push(encode(&piece)?);
    }
    Ok(out)
}

impl AccountPool {
    /// Stores an import for the runner to carry out (schedule its id); its first progress.
    ///
    /// # Errors
    /// Storage failures (nothing is scheduled then).
    pub async fn start_import(&self, items: &[ImportItem]) -> Result<ImportProgress, StorageError> {
        let id = format!("import_{}", util::random_hex(8));
        let stored = pieces(items, self.settings.import_batch_size.max(1))?;
        for (n, piece) in stored.iter().enumerate() {
            self.storage
                .put(&piece_key(&id, n), piece.clone(), None)
                .await?;
        }
        let progress = ImportProgress {
            import_id: id.clone(),
            status: "running".into(),
            total: items.len(),
            done: 0,
            added: 0,
            updated: 0,
            errors: Vec::new(),
            pieces: stored.len(),
            next_piece: 0,
        };
        self.storage
            .put(&progress_key(&id), encode(&progress)?, None)
            .await?;
        Ok(progress)
    }

    /// An import's progress; `None` for an unknown (or long finished) one.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn import_progress(&self, id: &str) -> Result<Option<ImportProgress>, StorageError> {
        if !is_import_id(id) {
            return Ok(None);
        }
        Ok(self
            .storage
            .get(&progress_key(id))
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// One step of an import: the next batch of items. `Some(wait)` while items remain,
    /// `None` when it is done (or unknown). The progress is written back conditionally, so
    /// a step repeated after a crash never counts a batch twice.
    ///
    /// # Errors
    /// Storage failures: the runner takes the step again later.
    pub async fn import_step(&self, id: &str) -> Result<Option<Duration>, StorageError> {
        let key = progress_key(id);
        let Some(raw) = self.storage.get(&key).await? else {
            return Ok(None);
        };
        let mut progress: ImportProgress = serde_json::from_slice(&raw)
            .map_err(|e| StorageError(format!("corrupt import record: {e}")))?;
        if progress.finished() {
            return Ok(None);
        }
        let piece = piece_key(id, progress.next_piece);
        let items: Vec<ImportItem> = match self.storage.get(&piece).await? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| StorageError(format!("corrupt import items: {e}")))?,
            None => Vec::new(),
        };
        let mut report = ImportReport::default();
        for item in items {
            let n = progress.done + 1;
            self.import_one(n, item, &mut report).await?;
            progress.done += 1;
        }
        progress.added += report.added;
        progress.updated += report.updated;
        progress.errors.extend(report.errors);
        progress.next_piece += 1;
        let finished = progress.next_piece >= progress.pieces;
        if finished {
            progress.status = "done".into();
            progress.done = progress.total;
        }
        let ttl = finished.then_some(FINISHED_TTL);
        let value = encode(&progress)?;
        let written = if self.storage.capabilities().conditional_writes {
            self.storage
                .put_if(&key, value, ttl, Expect::Value(raw))
                .await?
        } else {
            self.storage.put(&key, value, ttl).await?;
            true
        };
        if !written {
            // Another step got there first: it carries on from where it left the record.
            return Ok(Some(Duration::ZERO));
        }
        self.storage.delete(&piece).await?;
        Ok((!finished).then_some(Duration::ZERO))
    }

    /// Ids of the imports not yet done (a restarted process schedules them again).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn unfinished_imports(&self) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        for key in list_all(&*self.storage, PREFIX).await? {
            let Some(id) = key.strip_prefix(PREFIX).filter(|id| is_import_id(id)) else {
                continue;
            };
            if self
                .import_progress(id)
                .await?
                .is_some_and(|p| !p.finished())
            {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn import_ids_are_checked() {
        assert!(is_import_id("import_0123abcd"));
        assert!(!is_import_id("import_"));
        assert!(!is_import_id("import_../x"));
        assert!(!is_import_id("video_0123"));
    }

    #[test]
    fn pieces_hold_a_batch_at_most_and_stay_small() {
        let item = |n: usize| ImportItem {
            session_token: Some(Secret::new(format!("st-{n}-{}", "x".repeat(4000)))),
            ..ImportItem::default()
        };
        let items: Vec<ImportItem> = (0..100).map(item).collect();
        let small = pieces(&items, 10).unwrap();
        assert_eq!(small.len(), 10);
        let big = pieces(&items, 500).unwrap();
        assert!(big.len() >= 5, "{}", big.len());
        assert!(big.iter().all(|p| p.len() <= PIECE_BYTES + 8 * 1024));
        let back: usize = big
            .iter()
            .map(|p| serde_json::from_slice::<Vec<ImportItem>>(p).unwrap().len())
            .sum();
        assert_eq!(back, 100);
    }
}
