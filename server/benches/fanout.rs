//! Broadcast fan-out, in deliveries per second (one delivery = one line's bytes handed
//! to one subscriber's `writev`, or received by one client).
//!
//! - `in_process/N`: the server's broadcast path with no sockets: one member says 64
//!   lines (each encoded once and appended once to the log), the hub wakes the writers
//!   once, and each of the N subscribers' outboxes runs its writer's own plan/consume
//!   code from its cursor to the head, handing the bytes to a sink that takes whole
//!   vectored writes (in place of the socket). N = 10, 100, 1000.
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
use std::io::{IoSlice, Write};
use std::sync::Arc;
use std::time::Duration;

use chat_load::dialect::Dialect;
use chat_load::run::{Plan, run};
use chat_proto::{Nickname, Text};
use chat_server::config::FloodLimit;
use chat_server::{Config, Hub, Server};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Lines said per measured iteration of the in-process bench.
const BATCH: usize = 64;

/// Stands in for a socket that takes every write whole.
struct Sink {
    bytes: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        let n: usize = bufs.iter().map(|b| black_box(b.len())).sum();
        self.bytes += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `user0: ` + the 49-byte text + LF.
const LINE_BYTES: usize = 7 + 49 + 1;

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
        let mut sink = Sink { bytes: 0 };
        for o in &outboxes {
            o.write_to(&mut sink).expect("sink");
        }
        let speaker = &members[0];
        g.throughput(Throughput::Elements((n * BATCH) as u64));
        g.bench_function(format!("{n}"), |b| {
            b.iter(|| {
                let before = sink.bytes;
                for _ in 0..BATCH {
                    speaker.say(text.clone());
                }
                hub.publish();
                for o in &outboxes {
                    o.write_to(&mut sink).expect("sink");
                }
                // Every subscriber got every line (catches a bench that delivers nothing).
                assert_eq!(sink.bytes - before, n * BATCH * LINE_BYTES);
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
                            other_targets: Vec::new(),
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
                            server_pid: None,
                            other_pids: Vec::new(),
                            tls: None,
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
