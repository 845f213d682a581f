//! `aspen`: the command-line client of an Aspen node (`aspen --help`). The logic lives in
//! `aspen::cli::client`; this file only wires it to the process.

use std::process::ExitCode;

use clap::Parser;

use aspen::cli::client::{ClientArgs, run};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2, help and version with 0.
    let args = ClientArgs::parse();
    run(&args, &mut std::io::stdout(), &mut std::io::stderr()).into()
}
