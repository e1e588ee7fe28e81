//! Request-parameter extraction for name resolution (`docs/upstream.md#models`).

use serde_json::{Map, Value};

use super::{ImageAspect, ResolveHints};

/// Normalises an aspect ratio as a client wrote it (`docs/upstream.md#models`).
///
/// Trims, turns full-width `：`, `/`, `x` and `X` into `:`, removes spaces, then maps `16:9`,
/// `9:16`, `1:1`, `4:3`, `3:4` and the words `landscape`, `portrait`, `square`, `four-three`,
/// `three-four` (also with `_`, any letter case) to an [`ImageAspect::slug`]. Other values are
/// returned as normalised (they fall back to landscape later); an empty value is `None`.
pub fn normalize_aspect(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '：' | '/' | 'x' | 'X' => ':',
            c => c,
        })
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    let slug = match cleaned.to_ascii_lowercase().replace('_', "-").as_str() {
        "16:9" | "landscape" => "landscape",
        "9:16" | "portrait" => "portrait",
        "1:1" | "square" => "square",
        "4:3" | "four-three" => "four-three",
        "3:4" | "three-four" => "three-four",
        _ => return Some(cleaned),
    };
    Some(slug.to_string())
}

/// Normalises a size (`docs/upstream.md#models`): trimmed and lower-cased (`1K` → `1k`,
/// `1080P` → `1080p`); an empty value is `None`.
pub fn normalize_size(raw: &str) -> Option<String> {
    let s = raw.trim();
    (!s.is_empty()).then(|| s.to_lowercase())
}

/// Maps an OpenAI `quality` to a size: `low`/`standard` → none, `medium` → `2k`,
/// `high`/`hd`/`ultra` → `4k`; a quality that is itself `1k`/`2k`/`4k`/`1080p` is that size;
/// anything else is `None`.
pub fn quality_to_size(raw: &str) -> Option<String> {
    let q = raw.trim().to_lowercase();
    let size = match q.as_str() {
        "medium" => "2k",
        "high" | "hd" | "ultra" => "4k",
        "1k" | "2k" | "4k" | "1080p" => q.as_str(),
        _ => return None,
    };
    Some(size.to_string())
}

/// Maps an OpenAI `size` of the form `WxH` (2–5 digits each, e.g. `1024x1536`) to the nearest of
/// the five aspects by absolute ratio difference; anything else is `None`.
pub fn size_to_aspect(raw: &str) -> Option<ImageAspect> {
    let (w, h) = raw.trim().split_once(['x', 'X', '×'])?;
    let dim = |s: &str| -> Option<u32> {
        let s = s.trim();
        let ok = (2..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| s.parse().ok()).flatten()
    };
    let (w, h) = (dim(w)?, dim(h)?);
    (w > 0 && h > 0).then(|| super::nearest_aspect(w, h))
}

/// True for the sizes the catalogue knows, which an OpenAI `size` may also carry.
fn is_size_token(s: &str) -> bool {
    matches!(s, "1k" | "2k" | "4k" | "1080p")
}

/// First non-empty value wins, per field.
#[derive(Default)]
struct Acc {
    aspect: Option<String>,
    size: Option<String>,
}

impl Acc {
    fn aspect(&mut self, obj: &Map<String, Value>, keys: &[&str]) {
        for key in keys {
            if self.aspect.is_none() {
                self.aspect = obj
                    .get(*key)
                    .and_then(Value::as_str)
                    .and_then(normalize_aspect);
            }
        }
    }

    fn size(&mut self, obj: &Map<String, Value>, keys: &[&str]) {
        for key in keys {
            if self.size.is_none() {
                self.size = obj
                    .get(*key)
                    .and_then(Value::as_str)
                    .and_then(normalize_size);
            }
        }
    }

    /// OpenAI-style `size`: `WxH` gives an aspect; a bare `2k`-like token gives a size.
    fn openai_size(&mut self, obj: &Map<String, Value>) {
        let Some(raw) = obj.get("size").and_then(Value::as_str) else {
            return;
        };
        if let Some(aspect) = size_to_aspect(raw) {
            if self.aspect.is_none() {
                self.aspect = Some(aspect.slug().to_string());
            }
        } else if self.size.is_none() {
            self.size = normalize_size(raw).filter(|s| is_size_token(s));
        }
    }

    fn quality(&mut self, obj: &Map<String, Value>, keys: &[&str]) {
        for key in keys {
            if self.size.is_none() {
                self.size = obj
                    .get(*key)
                    .and_then(Value::as_str)
                    .and_then(quality_to_size);
            }
        }
    }

    /// Step 1: `imageConfig` / `image_config`.
    fn image_config(&mut self, ic: &Map<String, Value>) {
        self.aspect(ic, &["aspectRatio", "aspect_ratio", "aspect"]);
        self.size(ic, &["imageSize", "image_size", "resolution"]);
        self.openai_size(ic);
        self.quality(ic, &["quality", "imageQuality", "image_quality"]);
    }

    /// Steps 1 and 2 on one `generationConfig` object.
    fn generation_config(&mut self, gc: &Map<String, Value>) {
        for key in ["imageConfig", "image_config"] {
            if let Some(ic) = gc.get(key).and_then(Value::as_object) {
                self.image_config(ic);
            }
        }
        self.aspect(gc, &["aspectRatio", "aspect_ratio"]);
        self.size(gc, &["imageSize", "image_size"]);
        self.openai_size(gc);
        self.quality(gc, &["quality"]);
    }
}

pub(super) fn hints_from_body(body: &Value) -> ResolveHints {
    let mut acc = Acc::default();
    let Some(obj) = body.as_object() else {
        return ResolveHints::default();
    };
    // Steps 1–3: the body's own `generationConfig`, then `extra_body` / `extraBody`.
    if let Some(gc) = obj.get("generationConfig").and_then(Value::as_object) {
        acc.generation_config(gc);
    }
    for key in ["extra_body", "extraBody"] {
        let gc = obj
            .get(key)
            .and_then(Value::as_object)
            .and_then(|extra| extra.get("generationConfig"))
            .and_then(Value::as_object);
        if let Some(gc) = gc {
            acc.generation_config(gc);
        }
    }
    // Step 4: top-level extras.
    acc.openai_size(obj);
    acc.quality(obj, &["quality"]);
    acc.aspect(obj, &["aspect_ratio", "aspectRatio"]);
    acc.size(obj, &["image_size", "imageSize"]);
    ResolveHints {
        aspect: acc.aspect,
        size: acc.size,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::models::{hints_from_body, resolve_image, ResolveHints};

    use super::*;

    fn hints(aspect: Option<&str>, size: Option<&str>) -> ResolveHints {
        ResolveHints {
            aspect: aspect.map(str::to_string),
            size: size.map(str::to_string),
        }
    }

    fn resolve(name: &str, body: Value) -> Option<&'static str> {
        resolve_image(name, &hints_from_body(&body), None).map(|m| m.id)
    }

    fn image_config(aspect: &str, size: &str) -> Value {
        json!({"generationConfig": {"imageConfig": {"aspectRatio": aspect, "imageSize": size}}})
    }

    #[test]
    fn aspect_normalisation() {
        assert_eq!(normalize_aspect(" 16:9 ").as_deref(), Some("landscape"));
        assert_eq!(normalize_aspect("9／16"), Some("9／16".to_string()));
        assert_eq!(normalize_aspect("9/16").as_deref(), Some("portrait"));
        assert_eq!(normalize_aspect("1 x 1").as_deref(), Some("square"));
        assert_eq!(normalize_aspect("4：3").as_deref(), Some("four-three"));
        assert_eq!(normalize_aspect("3X4").as_deref(), Some("three-four"));
        assert_eq!(
            normalize_aspect("four_three").as_deref(),
            Some("four-three")
        );
        assert_eq!(normalize_aspect("PORTRAIT").as_deref(), Some("portrait"));
        assert_eq!(normalize_aspect("21:9").as_deref(), Some("21:9"));
        assert_eq!(normalize_aspect("   "), None);
    }

    #[test]
    fn size_and_quality() {
        assert_eq!(normalize_size(" 4K ").as_deref(), Some("4k"));
        assert_eq!(normalize_size("1080P").as_deref(), Some("1080p"));
        assert_eq!(normalize_size(""), None);
        assert_eq!(quality_to_size("low"), None);
        assert_eq!(quality_to_size("standard"), None);
        assert_eq!(quality_to_size("medium").as_deref(), Some("2k"));
        assert_eq!(quality_to_size("HD").as_deref(), Some("4k"));
        assert_eq!(quality_to_size("ultra").as_deref(), Some("4k"));
        assert_eq!(quality_to_size("2K").as_deref(), Some("2k"));
        assert_eq!(quality_to_size("auto"), None);
    }

    #[test]
    fn openai_size_to_aspect() {
        // 1024/1536 = 0.667 is nearer 3:4 (0.75) than 9:16 (0.5625).
        assert_eq!(size_to_aspect("1024x1536"), Some(ImageAspect::ThreeFour));
        assert_eq!(size_to_aspect("1080x1920"), Some(ImageAspect::Portrait));
        assert_eq!(size_to_aspect(" 720 X 1280 "), Some(ImageAspect::Portrait));
        assert_eq!(size_to_aspect("1536x1024"), Some(ImageAspect::FourThree));
        assert_eq!(size_to_aspect("1024x1024"), Some(ImageAspect::Square));
        assert_eq!(size_to_aspect("1792x1024"), Some(ImageAspect::Landscape));
        assert_eq!(size_to_aspect("768x1024"), Some(ImageAspect::ThreeFour));
        assert_eq!(size_to_aspect("auto"), None);
        assert_eq!(size_to_aspect("1x1"), None);
        assert_eq!(size_to_aspect("123456x100"), None);
        assert_eq!(size_to_aspect("00x100"), None);
    }

    #[test]
    fn documented_examples() {
        let flash = "gemini-3.1-flash-image";
        assert_eq!(
            resolve(flash, image_config("1:1", "1K")),
            Some("gemini-3.1-flash-image-square")
        );
        assert_eq!(
            resolve(flash, image_config("16:9", "4K")),
            Some("gemini-3.1-flash-image-landscape-4k")
        );
        assert_eq!(
            resolve("gemini-3.0-pro-image", image_config("21:9", "2k")),
            Some("gemini-3.0-pro-image-landscape-2k")
        );
        assert_eq!(
            resolve("imagen-4.0-generate-preview", image_config("1:1", "4k")),
            Some("imagen-4.0-generate-preview-landscape")
        );
    }

    #[test]
    fn alias_defaults_and_fallbacks() {
        let none = ResolveHints::default();
        let r = |name: &str, h: &ResolveHints| resolve_image(name, h, None).map(|m| m.id);
        assert_eq!(
            r("gemini-3.1-flash-image", &none),
            Some("gemini-3.1-flash-image-landscape")
        );
        assert_eq!(
            r(
                "imagen-4.0-generate-preview",
                &hints(Some("portrait"), Some("2k"))
            ),
            Some("imagen-4.0-generate-preview-portrait")
        );
        assert_eq!(
            r(
                "gemini-3.0-pro-image",
                &hints(Some("three-four"), Some("1080p"))
            ),
            Some("gemini-3.0-pro-image-three-four")
        );
        // Raw ratios in hand-built hints are normalised too.
        assert_eq!(
            r("gemini-3.0-pro-image", &hints(Some("9:16"), Some("4K"))),
            Some("gemini-3.0-pro-image-portrait-4k")
        );
        // Exact ids pass through; unknown names are None.
        assert_eq!(
            r(
                "gemini-3.0-pro-image-square-2k",
                &hints(Some("portrait"), None)
            ),
            Some("gemini-3.0-pro-image-square-2k")
        );
        assert_eq!(r("gpt-image-1", &none), None);
        assert_eq!(r("", &none), None);
        assert_eq!(r("gemini-3.1-flash-image-landscape-1k", &none), None);
    }

    #[test]
    fn openai_body() {
        let body =
            json!({"model": "gemini-3.1-flash-image", "size": "1080x1920", "quality": "high"});
        assert_eq!(hints_from_body(&body), hints(Some("portrait"), Some("4k")));
        assert_eq!(
            resolve("gemini-3.1-flash-image", body),
            Some("gemini-3.1-flash-image-portrait-4k")
        );
        // gpt-image-1's portrait size is nearest 3:4, which Imagen lacks (→ landscape).
        let body = json!({"size": "1024x1536", "quality": "high"});
        assert_eq!(
            hints_from_body(&body),
            hints(Some("three-four"), Some("4k"))
        );
        assert_eq!(
            resolve("gemini-3.0-pro-image", body.clone()),
            Some("gemini-3.0-pro-image-three-four-4k")
        );
        assert_eq!(
            resolve("imagen-4.0-generate-preview", body),
            Some("imagen-4.0-generate-preview-landscape")
        );
        let body = json!({"size": "1536x1024", "quality": "medium", "aspect_ratio": "9:16"});
        assert_eq!(
            hints_from_body(&body),
            hints(Some("four-three"), Some("2k"))
        );
        let body = json!({"quality": "standard", "image_size": "2K", "aspectRatio": "3:4"});
        assert_eq!(
            hints_from_body(&body),
            hints(Some("three-four"), Some("2k"))
        );
    }

    #[test]
    fn extraction_order() {
        // imageConfig beats generationConfig's top level, which beats extra_body, then top level.
        let body = json!({
            "generationConfig": {
                "imageConfig": {"aspect_ratio": "", "aspect": "4:3"},
                "aspectRatio": "9:16",
                "imageSize": "2K"
            },
            "extra_body": {"generationConfig": {"aspectRatio": "1:1", "imageSize": "4K"}},
            "size": "1024x1536",
            "quality": "high"
        });
        assert_eq!(
            hints_from_body(&body),
            hints(Some("four-three"), Some("2k"))
        );

        let body = json!({"extraBody": {"generationConfig": {"image_config": {
            "size": "1024x1536", "image_quality": "medium"}}}});
        assert_eq!(
            hints_from_body(&body),
            hints(Some("three-four"), Some("2k"))
        );

        let body = json!({"extra_body": {"generationConfig": {"aspect_ratio": "3:4"}},
                          "generationConfig": {"image_size": "4k", "quality": "medium"}});
        assert_eq!(
            hints_from_body(&body),
            hints(Some("three-four"), Some("4k"))
        );

        let body =
            json!({"generationConfig": {"imageConfig": {"resolution": "1K", "quality": "hd"}}});
        assert_eq!(hints_from_body(&body), hints(None, Some("1k")));

        // An unmapped aspect still counts as found.
        let body = json!({"generationConfig": {"aspectRatio": "21:9"}, "size": "1024x1536"});
        assert_eq!(hints_from_body(&body), hints(Some("21:9"), None));
    }

    #[test]
    fn tolerant_of_wrong_types() {
        for body in [
            json!(null),
            json!([1, 2]),
            json!("x"),
            json!({"generationConfig": "16:9", "extra_body": 3, "extraBody": []}),
            json!({"generationConfig": {"imageConfig": [1], "aspectRatio": 16, "imageSize": {"a": 1}}}),
            json!({"size": 1024, "quality": true, "aspect_ratio": null, "imageSize": 4}),
            json!({"generationConfig": {"imageConfig": {"size": "axb", "quality": 9}}}),
        ] {
            assert_eq!(hints_from_body(&body), ResolveHints::default(), "{body}");
        }
    }
}
