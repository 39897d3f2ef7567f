#!/usr/bin/env python3
"""Reference tree models by XGBoost and scikit-learn, for tests/unit/train/trees_reference_test.cc.

Usage: trees_reference.py DIR
Writes DIR/train.csv and DIR/test.csv (integer-valued features f0..f5 with missing values, a
regression target "r", a binary label "b" and a heavy-tailed target "a", float32 values), and
DIR/<name>.ref files of lines "key,value":
  xgb_reg:    XGBoost hist reg:squarederror test predictions p<i> and pred_contribs c<i>_<j>
  xgb_l1:     XGBoost hist reg:absoluteerror at eta 1 (its own base score, the label median) test
              predictions p<i> and the base score "base"
  xgb_bin:    XGBoost hist binary:logistic test margins m<i>
  sk_forest:  scikit-learn RandomForestClassifier test accuracy and log-loss
Exits 77 when XGBoost or scikit-learn is not installed.
"""
import json
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


def heavy(r):
    # The target plus Laplace noise and, on every 25th row, a far outlier: a median's problem.
    # float32, so the CSV's 9 digits read back as the very labels XGBoost takes.
    noise = rng_a.laplace(0, 1.0, r.shape[0])
    noise[::25] += 50.0 * rng_a.standard_cauchy(r[::25].shape[0])
    return (r + noise).astype(np.float32)


def write_csv(name, X, r, b, a):
    with open(f"{out}/{name}.csv", "w") as f:
        f.write("f0,f1,f2,f3,f4,f5,r,b,a\n")
        for row, ri, bi, ai in zip(X, r, b, a):
            cells = ["" if np.isnan(v) else f"{v:.0f}" for v in row]
            f.write(",".join(cells) + f",{ri:.9g},{bi:.0f},{ai:.9g}\n")


def write_ref(name, values):
    with open(f"{out}/{name}.ref", "w") as f:
        for k, v in values.items():
            f.write(f"{k},{v:.12g}\n")


Xtr, rtr, btr = make(4000)
Xte, rte, bte = make(1000)
rng_a = np.random.default_rng(11)  # its own stream: the other columns stay as they were
atr, ate = heavy(rtr), heavy(rte)
write_csv("train", Xtr, rtr, btr, atr)
write_csv("test", Xte, rte, bte, ate)

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

dtr_a = xgb.DMatrix(Xtr, label=atr, missing=np.nan)
# eta 1: XGBoost 1.7 stores each adaptive leaf's median unscaled by eta (later versions and
# LightGBM scale it, as escala does); at eta 1 the two agree.
l1 = xgb.train(dict(common, objective="reg:absoluteerror", eta=1.0), dtr_a, 20)
ref = {f"p{i}": v for i, v in enumerate(l1.predict(dte))}
ref["base"] = float(json.loads(l1.save_config())["learner"]["learner_model_param"]["base_score"])
write_ref("xgb_l1", ref)

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
