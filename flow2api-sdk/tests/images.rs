//! The image path end to end in process: App → pipeline → FlowClient → FakeFlow.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use flow2api_sdk::testing::{Endpoint, Fault};
use serde_json::{json, Value};

const PNG_1X2: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAACCAYAAACZgbYnAAAAEElEQVR4nGP4z8DAwMDAAAAHBQEA1ZWCbQAAAABJRU5ErkJggg==";

fn data_url() -> String {
    format!("data:image/png;base64,{PNG_1X2}")
}

#[tokio::test(start_paused = true)]
async fn each_image_family_generates_non_stream() {
    let h = harness().await;
    for (model, upstream, aspect) in [
        (
            "gemini-3.1-flash-image-landscape",
            "NARWHAL",
            "IMAGE_ASPECT_RATIO_LANDSCAPE",
        ),
        (
            "gemini-3.0-pro-image-square",
            "GEM_PIX_2",
            "IMAGE_ASPECT_RATIO_SQUARE",
        ),
        (
            "imagen-4.0-generate-preview-portrait",
            "IMAGEN_3_5",
            "IMAGE_ASPECT_RATIO_PORTRAIT",
        ),
        (
            "gemini-3.1-flash-image-three-four",
            "NARWHAL",
            "IMAGE_ASPECT_RATIO_PORTRAIT_THREE_FOUR",
        ),
    ] {
        h.fake.clear_requests();
        let r = h
            .chat(json!({"model": model, "messages": user(json!("a red apple"))}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], model);
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(
            content.starts_with("![Generated Image](https://fake.flow.test/fife/"),
            "{content}"
        );
        let gens = h.fake.requests_to(Endpoint::GenerateImage);
        assert_eq!(gens.len(), 1);
        let body = gens[0].json.as_ref().unwrap();
        assert_eq!(body["requests"][0]["imageModelName"], upstream);
        assert_eq!(body["requests"][0]["imageAspectRatio"], aspect);
        assert_eq!(
            body["requests"][0]["structuredPrompt"]["parts"][0]["text"],
            "a red apple"
        );
        // The submit reuses the captcha solver's User-Agent.
        assert!(gens[0].header("user-agent").unwrap().contains("Chrome/147"));
        assert!(h.fake.requests_to(Endpoint::UpsampleImage).is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn stream_reports_progress_then_markdown_then_done() {
    let h = harness().await;
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image", "stream": true,
                     "generationConfig": {"imageConfig": {"aspectRatio": "1:1"}},
                     "messages": user(json!("a cat"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let events = r.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["model"], "gemini-3.1-flash-image");
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    let progress: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert!(progress.len() >= 3, "{progress:?}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let content = last["choices"][0]["delta"]["content"].as_str().unwrap();
    assert!(content.starts_with("![Generated Image](https://fake.flow.test/fife/"));
    // The alias resolved to the square model.
    let gen = &h.fake.requests_to(Endpoint::GenerateImage)[0];
    assert_eq!(
        gen.json.as_ref().unwrap()["requests"][0]["imageAspectRatio"],
        "IMAGE_ASPECT_RATIO_SQUARE"
    );

    // A second completion has another id.
    let r2 = h.chat(json!({"model": "gemini-3.1-flash-image-square", "stream": true, "messages": user(json!("x"))})).await;
    let first2: Value = serde_json::from_str(&r2.events()[0]).unwrap();
    assert_ne!(first2["id"], id);
}

#[tokio::test(start_paused = true)]
async fn upsample_4k_and_2k_are_stored_and_served() {
    let h = harness().await;
    for (model, target) in [
        (
            "gemini-3.0-pro-image-landscape-4k",
            "UPSAMPLE_IMAGE_RESOLUTION_4K",
        ),
        (
            "gemini-3.1-flash-image-square-2k",
            "UPSAMPLE_IMAGE_RESOLUTION_2K",
        ),
    ] {
        h.fake.clear_requests();
        let r = h
            .chat(json!({"model": model, "messages": user(json!("a castle"))}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let url = image_url(
            r.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap(),
        );
        assert!(url.starts_with("http://gateway.test/media/"), "{url}");
        let ups = h.fake.requests_to(Endpoint::UpsampleImage);
        assert_eq!(ups.len(), 1);
        let body = ups[0].json.as_ref().unwrap();
        assert_eq!(body["targetResolution"], target);
        assert_eq!(body["clientContext"]["userPaygateTier"], "PAYGATE_TIER_TWO");
        let gen_sid = h.fake.requests_to(Endpoint::GenerateImage)[0]
            .json
            .as_ref()
            .unwrap()["clientContext"]["sessionId"]
            .clone();
        assert_eq!(body["clientContext"]["sessionId"], gen_sid);
        let path = url.trim_start_matches("http://gateway.test");
        let media = h.call("GET", path, &[], None).await;
        assert_eq!(media.status, 200);
        assert_eq!(media.headers["content-type"], "image/jpeg");
        assert_eq!(&media.body[..3], &[0xFF, 0xD8, 0xFF]);
        let label = &target[target.len() - 2..];
        assert!(
            media.body.windows(2).any(|w| w == label.as_bytes()),
            "upsampled bytes of {label}"
        );
    }
    assert_eq!(
        h.call("GET", "/media/0123456789abcdef0123456789abcdef", &[], None)
            .await
            .status,
        404
    );
}

#[tokio::test(start_paused = true)]
async fn upsample_failure_falls_back_to_the_original() {
    let h = harness().await;
    h.fake
        .inject_forever(Endpoint::UpsampleImage, Fault::internal());
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape-4k", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        content.contains("https://fake.flow.test/fife/"),
        "{content}"
    );
}

#[tokio::test(start_paused = true)]
async fn tier_rules_answer_403() {
    let h = harness_with(&[], Some("PAYGATE_TIER_ONE")).await;
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape-4k", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 403, Some("tier_required"));
    // 2K needs Pro: fine.
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape-2k", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(start_paused = true)]
async fn reference_images_are_uploaded_and_referenced() {
    let h = harness().await;
    let fife = format!("{}/fife/", h.fake.public_base());
    // First make an image to have a fetchable https URL on the fake.
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("seed"))}))
        .await;
    let fetched_url = image_url(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    );
    assert!(fetched_url.starts_with(&fife));
    h.fake.clear_requests();

    let r = h
        .chat(
            json!({"model": "gemini-3.1-flash-image", "messages": user(json!([
                {"type": "text", "text": "combine these"},
                {"type": "image_url", "image_url": {"url": data_url()}},
                {"type": "image_url", "image_url": {"url": fetched_url}},
            ]))}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uploads = h.fake.requests_to(Endpoint::UploadImage);
    assert_eq!(uploads.len(), 2);
    let first = uploads[0].json.as_ref().unwrap();
    assert_eq!(first["imageBytes"], PNG_1X2);
    assert_eq!(first["mimeType"], "image/png");
    assert_eq!(first["isUserUploaded"], true);
    let gen = h.fake.requests_to(Endpoint::GenerateImage);
    let inputs = gen[0].json.as_ref().unwrap()["requests"][0]["imageInputs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(inputs.len(), 2);
    // The 1x2 (portrait) first image drove the alias to portrait.
    assert_eq!(
        gen[0].json.as_ref().unwrap()["requests"][0]["imageAspectRatio"],
        "IMAGE_ASPECT_RATIO_PORTRAIT"
    );
}

#[tokio::test(start_paused = true)]
async fn continuous_conversation_reuses_the_last_assistant_image() {
    let h = harness().await;
    let r = h
        .chat(json!({"model": "gemini-3.0-pro-image-square-4k", "messages": user(json!("first"))}))
        .await;
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    h.fake.clear_requests();
    let r = h
        .chat(json!({"model": "gemini-3.0-pro-image-square", "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": "now make it blue"},
        ]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uploads = h.fake.requests_to(Endpoint::UploadImage);
    assert_eq!(
        uploads.len(),
        1,
        "the earlier /media image is read from the store and uploaded"
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            uploads[0].json.as_ref().unwrap()["imageBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_with_a_new_captcha() {
    let h = harness().await;
    for fault in [
        Fault::internal(),
        Fault::unusual_activity(),
        Fault::MalformedJson,
    ] {
        h.fake.clear_requests();
        h.fake.inject(Endpoint::GenerateImage, fault.clone(), 1);
        let r = h
            .chat(
                json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}),
            )
            .await;
        assert_eq!(r.status, 200, "{fault:?}: {}", r.text());
        let gens = h.fake.requests_to(Endpoint::GenerateImage);
        assert_eq!(gens.len(), 2, "{fault:?}");
        let tok = |i: usize| {
            gens[i].json.as_ref().unwrap()["clientContext"]["recaptchaContext"]["token"].clone()
        };
        assert_ne!(tok(0), tok(1), "a retry re-solves the captcha");
    }
    // Captcha rejections have their own larger budget.
    h.fake.clear_requests();
    h.fake
        .inject(Endpoint::GenerateImage, Fault::unusual_activity(), 4);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 5);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_and_final_errors_have_their_statuses() {
    let h = harness().await;
    // 5xx until the budget (3) runs out → 502 with Google's reason.
    h.fake
        .inject(Endpoint::GenerateImage, Fault::internal(), 10);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    let v = assert_error(&r, 502, Some("upstream_error"));
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PUBLIC_ERROR_SOMETHING_WENT_WRONG"));
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 3);
    h.fake.clear_faults();
    h.fake.clear_requests();

    // Content policy: final at once.
    h.fake
        .inject(Endpoint::GenerateImage, Fault::unsafe_generation(), 1);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 400, Some("content_policy_violation"));
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 1);
    h.fake.clear_requests();

    // A plain INVALID_ARGUMENT is not retried either.
    h.fake.inject(
        Endpoint::GenerateImage,
        Fault::status(400, None, "bad field"),
        1,
    );
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 502, Some("upstream_error"));
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 1);

    // Captcha rejected on every attempt → 503, never 5xx-as-500.
    h.fake
        .inject(Endpoint::GenerateImage, Fault::unusual_activity(), 10);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 503, Some("upstream_captcha_rejected"));
    h.fake.clear_faults();

    // Quota: not retried on the same account; with no other account → 429 with Retry-After,
    // and the account then rests (503 with the time until it returns).
    h.fake.clear_requests();
    h.fake.inject(Endpoint::GenerateImage, Fault::quota(), 1);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 429, Some("insufficient_quota"));
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 1);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 503, Some("no_account_available"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}: {}", r.text());
}

#[tokio::test(start_paused = true)]
async fn upstream_timeout_is_504() {
    let h = harness().await;
    h.fake.inject(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(600)),
        10,
    );
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 504, Some("upstream_timeout"));
}

#[tokio::test(start_paused = true)]
async fn captcha_failure_is_503_and_streams_an_error_event() {
    let h = harness().await;
    h.fake
        .inject_forever(Endpoint::CreateTask, Fault::CaptchaError);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 503, Some("captcha_failed"));
    assert!(h.fake.requests_to(Endpoint::GenerateImage).is_empty());

    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "stream": true, "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200);
    let events = r.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let err: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], "captcha_failed");
    h.fake.clear_faults();

    // An unsolvable task runs out of polls.
    h.fake
        .inject_forever(Endpoint::GetTaskResult, Fault::CaptchaUnsolvable);
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 503, Some("captcha_failed"));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_comments_flow_while_waiting() {
    let h = harness_with(&[("KEEPALIVE_INTERVAL", "1")], Some("PAYGATE_TIER_TWO")).await;
    h.fake.inject(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(5)),
        1,
    );
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "stream": true, "messages": user(json!("x"))}))
        .await;
    assert!(
        r.text().matches(": keep-alive\n\n").count() >= 3,
        "{}",
        r.text()
    );
    assert_eq!(r.events().last().unwrap(), "[DONE]");
}

#[tokio::test(start_paused = true)]
async fn no_account_is_503_with_retry_after() {
    let h = harness_with(&[], None).await;
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 503, Some("no_account_available"));
    assert!(r.headers.contains_key("retry-after"));
    // Streamed requests fail before the headers, as a plain error.
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "stream": true, "messages": user(json!("x"))}))
        .await;
    assert_error(&r, 503, Some("no_account_available"));
}

#[tokio::test(start_paused = true)]
async fn bad_client_input_gets_openai_errors() {
    let h = harness().await;
    let auth = format!("Bearer {API_KEY}");
    let hdrs = [("authorization", auth.as_str())];
    let bad = |body: &'static str| {
        h.raw(
            "POST",
            "/v1/chat/completions",
            &hdrs,
            bytes::Bytes::from(body),
        )
    };
    assert_error(&bad("{oops").await, 400, None);
    assert_error(&bad(r#"{"model": 3, "messages": []}"#).await, 400, None);
    assert_error(
        &bad(r#"{"model": "gemini-3.1-flash-image-landscape", "messages": "hi"}"#).await,
        400,
        None,
    );
    assert_error(&bad(r#"{"model": "gemini-3.1-flash-image-landscape", "stream": 1, "messages": [{"role":"user","content":"x"}]}"#).await, 400, None);
    assert_error(
        &bad(r#"{"model": "no-such-model", "messages": [{"role":"user","content":"x"}]}"#).await,
        404,
        Some("model_not_found"),
    );
    assert_error(&bad(r#"{"model": "gemini-3.1-flash-image-landscape", "messages": [{"role":"user","content":"  "}]}"#).await, 400, None);

    let with_images = |urls: Vec<String>| {
        let mut parts = vec![json!({"type": "text", "text": "x"})];
        parts.extend(
            urls.into_iter()
                .map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
        );
        json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(Value::Array(parts))})
    };
    assert_error(
        &h.chat(with_images(vec!["data:image/png;base64/AAAA".into()]))
            .await,
        400,
        None,
    );
    assert_error(
        &h.chat(with_images(vec!["data:image/png;base64,@@@@".into()]))
            .await,
        400,
        None,
    );
    assert_error(&h.chat(with_images(vec![data_url(); 17])).await, 400, None);
    assert_error(
        &h.chat(with_images(vec!["ftp://example.com/a.png".into()]))
            .await,
        400,
        None,
    );
    let private = h
        .chat(with_images(vec!["http://127.0.0.1:9/a.png".into()]))
        .await;
    let v = assert_error(&private, 400, None);
    assert!(v["error"]["message"].as_str().unwrap().contains("private"));
    assert_error(
        &h.chat(with_images(vec![
            "http://169.254.169.254/latest/meta-data".into()
        ]))
        .await,
        400,
        None,
    );
    // Too long a prompt.
    let long = "a".repeat(32_001);
    assert_error(
        &h.chat(
            json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!(long))}),
        )
        .await,
        400,
        None,
    );
    // None of that reached upstream generation.
    assert!(h.fake.requests_to(Endpoint::GenerateImage).is_empty());
    assert!(h.fake.requests_to(Endpoint::CreateTask).is_empty());
}

#[tokio::test(start_paused = true)]
async fn api_key_sources_and_absence() {
    let h = harness().await;
    assert_eq!(h.call("GET", "/v1/models", &[], None).await.status, 401);
    let wrong = h
        .call(
            "GET",
            "/v1/models",
            &[("authorization", "Bearer nope")],
            None,
        )
        .await;
    assert_error(&wrong, 401, Some("invalid_api_key"));
    assert_eq!(
        h.call("GET", "/v1/models", &[("x-goog-api-key", API_KEY)], None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.call("GET", &format!("/v1/models?key={API_KEY}"), &[], None)
            .await
            .status,
        200
    );
    let ok = h.api("GET", "/v1/models", None).await;
    let v = ok.json();
    assert_eq!(v["object"], "list");
    // 32 image and 182 video models.
    assert_eq!(v["data"].as_array().unwrap().len(), 32 + 182);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["object"] == "model" && m["owned_by"] == "flow2api"));

    let clock = std::sync::Arc::new(TokioClock::new());
    let fake = flow2api_sdk::testing::FakeFlow::new("https://f", clock.clone());
    let mut cfg = config(&[], &fake);
    cfg.api_key = None;
    let app = builder(cfg, &fake, clock).build().unwrap();
    let resp = app
        .handle(
            http::Request::get("/v1/models")
                .header("authorization", "Bearer x")
                .body(bytes::Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), 503);
}

#[tokio::test(start_paused = true)]
async fn admin_lists_masked_accounts_and_deletes() {
    let h = harness().await;
    let list = h.admin_call("GET", "/api/tokens", None).await;
    assert_eq!(list.status, 200);
    let text = list.text();
    assert!(!text.contains(ST), "the ST must never be listed in clear");
    assert!(
        !text.contains("ya29.fake"),
        "the AT must never be listed in clear"
    );
    let v = list.json();
    let a = &v[0];
    assert_eq!(a["email"], "alice@example.com");
    assert_eq!(a["st"], format!("{}…{}", &ST[..6], &ST[ST.len() - 4..]));
    assert_eq!(a["status"], "active");
    assert_eq!(a["user_paygate_tier"], "PAYGATE_TIER_TWO");
    assert_eq!(a["credits"], 1000);

    // Duplicate ST → 409; a dead ST → 400.
    assert_eq!(
        h.admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
            .await
            .status,
        409
    );
    let dead = h
        .admin_call(
            "POST",
            "/api/tokens",
            Some(json!({"st": "st-unknown-000000000000"})),
        )
        .await;
    assert_error(&dead, 400, Some("session_token_rejected"));
    // No admin token → 401; a bad login → 401.
    assert_eq!(h.call("GET", "/api/tokens", &[], None).await.status, 401);
    assert_eq!(
        h.call(
            "GET",
            "/api/tokens",
            &[("authorization", "Bearer nope")],
            None
        )
        .await
        .status,
        401
    );
    let bad = h
        .call(
            "POST",
            "/api/login",
            &[],
            Some(json!({"username": "admin", "password": "x"})),
        )
        .await;
    assert_error(&bad, 401, None);

    let id = a["id"].as_str().unwrap();
    assert_eq!(
        h.admin_call("DELETE", &format!("/api/tokens/{id}"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        h.admin_call("DELETE", &format!("/api/tokens/{id}"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        h.admin_call("GET", "/api/tokens", None).await.json(),
        json!([])
    );
}

#[tokio::test(start_paused = true)]
async fn bcrypt_admin_password_and_session_expiry() {
    let hash = bcrypt::hash("hunter2", 4).unwrap();
    let h = harness_with(&[("ADMIN_PASSWORD", &hash)], None).await;
    let ok = h
        .call(
            "POST",
            "/api/login",
            &[],
            Some(json!({"username": "admin", "password": "hunter2"})),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let token = ok.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    let auth = format!("Bearer {token}");
    assert_eq!(
        h.call("GET", "/api/tokens", &[("authorization", &auth)], None)
            .await
            .status,
        200
    );
    tokio::time::advance(Duration::from_secs(24 * 3600 + 1)).await;
    assert_eq!(
        h.call("GET", "/api/tokens", &[("authorization", &auth)], None)
            .await
            .status,
        401
    );
}

#[tokio::test(start_paused = true)]
async fn access_token_is_refreshed_within_an_hour_of_expiry() {
    let h = harness().await;
    // The fake's ATs live 90 minutes; 31 minutes later less than an hour is left.
    tokio::time::advance(Duration::from_secs(31 * 60)).await;
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.fake.requests_to(Endpoint::Session).len(), 1);
    let gen = &h.fake.requests_to(Endpoint::GenerateImage)[0];
    let session_at = h
        .fake
        .requests_to(Endpoint::Credits)
        .last()
        .unwrap()
        .header("authorization")
        .unwrap()
        .to_owned();
    assert_eq!(gen.header("authorization").unwrap(), session_at);
    // The next request needs no refresh.
    h.fake.clear_requests();
    h.chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert!(h.fake.requests_to(Endpoint::Session).is_empty());
}

/// The captcha token of a recorded generate call.
fn captcha_token(r: &flow2api_sdk::testing::RecordedRequest) -> String {
    r.json.as_ref().unwrap()["clientContext"]["recaptchaContext"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asserts that consecutive generate calls were at least 1 s apart and each had its own token.
fn assert_retried_after_a_pause(gens: &[flow2api_sdk::testing::RecordedRequest]) {
    for pair in gens.windows(2) {
        assert!(
            pair[1].at_ms >= pair[0].at_ms + 1000,
            "a retry waits 1 s: {} then {}",
            pair[0].at_ms,
            pair[1].at_ms
        );
        assert_ne!(
            captcha_token(&pair[0]),
            captcha_token(&pair[1]),
            "a retry re-solves the captcha"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_plain_429_is_retried_on_the_same_account_before_it_rests() {
    let h = harness().await;
    let chat = || {
        h.chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
    };
    // A one-off 429 without the quota reason: the same request again after 1 s, new token.
    h.fake
        .inject(Endpoint::GenerateImage, Fault::rate_limited(), 1);
    let r = chat().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gens = h.fake.requests_to(Endpoint::GenerateImage);
    assert_eq!(gens.len(), 2);
    assert_retried_after_a_pause(&gens);
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(a["status"], "active", "not resting: {a}");
    assert!(a["cooldown_until"].is_null(), "{a}");

    // 429 on every attempt: the budget (3 attempts) is spent, then the account rests for the
    // short cooldown and the error is returned (no other account to move to).
    h.fake.clear_requests();
    h.fake
        .inject(Endpoint::GenerateImage, Fault::rate_limited(), 10);
    let r = chat().await;
    let v = assert_error(&r, 502, Some("upstream_error"));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("HTTP 429"),
        "{v}"
    );
    let gens = h.fake.requests_to(Endpoint::GenerateImage);
    assert_eq!(gens.len(), 3);
    assert_retried_after_a_pause(&gens);
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(a["status"], "cooling_down", "{a}");
    assert_eq!(
        a["consecutive_error_count"], 0,
        "a rate limit is not counted: {a}"
    );
    assert_eq!(a["is_active"], true, "{a}");
    let r = chat().await;
    assert_error(&r, 503, Some("no_account_available"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((50..=60).contains(&retry), "the short cooldown: {retry}");
    h.fake.clear_faults();

    // The quota reason still means the long cooldown at once, without a retry.
    tokio::time::advance(Duration::from_secs(61)).await;
    h.fake.clear_requests();
    h.fake.inject(Endpoint::GenerateImage, Fault::quota(), 1);
    assert_error(&chat().await, 429, Some("insufficient_quota"));
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 1);
    let r = chat().await;
    assert_error(&r, 503, Some("no_account_available"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "the long cooldown: {retry}");
}

#[tokio::test(start_paused = true)]
async fn a_truncated_generate_body_is_retried_and_never_blamed_on_the_account() {
    let h = harness().await;
    let chat = || {
        h.chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
    };
    // One 200 cut off mid-JSON, then a good answer.
    h.fake
        .inject(Endpoint::GenerateImage, Fault::MalformedJson, 1);
    let r = chat().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gens = h.fake.requests_to(Endpoint::GenerateImage);
    assert_eq!(gens.len(), 2);
    assert_retried_after_a_pause(&gens);

    // Cut off every time: three attempts, each with a new token, then the error; more times
    // than ERROR_BAN_THRESHOLD (3), and the account is neither counted nor disabled.
    h.fake
        .inject_forever(Endpoint::GenerateImage, Fault::MalformedJson);
    for _ in 0..4 {
        h.fake.clear_requests();
        let r = chat().await;
        let v = assert_error(&r, 502, Some("upstream_error"));
        assert!(
            v["error"]["message"].as_str().unwrap().contains("cut off"),
            "{v}"
        );
        let gens = h.fake.requests_to(Endpoint::GenerateImage);
        assert_eq!(gens.len(), 3);
        assert_retried_after_a_pause(&gens);
    }
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(a["status"], "active", "{a}");
    assert_eq!(a["is_active"], true, "{a}");
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
    assert!(a["cooldown_until"].is_null(), "{a}");
    h.fake.clear_faults();
    assert_eq!(chat().await.status, 200);
}

/// `GET /media/{id}` serves byte ranges: 206 with `Content-Range`, 416 past the end, the
/// whole object otherwise.
#[tokio::test]
async fn media_answers_range_requests() {
    use flow2api_sdk::seams::{Media, MediaStore};
    use std::sync::Arc;
    let clock = Arc::new(TokioClock::new());
    let fake = flow2api_sdk::testing::FakeFlow::new("https://fake.flow.test", clock.clone());
    let media = Arc::new(flow2api_sdk::memory::StorageMediaStore::new(
        Arc::new(flow2api_sdk::memory::MemoryStorage::new(clock.clone())),
        None,
    ));
    let app = builder(config(&[], &fake), &fake, clock)
        .media(media.clone())
        .build()
        .unwrap();
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let id = media
        .put(
            Media {
                content_type: "image/jpeg".into(),
                bytes: bytes.clone().into(),
            }
            .into(),
        )
        .await
        .unwrap();
    let get = |range: Option<&'static str>| {
        let mut req = http::Request::get(format!("/media/{id}"));
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let app = app.clone();
        let req = req.body(bytes::Bytes::new()).unwrap();
        async move {
            let resp = app.handle(req).await;
            let (parts, body) = resp.into_parts();
            (parts.status, parts.headers, body.collect().await)
        }
    };
    let (status, headers, body) = get(None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["content-length"], "1000");
    assert_eq!(body, bytes);
    let (status, headers, body) = get(Some("bytes=10-19")).await;
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"], "bytes 10-19/1000");
    assert_eq!(headers["content-length"], "10");
    assert_eq!(body, bytes[10..20]);
    let (status, headers, body) = get(Some("bytes=-5")).await;
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"], "bytes 995-999/1000");
    assert_eq!(body, bytes[995..]);
    let (status, headers, _) = get(Some("bytes=1000-")).await;
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */1000");
    // Several ranges are not supported: the whole object, as HTTP allows.
    let (status, _, body) = get(Some("bytes=0-1,5-6")).await;
    assert_eq!((status.as_u16(), body.len()), (200, 1000));
}
