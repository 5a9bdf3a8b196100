//! Demo sites and the benchmark, on the application service and the store backends: the small demo
//! (`qm demo`: one department, a day of work), the demo organization (`qm serve --demo`: a national
//! headquarters, regions, departments, weeks of history) and `qm bench`. Their own crate, so that the
//! application service needs neither them nor a backend.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bench;
pub mod demo;
pub mod demo_org;
