//! Access tokens: refreshed when within an hour of expiry, single-flight per account across
//! every instance (the coordinator holds the lock and the current token), and ahead of time
//! by a background pass; credits and tier ride along.

use std::time::Duration;

use crate::flow::Credits;

use super::{Account, AccountPool, PoolError, GRANT_EXPIRED, REFRESH_MARGIN_MS, SESSION_EXPIRED};
use crate::coordination::{AccountCommand, AccountStatus, TokenState};

/// How long the refresh lock holds if its holder dies mid-refresh.
const REFRESH_LOCK_MS: u64 = 30_000;
/// The background pass refreshes tokens that expire within this margin.
const BACKGROUND_MARGIN_MS: u64 = 2 * REFRESH_MARGIN_MS;

/// What one background pass did. Displays as one log line of counts (never a token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Accounts looked at.
    pub checked: usize,
    /// Tokens refreshed.
    pub refreshed: usize,
    /// Accounts whose ST no longer works (now expired).
    pub expired: usize,
    /// Cooldowns ended because credits came back.
    pub cooldowns_cleared: usize,
    /// Other failures.
    pub failed: usize,
    /// Index keys rewritten or removed because they no longer matched the records (the
    /// comparison runs at most once per [`index::CHECK_INTERVAL_MS`](super::index::CHECK_INTERVAL_MS)).
    pub index_repairs: usize,
}

impl std::fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checked={} refreshed={} expired={} cooldowns_cleared={} failed={} index_repairs={}",
            self.checked,
            self.refreshed,
            self.expired,
            self.cooldowns_cleared,
            self.failed,
            self.index_repairs
        )
    }
}

impl AccountPool {
    /// A token valid for at least an hour. At most one refresh per account runs at a time,
    /// whichever instance asks; the others wait for its result.
    ///
    /// # Errors
    /// [`PoolError::Rejected`] when the ST no longer yields a token (the account is then
    /// expired) or the exchange failed; coordinator failures.
    pub async fn ensure_token(
        &self,
        account: &Account,
        status: &AccountStatus,
    ) -> Result<TokenState, PoolError> {
        self.ensure_token_within(account, status, REFRESH_MARGIN_MS)
            .await
    }

    async fn ensure_token_within(
        &self,
        account: &Account,
        status: &AccountStatus,
        margin_ms: u64,
    ) -> Result<TokenState, PoolError> {
        if let Some(t) =
            current_token(account, status).filter(|t| t.fresh(self.clock.now_ms(), margin_ms))
        {
            return Ok(t);
        }
        let deadline = self.clock.now_ms() + REFRESH_LOCK_MS + 5_000;
        loop {
            let reply = self
                .coordinator
                .apply(
                    &account.id,
                    AccountCommand::BeginRefresh {
                        lock_ms: REFRESH_LOCK_MS,
                    },
                )
                .await?;
            let now = self.clock.now_ms();
            let fresh = reply
                .status
                .token
                .clone()
                .filter(|t| t.fresh(now, margin_ms));
            if reply.ok {
                if let Some(t) = fresh {
                    // Someone finished just before us: nothing to do.
                    let _ = self
                        .coordinator
                        .apply(&account.id, AccountCommand::FinishRefresh { token: None })
                        .await;
                    return Ok(t);
                }
                return self.refresh_locked(account).await.map(|(t, _)| t);
            }
            if let Some(t) = fresh {
                return Ok(t);
            }
            if now > deadline {
                return Err(PoolError::Unavailable(super::NoAccount::Busy(
                    crate::seams::SlotKind::Image,
                )));
            }
            self.clock.sleep(Duration::from_millis(100)).await;
        }
    }

    /// With the refresh lock held: session-to-access-token, then credits; stores the token, credits
    /// and tier; releases the lock. The two dead states expire the account: an ST that no
    /// longer yields a token ([`SESSION_EXPIRED`]), and an ST whose fresh token credits
    /// refuses with 401 ([`GRANT_EXPIRED`]). Credits failing otherwise is tolerated.
    async fn refresh_locked(
        &self,
        account: &Account,
    ) -> Result<(TokenState, Option<Credits>), PoolError> {
        let result = self.refresh_locked_uncounted(account).await;
        if let Some(m) = &self.metrics {
            m.token_refresh("at", if result.is_ok() { "success" } else { "failure" });
        }
        result
    }

    async fn refresh_locked_uncounted(
        &self,
        account: &Account,
    ) -> Result<(TokenState, Option<Credits>), PoolError> {
        let release = || async {
            let _ = self
                .coordinator
                .apply(&account.id, AccountCommand::FinishRefresh { token: None })
                .await;
        };
        // The account's own egress (proxy or relay), as its generations use.
        let flow = match account.egress() {
            Some(egress) => std::borrow::Cow::Owned(self.flow.with_egress(egress)),
            None => std::borrow::Cow::Borrowed(&self.flow),
        };
        let session = match flow.session(&account.st).await {
            Ok(s) => s,
            Err(e) => {
                release().await;
                if e.is_auth() {
                    let _ = self
                        .deactivate(&account.id, SESSION_EXPIRED.to_owned())
                        .await;
                }
                return Err(PoolError::Rejected(e));
            }
        };
        let token = TokenState {
            at: session.access_token,
            expires_ms: session.expires_ms,
        };
        // Asked before the token is handed out: a token Google refuses is no token.
        let credits = match flow.credits(&token.at).await {
            Ok(c) => Some(c),
            Err(e) if e.is_auth() => {
                release().await;
                let _ = self.deactivate(&account.id, GRANT_EXPIRED.to_owned()).await;
                return Err(PoolError::Rejected(e));
            }
            Err(_) => None,
        };
        self.coordinator
            .apply(
                &account.id,
                AccountCommand::FinishRefresh {
                    token: Some(token.clone()),
                },
            )
            .await?;
        self.record_refresh(account, &token, credits).await?;
        Ok((token, credits))
    }

    /// Writes the refreshed token, credits and tier into the record (a rare write: about once
    /// an hour per account) and ends a quota cooldown when credits came back.
    async fn record_refresh(
        &self,
        account: &Account,
        token: &TokenState,
        credits: Option<Credits>,
    ) -> Result<(), PoolError> {
        let mut previous_credits = None;
        self.modify(&account.id, |record| {
            previous_credits = Some(record.credits);
            record.at = Some(token.at.clone());
            record.at_expires_ms = token.expires_ms;
            if let Some(c) = credits {
                record.credits = c.credits;
                record.tier = c.tier;
            }
        })
        .await?;
        if let (Some(c), Some(previous)) = (credits, previous_credits) {
            if c.credits > 0 && (previous <= 0 || c.credits > previous) {
                self.clear_quota_cooldown(&account.id).await;
            }
        }
        Ok(())
    }

    async fn clear_quota_cooldown(&self, account_id: &str) -> bool {
        let Ok(status) = self.status(account_id).await else {
            return false;
        };
        let quota = status
            .cooldown_reason
            .as_deref()
            .is_some_and(|r| r.contains("quota"));
        if status.cooling_down(self.clock.now_ms()) && quota {
            return self
                .coordinator
                .apply(account_id, AccountCommand::ClearCooldown)
                .await
                .is_ok();
        }
        false
    }

    /// Refreshes an account's token now (admin "refresh"), single-flight with requests.
    ///
    /// # Errors
    /// As [`AccountPool::ensure_token`].
    pub async fn refresh_now(&self, id: &str) -> Result<Account, PoolError> {
        let account = self.get(id).await?;
        let status = self.status(id).await?;
        // A margin beyond any token's life forces a new exchange.
        self.ensure_token_within(&account, &status, u64::MAX / 4)
            .await?;
        self.get(id).await
    }

    /// One background pass (cron at the edge, a timer natively): refreshes tokens that expire
    /// within two hours, and credits of accounts resting after quota errors, so that requests
    /// rarely pay for a refresh and quota cooldowns end as soon as credits return.
    ///
    /// # Errors
    /// Storage failures listing accounts; per-account failures are counted, not returned.
    pub async fn refresh_due(&self) -> Result<RefreshReport, PoolError> {
        let records = self.list().await?;
        let mut report = RefreshReport {
            index_repairs: self.repair_index_if_due(&records).await?,
            ..RefreshReport::default()
        };
        for account in records.into_iter().filter(|a| a.active) {
            report.checked += 1;
            let Ok(status) = self.status(&account.id).await else {
                report.failed += 1;
                continue;
            };
            let now = self.clock.now_ms();
            let mut token = current_token(&account, &status);
            if !token
                .as_ref()
                .is_some_and(|t| t.fresh(now, BACKGROUND_MARGIN_MS))
            {
                match self
                    .ensure_token_within(&account, &status, BACKGROUND_MARGIN_MS)
                    .await
                {
                    Ok(t) => {
                        report.refreshed += 1;
                        token = Some(t);
                    }
                    Err(PoolError::Rejected(e)) if e.is_auth() => {
                        report.expired += 1;
                        continue;
                    }
                    Err(_) => {
                        report.failed += 1;
                        continue;
                    }
                }
                // The refresh also read credits, and may have ended the cooldown.
                if status.cooling_down(now)
                    && self
                        .status(&account.id)
                        .await
                        .is_ok_and(|s| !s.cooling_down(now))
                {
                    report.cooldowns_cleared += 1;
                    continue;
                }
            }
            if status.cooling_down(now) {
                if let Some(t) = token {
                    if let Ok(c) = self.flow.credits(&t.at).await {
                        let was_empty = account.credits <= 0;
                        if c.credits > 0
                            && (was_empty || c.credits > account.credits)
                            && self.clear_quota_cooldown(&account.id).await
                        {
                            report.cooldowns_cleared += 1;
                        }
                        let _ = self
                            .modify(&account.id, |record| {
                                record.credits = c.credits;
                                record.tier = c.tier;
                            })
                            .await;
                    }
                }
            }
        }
        Ok(report)
    }
}

/// The token to use: the coordinator's, else the record's — unless Google refused it.
pub(crate) fn current_token(account: &Account, status: &AccountStatus) -> Option<TokenState> {
    if status.token_invalid {
        return None;
    }
    status.token.clone().or_else(|| account.recorded_token())
}
