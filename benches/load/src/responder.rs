//! `portcullis-load responder`: a trivial RADIUS server, the upstream that costs next to
//! nothing, so that a proxy's own ceiling shows. It answers every Access-Request with an
//! Access-Accept: Message-Authenticator first, a Class (the role the proxies map), the
//! request's Proxy-State attributes in order (RFC 2865 §5.33), and a correct Response
//! Authenticator. A Status-Server (RFC 5997) gets an Access-Accept without the Class.
//!
//! It checks no password: it measures the proxy in front of it, not authentication. What it
//! does check is the request's Message-Authenticator when there is one (RFC 3579 §3.2); a
//! request whose Message-Authenticator does not verify, a Status-Server without one, a
//! malformed datagram or any other code is dropped silently, as a server would.
//!
//! One blocking thread: receive, verify, build, send; nothing is allocated per request.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use portcullis_protocol::radius::{
    AUTHENTICATOR_LEN, Builder, Code, MAX_ATTRIBUTE_VALUE_LEN, MAX_PACKET_LEN, Packet, Secret,
    Signature, attr_type,
};

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Not a well-formed RADIUS packet.
    Malformed,
    /// Neither Access-Request nor Status-Server.
    UnsupportedCode,
    /// A Message-Authenticator that does not verify with the secret.
    BadMessageAuthenticator,
    /// A Status-Server without a Message-Authenticator (RFC 5997 §3).
    UnsignedStatusServer,
    /// The reply did not fit (too many Proxy-State octets).
    ReplyFailed,
}

/// Writes into `out` the answer to `datagram`: an Access-Accept to an Access-Request (with
/// `class`, when given) or to a Status-Server. Returns its length.
pub fn answer<S: AsRef<[u8]>>(
    datagram: &[u8],
    secret: &Secret<S>,
    class: Option<&[u8]>,
    out: &mut [u8],
) -> Result<usize, Dropped> {
    let packet = Packet::new_checked(datagram).map_err(|_| Dropped::Malformed)?;
    let code = packet.code();
    if !matches!(code, Code::AccessRequest | Code::StatusServer) {
        return Err(Dropped::UnsupportedCode);
    }
    let signature = packet
        .verify_request(secret)
        .map_err(|_| Dropped::BadMessageAuthenticator)?;
    if code == Code::StatusServer && signature == Signature::Unsigned {
        return Err(Dropped::UnsignedStatusServer);
    }
    let reply = |out: &mut [u8]| -> Result<usize, portcullis_protocol::radius::Error> {
        let mut b = Builder::new(
            out,
            Code::AccessAccept,
            packet.identifier(),
            &[0; AUTHENTICATOR_LEN],
        )?;
        b.message_authenticator()?;
        if let (Code::AccessRequest, Some(class)) = (code, class) {
            b.attribute(attr_type::CLASS, class)?;
        }
        for state in packet.find_all(attr_type::PROXY_STATE) {
            b.attribute(attr_type::PROXY_STATE, state)?;
        }
        b.finish_reply(&packet.authenticator(), secret)
    };
    reply(out).map_err(|_| Dropped::ReplyFailed)
}

/// A responder bound to its address.
#[derive(Debug)]
pub struct Responder {
    socket: UdpSocket,
    secret: Secret<Vec<u8>>,
    class: Option<Vec<u8>>,
}

impl Responder {
    /// Binds `listen`; `class` is the Class value of every Access-Accept (none when `None`
    /// or empty; at most 253 octets).
    pub fn bind(
        listen: SocketAddr,
        secret: Vec<u8>,
        class: Option<Vec<u8>>,
    ) -> io::Result<Responder> {
        let class = class.filter(|c| !c.is_empty());
        if class
            .as_ref()
            .is_some_and(|c| c.len() > MAX_ATTRIBUTE_VALUE_LEN)
        {
            return Err(io::Error::other(format!(
                "the Class value takes at most {MAX_ATTRIBUTE_VALUE_LEN} octets"
            )));
        }
        Ok(Responder {
            socket: UdpSocket::bind(listen)?,
            secret: Secret::new(secret),
            class,
        })
    }

    /// The address it answers on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Answers until an unexpected socket error. Dropped datagrams are reported on stderr
    /// when their count reaches a power of two.
    pub fn run(self) -> io::Result<()> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut out = [0u8; MAX_PACKET_LEN];
        let mut dropped: u64 = 0;
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let datagram = buf.get(..len).unwrap_or_default();
            match answer(datagram, &self.secret, self.class.as_deref(), &mut out) {
                Ok(n) => match self.socket.send_to(out.get(..n).unwrap_or_default(), from) {
                    Ok(_) => {}
                    Err(e) if transient(&e) => {}
                    Err(e) => return Err(e),
                },
                Err(why) => {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        eprintln!(
                            "responder: {dropped} datagrams dropped (the last from {from}: {why:?})"
                        );
                    }
                }
            }
        }
    }
}

/// Errors that concern one datagram: the ICMP port unreachable of an earlier send, an
/// interrupted call.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use crate::radius::{Auth, Target, check};
    use crate::run::{Length, Shared};

    const SECRET: &[u8] = b"responder-test-secret";

    fn request(code: Code, signed: bool, proxy_states: &[&[u8]]) -> (Vec<u8>, [u8; 16]) {
        let authenticator = [0x42; 16];
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = Builder::new(&mut buf, code, 9, &authenticator).unwrap();
        if signed {
            b.message_authenticator().unwrap();
        }
        b.attribute(attr_type::USER_NAME, b"alice").unwrap();
        for state in proxy_states {
            b.attribute(attr_type::PROXY_STATE, state).unwrap();
        }
        let len = b.finish_request(&Secret::new(SECRET)).unwrap();
        (buf[..len].to_vec(), authenticator)
    }

    #[test]
    fn accepts_with_class_proxy_states_and_a_verified_reply() {
        let secret = Secret::new(SECRET);
        for signed in [true, false] {
            let (req, authenticator) = request(Code::AccessRequest, signed, &[b"p1", b"p2"]);
            let mut out = [0u8; MAX_PACKET_LEN];
            let n = answer(&req, &secret, Some(b"admins"), &mut out).unwrap();
            let reply = &out[..n];
            // The harness' own check: code, Response Authenticator, Message-Authenticator.
            assert!(check(reply, &authenticator, &secret, Code::AccessAccept));
            let packet = Packet::new_checked(reply).unwrap();
            assert_eq!(packet.identifier(), 9);
            assert_eq!(
                packet.verify_reply(&authenticator, &secret).unwrap(),
                Signature::Signed
            );
            let types: Vec<u8> = packet.attributes().map(|a| a.typ()).collect();
            assert_eq!(
                types,
                [
                    attr_type::MESSAGE_AUTHENTICATOR,
                    attr_type::CLASS,
                    attr_type::PROXY_STATE,
                    attr_type::PROXY_STATE
                ]
            );
            assert_eq!(packet.find(attr_type::CLASS).unwrap().value(), b"admins");
            let states: Vec<&[u8]> = packet.find_all(attr_type::PROXY_STATE).collect();
            assert_eq!(states, [&b"p1"[..], b"p2"]);
            // Another secret does not verify it.
            assert!(!check(
                reply,
                &authenticator,
                &Secret::new(&b"another"[..]),
                Code::AccessAccept
            ));
        }
    }

    #[test]
    fn status_server_is_answered_without_class() {
        let secret = Secret::new(SECRET);
        let (req, authenticator) = request(Code::StatusServer, true, &[]);
        let mut out = [0u8; MAX_PACKET_LEN];
        let n = answer(&req, &secret, Some(b"admins"), &mut out).unwrap();
        assert!(check(
            &out[..n],
            &authenticator,
            &secret,
            Code::AccessAccept
        ));
        let packet = Packet::new_checked(&out[..n]).unwrap();
        assert!(packet.find(attr_type::CLASS).is_none());
        // RFC 5997 §3: a Status-Server must be signed.
        let (req, _) = request(Code::StatusServer, false, &[]);
        assert_eq!(
            answer(&req, &secret, None, &mut out),
            Err(Dropped::UnsignedStatusServer)
        );
    }

    #[test]
    fn drops_bad_message_authenticator_other_codes_and_garbage() {
        let mut out = [0u8; MAX_PACKET_LEN];
        let (req, _) = request(Code::AccessRequest, true, &[]);
        assert_eq!(
            answer(&req, &Secret::new(&b"wrong-secret"[..]), None, &mut out),
            Err(Dropped::BadMessageAuthenticator)
        );
        let mut tampered = req.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            answer(&tampered, &Secret::new(SECRET), None, &mut out),
            Err(Dropped::BadMessageAuthenticator)
        );
        let (req, _) = request(Code::AccountingRequest, false, &[]);
        assert_eq!(
            answer(&req, &Secret::new(SECRET), None, &mut out),
            Err(Dropped::UnsupportedCode)
        );
        assert_eq!(
            answer(b"\x01\x02", &Secret::new(SECRET), None, &mut out),
            Err(Dropped::Malformed)
        );
    }

    #[test]
    fn class_longer_than_an_attribute_is_refused() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        assert!(Responder::bind(addr, SECRET.to_vec(), Some(vec![b'x'; 254])).is_err());
        assert!(Responder::bind(addr, SECRET.to_vec(), Some(vec![b'x'; 253])).is_ok());
    }

    /// The harness run at the responder for a second, PAP and CHAP: every reply verifies.
    #[test]
    fn harness_verifies_every_reply_for_a_second() {
        let responder = Responder::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SECRET.to_vec(),
            Some(b"admins".to_vec()),
        )
        .unwrap();
        let addr = responder.local_addr().unwrap();
        thread::spawn(move || responder.run());
        for auth in [Auth::Pap, Auth::Chap] {
            let target = Target {
                addr,
                secret: SECRET.to_vec(),
                users: crate::users::names("alice", 100).into(),
                password: b"alice-password".to_vec(),
                auth,
                expect: Code::AccessAccept,
                timeout: Duration::from_secs(2),
                rate: None,
            };
            let shared: Arc<Shared> = Shared::new(Length::Duration(Duration::from_secs(1)));
            let tally = crate::radius::run(&target, 4, 64, &shared).unwrap();
            assert_eq!((tally.errors, tally.timeouts), (0, 0));
            assert!(tally.ok > 100, "{} replies in a second", tally.ok);
        }
    }
}
