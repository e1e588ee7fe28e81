//! The admin API's request bodies through `App::handle`, after a real login: the login body
//! itself, adding and importing accounts, updating one, and changing the runtime settings
//! (validated, then the gateway rebuilt from them), creating and changing tenant API keys. The
//! first byte picks the route.

#![no_main]

use flow2api_fuzz::{app, collect, handle, request, ADMIN_PASSWORD};
use flow2api_sdk::http::header;
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

const ROUTES: [(&str, &str); 10] = [
    ("POST", "/api/login"),
    ("POST", "/api/tokens"),
    ("POST", "/api/tokens/import"),
    ("PUT", "/api/tokens/acct-1"),
    ("PUT", "/api/settings"),
    ("PATCH", "/api/settings"),
    ("POST", "/api/settings"),
    ("POST", "/api/admin/login"),
    ("POST", "/api/keys"),
    ("PATCH", "/api/keys/key-1"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let app = app();
    let login = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let resp = handle(
        &app,
        request("POST", "/api/login", Some("application/json"), login.into()),
    );
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value =
        serde_json::from_slice(&collect(resp.into_body())).expect("a JSON login answer");
    let token = v["token"].as_str().expect("a session token").to_owned();

    let (method, path) = ROUTES[usize::from(pick) % ROUTES.len()];
    let mut req = request(
        method,
        path,
        Some("application/json"),
        Bytes::copy_from_slice(body),
    );
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    let resp = handle(&app, req);
    let status = resp.status().as_u16();
    let answer = collect(resp.into_body());
    if path.ends_with("/login") {
        // Only the configured credentials log in.
        if status == 200 {
            let v: serde_json::Value = serde_json::from_slice(body).expect("the body logged in");
            assert_eq!(v["password"], ADMIN_PASSWORD);
        }
    } else if path == "/api/tokens/import" {
        // Every account needs upstream, which is offline: nothing is added or changed.
        if status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON report");
            assert_eq!(
                (v["added"].as_u64(), v["updated"].as_u64()),
                (Some(0), Some(0))
            );
        }
    } else if path.starts_with("/api/tokens") {
        assert!(status >= 400, "{path}: {status}");
    } else if path == "/api/keys" && status == 201 {
        // A new key is shown once, and never again in the listing.
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON key");
        let key = v["key"].as_str().expect("the key");
        assert!(key.starts_with("sk-f2a-"), "{key}");
        let mut list = request("GET", "/api/keys", None, Bytes::new());
        list.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
        let listed = collect(handle(&app, list).into_body());
        assert!(!String::from_utf8_lossy(&listed).contains(key));
    } else if path.starts_with("/api/keys") {
        // Key-1 does not exist: nothing is changed.
        assert!(status >= 400, "{path}: {status}");
    }
});
