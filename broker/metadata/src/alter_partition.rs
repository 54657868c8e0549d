//! AlterPartition (KIP-497): a partition leader asks the controller to change the ISR.
//!
//! The controller is the only writer of ISRs. A leader's request is checked against the
//! partition as committed, in Kafka's order: the sender's registration (STALE_BROKER_EPOCH),
//! the partition (UNKNOWN_TOPIC_OR_PARTITION), the sender being the leader of this leader epoch
//! (FENCED_LEADER_EPOCH), the partition epoch its view was built on (INVALID_UPDATE_VERSION),
//! then the ISR itself: non-empty, without duplicates, holding the leader (INVALID_REQUEST),
//! and every broker it adds a replica that is active (INELIGIBLE_REPLICA). Members already in
//! the ISR may stay whatever their state: a leader may always shrink.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::controller::Controller;
use crate::controller_error::ControllerError;
use crate::controller_ops::AlterPartitionRequest;
use crate::controller_ops::PartitionState;
use crate::image::MetadataImage;
use crate::partition_change::PartitionChangeBuilder;
use crate::partition_change::PlannedChange;

/// Validates `request` against `image`: the change to commit (`None` when the ISR asked for
/// is the current one) and the partition's state after it.
pub(crate) fn plan_alter_partition(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
) -> Result<(Option<PlannedChange>, PartitionState), ControllerError> {
    let sender = request.broker_id;
    if image
        .broker(sender)
        .is_none_or(|b| b.incarnation != request.incarnation)
    {
        return Err(ControllerError::StaleBrokerEpoch { node_id: sender });
    }
    let topic = image.topic_by_id(&request.topic_id).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition {
            topic: request.topic_id.to_string(),
            partition: None,
        }
    })?;
    let name = topic.name.as_str();
    let partition = request.partition;
    let current = topic.partitions.get(&partition).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition {
            topic: name.to_owned(),
            partition: Some(partition),
        }
    })?;
    if current.leader_epoch != request.leader_epoch || current.leader != sender {
        return Err(ControllerError::FencedLeaderEpoch {
            topic: name.to_owned(),
            partition,
            message: format!(
                "Broker {sender} at leader epoch {} may not change the ISR of {name}-{partition}: \
                 its leader is {} at leader epoch {}.",
                request.leader_epoch, current.leader, current.leader_epoch
            ),
        });
    }
    if current.partition_epoch != request.partition_epoch {
        return Err(ControllerError::InvalidUpdateVersion {
            topic: name.to_owned(),
            partition,
            requested: request.partition_epoch,
            current: current.partition_epoch,
        });
    }
    let invalid = |reason: &str| ControllerError::InvalidRequest {
        message: format!(
            "Invalid ISR {:?} for {name}-{partition}: {reason}.",
            request.new_isr
        ),
    };
    if request.new_isr.is_empty() {
        return Err(invalid("the ISR must not be empty"));
    }
    let distinct: BTreeSet<i32> = request.new_isr.iter().copied().collect();
    if distinct.len() != request.new_isr.len() {
        return Err(invalid("it names a broker more than once"));
    }
    if !distinct.contains(&sender) {
        return Err(invalid("it must contain the leader"));
    }
    for &broker in request.new_isr.iter().filter(|b| !current.isr.contains(b)) {
        let reason = if !current.replicas.contains(&broker) {
            Some("it is not a replica of the partition")
        } else {
            match image.broker(broker) {
                None => Some("it is not registered"),
                Some(b) if b.in_controlled_shutdown => Some("it is in controlled shutdown"),
                Some(b) if b.fenced => Some("it is fenced"),
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            return Err(ControllerError::IneligibleReplica {
                topic: name.to_owned(),
                partition,
                broker,
                reason: reason.to_owned(),
            });
        }
    }
    let current_set: BTreeSet<i32> = current.isr.iter().copied().collect();
    if distinct == current_set {
        return Ok((None, PartitionState::from(current)));
    }
    let change = PartitionChangeBuilder::new(image, topic.topic_id, partition, current)
        .isr(request.new_isr.clone())
        .build();
    let state = change
        .as_ref()
        .map_or_else(|| PartitionState::from(current), |c| (&c.next).into());
    Ok((change, state))
}

impl Controller {
    /// AlterPartition: commits the ISR a partition leader asks for and returns the partition
    /// as committed (unchanged when the request asked for the current ISR).
    pub async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> Result<PartitionState, ControllerError> {
        self.alter_partitions(vec![request])
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(ControllerError::Internal(
                    "AlterPartition answered no partition".to_owned(),
                ))
            })
    }

    /// AlterPartition for several partitions: each is checked on its own against the state
    /// the ones before it leave, and every accepted change is committed in one batch, so a
    /// leader that gets many followers back at once (after a restart) costs one commit, not
    /// one per partition. One result per request, in order; if the commit fails, every
    /// accepted change gets its error.
    pub async fn alter_partitions(
        &self,
        requests: Vec<AlterPartitionRequest>,
    ) -> Vec<Result<PartitionState, ControllerError>> {
        let _state = self.inner.state.lock().await;
        let mut working = match self.leader_image() {
            Ok(image) => image,
            Err(error) => return requests.iter().map(|_| Err(error.clone())).collect(),
        };
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(requests.len());
        // Indexes of the results that hold only if the commit succeeds.
        let mut pending = Vec::new();
        for request in &requests {
            match plan_alter_partition(&working, request) {
                Ok((Some(change), state)) => {
                    tracing::info!(
                        topic_id = %request.topic_id,
                        partition = request.partition,
                        isr = ?state.isr,
                        partition_epoch = state.partition_epoch,
                        "ISR changed at the leader's request"
                    );
                    working = Arc::new(working.with_records(std::slice::from_ref(&change.record)));
                    records.push(change.record);
                    pending.push(results.len());
                    results.push(Ok(state));
                }
                Ok((None, state)) => results.push(Ok(state)),
                Err(error) => results.push(Err(error)),
            }
        }
        if let Err(error) = self.commit(records, false).await {
            for index in pending {
                results[index] = Err(error.clone());
            }
        }
        results
    }
}
