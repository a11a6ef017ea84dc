"""Writes tests/fixtures/cbpe/: NannyML 0.13.1's CBPE on its own bundled synthetic binary and
multiclass datasets (chunks of 5 000 rows, metrics roc_auc, f1, precision, recall, accuracy),
which driftline's `operators/src/performance/cbpe` must reproduce (estimates within 0.005 per
chunk, as issue 17 asks). For each dataset: the rows driftline needs (period, scores,
prediction, label; classes as integers in sorted name order), NannyML's result for every
chunk, its calibration decisions (period: r for reference rows, a for analysis rows), and the first test split scikit-learn's
StratifiedShuffleSplit draws on the reference labels (the calibration check's random split).

Run from NannyML's venv (requirements-nannyml.txt; usage logging, which would try to reach the
internet, is turned off here):
    .venv-nannyml/bin/python scripts/make_cbpe_cases.py
"""
import json
import os
import pathlib
import warnings

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
warnings.filterwarnings("ignore")

import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.model_selection import StratifiedShuffleSplit  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/cbpe"
METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
CHUNK = 5000
FIELDS = ["value", "sampling_error", "realized", "upper_confidence_boundary",
          "lower_confidence_boundary", "upper_threshold", "lower_threshold", "alert"]


def number(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def results(estimator, analysis):
    df = estimator.estimate(analysis).to_df(multilevel=False)
    chunks = []
    for _, row in df.iterrows():
        chunk = {"period": row["chunk_period"], "start": int(row["chunk_start_index"]),
                 "end": int(row["chunk_end_index"])}
        for m in METRICS:
            chunk[m] = {f: number(row[f"{m}_{f}"]) for f in FIELDS}
        chunks.append(chunk)
    return chunks


def first_split(labels):
    sss = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42)
    _, test = next(sss.split(np.zeros(len(labels)), labels))
    return [int(i) for i in test[:50]]


def two_decimals(p):
    """The bundled scores have two decimals: written so, they read back as the same double."""
    text = f"{p:.2f}"
    assert float(text) == p, p
    return text


def write(name, rows, header, expected):
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.csv", "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")
    (OUT / f"{name}.json").write_text(json.dumps(expected, indent=1) + "\n")


def binary():
    reference, analysis, _ = nml.load_synthetic_binary_classification_dataset()
    est = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="work_home_actual",
                   timestamp_column_name="timestamp", metrics=METRICS, chunk_size=CHUNK,
                   problem_type="classification_binary")
    est.fit(reference)
    rows = [("r", two_decimals(p), str(int(yp)), str(int(y))) for p, yp, y in
            zip(reference["y_pred_proba"], reference["y_pred"], reference["work_home_actual"])]
    rows += [("a", two_decimals(p), str(int(yp)), "") for p, yp in
             zip(analysis["y_pred_proba"], analysis["y_pred"])]
    write("binary", rows, ["period", "score", "predicted", "label"], {
        "classes": [0, 1],
        "calibrated": [bool(est.needs_calibration)],
        "first_split_test": first_split(reference["work_home_actual"].to_numpy()),
        "chunks": results(est, analysis),
    })


def multiclass():
    reference, analysis, _ = nml.load_synthetic_multiclass_classification_dataset()
    names = sorted(["prepaid_card", "highstreet_card", "upmarket_card"])
    code = {n: i for i, n in enumerate(names)}
    columns = {n: f"y_pred_proba_{n}" for n in names}
    est = nml.CBPE(y_pred_proba=columns, y_pred="y_pred", y_true="y_true",
                   timestamp_column_name="timestamp", metrics=METRICS, chunk_size=CHUNK,
                   problem_type="classification_multiclass")
    est.fit(reference)

    def row(period, r, label):
        return (period, *[two_decimals(r[columns[n]]) for n in names], str(code[r["y_pred"]]), label)

    rows = [row("r", r, str(code[r["y_true"]])) for _, r in reference.iterrows()]
    rows += [row("a", r, "") for _, r in analysis.iterrows()]
    header = ["period", *[f"score_{i}" for i in range(len(names))], "predicted", "label"]
    write("multiclass", rows, header, {
        "classes": list(range(len(names))),
        "class_names": names,
        "calibrated": [type(est._calibrators[n]).__name__ != "NoopCalibrator" for n in names],
        "first_split_test": first_split((reference["y_true"] == names[0]).astype(int).to_numpy()),
        "chunks": results(est, analysis),
    })


binary()
multiclass()
print(f"written to {OUT}")
