//! Checking a history key by key, and the verdict for the run.

use std::collections::BTreeMap;

use super::register;
use super::search::{SearchResult, search};
use super::witness::{self, Witness};
use crate::checker::CheckVerdict;
use crate::history::{History, Operation};
use crate::limits;
use crate::scenario::CheckKind;

/// The result for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Some legal order exists.
    Linearizable,
    /// None does; the witness shows why.
    Violation(Witness),
    /// The search budget ran out.
    Unknown {
        /// Why the checker gave up.
        reason: String,
    },
}

/// The result for a whole history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinearizabilityReport {
    /// Keys checked.
    pub keys: usize,
    /// One witness per key that is not linearizable, by key.
    pub violations: Vec<Witness>,
    /// Keys the checker could not decide, with the reason.
    pub unknown: BTreeMap<String, String>,
}

impl LinearizabilityReport {
    /// The verdict for the run summary.
    pub fn verdict(&self) -> CheckVerdict {
        let check = CheckKind::Linearizability;
        if let Some(first) = self.violations.first() {
            let others = self.violations.len() - 1;
            let more = if others > 0 {
                format!("\n({others} more keys are not linearizable)")
            } else {
                String::new()
            };
            return CheckVerdict::fail(check, format!("{}{more}", first.to_string().trim_end()));
        }
        if let Some((key, reason)) = self.unknown.iter().next() {
            return CheckVerdict::unknown(check, format!("key {key:?}: {reason}"));
        }
        CheckVerdict::pass(check, format!("all {} keys are linearizable", self.keys))
    }
}

/// Checks every key of `history`.
pub fn check_history(history: &History) -> LinearizabilityReport {
    let mut report = LinearizabilityReport::default();
    for (key, operations) in history.operations_by_key() {
        report.keys += 1;
        match check_operations(&key, &operations) {
            KeyOutcome::Linearizable => {}
            KeyOutcome::Violation(witness) => report.violations.push(witness),
            KeyOutcome::Unknown { reason } => {
                report.unknown.insert(key, reason);
            }
        }
    }
    report
}

/// Checks the operations of one key (in invocation order).
pub fn check_operations(key: &str, operations: &[Operation]) -> KeyOutcome {
    check_with_budget(key, operations, limits::LINEARIZABILITY_STATES_MAX)
}

/// [`check_operations`] with an explicit state budget.
pub fn check_with_budget(key: &str, operations: &[Operation], states_max: usize) -> KeyOutcome {
    let calls = register::calls(operations, None, &[]);
    match search(&calls, states_max) {
        SearchResult::Linearizable => KeyOutcome::Linearizable,
        SearchResult::Illegal => KeyOutcome::Violation(witness::find_witness(key, operations)),
        SearchResult::Exhausted => {
            KeyOutcome::Unknown { reason: format!("the search gave up after {states_max} states") }
        }
    }
}
