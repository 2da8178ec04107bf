//! Attacks replayed against the real daemon, each as an attacker would run it, each asserting
//! that the hole stays closed:
//!
//! 1. [`partial_token_cannot_enrol_beside_a_delivered_factor`]: a password alone (a partial
//!    token) cannot pair or activate a TOTP device for a user whose second factor is a
//!    delivered SMS code; the login still needs that code.
//! 2. [`enrollment_deny_leaves_pairing_to_administrators`]: under `[mfa.policy] enrollment =
//!    "deny"` a partial token pairs nothing; an Administrator pairs an active device for the
//!    user, whose codes then finish the login.
//! 3. [`name_variants_share_one_identity`]: with an upstream RADIUS server that compares
//!    names ignoring case, width and surrounding spaces, `ALICE`, ` alice` and `ａｌｉｃｅ` are
//!    alice: they owe her second factor, see her device, cannot pair their own, and their
//!    wrong passwords lock her.
//! 4. [`sighup_reload_ends_sessions_of_changed_local_users`]: a user disabled, re-roled or
//!    removed by editing the file and reloading loses their tokens; an unchanged user keeps
//!    theirs.
//! 5. [`password_spray_between_good_logins_locks_the_source`]: an attacker who holds one
//!    account cannot spray guesses across other users by logging in with it between guesses.
//! 6. [`radius_challenge_answer_takes_the_roles_of_now`]: a RADIUS front-end challenge
//!    answered after the local user was disabled is rejected, and after a demotion it carries
//!    only the new roles.
//! 7. [`one_user_cannot_flood_the_session_table`]: a user keeps at most 32 sessions (their
//!    oldest go first); another user's session stays. And
//!    [`partial_logins_cannot_push_out_a_full_session`]: partial sessions, which a password
//!    alone opens, never push out the user's full one.
//! 8. [`mfa_service_cannot_take_over_an_administrators_factor`]: an `MFA Service` caller may
//!    not re-associate, dissociate or delete the delivered factor of a gateway Administrator
//!    (in any spelling of the name), but still serves other users.
//! 9. [`learned_message_authenticator_survives_a_configuration_write`]: a server that signed
//!    once under `require_message_authenticator = "auto"` stays required to sign after an
//!    unrelated API write, so an unsigned (BlastRADIUS-style) Access-Accept is not believed.
//! 10. [`tacacs_without_tls_is_warned_about`]: each TACACS+ server without TLS is warned about
//!     at start and at reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use portcullis::engine::local::hash_password;
use portcullis::frontend::challenge::UNKNOWN_CHALLENGE;
use portcullis_protocol::radius::{Builder, Code, Packet, Secret, attr_type, recover_password};
use serde_json::{Value, json};
use support::daemon::{Answer, Auth, Daemon};
use support::freeradius::ClientOutput;
use support::mfa::{Enrolled, enrol, finish_login, partial_login};
use support::mfa_peers::SmsSink;
use support::scripted_radius::Scripted;

const LOGIN: &str = "/api/auth/1.0/login";
const LOGIN_MFA: &str = "/api/auth/1.0/login/mfa";
const SESSION: &str = "/api/auth/1.0/session";
const CURRENT: &str = "/api/mfa/1.0/users/current/devices";
const USERS: &str = "/api/mgmt.local_users/1.0/users";
const APPS: &str = "/api/mfa/1.0/applications";
/// How long a test waits for a log line or for a request that must not come.
const WAIT: Duration = Duration::from_secs(20);

// --- Helpers ------------------------------------------------------------------------------

fn hash(password: &str) -> String {
    hash_password(password.as_bytes()).unwrap()
}

/// A `[[local_users]]` entry.
fn local_user(name: &str, hash: &str, roles: &[&str], enabled: bool) -> String {
    format!(
        "[[local_users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\nroles = {}\nenabled = {enabled}\n\n",
        json!(roles)
    )
}

fn send(daemon: &Daemon, method: &str, path: &str, auth: Auth<'_>, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    daemon.request(method, path, auth, body.as_deref())
}

/// `POST /api/auth/1.0/login`.
fn login(daemon: &Daemon, user: &str, password: &str) -> Answer {
    send(
        daemon,
        "POST",
        LOGIN,
        Auth::None,
        Some(json!({"username": user, "password": password})),
    )
}

/// `POST /api/auth/1.0/login/mfa` with `token`.
fn second_step(daemon: &Daemon, token: &str, code: &str) -> Answer {
    send(
        daemon,
        "POST",
        LOGIN_MFA,
        Auth::Bearer(token),
        Some(json!({ "code": code })),
    )
}

/// Status of `GET /api/auth/1.0/session` with `token`.
fn session_status(daemon: &Daemon, token: &str) -> u16 {
    daemon
        .request("GET", SESSION, Auth::Bearer(token), None)
        .status
}

/// Tries to pair a device with `auth`.
fn pair_current(daemon: &Daemon, auth: Auth<'_>) -> Answer {
    send(
        daemon,
        "POST",
        CURRENT,
        auth,
        Some(json!({"name": "attacker-phone", "os": "Android"})),
    )
}

/// A device route's refusal of a partial token.
fn assert_enrolment_refused(answer: &Answer) {
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(
        answer.json()["error_code"],
        "UNSUPPORTED_SESSION_TYPE",
        "{}",
        answer.body
    );
}

/// A code that none of the time steps around now produces for `secret`.
fn wrong_code(secret: &[u8]) -> String {
    let step = support::mfa::now_step();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| (step - 2..=step + 3).all(|s| support::mfa::code(secret, s) != *c))
        .unwrap()
}

/// Seconds of the current TOTP step already gone (of 30).
fn into_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 30
}

/// Waits out the last two seconds of a TOTP step, so a code computed now is checked in the
/// same step.
fn away_from_a_step_boundary() {
    let gone = into_step();
    if gone >= 28 {
        std::thread::sleep(Duration::from_millis((30 - gone) * 1000 + 100));
    }
}

/// A code of `device` the daemon has not seen and accepts now (steps now-1..=now+1, each
/// later than the last one used), waiting for the clock when every step in reach is spent.
fn take_code(device: &mut Enrolled) -> String {
    loop {
        away_from_a_step_boundary();
        let now = support::mfa::now_step();
        let step = (device.step + 1).max(now - 1);
        if step <= now + 1 {
            device.step = step;
            return support::mfa::code(&device.secret, step);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Pairs a device with the partial token of `user`'s two-step login and activates it with
/// the code of the step before now, leaving two steps of codes in reach.
fn enrol_early(daemon: &Daemon, user: &str, password: &str) -> Enrolled {
    let partial = partial_login(daemon, user, password);
    let pair = send(
        daemon,
        "POST",
        CURRENT,
        Auth::Bearer(&partial),
        Some(json!({"name": "phone", "os": "Android"})),
    );
    assert_eq!(pair.status, 201, "{}", pair.body);
    let id = pair.json()["id"].as_str().unwrap().to_owned();
    let uri = pair.json()["otpauth_uri"].as_str().unwrap().to_owned();
    let secret = support::mfa::secret_of(&uri);
    away_from_a_step_boundary();
    let step = support::mfa::now_step() - 1;
    let activate = send(
        daemon,
        "POST",
        &format!("{CURRENT}/{id}/activate"),
        Auth::Bearer(&partial),
        Some(json!({"code": support::mfa::code(&secret, step)})),
    );
    assert_eq!(activate.status, 200, "{}", activate.body);
    Enrolled {
        id,
        uri,
        secret,
        step,
    }
}

/// Waits (bounded) until `needle` appears `n` times in the daemon's log.
fn wait_for_count(daemon: &Daemon, needle: &str, n: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    while daemon.log().matches(needle).count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not logged {n} times:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rewrites the configuration file and reloads it with SIGHUP (the `n`-th reload).
fn reload(daemon: &Daemon, config: &str, n: usize) {
    std::fs::write(daemon.config_path(), config).unwrap();
    daemon.signal("HUP");
    wait_for_count(daemon, "configuration reloaded", n);
}

// --- MFA applications and delivered codes --------------------------------------------------

const PHONE: &str = "+15550100001";
const OTHER_PHONE: &str = "+15550100002";
const ATTACKER_PHONE: &str = "+15550199999";

/// `[mfa_delivery]` for the application `gateway`, sending through the webhook at `sms_url`.
fn delivery(sms_url: &str) -> String {
    format!(
        "[mfa_delivery]\napplication = \"gateway\"\n\n[mfa_delivery.sms]\nurl = \"{sms_url}\"\n\n"
    )
}

/// Creates the SMS application `gateway` as `admin`; its id.
fn create_gateway(daemon: &Daemon, admin: Auth<'_>) -> String {
    let answer = send(
        daemon,
        "POST",
        APPS,
        admin,
        Some(json!({
            "name": "gateway",
            "auth_code_length": 6,
            "auth_token_type": "NUMERIC",
            "display_name": "Gateway",
            "associate_template": "$display_name verification: $code",
            "login_template": "$display_name login: $code",
            "message_from": "PORTCULLIS"
        })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["id"].as_str().unwrap().to_owned()
}

/// The code at the end of the next text, which must go to `phone`.
fn sms_code(sms: &SmsSink, phone: &str) -> String {
    let request = sms.next();
    assert_eq!(request.body["to"], phone, "{:?}", request.body);
    let text = request.body["message"].as_str().unwrap();
    text.split_whitespace().last().unwrap().to_owned()
}

/// Associates `phone` with `user` in application `app` and validates it, as `caller`.
fn validate_phone(
    daemon: &Daemon,
    sms: &SmsSink,
    caller: Auth<'_>,
    app: &str,
    user: &str,
    phone: &str,
) {
    let path = format!("{APPS}/{app}/users/{user}");
    let answer = send(
        daemon,
        "POST",
        &format!("{path}/associate"),
        caller,
        Some(json!({ "address": phone })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let code = sms_code(sms, phone);
    let answer = send(
        daemon,
        "POST",
        &format!("{path}/validate"),
        caller,
        Some(json!({ "validation_code": code })),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = send(daemon, "GET", &path, caller, None);
    assert_eq!(answer.json()["status"], "VALIDATED", "{}", answer.body);
}

// --- 1. Partial token beside a delivered factor -------------------------------------------

#[test]
fn partial_token_cannot_enrol_beside_a_delivered_factor() {
    let sms = SmsSink::start();
    let config = format!(
        "roles = [\"Administrator\", \"Monitor\", \"MFA Service\"]\n\n\
         [mfa.policy]\nrequired = \"roles\"\nroles = [\"Administrator\"]\nexempt_users = [\"breakglass\"]\n\n\
         {}{}{}",
        delivery(&sms.url()),
        local_user("admin", &hash("admin-password"), &["Administrator"], true),
        local_user(
            "breakglass",
            &hash("breakglass-password"),
            &["Administrator"],
            true
        ),
    );
    let daemon = Daemon::start(Some(&config));
    let breakglass = Auth::Basic("breakglass", "breakglass-password");
    let app = create_gateway(&daemon, breakglass);
    validate_phone(&daemon, &sms, breakglass, &app, "admin", PHONE);

    // The attacker knows admin's password: the first step gives a partial token, and the
    // login code goes to admin's phone, not to the attacker.
    let answer = login(&daemon, "admin", "admin-password");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["needTwoFactorAuth"], true, "{}", answer.body);
    assert_eq!(answer.json()["codeSentBy"], "SMS", "{}", answer.body);
    let partial = answer.json()["token"].as_str().unwrap().to_owned();
    let code = sms_code(&sms, PHONE);

    // Pairing an authenticator app of their own with it is refused ...
    let pair = pair_current(&daemon, Auth::Bearer(&partial));
    assert_enrolment_refused(&pair);
    assert_eq!(
        pair.json()["details"][0]["reason"],
        "MFA_REQUIRED",
        "{}",
        pair.body
    );
    // ... and so is activating one (refused before any device is looked up).
    let activate = send(
        &daemon,
        "POST",
        &format!("{CURRENT}/any-device/activate"),
        Auth::Bearer(&partial),
        Some(json!({"code": "123456"})),
    );
    assert_enrolment_refused(&activate);
    // Nothing was paired, and the partial token opens no session.
    let list = daemon.request("GET", CURRENT, Auth::Bearer(&partial), None);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["count"], 0, "{}", list.body);
    assert_eq!(session_status(&daemon, &partial), 401);

    // The login still needs the delivered code: a wrong one is refused, the right one works.
    let wrong_code = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let wrong = second_step(&daemon, &partial, &wrong_code);
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.json()["error_info"]["reason"], "INVALID_CODE");
    let full = finish_login(&daemon, &partial, &code);
    assert_eq!(session_status(&daemon, &full), 200);
}

// --- 2. enrollment = "deny" ---------------------------------------------------------------

#[test]
fn enrollment_deny_leaves_pairing_to_administrators() {
    let config = format!(
        "[mfa.policy]\nrequired = \"all\"\nexempt_users = [\"root\"]\nenrollment = \"deny\"\n\n{}{}",
        local_user("root", &hash("root-password"), &["Administrator"], true),
        local_user("dora", &hash("dora-password"), &["Operator"], true),
    );
    let daemon = Daemon::start(Some(&config));
    let root = Auth::Basic("root", "root-password");

    // dora has no second factor yet; whoever knows her password gets a partial token, which
    // pairs nothing under "deny".
    let partial = partial_login(&daemon, "dora", "dora-password");
    let pair = pair_current(&daemon, Auth::Bearer(&partial));
    assert_enrolment_refused(&pair);
    let activate = send(
        &daemon,
        "POST",
        &format!("{CURRENT}/any-device/activate"),
        Auth::Bearer(&partial),
        Some(json!({"code": "123456"})),
    );
    assert_enrolment_refused(&activate);
    let list = daemon.request("GET", CURRENT, Auth::Bearer(&partial), None);
    assert_eq!(list.json()["count"], 0, "{}", list.body);

    // An Administrator pairs a device for her: active at once.
    let paired = send(
        &daemon,
        "POST",
        "/api/mfa/1.0/users/dora/devices",
        root,
        Some(json!({"name": "dora-phone", "os": "iOS"})),
    );
    assert_eq!(paired.status, 201, "{}", paired.body);
    let uri = paired.json()["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let secret = support::mfa::secret_of(&uri);
    let devices = daemon.request("GET", "/api/mfa/1.0/users/dora/devices", root, None);
    assert_eq!(devices.status, 200, "{}", devices.body);
    assert_eq!(devices.json()["count"], 1, "{}", devices.body);
    assert!(
        !devices.json()["items"][0]["activated"].is_null(),
        "{}",
        devices.body
    );

    // dora finishes her login with a code from that secret.
    let code = support::mfa::code(&secret, support::mfa::now_step());
    let full = finish_login(&daemon, &partial, &code);
    assert_eq!(session_status(&daemon, &full), 200);

    // Pairing for someone else stays an Administrator's: dora's full token may not.
    let denied = send(
        &daemon,
        "POST",
        "/api/mfa/1.0/users/root/devices",
        Auth::Bearer(&full),
        Some(json!({"name": "x", "os": "iOS"})),
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    // And a fresh partial token of dora's still pairs nothing.
    let partial = partial_login(&daemon, "dora", "dora-password");
    assert_enrolment_refused(&pair_current(&daemon, Auth::Bearer(&partial)));
}

// --- A scripted upstream RADIUS server ----------------------------------------------------

/// The secret the scripted server shares with portcullis.
const UPSTREAM_SECRET: &str = "scripted-upstream-secret";
/// alice's password on the scripted server.
const ALICE_PASSWORD: &str = "alice-upstream-password";
/// The Class the scripted server grants alice; mapped to `Operator`.
const ALICE_CLASS: &[u8] = b"staff";

/// The User-Name and the recovered PAP password of an Access-Request.
fn credentials(request: &[u8]) -> (String, Vec<u8>) {
    let packet = Packet::new_checked(request).unwrap();
    let name = String::from_utf8_lossy(packet.user_name().unwrap_or_default()).into_owned();
    let mut out = [0u8; 128];
    let password = packet
        .user_password()
        .and_then(|hidden| {
            recover_password(
                hidden,
                &Secret::new(UPSTREAM_SECRET.as_bytes()),
                &packet.authenticator(),
                &mut out,
            )
            .ok()
        })
        .unwrap_or_default()
        .to_vec();
    (name, password)
}

/// A reply to `request`: `code`, with a Message-Authenticator or not, and `class` if any, with
/// a correct Response Authenticator under the shared secret.
fn reply(request: &[u8], code: Code, signed: bool, class: Option<&[u8]>) -> Vec<u8> {
    let request = Packet::new_checked(request).unwrap();
    let mut buf = [0u8; 4096];
    let mut b = Builder::new(&mut buf, code, request.identifier(), &[0; 16]).unwrap();
    if signed {
        b.message_authenticator().unwrap();
    }
    if let Some(class) = class {
        b.attribute(attr_type::CLASS, class).unwrap();
    }
    let len = b
        .finish_reply(
            &request.authenticator(),
            &Secret::new(UPSTREAM_SECRET.as_bytes()),
        )
        .unwrap();
    buf[..len].to_vec()
}

/// How a directory server (LDAP `caseIgnoreMatch`, Active Directory) compares names, written
/// independently of the daemon: surrounding spaces dropped, full-width ASCII forms read as
/// ASCII, case ignored.
fn directory_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match u32::from(c) {
            0xFF01..=0xFF5E => char::from_u32(u32::from(c) - 0xFEE0).unwrap(),
            _ => c,
        })
        .collect::<String>()
        .to_lowercase()
}

/// An upstream that knows alice under any spelling a directory accepts: Access-Accept (signed,
/// Class `staff`) for her password, a signed Access-Reject otherwise.
fn case_blind_upstream() -> Scripted {
    Scripted::start(Box::new(|request, _| {
        let (name, password) = credentials(request);
        let accepted = directory_name(&name) == "alice" && password == ALICE_PASSWORD.as_bytes();
        vec![if accepted {
            reply(request, Code::AccessAccept, true, Some(ALICE_CLASS))
        } else {
            reply(request, Code::AccessReject, true, None)
        }]
    }))
}

/// Sequence 3 (Local, RADIUS) over one upstream at `upstream`, Class `staff` -> Operator, and
/// `extra` TOML.
fn upstream_config(upstream: SocketAddr, require: &str, extra: &str) -> String {
    format!(
        r#"
[authentication]
current_sequence = 3
dead_time = 0

[radius.settings]
connection_timeout = 1
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 0
address = "{}"
port = {}
secret = "{UPSTREAM_SECRET}"
require_message_authenticator = "{require}"

[[radius.role_mappings]]
role = "Operator"
attribute = 25
attribute_value = "staff"

{extra}
"#,
        upstream.ip(),
        upstream.port()
    )
}

// --- 3. Name variants ---------------------------------------------------------------------

#[test]
fn name_variants_share_one_identity() {
    let upstream = case_blind_upstream();
    let config = upstream_config(upstream.addr, "yes", "[mfa.policy]\nrequired = \"all\"\n");
    let daemon = Daemon::start(Some(&config));

    // alice enrols her authenticator app through the normal flow (her first factor of any
    // kind, so her partial token may pair it) and logs in.
    let partial = partial_login(&daemon, "alice", ALICE_PASSWORD);
    let mut device: Enrolled = enrol(&daemon, Auth::Bearer(&partial), "alice-phone");
    let seen_code = take_code(&mut device);
    let full = finish_login(&daemon, &partial, &seen_code);
    assert_eq!(session_status(&daemon, &full), 200);

    // The attacker who knows her password logs in under other spellings of her name, which
    // the upstream accepts: each owes alice's second factor and finds alice's device.
    for variant in [
        "ALICE",
        " alice",
        "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
        "aLiCe",
    ] {
        let answer = login(&daemon, variant, ALICE_PASSWORD);
        assert_eq!(answer.status, 200, "{variant:?}: {}", answer.body);
        assert_eq!(
            answer.json()["needTwoFactorAuth"],
            true,
            "{variant:?}: {}",
            answer.body
        );
        assert_eq!(
            answer.json()["roles"],
            json!(["Operator"]),
            "{}",
            answer.body
        );
        let partial = answer.json()["token"].as_str().unwrap().to_owned();
        assert_enrolment_refused(&pair_current(&daemon, Auth::Bearer(&partial)));
        let list = daemon.request("GET", CURRENT, Auth::Bearer(&partial), None);
        assert_eq!(list.status, 200, "{variant:?}: {}", list.body);
        assert_eq!(list.json()["count"], 1, "{variant:?}: {}", list.body);
        assert_eq!(
            list.json()["items"][0]["id"],
            device.id.as_str(),
            "{}",
            list.body
        );
        let wrong = second_step(&daemon, &partial, &wrong_code(&device.secret));
        assert_eq!(wrong.status, 401, "{variant:?}: {}", wrong.body);
        assert_eq!(wrong.json()["error_info"]["reason"], "INVALID_CODE");
        assert_eq!(session_status(&daemon, &partial), 401);
    }
    // The device's replay guard is alice's too: the code she just used (seen over her
    // shoulder) does not finish the attacker's login under another spelling.
    let partial = partial_login(&daemon, "ALICE", ALICE_PASSWORD);
    let replay = second_step(&daemon, &partial, &seen_code);
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(session_status(&daemon, &partial), 401);
    assert_eq!(upstream.requests(), 6);

    // The throttle counts the spellings as one user: ten wrong passwords spread over them
    // lock alice, and then even her right password is refused unseen by the upstream.
    let variants = [
        "Alice",
        "ALICE",
        " alice",
        "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
        "alicE ",
    ];
    for n in 0..10 {
        let variant = variants[n % variants.len()];
        let answer = login(&daemon, variant, "wrong-password");
        assert_eq!(
            answer.status, 401,
            "guess {n} as {variant:?}: {}",
            answer.body
        );
    }
    assert_eq!(upstream.requests(), 16);
    for name in ["alice", "\u{ff21}LICE"] {
        let locked = login(&daemon, name, ALICE_PASSWORD);
        assert_eq!(locked.status, 429, "{name:?}: {}", locked.body);
        assert_eq!(locked.json()["error_id"], "LOCKED_OUT", "{}", locked.body);
    }
    assert_eq!(upstream.requests(), 16, "a locked login asks no one");
}

// --- 4. SIGHUP reload ends sessions -------------------------------------------------------

#[test]
fn sighup_reload_ends_sessions_of_changed_local_users() {
    let hashes: Vec<String> = ["root", "keep", "off", "moved", "gone"]
        .iter()
        .map(|u| hash(&format!("{u}-password")))
        .collect();
    let [root, keep, off, moved, gone] = <[String; 5]>::try_from(hashes).unwrap();
    let before = format!(
        "{}{}{}{}{}",
        local_user("root", &root, &["Administrator"], true),
        local_user("keep", &keep, &["Monitor"], true),
        local_user("off", &off, &["Administrator"], true),
        local_user("moved", &moved, &["Administrator"], true),
        local_user("gone", &gone, &["Operator"], true),
    );
    let daemon = Daemon::start(Some(&before));
    let tokens: Vec<(&str, String)> = ["root", "keep", "off", "moved", "gone"]
        .into_iter()
        .map(|u| (u, daemon.login(u, &format!("{u}-password"))))
        .collect();
    for (user, token) in &tokens {
        assert_eq!(session_status(&daemon, token), 200, "{user}");
    }

    // The operator edits the file: off is disabled, moved demoted to Monitor, gone removed;
    // root and keep stay as they were. Then a reload.
    let after = format!(
        "{}{}{}{}",
        local_user("root", &root, &["Administrator"], true),
        local_user("keep", &keep, &["Monitor"], true),
        local_user("off", &off, &["Administrator"], false),
        local_user("moved", &moved, &["Monitor"], true),
    );
    reload(&daemon, &after, 1);

    for (user, token) in &tokens {
        let expected = if matches!(*user, "root" | "keep") {
            200
        } else {
            401
        };
        assert_eq!(
            session_status(&daemon, token),
            expected,
            "{user}'s old token"
        );
    }
    // The old tokens open nothing else either; moved's new login has the new roles only.
    let (_, moved_token) = &tokens[3];
    let users = daemon.request("GET", USERS, Auth::Bearer(moved_token), None);
    assert_eq!(users.status, 401, "{}", users.body);
    let fresh = daemon.login("moved", "moved-password");
    let session = daemon.request("GET", SESSION, Auth::Bearer(&fresh), None);
    assert_eq!(
        session.json()["roles"],
        json!(["Monitor"]),
        "{}",
        session.body
    );
    assert_eq!(login(&daemon, "off", "off-password").status, 401);
    assert_eq!(login(&daemon, "gone", "gone-password").status, 401);
}

// --- 5. Password spray between good logins ------------------------------------------------

#[test]
fn password_spray_between_good_logins_locks_the_source() {
    let victims: Vec<String> = (0..6).map(|n| format!("victim{n}")).collect();
    let mut config = String::from(
        "[authentication]\ncurrent_sequence = 5\n\n\
         [throttle]\nmax_failures = 3\nlocal_networks = [\"127.0.0.2/32\"]\n\n",
    );
    config.push_str(&local_user(
        "mallory",
        &hash("mallory-password"),
        &["Monitor"],
        true,
    ));
    let victim_hash = hash("victim-secret-password");
    for victim in &victims {
        config.push_str(&local_user(victim, &victim_hash, &["Monitor"], true));
    }
    let daemon = Daemon::start(Some(&config));

    // From 127.0.0.1 (remote under these local_networks): two wrong guesses at two different
    // users, then a good login with the attacker's own account, and again.
    let mut guessed = 0;
    let mut refused_guesses = Vec::new();
    let mut own_logins = Vec::new();
    let mut sixth = None;
    for (n, victim) in victims.iter().enumerate() {
        let answer = login(&daemon, victim, &format!("guess-{n}"));
        match answer.status {
            401 => guessed += 1,
            429 => {
                assert_eq!(answer.json()["error_id"], "LOCKED_OUT", "{}", answer.body);
                refused_guesses.push(n);
            }
            other => panic!("guess {n} at {victim}: {other} {}", answer.body),
        }
        if n == 5 {
            sixth = Some(answer.status);
        }
        if n % 2 == 1 {
            own_logins.push(login(&daemon, "mallory", "mallory-password").status);
        }
    }
    assert!(
        guessed <= 3,
        "{guessed} wrong guesses were checked (refused: {refused_guesses:?})"
    );
    assert!(!refused_guesses.is_empty(), "the source never locked");
    assert_eq!(sixth, Some(429), "the sixth guess was tried");
    // The attacker's own good login did count (it is refused only once the source is locked).
    assert_eq!(own_logins[0], 200, "{own_logins:?}");
    assert!(own_logins.contains(&429), "{own_logins:?}");
}

// --- 6. A pending RADIUS challenge and a change of the user -------------------------------

const FRONTEND_SECRET: &str = "attacks-frontend-secret";
const FRONTEND_PASSWORD: &str = "frontend-user-password";

fn radclient(dir: &Path, addr: SocketAddr, input: &str) -> ClientOutput {
    support::freeradius::radclient_auth(dir, addr, FRONTEND_SECRET, input, WAIT)
}

/// The Class values (hex as radclient prints them) of the reply.
fn classes(output: &ClientOutput) -> Vec<String> {
    output
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Class = 0x"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn radius_challenge_answer_takes_the_roles_of_now() {
    let config = format!(
        "[mfa.policy]\nrequired = \"all\"\nexempt_users = [\"root\"]\n\n\
         [[radius_frontend.clients]]\nid = 1\nname = \"loopback\"\naddress = \"127.0.0.1\"\nsecret = \"{FRONTEND_SECRET}\"\n\n\
         {}{}{}",
        local_user("root", &hash("root-password"), &["Administrator"], true),
        local_user("frank", &hash(FRONTEND_PASSWORD), &["Administrator"], true),
        local_user(
            "erin",
            &hash(FRONTEND_PASSWORD),
            &["Administrator", "Monitor"],
            true
        ),
    );
    let daemon = Daemon::start(Some(&config));
    let root = Auth::Basic("root", "root-password");
    let addr = daemon.radius_addr.expect("the RADIUS front-end listens");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dictionary"),
        "$INCLUDE /usr/share/freeradius/dictionary\n",
    )
    .unwrap();
    let mut devices: Vec<Enrolled> = ["frank", "erin"]
        .iter()
        .map(|user| enrol_early(&daemon, user, FRONTEND_PASSWORD))
        .collect();
    let challenge = |user: &str| {
        let output = radclient(
            dir.path(),
            addr,
            &format!("User-Name = {user}\nUser-Password = {FRONTEND_PASSWORD}\n"),
        );
        assert!(output.received("Access-Challenge"), "{output:?}");
        output.state()
    };
    let answer = |user: &str, state: &str, code: &str| {
        radclient(
            dir.path(),
            addr,
            &format!("User-Name = {user}\nUser-Password = {code}\nState = {state}\n"),
        )
    };
    let administrator = hex::encode("Administrator");
    let monitor = hex::encode("Monitor");

    // frank's challenge waits; meanwhile an Administrator disables him. His good code is then
    // refused.
    let state = challenge("frank");
    let disabled = send(
        &daemon,
        "PUT",
        &format!("{USERS}/frank"),
        root,
        Some(json!({"enabled": false})),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    let code = take_code(&mut devices[0]);
    let refused = answer("frank", &state, &code);
    assert!(refused.received("Access-Reject"), "{refused:?}");
    assert!(!refused.received("Access-Accept"), "{refused:?}");
    assert!(refused.stdout.contains(UNKNOWN_CHALLENGE), "{refused:?}");
    assert!(classes(&refused).is_empty(), "{refused:?}");

    // (A control: before any change the front-end grants erin both roles.)
    let state = challenge("erin");
    let code = take_code(&mut devices[1]);
    let control = answer("erin", &state, &code);
    assert!(control.received("Access-Accept"), "{control:?}");
    assert_eq!(
        classes(&control),
        [administrator, monitor.clone()],
        "{control:?}"
    );

    // erin's challenge waits; meanwhile she is demoted to Monitor. Her good code gets in with
    // the roles she holds now.
    let state = challenge("erin");
    let demoted = send(
        &daemon,
        "PUT",
        &format!("{USERS}/erin"),
        root,
        Some(json!({"roles": ["Monitor"]})),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let code = take_code(&mut devices[1]);
    let accepted = answer("erin", &state, &code);
    assert!(accepted.received("Access-Accept"), "{accepted:?}");
    assert_eq!(classes(&accepted), [monitor], "{accepted:?}");
}

// --- 7. Session flood ---------------------------------------------------------------------

#[test]
fn one_user_cannot_flood_the_session_table() {
    let config = format!(
        "{}{}",
        local_user("flooder", &hash("flooder-password"), &["Monitor"], true),
        local_user("bystander", &hash("bystander-password"), &["Monitor"], true),
    );
    let daemon = Daemon::start(Some(&config));
    let bystander = daemon.login("bystander", "bystander-password");
    let tokens: Vec<String> = (0..40)
        .map(|_| daemon.login("flooder", "flooder-password"))
        .collect();
    let live: Vec<bool> = tokens
        .iter()
        .map(|t| session_status(&daemon, t) == 200)
        .collect();
    assert_eq!(
        live.iter().filter(|l| **l).count(),
        32,
        "live sessions of the flooder: {live:?}"
    );
    // The oldest went first.
    assert!(live[..8].iter().all(|l| !l), "{live:?}");
    assert!(live[8..].iter().all(|l| *l), "{live:?}");
    assert_eq!(session_status(&daemon, &bystander), 200);
}

/// Whoever knows only the password opens partial sessions: as many as they like, they never
/// push out the user's full ones (found after the session cap was built).
#[test]
fn partial_logins_cannot_push_out_a_full_session() {
    let config = format!(
        "[mfa.policy]\nrequired = \"all\"\n\n{}",
        local_user("gina", &hash("gina-password"), &["Monitor"], true),
    );
    let daemon = Daemon::start(Some(&config));
    let mut device = enrol_early(&daemon, "gina", "gina-password");
    let partial = partial_login(&daemon, "gina", "gina-password");
    let full = finish_login(&daemon, &partial, &take_code(&mut device));
    assert_eq!(session_status(&daemon, &full), 200);
    let partials: Vec<String> = (0..40)
        .map(|_| partial_login(&daemon, "gina", "gina-password"))
        .collect();
    assert_eq!(session_status(&daemon, &full), 200);
    // The newest partial still works for the second step.
    let last = second_step(&daemon, partials.last().unwrap(), &take_code(&mut device));
    assert_eq!(last.status, 200, "{}", last.body);
}

// --- 8. MFA Service and an Administrator's delivered factor -------------------------------

#[test]
fn mfa_service_cannot_take_over_an_administrators_factor() {
    let sms = SmsSink::start();
    let config = format!(
        "roles = [\"Administrator\", \"Monitor\", \"MFA Service\"]\n\n{}{}{}{}",
        delivery(&sms.url()),
        local_user("admin", &hash("admin-password"), &["Administrator"], true),
        local_user("bob", &hash("bob-password"), &["Monitor"], true),
        local_user("svc", &hash("svc-password"), &["MFA Service"], true),
    );
    let daemon = Daemon::start(Some(&config));
    let admin = Auth::Basic("admin", "admin-password");
    let service = Auth::Basic("svc", "svc-password");
    let app = create_gateway(&daemon, admin);
    validate_phone(&daemon, &sms, admin, &app, "admin", PHONE);

    // The service caller tries to move admin's factor to the attacker's phone, in any
    // spelling of the name, or to remove it: refused, and nothing is sent.
    for user in ["admin", "ADMIN", "\u{ff41}dmin"] {
        let path = format!("{APPS}/{app}/users/{user}");
        let associate = send(
            &daemon,
            "POST",
            &format!("{path}/associate"),
            service,
            Some(json!({ "address": ATTACKER_PHONE })),
        );
        assert_eq!(associate.status, 403, "{user:?}: {}", associate.body);
        let dissociate = send(
            &daemon,
            "DELETE",
            &format!("{path}/associate"),
            service,
            None,
        );
        assert_eq!(dissociate.status, 403, "{user:?}: {}", dissociate.body);
        let delete = send(&daemon, "DELETE", &path, service, None);
        assert_eq!(delete.status, 403, "{user:?}: {}", delete.body);
    }
    assert!(sms.nothing_within(Duration::from_millis(500)));
    let user = send(
        &daemon,
        "GET",
        &format!("{APPS}/{app}/users/admin"),
        admin,
        None,
    );
    assert_eq!(user.json()["status"], "VALIDATED", "{}", user.body);
    assert_eq!(user.json()["user_address"], PHONE, "{}", user.body);

    // For a user who cannot hold Administrator the service still does its job.
    let associate = send(
        &daemon,
        "POST",
        &format!("{APPS}/{app}/users/bob/associate"),
        service,
        Some(json!({ "address": OTHER_PHONE })),
    );
    assert_eq!(associate.status, 200, "{}", associate.body);
    let code = sms_code(&sms, OTHER_PHONE);
    assert_eq!(code.len(), 6, "{code}");
    let validate = send(
        &daemon,
        "POST",
        &format!("{APPS}/{app}/users/bob/validate"),
        service,
        Some(json!({ "validation_code": code })),
    );
    assert_eq!(validate.status, 200, "{}", validate.body);
}

// --- 9. Learned Message-Authenticator state and configuration writes ----------------------

#[test]
fn learned_message_authenticator_survives_a_configuration_write() {
    // The real server signs; an on-path forger later answers with an unsigned Access-Accept
    // that verifies otherwise (it cannot sign without the secret; BlastRADIUS makes the
    // Response Authenticator collide).
    let upstream = Scripted::start(Box::new(|request, nth| {
        vec![if nth == 0 {
            reply(request, Code::AccessReject, true, None)
        } else {
            reply(request, Code::AccessAccept, false, Some(ALICE_CLASS))
        }]
    }));
    let config = upstream_config(
        upstream.addr,
        "auto",
        &local_user("root", &hash("root-password"), &["Administrator"], true),
    );
    let daemon = Daemon::start(Some(&config));
    let root = Auth::Basic("root", "root-password");

    let first = login(&daemon, "alice", "wrong-password");
    assert_eq!(first.status, 401, "{}", first.body);
    assert_eq!(
        first.json()["error_info"]["reason"],
        "INVALID_CREDENTIALS",
        "{}",
        first.body
    );

    // An unrelated write rebuilds the engine.
    let added = send(
        &daemon,
        "POST",
        USERS,
        root,
        Some(
            json!({"name": "newbie", "password": "newbie-password", "roles": ["Monitor"], "enabled": true}),
        ),
    );
    assert_eq!(added.status, 201, "{}", added.body);

    let forged = login(&daemon, "alice", "another-wrong-password");
    assert_ne!(
        forged.status, 200,
        "a forged accept let a wrong password in: {}",
        forged.body
    );
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(
        forged.json()["error_info"]["reason"],
        "SERVERS_UNAVAILABLE",
        "{}",
        forged.body
    );
    assert_eq!(upstream.requests(), 2);
    assert!(
        daemon.wait_for_log(
            "dropped a reply without the required Message-Authenticator",
            WAIT
        ),
        "{}",
        daemon.log()
    );
}

// --- 10. TACACS+ without TLS --------------------------------------------------------------

#[test]
fn tacacs_without_tls_is_warned_about() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let root = local_user("root", &hash("root-password"), &["Administrator"], true);
    let with_tacacs = format!(
        "[authentication]\ncurrent_sequence = 4\n\n\
         [[tacacs.servers]]\nid = 1\norder = 0\naddress = \"127.0.0.1\"\nport = {port}\nsecret = \"tacacs-shared-secret-long\"\n\n{root}"
    );
    let daemon = Daemon::start(Some(&with_tacacs));
    const WARNING: &str = "TACACS+ server without TLS";
    wait_for_count(&daemon, WARNING, 1);
    let line = daemon
        .log()
        .lines()
        .find(|l| l.contains(WARNING))
        .unwrap()
        .to_owned();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.contains("WARN"), "{line}");

    // Again at each reload while the server is configured; not once it is gone.
    reload(&daemon, &with_tacacs, 1);
    wait_for_count(&daemon, WARNING, 2);
    reload(
        &daemon,
        &format!("[authentication]\ncurrent_sequence = 5\n\n{root}"),
        2,
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(daemon.log().matches(WARNING).count(), 2, "{}", daemon.log());
}
