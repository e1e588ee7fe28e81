//! The fake remote browser service (`docs/upstream.md#remote-browser`): `POST …/api/v1/solve`
//! issues a token bound to the browser identity it reports, so the generate call that uses it
//! must present that identity (User-Agent, `Accept-Language`, `sec-ch-ua-platform`, the
//! session cookie); `prefill`, `sessions/{id}/finish`, `sessions/{id}/error`, `custom-score`
//! and `health` answer as the contract says. Every call needs `Authorization: Bearer <key>`
//! ([`super::fake_solver_key`]`("remote_browser")`).

use http::Method;
use serde_json::{json, Value};

use super::reply::{self, json as reply_json};
use super::routes::{str_at, Incoming};
use super::state::{IssuedToken, State};
use super::{Endpoint, SolverFault};
use crate::seams::HttpResponse;
use crate::util;

/// The solver name the fake's settings and faults use.
pub const FAKE_REMOTE_BROWSER: &str = "remote_browser";
/// The User-Agent the fake remote browser reports in its fingerprint.
pub const REMOTE_BROWSER_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36";
/// The `Accept-Language` it reports.
pub const REMOTE_BROWSER_LANGUAGE: &str = "en-GB,en;q=0.8";
/// The `sec-ch-ua-platform` it reports.
pub const REMOTE_BROWSER_PLATFORM: &str = "\"Linux\"";

/// The remote browser endpoint of a path, if any.
pub(super) fn classify(method: &Method, path: &str) -> Option<Endpoint> {
    let (_, rest) = path.rsplit_once("/api/v1/")?;
    let post = method == Method::POST;
    match rest {
        "solve" if post => Some(Endpoint::RemoteBrowserSolve),
        "prefill" if post => Some(Endpoint::RemoteBrowserPrefill),
        "custom-score" if post => Some(Endpoint::RemoteBrowserCustomScore),
        "health" if method == Method::GET => Some(Endpoint::RemoteBrowserHealth),
        _ if post => {
            let (session, verb) = rest.strip_prefix("sessions/")?.split_once('/')?;
            match verb {
                _ if session.is_empty() || session.contains('/') => None,
                "finish" => Some(Endpoint::RemoteBrowserFinish),
                "error" => Some(Endpoint::RemoteBrowserError),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Answers a remote browser call.
pub(super) fn handle(st: &mut State, endpoint: Endpoint, req: &Incoming) -> HttpResponse {
    let key = st.config.solver_keys.get(FAKE_REMOTE_BROWSER).cloned();
    let given = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_none() || given != key.as_deref() {
        st.reject(endpoint, "wrong or missing remote browser key");
        return reply_json(401, &json!({"detail": "invalid api key"}));
    }
    if endpoint == Endpoint::RemoteBrowserHealth {
        let up = st.config.solver_faults.get(FAKE_REMOTE_BROWSER) != Some(&SolverFault::NoSlot);
        return reply_json(200, &json!({"ok": up, "browsers": u8::from(up)}));
    }
    let Some(body) = &req.json else {
        return reply_json(422, &json!({"detail": "body must be JSON"}));
    };
    match endpoint {
        Endpoint::RemoteBrowserSolve => solve(st, body),
        Endpoint::RemoteBrowserCustomScore => custom_score(st, body),
        Endpoint::RemoteBrowserFinish | Endpoint::RemoteBrowserError => {
            reply_json(200, &json!({"ok": true}))
        }
        Endpoint::RemoteBrowserPrefill => {
            if str_at(body, "/project_id").is_none_or(str::is_empty) {
                return reply_json(422, &json!({"detail": "project_id is required"}));
            }
            reply_json(200, &json!({"ok": true}))
        }
        _ => reply::not_found(),
    }
}

fn solve(st: &mut State, body: &Value) -> HttpResponse {
    match st.config.solver_faults.get(FAKE_REMOTE_BROWSER) {
        Some(SolverFault::NoSlot | SolverFault::ZeroBalance) => {
            return reply_json(503, &json!({"detail": "no browser is free"}));
        }
        Some(SolverFault::PollError) => {
            return reply_json(200, &json!({"session_id": util::random_hex(8)}));
        }
        None => {}
    }
    let action = str_at(body, "/action").unwrap_or_default();
    if str_at(body, "/project_id").is_none_or(str::is_empty)
        || !matches!(action, "IMAGE_GENERATION" | "VIDEO_GENERATION")
    {
        st.reject(
            Endpoint::RemoteBrowserSolve,
            "solve needs project_id and a generation action",
        );
        return reply_json(
            422,
            &json!({"detail": "project_id and action are required"}),
        );
    }
    let token = format!(
        "03AFcWeA-fake-{FAKE_REMOTE_BROWSER}-{}",
        util::random_hex(32)
    );
    let cookie = format!("fake-nid-{}", util::random_hex(6));
    st.tokens.insert(
        token.clone(),
        IssuedToken {
            user_agent: REMOTE_BROWSER_USER_AGENT.to_owned(),
            page_action: action.to_owned(),
            used: false,
            headers: vec![
                ("accept-language".into(), REMOTE_BROWSER_LANGUAGE.into()),
                ("sec-ch-ua-platform".into(), REMOTE_BROWSER_PLATFORM.into()),
                ("cookie".into(), format!("NID={cookie}")),
            ],
        },
    );
    reply_json(
        200,
        &json!({
            "token": token,
            "session_id": util::random_hex(8),
            "fingerprint": {
                "user_agent": REMOTE_BROWSER_USER_AGENT,
                "accept_language": REMOTE_BROWSER_LANGUAGE,
                "sec_ch_ua": "\"Chromium\";v=\"146\", \"Not-A.Brand\";v=\"24\"",
                "sec_ch_ua_mobile": "?0",
                "sec_ch_ua_platform": REMOTE_BROWSER_PLATFORM,
                "session_cookies": {"NID": cookie},
            },
        }),
    )
}

/// `custom-score`: solves for the given site and reports the verdict a score checker would.
fn custom_score(st: &mut State, body: &Value) -> HttpResponse {
    let action = str_at(body, "/action").unwrap_or("homepage").to_owned();
    let token = format!(
        "03AFcWeA-fake-{FAKE_REMOTE_BROWSER}-{}",
        util::random_hex(32)
    );
    st.tokens.insert(
        token.clone(),
        IssuedToken {
            user_agent: REMOTE_BROWSER_USER_AGENT.to_owned(),
            page_action: action.clone(),
            used: false,
            headers: Vec::new(),
        },
    );
    reply_json(
        200,
        &json!({
            "success": true,
            "token": token,
            "token_elapsed_ms": 5,
            "verify_elapsed_ms": 3,
            "verify_http_status": 200,
            "verify_mode": "browser",
            "verify_result": {"success": true, "score": 0.9, "action": action},
            "fingerprint": {"user_agent": REMOTE_BROWSER_USER_AGENT},
        }),
    )
}
