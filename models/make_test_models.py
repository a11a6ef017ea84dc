"""Makes tests/fixtures/two_inputs.onnx: a model with two named inputs of different element types,
for the test that feature columns bind to named inputs and float64 tensors by config (it sets no
ONNX model_version, which ONNX Runtime reports as i64::MAX).

And tests/fixtures/fails_at_run.onnx: the demo's signature (features float32 [N, 16]) that loads
but cannot run: it reshapes each batch to 3 rows, so a batch whose 16*N values are not a multiple
of 3 fails. `driftline validate` must catch it with the smoke inference, as `run` does.

  a: float32 [N, 2]   b: float64 [N, 1]
  score = (a[:,0] + 2*a[:,1]) as float64 + b     float64 [N, 1]
  flag  = argmax([0, score])                      int64 [N]  (1 when score > 0)

Run: .venv/bin/python models/make_test_models.py   (needs numpy, onnx, onnxruntime)
"""
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "two_inputs.onnx"

nodes = [
    helper.make_node("MatMul", ["a", "w"], ["a_w"]),
    helper.make_node("Cast", ["a_w"], ["a_w64"], to=TensorProto.DOUBLE),
    helper.make_node("Add", ["a_w64", "b"], ["score"]),
    helper.make_node("Mul", ["score", "zero64"], ["zeros"]),
    helper.make_node("Concat", ["zeros", "score"], ["pair"], axis=1),
    helper.make_node("ArgMax", ["pair"], ["flag"], axis=1, keepdims=0),
]
graph = helper.make_graph(
    nodes,
    "two_inputs",
    [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2]),
        helper.make_tensor_value_info("b", TensorProto.DOUBLE, ["N", 1]),
    ],
    [
        helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["N", 1]),
        helper.make_tensor_value_info("flag", TensorProto.INT64, ["N"]),
    ],
    [numpy_helper.from_array(np.array([[1.0], [2.0]], dtype=np.float32), "w"), numpy_helper.from_array(np.array(0.0), "zero64")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="driftline-tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, OUT)

import onnxruntime as ort

sess = ort.InferenceSession(str(OUT), providers=["CPUExecutionProvider"])
score, flag = sess.run(None, {"a": np.array([[1, 1], [-3, 0.5]], dtype=np.float32), "b": np.array([[0.25], [1.0]])})
print(OUT.name, score.ravel().tolist(), flag.tolist())

FAILS = ROOT / "tests" / "fixtures" / "fails_at_run.onnx"
graph = helper.make_graph(
    [helper.make_node("Reshape", ["features", "three_rows"], ["score"])],
    "fails_at_run",
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 16])],
    [helper.make_tensor_value_info("score", TensorProto.FLOAT, [3, None])],
    [numpy_helper.from_array(np.array([3, -1], dtype=np.int64), "three_rows")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="driftline-tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, FAILS)
sess = ort.InferenceSession(str(FAILS), providers=["CPUExecutionProvider"])
try:
    sess.run(None, {"features": np.zeros((1, 16), dtype=np.float32)})
    raise SystemExit("fails_at_run.onnx ran one row; it must fail")
except Exception as e:  # onnxruntime raises its own Fail
    if "cannot be reshaped" not in str(e):
        raise
    print(FAILS.name, "fails on one row:", str(e).splitlines()[0][:120])
