//! The whole `aspen` program after argument parsing.

use std::io::Write;

use super::args::ClientArgs;
use super::commands::execute;
use super::http::NodeClient;
use super::output::{render_error, render_outcome};
use crate::cli::ExitStatus;

/// Runs one parsed command against the node and prints the answer.
pub fn run(args: &ClientArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> ExitStatus {
    let result =
        NodeClient::new(&args.node).and_then(|client| execute(&client, &args.command, args.json));
    let (printed, status) = match result {
        Ok(outcome) => (render_outcome(&outcome, args.json), ExitStatus::Ok),
        Err(error) => (render_error(&error, args.json), error.exit_status()),
    };
    // A closed stdout (`aspen kv scan | head -1`) is not worth another error line.
    if !printed.stdout.is_empty() {
        let _ = writeln!(stdout, "{}", printed.stdout);
    }
    if !printed.stderr.is_empty() {
        let _ = writeln!(stderr, "{}", printed.stderr);
    }
    status
}
