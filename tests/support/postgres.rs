//! A throwaway PostgreSQL cluster for integration tests.
//!
//! [`Postgres::new`] runs `initdb` from Debian's `postgresql` package (the newest
//! `/usr/lib/postgresql/<version>/bin`) into a temporary directory, starts the server with
//! `pg_ctl` on a free `127.0.0.1` port, and creates the role `portcullis` (password
//! [`PASSWORD`], no superuser, no CREATEDB, no CREATEROLE) and the database `portcullis` owned
//! by it. Every test gets its own cluster, so tests can run in parallel. The system cluster the
//! package may have created (`/var/lib/postgresql/<version>/main`, port 5432) is never used.
//!
//! The temporary directory holds `data/` (the cluster), `socket/` (the server's Unix socket)
//! and `postgres.log` (everything the server logs, see [`Postgres::log`]). The server runs
//! without durability (`fsync`, `synchronous_commit` and `full_page_writes` off): a test
//! cluster never outlives an operating-system crash.
//!
//! Authentication (`initdb --auth-local=trust --auth-host=scram-sha-256`):
//! - over TCP every role needs its password (SCRAM-SHA-256). Only `portcullis` has one; the
//!   superuser `postgres` has none, so it cannot log in over TCP at all;
//! - over the Unix socket every role is trusted. The socket lives in `socket/` inside the
//!   temporary directory, mode 0700 and owned by the user the server runs as, so no other
//!   (unprivileged) user can reach it. [`Postgres::psql`] uses it to run SQL as `postgres`.
//!
//! Running as root: `initdb` and `postgres` refuse to run as root, so when the tests run as
//! uid 0, `initdb`, `pg_ctl` and the superuser's `psql` run as the `postgres` system user (the
//! Debian package creates it) through `runuser -u postgres --`, and the temporary directory is
//! created under `/tmp` (world-traversable) and handed to that user with `chown`. Otherwise
//! everything runs as the current user under [`std::env::temp_dir`].
//!
//! Clean-up: dropping the value stops the server (`pg_ctl stop -m immediate`, bounded), prints
//! the server log if the test is panicking, and removes the directory. A watcher process (a
//! small `sh` holding a pipe to the test process) does the same if the test process dies
//! without dropping the value (killed, aborted): the pipe closes, the watcher stops the server
//! and removes the directory. Dropping the value ends the watcher first.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::freeradius::{ClientOutput, free_tcp_addr, run_bounded};

/// Password of the role `portcullis` (SCRAM-SHA-256 over TCP).
pub const PASSWORD: &str = "portcullis-test-password";

/// The role (and the database it owns) the daemon logs in as.
pub const ROLE: &str = "portcullis";

/// The cluster's superuser (`initdb -U`); it can log in over the Unix socket only.
pub const SUPERUSER: &str = "postgres";

/// The system user the server runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";
/// Where Debian installs each PostgreSQL major version (`<here>/<version>/bin`).
const DEBIAN_LIB: &str = "/usr/lib/postgresql";
/// Environment variable naming another directory holding `initdb`, `pg_ctl` and `psql`.
const BINDIR_VARIABLE: &str = "PORTCULLIS_PG_BINDIR";
/// Upper bound on `initdb`.
const INITDB_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `pg_ctl start -w` waits for the server to accept connections (`pg_ctl -t`).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `pg_ctl stop -w` waits for the server to exit (`pg_ctl -t`).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Extra time given to a `pg_ctl` process beyond its own `-t` before it is killed.
const PG_CTL_GRACE: Duration = Duration::from_secs(10);
/// Upper bound on one `psql` run.
const PSQL_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times [`Postgres::new`] retries when the picked port was taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// What the server logs when the picked TCP port is taken.
const PORT_TAKEN: &str = "Address already in use";
/// Poll interval for every wait in this module.
const POLL: Duration = Duration::from_millis(20);
/// The watcher: waits until its standard input (a pipe from the test process) closes, then
/// runs the stop command (its arguments after the directory) and removes the directory (its
/// first argument). It ignores the signals a terminal or a test runner sends to the whole
/// process group, so it outlives the test process and cleans up after it. (A server that was
/// still starting at that moment and comes up after the removal shuts itself down: the
/// postmaster checks its lock file in the data directory every minute.)
const WATCHER_SCRIPT: &str = r#"trap '' HUP INT QUIT TERM
root=$1
shift
read -r _ || :
"$@" >/dev/null 2>&1
rm -rf -- "$root"
"#;

/// A PostgreSQL cluster in its own temporary directory; see the module documentation.
#[derive(Debug)]
pub struct Postgres {
    /// Where the server listens for TCP connections (`127.0.0.1`, a free port).
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    /// Directory of `initdb`, `pg_ctl`, `psql`.
    bin: PathBuf,
    /// Whether the PostgreSQL programs run as [`SYSTEM_USER`] (the tests run as root).
    as_system_user: bool,
    /// Whether the server was started and not stopped since.
    running: bool,
    /// Cleans up if the test process dies without dropping this value.
    watcher: Option<Child>,
}

/// A bounded run of a PostgreSQL program.
type Ran = ClientOutput;

impl Postgres {
    /// Creates and starts a cluster with the role and database `portcullis`.
    ///
    /// Panics (with the server log) if `initdb` fails or the server does not accept
    /// connections within 30 s; retries on another port (at most 3 attempts) when the picked
    /// port was taken meanwhile.
    pub fn new() -> Postgres {
        let bin = bin_dir();
        let as_system_user = running_as_root();
        let base = if as_system_user {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("portcullis-postgres-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("creating a temporary directory in {base:?}: {e}"));
        let watcher = spawn_watcher(dir.path(), &bin, as_system_user);
        // From here on, dropping the value (also when a step below panics) cleans up.
        let mut postgres = Postgres {
            addr: free_tcp_addr(),
            dir,
            bin,
            as_system_user,
            running: false,
            watcher: Some(watcher),
        };
        fs::create_dir(postgres.socket_dir()).expect("creating the socket directory");
        if as_system_user {
            let mut chown = Command::new("chown");
            chown
                .arg(format!("{SYSTEM_USER}:{SYSTEM_USER}"))
                .arg(postgres.dir())
                .arg(postgres.socket_dir());
            let ran = run(&mut chown, "", PSQL_TIMEOUT);
            assert!(ran.success(), "chown to {SYSTEM_USER} failed: {ran:?}");
        }
        postgres.initdb();
        postgres.start_retrying();
        postgres.psql(
            "postgres",
            &format!(
                "CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE \
                 PASSWORD '{PASSWORD}';\n\
                 CREATE DATABASE {ROLE} OWNER {ROLE};\n"
            ),
        );
        postgres
    }

    /// `postgresql://portcullis@127.0.0.1:PORT/<db>` (the password is [`PASSWORD`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://{ROLE}@{}/{db}", self.addr)
    }

    /// The `[state]` table of a daemon node named `node` on this cluster, its password in
    /// [`password_file`] under `dir`.
    pub fn state_table(&self, dir: &Path, node: &str) -> String {
        format!(
            "[state]\nbackend = \"postgresql\"\nurl = \"{url}\"\npassword_file = \"{file}\"\n\
             node = \"{node}\"\n",
            url = self.url(ROLE),
            file = password_file(dir).display(),
        )
    }

    /// Runs `sql` (any number of statements, one after the other, outside a transaction unless
    /// it opens one) with `psql` as the superuser over the Unix socket, connected to `db`.
    /// Returns what `psql -X -q -A -t` prints: query results only, one row a line, columns
    /// separated by `|`. Panics with psql's stderr when a statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.addr.port().to_string())
            .args(["-U", SUPERUSER, "-d", db, "-f", "-"]);
        let ran = run(&mut cmd, sql, PSQL_TIMEOUT);
        assert!(
            ran.success(),
            "psql as {SUPERUSER} on {db} failed ({:?}):\n{}\nSQL:\n{sql}",
            ran.status,
            ran.stderr
        );
        ran.stdout
    }

    /// Runs `sql` like [`Postgres::psql`] but as the client a daemon is: over TCP to
    /// [`Postgres::addr`], as `user` with `password` (`PGPASSWORD`), connected to `db`. Returns
    /// psql's stdout, or its stderr (and exit status) when it fails.
    pub fn psql_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let mut cmd = Command::new(self.bin.join("psql"));
        clear_pg_environment(&mut cmd);
        cmd.env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!("postgresql://{user}@{}/{db}", self.addr))
            .args(["-f", "-"]);
        let ran = run(&mut cmd, sql, PSQL_TIMEOUT);
        if ran.success() {
            Ok(ran.stdout)
        } else {
            Err(format!("{:?}: {}", ran.status, ran.stderr))
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended, their transactions
    /// rolled back, then a clean shutdown). The port, the data and the log stay; see
    /// [`Postgres::start`]. Panics (with the log) if the server has not exited after 15 s.
    pub fn stop(&mut self) {
        let ran = self.pg_ctl_stop("fast");
        self.running = false;
        if !ran.success() {
            let immediate = self.pg_ctl_stop("immediate");
            assert!(
                immediate.success(),
                "the server did not stop: {ran:?} {immediate:?}\nserver log:\n{}",
                self.log()
            );
        }
    }

    /// Starts the stopped server again on the same port with the same data directory. Panics
    /// (with the log) if it does not accept connections within 30 s, e.g. because another
    /// process took the port while it was stopped.
    pub fn start(&mut self) {
        assert!(!self.running, "the server is already running");
        if let Err(log) = self.try_start() {
            panic!("PostgreSQL did not start again on {}:\n{log}", self.addr);
        }
    }

    /// Turns TLS on (`ssl = on`) with this certificate chain and key (PEM), copied into the
    /// cluster's directory (owned by the server's user, mode 0600), and reloads the server.
    pub fn enable_tls(&self, cert_pem: &[u8], key_pem: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        let cert = self.dir().join("server.crt");
        let key = self.dir().join("server.key");
        fs::write(&cert, cert_pem).expect("writing the server certificate");
        fs::write(&key, key_pem).expect("writing the server key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod the key");
        if self.as_system_user {
            let mut chown = Command::new("chown");
            chown
                .arg(format!("{SYSTEM_USER}:{SYSTEM_USER}"))
                .arg(&cert)
                .arg(&key);
            let ran = run(&mut chown, "", PSQL_TIMEOUT);
            assert!(ran.success(), "chown to {SYSTEM_USER} failed: {ran:?}");
        }
        self.psql(
            SUPERUSER,
            &format!(
                "ALTER SYSTEM SET ssl_cert_file = '{}'; ALTER SYSTEM SET ssl_key_file = '{}'; \
                 ALTER SYSTEM SET ssl = on;",
                cert.display(),
                key.display()
            ),
        );
        // pg_reload_conf() only signals the postmaster: a session may still see the old
        // setting for a moment, so new sessions ask until it shows (bounded).
        self.psql(SUPERUSER, "SELECT pg_reload_conf();");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut shown = self.psql(SUPERUSER, "SHOW ssl;");
        while shown.trim() != "on" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            shown = self.psql(SUPERUSER, "SHOW ssl;");
        }
        assert!(
            shown.trim() == "on",
            "TLS did not come on: {shown}\n{}",
            self.log()
        );
    }

    /// Everything the server logged so far (`pg_ctl -l`; restarts append to it).
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The temporary directory holding `data/`, `socket/` and `postgres.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's data directory (`initdb -D`, `pg_ctl -D`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    /// The directory of the server's Unix socket (`postgres -k`).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir().join("socket")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("postgres.log")
    }

    /// `initdb` into [`Postgres::data_dir`]; panics with its output on failure.
    fn initdb(&self) {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        let ran = run(&mut cmd, "", INITDB_TIMEOUT);
        assert!(ran.success(), "initdb failed: {ran:?}");
    }

    /// Start attempts on fresh ports until one succeeds or fails for another reason than a
    /// taken port.
    fn start_retrying(&mut self) {
        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            if attempt > 0 {
                self.addr = free_tcp_addr();
            }
            match self.try_start() {
                Ok(()) => return,
                Err(log) => {
                    // The port picked may have been taken by a parallel test between dropping
                    // the probe listener and the server binding it: pick again.
                    let retry = log.contains(PORT_TAKEN);
                    last_log = log;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("PostgreSQL did not start; pg_ctl and the server log:\n{last_log}");
    }

    /// One `pg_ctl start -w` on [`Postgres::addr`]; on failure returns pg_ctl's output and
    /// what the server logged during this attempt.
    fn try_start(&mut self) -> Result<(), String> {
        let logged_before = self.log().len();
        let options = format!(
            "-p {} -k {} -c listen_addresses={} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.addr.port(),
            self.socket_dir().display(),
            self.addr.ip()
        );
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t"])
            .arg(START_TIMEOUT.as_secs().to_string())
            .arg("start");
        let ran = run(&mut cmd, "", START_TIMEOUT + PG_CTL_GRACE);
        // Set even on failure: a server that came up too late is still stopped by Drop.
        self.running = true;
        if ran.success() {
            return Ok(());
        }
        // A server that failed to start, or is still starting after the timeout, is stopped
        // so the next attempt (or Drop) starts from a stopped cluster.
        let _ = self.pg_ctl_stop("immediate");
        self.running = false;
        let log = self.log();
        Err(format!(
            "pg_ctl start: {ran:?}\nserver log:\n{}",
            log.get(logged_before..).unwrap_or(&log)
        ))
    }

    /// `pg_ctl stop -m <mode> -w`, bounded.
    fn pg_ctl_stop(&self, mode: &str) -> Ran {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t"])
            .arg(STOP_TIMEOUT.as_secs().to_string())
            .arg("stop");
        run(&mut cmd, "", STOP_TIMEOUT + PG_CTL_GRACE)
    }

    /// A command running the PostgreSQL program `name` as the server's user, in the
    /// temporary directory, without the caller's `PG*` environment.
    fn command(&self, name: &str) -> Command {
        let mut cmd = server_user_command(&self.bin.join(name), self.as_system_user);
        cmd.current_dir(self.dir());
        cmd
    }

    /// Kills the postmaster of [`Postgres::data_dir`] if `postmaster.pid` names a live
    /// process whose command line holds the data directory (`pg_ctl stop` failed).
    fn kill_leftover_postmaster(&self) {
        let Ok(pid_file) = fs::read_to_string(self.data_dir().join("postmaster.pid")) else {
            return;
        };
        let Some(pid) = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let data_dir = self.data_dir();
        let ours = String::from_utf8_lossy(&cmdline).contains(&*data_dir.to_string_lossy());
        if ours {
            let mut kill = Command::new("kill");
            kill.args(["-KILL", &pid.to_string()]);
            let _ = run(&mut kill, "", PSQL_TIMEOUT);
            // The backends notice the postmaster's death and exit on their own.
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                thread::sleep(POLL);
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Always (not only when `running`): a start that timed out may have come up since.
        let ran = self.pg_ctl_stop("immediate");
        if !ran.success() {
            self.kill_leftover_postmaster();
        }
        if thread::panicking() {
            eprintln!(
                "---- PostgreSQL log ({}, {}) ----\n{}---- end of PostgreSQL log ----",
                self.addr,
                self.dir().display(),
                self.log()
            );
        }
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
        // Dropping `dir` removes the directory.
    }
}

/// Writes [`PASSWORD`] to `dir/pgpassword`, mode 0600, and returns its path: a node's
/// `password_file`.
pub fn password_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("pgpassword");
    fs::write(&file, format!("{PASSWORD}\n")).expect("write the password file");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod the password file");
    file
}

/// The directory of the PostgreSQL programs: `$PORTCULLIS_PG_BINDIR` if set, else the
/// newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BINDIR_VARIABLE) {
        return PathBuf::from(dir);
    }
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    fs::read_dir(DEBIAN_LIB)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let key = version(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((key, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| {
            panic!(
                "no {DEBIAN_LIB}/<version>/bin/initdb: install Debian's postgresql package \
                 (scripts/test-all does) or set {BINDIR_VARIABLE}"
            )
        })
}

/// Whether the test process runs as root (`id -u` prints 0).
fn running_as_root() -> bool {
    let mut id = Command::new("id");
    id.arg("-u");
    let ran = run(&mut id, "", PSQL_TIMEOUT);
    assert!(ran.success(), "id -u failed: {ran:?}");
    ran.stdout.trim() == "0"
}

/// A command running `program` as [`SYSTEM_USER`] (through `runuser`) when
/// `as_system_user`, else as the current user; without the caller's `PG*` environment.
fn server_user_command(program: &Path, as_system_user: bool) -> Command {
    let mut cmd = if as_system_user {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", SYSTEM_USER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    clear_pg_environment(&mut cmd);
    cmd
}

/// Removes every `PG*` variable (`PGHOST`, `PGPORT`, `PGDATA`, ...) from `cmd`'s environment.
fn clear_pg_environment(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            cmd.env_remove(name);
        }
    }
}

/// Starts the watcher ([`WATCHER_SCRIPT`]) for the cluster in `root`. Its standard input is
/// a pipe whose write end the returned `Child` holds (close-on-exec, so no other child
/// inherits it).
fn spawn_watcher(root: &Path, bin: &Path, as_system_user: bool) -> Child {
    let stop = server_user_command(&bin.join("pg_ctl"), as_system_user);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(WATCHER_SCRIPT)
        .arg("sh")
        .arg(root)
        .arg(stop.get_program())
        .args(stop.get_args())
        .arg("-D")
        .arg(root.join("data"))
        .args(["-m", "immediate", "-w", "-t"])
        .arg(STOP_TIMEOUT.as_secs().to_string())
        .arg("stop")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    clear_pg_environment(&mut cmd);
    cmd.spawn().expect("spawning the clean-up watcher (sh)")
}

/// Runs `cmd` with `input` on stdin, bounded by `limit`.
fn run(cmd: &mut Command, input: &str, limit: Duration) -> Ran {
    run_bounded(cmd, input, limit)
}
