//! The typed messages between the Worker and its Durable Objects, the one step each object
//! takes per message, and the two small conversions the adapters apply (KV TTLs, error texts).
//! Plain Rust, so it builds and is tested on the host; the objects and their clients (wasm32
//! only) just move these values over `fetch` and persist what the step returns.
//!
//! The rules themselves live in the SDK ([`SlotTable`]); the store's only rule is "expired
//! entries read as absent".

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use flow2api_sdk::pool::slots::SlotTable;
use flow2api_sdk::seams::SlotRequest;
use serde::{Deserialize, Serialize};

/// The made-up URL the Worker sends Durable Object commands to (the host is ignored).
pub const ACCOUNT_URL: &str = "https://account/cmd";
/// The made-up URL of [`StoreCommand`]s.
pub const STORE_URL: &str = "https://store/cmd";

// ---------------------------------------------------------------------------------------------
// AccountObject: one per account, holding its SlotTable.
// ---------------------------------------------------------------------------------------------

/// A command to an account's Durable Object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum AccountCommand {
    /// Take a slot under `request`'s limit, naming the lease `lease_id`.
    Acquire {
        /// Kind, limit and lease length.
        request: SlotRequest,
        /// The id the lease gets (chosen by the caller, so a retried command is recognisable).
        lease_id: String,
    },
    /// Give a slot back.
    Release {
        /// The lease to drop.
        lease_id: String,
    },
    /// Count the live slots.
    InFlight,
}

/// The answer to an [`AccountCommand`], one variant per command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum AccountReply {
    /// `Some(lease_id)` when a slot was taken, `None` when the account is full.
    Acquired {
        /// The lease, if taken.
        lease_id: Option<String>,
    },
    /// Whether the lease was held.
    Released {
        /// `false` when it had already been released or had lapsed.
        released: bool,
    },
    /// Live slots of every kind.
    InFlight {
        /// The count.
        count: u32,
    },
}

impl AccountCommand {
    /// Applies the command to `table` at `now_ms`. Returns the reply and whether `table`
    /// changed (and so must be persisted).
    pub fn apply(self, table: &mut SlotTable, now_ms: u64) -> (AccountReply, bool) {
        let before = table.clone();
        let reply = match self {
            Self::Acquire { request, lease_id } => AccountReply::Acquired {
                lease_id: table.acquire(request, now_ms, lease_id),
            },
            Self::Release { lease_id } => AccountReply::Released {
                released: table.release(&lease_id),
            },
            Self::InFlight => {
                table.sweep(now_ms);
                AccountReply::InFlight {
                    count: table.held_total(now_ms),
                }
            }
        };
        let changed = *table != before;
        (reply, changed)
    }
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
    /// List the live keys that start with `prefix`, in key order.
    List {
        /// The prefix.
        prefix: String,
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
    /// Live keys in order.
    Keys {
        /// The keys.
        keys: Vec<String>,
    },
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
    secs.max(60)
}

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
    use flow2api_sdk::seams::SlotKind;
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

    #[test]
    fn account_commands_drive_the_slot_table() {
        let mut t = SlotTable::default();
        let (r, changed) = acquire("a", 1).apply(&mut t, 0);
        assert_eq!(
            r,
            AccountReply::Acquired {
                lease_id: Some("a".into())
            }
        );
        assert!(changed);
        let (r, changed) = acquire("b", 1).apply(&mut t, 10);
        assert_eq!(r, AccountReply::Acquired { lease_id: None });
        assert!(!changed);
        assert_eq!(
            AccountCommand::InFlight.apply(&mut t, 10),
            (AccountReply::InFlight { count: 1 }, false)
        );
        let release = AccountCommand::Release {
            lease_id: "a".into(),
        };
        assert_eq!(
            release.clone().apply(&mut t, 20),
            (AccountReply::Released { released: true }, true)
        );
        assert_eq!(
            release.apply(&mut t, 20),
            (AccountReply::Released { released: false }, false)
        );
        // A lapsed lease is swept (and persisted) by the next count.
        acquire("c", 1).apply(&mut t, 30);
        assert_eq!(
            AccountCommand::InFlight.apply(&mut t, 5000),
            (AccountReply::InFlight { count: 0 }, true)
        );
    }

    #[test]
    fn commands_have_a_stable_json_shape() {
        let json = serde_json::to_string(&acquire("x", 2)).unwrap();
        assert_eq!(
            json,
            r#"{"cmd":"acquire","request":{"kind":"image","limit":2,"lease_ms":1000},"lease_id":"x"}"#
        );
        let cmd: AccountCommand = serde_json::from_str(r#"{"cmd":"in_flight"}"#).unwrap();
        assert!(matches!(cmd, AccountCommand::InFlight));
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
