//! The account pool: account records in [`Storage`], their hot state behind the
//! [`Coordinator`] (slots, token, errors, cooldown), and the choice of an account for each
//! generation.
//!
//! - [`records`]: add (by ST or bulk import), update, enable, disable, delete, export.
//! - [`import`]: bulk imports too large for one request, one batch per step.
//! - [`index`]: which accounts may serve each kind and tier, who holds an ST or an email.
//! - [`select`]: selection strategies, slot leases, waiting for a free slot.
//! - [`tokens`]: single-flight access-token refresh, credits, background refresh.
//! - [`state`]: the per-account rule every coordinator applies.

pub mod import;
pub mod index;
pub mod loads;
pub mod records;
pub mod select;
pub mod summary;
pub mod tokens;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::flow::{Blame, FlowClient, FlowError};
use crate::models::Tier;
use crate::seams::{Bytes, Clock, Coordinator, Expect, SlotKind, Spawn, Storage, StorageError};
use crate::secret::Secret;

/// The coordination protocol ([`crate::coordination`]) under its former path.
pub use crate::coordination as state;
pub use select::{Lease, SlotGuard};
pub use state::{AccountCommand, AccountReply, AccountState, AccountStatus, TokenState};
pub use summary::PoolSummary;

/// Refresh the AT when less than this remains (`docs/upstream.md#accounts`).
pub const REFRESH_MARGIN_MS: u64 = 3_600_000;
const KEY_PREFIX: &str = "account:";
/// The status reason of an account the admin disabled.
const DISABLED_BY_ADMIN: &str = "disabled: by the admin";
/// The status reason of an expired account whose session token no longer yields an access
/// token (session-to-access-token refused it): a new ST is needed.
pub const SESSION_EXPIRED: &str = "session_expired";
/// The status reason of an expired account whose session token still yields access tokens
/// that Google refuses (credits answers 401): the account's grant is gone, signing in to
/// Flow again in the browser (and pushing the new ST) brings it back.
pub const GRANT_EXPIRED: &str = "grant_expired";
/// The most accounts [`AccountPool::list_page`] returns at once.
pub const MAX_PAGE: usize = 500;
/// How often [`AccountPool::modify`] retries when other writers keep changing the record.
const MAX_WRITE_ATTEMPTS: usize = 16;

pub use crate::config::Strategy;

/// One Google account: the durable record (the hot state lives in the coordinator).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Stable id.
    pub id: String,
    /// Session token (NextAuth cookie).
    pub st: Secret,
    /// Access token from the last exchange on record (the coordinator holds the current one).
    #[serde(default)]
    pub at: Option<Secret>,
    /// Its expiry (Unix ms).
    #[serde(default)]
    pub at_expires_ms: Option<u64>,
    /// Email.
    #[serde(default)]
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub remark: String,
    /// Remaining credits at the last check.
    #[serde(default)]
    pub credits: i64,
    /// Paygate tier.
    #[serde(default)]
    pub tier: Tier,
    /// Flow projects owned by the gateway on this account, used round-robin.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Selectable.
    #[serde(default = "yes")]
    pub active: bool,
    /// Why it is not active: [`SESSION_EXPIRED`], [`GRANT_EXPIRED`] or `disabled: …`
    /// (records of earlier versions may hold `expired: …`).
    #[serde(default)]
    pub status_reason: Option<String>,
    /// When it stopped being active (Unix ms).
    #[serde(default)]
    pub status_at_ms: Option<u64>,
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
    /// Its own captcha method chain (`capsolver,yescaptcha`), in place of `CAPTCHA_METHOD`;
    /// `None` uses the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captcha_method: Option<String>,
    /// The route key of the browser extension that solves for it (the `extension` method,
    /// §10.5: only a connection registered with exactly this key serves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_route_key: Option<String>,
    /// Its own proxy (normalised, `crate::proxy_url`), in place of `PROXY_URL`, for every
    /// upstream call of its generations; a secret (masked in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<Secret>,
    /// Its own egress relay, in place of `EGRESS_RELAY_URL` (with `egress_relay_secret`);
    /// wins over `proxy_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_relay_url: Option<String>,
    /// The secret of its relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_relay_secret: Option<Secret>,
}

fn yes() -> bool {
    true
}

impl Account {
    /// The token on record, if any.
    pub fn recorded_token(&self) -> Option<TokenState> {
        self.at.clone().map(|at| TokenState {
            at,
            expires_ms: self.at_expires_ms,
        })
    }

    /// True when the recorded AT is missing or less than an hour from expiry
    /// (`docs/upstream.md#accounts`).
    pub fn needs_refresh(&self, now_ms: u64) -> bool {
        !self
            .recorded_token()
            .is_some_and(|t| t.fresh(now_ms, REFRESH_MARGIN_MS))
    }

    /// The concurrency limit for `kind`.
    pub fn limit(&self, kind: SlotKind) -> Option<u32> {
        match kind {
            SlotKind::Image => self.image_concurrency,
            SlotKind::Video => self.video_concurrency,
        }
    }

    /// Whether the account serves `kind`.
    pub fn serves(&self, kind: SlotKind) -> bool {
        match kind {
            SlotKind::Image => self.image_enabled,
            SlotKind::Video => self.video_enabled,
        }
    }

    /// `active`, `expired` or `disabled`.
    pub fn state_label(&self) -> &'static str {
        if self.active {
            "active"
        } else if self.expired() {
            "expired"
        } else {
            "disabled"
        }
    }

    /// Whether the account stopped because Google no longer accepts its credentials
    /// ([`SESSION_EXPIRED`], [`GRANT_EXPIRED`]), not because of the admin or errors.
    pub fn expired(&self) -> bool {
        !self.active
            && self.status_reason.as_deref().is_some_and(|r| {
                r == SESSION_EXPIRED || r == GRANT_EXPIRED || r.starts_with("expired")
            })
    }

    fn key(&self) -> String {
        record_key(&self.id)
    }

    /// How its calls leave when it names its own way ([`crate::egress::account_egress`]):
    /// its relay, else its proxy; `None` uses the configured default.
    pub fn egress(&self) -> Option<crate::seams::Egress> {
        crate::egress::account_egress(
            self.egress_relay_url.as_deref(),
            self.egress_relay_secret.as_ref(),
            self.proxy_url.as_ref(),
        )
    }
}

fn record_key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

fn encode(account: &Account) -> Result<Bytes, StorageError> {
    serde_json::to_vec(account)
        .map(Bytes::from)
        .map_err(|e| StorageError(e.to_string()))
}

fn decode(raw: &[u8]) -> Result<Account, StorageError> {
    serde_json::from_slice(raw).map_err(|e| StorageError(format!("corrupt account record: {e}")))
}

/// Errors of the pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// An account with this ST exists already.
    #[error("an account with this session token exists already ({0})")]
    Duplicate(String),
    /// The ST did not yield an AT, or an upstream call failed while adding or refreshing.
    #[error("session token rejected: {0}")]
    Rejected(FlowError),
    /// No such account.
    #[error("no account with id {0}")]
    NotFound(String),
    /// A bad field in an admin request.
    #[error("{0}")]
    Invalid(String),
    /// No account can serve the request.
    #[error("{0}")]
    Unavailable(NoAccount),
    /// The storage or coordination backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why no account could be chosen (in English; `docs/upstream.md#accounts`).
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
    /// Every eligible account is resting after quota or rate-limit errors.
    CoolingDown {
        /// The earliest moment one comes back (Unix ms).
        until_ms: u64,
        /// Seconds from now until then.
        retry_after_secs: u32,
    },
    /// With the credit-aware strategy: every eligible account is under the credit floor.
    NoCredits,
    /// Every eligible account stayed at its concurrency limit for the whole slot wait, or
    /// failed to refresh its token.
    Busy(SlotKind),
    /// Every eligible account was already tried for this request.
    Exhausted,
}

impl NoAccount {
    /// Seconds a client should wait before retrying.
    pub fn retry_after_secs(&self) -> u32 {
        match self {
            Self::CoolingDown {
                retry_after_secs, ..
            } => (*retry_after_secs).max(1),
            Self::Busy(_) => 5,
            _ => 30,
        }
    }
}

impl std::fmt::Display for NoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = |k: &SlotKind| match k {
            SlotKind::Image => "image",
            SlotKind::Video => "video",
        };
        match self {
            Self::NoneActive => f.write_str(
                "No account is available: every account is disabled or expired, or none was added (POST /api/tokens).",
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
            Self::CoolingDown { retry_after_secs, .. } => write!(
                f,
                "Every eligible account is cooling down after quota or rate-limit errors; the first comes back in {retry_after_secs} s."
            ),
            Self::NoCredits => f.write_str("Every eligible account is below the configured credit floor."),
            Self::Busy(k) => write!(
                f,
                "No account could take this {} generation: all were at their concurrency limit for the whole slot wait. Retry shortly.",
                what(k)
            ),
            Self::Exhausted => f.write_str("Every eligible account was tried for this request and failed."),
        }
    }
}

/// Pool settings, from [`Config`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Selection strategy.
    pub strategy: Strategy,
    /// Credit floor for [`Strategy::CreditAware`].
    pub credit_floor: i64,
    /// How long a request waits for a slot.
    pub slot_wait: Duration,
    /// Image slot lease.
    pub image_lease: Duration,
    /// Video slot lease.
    pub video_lease: Duration,
    /// Consecutive counted errors that disable an account (0 = never).
    pub error_ban_threshold: u32,
    /// Cooldown after quota exhaustion.
    pub quota_cooldown: Duration,
    /// Cooldown after a plain rate limit.
    pub rate_limit_cooldown: Duration,
    /// Projects per account.
    pub project_pool_size: usize,
    /// Accounts one step of a bulk import adds.
    pub import_batch_size: usize,
}

impl From<&Config> for PoolSettings {
    fn from(c: &Config) -> Self {
        Self {
            strategy: c.selection_strategy,
            credit_floor: c.credit_floor,
            slot_wait: c.slot_wait_timeout,
            image_lease: c.image_slot_lease,
            video_lease: c.video_slot_lease,
            error_ban_threshold: c.error_ban_threshold,
            quota_cooldown: c.quota_cooldown,
            rate_limit_cooldown: c.rate_limit_cooldown,
            project_pool_size: c.project_pool_size,
            import_batch_size: c.import_batch_size,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self::from(&Config::default())
    }
}

/// Accounts over [`Storage`], hot state over a [`Coordinator`].
#[derive(Clone)]
pub struct AccountPool {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) coordinator: Arc<dyn Coordinator>,
    pub(crate) spawner: Option<Arc<dyn Spawn>>,
    pub(crate) flow: FlowClient,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: PoolSettings,
    pub(crate) loads: &'static loads::LoadCache,
    /// The index was seen built ([`index`]): shared by clones, so asked once per process.
    pub(crate) index_built: Arc<AtomicBool>,
    /// Where slots, upstream errors and token refreshes are counted (`GET /metrics`).
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for AccountPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPool")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AccountPool {
    /// A pool over the given seams.
    pub fn new(
        storage: Arc<dyn Storage>,
        coordinator: Arc<dyn Coordinator>,
        spawner: Option<Arc<dyn Spawn>>,
        flow: FlowClient,
        settings: PoolSettings,
    ) -> Self {
        let clock = flow.clock().clone();
        Self {
            storage,
            coordinator,
            spawner,
            flow,
            clock,
            settings,
            loads: loads::LoadCache::shared(),
            index_built: Arc::new(AtomicBool::new(false)),
            metrics: None,
        }
    }

    /// Counts slots held, upstream errors by class and token refreshes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Notes that a slot of `kind` was given back (a disarmed one, released by command).
    pub(crate) fn slot_released(&self, kind: SlotKind) {
        if let Some(m) = &self.metrics {
            m.slot(select::kind_label(kind), -1);
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    /// Every account, oldest first.
    ///
    /// # Errors
    /// Storage failures. Records that no longer parse are skipped, not fatal.
    pub async fn list(&self) -> Result<Vec<Account>, StorageError> {
        let keys = crate::seams::list_all(&*self.storage, KEY_PREFIX).await?;
        let reads = keys.iter().map(|k| self.storage.get(k));
        let mut out: Vec<Account> = futures::future::join_all(reads)
            .await
            .into_iter()
            .filter_map(|r| r.ok().flatten())
            .filter_map(|raw| serde_json::from_slice::<Account>(&raw).ok())
            .collect();
        out.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// One page of accounts in id order: at most `limit` (1–500) after `cursor` (from the
    /// page before; `None` for the first), and the cursor of the next page (`None` after the
    /// last). Costs one listing and one batched read, whatever the pool's size.
    ///
    /// # Errors
    /// Storage failures (an unknown cursor among them). Records that no longer parse are
    /// skipped.
    pub async fn list_page(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Account>, Option<String>), StorageError> {
        let page = self
            .storage
            .list(KEY_PREFIX, limit.clamp(1, MAX_PAGE), cursor)
            .await?;
        let accounts = self
            .storage
            .get_many(&page.keys)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_slice::<Account>(&raw).ok())
            .collect();
        Ok((accounts, page.cursor))
    }

    /// One account.
    ///
    /// # Errors
    /// [`PoolError::NotFound`], storage failures.
    pub async fn get(&self, id: &str) -> Result<Account, PoolError> {
        let raw = self
            .storage
            .get(&record_key(id))
            .await?
            .ok_or_else(|| PoolError::NotFound(id.to_owned()))?;
        Ok(decode(&raw)?)
    }

    /// Changes one account's record with `change`, atomically: the record is read, changed
    /// and written back only if no other writer changed it meanwhile (a conditional write),
    /// else read again and changed again, so racing refreshes, edits and disables all land.
    /// A record deleted meanwhile stays deleted ([`PoolError::NotFound`]). Over a storage
    /// without conditional writes ([`crate::seams::Capabilities`]) the last writer wins.
    ///
    /// # Errors
    /// Not found, storage failures, or a record that kept changing under 16 attempts.
    pub async fn modify(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Account),
    ) -> Result<Account, PoolError> {
        let key = record_key(id);
        let conditional = self.storage.capabilities().conditional_writes;
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                // Jittered, so that writers who collided do not collide again in lockstep.
                let cap = 1u64 << attempt.min(6);
                let wait = crate::util::random_u64() % (cap + 1);
                self.clock.sleep(Duration::from_millis(wait)).await;
            }
            let raw = self
                .storage
                .get(&key)
                .await?
                .ok_or_else(|| PoolError::NotFound(id.to_owned()))?;
            let old = decode(&raw)?;
            let mut new = old.clone();
            change(&mut new);
            let value = encode(&new)?;
            let written = if conditional {
                self.storage
                    .put_if(&key, value, None, Expect::Value(raw))
                    .await?
            } else {
                self.storage.put(&key, value, None).await?;
                true
            };
            if written {
                self.reindex(Some(&old), Some(&new)).await?;
                return Ok(new);
            }
        }
        Err(PoolError::Storage(StorageError(format!(
            "account {id} kept changing under {MAX_WRITE_ATTEMPTS} attempts to write it"
        ))))
    }

    /// Writes a new account's record; `Ok(false)` when its id is taken (nothing written).
    async fn insert(&self, account: &Account) -> Result<bool, StorageError> {
        let value = encode(account)?;
        let written = if self.storage.capabilities().conditional_writes {
            self.storage
                .put_if(&account.key(), value, None, Expect::Absent)
                .await?
        } else if self.storage.get(&account.key()).await?.is_some() {
            false
        } else {
            self.storage.put(&account.key(), value, None).await?;
            true
        };
        if written {
            self.reindex(None, Some(account)).await?;
        }
        Ok(written)
    }

    /// The hot state of an account.
    ///
    /// # Errors
    /// Coordinator failures.
    pub async fn status(&self, account_id: &str) -> Result<AccountStatus, StorageError> {
        let status = self
            .coordinator
            .apply(account_id, AccountCommand::Status)
            .await?
            .status;
        self.loads.observe(account_id, &status, self.clock.now_ms());
        Ok(status)
    }

    /// Ends a generation on its account in one coordinator call: records the outcome and
    /// releases the slot. Success resets the error count; a failure is classified once by its
    /// [`Blame`]: client and captcha failures are not counted, quota and rate limits rest the
    /// account, refused credentials invalidate the token, account failures count and disable
    /// the account at the threshold.
    pub async fn finish(&self, mut lease: Lease, failure: Option<(Blame, String)>) {
        let kind = lease.slot.kind();
        let release = lease.slot.disarm().map(|l| l.lease_id);
        if release.is_some() {
            self.slot_released(kind);
        }
        self.finish_held(&lease.account.id, release, failure).await;
    }

    /// [`finish`](Self::finish) for a slot held outside a [`Lease`] (a stored job's): records
    /// the outcome on `account_id` and releases the lease `release`.
    pub async fn finish_held(
        &self,
        account_id: &str,
        release: Option<String>,
        failure: Option<(Blame, String)>,
    ) {
        if let (Some(m), Some((blame, _))) = (&self.metrics, &failure) {
            m.upstream_error(blame.as_str());
        }
        let command = match &failure {
            None => AccountCommand::Success { release },
            Some((blame, reason)) => {
                let cooldown = match blame {
                    Blame::Quota => Some(self.settings.quota_cooldown),
                    Blame::RateLimited => Some(self.settings.rate_limit_cooldown),
                    _ => None,
                };
                if *blame == Blame::Auth {
                    let _ = self
                        .coordinator
                        .apply(account_id, AccountCommand::InvalidateToken)
                        .await;
                }
                AccountCommand::Failure {
                    counted: *blame == Blame::Account,
                    cooldown_ms: cooldown.map(|d| d.as_millis() as u64),
                    reason: reason.clone(),
                    ban_threshold: self.settings.error_ban_threshold,
                    release,
                }
            }
        };
        // If this call fails, the slot's lease still lapses on its own.
        let Ok(reply) = self.coordinator.apply(account_id, command).await else {
            return;
        };
        self.loads
            .observe(account_id, &reply.status, self.clock.now_ms());
        if let (true, Some((_, reason))) = (reply.ok, failure) {
            let n = reply.status.consecutive_errors;
            let _ = self
                .deactivate(
                    account_id,
                    format!("disabled: {n} consecutive errors; last: {reason}"),
                )
                .await;
        }
    }

    /// Marks an account inactive with a reason (`expired: …` or `disabled: …`).
    ///
    /// # Errors
    /// Not found, storage failures.
    pub async fn deactivate(&self, id: &str, reason: String) -> Result<Account, PoolError> {
        let now = self.clock.now_ms();
        self.modify(id, |account| {
            account.active = false;
            account.status_reason = Some(reason.clone());
            account.status_at_ms = Some(now);
        })
        .await
    }
}

fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = (crate::util::random_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
