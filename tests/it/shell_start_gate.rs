//! The real shell adapter's start gate (`adapters::shell`, `StartBarrier`):
//! a change's command never runs before the engine says its start is on
//! disk, and a gated command behaves exactly as an ungated one.

use crate::support;

use runbook::adapters::shell::RealShell;
use runbook::adapters::{
    Call, ErrorKind, ShellAdapter, ShellOutput, StartBarrier, START_NOT_RECORDED,
};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::shell_request as req;

fn gated(barrier: StartBarrier) -> Call {
    let mut call = Call::simple("change");
    call.start = barrier;
    call
}

#[test]
fn the_real_shell_adapter_takes_the_barrier() {
    assert!(RealShell::default().passes_start_barrier());
}

#[tokio::test]
async fn the_command_runs_only_after_the_barrier_passes() {
    let dir = support::temp_dir();
    let durable = dir.path().join("durable");
    let passes = Arc::new(AtomicUsize::new(0));
    let barrier = {
        let (durable, passes) = (durable.clone(), passes.clone());
        StartBarrier::new(move || {
            // A slow disk: the shell is up long before this returns.
            std::thread::sleep(Duration::from_millis(300));
            passes.fetch_add(1, Ordering::SeqCst);
            std::fs::write(&durable, "").is_ok()
        })
    };
    let out = RealShell::default()
        .run(
            &gated(barrier),
            &req(
                "if [ -e durable ]; then echo after; else echo before; fi",
                dir.path(),
            ),
        )
        .await
        .expect("runs");
    assert_eq!(
        out.stdout, "after\n",
        "the command ran before its start was durable"
    );
    assert_eq!(out.exit, Some(0));
    assert_eq!(passes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_barrier_that_fails_runs_nothing() {
    let dir = support::temp_dir();
    let err = RealShell::default()
        .run(
            &gated(StartBarrier::new(|| {
                // Long enough for an ungated shell to have run the command.
                std::thread::sleep(Duration::from_millis(300));
                false
            })),
            &req("touch ran", dir.path()),
        )
        .await
        .expect_err("the journal failed: no answer");
    assert_eq!(err.kind, ErrorKind::Other);
    assert_eq!(err.message, START_NOT_RECORDED);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!dir.path().join("ran").exists(), "the command ran");
}

#[test]
fn runbook_dying_at_the_barrier_runs_nothing() {
    let dir = support::temp_dir();
    let path = dir.path().to_path_buf();
    // The barrier never returns normally: the adapter's future unwinds,
    // as it would if runbook died there; the gate closes unopened.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let barrier = StartBarrier::new(|| {
                std::thread::sleep(Duration::from_millis(300));
                panic!("runbook dies here")
            });
            let _ = RealShell::default()
                .run(&gated(barrier), &req("touch ran", &path))
                .await;
        })
    }));
    assert!(unwound.is_err());
    std::thread::sleep(Duration::from_millis(100));
    assert!(!dir.path().join("ran").exists(), "the command ran");
}

async fn both_ways(command: &str, dir: &Path) -> (ShellOutput, ShellOutput) {
    let shell = RealShell::default();
    let plain = shell
        .run(&Call::simple("plain"), &req(command, dir))
        .await
        .expect("answer");
    let gate = shell
        .run(&gated(StartBarrier::new(|| true)), &req(command, dir))
        .await
        .expect("answer");
    (plain, gate)
}

#[tokio::test]
async fn a_gated_command_behaves_as_an_ungated_one() {
    let dir = support::temp_dir();
    for command in [
        // stdin is /dev/null, the exit status and both streams come back.
        "cat; echo eof; echo oops >&2; exit 3",
        // Errors keep their line numbers: the gate shares line 1.
        "echo one\nno_such_command_xyz",
        "echo \"unterminated",
        "# a comment first\necho after the comment",
        "set -e; false; echo not reached",
        "printf '%s|' \"$0\" \"$#\"",
        "kill -USR1 $$",
    ] {
        let (plain, gate) = both_ways(command, dir.path()).await;
        assert_eq!(
            (&gate.stdout, &gate.stderr, gate.exit, gate.signal),
            (&plain.stdout, &plain.stderr, plain.exit, plain.signal),
            "{command:?}"
        );
    }
    let (plain, _) = both_ways("echo one\nno_such_command_xyz", dir.path()).await;
    assert!(
        plain.stderr.contains("2: no_such_command_xyz"),
        "{}",
        plain.stderr
    );
}
