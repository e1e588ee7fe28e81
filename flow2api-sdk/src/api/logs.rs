//! The request log and its counters, for the admin console (admin session checked by the
//! caller): `GET /api/logs` (the original's array; with `cursor`, pages), `GET /api/logs/{id}`,
//! `DELETE /api/logs`, `GET /api/stats/series?range=24h|7d` and `GET /api/stats/accounts`.
//! `GET /api/stats` itself is in `admin_compat`, over [`AppInner::log_totals`].

use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::logs::{
    day_of, hour_of, Counts, LogFilter, LogRecord, StatusFilter, Totals, DAY_MS, HOUR_MS,
    MAX_LOG_PAGE,
};
use crate::seams::Bytes;
use crate::util::{format_rfc3339, parse_rfc3339_ms};

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// The routes this module answers.
pub(super) fn is_logs_route(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (&Method::GET | &Method::DELETE, ["logs"])
            | (&Method::GET, ["logs", _])
            | (&Method::GET, ["stats", "series" | "accounts"])
    )
}

fn ok(v: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

/// The admin API's refusal shape, `{"success": false, "message"}`.
fn refused(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let body = json!({"success": false, "message": message.into()});
    json_response(status, Bytes::from(body.to_string()))
}

fn storage(_: crate::seams::StorageError) -> ApiError {
    ApiError::storage_unavailable()
}

/// A listed row, in the original's field names (`token_*` is the account; the key is named,
/// never shown).
fn row_view(r: &LogRecord) -> Value {
    json!({
        "id": r.id,
        "token_id": r.account_id,
        "token_email": r.account_email,
        "token_username": Value::Null,
        "operation": r.operation,
        "model": r.model,
        "key": r.key,
        "status_code": r.status_code,
        "duration": r.duration_ms as f64 / 1000.0,
        "status_text": r.status_text,
        "progress": r.progress,
        "created_at": format_rfc3339(r.created_at_ms),
        "updated_at": format_rfc3339(r.updated_at_ms),
        "error_summary": r.error_summary,
    })
}

fn counts_view(prefix: &str, c: &Counts, out: &mut serde_json::Map<String, Value>) {
    out.insert(format!("{prefix}_images"), json!(c.images));
    out.insert(format!("{prefix}_videos"), json!(c.videos));
    out.insert(format!("{prefix}_errors"), json!(c.errors));
}

/// A time given as RFC 3339 or as Unix seconds (a fraction allowed).
fn parse_time(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (0.0..1e13)
            .contains(&secs)
            .then_some((secs * 1000.0) as u64);
    }
    parse_rfc3339_ms(v)
}

/// `200`, or a class: `2xx`, `4xx`, `5xx`.
fn parse_status(v: &str) -> Option<StatusFilter> {
    let v = v.trim().to_ascii_lowercase();
    if let Some(class) = v.strip_suffix("xx") {
        return match class.parse::<u8>() {
            Ok(c @ 1..=5) => Some(StatusFilter::Class(c)),
            _ => None,
        };
    }
    match v.parse::<u16>() {
        Ok(c @ 100..=599) => Some(StatusFilter::Code(c)),
        _ => None,
    }
}

/// What `GET /api/logs` was asked: the filter, the page size, and the cursor (`Some` when the
/// paged form is asked for; its inner `None` is the first page).
struct ListQuery {
    filter: LogFilter,
    limit: usize,
    cursor: Option<Option<u64>>,
}

fn list_query(uri: &http::Uri) -> Result<ListQuery, String> {
    let mut q = ListQuery {
        filter: LogFilter::default(),
        limit: MAX_LOG_PAGE,
        cursor: None,
    };
    let text = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let f = &mut q.filter;
        match &*k {
            "limit" => {
                let n = v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| "`limit` must be a whole number (1–100).".to_owned())?;
                q.limit = n.clamp(1, MAX_LOG_PAGE as i64) as usize;
            }
            "cursor" if v.is_empty() => q.cursor = Some(None),
            "cursor" => {
                let id = v
                    .parse::<u64>()
                    .map_err(|_| "`cursor` is not one this listing gave.".to_owned())?;
                q.cursor = Some(Some(id));
            }
            "status" => {
                f.status = Some(parse_status(&v).ok_or_else(|| {
                    format!("`status` must be a status code (200) or a class (2xx, 4xx, 5xx); got `{v}`.")
                })?);
            }
            "model" => f.model = text(&v),
            "account" => f.account = text(&v),
            "key" => f.key = text(&v),
            "operation" => f.operation = text(&v),
            "since" | "until" => {
                let t = parse_time(&v).ok_or_else(|| {
                    format!("`{k}` must be an RFC 3339 time or Unix seconds; got `{v}`.")
                })?;
                if k == "since" {
                    f.since_ms = Some(t);
                } else {
                    f.until_ms = Some(t);
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The buckets of `GET /api/stats/series`: 24 hours or 7 days up to now, oldest first.
fn buckets(range: &str, now_ms: u64) -> Option<(u64, u64, usize)> {
    match range {
        "24h" => Some((hour_of(now_ms) - 23 * HOUR_MS, HOUR_MS, 24)),
        "7d" => Some((day_of(now_ms).saturating_sub(6) * DAY_MS, DAY_MS, 7)),
        _ => None,
    }
}

impl AppInner {
    /// All-time and today's (UTC) generation counts.
    pub(super) async fn log_totals(&self) -> Result<Totals, ApiError> {
        let today = day_of(self.deps.clock.now_ms());
        self.deps.logs.stats(today).await.map_err(storage)
    }

    /// The routes of [`is_logs_route`].
    pub(super) async fn logs_route(
        &self,
        method: &Method,
        segments: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        let logs = &self.deps.logs;
        match (method, segments) {
            (&Method::GET, ["logs"]) => {
                let q = match list_query(req.uri()) {
                    Ok(q) => q,
                    Err(m) => return Ok(refused(StatusCode::BAD_REQUEST, m)),
                };
                let before = q.cursor.flatten();
                let rows = logs
                    .list(&q.filter, before, q.limit)
                    .await
                    .map_err(storage)?;
                let views: Vec<Value> = rows.iter().map(row_view).collect();
                Ok(match q.cursor {
                    None => ok(&Value::Array(views)),
                    Some(_) => {
                        let next = (rows.len() == q.limit)
                            .then(|| rows.last().map(|r| r.id.to_string()))
                            .flatten();
                        ok(&json!({"logs": views, "next_cursor": next}))
                    }
                })
            }
            (&Method::GET, ["logs", id]) => {
                let row = match id.parse::<u64>() {
                    Ok(id) => logs.get(id).await.map_err(storage)?,
                    Err(_) => None,
                };
                let Some(row) = row else {
                    return Ok(refused(
                        StatusCode::NOT_FOUND,
                        format!("No log with id `{id}`."),
                    ));
                };
                let mut view = row_view(&row);
                if let Value::Object(m) = &mut view {
                    m.insert("request_body".into(), json!(row.request_body));
                    m.insert("response_body".into(), json!(row.response_body));
                }
                Ok(ok(&view))
            }
            (&Method::DELETE, ["logs"]) => {
                let deleted = logs.clear().await.map_err(storage)?;
                Ok(ok(&json!({"success": true, "deleted": deleted})))
            }
            (&Method::GET, ["stats", "series"]) => {
                let range = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "range")
                    .map_or_else(|| "24h".to_owned(), |(_, v)| v.into_owned());
                let now = self.deps.clock.now_ms();
                let Some((start, width, n)) = buckets(&range, now) else {
                    return Ok(refused(
                        StatusCode::BAD_REQUEST,
                        format!("`range` must be 24h or 7d; got `{range}`."),
                    ));
                };
                let hours = logs.series(start).await.map_err(storage)?;
                let mut sums = vec![Counts::default(); n];
                for h in &hours {
                    let i = h.hour_ms.saturating_sub(start) / width;
                    if let Some(slot) = usize::try_from(i).ok().and_then(|i| sums.get_mut(i)) {
                        slot.add(&h.counts);
                    }
                }
                let buckets: Vec<Value> = sums
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        json!({
                            "start": format_rfc3339(start + i as u64 * width),
                            "images": c.images,
                            "videos": c.videos,
                            "errors": c.errors,
                        })
                    })
                    .collect();
                Ok(ok(&json!({"range": range, "buckets": buckets})))
            }
            (&Method::GET, ["stats", "accounts"]) => {
                let today = day_of(self.deps.clock.now_ms());
                let accounts = logs.per_account(today).await.map_err(storage)?;
                let out: Vec<Value> = accounts
                    .iter()
                    .map(|a| {
                        let mut m = serde_json::Map::new();
                        m.insert("token_id".into(), json!(a.account_id));
                        m.insert("email".into(), json!(a.email));
                        counts_view("today", &a.totals.today, &mut m);
                        counts_view("total", &a.totals.total, &mut m);
                        Value::Object(m)
                    })
                    .collect();
                Ok(ok(&Value::Array(out)))
            }
            _ => Err(ApiError::not_found(format!(
                "No route for {method} /api/{}",
                segments.join("/")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_times_parse() {
        assert_eq!(parse_status("200"), Some(StatusFilter::Code(200)));
        assert_eq!(parse_status("4xx"), Some(StatusFilter::Class(4)));
        assert_eq!(parse_status("4XX"), Some(StatusFilter::Class(4)));
        assert_eq!(parse_status("9xx"), None);
        assert_eq!(parse_status("abc"), None);
        assert_eq!(parse_status("42"), None);
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("-5"), None);
    }

    #[test]
    fn series_buckets_end_with_the_current_one() {
        let now = 100 * DAY_MS + 5 * HOUR_MS + 123;
        let (start, width, n) = buckets("24h", now).unwrap();
        assert_eq!(start + (n as u64 - 1) * width, hour_of(now));
        let (start, width, n) = buckets("7d", now).unwrap();
        assert_eq!(start + (n as u64 - 1) * width, 100 * DAY_MS);
        assert!(buckets("1y", now).is_none());
    }
}
