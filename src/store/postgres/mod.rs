//! The PostgreSQL store (`tokio-postgres`, no TLS: use it on loopback or a
//! trusted network, see docs/team.md).
//!
//! * [`PgStore::migrate`]: the embedded, versioned migrations
//!   ([`MIGRATIONS`]), applied in one transaction under an advisory lock
//!   and recorded in `runbook_schema`; a run refuses a store whose schema
//!   is not the one this binary knows.
//! * [`Lease`]: a run lock as a row of `runbook_locks` with a lease and a
//!   fencing epoch, held by a thread of its own that renews it every third
//!   of the lease and calls the run's `on_lost` when it cannot.

pub mod approvals;
pub mod journal;
mod lease;
pub mod queue;
pub mod runs;
pub mod serve;
pub mod takeover;
mod tls;

pub use journal::PgJournal;
pub use lease::Lease;

use super::{StoreConfig, DEFAULT_LEASE, PASSWORD_ENV};
use crate::durable::approvals::ApprovalBox;
use crate::events::redact::Redactor;
use std::str::FromStr;
use std::time::Duration;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "locks", include_str!("migrations/0001_locks.sql")),
    (2, "queue", include_str!("migrations/0002_queue.sql")),
    (3, "journal", include_str!("migrations/0003_journal.sql")),
    (
        4,
        "approvals",
        include_str!("migrations/0004_approvals.sql"),
    ),
    (5, "takeover", include_str!("migrations/0005_takeover.sql")),
    (6, "serve", include_str!("migrations/0006_serve.sql")),
    (7, "machine", include_str!("migrations/0007_machine.sql")),
];

/// The schema version this binary needs.
pub fn schema_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// A PostgreSQL store: where to connect, how (the password kept out of
/// every message), and the lease of run locks.
#[derive(Clone)]
pub struct PgStore {
    config: tokio_postgres::Config,
    url: String,
    redactor: Redactor,
    lease: Duration,
    /// How long a run's heartbeat may be silent before it is orphaned.
    grace: Duration,
    /// `poll:`: how often to look anyway, in case a `NOTIFY` was lost.
    poll: Option<Duration>,
    /// TLS (`sslmode=require` in the URL, or `ca_file:`); `None`: plain.
    tls: Option<tls::Rustls>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.url)
    }
}

impl PgStore {
    /// Parses `url` (a password in it is refused) and reads the password
    /// from the environment variable or file the config names.
    pub fn new(url: &str, settings: &StoreConfig) -> Result<PgStore, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "store `{}`: not a PostgreSQL URL (postgres://USER@HOST:PORT/DB), nor `files`",
                shown_url(url)
            ));
        }
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("store `{}`: {e}", shown_url(url)))?;
        if config.get_password().is_some() {
            return Err(format!(
                "store `{}`: a password in the URL would be shown in messages and in `ps`; \
                 give it in ${PASSWORD_ENV} or `password_file:` in runbook.yaml",
                shown_url(url)
            ));
        }
        let password = password(settings)?;
        if let Some(p) = &password {
            config.password(p.as_bytes());
        }
        config.connect_timeout(Duration::from_secs(10));
        let tls = match (config.get_ssl_mode(), &settings.ca_file) {
            (tokio_postgres::config::SslMode::Require, ca) | (_, ca @ Some(_)) => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Some(tls::Rustls::new(ca.as_deref())?)
            }
            _ => None,
        };
        config.application_name("runbook");
        let lease = settings.lease.unwrap_or(DEFAULT_LEASE);
        if lease < Duration::from_millis(300) {
            return Err("store `lease:` must be at least 300ms".to_owned());
        }
        if settings.poll.is_some_and(|p| p < Duration::from_millis(10)) {
            return Err("store `poll:` must be at least 10ms".to_owned());
        }
        let store = PgStore {
            config,
            url: url.to_owned(),
            redactor: Redactor::new(password.as_deref()),
            lease,
            grace: lease,
            poll: settings.poll,
            tls,
        };
        match settings.grace {
            Some(grace) => store.with_grace(grace),
            None => Ok(store),
        }
    }

    /// The store with another grace (`--grace`): how long a run's
    /// heartbeat may be silent before the run is orphaned. Never shorter
    /// than the lease: by then the dead owner's lock has run out too, so
    /// the lock moves with the run.
    pub fn with_grace(mut self, grace: Duration) -> Result<PgStore, String> {
        if grace < self.lease {
            return Err(format!(
                "store grace {} is shorter than its lease {}: a run is orphaned only once its lock's lease ran out",
                humantime::format_duration(grace),
                humantime::format_duration(self.lease)
            ));
        }
        self.grace = grace;
        Ok(self)
    }

    /// How long a run's heartbeat may be silent before it is orphaned.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// How often a worker looks for requests in case a `NOTIFY
    /// runbook_queue` was lost: `poll:`, else a third of the lease.
    pub fn queue_poll(&self) -> Duration {
        self.poll.unwrap_or(self.lease / 3)
    }

    /// How often a run waiting on an approval reads its row in case a
    /// `NOTIFY runbook_approvals` was lost: `poll:`, else
    /// [`approvals::POLL`].
    pub fn approval_poll(&self) -> Duration {
        self.poll.unwrap_or(approvals::POLL)
    }

    /// The URL (it has no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A message about the store, with the password (if it ever shows)
    /// redacted.
    fn message(&self, what: &str, e: impl std::fmt::Display) -> String {
        let text = format!("store {}: {what}: {e}", self.url);
        self.redactor.redact_if_needed(&text).unwrap_or(text)
    }

    /// A message about a failed query: the server's error in full
    /// (tokio-postgres's `Display` says only "db error").
    fn db_message(&self, what: &str, e: &tokio_postgres::Error) -> String {
        let text = match e.as_db_error() {
            Some(db) => format!("store {}: {what}: {db}", self.url),
            None => {
                // "invalid configuration" says little without its cause
                // ("password missing"...).
                let mut text = format!("store {}: {what}: {e}", self.url);
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                if self.config.get_password().is_none() && text.ends_with("password missing") {
                    text.push_str(&format!(
                        " (the server asks for one: give it in ${PASSWORD_ENV}, or the variable \
                         `password_env:` names, or `password_file:` under `store:`)"
                    ));
                }
                text
            }
        };
        self.redactor.redact_if_needed(&text).unwrap_or(text)
    }

    /// Connects; the connection is driven by a task on the current runtime.
    async fn connect(&self) -> Result<tokio_postgres::Client, String> {
        self.open(None).await
    }

    /// Connects (with TLS if the store says so); the connection is driven
    /// by a task on the current runtime, which sends a message on
    /// `notify` (if any) for each notification it receives.
    async fn open(
        &self,
        notify: Option<tokio::sync::mpsc::UnboundedSender<()>>,
    ) -> Result<tokio_postgres::Client, String> {
        let fail = |e| self.db_message("cannot connect", &e);
        Ok(match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(fail)?;
                tokio::spawn(drive(connection, notify));
                client
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(fail)?;
                tokio::spawn(drive(connection, notify));
                client
            }
        })
    }

    /// Applies the migrations the database lacks; returns (the version it
    /// was at, the version it is at).
    pub fn migrate(&self) -> Result<(i32, i32), String> {
        block_on(async {
            let mut client = self.connect().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.db_message("migrate", &e))?;
            let fail = |e: tokio_postgres::Error| self.db_message("migrate", &e);
            // One migrator at a time (a constant key of this program's own).
            tx.execute("SELECT pg_advisory_xact_lock(7262115150)", &[])
                .await
                .map_err(fail)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS runbook_schema (
                     version integer PRIMARY KEY,
                     name text NOT NULL,
                     applied timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(fail)?;
            let before: i32 = tx
                .query_one("SELECT coalesce(max(version), 0) FROM runbook_schema", &[])
                .await
                .map_err(fail)?
                .get(0);
            if before > schema_version() {
                return Err(self.message(
                    "migrate",
                    format!(
                        "the schema is at version {before}, newer than this binary's {}: use a newer runbook",
                        schema_version()
                    ),
                ));
            }
            for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > before) {
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| self.db_message(&format!("migration {version} ({name})"), &e))?;
                tx.execute(
                    "INSERT INTO runbook_schema (version, name) VALUES ($1, $2)",
                    &[version, name],
                )
                .await
                .map_err(fail)?;
            }
            tx.commit().await.map_err(fail)?;
            Ok((before, schema_version()))
        })?
    }

    /// Refuses a database whose schema is not this binary's.
    async fn check_schema(&self, client: &tokio_postgres::Client) -> Result<(), String> {
        let version: i32 = match client
            .query_one("SELECT coalesce(max(version), 0) FROM runbook_schema", &[])
            .await
        {
            Ok(row) => row.get(0),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
            Err(e) => return Err(self.db_message("reading the schema version", &e)),
        };
        if version == schema_version() {
            return Ok(());
        }
        let fix = if version < schema_version() {
            format!("run `runbook store migrate --store {}` first", self.url)
        } else {
            "use the newer runbook that migrated it".to_owned()
        };
        Err(format!(
            "store {}: its schema is at version {version}, this runbook needs version {}: {fix}",
            self.url,
            schema_version()
        ))
    }
}

impl super::Store for PgStore {
    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.url)
    }

    fn lock(
        &self,
        key: &str,
        run_id: &str,
        _break_stale: bool,
        on_lost: Box<dyn FnOnce() + Send>,
    ) -> Result<super::RunLock, String> {
        Lease::acquire(self.clone(), key, run_id, on_lost).map(super::RunLock::Postgres)
    }

    fn journal(
        &self,
        run: &super::JournalRun<'_>,
    ) -> Result<Option<Box<dyn crate::events::Sink>>, String> {
        PgJournal::open(self.clone(), run)
            .map(|j| Some(Box::new(j) as Box<dyn crate::events::Sink>))
    }

    fn approvals(&self, _run_dir: &std::path::Path) -> std::sync::Arc<dyn ApprovalBox> {
        std::sync::Arc::new(approvals::PgApprovals::new(self.clone()))
    }
}

/// Drives a connection until it ends: a message on `notify` (if any) for
/// each notification, until nobody listens.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notify: Option<tokio::sync::mpsc::UnboundedSender<()>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::future::poll_fn;
    use tokio_postgres::AsyncMessage;
    while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
        if let (AsyncMessage::Notification(_), Some(tx)) = (&message, &notify) {
            if tx.send(()).is_err() {
                break;
            }
        }
    }
}

/// The password: the config's environment variable (or
/// `RUNBOOK_STORE_PASSWORD`), else the config's file (first line).
fn password(settings: &StoreConfig) -> Result<Option<String>, String> {
    let var = settings.password_env.as_deref().unwrap_or(PASSWORD_ENV);
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return p
            .into_string()
            .map(Some)
            .map_err(|_| format!("${var} is not UTF-8"));
    }
    match &settings.password_file {
        Some(path) => {
            let text = crate::fs_read::read_to_string(path, crate::fs_read::INPUTS)
                .map_err(|e| format!("store password_file {}: {e}", path.display()))?;
            Ok(Some(text.lines().next().unwrap_or("").to_owned()))
        }
        None => Ok(None),
    }
}

/// A URL for a message: its `user:password@` part reduced to `user@`.
fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Starts a thread named `name` that runs `f` on a current-thread runtime
/// of its own; if that runtime cannot be built, `failed` gets the reason.
fn spawn_on_runtime<F>(
    name: &str,
    failed: impl FnOnce(String) + Send + 'static,
    f: impl FnOnce() -> F + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, String>
where
    F: std::future::Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(f()),
                Err(e) => failed(format!("cannot start a runtime for the store: {e}")),
            }
        })
        .map_err(|e| format!("cannot start the thread {name}: {e}"))
}

/// Runs a future on a current-thread runtime of its own (for callers
/// outside any runtime: the CLI, a session being set up).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime for the store: {e}"))?;
    Ok(rt.block_on(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        let e = PgStore::new(
            "postgres://ops:hunter2@127.0.0.1:5432/rb",
            &StoreConfig::default(),
        )
        .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("ops:***@127.0.0.1"), "{e}");
        assert!(e.contains(PASSWORD_ENV), "{e}");
    }

    #[test]
    fn only_postgres_urls_are_stores() {
        let e = PgStore::new("mysql://a@b/c", &StoreConfig::default()).unwrap_err();
        assert!(e.contains("not a PostgreSQL URL"), "{e}");
    }

    #[test]
    fn shown_url_keeps_urls_without_password() {
        assert_eq!(shown_url("postgres://u@h:1/d"), "postgres://u@h:1/d");
        assert_eq!(shown_url("postgres://u:p@h/d"), "postgres://u:***@h/d");
    }
}
