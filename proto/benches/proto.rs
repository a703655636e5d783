//! Throughput of the framer, the parsers and the encoder (lines/s and bytes/s).
//!
//! `cargo bench -p chat-proto`

use std::hint::black_box;

use chat_proto::{ClientMessage, Framer, Nickname, ServerMessage, Text};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// 10,000 chat-like lines of about 50 bytes, CRLF and LF mixed, as one byte stream.
fn sample_stream() -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut lines = 0;
    for i in 0..10_000u32 {
        out.extend_from_slice(
            format!("message number {i:05} with some ordinary chat text").as_bytes(),
        );
        out.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        lines += 1;
    }
    (out, lines)
}

fn framer(c: &mut Criterion) {
    let (stream, lines) = sample_stream();
    let mut g = c.benchmark_group("framer");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for chunk in [64usize, 4096, 65536] {
        g.bench_function(format!("bytes/chunk={chunk}"), |b| {
            b.iter(|| {
                let mut f = Framer::new();
                let mut n = 0u64;
                for c in stream.chunks(chunk) {
                    f.push(c, |frame| {
                        black_box(frame);
                        n += 1;
                    });
                }
                assert_eq!(n, lines);
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("framer_lines");
    g.throughput(Throughput::Elements(lines));
    g.bench_function("lines/chunk=4096", |b| {
        b.iter(|| {
            let mut f = Framer::new();
            for c in stream.chunks(4096) {
                f.push(c, |frame| {
                    black_box(frame);
                });
            }
        })
    });
    g.finish();
}

fn parsers(c: &mut Criterion) {
    let server_lines = [
        "alice: message number 00001 with some ordinary chat text",
        "alice -> bob: message number 00001 with some private text",
        "alice has joined the chat",
        "ERR nick-taken Nickname alice is already in use",
        "Users online: alice, bob, carol, dave, erin, frank",
    ];
    let client_lines = [
        "message number 00001 with some ordinary chat text",
        "/msg bob hello there",
        "/who",
        "/nick alice2",
    ];
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(server_lines.len() as u64));
    g.bench_function("server_lines", |b| {
        b.iter(|| {
            for l in server_lines {
                black_box(ServerMessage::parse(black_box(l)).ok());
            }
        })
    });
    g.throughput(Throughput::Elements(client_lines.len() as u64));
    g.bench_function("client_lines", |b| {
        b.iter(|| {
            for l in client_lines {
                black_box(ClientMessage::parse(black_box(l)).ok());
            }
        })
    });
    g.finish();
}

fn encoder(c: &mut Criterion) {
    let Ok(from) = Nickname::new("alice") else {
        return;
    };
    let Ok(text) = Text::new("message number 00001 with some ordinary chat text") else {
        return;
    };
    let msg = ServerMessage::Chat { from, text };
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("chat_line_into_buffer", |b| {
        let mut buf = Vec::with_capacity(128);
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode(&mut buf);
            black_box(&buf);
        })
    });
    g.finish();
}

/// What tags cost a connection that enabled them (spec §14): the prefix a writer builds
/// per event line, and a client's parse of a tagged line.
fn tags(c: &mut Criterion) {
    let Some(time) = chat_proto::ServerTime::from_unix_millis(1_796_201_524_123) else {
        return;
    };
    let tags = chat_proto::Tags::event(chat_proto::EventId::memory(1_796_201_524_000, 42), time);
    let mut line = Vec::new();
    tags.encode_prefix(&mut line);
    line.extend_from_slice(b"alice: message number 00001 with some ordinary chat text");
    let Ok(line) = String::from_utf8(line) else {
        return;
    };
    let mut g = c.benchmark_group("tags");
    g.throughput(Throughput::Elements(1));
    // The writer's path: no allocation.
    g.bench_function("event_prefix_into_buffer", |b| {
        let mut buf = Vec::with_capacity(128);
        b.iter(|| {
            buf.clear();
            chat_proto::tags::write_event_prefix(
                black_box(1_796_201_524_000),
                black_box(42),
                time,
                &mut buf,
            );
            black_box(&buf);
        })
    });
    // The general encoder, for tags of later versions.
    g.bench_function("general_prefix_into_buffer", |b| {
        let mut buf = Vec::with_capacity(128);
        b.iter(|| {
            buf.clear();
            black_box(&tags).encode_prefix(&mut buf);
            black_box(&buf);
        })
    });
    g.bench_function("parse_tagged_chat_line", |b| {
        b.iter(|| black_box(ServerMessage::parse_tagged(black_box(&line))))
    });
    g.finish();
}

criterion_group!(benches, framer, parsers, encoder, tags);
criterion_main!(benches);
