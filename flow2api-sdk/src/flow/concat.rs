//! concat-submit and concat-status: joining an extended video to its source, for extend models
//! (see `docs/upstream.md#concat-submit` and `docs/upstream.md#concat-status`). Build and
//! parse are pure.

use base64::Engine as _;
use http::Method;
use serde_json::{json, Value};

use crate::seams::{Bytes, HttpRequest, HttpResponse, TransportError};
use crate::secret::Secret;

use super::video::str_at;
use super::{headers, request, timeouts, with_bearer, FlowClient, FlowError};

/// concat-status result: the state of a concatenation (`docs/upstream.md#concat-status`), parsed
/// tolerantly.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConcatStatus {
    /// `status` as sent (e.g. `MEDIA_GENERATION_STATUS_SUCCESSFUL`); empty when absent.
    pub status: String,
    /// `outputUri`, the preferred result.
    pub output_uri: Option<String>,
    /// `encodedVideo`, base64-decoded: the MP4 when there is no `outputUri`.
    pub encoded_video: Option<Bytes>,
}

impl ConcatStatus {
    /// The status contains `SUCCESSFUL`.
    pub fn is_successful(&self) -> bool {
        self.status.contains("SUCCESSFUL")
    }

    /// The status contains `FAILED` or `ERROR`.
    pub fn is_failed(&self) -> bool {
        self.status.contains("FAILED") || self.status.contains("ERROR")
    }
}

impl std::fmt::Debug for ConcatStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The video can be megabytes: show its length only.
        f.debug_struct("ConcatStatus")
            .field("status", &self.status)
            .field("output_uri", &self.output_uri)
            .field(
                "encoded_video",
                &self
                    .encoded_video
                    .as_ref()
                    .map(|b| format!("<{} bytes>", b.len())),
            )
            .finish()
    }
}

impl FlowClient {
    /// Builds concat-submit `POST {api}:runVideoFxConcatenation`: the source video whole
    /// (`0s`–`8s`) followed by the extension without its first second (`1s`–`8s`).
    pub fn build_concat_videos(
        &self,
        at: &Secret,
        source_media_id: &str,
        extension_media_id: &str,
    ) -> Result<HttpRequest, TransportError> {
        let body = json!({"inputVideos": [
            {"mediaGenerationId": source_media_id, "lengthNanos": 8000,
             "startTimeOffset": "0s", "endTimeOffset": "8s"},
            {"mediaGenerationId": extension_media_id, "lengthNanos": 8000,
             "startTimeOffset": "1s", "endTimeOffset": "8s"},
        ]});
        let h = with_bearer(headers::profile_d(headers::FALLBACK_USER_AGENT, None), at);
        request(
            Method::POST,
            &format!("{}:runVideoFxConcatenation", self.api_base),
            h,
            Bytes::from(body.to_string()),
        )
    }

    /// Parses concat-submit: the operation name at `operation.operation.name`, `None` when absent
    /// or empty.
    pub fn parse_concat_videos(resp: &HttpResponse) -> Result<Option<String>, FlowError> {
        let v: Value = super::parse_json("concat_videos", resp)?;
        Ok(str_at(&v, &["/operation/operation/name"]).map(str::to_owned))
    }

    /// concat-submit: starts concatenating an extended video after its source; answers the
    /// operation to poll with [`FlowClient::concat_status`] (`None` when Google named none).
    ///
    /// # Errors
    /// Upstream (e.g. `INVALID_ARGUMENT` for an unfinished video), transport and parse errors.
    pub async fn concat_videos(
        &self,
        at: &Secret,
        source_media_id: &str,
        extension_media_id: &str,
    ) -> Result<Option<String>, FlowError> {
        let req = self.build_concat_videos(at, source_media_id, extension_media_id);
        let resp = self
            .send("concat_videos", req, timeouts::CONCAT_SUBMIT)
            .await?;
        Self::parse_concat_videos(&resp)
    }

    /// Builds concat-status `POST {api}:runVideoFxCheckConcatenationStatus`:
    /// `{"operation":{"operation":{"name":…}}}`.
    pub fn build_concat_status(
        &self,
        at: &Secret,
        operation: &str,
    ) -> Result<HttpRequest, TransportError> {
        let body = json!({"operation": {"operation": {"name": operation}}});
        let h = with_bearer(headers::profile_d(headers::FALLBACK_USER_AGENT, None), at);
        request(
            Method::POST,
            &format!("{}:runVideoFxCheckConcatenationStatus", self.api_base),
            h,
            Bytes::from(body.to_string()),
        )
    }

    /// Parses concat-status: `status`, `outputUri` and the decoded `encodedVideo`; missing or empty
    /// fields are empty or `None`.
    ///
    /// # Errors
    /// A body that is not JSON, or an `encodedVideo` that is not base64.
    pub fn parse_concat_status(resp: &HttpResponse) -> Result<ConcatStatus, FlowError> {
        let v: Value = super::parse_json("concat_status", resp)?;
        let encoded_video = match str_at(&v, &["/encodedVideo"]).map(str::trim) {
            Some(b64) if !b64.is_empty() => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map(Bytes::from)
                    .map_err(|e| {
                        FlowError::parse("concat_status", format!("invalid base64: {e}"), b"")
                    })?,
            ),
            _ => None,
        };
        Ok(ConcatStatus {
            status: str_at(&v, &["/status"]).unwrap_or_default().to_owned(),
            output_uri: str_at(&v, &["/outputUri"]).map(str::to_owned),
            encoded_video,
        })
    }

    /// concat-status: one poll of a concatenation (the caller polls every 3 s for at most 300 s,
    /// `docs/upstream.md#concat-status`).
    ///
    /// # Errors
    /// Upstream, transport and parse errors. A failed concatenation is not an error here:
    /// see [`ConcatStatus::is_failed`].
    pub async fn concat_status(
        &self,
        at: &Secret,
        operation: &str,
    ) -> Result<ConcatStatus, FlowError> {
        let req = self.build_concat_status(at, operation);
        let resp = self
            .send("concat_status", req, timeouts::CONCAT_STATUS)
            .await?;
        Self::parse_concat_status(&resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> FlowClient {
        super::super::offline_client()
    }

    fn ok(body: Value) -> HttpResponse {
        http::Response::builder()
            .status(200)
            .body(Bytes::from(body.to_string()))
            .unwrap()
    }

    #[test]
    fn concat_requests_per_spec() {
        let at = Secret::new("ya29.a");
        let req = client().build_concat_videos(&at, "src", "ext").unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "https://api/v1:runVideoFxConcatenation");
        assert_eq!(req.headers()["authorization"], "Bearer ya29.a");
        assert_eq!(req.headers()["content-type"], "application/json");
        let v: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            v,
            json!({"inputVideos": [
                {"mediaGenerationId": "src", "lengthNanos": 8000, "startTimeOffset": "0s", "endTimeOffset": "8s"},
                {"mediaGenerationId": "ext", "lengthNanos": 8000, "startTimeOffset": "1s", "endTimeOffset": "8s"},
            ]})
        );

        let req = client().build_concat_status(&at, "op-1").unwrap();
        assert_eq!(
            req.uri(),
            "https://api/v1:runVideoFxCheckConcatenationStatus"
        );
        assert_eq!(req.headers()["authorization"], "Bearer ya29.a");
        let v: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(v, json!({"operation": {"operation": {"name": "op-1"}}}));
    }

    #[test]
    fn concat_submit_without_operation_name_is_none() {
        let parse = |v: Value| FlowClient::parse_concat_videos(&ok(v)).unwrap();
        assert_eq!(
            parse(json!({"operation": {"operation": {"name": "op-1"}}})).as_deref(),
            Some("op-1")
        );
        assert_eq!(parse(json!({})), None);
        assert_eq!(parse(json!({"operation": {"name": "shallow"}})), None);
        assert_eq!(
            parse(json!({"operation": {"operation": {"name": ""}}})),
            None
        );
        assert_eq!(
            parse(json!({"operation": {"operation": {"name": 7}}})),
            None
        );
        let not_json = http::Response::builder()
            .status(200)
            .body(Bytes::from_static(b"<html>"))
            .unwrap();
        assert!(FlowClient::parse_concat_videos(&not_json)
            .unwrap_err()
            .is_parse());
    }

    #[test]
    fn concat_status_failed_and_tolerant() {
        let parse = |v: Value| FlowClient::parse_concat_status(&ok(v));
        let failed = parse(json!({"status": "MEDIA_GENERATION_STATUS_FAILED"})).unwrap();
        assert!(failed.is_failed() && !failed.is_successful());
        assert_eq!(failed.status, "MEDIA_GENERATION_STATUS_FAILED");
        assert_eq!((failed.output_uri, failed.encoded_video), (None, None));
        assert!(
            parse(json!({"status": "MEDIA_GENERATION_STATUS_ERROR_INTERNAL"}))
                .unwrap()
                .is_failed()
        );

        let empty = parse(json!({"status": "", "outputUri": "", "encodedVideo": " "})).unwrap();
        assert_eq!(empty, ConcatStatus::default());
        assert!(!empty.is_failed() && !empty.is_successful());
        assert_eq!(
            parse(json!({"status": 3, "extra": true})).unwrap(),
            ConcatStatus::default()
        );

        let done = parse(json!({"status": "MEDIA_GENERATION_STATUS_SUCCESSFUL",
            "outputUri": "https://cdn/x.mp4", "encodedVideo": "AAEC"}))
        .unwrap();
        assert!(done.is_successful() && !done.is_failed());
        assert_eq!(done.output_uri.as_deref(), Some("https://cdn/x.mp4"));
        assert_eq!(done.encoded_video.as_deref(), Some(&[0u8, 1, 2][..]));
        assert!(format!("{done:?}").contains("<3 bytes>"));

        assert!(parse(
            json!({"status": "MEDIA_GENERATION_STATUS_SUCCESSFUL", "encodedVideo": "!!"})
        )
        .unwrap_err()
        .is_parse());
    }
}
