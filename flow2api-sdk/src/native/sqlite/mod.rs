//! [`SqliteDb`]: the native host's state in one SQLite database file, and the seams over it:
//! [`SqliteStorage`] (one handle per namespace) and [`SqliteCoordinator`].
//!
//! One file holds the request log's tables (`crate::logs::sql`, through [`SqliteDb::logs`])
//! and two more:
//!
//! - `kv (ns, key, value, expires_ms)`: every [`Storage`](crate::Storage) namespace (account
//!   records, admin sessions, video jobs…), so namespaces never collide;
//! - `account_state (account_id, version, state)`: the durable part of each account's
//!   [`AccountState`](crate::coordination::AccountState), written through by the coordinator.
//!
//! One writer connection behind a mutex and a few reader connections, which WAL lets read
//! while the writer writes. Every call runs on tokio's blocking pool, so a slow disk never
//! stalls the runtime's worker threads.

mod coordinator;
mod import;
mod logs;
mod storage;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::seams::{Clock, StorageError};

pub use coordinator::SqliteCoordinator;
pub use import::{ImportReport, SNAPSHOT_FILE};
pub use logs::{SqliteLogStore, SqliteLogs};
pub use storage::SqliteStorage;

/// The database's file name under the data directory.
pub const DB_FILE: &str = "flow2api.db";

/// The schema version in `PRAGMA user_version`; a database from a newer version is refused.
const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for another's lock before failing with `SQLITE_BUSY`. Only
/// another process on the same file (a backup tool, the `sqlite3` shell) can hold one long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle reader connections kept for reuse.
const MAX_IDLE_READERS: usize = 4;

/// At most one sweep of expired rows per this long, started by a write.
const SWEEP_EVERY_MS: u64 = 60_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    ns         TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    expires_ms INTEGER,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS account_state (
    account_id TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    state      TEXT NOT NULL
) WITHOUT ROWID;
";

/// Why the database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or directory could not be created, read or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The database was written by a newer version of this program.
    #[error("{path}: schema version {found} is newer than this program's {SCHEMA_VERSION}")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// An old snapshot file could not be parsed.
    #[error("{path}: {message}")]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A stored account state could not be encoded.
    #[error("encoding an account state: {0}")]
    Encode(#[from] serde_json::Error),
    /// The blocking task running the call panicked or was cancelled.
    #[error("database task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<SqliteError> for StorageError {
    fn from(e: SqliteError) -> Self {
        StorageError(e.to_string())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another call must not take every later call down with it; SQLite rolls back
    // whatever transaction that call left open when its statement handles drop.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One SQLite database file shared by the native host's stores. Cheap to clone.
///
/// Open it with [`SqliteDb::open`], then take a [`SqliteStorage`] per namespace with
/// [`SqliteDb::storage`] and the coordinator with [`SqliteCoordinator::open`].
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Clock time (Unix ms) of the last sweep of expired rows.
    last_sweep_ms: AtomicU64,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteDb {
    /// Opens (creating it and its directory if needed) the database at `path`, in WAL mode,
    /// and drops the rows that expired. TTLs are measured by `clock`. Blocking: call it at
    /// start-up or from `spawn_blocking`.
    ///
    /// # Errors
    /// [`SqliteError`] when the directory or file cannot be created or opened, or the
    /// database comes from a newer version.
    pub fn open(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self, SqliteError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        create_private(&path)?;
        let writer = Connection::open(&path)?;
        configure(&writer)?;
        // WAL is a property of the file: set once here, every later connection uses it. It lets
        // readers read while the writer writes. With synchronous=NORMAL a commit is in the WAL
        // file (written with write(2), so in the OS's page cache) before it returns, and is only
        // fsynced at checkpoints: a crash of this process, even `kill -9`, loses nothing that
        // was committed; only a power cut or kernel crash can drop the last commits (and never
        // corrupts the file). That is the durability an acknowledged write needs here, at a
        // fraction of FULL's cost (one fsync per commit).
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            eprintln!(
                "warning: {} is in journal mode {mode}, not WAL",
                path.display()
            );
        }
        writer.execute_batch("PRAGMA synchronous = NORMAL")?;
        let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(SqliteError::NewerSchema {
                path,
                found: version,
            });
        }
        writer.execute_batch(SCHEMA)?;
        logs::create_schema(&writer)?;
        writer.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        let now = clock.now_ms();
        sweep(&writer, now)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                clock,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                last_sweep_ms: AtomicU64::new(now),
            }),
        })
    }

    /// [`SqliteDb::open`] on tokio's blocking pool.
    ///
    /// # Errors
    /// As [`SqliteDb::open`].
    pub async fn open_async(path: PathBuf, clock: Arc<dyn Clock>) -> Result<Self, SqliteError> {
        tokio::task::spawn_blocking(move || Self::open(path, clock)).await?
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A [`Storage`](crate::Storage) over the rows of `namespace`: keys in one namespace never
    /// meet those of another.
    pub fn storage(&self, namespace: &str) -> SqliteStorage {
        SqliteStorage::new(self.clone(), namespace)
    }

    /// The request log in this database (its tables: `crate::logs::sql`).
    pub fn logs(&self) -> SqliteLogStore {
        crate::logs::sql::CommandLogStore(SqliteLogs::new(self.clone()))
    }

    /// Deletes every expired row now; returns how many. (Writes also do this, at most once a
    /// minute.)
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn sweep_expired(&self) -> Result<usize, SqliteError> {
        let now = self.inner.clock.now_ms();
        self.inner.last_sweep_ms.store(now, Ordering::Relaxed);
        self.write(move |c| sweep(c, now)).await
    }

    /// Writes the WAL back into the database file and truncates it, for a clean stop. Not
    /// needed for durability.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn checkpoint(&self) -> Result<(), SqliteError> {
        self.write(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
            .await
    }

    fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Whether a write should also sweep expired rows (at most once per minute).
    fn sweep_due(&self, now: u64) -> bool {
        let last = self.inner.last_sweep_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= SWEEP_EVERY_MS
            && self
                .inner
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Runs `f` on the writer connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || f(&mut lock(&inner.writer))).await?;
        Ok(result?)
    }

    /// Runs `f` on a reader connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = lock(&inner.readers).pop();
            let conn = match idle {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let result = f(&conn);
            let mut idle = lock(&inner.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            Ok(result?)
        })
        .await?
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn)?;
    Ok(conn)
}

fn sweep(conn: &Connection, now: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM kv WHERE expires_ms IS NOT NULL AND expires_ms <= ?1")?
        .execute([to_sql_ms(now)])
}

/// Times are Unix milliseconds; SQLite integers are signed 64-bit.
fn to_sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The database holds session tokens in clear (the pool must send them): a new file is created
/// readable by its owner only, like the snapshot file before it, and SQLite gives the WAL and
/// shared-memory files beside it the same mode.
fn create_private(path: &Path) -> Result<(), SqliteError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(SqliteError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}
