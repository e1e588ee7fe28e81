//! Client image inputs (`docs/upstream.md#media-urls`): `data:` URLs and http(s) URLs, fetched only
//! from public addresses unless `ALLOW_PRIVATE_IMAGE_URLS` is set, streamed under the size cap,
//! all of one request within one deadline. Our own `/media/{id}` links are read from the media
//! store directly.

use base64::Engine as _;
use futures::future::{select, Either};

use crate::public_ip;
use crate::seams::media::is_media_id_shape;
use crate::seams::{boxed, Bytes, HttpClient};
use crate::transport::{get_following_redirects, read_capped, FetchError};

use super::error::ApiError;
use super::AppInner;

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

/// Why one image could not be loaded; every kind reaches the client as the same 400, which
/// tells nothing of what the gateway's network looks like.
fn not_fetched(uri: &str) -> ApiError {
    ApiError::bad_request(format!(
        "The image URL could not be fetched: {}",
        shorten(uri)
    ))
}

impl AppInner {
    /// Loads every image URI of one request at once, within `IMAGE_FETCH_TIMEOUT` for all of
    /// them; errors name `param`.
    ///
    /// # Errors
    /// 400 naming the first image that failed, or the deadline.
    pub(crate) async fn load_images(
        &self,
        uris: &[String],
        param: &'static str,
    ) -> Result<Vec<Bytes>, ApiError> {
        if uris.is_empty() {
            return Ok(Vec::new());
        }
        let all = boxed(futures::future::try_join_all(
            uris.iter().map(|u| self.load_image(u)),
        ));
        let deadline = self.deps.clock.sleep(self.config.image_fetch_timeout);
        match select(all, deadline).await {
            Either::Left((loaded, _)) => loaded.map_err(|e| e.param(param)),
            Either::Right(_) => Err(ApiError::bad_request(format!(
                "The image URLs could not be fetched within {} s.",
                self.config.image_fetch_timeout.as_secs()
            ))
            .param(param)),
        }
    }

    /// [`load_images`](Self::load_images) of one URI that may fail quietly: `None` when it
    /// cannot be loaded in time (the continuous-conversation image is a bonus, not the ask).
    pub(crate) async fn load_optional_image(&self, uri: &str) -> Option<Bytes> {
        let load = boxed(self.load_image(uri));
        let deadline = self.deps.clock.sleep(self.config.image_fetch_timeout);
        match select(load, deadline).await {
            Either::Left((Ok(bytes), _)) => Some(bytes),
            _ => None,
        }
    }

    /// Loads one client image URI: a data URL, our own media link, or an http(s) URL.
    async fn load_image(&self, uri: &str) -> Result<Bytes, ApiError> {
        let uri = uri.trim();
        let max = self.config.max_image_bytes;
        if uri.starts_with("data:") {
            return decode_data_url(uri, max);
        }
        let Ok(url) = url::Url::parse(uri) else {
            return Err(ApiError::bad_request(format!(
                "Unsupported image URI: {}",
                shorten(uri)
            )));
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::bad_request(format!(
                "Unsupported image URI scheme: {}",
                url.scheme()
            )));
        }
        if let Some(bytes) = self.own_media(&url).await {
            return Ok(bytes);
        }
        let allow_private = self.config.allow_private_image_urls;
        // Where private addresses are allowed the ordinary client is used; otherwise the one
        // whose resolver refuses names that lead to non-public addresses.
        let http: &dyn HttpClient = if allow_private {
            &*self.deps.http
        } else {
            &*self.deps.untrusted_http
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
        );
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(crate::transport::FALLBACK_USER_AGENT),
        );
        // Every hop is checked, by its text here and by the resolver.
        let allow = |u: &url::Url| allow_private || public_ip::is_public_host(u);
        let resp = get_following_redirects(http, url.as_str(), &headers, allow)
            .await
            .map_err(|e| match e {
                FetchError::Refused(_) => ApiError::bad_request(format!(
                    "The image URL could not be fetched: {} points at a loopback, private or reserved address.",
                    shorten(uri)
                )),
                _ => not_fetched(uri),
            })?;
        let bytes = read_capped(resp, max).await.map_err(|e| match e {
            FetchError::TooLarge(_) => too_large(max),
            _ => not_fetched(uri),
        })?;
        if bytes.is_empty() {
            return Err(not_fetched(uri));
        }
        Ok(bytes)
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
}

/// The media id of one of the gateway's own links: `{path of PUBLIC_BASE_URL}/media/{id}` (a
/// gateway mounted under a prefix), or `/media/{id}` (one at the root, or a link made before
/// `PUBLIC_BASE_URL` was set). The host is not compared: ids are random, and a link that
/// reaches the gateway under another name (a proxy, a LAN address) is still its own.
pub(super) fn own_media_id<'u>(url: &'u url::Url, public_base: Option<&str>) -> Option<&'u str> {
    let path = url.path();
    let prefix = public_base
        .and_then(|b| url::Url::parse(b).ok())
        .map(|b| b.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let id = path
        .strip_prefix(prefix.as_str())
        .and_then(|rest| rest.strip_prefix("/media/"))
        .or_else(|| path.strip_prefix("/media/"))?;
    is_media_id_shape(id).then_some(id)
}

/// Keeps URIs in messages short (data URLs can be megabytes).
fn shorten(s: &str) -> String {
    crate::util::truncate(s, 120)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_media_links_carry_the_public_base_path() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(is_media_id_shape(id), "a valid id for the test");
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
