//! portcullis-load: the end-to-end load harness behind BENCHMARKS.md.
//!
//! ```text
//! portcullis-load radius --target 127.0.0.1:1812 --secret S --user alice --password P \
//!     [--users 1000] [--auth pap|chap] [--sockets 4] [--concurrency 64] (--duration 10 | --requests N) \
//!     [--expect accept|reject] [--watch-pid PID] [--name NAME --out-dir DIR]
//! portcullis-load radsec --target 127.0.0.1:2083 --ca ca.pem --cert client.pem --key client.key \
//!     --user alice --password P [--secret radsec] [--connections 4] [--concurrency 64] ...
//! portcullis-load login --target 127.0.0.1:8443 --user alice --password P [--connections 16] ...
//! portcullis-load argon2 [--iterations 20]
//! portcullis-load relay --listen 127.0.0.1:1812 --upstream 127.0.0.1:1813
//! portcullis-load responder --listen 127.0.0.1:1813 --secret S [--class admins]
//! portcullis-load plot-latency --out x.png --title T a.csv=label ...
//! portcullis-load plot-rss --out x.png --title T rss.csv
//! ```
//!
//! With `--users N` (N > 1) the requests cycle over the names `USER-0` .. `USER-(N-1)`, every
//! socket or connection from its own offset, instead of all being sent as `USER`.
//!
//! A run prints its summary as `key=value` lines (user names, p50/p99/p99.9 in µs, errors,
//! timeouts, RSS of the watched process, the harness' own CPU time per reply); with `--out-dir` it also writes
//! `NAME.result`, `NAME.percentiles.csv` and, when watching a process, `NAME.rss.csv`.

mod login;
mod paced;
mod plot;
mod radius;
mod radsec;
mod relay;
mod responder;
mod run;
mod stats;
mod users;

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use portcullis_protocol::radius::Code;

use run::{Length, Shared};
use stats::{Latencies, RssSample, Summary, sample_at};

#[derive(Debug, Parser)]
#[command(about = "Load harness for portcullis and FreeRADIUS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Access-Requests over UDP with K outstanding.
    Radius(RadiusArgs),
    /// Access-Requests over RadSec (RADIUS over TLS, RFC 6614) with a client certificate:
    /// K outstanding spread over N connections, framed by Length.
    Radsec(RadsecArgs),
    /// POST /api/auth/1.0/login over HTTPS on K keep-alive connections.
    Login(LoginArgs),
    /// Times argon2id verifications with the parameters of local users (19 MiB, t=2, p=1).
    Argon2 {
        /// Verifications to time.
        #[arg(long, default_value_t = 20)]
        iterations: u32,
    },
    /// A UDP relay that only moves datagrams, client -> upstream -> client, unchanged (no
    /// crypto, no parsing): the CPU floor of relaying one login. Runs until killed.
    Relay {
        /// Where clients send.
        #[arg(long)]
        listen: SocketAddr,
        /// The RADIUS server requests go to (each client through an upstream socket of its
        /// own).
        #[arg(long)]
        upstream: SocketAddr,
    },
    /// A trivial RADIUS server: an Access-Accept with a Class to every Access-Request whose
    /// Message-Authenticator (if any) verifies, and to every signed Status-Server. It checks
    /// no password: it measures the proxy in front of it, not authentication. Runs until
    /// killed.
    Responder {
        /// Where to answer.
        #[arg(long)]
        listen: SocketAddr,
        /// The shared secret.
        #[arg(long)]
        secret: String,
        /// The Class value of every Access-Accept (empty: none).
        #[arg(long, default_value = "admins")]
        class: String,
    },
    /// Plots latency by percentile: each input is `FILE.percentiles.csv[=LABEL]`.
    PlotLatency {
        /// The PNG to write.
        #[arg(long)]
        out: PathBuf,
        /// The caption.
        #[arg(long)]
        title: String,
        /// TrueType font for the labels.
        #[arg(
            long,
            default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        )]
        font: PathBuf,
        /// Inputs.
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// Plots resident memory against requests completed from a `NAME.rss.csv`.
    PlotRss {
        /// The PNG to write.
        #[arg(long)]
        out: PathBuf,
        /// The caption.
        #[arg(long)]
        title: String,
        /// TrueType font for the labels.
        #[arg(
            long,
            default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        )]
        font: PathBuf,
        /// The samples.
        input: PathBuf,
    },
}

/// Options every run takes.
#[derive(Debug, Args)]
struct Common {
    /// Run for this many seconds.
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Send this many requests in all.
    #[arg(long)]
    requests: Option<u64>,
    /// Sample VmRSS of this process (every 100 ms) before and during the run.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Name of the run in its result files.
    #[arg(long, default_value = "run")]
    name: String,
    /// Where to write NAME.result, NAME.percentiles.csv and NAME.rss.csv.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// Spread the requests over this many user names, `USER-0` .. `USER-(N-1)` (same
    /// password), each socket or connection starting at its own offset; 1 sends every
    /// request as `USER`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
}

impl Common {
    /// The user names of the run, built once.
    fn user_names(&self, user: &str) -> Arc<[String]> {
        users::names(user, usize::try_from(self.users).unwrap_or(1)).into()
    }

    fn length(&self) -> Length {
        match (self.requests, self.duration) {
            (Some(n), _) => Length::Requests(n),
            (None, Some(secs)) => Length::Duration(Duration::from_secs_f64(secs.max(0.0))),
            (None, None) => Length::Duration(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Expect {
    Accept,
    Reject,
}

#[derive(Debug, Args)]
struct RadiusArgs {
    /// Where to send Access-Requests.
    #[arg(long)]
    target: SocketAddr,
    /// The shared secret.
    #[arg(long)]
    secret: String,
    /// User-Name (the prefix of the names with `--users`).
    #[arg(long)]
    user: String,
    /// The password.
    #[arg(long)]
    password: String,
    /// PAP or CHAP.
    #[arg(long, value_enum, default_value_t = radius::Auth::Pap)]
    auth: radius::Auth,
    /// The expected answer; any other counts as an error.
    #[arg(long, value_enum, default_value_t = Expect::Accept)]
    expect: Expect,
    /// UDP sockets (source ports) the outstanding requests are spread over.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Requests outstanding at any time (K), at most 256 per socket. With `--rate`, the most
    /// outstanding.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Send this many requests per second on schedule (open loop) instead of a new one per
    /// reply; latency then counts from when a request was due.
    #[arg(long)]
    rate: Option<f64>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct RadsecArgs {
    /// The RadSec listener.
    #[arg(long)]
    target: SocketAddr,
    /// The shared secret (RFC 6614 §2.3: `radsec`).
    #[arg(long, default_value = "radsec")]
    secret: String,
    /// User-Name (the prefix of the names with `--users`).
    #[arg(long)]
    user: String,
    /// The password.
    #[arg(long)]
    password: String,
    /// PAP or CHAP.
    #[arg(long, value_enum, default_value_t = radius::Auth::Pap)]
    auth: radius::Auth,
    /// The expected answer; any other counts as an error.
    #[arg(long, value_enum, default_value_t = Expect::Accept)]
    expect: Expect,
    /// TLS connections the outstanding requests are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests outstanding at any time (K), at most 256 per connection.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// PEM bundle of the CAs that may sign the server's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// PEM client certificate (chain) presented to the server.
    #[arg(long)]
    cert: PathBuf,
    /// PEM private key of the client certificate.
    #[arg(long)]
    key: PathBuf,
    /// The name the server's certificate must carry (default: the target's address).
    #[arg(long)]
    server_name: Option<String>,
    /// Speak TLS 1.2 instead of TLS 1.3.
    #[arg(long)]
    tls12: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct LoginArgs {
    /// The API's address (HTTPS).
    #[arg(long)]
    target: SocketAddr,
    /// User name (the prefix of the names with `--users`).
    #[arg(long)]
    user: String,
    /// Password.
    #[arg(long)]
    password: String,
    /// Keep-alive connections, each with one login outstanding (K).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    match real_main(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> Result<(), Box<dyn Error>> {
    match cli.command {
        Command::Radius(args) => {
            let target = radius::Target {
                addr: args.target,
                secret: args.secret.into_bytes(),
                users: args.common.user_names(&args.user),
                password: args.password.into_bytes(),
                auth: args.auth,
                expect: match args.expect {
                    Expect::Accept => Code::AccessAccept,
                    Expect::Reject => Code::AccessReject,
                },
                timeout: Duration::from_secs_f64(args.common.timeout),
                rate: args.rate,
            };
            let (sockets, concurrency) = (args.sockets, args.concurrency);
            measure(&args.common, |shared| {
                let t = radius::run(&target, sockets, concurrency, shared)?;
                Ok((t.ok, t.errors, t.timeouts, t.latencies, t.last, t.stray))
            })
        }
        Command::Radsec(args) => {
            let target = radius::Target {
                addr: args.target,
                secret: args.secret.into_bytes(),
                users: args.common.user_names(&args.user),
                password: args.password.into_bytes(),
                auth: args.auth,
                expect: match args.expect {
                    Expect::Accept => Code::AccessAccept,
                    Expect::Reject => Code::AccessReject,
                },
                timeout: Duration::from_secs_f64(args.common.timeout),
                rate: None,
            };
            let tls = radsec::Tls {
                ca: args.ca,
                cert: args.cert,
                key: args.key,
                server_name: args.server_name,
                tls12: args.tls12,
            };
            let (connections, concurrency) = (args.connections, args.concurrency);
            measure(&args.common, |shared| {
                let t = radsec::run(&target, &tls, connections, concurrency, shared)?;
                Ok((t.ok, t.errors, t.timeouts, t.latencies, t.last, t.stray))
            })
        }
        Command::Login(args) => {
            let target = login::Target {
                addr: args.target,
                users: args.common.user_names(&args.user),
                password: args.password,
                timeout: Duration::from_secs_f64(args.common.timeout),
            };
            let connections = args.connections;
            measure(&args.common, |shared| {
                let t = login::run(&target, connections, shared)?;
                Ok((t.ok, t.errors, 0, t.latencies, t.last, 0))
            })
        }
        Command::Argon2 { iterations } => argon2_cost(iterations),
        Command::Relay { listen, upstream } => {
            let relay = relay::Relay::bind(listen, upstream)?;
            eprintln!(
                "relay: {} -> {upstream}",
                relay.local_addr().map_or(listen, |a| a)
            );
            Ok(relay.run()?)
        }
        Command::Responder {
            listen,
            secret,
            class,
        } => {
            let responder =
                responder::Responder::bind(listen, secret.into_bytes(), Some(class.into_bytes()))?;
            eprintln!(
                "responder: answering on {}",
                responder.local_addr().map_or(listen, |a| a)
            );
            Ok(responder.run()?)
        }
        Command::PlotLatency {
            out,
            title,
            font,
            inputs,
        } => {
            plot::load_font(&font)?;
            let mut series = Vec::new();
            for input in inputs {
                let (path, label) = match input.split_once('=') {
                    Some((path, label)) => (path.to_string(), label.to_string()),
                    None => (input.clone(), input.clone()),
                };
                let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                series.push(plot::Series {
                    label,
                    points: plot::read_csv(&text, (0, 1)),
                });
            }
            plot::latency(&out, &title, &series)
        }
        Command::PlotRss {
            out,
            title,
            font,
            input,
        } => {
            plot::load_font(&font)?;
            let text = fs::read_to_string(&input)?;
            plot::rss(&out, &title, &plot::read_csv(&text, (1, 2)))
        }
    }
}

type Measured = (u64, u64, u64, Latencies, Option<Instant>, u64);

/// Runs `drive` under the common options: samples memory, summarises, writes the files.
fn measure(
    common: &Common,
    drive: impl FnOnce(&Arc<Shared>) -> std::io::Result<Measured>,
) -> Result<(), Box<dyn Error>> {
    let rss_idle_kib = common.watch_pid.and_then(run::rss_now);
    let cpu_before = run::own_cpu_ticks();
    let shared = Shared::new(common.length());
    let done = Arc::new(AtomicBool::new(false));
    let sampler = common.watch_pid.map(|pid| {
        run::sample_rss(
            pid,
            Arc::clone(&shared),
            Duration::from_millis(100),
            Arc::clone(&done),
        )
    });
    let result = drive(&shared);
    shared.finish();
    done.store(true, Ordering::Relaxed);
    let samples: Vec<RssSample> = sampler
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default();
    let (ok, errors, timeouts, latencies, last, stray) = result?;
    let total = ok + errors + timeouts;
    let summary = Summary {
        users: common.users,
        ok,
        errors,
        timeouts,
        elapsed: last.map_or(Duration::ZERO, |last| last - shared.started()),
        latencies,
        rss_idle_kib,
        rss_peak_kib: samples.iter().map(|s| s.rss_kib).max(),
        rss_at_10pct_kib: sample_at(&samples, total, 0.1).map(|s| s.rss_kib),
        rss_end_kib: samples.last().map(|s| s.rss_kib),
    };
    let mut kv = summary.to_kv(&common.name);
    // Datagrams that answered no request in flight (late answers after a timeout): ignored.
    let _ = writeln!(kv, "stray={stray}");
    // The harness' own CPU time: it shares the machine with what it measures.
    if let (Some(before), Some(after)) = (cpu_before, run::own_cpu_ticks()) {
        let ms = after.saturating_sub(before) as f64 * 1000.0 / run::USER_HZ;
        let _ = writeln!(kv, "load_cpu_ms={ms:.0}");
        if ok > 0 {
            let _ = writeln!(kv, "load_cpu_us_per_req={:.1}", ms * 1000.0 / ok as f64);
        }
    }
    print!("{kv}");
    if let Some(dir) = &common.out_dir {
        fs::create_dir_all(dir)?;
        write(dir, &format!("{}.result", common.name), &kv)?;
        write(
            dir,
            &format!("{}.percentiles.csv", common.name),
            &summary.latencies.percentile_csv(),
        )?;
        if !samples.is_empty() {
            let mut csv = String::from("at_ms,completed,rss_kib\n");
            for s in &samples {
                let _ = writeln!(csv, "{},{},{}", s.at_ms, s.completed, s.rss_kib);
            }
            write(dir, &format!("{}.rss.csv", common.name), &csv)?;
        }
    }
    if ok == 0 {
        return Err(format!("no request succeeded ({errors} errors, {timeouts} timeouts)").into());
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    fs::write(dir.join(name), text)
}

/// Times `iterations` argon2id verifications of a hash made with the local users' parameters.
fn argon2_cost(iterations: u32) -> Result<(), Box<dyn Error>> {
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"portcullis-load!").map_err(|e| e.to_string())?;
    let hash = argon2
        .hash_password(b"bench-password", &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
    let mut latencies = Latencies::new();
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        argon2
            .verify_password(b"bench-password", &parsed)
            .map_err(|e| e.to_string())?;
        latencies.record(started.elapsed());
    }
    println!("argon2_verifications={}", latencies.len());
    println!("argon2_mean_us={:.0}", latencies.mean_us());
    println!("argon2_p50_us={:.0}", latencies.percentile_us(50.0));
    Ok(())
}
