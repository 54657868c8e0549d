//! The broker's side of KIP-890 verification: asks the transaction coordinator of a
//! transactional id — this broker's own, or another broker's over the peer connections — with
//! an AddPartitionsToTxn v4 `verify_only` request whether partitions are in a producer's
//! ongoing transaction.
//!
//! Coordinator-side trouble (moving, loading, a transaction still completing, no answer) is
//! answered as NOT_ENOUGH_REPLICAS, which every producer retries, as Kafka does: older clients
//! do not know the coordinator codes on a produce. A partition the coordinator says is not in
//! the transaction gets its code (INVALID_TXN_STATE); a fenced producer gets
//! INVALID_PRODUCER_EPOCH, the produce error producers handle as fencing.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::capabilities::TransactionVerifier;
use crate::transactions::TRANSACTION_STATE_TOPIC;

/// The AddPartitionsToTxn version of the broker-to-broker batched form with `verify_only`.
const VERIFY_VERSION: i16 = 4;

impl TransactionVerifier for Broker {
    async fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> HashMap<(String, i32), ResponseError> {
        let request = verify_request(transactional_id, producer_id, producer_epoch, &partitions);
        let image = self.image();
        let coordinator = image
            .partition(
                TRANSACTION_STATE_TOPIC,
                self.transactions.partition_for(transactional_id),
            )
            .map(|p| p.leader)
            .filter(|leader| *leader >= 0);
        let response = match coordinator {
            Some(leader) if leader == self.node_id => Some(
                self.transactions
                    .add_partitions_to_txn(request, VERIFY_VERSION)
                    .await,
            ),
            Some(leader) => match image.broker(leader) {
                Some(node) => {
                    let address = format!("{}:{}", node.host, node.port);
                    self.peers
                        .send(leader, &address, request, Some(VERIFY_VERSION))
                        .await
                        .inspect_err(|error| {
                            tracing::debug!(%error, leader, "transaction verification request failed");
                        })
                        .ok()
                }
                None => None,
            },
            None => None,
        };
        outcomes(&partitions, response)
    }
}

fn verify_request(
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
) -> AddPartitionsToTxnRequest {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let topics = by_topic
        .into_iter()
        .map(|(topic, indexes)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(indexes)
        })
        .collect();
    AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(topics),
    ])
}

/// The error of each partition from the coordinator's answer (none: every partition is
/// retried as NOT_ENOUGH_REPLICAS).
fn outcomes(
    partitions: &[(String, i32)],
    response: Option<AddPartitionsToTxnResponse>,
) -> HashMap<(String, i32), ResponseError> {
    let retriable = ResponseError::NotEnoughReplicas;
    let Some(response) = response.filter(|r| r.error_code == 0) else {
        return partitions
            .iter()
            .map(|tp| (tp.clone(), retriable))
            .collect();
    };
    let mut answered: HashMap<(String, i32), i16> = HashMap::new();
    for result in response.results_by_transaction {
        for topic in result.topic_results {
            for partition in topic.results_by_partition {
                answered.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.partition_error_code,
                );
            }
        }
    }
    partitions
        .iter()
        .filter_map(|tp| {
            let error = match answered.get(tp).copied() {
                Some(0) => return None,
                None => retriable,
                Some(code) => match ResponseError::try_from_code(code) {
                    Some(
                        ResponseError::ConcurrentTransactions
                        | ResponseError::CoordinatorLoadInProgress
                        | ResponseError::CoordinatorNotAvailable
                        | ResponseError::NotCoordinator,
                    )
                    | None => retriable,
                    // A fenced producer must see INVALID_PRODUCER_EPOCH on its produce, as
                    // Kafka answers: clients treat it as fatal there, while PRODUCER_FENCED on a
                    // produce only aborts the transaction (librdkafka) and the zombie goes on.
                    Some(ResponseError::ProducerFenced) => ResponseError::InvalidProducerEpoch,
                    Some(error) => error,
                },
            };
            Some((tp.clone(), error))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    };

    use super::*;

    fn answer(codes: &[(&str, i32, i16)]) -> AddPartitionsToTxnResponse {
        let topics = codes
            .iter()
            .map(|(topic, partition, code)| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_results_by_partition(vec![
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*partition)
                            .with_partition_error_code(*code),
                    ])
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_transaction(vec![
            AddPartitionsToTxnResult::default().with_topic_results(topics),
        ])
    }

    #[test]
    fn coordinator_answers_become_produce_errors() {
        let partitions: Vec<(String, i32)> = ["in", "out", "busy", "gone"]
            .iter()
            .map(|t| (t.to_string(), 0))
            .collect();
        let got = outcomes(
            &partitions,
            Some(answer(&[
                ("in", 0, 0),
                ("out", 0, ResponseError::InvalidTxnState.code()),
                ("busy", 0, ResponseError::ConcurrentTransactions.code()),
            ])),
        );
        assert_eq!(got.get(&("in".into(), 0)), None);
        assert_eq!(
            got.get(&("out".into(), 0)),
            Some(&ResponseError::InvalidTxnState)
        );
        assert_eq!(
            got.get(&("busy".into(), 0)),
            Some(&ResponseError::NotEnoughReplicas)
        );
        assert_eq!(
            got.get(&("gone".into(), 0)),
            Some(&ResponseError::NotEnoughReplicas),
            "a partition the answer does not name is retried"
        );
        let unreachable = outcomes(&partitions, None);
        assert!(
            unreachable
                .values()
                .all(|e| *e == ResponseError::NotEnoughReplicas)
                && unreachable.len() == 4
        );
    }

    #[test]
    fn a_fenced_producer_gets_invalid_producer_epoch() {
        let partitions = vec![("orders".to_string(), 0)];
        let got = outcomes(
            &partitions,
            Some(answer(&[(
                "orders",
                0,
                ResponseError::ProducerFenced.code(),
            )])),
        );
        assert_eq!(
            got.get(&("orders".into(), 0)),
            Some(&ResponseError::InvalidProducerEpoch)
        );
    }

    #[test]
    fn the_request_is_a_verify_only_batch_of_one_transaction() {
        let request = verify_request(
            "tx",
            7,
            3,
            &[("a".into(), 1), ("b".into(), 0), ("a".into(), 0)],
        );
        let txn = &request.transactions[0];
        assert!(txn.verify_only);
        assert_eq!((txn.producer_id.0, txn.producer_epoch), (7, 3));
        let topics: Vec<(String, Vec<i32>)> = txn
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partitions.clone()))
            .collect();
        assert_eq!(
            topics,
            vec![("a".to_string(), vec![1, 0]), ("b".to_string(), vec![0])]
        );
    }
}
