//! radsecproxy (Debian's `radsecproxy` 1.9.2) as a real RadSec client for integration tests.
//!
//! [`RadsecProxy::start`] writes a self-contained `radsecproxy.conf` into a temporary
//! directory: a plain RADIUS/UDP listener on a free `127.0.0.1` port for the client `127.0.0.1`
//! (secret [`CLIENT_SECRET`]), and one RadSec server (RADIUS over TLS, RFC 6614, secret
//! `radsec`) that every request (realm `*`) is forwarded to. It runs
//! `radsecproxy -f -d 5 -c <conf>` in the foreground, waits until the UDP listener is open
//! and captures everything it prints ([`RadsecProxy::log`]). Dropping the value kills the
//! proxy and removes the directory. Every test gets its own instance.
//!
//! So a UDP RADIUS client such as `radclient` ([`RadsecProxy::radclient_pap`]) reaches the
//! RadSec server under test through radsecproxy's TLS client: radsecproxy opens the TLS
//! connection, presents its client certificate, checks the server's certificate against the
//! CA and, optionally, its name.
//!
//! What radsecproxy 1.9.2 can and cannot do (checked against its manual page, changelog and
//! binary):
//! - TLS 1.2 and 1.3 through OpenSSL 3 (`TlsVersion`, [`TLS_ANY`] by default);
//! - it always presents a client certificate (the `tls` block needs one);
//! - no SNI and no `ServerName` option (both came in 1.10): the certificate name check is
//!   against the `Host` it connects to, or done with `MatchCertificateAttribute`;
//! - no ALPN, hence no RADIUS/1.1 (RFC 9765): it speaks RFC 6614 RadSec with the shared
//!   secret `radsec` only;
//! - no Status-Server towards the server here (`StatusServer off`), so the server sees only
//!   the forwarded requests; radsecproxy itself does not resend over TLS.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::freeradius::{
    ClientOutput, TEST_DICTIONARY, free_udp_addr, radclient_auth, read_lossy, system_binary,
};
use super::pki::Issued;

/// Shared secret of the UDP client `127.0.0.1` of radsecproxy.
pub const CLIENT_SECRET: &str = "testing123";

/// Shared secret radsecproxy uses towards the RadSec server (RFC 6614 §2.3).
pub const RADSEC_SECRET: &str = "radsec";

/// `TlsVersion` value allowing TLS 1.2 and TLS 1.3 (what [`RadsecProxy::start`] uses).
pub const TLS_ANY: &str = "TLS1_2:TLS1_3";

/// `TlsVersion` value for TLS 1.2 only.
pub const TLS1_2_ONLY: &str = "TLS1_2";

/// `TlsVersion` value for TLS 1.3 only.
pub const TLS1_3_ONLY: &str = "TLS1_3";

/// Name of the `server` block (radsecproxy's log names the server by it).
const SERVER_BLOCK: &str = "upstream";
/// How long [`RadsecProxy::start`] waits for the UDP listener.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times [`RadsecProxy::start`] retries when the picked port was taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// Upper bound on one `radclient` run (it tries once for 3 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Poll interval for every wait in this module.
const POLL: Duration = Duration::from_millis(20);

/// A running radsecproxy forwarding RADIUS/UDP from `127.0.0.1` to one RadSec server.
#[derive(Debug)]
pub struct RadsecProxy {
    child: Child,
    dir: tempfile::TempDir,
    /// The UDP listener for the client `127.0.0.1`.
    pub udp_addr: SocketAddr,
    /// Shared secret of the UDP client (always [`CLIENT_SECRET`]).
    pub client_secret: String,
    /// The RadSec server everything is forwarded to.
    pub upstream: SocketAddr,
}

/// What goes into the generated configuration besides the ports.
#[derive(Debug, Clone, Copy)]
struct Settings<'a> {
    upstream: SocketAddr,
    ca_path: &'a Path,
    cert_path: &'a Path,
    key_path: &'a Path,
    server_name: Option<&'a str>,
    tls_version: &'a str,
}

impl RadsecProxy {
    /// Starts radsecproxy forwarding to the RadSec server at `upstream` over TLS 1.2 or 1.3,
    /// presenting `client_cert` and trusting only the CA in `ca_path` (PEM). The PEM files are
    /// copied into the configuration directory, so they need not outlive this call.
    ///
    /// `server_name` decides the check of the server certificate's name (its chain is always
    /// checked against the CA):
    /// - `None`: `CertificateNameCheck off`, any certificate the CA signed is accepted;
    /// - `Some(ip)` with `ip` the IP address of `upstream`: `CertificateNameCheck on`, the
    ///   certificate must carry that address (SAN IP, or CN when it has no SAN);
    /// - any other `Some(name)`: `CertificateNameCheck off` plus `MatchCertificateAttribute`,
    ///   the certificate must carry `name` as a SAN IP address (when `name` is one) or a SAN
    ///   DNS name (exact, case-insensitive). radsecproxy 1.9 sends no SNI either way.
    ///
    /// Returns once the UDP listener is open; the TLS connection may still be under way (see
    /// [`RadsecProxy::wait_for_upstream`]). Panics (with the log) if radsecproxy is not ready
    /// within 10 s.
    pub fn start(
        upstream: SocketAddr,
        ca_path: &Path,
        client_cert: &Issued,
        server_name: Option<&str>,
    ) -> RadsecProxy {
        Self::start_with_tls_version(upstream, ca_path, client_cert, server_name, TLS_ANY)
    }

    /// [`RadsecProxy::start`] with radsecproxy's `TlsVersion` set to `tls_version`: a version
    /// (`TLS1_2`, `TLS1_3`, see [`TLS1_2_ONLY`], [`TLS1_3_ONLY`]) or a range `min:max`.
    pub fn start_with_tls_version(
        upstream: SocketAddr,
        ca_path: &Path,
        client_cert: &Issued,
        server_name: Option<&str>,
        tls_version: &str,
    ) -> RadsecProxy {
        let settings = Settings {
            upstream,
            ca_path,
            cert_path: &client_cert.cert_path,
            key_path: &client_cert.key_path,
            server_name,
            tls_version,
        };
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(settings) {
                Ok(proxy) => return proxy,
                Err(log) => {
                    // The port picked may have been taken by a parallel test between dropping
                    // the probe socket and radsecproxy binding it: pick again.
                    let retry = log.contains("bind failed");
                    last_log = log;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("radsecproxy did not start; its output:\n{last_log}");
    }

    /// Everything radsecproxy printed so far (`-f` logs to stderr; `-d 5` logs everything,
    /// including every TLS connection attempt and certificate check, though no attributes).
    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }

    /// Waits (at most `timeout`) until [`RadsecProxy::log`] contains `needle`.
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

    /// Waits (at most `timeout`) until radsecproxy reports its TLS connection to the server
    /// up, i.e. the handshake and its check of the server certificate passed. (With TLS 1.3
    /// the server checks the client certificate after that; see
    /// [`RadsecProxy::upstream_failed`].)
    pub fn wait_for_upstream(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.upstream_up() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Whether the log shows the TLS connection to the server up, so far.
    pub fn upstream_up(&self) -> bool {
        // "tlsconnect: TLS connection to upstream (127.0.0.1 port 2083), subject CN=x up"
        let attempt = format!(
            "tlsconnect: TLS connection to {SERVER_BLOCK} ({} port {})",
            self.upstream.ip(),
            self.upstream.port()
        );
        self.log()
            .lines()
            .any(|line| line.contains(&attempt) && line.ends_with(" up"))
    }

    /// Waits (at most `timeout`) until [`RadsecProxy::upstream_failed`].
    pub fn wait_for_upstream_failure(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.upstream_failed() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// Whether the log shows, so far, an attempt to connect to the server that failed (TCP
    /// connect, TLS handshake including the chain check of the server certificate, or the
    /// name check of the server certificate), or a connection to it that was lost (e.g. a
    /// TLS 1.3 server refusing the client certificate after the handshake). radsecproxy then
    /// tries again after 2 s, doubling up to 30 s (and reconnects after a loss after 30 s).
    pub fn upstream_failed(&self) -> bool {
        // "tlsconnect: TLS connection to upstream (127.0.0.1 port 2083) failed: TCP connect failed"
        // "tlsconnect: SSL connect to upstream (127.0.0.1 port 2083) failed"
        // "tlsconnect: certificate verification failed for upstream (127.0.0.1 port 2083)"
        // "tlsclientrd: connection to server upstream lost"
        let lost = format!("tlsclientrd: connection to server {SERVER_BLOCK} lost");
        self.log().lines().any(|line| {
            (line.contains("tlsconnect: ") && line.contains(" failed")) || line.contains(&lost)
        })
    }

    /// The directory holding `radsecproxy.conf`, the PEM files and `dictionary` (pass it to
    /// `radclient -d`, it decodes the test vendor's attributes by name then).
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `radclient -x -d <confdir> -t 3 -r 1 <udp_addr> auth <secret>` with `input` (one
    /// `Attribute = value` per line) on stdin.
    pub fn radclient(&self, input: &str) -> ClientOutput {
        radclient_auth(
            self.config_dir(),
            self.udp_addr,
            &self.client_secret,
            input,
            CLIENT_TIMEOUT,
        )
    }

    /// [`RadsecProxy::radclient`] with a PAP Access-Request for `user` with `password`
    /// (and a Message-Authenticator).
    pub fn radclient_pap(&self, user: &str, password: &str) -> ClientOutput {
        self.radclient(&format!(
            "Message-Authenticator = 0x00\nUser-Name = \"{user}\"\nUser-Password = \"{password}\"\nNAS-Identifier = \"portcullis-test\"\n"
        ))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("radsecproxy.log")
    }

    /// One start attempt; on failure returns the proxy's output.
    fn try_start(settings: Settings<'_>) -> Result<RadsecProxy, String> {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-radsecproxy-")
            .tempdir()
            .map_err(|e| format!("creating the temporary directory: {e}"))?;
        let udp_addr = free_udp_addr();
        let conf_path = write_config(dir.path(), udp_addr, settings)
            .map_err(|e| format!("writing the configuration: {e}"))?;

        let log = fs::File::create(dir.path().join("radsecproxy.log"))
            .map_err(|e| format!("creating the log: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cloning the log handle: {e}"))?;
        let child = Command::new(radsecproxy_binary())
            .args(["-f", "-d", "5", "-c"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                format!("spawning radsecproxy (is the radsecproxy package installed?): {e}")
            })?;

        let mut proxy = RadsecProxy {
            child,
            dir,
            udp_addr,
            client_secret: CLIENT_SECRET.to_owned(),
            upstream: settings.upstream,
        };
        let ready = format!("createlistener: listening for udp on {udp_addr}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if proxy.log().contains(&ready) {
                return Ok(proxy);
            }
            let exited = matches!(proxy.child.try_wait(), Ok(Some(_)) | Err(_));
            if exited || Instant::now() >= deadline {
                let mut log = proxy.log();
                if !exited {
                    let _ = writeln!(log, "[not ready after {START_TIMEOUT:?}]");
                }
                // Dropping kills and reaps the process and removes the directory.
                drop(proxy);
                return Err(log);
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for RadsecProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- radsecproxy output ({} -> {}) ----\n{}---- end of radsecproxy output ----",
                self.udp_addr,
                self.upstream,
                self.log()
            );
        }
    }
}

/// `$RADSECPROXY` if set, else Debian's `/usr/sbin/radsecproxy`, else `radsecproxy` from
/// `PATH`.
fn radsecproxy_binary() -> PathBuf {
    system_binary("RADSECPROXY", "/usr/sbin/radsecproxy")
}

/// Copies the PEM files into `dir`, writes `dictionary` (for `radclient -d`) and
/// `radsecproxy.conf`, and returns the configuration's path.
fn write_config(
    dir: &Path,
    udp_addr: SocketAddr,
    settings: Settings<'_>,
) -> std::io::Result<PathBuf> {
    let ca = dir.join("ca.pem");
    let cert = dir.join("client.pem");
    let key = dir.join("client-key.pem");
    fs::copy(settings.ca_path, &ca)?;
    fs::copy(settings.cert_path, &cert)?;
    fs::copy(settings.key_path, &key)?;
    fs::write(dir.join("dictionary"), TEST_DICTIONARY)?;
    let conf = radsecproxy_conf(udp_addr, &ca, &cert, &key, settings);
    let path = dir.join("radsecproxy.conf");
    fs::write(&path, conf)?;
    Ok(path)
}

/// The `CertificateNameCheck` line and any `MatchCertificateAttribute` line for
/// `server_name` (see [`RadsecProxy::start`]).
fn name_check(upstream: SocketAddr, server_name: Option<&str>) -> String {
    match server_name {
        None => "CertificateNameCheck off".to_owned(),
        Some(name) => match name.parse::<IpAddr>() {
            Ok(ip) if ip == upstream.ip() => "CertificateNameCheck on".to_owned(),
            Ok(ip) => format!(
                "CertificateNameCheck off\n\tMatchCertificateAttribute SubjectAltName:IP:{ip}"
            ),
            Err(_) => format!(
                "CertificateNameCheck off\n\tMatchCertificateAttribute SubjectAltName:DNS:/^{}$/",
                regex_escape(name)
            ),
        },
    }
}

/// `name` with POSIX extended regular expression metacharacters escaped.
fn regex_escape(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if "\\.^$|?*+()[]{}/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The generated `radsecproxy.conf` (syntax of radsecproxy.conf(5), version 1.9.2).
fn radsecproxy_conf(
    udp_addr: SocketAddr,
    ca: &Path,
    cert: &Path,
    key: &Path,
    settings: Settings<'_>,
) -> String {
    let (ca, cert, key) = (ca.display(), cert.display(), key.display());
    let (host, port) = (settings.upstream.ip(), settings.upstream.port());
    let host = match host {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let tls_version = settings.tls_version;
    let name_check = name_check(settings.upstream, settings.server_name);
    format!(
        r#"# Generated by tests/support/radsecproxy.rs
ListenUDP {udp_addr}

client 127.0.0.1 {{
	type udp
	secret "{CLIENT_SECRET}"
}}

tls default {{
	CACertificateFile "{ca}"
	CertificateFile "{cert}"
	CertificateKeyFile "{key}"
	TlsVersion {tls_version}
}}

server {SERVER_BLOCK} {{
	host {host}
	port {port}
	type tls
	secret "{RADSEC_SECRET}"
	tls default
	{name_check}
	StatusServer off
}}

realm * {{
	server {SERVER_BLOCK}
}}
"#
    )
}
