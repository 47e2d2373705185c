//! Approvals from another terminal: the inbox approver waiting while a
//! second task or a second process approves or denies; timeouts,
//! cancellation, deciding twice, superseded requests.

use runbook::adapters::approve::RealApprove;
use runbook::adapters::{ApprovalRequest, ApproveAdapter, Call, ErrorKind};
use runbook::durable::approvals::{
    decide, pending, request, ApprovalError, InboxApprover, RequestRecord, Via, APPROVALS_DIR,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const CHILD_ENV: &str = "RUNBOOK_DURABLE_APPROVE_CHILD";

/// Not a test of its own: the body of the child process (`runbook deny`
/// from another terminal, in effect).
#[test]
fn child_decider() {
    let Ok(run_dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let record = decide(Path::new(&run_dir), "drain", false, "bob", Some("not now"))
        .expect("the child decides");
    println!("DECIDED {record}");
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("r-1");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    (dir, run_dir)
}

fn inbox(run_dir: &Path) -> Arc<InboxApprover> {
    Arc::new(
        InboxApprover::new(run_dir, Arc::new(RealApprove::without_terminal()))
            .poll_every(Duration::from_millis(20)),
    )
}

fn call(node: &str) -> Call {
    let mut c = Call::simple(node);
    c.run_id = "r-1".into();
    c
}

fn req(timeout: Option<Duration>) -> ApprovalRequest {
    ApprovalRequest {
        message: "Drain eu-west?".into(),
        timeout,
        preapproved: false,
        by_other: false,
        attempts: None,
    }
}

async fn wait_pending(run_dir: &Path, key: &str) -> RequestRecord {
    for _ in 0..500 {
        if let Some(r) = pending(run_dir).into_iter().find(|r| r.key == key) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no pending request for {key}");
}

#[tokio::test]
async fn approved_from_another_task_while_ask_waits() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    let asking = tokio::spawn({
        let approver = approver.clone();
        async move { approver.ask(&call("drain"), &req(None)).await }
    });
    let r = wait_pending(&run_dir, "drain").await;
    assert_eq!(r.message, "Drain eu-west?");
    assert_eq!(r.run_id, "r-1");
    assert_eq!(r.pid, std::process::id());
    assert!(!asking.is_finished(), "still waiting");

    let record = decide(&run_dir, "drain", true, "alice", Some("looks good")).expect("decided");
    assert!(record.approved);
    assert_eq!(record.via, Via::Command);
    let d = tokio::time::timeout(Duration::from_secs(5), asking)
        .await
        .expect("answered promptly")
        .expect("task")
        .expect("decision");
    assert!(d.approved);
    assert_eq!(d.by, "alice");
    assert_eq!(d.reason.as_deref(), Some("looks good"));
    assert!(pending(&run_dir).is_empty());

    // Deciding twice is refused, saying who decided.
    let e = decide(&run_dir, "drain", false, "mallory", None).expect_err("twice");
    assert!(matches!(e, ApprovalError::AlreadyDecided { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("already closed: approved by alice"), "{msg}");
    assert!(msg.contains("looks good"), "{msg}");
}

#[tokio::test]
async fn denied_from_another_process_while_ask_waits() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    let asking = tokio::spawn({
        let approver = approver.clone();
        async move {
            approver
                .ask(&call("drain"), &req(Some(Duration::from_secs(30))))
                .await
        }
    });
    wait_pending(&run_dir, "drain").await;
    let exe = std::env::current_exe().expect("test binary");
    let run = run_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "durable_approvals::child_decider",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, run)
            .output()
    })
    .await
    .expect("join")
    .expect("child ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("DECIDED denied by bob"), "{stdout}");
    let d = tokio::time::timeout(Duration::from_secs(5), asking)
        .await
        .expect("answered promptly")
        .expect("task")
        .expect("decision");
    assert!(!d.approved);
    assert_eq!(d.by, "bob");
    assert_eq!(d.reason.as_deref(), Some("not now"));
}

#[tokio::test]
async fn a_timeout_fails_the_ask_and_closes_the_request() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    let e = approver
        .ask(&call("drain"), &req(Some(Duration::from_millis(150))))
        .await
        .expect_err("timed out");
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.message.contains("within 150ms"), "{}", e.message);
    assert!(e.message.contains("`drain`"), "{}", e.message);
    // A late decision is refused: the question is closed.
    let e = decide(&run_dir, "drain", true, "alice", None).expect_err("closed");
    match &e {
        ApprovalError::AlreadyDecided { record, .. } => assert_eq!(record.via, Via::Timeout),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test]
async fn cancellation_stops_the_wait_and_closes_the_request() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    let c = call("drain");
    let cancel = c.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(80)).await;
        cancel.cancel();
    });
    let e = approver.ask(&c, &req(None)).await.expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::Cancelled);
    let e = decide(&run_dir, "drain", true, "alice", None).expect_err("closed");
    assert!(e.to_string().contains("cancelled"), "{e}");
}

#[tokio::test]
async fn an_answer_on_the_terminal_closes_the_request() {
    let (_dir, run_dir) = setup();
    let out: runbook::adapters::approve::PromptWriter =
        Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let notice = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let approver = InboxApprover::new(&run_dir, Arc::new(RealApprove::scripted(&b"y\n"[..], out)))
        .with_notice(notice.clone());
    let d = approver
        .ask(&call("drain"), &req(None))
        .await
        .expect("answered");
    assert!(d.approved);
    let shown = String::from_utf8_lossy(&notice.lock().expect("lock")).into_owned();
    assert!(
        shown.contains("runbook approve r-1 drain") && shown.contains("runbook deny r-1 drain"),
        "{shown}"
    );
    match decide(&run_dir, "drain", false, "bob", None) {
        Err(ApprovalError::AlreadyDecided { record, .. }) => {
            assert_eq!(record.via, Via::Terminal);
            assert!(record.approved);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn preapproved_steps_write_nothing() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    let mut r = req(None);
    r.preapproved = true;
    let d = approver.ask(&call("drain"), &r).await.expect("approved");
    assert!(d.approved);
    assert_eq!(d.by, "--approve");
    assert!(!run_dir.join(APPROVALS_DIR).exists());
}

#[tokio::test]
async fn a_new_ask_supersedes_the_old_one() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    approver
        .ask(&call("drain"), &req(Some(Duration::from_millis(50))))
        .await
        .expect_err("first ask times out");
    // Asked again (a retry, a resume): a fresh request, which can be decided.
    let asking = tokio::spawn({
        let approver = approver.clone();
        async move { approver.ask(&call("drain"), &req(None)).await }
    });
    wait_pending(&run_dir, "drain").await;
    decide(&run_dir, "drain", true, "alice", None).expect("decided");
    let d = asking.await.expect("task").expect("decision");
    assert!(d.approved);
    // The closed first request's decision is kept aside.
    let archived = std::fs::read_dir(run_dir.join(APPROVALS_DIR))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("drain.decision.") && n != "drain.decision.json"
        })
        .count();
    assert_eq!(archived, 1);
}

#[tokio::test]
async fn fan_out_items_are_asked_separately() {
    let (_dir, run_dir) = setup();
    let approver = inbox(&run_dir);
    let mut c = call("drain");
    c.item = Some("eu/west 1".into());
    let asking = tokio::spawn({
        let approver = approver.clone();
        async move { approver.ask(&c, &req(None)).await }
    });
    let r = wait_pending(&run_dir, "drain[eu/west 1]").await;
    assert_eq!(r.item.as_deref(), Some("eu/west 1"));
    assert!(matches!(
        decide(&run_dir, "drain", true, "alice", None),
        Err(ApprovalError::NoRequest { .. })
    ));
    decide(&run_dir, "drain[eu/west 1]", true, "alice", None).expect("decided");
    assert!(asking.await.expect("task").expect("decision").approved);
}

#[test]
fn deciding_without_a_request_lists_what_is_pending() {
    let (_dir, run_dir) = setup();
    let e = decide(&run_dir, "drain", true, "alice", None).expect_err("nothing");
    assert!(
        e.to_string().contains("nothing is waiting for approval"),
        "{e}"
    );
    request(&run_dir, "flip", "Flip the flag?").expect("request");
    let e = decide(&run_dir, "drain", true, "alice", None).expect_err("not that one");
    assert!(e.to_string().contains("waiting for approval: flip"), "{e}");
}

#[test]
fn a_request_whose_process_is_gone_is_not_decided() {
    let (_dir, run_dir) = setup();
    let mut r = request(&run_dir, "drain", "Drain?").expect("request");
    let mut c = std::process::Command::new("true").spawn().expect("spawn");
    r.pid = c.id();
    c.wait().expect("wait");
    let path = run_dir.join(APPROVALS_DIR).join("drain.request.json");
    std::fs::write(&path, serde_json::to_vec(&r).expect("json")).expect("write");
    let e = decide(&run_dir, "drain", true, "alice", None).expect_err("gone");
    assert!(matches!(e, ApprovalError::NotWaiting { .. }), "{e:?}");
    assert!(e.to_string().contains("runbook resume r-1"), "{e}");
}

#[test]
fn approver_text_is_cleaned_of_control_characters() {
    let (_dir, run_dir) = setup();
    request(&run_dir, "drain", "Drain?").expect("request");
    let rec = decide(
        &run_dir,
        "drain",
        false,
        "eve\x1b[2J",
        Some("line\nbreak\x07 and a very long tail"),
    )
    .expect("decided");
    assert_eq!(rec.by, "eve [2J");
    assert_eq!(
        rec.reason.as_deref(),
        Some("line break  and a very long tail")
    );
}

#[test]
fn racing_deciders_get_exactly_one_decision() {
    let (_dir, run_dir) = setup();
    request(&run_dir, "drain", "Drain?").expect("request");
    let barrier = std::sync::Barrier::new(8);
    let wins = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (b, run_dir) = (&barrier, &run_dir);
                s.spawn(move || {
                    b.wait();
                    decide(run_dir, "drain", i % 2 == 0, &format!("user{i}"), None).is_ok()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("thread"))
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(wins, 1);
}
