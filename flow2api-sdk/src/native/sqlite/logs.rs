//! [`SqliteLogStore`]: the [`LogStore`](crate::seams::LogStore) seam over the request log
//! tables of a [`SqliteDb`] (`crate::logs::sql`, the same statements the edge runs).

use rusqlite::types::{Value, ValueRef};

use super::SqliteDb;
use crate::logs::sql::{
    self, CommandLogStore, LogCommand, LogCommands, LogReply, SqlExec, SqlValue,
};
use crate::seams::{boxed, BoxFuture, StorageError};

/// Request logs in the database file: an append (row, counters, retention) is one
/// transaction on the writer connection; reads use a reader connection. Take one with
/// [`SqliteDb::logs`].
pub type SqliteLogStore = CommandLogStore<SqliteLogs>;

/// The channel of a [`SqliteLogStore`]: commands run on the database's connections.
#[derive(Debug, Clone)]
pub struct SqliteLogs {
    db: SqliteDb,
}

impl SqliteLogs {
    pub(super) fn new(db: SqliteDb) -> Self {
        Self { db }
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

impl LogCommands for SqliteLogs {
    fn send(&self, command: LogCommand) -> BoxFuture<'_, Result<LogReply, StorageError>> {
        boxed(async move {
            let outcome = if command.writes() {
                self.db
                    .write(move |c| {
                        let tx = c.transaction()?;
                        match sql::run(&Conn(&tx), command) {
                            Ok(reply) => tx.commit().map(|()| Ok(reply)),
                            // Dropping the transaction rolls it back.
                            Err(e) => Ok(Err(e)),
                        }
                    })
                    .await
            } else {
                self.db.read(move |c| Ok(sql::run(&Conn(c), command))).await
            };
            outcome.map_err(StorageError::from)?
        })
    }
}
