//! `aspen-node`: one node as an operating-system process.
//!
//! The binary parses its flags ([`args`]), merges them with `ASPEN_*` variables, a TOML file
//! and the defaults into a checked configuration ([`config`]), starts the node, prints one
//! [`ReadyLine`] to stdout, and stops cleanly on SIGTERM or SIGINT ([`run`]). Every refusal
//! before the start is one line on stderr and exit code 2, and nothing has been started.
//!
//! Caveats:
//! - Only Unix signals are handled; the binary targets Linux like the rest of Aspen.
//! - The node does not daemonize or write a pid file: run it under a supervisor (systemd,
//!   the lab) that keeps the process in the foreground.

pub mod args;
pub mod config;
pub mod ready;
pub mod run;

pub use args::{ArgsOutcome, BackendArg, NodeArgs, PEERS_ENV, parse_node_args};
pub use config::{NodeConfigError, load_node_config, parse_config_text, read_config_file};
pub use ready::{READY_PREFIX, ReadyLine};
pub use run::{describe_bootstrap_error, init_logging, ready_line, run_node};
