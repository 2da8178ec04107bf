//! Framing RADIUS packets carried over a byte stream (RadSec: RADIUS over TLS, RFC 6614;
//! RADIUS over (D)TLS, draft-ietf-radext-radiusdtls-bis).
//!
//! On a stream there are no datagram boundaries: packets are sent back to back and each is
//! delimited by its own Length field, octets 3 and 4 of the header, big-endian (RFC 6614 §2.5,
//! which carries RADIUS packets on TLS as they are, with no framing of their own). A Length
//! outside 20..=4096 (RFC 2865 §3: "The minimum length is 20 and maximum length is 4096")
//! can only mean the stream is corrupt or not RADIUS: the next packet's start cannot be found,
//! so the stream cannot be resynchronised and the connection must be closed.
//!
//! The contract, sans-IO and without allocation:
//! - [`frame_len`] looks at the octets received so far, the start of a packet first, and
//!   says whether a whole packet is there and how long it is, that more octets are needed, or
//!   that the Length field (readable once 4 octets are in) is out of range.
//! - [`Framer`] owns a fixed buffer of twice the largest packet. The I/O layer reads into
//!   [`Framer::spare`], records the count with [`Framer::filled`], then calls
//!   [`Framer::next_packet`] until it returns `Ok(None)`. Each packet returned is exactly
//!   Length octets (20..=4096); octets after it belong to the next packet and stay buffered.
//!   While no whole packet is buffered and no error is pending, [`Framer::spare`] is never
//!   empty, so a read can always make progress.
//! - Once [`Framer::next_packet`] returns an error the framer is failed for good: every later
//!   call returns the same error, [`Framer::spare`] is empty and [`Framer::filled`] records
//!   nothing. The I/O layer closes the connection.
//! - At end of stream, a non-zero [`Framer::buffered`] is a packet cut off by the close.
//!
//! Only the framing is checked here: a packet returned still goes through
//! [`super::Packet::new_checked`] before anything reads its attributes.

use core::fmt;

use super::{HEADER_LEN, MAX_PACKET_LEN};

/// Octets the [`Framer`] holds: one maximal packet (RFC 2865 §3) plus what a read brought of
/// the next one.
const CAPACITY: usize = 2 * MAX_PACKET_LEN;

/// Why a stream of RADIUS packets cannot be framed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A packet's Length field is outside 20..=4096 (RFC 2865 §3); the stream cannot be
    /// resynchronised and the connection must be closed (RFC 6614 §2.5).
    Length(u16),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::Length(len) => {
                write!(
                    f,
                    "Length field {len} outside 20..=4096: the stream cannot be resynchronised"
                )
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// The length of the packet at the start of `buf`, the octets received so far:
/// `Ok(Some(len))` when all `len` octets of it are in `buf` (octets after them belong to the
/// next packet), `Ok(None)` when more octets are needed (fewer than 4, or fewer than the
/// Length field), [`FrameError::Length`] when the Length field is outside 20..=4096.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    // RFC 2865 §3: Code, Identifier, then the two octets of Length, big-endian.
    let [_, _, hi, lo, ..] = *buf else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([hi, lo]);
    let len = usize::from(length);
    // RFC 2865 §3: "The minimum length is 20 and maximum length is 4096." On a stream a Length
    // out of range leaves no way to find the next packet (RFC 6614 §2.5).
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
        return Err(FrameError::Length(length));
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Splits a byte stream into RADIUS packets by their Length fields (RFC 6614 §2.5), in a
/// fixed buffer of 8192 octets: no allocation, no I/O.
///
/// ```
/// use portcullis_protocol::radius::stream::Framer;
///
/// // Two Access-Requests with no attributes, back to back, then the start of a third.
/// let mut stream = [0u8; 43];
/// stream[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x14]);
/// stream[20..24].copy_from_slice(&[0x01, 0x02, 0x00, 0x14]);
/// stream[40..].copy_from_slice(&[0x01, 0x03, 0x00]);
///
/// let mut framer = Framer::new();
/// let spare = framer.spare();
/// spare[..stream.len()].copy_from_slice(&stream); // as `read(framer.spare())` would
/// framer.filled(stream.len());
/// assert_eq!(framer.next_packet().map(|p| p.map(<[u8]>::len)), Ok(Some(20)));
/// assert_eq!(framer.next_packet().map(|p| p.map(|p| p[1])), Ok(Some(0x02)));
/// assert_eq!(framer.next_packet(), Ok(None));
/// assert_eq!(framer.buffered(), 3);
/// ```
pub struct Framer {
    /// Received octets; those not yet returned are `buf[start..end]`.
    buf: [u8; CAPACITY],
    /// Offset of the first octet not yet returned by [`Framer::next_packet`].
    start: usize,
    /// Offset after the last octet received. Invariant: `start <= end <= CAPACITY`.
    end: usize,
    /// The error [`Framer::next_packet`] returned, returned again on every later call.
    error: Option<FrameError>,
}

impl Framer {
    /// An empty framer, at the start of a stream.
    pub const fn new() -> Self {
        Framer {
            buf: [0; CAPACITY],
            start: 0,
            end: 0,
            error: None,
        }
    }

    /// Where the I/O layer reads the next octets into; record how many with
    /// [`Framer::filled`]. Buffered octets are moved to the front of the buffer first when the
    /// room after them could not hold a maximal packet, so the slice is never empty while no
    /// whole packet is buffered. It is empty once the framer has failed, and can be when
    /// whole packets are waiting: drain [`Framer::next_packet`] before reading.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.error.is_some() {
            return &mut [];
        }
        // A packet still incomplete has fewer than 4096 octets buffered (RFC 2865 §3), so from
        // a start at or before CAPACITY - 4096 it always has room to grow.
        if CAPACITY.saturating_sub(self.start) < MAX_PACKET_LEN
            && self.start <= self.end
            && self.end <= CAPACITY
        {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// Records that `n` octets were read into [`Framer::spare`]. A count larger than the
    /// spare room is clamped to it; nothing is recorded once the framer has failed.
    pub fn filled(&mut self, n: usize) {
        if self.error.is_some() {
            return;
        }
        self.end = self.end.saturating_add(n).min(CAPACITY);
    }

    /// The next whole packet, exactly Length octets (RFC 6614 §2.5), or `Ok(None)` when more
    /// octets are needed. [`FrameError::Length`] when the packet's Length field is outside
    /// 20..=4096 (RFC 2865 §3); from then on every call returns that error.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, FrameError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let pending = self.buf.get(self.start..self.end).unwrap_or_default();
        let len = match frame_len(pending) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(None),
            Err(error) => {
                self.error = Some(error);
                return Err(error);
            }
        };
        let start = self.start;
        // frame_len returned a length within the pending octets, so start + len <= end.
        self.start += len;
        if self.start == self.end {
            // Nothing left: the next read starts at the front. The octets returned below stay
            // in place until the caller, done with them, asks for `spare` again.
            self.start = 0;
            self.end = 0;
        }
        // Always `Some`: start..start + len lies within the octets received.
        Ok(self.buf.get(start..start + len))
    }

    /// Octets received and not yet returned as a packet.
    pub fn buffered(&self) -> usize {
        self.end.saturating_sub(self.start)
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::radius::{Builder, Code, Secret, attr_type};

    /// An Access-Request signed with a Message-Authenticator, with User-Name `user` and a
    /// NAS-Identifier.
    fn access_request(identifier: u8, user: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = Builder::access_request(&mut buf, identifier, &[identifier; 16]).unwrap();
        b.attribute(attr_type::USER_NAME, user).unwrap();
        b.attribute(attr_type::NAS_IDENTIFIER, b"appliance-1")
            .unwrap();
        let len = b.finish_request(&Secret::new(b"radsec")).unwrap();
        buf[..len].to_vec()
    }

    /// A packet of exactly 4096 octets (RFC 2865 §3's maximum).
    fn maximal_packet(identifier: u8) -> Vec<u8> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let mut b = Builder::new(&mut buf, Code::AccessAccept, identifier, &[7; 16]).unwrap();
        for _ in 0..15 {
            b.attribute(attr_type::CLASS, &[0x5a; 253]).unwrap();
        }
        b.attribute(attr_type::CLASS, &[0xa5; 249]).unwrap();
        let len = b.finish_unsigned();
        assert_eq!(len, MAX_PACKET_LEN);
        buf.to_vec()
    }

    /// A header whose Length field is `length`, then `length` octets of padding (at most 64).
    fn with_length(length: u16) -> Vec<u8> {
        let mut bytes = std::vec![0x01, 0x09];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.resize(4 + usize::from(length).min(64), 0);
        bytes
    }

    /// Copies `bytes` into the framer's spare room (all of them must fit).
    fn push(framer: &mut Framer, bytes: &[u8]) {
        let spare = framer.spare();
        spare[..bytes.len()].copy_from_slice(bytes);
        framer.filled(bytes.len());
    }

    /// Feeds `stream` in reads of at most `chunk` octets, draining after each read: the
    /// packets, then the error or the octets left buffered at the end.
    fn frame(stream: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Result<usize, FrameError>) {
        let mut framer = Framer::new();
        let mut packets = Vec::new();
        let mut rest = stream;
        loop {
            loop {
                match framer.next_packet() {
                    Ok(Some(packet)) => packets.push(packet.to_vec()),
                    Ok(None) => break,
                    Err(e) => return (packets, Err(e)),
                }
            }
            if rest.is_empty() {
                return (packets, Ok(framer.buffered()));
            }
            let spare = framer.spare();
            assert!(!spare.is_empty(), "no room while a packet is incomplete");
            let n = chunk.min(spare.len()).min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            framer.filled(n);
            rest = &rest[n..];
        }
    }

    #[test]
    fn frame_len_reads_the_length_field() {
        let request = access_request(1, b"alice");
        let len = request.len();
        assert_eq!(frame_len(&[]), Ok(None));
        assert_eq!(frame_len(&request[..3]), Ok(None));
        assert_eq!(frame_len(&request[..4]), Ok(None));
        assert_eq!(frame_len(&request[..len - 1]), Ok(None));
        assert_eq!(frame_len(&request), Ok(Some(len)));
        let mut longer = request.clone();
        longer.extend_from_slice(&[0xff; 5]);
        assert_eq!(frame_len(&longer), Ok(Some(len)));
        // RFC 2865 §3: 20..=4096, checked as soon as the Length field is in.
        assert_eq!(frame_len(&[1, 0, 0, 20]), Ok(None));
        assert_eq!(frame_len(&[1, 0, 0, 19]), Err(FrameError::Length(19)));
        assert_eq!(
            frame_len(&[1, 0, 0x10, 0x01]),
            Err(FrameError::Length(4097))
        );
        assert_eq!(frame_len(&[1, 0, 0, 0]), Err(FrameError::Length(0)));
        assert_eq!(
            frame_len(&[1, 0, 0xff, 0xff]),
            Err(FrameError::Length(0xffff))
        );
    }

    #[test]
    fn two_packets_in_one_read() {
        let first = access_request(1, b"alice");
        let second = access_request(2, b"bob");
        let mut framer = Framer::new();
        push(&mut framer, &[first.as_slice(), second.as_slice()].concat());
        assert_eq!(framer.next_packet(), Ok(Some(first.as_slice())));
        assert_eq!(framer.buffered(), second.len());
        assert_eq!(framer.next_packet(), Ok(Some(second.as_slice())));
        assert_eq!(framer.next_packet(), Ok(None));
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn trailing_octets_belong_to_the_next_packet() {
        let first = access_request(1, b"alice");
        let second = access_request(2, b"bob");
        let mut framer = Framer::new();
        push(&mut framer, &[first.as_slice(), &second[..3]].concat());
        assert_eq!(framer.next_packet(), Ok(Some(first.as_slice())));
        assert_eq!(framer.next_packet(), Ok(None));
        assert_eq!(framer.buffered(), 3);
        push(&mut framer, &second[3..]);
        assert_eq!(framer.next_packet(), Ok(Some(second.as_slice())));
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn packet_split_at_every_offset() {
        let first = access_request(1, b"alice");
        let second = access_request(2, b"bob");
        let stream = [first.as_slice(), second.as_slice()].concat();
        for split in 0..=stream.len() {
            let mut framer = Framer::new();
            let mut packets = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                push(&mut framer, part);
                while let Some(packet) = framer.next_packet().unwrap() {
                    packets.push(packet.to_vec());
                }
            }
            assert_eq!(packets, [first.clone(), second.clone()], "split at {split}");
            assert_eq!(framer.buffered(), 0);
        }
    }

    #[test]
    fn maximal_packet_of_4096_octets() {
        let big = maximal_packet(3);
        let small = access_request(4, b"carol");
        let stream = [small.as_slice(), &big, &big, &small, &big].concat();
        let expected = [small.clone(), big.clone(), big.clone(), small, big];
        for chunk in [1, 19, 1500, 4095, 4096, 4097, CAPACITY] {
            assert_eq!(
                frame(&stream, chunk),
                (expected.to_vec(), Ok(0)),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn length_19_and_4097_refused() {
        for length in [19, 4097] {
            let mut framer = Framer::new();
            push(&mut framer, &with_length(length));
            assert_eq!(framer.next_packet(), Err(FrameError::Length(length)));
        }
        // After a good packet, a bad Length is found at the next packet's start.
        let good = access_request(1, b"alice");
        let stream = [good.as_slice(), &with_length(4097)].concat();
        assert_eq!(
            frame(&stream, 7),
            (std::vec![good], Err(FrameError::Length(4097)))
        );
    }

    #[test]
    fn length_0_refused() {
        let mut framer = Framer::new();
        push(&mut framer, &[0x01, 0x00, 0x00]);
        assert_eq!(framer.next_packet(), Ok(None));
        push(&mut framer, &[0x00]);
        assert_eq!(framer.next_packet(), Err(FrameError::Length(0)));
    }

    #[test]
    fn reads_of_one_octet() {
        let packets = [
            access_request(1, b"alice"),
            maximal_packet(2),
            access_request(3, b"bob"),
        ];
        let stream = packets.concat();
        let mut framer = Framer::new();
        let mut got = Vec::new();
        for (i, &octet) in stream.iter().enumerate() {
            push(&mut framer, &[octet]);
            assert_eq!(
                framer.buffered(),
                1 + i - got.iter().map(Vec::len).sum::<usize>()
            );
            while let Some(packet) = framer.next_packet().unwrap() {
                got.push(packet.to_vec());
            }
        }
        assert_eq!(got, packets);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn error_sticks() {
        let mut framer = Framer::new();
        push(&mut framer, &with_length(4097));
        assert_eq!(framer.next_packet(), Err(FrameError::Length(4097)));
        assert_eq!(framer.next_packet(), Err(FrameError::Length(4097)));
        let buffered = framer.buffered();
        // A failed framer takes nothing more, not even a good packet.
        assert!(framer.spare().is_empty());
        framer.filled(20);
        assert_eq!(framer.buffered(), buffered);
        assert_eq!(framer.next_packet(), Err(FrameError::Length(4097)));
    }

    #[test]
    fn spare_never_empty_while_incomplete() {
        let mut stream = Vec::new();
        for i in 0..40u8 {
            if i % 3 == 0 {
                stream.extend_from_slice(&maximal_packet(i));
            } else {
                stream.extend_from_slice(&access_request(i, &[b'u'; 40][..usize::from(i)]));
            }
        }
        for chunk in [
            1, 2, 3, 5, 20, 21, 1499, 1500, 4095, 4096, 4097, 8191, CAPACITY,
        ] {
            // `frame` asserts a non-empty spare before every read.
            let (packets, end) = frame(&stream, chunk);
            assert_eq!(packets.concat(), stream, "chunk {chunk}");
            assert_eq!(end, Ok(0));
        }
    }

    #[test]
    fn spare_empty_only_while_whole_packets_wait() {
        let request = access_request(1, b"alice");
        let mut framer = Framer::new();
        // Read without draining until the buffer is full.
        let mut rest: Vec<u8> = request.repeat(CAPACITY / request.len() + 1);
        while !framer.spare().is_empty() {
            let spare = framer.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            framer.filled(n);
            rest.drain(..n);
        }
        assert_eq!(framer.buffered(), CAPACITY);
        assert_eq!(framer.next_packet(), Ok(Some(request.as_slice())));
        while framer.buffered() >= request.len() {
            assert_eq!(framer.next_packet(), Ok(Some(request.as_slice())));
        }
        assert_eq!(framer.next_packet(), Ok(None));
        assert!(framer.spare().len() >= MAX_PACKET_LEN);
    }

    #[test]
    fn filled_clamps_a_bogus_count() {
        let mut framer = Framer::new();
        let room = framer.spare().len();
        framer.filled(usize::MAX);
        assert_eq!(framer.buffered(), room);
        framer.filled(usize::MAX);
        assert_eq!(framer.buffered(), CAPACITY);
        // Zeros: a Length of 0.
        assert_eq!(framer.next_packet(), Err(FrameError::Length(0)));
    }

    #[test]
    fn default_is_new_and_debug_omits_the_buffer() {
        let framer = Framer::default();
        assert_eq!(framer.buffered(), 0);
        let debug = std::format!("{framer:?}");
        assert!(
            debug.starts_with("Framer { start: 0, end: 0, error: None"),
            "{debug}"
        );
        assert_eq!(
            std::format!("{}", FrameError::Length(5)),
            "Length field 5 outside 20..=4096: the stream cannot be resynchronised"
        );
    }
}
