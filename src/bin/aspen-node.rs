//! `aspen-node`: one Aspen node as a process (`aspen-node --help`). The logic lives in
//! `aspen::cli::node`; this file only wires it to the process.

use std::process::ExitCode;
use std::time::Duration;

use aspen::cli::ExitStatus;
use aspen::cli::node::{ArgsOutcome, init_logging, load_node_config, parse_node_args, run_node};

/// How long the runtime may take to wind down after the node has stopped; a task that is
/// still running then (a blocking call stuck on a dead peer) must not hold up the exit.
const RUNTIME_SHUTDOWN_TIMEOUT_MS: u64 = 500;

fn main() -> ExitCode {
    let args = match parse_node_args(std::env::args_os()) {
        Ok(args) => args,
        Err(ArgsOutcome::Print(text)) => {
            print!("{text}");
            return ExitStatus::Ok.into();
        }
        Err(ArgsOutcome::Usage(line)) => return usage(&line),
    };
    let config = match load_node_config(&args, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => return usage(&error.to_string()),
    };
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("aspen-node: cannot start the async runtime: {error}");
            return ExitStatus::Error.into();
        }
    };
    let status = runtime.block_on(run_node(config));
    runtime.shutdown_timeout(Duration::from_millis(RUNTIME_SHUTDOWN_TIMEOUT_MS));
    status.into()
}

fn usage(line: &str) -> ExitCode {
    eprintln!("aspen-node: {line}");
    ExitStatus::Usage.into()
}
