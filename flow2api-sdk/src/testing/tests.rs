use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use futures::executor::block_on;
use serde_json::{json, Value};

use super::*;

pub(super) const BASE: &str = "https://fake.flow.test";
pub(super) const ST: &str = "st-alice";
pub(super) const CLIENT_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/149.0.0.0 Safari/537.36";

/// Time moves only through sleeps, which also yield once so concurrent calls interleave.
pub(super) struct TestClock(pub(super) AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.0
            .fetch_add(duration.as_millis() as u64, Ordering::SeqCst);
        boxed(YieldOnce(false))
    }
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

const T0: u64 = 1_763_181_964_000; // 2025-11-15T04:46:04Z

pub(super) fn setup() -> (FakeFlow, Arc<TestClock>) {
    let clock = Arc::new(TestClock(AtomicU64::new(T0)));
    let fake = FakeFlow::new(BASE, clock.clone());
    fake.add_account(FakeAccount::new(ST, "alice@example.com"));
    (fake, clock)
}

pub(super) fn send(
    fake: &FakeFlow,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    let request = builder.body(Bytes::copy_from_slice(body)).unwrap();
    block_on(fake.call(request)).unwrap()
}

pub(super) fn post_json(
    fake: &FakeFlow,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> HttpResponse {
    send(fake, "POST", url, headers, body.to_string().as_bytes())
}

pub(super) fn body(response: &HttpResponse) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

pub(super) fn cookie(st: &str) -> String {
    format!("{SESSION_COOKIE}={st}")
}

pub(super) fn login(fake: &FakeFlow) -> String {
    let c = cookie(ST);
    let r = send(
        fake,
        "GET",
        &format!("{}/auth/session", fake.labs_base()),
        &[("cookie", &c)],
        b"",
    );
    body(&r)["access_token"].as_str().unwrap().to_owned()
}

pub(super) fn create_project(fake: &FakeFlow) -> String {
    let c = cookie(ST);
    let r = post_json(
        fake,
        &format!("{}/trpc/project.createProject", fake.labs_base()),
        &[("cookie", &c)],
        &json!({"json": {"projectTitle": "Aug 20 - 01:37 P1", "toolName": "PINHOLE"}}),
    );
    assert_eq!(r.status(), 200);
    body(&r)["result"]["data"]["json"]["result"]["projectId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An `IMAGE_GENERATION` token from the fake YesCaptcha, and the UA it came with.
pub(super) fn solve(fake: &FakeFlow, pid: &str) -> (String, String) {
    solve_for(fake, pid, "IMAGE_GENERATION")
}

/// A token for `action` from the fake YesCaptcha (ready on the second poll), and its UA.
pub(super) fn solve_for(fake: &FakeFlow, pid: &str, action: &str) -> (String, String) {
    let base = fake.yescaptcha_base();
    let r = post_json(
        fake,
        &format!("{base}/createTask"),
        &[],
        &json!({"clientKey": DEFAULT_YESCAPTCHA_KEY, "task": {
            "websiteURL": format!("https://labs.google/fx/tools/flow/project/{pid}"),
            "websiteKey": "6LdsFiUsAAAAAIjVDZcuLhaHiDn5nnHVXVRQGeMV",
            "type": "RecaptchaV3TaskProxylessM1S9",
            "pageAction": action,
            "userAgent": CLIENT_UA,
            "minScore": 0.9,
        }}),
    );
    let task_id = body(&r)["taskId"].as_str().unwrap().to_owned();
    let poll = json!({"clientKey": DEFAULT_YESCAPTCHA_KEY, "taskId": task_id});
    let url = format!("{base}/getTaskResult");
    assert_eq!(
        body(&post_json(fake, &url, &[], &poll)),
        json!({"errorId": 0, "status": "processing"})
    );
    let ready = body(&post_json(fake, &url, &[], &poll));
    assert_eq!(ready["status"], "ready");
    (
        ready["solution"]["gRecaptchaResponse"]
            .as_str()
            .unwrap()
            .to_owned(),
        ready["solution"]["userAgent"].as_str().unwrap().to_owned(),
    )
}

pub(super) fn upload(fake: &FakeFlow, at: &str, pid: &str) -> String {
    let auth = format!("Bearer {at}");
    let r = post_json(
        fake,
        &format!("{}/flow/uploadImage", fake.api_base()),
        &[("authorization", &auth)],
        &json!({
            "clientContext": {"sessionId": ";1724112345678", "tool": "PINHOLE", "projectId": pid},
            "fileName": "flow2api_upload_1724112345678.png",
            "imageBytes": base64::engine::general_purpose::STANDARD.encode(FIFE_PNG),
            "isHidden": false,
            "isUserUploaded": true,
            "mimeType": "image/png",
        }),
    );
    assert_eq!(r.status(), 200, "{:?}", body(&r));
    body(&r)["media"]["name"].as_str().unwrap().to_owned()
}

fn client_context(pid: &str, token: &str) -> Value {
    json!({
        "recaptchaContext": {"token": token, "applicationType": "RECAPTCHA_APPLICATION_TYPE_WEB"},
        "sessionId": ";1724112345678", "projectId": pid, "tool": "PINHOLE",
    })
}

fn generate(
    fake: &FakeFlow,
    at: &str,
    pid: &str,
    token: &str,
    ua: &str,
    inputs: &[&str],
) -> HttpResponse {
    let cc = client_context(pid, token);
    let inputs: Vec<Value> = inputs
        .iter()
        .map(|n| json!({"name": n, "imageInputType": "IMAGE_INPUT_TYPE_REFERENCE"}))
        .collect();
    let auth = format!("Bearer {at}");
    post_json(
        fake,
        &format!(
            "{}/projects/{pid}/flowMedia:batchGenerateImages",
            fake.api_base()
        ),
        &[("authorization", &auth), ("user-agent", ua)],
        &json!({
            "clientContext": cc,
            "mediaGenerationContext": {"batchId": "6f1c2d8e-0000-4000-8000-000000000000"},
            "useNewMedia": true,
            "requests": [{
                "clientContext": cc,
                "seed": 123456,
                "imageModelName": "NARWHAL",
                "imageAspectRatio": "IMAGE_ASPECT_RATIO_LANDSCAPE",
                "structuredPrompt": {"parts": [{"text": "a red fox"}]},
                "imageInputs": inputs,
            }],
        }),
    )
}

fn unusual_activity_body() -> Value {
    json!({"error": {"code": 403, "message": "reCAPTCHA evaluation failed", "status": "PERMISSION_DENIED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "PUBLIC_ERROR_UNUSUAL_ACTIVITY"}]}})
}

#[test]
fn session_exchanges_st_for_a_fresh_at() {
    let (fake, _clock) = setup();
    let c = cookie(ST);
    let url = format!("{}/auth/session", fake.labs_base());
    let r = send(
        &fake,
        "GET",
        &url,
        &[("cookie", &format!("other=1; {c}"))],
        b"",
    );
    assert_eq!(r.status(), 200);
    let v = body(&r);
    assert_eq!(v["user"]["email"], "alice@example.com");
    assert_eq!(v["user"]["name"], "alice");
    assert!(v["user"]["image"].is_string());
    assert_eq!(v["expires"], "2025-11-15T06:16:04.000Z");
    let at = v["access_token"].as_str().unwrap();
    assert!(at.starts_with("ya29.fake-"));
    assert_ne!(login(&fake), at, "a new AT on every call");

    let unknown = send(&fake, "GET", &url, &[("cookie", &cookie("nope"))], b"");
    assert_eq!(
        (unknown.status().as_u16(), body(&unknown)),
        (200, json!({}))
    );
    fake.expire_st(ST);
    let expired = send(&fake, "GET", &url, &[("cookie", &c)], b"");
    assert_eq!(body(&expired), json!({}));
}

#[test]
fn credits_answer_401_for_a_bad_or_expired_at() {
    let (fake, clock) = setup();
    let at = login(&fake);
    let url = format!("{}/credits", fake.api_base());
    let r = send(
        &fake,
        "GET",
        &url,
        &[("authorization", &format!("Bearer {at}"))],
        b"",
    );
    assert_eq!(
        body(&r),
        json!({"credits": 1000, "userPaygateTier": "PAYGATE_TIER_TWO"})
    );

    let bad = send(
        &fake,
        "GET",
        &url,
        &[("authorization", "Bearer ya29.nope")],
        b"",
    );
    assert_eq!(bad.status(), 401);
    assert_eq!(
        body(&bad),
        json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})
    );
    clock.0.fetch_add(90 * 60 * 1000, Ordering::SeqCst);
    let late = send(
        &fake,
        "GET",
        &url,
        &[("authorization", &format!("Bearer {at}"))],
        b"",
    );
    assert_eq!(late.status(), 401);
}

#[test]
fn create_project_answers_the_trpc_shape() {
    let (fake, _clock) = setup();
    let pid = create_project(&fake);
    assert_eq!(pid.len(), 36);
    let projects = fake.projects();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].email, "alice@example.com");
    assert_eq!(projects[0].title, "Aug 20 - 01:37 P1");
    let r = fake.requests_to(Endpoint::CreateProject);
    assert_eq!(r[0].json.as_ref().unwrap()["json"]["toolName"], "PINHOLE");

    let r = post_json(
        &fake,
        &format!("{}/trpc/project.createProject", fake.labs_base()),
        &[("cookie", &cookie("nope"))],
        &json!({"json": {"projectTitle": "x", "toolName": "PINHOLE"}}),
    );
    assert_eq!(r.status(), 401);
}

#[test]
fn upload_generate_upsample_happy_path() {
    let (fake, _clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    let media = upload(&fake, &at, &pid);
    assert_eq!(fake.uploads()[0].bytes.as_ref(), FIFE_PNG);

    let (token, ua) = solve(&fake, &pid);
    assert_eq!(ua, SOLVER_USER_AGENT);
    let r = generate(&fake, &at, &pid, &token, &ua, &[&media]);
    assert_eq!(r.status(), 200, "{:?} {:?}", body(&r), fake.rejections());
    let v = body(&r);
    let id = v["media"][0]["name"].as_str().unwrap().to_owned();
    let image = &v["media"][0]["image"]["generatedImage"];
    assert_eq!(image["fifeUrl"], format!("{BASE}/fife/{id}.png"));
    assert_eq!(image["modelNameType"], "NARWHAL");
    assert_eq!(image["prompt"], "a red fox");
    assert_eq!(image["seed"], 123456);
    assert!(image["mediaGenerationId"].is_string());
    let generated = fake.generated();
    assert_eq!(generated[0].aspect_ratio, "IMAGE_ASPECT_RATIO_LANDSCAPE");
    assert_eq!(generated[0].image_inputs, vec![media]);

    let png = send(&fake, "GET", image["fifeUrl"].as_str().unwrap(), &[], b"");
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(png.body().as_ref(), FIFE_PNG);
    assert_eq!(
        send(&fake, "GET", &format!("{BASE}/fife/unknown.png"), &[], b"").status(),
        404
    );

    let mut jpegs = Vec::new();
    for resolution in [
        "UPSAMPLE_IMAGE_RESOLUTION_2K",
        "UPSAMPLE_IMAGE_RESOLUTION_4K",
    ] {
        let (token, ua) = solve(&fake, &pid);
        let mut cc = client_context(&pid, &token);
        cc["userPaygateTier"] = json!("PAYGATE_TIER_TWO");
        let r = post_json(
            &fake,
            &format!("{}/flow/upsampleImage", fake.api_base()),
            &[
                ("authorization", &format!("Bearer {at}")),
                ("user-agent", &ua),
            ],
            &json!({"mediaId": id, "targetResolution": resolution, "clientContext": cc}),
        );
        assert_eq!(r.status(), 200, "{:?}", fake.rejections());
        let b64 = body(&r)["encodedImage"].as_str().unwrap().to_owned();
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff]);
        assert!(jpeg.ends_with(&[0xff, 0xd9]));
        jpegs.push(jpeg);
    }
    assert!(jpegs[0].windows(2).any(|w| w == b"2K"));
    assert!(jpegs[1].windows(2).any(|w| w == b"4K"));
    assert!(fake.rejections().is_empty());
}

#[test]
fn upload_can_answer_the_array_form() {
    let (fake, _clock) = setup();
    fake.set_upload_response_array(true);
    let at = login(&fake);
    let pid = create_project(&fake);
    let r = post_json(
        &fake,
        &format!("{}/flow/uploadImage", fake.api_base()),
        &[("authorization", &format!("Bearer {at}"))],
        &json!({"clientContext": {"projectId": pid}, "imageBytes": "aGVsbG8=", "mimeType": "image/jpeg"}),
    );
    assert!(body(&r)["media"][0]["name"].is_string());
}

#[test]
fn captcha_token_reuse_is_rejected() {
    let (fake, _clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    let (token, ua) = solve(&fake, &pid);
    assert_eq!(generate(&fake, &at, &pid, &token, &ua, &[]).status(), 200);
    let again = generate(&fake, &at, &pid, &token, &ua, &[]);
    assert_eq!(again.status(), 403);
    assert_eq!(body(&again), unusual_activity_body());
    let forged = generate(&fake, &at, &pid, "03AFcWeA-forged", &ua, &[]);
    assert_eq!(forged.status(), 403);
    assert_eq!(fake.rejections().len(), 2);
}

#[test]
fn user_agent_mismatch_is_rejected() {
    let (fake, _clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    let (token, _ua) = solve(&fake, &pid);
    let r = generate(&fake, &at, &pid, &token, CLIENT_UA, &[]);
    assert_eq!(r.status(), 403);
    assert_eq!(body(&r), unusual_activity_body());
    assert!(fake.rejections()[0].contains("User-Agent"));
}

#[test]
fn foreign_inputs_and_projects_are_refused() {
    let (fake, _clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    let (token, ua) = solve(&fake, &pid);
    let r = generate(&fake, &at, &pid, &token, &ua, &["not-uploaded"]);
    assert_eq!(r.status(), 400);
    assert_eq!(body(&r)["error"]["status"], "INVALID_ARGUMENT");
    let (token, ua) = solve(&fake, &pid);
    let r = generate(&fake, &at, "someone-elses", &token, &ua, &[]);
    assert_eq!(r.status(), 403);
    assert_eq!(body(&r)["error"]["status"], "PERMISSION_DENIED");
}

#[test]
fn injected_quota_fault_is_answered_once() {
    let (fake, _clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    fake.inject(Endpoint::GenerateImage, Fault::quota(), 1);
    let (token, ua) = solve(&fake, &pid);
    let r = generate(&fake, &at, &pid, &token, &ua, &[]);
    assert_eq!(r.status(), 429);
    assert_eq!(
        body(&r),
        json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "PUBLIC_ERROR_USER_QUOTA_REACHED"}]}})
    );
    let (token, ua) = solve(&fake, &pid);
    assert_eq!(generate(&fake, &at, &pid, &token, &ua, &[]).status(), 200);
    assert_eq!(fake.requests_to(Endpoint::GenerateImage).len(), 2);
}

#[test]
fn rate_limited_fault_through_the_control_api_answers_exactly_once() {
    let (fake, clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    let r = post_json(
        &fake,
        &format!("{BASE}/_fake/faults"),
        &[],
        &json!({"endpoint": "generate_image", "kind": "rate_limited"}),
    );
    assert_eq!(body(&r), json!({"ok": true}));
    let (token, ua) = solve(&fake, &pid);
    let r = generate(&fake, &at, &pid, &token, &ua, &[]);
    assert_eq!(r.status(), 429);
    assert_eq!(
        body(&r),
        json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED"}}),
        "a plain 429 carries no details reason"
    );
    block_on(clock.sleep(Duration::from_millis(1500)));
    let (token, ua) = solve(&fake, &pid);
    assert_eq!(generate(&fake, &at, &pid, &token, &ua, &[]).status(), 200);
    let gens = fake.requests_to(Endpoint::GenerateImage);
    assert_eq!(gens.len(), 2);
    assert!(
        gens[1].at_ms >= gens[0].at_ms + 1500,
        "{} then {}",
        gens[0].at_ms,
        gens[1].at_ms
    );
}

#[test]
fn malformed_json_both_ways() {
    let (fake, _clock) = setup();
    let at = login(&fake);
    let r = send(
        &fake,
        "POST",
        &format!("{}/flow/uploadImage", fake.api_base()),
        &[("authorization", &format!("Bearer {at}"))],
        b"{not json",
    );
    assert_eq!(r.status(), 400);
    assert_eq!(body(&r)["error"]["status"], "INVALID_ARGUMENT");
    assert!(fake.requests_to(Endpoint::UploadImage)[0].json.is_none());

    fake.inject(Endpoint::Credits, Fault::MalformedJson, 1);
    let r = send(
        &fake,
        "GET",
        &format!("{}/credits", fake.api_base()),
        &[("authorization", &format!("Bearer {at}"))],
        b"",
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().as_ref(), b"{\"media\": [");
    assert!(serde_json::from_slice::<Value>(r.body()).is_err());
}

#[test]
fn yescaptcha_key_polls_and_faults() {
    let (fake, _clock) = setup();
    let url = format!("{}/createTask", fake.yescaptcha_base());
    let r = post_json(&fake, &url, &[], &json!({"clientKey": "wrong", "task": {}}));
    assert_eq!(body(&r)["errorId"], 1);
    assert_eq!(body(&r)["errorCode"], "ERROR_KEY_DOES_NOT_EXIST");

    fake.inject(Endpoint::CreateTask, Fault::CaptchaError, 1);
    let task = json!({"clientKey": DEFAULT_YESCAPTCHA_KEY, "task": {"websiteURL": "u", "websiteKey": "k", "type": "RecaptchaV3TaskProxylessM1S9", "pageAction": "IMAGE_GENERATION"}});
    let r = post_json(&fake, &url, &[], &task);
    assert_eq!(body(&r)["errorCode"], "ERROR_NO_SLOT_AVAILABLE");

    fake.set_captcha_polls_before_ready(3);
    fake.inject(Endpoint::CreateTask, Fault::CaptchaUnsolvable, 1);
    let stuck = body(&post_json(&fake, &url, &[], &task))["taskId"].clone();
    let fine = body(&post_json(&fake, &url, &[], &task))["taskId"].clone();
    let poll_url = format!("{}/getTaskResult", fake.yescaptcha_base());
    let poll = |id: &Value| {
        body(&post_json(
            &fake,
            &poll_url,
            &[],
            &json!({"clientKey": DEFAULT_YESCAPTCHA_KEY, "taskId": id}),
        ))
    };
    for _ in 0..3 {
        assert_eq!(poll(&fine)["status"], "processing");
    }
    let ready = poll(&fine);
    assert_eq!(ready["status"], "ready");
    assert_eq!(poll(&fine), ready, "a ready task keeps its token");
    for _ in 0..10 {
        assert_eq!(poll(&stuck)["status"], "processing");
    }
    assert_eq!(poll(&json!("nope"))["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID");
}

#[test]
fn in_flight_counts_overlapping_generations() {
    let (fake, clock) = setup();
    let at = login(&fake);
    let pid = create_project(&fake);
    let (t1, ua) = solve(&fake, &pid);
    let (t2, _) = solve(&fake, &pid);
    fake.inject(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(2)),
        2,
    );
    let call = |token: &str| {
        let cc = client_context(&pid, token);
        let request = http::Request::post(format!("{}/projects/{pid}/flowMedia:batchGenerateImages", fake.api_base()))
            .header("authorization", format!("Bearer {at}"))
            .header("user-agent", ua.as_str())
            .body(Bytes::from(json!({"clientContext": cc, "requests": [{"clientContext": cc, "imageModelName": "GEM_PIX_2",
                "imageAspectRatio": "IMAGE_ASPECT_RATIO_SQUARE", "structuredPrompt": {"parts": [{"text": "x"}]}}]}).to_string()))
            .unwrap();
        fake.call(request)
    };
    let (a, b) = block_on(futures::future::join(call(&t1), call(&t2)));
    assert_eq!(
        (a.unwrap().status().as_u16(), b.unwrap().status().as_u16()),
        (200, 200)
    );
    assert_eq!(fake.max_in_flight()["alice@example.com"], 2);
    assert_eq!(fake.in_flight()["alice@example.com"], 0);
    assert_eq!(clock.now_ms(), T0 + 4000);
}

#[test]
fn control_api_drives_the_fake() {
    let clock = Arc::new(TestClock(AtomicU64::new(T0)));
    let fake = FakeFlow::new("http://127.0.0.1:9100/", clock);
    let ctl = |path: &str, v: Value| {
        post_json(
            &fake,
            &format!("http://127.0.0.1:9100/_fake/{path}"),
            &[],
            &v,
        )
    };
    let r = ctl(
        "accounts",
        json!({"st": "st-bob", "email": "bob@example.com", "tier": "PAYGATE_TIER_ONE", "credits": 5}),
    );
    assert_eq!(body(&r), json!({"ok": true}));
    let r = ctl(
        "faults",
        json!({"endpoint": "session", "status": 503, "times": 1}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        ctl("faults", json!({"endpoint": "nowhere", "status": 503})).status(),
        400
    );
    assert_eq!(
        ctl("faults", json!({"endpoint": "credits", "kind": "latency"})).status(),
        400
    );
    assert_eq!(
        ctl("captcha", json!({"polls_before_ready": 0})).status(),
        200
    );
    assert_eq!(
        send(
            &fake,
            "POST",
            "http://127.0.0.1:9100/_fake/accounts",
            &[],
            b"{"
        )
        .status(),
        400
    );

    let session = format!("{}/auth/session", fake.labs_base());
    let c = cookie("st-bob");
    let r = send(&fake, "GET", &session, &[("cookie", &c)], b"");
    assert_eq!(r.status(), 503);
    assert_eq!(body(&r)["error"]["status"], "UNAVAILABLE");
    assert!(body(&r)["error"].get("details").is_none());
    let r = send(&fake, "GET", &session, &[("cookie", &c)], b"");
    assert_eq!(body(&r)["user"]["name"], "bob");

    let requests = send(
        &fake,
        "GET",
        "http://127.0.0.1:9100/_fake/requests",
        &[],
        b"",
    );
    let requests = body(&requests);
    assert_eq!(requests.as_array().unwrap().len(), 2);
    assert_eq!(requests[0]["endpoint"], "session");
    assert_eq!(
        requests[0]["url"],
        "http://127.0.0.1:9100/fx/api/auth/session"
    );

    let stats = body(&send(
        &fake,
        "GET",
        "http://127.0.0.1:9100/_fake/stats",
        &[],
        b"",
    ));
    assert_eq!(stats["generated"], 0);
    assert!(stats["max_in_flight"].is_object());
    assert_eq!(body(&ctl("reset", json!({}))), json!({"ok": true}));
    assert!(fake.requests().is_empty());
    assert_eq!(
        send(
            &fake,
            "GET",
            "http://127.0.0.1:9100/_fake/nothing",
            &[],
            b""
        )
        .status(),
        404
    );
    assert_eq!(
        send(&fake, "GET", "http://127.0.0.1:9100/elsewhere", &[], b"").status(),
        404
    );
}
