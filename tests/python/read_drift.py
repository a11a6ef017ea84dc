"""Reads driftline's drift reports and alerts the way an alerting consumer would (confluent-kafka),
checks each message is JSON with the documented fields, and prints one JSON summary line.

Usage: python read_drift.py BOOTSTRAP DRIFT_TOPIC ALERTS_TOPIC
"""
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition

bootstrap, drift_topic, alerts_topic = sys.argv[1:4]
REPORT_FIELDS = {"schema_version", "column", "role", "kind", "reference_id", "instance", "partitions", "window", "missing_rate", "psi", "kl", "bins", "family", "verdict"}
ALERT_FIELDS = {"schema_version", "state", "severity", "column", "role", "statistics", "verdict", "window", "reference_id"}
WINDOW_FIELDS = {"events", "complete", "min_event_ms", "max_event_ms", "sources"}


def refuse_constant(name):
    sys.exit(f"a non-finite number ({name}) in a report")


def check_numbers(value, where):
    """Every number is a number: no "inf" or "nan" strings where a number belongs."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in ("column", "edges_or_categories", "reason") and isinstance(v, str) and v.lower() in ("inf", "-inf", "nan"):
                sys.exit(f"{where}: {k} is the string {v!r}")
            check_numbers(v, where)
    elif isinstance(value, list):
        for v in value:
            check_numbers(v, where)


def read_all(topic, limit_s=60.0):
    """Every record up to the topic's end as it is now (the writer has stopped), bounded in time."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "drift-reader", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    end = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out, seen, started = [], {p: 0 for p in partitions}, time.time()
    while any(seen[p] < end[p] for p in partitions):
        if time.time() - started > limit_s:
            sys.exit(f"{topic}: read {seen} of {end} records in {limit_s} s")
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            sys.exit(f"reading {topic}: {m.error()}")
        seen[m.partition()] = m.offset() + 1
        value = json.loads(m.value(), parse_constant=refuse_constant)
        if m.key().decode() != value["column"]:
            sys.exit(f"{topic}: key {m.key()} is not the column {value['column']}")
        out.append(value)
    consumer.close()
    return out


reports = read_all(drift_topic)
alerts = read_all(alerts_topic)
for r in reports:
    if "kind" not in r:
        continue  # a shadow_agreement record
    missing = (REPORT_FIELDS - r.keys()) | (WINDOW_FIELDS - r["window"].keys())
    if missing:
        sys.exit(f"report without {missing}: {r}")
    if r["schema_version"] != 2:
        sys.exit(f"report schema_version {r['schema_version']}, expected 2")
    check_numbers(r, "report")
for a in alerts:
    missing = ALERT_FIELDS - a.keys()
    if missing:
        sys.exit(f"alert without {missing}: {a}")
    check_numbers(a, "alert")
print(json.dumps({"reports": reports, "alerts": alerts}))
