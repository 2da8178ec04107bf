//! Duplicate detection (RFC 5080 §2.2.2): a bounded table from (source, Identifier, Request
//! Authenticator) to the reply sent, or to "still walking".

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use portcullis_protocol::radius::AUTHENTICATOR_LEN;

/// What identifies one request: RFC 5080 §2.2.2 "the source IP address and port, the
/// Identifier, and the Request Authenticator".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Where the request came from (and where the reply goes).
    pub source: SocketAddr,
    /// The Identifier octet.
    pub identifier: u8,
    /// The Request Authenticator.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
}

/// The state of a request seen before.
#[derive(Debug, Clone)]
enum Slot {
    /// Its walk has not finished: a retransmission is dropped.
    InFlight,
    /// It was answered with these octets: a retransmission gets them again.
    Done(Vec<u8>),
}

/// What [`Cache::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// A new request; it is now marked in flight.
    New,
    /// A retransmission of a request still being walked.
    InFlight,
    /// A retransmission of a request already answered, with the reply sent.
    Done(Arc<[u8]>),
}

/// A FIFO-bounded table: when full, the oldest entry makes room. Entries are never refreshed
/// by a hit, so a busy client cannot pin its entries.
#[derive(Debug)]
pub struct Cache {
    capacity: usize,
    slots: HashMap<Key, Slot>,
    /// Keys in insertion order; each key of `slots` appears exactly once.
    order: VecDeque<Key>,
    /// Buffers of replies that left the table, reused for the next ones: once the table is
    /// full, a reply allocates nothing.
    spare: Vec<Vec<u8>>,
}

/// Spare buffers kept at most.
const MAX_SPARE: usize = 256;

impl Cache {
    /// An empty table holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Cache {
        let capacity = capacity.max(1);
        Cache {
            capacity,
            slots: HashMap::new(),
            order: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Changes the bound; extra entries go, oldest first.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.evict(0);
    }

    /// Looks `key` up; a new key is recorded as in flight.
    pub fn begin(&mut self, key: Key) -> Begin {
        match self.slots.get(&key) {
            Some(Slot::InFlight) => Begin::InFlight,
            Some(Slot::Done(reply)) => Begin::Done(Arc::from(reply.as_slice())),
            None => {
                self.insert(key, Slot::InFlight);
                Begin::New
            }
        }
    }

    /// Records the reply to `key` (re-inserting it if it was evicted meanwhile).
    pub fn finish(&mut self, key: Key, reply: &[u8]) {
        let mut kept = self.spare.pop().unwrap_or_default();
        kept.clear();
        kept.extend_from_slice(reply);
        match self.slots.get_mut(&key) {
            Some(slot) => {
                let before = std::mem::replace(slot, Slot::Done(kept));
                self.recycle(before);
            }
            None => self.insert(key, Slot::Done(kept)),
        }
    }

    /// Keeps the buffer of a reply that left the table for the next one.
    fn recycle(&mut self, slot: Slot) {
        if let Slot::Done(buffer) = slot
            && self.spare.len() < MAX_SPARE
        {
            self.spare.push(buffer);
        }
    }

    /// Forgets `key`: the request was dropped after [`Cache::begin`], so a retransmission
    /// must be treated as new.
    pub fn abandon(&mut self, key: &Key) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.retain(|k| k != key);
            self.recycle(slot);
        }
    }

    fn insert(&mut self, key: Key, slot: Slot) {
        self.evict(1);
        self.slots.insert(key, slot);
        self.order.push_back(key);
    }

    /// Drops the oldest entries until `room` more fit.
    fn evict(&mut self, room: usize) {
        while self.slots.len() + room > self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    if let Some(slot) = self.slots.remove(&oldest) {
                        self.recycle(slot);
                    }
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(identifier: u8) -> Key {
        Key {
            source: "127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!()),
            identifier,
            authenticator: [identifier; AUTHENTICATOR_LEN],
        }
    }

    #[test]
    fn new_in_flight_done() {
        let mut cache = Cache::new(4);
        assert_eq!(cache.begin(key(1)), Begin::New);
        assert_eq!(cache.begin(key(1)), Begin::InFlight);
        let reply: Arc<[u8]> = Arc::from(&b"reply"[..]);
        cache.finish(key(1), &reply);
        assert_eq!(cache.begin(key(1)), Begin::Done(reply));
        // Another Identifier, or another authenticator, is another request.
        assert_eq!(cache.begin(key(2)), Begin::New);
        let mut other = key(1);
        other.authenticator[0] ^= 1;
        assert_eq!(cache.begin(other), Begin::New);
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn bounded_fifo() {
        let mut cache = Cache::new(3);
        for id in 0..5 {
            assert_eq!(cache.begin(key(id)), Begin::New);
        }
        assert_eq!(cache.len(), 3);
        // 0 and 1 were evicted, oldest first; hits do not refresh.
        assert_eq!(cache.begin(key(2)), Begin::InFlight);
        assert_eq!(cache.begin(key(0)), Begin::New);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.begin(key(2)), Begin::New);
        cache.set_capacity(1);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.order.len(), 1);
    }

    #[test]
    fn abandon_and_finish_after_eviction() {
        let mut cache = Cache::new(2);
        assert_eq!(cache.begin(key(1)), Begin::New);
        cache.abandon(&key(1));
        assert!(cache.is_empty());
        assert_eq!(cache.begin(key(1)), Begin::New);
        assert_eq!(cache.begin(key(2)), Begin::New);
        assert_eq!(cache.begin(key(3)), Begin::New);
        // key 1 was evicted while in flight; its reply is still remembered.
        cache.finish(key(1), b"r");
        assert!(matches!(cache.begin(key(1)), Begin::Done(_)));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.order.len(), 2);
    }
}
