#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The RADIUS client over TLS (RadSec, RFC 6614) against an in-process RadSec responder
//! (rustls): many requests on one connection, no retransmission, a connection the server
//! closes replaced on the next request, a packet with an impossible Length ending the
//! connection, a refused connection followed by a backoff, and certificate checks. FreeRADIUS
//! as a RadSec server is in tests/radsec_freeradius.rs.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::upstream::radius::{
    Answer, AuthProtocol, ClientError, RadiusClient, RequestOptions, Requirement, ServerSpec,
};
use portcullis::upstream::tls::{TlsKeys, tls12_client};
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type, recover_password};
use support::pki::{Pki, Usage, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &[u8] = b"radsec";

/// What the responder does with the n-th request (0-based) of all connections: the packets
/// to write back, and whether to close the connection after them.
type Behaviour = Box<dyn Fn(&[u8], usize) -> (Vec<Vec<u8>>, bool) + Send + Sync>;

struct Responder {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn responder(pki: &Pki, behaviour: Behaviour) -> Responder {
    let cert = pki.issue("radsec-server", &["127.0.0.1"], Usage::Server);
    let config = server_config(
        &cert,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        None,
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let behaviour = Arc::new(behaviour);
    let task = {
        let (connections, requests) = (Arc::clone(&connections), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (acceptor, requests, behaviour) = (
                    acceptor.clone(),
                    Arc::clone(&requests),
                    Arc::clone(&behaviour),
                );
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    loop {
                        let mut head = [0u8; 4];
                        if tls.read_exact(&mut head).await.is_err() {
                            return;
                        }
                        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                        let mut packet = vec![0u8; len];
                        packet[..4].copy_from_slice(&head);
                        if tls.read_exact(&mut packet[4..]).await.is_err() {
                            return;
                        }
                        let nth = {
                            let mut requests = requests.lock().unwrap();
                            requests.push(packet.clone());
                            requests.len() - 1
                        };
                        let (replies, close) = behaviour(&packet, nth);
                        for reply in replies {
                            if tls.write_all(&reply).await.is_err() {
                                return;
                            }
                        }
                        if close {
                            let _ = tls.shutdown().await;
                            return;
                        }
                    }
                });
            }
        })
    };
    Responder {
        addr,
        connections,
        requests,
        task,
    }
}

/// An Access-Accept (or `code`) answering `request`, signed with [`SECRET`].
fn reply(request: &[u8], code: Code) -> Vec<u8> {
    let request = Packet::new_checked(request).unwrap();
    let mut buf = [0u8; 4096];
    let mut b = Builder::new(&mut buf, code, request.identifier(), &[0; 16]).unwrap();
    b.message_authenticator().unwrap();
    b.attribute(attr_type::CLASS, b"admins").unwrap();
    let len = b
        .finish_reply(&request.authenticator(), &Secret::new(SECRET))
        .unwrap();
    buf[..len].to_vec()
}

/// Accepts `alice` with the password `alice-pw`, rejects anything else.
fn checking(request: &[u8], _: usize) -> (Vec<Vec<u8>>, bool) {
    let packet = Packet::new_checked(request).unwrap();
    let name = packet.find_all(attr_type::USER_NAME).next();
    let password = packet
        .find_all(attr_type::USER_PASSWORD)
        .next()
        .map(|hidden| {
            let mut out = [0u8; 128];
            recover_password(
                hidden,
                &Secret::new(SECRET),
                &packet.authenticator(),
                &mut out,
            )
            .unwrap()
            .to_vec()
        });
    let code = if name == Some(&b"alice"[..]) && password.as_deref() == Some(&b"alice-pw"[..]) {
        Code::AccessAccept
    } else {
        Code::AccessReject
    };
    (vec![reply(request, code)], false)
}

fn client(addr: SocketAddr, pki: &Pki) -> RadiusClient {
    let tls = tls12_client(TlsKeys {
        ca: Some(pki.ca_path.to_str().unwrap()),
        server_name: "127.0.0.1",
        certificate: None,
    })
    .unwrap();
    RadiusClient::new(ServerSpec {
        addr,
        secret: Secret::new(SECRET.to_vec().into_boxed_slice()),
        protocol: AuthProtocol::Pap,
        require_message_authenticator: Requirement::Yes,
        tls: Some(tls),
    })
}

fn options(timeout: Duration, tries: u32) -> RequestOptions {
    RequestOptions {
        nas_identifier: Some("gateway".into()),
        use_nas_ip: true,
        nas_ip: None,
        timeout,
        tries,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_logins_share_one_connection() {
    let pki = Pki::new("radsec");
    let server = responder(&pki, Box::new(checking)).await;
    let client = Arc::new(client(server.addr, &pki));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = Arc::clone(&client);
        tasks.push(tokio::spawn(async move {
            let password: &[u8] = if i % 2 == 0 { b"alice-pw" } else { b"wrong" };
            (
                i,
                client
                    .authenticate("alice", password, &options(Duration::from_secs(5), 1))
                    .await,
            )
        }));
    }
    for task in tasks {
        let (i, answer) = task.await.unwrap();
        match (i % 2, answer) {
            (0, Ok(Answer::Accept(_))) | (1, Ok(Answer::Reject(_))) => {}
            (_, answer) => panic!("{i}: {answer:?}"),
        }
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    assert_eq!(server.requests.lock().unwrap().len(), 50);
}

#[tokio::test]
async fn nothing_is_resent_over_tls() {
    let pki = Pki::new("radsec");
    let server = responder(&pki, Box::new(|_, _| (vec![], false))).await;
    let client = client(server.addr, &pki);
    let error = client
        .authenticate(
            "alice",
            b"alice-pw",
            &options(Duration::from_millis(300), 3),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Timeout { tries: 1, .. }),
        "{error:?}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced() {
    let pki = Pki::new("radsec");
    // Answers, then closes the connection.
    let server = responder(
        &pki,
        Box::new(|request, nth| (checking(request, nth).0, true)),
    )
    .await;
    let client = client(server.addr, &pki);
    for _ in 0..3 {
        let answer = client
            .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
            .await;
        // The close may race with the next request: then that request ends early and the
        // next one reconnects. Never an accept that was not the server's.
        match answer {
            Ok(Answer::Accept(_)) | Err(ClientError::Timeout { .. }) => {}
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await;
    assert!(matches!(answer, Ok(Answer::Accept(_))), "{answer:?}");
    assert!(server.connections.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn an_impossible_length_ends_the_connection_and_never_answers() {
    let pki = Pki::new("radsec");
    // The first request gets a header announcing 5000 octets; later ones are answered.
    let server = responder(
        &pki,
        Box::new(|request, nth| {
            if nth == 0 {
                let mut bad = reply(request, Code::AccessAccept);
                bad[2..4].copy_from_slice(&5000u16.to_be_bytes());
                (vec![bad], false)
            } else {
                checking(request, nth)
            }
        }),
    )
    .await;
    let client = client(server.addr, &pki);
    let started = Instant::now();
    let error = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
    // It ended with the connection, not after the timeout.
    assert!(started.elapsed() < Duration::from_secs(4));
    let answer = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await;
    assert!(matches!(answer, Ok(Answer::Accept(_))), "{answer:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connection_is_not_retried_before_the_backoff() {
    let pki = Pki::new("radsec");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let client = client(addr, &pki);
    let first = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(1), 1))
        .await
        .unwrap_err();
    assert!(matches!(first, ClientError::Connect(_)), "{first:?}");
    let second = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(1), 1))
        .await
        .unwrap_err();
    assert!(matches!(second, ClientError::Backoff(_)), "{second:?}");
}

#[tokio::test]
async fn a_server_certificate_of_another_ca_is_refused() {
    let pki = Pki::new("radsec");
    let server = responder(&pki, Box::new(checking)).await;
    let stranger = Pki::new("stranger");
    let client = client(server.addr, &stranger);
    let error = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(2), 1))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Connect(_)), "{error:?}");
    assert!(server.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unanswered_watchdog_closes_the_connection() {
    let pki = Pki::new("radsec");
    // The first probe is answered, the second is not; on a new connection logins are.
    let server = responder(
        &pki,
        Box::new(|request, nth| match nth {
            0 => (vec![reply(request, Code::AccessAccept)], false),
            1 => (vec![], false),
            _ => checking(request, nth),
        }),
    )
    .await;
    let client = client(server.addr, &pki);
    assert!(client.probe(Duration::from_secs(5)).await.unwrap());
    assert!(!client.probe(Duration::from_millis(300)).await.unwrap());
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    // RFC 3539 §3.4: the connection is given up; the login goes on a new one.
    let answer = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await;
    assert!(matches!(answer, Ok(Answer::Accept(_))), "{answer:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests[0][0], u8::from(Code::StatusServer));
    assert_eq!(requests[1][0], u8::from(Code::StatusServer));
}

#[tokio::test]
async fn a_request_that_times_out_gives_up_its_connection() {
    let pki = Pki::new("radsec");
    // The first request gets no answer (the connection stays up); later ones are answered.
    let server = responder(
        &pki,
        Box::new(|request, nth| {
            if nth == 0 {
                (vec![], false)
            } else {
                checking(request, nth)
            }
        }),
    )
    .await;
    let client = client(server.addr, &pki);
    let error = client
        .authenticate(
            "alice",
            b"alice-pw",
            &options(Duration::from_millis(300), 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
    // The next login does not wait on the silent connection: it goes on a new one.
    let answer = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await;
    assert!(matches!(answer, Ok(Answer::Accept(_))), "{answer:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_on_a_live_connection_keeps_the_connection() {
    let pki = Pki::new("radsec");
    // Never answers `slow`; answers everyone else.
    let server = responder(
        &pki,
        Box::new(|request, nth| {
            let packet = Packet::new_checked(request).unwrap();
            if packet.find_all(attr_type::USER_NAME).next() == Some(&b"slow"[..]) {
                (vec![], false)
            } else {
                checking(request, nth)
            }
        }),
    )
    .await;
    let client = Arc::new(client(server.addr, &pki));
    let slow = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            client
                .authenticate("slow", b"x", &options(Duration::from_millis(800), 1))
                .await
        })
    };
    // While `slow` waits, another login on the same connection is answered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await;
    assert!(matches!(answer, Ok(Answer::Accept(_))), "{answer:?}");
    let slow = slow.await.unwrap();
    assert!(matches!(slow, Err(ClientError::Timeout { .. })), "{slow:?}");
    // The connection answered meanwhile: it is kept.
    let answer = client
        .authenticate("alice", b"alice-pw", &options(Duration::from_secs(5), 1))
        .await;
    assert!(matches!(answer, Ok(Answer::Accept(_))), "{answer:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}
