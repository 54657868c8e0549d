//! ApiVersions: the versions in `protocol::versions`, exactly.
//!
//! From v3 the request names the client software (KIP-511); as Kafka does, a name or version
//! that does not match `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` is answered with
//! INVALID_REQUEST and no API list. Real clients send names that match (librdkafka replaces
//! other characters before sending).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use crate::protocol::versions;

fn api_keys() -> Vec<ApiVersion> {
    versions::all()
        .into_iter()
        .map(|(api, min, max)| {
            ApiVersion::default()
                .with_api_key(api)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub async fn handle(header: &RequestHeader, request: ApiVersionsRequest) -> ApiVersionsResponse {
    if header.request_api_version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        return ApiVersionsResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    }
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// Kafka's `ApiVersionsRequest.SOFTWARE_NAME_VERSION_PATTERN`:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`, the whole string, within the 32767 bytes
/// Kafka's readers allow any string field (a longer one fails to parse there).
fn valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() > i16::MAX as usize {
        return false;
    }
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

/// The v0 answer to an ApiVersions request newer than the broker serves (KIP-511): the client
/// reads the error and the list, and retries with the highest version both sides know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names_follow_kafkas_pattern() {
        // What the clients the project supports send (kcat/librdkafka 2.0.2 and newer,
        // confluent-kafka, kafka-python, the Java client).
        for good in [
            "librdkafka",
            "2.0.2",
            "confluent-kafka-python",
            "2.6.1-rdkafka-2.6.1",
            "kafka-python",
            "2.0.6",
            "apache-kafka-java",
            "3.9.0",
            "a",
            "7",
            "v1.2.3-rc.1",
        ] {
            assert!(valid_software_field(good), "{good:?} is valid");
        }
        let long = "x".repeat(20_000);
        assert!(
            valid_software_field(&long),
            "Kafka accepts it: its limit is 32767 bytes"
        );
        assert!(!valid_software_field(&"x".repeat(32_768)));
        for bad in [
            "",
            "bad name!",
            "-lead",
            "trail-",
            ".dot",
            "dot.",
            "under_score",
            "caf\u{e9}",
            "tab\t",
            &format!("{long}!"),
        ] {
            assert!(!valid_software_field(bad), "{bad:?} is invalid");
        }
    }
}
