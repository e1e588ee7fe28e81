//! A [`Storage`] decorator for tests: counts what reaches the backend and, optionally, yields
//! to other tasks before every operation, so that racing writers really interleave between
//! their read and their write. Re-exported as `testing::ProbeStorage`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::seams::{
    boxed, BoxFuture, Bytes, Capabilities, Expect, ListPage, Storage, StorageError,
};

/// Counts the operations that reach `inner`; with [`ProbeStorage::yielding`], each one first
/// gives other tasks a turn.
pub struct ProbeStorage {
    inner: Arc<dyn Storage>,
    yielding: bool,
    gets: AtomicUsize,
    lists: AtomicUsize,
    writes: AtomicUsize,
}

impl std::fmt::Debug for ProbeStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeStorage")
            .field("yielding", &self.yielding)
            .field("gets", &self.gets())
            .field("lists", &self.lists())
            .field("writes", &self.writes())
            .finish_non_exhaustive()
    }
}

impl ProbeStorage {
    /// Counts the operations on `inner`.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Self {
            inner,
            yielding: false,
            gets: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
        }
    }

    /// The same, yielding once before every operation.
    pub fn yielding(inner: Arc<dyn Storage>) -> Self {
        Self {
            yielding: true,
            ..Self::new(inner)
        }
    }

    /// The backend, to change behind the probe's back.
    pub fn inner(&self) -> &dyn Storage {
        &*self.inner
    }

    /// `get` and `get_many` calls.
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    /// `list` calls (one per page).
    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }

    /// `put`, `put_if` and `delete` calls.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every call.
    pub fn ops(&self) -> usize {
        self.gets() + self.lists() + self.writes()
    }

    /// Counts one call in `counter`, then yields if asked to.
    fn enter(&self, counter: &AtomicUsize) -> YieldOnce {
        counter.fetch_add(1, Ordering::SeqCst);
        YieldOnce(!self.yielding)
    }
}

/// Pending once (after waking itself), then ready: a turn for every other ready task, on any
/// executor.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Storage for ProbeStorage {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        let turn = self.enter(&self.gets);
        boxed(async move {
            turn.await;
            self.inner.get(key).await
        })
    }
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StorageError>> {
        let turn = self.enter(&self.gets);
        boxed(async move {
            turn.await;
            self.inner.get_many(keys).await
        })
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        let turn = self.enter(&self.writes);
        boxed(async move {
            turn.await;
            self.inner.put(key, value, ttl).await
        })
    }
    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        let turn = self.enter(&self.writes);
        boxed(async move {
            turn.await;
            self.inner.put_if(key, value, ttl, expect).await
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        let turn = self.enter(&self.writes);
        boxed(async move {
            turn.await;
            self.inner.delete(key).await
        })
    }
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        let turn = self.enter(&self.lists);
        boxed(async move {
            turn.await;
            self.inner.list(prefix, limit, cursor).await
        })
    }
}
