//! Structured logs of the native host: `tracing` events on stderr, as text or as JSON lines
//! (`LOG_FORMAT`), at the level `RUST_LOG` asks for (default `info`). The per-request lines
//! come from the server's batched writer in the same shape, target `flow2api::request`.

use std::sync::atomic::{AtomicBool, Ordering};

pub use super::request_log::LogFormat;

/// Whether request lines pass the filter: true until [`init_logging`] says otherwise, so that
/// an app that installs its own subscriber keeps its request lines.
static REQUEST_LINES: AtomicBool = AtomicBool::new(true);

pub(crate) fn request_lines_enabled() -> bool {
    REQUEST_LINES.load(Ordering::Relaxed)
}

impl LogFormat {
    /// `LOG_FORMAT` from the environment: `text` (default) or `json`.
    ///
    /// # Errors
    /// The value when it is neither.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT") {
            Ok(v) if !v.trim().is_empty() => {
                Self::parse(&v).ok_or_else(|| format!("LOG_FORMAT: {v:?} is neither text nor json"))
            }
            _ => Ok(Self::Text),
        }
    }
}

/// Installs the process's `tracing` subscriber: events on stderr in `format`, filtered by
/// `RUST_LOG` (`info` when unset; `RUST_LOG=flow2api::request=off` silences the request lines
/// alone). Call it once, first thing; a second call (or an app's own subscriber) changes
/// nothing but the request lines' filter.
///
/// # Errors
/// A `RUST_LOG` that does not parse.
#[cfg(feature = "native")]
pub fn init_logging(format: LogFormat) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG: {v:?}: {e}"))?
        }
        _ => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    let lines = tracing::enabled!(target: "flow2api::request", tracing::Level::INFO);
    REQUEST_LINES.store(lines, Ordering::Relaxed);
    Ok(())
}

/// Logs a warning through the process's subscriber (for binaries that do not depend on
/// `tracing` themselves).
pub fn log_warning(message: &str) {
    tracing::warn!("{message}");
}

/// Now as RFC 3339 in UTC with microseconds (`2026-12-04T16:20:00.123456Z`), as
/// `tracing-subscriber` writes its timestamps.
pub(crate) fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_micros())
}

fn rfc3339(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 as (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(
            rfc3339(1_796_400_000, 123_456),
            "2026-12-04T16:00:00.123456Z"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
