//! Where job records live: in the job store itself, or spread over shards (other stores,
//! chosen by a hash of the job's id) so that no single store takes every job's steps. The
//! job store keeps what must be seen whole: the listing keys and the `Idempotency-Key`
//! entries. At the edge each shard is a Durable Object, so steps of different jobs land on
//! different objects, and a page of 100 jobs costs at most one read per shard.
//!
//! Records a version without shards left in the job store are moved into their shards once
//! (with the listing index's first build), and a read that misses its shard looks in the job
//! store until then.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::seams::{Bytes, Expect, Storage, StorageError};

/// The job store and the record shards.
#[derive(Clone)]
pub(super) struct RecordStores {
    /// The job store: listing keys, idempotency entries, and the records when unsharded.
    pub(super) main: Arc<dyn Storage>,
    shards: Vec<Arc<dyn Storage>>,
}

impl RecordStores {
    pub(super) fn new(main: Arc<dyn Storage>) -> Self {
        Self {
            main,
            shards: Vec::new(),
        }
    }

    pub(super) fn with_shards(mut self, shards: Vec<Arc<dyn Storage>>) -> Self {
        self.shards = shards;
        self
    }

    pub(super) fn is_sharded(&self) -> bool {
        !self.shards.is_empty()
    }

    /// The shard of a job id: stable across processes, versions and platforms (SHA-256,
    /// not the standard library's hasher).
    fn shard_index(&self, id: &str) -> usize {
        let digest = Sha256::digest(id.as_bytes());
        let n = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
        (n % self.shards.len() as u64) as usize
    }

    /// The store that holds `id`'s record.
    pub(super) fn of(&self, id: &str) -> &dyn Storage {
        if self.shards.is_empty() {
            &*self.main
        } else {
            &*self.shards[self.shard_index(id)]
        }
    }

    /// Values of `keys` (record keys of `ids`), in order: one `get_many` per store involved,
    /// all at once.
    pub(super) async fn get_many(
        &self,
        ids: &[String],
        keys: &[String],
    ) -> Result<Vec<Option<Bytes>>, StorageError> {
        if self.shards.is_empty() {
            return self.main.get_many(keys).await;
        }
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, id) in ids.iter().enumerate() {
            groups[self.shard_index(id)].push(i);
        }
        let reads = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .map(|(s, g)| async move {
                let ks: Vec<String> = g.iter().map(|i| keys[*i].clone()).collect();
                let values = self.shards[s].get_many(&ks).await?;
                Ok::<_, StorageError>(g.iter().copied().zip(values).collect::<Vec<_>>())
            });
        let mut out = vec![None; keys.len()];
        for group in futures::future::try_join_all(reads).await? {
            for (i, value) in group {
                out[i] = value;
            }
        }
        Ok(out)
    }

    /// The ids of every record, in the job store and in every shard, oldest first.
    pub(super) async fn ids(&self) -> Result<Vec<String>, StorageError> {
        let mut ids = Vec::new();
        for store in std::iter::once(&self.main).chain(&self.shards) {
            let keys = crate::seams::list_all(&**store, super::RECORD_PREFIX).await?;
            ids.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(super::RECORD_PREFIX).map(str::to_owned)),
            );
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Moves a record the job store holds from before the shards into its shard (the shard's
    /// copy wins if it has one); what the shard then holds.
    pub(super) async fn move_to_shard(
        &self,
        id: &str,
        key: &str,
        ttl: Option<std::time::Duration>,
    ) -> Result<Option<Bytes>, StorageError> {
        let shard = self.of(id);
        let Some(bytes) = self.main.get(key).await? else {
            // The caller just found the shard without it.
            return Ok(None);
        };
        let moved = if shard.capabilities().conditional_writes {
            shard
                .put_if(key, bytes.clone(), ttl, Expect::Absent)
                .await?
        } else if shard.get(key).await?.is_none() {
            shard.put(key, bytes.clone(), ttl).await?;
            true
        } else {
            false
        };
        self.main.delete(key).await?;
        if moved {
            Ok(Some(bytes))
        } else {
            shard.get(key).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{ManualClock, MemoryStorage};

    fn stores(n: usize) -> RecordStores {
        let clock = Arc::new(ManualClock::new(0));
        let store = |_| Arc::new(MemoryStorage::new(clock.clone())) as Arc<dyn Storage>;
        RecordStores::new(store(0)).with_shards((0..n).map(store).collect())
    }

    #[test]
    fn ids_spread_over_every_shard_and_stay_put() {
        let s = stores(16);
        let mut seen = [0usize; 16];
        for i in 0..1600 {
            seen[s.shard_index(&format!("video_{i:012x}0123456789abcdef"))] += 1;
        }
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
        // Pinned: a different answer would strand every stored record.
        assert_eq!(s.shard_index("video_019000000000aaaaaaaaaaaaaaaa"), 6);
    }
}
