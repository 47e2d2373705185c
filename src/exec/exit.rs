//! The exit codes moved to [`crate::exit`]; this path stays for the callers
//! that still name `exec::exit` (`events::Outcome::exit_code`, the tests).

pub use crate::exit::*;
