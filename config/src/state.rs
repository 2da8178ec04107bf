//! `[state]`: where the daemon keeps what it learns while it runs. Without the section (or
//! with `backend = "sqlite"`) it is one SQLite file under the state directory, for one node.
//! With `backend = "postgresql"` it is a PostgreSQL database that several nodes share.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Report;

/// The default number of connections a node keeps to PostgreSQL.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// The most connections a node may keep to PostgreSQL.
pub const MAX_POOL_SIZE: u32 = 256;
/// Seconds a connection attempt or a query waits for PostgreSQL before it fails.
pub const DEFAULT_DATABASE_TIMEOUT: u32 = 5;
/// The longest node name.
pub const MAX_NODE_NAME: usize = 64;

/// Which engine keeps the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// One SQLite file under the state directory (one node).
    #[default]
    Sqlite,
    /// A PostgreSQL database, shared by every node that names it.
    Postgresql,
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct State {
    /// `sqlite` (default) or `postgresql`.
    pub backend: StateBackend,
    /// `postgresql://USER@HOST:PORT/DB` (query parameters such as `sslmode` allowed); required
    /// with `backend = "postgresql"`. It may not carry a password: that comes from
    /// `password_file` or `PGPASSWORD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file (mode 0600 or stricter) holding the database password on its first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The CA certificates (PEM) that sign the database server's certificate. With it the
    /// connection is TLS (`sslmode=require` unless the URL says otherwise); without it, TLS
    /// is not used and a URL that asks for it is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Connections this node keeps to the database; 1..=256.
    pub pool_size: u32,
    /// Seconds a connection attempt or query waits before it fails; 1..=60.
    pub timeout: u32,
    /// This node's name, written into each audit event; default: the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            backend: StateBackend::Sqlite,
            url: None,
            password_file: None,
            tls_ca: None,
            pool_size: DEFAULT_POOL_SIZE,
            timeout: DEFAULT_DATABASE_TIMEOUT,
            node: None,
        }
    }
}

impl State {
    /// Whether this is the default section (then it is not written to the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the state is shared with other nodes.
    pub fn is_shared(&self) -> bool {
        self.backend == StateBackend::Postgresql
    }

    pub(crate) fn check(&self, report: &mut Report) {
        report.range("state.pool_size", self.pool_size, 1, MAX_POOL_SIZE);
        report.range("state.timeout", self.timeout, 1, 60);
        if let Some(node) = &self.node {
            check_node_name(report, node);
        }
        match self.backend {
            StateBackend::Sqlite => {
                for (set, key) in [
                    (self.url.is_some(), "state.url"),
                    (self.password_file.is_some(), "state.password_file"),
                    (self.tls_ca.is_some(), "state.tls_ca"),
                ] {
                    if set {
                        report.error(key, "is only for backend = \"postgresql\"");
                    }
                }
            }
            StateBackend::Postgresql => match &self.url {
                None => report.error("state.url", "is required with backend = \"postgresql\""),
                Some(url) => {
                    if let Err(why) = check_url(url, self.tls_ca.is_some()) {
                        report.error("state.url", why);
                    }
                }
            },
        }
    }
}

fn check_node_name(report: &mut Report, node: &str) {
    if node.is_empty() || node.len() > MAX_NODE_NAME {
        report.error(
            "state.node",
            format!("must be 1 to {MAX_NODE_NAME} characters"),
        );
    } else if !node
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        report.error(
            "state.node",
            "may hold only letters, digits, '-', '_' and '.'",
        );
    }
}

/// The parts of a `postgresql://` URL the daemon reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The role to log in as.
    pub user: String,
    /// Host name or address (brackets removed from an IPv6 address).
    pub host: String,
    /// The port (5432 when the URL names none).
    pub port: u16,
    /// The database.
    pub database: String,
    /// `sslmode` (`disable`, `prefer`, `require`), when the URL gives it.
    pub sslmode: Option<String>,
    /// The other query parameters, as given (`application_name`, ...).
    pub options: Vec<(String, String)>,
}

/// Reads `url` as `postgresql://USER@HOST[:PORT]/DB[?key=value&...]`, refusing a password in
/// it and an `sslmode` that needs TLS when `tls` (a CA file) is not configured.
pub fn parse_database_url(url: &str) -> Result<DatabaseUrl, String> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or("must start with postgresql://")?;
    let (authority, rest) = rest
        .split_once('/')
        .ok_or("must name the database: postgresql://USER@HOST:PORT/DB")?;
    let (database, query) = match rest.split_once('?') {
        Some((database, query)) => (database, Some(query)),
        None => (rest, None),
    };
    let (user, hostport) = authority
        .rsplit_once('@')
        .ok_or("must name the role: postgresql://USER@HOST:PORT/DB")?;
    if user.contains(':') {
        return Err("may not carry a password: put it in state.password_file or PGPASSWORD".into());
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("has an unclosed '[' in its host")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None => 5432,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("has an invalid port \"{port}\""))?,
    };
    if user.is_empty() || host.is_empty() || database.is_empty() {
        return Err("must name the role, host and database: postgresql://USER@HOST:PORT/DB".into());
    }
    let mut sslmode = None;
    let mut options = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("has a query parameter without a value: \"{pair}\""))?;
        match key {
            "password" => {
                return Err(
                    "may not carry a password: put it in state.password_file or PGPASSWORD".into(),
                );
            }
            "sslmode" => {
                if !matches!(value, "disable" | "prefer" | "require") {
                    return Err(format!(
                        "sslmode \"{value}\" is not one of disable, prefer, require (the \
                         certificate is always verified against state.tls_ca)"
                    ));
                }
                sslmode = Some(value.to_owned());
            }
            "application_name" | "channel_binding" | "options" => {
                options.push((key.to_owned(), value.to_owned()));
            }
            other => return Err(format!("has an unknown query parameter \"{other}\"")),
        }
    }
    Ok(DatabaseUrl {
        user: user.to_owned(),
        host: host.to_owned(),
        port,
        database: database.to_owned(),
        sslmode,
        options,
    })
}

fn check_url(url: &str, tls: bool) -> Result<(), String> {
    let parsed = parse_database_url(url)?;
    if !tls && matches!(parsed.sslmode.as_deref(), Some("require" | "prefer")) {
        return Err(
            "asks for TLS (sslmode) but state.tls_ca is not set: name the CA that signs the \
             database's certificate"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, ConfigError};

    fn errors(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn no_section_is_sqlite() {
        let config = Config::from_toml("").unwrap().config;
        assert_eq!(config.state.backend, StateBackend::Sqlite);
        assert!(!config.state.is_shared());
    }

    #[test]
    fn a_postgresql_section_parses() {
        let config = Config::from_toml(
            "[state]\nbackend = \"postgresql\"\nurl = \"postgresql://portcullis@127.0.0.1:5433/gw\"\nnode = \"gw-a\"\n",
        )
        .unwrap()
        .config;
        assert!(config.state.is_shared());
        let url = parse_database_url(config.state.url.as_deref().unwrap()).unwrap();
        assert_eq!(
            (
                url.user.as_str(),
                url.host.as_str(),
                url.port,
                url.database.as_str()
            ),
            ("portcullis", "127.0.0.1", 5433, "gw")
        );
    }

    #[test]
    fn urls_are_read_strictly() {
        let url =
            parse_database_url("postgres://u@[::1]/db?sslmode=require&application_name=x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 5432));
        assert_eq!(url.sslmode.as_deref(), Some("require"));
        for bad in [
            "mysql://u@h/db",
            "postgresql://h/db",
            "postgresql://u:secret@h/db",
            "postgresql://u@h/db?password=x",
            "postgresql://u@h:0/db",
            "postgresql://u@h",
            "postgresql://u@h/db?sslmode=verify-full",
            "postgresql://u@h/db?frobnicate=1",
        ] {
            assert!(parse_database_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_sections_name_their_key() {
        let found = errors("[state]\nbackend = \"postgresql\"\n");
        assert!(
            found.iter().any(|e| e.starts_with("state.url:")),
            "{found:?}"
        );
        let found = errors("[state]\nurl = \"postgresql://u@h/db\"\n");
        assert!(
            found.iter().any(|e| e.starts_with("state.url:")),
            "{found:?}"
        );
        let found = errors(
            "[state]\nbackend = \"postgresql\"\nurl = \"postgresql://u:pw@h/db\"\npool_size = 0\nnode = \"a b\"\n",
        );
        for key in ["state.url:", "state.pool_size:", "state.node:"] {
            assert!(
                found.iter().any(|e| e.starts_with(key)),
                "{key} in {found:?}"
            );
        }
        // A password never appears in the error.
        assert!(found.iter().all(|e| !e.contains("pw")), "{found:?}");
        let found = errors(
            "[state]\nbackend = \"postgresql\"\nurl = \"postgresql://u@h/db?sslmode=require\"\n",
        );
        assert!(found.iter().any(|e| e.contains("tls_ca")), "{found:?}");
    }
}
