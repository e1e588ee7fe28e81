//! The video pipeline against FakeFlow: every kind, the polling limits and the URL paths.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use flow2api_sdk::captcha::{YesCaptcha, YesCaptchaConfig};
use flow2api_sdk::generate::video::{PollSettings, VideoRequest};
use flow2api_sdk::generate::{GenerateError, Generator, Progress};
use flow2api_sdk::memory::{MemoryStorage, StorageMediaStore};
use flow2api_sdk::models::find_video;
use flow2api_sdk::seams::{Bytes, MediaStore, SlotKind};
use flow2api_sdk::testing::{Endpoint, VideoKind, VideoRedirect, FIFE_PNG};
use flow2api_sdk::FlowClient;

struct Video {
    h: Harness,
    generator: Generator,
    media: Arc<StorageMediaStore>,
}

async fn setup() -> Video {
    let h = harness().await;
    let flow = FlowClient::new(
        Arc::new(h.fake.clone()),
        h.clock.clone(),
        &h.fake.labs_base(),
        &h.fake.api_base(),
    );
    let captcha = YesCaptcha::new(
        Arc::new(h.fake.clone()),
        h.clock.clone(),
        YesCaptchaConfig {
            base_url: h.fake.yescaptcha_base(),
            api_key: Some(flow2api_sdk::Secret::new("fake-yescaptcha-key")),
            task_type: "RecaptchaV3TaskProxylessM1S9".into(),
            poll_interval: Duration::from_millis(10),
            max_polls: 40,
        },
    );
    let media = Arc::new(StorageMediaStore::new(
        Arc::new(MemoryStorage::new(h.clock.clone())),
        None,
    ));
    let generator = Generator::new(flow, Arc::new(captcha), media.clone(), 3, 6);
    Video {
        h,
        generator,
        media,
    }
}

fn poll() -> PollSettings {
    PollSettings {
        interval: Duration::from_secs(3),
        ..PollSettings::default()
    }
}

impl Video {
    async fn run(&self, model: &str, images: usize) -> Result<String, GenerateError> {
        let model = find_video(model).unwrap();
        let lease = self
            .h
            .app
            .pool()
            .acquire(SlotKind::Video, model.min_tier(), model.id, &[])
            .await
            .unwrap();
        let request = VideoRequest {
            model,
            prompt: "a cat chasing butterflies".into(),
            images: vec![Bytes::from_static(FIFE_PNG); images],
            extend_source: None,
        };
        let (progress, _lines) = Progress::channel();
        let out = self
            .generator
            .generate_video(&lease, &request, "http://gw.test", poll(), &progress)
            .await;
        lease.release().await;
        out.map(|o| o.url)
    }
}

#[tokio::test(start_paused = true)]
async fn text_to_video_polls_then_resolves_the_redirect() {
    let v = setup().await;
    v.h.fake.set_video_polls(3, 4);
    let url = v.run("veo_3_1_t2v_fast_portrait", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].kind, VideoKind::Text);
    // An Ultra account is moved to the ultra key (§2.1).
    assert_eq!(videos[0].model_key, "veo_3_1_t2v_fast_portrait_ultra");
    assert_eq!(videos[0].aspect_ratio, "VIDEO_ASPECT_RATIO_PORTRAIT");
    assert_eq!(url, v.h.fake.video_url(&videos[0].name));
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 8);
    let submit = &v.h.fake.requests_to(Endpoint::GenerateVideoText)[0];
    let body = submit.json.as_ref().unwrap();
    assert_eq!(body["clientContext"]["userPaygateTier"], "PAYGATE_TIER_TWO");
    assert!(submit.header("user-agent").unwrap().contains("Chrome/147"));
}

#[tokio::test(start_paused = true)]
async fn image_to_video_with_one_and_two_frames_and_references() {
    let v = setup().await;
    v.run("veo_3_1_i2v_s_fast_fl", 2).await.unwrap();
    v.run("veo_3_1_i2v_s_fast_fl", 1).await.unwrap();
    v.run("veo_3_1_r2v_fast", 3).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(videos[0].kind, VideoKind::StartEndImage);
    assert_eq!(videos[0].sources.len(), 2);
    assert_eq!(videos[1].kind, VideoKind::StartImage);
    assert!(
        !videos[1].model_key.contains("_fl"),
        "{}",
        videos[1].model_key
    );
    assert_eq!(videos[2].kind, VideoKind::ReferenceImages);
    assert_eq!(videos[2].sources.len(), 3);
    assert_eq!(v.h.fake.requests_to(Endpoint::UploadImage).len(), 6);
}

#[tokio::test(start_paused = true)]
async fn upsample_models_really_upsample() {
    let v = setup().await;
    let url = v.run("veo_3_1_t2v_1080p", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(videos.len(), 2, "the generation and its upsample");
    assert_eq!(videos[1].kind, VideoKind::Upsample);
    assert_eq!(
        videos[1].resolution.as_deref(),
        Some("VIDEO_RESOLUTION_1080P")
    );
    assert_eq!(videos[1].sources, vec![videos[0].name.clone()]);
    assert_eq!(
        url,
        v.h.fake.video_url(&videos[1].name),
        "the upsampled video is delivered"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_and_limits() {
    let v = setup().await;
    v.h.fake.fail_next_video(13, "boom");
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert!(
        matches!(&e, GenerateError::VideoFailed(m) if m.contains("boom")),
        "{e}"
    );

    v.h.fake
        .error_status_next_video("MEDIA_GENERATION_STATUS_ERROR_UNKNOWN");
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert!(
        matches!(&e, GenerateError::VideoFailed(m) if m.contains("ERROR_UNKNOWN")),
        "{e}"
    );

    // ACTIVE for too long is abandoned; PENDING is not.
    v.h.fake.set_video_polls(0, 100);
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert!(matches!(e, GenerateError::VideoTimeout(_)), "{e}");
    v.h.fake.set_video_polls(150, 0);
    v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();

    // Status calls failing three times in a row end it.
    v.h.fake.set_video_polls(1, 1);
    v.h.fake.inject(
        Endpoint::CheckVideoStatus,
        flow2api_sdk::testing::Fault::internal(),
        3,
    );
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert!(
        matches!(&e, GenerateError::VideoFailed(m) if m.contains("kept failing")),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_redirect_falls_back_to_the_bytes() {
    let v = setup().await;
    v.h.fake.set_video_redirect(VideoRedirect::Empty);
    // First the `fifeUrl` the status carried.
    let url = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    assert!(url.ends_with(".mp4?token=fake-fife"), "{url}");
    assert!(v.h.fake.requests_to(Endpoint::MediaBytes).is_empty());
    // Without one, the bytes.
    v.h.fake.set_video_fife(false);
    let url = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    let id = url.strip_prefix("http://gw.test/media/").expect(&url);
    let media = v.media.get(id).await.unwrap().unwrap();
    assert_eq!(media.content_type, "video/mp4");
    assert_eq!(&media.bytes[4..8], b"ftyp");
    assert_eq!(v.h.fake.requests_to(Endpoint::MediaBytes).len(), 1);

    v.h.fake.set_video_redirect(VideoRedirect::Lost);
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert!(matches!(e, GenerateError::VideoFailed(_)), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_job_survives_being_stored_between_steps() {
    use flow2api_sdk::generate::video::{JobContext, VideoJob};
    let v = setup().await;
    v.h.fake.set_video_polls(2, 2);
    let model = find_video("veo_3_1_t2v_1080p").unwrap();
    let lease =
        v.h.app
            .pool()
            .acquire(SlotKind::Video, model.min_tier(), model.id, &[])
            .await
            .unwrap();
    let request = VideoRequest {
        model,
        prompt: "waves".into(),
        images: vec![],
        extend_source: None,
    };
    let progress = Progress::discard();
    let ctx = JobContext::from(&lease);
    let job = v
        .generator
        .start_video_job(ctx, &request, &progress)
        .await
        .unwrap();
    // As a Durable Object would: the record goes to storage after every step.
    let mut stored = serde_json::to_string(&job).unwrap();
    let mut steps = 0;
    loop {
        let mut job: VideoJob = serde_json::from_str(&stored).unwrap();
        let next = v
            .generator
            .advance_video_job(ctx, &mut job, "http://gw.test", poll(), &progress)
            .await
            .unwrap();
        stored = serde_json::to_string(&job).unwrap();
        steps += 1;
        match next {
            Some(wait) => tokio::time::sleep(wait).await,
            None => break,
        }
    }
    let job: VideoJob = serde_json::from_str(&stored).unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(
        job.result(),
        Some(v.h.fake.video_url(&videos[1].name).as_str())
    );
    assert_eq!(job.progress, 100);
    assert!(steps >= 10, "one bounded step per call: {steps}");
    lease.release().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_upsample_returns_the_original_video() {
    let v = setup().await;
    v.h.fake.inject(
        Endpoint::UpsampleVideo,
        flow2api_sdk::testing::Fault::status(400, None, "no"),
        1,
    );
    let url = v.run("veo_3_1_t2v_4k", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(url, v.h.fake.video_url(&videos[0].name));
}
