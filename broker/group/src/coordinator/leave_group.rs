//! LeaveGroup (API key 13).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::GroupCoordinator;
use crate::codes::*;
use crate::log::OffsetsLog;

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// LeaveGroup: v0-2 one member by id; v3+ a batch of members, by member id or by
    /// `group.instance.id` alone (KIP-345 admin removal).
    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let group_id = req.group_id.0.as_str().to_owned();
        let leaving: Vec<(String, Option<String>)> = if version >= 3 {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.as_str().to_owned(),
                        m.group_instance_id.as_ref().map(|i| i.as_str().to_owned()),
                    )
                })
                .collect()
        } else {
            vec![(req.member_id.as_str().to_owned(), None)]
        };
        let (top, errors) = self.leave(&group_id, &leaving).await;
        if version >= 3 {
            LeaveGroupResponse::default()
                .with_error_code(top)
                .with_members(
                    leaving
                        .into_iter()
                        .zip(errors)
                        .map(|((member_id, instance), error)| {
                            MemberResponse::default()
                                .with_member_id(StrBytes::from_string(member_id))
                                .with_group_instance_id(instance.map(StrBytes::from_string))
                                .with_error_code(error)
                        })
                        .collect(),
                )
        } else {
            let error = if top != NONE {
                top
            } else {
                errors.first().copied().unwrap_or(NONE)
            };
            LeaveGroupResponse::default().with_error_code(error)
        }
    }

    /// Top-level error and one error per leaving member.
    async fn leave(&self, group_id: &str, leaving: &[(String, Option<String>)]) -> (i16, Vec<i16>) {
        let partition = match self.check_group_now(group_id, false) {
            Ok(partition) => partition,
            Err(code) => return (code, Vec::new()),
        };
        let _writer = self.writer(partition).lock().await;
        let (errors, record) = {
            let mut state = self.shared.state.lock();
            if let Err(code) = self.check_group(&state, group_id, false) {
                return (code, Vec::new());
            }
            let now = self.now();
            let t = self.shared.timeouts;
            let Some(group) = state.groups.get_mut(group_id) else {
                return (NONE, vec![UNKNOWN_MEMBER_ID; leaving.len()]);
            };
            let mut effects = Vec::new();
            let errors: Vec<i16> = leaving
                .iter()
                .map(|(member_id, instance)| {
                    group.leave(member_id, instance.as_deref(), now, &t, &mut effects)
                })
                .collect();
            let record = if state.deliver(group_id, effects) {
                state
                    .groups
                    .get(group_id)
                    .and_then(|g| Self::group_record(g, None))
            } else {
                None
            };
            self.wake_timer();
            (errors, record)
        };
        self.append_logged(partition, group_id, record).await;
        (NONE, errors)
    }
}
