//! Upstream timestamps (RFC 3339, the session's `expires`): parsing any text, and the round
//! trip of what parses through the formatter.

#![no_main]

use flow2api_sdk::fuzzing::{format_rfc3339, parse_rfc3339_ms};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(ms) = parse_rfc3339_ms(text) {
        let formatted = format_rfc3339(ms);
        assert_eq!(
            parse_rfc3339_ms(&formatted),
            Some(ms - ms % 1000),
            "{text} -> {formatted}"
        );
    }
});
