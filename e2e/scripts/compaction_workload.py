"""Keyed updates and deletes through confluent-kafka's Producer, for the compaction tests.

Usage: compaction_workload.py BOOTSTRAP TOPIC RECORDS KEYS CODEC SEED [START]
Writes RECORDS records over KEYS keys (`key-<n>`, chosen at random from SEED) to partition 0
of TOPIC with acks=all and compression.type=CODEC. About one record in twelve is a tombstone
(a null value) for its key; every other value names its key and its sequence number, so a
reader can tell which write of a key it sees. START offsets the sequence numbers, so a second
run does not repeat the values of a first one. Every delivery must succeed.

Prints one JSON object: `latest` maps every key written to its last value (null for a key
whose last write was a tombstone), `first_offset` and `last_offset` are the acknowledged offsets
of the first and last record.
"""

import json
import random
import sys

from confluent_kafka import Producer


def main(bootstrap, topic, records, keys, codec, seed, start):
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": codec,
            "linger.ms": 5,
            "batch.num.messages": 500,
        }
    )
    rng = random.Random(seed)
    latest = {}
    offsets = []
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(str(err))
        else:
            offsets.append(msg.offset())

    for i in range(records):
        key = f"key-{rng.randrange(keys)}"
        value = None if rng.randrange(12) == 0 else f"{key}@{start + i}"
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=0, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        latest[key] = value
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        sys.exit(f"{remaining} records undelivered, failures: {failures[:5]}")
    print(json.dumps({"latest": latest, "first_offset": min(offsets), "last_offset": max(offsets)}))


if __name__ == "__main__":
    bootstrap, topic, records, keys, codec, seed = sys.argv[1:7]
    start = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    main(bootstrap, topic, int(records), int(keys), codec, int(seed), start)
