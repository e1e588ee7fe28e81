//! Tenants: API keys the admin hands out, each with its own daily quotas, concurrency limit and
//! model patterns, and its own jobs.
//!
//! A key is `sk-f2a-` and 64 hex digits from the system's CSPRNG. It is shown once, when it is
//! created; the store keeps its SHA-256 (so a request's key is looked up by its hash, one read)
//! and a short [`Tenant::prefix`] to tell keys apart in lists. The `API_KEY` setting stays the
//! root key: it is checked before any key here, costs no storage call and sees every job.
//!
//! Everything lives in one strongly consistent [`Storage`] (the `StoreObject`s at the edge,
//! SQLite natively) under these keys:
//!
//! | key | value |
//! |---|---|
//! | `apikey/{sha256 of the key}` | the key's record (read on every request: nothing caches it, so a deleted key is refused at once) |
//! | `apikey-id/{id}` | the hash, for the admin routes that name a key by its id |
//! | `tenant/{id}/usage/{YYYY-MM-DD}` | that UTC day's counts (kept 92 days) |
//! | `tenant/{id}/leases` | the key's running generations (the `concurrent_jobs` limit), each with a lapse |
//!
//! The `tenant/{id}/…` keys of one key are only ever read and written together, so a host may
//! keep each key's in a store of its own ([`shard_of`]): the edge worker gives every key its
//! own Durable Object, so that no request of one key waits on another's.

mod glob;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seams::{Bytes, Clock, Expect, Storage, StorageError};
use crate::secret::Secret;
use crate::util::{self, RandomnessError};

pub use usage::{Admitted, DayUsage, Outcome, Work, MAX_USAGE_DAYS};

/// What every tenant key starts with.
pub const KEY_PREFIX: &str = "sk-f2a-";
/// Hex digits after [`KEY_PREFIX`] (32 random bytes).
const KEY_HEX: usize = 64;
/// Characters of a key kept for display: the prefix and 6 hex digits.
const DISPLAY_CHARS: usize = 13;
/// Most model patterns on one key.
const MAX_PATTERNS: usize = 100;
/// Most characters of a key's name.
const MAX_NAME_CHARS: usize = 100;
/// Attempts at a conditional write before giving up on a contended record.
const MAX_CONFLICTS: usize = 16;

/// A tenant's daily quotas (UTC days) and concurrency limit; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Successful image generations per day.
    #[serde(default)]
    pub images_per_day: Option<u64>,
    /// Successful videos per day.
    #[serde(default)]
    pub videos_per_day: Option<u64>,
    /// Seconds of successful video per day.
    #[serde(default)]
    pub video_seconds_per_day: Option<u64>,
    /// Generations (images and video jobs) running at once.
    #[serde(default)]
    pub concurrent_jobs: Option<u32>,
}

/// One tenant: an API key's settings, as lists show them (never the key or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// `key_` and 16 hex digits; names the key in the admin routes and owns its jobs.
    pub id: String,
    /// What the admin called it.
    pub name: String,
    /// The key's first characters (`sk-f2a-` and 6 hex digits), to tell keys apart.
    pub prefix: String,
    /// Its quotas.
    pub quota: Quota,
    /// Glob patterns (`*`, `?`) of the model ids it may use; `["*"]` for all.
    pub models: Vec<String>,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// Last change (ms since the epoch).
    pub updated_at_ms: u64,
}

impl Tenant {
    /// Whether the key may use the model `model_id` (an id of `/v1/models`).
    pub fn allows_model(&self, model_id: &str) -> bool {
        self.models.iter().any(|p| glob::matches(p, model_id))
    }

    /// [`allows_model`](Self::allows_model) as a result.
    ///
    /// # Errors
    /// [`TenantError::ModelNotAllowed`].
    pub fn check_model(&self, model_id: &str) -> Result<(), TenantError> {
        if self.allows_model(model_id) {
            Ok(())
        } else {
            Err(TenantError::ModelNotAllowed(model_id.to_owned()))
        }
    }
}

/// The record stored under the key's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    tenant: Tenant,
}

/// What the admin asks for when creating a key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A name (1–100 characters).
    pub name: String,
    /// Its quotas (none by default).
    #[serde(default)]
    pub quota: Quota,
    /// Model patterns; absent or empty: every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

/// A change to a key: the fields given replace the key's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyChange {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// New quotas (the whole set: a limit left out is removed).
    #[serde(default)]
    pub quota: Option<Quota>,
    /// New model patterns (empty: every model).
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

/// A key just made: the only time its secret is at hand.
#[derive(Debug, Clone)]
pub struct Created {
    /// The key's settings.
    pub tenant: Tenant,
    /// The key itself (`sk-f2a-…`), to show once.
    pub key: Secret,
}

/// Why a tenant operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// No key with that id.
    #[error("no API key with id `{0}`")]
    NotFound(String),
    /// The admin's input is not acceptable (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// The key may not use this model.
    #[error("this API key may not use the model `{0}`")]
    ModelNotAllowed(String),
    /// A daily quota is used up until the next UTC midnight.
    #[error("the daily quota of {what} for this API key ({limit}) is used up; it renews at midnight UTC")]
    QuotaExceeded {
        /// Which quota (`images_per_day`, …).
        what: &'static str,
        /// Its limit.
        limit: u64,
        /// Seconds until the next UTC midnight.
        retry_after_secs: u32,
    },
    /// As many generations as `concurrent_jobs` allows are running.
    #[error("this API key already runs {limit} generation(s) at once (concurrent_jobs)")]
    TooManyJobs {
        /// The limit.
        limit: u32,
    },
    /// The randomness source failed: no key was made.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    /// The store failed (or a record stayed contended).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The tenant id whose store a key of the tenant store belongs in (`tenant/{id}/…`), `None`
/// for the keys every tenant shares (the key records). A host that spreads the store over
/// several backends routes by it; the SDK only ever reads or lists one tenant's keys together.
pub fn shard_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("tenant/")?;
    let (id, _) = rest.split_once('/')?;
    is_key_id(id).then_some(id)
}

/// Whether `id` can be a tenant id (`key_` and 16 hex digits).
pub fn is_key_id(id: &str) -> bool {
    id.strip_prefix("key_")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn record_key(hash: &str) -> String {
    format!("apikey/{hash}")
}

fn id_key(id: &str) -> String {
    format!("apikey-id/{id}")
}

/// SHA-256 of a key, as lower-case hex.
fn hash_key(key: &str) -> String {
    use sha2::Digest;
    util::hex(&sha2::Sha256::digest(key.as_bytes()))
}

fn encode<T: Serialize>(value: &T) -> Result<Bytes, StorageError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| StorageError(format!("encoding a tenant record: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError(format!("a tenant record: {e}")))
}

fn check_name(name: &str) -> Result<String, TenantError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(TenantError::Invalid(format!(
            "`name` must be 1–{MAX_NAME_CHARS} characters without control characters."
        )));
    }
    Ok(name.to_owned())
}

fn check_models(models: Option<Vec<String>>) -> Result<Vec<String>, TenantError> {
    let models: Vec<String> = models
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.trim().to_owned())
        .collect();
    if models.is_empty() {
        return Ok(vec!["*".to_owned()]);
    }
    if models.len() > MAX_PATTERNS {
        return Err(TenantError::Invalid(format!(
            "`models` may hold at most {MAX_PATTERNS} patterns."
        )));
    }
    if let Some(bad) = models.iter().find(|p| !glob::is_valid(p)) {
        return Err(TenantError::Invalid(format!(
            "`models`: `{bad}` is not a pattern (1–200 printable characters, `*` and `?` as wildcards)."
        )));
    }
    Ok(models)
}

/// The tenants over their store.
#[derive(Clone)]
pub struct Tenants {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants").finish_non_exhaustive()
    }
}

impl Tenants {
    /// The tenants kept in `store`, which must be strongly consistent (a deleted key must be
    /// refused at once, and counters must not lose updates).
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The tenant whose key `given` is, `None` for a key that is no tenant's. One storage read
    /// for a string shaped like a key, none for anything else.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn authenticate(&self, given: &str) -> Result<Option<Tenant>, StorageError> {
        let shaped = given.len() == KEY_PREFIX.len() + KEY_HEX
            && given.starts_with(KEY_PREFIX)
            && given[KEY_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !shaped {
            return Ok(None);
        }
        let Some(bytes) = self.store.get(&record_key(&hash_key(given))).await? else {
            return Ok(None);
        };
        Ok(Some(decode::<Stored>(&bytes)?.tenant))
    }

    /// Makes a key (its secret from the CSPRNG) and stores it.
    ///
    /// # Errors
    /// [`TenantError::Invalid`] input, [`TenantError::Randomness`], storage failures.
    pub async fn create(&self, new: NewKey) -> Result<Created, TenantError> {
        let name = check_name(&new.name)?;
        let models = check_models(new.models)?;
        let key = format!("{KEY_PREFIX}{}", util::secret_hex(KEY_HEX / 2)?);
        let id = format!("key_{}", util::secret_hex(8)?);
        let hash = hash_key(&key);
        let now = self.clock.now_ms();
        let tenant = Tenant {
            id: id.clone(),
            name,
            prefix: key[..DISPLAY_CHARS].to_owned(),
            quota: new.quota,
            models,
            created_at_ms: now,
            updated_at_ms: now,
        };
        // The id first: a record that exists can always be found, listed and deleted.
        self.store
            .put(&id_key(&id), Bytes::from(hash.clone()), None)
            .await?;
        let stored = encode(&Stored {
            tenant: tenant.clone(),
        })?;
        if let Err(e) = self.store.put(&record_key(&hash), stored, None).await {
            let _ = self.store.delete(&id_key(&id)).await;
            return Err(e.into());
        }
        Ok(Created {
            tenant,
            key: Secret::new(key),
        })
    }

    /// The hash of the key `id`.
    async fn hash_of(&self, id: &str) -> Result<String, TenantError> {
        if !is_key_id(id) {
            return Err(TenantError::NotFound(id.to_owned()));
        }
        let bytes = self
            .store
            .get(&id_key(id))
            .await?
            .ok_or_else(|| TenantError::NotFound(id.to_owned()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The key `id`.
    ///
    /// # Errors
    /// [`TenantError::NotFound`], storage failures.
    pub async fn get(&self, id: &str) -> Result<Tenant, TenantError> {
        let hash = self.hash_of(id).await?;
        let bytes = self
            .store
            .get(&record_key(&hash))
            .await?
            .ok_or_else(|| TenantError::NotFound(id.to_owned()))?;
        Ok(decode::<Stored>(&bytes)?.tenant)
    }

    /// Every key, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        let ids = crate::seams::list_all(&*self.store, "apikey-id/").await?;
        let hashes = self.store.get_many(&ids).await?;
        let records: Vec<String> = hashes
            .into_iter()
            .flatten()
            .map(|h| record_key(&String::from_utf8_lossy(&h)))
            .collect();
        let mut out: Vec<Tenant> = self
            .store
            .get_many(&records)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|b| decode::<Stored>(&b).ok())
            .map(|s| s.tenant)
            .collect();
        out.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(out)
    }

    /// Changes a key's name, quotas or models; the next request with it sees the change.
    ///
    /// # Errors
    /// [`TenantError::NotFound`], [`TenantError::Invalid`] input, storage failures.
    pub async fn update(&self, id: &str, change: KeyChange) -> Result<Tenant, TenantError> {
        let name = change.name.as_deref().map(check_name).transpose()?;
        let models = change.models.map(|m| check_models(Some(m))).transpose()?;
        let hash = self.hash_of(id).await?;
        let k = record_key(&hash);
        for _ in 0..MAX_CONFLICTS {
            let read = self
                .store
                .get(&k)
                .await?
                .ok_or_else(|| TenantError::NotFound(id.to_owned()))?;
            let mut stored: Stored = decode(&read)?;
            if let Some(n) = &name {
                stored.tenant.name = n.clone();
            }
            if let Some(q) = &change.quota {
                stored.tenant.quota = q.clone();
            }
            if let Some(m) = &models {
                stored.tenant.models = m.clone();
            }
            stored.tenant.updated_at_ms = self.clock.now_ms();
            if write_back(&*self.store, &k, encode(&stored)?, None, Some(read)).await? {
                return Ok(stored.tenant);
            }
        }
        Err(StorageError(format!("the key {id} kept changing")).into())
    }

    /// Revokes a key: from the next request on it is refused (401). Its jobs stay until they
    /// expire, readable with the root key.
    ///
    /// # Errors
    /// [`TenantError::NotFound`], storage failures.
    pub async fn delete(&self, id: &str) -> Result<(), TenantError> {
        let hash = self.hash_of(id).await?;
        // The record first: that is what requests read.
        self.store.delete(&record_key(&hash)).await?;
        self.store.delete(&id_key(id)).await?;
        Ok(())
    }

    /// The current time, for the usage side.
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// Writes `value` under `k` if it still holds `read` (`None`: absent); a plain write where
/// the store has no conditional writes (then the store's strong consistency is all there is).
async fn write_back(
    store: &dyn Storage,
    k: &str,
    value: Bytes,
    ttl: Option<Duration>,
    read: Option<Bytes>,
) -> Result<bool, StorageError> {
    if !store.capabilities().conditional_writes {
        store.put(k, value, ttl).await?;
        return Ok(true);
    }
    let expect = match read {
        Some(b) => Expect::Value(b),
        None => Expect::Absent,
    };
    store.put_if(k, value, ttl, expect).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{ManualClock, MemoryStorage};

    fn tenants() -> (Tenants, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_764_140_000_000));
        let store = Arc::new(MemoryStorage::new(clock.clone()));
        (Tenants::new(store, clock.clone()), clock)
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn create_authenticate_update_delete() {
        let (t, _) = tenants();
        let created = block(t.create(NewKey {
            name: " team a ".into(),
            quota: Quota {
                images_per_day: Some(3),
                ..Quota::default()
            },
            models: None,
        }))
        .unwrap();
        let key = created.key.expose().to_owned();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + 64);
        assert!(key[7..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(created.tenant.prefix, key[..13]);
        assert_eq!(created.tenant.name, "team a");
        assert_eq!(created.tenant.models, vec!["*"]);
        assert!(is_key_id(&created.tenant.id));

        let found = block(t.authenticate(&key)).unwrap().unwrap();
        assert_eq!(found, created.tenant);
        // One character off, or not shaped like a key at all: nobody.
        let mut wrong = key.clone();
        wrong.replace_range(20..21, if &key[20..21] == "a" { "b" } else { "a" });
        assert!(block(t.authenticate(&wrong)).unwrap().is_none());
        assert!(block(t.authenticate("root-key")).unwrap().is_none());

        let changed = block(t.update(
            &created.tenant.id,
            KeyChange {
                models: Some(vec!["veo_*".into()]),
                ..KeyChange::default()
            },
        ))
        .unwrap();
        assert_eq!(changed.models, vec!["veo_*"]);
        assert_eq!(changed.quota.images_per_day, Some(3));
        assert!(changed.allows_model("veo_3_1_t2v_fast"));
        assert!(!changed.allows_model("gemini-3.1-flash-image-landscape"));
        assert_eq!(block(t.authenticate(&key)).unwrap().unwrap(), changed);

        let listed = block(t.list()).unwrap();
        assert_eq!(listed, vec![changed.clone()]);
        // Nothing a list shows holds the key or its hash.
        let shown = serde_json::to_string(&listed).unwrap();
        assert!(!shown.contains(&key) && !shown.contains(&hash_key(&key)));

        block(t.delete(&created.tenant.id)).unwrap();
        assert!(block(t.authenticate(&key)).unwrap().is_none());
        assert!(block(t.list()).unwrap().is_empty());
        assert!(matches!(
            block(t.get(&created.tenant.id)),
            Err(TenantError::NotFound(_))
        ));
        assert!(matches!(
            block(t.delete(&created.tenant.id)),
            Err(TenantError::NotFound(_))
        ));
    }

    #[test]
    fn invalid_input_is_refused() {
        let (t, _) = tenants();
        for new in [
            NewKey {
                name: "  ".into(),
                ..NewKey::default()
            },
            NewKey {
                name: "x".repeat(101),
                ..NewKey::default()
            },
            NewKey {
                name: "ok".into(),
                models: Some(vec!["a b".into()]),
                ..NewKey::default()
            },
        ] {
            assert!(matches!(block(t.create(new)), Err(TenantError::Invalid(_))));
        }
        assert!(matches!(
            block(t.update("key_0000000000000000", KeyChange::default())),
            Err(TenantError::NotFound(_))
        ));
        assert!(matches!(
            block(t.get("../../etc")),
            Err(TenantError::NotFound(_))
        ));
    }

    #[test]
    fn shards() {
        assert_eq!(
            shard_of("tenant/key_0123456789abcdef/usage/2026-12-03"),
            Some("key_0123456789abcdef")
        );
        assert_eq!(
            shard_of("tenant/key_0123456789abcdef/"),
            Some("key_0123456789abcdef")
        );
        assert_eq!(shard_of("tenant/nope/usage"), None);
        assert_eq!(shard_of("apikey/abc"), None);
        assert_eq!(shard_of("apikey-id/key_0123456789abcdef"), None);
    }
}
