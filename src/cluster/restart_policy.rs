//! The restart intensity of a supervisor, as plain state: how many restarts of one child are
//! allowed within a sliding window before the supervisor gives up (Erlang/OTP's
//! `intensity`/`period`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What to do about a child that exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart it; this is restart number `restarts` within the window.
    Restart {
        /// Restarts within the window, including this one.
        restarts: usize,
    },
    /// Too many restarts within the window: stop the node.
    GiveUp {
        /// Restarts within the window before this exit.
        restarts: usize,
    },
}

/// Restart history of one child.
#[derive(Debug, Clone)]
pub struct RestartIntensity {
    restarts_max: usize,
    window: Duration,
    history: VecDeque<Instant>,
}

impl RestartIntensity {
    /// Allows `restarts_max` restarts within `window`.
    pub fn new(restarts_max: usize, window: Duration) -> Self {
        Self { restarts_max, window, history: VecDeque::new() }
    }

    /// Records an exit at `now` and decides.
    pub fn on_exit(&mut self, now: Instant) -> RestartDecision {
        while self.history.front().is_some_and(|t| now.duration_since(*t) > self.window) {
            self.history.pop_front();
        }
        if self.history.len() >= self.restarts_max {
            return RestartDecision::GiveUp { restarts: self.history.len() };
        }
        self.history.push_back(now);
        RestartDecision::Restart { restarts: self.history.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_the_maximum_within_the_window() {
        let mut policy = RestartIntensity::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for n in 1..=3 {
            assert_eq!(policy.on_exit(start), RestartDecision::Restart { restarts: n });
        }
        assert_eq!(policy.on_exit(start), RestartDecision::GiveUp { restarts: 3 });
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut policy = RestartIntensity::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            policy.on_exit(start);
        }
        let later = start + Duration::from_secs(61);
        assert_eq!(policy.on_exit(later), RestartDecision::Restart { restarts: 1 });
    }
}
