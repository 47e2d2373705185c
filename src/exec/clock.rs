//! The run's clock lives below the executor and the events, in
//! [`crate::clock`]; this path is kept for the code that still names it.

pub use crate::clock::*;
