//! Replays every session against the in-tree server, started in-process on a port the
//! OS picks, with the limits each session requires. Each session must pass, its
//! `bytewise` and `chunked` replays (for `framing: yes` sessions) must leave every
//! client with exactly what the whole-write replay left it, and what each client
//! received is pinned by an insta snapshot (`tests/snapshots/`).

#![cfg(test)]

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chat_conformance::limit::Limit;
use chat_conformance::replay::{Replay, ReplayOptions, replay};
use chat_conformance::session::Session;
use chat_conformance::variant::Variant;

/// The seed of the chunked replays, fixed so a failure replays the same way.
const SEED: u64 = 20_261_124;

/// The server's configuration for a session, or why the in-tree server cannot be set up
/// for it (a setting it does not have yet).
fn config_for(session: &Session) -> Result<chat_server::Config, String> {
    let mut config = chat_server::Config::loopback_ephemeral();
    config.threads = 2;
    for r in &session.requires {
        let v = &r.value;
        match r.limit {
            Limit::HandshakeTimeout => {
                config.handshake_timeout = Duration::from_secs(v.parse().unwrap())
            }
            Limit::HandshakeAttempts => config.handshake_attempts = v.parse().unwrap(),
            Limit::MaxClients => config.max_clients = v.parse().unwrap(),
            Limit::Sendq => config.sendq = v.parse().unwrap(),
            Limit::FloodBurst => config.flood.burst = v.parse().unwrap(),
            Limit::FloodRate => config.flood.rate = v.parse().unwrap(),
            Limit::FloodExcess => config.flood.excess = Duration::from_secs(v.parse().unwrap()),
            Limit::Compat => match v.as_str() {
                "seed" => config.compat = chat_server::Compat::Seed,
                other => return Err(format!("chat_server::Compat has no profile {other}")),
            },
            Limit::OpPassword => {
                config.op_password =
                    Some(chat_proto::Password::for_server(v).map_err(|e| e.to_string())?)
            }
            Limit::PingInterval | Limit::PingTimeout => {
                let times = config.ping.get_or_insert_with(Default::default);
                let secs = Duration::from_secs(v.parse().unwrap());
                match r.limit {
                    Limit::PingInterval => times.interval = secs,
                    _ => times.timeout = secs,
                }
            }
        }
    }
    Ok(config)
}

fn run(session: &Session, variant: Variant) -> Replay {
    run_over(session, variant, false)
}

/// Replays `session` against a fresh in-process server, over its TLS listener (with the
/// certificate pinned) when `tls`.
fn run_over(session: &Session, variant: Variant, tls: bool) -> Replay {
    let mut config = config_for(session).unwrap();
    let mut trust = None;
    if tls {
        let identity = chat_server::tls::Identity::self_signed(None, None).unwrap();
        trust = Some(chat_tls::Trust::Pinned(identity.fingerprint()));
        config.tls = Some(chat_server::tls::TlsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            identity,
        });
    }
    let server = chat_server::Server::bind(config).unwrap();
    let addr = match tls {
        true => server.tls_addr().unwrap(),
        false => server.local_addr(),
    };
    let handle = server.spawn().unwrap();
    let opts = ReplayOptions {
        variant,
        step_timeout: Duration::from_secs(5),
        tls: trust,
        ..Default::default()
    };
    let result = replay(session, addr, &opts);
    handle.shutdown();
    result
}

fn snapshot_body(session: &Session, r: &Replay) -> String {
    format!(
        "checks: {}\n\n{}",
        session.checks.join(" "),
        r.received_text()
    )
}

#[test]
fn every_session_against_the_in_tree_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions");
    let mut sessions = Session::load_dir(&dir).unwrap();
    // Sessions the in-tree server cannot be configured for are reported, not run.
    let mut unsupported = Vec::new();
    sessions.retain(|s| match config_for(s) {
        Ok(_) => true,
        Err(why) => {
            unsupported.push(format!("{}: {why}", s.name));
            false
        }
    });
    // Pinned, so that the list is reviewed like any result and shrinks visibly when the
    // server gains the settings (then extend `config_for`).
    insta::assert_snapshot!("not-run-in-process", unsupported.join("\n"));
    let cases: Vec<(usize, Variant)> = sessions
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            Variant::for_session(s.framing, SEED)
                .into_iter()
                .map(move |v| (i, v))
        })
        .collect();
    // Cases run on a few threads, each with its own server; snapshots are asserted
    // afterwards, in order, on this thread.
    let queue = Mutex::new(cases);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some((i, v)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let r = run(&sessions[i], v);
                    results.lock().unwrap().push((i, v, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, v, _)| (*i, v.name() != "whole", v.name()));

    let mut failures = Vec::new();
    for (i, v, r) in &results {
        if let Some(f) = &r.failure {
            failures.push(format!(
                "{} ({v}): line {}: {}: {}\n{}",
                sessions[*i].name,
                f.line,
                f.step,
                f.message,
                r.transcript.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    for (i, v, r) in &results {
        let session = &sessions[*i];
        if *v == Variant::Whole {
            insta::assert_snapshot!(session.name.as_str(), snapshot_body(session, r));
        } else {
            let whole = results
                .iter()
                .find(|(j, w, _)| j == i && *w == Variant::Whole)
                .map(|(_, _, r)| r)
                .unwrap();
            assert_eq!(
                r.received_text(),
                whole.received_text(),
                "{} ({v}) differs from its whole-write replay",
                session.name
            );
        }
    }
}

/// TLS-6: the whole suite passes over TLS, and every client receives exactly what it
/// receives over plain TCP (the same snapshots). Whole writes only: how a payload is cut
/// into TLS records is TLS's business, and the framing variants run over plain TCP above.
#[test]
fn tls_6_every_session_over_tls() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions");
    let mut sessions = Session::load_dir(&dir).unwrap();
    sessions.retain(|s| config_for(s).is_ok());
    let queue = Mutex::new((0..sessions.len()).collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some(i) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let r = run_over(&sessions[i], Variant::Whole, true);
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(i, r)| {
            let f = r.failure.as_ref()?;
            Some(format!(
                "{} over TLS: line {}: {}: {}\n{}",
                sessions[*i].name,
                f.line,
                f.step,
                f.message,
                r.transcript.join("\n")
            ))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} session(s) failed over TLS:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    for (i, r) in &results {
        let session = &sessions[*i];
        insta::assert_snapshot!(session.name.as_str(), snapshot_body(session, r));
    }
}
