//! The real adapter set: what `runbook run` (without `--dry-run`) uses.
//!
//! [`real`] builds it from plain settings (the executor maps `runbook.yaml`
//! onto [`RealSettings`]). Every setting is a *fallback*: a request that
//! carries its own working directory, base URL or timeout wins (the
//! executor normally resolves them against the config already).
//!
//! Construction cannot fail: the HTTP client (rustls with the ring
//! provider, installed here once) is built at the first request, and a
//! client that cannot be built is that request's error.

use super::approve::RealApprove;
use super::http::{install_crypto_provider, LazyClient, RealHttp};
use super::notify::RealNotify;
use super::promql::RealPromql;
use super::shell::RealShell;
use super::*;

/// Settings of the real adapters (from `runbook.yaml` and the command line).
#[derive(Debug, Clone, Default)]
pub struct RealSettings {
    /// `prometheus.url`, e.g. `http://127.0.0.1:9090`.
    pub prometheus_url: Option<String>,
    /// `shell.cwd`: working directory of shell commands.
    pub shell_cwd: Option<PathBuf>,
    /// `shell.env` (and the selected `--env`): added to the environment of
    /// shell commands.
    pub shell_env: IndexMap<String, String>,
    /// Default timeout of shell commands without one.
    pub shell_timeout: Option<Duration>,
    /// Default timeout of HTTP requests, notifications and PromQL queries
    /// without one.
    pub http_timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL of a shell's process group
    /// (`None`: [`shell::DEFAULT_GRACE`]).
    pub kill_grace: Option<Duration>,
    /// Never prompt for approvals (as if there were no terminal).
    pub no_prompt: bool,
}

/// The real adapters, sharing one HTTP connection pool.
pub fn real(settings: RealSettings) -> Adapters {
    install_crypto_provider();
    let client = LazyClient::default();
    let shell = Arc::new(RealShell {
        default_cwd: settings.shell_cwd,
        default_env: settings.shell_env,
        default_timeout: settings.shell_timeout,
        grace: settings.kill_grace.unwrap_or(shell::DEFAULT_GRACE),
    });
    let http = Arc::new(RealHttp {
        client: client.clone(),
        default_timeout: settings.http_timeout,
    });
    let promql = Arc::new(RealPromql {
        client: client.clone(),
        default_base: settings.prometheus_url,
        default_timeout: settings.http_timeout,
    });
    let notify = Arc::new(RealNotify {
        client,
        ..RealNotify::new(settings.http_timeout)
    });
    let approve = Arc::new(if settings.no_prompt {
        RealApprove::without_terminal()
    } else {
        RealApprove::new()
    });
    Adapters {
        shell: shell.clone(),
        http: http.clone(),
        promql: promql.clone(),
        notify,
        approve,
        probes: ProbeAdapters {
            shell,
            http,
            promql,
        },
        oracle: None,
    }
}
