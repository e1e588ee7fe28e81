//! The fake endpoints: Flow's account and image endpoints, the FIFE image host and the YesCaptcha
//! task API.

use base64::Engine as _;
use http::{HeaderMap, Method};
use serde_json::{json, Value};

use super::assets::{upsampled_jpeg, FIFE_PNG};
use super::reply::{self, json as reply_json};
use super::state::{IssuedToken, State, Task};
use super::video_routes;
use super::{
    bearer, Endpoint, FakeProject, GeneratedMedia, SolverFault, UploadedMedia, SESSION_COOKIE,
    SOLVER_USER_AGENT,
};
use crate::seams::{Bytes, HttpResponse};
use crate::util;

/// The request as the routes see it.
#[derive(Debug)]
pub(super) struct Incoming {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) headers: HeaderMap,
    /// The raw query string (without `?`), empty when absent.
    pub(super) query: String,
    /// The body as JSON, `None` when absent or malformed.
    pub(super) json: Option<Value>,
}

impl Incoming {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    pub(super) fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim())
    }

    pub(super) fn bearer(&self) -> Option<&str> {
        bearer(&self.headers)
    }
}

/// Per-call context.
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    pub(super) now_ms: u64,
    pub(super) public_base: &'a str,
    /// An injected `CaptchaUnsolvable` hit this `createTask`.
    pub(super) unsolvable_task: bool,
}

/// Routes by the end of the path, whatever the host and prefix.
pub(super) fn classify(method: &Method, path: &str) -> Endpoint {
    let get = method == Method::GET;
    let post = method == Method::POST;
    if get && path.ends_with("/auth/session") {
        Endpoint::Session
    } else if get && path.ends_with("/credits") {
        Endpoint::Credits
    } else if post && path.ends_with("/trpc/project.createProject") {
        Endpoint::CreateProject
    } else if post && path.ends_with("/flow/uploadImage") {
        Endpoint::UploadImage
    } else if post && generate_project_id(path).is_some() {
        Endpoint::GenerateImage
    } else if post && path.ends_with("/flow/upsampleImage") {
        Endpoint::UpsampleImage
    } else if post && path.ends_with("/createTask") {
        Endpoint::CreateTask
    } else if post && path.ends_with("/getTaskResult") {
        Endpoint::GetTaskResult
    } else if post && path.ends_with("/score/verify") {
        Endpoint::ScoreVerify
    } else if get && fife_id(path).is_some() {
        Endpoint::Fife
    } else if let Some(endpoint) = video_routes::classify(method, path) {
        endpoint
    } else if let Some(endpoint) = super::remote_browser::classify(method, path) {
        endpoint
    } else {
        Endpoint::Unknown
    }
}

/// The `{PID}` of `…/projects/{PID}/flowMedia:batchGenerateImages`.
fn generate_project_id(path: &str) -> Option<&str> {
    let rest = path.strip_suffix("/flowMedia:batchGenerateImages")?;
    let (_, pid) = rest.rsplit_once("/projects/")?;
    (!pid.is_empty() && !pid.contains('/')).then_some(pid)
}

/// The `{id}` of `…/fife/{id}.png`.
fn fife_id(path: &str) -> Option<&str> {
    let (_, file) = path.rsplit_once("/fife/")?;
    let id = file.strip_suffix(".png")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// Answers a routed request.
pub(super) fn handle(
    st: &mut State,
    ctx: &Ctx<'_>,
    endpoint: Endpoint,
    req: &Incoming,
) -> HttpResponse {
    match endpoint {
        Endpoint::Session => session(st, ctx, req),
        Endpoint::Credits => credits(st, ctx, req),
        Endpoint::CreateProject => create_project(st, req),
        Endpoint::UploadImage => upload_image(st, ctx, req),
        Endpoint::GenerateImage => generate_image(st, ctx, req),
        Endpoint::UpsampleImage => upsample_image(st, ctx, req),
        Endpoint::CreateTask => create_task(st, ctx, req),
        Endpoint::GetTaskResult => get_task_result(st, req),
        Endpoint::ScoreVerify => score_verify(st, req),
        Endpoint::Fife => fife(st, req),
        Endpoint::Unknown => reply::not_found(),
        Endpoint::RemoteBrowserSolve
        | Endpoint::RemoteBrowserPrefill
        | Endpoint::RemoteBrowserFinish
        | Endpoint::RemoteBrowserError
        | Endpoint::RemoteBrowserCustomScore
        | Endpoint::RemoteBrowserHealth => super::remote_browser::handle(st, endpoint, req),
        video => video_routes::handle(st, ctx, video, req),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_ms(ms: u64) -> String {
    let secs = util::format_rfc3339(ms);
    let head = secs.strip_suffix('Z').unwrap_or(&secs);
    format!("{head}.{:03}Z", ms % 1000)
}

pub(super) fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------
// Flow
// ---------------------------------------------------------------------------------------------

/// session-to-access-token: ST → AT, a fresh AT on every call; `{}` for an unknown or expired ST.
fn session(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let Some(account) = st.account_for_st(req.cookie(SESSION_COOKIE)).cloned() else {
        return reply_json(200, &json!({}));
    };
    let at = format!("ya29.fake-{}", util::random_hex(24));
    let lifetime = u64::try_from(st.config.at_lifetime.as_millis()).unwrap_or(u64::MAX);
    let expires_ms = ctx.now_ms.saturating_add(lifetime);
    st.access_tokens.insert(
        at.clone(),
        super::state::AccessToken {
            email: account.email.clone(),
            expires_ms,
            revoked: false,
        },
    );
    reply_json(
        200,
        &json!({
            "user": {
                "name": account.name,
                "email": account.email,
                "image": "https://lh3.googleusercontent.com/a/fake-avatar=s96-c",
            },
            "expires": rfc3339_ms(expires_ms),
            "access_token": at,
        }),
    )
}

/// credits: credits and tier for a live AT, else 401.
fn credits(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    match st.account_for_at(req.bearer(), ctx.now_ms) {
        Some(a) => reply_json(
            200,
            &json!({"credits": a.credits, "userPaygateTier": a.tier}),
        ),
        None => reply::unauthenticated(),
    }
}

/// create-project: a new project for the ST's account.
fn create_project(st: &mut State, req: &Incoming) -> HttpResponse {
    let Some(email) = st
        .account_for_st(req.cookie(SESSION_COOKIE))
        .map(|a| a.email.clone())
    else {
        st.reject(Endpoint::CreateProject, "unknown or expired session token");
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let Some(title) = str_at(body, "/json/projectTitle") else {
        st.reject(Endpoint::CreateProject, "json.projectTitle missing");
        return reply::invalid_argument("json.projectTitle is required");
    };
    if str_at(body, "/json/toolName") != Some("PINHOLE") {
        st.reject(Endpoint::CreateProject, "json.toolName is not PINHOLE");
        return reply::invalid_argument("json.toolName must be PINHOLE");
    }
    let project_id = util::uuid_v4();
    st.projects.insert(
        project_id.clone(),
        FakeProject {
            project_id: project_id.clone(),
            email,
            title: title.to_owned(),
        },
    );
    reply_json(
        200,
        &json!({"result": {"data": {"json": {"result": {
            "projectId": project_id,
            "projectInfo": {"projectTitle": title},
        }}}}}),
    )
}

/// The account email of a live AT; records the rejection otherwise (answer 401).
pub(super) fn require_at(
    st: &mut State,
    ctx: &Ctx<'_>,
    endpoint: Endpoint,
    req: &Incoming,
) -> Option<String> {
    let email = st.email_for_at(req.bearer(), ctx.now_ms);
    if email.is_none() {
        st.reject(endpoint, "missing, unknown or expired access token");
    }
    email
}

/// upload-image: stores the decoded image and answers its media id.
fn upload_image(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::UploadImage;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let project_id = str_at(body, "/clientContext/projectId").map(str::to_owned);
    if let Some(pid) = &project_id {
        if !st.owns_project(&email, pid) {
            st.reject(ep, format!("project {pid} is not {email}'s"));
            return reply::permission_denied();
        }
    }
    let Some(mime_type) = str_at(body, "/mimeType").filter(|m| m.starts_with("image/")) else {
        st.reject(ep, "mimeType missing or not image/*");
        return reply::invalid_argument("mimeType must be an image type");
    };
    let decoded = str_at(body, "/imageBytes")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|b| !b.is_empty());
    let Some(bytes) = decoded else {
        st.reject(ep, "imageBytes missing, empty or not base64");
        return reply::invalid_argument("imageBytes must be non-empty base64");
    };
    let media_id = util::uuid_v4();
    st.uploads.push(UploadedMedia {
        media_id: media_id.clone(),
        email,
        project_id,
        mime_type: mime_type.to_owned(),
        bytes: Bytes::from(bytes),
    });
    let media = json!({ "name": media_id });
    let media = if st.config.upload_array {
        json!([media])
    } else {
        media
    };
    reply_json(200, &json!({ "media": media }))
}

/// Checks the captcha token in `clientContext` and burns it. On `false` the rejection is
/// recorded and the answer is the 403 of `docs/upstream.md#recaptcha`.
fn captcha_ok(
    st: &mut State,
    endpoint: Endpoint,
    client_context: Option<&Value>,
    req: &Incoming,
) -> bool {
    captcha_ok_for(st, endpoint, client_context, req, "IMAGE_GENERATION")
}

/// [`captcha_ok`] for a token that must have been solved for `action`.
pub(super) fn captcha_ok_for(
    st: &mut State,
    endpoint: Endpoint,
    client_context: Option<&Value>,
    req: &Incoming,
    action: &str,
) -> bool {
    let ctx = client_context.unwrap_or(&Value::Null);
    let why = match (
        str_at(ctx, "/recaptchaContext/token"),
        str_at(ctx, "/recaptchaContext/applicationType"),
    ) {
        (None, _) => Some("no recaptchaContext.token".to_owned()),
        (_, at) if at != Some("RECAPTCHA_APPLICATION_TYPE_WEB") => {
            Some("applicationType is not RECAPTCHA_APPLICATION_TYPE_WEB".to_owned())
        }
        (Some(token), _) => match st.tokens.get_mut(token) {
            None => Some("token not issued by the fake solver".to_owned()),
            Some(issued) if issued.used => Some("token already used".to_owned()),
            Some(issued) => {
                issued.used = true;
                let ua = req.header("user-agent").unwrap_or_default();
                if issued.page_action != action {
                    Some(format!(
                        "token solved for {} instead of {action}",
                        issued.page_action
                    ))
                } else if ua != issued.user_agent {
                    Some(format!(
                        "User-Agent {ua:?} differs from the solver's {:?}",
                        issued.user_agent
                    ))
                } else {
                    issued.headers.iter().find_map(|(name, want)| {
                        let present = if name == "cookie" {
                            let (k, v) = want.split_once('=').unwrap_or((want, ""));
                            req.cookie(k) == Some(v)
                        } else {
                            req.header(name) == Some(want.as_str())
                        };
                        (!present).then(|| format!("{name} is not the solving browser's {want:?}"))
                    })
                }
            }
        },
    };
    match why {
        None => true,
        Some(why) => {
            st.reject(endpoint, why);
            false
        }
    }
}

/// generate-image: one generated image per entry of `requests`.
fn generate_image(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::GenerateImage;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let pid = generate_project_id(&req.path).unwrap_or_default();
    if !st.owns_project(&email, pid) {
        st.reject(ep, format!("project {pid} is not {email}'s"));
        return reply::permission_denied();
    }
    if str_at(body, "/clientContext/projectId") != Some(pid) {
        st.reject(
            ep,
            "clientContext.projectId differs from the path's project",
        );
        return reply::permission_denied();
    }
    if !captcha_ok(st, ep, body.get("clientContext"), req) {
        return reply::unusual_activity();
    }
    let Some(requests) = body
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        st.reject(ep, "requests missing or empty");
        return reply::invalid_argument("requests must not be empty");
    };
    let mut generated = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        match parse_generate_request(st, &email, pid, i, r) {
            Ok(media) => generated.push(media),
            Err(why) => {
                st.reject(ep, why.clone());
                return reply::invalid_argument(&why);
            }
        }
    }
    let media: Vec<Value> = generated
        .iter()
        .map(|g| {
            json!({
                "name": g.media_id,
                "image": {"generatedImage": {
                    "fifeUrl": format!("{}/fife/{}.png", ctx.public_base, g.media_id),
                    "mediaGenerationId": format!("fake-generation-{}", util::random_hex(12)),
                    "prompt": g.prompt,
                    "seed": g.seed,
                    "modelNameType": g.model,
                }},
            })
        })
        .collect();
    st.generated.extend(generated);
    reply_json(200, &json!({ "media": media }))
}

fn parse_generate_request(
    st: &State,
    email: &str,
    pid: &str,
    i: usize,
    r: &Value,
) -> Result<GeneratedMedia, String> {
    let model = str_at(r, "/imageModelName")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| format!("requests[{i}].imageModelName is required"))?;
    let aspect_ratio = str_at(r, "/imageAspectRatio")
        .filter(|a| a.starts_with("IMAGE_ASPECT_RATIO_"))
        .ok_or_else(|| format!("requests[{i}].imageAspectRatio must be an IMAGE_ASPECT_RATIO_*"))?;
    let parts = r
        .pointer("/structuredPrompt/parts")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("requests[{i}].structuredPrompt.parts is required"))?;
    let prompt: String = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let mut image_inputs = Vec::new();
    match r.get("imageInputs") {
        None | Some(Value::Null) => {}
        Some(Value::Array(inputs)) => {
            for (j, input) in inputs.iter().enumerate() {
                let name = str_at(input, "/name").unwrap_or_default();
                let known = st
                    .uploads
                    .iter()
                    .any(|u| u.media_id == name && u.email == email);
                if !known {
                    return Err(format!(
                        "requests[{i}].imageInputs[{j}].name {name:?} is not a media item uploaded by this user"
                    ));
                }
                image_inputs.push(name.to_owned());
            }
        }
        Some(_) => return Err(format!("requests[{i}].imageInputs must be a list")),
    }
    Ok(GeneratedMedia {
        media_id: util::uuid_v4(),
        email: email.to_owned(),
        project_id: pid.to_owned(),
        model: model.to_owned(),
        aspect_ratio: aspect_ratio.to_owned(),
        prompt,
        seed: r.get("seed").and_then(Value::as_i64),
        image_inputs,
    })
}

/// upsample-image: a tiny JPEG whose comment names the resolution.
fn upsample_image(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::UpsampleImage;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let pid = str_at(body, "/clientContext/projectId").unwrap_or_default();
    if !st.owns_project(&email, pid) {
        st.reject(
            ep,
            format!("clientContext.projectId {pid:?} is not {email}'s"),
        );
        return reply::permission_denied();
    }
    if !captcha_ok(st, ep, body.get("clientContext"), req) {
        return reply::unusual_activity();
    }
    let media_id = str_at(body, "/mediaId").unwrap_or_default();
    if !st
        .generated
        .iter()
        .any(|g| g.media_id == media_id && g.email == email)
    {
        st.reject(
            ep,
            format!("mediaId {media_id:?} is not a generated image of {email}"),
        );
        return reply::invalid_argument("mediaId is not a generated image of this user");
    }
    let label = match str_at(body, "/targetResolution") {
        Some("UPSAMPLE_IMAGE_RESOLUTION_2K") => "2K",
        Some("UPSAMPLE_IMAGE_RESOLUTION_4K") => "4K",
        other => {
            st.reject(ep, format!("targetResolution {other:?}"));
            return reply::invalid_argument(
                "targetResolution must be UPSAMPLE_IMAGE_RESOLUTION_2K or UPSAMPLE_IMAGE_RESOLUTION_4K",
            );
        }
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(upsampled_jpeg(label));
    reply_json(200, &json!({ "encodedImage": encoded }))
}

/// `GET …/fife/{id}.png`: the PNG for a generated id, 404 otherwise.
fn fife(st: &mut State, req: &Incoming) -> HttpResponse {
    let id = fife_id(&req.path).unwrap_or_default();
    if st.generated.iter().any(|g| g.media_id == id) {
        reply::raw(200, "image/png", Bytes::from_static(FIFE_PNG))
    } else {
        reply::raw(404, "text/plain; charset=UTF-8", &b"Not Found"[..])
    }
}

// ---------------------------------------------------------------------------------------------
// YesCaptcha
// ---------------------------------------------------------------------------------------------

/// The solver a task-API path is for: the segment before `createTask`/`getTaskResult`, when it
/// names one of [`super::FAKE_SOLVERS`], else YesCaptcha.
fn solver_of(path: &str) -> &'static str {
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let last = dir.rsplit('/').next().unwrap_or_default();
    super::FAKE_SOLVERS
        .iter()
        .copied()
        .find(|s| *s == last)
        .unwrap_or("yescaptcha")
}

/// The task types each fake solver takes for generation (dossier §10.2).
fn task_type_ok(solver: &str, kind: &str) -> bool {
    match solver {
        "capmonster" => kind == "RecaptchaV3TaskProxyless",
        "ezcaptcha" => kind == "ReCaptchaV3TaskProxylessS9",
        "capsolver" => kind == "ReCaptchaV3EnterpriseTaskProxyLess",
        _ => crate::captcha::YESCAPTCHA_TASK_TYPES.contains(&kind),
    }
}

/// Whether `clientKey` is the solver's key; records the rejection otherwise.
fn client_key_ok(st: &mut State, endpoint: Endpoint, solver: &str, body: &Value) -> bool {
    let ok = str_at(body, "/clientKey").is_some()
        && str_at(body, "/clientKey") == st.config.solver_keys.get(solver).map(String::as_str);
    if !ok {
        st.reject(endpoint, format!("wrong or missing {solver} clientKey"));
    }
    ok
}

fn key_does_not_exist() -> HttpResponse {
    reply::captcha_error(
        "ERROR_KEY_DOES_NOT_EXIST",
        "Account authorization key not found in the system",
    )
}

/// `createTask`: a task that becomes ready after the configured number of polls.
fn create_task(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let solver = solver_of(&req.path);
    if !client_key_ok(st, Endpoint::CreateTask, solver, body) {
        return key_does_not_exist();
    }
    match st.config.solver_faults.get(solver) {
        Some(SolverFault::ZeroBalance) => {
            return reply::captcha_error("ERROR_ZERO_BALANCE", "Account has zero balance");
        }
        Some(SolverFault::NoSlot) => {
            return reply::captcha_error(
                "ERROR_NO_SLOT_AVAILABLE",
                "No idle workers are available at the moment, please try again later",
            );
        }
        _ => {}
    }
    let Some(task) = body.get("task").filter(|t| t.is_object()) else {
        return reply::captcha_error("ERROR_TASK_ABSENT", "Task property is empty or not set");
    };
    for field in ["type", "websiteURL", "websiteKey"] {
        if str_at(task, &format!("/{field}")).is_none_or(str::is_empty) {
            st.reject(Endpoint::CreateTask, format!("task.{field} missing"));
            return reply::captcha_error(
                "ERROR_TASK_NOT_SUPPORTED",
                &format!("task.{field} is required"),
            );
        }
    }
    let kind = str_at(task, "/type").unwrap_or_default();
    if !task_type_ok(solver, kind) {
        st.reject(
            Endpoint::CreateTask,
            format!("{solver} does not take task type {kind}"),
        );
        return reply::captcha_error(
            "ERROR_TASK_NOT_SUPPORTED",
            &format!("task type {kind} is not supported"),
        );
    }
    let task_id = util::uuid_v4();
    st.tasks.insert(
        task_id.clone(),
        Task {
            solver: solver.to_owned(),
            polls_left: st.config.polls_before_ready,
            unsolvable: ctx.unsolvable_task,
            page_action: str_at(task, "/pageAction").unwrap_or_default().to_owned(),
            solution: None,
        },
    );
    reply_json(200, &json!({"errorId": 0, "taskId": task_id}))
}

/// `getTaskResult`: `processing` until the task's polls run out, then the token.
fn get_task_result(st: &mut State, req: &Incoming) -> HttpResponse {
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let solver = solver_of(&req.path);
    if !client_key_ok(st, Endpoint::GetTaskResult, solver, body) {
        return key_does_not_exist();
    }
    if st.config.solver_faults.get(solver) == Some(&SolverFault::PollError) {
        return reply::captcha_error(
            "ERROR_CAPTCHA_UNSOLVABLE",
            "Captcha could not be solved by workers",
        );
    }
    let task_id = str_at(body, "/taskId").unwrap_or_default();
    let Some(task) = st.tasks.get_mut(task_id) else {
        return reply::captcha_error(
            "ERROR_NO_SUCH_CAPCHA_ID",
            "Task ID does not exist or has expired",
        );
    };
    if task.unsolvable {
        return reply::captcha_processing();
    }
    if task.polls_left > 0 {
        task.polls_left -= 1;
        return reply::captcha_processing();
    }
    let token = match &task.solution {
        Some(token) => token.clone(),
        None => {
            let token = format!("03AFcWeA-fake-{}-{}", task.solver, util::random_hex(32));
            task.solution = Some(token.clone());
            let page_action = task.page_action.clone();
            st.tokens.insert(
                token.clone(),
                IssuedToken {
                    user_agent: SOLVER_USER_AGENT.to_owned(),
                    page_action,
                    used: false,
                    headers: Vec::new(),
                },
            );
            token
        }
    };
    reply_json(
        200,
        &json!({
            "errorId": 0,
            "status": "ready",
            "solution": {"gRecaptchaResponse": token, "userAgent": SOLVER_USER_AGENT},
        }),
    )
}

/// `score/verify`: what a score checker says of a token — `success` and a score for the fake's
/// own tokens (not burnt: checking is not using), `invalid-input-response` otherwise.
fn score_verify(st: &mut State, req: &Incoming) -> HttpResponse {
    let token = req
        .json
        .as_ref()
        .and_then(|b| str_at(b, "/g-recaptcha-response"))
        .unwrap_or_default();
    match st.tokens.get(token) {
        Some(t) => reply_json(
            200,
            &json!({"success": true, "score": 0.9, "action": t.page_action}),
        ),
        None => reply_json(
            200,
            &json!({"success": false, "error-codes": ["invalid-input-response"]}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_suffix() {
        let p = Method::POST;
        let g = Method::GET;
        assert_eq!(classify(&g, "/fx/api/auth/session"), Endpoint::Session);
        assert_eq!(classify(&g, "/v1/credits"), Endpoint::Credits);
        assert_eq!(
            classify(&p, "/fx/api/trpc/project.createProject"),
            Endpoint::CreateProject
        );
        assert_eq!(
            classify(&p, "/v1/projects/abc/flowMedia:batchGenerateImages"),
            Endpoint::GenerateImage
        );
        assert_eq!(
            classify(&p, "/v1/projects//flowMedia:batchGenerateImages"),
            Endpoint::Unknown
        );
        assert_eq!(classify(&p, "/yescaptcha/createTask"), Endpoint::CreateTask);
        assert_eq!(classify(&g, "/fife/x.png"), Endpoint::Fife);
        assert_eq!(classify(&p, "/v1/credits"), Endpoint::Unknown);
    }

    #[test]
    fn rfc3339_with_millis() {
        assert_eq!(rfc3339_ms(1_763_181_964_123), "2025-11-15T04:46:04.123Z");
    }
}
