//! TACACS+ (RFC 8907).
//!
//! - [`Packet`] is a zero-copy view over one received packet: the 12-octet header (RFC 8907
//!   §4.1) and the body it announces. [`Packet::new_checked`] validates the version and the
//!   length once, against a caller-chosen maximum body length ([`DEFAULT_MAX_BODY_LEN`] unless
//!   told otherwise); after it succeeds no accessor panics. [`Header`] is the same header as a
//!   plain value, to parse from the first 12 octets of a stream and to emit.
//! - [`Packet::deobfuscate`] and [`Packet::obfuscate`] apply the MD5 pseudo-pad of RFC 8907 §4.5
//!   to the body in place. A packet with the UNENCRYPTED flag is refused unless the caller
//!   passes [`Cleartext::Allow`].
//! - The bodies are borrowed views over the deobfuscated body, each with `parse` and `emit`:
//!   [`authen::Start`], [`authen::Reply`], [`authen::Continue`] (RFC 8907 §5),
//!   [`author::Request`], [`author::Response`] (§6), [`acct::Request`], [`acct::Reply`] (§7).
//!   `parse` checks that every length field fits and that the lengths add up to the body
//!   exactly (§4.5); after it succeeds nothing else can fail. Arguments are a lazy iterator,
//!   [`Args`], of [`Arg`] pairs borrowing the buffer.
//! - `emit` writes a body into a caller buffer and returns its length; [`emit_packet`] writes
//!   the body, then the header with its length field patched, then obfuscates.
//! - Enumerated fields keep values this module does not know (`Unknown(u8)`), and flag octets
//!   keep every bit, so a parsed packet re-encodes byte for byte.
//! - The sequence-number and session rules a client checks (RFC 8907 §4.1) are
//!   [`Header::check_reply`], [`Header::next`] and [`next_seq_no`].
//!
//! Nothing here allocates.
//!
//! ```
//! use portcullis_protocol::tacacs::{
//!     self, authen, AuthenService, AuthenType, Cleartext, Flags, Header, Packet, PacketType,
//!     Version,
//! };
//!
//! let key = b"shared secret";
//! // The client writes a PAP START (RFC 8907 §5.4.2.2) ...
//! let request = Header::request(PacketType::Authentication, Version::ONE, Flags::empty(), 0x1234_5678);
//! let start = authen::Start {
//!     action: authen::Action::Login,
//!     priv_lvl: 1,
//!     authen_type: AuthenType::Pap,
//!     authen_service: AuthenService::Login,
//!     user: b"alice",
//!     port: b"tty0",
//!     rem_addr: b"192.0.2.1",
//!     data: b"password",
//! };
//! let mut buf = [0u8; 256];
//! let len = tacacs::emit_packet(&mut buf, &request, &start, key)?;
//!
//! // ... and the server reads it back.
//! let mut packet = Packet::new_checked(&mut buf[..len])?;
//! packet.deobfuscate(key, Cleartext::Refuse)?;
//! let parsed = authen::Start::parse(packet.body())?;
//! assert_eq!(parsed.user, b"alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Declares an enumerated one-octet wire field that keeps unknown values.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value RFC 8907 does not define, kept so the packet re-encodes byte for byte
            /// (RFC 8907 §3.6 leaves the answer to the receiver).
            Unknown(u8),
        }

        impl From<u8> for $name {
            fn from(value: u8) -> Self {
                match value {
                    $( $value => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

/// Declares a one-octet bitmap field that keeps every bit, known or not.
macro_rules! wire_flags {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* const $flag:ident = $value:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u8);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: Self = Self($value); )*

            /// No bit set.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The octet as it is on the wire, unknown bits included.
            pub const fn bits(self) -> u8 {
                self.0
            }

            /// Every bit of `bits`, known or not.
            pub const fn from_bits(bits: u8) -> Self {
                Self(bits)
            }

            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;

            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }
    };
}

pub mod acct;
mod args;
pub mod authen;
pub mod author;
mod codec;
mod header;
mod obfuscation;

use core::fmt;

pub use args::{Arg, Args, ArgsIter};
pub use header::{Cleartext, Flags, Header, Packet, PacketType, Version, next_seq_no};
pub use obfuscation::apply_pad;

/// Octets in the packet header (RFC 8907 §4.1).
pub const HEADER_LEN: usize = 12;
/// The largest body [`Packet::new_checked`] accepts: 2^16 octets, the maximum RFC 8907 §4.1
/// recommends. [`Packet::new_checked_with_max`] takes another limit.
pub const DEFAULT_MAX_BODY_LEN: u32 = 1 << 16;
/// TAC_PLUS_MAJOR_VER, the only major version (RFC 8907 §4.1).
pub const MAJOR_VERSION: u8 = 0xc;
/// The highest privilege level, TAC_PLUS_PRIV_LVL_MAX (RFC 8907 §9).
pub const PRIV_LVL_MAX: u8 = 0x0f;

wire_enum! {
    /// authen_type: the kind of authentication (RFC 8907 §5.1, §6.1).
    pub enum AuthenType {
        /// TAC_PLUS_AUTHEN_TYPE_NOT_SET (0x00), authorization and accounting only.
        NotSet = 0x00,
        /// TAC_PLUS_AUTHEN_TYPE_ASCII (0x01).
        Ascii = 0x01,
        /// TAC_PLUS_AUTHEN_TYPE_PAP (0x02).
        Pap = 0x02,
        /// TAC_PLUS_AUTHEN_TYPE_CHAP (0x03).
        Chap = 0x03,
        /// TAC_PLUS_AUTHEN_TYPE_MSCHAP (0x05).
        MsChap = 0x05,
        /// TAC_PLUS_AUTHEN_TYPE_MSCHAPV2 (0x06).
        MsChapV2 = 0x06,
    }
}

wire_enum! {
    /// authen_service: the service requesting authentication (RFC 8907 §5.1, §6.1).
    pub enum AuthenService {
        /// TAC_PLUS_AUTHEN_SVC_NONE (0x00).
        None = 0x00,
        /// TAC_PLUS_AUTHEN_SVC_LOGIN (0x01).
        Login = 0x01,
        /// TAC_PLUS_AUTHEN_SVC_ENABLE (0x02).
        Enable = 0x02,
        /// TAC_PLUS_AUTHEN_SVC_PPP (0x03).
        Ppp = 0x03,
        /// TAC_PLUS_AUTHEN_SVC_PT (0x05).
        Pt = 0x05,
        /// TAC_PLUS_AUTHEN_SVC_RCMD (0x06).
        Rcmd = 0x06,
        /// TAC_PLUS_AUTHEN_SVC_X25 (0x07).
        X25 = 0x07,
        /// TAC_PLUS_AUTHEN_SVC_NASI (0x08).
        Nasi = 0x08,
        /// TAC_PLUS_AUTHEN_SVC_FWPROXY (0x09).
        FwProxy = 0x09,
    }
}

wire_enum! {
    /// authen_method: how the user was authenticated (RFC 8907 §6.1).
    pub enum AuthenMethod {
        /// TAC_PLUS_AUTHEN_METH_NOT_SET (0x00).
        NotSet = 0x00,
        /// TAC_PLUS_AUTHEN_METH_NONE (0x01).
        None = 0x01,
        /// TAC_PLUS_AUTHEN_METH_KRB5 (0x02).
        Krb5 = 0x02,
        /// TAC_PLUS_AUTHEN_METH_LINE (0x03).
        Line = 0x03,
        /// TAC_PLUS_AUTHEN_METH_ENABLE (0x04).
        Enable = 0x04,
        /// TAC_PLUS_AUTHEN_METH_LOCAL (0x05).
        Local = 0x05,
        /// TAC_PLUS_AUTHEN_METH_TACACSPLUS (0x06).
        TacacsPlus = 0x06,
        /// TAC_PLUS_AUTHEN_METH_GUEST (0x08).
        Guest = 0x08,
        /// TAC_PLUS_AUTHEN_METH_RADIUS (0x10).
        Radius = 0x10,
        /// TAC_PLUS_AUTHEN_METH_KRB4 (0x11).
        Krb4 = 0x11,
        /// TAC_PLUS_AUTHEN_METH_RCMD (0x20).
        Rcmd = 0x20,
    }
}

/// A packet body: the three authentication, two authorization and two accounting bodies.
///
/// Every body also has `parse`, `body_len` and `emit` as inherent methods; the trait lets
/// [`emit_packet`] and generic code take any of them.
pub trait Body<'a>: Sized {
    /// The header type this body travels under (RFC 8907 §4.1).
    const PACKET_TYPE: PacketType;

    /// Parses a deobfuscated body. Every length field is checked against the body and the
    /// lengths must add up to the body exactly (RFC 8907 §4.5).
    fn parse(body: &'a [u8]) -> Result<Self, Error>;

    /// The octets [`Body::emit`] writes, after checking that every field fits its length field.
    fn body_len(&self) -> Result<usize, EmitError>;

    /// Writes the body at the start of `buffer` and returns the octets written.
    fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError>;
}

/// Writes a whole packet into `buffer`: the body first, then `header` with its length field
/// patched to the body just written, then the body obfuscated with `key` (RFC 8907 §4.5)
/// unless `header.flags` has UNENCRYPTED. `header.length` is ignored. Returns the octets
/// written.
pub fn emit_packet<'a, B: Body<'a>>(
    buffer: &mut [u8],
    header: &Header,
    body: &B,
    key: &[u8],
) -> Result<usize, EmitError> {
    if header.packet_type != B::PACKET_TYPE {
        return Err(EmitError::PacketType {
            header: header.packet_type,
            body: B::PACKET_TYPE,
        });
    }
    let body_len = body.body_len()?;
    let needed = HEADER_LEN + body_len;
    let available = buffer.len();
    let too_small = EmitError::BufferTooSmall { needed, available };
    let (head, rest) = buffer.split_at_mut_checked(HEADER_LEN).ok_or(too_small)?;
    let rest = rest.get_mut(..body_len).ok_or(too_small)?;
    let written = body.emit(rest)?;
    let length = u32::try_from(written).map_err(|_| EmitError::FieldTooLong(Field::Body))?;
    Header { length, ..*header }.emit(head)?;
    if !header.flags.contains(Flags::UNENCRYPTED) {
        apply_pad(key, header.session_id, header.version, header.seq_no, rest);
    }
    Ok(needed)
}

/// The field of a packet an error is about.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The fixed-size fields at the start of a body, up to the first variable-length field.
    Fixed,
    /// The body as a whole (the header's length field).
    Body,
    /// user / user_len (RFC 8907 §5.1, §6.1, §7.1).
    User,
    /// port / port_len (RFC 8907 §5.1, §6.1, §7.1).
    Port,
    /// rem_addr / rem_addr_len (RFC 8907 §5.1, §6.1, §7.1).
    RemAddr,
    /// data / data_len (RFC 8907 §5.1, §5.2, §5.3, §6.2, §7.2).
    Data,
    /// server_msg / server_msg_len (RFC 8907 §5.2, §6.2, §7.2).
    ServerMsg,
    /// user_msg / user_msg_len (RFC 8907 §5.3).
    UserMsg,
    /// arg_cnt: more than 255 arguments (RFC 8907 §6.1, §6.2, §7.1).
    ArgCount,
    /// arg_1_len .. arg_N_len, one octet per argument (RFC 8907 §6.1, §6.2, §7.1).
    ArgLengths,
    /// arg_N / arg_N_len, counted from 0 (RFC 8907 §6.1, §6.2, §7.1).
    Arg(u8),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Field::Fixed => f.write_str("fixed fields"),
            Field::Body => f.write_str("body"),
            Field::User => f.write_str("user"),
            Field::Port => f.write_str("port"),
            Field::RemAddr => f.write_str("rem_addr"),
            Field::Data => f.write_str("data"),
            Field::ServerMsg => f.write_str("server_msg"),
            Field::UserMsg => f.write_str("user_msg"),
            Field::ArgCount => f.write_str("arg_cnt"),
            Field::ArgLengths => f.write_str("argument lengths"),
            Field::Arg(index) => write!(f, "argument {index}"),
        }
    }
}

/// Why received octets were refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer octets than the 12-octet header were received (RFC 8907 §4.1).
    HeaderTruncated,
    /// major_version is not TAC_PLUS_MAJOR_VER, 0xc (RFC 8907 §4.1); the value received.
    MajorVersion(u8),
    /// minor_version is neither 0x0 nor 0x1 (RFC 8907 §4.1); the value received.
    MinorVersion(u8),
    /// The header's length exceeds the configured maximum (RFC 8907 §4.1).
    BodyTooLong {
        /// The header's length field.
        length: u32,
        /// The maximum in force.
        max: u32,
    },
    /// Fewer body octets were received than the header's length announces (RFC 8907 §4.1).
    BodyTruncated {
        /// The header's length field.
        length: u32,
        /// Body octets received.
        received: usize,
    },
    /// A field runs past the end of the body: its length field, or the fixed fields themselves,
    /// claim more octets than the body has left (RFC 8907 §4.5).
    Overrun(Field),
    /// The body has octets left after its last field: the lengths sum short of the header's
    /// length (RFC 8907 §4.5).
    TrailingOctets {
        /// Octets left over.
        extra: usize,
    },
    /// An argument holds neither `=` nor `*` (RFC 8907 §6.1); its index, from 0.
    ArgSeparator(u8),
    /// The UNENCRYPTED flag is set and the caller did not allow cleartext bodies
    /// (RFC 8907 §4.5).
    Unencrypted,
    /// The UNENCRYPTED flag is clear where cleartext is required: an obfuscated body over
    /// TLS (RFC 9887 §4).
    Obfuscated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::HeaderTruncated => {
                f.write_str("packet shorter than the 12-octet TACACS+ header")
            }
            Error::MajorVersion(major) => write!(f, "major_version {major:#x}, not 0xc"),
            Error::MinorVersion(minor) => write!(f, "minor_version {minor:#x}, neither 0 nor 1"),
            Error::BodyTooLong { length, max } => {
                write!(f, "body length {length} above the maximum of {max}")
            }
            Error::BodyTruncated { length, received } => {
                write!(
                    f,
                    "body length {length} but {received} body octets received"
                )
            }
            Error::Overrun(field) => write!(f, "{field} runs past the end of the body"),
            Error::TrailingOctets { extra } => {
                write!(f, "{extra} octets after the last field of the body")
            }
            Error::ArgSeparator(index) => write!(f, "argument {index} has neither '=' nor '*'"),
            Error::Unencrypted => f.write_str("UNENCRYPTED flag set and cleartext not allowed"),
            Error::Obfuscated => {
                f.write_str("UNENCRYPTED flag clear where cleartext is required (over TLS)")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Why a packet or body could not be written.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// The caller's buffer is smaller than what was to be written.
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
    /// A field is longer than its length field can express: 255 octets (one-octet lengths,
    /// arg_cnt) or 65535 (two-octet lengths) (RFC 8907 §5, §6, §7).
    FieldTooLong(Field),
    /// An argument name holds `=` or `*`, so a reader would split it elsewhere
    /// (RFC 8907 §6.1); its index, from 0.
    ArgName(u8),
    /// The header's type is not the body's.
    PacketType {
        /// The header's type field.
        header: PacketType,
        /// The type the body travels under.
        body: PacketType,
    },
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EmitError::BufferTooSmall { needed, available } => {
                write!(f, "buffer of {available} octets, {needed} needed")
            }
            EmitError::FieldTooLong(field) => write!(f, "{field} too long for its length field"),
            EmitError::ArgName(index) => write!(f, "argument {index} has '=' or '*' in its name"),
            EmitError::PacketType { header, body } => {
                write!(f, "header type {header:?} but a {body:?} body")
            }
        }
    }
}

impl core::error::Error for EmitError {}

/// Why a packet does not belong where a client expected it (RFC 8907 §4.1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The next sequence number would reach 255: the session must end and restart at 1
    /// (RFC 8907 §4.1).
    SeqNoExhausted,
    /// The reply's seq_no is not the request's plus one (RFC 8907 §4.1).
    SeqNo {
        /// The seq_no a reply must carry.
        expected: u8,
        /// The reply's seq_no.
        found: u8,
    },
    /// The reply's session_id is not the request's (RFC 8907 §4.1).
    SessionId {
        /// The request's session_id.
        expected: u32,
        /// The reply's session_id.
        found: u32,
    },
    /// The reply's type is not the request's (RFC 8907 §3.5, §4.1).
    PacketType {
        /// The request's type.
        expected: PacketType,
        /// The reply's type.
        found: PacketType,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SessionError::SeqNoExhausted => f.write_str("sequence number would wrap"),
            SessionError::SeqNo { expected, found } => {
                write!(f, "seq_no {found}, expected {expected}")
            }
            SessionError::SessionId { expected, found } => {
                write!(f, "session_id {found:#010x}, expected {expected:#010x}")
            }
            SessionError::PacketType { expected, found } => {
                write!(f, "type {found:?}, expected {expected:?}")
            }
        }
    }
}

impl core::error::Error for SessionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_every_value() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(AuthenType::from(v)), v);
            assert_eq!(u8::from(AuthenService::from(v)), v);
            assert_eq!(u8::from(AuthenMethod::from(v)), v);
        }
        assert_eq!(AuthenType::from(0x06), AuthenType::MsChapV2);
        assert_eq!(AuthenType::from(0x04), AuthenType::Unknown(0x04));
        assert_eq!(AuthenService::from(0x09), AuthenService::FwProxy);
        assert_eq!(AuthenService::from(0x04), AuthenService::Unknown(0x04));
        assert_eq!(AuthenMethod::from(0x20), AuthenMethod::Rcmd);
        assert_eq!(AuthenMethod::from(0x07), AuthenMethod::Unknown(0x07));
    }

    #[test]
    fn emit_packet_patches_length_and_obfuscates() {
        let header = Header::request(PacketType::Accounting, Version::DEFAULT, Flags::empty(), 7);
        let reply = acct::Reply {
            status: acct::Status::Success,
            server_msg: b"ok",
            data: b"",
        };
        let mut buf = [0xa5u8; 32];
        let len = emit_packet(&mut buf, &header, &reply, b"k").unwrap();
        assert_eq!(len, HEADER_LEN + 7);
        assert_eq!(
            &buf[..12],
            &[0xc0, 0x03, 0x01, 0x00, 0, 0, 0, 7, 0, 0, 0, 7]
        );
        assert!(buf[len..].iter().all(|&b| b == 0xa5));
        let mut cleartext = [0, 2, 0, 0, 0x01, b'o', b'k'];
        apply_pad(b"k", 7, Version::DEFAULT, 1, &mut cleartext);
        assert_eq!(&buf[12..len], &cleartext);
    }

    #[test]
    fn emit_packet_leaves_unencrypted_bodies_alone() {
        let header = Header::request(
            PacketType::Accounting,
            Version::DEFAULT,
            Flags::UNENCRYPTED,
            7,
        );
        let reply = acct::Reply {
            status: acct::Status::Error,
            server_msg: b"",
            data: b"x",
        };
        let mut buf = [0u8; 32];
        let len = emit_packet(&mut buf, &header, &reply, b"k").unwrap();
        assert_eq!(&buf[12..len], &[0, 0, 0, 1, 0x02, b'x']);
    }

    #[test]
    fn emit_packet_rejects_type_mismatch_and_small_buffers() {
        let reply = acct::Reply {
            status: acct::Status::Success,
            server_msg: b"",
            data: b"",
        };
        let wrong = Header::request(
            PacketType::Authorization,
            Version::DEFAULT,
            Flags::empty(),
            1,
        );
        assert_eq!(
            emit_packet(&mut [0u8; 64], &wrong, &reply, b"k"),
            Err(EmitError::PacketType {
                header: PacketType::Authorization,
                body: PacketType::Accounting,
            })
        );
        let right = Header::request(PacketType::Accounting, Version::DEFAULT, Flags::empty(), 1);
        assert_eq!(
            emit_packet(&mut [0u8; 16], &right, &reply, b"k"),
            Err(EmitError::BufferTooSmall {
                needed: 17,
                available: 16,
            })
        );
        assert_eq!(
            emit_packet(&mut [0u8; 8], &right, &reply, b"k"),
            Err(EmitError::BufferTooSmall {
                needed: 17,
                available: 8,
            })
        );
    }
}
