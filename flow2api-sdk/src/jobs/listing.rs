//! The jobs' listing index: keys that page jobs oldest- or newest-first, every job (for the
//! root key) or one tenant's, straight from storage, so that a page costs one listing and one
//! batched read however many jobs there are.
//!
//! Keys (empty values, written before the record, with the record's TTL):
//! - `list/a/{id}` and `list/d/{rev}`: every job, oldest and newest first;
//! - `own/{owner}/{id}` and `ownd/{owner}/{rev}`: a tenant's.
//!
//! Job ids are `video_` and hex digits of one length that start with the creation time, so
//! they sort by age; `rev` replaces each digit `d` by `f - d`, which reverses that order.
//! On a store with [`key_cursors`](crate::seams::Capabilities::key_cursors) the listing starts
//! right after the client's `after` id; on others it skips to it.

use std::sync::atomic::Ordering as AtomicOrdering;

use crate::seams::{Bytes, StorageError, MAX_LIST_LIMIT};

use super::{is_job_id, JobRecord, Jobs};

/// Set once the records from before the listing index were indexed.
const BUILT: &str = "list:built";
const ID_PREFIX: &str = "video_";

/// Which end a listing starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// One page of jobs.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// The jobs, in the order asked for (a job deleted or expired since it was indexed is
    /// left out).
    pub jobs: Vec<JobRecord>,
    /// Whether jobs follow this page.
    pub has_more: bool,
}

/// Each hex digit `d` as `f - d`: its own inverse.
fn rev(hex: &str) -> Option<String> {
    hex.chars()
        .map(|c| c.to_digit(16).and_then(|d| char::from_digit(15 - d, 16)))
        .collect()
}

fn prefix(owner: Option<&str>, order: Order) -> String {
    match (owner, order) {
        (None, Order::Asc) => "list/a/".to_owned(),
        (None, Order::Desc) => "list/d/".to_owned(),
        (Some(o), Order::Asc) => format!("own/{o}/"),
        (Some(o), Order::Desc) => format!("ownd/{o}/"),
    }
}

/// What follows the prefix in `id`'s key for `order`.
fn entry(id: &str, order: Order) -> Option<String> {
    let hex = id.strip_prefix(ID_PREFIX)?;
    match order {
        Order::Asc => Some(id.to_owned()),
        Order::Desc => rev(hex),
    }
}

/// The id an entry (the key after its prefix) names.
fn id_of(entry: &str, order: Order) -> Option<String> {
    let id = match order {
        Order::Asc => entry.to_owned(),
        Order::Desc => format!("{ID_PREFIX}{}", rev(entry)?),
    };
    is_job_id(&id).then_some(id)
}

/// Every listing key of a job.
pub(super) fn keys(id: &str, owner: Option<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(4);
    for order in [Order::Asc, Order::Desc] {
        let Some(e) = entry(id, order) else { continue };
        out.push(format!("{}{e}", prefix(None, order)));
        if let Some(o) = owner {
            out.push(format!("{}{e}", prefix(Some(o), order)));
        }
    }
    out
}

impl Jobs {
    /// Writes a job's listing keys (before its record: a key whose record was never stored
    /// is left out of listings, while a stored job missing from them would be lost).
    pub(super) async fn index(&self, record: &JobRecord) -> Result<(), StorageError> {
        for k in keys(&record.id, record.owner.as_deref()) {
            self.store.put(&k, Bytes::new(), Some(self.ttl)).await?;
        }
        Ok(())
    }

    /// Removes a job's listing keys (best effort: a key left behind lists nothing, and
    /// expires with its TTL).
    pub(super) async fn unindex(&self, record: &JobRecord) {
        for k in keys(&record.id, record.owner.as_deref()) {
            let _ = self.store.delete(&k).await;
        }
    }

    /// Whether the listing index was built (and records from before the shards moved):
    /// after the first yes, asked no more in this process.
    pub(super) async fn listing_ready(&self) -> Result<bool, StorageError> {
        if self.listing_built.load(AtomicOrdering::Relaxed) {
            return Ok(true);
        }
        let ready = self.store.get(BUILT).await?.is_some();
        if ready {
            self.listing_built.store(true, AtomicOrdering::Relaxed);
        }
        Ok(ready)
    }

    /// Indexes the records stored before the listing index, and moves those stored before
    /// the shards into them, once.
    pub(super) async fn ensure_listing(&self) -> Result<(), StorageError> {
        if self.listing_ready().await? {
            return Ok(());
        }
        let ids = self.ids_in_store().await?;
        for chunk in ids.chunks(MAX_LIST_LIMIT) {
            let keys: Vec<String> = chunk.iter().map(|id| super::key(id)).collect();
            let values = self.store.get_many(&keys).await?;
            for ((id, key), raw) in chunk.iter().zip(&keys).zip(values) {
                let Some(record) = raw.and_then(|r| serde_json::from_slice::<JobRecord>(&r).ok())
                else {
                    continue;
                };
                if !record.is_deleted() {
                    self.index(&record).await?;
                }
                if self.records.is_sharded() {
                    self.records.move_to_shard(id, key, Some(self.ttl)).await?;
                }
            }
        }
        self.store
            .put(BUILT, Bytes::from_static(b"1"), None)
            .await?;
        self.listing_built.store(true, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// One page of jobs (OpenAI's `GET /v1/videos`): `owner`'s (a tenant id) or every job
    /// (`None`), in `order`, after the job `after`, at most `limit` (1–100). An `after` that
    /// is no job id gives an empty page.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn page(
        &self,
        owner: Option<&str>,
        order: Order,
        after: Option<&str>,
        limit: usize,
    ) -> Result<JobPage, StorageError> {
        self.ensure_listing().await?;
        let prefix = prefix(owner, order);
        let after_key = match after {
            None => None,
            Some(a) => match entry(a, order).filter(|_| is_job_id(a)) {
                Some(e) => Some(format!("{prefix}{e}")),
                None => {
                    return Ok(JobPage {
                        jobs: Vec::new(),
                        has_more: false,
                    })
                }
            },
        };
        let limit = limit.clamp(1, 100);
        let key_cursors = self.store.capabilities().key_cursors;
        // One more than the page, to know whether more follow.
        let want = limit + 1;
        let mut ids = Vec::with_capacity(want);
        let mut cursor = after_key.clone().filter(|_| key_cursors);
        loop {
            let batch = if key_cursors {
                want - ids.len()
            } else {
                MAX_LIST_LIMIT
            };
            let page = self.store.list(&prefix, batch, cursor.as_deref()).await?;
            let fresh = page.keys.iter().filter(|k| match &after_key {
                Some(a) if !key_cursors => *k > a,
                _ => true,
            });
            ids.extend(
                fresh
                    .filter_map(|k| id_of(k.strip_prefix(&prefix)?, order))
                    .take(want - ids.len()),
            );
            match page.cursor {
                Some(next) if ids.len() < want && cursor.as_deref() != Some(&next) => {
                    cursor = Some(next)
                }
                _ => break,
            }
        }
        let has_more = ids.len() > limit;
        ids.truncate(limit);
        let mut jobs = self.get_many(&ids).await?;
        // `get_many` answers in the order asked; keep it whatever a backend does.
        jobs.sort_by_key(|j| ids.iter().position(|i| *i == j.id));
        Ok(JobPage { jobs, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "video_0190000000001111222233334444";
    const B: &str = "video_0190000000021111222233334444";

    #[test]
    fn newest_first_keys_sort_the_other_way() {
        let (a, b) = (
            entry(A, Order::Desc).unwrap(),
            entry(B, Order::Desc).unwrap(),
        );
        assert!(A < B && a > b);
        assert_eq!(id_of(&a, Order::Desc).as_deref(), Some(A));
    }

    #[test]
    fn a_tenants_job_has_four_keys_a_root_job_two() {
        assert_eq!(keys(A, Some("t1")).len(), 4);
        assert_eq!(
            keys(A, None),
            [
                format!("list/a/{A}"),
                format!("list/d/{}", rev(&A[6..]).unwrap())
            ]
        );
    }

    #[test]
    fn junk_is_no_entry() {
        assert_eq!(entry("video_xyz", Order::Desc), None);
        assert_eq!(id_of("xyz", Order::Desc), None);
        assert_eq!(id_of("nope", Order::Asc), None);
    }
}
