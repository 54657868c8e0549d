//! A connection's `acks=all` produce requests wait for their commit together: while the first
//! waits for its follower, the next one on the same connection is already appended, and both
//! are answered, in request order, once the follower has them. Two brokers (both voters, so a
//! stopped one also stops the quorum and the ISR cannot shrink), one partition with
//! replication factor 2; the follower is stopped (SIGSTOP) while the requests arrive.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use strom_client::frame;
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::kafka::create_replicated_topic;
use strom_e2e::replicas::produce_request;
use strom_e2e::replicas::{await_healthy, fast_replication, labelled_metric, partitions_in};
use tokio::io::AsyncWriteExt;

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "pipelined";
const VERSION: i16 = 9;
/// How long the produce requests may wait for their commit; the appends must show well before.
const PRODUCE_TIMEOUT_MS: i32 = 20_000;
const APPEND_DEADLINE: Duration = Duration::from_secs(10);

fn values(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:03}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_acks_all_produce_is_appended_while_the_first_waits_and_both_answer_in_order()
-> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(2, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_replicated_topic(&cluster.bootstrap(), TOPIC, 1, 2, &[]).await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let state = partitions_in(&cluster, TOPIC).await?[&0].clone();
    let leader = usize::try_from(state.leader)?;
    let follower = 1 - leader;

    cluster.broker(follower).signal("STOP")?;
    let (first, second) = (values("first", 10), values("second", 7));
    let mut stream = tokio::net::TcpStream::connect(cluster.broker(leader).bootstrap()).await?;
    let client_id = Some(StrBytes::from_static_str("strom-e2e"));
    for (correlation_id, batch) in [(1, &first), (2, &second)] {
        let request = produce_request(TOPIC, 0, -1, PRODUCE_TIMEOUT_MS, batch)?;
        let bytes = frame::encode_request(
            ApiKey::Produce,
            VERSION,
            correlation_id,
            client_id.clone(),
            &request,
        )?;
        stream.write_all(&bytes).await?;
    }

    // Both requests are appended while the follower cannot fetch either.
    let appended = (first.len() + second.len()) as f64;
    let broker = cluster.broker(leader);
    eventually(
        "both requests appended on the leader",
        APPEND_DEADLINE,
        || async {
            // The metrics endpoint is read with a blocking HTTP call.
            let end = tokio::task::block_in_place(|| {
                labelled_metric(
                    broker,
                    "kafka_log_log_logendoffset",
                    &[("topic", TOPIC), ("partition", "0")],
                )
            })
            .ok()?;
            (end >= appended).then_some(())
        },
    )
    .await?;
    // Neither is answered before the follower holds it.
    let early = tokio::time::timeout(
        Duration::from_millis(300),
        frame::read_frame(&mut stream, frame::DEFAULT_MAX_RESPONSE_BYTES),
    )
    .await;
    assert!(
        early.is_err(),
        "an acks=all produce answered before its commit"
    );

    cluster.broker(follower).signal("CONT")?;
    let mut answers = Vec::new();
    for correlation_id in [1, 2] {
        let response = tokio::time::timeout(
            DEADLINE,
            frame::read_frame(&mut stream, frame::DEFAULT_MAX_RESPONSE_BYTES),
        )
        .await??
        .ok_or_else(|| anyhow::anyhow!("the connection closed"))?;
        let response: ProduceResponse = frame::decode_response(response, VERSION, correlation_id)?;
        let partition = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| anyhow::anyhow!("no partition response"))?;
        answers.push((partition.error_code, partition.base_offset));
    }
    assert_eq!(
        answers,
        vec![(0, 0), (0, first.len() as i64)],
        "(error, base offset) per request, in request order"
    );
    Ok(())
}
