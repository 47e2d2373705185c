//! `runbook lsp`: the language server, on stdin/stdout.

use clap::Args;

#[derive(Args, Debug)]
pub struct LspArgs {
    /// Accepted for editors that pass it (VS Code's client does); stdio is
    /// the only transport.
    #[arg(long)]
    pub stdio: bool,
}

pub(super) fn execute(_args: LspArgs) -> i32 {
    match crate::lsp::serve_stdio() {
        Ok(()) => crate::exit::SUCCESS,
        Err(e) => {
            eprintln!("error: runbook lsp: {e}");
            crate::exit::INTERNAL
        }
    }
}
