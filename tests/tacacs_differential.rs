#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Differential tests of `portcullis_protocol::tacacs` against the `tacacs-plus-protocol`
//! crate, an independent implementation of RFC 8907.
//!
//! That crate is a client: it emits authentication START and CONTINUE, authorization REQUEST
//! and accounting REQUEST, and parses the three replies. So requests go theirs -> ours (and
//! ours must emit the very same octets), replies go ours -> theirs; obfuscated with a shared
//! key and, where their crate allows, in cleartext with the UNENCRYPTED flag.

use portcullis_protocol::tacacs::{
    self as ours, Arg, Args, AuthenMethod, AuthenService, AuthenType, Cleartext, Header, Packet,
    PacketType, acct, authen, author, emit_packet,
};
use tacacs_plus_protocol::{
    self as theirs, Argument, Arguments, AuthenticationContext, AuthenticationMethod,
    AuthenticationService, AuthenticationType, FieldText, HeaderInfo, MajorVersion, MinorVersion,
    PacketFlags, PrivilegeLevel, UserInformation, accounting, authentication, authorization,
};

const KEY: &[u8] = b"differential shared secret";

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// Printable ASCII (what their text fields accept), `max` characters at most.
    fn text(&mut self, max: u64) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| char::from(b' ' + self.below(95) as u8))
            .collect()
    }

    /// Printable ASCII without `=` and `*`, for argument names; never empty.
    fn name(&mut self, max: u64) -> String {
        let len = 1 + self.below(max);
        (0..len)
            .map(|_| {
                loop {
                    let c = char::from(b' ' + self.below(95) as u8);
                    if c != '=' && c != '*' {
                        break c;
                    }
                }
            })
            .collect()
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn their_header(
    minor: MinorVersion,
    seq_no: u8,
    flags: PacketFlags,
    session_id: u32,
) -> HeaderInfo {
    HeaderInfo::new(
        theirs::Version::new(MajorVersion::RFC8907, minor),
        seq_no,
        flags,
        session_id,
    )
}

fn text(s: &str) -> FieldText<'_> {
    FieldText::try_from(s).unwrap()
}

fn their_authen_type(t: AuthenType) -> AuthenticationType {
    match t {
        AuthenType::NotSet => AuthenticationType::NotSet,
        AuthenType::Ascii => AuthenticationType::Ascii,
        AuthenType::Pap => AuthenticationType::Pap,
        AuthenType::Chap => AuthenticationType::Chap,
        AuthenType::MsChap => AuthenticationType::MsChap,
        AuthenType::MsChapV2 => AuthenticationType::MsChapV2,
        other => panic!("no counterpart for {other:?}"),
    }
}

fn their_service(s: AuthenService) -> AuthenticationService {
    match s {
        AuthenService::None => AuthenticationService::None,
        AuthenService::Login => AuthenticationService::Login,
        AuthenService::Enable => AuthenticationService::Enable,
        AuthenService::Ppp => AuthenticationService::Ppp,
        AuthenService::Pt => AuthenticationService::Pt,
        AuthenService::Rcmd => AuthenticationService::RCommand,
        AuthenService::X25 => AuthenticationService::X25,
        AuthenService::Nasi => AuthenticationService::Nasi,
        AuthenService::FwProxy => AuthenticationService::FwProxy,
        other => panic!("no counterpart for {other:?}"),
    }
}

fn their_method(m: AuthenMethod) -> AuthenticationMethod {
    match m {
        AuthenMethod::NotSet => AuthenticationMethod::NotSet,
        AuthenMethod::None => AuthenticationMethod::None,
        AuthenMethod::Krb5 => AuthenticationMethod::Kerberos5,
        AuthenMethod::Line => AuthenticationMethod::Line,
        AuthenMethod::Enable => AuthenticationMethod::Enable,
        AuthenMethod::Local => AuthenticationMethod::Local,
        AuthenMethod::TacacsPlus => AuthenticationMethod::TacacsPlus,
        AuthenMethod::Guest => AuthenticationMethod::Guest,
        AuthenMethod::Radius => AuthenticationMethod::Radius,
        AuthenMethod::Krb4 => AuthenticationMethod::Kerberos4,
        AuthenMethod::Rcmd => AuthenticationMethod::RCommand,
        other => panic!("no counterpart for {other:?}"),
    }
}

fn their_action(a: authen::Action) -> authentication::Action {
    match a {
        authen::Action::Login => authentication::Action::Login,
        authen::Action::ChangePassword => authentication::Action::ChangePassword,
        authen::Action::SendAuth => authentication::Action::SendAuth,
        other => panic!("no counterpart for {other:?}"),
    }
}

const AUTHEN_TYPES: [AuthenType; 5] = [
    AuthenType::Ascii,
    AuthenType::Pap,
    AuthenType::Chap,
    AuthenType::MsChap,
    AuthenType::MsChapV2,
];
const SERVICES: [AuthenService; 9] = [
    AuthenService::None,
    AuthenService::Login,
    AuthenService::Enable,
    AuthenService::Ppp,
    AuthenService::Pt,
    AuthenService::Rcmd,
    AuthenService::X25,
    AuthenService::Nasi,
    AuthenService::FwProxy,
];
const METHODS: [AuthenMethod; 11] = [
    AuthenMethod::NotSet,
    AuthenMethod::None,
    AuthenMethod::Krb5,
    AuthenMethod::Line,
    AuthenMethod::Enable,
    AuthenMethod::Local,
    AuthenMethod::TacacsPlus,
    AuthenMethod::Guest,
    AuthenMethod::Radius,
    AuthenMethod::Krb4,
    AuthenMethod::Rcmd,
];

/// Parses `wire` with our codec, checks the header against what was sent and returns the
/// deobfuscated packet.
fn our_packet(
    wire: &[u8],
    cleartext: bool,
    packet_type: PacketType,
    seq_no: u8,
    session_id: u32,
) -> Vec<u8> {
    let mut buf = wire.to_vec();
    let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
    assert_eq!(packet.total_len(), wire.len());
    assert_eq!(packet.packet_type(), packet_type);
    assert_eq!(packet.seq_no(), seq_no);
    assert_eq!(packet.session_id(), session_id);
    assert_eq!(packet.flags().contains(ours::Flags::UNENCRYPTED), cleartext);
    if cleartext {
        assert_eq!(
            packet.deobfuscate(KEY, Cleartext::Refuse),
            Err(ours::Error::Unencrypted)
        );
        packet.deobfuscate(KEY, Cleartext::Allow).unwrap();
    } else {
        packet.deobfuscate(KEY, Cleartext::Refuse).unwrap();
    }
    buf
}

fn body(packet: &[u8]) -> &[u8] {
    &packet[ours::HEADER_LEN..]
}

// ---- authentication START: theirs -> ours ----

struct StartCase {
    action: authen::Action,
    priv_lvl: u8,
    authen_type: AuthenType,
    service: AuthenService,
    user: String,
    port: String,
    rem_addr: String,
    data: Vec<u8>,
}

fn check_start(case: &StartCase, session_id: u32, cleartext: bool) {
    let context = AuthenticationContext {
        privilege_level: PrivilegeLevel::new(case.priv_lvl).unwrap(),
        authentication_type: their_authen_type(case.authen_type),
        service: their_service(case.service),
    };
    let user_info =
        UserInformation::new(&case.user, text(&case.port), text(&case.rem_addr)).unwrap();
    let data = authentication::PacketData::try_from(&case.data[..]).unwrap();
    let start =
        authentication::Start::new(their_action(case.action), context, user_info, Some(data))
            .unwrap();
    let packet = theirs::Packet::new(
        their_header(MinorVersion::Default, 1, PacketFlags::empty(), session_id),
        start,
    );
    let mut wire = [0u8; 1024];
    let len = if cleartext {
        packet.serialize_unobfuscated(&mut wire[..]).unwrap()
    } else {
        packet.serialize(KEY, &mut wire[..]).unwrap()
    };
    let wire = &wire[..len];

    let clear = our_packet(wire, cleartext, PacketType::Authentication, 1, session_id);
    // Their crate sets minor_version from authen_type (RFC 8907 §5.4.1).
    let header = Header::parse(&clear).unwrap();
    let expected_minor = if case.authen_type == AuthenType::Ascii {
        0
    } else {
        1
    };
    assert_eq!(header.version.minor(), expected_minor);
    let parsed = authen::Start::parse(body(&clear)).unwrap();
    assert_eq!(parsed.action, case.action);
    assert_eq!(parsed.priv_lvl, case.priv_lvl);
    assert_eq!(parsed.authen_type, case.authen_type);
    assert_eq!(parsed.authen_service, case.service);
    assert_eq!(parsed.user, case.user.as_bytes());
    assert_eq!(parsed.port, case.port.as_bytes());
    assert_eq!(parsed.rem_addr, case.rem_addr.as_bytes());
    assert_eq!(parsed.data, &case.data[..]);

    // Ours emits the same octets from the same fields.
    let mut out = [0u8; 1024];
    let n = emit_packet(&mut out, &header, &parsed, KEY).unwrap();
    assert_eq!(&out[..n], wire);
}

#[test]
fn authen_start_theirs_to_ours() {
    let pap = StartCase {
        action: authen::Action::Login,
        priv_lvl: 1,
        authen_type: AuthenType::Pap,
        service: AuthenService::Login,
        user: "alice".into(),
        port: "tty0".into(),
        rem_addr: "192.0.2.1".into(),
        data: b"correct horse".to_vec(),
    };
    check_start(&pap, 0x1234_5678, false);
    check_start(&pap, 0x1234_5678, true);
    let ascii = StartCase {
        action: authen::Action::ChangePassword,
        priv_lvl: 15,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Enable,
        user: String::new(),
        port: String::new(),
        rem_addr: String::new(),
        data: Vec::new(),
    };
    check_start(&ascii, 1, false);
    let chap = StartCase {
        action: authen::Action::SendAuth,
        priv_lvl: 0,
        authen_type: AuthenType::Chap,
        service: AuthenService::Ppp,
        user: "bob".into(),
        port: "async10".into(),
        rem_addr: "2001:db8::1".into(),
        data: (0..33).collect(),
    };
    check_start(&chap, u32::MAX, false);
}

#[test]
fn authen_start_random_theirs_to_ours() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..300 {
        let authen_type = rng.pick(&AUTHEN_TYPES);
        let action = match authen_type {
            AuthenType::Ascii => rng.pick(&[authen::Action::Login, authen::Action::ChangePassword]),
            _ => rng.pick(&[authen::Action::Login, authen::Action::SendAuth]),
        };
        let case = StartCase {
            action,
            priv_lvl: rng.below(16) as u8,
            authen_type,
            service: rng.pick(&SERVICES),
            user: rng.text(255),
            port: rng.text(255),
            rem_addr: rng.text(255),
            data: rng.bytes(255),
        };
        check_start(&case, rng.next() as u32, i % 5 == 0);
    }
}

// ---- authentication CONTINUE: theirs -> ours ----

fn check_continue(user_msg: &[u8], data: &[u8], abort: bool, seq_no: u8, session_id: u32) {
    let flags = if abort {
        authentication::ContinueFlags::ABORT
    } else {
        authentication::ContinueFlags::empty()
    };
    let cont = authentication::Continue::new(Some(user_msg), Some(data), flags).unwrap();
    let packet = theirs::Packet::new(
        their_header(
            MinorVersion::Default,
            seq_no,
            PacketFlags::SINGLE_CONNECTION,
            session_id,
        ),
        cont,
    );
    let mut wire = vec![0u8; 12 + 5 + user_msg.len() + data.len()];
    let len = packet.serialize(KEY, &mut wire[..]).unwrap();
    assert_eq!(len, wire.len());

    let clear = our_packet(&wire, false, PacketType::Authentication, seq_no, session_id);
    let header = Header::parse(&clear).unwrap();
    assert!(header.flags.contains(ours::Flags::SINGLE_CONNECT));
    let parsed = authen::Continue::parse(body(&clear)).unwrap();
    assert_eq!(parsed.user_msg, user_msg);
    assert_eq!(parsed.data, data);
    assert_eq!(parsed.flags.contains(authen::ContinueFlags::ABORT), abort);

    let mut out = vec![0u8; wire.len()];
    emit_packet(&mut out, &header, &parsed, KEY).unwrap();
    assert_eq!(out, wire);
}

#[test]
fn authen_continue_theirs_to_ours() {
    check_continue(b"hunter2", b"", false, 3, 42);
    check_continue(b"", b"user hung up", true, 5, 42);
    let long = vec![b'x'; 1000];
    check_continue(&long, &long[..300], false, 253, 7);
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..100 {
        let (msg, data) = (rng.bytes(600), rng.bytes(600));
        let seq_no = 1 + 2 * rng.below(127) as u8;
        check_continue(&msg, &data, rng.below(2) == 1, seq_no, rng.next() as u32);
    }
}

// ---- authorization REQUEST and accounting REQUEST: theirs -> ours ----

struct RequestCase {
    method: AuthenMethod,
    priv_lvl: u8,
    authen_type: AuthenType,
    service: AuthenService,
    user: String,
    port: String,
    rem_addr: String,
    /// name, value, mandatory
    args: Vec<(String, String, bool)>,
}

impl RequestCase {
    fn random(rng: &mut Rng, max_args: u64) -> RequestCase {
        let count = rng.below(max_args + 1);
        RequestCase {
            method: rng.pick(&METHODS),
            priv_lvl: rng.below(16) as u8,
            authen_type: rng.pick(&[
                AuthenType::NotSet,
                AuthenType::Ascii,
                AuthenType::Pap,
                AuthenType::Chap,
                AuthenType::MsChap,
                AuthenType::MsChapV2,
            ]),
            service: rng.pick(&SERVICES),
            user: rng.text(64),
            port: rng.text(64),
            rem_addr: rng.text(64),
            args: (0..count)
                .map(|_| (rng.name(30), rng.text(60), rng.below(2) == 1))
                .collect(),
        }
    }

    fn their_args(&self) -> Vec<Argument<'_>> {
        self.args
            .iter()
            .map(|(name, value, mandatory)| {
                Argument::new(text(name), text(value), *mandatory).unwrap()
            })
            .collect()
    }

    fn context(&self) -> AuthenticationContext {
        AuthenticationContext {
            privilege_level: PrivilegeLevel::new(self.priv_lvl).unwrap(),
            authentication_type: their_authen_type(self.authen_type),
            service: their_service(self.service),
        }
    }

    fn user_info(&self) -> UserInformation<'_> {
        UserInformation::new(&self.user, text(&self.port), text(&self.rem_addr)).unwrap()
    }

    fn assert_args(&self, args: &Args<'_>) {
        assert_eq!(args.len(), self.args.len());
        for (arg, (name, value, mandatory)) in args.iter().zip(&self.args) {
            assert_eq!(arg.name(), name.as_bytes());
            assert_eq!(arg.value(), value.as_bytes());
            assert_eq!(arg.is_mandatory(), *mandatory);
        }
    }
}

fn check_author_request(case: &RequestCase, session_id: u32) {
    let their_args = case.their_args();
    let request = authorization::Request::new(
        their_method(case.method),
        case.context(),
        case.user_info(),
        Arguments::new(&their_args).unwrap(),
    );
    let packet = theirs::Packet::new(
        their_header(MinorVersion::Default, 1, PacketFlags::empty(), session_id),
        request,
    );
    let mut wire = [0u8; 8192];
    let len = packet.serialize(KEY, &mut wire[..]).unwrap();
    let wire = &wire[..len];

    let clear = our_packet(wire, false, PacketType::Authorization, 1, session_id);
    let header = Header::parse(&clear).unwrap();
    let parsed = author::Request::parse(body(&clear)).unwrap();
    assert_eq!(parsed.authen_method, case.method);
    assert_eq!(parsed.priv_lvl, case.priv_lvl);
    assert_eq!(parsed.authen_type, case.authen_type);
    assert_eq!(parsed.authen_service, case.service);
    assert_eq!(parsed.user, case.user.as_bytes());
    assert_eq!(parsed.port, case.port.as_bytes());
    assert_eq!(parsed.rem_addr, case.rem_addr.as_bytes());
    case.assert_args(&parsed.args);

    // Ours, from our own representation of the same fields, emits the same octets.
    let our_args: Vec<Arg<'_>> = case
        .args
        .iter()
        .map(|(name, value, mandatory)| {
            if *mandatory {
                Arg::mandatory(name.as_bytes(), value.as_bytes())
            } else {
                Arg::optional(name.as_bytes(), value.as_bytes())
            }
        })
        .collect();
    let ours = author::Request {
        args: Args::new(&our_args),
        ..parsed
    };
    let mut out = [0u8; 8192];
    let n = emit_packet(&mut out, &header, &ours, KEY).unwrap();
    assert_eq!(&out[..n], wire);
}

#[test]
fn author_request_theirs_to_ours() {
    let case = RequestCase {
        method: AuthenMethod::TacacsPlus,
        priv_lvl: 1,
        authen_type: AuthenType::Ascii,
        service: AuthenService::Login,
        user: "alice".into(),
        port: "ssh".into(),
        rem_addr: "198.51.100.4".into(),
        args: vec![
            ("service".into(), "shell".into(), true),
            ("cmd".into(), String::new(), false),
            ("cmd-arg".into(), "a=b*c".into(), true),
        ],
    };
    check_author_request(&case, 0xdead_beef);
    let mut rng = Rng(0xfeed_face_cafe_beef);
    for _ in 0..300 {
        let case = RequestCase::random(&mut rng, 20);
        check_author_request(&case, rng.next() as u32);
    }
}

fn check_acct_request(case: &RequestCase, flags: accounting::Flags, session_id: u32) {
    let their_args = case.their_args();
    let request = accounting::Request::new(
        flags,
        their_method(case.method),
        case.context(),
        case.user_info(),
        Arguments::new(&their_args).unwrap(),
    );
    let packet = theirs::Packet::new(
        their_header(MinorVersion::Default, 1, PacketFlags::empty(), session_id),
        request,
    );
    let mut wire = [0u8; 8192];
    let len = packet.serialize(KEY, &mut wire[..]).unwrap();
    let wire = &wire[..len];

    let clear = our_packet(wire, false, PacketType::Accounting, 1, session_id);
    let header = Header::parse(&clear).unwrap();
    let parsed = acct::Request::parse(body(&clear)).unwrap();
    let record = match flags {
        accounting::Flags::StartRecord => acct::Record::Start,
        accounting::Flags::StopRecord => acct::Record::Stop,
        accounting::Flags::WatchdogNoUpdate => acct::Record::Watchdog,
        accounting::Flags::WatchdogUpdate => acct::Record::WatchdogUpdate,
    };
    assert_eq!(parsed.flags.record(), Some(record));
    assert_eq!(parsed.flags, acct::Flags::from(record));
    assert_eq!(parsed.fields.authen_method, case.method);
    assert_eq!(parsed.fields.priv_lvl, case.priv_lvl);
    assert_eq!(parsed.fields.authen_type, case.authen_type);
    assert_eq!(parsed.fields.authen_service, case.service);
    assert_eq!(parsed.fields.user, case.user.as_bytes());
    assert_eq!(parsed.fields.port, case.port.as_bytes());
    assert_eq!(parsed.fields.rem_addr, case.rem_addr.as_bytes());
    case.assert_args(&parsed.fields.args);

    let mut out = [0u8; 8192];
    let n = emit_packet(&mut out, &header, &parsed, KEY).unwrap();
    assert_eq!(&out[..n], wire);
}

#[test]
fn acct_request_theirs_to_ours() {
    let flags = [
        accounting::Flags::StartRecord,
        accounting::Flags::StopRecord,
        accounting::Flags::WatchdogNoUpdate,
        accounting::Flags::WatchdogUpdate,
    ];
    let mut rng = Rng(0x5555_aaaa_1234_9876);
    for i in 0..300 {
        let case = RequestCase::random(&mut rng, 20);
        check_acct_request(&case, flags[i % flags.len()], rng.next() as u32);
    }
}

// ---- replies: ours -> theirs ----

fn our_reply_header(packet_type: PacketType, session_id: u32, flags: ours::Flags) -> Header {
    Header::request(packet_type, ours::Version::DEFAULT, flags, session_id)
        .next()
        .unwrap()
}

fn assert_their_header(header: &HeaderInfo, seq_no: u8, session_id: u32) {
    assert_eq!(header.sequence_number(), seq_no);
    assert_eq!(header.session_id(), session_id);
    assert_eq!(header.version().minor(), MinorVersion::Default);
}

#[allow(deprecated)]
fn their_authen_status(status: authentication::Status) -> authen::Status {
    authen::Status::from(status as u8)
}

#[test]
fn authen_reply_ours_to_theirs() {
    let statuses = [
        authen::Status::Pass,
        authen::Status::Fail,
        authen::Status::GetData,
        authen::Status::GetUser,
        authen::Status::GetPass,
        authen::Status::Restart,
        authen::Status::Error,
        authen::Status::Follow,
    ];
    let mut rng = Rng(0x1111_2222_3333_4444);
    for i in 0..400 {
        let status = statuses[i % statuses.len()];
        let no_echo = rng.below(2) == 1;
        let server_msg = rng.text(300);
        let data = rng.bytes(300);
        let session_id = rng.next() as u32;
        let cleartext = i % 7 == 0;
        let flags = if cleartext {
            ours::Flags::UNENCRYPTED
        } else {
            ours::Flags::empty()
        };
        let reply = authen::Reply {
            status,
            flags: if no_echo {
                authen::ReplyFlags::NO_ECHO
            } else {
                authen::ReplyFlags::empty()
            },
            server_msg: server_msg.as_bytes(),
            data: &data,
        };
        let header = our_reply_header(PacketType::Authentication, session_id, flags);
        let mut wire = [0u8; 1024];
        let len = emit_packet(&mut wire, &header, &reply, KEY).unwrap();

        let mut buf = wire[..len].to_vec();
        let packet = if cleartext {
            theirs::Packet::<authentication::Reply>::deserialize_unobfuscated(&buf).unwrap()
        } else {
            theirs::Packet::<authentication::Reply>::deserialize(KEY, &mut buf).unwrap()
        };
        assert_their_header(packet.header(), 2, session_id);
        let body = packet.body();
        assert_eq!(their_authen_status(*body.status()), status);
        assert_eq!(
            body.flags().contains(authentication::ReplyFlags::NO_ECHO),
            no_echo
        );
        assert_eq!(body.server_message().as_ref(), server_msg);
        assert_eq!(body.data(), &data[..]);
    }
}

#[allow(deprecated)]
fn their_author_status(status: authorization::Status) -> author::Status {
    author::Status::from(status as u8)
}

#[test]
fn author_response_ours_to_theirs() {
    let statuses = [
        author::Status::PassAdd,
        author::Status::PassRepl,
        author::Status::Fail,
        author::Status::Error,
        author::Status::Follow,
    ];
    let mut rng = Rng(0x7777_8888_9999_0000);
    for i in 0..400 {
        let status = statuses[i % statuses.len()];
        let names: Vec<(String, String, bool)> = (0..rng.below(21))
            .map(|_| (rng.name(30), rng.text(60), rng.below(2) == 1))
            .collect();
        let args: Vec<Arg<'_>> = names
            .iter()
            .map(|(name, value, mandatory)| {
                if *mandatory {
                    Arg::mandatory(name.as_bytes(), value.as_bytes())
                } else {
                    Arg::optional(name.as_bytes(), value.as_bytes())
                }
            })
            .collect();
        let server_msg = rng.text(200);
        let data = rng.text(200);
        let session_id = rng.next() as u32;
        let response = author::Response {
            status,
            args: Args::new(&args),
            server_msg: server_msg.as_bytes(),
            data: data.as_bytes(),
        };
        let header = our_reply_header(PacketType::Authorization, session_id, ours::Flags::empty());
        let mut wire = [0u8; 8192];
        let len = emit_packet(&mut wire, &header, &response, KEY).unwrap();

        let mut buf = wire[..len].to_vec();
        let packet = theirs::Packet::<authorization::Reply>::deserialize(KEY, &mut buf).unwrap();
        assert_their_header(packet.header(), 2, session_id);
        let body = packet.body();
        assert_eq!(their_author_status(*body.status()), status);
        assert_eq!(body.server_message().as_ref(), server_msg);
        assert_eq!(body.data().as_ref(), data);
        let theirs: Vec<(String, String, bool)> = body
            .iter_arguments()
            .map(|arg| {
                (
                    arg.name().as_ref().to_owned(),
                    arg.value().as_ref().to_owned(),
                    arg.mandatory(),
                )
            })
            .collect();
        assert_eq!(theirs, names);
    }
}

#[test]
fn author_response_with_six_args_ours_to_theirs_unobfuscated() {
    let args = [
        Arg::mandatory(b"service", b"shell"),
        Arg::mandatory(b"priv-lvl", b"15"),
        Arg::mandatory(b"role", b"admin"),
        Arg::optional(b"shell:roles", b"network-admin"),
        Arg::mandatory(b"idletime", b"30"),
        Arg::optional(b"timeout", b"600"),
    ];
    let response = author::Response {
        status: author::Status::PassAdd,
        args: Args::new(&args),
        server_msg: b"",
        data: b"",
    };
    let header = our_reply_header(PacketType::Authorization, 9, ours::Flags::UNENCRYPTED);
    let mut wire = [0u8; 256];
    let len = emit_packet(&mut wire, &header, &response, KEY).unwrap();
    let packet =
        theirs::Packet::<authorization::Reply>::deserialize_unobfuscated(&wire[..len]).unwrap();
    let names: Vec<String> = packet
        .body()
        .iter_arguments()
        .map(|arg| arg.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "service=shell",
            "priv-lvl=15",
            "role=admin",
            "shell:roles*network-admin",
            "idletime=30",
            "timeout*600"
        ]
    );
}

#[allow(deprecated)]
fn their_acct_status(status: accounting::Status) -> acct::Status {
    acct::Status::from(status as u8)
}

#[test]
fn acct_reply_ours_to_theirs() {
    let statuses = [
        acct::Status::Success,
        acct::Status::Error,
        acct::Status::Follow,
    ];
    let mut rng = Rng(0x0f0f_f0f0_1357_2468);
    for i in 0..300 {
        let status = statuses[i % statuses.len()];
        let server_msg = rng.text(300);
        let data = rng.text(300);
        let session_id = rng.next() as u32;
        let reply = acct::Reply {
            status,
            server_msg: server_msg.as_bytes(),
            data: data.as_bytes(),
        };
        let header = our_reply_header(PacketType::Accounting, session_id, ours::Flags::empty());
        let mut wire = [0u8; 1024];
        let len = emit_packet(&mut wire, &header, &reply, KEY).unwrap();

        let mut buf = wire[..len].to_vec();
        let packet = theirs::Packet::<accounting::Reply>::deserialize(KEY, &mut buf).unwrap();
        assert_their_header(packet.header(), 2, session_id);
        let body = packet.body();
        assert_eq!(their_acct_status(*body.status()), status);
        assert_eq!(body.server_message().as_ref(), server_msg);
        assert_eq!(body.data().as_ref(), data);
    }
}

// ---- both refuse the same corruption ----

#[test]
fn both_refuse_a_wrong_key_and_a_short_length() {
    let reply = acct::Reply {
        status: acct::Status::Success,
        server_msg: b"recorded",
        data: b"",
    };
    let header = our_reply_header(PacketType::Accounting, 77, ours::Flags::empty());
    let mut wire = [0u8; 64];
    let len = emit_packet(&mut wire, &header, &reply, KEY).unwrap();

    // Wrong key: the lengths no longer add up.
    let mut ours_buf = wire[..len].to_vec();
    let mut packet = Packet::new_checked(&mut ours_buf[..]).unwrap();
    packet.deobfuscate(b"wrong", Cleartext::Refuse).unwrap();
    assert!(acct::Reply::parse(packet.body()).is_err());
    let mut their_buf = wire[..len].to_vec();
    assert!(theirs::Packet::<accounting::Reply>::deserialize(b"wrong", &mut their_buf).is_err());

    // A header length one short of the body: server_msg, the last field, overruns for ours;
    // theirs sees a size mismatch.
    let mut short = wire[..len].to_vec();
    short[11] -= 1;
    short.pop();
    let mut packet = Packet::new_checked(&mut short[..]).unwrap();
    packet.deobfuscate(KEY, Cleartext::Refuse).unwrap();
    assert_eq!(
        acct::Reply::parse(packet.body()),
        Err(ours::Error::Overrun(ours::Field::ServerMsg))
    );
    let mut short = wire[..len].to_vec();
    short[11] -= 1;
    short.pop();
    assert!(theirs::Packet::<accounting::Reply>::deserialize(KEY, &mut short).is_err());
}
