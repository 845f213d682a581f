//! The verdict every check returns.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scenario::{CheckKind, NodeIndex};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The property holds.
    Pass,
    /// The property does not hold; the reason says where.
    Fail,
    /// The check could not decide (missing data, or a search budget ran out).
    Unknown,
}

impl Outcome {
    /// The outcome as printed: `PASS`, `FAIL` or `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Unknown => "UNKNOWN",
        }
    }
}

/// The result of one check, with a reason a person can act on: which node, which key, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckVerdict {
    /// The check.
    pub check: CheckKind,
    /// How it came out.
    pub outcome: Outcome,
    /// Why, in a sentence or a few lines.
    pub reason: String,
}

impl CheckVerdict {
    /// A passing verdict.
    pub fn pass(check: CheckKind, reason: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Pass, reason: reason.into() }
    }

    /// A failing verdict.
    pub fn fail(check: CheckKind, reason: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Fail, reason: reason.into() }
    }

    /// An undecided verdict.
    pub fn unknown(check: CheckKind, reason: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Unknown, reason: reason.into() }
    }
}

impl fmt::Display for CheckVerdict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}: {}", self.check, self.outcome.label(), self.reason)
    }
}

/// The outcome of a run: `Fail` if any check failed, else `Unknown` if any was undecided, else
/// `Pass` (also for a run without checks).
pub fn overall(verdicts: &[CheckVerdict]) -> Outcome {
    let worst = verdicts.iter().map(|verdict| match verdict.outcome {
        Outcome::Fail => 2,
        Outcome::Unknown => 1,
        Outcome::Pass => 0,
    });
    match worst.max() {
        Some(2) => Outcome::Fail,
        Some(1) => Outcome::Unknown,
        _ => Outcome::Pass,
    }
}

/// Formats nanoseconds since the run started as seconds with milliseconds, for reasons.
pub fn seconds(time_ns: u64) -> String {
    format!("{:.3} s", time_ns as f64 / 1e9)
}

/// Names nodes for reasons: `node 2`, `nodes 0, 1`.
pub fn nodes(nodes: &[NodeIndex]) -> String {
    let list: Vec<String> = nodes.iter().map(ToString::to_string).collect();
    match list.len() {
        1 => format!("node {}", list[0]),
        _ => format!("nodes {}", list.join(", ")),
    }
}
