//! `MEDIA_CACHE`: copying a result from Google's signed URL into the media store, streamed
//! (a video is never whole in memory), so that the client's link outlives Google's.

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;

use crate::seams::{boxed_stream, media, MediaUpload, StorageError};
use crate::transport::get_following_redirects;

use super::{Generator, Progress};

/// How long one copy may take in all (a video is tens of MB).
const KEEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a copy was not made.
#[derive(Debug, thiserror::Error)]
enum KeepError {
    #[error("the download failed: {0}")]
    Fetch(#[from] crate::transport::FetchError),
    #[error("storing it failed: {0}")]
    Store(#[from] StorageError),
    #[error("it took longer than {} s", KEEP_TIMEOUT.as_secs())]
    Timeout,
}

/// `url` is already the gateway's own: a `/media/` link under `media_base`, or inline.
fn is_own(url: &str, media_base: &str) -> bool {
    url.starts_with("data:")
        || url
            .strip_prefix(media_base.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with("/media/"))
}

impl Generator {
    /// With `MEDIA_CACHE` on, the link to keep for a result at `url`: a copy in the media store
    /// under `media_base`, or `url` itself when the cache is off, the result is already ours,
    /// or the copy failed (said on `progress`: the result is never lost over a copy).
    /// `fallback_type` is the content type when neither the bytes nor the answer tell it.
    pub(crate) async fn keep(
        &self,
        url: String,
        media_base: &str,
        fallback_type: &str,
        progress: &Progress,
    ) -> String {
        if !self.media_cache || is_own(&url, media_base) {
            return url;
        }
        progress.line("Keeping a copy of the result...");
        let outcome = {
            let copy = std::pin::pin!(self.copy(&url, fallback_type));
            match select(copy, self.clock.sleep(KEEP_TIMEOUT)).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => Err(KeepError::Timeout),
            }
        };
        match outcome {
            Ok(id) => format!("{}/media/{id}", media_base.trim_end_matches('/')),
            Err(e) => {
                progress.line(format!(
                    "Keeping a copy failed ({e}); returning the upstream link."
                ));
                url
            }
        }
    }

    async fn copy(&self, url: &str, fallback_type: &str) -> Result<String, KeepError> {
        // `MEDIA_PROXY_URL`, else the generation's own egress, else the defaults.
        let http = &**self.flow.http();
        let resp = match self.media_egress.as_ref().or(self.egress.as_ref()) {
            Some(egress) => {
                let via = crate::egress::Via::new(http, egress.clone());
                get_following_redirects(&via, url, &http::HeaderMap::new(), |_| true).await?
            }
            None => get_following_redirects(http, url, &http::HeaderMap::new(), |_| true).await?,
        };
        let (parts, mut body) = resp.into_parts();
        let len = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // The type from the bytes, as `/media` serves it; the answer's own only if it is one
        // the store may declare.
        let first = body.next().await.transpose().map_err(from_transport)?;
        let declared = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|t| media::is_known_media_type(t));
        let content_type = first
            .as_deref()
            .and_then(media::sniff_media_type)
            .map(str::to_owned)
            .or(declared)
            .unwrap_or_else(|| fallback_type.to_owned());
        let rest = body.map(|chunk| chunk.map_err(from_transport));
        let stream = futures::stream::iter(first.map(Ok)).chain(rest);
        let mut upload = MediaUpload::new(content_type, boxed_stream(stream));
        if let Some(len) = len {
            upload = upload.with_len(len);
        }
        Ok(self.store(upload).await?)
    }
}

fn from_transport(e: crate::seams::TransportError) -> StorageError {
    StorageError(format!("the download broke off: {e}"))
}

#[cfg(test)]
mod tests {
    use super::is_own;

    #[test]
    fn own_links_are_not_copied_again() {
        let base = "https://gw.example/sub/";
        assert!(is_own("https://gw.example/sub/media/abc", base));
        assert!(is_own("data:image/png;base64,AAAA", base));
        assert!(!is_own("https://storage.googleapis.com/x.png", base));
        assert!(!is_own("https://gw.example/sub/mediax/abc", base));
        assert!(!is_own("https://gw.example/other/media/abc", base));
    }
}
