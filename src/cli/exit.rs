//! Exit codes, shared by `aspen-node` and `aspen` and documented in their `--help`.
//!
//! Scripts branch on them the way they would on `grep` or `etcdctl`: 0 is success, 2 is a
//! mistake in how the program was called, and the client adds two codes for the answers a
//! script most often wants to tell apart from a failure (a missing key, a lost
//! compare-and-swap).

/// How a program run ended, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked (0).
    Ok,
    /// The request or the node failed (1): unreachable node, server error, node stopped.
    Error,
    /// The program was called wrongly (2): bad flag, bad value, bad config file.
    Usage,
    /// The key does not exist (3).
    NotFound,
    /// A compare-and-swap found another value than expected (4); nothing was changed.
    CasMismatch,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Error => 1,
            ExitStatus::Usage => 2,
            ExitStatus::NotFound => 3,
            ExitStatus::CasMismatch => 4,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// The exit-code table for `--help` texts.
pub const EXIT_CODES_HELP: &str = "Exit codes: 0 ok, 1 error (request failed, node \
unreachable), 2 usage (bad flag or value), 3 key not found, 4 compare-and-swap mismatch.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let all = [
            ExitStatus::Ok,
            ExitStatus::Error,
            ExitStatus::Usage,
            ExitStatus::NotFound,
            ExitStatus::CasMismatch,
        ];
        let codes: Vec<u8> = all.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
        for code in codes {
            assert!(EXIT_CODES_HELP.contains(&format!("{code} ")), "{code} is documented");
        }
    }
}
