//! [`Storage`] over a Workers KV namespace: read-mostly records (accounts) and media.

use std::time::Duration;

use flow2api_sdk::seams::{boxed, BoxFuture, Bytes, Storage, StorageError};
use worker::kv::{KvError, KvStore};

use crate::protocol::kv_ttl_secs;

/// A KV namespace as [`Storage`]. KV is eventually consistent (about 60 s across locations)
/// and allows about one write per second per key, so hot state never goes here.
#[derive(Debug, Clone)]
pub struct KvStorage {
    kv: KvStore,
}

impl KvStorage {
    /// Storage over the namespace bound as `kv`.
    pub fn new(kv: KvStore) -> Self {
        Self { kv }
    }
}

fn kv_error(op: &str, e: KvError) -> StorageError {
    StorageError(format!("KV {op}: {e}"))
}

impl Storage for KvStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        boxed(async move {
            let value = self
                .kv
                .get(key)
                .bytes()
                .await
                .map_err(|e| kv_error("get", e))?;
            Ok(value.map(Bytes::from))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let mut put = self
                .kv
                .put_bytes(key, &value)
                .map_err(|e| kv_error("put", e))?;
            if let Some(ttl) = ttl {
                put = put.expiration_ttl(kv_ttl_secs(ttl));
            }
            put.execute().await.map_err(|e| kv_error("put", e))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move { self.kv.delete(key).await.map_err(|e| kv_error("delete", e)) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, StorageError>> {
        boxed(async move {
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let mut list = self.kv.list().prefix(prefix.to_owned());
                if let Some(c) = cursor.take() {
                    list = list.cursor(c);
                }
                let page = list.execute().await.map_err(|e| kv_error("list", e))?;
                keys.extend(page.keys.into_iter().map(|k| k.name));
                match page.cursor.filter(|c| !page.list_complete && !c.is_empty()) {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            // KV lists in UTF-8 byte order already; sorting keeps the contract explicit.
            keys.sort();
            Ok(keys)
        })
    }
}
