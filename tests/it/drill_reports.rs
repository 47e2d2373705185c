//! What a reviewer reads when a drill fails, through the real binary.
//!
//! - `tests/drills/*.drill.yaml`: drills that must fail against the real
//!   runbooks in `runbooks/`. Files named `bad_*` are invalid scenarios
//!   (exit 3, a diagnostic at the YAML line); the others run and miss an
//!   expectation (exit 1). Each report (`runbook drill RUNBOOK --scenario
//!   FILE --quiet`, stdout then stderr, wall-clock times redacted) is an
//!   insta snapshot in `tests/it/snapshots/it__drill_reports__*.snap`.
//! - `runbook test runbooks/` passes, its JUnit XML has the right counts,
//!   and coverage is complete (with the one undo no drill can reach).
//!
//! Review workflow: `cargo insta test --review`, or run with
//! `INSTA_UPDATE=always` and read every changed `.snap` before committing.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_runbook");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary from the crate root, so paths in reports are relative.
fn runbook(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the runbook binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Wall-clock times differ from run to run; virtual ones do not.
fn redact(s: &str) -> String {
    let re = regex::Regex::new(r"\b[0-9]+(\.[0-9]+)? ms\b").expect("valid regex");
    re.replace_all(s, "[TIME]").into_owned()
}

fn report(o: &Output) -> String {
    redact(&format!(
        "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.code, o.stdout, o.stderr
    ))
}

/// The broken drills and bad scenarios, sorted, relative to the crate root.
fn broken_drills() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/drills"))
        .expect("tests/drills exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".drill.yaml"))
        .map(|p| p.strip_prefix(root()).map(Path::to_path_buf).unwrap_or(p))
        .collect();
    files.sort();
    files
}

/// The `runbook:` line of a scenario, as a path from the crate root (read
/// as text: some of these files are not valid YAML on purpose).
fn runbook_of(scenario: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join(scenario)).expect("readable scenario");
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("runbook:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{} names no runbook", scenario.display()));
    scenario.parent().expect("in a directory").join(rel)
}

#[test]
fn every_broken_drill_fails_with_a_clear_report() {
    let files = broken_drills();
    assert!(
        files.len() >= 16,
        "expected the broken drills, found {files:?}"
    );
    let mut problems = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rb = runbook_of(file);
        let o = runbook(&[
            "drill",
            &rb.to_string_lossy(),
            "--scenario",
            &file.to_string_lossy(),
            "--quiet",
        ]);
        let invalid = name.starts_with("bad_");
        let want = if invalid { 3 } else { 1 };
        if o.code != want {
            problems.push(format!("{name}: exit code {} (want {want})", o.code));
        }
        if invalid {
            // A diagnostic at a line of the scenario, nothing on stdout.
            if !o.stderr.contains(&format!("[{}:", file.display())) || !o.stdout.is_empty() {
                problems.push(format!("{name}: no located diagnostic:\n{}", report(&o)));
            }
        } else if !o.stdout.contains("  FAIL  ") || !o.stdout.contains("drill FAILED: ") {
            problems.push(format!("{name}: no failing expectation:\n{}", report(&o)));
        }
        insta::with_settings!({ snapshot_suffix => name.trim_end_matches(".drill.yaml"), prepend_module_to_snapshot => true }, {
            insta::assert_snapshot!("report", report(&o));
        });
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn runbook_test_over_the_broken_drills_fails_them_all() {
    let files = broken_drills();
    let o = runbook(&["test", "tests/drills", "--jobs", "2"]);
    assert_eq!(o.code, 1, "{}", report(&o));
    assert!(
        o.stdout.contains(&format!(
            "0 passed, {} failed ({} drills in ",
            files.len(),
            files.len()
        )),
        "{}",
        o.stdout
    );
    let errors = o.stdout.lines().filter(|l| l.starts_with("ERROR ")).count();
    let fails = o.stdout.lines().filter(|l| l.starts_with("FAIL  ")).count();
    let bad = files
        .iter()
        .filter(|f| f.to_string_lossy().contains("/bad_"))
        .count();
    assert_eq!((errors, fails), (bad, files.len() - bad), "{}", o.stdout);
    insta::assert_snapshot!("runbook_test_tests_drills", report(&o));
}

fn drills_under(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".drill.yaml"))
        .collect();
    v.sort();
    v
}

/// `<tag attr="v">`: the value of `attr` in the first `tag` element.
fn attr(xml: &str, tag: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag} "))?;
    let end = start + xml[start..].find('>')?;
    let re = regex::Regex::new(&format!(r#"\b{name}="([^"]*)""#)).ok()?;
    re.captures(&xml[start..end]).map(|c| c[1].to_string())
}

/// Elements open and close in order, and text has no bare `<` or `&`.
fn assert_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or_else(|| panic!("no XML declaration: {xml}"));
    let tag = regex::Regex::new(r"<(/?)([A-Za-z]+)[^<>]*?(/?)>").expect("valid regex");
    let mut stack: Vec<String> = Vec::new();
    for c in tag.captures_iter(body) {
        let name = c[2].to_string();
        match (&c[1], &c[3]) {
            ("/", _) => assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "{xml}"),
            (_, "/") => {}
            _ => stack.push(name),
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    // Outside tags: no `<`, and every `&` starts an entity.
    let text = tag.replace_all(body, "");
    assert!(!text.contains('<'), "{text}");
    let entity = regex::Regex::new(r"&(amp|lt|gt|quot|apos);").expect("valid regex");
    assert!(!entity.replace_all(&text, "").contains('&'), "{text}");
}

#[test]
fn junit_counts_every_drill_of_the_examples() {
    let n = drills_under("runbooks").len();
    let o = runbook(&["test", "runbooks/", "--format", "junit"]);
    assert_eq!(o.code, 0, "{}", report(&o));
    let xml = &o.stdout;
    assert_well_formed(xml);
    for tag in ["testsuites", "testsuite"] {
        assert_eq!(attr(xml, tag, "tests"), Some(n.to_string()), "{xml}");
        assert_eq!(attr(xml, tag, "failures"), Some("0".into()), "{xml}");
    }
    assert_eq!(xml.matches("<testcase ").count(), n, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    // One suite (class) per runbook, every runbook there.
    for rb in [
        "api_config_rollback",
        "k8s_deployment_rollback",
        "db_primary_failover",
        "feature_flag_kill_switch",
        "load_shedding",
        "cert_expiry",
    ] {
        assert!(
            xml.contains(&format!("classname=\"{rb}\"")),
            "no drill of {rb} in {xml}"
        );
    }
    // The human lines go to stderr.
    assert!(
        o.stderr.contains(&format!("{n} passed, 0 failed")),
        "{}",
        o.stderr
    );
}

#[test]
fn junit_reports_each_broken_drill_as_a_failure() {
    let n = broken_drills().len();
    let o = runbook(&["test", "tests/drills", "--format", "junit"]);
    assert_eq!(o.code, 1, "{}", report(&o));
    let xml = &o.stdout;
    assert_well_formed(xml);
    assert_eq!(attr(xml, "testsuite", "tests"), Some(n.to_string()));
    assert_eq!(attr(xml, "testsuite", "failures"), Some(n.to_string()));
    assert_eq!(xml.matches("<failure message=").count(), n, "{xml}");
    // The failure text carries the observed value beside the expected one.
    assert!(
        xml.contains("expected succeeded") && xml.contains("observed rolled_back"),
        "{xml}"
    );
    assert!(xml.contains("unknown check `errors_lw`"), "{xml}");
}

/// `coverage of NAME: C/T (P%)` lines and the `never rehearsed:` lines under
/// each.
fn coverage(stdout: &str) -> Vec<(String, usize, usize, Vec<String>)> {
    let head = regex::Regex::new(r"^coverage of (\S+): (\d+)/(\d+) \(\d+%\)$").expect("regex");
    let mut out: Vec<(String, usize, usize, Vec<String>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(c) = head.captures(line) {
            out.push((
                c[1].to_string(),
                c[2].parse().expect("number"),
                c[3].parse().expect("number"),
                Vec::new(),
            ));
        } else if let Some(what) = line.strip_prefix("  never rehearsed: ") {
            if let Some(last) = out.last_mut() {
                last.3.push(what.to_string());
            }
        }
    }
    out
}

#[test]
fn the_flagship_drills_cover_the_flagship_completely() {
    let files: Vec<String> = drills_under("runbooks")
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("api_config_rollback."))
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    let mut args = vec!["test", "--coverage", "--min-coverage", "100"];
    args.extend(files.iter().map(String::as_str));
    let o = runbook(&args);
    assert_eq!(o.code, 0, "{}", report(&o));
    let c = coverage(&o.stdout);
    assert_eq!(c.len(), 1, "{}", o.stdout);
    let (name, covered, total, missing) = &c[0];
    assert_eq!(name, "api_config_rollback");
    assert!(*total > 0 && covered == total, "{}", o.stdout);
    assert!(missing.is_empty(), "{}", o.stdout);
    assert!(o.stdout.contains("(100%)"), "{}", o.stdout);
}

#[test]
fn every_example_runbook_is_fully_rehearsed() {
    let o = runbook(&["test", "runbooks/", "--coverage"]);
    assert_eq!(o.code, 0, "{}", report(&o));
    let c = coverage(&o.stdout);
    let names: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "api_config_rollback",
            "cert_expiry",
            "content_update_ring_rollback",
            "db_primary_failover",
            "etcd_defrag_member_by_member",
            "feature_flag_kill_switch",
            "junos_commit_confirmed",
            "k8s_deployment_rollback",
            "load_shedding",
            "patch_instance_with_rollback",
            "pin_last_good_config",
            "pod_crash_looping",
            "pod_not_ready_ladder",
            "pv_filling_up",
        ],
        "{}",
        o.stdout
    );
    for (_, covered, total, missing) in &c {
        assert!(missing.is_empty() && covered == total, "{}", o.stdout);
    }
}
