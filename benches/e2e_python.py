#!/usr/bin/env python3
"""The baseline a user would write instead of driftline, for `make bench-e2e` runs (d) and (f).

(d) --bootstrap: a confluent-kafka consumer loop that decodes each event with orjson, scores
    batches with onnxruntime (up to --max-rows rows, or what arrived within --linger-ms: the
    batching driftline does), writes one JSON prediction per event with orjson and produces it,
    keyed like the input. Client settings are driftline's defaults (configs/default.toml).
(f) --memory N: the same work on N events generated in memory, no Kafka.

Prints one JSON line: {"events": n, "seconds": s} from the first event to the last output
acknowledged (flushed), so that the harness compares like with like.
"""
import argparse
import hashlib
import json
import sys
import time

import numpy as np
import onnxruntime as ort
import orjson


def session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    s = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return s, s.get_inputs()[0].name, [o.name for o in s.get_outputs()]


# What driftline writes on every prediction: the model's name, version and file hash.
MODEL = {"name": "anomaly_classifier", "version": "1.0.0", "sha256": ""}


def score(sess, input_name, output_names, features, events, model):
    """events: decoded dicts. Returns one encoded prediction per event."""
    x = np.array([[e[f] for f in features] for e in events], dtype=np.float32)
    outputs = sess.run(None, {input_name: x})
    now = int(time.time() * 1000)
    predictions = []
    for i, e in enumerate(events):
        predictions.append(
            orjson.dumps(
                {
                    "id": e.get("device_id"),
                    "model": model["name"],
                    "model_version": model["version"],
                    "model_sha256": model["sha256"],
                    "event_timestamp": e.get("ts"),
                    "processing_timestamp": now,
                    "outputs": {name: out[i].tolist() for name, out in zip(output_names, outputs)},
                }
            )
        )
    return predictions


def run_kafka(args, features):
    from confluent_kafka import Consumer, Producer

    MODEL["sha256"] = hashlib.sha256(open(args.model, "rb").read()).hexdigest()
    sess, input_name, output_names = session(args.model)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "fetch.wait.max.ms": 100,
            "fetch.queue.backoff.ms": 10,
            "queued.max.messages.kbytes": 65536,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "linger.ms": 5,
            "batch.size": 1000000,
            "acks": "all",
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1000000,
        }
    )
    consumer.subscribe([args.input])
    done, started = 0, None
    deadline = time.monotonic() + args.limit_s
    while done < args.events and time.monotonic() < deadline:
        messages = consumer.consume(num_messages=args.max_rows, timeout=args.linger_ms / 1000)
        if not messages:
            continue
        if started is None:
            started = time.monotonic()
        events, keys = [], []
        for m in messages:
            if m.error():
                continue
            try:
                events.append(orjson.loads(m.value()))
                keys.append(m.key())
            except orjson.JSONDecodeError:
                producer.produce(args.dlq, m.value(), key=m.key())
        for key, prediction in zip(keys, score(sess, input_name, output_names, features, events, MODEL)):
            while True:
                try:
                    producer.produce(args.output, prediction, key=key)
                    break
                except BufferError:
                    producer.poll(0.001)
        producer.poll(0)
        done += len(messages)
    producer.flush(60)
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close()
    return done, elapsed


def run_memory(args, features):
    MODEL["sha256"] = hashlib.sha256(open(args.model, "rb").read()).hexdigest()
    sess, input_name, output_names = session(args.model)
    rng = np.random.default_rng(7)
    payloads = []
    for i in range(args.memory):
        event = {"device_id": f"sensor-{i % 500:05d}", "ts": 1_700_000_000_000 + i}
        for f in features:
            event[f] = round(float(rng.normal(50.0, 10.0)), 4)
        payloads.append(orjson.dumps(event))
    started = time.monotonic()
    out = 0
    for start in range(0, len(payloads), args.max_rows):
        events = [orjson.loads(p) for p in payloads[start : start + args.max_rows]]
        out += sum(len(p) for p in score(sess, input_name, output_names, features, events, MODEL))
    elapsed = time.monotonic() - started
    assert out > 0
    return len(payloads), elapsed


def peak_rss_bytes():
    """This process's resident high-water mark (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--features", required=True, help="comma-separated, in the model's input order")
    p.add_argument("--bootstrap")
    p.add_argument("--input", default="in")
    p.add_argument("--output", default="out")
    p.add_argument("--dlq", default="dlq")
    p.add_argument("--group", default="python-baseline")
    p.add_argument("--events", type=int, default=0, help="stop after consuming this many")
    p.add_argument("--memory", type=int, default=0, help="run in memory over this many events")
    p.add_argument("--max-rows", type=int, default=1024)
    p.add_argument("--linger-ms", type=float, default=5.0)
    p.add_argument("--limit-s", type=float, default=300.0)
    args = p.parse_args()
    features = args.features.split(",")
    if args.memory:
        events, seconds = run_memory(args, features)
    elif args.bootstrap:
        events, seconds = run_kafka(args, features)
    else:
        sys.exit("give --bootstrap (Kafka) or --memory N")
    print(json.dumps({"events": events, "seconds": seconds, "peak_rss_bytes": peak_rss_bytes()}))


if __name__ == "__main__":
    main()
