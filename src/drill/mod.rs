//! Drills: rehearse a runbook against a scripted incident on a virtual
//! clock, and assert what it did.
//!
//! A drill is a run of the real compiler and executor with [`adapters`]
//! that answer from the scenario, on a paused tokio runtime so that
//! backoffs, timeouts and verify windows take no wall time.

pub mod adapters;
pub mod scenario;
