//! Recently seen account states, kept per process (per isolate at the edge). Selection orders
//! candidates by them instead of asking every account's coordinator on every request; the
//! acquire itself stays authoritative, so a stale hint costs at most one refused acquire.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::coordination::AccountStatus;

/// How long a seen state is trusted for ordering.
pub const MAX_AGE_MS: u64 = 2_000;

/// Account id → (last seen state, when).
#[derive(Debug, Default)]
pub struct LoadCache {
    seen: Mutex<HashMap<String, (AccountStatus, u64)>>,
}

impl LoadCache {
    /// The cache of this process (or isolate).
    pub fn shared() -> &'static LoadCache {
        static SHARED: OnceLock<LoadCache> = OnceLock::new();
        SHARED.get_or_init(LoadCache::default)
    }

    /// Records a state seen at `now_ms`.
    pub fn observe(&self, account_id: &str, status: &AccountStatus, now_ms: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Without the token: hints need no secrets.
        let mut s = status.clone();
        s.token = None;
        seen.insert(account_id.to_owned(), (s, now_ms));
    }

    /// A state seen within [`MAX_AGE_MS`] of `now_ms`.
    pub fn get(&self, account_id: &str, now_ms: u64) -> Option<AccountStatus> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(account_id)
            .filter(|(_, at)| now_ms.saturating_sub(*at) <= MAX_AGE_MS && *at <= now_ms)
            .map(|(s, _)| s.clone())
    }
}
