//! Check rules in drills: a rule that an earlier one always beats is
//! reported as a located warning, and the drill still runs.

use crate::support::run_cli;

const RB: &str = "runbook b {\n  check ok {\n    shell \"true\"\n    expect exit == 0\n  }\n  step s {\n    run \"x\"\n    verify ok within 1m every 10s\n  }\n}\n";

#[test]
fn a_shadowed_rule_is_a_located_warning_and_the_drill_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.runbook"), RB).unwrap();
    std::fs::write(
        dir.path().join("b.s.drill.yaml"),
        "runbook: b.runbook\nchecks:\n  ok:\n    default: fail\n    rules:\n      - after: 1m\n        answer: fail\n      - after: 5m\n        answer: pass\n      - from_probe: 2\n        answer: pass\nexpect:\n  outcome: succeeded\n",
    )
    .unwrap();
    let out = run_cli(["test", "."], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("PASS  b/b.s"), "{stdout}");
    assert!(stderr.contains("drill::shadowed_rule"), "{stderr}");
    assert!(
        stderr.contains(
            "rule 2 of check `ok` never answers: rule 1 before it matches whenever it does"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("b.s.drill.yaml:6:7"), "{stderr}");
    // The third rule (by probe) is not shadowed.
    assert!(!stderr.contains("rule 3"), "{stderr}");

    // Stricter first: no warning.
    std::fs::write(
        dir.path().join("b.s.drill.yaml"),
        "runbook: b.runbook\nchecks:\n  ok:\n    default: fail\n    rules:\n      - after: 5m\n        answer: pass\n      - after: 1m\n        answer: fail\n",
    )
    .unwrap();
    let out = run_cli(["test", "."], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("shadowed"), "{stderr}");
}
