//! The open-loop RADIUS driver: requests leave at a fixed rate whatever the replies do, up to
//! the window of Identifiers per socket. Latency is counted from when a request was due, not
//! from when it left, so a sender held back by a full window (or a late wake-up) does not
//! hide the wait (no coordinated omission). Comparing two proxies at the same offered load
//! separates their own queueing from the machine's.

use std::io;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use portcullis_protocol::radius::{MAX_PACKET_LEN, Secret};

use crate::radius::{Slot, Tally, Target, build_request, nothing_received, transmit};
use crate::run::{Rng, Shared};
use crate::users::Cycle;

/// What the sender and the receiver of one socket share.
#[derive(Debug)]
struct Window {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// The sender has sent its share and stopped.
    done: bool,
}

impl Window {
    fn new(size: usize) -> Window {
        Window {
            slots: vec![None; size],
            free: (0..size).rev().collect(),
            done: false,
        }
    }

    fn release(&mut self, id: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(id)?.take()?;
        self.free.push(id);
        Some(slot)
    }
}

fn lock(window: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    window.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One socket sending every `interval` with at most `size` requests outstanding, until
/// `shared` says stop.
pub fn worker(
    socket: UdpSocket,
    target: &Target,
    size: usize,
    names: Cycle,
    shared: &Arc<Shared>,
    interval: Duration,
) -> io::Result<Tally> {
    let window = Arc::new(Mutex::new(Window::new(size)));
    let sender = {
        let (socket, target) = (socket.try_clone()?, target.clone());
        let (window, shared) = (Arc::clone(&window), Arc::clone(shared));
        thread::spawn(move || send_paced(&socket, &target, names, &window, &shared, interval))
    };
    let tally = receive(&socket, target, &window, shared);
    sender
        .join()
        .map_err(|_| io::Error::other("a sender thread panicked"))??;
    tally
}

fn send_paced(
    socket: &UdpSocket,
    target: &Target,
    mut names: Cycle,
    window: &Mutex<Window>,
    shared: &Shared,
    interval: Duration,
) -> io::Result<()> {
    let secret = Secret::new(target.secret.as_slice());
    let mut rng = Rng::seeded();
    let mut out = [0u8; MAX_PACKET_LEN];
    let mut due = Instant::now();
    loop {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let Some(id) = lock(window).free.pop() else {
            // The window is full: this request waits, and its latency counts from `due`.
            thread::sleep(Duration::from_micros(50));
            continue;
        };
        if !shared.take() {
            let mut window = lock(window);
            window.free.push(id);
            window.done = true;
            return Ok(());
        }
        let user = target.user(names.next_index());
        let (len, authenticator) = build_request(target, user, &secret, &mut rng, &mut out, id)?;
        if let Some(slot) = lock(window).slots.get_mut(id) {
            *slot = Some(Slot {
                sent: due,
                authenticator,
            });
        }
        transmit(socket, out.get(..len).unwrap_or_default())?;
        due += interval;
    }
}

fn receive(
    socket: &UdpSocket,
    target: &Target,
    window: &Mutex<Window>,
    shared: &Shared,
) -> io::Result<Tally> {
    let secret = Secret::new(target.secret.as_slice());
    let mut tally = Tally::default();
    let mut buf = [0u8; MAX_PACKET_LEN];
    let mut last_sweep = Instant::now();
    loop {
        {
            let window = lock(window);
            if window.done && window.slots.iter().all(Option::is_none) {
                return Ok(tally);
            }
        }
        match socket.recv(&mut buf) {
            Ok(len) => {
                let now = Instant::now();
                let datagram = buf.get(..len).unwrap_or_default();
                let id = datagram.get(1).map(|&id| usize::from(id));
                let waiting = id.and_then(|id| lock(window).slots.get(id).copied().flatten());
                let Some(slot) = waiting else {
                    // A late answer to a request already counted as timed out, or garbage.
                    if !id.is_some_and(|id| tally.late_answer(datagram, id, &secret)) {
                        tally.errors += 1;
                    }
                    continue;
                };
                let id = id.unwrap_or_default();
                if !tally.answers(datagram, id, &slot, &secret) {
                    continue;
                }
                lock(window).release(id);
                tally.reply(datagram, &slot, &secret, target.expect, now);
                shared.done();
            }
            Err(e) if nothing_received(&e) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(20) {
            last_sweep = now;
            let mut window = lock(window);
            for id in 0..window.slots.len() {
                let expired = match window.slots.get(id) {
                    Some(Some(slot))
                        if now.saturating_duration_since(slot.sent) >= target.timeout =>
                    {
                        Some(*slot)
                    }
                    _ => None,
                };
                if let Some(slot) = expired {
                    window.release(id);
                    tally.timed_out(id, &slot);
                    shared.done();
                }
            }
        }
    }
}
