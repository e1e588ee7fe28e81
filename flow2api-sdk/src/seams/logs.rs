//! The request log seam: one row per finished generation request, and the counters the
//! dashboard reads (per account and UTC day, per hour for the last days), written together.
//!
//! Rows never hold a secret nor result bytes: the API layer builds them (`crate::logs`) from
//! what it knows of the request, the key's name (never its value) and result URLs.

use serde::{Deserialize, Serialize};

use super::{BoxFuture, MaybeSend, MaybeSync, StorageError};

/// The most rows one [`LogStore::list`] call returns.
pub const MAX_LOG_PAGE: usize = 100;

/// One hour and one day in milliseconds: the counters' buckets.
pub const HOUR_MS: u64 = 3_600_000;
/// One UTC day in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;
/// How long hourly counters are kept: eight days, enough for a week's series and today.
pub const HOURLY_KEEP_MS: u64 = 8 * DAY_MS;

/// One generation request, as logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Assigned by the store on [`LogStore::append`] (increasing, never reused); ignored there.
    pub id: u64,
    /// When the request arrived (Unix ms).
    pub created_at_ms: u64,
    /// When it ended (Unix ms); the counters book it under this time.
    pub updated_at_ms: u64,
    /// `generate_image`, `generate_video`, `extend_video` or `generate_unknown`.
    pub operation: String,
    /// The model the client asked for.
    pub model: String,
    /// The account that served it, if one was picked.
    pub account_id: Option<String>,
    /// That account's email.
    pub account_email: Option<String>,
    /// Who asked: the tenant key's id, `root` for the root key. Never the key itself.
    pub key: String,
    /// The HTTP status the request ended with (499: the client went away).
    pub status_code: u16,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// `completed`, `failed`, `cancelled`.
    pub status_text: String,
    /// How far it got, 0–100.
    pub progress: u8,
    /// Why it failed (status ≥ 400 only), at most 240 characters.
    pub error_summary: Option<String>,
    /// JSON text `{"model","prompt","has_images"}`; empty in listings.
    pub request_body: String,
    /// JSON text: the result URLs or the error; empty in listings.
    pub response_body: String,
}

impl LogRecord {
    /// What kind of generation the row counts as, from its operation.
    pub fn kind(&self) -> LogKind {
        LogKind::of_operation(&self.operation)
    }

    /// Whether the request failed (status ≥ 400).
    pub fn is_error(&self) -> bool {
        self.status_code >= 400
    }
}

/// The kind a request is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// An image generation.
    Image,
    /// A video generation or extension.
    Video,
    /// Neither could be told (the request failed before its model was known).
    Other,
}

impl LogKind {
    /// The kind of an operation name.
    pub fn of_operation(op: &str) -> Self {
        match op {
            "generate_image" => Self::Image,
            "generate_video" | "extend_video" => Self::Video,
            _ => Self::Other,
        }
    }
}

/// How many rows [`LogStore::append`] keeps: the newest `max_entries`, none older than
/// `max_age_ms` (by `created_at_ms`, measured from the appended row's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// `LOG_MAX_ENTRIES`.
    pub max_entries: u64,
    /// `LOG_MAX_AGE_DAYS` in milliseconds.
    pub max_age_ms: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_age_ms: 30 * DAY_MS,
        }
    }
}

/// Which statuses a listing keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusFilter {
    /// Exactly this code.
    Code(u16),
    /// Every code of this class (`4` for 4xx).
    Class(u8),
}

impl StatusFilter {
    /// Whether `code` passes.
    pub fn matches(self, code: u16) -> bool {
        match self {
            Self::Code(c) => c == code,
            Self::Class(c) => code / 100 == u16::from(c),
        }
    }

    /// The codes `lo..hi` this filter keeps, for a range query.
    pub fn range(self) -> (u16, u16) {
        match self {
            Self::Code(c) => (c, c + 1),
            Self::Class(c) => (u16::from(c) * 100, u16::from(c) * 100 + 100),
        }
    }
}

/// Which rows a listing keeps; `None` fields keep everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// A status code or class.
    pub status: Option<StatusFilter>,
    /// The model, exactly.
    pub model: Option<String>,
    /// The account id, exactly.
    pub account: Option<String>,
    /// The key name, exactly.
    pub key: Option<String>,
    /// The operation, exactly.
    pub operation: Option<String>,
    /// Created at or after (Unix ms).
    pub since_ms: Option<u64>,
    /// Created at or before (Unix ms).
    pub until_ms: Option<u64>,
}

impl LogFilter {
    /// Whether `r` passes every condition.
    pub fn matches(&self, r: &LogRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.status.is_none_or(|s| s.matches(r.status_code))
            && eq(&self.model, &r.model)
            && eq(&self.account, r.account_id.as_deref().unwrap_or(""))
            && eq(&self.key, &r.key)
            && eq(&self.operation, &r.operation)
            && self.since_ms.is_none_or(|t| r.created_at_ms >= t)
            && self.until_ms.is_none_or(|t| r.created_at_ms <= t)
    }
}

/// Generation counts: successes per kind and failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Image generations that succeeded.
    pub images: u64,
    /// Video generations that succeeded.
    pub videos: u64,
    /// Failed requests of any kind.
    pub errors: u64,
    /// Of `errors`: image generations.
    pub image_errors: u64,
    /// Of `errors`: video generations.
    pub video_errors: u64,
}

impl Counts {
    /// The counts of one row.
    pub fn of(r: &LogRecord) -> Self {
        let kind = r.kind();
        let mut c = Self::default();
        if r.is_error() {
            c.errors = 1;
            c.image_errors = u64::from(kind == LogKind::Image);
            c.video_errors = u64::from(kind == LogKind::Video);
        } else {
            c.images = u64::from(kind == LogKind::Image);
            c.videos = u64::from(kind == LogKind::Video);
        }
        c
    }

    /// Adds `other` to these.
    pub fn add(&mut self, other: &Self) {
        self.images += other.images;
        self.videos += other.videos;
        self.errors += other.errors;
        self.image_errors += other.image_errors;
        self.video_errors += other.video_errors;
    }
}

/// All-time and today's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Since the counters began (clearing the log keeps them).
    pub total: Counts,
    /// On the UTC day asked for.
    pub today: Counts,
}

/// One hour's counts over every account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCounts {
    /// The hour's start (Unix ms, a multiple of [`HOUR_MS`]).
    pub hour_ms: u64,
    /// Its counts.
    pub counts: Counts,
}

/// One account's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCounts {
    /// The account id.
    pub account_id: String,
    /// Its email as last logged.
    pub email: String,
    /// Its counts.
    pub totals: Totals,
}

/// Where request logs and their counters live: SQLite natively, a Durable Object at the edge,
/// memory in tests. The conformance suite (`conformance::logs`) pins the contract.
pub trait LogStore: MaybeSend + MaybeSync {
    /// Stores one finished request and books it in the counters (its UTC day under its
    /// account, its hour), atomically, then drops rows past `retention`. Returns its id.
    fn append(
        &self,
        record: LogRecord,
        retention: Retention,
    ) -> BoxFuture<'_, Result<u64, StorageError>>;

    /// Up to `limit` rows (clamped to `1..=`[`MAX_LOG_PAGE`]) that pass `filter`, newest
    /// (highest id) first, with ids below `before` when given; bodies left empty.
    fn list<'a>(
        &'a self,
        filter: &'a LogFilter,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<LogRecord>, StorageError>>;

    /// One row with its bodies.
    fn get(&self, id: u64) -> BoxFuture<'_, Result<Option<LogRecord>, StorageError>>;

    /// Deletes every row (the counters stay); returns how many went.
    fn clear(&self) -> BoxFuture<'_, Result<u64, StorageError>>;

    /// All-time counts and those of UTC day `day` (days since the epoch).
    fn stats(&self, day: u64) -> BoxFuture<'_, Result<Totals, StorageError>>;

    /// Hourly counts from `since_ms` on (hours without requests are left out), oldest first.
    /// Hours older than [`HOURLY_KEEP_MS`] before the newest append are not kept.
    fn series(&self, since_ms: u64) -> BoxFuture<'_, Result<Vec<HourCounts>, StorageError>>;

    /// Each account's counts (all time and UTC day `day`), by account id; requests no
    /// account served are not listed.
    fn per_account(&self, day: u64) -> BoxFuture<'_, Result<Vec<AccountCounts>, StorageError>>;
}
