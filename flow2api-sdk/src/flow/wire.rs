//! Flow's JSON, as Google sends and expects it. Response types are tolerant: every field is
//! optional and unknown fields are ignored, because Google changes these shapes every few weeks;
//! the client converts them to domain types at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// session-to-access-token response: a NextAuth session.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionResponse {
    /// The signed-in user.
    pub user: Option<SessionUser>,
    /// AT expiry, RFC 3339.
    pub expires: Option<String>,
    /// The Google access token (`ya29…`); missing when the ST is no longer valid.
    pub access_token: Option<String>,
}

/// session-to-access-token `user`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionUser {
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
}

/// credits response.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreditsResponse {
    /// Remaining credits.
    pub credits: Option<f64>,
    /// `PAYGATE_TIER_…`.
    pub user_paygate_tier: Option<String>,
}

/// create-project body: `{"json":{"projectTitle","toolName"}}`.
#[derive(Debug, Serialize)]
pub struct CreateProjectRequest<'a> {
    /// tRPC envelope.
    pub json: CreateProjectJson<'a>,
}

/// create-project body payload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateProjectJson<'a> {
    /// Project title.
    pub project_title: &'a str,
    /// Always `PINHOLE`.
    pub tool_name: &'a str,
}

/// `clientContext` of generation and upload calls.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientContext<'a> {
    /// The reCAPTCHA token, for generation calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recaptcha_context: Option<RecaptchaContext<'a>>,
    /// `;<epoch-ms>`.
    pub session_id: &'a str,
    /// The Flow project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<&'a str>,
    /// Always `PINHOLE`.
    pub tool: &'a str,
    /// Only upsample-image (and video) carry the tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_paygate_tier: Option<&'a str>,
}

/// `clientContext.recaptchaContext`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecaptchaContext<'a> {
    /// The token.
    pub token: &'a str,
    /// Always `RECAPTCHA_APPLICATION_TYPE_WEB`.
    pub application_type: &'a str,
}

/// upload-image body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadImageRequest<'a> {
    /// Context (no captcha).
    pub client_context: ClientContext<'a>,
    /// `flow2api_upload_<ms>.<png|jpg>`.
    pub file_name: String,
    /// Base64, no `data:` prefix.
    pub image_bytes: String,
    /// Always false.
    pub is_hidden: bool,
    /// Always true.
    pub is_user_uploaded: bool,
    /// Sniffed MIME type.
    pub mime_type: &'a str,
}

/// upload-image response: the id is `media.name` (object or array) or
/// `mediaGenerationId.mediaGenerationId`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UploadImageResponse {
    /// Object or array of `{name}`.
    pub media: Option<Value>,
    /// Legacy id holder.
    pub media_generation_id: Option<Value>,
}

/// generate-image body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateImagesRequest<'a> {
    /// Top-level context (the same object appears in the request).
    pub client_context: ClientContext<'a>,
    /// `{"batchId": uuid}`.
    pub media_generation_context: MediaGenerationContext,
    /// Always true.
    pub use_new_media: bool,
    /// One request.
    pub requests: Vec<ImageGenerationRequest<'a>>,
}

/// `mediaGenerationContext`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaGenerationContext {
    /// UUID v4.
    pub batch_id: String,
}

/// One generate-image request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageGenerationRequest<'a> {
    /// The same context as the top level.
    pub client_context: ClientContext<'a>,
    /// 1…999999.
    pub seed: u32,
    /// `GEM_PIX_2`, `NARWHAL`, `IMAGEN_3_5`.
    pub image_model_name: &'a str,
    /// `IMAGE_ASPECT_RATIO_…`.
    pub image_aspect_ratio: &'a str,
    /// The prompt.
    pub structured_prompt: StructuredPrompt<'a>,
    /// Reference images.
    pub image_inputs: Vec<ImageInput<'a>>,
}

/// `structuredPrompt`.
#[derive(Debug, Serialize)]
pub struct StructuredPrompt<'a> {
    /// `[{"text": prompt}]`.
    pub parts: Vec<TextPart<'a>>,
}

/// `{"text": …}`.
#[derive(Debug, Serialize)]
pub struct TextPart<'a> {
    /// The text.
    pub text: &'a str,
}

/// `imageInputs[]`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInput<'a> {
    /// Uploaded media id.
    pub name: &'a str,
    /// Always `IMAGE_INPUT_TYPE_REFERENCE`.
    pub image_input_type: &'a str,
}

/// generate-image response.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GenerateImagesResponse {
    /// Generated media; only the first is used.
    pub media: Vec<GeneratedMedia>,
}

/// generate-image `media[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GeneratedMedia {
    /// Media id (used for upsample).
    pub name: Option<String>,
    /// The image.
    pub image: Option<GeneratedMediaImage>,
}

/// generate-image `media[].image`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GeneratedMediaImage {
    /// The generated image.
    pub generated_image: Option<GeneratedImageInfo>,
}

/// generate-image `media[].image.generatedImage`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GeneratedImageInfo {
    /// Signed CDN URL.
    pub fife_url: Option<String>,
}

/// upsample-image body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsampleImageRequest<'a> {
    /// generate-image's `media[0].name`.
    pub media_id: &'a str,
    /// `UPSAMPLE_IMAGE_RESOLUTION_2K|4K`.
    pub target_resolution: &'a str,
    /// Context with captcha and tier.
    pub client_context: ClientContext<'a>,
}

/// upsample-image response.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UpsampleImageResponse {
    /// Base64 JPEG; empty means failure.
    pub encoded_image: Option<String>,
}

/// Google's error body: `{"error":{"code","message","status","details":[{"reason"}]}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GoogleErrorBody {
    /// The error.
    pub error: Option<GoogleError>,
}

/// The `error` object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GoogleError {
    /// HTTP code.
    pub code: Option<u16>,
    /// Message.
    pub message: Option<String>,
    /// Status name, e.g. `PERMISSION_DENIED`.
    pub status: Option<String>,
    /// Details; the first with a `reason` gives the Flow reason.
    pub details: Vec<Value>,
}
