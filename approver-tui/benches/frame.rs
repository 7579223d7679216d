//! Frame time of the Pending view with 10,000 pending requests (SPEC §12: ≤ 5 ms), drawn
//! through ratatui's TestBackend so only the console's own work is measured.
//!
//! `cargo bench -p assent-console --bench frame` (release) or
//! `cargo test -p assent-console --bench frame` (dev build, slower).

use std::time::{Duration, Instant};

use assent_console::app::App;
use assent_console::risk::Risk;
use assent_console::testing::{self, NOW};
use assent_console::update::{Event, RelayEvent, update};
use assent_console::views;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const PENDING: u32 = 10_000;
const FRAMES: usize = 300;

fn main() {
    let fp = testing::approver_key().public().fingerprint().to_string();
    let mut app = App::new("alice", &fp, "ws://127.0.0.1:7447", NOW);
    // Some agent keys were approved before; the others are first-seen.
    for key in [1u8, 3, 5] {
        let fingerprint = testing::agent_key(key).public().fingerprint();
        app.memory.approved("openclaw", fingerprint.as_str());
    }
    let started = Instant::now();
    for i in 0..PENDING {
        let mut r = testing::request(&format!("systemctl restart unit-{i}"), &[]);
        r.expires_at = NOW + 300 + u64::from(i % 600);
        let signed = testing::signed(r, i, (i % 7) as u8 + 1);
        update(
            &mut app,
            Event::Relay(RelayEvent::Request {
                request: Box::new(signed),
                risks: vec![Risk::RunAsRoot],
            }),
        );
    }
    let setup = started.elapsed();
    assert_eq!(app.pending.len(), PENDING as usize);

    println!("console frame with {PENDING} pending requests (setup {setup:.1?})");
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "size", "median", "p99", "max"
    );
    for (w, h) in [(80u16, 24u16), (120, 40), (200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut times: Vec<Duration> = Vec::with_capacity(FRAMES);
        let down = Event::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
        let page = Event::Key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
        for frame in 0..FRAMES {
            // Move (sometimes far) and tick the clock so every frame differs.
            update(
                &mut app,
                if frame % 10 == 0 {
                    page.clone()
                } else {
                    down.clone()
                },
            );
            update(
                &mut app,
                Event::Tick {
                    now: NOW + (frame as u64 % 5),
                },
            );
            let t = Instant::now();
            terminal.draw(|f| views::draw(f, &app)).unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        let p99 = times[times.len() * 99 / 100];
        let max = times[times.len() - 1];
        println!(
            "{:<10} {median:>10.2?} {p99:>10.2?} {max:>10.2?}",
            format!("{w}x{h}")
        );
    }
}
