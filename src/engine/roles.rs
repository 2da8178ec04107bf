//! Role mapping: which local roles a remote server's answer grants.
//!
//! A user gets every role whose mapping matches; the caller applies the default role when none
//! does.

use portcullis_protocol::radius::Packet;

/// A RADIUS role mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusMapping {
    /// The role granted.
    pub role: String,
    /// 1..=255: a standard attribute type (Class = 25, Filter-Id = 11); >= 256: a vendor id,
    /// matched against the sub-attributes of that vendor's Vendor-Specific attributes. With a
    /// `vendor_type`, always a vendor id, so vendors numbered below 256 (Cisco is 9) can be
    /// mapped too.
    pub attribute: u32,
    /// The value the attribute must carry, compared octet for octet.
    pub value: String,
    /// With a vendor id: only this vendor type matches.
    pub vendor_type: Option<u8>,
}

/// A TACACS+ role mapping: an AV pair name and value from the authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TacacsMapping {
    /// The role granted.
    pub role: String,
    /// AV pair name.
    pub attribute: String,
    /// AV pair value.
    pub value: String,
}

/// The roles an Access-Accept grants, in mapping order, without duplicates.
pub fn radius_roles(mappings: &[RadiusMapping], accept: &Packet<&[u8]>) -> Vec<String> {
    let mut roles = Vec::new();
    for mapping in mappings {
        if radius_matches(mapping, accept) && !roles.contains(&mapping.role) {
            roles.push(mapping.role.clone());
        }
    }
    roles
}

fn radius_matches(mapping: &RadiusMapping, accept: &Packet<&[u8]>) -> bool {
    let wanted = mapping.value.as_bytes();
    let standard = match mapping.vendor_type {
        Some(_) => None,
        None => u8::try_from(mapping.attribute).ok(),
    };
    match standard {
        Some(0) => false,
        Some(typ) => accept.find_all(typ).any(|value| value == wanted),
        None => accept
            .vendor_specific()
            .filter(|vsa| vsa.vendor_id() == mapping.attribute)
            .any(|vsa| match vsa.sub_attributes() {
                Some(mut subs) => subs.any(|sub| {
                    mapping.vendor_type.is_none_or(|t| t == sub.vendor_type) && sub.value == wanted
                }),
                // A vendor format other than RFC 2865 §5.26's: only a whole-value match,
                // and only when no vendor type was asked for.
                None => mapping.vendor_type.is_none() && vsa.data() == wanted,
            }),
    }
}

/// The roles an authorization response's AV pairs grant, in mapping order, without duplicates.
pub fn tacacs_roles(mappings: &[TacacsMapping], av_pairs: &[(String, String)]) -> Vec<String> {
    let mut roles = Vec::new();
    for mapping in mappings {
        let matched = av_pairs
            .iter()
            .any(|(name, value)| *name == mapping.attribute && *value == mapping.value);
        if matched && !roles.contains(&mapping.role) {
            roles.push(mapping.role.clone());
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use portcullis_protocol::radius::{Builder, Code, attr_type};

    use super::*;

    fn accept(build: impl FnOnce(&mut Builder)) -> Vec<u8> {
        let mut buf = [0u8; 4096];
        let mut b = Builder::new(&mut buf, Code::AccessAccept, 1, &[0; 16]).unwrap();
        build(&mut b);
        let len = b.finish_unsigned();
        buf[..len].to_vec()
    }

    fn mapping(role: &str, attribute: u32, value: &str, vendor_type: Option<u8>) -> RadiusMapping {
        RadiusMapping {
            role: role.into(),
            attribute,
            value: value.into(),
            vendor_type,
        }
    }

    #[test]
    fn vendor_and_standard_attributes() {
        let bytes = accept(|b| {
            b.attribute(attr_type::CLASS, b"ops").unwrap();
            b.vendor_specific(17164, &[(1, b"2"), (3, b"x")]).unwrap();
            b.vendor_specific(9, &[(1, b"shell:priv-lvl=15")]).unwrap();
        });
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let mappings = [
            mapping("Administrator", 17164, "2", None),
            mapping("Operator", 25, "ops", None),
            mapping("Monitor", 25, "other", None),
            mapping("Auditor", 17164, "2", Some(3)),
            mapping("Auditor", 17164, "x", Some(3)),
            mapping("Shell", 9, "shell:priv-lvl=15", Some(1)),
            mapping("Nobody", 17165, "2", None),
            mapping("Administrator", 11, "ops", None),
        ];
        assert_eq!(
            radius_roles(&mappings, &packet),
            ["Administrator", "Operator", "Auditor", "Shell"]
        );
    }

    #[test]
    fn values_compare_exactly() {
        let bytes = accept(|b| {
            b.attribute(attr_type::FILTER_ID, b"web-ro").unwrap();
            b.vendor_specific(17164, &[(1, b"20")]).unwrap();
        });
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let mappings = [
            mapping("A", 11, "web", None),
            mapping("B", 11, "web-ro ", None),
            mapping("C", 17164, "2", None),
            mapping("D", 0, "", None),
        ];
        assert!(radius_roles(&mappings, &packet).is_empty());
    }

    #[test]
    fn raw_vendor_formats_match_whole_values_only() {
        // Vendor 4242 uses its own format: 3 octets that are not RFC 2865 §5.26 TLVs.
        let bytes = accept(|b| {
            b.attribute(
                attr_type::VENDOR_SPECIFIC,
                &[0, 0, 0x10, 0x92, b'a', b'd', b'm'],
            )
            .unwrap();
        });
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            radius_roles(&[mapping("A", 4242, "adm", None)], &packet),
            ["A"]
        );
        assert!(radius_roles(&[mapping("A", 4242, "adm", Some(1))], &packet).is_empty());
    }

    #[test]
    fn tacacs_pairs() {
        let pairs = vec![
            ("priv-lvl".to_string(), "15".to_string()),
            ("role".to_string(), "admin".to_string()),
        ];
        let mappings = [
            TacacsMapping {
                role: "Administrator".into(),
                attribute: "role".into(),
                value: "admin".into(),
            },
            TacacsMapping {
                role: "Operator".into(),
                attribute: "priv-lvl".into(),
                value: "1".into(),
            },
        ];
        assert_eq!(tacacs_roles(&mappings, &pairs), ["Administrator"]);
    }
}
