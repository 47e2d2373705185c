//! Redaction is the events layer's guarantee: see [`crate::events::redact`].
//! This path is kept for the code that still names it.

pub use crate::events::redact::*;
