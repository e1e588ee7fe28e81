//! Concurrency slots of one account, held as leases so that a crashed request cannot keep a
//! slot past its lease. This is the rule; the in-process coordinator and the account Durable
//! Object both persist a [`SlotTable`] and call it.

use serde::{Deserialize, Serialize};

use super::{SlotKind, SlotRequest};

/// One held slot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    /// Lease id.
    pub id: String,
    /// Image or video.
    pub kind: SlotKind,
    /// When it lapses unless renewed (Unix ms).
    pub expires_ms: u64,
}

/// The slots held on one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlotTable {
    /// Live and not yet swept leases.
    pub leases: Vec<Lease>,
}

impl SlotTable {
    /// Drops leases that lapsed before `now_ms`; returns whether anything changed.
    pub fn sweep(&mut self, now_ms: u64) -> bool {
        let before = self.leases.len();
        self.leases.retain(|l| l.expires_ms > now_ms);
        before != self.leases.len()
    }

    /// Live slots of `kind` at `now_ms`.
    pub fn held(&self, kind: SlotKind, now_ms: u64) -> u32 {
        self.leases
            .iter()
            .filter(|l| l.kind == kind && l.expires_ms > now_ms)
            .count() as u32
    }

    /// Live slots of every kind at `now_ms`.
    pub fn held_total(&self, now_ms: u64) -> u32 {
        self.leases.iter().filter(|l| l.expires_ms > now_ms).count() as u32
    }

    /// Takes a slot under `request`'s limit, returning the new lease id, or `None` when full.
    pub fn acquire(
        &mut self,
        request: SlotRequest,
        now_ms: u64,
        lease_id: String,
    ) -> Option<String> {
        self.sweep(now_ms);
        if let Some(limit) = request.limit {
            if self.held(request.kind, now_ms) >= limit {
                return None;
            }
        }
        self.leases.push(Lease {
            id: lease_id.clone(),
            kind: request.kind,
            expires_ms: now_ms.saturating_add(request.lease_ms),
        });
        Some(lease_id)
    }

    /// Extends a live lease to `lease_ms` from `now_ms`; returns whether it was still held.
    pub fn renew(&mut self, lease_id: &str, now_ms: u64, lease_ms: u64) -> bool {
        match self
            .leases
            .iter_mut()
            .find(|l| l.id == lease_id && l.expires_ms > now_ms)
        {
            Some(l) => {
                l.expires_ms = now_ms.saturating_add(lease_ms);
                true
            }
            None => false,
        }
    }

    /// Releases a lease; returns whether it was held.
    pub fn release(&mut self, lease_id: &str) -> bool {
        let before = self.leases.len();
        self.leases.retain(|l| l.id != lease_id);
        before != self.leases.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(limit: Option<u32>) -> SlotRequest {
        SlotRequest {
            kind: SlotKind::Image,
            limit,
            lease_ms: 1000,
        }
    }

    #[test]
    fn limit_is_enforced_and_leases_lapse() {
        let mut t = SlotTable::default();
        assert!(t.acquire(req(Some(2)), 0, "a".into()).is_some());
        assert!(t.acquire(req(Some(2)), 0, "b".into()).is_some());
        assert!(t.acquire(req(Some(2)), 10, "c".into()).is_none());
        assert!(t.release("a"));
        assert!(!t.release("a"));
        assert!(t.acquire(req(Some(2)), 10, "c".into()).is_some());
        // Both lapse at 1000/1010.
        assert!(t.acquire(req(Some(2)), 1011, "d".into()).is_some());
        assert_eq!(t.held_total(1011), 1);
        assert!(t.acquire(req(None), 1011, "e".into()).is_some());
    }
}
