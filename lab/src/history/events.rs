//! Lab events: what the lab did and saw besides client operations (faults, leader changes,
//! steps), written as events.jsonl on the same clock as the history.

use std::collections::VecDeque;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::jsonl::{self, JsonlError};
use crate::scenario::{FaultKind, NetworkFaultKind, NodeIndex};

/// The `detail` of the `fault_end` that heals the network (and only the network).
pub const NETWORK_HEAL: &str = "heal network";

/// One line of events.jsonl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Nanoseconds since the run started, on the history's clock.
    pub time_ns: u64,
    /// What happened.
    pub kind: EventKind,
    /// The node it happened to, if one.
    #[serde(default)]
    pub node: Option<NodeIndex>,
    /// Free text. For `fault_start` and `fault_end` it begins with the fault kind
    /// (`"kill"`, `"crash_actor raft"`, `"restart"`, `"isolate the leader"`, or
    /// [`NETWORK_HEAL`]); for `leader` it may name the term.
    #[serde(default)]
    pub detail: String,
}

/// The kinds of lab event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A fault was injected into `node`.
    FaultStart,
    /// The fault on `node` ended (restart, resume, rejoin done); without a node, every fault
    /// still in effect ended (a `heal`).
    FaultEnd,
    /// `node` was observed as the leader (a new leader, or the first one).
    Leader,
    /// `node`'s process started and printed its ready line; without a node, the intruder's
    /// (the `intruder` step), whose detail then begins with `the intruder:`.
    NodeStart,
    /// `node`'s process exited without the lab asking it to; without a node, the intruder's.
    NodeExit,
    /// A scenario step started; `detail` names it.
    Step,
    /// Anything else worth showing on the timeline.
    Note,
}

impl Event {
    /// The fault kind a `fault_start` or `fault_end` names at the start of its detail.
    pub fn fault_kind(&self) -> Option<FaultKind> {
        FaultKind::from_name(self.detail.split_whitespace().next()?)
    }

    /// The network fault kind a `fault_start` names at the start of its detail.
    pub fn network_fault_kind(&self) -> Option<NetworkFaultKind> {
        network_fault_kind(&self.detail)
    }

    /// Whether this event starts or ends a network fault rather than a process fault.
    pub fn is_network(&self) -> bool {
        self.detail == NETWORK_HEAL || self.network_fault_kind().is_some()
    }

    /// Whether this `fault_end` heals every fault (a `heal` step, the heal before the final
    /// checks) or the whole network: the points after which every node must make progress.
    pub fn is_heal(&self) -> bool {
        self.kind == EventKind::FaultEnd
            && self.node.is_none()
            && self.detail.split_whitespace().next() == Some("heal")
    }
}

/// The network fault kind (not `heal`) at the start of a fault event's detail.
fn network_fault_kind(detail: &str) -> Option<NetworkFaultKind> {
    NetworkFaultKind::from_name(detail.split_whitespace().next()?)
        .filter(|kind| *kind != NetworkFaultKind::Heal)
}

/// A span of time in which a fault was in effect on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultWindow {
    /// The node, if the event named one.
    pub node: Option<NodeIndex>,
    /// The `fault_start` detail (`"kill"`).
    pub detail: String,
    /// When the fault started.
    pub start_ns: u64,
    /// When it ended, or the end of the run if it never did.
    pub end_ns: u64,
    /// Whether a `fault_end` closed it.
    pub healed: bool,
}

/// The events of a run, in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Events {
    events: Vec<Event>,
}

impl Events {
    /// Events from a list, sorted by time (stable, so equal times keep their order).
    pub fn from_events(mut events: Vec<Event>) -> Self {
        events.sort_by_key(|event| event.time_ns);
        Self { events }
    }

    /// Appends an event; the runner takes `time_ns` from the history's clock.
    pub fn push(&mut self, event: Event) {
        let position = self.events.partition_point(|existing| existing.time_ns <= event.time_ns);
        self.events.insert(position, event);
    }

    /// Reads events.jsonl; errors name the line.
    pub fn read_jsonl(reader: impl BufRead) -> Result<Self, JsonlError> {
        let records: Vec<(usize, Event)> = jsonl::read_records(reader)?;
        Ok(Self::from_events(records.into_iter().map(|(_, event)| event).collect()))
    }

    /// Writes events.jsonl, one event per line.
    pub fn write_jsonl(&self, writer: impl Write) -> std::io::Result<()> {
        jsonl::write_records(writer, &self.events)
    }

    /// Every event, in time order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Events of one kind, in time order.
    pub fn of_kind(&self, kind: EventKind) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |event| event.kind == kind)
    }

    /// One window per `fault_start`. A `fault_end` closes the oldest open process-fault window
    /// on its node; [`NETWORK_HEAL`] closes every open network-fault window, and any other
    /// `fault_end` without a node every open window. Windows still open end at `run_end_ns`.
    pub fn fault_windows(&self, run_end_ns: u64) -> Vec<FaultWindow> {
        let mut windows: Vec<FaultWindow> = Vec::new();
        let mut open: VecDeque<usize> = VecDeque::new();
        for event in &self.events {
            match event.kind {
                EventKind::FaultStart => {
                    open.push_back(windows.len());
                    windows.push(FaultWindow {
                        node: event.node,
                        detail: event.detail.clone(),
                        start_ns: event.time_ns,
                        end_ns: run_end_ns.max(event.time_ns),
                        healed: false,
                    });
                }
                EventKind::FaultEnd => {
                    let network =
                        |window: &FaultWindow| network_fault_kind(&window.detail).is_some();
                    let closes = |window: &FaultWindow| match event.node {
                        None if event.detail == NETWORK_HEAL => network(window),
                        None => true,
                        Some(_) => window.node == event.node && !network(window),
                    };
                    while let Some(slot) = open.iter().position(|&index| closes(&windows[index])) {
                        let index = open.remove(slot).unwrap_or_default();
                        windows[index].end_ns = event.time_ns;
                        windows[index].healed = true;
                        if event.node.is_some() {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        windows
    }

    /// The time of the last event, or 0.
    pub fn end_ns(&self) -> u64 {
        self.events.last().map_or(0, |event| event.time_ns)
    }
}
