//! MFA helpers for the integration tests: TOTP codes from the secret of a pairing answer
//! (the otpauth URI), and enrolment of a user through the two-step login.

use std::time::{SystemTime, UNIX_EPOCH};

use portcullis::mfa::totp;
use serde_json::{Value, json};

use super::daemon::{Auth, Daemon};

/// The current TOTP time step.
pub fn now_step() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    totp::step(now)
}

/// The `secret` parameter of an otpauth URI, decoded.
pub fn secret_of(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').expect("query").1;
    let b32 = query
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .expect("secret parameter");
    totp::base32_decode(b32).expect("base32 secret")
}

/// The code of `secret` at time step `step`.
pub fn code(secret: &[u8], step: u64) -> String {
    totp::code(secret, step)
}

/// A device paired and activated: its id, secret, and the step whose code activated it.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The device id.
    pub id: String,
    /// The otpauth URI of the pairing answer.
    pub uri: String,
    /// The TOTP secret.
    pub secret: Vec<u8>,
    /// The step of the code that activated it (spent).
    pub step: u64,
}

impl Enrolled {
    /// A code the server has not seen yet: one step after the last one used.
    pub fn next_code(&mut self) -> String {
        self.step = self.step.max(now_step()) + 1;
        code(&self.secret, self.step)
    }
}

/// Pairs and activates a device with `auth` (Basic, a full or a partial token).
pub fn enrol(daemon: &Daemon, auth: Auth<'_>, name: &str) -> Enrolled {
    let pair = daemon.request(
        "POST",
        "/api/mfa/1.0/users/current/devices",
        auth,
        Some(&json!({"name": name, "os": "Android"}).to_string()),
    );
    assert_eq!(pair.status, 201, "{}", pair.body);
    let body: Value = pair.json();
    let id = body["id"].as_str().expect("id").to_string();
    let uri = body["otpauth_uri"].as_str().expect("uri").to_string();
    let secret = secret_of(&uri);
    let step = now_step();
    let activate = daemon.request(
        "POST",
        &format!("/api/mfa/1.0/users/current/devices/{id}/activate"),
        auth,
        Some(&json!({"code": code(&secret, step)}).to_string()),
    );
    assert_eq!(activate.status, 200, "{}", activate.body);
    Enrolled {
        id,
        uri,
        secret,
        step,
    }
}

/// First step of a login that owes a second factor: the partial token.
pub fn partial_login(daemon: &Daemon, user: &str, password: &str) -> String {
    let body = json!({"username": user, "password": password}).to_string();
    let answer = daemon.request("POST", "/api/auth/1.0/login", Auth::None, Some(&body));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["needTwoFactorAuth"], true, "{json}");
    json["token"].as_str().expect("token").to_string()
}

/// Second step: the full token.
pub fn finish_login(daemon: &Daemon, partial: &str, code: &str) -> String {
    let answer = daemon.request(
        "POST",
        "/api/auth/1.0/login/mfa",
        Auth::Bearer(partial),
        Some(&json!({ "code": code }).to_string()),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["needTwoFactorAuth"], false, "{json}");
    json["token"].as_str().expect("token").to_string()
}
