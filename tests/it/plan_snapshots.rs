//! `runbook plan` output for two example runbooks, snapshotted: the order,
//! the rendered commands (with shell quoting as executed, secrets as
//! `***`), and what a failure at each step rolls back.

use std::process::Command;

fn plan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("plan")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the runbook binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_of_the_config_rollback_quotes_hostile_input_and_lists_rollbacks() {
    let (code, out, err) = plan(&[
        "runbooks/api_config_rollback.runbook",
        "--input",
        "bad_revision=r42; rm -rf /",
    ]);
    assert_eq!(code, 0, "{err}");
    // The hostile value stays one shell word in every command.
    assert!(
        out.contains("configctl revert api-gateway --to 'r42; rm -rf /'~1"),
        "{out}"
    );
    assert!(!out.contains("--to r42; rm"), "{out}");
    insta::assert_snapshot!("plan_api_config_rollback", out);
}

#[test]
fn plan_of_the_database_failover() {
    let (code, out, err) = plan(&[
        "runbooks/db_primary_failover.runbook",
        "--input",
        "cluster=pg-main",
        "--input",
        "candidate=pg-main-2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("{{"), "every placeholder is rendered: {out}");
    insta::assert_snapshot!("plan_db_primary_failover", out);
}

#[test]
fn plan_refuses_missing_and_unknown_inputs() {
    let (code, _, err) = plan(&[
        "runbooks/api_config_rollback.runbook",
        "--input",
        "bad_revison=r1",
    ]);
    assert_eq!(code, 3);
    assert!(err.contains("unknown input `bad_revison`"), "{err}");
    assert!(err.contains("did you mean `bad_revision`"), "{err}");
    assert!(
        err.contains("input `bad_revision` (string) is required"),
        "{err}"
    );
}
