//! Kafka error codes the coordinator answers with, named once.

use kafka_protocol::ResponseError as E;

pub(crate) const NONE: i16 = 0;
pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
pub(crate) const OFFSET_METADATA_TOO_LARGE: i16 = E::OffsetMetadataTooLarge.code();
pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = E::CoordinatorLoadInProgress.code();
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
pub(crate) const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
pub(crate) const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
pub(crate) const INVALID_GROUP_ID: i16 = E::InvalidGroupId.code();
pub(crate) const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
pub(crate) const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
pub(crate) const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
pub(crate) const NON_EMPTY_GROUP: i16 = E::NonEmptyGroup.code();
pub(crate) const GROUP_ID_NOT_FOUND: i16 = E::GroupIdNotFound.code();
pub(crate) const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
pub(crate) const FENCED_INSTANCE_ID: i16 = E::FencedInstanceId.code();
pub(crate) const GROUP_SUBSCRIBED_TO_TOPIC: i16 = E::GroupSubscribedToTopic.code();
pub(crate) const UNSTABLE_OFFSET_COMMIT: i16 = E::UnstableOffsetCommit.code();
pub(crate) const INVALID_PRODUCER_ID_MAPPING: i16 = E::InvalidProducerIdMapping.code();
