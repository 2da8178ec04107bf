//! Paired TOTP devices through the real daemon (curl as the client): pairing answers an
//! otpauth URI and a QR code that decodes back to it, activation with the first code, the
//! reference's list shape and error body, unpairing, and the secrets sealed at rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine as _;
use portcullis::engine::local::hash_password;
use serde_json::json;
use support::daemon::{Auth, Daemon};
use support::mfa::{code, enrol, finish_login, now_step, partial_login, secret_of};

const ADMIN: Auth<'static> = Auth::Basic("admin", "admin-password");
const WATCHER: Auth<'static> = Auth::Basic("watcher", "watcher-password");
const CURRENT: &str = "/api/mfa/1.0/users/current/devices";

fn config() -> String {
    let admin = hash_password(b"admin-password").unwrap();
    let watcher = hash_password(b"watcher-password").unwrap();
    format!(
        r#"
[[local_users]]
name = "admin"
password_hash = "{admin}"
roles = ["Administrator"]

[[local_users]]
name = "watcher"
password_hash = "{watcher}"
roles = ["Monitor"]
"#
    )
}

/// Decodes the base64 PNG and reads the QR code in it.
fn qr_text(qr_png: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(qr_png)
        .unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.width, info.height);
    assert!(info.width >= 100 && info.width <= 1000, "{}", info.width);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[test]
fn pair_activate_list_and_unpair() {
    let daemon = Daemon::start(Some(&config()));
    let pair = daemon.request(
        "POST",
        CURRENT,
        ADMIN,
        Some(r#"{"name": "iPhone 6", "os": "iOS"}"#),
    );
    assert_eq!(pair.status, 201, "{}", pair.body);
    let body = pair.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("mobile-sha256-"), "{id}");
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/portcullis:admin?secret="),
        "{uri}"
    );
    assert!(
        uri.ends_with("&issuer=portcullis&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    let secret = secret_of(uri);
    assert_eq!(secret.len(), 20);
    assert_eq!(qr_text(body["qr_png"].as_str().unwrap()), uri);

    // Pending: listed with activated null.
    let list = daemon.request("GET", CURRENT, ADMIN, None).json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["name"], "iPhone 6");
    assert_eq!(list["items"][0]["os"], "iOS");
    assert!(list["items"][0]["activated"].is_null());
    assert!(list["items"][0]["lastUsed"].is_null());

    // A wrong code does not activate it.
    let step = now_step();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| (step - 1..=step + 2).all(|s| code(&secret, s) != *c))
        .unwrap();
    let activate = format!("{CURRENT}/{id}/activate");
    let refused = daemon.request(
        "POST",
        &activate,
        ADMIN,
        Some(&json!({ "code": wrong }).to_string()),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error_code"], "INVALID_REQUEST_DATA");
    assert_eq!(refused.json()["property"], "code");

    let activated = daemon.request(
        "POST",
        &activate,
        ADMIN,
        Some(&json!({ "code": code(&secret, step) }).to_string()),
    );
    assert_eq!(activated.status, 200, "{}", activated.body);
    let device = activated.json();
    assert!(device["activated"].as_str().unwrap().ends_with('Z'));
    let again = daemon.request(
        "POST",
        &activate,
        ADMIN,
        Some(&json!({ "code": code(&secret, step + 1) }).to_string()),
    );
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.json()["error_code"], "VALUE_DUPLICATE");

    // The administrator's list of the user, and a Monitor's; each user's own list.
    let admins = daemon
        .request("GET", "/api/mfa/1.0/users/admin/devices", WATCHER, None)
        .json();
    assert_eq!(admins["count"], 1);
    assert_eq!(admins["items"][0]["id"], id.as_str());
    assert_eq!(
        daemon.request("GET", CURRENT, WATCHER, None).json()["count"],
        0
    );

    // A Monitor cannot unpair someone else's device, nor a device that is not theirs.
    let denied = daemon.request(
        "DELETE",
        &format!("/api/mfa/1.0/users/admin/devices/{id}"),
        WATCHER,
        None,
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.json()["error_code"], "PERMISSION_DENIED");
    let not_theirs = daemon.request("DELETE", &format!("{CURRENT}/{id}"), WATCHER, None);
    assert_eq!(not_theirs.status, 404, "{}", not_theirs.body);

    // The owner unpairs it; then it is gone.
    let unpaired = daemon.request("DELETE", &format!("{CURRENT}/{id}"), ADMIN, None);
    assert_eq!(unpaired.status, 200, "{}", unpaired.body);
    let gone = daemon.request("DELETE", &format!("{CURRENT}/{id}"), ADMIN, None);
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert_eq!(gone.json()["error_code"], "GENERAL_ERROR");
    assert_eq!(
        daemon.request("GET", CURRENT, ADMIN, None).json()["count"],
        0
    );

    // An administrator unpairs another user's device.
    let watcher_device = enrol(&daemon, WATCHER, "tablet");
    let removed = daemon.request(
        "DELETE",
        &format!("/api/mfa/1.0/users/watcher/devices/{}", watcher_device.id),
        ADMIN,
        None,
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        daemon.request("GET", CURRENT, WATCHER, None).json()["count"],
        0
    );
}

#[test]
fn invalid_pairing_requests_name_the_property() {
    let daemon = Daemon::start(Some(&config()));
    let cases = [
        (r#"{"os": "iOS"}"#, "REQUIRED_VALUE_MISSING", Some("name")),
        (
            r#"{"name": "p", "os": 7}"#,
            "VALUE_INCORRECT_TYPE",
            Some("os"),
        ),
        (
            r#"{"name": "", "os": "iOS"}"#,
            "VALUE_OUT_OF_BOUNDS",
            Some("name"),
        ),
        (
            &*format!(r#"{{"name": "{}", "os": "iOS"}}"#, "x".repeat(65)),
            "VALUE_OUT_OF_BOUNDS",
            Some("name"),
        ),
        (
            r#"{"name": "p", "os": "iOS", "colour": "red"}"#,
            "INVALID_REQUEST_DATA",
            Some("colour"),
        ),
        ("[1]", "BAD_REQUEST", None),
        ("{not json", "BAD_REQUEST", None),
    ];
    for (body, code, property) in cases {
        let answer = daemon.request("POST", CURRENT, ADMIN, Some(body));
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        let json = answer.json();
        assert_eq!(json["error_code"], code, "{body}");
        assert_eq!(json["property"].as_str(), property, "{body}");
        assert!(json["error_message"].is_string());
        assert!(json["details"].is_array());
    }
    let anonymous = daemon.request("GET", CURRENT, Auth::None, None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["error_code"], "PERMISSION_DENIED");

    // At most ten devices per user.
    for n in 0..10 {
        let body = json!({"name": format!("p{n}"), "os": "iOS"}).to_string();
        assert_eq!(
            daemon.request("POST", CURRENT, ADMIN, Some(&body)).status,
            201
        );
    }
    let full = daemon.request(
        "POST",
        CURRENT,
        ADMIN,
        Some(r#"{"name": "p", "os": "iOS"}"#),
    );
    assert_eq!(full.status, 400, "{}", full.body);
    assert_eq!(full.json()["error_code"], "OUT_OF_RESOURCES");
}

#[test]
fn secrets_are_sealed_at_rest_under_a_private_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start(Some(&config()));
    let device = enrol(&daemon, ADMIN, "phone");
    let b32 = device
        .uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();

    let state = daemon.dir().join("state");
    let key = state.join("mfa.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);

    // Neither the raw secret nor its base32 form is in any file of the database (the WAL
    // included).
    let mut files = 0;
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("portcullis.db") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(20).any(|w| w == device.secret.as_slice()),
            "{name} holds the secret"
        );
        assert!(
            !bytes.windows(b32.len()).any(|w| w == b32.as_bytes()),
            "{name} holds the base32 secret"
        );
    }
    assert!(files >= 1);
    // The device row is there, its secret sealed (nonce, 20 octets, tag).
    let db = rusqlite::Connection::open(state.join("portcullis.db")).unwrap();
    let sealed: Vec<u8> = db
        .query_row(
            "SELECT secret FROM mfa_devices WHERE id = ?1",
            [&device.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sealed.len(), 12 + 20 + 16);

    // After a restart the same key opens it: with MFA required, its next code logs in.
    let key_before = std::fs::read(&key).unwrap();
    let policy = daemon.request(
        "POST",
        "/api/mfa/1.0/policy",
        ADMIN,
        Some(r#"{"required": "all"}"#),
    );
    assert_eq!(policy.status, 200, "{}", policy.body);
    let daemon = daemon.restart();
    assert_eq!(
        std::fs::read(daemon.dir().join("state/mfa.key")).unwrap(),
        key_before
    );
    let mut device = device;
    let partial = partial_login(&daemon, "admin", "admin-password");
    let token = finish_login(&daemon, &partial, &device.next_code());
    let list = daemon
        .request("GET", CURRENT, Auth::Bearer(&token), None)
        .json();
    assert_eq!(list["count"], 1);
    assert!(
        list["items"][0]["lastUsed"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}
