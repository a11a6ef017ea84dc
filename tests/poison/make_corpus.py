#!/usr/bin/env python3
"""Writes the poison corpus: one file per payload, and expected.tsv, what driftline must do with
each under configs/demo.toml's schema (device_id, ts, 16 required f32 features).

expected.tsv: file <TAB> outcome <TAB> field, where outcome is `accept` or a dead-letter reason.
Payloads too big to keep in git are listed as `generated:NAME`; the test builds them
(tests/src/poison.rs). Run from the repository root: python3 tests/poison/make_corpus.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = ["temperature", "humidity", "pressure", "vibration", "voltage", "current", "power",
            "rpm", "noise_db", "co2_ppm", "pm25", "light_lux", "flow_rate", "torque",
            "bearing_temp", "battery_v"]


def event(**overrides):
    """A valid demo event as ordered (key, raw JSON text) pairs; overrides replace raw values,
    None removes the key."""
    fields = [("device_id", '"poison"'), ("ts", "1700000000000")]
    fields += [(f, f"{20.5 + i}") for i, f in enumerate(FEATURES)]
    out = []
    for k, v in fields:
        if k in overrides:
            v = overrides.pop(k)
            if v is None:
                continue
        out.append((k, v))
    out += list(overrides.items())
    return out


def text(fields):
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}").encode()


valid = text(event())
CASES = [
    # (name, payload bytes, outcome, field)
    ("empty", b"", "empty_payload", ""),
    ("whitespace-only", b" \n\t\r ", "empty_payload", ""),
    ("not-json", b"temperature=21.5", "invalid_json", ""),
    ("truncated", valid[: len(valid) // 2], "invalid_json", ""),
    ("only-open-brace", b"{", "invalid_json", ""),
    ("invalid-utf8-in-value", valid.replace(b'"poison"', b'"pois\xffon"'), "invalid_json", ""),
    ("invalid-utf8-in-key", valid[:-1] + b',"k\xfe\xff":1}', "invalid_json", ""),
    ("invalid-utf8-bare-bytes", b"\xff\xfe\x00\x01garbage", "invalid_json", ""),
    ("utf16-encoded", valid.decode().encode("utf-16-le"), "invalid_json", ""),
    ("utf8-bom", b"\xef\xbb\xbf" + valid, "invalid_json", ""),
    ("control-char-in-string", text(event(device_id='"dev\x01ice"')), "invalid_json", ""),
    ("lone-surrogate-escape", text(event(device_id='"dev\\ud800"')), "invalid_json", ""),
    ("nan", text(event(temperature="NaN")), "invalid_json", ""),
    ("infinity", text(event(temperature="Infinity")), "invalid_json", ""),
    ("negative-infinity", text(event(humidity="-Infinity")), "invalid_json", ""),
    ("number-beyond-f64", text(event(pressure="1e400")), "invalid_json", ""),
    ("leading-zero-number", text(event(rpm="0123")), "invalid_json", ""),
    ("two-objects", valid + valid, "invalid_json", ""),
    ("trailing-garbage", valid + b" trailing", "invalid_json", ""),
    ("trailing-nul", valid + b"\x00", "invalid_json", ""),
    ("single-quotes", valid.replace(b'"', b"'"), "invalid_json", ""),
    ("trailing-comma", valid[:-1] + b",}", "invalid_json", ""),
    ("array", b"[" + valid + b"]", "not_an_object", ""),
    ("string", b'"just a string"', "not_an_object", ""),
    ("number", b"42", "not_an_object", ""),
    ("null", b"null", "not_an_object", ""),
    ("f32-overflow", text(event(temperature="3.5e38")), "out_of_range", "temperature"),
    ("f32-negative-overflow", text(event(voltage="-1e39")), "out_of_range", "voltage"),
    ("timestamp-beyond-i64", text(event(ts="100000000000000000000")), "out_of_range", "ts"),
    ("number-as-string", text(event(temperature='"21.5"')), "wrong_type", "temperature"),
    ("bool-for-number", text(event(humidity="true")), "wrong_type", "humidity"),
    ("array-for-number", text(event(pressure="[1013.2]")), "wrong_type", "pressure"),
    ("object-for-number", text(event(rpm='{"value":1500}')), "wrong_type", "rpm"),
    ("id-as-object", text(event(device_id='{"id":"x"}')), "wrong_type", "device_id"),
    ("id-as-fraction", text(event(device_id="1.5")), "wrong_type", "device_id"),
    ("timestamp-as-string", text(event(ts='"2023-11-14T22:13:20Z"')), "wrong_type", "ts"),
    ("timestamp-fraction", text(event(ts="1700000000000.5")), "wrong_type", "ts"),
    ("required-feature-null", text(event(temperature="null")), "null_field", "temperature"),
    ("id-null", text(event(device_id="null")), "null_field", "device_id"),
    ("missing-id", text(event(device_id=None)), "missing_field", "device_id"),
    ("empty-id", text(event(device_id='""')), "missing_field", "device_id"),
    ("missing-feature", text(event(battery_v=None)), "missing_field", "battery_v"),
    ("empty-object", b"{}", "missing_field", "device_id"),
    ("duplicate-feature", valid[:-1] + b',"temperature":99}', "duplicate_field", "temperature"),
    ("duplicate-id", valid[:-1] + b',"device_id":"other"}', "duplicate_field", "device_id"),
    # Accepted by a documented rule.
    ("missing-timestamp-takes-kafka-time", text(event(ts=None)), "accept", ""),
    ("integer-id", text(event(device_id="4711")), "accept", ""),
    ("integer-feature", text(event(rpm="1500")), "accept", ""),
    ("negative-zero", text(event(vibration="-0.0")), "accept", ""),
    ("tiny-number-rounds-to-zero-in-f32", text(event(vibration="1e-50")), "accept", ""),
    ("unicode-escapes-in-id", text(event(device_id='"d\\u00e9vice-\\ud83d\\ude00"')), "accept", ""),
    ("escaped-key", valid.replace(b'"temperature"', b'"temp\\u0065rature"'), "accept", ""),
    ("syntax-error-inside-unknown-field", valid[:-1] + b',"meta":{"a":[1,{"b":[null,true,"x"]}],"c":1e400e}}', "invalid_json", ""),
    ("unknown-fields-any-type", valid[:-1] + b',"meta":{"a":[1,{"b":[null,true,"x"]}]},"n":null,"s":"NaN"}', "accept", ""),
    ("whitespace-around", b" \n\t" + valid + b"\r\n ", "accept", ""),
    ("keys-in-other-order", text(list(reversed(event()))), "accept", ""),
    # The whole event must be UTF-8 with paired surrogate escapes, in the fields driftline skips
    # as in those it reads (serde_json alone checks only the latter).
    ("invalid-utf8-in-unknown-field", valid[:-1] + b',"note":"caf\xe9"}', "invalid_json", ""),
    ("lone-surrogate-in-unknown-field", valid[:-1] + b',"note":"x\\ud800y"}', "invalid_json", ""),
    ("lone-low-surrogate-in-unknown-key", valid[:-1] + b',"\\udc00":1}', "invalid_json", ""),
    ("control-char-in-unknown-field", valid[:-1] + b',"note":"a\x01b"}', "invalid_json", ""),
    ("surrogate-pair-in-unknown-field", valid[:-1] + b',"note":"\\ud83d\\ude00"}', "accept", ""),
    ("escaped-backslash-then-u-in-unknown-field", valid[:-1] + b',"note":"\\\\ud800"}', "accept", ""),
]

GENERATED = [
    # Built by tests/src/poison.rs (too big for git).
    ("generated:over-max-event-bytes", "too_large", ""),
    ("generated:multi-megabyte", "too_large", ""),
    ("generated:just-under-max-event-bytes", "accept", ""),
    ("generated:deep-nesting-in-unknown-field", "accept", ""),
    ("generated:deep-nesting-top-level", "not_an_object", ""),
    ("generated:deep-nesting-unclosed", "invalid_json", ""),
    ("generated:two-thousand-unknown-keys", "accept", ""),
    ("generated:id-longer-than-1024-bytes", "out_of_range", "device_id"),
]


def main():
    for f in os.listdir(HERE):
        if f.endswith(".event"):
            os.remove(os.path.join(HERE, f))
    lines = ["# file\toutcome\tfield  (written by make_corpus.py; see README.md, \"Events\")"]
    for i, (name, payload, outcome, field) in enumerate(CASES):
        file = f"{i:02d}-{name}.event"
        with open(os.path.join(HERE, file), "wb") as fh:
            fh.write(payload)
        lines.append(f"{file}\t{outcome}\t{field}")
    for name, outcome, field in GENERATED:
        lines.append(f"{name}\t{outcome}\t{field}")
    with open(os.path.join(HERE, "expected.tsv"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"{len(CASES)} files and {len(GENERATED)} generated payloads")


if __name__ == "__main__":
    main()
