//! Bad transactional requests get Kafka's error codes and write nothing: EndTxn for a
//! transactional id the coordinator never saw, with a wrong epoch or producer id, or without a
//! transaction; AddPartitionsToTxn naming a topic that does not exist; TxnOffsetCommit from a
//! member the group does not have; a transactional batch for a partition outside the
//! transaction (KIP-890 verification). Sent raw (one request per call) to pin versions and fields.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, InitProducerIdRequest,
    InitProducerIdResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use strom_e2e::cluster::eventually;
use strom_e2e::kafka::create_topic;
use strom_e2e::transactions::latest_offset;
use strom_e2e::wire::{call, encode_batch};
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(30);
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const PRODUCER_FENCED: i16 = 90;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// InitProducerId for `id`, retried while the coordinator loads; returns (producer id, epoch).
async fn init(stream: &mut TcpStream, id: &str) -> anyhow::Result<(i64, i16)> {
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(s(id));
    let _: FindCoordinatorResponse = call(stream, ApiKey::FindCoordinator, 3, &find).await?;
    let mut last = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(id))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response: InitProducerIdResponse =
            call(stream, ApiKey::InitProducerId, 4, &request).await?;
        if response.error_code == 0 {
            return Ok((response.producer_id.0, response.producer_epoch));
        }
        last = response.error_code;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("InitProducerId for {id} kept failing with {last}")
}

async fn end_txn(
    stream: &mut TcpStream,
    id: &str,
    producer: (i64, i16),
    version: i16,
) -> anyhow::Result<i16> {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(true);
    let response: EndTxnResponse = call(stream, ApiKey::EndTxn, version, &request).await?;
    Ok(response.error_code)
}

/// Log end offsets of every `__transaction_state` partition.
async fn transaction_log_ends(bootstrap: &str) -> anyhow::Result<Vec<i64>> {
    let mut ends = Vec::new();
    for partition in 0..50 {
        ends.push(latest_offset(bootstrap, "__transaction_state", partition, 0).await?);
    }
    Ok(ends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactional_requests_get_kafka_codes_and_write_nothing() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "bad-txn", 1, &[]).await?;
    let mut stream = TcpStream::connect(&bootstrap).await?;
    let producer = init(&mut stream, "bad-txn").await?;
    let before = transaction_log_ends(&bootstrap).await?;

    // EndTxn for an id the coordinator never saw, then with a wrong producer id, an older and
    // a newer epoch (fenced: PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before), then
    // with nothing to end.
    assert_eq!(
        end_txn(&mut stream, "never-seen", producer, 3).await?,
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        end_txn(&mut stream, "bad-txn", (producer.0 + 1000, producer.1), 3).await?,
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        end_txn(&mut stream, "bad-txn", (producer.0, producer.1 + 1), 3).await?,
        PRODUCER_FENCED
    );
    assert_eq!(
        end_txn(&mut stream, "bad-txn", (producer.0, producer.1 + 1), 1).await?,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        end_txn(&mut stream, "bad-txn", producer, 3).await?,
        INVALID_TXN_STATE
    );

    // AddPartitionsToTxn naming a topic that does not exist, beside one that does: the
    // unknown partition gets UNKNOWN_TOPIC_OR_PARTITION and nothing is added.
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s("bad-txn")))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("no-such-topic")))
                .with_partitions(vec![0]),
        ]);
    let response: AddPartitionsToTxnResponse =
        call(&mut stream, ApiKey::AddPartitionsToTxn, 3, &add).await?;
    let codes: Vec<i16> = response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect();
    assert_eq!(codes, [UNKNOWN_TOPIC_OR_PARTITION]);
    // No transaction began: ending one is still an invalid state.
    assert_eq!(
        end_txn(&mut stream, "bad-txn", producer, 3).await?,
        INVALID_TXN_STATE
    );
    assert_eq!(
        transaction_log_ends(&bootstrap).await?,
        before,
        "no refused request wrote to __transaction_state"
    );

    // A transactional batch for a partition never added to a transaction (a zombie's late
    // retry): the coordinator does not verify it (KIP-890), so it is refused and not written.
    let batch = encode_batch(&[Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: producer.0,
        producer_epoch: producer.1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from_static(b"late")),
        headers: Default::default(),
    }])?;
    let produce = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s("bad-txn"))))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(s("bad-txn")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch)),
                ]),
        ]);
    let produced: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &produce).await?;
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code, INVALID_TXN_STATE,
        "a partition outside the transaction is refused"
    );
    assert_eq!(
        latest_offset(&bootstrap, "bad-txn", 0, 0).await?,
        0,
        "the unverified batch was not written"
    );

    // TxnOffsetCommit from a member (v3+, KIP-447) the group does not have, and with a
    // generation it never had: refused, and no offset appears. The group exists (empty) from a
    // plain commit of offset 1.
    let plain = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("bad-group")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("bad-txn")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    eventually(
        "the plain commit that creates the group",
        DEADLINE,
        || async {
            let mut stream = TcpStream::connect(&bootstrap).await.ok()?;
            let find = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_key(s("bad-group"));
            let _: FindCoordinatorResponse = call(&mut stream, ApiKey::FindCoordinator, 3, &find)
                .await
                .ok()?;
            let response: OffsetCommitResponse = call(&mut stream, ApiKey::OffsetCommit, 8, &plain)
                .await
                .ok()?;
            (response.topics[0].partitions[0].error_code == 0).then_some(())
        },
    )
    .await?;
    for (member, generation, expected) in
        [("ghost", 0, UNKNOWN_MEMBER_ID), ("", 7, ILLEGAL_GENERATION)]
    {
        let commit = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("bad-txn")))
            .with_group_id(GroupId(s("bad-group")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_topics(vec![
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("bad-txn")))
                    .with_partitions(vec![
                        TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(5),
                    ]),
            ]);
        let response: TxnOffsetCommitResponse =
            call(&mut stream, ApiKey::TxnOffsetCommit, 3, &commit).await?;
        assert_eq!(
            response.topics[0].partitions[0].error_code, expected,
            "member {member:?} generation {generation}"
        );
    }
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("bad-group")))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("bad-txn")))
                .with_partition_indexes(vec![0]),
        ]));
    let fetched: OffsetFetchResponse = call(&mut stream, ApiKey::OffsetFetch, 5, &fetch).await?;
    assert_eq!(
        fetched.topics[0].partitions[0].committed_offset, 1,
        "only the plain commit's offset is visible, none of a refused TxnOffsetCommit"
    );
    assert_eq!(
        latest_offset(&bootstrap, "bad-txn", 0, 0).await?,
        0,
        "nothing reached the data partition"
    );
    Ok(())
}
