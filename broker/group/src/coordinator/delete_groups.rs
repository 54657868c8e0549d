//! DeleteGroups (API key 42).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::GroupCoordinator;
use super::offset_commit::offset_tombstone;
use crate::codes::*;
use crate::log::OffsetsLog;
use crate::records::{KeyValue, RecordKey};
use crate::state::GroupState;

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// DeleteGroups: removes empty groups with their offsets (those of open transactions
    /// included, as Kafka does), writing tombstones so the deletion survives a coordinator move.
    pub async fn delete_groups(
        &self,
        req: DeleteGroupsRequest,
        _version: i16,
    ) -> DeleteGroupsResponse {
        let mut results = Vec::with_capacity(req.groups_names.len());
        for group_id in req.groups_names {
            let error = self.delete_group(group_id.0.as_str()).await;
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(error),
            );
        }
        DeleteGroupsResponse::default().with_results(results)
    }

    async fn delete_group(&self, group_id: &str) -> i16 {
        let partition = match self.check_group_now(group_id, true) {
            Ok(partition) => partition,
            Err(code) => return code,
        };
        let _writer = self.writer(partition).lock().await;
        let records: Vec<KeyValue> = {
            let state = self.shared.state.lock();
            if let Err(code) = self.check_group(&state, group_id, true) {
                return code;
            }
            let Some(group) = state.groups.get(group_id) else {
                return GROUP_ID_NOT_FOUND;
            };
            match group.state() {
                GroupState::Dead => return GROUP_ID_NOT_FOUND,
                GroupState::Empty => {}
                _ => return NON_EMPTY_GROUP,
            }
            // Offsets of open transactions go too (Kafka tombstones them as well, and a replay
            // drops pending offsets of a tombstoned partition).
            let mut partitions: Vec<(String, i32)> =
                group.offsets.iter().map(|(key, _)| key.clone()).collect();
            partitions.extend(group.pending.partitions());
            partitions.sort();
            partitions.dedup();
            let mut records: Vec<KeyValue> = partitions
                .iter()
                .filter_map(|(topic, partition)| offset_tombstone(group_id, topic, *partition))
                .collect();
            if let Ok(key) = (RecordKey::GroupMetadata {
                group: group_id.to_owned(),
            })
            .encode()
            {
                records.push((key, None));
            }
            records
        };
        // Tombstones first: if they cannot be written the group stays, and the client may retry.
        if let Err(error) = self.append(partition, records).await {
            tracing::warn!(group = group_id, partition, %error, "writing group tombstones failed");
            return error.error_code();
        }
        let mut state = self.shared.state.lock();
        let now = self.now();
        let deleted = state.groups.get_mut(group_id).map(|g| g.delete(now));
        state.groups.remove(group_id);
        // Nothing else writes this partition while the write lock is held, so the group is
        // still the empty group checked above.
        match deleted {
            Some(Ok(())) | None => NONE,
            Some(Err(code)) => code,
        }
    }
}
