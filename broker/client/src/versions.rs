//! The API versions a broker advertised, and the choice of version per request.

use std::collections::HashMap;

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;

/// Per API key, the version range one broker advertised in its ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ApiVersionTable {
    ranges: HashMap<i16, VersionRange>,
}

impl ApiVersionTable {
    pub(crate) fn from_response(response: &ApiVersionsResponse) -> Self {
        let ranges = response
            .api_keys
            .iter()
            .map(|api| {
                let range = VersionRange {
                    min: api.min_version,
                    max: api.max_version,
                };
                (api.api_key, range)
            })
            .collect();
        Self { ranges }
    }

    /// The range the broker advertised for `key`, if it listed the API.
    pub(crate) fn broker_range(&self, key: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&(key as i16)).copied()
    }

    /// The highest version both the broker and `client` implement, or `None` when the ranges
    /// do not overlap (or the broker does not list the API).
    pub(crate) fn pick(&self, key: ApiKey, client: VersionRange) -> Option<i16> {
        let common = self.broker_range(key)?.intersect(&client);
        (!common.is_empty()).then_some(common.max)
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    use super::*;

    fn table(entries: &[(ApiKey, i16, i16)]) -> ApiVersionTable {
        let response = ApiVersionsResponse::default().with_api_keys(
            entries
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        );
        ApiVersionTable::from_response(&response)
    }

    #[test]
    fn picks_highest_common_version() {
        let broker = table(&[
            (ApiKey::Metadata, 0, 12),
            (ApiKey::CreateTopics, 2, 5),
            (ApiKey::DeleteTopics, 0, 0),
        ]);
        let range = |min, max| VersionRange { min, max };
        let cases = [
            // broker newer than client: client's max
            (ApiKey::Metadata, range(4, 9), Some(9)),
            // client newer than broker: broker's max
            (ApiKey::Metadata, range(4, 13), Some(12)),
            (ApiKey::CreateTopics, range(2, 7), Some(5)),
            // disjoint ranges
            (ApiKey::DeleteTopics, range(1, 6), None),
            // not advertised at all
            (ApiKey::CreatePartitions, range(0, 3), None),
        ];
        for (key, client, want) in cases {
            assert_eq!(broker.pick(key, client), want, "{key:?} {client}");
        }
    }
}
