//! Checks shared by the RADIUS and TACACS+ server lists.

use std::collections::HashMap;

use crate::error::Report;
use crate::host::Host;
use crate::secret::{CLOAK, Secret};

/// Secrets shorter than this many octets draw a warning. RFC 2865 §3: "It is preferred that
/// the secret be at least 16 octets."
pub const SHORT_SECRET: usize = 16;

/// The fields every server kind has, borrowed for validation.
pub(crate) struct ServerFields<'a> {
    /// `server_id` in the management API.
    pub(crate) id: u32,
    /// Position in the try order.
    pub(crate) order: u32,
    /// IP literal or hostname, unparsed.
    pub(crate) address: &'a str,
    /// UDP or TCP port.
    pub(crate) port: u16,
    /// Shared secret; `None` where the transport does not use one (TACACS+ over TLS).
    pub(crate) secret: Option<&'a Secret>,
}

/// What every kind of upstream server has, for the checks and the try order.
pub(crate) trait Listed {
    /// Its common fields, borrowed.
    fn fields(&self) -> ServerFields<'_>;
    /// Whether it is tried at all.
    fn enabled(&self) -> bool;
}

/// The enabled servers of `servers`, in the order they are tried.
pub(crate) fn enabled_in_order<T: Listed>(servers: &[T]) -> Vec<&T> {
    let mut enabled: Vec<&T> = servers.iter().filter(|s| s.enabled()).collect();
    enabled.sort_by_key(|server| server.fields().order);
    enabled
}

/// [`check_servers`] over a list of one kind of server.
pub(crate) fn check_list<T: Listed>(report: &mut Report, list: &str, servers: &[T]) {
    check_servers(report, list, servers.iter().map(Listed::fields));
}

/// Validates one list of servers: every field of every server, then ids, orders and
/// address/port pairs for duplicates. `list` is the TOML path of the list (`radius.servers`).
pub(crate) fn check_servers<'a>(
    report: &mut Report,
    list: &str,
    servers: impl IntoIterator<Item = ServerFields<'a>>,
) {
    let mut ids: HashMap<u32, usize> = HashMap::new();
    let mut orders: HashMap<u32, usize> = HashMap::new();
    let mut endpoints: HashMap<(Host, u16), usize> = HashMap::new();
    for (index, server) in servers.into_iter().enumerate() {
        let path = format!("{list}[{index}]");
        if let Some(first) = ids.insert(server.id, index) {
            ids.insert(server.id, first);
            report.error(
                format!("{path}.id"),
                format!("{} is already used by {list}[{first}]", server.id),
            );
        }
        if let Some(first) = orders.insert(server.order, index) {
            orders.insert(server.order, first);
            report.error(
                format!("{path}.order"),
                format!("{} is already used by {list}[{first}]", server.order),
            );
        }
        let host = match Host::parse(server.address) {
            Ok(host) => host,
            Err(why) => {
                report.error(format!("{path}.address"), why);
                // Still catch a literal duplicate of an invalid address.
                Host::Name(server.address.to_ascii_lowercase())
            }
        };
        report.range(format!("{path}.port"), server.port, 1, u16::MAX);
        if let Some(secret) = server.secret {
            check_secret(report, &format!("{path}.secret"), secret);
        }
        let endpoint = (host, server.port);
        if let Some(first) = endpoints.get(&endpoint) {
            report.error(
                path,
                format!(
                    "duplicate of {list}[{first}]: same address and port ({} port {})",
                    endpoint.0, endpoint.1
                ),
            );
        } else {
            endpoints.insert(endpoint, index);
        }
    }
}

/// A shared secret must be set, must not be the API's cloak, and should be 16 octets or more.
fn check_secret(report: &mut Report, path: &str, secret: &Secret) {
    if secret.is_empty() {
        report.error(
            path,
            "must not be empty: the shared secret authenticates every packet exchanged with \
             the server",
        );
    } else if secret.expose() == CLOAK {
        report.error(
            path,
            "is the cloak the management API shows instead of a secret, not a secret; fetch the \
             servers with ?uncloak to get the real value",
        );
    } else if secret.len() < SHORT_SECRET {
        report.warn(
            path,
            format!(
                "is only {} bytes long; use at least {SHORT_SECRET} random bytes, a short secret \
                 can be brute-forced from one captured packet",
                secret.len()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server<'a>(id: u32, order: u32, address: &'a str, secret: &'a Secret) -> ServerFields<'a> {
        ServerFields {
            id,
            order,
            address,
            port: 1812,
            secret: Some(secret),
        }
    }

    #[test]
    fn duplicates_are_reported_against_the_first_occurrence() {
        let secret = Secret::new("0123456789abcdef");
        let mut report = Report::default();
        check_servers(
            &mut report,
            "radius.servers",
            [
                server(1, 0, "10.0.0.1", &secret),
                server(2, 1, "10.0.0.2", &secret),
                server(1, 1, "10.0.0.3", &secret),
            ],
        );
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "radius.servers[2].id: 1 is already used by radius.servers[0]",
                "radius.servers[2].order: 1 is already used by radius.servers[1]",
            ]
        );
    }

    #[test]
    fn the_same_ip_in_two_spellings_is_a_duplicate() {
        let secret = Secret::new("0123456789abcdef");
        let mut report = Report::default();
        check_servers(
            &mut report,
            "tacacs.servers",
            [
                server(1, 0, "2001:db8::1", &secret),
                server(2, 1, "2001:0db8:0::1", &secret),
                server(3, 2, "Host.Example", &secret),
                server(4, 3, "host.example", &secret),
            ],
        );
        let messages: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "tacacs.servers[1]: duplicate of tacacs.servers[0]: same address and port \
                 (2001:db8::1 port 1812)",
                "tacacs.servers[3]: duplicate of tacacs.servers[2]: same address and port \
                 (host.example port 1812)",
            ]
        );
    }

    #[test]
    fn secrets_empty_cloaked_and_short() {
        let mut report = Report::default();
        check_secret(&mut report, "a", &Secret::new(""));
        check_secret(&mut report, "b", &Secret::new(CLOAK));
        check_secret(&mut report, "c", &Secret::new("secretKey"));
        check_secret(&mut report, "d", &Secret::new("0123456789abcdef"));
        assert_eq!(report.errors.len(), 2);
        assert!(report.errors[0].message.starts_with("must not be empty"));
        assert!(report.errors[1].message.contains("cloak"));
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.warnings[0].path, "c");
        assert!(
            report.warnings[0]
                .message
                .starts_with("is only 9 bytes long")
        );
    }
}
