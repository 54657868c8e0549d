#!/usr/bin/env python3
"""A consumer-group member on confluent-kafka (librdkafka's Python binding) or kafka-python (a
pure-Python client), driven by e2e/src/group_members.rs.

It subscribes to one topic in one group and reports, one JSON object per stdout line:
  {"event": "started"}
  {"event": "assigned", "partitions": [..]}   (eager protocol: the whole new assignment)
  {"event": "revoked", "partitions": [..]}
  {"event": "lost", "partitions": [..]}
  {"event": "record", "partition": p, "offset": o, "value": "..."}
  {"event": "error", "error": "...", "fatal": false}
  {"event": "commit_failed", "error": "..."}   (confluent-kafka: an offset commit that failed)
  {"event": "closed"}
Offsets are auto-committed. SIGTERM closes the consumer cleanly (LeaveGroup); SIGKILL leaves the
broker to notice the member is gone when its session times out.
"""

import argparse
import json
import signal
import sys


def emit(**event):
    print(json.dumps(event), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--strategy", default="range")
    parser.add_argument("--client", choices=["confluent-kafka", "kafka-python"], default="confluent-kafka")
    args = parser.parse_args()

    running = [True]

    def stop(_signum, _frame):
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.client == "kafka-python":
        run_kafka_python(args, running)
    else:
        run_confluent_kafka(args, running)
    emit(event="closed")


def partitions(tps):
    return sorted(tp.partition for tp in tps)


def on_commit(error, _tps):
    if error is not None:
        emit(event="commit_failed", error=str(error))


def run_confluent_kafka(args, running):
    try:
        from confluent_kafka import Consumer
    except ImportError:
        print("confluent-kafka is not installed: run e2e/install-tools.sh", file=sys.stderr)
        sys.exit(2)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "client.id": "python-group-consumer",
            "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": 1000,
            "partition.assignment.strategy": args.strategy,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000,
            "on_commit": on_commit,
        }
    )

    consumer.subscribe(
        [args.topic],
        on_assign=lambda _c, tps: emit(event="assigned", partitions=partitions(tps)),
        on_revoke=lambda _c, tps: emit(event="revoked", partitions=partitions(tps)),
        on_lost=lambda _c, tps: emit(event="lost", partitions=partitions(tps)),
    )
    emit(event="started")
    while running[0]:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            emit(event="error", error=str(msg.error()), fatal=msg.error().fatal())
            continue
        emit(event="record", partition=msg.partition(), offset=msg.offset(), value=text(msg.value()))
    consumer.close()


def run_kafka_python(args, running):
    try:
        from kafka import ConsumerRebalanceListener, KafkaConsumer
    except ImportError:
        print("kafka-python is not installed: run e2e/install-tools.sh", file=sys.stderr)
        sys.exit(2)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit(event="revoked", partitions=partitions(revoked))

        def on_partitions_assigned(self, assigned):
            emit(event="assigned", partitions=partitions(assigned))

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id="kafka-python-group-consumer",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=1000,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=500,
        metadata_max_age_ms=1000,
    )
    consumer.subscribe([args.topic], listener=Listener())
    emit(event="started")
    while running[0]:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                emit(event="record", partition=record.partition, offset=record.offset, value=text(record.value))
    consumer.close()


def text(value):
    return value.decode("utf-8", errors="replace") if value is not None else None


if __name__ == "__main__":
    main()
