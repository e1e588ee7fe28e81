//! The captcha provider's replies (YesCaptcha task API) through the real solver: `createTask`
//! (task ids as strings or numbers, error codes and their retries) then `getTaskResult`
//! polling (status, solution, User-Agent), and the generation headers built from the
//! User-Agent the provider returns (client hints parsed from it).
//!
//! Input: byte 0 picks the statuses, byte 1 is the length of the `createTask` body that
//! follows; the rest is every `getTaskResult` body.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use flow2api_fuzz::NOW_MS;
use flow2api_sdk::captcha::{YesCaptcha, YesCaptchaConfig};
use flow2api_sdk::http::{Response, StatusCode};
use flow2api_sdk::memory::ManualClock;
use flow2api_sdk::seams::{
    Bytes, CaptchaAction, CaptchaRequest, CaptchaSolver, HttpRequest, TransportError,
};
use flow2api_sdk::Secret;
use futures::FutureExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [pick, len, rest @ ..] = data else {
        return;
    };
    let (create, result) = rest.split_at(usize::from(*len).min(rest.len()));
    let status = |bit: u8| if pick & bit == 0 { 200 } else { 503 };
    let (create_status, result_status) = (status(1), status(2));
    let (create, result) = (
        Bytes::copy_from_slice(create),
        Bytes::copy_from_slice(result),
    );
    let http = move |req: HttpRequest| {
        let (status, body) = if req.uri().path().ends_with("/createTask") {
            (create_status, create.clone())
        } else {
            (result_status, result.clone())
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(status).expect("a status");
        async move { Ok::<_, TransportError>(resp) }
    };
    // Sleeps (between polls, before a retry for a free slot) return at once.
    let solver = YesCaptcha::new(
        Arc::new(http),
        Arc::new(ManualClock::new(NOW_MS)),
        YesCaptchaConfig {
            provider: flow2api_sdk::captcha::Provider::YesCaptcha,
            base_url: "https://captcha.example".into(),
            api_key: Some(Secret::new("key")),
            task_type: "RecaptchaV3TaskProxyless".into(),
            poll_interval: Duration::from_secs(1),
            max_polls: 3,
        },
    );
    let request = CaptchaRequest {
        site_key: "site".into(),
        page_url: "https://labs.example/project/p".into(),
        action: if pick & 4 == 0 {
            CaptchaAction::ImageGeneration
        } else {
            CaptchaAction::VideoGeneration
        },
        page_action: None,
        project_id: "p".into(),
        account_id: None,
        egress: None,
    };
    let solved = solver
        .solve(&request)
        .now_or_never()
        .expect("every wait is instant, so the solver answers at once");
    match solved {
        Ok(s) => {
            assert!(!s.token.expose().is_empty() && !s.user_agent.is_empty());
            assert!(create_status == 200 && result_status == 200);
            let h = flow2api_sdk::fuzzing::generation_headers(&s.user_agent);
            // The solver's UA goes out as it is, or not at all when it cannot be a header.
            let sent = h.get("user-agent").map(|v| v.as_bytes());
            let valid = flow2api_sdk::http::HeaderValue::from_str(&s.user_agent).is_ok();
            assert_eq!(sent, valid.then_some(s.user_agent.as_bytes()));
            assert!(h.contains_key("sec-ch-ua"));
        }
        Err(e) => assert!(e.message.starts_with("yescaptcha: "), "{}", e.message),
    }
});
