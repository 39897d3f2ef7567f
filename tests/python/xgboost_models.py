#!/usr/bin/env python3
"""XGBoost models and their own predictions, for tests/unit/io/xgboost_import_test.cc.

Usage: xgboost_models.py DIR
Writes DIR/x.csv (features f0..f5 with missing values; f5 holds category codes 0..7) and, per
model NAME: DIR/NAME.json and DIR/NAME.ubj (Booster.save_model), DIR/NAME.margin.csv
(predict(output_margin=True)), DIR/NAME.pred.csv (predict(); multi:softmax: the softprob
probabilities of the same trees) and, for some, DIR/NAME.contrib.csv (pred_contribs, flattened
per row). Every CSV is headerless, one row per row of x.csv. Exits 77 without XGBoost.
"""
import os
import sys

try:
    import numpy as np
    import pandas as pd
    import xgboost as xgb
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

out = sys.argv[1]
rng = np.random.default_rng(11)
n = 600
X = rng.normal(size=(n, 6)).astype(np.float32)
X[:, 5] = rng.integers(0, 8, size=n)
X[:, :5][rng.random((n, 5)) < 0.12] = np.nan  # missing values in f0..f4 only
cat_effect = np.array([0.0, 1.5, -1.0, 0.5, 2.0, -2.0, 0.0, 1.0])
score = X[:, 0] * 1.2 - np.nan_to_num(X[:, 1]) + np.sin(np.nan_to_num(X[:, 2])) \
    + cat_effect[X[:, 5].astype(int)]
score = np.nan_to_num(score)
names = [f"f{j}" for j in range(6)]
pd.DataFrame(X, columns=names).to_csv(os.path.join(out, "x.csv"), index=False,
                                      float_format="%.9g", na_rep="")

labels = {
    "reg": score + rng.normal(scale=0.1, size=n),
    "bin": (score > 0.3).astype(int),
    "multi": np.digitize(score, [-0.5, 1.0]),
    "count": rng.poisson(np.exp(np.clip(score, -3, 2) * 0.5)),
    "pos": np.exp(np.clip(score, -3, 3) * 0.3) + 0.01,
}


def write(name, values):
    np.savetxt(os.path.join(out, name), np.asarray(values, dtype=np.float64).reshape(n, -1),
               delimiter=",", fmt="%.9g")


def fit(name, label, params, rounds=20, categorical=False, contrib=False):
    base = {"tree_method": "hist", "max_depth": 4, "eta": 0.3, "seed": 3}
    base.update(params)
    if categorical:
        df = pd.DataFrame(X, columns=names)
        df["f5"] = pd.Categorical(X[:, 5].astype(int), categories=list(range(8)))
        dm = xgb.DMatrix(df, labels[label], enable_categorical=True)
    else:
        dm = xgb.DMatrix(X, labels[label], missing=np.nan)
    b = xgb.train(base, dm, rounds)
    b.save_model(os.path.join(out, name + ".json"))
    b.save_model(os.path.join(out, name + ".ubj"))
    write(name + ".margin.csv", b.predict(dm, output_margin=True))
    if base["objective"] == "multi:softmax":
        b.set_param({"objective": "multi:softprob"})
    write(name + ".pred.csv", b.predict(dm))
    if contrib:
        write(name + ".contrib.csv", b.predict(dm, pred_contribs=True))


fit("reg", "reg", {"objective": "reg:squarederror"}, contrib=True)
fit("bin", "bin", {"objective": "binary:logistic", "base_score": 0.3}, contrib=True)
fit("logitraw", "bin", {"objective": "binary:logitraw"})
fit("multi", "multi", {"objective": "multi:softprob", "num_class": 3}, contrib=True)
fit("softmax", "multi", {"objective": "multi:softmax", "num_class": 3})
fit("poisson", "count", {"objective": "count:poisson"})
fit("gamma", "pos", {"objective": "reg:gamma"})
fit("tweedie", "pos", {"objective": "reg:tweedie"})
fit("huber", "reg", {"objective": "reg:pseudohubererror"})
fit("absolute", "reg", {"objective": "reg:absoluteerror"})
fit("lossguide", "reg", {"objective": "reg:squarederror", "grow_policy": "lossguide",
                         "max_leaves": 12, "max_depth": 0})
fit("dart", "bin", {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.2,
                    "skip_drop": 0.0})
fit("forest", "multi", {"objective": "multi:softprob", "num_class": 3, "num_parallel_tree": 3,
                        "subsample": 0.8, "colsample_bynode": 0.8, "eta": 1.0}, rounds=4)
fit("cat", "reg", {"objective": "reg:squarederror", "max_cat_to_onehot": 1}, categorical=True,
    contrib=True)
fit("cat_onehot", "bin", {"objective": "binary:logistic", "max_cat_to_onehot": 16},
    categorical=True)
print("wrote", out)
