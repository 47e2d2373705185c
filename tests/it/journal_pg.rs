//! A run's journal in the PostgreSQL store (issue 13): the same lines as
//! `journal.jsonl`, written ahead (a change's start is committed before its
//! command runs), exported back byte for byte by `runbook export`, and a
//! dead (or restarted) database stops the run before the next change it
//! could not journal.

use crate::support::{postgres_bin, text, wait_exit, CliEnv, PgCluster};
use std::process::Stdio;
use std::time::Duration;

/// `b` asks the database, from inside its command, whether its own
/// `action_started` is already there (`b.sh`, written by the test).
const RUNBOOK: &str = r#"
runbook pg_journal {
  input dir: string
  step a {
    run "echo a >> {{dir}}/a.marker; sleep 2"
  }
  step b {
    run "sh {{dir}}/b.sh"
  }
}
"#;

/// A directory with the runbook, `b.sh` and (`url`: Some) a config naming
/// the store.
fn machine(pg: &PgCluster, url: Option<&str>) -> CliEnv {
    machine_with_lease(pg, url, "30s")
}

fn machine_with_lease(pg: &PgCluster, url: Option<&str>, lease: &str) -> CliEnv {
    let config = url
        .map(|u| format!("store:\n  url: {u}\n  lease: {lease}\n"))
        .unwrap_or_default();
    let m = CliEnv::new(&[("j.runbook", RUNBOOK), ("runbook.yaml", &config)], None);
    let script = format!(
        "'{}/psql' -X -q -t -A -h 127.0.0.1 -p {} -U runbook -d postgres -c \
         \"SELECT count(*) FROM runbook_journal WHERE line LIKE '%\\\"node\\\":\\\"b\\\",\\\"kind\\\":\\\"action_started\\\"%'\" \
         > '{}/seen'\necho b >> '{}/b.marker'\n",
        postgres_bin().display(),
        pg.port,
        m.dir.display(),
        m.dir.display()
    );
    std::fs::write(m.dir.join("b.sh"), script).expect("write b.sh");
    m
}

/// (kind, node) of every line of a journal.
fn shape(journal: &[u8]) -> Vec<(String, Option<String>)> {
    journal
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).expect("a journal line is JSON");
            (
                v["kind"].as_str().unwrap_or("").to_owned(),
                v["node"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn the_store_holds_the_same_journal_bytes_written_ahead_and_export_gives_them_back() {
    let pg = PgCluster::migrated();
    let url = pg.url();
    let team = machine(&pg, Some(&url));
    let out = team
        .run_here("j.runbook", &[])
        .output()
        .expect("runbook runs");
    assert!(out.status.success(), "{}", text(&out));
    let id = team.first_run();
    assert_eq!(
        std::fs::read_to_string(team.dir.join("seen"))
            .expect("b.sh ran")
            .trim(),
        "1",
        "b's action_started was committed in the store before its command ran"
    );

    let file = std::fs::read(team.journal_path(&id)).expect("journal.jsonl");
    let export = team.dir.join("export.jsonl");
    let exported = team.out(&["export", &id, "--out", export.to_str().unwrap_or("")]);
    assert!(exported.status.success(), "{}", text(&exported));
    assert!(
        text(&exported).contains("hash chain is intact"),
        "{}",
        text(&exported)
    );
    let rows = std::fs::read(&export).expect("the export");
    assert_eq!(
        String::from_utf8_lossy(&rows),
        String::from_utf8_lossy(&file),
        "the store's rows are the journal file's lines, byte for byte"
    );
    let check = team.out(&["verify-journal", "--journal", export.to_str().unwrap_or("")]);
    assert!(check.status.success(), "{}", text(&check));
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) = max(seq), ended IS NOT NULL FROM runbook_journal JOIN runbook_runs USING (run_id) WHERE run_id = '{id}' GROUP BY ended"
        )),
        "t|t",
        "one row per seq, and the run row says the run's process let go"
    );
    // The store is where runs are read from: any directory, no runs dir.
    let elsewhere = machine(&pg, None);
    let runs = elsewhere.out(&["runs", "--store", &url]);
    assert!(runs.status.success(), "{}", text(&runs));
    let listed = String::from_utf8_lossy(&runs.stdout).into_owned();
    let row = listed
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("runs --store lists {id}: {listed}"));
    assert!(
        row.contains("pg_journal") && row.contains("succeeded") && row.contains("run_finished"),
        "{listed}"
    );
    let verified = elsewhere.out(&["verify-journal", &id, "--store", &url]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("hash chain is intact")
            && text(&verified).contains("run.json matches the journal"),
        "{}",
        text(&verified)
    );
    let unknown = elsewhere.out(&["verify-journal", "nope", "--store", &url]);
    assert_eq!(unknown.status.code(), Some(3), "{}", text(&unknown));

    // An edited row breaks the chain of the export.
    pg.psql(&format!(
        "UPDATE runbook_journal SET line = replace(line, '\"a\"', '\"z\"') WHERE run_id = '{id}' AND seq = 3"
    ));
    let broken = team.dir.join("broken.jsonl");
    let out = team.out(&["export", &id, "--out", broken.to_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("hash chain breaks at line 3"),
        "{}",
        text(&out)
    );
    let broken = elsewhere.out(&["verify-journal", &id, "--store", &url]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        text(&broken).contains("hash chain breaks at line 3"),
        "{}",
        text(&broken)
    );

    // The same runbook on the file store: the same events, in the same
    // order (the bytes differ by the run id, the times and the journal's
    // path in run_started's notes).
    let alone = machine(&pg, None);
    let out = alone
        .run_here("j.runbook", &[])
        .output()
        .expect("runbook runs");
    assert!(out.status.success(), "{}", text(&out));
    let other = std::fs::read(alone.journal_path(&alone.first_run())).expect("journal");
    assert_eq!(shape(&other), shape(&file));
}

/// Runs `j.runbook` on `team` and stops the server (and starts it again
/// at once if `restart`) while `a` runs; the run id, how the run exited
/// and its stderr.
fn cut_off_from_the_database(
    pg: &PgCluster,
    team: &CliEnv,
    restart: bool,
) -> (String, std::process::ExitStatus, String) {
    let mut child = team
        .run_here("j.runbook", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook starts");
    let id = team.first_run();
    team.wait_for(&id, &["action_started", "\"a\""]);
    pg.stop_server();
    if restart {
        pg.start_server();
    }
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    (id, status, err)
}

#[test]
fn a_dead_database_stops_the_run_before_the_next_change() {
    let pg = PgCluster::migrated();
    let url = pg.url();
    let team = machine(&pg, Some(&url));
    let (id, status, err) = cut_off_from_the_database(&pg, &team, false);
    assert!(!status.success(), "{err}");
    assert_eq!(team.count("a.marker"), 1);
    assert_eq!(team.count("b.marker"), 0, "b never started: {err}");
    assert!(
        !team
            .journal(&id)
            .contains("\"node\":\"b\",\"kind\":\"action_started\""),
        "{}",
        team.journal(&id)
    );
    // The store's journal failed: the warning is in the file's journal
    // (and on the console), naming the store.
    let journal = team.journal(&id);
    assert!(
        journal.contains("journal output failed") && journal.contains(&url),
        "{journal}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Export against a dead database: a message, exit 3, no panic.
    let out = team.out(&["export", &id]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
    pg.start_server();
    let out = team.out(&["export", "no-such-run"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("no run `no-such-run`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_resumed_run_goes_on_with_the_same_chain_in_the_store() {
    let pg = PgCluster::migrated();
    let url = pg.url();
    let team = machine_with_lease(&pg, Some(&url), "1s");
    let mut child = team
        .run_here("j.runbook", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("runbook starts");
    let id = team.first_run();
    team.wait_for(&id, &["action_started", "\"a\""]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while team.count("a.marker") == 0 {
        assert!(std::time::Instant::now() < deadline, "a never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A live run heartbeats into its row (every third of the 1s lease).
    let beat = format!("SELECT heartbeat > started + interval '300 milliseconds' FROM runbook_runs WHERE run_id = '{id}'");
    while pg.psql(&beat) != "t" {
        assert!(std::time::Instant::now() < deadline, "no heartbeat");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(
        pg.psql(&format!(
            "SELECT ended IS NULL FROM runbook_runs WHERE run_id = '{id}'"
        )),
        "t",
        "a killed run's row is not ended: only its heartbeat stops"
    );
    // The killed run's lock lease runs out after 1s.
    std::thread::sleep(Duration::from_millis(1500));
    let out = team.out(&["resume", &id, "--runs-dir", "runs", "--assume-done", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(team.count("a.marker"), 1, "a is not run again");
    assert_eq!(team.count("b.marker"), 1);
    let export = team.dir.join("export.jsonl");
    let exported = team.out(&["export", &id, "--out", export.to_str().unwrap_or("")]);
    assert!(exported.status.success(), "{}", text(&exported));
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(&export).expect("export")),
        team.journal(&id),
        "after the resume, the store's rows are still the file's lines"
    );
}

/// PostgreSQL restarted while `a` runs: the run either stops before `b`
/// (its journal row could not be written) or goes on, but `b`'s command
/// never runs before its `action_started` is committed in the store.
#[test]
fn a_database_restarted_mid_run_never_lets_a_change_run_unjournalled() {
    let pg = PgCluster::migrated();
    let url = pg.url();
    let team = machine(&pg, Some(&url));
    let (id, status, err) = cut_off_from_the_database(&pg, &team, true);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(team.count("a.marker"), 1);
    let seen = std::fs::read_to_string(team.dir.join("seen")).unwrap_or_default();
    if team.count("b.marker") == 0 {
        assert!(
            !status.success(),
            "b did not run, yet the run succeeded: {err}"
        );
        assert!(
            team.journal(&id).contains("journal output failed"),
            "{}",
            team.journal(&id)
        );
    } else {
        assert_eq!(
            seen.trim(),
            "1",
            "b ran before its start was committed: {err}"
        );
    }
}
