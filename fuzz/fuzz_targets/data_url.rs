//! Client `data:` image URLs: decoding, the size limit, and the round trip of what decodes.

#![no_main]

use base64::Engine as _;
use flow2api_sdk::fuzzing::decode_data_url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the limit, so the fuzzer meets it from both sides.
    let (max, uri) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => (1024, data),
    };
    let uri = String::from_utf8_lossy(uri);
    match decode_data_url(&uri, max) {
        Ok(bytes) => {
            assert!(
                !bytes.is_empty() && bytes.len() <= max,
                "{} > {max}",
                bytes.len()
            );
            assert!(uri.starts_with("data:image/"), "{uri}");
            // What decoded re-encodes to a URL that decodes to the same bytes.
            let again = format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            );
            assert_eq!(decode_data_url(&again, max).ok(), Some(bytes));
        }
        Err(e) => {
            assert_eq!(e.status, 400, "{e:?}");
            assert_eq!(e.param.as_deref(), Some("messages"));
        }
    }
});
