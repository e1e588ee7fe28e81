//! The [`Coordinator`](crate::seams::Coordinator) protocol: the commands a coordinator takes,
//! its replies, and the hot, strongly consistent state of one account with the rule that
//! changes it (slots held as leases, the access token with its single-flight refresh lock,
//! consecutive errors, cooldown and usage). It sits below the seams and the pool, which both
//! speak it. The in-process coordinator keeps one [`AccountState`] per account in memory; at the
//! edge each account's Durable Object persists its own and calls [`AccountState::apply`].

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub mod slots;

use slots::SlotTable;

/// What a generation asks of an account's coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotKind {
    /// An image generation.
    Image,
    /// A video generation.
    Video,
}

/// A request for a concurrency slot on one account.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct SlotRequest {
    /// Image or video.
    pub kind: SlotKind,
    /// The account's limit for that kind; `None` = unlimited.
    pub limit: Option<u32>,
    /// How long the slot is held at most unless renewed, in milliseconds.
    pub lease_ms: u64,
}

/// An access token and its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    /// The access token.
    pub at: Secret,
    /// Expiry (Unix ms), when known.
    pub expires_ms: Option<u64>,
}

impl TokenState {
    /// True while more than `margin_ms` remain.
    pub fn fresh(&self, now_ms: u64, margin_ms: u64) -> bool {
        self.expires_ms
            .is_some_and(|e| e > now_ms.saturating_add(margin_ms))
    }
}

/// What a coordinator is asked to do to one account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AccountCommand {
    /// Take a slot if one is free; `ok` tells. Also advances the project round-robin.
    Acquire {
        /// Kind, limit, lease.
        request: SlotRequest,
        /// The id the new lease gets.
        lease_id: String,
    },
    /// Extend a held lease by `lease_ms` from now; `ok` is false when it had lapsed.
    Renew {
        /// The lease.
        lease_id: String,
        /// New length.
        lease_ms: u64,
    },
    /// Give a slot back.
    Release {
        /// The lease.
        lease_id: String,
    },
    /// Read the state.
    Status,
    /// Ask to refresh the access token: `ok` means the caller holds the lock for `lock_ms`
    /// and must finish with [`AccountCommand::FinishRefresh`]; otherwise someone else is
    /// refreshing (wait and read `token`).
    BeginRefresh {
        /// How long the lock holds if the holder dies.
        lock_ms: u64,
    },
    /// End a refresh: store the new token (`Some`) or give up (`None`); releases the lock.
    FinishRefresh {
        /// The new token.
        token: Option<TokenState>,
    },
    /// Forget the token (Google refused it), so the next use refreshes.
    InvalidateToken,
    /// A generation succeeded: consecutive errors reset, usage counted; `release` gives its
    /// slot back in the same call.
    Success {
        /// The lease to release.
        #[serde(default)]
        release: Option<String>,
    },
    /// A generation failed. `counted` failures add to the consecutive count (`ok` is true
    /// when that count reached `ban_threshold`); `cooldown_ms` rests the account.
    Failure {
        /// Whether the account was at fault.
        counted: bool,
        /// Rest the account this long.
        cooldown_ms: Option<u64>,
        /// Why, for the admin list.
        reason: String,
        /// Consecutive counted failures that disable the account.
        ban_threshold: u32,
        /// The lease to release in the same call.
        #[serde(default)]
        release: Option<String>,
    },
    /// End a cooldown early (credits came back).
    ClearCooldown,
    /// Clear errors and cooldown (the account was re-enabled or its ST updated).
    Reset,
}

/// The state as a reply carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatus {
    /// Image slots held.
    pub image_in_flight: u32,
    /// Video slots held.
    pub video_in_flight: u32,
    /// The current access token.
    pub token: Option<TokenState>,
    /// A refresh is under way.
    pub refreshing: bool,
    /// Google refused the last token: refresh before using any token on record.
    pub token_invalid: bool,
    /// Consecutive counted failures.
    pub consecutive_errors: u32,
    /// Resting until (Unix ms); 0 = not resting.
    pub cooldown_until_ms: u64,
    /// Why it rests.
    pub cooldown_reason: Option<String>,
    /// Last successful use (Unix ms).
    pub last_used_ms: u64,
    /// Successful generations.
    pub use_count: u64,
    /// Failed generations (counted or not).
    pub error_count: u64,
    /// Round-robin position in the account's project pool, advanced by each acquire.
    pub project_seq: u64,
}

impl AccountStatus {
    /// Slots of `kind` held.
    pub fn in_flight(&self, kind: SlotKind) -> u32 {
        match kind {
            SlotKind::Image => self.image_in_flight,
            SlotKind::Video => self.video_in_flight,
        }
    }

    /// Resting at `now_ms`.
    pub fn cooling_down(&self, now_ms: u64) -> bool {
        self.cooldown_until_ms > now_ms
    }
}

/// A coordinator's answer: whether the command took effect, and the state after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReply {
    /// Acquired / renewed / lock granted / ban threshold reached, depending on the command.
    pub ok: bool,
    /// The state after the command.
    pub status: AccountStatus,
}

/// One account's hot state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountState {
    /// Held slots.
    pub slots: SlotTable,
    /// Current access token.
    pub token: Option<TokenState>,
    /// The refresh lock lapses at (Unix ms).
    pub refresh_lock_until_ms: u64,
    /// Google refused the last token.
    pub token_invalid: bool,
    /// Consecutive counted failures.
    pub consecutive_errors: u32,
    /// Resting until (Unix ms).
    pub cooldown_until_ms: u64,
    /// Why it rests.
    pub cooldown_reason: Option<String>,
    /// Last successful use.
    pub last_used_ms: u64,
    /// Successful generations.
    pub use_count: u64,
    /// Failed generations.
    pub error_count: u64,
    /// Project round-robin counter.
    pub project_seq: u64,
}

impl AccountState {
    /// Applies `command` at `now_ms`. Returns the reply and whether the state changed (and
    /// so must be persisted).
    pub fn apply(&mut self, command: AccountCommand, now_ms: u64) -> (AccountReply, bool) {
        let before = self.clone();
        let swept = self.slots.sweep(now_ms);
        let ok = match command {
            AccountCommand::Acquire { request, lease_id } => {
                // A resting account takes no work, whatever the caller's (possibly stale)
                // view said.
                let got = self.cooldown_until_ms <= now_ms
                    && self.slots.acquire(request, now_ms, lease_id).is_some();

                if got {
                    self.project_seq = self.project_seq.wrapping_add(1);
                }
                got
            }
            AccountCommand::Renew { lease_id, lease_ms } => {
                self.slots.renew(&lease_id, now_ms, lease_ms)
            }
            AccountCommand::Release { lease_id } => self.slots.release(&lease_id),
            AccountCommand::Status => true,
            AccountCommand::BeginRefresh { lock_ms } => {
                if self.refresh_lock_until_ms > now_ms {
                    false
                } else {
                    self.refresh_lock_until_ms = now_ms.saturating_add(lock_ms);
                    true
                }
            }
            AccountCommand::FinishRefresh { token } => {
                if token.is_some() {
                    self.token = token;
                    self.token_invalid = false;
                }
                self.refresh_lock_until_ms = 0;
                true
            }
            AccountCommand::InvalidateToken => {
                self.token = None;
                self.token_invalid = true;
                true
            }
            AccountCommand::Success { release } => {
                if let Some(id) = release {
                    self.slots.release(&id);
                }
                self.consecutive_errors = 0;
                self.last_used_ms = now_ms;
                self.use_count += 1;
                true
            }
            AccountCommand::Failure {
                counted,
                cooldown_ms,
                reason,
                ban_threshold,
                release,
            } => {
                if let Some(id) = release {
                    self.slots.release(&id);
                }
                self.error_count += 1;
                if counted {
                    self.consecutive_errors += 1;
                }
                if let Some(ms) = cooldown_ms {
                    self.cooldown_until_ms = self.cooldown_until_ms.max(now_ms.saturating_add(ms));
                    self.cooldown_reason = Some(reason);
                }
                counted && ban_threshold > 0 && self.consecutive_errors >= ban_threshold
            }
            AccountCommand::ClearCooldown => {
                self.cooldown_until_ms = 0;
                self.cooldown_reason = None;
                true
            }
            AccountCommand::Reset => {
                self.consecutive_errors = 0;
                self.cooldown_until_ms = 0;
                self.cooldown_reason = None;
                true
            }
        };
        if self.cooldown_until_ms != 0 && self.cooldown_until_ms <= now_ms {
            self.cooldown_until_ms = 0;
            self.cooldown_reason = None;
        }
        let changed = swept || *self != before;
        (
            AccountReply {
                ok,
                status: self.status(now_ms),
            },
            changed,
        )
    }

    /// The state at `now_ms`.
    pub fn status(&self, now_ms: u64) -> AccountStatus {
        AccountStatus {
            image_in_flight: self.slots.held(SlotKind::Image, now_ms),
            video_in_flight: self.slots.held(SlotKind::Video, now_ms),
            token: self.token.clone(),
            refreshing: self.refresh_lock_until_ms > now_ms,
            token_invalid: self.token_invalid,

            consecutive_errors: self.consecutive_errors,
            cooldown_until_ms: if self.cooldown_until_ms > now_ms {
                self.cooldown_until_ms
            } else {
                0
            },
            cooldown_reason: self
                .cooldown_reason
                .clone()
                .filter(|_| self.cooldown_until_ms > now_ms),
            last_used_ms: self.last_used_ms,
            use_count: self.use_count,
            error_count: self.error_count,
            project_seq: self.project_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(s: &mut AccountState, id: &str, limit: u32, now: u64) -> bool {
        let cmd = AccountCommand::Acquire {
            request: SlotRequest {
                kind: SlotKind::Image,
                limit: Some(limit),
                lease_ms: 1000,
            },
            lease_id: id.into(),
        };
        s.apply(cmd, now).0.ok
    }

    #[test]
    fn slots_refresh_lock_and_errors() {
        let mut s = AccountState::default();
        assert!(acquire(&mut s, "a", 1, 0));
        assert!(!acquire(&mut s, "b", 1, 0));
        assert_eq!(s.status(0).project_seq, 1);
        // Renewal keeps the slot past its first lease.
        assert!(
            s.apply(
                AccountCommand::Renew {
                    lease_id: "a".into(),
                    lease_ms: 5000
                },
                900
            )
            .0
            .ok
        );
        assert!(!acquire(&mut s, "b", 1, 2000));
        assert!(acquire(&mut s, "b", 1, 6000), "the lease lapsed");

        assert!(
            s.apply(AccountCommand::BeginRefresh { lock_ms: 100 }, 0)
                .0
                .ok
        );
        assert!(
            !s.apply(AccountCommand::BeginRefresh { lock_ms: 100 }, 50)
                .0
                .ok
        );
        let token = TokenState {
            at: Secret::new("ya29.x"),
            expires_ms: Some(10_000),
        };
        let (r, changed) = s.apply(
            AccountCommand::FinishRefresh {
                token: Some(token.clone()),
            },
            60,
        );
        assert!(changed && !r.status.refreshing);
        assert_eq!(r.status.token, Some(token));
        assert!(
            s.apply(AccountCommand::BeginRefresh { lock_ms: 100 }, 70)
                .0
                .ok,
            "lock released"
        );
        assert!(
            s.apply(AccountCommand::BeginRefresh { lock_ms: 100 }, 500)
                .0
                .ok,
            "lock lapsed"
        );

        let fail = |counted| AccountCommand::Failure {
            counted,
            cooldown_ms: None,
            reason: "x".into(),
            ban_threshold: 3,
            release: None,
        };
        assert!(!s.apply(fail(true), 0).0.ok);
        assert!(!s.apply(fail(false), 0).0.ok);
        assert!(!s.apply(fail(true), 0).0.ok);
        assert!(
            s.apply(fail(true), 0).0.ok,
            "third counted failure reaches the threshold"
        );
        s.apply(AccountCommand::Success { release: None }, 0);
        assert_eq!(s.status(0).consecutive_errors, 0);
    }

    #[test]
    fn cooldown_lapses_by_itself_or_is_cleared() {
        let mut s = AccountState::default();
        let quota = AccountCommand::Failure {
            counted: false,
            cooldown_ms: Some(1000),
            reason: "quota".into(),
            ban_threshold: 3,
            release: None,
        };

        let r = s.apply(quota.clone(), 0).0;
        assert!(r.status.cooling_down(500));
        assert_eq!(r.status.consecutive_errors, 0);
        assert!(!s.status(1000).cooling_down(1000));
        s.apply(quota, 2000);
        s.apply(AccountCommand::ClearCooldown, 2001);
        assert!(!s.status(2001).cooling_down(2001));
    }
}
