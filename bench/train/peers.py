#!/usr/bin/env python3
"""Peers for the training benchmarks (W1, W2 in shared/BENCHMARKS.md), on the same W0 files.

  peers.py lr   TRAIN.npy TEST.npy            scikit-learn LogisticRegression() (lbfgs, defaults)
  peers.py mlp  TRAIN.npy TEST.npy            scikit-learn MLPClassifier 64-256-256-1, 3 epochs
  peers.py torch TRAIN.npy TEST.npy THREADS   PyTorch CPU, same MLP, Adam 1e-3, batch 256, 3 epochs
  peers.py xgb  TRAIN.npy TEST.npy THREADS    XGBoost hist: 100 rounds, depth 6, eta 0.3, 256 bins

Prints one line: fit_seconds samples_per_second test_logloss test_accuracy; xgb adds the median
seconds of five inplace_predict calls on the test rows and their rows per second.
Loading is not timed; only the fit is.
"""
import sys
import time

import numpy as np

kind, train_path, test_path = sys.argv[1:4]
X = np.load(train_path)
y = np.load(train_path.replace(".npy", ".labels.npy")).astype(np.float32).ravel()
Xt = np.load(test_path)
yt = np.load(test_path.replace(".npy", ".labels.npy")).astype(np.float32).ravel()
epochs = 3


def report(seconds, samples, p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    logloss = -np.mean(yt * np.log(p) + (1 - yt) * np.log(1 - p))
    acc = np.mean((p >= 0.5) == (yt > 0.5))
    print(f"{seconds:.3f} {samples / seconds:.0f} {logloss:.6f} {acc:.4f}")


if kind == "lr":
    from sklearn.linear_model import LogisticRegression
    t = time.perf_counter()
    m = LogisticRegression().fit(X, y)
    s = time.perf_counter() - t
    report(s, len(X), m.predict_proba(Xt)[:, 1])
elif kind == "mlp":
    from sklearn.neural_network import MLPClassifier
    import warnings
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    m = MLPClassifier(hidden_layer_sizes=(256, 256), activation="relu", solver="adam",
                      learning_rate_init=1e-3, batch_size=256, max_iter=epochs, shuffle=True,
                      random_state=0, tol=0, n_iter_no_change=epochs + 1).fit(X, y)
    s = time.perf_counter() - t
    report(s, epochs * len(X), m.predict_proba(Xt)[:, 1])
elif kind == "torch":
    import torch
    torch.set_num_threads(int(sys.argv[4]))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    Xs, ys = torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1)
    t = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(Xs))
        for i in range(0, len(Xs), 256):
            idx = perm[i:i + 256]
            opt.zero_grad()
            loss = loss_fn(model(Xs[idx]), ys[idx])
            loss.backward()
            opt.step()
    s = time.perf_counter() - t
    with torch.no_grad():
        p = torch.sigmoid(model(torch.from_numpy(Xt))).numpy().ravel()
    report(s, epochs * len(X), p)
elif kind == "xgb":
    import xgboost
    m = xgboost.XGBClassifier(tree_method="hist", n_estimators=100, max_depth=6,
                              learning_rate=0.3, max_bin=256, n_jobs=int(sys.argv[4]))
    t = time.perf_counter()
    m.fit(X, y)
    s = time.perf_counter() - t
    booster = m.get_booster()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        booster.inplace_predict(Xt)
        times.append(time.perf_counter() - t)
    predict = sorted(times)[2]
    print(f"{s:.3f} {len(X) / s:.0f} ", end="")
    p = np.clip(m.predict_proba(Xt)[:, 1], 1e-15, 1 - 1e-15)
    logloss = -np.mean(yt * np.log(p) + (1 - yt) * np.log(1 - p))
    acc = np.mean((p >= 0.5) == (yt > 0.5))
    print(f"{logloss:.6f} {acc:.4f} {predict:.4f} {len(Xt) / predict:.0f}")
else:
    sys.exit(f"unknown peer {kind}")
