//! Prometheus metrics: what the gateway counts (requests by route, model and status with their
//! latency, generation outcomes, upstream errors by class, video job states, account slots in
//! use) and the text exposition format (version 0.0.4) that `GET /metrics` answers in.
//!
//! Counted in memory per process (per isolate at the edge) under one short lock, so counting
//! costs no storage call on the hot path. What a process counted is added to shared totals in
//! the strongly consistent store at most every [`FLUSH_EVERY`] (in the background where the
//! host can run work beyond a request) and whenever the totals are read
//! ([`Metrics::totals`]), so one scrape sees every process's and isolate's counts, kept
//! across restarts (counters never go back, as Prometheus expects of them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seams::{update_json, Storage, StorageError};

/// How often a process adds what it counted to the shared totals (at most).
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);
/// The shared totals' key in the consistent store.
const TOTALS_KEY: &str = "metrics/totals";

/// Upper bounds (seconds) of the request latency buckets.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Upper bounds (seconds) of the generation duration buckets (the original's).
pub const GENERATION_BUCKETS: &[f64] = &[
    0.1, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Joins label values into one map key (no label value this module is given contains it).
const SEP: char = '|';

/// Observations of one series of a histogram.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Histogram {
    /// Observations.
    pub count: u64,
    /// Their sum, milliseconds.
    pub sum_ms: u64,
    /// Observations per bucket (not cumulative): `buckets[i]` counts those above bound
    /// `i - 1` and at most bound `i`; those above the last bound are only in `count`.
    pub buckets: Vec<u64>,
}

impl Histogram {
    /// Adds one observation of `ms` milliseconds against `bounds` (seconds).
    pub fn observe(&mut self, ms: u64, bounds: &[f64]) {
        if self.buckets.len() < bounds.len() {
            self.buckets.resize(bounds.len(), 0);
        }
        let secs = ms as f64 / 1000.0;
        if let Some(i) = bounds.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Adds `other`'s observations to these.
    pub fn add(&mut self, other: &Histogram) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }
}

/// Every count, as stored in the shared totals (label values joined by `|` in map keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MetricsView {
    /// HTTP requests by `route|model|status`.
    pub requests: BTreeMap<String, Histogram>,
    /// Logical generation outcomes by `generation_type|result`.
    pub generations: BTreeMap<String, Histogram>,
    /// Failed upstream generation calls by class ([`crate::flow::Blame`]).
    pub upstream_errors: BTreeMap<String, u64>,
    /// Video jobs by the state they reached.
    pub video_jobs: BTreeMap<String, u64>,
    /// Account slots taken minus given back, by kind (`image`, `video`).
    pub slots: BTreeMap<String, i64>,
    /// Token refreshes by `kind|result`.
    pub token_refresh: BTreeMap<String, u64>,
}

impl MetricsView {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &MetricsView) {
        fn hist(into: &mut BTreeMap<String, Histogram>, from: &BTreeMap<String, Histogram>) {
            for (k, h) in from {
                into.entry(k.clone()).or_default().add(h);
            }
        }
        fn count(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
            for (k, n) in from {
                *into.entry(k.clone()).or_default() += n;
            }
        }
        hist(&mut self.requests, &other.requests);
        hist(&mut self.generations, &other.generations);
        count(&mut self.upstream_errors, &other.upstream_errors);
        count(&mut self.video_jobs, &other.video_jobs);
        count(&mut self.token_refresh, &other.token_refresh);
        for (k, n) in &other.slots {
            *self.slots.entry(k.clone()).or_default() += n;
        }
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.generations.is_empty()
            && self.upstream_errors.is_empty()
            && self.video_jobs.is_empty()
            && self.slots.is_empty()
            && self.token_refresh.is_empty()
    }
}

/// Joins label values into a [`MetricsView`] map key.
fn key(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        // A separator inside a value would shift the labels: replaced.
        out.extend(p.chars().map(|c| if c == SEP { '_' } else { c }));
    }
    out
}

/// The label values of a [`MetricsView`] map key, `n` of them (missing ones empty).
pub fn split_key(key: &str, n: usize) -> Vec<&str> {
    let mut parts: Vec<&str> = key.splitn(n, SEP).collect();
    parts.resize(n, "");
    parts
}

/// The counters of one process (isolate), shared by every configuration snapshot of an app.
#[derive(Debug, Default)]
pub struct Metrics {
    /// What this process counted since its last flush to the shared totals.
    pending: Mutex<MetricsView>,
    /// When the last flush started (clock ms; 0: never).
    flushed_ms: AtomicU64,
    /// When this process (isolate) started counting (clock ms; 0: not yet).
    started_ms: AtomicU64,
}

impl Metrics {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes when this process started, once (later calls change nothing).
    pub fn mark_started(&self, now_ms: u64) {
        let _ = self
            .started_ms
            .compare_exchange(0, now_ms, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// When this process started ([`mark_started`](Self::mark_started); Unix ms).
    pub fn started_ms(&self) -> u64 {
        self.started_ms.load(Ordering::Relaxed)
    }

    fn with(&self, f: impl FnOnce(&mut MetricsView)) {
        let mut guard = self
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard);
    }

    /// One HTTP request on `route` (a route template) for `model` answered `status` in `ms`.
    pub fn request(&self, route: &str, model: &str, status: u16, ms: u64) {
        let k = key(&[route, model, &status.to_string()]);
        self.with(|v| {
            v.requests
                .entry(k)
                .or_default()
                .observe(ms, REQUEST_BUCKETS)
        });
    }

    /// One logical generation of `kind` (`image`, `video`) ended with `result` after `ms`.
    pub fn generation(&self, kind: &str, result: &str, ms: u64) {
        let k = key(&[kind, result]);
        self.with(|v| {
            v.generations
                .entry(k)
                .or_default()
                .observe(ms, GENERATION_BUCKETS)
        });
    }

    /// A generation call failed upstream, classified as `class`.
    pub fn upstream_error(&self, class: &str) {
        let k = key(&[class]);
        self.with(|v| *v.upstream_errors.entry(k).or_default() += 1);
    }

    /// A video job reached `state`.
    pub fn video_job(&self, state: &str) {
        let k = key(&[state]);
        self.with(|v| *v.video_jobs.entry(k).or_default() += 1);
    }

    /// An account slot of `kind` was taken (`+1`) or given back (`-1`).
    pub fn slot(&self, kind: &str, delta: i64) {
        let k = key(&[kind]);
        self.with(|v| *v.slots.entry(k).or_default() += delta);
    }

    /// A token refresh of `kind` (`at`, `st`) ended with `result` (`success`, `failure`).
    pub fn token_refresh(&self, kind: &str, result: &str) {
        let k = key(&[kind, result]);
        self.with(|v| *v.token_refresh.entry(k).or_default() += 1);
    }

    /// Whether [`flush_if_due`](Self::flush_if_due) would flush at `now_ms`.
    pub fn flush_due(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.flushed_ms.load(Ordering::Relaxed))
            >= FLUSH_EVERY.as_millis() as u64
    }

    /// Adds what this process counted since its last flush to the shared totals in `store`
    /// when [`FLUSH_EVERY`] has passed (or `force`). A delta that could not be written is kept
    /// for the next flush.
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
        match update_json(store, TOTALS_KEY, "metrics", |t: &mut MetricsView| {
            t.add(&delta)
        })
        .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                self.with(|v| v.add(&delta));
                Err(e)
            }
        }
    }

    /// Every process's counts: this one's flushed first, then the shared totals read. When
    /// the store fails, this process's own unflushed counts are added to what could be read.
    ///
    /// # Errors
    /// The store's failure to read the totals.
    pub async fn totals(
        &self,
        store: &dyn Storage,
        now_ms: u64,
    ) -> Result<MetricsView, StorageError> {
        let flushed = self.flush_if_due(store, now_ms, true).await;
        let mut totals = load_totals(store).await?;
        if flushed.is_err() {
            let pending = self
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            totals.add(&pending);
        }
        Ok(totals)
    }
}

async fn load_totals(store: &dyn Storage) -> Result<MetricsView, StorageError> {
    Ok(store
        .get(TOTALS_KEY)
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default())
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; its name ends in `_total`.
    Counter,
    /// Any value.
    Gauge,
    /// Observations in buckets, with `_bucket`, `_sum` and `_count` samples.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Builds a Prometheus text exposition (format 0.0.4): each family's `# HELP` and `# TYPE`
/// lines, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name`: its help text and type.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample of `name` with `labels`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
        self
    }

    /// A family with one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// The samples of one histogram series of `name` (its family already started):
    /// cumulative `_bucket`s up to `+Inf`, `_sum` (seconds) and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        h: &Histogram,
        bounds: &[f64],
    ) -> &mut Self {
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            let le = format_value(*bound);
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let _ = write!(self.out, "{name}_bucket");
        write_labels(&mut self.out, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(h.sum_ms as f64 / 1000.0));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
        self
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&escape_label(value));
        out.push('"');
    }
    out.push('}');
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text as the text format wants it: `\` and line feeds escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelt as Prometheus does.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_all() {
        let mut h = Histogram::default();
        for ms in [3, 7, 40, 900, 500_000] {
            h.observe(ms, REQUEST_BUCKETS);
        }
        let mut e = Exposition::new();
        e.family("x_seconds", Kind::Histogram, "X.");
        e.histogram("x_seconds", &[("route", "/v1/models")], &h, REQUEST_BUCKETS);
        let text = e.finish();
        assert!(text.contains("x_seconds_bucket{route=\"/v1/models\",le=\"0.005\"} 1\n"));
        assert!(text.contains("x_seconds_bucket{route=\"/v1/models\",le=\"0.01\"} 2\n"));
        assert!(text.contains("x_seconds_bucket{route=\"/v1/models\",le=\"0.05\"} 3\n"));
        assert!(text.contains("x_seconds_bucket{route=\"/v1/models\",le=\"1\"} 4\n"));
        assert!(text.contains("x_seconds_bucket{route=\"/v1/models\",le=\"300\"} 4\n"));
        assert!(text.contains("x_seconds_bucket{route=\"/v1/models\",le=\"+Inf\"} 5\n"));
        assert!(text.contains("x_seconds_count{route=\"/v1/models\"} 5\n"));
        assert!(text.contains("x_seconds_sum{route=\"/v1/models\"} 500.95\n"));
        assert!(text.starts_with("# HELP x_seconds X.\n# TYPE x_seconds histogram\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
        let mut e = Exposition::new();
        e.sample("m", &[("l", "x\"y")], 1.0);
        assert_eq!(e.finish(), "m{l=\"x\\\"y\"} 1\n");
    }

    #[test]
    fn values_are_formatted_as_prometheus_reads_them() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(1_700_000_000.0), "1700000000");
    }

    #[test]
    fn keys_round_trip_and_separators_cannot_shift_labels() {
        let k = key(&["/v1/models", "a|b", "200"]);
        assert_eq!(split_key(&k, 3), vec!["/v1/models", "a_b", "200"]);
        assert_eq!(split_key("x", 2), vec!["x", ""]);
    }

    #[test]
    fn flush_adds_to_the_shared_totals_and_totals_include_every_process() {
        futures::executor::block_on(async {
            let clock = std::sync::Arc::new(crate::memory::ManualClock::new(0));
            let store = crate::memory::MemoryStorage::new(clock);
            let (a, b) = (Metrics::new(), Metrics::new());
            a.request("/health", "none", 200, 3);
            b.request("/health", "none", 200, 4);
            b.upstream_error("rate_limited");
            a.flush_if_due(&store, 20_000, false).await.unwrap();
            // Not due yet: kept.
            b.request("/health", "none", 200, 1);
            let totals = b.totals(&store, 20_001).await.unwrap();
            let h = &totals.requests["/health|none|200"];
            assert_eq!(h.count, 3);
            assert_eq!(h.sum_ms, 8);
            assert_eq!(totals.upstream_errors["rate_limited"], 1);
            // Nothing counted twice.
            let again = a.totals(&store, 40_000).await.unwrap();
            assert_eq!(again.requests["/health|none|200"].count, 3);
        });
    }
}
