//! Reading quorum state written with `(term, node id)` leader ids.
//!
//! The quorum elects one leader per term (openraft's `single-term-leader`), so a log id carries
//! the term alone (`"leader_id":5`) and a vote the term and the candidate voted for
//! (`"leader_id":{"term":5,"voted_for":2}`). Data directories and peers of earlier versions
//! used openraft's default leader ids, `{"term":5,"node_id":2}`, under which two leaders could
//! share a term. Such JSON decodes here with each old leader id `(t, n)` mapped to the term
//! `t * 2^16 + n`: old ids were ordered by term and then node id, and the mapping keeps that
//! order and keeps two leaders of one old term apart, so entries they wrote never compare equal
//! and Raft's log matching still holds across the upgrade.
//!
//! Without this step an old vote would decode silently wrong (serde reads the missing
//! `voted_for` as "no vote"), and an old log entry would not decode at all.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Old node ids are packed under the term; larger ones cannot be mapped.
const NODE_BITS: u32 = 16;

/// Decodes `bytes` as `T`, first mapping any old-form leader id as the module describes.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    if !mentions_node_id(bytes) {
        return serde_json::from_slice(bytes);
    }
    let mut value: Value = serde_json::from_slice(bytes)?;
    upgrade(&mut value).map_err(serde::de::Error::custom)?;
    serde_json::from_value(value)
}

/// Whether the JSON could hold an old leader id: every one has a `node_id` key, and today's
/// forms have none, so most payloads skip the slower path.
fn mentions_node_id(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"\"node_id\"";
    bytes.windows(KEY.len()).any(|w| w == KEY)
}

/// Replaces every old leader id in `value`: under a vote (an object with `committed`) by
/// `{"term", "voted_for"}`, under a log id by the bare term.
fn upgrade(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Array(items) => items.iter_mut().try_for_each(upgrade),
        Value::Object(map) => {
            let in_vote = map.contains_key("committed");
            if let Some(id) = map.get_mut("leader_id")
                && let Some((term, node)) = old_leader_id(id)
            {
                let term = mapped_term(term, node)?;
                *id = if in_vote {
                    serde_json::json!({ "term": term, "voted_for": node })
                } else {
                    Value::from(term)
                };
            }
            map.values_mut().try_for_each(upgrade)
        }
        _ => Ok(()),
    }
}

fn old_leader_id(id: &Value) -> Option<(u64, u64)> {
    let fields = id.as_object()?;
    if fields.len() != 2 {
        return None;
    }
    Some((
        fields.get("term")?.as_u64()?,
        fields.get("node_id")?.as_u64()?,
    ))
}

fn mapped_term(term: u64, node: u64) -> Result<u64, String> {
    if node >> NODE_BITS != 0 {
        return Err(format!(
            "leader id (term {term}, node {node}) of an earlier version: node ids from 2^{NODE_BITS} up cannot be upgraded"
        ));
    }
    term.checked_mul(1 << NODE_BITS)
        .map(|t| t | node)
        .ok_or_else(|| {
            format!("leader id (term {term}, node {node}): the term is too large to upgrade")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_types::Entry;
    use crate::raft_types::LogId;
    use crate::raft_types::Vote;

    #[test]
    fn old_log_ids_keep_their_order_and_stay_distinct() {
        let decode = |json: &str| from_slice::<LogId>(json.as_bytes()).expect("decodes");
        let first = decode(r#"{"leader_id":{"term":3,"node_id":1},"index":7}"#);
        let second = decode(r#"{"leader_id":{"term":3,"node_id":2},"index":7}"#);
        let next_term = decode(r#"{"leader_id":{"term":4,"node_id":0},"index":7}"#);
        assert_eq!(first.leader_id.term, 3 * 65536 + 1);
        assert_eq!(first.index, 7);
        assert_ne!(first, second, "two leaders of one old term stay apart");
        assert!(first < second && second < next_term);
        let initial = decode(r#"{"leader_id":{"term":0,"node_id":0},"index":0}"#);
        assert_eq!(
            initial,
            LogId::new(openraft::CommittedLeaderId::new(0, 0), 0)
        );
    }

    #[test]
    fn an_old_vote_keeps_whom_it_voted_for() {
        let vote: Vote =
            from_slice(br#"{"leader_id":{"term":5,"node_id":2},"committed":true}"#).expect("vote");
        assert_eq!(vote, Vote::new_committed(5 * 65536 + 2, 2));
        let candidate: Vote =
            from_slice(br#"{"leader_id":{"term":5,"node_id":3},"committed":false}"#).expect("vote");
        assert_eq!(candidate, Vote::new(5 * 65536 + 3, 3));
        assert!(vote < Vote::new(5 * 65536 + 4, 1));
    }

    #[test]
    fn todays_forms_and_other_node_ids_decode_unchanged() {
        let vote = Vote::new_committed(9, 1);
        let json = serde_json::to_vec(&vote).expect("encodes");
        assert!(!mentions_node_id(&json));
        assert_eq!(from_slice::<Vote>(&json).expect("decodes"), vote);
        // A `node_id` elsewhere (a broker registration) is not a leader id.
        let value: Value =
            from_slice(br#"{"node_id":3,"leader_id":7,"x":{"node_id":4,"term":1,"a":0}}"#)
                .expect("decodes");
        assert_eq!(value["leader_id"], 7);
        assert_eq!(value["x"]["node_id"], 4);
    }

    #[test]
    fn an_old_entry_decodes_whole() {
        let json =
            br#"{"log_id":{"leader_id":{"term":2,"node_id":1},"index":4},"payload":"Blank"}"#;
        let entry: Entry = from_slice(json).expect("decodes");
        assert_eq!(entry.log_id.leader_id.term, 2 * 65536 + 1);
        assert_eq!(entry.log_id.index, 4);
    }

    #[test]
    fn ids_that_cannot_be_mapped_are_refused() {
        for json in [
            r#"{"leader_id":{"term":1,"node_id":65536},"index":1}"#,
            r#"{"leader_id":{"term":18446744073709551615,"node_id":1},"index":1}"#,
        ] {
            let err = from_slice::<LogId>(json.as_bytes()).expect_err("refused");
            assert!(
                err.to_string().contains("cannot be upgraded")
                    || err.to_string().contains("too large"),
                "{err}"
            );
        }
    }
}
