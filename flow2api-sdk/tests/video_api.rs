//! Video jobs over HTTP against FakeFlow, through `App::handle`: the OpenAI Videos API
//! (`/v1/videos`: create as JSON and multipart, retrieve, list, content, delete,
//! Idempotency-Key), chat completions for video models (stream, extend + concatenation),
//! Gemini `predictLongRunning` operations, and jobs outliving the app that created them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use flow2api_sdk::generate::video::JobPhase;
use flow2api_sdk::jobs::{JobRecord, JobRunner, JobStatus};
use flow2api_sdk::memory::{MemoryCoordinator, MemoryStorage};
use flow2api_sdk::seams::Storage;
use flow2api_sdk::seams::{boxed, boxed_stream, BoxFuture, BoxStream, StorageError};
use flow2api_sdk::testing::{
    fake_mp4, Endpoint, FakeAccount, FakeFlow, Fault, ProbeStorage, VideoKind, FIFE_PNG,
};
use serde_json::{json, Value};

const T2V: &str = "veo_3_1_t2v_fast_landscape";
const I2V_FL: &str = "veo_3_1_i2v_s_fast_fl";
const R2V: &str = "veo_3_1_r2v_fast";
const T2V_1080P: &str = "veo_3_1_t2v_fast_1080p";
const EXTEND: &str = "veo_3_1_extend";
const GEMINI_MODEL: &str = "veo-3.1-fast-generate-preview";
const ULTRA: &str = "PAYGATE_TIER_TWO";
const EMAIL: &str = "alice@example.com";
const BOUNDARY: &str = "----flow2api-test-boundary-7d9a";

/// Fast video polling; everything else as the harness has it.
async fn setup() -> Harness {
    setup_with(&[]).await
}

async fn setup_with(extra: &[(&str, &str)]) -> Harness {
    let mut all = vec![("POLL_INTERVAL", "0.01")];
    all.extend_from_slice(extra);
    harness_with(&all, Some(ULTRA)).await
}

fn png_data_url() -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(FIFE_PNG)
    )
}

/// `POST /v1/videos` with a JSON body.
async fn create(h: &Harness, body: Value) -> Reply {
    h.api("POST", "/v1/videos", Some(body)).await
}

/// Creates a job and returns its id (asserting a 200).
async fn create_ok(h: &Harness, body: Value) -> String {
    let r = create(h, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("video_"), "{v}");
    id
}

async fn get_video(h: &Harness, id: &str) -> Reply {
    h.api("GET", &format!("/v1/videos/{id}"), None).await
}

/// Polls `GET /v1/videos/{id}` until the job is finished; every object seen, oldest first.
async fn poll_until_done(h: &Harness, id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..20_000 {
        let r = get_video(h, id).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let done = matches!(v["status"].as_str(), Some("completed" | "failed"));
        seen.push(v);
        if done {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never finished: {:?}", seen.last());
}

async fn wait_completed(h: &Harness, id: &str) -> Value {
    let last = poll_until_done(h, id).await.pop().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    last
}

/// Waits until the job has left `queued` (its first step was taken).
async fn wait_started(h: &Harness, id: &str) -> Value {
    for _ in 0..1000 {
        let v = get_video(h, id).await.json();
        if v["status"] != "queued" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never started");
}

fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Bytes {
    let mut out = Vec::new();
    for (name, file, data) in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some(f) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: image/png\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Bytes::from(out)
}

/// The video submits the fake received.
fn submits(h: &Harness) -> usize {
    [
        Endpoint::GenerateVideoText,
        Endpoint::GenerateVideoStartImage,
        Endpoint::GenerateVideoStartEndImage,
        Endpoint::GenerateVideoReferenceImages,
        Endpoint::ExtendVideo,
        Endpoint::UpsampleVideo,
    ]
    .iter()
    .map(|e| h.fake.requests_to(*e).len())
    .sum()
}

async fn account(h: &Harness) -> Value {
    h.accounts().await[EMAIL].clone()
}

/// The `src` of the non-streaming ```` ```html <video src='…' controls></video>``` ```` block.
fn block_src(content: &str) -> String {
    let rest = content
        .strip_prefix("```html\n<video src='")
        .unwrap_or_else(|| panic!("not a video block: {content}"));
    let end = rest.find('\'').unwrap();
    assert_eq!(&rest[end..], "' controls></video>\n```", "{content}");
    rest[..end].to_owned()
}

/// The chunks of an SSE chat body (without `[DONE]`), asserting it ends with `[DONE]`.
fn chunks(r: &Reply) -> Vec<Value> {
    let events = r.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("not JSON: {e}")))
        .collect()
}

fn reasoning(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Create → poll → content
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn create_poll_and_download_a_text_to_video() {
    let h = setup().await;
    h.fake.set_video_polls(3, 3);
    let r = create(
        &h,
        json!({"model": T2V, "prompt": "a cat chasing butterflies"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["object"], "video");
    assert_eq!(created["status"], "queued", "{created}");
    assert_eq!(created["progress"], 0);
    assert_eq!(created["model"], T2V);
    assert_eq!(created["prompt"], "a cat chasing butterflies");
    assert_eq!(created["seconds"], "8");
    assert_eq!(created["size"], "1280x720");
    assert!(created["completed_at"].is_null(), "{created}");
    assert!(created["error"].is_null(), "{created}");

    // Not ready yet: 409.
    let early = h
        .api("GET", &format!("/v1/videos/{id}/content"), None)
        .await;
    assert_error(&early, 409, Some("video_not_ready"));

    let seen = poll_until_done(&h, &id).await;
    let statuses: Vec<&str> = seen.iter().map(|v| v["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"in_progress"), "{statuses:?}");
    // Only forward: queued* in_progress* completed.
    let rank = |s: &str| {
        ["queued", "in_progress", "completed"]
            .iter()
            .position(|x| *x == s)
    };
    let ranks: Vec<_> = statuses.iter().map(|s| rank(s).expect(s)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{statuses:?}");
    let progress: Vec<u64> = seen
        .iter()
        .map(|v| v["progress"].as_u64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(
        progress[..progress.len() - 1].iter().all(|p| *p < 100),
        "{progress:?}"
    );

    let done = seen.last().unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["progress"], 100);
    let completed_at = done["completed_at"].as_u64().expect("completed_at");
    assert!(completed_at >= created["created_at"].as_u64().unwrap());
    assert!(done["error"].is_null(), "{done}");

    let videos = h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].kind, VideoKind::Text);
    assert_eq!(videos[0].prompt, "a cat chasing butterflies");
    assert_eq!(done["url"], h.fake.video_url(&videos[0].name));

    let content = h
        .api("GET", &format!("/v1/videos/{id}/content"), None)
        .await;
    assert_eq!(content.status, 200, "{}", content.text());
    assert_eq!(content.headers["content-type"], "video/mp4");
    assert_eq!(&content.body[..], &fake_mp4(&videos[0].name)[..]);

    // The job is the only thing that ran: one submit, no slot left behind.
    assert_eq!(submits(&h), 1);
    assert_eq!(account(&h).await["in_flight"]["video"], 0);
}

// ---------------------------------------------------------------------------------------------
// 2. Multipart with first and last frame
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn multipart_create_with_first_and_last_frames() {
    let h = setup().await;
    let mut last_frame = FIFE_PNG.to_vec();
    last_frame.extend_from_slice(b"-the-last-frame"); // distinct bytes after IEND
    let body = multipart(&[
        ("model", None, I2V_FL.as_bytes()),
        ("prompt", None, b"from dawn to dusk"),
        ("input_reference", Some("first.png"), FIFE_PNG),
        ("input_reference", Some("last.png"), &last_frame),
    ]);
    let auth = format!("Bearer {API_KEY}");
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let r = h
        .raw(
            "POST",
            "/v1/videos",
            &[("authorization", &auth), ("content-type", &ct)],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    wait_completed(&h, &id).await;

    let uploads = h.fake.uploads();
    assert_eq!(uploads.len(), 2);
    assert_eq!(&uploads[0].bytes[..], FIFE_PNG);
    assert_eq!(&uploads[1].bytes[..], &last_frame[..]);
    let videos = h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].kind, VideoKind::StartEndImage);
    assert_eq!(
        videos[0].sources,
        vec![uploads[0].media_id.clone(), uploads[1].media_id.clone()],
        "first frame first"
    );
    assert_eq!(videos[0].prompt, "from dawn to dusk");
    assert_eq!(
        h.fake
            .requests_to(Endpoint::GenerateVideoStartEndImage)
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Reference images
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn reference_images_three_accepted_four_refused() {
    let h = setup().await;
    let refs = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| json!({"image_url": png_data_url()}))
            .collect()
    };
    let id = create_ok(
        &h,
        json!({"model": R2V, "prompt": "the three of them", "input_reference": refs(3)}),
    )
    .await;
    wait_completed(&h, &id).await;
    let videos = h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].kind, VideoKind::ReferenceImages);
    assert_eq!(videos[0].sources.len(), 3);
    let submit = &h.fake.requests_to(Endpoint::GenerateVideoReferenceImages)[0];
    let sent = submit.json.as_ref().unwrap()["requests"][0]["referenceImages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(sent, 3);

    h.fake.clear_requests();
    let r = create(
        &h,
        json!({"model": R2V, "prompt": "four is too many", "input_reference": refs(4)}),
    )
    .await;
    let v = assert_error(&r, 400, None);
    assert_eq!(v["error"]["param"], "input_reference", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(h.fake.requests_to(Endpoint::UploadImage).is_empty());
    assert_eq!(submits(&h), 0);
    assert_eq!(account(&h).await["in_flight"]["video"], 0);
}

// ---------------------------------------------------------------------------------------------
// 4. 1080p
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_1080p_model_delivers_the_upsampled_video() {
    let h = setup().await;
    let id = create_ok(&h, json!({"model": T2V_1080P, "prompt": "waves at night"})).await;
    let done = wait_completed(&h, &id).await;
    let videos = h.fake.videos();
    assert_eq!(videos.len(), 2, "the generation and its upsample");
    assert_eq!(videos[0].kind, VideoKind::Text);
    assert_eq!(videos[1].kind, VideoKind::Upsample);
    assert_eq!(
        videos[1].resolution.as_deref(),
        Some("VIDEO_RESOLUTION_1080P")
    );
    assert_eq!(videos[1].sources, vec![videos[0].name.clone()]);
    assert_eq!(h.fake.requests_to(Endpoint::UpsampleVideo).len(), 1);
    assert_eq!(done["url"], h.fake.video_url(&videos[1].name));
    let content = h
        .api("GET", &format!("/v1/videos/{id}/content"), None)
        .await;
    assert_eq!(content.status, 200);
    assert_eq!(&content.body[..], &fake_mp4(&videos[1].name)[..]);
}

// ---------------------------------------------------------------------------------------------
// 5. Extend through chat completions
// ---------------------------------------------------------------------------------------------

fn extend_body(source: &str, stream: bool) -> Value {
    json!({
        "model": EXTEND,
        "stream": stream,
        "messages": user(json!([
            {"type": "text", "text": "and then it flies away"},
            {"type": "image_url", "image_url": {"url": format!("extend://{source}")}},
        ])),
    })
}

/// A finished t2v video made through a chat stream; the media id its final chunk reports
/// (`data-media-id`), which is what a client passes back as `extend://<id>`.
async fn source_video(h: &Harness) -> String {
    let r = h
        .chat(json!({"model": T2V, "stream": true, "messages": user(json!("a bird on a branch"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let chunks = chunks(&r);
    let content = chunks.last().unwrap()["choices"][0]["delta"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = content.find("data-media-id='").expect(&content) + "data-media-id='".len();
    let media_id = content[start..].split('\'').next().unwrap().to_owned();
    let videos = h.fake.videos();
    assert_eq!(media_id, videos.last().unwrap().name, "{content}");
    media_id
}

#[tokio::test(start_paused = true)]
async fn extend_through_chat_delivers_the_concatenation() {
    let h = setup().await;
    let source = source_video(&h).await;
    h.fake.set_concat_polls(2);
    h.fake.clear_requests();

    let r = h.chat(extend_body(&source, false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let job = r.headers["x-video-id"].to_str().unwrap().to_owned();
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let url = block_src(v["choices"][0]["message"]["content"].as_str().unwrap());

    let videos = h.fake.videos();
    assert_eq!(videos.len(), 2);
    let clip = &videos[1];
    assert_eq!(clip.kind, VideoKind::Extend);
    assert_eq!(clip.sources, vec![source.clone()]);
    let e18 = h.fake.requests_to(Endpoint::Concatenate);
    assert_eq!(e18.len(), 1);
    let inputs: Vec<&str> = e18[0].json.as_ref().unwrap()["inputVideos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["mediaGenerationId"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, vec![source.as_str(), clip.name.as_str()]);
    assert_eq!(h.fake.requests_to(Endpoint::ConcatenationStatus).len(), 2);

    // The concatenation: neither the source nor the clip, but a file the fake serves.
    assert!(
        url.starts_with(&format!("{}/videos/", h.fake.public_base())),
        "{url}"
    );
    assert_ne!(url, h.fake.video_url(&clip.name));
    assert_ne!(url, h.fake.video_url(&source));
    let record = wait_completed(&h, &job).await;
    assert_eq!(record["url"], url.as_str());
    let content = h
        .api("GET", &format!("/v1/videos/{job}/content"), None)
        .await;
    assert_eq!(content.status, 200, "{}", content.text());
    assert_eq!(&content.body[4..8], b"ftyp");
}

#[tokio::test(start_paused = true)]
async fn extend_with_a_failing_concatenation_returns_the_clip() {
    let h = setup().await;
    let source = source_video(&h).await;
    h.fake.clear_requests();
    h.fake
        .inject(Endpoint::ConcatenationStatus, Fault::internal(), 1);

    let r = h.chat(extend_body(&source, true)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let job = r.headers["x-video-id"].to_str().unwrap().to_owned();
    let chunks = chunks(&r);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "{last}");
    let clip = h.fake.videos()[1].clone();
    assert_eq!(clip.kind, VideoKind::Extend);
    let clip_url = h.fake.video_url(&clip.name);
    let content = last["choices"][0]["delta"]["content"].as_str().unwrap();
    assert!(
        content.starts_with(&format!("<video src='{clip_url}'")),
        "{content}"
    );
    let lines = reasoning(&chunks);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Concatenation failed") && l.contains("extension clip")),
        "{lines:?}"
    );
    assert_eq!(h.fake.requests_to(Endpoint::Concatenate).len(), 1);
    assert_eq!(h.fake.requests_to(Endpoint::ConcatenationStatus).len(), 1);

    let record = wait_completed(&h, &job).await;
    assert_eq!(record["url"], clip_url.as_str());
    let stored = h.app.jobs().get(&job).await.unwrap().unwrap();
    assert!(
        stored
            .log
            .iter()
            .any(|l| l.contains("Concatenation failed")),
        "{:?}",
        stored.log
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Failure
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_failed_generation_fails_the_job_not_the_account() {
    let h = setup().await;
    h.fake.fail_next_video(13, "boom: the model refused");
    let id = create_ok(&h, json!({"model": T2V, "prompt": "something refused"})).await;
    let seen = poll_until_done(&h, &id).await;
    let v = seen.last().unwrap();
    assert_eq!(v["status"], "failed", "{v}");
    assert!(v["completed_at"].is_u64(), "{v}");
    assert!(v.get("url").is_none(), "{v}");
    let error = &v["error"];
    assert_eq!(error["code"], "video_failed", "{v}");
    assert!(error["message"].as_str().unwrap().contains("boom"), "{v}");

    let content = h
        .api("GET", &format!("/v1/videos/{id}/content"), None)
        .await;
    assert_error(&content, 409, Some("video_failed"));

    let a = account(&h).await;
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
    assert_eq!(a["is_active"], true, "{a}");
    assert_eq!(a["status"], "active", "{a}");
    assert_eq!(a["in_flight"]["video"], 0, "the slot is released: {a}");

    // And the account takes the next job.
    let next = create_ok(&h, json!({"model": T2V, "prompt": "try again"})).await;
    wait_completed(&h, &next).await;
}

/// The captcha tokens of the video submits the fake received, with their arrival times.
fn submit_tokens(h: &Harness) -> Vec<(u64, String)> {
    h.fake
        .requests_to(Endpoint::GenerateVideoText)
        .iter()
        .map(|r| {
            let token = r.json.as_ref().unwrap()["clientContext"]["recaptchaContext"]["token"]
                .as_str()
                .unwrap()
                .to_owned();
            (r.at_ms, token)
        })
        .collect()
}

/// Consecutive submits at least 1 s apart, each with its own captcha token.
fn assert_paused_with_new_tokens(sent: &[(u64, String)]) {
    for pair in sent.windows(2) {
        assert!(pair[1].0 >= pair[0].0 + 1000, "{sent:?}");
        assert_ne!(pair[0].1, pair[1].1, "{sent:?}");
    }
}

/// Seconds of `Retry-After` on a create refused for want of an account.
async fn refused_retry_after(h: &Harness) -> u64 {
    let r = create(h, json!({"model": T2V, "prompt": "refused"})).await;
    assert_error(&r, 503, Some("no_account_available"));
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_one_off_plain_429_on_the_submit_is_retried_and_the_video_delivered() {
    let h = setup().await;
    h.fake
        .inject(Endpoint::GenerateVideoText, Fault::rate_limited(), 1);
    let id = create_ok(&h, json!({"model": T2V, "prompt": "a calm sea"})).await;
    wait_completed(&h, &id).await;
    let content = h
        .api("GET", &format!("/v1/videos/{id}/content"), None)
        .await;
    assert_eq!(content.status, 200, "{}", content.text());
    let sent = submit_tokens(&h);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_paused_with_new_tokens(&sent);
    assert_eq!(h.fake.videos().len(), 1, "one video");
    let a = account(&h).await;
    assert_eq!(a["status"], "active", "not resting: {a}");
    assert!(a["cooldown_until"].is_null(), "{a}");
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
}

#[tokio::test(start_paused = true)]
async fn plain_429s_past_the_budget_fail_the_job_and_rest_the_account_briefly() {
    let h = setup().await;
    h.fake
        .inject(Endpoint::GenerateVideoText, Fault::rate_limited(), 10);
    let id = create_ok(&h, json!({"model": T2V, "prompt": "a calm sea"})).await;
    let last = poll_until_done(&h, &id).await.pop().unwrap();
    assert_eq!(last["status"], "failed", "{last}");
    let sent = submit_tokens(&h);
    assert_eq!(sent.len(), 3, "FLOW_MAX_RETRIES attempts: {sent:?}");
    assert_paused_with_new_tokens(&sent);
    let a = account(&h).await;
    assert_eq!(a["status"], "cooling_down", "{a}");
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
    assert_eq!(a["in_flight"]["video"], 0, "the slot is released: {a}");
    let retry = refused_retry_after(&h).await;
    assert!((50..=60).contains(&retry), "RATE_LIMIT_COOLDOWN: {retry}");
}

#[tokio::test(start_paused = true)]
async fn the_quota_reason_on_the_submit_rests_the_account_at_once() {
    let h = setup().await;
    h.fake
        .inject(Endpoint::GenerateVideoText, Fault::quota(), 1);
    let id = create_ok(&h, json!({"model": T2V, "prompt": "a calm sea"})).await;
    let last = poll_until_done(&h, &id).await.pop().unwrap();
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(submits(&h), 1, "no retry on the quota reason");
    let a = account(&h).await;
    assert_eq!(a["status"], "cooling_down", "{a}");
    let retry = refused_retry_after(&h).await;
    assert!((3500..=3600).contains(&retry), "QUOTA_COOLDOWN: {retry}");
}

// ---------------------------------------------------------------------------------------------
// 7. Idempotency-Key
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn idempotency_key_returns_the_same_job() {
    let h = setup().await;
    let auth = format!("Bearer {API_KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "key-1"),
    ];
    let body = json!({"model": T2V, "prompt": "only once"});
    let first = h
        .call("POST", "/v1/videos", &headers, Some(body.clone()))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let again = h
        .call("POST", "/v1/videos", &headers, Some(body.clone()))
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["id"], id.as_str());

    wait_completed(&h, &id).await;
    // After completion too.
    let later = h
        .call("POST", "/v1/videos", &headers, Some(body.clone()))
        .await;
    assert_eq!(later.json()["id"], id.as_str());
    assert_eq!(later.json()["status"], "completed");
    assert_eq!(h.fake.requests_to(Endpoint::GenerateVideoText).len(), 1);

    let other = h
        .call(
            "POST",
            "/v1/videos",
            &headers,
            Some(json!({"model": T2V, "prompt": "something else"})),
        )
        .await;
    assert_error(&other, 409, Some("idempotency_key_reused"));
    assert_eq!(h.fake.requests_to(Endpoint::GenerateVideoText).len(), 1);

    // Another key is another job.
    let headers2 = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "key-2"),
    ];
    let second = h.call("POST", "/v1/videos", &headers2, Some(body)).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_ne!(second.json()["id"], id.as_str());
}

// ---------------------------------------------------------------------------------------------
// 8. List
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn list_pages_in_both_orders() {
    let h = setup().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_ok(&h, json!({"model": T2V, "prompt": format!("clip {i}")})).await);
        // Ids sort by creation time at millisecond resolution.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let list = |q: String| {
        let h = &h;
        async move {
            let r = h.api("GET", &format!("/v1/videos?{q}"), None).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()
        }
    };
    let page_ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let p1 = list("limit=2&order=asc".into()).await;
    assert_eq!(p1["object"], "list");
    assert_eq!(page_ids(&p1), ids[..2].to_vec());
    assert_eq!(p1["has_more"], true, "{p1}");
    assert_eq!(p1["first_id"], ids[0].as_str());
    assert_eq!(p1["last_id"], ids[1].as_str());
    assert_eq!(p1["data"][0]["object"], "video");

    let p2 = list(format!("limit=2&order=asc&after={}", ids[1])).await;
    assert_eq!(page_ids(&p2), vec![ids[2].clone()]);
    assert_eq!(p2["has_more"], false, "{p2}");

    let desc = list("order=desc".into()).await;
    let mut reversed = ids.clone();
    reversed.reverse();
    assert_eq!(page_ids(&desc), reversed);
    assert_eq!(desc["has_more"], false);
    // The default order is desc.
    assert_eq!(page_ids(&list("limit=20".into()).await), reversed);
    let d1 = list("limit=1&order=desc".into()).await;
    assert_eq!(page_ids(&d1), vec![ids[2].clone()]);
    assert_eq!(d1["has_more"], true);
    let d2 = list(format!("limit=2&order=desc&after={}", ids[2])).await;
    assert_eq!(page_ids(&d2), vec![ids[1].clone(), ids[0].clone()]);
    assert_eq!(d2["has_more"], false);

    let bad = h.api("GET", "/v1/videos?limit=0", None).await;
    let v = assert_error(&bad, 400, None);
    assert_eq!(v["error"]["param"], "limit");
    let bad = h.api("GET", "/v1/videos?order=sideways", None).await;
    let v = assert_error(&bad, 400, None);
    assert_eq!(v["error"]["param"], "order");
    for id in &ids {
        wait_completed(&h, id).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Delete
// ---------------------------------------------------------------------------------------------

/// Jobs stored before the listing index (records only) are indexed once; from then on a page
/// costs one listing and one batched read however many jobs there are, in both orders, and a
/// deleted job leaves the listing at once.
#[tokio::test(start_paused = true)]
async fn list_pages_come_from_storage_whatever_the_number_of_jobs() {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    fake.add_account(FakeAccount::new(ST, EMAIL));
    let jobs = Arc::new(ProbeStorage::new(Arc::new(MemoryStorage::new(
        clock.clone(),
    ))));
    let stores = Stores::new(clock.clone());
    let app = |jobs: Arc<ProbeStorage>| {
        stores
            .attach(builder(
                config(&[("POLL_INTERVAL", "0.01")], &fake),
                &fake,
                clock.clone(),
            ))
            .job_store(jobs)
            .build()
            .unwrap()
    };
    let h = logged_in(app(jobs.clone()), fake.clone(), clock.clone()).await;
    let added = h
        .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let first = create_ok(&h, json!({"model": T2V, "prompt": "the first"})).await;
    wait_completed(&h, &first).await;
    // As an older version stored jobs: records, no listing keys; 250 more of them.
    for k in flow2api_sdk::seams::list_all(jobs.inner(), "list")
        .await
        .unwrap()
    {
        jobs.inner().delete(&k).await.unwrap();
    }
    let raw = jobs
        .inner()
        .get(&format!("video/{first}"))
        .await
        .unwrap()
        .unwrap();
    let template: Value = serde_json::from_slice(&raw).unwrap();
    let mut ids = vec![first.clone()];
    for i in 1..=250u64 {
        let id = format!("video_{:012x}{:016x}", 0x0190_0000_0000 + i, i);
        let mut record = template.clone();
        record["id"] = json!(id);
        let bytes = Bytes::from(serde_json::to_vec(&record).unwrap());
        jobs.inner()
            .put(&format!("video/{id}"), bytes, None)
            .await
            .unwrap();
        ids.push(id);
    }
    // The new version starts over them.
    let h = logged_in(app(jobs.clone()), fake, clock).await;
    ids.sort();
    let page = |q: String| {
        let h = &h;
        async move {
            let r = h.api("GET", &format!("/v1/videos?{q}"), None).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            let got: Vec<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect();
            (got, v["has_more"].as_bool().unwrap())
        }
    };
    for (order, want) in [
        ("asc", ids.clone()),
        ("desc", ids.iter().rev().cloned().collect()),
    ] {
        let mut seen = Vec::new();
        let mut after = String::new();
        loop {
            let before = (jobs.lists(), jobs.gets());
            let (got, more) = page(format!("limit=100&order={order}{after}")).await;
            if !seen.is_empty() {
                assert_eq!(
                    (jobs.lists() - before.0, jobs.gets() - before.1),
                    (1, 1),
                    "storage calls for one page of {order}"
                );
            }
            seen.extend(got);
            if !more {
                break;
            }
            after = format!("&after={}", seen.last().unwrap());
        }
        assert_eq!(seen, want, "every job once, {order}");
    }
    let gone = &ids[100];
    assert_eq!(
        h.api("DELETE", &format!("/v1/videos/{gone}"), None)
            .await
            .status,
        200
    );
    let (got, _) = page(format!("limit=2&order=asc&after={}", ids[99])).await;
    assert_eq!(got, [ids[101].clone(), ids[102].clone()]);
    let (got, more) = page("limit=2&after=video_nonsense".into()).await;
    assert!(got.is_empty() && !more);
}

/// With record shards, new jobs' records go to their shards (the job store keeps only the
/// listing and idempotency keys), records from before move into them (one read of an old
/// job, or the first listing), jobs run to their end, and a page reads each shard at most once.
/// How many job records `s` holds.
async fn records_in(s: &ProbeStorage) -> usize {
    flow2api_sdk::seams::list_all(s.inner(), "video/")
        .await
        .unwrap()
        .len()
}

#[tokio::test(start_paused = true)]
async fn job_records_spread_over_shards() {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    fake.add_account(FakeAccount::new(ST, EMAIL));
    let memory = || Arc::new(MemoryStorage::new(clock.clone()));
    let main = Arc::new(ProbeStorage::new(memory()));
    let accounts = memory();
    let coordinator = Arc::new(MemoryCoordinator::new(clock.clone()));
    // An earlier version's job: its record in the job store, no listing keys.
    let (_, old_id) = {
        let app = builder(
            config(&[("POLL_INTERVAL", "0.01")], &fake),
            &fake,
            clock.clone(),
        )
        .job_store(main.clone())
        .storage(accounts.clone())
        .coordinator(coordinator.clone())
        .build()
        .unwrap();
        let h = logged_in(app, fake.clone(), clock.clone()).await;
        let added = h
            .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
            .await;
        assert_eq!(added.status, 200, "{}", added.text());
        let id = create_ok(&h, json!({"model": T2V, "prompt": "from before"})).await;
        wait_completed(&h, &id).await;
        for k in flow2api_sdk::seams::list_all(main.inner(), "list")
            .await
            .unwrap()
        {
            main.inner().delete(&k).await.unwrap();
        }
        (h, id)
    };
    let shards: Vec<Arc<ProbeStorage>> = (0..4)
        .map(|_| Arc::new(ProbeStorage::new(memory())))
        .collect();
    let app = builder(
        config(&[("POLL_INTERVAL", "0.01")], &fake),
        &fake,
        clock.clone(),
    )
    .job_store(main.clone())
    .job_record_shards(
        shards
            .iter()
            .map(|s| s.clone() as Arc<dyn Storage>)
            .collect(),
    )
    .storage(accounts)
    .coordinator(coordinator)
    .build()
    .unwrap();
    let h = logged_in(app, fake, clock).await;
    // The old job is found (and moved into its shard).
    let got = get_video(&h, &old_id).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        records_in(&main).await,
        0,
        "the old record left the job store"
    );
    let mut ids = vec![old_id];
    for i in 0..12 {
        ids.push(create_ok(&h, json!({"model": T2V, "prompt": format!("clip {i}")})).await);
    }
    for id in &ids[1..] {
        wait_completed(&h, id).await;
    }
    let mut total = 0;
    for s in &shards {
        total += records_in(s).await;
    }
    assert_eq!(total, ids.len());
    assert_eq!(records_in(&main).await, 0);
    assert!(
        shards.iter().filter(|s| s.writes() > 0).count() >= 2,
        "one shard took every job"
    );
    let before: Vec<usize> = shards.iter().map(|s| s.gets()).collect();
    let r = h.api("GET", "/v1/videos?limit=100&order=asc", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(listed, ids);
    for (s, b) in shards.iter().zip(before) {
        assert!(
            s.gets() - b <= 1,
            "a page read one shard {} times",
            s.gets() - b
        );
    }
}

/// One slot for videos on the harness's account.
async fn one_video_slot(h: &Harness) {
    let id = account(h).await["id"].as_str().unwrap().to_owned();
    let r = h
        .admin_call(
            "PUT",
            &format!("/api/tokens/{id}"),
            Some(json!({"video_concurrency": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(account(h).await["video_concurrency"], 1);
}

/// Flow has no cancel: a deleted job that still runs upstream keeps its slot (a tombstone)
/// until the upstream generation ends, so create-and-delete in a loop cannot get round the
/// account's concurrency limit; to clients it is gone at once.
#[tokio::test(start_paused = true)]
async fn a_deleted_running_job_keeps_its_slot_until_upstream_ends() {
    // Polls every second, so a long job stays running while the test looks at it.
    let h = setup_with(&[("POLL_INTERVAL", "1"), ("SLOT_WAIT_TIMEOUT", "2")]).await;
    one_video_slot(&h).await;
    h.fake.set_video_polls(60, 0);
    let running = create_ok(&h, json!({"model": T2V, "prompt": "a long one"})).await;
    let v = wait_started(&h, &running).await;
    assert_eq!(v["status"], "in_progress", "{v}");
    assert_eq!(account(&h).await["in_flight"]["video"], 1);

    let r = h
        .api("DELETE", &format!("/v1/videos/{running}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": running, "object": "video.deleted", "deleted": true})
    );
    // Gone for clients, from now on.
    assert_error(&get_video(&h, &running).await, 404, Some("not_found"));
    let gone = h
        .api("GET", &format!("/v1/videos/{running}/content"), None)
        .await;
    assert_error(&gone, 404, None);
    let again = h
        .api("DELETE", &format!("/v1/videos/{running}"), None)
        .await;
    assert_error(&again, 404, None);
    let listed = h.api("GET", "/v1/videos", None).await.json();
    assert_eq!(listed["data"], json!([]), "{listed}");
    assert!(h.app.jobs().get(&running).await.unwrap().is_none());

    // But its slot stays taken while the generation goes on upstream.
    assert_eq!(account(&h).await["in_flight"]["video"], 1);
    let busy = create(&h, json!({"model": T2V, "prompt": "no room"})).await;
    assert_error(&busy, 503, Some("no_account_available"));
    let polls_after_delete = h.fake.requests_to(Endpoint::CheckVideoStatus).len();

    // The upstream generation ends: the slot comes back and the tombstone goes.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(
        h.fake.requests_to(Endpoint::CheckVideoStatus).len() > polls_after_delete,
        "the deleted job was followed to its end upstream"
    );
    assert_eq!(account(&h).await["in_flight"]["video"], 0);
    assert!(
        h.app.jobs().ids().await.unwrap().is_empty(),
        "tombstone removed"
    );
    assert_error(&get_video(&h, &running).await, 404, None);
    h.fake.set_video_polls(1, 1);
    let next = create_ok(&h, json!({"model": T2V, "prompt": "room now"})).await;
    wait_completed(&h, &next).await;
}

/// A job deleted while its submit is under way: the submit's operation is followed to its end
/// all the same, holding the slot, instead of running upstream with no slot held.
#[tokio::test(start_paused = true)]
async fn a_job_deleted_during_its_submit_keeps_its_slot_until_upstream_ends() {
    let h = setup_with(&[("POLL_INTERVAL", "1"), ("SLOT_WAIT_TIMEOUT", "2")]).await;
    one_video_slot(&h).await;
    h.fake.set_video_polls(5, 0);
    // The submit takes 30 s: the job is still queued when it is deleted.
    h.fake.inject(
        Endpoint::GenerateVideoText,
        Fault::Latency(Duration::from_secs(30)),
        1,
    );
    let id = create_ok(&h, json!({"model": T2V, "prompt": "sent, then deleted"})).await;
    while h.fake.requests_to(Endpoint::GenerateVideoText).is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = get_video(&h, &id).await.json();
    assert_eq!(v["status"], "queued", "{v}");
    let r = h.api("DELETE", &format!("/v1/videos/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_error(&get_video(&h, &id).await, 404, None);
    assert_eq!(account(&h).await["in_flight"]["video"], 1);
    let busy = create(&h, json!({"model": T2V, "prompt": "no room"})).await;
    assert_error(&busy, 503, Some("no_account_available"));

    tokio::time::sleep(Duration::from_secs(90)).await;
    let op = h.fake.videos()[0].name.clone();
    let polled = h
        .fake
        .requests_to(Endpoint::CheckVideoStatus)
        .iter()
        .filter(|r| r.json.as_ref().unwrap().to_string().contains(&op))
        .count();
    assert!(
        polled >= 5,
        "the submitted operation was followed ({polled} polls)"
    );
    assert_eq!(account(&h).await["in_flight"]["video"], 0);
    assert!(
        h.app.jobs().ids().await.unwrap().is_empty(),
        "tombstone removed"
    );
    assert_error(&get_video(&h, &id).await, 404, None);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_job_in_the_middle_of_a_step_does_not_bring_it_back() {
    let h = setup_with(&[("POLL_INTERVAL", "1")]).await;
    h.fake.set_video_polls(3, 3);
    let id = create_ok(&h, json!({"model": T2V, "prompt": "slow upstream"})).await;
    wait_started(&h, &id).await;
    // The next status call hangs for 5 s: the delete lands while a step is under way.
    h.fake.inject(
        Endpoint::CheckVideoStatus,
        Fault::Latency(Duration::from_secs(5)),
        1,
    );
    let polls = h.fake.requests_to(Endpoint::CheckVideoStatus).len();
    while h.fake.requests_to(Endpoint::CheckVideoStatus).len() == polls {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = h.api("DELETE", &format!("/v1/videos/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_error(&get_video(&h, &id).await, 404, None);
    assert!(h.app.jobs().get(&id).await.unwrap().is_none());
    assert_eq!(account(&h).await["in_flight"]["video"], 0);
}

// ---------------------------------------------------------------------------------------------
// 10. Gemini
// ---------------------------------------------------------------------------------------------

async fn gemini(h: &Harness, method: &str, path: &str, body: Option<Value>) -> Reply {
    h.call(method, path, &[("x-goog-api-key", API_KEY)], body)
        .await
}

/// Reads the operation `name` through `method path` until it is done; returns it.
async fn poll_operation(
    h: &Harness,
    name: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    for _ in 0..5000 {
        let r = gemini(h, method, path, body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["name"], name);
        if v["done"] == true {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the operation {name} did not finish");
}

fn gemini_error(r: &Reply, status: u16, name: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], status, "{v}");
    assert_eq!(v["error"]["status"], name, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    v
}

#[tokio::test(start_paused = true)]
async fn gemini_predict_long_running_and_its_operation() {
    let h = setup().await;
    h.fake.set_video_polls(2, 2);
    let r = gemini(
        &h,
        "POST",
        &format!("/v1beta/models/{GEMINI_MODEL}:predictLongRunning"),
        Some(
            json!({"instances": [{"prompt": "a paper boat in the rain"}],
                    "parameters": {"aspectRatio": "16:9"}}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let op = r.json();
    let name = op["name"].as_str().unwrap().to_owned();
    let prefix = format!("models/{GEMINI_MODEL}/operations/video_");
    assert!(name.starts_with(&prefix), "{name}");
    assert_eq!(op["done"], false, "{op}");
    let id = name.rsplit('/').next().unwrap().to_owned();

    let done = poll_operation(&h, &name, "GET", &format!("/v1beta/{name}"), None).await;
    assert!(done.get("error").is_none(), "{done}");
    let uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let suffix = format!("/v1beta/files/{id}:download?alt=media");
    assert!(uri.ends_with(&suffix), "{uri}");
    let path = uri.strip_prefix("http://gateway.test").expect(&uri);

    let videos = h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].kind, VideoKind::Text);
    assert_eq!(videos[0].prompt, "a paper boat in the rain");
    let mp4 = gemini(&h, "GET", path, None).await;
    assert_eq!(mp4.status, 200, "{}", mp4.text());
    assert_eq!(&mp4.body[..], &fake_mp4(&videos[0].name)[..]);
    // The key is required.
    let anon = h.call("GET", path, &[], None).await;
    gemini_error(&anon, 401, "UNAUTHENTICATED");

    // Errors in the Gemini dialect.
    let unknown = gemini(
        &h,
        "POST",
        "/v1beta/models/not-a-video-model:predictLongRunning",
        Some(json!({"instances": [{"prompt": "x"}]})),
    )
    .await;
    gemini_error(&unknown, 404, "NOT_FOUND");
    let no_prompt = gemini(
        &h,
        "POST",
        &format!("/v1beta/models/{GEMINI_MODEL}:predictLongRunning"),
        Some(json!({"instances": [{}]})),
    )
    .await;
    gemini_error(&no_prompt, 400, "INVALID_ARGUMENT");
    let missing = gemini(
        &h,
        "GET",
        &format!("/v1beta/models/{GEMINI_MODEL}/operations/video_0123abcd"),
        None,
    )
    .await;
    gemini_error(&missing, 404, "NOT_FOUND");
    assert_eq!(submits(&h), 1);
}

// ---------------------------------------------------------------------------------------------
// 11. Durability
// ---------------------------------------------------------------------------------------------

/// A job runner that never runs anything: a process that died before its jobs ran.
struct Idle;

impl JobRunner for Idle {
    fn schedule<'a>(&'a self, _: &'a str, _: Duration) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async { Ok(()) })
    }

    fn watch<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, BoxStream<'static, JobRecord>> {
        boxed(async { boxed_stream(futures::stream::empty()) })
    }
}

/// An app whose jobs never run, over stores a later app can reuse.
async fn idle_app() -> (Harness, Stores, flow2api_sdk::Config) {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    fake.add_account(FakeAccount::new(ST, EMAIL));
    let config = config(&[("POLL_INTERVAL", "0.01")], &fake);
    let stores = Stores::new(clock.clone());
    let app = stores
        .attach(builder(config.clone(), &fake, clock.clone()))
        .job_runner(Arc::new(Idle))
        .build()
        .unwrap();
    let h = logged_in(app, fake, clock).await;
    let added = h
        .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    h.fake.clear_requests();
    (h, stores, config)
}

#[tokio::test(start_paused = true)]
async fn a_job_outlives_its_app_and_resumes() {
    let (h1, stores, config) = idle_app().await;
    h1.fake.set_video_polls(20, 5);
    let id = create_ok(&h1, json!({"model": T2V, "prompt": "still here"})).await;
    // Nothing runs it, however long we wait (a read may try to reschedule it, in vain).
    tokio::time::sleep(Duration::from_secs(120)).await;
    let v = get_video(&h1, &id).await.json();
    assert_eq!(v["status"], "queued", "{v}");
    assert_eq!(submits(&h1), 0);

    // A new process over the same storage picks it up.
    let app2 = stores
        .attach(builder(config, &h1.fake, h1.clock.clone()))
        .build()
        .unwrap();
    let h2 = Harness {
        app: app2,
        fake: h1.fake.clone(),
        admin: h1.admin.clone(),
        clock: h1.clock.clone(),
    };
    assert_eq!(h2.app.resume_jobs().await.unwrap(), 1);
    let done = wait_completed(&h2, &id).await;
    let videos = h2.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(done["url"], h2.fake.video_url(&videos[0].name));
    assert_eq!(h2.fake.requests_to(Endpoint::CheckVideoStatus).len(), 26);
    // The first app reads the same record.
    assert_eq!(get_video(&h1, &id).await.json()["status"], "completed");
    // Nothing left to resume; the slot came back.
    assert_eq!(h2.app.resume_jobs().await.unwrap(), 0);
    assert_eq!(account(&h2).await["in_flight"]["video"], 0);
}

#[tokio::test(start_paused = true)]
async fn step_job_by_hand_takes_one_step_at_a_time() {
    let (h, _, _) = idle_app().await;
    h.fake.set_video_polls(3, 3);
    let id = create_ok(&h, json!({"model": T2V, "prompt": "step by step"})).await;
    let first = h.app.jobs().get(&id).await.unwrap().unwrap();
    assert_eq!(first.status, JobStatus::Queued);
    let mut revision = first.revision;
    let mut log_len = first.log.len();

    // Step 1: the submit.
    let out = h.app.step_job(&id).await.unwrap();
    assert!(out.next.is_some());
    assert!(out.revision() > revision, "{out:?}");
    let r = h.app.jobs().get(&id).await.unwrap().unwrap();
    assert_eq!(r.revision, out.revision());
    assert_eq!(r.status, JobStatus::InProgress);
    assert!(r.log.len() > log_len, "{:?}", r.log);
    assert!(
        matches!(&r.video.phase, JobPhase::Poll { attempt: 0, .. }),
        "{:?}",
        r.video.phase
    );
    assert_eq!(h.fake.requests_to(Endpoint::GenerateVideoText).len(), 1);
    assert_eq!(h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 0);
    revision = r.revision;
    log_len = r.log.len();

    // Then one poll per step: PENDING ×3, ACTIVE ×3, SUCCESSFUL on the 7th.
    for poll in 1..=7u32 {
        let out = h.app.step_job(&id).await.unwrap();
        let r = h.app.jobs().get(&id).await.unwrap().unwrap();
        assert_eq!(
            h.fake.requests_to(Endpoint::CheckVideoStatus).len(),
            poll as usize,
            "one status call per step"
        );
        assert!(r.revision >= revision && r.log.len() >= log_len);
        assert_eq!(out.revision(), r.revision);
        if poll < 7 {
            assert!(out.next.is_some(), "poll {poll}");
            assert_eq!(r.status, JobStatus::InProgress);
            assert!(
                matches!(&r.video.phase, JobPhase::Poll { attempt, .. } if *attempt == poll),
                "{:?}",
                r.video.phase
            );
        } else {
            assert_eq!(out.next, None);
            assert_eq!(r.status, JobStatus::Completed);
            assert_eq!(r.progress, 100);
            assert!(r.revision > revision);
            assert!(r.url.is_some());
        }
        revision = r.revision;
        log_len = r.log.len();
    }
    // The first poll logged its progress line.
    let r = h.app.jobs().get(&id).await.unwrap().unwrap();
    assert!(
        r.log.iter().any(|l| l.contains("Progress: 0%")),
        "{:?}",
        r.log
    );
    // A finished job takes no more steps.
    let out = h.app.step_job(&id).await.unwrap();
    assert_eq!(out.next, None);
    assert_eq!(out.revision(), revision);
    assert_eq!(h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 7);
    assert_eq!(get_video(&h, &id).await.json()["status"], "completed");
    assert_eq!(account(&h).await["in_flight"]["video"], 0);
}

// ---------------------------------------------------------------------------------------------
// 12. Chat stream
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn chat_stream_follows_the_job() {
    let h = setup().await;
    h.fake.set_video_polls(8, 8);
    let r = h
        .chat(json!({
            "model": T2V,
            "stream": true,
            "messages": user(json!("a fox in the snow")),
        }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let job = r.headers["x-video-id"].to_str().unwrap().to_owned();
    assert!(job.starts_with("video_"), "{job}");

    let chunks = chunks(&r);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert!(chunks.iter().all(|c| c["model"] == T2V));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let lines = reasoning(&chunks);
    assert!(
        lines.iter().any(|l| l.contains('%')),
        "no percentage among {lines:?}"
    );
    let (last, rest) = chunks.split_last().unwrap();
    assert!(rest
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let videos = h.fake.videos();
    assert_eq!(videos.len(), 1);
    let url = h.fake.video_url(&videos[0].name);
    // `docs/upstream.md#video-url-resolution`: data-media-id is the UUID of `/video/<uuid>` in the
    // URL, else the media name.
    let expected = format!(
        "<video src='{url}' data-media-id='{}' controls style='max-width:100%'></video>",
        videos[0].name
    );
    assert_eq!(last["choices"][0]["delta"]["content"], expected.as_str());

    let v = get_video(&h, &job).await.json();
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["url"], url.as_str());
}

/// Vertex AI express mode (google-genai with `vertexai=True`): the publisher path, with or
/// without a project, `fetchPredictOperation`, and the Vertex result shape.
#[tokio::test]
async fn vertex_express_mode_predict_and_fetch_operation() {
    let h = setup().await;
    h.fake.set_video_polls(1, 1);
    for prefix in [
        "publishers/google/",
        "projects/p1/locations/us-central1/publishers/google/",
    ] {
        let r = gemini(
            &h,
            "POST",
            &format!("/v1beta1/{prefix}models/{GEMINI_MODEL}:predictLongRunning"),
            Some(json!({"instances": [{"prompt": "a kite over the sea"}],
                        "parameters": {"aspectRatio": "9:16", "durationSeconds": 8}})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let name = r.json()["name"].as_str().unwrap().to_owned();
        assert!(
            name.starts_with(&format!("{prefix}models/{GEMINI_MODEL}/operations/video_")),
            "{name}"
        );
        let fetch = format!("/v1beta1/{prefix}models/{GEMINI_MODEL}:fetchPredictOperation");
        let body = json!({"operationName": name});
        let done = poll_operation(&h, &name, "POST", &fetch, Some(body)).await;
        let video = &done["response"]["videos"][0];
        assert_eq!(video["mimeType"], "video/mp4", "{done}");
        let uri = video["gcsUri"].as_str().unwrap();
        let path = uri.strip_prefix("http://gateway.test").expect(uri);
        let mp4 = gemini(&h, "GET", path, None).await;
        assert_eq!(mp4.status, 200, "{}", mp4.text());
        assert!(done["response"].get("generateVideoResponse").is_none());
    }
    let submits = h.fake.videos();
    assert_eq!(submits.len(), 2);
    let unknown = gemini(
        &h,
        "POST",
        &format!("/v1beta1/publishers/google/models/{GEMINI_MODEL}:fetchPredictOperation"),
        Some(json!({"operationName": "publishers/google/models/x/operations/video_00"})),
    )
    .await;
    gemini_error(&unknown, 404, "NOT_FOUND");
}

#[tokio::test(start_paused = true)]
async fn video_timeout_bounds_the_polling() {
    // 30 s at one poll a second: the job gives up after 30 status calls.
    let h = setup_with(&[("POLL_INTERVAL", "1"), ("VIDEO_TIMEOUT", "30")]).await;
    h.fake.set_video_polls(1000, 0);
    let id = create_ok(&h, json!({"model": T2V, "prompt": "never ends"})).await;
    let v = poll_until_done(&h, &id).await.pop().unwrap();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "video_timeout", "{v}");
    let polls = h.fake.requests_to(Endpoint::CheckVideoStatus).len();
    assert_eq!(polls, 30, "{v}");
    // Not the account's fault.
    let a = account(&h).await;
    assert_eq!(a["is_active"], true, "{a}");
}
