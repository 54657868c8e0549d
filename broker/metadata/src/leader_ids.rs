//! Decoding of votes and log ids in both forms the metadata quorum has stored.
//!
//! The quorum runs openraft with standard Raft leader ids (`single-term-leader`): at most one
//! leader is elected per term, so the term alone is the controller epoch and two controllers
//! never share one. A log id's leader is its term (`{"leader_id":7,"index":42}`) and a vote
//! names the term and the candidate it went to (`{"leader_id":{"term":7,"voted_for":2},...}`).
//!
//! Data directories written before that carry openraft's other form, where a leader id is the
//! pair `{"term":7,"node_id":2}` in log ids and votes alike, and where a second leader could
//! be elected in a term with a higher node id. Every stored file, log frame and peer message
//! is decoded with [`from_slice`]: the current form decodes directly; a value holding the
//! older form is rewritten first. The rewrite keeps every term, and a vote keeps the candidate
//! it was granted to, so a voter never votes twice in a term across the upgrade.

use serde::de::DeserializeOwned;
use serde_json::Map;
use serde_json::Value;

/// Decodes `bytes` as `T`, accepting leader ids in the older `{term, node_id}` form.
///
/// The older form must be found before decoding: a vote in it decodes as a vote of the current
/// form too, with no candidate (`voted_for` is optional and `node_id` unknown), which would let
/// the voter vote again in a term it already voted in.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    if !has_older_leader_id(bytes) {
        return serde_json::from_slice(bytes);
    }
    let mut value: Value = serde_json::from_slice(bytes)?;
    upgrade(&mut value);
    serde_json::from_value(value)
}

/// Whether `bytes` hold a leader id in the older form: a `"leader_id":{...}` object (flat, as
/// every leader id is) with a `"node_id"` field, in serde_json's compact output. Anything else
/// is decoded as it is.
fn has_older_leader_id(bytes: &[u8]) -> bool {
    const OPEN: &[u8] = br#""leader_id":{"#;
    const NODE: &[u8] = br#""node_id":"#;
    let mut rest = bytes;
    while let Some(at) = find(rest, OPEN) {
        let after = &rest[at + OPEN.len()..];
        let object = after.split(|b| *b == b'}').next().unwrap_or_default();
        if find(object, NODE).is_some() {
            return true;
        }
        rest = after;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Rewrites every older-form leader id under `value`.
///
/// In the older form a `leader_id` object `{term, node_id}` sits in a vote (beside
/// `committed`) or in a log id (beside `index`). A vote's becomes `{term, voted_for}`; a log
/// id's becomes its term.
fn upgrade(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(upgrade),
        Value::Object(fields) => {
            upgrade_leader_id(fields);
            fields.values_mut().for_each(upgrade);
        }
        _ => {}
    }
}

fn upgrade_leader_id(fields: &mut Map<String, Value>) {
    let Some(Value::Object(leader)) = fields.get("leader_id") else {
        return;
    };
    if leader.len() != 2 {
        return;
    }
    let (Some(term), Some(node)) = (leader.get("term").cloned(), leader.get("node_id").cloned())
    else {
        return;
    };
    let upgraded = if fields.contains_key("committed") {
        let mut vote = Map::new();
        vote.insert("term".to_owned(), term);
        vote.insert("voted_for".to_owned(), node);
        Value::Object(vote)
    } else {
        term
    };
    fields.insert("leader_id".to_owned(), upgraded);
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;
    use openraft::EntryPayload;
    use openraft::LogId;

    use super::*;
    use crate::raft_types::Entry;
    use crate::raft_types::StoredMembership;
    use crate::raft_types::Vote;

    #[test]
    fn the_current_forms_round_trip() {
        let vote = Vote::new_committed(7, 2);
        let json = serde_json::to_vec(&vote).expect("serializes");
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"leader_id":{"term":7,"voted_for":2},"committed":true}"#
        );
        assert_eq!(from_slice::<Vote>(&json).expect("decodes"), vote);
        let log_id = LogId::new(CommittedLeaderId::new(7, 2), 42);
        let json = serde_json::to_vec(&log_id).expect("serializes");
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"leader_id":7,"index":42}"#
        );
        assert_eq!(from_slice::<LogId<u64>>(&json).expect("decodes"), log_id);
    }

    #[test]
    fn older_votes_keep_their_term_and_candidate() {
        let committed = br#"{"leader_id":{"term":7,"node_id":2},"committed":true}"#;
        assert_eq!(
            from_slice::<Vote>(committed).expect("decodes"),
            Vote::new_committed(7, 2)
        );
        let granted = br#"{"leader_id":{"term":9,"node_id":1},"committed":false}"#;
        assert_eq!(
            from_slice::<Vote>(granted).expect("decodes"),
            Vote::new(9, 1)
        );
    }

    #[test]
    fn older_log_ids_entries_and_memberships_keep_their_terms_and_indexes() {
        let log_id = br#"{"leader_id":{"term":4,"node_id":3},"index":17}"#;
        assert_eq!(
            from_slice::<LogId<u64>>(log_id).expect("decodes"),
            LogId::new(CommittedLeaderId::new(4, 0), 17)
        );
        let purged = br#"null"#;
        assert_eq!(
            from_slice::<Option<LogId<u64>>>(purged).expect("decodes"),
            None
        );

        let entry =
            br#"{"log_id":{"leader_id":{"term":4,"node_id":3},"index":18},"payload":"Blank"}"#;
        let entry = from_slice::<Entry>(entry).expect("decodes");
        assert_eq!(entry.log_id, LogId::new(CommittedLeaderId::new(4, 0), 18));
        assert!(matches!(entry.payload, EntryPayload::Blank));

        let membership = br#"{"log_id":{"leader_id":{"term":1,"node_id":0},"index":1},"membership":{"configs":[[0]],"nodes":{"0":{"addr":"a:1"}}}}"#;
        let membership = from_slice::<StoredMembership>(membership).expect("decodes");
        assert_eq!(
            membership.log_id(),
            &Some(LogId::new(CommittedLeaderId::new(1, 0), 1))
        );
        assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_vote_granted_in_the_older_form_still_names_its_candidate() {
        // Decoded directly, this would be a vote of term 9 for no one, and the voter could
        // grant term 9 to a second candidate.
        let granted = br#"{"leader_id":{"term":9,"node_id":1},"committed":false}"#;
        let vote = from_slice::<Vote>(granted).expect("decodes");
        assert_eq!(vote.leader_id().voted_for(), Some(1));
        assert!(!vote.is_committed());
    }

    #[test]
    fn node_ids_elsewhere_are_left_alone() {
        let record = br#"{"leader_id":3,"index":5,"node_id":7}"#;
        assert!(!has_older_leader_id(record));
        let vote = br#"{"leader_id":{"term":7,"voted_for":2},"committed":true,"node_id":2}"#;
        assert!(!has_older_leader_id(vote));
        assert!(has_older_leader_id(
            br#"[{"x":1},{"leader_id":{"term":12,"node_id":0},"index":3}]"#
        ));
        assert!(has_older_leader_id(
            br#"{"index":3,"leader_id":{"node_id":0,"term":12}}"#
        ));
    }

    #[test]
    fn what_neither_form_decodes_is_an_error() {
        let error = from_slice::<Vote>(b"{not json").expect_err("garbage");
        assert!(error.is_syntax(), "{error}");
        let error = from_slice::<Vote>(br#"{"leader_id":3}"#).expect_err("neither form");
        assert!(error.is_data(), "{error}");
        let truncated = br#"{"leader_id":{"term":7,"node_id":"#;
        assert!(from_slice::<Vote>(truncated).is_err());
    }
}
