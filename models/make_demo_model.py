"""Makes models/anomaly_classifier.onnx, the demo's anomaly classifier over the sensors in
sensors.json, and tests/fixtures/demo_predictions.jsonl, events with the outputs that Python
onnxruntime gives for them (the reference the integration tests compare driftline against).

Recipe: healthy readings are Normal(mean, std) per sensor; a faulty reading has one to three
sensors shifted by +/- fault_shift_std standard deviations. A 16-32-2 MLP (standardisation baked
into the graph, ReLU, softmax) is trained with numpy by full-batch gradient descent on 40k
readings (seeded, so the file is reproducible), then written with onnx.helper at opset 13.
Outputs: `probabilities` float32 [N, 2] (healthy, anomaly) and `label` int64 [N].

Run: .venv/bin/python models/make_demo_model.py   (needs numpy, onnx, onnxruntime)
"""
import json
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = json.loads((ROOT / "models" / "sensors.json").read_text())
NAMES = [s["name"] for s in SPEC["sensors"]]
MEAN = np.array([s["mean"] for s in SPEC["sensors"]], dtype=np.float64)
STD = np.array([s["std"] for s in SPEC["sensors"]], dtype=np.float64)
F = len(NAMES)


def readings(rng, n, fault_rate):
    z = rng.standard_normal((n, F))
    faulty = rng.random(n) < fault_rate
    for i in np.flatnonzero(faulty):
        k = rng.integers(1, 4)
        cols = rng.choice(F, size=k, replace=False)
        z[i, cols] += rng.choice([-1.0, 1.0], size=k) * SPEC["fault_shift_std"]
    return MEAN + z * STD, faulty.astype(np.int64)


def train(x, y, hidden=32, steps=1500, lr=0.5, seed=1):
    rng = np.random.default_rng(seed)
    z = (x - MEAN) / STD
    w1 = rng.standard_normal((F, hidden)) * np.sqrt(2.0 / F)
    b1 = np.zeros(hidden)
    w2 = rng.standard_normal((hidden, 2)) * np.sqrt(1.0 / hidden)
    b2 = np.zeros(2)
    onehot = np.eye(2)[y]
    for _ in range(steps):
        h = np.maximum(z @ w1 + b1, 0.0)
        logits = h @ w2 + b2
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(z)
        gw2, gb2 = h.T @ g, g.sum(axis=0)
        gh = (g @ w2.T) * (h > 0)
        gw1, gb1 = z.T @ gh, gh.sum(axis=0)
        w1 -= lr * gw1
        b1 -= lr * gb1
        w2 -= lr * gw2
        b2 -= lr * gb2
    return w1, b1, w2, b2


def to_onnx(w1, b1, w2, b2):
    f32 = lambda a, name: numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["z"]),
        helper.make_node("MatMul", ["z", "w1"], ["h_lin"]),
        helper.make_node("Add", ["h_lin", "b1"], ["h_pre"]),
        helper.make_node("Relu", ["h_pre"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["o_lin"]),
        helper.make_node("Add", ["o_lin", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "anomaly_classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", F])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        ],
        [f32(MEAN, "mean"), f32(STD, "std"), f32(w1, "w1"), f32(b1, "b1"), f32(w2, "w2"), f32(b2, "b2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="driftline")
    model.ir_version = 8
    model.model_version = 1
    helper.set_model_props(model, {"version": "1.0.0", "features": ",".join(NAMES)})
    onnx.checker.check_model(model)
    return model


def main():
    rng = np.random.default_rng(7)
    x, y = readings(rng, 40_000, fault_rate=0.5)
    weights = train(x, y)
    model = to_onnx(*weights)
    out = ROOT / "models" / "anomaly_classifier.onnx"
    onnx.save(model, out)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    xt, yt = readings(np.random.default_rng(11), 5_000, fault_rate=0.05)
    label, probs = sess.run(["label", "probabilities"], {"features": xt.astype(np.float32)})
    print(f"{out.name}: held-out accuracy {(label == yt).mean():.4f} at a 5% fault rate")

    # The fixture: events as a producer would send them, and what onnxruntime says of them.
    # Values are rounded to 4 decimals so the JSON text is exactly what the model reads.
    fx, _ = readings(np.random.default_rng(23), 2_000, fault_rate=0.1)
    fx = np.round(fx, 4)
    label, probs = sess.run(["label", "probabilities"], {"features": fx.astype(np.float32)})
    lines = []
    for i in range(len(fx)):
        event = {"device_id": f"fixture-{i}", "ts": 1_700_000_000_000 + i}
        event.update({n: float(v) for n, v in zip(NAMES, fx[i])})
        lines.append(json.dumps({"event": event, "label": int(label[i]), "probabilities": [float(p) for p in probs[i]]}))
    fixture = ROOT / "tests" / "fixtures" / "demo_predictions.jsonl"
    fixture.write_text("\n".join(lines) + "\n")
    print(f"{fixture.name}: {len(lines)} events, {int(label.sum())} predicted anomalies")


if __name__ == "__main__":
    main()
