//! Scope: which operation a command is, which units it touches, and what a principal may see.
//!
//! The core authorizes every command: an API token's operations and unit (`qm_core::decide::scope`),
//! then the actor's roles and unit. The server adds one check on top: every read is filtered to the
//! principal's subtree (HQ, at the root, sees everything).

use crate::auth::Principal;
use qm_core::*;

pub use qm_core::decide::scope::discrepancy_units;

/// May `p` see something that belongs to `unit`? Things without a unit (written off, external) only HQ sees.
pub fn sees(s: &State, p: &Principal, unit: Option<&UnitId>) -> bool {
    match unit {
        Some(u) => s.unit_within(u, &p.unit),
        None => p.at_root,
    }
}

/// The refusal a read outside the principal's subtree gets (and records).
pub fn outside(p: &Principal, what: &str) -> String {
    format!("badge {} (unit {}) may not see {what}, which is outside its subtree", p.badge, p.unit)
}
