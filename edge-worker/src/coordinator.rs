//! The SDK's [`Coordinator`] at the edge: each call is one command to the account's
//! `AccountObject`.

use flow2api_sdk::seams::{boxed, BoxFuture, Coordinator, SlotLease, SlotRequest, StorageError};
use flow2api_sdk::util::random_hex;
use worker::ObjectNamespace;

use crate::do_client::call;
use crate::fetch_http::Subrequests;
use crate::protocol::{AccountCommand, AccountReply, ACCOUNT_URL};

/// Concurrency slots held in one Durable Object per account.
#[derive(Debug)]
pub struct DoCoordinator {
    accounts: ObjectNamespace,
    subrequests: Subrequests,
}

impl DoCoordinator {
    /// A coordinator over the `ACCOUNTS` namespace, counting into `subrequests`.
    pub fn new(accounts: ObjectNamespace, subrequests: Subrequests) -> Self {
        Self {
            accounts,
            subrequests,
        }
    }

    async fn send(
        &self,
        account_id: &str,
        command: AccountCommand,
    ) -> Result<AccountReply, StorageError> {
        let stub = self
            .accounts
            .id_from_name(account_id)
            .and_then(|id| id.get_stub())
            .map_err(|e| StorageError(format!("account object: {e}")))?;
        call(&stub, ACCOUNT_URL, &command, &self.subrequests).await
    }
}

fn unexpected(_: AccountReply) -> StorageError {
    StorageError("account object: unexpected reply".into())
}

impl Coordinator for DoCoordinator {
    fn acquire<'a>(
        &'a self,
        account_id: &'a str,
        request: SlotRequest,
    ) -> BoxFuture<'a, Result<Option<SlotLease>, StorageError>> {
        boxed(async move {
            let command = AccountCommand::Acquire {
                request,
                lease_id: random_hex(8),
            };
            match self.send(account_id, command).await? {
                AccountReply::Acquired { lease_id } => Ok(lease_id.map(|lease_id| SlotLease {
                    account_id: account_id.to_owned(),
                    lease_id,
                })),
                other => Err(unexpected(other)),
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a SlotLease) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let command = AccountCommand::Release {
                lease_id: lease.lease_id.clone(),
            };
            match self.send(&lease.account_id, command).await? {
                AccountReply::Released { .. } => Ok(()),
                other => Err(unexpected(other)),
            }
        })
    }

    fn in_flight<'a>(&'a self, account_id: &'a str) -> BoxFuture<'a, Result<u32, StorageError>> {
        boxed(async move {
            match self.send(account_id, AccountCommand::InFlight).await? {
                AccountReply::InFlight { count } => Ok(count),
                other => Err(unexpected(other)),
            }
        })
    }
}
