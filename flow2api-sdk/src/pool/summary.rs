//! Counts over the whole pool (`GET /health`, the token gauges of `GET /metrics`), kept in one
//! record beside the index and updated by every record write (the index update), so
//! that reading them costs one storage read with 10 accounts or with 10,000.
//!
//! The record (`index:v1:summary`) holds plain counts and, for the counts that change with
//! time alone (access tokens expired, or expiring within the hour), the number of access
//! tokens expiring in each minute: read against the clock, they need no write when a token
//! expires. Minutes already past are folded into one bucket at each write, so the record stays
//! as small as the spread of live expiry times. [`AccountPool::repair_index`] rebuilds it from
//! the records with the rest of the index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::seams::{Bytes, Expect, StorageError};

use super::{Account, AccountPool};

pub(super) const SUMMARY: &str = "index:v1:summary";
/// Conditional-write attempts before the summary is left to the next repair.
const WRITE_ATTEMPTS: usize = 8;
const MINUTE_MS: u64 = 60_000;
/// Why an account was disabled by rate limits, in the original's records (§11.1).
pub const BANNED_429: &str = "429_rate_limit";

/// The stored counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct SummaryRecord {
    total: i64,
    active: i64,
    missing_at: i64,
    banned_429: i64,
    credits: i64,
    active_credits: i64,
    /// Access tokens by the minute they expire (Unix minutes); minute 0 holds every minute
    /// already past at the last write.
    expiry: BTreeMap<u64, i64>,
}

/// Counts over every account at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolSummary {
    /// Accounts.
    pub total: u64,
    /// Selectable accounts.
    pub active: u64,
    /// Accounts with no access token on record.
    pub missing_at: u64,
    /// Accounts whose access token has expired (to the minute).
    pub expired: u64,
    /// Accounts whose access token expires within the hour (to the minute).
    pub expiring_within_1h: u64,
    /// Inactive accounts disabled for rate limits (`429_rate_limit`, records of the
    /// original; this gateway rests rate-limited accounts instead, `RATE_LIMIT_COOLDOWN`).
    pub banned_429: u64,
    /// Credits of every account at their last check.
    pub credits: i64,
    /// Credits of the active accounts.
    pub active_credits: i64,
}

impl SummaryRecord {
    /// Adds (`sign` 1) or removes (`sign` -1) one account's part.
    fn apply(&mut self, a: &Account, sign: i64, now_ms: u64) {
        self.total += sign;
        if a.active {
            self.active += sign;
            self.active_credits += sign * a.credits;
        } else if a.status_reason.as_deref() == Some(BANNED_429) {
            self.banned_429 += sign;
        }
        self.credits += sign * a.credits;
        match (&a.at, a.at_expires_ms) {
            (None, _) => self.missing_at += sign,
            (Some(_), Some(at)) => {
                let minute = bucket(at, now_ms);
                let n = self.expiry.entry(minute).or_default();
                *n += sign;
                if *n == 0 {
                    self.expiry.remove(&minute);
                }
            }
            // A token without a known expiry neither expires nor is missing.
            (Some(_), None) => {}
        }
    }

    /// Folds the minutes already past into minute 0.
    fn fold(&mut self, now_ms: u64) {
        let past: Vec<u64> = self
            .expiry
            .range(1..)
            .take_while(|(m, _)| (**m + 1) * MINUTE_MS <= now_ms)
            .map(|(m, _)| *m)
            .collect();
        for m in past {
            if let Some(n) = self.expiry.remove(&m) {
                *self.expiry.entry(0).or_default() += n;
            }
        }
        self.expiry.retain(|_, n| *n != 0);
    }

    fn view(&self, now_ms: u64) -> PoolSummary {
        let count = |n: i64| n.max(0) as u64;
        let (mut expired, mut soon) = (0, 0);
        for (m, n) in &self.expiry {
            let start = m * MINUTE_MS;
            if *m == 0 || start + MINUTE_MS <= now_ms {
                expired += n;
            } else if start < now_ms + 3_600_000 {
                soon += n;
            }
        }
        PoolSummary {
            total: count(self.total),
            active: count(self.active),
            missing_at: count(self.missing_at),
            expired: count(expired),
            expiring_within_1h: count(soon),
            banned_429: count(self.banned_429),
            credits: self.credits,
            active_credits: self.active_credits,
        }
    }
}

/// The minute an expiry time falls in: 0 once that minute is over.
fn bucket(at_ms: u64, now_ms: u64) -> u64 {
    let minute = at_ms / MINUTE_MS;
    if (minute + 1) * MINUTE_MS <= now_ms {
        0
    } else {
        minute
    }
}

impl AccountPool {
    /// Counts over every account, from the summary record (one read). A pool whose summary
    /// was never built (a storage from before it) gets it built from the records, once.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn summary(&self) -> Result<PoolSummary, StorageError> {
        let now = self.clock.now_ms();
        let record = match self.storage.get(SUMMARY).await? {
            Some(raw) => serde_json::from_slice(&raw).unwrap_or_default(),
            None => {
                let records = self.list().await?;
                let record = summarise(&records, now);
                let value = encode(&record)?;
                if self.storage.capabilities().conditional_writes {
                    // Another writer's summary, if any, is as good as this one.
                    self.storage
                        .put_if(SUMMARY, value, None, Expect::Absent)
                        .await?;
                } else {
                    self.storage.put(SUMMARY, value, None).await?;
                }
                record
            }
        };
        Ok(record.view(now))
    }

    /// Moves the summary from `old` to `new` (`None`: absent). Called after the record was
    /// written; a summary not built yet is left for [`summary`](Self::summary) to build.
    pub(crate) async fn resummarise(
        &self,
        old: Option<&Account>,
        new: Option<&Account>,
    ) -> Result<(), StorageError> {
        let now = self.clock.now_ms();
        let conditional = self.storage.capabilities().conditional_writes;
        for _ in 0..WRITE_ATTEMPTS {
            let Some(raw) = self.storage.get(SUMMARY).await? else {
                return Ok(());
            };
            let mut record: SummaryRecord = serde_json::from_slice(&raw).unwrap_or_default();
            record.fold(now);
            let before = record.clone();
            if let Some(old) = old {
                record.apply(old, -1, now);
            }
            if let Some(new) = new {
                record.apply(new, 1, now);
            }
            if record == before {
                return Ok(());
            }
            let value = encode(&record)?;
            if !conditional {
                return self.storage.put(SUMMARY, value, None).await;
            }
            if self
                .storage
                .put_if(SUMMARY, value, None, Expect::Value(raw))
                .await?
            {
                return Ok(());
            }
        }
        // Left to the next repair.
        Ok(())
    }

    /// Writes the summary of `records` (every record), replacing whatever drifted.
    pub(crate) async fn rebuild_summary(&self, records: &[Account]) -> Result<(), StorageError> {
        let record = summarise(records, self.clock.now_ms());
        self.storage.put(SUMMARY, encode(&record)?, None).await
    }
}

fn summarise(records: &[Account], now_ms: u64) -> SummaryRecord {
    let mut record = SummaryRecord::default();
    for a in records {
        record.apply(a, 1, now_ms);
    }
    record
}

fn encode(record: &SummaryRecord) -> Result<Bytes, StorageError> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|e| StorageError(format!("pool summary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn account(active: bool, at_expires_ms: Option<u64>, credits: i64) -> Account {
        let mut a: Account = serde_json::from_value(serde_json::json!({
            "id": "x", "st": "st", "active": active, "credits": credits,
        }))
        .unwrap();
        if let Some(at) = at_expires_ms {
            a.at = Some(Secret::new("at".to_owned()));
            a.at_expires_ms = Some(at);
        }
        a
    }

    #[test]
    fn counts_follow_time_without_writes() {
        let now = 1_000 * MINUTE_MS;
        let accounts = [
            account(true, Some(now + 30 * MINUTE_MS), 10),
            account(true, Some(now + 3 * 3_600_000), 5),
            account(false, Some(now - 5 * MINUTE_MS), 1),
            account(true, None, 0),
        ];
        let record = summarise(&accounts, now);
        let v = record.view(now);
        assert_eq!((v.total, v.active, v.missing_at), (4, 3, 1));
        assert_eq!((v.expired, v.expiring_within_1h), (1, 1));
        assert_eq!((v.credits, v.active_credits), (16, 15));
        // Two hours on, with no write: the first token has expired too, the second expires soon.
        let later = record.view(now + 2 * 3_600_000 + MINUTE_MS);
        assert_eq!((later.expired, later.expiring_within_1h), (2, 1));
    }

    #[test]
    fn moving_an_account_after_a_fold_balances() {
        let now = 1_000 * MINUTE_MS;
        let old = account(true, Some(now + MINUTE_MS), 1);
        let mut record = summarise(std::slice::from_ref(&old), now);
        let later = now + 10 * MINUTE_MS;
        record.fold(later);
        assert_eq!(record.expiry.get(&0), Some(&1));
        let new = account(true, Some(later + 3_600_000 * 2), 1);
        record.apply(&old, -1, later);
        record.apply(&new, 1, later);
        let v = record.view(later);
        assert_eq!((v.total, v.expired, v.expiring_within_1h), (1, 0, 0));
        assert!(!record.expiry.contains_key(&0));
    }
}
