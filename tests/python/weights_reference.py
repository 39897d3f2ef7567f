#!/usr/bin/env python3
"""Weighted reference fits, for tests/unit/train/weights_reference_test.cc.

Usage: weights_reference.py DIR
Writes DIR/<name>.csv (features f0.., label y, weight w: the rows both sides train on) and
DIR/<name>.ref (lines "key,value"): scikit-learn's LogisticRegression (C=1) and LinearRegression
with sample_weight, and, when python3-xgboost is present, an XGBoost booster's predictions on the
training rows (key p<i>). Exits 77 when scikit-learn is not installed.
"""
import sys

try:
    import numpy as np
    from sklearn import datasets
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import StandardScaler
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

out = sys.argv[1]
rng = np.random.default_rng(3)


def write(name, X, y, w, ref):
    with open(f"{out}/{name}.csv", "w") as f:
        f.write(",".join(f"f{i}" for i in range(X.shape[1])) + ",y,w\n")
        for row, label, weight in zip(X, y, w):
            f.write(",".join(f"{v:.9g}" for v in row) + f",{label:.9g},{weight:.9g}\n")
    with open(f"{out}/{name}.ref", "w") as f:
        for k, v in ref.items():
            for i, x in enumerate(np.ravel(v)):
                f.write(f"{k}{i},{x:.12g}\n")


# Binary logistic regression, C = 1 with weights: sum(w * logloss) + 0.5 |coef|^2.
X, y = datasets.load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X).astype(np.float32).astype(np.float64)
w = rng.integers(0, 4, size=len(y)).astype(np.float64) + rng.random(len(y))
m = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(X, y, sample_weight=w)
write("logistic", X, y, w, {"w": m.coef_, "b": m.intercept_})

# Least squares with weights (no penalty).
Xd, yd = datasets.load_diabetes(return_X_y=True)
Xd = StandardScaler().fit_transform(Xd).astype(np.float32).astype(np.float64)
yd = yd.astype(np.float32).astype(np.float64)
wd = rng.integers(0, 4, size=len(yd)).astype(np.float64) + rng.random(len(yd))
lr = LinearRegression().fit(Xd, yd, sample_weight=wd)
write("linear", Xd, yd, wd, {"w": lr.coef_, "b": [lr.intercept_]})

try:
    import xgboost as xgb
except ImportError:
    sys.exit(0)

# Boosted trees with weights, from the weighted label mean (escala's base score), on features of
# few values (the bins are the values on both sides).
Xt = np.round(X[:, :6] * 4) / 4
params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "reg_lambda": 1.0,
          "min_child_weight": 1.0, "tree_method": "hist",
          "base_score": float(np.sum(w * y) / np.sum(w))}
dm = xgb.DMatrix(Xt, label=y, weight=w)
booster = xgb.train(params, dm, num_boost_round=20)
write("xgboost", Xt, y, w, {"p": booster.predict(dm, output_margin=True)})
