//! `--transcript FILE`: every line the window displays is appended to FILE as it
//! appears, so that a test (or a user keeping a log) sees exactly what the user saw.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use druid::im::Vector;

use crate::state::Line;

/// An open transcript file.
#[derive(Debug)]
pub struct Transcript {
    file: File,
    /// The id of the last line written: history lines are written once, in order.
    last_id: u64,
}

impl Transcript {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> io::Result<Transcript> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Transcript { file, last_id: 0 })
    }

    /// Writes the lines of `history` not written yet, one `[HH:MM] text` line each.
    pub fn sync(&mut self, history: &Vector<Line>) -> io::Result<()> {
        let new: Vec<&Line> = history
            .iter()
            .rev()
            .take_while(|l| l.id > self.last_id)
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut out = String::new();
        for line in new.iter().rev() {
            out.push_str(&line.stamped());
            out.push('\n');
        }
        self.file.write_all(out.as_bytes())?;
        self.file.flush()?;
        if let Some(l) = new.first() {
            self.last_id = l.id;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AppState, LineKind, ThemeChoice, stamp};

    #[test]
    fn writes_each_line_once_in_order() {
        let path = std::env::temp_dir().join(format!("chat-gui-transcript-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut t = Transcript::open(&path).unwrap();
        let mut s = AppState::new("x", "a", ThemeChoice::Dark);
        s.push_line(stamp("10:00"), LineKind::Other, "bob", "one");
        s.push_line(stamp("10:01"), LineKind::Join, "", "c has joined the chat");
        t.sync(&s.history).unwrap();
        t.sync(&s.history).unwrap();
        s.push_line(stamp("10:02"), LineKind::Own, "a", "two");
        t.sync(&s.history).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "[10:00] bob: one\n[10:01] c has joined the chat\n[10:02] a: two\n"
        );
        let _ = std::fs::remove_file(&path);
    }
}
