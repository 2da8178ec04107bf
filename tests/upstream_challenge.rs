//! An upstream RADIUS server that answers with an Access-Challenge (RFC 2865 §4.4), relayed
//! through the real daemon to its users: FreeRADIUS asks `carol` for a token code after her
//! password, then for a PIN, and accepts her after both. Through the REST login (partial
//! tokens and `challenge` prompts) and through the RADIUS front-end (radclient answering
//! Access-Challenges with the gateway's State), with wrong answers, spent handles and the
//! audit trail of every round. And logins waiting on a slow upstream (a push-style MFA proxy
//! waiting for approval) hold nothing that other logins need.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::{ADMIN_PASSWORD, Auth, Daemon};
use support::freeradius::{
    ClientOutput, DEFAULT_SECRET, DEFAULT_USERS, FreeRadius, TEST_DICTIONARY,
};

/// The front-end client secret of 127.0.0.1.
const SECRET: &str = "challenge-test-secret-16";
/// Upper bound on one radclient run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

const PASSWORD: &str = "carol-password";
const TOKEN_PROMPT: &str = "Enter the code from your token";
const TOKEN: &str = "123456";
const PIN_PROMPT: &str = "Now enter your PIN";
const PIN: &str = "4321";

/// FreeRADIUS's side: `carol` gets two challenges (token code, PIN), each with its own
/// State, then an Access-Accept with the test vendor's role attribute; a wrong answer at any
/// step is an Access-Reject.
const POLICY: &str = r#"
		if (&User-Name == "carol") {
			if (!&State) {
				if (&User-Password == "carol-password") {
					update reply {
						&Reply-Message := "Enter the code from your token"
						&State := "round-1"
					}
					update control {
						&Response-Packet-Type := Access-Challenge
					}
					handled
				}
				reject
			}
			elsif (&State == "round-1") {
				if (&User-Password == "123456") {
					update reply {
						&Reply-Message := "Now enter your PIN"
						&State := "round-2"
					}
					update control {
						&Response-Packet-Type := Access-Challenge
					}
					handled
				}
				reject
			}
			elsif (&State == "round-2") {
				if (&User-Password == "4321") {
					update reply {
						&Portcullis-Test-Role := "2"
					}
					update control {
						&Auth-Type := Accept
					}
					# Past the users file, whose DEFAULT entry rejects.
					return
				}
				else {
					reject
				}
			}
			else {
				reject
			}
		}
"#;

fn config(upstream: std::net::SocketAddr) -> String {
    let hash = portcullis::engine::local::hash_password(ADMIN_PASSWORD.as_bytes()).unwrap();
    format!(
        r#"
[authentication]
current_sequence = 3

[radius.settings]
connection_timeout = 2
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 1
address = "{ip}"
port = {port}
secret = "{DEFAULT_SECRET}"

[[radius.role_mappings]]
role = "Administrator"
attribute = 17164
attribute_value = "2"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{SECRET}"

[[local_users]]
name = "admin"
password_hash = "{hash}"
roles = ["Administrator"]
"#,
        ip = upstream.ip(),
        port = upstream.port()
    )
}

fn start() -> (FreeRadius, Daemon) {
    let radius = FreeRadius::start_with_policy(DEFAULT_USERS, DEFAULT_SECRET, POLICY);
    let daemon = Daemon::start(Some(&config(radius.auth_addr)));
    (radius, daemon)
}

fn rest_login(daemon: &Daemon, password: &str) -> support::daemon::Answer {
    daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "carol", "password": password}).to_string()),
    )
}

fn rest_answer(daemon: &Daemon, token: &str, code: &str) -> support::daemon::Answer {
    daemon.request(
        "POST",
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(token),
        Some(&json!({ "code": code }).to_string()),
    )
}

/// A challenge answer's token, after checking it is one with `prompt`.
fn challenged(answer: &support::daemon::Answer, prompt: &str) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["needTwoFactorAuth"], true, "{body}");
    assert_eq!(body["challenge"]["message"], prompt, "{body}");
    assert_eq!(body["challenge"]["echo"], false, "{body}");
    assert_eq!(body["roles"], json!([]), "{body}");
    body["token"].as_str().unwrap().to_string()
}

fn radius_request(daemon: &Daemon, password: &str, state: Option<&str>) -> ClientOutput {
    radius_request_from(daemon, "127.0.0.1", password, state)
}

/// [`radius_request`] sent from the loopback address `source`.
fn radius_request_from(
    daemon: &Daemon,
    source: &str,
    password: &str,
    state: Option<&str>,
) -> ClientOutput {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dictionary"), TEST_DICTIONARY).unwrap();
    let state = state.map_or(String::new(), |s| format!("State = {s}\n"));
    support::freeradius::radclient_auth(
        dir.path(),
        daemon.radius_addr.expect("the RADIUS front-end listens"),
        SECRET,
        &format!(
            "Packet-Src-IP-Address = {source}\nUser-Name = carol\nUser-Password = {password}\n\
             {state}"
        ),
        CLIENT_TIMEOUT,
    )
}

/// The login events of `carol`, once there are `count` of them, oldest first.
fn events(daemon: &Daemon, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = daemon.request(
            "GET",
            "/api/audit/1.0/events?kind=login&user=carol",
            Auth::Basic("admin", ADMIN_PASSWORD),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let mut events = answer.json()["events"].as_array().unwrap().clone();
        if events.len() >= count {
            events.reverse();
            return events;
        }
        assert!(Instant::now() < deadline, "{count} events: {events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_two_round_dialogue_through_the_rest_login() {
    let (radius, daemon) = start();

    let first = challenged(&rest_login(&daemon, PASSWORD), TOKEN_PROMPT);
    // A challenge's token is no session.
    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(&first), None);
    assert_eq!(session.status, 401, "{}", session.body);

    let second = challenged(&rest_answer(&daemon, &first, TOKEN), PIN_PROMPT);
    // Each token answers once: the first is spent.
    let replayed = rest_answer(&daemon, &first, TOKEN);
    assert_eq!(replayed.status, 401, "{}", replayed.body);

    let done = rest_answer(&daemon, &second, PIN);
    assert_eq!(done.status, 200, "{}", done.body);
    let body = done.json();
    assert_eq!(body["needTwoFactorAuth"], false, "{body}");
    assert_eq!(body["roles"], json!(["Administrator"]), "{body}");
    assert_eq!(body["method"], "RADIUS", "{body}");
    assert_eq!(body["server"], radius.auth_addr.to_string(), "{body}");
    assert!(body.get("challenge").is_none(), "{body}");
    let token = body["token"].as_str().unwrap();
    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(token), None);
    assert_eq!(session.status, 200, "{}", session.body);

    // The answers went to FreeRADIUS with its State echoed.
    assert!(
        radius.log().contains("State = 0x726f756e642d31"),
        "round-1 echoed"
    );
    assert!(
        radius.log().contains("State = 0x726f756e642d32"),
        "round-2 echoed"
    );

    // Every round is an audit event: two challenges, then the accept.
    let events = events(&daemon, 3);
    let results: Vec<&str> = events
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["challenge", "challenge", "accept"], "{events:?}");
    assert!(events.iter().all(|e| e["method"] == "RADIUS"), "{events:?}");
}

#[test]
fn wrong_answers_and_wrong_passwords_are_rejected() {
    let (_radius, daemon) = start();

    let wrong_password = rest_login(&daemon, "not-her-password");
    assert_eq!(wrong_password.status, 401, "{}", wrong_password.body);
    assert_eq!(
        wrong_password.json()["error_info"]["reason"],
        "INVALID_CREDENTIALS"
    );

    let token = challenged(&rest_login(&daemon, PASSWORD), TOKEN_PROMPT);
    let wrong = rest_answer(&daemon, &token, "000000");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.json()["error_info"]["reason"], "INVALID_CREDENTIALS");
    // The dialogue ended with the reject.
    let again = rest_answer(&daemon, &token, TOKEN);
    assert_eq!(again.status, 401, "{}", again.body);

    // A token that was never handed out.
    let forged = rest_answer(
        &daemon,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        TOKEN,
    );
    assert_eq!(forged.status, 401, "{}", forged.body);

    let events = events(&daemon, 3);
    let results: Vec<&str> = events
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["reject", "challenge", "reject"], "{events:?}");
}

#[test]
fn a_two_round_dialogue_through_the_radius_front_end() {
    let (_radius, daemon) = start();

    let first = radius_request(&daemon, PASSWORD, None);
    assert!(first.received("Access-Challenge"), "{first:?}");
    assert!(
        first
            .stdout
            .contains(&format!("Reply-Message = \"{TOKEN_PROMPT}\"")),
        "{first:?}"
    );
    let state = first.state();
    // The State is the gateway's own, never the upstream's.
    assert_ne!(state, "0x726f756e642d31");

    let second = radius_request(&daemon, TOKEN, Some(&state));
    assert!(second.received("Access-Challenge"), "{second:?}");
    assert!(
        second
            .stdout
            .contains(&format!("Reply-Message = \"{PIN_PROMPT}\"")),
        "{second:?}"
    );
    let next = second.state();
    assert_ne!(next, state);

    // The first State is spent.
    let replayed = radius_request(&daemon, TOKEN, Some(&state));
    assert!(replayed.received("Access-Reject"), "{replayed:?}");

    let done = radius_request(&daemon, PIN, Some(&next));
    assert!(done.received("Access-Accept"), "{done:?}");

    // A wrong answer is a reject, and ends the dialogue.
    let first = radius_request(&daemon, PASSWORD, None);
    let state = first.state();
    let wrong = radius_request(&daemon, "000000", Some(&state));
    assert!(wrong.received("Access-Reject"), "{wrong:?}");

    let events = events(&daemon, 6);
    let results: Vec<&str> = events
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "challenge",
            "challenge",
            "reject",
            "accept",
            "challenge",
            "reject"
        ],
        "{events:?}"
    );
    assert!(
        events.iter().all(|e| e["action"] == "radius:loopback"),
        "{events:?}"
    );
}

/// Requests received and not answered yet, with where they came from.
type Held = std::sync::Arc<std::sync::Mutex<Vec<(Vec<u8>, std::net::SocketAddr)>>>;

/// A RADIUS server that takes requests and holds its answers until released: a push-style
/// MFA proxy waiting for users to approve on their phones.
struct Holding {
    addr: std::net::SocketAddr,
    held: Held,
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Holding {
    fn start() -> Holding {
        use std::sync::atomic::Ordering;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let held: Held = std::sync::Arc::default();
        let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (held, release) = (
                std::sync::Arc::clone(&held),
                std::sync::Arc::clone(&release),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // Bounded: a minute at most, then it stops by itself.
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        held.lock().unwrap().push((buf[..n].to_vec(), from));
                    }
                    if release.load(Ordering::Relaxed) {
                        let waiting: Vec<_> = held.lock().unwrap().drain(..).collect();
                        for (request, from) in waiting {
                            let _ = socket.send_to(&accept(&request), from);
                        }
                    }
                }
            })
        };
        Holding {
            addr,
            held,
            release,
            thread: Some(thread),
        }
    }

    fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.release
            .store(true, std::sync::atomic::Ordering::Relaxed);
        // The thread ends by its deadline; it is not waited for.
        drop(self.thread.take());
    }
}

/// An Access-Accept with Class "push" for `request`, signed under [`DEFAULT_SECRET`].
fn accept(request: &[u8]) -> Vec<u8> {
    use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type};
    let request = Packet::new_checked(request).unwrap();
    let mut buf = [0u8; 4096];
    let mut b = Builder::new(&mut buf, Code::AccessAccept, request.identifier(), &[0; 16]).unwrap();
    b.message_authenticator().unwrap();
    b.attribute(attr_type::CLASS, b"push").unwrap();
    let len = b
        .finish_reply(
            &request.authenticator(),
            &Secret::new(DEFAULT_SECRET.as_bytes()),
        )
        .unwrap();
    buf[..len].to_vec()
}

/// A front-end Access-Request for `user` with identifier `id`.
fn access_request(user: &str, password: &str, id: u8) -> Vec<u8> {
    use portcullis_protocol::radius::{Builder, Secret, attr_type};
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let mut buf = [0u8; 4096];
    let secret = Secret::new(SECRET.as_bytes());
    let mut b = Builder::access_request(&mut buf, id, &authenticator).unwrap();
    b.attribute(attr_type::USER_NAME, user.as_bytes()).unwrap();
    b.user_password(password.as_bytes(), &secret).unwrap();
    let len = b.finish_request(&secret).unwrap();
    buf[..len].to_vec()
}

#[test]
fn logins_waiting_on_a_slow_upstream_hold_nothing_other_logins_need() {
    const WAITING: usize = 300;
    let upstream = Holding::start();
    let config = config(upstream.addr)
        .replace("connection_timeout = 2", "connection_timeout = 60")
        .replace(
            "[[radius.role_mappings]]",
            "[radius_frontend]\nmax_in_flight = 1024\n\n[[radius.role_mappings]]\nrole = \"Administrator\"\nattribute = 25\nattribute_value = \"push\"\n\n[[radius.role_mappings]]",
        );
    let daemon = Daemon::start(Some(&config));
    let frontend = daemon.radius_addr.expect("the RADIUS front-end listens");

    // Several hundred logins (of as many users: the throttle bounds the attempts in flight
    // per user) wait on the upstream (two client sockets: 256 Identifiers each).
    let sockets: Vec<std::net::UdpSocket> = (0..2)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    // Sent in bursts of 50, each let reach the upstream before the next: the upstream's
    // test server reads from one socket, and a burst of 300 datagrams overflows its receive
    // buffer on a busy machine (each small datagram takes about 1 KiB of it), while the daemon
    // sends each request upstream once (max_number_of_tries = 1).
    let deadline = Instant::now() + Duration::from_secs(60);
    for burst in (0..WAITING).collect::<Vec<_>>().chunks(50) {
        for &n in burst {
            let socket = &sockets[n % 2];
            let id = u8::try_from(n / 2).unwrap();
            socket
                .send_to(&access_request(&format!("pushed-{n}"), "pw", id), frontend)
                .unwrap();
        }
        let sent = burst[burst.len() - 1] + 1;
        while upstream.held() < sent {
            assert!(
                Instant::now() < deadline,
                "{} of {sent} reached the upstream",
                upstream.held()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // Meanwhile a local login (an argon2 check) and a REST call go through...
    let token = daemon.login("admin", ADMIN_PASSWORD);
    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(&token), None);
    assert_eq!(session.status, 200, "{}", session.body);
    // ...while every one of them is still waiting.
    assert_eq!(upstream.held(), WAITING);

    // Approved: every waiting login is accepted.
    upstream
        .release
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut accepted = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    for socket in &sockets {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    while accepted < WAITING && Instant::now() < deadline {
        for socket in &sockets {
            if let Ok(n) = socket.recv(&mut buf) {
                if buf[..n].first() == Some(&2) {
                    accepted += 1;
                }
            }
        }
    }
    assert_eq!(accepted, WAITING);
}

#[test]
fn pam_radius_auth_answers_the_upstream_challenges_through_the_front_end() {
    let (_radius, daemon) = start();
    let service = support::pam::PamService::new(
        daemon.radius_addr.expect("the RADIUS front-end listens"),
        SECRET,
    );
    // pamtester answers the password prompt, then each Reply-Message prompt, from stdin.
    let good = service.converse("carol", &[PASSWORD, TOKEN, PIN]);
    assert!(
        good.status.is_some_and(|s| s.success()),
        "{good:?}\n{}",
        daemon.log()
    );
    let shown = format!("{}{}", good.stdout, good.stderr);
    assert!(shown.contains(TOKEN_PROMPT), "{good:?}");
    assert!(shown.contains(PIN_PROMPT), "{good:?}");

    let wrong = service.converse("carol", &[PASSWORD, TOKEN, "0000"]);
    assert!(wrong.status.is_some_and(|s| !s.success()), "{wrong:?}");
}

/// What tests/support/challenge_radius.py needs of a dictionary.
const PYRAD_DICTIONARY: &str = "\
ATTRIBUTE\tUser-Name\t1\tstring
ATTRIBUTE\tUser-Password\t2\tstring
ATTRIBUTE\tReply-Message\t18\tstring
ATTRIBUTE\tState\t24\toctets
ATTRIBUTE\tClass\t25\toctets
ATTRIBUTE\tVendor-Specific\t26\toctets
ATTRIBUTE\tMessage-Authenticator\t80\toctets
";

/// Runs tests/support/challenge_radius.py (pyrad) through the front-end with `answers`.
fn pyrad(daemon: &Daemon, answers: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let dictionary = dir.path().join("dictionary");
    std::fs::write(&dictionary, PYRAD_DICTIONARY).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/challenge_radius.py");
    let port = daemon
        .radius_addr
        .expect("the RADIUS front-end listens")
        .port();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script)
        .arg(&dictionary)
        .arg(port.to_string())
        .args([SECRET, "carol"])
        .args(answers);
    let output = support::freeradius::run_bounded(&mut cmd, "", CLIENT_TIMEOUT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "pyrad failed (python3 -m pip install pyrad==2.4): {output:?}"
    );
    serde_json::from_str::<Vec<Value>>(output.stdout.trim()).unwrap()
}

#[test]
fn pyrad_follows_the_upstream_challenges_through_the_front_end() {
    let (_radius, daemon) = start();
    let replies = pyrad(&daemon, &[PASSWORD, TOKEN, PIN]);
    let codes: Vec<u64> = replies
        .iter()
        .map(|r| r["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [11, 11, 2], "{replies:?}");
    assert_eq!(replies[0]["messages"], json!([TOKEN_PROMPT]), "{replies:?}");
    assert_eq!(replies[1]["messages"], json!([PIN_PROMPT]), "{replies:?}");
    assert!(replies.iter().all(|r| r["signed"] == true), "{replies:?}");
    assert!(
        replies[..2].iter().all(|r| r["state_len"] == 32),
        "the gateway's own States: {replies:?}"
    );

    let wrong = pyrad(&daemon, &[PASSWORD, "000000"]);
    let codes: Vec<u64> = wrong.iter().map(|r| r["code"].as_u64().unwrap()).collect();
    assert_eq!(codes, [11, 3], "{wrong:?}");
}

#[test]
fn an_expired_dialogue_is_not_answered_through_either_door() {
    let radius = FreeRadius::start_with_policy(DEFAULT_USERS, DEFAULT_SECRET, POLICY);
    let config = config(radius.auth_addr).replace(
        "current_sequence = 3",
        "current_sequence = 3\nchallenge_timeout = 1",
    );
    let daemon = Daemon::start(Some(&config));

    let token = challenged(&rest_login(&daemon, PASSWORD), TOKEN_PROMPT);
    let first = radius_request(&daemon, PASSWORD, None);
    assert!(first.received("Access-Challenge"), "{first:?}");
    // Past the one-second challenge_timeout.
    std::thread::sleep(Duration::from_millis(1500));

    let late = rest_answer(&daemon, &token, TOKEN);
    assert_eq!(late.status, 401, "{}", late.body);
    let late = radius_request(&daemon, TOKEN, Some(&first.state()));
    assert!(late.received("Access-Reject"), "{late:?}");
    // FreeRADIUS never saw an answer.
    assert!(!radius.log().contains("User-Password = \"123456\""));
}

#[test]
fn the_gateway_asks_its_own_second_factor_after_an_upstream_challenge_when_configured() {
    let radius = FreeRadius::start_with_policy(DEFAULT_USERS, DEFAULT_SECRET, POLICY);
    let config = format!(
        "{}\n[mfa.policy]\nrequired = \"all\"\n",
        config(radius.auth_addr).replace(
            "current_sequence = 3\n",
            "current_sequence = 3\nupstream_challenge_is_second_factor = false\n",
        )
    );
    assert!(config.contains("upstream_challenge_is_second_factor = false"));
    let daemon = Daemon::start(Some(&config));
    let dialogue = || {
        let first = challenged(&rest_login(&daemon, PASSWORD), TOKEN_PROMPT);
        let second = challenged(&rest_answer(&daemon, &first, TOKEN), PIN_PROMPT);
        let done = rest_answer(&daemon, &second, PIN);
        assert_eq!(done.status, 200, "{}", done.body);
        let body = done.json();
        // The gateway's own second factor: a partial token, no upstream prompt.
        assert_eq!(body["needTwoFactorAuth"], true, "{body}");
        assert!(body.get("challenge").is_none(), "{body}");
        body["token"].as_str().unwrap().to_string()
    };
    let partial = dialogue();
    // The partial token opens no session, and enrols a device.
    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(&partial), None);
    assert_eq!(session.status, 401, "{}", session.body);
    let mut device = support::mfa::enrol(&daemon, Auth::Bearer(&partial), "phone");
    // Enrolled, the user still owes a code after the upstream's challenges; a wrong one is
    // refused. (One good code per TOTP step: the next one is spent at the front-end below.)
    let partial = dialogue();
    let wrong = daemon.request(
        "POST",
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(&partial),
        Some(&json!({"code": "000000"}).to_string()),
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);

    // Through the front-end: the upstream's two challenges, then the gateway's own.
    let first = radius_request(&daemon, PASSWORD, None);
    let second = radius_request(&daemon, TOKEN, Some(&first.state()));
    assert!(second.received("Access-Challenge"), "{second:?}");
    let own = radius_request(&daemon, PIN, Some(&second.state()));
    assert!(own.received("Access-Challenge"), "{own:?}");
    assert!(
        !own.stdout.contains(PIN_PROMPT) && !own.stdout.contains(TOKEN_PROMPT),
        "{own:?}"
    );
    let done = radius_request(&daemon, &device.next_code(), Some(&own.state()));
    assert!(done.received("Access-Accept"), "{done:?}");
}

#[test]
fn a_state_replayed_from_another_source_or_door_is_rejected() {
    let radius = FreeRadius::start_with_policy(DEFAULT_USERS, DEFAULT_SECRET, POLICY);
    // One front-end client for the whole of 127.0.0.0/24, so that 127.0.0.2 may send too.
    let config = config(radius.auth_addr).replace(
        "name = \"loopback\"\naddress = \"127.0.0.1\"",
        "name = \"loopback\"\naddress = \"127.0.0.0/24\"",
    );
    assert!(config.contains("127.0.0.0/24"));
    let daemon = Daemon::start(Some(&config));

    let first = radius_request(&daemon, PASSWORD, None);
    assert!(first.received("Access-Challenge"), "{first:?}");
    let state = first.state();
    // The same client, another source address: the State was not given to it.
    let elsewhere = radius_request_from(&daemon, "127.0.0.2", TOKEN, Some(&state));
    assert!(elsewhere.received("Access-Reject"), "{elsewhere:?}");
    // A State offered to the wrong party is spent: the rightful answer comes too late.
    let late = radius_request(&daemon, TOKEN, Some(&state));
    assert!(late.received("Access-Reject"), "{late:?}");

    // The State is no token of the REST login either.
    let first = radius_request(&daemon, PASSWORD, None);
    let state = first.state();
    let handle = hex::decode(state.trim_start_matches("0x")).unwrap();
    let as_token =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, handle);
    let rest = rest_answer(&daemon, &as_token, TOKEN);
    assert_eq!(rest.status, 401, "{}", rest.body);
    // ... and the dialogue is still the client's.
    let second = radius_request(&daemon, TOKEN, Some(&state));
    assert!(second.received("Access-Challenge"), "{second:?}");

    // Every round is audited: the answer from another source and the late one as rejects.
    let events = events(&daemon, 5);
    let results: Vec<&str> = events
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["challenge", "reject", "reject", "challenge", "challenge"],
        "{events:?}"
    );
}

#[test]
fn a_completed_upstream_challenge_is_the_second_factor() {
    let radius = FreeRadius::start_with_policy(DEFAULT_USERS, DEFAULT_SECRET, POLICY);
    let config = format!(
        "{}\n[mfa.policy]\nrequired = \"all\"\n",
        config(radius.auth_addr)
    );
    let daemon = Daemon::start(Some(&config));
    let first = challenged(&rest_login(&daemon, PASSWORD), TOKEN_PROMPT);
    let second = challenged(&rest_answer(&daemon, &first, TOKEN), PIN_PROMPT);
    // The gateway's own second factor (required for everyone here) is not asked again.
    let done = rest_answer(&daemon, &second, PIN);
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["needTwoFactorAuth"], false, "{}", done.body);
    let token = done.json()["token"].as_str().unwrap().to_string();
    let session = daemon.request("GET", "/api/auth/1.0/session", Auth::Bearer(&token), None);
    assert_eq!(session.status, 200, "{}", session.body);

    // A first factor that ends without a challenge still owes it.
    let admin = daemon.request(
        "POST",
        "/api/auth/1.0/login",
        Auth::None,
        Some(&json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string()),
    );
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(admin.json()["needTwoFactorAuth"], true, "{}", admin.body);
    assert!(admin.json().get("challenge").is_none(), "{}", admin.body);
}
