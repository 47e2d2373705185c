//! Issue 11, item 5: a secret never leaves the engine. Two secrets, one from
//! the environment and one from a file, flow through every path a value can
//! take (a command's stdout and stderr, a JSON capture's keys, an HTTP
//! body, a console notification, a webhook, an approval question, a failure)
//! in every encoding a program may print them in; every output of the real
//! binary is then searched for every form of both: the console, the
//! journal, `run.json`, `--output json`, `runs`, `plan`, the approval files
//! and `runbook approve`'s listing, the lock files, the webhook bodies a
//! real server on 127.0.0.1 received, and a drill's report and JUnit XML.

use crate::support;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{CliEnv, Reply, TestHttpServer};

const ENV_SECRET: &str = "envSekr3t/ä+ x'q";
const FILE_SECRET: &str = "fileSekr3t/ö+y\"z";

/// `s` as programs print it: raw, JSON-escaped (with `\uXXXX` for
/// non-ASCII and `\/`), percent-encoded (upper and lower case hex, `+` for
/// a space) and shell-quoted.
fn forms(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap();
    let json = json[1..json.len() - 1].to_string();
    let ascii_json: String = json
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect();
    let slash_json = ascii_json.replace('/', "\\/");
    const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
    let upper = utf8_percent_encode(s, SET).to_string();
    let lower = percent_lower(&upper);
    let plus = upper.replace("%20", "+");
    let shell = shlex::try_quote(s).unwrap().into_owned();
    let mut all = vec![
        s.to_string(),
        json,
        ascii_json,
        slash_json,
        upper,
        lower,
        plus,
        shell,
    ];
    all.dedup();
    all
}

/// `%2F` -> `%2f`.
fn percent_lower(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

/// The forms the redactor on this branch masks: raw and JSON-escaped as
/// serde writes it (`"` and `\` escaped, non-ASCII kept).
fn plain_forms(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap();
    vec![s.to_string(), json[1..json.len() - 1].to_string()]
}

/// Every form (`which`) of both secrets found in `text`.
fn leaks(text: &str, which: fn(&str) -> Vec<String>) -> Vec<String> {
    let mut found = Vec::new();
    for s in [ENV_SECRET, FILE_SECRET] {
        for f in which(s) {
            if text.contains(&f) {
                found.push(f);
            }
        }
    }
    found
}

/// What `outputs` leak of `which` forms, one line per output.
fn report(outputs: &[(String, String)], which: fn(&str) -> Vec<String>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, text) in outputs {
        let l = leaks(text, which);
        if !l.is_empty() {
            found.push(format!("{name}: {l:?}"));
        }
    }
    found
}

/// Every form of both secrets, one per line, and as the keys of a JSON
/// object: what a command prints.
fn forms_files(dir: &Path) {
    let all: Vec<String> = [ENV_SECRET, FILE_SECRET]
        .iter()
        .flat_map(|s| forms(s))
        .collect();
    std::fs::write(dir.join("forms.txt"), all.join("\n") + "\n").unwrap();
    let keys: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .map(|f| (f.clone(), serde_json::Value::from(1)))
        .collect();
    std::fs::write(
        dir.join("forms.json"),
        serde_json::Value::Object(keys).to_string(),
    )
    .unwrap();
}

/// Every file under `dir`, as text.
fn files_under(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

/// `keys`: with a step capturing a JSON object whose keys are the forms.
fn runbook_text(dir: &Path, url: &str, keys: bool) -> String {
    let secret_file = dir.join("secret.txt");
    format!(
        r#"runbook leaky {{
  secret tok  = env "RB_LEAK_TOK"
  secret ftok = file "{secret_file}"
  channel hook = webhook "{url}/hook"
  channel con  = console

  step dump {{
    run "cat forms.txt; echo {{{{tok}}}} {{{{ftok}}}}" readonly
    capture text as out
  }}
  {keys}
  step body {{
    http get "{url}/body"
    capture text as hb
  }}
  step tell {{
    notify con "out: {{{{out}}}} body: {{{{hb}}}}"
  }}
  step hooked {{
    notify hook "out: {{{{out}}}} body: {{{{hb}}}}"
  }}
  step ask {{
    approve "go on with {{{{out}}}}?" timeout 60s
  }}
  step boom {{
    run "cat forms.txt >&2; echo {{{{tok}}}} >&2; exit 3"
    undo "true"
  }}
}}
"#,
        secret_file = secret_file.display(),
        keys = if keys {
            "step keys { run \"cat forms.json\" readonly capture json as j }"
        } else {
            ""
        }
    )
}

/// Runs everything (a live run answered from another process, a JSON-lines
/// run, `runs`, `plan`) and returns every output by name.
fn every_output(keys: bool) -> Vec<(String, String)> {
    let server = TestHttpServer::start();
    let all_forms: Vec<String> = [ENV_SECRET, FILE_SECRET]
        .iter()
        .flat_map(|s| forms(s))
        .collect();
    server.set_reply("/body", Reply::text(200, all_forms.join("\n")));
    let env = CliEnv::new(&[], Some(("RB_LEAK_TOK", ENV_SECRET)));
    let dir = env.dir.clone();
    std::fs::write(dir.join("secret.txt"), format!("{FILE_SECRET}\n")).unwrap();
    forms_files(&dir);
    std::fs::write(
        dir.join("leaky.runbook"),
        runbook_text(&dir, &server.url(), keys),
    )
    .unwrap();

    let mut outputs: Vec<(String, String)> = Vec::new();

    // A live run, answered from another process while it waits.
    let child = env
        .cmd(&["run", "leaky.runbook", "--runs-dir", "runs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = env.first_run();
    let approvals = dir.join("runs").join(&id).join("approvals");
    let deadline = Instant::now() + Duration::from_secs(30);
    // The request file is written to a hidden temporary name, then renamed.
    let asked = || {
        std::fs::read_dir(&approvals).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".request.json"))
        })
    };
    while !asked() {
        assert!(Instant::now() < deadline, "no approval was asked");
        std::thread::sleep(Duration::from_millis(20));
    }
    files_under(&approvals, &mut outputs);
    let listing = env.out(&["approve", &id, "--runs-dir", "runs"]);
    outputs.push(("approve listing".into(), support::text(&listing)));
    let answer = env.out(&["approve", &id, "ask", "--runs-dir", "runs"]);
    assert_eq!(answer.status.code(), Some(0), "{}", support::text(&answer));
    let run = child.wait_with_output().unwrap();
    let console = support::text(&run);
    assert_ne!(run.status.code(), Some(0), "{console}");
    assert!(console.contains("[tell]"), "the flows ran: {console}");
    outputs.push(("console".into(), console));

    // The same run in JSON lines, pre-approved.
    let json = env.out(&[
        "run",
        "leaky.runbook",
        "--runs-dir",
        "runs",
        "--output",
        "json",
        "--approve",
        "ask",
    ]);
    outputs.push(("--output json".into(), support::text(&json)));
    outputs.push((
        "runs".into(),
        support::text(&env.out(&["runs", "--runs-dir", "runs"])),
    ));
    outputs.push((
        "plan".into(),
        support::text(&env.out(&["plan", "leaky.runbook"])),
    ));
    let hooks = server.requests_to("/hook");
    assert_eq!(hooks.len(), 2, "both runs notified the webhook");
    for (i, r) in hooks.iter().enumerate() {
        outputs.push((format!("webhook body {i}"), r.body_str()));
    }
    files_under(&dir.join("runs"), &mut outputs);
    files_under(&env.state_dir(), &mut outputs);

    outputs
}

#[test]
fn no_secret_reaches_any_output_raw_or_json_escaped() {
    let found = report(&every_output(false), plain_forms);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// Every encoding, and the keys of a captured JSON object. Fails on this
/// branch: the redactor does not know the `\u00e4`, `\/`, lower-case
/// `%2f`, `+` and `%27` forms, nor redact JSON object keys; both are the
/// Redactor work of issue 11 item 5 on another branch. Run with
/// `--ignored` once it is merged, then drop the `ignore`.
#[test]
fn no_form_of_a_secret_reaches_any_output() {
    let found = report(&every_output(true), forms);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

#[test]
fn no_secret_reaches_a_drill_report_raw_or_json_escaped() {
    let rb = r#"runbook leaky_drill {
  secret tok = env "RB_LEAK_TOK"
  channel con = console
  step dump {
    run "print-forms {{tok}}" readonly
    capture text as out
  }
  step tell {
    notify con "out: {{out}}"
  }
  step boom {
    run "fail {{tok}}"
    undo "true"
  }
}
"#;
    let all_forms: Vec<String> = forms(ENV_SECRET);
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    let scenario = format!(
        "runbook: leaky_drill.runbook\nname: leak\nsecrets:\n  tok: {}\nactions:\n  dump:\n    stdout: {}\n  boom:\n    result: fail\n    exit: 3\n    stdout: {}\nexpect:\n  outcome: rolled_back\n",
        quoted(ENV_SECRET),
        quoted(&all_forms.join("\n")),
        quoted(&all_forms.join("\n")),
    );
    let env = CliEnv::new(
        &[
            ("leaky_drill.runbook", rb),
            ("leaky_drill.leak.drill.yaml", &scenario),
        ],
        None,
    );
    let drill = env.out(&[
        "drill",
        "--scenario",
        "leaky_drill.leak.drill.yaml",
        "leaky_drill.runbook",
    ]);
    let out = support::text(&drill);
    assert!(out.contains("tell"), "{out}");
    let junit = env.out(&["test", "leaky_drill.leak.drill.yaml", "--format", "junit"]);
    let outputs = vec![
        ("drill".to_string(), out),
        ("junit".to_string(), support::text(&junit)),
    ];
    let found = report(&outputs, plain_forms);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

#[test]
fn a_drill_cannot_read_a_file_that_is_not_a_runbook() {
    let env = CliEnv::new(&[("secret.txt", "hunter2-file-content\n")], None);
    for (name, target) in [
        ("abs", "/etc/passwd".to_string()),
        ("rel", "secret.txt".to_string()),
        ("dotdot", "../../../../../../etc/passwd".to_string()),
    ] {
        let file = format!("{name}.drill.yaml");
        std::fs::write(env.dir.join(&file), format!("runbook: {target}\nname: x\n")).unwrap();
        for args in [
            &["test", file.as_str(), "--format", "junit"][..],
            &["test", file.as_str()],
        ] {
            let o = env.out(args);
            let all = support::text(&o);
            assert_ne!(o.status.code(), Some(0), "{args:?}");
            assert!(
                all.contains("must name a `.runbook` file"),
                "{args:?}: {all}"
            );
            assert!(
                !all.contains("hunter2") && !all.contains("root:"),
                "{args:?} showed the file: {all}"
            );
        }
    }
}
