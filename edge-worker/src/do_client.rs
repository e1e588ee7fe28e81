//! One typed command to a Durable Object: JSON in a POST to a made-up URL through the stub,
//! JSON reply back. Shared by the coordinator, the store client and the job runner.
//!
//! It talks to the runtime's objects directly rather than through `worker::Stub` and
//! `worker::Response`: those rebuild the reply as a new `Response` around its stream and read
//! it chunk by chunk through a stream reader, where `text()` reads it in one call. Every
//! image pays two of these calls, so the difference shows in the worker's CPU per request.

use flow2api_sdk::seams::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::DurableObject;
use worker::{web_sys, Stub};

use crate::fetch_http::Subrequests;
use crate::js::js_text;

/// A Durable Object to send commands to.
#[derive(Debug)]
pub struct Object(DurableObject);

impl From<Stub> for Object {
    fn from(stub: Stub) -> Self {
        Self(stub.into_rpc())
    }
}

/// Sends `command` to `object` at `url` and decodes its reply. Counts one subrequest.
pub async fn call<C, R>(
    object: &Object,
    url: &str,
    command: &C,
    subrequests: &Subrequests,
) -> Result<R, StorageError>
where
    C: Serialize,
    R: DeserializeOwned,
{
    let fail = |what: &str, e: &dyn std::fmt::Display| StorageError(format!("{what}: {e}"));
    let js = |what: &str, e: JsValue| StorageError(format!("{what}: {}", js_text(&e)));
    let body = serde_json::to_string(command).map_err(|e| fail("encoding a command", &e))?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let request =
        web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| js("durable object", e))?;
    subrequests.add();
    let promise = object
        .0
        .fetch_with_request(&request)
        .map_err(|e| js("durable object", e))?;
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|e| js("durable object", e))?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(|e| js("durable object reply", e))?)
        .await
        .map_err(|e| js("durable object reply", e))?
        .as_string()
        .unwrap_or_default();
    if response.status() != 200 {
        return Err(StorageError(format!(
            "durable object answered {}: {text}",
            response.status()
        )));
    }
    serde_json::from_str(&text).map_err(|e| fail("durable object reply", &e))
}
