//! [`PgCluster`]: a real PostgreSQL server (Debian's `postgresql`
//! package) in a temporary directory, listening on 127.0.0.1 on a free
//! port, with trust authentication for the user `runbook`; stopped and
//! removed when dropped. A test that needs it FAILS when PostgreSQL is not
//! installed (`.ci/run` installs it).
//!
//! As root (CI), `initdb` and `pg_ctl` run as the `postgres` user the
//! package creates (initdb refuses root).
//!
//! `benches/store.rs` uses this file too (`#[path]`), with
//! [`PgCluster::start_durable`]: the tests run the server with
//! `fsync=off`, a benchmark against the file store's fdatasyncs must not.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct PgCluster {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// The server's `fsync` setting (off for tests, on in the benchmark).
    fsync: bool,
}

/// The newest `/usr/lib/postgresql/VERSION/bin` with `initdb` in it.
pub fn postgres_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install -y --no-install-recommends postgresql (see .ci/run)"
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl PgCluster {
    /// initdb + start; the database `postgres` is empty. `fsync=off`:
    /// a test needs a working server, not a durable one.
    pub fn start() -> PgCluster {
        PgCluster::start_with(false)
    }

    /// The same with `fsync=on` (PostgreSQL's default): commits reach the
    /// disk, as in production.
    pub fn start_durable() -> PgCluster {
        PgCluster::start_with(true)
    }

    fn start_with(fsync: bool) -> PgCluster {
        let bin = postgres_bin();
        let tmp = tempfile::Builder::new()
            .prefix("runbook-pg-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let port = free_port();
        let pg = PgCluster {
            _tmp: tmp,
            dir,
            bin,
            port,
            fsync,
        };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&pg.dir)
                .status()
                .expect("chown");
            assert!(ok.success(), "chown postgres {}", pg.dir.display());
        }
        pg.sh(&format!(
            "{}/initdb -D {}/data -A trust -U runbook --no-sync >{}/initdb.log 2>&1",
            pg.bin.display(),
            pg.dir.display(),
            pg.dir.display()
        ));
        pg.start_server();
        pg
    }

    /// [`PgCluster::start`], then `runbook store migrate` (asserted).
    pub fn migrated() -> PgCluster {
        let pg = PgCluster::start();
        let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["store", "migrate", "--store", &pg.url()])
            .current_dir(std::env::temp_dir())
            .output()
            .expect("runbook store migrate runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    /// `postgres://runbook@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://runbook@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs SQL with `psql` (as the superuser `runbook`); its stdout.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "runbook",
                "-d",
                "postgres",
            ])
            .args(["-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_server(&self) {
        self.sh(&format!(
            "{}/pg_ctl -D {d}/data -o '-c listen_addresses=127.0.0.1 -p {} -k {d} -c fsync={}' -l {d}/server.log -w start >/dev/null",
            self.bin.display(),
            self.port,
            if self.fsync { "on" } else { "off" },
            d = self.dir.display()
        ));
    }

    /// Stops the server (`-m immediate`: as a crash would).
    pub fn stop_server(&self) {
        self.sh(&format!(
            "{}/pg_ctl -D {}/data -m immediate -w stop >/dev/null",
            self.bin.display(),
            self.dir.display()
        ));
    }

    /// Turns TLS on and refuses connections without it (`hostssl` only):
    /// a CA and a server certificate for `IP:127.0.0.1` signed by it, made
    /// with the `openssl` command; restarts the server. The CA's
    /// certificate (PEM).
    pub fn require_tls(&self) -> PathBuf {
        let d = self.dir.display();
        self.sh(&format!(
            "cd {d} && exec >tls.log 2>&1 && \
             openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
               -subj '/CN=runbook test CA' -addext 'basicConstraints=critical,CA:TRUE' \
               -addext 'keyUsage=critical,keyCertSign,cRLSign' && \
             openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
               -subj '/CN=127.0.0.1' && \
             printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' \
               > server.ext && \
             openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
               -out server.crt -days 2 -extfile server.ext && \
             chmod 600 server.key && \
             printf \"ssl = on\\nssl_cert_file = '{d}/server.crt'\\nssl_key_file = '{d}/server.key'\\n\" \
               >> data/postgresql.conf && \
             printf 'local all all trust\\nhostssl all all 127.0.0.1/32 trust\\n' > data/pg_hba.conf"
        ));
        self.stop_server();
        self.start_server();
        self.dir.join("ca.crt")
    }

    /// The server's data directory (`pg_hba.conf`...).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn sh(&self, script: &str) {
        let status = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", script])
                .status()
        } else {
            Command::new("sh").args(["-c", script]).status()
        }
        .expect("sh runs");
        assert!(
            status.success(),
            "{script} failed: {}{}{}",
            std::fs::read_to_string(self.dir.join("initdb.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("tls.log")).unwrap_or_default(),
            self.log()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let script = format!(
            "{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            self.bin.display(),
            self.dir.display()
        );
        let _ = if is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &script])
                .status()
        } else {
            Command::new("sh").args(["-c", &script]).status()
        };
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits for `child` to exit; kills it and fails after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
