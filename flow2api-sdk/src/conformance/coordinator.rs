//! The [`Coordinator`] suite: slots never exceed their limit under concurrent acquires,
//! releases free them, leases lapse unless renewed, counted errors reach the ban threshold and
//! cooldowns rest an account, and one caller at a time holds the token-refresh lock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::{check, check_eq, CaseResult, Report, Time};
use crate::coordination::{AccountCommand, AccountReply, TokenState};
use crate::seams::{Coordinator, SlotKind, SlotRequest};
use crate::secret::Secret;

/// A coordinator under test and how time passes for it.
#[derive(Clone)]
pub struct Subject {
    /// The coordinator.
    pub coordinator: Arc<dyn Coordinator>,
    /// Its time.
    pub time: Time,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// `coordinator` with `time`.
    pub fn new(coordinator: Arc<dyn Coordinator>, time: Time) -> Self {
        Self { coordinator, time }
    }

    async fn apply(&self, account: &str, command: AccountCommand) -> Result<AccountReply, String> {
        self.coordinator
            .apply(account, command)
            .await
            .map_err(|e| format!("coordinator: {e}"))
    }
}

/// Every case, by name, in the order [`suite`] runs them.
pub const CASES: &[&str] = &[
    "slots_never_exceed_the_limit",
    "release",
    "lease_expiry_and_renewal",
    "errors_and_cooldown",
    "single_flight_refresh",
];

/// Runs every case against a fresh subject from `factory` and reports each.
pub async fn suite<F, Fut>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = Subject>,
{
    super::run(CASES, |name| {
        let subject = factory();
        async move { case(name, &subject.await).await }
    })
    .await
}

/// Runs the case `name` of [`CASES`] on a fresh account id (an unknown name fails).
///
/// # Errors
/// The failed check's message.
pub async fn case(name: &str, s: &Subject) -> CaseResult {
    let account = format!("conformance-{}", crate::util::random_hex(8));
    let a = account.as_str();
    match name {
        "slots_never_exceed_the_limit" => slots_never_exceed_the_limit(s, a).await,
        "release" => release(s, a).await,
        "lease_expiry_and_renewal" => lease_expiry_and_renewal(s, a).await,
        "errors_and_cooldown" => errors_and_cooldown(s, a).await,
        "single_flight_refresh" => single_flight_refresh(s, a).await,
        other => Err(format!("no coordinator case named {other:?}")),
    }
    .map(|()| None)
}

fn acquire(lease_id: &str, limit: u32, lease_ms: u64) -> AccountCommand {
    AccountCommand::Acquire {
        request: SlotRequest {
            kind: SlotKind::Image,
            limit: Some(limit),
            lease_ms,
        },
        lease_id: lease_id.to_owned(),
    }
}

const LEASE_MS: u64 = 60_000;

async fn slots_never_exceed_the_limit(s: &Subject, a: &str) -> Result<(), String> {
    let tries = (0..12).map(|i| s.apply(a, acquire(&format!("l{i}"), 3, LEASE_MS)));
    let replies: Vec<AccountReply> = join_all(tries)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let granted = replies.iter().filter(|r| r.ok).count();
    check_eq(granted, 3, "concurrent acquires granted with a limit of 3")?;
    for r in &replies {
        check(r.status.image_in_flight <= 3, || {
            format!("a reply saw {} slots in flight", r.status.image_in_flight)
        })?;
    }
    let status = s.apply(a, AccountCommand::Status).await?.status;
    check_eq(status.image_in_flight, 3, "image slots in flight")?;
    check_eq(status.video_in_flight, 0, "video slots in flight")?;
    // Video slots are counted apart.
    let video = AccountCommand::Acquire {
        request: SlotRequest {
            kind: SlotKind::Video,
            limit: Some(1),
            lease_ms: LEASE_MS,
        },
        lease_id: "v".into(),
    };
    check(s.apply(a, video).await?.ok, || {
        "a video slot beside full image slots".into()
    })?;
    // No limit: always granted.
    let unlimited = AccountCommand::Acquire {
        request: SlotRequest {
            kind: SlotKind::Image,
            limit: None,
            lease_ms: LEASE_MS,
        },
        lease_id: "free".into(),
    };
    check(s.apply(a, unlimited).await?.ok, || {
        "an acquire without a limit".into()
    })
}

async fn release(s: &Subject, a: &str) -> Result<(), String> {
    check(s.apply(a, acquire("x", 1, LEASE_MS)).await?.ok, || {
        "first acquire".into()
    })?;
    check(!s.apply(a, acquire("y", 1, LEASE_MS)).await?.ok, || {
        "an acquire over the limit was granted".into()
    })?;
    let r = s
        .apply(
            a,
            AccountCommand::Release {
                lease_id: "x".into(),
            },
        )
        .await?;
    check(r.ok, || "release of a held lease".into())?;
    check_eq(r.status.image_in_flight, 0, "slots after the release")?;
    let again = s
        .apply(
            a,
            AccountCommand::Release {
                lease_id: "x".into(),
            },
        )
        .await?;
    check(!again.ok, || "a second release of the same lease".into())?;
    check(s.apply(a, acquire("y", 1, LEASE_MS)).await?.ok, || {
        "an acquire after the release".into()
    })?;
    // Success and failure can release in the same call.
    let r = s
        .apply(
            a,
            AccountCommand::Success {
                release: Some("y".into()),
            },
        )
        .await?;
    check_eq(
        r.status.image_in_flight,
        0,
        "slots after a success that releases",
    )
}

async fn lease_expiry_and_renewal(s: &Subject, a: &str) -> Result<(), String> {
    // Wide margins for real time: each check sits 700 ms from the deadline it tests.
    let lease = 1_500;
    check(s.apply(a, acquire("x", 1, lease)).await?.ok, || {
        "acquire".into()
    })?;
    s.time.pass(Duration::from_millis(800)).await;
    let renew = AccountCommand::Renew {
        lease_id: "x".into(),
        lease_ms: lease,
    };
    check(s.apply(a, renew).await?.ok, || {
        "renewal of a live lease".into()
    })?;
    // Past the first deadline, within the renewed one.
    s.time.pass(Duration::from_millis(800)).await;
    let status = s.apply(a, AccountCommand::Status).await?.status;
    check_eq(
        status.image_in_flight,
        1,
        "a renewed lease past its first deadline",
    )?;
    s.time.pass(Duration::from_millis(1_500)).await;
    let status = s.apply(a, AccountCommand::Status).await?.status;
    check_eq(status.image_in_flight, 0, "a lapsed lease")?;
    let renew = AccountCommand::Renew {
        lease_id: "x".into(),
        lease_ms: lease,
    };
    check(!s.apply(a, renew).await?.ok, || {
        "renewal of a lapsed lease".into()
    })?;
    check(s.apply(a, acquire("y", 1, LEASE_MS)).await?.ok, || {
        "an acquire once the lease lapsed".into()
    })
}

fn failure(counted: bool, cooldown_ms: Option<u64>) -> AccountCommand {
    AccountCommand::Failure {
        counted,
        cooldown_ms,
        reason: "conformance".into(),
        ban_threshold: 3,
        release: None,
    }
}

async fn errors_and_cooldown(s: &Subject, a: &str) -> Result<(), String> {
    let r = s.apply(a, failure(true, None)).await?;
    check(!r.ok, || {
        "1 of 3 counted failures reached the threshold".into()
    })?;
    check_eq(r.status.consecutive_errors, 1, "consecutive errors")?;
    let r = s.apply(a, failure(false, None)).await?;
    check_eq(r.status.consecutive_errors, 1, "after an uncounted failure")?;
    let r = s
        .apply(a, AccountCommand::Success { release: None })
        .await?;
    check_eq(r.status.consecutive_errors, 0, "after a success")?;
    for i in 1..=3 {
        let r = s.apply(a, failure(true, None)).await?;
        check_eq(
            r.ok,
            i == 3,
            &format!("threshold reached after {i} failures"),
        )?;
        check_eq(r.status.consecutive_errors, i, "consecutive errors")?;
    }
    let r = s.apply(a, AccountCommand::Reset).await?;
    check_eq(r.status.consecutive_errors, 0, "after a reset")?;
    // A cooldown rests the account: no slot until it ends or is cleared.
    let before = s.time.now_ms();
    let r = s.apply(a, failure(false, Some(60_000))).await?;
    check(r.status.cooldown_until_ms >= before + 60_000, || {
        format!(
            "cooldown until {} after a 60 s cooldown from {before}",
            r.status.cooldown_until_ms
        )
    })?;
    check(!s.apply(a, acquire("x", 5, LEASE_MS)).await?.ok, || {
        "a resting account granted a slot".into()
    })?;
    let r = s.apply(a, AccountCommand::ClearCooldown).await?;
    check_eq(
        r.status.cooldown_until_ms,
        0,
        "cooldown after it was cleared",
    )?;
    check(s.apply(a, acquire("x", 5, LEASE_MS)).await?.ok, || {
        "a slot once the cooldown was cleared".into()
    })?;
    if s.time.is_manual() {
        s.apply(a, failure(false, Some(1_000))).await?;
        s.time.pass(Duration::from_millis(1_001)).await;
        check(s.apply(a, acquire("y", 5, LEASE_MS)).await?.ok, || {
            "a slot once the cooldown ended".into()
        })?;
    }
    Ok(())
}

async fn single_flight_refresh(s: &Subject, a: &str) -> Result<(), String> {
    let begin = |lock_ms| s.apply(a, AccountCommand::BeginRefresh { lock_ms });
    let replies: Vec<AccountReply> = join_all((0..8).map(|_| begin(1_000)))
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    check_eq(
        replies.iter().filter(|r| r.ok).count(),
        1,
        "concurrent refresh locks granted",
    )?;
    let status = s.apply(a, AccountCommand::Status).await?.status;
    check(status.refreshing, || "status while the lock is held".into())?;
    let token = TokenState {
        at: Secret::new("conformance-token"),
        expires_ms: Some(s.time.now_ms() + 3_600_000),
    };
    let r = s
        .apply(
            a,
            AccountCommand::FinishRefresh {
                token: Some(token.clone()),
            },
        )
        .await?;
    check(!r.status.refreshing, || {
        "status after the refresh finished".into()
    })?;
    check_eq(r.status.token.as_ref(), Some(&token), "the stored token")?;
    // A holder that dies: its lock lapses, and someone else may refresh.
    check(begin(1_000).await?.ok, || {
        "the lock after a finished refresh".into()
    })?;
    check(!begin(1_000).await?.ok, || {
        "a second lock while held".into()
    })?;
    s.time.pass(Duration::from_millis(1_300)).await;
    check(begin(1_000).await?.ok, || {
        "the lock once the holder's lapsed".into()
    })?;
    let r = s
        .apply(a, AccountCommand::FinishRefresh { token: None })
        .await?;
    check(!r.status.refreshing, || {
        "status after giving up the lock".into()
    })?;
    check_eq(
        r.status.token.as_ref(),
        Some(&token),
        "the token after giving up",
    )
}
