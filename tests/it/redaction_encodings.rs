//! A secret is masked in every form a command may print it: `runbook run`
//! end to end, real shell commands printing the secret as is, shell-quoted,
//! JSON-escaped and percent-encoded, as the key of a captured JSON value,
//! and cut in half by the 2 KiB tail of an output kept in the log; then the
//! journal, the run's other files and the console are searched for each.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use support::run_files;

/// A space, a slash, both quotes, `$`, `+`, `=`, a non-ASCII letter and a
/// character beyond the BMP: every encoding below changes it.
const SECRET: &str = "pw/Tök3n y'z\"q$+r=9🔑ab";

/// The secret as other programs write it, spelled out here rather than
/// computed, with what writes it that way.
const FORMS: &[(&str, &str)] = &[
    ("as is", "pw/Tök3n y'z\"q$+r=9🔑ab"),
    ("in single quotes (set -x)", r#"pw/Tök3n y'\''z"q$+r=9🔑ab"#),
    ("in double quotes", r#"pw/Tök3n y'z\"q\$+r=9🔑ab"#),
    ("backslashed (printf %q)", r#"pw/Tök3n\ y\'z\"q\$+r=9🔑ab"#),
    ("JSON", r#"pw/Tök3n y'z\"q$+r=9🔑ab"#),
    (
        "JSON, ASCII only (Python)",
        r#"pw/T\u00f6k3n y'z\"q$+r=9\ud83d\udd11ab"#,
    ),
    (
        "JSON, ASCII only, upper case, slash escaped (PHP)",
        r#"pw\/T\u00F6k3n y'z\"q$+r=9\uD83D\uDD11ab"#,
    ),
    ("JSON, slash escaped", r#"pw\/Tök3n y'z\"q$+r=9🔑ab"#),
    (
        "percent-encoded",
        "pw%2FT%C3%B6k3n%20y%27z%22q%24%2Br%3D9%F0%9F%94%91ab",
    ),
    (
        "percent-encoded, lower case",
        "pw%2fT%c3%b6k3n%20y%27z%22q%24%2br%3d9%f0%9f%94%91ab",
    ),
    (
        "form-encoded",
        "pw%2FT%C3%B6k3n+y%27z%22q%24%2Br%3D9%F0%9F%94%91ab",
    ),
    (
        "percent-encoded path (Python's quote)",
        "pw/T%C3%B6k3n%20y%27z%22q%24%2Br%3D9%F0%9F%94%91ab",
    ),
];

/// The end of the secret, which the tail of `long.txt`'s output starts
/// with: the 2 KiB the log keeps begin inside the secret.
const CUT_PIECE: &str = "r=9🔑ab";
const LOG_TAIL: usize = 2048;

fn run(dir: &Path, token: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", "r.runbook", "--runs-dir"])
        .arg(dir.join("runs"))
        .args(extra)
        .current_dir(dir)
        .env("RB_TEST_TOKEN", token)
        .output()
        .expect("runbook runs")
}

const RUNBOOK: &str = r#"
runbook encodings {
  secret token = env "RB_TEST_TOKEN"
  step templated { run "printf '%s\n' {{token}}" readonly }
  step keyed { run "cat key.json" readonly capture json as keyed }
  step long { run "cat long.txt" readonly }
  step forms { run "cat forms.txt; exit 1" readonly }
}
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.runbook"), RUNBOOK).unwrap();
    // Three forms a line: the console shows the last lines of a failed
    // action's output.
    let lines: Vec<String> = FORMS
        .chunks(3)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(what, form)| format!("{what}: {form} |"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    std::fs::write(dir.path().join("forms.txt"), lines.join("\n") + "\n").unwrap();
    let key = serde_json::to_string(SECRET).unwrap();
    std::fs::write(
        dir.path().join("key.json"),
        format!(r#"{{"before": 1, {key}: {{"nested": {key}}}, "after": 2}}"#),
    )
    .unwrap();
    let after = LOG_TAIL - CUT_PIECE.len();
    std::fs::write(
        dir.path().join("long.txt"),
        format!("{}{SECRET}{}", "A".repeat(3000), "B".repeat(after)),
    )
    .unwrap();
    dir
}

#[test]
fn a_secret_is_masked_in_every_form_in_the_journal_and_on_the_console() {
    let dir = setup();
    for output in [&[][..], &["--output", "json"][..]] {
        let runs = dir.path().join("runs");
        let _ = std::fs::remove_dir_all(&runs);
        let out = run(dir.path(), SECRET, output);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            // Every step only reads: the failure changed nothing.
            Some(runbook::exit::NOTHING_CHANGED),
            "{stdout}\n{stderr}"
        );
        let files = run_files(&runs);

        // The outputs were logged, masked: each form, the captured key and
        // the piece at the cut.
        for (what, _) in FORMS {
            assert!(
                files.contains(&format!("{what}: ***"))
                    || files.contains(&format!("{what}: '***'")),
                "{what} not logged masked:\n{files}"
            );
        }
        assert!(
            files.contains(r#""value":{"***":{"nested":"***"},"after":2,"before":1}"#),
            "{files}"
        );
        assert!(files.contains("…***BBBB"), "{files}");

        // Nothing of the secret anywhere: no form of it, and not the
        // piece every form shares or the piece left at the cut.
        for (place, text) in [
            ("stdout", &*stdout),
            ("stderr", &*stderr),
            ("run files", &files),
        ] {
            for (what, form) in FORMS {
                assert!(!text.contains(form), "{what} leaked into {place}:\n{text}");
            }
            assert!(
                !text.contains("k3n"),
                "a piece leaked into {place}:\n{text}"
            );
            assert!(
                !text.contains(CUT_PIECE),
                "the cut piece leaked into {place}"
            );
        }
        // What the console shows of the failed step is masked too.
        assert!(stdout.contains("***"), "{stdout}");
    }
}

#[test]
fn a_secret_too_short_to_mask_is_refused_before_anything_runs() {
    let dir = setup();
    let out = run(dir.path(), "ab", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(runbook::exit::INVALID), "{stderr}");
    assert!(
        stderr.contains("secret `token`: its value is 2 characters long")
            && stderr.contains("at least 3 characters"),
        "{stderr}"
    );
    assert!(!dir.path().join("runs").exists() || run_files(&dir.path().join("runs")).is_empty());
}
