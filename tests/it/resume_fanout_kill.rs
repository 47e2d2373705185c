//! `runbook resume` after the real binary is SIGKILLed inside a `for`
//! fan-out, or inside its undo, at seeded random points: resume works item
//! by item from the journal. Each item's action appends `do ITEM` to a
//! marker file and its undo `undo ITEM`; from those lines the tests check
//! that no action and no undo ran twice, that an undo ran only for an item
//! that was applied, that every applied item is undone when the run says
//! "rolled back", and that what the run reports (exit code, `runbook runs`)
//! is true. Items in doubt are answered as whoever resumes would after
//! checking: from the marker file (taken as done if its line is there).
//!
//! The killed process' shells run in their own process groups and finish
//! after the kill: the tests wait for them (`settle`) before reading the
//! markers, as an operator must before answering.

use crate::support;

use runbook::durable::journal::read_journal;
use runbook::durable::replay::replay;
use runbook::events::Phase;
use std::collections::BTreeMap;
use std::process::{Child, Output, Stdio};
use std::time::Duration;
use support::{text, CliEnv};

const ITEMS: [&str; 4] = ["a", "b", "c", "d"];

/// Four items, two at a time; each action and undo sleeps around its
/// marker line so that a kill often lands while one is running. `VERIFY`
/// is replaced by a `verify` (or nothing).
const RUNBOOK: &str = r#"
runbook fan {
  input dir: string
  input fail: bool = false
  check all_applied {
    shell "for i in a b c d; do grep -qx \"do $i\" {{dir}}/m || exit 1; done"
    expect exit == 0
  }
  step items {
    for it in ["a", "b", "c", "d"] parallel 2 {
      run "sleep 0.01; echo \"do {{it}}\" >> {{dir}}/m; sleep 0.02"
    }
    VERIFY
    undo for it in ["a", "b", "c", "d"] parallel 2 {
      run "sleep 0.01; echo \"undo {{it}}\" >> {{dir}}/m; sleep 0.02"
    }
  }
  step boom {
    when fail
    run "exit 1" readonly
  }
}
"#;

const VERIFY: &str = "verify all_applied within 300ms every 100ms";

/// How the items in doubt are answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// `--assume-done items[X]` / `--assume-failed items[X]`, one per item.
    PerItem,
    /// `--assume-done items` or `--assume-failed items` when every item in
    /// doubt has the same answer (else per item).
    Whole,
    /// No answer: the step's `verify` decides (the runbook has one).
    Verify,
}

/// A small seeded generator (xorshift64*): the kill points are random but
/// the same on every run of the test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

struct Case {
    env: CliEnv,
    label: String,
}

impl Case {
    fn new(label: String, verify: bool) -> Case {
        let rb = RUNBOOK.replace("VERIFY", if verify { VERIFY } else { "" });
        Case {
            env: CliEnv::new(&[("f.runbook", &rb)], None),
            label,
        }
    }

    fn start(&self, fail: bool) -> Child {
        let extra: &[&str] = if fail { &["-i", "fail=true"] } else { &[] };
        self.env
            .run_here("f.runbook", extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runbook starts")
    }

    fn id(&self) -> String {
        self.env.first_run()
    }

    /// The marker lines: how many times each `do X` / `undo X` ran.
    fn markers(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        let text = std::fs::read_to_string(self.env.dir.join("m")).unwrap_or_default();
        for line in text.lines() {
            *m.entry(line.to_owned()).or_insert(0) += 1;
        }
        m
    }

    fn has(&self, line: &str) -> bool {
        self.markers().contains_key(line)
    }

    /// Items in doubt in `phase`, from the journal as resume folds it.
    fn in_doubt(&self, phase: Phase) -> Vec<String> {
        let read = read_journal(&self.env.journal_path(&self.id())).expect("journal reads");
        replay(&read.events)
            .in_doubt
            .into_iter()
            .filter(|d| d.phase == phase && d.node == "items")
            .filter_map(|d| d.item)
            .collect()
    }

    /// The answers an operator who checked gives for the items in doubt
    /// (of the fan-out, or of its undo if the kill landed there: a `verify`
    /// decides only the former).
    fn answers(&self, how: Answer) -> Vec<String> {
        let mut truth: Vec<(String, bool)> = Vec::new();
        for (phase, verb) in [(Phase::Action, "do"), (Phase::Undo, "undo")] {
            if phase == Phase::Action && how == Answer::Verify {
                continue;
            }
            for i in self.in_doubt(phase) {
                let applied = self.has(&format!("{verb} {i}"));
                truth.push((i, applied));
            }
        }
        let flag = |done: bool| {
            if done {
                "--assume-done"
            } else {
                "--assume-failed"
            }
        };
        let all_same = truth.windows(2).all(|w| w[0].1 == w[1].1);
        match (how, truth.first()) {
            (_, None) => Vec::new(),
            (Answer::Whole, Some((_, done))) if all_same => {
                vec![flag(*done).to_owned(), "items".to_owned()]
            }
            _ => truth
                .iter()
                .flat_map(|(i, done)| [flag(*done).to_owned(), format!("items[{i}]")])
                .collect(),
        }
    }

    fn resume(&self, answers: &[String]) -> Output {
        let id = self.id();
        let mut args = vec!["resume", id.as_str(), "--runs-dir", "runs"];
        args.extend(answers.iter().map(String::as_str));
        self.env.out(&args)
    }

    /// The STATE column of `runbook runs`.
    fn state(&self) -> String {
        let out = self.env.out(&["runs", "--runs-dir", "runs"]);
        let id = self.id();
        text(&out)
            .lines()
            .find(|l| l.starts_with(&id))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_default()
            .to_owned()
    }

    /// Checks the marker file against what the run reports.
    fn check(&self, out: &Output, in_doubt_left: bool) {
        let m = self.markers();
        let ctx = format!("{}: markers {m:?}\n{}", self.label, text(out));
        for (line, n) in &m {
            assert_eq!(*n, 1, "{ctx}\n`{line}` ran {n} times");
        }
        let done: Vec<&str> = ITEMS
            .into_iter()
            .filter(|i| m.contains_key(&format!("do {i}")))
            .collect();
        let undone: Vec<&str> = ITEMS
            .into_iter()
            .filter(|i| m.contains_key(&format!("undo {i}")))
            .collect();
        for i in &undone {
            assert!(done.contains(i), "{ctx}\n`{i}` undone but never applied");
        }
        let state = self.state();
        match state.as_str() {
            "succeeded" => {
                assert_eq!(done, ITEMS, "{ctx}\nsucceeded with items not applied");
                assert!(undone.is_empty(), "{ctx}\nsucceeded, yet undone");
            }
            "rolled_back" => assert_eq!(
                undone, done,
                "{ctx}\nrolled back with applied items left in place"
            ),
            "nothing_changed" => assert!(
                done.is_empty(),
                "{ctx}\nnothing changed, yet items were applied"
            ),
            "rollback_incomplete" => assert!(
                in_doubt_left,
                "{ctx}\nrollback incomplete with nothing left in doubt"
            ),
            other => panic!("{ctx}\nthe run ended `{other}`"),
        }
        let expected = match state.as_str() {
            "succeeded" => 0,
            "rolled_back" => 4,
            "nothing_changed" => 7,
            _ => 5,
        };
        // A run that had finished before the kill: resume says so.
        let code = out.status.code();
        assert!(
            code == Some(expected) || (code == Some(3) && text(out).contains("already finished")),
            "{ctx}\nexit {code:?} for a run that is {state}"
        );
    }
}

fn kill9(mut child: Child) {
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
}

/// Long enough for the killed run's shells (30 ms each) to finish.
fn settle() {
    std::thread::sleep(Duration::from_millis(120));
}

/// Runs `cases` (seed, case) in two threads: each case is a run, a kill
/// and a resume of the real binary.
/// Returns how many cases had items in doubt when resumed.
fn in_parallel(seeds: std::ops::Range<u64>, case: fn(u64) -> bool) -> usize {
    let seeds: Vec<u64> = seeds.collect();
    let (left, right) = seeds.split_at(seeds.len() / 2);
    std::thread::scope(|s| {
        let halves: Vec<_> = [left, right]
            .into_iter()
            .map(|half| s.spawn(move || half.iter().filter(|&&seed| case(seed)).count()))
            .collect();
        halves
            .into_iter()
            .map(|h| h.join().expect("a case failed"))
            .sum()
    })
}

/// Killed somewhere in the fan-out (from its first item on), then resumed
/// with each kind of answer; with `fail`, a later step fails and the whole
/// run rolls back.
fn killed_in_the_fan_out(seed: u64) -> bool {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let how = [Answer::PerItem, Answer::Whole, Answer::Verify][(seed % 3) as usize];
    let fail = seed % 2 == 1;
    let delay = rng.below(120);
    let case = Case::new(
        format!("seed {seed}: kill {delay} ms into the fan-out, {how:?}, fail={fail}"),
        how == Answer::Verify,
    );
    let child = case.start(fail);
    let id = case.id();
    case.env
        .wait_for(&id, &["action_started", "\"item\":\"a\""]);
    std::thread::sleep(Duration::from_millis(delay));
    kill9(child);
    settle();
    let answers = case.answers(how);
    let doubt = !case.in_doubt(Phase::Action).is_empty();
    // With a verify, items it could not vouch for stay in doubt.
    let left = how == Answer::Verify && doubt;
    let out = case.resume(&answers);
    case.check(&out, left);
    doubt || !answers.is_empty()
}

/// Killed somewhere in the undo of the fan-out (from the rollback's start
/// on), then resumed with the answers for its undo items in doubt.
fn killed_in_the_undo(seed: u64) -> bool {
    let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let how = [Answer::PerItem, Answer::Whole][(seed % 2) as usize];
    let delay = rng.below(100);
    let case = Case::new(
        format!("seed {seed}: kill {delay} ms into the undo, {how:?}"),
        false,
    );
    let child = case.start(true);
    let id = case.id();
    case.env.wait_for(&id, &["rollback_started"]);
    std::thread::sleep(Duration::from_millis(delay));
    kill9(child);
    settle();
    let answers = case.answers(how);
    let out = case.resume(&answers);
    case.check(&out, false);
    assert_eq!(
        case.markers().len(),
        8,
        "{}: every item applied once and undone once\n{}",
        case.label,
        text(&out)
    );
    !answers.is_empty()
}

#[test]
fn killed_at_random_points_of_a_fan_out_resumes_item_by_item() {
    let in_doubt = in_parallel(0..30, killed_in_the_fan_out);
    // Most kills land while an item runs (about 25 of 30): the answers
    // and the verify are what is tested.
    assert!(
        in_doubt >= 10,
        "only {in_doubt} of 30 kills left an item in doubt"
    );
}

#[test]
fn killed_at_random_points_of_a_fan_out_undo_undoes_each_item_once() {
    let in_doubt = in_parallel(0..30, killed_in_the_undo);
    assert!(
        in_doubt >= 10,
        "only {in_doubt} of 30 kills left an undo item in doubt"
    );
}

// Focused regressions: the kill lands exactly where each reproduced bug
// was, held there by marker files. An item (or undo item) X with a file
// `hold_VERB_X` waits for `go` (which the test creates after the kill);
// with `applied_VERB_X` too, it writes its marker line before waiting.

const HELD: &str = r#"
runbook held {
  input dir: string
  input fail: bool = false
  step items {
    for it in ["a", "b", "c", "d"] parallel 2 {
      run "sh {{dir}}/item.sh do {{it}} {{dir}}"
    }
    undo for it in ["a", "b", "c", "d"] {
      run "sh {{dir}}/item.sh undo {{it}} {{dir}}"
    }
  }
  step boom {
    when fail
    run "exit 1" readonly
  }
}
"#;

const ITEM_SH: &str = r#"v=$1; it=$2; d=$3
if [ -f "$d/hold_${v}_$it" ]; then
  [ -f "$d/applied_${v}_$it" ] && echo "$v $it" >> "$d/m"
  while [ ! -f "$d/go" ]; do sleep 0.01; done
  exit 0
fi
echo "$v $it" >> "$d/m"
"#;

/// Runs `held` with `files` created first, waits until the journal has
/// each of `started` (`VERB ITEM`: its action_started), kills it and lets
/// the held shells go.
fn held_run(files: &[&str], fail: bool, started: &[(&str, &str)]) -> Case {
    let case = Case {
        env: CliEnv::new(&[("f.runbook", HELD), ("item.sh", ITEM_SH)], None),
        label: format!("held {files:?}"),
    };
    for f in files {
        std::fs::write(case.env.dir.join(f), "").expect("hold file");
    }
    let child = case.start(fail);
    let id = case.id();
    for (verb, item) in started {
        let phase = if *verb == "undo" { "undo" } else { "action" };
        case.env.wait_for(
            &id,
            &[
                "action_started",
                &format!("\"phase\":\"{phase}\""),
                &format!("\"item\":\"{item}\""),
            ],
        );
    }
    // The held items applied before holding have their line.
    for f in files.iter().filter_map(|f| f.strip_prefix("applied_")) {
        let line = f.replacen('_', " ", 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !case.has(&line) {
            assert!(std::time::Instant::now() < deadline, "`{line}` never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    kill9(child);
    std::fs::write(case.env.dir.join("go"), "").expect("go");
    settle();
    // What runs on resume runs as usual.
    for f in files {
        std::fs::remove_file(case.env.dir.join(f)).expect("hold file removed");
    }
    case
}

fn resume_with(case: &Case, args: &[&str]) -> Output {
    let answers: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    case.resume(&answers)
}

/// Issue 11 item 6, first bug: `c` applied and `d` not, both in doubt;
/// `--assume-failed items` left `c` in place and said "rolled back
/// cleanly". Each item gets its own answer now, and what was applied is
/// undone.
#[test]
fn items_in_doubt_are_answered_one_by_one_and_what_applied_is_undone() {
    let case = held_run(
        &["hold_do_c", "applied_do_c", "hold_do_d"],
        false,
        &[("do", "c"), ("do", "d")],
    );
    let asked = resume_with(&case, &[]);
    assert_eq!(asked.status.code(), Some(3), "{}", text(&asked));
    let t = text(&asked);
    assert!(t.contains("`c`, `d` in doubt"), "{t}");
    assert!(t.contains("--assume-done 'items[c]'"), "{t}");

    let wrong = resume_with(&case, &["--assume-done", "items[a]"]);
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("`items[a]` is not in doubt in this run (in doubt in this step: `items[c]`, `items[d]`)"),
        "{}",
        text(&wrong)
    );

    let out = resume_with(
        &case,
        &["--assume-done", "items[c]", "--assume-failed", "items[d]"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let m = case.markers();
    for line in ["do a", "do b", "do c", "undo a", "undo b", "undo c"] {
        assert_eq!(m.get(line), Some(&1), "{line}: {m:?}\n{}", text(&out));
    }
    assert!(
        !m.contains_key("do d") && !m.contains_key("undo d"),
        "{m:?}"
    );
    assert_eq!(case.state(), "rolled_back");
    case.check(&out, false);
}

/// Second bug: `d` never started; `--assume-done items` took it as done
/// and reported success. It runs on resume now.
#[test]
fn an_item_never_started_runs_on_resume_whatever_the_answer() {
    let case = held_run(
        &["hold_do_b", "applied_do_b", "hold_do_c", "applied_do_c"],
        false,
        &[("do", "b"), ("do", "c")],
    );
    assert!(!case.has("do d"));
    let out = resume_with(&case, &["--assume-done", "items"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = case.markers();
    for i in ITEMS {
        assert_eq!(m.get(&format!("do {i}")), Some(&1), "{i}: {m:?}");
    }
    assert_eq!(case.state(), "succeeded");
    case.check(&out, false);
}

/// Third bug: killed during the fan-out's undo, resume reran the undo
/// items the journal records as done. Only `b` (in doubt, settled by the
/// answer) and the items after it are left.
#[test]
fn a_resumed_undo_runs_only_the_items_not_undone() {
    for (applied, answer) in [(true, "--assume-done"), (false, "--assume-failed")] {
        let mut files = vec!["hold_undo_b"];
        if applied {
            files.push("applied_undo_b");
        }
        let case = held_run(&files, true, &[("undo", "b")]);
        // Undone in reverse completion order (the items ran two at a
        // time): some were undone before `b`'s undo held, some not.
        let before = case.markers();
        let undone_before = before.keys().filter(|l| l.starts_with("undo ")).count();
        assert!(undone_before > usize::from(applied), "{before:?}");

        let asked = resume_with(&case, &[]);
        assert_eq!(asked.status.code(), Some(3), "{}", text(&asked));
        assert!(
            text(&asked).contains("the undo of fan-out step `items` was cut off with item(s) `b`"),
            "{}",
            text(&asked)
        );
        let out = resume_with(&case, &[answer, "items[b]"]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        let m = case.markers();
        for i in ITEMS {
            assert_eq!(m.get(&format!("do {i}")), Some(&1), "{i}: {m:?}");
            assert_eq!(
                m.get(&format!("undo {i}")),
                Some(&1),
                "{i}: {m:?}\n{}",
                text(&out)
            );
        }
        assert_eq!(case.state(), "rolled_back");
        case.check(&out, false);
    }
}
