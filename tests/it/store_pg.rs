//! The PostgreSQL store against a real server ([`PgCluster`]): `runbook
//! store migrate`, run locks shared across "machines" (two processes with
//! their own runs and state directories), leases that run out, are taken
//! over, or are lost while a run holds them.

use crate::support::{wait_exit, CliEnv, PgCluster};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `a` appends to a marker and takes a while; `b` comes after it.
const RUNBOOK: &str = r#"
runbook shared_lock {
  input dir: string
  lock "db/primary"
  step a {
    run "echo x >> {{dir}}/a.marker; sleep 3"
    undo "echo u >> {{dir}}/a.undo"
  }
  step b {
    run "echo x >> {{dir}}/b.marker"
    undo "echo u >> {{dir}}/b.undo"
  }
}
"#;

/// A "machine": its own directory, runs directory and state directory
/// (where file locks live), using the store at `url` with `lease`.
fn machine(url: &str, lease: &str) -> CliEnv {
    let config = format!("store:\n  url: {url}\n  lease: {lease}\n");
    CliEnv::new(&[("s.runbook", RUNBOOK), ("runbook.yaml", &config)], None)
}

fn start(m: &CliEnv) -> Child {
    m.run_here("s.runbook", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook starts")
}

/// A run started on `m`, once it holds the lock and step `a` runs; its
/// process and run id.
fn holding(m: &CliEnv) -> (Child, String) {
    let child = start(m);
    let id = m.first_run();
    m.wait_for(&id, &["action_started", "\"a\""]);
    (child, id)
}

fn run(m: &CliEnv) -> Output {
    m.run_here("s.runbook", &[]).output().expect("runbook runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn migrate(pg: &PgCluster) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["store", "migrate", "--store", &pg.url()])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runbook store migrate runs")
}

/// A migrated cluster.
fn cluster() -> PgCluster {
    let pg = PgCluster::start();
    let out = migrate(&pg);
    assert!(out.status.success(), "{}", stderr(&out));
    pg
}

#[test]
fn migrate_is_versioned_idempotent_and_required() {
    let pg = PgCluster::start();
    let m = machine(&pg.url(), "30s");
    let refused = run(&m);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("runbook store migrate"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(m.count("a.marker"), 0, "nothing ran");

    let first = migrate(&pg);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("from version 0 to 7"),
        "{first:?}"
    );
    let again = migrate(&pg);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{again:?}"
    );
    assert_eq!(
        pg.psql("SELECT version, name FROM runbook_schema ORDER BY version"),
        "1|locks\n2|queue\n3|journal\n4|approvals\n5|takeover\n6|serve\n7|machine"
    );

    let ok = run(&m);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(m.count("a.marker"), 1);
}

#[test]
fn two_machines_one_lock_key_one_is_refused_with_the_holder() {
    let pg = cluster();
    let (one, two) = (machine(&pg.url(), "30s"), machine(&pg.url(), "30s"));
    let (mut first, id) = holding(&one);

    let refused = run(&two);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{err}");
    assert!(
        err.contains("the lock `db/primary` is held by run"),
        "{err}"
    );
    assert!(err.contains(&id), "the holder's run id: {err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "the holder's pid: {err}"
    );
    assert!(err.contains(&pg.url()), "the store: {err}");
    let (host, user) = (
        runbook::durable::sys::hostname(),
        runbook::durable::sys::user(),
    );
    assert!(
        err.contains(&format!("on {host}")),
        "the holder's host: {err}"
    );
    assert!(
        err.contains(&format!("user {user}")),
        "the holder's user: {err}"
    );
    assert_eq!(two.count("a.marker"), 0, "the refused run started nothing");
    assert!(two.run_ids().is_empty(), "nor created a run");

    assert!(wait_exit(&mut first, Duration::from_secs(30)).success());
    assert_eq!(
        pg.psql("SELECT run_id, lease_until = '-infinity' FROM runbook_locks"),
        format!("{id}|t"),
        "released, its last holder kept"
    );
    let after = run(&two);
    assert!(after.status.success(), "{}", stderr(&after));
    assert_eq!(pg.psql("SELECT epoch FROM runbook_locks"), "2");
}

#[test]
fn with_the_file_store_two_machines_do_not_see_each_others_lock() {
    // The contrast: the same two processes on the default store each take
    // their own machine's lock file.
    let (one, two) = (
        CliEnv::new(&[("s.runbook", RUNBOOK)], None),
        CliEnv::new(&[("s.runbook", RUNBOOK)], None),
    );
    let (mut first, _) = holding(&one);
    let second = run(&two);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(wait_exit(&mut first, Duration::from_secs(30)).success());
}

#[test]
fn a_killed_holders_lease_runs_out_and_is_taken_over() {
    let pg = cluster();
    let (one, two) = (machine(&pg.url(), "4s"), machine(&pg.url(), "4s"));
    let (mut first, id) = holding(&one);
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let killed_at = Instant::now();

    let refused = run(&two);
    // The lease (4s) outlives the process: refused while it runs (the
    // check is skipped only on a machine too slow to start a run in 3s).
    if killed_at.elapsed() < Duration::from_secs(3) {
        assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
        assert!(stderr(&refused).contains(&id), "{}", stderr(&refused));
    }
    std::thread::sleep(Duration::from_millis(4300).saturating_sub(killed_at.elapsed()));
    let taken = run(&two);
    assert!(taken.status.success(), "{}", stderr(&taken));
    let second = two.first_run();
    let journal = two.journal(&second);
    let warning = journal
        .lines()
        .find(|l| l.contains("took over the lock `db/primary` from run"))
        .unwrap_or_else(|| panic!("the takeover is in the journal:\n{journal}"));
    assert!(warning.contains(&id), "{warning}");
}

#[test]
fn a_run_whose_lease_is_taken_over_starts_no_new_action() {
    let pg = cluster();
    let one = machine(&pg.url(), "900ms");
    let (mut child, id) = holding(&one);
    // Another holder's epoch: what a takeover after expiry leaves.
    pg.psql("UPDATE runbook_locks SET epoch = epoch + 1, run_id = 'other'");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "cancelled");
    assert_eq!(one.count("b.marker"), 0, "b never started");
    let journal = one.journal(&id);
    assert!(
        !journal.contains("\"node\":\"b\""),
        "no event of b:\n{journal}"
    );
    assert!(journal.contains("run_finished"), "{journal}");
    assert_eq!(
        pg.psql("SELECT run_id FROM runbook_locks"),
        "other",
        "the lost lock is not released by the run that lost it"
    );
}

#[test]
fn a_run_stops_when_the_database_goes_away() {
    let pg = cluster();
    let one = machine(&pg.url(), "1200ms");
    let (mut child, _) = holding(&one);
    pg.stop_server();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    pg.start_server();
    assert_eq!(status.code(), Some(130), "cancelled");
    assert_eq!(one.count("b.marker"), 0, "b never started without a lease");
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    assert!(err.contains("lost its lock"), "{err}");
}

/// A password the tests give the store, never to be printed anywhere.
const PASSWORD: &str = "pw-Vq7-never-shown";

/// The cluster's role `runbook` gets [`PASSWORD`] and connections over
/// TCP need it (`scram-sha-256`); returns once one without it is refused.
fn require_password(pg: &PgCluster, anyone: &CliEnv) {
    pg.psql(&format!("ALTER ROLE runbook PASSWORD '{PASSWORD}'"));
    let hba = pg.data_dir().join("pg_hba.conf");
    std::fs::write(
        &hba,
        "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .expect("pg_hba.conf");
    pg.psql("SELECT pg_reload_conf()");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = anyone.out(&["runs", "--store", &pg.url()]);
        if !out.status.success() {
            let err = stderr(&out);
            assert!(err.contains("password missing"), "{err}");
            assert!(err.contains("RUNBOOK_STORE_PASSWORD"), "{err}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server never asked for a password"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_password_comes_from_the_environment_or_a_file_and_is_never_printed() {
    let pg = cluster();
    require_password(&pg, &CliEnv::new(&[], None));

    // From $RUNBOOK_STORE_PASSWORD, on a machine with no config.
    let env = CliEnv::new(&[], Some(("RUNBOOK_STORE_PASSWORD", PASSWORD)));
    let migrated = env.out(&["store", "migrate", "--store", &pg.url()]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(
        String::from_utf8_lossy(&migrated.stdout).contains("nothing to do"),
        "{migrated:?}"
    );

    // From `password_file:`: a live run holding its lock in the store.
    let config = format!(
        "store:\n  url: {}\n  lease: 30s\n  password_file: pw.txt\n",
        pg.url()
    );
    let m = CliEnv::new(
        &[
            ("s.runbook", RUNBOOK),
            ("runbook.yaml", &config),
            ("pw.txt", &format!("{PASSWORD}\n")),
        ],
        None,
    );
    let ok = run(&m);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(m.count("b.marker"), 1);
    let id = m.first_run();
    let listed = m.out(&["runs", "--store", &pg.url()]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let exported = m.out(&["export", &id, "--store", &pg.url()]);
    assert!(exported.status.success(), "{}", stderr(&exported));

    // A wrong one is refused without being shown either.
    let wrong = CliEnv::new(&[], Some(("RUNBOOK_STORE_PASSWORD", "wrong-Kp4-not-shown")));
    let refused = wrong.out(&["runs", "--store", &pg.url()]);
    assert!(!refused.status.success());
    assert!(
        !format!("{refused:?}").contains("wrong-Kp4-not-shown"),
        "{refused:?}"
    );

    let everything = format!(
        "{migrated:?}{ok:?}{listed:?}{exported:?}{}{}",
        m.journal(&id),
        std::fs::read_to_string(m.dir.join("runs").join(&id).join("run.json")).unwrap_or_default()
    );
    assert!(!everything.contains(PASSWORD), "{everything}");
}

#[test]
fn tls_through_rustls_verifies_the_server_and_a_server_that_requires_it_refuses_plain_tcp() {
    let pg = cluster();
    let ca = pg.require_tls();
    let nobody = CliEnv::new(&[], None);
    let plain = nobody.out(&["runs", "--store", &pg.url()]);
    assert!(!plain.status.success(), "{plain:?}");
    assert!(
        stderr(&plain).contains("no encryption"),
        "{}",
        stderr(&plain)
    );
    // TLS, but the server's certificate is signed by a CA nobody trusts.
    let untrusted = format!("{}?sslmode=require", pg.url());
    let unknown = nobody.out(&["runs", "--store", &untrusted]);
    assert!(!unknown.status.success(), "{unknown:?}");
    assert!(
        stderr(&unknown).contains("invalid peer certificate"),
        "{}",
        stderr(&unknown)
    );

    // `ca_file:` trusts it (and requires TLS): a live run holds its lock
    // in the store, and the store lists it.
    let config = format!(
        "store:\n  url: {}\n  lease: 30s\n  ca_file: {}\n",
        pg.url(),
        ca.display()
    );
    let m = CliEnv::new(&[("s.runbook", RUNBOOK), ("runbook.yaml", &config)], None);
    let ok = run(&m);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(m.count("b.marker"), 1);
    let listed = m.out(&["runs", "--store", &pg.url()]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&m.first_run()),
        "{listed:?}"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM runbook_locks WHERE key = 'db/primary'"),
        "1"
    );
}
