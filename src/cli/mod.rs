//! The two command-line programs, as library code: `aspen-node` (run a node) and `aspen` (talk
//! to one over HTTP, the etcdctl of Aspen).
//!
//! The binaries in `src/bin/` only wire these parts together, so that everything they decide
//! (how flags, environment and config file combine, which exit code an error gets, how a
//! result is printed) is a plain function with a unit test here, and the process tests in
//! `tests/` only have to show that the wiring holds.
//!
//! - [`node`]: `aspen-node`'s flags, the merge of flags, `ASPEN_*` variables, a TOML file and
//!   the defaults into a [`crate::ClusterBootstrapConfig`], the one "ready" line it prints for
//!   scripts and the lab, and the run loop that turns signals into a clean shutdown.
//! - [`client`]: `aspen`'s commands, a small blocking HTTP client for the node API, and the
//!   human and `--json` renderings of each answer.
//! - [`exit`]: the exit codes both programs share.
//!
//! Caveats:
//! - The client speaks plain HTTP only: the node API binds to loopback by default and has no
//!   TLS, so the CLI carries no TLS stack either.
//! - There is no interactive mode, shell completion or config file for the client: one
//!   command, one request (two for `cluster init` without members), one answer.

pub mod client;
pub mod exit;
pub mod node;

pub use exit::ExitStatus;
