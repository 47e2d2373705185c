//! The drill scenario file (`*.drill.yaml`): which runbook, which inputs,
//! how the world answers, and what the runbook must have done.
//!
//! [`model`]: the typed structs `yaml_serde` reads the file into (unknown
//! keys are errors). [`loader`]: reading the file, and turning a YAML or
//! shape error into a diagnostic at its line. [`validation`]: the names
//! in the scenario checked against the compiled graph, so that a misspelt
//! step or check is reported at its line, with a "did you mean".
//! [`locate`]: finding keys and values in the YAML text, for those
//! diagnostics.

mod loader;
mod locate;
mod model;
mod validation;

pub use loader::{load, parse};
pub use locate::{key_in, key_span, word_in};
pub use model::*;
pub use validation::validate;
