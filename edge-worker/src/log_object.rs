//! `LogObject`: the request log at the edge, in one Durable Object instance (`logs`) and its
//! SQLite storage, running the SDK's log SQL (`flow2api_sdk::logs::sql`, the same statements
//! the native database runs). [`DoLogStore`] is the SDK's `LogStore` over it: one call per
//! command, so one per generation request (its row and counters in one event).

use std::cell::{Cell, OnceCell};

use flow2api_sdk::logs::sql::{
    self, CommandLogStore, LogCommand, LogCommands, LogReply, SqlExec, SqlValue,
};
use flow2api_sdk::seams::{boxed, BoxFuture, StorageError};
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{
    durable_object, DurableObject, Env, ObjectNamespace, Request, Response, Result, SqlStorage,
    SqlStorageValue, State,
};

use crate::do_client::{call, Object};
use crate::fetch_http::Subrequests;

/// The binding of the class.
pub const BINDING: &str = "LOGS";
/// The instance that holds the gateway's log.
pub const INSTANCE: &str = "logs";
/// The made-up URL commands are posted to.
const LOG_URL: &str = "https://logs/cmd";

/// The Durable Object class bound as `LOGS`.
#[durable_object]
pub struct LogObject {
    state: State,
    /// The tables were created by this instance's life in memory.
    schema: Cell<bool>,
}

impl std::fmt::Debug for LogObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogObject").finish_non_exhaustive()
    }
}

/// The object's SQL storage as the SDK's SQL sees it.
struct Sql(SqlStorage);

fn to_js(v: &SqlValue) -> SqlStorageValue {
    match v {
        SqlValue::Null => SqlStorageValue::Null,
        SqlValue::Integer(i) => SqlStorageValue::Integer(*i),
        SqlValue::Real(f) => SqlStorageValue::Float(*f),
        SqlValue::Text(s) => SqlStorageValue::String(s.clone()),
    }
}

fn from_js(v: SqlStorageValue) -> SqlValue {
    match v {
        SqlStorageValue::Null | SqlStorageValue::Blob(_) => SqlValue::Null,
        SqlStorageValue::Boolean(b) => SqlValue::Integer(i64::from(b)),
        SqlStorageValue::Integer(i) => SqlValue::Integer(i),
        SqlStorageValue::Float(f) => SqlValue::Real(f),
        SqlStorageValue::String(s) => SqlValue::Text(s),
    }
}

impl SqlExec for Sql {
    fn exec(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> std::result::Result<Vec<Vec<SqlValue>>, StorageError> {
        let fail = |e: worker::Error| StorageError(format!("log object sql: {e}"));
        let cursor = self
            .0
            .exec(sql, params.iter().map(to_js).collect::<Vec<_>>())
            .map_err(fail)?;
        cursor
            .raw()
            .map(|row| {
                row.map(|cols| cols.into_iter().map(from_js).collect())
                    .map_err(fail)
            })
            .collect()
    }
}

impl DurableObject for LogObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            schema: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: LogCommand = match serde_json::from_str(&req.text().await?) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("bad command: {e}"), 400),
        };
        // Every statement below runs without an `await` between them: the runtime commits
        // them together (a row and its counters are one write).
        let db = Sql(self.state.storage().sql());
        if !self.schema.get() {
            if let Err(e) = sql::create_schema(&db) {
                return Response::error(e.to_string(), 500);
            }
            self.schema.set(true);
        }
        match sql::run(&db, command) {
            Ok(reply) => Response::from_json(&reply),
            Err(e) => Response::error(e.to_string(), 500),
        }
    }
}

/// The channel of [`DoLogStore`]: commands to one `LogObject` instance.
#[derive(Debug)]
pub struct DoLogs {
    namespace: ObjectNamespace,
    name: String,
    /// Made on first use: most invocations never log (a model list, an admin page).
    object: OnceCell<Object>,
    subrequests: Subrequests,
}

/// The SDK's `LogStore` in a `LogObject` instance.
pub type DoLogStore = CommandLogStore<DoLogs>;

/// The log store in the instance `name` of the `LOGS` namespace, counting into
/// `subrequests`.
pub fn store(
    namespace: ObjectNamespace,
    name: impl Into<String>,
    subrequests: Subrequests,
) -> DoLogStore {
    CommandLogStore(DoLogs {
        namespace,
        name: name.into(),
        object: OnceCell::new(),
        subrequests,
    })
}

impl DoLogs {
    fn object(&self) -> std::result::Result<&Object, StorageError> {
        if let Some(object) = self.object.get() {
            return Ok(object);
        }
        let object = self
            .namespace
            .id_from_name(&self.name)
            .and_then(|id| id.get_stub())
            .map(Object::from)
            .map_err(|e| StorageError(format!("log object: {e}")))?;
        Ok(self.object.get_or_init(|| object))
    }
}

impl LogCommands for DoLogs {
    fn send(
        &self,
        command: LogCommand,
    ) -> BoxFuture<'_, std::result::Result<LogReply, StorageError>> {
        boxed(async move { call(self.object()?, LOG_URL, &command, &self.subrequests).await })
    }
}
