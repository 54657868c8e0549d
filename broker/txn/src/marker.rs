//! What the coordinator needs from the broker: writing transaction markers to the data
//! partitions, and allocating producer ids.

use std::future::Future;
use std::pin::Pin;

/// Writes COMMIT/ABORT control batches (Kafka's WriteTxnMarkers) to partitions, wherever
/// they are led.
pub trait MarkerWriter: Send + Sync + 'static {
    /// Writes one marker to each partition of `request`; a result per partition.
    fn write_markers(
        &self,
        request: MarkerRequest,
    ) -> impl Future<Output = Vec<MarkerResult>> + Send;
}

/// One transaction's markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerRequest {
    /// Producer id of the transaction.
    pub producer_id: i64,
    /// Epoch of the transaction (bumped when the abort fences the producer).
    pub producer_epoch: i16,
    /// Epoch of this coordinator's `__transaction_state` partition leadership.
    pub coordinator_epoch: i32,
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    /// `(topic, partition)` pairs to write the marker to.
    pub partitions: Vec<(String, i32)>,
}

/// The outcome of one partition's marker.
pub type MarkerResult = ((String, i32), Result<(), MarkerError>);

/// Why a marker was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerError {
    /// Try again later (leader moving, not enough replicas, request timed out).
    Retriable(String),
    /// The partition no longer exists: nothing to mark.
    UnknownPartition,
    /// A newer coordinator wrote markers for this producer: this coordinator stops.
    CoordinatorFenced,
}

/// Allocates producer ids unique across the cluster.
pub trait ProducerIdSource: Send + Sync + 'static {
    /// A producer id no producer has had.
    fn next_id(&self) -> impl Future<Output = Result<i64, String>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`ProducerIdSource`] behind a pointer, so the coordinator is generic only over its log and
/// marker writer.
pub(crate) trait DynProducerIdSource: Send + Sync + 'static {
    fn next_id_boxed(&self) -> BoxFuture<'_, Result<i64, String>>;
}

impl<P: ProducerIdSource> DynProducerIdSource for P {
    fn next_id_boxed(&self) -> BoxFuture<'_, Result<i64, String>> {
        Box::pin(self.next_id())
    }
}
