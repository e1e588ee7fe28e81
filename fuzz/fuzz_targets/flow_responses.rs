//! Google's answers to every Flow call, through the real client (`FlowClient`) over an HTTP
//! client that answers with the fuzzed status and body: the status check and
//! `FlowError::from_status`, the JSON of each endpoint (session, credits, create-project,
//! upload-image, generate-image, upsample-image, video-submit, video-status, media-url-redirect,
//! media-bytes, concat-submit, concat-status), the video operations' normalisation and the
//! base64 of media.
//!
//! Input: byte 0 picks the call, byte 1 the status; the rest is the body, except for
//! media-url-redirect, whose first line is the `Location` header.

#![no_main]

use std::sync::Arc;

use flow2api_fuzz::{split_line, FrozenClock};
use flow2api_sdk::flow::video::{VideoInput, VideoOperation, VideoSubmit};
use flow2api_sdk::flow::{FlowError, ImageGeneration, ImageUpsample};
use flow2api_sdk::http::{header, HeaderValue, Response};
use flow2api_sdk::models::{ImageAspect, Tier};
use flow2api_sdk::seams::{Bytes, HttpRequest, HttpResponse, TransportError};
use flow2api_sdk::{FlowClient, Secret};
use futures::FutureExt;
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 16] = [
    200, 200, 200, 200, 201, 204, 302, 307, 400, 401, 403, 404, 408, 429, 500, 503,
];

/// Checks that hold for every error, whatever the call.
fn check_error(e: &FlowError, endpoint: &str, status: u16) {
    assert_eq!(e.endpoint(), endpoint);
    if status >= 400 {
        assert_eq!(e.status(), Some(status), "{e}");
    }
    let _ = (e.blame(), e.is_retryable(), e.summary(), format!("{e:?}"));
}

fn run(call: u8, status: u16, body: &[u8]) {
    let (location, body) = if call == 8 {
        split_line(body)
    } else {
        ("", body)
    };
    let location = HeaderValue::from_str(location).ok();
    let body = Bytes::copy_from_slice(body);
    let raw_body = body.clone();
    let http = move |_req: HttpRequest| {
        let mut resp: HttpResponse = Response::new(body.clone());
        *resp.status_mut() = flow2api_sdk::http::StatusCode::from_u16(status).expect("a status");
        if let Some(l) = &location {
            resp.headers_mut().insert(header::LOCATION, l.clone());
        }
        async move { Ok::<_, TransportError>(resp) }
    };
    let client = FlowClient::new(
        Arc::new(http),
        Arc::new(FrozenClock),
        "https://labs.example/fx/api",
        "https://api.example/v1",
    );
    let (st, at, token) = (Secret::new("st"), Secret::new("at"), Secret::new("tok"));
    let ops = [VideoOperation {
        name: "op".into(),
        project_id: Some("pid".into()),
        ..VideoOperation::default()
    }];
    let input = VideoInput::Text;
    let identity = flow2api_sdk::seams::BrowserIdentity::default();
    let submit = VideoSubmit {
        project_id: "pid",
        model_key: "veo_3_1_t2v_fast",
        aspect: "VIDEO_ASPECT_RATIO_LANDSCAPE",
        prompt: "p",
        input: &input,
        captcha_token: &token,
        user_agent: "UA",
        identity: &identity,
        session_id: ";1",
        batch_id: "b",
        workflow_id: "w",
        seed: 1,
        tier: Tier::Pro,
    };
    let inputs = ["m".to_owned()];
    let generation = ImageGeneration {
        project_id: "pid",
        model: "NARWHAL",
        aspect: ImageAspect::Square,
        prompt: "p",
        image_inputs: &inputs,
        captcha_token: &token,
        user_agent: "UA",
        identity: &identity,
        session_id: ";1",
        seed: 1,
    };
    let upsample = ImageUpsample {
        project_id: "pid",
        media_id: "m",
        target: "UPSAMPLE_IMAGE_RESOLUTION_2K",
        captcha_token: &token,
        user_agent: "UA",
        identity: &identity,
        session_id: ";1",
        tier: Tier::Pro,
    };
    // Each call answers from its one (immediate) response: one poll decides it.
    macro_rules! once {
        ($endpoint:literal, $call:expr, |$ok:ident| $check:expr) => {
            match $call.now_or_never().expect("an immediate answer") {
                Ok($ok) => $check,
                Err(e) => check_error(&e, $endpoint, status),
            }
        };
    }
    match call % 13 {
        0 => once!("session", client.session(&st), |s| {
            assert!(!s.access_token.expose().is_empty());
        }),
        1 => once!("credits", client.credits(&at), |_c| ()),
        2 => once!("create_project", client.create_project(&st, "t"), |id| {
            assert!(!id.is_empty());
        }),
        3 => once!(
            "upload_image",
            client.upload_image(&at, "pid", b"img"),
            |id| {
                assert!(!id.is_empty(), "an empty media id is no media id");
            }
        ),
        4 => once!(
            "generate_image",
            client.generate_image(&at, &generation),
            |g| {
                assert!(!g.url.is_empty());
            }
        ),
        5 => once!(
            "upsample_image",
            client.upsample_image(&at, &upsample),
            |_b| ()
        ),
        6 => once!("video_submit", client.submit_video(&at, &submit), |ops| {
            assert!(!ops.is_empty() && !ops[0].name.is_empty());
        }),
        7 => once!(
            "video_status",
            client.video_status(&at, &ops, "pid"),
            |ops| {
                for o in &ops {
                    assert!(o.project_id.is_some(), "{o:?}");
                }
            }
        ),
        8 => once!("media_url", client.media_url(&st, "media name"), |url| {
            assert!(url.as_deref().is_none_or(|u| !u.is_empty()));
            // The delivery URL's media UUID, as a finished video job reads it.
            if let Some(id) = url.as_deref().and_then(flow2api_sdk::fuzzing::media_uuid) {
                assert!(
                    id.len() == 36 && url.as_deref().is_some_and(|u| u.contains(&id)),
                    "{id}"
                );
            }
        }),
        9 => once!("media_bytes", client.media_bytes(&at, "m"), |_b| ()),
        10 => once!("concat_videos", client.concat_videos(&at, "a", "b"), |op| {
            assert!(op.is_none_or(|o| !o.is_empty()));
        }),
        11 => once!("concat_status", client.concat_status(&at, "op"), |s| {
            let _ = (s.is_successful(), s.is_failed(), format!("{s:?}"));
        }),
        _ => {
            // Any JSON value's operations, as video-submit and video-status normalise them.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw_body) {
                for o in flow2api_sdk::fuzzing::normalize_operations(&v, "pid") {
                    assert!(!o.status.is_empty() && o.project_id.is_some(), "{o:?}");
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [call, pick, rest @ ..] = data else {
        return;
    };
    // The error of any status, with the whole input as its body.
    let raw = u16::from_le_bytes([*call, *pick]);
    let e = FlowError::from_status("fuzz", raw, rest);
    assert_eq!(e.status(), Some(raw));
    check_error(&e, "fuzz", raw);
    run(*call, STATUSES[usize::from(pick & 15)], rest);
});
