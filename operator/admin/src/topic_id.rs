//! Topic ids in Kafka's text form.
//!
//! Kafka prints a topic id (`org.apache.kafka.common.Uuid.toString`) as the URL-safe base64 of
//! its 16 bytes without padding: 22 characters, e.g. `kT3fBqTZRqmcMjDgaJVBdw`. `kafka-topics.sh
//! --describe` and the Java admin client show that form, so the operator's status does too.

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The Kafka text form of a 16-byte topic id.
pub(crate) fn kafka_uuid_string(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let sextets = [
            b0 >> 2,
            (b0 & 0x03) << 4 | b1 >> 4,
            (b1 & 0x0f) << 2 | b2 >> 6,
            b2 & 0x3f,
        ];
        // A chunk of n bytes carries n + 1 sextets; no padding after the last.
        for &sextet in &sextets[..=chunk.len()] {
            out.push(char::from(URL_SAFE[usize::from(sextet)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafka_uuid_to_string() {
        // Kafka's Uuid.ZERO_UUID and Uuid.METADATA_TOPIC_ID print as these.
        assert_eq!(kafka_uuid_string(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        let mut metadata_topic_id = [0; 16];
        metadata_topic_id[15] = 1;
        assert_eq!(
            kafka_uuid_string(&metadata_topic_id),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        let all_ones = [0xff; 16];
        assert_eq!(kafka_uuid_string(&all_ones), "_____________________w");
        let id = [
            0x91, 0x3d, 0xdf, 0x06, 0xa4, 0xd9, 0x46, 0xa9, 0x9c, 0x32, 0x30, 0xe0, 0x68, 0x95,
            0x41, 0x77,
        ];
        assert_eq!(kafka_uuid_string(&id), "kT3fBqTZRqmcMjDgaJVBdw");
    }
}
