//! What the coordinator's integration tests share: a coordinator over an in-memory
//! `__consumer_offsets` of [`PARTITIONS`] partitions, all loaded, with its timers running.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use strom_group::{CoordinatorOptions, GroupConfig, GroupCoordinator, MemoryOffsetsLog};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Partitions of the in-memory `__consumer_offsets`.
pub(crate) const PARTITIONS: i32 = 4;

pub(crate) fn code(e: ResponseError) -> i16 {
    e.code()
}

pub(crate) fn config() -> GroupConfig {
    GroupConfig {
        offsets_topic_partitions: PARTITIONS,
        ..GroupConfig::default()
    }
}

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub(crate) fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// A coordinator with every partition loaded and its timer running.
pub(crate) struct Broker {
    pub(crate) coordinator: GroupCoordinator<MemoryOffsetsLog>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Broker {
    pub(crate) async fn start(log: Arc<MemoryOffsetsLog>, config: GroupConfig) -> Self {
        Self::with_options(log, config, CoordinatorOptions::default()).await
    }

    pub(crate) async fn with_options(
        log: Arc<MemoryOffsetsLog>,
        config: GroupConfig,
        options: CoordinatorOptions,
    ) -> Self {
        let coordinator = GroupCoordinator::with_options(config, log, options);
        for p in 0..PARTITIONS {
            coordinator
                .load_partition(p)
                .await
                .expect("partition loads");
        }
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        tracker.spawn(coordinator.timer().run(cancel.clone()));
        Self {
            coordinator,
            tracker,
            cancel,
        }
    }

    pub(crate) async fn stop(self) {
        self.coordinator.shutdown().await;
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
