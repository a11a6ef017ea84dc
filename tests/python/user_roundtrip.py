"""Plays a user of driftline with the real confluent-kafka client: produces sensor events (and a
few malformed ones) to the input topic, then reads the predictions and the dead letters back and
checks what a downstream consumer relies on. Exits non-zero with a message on any mismatch.

Usage: python user_roundtrip.py BOOTSTRAP INPUT OUTPUT DLQ
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, input_topic, output_topic, dlq_topic = sys.argv[1:5]
SENSORS = json.load(open("models/sensors.json"))["sensors"]
N_VALID = 300
MALFORMED = [b'{"device_id": "py-bad-1", "temperature": "warm"}', b"{not json", b""]


def fail(message):
    print(f"user_roundtrip: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


producer = Producer({"bootstrap.servers": bootstrap})
for i in range(N_VALID):
    event = {"device_id": f"py-{i}", "ts": int(time.time() * 1000)}
    event.update({s["name"]: s["mean"] for s in SENSORS})
    producer.produce(input_topic, key=f"py-{i}", value=json.dumps(event), headers=[("trace-id", f"t{i}")])
for j, payload in enumerate(MALFORMED):
    producer.produce(input_topic, key=f"py-bad-{j}", value=payload, headers=[("trace-id", f"bad{j}")])
if producer.flush(30) != 0:
    fail("events not acknowledged by the broker")


def read(topic, expected, limit_s=90):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"user-{topic}", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])  # from the beginning
    records, started = [], time.time()
    while len(records) < expected and time.time() - started < limit_s:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail(f"reading {topic}: {m.error()}")
        records.append(m)
    consumer.close()
    return records


predictions = read(output_topic, N_VALID)
if len(predictions) != N_VALID:
    fail(f"expected {N_VALID} predictions, got {len(predictions)}")
ids = set()
for m in predictions:
    p = json.loads(m.value())
    headers = dict(m.headers() or [])
    if m.key().decode() != p["id"]:
        fail(f"prediction key {m.key()} differs from its id {p['id']}")
    if p["model"] != "anomaly_classifier" or p["outputs"]["label"] not in (0, 1):
        fail(f"unexpected prediction {p}")
    if abs(sum(p["outputs"]["probabilities"]) - 1.0) > 1e-5:
        fail(f"probabilities do not sum to 1: {p}")
    if headers.get("driftline.source.topic", b"").decode() != input_topic or "driftline.source.offset" not in headers:
        fail(f"prediction without source headers: {headers}")
    ids.add(p["id"])
if ids != {f"py-{i}" for i in range(N_VALID)}:
    fail("predictions do not cover every event id exactly")

dead = read(dlq_topic, len(MALFORMED))
if sorted(m.value() or b"" for m in dead) != sorted(MALFORMED):
    fail(f"dead letters do not hold the original payloads: {[m.value() for m in dead]}")
for m in dead:
    headers = dict(m.headers() or [])
    if not headers.get("trace-id", b"").startswith(b"bad") or not headers.get("driftline.error.reason"):
        fail(f"dead letter lacks its original or reason headers: {headers}")
print(f"user_roundtrip: ok: {len(predictions)} predictions, {len(dead)} dead letters")
