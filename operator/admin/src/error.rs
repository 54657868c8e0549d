//! The admin client's error type and the Kafka error-code name table.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::protocol::VersionRange;

/// Everything that can go wrong talking to a Kafka-compatible broker.
///
/// `Unreachable`, `Timeout` and retriable `Kafka` errors are worth retrying (see
/// [`AdminError::is_retriable`]); `Protocol` and `UnsupportedApi` mean the broker and this
/// client disagree about the wire format and retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No TCP connection could be made, or an open connection failed while a request was on it.
    #[error("cannot reach Kafka broker at {bootstrap}: {source}")]
    Unreachable {
        /// The address (or bootstrap list) that was dialled.
        bootstrap: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The broker answered with a Kafka error code.
    #[error(
        "{api} failed with {name} (Kafka error code {code}){}",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Kafka {
        /// The API whose response carried the error, e.g. `CreateTopics`.
        api: &'static str,
        /// The Kafka error code.
        code: i16,
        /// Kafka's name for the code, e.g. `TOPIC_ALREADY_EXISTS` (see [`error_name`]).
        name: &'static str,
        /// The broker's error message, when the response version carries one.
        message: Option<String>,
    },
    /// The broker sent bytes this client cannot accept (bad frame size, undecodable body,
    /// correlation id mismatch, trailing bytes). The connection was closed.
    #[error("protocol error in {api} with broker {broker}: {reason}")]
    Protocol {
        /// The broker address the connection was open to.
        broker: String,
        /// The API being exchanged.
        api: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The broker did not answer within the request timeout. The connection was closed, since a
    /// late answer would otherwise be taken for the next request's.
    #[error("{api} got no response within {after:?}")]
    Timeout {
        /// The API being exchanged.
        api: &'static str,
        /// The timeout that expired.
        after: Duration,
    },
    /// The broker implements no version of an API that this client implements.
    #[error(
        "broker {broker} supports {api} versions {}, this client implements {client_versions}",
        broker_versions.map(|r| r.to_string()).unwrap_or_else(|| "none".to_owned())
    )]
    UnsupportedApi {
        /// The broker address.
        broker: String,
        /// The API.
        api: &'static str,
        /// The versions the broker advertised in ApiVersions (`None`: the API is not listed).
        broker_versions: Option<VersionRange>,
        /// The versions this client implements.
        client_versions: VersionRange,
    },
}

impl AdminError {
    /// The Kafka error behind a [`AdminError::Kafka`], for matching on a specific code.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            Self::Kafka { code, .. } => ResponseError::try_from_code(*code),
            _ => None,
        }
    }

    /// Whether the same request may succeed if sent again later: the broker was unreachable or
    /// slow, or Kafka marks the error code retriable (e.g. `LEADER_NOT_AVAILABLE`,
    /// `NOT_CONTROLLER`).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => true,
            Self::Kafka { .. } => self.kafka_error().is_some_and(|e| e.is_retriable()),
            Self::Protocol { .. } | Self::UnsupportedApi { .. } => false,
        }
    }

    /// Builds a [`AdminError::Kafka`] from a response's error code and message.
    pub(crate) fn kafka(api: &'static str, code: i16, message: Option<&str>) -> Self {
        Self::Kafka {
            api,
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }
    }
}

/// `Ok(())` for error code 0, the matching [`AdminError::Kafka`] otherwise.
pub(crate) fn check(api: &'static str, code: i16, message: Option<&str>) -> Result<(), AdminError> {
    if code == 0 {
        Ok(())
    } else {
        Err(AdminError::kafka(api, code, message))
    }
}

/// Kafka's name for an error code, as the protocol guide and the Java client spell it
/// (`3` → `UNKNOWN_TOPIC_OR_PARTITION`, `0` → `NONE`). Codes this table does not know map
/// to `UNKNOWN_ERROR_CODE`.
///
/// The names come from `kafka_protocol::ResponseError`, so the table follows that crate as
/// Kafka adds codes.
pub fn error_name(code: i16) -> &'static str {
    if code == 0 {
        return "NONE";
    }
    static NAMES: OnceLock<HashMap<i16, &'static str>> = OnceLock::new();
    NAMES
        .get_or_init(build_name_table)
        .get(&code)
        .copied()
        .unwrap_or("UNKNOWN_ERROR_CODE")
}

fn build_name_table() -> HashMap<i16, &'static str> {
    (-1..=i16::MAX)
        .filter_map(|code| match ResponseError::try_from_code(code) {
            Some(ResponseError::Unknown(_)) | None => None,
            // Leaked once into a process-wide table: about 130 short strings.
            Some(known) => Some((code, &*screaming_snake(&known.to_string()).leak())),
        })
        .collect()
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    let mut previous_lower = false;
    for c in camel.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_match_kafka() {
        let cases = [
            (-1, "UNKNOWN_SERVER_ERROR"),
            (0, "NONE"),
            (3, "UNKNOWN_TOPIC_OR_PARTITION"),
            (5, "LEADER_NOT_AVAILABLE"),
            (7, "REQUEST_TIMED_OUT"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (35, "UNSUPPORTED_VERSION"),
            (36, "TOPIC_ALREADY_EXISTS"),
            (37, "INVALID_PARTITIONS"),
            (38, "INVALID_REPLICATION_FACTOR"),
            (40, "INVALID_CONFIG"),
            (41, "NOT_CONTROLLER"),
            (56, "KAFKA_STORAGE_ERROR"),
            (100, "UNKNOWN_TOPIC_ID"),
            (-2, "UNKNOWN_ERROR_CODE"),
            (30_000, "UNKNOWN_ERROR_CODE"),
        ];
        for (code, name) in cases {
            assert_eq!(error_name(code), name, "code {code}");
        }
    }

    #[test]
    fn kafka_error_display_names_code_and_message() {
        let err = AdminError::kafka("CreateTopics", 36, Some("Topic 'orders' already exists."));
        assert_eq!(
            err.to_string(),
            "CreateTopics failed with TOPIC_ALREADY_EXISTS (Kafka error code 36): \
             Topic 'orders' already exists."
        );
        assert_eq!(err.kafka_error(), Some(ResponseError::TopicAlreadyExists));
        assert!(!err.is_retriable());
        let err = AdminError::kafka("CreateTopics", 41, Some(""));
        assert_eq!(
            err.to_string(),
            "CreateTopics failed with NOT_CONTROLLER (Kafka error code 41)"
        );
        assert!(err.is_retriable());
    }
}
