pub use crate::exit::*;
