//! The admin audit list: every change made through the admin API (settings, the original's
//! config routes, accounts) as one bounded record in the strongly consistent store, newest
//! last, readable at `GET /api/audit` (newest first). An entry says what changed, by route and
//! by setting name or account id, and when; never a value, so no secret is ever in it.

use http::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::seams::{Bytes, Expect, Storage, StorageError};
use crate::util;

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// The key of the audit record in the consistent store.
pub const AUDIT_KEY: &str = "audit:admin";
/// Entries kept; older ones are dropped (the record stays well under a Durable Object value's
/// size limit).
pub const AUDIT_CAPACITY: usize = 200;
/// Attempts at appending when other writers keep changing the record.
const APPEND_ATTEMPTS: usize = 5;

/// What a handler adds to its response so that the audit entry names what changed: the
/// settings (names only) and the account. Taken off the response before it is sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote {
    /// The settings changed, by name.
    pub(crate) settings: Vec<String>,
    /// The account changed, by id.
    pub(crate) account: Option<String>,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// The request that made it, e.g. `POST /api/config/generation`.
    pub action: String,
    /// The settings it changed, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<String>,
    /// The account it changed, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuditRecord {
    entries: Vec<AuditEntry>,
}

fn parse(record: Option<&[u8]>) -> Result<AuditRecord, StorageError> {
    record.map_or(Ok(AuditRecord::default()), |bytes| {
        serde_json::from_slice(bytes)
            .map_err(|e| StorageError(format!("audit record unreadable: {e}")))
    })
}

/// Appends `entry`, dropping the oldest beyond [`AUDIT_CAPACITY`]; with conditional writes,
/// concurrent appends do not lose each other.
///
/// # Errors
/// Storage failures, or other writers winning every attempt.
pub async fn append(store: &dyn Storage, entry: AuditEntry) -> Result<(), StorageError> {
    for _ in 0..APPEND_ATTEMPTS {
        let previous = store.get(AUDIT_KEY).await?;
        let mut record = parse(previous.as_deref())?;
        record.entries.push(entry.clone());
        let excess = record.entries.len().saturating_sub(AUDIT_CAPACITY);
        record.entries.drain(..excess);
        let bytes = Bytes::from(
            serde_json::to_vec(&record).map_err(|e| StorageError(format!("audit record: {e}")))?,
        );
        if !store.capabilities().conditional_writes {
            return store.put(AUDIT_KEY, bytes, None).await;
        }
        let expect = previous.map_or(Expect::Absent, Expect::Value);
        if store.put_if(AUDIT_KEY, bytes, None, expect).await? {
            return Ok(());
        }
    }
    Err(StorageError(
        "audit record: too many concurrent writers".into(),
    ))
}

/// The entries, newest first, at most `limit`.
///
/// # Errors
/// Storage failures.
pub async fn recent(store: &dyn Storage, limit: usize) -> Result<Vec<AuditEntry>, StorageError> {
    let record = parse(store.get(AUDIT_KEY).await?.as_deref())?;
    Ok(record.entries.into_iter().rev().take(limit).collect())
}

/// Admin requests that change nothing, though not `GET`s.
fn changes_nothing(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["logout"]
            | ["admin", "logout"]
            | ["tokens", "st2at"]
            | ["captcha", "score-test"]
            | ["proxy", "test"]
    )
}

impl AppInner {
    /// Records the change a successful admin request made (see the module doc); a failure to
    /// record does not undo or fail the change, which is done.
    pub(super) async fn audited(
        &self,
        method: &Method,
        segments: &[&str],
        result: Result<Response<Body>, ApiError>,
    ) -> Result<Response<Body>, ApiError> {
        let mut resp = result?;
        let note = resp.extensions_mut().remove::<AuditNote>();
        if method == Method::GET || !resp.status().is_success() || changes_nothing(segments) {
            return Ok(resp);
        }
        let mut note = note.unwrap_or_default();
        // An account's own routes name it in the path.
        if let ["tokens", id, ..] = segments {
            if !matches!(*id, "import" | "export" | "refresh-due") {
                note.account.get_or_insert_with(|| (*id).to_owned());
            }
        }
        let entry = AuditEntry {
            at_ms: self.deps.clock.now_ms(),
            action: format!("{method} /api/{}", segments.join("/")),
            settings: note.settings,
            account: note.account,
        };
        let _ = append(&*self.deps.sessions, entry).await;
        Ok(resp)
    }

    /// `GET /api/audit?limit=` (default 50, at most [`AUDIT_CAPACITY`]), newest first.
    pub(super) async fn audit_list(&self, uri: &http::Uri) -> Result<Response<Body>, ApiError> {
        let mut limit = 50;
        for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            if k == "limit" {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=AUDIT_CAPACITY).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("`limit` must be 1–{AUDIT_CAPACITY}."))
                            .param("limit")
                    })?;
            }
        }
        let entries = recent(&*self.deps.sessions, limit)
            .await
            .map_err(|_| ApiError::storage_unavailable())?;
        let entries: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "at": util::format_rfc3339(e.at_ms),
                    "action": e.action,
                    "settings": e.settings,
                    "account": e.account,
                })
            })
            .collect();
        Ok(json_response(
            StatusCode::OK,
            Bytes::from(json!({"success": true, "entries": entries}).to_string()),
        ))
    }
}

/// `resp` with `note` attached for the audit entry.
pub(crate) fn noted(mut resp: Response<Body>, note: AuditNote) -> Response<Body> {
    resp.extensions_mut().insert(note);
    resp
}
