//! `for X in [...] { steps }`: per-item bodies, run by the real binary.
//! Each step appends a marker line (`STEP ITEM`) to a file; the tests read
//! the order of those lines: an item's steps in order, one item after
//! another (or `parallel N` at once), a failed item's later steps not run
//! within `max_failures`, each item's capture its own, rollback in reverse
//! completion order, and `resume` after a SIGKILL mid-body not running a
//! finished step again.

use crate::support;

use support::{text, CliEnv};

const BODY: &str = r#"
runbook rings {
  input dir: string
  input bad: string = "none"
  input pause: string = "0"
  for ring in ["canary", "early", "broad"] PARALLEL {
    step locate {
      run "echo ep-{{ring}}" readonly
      capture text as endpoint
    }
    step deploy {
      run "echo \"deploy {{ring}} {{endpoint}}\" >> {{dir}}/m; test {{ring}} != {{bad}}"
      undo "echo \"undo-deploy {{ring}} {{endpoint}}\" >> {{dir}}/m"
    }
    step soak {
      run "echo \"soak {{ring}}\" >> {{dir}}/m; sleep {{pause}}"
      undo "echo \"undo-soak {{ring}}\" >> {{dir}}/m"
    }
  }
  step announce {
    run "echo announce >> {{dir}}/m; test {{bad}} != announce"
    undo "echo undo-announce >> {{dir}}/m"
  }
}
"#;

fn env(parallel: &str) -> CliEnv {
    CliEnv::new(&[("r.runbook", &BODY.replace("PARALLEL", parallel))], None)
}

fn marks(e: &CliEnv) -> Vec<String> {
    e.lines_of("m")
}

/// The marker lines from the first undo on.
pub(crate) fn undos(m: &[String]) -> Vec<&str> {
    m.iter()
        .map(String::as_str)
        .skip_while(|l| !l.starts_with("undo"))
        .collect()
}

#[test]
fn items_run_one_after_another_each_reading_its_own_capture() {
    let e = env("");
    let o = e.run_here("r.runbook", &[]).output().expect("runbook runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        marks(&e),
        [
            "deploy canary ep-canary",
            "soak canary",
            "deploy early ep-early",
            "soak early",
            "deploy broad ep-broad",
            "soak broad",
            "announce",
        ]
    );
    let out = text(&o);
    for id in ["locate[canary]", "deploy[early]", "soak[broad]"] {
        assert!(out.contains(id), "{id} not shown:\n{out}");
    }
}

#[test]
fn a_failure_later_rolls_back_every_item_in_reverse_completion_order() {
    let e = env("");
    let o = e
        .run_here("r.runbook", &["-i", "bad=announce"])
        .output()
        .expect("runbook runs");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let m = marks(&e);
    let undo = undos(&m);
    // `announce`'s action failed: it changed nothing, so it is not undone.
    assert_eq!(
        undo,
        [
            "undo-soak broad",
            "undo-deploy broad ep-broad",
            "undo-soak early",
            "undo-deploy early ep-early",
            "undo-soak canary",
            "undo-deploy canary ep-canary",
        ],
        "{}",
        text(&o)
    );
}

#[test]
fn a_failed_item_stops_its_own_steps_and_fails_the_run_without_max_failures() {
    let e = env("");
    let o = e
        .run_here("r.runbook", &["-i", "bad=early"])
        .output()
        .expect("runbook runs");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let m = marks(&e);
    assert!(
        !m.iter().any(|l| l == "soak early" || l.contains("broad")),
        "{m:?}"
    );
    // The failed action of `deploy[early]` is not undone; canary's
    // completed steps are, latest first.
    let undo = undos(&m);
    assert_eq!(
        undo,
        ["undo-soak canary", "undo-deploy canary ep-canary"],
        "{m:?}"
    );
}

#[test]
fn parallel_two_with_max_failures_one_goes_on_past_a_failed_item() {
    let e = env("parallel 2 max_failures 1");
    let o = e
        .run_here("r.runbook", &["-i", "bad=canary"])
        .output()
        .expect("runbook runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = marks(&e);
    // canary failed: its soak is skipped, nothing is undone, the others ran.
    assert!(
        !m.iter()
            .any(|l| l == "soak canary" || l.starts_with("undo")),
        "{m:?}"
    );
    for l in ["soak early", "soak broad", "announce"] {
        assert!(m.contains(&l.to_owned()), "{l} missing: {m:?}");
    }
    // At most two items at once: broad starts after canary has ended.
    let pos = |s: &str| m.iter().position(|l| l.starts_with(s));
    assert!(pos("deploy broad") > pos("deploy canary"), "{m:?}");
    let out = text(&o);
    assert!(
        out.contains("an earlier step of item `canary` failed"),
        "{out}"
    );
}

#[test]
fn a_second_failed_item_is_over_max_failures_and_fails_the_run() {
    let e = CliEnv::new(
        &[(
            "r.runbook",
            &BODY
                .replace("PARALLEL", "max_failures 1")
                .replace("test {{ring}} != {{bad}}", "test {{ring}} = broad"),
        )],
        None,
    );
    let o = e.run_here("r.runbook", &[]).output().expect("runbook runs");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let m = marks(&e);
    assert!(
        !m.iter().any(|l| l.contains("broad") || l == "announce"),
        "{m:?}"
    );
}

#[test]
fn resume_after_kill_mid_body_runs_no_finished_step_again() {
    let e = env("");
    // Killed while `soak[early]` sleeps: locate, deploy of canary and early
    // and soak[canary] have ended.
    let id = e.run_killed_in("r.runbook", &["-i", "pause=3"], "soak[early]", "soak early");
    let before = marks(&e);
    assert_eq!(
        before.last().map(String::as_str),
        Some("soak early"),
        "{before:?}"
    );
    let o = e.out(&[
        "resume",
        &id,
        "--runs-dir",
        "runs",
        "--assume-done",
        "soak[early]",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = marks(&e);
    assert_eq!(
        &after[before.len()..],
        ["deploy broad ep-broad", "soak broad", "announce"],
        "{}",
        text(&o)
    );
}

/// The members of an etcd cluster as an input: the body is laid out per
/// item of the run's value (`--input`), and `plan` shows it so.
const FROM_INPUT: &str = r#"
runbook members {
  input dir: string
  input members: list<string>
  for member in members {
    step defrag {
      run "echo \"defrag {{member}}\" >> {{dir}}/m"
      undo none "defragmentation changes no data"
    }
    step check {
      run "echo \"check {{member}}\" >> {{dir}}/m" readonly
    }
  }
}
"#;

/// `FROM_INPUT` run with `--input members=VALUE`.
fn run_members(value: &str) -> (CliEnv, std::process::Output) {
    let e = CliEnv::new(&[("r.runbook", FROM_INPUT)], None);
    let members = format!("members={value}");
    let o = e
        .run_here("r.runbook", &["-i", &members])
        .output()
        .expect("runbook runs");
    (e, o)
}

#[test]
fn items_from_a_list_input_are_the_runs_value() {
    let (e, o) = run_members(r#"["etcd-2", "etcd-1"]"#);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        marks(&e),
        [
            "defrag etcd-2",
            "check etcd-2",
            "defrag etcd-1",
            "check etcd-1"
        ]
    );
    assert!(text(&o).contains("defrag[etcd-1]"), "{}", text(&o));

    // Without the value, `check` accepts the runbook and `plan` with it
    // lays the steps out per item.
    let c = e.out(&["check", "r.runbook"]);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    let p = e.out(&[
        "plan",
        "r.runbook",
        "-i",
        "dir=/tmp",
        "-i",
        r#"members=["etcd-1", "etcd-3"]"#,
    ]);
    assert_eq!(p.status.code(), Some(0), "{}", text(&p));
    let shown = text(&p);
    for id in [
        "defrag[etcd-1]",
        "check[etcd-3]",
        "`for` blocks laid out from inputs: members",
    ] {
        assert!(shown.contains(id), "{id} not in plan:\n{shown}");
    }
    assert!(!shown.contains("[*]"), "{shown}");
}

#[test]
fn a_list_input_item_that_cannot_name_a_step_is_refused_before_anything_runs() {
    let (e, o) = run_members(r#"["etcd-1", "etcd-1"]"#);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("item `etcd-1` is listed twice"), "{out}");
    assert!(out.contains("--input members="), "{out}");
    assert!(marks(&e).is_empty());
}

const RINGS: &str = r#"
runbook rings {
  input rings: list<string>
  for ring in rings {
    step widen {
      when ring == "broad"
      approve "publish to {{ring}}?"
    }
    step publish {
      run "contentctl publish --ring {{ring}}"
      undo "contentctl revert --ring {{ring}}"
    }
  }
}
"#;

/// A drill targets a body step for one item (`publish[canary]`), and
/// coverage counts a body step once for all items (`widen[*]`: its `when`
/// holds for one item only), from every drill's items, and each item of
/// the first drill's value as reached.
#[test]
fn drills_target_one_items_step_and_coverage_counts_body_steps() {
    let drill = |name: &str, rings: &str, extra: &str| {
        format!("runbook: r.runbook\nname: {name}\ninputs:\n  rings: {rings}\n{extra}")
    };
    let e = CliEnv::new(
        &[
            ("r.runbook", RINGS),
            (
                "r.canary_fails.drill.yaml",
                &drill(
                    "canary fails",
                    r#"["internal", "canary"]"#,
                    "actions:\n  publish[canary]: {result: fail}\nexpect:\n  outcome: rolled_back\n  failed: [\"publish[canary]\"]\n  rollback: [\"publish[internal]\"]\n",
                ),
            ),
            (
                "r.wide.drill.yaml",
                &drill(
                    "goes wide",
                    r#"["internal", "broad"]"#,
                    "approvals:\n  widen[broad]: {approve: true, after: 1m}\nexpect:\n  outcome: succeeded\n  skipped: [\"widen[internal]\"]\n",
                ),
            ),
        ],
        None,
    );
    let o = e.out(&["test", ".", "--coverage"]);
    let out = text(&o);
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    let missing: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("never rehearsed: "))
        .collect();
    // The clauses of `widen` count once (its `when` true in one drill,
    // false in the other), and only its refusal was never rehearsed; the
    // items listed are the first drill's (internal, canary).
    assert_eq!(missing, ["refused approval of widen[*]"], "{out}");
    assert!(out.contains("coverage of rings: 7/8"), "{out}");
}

/// `plan` says how the items run and what a failed item does.
#[test]
fn plan_shows_items_at_once_and_what_a_failed_item_does() {
    let e = env("parallel 2 max_failures 1");
    let dir = format!("dir={}", e.dir.display());
    let o = e.out(&["plan", "r.runbook", "-i", &dir]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    for line in [
        r#"for ring = "early" (item 2 of 3, up to 2 items at once, up to 1 item(s) may fail)"#,
        "if it fails: the later steps of its item are skipped; past 1 failed item(s), the run stops and rolls back",
    ] {
        assert!(out.contains(line), "{line} not in:\n{out}");
    }
}

/// A run over a list input killed mid-body resumes with the journal's
/// value of the input: the same steps, none that ended run again.
#[test]
fn resume_of_a_run_over_a_list_input_binds_the_journals_value() {
    let e = CliEnv::new(
        &[(
            "r.runbook",
            &FROM_INPUT.replace(
                r#"run "echo \"check {{member}}\" >> {{dir}}/m" readonly"#,
                r#"run "echo \"check {{member}}\" >> {{dir}}/m; sleep 3" readonly"#,
            ),
        )],
        None,
    );
    let id = e.run_killed_in(
        "r.runbook",
        &["-i", "members=etcd-1,etcd-2"],
        "check[etcd-1]",
        "check etcd-1",
    );
    assert_eq!(marks(&e), ["defrag etcd-1", "check etcd-1"]);
    // No --input: the members come from the journal. `check[etcd-1]` only
    // reads: cut off, it runs again; `defrag[etcd-1]` had ended: it does not.
    let o = e.out(&["resume", &id, "--runs-dir", "runs"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        marks(&e),
        [
            "defrag etcd-1",
            "check etcd-1",
            "check etcd-1",
            "defrag etcd-2",
            "check etcd-2"
        ],
        "{}",
        text(&o)
    );
}
