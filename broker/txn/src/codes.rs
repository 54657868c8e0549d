//! Kafka error codes the coordinator answers with, named once.

use kafka_protocol::ResponseError as E;

pub(crate) const NONE: i16 = 0;
pub(crate) const UNKNOWN_SERVER_ERROR: i16 = E::UnknownServerError.code();
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = E::CoordinatorLoadInProgress.code();
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
pub(crate) const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
pub(crate) const INVALID_REQUEST: i16 = E::InvalidRequest.code();
pub(crate) const INVALID_PRODUCER_EPOCH: i16 = E::InvalidProducerEpoch.code();
pub(crate) const INVALID_TXN_STATE: i16 = E::InvalidTxnState.code();
pub(crate) const INVALID_PRODUCER_ID_MAPPING: i16 = E::InvalidProducerIdMapping.code();
pub(crate) const INVALID_TRANSACTION_TIMEOUT: i16 = E::InvalidTransactionTimeout.code();
pub(crate) const CONCURRENT_TRANSACTIONS: i16 = E::ConcurrentTransactions.code();
pub(crate) const OPERATION_NOT_ATTEMPTED: i16 = E::OperationNotAttempted.code();
pub(crate) const PRODUCER_FENCED: i16 = E::ProducerFenced.code();
pub(crate) const TRANSACTIONAL_ID_NOT_FOUND: i16 = E::TransactionalIdNotFound.code();

/// PRODUCER_FENCED (KIP-588) is answered only to versions that know it: InitProducerId v4+,
/// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2+; older ones get INVALID_PRODUCER_EPOCH.
pub(crate) fn fenced_for(code: i16, version: i16, first_version_with_fenced: i16) -> i16 {
    if code == PRODUCER_FENCED && version < first_version_with_fenced {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas_numbers() {
        let expected = [
            (UNKNOWN_TOPIC_OR_PARTITION, 3),
            (COORDINATOR_LOAD_IN_PROGRESS, 14),
            (NOT_COORDINATOR, 16),
            (INVALID_PRODUCER_EPOCH, 47),
            (INVALID_TXN_STATE, 48),
            (INVALID_PRODUCER_ID_MAPPING, 49),
            (INVALID_TRANSACTION_TIMEOUT, 50),
            (CONCURRENT_TRANSACTIONS, 51),
            (OPERATION_NOT_ATTEMPTED, 55),
            (PRODUCER_FENCED, 90),
            (TRANSACTIONAL_ID_NOT_FOUND, 105),
        ];
        for (code, number) in expected {
            assert_eq!(code, number);
        }
        assert_eq!(fenced_for(PRODUCER_FENCED, 1, 2), INVALID_PRODUCER_EPOCH);
        assert_eq!(fenced_for(PRODUCER_FENCED, 2, 2), PRODUCER_FENCED);
        assert_eq!(
            fenced_for(CONCURRENT_TRANSACTIONS, 0, 2),
            CONCURRENT_TRANSACTIONS
        );
    }
}
