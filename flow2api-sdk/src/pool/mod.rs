//! The account pool: account records in [`Storage`], their tokens, and the choice of an
//! account (with a concurrency slot held through the [`Coordinator`]) for each generation.

pub mod slots;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::flow::{FlowClient, FlowError};
use crate::models::Tier;
use crate::seams::{
    Bytes, Clock, Coordinator, SlotKind, SlotLease, SlotRequest, Storage, StorageError,
};
use crate::secret::Secret;
use crate::util;

/// Refresh the AT when less than this remains (§3.3).
pub const REFRESH_MARGIN_MS: u64 = 3_600_000;
/// Default lease of an image slot.
pub const IMAGE_LEASE_MS: u64 = 10 * 60 * 1000;
const KEY_PREFIX: &str = "account:";

/// One Google account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Stable id.
    pub id: String,
    /// Session token (NextAuth cookie).
    pub st: Secret,
    /// Access token.
    #[serde(default)]
    pub at: Option<Secret>,
    /// AT expiry (Unix ms).
    #[serde(default)]
    pub at_expires_ms: Option<u64>,
    /// Email.
    #[serde(default)]
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Remaining credits at the last check.
    #[serde(default)]
    pub credits: i64,
    /// Paygate tier.
    #[serde(default)]
    pub tier: Tier,
    /// Flow projects owned by the gateway on this account.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Selectable.
    #[serde(default = "yes")]
    pub active: bool,
    /// Why it is not active (`expired: …`, `disabled: …`).
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Serves image requests.
    #[serde(default = "yes")]
    pub image_enabled: bool,
    /// Serves video requests.
    #[serde(default = "yes")]
    pub video_enabled: bool,
    /// Concurrent image generations allowed; `None` = unlimited.
    #[serde(default)]
    pub image_concurrency: Option<u32>,
    /// Concurrent video generations allowed; `None` = unlimited.
    #[serde(default)]
    pub video_concurrency: Option<u32>,
    /// When it was added (Unix ms).
    #[serde(default)]
    pub created_at_ms: u64,
}

fn yes() -> bool {
    true
}

impl Account {
    /// True when the AT is missing, its expiry unknown, or less than an hour away (§3.3).
    pub fn needs_refresh(&self, now_ms: u64) -> bool {
        match (&self.at, self.at_expires_ms) {
            (Some(_), Some(exp)) => exp < now_ms.saturating_add(REFRESH_MARGIN_MS),
            _ => true,
        }
    }

    /// A project for the next generation (spread over the pool at random, so no write is
    /// needed per request).
    pub fn pick_project(&self) -> Option<&str> {
        if self.projects.is_empty() {
            return None;
        }
        let i = (util::random_u64() % self.projects.len() as u64) as usize;
        Some(&self.projects[i])
    }

    fn key(&self) -> String {
        format!("{KEY_PREFIX}{}", self.id)
    }
}

/// Errors of the pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// An account with this ST exists already.
    #[error("an account with this session token exists already ({0})")]
    Duplicate(String),
    /// The ST did not yield an AT, or an upstream call failed while adding.
    #[error("session token rejected: {0}")]
    Rejected(FlowError),
    /// No such account.
    #[error("no account with id {0}")]
    NotFound(String),
    /// No account can serve the request.
    #[error("{0}")]
    Unavailable(NoAccount),
    /// The storage or coordination backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why no account could be chosen (§4.4, in English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAccount {
    /// No active account at all.
    NoneActive,
    /// Active accounts exist, but none has the tier the model needs.
    TierTooLow {
        /// The tier needed.
        needed: Tier,
        /// The model asked for.
        model: String,
    },
    /// Tier-eligible accounts exist, but the capability is switched off on all of them.
    FeatureDisabled(SlotKind),
    /// Every eligible account is at its concurrency limit or failed to refresh.
    Busy(SlotKind),
}

impl std::fmt::Display for NoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = |k: &SlotKind| match k {
            SlotKind::Image => "image",
            SlotKind::Video => "video",
        };
        match self {
            Self::NoneActive => f.write_str(
                "No account is available: add a Google account (POST /api/tokens) or re-enable one.",
            ),
            Self::TierTooLow { needed, model } => write!(
                f,
                "The model {model} needs a {} account, and no active account has that tier.",
                needed.label()
            ),
            Self::FeatureDisabled(k) => write!(
                f,
                "Accounts of the right tier exist, but {} generation is disabled on all of them.",
                what(k)
            ),
            Self::Busy(k) => write!(
                f,
                "No account can take this {} generation now: all are busy, cooling down or expired. Retry shortly.",
                what(k)
            ),
        }
    }
}

/// A chosen account with a held slot. Release it with [`AccountPool::release`].
#[derive(Debug, Clone)]
pub struct Lease {
    /// The account, with a fresh AT.
    pub account: Account,
    /// The slot held on it.
    pub slot: SlotLease,
}

/// Accounts over [`Storage`], slots over a [`Coordinator`].
#[derive(Clone)]
pub struct AccountPool {
    storage: Arc<dyn Storage>,
    coordinator: Arc<dyn Coordinator>,
    flow: FlowClient,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AccountPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPool").finish_non_exhaustive()
    }
}

impl AccountPool {
    /// A pool over the given seams.
    pub fn new(
        storage: Arc<dyn Storage>,
        coordinator: Arc<dyn Coordinator>,
        flow: FlowClient,
    ) -> Self {
        let clock = flow.clock().clone();
        Self {
            storage,
            coordinator,
            flow,
            clock,
        }
    }

    /// Every account, oldest first.
    ///
    /// # Errors
    /// Storage failures. Records that no longer parse are skipped, not fatal.
    pub async fn list(&self) -> Result<Vec<Account>, StorageError> {
        let keys = self.storage.list(KEY_PREFIX).await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(raw) = self.storage.get(&key).await? {
                if let Ok(a) = serde_json::from_slice::<Account>(&raw) {
                    out.push(a);
                }
            }
        }
        out.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One account.
    ///
    /// # Errors
    /// [`PoolError::NotFound`], storage failures.
    pub async fn get(&self, id: &str) -> Result<Account, PoolError> {
        let raw = self
            .storage
            .get(&format!("{KEY_PREFIX}{id}"))
            .await?
            .ok_or_else(|| PoolError::NotFound(id.to_owned()))?;
        serde_json::from_slice(&raw)
            .map_err(|e| PoolError::Storage(StorageError(format!("corrupt account record: {e}"))))
    }

    /// Writes an account record.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn save(&self, account: &Account) -> Result<(), StorageError> {
        let raw = serde_json::to_vec(account).map_err(|e| StorageError(e.to_string()))?;
        self.storage
            .put(&account.key(), Bytes::from(raw), None)
            .await
    }

    /// Deletes an account.
    ///
    /// # Errors
    /// [`PoolError::NotFound`], storage failures.
    pub async fn delete(&self, id: &str) -> Result<(), PoolError> {
        let account = self.get(id).await?;
        self.storage.delete(&account.key()).await?;
        Ok(())
    }

    /// Adds an account from its session token: E1 → AT, E2 → credits and tier (tolerated
    /// failure), E3 → one project.
    ///
    /// # Errors
    /// [`PoolError::Duplicate`], [`PoolError::Rejected`], storage failures.
    pub async fn add(&self, st: Secret) -> Result<Account, PoolError> {
        let st = Secret::new(st.expose().trim());
        if let Some(existing) = self.list().await?.into_iter().find(|a| a.st == st) {
            return Err(PoolError::Duplicate(existing.id));
        }
        let session = self.flow.session(&st).await.map_err(PoolError::Rejected)?;
        let credits = self.flow.credits(&session.access_token).await.ok();
        let now = self.clock.now_ms();
        let title = format!("Flow2API {} P1", &util::format_rfc3339(now)[..16]);
        let project = self
            .flow
            .create_project(&st, &title)
            .await
            .map_err(PoolError::Rejected)?;
        let email = session.email.clone().unwrap_or_default();
        let account = Account {
            id: util::random_hex(6),
            st,
            at: Some(session.access_token),
            at_expires_ms: session.expires_ms,
            name: session.name.unwrap_or_else(|| email.clone()),
            email,
            credits: credits.map_or(0, |c| c.credits),
            tier: credits.map_or(Tier::Free, |c| c.tier),
            projects: vec![project],
            active: true,
            status_reason: None,
            image_enabled: true,
            video_enabled: true,
            image_concurrency: None,
            video_concurrency: None,
            created_at_ms: now,
        };
        self.save(&account).await?;
        Ok(account)
    }

    /// Refreshes the AT (E1) and credits (E2) of an account and stores the result. An ST that
    /// no longer yields an AT marks the account expired.
    ///
    /// # Errors
    /// The upstream error; storage failures are reported as transport-free [`PoolError`]s.
    pub async fn refresh(&self, mut account: Account) -> Result<Account, PoolError> {
        match self.flow.session(&account.st).await {
            Ok(s) => {
                account.at = Some(s.access_token);
                account.at_expires_ms = s.expires_ms;
                if let Ok(c) = self
                    .flow
                    .credits(account.at.as_ref().unwrap_or(&Secret::default()))
                    .await
                {
                    account.credits = c.credits;
                    account.tier = c.tier;
                }
                self.save(&account).await?;
                Ok(account)
            }
            Err(e) => {
                if e.is_auth() {
                    account.active = false;
                    account.status_reason = Some(format!("expired: {e}"));
                    self.save(&account).await?;
                }
                Err(PoolError::Rejected(e))
            }
        }
    }

    /// Chooses an account that may serve a generation of `kind` needing `tier`, takes a slot on
    /// it and makes sure its AT is fresh. Accounts are tried in random order; one whose slot
    /// is full or whose refresh fails is skipped.
    ///
    /// # Errors
    /// [`PoolError::Unavailable`] with the reason; storage failures.
    pub async fn acquire(
        &self,
        kind: SlotKind,
        tier: Tier,
        model: &str,
    ) -> Result<Lease, PoolError> {
        let accounts = self.list().await?;
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
        let mut candidates: Vec<Account> = tiered
            .into_iter()
            .filter(|a| match kind {
                SlotKind::Image => a.image_enabled,
                SlotKind::Video => a.video_enabled,
            })
            .collect();
        if candidates.is_empty() {
            return Err(PoolError::Unavailable(NoAccount::FeatureDisabled(kind)));
        }
        shuffle(&mut candidates);
        let now = self.clock.now_ms();
        // Accounts with a fresh AT first, so requests rarely pay for a refresh.
        candidates.sort_by_key(|a| a.needs_refresh(now));
        for account in candidates {
            let limit = match kind {
                SlotKind::Image => account.image_concurrency,
                SlotKind::Video => account.video_concurrency,
            };
            let request = SlotRequest {
                kind,
                limit,
                lease_ms: IMAGE_LEASE_MS,
            };
            let Some(slot) = self.coordinator.acquire(&account.id, request).await? else {
                continue;
            };
            let account = if account.needs_refresh(now) {
                match self.refresh(account).await {
                    Ok(a) => a,
                    Err(_) => {
                        let _ = self.coordinator.release(&slot).await;
                        continue;
                    }
                }
            } else {
                account
            };
            return Ok(Lease { account, slot });
        }
        Err(PoolError::Unavailable(NoAccount::Busy(kind)))
    }

    /// Gives a slot back.
    pub async fn release(&self, lease: &Lease) {
        // A failed release only delays the slot until its lease lapses.
        let _ = self.coordinator.release(&lease.slot).await;
    }

    /// Slots currently held on an account.
    ///
    /// # Errors
    /// Coordinator failures.
    pub async fn in_flight(&self, account_id: &str) -> Result<u32, StorageError> {
        self.coordinator.in_flight(account_id).await
    }
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (util::random_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
