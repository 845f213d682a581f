//! The `aspen-bench` binary: parses the command line, runs one test, maps the outcome to an
//! exit code (0 ran, 1 failed, 2 bad flags).

use std::process::ExitCode;

use aspen_bench::args::{Cli, check_command};
use aspen_bench::commands::run;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(reason) = check_command(&cli.command) {
        eprintln!("aspen-bench: {reason}");
        return ExitCode::from(2);
    }
    match run(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("aspen-bench: {reason}");
            ExitCode::FAILURE
        }
    }
}
