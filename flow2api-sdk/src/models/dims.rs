//! Image dimensions from file headers (PNG, JPEG, GIF, WebP, BMP), for aspect inference
//! (`docs/upstream.md#models`). Only headers are read; nothing is decoded.

use super::ImageAspect;

/// Width and height of a PNG, JPEG, GIF, WebP or BMP image, read from its header, with the EXIF
/// orientation applied (orientations 5–8 swap width and height). `None` for any other or
/// malformed data, or a zero dimension.
pub fn image_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let (w, h, orientation) = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(bytes)?
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg(bytes)?
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        (u32::from(le16(bytes, 6)?), u32::from(le16(bytes, 8)?), None)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        webp(bytes)?
    } else if bytes.starts_with(b"BM") {
        bmp(bytes)?
    } else {
        return None;
    };
    if w == 0 || h == 0 {
        return None;
    }
    Some(if matches!(orientation, Some(5..=8)) {
        (h, w)
    } else {
        (w, h)
    })
}

/// The nearest of 16:9, 9:16, 1:1, 4:3 and 3:4 to `width`/`height`, by absolute difference of
/// the ratios (ties go to the earlier one in that list). A zero height counts as landscape.
pub fn nearest_aspect(width: u32, height: u32) -> ImageAspect {
    if height == 0 {
        return ImageAspect::Landscape;
    }
    let ratio = f64::from(width) / f64::from(height);
    let mut best = ImageAspect::ALL[0];
    for aspect in ImageAspect::ALL {
        if (aspect.ratio_value() - ratio).abs() < (best.ratio_value() - ratio).abs() {
            best = aspect;
        }
    }
    best
}

/// The nearest aspect of an image's dimensions; `None` when the header cannot be read.
pub fn aspect_from_image(bytes: &[u8]) -> Option<ImageAspect> {
    image_dimensions(bytes).map(|(w, h)| nearest_aspect(w, h))
}

type Dims = (u32, u32, Option<u16>);

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_be_bytes)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_be_bytes)
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let [x, y, z] = bytes_at(b, at)?;
    Some(u32::from_le_bytes([x, y, z, 0]))
}

/// The `Orientation` tag (0x0112) of IFD0 in a TIFF-structured EXIF block, with or without the
/// `Exif\0\0` prefix.
fn exif_orientation(data: &[u8]) -> Option<u16> {
    let t = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
    let little = match t.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at| if little { le16(t, at) } else { be16(t, at) };
    let u32_at = |at| if little { le32(t, at) } else { be32(t, at) };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd)?);
    for i in 0..entries {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? == 0x0112 {
            // A SHORT value sits left-justified in the 4-byte value field.
            return u16_at(entry.checked_add(8)?);
        }
    }
    None
}

fn png(b: &[u8]) -> Option<Dims> {
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    let (w, h) = (be32(b, 16)?, be32(b, 20)?);
    // Look for an eXIf chunk; chunk = length, type, data, CRC.
    let mut orientation = None;
    let mut pos = 8usize;
    while pos < b.len() {
        let (Some(len), Some(kind)) = (be32(b, pos), b.get(pos + 4..pos + 8)) else {
            break;
        };
        let start = pos + 8;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            break;
        };
        if kind == b"eXIf" {
            orientation = b.get(start..end).and_then(exif_orientation);
            break;
        }
        if kind == b"IEND" {
            break;
        }
        match end.checked_add(4) {
            Some(next) => pos = next,
            None => break,
        }
    }
    Some((w, h, orientation))
}

fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

fn jpeg(b: &[u8]) -> Option<Dims> {
    let mut orientation = None;
    let mut pos = 2usize;
    loop {
        if *b.get(pos)? != 0xFF {
            return None;
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *b.get(pos)?;
        pos += 1;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(be16(b, pos)?);
        if len < 2 {
            return None;
        }
        let body = b.get(pos + 2..)?;
        let seg = body.get(..len - 2).unwrap_or(body);
        if is_sof(marker) {
            let h = be16(seg, 1)?;
            let w = be16(seg, 3)?;
            return Some((u32::from(w), u32::from(h), orientation));
        }
        if marker == 0xE1 && orientation.is_none() {
            if let Some(exif) = seg.strip_prefix(b"Exif\0\0") {
                orientation = exif_orientation(exif);
            }
        }
        pos = pos.checked_add(len)?;
    }
}

fn webp(b: &[u8]) -> Option<Dims> {
    let mut dims = None;
    let mut orientation = None;
    let mut pos = 12usize;
    while pos < b.len() {
        let (Some(kind), Some(size)) = (b.get(pos..pos + 4), le32(b, pos + 4)) else {
            break;
        };
        let start = pos + 8;
        let size = usize::try_from(size).ok()?;
        let body = b.get(start..).unwrap_or_default();
        let data = body.get(..size).unwrap_or(body);
        match kind {
            // Lossy: 3-byte frame tag, start code 9D 01 2A, then 14-bit width and height.
            b"VP8 " if dims.is_none() && data.get(3..6) == Some(&[0x9D, 0x01, 0x2A]) => {
                let (w, h) = (le16(data, 6)? & 0x3FFF, le16(data, 8)? & 0x3FFF);
                dims = Some((u32::from(w), u32::from(h)));
            }
            // Lossless: signature 0x2F, then 14-bit width-1 and height-1.
            b"VP8L" if dims.is_none() && data.first() == Some(&0x2F) => {
                let v = le32(data, 1)?;
                dims = Some(((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1));
            }
            // Extended: flags, 3 reserved bytes, 24-bit canvas width-1 and height-1.
            b"VP8X" if dims.is_none() => {
                dims = Some((le24(data, 4)? + 1, le24(data, 7)? + 1));
            }
            b"EXIF" => orientation = exif_orientation(data),
            _ => {}
        }
        // Chunks are padded to an even size.
        match start
            .checked_add(size)
            .and_then(|e| e.checked_add(size & 1))
        {
            Some(next) => pos = next,
            None => break,
        }
    }
    let (w, h) = dims?;
    Some((w, h, orientation))
}

fn bmp(b: &[u8]) -> Option<Dims> {
    let header = le32(b, 14)?;
    if header == 12 {
        // BITMAPCOREHEADER: 16-bit unsigned dimensions.
        Some((u32::from(le16(b, 18)?), u32::from(le16(b, 20)?), None))
    } else {
        // BITMAPINFOHEADER and later: signed 32-bit; a negative height means top-down.
        let w = i32::from_le_bytes(bytes_at(b, 18)?);
        let h = i32::from_le_bytes(bytes_at(b, 22)?);
        Some((w.unsigned_abs(), h.unsigned_abs(), None))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::models::{resolve_image, ResolveHints};

    /// A minimal PNG header: signature and IHDR chunk with its CRC (zeroed; it is not checked).
    pub fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend_from_slice(&13u32.to_be_bytes());
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0]);
        b.extend_from_slice(&[0; 4]);
        b
    }

    fn tiff_orientation(big_endian: bool, value: u16) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut t = if big_endian {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        t.extend_from_slice(&u32b(8));
        t.extend_from_slice(&u16b(2)); // two entries
                                       // An unrelated tag first (ImageWidth, LONG).
        t.extend_from_slice(&u16b(0x0100));
        t.extend_from_slice(&u16b(4));
        t.extend_from_slice(&u32b(1));
        t.extend_from_slice(&u32b(1600));
        t.extend_from_slice(&u16b(0x0112));
        t.extend_from_slice(&u16b(3));
        t.extend_from_slice(&u32b(1));
        t.extend_from_slice(&u16b(value));
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&u32b(0));
        t
    }

    fn jpeg_header(w: u16, h: u16, orientation: Option<(bool, u16)>) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        // APP0 JFIF
        b.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
        b.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        if let Some((be, o)) = orientation {
            let mut payload = b"Exif\0\0".to_vec();
            payload.extend(tiff_orientation(be, o));
            b.extend_from_slice(&[0xFF, 0xE1]);
            b.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
            b.extend(payload);
        }
        // DQT stub, then fill bytes, then SOF2.
        b.extend_from_slice(&[0xFF, 0xDB, 0, 4, 0, 0]);
        b.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0, 17, 8]);
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        b.extend_from_slice(&[0xFF, 0xDA]);
        b
    }

    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (kind, data) in chunks {
            body.extend_from_slice(*kind);
            body.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        b.extend(body);
        b
    }

    #[test]
    fn png() {
        assert_eq!(image_dimensions(&png_header(600, 1000)), Some((600, 1000)));
        // With an eXIf chunk carrying orientation 6 (rotate 90°).
        let mut b = png_header(1600, 900);
        let exif = tiff_orientation(true, 6);
        b.extend_from_slice(&u32::try_from(exif.len()).unwrap().to_be_bytes());
        b.extend_from_slice(b"eXIf");
        b.extend(exif);
        b.extend_from_slice(&[0; 4]);
        assert_eq!(image_dimensions(&b), Some((900, 1600)));
        assert_eq!(image_dimensions(&png_header(0, 10)), None);
    }

    #[test]
    fn jpeg() {
        assert_eq!(
            image_dimensions(&jpeg_header(1600, 900, None)),
            Some((1600, 900))
        );
        let rotated = jpeg_header(1600, 900, Some((false, 6)));
        assert_eq!(image_dimensions(&rotated), Some((900, 1600)));
        let rotated = jpeg_header(1600, 900, Some((true, 8)));
        assert_eq!(image_dimensions(&rotated), Some((900, 1600)));
        let flipped = jpeg_header(1600, 900, Some((true, 3)));
        assert_eq!(image_dimensions(&flipped), Some((1600, 900)));
        // Truncated before the SOF.
        let b = jpeg_header(1600, 900, None);
        assert_eq!(image_dimensions(&b[..24]), None);
    }

    #[test]
    fn gif_bmp() {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[0x20, 0x03, 0x58, 0x02]);
        assert_eq!(image_dimensions(&gif), Some((800, 600)));

        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&300i32.to_le_bytes());
        bmp.extend_from_slice(&(-400i32).to_le_bytes());
        assert_eq!(image_dimensions(&bmp), Some((300, 400)));

        let mut core = b"BM".to_vec();
        core.extend_from_slice(&[0; 12]);
        core.extend_from_slice(&12u32.to_le_bytes());
        core.extend_from_slice(&640u16.to_le_bytes());
        core.extend_from_slice(&480u16.to_le_bytes());
        assert_eq!(image_dimensions(&core), Some((640, 480)));
    }

    #[test]
    fn webp() {
        let mut vp8 = vec![0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        vp8.extend_from_slice(&640u16.to_le_bytes());
        vp8.extend_from_slice(&(480u16 | 0x4000).to_le_bytes()); // scale bits are masked
        assert_eq!(image_dimensions(&riff(&[(b"VP8 ", vp8)])), Some((640, 480)));

        let v: u32 = (1000 - 1) | ((1500 - 1) << 14);
        let mut vp8l = vec![0x2F];
        vp8l.extend_from_slice(&v.to_le_bytes());
        assert_eq!(
            image_dimensions(&riff(&[(b"VP8L", vp8l)])),
            Some((1000, 1500))
        );

        let mut vp8x = vec![0x08, 0, 0, 0];
        vp8x.extend_from_slice(&(1920u32 - 1).to_le_bytes()[..3]);
        vp8x.extend_from_slice(&(1080u32 - 1).to_le_bytes()[..3]);
        let plain = riff(&[(b"VP8X", vp8x.clone())]);
        assert_eq!(image_dimensions(&plain), Some((1920, 1080)));
        let exif = tiff_orientation(false, 5);
        let with_exif = riff(&[(b"VP8X", vp8x), (b"ICCP", vec![1, 2, 3]), (b"EXIF", exif)]);
        assert_eq!(image_dimensions(&with_exif), Some((1080, 1920)));
    }

    #[test]
    fn garbage_is_none() {
        for b in [
            &b""[..],
            b"hello world",
            b"\x89PNG\r\n\x1a\n",
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0",
            &[0xFF, 0xD8, 0xFF],
            &[0xFF, 0xD8, 0xFF, 0xC0, 0, 1],
            &[0xFF, 0xD8, 0x00, 0xC0],
            b"GIF89a\x01",
            b"RIFF\0\0\0\0WEBPVP8 \xff\xff\xff\xff",
            b"RIFF\0\0\0\0WEBPVP8L\x05\0\0\0\x2e\0\0\0\0",
            b"BM\0\0",
        ] {
            assert_eq!(image_dimensions(b), None, "{b:?}");
        }
        // Every prefix of valid headers is handled without panicking.
        let valid = [
            png_header(10, 20),
            jpeg_header(30, 40, Some((true, 6))),
            riff(&[(b"VP8X", vec![0; 10])]),
        ];
        for v in &valid {
            for n in 0..v.len() {
                let _ = image_dimensions(&v[..n]);
            }
        }
        // A cycle-free walk even with huge chunk lengths.
        let mut huge = b"RIFF\0\0\0\0WEBP".to_vec();
        huge.extend_from_slice(b"JUNK\xff\xff\xff\xff");
        assert_eq!(image_dimensions(&huge), None);
    }

    #[test]
    fn nearest() {
        assert_eq!(nearest_aspect(1920, 1080), ImageAspect::Landscape);
        assert_eq!(nearest_aspect(1080, 1920), ImageAspect::Portrait);
        assert_eq!(nearest_aspect(600, 1000), ImageAspect::Portrait);
        assert_eq!(nearest_aspect(1000, 1000), ImageAspect::Square);
        assert_eq!(nearest_aspect(1200, 900), ImageAspect::FourThree);
        assert_eq!(nearest_aspect(900, 1200), ImageAspect::ThreeFour);
        assert_eq!(nearest_aspect(4000, 1000), ImageAspect::Landscape);
        assert_eq!(nearest_aspect(1, 0), ImageAspect::Landscape);
    }

    #[test]
    fn first_image_drives_alias_aspect() {
        let none = ResolveHints::default();
        let portrait = png_header(600, 1000);
        let r = |name, hints: &ResolveHints, img: &[u8]| {
            resolve_image(name, hints, Some(img)).map(|m| m.id)
        };
        assert_eq!(
            r("gemini-3.1-flash-image", &none, &portrait),
            Some("gemini-3.1-flash-image-portrait")
        );
        assert_eq!(
            r("imagen-4.0-generate-preview", &none, &portrait),
            Some("imagen-4.0-generate-preview-portrait")
        );
        // Square photo: Gemini follows, Imagen falls back to landscape.
        let square = png_header(512, 512);
        assert_eq!(
            r("gemini-3.0-pro-image", &none, &square),
            Some("gemini-3.0-pro-image-square")
        );
        assert_eq!(
            r("imagen-4.0-generate-preview", &none, &square),
            Some("imagen-4.0-generate-preview-landscape")
        );
        // An explicit aspect (even an unmapped one) wins over the image.
        let wide = ResolveHints {
            aspect: Some("21:9".into()),
            size: Some("2k".into()),
        };
        assert_eq!(
            r("gemini-3.1-flash-image", &wide, &portrait),
            Some("gemini-3.1-flash-image-landscape-2k")
        );
        // A rotated JPEG counts as portrait; garbage bytes are ignored.
        let rotated = jpeg_header(1600, 900, Some((false, 6)));
        assert_eq!(
            r("gemini-3.1-flash-image", &none, &rotated),
            Some("gemini-3.1-flash-image-portrait")
        );
        assert_eq!(
            r("gemini-3.1-flash-image", &none, b"\x00garbage\xff\xd8"),
            Some("gemini-3.1-flash-image-landscape")
        );
        // Exact ids ignore the image; unknown names stay unknown.
        assert_eq!(
            r("gemini-3.1-flash-image-square", &none, &portrait),
            Some("gemini-3.1-flash-image-square")
        );
        assert_eq!(r("dall-e-3", &none, &portrait), None);
    }
}
