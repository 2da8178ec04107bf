//! TACACS+ login latency through the upstream client: one authentication (PAP) and the
//! authorization that follows, against the test server of `tests/support/tacacs_server.rs`
//! on loopback, with and without Single Connection Mode (RFC 8907 §4.3).
//!
//! - `per-session`: the server does not agree to single-connect; every session opens (and
//!   the server accepts, on a new thread) its own TCP connection: two per login.
//! - `single-connect`: the server agrees; logins reuse the client's kept connections.
//!
//! K is the number of logins outstanding: K tasks each run logins one after the other, and
//! the time reported per iteration is the mean latency of one login (each task's elapsed
//! time over its logins, averaged over the tasks).
//!
//! Run: `cargo bench --bench tacacs_login`.

// A bench that cannot start its server or log in has nothing to measure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../tests/support/tacacs_server.rs"]
#[allow(dead_code)]
mod tacacs_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis::upstream::tacacs::{Answer, Key, Protocol, ServerSpec, TacacsClient};
use tacacs_server::{Config, KEY, TacacsServer, User};

async fn login(client: &TacacsClient) {
    let answer = client
        .authenticate("alice", b"alice-pw", "192.0.2.10", "portcullis")
        .await
        .expect("the test server answers");
    assert!(matches!(answer, Answer::Accept { .. }), "{answer:?}");
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("tacacs login");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    for single_connect in [false, true] {
        let server = TacacsServer::start(Config {
            single_connect,
            ..Config::new(vec![User::new("alice", "alice-pw", &[("role", "admin")])])
        });
        let client = Arc::new(TacacsClient::new(ServerSpec {
            addr: server.addr(),
            key: Key::new(KEY.as_bytes()),
            protocol: Protocol::Pap,
            client_port: "tty-bench".into(),
            timeout: Duration::from_secs(5),
            tls: None,
        }));
        let mode = if single_connect {
            "single-connect"
        } else {
            "per-session"
        };
        for k in [1u32, 16] {
            group.bench_function(BenchmarkId::new(mode, format!("K={k}")), |b| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let tasks: Vec<_> = (0..k)
                            .map(|_| {
                                let client = Arc::clone(&client);
                                tokio::spawn(async move {
                                    let start = Instant::now();
                                    for _ in 0..iters {
                                        login(&client).await;
                                    }
                                    start.elapsed()
                                })
                            })
                            .collect();
                        let mut total = Duration::ZERO;
                        for task in tasks {
                            total += task.await.expect("a login task");
                        }
                        total / k
                    })
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
