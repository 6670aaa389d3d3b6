//! What `fxpd copy` shows on stderr while it works.
//!
//! Three modes: a live progress line (bytes, percent, rate, ETA) redrawn in place when stderr
//! is a terminal; one line per file when it is not (logs, pipes); nothing but errors with
//! `--quiet`. The byte counts come from the servers' STAT replies (see `fxp.rs`).

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing (errors are still printed by the caller).
    Quiet,
    /// One line per file, when stderr is not a terminal.
    Plain,
    /// A progress line redrawn in place.
    Bar,
}

/// How often the progress line may be redrawn.
const REDRAW: Duration = Duration::from_millis(100);

/// The window over which the current rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The file being copied.
struct FileState {
    name: String,
    total: Option<u64>,
    /// Where the transfer started (REST offset).
    offset: u64,
    started: Instant,
    /// Bytes of the file present at the destination so far (offset included), if known.
    done: Option<u64>,
    /// (time, done) samples within [`RATE_WINDOW`].
    samples: VecDeque<(Instant, u64)>,
}

/// The progress display.
pub struct Progress {
    mode: Mode,
    file: Option<FileState>,
    last_draw: Option<Instant>,
    /// A progress line is on screen (and must be cleared before other output).
    line_shown: bool,
}

impl Progress {
    /// A display in `mode`.
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            file: None,
            last_draw: None,
            line_shown: false,
        }
    }

    /// A file transfer begins: `total` bytes if known, starting at `offset`.
    pub fn start_file(&mut self, name: &str, total: Option<u64>, offset: u64) {
        self.file = Some(FileState {
            name: name.to_owned(),
            total,
            offset,
            started: Instant::now(),
            done: None,
            samples: VecDeque::new(),
        });
        self.last_draw = None;
        self.draw(false);
    }

    /// `done` bytes of the file (offset included) are at the destination.
    pub fn update(&mut self, done: u64) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let now = Instant::now();
        file.done = Some(done);
        file.samples.push_back((now, done));
        while file
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            file.samples.pop_front();
        }
        self.draw(false);
    }

    /// Redraws the line (time passes even when no byte count arrives).
    pub fn tick(&mut self) {
        self.draw(false);
    }

    /// An informational line (e.g. "trying the reverse roles"), not shown with `--quiet`.
    pub fn note(&mut self, text: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.clear();
        eprintln!("fxpd copy: {text}");
        self.draw(true);
    }

    /// The file is done: prints `name: <size> in <time> (<rate>), <verdict>`.
    pub fn finish_file(&mut self, bytes: u64, verdict: &str) {
        let Some(file) = self.file.take() else {
            return;
        };
        if self.mode == Mode::Quiet {
            return;
        }
        self.clear();
        let elapsed = file.started.elapsed();
        let moved = bytes.saturating_sub(file.offset);
        if moved == 0 && file.offset > 0 {
            // Nothing was transferred (--resume found the file complete).
            eprintln!("fxpd copy: {}: {}, {verdict}", file.name, human_bytes(bytes));
            return;
        }
        let rate = rate(moved, elapsed);
        let resumed = if file.offset > 0 {
            format!(" (resumed at {})", human_bytes(file.offset))
        } else {
            String::new()
        };
        eprintln!(
            "fxpd copy: {}: {} in {:.1} s ({}/s){resumed}, {verdict}",
            file.name,
            human_bytes(bytes),
            elapsed.as_secs_f64(),
            human_bytes(rate)
        );
    }

    /// Removes the progress line, so that an error message starts on a clean line.
    pub fn clear(&mut self) {
        if self.line_shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.line_shown = false;
        }
    }

    fn draw(&mut self, force: bool) {
        if self.mode != Mode::Bar {
            return;
        }
        let Some(file) = &self.file else {
            return;
        };
        let now = Instant::now();
        if !force && self.last_draw.is_some_and(|t| now.duration_since(t) < REDRAW) {
            return;
        }
        self.last_draw = Some(now);
        let line = bar_line(file, now);
        eprint!("\r\x1b[2K{line}");
        let _ = std::io::stderr().flush();
        self.line_shown = true;
    }
}

/// The progress line for `file` at `now`.
fn bar_line(file: &FileState, now: Instant) -> String {
    let name: String = if file.name.chars().count() > 40 {
        let tail: Vec<char> = file.name.chars().rev().take(39).collect();
        format!("…{}", tail.into_iter().rev().collect::<String>())
    } else {
        file.name.clone()
    };
    let elapsed = now.duration_since(file.started);
    let Some(done) = file.done else {
        return format!("{name}  copying... {}", human_duration(elapsed));
    };
    let window_rate = match (file.samples.front(), file.samples.back()) {
        (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => rate(b1.saturating_sub(*b0), t1.duration_since(*t0)),
        _ => rate(done.saturating_sub(file.offset), elapsed),
    };
    match file.total {
        Some(total) if total > 0 => {
            let pct = (done.min(total) as f64 * 100.0 / total as f64).floor();
            let eta = match total.saturating_sub(done).checked_div(window_rate) {
                Some(secs) => human_duration(Duration::from_secs(secs)),
                None => "--:--".into(),
            };
            format!(
                "{name}  {} / {}  {pct:>3.0}%  {}/s  ETA {eta}",
                human_bytes(done),
                human_bytes(total),
                human_bytes(window_rate)
            )
        }
        _ => format!(
            "{name}  {}  {}/s  {}",
            human_bytes(done),
            human_bytes(window_rate),
            human_duration(elapsed)
        ),
    }
}

/// Bytes per second.
fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (bytes as f64 / secs) as u64
    }
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `65 s` -> `1:05`, `3725 s` -> `1:02:05`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_durations() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 17), "3.0 MiB");
        assert_eq!(human_duration(Duration::from_secs(65)), "1:05");
        assert_eq!(human_duration(Duration::from_secs(3725)), "1:02:05");
    }

    #[test]
    fn bar_shows_percent_rate_and_eta() {
        let t0 = Instant::now();
        let file = FileState {
            name: "f.bin".into(),
            total: Some(10 * 1024 * 1024),
            offset: 0,
            started: t0,
            done: Some(5 * 1024 * 1024),
            samples: VecDeque::from([(t0, 0), (t0 + Duration::from_secs(5), 5 * 1024 * 1024)]),
        };
        let line = bar_line(&file, t0 + Duration::from_secs(5));
        assert_eq!(line, "f.bin  5.0 MiB / 10.0 MiB   50%  1.0 MiB/s  ETA 0:05");
        let unknown = FileState {
            total: None,
            done: None,
            ..file
        };
        assert!(bar_line(&unknown, t0).contains("copying"));
    }
}
