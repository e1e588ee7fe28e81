//! One typed command to a Durable Object: JSON in a POST to a made-up URL through the stub,
//! JSON reply back. Shared by the coordinator and the store client.

use flow2api_sdk::seams::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::wasm_bindgen::JsValue;
use worker::{Method, Request, RequestInit, Stub};

use crate::fetch_http::Subrequests;

/// Sends `command` to the object behind `stub` at `url` and decodes its reply. Counts one
/// subrequest.
pub async fn call<C, R>(
    stub: &Stub,
    url: &str,
    command: &C,
    subrequests: &Subrequests,
) -> Result<R, StorageError>
where
    C: Serialize,
    R: DeserializeOwned,
{
    let fail = |what: &str, e: &dyn std::fmt::Display| StorageError(format!("{what}: {e}"));
    let body = serde_json::to_string(command).map_err(|e| fail("encoding a command", &e))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let request = Request::new_with_init(url, &init).map_err(|e| fail("durable object", &e))?;
    subrequests.add();
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|e| fail("durable object", &e))?;
    let text = response
        .text()
        .await
        .map_err(|e| fail("durable object reply", &e))?;
    if response.status_code() != 200 {
        return Err(StorageError(format!(
            "durable object answered {}: {text}",
            response.status_code()
        )));
    }
    serde_json::from_str(&text).map_err(|e| fail("durable object reply", &e))
}
