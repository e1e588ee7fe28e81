//! The operator's web console: three static files built into the library (and so into the
//! native binary and the worker's wasm), served at `/admin` and at `/manage` (the original's
//! path, where the Token Updater extension looks for `localStorage.adminToken`).
//!
//! The page is a small script over the admin API and the API routes (which accept a live
//! admin session as the root caller, see `AppInner::resolve_caller`); it loads nothing from
//! another origin, which its `Content-Security-Policy` enforces: no inline script or style, no
//! request beyond this origin, images and media only from here, `data:` and `blob:`.

use std::sync::OnceLock;

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use sha2::Digest;

use super::error::ApiError;
use super::Body;
use crate::seams::Bytes;
use crate::util;

/// The page; `{{ASSETS}}` becomes the path from the page's URL to the directory of the
/// script and style sheet (see [`asset_prefix`]).
const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// What every console response carries: nothing but this origin, never framed.
pub(crate) const CSP: &str =
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// The top-level path segments the console answers under.
pub(crate) const ROOTS: [&str; 2] = ["admin", "manage"];

/// Whether a request path (split into segments) is one of the console's.
pub(crate) fn is_console_path(segments: &[&str]) -> bool {
    matches!(segments, [root] | [root, _] if ROOTS.contains(root))
}

/// [`is_console_path`] of an unsplit path, without allocating (CORS asks it of every
/// response).
pub(crate) fn is_console_url(path: &str) -> bool {
    let p = path.trim_matches('/');
    let (root, rest) = p.split_once('/').unwrap_or((p, ""));
    ROOTS.contains(&root) && !rest.contains('/')
}

/// One file as served: its bytes, type and validator, made once per process.
struct Asset {
    body: Bytes,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: String, content_type: &'static str) -> Self {
        let digest = sha2::Sha256::digest(body.as_bytes());
        Self {
            etag: format!("\"{}\"", util::hex(&digest[..12])),
            body: Bytes::from(body),
            content_type,
        }
    }
}

/// The page as served at a path without a trailing slash (`/admin`: its assets are under
/// `admin/`) or with one (`/admin/`: beside it). Relative links keep the console working when
/// a host mounts the gateway under a prefix of its own.
fn asset_prefix(root: &str, trailing_slash: bool) -> &'static str {
    match (root, trailing_slash) {
        (_, true) => "",
        ("manage", false) => "manage/",
        _ => "admin/",
    }
}

fn index(prefix: &'static str) -> &'static Asset {
    static PAGES: OnceLock<[Asset; 3]> = OnceLock::new();
    let pages = PAGES.get_or_init(|| {
        let page = |p: &str| {
            Asset::new(
                INDEX_HTML.replace("{{ASSETS}}", p),
                "text/html; charset=utf-8",
            )
        };
        [page(""), page("admin/"), page("manage/")]
    });
    match prefix {
        "admin/" => &pages[1],
        "manage/" => &pages[2],
        _ => &pages[0],
    }
}

fn script() -> &'static Asset {
    static JS: OnceLock<Asset> = OnceLock::new();
    JS.get_or_init(|| Asset::new(CONSOLE_JS.to_owned(), "text/javascript; charset=utf-8"))
}

fn style() -> &'static Asset {
    static CSS: OnceLock<Asset> = OnceLock::new();
    CSS.get_or_init(|| Asset::new(CONSOLE_CSS.to_owned(), "text/css; charset=utf-8"))
}

/// Answers `GET` or `HEAD` of a console path: the page at `/admin`, `/admin/`, `/manage`,
/// `/manage/`, its script and style sheet under both, `304` when `If-None-Match` names the
/// file's current `ETag`; 404 for other files, 405 for other methods.
pub(crate) fn serve(
    method: &Method,
    path: &str,
    segments: &[&str],
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let asset = match segments {
        [root] => index(asset_prefix(root, path.ends_with('/'))),
        [_, "console.js"] => script(),
        [_, "console.css"] => style(),
        _ => return Err(ApiError::not_found(format!("No route for {method} {path}"))),
    };
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here"),
        ));
    }
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_listed(v, &asset.etag));
    let (status, body) = if not_modified {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if *method == Method::HEAD {
        (StatusCode::OK, Body::empty())
    } else {
        (StatusCode::OK, Body::Full(asset.body.clone()))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if status == StatusCode::OK {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.body.len()));
    }
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    // Always revalidated: a new build's files are used at once, unchanged ones cost a 304.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(resp)
}

/// Whether an `If-None-Match` value lists `etag` (or is `*`); weak and strong forms compare
/// alike, as RFC 9110 asks of `If-None-Match`.
fn etag_listed(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &HeaderMap) -> Response<Body> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        serve(&Method::GET, path, &segments, headers).unwrap()
    }

    fn body_text(resp: Response<Body>) -> String {
        match resp.into_body() {
            Body::Full(b) => String::from_utf8(b.to_vec()).unwrap(),
            _ => String::new(),
        }
    }

    #[test]
    fn the_page_links_its_assets_relative_to_where_it_is_served() {
        let at = |path: &str| body_text(get(path, &HeaderMap::new()));
        assert!(at("/admin").contains("src=\"admin/console.js\""));
        assert!(at("/admin/").contains("src=\"console.js\""));
        assert!(at("/manage").contains("href=\"manage/console.css\""));
        assert!(at("/manage/").contains("href=\"console.css\""));
        assert!(!at("/admin").contains("{{"));
    }

    #[test]
    fn every_file_carries_the_policy_and_a_validator() {
        for path in [
            "/admin",
            "/manage/",
            "/admin/console.js",
            "/manage/console.css",
        ] {
            let resp = get(path, &HeaderMap::new());
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let h = resp.headers();
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            let etag = h[header::ETAG].to_str().unwrap().to_owned();
            assert!(etag.starts_with('"') && etag.len() == 26, "{etag}");
            // Revalidation with it: 304, no body.
            let mut again = HeaderMap::new();
            again.insert(header::IF_NONE_MATCH, etag.parse().unwrap());
            let resp = get(path, &again);
            assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{path}");
            assert!(matches!(resp.body(), Body::Full(b) if b.is_empty()));
            // Another validator: the file again.
            let mut stale = HeaderMap::new();
            stale.insert(header::IF_NONE_MATCH, "\"0000\"".parse().unwrap());
            assert_eq!(get(path, &stale).status(), StatusCode::OK);
        }
        let js = get("/admin/console.js", &HeaderMap::new());
        assert!(js.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
    }

    #[test]
    fn the_policy_allows_this_origin_only() {
        assert!(CSP.contains("default-src 'self'"));
        assert!(CSP.contains("script-src 'self';"));
        assert!(CSP.contains("connect-src 'self'"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(!CSP.contains("unsafe"));
        // And the files need nothing more: no inline script, style or handler, no other origin.
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("style="));
        assert!(!INDEX_HTML.contains(" onclick"));
        for file in [INDEX_HTML, CONSOLE_JS, CONSOLE_CSS] {
            // The SVG namespace is a name, not an address anything is fetched from.
            let file = file.replace("http://www.w3.org/2000/svg", "");
            assert!(!file.contains("http://") && !file.contains("https://"));
            assert!(!file.contains("//cdn") && !file.contains("@import"));
        }
    }

    #[test]
    fn unknown_files_and_methods_are_refused() {
        let segs = ["admin", "secret.txt"];
        let e = serve(&Method::GET, "/admin/secret.txt", &segs, &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = serve(&Method::POST, "/admin", &["admin"], &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(is_console_path(&["manage", "console.js"]));
        assert!(!is_console_path(&["admin", "a", "b"]));
        assert!(!is_console_path(&["api", "admin"]));
        assert!(is_console_url("/admin/") && is_console_url("/manage/console.css"));
        assert!(!is_console_url("/admin/a/b") && !is_console_url("/api/admin/login"));
    }

    #[test]
    fn the_assets_stay_small() {
        // The worker's wasm carries them; the issue allows 150 KiB gzip, we keep far under.
        let total = INDEX_HTML.len() + CONSOLE_JS.len() + CONSOLE_CSS.len();
        assert!(total < 160 * 1024, "{total} bytes");
    }
}
