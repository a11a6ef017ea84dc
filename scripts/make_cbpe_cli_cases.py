"""Writes what tests/tests/cbpe_cli.rs runs through `driftline profile` and `driftline batch`
to compare CBPE with NannyML 0.13.1 end to end (issue 17):

- tests/fixtures/cbpe/passthrough_binary.onnx, passthrough_multiclass.onnx: models that turn
  NannyML's bundled datasets (tests/fixtures/cbpe/binary.csv, multiclass.csv, written by
  make_cbpe_cases.py) into model outputs. Input `x` (double, [N, K+1]: the class scores, then
  the predicted class); outputs `label` (int64, [N]) and `probabilities` (double, [N, 2] for
  the binary score s: 1 - s and s; [N, K] for multiclass).
- tests/fixtures/cbpe/rf_breast_cancer.{reference,analysis}.jsonl and .json: a real model, the
  skl2onnx random forest of tests/fixtures/converters, over scikit-learn's breast cancer data
  (shuffled; 300 reference rows, 269 analysis rows, every one labeled), and NannyML's CBPE
  (chunks of 50) fitted on the model's own reference outputs, as ONNX Runtime computes them.

Run from NannyML's venv, with onnx and onnxruntime added (requirements-nannyml.txt):
    .venv-nannyml/bin/pip install onnx==1.23.2 onnxruntime==1.31.1
    .venv-nannyml/bin/python scripts/make_cbpe_cli_cases.py
"""
import json
import os
import pathlib
import warnings

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
warnings.filterwarnings("ignore")

import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/cbpe"
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
FIELDS = ["value", "sampling_error", "realized", "upper_confidence_boundary",
          "lower_confidence_boundary", "upper_threshold", "lower_threshold", "alert"]
TS0 = 1700000000000


def constant(name, values, dtype=TensorProto.INT64):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, [len(values)], values))


def passthrough(name, classes):
    """x: [N, K+1] doubles (K = 1 for a binary score); label = x[:, K], scores as probabilities."""
    k = 1 if classes == 2 else classes
    nodes = [
        constant("k0", [0]), constant("k", [k]), constant("k1", [k + 1]), constant("axis", [1]),
        constant("flat", [-1]),
        helper.make_node("Slice", ["x", "k0", "k", "axis"], ["scores"]),
        helper.make_node("Slice", ["x", "k", "k1", "axis"], ["predicted"]),
        helper.make_node("Reshape", ["predicted", "flat"], ["predicted_flat"]),
        helper.make_node("Cast", ["predicted_flat"], ["label"], to=TensorProto.INT64),
    ]
    if classes == 2:
        nodes += [
            constant("one", [1.0], TensorProto.DOUBLE),
            helper.make_node("Sub", ["one", "scores"], ["negative"]),
            helper.make_node("Concat", ["negative", "scores"], ["probabilities"], axis=1),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["scores"], ["probabilities"]))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", k + 1])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, ["N", classes])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model.producer_name = "make_cbpe_cli_cases.py"
    onnx.checker.check_model(model)
    onnx.save(model, OUT / f"{name}.onnx")


def number(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def chunks(estimator, analysis):
    df = estimator.estimate(analysis).to_df(multilevel=False)
    out = []
    for _, row in df.iterrows():
        chunk = {"period": row["chunk_period"], "start": int(row["chunk_start_index"]),
                 "end": int(row["chunk_end_index"])}
        for m in METRICS:
            chunk[m] = {f: number(row[f"{m}_{f}"]) for f in FIELDS}
        out.append(chunk)
    return out


def random_forest():
    manifest = json.loads((ROOT / "tests/fixtures/converters/manifest.json").read_text())
    spec = next(f for f in manifest["fixtures"] if f["name"] == "random_forest_breast_cancer")
    names = [f["name"] for f in spec["features"]]
    data = load_breast_cancer()
    order = np.random.default_rng(17).permutation(len(data.target))
    x, y = data.data[order], data.target[order]
    session = ort.InferenceSession(str(ROOT / "tests/fixtures/converters" / spec["model"]))
    label, probabilities = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})
    frame = pd.DataFrame({"y_pred_proba": probabilities[:, 1].astype(np.float64),
                          "y_pred": label.astype(int), "y_true": y.astype(int)})
    reference, analysis = frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)
    est = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true", metrics=METRICS,
                   chunk_size=50, problem_type="classification_binary")
    est.fit(reference)
    for part, rows in (("reference", range(300)), ("analysis", range(300, len(y)))):
        with open(OUT / f"rf_breast_cancer.{part}.jsonl", "w") as f:
            for i in rows:
                event = {"id": f"bc-{i}", "ts": TS0 + i}
                event.update({n: float(v) for n, v in zip(names, x[i])})
                event["label"] = int(y[i])
                f.write(json.dumps(event) + "\n")
    # The forest's scores tie (37 distinct values in 300): NannyML's ROC AUC sampling error then
    # depends on the order numpy's default (unstable, CPU-dependent) argsort gives tied scores.
    # driftline orders ties as they come (a stable sort); the same formula with a stable sort is
    # written beside NannyML's value.
    spread, share = stable_auroc_component(reference["y_true"].to_numpy(), reference["y_pred_proba"].to_numpy())
    analysis_chunks = chunks(est, analysis)
    for chunk in analysis_chunks:
        size = chunk["end"] - chunk["start"] + 1
        chunk["roc_auc"]["sampling_error_stable_ties"] = float(spread / np.sqrt(size * share))
    (OUT / "rf_breast_cancer.json").write_text(json.dumps({
        "model": "tests/fixtures/converters/" + spec["model"],
        "features": names,
        "chunk": 50,
        "calibrated": bool(est.needs_calibration),
        "chunks": analysis_chunks,
    }, indent=1) + "\n")


def stable_auroc_component(y_true, y_pred_proba):
    """nannyml.sampling_error.binary_classification.auroc_sampling_error_components, with a
    stable argsort."""
    if np.mean(y_true) > 0.5:
        y_true = abs(np.asarray(y_true) - 1)
        y_pred_proba = 1 - y_pred_proba
    order = np.argsort(y_pred_proba, kind="stable")
    y_true = y_true[order]
    indexes = np.unique(y_true * np.arange(len(y_true)))[1:]
    ser = np.array([index - i for i, index in enumerate(indexes)])
    n_pos = np.sum(y_true)
    return np.std(ser / (len(y_true) - n_pos)), n_pos / len(y_true)


passthrough("passthrough_binary", 2)
passthrough("passthrough_multiclass", 3)
random_forest()
print(f"written to {OUT}")
