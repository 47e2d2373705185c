#![allow(dead_code)] // each user (bench, tests) takes what it needs
//! Generated runbooks for the compile benchmark and the robustness tests:
//! realistic steps (commands with templates, `when` conditions, retries,
//! timeouts, verify, undo, captures read by later steps, fan-outs, parallel
//! groups and notifications), so that every pass of the compiler has work.

use std::fmt::Write;
use std::path::PathBuf;

/// Where a benchmark leaves the runbooks it generated, for whole-process
/// measurements of the real binary: `$CARGO_TARGET_DIR/<name>` when that
/// is set (as cargo itself builds there), else `target/<name>` in the
/// project.
pub fn output_dir(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join(name)
}

/// A runbook of exactly `steps` steps that compiles without errors.
pub fn runbook(steps: usize) -> String {
    let mut s = String::with_capacity(steps * 260 + 2048);
    s.push_str(HEADER);
    let mut n = 0;
    while n < steps {
        let kind = n % 10;
        if kind == 4 && n + 2 <= steps {
            // Two steps side by side.
            let _ = write!(
                s,
                r#"
  parallel {{
    step drain_{n} {{
      for region in regions parallel 2 max_failures 0 {{
        http post "https://lb.example.com/regions/{{{{region}}}}/pools/{n}/drain"
      }}
      undo for region in regions {{
        http post "https://lb.example.com/regions/{{{{region}}}}/pools/{n}/restore"
      }}
      timeout 2m
    }}
    step tell_{m} {{
      notify status update {{ phase: "Draining pool {n}", detail: "{{{{service}}}} in {{{{regions}}}}" }}
    }}
  }}
"#,
                m = n + 1
            );
            n += 2;
            continue;
        }
        let _ = match kind {
            0 => write!(
                s,
                r#"
  step read_{n} {{
    run "configctl show {{{{service}}}} --shard {n} --json" readonly
    capture json as state_{n}
    timeout 30s
  }}
"#
            ),
            1 => write!(
                s,
                r#"
  step revert_{n} {{
    when state_{p}.revision == bad_revision and not errors_low
    run  "configctl revert {{{{service}}}} --shard {n} --to {{{{bad_revision}}}}~1 --was {{{{state_{p}.revision}}}}"
    retry 3 backoff 5s exponential
    timeout 2m
    verify api_healthy and errors_low within 10m every 30s consecutive 2
    undo "configctl apply {{{{service}}}} --shard {n} --revision {{{{bad_revision}}}}"
  }}
"#,
                p = n - 1
            ),
            2 => write!(
                s,
                r#"
  step scale_{n} {{
    when replicas > 2 and mode in ["drain", "shed"] and max_error < 0.5
    run "kubectl -n {{{{namespace}}}} scale deploy/{{{{service}}}}-{n} --replicas={{{{replicas}}}}"
    retry 2 backoff 1s
    timeout 45s
    undo "kubectl -n {{{{namespace}}}} scale deploy/{{{{service}}}}-{n} --replicas=3"
  }}
"#
            ),
            3 => write!(
                s,
                r#"
  step limit_{n} {{
    when not (mode == "normal") or service matches "^api-"
    http put "https://gw.example.com/limits/{{{{service}}}}/{n}" {{
      header "Authorization" = "Bearer {{{{api_token}}}}"
      body json "{{\"limit\": {{{{replicas}}}}, \"service\": \"{{{{service}}}}\"}}"
      timeout 5s
    }}
    undo http delete "https://gw.example.com/limits/{{{{service}}}}/{n}"
  }}
"#
            ),
            5 => write!(
                s,
                r#"
  step wait_{n} {{
    when soak > 0s
    wait 1s
    verify api_healthy within 5m every 15s
  }}
"#
            ),
            6 => write!(
                s,
                r#"
  step flag_{n} {{
    when "checkout" in flags and replicas >= 1
    run "flagctl set {{{{service}}}}.feature_{n} off --reason '{{{{run.id}}}}'"
    undo "flagctl set {{{{service}}}}.feature_{n} on"
    on_error continue
  }}
"#
            ),
            7 => write!(
                s,
                r#"
  step announce_{n} {{
    notify oncall update {{ phase: "Step {n} of {steps}", detail: "{{{{service}}}} at {{{{bad_revision}}}}" }}
  }}
"#
            ),
            8 => write!(
                s,
                r#"
  step restart_{n} {{
    when errors_low == false
    for region in regions parallel 2 {{
      run "regionctl restart {{{{service}}}} --region {{{{region}}}} --pool {n}"
    }}
    undo for region in regions {{
      run "regionctl stop {{{{service}}}} --region {{{{region}}}} --pool {n}"
    }}
    timeout 10m
  }}
"#
            ),
            _ => write!(
                s,
                r#"
  step cache_{n} {{
    when soak > 0s
    run "cachectl flush {{{{service}}}} --prefix shard-{n}/"
    undo "cachectl warm {{{{service}}}} --prefix shard-{n}/"
    retry 1
  }}
"#
            ),
        };
        n += 1;
    }
    s.push_str(FOOTER);
    s
}

/// A runbook at least `bytes` long.
pub fn runbook_of_size(bytes: usize) -> String {
    // About 300 bytes a step.
    let mut steps = bytes / 300 + 1;
    loop {
        let s = runbook(steps);
        if s.len() >= bytes {
            return s;
        }
        steps += steps / 10 + 1;
    }
}

/// The shortest generated runbook of at least `lines` lines: a file of
/// the size people write by hand, for the whole-process `runbook check`
/// target (docs/performance.md).
pub fn runbook_of_lines(lines: usize) -> String {
    (1..)
        .map(runbook)
        .find(|s| s.lines().count() >= lines)
        .unwrap_or_default()
}

const HEADER: &str = r#"# Generated: a long rollback runbook for the compile benchmark.
runbook generated_rollback {
  title "Roll back a bad configuration push, shard by shard"
  owner "sre-oncall"
  tags  ["api", "sev1", "generated"]
  lock  "api-gateway/{{service}}"

  input service:      string = "api-gateway"
  input namespace:    string = "prod"
  input bad_revision: string = "r1234"
  input max_error:    float  = 0.02
  input replicas:     int    = 6
  input soak:         duration = 30s
  input regions:      list<string> = ["eu-west-1", "us-east-1"]
  input flags:        list<string> = ["checkout", "search"]
  input mode:         one_of ["normal", "drain", "shed"] = "drain"

  secret slack_hook = env "SLACK_WEBHOOK_URL"
  secret api_token  = file "/etc/runbook/api-token"

  channel oncall = slack slack_hook
  channel status = webhook "https://status.example.com/api/v1/incidents" {
    header "Authorization" = "Bearer {{api_token}}"
  }

  template update = """
    *{{phase}}*: {{service}} config rollback ({{bad_revision}})
    {{#if detail}}{{detail}}{{/if}}
  """

  check api_healthy {
    http get "https://{{service}}.example.com/healthz" timeout 2s
    expect status == 200
    expect elapsed < 800ms
  }

  check errors_low {
    promql "sum(rate(http_requests_total{job=\"{{service}}\",code=~\"5..\"}[5m])) / sum(rate(http_requests_total{job=\"{{service}}\"}[5m]))"
    expect value < max_error
    on no_data fail
  }
"#;

const FOOTER: &str = r#"
  on failure {
    notify oncall update { phase: "Rollback failed: paging humans", detail: "{{failure.step}}: {{failure.reason}}" }
  }
  on success {
    notify status update { phase: "Resolved" }
  }
  after rollback verify api_healthy within 5m every 15s
}
"#;
