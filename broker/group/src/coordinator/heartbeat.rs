//! Heartbeat (API key 12).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::GroupCoordinator;
use crate::codes::*;
use crate::log::OffsetsLog;

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// Heartbeat: keeps the member's session alive and tells it when to rejoin
    /// (REBALANCE_IN_PROGRESS).
    pub async fn heartbeat(&self, req: HeartbeatRequest, version: i16) -> HeartbeatResponse {
        let group_id = req.group_id.0.as_str();
        let instance = if version >= 3 {
            req.group_instance_id.as_ref().map(|i| i.as_str())
        } else {
            None
        };
        let error = {
            let mut state = self.shared.state.lock();
            match self.check_group(&state, group_id, false) {
                // Kafka answers heartbeats blindly while loading: the member's session is
                // re-established from the loaded metadata.
                Err(COORDINATOR_LOAD_IN_PROGRESS) => NONE,
                Err(code) => code,
                Ok(_) => {
                    let now = self.now();
                    match state.groups.get_mut(group_id) {
                        Some(group) => group.heartbeat(
                            req.member_id.as_str(),
                            instance,
                            req.generation_id,
                            now,
                        ),
                        None => UNKNOWN_MEMBER_ID,
                    }
                }
            }
        };
        HeartbeatResponse::default().with_error_code(error)
    }
}
