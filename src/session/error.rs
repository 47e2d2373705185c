//! What a session tells its caller: typed errors (each with its exit code)
//! and notices. The session prints nothing of either; the caller (`cli`,
//! a server, a worker) decides how to show them.

use crate::config::ConfigError;
use crate::diagnostics::Report;

/// Why a session did not start (or resume). Nothing was run; for
/// [`Error::Internal`] a run directory may have been created.
#[derive(Debug)]
pub enum Error {
    /// The config file (or its selected environment) is invalid.
    Config(Box<ConfigError>),
    /// The runbook does not compile: every diagnostic, for `name`.
    Runbook { name: String, report: Report },
    /// The request is invalid (inputs, secrets, assumptions, approvals, a
    /// lock held by another run, a run that cannot be resumed...): every
    /// problem found, one message each.
    Invalid(Vec<String>),
    /// A resume that needs the operator's answer first (a step in doubt):
    /// one question each. The journal is unchanged.
    Unanswered(Vec<String>),
    /// The journal, the run directory or the runtime could not be set up.
    Internal(String),
}

impl Error {
    pub(crate) fn invalid(message: impl std::fmt::Display) -> Self {
        Error::Invalid(vec![message.to_string()])
    }

    /// The process exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Internal(_) => crate::exit::INTERNAL,
            Error::Config(_) | Error::Runbook { .. } | Error::Invalid(_) | Error::Unanswered(_) => {
                crate::exit::INVALID
            }
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            Error::Runbook { name, report } => write!(
                f,
                "{name} is not a valid runbook ({} errors)",
                report.errors()
            ),
            Error::Invalid(errors) | Error::Unanswered(errors) => f.write_str(&errors.join("; ")),
            Error::Internal(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Error {}

/// What the caller should know while a session is set up, in the order it
/// happens: not an error, nothing stops.
#[derive(Debug)]
pub enum Notice {
    /// The runbook compiled with warnings (`name` as in [`Error::Runbook`]).
    CompileWarnings { name: String, report: Report },
    /// A problem worked around: a torn journal line, a resume forced past a
    /// changed runbook.
    Warning(String),
}
