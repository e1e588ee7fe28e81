//! The video pipeline against FakeFlow: every kind, the polling limits and the URL paths.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use flow2api_sdk::captcha::{YesCaptcha, YesCaptchaConfig};
use flow2api_sdk::flow::Blame;
use flow2api_sdk::generate::video::{PollSettings, VideoRequest};
use flow2api_sdk::generate::{GenerateError, Generator, Progress};
use flow2api_sdk::memory::{MemoryStorage, StorageMediaStore};
use flow2api_sdk::models::{find_video, Tier};
use flow2api_sdk::pool::{Lease, NoAccount, PoolError};
use flow2api_sdk::seams::{Bytes, MediaStore, SlotKind};
use flow2api_sdk::testing::{Endpoint, Fault, VideoKind, VideoRedirect, VideoShape, FIFE_PNG};
use flow2api_sdk::FlowClient;
use futures::StreamExt as _;

const LANDSCAPE: &str = "VIDEO_ASPECT_RATIO_LANDSCAPE";
const PORTRAIT: &str = "VIDEO_ASPECT_RATIO_PORTRAIT";

struct Video {
    h: Harness,
    generator: Generator,
    media: Arc<StorageMediaStore>,
}

/// The pipeline on the harness's Ultra account.
async fn setup() -> Video {
    setup_on(harness().await)
}

/// The pipeline on one account of `tier` (`PAYGATE_TIER_…`).
async fn setup_tier(tier: &str) -> Video {
    setup_on(harness_with(&[], Some(tier)).await)
}

fn setup_on(h: Harness) -> Video {
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
            provider: flow2api_sdk::captcha::Provider::YesCaptcha,
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
        self.run_with(model, images, poll()).await
    }

    /// A whole job on a lease taken for the model's own minimum tier.
    async fn run_with(
        &self,
        model: &str,
        images: usize,
        poll: PollSettings,
    ) -> Result<String, GenerateError> {
        let m = find_video(model).unwrap();
        let lease = self.lease(m.min_tier(), m.id).await.unwrap();
        let (out, _lines) = self.generate(&lease, model, images, poll).await;
        lease.release().await;
        out
    }

    /// A video slot on an account of at least `tier`.
    async fn lease(&self, tier: Tier, model: &str) -> Result<Lease, PoolError> {
        self.h
            .app
            .pool()
            .acquire(SlotKind::Video, tier, model, &[])
            .await
    }

    /// A whole job on `lease` (whatever tier it was taken for); its URL and progress lines.
    async fn generate(
        &self,
        lease: &Lease,
        model: &str,
        images: usize,
        poll: PollSettings,
    ) -> (Result<String, GenerateError>, Vec<String>) {
        let request = VideoRequest {
            model: find_video(model).unwrap(),
            prompt: "a cat chasing butterflies".into(),
            images: vec![Bytes::from_static(FIFE_PNG); images],
            extend_source: None,
        };
        let (progress, lines) = Progress::channel();
        let out = self
            .generator
            .generate_video(lease, &request, "http://gw.test", poll, &progress)
            .await;
        drop(progress);
        (out.map(|o| o.url), lines.collect().await)
    }
}

/// `(kind, model key, aspect, sources)` of every operation the fake saw, oldest first.
fn submits(v: &Video) -> Vec<(VideoKind, String, String, usize)> {
    v.h.fake
        .videos()
        .into_iter()
        .map(|x| (x.kind, x.model_key, x.aspect_ratio, x.sources.len()))
        .collect()
}

fn sub(
    kind: VideoKind,
    key: &str,
    aspect: &str,
    sources: usize,
) -> (VideoKind, String, String, usize) {
    (kind, key.to_owned(), aspect.to_owned(), sources)
}

#[tokio::test(start_paused = true)]
async fn text_to_video_polls_then_resolves_the_redirect() {
    let v = setup().await;
    v.h.fake.set_video_polls(3, 4);
    let url = v.run("veo_3_1_t2v_fast_portrait", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].kind, VideoKind::Text);
    // An Ultra account is moved to the ultra key (`docs/upstream.md#models`).
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
    let media = v.media.get(id, None).await.unwrap().found().unwrap();
    assert_eq!(media.content_type, "video/mp4");
    let bytes = media.collect().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
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

#[tokio::test(start_paused = true)]
async fn lite_models_use_their_own_keys_and_endpoints() {
    let v = setup().await;
    v.run("veo_3_1_t2v_lite_portrait", 0).await.unwrap();
    v.run("veo_3_1_i2v_lite_landscape", 1).await.unwrap();
    v.run("veo_3_1_interpolation_lite_landscape", 2)
        .await
        .unwrap();
    // The 4s/6s lite rows have keys of another family (`docs/upstream.md#models`).
    v.run("veo_3_1_i2v_lite_4s_portrait", 1).await.unwrap();
    v.run("veo_3_1_interpolation_lite_6s_portrait", 2)
        .await
        .unwrap();
    // Lite models are never moved to an ultra key, even on this Ultra account.
    assert_eq!(
        submits(&v),
        [
            sub(VideoKind::Text, "veo_3_1_t2v_lite", PORTRAIT, 0),
            sub(VideoKind::StartImage, "veo_3_1_i2v_lite", LANDSCAPE, 1),
            sub(
                VideoKind::StartEndImage,
                "veo_3_1_interpolation_lite",
                LANDSCAPE,
                2
            ),
            sub(VideoKind::StartImage, "veo_3_1_i2v_s_lite_4s", PORTRAIT, 1),
            sub(
                VideoKind::StartEndImage,
                "veo_3_1_i2v_s_lite_6s_fl",
                PORTRAIT,
                2
            ),
        ]
    );
    // Frames are the uploads, in order: start, then end.
    let uploads: Vec<String> = v.h.fake.uploads().into_iter().map(|u| u.media_id).collect();
    let sources: Vec<String> =
        v.h.fake
            .videos()
            .into_iter()
            .flat_map(|x| x.sources)
            .collect();
    assert_eq!(sources, uploads);
    let f = &v.h.fake;
    assert_eq!(f.requests_to(Endpoint::GenerateVideoText).len(), 1);
    assert_eq!(f.requests_to(Endpoint::GenerateVideoStartImage).len(), 2);
    assert_eq!(f.requests_to(Endpoint::GenerateVideoStartEndImage).len(), 2);
    let interp = f.requests_to(Endpoint::GenerateVideoStartEndImage)[0]
        .json
        .clone()
        .unwrap();
    let r = &interp["requests"][0];
    assert_eq!(r["startImage"]["mediaId"], uploads[1].as_str());
    assert_eq!(r["endImage"]["mediaId"], uploads[2].as_str());
}

#[tokio::test(start_paused = true)]
async fn four_k_models_upsample_to_4k() {
    let v = setup().await;
    let url = v.run("veo_3_1_t2v_fast_portrait_4k", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(
        submits(&v),
        [
            sub(
                VideoKind::Text,
                "veo_3_1_t2v_fast_portrait_ultra",
                PORTRAIT,
                0
            ),
            sub(VideoKind::Upsample, "veo_3_1_upsampler_4k", PORTRAIT, 1),
        ]
    );
    assert_eq!(videos[1].resolution.as_deref(), Some("VIDEO_RESOLUTION_4K"));
    assert_eq!(videos[1].sources, vec![videos[0].name.clone()]);
    assert_eq!(
        url,
        v.h.fake.video_url(&videos[1].name),
        "the 4K video is delivered"
    );
    let upsample = v.h.fake.requests_to(Endpoint::UpsampleVideo);
    assert_eq!(upsample.len(), 1);
    let body = upsample[0].json.as_ref().unwrap();
    assert!(body["requests"][0].get("textInput").is_none(), "{body}");
    assert_eq!(body["clientContext"]["userPaygateTier"], "PAYGATE_TIER_TWO");

    // An i2v 4K id with both frames: video-submit-start-end-image with the `_fl` key, then the 4K
    // upsample of it.
    let url = v.run("veo_3_1_i2v_s_4k", 2).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(
        submits(&v)[2..],
        [
            sub(VideoKind::StartEndImage, "veo_3_1_i2v_s_fl", LANDSCAPE, 2),
            sub(VideoKind::Upsample, "veo_3_1_upsampler_4k", LANDSCAPE, 1),
        ]
    );
    assert_eq!(videos[3].resolution.as_deref(), Some("VIDEO_RESOLUTION_4K"));
    assert_eq!(videos[3].sources, vec![videos[2].name.clone()]);
    assert_eq!(url, v.h.fake.video_url(&videos[3].name));
}

#[tokio::test(start_paused = true)]
async fn omni_uses_text_without_images_and_reference_images_with_them() {
    let v = setup().await;
    v.run("omni", 0).await.unwrap();
    v.run("omni_portrait", 2).await.unwrap();
    v.run("omni", 3).await.unwrap();
    // `abra_*` keys are never upgraded, even on this Ultra account.
    assert_eq!(
        submits(&v),
        [
            sub(VideoKind::Text, "abra_t2v_8s", LANDSCAPE, 0),
            sub(VideoKind::ReferenceImages, "abra_r2v_8s", PORTRAIT, 2),
            sub(VideoKind::ReferenceImages, "abra_r2v_8s", LANDSCAPE, 3),
        ]
    );
    let f = &v.h.fake;
    assert_eq!(f.requests_to(Endpoint::GenerateVideoText).len(), 1);
    let refs = f.requests_to(Endpoint::GenerateVideoReferenceImages);
    assert_eq!(refs.len(), 2);
    let items = refs[1].json.as_ref().unwrap()["requests"][0]["referenceImages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 3);
    assert!(items
        .iter()
        .all(|i| i["imageUsageType"] == "IMAGE_USAGE_TYPE_ASSET"));
    assert_eq!(f.uploads().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_workflows_response_shape_polls_and_resolves_the_same() {
    let v = setup().await;
    v.h.fake.set_video_shape(VideoShape::Workflows);
    v.h.fake.set_video_polls(2, 3);
    let url = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(url, v.h.fake.video_url(&videos[0].name));
    // PENDING twice, ACTIVE three times, then SUCCESSFUL.
    let polls = v.h.fake.requests_to(Endpoint::CheckVideoStatus);
    assert_eq!(polls.len(), 6);
    // The poll names the media and its project, taken from the `media` items.
    let body = polls[0].json.as_ref().unwrap();
    assert_eq!(body["media"][0]["name"], videos[0].name.as_str());
    assert_eq!(body["media"][0]["projectId"], videos[0].project_id.as_str());

    v.h.fake.clear_requests();
    let url = v.run("veo_3_1_i2v_s_fast_fl", 1).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(
        submits(&v)[1],
        sub(
            VideoKind::StartImage,
            "veo_3_1_i2v_s_fast_ultra",
            LANDSCAPE,
            1
        )
    );
    assert_eq!(url, v.h.fake.video_url(&videos[1].name));
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 6);

    // The `fifeUrl` of a `media` item is the fallback for an empty redirect, too.
    v.h.fake.set_video_polls(1, 1);
    v.h.fake.set_video_redirect(VideoRedirect::Empty);
    let url = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(
        url,
        format!("{}?token=fake-fife", v.h.fake.video_url(&videos[2].name))
    );
    assert!(v.h.fake.requests_to(Endpoint::MediaBytes).is_empty());

    // And an upsample: the aspect comes from the media item.
    v.h.fake.set_video_redirect(VideoRedirect::Ok);
    let url = v.run("veo_3_1_t2v_portrait_1080p", 0).await.unwrap();
    let videos = v.h.fake.videos();
    assert_eq!(
        submits(&v)[3..],
        [
            sub(VideoKind::Text, "veo_3_1_t2v_portrait", PORTRAIT, 0),
            sub(VideoKind::Upsample, "veo_3_1_upsampler_1080p", PORTRAIT, 1),
        ]
    );
    assert_eq!(url, v.h.fake.video_url(&videos[4].name));
}

#[tokio::test(start_paused = true)]
async fn tier_keys_upgrade_on_ultra_and_downgrade_on_pro() {
    // Ultra: keys with an ultra sibling are upgraded; ultra keys and keys without a sibling
    // are kept.
    let v = setup().await;
    v.run("veo_3_1_r2v_fast_portrait", 2).await.unwrap();
    v.run("veo_3_1_t2v_fast_ultra", 0).await.unwrap();
    v.run("veo_3_1_t2v_landscape", 0).await.unwrap();
    assert_eq!(
        submits(&v),
        [
            sub(
                VideoKind::ReferenceImages,
                "veo_3_1_r2v_fast_portrait_ultra",
                PORTRAIT,
                2
            ),
            sub(VideoKind::Text, "veo_3_1_t2v_fast_ultra", LANDSCAPE, 0),
            sub(VideoKind::Text, "veo_3_1_t2v", LANDSCAPE, 0),
        ]
    );

    // Pro: Free and `_1080p` ids run, keys as configured (no upgrade).
    let p = setup_tier("PAYGATE_TIER_ONE").await;
    p.run("veo_3_1_t2v_fast_1080p", 0).await.unwrap();
    assert_eq!(
        submits(&p),
        [
            sub(VideoKind::Text, "veo_3_1_t2v_fast", LANDSCAPE, 0),
            sub(VideoKind::Upsample, "veo_3_1_upsampler_1080p", LANDSCAPE, 1),
        ]
    );
    let body = p.h.fake.requests_to(Endpoint::GenerateVideoText)[0]
        .json
        .clone()
        .unwrap();
    assert_eq!(body["clientContext"]["userPaygateTier"], "PAYGATE_TIER_ONE");

    // `_ultra` and `_4k` ids need Ultra: a Pro-only pool refuses them.
    for id in ["veo_3_1_t2v_fast_ultra", "veo_3_1_t2v_fast_4k"] {
        let m = find_video(id).unwrap();
        assert_eq!(m.min_tier(), Tier::Ultra);
        match p.lease(m.min_tier(), m.id).await {
            Err(PoolError::Unavailable(NoAccount::TierTooLow { needed, model })) => {
                assert_eq!((needed, model.as_str()), (Tier::Ultra, id));
            }
            other => panic!("{id}: {other:?}"),
        }
    }

    // So the Pro downgrade (`docs/upstream.md#models`) is only reached past the pool's check: a
    // lease taken at Pro, used for an ultra id.
    let id = "veo_3_1_i2v_s_fast_portrait_ultra_fl";
    let lease = p.lease(Tier::Pro, id).await.unwrap();
    let (two, lines) = p.generate(&lease, id, 2, poll()).await;
    two.unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("TIER_ONE") && l.contains("veo_3_1_i2v_s_fast_portrait_fl")),
        "{lines:?}"
    );
    let (one, _) = p
        .generate(&lease, "veo_3_1_i2v_s_fast_ultra_fl", 1, poll())
        .await;
    one.unwrap();
    let (refs, _) = p
        .generate(&lease, "veo_3_1_r2v_fast_ultra", 2, poll())
        .await;
    refs.unwrap();
    lease.release().await;
    assert_eq!(
        submits(&p)[2..],
        [
            sub(
                VideoKind::StartEndImage,
                "veo_3_1_i2v_s_fast_portrait_fl",
                PORTRAIT,
                2
            ),
            sub(VideoKind::StartImage, "veo_3_1_i2v_s_fast", LANDSCAPE, 1),
            sub(
                VideoKind::ReferenceImages,
                "veo_3_1_r2v_fast_landscape",
                LANDSCAPE,
                2
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_poll_count_limit_ends_a_pending_job() {
    let v = setup().await;
    let small = PollSettings {
        interval: Duration::from_secs(3),
        max_attempts: 5,
        ..PollSettings::default()
    };
    // PENDING is never abandoned by the ACTIVE limit, but the poll count runs out.
    v.h.fake.set_video_polls(1000, 0);
    let start = tokio::time::Instant::now();
    let e = v
        .run_with("veo_3_1_t2v_fast_landscape", 0, small)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GenerateError::VideoTimeout(m) if m.contains("5 polls")),
        "{e}"
    );
    assert_eq!(e.blame(), Blame::Client);
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 5);
    assert!(start.elapsed() >= Duration::from_secs(15), "sleeps first");

    // Models with an upsample step get three times the polls.
    v.h.fake.clear_requests();
    let e = v.run_with("veo_3_1_t2v_1080p", 0, small).await.unwrap_err();
    assert!(
        matches!(&e, GenerateError::VideoTimeout(m) if m.contains("15 polls")),
        "{e}"
    );
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 15);
    assert!(v.h.fake.requests_to(Endpoint::UpsampleVideo).is_empty());

    // Finishing on the last allowed poll is a success.
    v.h.fake.clear_requests();
    v.h.fake.set_video_polls(4, 0);
    v.run_with("veo_3_1_t2v_fast_landscape", 0, small)
        .await
        .unwrap();
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 5);
}

#[tokio::test(start_paused = true)]
async fn slow_status_calls_within_and_beyond_the_poll_timeout() {
    let v = setup().await;
    v.h.fake.set_video_polls(1, 1);
    // 44 s is slow but inside the 45 s video-status timeout: the answer is used.
    v.h.fake.inject(
        Endpoint::CheckVideoStatus,
        Fault::Latency(Duration::from_secs(44)),
        1,
    );
    let start = tokio::time::Instant::now();
    v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(44));
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 3);

    // 46 s times out: a poll error. Two in a row, then a good poll, and the job goes on.
    v.h.fake.clear_requests();
    v.h.fake.inject(
        Endpoint::CheckVideoStatus,
        Fault::Latency(Duration::from_secs(46)),
        2,
    );
    let start = tokio::time::Instant::now();
    v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(2 * 45));
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 5);

    // Three in a row end the job.
    v.h.fake.clear_requests();
    v.h.fake.inject(
        Endpoint::CheckVideoStatus,
        Fault::Latency(Duration::from_secs(46)),
        3,
    );
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert!(
        matches!(&e, GenerateError::VideoFailed(m)
            if m.contains("kept failing") && m.contains("no answer within 45 s")),
        "{e}"
    );
    assert_eq!(v.h.fake.requests_to(Endpoint::CheckVideoStatus).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn captcha_failures_on_the_video_submit() {
    let v = setup().await;
    let token = |r: &flow2api_sdk::testing::RecordedRequest| {
        r.json.as_ref().unwrap()["clientContext"]["recaptchaContext"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // The solver fails once (its task never becomes ready): a new task, then the submit.
    v.h.fake
        .inject(Endpoint::CreateTask, Fault::CaptchaUnsolvable, 1);
    v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    let tasks = v.h.fake.requests_to(Endpoint::CreateTask);
    assert_eq!(tasks.len(), 2);
    assert!(tasks
        .iter()
        .all(|t| t.json.as_ref().unwrap()["task"]["pageAction"] == "VIDEO_GENERATION"));
    assert_eq!(v.h.fake.requests_to(Endpoint::GenerateVideoText).len(), 1);

    // Google rejects the token once: the submit is retried with a new one.
    v.h.fake.clear_requests();
    v.h.fake
        .inject(Endpoint::GenerateVideoText, Fault::unusual_activity(), 1);
    v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    let sent = v.h.fake.requests_to(Endpoint::GenerateVideoText);
    assert_eq!(sent.len(), 2);
    assert_ne!(token(&sent[0]), token(&sent[1]));
    assert_eq!(v.h.fake.requests_to(Endpoint::CreateTask).len(), 2);
    assert_eq!(v.h.fake.videos().len(), 2, "one video per job");
    assert!(
        v.h.fake.rejections().is_empty(),
        "{:?}",
        v.h.fake.rejections()
    );

    // The captcha budget (6) runs out on the solver: a captcha error, not the account's.
    v.h.fake.clear_requests();
    v.h.fake
        .inject(Endpoint::CreateTask, Fault::CaptchaUnsolvable, 6);
    let m = find_video("veo_3_1_t2v_fast_landscape").unwrap();
    let lease = v.lease(m.min_tier(), m.id).await.unwrap();
    let (out, _) = v.generate(&lease, m.id, 0, poll()).await;
    let e = out.unwrap_err();
    assert!(matches!(e, GenerateError::Captcha(_)), "{e}");
    assert_eq!(e.blame(), Blame::Captcha);
    assert!(!e.blame().try_another_account());
    assert_eq!(v.h.fake.requests_to(Endpoint::CreateTask).len(), 6);
    assert!(v.h.fake.requests_to(Endpoint::GenerateVideoText).is_empty());
    v.h.app
        .pool()
        .finish(lease, Some((e.blame(), e.to_string())))
        .await;
    let accounts = v.h.accounts().await;
    let alice = &accounts["alice@example.com"];
    assert_eq!(alice["consecutive_error_count"], 0, "{alice}");
    assert_eq!(alice["is_active"], true, "{alice}");
    assert!(alice["cooldown_until"].is_null(), "{alice}");

    // Rejected tokens spend the same budget; the error is Google's, blamed on the captcha.
    v.h.fake.clear_requests();
    v.h.fake
        .inject(Endpoint::GenerateVideoText, Fault::unusual_activity(), 6);
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    assert_eq!(e.blame(), Blame::Captcha, "{e}");
    assert!(
        e.to_string().contains("PUBLIC_ERROR_UNUSUAL_ACTIVITY"),
        "{e}"
    );
    assert_eq!(v.h.fake.requests_to(Endpoint::GenerateVideoText).len(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_lost_video_without_a_fife_url_names_both_failures() {
    let v = setup().await;
    v.h.fake.set_video_redirect(VideoRedirect::Lost);
    v.h.fake.set_video_fife(false);
    let e = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap_err();
    let GenerateError::VideoFailed(m) = &e else {
        panic!("{e}")
    };
    assert!(m.contains("an empty redirect"), "{m}");
    assert!(m.contains("bytes could not be read"), "{m}");
    assert!(m.contains("encodedVideo"), "{m}");
    assert_eq!(e.blame(), Blame::Client);
    assert_eq!(v.h.fake.requests_to(Endpoint::MediaUrlRedirect).len(), 1);
    assert_eq!(v.h.fake.requests_to(Endpoint::MediaBytes).len(), 1);

    // With a `fifeUrl` the same lost video is still delivered.
    v.h.fake.set_video_fife(true);
    let url = v.run("veo_3_1_t2v_fast_landscape", 0).await.unwrap();
    assert!(url.ends_with(".mp4?token=fake-fife"), "{url}");
}
