//! ApiVersions: the versions in `protocol::versions`, exactly.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};

use crate::broker::Broker;
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

pub async fn handle(
    _broker: &Broker,
    _header: &RequestHeader,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The v0 answer to an ApiVersions request newer than the broker serves (KIP-511): the client
/// reads the error and the list, and retries with the highest version both sides know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys())
}
