"""Writes tests/fixtures/performance_cases.json: scikit-learn's realized metrics on labeled
pairs, which driftline's `operators/src/performance` must reproduce to 1e-9. Binary (ties in the
scores, a class never predicted, one class only), multiclass (3 and 4 classes, a class missing
from the predictions) and regression (a zero label for MAPE, constant labels for R²).

Run from the fixtures venv (requirements-fixtures.txt):
    .venv-fixtures/bin/python scripts/make_performance_cases.py
"""
import json
import pathlib
import warnings

import numpy as np
import sklearn
from sklearn import metrics

warnings.simplefilter("ignore")  # the undefined cases below are meant
rng = np.random.default_rng(20261203)
cases = []


def nothing_on_error(f):
    """None where scikit-learn refuses (ValueError) or gives NaN (ROC AUC with one class)."""
    try:
        value = float(f())
    except ValueError:
        return None
    return None if np.isnan(value) else value


def binary(name, labels, scores, predicted):
    labels, predicted = [int(x) for x in labels], [int(x) for x in predicted]
    scores = [float(x) for x in scores]
    cases.append({
        "name": name,
        "kind": "binary",
        "labels": labels,
        "predicted": predicted,
        "scores": scores,
        "expected": {
            "accuracy": metrics.accuracy_score(labels, predicted),
            "precision": metrics.precision_score(labels, predicted, zero_division=0),
            "recall": metrics.recall_score(labels, predicted, zero_division=0),
            "f1": metrics.f1_score(labels, predicted, zero_division=0),
            "roc_auc": nothing_on_error(lambda: metrics.roc_auc_score(labels, scores)),
        },
    })


def multiclass(name, labels, probabilities, classes):
    predicted = [int(classes[i]) for i in np.argmax(probabilities, axis=1)]
    labels = [int(x) for x in labels]
    cases.append({
        "name": name,
        "kind": "multiclass",
        "labels": labels,
        "predicted": predicted,
        "classes": [int(c) for c in classes],
        "scores": [[float(x) for x in probabilities[:, k]] for k in range(len(classes))],
        "expected": {
            "accuracy": metrics.accuracy_score(labels, predicted),
            "precision": metrics.precision_score(labels, predicted, average="macro", zero_division=0),
            "recall": metrics.recall_score(labels, predicted, average="macro", zero_division=0),
            "f1": metrics.f1_score(labels, predicted, average="macro", zero_division=0),
            "roc_auc": nothing_on_error(lambda: metrics.roc_auc_score(
                labels, probabilities, multi_class="ovr", average="macro", labels=classes)),
        },
    })


def regression(name, labels, predicted):
    labels, predicted = [float(x) for x in labels], [float(x) for x in predicted]
    cases.append({
        "name": name,
        "kind": "regression",
        "labels": labels,
        "predicted": predicted,
        "expected": {
            "mae": metrics.mean_absolute_error(labels, predicted),
            "rmse": metrics.root_mean_squared_error(labels, predicted),
            "mape": metrics.mean_absolute_percentage_error(labels, predicted),
            "r2": metrics.r2_score(labels, predicted),
        },
    })


for n, positive_rate in [(50, 0.5), (400, 0.2), (1000, 0.03)]:
    labels = rng.random(n) < positive_rate
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
    binary(f"binary n={n} rate={positive_rate}", labels, scores, scores >= 0.5)
    rounded = np.round(scores, 1)  # many ties
    binary(f"binary ties n={n} rate={positive_rate}", labels, rounded, rounded >= 0.5)
labels = rng.random(100) < 0.4
binary("binary, nothing predicted positive", labels, rng.random(100), np.zeros(100))
binary("binary, one class only", np.ones(30), rng.random(30), rng.random(30) < 0.5)

for n, k in [(60, 3), (500, 4), (2000, 3)]:
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)) + 1.5 * np.eye(k)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    multiclass(f"multiclass n={n} k={k}", labels, probabilities, list(range(k)))
    # Ties: rounded, then scaled back to rows that sum to 1 (as scikit-learn's OvR AUC requires).
    rounded = np.round(probabilities, 1) + 0.05
    multiclass(f"multiclass ties n={n} k={k}", labels, rounded / rounded.sum(axis=1, keepdims=True), list(range(k)))
labels = rng.integers(0, 3, 200)
probabilities = rng.dirichlet([1, 1, 0.05], 200)
probabilities[:, 2] = 0.0  # class 2 is never predicted
probabilities /= probabilities.sum(axis=1, keepdims=True)
multiclass("multiclass, a class never predicted", labels, probabilities, [0, 1, 2])
probabilities = rng.dirichlet([1, 1, 1], 40)
multiclass("multiclass, classes 3, 7 and 9", rng.choice([3, 7, 9], 40), probabilities, [3, 7, 9])

for n in [20, 500]:
    labels = rng.normal(10, 5, n)
    regression(f"regression n={n}", labels, labels + rng.normal(0, 2, n))
labels = rng.normal(0, 1, 50)
labels[3] = 0.0
regression("regression, a zero label", labels, labels + rng.normal(0, 0.5, 50))
regression("regression, constant labels", np.full(10, 4.0), np.full(10, 4.5))
regression("regression, constant labels predicted exactly", np.full(10, 4.0), np.full(10, 4.0))

out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/performance_cases.json"
out.write_text(json.dumps({
    "generator": f"scripts/make_performance_cases.py, scikit-learn {sklearn.__version__}, numpy {np.__version__}",
    "cases": cases,
}, indent=1) + "\n")
print(f"{len(cases)} cases -> {out}")
