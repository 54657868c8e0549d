//! The coordinator over an in-memory `__transaction_state` and a fake marker writer: the
//! commit and abort round trips, fencing, timeouts, recovery after a crash, and the error
//! answers clients rely on. Time is tokio's paused clock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, EndTxnRequest, GroupId, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use strom_group::records::{build_batch, parse_batches};
use strom_group::{MemoryOffsetsLog, OffsetsLog, TopicLookup, coordinator_partition};
use strom_txn::records::{TxnLogKey, TxnLogValue, decode_record};
use strom_txn::{
    MarkerError, MarkerRequest, MarkerResult, MarkerWriter, ProducerIdSource,
    TransactionCoordinator, TxnConfig, TxnOptions, TxnState,
};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;
const EPOCH: i32 = 7;
const TIMEOUT_MS: i32 = 60_000;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_COORDINATOR: i16 = 16;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// Records every marker request; answers from a script, then `Ok`.
#[derive(Default)]
struct FakeMarkers {
    requests: Mutex<Vec<MarkerRequest>>,
    /// Calls still to answer `Retriable` for every partition.
    retriable_calls: Mutex<u32>,
    /// Partitions that no longer exist.
    unknown: Mutex<HashSet<(String, i32)>>,
    /// Answer every call `Retriable` (a cluster where no leader takes markers).
    always_fail: Mutex<bool>,
}

impl FakeMarkers {
    fn requests(&self) -> Vec<MarkerRequest> {
        self.requests.lock().clone()
    }
}

impl MarkerWriter for FakeMarkers {
    async fn write_markers(&self, request: MarkerRequest) -> Vec<MarkerResult> {
        self.requests.lock().push(request.clone());
        let fail = {
            let mut calls = self.retriable_calls.lock();
            let fail = *calls > 0 || *self.always_fail.lock();
            *calls = calls.saturating_sub(1);
            fail
        };
        let unknown = self.unknown.lock().clone();
        request
            .partitions
            .into_iter()
            .map(|tp| {
                let result = if unknown.contains(&tp) {
                    Err(MarkerError::UnknownPartition)
                } else if fail {
                    Err(MarkerError::Retriable("no leader".to_owned()))
                } else {
                    Ok(())
                };
                (tp, result)
            })
            .collect()
    }
}

struct Ids(AtomicI64);

impl ProducerIdSource for Ids {
    async fn next_id(&self) -> Result<i64, String> {
        Ok(self.0.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Debug)]
struct Topics(HashMap<String, i32>);

impl TopicLookup for Topics {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.0
            .get(topic)
            .is_some_and(|count| (0..*count).contains(&partition))
    }
}

type Coordinator = TransactionCoordinator<MemoryOffsetsLog, FakeMarkers>;

fn config() -> TxnConfig {
    TxnConfig {
        transaction_state_partitions: PARTITIONS,
        offsets_topic_partitions: 10,
        ..TxnConfig::default()
    }
}

struct Setup {
    log: Arc<MemoryOffsetsLog>,
    markers: Arc<FakeMarkers>,
    coordinator: Coordinator,
}

async fn start_with(log: Arc<MemoryOffsetsLog>, config: TxnConfig, epoch: i32) -> Setup {
    let markers = Arc::new(FakeMarkers::default());
    let topics = Topics(HashMap::from([("t".to_owned(), 3), ("u".to_owned(), 1)]));
    let coordinator = TransactionCoordinator::with_options(
        config,
        Arc::clone(&log),
        Arc::clone(&markers),
        Arc::new(Ids(AtomicI64::new(1000))),
        TxnOptions {
            topic_lookup: Some(Arc::new(topics)),
            ..TxnOptions::default()
        },
    );
    for p in 0..PARTITIONS {
        coordinator
            .load_partition(p, epoch)
            .await
            .expect("partition loads");
    }
    Setup {
        log,
        markers,
        coordinator,
    }
}

async fn start() -> Setup {
    start_with(Arc::new(MemoryOffsetsLog::new()), config(), EPOCH).await
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn tid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

async fn init(c: &Coordinator, id: &str) -> InitProducerIdResponse {
    c.init_producer_id(
        InitProducerIdRequest::default()
            .with_transactional_id(Some(tid(id)))
            .with_transaction_timeout_ms(TIMEOUT_MS),
        4,
    )
    .await
}

async fn init_ok(c: &Coordinator, id: &str) -> (i64, i16) {
    let response = init(c, id).await;
    assert_eq!(response.error_code, NONE, "InitProducerId of {id}");
    (response.producer_id.0, response.producer_epoch)
}

fn topics(list: &[(&str, &[i32])]) -> Vec<AddPartitionsToTxnTopic> {
    list.iter()
        .map(|(t, ps)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(ps.to_vec())
        })
        .collect()
}

async fn add(
    c: &Coordinator,
    id: &str,
    (pid, epoch): (i64, i16),
    list: &[(&str, &[i32])],
) -> AddPartitionsToTxnResponse {
    c.add_partitions_to_txn(
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(tid(id))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(topics(list)),
        3,
    )
    .await
}

/// Error codes of a v0–v3 AddPartitionsToTxn response, by (topic, partition).
fn add_codes(response: &AddPartitionsToTxnResponse) -> Vec<(String, i32, i16)> {
    response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition.iter().map(|p| {
                (
                    t.name.0.as_str().to_owned(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect()
}

async fn end(
    c: &Coordinator,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
    version: i16,
) -> i16 {
    c.end_txn(
        EndTxnRequest::default()
            .with_transactional_id(tid(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
        version,
    )
    .await
    .error_code
}

fn state_of(c: &Coordinator, id: &str) -> Option<TxnState> {
    state_of_any(c, id)
}

fn state_of_any<L: OffsetsLog, M: MarkerWriter>(
    c: &TransactionCoordinator<L, M>,
    id: &str,
) -> Option<TxnState> {
    c.transaction(id).map(|m| m.state)
}

/// Waits (in paused tokio time) until `done` holds; fails after ten minutes of virtual time.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every record of `partition` of the log: (transactional id, value or tombstone).
fn records(log: &MemoryOffsetsLog, partition: i32) -> Vec<(String, Option<TxnLogValue>)> {
    log.batches(partition)
        .into_iter()
        .flat_map(|(_, batch)| parse_batches(batch).expect("batch parses").records)
        .map(|r| {
            let (key, value) = decode_record(r.key.as_deref().expect("keyed"), r.value.as_deref())
                .expect("decodes");
            (key.transactional_id, value)
        })
        .collect()
}

fn states(log: &MemoryOffsetsLog, c: &Coordinator, id: &str) -> Vec<TxnState> {
    records(log, c.partition_for(id))
        .into_iter()
        .filter(|(k, _)| k == id)
        .filter_map(|(_, v)| v.map(|v| v.state))
        .collect()
}

fn partition_set(list: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
    list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
}

#[tokio::test(start_paused = true)]
async fn commit_writes_prepare_markers_then_complete() {
    let Setup {
        log,
        markers,
        coordinator: c,
    } = start().await;
    let producer = init_ok(&c, "tx").await;
    assert_eq!(producer, (1000, 0));
    let response = add(&c, "tx", producer, &[("t", &[0, 1])]).await;
    assert!(
        add_codes(&response)
            .iter()
            .all(|(_, _, code)| *code == NONE)
    );
    let offsets = c
        .add_offsets_to_txn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(tid("tx"))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_group_id(GroupId(s("g"))),
            3,
        )
        .await;
    assert_eq!(offsets.error_code, NONE);
    let group_partition = coordinator_partition("g", 10);

    assert_eq!(end(&c, "tx", producer, true, 3).await, NONE);
    // The decision is durable before the answer.
    assert_eq!(
        states(&log, &c, "tx").last(),
        Some(&TxnState::PrepareCommit)
    );
    eventually("the commit to complete", || {
        state_of(&c, "tx") == Some(TxnState::CompleteCommit)
    })
    .await;

    let sent = markers.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0],
        MarkerRequest {
            producer_id: 1000,
            producer_epoch: 0,
            coordinator_epoch: EPOCH,
            commit: true,
            partitions: vec![
                ("__consumer_offsets".to_owned(), group_partition),
                ("t".to_owned(), 0),
                ("t".to_owned(), 1),
            ],
        }
    );
    assert_eq!(
        states(&log, &c, "tx"),
        vec![
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::CompleteCommit,
        ]
    );
    let last = records(&log, c.partition_for("tx"))
        .pop()
        .and_then(|(_, v)| v)
        .expect("a value");
    assert!(
        last.partitions.is_empty(),
        "a completed transaction holds no partitions"
    );
    // A retry of the EndTxn that completed succeeds; the opposite outcome does not.
    assert_eq!(end(&c, "tx", producer, true, 3).await, NONE);
    assert_eq!(end(&c, "tx", producer, false, 3).await, INVALID_TXN_STATE);
    let stats = c.stats();
    assert_eq!((stats.committed, stats.aborted, stats.ongoing), (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn abort_writes_abort_markers_and_the_next_transaction_starts_clean() {
    let Setup {
        log,
        markers,
        coordinator: c,
    } = start().await;
    let producer = init_ok(&c, "tx").await;
    add(&c, "tx", producer, &[("u", &[0])]).await;
    assert_eq!(c.stats().ongoing, 1);
    assert_eq!(end(&c, "tx", producer, false, 3).await, NONE);
    eventually("the abort to complete", || {
        state_of(&c, "tx") == Some(TxnState::CompleteAbort)
    })
    .await;
    let sent = markers.requests();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].commit);
    assert_eq!(sent[0].partitions, vec![("u".to_owned(), 0)]);
    assert_eq!(
        states(&log, &c, "tx")[2..],
        [TxnState::PrepareAbort, TxnState::CompleteAbort]
    );
    // The same producer runs its next transaction with the same epoch.
    let response = add(&c, "tx", producer, &[("t", &[2])]).await;
    assert_eq!(add_codes(&response), vec![("t".to_owned(), 2, NONE)]);
    let meta = c.transaction("tx").expect("held");
    assert_eq!(meta.partitions, partition_set(&[("t", 2)]));
    assert_eq!(c.stats().aborted, 1);
}

#[tokio::test(start_paused = true)]
async fn markers_are_retried_until_every_partition_takes_them() {
    let Setup {
        log,
        markers,
        coordinator: c,
    } = start().await;
    *markers.retriable_calls.lock() = 3;
    markers.unknown.lock().insert(("t".to_owned(), 2));
    let producer = init_ok(&c, "tx").await;
    add(&c, "tx", producer, &[("t", &[0, 2])]).await;
    assert_eq!(end(&c, "tx", producer, true, 3).await, NONE);
    // While markers are pending, the transaction cannot change.
    assert_eq!(
        end(&c, "tx", producer, true, 3).await,
        CONCURRENT_TRANSACTIONS
    );
    assert_eq!(init(&c, "tx").await.error_code, CONCURRENT_TRANSACTIONS);
    eventually("the commit to complete", || {
        state_of(&c, "tx") == Some(TxnState::CompleteCommit)
    })
    .await;
    let sent = markers.requests();
    assert_eq!(
        sent.len(),
        4,
        "three failed attempts and one that succeeded"
    );
    // The deleted partition is done after its first answer; only t-0 is retried.
    assert_eq!(
        sent[0].partitions,
        vec![("t".to_owned(), 0), ("t".to_owned(), 2)]
    );
    for retry in &sent[1..] {
        assert_eq!(retry.partitions, vec![("t".to_owned(), 0)]);
    }
    assert_eq!(
        states(&log, &c, "tx").last(),
        Some(&TxnState::CompleteCommit)
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_producer_fences_the_zombie_and_aborts_its_transaction() {
    let Setup {
        markers,
        coordinator: c,
        ..
    } = start().await;
    let zombie = init_ok(&c, "tx").await;
    add(&c, "tx", zombie, &[("t", &[0])]).await;

    // The new instance's first InitProducerId aborts the zombie's transaction first.
    assert_eq!(init(&c, "tx").await.error_code, CONCURRENT_TRANSACTIONS);
    eventually("the fencing abort to complete", || {
        state_of(&c, "tx") == Some(TxnState::CompleteAbort)
    })
    .await;
    let sent = markers.requests();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].commit);
    assert_eq!(
        (sent[0].producer_id, sent[0].producer_epoch),
        (1000, 1),
        "the abort marker carries the bumped epoch, fencing the zombie at the partitions"
    );
    let fresh = init_ok(&c, "tx").await;
    assert_eq!(fresh, (1000, 2));

    // Everything the zombie tries now is fenced (INVALID_PRODUCER_EPOCH for old versions).
    assert_eq!(end(&c, "tx", zombie, true, 3).await, PRODUCER_FENCED);
    assert_eq!(end(&c, "tx", zombie, true, 1).await, INVALID_PRODUCER_EPOCH);
    let response = add(&c, "tx", zombie, &[("t", &[1])]).await;
    assert_eq!(
        add_codes(&response),
        vec![("t".to_owned(), 1, PRODUCER_FENCED)]
    );
    // A KIP-360 InitProducerId naming the zombie's epoch is fenced too.
    let response = c
        .init_producer_id(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(tid("tx")))
                .with_transaction_timeout_ms(TIMEOUT_MS)
                .with_producer_id(ProducerId(zombie.0))
                .with_producer_epoch(zombie.1),
            4,
        )
        .await;
    assert_eq!(response.error_code, PRODUCER_FENCED);
    assert_eq!((response.producer_id.0, response.producer_epoch), (-1, -1));
    assert_eq!(c.transaction("tx").expect("held").producer_epoch, 2);
    let stats = c.stats();
    assert_eq!((stats.fenced_producers, stats.aborted), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn kip_360_bump_keeps_the_producer_id_and_a_retry_gets_the_same_epoch() {
    let Setup { coordinator: c, .. } = start().await;
    let first = init_ok(&c, "tx").await;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid("tx")))
        .with_transaction_timeout_ms(TIMEOUT_MS)
        .with_producer_id(ProducerId(first.0))
        .with_producer_epoch(first.1);
    let bumped = c.init_producer_id(request.clone(), 3).await;
    assert_eq!(bumped.error_code, NONE);
    assert_eq!((bumped.producer_id.0, bumped.producer_epoch), (first.0, 1));
    let retry = c.init_producer_id(request, 3).await;
    assert_eq!((retry.error_code, retry.producer_epoch), (NONE, 1));
    assert_eq!(c.stats().fenced_producers, 0);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch() {
    let Setup {
        log,
        markers,
        coordinator: c,
    } = start().await;
    let cancel = CancellationToken::new();
    let timer = tokio::spawn(c.timer().run(cancel.clone()));
    let response = c
        .init_producer_id(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(tid("slow")))
                .with_transaction_timeout_ms(1_000),
            4,
        )
        .await;
    let producer = (response.producer_id.0, response.producer_epoch);
    add(&c, "slow", producer, &[("t", &[1])]).await;

    // Not before the timeout has passed and a check has run.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(state_of(&c, "slow"), Some(TxnState::Ongoing));
    eventually("the timed-out transaction to be aborted", || {
        state_of(&c, "slow") == Some(TxnState::CompleteAbort)
    })
    .await;
    let sent = markers.requests();
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].commit);
    assert_eq!(sent[0].producer_epoch, producer.1 + 1);
    assert_eq!(
        states(&log, &c, "slow")[2..],
        [TxnState::PrepareAbort, TxnState::CompleteAbort]
    );
    assert_eq!(end(&c, "slow", producer, true, 3).await, PRODUCER_FENCED);
    let stats = c.stats();
    assert_eq!((stats.timed_out_aborts, stats.aborted), (1, 1));
    cancel.cancel();
    timer.await.expect("timer ends");
}

#[tokio::test(start_paused = true)]
async fn a_new_coordinator_completes_a_commit_the_crashed_one_left_prepared() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let first = start_with(Arc::clone(&log), config(), 1).await;
    // No partition leader takes markers: the coordinator dies with the commit prepared.
    *first.markers.always_fail.lock() = true;
    let c = &first.coordinator;
    let producer = init_ok(c, "tx").await;
    add(c, "tx", producer, &[("t", &[0]), ("u", &[0])]).await;
    assert_eq!(end(c, "tx", producer, true, 3).await, NONE);
    eventually("a failed marker attempt", || {
        !first.markers.requests().is_empty()
    })
    .await;
    c.shutdown().await;
    assert_eq!(states(&log, c, "tx").last(), Some(&TxnState::PrepareCommit));

    let second = start_with(Arc::clone(&log), config(), 2).await;
    let c2 = &second.coordinator;
    eventually("the recovered commit to complete", || {
        state_of(c2, "tx") == Some(TxnState::CompleteCommit)
    })
    .await;
    let sent = second.markers.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0],
        MarkerRequest {
            producer_id: producer.0,
            producer_epoch: producer.1,
            coordinator_epoch: 2,
            commit: true,
            partitions: vec![("t".to_owned(), 0), ("u".to_owned(), 0)],
        }
    );
    assert_eq!(
        states(&log, c2, "tx").last(),
        Some(&TxnState::CompleteCommit)
    );
    // The producer carries on with its id and epoch.
    let response = add(c2, "tx", producer, &[("t", &[1])]).await;
    assert_eq!(add_codes(&response), vec![("t".to_owned(), 1, NONE)]);
}

#[tokio::test(start_paused = true)]
async fn loading_skips_what_is_not_a_transaction_record() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let id = "tx";
    let partition = coordinator_partition(id, PARTITIONS);
    let key = TxnLogKey {
        transactional_id: id.to_owned(),
    }
    .encode()
    .expect("key");
    let value = TxnLogValue {
        producer_id: 5,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 9,
        timeout_ms: TIMEOUT_MS,
        state: TxnState::CompleteAbort,
        partitions: Vec::new(),
        last_update_timestamp_ms: 0,
        start_timestamp_ms: -1,
        client_transaction_version: 0,
    }
    .encode()
    .expect("value");
    let garbage = bytes::Bytes::from_static(&[0, 9, 1, 2]);
    let batch = build_batch(
        &[
            (garbage.clone(), Some(garbage.clone())),
            (key.clone(), Some(value)),
            (key.clone(), Some(garbage)),
        ],
        0,
    )
    .expect("batch");
    log.append(partition, batch).await.expect("appended");
    let Setup { coordinator: c, .. } = start_with(log, config(), EPOCH).await;
    let meta = c.transaction(id).expect("the valid record was loaded");
    assert_eq!((meta.producer_id, meta.producer_epoch), (5, 9));
    assert_eq!(init_ok(&c, id).await, (5, 10));
}

#[tokio::test(start_paused = true)]
async fn end_txn_errors() {
    let Setup {
        log,
        coordinator: c,
        ..
    } = start().await;
    assert_eq!(
        end(&c, "nobody", (1, 0), true, 3).await,
        INVALID_PRODUCER_ID_MAPPING,
        "unknown transactional id"
    );
    let producer = init_ok(&c, "tx").await;
    add(&c, "tx", producer, &[("t", &[0])]).await;
    let before = log.log_end_offset(c.partition_for("tx"));
    assert_eq!(
        end(&c, "tx", (producer.0, 5), true, 3).await,
        PRODUCER_FENCED
    );
    assert_eq!(
        end(&c, "tx", (producer.0, 5), true, 0).await,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        end(&c, "tx", (producer.0 + 1, producer.1), true, 3).await,
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        log.log_end_offset(c.partition_for("tx")),
        before,
        "nothing written"
    );
    assert_eq!(state_of(&c, "tx"), Some(TxnState::Ongoing));
    // Ending a transaction that never started.
    let idle = init_ok(&c, "idle").await;
    assert_eq!(end(&c, "idle", idle, true, 3).await, INVALID_TXN_STATE);
}

#[tokio::test(start_paused = true)]
async fn adding_a_partition_of_a_missing_topic_fails_the_request_and_writes_nothing() {
    let Setup {
        log,
        coordinator: c,
        ..
    } = start().await;
    let producer = init_ok(&c, "tx").await;
    let before = log.log_end_offset(c.partition_for("tx"));
    let response = add(&c, "tx", producer, &[("t", &[0, 7]), ("missing", &[0])]).await;
    assert_eq!(
        add_codes(&response),
        vec![
            ("t".to_owned(), 0, OPERATION_NOT_ATTEMPTED),
            ("t".to_owned(), 7, UNKNOWN_TOPIC_OR_PARTITION),
            ("missing".to_owned(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(log.log_end_offset(c.partition_for("tx")), before);
    assert_eq!(state_of(&c, "tx"), Some(TxnState::Empty));
    // An unknown transactional id, and a wrong producer id.
    let response = add(&c, "nobody", producer, &[("t", &[0])]).await;
    assert_eq!(
        add_codes(&response),
        vec![("t".to_owned(), 0, INVALID_PRODUCER_ID_MAPPING)]
    );
}

#[tokio::test(start_paused = true)]
async fn requests_for_partitions_not_loaded_here_are_not_coordinator() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let Setup { coordinator: c, .. } = start_with(log, config(), EPOCH).await;
    let producer = init_ok(&c, "tx").await;
    c.unload_partition(c.partition_for("tx")).await;
    assert_eq!(init(&c, "tx").await.error_code, NOT_COORDINATOR);
    assert_eq!(end(&c, "tx", producer, true, 3).await, NOT_COORDINATOR);
    let describe = c
        .describe_transactions(
            DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("tx")]),
            0,
        )
        .await;
    assert_eq!(describe.transaction_states[0].error_code, NOT_COORDINATOR);
    // Loading it again brings the transactional id back from the log.
    c.load_partition(c.partition_for("tx"), EPOCH + 1)
        .await
        .expect("reloads");
    assert_eq!(init_ok(&c, "tx").await, (producer.0, producer.1 + 1));
}

#[tokio::test(start_paused = true)]
async fn transaction_timeouts_above_the_maximum_are_refused() {
    let Setup {
        log,
        coordinator: c,
        ..
    } = start().await;
    for timeout in [0, 900_001] {
        let response = c
            .init_producer_id(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(tid("tx")))
                    .with_transaction_timeout_ms(timeout),
                4,
            )
            .await;
        assert_eq!(
            response.error_code, INVALID_TRANSACTION_TIMEOUT,
            "timeout {timeout}"
        );
    }
    assert_eq!(log.log_end_offset(c.partition_for("tx")), 0);
}

#[tokio::test(start_paused = true)]
async fn verify_only_reports_which_partitions_are_in_the_transaction() {
    let Setup { coordinator: c, .. } = start().await;
    let producer = init_ok(&c, "tx").await;
    add(&c, "tx", producer, &[("t", &[0])]).await;
    let verify = |epoch: i16| {
        AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(tid("tx"))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(epoch)
                .with_verify_only(true)
                .with_topics(topics(&[("t", &[0, 1])])),
        ])
    };
    let codes = |response: AddPartitionsToTxnResponse| -> Vec<i16> {
        response.results_by_transaction[0].topic_results[0]
            .results_by_partition
            .iter()
            .map(|p| p.partition_error_code)
            .collect()
    };
    let response = c.add_partitions_to_txn(verify(producer.1), 4).await;
    assert_eq!(
        response.results_by_transaction[0].transactional_id,
        tid("tx")
    );
    assert_eq!(codes(response), vec![NONE, INVALID_TXN_STATE]);
    let response = c.add_partitions_to_txn(verify(producer.1 + 1), 4).await;
    assert_eq!(codes(response), vec![PRODUCER_FENCED, PRODUCER_FENCED]);
    // Verification adds nothing.
    assert_eq!(
        c.transaction("tx").expect("held").partitions,
        partition_set(&[("t", 0)])
    );
}

#[tokio::test(start_paused = true)]
async fn describe_and_list_transactions() {
    let Setup { coordinator: c, .. } = start().await;
    let a = init_ok(&c, "a").await;
    add(&c, "a", a, &[("t", &[1, 0]), ("u", &[0])]).await;
    let b = init_ok(&c, "b").await;

    let response = c
        .describe_transactions(
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![tid("a"), tid("zz")]),
            0,
        )
        .await;
    let described = &response.transaction_states[0];
    assert_eq!(described.error_code, NONE);
    assert_eq!(described.transaction_state.as_str(), "Ongoing");
    assert_eq!(described.transaction_timeout_ms, TIMEOUT_MS);
    assert_eq!((described.producer_id.0, described.producer_epoch), a);
    assert!(described.transaction_start_time_ms > 0);
    let topics: Vec<(&str, Vec<i32>)> = described
        .topics
        .iter()
        .map(|t| (t.topic.0.as_str(), t.partitions.clone()))
        .collect();
    assert_eq!(topics, vec![("t", vec![0, 1]), ("u", vec![0])]);
    assert_eq!(
        response.transaction_states[1].error_code,
        TRANSACTIONAL_ID_NOT_FOUND
    );

    let list = |states: &[&str], pids: &[i64]| {
        ListTransactionsRequest::default()
            .with_state_filters(states.iter().map(|v| s(v)).collect())
            .with_producer_id_filters(pids.iter().map(|p| ProducerId(*p)).collect())
            .with_duration_filter(-1)
    };
    let ids = |response: &kafka_protocol::messages::ListTransactionsResponse| -> Vec<String> {
        response
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.0.as_str().to_owned())
            .collect()
    };
    let all = c.list_transactions(list(&[], &[]), 1).await;
    assert_eq!(all.error_code, NONE);
    assert_eq!(ids(&all), vec!["a", "b"]);
    let ongoing = c
        .list_transactions(list(&["Ongoing", "Bogus"], &[]), 1)
        .await;
    assert_eq!(ids(&ongoing), vec!["a"]);
    assert_eq!(ongoing.unknown_state_filters, vec![s("Bogus")]);
    let by_pid = c.list_transactions(list(&[], &[b.0]), 1).await;
    assert_eq!(ids(&by_pid), vec!["b"]);
    assert_eq!(
        by_pid.transaction_states[0].transaction_state.as_str(),
        "Empty"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_transactional_ids_expire_with_a_tombstone() {
    let config = TxnConfig {
        transactional_id_expiration: Duration::from_secs(3_600),
        remove_expired_check_interval: Duration::from_secs(60),
        ..config()
    };
    let log = Arc::new(MemoryOffsetsLog::new());
    let Setup { coordinator: c, .. } = start_with(Arc::clone(&log), config.clone(), EPOCH).await;
    let cancel = CancellationToken::new();
    let timer = tokio::spawn(c.timer().run(cancel.clone()));
    let idle = init_ok(&c, "idle").await;

    tokio::time::sleep(Duration::from_secs(3_500)).await;
    assert!(
        c.transaction("idle").is_some(),
        "not expired before its time"
    );
    eventually("the idle id to expire", || c.transaction("idle").is_none()).await;
    let partition = c.partition_for("idle");
    let last = records(&log, partition)
        .into_iter()
        .rfind(|(k, _)| k == "idle")
        .expect("records of idle");
    assert_eq!(last.1, None, "a tombstone");
    cancel.cancel();
    timer.await.expect("timer ends");

    // A coordinator loading the partition does not bring it back: InitProducerId starts over
    // at epoch 0 (with a kept id it would have bumped to 1).
    assert_eq!(idle.1, 0);
    let Setup {
        coordinator: c2, ..
    } = start_with(log, config, EPOCH + 1).await;
    assert!(c2.transaction("idle").is_none());
    assert_eq!(init_ok(&c2, "idle").await.1, 0);
}

#[tokio::test(start_paused = true)]
async fn a_fenced_coordinator_stops_and_leaves_the_transaction_prepared() {
    struct Fenced(Mutex<u32>);
    impl MarkerWriter for Fenced {
        async fn write_markers(&self, request: MarkerRequest) -> Vec<MarkerResult> {
            *self.0.lock() += 1;
            request
                .partitions
                .into_iter()
                .map(|tp| (tp, Err(MarkerError::CoordinatorFenced)))
                .collect()
        }
    }
    let log = Arc::new(MemoryOffsetsLog::new());
    let markers = Arc::new(Fenced(Mutex::new(0)));
    let c = TransactionCoordinator::new(
        config(),
        Arc::clone(&log),
        Arc::clone(&markers),
        Arc::new(Ids(AtomicI64::new(1))),
    );
    let partition = c.partition_for("tx");
    c.load_partition(partition, EPOCH).await.expect("loads");
    let init = c
        .init_producer_id(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(tid("tx")))
                .with_transaction_timeout_ms(TIMEOUT_MS),
            4,
        )
        .await;
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid("tx"))
        .with_v3_and_below_producer_id(init.producer_id)
        .with_v3_and_below_producer_epoch(init.producer_epoch)
        .with_v3_and_below_topics(topics(&[("t", &[0])]));
    c.add_partitions_to_txn(request, 3).await;
    let end = EndTxnRequest::default()
        .with_transactional_id(tid("tx"))
        .with_producer_id(init.producer_id)
        .with_producer_epoch(init.producer_epoch)
        .with_committed(true);
    assert_eq!(c.end_txn(end, 3).await.error_code, NONE);
    eventually("the marker attempt", || *markers.0.lock() == 1).await;
    // Well past every retry backoff (paused time): no second attempt, no completion.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(*markers.0.lock(), 1, "no retry once fenced");
    assert_eq!(state_of_any(&c, "tx"), Some(TxnState::PrepareCommit));
    let written: Vec<TxnState> = records(&log, partition)
        .into_iter()
        .filter_map(|(_, v)| v.map(|v| v.state))
        .collect();
    assert_eq!(
        written.last(),
        Some(&TxnState::PrepareCommit),
        "the completion is left to the coordinator that fenced this one"
    );
}

/// A log whose appends fail while `down` is set, as when the partition lost its leader.
#[derive(Default)]
struct FlakyLog {
    inner: MemoryOffsetsLog,
    down: std::sync::atomic::AtomicBool,
}

impl OffsetsLog for FlakyLog {
    async fn append(
        &self,
        partition: i32,
        batch: bytes::Bytes,
    ) -> Result<i64, strom_group::OffsetsLogError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(strom_group::OffsetsLogError::NotLeader { partition });
        }
        self.inner.append(partition, batch).await
    }

    fn read(
        &self,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(bytes::Bytes, i64), strom_group::OffsetsLogError> {
        self.inner.read(partition, offset, max_bytes)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_changes_nothing() {
    let log = Arc::new(FlakyLog::default());
    let c = TransactionCoordinator::new(
        config(),
        Arc::clone(&log),
        Arc::new(FakeMarkers::default()),
        Arc::new(Ids(AtomicI64::new(1))),
    );
    c.load_partition(c.partition_for("tx"), EPOCH)
        .await
        .expect("loads");
    let init_request = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid("tx")))
        .with_transaction_timeout_ms(TIMEOUT_MS);
    log.down.store(true, Ordering::Relaxed);
    let response = c.init_producer_id(init_request.clone(), 4).await;
    assert_eq!(response.error_code, NOT_COORDINATOR);
    assert!(
        c.transaction("tx").is_none(),
        "nothing cached without the write"
    );

    log.down.store(false, Ordering::Relaxed);
    let init = c.init_producer_id(init_request, 4).await;
    assert_eq!(init.error_code, NONE);
    log.down.store(true, Ordering::Relaxed);
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid("tx"))
        .with_v3_and_below_producer_id(init.producer_id)
        .with_v3_and_below_producer_epoch(init.producer_epoch)
        .with_v3_and_below_topics(topics(&[("t", &[0])]));
    let response = c.add_partitions_to_txn(request, 3).await;
    assert_eq!(
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        NOT_COORDINATOR
    );
    let meta = c.transaction("tx").expect("held");
    assert_eq!(meta.state, TxnState::Empty);
    assert!(meta.partitions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn batched_adds_from_brokers_and_old_version_fencing_codes() {
    let Setup { coordinator: c, .. } = start().await;
    let a = init_ok(&c, "a").await;
    let b = init_ok(&c, "b").await;
    let txn = |id: &str, (pid, epoch): (i64, i16), list: &[(&str, &[i32])]| {
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(tid(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_topics(topics(list))
    };
    let response = c
        .add_partitions_to_txn(
            AddPartitionsToTxnRequest::default().with_transactions(vec![
                txn("a", a, &[("t", &[0])]),
                txn("b", (b.0, b.1 + 1), &[("t", &[1])]),
            ]),
            5,
        )
        .await;
    let codes: Vec<(String, i16)> = response
        .results_by_transaction
        .iter()
        .map(|r| {
            (
                r.transactional_id.0.as_str().to_owned(),
                r.topic_results[0].results_by_partition[0].partition_error_code,
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![("a".to_owned(), NONE), ("b".to_owned(), PRODUCER_FENCED)]
    );
    assert_eq!(state_of(&c, "a"), Some(TxnState::Ongoing));
    assert_eq!(state_of(&c, "b"), Some(TxnState::Empty));

    // Before KIP-588 versions, a fenced producer is INVALID_PRODUCER_EPOCH.
    let offsets = |version| {
        c.add_offsets_to_txn(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(tid("b"))
                .with_producer_id(ProducerId(b.0))
                .with_producer_epoch(b.1 + 1)
                .with_group_id(GroupId(s("g"))),
            version,
        )
    };
    assert_eq!(offsets(1).await.error_code, INVALID_PRODUCER_EPOCH);
    assert_eq!(offsets(2).await.error_code, PRODUCER_FENCED);
    let stale = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid("a")))
        .with_transaction_timeout_ms(TIMEOUT_MS)
        .with_producer_id(ProducerId(a.0 + 50))
        .with_producer_epoch(0);
    assert_eq!(
        c.init_producer_id(stale.clone(), 3).await.error_code,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        c.init_producer_id(stale, 4).await.error_code,
        PRODUCER_FENCED
    );
}
