//! A small logger for the `log` facade: one line per record on standard error, which the box's
//! init system keeps (journald adds the time). Records of other crates name their crate.
//!
//! Messages carry what peers sent (stream and application names, user names, paths, reasons),
//! so every control character of a message is escaped (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`):
//! no peer can end a line and forge the next one, or send terminal escapes to whoever reads it.

use log::{LevelFilter, Log, Metadata, Record};
use std::fmt::Write as _;
use std::io::Write as _;

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(record);
        // A closed standard error must not take the daemon down: the line is dropped.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// The whole line of `record`, its message escaped, ending with its only line break.
fn format_line(record: &Record<'_>) -> String {
    let target = record.target();
    let mut line = format!("{:<5} ", record.level());
    if target != "rampart" && !target.starts_with("rampart::") {
        line.push('[');
        escape_into(&mut line, target);
        line.push_str("] ");
    }
    let _ = write!(Escaped(&mut line), "{}", record.args());
    line.push('\n');
    line
}

/// A `fmt::Write` that appends to a string with every control character escaped.
struct Escaped<'a>(&'a mut String);

impl std::fmt::Write for Escaped<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

/// Appends `text` to `out` with every control character (C0, DEL, C1) escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

static LOGGER: StderrLogger = StderrLogger;

/// Sends log records at `level` and above to standard error. Later calls only change the level.
pub fn init(level: LevelFilter) {
    // set_logger fails only when a logger is already set, which is then kept.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, text);
        out
    }

    #[test]
    fn line_breaks_and_escapes_are_escaped() {
        assert_eq!(escaped("s1\nWARN  forged\r\tx"), "s1\\nWARN  forged\\r\\tx");
        assert_eq!(escaped("\x1b[31mred\x7f\0"), "\\x1b[31mred\\x7f\\x00");
        assert_eq!(escaped("a\u{85}b\u{9b}c"), "a\\u{85}b\\u{9b}c");
    }

    #[test]
    fn printable_text_is_kept() {
        assert_eq!(escaped("LiveApp/caméra 1 \\n ok"), "LiveApp/caméra 1 \\n ok");
    }

    #[test]
    fn a_record_is_one_line() {
        let stream = "s1\nINFO  forged line";
        let line = format_line(
            &Record::builder()
                .args(format_args!("refused publish rtmp LiveApp/{stream}"))
                .level(log::Level::Warn)
                .target("rampart::security")
                .build(),
        );
        assert_eq!(line, "WARN  refused publish rtmp LiveApp/s1\\nINFO  forged line\n");
        let other =
            format_line(&Record::builder().args(format_args!("x")).level(log::Level::Info).target("a\nb").build());
        assert_eq!(other, "INFO  [a\\nb] x\n");
    }
}
