//! DescribeTransactions (API key 65) and ListTransactions (API key 66), KIP-664.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_group::OffsetsLog;

use super::{PartitionStatus, TransactionCoordinator};
use crate::codes::*;
use crate::marker::MarkerWriter;
use crate::state::TxnState;

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// DescribeTransactions: the state of each transactional id (TRANSACTIONAL_ID_NOT_FOUND
    /// for one this coordinator does not hold, NOT_COORDINATOR when its partition is not
    /// loaded here).
    pub async fn describe_transactions(
        &self,
        req: DescribeTransactionsRequest,
        _version: i16,
    ) -> DescribeTransactionsResponse {
        let state = self.shared.state.lock();
        let states = req
            .transactional_ids
            .into_iter()
            .map(|id| {
                let blank = TransactionState::default()
                    .with_transactional_id(id.clone())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1);
                let name = id.0.as_str();
                let check = if name.is_empty() {
                    Err(TRANSACTIONAL_ID_NOT_FOUND)
                } else {
                    self.check_txn(&state, name)
                };
                if let Err(code) = check {
                    return blank.with_error_code(code);
                }
                let Some(meta) = state.txns.get(name) else {
                    return blank.with_error_code(TRANSACTIONAL_ID_NOT_FOUND);
                };
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, p) in &meta.partitions {
                    topics.entry(topic.as_str()).or_default().push(*p);
                }
                blank
                    .with_error_code(NONE)
                    .with_transaction_state(StrBytes::from_static_str(meta.state.as_str()))
                    .with_transaction_timeout_ms(meta.timeout_ms)
                    .with_transaction_start_time_ms(meta.start_timestamp_ms)
                    .with_producer_id(ProducerId(meta.producer_id))
                    .with_producer_epoch(meta.producer_epoch)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(topic, partitions)| {
                                TopicData::default()
                                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            })
            .collect();
        DescribeTransactionsResponse::default().with_transaction_states(states)
    }

    /// ListTransactions: every transaction of the loaded partitions matching the filters
    /// (states by Kafka's names, unknown names echoed in `unknown_state_filters`; producer
    /// ids; v1+ `duration_filter`: running longer than that many ms).
    /// COORDINATOR_LOAD_IN_PROGRESS while a partition is loading, with what is loaded.
    pub async fn list_transactions(
        &self,
        req: ListTransactionsRequest,
        version: i16,
    ) -> ListTransactionsResponse {
        let mut states = Vec::new();
        let mut unknown = Vec::new();
        for name in &req.state_filters {
            match TxnState::parse(name.as_str()) {
                Some(state) => states.push(state),
                None => unknown.push(name.clone()),
            }
        }
        // Only unknown names: nothing can match.
        if states.is_empty() && !unknown.is_empty() {
            return ListTransactionsResponse::default().with_unknown_state_filters(unknown);
        }
        let duration = if version >= 1 {
            req.duration_filter
        } else {
            -1
        };
        let now = self.now();
        let state = self.shared.state.lock();
        if state.shut_down {
            return ListTransactionsResponse::default().with_error_code(NOT_COORDINATOR);
        }
        let loading = state
            .partitions
            .values()
            .any(|s| matches!(s, PartitionStatus::Loading { .. }));
        let mut listed: Vec<ListedState> = state
            .txns
            .values()
            .filter(|m| m.state != TxnState::Dead)
            .filter(|m| states.is_empty() || states.contains(&m.state))
            .filter(|m| {
                req.producer_id_filters.is_empty()
                    || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
            })
            .filter(|m| duration < 0 || now.saturating_sub(m.start_timestamp_ms) > duration)
            .map(|m| {
                ListedState::default()
                    .with_transactional_id(kafka_protocol::messages::TransactionalId(
                        StrBytes::from_string(m.transactional_id.clone()),
                    ))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(StrBytes::from_static_str(m.state.as_str()))
            })
            .collect();
        listed.sort_by(|a, b| {
            a.transactional_id
                .0
                .as_str()
                .cmp(b.transactional_id.0.as_str())
        });
        ListTransactionsResponse::default()
            .with_error_code(if loading {
                COORDINATOR_LOAD_IN_PROGRESS
            } else {
                NONE
            })
            .with_unknown_state_filters(unknown)
            .with_transaction_states(listed)
    }
}
