//! Emitting packets into a caller buffer.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::attr::attr_type;
use super::crypto::{Secret, hide_password, hmac_md5, md5};
use super::{
    AUTHENTICATOR_LEN, Code, Error, HEADER_LEN, MAX_ATTRIBUTE_VALUE_LEN, MAX_PACKET_LEN,
    MAX_PASSWORD_LEN,
};

/// Writes a packet into a caller buffer: the header first, then attributes in the order they
/// are added. The Length field, and the authenticators the packet needs, are written by the
/// `finish_*` method that matches the packet's role:
///
/// | packet | finish with |
/// |---|---|
/// | Access-Request, Status-Server | [`Builder::finish_request`] |
/// | Access-Accept/Reject/Challenge, Accounting-Response | [`Builder::finish_reply`] |
/// | Accounting-Request | [`Builder::finish_accounting_request`] |
/// | octets exactly as given | [`Builder::finish_unsigned`] |
#[derive(Debug)]
pub struct Builder<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Offset of the Message-Authenticator value, once its placeholder is written.
    message_authenticator: Option<usize>,
}

impl<'b> Builder<'b> {
    /// Starts a packet with `code`, `identifier` and the Authenticator field. For requests the
    /// authenticator is the Request Authenticator, which RFC 2865 §3 wants unpredictable: fill
    /// it from a CSPRNG. Replies and Accounting-Requests overwrite it when they finish.
    pub fn new(
        buf: &'b mut [u8],
        code: Code,
        identifier: u8,
        authenticator: &[u8; AUTHENTICATOR_LEN],
    ) -> Result<Self, Error> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let (fixed, auth) = header.split_at_mut(4);
        fixed.copy_from_slice(&[u8::from(code), identifier, 0, 0]);
        auth.copy_from_slice(authenticator);
        Ok(Builder {
            buf,
            len: HEADER_LEN,
            message_authenticator: None,
        })
    }

    /// Starts an Access-Request whose first attribute is a Message-Authenticator, as the
    /// BlastRADIUS mitigation (CVE-2024-3596) asks; finish it with [`Builder::finish_request`].
    pub fn access_request(
        buf: &'b mut [u8],
        identifier: u8,
        authenticator: &[u8; AUTHENTICATOR_LEN],
    ) -> Result<Self, Error> {
        let mut builder = Self::new(buf, Code::AccessRequest, identifier, authenticator)?;
        builder.message_authenticator()?;
        Ok(builder)
    }

    /// Octets written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Appends an attribute with a raw value of at most 253 octets (RFC 2865 §5).
    pub fn attribute(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, Error> {
        if value.len() > MAX_ATTRIBUTE_VALUE_LEN {
            return Err(Error::ValueTooLong);
        }
        let dst = self.reserve(2 + value.len())?;
        let (head, body) = dst.split_at_mut(2);
        // The value is at most 253 octets, so the length fits in the octet.
        head.copy_from_slice(&[typ, (2 + value.len()) as u8]);
        body.copy_from_slice(value);
        Ok(self)
    }

    /// Appends an `integer` attribute (RFC 2865 §5: 32 bits, big-endian).
    pub fn attribute_u32(&mut self, typ: u8, value: u32) -> Result<&mut Self, Error> {
        self.attribute(typ, &value.to_be_bytes())
    }

    /// Appends an IPv4 `address` attribute (RFC 2865 §5).
    pub fn attribute_ipv4(&mut self, typ: u8, addr: Ipv4Addr) -> Result<&mut Self, Error> {
        self.attribute(typ, &addr.octets())
    }

    /// Appends an IPv6 address attribute such as NAS-IPv6-Address (RFC 3162 §2.1).
    pub fn attribute_ipv6(&mut self, typ: u8, addr: Ipv6Addr) -> Result<&mut Self, Error> {
        self.attribute(typ, &addr.octets())
    }

    /// Appends User-Password, hidden with `secret` and this packet's Request Authenticator
    /// (RFC 2865 §5.2). Call it on a packet whose authenticator is final: an Access-Request.
    pub fn user_password<S: AsRef<[u8]>>(
        &mut self,
        password: &[u8],
        secret: &Secret<S>,
    ) -> Result<&mut Self, Error> {
        let authenticator = self.authenticator();
        let mut hidden = [0u8; MAX_PASSWORD_LEN];
        let hidden = hide_password(password, secret, &authenticator, &mut hidden)?;
        self.attribute(attr_type::USER_PASSWORD, hidden)
    }

    /// Appends CHAP-Password: the CHAP Ident and the response (RFC 2865 §5.3).
    pub fn chap_password(&mut self, ident: u8, response: &[u8; 16]) -> Result<&mut Self, Error> {
        let mut value = [0u8; 17];
        let (id, rest) = value.split_at_mut(1);
        id.copy_from_slice(&[ident]);
        rest.copy_from_slice(response);
        self.attribute(attr_type::CHAP_PASSWORD, &value)
    }

    /// Appends one Vendor-Specific attribute of `vendor_id` holding `subs` as (vendor type,
    /// value) sub-attributes in the RFC 2865 §5.26 format.
    pub fn vendor_specific(
        &mut self,
        vendor_id: u32,
        subs: &[(u8, &[u8])],
    ) -> Result<&mut Self, Error> {
        let data_len: usize = subs.iter().map(|(_, v)| 2 + v.len()).sum();
        // Vendor-Id (4) plus the sub-attributes must fit in one attribute value.
        if 4 + data_len > MAX_ATTRIBUTE_VALUE_LEN {
            return Err(Error::ValueTooLong);
        }
        let dst = self.reserve(2 + 4 + data_len)?;
        let (head, mut rest) = dst.split_at_mut(6);
        let [v0, v1, v2, v3] = vendor_id.to_be_bytes();
        head.copy_from_slice(&[
            attr_type::VENDOR_SPECIFIC,
            (6 + data_len) as u8,
            v0,
            v1,
            v2,
            v3,
        ]);
        for (vendor_type, value) in subs {
            let (sub, tail) = rest.split_at_mut(2 + value.len());
            let (sub_head, sub_value) = sub.split_at_mut(2);
            sub_head.copy_from_slice(&[*vendor_type, (2 + value.len()) as u8]);
            sub_value.copy_from_slice(value);
            rest = tail;
        }
        Ok(self)
    }

    /// Appends a Message-Authenticator placeholder (16 zeros) that the `finish_*` method fills
    /// in (RFC 3579 §3.2). At most one per packet.
    pub fn message_authenticator(&mut self) -> Result<&mut Self, Error> {
        if self.message_authenticator.is_some() {
            return Err(Error::MessageAuthenticatorTwice);
        }
        let offset = self.len + 2;
        self.attribute(attr_type::MESSAGE_AUTHENTICATOR, &[0; AUTHENTICATOR_LEN])?;
        self.message_authenticator = Some(offset);
        Ok(self)
    }

    /// Finishes an Access-Request or Status-Server: patches Length and, if a placeholder was
    /// written, computes the Message-Authenticator over the packet with its Request
    /// Authenticator (RFC 3579 §3.2, RFC 5997 §3). Returns the packet length.
    pub fn finish_request<S: AsRef<[u8]>>(mut self, secret: &Secret<S>) -> Result<usize, Error> {
        self.patch_length();
        self.sign(secret);
        Ok(self.len)
    }

    /// Finishes a reply to the request whose Request Authenticator was `request_authenticator`:
    /// patches Length, computes the Message-Authenticator (if a placeholder was written) with
    /// the Request Authenticator in the Authenticator field (RFC 3579 §3.2), then writes the
    /// Response Authenticator MD5(Code+ID+Length+RequestAuth+Attributes+Secret) over the
    /// finished attributes (RFC 2865 §3, RFC 2866 §4). Returns the packet length.
    pub fn finish_reply<S: AsRef<[u8]>>(
        mut self,
        request_authenticator: &[u8; AUTHENTICATOR_LEN],
        secret: &Secret<S>,
    ) -> Result<usize, Error> {
        self.patch_length();
        self.set_authenticator(request_authenticator);
        self.sign(secret);
        let response = self.authenticator_over(request_authenticator, secret);
        self.set_authenticator(&response);
        Ok(self.len)
    }

    /// Finishes an Accounting-Request: the Request Authenticator becomes
    /// MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret) (RFC 2866 §3), with any
    /// Message-Authenticator computed first over the zeroed authenticator. Returns the length.
    pub fn finish_accounting_request<S: AsRef<[u8]>>(
        mut self,
        secret: &Secret<S>,
    ) -> Result<usize, Error> {
        self.patch_length();
        self.set_authenticator(&[0; AUTHENTICATOR_LEN]);
        self.sign(secret);
        let authenticator = self.authenticator_over(&[0; AUTHENTICATOR_LEN], secret);
        self.set_authenticator(&authenticator);
        Ok(self.len)
    }

    /// Finishes the packet with Length patched and every other octet as written: no
    /// authenticator is computed and a Message-Authenticator placeholder stays zero.
    pub fn finish_unsigned(mut self) -> usize {
        self.patch_length();
        self.len
    }

    /// Claims `n` more octets, refusing to grow past 4096 (RFC 2865 §3) or the buffer.
    fn reserve(&mut self, n: usize) -> Result<&mut [u8], Error> {
        let end = self.len + n;
        if end > MAX_PACKET_LEN {
            return Err(Error::PacketTooLong);
        }
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(Error::BufferTooSmall)?;
        self.len = end;
        Ok(dst)
    }

    fn patch_length(&mut self) {
        // `reserve` keeps len <= 4096, so it fits in the 16-bit field.
        let len = (self.len as u16).to_be_bytes();
        if let Some(field) = self.buf.get_mut(2..4) {
            field.copy_from_slice(&len);
        }
    }

    fn authenticator(&self) -> [u8; AUTHENTICATOR_LEN] {
        self.buf
            .get(4..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; AUTHENTICATOR_LEN])
    }

    fn set_authenticator(&mut self, authenticator: &[u8; AUTHENTICATOR_LEN]) {
        if let Some(field) = self.buf.get_mut(4..HEADER_LEN) {
            field.copy_from_slice(authenticator);
        }
    }

    /// Fills in the Message-Authenticator, if there is a placeholder, over the packet as it
    /// stands (Authenticator field included, value zero).
    fn sign<S: AsRef<[u8]>>(&mut self, secret: &Secret<S>) {
        let Some(offset) = self.message_authenticator else {
            return;
        };
        let mac = hmac_md5(secret, &[self.buf.get(..self.len).unwrap_or_default()]);
        if let Some(value) = self.buf.get_mut(offset..offset + AUTHENTICATOR_LEN) {
            value.copy_from_slice(&mac);
        }
    }

    /// MD5(Code+Identifier+Length+`authenticator`+Attributes+Secret).
    fn authenticator_over<S: AsRef<[u8]>>(
        &self,
        authenticator: &[u8; AUTHENTICATOR_LEN],
        secret: &Secret<S>,
    ) -> [u8; 16] {
        md5(&[
            self.buf.get(..4).unwrap_or_default(),
            authenticator,
            self.buf.get(HEADER_LEN..self.len).unwrap_or_default(),
            secret.expose(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::super::testutil::{hex, hex16};
    use super::super::{Attribute, Packet, Signature, SubAttribute, recover_password};
    use super::*;

    #[test]
    fn test_construct_rfc_7_1_request() {
        let mut buf = [0xa5u8; 128];
        let auth = hex16("0f403f9473978057bd83d5cb98f4227a");
        let mut b = Builder::new(&mut buf, Code::AccessRequest, 0, &auth).unwrap();
        b.attribute(attr_type::USER_NAME, b"nemo").unwrap();
        b.user_password(b"arctangent", &Secret::new(b"xyzzy5461"))
            .unwrap();
        b.attribute_ipv4(attr_type::NAS_IP_ADDRESS, Ipv4Addr::new(192, 168, 1, 16))
            .unwrap();
        b.attribute_u32(attr_type::NAS_PORT, 3).unwrap();
        let len = b.finish_request(&Secret::new(b"xyzzy5461")).unwrap();
        let expected = hex(
            "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d
            93d413ce3196e43f782a0aee0406c0a801100506000000 03",
        );
        assert_eq!(&buf[..len], &expected[..]);
        assert_eq!(buf[len], 0xa5, "wrote past the packet");
    }

    #[test]
    fn test_construct_rfc_7_1_accept() {
        let request_auth = hex16("0f403f9473978057bd83d5cb98f4227a");
        let mut buf = [0xa5u8; 64];
        let mut b = Builder::new(&mut buf, Code::AccessAccept, 0, &[0; 16]).unwrap();
        b.attribute_u32(6, 1).unwrap();
        b.attribute_u32(15, 0).unwrap();
        b.attribute_ipv4(14, Ipv4Addr::new(192, 168, 1, 3)).unwrap();
        let len = b
            .finish_reply(&request_auth, &Secret::new(b"xyzzy5461"))
            .unwrap();
        assert_eq!(len, 38);
        assert_eq!(buf[4..20], hex16("86fe220e7624ba2a1005f6bf9b55e0b2"));
    }

    #[test]
    fn signed_request_verifies_and_carries_message_authenticator_first() {
        let mut buf = [0u8; 4096];
        let auth = [0x11; 16];
        let mut b = Builder::access_request(&mut buf, 9, &auth).unwrap();
        b.attribute(attr_type::USER_NAME, b"alice").unwrap();
        b.user_password(b"correct horse", &Secret::new(b"s3cret"))
            .unwrap();
        let len = b.finish_request(&Secret::new(b"s3cret")).unwrap();
        let packet = Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(
            packet.attributes().next().map(|a| a.typ()),
            Some(attr_type::MESSAGE_AUTHENTICATOR)
        );
        assert_eq!(
            packet.verify_request(&Secret::new(b"s3cret")),
            Ok(Signature::Signed)
        );
        assert_eq!(
            packet.verify_request(&Secret::new(b"s3creT")),
            Err(Error::MessageAuthenticatorMismatch)
        );
        let mut out = [0; MAX_PASSWORD_LEN];
        let pw = recover_password(
            packet.user_password().unwrap(),
            &Secret::new(b"s3cret"),
            &auth,
            &mut out,
        );
        assert_eq!(pw, Ok(&b"correct horse"[..]));
        // Flipping any octet leaves no valid signature: the check fails, or (when the flip
        // renames the Message-Authenticator attribute) the packet is no longer signed.
        for i in 0..len {
            let mut copy = buf[..len].to_vec();
            copy[i] ^= 0x01;
            if let Ok(p) = Packet::new_checked(&copy[..]) {
                assert_ne!(
                    p.verify_request(&Secret::new(b"s3cret")),
                    Ok(Signature::Signed),
                    "octet {i}"
                );
            }
        }
    }

    #[test]
    fn signed_reply_verifies() {
        let request_auth = [0x22; 16];
        let mut buf = [0u8; 512];
        let mut b = Builder::new(&mut buf, Code::AccessAccept, 4, &[0; 16]).unwrap();
        b.message_authenticator().unwrap();
        b.attribute(attr_type::CLASS, b"admins").unwrap();
        b.vendor_specific(17164, &[(1, b"2"), (2, b"x")]).unwrap();
        let len = b
            .finish_reply(&request_auth, &Secret::new(b"secret"))
            .unwrap();
        let packet = Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(
            packet.verify_reply(&request_auth, &Secret::new(b"secret")),
            Ok(Signature::Signed)
        );
        assert_eq!(
            packet.verify_reply(&[0x23; 16], &Secret::new(b"secret")),
            Err(Error::AuthenticatorMismatch)
        );
        let vsa = packet.vendor_specific().next().unwrap();
        assert_eq!(vsa.vendor_id(), 17164);
        let subs: Vec<_> = vsa.sub_attributes().unwrap().collect();
        assert_eq!(
            subs[0],
            SubAttribute {
                vendor_type: 1,
                value: b"2"
            }
        );
        assert_eq!(
            subs[1],
            SubAttribute {
                vendor_type: 2,
                value: b"x"
            }
        );

        // A forged reply: right Response Authenticator (an attacker who knows the MD5 state
        // could fix it up) but a Message-Authenticator that does not match.
        let mut forged = buf[..len].to_vec();
        forged[24] ^= 0xff; // inside the Message-Authenticator value
        let resp = md5(&[&forged[..4], &request_auth, &forged[20..], b"secret"]);
        forged[4..20].copy_from_slice(&resp);
        let forged = Packet::new_checked(&forged[..]).unwrap();
        assert_eq!(
            forged.verify_reply(&request_auth, &Secret::new(b"secret")),
            Err(Error::MessageAuthenticatorMismatch)
        );
    }

    #[test]
    fn accounting_request_authenticator() {
        let mut buf = [0u8; 256];
        let mut b = Builder::new(&mut buf, Code::AccountingRequest, 1, &[0xee; 16]).unwrap();
        b.attribute_u32(40, 1).unwrap();
        b.attribute(attr_type::USER_NAME, b"bob").unwrap();
        let len = b.finish_accounting_request(&Secret::new(b"acct")).unwrap();
        let packet = Packet::new_checked(&buf[..len]).unwrap();
        assert_eq!(
            packet.verify_accounting_request(&Secret::new(b"acct")),
            Ok(Signature::Unsigned)
        );
        assert_eq!(
            packet.verify_accounting_request(&Secret::new(b"acct2")),
            Err(Error::AuthenticatorMismatch)
        );
    }

    #[test]
    fn limits() {
        let mut small = [0u8; 19];
        assert_eq!(
            Builder::new(&mut small, Code::AccessRequest, 0, &[0; 16]).err(),
            Some(Error::BufferTooSmall)
        );
        let mut buf = [0u8; 8192];
        let mut b = Builder::new(&mut buf, Code::AccessAccept, 0, &[0; 16]).unwrap();
        assert_eq!(b.attribute(1, &[0; 254]).err(), Some(Error::ValueTooLong));
        assert!(b.attribute(1, &[0; 253]).is_ok());
        assert_eq!(
            b.vendor_specific(9, &[(1, &[0; 248])]).err(),
            Some(Error::ValueTooLong)
        );
        for _ in 0..14 {
            b.attribute(25, &[1; 253]).unwrap();
        }
        assert_eq!(b.len(), 20 + 15 * 255);
        assert_eq!(b.attribute(25, &[1; 253]).err(), Some(Error::PacketTooLong));
        assert_eq!(b.message_authenticator().err(), None);
        assert_eq!(
            b.message_authenticator().err(),
            Some(Error::MessageAuthenticatorTwice)
        );
        let mut short = [0u8; 30];
        let mut b = Builder::new(&mut short, Code::AccessAccept, 0, &[0; 16]).unwrap();
        assert_eq!(b.attribute(1, &[0; 9]).err(), Some(Error::BufferTooSmall));
        assert!(b.is_empty());
    }

    #[test]
    fn typed_decode_of_built_attributes() {
        let mut buf = [0u8; 256];
        let mut b = Builder::new(&mut buf, Code::AccessRequest, 0, &[1; 16]).unwrap();
        b.attribute_ipv6(attr_type::NAS_IPV6_ADDRESS, Ipv6Addr::LOCALHOST)
            .unwrap();
        b.chap_password(5, &[6; 16]).unwrap();
        let len = b.finish_unsigned();
        let packet = Packet::new_checked(&buf[..len]).unwrap();
        let decoded: Vec<_> = packet.attributes().map(|a| a.decode().unwrap()).collect();
        assert_eq!(
            decoded,
            [
                Attribute::NasIpv6Address(Ipv6Addr::LOCALHOST),
                Attribute::ChapPassword(5, &[6; 16])
            ]
        );
    }
}
