//! The [`LogStore`] suite: ids increase and are never reused, listings are newest first
//! without bodies and page with `before`, every filter keeps exactly its rows, retention by
//! count and by age, clearing keeps the counters, and the counters (all time, per UTC day and
//! account, per hour) add up.
//!
//! Rows carry their own times, so no case waits. Each case needs an empty store: a factory
//! (or a host's conformance route) makes a fresh one per case.

use std::future::Future;
use std::sync::Arc;

use super::{check, check_eq, CaseResult, Report};
use crate::logs::{
    day_of, hour_of, Counts, LogFilter, LogRecord, LogStore, Retention, StatusFilter, DAY_MS,
    HOUR_MS,
};

/// A log store under test (empty).
#[derive(Clone)]
pub struct Subject {
    /// The store.
    pub store: Arc<dyn LogStore>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").finish_non_exhaustive()
    }
}

impl Subject {
    /// An empty `store`.
    pub fn new(store: Arc<dyn LogStore>) -> Self {
        Self { store }
    }
}

/// Every case, by name, in the order [`suite`] runs them.
pub const CASES: &[&str] = &[
    "append_get_and_list",
    "paging_and_filters",
    "retention_by_count",
    "retention_by_age",
    "clear_keeps_counters_and_ids",
    "counters",
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

/// Runs the case `name` of [`CASES`] on an empty subject (an unknown name fails).
///
/// # Errors
/// The failed check's message.
pub async fn case(name: &str, s: &Subject) -> CaseResult {
    let store = &*s.store;
    match name {
        "append_get_and_list" => append_get_and_list(store).await,
        "paging_and_filters" => paging_and_filters(store).await,
        "retention_by_count" => retention_by_count(store).await,
        "retention_by_age" => retention_by_age(store).await,
        "clear_keeps_counters_and_ids" => clear_keeps_counters_and_ids(store).await,
        "counters" => counters(store).await,
        other => Err(format!("no log store case {other}")),
    }?;
    Ok(None)
}

/// A day's start well after the epoch, so that days before it exist.
const T0: u64 = 20_000 * DAY_MS;

fn row(created_at_ms: u64, operation: &str, status: u16, account: Option<&str>) -> LogRecord {
    LogRecord {
        id: 0,
        created_at_ms,
        updated_at_ms: created_at_ms + 1500,
        operation: operation.to_owned(),
        model: format!("model-{operation}"),
        account_id: account.map(str::to_owned),
        account_email: account.map(|a| format!("{a}@example.com")),
        key: "root".to_owned(),
        status_code: status,
        duration_ms: 1500,
        status_text: if status < 400 { "completed" } else { "failed" }.to_owned(),
        progress: if status < 400 { 100 } else { 10 },
        error_summary: (status >= 400).then(|| "it failed".to_owned()),
        request_body: r#"{"model":"m","prompt":"a cat","has_images":false}"#.to_owned(),
        response_body: r#"{"success":true,"urls":["http://x/media/1"]}"#.to_owned(),
    }
}

async fn add(store: &dyn LogStore, r: LogRecord) -> Result<u64, String> {
    store
        .append(r, Retention::default())
        .await
        .map_err(|e| format!("append: {e}"))
}

async fn list(
    store: &dyn LogStore,
    filter: &LogFilter,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<LogRecord>, String> {
    store
        .list(filter, before, limit)
        .await
        .map_err(|e| format!("list: {e}"))
}

fn ids(rows: &[LogRecord]) -> Vec<u64> {
    rows.iter().map(|r| r.id).collect()
}

async fn append_get_and_list(store: &dyn LogStore) -> Result<(), String> {
    let mut made = Vec::new();
    for i in 0..3 {
        let r = row(T0 + i * 1000, "generate_image", 200, Some("acc-1"));
        let id = add(store, r.clone()).await?;
        made.push((id, r));
    }
    check(made.windows(2).all(|w| w[0].0 < w[1].0), || {
        format!(
            "ids do not increase: {:?}",
            made.iter().map(|m| m.0).collect::<Vec<_>>()
        )
    })?;
    let (id, want) = &made[1];
    let got = store
        .get(*id)
        .await
        .map_err(|e| format!("get: {e}"))?
        .ok_or("get: an appended row is missing")?;
    check_eq(
        &got,
        &LogRecord {
            id: *id,
            ..want.clone()
        },
        "the row read back",
    )?;
    let missing = store
        .get(id + 1000)
        .await
        .map_err(|e| format!("get: {e}"))?;
    check(missing.is_none(), || {
        "get of an unknown id found a row".into()
    })?;
    let rows = list(store, &LogFilter::default(), None, 100).await?;
    let want_ids: Vec<u64> = made.iter().rev().map(|m| m.0).collect();
    check_eq(ids(&rows), want_ids, "listing, newest first")?;
    check(
        rows.iter()
            .all(|r| r.request_body.is_empty() && r.response_body.is_empty()),
        || "a listing carries bodies".into(),
    )?;
    check_eq(
        rows[0].error_summary.clone(),
        None,
        "error summary of a success",
    )?;
    check_eq(
        rows[0].account_email.as_deref(),
        Some("acc-1@example.com"),
        "listed email",
    )
}

async fn paging_and_filters(store: &dyn LogStore) -> Result<(), String> {
    let shapes: [(&str, u16, Option<&str>); 6] = [
        ("generate_image", 200, Some("acc-a")),
        ("generate_image", 503, None),
        ("generate_video", 200, Some("acc-b")),
        ("generate_unknown", 400, None),
        ("generate_image", 499, Some("acc-a")),
        ("extend_video", 500, Some("acc-b")),
    ];
    let mut all = Vec::new();
    for i in 0..18u64 {
        let (op, status, account) = shapes[(i % 6) as usize];
        let mut r = row(T0 + i * 60_000, op, status, account);
        r.key = if i % 3 == 0 {
            "key_a".into()
        } else {
            "root".into()
        };
        r.id = add(store, r.clone()).await?;
        all.push(r);
    }
    // Paging: pages of 5 with `before` give every row once, newest first.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = list(store, &LogFilter::default(), before, 5).await?;
        check(page.len() <= 5, || format!("a page of {} rows", page.len()))?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(ids(&page));
    }
    let newest_first: Vec<u64> = all.iter().rev().map(|r| r.id).collect();
    check_eq(&seen, &newest_first, "paged listing")?;
    let limited = list(store, &LogFilter::default(), None, 1000).await?;
    check_eq(
        limited.len(),
        18,
        "a limit over the maximum is clamped, not refused",
    )?;
    let filters = [
        LogFilter {
            status: Some(StatusFilter::Code(200)),
            ..LogFilter::default()
        },
        LogFilter {
            status: Some(StatusFilter::Class(4)),
            ..LogFilter::default()
        },
        LogFilter {
            status: Some(StatusFilter::Class(5)),
            ..LogFilter::default()
        },
        LogFilter {
            model: Some("model-generate_video".into()),
            ..LogFilter::default()
        },
        LogFilter {
            account: Some("acc-a".into()),
            ..LogFilter::default()
        },
        LogFilter {
            key: Some("key_a".into()),
            ..LogFilter::default()
        },
        LogFilter {
            operation: Some("generate_image".into()),
            ..LogFilter::default()
        },
        LogFilter {
            since_ms: Some(T0 + 5 * 60_000),
            until_ms: Some(T0 + 9 * 60_000),
            ..LogFilter::default()
        },
        LogFilter {
            status: Some(StatusFilter::Class(2)),
            account: Some("acc-b".into()),
            ..LogFilter::default()
        },
    ];
    for f in &filters {
        let got = list(store, f, None, 100).await?;
        let want: Vec<u64> = all
            .iter()
            .rev()
            .filter(|r| f.matches(r))
            .map(|r| r.id)
            .collect();
        check(!want.is_empty(), || format!("no row for {f:?}"))?;
        check_eq(ids(&got), want, &format!("rows for {f:?}"))?;
        // The same filter, paged by twos.
        let first = list(store, f, None, 2).await?;
        let second = match first.last() {
            Some(last) => list(store, f, Some(last.id), 2).await?,
            None => Vec::new(),
        };
        let want_pages: Vec<u64> = all
            .iter()
            .rev()
            .filter(|r| f.matches(r))
            .take(4)
            .map(|r| r.id)
            .collect();
        let got_pages: Vec<u64> = ids(&first).into_iter().chain(ids(&second)).collect();
        check_eq(got_pages, want_pages, &format!("two pages for {f:?}"))?;
    }
    Ok(())
}

async fn retention_by_count(store: &dyn LogStore) -> Result<(), String> {
    let keep = Retention {
        max_entries: 3,
        ..Retention::default()
    };
    let mut made = Vec::new();
    for i in 0..6 {
        let r = row(T0 + i * 1000, "generate_image", 200, Some("acc-1"));
        made.push(
            store
                .append(r, keep)
                .await
                .map_err(|e| format!("append: {e}"))?,
        );
    }
    let rows = list(store, &LogFilter::default(), None, 100).await?;
    let want: Vec<u64> = made.iter().rev().take(3).copied().collect();
    check_eq(ids(&rows), want, "rows kept")?;
    let gone = store.get(made[0]).await.map_err(|e| format!("get: {e}"))?;
    check(gone.is_none(), || "a row past the count was kept".into())?;
    // The counters still count every request.
    let totals = store
        .stats(day_of(T0))
        .await
        .map_err(|e| format!("stats: {e}"))?;
    check_eq(totals.total.images, 6, "images counted")
}

async fn retention_by_age(store: &dyn LogStore) -> Result<(), String> {
    let keep = Retention {
        max_entries: 1000,
        max_age_ms: DAY_MS,
    };
    let append = |r| store.append(r, keep);
    let old = append(row(T0, "generate_image", 200, None))
        .await
        .map_err(|e| format!("append: {e}"))?;
    let mid = append(row(T0 + DAY_MS, "generate_image", 200, None))
        .await
        .map_err(|e| format!("append: {e}"))?;
    let new = append(row(T0 + DAY_MS + HOUR_MS, "generate_image", 200, None))
        .await
        .map_err(|e| format!("append: {e}"))?;
    let rows = list(store, &LogFilter::default(), None, 100).await?;
    check_eq(
        ids(&rows),
        vec![new, mid],
        "rows within a day of the newest",
    )?;
    check(old < mid, || "ids do not increase".into())
}

async fn clear_keeps_counters_and_ids(store: &dyn LogStore) -> Result<(), String> {
    let a = add(store, row(T0, "generate_image", 200, Some("acc-1"))).await?;
    let b = add(store, row(T0 + 1, "generate_video", 500, Some("acc-1"))).await?;
    let before = store
        .stats(day_of(T0))
        .await
        .map_err(|e| format!("stats: {e}"))?;
    let deleted = store.clear().await.map_err(|e| format!("clear: {e}"))?;
    check_eq(deleted, 2, "rows deleted")?;
    let rows = list(store, &LogFilter::default(), None, 100).await?;
    check(rows.is_empty(), || format!("{} rows left", rows.len()))?;
    check(
        store
            .get(a)
            .await
            .map_err(|e| format!("get: {e}"))?
            .is_none(),
        || "a cleared row is still readable".into(),
    )?;
    let after = store
        .stats(day_of(T0))
        .await
        .map_err(|e| format!("stats: {e}"))?;
    check_eq(after, before, "counters after a clear")?;
    let c = add(store, row(T0 + 2, "generate_image", 200, None)).await?;
    check(c > b, || {
        format!("id {c} after a clear reuses one up to {b}")
    })?;
    check_eq(
        store.clear().await.map_err(|e| format!("clear: {e}"))?,
        1,
        "rows deleted by a second clear",
    )
}

async fn counters(store: &dyn LogStore) -> Result<(), String> {
    let today = T0 + 10 * HOUR_MS;
    let yesterday = today - DAY_MS;
    let rows = [
        row(today, "generate_image", 200, Some("acc-a")),
        row(today + 60_000, "generate_image", 200, Some("acc-a")),
        row(today + 120_000, "generate_image", 502, Some("acc-a")),
        row(today + 3 * HOUR_MS, "generate_video", 200, Some("acc-b")),
        row(today + 3 * HOUR_MS, "extend_video", 499, Some("acc-b")),
        row(today + 3 * HOUR_MS, "generate_unknown", 400, None),
        row(yesterday, "generate_image", 200, Some("acc-b")),
        row(yesterday, "generate_video", 200, Some("acc-a")),
    ];
    for r in rows {
        add(store, r).await?;
    }
    let totals = store
        .stats(day_of(today))
        .await
        .map_err(|e| format!("stats: {e}"))?;
    let counts = |images, videos, errors, image_errors, video_errors| Counts {
        images,
        videos,
        errors,
        image_errors,
        video_errors,
    };
    check_eq(totals.today, counts(2, 1, 3, 1, 1), "today")?;
    check_eq(totals.total, counts(3, 2, 3, 1, 1), "all time")?;
    let accounts = store
        .per_account(day_of(today))
        .await
        .map_err(|e| format!("per_account: {e}"))?;
    let summary: Vec<(String, String, Counts, Counts)> = accounts
        .iter()
        .map(|a| {
            (
                a.account_id.clone(),
                a.email.clone(),
                a.totals.today,
                a.totals.total,
            )
        })
        .collect();
    check_eq(
        summary,
        vec![
            (
                "acc-a".into(),
                "acc-a@example.com".into(),
                counts(2, 0, 1, 1, 0),
                counts(2, 1, 1, 1, 0),
            ),
            (
                "acc-b".into(),
                "acc-b@example.com".into(),
                counts(0, 1, 1, 0, 1),
                counts(1, 1, 1, 0, 1),
            ),
        ],
        "per account",
    )?;
    let hours = store
        .series(yesterday)
        .await
        .map_err(|e| format!("series: {e}"))?;
    let by_hour: Vec<(u64, Counts)> = hours.iter().map(|h| (h.hour_ms, h.counts)).collect();
    check_eq(
        by_hour,
        vec![
            (hour_of(yesterday), counts(1, 1, 0, 0, 0)),
            (hour_of(today), counts(2, 0, 1, 1, 0)),
            (hour_of(today + 3 * HOUR_MS), counts(0, 1, 2, 0, 1)),
        ],
        "hourly counts",
    )?;
    let later = store
        .series(today + HOUR_MS)
        .await
        .map_err(|e| format!("series: {e}"))?;
    check_eq(later.len(), 1, "hours from a later start")?;
    // Nine days on, the old hours are gone and the day's counts start again.
    add(
        store,
        row(today + 9 * DAY_MS, "generate_image", 200, Some("acc-a")),
    )
    .await?;
    let hours = store.series(0).await.map_err(|e| format!("series: {e}"))?;
    check_eq(hours.len(), 1, "hours kept after nine days")?;
    let totals = store
        .stats(day_of(today + 9 * DAY_MS))
        .await
        .map_err(|e| format!("stats: {e}"))?;
    check_eq(totals.today, counts(1, 0, 0, 0, 0), "a later day")?;
    check_eq(totals.total, counts(4, 2, 3, 1, 1), "all time, later")
}
