"""Produce COUNT records with acks=all to partition 0 of TOPIC, one at a time, with the chosen
Python client (confluent-kafka or kafka-python), surviving broker failures by the client's own
retries. Values are `<client>-<i>` with i zero-padded to 5 digits.

Usage: replicated_producer.py CLIENT BOOTSTRAP TOPIC COUNT
Prints `<client> acked=N failed=M` at the end; exits non-zero if any delivery failed.
"""

import sys
import time


def confluent(bootstrap, topic, count):
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "message.timeout.ms": 60000,
        "topic.metadata.refresh.interval.ms": 1000,
        "linger.ms": 1,
    })
    outcome = {"acked": 0, "failed": 0}

    def on_delivery(err, _msg):
        outcome["failed" if err is not None else "acked"] += 1
        if err is not None:
            print(f"delivery failed: {err}", file=sys.stderr)

    for i in range(count):
        producer.produce(topic, value=f"confluent-kafka-{i:05}".encode(), partition=0, on_delivery=on_delivery)
        producer.poll(0)
        time.sleep(0.02)
    producer.flush(90)
    return outcome["acked"], outcome["failed"]


def kafka_python(bootstrap, topic, count):
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        retries=1000,
        retry_backoff_ms=100,
        request_timeout_ms=5000,
        delivery_timeout_ms=60000,
        max_in_flight_requests_per_connection=1,
        metadata_max_age_ms=1000,
    )
    acked = failed = 0
    for i in range(count):
        future = producer.send(topic, value=f"kafka-python-{i:05}".encode(), partition=0)
        try:
            future.get(timeout=90)
            acked += 1
        except Exception as error:  # every failure counts, whatever the client raises
            print(f"delivery failed: {error!r}", file=sys.stderr)
            failed += 1
        time.sleep(0.02)
    producer.close(timeout=30)
    return acked, failed


def main():
    client, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    produce = {"confluent-kafka": confluent, "kafka-python": kafka_python}[client]
    acked, failed = produce(bootstrap, topic, count)
    print(f"{client} acked={acked} failed={failed}", flush=True)
    sys.exit(0 if failed == 0 and acked == count else 1)


if __name__ == "__main__":
    main()
