//! A Kafka client connection over the standard wire protocol, shared by every part of Strom
//! that talks Kafka to a broker: the replica fetcher inside the broker, the operator's admin
//! client (`strom-admin`), and the test harnesses.
//!
//! - [`Connection`]: one TCP connection to one broker. It negotiates API versions when it
//!   opens (ApiVersions, KIP-511 fallback), then sends one [`Request`] at a time at the highest
//!   version both sides implement (or at a version the caller names), with a correlation id
//!   per request, a timeout per request, and responses up to a size the caller chooses. Any
//!   failure on the wire marks it unusable; the caller opens a new one.
//! - [`Request`]: every request type of `kafka-protocol`, tied to its response type, API key
//!   and the versions a negotiated send may pick.
//! - [`frame`]: the framing underneath, public for code that drives a raw stream.
//! - [`ClientError`] says what failed; [`error_name`] maps Kafka error codes to Kafka's names.
//!
//! Everything is async on tokio and nothing blocks a worker thread; a request future may be
//! dropped at any point (the connection then reports itself unusable).
//!
//! Layout: `connection`, `request`, `versions` (the broker's advertised ranges and the choice
//! of version), `frame`, `error`.
//!
//! ```no_run
//! # async fn example() -> Result<(), strom_client::ClientError> {
//! use std::time::Duration;
//! use kafka_protocol::messages::MetadataRequest;
//! use strom_client::Connection;
//!
//! let mut connection =
//!     Connection::open("127.0.0.1:9092", Duration::from_secs(10), "strom-example").await?;
//! let metadata = connection
//!     .send(MetadataRequest::default().with_topics(None))
//!     .await?;
//! # let _ = metadata;
//! # Ok(())
//! # }
//! ```

mod connection;
mod error;
pub mod frame;
mod request;
mod versions;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

pub use connection::{Connection, ConnectionConfig};
pub use error::{ClientError, error_name};
pub use frame::DEFAULT_MAX_RESPONSE_BYTES;
pub use kafka_protocol::protocol::VersionRange;
pub use request::Request;
