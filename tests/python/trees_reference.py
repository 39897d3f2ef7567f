#!/usr/bin/env python3
"""Reference tree models by XGBoost and scikit-learn, for tests/unit/train/trees_reference_test.cc.

Usage: trees_reference.py DIR
Writes DIR/train.csv and DIR/test.csv (integer-valued features f0..f5 with missing values, a
regression target "r" and a binary label "b"), and DIR/<name>.ref files of lines "key,value":
  xgb_reg:    XGBoost hist reg:squarederror test predictions p<i> and pred_contribs c<i>_<j>
  xgb_bin:    XGBoost hist binary:logistic test margins m<i>
  sk_forest:  scikit-learn RandomForestClassifier test accuracy and log-loss
Exits 77 when XGBoost or scikit-learn is not installed.
"""
import sys

try:
    import numpy as np
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.metrics import log_loss, mean_squared_error
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

out = sys.argv[1]
rng = np.random.default_rng(7)


def make(n):
    # Integer features (31 distinct values: one bin per value on both sides, so the
    # candidate splits are the same), about 15% missing in f0 and f1.
    X = rng.integers(0, 31, size=(n, 6)).astype(np.float64)
    r = np.where((X[:, 0] > 15) == (X[:, 1] > 10), 3.0, -1.0) + 0.2 * X[:, 2] + rng.normal(0, 0.5, n)
    b = (r + rng.normal(0, 1.0, n) > 1.0).astype(np.float64)
    for j in (0, 1):
        X[rng.random(n) < 0.15, j] = np.nan
    return X, r, b


def write_csv(name, X, r, b):
    with open(f"{out}/{name}.csv", "w") as f:
        f.write("f0,f1,f2,f3,f4,f5,r,b\n")
        for row, ri, bi in zip(X, r, b):
            cells = ["" if np.isnan(v) else f"{v:.0f}" for v in row]
            f.write(",".join(cells) + f",{ri:.9g},{bi:.0f}\n")


def write_ref(name, values):
    with open(f"{out}/{name}.ref", "w") as f:
        for k, v in values.items():
            f.write(f"{k},{v:.12g}\n")


Xtr, rtr, btr = make(4000)
Xte, rte, bte = make(1000)
write_csv("train", Xtr, rtr, btr)
write_csv("test", Xte, rte, bte)

common = dict(tree_method="hist", max_depth=4, eta=0.3, reg_lambda=1.0, min_child_weight=1.0,
              max_bin=256, nthread=1)
dtr = xgb.DMatrix(Xtr, label=rtr, missing=np.nan)
dte = xgb.DMatrix(Xte, missing=np.nan)
reg = xgb.train(dict(common, objective="reg:squarederror", base_score=float(rtr.mean())), dtr, 20)
ref = {f"p{i}": v for i, v in enumerate(reg.predict(dte))}
contribs = reg.predict(dte, pred_contribs=True)
for i in range(contribs.shape[0]):
    for j in range(contribs.shape[1]):
        ref[f"c{i}_{j}"] = contribs[i, j]
write_ref("xgb_reg", ref)

dtr_b = xgb.DMatrix(Xtr, label=btr, missing=np.nan)
binm = xgb.train(dict(common, objective="binary:logistic", base_score=float(btr.mean())), dtr_b, 20)
write_ref("xgb_bin", {f"m{i}": v for i, v in enumerate(binm.predict(dte, output_margin=True))})

# scikit-learn's forests take no missing values (before 1.4): the mean fills them, for them only.
fill = np.nanmean(Xtr, axis=0)
Ftr = np.where(np.isnan(Xtr), fill, Xtr)
Fte = np.where(np.isnan(Xte), fill, Xte)
cls = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(Ftr, btr)
p = cls.predict_proba(Fte)[:, 1]
rf_reg = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1).fit(Ftr, rtr)
write_ref("sk_forest", {"accuracy": float(((p > 0.5) == (bte > 0.5)).mean()),
                        "logloss": log_loss(bte, np.clip(p, 1e-7, 1 - 1e-7)),
                        "mse": mean_squared_error(rte, rf_reg.predict(Fte))})
