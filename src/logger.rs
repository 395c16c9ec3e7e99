//! A small logger for the `log` facade: one line per record on standard error, which the box's
//! init system keeps (journald adds the time). Records of other crates name their crate.

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        let mut err = std::io::stderr().lock();
        // A closed standard error must not take the daemon down: the line is dropped.
        let _ = if target == "rampart" || target.starts_with("rampart::") {
            writeln!(err, "{:<5} {}", record.level(), record.args())
        } else {
            writeln!(err, "{:<5} [{target}] {}", record.level(), record.args())
        };
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Sends log records at `level` and above to standard error. Later calls only change the level.
pub fn init(level: LevelFilter) {
    // set_logger fails only when a logger is already set, which is then kept.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
