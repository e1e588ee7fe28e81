//! Small helpers: randomness, ids and timestamps.

use std::fmt::Write as _;

/// The platform's randomness source failed, so nothing secret can be minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system's randomness source failed")]
pub struct RandomnessError;

/// Fills `buf` from the platform's CSPRNG, for secrets and for ids that grant access by being
/// known (session tokens, media ids, password salts).
///
/// # Errors
/// [`RandomnessError`] when the source fails; never a predictable value instead.
pub fn secret_fill(buf: &mut [u8]) -> Result<(), RandomnessError> {
    secret_fill_with(buf, |b| getrandom::fill(b).is_ok())
}

/// [`secret_fill`] over `fill`, which fills its buffer and says whether it could.
fn secret_fill_with(
    buf: &mut [u8],
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> Result<(), RandomnessError> {
    if fill(buf) {
        Ok(())
    } else {
        // Nothing of a half-filled buffer may be used.
        buf.fill(0);
        Err(RandomnessError)
    }
}

/// `n` bytes from [`secret_fill`] as lower-case hex.
///
/// # Errors
/// [`RandomnessError`] when the source fails.
pub fn secret_hex(n: usize) -> Result<String, RandomnessError> {
    let mut b = vec![0u8; n];
    secret_fill(&mut b)?;
    Ok(hex(&b))
}

/// Fills `buf` with random bytes for uses where a guessable value is harmless (jitter,
/// shuffling, seeds, ids that are only unique labels). Should the platform's CSPRNG fail, it
/// falls back to a per-process counter mix: distinct values, but predictable ones, which is
/// why secrets come from [`secret_fill`] instead.
pub fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        fill_fallback(buf);
    }
}

fn fill_fallback(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    for chunk in buf.chunks_mut(8) {
        // splitmix64 over a shared counter: every call gets different bytes.
        let mut z = COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// A random `u64` (not for secrets; see [`random_bytes`]).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    random_bytes(&mut b);
    u64::from_le_bytes(b)
}

/// `n` random bytes as lower-case hex (not for secrets; see [`random_bytes`]).
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    random_bytes(&mut b);
    hex(&b)
}

/// `s` cut to at most `max` bytes (on a character boundary) with `…` appended when cut: keeps
/// bodies and URIs quoted in messages short.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A random UUID v4 string (not for secrets; see [`random_bytes`]).
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses an RFC 3339 UTC timestamp such as `2025-11-15T04:46:04.000Z` into Unix milliseconds.
/// Offsets other than `Z`/`+00:00` are applied. Returns `None` for anything else.
///
/// The text comes from upstream, so it is read as bytes with checked, fixed-width fields: no
/// `&str` slicing that could cut through a multi-byte character and panic.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let (head, rest) = s.trim().as_bytes().split_at_checked(19)?;
    if head[4] != b'-'
        || head[7] != b'-'
        || !(head[10] == b'T' || head[10] == b' ')
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let num = |at: usize, len: usize| digits(head.get(at..at + len)?);
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, se) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // A fraction of any length; only its first three digits count.
    let (millis, offset) = match rest.strip_prefix(b".") {
        Some(frac) => {
            let (fraction, offset) =
                frac.split_at(frac.iter().take_while(|c| c.is_ascii_digit()).count());
            let ms = fraction
                .iter()
                .chain(b"000")
                .take(3)
                .fold(0i64, |ms, c| ms * 10 + i64::from(c - b'0'));
            (ms, offset)
        }
        None => (0, rest),
    };
    let offset_min = match offset {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

/// A fixed-width field of ASCII digits (no sign, no spaces) as a number.
fn digits(field: &[u8]) -> Option<i64> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(field.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `a***@example.com`: enough to tell accounts apart in progress lines.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) if !user.is_empty() => {
            format!("{}***@{domain}", user.chars().next().unwrap_or('*'))
        }
        _ => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ms = parse_rfc3339_ms("2025-11-15T04:46:04.000Z").unwrap();
        assert_eq!(ms, 1_763_181_964_000);
        assert_eq!(format_rfc3339(ms), "2025-11-15T04:46:04Z");
        assert_eq!(parse_rfc3339_ms("2025-11-15T05:46:04+01:00"), Some(ms));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("garbage"), None);
        assert_eq!(parse_rfc3339_ms(" 2025-11-15 04:46:04z "), Some(ms));
        assert_eq!(parse_rfc3339_ms("2025-11-15T03:16:04-01:30"), Some(ms));
        assert_eq!(parse_rfc3339_ms("2025-11-15T04:46:04.5Z"), Some(ms + 500));
        assert_eq!(
            parse_rfc3339_ms("2025-11-15T04:46:04.123456789Z"),
            Some(ms + 123)
        );
        assert_eq!(parse_rfc3339_ms("2025-11-15T04:46:04.Z"), Some(ms));
        for bad in [
            "2025-13-15T04:46:04Z",
            "2025-11-15T04:46:04+1:00",
            "2025-11-15T04:46:04+01-00",
            "2025-11-15T04-46-04Z",
            "2025-+1-15T04:46:04Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_non_ascii_is_none_not_a_panic() {
        // Multi-byte characters where the old parser sliced the text at fixed byte offsets
        // (the offset's `[1..3]` cut through `é` and panicked).
        for s in [
            "2025-11-15T04:46:04+0é00",
            "2025-11-15T04:46:04+é:00",
            "2025-11-15T04:46:04.12é",
            "2025-11-15T04:46:0é",
            "2025-11-15T04:46:04é",
            "2025-11-15T04:46:04.000Zé",
            "2025-11-15T04:4é:04Z",
            "éééééééééééééééééééé",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
    }

    #[test]
    fn a_failing_source_is_an_error_never_a_fixed_token() {
        let mut buf = [7u8; 4];
        let failed = secret_fill_with(&mut buf, |b| {
            b[0] = 1;
            false
        });
        assert_eq!((failed, buf), (Err(RandomnessError), [0; 4]));
        let filled = secret_fill_with(&mut buf, |b| {
            b.copy_from_slice(&[1, 2, 0xab, 0xff]);
            true
        });
        assert_eq!((filled, hex(&buf).as_str()), (Ok(()), "0102abff"));
        assert_eq!(secret_hex(32).unwrap().len(), 64);
    }

    #[test]
    fn the_non_secret_fallback_differs_from_call_to_call() {
        let (mut a, mut b) = ([0u8; 12], [0u8; 12]);
        fill_fallback(&mut a);
        fill_fallback(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
