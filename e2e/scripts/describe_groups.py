"""Group inspection as operators do it: a confluent-kafka consumer joins GROUP on TOPIC and
commits, then the admin client lists the groups, describes the group (members and their
assignments) and reads its committed offsets. Prints one JSON document; exits non-zero on error.

Usage: describe_groups.py BOOTSTRAP GROUP TOPIC
"""

import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka import ConsumerGroupTopicPartitions


def main():
    bootstrap, group, topic = sys.argv[1:4]
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": "describe-me",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    deadline = time.time() + 30
    while not consumer.assignment():
        if time.time() > deadline:
            raise SystemExit("no assignment within 30 s")
        consumer.poll(0.2)
    assignment = consumer.assignment()
    consumer.commit(offsets=[TopicPartition(topic, p.partition, 3) for p in assignment], asynchronous=False)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=10).result()
    groups = sorted(g.group_id for g in listed.valid)
    described = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    members = [
        {
            "client_id": m.client_id,
            "host": m.host,
            "assignment": sorted([tp.topic, tp.partition] for tp in m.assignment.topic_partitions),
        }
        for m in described.members
    ]
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)[group].result()
    committed = sorted([tp.topic, tp.partition, tp.offset] for tp in offsets.topic_partitions)
    consumer.close()
    print(json.dumps({
        "groups": groups,
        "state": str(described.state),
        "protocol": described.partition_assignor,
        "members": members,
        "committed": committed,
    }))


if __name__ == "__main__":
    main()
