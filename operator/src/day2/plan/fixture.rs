//! A small simulated cluster for the planner's tests: a builder for observations, and a
//! simulator that carries out each action the way a workload and the brokers would.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use strom_admin::TopicPartition;
use strom_crds::cluster::{OperationStatus, OperationsSpec};

use crate::day2::action::{Action, Plan};
use crate::day2::desired::Desired;
use crate::day2::observed::{
    AdminState, Observed, PartitionView, RegisteredBroker, WorkloadBroker, WorkloadState,
};

pub(crate) const OLD: &str = "rev-old";
pub(crate) const NEW: &str = "rev-new";

pub(crate) fn at(second: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + second).expect("timestamp"))
}

/// The spec's target: `replicas` brokers, 3 voters (fewer when there are fewer brokers), every
/// broker on [`NEW`].
pub(crate) fn desired(replicas: i32) -> Desired {
    Desired {
        replicas,
        voters: replicas.min(3),
        revision: NEW.to_owned(),
        dynamic_config: BTreeMap::new(),
        paused: false,
        policy: OperationsSpec::default(),
    }
}

/// A cluster of `brokers` serving brokers on `revision`, controller 0, no topic.
pub(crate) fn cluster(brokers: i32, revision: &str) -> Observed {
    Observed {
        workload: WorkloadState {
            replicas: brokers,
            brokers: (0..brokers)
                .map(|id| WorkloadBroker {
                    id,
                    revision: Some(revision.to_owned()),
                    ready: true,
                    restarting: false,
                    crash_looping: false,
                    resize_pending: false,
                })
                .collect(),
        },
        admin: Some(AdminState {
            controller: Some(0),
            brokers: (0..brokers)
                .map(|id| RegisteredBroker {
                    id,
                    fenced: false,
                    rack: None,
                })
                .collect(),
            partitions: Vec::new(),
            log_dirs: (0..brokers).map(|id| (id, BTreeMap::new())).collect(),
            dynamic_config: BTreeMap::new(),
        }),
    }
}

pub(crate) fn admin(observed: &mut Observed) -> &mut AdminState {
    observed.admin.as_mut().expect("admin state")
}

/// Adds topic `name` with `partitions` partitions of `rf` replicas each, placed round-robin over
/// `brokers`, every replica in sync and the preferred replica leading.
pub(crate) fn add_topic(
    observed: &mut Observed,
    name: &str,
    partitions: i32,
    rf: usize,
    min_isr: i32,
    brokers: &[i32],
) {
    for index in 0..partitions {
        let start = usize::try_from(index).expect("index");
        let replicas: Vec<i32> = (0..rf)
            .map(|j| brokers[(start + j) % brokers.len()])
            .collect();
        set_partition(
            observed,
            TopicPartition::new(name, index),
            replicas,
            min_isr,
        );
    }
}

/// Sets one partition, fully in sync and led by its preferred replica.
pub(crate) fn set_partition(
    observed: &mut Observed,
    partition: TopicPartition,
    replicas: Vec<i32>,
    min_isr: i32,
) {
    let state = admin(observed);
    state.partitions.retain(|p| p.partition != partition);
    state.partitions.push(PartitionView {
        partition,
        leader: replicas.first().copied(),
        isr: replicas.clone(),
        replicas,
        min_insync_replicas: min_isr,
        adding: Vec::new(),
        removing: Vec::new(),
    });
    state
        .partitions
        .sort_by(|a, b| a.partition.cmp(&b.partition));
    refresh_log_dirs(state);
}

pub(crate) fn partition<'a>(
    observed: &'a mut Observed,
    name: &str,
    index: i32,
) -> &'a mut PartitionView {
    let tp = TopicPartition::new(name, index);
    admin(observed)
        .partitions
        .iter_mut()
        .find(|p| p.partition == tp)
        .expect("partition")
}

/// Log dirs as the brokers would report them: every replica a broker hosts is on its disk.
pub(crate) fn refresh_log_dirs(state: &mut AdminState) {
    for dirs in state.log_dirs.values_mut() {
        dirs.clear();
    }
    for p in &state.partitions {
        for id in &p.replicas {
            if let Some(dirs) = state.log_dirs.get_mut(id) {
                dirs.insert(p.partition.clone(), 1024);
            }
        }
    }
}

/// Whether broker `id` is missing from the ISR of a partition it hosts.
fn out_of_isr(state: &AdminState, id: i32) -> bool {
    state
        .partitions
        .iter()
        .any(|p| p.replicas.contains(&id) && !p.isr.contains(&id))
}

/// Carries out actions as a well-behaved workload and cluster would: a restarted broker goes
/// down at once and comes back on the next [`Simulator::tick`]; moves finish on the next tick.
#[derive(Debug, Clone)]
pub(crate) struct Simulator {
    pub(crate) observed: Observed,
    pub(crate) desired: Desired,
    pub(crate) operation: Option<OperationStatus>,
    pub(crate) second: i64,
    /// Every restart, in order.
    pub(crate) restarts: Vec<i32>,
    /// Restarted brokers that come back on the next tick, with the revision they were
    /// restarted onto.
    down: Vec<(i32, String)>,
    /// Brokers back from a restart that rejoin the ISR of their partitions on the next tick.
    catching_up: Vec<i32>,
    /// Frozen brokers (a stopped process) and the ticks until they run again.
    frozen: Vec<(i32, u32)>,
}

impl Simulator {
    pub(crate) fn new(observed: Observed, desired: Desired) -> Self {
        Self {
            observed,
            desired,
            operation: None,
            second: 0,
            restarts: Vec::new(),
            down: Vec::new(),
            catching_up: Vec::new(),
            frozen: Vec::new(),
        }
    }

    /// One pass: plan, record the operation, act.
    pub(crate) fn step(&mut self) -> Plan {
        let plan = super::plan(
            &self.desired,
            &self.observed,
            self.operation.as_ref(),
            at(self.second),
        );
        self.operation = plan.operation.clone();
        self.apply(&plan.action);
        plan
    }

    /// Whether every broker but `broker` that was restarted or frozen is back and in sync.
    pub(crate) fn settled_but(&self, broker: i32) -> bool {
        self.down.iter().all(|(id, _)| *id == broker)
            && self.catching_up.iter().all(|id| *id == broker)
    }

    /// Stops broker `id` for `ticks` ticks, as SIGSTOP would: it leaves every ISR, loses its
    /// leaderships and fails its readiness check, then catches up. A broker being restarted is
    /// left alone.
    pub(crate) fn freeze(&mut self, id: i32, ticks: u32) {
        let busy = self.down.iter().any(|(d, _)| *d == id)
            || self.catching_up.contains(&id)
            || self.frozen.iter().any(|(f, _)| *f == id);
        let Some(b) = self
            .observed
            .workload
            .brokers
            .iter_mut()
            .find(|b| b.id == id)
        else {
            return;
        };
        if busy {
            return;
        }
        b.ready = false;
        self.frozen.push((id, ticks));
        for p in &mut admin(&mut self.observed).partitions {
            if p.isr.len() > 1 {
                p.isr.retain(|r| *r != id);
            }
            if p.leader == Some(id) {
                p.leader = p.isr.first().copied();
            }
        }
    }

    /// Time passes: brokers that caught up rejoin the ISR, restarted brokers run again (still
    /// out of the ISR), moves complete.
    pub(crate) fn tick(&mut self) {
        self.second += 10;
        let state = admin(&mut self.observed);
        for id in std::mem::take(&mut self.catching_up) {
            for p in &mut state.partitions {
                if p.replicas.contains(&id) && !p.isr.contains(&id) {
                    p.isr.push(id);
                }
                if p.leader.is_none() {
                    p.leader = Some(id);
                }
            }
        }
        let mut thawed = Vec::new();
        self.frozen.retain_mut(|(id, ticks)| {
            *ticks = ticks.saturating_sub(1);
            if *ticks == 0 {
                thawed.push(*id);
            }
            *ticks > 0
        });
        for id in thawed {
            if let Some(b) = self
                .observed
                .workload
                .brokers
                .iter_mut()
                .find(|b| b.id == id)
            {
                b.ready = true;
            }
            if out_of_isr(admin(&mut self.observed), id) {
                self.catching_up.push(id);
            }
        }
        for (id, revision) in std::mem::take(&mut self.down) {
            if let Some(b) = self
                .observed
                .workload
                .brokers
                .iter_mut()
                .find(|b| b.id == id)
            {
                b.revision = Some(revision.clone());
                b.ready = true;
                b.restarting = false;
                b.crash_looping = false;
                // A started pod's filesystem is grown to its volume.
                b.resize_pending = false;
            }
            let state = admin(&mut self.observed);
            if let Some(b) = state.brokers.iter_mut().find(|b| b.id == id) {
                b.fenced = false;
            }
            if out_of_isr(admin(&mut self.observed), id) {
                self.catching_up.push(id);
            }
        }
        let state = admin(&mut self.observed);
        for p in &mut state.partitions {
            if p.reassigning() {
                p.replicas = p.target_replicas();
                p.isr = p.replicas.clone();
                if !p.leader.is_some_and(|l| p.replicas.contains(&l)) {
                    p.leader = p.replicas.first().copied();
                }
                p.adding.clear();
                p.removing.clear();
            }
        }
        refresh_log_dirs(state);
    }

    fn apply(&mut self, action: &Action) {
        let revision = self.desired.revision.clone();
        match action {
            Action::Idle | Action::Wait => {}
            Action::Restart { broker } => {
                self.restarts.push(*broker);
                self.frozen.retain(|(id, _)| id != broker);
                self.catching_up.retain(|id| id != broker);
                self.down.push((*broker, revision.clone()));
                if let Some(b) = self
                    .observed
                    .workload
                    .brokers
                    .iter_mut()
                    .find(|b| b.id == *broker)
                {
                    b.ready = false;
                    b.restarting = true;
                }
                let state = admin(&mut self.observed);
                if let Some(b) = state.brokers.iter_mut().find(|b| b.id == *broker) {
                    b.fenced = true;
                }
                for p in &mut state.partitions {
                    p.isr.retain(|id| id != broker);
                    if p.leader == Some(*broker) {
                        p.leader = p.isr.first().copied();
                    }
                }
                if state.controller == Some(*broker) {
                    state.controller = (0..self.desired.voters).find(|id| id != broker);
                }
            }
            Action::Scale { replicas } => {
                let workload = &mut self.observed.workload;
                workload.replicas = *replicas;
                workload.brokers.retain(|b| b.id < *replicas);
                let state = self.observed.admin.as_mut().expect("admin state");
                state.brokers.retain(|b| b.id < *replicas);
                state.log_dirs.retain(|id, _| id < replicas);
                for id in 0..*replicas {
                    if !workload.brokers.iter().any(|b| b.id == id) {
                        workload.brokers.push(WorkloadBroker {
                            id,
                            revision: Some(revision.clone()),
                            ready: true,
                            restarting: false,
                            crash_looping: false,
                            resize_pending: false,
                        });
                        state.brokers.push(RegisteredBroker {
                            id,
                            fenced: false,
                            rack: None,
                        });
                        state.log_dirs.insert(id, BTreeMap::new());
                    }
                }
                workload.brokers.sort_by_key(|b| b.id);
                state.brokers.sort_by_key(|b| b.id);
            }
            Action::Reassign { moves, .. } => {
                let state = admin(&mut self.observed);
                for p in &mut state.partitions {
                    if let Some(target) = moves.get(&p.partition) {
                        let current = p.replicas.clone();
                        p.adding = target
                            .iter()
                            .copied()
                            .filter(|id| !current.contains(id))
                            .collect();
                        p.removing = current
                            .iter()
                            .copied()
                            .filter(|id| !target.contains(id))
                            .collect();
                        let mut replicas = target.clone();
                        replicas.extend(p.removing.iter().copied());
                        p.replicas = replicas;
                        if p.adding.is_empty() && p.removing.is_empty() {
                            p.replicas = target.clone();
                        }
                    }
                }
            }
            Action::CancelReassignments { partitions } => {
                let state = admin(&mut self.observed);
                for p in &mut state.partitions {
                    if partitions.contains(&p.partition) {
                        p.replicas.retain(|id| !p.adding.contains(id));
                        p.isr.retain(|id| !p.adding.contains(id));
                        p.adding.clear();
                        p.removing.clear();
                    }
                }
            }
            Action::ElectPreferred { partitions } => {
                let state = admin(&mut self.observed);
                for p in &mut state.partitions {
                    let preferred = p.replicas.first().copied();
                    if partitions.contains(&p.partition)
                        && preferred.is_some_and(|id| p.isr.contains(&id))
                    {
                        p.leader = preferred;
                    }
                }
            }
            Action::AlterBrokerConfigs { configs } => {
                let state = admin(&mut self.observed);
                for (key, value) in configs {
                    if value.is_empty() {
                        state.dynamic_config.remove(key);
                    } else {
                        state.dynamic_config.insert(key.clone(), value.clone());
                    }
                }
            }
            Action::ClearThrottles => {}
        }
    }

    /// Passes until the plan is idle (at most `limit`), each followed by a tick; the plans.
    pub(crate) fn run(&mut self, limit: usize) -> Vec<Plan> {
        let mut plans = Vec::new();
        for _ in 0..limit {
            let plan = self.step();
            let idle = plan.action == Action::Idle;
            plans.push(plan);
            if idle {
                break;
            }
            self.tick();
        }
        plans
    }
}
