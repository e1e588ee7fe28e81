//! Read-modify-write of a JSON record in a [`Storage`]: the shared counters (captcha stats,
//! metrics totals) that several processes add to.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Expect, Storage, StorageError};

/// How often a conditional write is retried when another writer got there first.
const WRITE_ATTEMPTS: usize = 8;

/// Applies `change` to the record at `key` (absent or unreadable: `T::default()`) and writes it
/// back: by conditional write where the store has them, so that a concurrent change is never
/// lost; the last writer wins elsewhere. `what` names the record in errors.
pub(crate) async fn update_json<T, F>(
    store: &dyn Storage,
    key: &str,
    what: &str,
    change: F,
) -> Result<(), StorageError>
where
    T: Serialize + DeserializeOwned + Default,
    F: Fn(&mut T),
{
    let conditional = store.capabilities().conditional_writes;
    for _ in 0..WRITE_ATTEMPTS {
        let raw = store.get(key).await?;
        let mut record: T = raw
            .as_deref()
            .and_then(|r| serde_json::from_slice(r).ok())
            .unwrap_or_default();
        change(&mut record);
        let value = serde_json::to_vec(&record)
            .map_err(|e| StorageError(format!("{what}: {e}")))?
            .into();
        if !conditional {
            return store.put(key, value, None).await;
        }
        let expect = raw.map_or(Expect::Absent, Expect::Value);
        if store.put_if(key, value, None, expect).await? {
            return Ok(());
        }
    }
    Err(StorageError(format!(
        "{what}: {key} kept changing under {WRITE_ATTEMPTS} attempts"
    )))
}
