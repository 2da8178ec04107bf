//! Authorization bodies: REQUEST and RESPONSE (RFC 8907 §6).
//!
//! An authorization session is one REQUEST from the client (seq_no 1) and one RESPONSE from
//! the server (seq_no 2) (RFC 8907 §3.5). RFC 8907 §6.2 calls the server's body the REPLY.

use super::{
    Args, AuthenMethod, AuthenService, AuthenType, Body, EmitError, Error, Field, PacketType,
    codec::{Reader, Writer, ensure_room, len_u8, len_u16},
};

wire_enum! {
    /// status: the authorization result (RFC 8907 §6.2).
    pub enum Status {
        /// TAC_PLUS_AUTHOR_STATUS_PASS_ADD (0x01): authorized; add the returned arguments to
        /// the requested ones.
        PassAdd = 0x01,
        /// TAC_PLUS_AUTHOR_STATUS_PASS_REPL (0x02): authorized; the returned arguments replace
        /// the requested ones.
        PassRepl = 0x02,
        /// TAC_PLUS_AUTHOR_STATUS_FAIL (0x10).
        Fail = 0x10,
        /// TAC_PLUS_AUTHOR_STATUS_ERROR (0x11).
        Error = 0x11,
        /// TAC_PLUS_AUTHOR_STATUS_FOLLOW (0x21), deprecated: treat as FAIL.
        Follow = 0x21,
    }
}

/// The authorization REQUEST body (RFC 8907 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// authen_method: how the user was authenticated.
    pub authen_method: AuthenMethod,
    /// priv_lvl (RFC 8907 §9).
    pub priv_lvl: u8,
    /// authen_type.
    pub authen_type: AuthenType,
    /// authen_service.
    pub authen_service: AuthenService,
    /// user (user_len octets).
    pub user: &'a [u8],
    /// port (port_len octets).
    pub port: &'a [u8],
    /// rem_addr (rem_addr_len octets).
    pub rem_addr: &'a [u8],
    /// arg_1 .. arg_N (arg_cnt arguments).
    pub args: Args<'a>,
}

/// Octets of the REQUEST fixed fields: authen_method, priv_lvl, authen_type, authen_service,
/// user_len, port_len, rem_addr_len, arg_cnt (RFC 8907 §6.1).
const REQUEST_FIXED_LEN: usize = 8;

impl<'a> Request<'a> {
    /// Parses a deobfuscated REQUEST body.
    pub fn parse(body: &'a [u8]) -> Result<Request<'a>, Error> {
        let mut reader = Reader::new(body);
        // RFC 8907 §6.1: eight one-octet fields, arg_cnt argument lengths, then user, port,
        // rem_addr and the arguments.
        let &[
            authen_method,
            priv_lvl,
            authen_type,
            authen_service,
            user_len,
            port_len,
            rem_addr_len,
            arg_cnt,
        ] = reader.array::<REQUEST_FIXED_LEN>(Field::Fixed)?;
        let lens = reader.take(arg_cnt.into(), Field::ArgLengths)?;
        let user = reader.take(user_len.into(), Field::User)?;
        let port = reader.take(port_len.into(), Field::Port)?;
        let rem_addr = reader.take(rem_addr_len.into(), Field::RemAddr)?;
        let args = Args::parse(lens, &mut reader)?;
        // RFC 8907 §4.5: the field lengths must add up to the body length.
        reader.finish()?;
        Ok(Request {
            authen_method: AuthenMethod::from(authen_method),
            priv_lvl,
            authen_type: AuthenType::from(authen_type),
            authen_service: AuthenService::from(authen_service),
            user,
            port,
            rem_addr,
            args,
        })
    }

    /// The octets [`Request::emit`] writes; fails if a field or an argument is longer than 255
    /// octets, there are more than 255 arguments or a name holds a separator.
    pub fn body_len(&self) -> Result<usize, EmitError> {
        self.lens()?;
        let (count, values_len) = self.args.check()?;
        Ok(REQUEST_FIXED_LEN
            + usize::from(count)
            + self.user.len()
            + self.port.len()
            + self.rem_addr.len()
            + values_len)
    }

    fn lens(&self) -> Result<[u8; 3], EmitError> {
        Ok([
            len_u8(self.user, Field::User)?,
            len_u8(self.port, Field::Port)?,
            len_u8(self.rem_addr, Field::RemAddr)?,
        ])
    }

    /// Writes the body at the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        let [user_len, port_len, rem_addr_len] = self.lens()?;
        let (arg_cnt, _) = self.args.check()?;
        ensure_room(buffer, self.body_len()?)?;
        let mut writer = Writer::new(buffer);
        writer.put(&[
            self.authen_method.into(),
            self.priv_lvl,
            self.authen_type.into(),
            self.authen_service.into(),
            user_len,
            port_len,
            rem_addr_len,
            arg_cnt,
        ])?;
        self.args.emit_lens(&mut writer)?;
        writer.put(self.user)?;
        writer.put(self.port)?;
        writer.put(self.rem_addr)?;
        self.args.emit_values(&mut writer)?;
        Ok(writer.written())
    }
}

impl<'a> Body<'a> for Request<'a> {
    const PACKET_TYPE: PacketType = PacketType::Authorization;

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

/// The authorization RESPONSE body, RFC 8907 §6.2's REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// status.
    pub status: Status,
    /// arg_1 .. arg_N (arg_cnt arguments).
    pub args: Args<'a>,
    /// server_msg (server_msg_len octets): a message for the user.
    pub server_msg: &'a [u8],
    /// data (data_len octets): a message for the administrator's log.
    pub data: &'a [u8],
}

/// Octets of the RESPONSE fixed fields: status, arg_cnt, server_msg_len (2), data_len (2)
/// (RFC 8907 §6.2).
const RESPONSE_FIXED_LEN: usize = 6;

impl<'a> Response<'a> {
    /// Parses a deobfuscated RESPONSE body.
    pub fn parse(body: &'a [u8]) -> Result<Response<'a>, Error> {
        let mut reader = Reader::new(body);
        // RFC 8907 §6.2: status, arg_cnt, two-octet server_msg_len and data_len, arg_cnt
        // argument lengths, then server_msg, data and the arguments.
        let &[status, arg_cnt, m0, m1, d0, d1] =
            reader.array::<RESPONSE_FIXED_LEN>(Field::Fixed)?;
        let lens = reader.take(arg_cnt.into(), Field::ArgLengths)?;
        let server_msg = reader.take(u16::from_be_bytes([m0, m1]).into(), Field::ServerMsg)?;
        let data = reader.take(u16::from_be_bytes([d0, d1]).into(), Field::Data)?;
        let args = Args::parse(lens, &mut reader)?;
        // RFC 8907 §4.5: the field lengths must add up to the body length.
        reader.finish()?;
        Ok(Response {
            status: Status::from(status),
            args,
            server_msg,
            data,
        })
    }

    /// The octets [`Response::emit`] writes; fails if server_msg or data is longer than 65535
    /// octets, an argument longer than 255, there are more than 255 arguments or a name holds
    /// a separator.
    pub fn body_len(&self) -> Result<usize, EmitError> {
        len_u16(self.server_msg, Field::ServerMsg)?;
        len_u16(self.data, Field::Data)?;
        let (count, values_len) = self.args.check()?;
        Ok(RESPONSE_FIXED_LEN
            + usize::from(count)
            + self.server_msg.len()
            + self.data.len()
            + values_len)
    }

    /// Writes the body at the start of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        ensure_room(buffer, self.body_len()?)?;
        let (arg_cnt, _) = self.args.check()?;
        let mut writer = Writer::new(buffer);
        writer.u8(self.status.into())?;
        writer.u8(arg_cnt)?;
        writer.u16(len_u16(self.server_msg, Field::ServerMsg)?)?;
        writer.u16(len_u16(self.data, Field::Data)?)?;
        self.args.emit_lens(&mut writer)?;
        writer.put(self.server_msg)?;
        writer.put(self.data)?;
        self.args.emit_values(&mut writer)?;
        Ok(writer.written())
    }
}

impl<'a> Body<'a> for Response<'a> {
    const PACKET_TYPE: PacketType = PacketType::Authorization;

    fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Response::parse(body)
    }

    fn body_len(&self) -> Result<usize, EmitError> {
        Response::body_len(self)
    }

    fn emit(&self, buffer: &mut [u8]) -> Result<usize, EmitError> {
        Response::emit(self, buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tacacs::Arg;

    /// A REQUEST for user "bob" on port "ssh" from "2001:db8::1", method TACACSPLUS,
    /// priv_lvl 1, type ASCII, service LOGIN, args "service=shell" and "cmd*".
    static REQUEST_BYTES: [u8; 44] = [
        0x06, 0x01, 0x01, 0x01, 0x03, 0x03, 0x0b, 0x02, // fixed fields
        0x0d, 0x04, // arg_1_len, arg_2_len
        b'b', b'o', b'b', // user
        b's', b's', b'h', // port
        b'2', b'0', b'0', b'1', b':', b'd', b'b', b'8', b':', b':', b'1', // rem_addr
        b's', b'e', b'r', b'v', b'i', b'c', b'e', b'=', b's', b'h', b'e', b'l', b'l', // arg_1
        b'c', b'm', b'd', b'*', // arg_2
    ];

    static REQUEST_ARGS: [Arg<'static>; 2] = [
        Arg::mandatory(b"service", b"shell"),
        Arg::optional(b"cmd", b""),
    ];

    fn request() -> Request<'static> {
        Request {
            authen_method: AuthenMethod::TacacsPlus,
            priv_lvl: 1,
            authen_type: AuthenType::Ascii,
            authen_service: AuthenService::Login,
            user: b"bob",
            port: b"ssh",
            rem_addr: b"2001:db8::1",
            args: Args::new(&REQUEST_ARGS),
        }
    }

    /// A PASS_ADD RESPONSE with server_msg "hi", data "log", args "priv-lvl=15" and
    /// "role*admin".
    static RESPONSE_BYTES: [u8; 34] = [
        0x01, 0x02, 0x00, 0x02, 0x00, 0x03, // status, arg_cnt, server_msg_len, data_len
        0x0b, 0x0a, // arg_1_len, arg_2_len
        b'h', b'i', // server_msg
        b'l', b'o', b'g', // data
        b'p', b'r', b'i', b'v', b'-', b'l', b'v', b'l', b'=', b'1', b'5', // arg_1
        b'r', b'o', b'l', b'e', b'*', b'a', b'd', b'm', b'i', b'n', // arg_2
    ];

    static RESPONSE_ARGS: [Arg<'static>; 2] = [
        Arg::mandatory(b"priv-lvl", b"15"),
        Arg::optional(b"role", b"admin"),
    ];

    fn response() -> Response<'static> {
        Response {
            status: Status::PassAdd,
            args: Args::new(&RESPONSE_ARGS),
            server_msg: b"hi",
            data: b"log",
        }
    }

    #[test]
    fn test_request_parse() {
        let parsed = Request::parse(&REQUEST_BYTES).unwrap();
        assert_eq!(parsed, request());
        let args: std::vec::Vec<_> = parsed.args.iter().collect();
        assert_eq!(args, REQUEST_ARGS);
    }

    #[test]
    fn test_request_emit() {
        let mut buf = [0xa5u8; 48];
        assert_eq!(request().body_len(), Ok(44));
        assert_eq!(request().emit(&mut buf), Ok(44));
        assert_eq!(&buf[..44], &REQUEST_BYTES);
        assert_eq!(&buf[44..], &[0xa5; 4]);
    }

    #[test]
    fn test_response_parse() {
        let parsed = Response::parse(&RESPONSE_BYTES).unwrap();
        assert_eq!(parsed, response());
        assert_eq!(
            parsed.args.find(b"role").map(|a| a.value()),
            Some(&b"admin"[..])
        );
    }

    #[test]
    fn test_response_emit() {
        let mut buf = [0xa5u8; 36];
        assert_eq!(response().emit(&mut buf), Ok(34));
        assert_eq!(&buf[..34], &RESPONSE_BYTES);
        assert_eq!(&buf[34..], &[0xa5; 2]);
    }

    #[test]
    fn parsed_bodies_re_encode_byte_for_byte() {
        let parsed = Request::parse(&REQUEST_BYTES).unwrap();
        let mut out = [0u8; 44];
        assert_eq!(parsed.emit(&mut out), Ok(44));
        assert_eq!(out, REQUEST_BYTES);

        let mut bytes = RESPONSE_BYTES;
        bytes[0] = 0x12;
        let parsed = Response::parse(&bytes).unwrap();
        assert_eq!(parsed.status, Status::Unknown(0x12));
        let mut out = [0u8; 34];
        assert_eq!(parsed.emit(&mut out), Ok(34));
        assert_eq!(out, bytes);
    }

    #[test]
    fn no_args() {
        let response = Response {
            status: Status::Fail,
            args: Args::empty(),
            server_msg: b"",
            data: b"",
        };
        let mut buf = [0xa5u8; 7];
        assert_eq!(response.emit(&mut buf), Ok(6));
        assert_eq!(buf, [0x10, 0, 0, 0, 0, 0, 0xa5]);
        assert_eq!(Response::parse(&buf[..6]), Ok(response));
    }

    #[test]
    fn status_values() {
        for (octet, status) in [
            (0x01, Status::PassAdd),
            (0x02, Status::PassRepl),
            (0x10, Status::Fail),
            (0x11, Status::Error),
            (0x21, Status::Follow),
            (0x03, Status::Unknown(0x03)),
        ] {
            assert_eq!(Status::from(octet), status);
            assert_eq!(u8::from(status), octet);
        }
    }

    #[test]
    fn test_impossible_len() {
        // arg_cnt claims more argument lengths than the body holds.
        let mut bytes = REQUEST_BYTES;
        bytes[7] = 0xff;
        assert_eq!(
            Request::parse(&bytes),
            Err(Error::Overrun(Field::ArgLengths))
        );
        // arg_cnt of 3: the first user octet is read as a third length, every later field
        // shifts by one, and the second argument runs past the end.
        let mut bytes = REQUEST_BYTES;
        bytes[7] = 0x03;
        assert_eq!(Request::parse(&bytes), Err(Error::Overrun(Field::Arg(1))));
        for (at, field) in [(4, Field::User), (5, Field::Port), (6, Field::RemAddr)] {
            let mut bytes = REQUEST_BYTES;
            bytes[at] = 0xff;
            assert_eq!(Request::parse(&bytes), Err(Error::Overrun(field)));
        }
        let mut bytes = REQUEST_BYTES;
        bytes[9] = 0x05;
        assert_eq!(Request::parse(&bytes), Err(Error::Overrun(Field::Arg(1))));
        let mut long = [0u8; 45];
        long[..44].copy_from_slice(&REQUEST_BYTES);
        assert_eq!(
            Request::parse(&long),
            Err(Error::TrailingOctets { extra: 1 })
        );
        assert_eq!(
            Request::parse(&REQUEST_BYTES[..7]),
            Err(Error::Overrun(Field::Fixed))
        );

        let mut bytes = RESPONSE_BYTES;
        bytes[1] = 0x1d;
        assert_eq!(
            Response::parse(&bytes),
            Err(Error::Overrun(Field::ArgLengths))
        );
        let mut bytes = RESPONSE_BYTES;
        bytes[3] = 0xff;
        assert_eq!(
            Response::parse(&bytes),
            Err(Error::Overrun(Field::ServerMsg))
        );
        let mut bytes = RESPONSE_BYTES;
        bytes[5] = 0xff;
        assert_eq!(Response::parse(&bytes), Err(Error::Overrun(Field::Data)));
        let mut bytes = RESPONSE_BYTES;
        bytes[6] = 0x0c;
        assert_eq!(Response::parse(&bytes), Err(Error::Overrun(Field::Arg(1))));
        assert_eq!(
            Response::parse(&RESPONSE_BYTES[..33]),
            Err(Error::Overrun(Field::Arg(1)))
        );
    }

    #[test]
    fn args_without_separator_are_refused() {
        let mut bytes = RESPONSE_BYTES;
        bytes[28] = b'-'; // "role*admin" becomes "role-admin"
        assert_eq!(Response::parse(&bytes), Err(Error::ArgSeparator(1)));
        let mut bytes = REQUEST_BYTES;
        bytes[34] = b'-'; // "service=shell" becomes "service-shell"
        assert_eq!(Request::parse(&bytes), Err(Error::ArgSeparator(0)));
    }

    #[test]
    fn emit_refuses_what_cannot_be_encoded() {
        let long = [b'a'; 256];
        let long_addr = Request {
            rem_addr: &long,
            ..request()
        };
        assert_eq!(
            long_addr.body_len(),
            Err(EmitError::FieldTooLong(Field::RemAddr))
        );
        let bad = [Arg::mandatory(b"ok", b"1"), Arg::mandatory(b"a*b", b"1")];
        let bad_name = Request {
            args: Args::new(&bad),
            ..request()
        };
        assert_eq!(bad_name.emit(&mut [0u8; 128]), Err(EmitError::ArgName(1)));
        let many = [Arg::mandatory(b"a", b""); 256];
        let too_many = Response {
            args: Args::new(&many),
            ..response()
        };
        assert_eq!(
            too_many.emit(&mut [0u8; 1024]),
            Err(EmitError::FieldTooLong(Field::ArgCount))
        );
        assert_eq!(
            response().emit(&mut [0u8; 33]),
            Err(EmitError::BufferTooSmall {
                needed: 34,
                available: 33,
            })
        );
    }
}
