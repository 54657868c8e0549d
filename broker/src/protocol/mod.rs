//! Request dispatch: decode the header and body with the `kafka-protocol` codecs, route by API
//! key to the handler (one file per API in `handlers/`), encode the response with its header.
//!
//! What a client sent wrong is answered here and nowhere else: an unknown API key, a version the
//! broker does not serve, or a body that does not decode closes the connection (what Kafka
//! does, since no response could be framed for it) — except ApiVersions at a version newer than
//! served, which KIP-511 answers with a v0 response carrying UNSUPPORTED_VERSION so that newer
//! clients can downgrade.

pub mod response;
pub mod versions;
pub mod zero_copy;

pub use response::{Part, Response};

use std::future::Future;
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use strom_group::ClientInfo;

use crate::broker::Broker;
use crate::handlers;

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("request shorter than a request header ({len} bytes)")]
    TooShort { len: usize },
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("{api:?} version {version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("encoding the {api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// What handling a request frame has come to: its answer, or — a produce with `acks=all` from
/// a producer without a producer id, whose batches are appended — the answer once they are
/// committed.
pub enum Handled<'a> {
    Answered(Option<Response>),
    Committing(Pin<Box<dyn Future<Output = Result<Option<Response>, ProtocolError>> + Send + 'a>>),
}

impl std::fmt::Debug for Handled<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handled::Answered(response) => f
                .debug_tuple("Answered")
                .field(&response.as_ref().map(Response::len))
                .finish(),
            Handled::Committing(_) => f.write_str("Committing"),
        }
    }
}

/// Handles one request frame from the client at `peer`; `Ok(None)` when the request takes no
/// response (`acks=0`).
pub async fn handle_frame(
    broker: &Broker,
    frame: Bytes,
    peer: &str,
) -> Result<Option<Response>, ProtocolError> {
    match start_frame(broker, frame, peer).await? {
        Handled::Answered(response) => Ok(response),
        Handled::Committing(commit) => commit.await,
    }
}

/// Whether `frame` is a Produce request, whose commit wait [`start_frame`] hands back.
pub fn is_produce(frame: &[u8]) -> bool {
    frame.get(0..2) == Some(&(ApiKey::Produce as i16).to_be_bytes()[..])
}

/// Handles one request frame up to what may overlap with the next request of the connection:
/// a produce with `acks=all` from a producer without a producer id comes back once its batches
/// are appended, with the wait for their commit still to run; everything else comes back
/// answered.
pub async fn start_frame<'a>(
    broker: &'a Broker,
    frame: Bytes,
    peer: &str,
) -> Result<Handled<'a>, ProtocolError> {
    if frame.len() >= 8 && is_produce(&frame) {
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        if let Some((min, max)) = versions::supported(ApiKey::Produce)
            && (min..=max).contains(&version)
        {
            return start_produce(broker, version, frame).await;
        }
    }
    handle_other_frame(broker, frame, peer)
        .await
        .map(Handled::Answered)
}

async fn start_produce(
    broker: &Broker,
    version: i16,
    mut body: Bytes,
) -> Result<Handled<'_>, ProtocolError> {
    let api = ApiKey::Produce;
    let started = std::time::Instant::now();
    let metrics = broker.metrics.api(api as i16);
    let decoded = decode::<RequestHeader>(api, api.request_header_version(version), &mut body)
        .and_then(|header| Ok((header, decode::<ProduceRequest>(api, version, &mut body)?)));
    let (header, request) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            metrics.observe(started.elapsed().as_secs_f64());
            metrics.error();
            return Err(error);
        }
    };
    // An idempotent or transactional producer's requests are answered one at a time, as Kafka
    // serves every request: when a commit fails, such a producer recovers (retries, or bumps
    // its epoch and resends) on the premise that its later requests were not appended yet.
    let one_at_a_time = handlers::produce::has_producer_ids(&request);
    let queued = handlers::produce::start(
        broker,
        &broker.controller,
        broker,
        broker,
        &broker.metrics,
        &broker.config.props,
        &header,
        request,
    )
    .await;
    let correlation_id = header.correlation_id;
    let answer = async move {
        let result = match queued.appended().await.respond(broker).await {
            Some(response) => encode(api, version, correlation_id, &response)
                .map(|b| Some(Response::from_bytes(b))),
            None => Ok(None),
        };
        metrics.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics.error();
        }
        result
    };
    if one_at_a_time {
        return answer.await.map(Handled::Answered);
    }
    Ok(Handled::Committing(Box::pin(answer)))
}

async fn handle_other_frame(
    broker: &Broker,
    frame: Bytes,
    peer: &str,
) -> Result<Option<Response>, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::TooShort { len: frame.len() });
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(api_key).map_err(|()| ProtocolError::UnknownApiKey { api_key })?;
    let started = std::time::Instant::now();
    let metrics = broker.metrics.api(api_key);
    let result = match versions::supported(api) {
        Some((min, max)) if (min..=max).contains(&version) => {
            dispatch(broker, api, version, frame, peer).await
        }
        _ if api == ApiKey::ApiVersions => {
            let correlation_id = peek_correlation_id(&frame);
            let body = handlers::api_versions::unsupported_version_response();
            encode(api, 0, correlation_id, &body).map(|b| Some(Response::from_bytes(b)))
        }
        _ => Err(ProtocolError::UnsupportedVersion { api, version }),
    };
    metrics.observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics.error();
    }
    result
}

fn peek_correlation_id(frame: &[u8]) -> i32 {
    frame
        .get(4..8)
        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn decode<T: Decodable>(api: ApiKey, version: i16, body: &mut Bytes) -> Result<T, ProtocolError> {
    T::decode(body, version).map_err(|e| ProtocolError::Malformed {
        api,
        version,
        reason: e.to_string(),
    })
}

/// Frames a response: size, response header (its version depends on the API and version), body.
pub(crate) fn encode<T: Encodable + HeaderVersion>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, ProtocolError> {
    let err = |e: anyhow::Error| ProtocolError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let header_version = T::header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version).map_err(err)?
        + body.compute_size(version).map_err(err)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(i32::try_from(size).map_err(|_| ProtocolError::Encode {
        api,
        version,
        reason: format!("response of {size} bytes is too large to frame"),
    })?);
    header.encode(&mut buf, header_version).map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    Ok(buf.freeze())
}

/// Group and transaction APIs are answered by their coordinator, which takes the request and
/// its version.
macro_rules! route_coordinator {
    ($coordinator:expr, $api:ident, $version:ident, $body:ident, $header:ident;
     $($key:ident => $request:ty => $method:ident),* $(,)?) => {
        match $api {
            $(ApiKey::$key => {
                let request: $request = decode($api, $version, &mut $body)?;
                let response = $coordinator.$method(request, $version).await;
                return encode($api, $version, $header.correlation_id, &response)
                    .map(|b| Some(Response::from_bytes(b)));
            })*
            _ => {}
        }
    };
}

/// Every other API: `Key => |request: Type| call` decodes the request, awaits the call (the
/// handler with the capabilities it takes) and encodes its response.
macro_rules! route {
    ($api:ident, $version:ident, $body:ident, $header:ident;
     $($key:ident => |$request:ident: $ty:ty| $call:expr),* $(,)?) => {
        match $api {
            $(ApiKey::$key => {
                let $request: $ty = decode($api, $version, &mut $body)?;
                let response = $call.await;
                encode($api, $version, $header.correlation_id, &response)
                    .map(|b| Some(Response::from_bytes(b)))
            })*
            _ => Err(ProtocolError::UnsupportedVersion { api: $api, version: $version }),
        }
    };
}

async fn dispatch(
    broker: &Broker,
    api: ApiKey,
    version: i16,
    mut body: Bytes,
    peer: &str,
) -> Result<Option<Response>, ProtocolError> {
    let header: RequestHeader = decode(api, api.request_header_version(version), &mut body)?;
    // What handlers take: capabilities the broker provides (`crate::capabilities`,
    // `crate::controller_channel`), and plain data.
    let (metadata, replicas, coordinators) = (broker, broker, broker);
    let controller = &broker.controller;
    let (props, metrics) = (&broker.config.props, &*broker.metrics);
    if api == ApiKey::JoinGroup {
        // Member ids and DescribeGroups carry the client's id and address, as in Kafka.
        let request: JoinGroupRequest = decode(api, version, &mut body)?;
        let client = ClientInfo {
            client_id: header
                .client_id
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            client_host: format!("/{}", peer.rsplit_once(':').map_or(peer, |(ip, _)| ip)),
        };
        let response = broker
            .groups
            .join_group_with_client(request, version, client)
            .await;
        return encode(api, version, header.correlation_id, &response)
            .map(|b| Some(Response::from_bytes(b)));
    }
    if api == ApiKey::Fetch {
        // Record sets go from the segment files to the socket (`zero_copy`).
        let request: FetchRequest = decode(api, version, &mut body)?;
        let reply =
            handlers::fetch::handle(metadata, replicas, metrics, props, &header, request).await;
        return zero_copy::encode_fetch(version, header.correlation_id, reply).map(Some);
    }
    if api == ApiKey::InitProducerId {
        // A transactional id makes it the transaction coordinator's (Kafka: a null id is an
        // idempotent producer's request, anything else the coordinator's).
        let request: InitProducerIdRequest = decode(api, version, &mut body)?;
        let response = if request.transactional_id.is_some() {
            broker.transactions.init_producer_id(request, version).await
        } else {
            handlers::init_producer_id::handle(&broker.producer_ids, controller, &header, request)
                .await
        };
        return encode(api, version, header.correlation_id, &response)
            .map(|b| Some(Response::from_bytes(b)));
    }
    route_coordinator!(broker.transactions, api, version, body, header;
        AddPartitionsToTxn => AddPartitionsToTxnRequest => add_partitions_to_txn,
        AddOffsetsToTxn => AddOffsetsToTxnRequest => add_offsets_to_txn,
        EndTxn => EndTxnRequest => end_txn,
        DescribeTransactions => DescribeTransactionsRequest => describe_transactions,
        ListTransactions => ListTransactionsRequest => list_transactions,
    );
    route_coordinator!(broker.groups, api, version, body, header;
        SyncGroup => SyncGroupRequest => sync_group,
        Heartbeat => HeartbeatRequest => heartbeat,
        LeaveGroup => LeaveGroupRequest => leave_group,
        OffsetCommit => OffsetCommitRequest => offset_commit,
        OffsetFetch => OffsetFetchRequest => offset_fetch,
        ListGroups => ListGroupsRequest => list_groups,
        DescribeGroups => DescribeGroupsRequest => describe_groups,
        DeleteGroups => DeleteGroupsRequest => delete_groups,
        OffsetDelete => OffsetDeleteRequest => offset_delete,
        TxnOffsetCommit => TxnOffsetCommitRequest => txn_offset_commit,
    );
    route!(api, version, body, header;
        FindCoordinator => |request: FindCoordinatorRequest|
            handlers::find_coordinator::handle(metadata, coordinators, &header, request),
        ListOffsets => |request: ListOffsetsRequest|
            handlers::list_offsets::handle(replicas, &header, request),
        Metadata => |request: MetadataRequest|
            handlers::metadata::handle(metadata, controller, replicas, props, &header, request),
        ApiVersions => |request: ApiVersionsRequest|
            handlers::api_versions::handle(&header, request),
        CreateTopics => |request: CreateTopicsRequest|
            handlers::create_topics::handle(metadata, controller, replicas, props, &header, request),
        DeleteTopics => |request: DeleteTopicsRequest|
            handlers::delete_topics::handle(metadata, controller, replicas, metrics, &header, request),
        DeleteRecords => |request: DeleteRecordsRequest|
            handlers::delete_records::handle(replicas, &header, request),
        DescribeConfigs => |request: DescribeConfigsRequest|
            handlers::describe_configs::handle(metadata, props, &header, request),
        DescribeLogDirs => |request: DescribeLogDirsRequest|
            handlers::describe_log_dirs::handle(replicas, &broker.config.data_dir, &header, request),
        AlterConfigs => |request: AlterConfigsRequest|
            handlers::alter_configs::handle(controller, replicas, &header, request),
        CreatePartitions => |request: CreatePartitionsRequest|
            handlers::create_partitions::handle(controller, replicas, &header, request),
        IncrementalAlterConfigs => |request: IncrementalAlterConfigsRequest|
            handlers::incremental_alter_configs::handle(controller, replicas, &header, request),
        DescribeCluster => |request: DescribeClusterRequest|
            handlers::describe_cluster::handle(metadata, &header, request),
        DescribeQuorum => |request: DescribeQuorumRequest|
            handlers::describe_quorum::handle(controller, &header, request),
        OffsetForLeaderEpoch => |request: OffsetForLeaderEpochRequest|
            handlers::offset_for_leader_epoch::handle(replicas, &header, request),
        AlterPartitionReassignments => |request: AlterPartitionReassignmentsRequest|
            handlers::alter_partition_reassignments::handle(metadata, controller, replicas, &header, request),
        ListPartitionReassignments => |request: ListPartitionReassignmentsRequest|
            handlers::list_partition_reassignments::handle(controller, &header, request),
        ElectLeaders => |request: ElectLeadersRequest|
            handlers::elect_leaders::handle(controller, replicas, &header, request),
        WriteTxnMarkers => |request: WriteTxnMarkersRequest|
            handlers::write_txn_markers::handle(replicas, broker, &header, request),
    )
}

#[cfg(test)]
mod decode_fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// A request of `api` v`version` whose first body field, an array, claims `u32::MAX` or
    /// `i32::MAX` elements in the 4 or 5 bytes that follow the header.
    fn claiming_billions(api: ApiKey, version: i16) -> (Bytes, RequestHeader) {
        let header_version = api.request_header_version(version);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(11);
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, header_version)
            .expect("header encodes");
        if header_version >= 2 {
            frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        } else {
            frame.put_i32(i32::MAX);
        }
        let mut frame = frame.freeze();
        let header = decode(api, header_version, &mut frame).expect("header decodes");
        (frame, header)
    }

    fn decode_body(api: ApiKey, version: i16, mut body: Bytes) -> Result<(), ProtocolError> {
        match api {
            ApiKey::Metadata => decode::<MetadataRequest>(api, version, &mut body).map(drop),
            ApiKey::CreateTopics => {
                decode::<CreateTopicsRequest>(api, version, &mut body).map(drop)
            }
            ApiKey::DeleteTopics => {
                decode::<DeleteTopicsRequest>(api, version, &mut body).map(drop)
            }
            ApiKey::DescribeConfigs => {
                decode::<DescribeConfigsRequest>(api, version, &mut body).map(drop)
            }
            ApiKey::DescribeGroups => {
                decode::<DescribeGroupsRequest>(api, version, &mut body).map(drop)
            }
            _ => unreachable!("not a case of the test"),
        }
    }

    /// The library's tests run on the system allocator (only the binary installs jemalloc): an
    /// allocation of the claimed size (tens of GB) fails there and aborts the whole test process,
    /// which is what this test did before the decoder refused such claims.
    #[test]
    fn claimed_lengths_beyond_the_frame_are_refused_before_allocating() {
        let cases = [
            (ApiKey::Metadata, 1),
            (ApiKey::Metadata, 12),
            (ApiKey::CreateTopics, 2),
            (ApiKey::CreateTopics, 7),
            (ApiKey::DeleteTopics, 1),
            (ApiKey::DescribeConfigs, 1),
            (ApiKey::DescribeConfigs, 4),
            (ApiKey::DescribeGroups, 0),
            (ApiKey::DescribeGroups, 5),
        ];
        for (api, version) in cases {
            let (body, header) = claiming_billions(api, version);
            assert_eq!(header.correlation_id, 11);
            assert!(body.len() <= 5, "{api:?} v{version}: {} bytes", body.len());
            let error = decode_body(api, version, body).expect_err("a claim the frame cannot hold");
            assert!(
                error.to_string().contains("bytes remain"),
                "{api:?} v{version}: {error}"
            );
        }
    }
}
