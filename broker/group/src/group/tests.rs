use std::collections::HashMap;

use bytes::Bytes;

use super::*;
use crate::config::Timeouts;

const SESSION: i64 = 10_000;
const REBALANCE: i64 = 30_000;

fn timeouts(initial_delay_ms: i64) -> Timeouts {
    Timeouts {
        min_session_timeout_ms: 6_000,
        max_session_timeout_ms: 1_800_000,
        initial_rebalance_delay_ms: initial_delay_ms,
        new_member_join_timeout_ms: 300_000,
    }
}

const T: Timeouts = Timeouts {
    min_session_timeout_ms: 6_000,
    max_session_timeout_ms: 1_800_000,
    initial_rebalance_delay_ms: 0,
    new_member_join_timeout_ms: 300_000,
};

fn protocols(names: &[&str]) -> Vec<(String, Bytes)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), Bytes::from(format!("meta-{n}"))))
        .collect()
}

fn req(member_id: &str, fresh: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout_ms: SESSION as i32,
        rebalance_timeout_ms: REBALANCE as i32,
        protocol_type: "consumer".to_owned(),
        protocols: protocols(&["range"]),
        require_known_member_id: false,
        fresh_member_id: fresh.to_owned(),
    }
}

fn static_req(member_id: &str, fresh: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_owned()),
        ..req(member_id, fresh)
    }
}

fn joins(effects: &[Effect]) -> HashMap<String, JoinResult> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Join { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

fn syncs(effects: &[Effect]) -> HashMap<String, SyncResult> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Sync { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

/// Leader syncs with `assignment(member) = "a-<member>"`, the store succeeds, everyone synced.
fn sync_all(g: &mut Group, now: i64) -> HashMap<String, SyncResult> {
    let generation = g.generation_id();
    let leader = g.leader_id().expect("a leader").to_owned();
    let ids: Vec<String> = g.members.keys().cloned().collect();
    for id in ids.iter().filter(|id| **id != leader) {
        assert_eq!(
            g.sync(id, None, generation, None, None, Vec::new(), now),
            SyncOutcome::Await
        );
    }
    let assignment: Vec<(String, Bytes)> = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(format!("a-{id}"))))
        .collect();
    let outcome = g.sync(&leader, None, generation, None, None, assignment, now);
    let SyncOutcome::StoreAssignment {
        generation: stored,
        assignments,
    } = outcome
    else {
        panic!("leader sync must persist the assignment, got {outcome:?}");
    };
    assert_eq!(stored, generation);
    syncs(&g.assignment_stored(generation, assignments, Ok(()), now, &T))
}

/// A Stable group whose members are `ids` (dynamic): generation 1 for one member, 2 for more
/// (the first member joins alone, the others join the second rebalance together).
fn stable_group(ids: &[&str]) -> Group {
    let mut g = Group::new("g", 0);
    let (outcome, _) = g.join(req("", ids[0]), 0, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: ids[0].to_owned()
        }
    );
    if ids.len() > 1 {
        sync_all(&mut g, 0);
        for id in &ids[1..] {
            let (_, _) = g.join(req("", id), 0, &T);
        }
        let (_, fx) = g.join(req(ids[0], "unused"), 0, &T);
        assert_eq!(joins(&fx).len(), ids.len());
    }
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    sync_all(&mut g, 0);
    assert_eq!(g.state(), GroupState::Stable);
    g
}

#[test]
fn first_member_joins_leads_and_gets_its_assignment() {
    let mut g = Group::new("g", 0);
    let (outcome, fx) = g.join(req("", "m1"), 0, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: "m1".to_owned()
        }
    );
    let answered = joins(&fx);
    let r = &answered["m1"];
    assert_eq!(
        (r.error, r.generation_id, r.leader_id.as_str()),
        (NONE, 1, "m1")
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(
        r.members.len(),
        1,
        "the leader gets every member's metadata"
    );
    assert_eq!(r.members[0].metadata, Bytes::from("meta-range"));
    assert_eq!(g.state(), GroupState::CompletingRebalance);

    let synced = sync_all(&mut g, 10);
    assert_eq!(synced["m1"].assignment, Bytes::from("a-m1"));
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn second_member_triggers_rebalance_and_only_leader_gets_members() {
    let mut g = stable_group(&["m1"]);
    let (outcome, fx) = g.join(req("", "m2"), 100, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: "m2".to_owned()
        }
    );
    assert!(fx.is_empty(), "m1 has not rejoined yet");
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat("m1", None, 1, 200), REBALANCE_IN_PROGRESS);

    let (outcome, fx) = g.join(req("m1", "unused"), 300, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: "m1".to_owned()
        }
    );
    let answered = joins(&fx);
    assert_eq!(answered.len(), 2);
    assert_eq!(answered["m1"].generation_id, 2);
    assert_eq!(answered["m2"].generation_id, 2);
    assert_eq!(answered["m1"].leader_id, "m1");
    assert_eq!(answered["m1"].members.len(), 2);
    assert!(answered["m2"].members.is_empty());

    let synced = sync_all(&mut g, 400);
    assert_eq!(synced["m1"].assignment, Bytes::from("a-m1"));
    assert_eq!(synced["m2"].assignment, Bytes::from("a-m2"));
    assert_eq!(g.heartbeat("m2", None, 2, 500), NONE);
}

#[test]
fn member_id_required_then_join_with_given_id() {
    let mut g = Group::new("g", 0);
    let first = JoinRequest {
        require_known_member_id: true,
        ..req("", "m1")
    };
    let (outcome, fx) = g.join(first, 0, &T);
    let JoinOutcome::Reply(r) = outcome else {
        panic!("expected an immediate answer")
    };
    assert_eq!((r.error, r.member_id.as_str()), (MEMBER_ID_REQUIRED, "m1"));
    assert!(fx.is_empty());
    assert!(!g.has_member("m1"), "a pending member is not a member yet");

    let second = JoinRequest {
        require_known_member_id: true,
        ..req("m1", "other")
    };
    let (outcome, fx) = g.join(second, 10, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: "m1".to_owned()
        }
    );
    assert_eq!(joins(&fx)["m1"].generation_id, 1);
}

#[test]
fn pending_member_blocks_rebalance_until_it_joins_or_expires() {
    let mut g = stable_group(&["m1"]);
    let pending = JoinRequest {
        require_known_member_id: true,
        ..req("", "p")
    };
    let (_, _) = g.join(pending, 0, &T);
    // m1 changes its subscription: rebalance, but "p" was promised a place.
    let changed = JoinRequest {
        protocols: protocols(&["range", "roundrobin"]),
        ..req("m1", "x")
    };
    let (_, fx) = g.join(changed, 0, &T);
    assert!(joins(&fx).is_empty(), "waits for the pending member");
    let fx = g.on_deadline(SESSION, &T);
    assert_eq!(
        joins(&fx)["m1"].generation_id,
        2,
        "pending member expired after its session"
    );
}

#[test]
fn session_expiry_removes_member_and_triggers_rebalance() {
    let mut g = stable_group(&["m1", "m2"]);
    assert_eq!(g.generation_id(), 2);
    // m1 keeps heartbeating, m2 goes silent.
    assert_eq!(g.heartbeat("m1", None, 2, SESSION - 1), NONE);
    assert_eq!(g.next_deadline(), Some(SESSION));
    let fx = g.on_deadline(SESSION, &T);
    assert!(fx.is_empty());
    assert!(!g.has_member("m2"));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat("m1", None, 2, SESSION + 1),
        REBALANCE_IN_PROGRESS
    );
    let (_, fx) = g.join(req("m1", "x"), SESSION + 2, &T);
    let answered = joins(&fx);
    assert_eq!(answered["m1"].generation_id, 3);
    assert_eq!(answered["m1"].members.len(), 1);
}

#[test]
fn member_waiting_in_join_is_not_expired_by_its_session() {
    let mut g = stable_group(&["m1", "m2"]);
    let changed = JoinRequest {
        protocols: protocols(&["range", "roundrobin"]),
        ..req("m1", "x")
    };
    let (_, _) = g.join(changed, 0, &T);
    // m1 waits longer than its session timeout for m2: it stays, m2 (silent) goes, and with
    // m2 gone everyone left has joined.
    let fx = g.on_deadline(SESSION, &T);
    assert!(g.has_member("m1"));
    assert!(!g.has_member("m2"));
    assert_eq!(joins(&fx)["m1"].generation_id, 3);
}

#[test]
fn members_that_do_not_rejoin_before_rebalance_timeout_are_removed() {
    let mut g = stable_group(&["m1", "m2"]);
    let changed = JoinRequest {
        protocols: protocols(&["range", "roundrobin"]),
        ..req("m2", "x")
    };
    let (_, _) = g.join(changed, 0, &T);
    // m1 keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    for now in (5_000..REBALANCE).step_by(5_000) {
        assert_eq!(g.heartbeat("m1", None, 2, now), REBALANCE_IN_PROGRESS);
        assert!(g.on_deadline(now, &T).is_empty());
    }
    let fx = g.on_deadline(REBALANCE, &T);
    let answered = joins(&fx);
    assert!(!g.has_member("m1"));
    assert_eq!(
        answered["m2"].leader_id, "m2",
        "leadership moves to a member that rejoined"
    );
    assert_eq!(answered["m2"].generation_id, 3);
}

#[test]
fn member_that_never_syncs_is_removed_after_rebalance_timeout() {
    let mut g = stable_group(&["m1"]);
    // m2's session outlasts the rebalance timeout: only the sync timeout can remove it.
    let (_, _) = g.join(
        JoinRequest {
            session_timeout_ms: 60_000,
            ..req("", "m2")
        },
        0,
        &T,
    );
    let (_, _) = g.join(req("m1", "x"), 0, &T);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let generation = g.generation_id();
    // Only the leader syncs; m2 vanished after its join response.
    let outcome = g.sync(
        "m1",
        None,
        generation,
        None,
        None,
        vec![("m1".into(), Bytes::from("a"))],
        1,
    );
    let SyncOutcome::StoreAssignment { assignments, .. } = outcome else {
        panic!("leader sync")
    };
    let fx = g.assignment_stored(generation, assignments, Ok(()), 1, &T);
    assert_eq!(syncs(&fx)["m1"].assignment, Bytes::from("a"));
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.heartbeat("m1", None, generation, REBALANCE - 1), NONE);
    g.on_deadline(REBALANCE, &T);
    assert!(!g.has_member("m2"));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_rejoin_keeps_assignment_and_fences_old_member_id() {
    let mut g = Group::new("g", 0);
    let (_, _) = g.join(static_req("", "old", "i1"), 0, &T);
    sync_all(&mut g, 0);
    assert_eq!(g.state(), GroupState::Stable);
    let generation = g.generation_id();

    // The consumer restarts: same instance id, no member id.
    let (outcome, fx) = g.join(static_req("", "new", "i1"), 100, &T);
    assert!(fx.is_empty());
    let JoinOutcome::StoreThenReply(r) = outcome else {
        panic!("no rebalance expected: {outcome:?}")
    };
    assert_eq!(
        (r.error, r.generation_id, r.member_id.as_str()),
        (NONE, generation, "new")
    );
    assert_eq!(
        r.leader_id, "old",
        "the old leader id is returned so no assignment is run"
    );
    assert_eq!(g.state(), GroupState::Stable);

    let stored = g.metadata_value(None);
    assert_eq!(stored.members.len(), 1);
    assert_eq!(stored.members[0].member_id, "new");
    assert_eq!(
        stored.members[0].assignment,
        Bytes::from("a-old"),
        "assignment kept"
    );

    let cases = [
        ("old", Some("i1"), FENCED_INSTANCE_ID),
        ("old", None, UNKNOWN_MEMBER_ID),
        ("new", Some("i1"), NONE),
    ];
    for (member, instance, expected) in cases {
        assert_eq!(
            g.heartbeat(member, instance, generation, 200),
            expected,
            "{member} {instance:?}"
        );
    }
    assert_eq!(
        g.sync("new", Some("i1"), generation, None, None, Vec::new(), 300),
        SyncOutcome::Reply(g.sync_result(Bytes::from("a-old")))
    );
    let (outcome, _) = g.join(static_req("old", "x", "i1"), 400, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Reply(JoinResult::error("old", FENCED_INSTANCE_ID))
    );
}

#[test]
fn static_member_replaced_while_waiting_fences_the_parked_join() {
    let mut g = Group::new("g", 0);
    let (_, _) = g.join(static_req("", "a", "i1"), 0, &T);
    sync_all(&mut g, 0);
    let (_, _) = g.join(req("", "b"), 0, &T);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // "a" rejoins and parks; then a new process with the same instance id shows up.
    let (_, fx) = g.join(static_req("a", "x", "i1"), 1, &T);
    assert!(!fx.is_empty(), "everyone joined: the rebalance completes");
    let (_, _) = g.join(req("", "c"), 2, &T);
    let (outcome, fx) = g.join(static_req("a", "x", "i1"), 3, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: "a".to_owned()
        }
    );
    assert!(fx.is_empty());
    let (outcome, fx) = g.join(static_req("", "a2", "i1"), 4, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Await {
            member_id: "a2".to_owned()
        }
    );
    assert_eq!(joins(&fx)["a"].error, FENCED_INSTANCE_ID);
}

#[test]
fn fencing_and_generation_errors() {
    let mut g = stable_group(&["m1", "m2"]);
    let generation = g.generation_id();
    struct Case {
        member: &'static str,
        generation: i32,
        heartbeat: i16,
        sync: i16,
    }
    let cases = [
        Case {
            member: "m1",
            generation,
            heartbeat: NONE,
            sync: NONE,
        },
        Case {
            member: "m1",
            generation: generation + 1,
            heartbeat: ILLEGAL_GENERATION,
            sync: ILLEGAL_GENERATION,
        },
        Case {
            member: "m1",
            generation: generation - 1,
            heartbeat: ILLEGAL_GENERATION,
            sync: ILLEGAL_GENERATION,
        },
        Case {
            member: "ghost",
            generation,
            heartbeat: UNKNOWN_MEMBER_ID,
            sync: UNKNOWN_MEMBER_ID,
        },
        Case {
            member: "",
            generation: -1,
            heartbeat: UNKNOWN_MEMBER_ID,
            sync: UNKNOWN_MEMBER_ID,
        },
    ];
    for case in cases {
        assert_eq!(
            g.heartbeat(case.member, None, case.generation, 1),
            case.heartbeat,
            "{}",
            case.member
        );
        let sync = match g.sync(
            case.member,
            None,
            case.generation,
            None,
            None,
            Vec::new(),
            1,
        ) {
            SyncOutcome::Reply(r) => r.error,
            other => panic!("stable group answers sync at once, got {other:?}"),
        };
        assert_eq!(sync, case.sync, "{} gen {}", case.member, case.generation);
    }
    let (outcome, _) = g.join(req("ghost", "x"), 1, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Reply(JoinResult::error("ghost", UNKNOWN_MEMBER_ID))
    );
}

#[test]
fn sync_with_other_protocol_is_inconsistent() {
    let mut g = stable_group(&["m1"]);
    let generation = g.generation_id();
    let outcome = g.sync(
        "m1",
        None,
        generation,
        Some("consumer"),
        Some("roundrobin"),
        Vec::new(),
        1,
    );
    assert_eq!(
        outcome,
        SyncOutcome::Reply(SyncResult::error(INCONSISTENT_GROUP_PROTOCOL))
    );
    let outcome = g.sync("m1", None, generation, Some("connect"), None, Vec::new(), 1);
    assert_eq!(
        outcome,
        SyncOutcome::Reply(SyncResult::error(INCONSISTENT_GROUP_PROTOCOL))
    );
}

#[test]
fn join_with_incompatible_protocols_is_rejected() {
    let cases = [
        JoinRequest {
            protocol_type: "connect".into(),
            ..req("", "x")
        },
        JoinRequest {
            protocols: protocols(&["roundrobin"]),
            ..req("", "x")
        },
    ];
    for case in cases {
        let mut g = stable_group(&["m1"]);
        let (outcome, fx) = g.join(case, 1, &T);
        assert_eq!(
            outcome,
            JoinOutcome::Reply(JoinResult::error("", INCONSISTENT_GROUP_PROTOCOL))
        );
        assert!(fx.is_empty());
        assert_eq!(g.state(), GroupState::Stable);
    }
    let mut empty = Group::new("g", 0);
    let (outcome, _) = empty.join(
        JoinRequest {
            protocols: Vec::new(),
            ..req("", "x")
        },
        0,
        &T,
    );
    assert_eq!(
        outcome,
        JoinOutcome::Reply(JoinResult::error("", INCONSISTENT_GROUP_PROTOCOL))
    );
}

#[test]
fn protocol_most_members_prefer_among_common_ones_wins() {
    let mut g = Group::new("g", 0);
    let t = timeouts(1_000);
    let members = [
        ("a", &["range", "roundrobin", "sticky"][..]),
        ("b", &["roundrobin", "range"][..]),
        ("c", &["roundrobin", "range"][..]),
    ];
    for (id, names) in members {
        let (_, fx) = g.join(
            JoinRequest {
                protocols: protocols(names),
                ..req("", id)
            },
            0,
            &t,
        );
        assert!(fx.is_empty(), "the initial delay holds the join");
    }
    let fx = g.on_deadline(1_000, &t);
    assert!(
        fx.is_empty(),
        "members arrived during the delay: it is extended"
    );
    let fx = g.on_deadline(2_000, &t);
    let answered = joins(&fx);
    assert_eq!(answered.len(), 3);
    assert!(
        answered
            .values()
            .all(|r| r.protocol_name.as_deref() == Some("roundrobin"))
    );
    assert_eq!(
        answered["a"].members[0].metadata,
        Bytes::from("meta-roundrobin")
    );
}

#[test]
fn initial_rebalance_delay_is_bounded_by_rebalance_timeout() {
    let t = timeouts(3_000);
    let mut g = Group::new("g", 0);
    let (_, fx) = g.join(req("", "m1"), 0, &t);
    assert!(fx.is_empty());
    let mut now = 0;
    let mut answered = None;
    // A new member arrives during every delay; the wait still ends by the rebalance timeout.
    for i in 0..20 {
        now = g.next_deadline().expect("join deadline");
        let (_, _) = g.join(req("", &format!("late{i}")), now - 1, &t);
        let fx = g.on_deadline(now, &t);
        if !fx.is_empty() {
            answered = Some(joins(&fx));
            break;
        }
    }
    let answered = answered.expect("the join completes");
    assert!(now <= REBALANCE + 3_000, "completed at {now}");
    assert!(answered.values().all(|r| r.generation_id == 1));
}

#[test]
fn leave_triggers_rebalance_and_admin_leave_by_instance_id() {
    let mut g = Group::new("g", 0);
    let (_, _) = g.join(static_req("", "s1", "i1"), 0, &T);
    sync_all(&mut g, 0);
    let (_, _) = g.join(req("", "d1"), 0, &T);
    let (_, fx) = g.join(static_req("s1", "x", "i1"), 0, &T);
    assert_eq!(joins(&fx).len(), 2);
    sync_all(&mut g, 0);

    let mut fx = Vec::new();
    let cases = [
        ("ghost", None, UNKNOWN_MEMBER_ID),
        ("", Some("nope"), UNKNOWN_MEMBER_ID),
        ("d1", Some("i1"), FENCED_INSTANCE_ID),
    ];
    for (member, instance, expected) in cases {
        assert_eq!(g.leave(member, instance, 1, &T, &mut fx), expected);
    }
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.leave("", Some("i1"), 1, &T, &mut fx), NONE);
    assert!(!g.has_member("s1"));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.leader_id(), Some("d1"));
    assert_eq!(g.leave("d1", None, 2, &T, &mut fx), NONE);
    assert_eq!(
        g.state(),
        GroupState::Empty,
        "the last member left: the group is empty"
    );
    assert!(fx.contains(&Effect::StoreGroup));
}

#[test]
fn failed_assignment_store_fails_the_syncs_and_rebalances() {
    let mut g = stable_group(&["m1"]);
    let (_, _) = g.join(req("", "m2"), 0, &T);
    let (_, _) = g.join(req("m1", "x"), 0, &T);
    let generation = g.generation_id();
    assert_eq!(
        g.sync("m2", None, generation, None, None, Vec::new(), 1),
        SyncOutcome::Await
    );
    let SyncOutcome::StoreAssignment { assignments, .. } =
        g.sync("m1", None, generation, None, None, Vec::new(), 1)
    else {
        panic!("leader sync")
    };
    assert_eq!(
        assignments.len(),
        2,
        "members missing from the assignment get an empty one"
    );
    let fx = g.assignment_stored(
        generation,
        assignments,
        Err(COORDINATOR_NOT_AVAILABLE),
        2,
        &T,
    );
    let failed = syncs(&fx);
    assert_eq!(failed["m1"].error, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(failed["m2"].error, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn rebalance_while_completing_answers_parked_syncs() {
    let mut g = stable_group(&["m1"]);
    let (_, _) = g.join(req("", "m2"), 0, &T);
    let (_, _) = g.join(req("m1", "x"), 0, &T);
    let generation = g.generation_id();
    assert_eq!(
        g.sync("m2", None, generation, None, None, Vec::new(), 1),
        SyncOutcome::Await
    );
    let (_, fx) = g.join(req("", "m3"), 2, &T);
    assert_eq!(syncs(&fx)["m2"].error, REBALANCE_IN_PROGRESS);
}

#[test]
fn offset_commit_validation() {
    let mut empty = Group::new("g", 0);
    assert_eq!(
        empty.validate_offset_commit("", None, -1, 0),
        Ok(()),
        "standalone commit"
    );
    assert_eq!(
        empty.validate_offset_commit("m1", None, 1, 0),
        Err(UNKNOWN_MEMBER_ID)
    );

    let mut g = stable_group(&["m1"]);
    let generation = g.generation_id();
    let cases = [
        ("m1", None, generation, Ok(())),
        ("", None, -1, Err(UNKNOWN_MEMBER_ID)),
        ("m1", None, generation + 1, Err(ILLEGAL_GENERATION)),
        ("ghost", None, generation, Err(UNKNOWN_MEMBER_ID)),
    ];
    for (member, instance, generation, expected) in cases {
        assert_eq!(
            g.validate_offset_commit(member, instance, generation, 1),
            expected,
            "{member}"
        );
    }
    let (_, _) = g.join(req("", "m2"), 0, &T);
    assert_eq!(
        g.validate_offset_commit("m1", None, generation, 1),
        Ok(()),
        "allowed while preparing"
    );
    let (_, _) = g.join(req("m1", "x"), 0, &T);
    assert_eq!(
        g.validate_offset_commit("m1", None, generation + 1, 1),
        Err(REBALANCE_IN_PROGRESS)
    );
}

#[test]
fn delete_only_empty_groups() {
    let mut g = stable_group(&["m1"]);
    assert_eq!(g.delete(1), Err(NON_EMPTY_GROUP));
    let mut fx = Vec::new();
    g.leave("m1", None, 2, &T, &mut fx);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.delete(3), Ok(()));
    assert_eq!(g.state(), GroupState::Dead);
    assert_eq!(g.delete(4), Err(GROUP_ID_NOT_FOUND));
    let (outcome, _) = g.join(req("", "x"), 5, &T);
    assert_eq!(
        outcome,
        JoinOutcome::Reply(JoinResult::error("", COORDINATOR_NOT_AVAILABLE))
    );
}

fn entry(offset: i64, commit_timestamp: i64) -> crate::offsets::OffsetEntry {
    crate::offsets::OffsetEntry {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp,
        record_offset: -1,
    }
}

#[test]
fn offsets_expire_only_when_retention_passed() {
    const RETENTION: i64 = 1_000_000;
    // Standalone group: counted from each commit.
    let mut simple = Group::new("s", 0);
    simple.offsets.put("t".into(), 0, entry(5, 100));
    simple.offsets.put("t".into(), 1, entry(6, 500_000));
    assert!(simple.expired_offsets(RETENTION + 99, RETENTION).is_empty());
    assert_eq!(
        simple.expired_offsets(RETENTION + 100, RETENTION),
        vec![("t".to_owned(), 0)]
    );

    // A consumer group that became empty: counted from when it became empty.
    let mut g = stable_group(&["m1"]);
    g.offsets.put("t".into(), 0, entry(5, 0));
    assert!(
        g.expired_offsets(10 * RETENTION, RETENTION).is_empty(),
        "stable group subscribed to t"
    );
    let mut fx = Vec::new();
    g.leave("m1", None, 2_000, &T, &mut fx);
    assert_eq!(g.state(), GroupState::Empty);
    assert!(
        g.expired_offsets(2_000 + RETENTION - 1, RETENTION)
            .is_empty()
    );
    assert_eq!(g.expired_offsets(2_000 + RETENTION, RETENTION).len(), 1);
    assert!(g.unused_without(1));
    assert!(!g.unused_without(0));
}

#[test]
fn stable_consumer_group_expires_offsets_of_unsubscribed_topics() {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_static_str("orders")]);
    let mut metadata = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut metadata, 1);
    subscription
        .encode(&mut metadata, 1)
        .expect("encodable subscription");
    let mut g = Group::new("g", 0);
    let join = JoinRequest {
        protocols: vec![("range".into(), metadata.freeze())],
        ..req("", "m1")
    };
    let (_, _) = g.join(join, 0, &T);
    sync_all(&mut g, 0);
    assert!(g.is_subscribed_to("orders"));
    assert!(!g.is_subscribed_to("payments"));
    g.offsets.put("orders".into(), 0, entry(1, 0));
    g.offsets.put("payments".into(), 0, entry(1, 0));
    assert_eq!(
        g.expired_offsets(100, 100),
        vec![("payments".to_owned(), 0)]
    );
}

#[test]
fn loaded_group_is_stable_with_its_members() {
    let mut g = stable_group(&["m1", "m2"]);
    g.offsets.put("t".into(), 0, entry(1, 0));
    let value = g.metadata_value(None);
    let loaded = Group::from_metadata("g", &value, 5_000);
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation_id(), 2);
    assert_eq!(loaded.member_count(), 2);
    assert_eq!(loaded.metadata_value(None).members, value.members);
    let mut loaded = loaded;
    assert_eq!(loaded.heartbeat("m2", None, 2, 5_001), NONE);
    assert_eq!(loaded.next_deadline(), Some(5_000 + SESSION));

    let mut fx = Vec::new();
    g.leave("m1", None, 1, &T, &mut fx);
    g.leave("m2", None, 1, &T, &mut fx);
    let empty = Group::from_metadata("g", &g.metadata_value(None), 2);
    assert_eq!(empty.state(), GroupState::Empty);
    assert_eq!(empty.generation_id(), 3);
}
