//! `AccountObject`: one Durable Object per account (addressed by `id_from_name(account_id)`),
//! holding that account's [`SlotTable`] so its concurrency limit holds across every isolate.

use flow2api_sdk::pool::slots::SlotTable;
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::protocol::AccountCommand;

const SLOTS_KEY: &str = "slots";

/// The Durable Object class bound as `ACCOUNTS`.
#[durable_object]
pub struct AccountObject {
    state: State,
}

impl std::fmt::Debug for AccountObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountObject").finish_non_exhaustive()
    }
}

impl AccountObject {
    // The table is stored as a JSON string: exact u64s, and the same shape the SDK serialises.
    // Storage calls close the object's input gate, so no other command interleaves between
    // this read and the write that follows it.
    async fn load(&self) -> Result<SlotTable> {
        let json: Option<String> = self.state.storage().get(SLOTS_KEY).await?;
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    async fn save(&self, table: &SlotTable) -> Result<()> {
        let json = serde_json::to_string(table)?;
        self.state.storage().put(SLOTS_KEY, json).await
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: AccountCommand = match serde_json::from_str(&req.text().await?) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("bad command: {e}"), 400),
        };
        let mut table = self.load().await?;
        let (reply, changed) = command.apply(&mut table, Date::now().as_millis());
        if changed {
            self.save(&table).await?;
        }
        Response::from_json(&reply)
    }
}
