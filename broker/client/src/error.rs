//! [`ClientError`], and Kafka's names for error codes.

use std::collections::HashMap;
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::protocol::VersionRange;

/// What went wrong on a [`crate::Connection`].
///
/// Only [`ClientError::Encode`] and [`ClientError::UnsupportedApi`] leave the connection
/// usable: they are found before anything is written. After any other error the stream
/// position is unknown and the connection refuses further requests ([`ClientError::Closed`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No TCP connection could be made.
    #[error("cannot connect to Kafka broker at {broker}: {source}")]
    Connect {
        /// The address dialled, as given.
        broker: String,
        /// The socket error (`TimedOut` when the connect timeout expired).
        #[source]
        source: io::Error,
    },
    /// The connection failed while a request was on it (reset, closed by the broker).
    #[error("connection to Kafka broker {broker} failed during {api}: {source}")]
    Io {
        /// The broker address.
        broker: String,
        /// The API being exchanged.
        api: &'static str,
        /// The socket error (`UnexpectedEof` when the broker closed the connection).
        #[source]
        source: io::Error,
    },
    /// The broker did not answer within the request's timeout. A late answer would be taken
    /// for the next request's, so the connection is closed.
    #[error("{api} got no response from {broker} within {after:?}")]
    Timeout {
        /// The broker address.
        broker: String,
        /// The API being exchanged.
        api: &'static str,
        /// The timeout that expired.
        after: Duration,
    },
    /// The broker sent bytes this client cannot accept (bad frame size, undecodable body,
    /// correlation id mismatch, trailing bytes).
    #[error("protocol error in {api} with broker {broker}: {reason}")]
    Protocol {
        /// The broker address.
        broker: String,
        /// The API being exchanged.
        api: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The request cannot be encoded at that version (a field the version cannot carry, a
    /// version the codec does not know). Nothing was sent.
    #[error("cannot encode {api} v{version} for broker {broker}: {reason}")]
    Encode {
        /// The broker address.
        broker: String,
        /// The API.
        api: &'static str,
        /// The version asked for.
        version: i16,
        /// The codec's complaint.
        reason: String,
    },
    /// The broker implements no version of the API in the range the request type allows.
    /// Nothing was sent.
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
        /// The versions the request type allows.
        client_versions: VersionRange,
    },
    /// The connection failed earlier (or a request on it was abandoned midway) and carries no
    /// more requests; open a new one.
    #[error("connection to {broker} was closed after an earlier failure; {api} was not sent")]
    Closed {
        /// The broker address.
        broker: String,
        /// The API that was not sent.
        api: &'static str,
    },
    /// ApiVersions, sent while opening the connection, was answered with an error code.
    #[error(
        "{api} failed with {name} (Kafka error code {code}){}",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Kafka {
        /// The API whose response carried the error.
        api: &'static str,
        /// The Kafka error code.
        code: i16,
        /// Kafka's name for the code (see [`error_name`]).
        name: &'static str,
        /// The broker's error message, when the response carries one.
        message: Option<String>,
    },
}

impl ClientError {
    /// Whether the request may succeed on a new connection later: the broker was unreachable,
    /// went away or was slow, or answered with an error code Kafka marks retriable.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Io { .. } | Self::Timeout { .. } | Self::Closed { .. } => {
                true
            }
            Self::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            Self::Protocol { .. } | Self::Encode { .. } | Self::UnsupportedApi { .. } => false,
        }
    }

    /// Builds a [`ClientError::Kafka`] from a response's error code and message.
    pub(crate) fn kafka(api: &'static str, code: i16, message: Option<&str>) -> Self {
        Self::Kafka {
            api,
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }
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
            (6, "NOT_LEADER_OR_FOLLOWER"),
            (7, "REQUEST_TIMED_OUT"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (35, "UNSUPPORTED_VERSION"),
            (36, "TOPIC_ALREADY_EXISTS"),
            (37, "INVALID_PARTITIONS"),
            (38, "INVALID_REPLICATION_FACTOR"),
            (40, "INVALID_CONFIG"),
            (41, "NOT_CONTROLLER"),
            (56, "KAFKA_STORAGE_ERROR"),
            (74, "FENCED_LEADER_EPOCH"),
            (100, "UNKNOWN_TOPIC_ID"),
            (-2, "UNKNOWN_ERROR_CODE"),
            (30_000, "UNKNOWN_ERROR_CODE"),
        ];
        for (code, name) in cases {
            assert_eq!(error_name(code), name, "code {code}");
        }
    }

    #[test]
    fn retriable_errors() {
        let broker = || "127.0.0.1:9092".to_owned();
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        let range = VersionRange { min: 0, max: 1 };
        let cases = [
            (
                ClientError::Connect {
                    broker: broker(),
                    source: io(),
                },
                true,
            ),
            (
                ClientError::Io {
                    broker: broker(),
                    api: "Fetch",
                    source: io(),
                },
                true,
            ),
            (
                ClientError::Timeout {
                    broker: broker(),
                    api: "Fetch",
                    after: Duration::from_secs(1),
                },
                true,
            ),
            (
                ClientError::Closed {
                    broker: broker(),
                    api: "Fetch",
                },
                true,
            ),
            (ClientError::kafka("ApiVersions", 7, None), true),
            (ClientError::kafka("ApiVersions", 42, None), false),
            (
                ClientError::Protocol {
                    broker: broker(),
                    api: "Fetch",
                    reason: String::new(),
                },
                false,
            ),
            (
                ClientError::Encode {
                    broker: broker(),
                    api: "Fetch",
                    version: 99,
                    reason: String::new(),
                },
                false,
            ),
            (
                ClientError::UnsupportedApi {
                    broker: broker(),
                    api: "Fetch",
                    broker_versions: None,
                    client_versions: range,
                },
                false,
            ),
        ];
        for (err, retriable) in cases {
            assert_eq!(err.is_retriable(), retriable, "{err}");
        }
    }

    #[test]
    fn kafka_error_display_names_code_and_message() {
        let err = ClientError::kafka("ApiVersions", 42, Some("bad software name"));
        assert_eq!(
            err.to_string(),
            "ApiVersions failed with INVALID_REQUEST (Kafka error code 42): bad software name"
        );
        let err = ClientError::kafka("ApiVersions", 42, Some(""));
        assert_eq!(
            err.to_string(),
            "ApiVersions failed with INVALID_REQUEST (Kafka error code 42)"
        );
    }
}
