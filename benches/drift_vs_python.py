#!/usr/bin/env python3
"""Offline drift, driftline against scipy/numpy, side by side in one run.

For two sample sizes (10 000/10 000: scipy's exact KS p-value; 200 000/200 000: the asymptotic
one) it draws a seeded Normal(0, 1) reference and a Normal(0.1, 1) current sample, writes them as
one value per line, and times, best of --repeats wall-clock runs:

  python compute   scipy.stats.ks_2samp(r, c) + evidently-style PSI and KL in numpy, on arrays
                   already in memory (the split of that time is printed too);
  rust compute     driftline_operators::drift::compare_numeric with evidently binning, on the
                   same values in memory (the `drift_timing` example; parsing timed apart);
  python e2e       a fresh interpreter: import numpy and scipy, np.loadtxt both files, compute;
  cli e2e          `driftline drift --format json --binning evidently`: process start, file
                   parsing, computation, JSON out.

It checks that Python and the CLI agree (KS statistic and p-value to 1e-9, PSI and KL to 1e-6) and
exits 1 if not. Needs numpy and scipy, which are not in requirements.txt (scipy is only needed
here): install it by hand, then build the two Rust binaries, from the repository root:

  .venv/bin/pip install scipy
  cargo build --release -p driftline
  cargo build --release -p driftline-benches --example drift_timing
  .venv/bin/python benches/drift_vs_python.py

The evidently-style statistics follow /work/shared/drift-oracle/README.md section 2 (equal-width
Sturges bins over the pooled sample, evidently's zero fill); evidently itself is not installed.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import numpy as np
    from scipy import stats
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"{e}: this script needs numpy and scipy: .venv/bin/pip install scipy")

ROOT = Path(__file__).resolve().parent.parent
CASES = [("exact", 10_000), ("asymp", 200_000)]
SHIFT = 0.1
TOL_KS = 1e-9
TOL_DIV = 1e-6


def evidently_bins(r, c):
    """Counts of r and c over equal-width Sturges bins of the pooled sample (last bin closed)."""
    edges = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
    return np.histogram(r, edges)[0], np.histogram(c, edges)[0]


def zero_filled(counts):
    """Proportions; zeros become m/1e6 if the smallest non-zero m <= 1e-4, else 1e-4."""
    p = counts / counts.sum()
    m = p[p > 0].min()
    return np.where(p == 0, m / 1e6 if m <= 1e-4 else 1e-4, p)


def psi_kl(r, c):
    rc, cc = evidently_bins(r, c)
    rp, cp = zero_filled(rc), zero_filled(cc)
    psi = float(np.sum((rp - cp) * np.log(rp / cp)))
    p, q = rp / rp.sum(), cp / cp.sum()
    return psi, float(np.sum(p * np.log(p / q)))


def python_drift(r, c):
    ks = stats.ks_2samp(r, c)
    psi, kl = psi_kl(r, c)
    return {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue), "psi": psi, "kl": kl}


def best_of(repeats, fn):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def run_json(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def one_case(name, n, args, tmp):
    rng = np.random.default_rng(args.seed + n)
    r, c = rng.normal(0.0, 1.0, n), rng.normal(SHIFT, 1.0, n)
    rpath, cpath = tmp / f"{name}_ref.txt", tmp / f"{name}_cur.txt"
    # %.17g round-trips every double, so every program below sees the same values.
    np.savetxt(rpath, r, fmt="%.17g")
    np.savetxt(cpath, c, fmt="%.17g")
    reps = args.repeats

    py_s, py = best_of(reps, lambda: python_drift(r, c))
    split = {
        "ks_2samp (auto)": best_of(reps, lambda: stats.ks_2samp(r, c))[0],
        "ks_2samp (asymp)": best_of(reps, lambda: stats.ks_2samp(r, c, method="asymp"))[0],
        "sort both": best_of(reps, lambda: (np.sort(r), np.sort(c)))[0],
        "psi+kl (numpy)": best_of(reps, lambda: psi_kl(r, c))[0],
    }
    py_e2e_s, _ = best_of(
        reps, lambda: run_json([sys.executable, __file__, "--one", str(rpath), str(cpath)])
    )
    timing = run_json([str(args.timing), str(rpath), str(cpath), str(reps)])
    cli_cmd = [str(args.driftline), "drift", "--format", "json", "--binning", "evidently",
               "--reference", str(rpath), "--current", str(cpath)]
    cli_s, cli = best_of(reps, lambda: run_json(cli_cmd))

    agree = []
    for label, out in (("cli", cli), ("in-process", timing["comparison"])):
        got = {"statistic": out["ks"]["statistic"], "pvalue": out["ks"]["pvalue"],
               "psi": out["psi"]["value"], "kl": out["kl"]["value"]}
        for key, tol in (("statistic", TOL_KS), ("pvalue", TOL_KS), ("psi", TOL_DIV), ("kl", TOL_DIV)):
            diff = abs(got[key] - py[key])
            agree.append((label, key, py[key], got[key], diff, diff <= tol))
    return {
        "name": name, "n": n, "method": cli["ks"]["method"], "py_s": py_s, "split": split,
        "rust_s": timing["compute_best_s"], "parse_s": timing["parse_s"],
        "rust_ks_s": timing["ks_best_s"],
        "py_e2e_s": py_e2e_s, "cli_s": cli_s, "agree": agree,
    }


def fmt_s(s):
    return f"{s * 1e3:9.3f} ms" if s >= 1e-3 else f"{s * 1e6:9.1f} µs"


def report(results):
    print("\n## numbers (Python vs driftline)")
    ok = True
    for res in results:
        for label, key, want, got, diff, good in res["agree"]:
            ok &= good
            print(f"{res['name']:6} {label:10} {key:9} python {want:.12g}  driftline {got:.12g}"
                  f"  |diff| {diff:.1e}  {'ok' if good else 'MISMATCH'}")
    print("\n## time, best of repeats (wall clock)")
    print("| case | n/n | python compute | rust compute | ratio | python e2e | cli e2e | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        print(f"| {res['name']} ({res['method']}) | {res['n']}/{res['n']} | {fmt_s(res['py_s'])} "
              f"| {fmt_s(res['rust_s'])} | {res['py_s'] / res['rust_s']:.1f}× "
              f"| {fmt_s(res['py_e2e_s'])} | {fmt_s(res['cli_s'])} "
              f"| {res['py_e2e_s'] / res['cli_s']:.1f}× |")
    print("\n## where the time goes")
    for res in results:
        parts = ", ".join(f"{k} {fmt_s(v).strip()}" for k, v in res["split"].items())
        print(f"{res['name']}: python: {parts}; rust: parse both files {fmt_s(res['parse_s']).strip()}"
              f" (in-process, not the CLI), compute {fmt_s(res['rust_s']).strip()}"
              f" of which ks_2samp {fmt_s(res['rust_ks_s']).strip()}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--driftline", type=Path, default=ROOT / "target/release/driftline")
    ap.add_argument("--timing", type=Path, default=ROOT / "target/release/examples/drift_timing")
    ap.add_argument("--one", nargs=2, metavar=("REF", "CUR"),
                    help="internal: the Python end-to-end run (load both files, compute, print JSON)")
    args = ap.parse_args()
    if args.one:
        r, c = (np.loadtxt(p) for p in args.one)
        print(json.dumps(python_drift(r, c)))
        return 0
    for binary in (args.driftline, args.timing):
        if not binary.exists():
            sys.exit(f"{binary} is missing: build it first (see the top of this script)")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, scipy "
          f"{__import__('scipy').__version__}; repeats {args.repeats}, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="drift_vs_python_") as tmp:
        results = [one_case(name, n, args, Path(tmp)) for name, n in CASES]
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
