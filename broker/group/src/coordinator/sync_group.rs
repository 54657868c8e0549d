//! SyncGroup (API key 14).

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;

use super::GroupCoordinator;
use crate::codes::*;
use crate::group::{SyncOutcome, SyncResult};
use crate::log::OffsetsLog;

enum Pending {
    Wait(oneshot::Receiver<SyncResult>),
    Store {
        rx: oneshot::Receiver<SyncResult>,
        generation: i32,
        assignments: HashMap<String, Bytes>,
        record: Option<crate::records::KeyValue>,
    },
}

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// SyncGroup: followers wait for the leader's assignment; the leader's assignment is
    /// persisted before anyone receives it.
    pub async fn sync_group(&self, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        let result = self.sync(req, version).await;
        SyncGroupResponse::default()
            .with_error_code(result.error)
            .with_protocol_type(if version >= 5 {
                result.protocol_type.map(StrBytes::from_string)
            } else {
                None
            })
            .with_protocol_name(if version >= 5 {
                result.protocol_name.map(StrBytes::from_string)
            } else {
                None
            })
            .with_assignment(result.assignment)
    }

    async fn sync(&self, req: SyncGroupRequest, version: i16) -> SyncResult {
        let group_id = req.group_id.0.as_str().to_owned();
        let member_id = req.member_id.as_str().to_owned();
        let partition = match self.check_group_now(&group_id, false) {
            Ok(partition) => partition,
            // The group state is about to be replaced by the loaded one: make the member rejoin.
            Err(COORDINATOR_LOAD_IN_PROGRESS) => return SyncResult::error(REBALANCE_IN_PROGRESS),
            Err(code) => return SyncResult::error(code),
        };
        let instance = if version >= 3 {
            req.group_instance_id.as_ref().map(|i| i.as_str())
        } else {
            None
        };
        let protocol_type = if version >= 5 {
            req.protocol_type.as_ref().map(|p| p.as_str())
        } else {
            None
        };
        let protocol_name = if version >= 5 {
            req.protocol_name.as_ref().map(|p| p.as_str())
        } else {
            None
        };
        let assignments: Vec<(String, Bytes)> = req
            .assignments
            .iter()
            .map(|a| (a.member_id.as_str().to_owned(), a.assignment.clone()))
            .collect();
        let t = self.shared.timeouts;

        let writer = self.writer(partition).lock().await;
        let pending = {
            let mut state = self.shared.state.lock();
            if let Err(code) = self.check_group(&state, &group_id, false) {
                return SyncResult::error(code);
            }
            let now = self.now();
            let Some(group) = state.groups.get_mut(&group_id) else {
                return SyncResult::error(UNKNOWN_MEMBER_ID);
            };
            let outcome = group.sync(
                &member_id,
                instance,
                req.generation_id,
                protocol_type,
                protocol_name,
                assignments,
                now,
            );
            match outcome {
                SyncOutcome::Reply(result) => return result,
                SyncOutcome::Await => Pending::Wait(state.park_sync(&group_id, &member_id)),
                SyncOutcome::StoreAssignment {
                    generation,
                    assignments,
                } => {
                    let record = Self::group_record(group, Some(&assignments));
                    let rx = state.park_sync(&group_id, &member_id);
                    Pending::Store {
                        rx,
                        generation,
                        assignments,
                        record,
                    }
                }
            }
        };
        self.wake_timer();
        let rx = match pending {
            Pending::Wait(rx) => {
                drop(writer);
                rx
            }
            Pending::Store {
                rx,
                generation,
                assignments,
                record,
            } => {
                let stored = match record {
                    Some(record) => self
                        .append(partition, vec![record])
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            tracing::warn!(group = %group_id, partition, error = %e, "persisting the assignment failed");
                            e.error_code()
                        }),
                    None => Err(COORDINATOR_NOT_AVAILABLE),
                };
                let follow_up = {
                    let mut state = self.shared.state.lock();
                    let now = self.now();
                    let effects = match state.groups.get_mut(&group_id) {
                        Some(group) => {
                            group.assignment_stored(generation, assignments, stored, now, &t)
                        }
                        None => Vec::new(),
                    };
                    let store = state.deliver(&group_id, effects);
                    let record = if store {
                        state
                            .groups
                            .get(&group_id)
                            .and_then(|g| Self::group_record(g, None))
                    } else {
                        None
                    };
                    self.wake_timer();
                    record
                };
                self.append_logged(partition, &group_id, follow_up).await;
                drop(writer);
                rx
            }
        };
        rx.await
            .unwrap_or_else(|_| SyncResult::error(NOT_COORDINATOR))
    }
}
