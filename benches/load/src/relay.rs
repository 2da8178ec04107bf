//! `portcullis-load relay`: the CPU floor of relaying one login. A UDP relay that only moves
//! datagrams: a request from a client goes out unchanged to the upstream, and the upstream's
//! reply goes back unchanged to that client. No crypto and no parsing: the datagrams are not
//! even looked at.
//!
//! Replies must reach the client that sent the request with their Identifier, but several
//! clients (the harness' sockets) use the same Identifiers at once, and the reply's Response
//! Authenticator covers the Identifier, so it cannot be rewritten. Each client source address
//! therefore gets an upstream socket of its own, connected to the upstream, made on first
//! sight: whatever arrives on it is that client's reply, so the 256-entry table Identifier ->
//! client of a single upstream socket reduces to one client per upstream socket.
//!
//! Threads, all blocking: one receives from the clients and sends upstream; one per client
//! receives that client's replies and sends them back from the listening socket. Each
//! datagram costs one receive and one send; nothing is allocated per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::thread;

/// The largest UDP payload: a datagram of any length moves unchanged.
const MAX_DATAGRAM: usize = 65_536;

/// How many client source addresses the relay serves (one upstream socket and one thread
/// each); datagrams from further ones are dropped.
pub const MAX_CLIENTS: usize = 256;

/// The client source addresses seen so far, each with what serves it (its upstream socket).
/// Looked up linearly: a run has a handful of clients (the harness' sockets).
#[derive(Debug)]
pub struct Clients<T> {
    entries: Vec<(SocketAddr, T)>,
    max: usize,
}

impl<T> Clients<T> {
    /// An empty table of at most `max` clients.
    pub fn new(max: usize) -> Self {
        Clients {
            entries: Vec::new(),
            max,
        }
    }

    /// What serves `client`: the entry made on its first datagram, or a new one made by
    /// `make` now. `Ok(None)` when the table is full.
    pub fn get_or_insert_with(
        &mut self,
        client: SocketAddr,
        make: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<Option<&T>> {
        if let Some(index) = self.entries.iter().position(|(addr, _)| *addr == client) {
            return Ok(self.entries.get(index).map(|(_, value)| value));
        }
        if self.entries.len() >= self.max {
            return Ok(None);
        }
        self.entries.push((client, make()?));
        Ok(self.entries.last().map(|(_, value)| value))
    }

    /// How many clients have been seen.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A relay bound to its listening address.
#[derive(Debug)]
pub struct Relay {
    listen: UdpSocket,
    upstream: SocketAddr,
}

impl Relay {
    /// Binds the listening socket.
    pub fn bind(listen: SocketAddr, upstream: SocketAddr) -> io::Result<Relay> {
        Ok(Relay {
            listen: UdpSocket::bind(listen)?,
            upstream,
        })
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listen.local_addr()
    }

    /// Relays until an unexpected socket error.
    pub fn run(self) -> io::Result<()> {
        let mut clients = Clients::new(MAX_CLIENTS);
        let mut full_reported = false;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (len, client) = match self.listen.recv_from(&mut buf) {
                Ok(received) => received,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let upstream = clients.get_or_insert_with(client, || self.open_upstream(client))?;
            let Some(upstream) = upstream else {
                if !full_reported {
                    full_reported = true;
                    eprintln!(
                        "relay: more than {MAX_CLIENTS} clients; dropping {client}'s datagrams"
                    );
                }
                continue;
            };
            match upstream.send(buf.get(..len).unwrap_or_default()) {
                Ok(_) => {}
                Err(e) if transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The upstream socket of `client`, connected to the upstream, and the thread that sends
    /// what arrives on it back to `client`.
    fn open_upstream(&self, client: SocketAddr) -> io::Result<UdpSocket> {
        let socket = UdpSocket::bind(match self.upstream {
            SocketAddr::V4(_) => "0.0.0.0:0",
            SocketAddr::V6(_) => "[::]:0",
        })?;
        socket.connect(self.upstream)?;
        let replies = socket.try_clone()?;
        let listen = self.listen.try_clone()?;
        thread::Builder::new()
            .name(format!("relay-{client}"))
            .spawn(move || {
                if let Err(e) = send_back(&replies, &listen, client) {
                    eprintln!("relay: replies to {client}: {e}");
                }
            })?;
        Ok(socket)
    }
}

/// Sends every datagram that arrives on `replies` to `client` from `listen`.
fn send_back(replies: &UdpSocket, listen: &UdpSocket, client: SocketAddr) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let len = match replies.recv(&mut buf) {
            Ok(len) => len,
            Err(e) if transient(&e) => continue,
            Err(e) => return Err(e),
        };
        match listen.send_to(buf.get(..len).unwrap_or_default(), client) {
            Ok(_) => {}
            Err(e) if transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Errors that concern one datagram, not the relay: the ICMP port unreachable of an earlier
/// send (the peer is gone), an interrupted call, a full socket buffer.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    ) || e.raw_os_error() == Some(105) // ENOBUFS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use portcullis_protocol::radius::Code;

    use crate::radius::{Auth, Target};
    use crate::run::{Length, Shared};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn table_makes_one_entry_per_client_on_first_sight() {
        let mut table = Clients::new(3);
        let mut made = 0;
        let mut lookup = |table: &mut Clients<u32>, port| {
            table
                .get_or_insert_with(addr(port), || {
                    made += 1;
                    Ok(u32::from(port) * 10)
                })
                .unwrap()
                .copied()
        };
        assert_eq!(lookup(&mut table, 1000), Some(10_000));
        assert_eq!(lookup(&mut table, 1001), Some(10_010));
        assert_eq!(lookup(&mut table, 1000), Some(10_000));
        assert_eq!(lookup(&mut table, 1002), Some(10_020));
        // Full: a fourth client is refused, the known ones still served.
        assert_eq!(lookup(&mut table, 1003), None);
        assert_eq!(lookup(&mut table, 1001), Some(10_010));
        assert_eq!(table.len(), 3);
        assert_eq!(made, 3);
    }

    #[test]
    fn table_keeps_nothing_when_making_fails() {
        let mut table: Clients<u32> = Clients::new(2);
        assert!(
            table
                .get_or_insert_with(addr(1), || Err(io::Error::other("no socket")))
                .is_err()
        );
        assert_eq!(table.len(), 0);
        assert_eq!(
            table.get_or_insert_with(addr(1), || Ok(7)).unwrap(),
            Some(&7)
        );
    }

    /// An upstream that echoes every datagram.
    fn echo() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                socket.send_to(&buf[..n], from).unwrap();
            }
        });
        addr
    }

    fn start(upstream: SocketAddr) -> SocketAddr {
        let relay = Relay::bind(addr(0), upstream).unwrap();
        let local = relay.local_addr().unwrap();
        thread::spawn(move || relay.run());
        local
    }

    #[test]
    fn replies_go_back_to_the_client_that_sent_the_request() {
        let relay = start(echo());
        // Two clients, the same Identifier (octet 1) at once: each gets its own datagram back.
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&a, &b] {
            s.connect(relay).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        a.send(b"\x01\x07from a").unwrap();
        b.send(b"\x01\x07from b").unwrap();
        let mut buf = [0u8; 64];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x01\x07from a");
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x01\x07from b");
        // A large datagram moves whole.
        let big = vec![0x5a; 9000];
        a.send(&big).unwrap();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(n, big.len());
        assert!(buf[..n] == big[..]);
    }

    #[test]
    fn harness_verifies_replies_relayed_from_a_radius_responder() {
        let responder = crate::responder::Responder::bind(
            addr(0),
            b"relay-test-secret".to_vec(),
            Some(b"admins".to_vec()),
        )
        .unwrap();
        let upstream = responder.local_addr().unwrap();
        thread::spawn(move || responder.run());
        let relay = start(upstream);
        // K=16 over 4 sockets: every socket uses Identifiers 0..3 at once.
        for auth in [Auth::Pap, Auth::Chap] {
            let target = Target {
                addr: relay,
                secret: b"relay-test-secret".to_vec(),
                users: crate::users::names("alice", 10).into(),
                password: b"alice-password".to_vec(),
                auth,
                expect: Code::AccessAccept,
                timeout: Duration::from_secs(2),
                rate: None,
            };
            let shared: Arc<Shared> = Shared::new(Length::Requests(4000));
            let tally = crate::radius::run(&target, 4, 16, &shared).unwrap();
            assert_eq!((tally.ok, tally.errors, tally.timeouts), (4000, 0, 0));
        }
    }
}
