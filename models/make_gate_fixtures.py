"""Makes the quality-gate fixtures (tests/tests/quality_gate.rs):

- tests/fixtures/gate_labeled.jsonl: 3 000 sensor events with their ground truth in `label`
  (1: a faulty reading), from the same simulation that trained the demo model;
- tests/fixtures/anomaly_classifier_undertrained.onnx: the demo network trained for 3 steps
  instead of 1 500, version 0.1.0: the deliberately worse candidate;
- tests/fixtures/gate_expected.json: accuracy, AUC (of the anomaly probability) and RMSE (of the
  anomaly probability against the label) of both models on that file, from Python onnxruntime
  and numpy, for driftline's gate to reproduce.

Run: .venv/bin/python models/make_gate_fixtures.py   (needs numpy, onnx, onnxruntime)
"""
import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from make_demo_model import NAMES, ROOT, readings, to_onnx, train


def auc(scores, labels):
    """Mann-Whitney U with average ranks for ties (scikit-learn's roc_auc_score)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    p = labels.sum()
    n = len(labels) - p
    return float((ranks[labels == 1].sum() - p * (p + 1) / 2) / (p * n))


def main():
    fixtures = ROOT / "tests" / "fixtures"
    x, y = readings(np.random.default_rng(7), 40_000, fault_rate=0.5)
    worse = to_onnx(*train(x, y, steps=3))
    worse.model_version = 0
    helper.set_model_props(worse, {"version": "0.1.0", "features": ",".join(NAMES)})
    worse_path = fixtures / "anomaly_classifier_undertrained.onnx"
    onnx.save(worse, worse_path)

    xl, yl = readings(np.random.default_rng(31), 3_000, fault_rate=0.2)
    xl = np.round(xl, 4)
    lines = []
    for i in range(len(xl)):
        event = {"device_id": f"labeled-{i}", "ts": 1_700_000_000_000 + i}
        event.update({n: float(v) for n, v in zip(NAMES, xl[i])})
        event["label"] = int(yl[i])
        lines.append(json.dumps(event))
    (fixtures / "gate_labeled.jsonl").write_text("\n".join(lines) + "\n")

    expected = {}
    for name, path in [("demo", ROOT / "models" / "anomaly_classifier.onnx"), ("undertrained", worse_path)]:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        label, probs = sess.run(["label", "probabilities"], {"features": xl.astype(np.float32)})
        p1 = probs[:, 1].astype(np.float64)
        expected[name] = {
            "accuracy": float((label == yl).mean()),
            "auc": auc(p1, yl),
            "rmse": float(np.sqrt(((p1 - yl) ** 2).mean())),
        }
    (fixtures / "gate_expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
