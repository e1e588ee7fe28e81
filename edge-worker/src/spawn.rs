//! The SDK's [`Spawn`] at the edge: the fetch event's `waitUntil`, which keeps the invocation
//! alive until a background future (releasing the slot of a client that went away) is done.

use std::panic::AssertUnwindSafe;

use flow2api_sdk::seams::{BoxFuture, Spawn};
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;

/// Runs futures under the fetch handler's [`worker::Context`].
#[derive(Debug)]
pub struct WaitUntil {
    ctx: worker::Context,
}

impl WaitUntil {
    /// Background work for the invocation `ctx` belongs to.
    pub fn new(ctx: worker::Context) -> Self {
        Self { ctx }
    }
}

impl Spawn for WaitUntil {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        // The promise starts the future at once; `waitUntil` only extends the invocation.
        // (`AssertUnwindSafe` as `Context::wait_until` does: a panic build with unwinding
        // wants it, and a panicked release just leaves the lease to lapse.)
        let promise = future_to_promise(AssertUnwindSafe(async move {
            future.await;
            Ok(JsValue::UNDEFINED)
        }));
        // `Context::wait_until` itself, minus its `unwrap`: the call fails only when the
        // invocation is already over, and then the slot's lease frees it anyway.
        let _ = self.ctx.as_ref().wait_until(&promise);
    }
}
