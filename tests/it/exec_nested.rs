//! Blocks that nest: an `if` inside a `for` body (decided per item,
//! journalled with the item), an `if` inside an `if` arm, a `for` inside an
//! `if` arm; run by the real binary. Each step appends a marker line to a
//! file; the tests read the order of those lines: only the arms taken run,
//! the rollback undoes what ran, latest first, across the nesting, and
//! `resume` after a SIGKILL inside a nested arm keeps the decisions
//! journalled and runs no finished step again.

use crate::exec_foreach::undos;
use crate::support;

use support::{text, CliEnv};

const NESTED: &str = r#"
runbook nested {
  input dir: string
  input bad: string = "none"
  input pause: string = "0"
  input deep: bool = true
  step start {
    run  "echo start >> {{dir}}/m"
    undo "echo undo-start >> {{dir}}/m"
  }
  for member in ["etcd-0", "etcd-1", "etcd-2"] {
    if member == "etcd-1" {
      step move_leader {
        run  "echo \"move {{member}}\" >> {{dir}}/m; sleep {{pause}}"
        undo "echo \"undo-move {{member}}\" >> {{dir}}/m"
      }
      if deep {
        step deep_check {
          run "echo \"deep {{member}}\" >> {{dir}}/m" readonly
        }
      } else {
        step shallow_check {
          run "echo \"shallow {{member}}\" >> {{dir}}/m" readonly
        }
      }
    }
    step defrag {
      run  "echo \"defrag {{member}}\" >> {{dir}}/m; test {{member}} != {{bad}}"
      undo "echo \"undo-defrag {{member}}\" >> {{dir}}/m"
    }
  }
  if deep {
    for zone in ["a", "b"] {
      step warm {
        run  "echo \"warm {{zone}}\" >> {{dir}}/m"
        undo "echo \"undo-warm {{zone}}\" >> {{dir}}/m"
      }
    }
  } else {
    step flat {
      run  "echo flat >> {{dir}}/m"
      undo "echo undo-flat >> {{dir}}/m"
    }
  }
  step finish {
    run  "echo finish >> {{dir}}/m; test finish != {{bad}}"
    undo "echo undo-finish >> {{dir}}/m"
  }
}
"#;

fn env() -> CliEnv {
    CliEnv::new(&[("r.runbook", NESTED)], None)
}

fn marks(e: &CliEnv) -> Vec<String> {
    e.lines_of("m")
}

/// The `branch_taken` events of the run's journal: (item, taken).
fn decisions(e: &CliEnv, id: &str) -> Vec<(Option<String>, String)> {
    e.journal(id)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "branch_taken")
        .map(|v| {
            (
                v["item"].as_str().map(str::to_owned),
                v["taken"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn run(e: &CliEnv, extra: &[&str]) -> std::process::Output {
    e.run_here("r.runbook", extra)
        .output()
        .expect("runbook runs")
}

#[test]
fn only_the_arms_taken_run_each_item_deciding_its_own() {
    let e = env();
    let o = run(&e, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        marks(&e),
        [
            "start",
            "defrag etcd-0",
            "move etcd-1",
            "deep etcd-1",
            "defrag etcd-1",
            "defrag etcd-2",
            "warm a",
            "warm b",
            "finish",
        ]
    );
    let id = e.first_run();
    let d = decisions(&e, &id);
    let of = |item: Option<&str>, taken: &str| {
        d.iter()
            .filter(|(i, t)| i.as_deref() == item && t == taken)
            .count()
    };
    // Each item decided its own copy of the `if`, and said which item.
    assert_eq!(of(Some("etcd-0"), "none"), 1, "{d:?}");
    assert_eq!(of(Some("etcd-1"), "if member == \"etcd-1\""), 1, "{d:?}");
    assert_eq!(of(Some("etcd-2"), "none"), 1, "{d:?}");
    // The `if` nested in the arm: decided for etcd-1 only (the others'
    // arm was not taken).
    assert_eq!(of(Some("etcd-1"), "if deep"), 1, "{d:?}");
    assert_eq!(of(None, "if deep"), 1, "{d:?}");
    assert_eq!(d.len(), 5, "{d:?}");
    let out = text(&o);
    assert!(out.contains("branch for item `etcd-1`"), "{out}");
    assert!(out.contains("shallow_check[etcd-1]"), "{out}");
}

#[test]
fn the_else_arms_of_nested_blocks_run_when_their_conditions_fail() {
    let e = env();
    let o = run(&e, &["-i", "deep=false"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        marks(&e),
        [
            "start",
            "defrag etcd-0",
            "move etcd-1",
            "shallow etcd-1",
            "defrag etcd-1",
            "defrag etcd-2",
            "flat",
            "finish",
        ]
    );
}

#[test]
fn the_rollback_undoes_what_ran_latest_first_across_the_nesting() {
    let e = env();
    let o = run(&e, &["-i", "bad=finish"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let m = marks(&e);
    let undo = undos(&m);
    // `finish` failed (it changed nothing); the `for` in the arm taken,
    // the items' bodies with etcd-1's arm, and `start` are undone; no
    // arm not taken (`flat`) is.
    assert_eq!(
        undo,
        [
            "undo-warm b",
            "undo-warm a",
            "undo-defrag etcd-2",
            "undo-defrag etcd-1",
            "undo-move etcd-1",
            "undo-defrag etcd-0",
            "undo-start",
        ],
        "{}",
        text(&o)
    );
}

#[test]
fn a_failure_inside_a_nested_arm_rolls_back_the_arm_and_what_came_before() {
    let e = env();
    let o = run(&e, &["-i", "bad=etcd-1"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let m = marks(&e);
    assert!(!m.iter().any(|l| l == "defrag etcd-2"), "{m:?}");
    let undo = undos(&m);
    assert_eq!(
        undo,
        ["undo-move etcd-1", "undo-defrag etcd-0", "undo-start"],
        "{}",
        text(&o)
    );
}

#[test]
fn resume_after_kill_inside_a_nested_arm_keeps_the_decisions() {
    let e = env();
    // Killed while `move_leader[etcd-1]` (in etcd-1's arm) sleeps.
    let id = e.run_killed_in(
        "r.runbook",
        &["-i", "pause=3"],
        "move_leader[etcd-1]",
        "move etcd-1",
    );
    let before = marks(&e);
    assert_eq!(before, ["start", "defrag etcd-0", "move etcd-1"]);
    let o = e.out(&[
        "resume",
        &id,
        "--runs-dir",
        "runs",
        "--assume-done",
        "move_leader[etcd-1]",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = marks(&e);
    assert_eq!(
        &after[before.len()..],
        [
            "deep etcd-1",
            "defrag etcd-1",
            "defrag etcd-2",
            "warm a",
            "warm b",
            "finish"
        ],
        "{}",
        text(&o)
    );
    // etcd-1's decision was journalled before the kill and not taken again.
    let d = decisions(&e, &id);
    let etcd1 = d
        .iter()
        .filter(|(i, t)| i.as_deref() == Some("etcd-1") && t.starts_with("if member"))
        .count();
    assert_eq!(etcd1, 1, "{d:?}");
}

#[test]
fn the_graph_nests_branches_per_item_and_plan_and_graph_show_them() {
    let g = runbook::compile::compile(&runbook::source::Source::new("r", NESTED))
        .expect("compiles")
        .graph;
    // Three per-item copies of the outer `if`, three of the inner (each
    // in its item's arm), and the top-level `if`.
    assert_eq!(g.branches.len(), 7);
    let node = |id: &str| g.node(id).unwrap_or_else(|| panic!("{id}"));
    let deep = node("deep_check[etcd-1]").branch.expect("in an arm");
    let chain = g.arm_chain(deep);
    assert_eq!(chain.len(), 2);
    let outer = &g.branches[chain[0].branch];
    assert_eq!(outer.item.map(|i| i.index), Some(1));
    assert_eq!(chain[0].arm, 0);
    // The outer arm holds the nested block's steps too.
    assert_eq!(
        outer.arms[0].nodes,
        [
            "move_leader[etcd-1]",
            "deep_check[etcd-1]",
            "shallow_check[etcd-1]"
        ]
    );
    // The item's next step waits for both inner arms, and the next item
    // for this one.
    assert_eq!(
        node("defrag[etcd-1]").deps,
        ["deep_check[etcd-1]", "shallow_check[etcd-1]"]
    );
    assert_eq!(
        node("move_leader[etcd-2]").deps,
        ["start", "defrag[etcd-1]"]
    );
    // The `for` in the top-level arm: its nodes are in that arm.
    let warm = node("warm[a]");
    assert!(warm.item.is_some());
    assert_eq!(g.arm_chain(warm.branch.expect("in an arm")).len(), 1);
    assert_eq!(node("finish").deps, ["warm[a]", "warm[b]", "flat"]);

    let e = env();
    let dir = format!("dir={}", e.dir.display());
    let o = e.out(&["plan", "r.runbook", "-i", &dir]);
    let plan = text(&o);
    assert!(
        plan.contains("   if member == \"etcd-1\":\n   4a. move_leader[etcd-1]"),
        "{plan}"
    );
    assert!(
        plan.contains("     if deep:\n   4b. deep_check[etcd-1]"),
        "{plan}"
    );
    let o = e.out(&["graph", "r.runbook"]);
    let dot = text(&o);
    assert!(
        dot.contains("\"move_leader[etcd-1]\" -> \"branch_4\""),
        "{dot}"
    );
    assert!(
        dot.contains("\"branch_4\" -> \"deep_check[etcd-1]\" [label=\"if deep\"]"),
        "{dot}"
    );
}

/// An `if` first in an arm: the arm leads to its decision, not past it.
#[test]
fn graph_draws_an_arm_into_the_decision_nested_first_in_it() {
    let e = CliEnv::new(&[("n.runbook", FIRST_IN_ARM)], None);
    let dot = text(&e.out(&["graph", "n.runbook"]));
    assert!(
        dot.contains("\"branch_1\" -> \"branch_2\" [label=\"if go\"]"),
        "{dot}"
    );
    assert!(!dot.contains("\"first\" -> \"branch_2\""), "{dot}");
    assert!(
        dot.contains("\"branch_2\" -> \"deep\" [label=\"if mode != \\\"b\\\"\"]"),
        "{dot}"
    );
    let mermaid = text(&e.out(&["graph", "n.runbook", "--format", "mermaid"]));
    assert!(
        mermaid.contains("branch_1 -->|\"if go\"| branch_2"),
        "{mermaid}"
    );
}

const FIRST_IN_ARM: &str = r#"
runbook n {
  input go: bool = true
  input mode: string = "a"
  step first { run "echo first" readonly }
  if go {
    if mode != "b" {
      step deep { run "echo deep" readonly }
    } else {
      step never { run "echo never" readonly }
    }
    step after_inner { run "echo after" readonly }
  } else {
    step outer_b { run "echo outer_b" readonly }
  }
  step last { run "echo last" readonly }
}
"#;

/// Drills rehearse the nested arms: a step of an arm is targeted per
/// item, and coverage counts every arm of a nested `if` once (in a `for`
/// body, taken if any item took it).
#[test]
fn drills_cover_nested_arms_and_per_item_arms_count_once() {
    let drill = |name: &str, deep: &str, expect: &str| {
        format!("runbook: r.runbook\nname: {name}\ninputs:\n  dir: /tmp\n  deep: {deep}\nexpect:\n{expect}")
    };
    let deep = drill(
        "deep",
        "true",
        "  outcome: succeeded\n  succeeded: [\"move_leader[etcd-1]\", \"deep_check[etcd-1]\", \"warm[b]\"]\n  skipped: [\"move_leader[etcd-0]\", \"shallow_check[etcd-1]\", flat]\n",
    );
    let missing = |files: &[(&str, &str)]| {
        let e = CliEnv::new(files, None);
        let out = text(&e.out(&["test", ".", "--coverage"]));
        let branches: Vec<String> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("never rehearsed: branch "))
            .map(str::to_owned)
            .collect();
        (out, branches)
    };
    let (out, branches) = missing(&[("r.runbook", NESTED), ("r.deep.drill.yaml", &deep)]);
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    // Branch 1 (the `if` of the body) took its arm for etcd-1 and none
    // for the others: covered. The nested `if deep` (2) and the top-level
    // one (3) never took `else`.
    assert_eq!(branches, ["2 taking `else`", "3 taking `else`"], "{out}");
    let shallow = drill(
        "shallow",
        "false",
        "  outcome: rolled_back\n  succeeded: [\"shallow_check[etcd-1]\", flat]\n  failed: [finish]\n  rollback: [flat, \"defrag[etcd-2]\", \"defrag[etcd-1]\", \"move_leader[etcd-1]\", \"defrag[etcd-0]\", start]\nactions:\n  finish: {result: fail}\n",
    );
    let (out, branches) = missing(&[
        ("r.runbook", NESTED),
        ("r.deep.drill.yaml", &deep),
        ("r.shallow.drill.yaml", &shallow),
    ]);
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    assert!(branches.is_empty(), "{out}");
}

const LADDER_IN_ARM: &str = r#"
runbook l {
  input dir: string
  input urgent: bool = true
  input bad: string = "none"
  step first {
    run  "echo first >> {{dir}}/m"
    undo "echo undo-first >> {{dir}}/m"
  }
  if urgent {
    step prep {
      run  "echo prep >> {{dir}}/m"
      undo "echo undo-prep >> {{dir}}/m"
    }
    try {
      step a1 {
        run  "echo a1 >> {{dir}}/m"
        undo "echo undo-a1 >> {{dir}}/m"
      }
      step a2 {
        run  "echo a2 >> {{dir}}/m; false"
        undo "echo undo-a2 >> {{dir}}/m"
      }
    } else {
      step b1 {
        run  "echo b1 >> {{dir}}/m"
        undo "echo undo-b1 >> {{dir}}/m"
      }
    }
  } else {
    step calm {
      run  "echo calm >> {{dir}}/m"
      undo "echo undo-calm >> {{dir}}/m"
    }
  }
  step last {
    run  "echo last >> {{dir}}/m; test last != {{bad}}"
    undo "echo undo-last >> {{dir}}/m"
  }
}
"#;

/// A fallback ladder in an `if` arm: in the arm taken it falls back as at
/// the top level (the failed attempt undone before the next), and the
/// rollback undoes the attempt that succeeded and the arm; in an arm not
/// taken its steps are skipped as the arm's, not as attempts after one
/// that succeeded.
#[test]
fn a_ladder_in_an_arm_falls_back_in_the_arm_taken_and_is_skipped_otherwise() {
    let e = CliEnv::new(&[("l.runbook", LADDER_IN_ARM)], None);
    let o = e
        .run_here("l.runbook", &["-i", "bad=last"])
        .output()
        .expect("runbook runs");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        marks(&e),
        [
            "first",
            "prep",
            "a1",
            "a2",
            "undo-a1",
            "b1",
            "last",
            "undo-b1",
            "undo-prep",
            "undo-first"
        ],
        "{}",
        text(&o)
    );

    let e = CliEnv::new(&[("l.runbook", LADDER_IN_ARM)], None);
    let o = e
        .run_here("l.runbook", &["-i", "urgent=false"])
        .output()
        .expect("runbook runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(marks(&e), ["first", "calm", "last"]);
    let out = text(&o);
    for n in ["a1", "a2", "b1"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("⤼ {n} skipped: the branch took `else`"))),
            "{n}:\n{out}"
        );
    }
}

/// An approval in an arm protects the irreversible steps after it in the
/// blocks nested in that arm, not those of the other arms.
#[test]
fn an_approval_in_an_arm_covers_the_blocks_nested_after_it() {
    let text = r#"
runbook r {
  input go: bool = true
  input hard: bool = true
  if go {
    step ask { approve "Wipe the replica?" }
    if hard {
      step wipe { run "wipe replica" irreversible }
    }
  } else {
    if hard {
      step wipe_other { run "wipe other" irreversible }
    }
  }
}
"#;
    let report = runbook::compile::check(&runbook::source::Source::new("r", text));
    let warned: Vec<&str> = report
        .diags
        .iter()
        .filter(|d| d.code == "runbook::irreversible_without_approve")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        warned,
        ["step `wipe_other` is irreversible and no approval comes before it"],
        "{}",
        report.render(false)
    );
}

fn codes(text: &str) -> Vec<String> {
    runbook::compile::check(&runbook::source::Source::new("r", text))
        .diags
        .iter()
        .filter(|d| d.level == runbook::diagnostics::Level::Error)
        .map(|d| d.code.to_string())
        .collect()
}

/// Names are unique across the nesting, and a capture set in a nested arm
/// follows the arm and `for` body rules: read below it in the same item's
/// body, never after the `for`.
#[test]
fn names_and_captures_follow_the_rules_across_the_nesting() {
    let twice = r#"
runbook r {
  input go: bool = true
  step probe { run "probe" readonly }
  if go {
    for host in ["a", "b"] {
      if host == "a" {
        step probe { run "probe {{host}}" readonly }
      }
    }
  }
}
"#;
    assert_eq!(codes(twice), ["runbook::duplicate_name"]);
    let body = |after: &str| {
        format!(
            r#"
runbook r {{
  for host in ["a", "b"] {{
    if host == "a" {{
      step look {{ run "look {{{{host}}}}" readonly capture text as seen }}
    }}
    step use {{ run "use {{{{seen}}}}" readonly }}
  }}
  {after}
}}
"#
        )
    };
    assert_eq!(codes(&body("")), Vec::<String>::new());
    assert_eq!(
        codes(&body(r#"step later { run "use {{seen}}" readonly }"#)),
        ["runbook::capture_in_for_body"]
    );
    let before = r#"
runbook r {
  input go: bool = true
  if go {
    step use { run "use {{seen}}" readonly }
    if go {
      step look { run "look" readonly capture text as seen }
    }
  }
}
"#;
    assert_eq!(codes(before), ["runbook::capture_not_set"]);
}
