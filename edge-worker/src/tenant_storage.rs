//! The SDK's tenant store (`flow2api_sdk::tenants`) over `StoreObject` instances: the key
//! records in the one named `api-keys`, and each tenant's counters and leases in one of its
//! own, `tenant-{id}`, so that a request of one key never waits on another key's object and
//! nothing on the request path writes to KV. Which key goes where is the SDK's
//! [`shard_of`]; this adapter only follows it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use flow2api_sdk::seams::{
    boxed, BoxFuture, Bytes, Capabilities, Expect, ListPage, Storage, StorageError,
};
use flow2api_sdk::tenants::shard_of;
use worker::ObjectNamespace;

use crate::do_storage::DoStorage;
use crate::fetch_http::Subrequests;

/// The `StoreObject` instance that holds the key records.
const API_KEYS: &str = "api-keys";

/// [`Storage`] spread over the `api-keys` object and one object per tenant.
#[derive(Debug)]
pub struct TenantStorage {
    store: ObjectNamespace,
    keys: Rc<DoStorage>,
    /// The tenants' objects this invocation has talked to.
    shards: RefCell<HashMap<String, Rc<DoStorage>>>,
    subrequests: Subrequests,
}

impl TenantStorage {
    /// The tenant store in the `STORE` namespace, counting into `subrequests`.
    pub fn new(store: ObjectNamespace, subrequests: Subrequests) -> Self {
        Self {
            keys: Rc::new(DoStorage::new(store.clone(), API_KEYS, subrequests.clone())),
            store,
            shards: RefCell::new(HashMap::new()),
            subrequests,
        }
    }

    /// The object a key (or a listing prefix) belongs in.
    fn route(&self, key: &str) -> Rc<DoStorage> {
        let Some(id) = shard_of(key) else {
            return self.keys.clone();
        };
        self.shards
            .borrow_mut()
            .entry(id.to_owned())
            .or_insert_with(|| {
                Rc::new(DoStorage::new(
                    self.store.clone(),
                    format!("tenant-{id}"),
                    self.subrequests.clone(),
                ))
            })
            .clone()
    }
}

impl Storage for TenantStorage {
    /// Each object serialises its commands, and no operation of the SDK's spans two.
    fn capabilities(&self) -> Capabilities {
        Capabilities::strong()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        let target = self.route(key);
        boxed(async move { target.get(key).await })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        let target = self.route(key);
        boxed(async move { target.put(key, value, ttl).await })
    }

    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        let target = self.route(key);
        boxed(async move { target.put_if(key, value, ttl, expect).await })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        let target = self.route(key);
        boxed(async move { target.delete(key).await })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        let target = self.route(prefix);
        boxed(async move { target.list(prefix, limit, cursor).await })
    }

    /// One call when every key is in one object (always, for the SDK's reads); key by key
    /// otherwise.
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StorageError>> {
        boxed(async move {
            let first = keys.first().map(|k| shard_of(k));
            if keys.iter().all(|k| Some(shard_of(k)) == first) {
                let Some(k) = keys.first() else {
                    return Ok(Vec::new());
                };
                return self.route(k).get_many(keys).await;
            }
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(self.route(k).get(k).await?);
            }
            Ok(out)
        })
    }
}
