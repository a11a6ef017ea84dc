"""Makes the converter fixtures in tests/fixtures/converters/: small models exported by the usual
Python converters (skl2onnx, onnxmltools), each with a test split of events and the outputs Python
onnxruntime gives for them, so driftline can be checked against what real converters emit
(ZipMap sequence-of-map outputs, [N] and [N,1] labels, several named inputs, float64 models).

For each fixture <name>:
  <name>.onnx            the model;
  <name>.events.jsonl    the test split, one event a line: {"id", "ts", "<feature>": number, ...};
  <name>.expected.jsonl  one line per event: {"id", "outputs": {"<output>": value, ...}} with every
                         model output, from onnxruntime (CPUExecutionProvider, 1 thread) on the
                         events' values read back from the JSON file and cast to the input dtype;
and manifest.json describes them all (features, ONNX inputs, outputs with types and shapes).

Fixtures: logreg_iris_zipmap, random_forest_breast_cancer, ridge_diabetes, isolation_forest_wine,
pipeline_scaler_logreg_wine, lightgbm_breast_cancer, multi_input_diabetes, float64_linear_diabetes.

Only scikit-learn's bundled data sets are used (no downloads); every random_state is fixed, so a
rerun with the pinned versions gives byte-identical files.

Run (only needed to regenerate these fixtures; CI does not need it):
  python3 -m venv .venv-fixtures && .venv-fixtures/bin/pip install -r requirements-fixtures.txt
  .venv-fixtures/bin/python models/make_converter_fixtures.py
"""
import json
import pathlib
import re
from importlib.metadata import version

import lightgbm
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType as MltFloatTensorType
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "converters"
SEED = 0
TS0 = 1700000000000
PACKAGES = ["onnxruntime", "numpy", "onnx", "scikit-learn", "skl2onnx", "onnxmltools", "lightgbm", "pandas"]
ORT_TYPE_NP = {"tensor(float)": np.float32, "tensor(double)": np.float64}
FEATURE_TYPE = {np.float32: "f32", np.float64: "f64"}


def sanitize(names):
    out = []
    for n in names:
        s = re.sub(r"[^a-z0-9]+", "_", n.lower()).strip("_")
        assert s and s not in out, (n, s)
        out.append(s)
    return out


def dataset(loader, test_size, stratify):
    """Feature names, train X/y and test X (float64, dataset values) with a fixed split."""
    d = loader()
    names = sanitize(d.feature_names)
    x = np.asarray(d.data, dtype=np.float64)
    y = d.target
    x_tr, x_te, y_tr, _ = train_test_split(
        x, y, test_size=test_size, random_state=SEED, stratify=y if stratify else None
    )
    return names, x_tr, y_tr, x_te


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def encode(value, onnx_type):
    """One row of an output as JSON: scalar for [N]/[N,1], list for [N,K], object for a map."""
    if onnx_type.startswith("seq(map("):
        return {str(k): float(v) if isinstance(v, (float, np.floating)) else v for k, v in value.items()}
    a = np.asarray(value)
    if a.ndim == 0 or a.size == 1:
        x = a.reshape(())[()]
        return int(x) if np.issubdtype(a.dtype, np.integer) else float(x)
    return [int(x) if np.issubdtype(a.dtype, np.integer) else float(x) for x in a.ravel()]


def run_rows(sess, events, inputs):
    """ORT outputs for the events, each row encoded; feeds built from the JSON-parsed values."""
    in_types = {i.name: ORT_TYPE_NP[i.type] for i in sess.get_inputs()}
    feeds = {}
    for spec in inputs:
        cols = [[ev[f] for f in spec["features"]] for ev in events]
        feeds[spec["input"]] = np.array(cols, dtype=np.float64).astype(in_types[spec["input"]])
    outs = sess.get_outputs()
    res = sess.run(None, feeds)
    rows = []
    for i in range(len(events)):
        rows.append({o.name: encode(r[i], o.type) for o, r in zip(outs, res)})
    return rows


def write_jsonl(path, objs):
    with open(path, "w", newline="\n") as f:
        for o in objs:
            f.write(json.dumps(o) + "\n")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def save(name, model, names, x_test, dtype, inputs=None):
    """Writes the fixture's files; returns its manifest entry."""
    model_path = OUT / f"{name}.onnx"
    model.doc_string = ""
    model.graph.name = name  # the converters name the graph with a random uuid
    # ... and list the opsets in set order (varies with PYTHONHASHSEED): sort them by domain.
    opsets = sorted(((o.domain, o.version) for o in model.opset_import))
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in opsets)
    onnx.checker.check_model(model)
    onnx.save(model, model_path)

    events = []
    for i, row in enumerate(x_test):
        ev = {"id": f"{name}-{i}", "ts": TS0 + i * 1000}
        ev.update({f: float(v) for f, v in zip(names, row)})
        events.append(ev)
    events_path = OUT / f"{name}.events.jsonl"
    write_jsonl(events_path, events)
    events = read_jsonl(events_path)  # feed exactly what the file holds

    sess = session(model_path)
    feed_specs = inputs or [{"input": sess.get_inputs()[0].name, "features": names}]
    if inputs is None:
        assert len(sess.get_inputs()) == 1
    rows = run_rows(sess, events, feed_specs)
    expected_path = OUT / f"{name}.expected.jsonl"
    write_jsonl(expected_path, [{"id": ev["id"], "outputs": r} for ev, r in zip(events, rows)])

    return {
        "name": name,
        "model": model_path.name,
        "events": events_path.name,
        "expected": expected_path.name,
        "features": [{"name": f, "type": FEATURE_TYPE[dtype]} for f in names],
        "inputs": inputs or [],
        "outputs": [{"name": o.name, "onnx_type": o.type, "shape": o.shape} for o in sess.get_outputs()],
        "rows": len(events),
    }


def skl(model, n_features, dtype=np.float32, **kw):
    tensor = FloatTensorType if dtype == np.float32 else DoubleTensorType
    return convert_sklearn(model, initial_types=[("input", tensor([None, n_features]))], **kw)


def make_all():
    fixtures = []

    # 1. LogisticRegression, default options: ZipMap probabilities.
    names, x, y, xt = dataset(load_iris, 100, True)
    m = LogisticRegression(max_iter=1000, random_state=SEED).fit(x, y)
    fixtures.append(save("logreg_iris_zipmap", skl(m, len(names)), names, xt, np.float32))

    # 2. RandomForestClassifier without ZipMap: probability tensor [N, 2].
    names, x, y, xt = dataset(load_breast_cancer, 120, True)
    m = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=SEED, n_jobs=1).fit(x, y)
    onx = skl(m, len(names), options={id(m): {"zipmap": False}})
    fixtures.append(save("random_forest_breast_cancer", onx, names, xt, np.float32))

    # 3. Ridge regressor: variable [N, 1].
    names, x, y, xt = dataset(load_diabetes, 120, False)
    m = Ridge(alpha=0.1).fit(x, y)
    fixtures.append(save("ridge_diabetes", skl(m, len(names)), names, xt, np.float32))

    # 4. IsolationForest: label and scores [N, 1]; needs an ai.onnx.ml opset.
    names, x, y, xt = dataset(load_wine, 100, True)
    m = IsolationForest(n_estimators=20, random_state=SEED).fit(x)
    onx = skl(m, len(names), target_opset={"": 17, "ai.onnx.ml": 3})
    fixtures.append(save("isolation_forest_wine", onx, names, xt, np.float32))

    # 5. Pipeline(StandardScaler, LogisticRegression) without ZipMap.
    m = Pipeline([("scaler", StandardScaler()), ("logreg", LogisticRegression(max_iter=1000, random_state=SEED))])
    m.fit(x, y)
    onx = skl(m, len(names), options={id(m): {"zipmap": False}})
    fixtures.append(save("pipeline_scaler_logreg_wine", onx, names, xt, np.float32))

    # 6. LightGBM through onnxmltools, its default options (ZipMap); onnxmltools 1.16 tops out at
    # opset 15 (it refuses 17).
    names, x, y, xt = dataset(load_breast_cancer, 120, True)
    m = lightgbm.LGBMClassifier(
        n_estimators=20, num_leaves=8, random_state=SEED, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1
    ).fit(x, y)
    onx = convert_lightgbm(m, initial_types=[("input", MltFloatTensorType([None, len(names)]))], target_opset=15)
    fixtures.append(save("lightgbm_breast_cancer", onx, names, xt, np.float32))

    # 7. Several named inputs: one [N, 1] float input per DataFrame column.
    names, x, y, xt = dataset(load_diabetes, 120, False)
    df = pd.DataFrame(x, columns=names)
    std_cols = ["age", "bmi", "bp"]
    mm_cols = ["s1", "s2", "s3", "s4", "s5", "s6"]
    pass_cols = [c for c in names if c not in std_cols + mm_cols]
    pre = ColumnTransformer(
        [("std", StandardScaler(), std_cols), ("minmax", MinMaxScaler(), mm_cols), ("pass", "passthrough", pass_cols)]
    )
    m = Pipeline([("pre", pre), ("ridge", Ridge(alpha=0.1))]).fit(df, y)
    onx = convert_sklearn(m, initial_types=[(c, FloatTensorType([None, 1])) for c in names])
    inputs = [{"input": c, "features": [c]} for c in names]
    fixtures.append(save("multi_input_diabetes", onx, names, xt, np.float32, inputs))

    # 8. LinearRegression in float64 end to end.
    m = LinearRegression().fit(x, y)
    onx = skl(m, len(names), dtype=np.float64)
    fixtures.append(save("float64_linear_diabetes", onx, names, xt, np.float64))

    return fixtures


def leaves(row):
    """The numbers of an encoded row, in order."""
    out = []
    for v in row.values():
        vals = v.values() if isinstance(v, dict) else v if isinstance(v, list) else [v]
        out.extend(vals)
    return out


def check(fixtures):
    """Reruns every model on its events file and compares with its expected file; prints a table."""
    print(f"{'fixture':28} {'inputs':36} {'outputs':72} {'bytes':>6}  default-threads batch")
    for fx in fixtures:
        sess = session(OUT / fx["model"])
        events = read_jsonl(OUT / fx["events"])
        expected = read_jsonl(OUT / fx["expected"])
        specs = fx["inputs"] or [{"input": sess.get_inputs()[0].name, "features": [f["name"] for f in fx["features"]]}]
        rows = run_rows(sess, events, specs)
        assert len(rows) == len(expected) == fx["rows"]
        for ev, ex, r in zip(events, expected, rows):
            assert ex["id"] == ev["id"] and ex["outputs"] == r, fx["name"]
        # ORT's default threading: tree ensembles split a batch's trees across threads, which can
        # move float32 sums by an ulp; reported, not required to match.
        default = ort.InferenceSession(str(OUT / fx["model"]), providers=["CPUExecutionProvider"])
        other = run_rows(default, events, specs)
        n_diff = sum(a != b for a, b in zip(other, rows))
        max_diff = max((abs(x - y) for a, b in zip(other, rows) for x, y in zip(leaves(a), leaves(b))), default=0.0)
        thr = f"{n_diff} rows, max {max_diff:.3g}" if n_diff else "same"
        ins = sess.get_inputs()
        if len(ins) > 1:
            in_s = f"{len(ins)} x {ins[0].type}{ins[0].shape} ({','.join(i.name for i in ins)})"
        else:
            in_s = f"{ins[0].name} {ins[0].type}{ins[0].shape}"
        out_s = "; ".join(f"{o.name} {o.type}{o.shape}" for o in sess.get_outputs())
        size = (OUT / fx["model"]).stat().st_size
        print(f"{fx['name']:28} {in_s:36} {out_s:72} {size:>6}  {thr}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.iterdir():
        if p.suffix == ".onnx" or p.name.endswith(".jsonl") or p.name == "manifest.json":
            p.unlink()
    fixtures = make_all()
    manifest = {
        "generated_by": "models/make_converter_fixtures.py",
        "versions": {p: version(p) for p in PACKAGES},
        "fixtures": fixtures,
    }
    with open(OUT / "manifest.json", "w", newline="\n") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    check(fixtures)


if __name__ == "__main__":
    main()
