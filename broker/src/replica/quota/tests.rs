use std::sync::atomic::{AtomicI64, Ordering};

use strom_metadata::records::{ConfigResource, MetadataRecord};
use uuid::Uuid;

use super::*;

const MB: u64 = 1024 * 1024;

/// Time that moves only when a test says so.
#[derive(Debug, Default)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn quota(bound: i64) -> (Arc<ManualClock>, ReplicationQuota) {
    let clock = Arc::new(ManualClock::default());
    let quota = ReplicationQuota::new(clock.clone());
    quota.set_bound(bound);
    (clock, quota)
}

#[test]
fn a_first_burst_is_measured_over_one_whole_window() {
    let mut rate = Rate::new(QUOTA_SAMPLES, QUOTA_WINDOW_MS);
    rate.record(1000, 0);
    assert_eq!(rate.measure(0), 1000.0);
    assert_eq!(rate.measure(500), 1000.0);
    assert_eq!(rate.measure(2000), 500.0);
    rate.record(1000, 2000);
    assert_eq!(rate.measure(4000), 500.0);
}

#[test]
fn samples_without_events_in_the_span_are_forgotten() {
    let mut rate = Rate::new(QUOTA_SAMPLES, QUOTA_WINDOW_MS);
    rate.record(5000, 0);
    assert!(rate.measure(10_999) > 0.0);
    assert_eq!(rate.measure(11_000), 0.0);
    // The ring of samples wraps: only the last eleven seconds count.
    for second in 0..30 {
        rate.record(100, 20_000 + second * 1000);
    }
    let measured = rate.measure(49_000);
    assert!((90.0..=110.0).contains(&measured), "{measured}");
}

#[test]
fn time_to_bound_is_when_the_span_has_grown_enough() {
    let mut rate = Rate::new(QUOTA_SAMPLES, QUOTA_WINDOW_MS);
    rate.record(3000, 0);
    assert_eq!(rate.time_to_bound(1000, 0), Duration::from_millis(3000));
    assert_eq!(rate.time_to_bound(1000, 1500), Duration::from_millis(1500));
    assert_eq!(rate.measure(1500), 2000.0);
    assert_eq!(rate.time_to_bound(1000, 3000), Duration::ZERO);
    assert_eq!(rate.measure(3000), 1000.0);
    assert_eq!(rate.time_to_bound(3000, 0), Duration::ZERO);
    assert_eq!(rate.time_to_bound(2000, 0), Duration::from_millis(1500));
}

#[test]
fn unthrottled_quota_is_never_exceeded() {
    let (_, quota) = quota(UNTHROTTLED_RATE);
    quota.set_throttled(HashMap::from([("t".to_owned(), Throttled::All)]));
    quota.record(u64::MAX / 2);
    assert!(!quota.is_exceeded());
    assert!(!quota.holds_back("t", 0, false));
    assert_eq!(quota.time_to_bound(), Duration::ZERO);
}

#[test]
fn only_listed_replicas_out_of_sync_are_held_back_while_the_rate_is_above_the_bound() {
    let (clock, quota) = quota(1000);
    quota.set_throttled(HashMap::from([
        (
            "listed".to_owned(),
            Throttled::Partitions(BTreeSet::from([0, 2])),
        ),
        ("all".to_owned(), Throttled::All),
    ]));
    assert!(quota.is_throttled("listed", 2));
    assert!(!quota.is_throttled("listed", 1));
    assert!(quota.is_throttled("all", 7));
    assert!(!quota.is_throttled("other", 0));

    quota.record(1000);
    assert!(!quota.is_exceeded(), "at the bound is within it");
    assert!(!quota.holds_back("listed", 0, false));
    quota.record(1);
    assert!(quota.is_exceeded());
    assert!(quota.holds_back("listed", 0, false));
    assert!(quota.holds_back("all", 3, false));
    assert!(!quota.holds_back("listed", 0, true), "in sync");
    assert!(!quota.holds_back("listed", 1, false), "not listed");
    assert!(!quota.holds_back("other", 0, false), "not listed");

    // Recording goes on while exceeded; the rate falls back as time passes.
    quota.record(999);
    assert_eq!(quota.recorded_bytes(), 2000);
    assert_eq!(quota.time_to_bound(), Duration::from_millis(2000));
    clock.advance(1999);
    assert!(quota.is_exceeded());
    clock.advance(1);
    assert!(!quota.is_exceeded());
    assert_eq!(quota.byte_rate(), 1000.0);

    // A raised bound applies at once, to the bytes already measured.
    quota.record(2000);
    assert!(quota.is_exceeded());
    quota.set_bound(10_000);
    assert!(!quota.is_exceeded());
}

/// A follower that fetches 1 MB whenever the quota allows, checking every 10 ms, copies no
/// more than the bound allows over any stretch, and no less than the bound minus one fetch.
#[test]
fn a_throttled_copy_runs_at_the_bound() {
    let bound = 2 * MB as i64;
    let (clock, quota) = quota(bound);
    let mut copied = 0u64;
    for step in 1..=3000 {
        if !quota.is_exceeded() {
            quota.record(MB);
            copied += MB;
        }
        clock.advance(10);
        let elapsed_s = (step * 10) as f64 / 1000.0;
        let allowed = bound as f64 * elapsed_s.max(1.0) + MB as f64;
        assert!(
            copied as f64 <= allowed,
            "{copied} bytes after {elapsed_s} s, the bound allows {allowed}"
        );
    }
    // 30 s: the samples rolled over many times.
    let expected = 30 * 2 * MB;
    assert!(
        copied + 2 * MB >= expected,
        "{copied} bytes in 30 s at {bound} B/s"
    );
}

fn image(records: &[MetadataRecord]) -> MetadataImage {
    records
        .iter()
        .fold(MetadataImage::empty("c"), |image, record| {
            image.apply(record)
        })
}

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id: Uuid::new_v4(),
    }
}

fn config(resource: ConfigResource, name: &str, value: &str) -> MetadataRecord {
    MetadataRecord::Config {
        resource,
        name: name.to_owned(),
        value: Some(value.to_owned()),
    }
}

#[test]
fn rates_and_replicas_come_from_the_image_for_this_broker() {
    let quotas = ReplicationQuotas::new(Arc::new(ManualClock::default()));
    let topic_config = |t: &str, k: &str, v: &str| config(ConfigResource::Topic(t.into()), k, v);
    let image = image(&[
        topic("a"),
        topic("b"),
        topic("c"),
        topic_config("a", LEADER_REPLICATION_THROTTLED_REPLICAS, "0:1,1:2,2:1"),
        topic_config("a", FOLLOWER_REPLICATION_THROTTLED_REPLICAS, "0:2"),
        topic_config("b", LEADER_REPLICATION_THROTTLED_REPLICAS, "*"),
        topic_config("c", FOLLOWER_REPLICATION_THROTTLED_REPLICAS, "5:1"),
        config(
            ConfigResource::Broker(1),
            LEADER_REPLICATION_THROTTLED_RATE,
            "2097152",
        ),
        config(
            ConfigResource::Broker(2),
            FOLLOWER_REPLICATION_THROTTLED_RATE,
            "100",
        ),
    ]);

    quotas.update(&image, 1, (UNTHROTTLED_RATE, 500));
    assert_eq!(quotas.leader.bound(), 2_097_152);
    assert_eq!(quotas.follower.bound(), 500, "the static rate");
    assert!(quotas.leader.is_throttled("a", 0));
    assert!(!quotas.leader.is_throttled("a", 1));
    assert!(quotas.leader.is_throttled("a", 2));
    assert!(quotas.leader.is_throttled("b", 9));
    assert!(!quotas.leader.is_throttled("c", 5));
    assert!(quotas.follower.is_throttled("c", 5));
    assert!(!quotas.follower.is_throttled("a", 0));

    quotas.update(&image, 2, (UNTHROTTLED_RATE, UNTHROTTLED_RATE));
    assert_eq!(quotas.leader.bound(), UNTHROTTLED_RATE);
    assert_eq!(quotas.follower.bound(), 100);
    assert!(quotas.leader.is_throttled("a", 1));
    assert!(quotas.follower.is_throttled("a", 0));

    // Deleting the dynamic rate falls back to the static one.
    let image = image.apply(&MetadataRecord::Config {
        resource: ConfigResource::Broker(1),
        name: LEADER_REPLICATION_THROTTLED_RATE.to_owned(),
        value: None,
    });
    quotas.update(&image, 1, (7, UNTHROTTLED_RATE));
    assert_eq!(quotas.leader.bound(), 7);
}

#[test]
fn the_cluster_wide_rate_applies_to_brokers_without_their_own() {
    let quotas = ReplicationQuotas::new(Arc::new(ManualClock::default()));
    let image = image(&[
        config(
            ConfigResource::BrokerDefault,
            LEADER_REPLICATION_THROTTLED_RATE,
            "1000",
        ),
        config(
            ConfigResource::BrokerDefault,
            FOLLOWER_REPLICATION_THROTTLED_RATE,
            "300",
        ),
        config(
            ConfigResource::Broker(1),
            LEADER_REPLICATION_THROTTLED_RATE,
            "2097152",
        ),
    ]);

    quotas.update(&image, 1, (5, 6));
    assert_eq!(quotas.leader.bound(), 2_097_152, "the broker's own rate");
    assert_eq!(quotas.follower.bound(), 300, "the cluster-wide rate");
    quotas.update(&image, 2, (5, 6));
    assert_eq!(quotas.leader.bound(), 1000);
    assert_eq!(quotas.follower.bound(), 300);

    // Deleting the cluster-wide rate falls back to the static one.
    let image = image.apply(&MetadataRecord::Config {
        resource: ConfigResource::BrokerDefault,
        name: FOLLOWER_REPLICATION_THROTTLED_RATE.to_owned(),
        value: None,
    });
    quotas.update(&image, 2, (5, 6));
    assert_eq!(quotas.follower.bound(), 6);
}
