//! Broadcast fan-out, in deliveries per second (one delivery = one line queued for, or
//! received by, one client).
//!
//! - `in_process/N`: the server's broadcast path with no sockets: one member says a line,
//!   the hub encodes it once and queues the shared bytes in N outboxes, and every outbox
//!   is drained as its writer would drain it. N = 10, 100, 1000.
//! - `loopback/...`: the real server, started in-process, and 200 real TCP clients driven
//!   by the `chat-load` engine (one sender, then five at once). Each iteration is one
//!   load run; only the time from the first send to the last delivery is measured, and
//!   every delivery is checked (lost, duplicated, reordered or corrupted lines fail the
//!   bench).
//!
//! `cargo bench -p chat-server --bench fanout`

// A benchmark may stop at the first failure: the workspace lints are for library code.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use chat_load::dialect::Dialect;
use chat_load::run::{Plan, run};
use chat_proto::{Nickname, Text};
use chat_server::config::FloodLimit;
use chat_server::outbox::Line;
use chat_server::{Config, Hub, Server};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Lines said per measured iteration of the in-process bench.
const BATCH: usize = 64;

fn in_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("in_process");
    let text = Text::new("message number 00001 with some ordinary chat text").expect("valid text");
    for n in [10usize, 100, 1000] {
        let hub = Hub::new(n + 1);
        let outboxes: Vec<_> = (0..n).map(|_| hub.new_outbox(1 << 30)).collect();
        let members: Vec<_> = outboxes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let nick = Nickname::new(&format!("user{i}")).expect("valid nickname");
                hub.join(nick, o).expect("join")
            })
            .collect();
        let mut sink: Vec<Line> = Vec::new();
        for o in &outboxes {
            o.drain_into(&mut sink);
            sink.clear();
        }
        let speaker = &members[0];
        g.throughput(Throughput::Elements((n * BATCH) as u64));
        g.bench_function(format!("{n}"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    speaker.say(text.clone());
                }
                for o in &outboxes {
                    o.drain_into(&mut sink);
                    black_box(&sink);
                    sink.clear();
                }
            })
        });
    }
    g.finish();
}

fn loopback(c: &mut Criterion) {
    let config = Config {
        flood: FloodLimit::off(),
        max_clients: 1000,
        threads: 2,
        ..Config::loopback_ephemeral()
    };
    let server = Server::bind(config).expect("bind").spawn().expect("spawn");
    let target = server.local_addr();
    let mut g = c.benchmark_group("loopback");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    for (senders, messages) in [(1usize, 2000u64), (5, 400)] {
        let clients = 200;
        let deliveries = clients as u64 * senders as u64 * messages;
        g.throughput(Throughput::Elements(deliveries));
        let run_no = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        g.bench_function(
            format!("200_clients/{senders}_senders/{messages}_msgs"),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let k = run_no.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let plan = Plan {
                            target,
                            dialect: Dialect::Spec,
                            clients,
                            senders,
                            messages_per_sender: messages,
                            size: 50,
                            rate: None,
                            timeout: Duration::from_secs(60),
                            connect_parallelism: 64,
                            nick_prefix: format!("b{k}x"),
                            settle: Duration::from_secs(2),
                            write_batch: 0,
                        };
                        let report = run(plan, 2).expect("load run");
                        assert!(report.clean() && !report.timed_out, "{report}");
                        total += report.elapsed;
                    }
                    total
                })
            },
        );
    }
    g.finish();
    server.shutdown();
}

criterion_group!(benches, in_process, loopback);
criterion_main!(benches);
