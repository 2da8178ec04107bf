//! Authentication bodies: START, REPLY and CONTINUE (RFC 8907 §5).
//!
//! A session starts with a START from the client (seq_no 1); the server answers each client
//! packet with a REPLY; the client goes on with CONTINUEs while the REPLY asks for more
//! (RFC 8907 §5.4).

use core::fmt;

use super::{
    AuthenService, AuthenType, Body, EmitError, Error, Field, PacketType,
    codec::{Reader, Text, Writer, ensure_room, len_u8, len_u16},
};

wire_enum! {
    /// action: the authentication action (RFC 8907 §5.1).
    pub enum Action {
        /// TAC_PLUS_AUTHEN_LOGIN (0x01).
        Login = 0x01,
        /// TAC_PLUS_AUTHEN_CHPASS (0x02).
        ChangePassword = 0x02,
        /// TAC_PLUS_AUTHEN_SENDAUTH (0x04).
        SendAuth = 0x04,
    }
}

wire_enum! {
    /// status: the state of the authentication (RFC 8907 §5.2).
    pub enum Status {
        /// TAC_PLUS_AUTHEN_STATUS_PASS (0x01).
        Pass = 0x01,
        /// TAC_PLUS_AUTHEN_STATUS_FAIL (0x02).
        Fail = 0x02,
        /// TAC_PLUS_AUTHEN_STATUS_GETDATA (0x03).
        GetData = 0x03,
        /// TAC_PLUS_AUTHEN_STATUS_GETUSER (0x04).
        GetUser = 0x04,
        /// TAC_PLUS_AUTHEN_STATUS_GETPASS (0x05).
        GetPass = 0x05,
        /// TAC_PLUS_AUTHEN_STATUS_RESTART (0x06).
        Restart = 0x06,
        /// TAC_PLUS_AUTHEN_STATUS_ERROR (0x07).
        Error = 0x07,
        /// TAC_PLUS_AUTHEN_STATUS_FOLLOW (0x21), deprecated: treat as FAIL (RFC 8907 §5.4.3).
        Follow = 0x21,
    }
}

wire_flags! {
    /// flags of a REPLY (RFC 8907 §5.2).
    pub struct ReplyFlags {
        /// TAC_PLUS_REPLY_FLAG_NOECHO (0x01): do not echo what the user types.
        const NO_ECHO = 0x01;
    }
}

wire_flags! {
    /// flags of a CONTINUE (RFC 8907 §5.3).
    pub struct ContinueFlags {
        /// TAC_PLUS_CONTINUE_FLAG_ABORT (0x01): the client ends the session (RFC 8907 §5.4.3).
        const ABORT = 0x01;
    }
}

/// The authentication START body (RFC 8907 §5.1).
///
/// `Debug` leaves `data` out: it carries the PAP password and CHAP responses.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Start<'a> {
    /// action.
    pub action: Action,
    /// priv_lvl: the privilege level the user authenticates at (RFC 8907 §9).
    pub priv_lvl: u8,
    /// authen_type.
    pub authen_type: AuthenType,
    /// authen_service.
    pub authen_service: AuthenService,
    /// user (user_len octets), empty when absent.
    pub user: &'a [u8],
    /// port (port_len octets): the client port, such as "tty10".
    pub port: &'a [u8],
    /// rem_addr (rem_addr_len octets): where the user connects from.
    pub rem_addr: &'a [u8],
    /// data (data_len octets): the password for PAP, the id, challenge and response for CHAP
    /// (RFC 8907 §5.4.2).
    pub data: &'a [u8],
}

/// Octets of the START fixed fields: action, priv_lvl, authen_type, authen_service, user_len,
/// port_len, rem_addr_len, data_len (RFC 8907 §5.1).
const START_FIXED_LEN: usize = 8;

impl<'a> Start<'a> {
    /// Parses a deobfuscated START body.
    pub fn parse(body: &'a [u8]) -> Result<Start<'a>, Error> {
        let mut reader = Reader::new(body);
        // RFC 8907 §5.1: eight one-octet fields, then user, port, rem_addr and data.
        let &[
            action,
            priv_lvl,
            authen_type,
            authen_service,
            user_len,
            port_len,
            rem_addr_len,
            data_len,
        ] = reader.array::<START_FIXED_LEN>(Field::Fixed)?;
        let start = Start {
            action: Action::from(action),
            priv_lvl,
            authen_type: AuthenType::from(authen_type),
            authen_service: AuthenService::from(authen_service),
            user: reader.take(user_len.into(), Field::User)?,
            port: reader.take(port_len.into(), Field::Port)?,
            rem_addr: reader.take(rem_addr_len.into(), Field::RemAddr)?,
            data: reader.take(data_len.into(), Field::Data)?,
        };
        // RFC 8907 §4.5: the field lengths must add up to the body length.
        reader.finish()?;
        Ok(start)
    }

    /// The octets [`Start::emit`] writes; fails if a field is longer than 255 octets.
    pub fn body_len(&self) -> Result<usize, EmitError> {
        self.lens()?;
        Ok(START_FIXED_LEN
            + self.user.len()
            + self.port.len()
            + self.rem_addr.len()
            + self.data.len())
    }

    fn lens(&self) -> Result<[u8; 4], EmitError> {
        Ok([
            len_u8(self.user, Field::User)?,
            len_u8(self.port, Field::Port)?,
            len_u8(self.rem_addr, Field::RemAddr)?,
            len_u8(self.data, Field::Data)?,
        ])
    }

    /// Writes the body at the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        let [user_len, port_len, rem_addr_len, data_len] = self.lens()?;
        ensure_room(buffer, self.body_len()?)?;
        let mut writer = Writer::new(buffer);
        writer.put(&[
            self.action.into(),
            self.priv_lvl,
            self.authen_type.into(),
            self.authen_service.into(),
            user_len,
            port_len,
            rem_addr_len,
            data_len,
        ])?;
        writer.put(self.user)?;
        writer.put(self.port)?;
        writer.put(self.rem_addr)?;
        writer.put(self.data)?;
        Ok(writer.written())
    }
}

impl fmt::Debug for Start<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Start")
            .field("action", &self.action)
            .field("priv_lvl", &self.priv_lvl)
            .field("authen_type", &self.authen_type)
            .field("authen_service", &self.authen_service)
            .field("user", &Text(self.user))
            .field("port", &Text(self.port))
            .field("rem_addr", &Text(self.rem_addr))
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl<'a> Body<'a> for Start<'a> {
    const PACKET_TYPE: PacketType = PacketType::Authentication;

    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Start::parse(body)
    }

    fn body_len(&self) -> Result<usize, EmitError> {
        Start::body_len(self)
    }

    fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        Start::emit(self, buffer)
    }
}

/// The authentication REPLY body (RFC 8907 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply<'a> {
    /// status.
    pub status: Status,
    /// flags.
    pub flags: ReplyFlags,
    /// server_msg (server_msg_len octets): a message for the user.
    pub server_msg: &'a [u8],
    /// data (data_len octets): for the client, not the user.
    pub data: &'a [u8],
}

/// Octets of the REPLY fixed fields: status, flags, server_msg_len (2), data_len (2)
/// (RFC 8907 §5.2).
const REPLY_FIXED_LEN: usize = 6;

impl<'a> Reply<'a> {
    /// Parses a deobfuscated REPLY body.
    pub fn parse(body: &'a [u8]) -> Result<Reply<'a>, Error> {
        let mut reader = Reader::new(body);
        // RFC 8907 §5.2: status, flags, two-octet server_msg_len and data_len.
        let &[status, flags, m0, m1, d0, d1] = reader.array::<REPLY_FIXED_LEN>(Field::Fixed)?;
        let reply = Reply {
            status: Status::from(status),
            flags: ReplyFlags::from_bits(flags),
            server_msg: reader.take(u16::from_be_bytes([m0, m1]).into(), Field::ServerMsg)?,
            data: reader.take(u16::from_be_bytes([d0, d1]).into(), Field::Data)?,
        };
        // RFC 8907 §4.5: the field lengths must add up to the body length.
        reader.finish()?;
        Ok(reply)
    }

    /// The octets [`Reply::emit`] writes; fails if a field is longer than 65535 octets.
    pub fn body_len(&self) -> Result<usize, EmitError> {
        len_u16(self.server_msg, Field::ServerMsg)?;
        len_u16(self.data, Field::Data)?;
        Ok(REPLY_FIXED_LEN + self.server_msg.len() + self.data.len())
    }

    /// Writes the body at the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        ensure_room(buffer, self.body_len()?)?;
        let mut writer = Writer::new(buffer);
        writer.u8(self.status.into())?;
        writer.u8(self.flags.bits())?;
        writer.u16(len_u16(self.server_msg, Field::ServerMsg)?)?;
        writer.u16(len_u16(self.data, Field::Data)?)?;
        writer.put(self.server_msg)?;
        writer.put(self.data)?;
        Ok(writer.written())
    }
}

impl<'a> Body<'a> for Reply<'a> {
    const PACKET_TYPE: PacketType = PacketType::Authentication;

    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Reply::parse(body)
    }

    fn body_len(&self) -> Result<usize, EmitError> {
        Reply::body_len(self)
    }

    fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        Reply::emit(self, buffer)
    }
}

/// The authentication CONTINUE body (RFC 8907 §5.3).
///
/// `Debug` leaves `user_msg` and `data` out: they carry what the user typed, passwords
/// included.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Continue<'a> {
    /// flags.
    pub flags: ContinueFlags,
    /// user_msg (user_msg_len octets): what the user typed in answer to server_msg.
    pub user_msg: &'a [u8],
    /// data (data_len octets): with ABORT, why the client aborts (RFC 8907 §5.4.3).
    pub data: &'a [u8],
}

/// Octets of the CONTINUE fixed fields: user_msg_len (2), data_len (2), flags (RFC 8907 §5.3).
const CONTINUE_FIXED_LEN: usize = 5;

impl<'a> Continue<'a> {
    /// Parses a deobfuscated CONTINUE body.
    pub fn parse(body: &'a [u8]) -> Result<Continue<'a>, Error> {
        let mut reader = Reader::new(body);
        // RFC 8907 §5.3: two-octet user_msg_len and data_len, then flags.
        let &[u0, u1, d0, d1, flags] = reader.array::<CONTINUE_FIXED_LEN>(Field::Fixed)?;
        let cont = Continue {
            flags: ContinueFlags::from_bits(flags),
            user_msg: reader.take(u16::from_be_bytes([u0, u1]).into(), Field::UserMsg)?,
            data: reader.take(u16::from_be_bytes([d0, d1]).into(), Field::Data)?,
        };
        // RFC 8907 §4.5: the field lengths must add up to the body length.
        reader.finish()?;
        Ok(cont)
    }

    /// The octets [`Continue::emit`] writes; fails if a field is longer than 65535 octets.
    pub fn body_len(&self) -> Result<usize, EmitError> {
        len_u16(self.user_msg, Field::UserMsg)?;
        len_u16(self.data, Field::Data)?;
        Ok(CONTINUE_FIXED_LEN + self.user_msg.len() + self.data.len())
    }

    /// Writes the body at the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        ensure_room(buffer, self.body_len()?)?;
        let mut writer = Writer::new(buffer);
        writer.u16(len_u16(self.user_msg, Field::UserMsg)?)?;
        writer.u16(len_u16(self.data, Field::Data)?)?;
        writer.u8(self.flags.bits())?;
        writer.put(self.user_msg)?;
        writer.put(self.data)?;
        Ok(writer.written())
    }
}

impl fmt::Debug for Continue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Continue")
            .field("flags", &self.flags)
            .field("user_msg_len", &self.user_msg.len())
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl<'a> Body<'a> for Continue<'a> {
    const PACKET_TYPE: PacketType = PacketType::Authentication;

    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Continue::parse(body)
    }

    fn body_len(&self) -> Result<usize, EmitError> {
        Continue::body_len(self)
    }

    fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        Continue::emit(self, buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAP login START: user "alice", port "tty1", rem_addr "192.0.2.7", data "s3cret".
    static START_BYTES: [u8; 32] = [
        0x01, 0x01, 0x02, 0x01, 0x05, 0x04, 0x09, 0x06, // action .. data_len
        b'a', b'l', b'i', b'c', b'e', // user
        b't', b't', b'y', b'1', // port
        b'1', b'9', b'2', b'.', b'0', b'.', b'2', b'.', b'7', // rem_addr
        b's', b'3', b'c', b'r', b'e', b't', // data
    ];

    fn start() -> Start<'static> {
        Start {
            action: Action::Login,
            priv_lvl: 1,
            authen_type: AuthenType::Pap,
            authen_service: AuthenService::Login,
            user: b"alice",
            port: b"tty1",
            rem_addr: b"192.0.2.7",
            data: b"s3cret",
        }
    }

    /// A GETPASS REPLY with NOECHO, server_msg "Password: ", empty data.
    static REPLY_BYTES: [u8; 16] = [
        0x05, 0x01, 0x00, 0x0a, 0x00, 0x00, // status, flags, server_msg_len, data_len
        b'P', b'a', b's', b's', b'w', b'o', b'r', b'd', b':', b' ',
    ];

    fn reply() -> Reply<'static> {
        Reply {
            status: Status::GetPass,
            flags: ReplyFlags::NO_ECHO,
            server_msg: b"Password: ",
            data: b"",
        }
    }

    /// A CONTINUE carrying user_msg "hunter2" and data "x".
    static CONTINUE_BYTES: [u8; 13] = [
        0x00, 0x07, 0x00, 0x01, 0x00, // user_msg_len, data_len, flags
        b'h', b'u', b'n', b't', b'e', b'r', b'2', b'x',
    ];

    fn cont() -> Continue<'static> {
        Continue {
            flags: ContinueFlags::empty(),
            user_msg: b"hunter2",
            data: b"x",
        }
    }

    #[test]
    fn test_start_parse() {
        assert_eq!(Start::parse(&START_BYTES), Ok(start()));
    }

    #[test]
    fn test_start_emit() {
        let mut buf = [0xa5u8; 40];
        assert_eq!(start().body_len(), Ok(32));
        assert_eq!(start().emit(&mut buf), Ok(32));
        assert_eq!(&buf[..32], &START_BYTES);
        assert!(buf[32..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn test_reply_parse_and_emit() {
        assert_eq!(Reply::parse(&REPLY_BYTES), Ok(reply()));
        let mut buf = [0xa5u8; 20];
        assert_eq!(reply().emit(&mut buf), Ok(16));
        assert_eq!(&buf[..16], &REPLY_BYTES);
        assert_eq!(&buf[16..], &[0xa5; 4]);
    }

    #[test]
    fn test_continue_parse_and_emit() {
        assert_eq!(Continue::parse(&CONTINUE_BYTES), Ok(cont()));
        let mut buf = [0xa5u8; 14];
        assert_eq!(cont().emit(&mut buf), Ok(13));
        assert_eq!(&buf[..13], &CONTINUE_BYTES);
        assert_eq!(buf[13], 0xa5);
    }

    #[test]
    fn abort_flag_and_reason() {
        let abort = Continue {
            flags: ContinueFlags::ABORT,
            user_msg: b"",
            data: b"user hung up",
        };
        let mut buf = [0u8; 32];
        let len = abort.emit(&mut buf).unwrap();
        let parsed = Continue::parse(&buf[..len]).unwrap();
        assert!(parsed.flags.contains(ContinueFlags::ABORT));
        assert_eq!(parsed, abort);
    }

    #[test]
    fn empty_fields_round_trip() {
        let start = Start {
            action: Action::Login,
            priv_lvl: 0,
            authen_type: AuthenType::Ascii,
            authen_service: AuthenService::Login,
            user: b"",
            port: b"",
            rem_addr: b"",
            data: b"",
        };
        let mut buf = [0u8; 8];
        assert_eq!(start.emit(&mut buf), Ok(8));
        assert_eq!(buf, [0x01, 0x00, 0x01, 0x01, 0, 0, 0, 0]);
        assert_eq!(Start::parse(&buf), Ok(start));
    }

    #[test]
    fn unknown_values_re_encode_byte_for_byte() {
        let mut bytes = START_BYTES;
        bytes[0] = 0x03; // no such action
        bytes[2] = 0x04; // ARAP, removed by RFC 8907
        bytes[3] = 0x0a;
        let parsed = Start::parse(&bytes).unwrap();
        assert_eq!(parsed.action, Action::Unknown(0x03));
        assert_eq!(parsed.authen_type, AuthenType::Unknown(0x04));
        assert_eq!(parsed.authen_service, AuthenService::Unknown(0x0a));
        let mut out = [0u8; 32];
        parsed.emit(&mut out).unwrap();
        assert_eq!(out, bytes);

        let mut bytes = REPLY_BYTES;
        bytes[0] = 0x08;
        bytes[1] = 0xfe;
        let parsed = Reply::parse(&bytes).unwrap();
        assert_eq!(parsed.status, Status::Unknown(0x08));
        assert!(!parsed.flags.contains(ReplyFlags::NO_ECHO));
        let mut out = [0u8; 16];
        parsed.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn status_values() {
        for (octet, status) in [
            (0x01, Status::Pass),
            (0x02, Status::Fail),
            (0x03, Status::GetData),
            (0x04, Status::GetUser),
            (0x05, Status::GetPass),
            (0x06, Status::Restart),
            (0x07, Status::Error),
            (0x21, Status::Follow),
            (0x00, Status::Unknown(0x00)),
        ] {
            assert_eq!(Status::from(octet), status);
            assert_eq!(u8::from(status), octet);
        }
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(Action::from(v)), v);
            assert_eq!(u8::from(Status::from(v)), v);
        }
    }

    #[test]
    fn test_impossible_len() {
        // Each length field in turn claims more octets than the body has left.
        for (at, field) in [
            (4, Field::User),
            (5, Field::Port),
            (6, Field::RemAddr),
            (7, Field::Data),
        ] {
            let mut bytes = START_BYTES;
            bytes[at] = 0xff;
            assert_eq!(
                Start::parse(&bytes),
                Err(Error::Overrun(field)),
                "{field:?}"
            );
        }
        // The body is one octet short of what the lengths add up to.
        assert_eq!(
            Start::parse(&START_BYTES[..31]),
            Err(Error::Overrun(Field::Data))
        );
        assert_eq!(
            Start::parse(&START_BYTES[..7]),
            Err(Error::Overrun(Field::Fixed))
        );
        let mut long = [0u8; 33];
        long[..32].copy_from_slice(&START_BYTES);
        assert_eq!(Start::parse(&long), Err(Error::TrailingOctets { extra: 1 }));

        let mut bytes = REPLY_BYTES;
        bytes[3] = 0x0b;
        assert_eq!(Reply::parse(&bytes), Err(Error::Overrun(Field::ServerMsg)));
        let mut bytes = REPLY_BYTES;
        bytes[5] = 0x01;
        assert_eq!(Reply::parse(&bytes), Err(Error::Overrun(Field::Data)));
        bytes[2] = 0xff;
        assert_eq!(Reply::parse(&bytes), Err(Error::Overrun(Field::ServerMsg)));
        assert_eq!(
            Reply::parse(&REPLY_BYTES[..5]),
            Err(Error::Overrun(Field::Fixed))
        );
        assert_eq!(Reply::parse(&[]), Err(Error::Overrun(Field::Fixed)));

        let mut bytes = CONTINUE_BYTES;
        bytes[1] = 0x09;
        assert_eq!(Continue::parse(&bytes), Err(Error::Overrun(Field::UserMsg)));
        let mut bytes = CONTINUE_BYTES;
        bytes[3] = 0x02;
        assert_eq!(Continue::parse(&bytes), Err(Error::Overrun(Field::Data)));
        let mut bytes = CONTINUE_BYTES;
        bytes[3] = 0x00;
        assert_eq!(
            Continue::parse(&bytes),
            Err(Error::TrailingOctets { extra: 1 })
        );
        assert_eq!(
            Continue::parse(&CONTINUE_BYTES[..4]),
            Err(Error::Overrun(Field::Fixed))
        );
    }

    #[test]
    fn emit_refuses_oversized_fields_and_small_buffers() {
        let long = [b'u'; 256];
        let too_long = Start {
            user: &long,
            ..start()
        };
        assert_eq!(
            too_long.emit(&mut [0u8; 512]),
            Err(EmitError::FieldTooLong(Field::User))
        );
        let too_long = Start {
            data: &long,
            ..start()
        };
        assert_eq!(
            too_long.body_len(),
            Err(EmitError::FieldTooLong(Field::Data))
        );
        let fits = Start {
            user: &long[..255],
            ..start()
        };
        assert_eq!(fits.body_len(), Ok(8 + 255 + 4 + 9 + 6));

        let huge = [0u8; 65536];
        let huge_msg = Reply {
            server_msg: &huge,
            ..reply()
        };
        assert_eq!(
            huge_msg.body_len(),
            Err(EmitError::FieldTooLong(Field::ServerMsg))
        );
        let huge_data = Continue {
            data: &huge,
            ..cont()
        };
        assert_eq!(
            huge_data.body_len(),
            Err(EmitError::FieldTooLong(Field::Data))
        );

        assert_eq!(
            start().emit(&mut [0xa5u8; 31]),
            Err(EmitError::BufferTooSmall {
                needed: 32,
                available: 31,
            })
        );
        let mut buf = [0xa5u8; 15];
        assert_eq!(
            reply().emit(&mut buf),
            Err(EmitError::BufferTooSmall {
                needed: 16,
                available: 15,
            })
        );
        assert_eq!(buf, [0xa5; 15], "nothing written on failure");
    }

    #[test]
    fn debug_hides_secrets() {
        let start = std::format!("{:?}", start());
        assert!(start.contains("alice"));
        assert!(!start.contains("s3cret"));
        let cont = std::format!("{:?}", cont());
        assert!(!cont.contains("hunter2"));
    }
}
