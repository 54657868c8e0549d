//! Who led in which term, as every node saw it: the record a split-brain check reads.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinSet;

use crate::quorum::MetadataQuorum;
use crate::raft_types::NodeId;

/// Leaders by term, from the Raft metrics of every node watched. A node reports a leader for
/// a term once its vote for that term is committed (it leads, or it accepted the leader's
/// entries), so two leaders of one term show up here from whichever nodes saw them.
#[derive(Debug, Clone, Default)]
pub struct LeaderLog {
    seen: Arc<Mutex<BTreeMap<u64, BTreeSet<NodeId>>>>,
}

impl LeaderLog {
    /// Records every leader `quorum` reports until its Raft node stops, from a task in `tasks`.
    pub fn watch(&self, quorum: &MetadataQuorum, tasks: &mut JoinSet<()>) {
        let mut metrics = quorum.raft().metrics();
        let seen = Arc::clone(&self.seen);
        tasks.spawn(async move {
            loop {
                {
                    let m = metrics.borrow_and_update();
                    if let Some(leader) = m.current_leader {
                        seen.lock()
                            .entry(m.current_term)
                            .or_default()
                            .insert(leader);
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Every `(term, leaders)` seen so far.
    pub fn by_term(&self) -> BTreeMap<u64, BTreeSet<NodeId>> {
        self.seen.lock().clone()
    }
}
