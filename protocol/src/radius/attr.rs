//! Attributes: the lazy iterator over a packet's TLVs, typed decoding, Vendor-Specific.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::{AUTHENTICATOR_LEN, Error, MAX_PASSWORD_LEN};

/// Attribute type numbers the gateway uses (RFC 2865 §5, RFC 2869, RFC 3162, RFC 3579).
pub mod attr_type {
    /// User-Name (RFC 2865 §5.1).
    pub const USER_NAME: u8 = 1;
    /// User-Password (RFC 2865 §5.2).
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP-Password (RFC 2865 §5.3).
    pub const CHAP_PASSWORD: u8 = 3;
    /// NAS-IP-Address (RFC 2865 §5.4).
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// NAS-Port (RFC 2865 §5.5).
    pub const NAS_PORT: u8 = 5;
    /// Service-Type (RFC 2865 §5.6).
    pub const SERVICE_TYPE: u8 = 6;
    /// Filter-Id (RFC 2865 §5.11).
    pub const FILTER_ID: u8 = 11;
    /// Reply-Message (RFC 2865 §5.18).
    pub const REPLY_MESSAGE: u8 = 18;
    /// State (RFC 2865 §5.24).
    pub const STATE: u8 = 24;
    /// Class (RFC 2865 §5.25).
    pub const CLASS: u8 = 25;
    /// Vendor-Specific (RFC 2865 §5.26).
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Session-Timeout (RFC 2865 §5.27).
    pub const SESSION_TIMEOUT: u8 = 27;
    /// NAS-Identifier (RFC 2865 §5.32).
    pub const NAS_IDENTIFIER: u8 = 32;
    /// Proxy-State (RFC 2865 §5.33).
    pub const PROXY_STATE: u8 = 33;
    /// CHAP-Challenge (RFC 2865 §5.40).
    pub const CHAP_CHALLENGE: u8 = 60;
    /// NAS-Port-Type (RFC 2865 §5.41).
    pub const NAS_PORT_TYPE: u8 = 61;
    /// Prompt (RFC 2869 §5.10): in an Access-Challenge, whether the answer is echoed (1) or
    /// not (0).
    pub const PROMPT: u8 = 76;
    /// Message-Authenticator (RFC 3579 §3.2).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    /// NAS-IPv6-Address (RFC 3162 §2.1).
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// One attribute as it sits on the wire: its Type and the Value octets, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avp<'a> {
    typ: u8,
    value: &'a [u8],
}

impl<'a> Avp<'a> {
    /// An attribute of type `typ` with `value`.
    #[inline]
    pub const fn new(typ: u8, value: &'a [u8]) -> Self {
        Avp { typ, value }
    }

    /// The Type octet.
    #[inline]
    pub const fn typ(&self) -> u8 {
        self.typ
    }

    /// The Value octets (Length - 2 of them).
    #[inline]
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Decodes the value by its type, checking the size and form RFC 2865 §5 gives it.
    /// Types this codec has no typed form for come back as [`Attribute::Other`].
    #[inline]
    pub fn decode(&self) -> Result<Attribute<'a>, Error> {
        use attr_type::*;
        let value = self.value;
        let invalid = Error::InvalidAttributeValue {
            attr_type: self.typ,
        };
        let attribute = match self.typ {
            USER_NAME => Attribute::UserName(non_empty(value).ok_or(invalid)?),
            USER_PASSWORD => {
                // RFC 2865 §5.2: 16..=128 octets, a multiple of 16.
                if value.len() < AUTHENTICATOR_LEN
                    || value.len() > MAX_PASSWORD_LEN
                    || value.len() % AUTHENTICATOR_LEN != 0
                {
                    return Err(invalid);
                }
                Attribute::UserPassword(value)
            }
            CHAP_PASSWORD => match value {
                // RFC 2865 §5.3: CHAP Ident (1 octet) + String (16 octets).
                [ident, response @ ..] => {
                    Attribute::ChapPassword(*ident, response.try_into().map_err(|_| invalid)?)
                }
                [] => return Err(invalid),
            },
            NAS_IP_ADDRESS => Attribute::NasIpAddress(ipv4(value).ok_or(invalid)?),
            NAS_PORT => Attribute::NasPort(int(value).ok_or(invalid)?),
            SERVICE_TYPE => Attribute::ServiceType(int(value).ok_or(invalid)?),
            FILTER_ID => Attribute::FilterId(non_empty(value).ok_or(invalid)?),
            REPLY_MESSAGE => Attribute::ReplyMessage(non_empty(value).ok_or(invalid)?),
            STATE => Attribute::State(non_empty(value).ok_or(invalid)?),
            CLASS => Attribute::Class(non_empty(value).ok_or(invalid)?),
            VENDOR_SPECIFIC => Attribute::VendorSpecific(Vsa::parse(value)?),
            SESSION_TIMEOUT => Attribute::SessionTimeout(int(value).ok_or(invalid)?),
            NAS_IDENTIFIER => Attribute::NasIdentifier(non_empty(value).ok_or(invalid)?),
            PROXY_STATE => Attribute::ProxyState(non_empty(value).ok_or(invalid)?),
            // RFC 2865 §5.40: CHAP-Challenge is at least 5 octets of value.
            CHAP_CHALLENGE if value.len() >= 5 => Attribute::ChapChallenge(value),
            CHAP_CHALLENGE => return Err(invalid),
            NAS_PORT_TYPE => Attribute::NasPortType(int(value).ok_or(invalid)?),
            // RFC 3579 §3.2: the String field is 16 octets.
            MESSAGE_AUTHENTICATOR => {
                Attribute::MessageAuthenticator(value.try_into().map_err(|_| invalid)?)
            }
            // RFC 3162 §2.1: a 128-bit address.
            NAS_IPV6_ADDRESS => {
                let octets: [u8; 16] = value.try_into().map_err(|_| invalid)?;
                Attribute::NasIpv6Address(Ipv6Addr::from(octets))
            }
            other => Attribute::Other(other, value),
        };
        Ok(attribute)
    }
}

/// RFC 2865 §5: `text` and `string` values are 1..=253 octets.
#[inline]
fn non_empty(value: &[u8]) -> Option<&[u8]> {
    (!value.is_empty()).then_some(value)
}

/// RFC 2865 §5: `integer` is a 32-bit big-endian value.
#[inline]
fn int(value: &[u8]) -> Option<u32> {
    value.try_into().ok().map(u32::from_be_bytes)
}

/// RFC 2865 §5: `address` is 32 bits, most significant octet first.
#[inline]
fn ipv4(value: &[u8]) -> Option<Ipv4Addr> {
    let octets: [u8; 4] = value.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

/// An attribute decoded by its type. Text values stay as octets; RFC 2865 asks for UTF-8 but
/// the caller decides what to do with a peer that sends anything else.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute<'a> {
    /// User-Name (1).
    UserName(&'a [u8]),
    /// User-Password (2), still hidden: see [`super::recover_password`].
    UserPassword(&'a [u8]),
    /// CHAP-Password (3): the CHAP Ident and the 16-octet response.
    ChapPassword(u8, &'a [u8; 16]),
    /// NAS-IP-Address (4).
    NasIpAddress(Ipv4Addr),
    /// NAS-Port (5).
    NasPort(u32),
    /// Service-Type (6).
    ServiceType(u32),
    /// Filter-Id (11).
    FilterId(&'a [u8]),
    /// Reply-Message (18).
    ReplyMessage(&'a [u8]),
    /// State (24).
    State(&'a [u8]),
    /// Class (25).
    Class(&'a [u8]),
    /// Vendor-Specific (26).
    VendorSpecific(Vsa<'a>),
    /// Session-Timeout (27), in seconds.
    SessionTimeout(u32),
    /// NAS-Identifier (32).
    NasIdentifier(&'a [u8]),
    /// Proxy-State (33).
    ProxyState(&'a [u8]),
    /// CHAP-Challenge (60).
    ChapChallenge(&'a [u8]),
    /// NAS-Port-Type (61).
    NasPortType(u32),
    /// Message-Authenticator (80).
    MessageAuthenticator(&'a [u8; 16]),
    /// NAS-IPv6-Address (95).
    NasIpv6Address(Ipv6Addr),
    /// Any other type, with its raw value.
    Other(u8, &'a [u8]),
}

/// A Vendor-Specific attribute (RFC 2865 §5.26): the Vendor-Id and the octets after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vsa<'a> {
    vendor_id: u32,
    data: &'a [u8],
}

impl<'a> Vsa<'a> {
    /// Splits a Vendor-Specific value into Vendor-Id and data.
    #[inline]
    pub fn parse(value: &'a [u8]) -> Result<Self, Error> {
        // RFC 2865 §5.26: Length >= 7, i.e. a 4-octet Vendor-Id and at least one octet of
        // String.
        match value {
            [a, b, c, d, data @ ..] if !data.is_empty() => Ok(Vsa {
                vendor_id: u32::from_be_bytes([*a, *b, *c, *d]),
                data,
            }),
            _ => Err(Error::InvalidVendorSpecific),
        }
    }

    /// Vendor-Id: the high octet is 0, the low three the vendor's SMI Network Management
    /// Private Enterprise Code.
    #[inline]
    pub const fn vendor_id(&self) -> u32 {
        self.vendor_id
    }

    /// The String field: everything after the Vendor-Id, in the vendor's own format.
    #[inline]
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The sub-attributes, when the data follows the format RFC 2865 §5.26 suggests (one-octet
    /// vendor type, one-octet vendor length counting both, the value) and fills the String
    /// exactly. `None` when it does not: the vendor uses a format of its own, see [`Vsa::data`].
    #[inline]
    pub fn sub_attributes(&self) -> Option<SubAttributes<'a>> {
        let mut rest = self.data;
        while !rest.is_empty() {
            match rest {
                [_, len, tail @ ..] if *len >= 2 => {
                    rest = tail.get(usize::from(*len) - 2..)?;
                }
                _ => return None,
            }
        }
        Some(SubAttributes { rest: self.data })
    }
}

/// One sub-attribute of a Vendor-Specific attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAttribute<'a> {
    /// Vendor type.
    pub vendor_type: u8,
    /// The value, without the vendor type and vendor length octets.
    pub value: &'a [u8],
}

/// Iterator over the sub-attributes of a [`Vsa`]; built only over data already checked to be in
/// RFC 2865 §5.26 format.
#[derive(Debug, Clone)]
pub struct SubAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SubAttributes<'a> {
    type Item = SubAttribute<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (vendor_type, value, rest) = split_tlv(self.rest)?;
        self.rest = rest;
        Some(SubAttribute { vendor_type, value })
    }
}

/// Splits one type-length-value triple (the length counting its two header octets) off the
/// front of `buf`: `None` at the end or on a malformed triple.
#[inline]
fn split_tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    match buf {
        [typ, len, tail @ ..] if *len >= 2 => {
            let (value, rest) = tail.split_at_checked(usize::from(*len) - 2)?;
            Some((*typ, value, rest))
        }
        _ => None,
    }
}

/// Checks that `attrs`, the octets after the header, hold a whole number of attributes
/// (RFC 2865 §5). `base` is the offset of `attrs` in the packet, for error messages.
#[inline]
pub(super) fn check_attributes(attrs: &[u8], base: usize) -> Result<(), Error> {
    let mut rest = attrs;
    while !rest.is_empty() {
        let offset = offset_u16(base + (attrs.len() - rest.len()));
        match rest {
            [_, len, tail @ ..] => {
                if *len < 2 {
                    return Err(Error::AttributeLengthTooSmall {
                        offset,
                        length: *len,
                    });
                }
                rest = tail
                    .get(usize::from(*len) - 2..)
                    .ok_or(Error::AttributeOverrun {
                        offset,
                        length: *len,
                    })?;
            }
            _ => return Err(Error::AttributeTruncated { offset }),
        }
    }
    Ok(())
}

/// Packet offsets are below 4096, so they always fit; saturate rather than wrap if a caller
/// ever passes something larger.
fn offset_u16(offset: usize) -> u16 {
    u16::try_from(offset).unwrap_or(u16::MAX)
}

/// Lazy iterator over the attributes of a packet, borrowing its buffer.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    /// Iterates the attributes in `attrs`. On octets that were not checked, iteration stops at
    /// the first malformed attribute.
    #[inline]
    pub(super) const fn new(attrs: &'a [u8]) -> Self {
        Attributes { rest: attrs }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Avp<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match split_tlv(self.rest) {
            Some((typ, value, rest)) => {
                self.rest = rest;
                Some(Avp { typ, value })
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    #[test]
    fn decode_checks_fixed_sizes() {
        let ok = Avp::new(attr_type::NAS_IP_ADDRESS, &[192, 0, 2, 1]).decode();
        assert_eq!(ok, Ok(Attribute::NasIpAddress(Ipv4Addr::new(192, 0, 2, 1))));
        for (typ, value) in [
            (attr_type::NAS_IP_ADDRESS, &[1u8, 2, 3][..]),
            (attr_type::NAS_PORT, &[0, 0, 0, 0, 1]),
            (attr_type::SESSION_TIMEOUT, &[]),
            (attr_type::MESSAGE_AUTHENTICATOR, &[0; 15]),
            (attr_type::NAS_IPV6_ADDRESS, &[0; 4]),
            (attr_type::CHAP_PASSWORD, &[1; 16]),
            (attr_type::USER_PASSWORD, &[0; 17]),
            (attr_type::USER_PASSWORD, &[0; 144]),
            (attr_type::USER_NAME, &[]),
            (attr_type::CHAP_CHALLENGE, &[1, 2, 3, 4]),
        ] {
            assert_eq!(
                Avp::new(typ, value).decode(),
                Err(Error::InvalidAttributeValue { attr_type: typ }),
                "type {typ}"
            );
        }
    }

    #[test]
    fn decode_typed_values() {
        let mut chap = [0u8; 17];
        chap[0] = 7;
        chap[1..].copy_from_slice(&[0xab; 16]);
        assert_eq!(
            Avp::new(attr_type::CHAP_PASSWORD, &chap).decode(),
            Ok(Attribute::ChapPassword(7, &[0xab; 16]))
        );
        assert_eq!(
            Avp::new(attr_type::SERVICE_TYPE, &[0, 0, 0, 6]).decode(),
            Ok(Attribute::ServiceType(6))
        );
        let v6 = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(
            Avp::new(attr_type::NAS_IPV6_ADDRESS, &v6).decode(),
            Ok(Attribute::NasIpv6Address(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            Avp::new(200, b"x").decode(),
            Ok(Attribute::Other(200, b"x"))
        );
    }

    #[test]
    fn vsa_sub_attributes() {
        // Vendor 17164, sub-attribute 1 = "2", sub-attribute 3 = "ab".
        let value = [0, 0, 0x43, 0x0c, 1, 3, b'2', 3, 4, b'a', b'b'];
        let Ok(Attribute::VendorSpecific(vsa)) =
            Avp::new(attr_type::VENDOR_SPECIFIC, &value).decode()
        else {
            panic!("not a VSA");
        };
        assert_eq!(vsa.vendor_id(), 17164);
        let subs: Vec<_> = vsa.sub_attributes().unwrap().collect();
        assert_eq!(
            subs,
            [
                SubAttribute {
                    vendor_type: 1,
                    value: b"2"
                },
                SubAttribute {
                    vendor_type: 3,
                    value: b"ab"
                }
            ]
        );
    }

    #[test]
    fn vsa_in_a_vendor_format_stays_raw() {
        // The last sub-attribute claims 5 octets where 3 remain.
        let value = [0, 0, 0, 9, 1, 3, b'x', 2, 5, 0];
        let vsa = Vsa::parse(&value).unwrap();
        assert!(vsa.sub_attributes().is_none());
        assert_eq!(vsa.data(), &value[4..]);
        // Vendor length 1 is below the two octets it must count.
        assert!(
            Vsa::parse(&[0, 0, 0, 9, 1, 1])
                .unwrap()
                .sub_attributes()
                .is_none()
        );
        // No String at all.
        assert_eq!(Vsa::parse(&[0, 0, 0, 9]), Err(Error::InvalidVendorSpecific));
    }

    #[test]
    fn check_attributes_reports_offsets() {
        assert_eq!(check_attributes(&[1, 3, b'a', 2, 2], 20), Ok(()));
        assert_eq!(
            check_attributes(&[1, 3, b'a', 2], 20),
            Err(Error::AttributeTruncated { offset: 23 })
        );
        assert_eq!(
            check_attributes(&[1, 0, 0, 0], 20),
            Err(Error::AttributeLengthTooSmall {
                offset: 20,
                length: 0
            })
        );
        assert_eq!(
            check_attributes(&[1, 3, b'a', 4, 9, 0], 20),
            Err(Error::AttributeOverrun {
                offset: 23,
                length: 9
            })
        );
    }
}
