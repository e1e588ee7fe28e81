//! The pool's index, kept beside the account records in the same
//! [`Storage`](crate::Storage): which accounts may serve each kind of generation at each tier,
//! and which account holds a session token or an email. Selecting an account then lists the
//! eligible ones instead of reading every record, so it costs the same with 10 accounts or with
//! 10,000 disabled ones.
//!
//! Keys (`v1` names the layout, so that a later one can be built beside it):
//! - `index:v1:{image|video}:{free|pro|ultra}:{id}`: the account is active and serves that
//!   kind, at that tier;
//! - `index:v1:st:{sha256 of the ST, hex}` → id (the ST itself is never part of a key);
//! - `index:v1:email:{lowercased email}` → id;
//! - `index:v1:built`: the index was built from the records.
//!
//! Every record write updates the keys that changed. A write can land between another one's
//! record and its index update, so readers check each record they pick, and
//! [`AccountPool::repair_index`] (run by the background refresh, at most once per
//! [`CHECK_INTERVAL_MS`]) rebuilds what drifted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use crate::models::Tier;
use crate::seams::{list_all, Bytes, SlotKind, StorageError};
use crate::secret::Secret;
use crate::util;

use super::{Account, AccountPool, KEY_PREFIX};

const PREFIX: &str = "index:v1:";
const BUILT: &str = "index:v1:built";
/// When the background refresh last compared the index with the records (Unix ms).
const CHECKED: &str = "index:v1:checked";
/// How often the background refresh compares the index with every record: drift comes only
/// from a writer stopped between its record and its index keys, and readers re-check what the
/// index says, so a daily pass is enough and the other passes read no extra keys.
pub const CHECK_INTERVAL_MS: u64 = 86_400_000;
/// Set once the records of an earlier storage were copied in ([`AccountPool::adopt_records`]).
const ADOPTED: &str = "pool:adopted";

const KINDS: [SlotKind; 2] = [SlotKind::Image, SlotKind::Video];
const TIERS: [Tier; 3] = [Tier::Free, Tier::Pro, Tier::Ultra];

fn kind_slug(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Image => "image",
        SlotKind::Video => "video",
    }
}

fn tier_slug(tier: Tier) -> &'static str {
    match tier {
        Tier::Free => "free",
        Tier::Pro => "pro",
        Tier::Ultra => "ultra",
    }
}

fn kind_prefix(kind: SlotKind) -> String {
    format!("{PREFIX}{}:", kind_slug(kind))
}

fn eligible_prefix(kind: SlotKind, tier: Tier) -> String {
    format!("{}{}:", kind_prefix(kind), tier_slug(tier))
}

/// The tier and id an eligibility key (after its kind's prefix) names.
fn parse_eligible(rest: &str) -> Option<(Tier, &str)> {
    let (tier, id) = rest.split_once(':')?;
    let tier = TIERS.into_iter().find(|t| tier_slug(*t) == tier)?;
    Some((tier, id))
}

fn st_key(st: &Secret) -> String {
    let digest = Sha256::digest(st.expose().trim().as_bytes());
    format!("{PREFIX}st:{}", util::hex(&digest))
}

fn email_key(email: &str) -> Option<String> {
    let email = email.trim();
    (!email.is_empty()).then(|| format!("{PREFIX}email:{}", email.to_lowercase()))
}

/// Every index key a record implies, with its value.
fn entries(a: &Account) -> BTreeMap<String, Bytes> {
    let mut out = BTreeMap::new();
    if a.active {
        for kind in KINDS.into_iter().filter(|k| a.serves(*k)) {
            out.insert(
                format!("{}{}", eligible_prefix(kind, a.tier), a.id),
                Bytes::new(),
            );
        }
    }
    let id = Bytes::from(a.id.clone().into_bytes());
    out.insert(st_key(&a.st), id.clone());
    if let Some(k) = email_key(&a.email) {
        out.insert(k, id);
    }
    out
}

/// Whether an index key is one that names its owner in its value (a token's or an email's).
fn is_lookup(key: &str) -> bool {
    key.starts_with(&format!("{PREFIX}st:")) || key.starts_with(&format!("{PREFIX}email:"))
}

impl AccountPool {
    /// Updates the index after a record went from `old` to `new` (`None`: absent): writes
    /// the keys `new` implies and `old` did not, deletes those only `old` implied. A token
    /// refresh changes no key and costs nothing here.
    pub(crate) async fn reindex(
        &self,
        old: Option<&Account>,
        new: Option<&Account>,
    ) -> Result<(), StorageError> {
        let before = old.map(entries).unwrap_or_default();
        let after = new.map(entries).unwrap_or_default();
        for (key, value) in &after {
            if before.get(key) != Some(value) {
                self.storage.put(key, value.clone(), None).await?;
            }
        }
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            if is_lookup(key) {
                // Another account may hold it by now (an email moved): leave it to its owner.
                let id = old.map(|a| a.id.as_bytes());
                if self.storage.get(key).await?.as_deref() != id {
                    continue;
                }
            }
            self.storage.delete(key).await?;
        }
        self.resummarise(old, new).await
    }

    /// Builds the index from the records if it was never built (a pool from before the index,
    /// or a new storage): one full pass, once. Once seen built, this process (isolate) does
    /// not ask again.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn ensure_index(&self) -> Result<(), StorageError> {
        if self.index_built.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.storage.get(BUILT).await?.is_none() {
            self.repair_index().await?;
            self.storage
                .put(BUILT, Bytes::from_static(b"1"), None)
                .await?;
        }
        self.index_built.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Compares the index with the records and fixes every difference (a writer that stopped
    /// between its record and its index keys). Returns how many keys it wrote or deleted.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn repair_index(&self) -> Result<usize, StorageError> {
        let records = self.list().await?;
        self.repair_index_from(&records).await
    }

    /// [`repair_index`](Self::repair_index) when the last comparison is older than
    /// [`CHECK_INTERVAL_MS`], against `records` (every record, as the caller just listed
    /// them). `Ok(0)` when it was not due.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn repair_index_if_due(
        &self,
        records: &[Account],
    ) -> Result<usize, StorageError> {
        let now = self.clock.now_ms();
        let last = self
            .storage
            .get(CHECKED)
            .await?
            .and_then(|raw| std::str::from_utf8(&raw).ok()?.parse::<u64>().ok());
        if last.is_some_and(|at| now.saturating_sub(at) < CHECK_INTERVAL_MS && at <= now) {
            return Ok(0);
        }
        let repairs = self.repair_index_from(records).await?;
        self.storage
            .put(CHECKED, Bytes::from(now.to_string().into_bytes()), None)
            .await?;
        Ok(repairs)
    }

    async fn repair_index_from(&self, records: &[Account]) -> Result<usize, StorageError> {
        let mut want = BTreeMap::new();
        for account in records {
            want.extend(entries(account));
        }
        let have: BTreeSet<String> = list_all(&*self.storage, PREFIX)
            .await?
            .into_iter()
            .filter(|k| k != BUILT && k != CHECKED && k != super::summary::SUMMARY)
            .collect();
        let mut repairs = 0;
        for key in have.iter().filter(|k| !want.contains_key(*k)) {
            self.storage.delete(key).await?;
            repairs += 1;
        }
        let present: Vec<String> = want.keys().filter(|k| have.contains(*k)).cloned().collect();
        let values = self.storage.get_many(&present).await?;
        let stale: BTreeSet<&String> = present
            .iter()
            .zip(values)
            .filter(|(k, v)| v.as_ref() != want.get(*k))
            .map(|(k, _)| k)
            .collect();
        for (key, value) in &want {
            if !have.contains(key) || stale.contains(key) {
                self.storage.put(key, value.clone(), None).await?;
                repairs += 1;
            }
        }
        self.rebuild_summary(records).await?;
        Ok(repairs)
    }

    /// Ids of the accounts the index says may serve `kind` at `tier` or above: one listing
    /// of the kind's keys (every tier), or of the top tier's alone.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn eligible_ids(
        &self,
        kind: SlotKind,
        tier: Tier,
    ) -> Result<Vec<String>, StorageError> {
        self.ensure_index().await?;
        let prefix = if tier == Tier::Ultra {
            eligible_prefix(kind, tier)
        } else {
            kind_prefix(kind)
        };
        let keys = list_all(&*self.storage, &prefix).await?;
        let kind_len = kind_prefix(kind).len();
        Ok(keys
            .iter()
            .filter_map(|k| parse_eligible(k.get(kind_len..)?))
            .filter(|(t, _)| *t >= tier)
            .map(|(_, id)| id.to_owned())
            .collect())
    }

    /// The id of the account holding this session token, if any.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn holder_of(&self, st: &Secret) -> Result<Option<String>, StorageError> {
        self.ensure_index().await?;
        self.lookup(&st_key(st)).await
    }

    /// The id of the account with this email (case-insensitive), if any.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn holder_of_email(
        &self,
        email: &str,
    ) -> Result<Option<String>, StorageError> {
        let Some(key) = email_key(email) else {
            return Ok(None);
        };
        self.ensure_index().await?;
        self.lookup(&key).await
    }

    async fn lookup(&self, key: &str) -> Result<Option<String>, StorageError> {
        let Some(raw) = self.storage.get(key).await? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&raw).into_owned();
        // The index may point at a record deleted since: check it.
        Ok(self
            .storage
            .get(&format!("{KEY_PREFIX}{id}"))
            .await?
            .map(|_| id))
    }

    /// Copies the account records of an earlier storage (`from`, e.g. the KV namespace the
    /// worker kept them in before) into this pool's, once: records already here win, and a
    /// marker makes later calls cost one read. Returns how many records it copied.
    ///
    /// # Errors
    /// Storage failures; nothing is marked done then, and the next call tries again.
    pub async fn adopt_records(&self, from: &dyn crate::Storage) -> Result<usize, StorageError> {
        if self.storage.get(ADOPTED).await?.is_some() {
            return Ok(0);
        }
        let keys = list_all(from, KEY_PREFIX).await?;
        let mut copied = 0;
        for chunk in keys.chunks(crate::seams::MAX_LIST_LIMIT) {
            let values = from.get_many(chunk).await?;
            for (key, raw) in chunk.iter().zip(values) {
                let Some(raw) = raw else { continue };
                let Ok(account) = serde_json::from_slice::<Account>(&raw) else {
                    continue;
                };
                if self.storage.get(key).await?.is_none() {
                    self.storage.put(key, raw, None).await?;
                    self.reindex(None, Some(&account)).await?;
                    copied += 1;
                }
            }
        }
        self.storage
            .put(ADOPTED, Bytes::from_static(b"1"), None)
            .await?;
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(json: &str) -> Account {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_active_account_is_listed_for_what_it_serves_at_its_tier() {
        let a = account(
            r#"{"id":"a1","st":"secret-st","email":"A@x.com","tier":"Pro","video_enabled":false}"#,
        );
        let keys: Vec<String> = entries(&a).into_keys().collect();
        assert!(keys.contains(&"index:v1:image:pro:a1".to_owned()));
        assert!(!keys.iter().any(|k| k.starts_with("index:v1:video:")));
        assert!(keys.contains(&"index:v1:email:a@x.com".to_owned()));
        // The ST is hashed, never part of a key.
        assert!(!keys.iter().any(|k| k.contains("secret-st")));
    }

    #[test]
    fn an_eligibility_key_names_its_tier_and_id() {
        let key = format!("{}a1", eligible_prefix(SlotKind::Video, Tier::Pro));
        let rest = &key[kind_prefix(SlotKind::Video).len()..];
        assert_eq!(parse_eligible(rest), Some((Tier::Pro, "a1")));
        assert_eq!(parse_eligible("gold:a1"), None);
        assert_eq!(parse_eligible("pro"), None);
    }

    #[test]
    fn an_inactive_account_is_only_looked_up() {
        let a = account(r#"{"id":"a1","st":"s","active":false}"#);
        let keys: Vec<String> = entries(&a).into_keys().collect();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].starts_with("index:v1:st:"));
    }
}
