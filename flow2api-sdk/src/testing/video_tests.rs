//! Tests of the fake video endpoints (video-submit to concat-status, the MP4 host, the warm-up).

use base64::Engine as _;
use serde_json::{json, Value};

use super::tests::{
    body, cookie, create_project, login, post_json, send, setup, solve_for, upload, ST,
};
use super::*;

/// A `VIDEO_GENERATION` token from the fake YesCaptcha.
fn solve_video(fake: &FakeFlow, pid: &str) -> String {
    solve_for(fake, pid, "VIDEO_GENERATION").0
}

struct Session {
    fake: FakeFlow,
    at: String,
    pid: String,
}

impl Session {
    fn new() -> Self {
        let (fake, _clock) = setup();
        let at = login(&fake);
        let pid = create_project(&fake);
        Self { fake, at, pid }
    }

    fn body(&self, token: &str, request: Value) -> Value {
        json!({
            "mediaGenerationContext": {
                "batchId": "8b0c0000-0000-4000-8000-000000000000",
                "audioFailurePreference": "BLOCK_SILENCED_VIDEOS",
            },
            "clientContext": {
                "recaptchaContext": {"token": token, "applicationType": "RECAPTCHA_APPLICATION_TYPE_WEB"},
                "sessionId": ";1724112345678", "projectId": self.pid, "tool": "PINHOLE",
                "userPaygateTier": "PAYGATE_TIER_TWO",
            },
            "requests": [request],
            "useV2ModelConfig": true,
        })
    }

    fn submit_with(&self, method: &str, token: &str, request: Value) -> HttpResponse {
        let auth = format!("Bearer {}", self.at);
        post_json(
            &self.fake,
            &format!("{}/video:{method}", self.fake.api_base()),
            &[("authorization", &auth), ("user-agent", SOLVER_USER_AGENT)],
            &self.body(token, request),
        )
    }

    /// Submits with a fresh token; asserts 200 and answers the operation name.
    fn submit(&self, method: &str, request: Value) -> String {
        let token = solve_video(&self.fake, &self.pid);
        let r = self.submit_with(method, &token, request);
        assert_eq!(r.status(), 200, "{}", body(&r));
        let b = body(&r);
        assert_eq!(
            b["operations"][0]["status"],
            "MEDIA_GENERATION_STATUS_PENDING"
        );
        assert!(b["operations"][0]["sceneId"].is_string());
        b["operations"][0]["operation"]["name"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn poll(&self, name: &str) -> Value {
        let auth = format!("Bearer {}", self.at);
        let r = post_json(
            &self.fake,
            &format!(
                "{}/video:batchCheckAsyncVideoGenerationStatus",
                self.fake.api_base()
            ),
            &[("authorization", &auth)],
            &json!({"media": [{"name": name, "projectId": self.pid}]}),
        );
        assert_eq!(r.status(), 200, "{}", body(&r));
        body(&r)
    }

    /// Polls until the status leaves PENDING/ACTIVE; answers the last poll and the count.
    fn poll_to_end(&self, name: &str) -> (Value, u32) {
        for n in 1..50 {
            let b = self.poll(name);
            let status = b["media"][0]["mediaMetadata"]["mediaStatus"]["mediaGenerationStatus"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(b["operations"][0]["status"], status.as_str());
            if !status.ends_with("PENDING") && !status.ends_with("ACTIVE") {
                return (b, n);
            }
        }
        panic!("never finished");
    }

    fn redirect(&self, name: &str) -> HttpResponse {
        let c = cookie(ST);
        send(
            &self.fake,
            "GET",
            &format!(
                "{}/trpc/media.getMediaUrlRedirect?name={name}&mediaUrlType=MEDIA_URL_TYPE_FULL_MEDIA",
                self.fake.labs_base()
            ),
            &[("cookie", &c)],
            b"",
        )
    }

    fn media_bytes(&self, name: &str) -> HttpResponse {
        let auth = format!("Bearer {}", self.at);
        send(
            &self.fake,
            "GET",
            &format!("{}/media/{name}", self.fake.api_base()),
            &[("authorization", &auth)],
            b"",
        )
    }

    /// A finished text→video operation.
    fn finished_video(&self) -> String {
        let name = self.submit("batchAsyncGenerateVideoText", t2v("a cat"));
        let (b, _) = self.poll_to_end(&name);
        assert_eq!(
            b["operations"][0]["status"],
            "MEDIA_GENERATION_STATUS_SUCCESSFUL"
        );
        name
    }
}

fn prompt(text: &str) -> Value {
    json!({"structuredPrompt": {"parts": [{"text": text}]}})
}

fn t2v(text: &str) -> Value {
    json!({
        "aspectRatio": "VIDEO_ASPECT_RATIO_LANDSCAPE", "seed": 4242,
        "textInput": prompt(text), "videoModelKey": "veo_3_1_t2v_fast", "metadata": {},
    })
}

#[test]
fn text_to_video_polls_then_redirects_to_the_mp4() {
    let s = Session::new();
    s.fake.set_video_polls(2, 3);
    let name = s.submit(
        "batchAsyncGenerateVideoText",
        t2v("a cat chasing butterflies"),
    );
    let (b, polls) = s.poll_to_end(&name);
    assert_eq!(polls, 6);
    let op = &b["operations"][0]["operation"];
    assert_eq!(op["name"], name.as_str());
    assert_eq!(op["metadata"]["video"]["mediaName"], name.as_str());
    assert_eq!(
        op["metadata"]["video"]["aspectRatio"],
        "VIDEO_ASPECT_RATIO_LANDSCAPE"
    );
    assert_eq!(op["metadata"]["video"]["model"], "veo_3_1_t2v_fast");
    let media = &b["media"][0];
    assert_eq!(media["name"], name.as_str());
    assert_eq!(media["projectId"], s.pid.as_str());
    assert_eq!(
        media["video"]["generatedVideo"]["aspectRatio"],
        "VIDEO_ASPECT_RATIO_LANDSCAPE"
    );
    assert!(media["video"]["fifeUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://"));

    let r = s.redirect(&name);
    assert_eq!(r.status(), 307);
    let url = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(url, s.fake.video_url(&name));
    assert_eq!(body(&r)["url"], url.as_str());
    let mp4 = send(&s.fake, "GET", &url, &[], b"");
    assert_eq!(mp4.status(), 200);
    assert_eq!(mp4.headers()["content-type"], "video/mp4");
    assert_eq!(&mp4.body()[4..8], b"ftyp");
    assert!(mp4.body().len() > 4000);
    assert_eq!(mp4.body().as_ref(), fake_mp4(&name).as_slice());
    let needle = format!("flow2api-fake video {name}");
    assert!(mp4
        .body()
        .windows(needle.len())
        .any(|w| w == needle.as_bytes()));

    let v = &s.fake.videos()[0];
    assert_eq!(v.kind, VideoKind::Text);
    assert_eq!(v.prompt, "a cat chasing butterflies");
    assert_eq!(v.email, "alice@example.com");
    assert_eq!(s.fake.requests_to(Endpoint::CheckVideoStatus).len(), 6);
    // Unknown videos are not served.
    let missing = send(&s.fake, "GET", &s.fake.video_url("nope"), &[], b"");
    assert_eq!(missing.status(), 404);
}

#[test]
fn media_shape_for_tolerant_parsing() {
    let s = Session::new();
    s.fake.set_video_shape(VideoShape::Workflows);
    s.fake.set_video_polls(0, 0);
    let token = solve_video(&s.fake, &s.pid);
    let b = body(&s.submit_with("batchAsyncGenerateVideoText", &token, t2v("x")));
    assert!(b.get("operations").is_none());
    let name = b["media"][0]["name"].as_str().unwrap().to_owned();
    assert_eq!(
        b["workflows"][0]["metadata"]["primaryMediaId"],
        name.as_str()
    );
    assert_eq!(
        b["media"][0]["mediaMetadata"]["mediaStatus"]["mediaGenerationStatus"],
        "MEDIA_GENERATION_STATUS_PENDING"
    );
    let p = s.poll(&name);
    assert!(p.get("operations").is_none());
    assert_eq!(
        p["media"][0]["mediaMetadata"]["mediaStatus"]["mediaGenerationStatus"],
        "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    );
}

#[test]
fn start_and_end_images_must_be_uploads() {
    let s = Session::new();
    let a = upload(&s.fake, &s.at, &s.pid);
    let b = upload(&s.fake, &s.at, &s.pid);
    let mut req = t2v("morph");
    req["videoModelKey"] = json!("veo_3_1_i2v_s_fast_fl");
    req["startImage"] = json!({"mediaId": a});
    let start = s.submit("batchAsyncGenerateVideoStartImage", req.clone());
    req["endImage"] = json!({"mediaId": b});
    let both = s.submit("batchAsyncGenerateVideoStartAndEndImage", req.clone());
    let videos = s.fake.videos();
    assert_eq!(videos[0].name, start);
    assert_eq!(videos[0].kind, VideoKind::StartImage);
    assert_eq!(videos[0].sources, vec![a.clone()]);
    assert_eq!(videos[1].name, both);
    assert_eq!(videos[1].sources, vec![a, b]);

    req["endImage"] = json!({"mediaId": "not-uploaded"});
    let token = solve_video(&s.fake, &s.pid);
    let r = s.submit_with("batchAsyncGenerateVideoStartAndEndImage", &token, req);
    assert_eq!(r.status(), 400);
    assert_eq!(body(&r)["error"]["status"], "INVALID_ARGUMENT");
}

#[test]
fn reference_images_up_to_three() {
    let s = Session::new();
    let refs: Vec<String> = (0..3).map(|_| upload(&s.fake, &s.at, &s.pid)).collect();
    let mut req = t2v("three friends");
    req["videoModelKey"] = json!("veo_3_1_r2v_fast");
    req["referenceImages"] = json!(refs
        .iter()
        .map(|id| json!({"imageUsageType": "IMAGE_USAGE_TYPE_ASSET", "mediaId": id}))
        .collect::<Vec<_>>());
    let name = s.submit("batchAsyncGenerateVideoReferenceImages", req.clone());
    let v = &s.fake.videos()[0];
    assert_eq!(v.name, name);
    assert_eq!(v.kind, VideoKind::ReferenceImages);
    assert_eq!(v.sources, refs);

    let mut four = req.clone();
    four["referenceImages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"imageUsageType": "IMAGE_USAGE_TYPE_ASSET", "mediaId": refs[0]}));
    let token = solve_video(&s.fake, &s.pid);
    let r = s.submit_with("batchAsyncGenerateVideoReferenceImages", &token, four);
    assert_eq!(r.status(), 400);
}

#[test]
fn extend_upsample_and_concatenate() {
    let s = Session::new();
    let source = s.finished_video();
    let ext = s.submit(
        "batchAsyncGenerateVideoExtendVideo",
        json!({
            "aspectRatio": "VIDEO_ASPECT_RATIO_LANDSCAPE", "seed": 7,
            "textInput": prompt("and then"), "videoInput": {"mediaId": source},
            "videoModelKey": "veo_3_1_extend_fast", "metadata": {"workflowId": "wf-1"},
        }),
    );
    let up = s.submit(
        "batchAsyncGenerateVideoUpsampleVideo",
        json!({
            "aspectRatio": "VIDEO_ASPECT_RATIO_LANDSCAPE", "resolution": "VIDEO_RESOLUTION_4K",
            "seed": 8, "videoInput": {"mediaId": source},
            "videoModelKey": "veo_3_1_upsampler_4k", "metadata": {"sceneId": "scene-1"},
        }),
    );
    let videos = s.fake.videos();
    assert_eq!(videos[1].kind, VideoKind::Extend);
    assert_eq!(videos[1].sources, vec![source.clone()]);
    assert_eq!(videos[2].kind, VideoKind::Upsample);
    assert_eq!(videos[2].resolution.as_deref(), Some("VIDEO_RESOLUTION_4K"));
    assert_eq!(
        s.poll_to_end(&up).0["operations"][0]["status"],
        "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    );
    s.poll_to_end(&ext);

    // An unfinished or unknown source is refused.
    let token = solve_video(&s.fake, &s.pid);
    let r = s.submit_with(
        "batchAsyncGenerateVideoUpsampleVideo",
        &token,
        json!({
            "aspectRatio": "VIDEO_ASPECT_RATIO_LANDSCAPE", "resolution": "VIDEO_RESOLUTION_4K",
            "seed": 8, "videoInput": {"mediaId": "unknown"},
            "videoModelKey": "veo_3_1_upsampler_4k", "metadata": {"sceneId": "scene-1"},
        }),
    );
    assert_eq!(r.status(), 400);

    s.fake.set_concat_polls(2);
    let auth = format!("Bearer {}", s.at);
    let api = s.fake.api_base();
    let r = post_json(
        &s.fake,
        &format!("{api}:runVideoFxConcatenation"),
        &[("authorization", &auth)],
        &json!({"inputVideos": [
            {"mediaGenerationId": source, "lengthNanos": 8000, "startTimeOffset": "0s", "endTimeOffset": "8s"},
            {"mediaGenerationId": ext, "lengthNanos": 8000, "startTimeOffset": "1s", "endTimeOffset": "8s"},
        ]}),
    );
    assert_eq!(r.status(), 200, "{}", body(&r));
    let op = body(&r)["operation"]["operation"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = |fake: &FakeFlow| {
        body(&post_json(
            fake,
            &format!("{api}:runVideoFxCheckConcatenationStatus"),
            &[("authorization", &auth)],
            &json!({"operation": {"operation": {"name": op}}}),
        ))
    };
    assert_eq!(status(&s.fake)["status"], "MEDIA_GENERATION_STATUS_ACTIVE");
    let done = status(&s.fake);
    assert_eq!(done["status"], "MEDIA_GENERATION_STATUS_SUCCESSFUL");
    let uri = done["outputUri"].as_str().unwrap();
    assert_eq!(send(&s.fake, "GET", uri, &[], b"").status(), 200);
}

/// concat-submit and concat-status through [`crate::flow::FlowClient`]: an extension concatenated
/// after its source.
#[test]
fn flow_client_concatenates_an_extension_with_its_source() {
    use crate::flow::FlowClient;
    use crate::secret::Secret;
    use futures::executor::block_on;
    use std::sync::atomic::AtomicU64;

    let s = Session::new();
    let source = s.finished_video();
    let ext = s.submit(
        "batchAsyncGenerateVideoExtendVideo",
        json!({
            "aspectRatio": "VIDEO_ASPECT_RATIO_LANDSCAPE", "seed": 7,
            "textInput": prompt("and then"), "videoInput": {"mediaId": source},
            "videoModelKey": "veo_3_1_extend_fast", "metadata": {"workflowId": "wf-1"},
        }),
    );
    s.poll_to_end(&ext);
    s.fake.set_concat_polls(3);
    let client = FlowClient::new(
        Arc::new(s.fake.clone()),
        Arc::new(super::tests::TestClock(AtomicU64::new(0))),
        &s.fake.labs_base(),
        &s.fake.api_base(),
    );
    let at = Secret::new(s.at.clone());

    let op = block_on(client.concat_videos(&at, &source, &ext))
        .unwrap()
        .expect("an operation name");
    let sent = s.fake.requests_to(Endpoint::Concatenate);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].url,
        format!("{}:runVideoFxConcatenation", s.fake.api_base())
    );
    assert_eq!(
        sent[0].json.as_ref().unwrap()["inputVideos"][1],
        json!({"mediaGenerationId": ext, "lengthNanos": 8000, "startTimeOffset": "1s", "endTimeOffset": "8s"})
    );

    // An upstream error is an error, not a status.
    s.fake
        .inject(Endpoint::ConcatenationStatus, Fault::internal(), 1);
    let e = block_on(client.concat_status(&at, &op)).unwrap_err();
    assert_eq!(e.status(), Some(500));

    let mut polls = 0;
    let done = loop {
        polls += 1;
        assert!(polls < 10, "never finished");
        let st = block_on(client.concat_status(&at, &op)).unwrap();
        assert!(!st.is_failed(), "{st:?}");
        if st.is_successful() {
            break st;
        }
        assert_eq!(st.status, "MEDIA_GENERATION_STATUS_ACTIVE");
    };
    assert_eq!(polls, 3);
    assert_eq!(done.encoded_video, None);
    let uri = done.output_uri.expect("outputUri");
    let id = uri
        .strip_prefix(&format!("{}/videos/", s.fake.public_base()))
        .and_then(|f| f.strip_suffix(".mp4"))
        .expect("the fake's concatenated video");
    let r = send(&s.fake, "GET", &uri, &[], b"");
    assert_eq!(r.status(), 200);
    assert_eq!(&r.body()[..], &fake_mp4(id)[..]);

    // An unknown operation is refused upstream.
    assert_eq!(
        block_on(client.concat_status(&at, "concat-unknown"))
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[test]
fn failed_and_error_statuses() {
    let s = Session::new();
    s.fake.set_video_polls(0, 1);
    s.fake.fail_next_video(3, "Prompt blocked");
    s.fake
        .error_status_next_video("MEDIA_GENERATION_STATUS_ERROR_UNSAFE_GENERATION");
    let failed = s.submit("batchAsyncGenerateVideoText", t2v("x"));
    let errored = s.submit("batchAsyncGenerateVideoText", t2v("y"));
    let ok = s.submit("batchAsyncGenerateVideoText", t2v("z"));

    let (b, n) = s.poll_to_end(&failed);
    assert_eq!(n, 2);
    assert_eq!(
        b["operations"][0]["status"],
        "MEDIA_GENERATION_STATUS_FAILED"
    );
    assert_eq!(
        b["operations"][0]["operation"]["error"],
        json!({"code": 3, "message": "Prompt blocked"})
    );
    assert_eq!(
        b["media"][0]["mediaMetadata"]["mediaStatus"]["error"]["message"],
        "Prompt blocked"
    );
    assert!(b["operations"][0]["operation"].get("metadata").is_none());

    let (b, _) = s.poll_to_end(&errored);
    assert_eq!(
        b["operations"][0]["status"],
        "MEDIA_GENERATION_STATUS_ERROR_UNSAFE_GENERATION"
    );
    assert!(b["operations"][0]["operation"].get("error").is_none());
    // Neither has a URL.
    assert_eq!(s.redirect(&failed).status(), 404);

    let (b, _) = s.poll_to_end(&ok);
    assert_eq!(
        b["operations"][0]["status"],
        "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    );
}

#[test]
fn empty_redirect_falls_back_to_encoded_video() {
    let s = Session::new();
    let name = s.finished_video();
    s.fake.set_video_redirect(VideoRedirect::Empty);
    let r = s.redirect(&name);
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "");
    assert_eq!(body(&r)["url"], "");
    let r = s.media_bytes(&name);
    assert_eq!(r.status(), 200);
    let b = body(&r);
    assert_eq!(b["name"], name.as_str());
    assert_eq!(b["video"]["aspectRatio"], "VIDEO_ASPECT_RATIO_LANDSCAPE");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["video"]["encodedVideo"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, fake_mp4(&name));

    s.fake.set_video_redirect(VideoRedirect::Lost);
    assert!(body(&s.media_bytes(&name))["video"]
        .get("encodedVideo")
        .is_none());
    // media-bytes wants the AT.
    let r = send(
        &s.fake,
        "GET",
        &format!("{}/media/{name}", s.fake.api_base()),
        &[],
        b"",
    );
    assert_eq!(r.status(), 401);
}

#[test]
fn video_captcha_rules() {
    let s = Session::new();
    let token = solve_video(&s.fake, &s.pid);
    assert_eq!(
        s.submit_with("batchAsyncGenerateVideoText", &token, t2v("a"))
            .status(),
        200
    );
    let r = s.submit_with("batchAsyncGenerateVideoText", &token, t2v("a"));
    assert_eq!(r.status(), 403);
    assert_eq!(
        body(&r)["error"]["details"][0]["reason"],
        "PUBLIC_ERROR_UNUSUAL_ACTIVITY"
    );
    assert!(s.fake.rejections().last().unwrap().contains("already used"));

    // A token solved for IMAGE_GENERATION is refused.
    let (image_token, _) = super::tests::solve(&s.fake, &s.pid);
    let r = s.submit_with("batchAsyncGenerateVideoText", &image_token, t2v("a"));
    assert_eq!(r.status(), 403);
    assert!(s
        .fake
        .rejections()
        .last()
        .unwrap()
        .contains("instead of VIDEO_GENERATION"));

    // A malformed body burns the token and answers 400.
    let token = solve_video(&s.fake, &s.pid);
    let mut bad = t2v("a");
    bad.as_object_mut().unwrap().remove("textInput");
    let r = s.submit_with("batchAsyncGenerateVideoText", &token, bad);
    assert_eq!(r.status(), 400);
    assert_eq!(body(&r)["error"]["status"], "INVALID_ARGUMENT");
}

#[test]
fn faults_warm_up_and_control_api() {
    let s = Session::new();
    s.fake
        .inject(Endpoint::CheckVideoStatus, Fault::internal(), 1);
    s.fake
        .inject(Endpoint::GenerateVideoText, Fault::quota(), 1);
    let token = solve_video(&s.fake, &s.pid);
    assert_eq!(
        s.submit_with("batchAsyncGenerateVideoText", &token, t2v("a"))
            .status(),
        429
    );
    let name = s.submit("batchAsyncGenerateVideoText", t2v("a"));
    let auth = format!("Bearer {}", s.at);
    let r = post_json(
        &s.fake,
        &format!(
            "{}/video:batchCheckAsyncVideoGenerationStatus",
            s.fake.api_base()
        ),
        &[("authorization", &auth)],
        &json!({"media": [{"name": name, "projectId": s.pid}]}),
    );
    assert_eq!(r.status(), 500);

    let labs = s.fake.labs_base();
    let c = cookie(ST);
    for path in [
        "general.fetchUserPreferences",
        "videoFx.getFlowAppConfig",
        "videoFx.getUserSettings",
    ] {
        let r = send(
            &s.fake,
            "GET",
            &format!("{labs}/trpc/{path}?input=x"),
            &[("cookie", &c)],
            b"",
        );
        assert_eq!((r.status().as_u16(), body(&r)), (200, json!({})));
    }
    let r = post_json(
        &s.fake,
        &format!("{labs}/trpc/general.submitBatchLog"),
        &[],
        &json!({}),
    );
    assert_eq!(r.status(), 200);
    let r = post_json(
        &s.fake,
        &format!("{}:checkAppAvailability", s.fake.api_base()),
        &[],
        &json!({"clientContext": {"tool": "PINHOLE"}}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(s.fake.requests_to(Endpoint::WarmUp).len(), 5);

    let control = |path: &str, v: Value| {
        post_json(
            &s.fake,
            &format!("{}/_fake/{path}", s.fake.public_base()),
            &[],
            &v,
        )
    };
    let r = control(
        "video",
        json!({"pending_polls": 0, "active_polls": 0, "redirect": "empty", "shape": "workflows",
               "fail_next": {"code": 5, "message": "nope"}}),
    );
    assert_eq!(r.status(), 200, "{}", body(&r));
    let r = control(
        "faults",
        json!({"endpoint": "media_url_redirect", "status": 503}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(control("video", json!({"redirect": "maybe"})).status(), 400);
    let token = solve_video(&s.fake, &s.pid);
    let b = body(&s.submit_with("batchAsyncGenerateVideoText", &token, t2v("a")));
    let failed = b["media"][0]["name"].as_str().unwrap().to_owned();
    let p = s.poll(&failed);
    assert_eq!(
        p["media"][0]["mediaMetadata"]["mediaStatus"]["mediaGenerationStatus"],
        "MEDIA_GENERATION_STATUS_FAILED"
    );
    assert_eq!(s.redirect(&name).status(), 503);
}

#[test]
fn classify_video_paths() {
    use http::Method;
    let p = Method::POST;
    let g = Method::GET;
    let c = super::routes::classify;
    assert_eq!(
        c(&p, "/v1/video:batchAsyncGenerateVideoText"),
        Endpoint::GenerateVideoText
    );
    assert_eq!(
        c(&p, "/v1/video:batchAsyncGenerateVideoStartAndEndImage"),
        Endpoint::GenerateVideoStartEndImage
    );
    assert_eq!(c(&p, "/v1/video:somethingElse"), Endpoint::Unknown);
    assert_eq!(c(&p, "/v1:runVideoFxConcatenation"), Endpoint::Concatenate);
    assert_eq!(
        c(&p, "/v1:runVideoFxCheckConcatenationStatus"),
        Endpoint::ConcatenationStatus
    );
    assert_eq!(c(&g, "/v1/media/abc"), Endpoint::MediaBytes);
    assert_eq!(c(&g, "/videos/abc.mp4"), Endpoint::VideoFile);
    assert_eq!(
        c(&g, "/fx/api/trpc/media.getMediaUrlRedirect"),
        Endpoint::MediaUrlRedirect
    );
    assert_eq!(c(&p, "/v1/credits"), Endpoint::Unknown);
}
