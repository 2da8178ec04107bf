//! Loopback fault proxies for the fault-injection tests: a UDP proxy (RADIUS) and a TCP proxy
//! (TACACS+) that sit between portcullis and a real server and break the path on a
//! deterministic schedule.
//!
//! A [`Schedule`] says what happens to the n-th datagram (or connection) in each direction:
//! either a fixed script (`Schedule::script`), or seeded pseudo-random draws
//! (`Schedule::random`) so a soak run can be replayed exactly from its seed. The proxies run
//! on plain threads, independent of the test's async runtime, and stop when dropped.

use std::collections::{BinaryHeap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the proxy threads look at their stop flag.
const POLL: Duration = Duration::from_millis(20);

/// SplitMix64: small, seedable, good enough to pick faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded at once, unchanged.
    Pass,
    /// Never forwarded.
    Drop,
    /// Forwarded after this long (datagrams behind it overtake it).
    Delay(Duration),
    /// Forwarded twice.
    Duplicate,
    /// Held until the next datagram in the same direction has been forwarded, then sent
    /// (or after `REORDER_HOLD` if none comes): the two arrive swapped.
    Reorder,
    /// Forwarded with one octet flipped (`xor` with a non-zero mask) at this offset (taken
    /// modulo the length).
    Corrupt { offset: usize, mask: u8 },
    /// Forwarded cut to this many octets.
    Truncate(usize),
}

/// The longest a reordered datagram waits for one to overtake it.
pub const REORDER_HOLD: Duration = Duration::from_millis(300);

/// Per-mille rates for [`Schedule::random`]; what is left over passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    pub drop: u32,
    pub delay: u32,
    pub duplicate: u32,
    pub reorder: u32,
    pub corrupt: u32,
    pub truncate: u32,
    /// Longest delay drawn.
    pub max_delay: Duration,
}

/// The faults for one direction of a proxy.
#[derive(Debug)]
pub enum Schedule {
    /// The n-th datagram gets `faults[n]`; after the script, everything passes.
    Script(Vec<Fault>),
    /// Every datagram gets a fault drawn from `rates` with this generator.
    Random(Rng, Rates),
}

impl Schedule {
    pub fn pass() -> Schedule {
        Schedule::Script(Vec::new())
    }

    pub fn script(faults: &[Fault]) -> Schedule {
        Schedule::Script(faults.to_vec())
    }

    pub fn random(seed: u64, rates: Rates) -> Schedule {
        Schedule::Random(Rng::new(seed), rates)
    }

    fn next(&mut self, index: u64) -> Fault {
        match self {
            Schedule::Script(faults) => usize::try_from(index)
                .ok()
                .and_then(|i| faults.get(i))
                .copied()
                .unwrap_or(Fault::Pass),
            Schedule::Random(rng, rates) => {
                let roll = rng.below(1000) as u32;
                let mut edge = 0;
                let mut hit = |rate: u32| {
                    edge += rate;
                    roll < edge
                };
                if hit(rates.drop) {
                    Fault::Drop
                } else if hit(rates.delay) {
                    let max = rates.max_delay.as_millis().max(1) as u64;
                    Fault::Delay(Duration::from_millis(1 + rng.below(max)))
                } else if hit(rates.duplicate) {
                    Fault::Duplicate
                } else if hit(rates.reorder) {
                    Fault::Reorder
                } else if hit(rates.corrupt) {
                    Fault::Corrupt {
                        offset: rng.below(4096) as usize,
                        mask: 1 + rng.below(255) as u8,
                    }
                } else if hit(rates.truncate) {
                    Fault::Truncate(rng.below(64) as usize)
                } else {
                    Fault::Pass
                }
            }
        }
    }
}

/// How many datagrams met each fault, per direction.
#[derive(Debug, Default)]
pub struct Counters {
    pub seen: AtomicU64,
    pub dropped: AtomicU64,
    pub delayed: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub corrupted: AtomicU64,
    pub truncated: AtomicU64,
}

impl Counters {
    fn count(&self, fault: Fault) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        let counter = match fault {
            Fault::Pass => return,
            Fault::Drop => &self.dropped,
            Fault::Delay(_) => &self.delayed,
            Fault::Duplicate => &self.duplicated,
            Fault::Reorder => &self.reordered,
            Fault::Corrupt { .. } => &self.corrupted,
            Fault::Truncate(_) => &self.truncated,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A datagram to send later.
struct Later {
    due: Instant,
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    bytes: Vec<u8>,
}

impl PartialEq for Later {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Later {}
impl PartialOrd for Later {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Later {
    /// Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.due.cmp(&self.due)
    }
}

fn send(socket: &UdpSocket, to: Option<SocketAddr>, bytes: &[u8]) {
    // A send that fails (the peer went away) is one more lost datagram.
    let _ = match to {
        Some(to) => socket.send_to(bytes, to),
        None => socket.send(bytes),
    };
}

/// A datagram held back to be reordered: the socket to send it on, where to, what.
type Held = (Arc<UdpSocket>, Option<SocketAddr>, Vec<u8>);

/// One direction of the UDP proxy: applies its schedule and sends.
struct Lane {
    schedule: Mutex<Schedule>,
    index: AtomicU64,
    counters: Arc<Counters>,
    later: mpsc::Sender<Later>,
    /// A reordered datagram waiting for the next one.
    held: Mutex<Option<Held>>,
}

impl Lane {
    fn forward(&self, socket: &Arc<UdpSocket>, to: Option<SocketAddr>, bytes: &[u8]) {
        let index = self.index.fetch_add(1, Ordering::Relaxed);
        let fault = self
            .schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next(index);
        self.counters.count(fault);
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        match fault {
            Fault::Pass => send(socket, to, bytes),
            Fault::Drop => {}
            Fault::Delay(delay) => self.later(socket, to, bytes.to_vec(), delay),
            Fault::Duplicate => {
                send(socket, to, bytes);
                send(socket, to, bytes);
            }
            Fault::Reorder => {
                // Sent after the next datagram of this lane, or by the timer thread after
                // REORDER_HOLD.
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Arc::clone(socket), to, bytes.to_vec()));
            }
            Fault::Corrupt { offset, mask } => {
                let mut bytes = bytes.to_vec();
                if !bytes.is_empty() {
                    let at = offset % bytes.len();
                    bytes[at] ^= mask;
                }
                send(socket, to, &bytes);
            }
            Fault::Truncate(len) => send(socket, to, &bytes[..len.min(bytes.len())]),
        }
        if let Some((socket, to, bytes)) = held {
            send(&socket, to, &bytes);
        }
    }

    fn later(&self, socket: &Arc<UdpSocket>, to: Option<SocketAddr>, bytes: Vec<u8>, d: Duration) {
        let _ = self.later.send(Later {
            due: Instant::now() + d,
            socket: Arc::clone(socket),
            to,
            bytes,
        });
    }

    /// Sends the held datagram once it has waited [`REORDER_HOLD`]; `since` is when this
    /// check first saw it.
    fn release_if_stale(&self, since: &mut Option<Instant>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match (held.is_some(), *since) {
            (false, _) => *since = None,
            (true, None) => *since = Some(Instant::now()),
            (true, Some(t)) if t.elapsed() >= REORDER_HOLD => {
                if let Some((socket, to, bytes)) = held.take() {
                    send(&socket, to, &bytes);
                }
                *since = None;
            }
            (true, Some(_)) => {}
        }
    }
}

/// A UDP proxy: clients send to [`UdpProxy::addr`]; each client source gets its own socket
/// towards the upstream, so replies find their way back.
pub struct UdpProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Client to server.
    pub requests: Arc<Counters>,
    /// Server to client.
    pub replies: Arc<Counters>,
}

impl UdpProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream`.
    pub fn start(upstream: SocketAddr, requests: Schedule, replies: Schedule) -> UdpProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind proxy"));
        front.set_read_timeout(Some(POLL)).expect("timeout");
        let addr = front.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let (later_tx, later_rx) = mpsc::channel::<Later>();
        let request_counters = Arc::new(Counters::default());
        let reply_counters = Arc::new(Counters::default());
        let up_lane = Arc::new(Lane {
            schedule: Mutex::new(requests),
            index: AtomicU64::new(0),
            counters: Arc::clone(&request_counters),
            later: later_tx.clone(),
            held: Mutex::new(None),
        });
        let down_lane = Arc::new(Lane {
            schedule: Mutex::new(replies),
            index: AtomicU64::new(0),
            counters: Arc::clone(&reply_counters),
            later: later_tx,
            held: Mutex::new(None),
        });
        let mut threads = Vec::new();

        // Timer: delayed datagrams, and reordered ones nobody overtook.
        {
            let stop = Arc::clone(&stop);
            let lanes = [Arc::clone(&up_lane), Arc::clone(&down_lane)];
            threads.push(std::thread::spawn(move || {
                let mut heap = BinaryHeap::new();
                let mut since = [None, None];
                while !stop.load(Ordering::Relaxed) {
                    let wait = heap
                        .peek()
                        .map(|l: &Later| l.due.saturating_duration_since(Instant::now()))
                        .unwrap_or(POLL)
                        .min(POLL);
                    match later_rx.recv_timeout(wait) {
                        Ok(later) => heap.push(later),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    let now = Instant::now();
                    while heap.peek().is_some_and(|l| l.due <= now) {
                        if let Some(l) = heap.pop() {
                            send(&l.socket, l.to, &l.bytes);
                        }
                    }
                    for (lane, since) in lanes.iter().zip(since.iter_mut()) {
                        lane.release_if_stale(since);
                    }
                }
            }));
        }

        // Front: client datagrams to per-client upstream sockets.
        {
            let stop = Arc::clone(&stop);
            let front = Arc::clone(&front);
            threads.push(std::thread::spawn(move || {
                let mut uplinks: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
                let mut readers = Vec::new();
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let (n, client) = match front.recv_from(&mut buf) {
                        Ok(got) => got,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            continue;
                        }
                        Err(_) => continue,
                    };
                    let uplink = uplinks.entry(client).or_insert_with(|| {
                        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind uplink");
                        socket.connect(upstream).expect("connect uplink");
                        socket.set_read_timeout(Some(POLL)).expect("timeout");
                        let socket = Arc::new(socket);
                        let reader = Arc::clone(&socket);
                        let front = Arc::clone(&front);
                        let lane = Arc::clone(&down_lane);
                        let stop = Arc::clone(&stop);
                        readers.push(std::thread::spawn(move || {
                            let mut buf = vec![0u8; 65536];
                            while !stop.load(Ordering::Relaxed) {
                                if let Ok(n) = reader.recv(&mut buf) {
                                    lane.forward(&front, Some(client), &buf[..n]);
                                }
                            }
                        }));
                        socket
                    });
                    up_lane.forward(uplink, None, &buf[..n]);
                }
                for reader in readers {
                    let _ = reader.join();
                }
            }));
        }
        UdpProxy {
            addr,
            stop,
            threads,
            requests: request_counters,
            replies: reply_counters,
        }
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What the TCP proxy does to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFault {
    /// Both directions forwarded unchanged.
    Pass,
    /// Accepted, then reset at once (SO_LINGER 0), before a byte is read.
    ResetOnAccept,
    /// The server's reply is forwarded up to `after` octets, then the client connection is
    /// reset (RST).
    ResetReplyAfter(usize),
    /// The server's reply is forwarded up to `after` octets, then the client connection is
    /// closed cleanly (FIN): a half frame.
    CloseReplyAfter(usize),
    /// The server's reply is forwarded up to `after` octets, then nothing more, with the
    /// connection left open until the client gives up.
    StallReplyAfter(usize),
    /// The server's reply is forwarded up to `after` octets, then `len` octets of seeded
    /// garbage replace the rest, and the connection stays open.
    GarbageReplyAfter { after: usize, len: usize, seed: u64 },
    /// Everything forwarded, the reply delayed by this long.
    DelayReply(Duration),
}

/// A TCP proxy: one [`TcpFault`] per accepted connection, in order (then `Pass`).
pub struct TcpProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
}

impl TcpProxy {
    pub fn start(upstream: SocketAddr, faults: &[TcpFault]) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let faults = faults.to_vec();
        let thread = {
            let stop = Arc::clone(&stop);
            let connections = Arc::clone(&connections);
            std::thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let client = match listener.accept() {
                        Ok((client, _)) => client,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    let n = connections.fetch_add(1, Ordering::Relaxed);
                    let fault = usize::try_from(n)
                        .ok()
                        .and_then(|i| faults.get(i))
                        .copied()
                        .unwrap_or(TcpFault::Pass);
                    let stop = Arc::clone(&stop);
                    workers.push(std::thread::spawn(move || {
                        connection(client, upstream, fault, &stop);
                    }));
                }
                for worker in workers {
                    let _ = worker.join();
                }
            })
        };
        TcpProxy {
            addr,
            stop,
            thread: Some(thread),
            connections,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Closes `stream` with a TCP reset.
pub fn reset(stream: TcpStream) {
    let _ = socket_linger_zero(&stream);
    drop(stream);
}

/// SO_LINGER with a zero timeout: close() then sends RST instead of FIN. (std's
/// `TcpStream::set_linger` is not stable.)
fn socket_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    linger::set_zero(stream)
}

#[allow(unsafe_code)]
mod linger {
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }

    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }

    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;

    pub fn set_zero(stream: &TcpStream) -> std::io::Result<()> {
        let value = Linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid fd and a correctly sized, live struct.
        let rc = unsafe {
            setsockopt(
                stream.as_raw_fd(),
                SOL_SOCKET,
                SO_LINGER,
                &value,
                std::mem::size_of::<Linger>() as u32,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// Runs one proxied connection until either side closes, the fault ends it, or the proxy
/// stops.
fn connection(client: TcpStream, upstream: SocketAddr, fault: TcpFault, stop: &AtomicBool) {
    if fault == TcpFault::ResetOnAccept {
        reset(client);
        return;
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        reset(client);
        return;
    };
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(POLL));
    let _ = server.set_read_timeout(Some(POLL));
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let done = Arc::new(AtomicBool::new(false));
    // Client to server: plain copy.
    let upward = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !done.load(Ordering::Relaxed) {
                match client_r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if server_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            let _ = server_w.shutdown(Shutdown::Write);
        })
    };
    // Server to client, with the fault.
    let mut server_r = server;
    let mut client_w = client;
    let mut forwarded = 0usize;
    let mut buf = [0u8; 4096];
    let limit = match fault {
        TcpFault::ResetReplyAfter(n)
        | TcpFault::CloseReplyAfter(n)
        | TcpFault::StallReplyAfter(n)
        | TcpFault::GarbageReplyAfter { after: n, .. } => Some(n),
        _ => None,
    };
    let mut stalled = false;
    while !stop.load(Ordering::Relaxed) {
        if stalled {
            // Keep the connection open and silent until the client closes it.
            let mut probe = [0u8; 1];
            match client_w.peek(&mut probe) {
                Ok(0) => break,
                Ok(_) => std::thread::sleep(POLL),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
            continue;
        }
        let n = match server_r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        if let TcpFault::DelayReply(delay) = fault {
            std::thread::sleep(delay);
        }
        let take = match limit {
            Some(limit) => n.min(limit.saturating_sub(forwarded)),
            None => n,
        };
        if client_w.write_all(&buf[..take]).is_err() {
            break;
        }
        forwarded += take;
        if limit.is_some_and(|limit| forwarded >= limit) {
            match fault {
                TcpFault::ResetReplyAfter(_) => {
                    reset(client_w);
                    done.store(true, Ordering::Relaxed);
                    let _ = upward.join();
                    return;
                }
                TcpFault::CloseReplyAfter(_) => {
                    let _ = client_w.shutdown(Shutdown::Both);
                    break;
                }
                TcpFault::StallReplyAfter(_) => stalled = true,
                TcpFault::GarbageReplyAfter { len, seed, .. } => {
                    let mut rng = Rng::new(seed);
                    let garbage: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                    let _ = client_w.write_all(&garbage);
                    stalled = true;
                }
                _ => {}
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = client_w.shutdown(Shutdown::Both);
    let _ = upward.join();
}
