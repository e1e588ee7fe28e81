//! [`Storage`] over a Workers KV namespace: read-mostly records (accounts) and media.

use std::time::Duration;

use flow2api_sdk::seams::{
    boxed, clamp_list_limit, BoxFuture, Bytes, Capabilities, ListPage, Storage, StorageError,
};
use worker::kv::{KvError, KvStore};

use crate::protocol::{kv_ttl_secs, KV_MIN_TTL};

/// A KV namespace as [`Storage`]. KV is eventually consistent (about 60 s across locations),
/// keeps nothing shorter than 60 s (shorter TTLs are rounded up), has no conditional write,
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
    fn capabilities(&self) -> Capabilities {
        Capabilities::eventual().with_min_ttl(KV_MIN_TTL)
    }

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

    /// KV's own list is paged the same way (at most 1,000 keys a call, with a cursor), so
    /// one page here is one KV list call.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        boxed(async move {
            let limit = clamp_list_limit(limit) as u64;
            let mut list = self.kv.list().prefix(prefix.to_owned()).limit(limit);
            if let Some(c) = cursor {
                list = list.cursor(c.to_owned());
            }
            let page = list.execute().await.map_err(|e| kv_error("list", e))?;
            let keys = page.keys.into_iter().map(|k| k.name).collect();
            let cursor = page.cursor.filter(|c| !page.list_complete && !c.is_empty());
            Ok(ListPage { keys, cursor })
        })
    }
}
