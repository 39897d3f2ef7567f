#!/usr/bin/env python3
"""The Python package against its peers on W0 (shared/BENCHMARKS.md; bench/python/run.sh makes
the data and builds the package). Every figure is a median of REPS alternating runs, printed
beside the peer's and as a ratio.

  bench.py W0_DIR [REPS]

  fit     escala.LogisticRegression().fit(X, y) from numpy vs scikit-learn's LogisticRegression()
          (test log-loss of both), and escala.MLPClassifier 64-256-256, Adam 1e-3, batch 256,
          3 epochs: samples/s
  read    escala.read(w0_train.csv) (typed columns) vs pandas.read_csv, and escala.read_array
          (one float32 matrix, the dense path): seconds and peak RSS (each in a fresh process)
          against the bytes of what was read
  latency predict_proba of one row, median of 2000 calls, vs scikit-learn's
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

W0 = sys.argv[1]
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def load(name):
    X = np.load(os.path.join(W0, f"w0_{name}.npy"))
    y = np.load(os.path.join(W0, f"w0_{name}.labels.npy")).ravel().astype(np.int64)
    return X, y


def logloss(p, y):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def bench_fit():
    import escala
    from sklearn.linear_model import LogisticRegression
    X, y = load("train")
    Xt, yt = load("test")
    ours, theirs, mlp = [], [], []
    for _ in range(REPS):
        s, m = timed(lambda: escala.LogisticRegression().fit(X, y))
        ours.append((s, logloss(m.predict_proba(Xt)[:, 1], yt)))
        s, m = timed(lambda: LogisticRegression().fit(X, y))
        theirs.append((s, logloss(m.predict_proba(Xt)[:, 1], yt)))
        s, m = timed(lambda: escala.MLPClassifier(hidden_layer_sizes=(256, 256), batch_size=256,
                                                  learning_rate_init=1e-3, alpha=0.0,
                                                  max_iter=3, random_state=0).fit(X, y))
        mlp.append((s, logloss(m.predict_proba(Xt)[:, 1], yt)))
    e = statistics.median(s for s, _ in ours)
    k = statistics.median(s for s, _ in theirs)
    print(f"LogisticRegression.fit from numpy: escala {e:.2f} s (test logloss "
          f"{ours[0][1]:.5f}), scikit-learn {k:.2f} s ({theirs[0][1]:.5f}): {e / k:.2f}x "
          f"(goal <= 0.25x, logloss gap {ours[0][1] - theirs[0][1]:+.5f})")
    m = statistics.median(s for s, _ in mlp)
    print(f"MLPClassifier 64-256-256, 3 epochs from numpy: {3 * len(X) / m:,.0f} samples/s "
          f"({m:.1f} s, test logloss {mlp[0][1]:.5f}; goal >= 150,000)")


READER = {
    "escala": "import escala, sys; c = escala.read(sys.argv[1]); n = len(c)",
    "pandas": "import pandas, sys; d = pandas.read_csv(sys.argv[1]); n = d.shape[1]",
}


def bench_read():
    csv = os.path.join(W0, "w0_train.csv")
    runs = {k: [] for k in READER}
    for _ in range(REPS):
        for k, code in READER.items():
            probe = (f"import resource, time; t = time.perf_counter(); {code}; "
                     "import json; print(json.dumps([time.perf_counter() - t, "
                     "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]))")
            out = subprocess.run([sys.executable, "-c", probe, csv], capture_output=True,
                                 text=True, check=True, env=os.environ).stdout
            runs[k].append(json.loads(out.strip().splitlines()[-1]))
    array = 1_000_000 * 65 * 8
    e = statistics.median(s for s, _ in runs["escala"])
    p = statistics.median(s for s, _ in runs["pandas"])
    rss = statistics.median(r for _, r in runs["escala"])
    print(f"read W0 train CSV: escala {e:.2f} s, pandas.read_csv {p:.2f} s: {p / e:.1f}x faster "
          f"(goal >= 10x); escala peak RSS {rss / 2**20:.0f} MiB = {rss / array:.2f}x the "
          f"float64 columns (goal <= 1.2x)")


def bench_read_array():
    csv = os.path.join(W0, "w0_train.csv")
    probe = ("import resource, sys, time, escala; t = time.perf_counter(); "
             "X, y, _ = escala.read_array(sys.argv[1], label='label'); "
             "import json; print(json.dumps([time.perf_counter() - t, X.nbytes + y.nbytes, "
             "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]))")
    runs = []
    for _ in range(REPS):
        out = subprocess.run([sys.executable, "-c", probe, csv], capture_output=True, text=True,
                             check=True, env=os.environ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    s = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[2] for r in runs)
    print(f"read W0 train CSV into one float32 matrix (escala.read_array): {s:.2f} s; peak RSS "
          f"{rss / 2**20:.0f} MiB = {rss / runs[0][1]:.2f}x the array (goal <= 1.2x); pandas "
          f"ratio from the line above")


def bench_latency():
    import escala
    from sklearn.linear_model import LogisticRegression
    X, y = load("test")
    ours = escala.LogisticRegression().fit(X, y)
    theirs = LogisticRegression().fit(X, y)
    row = X[:1]

    def median_call(f, n=2000):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            f(row)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    e = median_call(ours.predict_proba)
    k = median_call(theirs.predict_proba)
    print(f"predict_proba of one row: escala {e * 1e6:.0f} us, scikit-learn {k * 1e6:.0f} us: "
          f"{e / k:.2f}x (goal <= 0.5x)")


if __name__ == "__main__":
    bench_read()
    bench_read_array()
    bench_latency()
    bench_fit()
