//! The RADIUS driver: Access-Requests over several connected UDP sockets, each keeping its
//! share of the K outstanding requests in flight. Every reply is parsed and its Response
//! Authenticator (and Message-Authenticator, when present) verified with the protocol crate;
//! a reply that fails, or whose code is not the expected one, counts as an error.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use portcullis_protocol::radius::{
    Builder, Code, MAX_PACKET_LEN, Packet, Secret, attr_type, chap_response,
};

use crate::run::{Rng, Shared};
use crate::stats::Latencies;
use crate::users::Cycle;

/// How the password travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Auth {
    /// User-Password (RFC 2865 §5.2).
    Pap,
    /// CHAP-Password over a random CHAP-Challenge (RFC 2865 §5.3).
    Chap,
}

/// What one RADIUS run sends.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to send.
    pub addr: SocketAddr,
    /// Shared secret.
    pub secret: Vec<u8>,
    /// The User-Names, built once; each worker cycles over them from its own offset.
    pub users: Arc<[String]>,
    /// The password.
    pub password: Vec<u8>,
    /// PAP or CHAP.
    pub auth: Auth,
    /// The expected reply code.
    pub expect: Code,
    /// How long to wait for a reply before counting a timeout.
    pub timeout: Duration,
    /// Requests per second over all sockets, sent on schedule (open loop); `None`: a new
    /// request as soon as a reply frees its Identifier (closed loop, K outstanding).
    pub rate: Option<f64>,
}

impl Target {
    /// The User-Name at `index` of the cycle.
    pub(crate) fn user(&self, index: usize) -> &[u8] {
        self.users
            .get(index)
            .map_or(&b""[..], |name| name.as_bytes())
    }
}

/// Timed-out requests remembered per Identifier for their late answers.
const LATE: usize = 8;

/// What one worker measured.
#[derive(Debug, Default)]
pub struct Tally {
    /// Expected, verified replies.
    pub ok: u64,
    /// Replies to the request in flight with another code, or datagrams that are no RADIUS.
    pub errors: u64,
    /// Late answers to requests already counted as timed out, whose Identifier may have gone
    /// to a new request. Ignored: the request in flight keeps waiting for its own answer.
    pub stray: u64,
    /// The Request Authenticators of the last requests that timed out on each Identifier
    /// (at most [`LATE`]), to tell their late answers from an answer to the request now in
    /// flight: an upstream resend can answer after the Identifier went to two or more new
    /// requests.
    pub(crate) late: std::collections::HashMap<usize, Vec<[u8; 16]>>,
    /// Requests never answered.
    pub timeouts: u64,
    /// Latency of the `ok` replies.
    pub latencies: Latencies,
    /// When the last reply came.
    pub last: Option<Instant>,
}

impl Tally {
    /// Records that the request in `slot` on Identifier `id` timed out.
    pub(crate) fn timed_out(&mut self, id: usize, slot: &Slot) {
        self.timeouts += 1;
        let late = self.late.entry(id).or_default();
        if late.len() >= LATE {
            late.remove(0);
        }
        late.push(slot.authenticator);
    }

    /// Whether `datagram`, arrived on Identifier `id`, is to be counted for the request in
    /// `slot`: false for the late answer of the request that timed out before it on `id`
    /// (counted as stray), true for anything else (its own answer, or an error).
    pub(crate) fn answers(
        &mut self,
        datagram: &[u8],
        id: usize,
        slot: &Slot,
        secret: &Secret<&[u8]>,
    ) -> bool {
        let answered = Packet::new_checked(datagram)
            .is_ok_and(|packet| packet.verify_reply(&slot.authenticator, secret).is_ok());
        answered || !self.late_answer(datagram, id, secret)
    }

    /// Whether `datagram` is the late answer to a request that timed out on Identifier `id`;
    /// if so it is counted as stray.
    pub(crate) fn late_answer(
        &mut self,
        datagram: &[u8],
        id: usize,
        secret: &Secret<&[u8]>,
    ) -> bool {
        let Ok(packet) = Packet::new_checked(datagram) else {
            return false;
        };
        let Some(late) = self.late.get_mut(&id) else {
            return false;
        };
        match late
            .iter()
            .position(|earlier| packet.verify_reply(earlier, secret).is_ok())
        {
            Some(index) => {
                late.remove(index);
                self.stray += 1;
                true
            }
            None => false,
        }
    }

    /// Counts `datagram`, received at `now`, as the reply to the request in `slot`: verified
    /// and of the `expect`ed code, or an error.
    pub(crate) fn reply(
        &mut self,
        datagram: &[u8],
        slot: &Slot,
        secret: &Secret<&[u8]>,
        expect: Code,
        now: Instant,
    ) {
        if check(datagram, &slot.authenticator, secret, expect) {
            self.ok += 1;
            self.latencies.record(now - slot.sent);
            self.last = Some(now);
        } else {
            self.errors += 1;
        }
    }
}

/// Whether a receive error only means nothing arrived: the read timeout, or the ICMP port
/// unreachable of an earlier send (that request times out).
pub(crate) fn nothing_received(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::ConnectionRefused
    )
}

/// A request in flight on one Identifier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// When it was sent (the open-loop driver: when it was due).
    pub(crate) sent: Instant,
    /// Its Request Authenticator.
    pub(crate) authenticator: [u8; 16],
}

/// Runs `sockets` workers sharing `concurrency` outstanding requests until `shared` says
/// stop, and adds up what they measured.
pub fn run(
    target: &Target,
    sockets: usize,
    concurrency: usize,
    shared: &Arc<Shared>,
) -> io::Result<Tally> {
    let sockets = sockets.clamp(1, concurrency.max(1));
    let mut handles = Vec::new();
    for i in 0..sockets {
        // The window of worker i: its share of K, the remainder to the first ones; at most
        // 256 (one Identifier each, RFC 2865 §3).
        let window = (concurrency / sockets + usize::from(i < concurrency % sockets)).min(256);
        let socket = UdpSocket::bind(match target.addr {
            SocketAddr::V4(_) => "127.0.0.1:0",
            SocketAddr::V6(_) => "[::1]:0",
        })?;
        socket.connect(target.addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let target = target.clone();
        let shared = Arc::clone(shared);
        let names = Cycle::new(target.users.len(), i, sockets);
        // Open loop: each socket sends its share of the rate.
        let pace = target
            .rate
            .filter(|rate| *rate > 0.0)
            .map(|rate| Duration::from_secs_f64(sockets as f64 / rate));
        handles.push(thread::spawn(move || match pace {
            Some(interval) => {
                crate::paced::worker(socket, &target, window, names, &shared, interval)
            }
            None => worker(&socket, &target, window, names, &shared),
        }));
    }
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle
            .join()
            .map_err(|_| io::Error::other("a worker thread panicked"))??;
        total.ok += tally.ok;
        total.errors += tally.errors;
        total.stray += tally.stray;
        total.timeouts += tally.timeouts;
        total.latencies.merge(&tally.latencies);
        total.last = total.last.max(tally.last);
    }
    Ok(total)
}

fn worker(
    socket: &UdpSocket,
    target: &Target,
    window: usize,
    mut names: Cycle,
    shared: &Shared,
) -> io::Result<Tally> {
    let secret = Secret::new(target.secret.as_slice());
    let mut send_next = |rng: &mut Rng, out: &mut [u8], id: usize| {
        let user = target.user(names.next_index());
        send(socket, target, user, &secret, rng, out, id)
    };
    let mut rng = Rng::seeded();
    let mut slots: Vec<Option<Slot>> = vec![None; window];
    let mut tally = Tally::default();
    let mut out = [0u8; MAX_PACKET_LEN];
    let mut buf = [0u8; MAX_PACKET_LEN];

    for (id, slot) in slots.iter_mut().enumerate() {
        if !shared.take() {
            break;
        }
        *slot = Some(send_next(&mut rng, &mut out, id)?);
    }
    let mut last_sweep = Instant::now();
    while slots.iter().any(Option::is_some) {
        match socket.recv(&mut buf) {
            Ok(len) => {
                let now = Instant::now();
                let datagram = buf.get(..len).unwrap_or_default();
                let Some(&id) = datagram.get(1) else {
                    tally.errors += 1;
                    continue;
                };
                let id = usize::from(id);
                let Some(Some(slot)) = slots.get(id).copied() else {
                    // A late answer to a request already counted as timed out, or an error.
                    if !tally.late_answer(datagram, id, &secret) {
                        tally.errors += 1;
                    }
                    continue;
                };
                if !tally.answers(datagram, id, &slot, &secret) {
                    continue;
                }
                tally.reply(datagram, &slot, &secret, target.expect, now);
                shared.done();
                let next = if shared.take() {
                    Some(send_next(&mut rng, &mut out, id)?)
                } else {
                    None
                };
                if let Some(slot) = slots.get_mut(id) {
                    *slot = next;
                }
            }
            Err(e) if nothing_received(&e) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(20) {
            last_sweep = now;
            for id in 0..slots.len() {
                let expired = match slots.get(id) {
                    Some(Some(slot)) if now - slot.sent >= target.timeout => Some(*slot),
                    _ => None,
                };
                if let Some(slot) = expired {
                    tally.timed_out(id, &slot);
                    shared.done();
                    let next = if shared.take() {
                        Some(send_next(&mut rng, &mut out, id)?)
                    } else {
                        None
                    };
                    if let Some(slot) = slots.get_mut(id) {
                        *slot = next;
                    }
                }
            }
        }
    }
    Ok(tally)
}

/// Builds and sends one Access-Request for `user` on Identifier `id`: Message-Authenticator
/// first, User-Name, the password (PAP or CHAP), NAS-Identifier.
fn send(
    socket: &UdpSocket,
    target: &Target,
    user: &[u8],
    secret: &Secret<&[u8]>,
    rng: &mut Rng,
    out: &mut [u8],
    id: usize,
) -> io::Result<Slot> {
    let (len, authenticator) = build_request(target, user, secret, rng, out, id)?;
    let sent = Instant::now();
    transmit(socket, out.get(..len).unwrap_or_default())?;
    Ok(Slot {
        sent,
        authenticator,
    })
}

/// Builds into `out` the Access-Request for `user` on Identifier `id` with a random Request
/// Authenticator; its length and that authenticator.
pub(crate) fn build_request(
    target: &Target,
    user: &[u8],
    secret: &Secret<&[u8]>,
    rng: &mut Rng,
    out: &mut [u8],
    id: usize,
) -> io::Result<(usize, [u8; 16])> {
    let mut authenticator = [0u8; 16];
    rng.fill(&mut authenticator);
    let identifier = u8::try_from(id).unwrap_or(0);
    let len = encode(target, user, secret, rng, out, identifier, &authenticator)
        .map_err(|e| io::Error::other(format!("building the request: {e:?}")))?;
    Ok((len, authenticator))
}

/// Sends `request`; the ICMP port unreachable of an earlier send is not an error here (that
/// request times out).
pub(crate) fn transmit(socket: &UdpSocket, request: &[u8]) -> io::Result<()> {
    match socket.send(request) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(e),
    }
}

fn encode(
    target: &Target,
    user: &[u8],
    secret: &Secret<&[u8]>,
    rng: &mut Rng,
    out: &mut [u8],
    identifier: u8,
    authenticator: &[u8; 16],
) -> Result<usize, portcullis_protocol::radius::Error> {
    let mut b = Builder::access_request(out, identifier, authenticator)?;
    b.attribute(attr_type::USER_NAME, user)?;
    match target.auth {
        Auth::Pap => {
            b.user_password(&target.password, secret)?;
        }
        Auth::Chap => {
            let mut challenge = [0u8; 17];
            rng.fill(&mut challenge);
            let [ident, rest @ ..] = challenge;
            let response = chap_response(ident, &target.password, &rest);
            b.chap_password(ident, &response)?;
            b.attribute(attr_type::CHAP_CHALLENGE, &rest)?;
        }
    }
    b.attribute(attr_type::NAS_IDENTIFIER, b"portcullis-load")?;
    b.finish_request(secret)
}

/// Whether `datagram` is a well-formed reply of the `expect`ed code to the request with
/// `authenticator`, with a valid Response Authenticator and Message-Authenticator (RFC 2865
/// §3, RFC 3579 §3.2).
pub fn check(
    datagram: &[u8],
    authenticator: &[u8; 16],
    secret: &Secret<&[u8]>,
    expect: Code,
) -> bool {
    let Ok(packet) = Packet::new_checked(datagram) else {
        return false;
    };
    packet.code() == expect && packet.verify_reply(authenticator, secret).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Length;

    const SECRET: &[u8] = b"load-test-secret";

    /// A reply to `request` with `code`, signed with `secret`.
    fn reply(request: &[u8], code: Code, secret: &[u8]) -> Vec<u8> {
        let request = Packet::new_checked(request).unwrap();
        let mut buf = [0u8; 4096];
        let mut b = Builder::new(&mut buf, code, request.identifier(), &[0; 16]).unwrap();
        b.message_authenticator().unwrap();
        let len = b
            .finish_reply(&request.authenticator(), &Secret::new(secret))
            .unwrap();
        buf[..len].to_vec()
    }

    #[test]
    fn a_late_answer_leaves_the_request_waiting() {
        // Identifier 7 timed out and went to a new request; the old request's answer comes.
        let request = |authenticator: [u8; 16]| {
            let mut buf = [0u8; 4096];
            let b = Builder::access_request(&mut buf, 7, &authenticator).unwrap();
            let len = b.finish_request(&Secret::new(SECRET)).unwrap();
            buf[..len].to_vec()
        };
        let (old, new) = (request([1; 16]), request([2; 16]));
        let slot = Slot {
            sent: Instant::now(),
            authenticator: [2; 16],
        };
        let secret = Secret::new(SECRET);
        let mut tally = Tally::default();
        let late = reply(&old, Code::AccessAccept, SECRET);
        tally.timed_out(
            7,
            &Slot {
                sent: Instant::now(),
                authenticator: [1; 16],
            },
        );
        assert!(!tally.answers(&late, 7, &slot, &secret));
        assert_eq!((tally.stray, tally.errors, tally.timeouts), (1, 0, 1));
        let own = reply(&new, Code::AccessAccept, SECRET);
        assert!(tally.answers(&own, 7, &slot, &secret));
        tally.reply(&own, &slot, &secret, Code::AccessAccept, Instant::now());
        assert_eq!((tally.ok, tally.errors, tally.stray), (1, 0, 1));

        // Two generations late: the Identifier timed out twice before the answer came.
        let mut tally = Tally::default();
        for authenticator in [[1; 16], [2; 16]] {
            tally.timed_out(
                7,
                &Slot {
                    sent: Instant::now(),
                    authenticator,
                },
            );
        }
        let third = Slot {
            sent: Instant::now(),
            authenticator: [3; 16],
        };
        assert!(!tally.answers(&late, 7, &third, &secret));
        assert!(tally.late_answer(&own, 7, &secret));
        assert!(!tally.late_answer(&own, 7, &secret));
        assert_eq!((tally.stray, tally.errors, tally.timeouts), (2, 0, 2));
    }

    /// A responder on loopback that answers `answers` requests with `code` (keyed with
    /// `secret`) and then stops.
    fn responder(
        code: Code,
        secret: &'static [u8],
        answers: usize,
    ) -> (SocketAddr, thread::JoinHandle<Vec<Vec<u8>>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while seen.len() < answers {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    break;
                };
                seen.push(buf[..n].to_vec());
                socket
                    .send_to(&reply(&buf[..n], code, secret), from)
                    .unwrap();
            }
            seen
        });
        (addr, handle)
    }

    fn target(addr: SocketAddr, auth: Auth, expect: Code) -> Target {
        Target {
            addr,
            secret: SECRET.to_vec(),
            users: Arc::from(vec!["alice".to_string()]),
            password: b"alice-password".to_vec(),
            auth,
            expect,
            timeout: Duration::from_secs(2),
            rate: None,
        }
    }

    #[test]
    fn counts_verified_replies_with_several_sockets() {
        let (addr, peer) = responder(Code::AccessAccept, SECRET, 200);
        let shared = Shared::new(Length::Requests(200));
        let tally = run(&target(addr, Auth::Pap, Code::AccessAccept), 3, 8, &shared).unwrap();
        assert_eq!((tally.ok, tally.errors, tally.timeouts), (200, 0, 0));
        assert_eq!(tally.latencies.len(), 200);
        let seen = peer.join().unwrap();
        assert_eq!(seen.len(), 200);
        // The peer saw PAP requests whose password it can recover.
        let first = Packet::new_checked(&seen[0][..]).unwrap();
        assert_eq!(first.code(), Code::AccessRequest);
        assert_eq!(first.user_name(), Some(&b"alice"[..]));
        let mut out = [0u8; 128];
        let password = portcullis_protocol::radius::recover_password(
            first.user_password().unwrap(),
            &Secret::new(SECRET),
            &first.authenticator(),
            &mut out,
        )
        .unwrap();
        assert_eq!(password, b"alice-password");
    }

    #[test]
    fn user_names_cycle_over_the_list() {
        let (addr, peer) = responder(Code::AccessAccept, SECRET, 20);
        let mut t = target(addr, Auth::Chap, Code::AccessAccept);
        t.users = crate::users::names("alice", 10).into();
        let shared = Shared::new(Length::Requests(20));
        let tally = run(&t, 1, 4, &shared).unwrap();
        assert_eq!((tally.ok, tally.errors, tally.timeouts), (20, 0, 0));
        let seen = peer.join().unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for request in &seen {
            let name = Packet::new_checked(&request[..])
                .unwrap()
                .user_name()
                .unwrap()
                .to_vec();
            *counts.entry(String::from_utf8(name).unwrap()).or_insert(0) += 1;
        }
        // One socket: 20 requests are two laps over the 10 names, in order.
        let expected: std::collections::BTreeMap<String, i32> =
            (0..10).map(|i| (format!("alice-{i}"), 2)).collect();
        assert_eq!(counts, expected);
        let first: Vec<_> = seen
            .iter()
            .take(4)
            .map(|r| {
                Packet::new_checked(&r[..])
                    .unwrap()
                    .user_name()
                    .unwrap()
                    .to_vec()
            })
            .collect();
        assert_eq!(first, [&b"alice-0"[..], b"alice-1", b"alice-2", b"alice-3"]);
    }

    #[test]
    fn wrong_secret_and_wrong_code_are_errors() {
        let (addr, peer) = responder(Code::AccessAccept, b"another-secret!!", 20);
        let shared = Shared::new(Length::Requests(20));
        let tally = run(&target(addr, Auth::Chap, Code::AccessAccept), 1, 4, &shared).unwrap();
        assert_eq!((tally.ok, tally.errors), (0, 20));
        peer.join().unwrap();

        let (addr, peer) = responder(Code::AccessReject, SECRET, 20);
        let shared = Shared::new(Length::Requests(20));
        let tally = run(&target(addr, Auth::Chap, Code::AccessAccept), 2, 4, &shared).unwrap();
        assert_eq!((tally.ok, tally.errors), (0, 20));
        let seen = peer.join().unwrap();
        assert!(
            Packet::new_checked(&seen[0][..])
                .unwrap()
                .chap_password()
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn silence_is_counted_as_timeouts() {
        // Bound but never read: every request times out.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut t = target(silent.local_addr().unwrap(), Auth::Pap, Code::AccessAccept);
        t.timeout = Duration::from_millis(100);
        let shared = Shared::new(Length::Requests(6));
        let tally = run(&t, 2, 3, &shared).unwrap();
        assert_eq!((tally.ok, tally.timeouts), (0, 6));
    }

    #[test]
    fn open_loop_sends_on_schedule_and_verifies_every_reply() {
        let (addr, peer) = responder(Code::AccessAccept, SECRET, 120);
        let mut t = target(addr, Auth::Chap, Code::AccessAccept);
        t.rate = Some(4000.0);
        let shared = Shared::new(Length::Requests(120));
        let tally = run(&t, 2, 8, &shared).unwrap();
        assert_eq!((tally.ok, tally.errors, tally.timeouts), (120, 0, 0));
        assert_eq!(tally.latencies.len(), 120);
        assert_eq!(peer.join().unwrap().len(), 120);
    }

    #[test]
    fn open_loop_counts_silence_as_timeouts_and_ends() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut t = target(silent.local_addr().unwrap(), Auth::Pap, Code::AccessAccept);
        t.timeout = Duration::from_millis(100);
        t.rate = Some(1000.0);
        // A window of 2 per socket: the later requests wait for an Identifier to time out.
        let shared = Shared::new(Length::Requests(8));
        let tally = run(&t, 2, 4, &shared).unwrap();
        assert_eq!((tally.ok, tally.timeouts), (0, 8));
    }
}
