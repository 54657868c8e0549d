//! Producer ids for idempotent producers, taken from blocks the controller commits to the
//! metadata log (KIP-730), so an id is never handed out twice — not across restarts, and not
//! across brokers once there are several.

use tokio::sync::Mutex;

use strom_metadata::ControllerError;

use crate::controller_channel::ControllerChannel;

/// Ids fetched from the controller at a time.
const BLOCK_SIZE: i64 = 1000;

/// Hands out producer ids from the current block, fetching a new block when it runs out.
#[derive(Debug)]
pub struct ProducerIdManager {
    node_id: i32,
    /// (next id, end of the block, exclusive)
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(node_id: i32) -> ProducerIdManager {
        ProducerIdManager {
            node_id,
            block: Mutex::new((0, 0)),
        }
    }

    /// A producer id no other producer has had.
    pub async fn next_id(
        &self,
        controller: &impl ControllerChannel,
    ) -> Result<i64, ControllerError> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let first = controller
                .allocate_producer_ids(self.node_id, BLOCK_SIZE)
                .await?;
            *block = (first, first + BLOCK_SIZE);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
