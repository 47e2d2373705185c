//! `runbook.yaml`: where the engine meets this site's systems.
//!
//! ```yaml
//! prometheus:
//!   url: http://127.0.0.1:9090
//! defaults:
//!   timeout: 5m          # per attempt, for steps without `timeout`
//!   check_timeout: 10s   # for probes without their own
//!   notify_timeout: 10s
//! shell:
//!   cwd: /srv/ops
//!   env: { KUBECONFIG: /etc/kube/prod }
//!   output_cap: 65536    # bytes kept per stream
//! runs_dir: .runbook/runs
//! locks_dir: /var/lib/runbook/locks   # default: see durable::lock::locks_dir
//! store: { url: postgres://runbook@db:5432/runbook }   # default: the files (docs/team.md)
//! environments:
//!   staging:
//!     prometheus: { url: http://prometheus.staging:9090 }
//!     shell: { env: { KUBECONFIG: /etc/kube/staging } }
//!     inputs: { service: api-gateway-staging }
//! serve:                 # `runbook serve` (docs/serve.md)
//!   tokens:
//!     - { name: alertmanager, roles: [trigger], env: RUNBOOK_TOKEN_AM }
//!     - { name: alice, roles: [view, approve], file: /etc/runbook/alice.token }
//! ```
//!
//! Unknown keys and wrong types are errors pointing at the line (miette).

use crate::exec::Settings;
use indexmap::IndexMap;
use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file looked for when `--config` is not given.
pub const DEFAULT_FILE: &str = "runbook.yaml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub prometheus: Option<Prometheus>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub shell: Shell,
    #[serde(default, deserialize_with = "non_empty_path")]
    pub runs_dir: Option<PathBuf>,
    /// Where run locks live (machine-wide; `durable::lock::locks_dir`).
    #[serde(default, deserialize_with = "non_empty_path")]
    pub locks_dir: Option<PathBuf>,
    /// Where runs share their locks: the files (default) or PostgreSQL
    /// (`store::StoreConfig`, docs/team.md).
    #[serde(default)]
    pub store: Option<crate::store::StoreConfig>,
    #[serde(default)]
    pub environments: IndexMap<String, Environment>,
    /// `runbook serve`'s settings.
    #[serde(default)]
    pub serve: Serve,
}

/// `serve:`: who may use `runbook serve`, and for what.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
}

/// A bearer token: its name (the identity recorded as approver), its
/// roles, and where its value is read (never the config file itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub name: String,
    pub roles: Vec<Role>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the token (surrounding whitespace ignored).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// What a token may do on `runbook serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read the run list, run pages, the JSON API.
    View,
    /// Approve or deny a waiting step or a proposal.
    Approve,
    /// Start runs (`POST /runs`, `POST /alertmanager`).
    Trigger,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::View => "view",
            Role::Approve => "approve",
            Role::Trigger => "trigger",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    pub url: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, deserialize_with = "positive_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "positive_duration")]
    pub check_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "positive_duration")]
    pub notify_timeout: Option<Duration>,
}

/// A duration that lets something finish: `timeout: 0s` would fail every
/// step at once. Refused here, so that yaml_serde points at the line.
fn positive_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let t = crate::plan::dur::option::deserialize(d)?;
    if t.is_some_and(|t| t.is_zero()) {
        return Err(serde::de::Error::custom(
            "a timeout of zero never lets anything finish: give a positive duration such as `30s`, or leave the key out for the default",
        ));
    }
    Ok(t)
}

/// A directory path that names a directory: `runs_dir: ""` names none (and
/// would put runs wherever the command happens to be started).
fn non_empty_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let p = Option::<PathBuf>::deserialize(d)?;
    if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(serde::de::Error::custom(
            "an empty directory path: give a directory, or leave the key out for the default",
        ));
    }
    Ok(p)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shell {
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub env: IndexMap<String, String>,
    #[serde(default)]
    pub output_cap: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(default)]
    pub prometheus: Option<Prometheus>,
    #[serde(default)]
    pub shell: Option<Shell>,
    #[serde(default)]
    pub defaults: Option<Defaults>,
    /// Input values for this environment (the command line wins).
    #[serde(default)]
    pub inputs: IndexMap<String, yaml_serde::Value>,
}

/// A config file that could not be used, pointing at the line.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(runbook::config))]
pub struct ConfigError {
    pub message: String,
    #[source_code]
    pub src: Option<NamedSource<String>>,
    #[label("here")]
    pub span: Option<SourceSpan>,
    #[help]
    pub help: Option<String>,
}

impl ConfigError {
    fn plain(message: String, help: Option<String>) -> Box<Self> {
        Box::new(ConfigError {
            message,
            src: None,
            span: None,
            help,
        })
    }
}

impl Config {
    /// Parses a config text; `name` is used in diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<Config, Box<ConfigError>> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        if let Err(e) = crate::yaml_depth::check(text) {
            return Err(Box::new(ConfigError {
                message: format!("{name}: {}", e.message()),
                src: Some(NamedSource::new(name, text.to_owned())),
                span: Some(SourceSpan::new(e.offset.into(), 1)),
                help: Some(crate::yaml_depth::TooDeep::HELP.into()),
            }));
        }
        yaml_serde::from_str::<Config>(text).map_err(|e| {
            let span = e.location().map(|l| {
                let start = l.index().min(text.len());
                // Underline to the end of the line.
                let end = text[start..].find('\n').map(|n| start + n).unwrap_or(text.len());
                SourceSpan::new(start.into(), end.saturating_sub(start).max(1).min(text.len() - start))
            });
            let msg = e.to_string();
            // yaml_serde appends " at line N column M": the label shows it.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            let help = if msg.contains("unknown field") {
                Some("known keys: prometheus, defaults, shell, runs_dir, locks_dir, store, environments, serve (see docs/decision-log.md)".into())
            } else {
                None
            };
            Box::new(ConfigError {
                message: format!("{name}: {msg}"),
                src: Some(NamedSource::new(name, text.to_owned())),
                span,
                help,
            })
        })
    }

    /// Loads `path`; `None` looks for `runbook.yaml` in the current
    /// directory and uses defaults if there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, Box<ConfigError>> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_FILE), false),
        };
        match crate::fs_read::read_to_string(&path, crate::fs_read::CONFIG) {
            Ok(text) => Config::parse(&path.display().to_string(), &text),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Config::default())
            }
            Err(e) => Err(ConfigError::plain(
                format!("cannot read config {}: {e}", path.display()),
                None,
            )),
        }
    }

    /// The settings for a run, with the named environment applied.
    pub fn settings(
        &self,
        env: Option<&str>,
    ) -> Result<(Settings, IndexMap<String, yaml_serde::Value>), Box<ConfigError>> {
        let mut s = Settings::default();
        let apply_defaults = |s: &mut Settings, d: &Defaults| {
            if let Some(t) = d.timeout {
                s.default_timeout = Some(t);
            }
            if let Some(t) = d.check_timeout {
                s.check_timeout = t;
            }
            if let Some(t) = d.notify_timeout {
                s.notify_timeout = t;
            }
        };
        let apply_shell = |s: &mut Settings, sh: &Shell| {
            if let Some(c) = &sh.cwd {
                s.shell_cwd = Some(c.clone());
            }
            for (k, v) in &sh.env {
                s.shell_env.insert(k.clone(), v.clone());
            }
            if let Some(c) = sh.output_cap {
                s.output_cap = c;
            }
        };
        apply_defaults(&mut s, &self.defaults);
        apply_shell(&mut s, &self.shell);
        s.prometheus_url = self.prometheus.as_ref().map(|p| p.url.clone());
        let mut inputs = IndexMap::new();
        if let Some(name) = env {
            let Some(e) = self.environments.get(name) else {
                let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                let help =
                    crate::diagnostics::did_you_mean(name, known.iter().copied()).or_else(|| {
                        Some(if known.is_empty() {
                            "the config defines no environments".into()
                        } else {
                            format!("environments: {}", known.join(", "))
                        })
                    });
                return Err(ConfigError::plain(
                    format!("unknown environment `{name}`"),
                    help,
                ));
            };
            if let Some(p) = &e.prometheus {
                s.prometheus_url = Some(p.url.clone());
            }
            if let Some(sh) = &e.shell {
                apply_shell(&mut s, sh);
            }
            if let Some(d) = &e.defaults {
                apply_defaults(&mut s, d);
            }
            inputs = e.inputs.clone();
        }
        Ok((s, inputs))
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.runs_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::durable::DEFAULT_RUNS_DIR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_applies_environment() {
        let c = Config::parse(
            "runbook.yaml",
            "prometheus:\n  url: http://127.0.0.1:9090\ndefaults:\n  timeout: 30s\nenvironments:\n  staging:\n    prometheus: { url: http://p.staging:9090 }\n    inputs: { service: api-staging }\n",
        )
        .unwrap();
        let (s, inputs) = c.settings(Some("staging")).unwrap();
        assert_eq!(s.prometheus_url.as_deref(), Some("http://p.staging:9090"));
        assert_eq!(s.default_timeout, Some(Duration::from_secs(30)));
        assert_eq!(inputs.len(), 1);
        assert!(c.settings(Some("stagin")).is_err());
    }

    #[test]
    fn unknown_key_points_at_its_line() {
        let text = "prometheus:\n  url: http://x\nshell:\n  cwdd: /tmp\n";
        let e = Config::parse("runbook.yaml", text).unwrap_err();
        assert!(e.message.contains("unknown field `cwdd`"), "{}", e.message);
        let span = e.span.unwrap();
        assert_eq!(&text[span.offset()..span.offset() + 4], "cwdd");
    }

    #[test]
    fn zero_timeouts_and_empty_dirs_point_at_their_line() {
        for (text, key) in [
            ("defaults:\n  timeout: 0s\n", "0s"),
            (
                "prometheus:\n  url: http://x\ndefaults:\n  check_timeout: 0ms\n",
                "0ms",
            ),
            (
                "environments:\n  prod:\n    defaults: { notify_timeout: 0s }\n",
                "0s",
            ),
            ("runs_dir: \"\"\n", "\"\""),
            ("locks_dir: ''\n", "''"),
        ] {
            let e = Config::parse("c.yaml", text).unwrap_err();
            assert!(
                e.message.contains("zero") || e.message.contains("empty directory"),
                "{text:?}: {}",
                e.message
            );
            let span = e.span.expect("located");
            let line = |at: usize| text[..at].matches('\n').count();
            assert_eq!(
                line(span.offset()),
                line(text.find(key).unwrap()),
                "{text:?}"
            );
        }
        assert!(Config::parse("c.yaml", "defaults:\n  timeout: 1s\nruns_dir: r\n").is_ok());
    }

    #[test]
    fn store_is_read_and_its_unknown_keys_refused() {
        let c = Config::parse(
            "c.yaml",
            "store:\n  url: postgres://rb@127.0.0.1/rb\n  lease: 5s\n  password_env: PW\n",
        )
        .unwrap();
        let store = c.store.unwrap();
        assert_eq!(store.url.as_deref(), Some("postgres://rb@127.0.0.1/rb"));
        assert_eq!(store.lease, Some(Duration::from_secs(5)));
        assert_eq!(store.password_env.as_deref(), Some("PW"));
        assert!(Config::parse("c.yaml", "store:\n  password: x\n").is_err());
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = Config::parse("c.yaml", "defaults:\n  timeout: soon\n").unwrap_err();
        assert!(e.span.is_some());
        let e = Config::parse("c.yaml", "shell:\n  output_cap: lots\n").unwrap_err();
        assert!(
            e.message.contains("output_cap") || e.message.contains("invalid"),
            "{}",
            e.message
        );
    }
}
