//! The search for a linearization: depth-first over the calls that may go next, memoizing the
//! (set of linearized calls, register state) pairs already explored (Wing & Gong, with Lowe's
//! memoization, as in Porcupine and Knossos).
//!
//! Two choices keep the search small on real histories:
//! - A read that may go next and fits the current state is placed at once, with no
//!   alternative tried: moving a legal read to the front of any linearization keeps it legal
//!   (it changes nothing, and no open call had to precede it), so nothing is lost.
//! - Otherwise required calls are tried before optional (`info`) ones, so that the first path
//!   tried places an `info` call only where nothing else fits.

use std::collections::HashSet;

use super::register::{ABSENT, Call, Effect, ValueId};

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchResult {
    /// Some order of the calls is legal.
    Linearizable,
    /// No order is.
    Illegal,
    /// The budget of explored states ran out first.
    Exhausted,
}

/// Searches for a legal order of `calls` (sorted by invocation) visiting at most `states_max`
/// states. Required calls must all be placed; the others may be placed or left out.
pub(super) fn search(calls: &[Call], states_max: usize) -> SearchResult {
    let required_total = calls.iter().filter(|call| call.required).count();
    if required_total == 0 {
        return SearchResult::Linearizable;
    }
    let mut search = Search::new(calls);
    loop {
        let Some(frame) = search.stack.last_mut() else { return SearchResult::Illegal };
        let fresh = !std::mem::replace(&mut frame.started, true);
        match search.next_child(fresh) {
            None => search.backtrack(),
            Some(_) if search.memo.len() > states_max => return SearchResult::Exhausted,
            Some((index, after)) => {
                search.descend(index, after);
                if search.placed == required_total {
                    return SearchResult::Linearizable;
                }
            }
        }
    }
}

/// One level of the depth-first search.
struct Frame {
    /// The call linearized to reach this level and the state before it (none at the root).
    via: Option<(usize, ValueId)>,
    /// The lowest call index not yet linearized; every candidate is at or after it.
    first_open: usize,
    /// Position in `by_complete` of the earliest-completing required call not yet linearized.
    first_required: usize,
    /// Candidates are calls invoked before this record index: the completion of the earliest
    /// required call not yet linearized, which must come before anything invoked after it.
    frontier: u64,
    /// The next candidate to try, as `pass * calls.len() + call index` (pass 0 for required
    /// calls, 1 for optional ones).
    cursor: usize,
    /// Whether the level has looked for a read to place at once.
    started: bool,
}

/// The search's state along the current path.
struct Search<'a> {
    calls: &'a [Call],
    /// Required calls by completion, to find the frontier.
    by_complete: Vec<usize>,
    /// A fixed random key per call; the path's hash is the XOR of the keys of its calls.
    zobrist: Vec<u128>,
    linearized: Vec<bool>,
    state: ValueId,
    hash: u128,
    /// Required calls on the path.
    placed: usize,
    /// The memo keeps a 128-bit Zobrist hash of the linearized set instead of the set itself,
    /// so a state costs 20 bytes whatever the history's length. Two sets would have to collide
    /// among at most `states_max` states: a chance below 1e-26.
    memo: HashSet<(u128, ValueId)>,
    stack: Vec<Frame>,
}

impl<'a> Search<'a> {
    fn new(calls: &'a [Call]) -> Self {
        let mut by_complete: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].required).collect();
        by_complete.sort_by_key(|&i| calls[i].complete);
        let mut search = Self {
            calls,
            by_complete,
            zobrist: (0..calls.len() as u64).map(zobrist_key).collect(),
            linearized: vec![false; calls.len()],
            state: ABSENT,
            hash: 0,
            placed: 0,
            memo: HashSet::from([(0, ABSENT)]),
            stack: Vec::new(),
        };
        let root = search.open_frame(None, 0, 0);
        search.stack.push(root);
        search
    }

    /// The next unexplored child of the top frame: the call and the state after it.
    fn next_child(&mut self, fresh: bool) -> Option<(usize, ValueId)> {
        let n = self.calls.len();
        let frame = self.stack.last_mut()?;
        if fresh {
            let candidates = frame.first_open..n;
            let mut reads = candidates.take_while(|&i| self.calls[i].invoke < frame.frontier);
            let read = reads.find(|&i| {
                !self.linearized[i]
                    && matches!(self.calls[i].effect, Effect::Read(value) if value == self.state)
            });
            if let Some(index) = read {
                frame.cursor = 2 * n; // no alternative needs trying
                let fresh_state = self.memo.insert((self.hash ^ self.zobrist[index], self.state));
                return fresh_state.then_some((index, self.state));
            }
        }
        while frame.cursor < 2 * n {
            let (pass, index) = (frame.cursor / n, frame.cursor % n);
            frame.cursor += 1;
            if self.calls[index].invoke >= frame.frontier {
                // Calls are sorted by invocation: the rest of this pass is no candidate either.
                frame.cursor = (pass + 1) * n + frame.first_open;
                continue;
            }
            if self.linearized[index] || self.calls[index].required != (pass == 0) {
                continue;
            }
            if let Some(after) = self.calls[index].effect.apply(self.state)
                && self.memo.insert((self.hash ^ self.zobrist[index], after))
            {
                return Some((index, after));
            }
        }
        None
    }

    /// Places call `index`, reaching state `after`, and opens the next level.
    fn descend(&mut self, index: usize, after: ValueId) {
        self.linearized[index] = true;
        self.hash ^= self.zobrist[index];
        self.placed += usize::from(self.calls[index].required);
        let via = Some((index, self.state));
        self.state = after;
        let parent =
            self.stack.last().map_or((0, 0), |frame| (frame.first_open, frame.first_required));
        let frame = self.open_frame(via, parent.0, parent.1);
        self.stack.push(frame);
    }

    /// Every child of the top frame was tried: undo the call that led to it.
    fn backtrack(&mut self) {
        if let Some((index, before)) = self.stack.pop().and_then(|frame| frame.via) {
            self.linearized[index] = false;
            self.hash ^= self.zobrist[index];
            self.state = before;
            self.placed -= usize::from(self.calls[index].required);
        }
    }

    /// A new level, starting its scans where its parent's ended: the linearized set only grows
    /// along a path, so nothing before those points can be open again.
    fn open_frame(
        &self,
        via: Option<(usize, ValueId)>,
        mut first_open: usize,
        mut first_required: usize,
    ) -> Frame {
        while first_open < self.calls.len() && self.linearized[first_open] {
            first_open += 1;
        }
        while first_required < self.by_complete.len()
            && self.linearized[self.by_complete[first_required]]
        {
            first_required += 1;
        }
        let frontier =
            self.by_complete.get(first_required).map_or(u64::MAX, |&i| self.calls[i].complete);
        Frame { via, first_open, first_required, frontier, cursor: first_open, started: false }
    }
}

/// A fixed pseudo-random 128-bit key per call (splitmix64), so that runs are reproducible.
fn zobrist_key(index: u64) -> u128 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let seed = index.wrapping_mul(2).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (u128::from(mix(seed)) << 64) | u128::from(mix(seed ^ 0x5851_f42d_4c95_7f2d))
}
