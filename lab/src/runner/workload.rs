//! The Workload actor: one `workload` step's concurrent clients, each a WorkloadClient actor.
//!
//! Each client is a Jepsen process: one operation in flight at a time, on a small key set, at
//! its share of the step's rate, until the step's end. Its operations are recorded through the
//! run's [`Recorder`](crate::history::Recorder); after an `info` (outcome unknown) it takes a
//! new process id, as Jepsen requires. A CAS expects the value the client last saw for the key.
//! The Workload actor supervises its clients and stops when the last one has stopped; a client
//! that fails is recorded as a `note` event and the others go on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::INTERRUPTED;
use super::REQUEST_TIMEOUT;
use super::cluster::{Cluster, NodeStatus};
use super::http::agent;
use super::ops::one_op;
use crate::history::{EventKind, OpFunction, OpType, OpValue};
use crate::scenario::WorkloadStep;

/// The Workload actor of one `workload` step.
pub(super) struct Workload;

/// What a Workload actor runs.
pub(super) struct WorkloadArgs {
    /// The cluster the clients talk to.
    pub(super) cluster: Arc<Cluster>,
    /// The step.
    pub(super) step: WorkloadStep,
    /// The step's seed: client `c` draws its operations from `seed ^ c`.
    pub(super) seed: u64,
}

/// The Workload actor takes no messages: it starts its clients and waits for them.
pub(super) enum WorkloadMsg {}
impl ractor::Message for WorkloadMsg {}

impl Actor for Workload {
    type Msg = WorkloadMsg;
    /// Clients still running.
    type State = (Arc<Cluster>, u32);
    type Arguments = WorkloadArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<WorkloadMsg>,
        args: WorkloadArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let end = Instant::now() + Duration::from_millis(args.step.duration_ms);
        let clients = args.step.clients;
        let pace =
            Duration::from_secs_f64(f64::from(clients) / f64::from(args.step.rate_per_s.max(1)));
        for client in 0..clients {
            let client_args = ClientArgs {
                cluster: args.cluster.clone(),
                client,
                end,
                pace,
                step: args.step.clone(),
                rng: ChaCha8Rng::seed_from_u64(args.seed ^ u64::from(client)),
            };
            Actor::spawn_linked(None, WorkloadClient, client_args, myself.get_cell()).await?;
        }
        Ok((args.cluster, clients))
    }

    async fn post_start(
        &self,
        myself: ActorRef<WorkloadMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.1 == 0 {
            myself.stop(None);
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<WorkloadMsg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(..) => state.1 = state.1.saturating_sub(1),
            SupervisionEvent::ActorFailed(_, error) => {
                state.1 = state.1.saturating_sub(1);
                state.0.event(EventKind::Note, None, format!("workload client failed: {error}"));
            }
            _ => {}
        }
        if state.1 == 0 {
            myself.stop(None);
        }
        Ok(())
    }
}

/// One client of a workload: a Jepsen process issuing one operation at a time.
struct WorkloadClient;

struct ClientArgs {
    cluster: Arc<Cluster>,
    client: u32,
    end: Instant,
    /// Time between the starts of two operations of this client.
    pace: Duration,
    step: WorkloadStep,
    rng: ChaCha8Rng,
}

struct ClientState {
    args: ClientArgs,
    agent: ureq::Agent,
    /// The Jepsen process id; a new one after every `info`.
    process: u64,
    /// The value this client last saw for each key (what its CAS expects).
    seen: BTreeMap<String, Option<String>>,
    counter: u64,
}

/// "Issue the next operation."
enum ClientMsg {
    Next,
}
impl ractor::Message for ClientMsg {}

impl Actor for WorkloadClient {
    type Msg = ClientMsg;
    type State = ClientState;
    type Arguments = ClientArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ClientMsg>,
        args: ClientArgs,
    ) -> Result<ClientState, ActorProcessingErr> {
        let process = args.cluster.next_process.fetch_add(1, Ordering::SeqCst);
        myself.cast(ClientMsg::Next)?;
        let agent = agent(REQUEST_TIMEOUT);
        Ok(ClientState { args, agent, process, seen: BTreeMap::new(), counter: 0 })
    }

    async fn handle(
        &self,
        myself: ActorRef<ClientMsg>,
        ClientMsg::Next: ClientMsg,
        state: &mut ClientState,
    ) -> Result<(), ActorProcessingErr> {
        if Instant::now() >= state.args.end || INTERRUPTED.load(Ordering::SeqCst) {
            myself.stop(None);
            return Ok(());
        }
        let started = Instant::now();
        state.next_operation().await;
        let rest = state.args.pace.saturating_sub(started.elapsed());
        if rest.is_zero() {
            myself.cast(ClientMsg::Next)?;
        } else {
            myself.send_after(rest, || ClientMsg::Next);
        }
        Ok(())
    }
}

impl ClientState {
    /// Draws an operation, sends it to the leader (or a random running node when no leader is
    /// known), records it, and updates what the client has seen.
    async fn next_operation(&mut self) {
        let cluster = self.args.cluster.clone();
        let step = &self.args.step;
        let rng = &mut self.args.rng;
        let key = format!("k{}", rng.next_u64() % u64::from(step.keys.max(1)));
        self.counter += 1;
        let new = format!("c{}-{}", self.args.client, self.counter);
        let mix = step.mix;
        let draw = rng.next_u64() % u64::from(mix.read + mix.write + mix.cas).max(1);
        let (f, value) = if draw < u64::from(mix.read) {
            (OpFunction::Read, OpValue::Absent)
        } else if draw < u64::from(mix.read + mix.write) {
            (OpFunction::Write, OpValue::Value(new))
        } else {
            let expected = self.seen.get(&key).cloned().flatten();
            (OpFunction::Cas, OpValue::Cas { expected, new })
        };
        let leader = cluster.leader.lock().expect("leader").map(|(l, _)| l);
        let running = cluster.nodes_in(NodeStatus::Running);
        let node = match leader.filter(|l| running.contains(l)) {
            Some(leader) => leader,
            None if running.is_empty() => return,
            None => running[(rng.next_u64() % running.len() as u64) as usize],
        };
        let http = cluster.http(node).unwrap_or_default();
        let (agent, process, sent) = (self.agent.clone(), self.process, value.clone());
        let op_key = key.clone();
        let (outcome, read) = tokio::task::spawn_blocking(move || {
            one_op(&agent, &cluster, process, node, &http, f, &op_key, sent)
        })
        .await
        .unwrap_or((OpType::Info, None));
        match (outcome, f, value) {
            (OpType::Ok, OpFunction::Read, _) => {
                self.seen.insert(key, read);
            }
            (OpType::Ok, _, OpValue::Value(v) | OpValue::Cas { new: v, .. }) => {
                self.seen.insert(key, Some(v));
            }
            (OpType::Info, _, _) => {
                self.process = self.args.cluster.next_process.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}
