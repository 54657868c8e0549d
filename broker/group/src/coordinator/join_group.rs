//! JoinGroup (API key 11).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::{ClientInfo, GroupCoordinator};
use crate::codes::*;
use crate::group::{Group, JoinOutcome, JoinRequest, JoinResult};
use crate::log::OffsetsLog;

enum Reply {
    Now(JoinResult),
    AfterStore(JoinResult),
    Parked(String, oneshot::Receiver<JoinResult>),
}

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// JoinGroup without connection facts (member ids get an empty client id prefix); prefer
    /// [`GroupCoordinator::join_group_with_client`].
    pub async fn join_group(&self, req: JoinGroupRequest, version: i16) -> JoinGroupResponse {
        self.join_group_with_client(req, version, ClientInfo::default())
            .await
    }

    /// JoinGroup: waits until the rebalance this join takes part in completes (up to the
    /// rebalance timeout), as Kafka parks the request.
    pub async fn join_group_with_client(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client: ClientInfo,
    ) -> JoinGroupResponse {
        let result = self.join(req, version, client).await;
        join_response(result, version)
    }

    async fn join(&self, req: JoinGroupRequest, version: i16, client: ClientInfo) -> JoinResult {
        let group_id = req.group_id.0.as_str().to_owned();
        let member_id = req.member_id.as_str().to_owned();
        let partition = match self.check_group_now(&group_id, false) {
            Ok(partition) => partition,
            Err(code) => return JoinResult::error(&member_id, code),
        };
        let t = self.shared.timeouts;
        let session = i64::from(req.session_timeout_ms);
        if session < t.min_session_timeout_ms || session > t.max_session_timeout_ms {
            return JoinResult::error(&member_id, INVALID_SESSION_TIMEOUT);
        }
        // JoinGroup v0 has no rebalance timeout: Kafka uses the session timeout.
        let rebalance_timeout_ms = if version == 0 || req.rebalance_timeout_ms <= 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        };
        let group_instance_id = if version >= 5 {
            req.group_instance_id
                .as_ref()
                .map(|i| i.as_str().to_owned())
        } else {
            None
        };
        let prefix = group_instance_id.as_deref().unwrap_or(&client.client_id);
        let fresh_member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        let join = JoinRequest {
            member_id: member_id.clone(),
            group_instance_id,
            client_id: client.client_id,
            client_host: client.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms,
            protocol_type: req.protocol_type.as_str().to_owned(),
            protocols: req
                .protocols
                .into_iter()
                .map(|p| (p.name.as_str().to_owned(), p.metadata))
                .collect(),
            require_known_member_id: version >= 4,
            fresh_member_id,
        };

        let writer = self.writer(partition).lock().await;
        let (reply, record) = {
            let mut state = self.shared.state.lock();
            if let Err(code) = self.check_group(&state, &group_id, false) {
                return JoinResult::error(&member_id, code);
            }
            let now = self.now();
            if !state.groups.contains_key(&group_id) {
                if !member_id.is_empty() {
                    return JoinResult::error(&member_id, UNKNOWN_MEMBER_ID);
                }
                state
                    .groups
                    .insert(group_id.clone(), Group::new(&group_id, now));
            }
            let Some(group) = state.groups.get_mut(&group_id) else {
                return JoinResult::error(&member_id, COORDINATOR_NOT_AVAILABLE);
            };
            let (outcome, effects) = group.join(join, now, &t);
            let mut store = false;
            let reply = match outcome {
                JoinOutcome::Reply(result) => Reply::Now(result),
                JoinOutcome::StoreThenReply(result) => {
                    store = true;
                    Reply::AfterStore(result)
                }
                JoinOutcome::Await { member_id } => {
                    let rx = state.park_join(&group_id, &member_id);
                    Reply::Parked(member_id, rx)
                }
            };
            store |= state.deliver(&group_id, effects);
            let record = if store {
                state
                    .groups
                    .get(&group_id)
                    .and_then(|g| Self::group_record(g, None))
            } else {
                None
            };
            if record.is_none() {
                // A group this failed join created and nothing persisted: forget it.
                state.drop_if_disposable(&group_id);
            }
            self.wake_timer();
            (reply, record)
        };
        let stored = match record {
            Some(record) => self.append(partition, vec![record]).await.map(|_| ()),
            None => Ok(()),
        };
        drop(writer);
        match reply {
            Reply::Now(result) => result,
            Reply::AfterStore(result) => match stored {
                Ok(()) => result,
                Err(error) => JoinResult::error(&result.member_id, error.error_code()),
            },
            Reply::Parked(member_id, rx) => {
                if let Err(error) = stored {
                    tracing::warn!(group = %group_id, partition, %error, "persisting group metadata failed");
                }
                rx.await
                    .unwrap_or_else(|_| JoinResult::error(&member_id, NOT_COORDINATOR))
            }
        }
    }
}

fn join_response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let protocol_name = match result.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        // Before v7 the protocol name is not nullable: Kafka sends "".
        None if version < 7 => Some(StrBytes::new()),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation_id)
        .with_protocol_type(if version >= 7 {
            result.protocol_type.map(StrBytes::from_string)
        } else {
            None
        })
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(result.leader_id))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
