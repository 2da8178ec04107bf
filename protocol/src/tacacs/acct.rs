//! Accounting bodies: REQUEST and REPLY (RFC 8907 §7).
//!
//! An accounting session is one REQUEST from the client (seq_no 1) and one REPLY from the
//! server (seq_no 2) (RFC 8907 §3.5).

use super::{
    Body, EmitError, Error, Field, PacketType, author,
    codec::{Reader, Writer, ensure_room, len_u16},
};

wire_flags! {
    /// flags of an accounting REQUEST (RFC 8907 §7.1). [`Flags::record`] names the valid
    /// combinations.
    pub struct Flags {
        /// TAC_PLUS_ACCT_FLAG_START (0x02).
        const START = 0x02;
        /// TAC_PLUS_ACCT_FLAG_STOP (0x04).
        const STOP = 0x04;
        /// TAC_PLUS_ACCT_FLAG_WATCHDOG (0x08).
        const WATCHDOG = 0x08;
    }
}

/// The kind of accounting record, from the valid flag combinations of RFC 8907 §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Record {
    /// START: a task starts.
    Start,
    /// STOP: a task ended.
    Stop,
    /// WATCHDOG alone: the task is still running, nothing new.
    Watchdog,
    /// WATCHDOG and START: the task is still running, with updated arguments.
    WatchdogUpdate,
}

impl Flags {
    /// The record kind, or `None` for a combination RFC 8907 §7.1 calls invalid (none set,
    /// STOP with another flag). Bits other than START, STOP and WATCHDOG are ignored.
    pub const fn record(self) -> Option<Record> {
        match self.0 & (Flags::START.0 | Flags::STOP.0 | Flags::WATCHDOG.0) {
            0x02 => Some(Record::Start),
            0x04 => Some(Record::Stop),
            0x08 => Some(Record::Watchdog),
            0x0a => Some(Record::WatchdogUpdate),
            _ => None,
        }
    }
}

impl From<Record> for Flags {
    fn from(record: Record) -> Flags {
        match record {
            Record::Start => Flags::START,
            Record::Stop => Flags::STOP,
            Record::Watchdog => Flags::WATCHDOG,
            Record::WatchdogUpdate => Flags::WATCHDOG | Flags::START,
        }
    }
}

wire_enum! {
    /// status of an accounting REPLY (RFC 8907 §7.2).
    pub enum Status {
        /// TAC_PLUS_ACCT_STATUS_SUCCESS (0x01).
        Success = 0x01,
        /// TAC_PLUS_ACCT_STATUS_ERROR (0x02).
        Error = 0x02,
        /// TAC_PLUS_ACCT_STATUS_FOLLOW (0x21), deprecated.
        Follow = 0x21,
    }
}

/// The accounting REQUEST body (RFC 8907 §7.1): a flags octet, then exactly the fields of an
/// authorization REQUEST (§6.1), which §7.1 repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// flags.
    pub flags: Flags,
    /// authen_method, priv_lvl, authen_type, authen_service, user, port, rem_addr and the
    /// arguments, laid out as in an authorization REQUEST.
    pub fields: author::Request<'a>,
}

impl<'a> Request<'a> {
    /// Parses a deobfuscated REQUEST body.
    pub fn parse(body: &'a [u8]) -> Result<Request<'a>, Error> {
        // RFC 8907 §7.1: flags, then the authorization REQUEST layout of §6.1.
        let Some((&flags, rest)) = body.split_first() else {
            return Err(Error::Overrun(Field::Fixed));
        };
        let fields = author::Request::parse(rest)?;
        Ok(Request {
            flags: Flags::from_bits(flags),
            fields,
        })
    }

    /// The octets [`Request::emit`] writes; fails if a field or an argument is longer than 255
    /// octets, there are more than 255 arguments or a name holds a separator.
    pub fn body_len(&self) -> Result<usize, EmitError> {
        Ok(1 + self.fields.body_len()?)
    }

    /// Writes the body at the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        let needed = self.body_len()?;
        ensure_room(buffer, needed)?;
        let Some((flags, rest)) = buffer.split_first_mut() else {
            return Err(EmitError::BufferTooSmall {
                needed,
                available: 0,
            });
        };
        *flags = self.flags.bits();
        Ok(1 + self.fields.emit(rest)?)
    }
}

impl<'a> Body<'a> for Request<'a> {
    const PACKET_TYPE: PacketType = PacketType::Accounting;

    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Request::parse(body)
    }

    fn body_len(&self) -> Result<usize, EmitError> {
        Request::body_len(self)
    }

    fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        Request::emit(self, buffer)
    }
}

/// The accounting REPLY body (RFC 8907 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply<'a> {
    /// status.
    pub status: Status,
    /// server_msg (server_msg_len octets): a message for the user.
    pub server_msg: &'a [u8],
    /// data (data_len octets): a message for the administrator's log.
    pub data: &'a [u8],
}

/// Octets of the REPLY fixed fields: server_msg_len (2), data_len (2), status (RFC 8907 §7.2).
const REPLY_FIXED_LEN: usize = 5;

impl<'a> Reply<'a> {
    /// Parses a deobfuscated REPLY body.
    pub fn parse(body: &'a [u8]) -> Result<Reply<'a>, Error> {
        let mut reader = Reader::new(body);
        // RFC 8907 §7.2: two-octet server_msg_len and data_len, status, server_msg, data.
        let &[m0, m1, d0, d1, status] = reader.array::<REPLY_FIXED_LEN>(Field::Fixed)?;
        let reply = Reply {
            status: Status::from(status),
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
        writer.u16(len_u16(self.server_msg, Field::ServerMsg)?)?;
        writer.u16(len_u16(self.data, Field::Data)?)?;
        writer.u8(self.status.into())?;
        writer.put(self.server_msg)?;
        writer.put(self.data)?;
        Ok(writer.written())
    }
}

impl<'a> Body<'a> for Reply<'a> {
    const PACKET_TYPE: PacketType = PacketType::Accounting;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tacacs::{Arg, Args, AuthenMethod, AuthenService, AuthenType};

    /// A STOP record for "carol" on "vty0" from "198.51.100.9", method TACACSPLUS, priv_lvl
    /// 15, type ASCII, service LOGIN, args "task_id=7" and "elapsed_time=42".
    static REQUEST_BYTES: [u8; 56] = [
        0x04, 0x06, 0x0f, 0x01, 0x01, 0x05, 0x04, 0x0c, 0x02, // fixed fields
        0x09, 0x0f, // arg_1_len, arg_2_len
        b'c', b'a', b'r', b'o', b'l', // user
        b'v', b't', b'y', b'0', // port
        b'1', b'9', b'8', b'.', b'5', b'1', b'.', b'1', b'0', b'0', b'.', b'9', // rem_addr
        b't', b'a', b's', b'k', b'_', b'i', b'd', b'=', b'7', // arg_1
        b'e', b'l', b'a', b'p', b's', b'e', b'd', b'_', b't', b'i', b'm', b'e', b'=', b'4',
        b'2', // arg_2
    ];

    static REQUEST_ARGS: [Arg<'static>; 2] = [
        Arg::mandatory(b"task_id", b"7"),
        Arg::mandatory(b"elapsed_time", b"42"),
    ];

    fn request() -> Request<'static> {
        Request {
            flags: Flags::STOP,
            fields: author::Request {
                authen_method: AuthenMethod::TacacsPlus,
                priv_lvl: 15,
                authen_type: AuthenType::Ascii,
                authen_service: AuthenService::Login,
                user: b"carol",
                port: b"vty0",
                rem_addr: b"198.51.100.9",
                args: Args::new(&REQUEST_ARGS),
            },
        }
    }

    /// A SUCCESS REPLY with server_msg "ok" and data "logged".
    static REPLY_BYTES: [u8; 13] = [
        0x00, 0x02, 0x00, 0x06, 0x01, // server_msg_len, data_len, status
        b'o', b'k', b'l', b'o', b'g', b'g', b'e', b'd',
    ];

    fn reply() -> Reply<'static> {
        Reply {
            status: Status::Success,
            server_msg: b"ok",
            data: b"logged",
        }
    }

    #[test]
    fn test_request_parse() {
        let parsed = Request::parse(&REQUEST_BYTES).unwrap();
        assert_eq!(parsed, request());
        assert_eq!(parsed.flags.record(), Some(Record::Stop));
        assert_eq!(
            parsed.fields.args.find(b"elapsed_time").map(|a| a.value()),
            Some(&b"42"[..])
        );
    }

    #[test]
    fn test_request_emit() {
        let mut buf = [0xa5u8; 60];
        assert_eq!(request().emit(&mut buf), Ok(56));
        assert_eq!(&buf[..56], &REQUEST_BYTES);
        assert_eq!(&buf[56..], &[0xa5; 4]);
    }

    #[test]
    fn test_reply_parse_and_emit() {
        assert_eq!(Reply::parse(&REPLY_BYTES), Ok(reply()));
        let mut buf = [0xa5u8; 14];
        assert_eq!(reply().emit(&mut buf), Ok(13));
        assert_eq!(&buf[..13], &REPLY_BYTES);
        assert_eq!(buf[13], 0xa5);
    }

    #[test]
    fn record_kinds() {
        for (bits, record) in [
            (0x00, None),
            (0x02, Some(Record::Start)),
            (0x04, Some(Record::Stop)),
            (0x06, None),
            (0x08, Some(Record::Watchdog)),
            (0x0a, Some(Record::WatchdogUpdate)),
            (0x0c, None),
            (0x0e, None),
            (0x03, Some(Record::Start)), // the deprecated MORE bit is ignored
        ] {
            assert_eq!(Flags::from_bits(bits).record(), record, "{bits:#x}");
        }
        for record in [
            Record::Start,
            Record::Stop,
            Record::Watchdog,
            Record::WatchdogUpdate,
        ] {
            assert_eq!(Flags::from(record).record(), Some(record));
        }
    }

    #[test]
    fn invalid_flags_and_unknown_status_re_encode() {
        let mut bytes = REQUEST_BYTES;
        bytes[0] = 0x86;
        let parsed = Request::parse(&bytes).unwrap();
        assert_eq!(parsed.flags.record(), None);
        let mut out = [0u8; 56];
        assert_eq!(parsed.emit(&mut out), Ok(56));
        assert_eq!(out, bytes);

        let mut bytes = REPLY_BYTES;
        bytes[4] = 0x03;
        let parsed = Reply::parse(&bytes).unwrap();
        assert_eq!(parsed.status, Status::Unknown(0x03));
        let mut out = [0u8; 13];
        parsed.emit(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_impossible_len() {
        let mut bytes = REQUEST_BYTES;
        bytes[8] = 0x40;
        assert_eq!(
            Request::parse(&bytes),
            Err(Error::Overrun(Field::ArgLengths))
        );
        for (at, field) in [(5, Field::User), (6, Field::Port), (7, Field::RemAddr)] {
            let mut bytes = REQUEST_BYTES;
            bytes[at] = 0xff;
            assert_eq!(Request::parse(&bytes), Err(Error::Overrun(field)));
        }
        let mut bytes = REQUEST_BYTES;
        bytes[10] = 0x10;
        assert_eq!(Request::parse(&bytes), Err(Error::Overrun(Field::Arg(1))));
        assert_eq!(
            Request::parse(&REQUEST_BYTES[..8]),
            Err(Error::Overrun(Field::Fixed))
        );
        let mut bytes = REQUEST_BYTES;
        bytes[9] = 0x08; // "task_id=" then "7elapsed_time=4" and a trailing "2"
        assert_eq!(
            Request::parse(&bytes),
            Err(Error::TrailingOctets { extra: 1 })
        );

        let mut bytes = REPLY_BYTES;
        bytes[1] = 0x09;
        assert_eq!(Reply::parse(&bytes), Err(Error::Overrun(Field::ServerMsg)));
        let mut bytes = REPLY_BYTES;
        bytes[3] = 0x07;
        assert_eq!(Reply::parse(&bytes), Err(Error::Overrun(Field::Data)));
        let mut bytes = REPLY_BYTES;
        bytes[3] = 0x05;
        assert_eq!(
            Reply::parse(&bytes),
            Err(Error::TrailingOctets { extra: 1 })
        );
        assert_eq!(
            Reply::parse(&REPLY_BYTES[..4]),
            Err(Error::Overrun(Field::Fixed))
        );
    }

    #[test]
    fn emit_refuses_what_cannot_be_encoded() {
        let long = [b'p'; 256];
        let long_port = Request {
            fields: author::Request {
                port: &long,
                ..request().fields
            },
            ..request()
        };
        assert_eq!(
            long_port.body_len(),
            Err(EmitError::FieldTooLong(Field::Port))
        );
        let huge = [0u8; 65536];
        let huge_data = Reply {
            data: &huge,
            ..reply()
        };
        assert_eq!(
            huge_data.emit(&mut [0u8; 16]),
            Err(EmitError::FieldTooLong(Field::Data))
        );
        assert_eq!(
            request().emit(&mut [0u8; 55]),
            Err(EmitError::BufferTooSmall {
                needed: 56,
                available: 55,
            })
        );
    }
}
