//! The RADIUS front-end of the real daemon, driven by real RADIUS clients over loopback:
//! radclient and radtest (freeradius-utils), pyrad, and requests built with the protocol
//! crate for what the tools cannot do (exact retransmissions, forged or unsigned packets).
//! The end-to-end test chains radclient -> portcullis -> FreeRADIUS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis::frontend::{CHAP_UNSUPPORTED, INVALID_CREDENTIALS};
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, Signature, attr_type};
use support::daemon::Daemon;
use support::freeradius::{ALICE_PASSWORD, DEFAULT_SECRET, FreeRadius, TEST_DICTIONARY};
use support::pam::PamService;

/// The front-end client secret of 127.0.0.1.
const SECRET: &str = "frontend-test-secret-16";
/// The local user's password.
const PASSWORD: &str = "alice-local-password";
/// Upper bound on one radclient / radtest / python run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Local user `alice` with two roles, client 127.0.0.1, and `extra` TOML.
fn config(extra: &str) -> String {
    let hash = hash_password(PASSWORD.as_bytes()).unwrap();
    format!(
        r#"
[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[[local_users]]
name = "alice"
password_hash = "{hash}"
roles = ["Administrator", "Operator"]
{extra}
"#
    )
}

fn radius_addr(daemon: &Daemon) -> SocketAddr {
    daemon.radius_addr.expect("the RADIUS front-end listens")
}

/// A directory whose `dictionary` defines the test vendor, for `radclient -d`.
fn dictionary_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dictionary"), TEST_DICTIONARY).unwrap();
    dir
}

/// `radclient -x -d <dir> -t 2 -r 1 <addr> <command> <SECRET>` with `input` on stdin.
fn radclient(
    dir: &Path,
    addr: SocketAddr,
    command: &str,
    input: &str,
) -> support::freeradius::ClientOutput {
    let mut cmd = Command::new("radclient");
    cmd.arg("-x")
        .arg("-d")
        .arg(dir)
        .args(["-t", "2", "-r", "1"])
        .arg(addr.to_string())
        .arg(command)
        .arg(SECRET);
    support::freeradius::run_bounded(&mut cmd, input, CLIENT_TIMEOUT)
}

/// Hex form radclient prints for an `octets` attribute such as Class.
fn octets(text: &str) -> String {
    format!("0x{}", hex::encode(text))
}

/// An Access-Request for `user` / `password` built with the protocol crate: PAP, signed when
/// `signed`, with the given Proxy-States.
fn access_request(
    id: u8,
    authenticator: [u8; 16],
    user: &str,
    password: &str,
    secret: &str,
    signed: bool,
    proxy_states: &[&[u8]],
) -> Vec<u8> {
    let secret = Secret::new(secret.as_bytes());
    let mut buf = [0u8; 4096];
    let mut builder = Builder::new(&mut buf, Code::AccessRequest, id, &authenticator).unwrap();
    if signed {
        builder.message_authenticator().unwrap();
    }
    builder
        .attribute(attr_type::USER_NAME, user.as_bytes())
        .unwrap();
    builder.user_password(password.as_bytes(), &secret).unwrap();
    for state in proxy_states {
        builder.attribute(attr_type::PROXY_STATE, state).unwrap();
    }
    let len = builder.finish_request(&secret).unwrap();
    buf[..len].to_vec()
}

fn random_authenticator() -> [u8; 16] {
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    authenticator
}

/// A UDP socket on `ip` that waits at most `timeout` per receive.
fn socket(ip: &str, timeout: Duration) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket
}

/// The next datagram, or `None` after the socket's timeout.
fn receive(socket: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    socket.recv(&mut buf).ok().map(|len| buf[..len].to_vec())
}

/// Parses a reply to `request` and checks its Response Authenticator, its
/// Message-Authenticator (present, first) and its Identifier.
fn verified(reply: &[u8], request: &[u8]) -> Packet<Vec<u8>> {
    let request = Packet::new_checked(request).unwrap();
    let packet = Packet::new_checked(reply.to_vec()).unwrap();
    let signature = packet
        .verify_reply(&request.authenticator(), &Secret::new(SECRET.as_bytes()))
        .unwrap();
    assert_eq!(signature, Signature::Signed);
    assert_eq!(
        packet.attributes().next().unwrap().typ(),
        attr_type::MESSAGE_AUTHENTICATOR
    );
    assert_eq!(packet.identifier(), request.identifier());
    packet
}

/// Walks done: each writes one audit line at `info` (`action=radius:<client>`).
fn walks(daemon: &Daemon) -> usize {
    daemon.log().matches("action=radius:").count()
}

/// Walks logged, once the log has caught up with `expected` (it arrives through a reader
/// thread, possibly after the reply) or half a second has passed; then a short settle so an
/// extra walk would show too.
fn walks_settled(daemon: &Daemon, expected: usize) -> usize {
    for _ in 0..25 {
        if walks(daemon) >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Log lines are written in batches, at most 20 ms late.
    std::thread::sleep(Duration::from_millis(100));
    walks(daemon)
}

#[test]
fn radclient_accept_reject_chap_and_status_server() {
    let daemon = Daemon::start(Some(&config("")));
    let addr = radius_addr(&daemon);
    let dir = dictionary_dir();

    let accept = radclient(
        dir.path(),
        addr,
        "auth",
        &format!("User-Name = alice\nUser-Password = {PASSWORD}\n"),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");
    for role in ["Administrator", "Operator"] {
        assert!(
            accept.stdout.contains(&format!("Class = {}", octets(role))),
            "{role}: {accept:?}"
        );
    }
    assert!(
        accept.stdout.contains("Message-Authenticator"),
        "{accept:?}"
    );

    let reject = radclient(
        dir.path(),
        addr,
        "auth",
        "User-Name = alice\nUser-Password = wrong-password\n",
    );
    assert!(reject.received("Access-Reject"), "{reject:?}");
    assert!(
        reject
            .stdout
            .contains(&format!("Reply-Message = \"{INVALID_CREDENTIALS}\"")),
        "{reject:?}"
    );
    // An unknown user gets the very same answer.
    let unknown = radclient(
        dir.path(),
        addr,
        "auth",
        "User-Name = mallory\nUser-Password = whatever\n",
    );
    assert!(unknown.received("Access-Reject"), "{unknown:?}");
    assert!(
        unknown
            .stdout
            .contains(&format!("Reply-Message = \"{INVALID_CREDENTIALS}\"")),
        "{unknown:?}"
    );

    let mut radtest = Command::new("radtest");
    radtest
        .arg("-d")
        .arg(dir.path())
        .args(["-t", "chap", "alice", PASSWORD])
        .arg(addr.to_string())
        .arg("0")
        .arg(SECRET);
    let chap = support::freeradius::run_bounded(&mut radtest, "", CLIENT_TIMEOUT);
    assert!(chap.received("Access-Reject"), "{chap:?}");
    assert!(
        chap.stdout
            .contains(&format!("Reply-Message = \"{CHAP_UNSUPPORTED}\"")),
        "{chap:?}"
    );

    let status = radclient(dir.path(), addr, "status", "Message-Authenticator = 0x00\n");
    assert!(status.received("Access-Accept"), "{status:?}");

    // Three walks: accept, wrong password, unknown user. CHAP and Status-Server walk nothing.
    assert_eq!(walks_settled(&daemon, 3), 3, "{}", daemon.log());
}

/// The pyrad script: logs in as argv[3] with argv[4], prints a JSON line with the reply code,
/// the Class values, the Reply-Messages and whether the Message-Authenticator verifies.
const PYRAD_SCRIPT: &str = r#"
import json, sys
from pyrad.client import Client
from pyrad.dictionary import Dictionary
from pyrad import packet

dictionary, port, user, password, secret = sys.argv[1:6]
client = Client(server="127.0.0.1", authport=int(port), secret=secret.encode(),
                dict=Dictionary(dictionary))
client.timeout = 3
client.retries = 1
request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=user)
request["User-Password"] = request.PwCrypt(password)
request.add_message_authenticator()
reply = client.SendPacket(request)
print(json.dumps({
    "code": reply.code,
    "classes": [c.decode() for c in reply.get("Class", [])],
    "messages": list(reply.get("Reply-Message", [])),
    "signed": reply.message_authenticator is not None
        and reply.verify_message_authenticator(
            original_authenticator=request.authenticator, original_code=request.code),
}))
"#;

/// A dictionary with what the pyrad script needs.
const PYRAD_DICTIONARY: &str = "\
ATTRIBUTE\tUser-Name\t1\tstring
ATTRIBUTE\tUser-Password\t2\tstring
ATTRIBUTE\tReply-Message\t18\tstring
ATTRIBUTE\tClass\t25\toctets
ATTRIBUTE\tProxy-State\t33\toctets
ATTRIBUTE\tMessage-Authenticator\t80\toctets
";

fn pyrad(addr: SocketAddr, user: &str, password: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("login.py");
    let dictionary = dir.path().join("dictionary");
    std::fs::write(&script, PYRAD_SCRIPT).unwrap();
    std::fs::write(&dictionary, PYRAD_DICTIONARY).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(&dictionary)
        .arg(addr.port().to_string())
        .args([user, password, SECRET]);
    let output = support::freeradius::run_bounded(&mut cmd, "", CLIENT_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "pyrad failed (python3 -m pip install pyrad==2.4): {output:?}"
    );
    serde_json::from_str(output.stdout.trim()).unwrap()
}

#[test]
fn pyrad_sees_roles_and_a_valid_message_authenticator() {
    let daemon = Daemon::start(Some(&config("")));
    let addr = radius_addr(&daemon);
    let accept = pyrad(addr, "alice", PASSWORD);
    assert_eq!(accept["code"], 2, "{accept}");
    assert_eq!(
        accept["classes"],
        serde_json::json!(["Administrator", "Operator"])
    );
    assert_eq!(accept["signed"], true, "{accept}");
    let reject = pyrad(addr, "alice", "wrong");
    assert_eq!(reject["code"], 3, "{reject}");
    assert_eq!(reject["messages"], serde_json::json!([INVALID_CREDENTIALS]));
    assert_eq!(reject["signed"], true, "{reject}");
}

#[test]
fn vendor_role_attribute_reaches_radclient() {
    let daemon = Daemon::start(Some(&config(
        "[radius_frontend]\nrole_attribute = { vendor = 17164, vendor_type = 1 }\n",
    )));
    let dir = dictionary_dir();
    let accept = radclient(
        dir.path(),
        radius_addr(&daemon),
        "auth",
        &format!("User-Name = alice\nUser-Password = {PASSWORD}\n"),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");
    for role in ["Administrator", "Operator"] {
        assert!(
            accept
                .stdout
                .contains(&format!("Portcullis-Test-Role = \"{role}\"")),
            "{role}: {accept:?}"
        );
    }
    assert!(!accept.stdout.contains("Class ="), "{accept:?}");
}

#[test]
fn retransmissions_get_the_same_reply_and_one_walk() {
    let daemon = Daemon::start(Some(&config("")));
    let addr = radius_addr(&daemon);
    let client = socket("127.0.0.1", Duration::from_secs(10));

    // Answered, then retransmitted: the cached octets, no second walk.
    let request = access_request(
        7,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        true,
        &[],
    );
    client.send_to(&request, addr).unwrap();
    let first = receive(&client).expect("a reply");
    assert_eq!(verified(&first, &request).code(), Code::AccessAccept);
    client.send_to(&request, addr).unwrap();
    let second = receive(&client).expect("the cached reply");
    assert_eq!(first, second);
    assert_eq!(walks_settled(&daemon, 1), 1, "{}", daemon.log());

    // Retransmitted back to back, likely while the walk runs: still one walk, and every reply
    // sent is the same octets.
    let request = access_request(
        8,
        random_authenticator(),
        "alice",
        "wrong",
        SECRET,
        true,
        &[],
    );
    client.send_to(&request, addr).unwrap();
    client.send_to(&request, addr).unwrap();
    let reply = receive(&client).expect("a reply");
    assert_eq!(verified(&reply, &request).code(), Code::AccessReject);
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Some(again) = receive(&client) {
        assert_eq!(again, reply);
    }
    client.send_to(&request, addr).unwrap();
    assert_eq!(receive(&client).expect("the cached reply"), reply);
    assert_eq!(walks_settled(&daemon, 2), 2, "{}", daemon.log());

    // Same Identifier, new Request Authenticator: a new request.
    let request = access_request(
        8,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        true,
        &[],
    );
    client.send_to(&request, addr).unwrap();
    let reply = receive(&client).expect("a reply");
    assert_eq!(verified(&reply, &request).code(), Code::AccessAccept);
    assert_eq!(walks_settled(&daemon, 3), 3, "{}", daemon.log());
}

#[test]
fn unknown_clients_wrong_secrets_and_unsigned_proxy_state_are_dropped() {
    let daemon = Daemon::start(Some(&config("")));
    let addr = radius_addr(&daemon);
    let quiet = Duration::from_secs(1);

    // 127.0.0.2 is loopback too, but not a configured client.
    let stranger = socket("127.0.0.2", quiet);
    let request = access_request(
        1,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        true,
        &[],
    );
    stranger.send_to(&request, addr).unwrap();
    assert_eq!(receive(&stranger), None);

    let client = socket("127.0.0.1", quiet);
    // A Message-Authenticator made with another secret.
    let forged = access_request(
        2,
        random_authenticator(),
        "alice",
        PASSWORD,
        "not-the-secret-at-all",
        true,
        &[],
    );
    client.send_to(&forged, addr).unwrap();
    assert_eq!(receive(&client), None);

    // Proxy-State without Message-Authenticator (BlastRADIUS).
    let unsigned = access_request(
        3,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        false,
        &[b"proxy-one"],
    );
    client.send_to(&unsigned, addr).unwrap();
    assert_eq!(receive(&client), None);
    assert_eq!(walks_settled(&daemon, 0), 0, "{}", daemon.log());

    // Signed, the same Proxy-States come back in order.
    let signed = access_request(
        4,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        true,
        &[b"proxy-one", b"proxy-two"],
    );
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.send_to(&signed, addr).unwrap();
    let reply = receive(&client).expect("a reply");
    let packet = verified(&reply, &signed);
    assert_eq!(packet.code(), Code::AccessAccept);
    let states: Vec<&[u8]> = packet.find_all(attr_type::PROXY_STATE).collect();
    assert_eq!(states, [&b"proxy-one"[..], &b"proxy-two"[..]]);

    // require_message_authenticator = auto: after one signed request, unsigned ones are
    // dropped.
    let later = access_request(
        5,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        false,
        &[],
    );
    client.set_read_timeout(Some(quiet)).unwrap();
    client.send_to(&later, addr).unwrap();
    assert_eq!(receive(&client), None);
    assert_eq!(walks_settled(&daemon, 1), 1, "{}", daemon.log());
}

#[test]
fn radclient_through_portcullis_to_freeradius_maps_roles() {
    let radius = FreeRadius::start(support::freeradius::DEFAULT_USERS);
    let upstream = format!(
        r#"
[authentication]
current_sequence = 3

[radius.settings]
connection_timeout = 2
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 0
address = "{}"
port = {}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"
"#,
        radius.auth_addr.ip(),
        radius.auth_addr.port()
    );
    // The local user is renamed, so the Local method does not answer for alice.
    let text = config(&upstream).replace("name = \"alice\"", "name = \"localadmin\"");
    let daemon = Daemon::start(Some(&text));
    let dir = dictionary_dir();
    let accept = radclient(
        dir.path(),
        radius_addr(&daemon),
        "auth",
        &format!("User-Name = alice\nUser-Password = {ALICE_PASSWORD}\n"),
    );
    assert!(accept.received("Access-Accept"), "{accept:?}");
    assert!(
        accept
            .stdout
            .contains(&format!("Class = {}", octets("Administrator"))),
        "{accept:?}"
    );
    // FreeRADIUS's own Class "admins" is not passed through: only mapped roles are.
    assert_eq!(accept.stdout.matches("Class = ").count(), 1, "{accept:?}");
    assert!(radius.log().contains("Received Access-Request"));

    let reject = radclient(
        dir.path(),
        radius_addr(&daemon),
        "auth",
        "User-Name = alice\nUser-Password = not-alices-password\n",
    );
    assert!(reject.received("Access-Reject"), "{reject:?}");
    assert!(
        reject
            .stdout
            .contains(&format!("Reply-Message = \"{INVALID_CREDENTIALS}\"")),
        "{reject:?}"
    );

    // CHAP is passed through: FreeRADIUS, which knows alice's password, checks the response
    // radtest made, and the roles come back mapped.
    for (password, expected) in [
        (ALICE_PASSWORD, "Access-Accept"),
        ("wrong", "Access-Reject"),
    ] {
        let mut radtest = Command::new("radtest");
        radtest
            .arg("-d")
            .arg(dir.path())
            .args(["-t", "chap", "alice", password])
            .arg(radius_addr(&daemon).to_string())
            .arg("0")
            .arg(SECRET);
        let chap = support::freeradius::run_bounded(&mut radtest, "", CLIENT_TIMEOUT);
        assert!(chap.received(expected), "{password}: {chap:?}");
        if expected == "Access-Accept" {
            assert!(
                chap.stdout
                    .contains(&format!("Class = {}", octets("Administrator"))),
                "{chap:?}"
            );
        }
    }
    assert!(radius.log().contains("CHAP-Password"), "{}", radius.log());
}

#[test]
fn pam_radius_auth_logs_in_through_the_front_end() {
    let daemon = Daemon::start(Some(&config("")));
    let service = PamService::new(radius_addr(&daemon), SECRET);
    let good = service.authenticate("alice", PASSWORD);
    assert!(
        good.status.is_some_and(|s| s.success()),
        "{good:?}\n{}",
        daemon.log()
    );
    assert!(
        good.stdout.contains("successfully authenticated")
            || good.stderr.contains("successfully authenticated"),
        "{good:?}"
    );
    let bad = service.authenticate("alice", "wrong-password");
    assert!(bad.status.is_some_and(|s| !s.success()), "{bad:?}");
    assert_eq!(walks_settled(&daemon, 2), 2, "{}", daemon.log());
}

#[test]
fn ipv6_listener_and_ipv6_client_network() {
    let v6_client = format!(
        r#"
[[radius_frontend.clients]]
id = 2
name = "loopback-v6"
address = "::1/128"
secret = "{SECRET}"
"#
    );
    let daemon = Daemon::start_with(Some(&config(&v6_client)), &["--radius-listen", "[::1]:0"]);
    let addr: SocketAddr = daemon
        .log()
        .lines()
        .filter_map(|line| line.split("RADIUS front-end listening on ").nth(1))
        .map(|a| a.trim().parse().unwrap())
        .find(SocketAddr::is_ipv6)
        .expect("an IPv6 listener");
    let client = socket("::1", Duration::from_secs(2));
    let request = access_request(
        3,
        random_authenticator(),
        "alice",
        PASSWORD,
        SECRET,
        true,
        &[],
    );
    client.send_to(&request, addr).unwrap();
    let reply = receive(&client).expect("a reply over IPv6");
    assert_eq!(verified(&reply, &request).code(), Code::AccessAccept);
}
