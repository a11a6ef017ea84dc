"""Writes tests/fixtures/chi2_contingency.json: scipy's chi2_contingency (its defaults: Yates'
correction when dof is 1) and Cramér's V (scipy.stats.contingency.association, which uses the
uncorrected statistic) on 2 x k tables of reference and window counts, the way the drift monitor
builds them: unseen categories (reference 0), vanished ones (window 0), and categories absent
from both, which are dropped before the test (scipy refuses a zero marginal).

Run from the fixtures venv (requirements-fixtures.txt):
    .venv-fixtures/bin/python scripts/make_chi2_cases.py
"""
import json
import pathlib

import numpy as np
import scipy
from scipy.stats import chi2_contingency
from scipy.stats.contingency import association

rng = np.random.default_rng(20261202)
cases = []


def add(name, reference, current):
    reference, current = list(map(int, reference)), list(map(int, current))
    keep = [i for i in range(len(reference)) if reference[i] + current[i] > 0]
    table = np.array([[reference[i] for i in keep], [current[i] for i in keep]])
    if table.shape[1] == 0:
        return
    res = chi2_contingency(table)
    v = association(table, method="cramer") if table.shape[1] >= 2 else None
    cases.append(
        {
            "name": name,
            "reference": reference,
            "current": current,
            "statistic": float(res.statistic),
            "dof": int(res.dof),
            "pvalue": float(res.pvalue),
            "cramers_v": None if v is None else float(v),
        }
    )


add("hand: two categories (Yates)", [50, 50], [60, 40])
add("hand: three categories", [25, 25, 50], [30, 20, 50])
add("one unseen event in a window of 1 000", [500, 300, 200, 0], [480, 310, 209, 1])
add("a vanished category", [500, 300, 200], [600, 400, 0])
add("absent from both is dropped", [500, 0, 300], [480, 0, 320])
add("a single category left", [700, 0], [300, 0])
add("equal proportions", [1000, 2000, 3000], [100, 200, 300])
add("new category at 8 %", [5000, 3000, 2000, 0], [4600, 2760, 1840, 800])
add("tiny counts", [1, 2, 0, 3], [0, 1, 2, 1])
add("Yates with a small cell", [3, 97], [0, 100])
for i in range(40):
    k = int(rng.integers(2, 12))
    p = rng.dirichlet(np.ones(k))
    q = p if i % 2 == 0 else rng.dirichlet(np.ones(k))
    n_ref = int(rng.integers(50, 20000))
    n_cur = int(rng.integers(20, 20000))
    ref = rng.multinomial(n_ref, p)
    cur = rng.multinomial(n_cur, q)
    if i % 5 == 1:
        ref[0] = 0  # unseen in the reference
    if i % 7 == 3:
        cur[-1] = 0  # vanished from the window
    if i % 9 == 4 and k > 2:
        ref[1] = 0
        cur[1] = 0  # absent from both
    add(f"random {i}: k={k}", ref, cur)

out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/chi2_contingency.json"
out.write_text(
    json.dumps({"scipy": scipy.__version__, "cases": cases}, indent=1) + "\n"
)
print(f"{len(cases)} cases written to {out}")
