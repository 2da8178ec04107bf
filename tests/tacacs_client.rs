#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The TACACS+ upstream client against the test server of `support::tacacs_server`: PAP and
//! ASCII logins, authorization AV pairs, rejects, and every way a server can misbehave, which
//! must make it unavailable and never produce an accept. The last test checks the test server
//! itself against an independent client, the Python `tacacs_plus` package.

mod support;

use std::io::{self, Read as _};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use portcullis::upstream::tacacs::{
    Answer, ClientError, Key, Protocol, RejectReason, ServerSpec, Stage, TacacsClient,
};
use portcullis_protocol::tacacs::{
    self, AuthenMethod, AuthenService, AuthenType, Flags, SessionError, Version, authen,
};
use support::tacacs_server::{
    Authorization, Config, KEY, Misbehaviour, Received, TacacsServer, User,
};

const CLIENT_PORT: &str = "tty-portcullis";
const REM_ADDR: &str = "192.0.2.10";
const SERVICE: &str = "portcullis";
const TIMEOUT: Duration = Duration::from_millis(300);
/// Slack over the timeout for a loaded machine.
const SLACK: Duration = Duration::from_millis(700);

fn users() -> Vec<User> {
    vec![
        User::new(
            "alice",
            "alice-pw",
            &[("role", "admin"), ("priv-lvl", "15")],
        ),
        User::new("bob", "bob-pw", &[("role", "operator")]).authorization(Authorization::PassRepl),
        User::new("mallory", "mallory-pw", &[("role", "admin")]).authorization(Authorization::Fail),
        User::new("erin", "erin-pw", &[]).authorization(Authorization::Error),
        User::new("fred", "fred-pw", &[]).authorization(Authorization::Follow),
    ]
}

fn client(addr: SocketAddr, protocol: Protocol) -> TacacsClient {
    TacacsClient::new(ServerSpec {
        addr,
        key: Key::new(KEY.as_bytes()),
        protocol,
        client_port: CLIENT_PORT.into(),
        timeout: TIMEOUT,
        tls: None,
    })
}

async fn login(client: &TacacsClient, user: &str, password: &str) -> Result<Answer, ClientError> {
    client
        .authenticate(user, password.as_bytes(), REM_ADDR, SERVICE)
        .await
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Polls the server's record until `done` holds, for at most a second (the server thread
/// may record a packet a moment after the client has moved on).
fn wait_for(server: &TacacsServer, done: impl Fn(&Received) -> bool) -> Received {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let received = server.received();
        if done(&received) || Instant::now() >= deadline {
            return received;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn pap_accept_returns_the_requested_and_added_av_pairs() {
    let server = TacacsServer::start(Config::new(users()));
    let client = client(server.addr(), Protocol::Pap);
    let answer = login(&client, "alice", "alice-pw").await.unwrap();
    assert_eq!(
        answer,
        Answer::Accept {
            // PASS_ADD: the request's service pair, then the server's.
            av_pairs: pairs(&[("service", SERVICE), ("role", "admin"), ("priv-lvl", "15")]),
            server_msg: Some("welcome alice".into()),
        }
    );

    let received = server.received();
    // The server did not agree to Single Connection Mode.
    assert_eq!(received.connections, 2, "one connection per session");
    let [start] = &received.starts[..] else {
        panic!("one START expected: {received:?}");
    };
    // RFC 8907 §4.3: offered on the first packet of every connection.
    assert!(start.header.flags.contains(Flags::SINGLE_CONNECT));
    // RFC 8907 §5.4.2.2: PAP is minor version 1, data is the password.
    assert_eq!(start.header.version, Version::ONE);
    assert_eq!(start.header.seq_no, 1);
    assert!(!start.header.flags.contains(Flags::UNENCRYPTED));
    assert_eq!(start.action, authen::Action::Login);
    assert_eq!(start.authen_type, AuthenType::Pap);
    assert_eq!(start.authen_service, AuthenService::Login);
    assert_eq!(start.priv_lvl, 1);
    assert_eq!(start.user, "alice");
    assert_eq!(start.port, CLIENT_PORT);
    assert_eq!(start.rem_addr, REM_ADDR);
    assert_eq!(start.data, b"alice-pw");
    assert!(received.continues.is_empty());

    let [author] = &received.authorizations[..] else {
        panic!("one authorization REQUEST expected: {received:?}");
    };
    assert_eq!(author.header.version, Version::DEFAULT);
    assert_eq!(author.header.seq_no, 1);
    assert!(!author.header.flags.contains(Flags::UNENCRYPTED));
    assert!(author.header.flags.contains(Flags::SINGLE_CONNECT));
    assert_ne!(author.header.session_id, start.header.session_id);
    assert_eq!(author.authen_method, AuthenMethod::TacacsPlus);
    assert_eq!(author.authen_type, AuthenType::Pap);
    assert_eq!(author.authen_service, AuthenService::Login);
    assert_eq!(author.priv_lvl, 1);
    assert_eq!(author.user, "alice");
    assert_eq!(author.port, CLIENT_PORT);
    assert_eq!(author.rem_addr, REM_ADDR);
    assert_eq!(author.args, ["service=portcullis"]);
}

#[tokio::test]
async fn pass_repl_pairs_replace_the_requested_ones() {
    let server = TacacsServer::start(Config::new(users()));
    let client = client(server.addr(), Protocol::Pap);
    let answer = login(&client, "bob", "bob-pw").await.unwrap();
    assert_eq!(
        answer,
        Answer::Accept {
            av_pairs: pairs(&[("role", "operator")]),
            server_msg: Some("welcome bob".into()),
        }
    );
}

#[tokio::test]
async fn ascii_login_answers_getpass_with_the_password() {
    let server = TacacsServer::start(Config::new(users()));
    let client = client(server.addr(), Protocol::Ascii);
    let answer = login(&client, "alice", "alice-pw").await.unwrap();
    let Answer::Accept { av_pairs, .. } = answer else {
        panic!("expected accept, got {answer:?}");
    };
    assert_eq!(av_pairs[1], ("role".to_string(), "admin".to_string()));

    let received = server.received();
    let [start] = &received.starts[..] else {
        panic!("one START expected: {received:?}");
    };
    // RFC 8907 §5.4.2.1: ASCII is minor version 0 and the START has no data.
    assert_eq!(start.header.version, Version::DEFAULT);
    assert_eq!(start.authen_type, AuthenType::Ascii);
    assert_eq!(start.user, "alice");
    assert_eq!(start.port, CLIENT_PORT);
    assert!(start.data.is_empty());
    let [cont] = &received.continues[..] else {
        panic!("one CONTINUE expected: {received:?}");
    };
    assert_eq!(cont.header.seq_no, 3);
    assert_eq!(cont.header.session_id, start.header.session_id);
    assert_eq!(cont.header.version, Version::DEFAULT);
    assert_eq!(cont.flags, authen::ContinueFlags::empty());
    assert_eq!(cont.user_msg, b"alice-pw");
    assert_eq!(received.authorizations[0].authen_type, AuthenType::Ascii);
}

#[tokio::test]
async fn ascii_login_answers_getuser_then_getpass() {
    let mut config = Config::new(users());
    config.ascii_ask_user = true;
    let server = TacacsServer::start(config);
    let client = client(server.addr(), Protocol::Ascii);
    let answer = login(&client, "alice", "alice-pw").await.unwrap();
    assert!(matches!(answer, Answer::Accept { .. }), "{answer:?}");
    let received = server.received();
    let [user, pass] = &received.continues[..] else {
        panic!("two CONTINUEs expected: {received:?}");
    };
    assert_eq!((user.header.seq_no, &user.user_msg[..]), (3, &b"alice"[..]));
    assert_eq!(
        (pass.header.seq_no, &pass.user_msg[..]),
        (5, &b"alice-pw"[..])
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_rejects() {
    let server = TacacsServer::start(Config::new(users()));
    for protocol in [Protocol::Pap, Protocol::Ascii] {
        let client = client(server.addr(), protocol);
        for (user, password) in [("alice", "wrong"), ("nobody", "alice-pw"), ("alice", "")] {
            let answer = login(&client, user, password).await.unwrap();
            assert_eq!(
                answer,
                Answer::Reject {
                    reason: RejectReason::AuthenticationFailed,
                    server_msg: Some("authentication failed".into()),
                },
                "{protocol:?} {user}/{password}"
            );
        }
    }
    // A failed authentication is never followed by authorization.
    assert!(server.received().authorizations.is_empty());
}

#[tokio::test]
async fn authorization_fail_is_a_reject() {
    let server = TacacsServer::start(Config::new(users()));
    for protocol in [Protocol::Pap, Protocol::Ascii] {
        let client = client(server.addr(), protocol);
        let answer = login(&client, "mallory", "mallory-pw").await.unwrap();
        assert_eq!(
            answer,
            Answer::Reject {
                reason: RejectReason::AuthorizationRefused,
                server_msg: Some("not authorized".into()),
            }
        );
        assert_eq!(
            RejectReason::AuthorizationRefused.to_string(),
            "authorization refused"
        );
    }
}

#[tokio::test]
async fn authorization_error_and_follow_are_unavailable() {
    let server = TacacsServer::start(Config::new(users()));
    let client = client(server.addr(), Protocol::Pap);
    let error = login(&client, "erin", "erin-pw").await;
    assert!(
        matches!(
            &error,
            Err(ClientError::ServerStatus {
                stage: Stage::Authorization,
                status: "ERROR",
                server_msg: Some(msg),
            }) if msg == "authorization error"
        ),
        "{error:?}"
    );
    let follow = login(&client, "fred", "fred-pw").await;
    assert!(
        matches!(
            follow,
            Err(ClientError::ServerStatus {
                stage: Stage::Authorization,
                status: "FOLLOW",
                ..
            })
        ),
        "{follow:?}"
    );
}

#[tokio::test]
async fn reply_fail_is_a_reject_even_with_the_right_password() {
    let mut config = Config::new(users());
    config.authen_misbehaviour = Some(Misbehaviour::ReplyFail);
    let server = TacacsServer::start(config);
    for protocol in [Protocol::Pap, Protocol::Ascii] {
        let answer = login(&client(server.addr(), protocol), "alice", "alice-pw").await;
        assert!(
            matches!(
                answer,
                Ok(Answer::Reject {
                    reason: RejectReason::AuthenticationFailed,
                    ..
                })
            ),
            "{protocol:?}: {answer:?}"
        );
    }
    let mut config = Config::new(users());
    config.author_misbehaviour = Some(Misbehaviour::ReplyFail);
    let server = TacacsServer::start(config);
    let answer = login(&client(server.addr(), Protocol::Pap), "alice", "alice-pw").await;
    assert!(
        matches!(
            answer,
            Ok(Answer::Reject {
                reason: RejectReason::AuthorizationRefused,
                ..
            })
        ),
        "{answer:?}"
    );
}

/// Checks `error` is what `misbehaviour` must produce in `stage`.
fn expected(misbehaviour: Misbehaviour, stage: Stage, error: &ClientError) -> bool {
    use Misbehaviour as M;
    match (misbehaviour, error) {
        (
            M::ReplyError,
            ClientError::ServerStatus {
                stage: s, status, ..
            },
        ) => *s == stage && *status == "ERROR",
        (
            M::ReplyFollow,
            ClientError::ServerStatus {
                stage: s, status, ..
            },
        ) => *s == stage && *status == "FOLLOW",
        (
            M::ReplyRestart,
            ClientError::ServerStatus {
                stage: s, status, ..
            },
        ) => stage == Stage::Authentication && *s == stage && *status == "RESTART",
        (M::ReplyRestart, ClientError::UnexpectedStatus { stage: s, status }) => {
            stage == Stage::Authorization && *s == stage && *status == 0x06
        }
        (M::ReplyUnknownStatus, ClientError::UnexpectedStatus { stage: s, status }) => {
            *s == stage && *status == 0x42
        }
        (M::Reset | M::HalfFrame, ClientError::ConnectionLost { stage: s, .. }) => *s == stage,
        (
            M::Stall,
            ClientError::Timeout {
                stage: s,
                step: "reply",
                timeout,
            },
        ) => *s == stage && *timeout == TIMEOUT,
        (M::Garbage, ClientError::Malformed { stage: s, source }) => {
            *s == stage && matches!(source, tacacs::Error::Overrun(_))
        }
        (M::WrongKey, ClientError::Malformed { stage: s, .. }) => *s == stage,
        (
            M::Unencrypted,
            ClientError::Malformed {
                stage: s,
                source: tacacs::Error::Unencrypted,
            },
        ) => *s == stage,
        (
            M::Oversized,
            ClientError::Malformed {
                stage: s,
                source: tacacs::Error::BodyTooLong { .. },
            },
        ) => *s == stage,
        (
            M::WrongSessionId,
            ClientError::Session {
                stage: s,
                source: SessionError::SessionId { .. },
            },
        ) => *s == stage,
        (
            M::WrongSeqNo,
            ClientError::Session {
                stage: s,
                source:
                    SessionError::SeqNo {
                        expected: 2,
                        found: 4,
                    },
            },
        ) => *s == stage,
        _ => false,
    }
}

#[tokio::test]
async fn every_misbehaviour_makes_the_server_unavailable_within_the_timeout() {
    use Misbehaviour as M;
    let all = [
        M::ReplyError,
        M::ReplyFollow,
        M::ReplyRestart,
        M::ReplyUnknownStatus,
        M::Reset,
        M::HalfFrame,
        M::Stall,
        M::Garbage,
        M::WrongSessionId,
        M::WrongSeqNo,
        M::Unencrypted,
        M::WrongKey,
        M::Oversized,
    ];
    let mut runs = 0;
    for misbehaviour in all {
        for stage in [Stage::Authentication, Stage::Authorization] {
            let mut config = Config::new(users());
            match stage {
                Stage::Authentication => config.authen_misbehaviour = Some(misbehaviour),
                Stage::Authorization => config.author_misbehaviour = Some(misbehaviour),
            }
            let server = TacacsServer::start(config);
            for protocol in [Protocol::Pap, Protocol::Ascii] {
                let client = client(server.addr(), protocol);
                let started = Instant::now();
                let answer = login(&client, "alice", "alice-pw").await;
                let elapsed = started.elapsed();
                let case = format!("{misbehaviour:?} in {stage} ({protocol:?})");
                let Err(error) = answer else {
                    panic!("{case}: the server must be unavailable, got {answer:?}");
                };
                assert!(expected(misbehaviour, stage, &error), "{case}: {error:?}");
                assert!(elapsed < TIMEOUT + SLACK, "{case}: took {elapsed:?}");
                if misbehaviour == M::Stall {
                    assert!(elapsed >= TIMEOUT, "{case}: gave up after {elapsed:?}");
                }
                runs += 1;
            }
        }
    }
    assert_eq!(runs, all.len() * 4);
}

#[tokio::test]
async fn getdata_is_aborted_and_unavailable() {
    let mut config = Config::new(users());
    config.authen_misbehaviour = Some(Misbehaviour::ReplyGetData);
    let server = TacacsServer::start(config);
    let answer = login(&client(server.addr(), Protocol::Ascii), "alice", "alice-pw").await;
    assert!(
        matches!(
            answer,
            Err(ClientError::UnexpectedStatus {
                stage: Stage::Authentication,
                status: 0x03,
            })
        ),
        "{answer:?}"
    );
    // RFC 8907 §5.4.3: a CONTINUE with the ABORT flag ends the session, and never carries the
    // password.
    let received = wait_for(&server, |r| !r.continues.is_empty());
    let [abort] = &received.continues[..] else {
        panic!("one CONTINUE expected: {received:?}");
    };
    assert_eq!(abort.flags, authen::ContinueFlags::ABORT);
    assert_eq!(abort.header.seq_no, 3);
    assert!(abort.user_msg.is_empty());
    assert!(!abort.data.windows(8).any(|w| w == b"alice-pw"));
    assert!(received.authorizations.is_empty());

    // PAP has no dialogue: GETDATA is just wrong.
    let answer = login(&client(server.addr(), Protocol::Pap), "alice", "alice-pw").await;
    assert!(
        matches!(
            answer,
            Err(ClientError::UnexpectedStatus { status: 0x03, .. })
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn endless_prompts_are_cut_off() {
    let mut config = Config::new(users());
    config.authen_misbehaviour = Some(Misbehaviour::EndlessPrompts);
    let server = TacacsServer::start(config);
    let ascii = client(server.addr(), Protocol::Ascii);
    // A prompt after the password is the user's to answer (a token code, a new password):
    // the session is held, and each answer is one CONTINUE, never a loop of the client's own.
    // How many rounds a login may take is the login pipeline's limit (tests/upstream_*.rs).
    let answer = login(&ascii, "alice", "alice-pw").await;
    let Ok(Answer::Challenge { held, echo, .. }) = answer else {
        panic!("a held prompt expected: {answer:?}");
    };
    assert!(!echo, "GETPASS carries NOECHO");
    let again = ascii.continue_login(held.take().unwrap(), b"answer").await;
    let Ok(Answer::Challenge { held: next, .. }) = again else {
        panic!("another held prompt expected: {again:?}");
    };
    assert!(held.take().is_none(), "a held session is answered once");
    drop(next);
    let received = wait_for(&server, |r| r.continues.len() >= 2);
    let answers: Vec<&[u8]> = received.continues.iter().map(|c| &c.user_msg[..]).collect();
    assert_eq!(answers, [&b"alice-pw"[..], &b"answer"[..]]);
    assert!(received.authorizations.is_empty());

    // A PAP START answered with GETPASS: PAP has no dialogue.
    let answer = login(&client(server.addr(), Protocol::Pap), "alice", "alice-pw").await;
    assert!(
        matches!(
            answer,
            Err(ClientError::UnexpectedStatus { status: 0x05, .. })
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn connection_refused_fails_fast() {
    // A port that was just free: nothing listens there.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let client = client(addr, Protocol::Pap);
    let started = Instant::now();
    let answer = login(&client, "alice", "alice-pw").await;
    assert!(matches!(answer, Err(ClientError::Connect(_))), "{answer:?}");
    assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_use_distinct_sessions() {
    let server = TacacsServer::start(Config::new(users()));
    let client = Arc::new(client(server.addr(), Protocol::Ascii));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let (user, password) = if i % 2 == 0 {
                ("alice", "alice-pw")
            } else {
                ("bob", "wrong")
            };
            (i, login(&client, user, password).await)
        }));
    }
    for task in tasks {
        let (i, answer) = task.await.unwrap();
        if i % 2 == 0 {
            assert!(matches!(answer, Ok(Answer::Accept { .. })), "{answer:?}");
        } else {
            assert!(matches!(answer, Ok(Answer::Reject { .. })), "{answer:?}");
        }
    }
    let received = server.received();
    let mut ids: Vec<u32> = received
        .starts
        .iter()
        .map(|s| s.header.session_id)
        .chain(received.authorizations.iter().map(|a| a.header.session_id))
        .collect();
    assert_eq!(ids.len(), 30);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 30, "session_ids must not repeat");
}

fn single_connect(users: Vec<User>) -> Config {
    Config {
        single_connect: true,
        ..Config::new(users)
    }
}

#[tokio::test]
async fn single_connect_carries_every_session_over_one_connection() {
    for protocol in [Protocol::Pap, Protocol::Ascii] {
        let server = TacacsServer::start(single_connect(users()));
        let client = client(server.addr(), protocol);
        for _ in 0..5 {
            let answer = login(&client, "alice", "alice-pw").await.unwrap();
            assert!(matches!(answer, Answer::Accept { .. }), "{answer:?}");
            let answer = login(&client, "bob", "wrong").await.unwrap();
            assert!(matches!(answer, Answer::Reject { .. }), "{answer:?}");
        }
        let received = server.received();
        // 10 authentications and 5 authorizations, one connection.
        assert_eq!(received.connections, 1, "{protocol:?}: {received:?}");
        assert_eq!(received.starts.len(), 10);
        assert_eq!(received.authorizations.len(), 5);
        let mut ids: Vec<u32> = received
            .starts
            .iter()
            .map(|s| s.header.session_id)
            .chain(received.authorizations.iter().map(|a| a.header.session_id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 15, "each session has its own session_id");
    }
}

#[tokio::test]
async fn a_held_prompt_and_its_authorization_stay_on_the_kept_connection() {
    let server = TacacsServer::start(Config {
        token: Some("246810".into()),
        ..single_connect(users())
    });
    let client = client(server.addr(), Protocol::Ascii);
    let Answer::Challenge { held, .. } = login(&client, "alice", "alice-pw").await.unwrap() else {
        panic!("a prompt for the token expected");
    };
    let answer = client
        .continue_login(held.take().unwrap(), b"246810")
        .await
        .unwrap();
    assert!(matches!(answer, Answer::Accept { .. }), "{answer:?}");
    // The next login goes over the same connection.
    let Answer::Challenge { held, .. } = login(&client, "alice", "alice-pw").await.unwrap() else {
        panic!("a prompt for the token expected");
    };
    let answer = client
        .continue_login(held.take().unwrap(), b"000000")
        .await
        .unwrap();
    assert!(matches!(answer, Answer::Reject { .. }), "{answer:?}");
    let received = server.received();
    assert_eq!(received.connections, 1, "{received:?}");
    assert_eq!(received.starts.len(), 2);
    assert_eq!(received.authorizations.len(), 1);
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_costs_no_login() {
    // The server agrees to keep connections but closes each one, unanswered, when a third
    // session begins on it: every second login finds its kept connection closed.
    let server = TacacsServer::start(Config {
        sessions_per_connection: Some(2),
        ..single_connect(users())
    });
    for protocol in [Protocol::Pap, Protocol::Ascii] {
        let client = client(server.addr(), protocol);
        for _ in 0..4 {
            let answer = login(&client, "alice", "alice-pw").await.unwrap();
            assert!(matches!(answer, Answer::Accept { .. }), "{answer:?}");
        }
    }
    let received = server.received();
    // Per client: a connection per login (authentication + authorization), the last three
    // opened after the kept one was closed.
    assert_eq!(received.connections, 8, "{received:?}");
    assert_eq!(received.starts.len(), 8);
    assert_eq!(received.authorizations.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_share_a_bounded_pool_of_kept_connections() {
    // The first round's 16 logins are held until 16 connections are open, so they overlap
    // however the tasks are scheduled.
    let server = TacacsServer::start(Config {
        hold_until_connections: Some(16),
        ..single_connect(users())
    });
    let client = Arc::new(client(server.addr(), Protocol::Pap));
    for round in 0..3 {
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let client = Arc::clone(&client);
            tasks.push(tokio::spawn(async move {
                login(&client, "alice", "alice-pw").await
            }));
        }
        for task in tasks {
            let answer = task.await.unwrap();
            assert!(
                matches!(answer, Ok(Answer::Accept { .. })),
                "{round}: {answer:?}"
            );
        }
    }
    let received = server.received();
    assert_eq!(received.starts.len(), 48);
    assert_eq!(received.authorizations.len(), 48);
    // At most 16 at once; later rounds reuse the kept ones and open the rest anew.
    assert!(received.connections >= 16, "{received:?}");
    assert!(
        received.connections < 96,
        "kept connections must be reused: {}",
        received.connections
    );
    // After the rounds, at most MAX_IDLE are kept.
    let kept = format!("{client:?}");
    assert!(
        kept.contains(&format!("idle: {}", portcullis::upstream::tacacs::MAX_IDLE)),
        "{kept}"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, from the first call on: a global subscriber, because a
/// scoped one races with the callsite interest cache of tests running on other threads.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    }))
}

#[tokio::test]
async fn logs_never_carry_the_password_or_the_key() {
    let buffer = captured_logs();
    let server = TacacsServer::start(Config::new(users()));
    let pap = client(server.addr(), Protocol::Pap);
    let ascii = client(server.addr(), Protocol::Ascii);
    assert!(matches!(
        login(&pap, "alice", "alice-pw").await,
        Ok(Answer::Accept { .. })
    ));
    assert!(matches!(
        login(&ascii, "alice", "alice-pw").await,
        Ok(Answer::Accept { .. })
    ));
    assert!(matches!(
        login(&pap, "alice", "guessed-pw").await,
        Ok(Answer::Reject { .. })
    ));
    let mut config = Config::new(users());
    config.authen_misbehaviour = Some(Misbehaviour::WrongKey);
    let bad = TacacsServer::start(config);
    assert!(
        login(&client(bad.addr(), Protocol::Ascii), "alice", "alice-pw")
            .await
            .is_err()
    );
    // The key is only ever printed redacted.
    let spec = format!("{:?}", pap.spec());
    assert!(spec.contains("Key(****)") && !spec.contains(KEY), "{spec}");

    let logs = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TACACS+ accept"), "{logs}");
    assert!(logs.contains("TACACS+ reject"), "{logs}");
    assert!(logs.contains("unavailable"), "{logs}");
    for secret in ["alice-pw", "guessed-pw", KEY] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// The test server against an independent implementation: the Python `tacacs_plus` client
/// runs PAP and ASCII logins and authorizations (tests/support/tacacs_peer.py). Needs python3
/// and `python3 -m pip install tacacs_plus==2.6`; fails without them.
#[test]
fn python_tacacs_plus_client_agrees_with_the_test_server() {
    let server = TacacsServer::start(Config::new(users()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/tacacs_peer.py");
    let addr = server.addr();
    let mut child = Command::new("python3")
        .arg(script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test (apt-get install python3)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tacacs_peer.py did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "tacacs_peer.py failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(passed, 9, "{stdout}");

    // What the independent client sent, as the test server read it.
    let received = server.received();
    assert_eq!(received.malformed, 0, "{received:?}");
    assert_eq!(received.starts.len(), 5, "{received:?}");
    for start in &received.starts {
        assert_eq!(start.port, "peer-tty7");
        assert_eq!(start.rem_addr, "198.51.100.9");
        let version = match start.authen_type {
            AuthenType::Pap => Version::ONE,
            _ => Version::DEFAULT,
        };
        assert_eq!(start.header.version, version, "{start:?}");
    }
    let passwords: Vec<&[u8]> = received.continues.iter().map(|c| &c.user_msg[..]).collect();
    assert_eq!(passwords, [&b"alice-pw"[..], b"nope"]);
    assert_eq!(received.authorizations.len(), 2);
    for author in &received.authorizations {
        assert_eq!(author.args, ["service=portcullis"]);
        assert_eq!(author.authen_method, AuthenMethod::TacacsPlus);
    }
}
