//! A real Prometheus alerting rule fires, a real Alertmanager delivers it
//! (and re-sends it every `repeat_interval`, then sends it resolved) to
//! `runbook serve`: the run starts once, the re-sends are recorded as
//! duplicates, the resolved alert is recorded. Both programs are Debian's
//! (`prometheus`, `prometheus-alertmanager`); the test fails without them.

use crate::support::serve::{free_port, require, wait_http_ok, Killed, Serve, TRIGGER};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn alertmanager_delivers_a_firing_rule_once_then_resends_then_resolves() {
    let prometheus = require("prometheus", "prometheus");
    let alertmanager = require("prometheus-alertmanager", "prometheus-alertmanager");
    // The run outlasts the alert (fires for 12 s): every re-send arrives
    // while it is active.
    let long = super::serve_api::SLOW_RUNBOOK.replace("sleep 4", "sleep 40");
    let mut files = super::serve_api::files();
    files.retain(|(name, _)| *name != "slow.runbook");
    files.push(("slow.runbook", &long));
    let s = Serve::start(&files, &[]);
    let port = s.url.rsplit(':').next().unwrap().to_string();

    // Alertmanager: one route to serve, re-sending every 2 s.
    let am_port = free_port();
    let am_dir = s.dir.join("am");
    std::fs::create_dir_all(&am_dir).unwrap();
    std::fs::write(
        am_dir.join("am.yml"),
        format!(
            "route:\n  receiver: runbook\n  group_by: [alertname]\n  group_wait: 0s\n  \
             group_interval: 1s\n  repeat_interval: 2s\nreceivers:\n  - name: runbook\n    \
             webhook_configs:\n      - url: http://127.0.0.1:{port}/alertmanager\n        \
             send_resolved: true\n        http_config:\n          authorization:\n            \
             credentials: {TRIGGER}\n"
        ),
    )
    .unwrap();
    let am_log = am_dir.join("log");
    let _am = Killed(
        Command::new(&alertmanager)
            .current_dir(&am_dir)
            .args([
                "--config.file=am.yml",
                &format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=",
                "--storage.path=data",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&am_log).unwrap())
            .spawn()
            .expect("start alertmanager"),
    );
    wait_http_ok(
        &format!("http://127.0.0.1:{am_port}/-/ready"),
        Duration::from_secs(30),
        &am_log,
    );

    // Prometheus: a rule that fires at once and stops firing by itself
    // 12 s from now (no scrape needed).
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 12;
    let prom_port = free_port();
    let prom_dir = s.dir.join("prom");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(
        prom_dir.join("rules.yml"),
        format!(
            "groups:\n  - name: serve-test\n    interval: 1s\n    rules:\n      - alert: Slow\n        \
             expr: vector(time()) < {until}\n        labels: {{ severity: page, service: api }}\n        \
             annotations: {{ summary: the api is slow }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  \
             alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"
        ),
    )
    .unwrap();
    let prom_log = prom_dir.join("log");
    let _prom = Killed(
        Command::new(&prometheus)
            .current_dir(&prom_dir)
            .args([
                "--config.file=prometheus.yml",
                &format!("--web.listen-address=127.0.0.1:{prom_port}"),
                "--storage.tsdb.path=data",
                // Prometheus finds Alertmanager a moment after its first
                // evaluation, and drops what it had to send before: send
                // active alerts again every second, not every minute.
                "--rules.alert.resend-delay=1s",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&prom_log).unwrap())
            .spawn()
            .expect("start prometheus"),
    );

    let actions = || -> Vec<String> {
        s.alerts()
            .iter()
            .map(|a| a["action"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let started = std::time::Instant::now();
    loop {
        let a = actions();
        if a.iter().any(|x| x == "duplicate") && a.iter().any(|x| x == "resolved") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no delivery, re-send and resolve within 60 s; alert log {:?}\nalertmanager:\n{}\nprometheus:\n{}",
            s.alerts(),
            std::fs::read_to_string(&am_log).unwrap_or_default(),
            std::fs::read_to_string(&prom_log).unwrap_or_default(),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.alerts();
    let a = actions();
    assert_eq!(a[0], "started", "{log:?}");
    assert_eq!(a.iter().filter(|x| *x == "started").count(), 1, "{log:?}");
    assert!(log
        .iter()
        .all(|r| r["alertname"] == "Slow" && r["route"] == "slow"));
    // One alert, one fingerprint, one run.
    let fp = &log[0]["fingerprint"];
    assert!(log.iter().all(|r| &r["fingerprint"] == fp), "{log:?}");
    let ids = s.run_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(log[0]["run_id"], ids[0].as_str());
    // The run got its input from the alert's label.
    assert!(
        s.journal(&ids[0]).contains(r#""inputs":{"service":"api"}"#),
        "{}",
        s.journal(&ids[0])
    );
}
