//! The typed messages between the Worker and its Durable Objects, the one step each object
//! takes per message, and the two small conversions the adapters apply (KV TTLs, error texts).
//! Plain Rust, so it builds and is tested on the host; the objects and their clients (wasm32
//! only) just move these values over `fetch` and persist what the step returns.
//!
//! The rules themselves live in the SDK ([`AccountState::apply`]); the store's only rule is
//! "expired entries read as absent".

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use flow2api_sdk::pool::state::{AccountCommand, AccountReply, AccountState};
use serde::{Deserialize, Serialize};

/// The made-up URL the Worker sends Durable Object commands to (the host is ignored).
pub const ACCOUNT_URL: &str = "https://account/cmd";
/// The made-up URL of [`StoreCommand`]s.
pub const STORE_URL: &str = "https://store/cmd";

// ---------------------------------------------------------------------------------------------
// AccountObject: one per account, holding its AccountState.
// ---------------------------------------------------------------------------------------------

/// The key under which an `AccountObject` stores its [`AccountState`] (as JSON).
pub const ACCOUNT_STATE_KEY: &str = "state";

/// A request body that is not an [`AccountCommand`]. Its message names the place and class
/// of the error only: the body may carry an access token, which serde would quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCommand(pub String);

impl std::fmt::Display for BadCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decodes an [`AccountCommand`] from a request body.
///
/// # Errors
/// [`BadCommand`] when the body is not one.
pub fn decode_account_command(body: &str) -> Result<AccountCommand, BadCommand> {
    serde_json::from_str(body).map_err(|e| {
        BadCommand(format!(
            "bad account command ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// An account's state as stored; absent or unreadable (an older shape) is a fresh state,
/// which only forgets leases, a token and a cooldown that the next requests rebuild.
pub fn decode_account_state(json: Option<&str>) -> AccountState {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// What an `AccountObject` does with one command: apply it to `state` at `now_ms` (the
/// rule is the SDK's [`AccountState::apply`]); `persist` is the new state's JSON when it
/// changed.
pub fn apply_account_command(
    state: &mut AccountState,
    command: AccountCommand,
    now_ms: u64,
) -> Result<(AccountReply, Option<String>), serde_json::Error> {
    let (reply, changed) = state.apply(command, now_ms);
    let persist = if changed {
        Some(serde_json::to_string(state)?)
    } else {
        None
    };
    Ok((reply, persist))
}

// ---------------------------------------------------------------------------------------------
// StoreObject: a small strongly consistent key-value store.
// ---------------------------------------------------------------------------------------------

/// A value as it travels in JSON and sits in Durable Object storage: text when it is UTF-8
/// (the SDK stores JSON, so nearly always), base64 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// UTF-8 text.
    Text(String),
    /// Any bytes, base64 (standard alphabet, padded).
    Base64(String),
}

impl Value {
    /// Encodes bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Self::Text(s.to_owned()),
            Err(_) => Self::Base64(STANDARD.encode(bytes)),
        }
    }

    /// Decodes to bytes; `None` for malformed base64.
    pub fn into_bytes(self) -> Option<Bytes> {
        match self {
            Self::Text(s) => Some(Bytes::from(s)),
            Self::Base64(b) => STANDARD.decode(b).ok().map(Bytes::from),
        }
    }
}

/// A command to a `StoreObject` instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum StoreCommand {
    /// Read one key.
    Get {
        /// The key.
        key: String,
    },
    /// Write one key, optionally expiring after `ttl_ms`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// Lifetime in milliseconds; `None` = forever.
        ttl_ms: Option<u64>,
    },
    /// Delete one key.
    Delete {
        /// The key.
        key: String,
    },
    /// One page of the live keys that start with `prefix`, in key order ([`list_page`]).
    List {
        /// The prefix.
        prefix: String,
        /// At most this many keys (clamped to the SDK's `MAX_LIST_LIMIT`).
        limit: usize,
        /// The previous page's cursor (its last key).
        #[serde(default)]
        cursor: Option<String>,
    },
    /// Write one key only if it holds `expect` (`None`: nothing live), atomically.
    PutIf {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// Lifetime in milliseconds; `None` = forever.
        ttl_ms: Option<u64>,
        /// The value the key must hold; `None` = absent.
        expect: Option<Value>,
    },
    /// Read several keys at once.
    GetMany {
        /// The keys.
        keys: Vec<String>,
    },
}

/// The answer to a [`StoreCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum StoreReply {
    /// The value, `None` when absent or expired.
    Value {
        /// The value.
        value: Option<Value>,
    },
    /// The write or delete is durable.
    Done,
    /// One page of live keys in order.
    Keys {
        /// The keys.
        keys: Vec<String>,
        /// Where the next page starts; `None` on the last page.
        #[serde(default)]
        cursor: Option<String>,
    },
    /// Whether a conditional write happened.
    Written {
        /// It did.
        ok: bool,
    },
    /// Values in the order asked, `None` when absent or expired.
    Values {
        /// The values.
        values: Vec<Option<Value>>,
    },
}

// ---------------------------------------------------------------------------------------------
// JobObject: one per video job, driving it with alarms.
// ---------------------------------------------------------------------------------------------

/// The made-up URL of [`JobCommand`]s.
pub const JOB_URL: &str = "https://job/cmd";

/// The key under which a `JobObject` keeps the id of its job.
pub const JOB_ID_KEY: &str = "job";

/// The key under which a `JobObject` counts consecutive failed steps.
pub const JOB_FAILURES_KEY: &str = "failures";

/// A command to a `JobObject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum JobCommand {
    /// Run the job's next step after `delay_ms` (its alarm).
    Schedule {
        /// The job id.
        id: String,
        /// Delay in milliseconds.
        delay_ms: u64,
    },
    /// Stream the job's records, one JSON line each, as its steps change them past
    /// `revision`; the stream ends after the record that finishes the job.
    Follow {
        /// The revision the caller has seen.
        revision: u64,
    },
}

/// The answer to [`JobCommand::Schedule`] (a follow is answered by a stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum JobReply {
    /// The alarm is set.
    Scheduled,
}

/// Splits newline-delimited JSON arriving in arbitrary chunks into records.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk; returns the complete lines it finished, without their newlines.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=i).collect();
            line.pop();
            if !line.is_empty() {
                lines.push(line);
            }
        }
        lines
    }
}

/// One entry as stored in the object's storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// The value.
    pub value: Value,
    /// Unix ms after which it reads as absent; `None` = never.
    pub expires_ms: Option<u64>,
}

impl StoredEntry {
    /// An entry written at `now_ms` living `ttl_ms`.
    pub fn new(value: Value, ttl_ms: Option<u64>, now_ms: u64) -> Self {
        Self {
            value,
            expires_ms: ttl_ms.map(|t| now_ms.saturating_add(t)),
        }
    }

    /// Whether the entry still reads at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|e| e > now_ms)
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions the adapters apply.
// ---------------------------------------------------------------------------------------------

/// KV's `expirationTtl` in seconds for a [`std::time::Duration`]: rounded up, and at least 60
/// (KV rejects less).
pub fn kv_ttl_secs(ttl: std::time::Duration) -> u64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    secs.max(KV_MIN_TTL.as_secs())
}

/// What a `StoreObject` answers to a [`StoreCommand::List`], from the raw entries its storage
/// listed in key order starting at the cursor (inclusive) or the prefix, `limit + 2` of them
/// at most: the page's live keys, the cursor of the next page, and the expired keys to delete.
/// The cursor is the last key the page covered, live or not, so that paging always moves on.
pub fn list_page(
    raw: Vec<(String, Option<StoredEntry>)>,
    cursor: Option<&str>,
    limit: usize,
    now_ms: u64,
) -> (Vec<String>, Option<String>, Vec<String>) {
    let limit = flow2api_sdk::seams::clamp_list_limit(limit);
    let mut rest = raw
        .into_iter()
        .filter(|(k, _)| Some(k.as_str()) != cursor)
        .peekable();
    let (mut live, mut expired) = (Vec::new(), Vec::new());
    let mut last = None;
    for (key, entry) in rest.by_ref().take(limit) {
        last = Some(key.clone());
        match entry {
            Some(e) if e.is_live(now_ms) => live.push(key),
            _ => expired.push(key),
        }
    }
    let next = rest.peek().is_some().then_some(last).flatten();
    (live, next, expired)
}

/// Whether a [`StoreCommand::PutIf`] writes: the current entry (live or not) matches `expect`.
pub fn put_if_matches(current: Option<&StoredEntry>, expect: Option<&Value>, now_ms: u64) -> bool {
    let live = current.filter(|e| e.is_live(now_ms)).map(|e| &e.value);
    match (expect, live) {
        (None, None) => true,
        (Some(want), Some(have)) => want == have,
        _ => false,
    }
}

/// KV's shortest expiry: a shorter TTL is rounded up to it by [`kv_ttl_secs`].
pub const KV_MIN_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A runtime error message fit for a [`flow2api_sdk::seams::TransportError`]: URLs (which may
/// carry keys in their query) replaced by `<url>`, and at most 200 characters.
pub fn redact(message: &str) -> String {
    let words: Vec<&str> = message
        .split_whitespace()
        .map(|w| if w.contains("://") { "<url>" } else { w })
        .collect();
    words.join(" ").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow2api_sdk::seams::{SlotKind, SlotRequest};
    use std::time::Duration;

    fn acquire(id: &str, limit: u32) -> AccountCommand {
        AccountCommand::Acquire {
            request: SlotRequest {
                kind: SlotKind::Image,
                limit: Some(limit),
                lease_ms: 1000,
            },
            lease_id: id.into(),
        }
    }

    /// What the object does per request: body in, reply out, state persisted only on change.
    fn step(stored: &mut Option<String>, body: &str, now_ms: u64) -> AccountReply {
        let mut state = decode_account_state(stored.as_deref());
        let command = decode_account_command(body).unwrap();
        let (reply, persist) = apply_account_command(&mut state, command, now_ms).unwrap();
        if let Some(json) = persist {
            *stored = Some(json);
        }
        // What was persisted is what stays in memory.
        assert_eq!(decode_account_state(stored.as_deref()), state);
        reply
    }

    #[test]
    fn the_object_applies_commands_and_persists_changes() {
        let mut stored = None;
        let body = |c: &AccountCommand| serde_json::to_string(c).unwrap();

        let r = step(&mut stored, &body(&acquire("a", 1)), 0);
        assert!(r.ok);
        assert_eq!(r.status.image_in_flight, 1);
        let after_acquire = stored.clone();
        assert!(after_acquire.is_some());

        // Full: refused, nothing to persist.
        let r = step(&mut stored, &body(&acquire("b", 1)), 10);
        assert!(!r.ok);
        assert_eq!(stored, after_acquire);
        let r = step(&mut stored, r#"{"op":"status"}"#, 10);
        assert_eq!(r.status.image_in_flight, 1);
        assert_eq!(stored, after_acquire);

        let release = AccountCommand::Release {
            lease_id: "a".into(),
        };
        assert!(step(&mut stored, &body(&release), 20).ok);
        assert_ne!(stored, after_acquire);
        assert!(!step(&mut stored, &body(&release), 20).ok);

        // A lapsed lease is swept, and the sweep persisted, by the next command.
        step(&mut stored, &body(&acquire("c", 1)), 30);
        let before = stored.clone();
        let r = step(&mut stored, r#"{"op":"status"}"#, 5000);
        assert_eq!(r.status.image_in_flight, 0);
        assert_ne!(stored, before);
    }

    #[test]
    fn bad_commands_do_not_echo_the_body() {
        let body = r#"{"op":"finish_refresh","token":{"at":"ya29.secret","expires_ms":"soon"}}"#;
        let err = decode_account_command(body).unwrap_err();
        assert!(!err.to_string().contains("ya29"), "{err}");
        assert!(decode_account_command(r#"{"op":"explode"}"#).is_err());
        assert_eq!(
            decode_account_state(Some("not json")),
            AccountState::default()
        );
    }

    #[test]
    fn commands_have_a_stable_json_shape() {
        let json = serde_json::to_string(&acquire("x", 2)).unwrap();
        assert_eq!(
            json,
            r#"{"op":"acquire","request":{"kind":"image","limit":2,"lease_ms":1000},"lease_id":"x"}"#
        );
        let mut state = AccountState::default();
        let (reply, _) = apply_account_command(&mut state, acquire("x", 2), 0).unwrap();
        let back: AccountReply =
            serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
        assert_eq!(back, reply);
        let put = StoreCommand::Put {
            key: "k".into(),
            value: Value::Text("v".into()),
            ttl_ms: Some(5),
        };
        assert_eq!(
            serde_json::to_string(&put).unwrap(),
            r#"{"cmd":"put","key":"k","value":{"text":"v"},"ttl_ms":5}"#
        );
        let reply: StoreReply = serde_json::from_str(r#"{"reply":"done"}"#).unwrap();
        assert_eq!(reply, StoreReply::Done);
        let schedule = JobCommand::Schedule {
            id: "video_1".into(),
            delay_ms: 0,
        };
        assert_eq!(
            serde_json::to_string(&schedule).unwrap(),
            r#"{"cmd":"schedule","id":"video_1","delay_ms":0}"#
        );
        let many = StoreCommand::GetMany {
            keys: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            serde_json::to_string(&many).unwrap(),
            r#"{"cmd":"get_many","keys":["a","b"]}"#
        );
        let values: StoreReply =
            serde_json::from_str(r#"{"reply":"values","values":[{"text":"v"},null]}"#).unwrap();
        assert_eq!(
            values,
            StoreReply::Values {
                values: vec![Some(Value::Text("v".into())), None]
            }
        );
        let reply: JobReply = serde_json::from_str(r#"{"reply":"scheduled"}"#).unwrap();
        assert_eq!(reply, JobReply::Scheduled);
    }

    #[test]
    fn follow_lines_split_across_chunks() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"{\"a\":").is_empty());
        assert_eq!(s.push(b"1}\n{\"b\"").as_slice(), [b"{\"a\":1}".to_vec()]);
        assert_eq!(
            s.push(b":2}\n\n{}\n"),
            vec![b"{\"b\":2}".to_vec(), b"{}".to_vec()]
        );
    }

    #[test]
    fn values_round_trip_text_and_binary() {
        let text = Value::from_bytes(b"{\"a\":1}");
        assert_eq!(text, Value::Text("{\"a\":1}".into()));
        assert_eq!(text.into_bytes().unwrap(), Bytes::from_static(b"{\"a\":1}"));
        let bin = Value::from_bytes(&[0xff, 0x00, 0x80]);
        assert_eq!(bin, Value::Base64("/wCA".into()));
        assert_eq!(bin.into_bytes().unwrap().as_ref(), &[0xff, 0x00, 0x80]);
        assert!(Value::Base64("***".into()).into_bytes().is_none());
    }

    #[test]
    fn entries_expire_on_read() {
        let e = StoredEntry::new(Value::Text("v".into()), Some(100), 1000);
        assert!(e.is_live(1099));
        assert!(!e.is_live(1100));
        assert!(StoredEntry::new(Value::Text("v".into()), None, 0).is_live(u64::MAX));
    }

    fn entry(text: &str, expires_ms: Option<u64>) -> Option<StoredEntry> {
        Some(StoredEntry {
            value: Value::Text(text.into()),
            expires_ms,
        })
    }

    #[test]
    fn list_pages_skip_the_cursor_and_expired_keys() {
        let raw = |keys: &[&str]| -> Vec<(String, Option<StoredEntry>)> {
            keys.iter()
                .map(|k| {
                    let e = if k.ends_with('x') {
                        entry("v", Some(5))
                    } else {
                        entry("v", None)
                    };
                    ((*k).to_owned(), e)
                })
                .collect()
        };
        // First page of 2 out of a, bx, c, d: the expired bx counts toward the page.
        let (keys, cursor, expired) = list_page(raw(&["a", "bx", "c", "d"]), None, 2, 10);
        assert_eq!((keys, cursor.as_deref()), (vec!["a".into()], Some("bx")));
        assert_eq!(expired, ["bx"]);
        // From the cursor (inclusive in storage, skipped here).
        let (keys, cursor, _) = list_page(raw(&["bx", "c", "d"]), Some("bx"), 2, 10);
        assert_eq!((keys, cursor), (vec!["c".into(), "d".into()], None));
        let (keys, cursor, _) = list_page(Vec::new(), Some("d"), 2, 10);
        assert_eq!((keys.len(), cursor), (0, None));
    }

    #[test]
    fn conditional_writes_compare_live_values() {
        let v = Value::Text("v".into());
        assert!(put_if_matches(None, None, 0));
        assert!(put_if_matches(entry("v", Some(5)).as_ref(), None, 10));
        assert!(!put_if_matches(entry("v", None).as_ref(), None, 10));
        assert!(put_if_matches(entry("v", None).as_ref(), Some(&v), 10));
        assert!(!put_if_matches(entry("w", None).as_ref(), Some(&v), 10));
        assert!(!put_if_matches(entry("v", Some(5)).as_ref(), Some(&v), 10));
        assert!(!put_if_matches(None, Some(&v), 10));
    }

    #[test]
    fn kv_ttls_round_up_to_kvs_minimum() {
        assert_eq!(kv_ttl_secs(Duration::from_secs(1)), 60);
        assert_eq!(kv_ttl_secs(Duration::from_millis(60_001)), 61);
        assert_eq!(kv_ttl_secs(Duration::from_secs(86_400)), 86_400);
    }

    #[test]
    fn redaction_drops_urls() {
        assert_eq!(
            redact("TypeError: fetch failed for https://x.test/a?key=secret now"),
            "TypeError: fetch failed for <url> now"
        );
        assert_eq!(redact(&"a".repeat(500)).len(), 200);
    }
}
