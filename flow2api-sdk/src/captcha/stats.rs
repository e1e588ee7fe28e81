//! Captcha accounting: per solver and per account, solves, failures (by kind), latency and how
//! often Google then rejected the token (`reCAPTCHA evaluation failed`).
//!
//! Counted in memory first, per process (per isolate at the edge), so that counting on the hot
//! path costs no storage write per solve; what a process counted is added to the shared totals
//! in the strongly consistent store at most every [`FLUSH_EVERY`] ([`CaptchaStats::flush_if_due`])
//! and whenever the totals are read ([`load_shared`]), so every process and isolate (the edge's
//! job objects included) sees one set of numbers, kept across restarts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seams::{update_json, CaptchaErrorKind, Storage, StorageError};

/// How often a process adds what it counted to the shared totals (at most).
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// The shared per-solver totals' key in the consistent store.
const SOLVERS_KEY: &str = "captcha-stats/solvers";
/// The prefix of the shared per-account totals (one record per account, so that a large pool
/// never makes one record too large for a Durable Object value).
const ACCOUNT_PREFIX: &str = "captcha-stats/account/";

/// One solver's or account's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CaptchaCounters {
    /// Tokens obtained.
    pub solves: u64,
    /// Solves that gave no token.
    pub failures: u64,
    /// Failures by [`CaptchaErrorKind::as_str`].
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Sum of the solve times (successes and failures), milliseconds.
    pub latency_ms_total: u64,
    /// Mean solve time, milliseconds (0 before the first solve).
    pub latency_ms_avg: u64,
    /// Tokens Google then refused (`reCAPTCHA evaluation failed`).
    pub google_rejected: u64,
}

impl CaptchaCounters {
    fn record(&mut self, ok: bool, kind: Option<CaptchaErrorKind>, ms: u64) {
        if ok {
            self.solves += 1;
        } else {
            self.failures += 1;
            if let Some(kind) = kind {
                *self
                    .failures_by_kind
                    .entry(kind.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        self.latency_ms_total = self.latency_ms_total.saturating_add(ms);
        self.latency_ms_avg = self.latency_ms_total / (self.solves + self.failures).max(1);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CaptchaCounters) {
        self.solves += other.solves;
        self.failures += other.failures;
        for (kind, n) in &other.failures_by_kind {
            *self.failures_by_kind.entry(kind.clone()).or_default() += n;
        }
        self.latency_ms_total = self.latency_ms_total.saturating_add(other.latency_ms_total);
        self.latency_ms_avg = self.latency_ms_total / (self.solves + self.failures).max(1);
        self.google_rejected += other.google_rejected;
    }
}

/// A snapshot of every counter, as `GET /api/captcha/stats` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CaptchaStatsView {
    /// Per method (`capsolver`…).
    pub solvers: BTreeMap<String, CaptchaCounters>,
    /// Per account id: the whole chain's outcome for that account's solves.
    pub accounts: BTreeMap<String, CaptchaCounters>,
}

impl CaptchaStatsView {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CaptchaStatsView) {
        for (m, c) in &other.solvers {
            self.solvers.entry(m.clone()).or_default().add(c);
        }
        for (a, c) in &other.accounts {
            self.accounts.entry(a.clone()).or_default().add(c);
        }
    }

    fn is_empty(&self) -> bool {
        self.solvers.is_empty() && self.accounts.is_empty()
    }
}

/// The counters, shared by every configuration snapshot of one app (and, at the edge, every
/// request of one isolate); also the remote browser's prefill stamps, which must outlive the
/// per-request solvers for the same reason.
#[derive(Debug, Default)]
pub struct CaptchaStats {
    /// Everything this process counted.
    inner: Mutex<CaptchaStatsView>,
    /// What this process counted since its last flush to the shared totals.
    pending: Mutex<CaptchaStatsView>,
    /// When the last flush started (clock ms; 0: never).
    flushed_ms: AtomicU64,
    /// When each prefill key was last sent (clock ms).
    prefilled: Mutex<HashMap<String, u64>>,
}

/// Prefill stamps kept before old ones are swept.
const MAX_PREFILL_STAMPS: usize = 4096;

impl CaptchaStats {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `f` to this process's counters and to the ones not yet flushed.
    fn with(&self, f: impl Fn(&mut CaptchaStatsView)) {
        for view in [&self.inner, &self.pending] {
            let mut guard = view.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard);
        }
    }

    /// `method` produced a token in `ms`.
    pub fn solver_solved(&self, method: &str, ms: u64) {
        self.with(|v| {
            v.solvers
                .entry(method.to_owned())
                .or_default()
                .record(true, None, ms)
        });
    }

    /// `method` gave no token (`kind`) after `ms`.
    pub fn solver_failed(&self, method: &str, kind: CaptchaErrorKind, ms: u64) {
        self.with(|v| {
            v.solvers
                .entry(method.to_owned())
                .or_default()
                .record(false, Some(kind), ms)
        });
    }

    /// A solve for `account`: a token (`kind` `None`) or a failure of `kind`, after `ms`.
    pub fn account_solve(&self, account: &str, kind: Option<CaptchaErrorKind>, ms: u64) {
        self.with(|v| {
            v.accounts
                .entry(account.to_owned())
                .or_default()
                .record(kind.is_none(), kind, ms)
        });
    }

    /// Google refused a token `method` solved for `account`.
    pub fn google_rejected(&self, method: &str, account: &str) {
        self.with(|v| {
            v.solvers
                .entry(method.to_owned())
                .or_default()
                .google_rejected += 1;
            v.accounts
                .entry(account.to_owned())
                .or_default()
                .google_rejected += 1;
        });
    }

    /// Every counter this process has seen.
    pub fn snapshot(&self) -> CaptchaStatsView {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether a prefill for `key` is due at `now_ms`, at most one per `every` (and, if so,
    /// stamps it).
    pub fn prefill_due(&self, key: &str, now_ms: u64, every: Duration) -> bool {
        let every = every.as_millis() as u64;
        let mut stamps = self
            .prefilled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if stamps
            .get(key)
            .is_some_and(|last| now_ms.saturating_sub(*last) < every)
        {
            return false;
        }
        if stamps.len() >= MAX_PREFILL_STAMPS {
            stamps.retain(|_, last| now_ms.saturating_sub(*last) < every);
        }
        stamps.insert(key.to_owned(), now_ms);
        true
    }

    /// Whether [`flush_if_due`](Self::flush_if_due) would flush at `now_ms`: something was
    /// counted since the last flush, and that was [`FLUSH_EVERY`] ago (so a process's first
    /// count is flushed at once, whatever ran before it).
    pub fn flush_due(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.flushed_ms.load(Ordering::Relaxed))
            >= FLUSH_EVERY.as_millis() as u64
            && !self
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .is_empty()
    }

    /// Adds what this process counted since its last flush to the shared totals in `store`
    /// when [`FLUSH_EVERY`] has passed since then (or `force`). A delta that could not be
    /// written is kept for the next flush.
    ///
    /// # Errors
    /// The store's failure (the delta is kept).
    pub async fn flush_if_due(
        &self,
        store: &dyn Storage,
        now_ms: u64,
        force: bool,
    ) -> Result<(), StorageError> {
        if !force && !self.flush_due(now_ms) {
            return Ok(());
        }
        self.flushed_ms.store(now_ms, Ordering::Relaxed);
        let delta = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        if delta.is_empty() {
            return Ok(());
        }
        let mut unwritten = CaptchaStatsView::default();
        let mut failure = None;
        if !delta.solvers.is_empty() {
            if let Err(e) = update_json(
                store,
                SOLVERS_KEY,
                "captcha stats",
                |t: &mut BTreeMap<String, CaptchaCounters>| t.absorb(&delta.solvers),
            )
            .await
            {
                unwritten.solvers = delta.solvers.clone();
                failure = Some(e);
            }
        }
        for (account, counters) in &delta.accounts {
            let key = format!("{ACCOUNT_PREFIX}{account}");
            if let Err(e) = update_json(store, &key, "captcha stats", |t: &mut CaptchaCounters| {
                t.absorb(counters)
            })
            .await
            {
                unwritten.accounts.insert(account.clone(), counters.clone());
                failure = Some(e);
            }
        }
        if !unwritten.is_empty() {
            self.pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .add(&unwritten);
        }
        failure.map_or(Ok(()), Err)
    }
}

/// A shared total that can absorb a delta.
trait Counts: Serialize + serde::de::DeserializeOwned + Default + Clone {
    fn absorb(&mut self, delta: &Self);
}

impl Counts for CaptchaCounters {
    fn absorb(&mut self, delta: &Self) {
        self.add(delta);
    }
}

impl Counts for BTreeMap<String, CaptchaCounters> {
    fn absorb(&mut self, delta: &Self) {
        for (k, c) in delta {
            self.entry(k.clone()).or_default().add(c);
        }
    }
}

/// The shared per-solver totals in `store` (one read; the per-account ones are not read).
///
/// # Errors
/// The store's failure.
pub async fn load_shared_solvers(
    store: &dyn Storage,
) -> Result<BTreeMap<String, CaptchaCounters>, StorageError> {
    Ok(store
        .get(SOLVERS_KEY)
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default())
}

/// The shared totals in `store`: every process's flushed counts.
///
/// # Errors
/// The store's failure.
pub async fn load_shared(store: &dyn Storage) -> Result<CaptchaStatsView, StorageError> {
    let mut out = CaptchaStatsView::default();
    if let Some(raw) = store.get(SOLVERS_KEY).await? {
        out.solvers = serde_json::from_slice(&raw).unwrap_or_default();
    }
    let keys = crate::seams::list_all(store, ACCOUNT_PREFIX).await?;
    let values = store.get_many(&keys).await?;
    for (key, raw) in keys.iter().zip(values) {
        let (Some(id), Some(raw)) = (key.strip_prefix(ACCOUNT_PREFIX), raw) else {
            continue;
        };
        if let Ok(c) = serde_json::from_slice(&raw) {
            out.accounts.insert(id.to_owned(), c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_averages() {
        let s = CaptchaStats::new();
        s.solver_solved("capsolver", 100);
        s.solver_failed("capsolver", CaptchaErrorKind::NoCapacity, 300);
        s.account_solve("a1", None, 50);
        s.google_rejected("capsolver", "a1");
        let v = s.snapshot();
        let c = &v.solvers["capsolver"];
        assert_eq!((c.solves, c.failures, c.latency_ms_avg), (1, 1, 200));
        assert_eq!(c.failures_by_kind["no_capacity"], 1);
        assert_eq!(c.google_rejected, 1);
        assert_eq!(v.accounts["a1"].google_rejected, 1);
        assert_eq!(v.accounts["a1"].solves, 1);
    }

    #[test]
    fn flushes_add_up_across_processes() {
        use futures::executor::block_on;
        let clock = std::sync::Arc::new(crate::memory::ManualClock::new(1_000_000));
        let store = crate::memory::MemoryStorage::new(clock);
        let (a, b) = (CaptchaStats::new(), CaptchaStats::new());
        a.solver_solved("capsolver", 100);
        a.account_solve("acc1", None, 100);
        b.solver_failed("capsolver", CaptchaErrorKind::NoToken, 300);
        b.account_solve("acc1", Some(CaptchaErrorKind::NoToken), 300);
        b.google_rejected("capsolver", "acc2");
        block_on(a.flush_if_due(&store, 20_000, false)).unwrap();
        block_on(b.flush_if_due(&store, 20_000, false)).unwrap();
        let v = block_on(load_shared(&store)).unwrap();
        let c = &v.solvers["capsolver"];
        assert_eq!((c.solves, c.failures, c.latency_ms_avg), (1, 1, 200));
        assert_eq!(v.accounts["acc1"].failures_by_kind["no_token"], 1);
        assert_eq!(v.accounts["acc2"].google_rejected, 1);
        // Nothing new, or not due yet: nothing written twice.
        a.solver_solved("capsolver", 100);
        block_on(a.flush_if_due(&store, 25_000, false)).unwrap();
        assert_eq!(
            block_on(load_shared(&store)).unwrap().solvers["capsolver"].solves,
            1
        );
        block_on(a.flush_if_due(&store, 25_000, true)).unwrap();
        block_on(a.flush_if_due(&store, 26_000, true)).unwrap();
        assert_eq!(
            block_on(load_shared(&store)).unwrap().solvers["capsolver"].solves,
            2
        );
    }

    #[test]
    fn prefills_are_spaced() {
        let s = CaptchaStats::new();
        let every = Duration::from_secs(8);
        assert!(s.prefill_due("p/IMAGE/a", 1_000, every));
        assert!(!s.prefill_due("p/IMAGE/a", 8_999, every));
        assert!(s.prefill_due("p/VIDEO/a", 8_999, every));
        assert!(s.prefill_due("p/IMAGE/a", 9_000, every));
    }
}
