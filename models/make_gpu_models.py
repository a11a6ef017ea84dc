"""Makes the two MLPs of the GPU benchmark (BENCHMARKS.md, "GPU"): the demo model's signature
(`features` float32 [N, 16] in; `label` int64 [N] and `probabilities` float32 [N, 2] out), so the
pipeline's decode, batching and encode run unchanged, with hidden layers of any width:

  mlp_16x64x2.onnx             16 → 64 → 2                (as small as the demo model)
  mlp_16x2048x2048x2048x2.onnx 16 → 2048 → 2048 → 2048 → 2 (8.5M weights, ~34 MB)

Only the speed of these models matters, not what they predict. Their weights are ±1/sqrt(fan_in)
with seeded random signs: the arithmetic costs what any float32 weights cost, and the files
compress about 20 to 1, which keeps the copy to a GPU machine small.

Run: .venv/bin/python models/make_gpu_models.py OUTDIR   (needs numpy and onnx; OUTDIR is
git-ignored, e.g. .gpu-bench/models)
"""
import json
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
SENSORS = json.loads((ROOT / "models" / "sensors.json").read_text())["sensors"]
MEAN = np.array([s["mean"] for s in SENSORS], dtype=np.float32)
STD = np.array([s["std"] for s in SENSORS], dtype=np.float32)
F = len(SENSORS)


def mlp(name, hidden, seed):
    rng = np.random.default_rng(seed)
    widths = [F, *hidden, 2]
    initializers = [numpy_helper.from_array(MEAN, "mean"), numpy_helper.from_array(STD, "std")]
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["h0"]),
    ]
    for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        signs = rng.integers(0, 2, size=(fan_in, fan_out)) * 2 - 1
        w = (signs / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, dtype=np.float32)
        initializers += [numpy_helper.from_array(w, f"w{layer}"), numpy_helper.from_array(b, f"b{layer}")]
        out = "logits" if fan_out == 2 else f"a{layer + 1}"
        nodes.append(helper.make_node("Gemm", [f"h{layer}", f"w{layer}", f"b{layer}"], [out]))
        if out != "logits":
            nodes.append(helper.make_node("Relu", [out], [f"h{layer + 1}"]))
    nodes += [
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", F])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="driftline")
    model.ir_version = 8
    helper.set_model_props(model, {"version": "1.0.0"})
    onnx.checker.check_model(model)
    return model


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".gpu-bench" / "models")
    out.mkdir(parents=True, exist_ok=True)
    for name, hidden in [("mlp_16x64x2", [64]), ("mlp_16x2048x2048x2048x2", [2048, 2048, 2048])]:
        path = out / f"{name}.onnx"
        onnx.save(mlp(name, hidden, seed=len(hidden)), path)
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
