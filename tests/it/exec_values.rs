//! Values in conditions (arithmetic, indexes, `length`/`sort`/`join`, `now`
//! and `run.started`) evaluated in real runs, and a list placeholder in a
//! shell command written as one quoted word per item for a real /bin/sh.

use crate::exec_support;

use exec_support::*;
use runbook::adapters::{real, Adapters};
use runbook::events::{EventKind, Mode, Outcome};
use runbook::exit;

fn real_shell(dir: &std::path::Path) -> Adapters {
    real::real(real::RealSettings {
        shell_cwd: Some(dir.to_path_buf()),
        ..Default::default()
    })
}

/// A live run of `text` on the virtual clock, its commands answered by `shell`.
async fn run_fake(text: &str, shell: &std::sync::Arc<FakeShell>) -> Ran {
    run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await
}

/// A live run of `text` with a real /bin/sh working in `dir`.
async fn run_real(text: &str, inputs: &[(&str, &str)], dir: &std::path::Path) -> Ran {
    run(compile(text), options(Mode::Live), inputs, real_shell(dir)).await
}

fn skipped(ran: &Ran) -> Vec<String> {
    ran.of("node_skipped")
        .iter()
        .filter_map(|e| e.node.as_deref().map(str::to_owned))
        .collect()
}

fn failure_reason(ran: &Ran) -> String {
    ran.of("node_failed")
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::NodeFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

const HOSTILE: &[&str] = &[
    "a b",
    "$(touch pwned)",
    "`touch pwned`",
    "c'd",
    "e\"f",
    "; touch pwned",
    "*",
    "--help\ntouch pwned",
    "",
];

#[tokio::test]
async fn a_list_in_a_shell_command_is_one_literal_word_per_item() {
    let text = r#"
runbook spread {
  input items: list<string>
  step write { run "printf '%s\\n' {{items}} > out.txt" readonly }
  step count { run "set -- {{items}}; echo $# > count.txt" readonly }
  step quoted { run "printf '%s' \"{{items}}\" > quoted.txt" readonly }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let list = serde_json::to_string(HOSTILE).unwrap();
    let ran = run_real(text, &[("items", &list)], dir.path()).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    let expected: String = HOSTILE.iter().map(|i| format!("{i}\n")).collect();
    assert_eq!(out, expected);
    let count = std::fs::read_to_string(dir.path().join("count.txt")).unwrap();
    assert_eq!(count.trim(), HOSTILE.len().to_string());
    // Inside quotes, the items stay one word, separated by spaces.
    let quoted = std::fs::read_to_string(dir.path().join("quoted.txt")).unwrap();
    assert_eq!(quoted, HOSTILE.join(" "));
    assert!(!dir.path().join("pwned").exists(), "an item ran a command");
}

#[tokio::test]
async fn an_empty_list_writes_no_word() {
    let text = r#"
runbook spread {
  input items: list<string> = []
  step count { run "set -- {{items}}; echo $# > count.txt" readonly }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let ran = run_real(text, &[], dir.path()).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    let count = std::fs::read_to_string(dir.path().join("count.txt")).unwrap();
    assert_eq!(count.trim(), "0");
}

const VALUES: &str = r#"
runbook values {
  input pods:      list<string> = ["web-2", "web-0", "web-1"]
  input restarts:  int = 4
  input budget:    duration = 10m
  step volume {
    run "echo '{\"blocks\": 1000, \"available\": 120, \"conditions\": [{\"type\": \"Resizing\"}, {\"type\": \"FileSystemResizePending\"}]}'" readonly
    capture json as fs
  }
  step low_space {
    when fs.available * 100 / fs.blocks < 15 and length(fs.conditions) == 2 and fs.conditions[-1].type == "FileSystemResizePending"
    run "echo low > low.txt" readonly
  }
  step plenty_of_space {
    when fs.available * 100 / fs.blocks >= 15
    run "echo plenty > plenty.txt" readonly
  }
  step lists {
    when sort(pods)[0] == "web-0" and pods[-1] == "web-1" and join(sort(pods), ",") == "web-0,web-1,web-2" and length(pods) - 1 == 2
    run "echo sorted > sorted.txt" readonly
  }
  step numbers {
    when restarts * 2 + 1 == 9 and restarts / 8 == 0.5 and budget / 2 == 5m and budget * 3 > 29m and budget / 5m == 2
    run "echo numbers > numbers.txt" readonly
  }
  step time {
    when now - run.started < budget and run.started + budget > now and now >= run.started
    run "echo time > time.txt" readonly
  }
}
"#;

#[tokio::test]
async fn conditions_compute_with_captures_inputs_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let ran = run_real(VALUES, &[], dir.path()).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    assert_eq!(skipped(&ran), ["plenty_of_space"]);
    for f in ["low.txt", "sorted.txt", "numbers.txt", "time.txt"] {
        assert!(dir.path().join(f).exists(), "{f} missing:\n{}", ran.console);
    }
    // The decision log shows what was read, `now` included.
    assert!(
        ran.console.contains("fs.conditions=") && ran.console.contains("now=\"1970-01-01T"),
        "{}",
        ran.console
    );
}

#[tokio::test(start_paused = true)]
async fn now_follows_the_virtual_clock() {
    let text = r#"
runbook late {
  input budget: duration = 10m
  step work { wait 15m }
  step in_time {
    when now - run.started < budget
    run "echo in time" readonly
  }
  step too_late {
    when now - run.started >= budget
    run "echo too late" readonly
  }
}
"#;
    let shell = FakeShell::failing_on_marker();
    let ran = run_fake(text, &shell).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    assert_eq!(shell.commands(), ["echo too late"]);
    assert_eq!(skipped(&ran), ["in_time"]);
}

#[tokio::test]
async fn a_value_the_compiler_could_not_know_fails_the_step_with_the_values() {
    let cases = [
        (
            "fs.items[5] == 1",
            "index 5 is out of range: the list has 2 items",
        ),
        ("fs.count / fs.zero > 1", "division by zero"),
        (
            "fs.name * 2 > 1",
            "cannot use `*` between string \"x\" and number 2",
        ),
        (
            "length(fs.count) > 1",
            "`length` needs a list, text or an object, got number 3",
        ),
    ];
    for (cond, message) in cases {
        let text = format!(
            r#"
runbook wrong {{
  step look {{
    run "echo '{{\"items\": [1, 2], \"count\": 3, \"zero\": 0, \"name\": \"x\"}}'" readonly
    capture json as fs
  }}
  step decide {{
    when {cond}
    run "echo decided" readonly
  }}
}}
"#
        );
        let dir = tempfile::tempdir().unwrap();
        let ran = run_real(&text, &[], dir.path()).await;
        assert_eq!(
            ran.summary.exit_code,
            exit::NOTHING_CHANGED,
            "{cond}: {}",
            ran.console
        );
        let reason = failure_reason(&ran);
        assert!(reason.contains(message), "{cond}: {reason}");
    }
}

#[tokio::test]
async fn loop_until_repeats_the_action_until_its_capture_says_done() {
    // Each round removes one line from todo.txt and prints how many are left.
    let text = r#"
runbook drain {
  step drain {
    run "sed -i 1d todo.txt && printf '{\"left\": %s}' $(wc -l < todo.txt)"
    undo none "the drained lines are gone"
    capture json as batch
    loop until batch.left == 0 every 10ms within 1m
  }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("todo.txt"), "a\nb\nc\nd\n").unwrap();
    let ran = run_real(text, &[], dir.path()).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    assert_eq!(ran.of("action_started").len(), 4, "{}", ran.console);
    let until: Vec<_> = ran
        .of("condition_evaluated")
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ConditionEvaluated {
                purpose, result, ..
            } if *purpose == runbook::events::ConditionPurpose::Until => *result,
            _ => None,
        })
        .collect();
    assert_eq!(until, [false, false, false, true]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("todo.txt")).unwrap(),
        ""
    );
}

#[tokio::test(start_paused = true)]
async fn loop_until_gives_up_when_the_window_closes() {
    let text = r#"
runbook stuck {
  step poll {
    run "echo '{\"state\": \"Resizing\"}'" readonly
    capture json as claim
    loop until claim.state == "Done" every 30s within 5m
  }
}
"#;
    let shell = FakeShell::new(|_, _| ShellBehaviour::Exit(0, r#"{"state": "Resizing"}"#.into()));
    let ran = run_fake(text, &shell).await;
    assert_eq!(
        ran.summary.exit_code,
        exit::NOTHING_CHANGED,
        "{}",
        ran.console
    );
    // Rounds at 0s, 30s, ... 5m: eleven, then no room for another.
    assert_eq!(shell.commands().len(), 11);
    let reason = failure_reason(&ran);
    assert!(
        reason.contains("did not hold within 5m (11 round(s))"),
        "{reason}"
    );
}

#[tokio::test]
async fn functions_in_templates_give_one_literal_value_to_a_real_shell() {
    let text = r#"
runbook in_texts {
  input items: list<string>
  channel terminal = console
  step pods {
    run "echo '{\"items\": [{\"name\": \"api-1\", \"phase\": \"Failed\"}, {\"name\": \"api-2\", \"phase\": \"Running\"}, {\"name\": \"api-3\", \"phase\": \"Failed\"}]}'" readonly
    capture json as pods
  }
  step joined { run "printf '%s' {{join (sort items) \"|\"}} > joined.txt; set -- {{join items \" \"}}; echo $# > words.txt" readonly }
  step failed {
    run "printf '%s %s' {{length (where pods.items \"phase\" \"Failed\")}} {{join (map (where pods.items \"phase\" \"Failed\") \"name\") \",\"}} > failed.txt" readonly
  }
  step tell { notify terminal "{{length items}} items; failed: {{join (map (where pods.items \"phase\" \"Failed\") \"name\") \", \"}}" }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let list = serde_json::to_string(HOSTILE).unwrap();
    let ran = run_real(text, &[("items", &list)], dir.path()).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    let mut sorted: Vec<&str> = HOSTILE.to_vec();
    sorted.sort();
    let joined = std::fs::read_to_string(dir.path().join("joined.txt")).unwrap();
    assert_eq!(joined, sorted.join("|"));
    // A joined list is one word, however many spaces its items hold.
    let words = std::fs::read_to_string(dir.path().join("words.txt")).unwrap();
    assert_eq!(words.trim(), "1");
    let failed = std::fs::read_to_string(dir.path().join("failed.txt")).unwrap();
    assert_eq!(failed, "2 api-1,api-3");
    assert!(
        ran.console
            .contains(&format!("{} items; failed: api-1, api-3", HOSTILE.len())),
        "{}",
        ran.console
    );
    assert!(!dir.path().join("pwned").exists(), "an item ran a command");
}
