use std::sync::Arc;

use portcullis_config::Config;
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, Signature, attr_type};

use super::*;
use crate::engine::Engine;
use crate::engine::local::hash_password;

const SECRET: &str = "frontend-unit-secret";

fn live(extra: &str) -> Arc<Live> {
    let hash = hash_password(b"pw").expect("hash");
    let text = format!(
        r#"
[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.0/8"
secret = "{SECRET}"

[[radius_frontend.clients]]
id = 2
name = "host"
address = "127.0.0.9"
secret = "another-secret-of-16"
require_message_authenticator = "yes"

[[local_users]]
name = "alice"
password_hash = "{hash}"
roles = ["Administrator", "Operator"]
{extra}
"#
    );
    let config = Config::from_toml(&text).expect("valid").config;
    let engine = Engine::new(&config).expect("engine");
    Arc::new(Live { config, engine })
}

fn frontend(live: Arc<Live>) -> Arc<Frontend> {
    Frontend::new(Arc::new(move || Arc::clone(&live)), None, None)
}

fn source(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 40_000))
}

/// An Access-Request (or Status-Server) with the given extras.
fn request(
    code: Code,
    id: u8,
    secret: &str,
    signed: bool,
    build: impl FnOnce(&mut Builder<'_>, &Secret<&[u8]>),
) -> Vec<u8> {
    let secret = Secret::new(secret.as_bytes());
    let mut buf = [0u8; 4096];
    let mut builder = Builder::new(&mut buf, code, id, &[id ^ 0x5a; 16]).expect("header");
    if signed {
        builder.message_authenticator().expect("ma");
    }
    build(&mut builder, &secret);
    let len = builder.finish_request(&secret).expect("finish");
    buf[..len].to_vec()
}

fn pap(id: u8, user: &str, password: &str, signed: bool) -> Vec<u8> {
    request(Code::AccessRequest, id, SECRET, signed, |b, s| {
        b.attribute(attr_type::USER_NAME, user.as_bytes())
            .expect("name");
        b.user_password(password.as_bytes(), s).expect("password");
    })
}

/// Parses and verifies a reply to `request`.
fn verified(reply: &[u8], request: &[u8], secret: &str) -> Packet<Vec<u8>> {
    let request = Packet::new_checked(request).expect("request");
    let packet = Packet::new_checked(reply.to_vec()).expect("reply parses");
    let signature = packet
        .verify_reply(&request.authenticator(), &Secret::new(secret.as_bytes()))
        .expect("reply verifies");
    assert_eq!(signature, Signature::Signed);
    // Message-Authenticator first.
    let first = packet.attributes().next().expect("an attribute");
    assert_eq!(first.typ(), attr_type::MESSAGE_AUTHENTICATOR);
    assert_eq!(packet.identifier(), request.identifier());
    packet
}

fn sent(action: Action) -> Arc<[u8]> {
    match action {
        Action::Send(reply) => reply,
        Action::Drop(reason) => panic!("dropped: {reason:?}"),
        Action::Walk(_) => panic!("walk"),
    }
}

fn dropped(action: Action) -> DropReason {
    match action {
        Action::Drop(reason) => reason,
        _ => panic!("not dropped"),
    }
}

#[test]
fn unknown_sources_and_garbage_are_dropped() {
    let fe = frontend(live(""));
    let datagram = pap(1, "alice", "pw", true);
    let outside = SocketAddr::from(([192, 0, 2, 1], 1812));
    assert_eq!(
        dropped(fe.handle(&datagram, outside)),
        DropReason::UnknownClient
    );
    assert_eq!(
        dropped(fe.handle(&datagram[..19], source(1))),
        DropReason::Malformed
    );
    let mut accounting = datagram.clone();
    accounting[0] = 4;
    assert_eq!(
        dropped(fe.handle(&accounting, source(1))),
        DropReason::UnsupportedCode
    );
    // Every prefix and a pile of pseudo-random octets: no panic.
    let mut state = 0x1234_5678u32;
    for len in 0..datagram.len() {
        let _ = fe.handle(&datagram[..len], source(1));
    }
    for _ in 0..2000 {
        let mut bytes = datagram.clone();
        for byte in bytes.iter_mut().skip(20) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if state % 7 == 0 {
                *byte = state as u8;
            }
        }
        let _ = fe.handle(&bytes, source(1));
    }
    assert_eq!(fe.counters().dropped(DropReason::UnknownClient), 1);
    assert!(fe.counters().requests.load(Ordering::Relaxed) > 2000);
}

#[test]
fn longest_prefix_wins() {
    let fe = frontend(live(""));
    // 127.0.0.9 is client 2, which requires a signature and has another secret.
    let unsigned = pap(1, "alice", "pw", false);
    assert_eq!(
        dropped(fe.handle(&unsigned, source(9))),
        DropReason::MissingMessageAuthenticator
    );
    let signed = pap(2, "alice", "pw", true);
    assert_eq!(
        dropped(fe.handle(&signed, source(9))),
        DropReason::BadMessageAuthenticator
    );
    assert!(matches!(fe.handle(&signed, source(8)), Action::Walk(_)));
}

#[test]
fn status_server_needs_a_signature_and_gets_a_signed_accept() {
    let fe = frontend(live(""));
    let unsigned = request(Code::StatusServer, 7, SECRET, false, |_, _| {});
    assert_eq!(
        dropped(fe.handle(&unsigned, source(1))),
        DropReason::MissingMessageAuthenticator
    );
    let status = request(Code::StatusServer, 8, SECRET, true, |_, _| {});
    let reply = sent(fe.handle(&status, source(1)));
    let packet = verified(&reply, &status, SECRET);
    assert_eq!(packet.code(), Code::AccessAccept);
    assert_eq!(fe.counters().status_server.load(Ordering::Relaxed), 1);
}

#[test]
fn unsigned_proxy_state_is_dropped_and_auto_learns() {
    let fe = frontend(live(""));
    let proxied = request(Code::AccessRequest, 1, SECRET, false, |b, s| {
        b.attribute(attr_type::USER_NAME, b"alice").expect("name");
        b.user_password(b"pw", s).expect("password");
        b.attribute(attr_type::PROXY_STATE, b"ps").expect("ps");
    });
    assert_eq!(
        dropped(fe.handle(&proxied, source(1))),
        DropReason::UnsignedProxyState
    );
    // auto: unsigned is fine until the client signs once.
    assert!(matches!(
        fe.handle(&pap(2, "alice", "pw", false), source(1)),
        Action::Walk(_)
    ));
    assert!(matches!(
        fe.handle(&pap(3, "alice", "pw", true), source(1)),
        Action::Walk(_)
    ));
    assert_eq!(
        dropped(fe.handle(&pap(4, "alice", "pw", false), source(1))),
        DropReason::MissingMessageAuthenticator
    );
}

#[test]
fn chap_is_rejected_with_proxy_states_echoed_and_retransmissions_cached() {
    let fe = frontend(live(""));
    let chap = request(Code::AccessRequest, 9, SECRET, true, |b, _| {
        b.attribute(attr_type::USER_NAME, b"alice").expect("name");
        b.chap_password(1, &[0x11; 16]).expect("chap");
        b.attribute(attr_type::PROXY_STATE, b"first").expect("ps");
        b.attribute(attr_type::PROXY_STATE, b"second").expect("ps");
    });
    let reply = sent(fe.handle(&chap, source(1)));
    let packet = verified(&reply, &chap, SECRET);
    assert_eq!(packet.code(), Code::AccessReject);
    let messages: Vec<&[u8]> = packet.find_all(attr_type::REPLY_MESSAGE).collect();
    assert_eq!(messages, [CHAP_UNSUPPORTED.as_bytes()]);
    let states: Vec<&[u8]> = packet.find_all(attr_type::PROXY_STATE).collect();
    assert_eq!(states, [&b"first"[..], &b"second"[..]]);
    let again = sent(fe.handle(&chap, source(1)));
    assert_eq!(again, reply);
    assert_eq!(fe.counters().duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(fe.counters().rejects.load(Ordering::Relaxed), 1);
    // The same octets from another port are another request.
    let other = SocketAddr::from(([127, 0, 0, 1], 40_001));
    assert!(matches!(fe.handle(&chap, other), Action::Send(_)));
    assert_eq!(fe.counters().duplicates.load(Ordering::Relaxed), 1);
}

#[test]
fn a_retransmission_during_the_walk_is_dropped() {
    let fe = frontend(live(""));
    let datagram = pap(1, "alice", "pw", true);
    let Action::Walk(walk) = fe.handle(&datagram, source(1)) else {
        panic!("expected a walk");
    };
    assert_eq!(
        dropped(fe.handle(&datagram, source(1))),
        DropReason::DuplicateInFlight
    );
    drop(walk);
}

#[test]
fn over_max_in_flight_is_dropped_and_forgotten() {
    let fe = frontend(live("[radius_frontend]\nmax_in_flight = 1\n"));
    let Action::Walk(first) = fe.handle(&pap(1, "alice", "pw", true), source(1)) else {
        panic!("expected a walk");
    };
    let second = pap(2, "alice", "pw", true);
    assert_eq!(
        dropped(fe.handle(&second, source(1))),
        DropReason::Overloaded
    );
    drop(first);
    // The dropped request was not remembered: its retransmission is walked.
    assert!(matches!(fe.handle(&second, source(1)), Action::Walk(_)));
}

#[tokio::test]
async fn walks_reply_with_roles_over_udp() {
    let fe = frontend(live(""));
    let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Arc::clone(&fe).serve(server, async move {
        let _ = stopped.await;
    }));
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut buf = [0u8; 4096];
    for (id, password, code) in [
        (1, "pw", Code::AccessAccept),
        (2, "wrong", Code::AccessReject),
    ] {
        let datagram = pap(id, "alice", password, true);
        client.send_to(&datagram, addr).await.expect("send");
        let (len, _) = tokio::time::timeout(Duration::from_secs(10), client.recv_from(&mut buf))
            .await
            .expect("a reply in time")
            .expect("recv");
        let packet = verified(&buf[..len], &datagram, SECRET);
        assert_eq!(packet.code(), code);
        if code == Code::AccessAccept {
            let classes: Vec<&[u8]> = packet.find_all(attr_type::CLASS).collect();
            assert_eq!(classes, [&b"Administrator"[..], &b"Operator"[..]]);
        } else {
            let messages: Vec<&[u8]> = packet.find_all(attr_type::REPLY_MESSAGE).collect();
            assert_eq!(messages, [INVALID_CREDENTIALS.as_bytes()]);
        }
    }
    assert_eq!(fe.counters().walks.load(Ordering::Relaxed), 2);
    assert_eq!(fe.counters().accepts.load(Ordering::Relaxed), 1);
    // The stop ends the receive loop; nothing is left in flight.
    stop.send(()).expect("serving");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the loop ends on stop")
        .expect("no panic");
    assert_eq!(fe.drain(Duration::from_secs(1)).await, 0);
}

#[test]
fn vendor_role_attribute() {
    let request = RequestInfo {
        v11: false,
        identifier: 3,
        authenticator: [1; 16],
        proxy_states: Vec::new(),
    };
    let secret = Secret::new(SECRET.as_bytes().to_vec());
    let roles = vec!["Administrator".to_string(), "x".repeat(250)];
    let reply = build_reply(
        &request,
        &secret,
        &Reply::Accept(
            &roles,
            RoleAttribute::Vendor {
                vendor: 17164,
                vendor_type: 5,
            },
        ),
    )
    .expect("builds");
    let packet = Packet::new_checked(&reply[..]).expect("parses");
    let vsas: Vec<(u32, u8, Vec<u8>)> = packet
        .vendor_specific()
        .flat_map(|vsa| {
            vsa.sub_attributes()
                .into_iter()
                .flatten()
                .map(move |sub| (vsa.vendor_id(), sub.vendor_type, sub.value.to_vec()))
        })
        .collect();
    // The role too long for a sub-attribute is left out.
    assert_eq!(vsas, [(17164, 5, b"Administrator".to_vec())]);
    assert!(packet.find(attr_type::CLASS).is_none());
}

#[test]
fn inline_fields_hold_up_to_their_size_and_hide_their_octets() {
    let password = Inline::<8>::new(b"secret").expect("fits");
    assert_eq!(password.as_slice(), b"secret");
    assert_eq!(format!("{password:?}"), "[6 octets]");
    assert!(Inline::<8>::new(b"").is_some_and(|empty| empty.as_slice().is_empty()));
    assert!(Inline::<8>::new(b"too-long!").is_none());
}
