//! DescribeGroups (API key 15).

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::GroupCoordinator;
use crate::log::OffsetsLog;
use crate::state::GroupState;

/// READ, DELETE and DESCRIBE: what any client may do to a group without an authorizer.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// DescribeGroups: state, protocol and members; member metadata and assignments only for a
    /// Stable group. An unknown group is reported Dead with no error, as Kafka does before v6.
    pub async fn describe_groups(
        &self,
        req: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let state = self.shared.state.lock();
        let groups = req
            .groups
            .into_iter()
            .map(|group_id| {
                let mut described = DescribedGroup::default().with_group_id(group_id.clone());
                if version >= 3 && req.include_authorized_operations {
                    described = described.with_authorized_operations(GROUP_OPERATIONS);
                }
                if let Err(code) = self.check_group(&state, group_id.0.as_str(), true) {
                    return described.with_error_code(code);
                }
                let Some(group) = state.groups.get(group_id.0.as_str()) else {
                    return described
                        .with_group_state(StrBytes::from_static_str(GroupState::Dead.as_str()));
                };
                let protocol = if group.state() == GroupState::Stable {
                    group.protocol_name().unwrap_or_default()
                } else {
                    ""
                };
                described
                    .with_group_state(StrBytes::from_static_str(group.state().as_str()))
                    .with_protocol_type(StrBytes::from_string(
                        group.protocol_type().unwrap_or_default().to_owned(),
                    ))
                    .with_protocol_data(StrBytes::from_string(protocol.to_owned()))
                    .with_members(
                        group
                            .member_summaries()
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id))
                                    .with_group_instance_id(if version >= 4 {
                                        m.group_instance_id.map(StrBytes::from_string)
                                    } else {
                                        None
                                    })
                                    .with_client_id(StrBytes::from_string(m.client_id))
                                    .with_client_host(StrBytes::from_string(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    )
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
