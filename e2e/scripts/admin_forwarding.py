"""Admin operations through confluent-kafka's AdminClient bootstrapped at one broker.

Usage: admin_forwarding.py BOOTSTRAP TOPIC
Runs create, create again, an impossible replication factor, grow and shrink the partitions,
set a config and a config that does not exist, read the config back, delete and delete again,
each through the one broker given. Prints one JSON object: each step's outcome, `OK` or the
Kafka error name the broker answered, plus what was read back. The calling test compares the
object for a broker that is not the controller with the one for the controller.
"""

import json
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

TIMEOUT = 30


def outcome(future):
    try:
        future.result(timeout=TIMEOUT)
        return "OK"
    except KafkaException as e:
        return e.args[0].name()


def only(futures):
    (future,) = futures.values()
    return outcome(future)


def set_config(admin, topic, key, value):
    entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    return only(admin.incremental_alter_configs([resource]))


def main(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})
    steps = {}

    def create(name, partitions, replication):
        new = NewTopic(name, num_partitions=partitions, replication_factor=replication)
        return only(admin.create_topics([new], operation_timeout=TIMEOUT))

    steps["create"] = create(topic, 3, 1)
    steps["create_again"] = create(topic, 3, 1)
    steps["replication_factor_4"] = create(topic + "-rf4", 1, 4)
    steps["grow_to_5"] = only(admin.create_partitions([NewPartitions(topic, 5)], operation_timeout=TIMEOUT))
    steps["shrink_to_2"] = only(admin.create_partitions([NewPartitions(topic, 2)], operation_timeout=TIMEOUT))
    steps["set_retention"] = set_config(admin, topic, "retention.ms", "60000")
    steps["set_unknown_key"] = set_config(admin, topic, "no.such.key", "1")

    (described,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    configs = described.result(timeout=TIMEOUT)
    steps["retention_read_back"] = configs["retention.ms"].value
    steps["partitions_seen"] = len(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions)

    steps["delete"] = only(admin.delete_topics([topic], operation_timeout=TIMEOUT))
    steps["delete_again"] = only(admin.delete_topics([topic], operation_timeout=TIMEOUT))
    print(json.dumps(steps, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
