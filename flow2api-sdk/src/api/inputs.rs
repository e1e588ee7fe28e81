//! Client image inputs (`docs/upstream.md#media-urls`): `data:` URLs and http(s) URLs, fetched only
//! from public addresses unless `ALLOW_PRIVATE_IMAGE_URLS` is set, with size limits. Our own
//! `/media/{id}` links are read from the media store directly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use http::Method;

use crate::memory::is_media_id;
use crate::seams::Bytes;
use crate::transport::{send_with_timeout, timeouts};

use super::error::ApiError;
use super::AppInner;

const MAX_REDIRECTS: usize = 3;

fn is_private_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.octets()[0] == 0
        // 100.64.0.0/10 carrier-grade NAT
        || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xC0) == 64)
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let seg0 = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (seg0 & 0xfe00) == 0xfc00 // unique local
        || (seg0 & 0xffc0) == 0xfe80 // link local
}

/// The prompt-length limit (`MAX_PROMPT_CHARS`), as a 400 naming `param`.
///
/// # Errors
/// When `prompt` is longer than `max` characters.
pub fn check_prompt_len(prompt: &str, max: usize, param: &str) -> Result<(), ApiError> {
    if prompt.chars().count() > max {
        return Err(
            ApiError::bad_request(format!("The prompt is longer than {max} characters."))
                .param(param),
        );
    }
    Ok(())
}

/// Whether `url` points at loopback, private or link-local space (by literal address or by a
/// name that always means the local machine or cloud metadata).
pub fn is_private_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_private_v4(ip),
        Some(url::Host::Ipv6(ip)) => is_private_v6(ip),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".local")
                || d.ends_with(".internal")
                || d.parse::<IpAddr>().is_ok_and(|ip| match ip {
                    IpAddr::V4(v4) => is_private_v4(v4),
                    IpAddr::V6(v6) => is_private_v6(v6),
                })
        }
        None => true,
    }
}

/// Decodes a `data:<mime>;base64,<data>` URL.
///
/// # Errors
/// 400 for anything else, or bytes over `max_bytes`.
pub fn decode_data_url(uri: &str, max_bytes: usize) -> Result<Bytes, ApiError> {
    let invalid = || {
        ApiError::bad_request("Invalid data URL: expected data:<mime>;base64,<data>")
            .param("messages")
    };
    let rest = uri.strip_prefix("data:").ok_or_else(invalid)?;
    let (meta, data) = rest.split_once(',').ok_or_else(invalid)?;
    let mime = meta.strip_suffix(";base64").ok_or_else(invalid)?;
    if !mime.starts_with("image/") {
        return Err(
            ApiError::bad_request(format!("Unsupported data URL type: {mime}")).param("messages"),
        );
    }
    // base64 expands by 4/3: refuse before decoding what cannot fit.
    if data.len() / 4 * 3 > max_bytes + 3 {
        return Err(too_large(max_bytes));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| invalid())?;
    if bytes.is_empty() {
        return Err(invalid());
    }
    if bytes.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(Bytes::from(bytes))
}

fn too_large(max: usize) -> ApiError {
    ApiError::bad_request(format!("Image is larger than {} bytes.", max)).param("messages")
}

impl AppInner {
    /// Loads one client image URI: a data URL, our own media link, or an http(s) URL.
    ///
    /// # Errors
    /// 400 with the reason.
    pub(crate) async fn load_image(&self, uri: &str) -> Result<Bytes, ApiError> {
        let uri = uri.trim();
        if uri.starts_with("data:") {
            return decode_data_url(uri, self.config.max_image_bytes);
        }
        let Ok(url) = url::Url::parse(uri) else {
            return Err(
                ApiError::bad_request(format!("Unsupported image URI: {}", shorten(uri)))
                    .param("messages"),
            );
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::bad_request(format!(
                "Unsupported image URI scheme: {}",
                url.scheme()
            ))
            .param("messages"));
        }
        if let Some(bytes) = self.own_media(&url).await {
            return Ok(bytes);
        }
        self.fetch_image(url).await
    }

    async fn own_media(&self, url: &url::Url) -> Option<Bytes> {
        let id = own_media_id(url, self.config.public_base_url.as_deref())?;
        let object = self.deps.media.get(id, None).await.ok()?.found()?;
        // An image input is held whole anyway; refuse what the limit would refuse.
        if object.total_len > self.config.max_image_bytes as u64 {
            return None;
        }
        object.collect().await.ok()
    }

    async fn fetch_image(&self, mut url: url::Url) -> Result<Bytes, ApiError> {
        let failed = |u: &url::Url, why: &str| {
            ApiError::bad_request(format!(
                "Failed to load image from {}: {why}",
                shorten(u.as_str())
            ))
            .param("messages")
        };
        for _ in 0..=MAX_REDIRECTS {
            if !self.config.allow_private_image_urls && is_private_url(&url) {
                return Err(ApiError::bad_request(format!(
                    "Image URL {} points at a private, loopback or link-local address, which is not allowed.",
                    shorten(url.as_str())
                ))
                .param("messages"));
            }
            let req = http::Request::builder()
                .method(Method::GET)
                .uri(url.as_str())
                .header(
                    "accept",
                    "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
                )
                .header("user-agent", crate::transport::FALLBACK_USER_AGENT)
                .body(Bytes::new())
                .map_err(|_| failed(&url, "invalid URL"))?;
            let resp = send_with_timeout(
                &*self.deps.http,
                &*self.deps.clock,
                req,
                timeouts::FETCH_IMAGE,
            )
            .await
            .map_err(|e| failed(&url, &e.to_string()))?;
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| failed(&url, "redirect without a location"))?;
                url = next;
                continue;
            }
            if status != http::StatusCode::OK {
                return Err(failed(&url, &format!("HTTP {}", status.as_u16())));
            }
            let body = resp.into_body();
            if body.is_empty() {
                return Err(failed(&url, "empty body"));
            }
            if body.len() > self.config.max_image_bytes {
                return Err(too_large(self.config.max_image_bytes));
            }
            return Ok(body);
        }
        Err(failed(&url, "too many redirects"))
    }
}

/// The media id of one of the gateway's own links: `{path of PUBLIC_BASE_URL}/media/{id}` (a
/// gateway mounted under a prefix), or `/media/{id}` (one at the root, or a link made before
/// `PUBLIC_BASE_URL` was set). The host is not compared: ids are random, and a link that
/// reaches the gateway under another name (a proxy, a LAN address) is still its own.
fn own_media_id<'u>(url: &'u url::Url, public_base: Option<&str>) -> Option<&'u str> {
    let path = url.path();
    let prefix = public_base
        .and_then(|b| url::Url::parse(b).ok())
        .map(|b| b.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let id = path
        .strip_prefix(prefix.as_str())
        .and_then(|rest| rest.strip_prefix("/media/"))
        .or_else(|| path.strip_prefix("/media/"))?;
    is_media_id(id).then_some(id)
}

/// Keeps URIs in messages short (data URLs can be megabytes).
fn shorten(s: &str) -> String {
    if s.len() <= 120 {
        return s.to_owned();
    }
    let mut end = 120;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for u in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://localhost:8080/",
            "http://metadata.google.internal/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            assert!(is_private_url(&url::Url::parse(u).unwrap()), "{u}");
        }
        for u in ["https://example.com/a.png", "http://8.8.8.8/"] {
            assert!(!is_private_url(&url::Url::parse(u).unwrap()), "{u}");
        }
    }

    #[test]
    fn own_media_links_carry_the_public_base_path() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(is_media_id(id), "a valid id for the test");
        let own = |u: &str, base: Option<&str>| {
            own_media_id(&url::Url::parse(u).unwrap(), base).map(str::to_owned)
        };
        let root = format!("http://127.0.0.1:8000/media/{id}");
        let prefixed = format!("https://example.test/flow/media/{id}");
        let deeper = format!("https://example.test/a/b/media/{id}");
        // At the root, with or without PUBLIC_BASE_URL.
        assert_eq!(own(&root, None).as_deref(), Some(id));
        assert_eq!(
            own(&root, Some("http://127.0.0.1:8000")).as_deref(),
            Some(id)
        );
        // Mounted under a prefix (Config trims a trailing slash; both forms are accepted).
        for base in ["https://example.test/flow", "https://example.test/flow/"] {
            assert_eq!(own(&prefixed, Some(base)).as_deref(), Some(id), "{base}");
            // A link made before the prefix was configured is still ours.
            assert_eq!(own(&root, Some(base)).as_deref(), Some(id), "{base}");
        }
        assert_eq!(
            own(&deeper, Some("https://example.test/a/b")).as_deref(),
            Some(id)
        );
        // Not ours: another prefix, no prefix configured, a longer path, a bad id.
        assert_eq!(own(&prefixed, Some("https://example.test/other")), None);
        assert_eq!(own(&prefixed, None), None);
        assert_eq!(
            own(&format!("{prefixed}/x"), Some("https://example.test/flow")),
            None
        );
        assert_eq!(
            own(
                "https://example.test/flow/media/..",
                Some("https://example.test/flow")
            ),
            None
        );
        assert_eq!(
            own(
                "https://example.test/flowmedia/x",
                Some("https://example.test/flow")
            ),
            None
        );
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            &decode_data_url("data:image/png;base64,aGVsbG8=", 100).unwrap()[..],
            b"hello"
        );
        assert!(decode_data_url("data:image/png;base64/aGVsbG8=", 100).is_err());
        assert!(decode_data_url("data:image/png;base64,!!!", 100).is_err());
        assert!(decode_data_url("data:text/plain;base64,aGVsbG8=", 100).is_err());
        assert!(decode_data_url("data:image/png;base64,aGVsbG8=", 3).is_err());
    }
}
