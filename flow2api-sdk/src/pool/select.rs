//! Choosing an account: filters (active, tier, feature, cooldown, credits), the ordering
//! strategy, and a slot held as a lease — waiting up to the slot wait for one to free up.

use std::sync::Arc;
use std::time::Duration;

use crate::models::Tier;
use crate::seams::{Coordinator, SlotKind, SlotLease, SlotRequest, Spawn, StorageError};
use crate::util;

use super::{shuffle, Account, AccountPool, NoAccount, PoolError, Strategy};
use crate::coordination::{AccountCommand, AccountStatus, TokenState};

/// How many eligible accounts one selection round looks at: bounds the coordinator calls
/// (Durable Object subrequests at the edge) per request in large pools.
const SAMPLE: usize = 4;

/// A held slot. Release it with [`SlotGuard::release`]; if it is dropped still held (the
/// client went away), it is released in the background, and in any case its lease lapses.
pub struct SlotGuard {
    lease: Option<SlotLease>,
    kind: SlotKind,
    coordinator: Arc<dyn Coordinator>,
    spawner: Option<Arc<dyn Spawn>>,
    /// Counts the slot held while the guard holds it.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// A slot kind as a metrics label.
pub(crate) fn kind_label(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Image => "image",
        SlotKind::Video => "video",
    }
}

impl std::fmt::Debug for SlotGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotGuard")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl SlotGuard {
    /// What the slot is for.
    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    /// Counts the slot as given back.
    fn count_release(&self) {
        if let Some(m) = &self.metrics {
            m.slot(kind_label(self.kind), -1);
        }
    }

    /// The lease, while held.
    pub fn lease(&self) -> Option<&SlotLease> {
        self.lease.as_ref()
    }

    /// Extends the lease (long jobs renew it while they run).
    ///
    /// # Errors
    /// Coordinator failures. `Ok(false)` when the lease had already lapsed.
    pub async fn renew(&self, lease: Duration) -> Result<bool, StorageError> {
        let Some(l) = &self.lease else {
            return Ok(false);
        };
        let cmd = AccountCommand::Renew {
            lease_id: l.lease_id.clone(),
            lease_ms: lease.as_millis() as u64,
        };
        Ok(self.coordinator.apply(&l.account_id, cmd).await?.ok)
    }

    /// Takes the lease out of the guard, which then releases nothing: the caller releases
    /// it with another command.
    pub fn disarm(&mut self) -> Option<SlotLease> {
        self.lease.take()
    }

    /// Gives the slot back.
    pub async fn release(mut self) {
        if let Some(l) = self.lease.take() {
            self.count_release();
            // A failed release only delays the slot until its lease lapses.
            let _ = self
                .coordinator
                .apply(
                    &l.account_id,
                    AccountCommand::Release {
                        lease_id: l.lease_id,
                    },
                )
                .await;
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let Some(l) = self.lease.take() else {
            return;
        };
        self.count_release();
        let Some(spawner) = self.spawner.as_ref() else {
            return;
        };
        let coordinator = self.coordinator.clone();
        spawner.spawn(crate::seams::boxed(async move {
            let _ = coordinator
                .apply(
                    &l.account_id,
                    AccountCommand::Release {
                        lease_id: l.lease_id,
                    },
                )
                .await;
        }));
    }
}

/// A chosen account, ready to generate: a fresh token, the project to use, a held slot.
#[derive(Debug)]
pub struct Lease {
    /// The account record.
    pub account: Account,
    /// A fresh access token.
    pub token: TokenState,
    /// The project for this generation (round-robin over the account's pool).
    pub project_id: String,
    /// The slot.
    pub slot: SlotGuard,
}

impl Lease {
    /// Gives the slot back.
    pub async fn release(self) {
        self.slot.release().await;
    }
}

impl AccountPool {
    /// Chooses an account for a generation of `kind` needing `tier`, skipping `exclude`
    /// (accounts this request already tried), takes a slot on it and makes sure its token is
    /// fresh. When every eligible account is at its limit, waits up to the slot wait.
    ///
    /// # Errors
    /// [`PoolError::Unavailable`] with the reason; storage failures.
    pub async fn acquire(
        &self,
        kind: SlotKind,
        tier: Tier,
        model: &str,
        exclude: &[String],
    ) -> Result<Lease, PoolError> {
        let deadline = self.clock.now_ms() + self.settings.slot_wait.as_millis() as u64;
        let mut backoff = Duration::from_millis(100);
        let mut first = true;
        loop {
            let candidates = self.candidates(kind, tier, model, exclude).await?;
            // Hints only on the first round: a waiting request must see slots free up at once.
            if let Some(lease) = self.try_candidates(candidates, kind, first).await? {
                return Ok(lease);
            }
            first = false;

            let now = self.clock.now_ms();
            if now >= deadline {
                return Err(PoolError::Unavailable(NoAccount::Busy(kind)));
            }
            // Jittered so that many waiters do not ask in lockstep.
            let jitter = util::random_u64() % (backoff.as_millis() as u64 / 2 + 1);
            let wait = (backoff / 2 + Duration::from_millis(jitter))
                .min(Duration::from_millis(deadline - now));
            self.clock.sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_millis(1000));
        }
    }

    /// A random sample of the accounts that may serve the request, from the index: the cost
    /// does not grow with accounts that cannot serve it. Each record is read and checked
    /// again (the index may lag a write); when none passes, every record is read once to say
    /// why no account can serve the request (or to serve it anyway, if the index lagged).
    async fn candidates(
        &self,
        kind: SlotKind,
        tier: Tier,
        model: &str,
        exclude: &[String],
    ) -> Result<Vec<Account>, PoolError> {
        let mut ids = self.eligible_ids(kind, tier).await?;
        ids.retain(|id| !exclude.contains(id));
        shuffle(&mut ids);
        // Twice the sample: some of it may turn out stale.
        ids.truncate(SAMPLE * 2);
        let keys: Vec<String> = ids.iter().map(|id| super::record_key(id)).collect();
        let records = self
            .storage
            .get_many(&keys)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|raw| super::decode(&raw).ok())
            .collect();
        match eligible(records, kind, tier, model, exclude) {
            Ok(found) => Ok(found),
            Err(_) => eligible(self.list().await?, kind, tier, model, exclude),
        }
    }

    /// One round: statuses of a sample, filters, order, then acquire in order.
    async fn try_candidates(
        &self,
        mut candidates: Vec<Account>,
        kind: SlotKind,
        probe: bool,
    ) -> Result<Option<Lease>, PoolError> {
        shuffle(&mut candidates);
        candidates.truncate(SAMPLE);
        // Recently seen states order the candidates. The first round asks the accounts it has
        // no recent state of; later rounds (a request waiting for a slot) ask nothing and try
        // those accounts' acquire directly, so that waiters cost one call per account and round.
        let now = self.clock.now_ms();
        let hints: Vec<Option<AccountStatus>> = candidates
            .iter()
            .map(|a| self.loads.get(&a.id, now))
            .collect();
        let asked = futures::future::join_all(
            candidates
                .iter()
                .zip(&hints)
                .filter(|(_, h)| probe && h.is_none())
                .map(|(a, _)| self.status(&a.id)),
        )
        .await;
        let mut asked = asked.into_iter();
        let mut ranked: Vec<(Account, Option<AccountStatus>)> =
            Vec::with_capacity(candidates.len());
        let mut earliest_back = u64::MAX;
        let now = self.clock.now_ms();
        for (account, hint) in candidates.into_iter().zip(hints) {
            let status = match hint {
                Some(s) => Some(s),
                None if probe => Some(
                    asked
                        .next()
                        .unwrap_or_else(|| Ok(AccountStatus::default()))?,
                ),
                None => None,
            };
            if let Some(s) = status.as_ref().filter(|s| s.cooling_down(now)) {
                earliest_back = earliest_back.min(s.cooldown_until_ms);
                continue;
            }
            ranked.push((account, status));
        }
        if ranked.is_empty() && earliest_back != u64::MAX {
            return Err(PoolError::Unavailable(NoAccount::CoolingDown {
                until_ms: earliest_back,
                retry_after_secs: (earliest_back.saturating_sub(now)).div_ceil(1000) as u32,
            }));
        }
        // Unknown states sort last.
        let load = |s: &Option<AccountStatus>| s.as_ref().map_or(u32::MAX, |s| s.in_flight(kind));
        match self.settings.strategy {
            // Shuffled above, and the sort is stable: ties stay random.
            Strategy::LeastLoaded => ranked.sort_by_key(|(_, s)| load(s)),
            Strategy::RoundRobin => {
                ranked.sort_by_key(|(_, s)| s.as_ref().map_or(u64::MAX, |s| s.last_used_ms))
            }
            Strategy::CreditAware => {
                let floor = self.settings.credit_floor;
                let before = ranked.len();
                ranked.retain(|(a, _)| a.credits >= floor);
                if ranked.is_empty() && before > 0 {
                    return Err(PoolError::Unavailable(NoAccount::NoCredits));
                }
                ranked.sort_by(|(a, sa), (b, sb)| {
                    b.credits.cmp(&a.credits).then(load(sa).cmp(&load(sb)))
                });
            }
        }
        let lease_ms = match kind {
            SlotKind::Image => self.settings.image_lease,
            SlotKind::Video => self.settings.video_lease,
        }
        .as_millis() as u64;
        for (account, status) in ranked {
            let limit = account.limit(kind);
            if limit.is_some_and(|l| status.as_ref().is_some_and(|s| s.in_flight(kind) >= l)) {
                continue;
            }
            let lease_id = util::random_hex(8);
            let cmd = AccountCommand::Acquire {
                request: SlotRequest {
                    kind,
                    limit,
                    lease_ms,
                },
                lease_id: lease_id.clone(),
            };
            let reply = self.coordinator.apply(&account.id, cmd).await?;
            self.loads
                .observe(&account.id, &reply.status, self.clock.now_ms());
            if !reply.ok {
                continue;
            }

            if let Some(m) = &self.metrics {
                m.slot(kind_label(kind), 1);
            }
            let slot = SlotGuard {
                lease: Some(SlotLease {
                    account_id: account.id.clone(),
                    lease_id,
                }),
                kind,
                coordinator: self.coordinator.clone(),
                spawner: self.spawner.clone(),
                metrics: self.metrics.clone(),
            };
            match self.ensure_token(&account, &reply.status).await {
                Ok(token) => {
                    let project_id = pick_project(&account, reply.status.project_seq);
                    let Some(project_id) = project_id else {
                        slot.release().await;
                        continue;
                    };
                    return Ok(Some(Lease {
                        account,
                        token,
                        project_id,
                        slot,
                    }));
                }
                Err(_) => slot.release().await,
            }
        }
        Ok(None)
    }
}

fn pick_project(account: &Account, seq: u64) -> Option<String> {
    if account.projects.is_empty() {
        return None;
    }
    let i = (seq.wrapping_sub(1) % account.projects.len() as u64) as usize;
    Some(account.projects[i].clone())
}

/// Accounts that may serve the request, or why none may (in the order of
/// `docs/upstream.md#accounts`).
fn eligible(
    accounts: Vec<Account>,
    kind: SlotKind,
    tier: Tier,
    model: &str,
    exclude: &[String],
) -> Result<Vec<Account>, PoolError> {
    let active: Vec<Account> = accounts.into_iter().filter(|a| a.active).collect();
    if active.is_empty() {
        return Err(PoolError::Unavailable(NoAccount::NoneActive));
    }
    let tiered: Vec<Account> = active.into_iter().filter(|a| a.tier >= tier).collect();
    if tiered.is_empty() {
        return Err(PoolError::Unavailable(NoAccount::TierTooLow {
            needed: tier,
            model: model.to_owned(),
        }));
    }
    let serving: Vec<Account> = tiered.into_iter().filter(|a| a.serves(kind)).collect();
    if serving.is_empty() {
        return Err(PoolError::Unavailable(NoAccount::FeatureDisabled(kind)));
    }
    let fresh: Vec<Account> = serving
        .into_iter()
        .filter(|a| !exclude.contains(&a.id))
        .collect();
    if fresh.is_empty() {
        return Err(PoolError::Unavailable(NoAccount::Exhausted));
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_rotate() {
        let a = Account {
            projects: vec!["p1".into(), "p2".into(), "p3".into()],
            ..serde_json::from_str(r#"{"id":"a","st":"s"}"#).unwrap()
        };
        let picks: Vec<_> = (1..=4).map(|s| pick_project(&a, s).unwrap()).collect();
        assert_eq!(picks, ["p1", "p2", "p3", "p1"]);
    }
}
