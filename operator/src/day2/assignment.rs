//! Target replica assignments: balanced over a set of brokers, rack-aware, reached by moving as
//! few replicas as possible from the current assignment.
//!
//! The target keeps every replica that may stay (on a target broker, within its rack's share:
//! one replica per rack when there are at least as many racks as replicas), places the missing
//! ones on the least-loaded brokers, then moves replicas along shortest chains from the
//! most-loaded broker to one at least two below it until replica counts per broker differ by at
//! most one. A chain `a → m → b` moves one replica of a partition from `a` to `m` and one of
//! another from `m` to `b` when no single partition can go from `a` to `b` without putting two
//! replicas in one rack. Preferred leaders are then balanced the same way, by reordering
//! replicas (no data moves), or where no reordering helps by exchanging a leader replica and a
//! follower replica between two brokers (replica counts stay). Every chain lowers the sum of
//! squared counts, so the search ends; an assignment that already meets every bound comes back
//! unchanged.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use strom_admin::TopicPartition;

use super::observed::{PartitionView, RegisteredBroker};

/// The balanced target of `partitions` over `target_brokers`, each partition keeping its
/// replication factor: per partition its replicas, preferred leader first. Every partition is in
/// the result; the ones that need no move map to their current replicas (their target, for a
/// reassignment in progress). A partition whose replication factor exceeds the target brokers
/// keeps its replicas.
pub fn balanced(
    partitions: &[PartitionView],
    brokers: &[RegisteredBroker],
    target_brokers: &[i32],
) -> BTreeMap<TopicPartition, Vec<i32>> {
    assign(partitions, brokers, target_brokers, |view| {
        distinct(&view.target_replicas()).len()
    })
}

/// The balanced target of `partitions` over `target_brokers` with `rf` replicas each: replicas
/// are added on the least-loaded brokers, or the ones on the most-loaded brokers dropped (never
/// the preferred leader while a follower can go), then balanced as [`balanced`] does.
pub fn with_replication_factor(
    partitions: &[PartitionView],
    brokers: &[RegisteredBroker],
    target_brokers: &[i32],
    rf: usize,
) -> BTreeMap<TopicPartition, Vec<i32>> {
    assign(partitions, brokers, target_brokers, |_| rf)
}

/// One partition being assigned.
struct Slot {
    partition: TopicPartition,
    replicas: Vec<i32>,
    /// Its replication factor cannot be met by the target brokers: left as it is.
    fixed: bool,
    /// Replicas one rack may hold.
    rack_cap: usize,
}

/// The target brokers and their racks.
struct Layout {
    brokers: Vec<i32>,
    /// Per target broker, the index of its rack.
    racks: BTreeMap<i32, usize>,
}

impl Layout {
    fn new(brokers: &[RegisteredBroker], target_brokers: &[i32]) -> Self {
        let ids: BTreeSet<i32> = target_brokers.iter().copied().collect();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut racks = BTreeMap::new();
        for &id in &ids {
            let rack = brokers
                .iter()
                .find(|b| b.id == id)
                .and_then(|b| b.rack.as_deref());
            // A broker without a rack is a rack of its own: it constrains nothing.
            let name = rack.map_or_else(|| format!("broker:{id}"), |r| format!("rack:{r}"));
            let next = names.len();
            racks.insert(id, *names.entry(name).or_insert(next));
        }
        Self {
            brokers: ids.into_iter().collect(),
            racks,
        }
    }

    fn rack_count(&self) -> usize {
        self.racks.values().collect::<BTreeSet<_>>().len()
    }

    fn is_target(&self, id: i32) -> bool {
        self.racks.contains_key(&id)
    }

    /// Replicas of `replicas` in `id`'s rack, not counting `except`. A broker outside the
    /// target shares no rack.
    fn in_rack(&self, replicas: &[i32], id: i32, except: Option<i32>) -> usize {
        let Some(rack) = self.racks.get(&id) else {
            return 0;
        };
        replicas
            .iter()
            .filter(|&&r| Some(r) != except && self.racks.get(&r) == Some(rack))
            .count()
    }
}

fn assign(
    partitions: &[PartitionView],
    brokers: &[RegisteredBroker],
    target_brokers: &[i32],
    rf_of: impl Fn(&PartitionView) -> usize,
) -> BTreeMap<TopicPartition, Vec<i32>> {
    let layout = Layout::new(brokers, target_brokers);
    let rack_count = layout.rack_count().max(1);
    let mut slots: Vec<Slot> = partitions
        .iter()
        .map(|view| {
            let current = distinct(&view.target_replicas());
            let rf = rf_of(view);
            let fixed = rf == 0 || rf > layout.brokers.len();
            let rack_cap = rf.div_ceil(rack_count).max(1);
            let replicas = if fixed {
                current
            } else {
                let mut kept = Vec::with_capacity(rf);
                for id in current {
                    if layout.is_target(id) && layout.in_rack(&kept, id, None) < rack_cap {
                        kept.push(id);
                    }
                }
                kept
            };
            Slot {
                partition: view.partition.clone(),
                replicas,
                fixed,
                rack_cap,
            }
        })
        .collect();
    slots.sort_by(|a, b| a.partition.cmp(&b.partition));
    let rfs: Vec<usize> = {
        let by_partition: BTreeMap<&TopicPartition, &PartitionView> =
            partitions.iter().map(|p| (&p.partition, p)).collect();
        slots
            .iter()
            .map(|s| by_partition.get(&s.partition).map_or(0, |v| rf_of(v)))
            .collect()
    };

    let mut counts = replica_counts(&layout, &slots);
    shrink(&mut slots, &rfs, &mut counts);
    fill(&layout, &mut slots, &rfs, &mut counts);
    balance_replicas(&layout, &mut slots, &mut counts);
    balance_leaders(&layout, &mut slots);

    slots
        .into_iter()
        .map(|slot| (slot.partition, slot.replicas))
        .collect()
}

fn distinct(replicas: &[i32]) -> Vec<i32> {
    let mut seen = BTreeSet::new();
    replicas
        .iter()
        .copied()
        .filter(|r| seen.insert(*r))
        .collect()
}

fn replica_counts(layout: &Layout, slots: &[Slot]) -> BTreeMap<i32, usize> {
    let mut counts: BTreeMap<i32, usize> = layout.brokers.iter().map(|&id| (id, 0)).collect();
    for slot in slots {
        for id in &slot.replicas {
            if let Some(count) = counts.get_mut(id) {
                *count += 1;
            }
        }
    }
    counts
}

/// Drops followers on the most-loaded brokers from partitions above their replication factor.
fn shrink(slots: &mut [Slot], rfs: &[usize], counts: &mut BTreeMap<i32, usize>) {
    for (slot, &rf) in slots.iter_mut().zip(rfs) {
        while !slot.fixed && slot.replicas.len() > rf {
            let victim = (1..slot.replicas.len())
                .max_by_key(|&i| {
                    let id = slot.replicas[i];
                    (counts.get(&id).copied().unwrap_or(0), id)
                })
                .unwrap_or(0);
            let id = slot.replicas.remove(victim);
            if let Some(count) = counts.get_mut(&id) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

/// Adds replicas on the least-loaded brokers the rack bound allows (any broker when the racks
/// are too unequal to allow one).
fn fill(layout: &Layout, slots: &mut [Slot], rfs: &[usize], counts: &mut BTreeMap<i32, usize>) {
    for (slot, &rf) in slots.iter_mut().zip(rfs) {
        while !slot.fixed && slot.replicas.len() < rf {
            let free = || {
                layout
                    .brokers
                    .iter()
                    .copied()
                    .filter(|id| !slot.replicas.contains(id))
            };
            let least = |ids: &mut dyn Iterator<Item = i32>| {
                ids.min_by_key(|id| (counts.get(id).copied().unwrap_or(0), *id))
            };
            let choice = least(
                &mut free().filter(|&id| layout.in_rack(&slot.replicas, id, None) < slot.rack_cap),
            )
            .or_else(|| least(&mut free()));
            let Some(id) = choice else { break };
            slot.replicas.push(id);
            *counts.entry(id).or_insert(0) += 1;
        }
    }
}

/// One step of a chain: in `slot`, the replica at `position` moves from broker `from` to `to`.
#[derive(Clone, Copy)]
struct Step {
    from: i32,
    to: i32,
    slot: usize,
    position: usize,
}

fn can_move(layout: &Layout, slot: &Slot, position: usize, to: i32) -> bool {
    let from = slot.replicas[position];
    !slot.fixed
        && !slot.replicas.contains(&to)
        && layout.in_rack(&slot.replicas, to, Some(from)) < slot.rack_cap
}

fn balance_replicas(layout: &Layout, slots: &mut [Slot], counts: &mut BTreeMap<i32, usize>) {
    // Every applied chain lowers the sum of squared counts; the bound only guards the loop
    // against a chain that could not be applied.
    let bound = slots.iter().map(|s| s.replicas.len()).sum::<usize>() * 2 + 1;
    for _ in 0..bound {
        let (Some(&max), Some(&min)) = (counts.values().max(), counts.values().min()) else {
            return;
        };
        if max <= min + 1 {
            return;
        }
        let Some(chain) = replica_chain(layout, slots, counts, max) else {
            return;
        };
        if !apply_replica_chain(layout, slots, counts, &chain) {
            return;
        }
    }
}

/// The shortest chain of replica moves from a broker holding `max` replicas to one holding at
/// most `max - 2`, moving followers before leaders.
fn replica_chain(
    layout: &Layout,
    slots: &[Slot],
    counts: &BTreeMap<i32, usize>,
    max: usize,
) -> Option<Vec<Step>> {
    let mut previous: BTreeMap<i32, Option<Step>> = BTreeMap::new();
    let mut queue = VecDeque::new();
    for (&id, &count) in counts {
        if count == max {
            previous.insert(id, None);
            queue.push_back(id);
        }
    }
    // A direct move, when one exists, is the shortest chain: look for it first, onto the
    // least-loaded brokers, a follower before a leader, in partition order.
    let mut goals: Vec<(usize, i32)> = counts
        .iter()
        .filter(|&(_, &count)| count + 2 <= max)
        .map(|(&id, &count)| (count, id))
        .collect();
    goals.sort_unstable();
    for &(_, to) in &goals {
        let mut leader_move = None;
        for (i, slot) in slots.iter().enumerate() {
            if slot.fixed || slot.replicas.contains(&to) {
                continue;
            }
            for (position, from) in slot.replicas.iter().enumerate() {
                if counts.get(from) != Some(&max) || !can_move(layout, slot, position, to) {
                    continue;
                }
                let step = Step {
                    from: *from,
                    to,
                    slot: i,
                    position,
                };
                if position > 0 {
                    return Some(vec![step]);
                }
                leader_move = leader_move.or(Some(step));
            }
        }
        if let Some(step) = leader_move {
            return Some(vec![step]);
        }
    }
    while let Some(from) = queue.pop_front() {
        let hosted = hosted(slots, from);
        for &to in &layout.brokers {
            if previous.contains_key(&to) {
                continue;
            }
            let Some(&(slot, position)) = hosted
                .iter()
                .find(|&&(slot, position)| can_move(layout, &slots[slot], position, to))
            else {
                continue;
            };
            previous.insert(
                to,
                Some(Step {
                    from,
                    to,
                    slot,
                    position,
                }),
            );
            if counts.get(&to).copied().unwrap_or(0) + 2 <= max {
                return Some(unwind(&previous, to));
            }
            queue.push_back(to);
        }
    }
    None
}

/// The slots holding a replica on `broker` and its position there, followers first: moving
/// them leaves the leaders where they are.
fn hosted(slots: &[Slot], broker: i32) -> Vec<(usize, usize)> {
    let mut hosted: Vec<(usize, usize)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.replicas.iter().position(|&r| r == broker).map(|p| (i, p)))
        .collect();
    hosted.sort_by_key(|&(i, position)| (position == 0, i));
    hosted
}

fn unwind(previous: &BTreeMap<i32, Option<Step>>, mut at: i32) -> Vec<Step> {
    let mut chain = Vec::new();
    while let Some(Some(step)) = previous.get(&at) {
        chain.push(*step);
        at = step.from;
    }
    chain
}

/// Applies a chain, goal end first; when a step no longer holds (two steps on one partition),
/// undoes the chain and reports false.
fn apply_replica_chain(
    layout: &Layout,
    slots: &mut [Slot],
    counts: &mut BTreeMap<i32, usize>,
    chain: &[Step],
) -> bool {
    let mut applied: Vec<Step> = Vec::new();
    for step in chain {
        let slot = &slots[step.slot];
        let holds = slot.replicas.get(step.position) == Some(&step.from)
            && can_move(layout, slot, step.position, step.to);
        if !holds {
            for undo in applied.iter().rev() {
                slots[undo.slot].replicas[undo.position] = undo.from;
            }
            return false;
        }
        slots[step.slot].replicas[step.position] = step.to;
        applied.push(*step);
    }
    // The chain runs goal first: its last step leaves the source, its first reaches the goal.
    if let (Some(source), Some(goal)) = (chain.last(), chain.first()) {
        if let Some(count) = counts.get_mut(&source.from) {
            *count -= 1;
        }
        *counts.entry(goal.to).or_insert(0) += 1;
    }
    true
}

/// A leadership hand-over from `from` to `to`.
#[derive(Clone, Copy)]
enum Handover {
    /// The replica of `to` at `position` in `slot` becomes its preferred leader: no data moves.
    Reorder { slot: usize, position: usize },
    /// `to` takes the leader replica of `slot` and gives its follower replica at `position` in
    /// `other` to `from`: replica counts stay, one leadership changes broker. The way out when
    /// `from` leads only partitions `to` has no replica of (replication factor 1, say).
    Swap {
        slot: usize,
        other: usize,
        position: usize,
    },
}

#[derive(Clone, Copy)]
struct LeaderStep {
    from: i32,
    to: i32,
    handover: Handover,
}

fn leader_counts(layout: &Layout, slots: &[Slot]) -> BTreeMap<i32, usize> {
    let mut counts: BTreeMap<i32, usize> = layout.brokers.iter().map(|&id| (id, 0)).collect();
    for slot in slots {
        if let Some(count) = slot.replicas.first().and_then(|id| counts.get_mut(id)) {
            *count += 1;
        }
    }
    counts
}

/// Balances preferred-leader counts per broker to differ by at most one where the placement
/// allows it, by reordering replicas first and exchanging replicas between two brokers only
/// where no reordering helps; replica counts per broker stay as they are.
fn balance_leaders(layout: &Layout, slots: &mut [Slot]) {
    let bound = slots.len() * 2 + 1;
    for _ in 0..bound {
        let counts = leader_counts(layout, slots);
        let (Some(&max), Some(&min)) = (counts.values().max(), counts.values().min()) else {
            return;
        };
        if max <= min + 1 {
            return;
        }
        let chain = leader_chain(layout, slots, &counts, max, false)
            .or_else(|| leader_chain(layout, slots, &counts, max, true));
        let Some(chain) = chain else {
            return;
        };
        if !apply_leader_chain(layout, slots, &chain) {
            return;
        }
    }
}

/// The shortest chain of leadership hand-overs from a broker leading `max` partitions to one
/// leading at most `max - 2`.
fn leader_chain(
    layout: &Layout,
    slots: &[Slot],
    counts: &BTreeMap<i32, usize>,
    max: usize,
    swaps: bool,
) -> Option<Vec<LeaderStep>> {
    let mut previous: BTreeMap<i32, Option<LeaderStep>> = BTreeMap::new();
    let mut queue = VecDeque::new();
    for (&id, &count) in counts {
        if count == max {
            previous.insert(id, None);
            queue.push_back(id);
        }
    }
    // A direct reordering, when one exists, is the shortest chain: look for it first.
    for (i, slot) in slots.iter().enumerate() {
        let Some(&from) = slot.replicas.first() else {
            continue;
        };
        if slot.fixed || counts.get(&from) != Some(&max) {
            continue;
        }
        for (position, &to) in slot.replicas.iter().enumerate().skip(1) {
            if counts.get(&to).is_some_and(|&count| count + 2 <= max) {
                let handover = Handover::Reorder { slot: i, position };
                return Some(vec![LeaderStep { from, to, handover }]);
            }
        }
    }
    while let Some(from) = queue.pop_front() {
        let led: Vec<usize> = (0..slots.len())
            .filter(|&i| !slots[i].fixed && slots[i].replicas.first() == Some(&from))
            .collect();
        for &to in &layout.brokers {
            if previous.contains_key(&to) {
                continue;
            }
            let Some(handover) = handover(layout, slots, &led, from, to, swaps) else {
                continue;
            };
            previous.insert(to, Some(LeaderStep { from, to, handover }));
            if counts.get(&to).copied().unwrap_or(0) + 2 <= max {
                let mut chain = Vec::new();
                let mut at = to;
                while let Some(Some(step)) = previous.get(&at) {
                    chain.push(*step);
                    at = step.from;
                }
                return Some(chain);
            }
            queue.push_back(to);
        }
    }
    None
}

/// A hand-over from `from` (leading the slots `led`) to `to`.
fn handover(
    layout: &Layout,
    slots: &[Slot],
    led: &[usize],
    from: i32,
    to: i32,
    swaps: bool,
) -> Option<Handover> {
    for &slot in led {
        if let Some(position) = slots[slot].replicas.iter().position(|&r| r == to) {
            return Some(Handover::Reorder { slot, position });
        }
    }
    if !swaps {
        return None;
    }
    for &slot in led {
        if !can_move(layout, &slots[slot], 0, to) {
            continue;
        }
        for (other, candidate) in slots.iter().enumerate() {
            let Some(position) = candidate.replicas.iter().position(|&r| r == to) else {
                continue;
            };
            if other != slot && position > 0 && can_move(layout, candidate, position, from) {
                return Some(Handover::Swap {
                    slot,
                    other,
                    position,
                });
            }
        }
    }
    None
}

/// Applies a chain of hand-overs; when one no longer holds (two on one partition), undoes the
/// chain and reports false.
fn apply_leader_chain(layout: &Layout, slots: &mut [Slot], chain: &[LeaderStep]) -> bool {
    let mut saved: Vec<(usize, Vec<i32>)> = Vec::new();
    for step in chain {
        let holds = match step.handover {
            Handover::Reorder { slot, position } => {
                let replicas = &slots[slot].replicas;
                replicas.first() == Some(&step.from) && replicas.get(position) == Some(&step.to)
            }
            Handover::Swap {
                slot,
                other,
                position,
            } => {
                slots[slot].replicas.first() == Some(&step.from)
                    && slots[other].replicas.get(position) == Some(&step.to)
                    && can_move(layout, &slots[slot], 0, step.to)
                    && can_move(layout, &slots[other], position, step.from)
            }
        };
        if !holds {
            for (slot, replicas) in saved.into_iter().rev() {
                slots[slot].replicas = replicas;
            }
            return false;
        }
        match step.handover {
            Handover::Reorder { slot, position } => {
                saved.push((slot, slots[slot].replicas.clone()));
                slots[slot].replicas.swap(0, position);
            }
            Handover::Swap {
                slot,
                other,
                position,
            } => {
                saved.push((slot, slots[slot].replicas.clone()));
                saved.push((other, slots[other].replicas.clone()));
                slots[slot].replicas[0] = step.to;
                slots[other].replicas[position] = step.from;
            }
        }
    }
    true
}

#[cfg(test)]
#[path = "assignment_tests.rs"]
mod tests;
