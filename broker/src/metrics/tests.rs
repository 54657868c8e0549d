//! Unit tests of [`BrokerMetrics`]: every update is read back from the text exposition, the
//! way Prometheus sees it.

use std::collections::BTreeSet;

use super::*;

/// The value of the sample `name{labels}` in the text exposition `text`, `None` when the series
/// is absent. `labels` is `k="v"` pairs separated by commas, in any order.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let want = label_set(labels);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            (series_name == name && label_set(series_labels) == want)
                .then(|| value.parse::<f64>().expect("sample value is a number"))
        })
}

/// `k="v",k2="v2"` as a sorted set (label values here never contain `,` or `"`).
fn label_set(labels: &str) -> BTreeSet<(String, String)> {
    labels
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("label pair has =");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn metrics() -> BrokerMetrics {
    BrokerMetrics::new(3, "1.2.3", "cluster-abc")
}

#[test]
fn build_info_carries_version_cluster_and_node() {
    let text = metrics().encode();
    assert_eq!(
        sample(
            &text,
            "strom_build_info",
            r#"version="1.2.3",cluster_id="cluster-abc",node_id="3""#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn topic_counters_move_the_topic_and_the_all_topics_series() {
    let m = metrics();
    let orders = m.topic("orders");
    let audit = m.topic("audit");
    orders.bytes_in(100);
    orders.bytes_in(28);
    orders.messages_in(5);
    orders.produce_request();
    orders.produce_request();
    orders.failed_produce();
    orders.bytes_out(64);
    orders.fetch_request();
    audit.bytes_in(10);
    audit.messages_in(1);
    audit.failed_fetch();
    // A second handle for the same topic moves the same series.
    m.topic("orders").messages_in(2);

    let text = m.encode();
    let bt = "kafka_server_brokertopicmetrics_";
    let cases: [(&str, &str, f64); 14] = [
        ("bytesin_total", r#"topic="orders""#, 128.0),
        ("bytesin_total", r#"topic="audit""#, 10.0),
        ("bytesin_total", r#"topic="""#, 138.0),
        ("messagesin_total", r#"topic="orders""#, 7.0),
        ("messagesin_total", r#"topic="""#, 8.0),
        ("totalproducerequests_total", r#"topic="orders""#, 2.0),
        ("totalproducerequests_total", r#"topic="""#, 2.0),
        ("failedproducerequests_total", r#"topic="orders""#, 1.0),
        ("bytesout_total", r#"topic="orders""#, 64.0),
        ("bytesout_total", r#"topic="""#, 64.0),
        ("totalfetchrequests_total", r#"topic="orders""#, 1.0),
        ("failedfetchrequests_total", r#"topic="audit""#, 1.0),
        ("failedfetchrequests_total", r#"topic="orders""#, 0.0),
        ("failedfetchrequests_total", r#"topic="""#, 1.0),
    ];
    for (name, labels, want) in cases {
        assert_eq!(
            sample(&text, &format!("{bt}{name}"), labels),
            Some(want),
            "{name}{{{labels}}}"
        );
    }
}

#[test]
fn removing_a_topic_drops_its_series_and_keeps_the_totals() {
    let m = metrics();
    m.topic("gone").bytes_in(7);
    m.topic("kept").bytes_in(3);
    let p0 = m.partition("gone", 0);
    p0.set_log_end_offset(42);
    m.partition("gone", 1).set_log_size(1000);
    m.partition("kept", 0).set_log_end_offset(5);
    m.set_consumer_group_offsets("g", "gone", 0, 40, 2);
    m.set_consumer_group_offsets("g", "kept", 0, 5, 0);

    m.remove_topic("gone");

    let text = m.encode();
    assert!(
        !text.contains(r#"topic="gone""#),
        "series of the deleted topic remain:\n{text}"
    );
    let bytes_in = "kafka_server_brokertopicmetrics_bytesin_total";
    assert_eq!(sample(&text, bytes_in, r#"topic="kept""#), Some(3.0));
    assert_eq!(sample(&text, bytes_in, r#"topic="""#), Some(10.0));
    assert_eq!(
        sample(
            &text,
            "kafka_log_log_logendoffset",
            r#"topic="kept",partition="0""#
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &text,
            "kafka_consumergroup_current_offset",
            r#"consumergroup="g",topic="kept",partition="0""#
        ),
        Some(5.0)
    );

    // A re-created topic starts from zero.
    m.topic("gone").messages_in(1);
    let text = m.encode();
    assert_eq!(sample(&text, bytes_in, r#"topic="gone""#), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "kafka_server_brokertopicmetrics_messagesin_total",
            r#"topic="gone""#
        ),
        Some(1.0)
    );
}

#[test]
fn api_series_are_named_after_kafka_apis_and_created_on_first_use() {
    let m = metrics();
    assert!(
        !m.encode().contains("strom_request_duration_seconds"),
        "no API called yet"
    );

    let produce = m.api(0);
    produce.observe(0.002);
    produce.observe(0.2);
    produce.error();
    m.api(3).observe(0.00005);
    m.api(-1).observe(0.001);
    m.api(1000).observe(0.001);

    let text = m.encode();
    assert_eq!(
        sample(&text, "strom_requests_total", r#"api="Produce""#),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "strom_request_errors_total", r#"api="Produce""#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "strom_request_duration_seconds_count",
            r#"api="Produce""#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "strom_request_duration_seconds_bucket",
            r#"api="Produce",le="0.0025""#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "strom_request_duration_seconds_bucket",
            r#"api="Produce",le="0.25""#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "strom_request_duration_seconds_count",
            r#"api="Metadata""#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "strom_requests_total", r#"api="Unknown""#),
        Some(2.0)
    );
    assert!(
        !text.contains(r#"api="Fetch""#),
        "an API never called has no series"
    );
}

#[test]
fn api_names_follow_kafka_api_keys() {
    let cases = [
        (0, "Produce"),
        (1, "Fetch"),
        (2, "ListOffsets"),
        (3, "Metadata"),
        (18, "ApiVersions"),
        (19, "CreateTopics"),
        (32, "DescribeConfigs"),
        (60, "DescribeCluster"),
        (75, "DescribeTopicPartitions"),
        (80, "AddRaftVoter"),
        (92, "DeleteShareGroupOffsets"),
        (93, UNKNOWN_API),
        (-7, UNKNOWN_API),
    ];
    for (key, name) in cases {
        assert_eq!(api_name(key), name, "api key {key}");
    }
}

#[test]
fn connections_and_network_bytes() {
    let m = metrics();
    m.connection_opened();
    m.connection_opened();
    m.connection_closed();
    m.network_bytes_in(300);
    m.network_bytes_out(120);
    m.network_bytes_out(1);
    let text = m.encode();
    assert_eq!(sample(&text, "strom_connections_active", ""), Some(1.0));
    assert_eq!(sample(&text, "strom_connections_total", ""), Some(2.0));
    assert_eq!(
        sample(&text, "strom_network_bytes_in_total", ""),
        Some(300.0)
    );
    assert_eq!(
        sample(&text, "strom_network_bytes_out_total", ""),
        Some(121.0)
    );
}

#[test]
fn partition_gauges_and_isr_state() {
    let m = metrics();
    let p = m.partition("t", 2);
    p.set_log_size(4096);
    p.set_log_start_offset(10);
    p.set_log_end_offset(99);
    let tp = r#"topic="t",partition="2""#;

    let cases = [
        // (replicas, isr, min.insync.replicas) -> (under_replicated, under_min_isr, at_min_isr)
        (Some((3, 3, 2)), (0.0, 0.0, 0.0)),
        (Some((3, 2, 2)), (1.0, 0.0, 1.0)),
        (Some((3, 1, 2)), (1.0, 1.0, 0.0)),
        (Some((1, 1, 1)), (0.0, 0.0, 1.0)),
        (None, (0.0, 0.0, 0.0)),
    ];
    for (state, (urp, under, at)) in cases {
        let state = state.map(|(replicas, isr_size, min_insync_replicas)| IsrState {
            replicas,
            isr_size,
            min_insync_replicas,
        });
        p.set_isr_state(state);
        let text = m.encode();
        assert_eq!(
            sample(&text, "kafka_cluster_partition_underreplicated", tp),
            Some(urp),
            "{state:?}"
        );
        assert_eq!(
            sample(&text, "kafka_cluster_partition_underminisr", tp),
            Some(under),
            "{state:?}"
        );
        assert_eq!(
            sample(&text, "kafka_cluster_partition_atminisr", tp),
            Some(at),
            "{state:?}"
        );
    }
    let text = m.encode();
    assert_eq!(sample(&text, "kafka_log_log_size", tp), Some(4096.0));
    assert_eq!(
        sample(&text, "kafka_log_log_logstartoffset", tp),
        Some(10.0)
    );
    assert_eq!(sample(&text, "kafka_log_log_logendoffset", tp), Some(99.0));

    m.remove_partition("t", 2);
    assert!(!m.encode().contains(tp), "removed partition keeps series");
}

#[test]
fn replica_manager_and_controller_gauges() {
    let m = metrics();
    m.set_replica_manager(12, 4, 1, 0);
    m.set_controller(true, 2);
    m.set_metadata_errors(1);
    m.isr_shrink();
    m.isr_shrink();
    m.isr_expand();
    let text = m.encode();
    let cases = [
        ("kafka_server_replicamanager_partitioncount", 12.0),
        ("kafka_server_replicamanager_leadercount", 4.0),
        ("kafka_server_replicamanager_underreplicatedpartitions", 1.0),
        ("kafka_server_replicamanager_underminisrpartitioncount", 0.0),
        ("kafka_server_replicamanager_isrshrinks_total", 2.0),
        ("kafka_server_replicamanager_isrexpands_total", 1.0),
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            1.0,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            2.0,
        ),
        ("kafka_controller_kafkacontroller_metadataerrorcount", 1.0),
    ];
    for (name, want) in cases {
        assert_eq!(sample(&text, name, ""), Some(want), "{name}");
    }

    m.set_controller(false, 2);
    let text = m.encode();
    assert_eq!(
        sample(
            &text,
            "kafka_controller_kafkacontroller_activecontrollercount",
            ""
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            ""
        ),
        Some(0.0)
    );
}

#[test]
fn consumer_group_offsets_and_removal() {
    let m = metrics();
    m.set_consumer_group_offsets("billing", "orders", 0, 90, 10);
    m.set_consumer_group_offsets("billing", "orders", 1, 50, 0);
    m.set_consumer_group_offsets("audit", "orders", 0, 100, 0);
    // A commit past a truncated high watermark never reports negative lag.
    m.set_consumer_group_offsets("audit", "orders", 1, 60, -5);
    let text = m.encode();
    let billing0 = r#"consumergroup="billing",topic="orders",partition="0""#;
    assert_eq!(
        sample(&text, "kafka_consumergroup_current_offset", billing0),
        Some(90.0)
    );
    assert_eq!(
        sample(&text, "kafka_consumergroup_lag", billing0),
        Some(10.0)
    );
    assert_eq!(
        sample(
            &text,
            "kafka_consumergroup_lag",
            r#"consumergroup="audit",topic="orders",partition="1""#
        ),
        Some(0.0)
    );

    m.remove_consumer_group("billing");
    let text = m.encode();
    assert!(!text.contains(r#"consumergroup="billing""#), "{text}");
    assert!(text.contains(r#"consumergroup="audit""#), "{text}");
}

#[test]
fn every_family_has_help_and_type() {
    let m = metrics();
    // Create a series in every labelled family so that all of them are exposed.
    m.topic("t").bytes_in(1);
    m.partition("t", 0).set_log_size(1);
    m.api(0).observe(0.1);
    m.set_consumer_group_offsets("g", "t", 0, 1, 0);
    m.connection_closed_by_broker("idle");
    let text = m.encode();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(families.len(), 63, "families: {families:?}");
    for family in families {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
}
