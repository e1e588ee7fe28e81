//! `StoreObject`: a small strongly consistent key-value store in one Durable Object instance
//! per name (admin sessions live in the one named `admin-sessions`). Entries carry their
//! expiry and read as absent once it passes; expired entries are deleted when met.

use worker::durable::ListOptions;
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::protocol::{list_page, put_if_matches, StoreCommand, StoreReply, StoredEntry, Value};

/// The Durable Object class bound as `STORE`.
#[durable_object]
pub struct StoreObject {
    state: State,
}

impl std::fmt::Debug for StoreObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreObject").finish_non_exhaustive()
    }
}

fn decode(json: &str) -> Option<StoredEntry> {
    serde_json::from_str(json).ok()
}

impl StoreObject {
    async fn get(&self, key: &str, now_ms: u64) -> Result<Option<Value>> {
        let storage = self.state.storage();
        let Some(json) = storage.get::<String>(key).await? else {
            return Ok(None);
        };
        match decode(&json).filter(|e| e.is_live(now_ms)) {
            Some(entry) => Ok(Some(entry.value)),
            None => {
                storage.delete(key).await?;
                Ok(None)
            }
        }
    }

    async fn put(&self, key: &str, entry: &StoredEntry) -> Result<()> {
        let json = serde_json::to_string(entry)?;
        self.state.storage().put(key, json).await
    }

    /// One page of live keys after `cursor` (see [`list_page`]); expired entries met on the
    /// way are deleted.
    async fn list(
        &self,
        prefix: &str,
        limit: usize,
        cursor: Option<&str>,
        now_ms: u64,
    ) -> Result<(Vec<String>, Option<String>)> {
        let storage = self.state.storage();
        let limit = flow2api_sdk::seams::clamp_list_limit(limit);
        let mut options = ListOptions::new().prefix(prefix).limit(limit + 2);
        if let Some(c) = cursor {
            options = options.start(c);
        }
        let map = storage.list_with_options(options).await?;
        let mut raw = Vec::new();
        map.for_each(&mut |value, key| {
            let Some(key) = key.as_string() else { return };
            raw.push((key, value.as_string().as_deref().and_then(decode)));
        });
        // A JS Map iterates in insertion order, which storage gives in key order.
        raw.sort_by(|a, b| a.0.cmp(&b.0));
        let (live, next, expired) = list_page(raw, cursor, limit, now_ms);
        if !expired.is_empty() {
            storage.delete_multiple(expired).await?;
        }
        Ok((live, next))
    }

    /// Writes `entry` if `key` holds `expect`. Atomic: between the read and the write this
    /// handler awaits only storage, so the object's input gate lets no other event in.
    async fn put_if(
        &self,
        key: &str,
        entry: &StoredEntry,
        expect: Option<&Value>,
        now_ms: u64,
    ) -> Result<bool> {
        let current = self.state.storage().get::<String>(key).await?;
        let current = current.as_deref().and_then(decode);
        if !put_if_matches(current.as_ref(), expect, now_ms) {
            return Ok(false);
        }
        self.put(key, entry).await?;
        Ok(true)
    }
}

impl DurableObject for StoreObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: StoreCommand = match serde_json::from_str(&req.text().await?) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("bad command: {e}"), 400),
        };
        let now_ms = Date::now().as_millis();
        let reply = match command {
            StoreCommand::Get { key } => StoreReply::Value {
                value: self.get(&key, now_ms).await?,
            },
            StoreCommand::Put { key, value, ttl_ms } => {
                self.put(&key, &StoredEntry::new(value, ttl_ms, now_ms))
                    .await?;
                StoreReply::Done
            }
            StoreCommand::Delete { key } => {
                self.state.storage().delete(&key).await?;
                StoreReply::Done
            }
            StoreCommand::List {
                prefix,
                limit,
                cursor,
            } => {
                let (keys, cursor) = self.list(&prefix, limit, cursor.as_deref(), now_ms).await?;
                StoreReply::Keys { keys, cursor }
            }
            StoreCommand::PutIf {
                key,
                value,
                ttl_ms,
                expect,
            } => StoreReply::Written {
                ok: self
                    .put_if(
                        &key,
                        &StoredEntry::new(value, ttl_ms, now_ms),
                        expect.as_ref(),
                        now_ms,
                    )
                    .await?,
            },
            StoreCommand::GetMany { keys } => {
                let mut values = Vec::with_capacity(keys.len());
                for key in &keys {
                    values.push(self.get(key, now_ms).await?);
                }
                StoreReply::Values { values }
            }
        };
        Response::from_json(&reply)
    }
}
