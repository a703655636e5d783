//! Spec §17 end to end, in-process: resume after a disconnect gives exactly what a
//! client that stayed saw (RESUME-2), 20 times in a row; the same across a clean restart
//! with a store (STORE-1, RESUME-5); a clear gap across a restart without one (RESUME-3);
//! retention bounded by `--history` (HIST-1).

#![cfg(test)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use chat_proto::{ErrorCode, ServerMessage, Tags};
use chat_server::ServerHandle;
use common::{Client, start};

/// A line as received: its tags and the message.
fn parse(line: &str) -> (Tags, ServerMessage) {
    ServerMessage::parse_tagged(line).unwrap_or_else(|_| panic!("not a server line: {line}"))
}

/// Reads until a line whose message is `until` (included); returns every line.
fn read_until(c: &mut Client, until: &str) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let l = c.line();
        let done = parse(&l).1.to_string() == until;
        out.push(l);
        if done {
            return out;
        }
    }
    panic!("{until} never came");
}

/// The id of the last live (not `history`) tagged line.
fn last_live_id(lines: &[String]) -> String {
    lines
        .iter()
        .rev()
        .find_map(|l| {
            let (tags, _) = parse(l);
            (!tags.is_earlier()).then_some(tags.id?.as_str().to_owned())
        })
        .expect("a live tagged line")
}

/// The public events among `lines`, as text (private lines and replies dropped).
fn public(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| parse(l).1)
        .filter(ServerMessage::is_public_event)
        .map(|m| m.to_string())
        .collect()
}

/// Joins with tags (and a resume id, or else `history`): the lines up to and including the footer of the
/// block that follows `Connected to the server`.
fn join_resuming(addr: SocketAddr, nick: &str, resume: Option<&str>) -> (Client, Vec<String>) {
    let mut c = Client::connect(addr);
    c.nick = nick.to_owned();
    // Without an id, `history` brings the backlog (HIST-5), so a block always follows.
    let mut hello = match resume {
        Some(id) => format!("/caps tags\n/resume {id}\n"),
        None => String::from("/caps tags history\n"),
    };
    hello.push_str(&format!("{nick}\n"));
    c.send_raw(hello.as_bytes());
    let lines = read_until(&mut c, "End of earlier events");
    (c, lines)
}

/// Splits what a resuming client got into (whether it was a gap, the block's events).
fn block_of(lines: &[String]) -> (bool, Vec<String>) {
    let start = lines
        .iter()
        .position(|l| l == "Connected to the server")
        .expect("Connected");
    let rest = lines.get(start + 1..).unwrap_or_default();
    let gap = rest.first().is_some_and(|l| {
        matches!(
            parse(l).1,
            ServerMessage::Error {
                code: ErrorCode::HistoryGap,
                ..
            }
        )
    });
    let events: Vec<String> = rest
        .iter()
        .filter(|l| parse(l).0.is_earlier())
        .map(|l| parse(l).1.to_string())
        .collect();
    let header = rest
        .iter()
        .find_map(|l| match parse(l).1 {
            ServerMessage::HistoryStart(n) => Some(n as usize),
            _ => None,
        })
        .expect("a block");
    assert_eq!(header, events.len(), "the header counts the block");
    (gap, events)
}

/// RESUME-2, RESUME-4: a client disconnected while 500 lines (and private lines) are
/// sent, resuming, gets exactly the public events the stayer saw between its last live
/// event and its return, in order, then the live ones with no gap and no duplicate;
/// 20 rounds in a row.
#[test]
fn resume_2_disconnect_500_lines_equivalence_20_times() {
    let server = start(|c| c.history = Some(2000));
    let addr = server.local_addr();
    let mut stayer = Client::join(addr, "stayer");
    let mut talker = Client::join(addr, "talker");
    let (mut r, _) = join_resuming(addr, "r0", None);
    stayer.skip_until("r0 has joined the chat");
    talker.skip_until("r0 has joined the chat");
    for round in 0..20 {
        let me = format!("r{round}");
        // The resumer says bye and reads up to its own line: its last live event.
        r.say(&format!("bye {round}"));
        let seen = read_until(&mut r, &format!("{me}: bye {round}"));
        let id = last_live_id(&seen);
        // It goes; 500 lines are sent from another thread, private lines to the stayer
        // among them (never replayed); it comes back after a different number of lines
        // each round, while the rest are still being sent.
        drop(r);
        let back_after = 50 + (round * 37) % 400;
        let (halfway, reached) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            for i in 0..500 {
                talker.say(&format!("line {round}.{i}"));
                if i % 100 == 0 {
                    talker.say(&format!("/msg stayer psst {round}.{i}"));
                }
                if i == back_after {
                    let _ = halfway.send(());
                }
                if i % 50 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            talker
        });
        reached.recv().expect("the sender got halfway");
        let next = format!("r{}", round + 1);
        let (mut back, lines) = join_resuming(addr, &next, Some(&id));
        talker = sender.join().expect("sender");
        talker.say(&format!("end {round}"));
        let live = read_until(&mut back, &format!("talker: end {round}"));
        let (gap, block) = block_of(&lines);
        assert!(!gap, "round {round}: a gap although everything is retained");

        // What the stayer saw: from after the bye to before the new join (the missed
        // part), and from the join to the end marker (the live part).
        let all = read_until(&mut stayer, &format!("talker: end {round}"));
        let all = public(&all);
        let bye = all
            .iter()
            .position(|l| *l == format!("{me}: bye {round}"))
            .expect("bye");
        let join = all
            .iter()
            .position(|l| *l == format!("{next} has joined the chat"))
            .expect("join");
        assert_eq!(
            block,
            all[bye + 1..join],
            "round {round}: the missed events"
        );
        let after_block: Vec<String> = public(&live);
        assert_eq!(
            after_block,
            all[join + 1..],
            "round {round}: the live events"
        );
        assert!(
            block
                .iter()
                .filter(|l| l.starts_with("talker: line"))
                .count()
                + after_block
                    .iter()
                    .filter(|l| l.starts_with("talker: line"))
                    .count()
                == 500,
            "round {round}: every line once"
        );
        eprintln!(
            "round {round}: {} missed events replayed, {} live after the block",
            block.len(),
            after_block.len()
        );
        // No id twice across the seam.
        let mut ids: Vec<String> = lines
            .iter()
            .chain(&live)
            .filter_map(|l| Some(parse(l).0.id?.as_str().to_owned()))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "round {round}: an id twice");
        talker.skip_until(&format!("talker: end {round}"));
        r = back;
    }
}

fn store_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-history-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("chat.db")
}

/// Runs the first half of a restart scenario: a resumer records its last live id and
/// goes; 500 lines are sent; the stayer's public view of what followed is returned with
/// the id, and the server is stopped cleanly.
fn before_restart(server: ServerHandle) -> (String, Vec<String>) {
    let addr = server.local_addr();
    let mut stayer = Client::join(addr, "stayer");
    let mut talker = Client::join(addr, "talker");
    let (mut r, _) = join_resuming(addr, "r", None);
    r.say("bye");
    let id = last_live_id(&read_until(&mut r, "r: bye"));
    drop(r);
    // Its leave notice first: on a loaded machine it could otherwise come after the
    // last line, where the stayer's view below stops.
    talker.skip_until("r has left the chat");
    for i in 0..500 {
        talker.say(&format!("line {i}"));
        if i % 100 == 0 {
            talker.say(&format!("/msg stayer psst {i}"));
        }
    }
    let all = public(&read_until(&mut stayer, "talker: line 499"));
    let bye = all.iter().position(|l| l == "r: bye").expect("bye");
    server.shutdown();
    (id, all[bye + 1..].to_vec())
}

/// STORE-1, RESUME-2, RESUME-5: across a clean restart with `--store` the epoch and the
/// events stay, so the resume is exact.
#[test]
fn resume_2_across_a_clean_restart_with_a_store() {
    let path = store_path("clean");
    let config = |c: &mut chat_server::Config| {
        c.history = Some(2000);
        c.store = Some(path.clone());
    };
    let (id, missed) = before_restart(start(config));
    let server = start(config);
    let (_back, lines) = join_resuming(server.local_addr(), "r", Some(&id));
    let (gap, block) = block_of(&lines);
    assert!(!gap);
    assert_eq!(block, missed);
    assert!(
        block
            .iter()
            .filter(|l| l.starts_with("talker: line"))
            .count()
            == 500
    );
}

/// RESUME-3, RESUME-5: without a store the restarted server has a new epoch: a clear gap,
/// then the (empty) backlog.
#[test]
fn resume_3_across_a_restart_without_a_store_is_a_gap() {
    let config = |c: &mut chat_server::Config| c.history = Some(2000);
    let (id, _missed) = before_restart(start(config));
    let server = start(config);
    let (_back, lines) = join_resuming(server.local_addr(), "r", Some(&id));
    let (gap, block) = block_of(&lines);
    assert!(gap, "{lines:?}");
    assert!(block.is_empty());
}

/// HIST-1, RESUME-3: only the last `--history` events stay; a resume from before them
/// is a gap followed by the backlog (`--backlog`).
#[test]
fn hist_1_retention_bound_and_resume_3_gap_when_not_retained() {
    let server = start(|c| {
        c.history = Some(50);
        c.backlog = 5;
    });
    let addr = server.local_addr();
    let mut talker = Client::join(addr, "talker");
    let (mut r, _) = join_resuming(addr, "r", None);
    r.say("bye");
    let id = last_live_id(&read_until(&mut r, "r: bye"));
    drop(r);
    // Its leave notice before the lines, so that the backlog is the last 5 lines.
    talker.skip_until("r has left the chat");
    for i in 0..100 {
        talker.say(&format!("line {i}"));
    }
    talker.skip_until("talker: line 99");
    let (mut back, lines) = join_resuming(addr, "r", Some(&id));
    let (gap, block) = block_of(&lines);
    assert!(gap);
    assert_eq!(
        block,
        (95..100)
            .map(|i| format!("talker: line {i}"))
            .collect::<Vec<_>>()
    );
    back.say("/history 1000");
    let got = read_until(&mut back, "End of earlier events");
    let (_, m) = parse(got.first().expect("header"));
    assert_eq!(m, ServerMessage::HistoryStart(50));
}
