//! [`SqliteLogStore`]: the [`LogStore`](crate::seams::LogStore) seam over the request log
//! tables of a [`SqliteDb`] (`crate::logs::sql`, the same statements the edge runs).
//!
//! Appends are committed in groups: the first append of a group waits [`GATHER`] for others,
//! then they all go into one transaction on the writer connection (and those that arrive
//! meanwhile into the next), so a busy server writes each page of the log's tables and
//! indexes once per group, not once per row. Every append still returns only once its row is
//! committed; rows are written in the background, after the answer, so the wait costs no
//! client anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use rusqlite::types::{Value, ValueRef};

use super::{lock, SqliteDb};
use crate::logs::sql::{
    self, CommandLogStore, LogCommand, LogCommands, LogReply, SqlExec, SqlValue,
};
use crate::seams::{boxed, BoxFuture, StorageError};

/// Request logs in the database file: an append (row, counters, retention) is committed
/// with the appends that came meanwhile, in one transaction on the writer connection; reads
/// use a reader connection. Take one with [`SqliteDb::logs`].
pub type SqliteLogStore = CommandLogStore<SqliteLogs>;

/// How long the first append of a group waits for others before they are committed.
pub(super) const GATHER: Duration = Duration::from_millis(250);

/// One append waiting for its transaction, and where its answer goes.
type Waiting = (LogCommand, oneshot::Sender<Result<LogReply, StorageError>>);

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// A flusher is running (it takes whatever waits, until nothing does).
    flushing: bool,
}

/// The channel of a [`SqliteLogStore`]: commands run on the database's connections.
#[derive(Clone)]
pub struct SqliteLogs {
    db: SqliteDb,
    queue: Arc<Mutex<Queue>>,
    gather: Duration,
}

impl std::fmt::Debug for SqliteLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLogs")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl SqliteLogs {
    pub(super) fn new(db: SqliteDb, gather: Duration) -> Self {
        Self {
            db,
            queue: Arc::default(),
            gather,
        }
    }
}

/// A connection as the log's SQL sees it.
struct Conn<'c>(&'c rusqlite::Connection);

fn to_sql(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null | ValueRef::Blob(_) => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

impl SqlExec for Conn<'_> {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let fail = |e: rusqlite::Error| StorageError(format!("sqlite: {e}"));
        let mut stmt = self.0.prepare_cached(sql).map_err(fail)?;
        let n = stmt.column_count();
        let params = rusqlite::params_from_iter(params.iter().map(to_sql));
        let mut rows = stmt.query(params).map_err(fail)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let mut cols = Vec::with_capacity(n);
            for i in 0..n {
                cols.push(from_sql(row.get_ref(i).map_err(fail)?));
            }
            out.push(cols);
        }
        Ok(out)
    }
}

/// Creates the log tables on the writer connection (at open).
pub(super) fn create_schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for statement in sql::SCHEMA {
        conn.execute_batch(statement)?;
    }
    Ok(())
}

/// Runs `batch` in one transaction and answers each command: every one's reply once it is
/// committed, or, when any fails, the failure to all (the transaction rolled back).
fn run_batch(c: &mut rusqlite::Connection, batch: Vec<Waiting>) {
    let outcome = (|| -> Result<Vec<LogReply>, StorageError> {
        let tx = c
            .transaction()
            .map_err(|e| StorageError(format!("sqlite: {e}")))?;
        let mut replies = Vec::with_capacity(batch.len());
        for (command, _) in &batch {
            replies.push(sql::run(&Conn(&tx), command.clone())?);
        }
        tx.commit()
            .map_err(|e| StorageError(format!("sqlite: {e}")))?;
        Ok(replies)
    })();
    match outcome {
        Ok(replies) => {
            for ((_, answer), reply) in batch.into_iter().zip(replies) {
                let _ = answer.send(Ok(reply));
            }
        }
        Err(e) => {
            for (_, answer) in batch {
                let _ = answer.send(Err(e.clone()));
            }
        }
    }
}

impl SqliteLogs {
    /// Commits whatever waits, batch after batch, until nothing does.
    async fn flush(self) {
        if !self.gather.is_zero() {
            tokio::time::sleep(self.gather).await;
        }
        loop {
            let batch = {
                let mut q = lock(&self.queue);
                if q.waiting.is_empty() {
                    q.flushing = false;
                    return;
                }
                std::mem::take(&mut q.waiting)
            };
            // The answers are sent from the writer's thread; a failure to run at all (the
            // task panicked) drops them, which their waiters read as an error.
            let _ = self
                .db
                .write(move |c| {
                    run_batch(c, batch);
                    Ok(())
                })
                .await;
        }
    }
}

impl LogCommands for SqliteLogs {
    fn send(&self, command: LogCommand) -> BoxFuture<'_, Result<LogReply, StorageError>> {
        boxed(async move {
            if command.writes() {
                let (answer, reply) = oneshot::channel();
                let start = {
                    let mut q = lock(&self.queue);
                    q.waiting.push((command, answer));
                    !std::mem::replace(&mut q.flushing, true)
                };
                if start {
                    tokio::spawn(self.clone().flush());
                }
                return reply
                    .await
                    .map_err(|_| StorageError("sqlite: the log write was dropped".into()))?;
            }
            self.db
                .read(move |c| Ok(sql::run(&Conn(c), command)))
                .await
                .map_err(StorageError::from)?
        })
    }
}
