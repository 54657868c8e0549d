//! The admin client's error type.

use std::io;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::protocol::VersionRange;
use strom_client::{ClientError, error_name};

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

/// A Kafka error code one entry of a response carried (a partition, a topic, a log dir),
/// when the request as a whole succeeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name} (Kafka error code {code}){}",
    message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
)]
pub struct KafkaError {
    /// The Kafka error code.
    pub code: i16,
    /// Kafka's name for the code, e.g. `NO_REASSIGNMENT_IN_PROGRESS` (see [`error_name`]).
    pub name: &'static str,
    /// The broker's error message, when the response carries one.
    pub message: Option<String>,
}

impl KafkaError {
    /// The error for `code`, with the broker's message when it sent a non-empty one.
    pub fn new(code: i16, message: Option<&str>) -> Self {
        Self {
            code,
            name: error_name(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }
    }

    /// `Ok(())` for error code 0.
    pub(crate) fn check(code: i16, message: Option<&str>) -> Result<(), KafkaError> {
        if code == 0 {
            Ok(())
        } else {
            Err(Self::new(code, message))
        }
    }

    /// The code as `kafka_protocol`'s error, for matching on a specific one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        ResponseError::try_from_code(self.code)
    }

    /// Whether Kafka marks the code retriable.
    pub fn is_retriable(&self) -> bool {
        self.kafka_error().is_some_and(|e| e.is_retriable())
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

impl From<ClientError> for AdminError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Connect { broker, source } | ClientError::Io { broker, source, .. } => {
                AdminError::Unreachable {
                    bootstrap: broker,
                    source,
                }
            }
            ClientError::Closed { broker, api } => AdminError::Unreachable {
                bootstrap: broker,
                source: io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("the connection failed earlier; {api} was not sent"),
                ),
            },
            ClientError::Timeout { api, after, .. } => AdminError::Timeout { api, after },
            ClientError::Protocol {
                broker,
                api,
                reason,
            } => AdminError::Protocol {
                broker,
                api,
                reason,
            },
            ClientError::Encode {
                broker,
                api,
                version,
                reason,
            } => AdminError::Protocol {
                broker,
                api,
                reason: format!("cannot encode v{version}: {reason}"),
            },
            ClientError::UnsupportedApi {
                broker,
                api,
                broker_versions,
                client_versions,
            } => AdminError::UnsupportedApi {
                broker,
                api,
                broker_versions,
                client_versions,
            },
            ClientError::Kafka {
                api,
                code,
                name,
                message,
            } => AdminError::Kafka {
                api,
                code,
                name,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
