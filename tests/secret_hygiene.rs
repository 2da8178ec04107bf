//! Secret hygiene: a full scenario at `RUST_LOG=trace` (REST and RADIUS front-end logins,
//! right and wrong, through local users, FreeRADIUS and a TACACS+ server; HTTP Basic; secrets
//! read back cloaked; a password change; a client added), after which no configured secret or
//! password, in plain text, hex or base64, appears in anything the daemon logged, in any API
//! response or in `/metrics`; and no bearer token appears in the log.
//!
//! The one response left out of the search is the answer to `?uncloak`, whose purpose is to
//! return the secrets to an Administrator; the test checks that it does contain them, which
//! also shows the search finds what it looks for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis::engine::local::hash_password;
use support::daemon::{Auth, Daemon};
use support::freeradius::{FreeRadius, TEST_DICTIONARY};
use support::mfa_peers::SmsSink;
use support::tacacs_server::{Config as TacacsConfig, TacacsServer, User as TacacsUser};

const ADMIN_PW: &str = "Adm1n-Hyg13ne-Pw-7c4e";
const MONITOR_PW: &str = "M0n-Hyg13ne-Pw-2b9f";
const NEW_ADMIN_PW: &str = "N3w-Adm1n-Pw-e5a1";
const RADIUS_SECRET: &str = "Rad-Up-Secret-91d3f0";
const TACACS_KEY: &str = "Tac-Up-Key-4f82aa";
const FRONT_SECRET: &str = "Front-Secret-0e77c2";
const FRONT_SECRET_API: &str = "Front-Secret-Api-5d10";
const RAD_USER_PW: &str = "Rad-User-Pw-3a9c";
const TAC_USER_PW: &str = "Tac-User-Pw-8b21";
const WRONG_PW: &str = "Wr0ng-Guess-Pw-6f03";
const OTTO_PW: &str = "0tt0-Mfa-Pw-c81d";
const PAULA_PW: &str = "Paula-Sms-Pw-47be";
const SMS_BEARER: &str = "Sms-Gw-Bearer-9a3e51";

const SECRETS: &[&str] = &[
    ADMIN_PW,
    MONITOR_PW,
    NEW_ADMIN_PW,
    RADIUS_SECRET,
    TACACS_KEY,
    FRONT_SECRET,
    FRONT_SECRET_API,
    RAD_USER_PW,
    TAC_USER_PW,
    WRONG_PW,
    OTTO_PW,
    PAULA_PW,
    SMS_BEARER,
];

const REMOTE: &str = "/api/mgmt.remote_authentication/1.0";
const CLIENTS: &str = "/api/mgmt.radius_frontend/1.0/clients";

fn config(radius: &FreeRadius, tacacs: &TacacsServer, sms_url: &str) -> String {
    let admin = hash_password(ADMIN_PW.as_bytes()).unwrap();
    let monitor = hash_password(MONITOR_PW.as_bytes()).unwrap();
    let otto = hash_password(OTTO_PW.as_bytes()).unwrap();
    let paula = hash_password(PAULA_PW.as_bytes()).unwrap();
    format!(
        r#"
[authentication]
current_sequence = 1
fallback_on_reject = true

[radius.settings]
connection_timeout = 2
max_number_of_tries = 1

[[radius.servers]]
id = 1
order = 0
address = "{}"
port = {}
secret = "{RADIUS_SECRET}"

[[radius.role_mappings]]
role = "Operator"
attribute = 25
attribute_value = "operators"

[tacacs.settings]
connection_timeout = 2

[[tacacs.servers]]
id = 1
order = 0
address = "{}"
port = {}
secret = "{TACACS_KEY}"

[[tacacs.role_mappings]]
role = "Administrator"
attribute = "priv-lvl"
attribute_value = "15"

[[radius_frontend.clients]]
id = 1
name = "loopback"
address = "127.0.0.1"
secret = "{FRONT_SECRET}"

[[local_users]]
name = "admin"
password_hash = "{admin}"
roles = ["Administrator"]

[[local_users]]
name = "watcher"
password_hash = "{monitor}"
roles = ["Monitor"]

[[local_users]]
name = "otto"
password_hash = "{otto}"
roles = ["Monitor"]

[[local_users]]
name = "paula"
password_hash = "{paula}"
roles = ["Monitor"]

[mfa.policy]
required = "all"
exempt_users = ["admin", "watcher", "rhea", "theo", "nobody"]

[mfa_delivery]
application = "gateway"

[mfa_delivery.sms]
url = "{sms_url}"
bearer = "{SMS_BEARER}"
"#,
        radius.auth_addr.ip(),
        radius.auth_addr.port(),
        tacacs.addr().ip(),
        tacacs.addr().port(),
    )
}

/// Every form a secret could leak in.
fn forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_string(),
        hex::encode(secret),
        hex::encode_upper(secret),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ]
}

/// A Basic header value carries `user:password` in base64: look for that too.
fn basic_forms(user: &str, password: &str) -> Vec<String> {
    let pair = format!("{user}:{password}");
    vec![STANDARD.encode(&pair), URL_SAFE_NO_PAD.encode(&pair)]
}

/// `radclient` PAP login through the front-end; whether it was accepted.
fn frontend_login(daemon: &Daemon, user: &str, password: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dictionary"), TEST_DICTIONARY).unwrap();
    let mut cmd = Command::new("radclient");
    cmd.arg("-x")
        .arg("-d")
        .arg(dir.path())
        .args(["-t", "3", "-r", "1"])
        .arg(daemon.radius_addr.expect("front-end").to_string())
        .arg("auth")
        .arg(FRONT_SECRET);
    let input = format!("User-Name = {user}\nUser-Password = \"{password}\"\n");
    let output = support::freeradius::run_bounded(&mut cmd, &input, Duration::from_secs(20));
    assert!(
        output.received("Access-Accept") || output.received("Access-Reject"),
        "{output:?}"
    );
    output.received("Access-Accept")
}

#[test]
fn no_secret_reaches_logs_responses_or_metrics() {
    let radius = FreeRadius::start_with_secret(
        &format!(
            "rhea\tCleartext-Password := \"{RAD_USER_PW}\"\n\tClass = \"operators\"\n\n\
             DEFAULT\tAuth-Type := Reject\n"
        ),
        RADIUS_SECRET,
    );
    let mut tacacs_config = TacacsConfig::new(vec![TacacsUser::new(
        "theo",
        TAC_USER_PW,
        &[("priv-lvl", "15")],
    )]);
    tacacs_config.key = TACACS_KEY.into();
    let tacacs = TacacsServer::start(tacacs_config);
    let sms = SmsSink::start();
    let daemon = Daemon::start_logging(Some(&config(&radius, &tacacs, &sms.url())), &[], "trace");

    let mut responses: Vec<String> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut keep = |answer: support::daemon::Answer| {
        responses.push(answer.body.clone());
        answer
    };
    let login = |user: &str, password: &str| {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        daemon.request("POST", "/api/auth/1.0/login", Auth::None, Some(&body))
    };

    // REST logins, right and wrong, through each method.
    for (user, password, method) in [
        ("admin", ADMIN_PW, "Local"),
        ("rhea", RAD_USER_PW, "RADIUS"),
        ("theo", TAC_USER_PW, "TACACS+"),
    ] {
        let ok = keep(login(user, password));
        assert_eq!(ok.status, 200, "{user}: {}", ok.body);
        assert_eq!(ok.json()["method"], method, "{}", ok.body);
        tokens.push(ok.json()["token"].as_str().unwrap().to_string());
        let wrong = keep(login(user, WRONG_PW));
        assert_eq!(wrong.status, 401, "{user}: {}", wrong.body);
    }
    assert_eq!(keep(login("nobody", WRONG_PW)).status, 401);
    assert!(
        !tacacs.received().starts.is_empty(),
        "TACACS+ was not asked"
    );

    // Sessions.
    let session = keep(daemon.request(
        "GET",
        "/api/auth/1.0/session",
        Auth::Bearer(&tokens[0]),
        None,
    ));
    assert_eq!(session.status, 200, "{}", session.body);
    let logout = keep(daemon.request(
        "POST",
        "/api/auth/1.0/logout",
        Auth::Bearer(&tokens[2]),
        None,
    ));
    assert_eq!(logout.status, 204);
    let gone = keep(daemon.request(
        "GET",
        "/api/auth/1.0/session",
        Auth::Bearer(&tokens[2]),
        None,
    ));
    assert_eq!(gone.status, 401);

    // The RADIUS front-end, right and wrong, through each method.
    assert!(frontend_login(&daemon, "admin", ADMIN_PW));
    assert!(frontend_login(&daemon, "rhea", RAD_USER_PW));
    assert!(frontend_login(&daemon, "theo", TAC_USER_PW));
    assert!(!frontend_login(&daemon, "rhea", WRONG_PW));

    // HTTP Basic, right and wrong; secrets read back cloaked.
    // A TOTP pairing and a two-step login for otto, who owes a second factor.
    let partial = keep(login("otto", OTTO_PW));
    assert_eq!(partial.status, 200, "{}", partial.body);
    assert_eq!(
        partial.json()["needTwoFactorAuth"],
        true,
        "{}",
        partial.body
    );
    let partial = partial.json()["token"].as_str().unwrap().to_string();
    tokens.push(partial.clone());
    // The pairing answer is the one place the secret must appear (as the otpauth URI the
    // user scans), so exactly that response is left out of the search.
    let pair = daemon.request(
        "POST",
        "/api/mfa/1.0/users/current/devices",
        Auth::Bearer(&partial),
        Some(r#"{"name": "phone", "os": "Android"}"#),
    );
    assert_eq!(pair.status, 201, "{}", pair.body);
    let device = pair.json()["id"].as_str().unwrap().to_string();
    let uri = pair.json()["otpauth_uri"].as_str().unwrap().to_string();
    let totp_secret = support::mfa::secret_of(&uri);
    let step = support::mfa::now_step();
    let activation_code = support::mfa::code(&totp_secret, step);
    let login_code = support::mfa::code(&totp_secret, step + 1);
    let wrong_code = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| (step - 2..=step + 3).all(|s| support::mfa::code(&totp_secret, s) != *c))
        .unwrap();
    let activated = keep(daemon.request(
        "POST",
        &format!("/api/mfa/1.0/users/current/devices/{device}/activate"),
        Auth::Bearer(&partial),
        Some(&format!(r#"{{"code": "{activation_code}"}}"#)),
    ));
    assert_eq!(activated.status, 200, "{}", activated.body);
    let second_step = |code: &str| {
        daemon.request(
            "POST",
            "/api/auth/1.0/login/mfa",
            Auth::Bearer(&partial),
            Some(&format!(r#"{{"code": "{code}"}}"#)),
        )
    };
    let refused = keep(second_step(&wrong_code));
    assert_eq!(refused.status, 401, "{}", refused.body);
    let full = keep(second_step(&login_code));
    assert_eq!(full.status, 200, "{}", full.body);
    tokens.push(full.json()["token"].as_str().unwrap().to_string());

    // A delivered code: paula's phone number validated, then a two-step login by SMS.
    let sms_code = || {
        let request = sms.next();
        let text = request.body["message"].as_str().unwrap().to_string();
        text.split_whitespace().last().unwrap().to_string()
    };
    let app = keep(daemon.request(
        "POST",
        "/api/mfa/1.0/applications",
        Auth::Basic("admin", ADMIN_PW),
        Some(r#"{"name": "gateway", "auth_code_length": 8, "auth_token_type": "NUMERIC"}"#),
    ));
    assert_eq!(app.status, 200, "{}", app.body);
    let paula = format!(
        "/api/mfa/1.0/applications/{}/users/paula",
        app.json()["id"].as_str().unwrap()
    );
    let associated = keep(daemon.request(
        "POST",
        &format!("{paula}/associate"),
        Auth::Basic("admin", ADMIN_PW),
        Some(r#"{"address": "+15550100042"}"#),
    ));
    assert_eq!(associated.status, 200, "{}", associated.body);
    let validation_code = sms_code();
    let validated = keep(daemon.request(
        "POST",
        &format!("{paula}/validate"),
        Auth::Basic("admin", ADMIN_PW),
        Some(&format!(r#"{{"validation_code": "{validation_code}"}}"#)),
    ));
    assert_eq!(validated.status, 200, "{}", validated.body);
    let partial = keep(login("paula", PAULA_PW));
    assert_eq!(
        partial.json()["needTwoFactorAuth"],
        true,
        "{}",
        partial.body
    );
    let partial = partial.json()["token"].as_str().unwrap().to_string();
    tokens.push(partial.clone());
    let delivered_code = sms_code();
    let full = keep(daemon.request(
        "POST",
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(&partial),
        Some(&format!(r#"{{"code": "{delivered_code}"}}"#)),
    ));
    assert_eq!(full.status, 200, "{}", full.body);
    tokens.push(full.json()["token"].as_str().unwrap().to_string());
    let codes = [
        activation_code,
        login_code,
        wrong_code,
        validation_code,
        delivered_code,
    ];

    let admin = Auth::Basic("admin", ADMIN_PW);
    let monitor = Auth::Basic("watcher", MONITOR_PW);
    for path in [
        format!("{REMOTE}/radius/server"),
        format!("{REMOTE}/tacacs/server"),
        format!("{REMOTE}/radius/settings"),
        format!("{REMOTE}/tacacs/settings"),
        CLIENTS.to_string(),
        "/api/mgmt.local_users/1.0/users".to_string(),
        "/api/mgmt.throttle/1.0/lockouts".to_string(),
    ] {
        for auth in [admin, monitor] {
            let answer = keep(daemon.request("GET", &path, auth, None));
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        }
    }
    assert_eq!(
        keep(daemon.request("GET", CLIENTS, Auth::Basic("admin", WRONG_PW), None)).status,
        401
    );
    let added = keep(daemon.request(
        "POST",
        CLIENTS,
        admin,
        Some(&format!(
            r#"{{"name": "vpn", "address": "10.9.9.0/24", "secret": "{FRONT_SECRET_API}"}}"#
        )),
    ));
    assert_eq!(added.status, 201, "{}", added.body);
    let changed = keep(daemon.request(
        "PUT",
        "/api/mgmt.local_users/1.0/users/admin/password",
        admin,
        Some(&format!(r#"{{"password": "{NEW_ADMIN_PW}"}}"#)),
    ));
    assert!(changed.status < 300, "{}", changed.body);
    let relogin = keep(login("admin", NEW_ADMIN_PW));
    assert_eq!(relogin.status, 200, "{}", relogin.body);
    tokens.push(relogin.json()["token"].as_str().unwrap().to_string());
    let admin = Auth::Basic("admin", NEW_ADMIN_PW);

    // Uncloaked answers carry the secrets by design: checked, and left out of the search.
    let uncloaked = [
        daemon.request(
            "GET",
            &format!("{REMOTE}/radius/server?uncloak"),
            admin,
            None,
        ),
        daemon.request(
            "GET",
            &format!("{REMOTE}/tacacs/server?uncloak"),
            admin,
            None,
        ),
        daemon.request("GET", &format!("{CLIENTS}?uncloak"), admin, None),
    ];
    let uncloaked: String = uncloaked.iter().map(|a| a.body.as_str()).collect();
    for secret in [RADIUS_SECRET, TACACS_KEY, FRONT_SECRET, FRONT_SECRET_API] {
        assert!(uncloaked.contains(secret), "{secret} not in {uncloaked}");
    }

    // Metrics, where the route exists.
    let metrics = daemon.request("GET", "/metrics", Auth::None, None);
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let metrics = metrics.body;
    assert!(
        metrics.contains("portcullis_mfa_outcomes_total"),
        "{metrics}"
    );

    // Let the log reader catch up with the last request.
    std::thread::sleep(Duration::from_millis(300));
    let log = daemon.log();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "not a trace log:\n{log}"
    );

    let mut needles: Vec<(String, String)> = Vec::new();
    for secret in SECRETS {
        for form in forms(secret) {
            needles.push((secret.to_string(), form));
        }
    }
    for (user, password) in [
        ("admin", ADMIN_PW),
        ("admin", NEW_ADMIN_PW),
        ("admin", WRONG_PW),
        ("watcher", MONITOR_PW),
    ] {
        for form in basic_forms(user, password) {
            needles.push((format!("Basic {user}"), form));
        }
    }
    let b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    for form in [
        b32.clone(),
        b32.to_ascii_lowercase(),
        hex::encode(&totp_secret),
        hex::encode_upper(&totp_secret),
        STANDARD.encode(&totp_secret),
        URL_SAFE_NO_PAD.encode(&totp_secret),
    ] {
        needles.push(("TOTP secret".to_string(), form));
    }
    let mut hits = Vec::new();
    // Codes are six digits: a hit is a run of exactly those digits, not part of a longer
    // number or of a timestamp's fraction of a second.
    for code in &codes {
        for (place, text) in [
            ("log", &log),
            ("metrics", &metrics),
            ("responses", &responses.join("\n")),
        ] {
            for line in text.lines() {
                let bytes = line.as_bytes();
                let leak = line.match_indices(code.as_str()).any(|(at, _)| {
                    let before = at.checked_sub(1).map(|i| bytes[i]);
                    let after = bytes.get(at + code.len()).copied();
                    !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
                        && !after.is_some_and(|b| b.is_ascii_digit())
                });
                if leak {
                    hits.push(format!("code {code} in {place}: {line}"));
                }
            }
        }
    }
    for (what, needle) in &needles {
        for (place, text) in [
            ("log", &log),
            ("metrics", &metrics),
            ("responses", &responses.join("\n")),
        ] {
            if let Some(at) = text.find(needle.as_str()) {
                let line = text[..at].rsplit('\n').next().unwrap_or("").to_string()
                    + text[at..].split('\n').next().unwrap_or("");
                hits.push(format!("{what} as {needle:?} in {place}: {line}"));
            }
        }
    }
    for token in &tokens {
        if let Some(line) = log.lines().find(|l| l.contains(token.as_str())) {
            hits.push(format!("bearer token in log: {line}"));
        }
    }
    assert!(
        hits.is_empty(),
        "{} leaks:\n{}",
        hits.len(),
        hits.join("\n")
    );
    println!(
        "searched {} log lines, {} responses, {} bytes of metrics for {} needles and {} tokens",
        log.lines().count(),
        responses.len(),
        metrics.len(),
        needles.len(),
        tokens.len()
    );
}
