//! The video side of the fake: public types, the video state, the [`FakeFlow`] setters for it and
//! the MP4 the fake serves. The endpoints themselves are in `video_routes.rs`.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::FakeFlow;

/// Which submit endpoint created a video operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoKind {
    /// video-submit-text: text→video.
    Text,
    /// video-submit-start-image: first frame→video.
    StartImage,
    /// video-submit-start-end-image: first+last frame→video.
    StartEndImage,
    /// video-submit-reference-images: reference images→video.
    ReferenceImages,
    /// video-submit-extend: extend a generated video.
    Extend,
    /// video-submit-upsample: upsample a generated video.
    Upsample,
}

/// How a video operation ends once its PENDING and ACTIVE polls are over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoOutcome {
    /// `MEDIA_GENERATION_STATUS_SUCCESSFUL` with the video metadata.
    Successful,
    /// `MEDIA_GENERATION_STATUS_FAILED` with `operation.error` `{code, message}`.
    Failed {
        /// `error.code`.
        code: i64,
        /// `error.message`.
        message: String,
    },
    /// This status verbatim (e.g. `MEDIA_GENERATION_STATUS_ERROR_UNSAFE`), without error object.
    Status(String),
}

/// What media-url-redirect (and media-bytes) answer for a finished video.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoRedirect {
    /// media-url-redirect: 307 to `<base>/videos/<id>.mp4`. media-bytes answers the bytes.
    #[default]
    Ok,
    /// media-url-redirect: 307 with an empty `Location` (and `{"url":""}`). media-bytes answers the
    /// bytes.
    Empty,
    /// media-url-redirect as `Empty`, and media-bytes answers the video without `encodedVideo`.
    Lost,
}

/// The response shape of the video submits and of the poll (video-status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoShape {
    /// Legacy: submits answer `{"operations":[{"operation":{"name"},"sceneId","status"}],
    /// "remainingCredits"}`; polls answer `operations` (with `operation.metadata.video`,
    /// `operation.error`) **and** the `media` items.
    #[default]
    Operations,
    /// Media-centric: submits answer `{"remainingCredits","workflows":[…],"media":[…]}`; polls
    /// answer `{"media":[…]}` only.
    #[serde(alias = "media")]
    Workflows,
}

/// A video operation created through the video submits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FakeVideo {
    /// The operation name, which is also the media name (a UUID).
    pub name: String,
    /// The `sceneId` answered (a UUID).
    pub scene_id: String,
    /// The account's email.
    pub email: String,
    /// `clientContext.projectId`.
    pub project_id: String,
    /// The submit endpoint.
    pub kind: VideoKind,
    /// `requests[i].videoModelKey`.
    pub model_key: String,
    /// `requests[i].aspectRatio`.
    pub aspect_ratio: String,
    /// The `textInput.structuredPrompt.parts[].text`, concatenated (empty for upsamples).
    pub prompt: String,
    /// `seed`.
    pub seed: i64,
    /// `resolution`, for upsamples.
    pub resolution: Option<String>,
    /// The media the operation was made from: start (and end) image, reference images, or the
    /// source video of an extend / upsample.
    pub sources: Vec<String>,
    /// How many video-status polls have included it.
    pub polls: u32,
    /// PENDING polls before ACTIVE (copied from the config at submit time).
    pub pending_polls: u32,
    /// ACTIVE polls before the outcome.
    pub active_polls: u32,
    /// The outcome after those polls.
    pub outcome: VideoOutcome,
}

impl FakeVideo {
    /// The status the next (already counted) poll reports.
    pub(super) fn status(&self) -> &str {
        if self.polls <= self.pending_polls {
            "MEDIA_GENERATION_STATUS_PENDING"
        } else if self.polls <= self.pending_polls + self.active_polls {
            "MEDIA_GENERATION_STATUS_ACTIVE"
        } else {
            match &self.outcome {
                VideoOutcome::Successful => "MEDIA_GENERATION_STATUS_SUCCESSFUL",
                VideoOutcome::Failed { .. } => "MEDIA_GENERATION_STATUS_FAILED",
                VideoOutcome::Status(s) => s,
            }
        }
    }

    /// Whether it has been reported SUCCESSFUL.
    pub fn is_successful(&self) -> bool {
        self.status() == "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    }
}

/// A concatenation submitted through concat-submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Concatenation {
    pub(super) email: String,
    pub(super) inputs: Vec<String>,
    pub(super) polls: u32,
    pub(super) polls_needed: u32,
    /// The id of the concatenated video (served at `/videos/<id>.mp4`).
    pub(super) output: String,
}

/// Video settings and records, inside the fake's state.
#[derive(Debug, Clone)]
pub(super) struct VideoState {
    pub(super) pending_polls: u32,
    pub(super) active_polls: u32,
    pub(super) concat_polls: u32,
    pub(super) redirect: VideoRedirect,
    /// Whether finished videos carry a `fifeUrl` in video-status.
    pub(super) fife: bool,
    pub(super) shape: VideoShape,
    /// Outcomes for the next operations submitted, in order.
    pub(super) next_outcomes: VecDeque<VideoOutcome>,
    pub(super) videos: Vec<FakeVideo>,
    pub(super) concatenations: HashMap<String, Concatenation>,
}

impl Default for VideoState {
    fn default() -> Self {
        Self {
            pending_polls: 1,
            active_polls: 1,
            concat_polls: 1,
            redirect: VideoRedirect::Ok,
            fife: true,
            shape: VideoShape::Operations,
            next_outcomes: VecDeque::new(),
            videos: Vec::new(),
            concatenations: HashMap::new(),
        }
    }
}

impl VideoState {
    pub(super) fn video(&self, name: &str) -> Option<&FakeVideo> {
        self.videos.iter().find(|v| v.name == name)
    }

    /// Whether `id` names a finished video or concatenation output the fake serves.
    pub(super) fn serves(&self, id: &str) -> bool {
        self.video(id).is_some_and(FakeVideo::is_successful)
            || self.concatenations.values().any(|c| c.output == id)
    }
}

impl FakeFlow {
    /// Video operations submitted from now on report PENDING for `pending` polls, then ACTIVE for
    /// `active` polls, then their outcome (default 1 and 1).
    pub fn set_video_polls(&self, pending: u32, active: u32) {
        let mut st = self.lock();
        st.video.pending_polls = pending;
        st.video.active_polls = active;
    }

    /// concat-status reports the concatenation finished on its `polls`-th poll (default 1).
    pub fn set_concat_polls(&self, polls: u32) {
        self.lock().video.concat_polls = polls.max(1);
    }

    /// Whether video-status gives finished videos a `fifeUrl` (default true).
    pub fn set_video_fife(&self, fife: bool) {
        self.lock().video.fife = fife;
    }

    /// What media-url-redirect and media-bytes answer (default [`VideoRedirect::Ok`]).
    pub fn set_video_redirect(&self, redirect: VideoRedirect) {
        self.lock().video.redirect = redirect;
    }

    /// The response shape of the video submits and video-status (default
    /// [`VideoShape::Operations`]).
    pub fn set_video_shape(&self, shape: VideoShape) {
        self.lock().video.shape = shape;
    }

    /// The next video operation submitted ends `FAILED` with `operation.error` `{code, message}`.
    /// Queued overrides are used in order, one per operation.
    pub fn fail_next_video(&self, code: i64, message: &str) {
        self.lock()
            .video
            .next_outcomes
            .push_back(VideoOutcome::Failed {
                code,
                message: message.to_owned(),
            });
    }

    /// The next video operation submitted ends with `status` (e.g.
    /// `MEDIA_GENERATION_STATUS_ERROR_UNSAFE_GENERATION`).
    pub fn error_status_next_video(&self, status: &str) {
        self.lock()
            .video
            .next_outcomes
            .push_back(VideoOutcome::Status(status.to_owned()));
    }

    /// The video operations submitted through the video submits, oldest first.
    pub fn videos(&self) -> Vec<FakeVideo> {
        self.lock().video.videos.clone()
    }

    /// `<base>/videos/<id>.mp4`, where media-url-redirect redirects to.
    pub fn video_url(&self, id: &str) -> String {
        format!("{}/videos/{id}.mp4", self.public_base)
    }
}

/// One ISO-BMFF box.
fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 8).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// The MP4 the fake serves for video `id`: `ftyp` (isom), `moov` with a version-0 `mvhd`
/// (timescale 1000, 8 s), a `free` box naming the id (`flow2api-fake video <id>`) and a 4 KiB
/// `mdat` of a fixed pattern — about 4.3 KB, distinct per id.
pub fn fake_mp4(id: &str) -> Vec<u8> {
    let mut ftyp = Vec::new();
    ftyp.extend_from_slice(b"isom");
    ftyp.extend_from_slice(&0x200u32.to_be_bytes());
    ftyp.extend_from_slice(b"isomiso2avc1mp41");

    let mut mvhd = vec![0u8; 4]; // version 0, flags 0
    mvhd.extend_from_slice(&0u32.to_be_bytes()); // creation time
    mvhd.extend_from_slice(&0u32.to_be_bytes()); // modification time
    mvhd.extend_from_slice(&1000u32.to_be_bytes()); // timescale
    mvhd.extend_from_slice(&8000u32.to_be_bytes()); // duration: 8 s
    mvhd.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
    mvhd.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
    mvhd.extend_from_slice(&[0u8; 10]); // reserved
    for m in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        mvhd.extend_from_slice(&m.to_be_bytes()); // unity matrix
    }
    mvhd.extend_from_slice(&[0u8; 24]); // pre_defined
    mvhd.extend_from_slice(&2u32.to_be_bytes()); // next track id

    let mdat: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();

    let mut out = mp4_box(b"ftyp", &ftyp);
    out.extend(mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd)));
    out.extend(mp4_box(
        b"free",
        format!("flow2api-fake video {id}").as_bytes(),
    ));
    out.extend(mp4_box(b"mdat", &mdat));
    out
}
