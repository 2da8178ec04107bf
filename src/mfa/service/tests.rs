use std::sync::{Arc, Mutex};

use portcullis_config::SmsDelivery;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const NOW: i64 = 1_800_000_000;

/// Runs `f` in one state transaction (rolled back when it fails), with the result nested as
/// `StateDb::with` nests it.
fn in_tx<T>(
    db: &StateDb,
    f: impl FnOnce(&mut dyn MfaTx) -> Result<T, MfaError>,
) -> Result<Result<T, MfaError>, StateError> {
    Ok(crate::state::mfa::transaction(db, f))
}

fn db() -> StateDb {
    StateDb::in_memory().unwrap()
}

fn fields(name: &str) -> ApplicationFields {
    ApplicationFields {
        name: Some(name.into()),
        ..ApplicationFields::default()
    }
}

fn create(db: &StateDb, f: ApplicationFields) -> Result<Application, MfaError> {
    in_tx(db, |c| create_application(c, f, NOW)).unwrap()
}

/// Sends a code without delivery (the two transactions around it), returning the code.
fn sent(
    db: &StateDb,
    app: &str,
    user: &str,
    purpose: Purpose,
    address: Option<&str>,
    now: i64,
) -> Result<String, MfaError> {
    // Two transactions, as a send makes them.
    let d = in_tx(db, |c| {
        draft(
            c,
            app,
            user,
            purpose,
            address,
            &[Channel::Sms, Channel::Email],
            now,
        )
    })
    .unwrap()?;
    in_tx(db, |c| commit(c, &d, now)).unwrap()?;
    Ok(d.code)
}

fn checked(db: &StateDb, app: &str, user: &str, code: &str, now: i64) -> CodeCheck {
    in_tx(db, |c| {
        check(
            c,
            app,
            user,
            code,
            &[Purpose::Associate, Purpose::Login],
            now,
        )
    })
    .unwrap()
    .unwrap()
}

fn user(db: &StateDb, app: &str, id: &str) -> User {
    in_tx(db, |c| get_user(c, app, id)).unwrap().unwrap()
}

#[test]
fn applications_defaults_versions_and_names() {
    let db = db();
    let app = create(&db, fields("vpn")).unwrap();
    assert_eq!(app.id.len(), 32);
    assert_eq!(app.version_number, 1);
    assert_eq!(app.auth_code_length, 6);
    assert_eq!(app.auth_token_type, "NUMERIC");
    assert_eq!(app.auth_token_delivery_methods, "SMS");
    assert_eq!(app.display_name, "vpn");
    assert!(matches!(
        create(&db, fields("vpn")),
        Err(MfaError::Duplicate(_))
    ));

    let change = ApplicationFields {
        description: Some("VPN logins".into()),
        ..ApplicationFields::default()
    };
    let updated = in_tx(&db, |c| {
        update_application(c, &app.id, change.clone(), 1, NOW + 5)
    })
    .unwrap()
    .unwrap();
    assert_eq!(updated.version_number, 2);
    assert_eq!(updated.updated, NOW + 5);
    assert_eq!(updated.description, "VPN logins");
    // The same version again is stale now.
    let stale = in_tx(&db, |c| update_application(c, &app.id, change, 1, NOW + 6)).unwrap();
    assert_eq!(stale, Err(MfaError::Stale { current: 2 }));

    let other = create(&db, fields("ssh")).unwrap();
    let rename = ApplicationFields {
        name: Some("vpn".into()),
        ..ApplicationFields::default()
    };
    let taken = in_tx(&db, |c| update_application(c, &other.id, rename, 1, NOW)).unwrap();
    assert!(matches!(taken, Err(MfaError::Duplicate(_))), "{taken:?}");

    let listed = in_tx(&db, |c| list_applications(c, &[])).unwrap().unwrap();
    assert_eq!(listed.len(), 2);
    let by_name = in_tx(&db, |c| {
        list_applications(c, &[("name".into(), "ssh".into())])
    })
    .unwrap()
    .unwrap();
    assert_eq!(by_name, std::slice::from_ref(&other));
    in_tx(&db, |c| delete_application(c, &other.id))
        .unwrap()
        .unwrap();
    assert!(matches!(
        in_tx(&db, |c| get_application(c, &other.id)).unwrap(),
        Err(MfaError::NotFound(_))
    ));
}

#[test]
fn application_values_are_checked() {
    let db = db();
    let long = "x".repeat(MAX_NAME + 1);
    assert!(matches!(
        create(&db, fields(&long)),
        Err(MfaError::TooLong(_))
    ));
    let cases = [
        ApplicationFields {
            auth_code_length: Some(3),
            ..fields("a")
        },
        ApplicationFields {
            auth_code_length: Some(33),
            ..fields("a")
        },
        ApplicationFields {
            auth_token_type: Some("HEX".into()),
            ..fields("a")
        },
        ApplicationFields {
            auth_token_validity_duration: Some(0),
            ..fields("a")
        },
        ApplicationFields {
            auth_token_delivery_methods: Some("PIGEON".into()),
            ..fields("a")
        },
        ApplicationFields {
            login_template: Some("no code here".into()),
            ..fields("a")
        },
        ApplicationFields {
            auth_token_prefix: Some("A B".into()),
            ..fields("a")
        },
        ApplicationFields {
            display_name: Some("bad\r\nBcc: x".into()),
            ..fields("a")
        },
        fields(" "),
        ApplicationFields::default(),
    ];
    for case in cases {
        let result = create(&db, case.clone());
        assert!(
            matches!(result, Err(MfaError::BadRequest(_))),
            "{case:?}: {result:?}"
        );
    }
    let description = ApplicationFields {
        description: Some("d".repeat(MAX_TEXT + 1)),
        ..fields("a")
    };
    assert!(matches!(
        create(&db, description),
        Err(MfaError::TooLong(_))
    ));
}

#[test]
fn filters() {
    let db = db();
    let app = create(
        &db,
        ApplicationFields {
            auth_code_length: Some(8),
            auth_token_type: Some("ALPHA".into()),
            ..fields("one")
        },
    )
    .unwrap();
    create(&db, fields("two")).unwrap();
    let list = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        in_tx(&db, |c| list_applications(c, &pairs)).unwrap()
    };
    assert_eq!(
        list(&[("auth_code_length", "8")]).unwrap(),
        std::slice::from_ref(&app)
    );
    assert_eq!(list(&[("auth_token_type", "ALPHA")]).unwrap().len(), 1);
    assert_eq!(
        list(&[("auth_token_delivery_methods", "SMS")])
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list(&[("created_date", &time::rfc3339(NOW)[..10])])
            .unwrap()
            .len(),
        2
    );
    assert_eq!(list(&[("created_date", "2001-01-01")]).unwrap().len(), 0);
    assert_eq!(list(&[("id", &app.id), ("name", "two")]).unwrap().len(), 0);
    assert!(matches!(
        list(&[("auth_code_length", "six")]),
        Err(MfaError::BadRequest(_))
    ));
    assert!(matches!(
        list(&[("colour", "red")]),
        Err(MfaError::BadRequest(_))
    ));
    assert!(matches!(
        list(&[("auth_token_type", "HEX")]),
        Err(MfaError::BadRequest(_))
    ));
    assert!(matches!(
        list(&[("auth_token_delivery_methods", "FAX")]),
        Err(MfaError::BadRequest(_))
    ));
    assert!(matches!(
        list(&[("created_date", "soon")]),
        Err(MfaError::BadRequest(_))
    ));
    assert!(matches!(
        list(&[("name", &"n".repeat(MAX_NAME + 1))]),
        Err(MfaError::TooLong(_))
    ));
}

#[test]
fn association_validation_and_login_codes() {
    let db = db();
    let app = create(
        &db,
        ApplicationFields {
            auth_token_prefix: Some("G-".into()),
            ..fields("gw")
        },
    )
    .unwrap();
    // Login before any address: the user does not exist.
    assert!(matches!(
        sent(&db, &app.id, "alice", Purpose::Login, None, NOW),
        Err(MfaError::NotFound(_))
    ));
    assert!(matches!(
        sent(
            &db,
            &app.id,
            "alice",
            Purpose::Associate,
            Some("not a phone"),
            NOW
        ),
        Err(MfaError::BadRequest(_))
    ));
    let code = sent(
        &db,
        &app.id,
        "alice",
        Purpose::Associate,
        Some("+1 (555) 123-4567"),
        NOW,
    )
    .unwrap();
    assert!(code.starts_with("G-") && code.len() == 8, "{code}");
    assert!(code[2..].bytes().all(|b| b.is_ascii_digit()));
    let pending = user(&db, &app.id, "alice");
    assert_eq!(pending.status, "VALIDATION PENDING");
    assert_eq!(pending.user_address, "+15551234567");
    assert_eq!(pending.version_number, 1);
    // Not validated yet: no login code.
    assert_eq!(
        sent(&db, &app.id, "alice", Purpose::Login, None, NOW),
        Err(MfaError::NotValidated)
    );
    // The code is stored hashed only.
    let stored: Vec<u8> = db
        .with(|c| Ok(c.query_row("SELECT hash FROM mfa_codes", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!stored.windows(6).any(|w| w == &code.as_bytes()[2..]));

    // With or without the prefix; single use.
    assert_eq!(
        checked(&db, &app.id, "alice", &code[2..], NOW + 1),
        CodeCheck::Success(Purpose::Associate)
    );
    let validated = user(&db, &app.id, "alice");
    assert_eq!(validated.status, "VALIDATED");
    assert_eq!(validated.version_number, 2);
    assert_eq!(
        checked(&db, &app.id, "alice", &code, NOW + 2),
        CodeCheck::Invalid
    );

    let login = sent(&db, &app.id, "alice", Purpose::Login, None, NOW + 3).unwrap();
    assert_eq!(
        checked(&db, &app.id, "alice", &login, NOW + 4),
        CodeCheck::Success(Purpose::Login)
    );
    assert_eq!(
        checked(&db, &app.id, "alice", &login, NOW + 5),
        CodeCheck::Invalid
    );

    // Expiry: validity is 300 s by default.
    let login = sent(&db, &app.id, "alice", Purpose::Login, None, NOW + 10).unwrap();
    assert_eq!(
        checked(&db, &app.id, "alice", &login, NOW + 10 + 300),
        CodeCheck::Expired
    );
    // An expired code is dropped: the same code is now simply invalid.
    assert_eq!(
        checked(&db, &app.id, "alice", &login, NOW + 10 + 301),
        CodeCheck::Invalid
    );

    // Dissociation: back to INITIAL, no login codes.
    let initial = in_tx(&db, |c| dissociate(c, &app.id, "alice", NOW + 20))
        .unwrap()
        .unwrap();
    assert_eq!(initial.status, "INITIAL");
    assert_eq!(initial.user_address, "");
    assert_eq!(
        sent(&db, &app.id, "alice", Purpose::Login, None, NOW + 21),
        Err(MfaError::NotValidated)
    );
}

#[test]
fn wrong_codes_lock_and_sends_are_limited() {
    let db = db();
    let app = create(&db, fields("gw")).unwrap();
    let code = sent(
        &db,
        &app.id,
        "bob",
        Purpose::Associate,
        Some("+15550000001"),
        NOW,
    )
    .unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..MAX_FAILURES {
        assert_eq!(checked(&db, &app.id, "bob", wrong, NOW), CodeCheck::Invalid);
    }
    // Locked: even the right code is refused, and no new code is sent.
    assert_eq!(
        checked(&db, &app.id, "bob", &code, NOW + 1),
        CodeCheck::Locked
    );
    assert!(matches!(
        sent(
            &db,
            &app.id,
            "bob",
            Purpose::Associate,
            Some("+15550000001"),
            NOW + 1
        ),
        Err(MfaError::TooMany(_))
    ));
    // After the lock the old code is gone; a new one works.
    let later = NOW + LOCKOUT_SECONDS + 1;
    assert_eq!(
        checked(&db, &app.id, "bob", &code, later),
        CodeCheck::Invalid
    );
    let code = sent(
        &db,
        &app.id,
        "bob",
        Purpose::Associate,
        Some("+15550000001"),
        later,
    )
    .unwrap();
    assert_eq!(
        checked(&db, &app.id, "bob", &code, later),
        CodeCheck::Success(Purpose::Associate)
    );

    // Send limit: MAX_SENDS per window, the attempts above included.
    let app2 = create(&db, fields("gw2")).unwrap();
    for i in 0..MAX_SENDS {
        sent(
            &db,
            &app2.id,
            "carol",
            Purpose::Associate,
            Some("+15550000002"),
            NOW + i,
        )
        .unwrap();
    }
    assert!(matches!(
        sent(
            &db,
            &app2.id,
            "carol",
            Purpose::Associate,
            Some("+15550000002"),
            NOW + 10
        ),
        Err(MfaError::TooMany(_))
    ));
    // Another user of the same application is not affected; the window slides.
    sent(
        &db,
        &app2.id,
        "dave",
        Purpose::Associate,
        Some("+15550000003"),
        NOW + 10,
    )
    .unwrap();
    sent(
        &db,
        &app2.id,
        "carol",
        Purpose::Associate,
        Some("+15550000002"),
        NOW + SEND_WINDOW + 1,
    )
    .unwrap();
}

#[test]
fn every_code_type_and_prefix() {
    let db = db();
    for (i, t) in TokenType::ALL.into_iter().enumerate() {
        let app = create(
            &db,
            ApplicationFields {
                auth_token_type: Some(t.as_str().into()),
                auth_code_length: Some(10),
                auth_token_prefix: Some(format!("P{i}#")),
                auth_token_delivery_methods: Some("EMAIL".into()),
                ..fields(t.as_str())
            },
        )
        .unwrap();
        let code = sent(
            &db,
            &app.id,
            "u",
            Purpose::Associate,
            Some("u@example.com"),
            NOW,
        )
        .unwrap();
        let prefix = format!("P{i}#");
        let random = code.strip_prefix(&prefix).unwrap();
        assert_eq!(random.len(), 10);
        let alphabet = t.alphabet();
        assert!(
            random.bytes().all(|b| alphabet.contains(&b)),
            "{t:?} {code}"
        );
        // ALPHA and ALPHANUMERIC codes may be typed in lower case.
        let typed = match t {
            TokenType::Alpha | TokenType::Alphanumeric => {
                code.to_ascii_lowercase().replace("p", "P")
            }
            _ => code.clone(),
        };
        assert_eq!(
            checked(&db, &app.id, "u", &typed, NOW),
            CodeCheck::Success(Purpose::Associate),
            "{t:?} {code} typed {typed}"
        );
    }
}

#[test]
fn templates() {
    assert_eq!(
        render("$display_name: $code ($codes) $x $", "Gate $code", "123"),
        "Gate $code: 123 (123s) $x $"
    );
    assert_eq!(
        render(DEFAULT_LOGIN_TEMPLATE, "VPN", "42"),
        "VPN: your login code is 42"
    );
}

#[test]
fn addresses() {
    assert_eq!(
        check_address(Channel::Sms, "+1 555-123.4567").unwrap(),
        "+15551234567"
    );
    assert!(check_address(Channel::Sms, "12345").is_err());
    assert!(check_address(Channel::Sms, "+1234567890123456").is_err());
    assert!(check_address(Channel::Sms, "alice@example.com").is_err());
    assert!(check_address(Channel::Email, "alice@example.com").is_ok());
    assert!(check_address(Channel::Email, "alice").is_err());
    assert!(matches!(
        check_address(Channel::Email, &format!("{}@example.com", "a".repeat(250))),
        Err(MfaError::TooLong(_))
    ));
}

/// An SMS gateway on loopback that answers `status` and keeps the JSON bodies it receives.
async fn gateway(status: &'static str) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            let body = loop {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break None;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap();
                    if body.len() >= length {
                        break Some(body.to_owned());
                    }
                }
            };
            if let Some(body) = body {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
            }
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, received)
}

fn delivery(url: String) -> MfaDelivery {
    MfaDelivery {
        application: "portcullis".into(),
        smtp: None,
        sms: Some(SmsDelivery {
            url,
            bearer: None,
            ca_file: None,
            timeout: 5,
        }),
    }
}

fn last_code(received: &Arc<Mutex<Vec<Value>>>) -> String {
    let message = received.lock().unwrap().last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    message.rsplit(' ').next().unwrap().to_owned()
}

#[tokio::test]
async fn gateway_login_codes() {
    let db = db();
    let (url, received) = gateway("200 OK").await;
    let config = delivery(url);
    // No application yet.
    assert_eq!(
        send_login_code(&db, &config, &UserKey::of("alice"))
            .await
            .unwrap(),
        LoginCodeSent::NotEnrolled
    );
    let app = create(&db, fields("portcullis")).unwrap();
    associate(&db, &config, &app.id, "alice", "+15551230000", None)
        .await
        .unwrap();
    let message = received.lock().unwrap()[0].clone();
    assert_eq!(message["to"], "+15551230000");
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .starts_with("portcullis: your verification code is "),
        "{message}"
    );
    // Pending, not validated: not enrolled.
    assert_eq!(
        send_login_code(&db, &config, &UserKey::of("alice"))
            .await
            .unwrap(),
        LoginCodeSent::NotEnrolled
    );
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("alice"), "123456")
            .await
            .unwrap(),
        LoginCodeCheck::NotEnrolled
    );
    let code = last_code(&received);
    assert_eq!(
        validate(&db, &app.id, "alice", &code).await.unwrap(),
        CodeCheck::Success(Purpose::Associate)
    );

    assert_eq!(
        send_login_code(&db, &config, &UserKey::of("alice"))
            .await
            .unwrap(),
        LoginCodeSent::Sent
    );
    let code = last_code(&received);
    assert!(
        received.lock().unwrap().last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("login code")
    );
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("alice"), wrong)
            .await
            .unwrap(),
        LoginCodeCheck::Invalid
    );
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("alice"), &code)
            .await
            .unwrap(),
        LoginCodeCheck::Success
    );
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("alice"), &code)
            .await
            .unwrap(),
        LoginCodeCheck::Invalid
    );

    // An association code does not pass as a login code.
    associate(&db, &config, &app.id, "bob", "+15551230001", None)
        .await
        .unwrap();
    let association = last_code(&received);
    db.with(|c| {
        c.execute(
            "UPDATE mfa_users SET status = 'VALIDATED' WHERE id = 'bob'",
            [],
        )?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("bob"), &association)
            .await
            .unwrap(),
        LoginCodeCheck::Invalid
    );

    // Expired: make the outstanding code old.
    send_login_code(&db, &config, &UserKey::of("alice"))
        .await
        .unwrap();
    let code = last_code(&received);
    db.with(|c| {
        c.execute(
            "UPDATE mfa_codes SET expires = 1 WHERE user_id = 'alice'",
            [],
        )?;
        Ok(())
    })
    .unwrap();
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("alice"), &code)
            .await
            .unwrap(),
        LoginCodeCheck::Expired
    );

    // Locked after wrong codes: the reused code above was the first of this run (success
    // resets the count, expiry does not count).
    for _ in 1..MAX_FAILURES {
        assert_eq!(
            check_login_code(&db, &config, &UserKey::of("alice"), "nope")
                .await
                .unwrap(),
            LoginCodeCheck::Invalid
        );
    }
    assert_eq!(
        check_login_code(&db, &config, &UserKey::of("alice"), "nope")
            .await
            .unwrap(),
        LoginCodeCheck::Locked
    );
    assert_eq!(
        send_login_code(&db, &config, &UserKey::of("alice"))
            .await
            .unwrap(),
        LoginCodeSent::Locked
    );
}

#[tokio::test]
async fn delivery_failures_change_nothing() {
    let db = db();
    let (url, received) = gateway("503 Service Unavailable").await;
    let config = delivery(url);
    let app = create(&db, fields("portcullis")).unwrap();
    let error = associate(&db, &config, &app.id, "alice", "+15551230000", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, MfaError::Delivery(ref why) if why.contains("503")),
        "{error:?}"
    );
    assert_eq!(received.lock().unwrap().len(), 1);
    // No user was created, no code stored.
    assert!(matches!(
        in_tx(&db, |c| get_user(c, &app.id, "alice")).unwrap(),
        Err(MfaError::NotFound(_))
    ));
    let codes: i64 = db
        .with(|c| Ok(c.query_row("SELECT count(*) FROM mfa_codes", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(codes, 0);

    // A validated user keeps their state when a login code cannot be delivered.
    let (good_url, good) = gateway("200 OK").await;
    let good_config = delivery(good_url);
    associate(&db, &good_config, &app.id, "alice", "+15551230000", None)
        .await
        .unwrap();
    let code = last_code(&good);
    validate(&db, &app.id, "alice", &code).await.unwrap();
    let before = in_tx(&db, |c| get_user(c, &app.id, "alice"))
        .unwrap()
        .unwrap();
    match send_login_code(&db, &config, &UserKey::of("alice"))
        .await
        .unwrap()
    {
        LoginCodeSent::DeliveryFailed(why) => assert!(why.contains("503"), "{why}"),
        other => panic!("{other:?}"),
    }
    let after = in_tx(&db, |c| get_user(c, &app.id, "alice"))
        .unwrap()
        .unwrap();
    assert_eq!(before, after);
    // No SMTP relay configured for an EMAIL application: a clear delivery error.
    let mail = create(
        &db,
        ApplicationFields {
            auth_token_delivery_methods: Some("EMAIL".into()),
            ..fields("mail")
        },
    )
    .unwrap();
    let error = associate(&db, &config, &mail.id, "alice", "alice@example.com", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, MfaError::Unconfigured(ref why) if why.contains("mfa_delivery.smtp")),
        "{error:?}"
    );
    // Nothing was counted against the send limit.
    let sends: i64 = db
        .with(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM mfa_sends WHERE application_id = ?1",
                [&mail.id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(sends, 0);
}

#[tokio::test]
async fn second_factor_consumes_login_codes_without_counting_failures() {
    let db = db();
    let (url, received) = gateway("200 OK").await;
    let config = delivery(url);
    let app = create(&db, fields(&config.application)).unwrap();
    associate(&db, &config, &app.id, "alice", "+15551230000", None)
        .await
        .unwrap();
    let code = last_code(&received);
    validate(&db, &app.id, "alice", &code).await.unwrap();
    let name = config.application.clone();
    let shaped = |text: &str| {
        in_tx(&db, |c| {
            looks_like_login_code(c, &name, &UserKey::of("alice"), text)
        })
        .unwrap()
        .unwrap()
    };
    assert!(shaped("123456"));
    assert!(!shaped("12345"));
    assert!(!shaped("12345a"));
    assert!(
        !in_tx(&db, |c| looks_like_login_code(
            c,
            &name,
            &UserKey::of("bob"),
            "123456"
        ))
        .unwrap()
        .unwrap()
    );

    assert_eq!(
        send_login_code(&db, &config, &UserKey::of("alice"))
            .await
            .unwrap(),
        LoginCodeSent::Sent
    );
    let code = last_code(&received);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let now = unix_now();
    let consume = |text: &str| {
        in_tx(&db, |c| {
            consume_login_code(c, &name, &UserKey::of("alice"), text, now)
        })
        .unwrap()
        .unwrap()
    };
    // A wrong code is not counted here (the gateway's lockout counts it once).
    for _ in 0..MAX_FAILURES {
        assert!(!consume(wrong));
    }
    assert_eq!(user(&db, &app.id, "alice").failures, 0);
    assert!(consume(&code));
    // Used up.
    assert!(!consume(&code));
    // Only login codes count, and only for validated users.
    assert!(
        !in_tx(&db, |c| consume_login_code(
            c,
            &name,
            &UserKey::of("bob"),
            &code,
            now
        ))
        .unwrap()
        .unwrap()
    );
}
