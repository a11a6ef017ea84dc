"""Reads driftline's drift reports and alerts the way an alerting consumer would (confluent-kafka),
checks each message is JSON with the documented fields, and prints one JSON summary line.

Usage: python read_drift.py BOOTSTRAP DRIFT_TOPIC ALERTS_TOPIC
"""
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition

bootstrap, drift_topic, alerts_topic = sys.argv[1:4]
REPORT_FIELDS = {"column", "role", "kind", "reference_id", "instance", "partitions", "window", "missing_rate", "psi", "kl", "bins", "drift"}
ALERT_FIELDS = {"state", "severity", "column", "statistic", "value", "threshold", "window", "reference_id"}


def read_all(topic, idle_s=5.0, limit_s=60.0):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "drift-reader", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out, started, last = [], time.time(), time.time()
    while time.time() - last < idle_s and time.time() - started < limit_s:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            sys.exit(f"reading {topic}: {m.error()}")
        value = json.loads(m.value())
        if m.key().decode() != value["column"]:
            sys.exit(f"{topic}: key {m.key()} is not the column {value['column']}")
        out.append(value)
        last = time.time()
    consumer.close()
    return out


reports = read_all(drift_topic)
alerts = read_all(alerts_topic)
for r in reports:
    missing = REPORT_FIELDS - r.keys()
    if missing:
        sys.exit(f"report without {missing}: {r}")
for a in alerts:
    missing = ALERT_FIELDS - a.keys()
    if missing:
        sys.exit(f"alert without {missing}: {a}")
print(json.dumps({"reports": reports, "alerts": alerts}))
