//! The packet view: checked construction, header fields, attributes, verification.

use core::net::Ipv4Addr;

use super::attr::{self, Attribute, Attributes, Avp, Vsa, attr_type};
use super::crypto::{Secret, hmac_md5, md5};
use super::{AUTHENTICATOR_LEN, Code, Error, HEADER_LEN, MAX_PACKET_LEN};
use crate::ct;

/// Field offsets of the header (RFC 2865 §3).
mod field {
    use core::ops::Range;

    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const AUTHENTICATOR: Range<usize> = 4..20;
    /// Code, Identifier and Length: the part of the header every authenticator hashes as is.
    pub const PREFIX: Range<usize> = 0..4;
}

/// Whether a packet carried a Message-Authenticator, once verification succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// No Message-Authenticator attribute.
    Unsigned,
    /// A Message-Authenticator that verified (RFC 3579 §3.2).
    Signed,
}

/// A read-only or read-write view of a RADIUS packet in a buffer.
///
/// Octets after the Length field's end are padding and ignored (RFC 2865 §3): every accessor
/// and [`Packet::as_bytes`] see exactly Length octets.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Accessors do not panic on an unchecked buffer, but
    /// may return zeros or stop iterating early; use [`Packet::new_checked`] for anything
    /// received.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check`] accepts it.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    /// Validates the header and the attribute list: after this succeeds no accessor panics and
    /// [`Packet::attributes`] yields every attribute of the packet.
    pub fn check(&self) -> Result<(), Error> {
        let buf = self.buffer.as_ref();
        // RFC 2865 §3: "The minimum length is 20 and maximum length is 4096."
        let length = match buf {
            [_, _, hi, lo, ..] if buf.len() >= HEADER_LEN => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(Error::Truncated),
        };
        let len = usize::from(length);
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
            return Err(Error::InvalidLength(length));
        }
        // RFC 2865 §3: "If the packet is shorter than the Length field indicates, it MUST be
        // silently discarded." Octets beyond the Length field are padding.
        let Some(packet) = buf.get(..len) else {
            return Err(Error::LengthExceedsBuffer {
                length,
                received: buf.len(),
            });
        };
        // RFC 2865 §5: attributes are Type, Length (>= 2), Value, and end with the packet.
        attr::check_attributes(packet.get(HEADER_LEN..).unwrap_or_default(), HEADER_LEN)
    }

    /// The packet's octets: the first Length octets of the buffer (the whole buffer if the
    /// Length field is out of range, as it can only be on an unchecked view).
    pub fn as_bytes(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        buf.get(..usize::from(self.length())).unwrap_or(buf)
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Code: the kind of packet (RFC 2865 §3).
    pub fn code(&self) -> Code {
        Code::from(self.octet(field::CODE))
    }

    /// Identifier: matches a reply to its request (RFC 2865 §3).
    pub fn identifier(&self) -> u8 {
        self.octet(field::IDENTIFIER)
    }

    /// Length: octets in the packet, header included (RFC 2865 §3).
    pub fn length(&self) -> u16 {
        match self.buffer.as_ref().get(field::LENGTH) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }

    /// Authenticator: the Request Authenticator in requests, the Response Authenticator in
    /// replies (RFC 2865 §3).
    pub fn authenticator(&self) -> [u8; AUTHENTICATOR_LEN] {
        self.buffer
            .as_ref()
            .get(field::AUTHENTICATOR)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; AUTHENTICATOR_LEN])
    }

    /// The attributes, in order, as they sit on the wire.
    pub fn attributes(&self) -> Attributes<'_> {
        Attributes::new(self.attribute_octets())
    }

    /// The first attribute of type `typ`.
    pub fn find(&self, typ: u8) -> Option<Avp<'_>> {
        self.attributes().find(|a| a.typ() == typ)
    }

    /// Every attribute of type `typ`, in order (Class, Proxy-State and Reply-Message repeat).
    pub fn find_all(&self, typ: u8) -> impl Iterator<Item = &[u8]> + '_ {
        self.attributes()
            .filter(move |a| a.typ() == typ)
            .map(|a| a.value())
    }

    /// User-Name (RFC 2865 §5.1).
    pub fn user_name(&self) -> Option<&[u8]> {
        self.find(attr_type::USER_NAME).map(|a| a.value())
    }

    /// User-Password, still hidden (RFC 2865 §5.2): see [`super::recover_password`].
    pub fn user_password(&self) -> Option<&[u8]> {
        self.find(attr_type::USER_PASSWORD).map(|a| a.value())
    }

    /// CHAP-Password: the CHAP Ident and response (RFC 2865 §5.3).
    pub fn chap_password(&self) -> Result<Option<(u8, &[u8; 16])>, Error> {
        self.typed(attr_type::CHAP_PASSWORD, |a| match a {
            Attribute::ChapPassword(ident, response) => Some((ident, response)),
            _ => None,
        })
    }

    /// CHAP-Challenge (RFC 2865 §5.40). Without one, the Request Authenticator is the
    /// challenge.
    pub fn chap_challenge(&self) -> Option<&[u8]> {
        self.find(attr_type::CHAP_CHALLENGE).map(|a| a.value())
    }

    /// NAS-IP-Address (RFC 2865 §5.4).
    pub fn nas_ip_address(&self) -> Result<Option<Ipv4Addr>, Error> {
        self.typed(attr_type::NAS_IP_ADDRESS, |a| match a {
            Attribute::NasIpAddress(ip) => Some(ip),
            _ => None,
        })
    }

    /// NAS-Identifier (RFC 2865 §5.32).
    pub fn nas_identifier(&self) -> Option<&[u8]> {
        self.find(attr_type::NAS_IDENTIFIER).map(|a| a.value())
    }

    /// State (RFC 2865 §5.24).
    pub fn state(&self) -> Option<&[u8]> {
        self.find(attr_type::STATE).map(|a| a.value())
    }

    /// Message-Authenticator value, if present (RFC 3579 §3.2).
    pub fn message_authenticator(&self) -> Option<&[u8]> {
        self.find(attr_type::MESSAGE_AUTHENTICATOR)
            .map(|a| a.value())
    }

    /// Every Vendor-Specific attribute in the packet (RFC 2865 §5.26), decoded; those too short
    /// to hold a Vendor-Id are skipped.
    pub fn vendor_specific(&self) -> impl Iterator<Item = Vsa<'_>> + '_ {
        self.find_all(attr_type::VENDOR_SPECIFIC)
            .filter_map(|value| Vsa::parse(value).ok())
    }

    /// Verifies the reply to a request whose Request Authenticator was `request_authenticator`:
    /// the Response Authenticator (RFC 2865 §3; RFC 2866 §4 for Accounting-Response) and, if
    /// present, the Message-Authenticator (RFC 3579 §3.2). Whether an unsigned reply is
    /// acceptable is the caller's policy.
    pub fn verify_reply<S: AsRef<[u8]>>(
        &self,
        request_authenticator: &[u8; AUTHENTICATOR_LEN],
        secret: &Secret<S>,
    ) -> Result<Signature, Error> {
        let (prefix, received, attrs) = self.split_header();
        // RFC 2865 §3: ResponseAuth = MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
        let expected = md5(&[prefix, request_authenticator, attrs, secret.expose()]);
        if !ct::eq(&expected, received) {
            return Err(Error::AuthenticatorMismatch);
        }
        self.verify_message_authenticator(request_authenticator, secret)
    }

    /// Verifies the Message-Authenticator of an Access-Request or Status-Server, if present
    /// (RFC 3579 §3.2, RFC 5997 §3): the HMAC covers the packet as sent, Request
    /// Authenticator included.
    pub fn verify_request<S: AsRef<[u8]>>(&self, secret: &Secret<S>) -> Result<Signature, Error> {
        let authenticator = self.authenticator();
        self.verify_message_authenticator(&authenticator, secret)
    }

    /// Verifies an Accounting-Request: its Request Authenticator is
    /// MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret) (RFC 2866 §3), and a
    /// Message-Authenticator, if present, is computed with those 16 zero octets in place of the
    /// authenticator.
    pub fn verify_accounting_request<S: AsRef<[u8]>>(
        &self,
        secret: &Secret<S>,
    ) -> Result<Signature, Error> {
        let (prefix, received, attrs) = self.split_header();
        let expected = md5(&[prefix, &[0; AUTHENTICATOR_LEN], attrs, secret.expose()]);
        if !ct::eq(&expected, received) {
            return Err(Error::AuthenticatorMismatch);
        }
        self.verify_message_authenticator(&[0; AUTHENTICATOR_LEN], secret)
    }

    /// Verifies the Message-Authenticator, if present, with `authenticator` hashed in place of
    /// the packet's Authenticator field and the Message-Authenticator value as 16 zeros
    /// (RFC 3579 §3.2).
    fn verify_message_authenticator<S: AsRef<[u8]>>(
        &self,
        authenticator: &[u8; AUTHENTICATOR_LEN],
        secret: &Secret<S>,
    ) -> Result<Signature, Error> {
        let bytes = self.as_bytes();
        let mut found: Option<(usize, &[u8])> = None;
        for avp in self.attributes() {
            if avp.typ() != attr_type::MESSAGE_AUTHENTICATOR {
                continue;
            }
            // RFC 3579 §3.2: a packet carries at most one Message-Authenticator.
            if found.is_some() {
                return Err(Error::DuplicateMessageAuthenticator);
            }
            let value = avp.value();
            if value.len() != AUTHENTICATOR_LEN {
                return Err(Error::InvalidAttributeValue {
                    attr_type: attr_type::MESSAGE_AUTHENTICATOR,
                });
            }
            // The value borrows `bytes`, so its offset is the distance between the pointers.
            let offset = (value.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
            found = Some((offset, value));
        }
        let Some((offset, received)) = found else {
            return Ok(Signature::Unsigned);
        };
        let (prefix, _, _) = self.split_header();
        let before = bytes.get(HEADER_LEN..offset).unwrap_or_default();
        let after = bytes.get(offset + AUTHENTICATOR_LEN..).unwrap_or_default();
        let expected = hmac_md5(
            secret,
            &[
                prefix,
                authenticator,
                before,
                &[0; AUTHENTICATOR_LEN],
                after,
            ],
        );
        if ct::eq(&expected, received) {
            Ok(Signature::Signed)
        } else {
            Err(Error::MessageAuthenticatorMismatch)
        }
    }

    /// Code+Identifier+Length, the Authenticator field, and the attributes.
    fn split_header(&self) -> (&[u8], &[u8], &[u8]) {
        let bytes = self.as_bytes();
        (
            bytes.get(field::PREFIX).unwrap_or_default(),
            bytes.get(field::AUTHENTICATOR).unwrap_or_default(),
            self.attribute_octets(),
        )
    }

    fn attribute_octets(&self) -> &[u8] {
        self.as_bytes().get(HEADER_LEN..).unwrap_or_default()
    }

    fn octet(&self, index: usize) -> u8 {
        self.buffer.as_ref().get(index).copied().unwrap_or(0)
    }

    /// The first attribute of type `typ`, decoded and picked out by `pick`.
    fn typed<'a, R>(
        &'a self,
        typ: u8,
        pick: impl FnOnce(Attribute<'a>) -> Option<R>,
    ) -> Result<Option<R>, Error> {
        match self.find(typ) {
            None => Ok(None),
            Some(avp) => Ok(pick(avp.decode()?)),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Identifier (RFC 2865 §3).
    pub fn set_identifier(&mut self, identifier: u8) {
        if let Some(octet) = self.buffer.as_mut().get_mut(field::IDENTIFIER) {
            *octet = identifier;
        }
    }

    /// Sets the Authenticator field (RFC 2865 §3).
    pub fn set_authenticator(&mut self, authenticator: &[u8; AUTHENTICATOR_LEN]) {
        if let Some(field) = self.buffer.as_mut().get_mut(field::AUTHENTICATOR) {
            field.copy_from_slice(authenticator);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::super::testutil::{hex, hex16};
    use super::super::{MAX_PASSWORD_LEN, recover_password, verify_chap};
    use super::*;

    // RFC 2865 §7.1: User Telnet to Specified Host. Secret "xyzzy5461".
    const RFC_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
        98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f
        78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03";
    const RFC_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
        9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";
    // RFC 2865 §7.2: Framed User Authenticating with CHAP.
    const RFC_7_2_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
        0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9 75 57 c3 16 18 58 95 f2
        93 ff 63 44 07 72 75 04 06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
        02 07 06 00 00 00 01";
    // RFC 2865 §7.3: User with Challenge-Response card, the Access-Challenge.
    const RFC_7_3_CHALLENGE: &str = "0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c
        71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20 33 32 37 36 39 34 33 30
        2e 20 20 45 6e 74 65 72 20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f
        6d 70 74 2e 18 0a 33 32 37 36 39 34 33 30";

    #[test]
    fn test_deconstruct_rfc_7_1() {
        let bytes = hex(RFC_7_1_REQUEST);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.code(), Code::AccessRequest);
        assert_eq!(packet.identifier(), 0);
        assert_eq!(packet.length(), 56);
        assert_eq!(
            packet.authenticator(),
            hex16("0f403f9473978057bd83d5cb98f4227a")
        );
        assert_eq!(packet.user_name(), Some(&b"nemo"[..]));
        assert_eq!(
            packet.nas_ip_address(),
            Ok(Some(Ipv4Addr::new(192, 168, 1, 16)))
        );
        let decoded: Vec<_> = packet.attributes().map(|a| a.decode().unwrap()).collect();
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded[3], Attribute::NasPort(3));
        let mut out = [0u8; MAX_PASSWORD_LEN];
        let password = recover_password(
            packet.user_password().unwrap(),
            &Secret::new(b"xyzzy5461"),
            &packet.authenticator(),
            &mut out,
        )
        .unwrap();
        assert_eq!(password, b"arctangent");
        assert_eq!(
            packet.verify_request(&Secret::new(b"xyzzy5461")),
            Ok(Signature::Unsigned)
        );
    }

    #[test]
    fn rfc_7_1_response_authenticator() {
        let request = hex(RFC_7_1_REQUEST);
        let request = Packet::new_checked(&request[..]).unwrap();
        let accept = hex(RFC_7_1_ACCEPT);
        let accept = Packet::new_checked(&accept[..]).unwrap();
        assert_eq!(accept.code(), Code::AccessAccept);
        let auth = request.authenticator();
        assert_eq!(
            accept.verify_reply(&auth, &Secret::new(b"xyzzy5461")),
            Ok(Signature::Unsigned)
        );
        assert_eq!(
            accept.verify_reply(&auth, &Secret::new(b"xyzzy5462")),
            Err(Error::AuthenticatorMismatch)
        );
        let mut other = auth;
        other[15] ^= 1;
        assert_eq!(
            accept.verify_reply(&other, &Secret::new(b"xyzzy5461")),
            Err(Error::AuthenticatorMismatch)
        );
    }

    #[test]
    fn rfc_7_2_chap() {
        let bytes = hex(RFC_7_2_REQUEST);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.user_name(), Some(&b"flopsy"[..]));
        let (ident, response) = packet.chap_password().unwrap().unwrap();
        assert_eq!(ident, 0x16);
        // No CHAP-Challenge: the Request Authenticator is the challenge (RFC 2865 §5.3).
        assert_eq!(packet.chap_challenge(), None);
        let challenge = packet.authenticator();
        assert!(verify_chap(ident, response, b"arctangent", &challenge));
        assert!(!verify_chap(ident, response, b"arctangenT", &challenge));
    }

    #[test]
    fn rfc_7_3_challenge() {
        let bytes = hex(RFC_7_3_CHALLENGE);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.code(), Code::AccessChallenge);
        assert_eq!(packet.state(), Some(&b"32769430"[..]));
        let messages: Vec<_> = packet.find_all(attr_type::REPLY_MESSAGE).collect();
        assert_eq!(
            messages,
            [&b"Challenge 32769430.  Enter response at prompt."[..]]
        );
    }

    #[test]
    fn padding_after_length_is_ignored() {
        let mut bytes = hex(RFC_7_1_ACCEPT);
        bytes.extend_from_slice(&[0xa5; 10]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.as_bytes(), &hex(RFC_7_1_ACCEPT)[..]);
        assert_eq!(packet.attributes().count(), 3);
    }

    #[test]
    fn test_impossible_len() {
        let good = hex(RFC_7_1_REQUEST);
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&good[..n]).err(),
                Some(Error::Truncated),
                "{n}"
            );
        }
        for n in HEADER_LEN..good.len() {
            assert_eq!(
                Packet::new_checked(&good[..n]).err(),
                Some(Error::LengthExceedsBuffer {
                    length: 56,
                    received: n
                })
            );
        }
        for length in [0u16, 19, 4097, u16::MAX] {
            let mut bad = good.clone();
            bad[2..4].copy_from_slice(&length.to_be_bytes());
            bad.resize(usize::from(length).max(good.len()), 0);
            assert_eq!(
                Packet::new_checked(&bad[..]).err(),
                Some(Error::InvalidLength(length))
            );
        }
    }

    #[test]
    fn malformed_attributes_are_refused() {
        let header = |len: u16| {
            let mut p = vec![1, 0];
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[0; 16]);
            p
        };
        // Zero-length attribute.
        let mut p = header(22);
        p.extend_from_slice(&[1, 0]);
        assert_eq!(
            Packet::new_checked(&p[..]).err(),
            Some(Error::AttributeLengthTooSmall {
                offset: 20,
                length: 0
            })
        );
        // Attribute overrunning the packet (but not the buffer).
        let mut p = header(26);
        p.extend_from_slice(&[1, 3, b'a', 1, 9, b'b', 0, 0, 0, 0]);
        assert_eq!(
            Packet::new_checked(&p[..]).err(),
            Some(Error::AttributeOverrun {
                offset: 23,
                length: 9
            })
        );
        // A lone type octet at the end.
        let mut p = header(21);
        p.push(1);
        assert_eq!(
            Packet::new_checked(&p[..]).err(),
            Some(Error::AttributeTruncated { offset: 20 })
        );
        // An unchecked view of the same buffer neither panics nor yields the bad attribute.
        let unchecked = Packet::new_unchecked(&p[..]);
        assert_eq!(unchecked.attributes().count(), 0);
    }

    #[test]
    fn setters_write_in_place() {
        let mut bytes = hex(RFC_7_1_REQUEST);
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_identifier(0x42);
        packet.set_authenticator(&[7; 16]);
        assert_eq!(packet.identifier(), 0x42);
        assert_eq!(packet.authenticator(), [7; 16]);
        assert_eq!(bytes[1], 0x42);
    }
}
