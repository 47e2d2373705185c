//! Drills: rehearse a runbook against a scripted incident on a virtual
//! clock, and assert what it did.
//!
//! A drill is a run of the real compiler and executor with [`adapters`]
//! that answer from the scenario, on a paused tokio runtime so that
//! backoffs, timeouts and verify windows take no wall time. Its events are
//! the same as a real run's; [`expect`] judges them and [`coverage`]
//! measures what a set of drills exercised.

pub mod adapters;
pub mod coverage;
pub mod expect;
pub mod junit;
pub mod runner;
pub mod scenario;
