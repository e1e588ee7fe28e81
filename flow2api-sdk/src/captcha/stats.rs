//! Captcha accounting: per solver and per account, solves, failures (by kind), latency and how
//! often Google then rejected the token (`reCAPTCHA evaluation failed`).
//!
//! Counted in memory, per process (per isolate at the edge): they are operational gauges
//! that reset on restart, not records, and counting on the hot path must not cost a storage
//! write per solve.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::seams::CaptchaErrorKind;

/// One solver's or account's counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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
}

/// A snapshot of every counter, as `GET /api/captcha/stats` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CaptchaStatsView {
    /// Per method (`capsolver`…).
    pub solvers: BTreeMap<String, CaptchaCounters>,
    /// Per account id: the whole chain's outcome for that account's solves.
    pub accounts: BTreeMap<String, CaptchaCounters>,
}

/// The counters, shared by every configuration snapshot of one app.
#[derive(Debug, Default)]
pub struct CaptchaStats {
    inner: Mutex<CaptchaStatsView>,
}

impl CaptchaStats {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(&self, f: impl FnOnce(&mut CaptchaStatsView)) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard);
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

    /// Every counter now.
    pub fn snapshot(&self) -> CaptchaStatsView {
        let mut out = CaptchaStatsView::default();
        self.with(|v| out = v.clone());
        out
    }
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
}
