//! RADIUS/1.1 (RFC 9765): a transport profile of RADIUS over TLS without MD5, chosen by ALPN.
//!
//! Both ends offer ALPN names in the TLS handshake (RFC 9765 §3.1): [`ALPN_RADIUS_1_1`] and,
//! for peers that also speak classic RadSec, [`ALPN_RADIUS_1_0`]. A connection that agreed on
//! `radius/1.1` (over TLS 1.3 or later, §3.4) carries packets with the usual layout but other
//! meanings (§4.1):
//!
//! ```text
//! Code (1) | Reserved-1 (1) | Length (2) | Token (4) | Reserved-2 (12) | Attributes
//! ```
//!
//! - Reserved-1 (the Identifier's octet) and Reserved-2 are zero when sent and ignored when
//!   received; the Token matches a reply to its request (a reply echoes it) and is unique among
//!   the packets in flight on the connection.
//! - Nothing is computed with the shared secret: no Request or Response Authenticator, no
//!   Message-Authenticator (§5.2: not sent, ignored when received), and User-Password is the
//!   password itself (§5.1.1). CHAP-Password needs a CHAP-Challenge attribute, as the
//!   Authenticator field no longer holds a challenge (§5.1.2).
//!
//! Build such a packet with [`super::Builder::new`] given [`token_field`] and identifier 0,
//! write its attributes as they are, and finish it with [`super::Builder::finish_unsigned`].

use super::{AUTHENTICATOR_LEN, Packet};

/// The ALPN name of RADIUS/1.1 (RFC 9765 §3.1).
pub const ALPN_RADIUS_1_1: &[u8] = b"radius/1.1";
/// The ALPN name of classic RADIUS over TLS, offered next to [`ALPN_RADIUS_1_1`] by a peer that
/// speaks both (RFC 9765 §3.1).
pub const ALPN_RADIUS_1_0: &[u8] = b"radius/1.0";

/// The Authenticator field of a RADIUS/1.1 packet carrying `token`: the Token, big-endian,
/// then Reserved-2 as zeros (RFC 9765 §4.1).
pub fn token_field(token: u32) -> [u8; AUTHENTICATOR_LEN] {
    let mut field = [0u8; AUTHENTICATOR_LEN];
    if let Some(head) = field.get_mut(..4) {
        head.copy_from_slice(&token.to_be_bytes());
    }
    field
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Token: the first four octets of the Authenticator field of a RADIUS/1.1 packet
    /// (RFC 9765 §4.1), big-endian.
    pub fn token(&self) -> u32 {
        let field = self.authenticator();
        match field {
            [a, b, c, d, ..] => u32::from_be_bytes([a, b, c, d]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Builder, Code, attr_type};
    use super::*;

    #[test]
    fn test_construct_and_parse_v11_request() {
        let mut buf = [0xa5u8; 64];
        let mut b =
            Builder::new(&mut buf, Code::AccessRequest, 0, &token_field(0x0102_0304)).unwrap();
        b.attribute(attr_type::USER_NAME, b"bob").unwrap();
        b.attribute(attr_type::USER_PASSWORD, b"hello").unwrap();
        let len = b.finish_unsigned();
        assert_eq!(
            &buf[..len],
            &[
                0x01, 0x00, 0x00, 0x20, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0x01, 0x05, b'b', b'o', b'b', 0x02, 0x07, b'h', b'e', b'l', b'l', b'o',
            ][..]
        );
        let packet = Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(packet.token(), 0x0102_0304);
        assert_eq!(packet.identifier(), 0);
        assert_eq!(packet.user_password(), Some(&b"hello"[..]));
    }

    #[test]
    fn test_token_field_is_token_then_zeros() {
        let field = token_field(u32::MAX);
        assert_eq!(&field[..4], &[0xff; 4]);
        assert_eq!(&field[4..], &[0; 12]);
    }
}
