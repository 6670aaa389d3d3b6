//! The W3C Extended Log File Format log that IIS writes (one file per UTC day named
//! `exYYMMDD.log`): one line per command with its status code, and per transfer the bytes
//! moved and the time taken, so administrators can feed fxpd's activity to the tools they
//! use for IIS (goaccess, Log Parser). Policy refusals appear with their status codes.
//!
//! Sessions hand entries to a writer thread over a bounded channel; when the writer falls
//! behind, entries are dropped and counted rather than slowing sessions down.

use chrono::{DateTime, Utc};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The `#Fields:` directive: the columns of every line.
pub const FIELDS: &str =
    "date time c-ip cs-username s-ip s-port cs-method cs-uri-stem sc-status sc-bytes cs-bytes time-taken x-session";

/// Entries waiting for the writer before new ones are dropped.
const QUEUE: usize = 8192;

/// One logged command.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When the command completed.
    pub time: SystemTime,
    /// The client's address.
    pub client: IpAddr,
    /// The user, once logged in.
    pub user: Option<String>,
    /// The server address the client connected to.
    pub server: SocketAddr,
    /// The FTP verb.
    pub method: &'static str,
    /// The path or argument (never a password), `-` when none.
    pub uri: String,
    /// The final reply code.
    pub status: u16,
    /// Bytes sent to the client on the data connection.
    pub sc_bytes: u64,
    /// Bytes received from the client on the data connection.
    pub cs_bytes: u64,
    /// How long the command took.
    pub took: Duration,
    /// The session number, to group a session's lines.
    pub session: u64,
}

/// The handle sessions log through; cheap to clone.
#[derive(Clone)]
pub struct W3cLog {
    tx: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl W3cLog {
    /// Start the writer thread for `dir` (created if missing).
    pub fn start(dir: &Path) -> io::Result<W3cLog> {
        std::fs::create_dir_all(dir)?;
        let (tx, rx) = sync_channel::<Entry>(QUEUE);
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("fxpd-w3c".into())
            .spawn(move || write_entries(&rx, DailyFile::new(dir)))?;
        Ok(W3cLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queue an entry; never blocks.
    pub fn log(&self, entry: Entry) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(entry) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "W3C log writer is behind; entries dropped");
            }
        }
    }
}

/// The writer thread: writes what is queued, then flushes once the queue is drained, so
/// every line reaches the file promptly without a write(2) per line under load.
fn write_entries(rx: &Receiver<Entry>, mut writer: DailyFile) {
    while let Ok(first) = rx.recv() {
        for entry in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            if let Err(e) = writer.write(&entry) {
                tracing::error!(error = %e, "cannot write the W3C log");
            }
        }
        if let Err(e) = writer.flush() {
            tracing::error!(error = %e, "cannot write the W3C log");
        }
    }
}

/// The current day's file, reopened (with a fresh header) when the UTC day changes.
struct DailyFile {
    dir: PathBuf,
    day: Option<chrono::NaiveDate>,
    out: Option<BufWriter<File>>,
}

impl DailyFile {
    fn new(dir: PathBuf) -> DailyFile {
        DailyFile {
            dir,
            day: None,
            out: None,
        }
    }

    fn write(&mut self, entry: &Entry) -> io::Result<()> {
        let time: DateTime<Utc> = entry.time.into();
        if self.day != Some(time.date_naive()) {
            self.rotate(time)?;
        }
        let out = self.out.as_mut().expect("rotate opened the file");
        out.write_all(format_line(entry).as_bytes())
    }

    fn rotate(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        self.flush()?;
        let path = self.dir.join(file_name(now));
        let mut out = BufWriter::new(OpenOptions::new().create(true).append(true).open(&path)?);
        // A header starts every file, and again after a restart (as IIS does).
        write!(
            out,
            "#Software: fxpd {}\r\n#Version: 1.0\r\n#Date: {}\r\n#Fields: {FIELDS}\r\n",
            env!("CARGO_PKG_VERSION"),
            now.format("%Y-%m-%d %H:%M:%S")
        )?;
        self.day = Some(now.date_naive());
        self.out = Some(out);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// IIS's daily file name: `exYYMMDD.log`.
pub fn file_name(day: DateTime<Utc>) -> String {
    day.format("ex%y%m%d.log").to_string()
}

/// One line in the order of [`FIELDS`], CRLF-terminated.
pub fn format_line(e: &Entry) -> String {
    let time: DateTime<Utc> = e.time.into();
    format!(
        "{} {} {} {} {} {} {} {} {} {} {} {} {}\r\n",
        time.format("%Y-%m-%d"),
        time.format("%H:%M:%S"),
        e.client,
        field(e.user.as_deref().unwrap_or("-")),
        e.server.ip(),
        e.server.port(),
        e.method,
        field(&e.uri),
        e.status,
        e.sc_bytes,
        e.cs_bytes,
        e.took.as_millis(),
        e.session,
    )
}

/// A field value: W3C fields are space-separated, so spaces become `+` (as IIS writes
/// them); control characters become `?`; an empty value is `-`.
fn field(value: &str) -> String {
    if value.is_empty() {
        return "-".into();
    }
    value
        .chars()
        .map(|c| {
            if c == ' ' {
                '+'
            } else if c.is_control() {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            client: "192.0.2.7".parse().unwrap(),
            user: Some("alice".into()),
            server: "127.0.0.1:21".parse().unwrap(),
            method: "RETR",
            uri: "/pub/a file.bin".into(),
            status: 226,
            sc_bytes: 1234,
            cs_bytes: 0,
            took: Duration::from_millis(42),
            session: 7,
        }
    }

    #[test]
    fn line_has_every_field_in_order() {
        let line = format_line(&entry());
        assert_eq!(
            line,
            "2026-11-18 11:06:40 192.0.2.7 alice 127.0.0.1 21 RETR /pub/a+file.bin 226 1234 0 42 7\r\n"
        );
        assert_eq!(line.trim_end().split(' ').count(), FIELDS.split(' ').count());
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        let mut e = entry();
        e.uri = "x\r\n#Fields: evil".into();
        e.user = None;
        let line = format_line(&e);
        assert_eq!(line.matches("\r\n").count(), 1);
        assert!(line.contains(" - 127.0.0.1 "));
    }

    /// Entries that arrive together are all flushed, with the sender still open (a
    /// burst once stayed in the buffer until the next entry came).
    #[test]
    fn a_burst_reaches_the_file_without_a_later_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = sync_channel(QUEUE);
        for status in [550, 221] {
            tx.send(Entry { status, ..entry() }).unwrap();
        }
        let writer = DailyFile::new(dir.path().to_path_buf());
        std::thread::spawn(move || write_entries(&rx, writer));
        let path = dir.path().join("ex261118.log");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let lines = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let n = text.lines().filter(|l| !l.starts_with('#')).count();
            if n == 2 || std::time::Instant::now() > deadline {
                break n;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(lines, 2, "both lines flushed while the log is still open");
        drop(tx);
    }

    #[test]
    fn writes_a_daily_file_with_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = DailyFile::new(dir.path().to_path_buf());
        f.write(&entry()).unwrap();
        f.flush().unwrap();
        let text = std::fs::read_to_string(dir.path().join("ex261118.log")).unwrap();
        assert!(text.starts_with("#Software: fxpd "));
        assert!(text.contains(&format!("#Fields: {FIELDS}\r\n")));
        assert!(text.ends_with("42 7\r\n"));
    }
}
