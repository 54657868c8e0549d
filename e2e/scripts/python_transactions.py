"""Transactions with confluent-kafka: 10 committed and 10 aborted transactions across three
partitions of two topics; a read_committed consumer must see exactly the committed records, in
order, and a read_uncommitted one all of them. Then kafka-python: one committed and one aborted
transaction on TOPIC_B, read back under read_committed.

Usage: python3 python_transactions.py BOOTSTRAP TOPIC_A TOPIC_B
TOPIC_A has two partitions, TOPIC_B one. Prints one line per check and exits non-zero on a
failed one.
"""

import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def read_all(bootstrap, isolation, partitions, expected, quiet_s=1.5, deadline_s=30):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "python-txn-reader-" + isolation,
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(t, p, 0) for t, p in partitions])
    read = {}
    total = 0
    end = time.monotonic() + deadline_s
    quiet_until = None
    while True:
        now = time.monotonic()
        if total >= expected:
            quiet_until = quiet_until or now + quiet_s
            if now >= quiet_until:
                break
        elif now > end:
            break
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error():
            raise RuntimeError(message.error())
        read.setdefault((message.topic(), message.partition()), []).append(
            message.value().decode())
        total += 1
    consumer.close()
    return read, total


def main():
    bootstrap, topic_a, topic_b = sys.argv[1:4]
    partitions = [(topic_a, 0), (topic_a, 1), (topic_b, 0)]
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "python-txn"})
    producer.init_transactions(30)
    for txn in range(20):
        producer.begin_transaction()
        for topic, partition in partitions:
            producer.produce(topic, f"py{txn}-{topic}-{partition}".encode(), partition=partition)
        if txn % 2 == 0:
            producer.commit_transaction(30)
        else:
            # Flushed first: the client drops records an abort finds still queued, and these
            # must reach the log to be aborted there.
            producer.flush(30)
            producer.abort_transaction(30)

    ok = True
    read, total = read_all(bootstrap, "read_committed", partitions, 30)
    committed_ok = total == 30 and all(
        read.get((t, p)) == [f"py{txn}-{t}-{p}" for txn in range(0, 20, 2)] for t, p in partitions)
    print(f"read_committed records={total} exact_in_order={committed_ok}")
    ok &= committed_ok
    read, total = read_all(bootstrap, "read_uncommitted", partitions, 60)
    uncommitted_ok = total == 60 and all(
        read.get((t, p)) == [f"py{txn}-{t}-{p}" for txn in range(20)] for t, p in partitions)
    print(f"read_uncommitted records={total} exact_in_order={uncommitted_ok}")
    ok &= uncommitted_ok
    ok &= kafka_python(bootstrap, topic_b)
    sys.exit(0 if ok else 1)


def kafka_python(bootstrap, topic):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition

    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kafka-python-txn")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, f"kp-c{i}".encode(), partition=0)
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(2):
        producer.send(topic, f"kp-a{i}".encode(), partition=0)
    producer.flush()
    producer.abort_transaction()
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    consumer.assign([KTopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    seen = [m.value.decode() for m in consumer if m.value.decode().startswith("kp-")]
    consumer.close()
    exact = seen == ["kp-c0", "kp-c1", "kp-c2"]
    print(f"kafka-python read_committed={seen} exact={exact}")
    return exact


if __name__ == "__main__":
    main()
