//! Video name resolution (`docs/upstream.md#models`) and the per-account key adjustments
//! (`docs/upstream.md#models`).

use super::{
    dims, find_video, is_video_model_key, normalize_aspect, normalize_size, ResolveHints, Tier,
    VideoAspect, VideoModel, VideoUpsample,
};

/// A video alias (`docs/upstream.md#models`): a simplified name that stands for a landscape and a
/// portrait id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoAlias {
    /// The alias a client may send as `model`, e.g. `veo_3_1_t2v_fast`. Some aliases are also
    /// ids (`veo_3_1_t2v_fast_4s`); the alias wins.
    pub alias: &'static str,
    /// The id for 16:9.
    pub landscape: &'static str,
    /// The id for 9:16.
    pub portrait: &'static str,
}

const fn a(alias: &'static str, landscape: &'static str, portrait: &'static str) -> VideoAlias {
    VideoAlias {
        alias,
        landscape,
        portrait,
    }
}

/// In the original Flow2API's order: alias, landscape id, portrait id.
#[rustfmt::skip]
static VIDEO_ALIASES: [VideoAlias; 56] = [
    a("veo_3_1_t2v_fast", "veo_3_1_t2v_fast_landscape", "veo_3_1_t2v_fast_portrait"),
    a("veo_3_1_t2v_fast_4s", "veo_3_1_t2v_fast_4s", "veo_3_1_t2v_fast_portrait_4s"),
    a("veo_3_1_t2v_fast_6s", "veo_3_1_t2v_fast_6s", "veo_3_1_t2v_fast_portrait_6s"),
    a("veo_3_1_t2v_fast_8s", "veo_3_1_t2v_fast_8s", "veo_3_1_t2v_fast_portrait_8s"),
    a("veo_3_1_t2v_fast_ultra", "veo_3_1_t2v_fast_ultra", "veo_3_1_t2v_fast_portrait_ultra"),
    a("veo_3_1_t2v_fast_ultra_relaxed", "veo_3_1_t2v_fast_ultra_relaxed", "veo_3_1_t2v_fast_portrait_ultra_relaxed"),
    a("veo_3_1_t2v", "veo_3_1_t2v_landscape", "veo_3_1_t2v_portrait"),
    a("veo_3_1_t2v_4s", "veo_3_1_t2v_4s", "veo_3_1_t2v_portrait_4s"),
    a("veo_3_1_t2v_6s", "veo_3_1_t2v_6s", "veo_3_1_t2v_portrait_6s"),
    a("veo_3_1_t2v_8s", "veo_3_1_t2v_8s", "veo_3_1_t2v_portrait_8s"),
    a("veo_3_1_t2v_4s_4k", "veo_3_1_t2v_4s_4k", "veo_3_1_t2v_portrait_4s_4k"),
    a("veo_3_1_t2v_4s_1080p", "veo_3_1_t2v_4s_1080p", "veo_3_1_t2v_portrait_4s_1080p"),
    a("veo_3_1_t2v_6s_4k", "veo_3_1_t2v_6s_4k", "veo_3_1_t2v_portrait_6s_4k"),
    a("veo_3_1_t2v_6s_1080p", "veo_3_1_t2v_6s_1080p", "veo_3_1_t2v_portrait_6s_1080p"),
    a("veo_3_1_t2v_8s_4k", "veo_3_1_t2v_8s_4k", "veo_3_1_t2v_portrait_8s_4k"),
    a("veo_3_1_t2v_8s_1080p", "veo_3_1_t2v_8s_1080p", "veo_3_1_t2v_portrait_8s_1080p"),
    a("veo_3_1_t2v_4k", "veo_3_1_t2v_4k", "veo_3_1_t2v_portrait_4k"),
    a("veo_3_1_t2v_1080p", "veo_3_1_t2v_1080p", "veo_3_1_t2v_portrait_1080p"),
    a("veo_3_1_t2v_lite", "veo_3_1_t2v_lite_landscape", "veo_3_1_t2v_lite_portrait"),
    a("veo_3_1_t2v_lite_4s", "veo_3_1_t2v_lite_4s_landscape", "veo_3_1_t2v_lite_4s_portrait"),
    a("veo_3_1_t2v_lite_6s", "veo_3_1_t2v_lite_6s_landscape", "veo_3_1_t2v_lite_6s_portrait"),
    a("veo_3_1_t2v_lite_8s", "veo_3_1_t2v_lite_8s_landscape", "veo_3_1_t2v_lite_8s_portrait"),
    a("omni", "omni", "omni_portrait"),
    a("veo_3_1_i2v_s_fast_fl", "veo_3_1_i2v_s_fast_fl", "veo_3_1_i2v_s_fast_portrait_fl"),
    a("veo_3_1_i2v_s_fast_4s_fl", "veo_3_1_i2v_s_fast_4s_fl", "veo_3_1_i2v_s_fast_portrait_4s_fl"),
    a("veo_3_1_i2v_s_fast_6s_fl", "veo_3_1_i2v_s_fast_6s_fl", "veo_3_1_i2v_s_fast_portrait_6s_fl"),
    a("veo_3_1_i2v_s_fast_8s_fl", "veo_3_1_i2v_s_fast_8s_fl", "veo_3_1_i2v_s_fast_portrait_8s_fl"),
    a("veo_3_1_i2v_s_fast_ultra_fl", "veo_3_1_i2v_s_fast_ultra_fl", "veo_3_1_i2v_s_fast_portrait_ultra_fl"),
    a("veo_3_1_i2v_s_fast_ultra_relaxed", "veo_3_1_i2v_s_fast_ultra_relaxed", "veo_3_1_i2v_s_fast_portrait_ultra_relaxed"),
    a("veo_3_1_i2v_s", "veo_3_1_i2v_s_landscape", "veo_3_1_i2v_s_portrait"),
    a("veo_3_1_i2v_s_4s", "veo_3_1_i2v_s_4s", "veo_3_1_i2v_s_portrait_4s"),
    a("veo_3_1_i2v_s_6s", "veo_3_1_i2v_s_6s", "veo_3_1_i2v_s_portrait_6s"),
    a("veo_3_1_i2v_s_8s", "veo_3_1_i2v_s_8s", "veo_3_1_i2v_s_portrait_8s"),
    a("veo_3_1_i2v_s_4s_4k", "veo_3_1_i2v_s_4s_4k", "veo_3_1_i2v_s_portrait_4s_4k"),
    a("veo_3_1_i2v_s_4s_1080p", "veo_3_1_i2v_s_4s_1080p", "veo_3_1_i2v_s_portrait_4s_1080p"),
    a("veo_3_1_i2v_s_6s_4k", "veo_3_1_i2v_s_6s_4k", "veo_3_1_i2v_s_portrait_6s_4k"),
    a("veo_3_1_i2v_s_6s_1080p", "veo_3_1_i2v_s_6s_1080p", "veo_3_1_i2v_s_portrait_6s_1080p"),
    a("veo_3_1_i2v_s_8s_4k", "veo_3_1_i2v_s_8s_4k", "veo_3_1_i2v_s_portrait_8s_4k"),
    a("veo_3_1_i2v_s_8s_1080p", "veo_3_1_i2v_s_8s_1080p", "veo_3_1_i2v_s_portrait_8s_1080p"),
    a("veo_3_1_i2v_s_4k", "veo_3_1_i2v_s_4k", "veo_3_1_i2v_s_portrait_4k"),
    a("veo_3_1_i2v_s_1080p", "veo_3_1_i2v_s_1080p", "veo_3_1_i2v_s_portrait_1080p"),
    a("veo_3_1_i2v_lite", "veo_3_1_i2v_lite_landscape", "veo_3_1_i2v_lite_portrait"),
    a("veo_3_1_i2v_lite_4s", "veo_3_1_i2v_lite_4s_landscape", "veo_3_1_i2v_lite_4s_portrait"),
    a("veo_3_1_i2v_lite_6s", "veo_3_1_i2v_lite_6s_landscape", "veo_3_1_i2v_lite_6s_portrait"),
    a("veo_3_1_i2v_lite_8s", "veo_3_1_i2v_lite_8s_landscape", "veo_3_1_i2v_lite_8s_portrait"),
    a("veo_3_1_interpolation_lite", "veo_3_1_interpolation_lite_landscape", "veo_3_1_interpolation_lite_portrait"),
    a("veo_3_1_interpolation_lite_4s", "veo_3_1_interpolation_lite_4s_landscape", "veo_3_1_interpolation_lite_4s_portrait"),
    a("veo_3_1_interpolation_lite_6s", "veo_3_1_interpolation_lite_6s_landscape", "veo_3_1_interpolation_lite_6s_portrait"),
    a("veo_3_1_interpolation_lite_8s", "veo_3_1_interpolation_lite_8s_landscape", "veo_3_1_interpolation_lite_8s_portrait"),
    a("veo_3_1_r2v_fast", "veo_3_1_r2v_fast", "veo_3_1_r2v_fast_portrait"),
    a("veo_3_1_r2v_fast_8s", "veo_3_1_r2v_fast_8s", "veo_3_1_r2v_fast_portrait_8s"),
    a("veo_3_1_r2v_fast_ultra", "veo_3_1_r2v_fast_ultra", "veo_3_1_r2v_fast_portrait_ultra"),
    a("veo_3_1_r2v_fast_ultra_8s", "veo_3_1_r2v_fast_ultra_8s", "veo_3_1_r2v_fast_portrait_ultra_8s"),
    a("veo_3_1_r2v_fast_ultra_relaxed", "veo_3_1_r2v_fast_ultra_relaxed", "veo_3_1_r2v_fast_portrait_ultra_relaxed"),
    a("veo_3_1_r2v_fast_ultra_relaxed_8s", "veo_3_1_r2v_fast_ultra_relaxed_8s", "veo_3_1_r2v_fast_portrait_ultra_relaxed_8s"),
    a("veo_3_1_extend", "veo_3_1_extend", "veo_3_1_extend_portrait"),
];

/// The 56 video aliases.
pub fn video_aliases() -> &'static [VideoAlias] {
    &VIDEO_ALIASES
}

/// Looks up a video alias by its exact name.
pub fn find_video_alias(name: &str) -> Option<&'static VideoAlias> {
    VIDEO_ALIASES.iter().find(|a| a.alias == name)
}

impl VideoAlias {
    /// The description listed by `/v1/models/aliases`.
    pub const DESCRIPTION: &'static str =
        "Video generation (alias) - supports landscape/portrait via generationConfig";

    /// The id for an aspect.
    pub fn target(&self, aspect: VideoAspect) -> &'static str {
        match aspect {
            VideoAspect::Landscape => self.landscape,
            VideoAspect::Portrait => self.portrait,
        }
    }

    /// The model for an aspect.
    pub fn model(&self, aspect: VideoAspect) -> Option<&'static VideoModel> {
        find_video(self.target(aspect))
    }

    /// The alias for the same request at an upsampled size, `<alias>_1080p` or `<alias>_4k`,
    /// if there is one (`veo_3_1_t2v` has `veo_3_1_t2v_4k`; `veo_3_1_t2v_fast` has none).
    pub fn with_size(&self, size: VideoUpsample) -> Option<&'static VideoAlias> {
        find_video_alias(&format!("{}_{}", self.alias, size.slug()))
    }

    /// Resolves the alias with request hints (`docs/upstream.md#models`): a `4k`/`1080p` size
    /// switches to [`with_size`](Self::with_size) when that alias exists and is otherwise dropped;
    /// the aspect comes from `hints` (portrait for `9:16`/`portrait`, landscape for anything else),
    /// or — when the hints carry none — from the dimensions of `first_image` (see
    /// [`video_aspect_from_image`]), and defaults to landscape. Falls back to the alias itself if
    /// the target is not an id.
    pub fn resolve(
        &self,
        hints: &ResolveHints,
        first_image: Option<&[u8]>,
    ) -> Option<&'static VideoModel> {
        let sized = hints
            .size
            .as_deref()
            .and_then(normalize_size)
            .and_then(|s| VideoUpsample::from_slug(&s))
            .and_then(|s| self.with_size(s))
            .unwrap_or(self);
        let aspect = match hints.aspect.as_deref().and_then(normalize_aspect) {
            Some(a) if a == VideoAspect::Portrait.slug() => VideoAspect::Portrait,
            Some(_) => VideoAspect::Landscape,
            None => first_image
                .and_then(video_aspect_from_image)
                .unwrap_or_default(),
        };
        sized.model(aspect).or_else(|| find_video(self.alias))
    }
}

/// The video aspect of an image (`docs/upstream.md#models`, video mode): the nearest of
/// the five ratios when that is 16:9 or 9:16, otherwise portrait when the image is taller than
/// wide and landscape when not. `None` when the header cannot be read.
pub fn video_aspect_from_image(bytes: &[u8]) -> Option<VideoAspect> {
    let (w, h) = dims::image_dimensions(bytes)?;
    Some(match dims::nearest_aspect(w, h) {
        super::ImageAspect::Landscape => VideoAspect::Landscape,
        super::ImageAspect::Portrait => VideoAspect::Portrait,
        _ if h > w => VideoAspect::Portrait,
        _ => VideoAspect::Landscape,
    })
}

/// Resolves a requested name to a video model (`docs/upstream.md#models`).
///
/// One of the [`video_aliases`] is resolved with [`VideoAlias::resolve`] — checked before the
/// exact-id lookup, so a name that is both (`veo_3_1_t2v_fast_4s`) follows the hints. Any other
/// exact id is returned as is; anything else is `None`.
pub fn resolve_video(
    name: &str,
    hints: &ResolveHints,
    first_image: Option<&[u8]>,
) -> Option<&'static VideoModel> {
    match find_video_alias(name) {
        Some(alias) => alias.resolve(hints, first_image),
        None => find_video(name),
    }
}

/// The `videoModelKey` to send for `model` from an account of `tier` (`docs/upstream.md#models`),
/// with an English progress note when it differs from the configured key.
///
/// - Ultra, [`VideoModel::allow_tier_upgrade`], and no `ultra` in the key: the `ultra` variant
///   (`_fl` → `_ultra_fl`, else `+ _ultra`), but only if that is one of the
///   [`video_model_keys`](super::video_model_keys).
/// - Pro and `ultra` in the key: `_ultra_fl` → `_fl`, then `_ultra` removed.
/// - Otherwise the key is unchanged.
pub fn adjust_key_for_tier(model: &VideoModel, tier: Tier) -> (String, Option<String>) {
    let key = model.key;
    match tier {
        Tier::Ultra if model.allow_tier_upgrade && !key.contains("ultra") => {
            let candidate = if key.contains("_fl") {
                key.replace("_fl", "_ultra_fl")
            } else {
                format!("{key}_ultra")
            };
            if is_video_model_key(&candidate) {
                let note =
                    format!("TIER_TWO account switched automatically to ultra model: {candidate}");
                return (candidate, Some(note));
            }
        }
        Tier::Pro if key.contains("ultra") => {
            let standard = key.replace("_ultra_fl", "_fl").replace("_ultra", "");
            let note =
                format!("TIER_ONE account switched automatically to standard model: {standard}");
            return (standard, Some(note));
        }
        _ => {}
    }
    (key.to_string(), None)
}

/// The i2v key for a request with exactly one image (a start frame, video-submit-start-image):
/// every `_fl_` becomes `_` and a trailing `_fl` is removed (`veo_3_1_i2v_s_fast_ultra_fl` →
/// `veo_3_1_i2v_s_fast_ultra`). Apply it to the key from [`adjust_key_for_tier`]; two images use
/// that key unchanged (video-submit-start-end-image).
pub fn single_image_key(key: &str) -> String {
    let key = key.replace("_fl_", "_");
    match key.strip_suffix("_fl") {
        Some(stripped) => stripped.to_string(),
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::dims::tests::png_header;
    use crate::models::{video_models, VideoType};

    fn hints(aspect: Option<&str>, size: Option<&str>) -> ResolveHints {
        ResolveHints {
            aspect: aspect.map(str::to_string),
            size: size.map(str::to_string),
        }
    }

    fn r(name: &str, aspect: Option<&str>, size: Option<&str>) -> Option<&'static str> {
        resolve_video(name, &hints(aspect, size), None).map(|m| m.id)
    }

    fn model(id: &str) -> &'static VideoModel {
        find_video(id).unwrap_or_else(|| panic!("missing {id}"))
    }

    #[test]
    fn alias_table() {
        assert_eq!(video_aliases().len(), 56);
        for (i, a) in video_aliases().iter().enumerate() {
            assert!(
                video_aliases()[i + 1..].iter().all(|b| b.alias != a.alias),
                "duplicate {}",
                a.alias
            );
            for aspect in VideoAspect::ALL {
                let m = a
                    .model(aspect)
                    .unwrap_or_else(|| panic!("{} {aspect:?}", a.alias));
                assert_eq!(m.aspect, aspect, "{}", a.alias);
            }
            let (l, p) = (model(a.landscape), model(a.portrait));
            assert_eq!(
                (l.video_type, l.upsample, l.duration_secs()),
                (p.video_type, p.upsample, p.duration_secs()),
                "{}",
                a.alias
            );
        }
        let ids = video_aliases()
            .iter()
            .filter(|a| find_video(a.alias).is_some());
        assert_eq!(ids.count(), 41, "aliases that are also ids");
        assert!(VideoAlias::DESCRIPTION.contains("landscape/portrait"));
    }

    #[test]
    fn ids_resolve_to_themselves() {
        let portrait_img = png_header(720, 1280);
        for m in video_models() {
            if find_video_alias(m.id).is_some() {
                // Alias ids are their own landscape target.
                assert_eq!(r(m.id, None, None), Some(m.id));
                continue;
            }
            for h in [
                hints(None, None),
                hints(Some("portrait"), Some("4k")),
                hints(Some("16:9"), Some("1080p")),
            ] {
                assert_eq!(resolve_video(m.id, &h, None).map(|x| x.id), Some(m.id));
            }
            assert_eq!(
                resolve_video(m.id, &ResolveHints::default(), Some(&portrait_img)).map(|x| x.id),
                Some(m.id)
            );
        }
    }

    #[test]
    fn documented_examples() {
        assert_eq!(
            r("veo_3_1_t2v_fast", Some("9:16"), None),
            Some("veo_3_1_t2v_fast_portrait")
        );
        assert_eq!(
            r("veo_3_1_t2v", Some("9:16"), Some("4k")),
            Some("veo_3_1_t2v_portrait_4k")
        );
        assert_eq!(
            r("veo_3_1_i2v_s_8s", Some("portrait"), Some("4k")),
            Some("veo_3_1_i2v_s_portrait_8s_4k")
        );
        assert_eq!(r("omni", Some("9:16"), None), Some("omni_portrait"));
        assert_eq!(
            r("veo_3_1_r2v_fast", Some("1:1"), None),
            Some("veo_3_1_r2v_fast")
        );
        // The original's Lite tests (test_veo_lite_support.py).
        assert_eq!(
            r("veo_3_1_t2v_lite", Some("portrait"), None),
            Some("veo_3_1_t2v_lite_portrait")
        );
        assert_eq!(
            r("veo_3_1_t2v_4s_4k", Some("portrait"), None),
            Some("veo_3_1_t2v_portrait_4s_4k")
        );
        assert_eq!(
            r("veo_3_1_i2v_s_6s", None, Some("1080p")),
            Some("veo_3_1_i2v_s_6s_1080p")
        );
        assert_eq!(
            r("veo_3_1_t2v_8s", Some("portrait"), None),
            Some("veo_3_1_t2v_portrait_8s")
        );
        // An unsupported size is silently dropped.
        assert_eq!(
            r("veo_3_1_t2v_fast", None, Some("4k")),
            Some("veo_3_1_t2v_fast_landscape")
        );
    }

    #[test]
    fn alias_defaults_and_fallbacks() {
        assert_eq!(r("veo_3_1_t2v", None, None), Some("veo_3_1_t2v_landscape"));
        assert_eq!(
            r("veo_3_1_t2v", Some("LANDSCAPE"), Some("1080P")),
            Some("veo_3_1_t2v_1080p")
        );
        assert_eq!(
            r("veo_3_1_t2v_4s", Some("9 / 16"), Some("2k")),
            Some("veo_3_1_t2v_portrait_4s")
        );
        assert_eq!(
            r("veo_3_1_i2v_lite_4s", Some("three-four"), Some("4k")),
            Some("veo_3_1_i2v_lite_4s_landscape")
        );
        assert_eq!(
            r("veo_3_1_extend", Some("portrait"), None),
            Some("veo_3_1_extend_portrait")
        );
        // An alias that is also an id follows the hints.
        assert_eq!(
            r("veo_3_1_t2v_fast_4s", Some("portrait"), None),
            Some("veo_3_1_t2v_fast_portrait_4s")
        );
        assert_eq!(
            r("veo_3_1_r2v_fast_ultra_relaxed_8s", Some("9:16"), None),
            Some("veo_3_1_r2v_fast_portrait_ultra_relaxed_8s")
        );
        // Size switching only where `<alias>_<size>` is an alias.
        let t2v = find_video_alias("veo_3_1_t2v").unwrap();
        assert_eq!(
            t2v.with_size(VideoUpsample::FourK).map(|a| a.alias),
            Some("veo_3_1_t2v_4k")
        );
        let lite = find_video_alias("veo_3_1_t2v_lite").unwrap();
        assert_eq!(lite.with_size(VideoUpsample::FullHd), None);
        assert_eq!(
            r("veo_3_1_t2v_4k", None, Some("1080p")),
            Some("veo_3_1_t2v_4k")
        );
        // Unknown names stay unknown; image aliases are not video models.
        assert_eq!(r("veo_3_1_i2v_s_fast_fl_landscape", None, None), None);
        assert_eq!(r("gemini-3.1-flash-image", None, None), None);
        assert_eq!(r("", None, None), None);
    }

    #[test]
    fn first_image_drives_alias_aspect() {
        let none = ResolveHints::default();
        let ri =
            |name, h: &ResolveHints, img: &[u8]| resolve_video(name, h, Some(img)).map(|m| m.id);
        let portrait = png_header(720, 1280);
        assert_eq!(
            ri("veo_3_1_i2v_s_fast_fl", &none, &portrait),
            Some("veo_3_1_i2v_s_fast_portrait_fl")
        );
        // 3:4 and 1:1 are not video aspects: taller than wide → portrait, else landscape.
        let three_four = png_header(900, 1200);
        assert_eq!(
            video_aspect_from_image(&three_four),
            Some(VideoAspect::Portrait)
        );
        assert_eq!(ri("omni", &none, &three_four), Some("omni_portrait"));
        let square = png_header(512, 512);
        assert_eq!(
            video_aspect_from_image(&square),
            Some(VideoAspect::Landscape)
        );
        let four_three = png_header(1200, 900);
        assert_eq!(
            video_aspect_from_image(&four_three),
            Some(VideoAspect::Landscape)
        );
        assert_eq!(
            ri("veo_3_1_r2v_fast", &none, &square),
            Some("veo_3_1_r2v_fast")
        );
        // An explicit aspect, even one videos lack, wins over the image; garbage is ignored.
        assert_eq!(
            ri("veo_3_1_t2v_fast", &hints(Some("1:1"), None), &portrait),
            Some("veo_3_1_t2v_fast_landscape")
        );
        assert_eq!(video_aspect_from_image(b"\x00garbage"), None);
        assert_eq!(
            ri("veo_3_1_t2v_fast", &none, b"\x00garbage"),
            Some("veo_3_1_t2v_fast_landscape")
        );
    }

    #[test]
    fn tier_two_upgrades_only_to_existing_ultra_keys() {
        let key = |id, tier| adjust_key_for_tier(model(id), tier).0;
        // The alias `veo_3_1_t2v_fast` (→ `veo_3_1_t2v_fast_landscape`) on a TIER_TWO account.
        let fast = resolve_video("veo_3_1_t2v_fast", &ResolveHints::default(), None).unwrap();
        let (k, note) = adjust_key_for_tier(fast, Tier::Ultra);
        assert_eq!(k, "veo_3_1_t2v_fast_ultra");
        assert!(note.unwrap().ends_with("veo_3_1_t2v_fast_ultra"));
        assert_eq!(
            key("veo_3_1_t2v_fast_portrait_4k", Tier::Ultra),
            "veo_3_1_t2v_fast_portrait_ultra"
        );
        assert_eq!(
            key("veo_3_1_i2v_s_fast_fl", Tier::Ultra),
            "veo_3_1_i2v_s_fast_ultra_fl"
        );
        assert_eq!(
            key("veo_3_1_r2v_fast_portrait_8s", Tier::Ultra),
            "veo_3_1_r2v_fast_portrait_ultra"
        );
        // Lite, quality, omni, 4s/6s and extend models have no ultra key.
        for id in [
            "veo_3_1_t2v_lite_portrait",
            "veo_3_1_i2v_lite_landscape",
            "veo_3_1_interpolation_lite_landscape",
            "veo_3_1_t2v_landscape",
            "veo_3_1_t2v_portrait_4k",
            "veo_3_1_i2v_s_landscape",
            "veo_3_1_t2v_fast_4s",
            "veo_3_1_i2v_s_fast_6s_fl",
            "veo_3_1_extend",
            "omni",
        ] {
            assert_eq!(
                adjust_key_for_tier(model(id), Tier::Ultra),
                (model(id).key.to_string(), None),
                "{id}"
            );
        }
        // Across the catalogue: exactly the six fast keys with an ultra sibling are upgraded.
        let mut upgraded: Vec<(&str, String)> = Vec::new();
        for m in video_models() {
            let (k, note) = adjust_key_for_tier(m, Tier::Ultra);
            assert_eq!(note.is_some(), k != m.key, "{}", m.id);
            assert!(is_video_model_key(&k), "{}", m.id);
            if k != m.key && !upgraded.iter().any(|(from, _)| *from == m.key) {
                upgraded.push((m.key, k));
            }
        }
        assert_eq!(
            upgraded,
            [
                (
                    "veo_3_1_t2v_fast_portrait",
                    "veo_3_1_t2v_fast_portrait_ultra".to_string()
                ),
                ("veo_3_1_t2v_fast", "veo_3_1_t2v_fast_ultra".to_string()),
                (
                    "veo_3_1_i2v_s_fast_portrait_fl",
                    "veo_3_1_i2v_s_fast_portrait_ultra_fl".to_string()
                ),
                (
                    "veo_3_1_i2v_s_fast_fl",
                    "veo_3_1_i2v_s_fast_ultra_fl".to_string()
                ),
                (
                    "veo_3_1_r2v_fast_portrait",
                    "veo_3_1_r2v_fast_portrait_ultra".to_string()
                ),
                (
                    "veo_3_1_r2v_fast_landscape",
                    "veo_3_1_r2v_fast_landscape_ultra".to_string()
                ),
            ]
        );
    }

    #[test]
    fn pro_downgrades_and_free_keeps() {
        let (k, note) =
            adjust_key_for_tier(model("veo_3_1_i2v_s_fast_portrait_ultra_fl"), Tier::Pro);
        assert_eq!(k, "veo_3_1_i2v_s_fast_portrait_fl");
        assert!(note.unwrap().contains("TIER_ONE"));
        let key = |id, tier| adjust_key_for_tier(model(id), tier).0;
        assert_eq!(
            key("veo_3_1_t2v_fast_ultra_4k", Tier::Pro),
            "veo_3_1_t2v_fast"
        );
        assert_eq!(
            key("veo_3_1_r2v_fast_landscape_ultra_8s", Tier::Pro),
            "veo_3_1_r2v_fast_landscape"
        );
        // The rule removes `_ultra` without checking the result (relaxed keys have no twin).
        assert_eq!(
            key("veo_3_1_t2v_fast_ultra_relaxed", Tier::Pro),
            "veo_3_1_t2v_fast_relaxed"
        );
        assert_eq!(
            adjust_key_for_tier(model("veo_3_1_t2v_fast_8s"), Tier::Pro),
            ("veo_3_1_t2v_fast".to_string(), None)
        );
        for m in video_models() {
            assert_eq!(
                adjust_key_for_tier(m, Tier::Free),
                (m.key.to_string(), None),
                "{}",
                m.id
            );
        }
        // An Ultra account keeps keys that are already ultra.
        assert_eq!(
            key("veo_3_1_i2v_s_fast_ultra_fl", Tier::Ultra),
            "veo_3_1_i2v_s_fast_ultra_fl"
        );
    }

    #[test]
    fn single_image_keys() {
        assert_eq!(
            single_image_key("veo_3_1_i2v_s_fast_portrait_ultra_fl"),
            "veo_3_1_i2v_s_fast_portrait_ultra"
        );
        assert_eq!(
            single_image_key("veo_3_1_i2v_s_quality_4s_fl"),
            "veo_3_1_i2v_s_quality_4s"
        );
        assert_eq!(single_image_key("veo_3_1_i2v_s_fl"), "veo_3_1_i2v_s");
        assert_eq!(
            single_image_key("veo_3_1_i2v_s_fast_ultra_relaxed"),
            "veo_3_1_i2v_s_fast_ultra_relaxed"
        );
        assert_eq!(
            single_image_key("veo_3_1_i2v_s_lite_6s"),
            "veo_3_1_i2v_s_lite_6s"
        );
        assert_eq!(single_image_key("x_fl_y_fl"), "x_y");
        assert_eq!(single_image_key("veo_3_1_flow"), "veo_3_1_flow");
        // Free/Pro → Ultra column of the catalogue: the tier-adjusted key, then stripped.
        let one = |id, tier| single_image_key(&adjust_key_for_tier(model(id), tier).0);
        assert_eq!(
            one("veo_3_1_i2v_s_fast_portrait_8s_fl", Tier::Free),
            "veo_3_1_i2v_s_fast_portrait"
        );
        assert_eq!(
            one("veo_3_1_i2v_s_fast_portrait_8s_fl", Tier::Ultra),
            "veo_3_1_i2v_s_fast_portrait_ultra"
        );
        assert_eq!(
            one("veo_3_1_i2v_s_fast_landscape_8s_fl", Tier::Ultra),
            "veo_3_1_i2v_s_fast_ultra"
        );
        assert_eq!(
            one("veo_3_1_i2v_s_portrait_6s_4k", Tier::Ultra),
            "veo_3_1_i2v_s_quality_6s"
        );
        assert_eq!(
            one("veo_3_1_i2v_lite_portrait_6s", Tier::Ultra),
            "veo_3_1_i2v_s_lite_6s"
        );
        for m in video_models()
            .iter()
            .filter(|m| m.video_type == VideoType::I2v)
        {
            let k = one(m.id, Tier::Free);
            assert!(!k.contains("_fl"), "{} → {k}", m.id);
        }
    }
}
