//! The topic id pin: a Topic manages the Kafka topic whose id it recorded in `status.topicId`
//! when it created or adopted it, not whatever topic has the name now.
//!
//! A Kafka topic deleted and re-created under the same name by someone else gets a new id. The
//! Topic then reports `TopicIdChanged` and neither adopts nor changes (nor, on deletion,
//! deletes) the new topic until the user accepts it: the annotation
//! `strom.io/accept-topic-id: <new id>` (or removing `status.topicId`). The annotation names
//! one id, so a topic re-created once more is reported again. A topic that is simply gone is
//! created again, as the spec asks, and the new id recorded.

/// How the Kafka topic's id compares with the one the Topic recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Nothing recorded yet (a new Topic, or the user removed `status.topicId`): the topic is
    /// created or adopted and its id recorded.
    Unrecorded,
    /// The recorded id, or a broker that reports no topic ids (nothing to compare).
    Same,
    /// A different id that the accept annotation names: adopt it and record it.
    Accepted {
        /// The id recorded before.
        recorded: String,
    },
    /// A different id nobody accepted: report, change nothing.
    Changed {
        /// The id the Topic recorded.
        recorded: String,
        /// The id the Kafka topic has now.
        observed: String,
    },
}

/// Compares `observed` (the Kafka topic's id; empty from brokers without topic ids) with
/// `recorded` (`status.topicId`), given the id the accept annotation names.
pub fn identity(recorded: Option<&str>, observed: &str, accepted: Option<&str>) -> Identity {
    match recorded {
        None => Identity::Unrecorded,
        Some(recorded) if observed.is_empty() || recorded == observed => Identity::Same,
        Some(recorded) if accepted == Some(observed) => Identity::Accepted {
            recorded: recorded.to_owned(),
        },
        Some(recorded) => Identity::Changed {
            recorded: recorded.to_owned(),
            observed: observed.to_owned(),
        },
    }
}

impl Identity {
    /// What the `TopicIdChanged` condition and Event say, for [`Identity::Changed`].
    pub fn changed_message(&self, topic: &str) -> Option<String> {
        match self {
            Self::Changed { recorded, observed } => Some(format!(
                "Kafka topic {topic} now has id {observed}, but this Topic manages the topic with id \
                 {recorded}: it was deleted and re-created outside this Topic. Nothing is changed \
                 or deleted. To manage the new topic, annotate the Topic with \
                 strom.io/accept-topic-id={observed}"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "AAAAAAAAAAAAAAAAAAAAAQ";
    const NEW: &str = "q7XkR0bBQ9OZ7J6m9m1yFw";

    #[test]
    fn first_sight_records_the_id() {
        assert_eq!(identity(None, NEW, None), Identity::Unrecorded);
    }

    #[test]
    fn the_same_id_is_the_same_topic() {
        assert_eq!(identity(Some(OLD), OLD, None), Identity::Same);
        assert_eq!(
            identity(Some(OLD), "", None),
            Identity::Same,
            "no id to compare"
        );
    }

    #[test]
    fn a_new_id_is_reported_until_accepted() {
        let changed = identity(Some(OLD), NEW, None);
        assert_eq!(
            changed,
            Identity::Changed {
                recorded: OLD.to_owned(),
                observed: NEW.to_owned()
            }
        );
        let message = changed.changed_message("orders").expect("message");
        assert!(message.contains(NEW) && message.contains(OLD), "{message}");
        assert!(message.contains("strom.io/accept-topic-id="), "{message}");
        assert_eq!(
            identity(Some(OLD), NEW, Some(OLD)),
            changed,
            "accepting another id accepts nothing"
        );
        assert_eq!(
            identity(Some(OLD), NEW, Some(NEW)),
            Identity::Accepted {
                recorded: OLD.to_owned()
            }
        );
    }
}
