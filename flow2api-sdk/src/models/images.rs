//! The image catalogue (`docs/upstream.md#models`): the 32 public ids, the three aliases and their
//! descriptions.

use super::{
    dims, find_image, image_models, normalize_aspect, normalize_size, ImageAspect, ImageModel,
    ResolveHints, Upsample,
};

use ImageAspect::{FourThree as FT, Landscape as L, Portrait as P, Square as S, ThreeFour as TF};

const GEM_PIX_2: &str = "GEM_PIX_2";
const NARWHAL: &str = "NARWHAL";
const IMAGEN_3_5: &str = "IMAGEN_3_5";

const fn m(
    id: &'static str,
    upstream: &'static str,
    aspect: ImageAspect,
    upsample: Option<Upsample>,
) -> ImageModel {
    ImageModel {
        id,
        upstream,
        aspect,
        upsample,
    }
}

const K2: Option<Upsample> = Some(Upsample::TwoK);
const K4: Option<Upsample> = Some(Upsample::FourK);

/// In the original Flow2API's order.
pub(super) static IMAGE_MODELS: [ImageModel; 32] = [
    m("gemini-3.0-pro-image-landscape", GEM_PIX_2, L, None),
    m("gemini-3.0-pro-image-portrait", GEM_PIX_2, P, None),
    m("gemini-3.0-pro-image-square", GEM_PIX_2, S, None),
    m("gemini-3.0-pro-image-four-three", GEM_PIX_2, FT, None),
    m("gemini-3.0-pro-image-three-four", GEM_PIX_2, TF, None),
    m("gemini-3.0-pro-image-landscape-2k", GEM_PIX_2, L, K2),
    m("gemini-3.0-pro-image-portrait-2k", GEM_PIX_2, P, K2),
    m("gemini-3.0-pro-image-square-2k", GEM_PIX_2, S, K2),
    m("gemini-3.0-pro-image-four-three-2k", GEM_PIX_2, FT, K2),
    m("gemini-3.0-pro-image-three-four-2k", GEM_PIX_2, TF, K2),
    m("gemini-3.0-pro-image-landscape-4k", GEM_PIX_2, L, K4),
    m("gemini-3.0-pro-image-portrait-4k", GEM_PIX_2, P, K4),
    m("gemini-3.0-pro-image-square-4k", GEM_PIX_2, S, K4),
    m("gemini-3.0-pro-image-four-three-4k", GEM_PIX_2, FT, K4),
    m("gemini-3.0-pro-image-three-four-4k", GEM_PIX_2, TF, K4),
    m("imagen-4.0-generate-preview-landscape", IMAGEN_3_5, L, None),
    m("imagen-4.0-generate-preview-portrait", IMAGEN_3_5, P, None),
    m("gemini-3.1-flash-image-landscape", NARWHAL, L, None),
    m("gemini-3.1-flash-image-portrait", NARWHAL, P, None),
    m("gemini-3.1-flash-image-square", NARWHAL, S, None),
    m("gemini-3.1-flash-image-four-three", NARWHAL, FT, None),
    m("gemini-3.1-flash-image-three-four", NARWHAL, TF, None),
    m("gemini-3.1-flash-image-landscape-2k", NARWHAL, L, K2),
    m("gemini-3.1-flash-image-portrait-2k", NARWHAL, P, K2),
    m("gemini-3.1-flash-image-square-2k", NARWHAL, S, K2),
    m("gemini-3.1-flash-image-four-three-2k", NARWHAL, FT, K2),
    m("gemini-3.1-flash-image-three-four-2k", NARWHAL, TF, K2),
    m("gemini-3.1-flash-image-landscape-4k", NARWHAL, L, K4),
    m("gemini-3.1-flash-image-portrait-4k", NARWHAL, P, K4),
    m("gemini-3.1-flash-image-square-4k", NARWHAL, S, K4),
    m("gemini-3.1-flash-image-four-three-4k", NARWHAL, FT, K4),
    m("gemini-3.1-flash-image-three-four-4k", NARWHAL, TF, K4),
];

/// An image alias (`docs/upstream.md#models`): a simplified name that stands for a family of ids
/// differing only in aspect and upsample size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFamily {
    /// The alias a client may send as `model`, e.g. `gemini-3.1-flash-image`.
    pub alias: &'static str,
    /// A human name, e.g. `Gemini 3.1 Flash Image`.
    pub name: &'static str,
    /// Upstream `imageModelName` shared by every id of the family.
    pub upstream: &'static str,
    /// The description listed by `/v1/models/aliases`.
    pub description: &'static str,
    /// Supported aspects; anything else falls back to landscape.
    pub aspects: &'static [ImageAspect],
    /// Supported upsample sizes (`2k`/`4k`); other sizes are ignored.
    pub sizes: &'static [Upsample],
}

static IMAGE_FAMILIES: [ImageFamily; 3] = [
    ImageFamily {
        alias: "gemini-3.0-pro-image",
        name: "Gemini 3.0 Pro Image",
        upstream: GEM_PIX_2,
        description: "Image generation (alias) - aspects: landscape, portrait, square, \
                      four-three, three-four; sizes: 1k, 2k, 4k",
        aspects: &ImageAspect::ALL,
        sizes: &[Upsample::TwoK, Upsample::FourK],
    },
    ImageFamily {
        alias: "gemini-3.1-flash-image",
        name: "Gemini 3.1 Flash Image",
        upstream: NARWHAL,
        description: "Image generation (alias) - aspects: landscape, portrait, square, \
                      four-three, three-four; sizes: 1k, 2k, 4k",
        aspects: &ImageAspect::ALL,
        sizes: &[Upsample::TwoK, Upsample::FourK],
    },
    ImageFamily {
        alias: "imagen-4.0-generate-preview",
        name: "Imagen 4.0 Generate Preview",
        upstream: IMAGEN_3_5,
        description: "Image generation (alias) - aspects: landscape, portrait; sizes: 1k",
        aspects: &[ImageAspect::Landscape, ImageAspect::Portrait],
        sizes: &[],
    },
];

/// The three image aliases.
pub fn image_aliases() -> &'static [ImageFamily] {
    &IMAGE_FAMILIES
}

/// Looks up an image alias by its exact name.
pub fn find_image_alias(name: &str) -> Option<&'static ImageFamily> {
    IMAGE_FAMILIES.iter().find(|f| f.alias == name)
}

impl ImageFamily {
    /// Whether the family has ids for `aspect`.
    pub fn supports_aspect(&self, aspect: ImageAspect) -> bool {
        self.aspects.contains(&aspect)
    }

    /// Whether the family has ids upsampled to `size`.
    pub fn supports_size(&self, size: Upsample) -> bool {
        self.sizes.contains(&size)
    }

    /// Every id of the family, in catalogue order.
    pub fn models(&self) -> impl Iterator<Item = &'static ImageModel> + '_ {
        image_models()
            .iter()
            .filter(move |m| m.upstream == self.upstream)
    }

    /// The id for an aspect and size, if the family has one.
    pub fn model(
        &self,
        aspect: ImageAspect,
        size: Option<Upsample>,
    ) -> Option<&'static ImageModel> {
        self.models()
            .find(|m| m.aspect == aspect && m.upsample == size)
    }

    /// Resolves the alias with request hints (`docs/upstream.md#models`): aspect from `hints`, else
    /// from the dimensions of `first_image`, else landscape; an unsupported aspect becomes
    /// landscape; `2k`/`4k` only if supported, any other size ignored.
    pub fn resolve(
        &self,
        hints: &ResolveHints,
        first_image: Option<&[u8]>,
    ) -> Option<&'static ImageModel> {
        let aspect = match hints.aspect.as_deref().and_then(normalize_aspect) {
            Some(a) => ImageAspect::from_slug(&a),
            None => first_image.and_then(dims::aspect_from_image),
        };
        let aspect = aspect
            .filter(|a| self.supports_aspect(*a))
            .unwrap_or(ImageAspect::Landscape);
        let size = hints
            .size
            .as_deref()
            .and_then(normalize_size)
            .and_then(|s| Upsample::from_slug(&s))
            .filter(|s| self.supports_size(*s));
        self.model(aspect, size)
    }
}

fn family_of(upstream: &str) -> Option<&'static ImageFamily> {
    IMAGE_FAMILIES.iter().find(|f| f.upstream == upstream)
}

impl ImageModel {
    /// The alias this id belongs to.
    pub fn family(&self) -> Option<&'static ImageFamily> {
        family_of(self.upstream)
    }

    /// A short English description, e.g.
    /// `Gemini 3.1 Flash Image, 16:9, upscaled to 4K (Ultra)`.
    pub fn description(&self) -> String {
        let name = self.family().map_or(self.upstream, |f| f.name);
        let mut out = format!("{name}, {}", self.aspect.ratio());
        if let Some(up) = self.upsample {
            out.push_str(&format!(
                ", upscaled to {} ({})",
                up.label(),
                self.min_tier().label()
            ));
        }
        out
    }
}

/// A short English description of an image id or image alias for `/v1/models`, e.g.
/// `Gemini 3.1 Flash Image, 16:9, upscaled to 4K (Ultra)`. Any other name gets
/// `Flow model <id>`.
pub fn model_description(id: &str) -> String {
    if let Some(model) = find_image(id) {
        model.description()
    } else if let Some(family) = find_image_alias(id) {
        family.description.to_string()
    } else {
        format!("Flow model {id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{min_tier, Tier};

    #[test]
    fn catalogue_has_32_unique_ids() {
        assert_eq!(image_models().len(), 32);
        for (i, a) in image_models().iter().enumerate() {
            assert!(
                image_models()[i + 1..].iter().all(|b| b.id != a.id),
                "duplicate {}",
                a.id
            );
        }
    }

    #[test]
    fn families_generate_exactly_the_catalogue() {
        let mut count = 0;
        for f in image_aliases() {
            assert!(
                find_image(f.alias).is_none(),
                "alias {} is not an id",
                f.alias
            );
            for &aspect in f.aspects {
                let sizes = std::iter::once(None).chain(f.sizes.iter().copied().map(Some));
                for size in sizes {
                    let mut id = format!("{}-{}", f.alias, aspect.slug());
                    if let Some(s) = size {
                        id = format!("{id}-{}", s.slug());
                    }
                    let m = find_image(&id).unwrap_or_else(|| panic!("missing {id}"));
                    assert_eq!(
                        (m.upstream, m.aspect, m.upsample),
                        (f.upstream, aspect, size)
                    );
                    assert_eq!(f.model(aspect, size), Some(m));
                    assert_eq!(m.family(), Some(f));
                    count += 1;
                }
            }
        }
        assert_eq!(count, 32);
    }

    #[test]
    fn min_tier_follows_upsample() {
        for m in image_models() {
            let expected = match m.upsample {
                None => Tier::Free,
                Some(Upsample::TwoK) => Tier::Pro,
                Some(Upsample::FourK) => Tier::Ultra,
            };
            assert_eq!(m.min_tier(), expected, "{}", m.id);
        }
        assert_eq!(min_tier("gemini-3.0-pro-image-square-2k"), Tier::Pro);
        assert_eq!(min_tier("imagen-4.0-generate-preview-portrait"), Tier::Free);
        assert_eq!(min_tier("veo_3_1_t2v_fast_ultra"), Tier::Ultra);
        assert_eq!(min_tier("veo_3_1_t2v_fast_1080p"), Tier::Pro);
    }

    #[test]
    fn spot_check_table_rows() {
        let m = find_image("gemini-3.0-pro-image-four-three-4k").unwrap();
        assert_eq!(m.upstream, "GEM_PIX_2");
        assert_eq!(m.aspect.wire(), "IMAGE_ASPECT_RATIO_LANDSCAPE_FOUR_THREE");
        assert_eq!(
            m.upsample.map(Upsample::wire),
            Some("UPSAMPLE_IMAGE_RESOLUTION_4K")
        );
        let m = find_image("gemini-3.1-flash-image-three-four-2k").unwrap();
        assert_eq!(m.upstream, "NARWHAL");
        assert_eq!(m.aspect.wire(), "IMAGE_ASPECT_RATIO_PORTRAIT_THREE_FOUR");
        assert_eq!(
            m.upsample.map(Upsample::wire),
            Some("UPSAMPLE_IMAGE_RESOLUTION_2K")
        );
        let m = find_image("imagen-4.0-generate-preview-portrait").unwrap();
        assert_eq!(m.upstream, "IMAGEN_3_5");
        assert_eq!(m.aspect.wire(), "IMAGE_ASPECT_RATIO_PORTRAIT");
        assert_eq!(m.upsample, None);
        assert!(find_image("imagen-4.0-generate-preview-square").is_none());
        assert!(find_image("imagen-4.0-generate-preview-landscape-2k").is_none());
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            model_description("gemini-3.1-flash-image-landscape-4k"),
            "Gemini 3.1 Flash Image, 16:9, upscaled to 4K (Ultra)"
        );
        assert_eq!(
            model_description("gemini-3.0-pro-image-three-four-2k"),
            "Gemini 3.0 Pro Image, 3:4, upscaled to 2K (Pro)"
        );
        assert_eq!(
            model_description("imagen-4.0-generate-preview-portrait"),
            "Imagen 4.0 Generate Preview, 9:16"
        );
        assert!(model_description("gemini-3.1-flash-image").starts_with("Image generation (alias)"));
        assert_eq!(model_description("nope"), "Flow model nope");
    }
}
