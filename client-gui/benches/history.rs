//! What one more line costs the window, with 100 and with 100,000 lines of history
//! (issue 16: the cost must not grow with the history).
//!
//! - `append/reduce/N`: the state change alone (`reduce::apply` of one chat line into a
//!   history held at N lines by the cap, so every append also drops the oldest line).
//! - `append/window/N`: the whole chat screen in druid's headless harness: the network
//!   event goes through the root controller, every widget's `update`, layout and a paint
//!   of the window (text rendered by cairo into an image), as for a line arriving in the
//!   real window.
//!
//! ```sh
//! cargo bench -p chat-client-gui --bench history
//! ```

use std::hint::black_box;

use chat_client_gui::net::{CommandSender, NetEvent};
use chat_client_gui::reduce;
use chat_client_gui::state::{AppState, LineKind, chatting, stamp};
use chat_client_gui::ui::{self, NET_EVENTS, Services};
use chat_proto::{Nickname, ServerMessage, Text};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use druid::tests::harness::Harness;
use druid::{Size, Target};

/// About 80 bytes of text, as the issue's figures assume.
const TEXT: &str = "the slides for tomorrow are up on the course page, see you all in room B at 5";

fn window(lines: usize) -> AppState {
    let mut s = chatting("alice");
    s.history_cap = lines;
    for i in 0..lines {
        s.push_line(
            stamp("10:00"),
            LineKind::Other,
            "bob",
            &format!("{i} {TEXT}"),
        );
    }
    s
}

/// One chat line of about 80 bytes, as the network thread would deliver it.
fn line() -> Option<NetEvent> {
    Some(NetEvent::Line(ServerMessage::Chat {
        from: Nickname::new("bob").ok()?,
        text: Text::new(&format!("000123 {TEXT}")).ok()?,
    }))
}

fn append(c: &mut Criterion) {
    let Some(line) = line() else {
        return;
    };
    let mut group = c.benchmark_group("append");
    for n in [100usize, 100_000] {
        group.bench_with_input(BenchmarkId::new("reduce", n), &n, |b, &n| {
            let mut s = window(n);
            b.iter(|| black_box(reduce::apply(&mut s, line.clone(), stamp("10:01"))));
            assert_eq!(s.history.len(), n);
        });
        group.bench_with_input(BenchmarkId::new("window", n), &n, |b, &n| {
            let services = Services::new(CommandSender::capture().0);
            Harness::create_simple(window(n), ui::root(services), |h| {
                h.set_initial_size(Size::new(920.0, 620.0));
                h.send_initial_events();
                h.just_layout();
                h.paint();
                b.iter(|| {
                    h.submit_command(NET_EVENTS.with(vec![line.clone()]).to(Target::Global));
                    h.paint();
                });
                assert_eq!(h.data().history.len(), n);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
