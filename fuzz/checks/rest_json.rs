//! The `rest_json` fuzz check: arbitrary bytes as the JSON body of every REST route that
//! takes one, sent in-process through the real router (middleware, caller check, body
//! parsing, the handler's checks, validation, the atomic save) as an Administrator.
//!
//! Shared by the fuzz target and the corpus replay test (`tests/fuzz_corpus.rs`) by path.
//!
//! Input: byte 0 picks the route (every operation of the OpenAPI document with a request
//! body, in document order), byte 1 the `{id}` of the path, the rest is the body. The
//! configuration starts as `config/examples/portcullis.toml` for every input, with its host
//! names replaced by addresses: every accepted write builds an engine, which resolves names,
//! and the example's names would cost a DNS lookup per input.
//!
//! - Nothing panics and no answer is a 5xx: bad input is the client's error.
//! - Every answer with a body is JSON; errors carry `error_id` and `error_text`.
//! - A refused request changes nothing; an accepted one leaves a file that loads back to
//!   exactly the live configuration.
//!
//! Left out: the routes that hash a password with argon2 (login, adding a local user,
//! changing one, setting a password), at tens of milliseconds an input; the login body is
//! deserialized into its request type instead.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, header};
use portcullis::api::sessions::Sessions;
use portcullis::api::{AppState, router, routes};
use portcullis::live::ConfigStore;
use portcullis::mfa::MfaStore;
use portcullis_config::Config;
use tower::ServiceExt;

const EXAMPLE: &str = include_str!("../../config/examples/portcullis.toml");

/// Routes whose handlers run argon2 on the body: too slow to fuzz through the router.
const HASHING: [(&str, &str); 4] = [
    ("POST", "/api/auth/1.0/login"),
    ("POST", "/api/mgmt.local_users/1.0/users"),
    ("PUT", "/api/mgmt.local_users/1.0/users/{name}"),
    ("PUT", "/api/mgmt.local_users/1.0/users/{name}/password"),
];

/// Values tried for `{id}`: present, absent, zero, out of range, not a number.
const IDS: [&str; 6] = ["1", "2", "99", "0", "4294967296", "x%20y"];

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    state: Arc<AppState>,
    base: Config,
    path: PathBuf,
    token: String,
    /// (method, path template) of each route with a request body.
    routes: Vec<(Method, String)>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // On tmpfs when there is one: every accepted write fsyncs.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("temp dir");
        let path = dir.path().join("portcullis.toml");
        let example = EXAMPLE
            .replace("radius2.example.net", "192.0.2.22")
            .replace("tacacs.example.net", "192.0.2.50");
        let base = Config::from_toml(&example).expect("example config").config;
        let store = ConfigStore::new(path.clone(), base.clone()).expect("store");
        let sessions = Sessions::new();
        let (token, _) = sessions
            .create(
                "fuzz-admin",
                vec!["Administrator".to_string()],
                "RADIUS",
                Duration::from_secs(365 * 24 * 3600),
            )
            .expect("session");
        let mfa = MfaStore::in_memory().expect("state db");
        let state = Arc::new(AppState {
            store: portcullis::api::Store(Arc::new(store)),
            sessions,
            db: mfa.db().clone(),
            mfa,
            dialogues: portcullis::login::dialogue::Dialogues::new(),
        });
        let app = router(Arc::clone(&state));
        let (_, openapi) = routes();
        let mut table = Vec::new();
        for (template, item) in &openapi.paths.paths {
            let operations = [
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                if operation.request_body.is_none()
                    || HASHING.contains(&(method.as_str(), template.as_str()))
                {
                    continue;
                }
                table.push((method, template.clone()));
            }
        }
        assert!(table.len() >= 10, "routes with bodies: {table:?}");
        Harness {
            runtime,
            app,
            state,
            base,
            path,
            token,
            routes: table,
            _dir: dir,
        }
    })
}

/// The routes inputs pick from: (method, path template), in the order byte 0 indexes.
#[allow(dead_code)]
pub fn routes_with_bodies() -> Vec<(String, String)> {
    harness()
        .routes
        .iter()
        .map(|(method, path)| (method.to_string(), path.clone()))
        .collect()
}

/// Runs the check on one input.
pub fn check(data: &[u8]) {
    let harness = harness();
    let [route, id, body @ ..] = data else {
        return;
    };
    // The login request type, deserialized as its handler does.
    let _ = serde_json::from_slice::<portcullis::api::login::LoginRequest>(body);

    let (method, template) = &harness.routes[usize::from(*route) % harness.routes.len()];
    let uri = template.replace("{id}", IDS[usize::from(*id) % IDS.len()]);
    let request = Request::builder()
        .method(method.clone())
        .uri(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", harness.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request");
    let before = harness.state.store.current();
    harness.runtime.block_on(async {
        let response = harness
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("response body");
        assert!(
            !status.is_server_error(),
            "{method} {uri}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        if !bytes.is_empty() {
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("{method} {uri}: {status} answer is not JSON ({e}): {bytes:?}")
            });
            if !status.is_success() {
                assert!(documented_error(&uri, &json), "{method} {uri}: {json}");
            }
        }
        let after = harness.state.store.current();
        if status.is_success() {
            if !Arc::ptr_eq(&before, &after) {
                let saved = portcullis_config::load(&harness.path)
                    .unwrap_or_else(|e| panic!("{method} {uri}: the saved file: {e}"));
                assert_eq!(
                    saved.config, after.config,
                    "{method} {uri}: file and live differ"
                );
            }
        } else {
            assert!(
                Arc::ptr_eq(&before, &after),
                "{method} {uri}: a refused request ({status}) changed the configuration"
            );
        }
        if after.config != harness.base {
            let base = harness.base.clone();
            harness
                .state
                .store
                .update(move |config| {
                    *config = base;
                    Ok(())
                })
                .await
                .expect("reset to the example configuration");
        }
    });
}

/// Whether `json` is the error body the route at `uri` documents: `{error_id, error_text}`
/// everywhere, except the MFA routes, which answer in their reference APIs' bodies
/// (`{error_code, ...}` for applications and devices; `{detailCode, trackingId, messages}`,
/// `{error}` or `{message}` for token authenticate).
fn documented_error(uri: &str, json: &serde_json::Value) -> bool {
    if json["error_id"].is_string() && json["error_text"].is_string() {
        return true;
    }
    uri.starts_with("/api/mfa/")
        && (json["error_code"].is_string()
            || (json["detailCode"].is_string() && json["trackingId"].is_string())
            || json["error"].is_string()
            || json["message"].is_string())
}
