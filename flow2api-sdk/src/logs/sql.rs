//! The request log on SQLite, written once for every SQLite a host has: the native database
//! file (`native::SqliteDb`) and a Durable Object's SQL storage at the edge both run these
//! statements, through the one-method [`SqlExec`].
//!
//! A host turns each [`LogStore`] call into a [`LogCommand`] (serde, so it can cross a
//! Durable Object's fetch), runs it with [`run`] where the database is, and gets a
//! [`LogReply`] back; [`CommandLogStore`] is the [`LogStore`] over any such channel
//! ([`LogCommands`]). A command that writes must run in one transaction (natively an
//! explicit one; in a Durable Object every statement of one event without an `await`
//! between them commits together).
//!
//! Tables: `request_logs` (one row per request; indexes on `created_at_ms` and
//! `(account_id, created_at_ms)`), `log_totals` (all-time counts per account, with its
//! email), `log_daily` (counts per UTC day and account, the last eight days), `log_hourly`
//! (counts per hour, the last eight days) and `log_meta` (the last id given, so ids are
//! never reused, even after a clear).

use serde::{Deserialize, Serialize};

use super::memory::DAILY_KEEP_DAYS;
use super::{
    day_of, hour_of, AccountCounts, Counts, HourCounts, LogFilter, LogRecord, LogStore, Retention,
    Totals, HOURLY_KEEP_MS, MAX_LOG_PAGE,
};
use crate::seams::{boxed, BoxFuture, MaybeSend, MaybeSync, StorageError};

/// A value bound to a `?` or read from a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float (an integer outside JavaScript's safe range may come back as one).
    Real(f64),
    /// Text.
    Text(String),
}

/// Runs one SQL statement: what a host's SQLite gives [`run`].
pub trait SqlExec {
    /// Runs `sql` (one statement, `?` placeholders bound to `params` in order) and returns
    /// every row it yields, each as its columns in order.
    ///
    /// # Errors
    /// The database's failure, as text.
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError>;
}

/// The tables and indexes, one statement each; idempotent.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS request_logs (
        id INTEGER PRIMARY KEY,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        operation TEXT NOT NULL,
        model TEXT NOT NULL,
        account_id TEXT,
        account_email TEXT,
        key_name TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        status_text TEXT NOT NULL,
        progress INTEGER NOT NULL,
        error_summary TEXT,
        request_body TEXT NOT NULL,
        response_body TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS request_logs_created ON request_logs (created_at_ms)",
    "CREATE INDEX IF NOT EXISTS request_logs_account ON request_logs (account_id, created_at_ms)",
    "CREATE TABLE IF NOT EXISTS log_totals (
        account_id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        images INTEGER NOT NULL, videos INTEGER NOT NULL, errors INTEGER NOT NULL,
        image_errors INTEGER NOT NULL, video_errors INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS log_daily (
        day INTEGER NOT NULL,
        account_id TEXT NOT NULL,
        images INTEGER NOT NULL, videos INTEGER NOT NULL, errors INTEGER NOT NULL,
        image_errors INTEGER NOT NULL, video_errors INTEGER NOT NULL,
        PRIMARY KEY (day, account_id)
    )",
    "CREATE TABLE IF NOT EXISTS log_hourly (
        hour_ms INTEGER PRIMARY KEY,
        images INTEGER NOT NULL, videos INTEGER NOT NULL, errors INTEGER NOT NULL,
        image_errors INTEGER NOT NULL, video_errors INTEGER NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS log_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
];

/// Creates the tables and indexes that are missing.
///
/// # Errors
/// The database's failure.
pub fn create_schema(db: &dyn SqlExec) -> Result<(), StorageError> {
    for statement in SCHEMA {
        db.exec(statement, &[])?;
    }
    Ok(())
}

/// One [`LogStore`] call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LogCommand {
    /// [`LogStore::append`].
    Append {
        /// The row.
        record: LogRecord,
        /// What to keep.
        retention: Retention,
    },
    /// [`LogStore::list`].
    List {
        /// The filter.
        filter: LogFilter,
        /// Ids below this one.
        before: Option<u64>,
        /// At most this many.
        limit: usize,
    },
    /// [`LogStore::get`].
    Get {
        /// The id.
        id: u64,
    },
    /// [`LogStore::clear`].
    Clear,
    /// [`LogStore::stats`].
    Stats {
        /// The UTC day.
        day: u64,
    },
    /// [`LogStore::series`].
    Series {
        /// From this time on.
        since_ms: u64,
    },
    /// [`LogStore::per_account`].
    PerAccount {
        /// The UTC day.
        day: u64,
    },
}

impl LogCommand {
    /// Whether the command writes (and so needs a transaction and the writer).
    pub fn writes(&self) -> bool {
        matches!(self, Self::Append { .. } | Self::Clear)
    }
}

/// The answer to a [`LogCommand`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum LogReply {
    /// The appended row's id.
    Id {
        /// It.
        id: u64,
    },
    /// Listed rows.
    Rows {
        /// Them.
        rows: Vec<LogRecord>,
    },
    /// One row or none.
    Row {
        /// It.
        row: Option<LogRecord>,
    },
    /// Rows deleted.
    Cleared {
        /// How many.
        deleted: u64,
    },
    /// Totals.
    Totals {
        /// Them.
        totals: Totals,
    },
    /// Hourly counts.
    Series {
        /// Them.
        hours: Vec<HourCounts>,
    },
    /// Per-account counts.
    Accounts {
        /// Them.
        accounts: Vec<AccountCounts>,
    },
}

fn int(v: u64) -> SqlValue {
    SqlValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn opt_text(s: Option<&str>) -> SqlValue {
    s.map_or(SqlValue::Null, text)
}

fn as_u64(v: Option<&SqlValue>) -> u64 {
    match v {
        Some(SqlValue::Integer(i)) => u64::try_from(*i).unwrap_or(0),
        Some(SqlValue::Real(f)) if *f > 0.0 => *f as u64,
        _ => 0,
    }
}

fn as_text(v: Option<&SqlValue>) -> Option<String> {
    match v {
        Some(SqlValue::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

const ROW_COLUMNS: &str = "id, created_at_ms, updated_at_ms, operation, model, account_id, \
    account_email, key_name, status_code, duration_ms, status_text, progress, error_summary";

fn decode_row(cols: &[SqlValue]) -> LogRecord {
    let u = |i: usize| as_u64(cols.get(i));
    let t = |i: usize| as_text(cols.get(i));
    LogRecord {
        id: u(0),
        created_at_ms: u(1),
        updated_at_ms: u(2),
        operation: t(3).unwrap_or_default(),
        model: t(4).unwrap_or_default(),
        account_id: t(5),
        account_email: t(6),
        key: t(7).unwrap_or_default(),
        status_code: u16::try_from(u(8)).unwrap_or(0),
        duration_ms: u(9),
        status_text: t(10).unwrap_or_default(),
        progress: u8::try_from(u(11)).unwrap_or(100),
        error_summary: t(12),
        request_body: t(13).unwrap_or_default(),
        response_body: t(14).unwrap_or_default(),
    }
}

fn decode_counts(cols: &[SqlValue], from: usize) -> Counts {
    let u = |i: usize| as_u64(cols.get(from + i));
    Counts {
        images: u(0),
        videos: u(1),
        errors: u(2),
        image_errors: u(3),
        video_errors: u(4),
    }
}

fn counts_params(c: &Counts) -> [SqlValue; 5] {
    [
        int(c.images),
        int(c.videos),
        int(c.errors),
        int(c.image_errors),
        int(c.video_errors),
    ]
}

const ADD_COUNTS: &str = "images = images + excluded.images, videos = videos + excluded.videos, \
    errors = errors + excluded.errors, image_errors = image_errors + excluded.image_errors, \
    video_errors = video_errors + excluded.video_errors";

const SUM_COUNTS: &str = "COALESCE(SUM(images), 0), COALESCE(SUM(videos), 0), \
    COALESCE(SUM(errors), 0), COALESCE(SUM(image_errors), 0), COALESCE(SUM(video_errors), 0)";

/// Runs one command on `db` (which must already have the [`SCHEMA`]).
///
/// # Errors
/// The database's failure.
pub fn run(db: &dyn SqlExec, command: LogCommand) -> Result<LogReply, StorageError> {
    match command {
        LogCommand::Append { record, retention } => {
            append(db, record, retention).map(|id| LogReply::Id { id })
        }
        LogCommand::List {
            filter,
            before,
            limit,
        } => list(db, &filter, before, limit).map(|rows| LogReply::Rows { rows }),
        LogCommand::Get { id } => {
            let sql = format!(
                "SELECT {ROW_COLUMNS}, request_body, response_body FROM request_logs WHERE id = ?"
            );
            let rows = db.exec(&sql, &[int(id)])?;
            Ok(LogReply::Row {
                row: rows.first().map(|r| decode_row(r)),
            })
        }
        LogCommand::Clear => {
            let n = db.exec("SELECT COUNT(*) FROM request_logs", &[])?;
            db.exec("DELETE FROM request_logs", &[])?;
            Ok(LogReply::Cleared {
                deleted: as_u64(n.first().and_then(|r| r.first())),
            })
        }
        LogCommand::Stats { day } => {
            let total = db.exec(&format!("SELECT {SUM_COUNTS} FROM log_totals"), &[])?;
            let today = db.exec(
                &format!("SELECT {SUM_COUNTS} FROM log_daily WHERE day = ?"),
                &[int(day)],
            )?;
            let first = |rows: &[Vec<SqlValue>]| {
                rows.first()
                    .map(|r| decode_counts(r, 0))
                    .unwrap_or_default()
            };
            Ok(LogReply::Totals {
                totals: Totals {
                    total: first(&total),
                    today: first(&today),
                },
            })
        }
        LogCommand::Series { since_ms } => {
            let rows = db.exec(
                "SELECT hour_ms, images, videos, errors, image_errors, video_errors \
                 FROM log_hourly WHERE hour_ms >= ? ORDER BY hour_ms",
                &[int(hour_of(since_ms))],
            )?;
            Ok(LogReply::Series {
                hours: rows
                    .iter()
                    .map(|r| HourCounts {
                        hour_ms: as_u64(r.first()),
                        counts: decode_counts(r, 1),
                    })
                    .collect(),
            })
        }
        LogCommand::PerAccount { day } => {
            let rows = db.exec(
                "SELECT t.account_id, t.email, t.images, t.videos, t.errors, t.image_errors, \
                 t.video_errors, COALESCE(d.images, 0), COALESCE(d.videos, 0), \
                 COALESCE(d.errors, 0), COALESCE(d.image_errors, 0), COALESCE(d.video_errors, 0) \
                 FROM log_totals t LEFT JOIN log_daily d ON d.account_id = t.account_id AND d.day = ? \
                 WHERE t.account_id <> '' ORDER BY t.account_id",
                &[int(day)],
            )?;
            Ok(LogReply::Accounts {
                accounts: rows
                    .iter()
                    .map(|r| AccountCounts {
                        account_id: as_text(r.first()).unwrap_or_default(),
                        email: as_text(r.get(1)).unwrap_or_default(),
                        totals: Totals {
                            total: decode_counts(r, 2),
                            today: decode_counts(r, 7),
                        },
                    })
                    .collect(),
            })
        }
    }
}

fn append(db: &dyn SqlExec, record: LogRecord, retention: Retention) -> Result<u64, StorageError> {
    let last = db.exec("SELECT value FROM log_meta WHERE name = 'last_id'", &[])?;
    let id = as_u64(last.first().and_then(|r| r.first())) + 1;
    db.exec(
        "INSERT INTO log_meta (name, value) VALUES ('last_id', ?) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[int(id)],
    )?;
    db.exec(
        "INSERT INTO request_logs (id, created_at_ms, updated_at_ms, operation, model, \
         account_id, account_email, key_name, status_code, duration_ms, status_text, progress, \
         error_summary, request_body, response_body) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            int(id),
            int(record.created_at_ms),
            int(record.updated_at_ms),
            text(&record.operation),
            text(&record.model),
            opt_text(record.account_id.as_deref()),
            opt_text(record.account_email.as_deref()),
            text(&record.key),
            int(u64::from(record.status_code)),
            int(record.duration_ms),
            text(&record.status_text),
            int(u64::from(record.progress)),
            opt_text(record.error_summary.as_deref()),
            text(&record.request_body),
            text(&record.response_body),
        ],
    )?;
    let counts = counts_params(&Counts::of(&record));
    let account = record.account_id.as_deref().unwrap_or("");
    let at = record.updated_at_ms;
    let with = |head: Vec<SqlValue>| -> Vec<SqlValue> {
        head.into_iter().chain(counts.iter().cloned()).collect()
    };
    db.exec(
        &format!(
            "INSERT INTO log_totals (account_id, email, images, videos, errors, image_errors, \
             video_errors) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET \
             email = CASE WHEN excluded.email <> '' THEN excluded.email ELSE email END, {ADD_COUNTS}"
        ),
        &with(vec![
            text(account),
            text(record.account_email.as_deref().unwrap_or("")),
        ]),
    )?;
    db.exec(
        &format!(
            "INSERT INTO log_daily (day, account_id, images, videos, errors, image_errors, \
             video_errors) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, account_id) DO UPDATE \
             SET {ADD_COUNTS}"
        ),
        &with(vec![int(day_of(at)), text(account)]),
    )?;
    db.exec(
        &format!(
            "INSERT INTO log_hourly (hour_ms, images, videos, errors, image_errors, \
             video_errors) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour_ms) DO UPDATE \
             SET {ADD_COUNTS}"
        ),
        &with(vec![int(hour_of(at))]),
    )?;
    // Retention: the newest `max_entries` ids (ids are dense), nothing older than the age.
    let keep_from = id.saturating_sub(retention.max_entries.max(1)) + 1;
    db.exec("DELETE FROM request_logs WHERE id < ?", &[int(keep_from)])?;
    let oldest = record.created_at_ms.saturating_sub(retention.max_age_ms);
    db.exec(
        "DELETE FROM request_logs WHERE created_at_ms < ?",
        &[int(oldest)],
    )?;
    db.exec(
        "DELETE FROM log_hourly WHERE hour_ms < ?",
        &[int(hour_of(at.saturating_sub(HOURLY_KEEP_MS)))],
    )?;
    db.exec(
        "DELETE FROM log_daily WHERE day < ?",
        &[int(day_of(at).saturating_sub(DAILY_KEEP_DAYS))],
    )?;
    Ok(id)
}

fn list(
    db: &dyn SqlExec,
    filter: &LogFilter,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<LogRecord>, StorageError> {
    let mut sql = format!("SELECT {ROW_COLUMNS}, '', '' FROM request_logs WHERE 1 = 1");
    let mut params = Vec::new();
    let mut cond = |clause: &str, value: SqlValue| {
        sql.push_str(" AND ");
        sql.push_str(clause);
        params.push(value);
    };
    if let Some(b) = before {
        cond("id < ?", int(b));
    }
    if let Some(s) = filter.status {
        let (lo, hi) = s.range();
        cond("status_code >= ?", int(u64::from(lo)));
        cond("status_code < ?", int(u64::from(hi)));
    }
    if let Some(m) = &filter.model {
        cond("model = ?", text(m));
    }
    if let Some(a) = &filter.account {
        cond("account_id = ?", text(a));
    }
    if let Some(k) = &filter.key {
        cond("key_name = ?", text(k));
    }
    if let Some(o) = &filter.operation {
        cond("operation = ?", text(o));
    }
    if let Some(t) = filter.since_ms {
        cond("created_at_ms >= ?", int(t));
    }
    if let Some(t) = filter.until_ms {
        cond("created_at_ms <= ?", int(t));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    params.push(int(limit.clamp(1, MAX_LOG_PAGE) as u64));
    Ok(db
        .exec(&sql, &params)?
        .iter()
        .map(|r| decode_row(r))
        .collect())
}

/// Somewhere [`LogCommand`]s are run: a database on a blocking pool, a Durable Object.
pub trait LogCommands: MaybeSend + MaybeSync {
    /// Runs one command there.
    fn send(&self, command: LogCommand) -> BoxFuture<'_, Result<LogReply, StorageError>>;
}

/// The [`LogStore`] over a [`LogCommands`] channel.
#[derive(Debug, Clone)]
pub struct CommandLogStore<C>(pub C);

fn unexpected(_: &LogReply) -> StorageError {
    // Not the reply itself: it may carry prompts.
    StorageError("log store: unexpected reply".into())
}

impl<C: LogCommands> LogStore for CommandLogStore<C> {
    fn append(
        &self,
        record: LogRecord,
        retention: Retention,
    ) -> BoxFuture<'_, Result<u64, StorageError>> {
        boxed(async move {
            match self
                .0
                .send(LogCommand::Append { record, retention })
                .await?
            {
                LogReply::Id { id } => Ok(id),
                other => Err(unexpected(&other)),
            }
        })
    }

    fn list<'a>(
        &'a self,
        filter: &'a LogFilter,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<LogRecord>, StorageError>> {
        let command = LogCommand::List {
            filter: filter.clone(),
            before,
            limit,
        };
        boxed(async move {
            match self.0.send(command).await? {
                LogReply::Rows { rows } => Ok(rows),
                other => Err(unexpected(&other)),
            }
        })
    }

    fn get(&self, id: u64) -> BoxFuture<'_, Result<Option<LogRecord>, StorageError>> {
        boxed(async move {
            match self.0.send(LogCommand::Get { id }).await? {
                LogReply::Row { row } => Ok(row),
                other => Err(unexpected(&other)),
            }
        })
    }

    fn clear(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        boxed(async move {
            match self.0.send(LogCommand::Clear).await? {
                LogReply::Cleared { deleted } => Ok(deleted),
                other => Err(unexpected(&other)),
            }
        })
    }

    fn stats(&self, day: u64) -> BoxFuture<'_, Result<Totals, StorageError>> {
        boxed(async move {
            match self.0.send(LogCommand::Stats { day }).await? {
                LogReply::Totals { totals } => Ok(totals),
                other => Err(unexpected(&other)),
            }
        })
    }

    fn series(&self, since_ms: u64) -> BoxFuture<'_, Result<Vec<HourCounts>, StorageError>> {
        boxed(async move {
            match self.0.send(LogCommand::Series { since_ms }).await? {
                LogReply::Series { hours } => Ok(hours),
                other => Err(unexpected(&other)),
            }
        })
    }

    fn per_account(&self, day: u64) -> BoxFuture<'_, Result<Vec<AccountCounts>, StorageError>> {
        boxed(async move {
            match self.0.send(LogCommand::PerAccount { day }).await? {
                LogReply::Accounts { accounts } => Ok(accounts),
                other => Err(unexpected(&other)),
            }
        })
    }
}
