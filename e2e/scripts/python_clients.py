"""Produce and consume with the two common Python Kafka clients against one broker.

Usage: python_clients.py BOOTSTRAP TOPIC COUNT
Prints one line per client: `<client> produced=N consumed=N in_order=True`; exits non-zero on
any mismatch, so the calling test sees failures by exit code and output.
"""

import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition as KTopicPartition


def confluent(bootstrap, topic, count):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    delivered = []

    def on_delivery(err, msg):
        if err is not None:
            raise SystemExit(f"confluent-kafka delivery failed: {err}")
        delivered.append((msg.partition(), msg.offset()))

    for i in range(count):
        producer.produce(topic, key=b"k", value=f"confluent-{i}".encode(), partition=0, on_delivery=on_delivery)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "py-confluent", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    while len(values) < count:
        msg = consumer.poll(10)
        if msg is None:
            raise SystemExit(f"confluent-kafka consumed only {len(values)} of {count}")
        if msg.error():
            raise SystemExit(f"confluent-kafka consumer error: {msg.error()}")
        values.append(msg.value().decode())
    consumer.close()
    in_order = values == [f"confluent-{i}" for i in range(count)]
    print(f"confluent-kafka produced={len(delivered)} consumed={len(values)} in_order={in_order}")
    return in_order and len(delivered) == count


def kafka_python(bootstrap, topic, count):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = [producer.send(topic, value=f"kafka-python-{i}".encode(), partition=1) for i in range(count)]
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    consumer.assign([KTopicPartition(topic, 1)])
    consumer.seek_to_beginning()
    values = []
    for message in consumer:
        values.append(message.value.decode())
        if len(values) == count:
            break
    consumer.close()
    in_order = values == [f"kafka-python-{i}" for i in range(count)]
    contiguous = offsets == list(range(count))
    print(f"kafka-python produced={len(offsets)} consumed={len(values)} in_order={in_order and contiguous}")
    return in_order and contiguous


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ok = confluent(bootstrap, topic, count)
    ok = kafka_python(bootstrap, topic, count) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
