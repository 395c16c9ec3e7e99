//! The `rampart` binary: reads the command line, loads the settings, and runs the daemon on a
//! single-threaded tokio runtime.

use rampart::cli::{self, Command};
use rampart::{app, config, logger};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("rampart: {message}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => println!("{}", cli::USAGE),
        Command::Version => println!("rampart {}", env!("CARGO_PKG_VERSION")),
        Command::PrintDefaults(which) => print!("{}", cli::defaults_text(which)),
        Command::CheckConfig(dir) => return exit_code(cli::check_config(dir.as_deref())),
        Command::Run { config, data } => return exit_code(run_daemon(config, data)),
    }
    ExitCode::SUCCESS
}

fn run_daemon(config_dir: Option<PathBuf>, data_dir: Option<PathBuf>) -> bool {
    let loaded = match config::load(config_dir.as_deref()) {
        Ok(loaded) => loaded,
        Err(invalid) => {
            cli::report_invalid(&invalid);
            eprintln!("rampart: not started: fix the settings above");
            return false;
        }
    };
    let settings = loaded.settings.overridden(config::Overrides { data_dir });
    logger::init(settings.server.log_level.0);
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("cannot start the runtime: {e}");
            return false;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = app::shutdown_signal()?;
        app::run(settings, config_dir.as_deref(), shutdown).await
    });
    match result {
        Ok(()) => true,
        Err(e) => {
            log::error!("{e}");
            false
        }
    }
}

fn exit_code(ok: bool) -> ExitCode {
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
