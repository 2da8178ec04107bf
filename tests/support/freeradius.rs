//! A real FreeRADIUS 3.x server for integration tests.
//!
//! [`FreeRadius::start`] writes a minimal, self-contained configuration into a temporary
//! directory (only Debian's dictionaries under `/usr/share/freeradius` are read from the
//! system), picks free loopback ports, runs `freeradius -X -d <dir>` and waits until it is
//! ready. Everything the server prints (`-X` shows every attribute it receives and sends) is
//! captured and available through [`FreeRadius::log`]. Dropping the value kills the server and
//! removes the directory. Every test gets its own instance, so tests can run in parallel.
//!
//! The configuration answers:
//! - Access-Request with PAP or CHAP against the `users` file (`files` module), reply
//!   attributes from that file on Access-Accept, a bare Access-Reject otherwise;
//! - Status-Server on the auth port (Access-Accept);
//! - Accounting-Request on the acct port (Accounting-Response).
//!
//! `radclient` and `radtest` helpers run the FreeRADIUS command-line clients against the
//! instance with bounded timeouts.
//!
//! [`FreeRadius::start_radsec`] adds a RadSec listener (RADIUS over TLS, RFC 6614) on a free
//! loopback TCP port to the same configuration.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::pki::Issued;

/// Shared secret of the RadSec client `127.0.0.1` of [`FreeRadius::start_radsec`] (RFC 6614
/// §2.3 fixes it to "radsec").
pub const RADSEC_SECRET: &str = "radsec";

/// Shared secret of the `127.0.0.1` client in the generated configuration.
pub const DEFAULT_SECRET: &str = "testing123-portcullis";

/// Vendor id of the test vendor defined in the generated dictionary.
pub const TEST_VENDOR_ID: u32 = 17164;

/// Dictionary written to `<confdir>/dictionary`; FreeRADIUS loads it after Debian's dictionaries.
/// Pass `-d <confdir>` to `radclient` so it decodes the test vendor's attributes by name too.
pub const TEST_DICTIONARY: &str = "\
VENDOR\t\tPortcullis-Test\t\t\t17164
BEGIN-VENDOR\tPortcullis-Test
ATTRIBUTE\tPortcullis-Test-Role\t\t1\tstring
END-VENDOR\tPortcullis-Test
";

/// Password of `alice` in [`DEFAULT_USERS`].
pub const ALICE_PASSWORD: &str = "alice-password";

/// Password of `bob` in [`DEFAULT_USERS`].
pub const BOB_PASSWORD: &str = "bob-password";

/// Password of `signed` in [`DEFAULT_USERS`].
pub const SIGNED_PASSWORD: &str = "signed-password";

/// The default `users` file.
///
/// - `alice` / `alice-password` (PAP or CHAP): Access-Accept with Class "admins",
///   Filter-Id "web-ro", Reply-Message "Welcome alice", Session-Timeout 3600,
///   Portcullis-Test-Role (vendor 17164, type 1) "2" and Cisco-AVPair (vendor 9, type 1)
///   "shell:priv-lvl=15".
/// - `bob` / `bob-password`: Access-Accept with Class "operators" only.
/// - `signed` / `signed-password`: Access-Accept with Class "signed" and a Message-Authenticator.
///   FreeRADIUS 3.2.1 does not sign replies on its own; a `Message-Authenticator` item in the
///   reply list makes it compute one (HMAC-MD5, RFC 3579 §3.2).
/// - anyone else, and any wrong password: Access-Reject (with no attributes).
pub const DEFAULT_USERS: &str = r#"alice	Cleartext-Password := "alice-password"
	Class = "admins",
	Filter-Id = "web-ro",
	Reply-Message = "Welcome alice",
	Session-Timeout = 3600,
	Portcullis-Test-Role = "2",
	Cisco-AVPair = "shell:priv-lvl=15"

bob	Cleartext-Password := "bob-password"
	Class = "operators"

signed	Cleartext-Password := "signed-password"
	Class = "signed",
	Message-Authenticator = 0x00

DEFAULT	Auth-Type := Reject
"#;

/// What FreeRADIUS prints once its listeners are open.
const READY_LINE: &str = "Ready to process requests";
/// Command-line flags of `freeradius` without TLS: `-X`, i.e. single-threaded full debugging.
const FLAGS_PLAIN: &[&str] = &["-X"];
/// Command-line flags with a RadSec listener. FreeRADIUS 3.2.1 refuses TLS listeners without
/// threads ("Threading must be enabled for TLS sockets to function properly"), and `-X`
/// implies `-s` (no threads); `-fxx -l stdout` is `-X` minus `-s`.
const FLAGS_THREADED: &[&str] = &["-f", "-xx", "-l", "stdout"];
/// How long [`FreeRadius::start`] waits for [`READY_LINE`].
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times [`FreeRadius::start`] retries when the picked ports were taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// Upper bound on one `radclient` / `radtest` run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Poll interval for every wait in this module.
const POLL: Duration = Duration::from_millis(20);

/// A running FreeRADIUS server with its own configuration directory.
#[derive(Debug)]
pub struct FreeRadius {
    child: Child,
    dir: tempfile::TempDir,
    /// Command-line flags before `-d <confdir>`.
    flags: &'static [&'static str],
    /// Authentication port (Access-Request, Status-Server).
    pub auth_addr: SocketAddr,
    /// Accounting port (Accounting-Request).
    pub acct_addr: SocketAddr,
    /// Shared secret of the client `127.0.0.1`.
    pub secret: String,
    /// RadSec (RADIUS over TLS) listener of [`FreeRadius::start_radsec`]; `None` otherwise.
    pub radsec_addr: Option<SocketAddr>,
}

/// The TLS side of [`FreeRadius::start_radsec`]: PEM files to copy into the configuration.
#[derive(Debug, Clone, Copy)]
struct Radsec<'a> {
    cert_path: &'a Path,
    key_path: &'a Path,
    ca_path: &'a Path,
    require_client_cert: bool,
}

/// Result of one bounded program run (`radclient`, `radtest`, `psql`, ...).
#[derive(Debug)]
pub struct ClientOutput {
    /// Exit status; `None` when the process had to be killed after the time limit.
    pub status: Option<ExitStatus>,
    /// Everything written to stdout (`-x` prints the sent and received attributes).
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl ClientOutput {
    /// Whether the program exited with status 0 (not killed).
    pub fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// True when the client printed `Received <code>` (e.g. `Access-Accept`).
    pub fn received(&self, code: &str) -> bool {
        self.stdout.contains(&format!("Received {code} "))
    }

    /// The `State = 0x...` the client printed for the reply (panics without one).
    pub fn state(&self) -> String {
        let received = self
            .stdout
            .find("Received ")
            .map_or(&self.stdout[..], |at| &self.stdout[at..]);
        received
            .lines()
            .find_map(|l| l.trim().strip_prefix("State = "))
            .unwrap_or_else(|| panic!("no State in {self:?}"))
            .to_string()
    }
}

/// `radclient -x` sending `input` as Access-Requests to `addr` with `secret`, dictionaries
/// from `dir`, one try of 3 s, bounded by `limit`.
pub fn radclient_auth(
    dir: &Path,
    addr: SocketAddr,
    secret: &str,
    input: &str,
    limit: Duration,
) -> ClientOutput {
    let mut cmd = Command::new("radclient");
    cmd.arg("-x")
        .arg("-d")
        .arg(dir)
        .args(["-t", "3", "-r", "1"])
        .arg(addr.to_string())
        .arg("auth")
        .arg(secret);
    run_bounded(&mut cmd, input, limit)
}

impl FreeRadius {
    /// Starts a server with the given `users` file contents and [`DEFAULT_SECRET`].
    ///
    /// Panics (with the server log) if FreeRADIUS is not ready within 10 s.
    pub fn start(users: &str) -> FreeRadius {
        Self::start_with_secret(users, DEFAULT_SECRET)
    }

    /// Starts a server with the given `users` file contents and client secret.
    pub fn start_with_secret(users: &str, secret: &str) -> FreeRadius {
        Self::start_with_policy(users, secret, "")
    }

    /// Starts a server whose `authorize` section runs the unlang `policy` before the `chap`,
    /// `files` and `pap` modules (e.g. to answer some users with an Access-Challenge).
    pub fn start_with_policy(users: &str, secret: &str, policy: &str) -> FreeRadius {
        Self::start_retrying(users, secret, policy, None)
    }

    /// Starts a server like [`FreeRadius::start`] (same UDP listeners, `users` file and
    /// policy) plus a RadSec listener (RADIUS over TLS, RFC 6614) on a free `127.0.0.1` TCP
    /// port, [`FreeRadius::radsec_addr`], for Access-Requests. The listener presents
    /// `server_cert` and accepts TLS 1.2 and 1.3. With `require_client_cert` it asks for a
    /// client certificate, and ends handshakes without one or with one the CA in `ca_path`
    /// (PEM) did not sign; without it, FreeRADIUS asks for no client certificate at all. Its
    /// only client is `127.0.0.1` with secret [`RADSEC_SECRET`]. The PEM files are copied into
    /// the configuration directory, so they need not outlive this call.
    ///
    /// FreeRADIUS runs threaded (`-fxx -l stdout` instead of `-X`; the log is as verbose).
    /// Panics (with the server log) if it is not ready within 10 s.
    pub fn start_radsec(
        users: &str,
        server_cert: &Issued,
        ca_path: &Path,
        require_client_cert: bool,
    ) -> FreeRadius {
        let radsec = Radsec {
            cert_path: &server_cert.cert_path,
            key_path: &server_cert.key_path,
            ca_path,
            require_client_cert,
        };
        Self::start_retrying(users, DEFAULT_SECRET, "", Some(radsec))
    }

    /// Runs start attempts until one succeeds or fails for another reason than a taken port.
    fn start_retrying(
        users: &str,
        secret: &str,
        policy: &str,
        radsec: Option<Radsec<'_>>,
    ) -> FreeRadius {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(users, secret, policy, radsec) {
                Ok(server) => return server,
                Err(log) => {
                    // A port picked below may have been taken by a parallel test between
                    // dropping the probe socket and FreeRADIUS binding it: pick again.
                    let retry = log.contains("Error binding to port");
                    last_log = log;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("FreeRADIUS did not start; its output:\n{last_log}");
    }

    /// Stops the server (it keeps its ports, configuration and log).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the stopped server again on the same ports with the same configuration; the
    /// log starts afresh. Panics if it is not ready within 10 s.
    pub fn restart(&mut self) {
        self.stop();
        let log = fs::File::create(self.log_path()).expect("the log");
        let log_err = log.try_clone().expect("the log");
        self.child = Command::new(freeradius_binary())
            .args(self.flags)
            .arg("-d")
            .arg(self.config_dir())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .expect("spawning freeradius");
        assert!(
            self.wait_for_log(READY_LINE, START_TIMEOUT),
            "FreeRADIUS did not restart:\n{}",
            self.log()
        );
        assert!(
            self.listens_on_radsec(),
            "FreeRADIUS restarted without its RadSec listener"
        );
    }

    /// Whether the log shows the RadSec listener open (always true without one).
    fn listens_on_radsec(&self) -> bool {
        self.radsec_addr
            .is_none_or(|addr| self.log().contains(&radsec_listening_line(addr)))
    }

    /// The process id of the running server (for signals such as SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding `radiusd.conf`, `users` and `dictionary`.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("raddb")
    }

    /// Everything FreeRADIUS printed so far (stdout and stderr of `freeradius -X`).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    /// Waits (at most `timeout`) until [`FreeRadius::log`] contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Runs `radclient -x -d <confdir> -t 2 -r 1 <addr> <command> <secret>` with `input` (one
    /// `Attribute = value` per line) on stdin. `command` is `auth`, `acct`, `status`, ...
    pub fn radclient(&self, addr: SocketAddr, command: &str, input: &str) -> ClientOutput {
        let mut cmd = Command::new("radclient");
        cmd.arg("-x")
            .arg("-d")
            .arg(self.config_dir())
            .args(["-t", "2", "-r", "1"])
            .arg(addr.to_string())
            .arg(command)
            .arg(&self.secret);
        run_bounded(&mut cmd, input, CLIENT_TIMEOUT)
    }

    /// Runs `radtest -t <auth_type> <user> <password> <auth_addr> 0 <secret> 0 127.0.0.1`
    /// (`auth_type` is `pap` or `chap`).
    pub fn radtest(&self, auth_type: &str, user: &str, password: &str) -> ClientOutput {
        self.radtest_via(self.auth_addr, auth_type, user, password)
    }

    /// [`FreeRadius::radtest`] against `addr` instead of the auth port (e.g. a capture relay).
    pub fn radtest_via(
        &self,
        addr: SocketAddr,
        auth_type: &str,
        user: &str,
        password: &str,
    ) -> ClientOutput {
        let mut cmd = Command::new("radtest");
        cmd.arg("-d")
            .arg(self.config_dir())
            .args(["-t", auth_type, user, password])
            .arg(addr.to_string())
            .arg("0")
            .arg(&self.secret)
            .args(["0", "127.0.0.1"]);
        run_bounded(&mut cmd, "", CLIENT_TIMEOUT)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("freeradius.log")
    }

    /// One start attempt; on failure returns the server output.
    fn try_start(
        users: &str,
        secret: &str,
        policy: &str,
        radsec: Option<Radsec<'_>>,
    ) -> Result<FreeRadius, String> {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-freeradius-")
            .tempdir()
            .map_err(|e| format!("creating the temporary directory: {e}"))?;
        let auth_addr = free_udp_addr();
        let acct_addr = free_udp_addr();
        let radsec_addr = radsec.map(|_| free_tcp_addr());
        let raddb = dir.path().join("raddb");
        write_config(&raddb, users, secret, policy, auth_addr, acct_addr)
            .map_err(|e| format!("writing the configuration: {e}"))?;
        if let (Some(radsec), Some(addr)) = (radsec, radsec_addr) {
            add_radsec(&raddb, radsec, addr)
                .map_err(|e| format!("writing the RadSec configuration: {e}"))?;
        }
        let flags = if radsec.is_some() {
            FLAGS_THREADED
        } else {
            FLAGS_PLAIN
        };

        let log_path = dir.path().join("freeradius.log");
        let log = fs::File::create(&log_path).map_err(|e| format!("creating the log: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cloning the log handle: {e}"))?;
        let child = Command::new(freeradius_binary())
            .args(flags)
            .arg("-d")
            .arg(&raddb)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                format!("spawning freeradius (is the freeradius package installed?): {e}")
            })?;

        let mut server = FreeRadius {
            child,
            dir,
            flags,
            auth_addr,
            acct_addr,
            secret: secret.to_owned(),
            radsec_addr,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if server.log().contains(READY_LINE) {
                if server.listens_on_radsec() {
                    return Ok(server);
                }
                let mut log = server.log();
                let _ = writeln!(log, "[ready without the RadSec listener]");
                drop(server);
                return Err(log);
            }
            let exited = matches!(server.child.try_wait(), Ok(Some(_)) | Err(_));
            if exited || Instant::now() >= deadline {
                let mut log = server.log();
                if !exited {
                    let _ = writeln!(log, "[not ready after {START_TIMEOUT:?}]");
                }
                // Dropping kills and reaps the process and removes the directory.
                drop(server);
                return Err(log);
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- FreeRADIUS output ({}) ----\n{}---- end of FreeRADIUS output ----",
                self.auth_addr,
                self.log()
            );
        }
    }
}

/// `$FREERADIUS` if set, else Debian's `/usr/sbin/freeradius`, else `freeradius` from `PATH`.
fn freeradius_binary() -> PathBuf {
    system_binary("FREERADIUS", "/usr/sbin/freeradius")
}

/// The program at `$variable` if set, else `debian` (an absolute path) when it exists, else
/// its file name looked up in `PATH`.
pub fn system_binary(variable: &str, debian: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let debian = Path::new(debian);
    match debian.file_name() {
        Some(name) if !debian.exists() => PathBuf::from(name),
        _ => debian.to_path_buf(),
    }
}

/// A loopback TCP address whose port was free a moment ago.
pub fn free_tcp_addr() -> SocketAddr {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("binding a probe TCP listener on 127.0.0.1");
    listener
        .local_addr()
        .expect("local address of the probe listener")
}

/// What `freeradius -xx` prints once the RadSec listener on `addr` is open.
fn radsec_listening_line(addr: SocketAddr) -> String {
    format!(
        "Listening on auth proto tcp address {} port {} (TLS)",
        addr.ip(),
        addr.port()
    )
}

/// A loopback UDP address whose port was free a moment ago.
pub fn free_udp_addr() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a probe UDP socket on 127.0.0.1");
    socket
        .local_addr()
        .expect("local address of the probe socket")
}

/// The file at `path` as text (invalid UTF-8 replaced), empty when it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Writes `radiusd.conf`, `users`, `acct_users` and `dictionary` into `raddb`.
fn write_config(
    raddb: &Path,
    users: &str,
    secret: &str,
    policy: &str,
    auth_addr: SocketAddr,
    acct_addr: SocketAddr,
) -> std::io::Result<()> {
    fs::create_dir_all(raddb)?;
    fs::write(
        raddb.join("radiusd.conf"),
        radiusd_conf(raddb, secret, auth_addr, acct_addr).replace(
            "\tauthorize {\n\t\tchap\n",
            &format!("\tauthorize {{\n{policy}\n\t\tchap\n"),
        ),
    )?;
    fs::write(raddb.join("users"), users)?;
    fs::write(raddb.join("acct_users"), "")?;
    fs::write(raddb.join("dictionary"), TEST_DICTIONARY)?;
    Ok(())
}

/// Copies the PEM files of `radsec` to `raddb/certs` and adds the RadSec `clients` section and
/// `listen` section (see [`radsec_sections`]) to `raddb/radiusd.conf`.
fn add_radsec(raddb: &Path, radsec: Radsec<'_>, addr: SocketAddr) -> std::io::Result<()> {
    let certs = raddb.join("certs");
    fs::create_dir_all(&certs)?;
    fs::copy(radsec.cert_path, certs.join("server.pem"))?;
    fs::copy(radsec.key_path, certs.join("server-key.pem"))?;
    fs::copy(radsec.ca_path, certs.join("ca.pem"))?;
    let conf_path = raddb.join("radiusd.conf");
    let conf = fs::read_to_string(&conf_path)?;
    let (clients, listen) = radsec_sections(&certs, addr, radsec.require_client_cert);
    let anchor = "\nserver default {\n";
    assert_eq!(conf.matches(anchor).count(), 1, "one default server");
    fs::write(
        conf_path,
        conf.replace(anchor, &format!("\n{clients}{anchor}{listen}")),
    )
}

/// The RadSec `clients radsec` section (top level) and `listen` section (inside `server
/// default`), after FreeRADIUS' `sites-available/tls`: a TLS listener on `addr` for
/// Access-Requests from `127.0.0.1` with secret [`RADSEC_SECRET`], presenting
/// `certs/server.pem` and, with `require_client_cert`, demanding a client certificate signed
/// by `certs/ca.pem` (with `require_client_cert = no` FreeRADIUS 3.2.1 requests none).
fn radsec_sections(certs: &Path, addr: SocketAddr, require_client_cert: bool) -> (String, String) {
    let certs = certs.display();
    let (ip, port) = (addr.ip(), addr.port());
    let require = if require_client_cert { "yes" } else { "no" };
    let clients = format!(
        r#"clients radsec {{
	client 127.0.0.1 {{
		ipaddr = 127.0.0.1
		proto = tls
		secret = "{RADSEC_SECRET}"
		require_message_authenticator = no
		nas_type = other
	}}
}}
"#
    );
    let listen = format!(
        r#"	listen {{
		type = auth
		proto = tcp
		ipaddr = {ip}
		port = {port}
		clients = radsec
		limit {{
			max_connections = 16
			lifetime = 0
			idle_timeout = 30
		}}
		tls {{
			private_key_file = {certs}/server-key.pem
			certificate_file = {certs}/server.pem
			ca_file = {certs}/ca.pem
			fragment_size = 8192
			cipher_list = "DEFAULT"
			cipher_server_preference = no
			tls_min_version = "1.2"
			tls_max_version = "1.3"
			require_client_cert = {require}
			cache {{
				enable = no
			}}
			verify {{
			}}
		}}
	}}
"#
    );
    (clients, listen)
}

/// The generated `radiusd.conf`.
///
/// No `user`/`group` (no privilege dropping), no TLS, no EAP; modules `pap`, `chap`, `files` and
/// `always` instances `ok`, `handled` and `reject`. Access-Reject replies are emptied in `Post-Auth-Type REJECT` so
/// reply items of a user with a wrong password do not leak into the reject.
pub fn radiusd_conf(
    raddb: &Path,
    secret: &str,
    auth_addr: SocketAddr,
    acct_addr: SocketAddr,
) -> String {
    let dir = raddb.display();
    let (auth_ip, auth_port) = (auth_addr.ip(), auth_addr.port());
    let (acct_ip, acct_port) = (acct_addr.ip(), acct_addr.port());
    format!(
        r#"# Generated by tests/support/freeradius.rs
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
sbindir = /usr/sbin
libdir = /usr/lib/freeradius
localstatedir = {dir}
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
pidfile = {dir}/freeradius.pid
name = freeradius

max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no

log {{
	destination = stdout
	colourise = no
	stripped_names = no
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}}

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}}

thread pool {{
	start_servers = 1
	max_servers = 1
	min_spare_servers = 1
	max_spare_servers = 1
	max_requests_per_server = 0
}}

client localhost {{
	ipaddr = 127.0.0.1
	proto = udp
	secret = "{secret}"
	require_message_authenticator = no
	nas_type = other
}}

modules {{
	pap {{
		normalise = yes
	}}
	chap {{
	}}
	files {{
		filename = {dir}/users
		acctusersfile = {dir}/acct_users
	}}
	always ok {{
		rcode = ok
	}}
	always handled {{
		rcode = handled
	}}
	always reject {{
		rcode = reject
	}}
}}

server default {{
	listen {{
		type = auth
		ipaddr = {auth_ip}
		port = {auth_port}
	}}
	listen {{
		type = acct
		ipaddr = {acct_ip}
		port = {acct_port}
	}}
	authorize {{
		chap
		files
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
	}}
	preacct {{
		ok
	}}
	accounting {{
		ok
	}}
	post-auth {{
		ok
		Post-Auth-Type REJECT {{
			update {{
				&reply: !* ANY
			}}
			ok
		}}
	}}
}}
"#
    )
}

/// Runs `cmd` with `input` on stdin and its output captured; kills it if it has not exited
/// after `limit` (then `status` is `None` and `stderr` says so).
pub fn run_bounded(cmd: &mut Command, input: &str, limit: Duration) -> ClientOutput {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    // Written from a thread so a large input cannot block on a child that blocks on its own
    // full stdout; dropping the handle closes stdin.
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.to_owned();
        thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    });
    let stdout = child.stdout.take().map(spawn_reader);
    let stderr = child.stderr.take().map(spawn_reader);

    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    if status.is_none() {
        // A grandchild (e.g. a server started by a killed wrapper) may still hold the pipes:
        // do not wait for them; the threads end when the pipes close.
        return ClientOutput {
            status,
            stdout: String::new(),
            stderr: format!("[{program} killed after {limit:?}]"),
        };
    }
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let join = |reader: Option<thread::JoinHandle<String>>| {
        reader
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    };
    ClientOutput {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
