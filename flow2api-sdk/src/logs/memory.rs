//! [`MemoryLogStore`]: the [`LogStore`] seam in process memory, for tests and embedders
//! that keep no history across restarts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{
    day_of, hour_of, AccountCounts, Counts, HourCounts, LogFilter, LogRecord, LogStore, Retention,
    Totals, HOURLY_KEEP_MS, MAX_LOG_PAGE,
};
use crate::seams::{boxed, BoxFuture, StorageError};

/// How many days of per-account daily counters are kept (today's is all that is read).
pub(super) const DAILY_KEEP_DAYS: u64 = 8;

#[derive(Default)]
struct State {
    last_id: u64,
    rows: BTreeMap<u64, LogRecord>,
    /// (day, account id) → counts; the account id is empty for requests no account served.
    daily: HashMap<(u64, String), Counts>,
    /// account id → (email, all-time counts).
    totals: BTreeMap<String, (String, Counts)>,
    hourly: BTreeMap<u64, Counts>,
}

/// Request logs and counters in memory. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct MemoryLogStore {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLogStore").finish_non_exhaustive()
    }
}

impl MemoryLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn append(&mut self, mut record: LogRecord, retention: Retention) -> u64 {
        self.last_id += 1;
        let id = self.last_id;
        record.id = id;
        let counts = Counts::of(&record);
        let account = record.account_id.clone().unwrap_or_default();
        let email = record.account_email.clone().unwrap_or_default();
        let at = record.updated_at_ms;
        let created = record.created_at_ms;
        self.rows.insert(id, record);
        self.daily
            .entry((day_of(at), account.clone()))
            .or_default()
            .add(&counts);
        let total = self.totals.entry(account).or_default();
        if !email.is_empty() {
            total.0 = email;
        }
        total.1.add(&counts);
        self.hourly.entry(hour_of(at)).or_default().add(&counts);
        // Retention: by count (ids are dense from the newest down), by age, and the counters'.
        let keep_from = id.saturating_sub(retention.max_entries.max(1)) + 1;
        self.rows = self.rows.split_off(&keep_from);
        let oldest = created.saturating_sub(retention.max_age_ms);
        self.rows.retain(|_, r| r.created_at_ms >= oldest);
        let hour_floor = at.saturating_sub(HOURLY_KEEP_MS);
        self.hourly = self.hourly.split_off(&hour_of(hour_floor));
        let day_floor = day_of(at).saturating_sub(DAILY_KEEP_DAYS);
        self.daily.retain(|(day, _), _| *day >= day_floor);
        id
    }

    fn totals(&self, day: u64) -> Totals {
        let mut t = Totals::default();
        for (_, c) in self.totals.values() {
            t.total.add(c);
        }
        for ((d, _), c) in &self.daily {
            if *d == day {
                t.today.add(c);
            }
        }
        t
    }
}

/// A listed row: its bodies are left out.
fn summary(r: &LogRecord) -> LogRecord {
    LogRecord {
        request_body: String::new(),
        response_body: String::new(),
        ..r.clone()
    }
}

impl LogStore for MemoryLogStore {
    fn append(
        &self,
        record: LogRecord,
        retention: Retention,
    ) -> BoxFuture<'_, Result<u64, StorageError>> {
        let id = self.lock().append(record, retention);
        boxed(async move { Ok(id) })
    }

    fn list<'a>(
        &'a self,
        filter: &'a LogFilter,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<LogRecord>, StorageError>> {
        let limit = limit.clamp(1, MAX_LOG_PAGE);
        let state = self.lock();
        let rows: Vec<LogRecord> = state
            .rows
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .map(|(_, r)| r)
            .filter(|r| filter.matches(r))
            .take(limit)
            .map(summary)
            .collect();
        boxed(async move { Ok(rows) })
    }

    fn get(&self, id: u64) -> BoxFuture<'_, Result<Option<LogRecord>, StorageError>> {
        let row = self.lock().rows.get(&id).cloned();
        boxed(async move { Ok(row) })
    }

    fn clear(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        let mut state = self.lock();
        let n = state.rows.len() as u64;
        state.rows.clear();
        boxed(async move { Ok(n) })
    }

    fn stats(&self, day: u64) -> BoxFuture<'_, Result<Totals, StorageError>> {
        let t = self.lock().totals(day);
        boxed(async move { Ok(t) })
    }

    fn series(&self, since_ms: u64) -> BoxFuture<'_, Result<Vec<HourCounts>, StorageError>> {
        let hours = self
            .lock()
            .hourly
            .range(hour_of(since_ms)..)
            .map(|(h, c)| HourCounts {
                hour_ms: *h,
                counts: *c,
            })
            .collect();
        boxed(async move { Ok(hours) })
    }

    fn per_account(&self, day: u64) -> BoxFuture<'_, Result<Vec<AccountCounts>, StorageError>> {
        let state = self.lock();
        let accounts = state
            .totals
            .iter()
            .filter(|(id, _)| !id.is_empty())
            .map(|(id, (email, total))| AccountCounts {
                account_id: id.clone(),
                email: email.clone(),
                totals: Totals {
                    total: *total,
                    today: state
                        .daily
                        .get(&(day, id.clone()))
                        .copied()
                        .unwrap_or_default(),
                },
            })
            .collect();
        boxed(async move { Ok(accounts) })
    }
}
