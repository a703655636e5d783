//! STORE-2, STORE-3: kill -9 of a real `chat-server --store` under load, restart: every
//! event acknowledged (its echo received) before the last batch window is there, none is
//! there twice, the order is intact, and the epoch changed.

#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use chat_proto::{ServerMessage, Tags};
use chat_server::store::BATCH_WINDOW;
use common::{Client, spawn_binary};

/// Slack on top of the batch window for the commit itself on a loaded 2-core machine.
const COMMIT_SLACK: Duration = Duration::from_millis(150);

fn parse(line: &str) -> (Tags, ServerMessage) {
    ServerMessage::parse_tagged(line).unwrap_or_else(|_| panic!("not a server line: {line}"))
}

fn epoch_of(tags: &Tags) -> String {
    let id = tags.id.as_ref().expect("id");
    id.as_str().split(':').next().unwrap_or_default().to_owned()
}

#[test]
fn store_2_store_3_kill_9_under_load() {
    let dir = std::env::temp_dir().join(format!("chat-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("chat.db");
    let db_arg = db.to_string_lossy().into_owned();
    let args = [
        "--store",
        db_arg.as_str(),
        "--history",
        "5000",
        "--flood-rate",
        "0",
    ];
    let (mut child, addr) = spawn_binary(&args);

    // Load: a writer sends in bursts from its own thread; the reader records when each
    // echo (the acknowledgement) arrives.
    let mut c = Client::connect(addr);
    c.send_raw(b"/caps tags\nw\n");
    c.skip_until("Connected to the server");
    let mut writer = c.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let start = Instant::now();
        let mut i = 0u32;
        // Bounded: at most 4000 lines or 3 s; stops when the server is gone.
        while i < 4000 && start.elapsed() < Duration::from_secs(3) {
            let mut burst = String::new();
            for _ in 0..20 {
                burst.push_str(&format!("msg {i}\n"));
                i += 1;
            }
            if writer.write_all(burst.as_bytes()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let started = Instant::now();
    let mut acked: Vec<(Instant, String)> = Vec::new();
    let mut epoch = String::new();
    while started.elapsed() < Duration::from_millis(700) {
        let l = c.line();
        let (tags, m) = parse(&l);
        if let ServerMessage::Chat { text, .. } = m {
            epoch = epoch_of(&tags);
            acked.push((Instant::now(), text.as_str().to_owned()));
        }
    }
    let killed_at = Instant::now();
    child.kill().expect("kill -9");
    let _ = child.wait();
    let _ = sender.join();
    assert!(
        acked.len() > 200,
        "load: only {} lines acknowledged",
        acked.len()
    );

    // Restart on the same file.
    let (mut child2, addr2) = spawn_binary(&args);
    let mut r = Client::connect(addr2);
    r.send_raw(b"/caps tags\nr\n/history 5000\n");
    r.skip_until("Connected to the server");
    let mut history: Vec<(Tags, String)> = Vec::new();
    for _ in 0..10_000 {
        let l = r.line();
        let (tags, m) = parse(&l);
        match m {
            ServerMessage::HistoryEnd => break,
            ServerMessage::Chat { text, .. } if tags.is_earlier() => {
                history.push((tags, text.as_str().to_owned()))
            }
            _ => {}
        }
    }
    let _ = child2.kill();
    let _ = child2.wait();

    let got: Vec<&str> = history.iter().map(|(_, t)| t.as_str()).collect();
    // None twice, and in the order sent.
    let numbers: Vec<u32> = got
        .iter()
        .map(|t| {
            t.strip_prefix("msg ")
                .and_then(|n| n.parse().ok())
                .expect("a msg line")
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "order or duplicates"
    );
    // Every line acknowledged before the last window is there.
    let durable_before = killed_at - BATCH_WINDOW - COMMIT_SLACK;
    let must: Vec<&str> = acked
        .iter()
        .filter(|(t, _)| *t < durable_before)
        .map(|(_, s)| s.as_str())
        .collect();
    for m in &must {
        assert!(
            got.contains(m),
            "{m} was acknowledged before the last batch and is lost"
        );
    }
    let lost = acked.len()
        - acked
            .iter()
            .filter(|(_, s)| got.contains(&s.as_str()))
            .count();
    eprintln!(
        "kill -9 after {} acknowledged lines: {} kept, {} lost (all within the last {} ms)",
        acked.len(),
        acked.len() - lost,
        lost,
        (BATCH_WINDOW + COMMIT_SLACK).as_millis()
    );
    // STORE-3: a new epoch after an unclean stop.
    let new_epoch = history.first().map(|(t, _)| epoch_of(t)).expect("history");
    assert_ne!(new_epoch, epoch, "the epoch must change after kill -9");
    let _ = std::fs::remove_dir_all(&dir);
}
