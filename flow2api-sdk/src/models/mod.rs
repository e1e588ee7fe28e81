//! The model catalogue (`docs/upstream.md#models`): image models, account tiers and name
//! resolution.
//!
//! - [`image_models`] is the fixed table of the 32 public image ids (`docs/upstream.md#models`),
//!   [`image_aliases`] the three simplified names (`gemini-3.0-pro-image`,
//!   `gemini-3.1-flash-image`, `imagen-4.0-generate-preview`) that [`resolve_image`] maps to an id.
//! - [`hints_from_body`] gathers the aspect ratio and size a client asked for, from any of the
//!   places OpenAI- and Gemini-style bodies put them (`docs/upstream.md#models`).
//! - [`image_dimensions`] reads the width and height from a PNG, JPEG, GIF, WebP or BMP header,
//!   so that an alias can follow the aspect of the first reference image.
//! - [`video_models`] is the fixed table of the 182 public video ids (`docs/upstream.md#models`),
//!   [`video_aliases`] the 56 simplified names that [`resolve_video`] maps to an id;
//!   [`adjust_key_for_tier`] and [`single_image_key`] give the `videoModelKey` actually sent for an
//!   account and image count.

mod dims;
mod images;
mod resolve;
mod video_resolve;
mod videos;

pub use dims::{aspect_from_image, image_dimensions, nearest_aspect};
pub use images::{find_image_alias, image_aliases, model_description, ImageFamily};
pub use resolve::{normalize_aspect, normalize_size, quality_to_size, size_to_aspect};
pub use video_resolve::{
    adjust_key_for_tier, find_video_alias, resolve_video, single_image_key, video_aliases,
    video_aspect_from_image, VideoAlias,
};
pub use videos::{
    find_video, is_video_model_key, video_model_keys, video_models, VideoAspect, VideoModel,
    VideoType, VideoUpsample,
};

/// An account's paygate tier, ordered Free < Pro < Ultra.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Tier {
    /// `PAYGATE_TIER_NOT_PAID`.
    #[default]
    Free,
    /// `PAYGATE_TIER_ONE`.
    Pro,
    /// `PAYGATE_TIER_TWO`.
    Ultra,
}

impl Tier {
    /// Parses Google's `userPaygateTier`; anything unknown or missing is Free.
    pub fn from_paygate(s: Option<&str>) -> Self {
        match s {
            Some("PAYGATE_TIER_ONE") => Self::Pro,
            Some("PAYGATE_TIER_TWO") => Self::Ultra,
            _ => Self::Free,
        }
    }

    /// Google's name for the tier.
    pub fn as_paygate(self) -> &'static str {
        match self {
            Self::Free => "PAYGATE_TIER_NOT_PAID",
            Self::Pro => "PAYGATE_TIER_ONE",
            Self::Ultra => "PAYGATE_TIER_TWO",
        }
    }

    /// A short label: Free, Pro, Ultra.
    pub fn label(self) -> &'static str {
        match self {
            Self::Free => "Free",
            Self::Pro => "Pro",
            Self::Ultra => "Ultra",
        }
    }
}

/// Image aspect ratio (`imageAspectRatio`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageAspect {
    /// 16:9
    Landscape,
    /// 9:16
    Portrait,
    /// 1:1
    Square,
    /// 4:3
    FourThree,
    /// 3:4
    ThreeFour,
}

impl ImageAspect {
    /// All five aspects, in the order of the catalogue (and the tie-break order of
    /// [`nearest_aspect`]).
    pub const ALL: [ImageAspect; 5] = [
        Self::Landscape,
        Self::Portrait,
        Self::Square,
        Self::FourThree,
        Self::ThreeFour,
    ];

    /// The upstream enum value, e.g. `IMAGE_ASPECT_RATIO_LANDSCAPE`.
    pub fn wire(self) -> &'static str {
        match self {
            Self::Landscape => "IMAGE_ASPECT_RATIO_LANDSCAPE",
            Self::Portrait => "IMAGE_ASPECT_RATIO_PORTRAIT",
            Self::Square => "IMAGE_ASPECT_RATIO_SQUARE",
            Self::FourThree => "IMAGE_ASPECT_RATIO_LANDSCAPE_FOUR_THREE",
            Self::ThreeFour => "IMAGE_ASPECT_RATIO_PORTRAIT_THREE_FOUR",
        }
    }

    /// The word used in public ids and in [`ResolveHints::aspect`]: `landscape`, `portrait`,
    /// `square`, `four-three` or `three-four`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Landscape => "landscape",
            Self::Portrait => "portrait",
            Self::Square => "square",
            Self::FourThree => "four-three",
            Self::ThreeFour => "three-four",
        }
    }

    /// Parses a [`slug`](Self::slug); anything else is `None`.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.slug() == s)
    }

    /// The ratio as text: `16:9`, `9:16`, `1:1`, `4:3` or `3:4`.
    pub fn ratio(self) -> &'static str {
        match self {
            Self::Landscape => "16:9",
            Self::Portrait => "9:16",
            Self::Square => "1:1",
            Self::FourThree => "4:3",
            Self::ThreeFour => "3:4",
        }
    }

    /// The ratio width / height as a number.
    pub fn ratio_value(self) -> f64 {
        match self {
            Self::Landscape => 16.0 / 9.0,
            Self::Portrait => 9.0 / 16.0,
            Self::Square => 1.0,
            Self::FourThree => 4.0 / 3.0,
            Self::ThreeFour => 3.0 / 4.0,
        }
    }
}

/// An upsample target (upsample-image `targetResolution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsample {
    /// 2K
    TwoK,
    /// 4K
    FourK,
}

impl Upsample {
    /// The upstream enum value.
    pub fn wire(self) -> &'static str {
        match self {
            Self::TwoK => "UPSAMPLE_IMAGE_RESOLUTION_2K",
            Self::FourK => "UPSAMPLE_IMAGE_RESOLUTION_4K",
        }
    }

    /// `2K` or `4K`.
    pub fn label(self) -> &'static str {
        match self {
            Self::TwoK => "2K",
            Self::FourK => "4K",
        }
    }

    /// The id suffix and normalised size: `2k` or `4k`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::TwoK => "2k",
            Self::FourK => "4k",
        }
    }

    /// Parses a [`slug`](Self::slug) (`2k`, `4k`); anything else (`1k`, `1080p`, …) is `None`.
    pub fn from_slug(s: &str) -> Option<Self> {
        match s {
            "2k" => Some(Self::TwoK),
            "4k" => Some(Self::FourK),
            _ => None,
        }
    }
}

/// One public image model id and its upstream configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageModel {
    /// Public id, e.g. `gemini-3.1-flash-image-landscape-4k`.
    pub id: &'static str,
    /// Upstream `imageModelName`: `GEM_PIX_2`, `NARWHAL` or `IMAGEN_3_5`.
    pub upstream: &'static str,
    /// Aspect ratio.
    pub aspect: ImageAspect,
    /// Upsample step, for `-2k`/`-4k` ids.
    pub upsample: Option<Upsample>,
}

impl ImageModel {
    /// The minimum account tier, from the id text (`docs/upstream.md#models`).
    pub fn min_tier(&self) -> Tier {
        min_tier(self.id)
    }
}

/// Minimum tier for a public id (`docs/upstream.md#models`).
pub fn min_tier(id: &str) -> Tier {
    if id.ends_with("-4k") || id.ends_with("_4k") || id.contains("_ultra") {
        Tier::Ultra
    } else if id.ends_with("-2k") || id.ends_with("_1080p") {
        Tier::Pro
    } else {
        Tier::Free
    }
}

/// Hints for name resolution gathered from a request (`docs/upstream.md#models`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveHints {
    /// Normalised aspect (`landscape`, `portrait`, `square`, `four-three`, `three-four`, or the raw
    /// value).
    pub aspect: Option<String>,
    /// Normalised size (`1k`, `2k`, `4k`, `1080p`, …).
    pub size: Option<String>,
}

/// Every image model (the 32 ids, in the original Flow2API's order).
pub fn image_models() -> &'static [ImageModel] {
    &images::IMAGE_MODELS
}

/// Looks up an exact image model id. The three aliases are not ids: see [`resolve_image`].
pub fn find_image(id: &str) -> Option<&'static ImageModel> {
    image_models().iter().find(|m| m.id == id)
}

/// Extracts resolution hints from an OpenAI-style or Gemini-style JSON body
/// (`docs/upstream.md#models`). Values of the wrong JSON type are ignored.
pub fn hints_from_body(body: &serde_json::Value) -> ResolveHints {
    resolve::hints_from_body(body)
}

/// Resolves a requested name to an image model (`docs/upstream.md#models`).
///
/// An exact id is returned as is. One of the three [`image_aliases`] becomes
/// `<alias>-<aspect>[-<size>]`: the aspect comes from `hints`, or — when the hints carry none —
/// from the dimensions of `first_image` (raw image bytes); it defaults to, and an aspect the
/// family does not support falls back to, landscape. A `2k`/`4k` size is appended only when the
/// family offers it. Any other name is `None` (the caller answers 404 `model_not_found`).
pub fn resolve_image(
    name: &str,
    hints: &ResolveHints,
    first_image: Option<&[u8]>,
) -> Option<&'static ImageModel> {
    match find_image_alias(name) {
        Some(family) => family.resolve(hints, first_image),
        None => find_image(name),
    }
}
