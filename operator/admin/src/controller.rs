//! Requests for the controller that carry a top-level error code (KIP-455 and KIP-460 APIs),
//! and the check that an answer covers every partition asked about.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    AlterPartitionReassignmentsResponse, ElectLeadersResponse, ListPartitionReassignmentsResponse,
};

use crate::AdminRequest;
use crate::client::{KafkaAdmin, Target};
use crate::error::AdminError;
use crate::replica_admin::TopicPartition;
use crate::topics::{CONTROLLER_ATTEMPTS, is_not_controller};

/// A response whose top-level error code may be `NOT_CONTROLLER`.
pub(crate) trait TopLevelError {
    fn top_level_error(&self) -> i16;
}

macro_rules! top_level_error {
    ($($response:ty),*) => {
        $(impl TopLevelError for $response {
            fn top_level_error(&self) -> i16 {
                self.error_code
            }
        })*
    };
}

top_level_error!(
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    ElectLeadersResponse
);

impl KafkaAdmin {
    /// `build` sent to the controller, once more after a top-level `NOT_CONTROLLER` (the
    /// controller moved between the metadata lookup and the request).
    pub(crate) async fn to_controller<R, F>(&self, build: F) -> Result<R::Response, AdminError>
    where
        R: AdminRequest,
        R::Response: TopLevelError,
        F: Fn(i16) -> R + Send + Sync,
    {
        self.try_to_controller(|version| Ok(build(version))).await
    }

    /// [`KafkaAdmin::to_controller`] with a `build` that may refuse the negotiated version.
    pub(crate) async fn try_to_controller<R, F>(&self, build: F) -> Result<R::Response, AdminError>
    where
        R: AdminRequest,
        R::Response: TopLevelError,
        F: Fn(i16) -> Result<R, AdminError> + Send + Sync,
    {
        let mut attempt = 1;
        loop {
            let (_, response) = self.try_send_to(Target::Controller, &build).await?;
            if is_not_controller(response.top_level_error()) && attempt < CONTROLLER_ATTEMPTS {
                attempt += 1;
                continue;
            }
            return Ok(response);
        }
    }

    /// A response that leaves out a partition it was asked about is not one this client can
    /// report on truthfully.
    pub(crate) fn expect_every_partition<'a, V>(
        &self,
        api: &'static str,
        asked: impl IntoIterator<Item = &'a TopicPartition>,
        answered: &BTreeMap<TopicPartition, V>,
    ) -> Result<(), AdminError> {
        match asked.into_iter().find(|tp| !answered.contains_key(*tp)) {
            None => Ok(()),
            Some(missing) => Err(AdminError::Protocol {
                broker: self.bootstrap().to_owned(),
                api,
                reason: format!("the response has no entry for partition {missing}"),
            }),
        }
    }
}
