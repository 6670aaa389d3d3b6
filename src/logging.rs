//! How log lines are written, so that text a client sent (user names, paths, command
//! arguments, error texts that quote them) can neither forge a log line nor drive the
//! operator's terminal. Escaping happens here, once, for every field of every event and
//! span: no call site has to remember it.
//!
//! - Text output ([`EscapedFields`], the field formatter of `tracing-subscriber`'s text
//!   format): a value that is a plain token is written as is (`client=192.0.2.7:50000`,
//!   `path=/pub/a.txt`). Any other value is written as one quoted string with Rust's escapes
//!   (`path="/a\r2026-12-06 event=\"client_banned\""`, `\u{1b}` for ESC, `\u{9b}` for the C1
//!   CSI). A value that already is such a quoted literal (a string logged with `?`) is kept
//!   as it is. The message keeps its words; only the characters a terminal would act on are
//!   escaped in it.
//! - JSON output ([`JsonSafe`]): serde_json escapes quotes, backslashes and C0 controls; this
//!   writer also escapes DEL and the C1 controls (`\u009b` is CSI to many terminals), so no
//!   control character reaches the log raw.
//! - The W3C log (`w3c.rs`) has its own field rule (spaces as `+`, controls as `?`).
//!
//! [`init`] installs the process's subscriber with these writers; [`apply`] changes its
//! level and format while it runs (`log.level` and `log.format` apply on reload).
//!
//! A "plain token" has no whitespace, no `"`, `\` or `=`, and no character that
//! [`char::escape_debug`] escapes (C0, DEL and C1 controls, line and paragraph separators,
//! bidirectional overrides and other invisible format characters).

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

use crate::config::{LogConfig, LogFormat, LogLevel};

/// The subscriber stack below the output layer: the registry with its level filter.
type Leveled = tracing_subscriber::layer::Layered<reload::Layer<LevelFilter, Registry>, Registry>;

/// The output layer (`log.format`), boxed so a reload can swap text for JSON.
type Output = Box<dyn tracing_subscriber::Layer<Leveled> + Send + Sync>;

/// What a reload changes in the subscriber [`init`] installed: its level and its format.
struct Handles {
    level: reload::Handle<LevelFilter, Registry>,
    output: reload::Handle<Output, Leveled>,
    format: std::sync::Mutex<LogFormat>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Installs the process's subscriber: `log.format` on stderr at `log.level`, every field
/// escaped. Call it once, at start.
pub fn init(log: &LogConfig) {
    let (level, level_handle) = reload::Layer::new(level_filter(log.level));
    let (output, output_handle) = reload::Layer::new(output_layer(log.format));
    tracing_subscriber::registry().with(level).with(output).init();
    let _ = HANDLES.set(Handles {
        level: level_handle,
        output: output_handle,
        format: std::sync::Mutex::new(log.format),
    });
}

/// The stderr layer of one `log.format`.
fn output_layer(format: LogFormat) -> Output {
    // Colours only for a terminal: journald, log files and pipes get plain text.
    let colours = io::stderr().is_terminal();
    let layer = tracing_subscriber::fmt::layer().with_ansi(colours);
    // SECURITY: field values can be client text (names, paths, arguments): both formats
    // escape them here, so no line can be forged and no escape sequence reaches the
    // operator's terminal.
    match format {
        LogFormat::Json => Box::new(layer.with_writer(JsonSafe(io::stderr)).json()),
        LogFormat::Text => Box::new(layer.with_writer(io::stderr).fmt_fields(EscapedFields)),
    }
}

/// Applies a reloaded `[log]` to the subscriber [`init`] installed: its level and, when it
/// changed, its format. Does nothing when there is none (tests, subcommands).
pub fn apply(log: &LogConfig) {
    let Some(handles) = HANDLES.get() else {
        return;
    };
    if let Err(e) = handles.level.reload(level_filter(log.level)) {
        tracing::error!(error = %e, "cannot change the log level");
    }
    let mut format = handles
        .format
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *format != log.format {
        match handles.output.reload(output_layer(log.format)) {
            Ok(()) => *format = log.format,
            Err(e) => tracing::error!(error = %e, "cannot change the log format"),
        }
    }
}

fn level_filter(level: LogLevel) -> LevelFilter {
    LevelFilter::from_level(level.into())
}

/// The text-format field formatter: every field value escaped (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes `name=value` pairs separated by spaces, the message first as text.
struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: Value<'_>) {
        if self.result.is_err() {
            return;
        }
        self.result = self.try_write(field, value);
    }

    fn try_write(&mut self, field: &Field, value: Value<'_>) -> fmt::Result {
        if !self.first {
            self.writer.write_char(' ')?;
        }
        self.first = false;
        let name = field.name();
        if name == "message" {
            let text = match value {
                Value::Str(s) | Value::Rendered(s) => s,
            };
            return write_message(&mut self.writer, text);
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        if self.writer.has_ansi_escapes() {
            // As the default formatter styles them: italic names, a dimmed `=`.
            write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
        } else {
            write!(self.writer, "{name}=")?;
        }
        match value {
            // A string recorded as such is always quoted, as the default formatter does.
            Value::Str(s) => write!(self.writer, "{s:?}"),
            Value::Rendered(s) if is_plain_token(s) || is_quoted_literal(s) => self.writer.write_str(s),
            // SECURITY: anything else may be client text: one quoted, escaped value.
            Value::Rendered(s) => write!(self.writer, "{s:?}"),
        }
    }
}

/// A field value: a string as recorded, or the `Debug` rendering of anything else (a `%`
/// value renders as its `Display` text).
#[derive(Clone, Copy)]
enum Value<'a> {
    Str(&'a str),
    Rendered(&'a str),
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, Value::Str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let rendered = format!("{value:?}");
        self.write(field, Value::Rendered(&rendered));
    }
}

/// Whether `c` is written as an escape by [`char::escape_debug`] (controls, separators,
/// invisible format characters, `"` and `\`); the single quote, which only a `char` literal
/// escapes, is not.
fn is_escaped(c: char) -> bool {
    let mut escaped = c.escape_debug();
    escaped.next();
    c != '\'' && escaped.next().is_some()
}

/// A value safe to write without quotes: see the module docs.
fn is_plain_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '"' | '\\' | '=') && !is_escaped(c))
}

/// A string literal as `Debug` writes one: `"` ... `"` with every quote, backslash and
/// special character inside escaped. Written as it is, it is still one value.
fn is_quoted_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return false,
            '\\' => match chars.next() {
                Some('\\' | '"' | '\'' | 'n' | 'r' | 't' | '0') => {}
                Some('u') => {
                    if chars.next() != Some('{') {
                        return false;
                    }
                    let mut digits = 0;
                    loop {
                        match chars.next() {
                            Some('}') if (1..=6).contains(&digits) => break,
                            Some(d) if d.is_ascii_hexdigit() && digits < 6 => digits += 1,
                            _ => return false,
                        }
                    }
                }
                _ => return false,
            },
            c if is_escaped(c) => return false,
            _ => {}
        }
    }
    true
}

/// The message as text, with the characters a terminal or a line parser would act on
/// escaped (quotes and backslashes stay: the message is not a quoted value).
fn write_message(w: &mut Writer<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if is_escaped(c) && !matches!(c, '"' | '\\') {
            write!(w, "{}", c.escape_debug())?;
        } else {
            w.write_char(c)?;
        }
    }
    Ok(())
}

/// A [`MakeWriter`] for the JSON output that escapes DEL and the C1 controls, which JSON
/// allows raw inside strings (see the module docs). Each event reaches it as one whole
/// line, so no character is split between two writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSafe<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JsonSafe<M> {
    type Writer = JsonSafeWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        JsonSafeWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        JsonSafeWriter(self.0.make_writer_for(meta))
    }
}

/// The writer of [`JsonSafe`].
#[derive(Debug)]
pub struct JsonSafeWriter<W>(W);

impl<W: io::Write> io::Write for JsonSafeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_json_controls(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `buf` (UTF-8 JSON) with DEL (`7f`) and the C1 controls (`c2 80` to `c2 9f`) written as
/// `\u00XX` escapes. Both can only occur inside JSON strings, where the escape means the
/// same character. Borrowed when there is nothing to escape (the usual case).
fn escape_json_controls(buf: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_c1 = |i: usize| buf[i] == 0xc2 && buf.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b));
    if !(0..buf.len()).any(|i| buf[i] == 0x7f || is_c1(i)) {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == 0x7f {
            out.extend_from_slice(b"\\u007f");
            i += 1;
        } else if is_c1(i) {
            out.extend_from_slice(format!("\\u00{:02x}", buf[i + 1]).as_bytes());
            i += 2;
        } else {
            out.push(buf[i]);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const FORGED: &str = "/x\r2026-12-06T10:00:00Z  WARN fxpd::security: event=\"client_banned\" client=1.2.3.4\x1b[2K\u{9b}0m\u{7f}";

    fn text_log(emit: impl FnOnce()) -> String {
        let out = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        out.text()
    }

    #[test]
    fn every_kind_of_value_is_escaped_in_the_text_log() {
        let log = text_log(|| {
            let span = tracing::info_span!("session", client = %"192.0.2.7:50000");
            let _in = span.enter();
            tracing::info!(
                command = "STOR",
                path = %FORGED,
                user = ?"eve\"\r",
                other = ?("a b", 1),
                plain = %"/pub/a.txt",
                spaced = %"a b=c",
                empty = %"",
                literal = %"\"ok\"",
                number = 42,
                "transfer complete\r\x1b[31m \"quoted\" C:\\dir"
            );
        });
        assert_eq!(log.lines().count(), 1, "{log:?}");
        assert!(!log.trim_end().chars().any(char::is_control), "{log:?}");
        assert_eq!(
            log,
            format!(
                " INFO session{{client=192.0.2.7:50000}}: transfer complete\\r\\u{{1b}}[31m \"quoted\" C:\\dir \
                 command=\"STOR\" path={FORGED:?} user=\"eve\\\"\\r\" other=\"(\\\"a b\\\", 1)\" \
                 plain=/pub/a.txt spaced=\"a b=c\" empty=\"\" literal=\"ok\" number=42\n"
            )
        );
        assert!(!log.contains("event=\"client_banned\""));
    }

    #[test]
    fn plain_tokens_and_literals() {
        for plain in ["127.0.0.1:21", "/pub/a.txt", "STOR", "caf\u{e9}", "a'b"] {
            assert!(is_plain_token(plain), "{plain:?}");
        }
        for not in [
            "",
            "a b",
            "a=b",
            "a\"",
            "a\\b",
            "a\rb",
            "\u{1b}",
            "\u{9b}",
            "\u{7f}",
            "a\u{202e}b",
            "\u{2028}",
            "\u{a0}",
        ] {
            assert!(!is_plain_token(not), "{not:?}");
        }
        for s in ["", "a b", "\"", "x\r\u{1b}\u{9b}\u{202e}'\\", "\u{10ffff}"] {
            let literal = format!("{s:?}");
            assert!(is_quoted_literal(&literal), "{literal}");
        }
        for not in [
            "\"",
            "\"a",
            "a\"",
            "\"a\"b\"",
            "\"a\\\"",
            "\"\\x\"",
            "\"\\u{}\"",
            "\"\\u{1234567}\"",
            "\"\\u1b\"",
            "\"a\rb\"",
            "\"\u{9b}\"",
        ] {
            assert!(!is_quoted_literal(not), "{not:?}");
        }
    }

    #[test]
    fn json_lines_carry_no_raw_control_characters() {
        let out = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(JsonSafe(out.clone()))
            .json()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(path = %FORGED, "transfer complete");
        });
        let log = out.text();
        assert_eq!(log.lines().count(), 1, "{log:?}");
        let line = log.lines().next().unwrap();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["fields"]["path"], FORGED);
        assert_eq!(v["fields"]["message"], "transfer complete");
    }

    #[test]
    fn json_escapes_only_del_and_c1() {
        let plain = "{\"a\":\"caf\u{e9} \u{a0}\u{100}\"}".as_bytes();
        assert!(matches!(
            escape_json_controls(plain),
            std::borrow::Cow::Borrowed(_)
        ));
        let raw = "\"\u{7f}\u{80}\u{9b}\u{9f}\u{a0}\"";
        assert_eq!(
            &*escape_json_controls(raw.as_bytes()),
            "\"\\u007f\\u0080\\u009b\\u009f\u{a0}\"".as_bytes()
        );
    }
}
