//! W1–W5, the web app's own calls before a video submit (`docs/upstream.md#warm-up`): the
//! user's preferences, app config and settings, a page-view log and the app-availability check.
//! Google sees a video submit preceded by what its web app sends; each call is best effort.

use http::Method;
use serde_json::json;

use super::{headers, timeouts, with_session_cookie, FlowClient};
use crate::seams::BrowserIdentity;
use crate::secret::Secret;
use crate::transport::request;

/// The compact JSON `{"json":null,"meta":{"values":["undefined"]}}`, URL-encoded: the input of
/// the three tRPC reads.
const TRPC_NULL_INPUT: &str =
    "%7B%22json%22%3Anull%2C%22meta%22%3A%7B%22values%22%3A%5B%22undefined%22%5D%7D%7D";

/// The tRPC procedures read first (W1–W3).
const TRPC_READS: [&str; 3] = [
    "general.fetchUserPreferences",
    "videoFx.getFlowAppConfig",
    "videoFx.getUserSettings",
];

/// The web app's public API key, which `checkAppAvailability` carries instead of a bearer
/// token (it is in the app's page source, not a credential of ours).
const WEB_APP_API_KEY: &str = "AIzaSyBtrm0o5ab1c-Ec8ZuLcGt3oJAA5VWt3pY";

/// One warm-up: whose and for which submit.
#[derive(Debug, Clone)]
pub struct WarmUp<'a> {
    /// The account's session token; without one the tRPC reads are skipped.
    pub st: Option<&'a Secret>,
    /// The project of the submit.
    pub project_id: &'a str,
    /// The User-Agent of the submit (the solver's).
    pub user_agent: &'a str,
    /// The rest of the solver's browser identity.
    pub identity: &'a BrowserIdentity,
    /// The submit's `sessionId`, which the page-view log carries.
    pub session_id: &'a str,
    /// Now, in Unix ms (the log's `eventTime`).
    pub now_ms: u64,
}

impl FlowClient {
    /// The warm-up requests, in order (W1–W3 only with a session token).
    pub fn build_warm_up(&self, w: &WarmUp<'_>) -> Vec<crate::seams::HttpRequest> {
        let page = headers::project_page(w.project_id);
        let b = |origin: Option<&str>, content_type: &str| {
            headers::with_identity(
                headers::profile_b(w.user_agent, &page, origin, Some(content_type)),
                w.identity,
            )
        };
        let mut out = Vec::with_capacity(5);
        if let Some(st) = w.st {
            for procedure in TRPC_READS {
                let url = format!(
                    "{}/trpc/{procedure}?input={TRPC_NULL_INPUT}",
                    self.labs_base
                );
                let h = with_session_cookie(b(Some(headers::LABS_ORIGIN), "application/json"), st);
                out.extend(request(Method::GET, &url, h, Default::default()).ok());
            }
        }
        let log = json!({"json": {"appEvents": [{
            "event": "PAGE_VIEW",
            "eventProperties": [
                {"key": "URL", "stringValue": page},
                {"key": "USER_AGENT", "stringValue": w.user_agent},
                {"key": "IS_DESKTOP"},
            ],
            "activeExperiments": [],
            "eventMetadata": {"sessionId": w.session_id},
            "eventTime": event_time(w.now_ms),
        }]}});
        let url = format!("{}/trpc/general.submitBatchLog", self.labs_base);
        let h = b(Some(headers::LABS_ORIGIN), "application/json");
        out.extend(request(Method::POST, &url, h, log.to_string().into()).ok());
        let url = format!("{}:checkAppAvailability", self.api_base);
        let mut h = b(Some(headers::LABS_ORIGIN), "text/plain;charset=UTF-8");
        h.insert(
            "x-goog-api-key",
            http::HeaderValue::from_static(WEB_APP_API_KEY),
        );
        let body = json!({"clientContext": {"tool": "PINHOLE"}}).to_string();
        out.extend(request(Method::POST, &url, h, body.into()).ok());
        out
    }

    /// Sends the warm-up, one call after another (each with the 10 s control deadline), and
    /// ignores every outcome. Returns how many calls were answered with a success.
    pub async fn warm_up(&self, w: &WarmUp<'_>) -> usize {
        let mut ok = 0;
        for req in self.build_warm_up(w) {
            if self
                .send("warm_up", Ok(req), timeouts::CONTROL)
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        ok
    }
}

/// `2026-08-20T01:37:21.000Z`: the web app's `eventTime`, whole seconds.
fn event_time(ms: u64) -> String {
    let plain = crate::util::format_rfc3339(ms);
    format!("{}.000Z", plain.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_is_the_web_apps_five_calls() {
        let client = super::super::offline_client();
        let st = Secret::new("st-value");
        let identity = BrowserIdentity::default();
        let w = WarmUp {
            st: Some(&st),
            project_id: "pid",
            user_agent: "UA Chrome/147.0",
            identity: &identity,
            session_id: ";1",
            now_ms: 1_787_189_841_000,
        };
        let reqs = client.build_warm_up(&w);
        let paths: Vec<String> = reqs.iter().map(|r| r.uri().path().to_owned()).collect();
        assert_eq!(reqs.len(), 5, "{paths:?}");
        assert!(paths[0].ends_with("/trpc/general.fetchUserPreferences"));
        assert_eq!(
            reqs[0].uri().query(),
            Some(format!("input={TRPC_NULL_INPUT}").as_str())
        );
        assert!(reqs[0].headers()["cookie"]
            .to_str()
            .unwrap()
            .contains("st-value"));
        assert_eq!(
            reqs[0].headers()["referer"],
            "https://labs.google/fx/tools/flow/project/pid"
        );
        let log: serde_json::Value = serde_json::from_slice(reqs[3].body()).unwrap();
        assert_eq!(
            log["json"]["appEvents"][0]["eventTime"],
            "2026-08-20T01:37:21.000Z"
        );
        assert_eq!(
            log["json"]["appEvents"][0]["eventMetadata"]["sessionId"],
            ";1"
        );
        let check = &reqs[4];
        assert!(check.uri().path().ends_with(":checkAppAvailability"));
        assert!(check.headers().get("authorization").is_none());
        assert!(check.headers().get("cookie").is_none());
        assert_eq!(check.headers()["content-type"], "text/plain;charset=UTF-8");
        assert_eq!(
            check.body().as_ref(),
            br#"{"clientContext":{"tool":"PINHOLE"}}"#
        );
        // Without a session token only the log and the availability check remain.
        let w = WarmUp { st: None, ..w };
        assert_eq!(client.build_warm_up(&w).len(), 2);
    }
}
