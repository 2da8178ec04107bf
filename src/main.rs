//! `portcullis`: the authentication gateway daemon and its command-line tools.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::daemon::{Listeners, Server};
use portcullis::engine::{Decision, Engine, Outcome};
use portcullis_config::{Config, DEFAULT_PATH, Loaded};

/// Exit status for a rejected login.
const EXIT_REJECT: u8 = 1;
/// Exit status for bad usage or an unusable configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit status for a login no method could answer.
const EXIT_UNAVAILABLE: u8 = 3;

/// The reference part of `serve --help` and its man page.
const SERVE_HELP: &str = "\
Signals:
  SIGHUP   re-read and validate the configuration file; an invalid file is refused with a
           log line and the running configuration stays
  SIGTERM  stop accepting, give logins in flight up to 10 s, exit 0 (SIGINT alike)

Environment:
  PORTCULLIS_ADMIN_PASSWORD  password of the bootstrap administrator `admin` when the
                             configuration file does not exist (else one is generated and
                             written to <state-dir>/bootstrap-admin-password, mode 0600)
  RUST_LOG                   log filter; wins over the configuration's logging.level
  NOTIFY_SOCKET              systemd readiness: READY=1, STATUS=, STOPPING=1
  WATCHDOG_USEC              systemd watchdog: WATCHDOG=1 every half of it
  JOURNAL_STREAM             set by systemd: log lines carry <priority> and no timestamp

Files:
  /etc/portcullis/portcullis.toml      the configuration (written by the API, mode 0600)
  /var/lib/portcullis/portcullis.db    state: audit log, MFA, counters (SQLite)
  /var/lib/portcullis/tls/             the API's certificate and key

HTTP:
  GET /metrics                Prometheus text format ([metrics] allow)
  GET /api/audit/1.0/events   the audit log (Administrator)
  GET /api/openapi.json       every other route";

/// Authentication gateway: may this user log in, and with which roles?
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: load the configuration (the embedded default when the file does not
    /// exist; the first API write creates it), serve the HTTPS API, run until SIGTERM or
    /// SIGINT.
    #[command(after_long_help = SERVE_HELP)]
    Serve {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
        /// State directory: the TLS certificate and key, and the state database.
        #[arg(long, default_value = "/var/lib/portcullis")]
        state_dir: PathBuf,
        /// Address of the HTTPS API; defaults to the configuration's `listeners.api`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// UDP address of the RADIUS front-end (repeatable); replaces the configuration's
        /// `listeners.radius_frontend`.
        #[arg(long = "radius-listen", value_name = "ADDR")]
        radius_listen: Vec<std::net::SocketAddr>,
        /// Also serve the API over plain HTTP on this Unix socket (mode 0660), for services on
        /// the same machine.
        #[arg(long = "unix-socket", value_name = "PATH")]
        unix_socket: Option<PathBuf>,
    },
    /// Validate a configuration file and list every problem with the key it concerns.
    CheckConfig {
        /// Configuration file.
        #[arg(default_value = DEFAULT_PATH)]
        path: PathBuf,
    },
    /// Read a password (from the terminal without echo, or one line of standard input) and
    /// print its argon2id hash for a local user's `password_hash`.
    HashPassword,
    /// Run the configured authentication sequence once for USER and print the method, server,
    /// result, roles, reason and latency.
    Login {
        /// The user to log in.
        user: String,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Move the configuration between a file and the state database the nodes share
    /// (`[state] backend = "postgresql"`).
    #[command(subcommand)]
    Config(ConfigAction),
    /// Write the man pages (portcullis.8 and portcullis-COMMAND.8) into DIR.
    #[command(hide = true)]
    Man {
        /// Where to write them.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print the shared configuration (the newest version in the state database) as TOML,
    /// secrets included.
    Export {
        /// This node's configuration file (its `[state]` says where the database is).
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
        /// Write it to this file (created mode 0600) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Validate FILE and store it (all but its `listeners` and `state`) as the newest version
    /// in the state database: every node makes it live within moments.
    Import {
        /// The configuration to store.
        file: PathBuf,
        /// This node's configuration file (its `[state]` says where the database is).
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    portcullis::telemetry::init_logging(default_level);
    let code = match cli.command {
        Command::Serve {
            config,
            state_dir,
            listen,
            radius_listen,
            unix_socket,
        } => serve(
            &config,
            &state_dir,
            listen,
            &radius_listen,
            unix_socket.as_deref(),
        ),
        Command::CheckConfig { path } => check_config(&path),
        Command::HashPassword => hash_password(),
        Command::Login {
            user,
            password_stdin,
            config,
        } => login(&user, password_stdin, &config),
        Command::Config(action) => config_command(action),
        Command::Man { dir } => man(&dir),
    };
    portcullis::telemetry::flush_logs();
    code
}

/// `portcullis config export|import`.
fn config_command(action: ConfigAction) -> ExitCode {
    use portcullis::state::config::{ConfigState, Stored};
    let local_path = match &action {
        ConfigAction::Export { config, .. } | ConfigAction::Import { config, .. } => config,
    };
    let Some(local) = load_config(local_path) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    if !local.state.is_shared() {
        eprintln!(
            "{}: [state] backend is not \"postgresql\": this node's configuration is the file itself",
            local_path.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    // The state directory is only the SQLite backend's.
    let db = match portcullis::state::StateDb::open_configured(&local.state, Path::new("/")) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    let latest = match db.latest_config() {
        Ok(latest) => latest,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
    };
    match action {
        ConfigAction::Export { output, .. } => {
            let Some(latest) = latest else {
                eprintln!("portcullis: the state database holds no configuration yet");
                return ExitCode::from(EXIT_CONFIG);
            };
            let text = format!(
                "# portcullis shared configuration, version {} (stored by {})\n{}",
                latest.version, latest.node, latest.document
            );
            match output {
                Some(path) => match write_new_private(&path, &text) {
                    Ok(()) => eprintln!("version {} written to {}", latest.version, path.display()),
                    Err(e) => {
                        eprintln!("{}: {e}", path.display());
                        return ExitCode::from(EXIT_CONFIG);
                    }
                },
                None => print!("{text}"),
            }
            ExitCode::SUCCESS
        }
        ConfigAction::Import { file, .. } => {
            let Some(imported) = load_config(&file) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            let document = match imported.shared_part().to_toml() {
                Ok(document) => document,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let from = latest.map_or(0, |l| l.version);
            match db.store_config(from, &document) {
                Ok(Stored::Done(version)) => {
                    eprintln!("stored as version {version}; every node makes it live");
                    ExitCode::SUCCESS
                }
                Ok(Stored::Conflict) => {
                    eprintln!(
                        "portcullis: the configuration changed while importing; nothing was stored, run it again"
                    );
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(e) => {
                    eprintln!("portcullis: {e}");
                    ExitCode::from(EXIT_UNAVAILABLE)
                }
            }
        }
    }
}

/// Creates `path` (it must not exist) with mode 0600 and writes `text`.
fn write_new_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Loads `path`, printing errors and warnings; `None` when it is unusable.
fn load_config(path: &Path) -> Option<Config> {
    match portcullis_config::load(path) {
        Ok(Loaded { config, warnings }) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            Some(config)
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            None
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            None
        }
    }
}

fn serve(
    path: &Path,
    state_dir: &Path,
    listen: Option<std::net::SocketAddr>,
    radius_listen: &[std::net::SocketAddr],
    unix_socket: Option<&Path>,
) -> ExitCode {
    let config = if path.exists() {
        load_config(path)
    } else {
        bootstrap_config(path, state_dir)
    };
    let Some(config) = config else {
        return ExitCode::from(EXIT_CONFIG);
    };
    portcullis::telemetry::set_level(&config.logging.level);
    portcullis::daemon::warn_unprotected_upstreams(&config);
    let Some(rt) = runtime() else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let notifier = std::sync::Arc::new(portcullis::daemon::Notifier::from_env());
    let listeners = Listeners {
        api: listen,
        radius: radius_listen.to_vec(),
        unix_socket: unix_socket.map(Path::to_path_buf),
    };
    rt.block_on(async {
        let server = match Server::bind(path, config, state_dir, listeners).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("portcullis: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        // SIGHUP reloads; SIGTERM or SIGINT stops every server.
        let signals = match portcullis::daemon::Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("portcullis: cannot install signal handlers: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(portcullis::daemon::handle_signals(
            signals,
            server.store(),
            std::sync::Arc::clone(&notifier),
            stop,
        ));
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        match server.run(notifier, shutdown).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("portcullis: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
        }
    })
}

/// The file under the state directory that holds a generated bootstrap password.
const BOOTSTRAP_PASSWORD_FILE: &str = "bootstrap-admin-password";

/// The embedded default for a missing configuration file: loopback listener, "Local only",
/// and a bootstrap `admin` whose password comes from `PORTCULLIS_ADMIN_PASSWORD` or is
/// generated and written to `state_dir/bootstrap-admin-password` (mode 0600; the log names
/// the file, never the password, which would stay readable in the journal).
fn bootstrap_config(path: &Path, state_dir: &Path) -> Option<Config> {
    let mut config = Config::default();
    // The RADIUS front-end answers on loopback only; it drops every request until a client
    // is configured.
    config.listeners.radius_frontend = vec![std::net::SocketAddr::from((
        std::net::Ipv4Addr::LOCALHOST,
        1812,
    ))];
    let (password, generated) = match std::env::var("PORTCULLIS_ADMIN_PASSWORD") {
        Ok(password) if !password.is_empty() => (password, false),
        _ => {
            let mut random = [0u8; 18];
            if let Err(e) = getrandom::fill(&mut random) {
                eprintln!("portcullis: random number generator: {e}");
                return None;
            }
            use base64::Engine as _;
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random),
                true,
            )
        }
    };
    let hash = match portcullis::engine::local::hash_password(password.as_bytes()) {
        Ok(hash) => hash,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return None;
        }
    };
    config.local_users.push(portcullis_config::LocalUser {
        name: "admin".into(),
        password_hash: portcullis_config::Secret::new(hash),
        roles: vec![portcullis_config::ADMINISTRATOR.to_string()],
        enabled: true,
    });
    tracing::warn!(
        path = %path.display(),
        "no configuration file: starting on the embedded default (loopback, Local only)"
    );
    if generated {
        let file = match write_private(state_dir, BOOTSTRAP_PASSWORD_FILE, &password) {
            Ok(file) => file,
            Err(e) => {
                eprintln!(
                    "portcullis: cannot write the bootstrap password under {}: {e}",
                    state_dir.display()
                );
                return None;
            }
        };
        tracing::warn!(
            user = "admin",
            file = %file.display(),
            "bootstrap administrator created; its generated password is in the file (mode 0600): \
             change it, then delete the file"
        );
    } else {
        tracing::warn!(
            user = "admin",
            "bootstrap administrator created from PORTCULLIS_ADMIN_PASSWORD"
        );
    }
    Some(config)
}

/// Writes `text` to `dir/name`, replacing it, readable by this user only (a 0700 `dir` is
/// created when missing).
fn write_private(dir: &Path, name: &str, text: &str) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    // An older file keeps its mode through open: tighten it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(path)
}

/// Writes `portcullis.8` and one page per visible command into `dir`.
fn man(dir: &Path) -> ExitCode {
    use clap::CommandFactory;
    let top = Cli::command();
    let mut pages = vec![("portcullis".to_string(), top.clone())];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("portcullis-{}", sub.get_name());
        let bin = format!("portcullis {}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name).bin_name(bin)));
    }
    for (name, command) in pages {
        let mut page = Vec::new();
        let rendered = clap_mangen::Man::new(command)
            .section("8")
            .manual("portcullis")
            .render(&mut page);
        let path = dir.join(format!("{name}.8"));
        if let Err(e) = rendered.and_then(|()| std::fs::write(&path, &page)) {
            eprintln!("portcullis: {}: {e}", path.display());
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    ExitCode::SUCCESS
}

fn check_config(path: &Path) -> ExitCode {
    let Some(config) = load_config(path) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    // What only applying it finds: TLS files that cannot be read or do not match.
    if let Err(e) = portcullis::engine::Engine::new(&config) {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    if let Err((at, why)) = portcullis::frontend::radsec::check_files(&config) {
        eprintln!("{}: {at}: {why}", path.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    println!("{}: ok", path.display());
    ExitCode::SUCCESS
}

/// Reads a password: without echo from a terminal, else the first line of standard input.
fn read_password(prompt: &str, from_stdin: bool) -> Option<String> {
    let result = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map(|_| line.trim_end_matches(['\n', '\r']).to_string())
    } else {
        rpassword::prompt_password(prompt)
    };
    match result {
        Ok(password) => Some(password),
        Err(e) => {
            eprintln!("portcullis: cannot read the password: {e}");
            None
        }
    }
}

fn hash_password() -> ExitCode {
    let Some(password) = read_password("Password: ", false) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    if password.is_empty() {
        eprintln!("portcullis: refusing to hash an empty password");
        return ExitCode::from(EXIT_CONFIG);
    }
    match portcullis::engine::local::hash_password(password.as_bytes()) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn login(user: &str, password_stdin: bool, path: &Path) -> ExitCode {
    let Some(config) = load_config(path) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let Some(password) = read_password(&format!("Password for {user}: "), password_stdin) else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let Some(rt) = runtime() else {
        return ExitCode::from(EXIT_CONFIG);
    };
    let decision = rt.block_on(async {
        let engine = Engine::new(&config)?;
        Ok::<Decision, portcullis::engine::EngineError>(
            engine.authenticate(user, password.as_bytes()).await,
        )
    });
    let decision = match decision {
        Ok(decision) => decision,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    print!("{}", report(&decision));
    match decision.outcome {
        Outcome::Accept(_) => ExitCode::SUCCESS,
        // The command cannot answer a server's challenge: not logged in.
        Outcome::Reject(_) | Outcome::Challenge(_) => ExitCode::from(EXIT_REJECT),
        Outcome::Unavailable(_) => ExitCode::from(EXIT_UNAVAILABLE),
    }
}

/// The `login` report: one `key: value` line per field.
fn report(decision: &Decision) -> String {
    let (result, roles, reason) = match &decision.outcome {
        Outcome::Accept(roles) => ("accept", roles.join(", "), "-".to_string()),
        Outcome::Reject(reason) => ("reject", "-".to_string(), reason.to_string()),
        Outcome::Unavailable(reason) => ("unavailable", "-".to_string(), reason.clone()),
        Outcome::Challenge(challenge) => {
            ("challenge", "-".to_string(), challenge.messages.join(" / "))
        }
    };
    format!(
        "method:  {}\nserver:  {}\nresult:  {result}\nroles:   {roles}\nreason:  {reason}\nlatency: {:.1} ms\n",
        decision.method.map_or("-", |m| m.name()),
        decision.server.as_deref().unwrap_or("-"),
        decision.latency.as_secs_f64() * 1000.0,
    )
}
