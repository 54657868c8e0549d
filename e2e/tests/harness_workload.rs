//! The verified workload of the replication tests, proven on one broker where nothing can be
//! lost: every acknowledged record is read back once, in order, and the report says so.

use std::time::Duration;

use strom_e2e::kafka::create_topic;
use strom_e2e::replicas::{LOG_END_OFFSET, labelled_metric, segment_bytes};
use strom_e2e::workload::{Workload, WorkloadConfig};
use strom_e2e::{BrokerOptions, BrokerProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_reads_back_every_acknowledged_record_of_one_broker() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "workload", 4, &[]).await?;
    let workload = Workload::start(
        &broker.bootstrap(),
        WorkloadConfig::new("workload", 4).rate(2000),
    )?;
    let progress = workload.progress();
    progress.wait_for(0, 3000, Duration::from_secs(30)).await?;
    let report = workload
        .finish(&broker.bootstrap(), Duration::from_secs(30))
        .await?;
    println!("{report}");
    report.ensure_clean(3000)?;
    assert_eq!(report.lost(), 0);
    assert_eq!(report.duplicated(), 0);
    assert_eq!(report.out_of_order(), 0);
    assert_eq!(report.failed, 0, "nothing fails on a healthy broker");
    assert!(
        report.consumed >= report.acknowledged,
        "the consumer read at least every acknowledged record"
    );
    // The replica helpers the replication tests compare logs with read this broker right.
    for (partition, high) in &report.high_watermarks {
        let label = partition.to_string();
        let end = labelled_metric(
            &broker,
            LOG_END_OFFSET,
            &[("topic", "workload"), ("partition", &label)],
        )?;
        assert_eq!(end, *high as f64, "log end offset of partition {partition}");
        let (segments, bytes) = segment_bytes(broker.data_dir(), "workload", *partition)?;
        assert_eq!(segments, vec!["00000000000000000000.log".to_owned()]);
        let marker = format!("strom-workload p={partition} s=0 ");
        assert!(
            bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "the first record of partition {partition} is in its segment"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_reports_records_lost_when_the_broker_loses_them() -> anyhow::Result<()> {
    // A broker that loses what it acknowledged: a process crash loses nothing (the page cache
    // survives it), so the loss is made by deleting the topic's segments while the broker is
    // down. The final read then finds empty partitions.
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "doomed", 2, &[]).await?;
    let workload = Workload::start(
        &broker.bootstrap(),
        WorkloadConfig::new("doomed", 2)
            .rate(1000)
            .with("message.timeout.ms", "5000"),
    )?;
    workload
        .progress()
        .wait_for(0, 500, Duration::from_secs(30))
        .await?;
    broker.kill9();
    for partition in 0..2 {
        let dir = broker.data_dir().join(format!("doomed-{partition}"));
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path
                .extension()
                .is_some_and(|e| e == "log" || e == "index" || e == "timeindex")
            {
                std::fs::remove_file(&path)?;
            }
        }
    }
    tokio::task::block_in_place(|| broker.restart())?;
    let report = workload
        .finish(&broker.bootstrap(), Duration::from_secs(10))
        .await?;
    println!("{report}");
    assert!(report.acknowledged >= 500);
    assert!(
        report.lost() >= 500,
        "every record acknowledged before the loss is reported lost"
    );
    assert!(report.ensure_clean(1).is_err());
    assert_eq!(
        report.verdict.vanished, report.live_consumed,
        "whatever the live consumer read before the loss is gone from the final read"
    );
    Ok(())
}
