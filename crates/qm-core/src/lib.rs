//! Quartermaster's domain core: commands, rules, events and projections. No I/O: clock and ids come in as arguments.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod books;
pub mod command;
pub mod conditions;
pub mod decide;
pub mod directives;
pub mod down;
pub mod event;
pub mod ids;
pub mod incidents;
pub mod invariants;
pub mod model;
pub mod permissions;
pub mod policy;
pub mod quantity;
pub mod zone;

/// The former name of `books`, kept for the paths other crates use.
pub use books as state;
pub use command::{
    parse_date, parse_items, parse_range, parse_receipt, parse_return_line, parse_return_lines, parse_time, Command, ItemRef, ReceiptLine,
    ReturnTo, ITEMS_MAX,
};
/// The former name of `decide`, kept for the paths other crates use.
pub use decide as rules;
/// Storage safety, now `decide::storage`.
pub use decide::storage as safety;
pub use decide::{decide, Ctx, Decision, Rejection};
pub use event::{Correction, Envelope, Event, Line};
pub use ids::*;
pub use model::*;
pub use quantity::Quantity;
pub use state::State;
