//! The 12-octet packet header (RFC 8907 §4.1), the packet view over header and body, and the
//! sequence-number rules of a session.

use super::{
    DEFAULT_MAX_BODY_LEN, EmitError, Error, HEADER_LEN, MAJOR_VERSION, SessionError,
    obfuscation::apply_pad,
};

/// Offsets of the one-octet header fields; session_id (4..8) and length (8..12) are read with
/// slice patterns (RFC 8907 §4.1).
mod field {
    pub(super) const VERSION: usize = 0;
    pub(super) const TYPE: usize = 1;
    pub(super) const SEQ_NO: usize = 2;
    pub(super) const FLAGS: usize = 3;
}

/// The version octet: major_version in the high nibble, minor_version in the low one
/// (RFC 8907 §4.1). [`Version::from_octet`] accepts only the two versions RFC 8907 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u8);

impl Version {
    /// TAC_PLUS_MAJOR_VER with TAC_PLUS_MINOR_VER_DEFAULT (0xc0): ASCII authentication,
    /// authorization and accounting (RFC 8907 §5.4.1).
    pub const DEFAULT: Version = Version(0xc0);
    /// TAC_PLUS_MAJOR_VER with TAC_PLUS_MINOR_VER_ONE (0xc1): PAP, CHAP and MS-CHAP
    /// authentication (RFC 8907 §5.4.1).
    pub const ONE: Version = Version(0xc1);

    /// Checks a version octet.
    pub fn from_octet(octet: u8) -> Result<Version, Error> {
        let (major, minor) = (octet >> 4, octet & 0x0f);
        // RFC 8907 §4.1: major_version is TAC_PLUS_MAJOR_VER (0xc).
        if major != MAJOR_VERSION {
            return Err(Error::MajorVersion(major));
        }
        // RFC 8907 §4.1: minor_version is TAC_PLUS_MINOR_VER_DEFAULT (0) or _ONE (1).
        if minor > 1 {
            return Err(Error::MinorVersion(minor));
        }
        Ok(Version(octet))
    }

    /// major_version (RFC 8907 §4.1).
    pub const fn major(self) -> u8 {
        self.0 >> 4
    }

    /// minor_version (RFC 8907 §4.1).
    pub const fn minor(self) -> u8 {
        self.0 & 0x0f
    }

    /// The octet as it is on the wire.
    pub const fn octet(self) -> u8 {
        self.0
    }
}

impl From<Version> for u8 {
    fn from(version: Version) -> Self {
        version.0
    }
}

wire_enum! {
    /// type: the packet type (RFC 8907 §4.1).
    pub enum PacketType {
        /// TAC_PLUS_AUTHEN (0x01), authentication.
        Authentication = 0x01,
        /// TAC_PLUS_AUTHOR (0x02), authorization.
        Authorization = 0x02,
        /// TAC_PLUS_ACCT (0x03), accounting.
        Accounting = 0x03,
    }
}

wire_flags! {
    /// flags: the header's bitmapped flags (RFC 8907 §4.1). Bits RFC 8907 does not define are
    /// ignored by the accessors and kept for re-encoding.
    pub struct Flags {
        /// TAC_PLUS_UNENCRYPTED_FLAG (0x01): the body is not obfuscated (RFC 8907 §4.5).
        const UNENCRYPTED = 0x01;
        /// TAC_PLUS_SINGLE_CONNECT_FLAG (0x04): Single Connection Mode (RFC 8907 §4.3).
        const SINGLE_CONNECT = 0x04;
    }
}

/// What to do with a packet whose UNENCRYPTED flag is set (RFC 8907 §4.5: "This option is
/// deprecated and MUST NOT be used in production").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cleartext {
    /// Refuse it with [`Error::Unencrypted`]. The right choice outside tests.
    Refuse,
    /// Accept it and leave the body as it is.
    Allow,
    /// Require it: the body is cleartext, and a packet without the flag is refused with
    /// [`Error::Obfuscated`]. TACACS+ over TLS (RFC 9887 §4): TLS protects the packets and
    /// obfuscation MUST NOT be applied.
    Required,
}

/// The packet header as a value (RFC 8907 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// major_version and minor_version.
    pub version: Version,
    /// type.
    pub packet_type: PacketType,
    /// seq_no: 1 for the first packet of a session, odd from the client, even from the server.
    pub seq_no: u8,
    /// flags.
    pub flags: Flags,
    /// session_id: random, constant for the whole session.
    pub session_id: u32,
    /// length: the body's length in octets, header excluded.
    pub length: u32,
}

impl Header {
    /// Parses the first 12 octets of `buffer` with the default maximum body length. The body
    /// need not be there yet: a stream reader parses the header, then reads `length` more.
    pub fn parse(buffer: &[u8]) -> Result<Header, Error> {
        Header::parse_with_max(buffer, DEFAULT_MAX_BODY_LEN)
    }

    /// [`Header::parse`] with a maximum body length of `max_body_len` octets.
    pub fn parse_with_max(buffer: &[u8], max_body_len: u32) -> Result<Header, Error> {
        // RFC 8907 §4.1: every packet starts with the 12-octet header.
        let &[
            version,
            packet_type,
            seq_no,
            flags,
            s0,
            s1,
            s2,
            s3,
            l0,
            l1,
            l2,
            l3,
        ] = buffer
            .first_chunk::<HEADER_LEN>()
            .ok_or(Error::HeaderTruncated)?;
        let version = Version::from_octet(version)?;
        let length = u32::from_be_bytes([l0, l1, l2, l3]);
        // RFC 8907 §4.1: "Implementations MUST allow control over maximum packet sizes".
        if length > max_body_len {
            return Err(Error::BodyTooLong {
                length,
                max: max_body_len,
            });
        }
        Ok(Header {
            version,
            packet_type: PacketType::from(packet_type),
            seq_no,
            flags: Flags::from_bits(flags),
            session_id: u32::from_be_bytes([s0, s1, s2, s3]),
            length,
        })
    }

    /// Writes the 12 header octets at the start of `buffer`.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        let available = buffer.len();
        let out = buffer
            .first_chunk_mut::<HEADER_LEN>()
            .ok_or(EmitError::BufferTooSmall {
                needed: HEADER_LEN,
                available,
            })?;
        let [s0, s1, s2, s3] = self.session_id.to_be_bytes();
        let [l0, l1, l2, l3] = self.length.to_be_bytes();
        *out = [
            self.version.octet(),
            self.packet_type.into(),
            self.seq_no,
            self.flags.bits(),
            s0,
            s1,
            s2,
            s3,
            l0,
            l1,
            l2,
            l3,
        ];
        Ok(HEADER_LEN)
    }

    /// The header of a client's first packet in a session: seq_no 1 (RFC 8907 §4.1) and
    /// `session_id`, which the caller draws from a cryptographically strong random number
    /// generator (RFC 8907 §4.1). The length is filled in when the packet is emitted.
    pub const fn request(
        packet_type: PacketType,
        version: Version,
        flags: Flags,
        session_id: u32,
    ) -> Header {
        Header {
            version,
            packet_type,
            seq_no: 1,
            flags,
            session_id,
            length: 0,
        }
    }

    /// The header of the packet that follows this one in the same session (an authentication
    /// CONTINUE after a REPLY, a REPLY after a request): same version, type, flags and
    /// session_id, seq_no one higher (RFC 8907 §4.1). The length is filled in when the packet
    /// is emitted.
    pub fn next(&self) -> Result<Header, SessionError> {
        Ok(Header {
            seq_no: next_seq_no(self.seq_no)?,
            length: 0,
            ..*self
        })
    }

    /// Checks that `reply` answers the request this header belongs to: the same session_id,
    /// the request's seq_no plus one and the same type (RFC 8907 §4.1, §3.5). A client drops a
    /// reply that fails.
    pub fn check_reply(&self, reply: &Header) -> Result<(), SessionError> {
        // RFC 8907 §3.5: a session is one kind of exchange; its replies are of its type.
        if reply.packet_type != self.packet_type {
            return Err(SessionError::PacketType {
                expected: self.packet_type,
                found: reply.packet_type,
            });
        }
        // RFC 8907 §4.1: session_id "does not change for the duration of the TACACS+ session".
        if reply.session_id != self.session_id {
            return Err(SessionError::SessionId {
                expected: self.session_id,
                found: reply.session_id,
            });
        }
        // RFC 8907 §4.1: each packet increments the sequence number by one, which never wraps.
        let expected = next_seq_no(self.seq_no)?;
        if reply.seq_no != expected {
            return Err(SessionError::SeqNo {
                expected,
                found: reply.seq_no,
            });
        }
        Ok(())
    }
}

/// The sequence number after `seq_no` (RFC 8907 §4.1). The number never wraps: once 255 would
/// be reached the session must end and restart at 1, so this fails with
/// [`SessionError::SeqNoExhausted`] from 254 on.
pub const fn next_seq_no(seq_no: u8) -> Result<u8, SessionError> {
    // RFC 8907 §4.1: "if the sequence number 2^(8)-1 is ever reached, that session must
    // terminate and be restarted with a sequence number of 1".
    if seq_no >= u8::MAX - 1 {
        return Err(SessionError::SeqNoExhausted);
    }
    Ok(seq_no + 1)
}

/// A zero-copy view over one TACACS+ packet: the header and the body it announces.
///
/// [`Packet::new_checked`] checks the version and that the buffer holds the whole body and no
/// more than the maximum body length; after it succeeds no accessor panics. Octets after the
/// body (the start of the next packet on a stream) are left alone: [`Packet::total_len`] says
/// where the packet ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// Header octets of a buffer too short to hold them; only reachable on unchecked packets.
const NO_HEADER: [u8; HEADER_LEN] = [0; HEADER_LEN];

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it. Accessors on a malformed buffer return zeros or an
    /// empty body; they never panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps and checks `buffer`, with the default maximum body length
    /// ([`DEFAULT_MAX_BODY_LEN`]).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        Packet::new_checked_with_max(buffer, DEFAULT_MAX_BODY_LEN)
    }

    /// Wraps and checks `buffer`, refusing bodies longer than `max_body_len` octets.
    pub fn new_checked_with_max(buffer: T, max_body_len: u32) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        packet.check(max_body_len)?;
        Ok(packet)
    }

    /// Checks the header (see [`Header::parse_with_max`]) and that the buffer holds the whole
    /// body.
    pub fn check(&self, max_body_len: u32) -> Result<(), Error> {
        let header = Header::parse_with_max(self.buffer.as_ref(), max_body_len)?;
        let received = self.buffer.as_ref().len().saturating_sub(HEADER_LEN);
        // RFC 8907 §4.1: length is "the total length of the packet body".
        if usize::try_from(header.length).unwrap_or(usize::MAX) > received {
            return Err(Error::BodyTruncated {
                length: header.length,
                received,
            });
        }
        Ok(())
    }

    /// The buffer, as it was passed in.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn header_octets(&self) -> &[u8; HEADER_LEN] {
        self.buffer.as_ref().first_chunk().unwrap_or(&NO_HEADER)
    }

    /// major_version and minor_version (RFC 8907 §4.1).
    pub fn version(&self) -> Version {
        Version(self.header_octets()[field::VERSION])
    }

    /// type (RFC 8907 §4.1).
    pub fn packet_type(&self) -> PacketType {
        PacketType::from(self.header_octets()[field::TYPE])
    }

    /// seq_no (RFC 8907 §4.1).
    pub fn seq_no(&self) -> u8 {
        self.header_octets()[field::SEQ_NO]
    }

    /// flags (RFC 8907 §4.1).
    pub fn flags(&self) -> Flags {
        Flags::from_bits(self.header_octets()[field::FLAGS])
    }

    /// session_id (RFC 8907 §4.1).
    pub fn session_id(&self) -> u32 {
        let &[_, _, _, _, s0, s1, s2, s3, ..] = self.header_octets();
        u32::from_be_bytes([s0, s1, s2, s3])
    }

    /// length: the body length the header announces (RFC 8907 §4.1).
    pub fn length(&self) -> u32 {
        let &[.., l0, l1, l2, l3] = self.header_octets();
        u32::from_be_bytes([l0, l1, l2, l3])
    }

    /// The header as a value.
    pub fn header(&self) -> Header {
        Header {
            version: self.version(),
            packet_type: self.packet_type(),
            seq_no: self.seq_no(),
            flags: self.flags(),
            session_id: self.session_id(),
            length: self.length(),
        }
    }

    /// Header and body octets: where this packet ends in the buffer.
    pub fn total_len(&self) -> usize {
        usize::try_from(self.length()).map_or(usize::MAX, |len| len.saturating_add(HEADER_LEN))
    }

    /// The body: the `length` octets after the header, obfuscated until
    /// [`Packet::deobfuscate`] runs.
    pub fn body(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..self.total_len())
            .unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The header octets, or `None` if the buffer is shorter than a header; setters on such a
    /// buffer do nothing.
    fn header_octets_mut(&mut self) -> Option<&mut [u8; HEADER_LEN]> {
        self.buffer.as_mut().first_chunk_mut()
    }

    /// Sets major_version and minor_version (RFC 8907 §4.1).
    pub fn set_version(&mut self, version: Version) {
        if let Some(octets) = self.header_octets_mut() {
            octets[field::VERSION] = version.octet();
        }
    }

    /// Sets type (RFC 8907 §4.1).
    pub fn set_packet_type(&mut self, packet_type: PacketType) {
        if let Some(octets) = self.header_octets_mut() {
            octets[field::TYPE] = packet_type.into();
        }
    }

    /// Sets seq_no (RFC 8907 §4.1).
    pub fn set_seq_no(&mut self, seq_no: u8) {
        if let Some(octets) = self.header_octets_mut() {
            octets[field::SEQ_NO] = seq_no;
        }
    }

    /// Sets flags (RFC 8907 §4.1).
    pub fn set_flags(&mut self, flags: Flags) {
        if let Some(octets) = self.header_octets_mut() {
            octets[field::FLAGS] = flags.bits();
        }
    }

    /// Sets session_id (RFC 8907 §4.1).
    pub fn set_session_id(&mut self, session_id: u32) {
        if let Some([_, _, _, _, s0, s1, s2, s3, ..]) = self.header_octets_mut() {
            [*s0, *s1, *s2, *s3] = session_id.to_be_bytes();
        }
    }

    /// Sets length (RFC 8907 §4.1).
    pub fn set_length(&mut self, length: u32) {
        if let Some([.., l0, l1, l2, l3]) = self.header_octets_mut() {
            [*l0, *l1, *l2, *l3] = length.to_be_bytes();
        }
    }

    /// The body, mutable: the `length` octets after the header.
    pub fn body_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Removes the obfuscation of the body in place (RFC 8907 §4.5). With the UNENCRYPTED flag
    /// set the body is left as it is if `cleartext` is [`Cleartext::Allow`] or
    /// [`Cleartext::Required`], and refused with [`Error::Unencrypted`] otherwise; without
    /// it, [`Cleartext::Required`] refuses the packet with [`Error::Obfuscated`].
    ///
    /// A wrong key is not detected here: it shows as a body that does not parse, or whose
    /// lengths do not add up (RFC 8907 §4.5).
    pub fn deobfuscate(&mut self, key: &[u8], cleartext: Cleartext) -> Result<(), Error> {
        // RFC 8907 §4.5: TAC_PLUS_UNENCRYPTED_FLAG "MUST NOT be used in production"; RFC 9887
        // §4: over TLS it MUST be set.
        if self.flags().contains(Flags::UNENCRYPTED) {
            return match cleartext {
                Cleartext::Allow | Cleartext::Required => Ok(()),
                Cleartext::Refuse => Err(Error::Unencrypted),
            };
        }
        if cleartext == Cleartext::Required {
            return Err(Error::Obfuscated);
        }
        let (session_id, version, seq_no) = (self.session_id(), self.version(), self.seq_no());
        apply_pad(key, session_id, version, seq_no, self.body_mut());
        Ok(())
    }

    /// Obfuscates the body in place (RFC 8907 §4.5): the same pad as
    /// [`Packet::deobfuscate`], with the same treatment of the UNENCRYPTED flag. Set every
    /// header field first: the pad depends on session_id, version and seq_no.
    pub fn obfuscate(&mut self, key: &[u8], cleartext: Cleartext) -> Result<(), Error> {
        self.deobfuscate(key, cleartext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An authorization REPLY header: version 0xc0, seq_no 2, SINGLE_CONNECT, session_id
    /// 0x01020304, length 6.
    static HEADER_BYTES: [u8; 12] = [
        0xc0, 0x02, 0x02, 0x04, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x06,
    ];

    fn header() -> Header {
        Header {
            version: Version::DEFAULT,
            packet_type: PacketType::Authorization,
            seq_no: 2,
            flags: Flags::SINGLE_CONNECT,
            session_id: 0x0102_0304,
            length: 6,
        }
    }

    fn packet_bytes() -> [u8; 18] {
        let mut bytes = [0u8; 18];
        bytes[..12].copy_from_slice(&HEADER_BYTES);
        bytes[12..].copy_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x00, 0x00]);
        bytes
    }

    #[test]
    fn test_deconstruct() {
        let bytes = packet_bytes();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), Version::DEFAULT);
        assert_eq!(packet.version().major(), 0xc);
        assert_eq!(packet.version().minor(), 0);
        assert_eq!(packet.packet_type(), PacketType::Authorization);
        assert_eq!(packet.seq_no(), 2);
        assert_eq!(packet.flags(), Flags::SINGLE_CONNECT);
        assert!(!packet.flags().contains(Flags::UNENCRYPTED));
        assert_eq!(packet.session_id(), 0x0102_0304);
        assert_eq!(packet.length(), 6);
        assert_eq!(packet.total_len(), 18);
        assert_eq!(packet.body(), &[0x01, 0, 0, 0, 0, 0]);
        assert_eq!(packet.header(), header());
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0xa5u8; 18];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(Version::DEFAULT);
        packet.set_packet_type(PacketType::Authorization);
        packet.set_seq_no(2);
        packet.set_flags(Flags::SINGLE_CONNECT);
        packet.set_session_id(0x0102_0304);
        packet.set_length(6);
        packet.body_mut().copy_from_slice(&[0x01, 0, 0, 0, 0, 0]);
        assert_eq!(bytes, packet_bytes());
    }

    #[test]
    fn test_parse() {
        assert_eq!(Header::parse(&HEADER_BYTES), Ok(header()));
        // The body need not be there for the header alone.
        assert_eq!(Header::parse(&HEADER_BYTES[..]).map(|h| h.length), Ok(6));
    }

    #[test]
    fn test_emit() {
        let mut bytes = [0xa5u8; 13];
        assert_eq!(header().emit(&mut bytes), Ok(12));
        assert_eq!(&bytes[..12], &HEADER_BYTES);
        assert_eq!(bytes[12], 0xa5);
        assert_eq!(
            header().emit(&mut [0u8; 11]),
            Err(EmitError::BufferTooSmall {
                needed: 12,
                available: 11,
            })
        );
    }

    #[test]
    fn unknown_type_and_flag_bits_are_kept() {
        let mut bytes = HEADER_BYTES;
        bytes[1] = 0x09;
        bytes[3] = 0xff;
        let header = Header::parse(&bytes).unwrap();
        assert_eq!(header.packet_type, PacketType::Unknown(0x09));
        assert!(
            header
                .flags
                .contains(Flags::UNENCRYPTED | Flags::SINGLE_CONNECT)
        );
        let mut out = [0u8; 12];
        header.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_impossible_len() {
        assert_eq!(
            Header::parse(&HEADER_BYTES[..11]),
            Err(Error::HeaderTruncated)
        );
        assert_eq!(
            Packet::new_checked(&[][..]).err(),
            Some(Error::HeaderTruncated)
        );
        // The body is one octet short.
        let bytes = packet_bytes();
        assert_eq!(
            Packet::new_checked(&bytes[..17]).err(),
            Some(Error::BodyTruncated {
                length: 6,
                received: 5,
            })
        );
        // A length of 2^32 - 1 never fits.
        let mut huge = packet_bytes();
        huge[8..12].copy_from_slice(&[0xff; 4]);
        assert_eq!(
            Packet::new_checked_with_max(&huge[..], u32::MAX).err(),
            Some(Error::BodyTruncated {
                length: u32::MAX,
                received: 6,
            })
        );
    }

    #[test]
    fn trailing_octets_belong_to_the_next_packet() {
        let mut bytes = [0u8; 20];
        bytes[..18].copy_from_slice(&packet_bytes());
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.total_len(), 18);
        assert_eq!(packet.body().len(), 6);
    }

    #[test]
    fn body_above_the_maximum_is_refused() {
        let mut bytes = HEADER_BYTES;
        bytes[8..12].copy_from_slice(&(DEFAULT_MAX_BODY_LEN + 1).to_be_bytes());
        assert_eq!(
            Header::parse(&bytes),
            Err(Error::BodyTooLong {
                length: DEFAULT_MAX_BODY_LEN + 1,
                max: DEFAULT_MAX_BODY_LEN,
            })
        );
        bytes[8..12].copy_from_slice(&DEFAULT_MAX_BODY_LEN.to_be_bytes());
        assert!(Header::parse(&bytes).is_ok());
        let bytes = packet_bytes();
        assert_eq!(
            Packet::new_checked_with_max(&bytes[..], 5).err(),
            Some(Error::BodyTooLong { length: 6, max: 5 })
        );
        assert!(Packet::new_checked_with_max(&bytes[..], 6).is_ok());
    }

    #[test]
    fn wrong_versions_are_refused() {
        for (octet, error) in [
            (0xb0, Error::MajorVersion(0xb)),
            (0xd1, Error::MajorVersion(0xd)),
            (0x00, Error::MajorVersion(0x0)),
            (0xc2, Error::MinorVersion(0x2)),
            (0xcf, Error::MinorVersion(0xf)),
        ] {
            let mut bytes = packet_bytes();
            bytes[0] = octet;
            assert_eq!(Header::parse(&bytes), Err(error), "{octet:#x}");
            assert_eq!(Packet::new_checked(&bytes[..]).err(), Some(error));
        }
        assert_eq!(Version::from_octet(0xc1), Ok(Version::ONE));
        assert_eq!(Version::from_octet(0xc0), Ok(Version::DEFAULT));
    }

    #[test]
    fn unchecked_short_buffers_do_not_panic() {
        let mut bytes = [0xc0u8, 0x01, 0x01];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.length(), 0);
        assert_eq!(packet.body(), &[] as &[u8]);
        packet.set_seq_no(9);
        packet.set_session_id(9);
        packet.set_length(9);
        assert_eq!(packet.body_mut(), &mut [] as &mut [u8]);
        assert_eq!(packet.deobfuscate(b"k", Cleartext::Refuse), Ok(()));
        assert_eq!(bytes, [0xc0, 0x01, 0x01]);
        // An unchecked length beyond the buffer yields an empty body.
        let mut long = HEADER_BYTES;
        long[8..12].copy_from_slice(&[0xff; 4]);
        let packet = Packet::new_unchecked(&long[..]);
        assert_eq!(packet.body(), &[] as &[u8]);
    }

    #[test]
    fn unencrypted_flag_is_refused_unless_allowed() {
        let mut bytes = packet_bytes();
        bytes[3] = 0x01;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(
            packet.deobfuscate(b"key", Cleartext::Refuse),
            Err(Error::Unencrypted)
        );
        assert_eq!(
            packet.obfuscate(b"key", Cleartext::Refuse),
            Err(Error::Unencrypted)
        );
        assert_eq!(packet.deobfuscate(b"key", Cleartext::Allow), Ok(()));
        assert_eq!(packet.body(), &[0x01, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn cleartext_required_refuses_obfuscated_bodies() {
        // RFC 9887 §4: over TLS the flag must be set and the body is left as it is.
        let mut bytes = packet_bytes();
        bytes[3] = 0x01;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.deobfuscate(b"key", Cleartext::Required), Ok(()));
        assert_eq!(packet.body(), &[0x01, 0, 0, 0, 0, 0]);
        let mut bytes = packet_bytes();
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(
            packet.deobfuscate(b"key", Cleartext::Required),
            Err(Error::Obfuscated)
        );
        assert_eq!(packet.body(), &[0x01, 0, 0, 0, 0, 0], "left untouched");
    }

    #[test]
    fn obfuscation_round_trips_in_place() {
        let mut bytes = packet_bytes();
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.obfuscate(b"key", Cleartext::Refuse).unwrap();
        assert_ne!(packet.body(), &[0x01, 0, 0, 0, 0, 0]);
        packet.deobfuscate(b"key", Cleartext::Refuse).unwrap();
        assert_eq!(bytes, packet_bytes());
    }

    #[test]
    fn seq_no_never_wraps() {
        assert_eq!(next_seq_no(1), Ok(2));
        assert_eq!(next_seq_no(253), Ok(254));
        assert_eq!(next_seq_no(254), Err(SessionError::SeqNoExhausted));
        assert_eq!(next_seq_no(255), Err(SessionError::SeqNoExhausted));
    }

    #[test]
    fn replies_must_match_the_request() {
        let request = Header::request(PacketType::Authentication, Version::ONE, Flags::empty(), 42);
        assert_eq!(request.seq_no, 1);
        let reply = request.next().unwrap();
        assert_eq!(reply.seq_no, 2);
        assert_eq!(request.check_reply(&reply), Ok(()));

        let wrong_seq = Header { seq_no: 4, ..reply };
        assert_eq!(
            request.check_reply(&wrong_seq),
            Err(SessionError::SeqNo {
                expected: 2,
                found: 4,
            })
        );
        let replayed = Header { seq_no: 1, ..reply };
        assert_eq!(
            request.check_reply(&replayed),
            Err(SessionError::SeqNo {
                expected: 2,
                found: 1,
            })
        );
        let wrong_session = Header {
            session_id: 43,
            ..reply
        };
        assert_eq!(
            request.check_reply(&wrong_session),
            Err(SessionError::SessionId {
                expected: 42,
                found: 43,
            })
        );
        let wrong_type = Header {
            packet_type: PacketType::Accounting,
            ..reply
        };
        assert_eq!(
            request.check_reply(&wrong_type),
            Err(SessionError::PacketType {
                expected: PacketType::Authentication,
                found: PacketType::Accounting,
            })
        );

        // A CONTINUE after the REPLY carries seq_no 3, and its reply 4.
        let cont = reply.next().unwrap();
        assert_eq!(cont.seq_no, 3);
        assert_eq!(cont.check_reply(&cont.next().unwrap()), Ok(()));

        // At the end of the sequence space no reply can be valid.
        let last = Header {
            seq_no: 253,
            ..request
        };
        assert_eq!(
            last.check_reply(&Header {
                seq_no: 254,
                ..reply
            }),
            Ok(())
        );
        let exhausted = Header {
            seq_no: 255,
            ..request
        };
        assert_eq!(
            exhausted.check_reply(&Header { seq_no: 0, ..reply }),
            Err(SessionError::SeqNoExhausted)
        );
        assert_eq!(
            Header {
                seq_no: 254,
                ..reply
            }
            .next(),
            Err(SessionError::SeqNoExhausted)
        );
    }
}
