//! RADIUS: RFC 2865 (authentication), RFC 2866 (accounting), RFC 3579 §3.2
//! (Message-Authenticator), RFC 5997 (Status-Server).
//!
//! - [`Packet`] is a zero-copy view over a received datagram. [`Packet::new_checked`] validates
//!   the header and walks every attribute once (RFC 2865 §3, §5); after it succeeds no accessor
//!   panics and [`Packet::attributes`] yields exactly the attributes of the packet.
//! - [`Avp`] is one attribute as it sits on the wire; [`Avp::decode`] turns it into a typed
//!   [`Attribute`] and checks the size its type requires. Vendor-Specific attributes decode into
//!   a [`Vsa`] whose [`Vsa::sub_attributes`] iterate the RFC 2865 §5.26 format.
//! - [`Builder`] emits a packet into a caller buffer and patches the Length field (and the
//!   authenticators) when it finishes.
//! - Crypto: Response and Accounting-Request Authenticators, User-Password hiding, CHAP and
//!   Message-Authenticator, all compared in constant time. Randomness (the Request
//!   Authenticator, the CHAP challenge) is passed in by the caller.
//! - [`v11`]: RADIUS/1.1 (RFC 9765), the Token in place of the Authenticator.
//! - [`stream`]: [`Framer`] splits a byte stream (RadSec, RFC 6614 §2.5) into packets by
//!   their Length fields, in a fixed buffer.
//!
//! Nothing here allocates.

mod attr;
mod builder;
mod crypto;
mod packet;
pub mod stream;
pub mod v11;

use core::fmt;

pub use attr::{Attribute, Attributes, Avp, SubAttribute, SubAttributes, Vsa, attr_type};
pub use builder::Builder;
pub use crypto::{Secret, chap_response, hide_password, recover_password, verify_chap};
pub use packet::{Packet, Signature};
pub use stream::{FrameError, Framer, frame_len};

/// Octets in the fixed header: Code, Identifier, Length, Authenticator (RFC 2865 §3).
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 §3 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// Octets in the Authenticator field and in a Message-Authenticator value.
pub const AUTHENTICATOR_LEN: usize = 16;
/// The longest value one attribute can carry: 255 minus the type and length octets.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 253;
/// The longest User-Password RFC 2865 §5.2 allows, and the size of the buffers
/// [`hide_password`] and [`recover_password`] write into.
pub const MAX_PASSWORD_LEN: usize = 128;

/// The Code field (RFC 2865 §3, RFC 2866 §3, RFC 5997). Unknown codes are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Access-Request (1).
    AccessRequest,
    /// Access-Accept (2).
    AccessAccept,
    /// Access-Reject (3).
    AccessReject,
    /// Accounting-Request (4).
    AccountingRequest,
    /// Accounting-Response (5).
    AccountingResponse,
    /// Access-Challenge (11).
    AccessChallenge,
    /// Status-Server (12).
    StatusServer,
    /// Status-Client (13).
    StatusClient,
    /// Any other code, preserved so the packet re-encodes byte for byte.
    Unknown(u8),
}

impl From<u8> for Code {
    #[inline]
    fn from(value: u8) -> Self {
        match value {
            0x01 => Code::AccessRequest,
            0x02 => Code::AccessAccept,
            0x03 => Code::AccessReject,
            0x04 => Code::AccountingRequest,
            0x05 => Code::AccountingResponse,
            0x0b => Code::AccessChallenge,
            0x0c => Code::StatusServer,
            0x0d => Code::StatusClient,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    #[inline]
    fn from(code: Code) -> Self {
        match code {
            Code::AccessRequest => 0x01,
            Code::AccessAccept => 0x02,
            Code::AccessReject => 0x03,
            Code::AccountingRequest => 0x04,
            Code::AccountingResponse => 0x05,
            Code::AccessChallenge => 0x0b,
            Code::StatusServer => 0x0c,
            Code::StatusClient => 0x0d,
            Code::Unknown(other) => other,
        }
    }
}

impl Code {
    /// Whether this code is a reply to an Access-Request or Status-Server, whose authenticator
    /// is a Response Authenticator (RFC 2865 §3).
    pub fn is_access_reply(self) -> bool {
        matches!(
            self,
            Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
        )
    }
}

/// Why a packet was refused or could not be written.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer octets than the 20-octet header were received (RFC 2865 §3).
    Truncated,
    /// The Length field is outside 20..=4096 (RFC 2865 §3).
    InvalidLength(u16),
    /// The Length field claims more octets than were received (RFC 2865 §3).
    LengthExceedsBuffer {
        /// The Length field.
        length: u16,
        /// Octets received.
        received: usize,
    },
    /// An attribute's Type and Length octets are cut off by the end of the packet (RFC 2865 §5).
    AttributeTruncated {
        /// Offset of the attribute from the start of the packet.
        offset: u16,
    },
    /// An attribute's Length is below 2 (RFC 2865 §5).
    AttributeLengthTooSmall {
        /// Offset of the attribute from the start of the packet.
        offset: u16,
        /// The attribute's Length octet.
        length: u8,
    },
    /// An attribute's Length runs past the end of the packet (RFC 2865 §5).
    AttributeOverrun {
        /// Offset of the attribute from the start of the packet.
        offset: u16,
        /// The attribute's Length octet.
        length: u8,
    },
    /// An attribute's value does not have the size or form its type requires (RFC 2865 §5.x).
    InvalidAttributeValue {
        /// The attribute's Type.
        attr_type: u8,
    },
    /// A Vendor-Specific value is shorter than its Vendor-Id (RFC 2865 §5.26).
    InvalidVendorSpecific,
    /// The Response Authenticator (or Accounting-Request Authenticator) does not verify
    /// (RFC 2865 §3, RFC 2866 §3).
    AuthenticatorMismatch,
    /// The Message-Authenticator does not verify (RFC 3579 §3.2).
    MessageAuthenticatorMismatch,
    /// The packet carries more than one Message-Authenticator (RFC 3579 §3.2).
    DuplicateMessageAuthenticator,
    /// The caller's buffer is too small for what was being written.
    BufferTooSmall,
    /// An attribute value longer than 253 octets was to be written (RFC 2865 §5).
    ValueTooLong,
    /// The packet would grow beyond 4096 octets (RFC 2865 §3).
    PacketTooLong,
    /// A password longer than 128 octets was to be hidden (RFC 2865 §5.2).
    PasswordTooLong,
    /// A hidden User-Password is not 16..=128 octets in multiples of 16 (RFC 2865 §5.2).
    InvalidHiddenPassword,
    /// A second Message-Authenticator was to be written.
    MessageAuthenticatorTwice,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated => f.write_str("packet shorter than the 20-octet RADIUS header"),
            Error::InvalidLength(len) => write!(f, "Length field {len} outside 20..=4096"),
            Error::LengthExceedsBuffer { length, received } => {
                write!(
                    f,
                    "Length field {length} exceeds the {received} octets received"
                )
            }
            Error::AttributeTruncated { offset } => {
                write!(
                    f,
                    "attribute header at offset {offset} cut off by the end of packet"
                )
            }
            Error::AttributeLengthTooSmall { offset, length } => {
                write!(
                    f,
                    "attribute at offset {offset} has Length {length}, below 2"
                )
            }
            Error::AttributeOverrun { offset, length } => {
                write!(
                    f,
                    "attribute at offset {offset} with Length {length} overruns the packet"
                )
            }
            Error::InvalidAttributeValue { attr_type } => {
                write!(
                    f,
                    "attribute type {attr_type} has a value of the wrong size or form"
                )
            }
            Error::InvalidVendorSpecific => {
                f.write_str("Vendor-Specific shorter than its Vendor-Id")
            }
            Error::AuthenticatorMismatch => f.write_str("authenticator does not verify"),
            Error::MessageAuthenticatorMismatch => {
                f.write_str("Message-Authenticator does not verify")
            }
            Error::DuplicateMessageAuthenticator => {
                f.write_str("more than one Message-Authenticator")
            }
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::ValueTooLong => f.write_str("attribute value longer than 253 octets"),
            Error::PacketTooLong => f.write_str("packet would exceed 4096 octets"),
            Error::PasswordTooLong => f.write_str("password longer than 128 octets"),
            Error::InvalidHiddenPassword => {
                f.write_str("hidden User-Password not 16..=128 octets in multiples of 16")
            }
            Error::MessageAuthenticatorTwice => {
                f.write_str("Message-Authenticator already written")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Hex helpers for the tests of this module.
#[cfg(test)]
pub(crate) mod testutil {
    use std::vec::Vec;

    /// Decodes hex, ignoring white space.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: std::string::String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Decodes 32 hex digits.
    pub(crate) fn hex16(s: &str) -> [u8; 16] {
        hex(s).try_into().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_round_trips_every_value() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(Code::from(v)), v);
        }
        assert_eq!(Code::from(12), Code::StatusServer);
        assert_eq!(Code::from(99), Code::Unknown(99));
    }
}
