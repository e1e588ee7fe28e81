//! The video catalogue (`docs/upstream.md#models`): the 182 public video ids, their upstream
//! `videoModelKey`s and the limits every id puts on a request.

use super::{min_tier, Tier};

/// The kind of a video model (`video_type`), which decides the upstream endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoType {
    /// Text to video (video-submit-text); reference images are ignored.
    T2v,
    /// Image to video: a start frame (video-submit-start-image), or start and end frames
    /// (video-submit-start-end-image).
    I2v,
    /// Reference images to video (video-submit-reference-images; video-submit-text with the same
    /// key when no image is given).
    R2v,
    /// Extends an earlier video, passed as `extend://<mediaGenerationId>`; images are ignored.
    Extend,
    /// The `abra` family: video-submit-text without images, video-submit-reference-images with 1–3
    /// reference images.
    Omni,
}

impl VideoType {
    /// The configuration value: `t2v`, `i2v`, `r2v`, `extend` or `omni`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::T2v => "t2v",
            Self::I2v => "i2v",
            Self::R2v => "r2v",
            Self::Extend => "extend",
            Self::Omni => "omni",
        }
    }

    /// Whether reference images are ignored rather than counted (t2v and extend).
    pub fn ignores_images(self) -> bool {
        matches!(self, Self::T2v | Self::Extend)
    }
}

/// Video aspect ratio (`aspectRatio` of a video request). Videos come in 16:9 and 9:16 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoAspect {
    /// 16:9, the default.
    #[default]
    Landscape,
    /// 9:16
    Portrait,
}

impl VideoAspect {
    /// Both aspects, landscape first.
    pub const ALL: [VideoAspect; 2] = [Self::Landscape, Self::Portrait];

    /// The upstream enum value, e.g. `VIDEO_ASPECT_RATIO_LANDSCAPE`.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Landscape => "VIDEO_ASPECT_RATIO_LANDSCAPE",
            Self::Portrait => "VIDEO_ASPECT_RATIO_PORTRAIT",
        }
    }

    /// `landscape` or `portrait`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Landscape => "landscape",
            Self::Portrait => "portrait",
        }
    }

    /// Parses a [`slug`](Self::slug); anything else is `None`.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.slug() == s)
    }

    /// Parses an upstream [`wire`](Self::wire) value (as found in status metadata); anything
    /// else is `None`.
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.wire() == s)
    }

    /// The ratio as text: `16:9` or `9:16`.
    pub fn ratio(self) -> &'static str {
        match self {
            Self::Landscape => "16:9",
            Self::Portrait => "9:16",
        }
    }
}

/// The upsample step of a `_1080p`/`_4k` video id (video-submit-upsample, run after the video
/// succeeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoUpsample {
    /// 1080p, with `veo_3_1_upsampler_1080p`.
    FullHd,
    /// 4K, with `veo_3_1_upsampler_4k`.
    FourK,
}

impl VideoUpsample {
    /// Both targets, 1080p first.
    pub const ALL: [VideoUpsample; 2] = [Self::FullHd, Self::FourK];

    /// The video-submit-upsample `resolution`: `VIDEO_RESOLUTION_1080P` or `VIDEO_RESOLUTION_4K`.
    pub fn wire(self) -> &'static str {
        match self {
            Self::FullHd => "VIDEO_RESOLUTION_1080P",
            Self::FourK => "VIDEO_RESOLUTION_4K",
        }
    }

    /// The video-submit-upsample `videoModelKey`: `veo_3_1_upsampler_1080p` or
    /// `veo_3_1_upsampler_4k` (never a public id).
    pub fn model_key(self) -> &'static str {
        match self {
            Self::FullHd => "veo_3_1_upsampler_1080p",
            Self::FourK => "veo_3_1_upsampler_4k",
        }
    }

    /// `1080P` or `4K`.
    pub fn label(self) -> &'static str {
        match self {
            Self::FullHd => "1080P",
            Self::FourK => "4K",
        }
    }

    /// The id suffix and normalised size: `1080p` or `4k`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::FullHd => "1080p",
            Self::FourK => "4k",
        }
    }

    /// Parses a [`slug`](Self::slug) (`1080p`, `4k`); anything else (`1k`, `2k`, …) is `None`.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.slug() == s)
    }
}

/// One public video model id and its upstream configuration (`docs/upstream.md#models`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoModel {
    /// Public id, e.g. `veo_3_1_t2v_fast_portrait_4k`.
    pub id: &'static str,
    /// The kind of generation, which picks the endpoint.
    pub video_type: VideoType,
    /// Upstream `videoModelKey` as configured, i.e. for a Free or Pro account; see
    /// [`adjust_key_for_tier`](super::adjust_key_for_tier) and
    /// [`single_image_key`](super::single_image_key) for what is actually sent.
    pub key: &'static str,
    /// The key used instead when reference images are given (omni: `abra_r2v_8s`).
    pub images_key: Option<&'static str>,
    /// Aspect ratio.
    pub aspect: VideoAspect,
    /// Fewest reference images accepted (0 when images are ignored).
    pub min_images: u8,
    /// Most reference images accepted (0 when images are ignored).
    pub max_images: u8,
    /// Upsample step, for `_1080p`/`_4k` ids.
    pub upsample: Option<VideoUpsample>,
    /// Whether a `PAYGATE_TIER_TWO` account may switch to the `ultra` variant of the key
    /// (false for every lite and omni model).
    pub allow_tier_upgrade: bool,
}

impl VideoModel {
    /// The minimum account tier, from the id text (`docs/upstream.md#models`).
    pub fn min_tier(&self) -> Tier {
        min_tier(self.id)
    }

    /// Length in seconds, from the key: 4 for `_4s`, 6 for `_6s`, otherwise 8.
    pub fn duration_secs(&self) -> u8 {
        if self.key.contains("_4s") {
            4
        } else if self.key.contains("_6s") {
            6
        } else {
            8
        }
    }

    /// Whether a request with `count` reference images is acceptable: t2v and extend ignore
    /// images (any count), other kinds need `min_images..=max_images`.
    pub fn accepts_image_count(&self, count: usize) -> bool {
        self.video_type.ignores_images()
            || (usize::from(self.min_images)..=usize::from(self.max_images)).contains(&count)
    }

    /// The configured key for a request with `count` reference images: [`images_key`]
    /// (omni's reference-image key) when there are any, else [`key`].
    ///
    /// [`images_key`]: Self::images_key
    /// [`key`]: Self::key
    pub fn key_for_images(&self, count: usize) -> &'static str {
        match self.images_key {
            Some(k) if count > 0 => k,
            _ => self.key,
        }
    }

    /// The `/v1/models` description: `Video generation - <videoModelKey>`.
    pub fn description(&self) -> String {
        format!("Video generation - {}", self.key)
    }
}

/// The fields a table row shares with every row of its family.
#[derive(Clone, Copy)]
struct Family {
    video_type: VideoType,
    min_images: u8,
    max_images: u8,
    allow_tier_upgrade: bool,
    images_key: Option<&'static str>,
}

const fn family(video_type: VideoType, min: u8, max: u8, upgrade: bool) -> Family {
    Family {
        video_type,
        min_images: min,
        max_images: max,
        allow_tier_upgrade: upgrade,
        images_key: None,
    }
}

const T2V: Family = family(VideoType::T2v, 0, 0, true);
const T2V_LITE: Family = family(VideoType::T2v, 0, 0, false);
const I2V: Family = family(VideoType::I2v, 1, 2, true);
const I2V_LITE: Family = family(VideoType::I2v, 1, 1, false);
const INTERP: Family = family(VideoType::I2v, 2, 2, false);
const R2V: Family = family(VideoType::R2v, 0, 3, true);
const EXTEND: Family = family(VideoType::Extend, 0, 0, true);
const OMNI: Family = Family {
    images_key: Some("abra_r2v_8s"),
    ..family(VideoType::Omni, 0, 3, false)
};

const L: VideoAspect = VideoAspect::Landscape;
const P: VideoAspect = VideoAspect::Portrait;
const K4: Option<VideoUpsample> = Some(VideoUpsample::FourK);
const P1080: Option<VideoUpsample> = Some(VideoUpsample::FullHd);

const fn v(
    id: &'static str,
    f: Family,
    key: &'static str,
    aspect: VideoAspect,
    upsample: Option<VideoUpsample>,
) -> VideoModel {
    VideoModel {
        id,
        video_type: f.video_type,
        key,
        images_key: f.images_key,
        aspect,
        min_images: f.min_images,
        max_images: f.max_images,
        upsample,
        allow_tier_upgrade: f.allow_tier_upgrade,
    }
}

/// In the original Flow2API's order (ids sharing one configuration are adjacent). One row per id:
/// id, family (kind, image counts, tier upgrade), `videoModelKey`, aspect, upsample.
#[rustfmt::skip]
static VIDEO_MODELS: [VideoModel; 182] = [
    v("veo_3_1_t2v_fast_portrait", T2V, "veo_3_1_t2v_fast_portrait", P, None),
    v("veo_3_1_t2v_fast_portrait_8s", T2V, "veo_3_1_t2v_fast_portrait", P, None),
    v("veo_3_1_t2v_fast_landscape", T2V, "veo_3_1_t2v_fast", L, None),
    v("veo_3_1_t2v_fast_8s", T2V, "veo_3_1_t2v_fast", L, None),
    v("veo_3_1_t2v_fast_landscape_8s", T2V, "veo_3_1_t2v_fast", L, None),
    v("veo_3_1_t2v_fast_portrait_ultra", T2V, "veo_3_1_t2v_fast_portrait_ultra", P, None),
    v("veo_3_1_t2v_fast_ultra", T2V, "veo_3_1_t2v_fast_ultra", L, None),
    v("veo_3_1_t2v_fast_portrait_ultra_relaxed", T2V, "veo_3_1_t2v_fast_portrait_ultra_relaxed", P, None),
    v("veo_3_1_t2v_fast_ultra_relaxed", T2V, "veo_3_1_t2v_fast_ultra_relaxed", L, None),
    v("veo_3_1_t2v_portrait", T2V, "veo_3_1_t2v_portrait", P, None),
    v("veo_3_1_t2v_portrait_8s", T2V, "veo_3_1_t2v_portrait", P, None),
    v("veo_3_1_t2v_landscape", T2V, "veo_3_1_t2v", L, None),
    v("veo_3_1_t2v_8s", T2V, "veo_3_1_t2v", L, None),
    v("veo_3_1_t2v_landscape_8s", T2V, "veo_3_1_t2v", L, None),
    v("veo_3_1_t2v_lite_portrait", T2V_LITE, "veo_3_1_t2v_lite", P, None),
    v("veo_3_1_t2v_lite_8s_portrait", T2V_LITE, "veo_3_1_t2v_lite", P, None),
    v("veo_3_1_t2v_lite_portrait_8s", T2V_LITE, "veo_3_1_t2v_lite", P, None),
    v("veo_3_1_t2v_lite_landscape", T2V_LITE, "veo_3_1_t2v_lite", L, None),
    v("veo_3_1_t2v_lite_8s_landscape", T2V_LITE, "veo_3_1_t2v_lite", L, None),
    v("veo_3_1_t2v_lite_landscape_8s", T2V_LITE, "veo_3_1_t2v_lite", L, None),
    v("veo_3_1_i2v_s_fast_portrait_fl", I2V, "veo_3_1_i2v_s_fast_portrait_fl", P, None),
    v("veo_3_1_i2v_s_fast_portrait_8s_fl", I2V, "veo_3_1_i2v_s_fast_portrait_fl", P, None),
    v("veo_3_1_i2v_s_fast_fl", I2V, "veo_3_1_i2v_s_fast_fl", L, None),
    v("veo_3_1_i2v_s_fast_8s_fl", I2V, "veo_3_1_i2v_s_fast_fl", L, None),
    v("veo_3_1_i2v_s_fast_landscape_8s_fl", I2V, "veo_3_1_i2v_s_fast_fl", L, None),
    v("veo_3_1_i2v_s_fast_portrait_ultra_fl", I2V, "veo_3_1_i2v_s_fast_portrait_ultra_fl", P, None),
    v("veo_3_1_i2v_s_fast_ultra_fl", I2V, "veo_3_1_i2v_s_fast_ultra_fl", L, None),
    v("veo_3_1_i2v_s_fast_portrait_ultra_relaxed", I2V, "veo_3_1_i2v_s_fast_portrait_ultra_relaxed", P, None),
    v("veo_3_1_i2v_s_fast_ultra_relaxed", I2V, "veo_3_1_i2v_s_fast_ultra_relaxed", L, None),
    v("veo_3_1_i2v_s_portrait", I2V, "veo_3_1_i2v_s_portrait_fl", P, None),
    v("veo_3_1_i2v_s_portrait_8s", I2V, "veo_3_1_i2v_s_portrait_fl", P, None),
    v("veo_3_1_i2v_s_landscape", I2V, "veo_3_1_i2v_s_fl", L, None),
    v("veo_3_1_i2v_s_8s", I2V, "veo_3_1_i2v_s_fl", L, None),
    v("veo_3_1_i2v_s_landscape_8s", I2V, "veo_3_1_i2v_s_fl", L, None),
    v("veo_3_1_i2v_lite_portrait", I2V_LITE, "veo_3_1_i2v_lite", P, None),
    v("veo_3_1_i2v_lite_8s_portrait", I2V_LITE, "veo_3_1_i2v_lite", P, None),
    v("veo_3_1_i2v_lite_portrait_8s", I2V_LITE, "veo_3_1_i2v_lite", P, None),
    v("veo_3_1_i2v_lite_landscape", I2V_LITE, "veo_3_1_i2v_lite", L, None),
    v("veo_3_1_i2v_lite_8s_landscape", I2V_LITE, "veo_3_1_i2v_lite", L, None),
    v("veo_3_1_i2v_lite_landscape_8s", I2V_LITE, "veo_3_1_i2v_lite", L, None),
    v("veo_3_1_interpolation_lite_portrait", INTERP, "veo_3_1_interpolation_lite", P, None),
    v("veo_3_1_interpolation_lite_8s_portrait", INTERP, "veo_3_1_interpolation_lite", P, None),
    v("veo_3_1_interpolation_lite_portrait_8s", INTERP, "veo_3_1_interpolation_lite", P, None),
    v("veo_3_1_interpolation_lite_landscape", INTERP, "veo_3_1_interpolation_lite", L, None),
    v("veo_3_1_interpolation_lite_8s_landscape", INTERP, "veo_3_1_interpolation_lite", L, None),
    v("veo_3_1_interpolation_lite_landscape_8s", INTERP, "veo_3_1_interpolation_lite", L, None),
    v("veo_3_1_r2v_fast_portrait", R2V, "veo_3_1_r2v_fast_portrait", P, None),
    v("veo_3_1_r2v_fast_portrait_8s", R2V, "veo_3_1_r2v_fast_portrait", P, None),
    v("veo_3_1_r2v_fast", R2V, "veo_3_1_r2v_fast_landscape", L, None),
    v("veo_3_1_r2v_fast_landscape", R2V, "veo_3_1_r2v_fast_landscape", L, None),
    v("veo_3_1_r2v_fast_8s", R2V, "veo_3_1_r2v_fast_landscape", L, None),
    v("veo_3_1_r2v_fast_landscape_8s", R2V, "veo_3_1_r2v_fast_landscape", L, None),
    v("veo_3_1_r2v_fast_portrait_ultra", R2V, "veo_3_1_r2v_fast_portrait_ultra", P, None),
    v("veo_3_1_r2v_fast_portrait_ultra_8s", R2V, "veo_3_1_r2v_fast_portrait_ultra", P, None),
    v("veo_3_1_r2v_fast_ultra", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, None),
    v("veo_3_1_r2v_fast_landscape_ultra", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, None),
    v("veo_3_1_r2v_fast_ultra_8s", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, None),
    v("veo_3_1_r2v_fast_landscape_ultra_8s", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, None),
    v("veo_3_1_r2v_fast_portrait_ultra_relaxed", R2V, "veo_3_1_r2v_fast_portrait_ultra_relaxed", P, None),
    v("veo_3_1_r2v_fast_portrait_ultra_relaxed_8s", R2V, "veo_3_1_r2v_fast_portrait_ultra_relaxed", P, None),
    v("veo_3_1_r2v_fast_ultra_relaxed", R2V, "veo_3_1_r2v_fast_landscape_ultra_relaxed", L, None),
    v("veo_3_1_r2v_fast_landscape_ultra_relaxed", R2V, "veo_3_1_r2v_fast_landscape_ultra_relaxed", L, None),
    v("veo_3_1_r2v_fast_ultra_relaxed_8s", R2V, "veo_3_1_r2v_fast_landscape_ultra_relaxed", L, None),
    v("veo_3_1_r2v_fast_landscape_ultra_relaxed_8s", R2V, "veo_3_1_r2v_fast_landscape_ultra_relaxed", L, None),
    v("veo_3_1_t2v_fast_portrait_4k", T2V, "veo_3_1_t2v_fast_portrait", P, K4),
    v("veo_3_1_t2v_fast_4k", T2V, "veo_3_1_t2v_fast", L, K4),
    v("veo_3_1_t2v_fast_portrait_ultra_4k", T2V, "veo_3_1_t2v_fast_portrait_ultra", P, K4),
    v("veo_3_1_t2v_fast_ultra_4k", T2V, "veo_3_1_t2v_fast_ultra", L, K4),
    v("veo_3_1_t2v_fast_portrait_1080p", T2V, "veo_3_1_t2v_fast_portrait", P, P1080),
    v("veo_3_1_t2v_fast_1080p", T2V, "veo_3_1_t2v_fast", L, P1080),
    v("veo_3_1_t2v_fast_portrait_ultra_1080p", T2V, "veo_3_1_t2v_fast_portrait_ultra", P, P1080),
    v("veo_3_1_t2v_fast_ultra_1080p", T2V, "veo_3_1_t2v_fast_ultra", L, P1080),
    v("veo_3_1_i2v_s_fast_portrait_ultra_fl_4k", I2V, "veo_3_1_i2v_s_fast_portrait_ultra_fl", P, K4),
    v("veo_3_1_i2v_s_fast_ultra_fl_4k", I2V, "veo_3_1_i2v_s_fast_ultra_fl", L, K4),
    v("veo_3_1_i2v_s_fast_portrait_ultra_fl_1080p", I2V, "veo_3_1_i2v_s_fast_portrait_ultra_fl", P, P1080),
    v("veo_3_1_i2v_s_fast_ultra_fl_1080p", I2V, "veo_3_1_i2v_s_fast_ultra_fl", L, P1080),
    v("veo_3_1_r2v_fast_portrait_ultra_4k", R2V, "veo_3_1_r2v_fast_portrait_ultra", P, K4),
    v("veo_3_1_r2v_fast_ultra_4k", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, K4),
    v("veo_3_1_r2v_fast_landscape_ultra_4k", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, K4),
    v("veo_3_1_r2v_fast_portrait_ultra_1080p", R2V, "veo_3_1_r2v_fast_portrait_ultra", P, P1080),
    v("veo_3_1_r2v_fast_ultra_1080p", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, P1080),
    v("veo_3_1_r2v_fast_landscape_ultra_1080p", R2V, "veo_3_1_r2v_fast_landscape_ultra", L, P1080),
    v("veo_3_1_extend_portrait", EXTEND, "veo_3_1_extend_portrait", P, None),
    v("veo_3_1_extend", EXTEND, "veo_3_1_extend_landscape", L, None),
    v("omni", OMNI, "abra_t2v_8s", L, None),
    v("omni_portrait", OMNI, "abra_t2v_8s", P, None),
    v("veo_3_1_t2v_fast_4s", T2V, "veo_3_1_t2v_fast_4s", L, None),
    v("veo_3_1_t2v_fast_landscape_4s", T2V, "veo_3_1_t2v_fast_4s", L, None),
    v("veo_3_1_t2v_fast_portrait_4s", T2V, "veo_3_1_t2v_fast_4s", P, None),
    v("veo_3_1_t2v_lite_4s_landscape", T2V_LITE, "veo_3_1_t2v_lite_4s", L, None),
    v("veo_3_1_t2v_lite_landscape_4s", T2V_LITE, "veo_3_1_t2v_lite_4s", L, None),
    v("veo_3_1_t2v_lite_4s_portrait", T2V_LITE, "veo_3_1_t2v_lite_4s", P, None),
    v("veo_3_1_t2v_lite_portrait_4s", T2V_LITE, "veo_3_1_t2v_lite_4s", P, None),
    v("veo_3_1_t2v_4s", T2V, "veo_3_1_t2v_quality_4s", L, None),
    v("veo_3_1_t2v_landscape_4s", T2V, "veo_3_1_t2v_quality_4s", L, None),
    v("veo_3_1_t2v_portrait_4s", T2V, "veo_3_1_t2v_quality_4s", P, None),
    v("veo_3_1_i2v_s_fast_4s_fl", I2V, "veo_3_1_i2v_s_fast_4s_fl", L, None),
    v("veo_3_1_i2v_s_fast_landscape_4s_fl", I2V, "veo_3_1_i2v_s_fast_4s_fl", L, None),
    v("veo_3_1_i2v_s_fast_portrait_4s_fl", I2V, "veo_3_1_i2v_s_fast_4s_fl", P, None),
    v("veo_3_1_i2v_lite_4s_landscape", I2V_LITE, "veo_3_1_i2v_s_lite_4s", L, None),
    v("veo_3_1_i2v_lite_landscape_4s", I2V_LITE, "veo_3_1_i2v_s_lite_4s", L, None),
    v("veo_3_1_i2v_lite_4s_portrait", I2V_LITE, "veo_3_1_i2v_s_lite_4s", P, None),
    v("veo_3_1_i2v_lite_portrait_4s", I2V_LITE, "veo_3_1_i2v_s_lite_4s", P, None),
    v("veo_3_1_interpolation_lite_4s_landscape", INTERP, "veo_3_1_i2v_s_lite_4s_fl", L, None),
    v("veo_3_1_interpolation_lite_landscape_4s", INTERP, "veo_3_1_i2v_s_lite_4s_fl", L, None),
    v("veo_3_1_interpolation_lite_4s_portrait", INTERP, "veo_3_1_i2v_s_lite_4s_fl", P, None),
    v("veo_3_1_interpolation_lite_portrait_4s", INTERP, "veo_3_1_i2v_s_lite_4s_fl", P, None),
    v("veo_3_1_i2v_s_4s", I2V, "veo_3_1_i2v_s_quality_4s_fl", L, None),
    v("veo_3_1_i2v_s_landscape_4s", I2V, "veo_3_1_i2v_s_quality_4s_fl", L, None),
    v("veo_3_1_i2v_s_portrait_4s", I2V, "veo_3_1_i2v_s_quality_4s_fl", P, None),
    v("veo_3_1_t2v_4s_4k", T2V, "veo_3_1_t2v_quality_4s", L, K4),
    v("veo_3_1_t2v_landscape_4s_4k", T2V, "veo_3_1_t2v_quality_4s", L, K4),
    v("veo_3_1_t2v_portrait_4s_4k", T2V, "veo_3_1_t2v_quality_4s", P, K4),
    v("veo_3_1_i2v_s_4s_4k", I2V, "veo_3_1_i2v_s_quality_4s_fl", L, K4),
    v("veo_3_1_i2v_s_landscape_4s_4k", I2V, "veo_3_1_i2v_s_quality_4s_fl", L, K4),
    v("veo_3_1_i2v_s_portrait_4s_4k", I2V, "veo_3_1_i2v_s_quality_4s_fl", P, K4),
    v("veo_3_1_t2v_4s_1080p", T2V, "veo_3_1_t2v_quality_4s", L, P1080),
    v("veo_3_1_t2v_landscape_4s_1080p", T2V, "veo_3_1_t2v_quality_4s", L, P1080),
    v("veo_3_1_t2v_portrait_4s_1080p", T2V, "veo_3_1_t2v_quality_4s", P, P1080),
    v("veo_3_1_i2v_s_4s_1080p", I2V, "veo_3_1_i2v_s_quality_4s_fl", L, P1080),
    v("veo_3_1_i2v_s_landscape_4s_1080p", I2V, "veo_3_1_i2v_s_quality_4s_fl", L, P1080),
    v("veo_3_1_i2v_s_portrait_4s_1080p", I2V, "veo_3_1_i2v_s_quality_4s_fl", P, P1080),
    v("veo_3_1_t2v_fast_6s", T2V, "veo_3_1_t2v_fast_6s", L, None),
    v("veo_3_1_t2v_fast_landscape_6s", T2V, "veo_3_1_t2v_fast_6s", L, None),
    v("veo_3_1_t2v_fast_portrait_6s", T2V, "veo_3_1_t2v_fast_6s", P, None),
    v("veo_3_1_t2v_lite_6s_landscape", T2V_LITE, "veo_3_1_t2v_lite_6s", L, None),
    v("veo_3_1_t2v_lite_landscape_6s", T2V_LITE, "veo_3_1_t2v_lite_6s", L, None),
    v("veo_3_1_t2v_lite_6s_portrait", T2V_LITE, "veo_3_1_t2v_lite_6s", P, None),
    v("veo_3_1_t2v_lite_portrait_6s", T2V_LITE, "veo_3_1_t2v_lite_6s", P, None),
    v("veo_3_1_t2v_6s", T2V, "veo_3_1_t2v_quality_6s", L, None),
    v("veo_3_1_t2v_landscape_6s", T2V, "veo_3_1_t2v_quality_6s", L, None),
    v("veo_3_1_t2v_portrait_6s", T2V, "veo_3_1_t2v_quality_6s", P, None),
    v("veo_3_1_i2v_s_fast_6s_fl", I2V, "veo_3_1_i2v_s_fast_6s_fl", L, None),
    v("veo_3_1_i2v_s_fast_landscape_6s_fl", I2V, "veo_3_1_i2v_s_fast_6s_fl", L, None),
    v("veo_3_1_i2v_s_fast_portrait_6s_fl", I2V, "veo_3_1_i2v_s_fast_6s_fl", P, None),
    v("veo_3_1_i2v_lite_6s_landscape", I2V_LITE, "veo_3_1_i2v_s_lite_6s", L, None),
    v("veo_3_1_i2v_lite_landscape_6s", I2V_LITE, "veo_3_1_i2v_s_lite_6s", L, None),
    v("veo_3_1_i2v_lite_6s_portrait", I2V_LITE, "veo_3_1_i2v_s_lite_6s", P, None),
    v("veo_3_1_i2v_lite_portrait_6s", I2V_LITE, "veo_3_1_i2v_s_lite_6s", P, None),
    v("veo_3_1_interpolation_lite_6s_landscape", INTERP, "veo_3_1_i2v_s_lite_6s_fl", L, None),
    v("veo_3_1_interpolation_lite_landscape_6s", INTERP, "veo_3_1_i2v_s_lite_6s_fl", L, None),
    v("veo_3_1_interpolation_lite_6s_portrait", INTERP, "veo_3_1_i2v_s_lite_6s_fl", P, None),
    v("veo_3_1_interpolation_lite_portrait_6s", INTERP, "veo_3_1_i2v_s_lite_6s_fl", P, None),
    v("veo_3_1_i2v_s_6s", I2V, "veo_3_1_i2v_s_quality_6s_fl", L, None),
    v("veo_3_1_i2v_s_landscape_6s", I2V, "veo_3_1_i2v_s_quality_6s_fl", L, None),
    v("veo_3_1_i2v_s_portrait_6s", I2V, "veo_3_1_i2v_s_quality_6s_fl", P, None),
    v("veo_3_1_t2v_6s_4k", T2V, "veo_3_1_t2v_quality_6s", L, K4),
    v("veo_3_1_t2v_landscape_6s_4k", T2V, "veo_3_1_t2v_quality_6s", L, K4),
    v("veo_3_1_t2v_portrait_6s_4k", T2V, "veo_3_1_t2v_quality_6s", P, K4),
    v("veo_3_1_i2v_s_6s_4k", I2V, "veo_3_1_i2v_s_quality_6s_fl", L, K4),
    v("veo_3_1_i2v_s_landscape_6s_4k", I2V, "veo_3_1_i2v_s_quality_6s_fl", L, K4),
    v("veo_3_1_i2v_s_portrait_6s_4k", I2V, "veo_3_1_i2v_s_quality_6s_fl", P, K4),
    v("veo_3_1_t2v_6s_1080p", T2V, "veo_3_1_t2v_quality_6s", L, P1080),
    v("veo_3_1_t2v_landscape_6s_1080p", T2V, "veo_3_1_t2v_quality_6s", L, P1080),
    v("veo_3_1_t2v_portrait_6s_1080p", T2V, "veo_3_1_t2v_quality_6s", P, P1080),
    v("veo_3_1_i2v_s_6s_1080p", I2V, "veo_3_1_i2v_s_quality_6s_fl", L, P1080),
    v("veo_3_1_i2v_s_landscape_6s_1080p", I2V, "veo_3_1_i2v_s_quality_6s_fl", L, P1080),
    v("veo_3_1_i2v_s_portrait_6s_1080p", I2V, "veo_3_1_i2v_s_quality_6s_fl", P, P1080),
    v("veo_3_1_t2v_4k", T2V, "veo_3_1_t2v", L, K4),
    v("veo_3_1_t2v_landscape_4k", T2V, "veo_3_1_t2v", L, K4),
    v("veo_3_1_t2v_8s_4k", T2V, "veo_3_1_t2v", L, K4),
    v("veo_3_1_t2v_landscape_8s_4k", T2V, "veo_3_1_t2v", L, K4),
    v("veo_3_1_t2v_portrait_4k", T2V, "veo_3_1_t2v_portrait", P, K4),
    v("veo_3_1_t2v_portrait_8s_4k", T2V, "veo_3_1_t2v_portrait", P, K4),
    v("veo_3_1_i2v_s_4k", I2V, "veo_3_1_i2v_s_fl", L, K4),
    v("veo_3_1_i2v_s_landscape_4k", I2V, "veo_3_1_i2v_s_fl", L, K4),
    v("veo_3_1_i2v_s_8s_4k", I2V, "veo_3_1_i2v_s_fl", L, K4),
    v("veo_3_1_i2v_s_landscape_8s_4k", I2V, "veo_3_1_i2v_s_fl", L, K4),
    v("veo_3_1_i2v_s_portrait_4k", I2V, "veo_3_1_i2v_s_portrait_fl", P, K4),
    v("veo_3_1_i2v_s_portrait_8s_4k", I2V, "veo_3_1_i2v_s_portrait_fl", P, K4),
    v("veo_3_1_t2v_1080p", T2V, "veo_3_1_t2v", L, P1080),
    v("veo_3_1_t2v_landscape_1080p", T2V, "veo_3_1_t2v", L, P1080),
    v("veo_3_1_t2v_8s_1080p", T2V, "veo_3_1_t2v", L, P1080),
    v("veo_3_1_t2v_landscape_8s_1080p", T2V, "veo_3_1_t2v", L, P1080),
    v("veo_3_1_t2v_portrait_1080p", T2V, "veo_3_1_t2v_portrait", P, P1080),
    v("veo_3_1_t2v_portrait_8s_1080p", T2V, "veo_3_1_t2v_portrait", P, P1080),
    v("veo_3_1_i2v_s_1080p", I2V, "veo_3_1_i2v_s_fl", L, P1080),
    v("veo_3_1_i2v_s_landscape_1080p", I2V, "veo_3_1_i2v_s_fl", L, P1080),
    v("veo_3_1_i2v_s_8s_1080p", I2V, "veo_3_1_i2v_s_fl", L, P1080),
    v("veo_3_1_i2v_s_landscape_8s_1080p", I2V, "veo_3_1_i2v_s_fl", L, P1080),
    v("veo_3_1_i2v_s_portrait_1080p", I2V, "veo_3_1_i2v_s_portrait_fl", P, P1080),
    v("veo_3_1_i2v_s_portrait_8s_1080p", I2V, "veo_3_1_i2v_s_portrait_fl", P, P1080),
];

/// Every distinct key of the table ([`VideoModel::key`] and [`VideoModel::images_key`]), in
/// order of first appearance. The upsampler keys are not included.
static VIDEO_MODEL_KEYS: [&str; 43] = [
    "veo_3_1_t2v_fast_portrait",
    "veo_3_1_t2v_fast",
    "veo_3_1_t2v_fast_portrait_ultra",
    "veo_3_1_t2v_fast_ultra",
    "veo_3_1_t2v_fast_portrait_ultra_relaxed",
    "veo_3_1_t2v_fast_ultra_relaxed",
    "veo_3_1_t2v_portrait",
    "veo_3_1_t2v",
    "veo_3_1_t2v_lite",
    "veo_3_1_i2v_s_fast_portrait_fl",
    "veo_3_1_i2v_s_fast_fl",
    "veo_3_1_i2v_s_fast_portrait_ultra_fl",
    "veo_3_1_i2v_s_fast_ultra_fl",
    "veo_3_1_i2v_s_fast_portrait_ultra_relaxed",
    "veo_3_1_i2v_s_fast_ultra_relaxed",
    "veo_3_1_i2v_s_portrait_fl",
    "veo_3_1_i2v_s_fl",
    "veo_3_1_i2v_lite",
    "veo_3_1_interpolation_lite",
    "veo_3_1_r2v_fast_portrait",
    "veo_3_1_r2v_fast_landscape",
    "veo_3_1_r2v_fast_portrait_ultra",
    "veo_3_1_r2v_fast_landscape_ultra",
    "veo_3_1_r2v_fast_portrait_ultra_relaxed",
    "veo_3_1_r2v_fast_landscape_ultra_relaxed",
    "veo_3_1_extend_portrait",
    "veo_3_1_extend_landscape",
    "abra_t2v_8s",
    "abra_r2v_8s",
    "veo_3_1_t2v_fast_4s",
    "veo_3_1_t2v_lite_4s",
    "veo_3_1_t2v_quality_4s",
    "veo_3_1_i2v_s_fast_4s_fl",
    "veo_3_1_i2v_s_lite_4s",
    "veo_3_1_i2v_s_lite_4s_fl",
    "veo_3_1_i2v_s_quality_4s_fl",
    "veo_3_1_t2v_fast_6s",
    "veo_3_1_t2v_lite_6s",
    "veo_3_1_t2v_quality_6s",
    "veo_3_1_i2v_s_fast_6s_fl",
    "veo_3_1_i2v_s_lite_6s",
    "veo_3_1_i2v_s_lite_6s_fl",
    "veo_3_1_i2v_s_quality_6s_fl",
];

/// Every video model (the 182 ids, in the original Flow2API's order).
pub fn video_models() -> &'static [VideoModel] {
    &VIDEO_MODELS
}

/// Looks up an exact video model id. Aliases that are not ids (`veo_3_1_t2v_fast`, …) are
/// `None`: see [`resolve_video`](super::resolve_video).
pub fn find_video(id: &str) -> Option<&'static VideoModel> {
    VIDEO_MODELS.iter().find(|m| m.id == id)
}

/// The distinct upstream `videoModelKey`s of the catalogue (43, upsamplers excluded): the set a
/// tier-upgraded key must belong to (`docs/upstream.md#models`).
pub fn video_model_keys() -> &'static [&'static str] {
    &VIDEO_MODEL_KEYS
}

/// Whether `key` is one of [`video_model_keys`].
pub fn is_video_model_key(key: &str) -> bool {
    VIDEO_MODEL_KEYS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration without the id, to compare ids that are aliases of each other.
    fn config(id: &str) -> VideoModel {
        VideoModel {
            id: "",
            ..*find_video(id).unwrap_or_else(|| panic!("missing {id}"))
        }
    }

    #[test]
    fn catalogue_has_182_unique_ids() {
        assert_eq!(video_models().len(), 182);
        for (i, a) in video_models().iter().enumerate() {
            assert!(
                video_models()[i + 1..].iter().all(|b| b.id != a.id),
                "duplicate {}",
                a.id
            );
        }
        let mut configs: Vec<VideoModel> = Vec::new();
        for m in video_models() {
            let c = config(m.id);
            if !configs.contains(&c) {
                configs.push(c);
            }
        }
        assert_eq!(configs.len(), 100, "the original's 100 rows");
    }

    #[test]
    fn key_set_is_the_table_keys() {
        let mut keys: Vec<&str> = Vec::new();
        for m in video_models() {
            for k in std::iter::once(m.key).chain(m.images_key) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        assert_eq!(keys, video_model_keys());
        for up in VideoUpsample::ALL {
            assert!(!is_video_model_key(up.model_key()));
            assert!(find_video(up.model_key()).is_none(), "upsampler is public");
        }
        assert!(is_video_model_key("veo_3_1_t2v_fast_ultra"));
        assert!(!is_video_model_key("veo_3_1_t2v_ultra"));
    }

    #[test]
    fn image_count_rules() {
        for m in video_models() {
            let expected = match m.video_type {
                VideoType::I2v if m.id.contains("interpolation_lite") => (2, 2),
                VideoType::I2v if m.id.contains("i2v_lite") => (1, 1),
                VideoType::I2v => (1, 2),
                VideoType::R2v | VideoType::Omni => (0, 3),
                VideoType::T2v | VideoType::Extend => (0, 0),
            };
            assert_eq!((m.min_images, m.max_images), expected, "{}", m.id);
        }
        let interp = find_video("veo_3_1_interpolation_lite_6s_portrait").unwrap();
        assert_eq!(
            (0..4)
                .map(|n| interp.accepts_image_count(n))
                .collect::<Vec<_>>(),
            [false, false, true, false]
        );
        let lite = find_video("veo_3_1_i2v_lite_landscape").unwrap();
        assert_eq!(
            (0..3)
                .map(|n| lite.accepts_image_count(n))
                .collect::<Vec<_>>(),
            [false, true, false]
        );
        let i2v = find_video("veo_3_1_i2v_s_fast_fl").unwrap();
        assert_eq!(
            (0..4)
                .map(|n| i2v.accepts_image_count(n))
                .collect::<Vec<_>>(),
            [false, true, true, false]
        );
        for id in ["veo_3_1_r2v_fast", "omni_portrait"] {
            let m = find_video(id).unwrap();
            assert!((0..=3).all(|n| m.accepts_image_count(n)), "{id}");
            assert!(!m.accepts_image_count(4), "{id}");
        }
        for id in ["veo_3_1_t2v_fast_8s", "veo_3_1_extend_portrait"] {
            let m = find_video(id).unwrap();
            assert!([0, 1, 5].iter().all(|&n| m.accepts_image_count(n)), "{id}");
        }
    }

    #[test]
    fn id_text_agrees_with_config() {
        for m in video_models() {
            let id = m.id;
            let kind = if id.starts_with("omni") {
                VideoType::Omni
            } else if id.contains("_t2v") {
                VideoType::T2v
            } else if id.contains("_i2v") || id.contains("_interpolation") {
                VideoType::I2v
            } else if id.contains("_r2v") {
                VideoType::R2v
            } else {
                VideoType::Extend
            };
            assert_eq!(m.video_type, kind, "{id}");
            let aspect = if id.contains("portrait") { P } else { L };
            assert_eq!(m.aspect, aspect, "{id}");
            let up = VideoUpsample::ALL
                .into_iter()
                .find(|u| id.ends_with(&format!("_{}", u.slug())));
            assert_eq!(m.upsample, up, "{id}");
            let secs = if id.contains("_4s") {
                4
            } else if id.contains("_6s") {
                6
            } else {
                8
            };
            assert_eq!(m.duration_secs(), secs, "{id}");
            let upgrade = !id.contains("lite") && kind != VideoType::Omni;
            assert_eq!(m.allow_tier_upgrade, upgrade, "{id}");
            assert_eq!(m.images_key.is_some(), kind == VideoType::Omni, "{id}");
        }
    }

    #[test]
    fn tiers_from_id() {
        for m in video_models() {
            let expected = if m.id.contains("_ultra") || m.id.ends_with("_4k") {
                Tier::Ultra
            } else if m.id.ends_with("_1080p") {
                Tier::Pro
            } else {
                Tier::Free
            };
            assert_eq!(m.min_tier(), expected, "{}", m.id);
        }
        let tier = |id| find_video(id).unwrap().min_tier();
        assert_eq!(tier("veo_3_1_t2v_fast_ultra_relaxed"), Tier::Ultra);
        assert_eq!(tier("veo_3_1_t2v_fast_1080p"), Tier::Pro);
        assert_eq!(tier("veo_3_1_t2v_fast_ultra_1080p"), Tier::Ultra);
        assert_eq!(tier("veo_3_1_i2v_s_portrait_4s_4k"), Tier::Ultra);
        assert_eq!(tier("veo_3_1_i2v_s_fast_portrait_8s_fl"), Tier::Free);
        let count = |t| video_models().iter().filter(|m| m.min_tier() == t).count();
        assert_eq!(
            (count(Tier::Free), count(Tier::Pro), count(Tier::Ultra)),
            (96, 26, 60)
        );
    }

    #[test]
    fn spot_check_table_rows() {
        let m = find_video("veo_3_1_r2v_fast_landscape_ultra_relaxed_8s").unwrap();
        assert_eq!(m.video_type, VideoType::R2v);
        assert_eq!(m.key, "veo_3_1_r2v_fast_landscape_ultra_relaxed");
        assert_eq!(m.aspect.wire(), "VIDEO_ASPECT_RATIO_LANDSCAPE");
        assert_eq!(m.upsample, None);

        let m = find_video("veo_3_1_i2v_s_portrait_4s_1080p").unwrap();
        assert_eq!(m.key, "veo_3_1_i2v_s_quality_4s_fl");
        assert_eq!(m.aspect.wire(), "VIDEO_ASPECT_RATIO_PORTRAIT");
        let up = m.upsample.unwrap();
        assert_eq!(
            (up.wire(), up.model_key()),
            ("VIDEO_RESOLUTION_1080P", "veo_3_1_upsampler_1080p")
        );
        assert_eq!(m.duration_secs(), 4);

        let m = find_video("veo_3_1_t2v_fast_portrait_4k").unwrap();
        assert_eq!(m.key, "veo_3_1_t2v_fast_portrait");
        let up = m.upsample.unwrap();
        assert_eq!(
            (up.wire(), up.model_key()),
            ("VIDEO_RESOLUTION_4K", "veo_3_1_upsampler_4k")
        );

        let m = find_video("veo_3_1_interpolation_lite_portrait_6s").unwrap();
        assert_eq!(m.key, "veo_3_1_i2v_s_lite_6s_fl");
        assert_eq!(m.aspect, P);
        assert_eq!(
            find_video("veo_3_1_i2v_lite_4s_portrait").unwrap().key,
            "veo_3_1_i2v_s_lite_4s"
        );
        assert_eq!(
            find_video("veo_3_1_t2v_portrait_6s").unwrap().key,
            "veo_3_1_t2v_quality_6s"
        );
        assert_eq!(
            find_video("veo_3_1_extend").unwrap().key,
            "veo_3_1_extend_landscape"
        );

        let omni = find_video("omni_portrait").unwrap();
        assert_eq!((omni.video_type, omni.aspect), (VideoType::Omni, P));
        assert_eq!(omni.key_for_images(0), "abra_t2v_8s");
        assert_eq!(omni.key_for_images(2), "abra_r2v_8s");
        let r2v = find_video("veo_3_1_r2v_fast").unwrap();
        assert_eq!(r2v.key_for_images(0), "veo_3_1_r2v_fast_landscape");
        assert_eq!(r2v.key_for_images(3), "veo_3_1_r2v_fast_landscape");
        assert_eq!(
            r2v.description(),
            "Video generation - veo_3_1_r2v_fast_landscape"
        );

        for id in [
            "veo_3_1_t2v_fast",
            "veo_3_1_t2v",
            "veo_3_1_i2v_s",
            "veo_3_1_t2v_lite",
            "veo_3_1_i2v_s_fast_fl_landscape",
            "veo_3_1_upsampler_4k",
            "",
        ] {
            assert!(find_video(id).is_none(), "{id}");
        }
    }

    #[test]
    fn explicit_landscape_and_8s_names_are_aliases() {
        for group in [
            &[
                "veo_3_1_t2v_fast_landscape",
                "veo_3_1_t2v_fast_8s",
                "veo_3_1_t2v_fast_landscape_8s",
            ][..],
            &["veo_3_1_t2v_portrait", "veo_3_1_t2v_portrait_8s"],
            &[
                "veo_3_1_t2v_lite_portrait",
                "veo_3_1_t2v_lite_8s_portrait",
                "veo_3_1_t2v_lite_portrait_8s",
            ],
            &[
                "veo_3_1_r2v_fast",
                "veo_3_1_r2v_fast_landscape",
                "veo_3_1_r2v_fast_8s",
                "veo_3_1_r2v_fast_landscape_8s",
            ],
            &["veo_3_1_t2v_fast_4s", "veo_3_1_t2v_fast_landscape_4s"],
        ] {
            for id in &group[1..] {
                assert_eq!(config(id), config(group[0]), "{id} vs {}", group[0]);
            }
        }
        assert_ne!(
            config("veo_3_1_t2v_fast_4s"),
            config("veo_3_1_t2v_fast_portrait_4s")
        );
    }

    #[test]
    fn enum_slugs_round_trip() {
        for a in VideoAspect::ALL {
            assert_eq!(VideoAspect::from_slug(a.slug()), Some(a));
            assert_eq!(VideoAspect::from_wire(a.wire()), Some(a));
        }
        for u in VideoUpsample::ALL {
            assert_eq!(VideoUpsample::from_slug(u.slug()), Some(u));
        }
        assert_eq!(VideoAspect::from_slug("square"), None);
        assert_eq!(VideoUpsample::from_slug("2k"), None);
        assert_eq!(VideoType::Extend.as_str(), "extend");
    }
}
