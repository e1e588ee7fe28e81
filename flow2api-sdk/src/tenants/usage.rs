//! What a tenant uses: admission against its quotas and concurrency limit, the leases of its
//! running generations, and its counts per UTC day.
//!
//! A generation is admitted before it starts ([`Tenants::admit`]) and holds a lease until it
//! ends ([`Tenants::finish`]), which counts it. Running generations count towards the daily
//! quotas as well as towards `concurrent_jobs`, so requests racing for the last image of a day
//! cannot both get it. A lease has a lapse: a process that dies mid-generation holds it no
//! longer than that (a video job renews its lease as it goes, [`Tenants::renew`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seams::{Bytes, StorageError};
use crate::util;

use super::{decode, encode, write_back, Quota, Tenant, TenantError, Tenants, MAX_CONFLICTS};

/// Days of usage kept and shown.
pub const MAX_USAGE_DAYS: u64 = 90;
/// How long a day's counts are kept (a little over [`MAX_USAGE_DAYS`]).
const USAGE_TTL: Duration = Duration::from_secs(92 * 86_400);
const DAY_MS: u64 = 86_400_000;

/// What a generation is, for the quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// One image.
    Image,
    /// One video of this many seconds.
    Video {
        /// Its length.
        seconds: u32,
    },
}

/// How a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It made its image or video: counted under `images` or `videos` and `video_seconds`.
    Succeeded,
    /// It failed: counted under `errors`.
    Failed,
    /// Nothing to count (the client went away before the end, or the request turned out to
    /// repeat an earlier one): the lease is only given back.
    Released,
}

/// An admitted generation: its tenant and lease. Video jobs keep it in their record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    /// The tenant.
    pub tenant_id: String,
    /// The lease among the tenant's running generations.
    pub lease_id: String,
    /// What it is.
    pub work: Work,
    /// When the lease lapses unless renewed (ms since the epoch).
    pub until_ms: u64,
}

/// One UTC day of a tenant's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUsage {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Images made.
    pub images: u64,
    /// Videos made.
    pub videos: u64,
    /// Seconds of video made.
    pub video_seconds: u64,
    /// Generations that failed.
    pub errors: u64,
}

/// A running generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    id: String,
    work: Work,
    until_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Leases {
    items: Vec<Lease>,
}

impl Leases {
    fn live(mut self, now_ms: u64) -> Self {
        self.items.retain(|l| l.until_ms > now_ms);
        self
    }

    fn images(&self) -> u64 {
        self.items.iter().filter(|l| l.work == Work::Image).count() as u64
    }

    fn videos(&self) -> (u64, u64) {
        self.items.iter().fold((0, 0), |(n, s), l| match l.work {
            Work::Video { seconds } => (n + 1, s + u64::from(seconds)),
            Work::Image => (n, s),
        })
    }
}

/// `YYYY-MM-DD` of a time (UTC).
pub(crate) fn day_of(ms: u64) -> String {
    util::format_rfc3339(ms)[..10].to_owned()
}

/// Seconds from `ms` to the next UTC midnight (at least 1).
pub(crate) fn secs_to_midnight(ms: u64) -> u32 {
    let into_day = (ms % DAY_MS) / 1000;
    (86_400 - into_day).max(1) as u32
}

fn usage_prefix(id: &str) -> String {
    format!("tenant/{id}/usage/")
}

fn usage_key(id: &str, day: &str) -> String {
    format!("tenant/{id}/usage/{day}")
}

fn leases_key(id: &str) -> String {
    format!("tenant/{id}/leases")
}

/// Refuses `work` when it would go past a limit of `quota`, with what is done today and what
/// runs now.
fn check(
    quota: &Quota,
    today: &DayUsage,
    running: &Leases,
    work: Work,
    now_ms: u64,
) -> Result<(), TenantError> {
    let over = |what: &'static str, limit: u64| TenantError::QuotaExceeded {
        what,
        limit,
        retry_after_secs: secs_to_midnight(now_ms),
    };
    match work {
        Work::Image => {
            if let Some(limit) = quota.images_per_day {
                if today.images + running.images() >= limit {
                    return Err(over("images_per_day", limit));
                }
            }
        }
        Work::Video { seconds } => {
            let (videos, secs) = running.videos();
            if let Some(limit) = quota.videos_per_day {
                if today.videos + videos >= limit {
                    return Err(over("videos_per_day", limit));
                }
            }
            if let Some(limit) = quota.video_seconds_per_day {
                if today.video_seconds + secs + u64::from(seconds) > limit {
                    return Err(over("video_seconds_per_day", limit));
                }
            }
        }
    }
    if let Some(limit) = quota.concurrent_jobs {
        if running.items.len() as u64 >= u64::from(limit) {
            return Err(TenantError::TooManyJobs { limit });
        }
    }
    Ok(())
}

impl Tenants {
    /// Admits one generation of `tenant` (from its record as the request's key check read
    /// it), or refuses it: a daily quota used up (with the seconds to midnight UTC), or
    /// `concurrent_jobs` generations running. The lease lapses after `lapse` unless renewed
    /// or finished.
    ///
    /// # Errors
    /// [`TenantError::QuotaExceeded`], [`TenantError::TooManyJobs`], storage failures.
    pub async fn admit(
        &self,
        tenant: &Tenant,
        work: Work,
        lapse: Duration,
    ) -> Result<Admitted, TenantError> {
        let id = &tenant.id;
        for _ in 0..MAX_CONFLICTS {
            let now = self.now_ms();
            let keys = [usage_key(id, &day_of(now)), leases_key(id)];
            let mut got = self.store.get_many(&keys).await?.into_iter();
            let (today, read) = (got.next().flatten(), got.next().flatten());
            let today: DayUsage = today.map(|b| decode(&b)).transpose()?.unwrap_or_default();
            let running = read
                .as_ref()
                .map(|b| decode::<Leases>(b))
                .transpose()?
                .unwrap_or_default()
                .live(now);
            check(&tenant.quota, &today, &running, work, now)?;
            let lease = Lease {
                id: util::random_hex(8),
                work,
                until_ms: now + lapse.as_millis() as u64,
            };
            let mut next = running;
            next.items.push(lease.clone());
            if write_back(&*self.store, &keys[1], encode(&next)?, None, read).await? {
                return Ok(Admitted {
                    tenant_id: id.clone(),
                    lease_id: lease.id,
                    work,
                    until_ms: lease.until_ms,
                });
            }
        }
        Err(StorageError(format!("the leases of {id} kept changing")).into())
    }

    /// Pushes a running generation's lapse to `lapse` from now (a video job does at its
    /// steps). A lease that lapsed meanwhile is taken again: the generation does run.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn renew(
        &self,
        admitted: &mut Admitted,
        lapse: Duration,
    ) -> Result<(), StorageError> {
        let until_ms = self.now_ms() + lapse.as_millis() as u64;
        self.edit_leases(&admitted.tenant_id, |leases| {
            leases.items.retain(|l| l.id != admitted.lease_id);
            leases.items.push(Lease {
                id: admitted.lease_id.clone(),
                work: admitted.work,
                until_ms,
            });
        })
        .await?;
        admitted.until_ms = until_ms;
        Ok(())
    }

    /// Ends an admitted generation: counts it under today's usage (as `outcome` says) and
    /// gives its lease back.
    ///
    /// # Errors
    /// Storage failures (the lease then lapses by itself).
    pub async fn finish(&self, admitted: &Admitted, outcome: Outcome) -> Result<(), StorageError> {
        let id = &admitted.tenant_id;
        let day = day_of(self.now_ms());
        // Both records in one read (one call to the tenant's object at the edge).
        let keys = [usage_key(id, &day), leases_key(id)];
        let mut got = self.store.get_many(&keys).await?.into_iter();
        let (counts, leases) = (got.next().flatten(), got.next().flatten());
        if outcome != Outcome::Released {
            self.count(id, &day, counts, admitted.work, outcome).await?;
        }
        let lease_id = &admitted.lease_id;
        self.edit_leases_from(id, Some(leases), |leases| {
            leases.items.retain(|l| &l.id != lease_id);
        })
        .await
    }

    /// Adds a generation to the counts of `day`, which held `read` when last read.
    async fn count(
        &self,
        id: &str,
        day: &str,
        read: Option<Bytes>,
        work: Work,
        outcome: Outcome,
    ) -> Result<(), StorageError> {
        let k = usage_key(id, day);
        let mut read = read;
        for attempt in 0..MAX_CONFLICTS {
            if attempt > 0 {
                read = self.store.get(&k).await?;
            }
            let day = day.to_owned();
            let mut counts: DayUsage = read
                .as_ref()
                .map(|b| decode(b))
                .transpose()?
                .unwrap_or_default();
            counts.date = day;
            match (outcome, work) {
                (Outcome::Failed, _) => counts.errors += 1,
                (_, Work::Image) => counts.images += 1,
                (_, Work::Video { seconds }) => {
                    counts.videos += 1;
                    counts.video_seconds += u64::from(seconds);
                }
            }
            if write_back(
                &*self.store,
                &k,
                encode(&counts)?,
                Some(USAGE_TTL),
                read.clone(),
            )
            .await?
            {
                return Ok(());
            }
        }
        Err(StorageError(format!("the usage of {id} kept changing")))
    }

    async fn edit_leases(&self, id: &str, edit: impl Fn(&mut Leases)) -> Result<(), StorageError> {
        self.edit_leases_from(id, None, edit).await
    }

    /// Edits the leases, starting from `first` when they were just read.
    async fn edit_leases_from(
        &self,
        id: &str,
        first: Option<Option<Bytes>>,
        edit: impl Fn(&mut Leases),
    ) -> Result<(), StorageError> {
        let k = leases_key(id);
        let mut first = first;
        for _ in 0..MAX_CONFLICTS {
            let read: Option<Bytes> = match first.take() {
                Some(r) => r,
                None => self.store.get(&k).await?,
            };
            let mut leases = read
                .as_ref()
                .map(|b| decode::<Leases>(b))
                .transpose()?
                .unwrap_or_default()
                .live(self.now_ms());
            edit(&mut leases);
            if write_back(&*self.store, &k, encode(&leases)?, None, read).await? {
                return Ok(());
            }
        }
        Err(StorageError(format!("the leases of {id} kept changing")))
    }

    /// The key's usage per UTC day over the last [`MAX_USAGE_DAYS`] days, oldest first (days
    /// without any use are left out).
    ///
    /// # Errors
    /// [`TenantError::NotFound`], storage failures.
    pub async fn usage(&self, id: &str) -> Result<Vec<DayUsage>, TenantError> {
        // Only a key that exists (and the id is a well-formed one: it goes into a key).
        self.hash_of(id).await?;
        let now = self.now_ms();
        let first = day_of(now.saturating_sub((MAX_USAGE_DAYS - 1) * DAY_MS));
        let keys = crate::seams::list_all(&*self.store, &usage_prefix(id)).await?;
        let mut days: Vec<DayUsage> = self
            .store
            .get_many(&keys)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|b| decode::<DayUsage>(&b).ok())
            .filter(|d| d.date >= first)
            .collect();
        days.sort_by(|a, b| a.date.cmp(&b.date));
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::NewKey;
    use super::*;
    use crate::memory::{ManualClock, MemoryStorage};

    fn block<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    const LAPSE: Duration = Duration::from_secs(600);

    fn setup(quota: Quota) -> (Tenants, Tenant, Arc<ManualClock>) {
        // 2026-12-03T23:00:00Z: an hour before midnight.
        let clock = Arc::new(ManualClock::new(1_796_338_800_000));
        let store = Arc::new(MemoryStorage::new(clock.clone()));
        let t = Tenants::new(store, clock.clone());
        let created = block(t.create(NewKey {
            name: "t".into(),
            quota,
            models: None,
        }))
        .unwrap();
        (t, created.tenant, clock)
    }

    #[test]
    fn days_and_midnight() {
        assert_eq!(day_of(1_796_338_800_000), "2026-12-03");
        assert_eq!(secs_to_midnight(1_796_338_800_000), 3600);
        assert_eq!(secs_to_midnight(1_796_342_400_000), 86_400);
    }

    #[test]
    fn daily_image_quota_counts_running_and_done() {
        let (t, tenant, clock) = setup(Quota {
            images_per_day: Some(2),
            ..Quota::default()
        });
        let a = block(t.admit(&tenant, Work::Image, LAPSE)).unwrap();
        let b = block(t.admit(&tenant, Work::Image, LAPSE)).unwrap();
        // Two running: the third would go past the quota.
        match block(t.admit(&tenant, Work::Image, LAPSE)) {
            Err(TenantError::QuotaExceeded {
                what: "images_per_day",
                limit: 2,
                retry_after_secs: 3600,
            }) => {}
            other => panic!("{other:?}"),
        }
        // A failure gives its place back; a success keeps it.
        block(t.finish(&a, Outcome::Failed)).unwrap();
        block(t.finish(&b, Outcome::Succeeded)).unwrap();
        let c = block(t.admit(&tenant, Work::Image, LAPSE)).unwrap();
        block(t.finish(&c, Outcome::Succeeded)).unwrap();
        assert!(matches!(
            block(t.admit(&tenant, Work::Image, LAPSE)),
            Err(TenantError::QuotaExceeded { .. })
        ));
        // Videos have quotas of their own (none here).
        let v = block(t.admit(&tenant, Work::Video { seconds: 8 }, LAPSE)).unwrap();
        block(t.finish(&v, Outcome::Succeeded)).unwrap();
        let usage = block(t.usage(&tenant.id)).unwrap();
        assert_eq!(
            usage,
            vec![DayUsage {
                date: "2026-12-03".into(),
                images: 2,
                videos: 1,
                video_seconds: 8,
                errors: 1,
            }]
        );
        // A new UTC day, a new quota.
        clock.advance(Duration::from_secs(3600));
        let d = block(t.admit(&tenant, Work::Image, LAPSE)).unwrap();
        block(t.finish(&d, Outcome::Succeeded)).unwrap();
        let usage = block(t.usage(&tenant.id)).unwrap();
        assert_eq!(usage.len(), 2);
        assert_eq!(usage[1].date, "2026-12-04");
        assert_eq!(usage[1].images, 1);
        // Past 90 days the old day is no longer shown.
        clock.advance(Duration::from_secs(90 * 86_400));
        let usage = block(t.usage(&tenant.id)).unwrap();
        assert!(usage.iter().all(|d| d.date != "2026-12-03"), "{usage:?}");
    }

    #[test]
    fn video_quotas() {
        let (t, tenant, _) = setup(Quota {
            videos_per_day: Some(3),
            video_seconds_per_day: Some(12),
            ..Quota::default()
        });
        let a = block(t.admit(&tenant, Work::Video { seconds: 8 }, LAPSE)).unwrap();
        match block(t.admit(&tenant, Work::Video { seconds: 6 }, LAPSE)) {
            Err(TenantError::QuotaExceeded {
                what: "video_seconds_per_day",
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let b = block(t.admit(&tenant, Work::Video { seconds: 4 }, LAPSE)).unwrap();
        block(t.finish(&a, Outcome::Released)).unwrap();
        block(t.finish(&b, Outcome::Succeeded)).unwrap();
        assert_eq!(block(t.usage(&tenant.id)).unwrap()[0].video_seconds, 4);
    }

    #[test]
    fn concurrency_with_lapse_and_renewal() {
        let (t, tenant, clock) = setup(Quota {
            concurrent_jobs: Some(1),
            ..Quota::default()
        });
        let mut a = block(t.admit(&tenant, Work::Video { seconds: 8 }, LAPSE)).unwrap();
        assert!(matches!(
            block(t.admit(&tenant, Work::Image, LAPSE)),
            Err(TenantError::TooManyJobs { limit: 1 })
        ));
        // Renewed, it holds on past its first lapse.
        clock.advance(Duration::from_secs(500));
        block(t.renew(&mut a, LAPSE)).unwrap();
        clock.advance(Duration::from_secs(500));
        assert!(matches!(
            block(t.admit(&tenant, Work::Image, LAPSE)),
            Err(TenantError::TooManyJobs { .. })
        ));
        // A crashed holder: the lease lapses by itself.
        clock.advance(Duration::from_secs(200));
        let b = block(t.admit(&tenant, Work::Image, LAPSE)).unwrap();
        block(t.finish(&b, Outcome::Succeeded)).unwrap();
        let c = block(t.admit(&tenant, Work::Image, LAPSE)).unwrap();
        block(t.finish(&c, Outcome::Succeeded)).unwrap();
    }

    #[test]
    fn usage_of_unknown_key() {
        let (t, _, _) = setup(Quota::default());
        assert!(matches!(
            block(t.usage("key_0000000000000000")),
            Err(TenantError::NotFound(_))
        ));
    }
}
