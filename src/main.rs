//! The `runbook` command. Everything lives in the library; this maps the
//! outcome to an exit code.

fn main() {
    std::process::exit(runbook::cli::main());
}
