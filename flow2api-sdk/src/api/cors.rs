//! CORS headers. The API routes (`/v1…`, `/v1beta…`, `/mcp`, `/media`, `/health`) allow every origin:
//! they need a key, which a page can only have if its user gave it. The admin API (`/api/*`)
//! allows only the origins `ADMIN_CORS_ORIGINS` lists, each echoed with `Vary: Origin`, so no
//! other site's page can drive an operator's browser against it; with none listed it sends no
//! CORS headers at all. Neither allows credentials: both authenticate with a bearer header.

use http::{header, HeaderMap, HeaderValue, Response};

use super::Body;

/// Adds the CORS headers a response to a request for `path` from `origin` gets.
pub(crate) fn apply(
    resp: &mut Response<Body>,
    path: &str,
    origin: Option<&HeaderValue>,
    admin_origins: &[String],
) {
    let h = resp.headers_mut();
    if super::console::is_console_url(path) {
        // The console's own files: same-origin only, nothing for other sites to read.
        return;
    }
    if path == "/api" || path.starts_with("/api/") {
        admin(h, origin, admin_origins);
    } else {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, x-goog-api-key, x-stainless-retry-count, mcp-protocol-version",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
        );
    }
}

fn admin(h: &mut HeaderMap, origin: Option<&HeaderValue>, allowed: &[String]) {
    if allowed.is_empty() {
        return;
    }
    // The answer depends on the origin even when it refuses it: caches must keep them apart.
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin.filter(|o| {
        o.to_str()
            .is_ok_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
    }) else {
        return;
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    // A page needs it to tell when a locked-out login may be tried again.
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(path: &str, origin: Option<&str>, allowed: &[&str]) -> HeaderMap {
        let mut resp = Response::new(Body::empty());
        let origin = origin.map(|o| HeaderValue::from_str(o).unwrap());
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        apply(&mut resp, path, origin.as_ref(), &allowed);
        resp.headers().clone()
    }

    #[test]
    fn api_routes_allow_every_origin() {
        for path in [
            "/v1/models",
            "/v1beta/models/x:predictLongRunning",
            "/media/ab",
            "/health",
        ] {
            let h = headers(
                path,
                Some("https://evil.example"),
                &["https://console.example"],
            );
            assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{path}");
        }
    }

    #[test]
    fn admin_routes_allow_only_listed_origins() {
        let listed = ["https://console.example"];
        let h = headers("/api/login", Some("https://console.example"), &listed);
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://console.example"
        );
        assert_eq!(h[header::VARY], "Origin");
        assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("authorization"));
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        for (origin, allowed) in [
            (Some("https://evil.example"), &listed[..]),
            (None, &listed[..]),
            (Some("https://console.example"), &[][..]),
        ] {
            let h = headers("/api/tokens", origin, allowed);
            assert!(
                !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
                "{origin:?}"
            );
            assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS));
        }
        assert!(!headers("/api/login", None, &[]).contains_key(header::VARY));
    }
}
