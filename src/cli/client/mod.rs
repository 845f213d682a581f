//! `aspen`, the command-line client: etcdctl for Aspen.
//!
//! Each command is one or two HTTP requests to one node ([`http::NodeClient`]), turned into an
//! [`commands::Outcome`] and printed by [`output`] as text or, with `--json`, as the node's
//! JSON. [`run`] is the whole program minus argument parsing, so tests can drive it with any
//! writer. Exit codes are in [`crate::cli::ExitStatus`].
//!
//! Caveats:
//! - The client does not follow the leader: membership commands sent to a follower fail with
//!   the node's "not the leader" sentence, which names the leader. Key-value commands work on
//!   any node because the node forwards them.
//! - Keys and values are UTF-8 strings, as in the API.

pub mod args;
pub mod commands;
pub mod http;
pub mod output;
mod run;

pub use args::{ClientArgs, ClusterCommand, Command, DEFAULT_NODE_URL, KvCommand, NodeCommand};
pub use commands::{Outcome, View, execute};
pub use http::{ClientError, NodeClient};
pub use output::{Printed, render_error, render_outcome};
pub use run::run;
