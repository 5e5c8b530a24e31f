"""Golden drift statistics for `steward_core::drift`, computed by scipy and numpy (peers nobody
here wrote). Regenerate and diff in CI:

    pip install scipy==1.17.1 numpy==2.4.6
    python generate.py > golden.json

KS: `scipy.stats.ks_2samp(a, b)` (two-sided, method auto: exact up to 10,000 per sample).
PSI: Evidently's method (`legacy/calculations/stattests/psi.py` with `utils.get_binned_data`),
written out with numpy below and checked against the two values Evidently itself returned
for the same inputs (reference/monitoring.md, section 1.12): numeric columns with more than
20 distinct reference values use Sturges bins over reference and current together
(`np.histogram_bin_edges(..., bins="sturges")`), other columns one bin per value; empty bins
are filled per array with min(p[p>0])/1e6 if that is <= 1e-4, else 1e-4;
PSI = sum((r - c) * ln(r / c)).
"""
import json
import sys

import numpy as np
from scipy import stats


def evidently_psi(reference, current):
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(np.unique(reference)) > 20:
        bins = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        r = np.histogram(reference, bins)[0] / len(reference)
        c = np.histogram(current, bins)[0] / len(current)
    else:
        keys = sorted(set(np.unique(reference)) | set(np.unique(current)))
        r = np.array([np.sum(reference == k) for k in keys]) / len(reference)
        c = np.array([np.sum(current == k) for k in keys]) / len(current)
    for p in (r, c):
        smallest = np.min(p[p > 0])
        p[p == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return float(np.sum((r - c) * np.log(r / c)))


# Evidently's own outputs for these inputs (run by the reference study); the numpy version
# above must reproduce them, or the goldens would be ours rather than Evidently's.
categorical_ref = [0.0] * 50 + [1.0] * 30 + [2.0] * 20
categorical_cur = [0.0] * 30 + [1.0] * 30 + [2.0] * 30 + [3.0] * 10
assert abs(evidently_psi(categorical_ref, categorical_cur) - 0.8327963879343301) < 1e-15
rng = np.random.default_rng(42)
numeric_ref = rng.normal(0, 1, 5000)
numeric_cur = rng.normal(0.3, 1, 4000)
assert abs(evidently_psi(numeric_ref, numeric_cur) - 0.10905962243580777) < 1e-15

cases = [
    ("reference study vector", [0.1, 0.4, 0.7, 1.0, 1.3, 1.6, 1.9, 2.2], [0.5, 0.9, 1.2, 1.8, 2.4, 2.8, 3.1, 3.3, 3.9, 4.2]),
    ("categorical, a category only in current", categorical_ref, categorical_cur),
    ("normal, shifted 0.3, 5000 vs 4000", numeric_ref, numeric_cur),
]
rng = np.random.default_rng(7)
cases.append(("same distribution, 300 vs 250", rng.normal(10, 2, 300), rng.normal(10, 2, 250)))
cases.append(("equal sizes, 200 vs 200, scale change", rng.normal(0, 1, 200), rng.normal(0, 1.5, 200)))
cases.append(("integer scores with ties, 120 vs 90", rng.integers(300, 850, 120).astype(float), rng.integers(320, 860, 90).astype(float)))
cases.append(("skewed incomes, 1000 vs 800", rng.lognormal(10, 0.5, 1000), rng.lognormal(10.1, 0.55, 800)))
cases.append(("tiny, 3 vs 4", [1.0, 2.0, 3.0], [2.5, 3.5, 4.5, 5.5]))

out = []
for name, a, b in cases:
    a = [float(x) for x in a]
    b = [float(x) for x in b]
    ks = stats.ks_2samp(a, b)
    out.append({
        "name": name,
        "reference": a,
        "current": b,
        "psi": evidently_psi(a, b),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    })
json.dump({"scipy": __import__("scipy").__version__, "numpy": np.__version__, "cases": out}, sys.stdout, indent=None)
print()
