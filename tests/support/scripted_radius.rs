//! A RADIUS server on loopback that answers as a test's script says: crafted, forged or
//! case-blind replies from "upstream", to see what portcullis makes of them.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How the scripted server answers the n-th request (0-based): the datagrams to send back.
pub type Answerer = Box<dyn Fn(&[u8], usize) -> Vec<Vec<u8>> + Send + Sync>;

/// A RADIUS server on loopback that answers as a script says. Stops when dropped.
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scripted {
    /// Starts answering on a free loopback port.
    pub fn start(answer: Answerer) -> Scripted {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let nth = requests.fetch_add(1, Ordering::Relaxed);
                    for reply in answer(&buf[..n], nth) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        Scripted {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
