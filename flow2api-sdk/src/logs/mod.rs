//! Request logs and generation counters over the [`LogStore`] seam: what one row says of a
//! request (built here, so no host can put a secret or result bytes in it), the in-memory
//! store ([`MemoryLogStore`]), and the SQL every SQLite-backed store runs ([`sql`]: the
//! native database and the edge's `LogObject` share it, so both keep the same tables).
//!
//! [`LogStore`]: crate::seams::LogStore

mod memory;
pub mod sql;

use serde_json::{json, Value};

pub use crate::seams::logs::{
    AccountCounts, Counts, HourCounts, LogFilter, LogKind, LogRecord, LogStore, Retention,
    StatusFilter, Totals, DAY_MS, HOURLY_KEEP_MS, HOUR_MS, MAX_LOG_PAGE,
};
pub use memory::MemoryLogStore;

/// The longest `error_summary`.
pub const MAX_ERROR_SUMMARY: usize = 240;
/// The longest prompt kept in `request_body`.
pub const MAX_PROMPT: usize = 2000;
/// How much of an error response is read for its summary.
const SUMMARY_SCAN: usize = 2048;

/// What the configuration says to keep (`LOG_MAX_ENTRIES`, `LOG_MAX_AGE_DAYS`).
pub fn retention(config: &crate::config::Config) -> Retention {
    Retention {
        max_entries: config.log_max_entries,
        max_age_ms: config.log_max_age_days.saturating_mul(DAY_MS),
    }
}

/// The UTC day (days since the epoch) of a Unix ms time.
pub fn day_of(ms: u64) -> u64 {
    ms / DAY_MS
}

/// The start of the hour (Unix ms) of a Unix ms time.
pub fn hour_of(ms: u64) -> u64 {
    ms - ms % HOUR_MS
}

/// The operation of a generation request by its model's kind.
pub fn operation_of(kind: LogKind) -> &'static str {
    match kind {
        LogKind::Image => "generate_image",
        LogKind::Video => "generate_video",
        LogKind::Other => "generate_unknown",
    }
}

/// `request_body`: `{"model","prompt","has_images"}`, the prompt cut at [`MAX_PROMPT`]
/// characters with `...(truncated)` after it.
pub fn request_body(model: &str, prompt: &str, has_images: bool) -> String {
    let prompt = if prompt.chars().count() > MAX_PROMPT {
        let cut: String = prompt.chars().take(MAX_PROMPT).collect();
        format!("{cut}...(truncated)")
    } else {
        prompt.to_owned()
    };
    json!({"model": model, "prompt": prompt, "has_images": has_images}).to_string()
}

/// A result URL as logged: an inline `data:` URL is result bytes, so only its type is kept.
pub fn loggable_url(url: &str) -> String {
    match url.strip_prefix("data:") {
        Some(rest) => {
            let kind = rest.split([';', ',']).next().unwrap_or("");
            format!("data:{kind};…(inline result, not logged)")
        }
        None => crate::util::truncate(url, 2048),
    }
}

/// `response_body` of a request that succeeded: its result URLs.
pub fn response_body_ok(urls: &[String]) -> String {
    let urls: Vec<String> = urls.iter().map(|u| loggable_url(u)).collect();
    json!({"success": true, "urls": urls}).to_string()
}

/// `response_body` of a request that failed: its status and summary.
pub fn response_body_error(status: u16, summary: &str) -> String {
    json!({"success": false, "status_code": status, "error": summary}).to_string()
}

/// The summary of an error response body, as the original extracts it: from the body's first
/// 2048 bytes, the keys `error_summary`, `error_message`, `detail`, `message`, then
/// `error.message`/`detail`/`reason`/`code` or a string `error`, looking into `response` and
/// `data`; else the text itself. At most [`MAX_ERROR_SUMMARY`] characters; `None` for an
/// empty body.
pub fn error_summary(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(SUMMARY_SCAN)];
    let text = String::from_utf8_lossy(head);
    let found = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| summary_in(&v, 0));
    let summary = found.unwrap_or_else(|| text.trim().to_owned());
    let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    (!summary.is_empty()).then(|| cap_summary(&summary))
}

/// `text` cut to [`MAX_ERROR_SUMMARY`] characters.
pub fn cap_summary(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_SUMMARY {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_ERROR_SUMMARY - 1).collect();
    cut.push('…');
    cut
}

fn summary_in(v: &Value, depth: u8) -> Option<String> {
    let obj = v.as_object()?;
    let text = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        // FastAPI's validation errors: a list of objects with `msg`.
        Value::Array(items) => items
            .iter()
            .find_map(|i| i.get("msg").and_then(Value::as_str).map(str::to_owned)),
        _ => None,
    };
    for k in ["error_summary", "error_message", "detail", "message"] {
        if let Some(s) = obj.get(k).and_then(text) {
            return Some(s);
        }
    }
    match obj.get("error") {
        Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
        Some(e @ Value::Object(_)) => {
            for k in ["message", "detail", "reason", "code"] {
                if let Some(s) = e.get(k).and_then(text) {
                    return Some(s);
                }
            }
        }
        _ => {}
    }
    if depth < 3 {
        for k in ["response", "data"] {
            if let Some(s) = obj.get(k).and_then(|v| summary_in(v, depth + 1)) {
                return Some(s);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_follow_the_originals_keys() {
        let s = |b: &str| error_summary(b.as_bytes());
        assert_eq!(s(r#"{"detail":"no"}"#).as_deref(), Some("no"));
        assert_eq!(
            s(r#"{"error":{"message":"bad model","type":"x"}}"#).as_deref(),
            Some("bad model")
        );
        assert_eq!(
            s(r#"{"error":{"code":404,"status":"NOT_FOUND"}}"#).as_deref(),
            Some("404")
        );
        assert_eq!(s(r#"{"error":"plain"}"#).as_deref(), Some("plain"));
        assert_eq!(
            s(r#"{"data":{"response":{"message":"deep"}}}"#).as_deref(),
            Some("deep")
        );
        assert_eq!(s("not json\n at all").as_deref(), Some("not json at all"));
        assert_eq!(s("  "), None);
        let long = format!(r#"{{"detail":"{}"}}"#, "x".repeat(500));
        assert!(s(&long).unwrap().chars().count() <= MAX_ERROR_SUMMARY);
    }

    #[test]
    fn request_bodies_cut_long_prompts() {
        let body: Value =
            serde_json::from_str(&request_body("m", &"é".repeat(2500), true)).unwrap();
        let prompt = body["prompt"].as_str().unwrap();
        assert!(prompt.ends_with("...(truncated)"));
        assert_eq!(prompt.chars().count(), MAX_PROMPT + "...(truncated)".len());
        assert_eq!(body["has_images"], true);
    }

    #[test]
    fn inline_results_are_not_logged() {
        let body = response_body_ok(&["data:image/png;base64,AAAA".into()]);
        assert!(!body.contains("AAAA"), "{body}");
        assert!(body.contains("image/png"));
    }

    #[test]
    fn days_and_hours() {
        assert_eq!(day_of(DAY_MS * 3 + 5), 3);
        assert_eq!(hour_of(HOUR_MS * 7 + 99), HOUR_MS * 7);
    }
}
