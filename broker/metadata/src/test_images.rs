//! Metadata images the controller's unit tests start from.

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The id of topic "t" in these images.
pub(crate) const TOPIC_ID: Uuid = Uuid::from_u128(9);

/// The incarnation broker `id` registers with.
pub(crate) fn incarnation(id: i32) -> Uuid {
    Uuid::from_u128(id as u128)
}

/// Unfenced registrations of brokers `ids`.
pub(crate) fn registrations(ids: impl IntoIterator<Item = i32>) -> Vec<MetadataRecord> {
    ids.into_iter()
        .map(|id| MetadataRecord::RegisterBroker {
            node_id: id,
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation: incarnation(id),
            fenced: false,
        })
        .collect()
}

/// Brokers 1..=3, all active, and topic "t" with the given (replicas, isr, leader) per
/// partition, every epoch 0.
pub(crate) fn topic_image(partitions: &[(&[i32], &[i32], i32)]) -> MetadataImage {
    let mut records = registrations(1..=3);
    records.push(MetadataRecord::Topic {
        name: "t".into(),
        topic_id: TOPIC_ID,
    });
    for (index, (replicas, isr, leader)) in (0..).zip(partitions) {
        records.push(MetadataRecord::Partition {
            topic_id: TOPIC_ID,
            partition: index,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: *leader,
            leader_epoch: 0,
            partition_epoch: 0,
        });
    }
    MetadataImage::empty("c").with_records(&records)
}
