//! A TACACS+ server for integration tests, built on `portcullis_protocol::tacacs`.
//!
//! [`TacacsServer::start`] listens on a free loopback port ([`TacacsServer::start_at`] on a
//! given address) and serves each connection on its own thread, one session per connection
//! unless [`Config::single_connect`] agrees to Single Connection Mode (RFC 8907 §4.3):
//! - authentication (RFC 8907 §5.4.2): PAP (the START's data is the password) and ASCII (a
//!   START with the user name goes straight to GETPASS; without one, or with
//!   [`Config::ascii_ask_user`], GETUSER first), PASS or FAIL against [`Config::users`];
//! - authorization (RFC 8907 §6): the user's [`User::av_pairs`] with the user's
//!   [`Authorization`] status, FAIL for unknown users.
//!
//! A [`Misbehaviour`] replaces the first reply of the authentication or the authorization
//! session of every connection ([`Config::authen_misbehaviour`],
//! [`Config::author_misbehaviour`]). Everything received is kept in [`Received`] for
//! assertions (unless [`Config::record`] is off). Every read has a timeout and every loop a
//! bound, so a client that stalls cannot hang a test; dropping the server stops its listener.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use portcullis_protocol::tacacs::{
    Arg, Args, AuthenMethod, AuthenService, AuthenType, Body, Cleartext, Flags, HEADER_LEN, Header,
    Packet, PacketType, authen, author, emit_packet,
};

/// The key tests share with the server unless they set another.
pub const KEY: &str = "tacacs-test-key";

/// How long a connection thread waits for the next packet (and a stalled reply waits for the
/// client to give up) before closing.
const IDLE: Duration = Duration::from_secs(5);

/// Packets served per session at most (counted per connection: [`MAX_PACKETS`] x
/// [`MAX_SESSIONS`]).
const MAX_PACKETS: usize = 32;
/// Sessions served on one single-connect connection, at most.
const MAX_SESSIONS: usize = 100_000;

/// The authorization answer for a user (RFC 8907 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization {
    /// PASS_ADD with the user's AV pairs.
    PassAdd,
    /// PASS_REPL with the user's AV pairs.
    PassRepl,
    /// FAIL.
    Fail,
    /// ERROR.
    Error,
    /// FOLLOW.
    Follow,
}

/// A user the server knows.
#[derive(Debug, Clone)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The password, for PAP and ASCII.
    pub password: String,
    /// AV pairs returned by authorization, all mandatory (`name=value`).
    pub av_pairs: Vec<(String, String)>,
    /// The authorization status.
    pub authorization: Authorization,
}

impl User {
    /// A user authorized with PASS_ADD and `av_pairs`.
    pub fn new(name: &str, password: &str, av_pairs: &[(&str, &str)]) -> User {
        User {
            name: name.into(),
            password: password.into(),
            av_pairs: av_pairs
                .iter()
                .map(|&(n, v)| (n.into(), v.into()))
                .collect(),
            authorization: Authorization::PassAdd,
        }
    }

    /// The same user with another authorization status.
    pub fn authorization(mut self, authorization: Authorization) -> User {
        self.authorization = authorization;
        self
    }
}

/// A way to answer wrongly, in place of a session's first reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Status FAIL whatever the password (authorization: FAIL).
    ReplyFail,
    /// Status ERROR (authorization: ERROR).
    ReplyError,
    /// Status FOLLOW (authorization: FOLLOW).
    ReplyFollow,
    /// Status RESTART (authorization: the undefined status 0x06).
    ReplyRestart,
    /// Status GETDATA (authorization: the undefined status 0x03).
    ReplyGetData,
    /// An undefined status, 0x42.
    ReplyUnknownStatus,
    /// Read only the request's header, then close with its body unread: the kernel resets
    /// the connection.
    Reset,
    /// Write the header and half the body of the honest reply, then close.
    HalfFrame,
    /// Never answer; keep the connection open until the client closes it.
    Stall,
    /// A valid header, then a body whose lengths do not add up (status PASS / PASS_ADD, a
    /// server_msg_len of 65535 over a 13-octet body), obfuscated with the right key.
    Garbage,
    /// The honest reply under session_id + 1.
    WrongSessionId,
    /// The honest reply with seq_no + 2.
    WrongSeqNo,
    /// The honest reply in cleartext with the UNENCRYPTED flag.
    Unencrypted,
    /// The honest reply obfuscated with another key.
    WrongKey,
    /// A header announcing a 16 MiB body, then a few octets and a stall.
    Oversized,
    /// GETPASS forever (ASCII only; PAP gets a GETPASS once).
    EndlessPrompts,
}

/// What the server does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The shared key.
    pub key: String,
    /// Known users.
    pub users: Vec<User>,
    /// Ask GETUSER in ASCII logins even when the START names the user.
    pub ascii_ask_user: bool,
    /// In ASCII logins, after a right password: GETDATA "Token code: " (NOECHO), and PASS
    /// only for this answer.
    pub token: Option<String>,
    /// Replaces the first authentication reply of each session.
    pub authen_misbehaviour: Option<Misbehaviour>,
    /// Replaces the authorization reply.
    pub author_misbehaviour: Option<Misbehaviour>,
    /// Agree to Single Connection Mode when a client offers it (RFC 8907 §4.3); otherwise
    /// the flag is cleared in every reply.
    pub single_connect: bool,
    /// Close a connection, unanswered, when a session beyond this many begins on it.
    pub sessions_per_connection: Option<usize>,
    /// Serve TACACS+ over TLS (RFC 9887) with this configuration: packets must carry the
    /// UNENCRYPTED flag and bodies are cleartext.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Over TLS, obfuscate the replies anyway (with the UNENCRYPTED flag clear), as a server
    /// that does not implement RFC 9887 §4 would.
    pub tls_obfuscate: bool,
    /// Hold the first packet of each session until this many connections have been accepted
    /// (for at most [`HOLD_LIMIT`]): logins made at once then overlap for certain.
    pub hold_until_connections: Option<usize>,
    /// Keep the STARTs, CONTINUEs and authorization REQUESTs in [`Received`]. A server that
    /// runs for long (examples/tacacs_bench_server.rs) turns it off so its memory stays flat.
    pub record: bool,
}

impl Config {
    /// A well-behaved server with key [`KEY`] and `users`.
    pub fn new(users: Vec<User>) -> Config {
        Config {
            key: KEY.into(),
            users,
            ascii_ask_user: false,
            token: None,
            authen_misbehaviour: None,
            author_misbehaviour: None,
            single_connect: false,
            sessions_per_connection: None,
            tls: None,
            tls_obfuscate: false,
            hold_until_connections: None,
            record: true,
        }
    }
}

/// An authentication START as received.
#[derive(Debug, Clone)]
pub struct StartSeen {
    /// The header.
    pub header: Header,
    /// action.
    pub action: authen::Action,
    /// priv_lvl.
    pub priv_lvl: u8,
    /// authen_type.
    pub authen_type: AuthenType,
    /// authen_service.
    pub authen_service: AuthenService,
    /// user.
    pub user: String,
    /// port.
    pub port: String,
    /// rem_addr.
    pub rem_addr: String,
    /// data (the PAP password).
    pub data: Vec<u8>,
}

/// An authentication CONTINUE as received.
#[derive(Debug, Clone)]
pub struct ContinueSeen {
    /// The header.
    pub header: Header,
    /// flags.
    pub flags: authen::ContinueFlags,
    /// user_msg.
    pub user_msg: Vec<u8>,
    /// data.
    pub data: Vec<u8>,
}

/// An authorization REQUEST as received.
#[derive(Debug, Clone)]
pub struct AuthorSeen {
    /// The header.
    pub header: Header,
    /// authen_method.
    pub authen_method: AuthenMethod,
    /// priv_lvl.
    pub priv_lvl: u8,
    /// authen_type.
    pub authen_type: AuthenType,
    /// authen_service.
    pub authen_service: AuthenService,
    /// user.
    pub user: String,
    /// port.
    pub port: String,
    /// rem_addr.
    pub rem_addr: String,
    /// The arguments, encoded (`name=value` or `name*value`).
    pub args: Vec<String>,
}

/// Everything the server received.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Connections accepted.
    pub connections: usize,
    /// TLS handshakes that failed.
    pub handshake_failures: usize,
    /// Authentication STARTs.
    pub starts: Vec<StartSeen>,
    /// Authentication CONTINUEs.
    pub continues: Vec<ContinueSeen>,
    /// Authorization REQUESTs.
    pub authorizations: Vec<AuthorSeen>,
    /// Packets that did not deobfuscate or parse.
    pub malformed: usize,
}

/// A running test server; dropping it stops the listener.
#[derive(Debug)]
pub struct TacacsServer {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    listener: Option<JoinHandle<()>>,
}

impl TacacsServer {
    /// Starts a server on a free loopback port.
    pub fn start(config: Config) -> TacacsServer {
        TacacsServer::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .expect("binding a loopback port")
    }

    /// Starts a server listening on `addr`.
    pub fn start_at(addr: SocketAddr, config: Config) -> io::Result<TacacsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(config);
        let thread = {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    lock(&received).connections += 1;
                    let (config, received) = (Arc::clone(&config), Arc::clone(&received));
                    thread::spawn(move || {
                        if stream.set_read_timeout(Some(IDLE)).is_err()
                            || stream.set_write_timeout(Some(IDLE)).is_err()
                        {
                            return;
                        }
                        let _ = match &config.tls {
                            None => serve(stream, &config, &received),
                            Some(tls) => {
                                let Ok(connection) = rustls::ServerConnection::new(Arc::clone(tls))
                                else {
                                    return;
                                };
                                let mut tls = rustls::StreamOwned::new(connection, stream);
                                // The handshake first: a client that fails it sends nothing.
                                while tls.conn.is_handshaking() {
                                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                                        lock(&received).handshake_failures += 1;
                                        return;
                                    }
                                }
                                serve(tls, &config, &received)
                            }
                        };
                    });
                }
            })
        };
        Ok(TacacsServer {
            addr,
            received,
            stop,
            listener: Some(thread),
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of what the server received so far.
    pub fn received(&self) -> Received {
        lock(&self.received).clone()
    }
}

impl Drop for TacacsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.listener.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where an ASCII login stands.
enum Ascii {
    /// Nothing asked yet, or not an ASCII login.
    Idle,
    /// GETUSER sent.
    AwaitUser,
    /// GETPASS sent for this user.
    AwaitPass(String),
    /// GETDATA (the token code) sent for this user.
    AwaitToken(String),
}

/// A connection's stream: TCP, or TLS over TCP.
trait Conn: Read + Write {
    /// Ends what the server writes (with close_notify over TLS).
    fn end_writes(&mut self);
}

impl Conn for TcpStream {
    fn end_writes(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Conn for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn end_writes(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

/// Serves one connection: one session, or with single-connect up to [`MAX_SESSIONS`]
/// sessions; at most [`MAX_PACKETS`] packets each.
fn serve(mut stream: impl Conn, config: &Config, received: &Mutex<Received>) -> io::Result<()> {
    let key = config.key.as_bytes();
    // RFC 9887 §4: over TLS every packet is cleartext with the UNENCRYPTED flag.
    let cleartext = if config.tls.is_some() {
        Cleartext::Required
    } else {
        Cleartext::Refuse
    };
    let mut ascii = Ascii::Idle;
    let mut replied = false;
    let mut sessions = 0;
    for _ in 0..MAX_PACKETS * MAX_SESSIONS {
        let mut head = [0u8; HEADER_LEN];
        if stream.read_exact(&mut head).is_err() {
            return Ok(());
        }
        let Ok(header) = Header::parse(&head) else {
            lock(received).malformed += 1;
            return Ok(());
        };
        let misbehaviour = if replied {
            None
        } else {
            match header.packet_type {
                PacketType::Authorization => config.author_misbehaviour,
                _ => config.authen_misbehaviour,
            }
        };
        if header.seq_no == 1 {
            if config
                .sessions_per_connection
                .is_some_and(|most| sessions >= most)
            {
                // The body stays unread: the kernel answers the client with RST.
                return Ok(());
            }
            sessions += 1;
            if let Some(wanted) = config.hold_until_connections {
                hold_until(received, wanted);
            }
        }
        if misbehaviour == Some(Misbehaviour::Reset) {
            // The body stays unread: closing now makes the kernel send RST.
            return Ok(());
        }
        let mut buf = vec![0u8; HEADER_LEN + header.length as usize];
        buf[..HEADER_LEN].copy_from_slice(&head);
        stream.read_exact(&mut buf[HEADER_LEN..])?;
        let mut packet = Packet::new_checked(buf).map_err(io::Error::other)?;
        if packet.deobfuscate(key, cleartext).is_err() {
            lock(received).malformed += 1;
            return Ok(());
        }
        let mut reply = header.next().map_err(io::Error::other)?;
        if !config.single_connect {
            reply.flags = Flags::from_bits(reply.flags.bits() & !Flags::SINGLE_CONNECT.bits());
        }
        if config.tls_obfuscate {
            reply.flags = Flags::from_bits(reply.flags.bits() & !Flags::UNENCRYPTED.bits());
        }
        let out = match header.packet_type {
            PacketType::Authentication if header.seq_no == 1 => {
                let Ok(start) = authen::Start::parse(packet.body()) else {
                    lock(received).malformed += 1;
                    return Ok(());
                };
                if config.record {
                    record_start(received, header, &start);
                }
                authen_start(config, &start, &mut ascii, &reply, misbehaviour)
            }
            PacketType::Authentication => {
                let Ok(cont) = authen::Continue::parse(packet.body()) else {
                    lock(received).malformed += 1;
                    return Ok(());
                };
                if config.record {
                    lock(received).continues.push(ContinueSeen {
                        header,
                        flags: cont.flags,
                        user_msg: cont.user_msg.to_vec(),
                        data: cont.data.to_vec(),
                    });
                }
                if cont.flags.contains(authen::ContinueFlags::ABORT) {
                    // RFC 8907 §5.4.3: the session is over; no reply.
                    return Ok(());
                }
                authen_continue(config, &cont, &mut ascii, &reply, misbehaviour)
            }
            PacketType::Authorization => {
                let Ok(request) = author::Request::parse(packet.body()) else {
                    lock(received).malformed += 1;
                    return Ok(());
                };
                if config.record {
                    record_author(received, header, &request);
                }
                authorize(config, &request, &reply, misbehaviour)
            }
            _ => return Ok(()),
        };
        replied = true;
        match misbehaviour {
            Some(Misbehaviour::Stall) => {
                // Wait for the client to give up (EOF or reset), at most IDLE.
                let mut sink = [0u8; 256];
                while let Ok(n) = stream.read(&mut sink) {
                    if n == 0 {
                        break;
                    }
                }
                return Ok(());
            }
            Some(Misbehaviour::HalfFrame) => {
                let half = HEADER_LEN + (out.len() - HEADER_LEN) / 2;
                stream.write_all(&out[..half])?;
                stream.flush()?;
                stream.end_writes();
                return Ok(());
            }
            Some(Misbehaviour::Oversized) => {
                let mut head: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
                head[8..12].copy_from_slice(&(1u32 << 24).to_be_bytes());
                stream.write_all(&head)?;
                stream.write_all(&out[HEADER_LEN..])?;
                let mut sink = [0u8; 256];
                while let Ok(n) = stream.read(&mut sink) {
                    if n == 0 {
                        break;
                    }
                }
                return Ok(());
            }
            _ => stream.write_all(&out)?,
        }
    }
    Ok(())
}

/// How long [`Config::hold_until_connections`] holds a session at most.
pub const HOLD_LIMIT: Duration = Duration::from_secs(5);

/// Returns when `wanted` connections have been accepted, or after [`HOLD_LIMIT`].
fn hold_until(received: &Mutex<Received>, wanted: usize) {
    let deadline = Instant::now() + HOLD_LIMIT;
    while lock(received).connections < wanted && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

fn text(octets: &[u8]) -> String {
    String::from_utf8_lossy(octets).into_owned()
}

fn record_start(received: &Mutex<Received>, header: Header, start: &authen::Start<'_>) {
    lock(received).starts.push(StartSeen {
        header,
        action: start.action,
        priv_lvl: start.priv_lvl,
        authen_type: start.authen_type,
        authen_service: start.authen_service,
        user: text(start.user),
        port: text(start.port),
        rem_addr: text(start.rem_addr),
        data: start.data.to_vec(),
    });
}

fn record_author(received: &Mutex<Received>, header: Header, request: &author::Request<'_>) {
    lock(received).authorizations.push(AuthorSeen {
        header,
        authen_method: request.authen_method,
        priv_lvl: request.priv_lvl,
        authen_type: request.authen_type,
        authen_service: request.authen_service,
        user: text(request.user),
        port: text(request.port),
        rem_addr: text(request.rem_addr),
        args: request
            .args
            .iter()
            .map(|arg| {
                format!(
                    "{}{}{}",
                    text(arg.name()),
                    char::from(arg.separator()),
                    text(arg.value())
                )
            })
            .collect(),
    });
}

fn user<'a>(config: &'a Config, name: &str) -> Option<&'a User> {
    config.users.iter().find(|u| u.name == name)
}

fn check(config: &Config, name: &str, password: &[u8]) -> bool {
    user(config, name).is_some_and(|u| u.password.as_bytes() == password)
}

/// The reply to a START.
fn authen_start(
    config: &Config,
    start: &authen::Start<'_>,
    ascii: &mut Ascii,
    reply: &Header,
    misbehaviour: Option<Misbehaviour>,
) -> Vec<u8> {
    let name = text(start.user);
    let status = match start.authen_type {
        // RFC 8907 §5.4.2.2: the password is the START's data.
        AuthenType::Pap if misbehaviour == Some(Misbehaviour::EndlessPrompts) => {
            authen::Status::GetPass
        }
        AuthenType::Pap if check(config, &name, start.data) => authen::Status::Pass,
        AuthenType::Pap => authen::Status::Fail,
        // RFC 8907 §5.4.2.1: GETUSER when the START has no user.
        AuthenType::Ascii if name.is_empty() || config.ascii_ask_user => {
            *ascii = Ascii::AwaitUser;
            authen::Status::GetUser
        }
        AuthenType::Ascii => {
            *ascii = Ascii::AwaitPass(name.clone());
            authen::Status::GetPass
        }
        _ => authen::Status::Error,
    };
    authen_reply(config, reply, status, &name, misbehaviour)
}

/// The reply to a CONTINUE of an ASCII login.
fn authen_continue(
    config: &Config,
    cont: &authen::Continue<'_>,
    ascii: &mut Ascii,
    reply: &Header,
    misbehaviour: Option<Misbehaviour>,
) -> Vec<u8> {
    let (status, name) = match std::mem::replace(ascii, Ascii::Idle) {
        _ if config.authen_misbehaviour == Some(Misbehaviour::EndlessPrompts) => {
            (authen::Status::GetPass, String::new())
        }
        Ascii::AwaitUser => {
            let name = text(cont.user_msg);
            *ascii = Ascii::AwaitPass(name.clone());
            (authen::Status::GetPass, name)
        }
        Ascii::AwaitPass(name) if check(config, &name, cont.user_msg) => {
            if config.token.is_some() {
                *ascii = Ascii::AwaitToken(name.clone());
                (authen::Status::GetData, name)
            } else {
                (authen::Status::Pass, name)
            }
        }
        Ascii::AwaitToken(name)
            if config
                .token
                .as_ref()
                .is_some_and(|token| token.as_bytes() == cont.user_msg) =>
        {
            (authen::Status::Pass, name)
        }
        Ascii::AwaitToken(name) => (authen::Status::Fail, name),
        Ascii::AwaitPass(name) => (authen::Status::Fail, name),
        Ascii::Idle => (authen::Status::Error, String::new()),
    };
    authen_reply(config, reply, status, &name, misbehaviour)
}

fn authen_reply(
    config: &Config,
    header: &Header,
    status: authen::Status,
    name: &str,
    misbehaviour: Option<Misbehaviour>,
) -> Vec<u8> {
    let status = match misbehaviour {
        Some(Misbehaviour::ReplyFail) => authen::Status::Fail,
        Some(Misbehaviour::ReplyError) => authen::Status::Error,
        Some(Misbehaviour::ReplyFollow) => authen::Status::Follow,
        Some(Misbehaviour::ReplyRestart) => authen::Status::Restart,
        Some(Misbehaviour::ReplyGetData) => authen::Status::GetData,
        Some(Misbehaviour::ReplyUnknownStatus) => authen::Status::Unknown(0x42),
        _ => status,
    };
    let server_msg = match status {
        authen::Status::Pass => format!("welcome {name}"),
        authen::Status::Fail => "authentication failed".into(),
        authen::Status::GetUser => "Username: ".into(),
        authen::Status::GetPass => "Password: ".into(),
        authen::Status::GetData if config.token.is_some() => "Token code: ".into(),
        authen::Status::GetData => "Token: ".into(),
        authen::Status::Error => "server error".into(),
        _ => String::new(),
    };
    // RFC 8907 §5.2: NOECHO for the password and token prompts.
    let flags = if status == authen::Status::GetPass
        || (status == authen::Status::GetData && config.token.is_some())
    {
        authen::ReplyFlags::NO_ECHO
    } else {
        authen::ReplyFlags::empty()
    };
    let body = authen::Reply {
        status,
        flags,
        server_msg: server_msg.as_bytes(),
        data: b"",
    };
    encode(config, header, &body, misbehaviour)
}

/// The reply to an authorization REQUEST.
fn authorize(
    config: &Config,
    request: &author::Request<'_>,
    header: &Header,
    misbehaviour: Option<Misbehaviour>,
) -> Vec<u8> {
    let found = user(config, &text(request.user));
    let status = match found.map(|u| u.authorization) {
        None | Some(Authorization::Fail) => author::Status::Fail,
        Some(Authorization::PassAdd) => author::Status::PassAdd,
        Some(Authorization::PassRepl) => author::Status::PassRepl,
        Some(Authorization::Error) => author::Status::Error,
        Some(Authorization::Follow) => author::Status::Follow,
    };
    let status = match misbehaviour {
        Some(Misbehaviour::ReplyFail) => author::Status::Fail,
        Some(Misbehaviour::ReplyError) => author::Status::Error,
        Some(Misbehaviour::ReplyFollow) => author::Status::Follow,
        Some(Misbehaviour::ReplyRestart) => author::Status::Unknown(0x06),
        Some(Misbehaviour::ReplyGetData) => author::Status::Unknown(0x03),
        Some(Misbehaviour::ReplyUnknownStatus) => author::Status::Unknown(0x42),
        _ => status,
    };
    let pairs: Vec<Arg<'_>> = match (found, status) {
        (Some(u), author::Status::PassAdd | author::Status::PassRepl) => u
            .av_pairs
            .iter()
            .map(|(n, v)| Arg::mandatory(n.as_bytes(), v.as_bytes()))
            .collect(),
        _ => Vec::new(),
    };
    let server_msg: &[u8] = match status {
        author::Status::Fail => b"not authorized",
        author::Status::Error => b"authorization error",
        _ => b"",
    };
    let body = author::Response {
        status,
        args: Args::new(&pairs),
        server_msg,
        data: b"",
    };
    encode(config, header, &body, misbehaviour)
}

/// Emits a reply, applying the misbehaviours that change how it is encoded.
fn encode<'a, B: Body<'a>>(
    config: &Config,
    header: &Header,
    body: &B,
    misbehaviour: Option<Misbehaviour>,
) -> Vec<u8> {
    let mut header = *header;
    let mut key = config.key.as_bytes();
    match misbehaviour {
        Some(Misbehaviour::WrongSessionId) => header.session_id = header.session_id.wrapping_add(1),
        Some(Misbehaviour::WrongSeqNo) => header.seq_no = header.seq_no.wrapping_add(2),
        Some(Misbehaviour::Unencrypted) => header.flags = header.flags | Flags::UNENCRYPTED,
        Some(Misbehaviour::WrongKey) => key = b"not-the-test-key",
        Some(Misbehaviour::Garbage) => {
            // Status 0x01 (PASS / PASS_ADD), then a server_msg_len of 65535 in a 13-octet body.
            let mut body = *b"\x01\x00\xff\xff\xff\xffgarbage";
            portcullis_protocol::tacacs::apply_pad(
                key,
                header.session_id,
                header.version,
                header.seq_no,
                &mut body,
            );
            let mut out = vec![0u8; HEADER_LEN];
            Header {
                length: body.len() as u32,
                ..header
            }
            .emit(&mut out)
            .expect("header fits");
            out.extend_from_slice(&body);
            return out;
        }
        _ => {}
    }
    let len = body.body_len().expect("reply body fits its length fields");
    let mut out = vec![0u8; HEADER_LEN + len];
    let written = emit_packet(&mut out, &header, body, key).expect("reply fits");
    out.truncate(written);
    out
}
