//! The SDK's [`Storage`] over one named `StoreObject` instance: strongly consistent records
//! every isolate sees at once (admin sessions).

use std::cell::OnceCell;
use std::time::Duration;

use flow2api_sdk::seams::{
    boxed, BoxFuture, Bytes, Capabilities, Expect, ListPage, Storage, StorageError,
};
use worker::ObjectNamespace;

use crate::do_client::{call, Object};
use crate::fetch_http::Subrequests;
use crate::protocol::{StoreCommand, StoreReply, Value, STORE_URL};

/// [`Storage`] in the `StoreObject` instance of a given name.
#[derive(Debug)]
pub struct DoStorage {
    store: ObjectNamespace,
    name: String,
    /// Made on first use: most invocations (an image) never touch this store, and naming an
    /// object costs a hash and two calls into the runtime.
    object: OnceCell<Object>,
    subrequests: Subrequests,
}

impl DoStorage {
    /// Storage in the instance `name` of the `STORE` namespace, counting into `subrequests`.
    pub fn new(store: ObjectNamespace, name: impl Into<String>, subrequests: Subrequests) -> Self {
        Self {
            store,
            name: name.into(),
            object: OnceCell::new(),
            subrequests,
        }
    }

    fn object(&self) -> Result<&Object, StorageError> {
        if let Some(object) = self.object.get() {
            return Ok(object);
        }
        let object = self
            .store
            .id_from_name(&self.name)
            .and_then(|id| id.get_stub())
            .map(Object::from)
            .map_err(|e| StorageError(format!("store object: {e}")))?;
        Ok(self.object.get_or_init(|| object))
    }

    async fn send(&self, command: StoreCommand) -> Result<StoreReply, StorageError> {
        call(self.object()?, STORE_URL, &command, &self.subrequests).await
    }
}

fn unexpected(_: StoreReply) -> StorageError {
    // Not the reply itself: it may carry stored values.
    StorageError("store object: unexpected reply".into())
}

impl Storage for DoStorage {
    /// One object serialises every command: strong, with atomic conditional writes.
    fn capabilities(&self) -> Capabilities {
        Capabilities::strong()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        boxed(async move {
            let command = StoreCommand::Get {
                key: key.to_owned(),
            };
            match self.send(command).await? {
                StoreReply::Value { value: None } => Ok(None),
                StoreReply::Value { value: Some(v) } => v
                    .into_bytes()
                    .map(Some)
                    .ok_or_else(|| StorageError("store object: malformed base64 value".into())),
                other => Err(unexpected(other)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let command = StoreCommand::Put {
                key: key.to_owned(),
                value: Value::from_bytes(&value),
                ttl_ms: ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            };
            match self.send(command).await? {
                StoreReply::Done => Ok(()),
                other => Err(unexpected(other)),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            match self
                .send(StoreCommand::Delete {
                    key: key.to_owned(),
                })
                .await?
            {
                StoreReply::Done => Ok(()),
                other => Err(unexpected(other)),
            }
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StorageError>> {
        boxed(async move {
            let command = StoreCommand::GetMany {
                keys: keys.to_vec(),
            };
            match self.send(command).await? {
                StoreReply::Values { values } if values.len() == keys.len() => values
                    .into_iter()
                    .map(|v| match v {
                        None => Ok(None),
                        Some(v) => v.into_bytes().map(Some).ok_or_else(|| {
                            StorageError("store object: malformed base64 value".into())
                        }),
                    })
                    .collect(),
                other => Err(unexpected(other)),
            }
        })
    }

    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        boxed(async move {
            let command = StoreCommand::PutIf {
                key: key.to_owned(),
                value: Value::from_bytes(&value),
                ttl_ms: ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                expect: match expect {
                    Expect::Absent => None,
                    Expect::Value(v) => Some(Value::from_bytes(&v)),
                },
            };
            match self.send(command).await? {
                StoreReply::Written { ok } => Ok(ok),
                other => Err(unexpected(other)),
            }
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        boxed(async move {
            let command = StoreCommand::List {
                prefix: prefix.to_owned(),
                limit,
                cursor: cursor.map(str::to_owned),
            };
            match self.send(command).await? {
                StoreReply::Keys { keys, cursor } => Ok(ListPage { keys, cursor }),
                other => Err(unexpected(other)),
            }
        })
    }
}
