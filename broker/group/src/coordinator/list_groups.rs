//! ListGroups (API key 16).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{GroupCoordinator, PartitionStatus};
use crate::codes::*;
use crate::log::OffsetsLog;
use crate::state::GroupState;

/// Every group here runs the classic protocol (KIP-848 group types, ListGroups v5).
const CLASSIC_GROUP_TYPE: &str = "classic";

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// ListGroups: the groups this coordinator holds, filtered by state (v4+) and type (v5+).
    pub async fn list_groups(&self, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let states: Vec<&str> = if version >= 4 {
            req.states_filter.iter().map(|s| s.as_str()).collect()
        } else {
            Vec::new()
        };
        let types: Vec<&str> = if version >= 5 {
            req.types_filter.iter().map(|s| s.as_str()).collect()
        } else {
            Vec::new()
        };
        let state = self.shared.state.lock();
        if state.shut_down {
            return ListGroupsResponse::default().with_error_code(COORDINATOR_NOT_AVAILABLE);
        }
        // Kafka reports loading but still lists the groups it has.
        let loading = state
            .partitions
            .values()
            .any(|s| matches!(s, PartitionStatus::Loading(_)));
        let type_ok = types.is_empty()
            || types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        let mut groups: Vec<ListedGroup> = state
            .groups
            .values()
            .filter(|g| g.state() != GroupState::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state().as_str()))
            })
            .filter(|_| type_ok)
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(g.group_id().to_owned())))
                    .with_protocol_type(StrBytes::from_string(
                        g.protocol_type().unwrap_or_default().to_owned(),
                    ))
                    .with_group_state(StrBytes::from_static_str(g.state().as_str()))
                    .with_group_type(StrBytes::from_static_str(CLASSIC_GROUP_TYPE))
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        ListGroupsResponse::default()
            .with_error_code(if loading {
                COORDINATOR_LOAD_IN_PROGRESS
            } else {
                NONE
            })
            .with_groups(groups)
    }
}
