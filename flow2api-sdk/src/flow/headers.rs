//! Header assembly for Google calls (`docs/upstream.md#common-request-rules`), without TLS
//! impersonation: the browser-like headers, client hints derived from the User-Agent, and
//! Origin/Referer.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::seams::BrowserIdentity;

pub use crate::transport::FALLBACK_USER_AGENT;
/// The Accept-Language used when no fingerprint supplied one.
pub const FALLBACK_ACCEPT_LANGUAGE: &str = "zh-CN,zh;q=0.9";
/// Origin of every Flow call.
pub const LABS_ORIGIN: &str = "https://labs.google";

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn put_if_absent(h: &mut HeaderMap, name: &'static str, value: &str) {
    if !h.contains_key(name) {
        put(h, name, value);
    }
}

/// `(sec-ch-ua, sec-ch-ua-mobile, sec-ch-ua-platform)` inferred from a User-Agent (step 9).
pub fn client_hints(user_agent: &str) -> (String, &'static str, &'static str) {
    let major = user_agent
        .split("Chrome/")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(124);
    let ua =
        format!(r#""Google Chrome";v="{major}", "Chromium";v="{major}", "Not)A;Brand";v="24""#);
    let (platform, mobile) = if user_agent.contains("Android") {
        (r#""Android""#, "?1")
    } else if user_agent.contains("iPhone") || user_agent.contains("iPad") {
        (r#""iOS""#, "?1")
    } else if user_agent.contains("Windows") {
        (r#""Windows""#, "?0")
    } else if user_agent.contains("Mac OS X") || user_agent.contains("Macintosh") {
        (r#""macOS""#, "?0")
    } else {
        (r#""Linux""#, "?0")
    };
    (ua, mobile, platform)
}

/// Profile D: the generic header set (steps 4–9 and 11).
pub fn profile_d(user_agent: &str, project_id: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    put(&mut h, "content-type", "application/json");
    put(&mut h, "user-agent", user_agent);
    put(&mut h, "accept-language", FALLBACK_ACCEPT_LANGUAGE);
    add_browser_defaults(&mut h, user_agent);
    put_if_absent(&mut h, "origin", LABS_ORIGIN);
    if let Some(pid) = project_id {
        put_if_absent(&mut h, "referer", &project_page(pid));
    }
    h
}

/// Profile M ("flow media"), used for image generation: fixed browser headers, Referer
/// `https://labs.google/`, the `x-browser-*` headers, then the generic assembly.
pub fn profile_m(user_agent: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    put(&mut h, "accept", "*/*");
    put(&mut h, "accept-language", FALLBACK_ACCEPT_LANGUAGE);
    put(&mut h, "content-type", "application/json");
    put(&mut h, "origin", LABS_ORIGIN);
    put(&mut h, "priority", "u=1, i");
    put(&mut h, "referer", "https://labs.google/");
    put(&mut h, "sec-fetch-storage-access", "active");
    add_x_browser(&mut h);
    put(&mut h, "user-agent", user_agent);
    add_browser_defaults(&mut h, user_agent);
    h
}

/// The four `x-browser-*` headers the web app sends.
fn add_x_browser(h: &mut HeaderMap) {
    put(h, "x-browser-channel", "stable");
    put(
        h,
        "x-browser-copyright",
        "Copyright 2026 Google LLC. All Rights Reserved.",
    );
    put(h, "x-browser-validation", "MRCPrt/rS3JY47x2Yiz9h3ag4U8=");
    put(h, "x-browser-year", "2026");
}

/// Profile B ("browser-style control", the web app's own calls; `docs/upstream.md#warm-up`):
/// no generic defaults re-applied. `origin` adds `sec-fetch-storage-access` for Labs.
pub fn profile_b(
    user_agent: &str,
    referer: &str,
    origin: Option<&str>,
    content_type: Option<&str>,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    put(&mut h, "accept", "*/*");
    put(&mut h, "referer", referer);
    put(&mut h, "user-agent", user_agent);
    put(&mut h, "accept-language", FALLBACK_ACCEPT_LANGUAGE);
    put(&mut h, "priority", "u=1, i");
    put(&mut h, "sec-fetch-dest", "empty");
    put(&mut h, "sec-fetch-mode", "cors");
    put(&mut h, "sec-fetch-site", "cross-site");
    if let Some(origin) = origin {
        put(&mut h, "origin", origin);
        if origin == LABS_ORIGIN {
            put(&mut h, "sec-fetch-storage-access", "active");
        }
    }
    if let Some(ct) = content_type {
        put(&mut h, "content-type", ct);
    }
    add_x_browser(&mut h);
    // The browser's client hints (the sec-fetch ones are set above).
    add_browser_defaults(&mut h, user_agent);
    h
}

fn add_browser_defaults(h: &mut HeaderMap, user_agent: &str) {
    let (ua, mobile, platform) = client_hints(user_agent);
    put_if_absent(h, "sec-ch-ua", &ua);
    put_if_absent(h, "sec-ch-ua-mobile", mobile);
    put_if_absent(h, "sec-ch-ua-platform", platform);
    put_if_absent(h, "sec-fetch-dest", "empty");
    put_if_absent(h, "sec-fetch-mode", "cors");
    put_if_absent(h, "sec-fetch-site", "cross-site");
}

/// `h` with the solving browser's own client hints, language and Google cookies in place of
/// the ones inferred from its User-Agent (what it reported; the rest stays as built).
pub fn with_identity(mut h: HeaderMap, identity: &BrowserIdentity) -> HeaderMap {
    let fields = [
        ("accept-language", &identity.accept_language),
        ("sec-ch-ua", &identity.sec_ch_ua),
        ("sec-ch-ua-mobile", &identity.sec_ch_ua_mobile),
        ("sec-ch-ua-platform", &identity.sec_ch_ua_platform),
    ];
    for (name, value) in fields {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            put(&mut h, name, v);
        }
    }
    if let Some(cookies) = identity.cookies.as_ref().filter(|c| !c.is_empty()) {
        if let Ok(mut v) = HeaderValue::from_str(cookies.expose()) {
            v.set_sensitive(true);
            h.append(http::header::COOKIE, v);
        }
    }
    h
}

/// The Flow project page: the Referer of project-scoped calls and the captcha page URL.
pub fn project_page(project_id: &str) -> String {
    format!("https://labs.google/fx/tools/flow/project/{project_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_user_agent() {
        let (ua, mobile, platform) = client_hints(FALLBACK_USER_AGENT);
        assert_eq!(
            ua,
            r#""Google Chrome";v="149", "Chromium";v="149", "Not)A;Brand";v="24""#
        );
        assert_eq!((mobile, platform), ("?0", r#""Windows""#));
        let h = profile_d(FALLBACK_USER_AGENT, Some("p1"));
        assert_eq!(h["referer"], "https://labs.google/fx/tools/flow/project/p1");
        assert_eq!(h["origin"], "https://labs.google");
        assert_eq!(h["content-type"], "application/json");
        let m = profile_m("Mozilla/5.0 (Linux; Android 14) Chrome/147.0.0.0 Mobile");
        assert_eq!(m["sec-ch-ua-mobile"], "?1");
        assert_eq!(m["referer"], "https://labs.google/");
    }

    #[test]
    fn a_reported_identity_replaces_the_inferred_one() {
        let identity = BrowserIdentity {
            accept_language: Some("en-GB,en;q=0.9".into()),
            sec_ch_ua_platform: Some(r#""Linux""#.into()),
            cookies: Some(crate::secret::Secret::new("NID=1; SID=2")),
            ..BrowserIdentity::default()
        };
        let h = with_identity(profile_m(FALLBACK_USER_AGENT), &identity);
        assert_eq!(h["accept-language"], "en-GB,en;q=0.9");
        assert_eq!(h["sec-ch-ua-platform"], r#""Linux""#);
        // Not reported: still inferred from the User-Agent.
        assert_eq!(h["sec-ch-ua-mobile"], "?0");
        assert_eq!(h["cookie"], "NID=1; SID=2");
        assert!(h["cookie"].is_sensitive());
        let plain = with_identity(profile_m(FALLBACK_USER_AGENT), &BrowserIdentity::default());
        assert_eq!(plain, profile_m(FALLBACK_USER_AGENT));
    }
}
