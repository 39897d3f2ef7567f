#!/usr/bin/env python3
"""Checks escala's statistics and transformers against pandas and scikit-learn.

Usage: features_reference.py DIR
DIR holds data.csv (the input, NA for missing values) and the escala outputs written by
tests/unit/features/reference_test.cc. Exits 0 when every value agrees within tolerance,
1 otherwise (printing each mismatch), 77 when pandas or scikit-learn is missing.
"""
import json
import sys

try:
    import numpy as np
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
except ImportError as e:  # pragma: no cover - environment dependent
    print(f"skipping: {e}")
    sys.exit(77)

d = sys.argv[1]
df = pd.read_csv(f"{d}/data.csv", keep_default_na=True)
num = ["a", "b", "c", "k"]
failures = []


def close(name, got, want, rel=1e-6, abs_tol=1e-6):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        failures.append(f"{name}: shape {got.shape} != {want.shape}")
        return
    bad = ~np.isclose(got, want, rtol=rel, atol=abs_tol, equal_nan=True)
    if bad.any():
        idx = np.argwhere(bad)[0]
        failures.append(f"{name}: {bad.sum()} mismatches, first at {tuple(idx)}: "
                        f"{got[tuple(idx)]!r} vs {want[tuple(idx)]!r}")


def escala(name):
    return pd.read_csv(f"{d}/{name}.csv", header=None).to_numpy()


X = df[num].to_numpy(dtype=float)
close("impute(mean)|standardize", escala("standard"),
      StandardScaler().fit_transform(SimpleImputer(strategy="mean").fit_transform(X)), abs_tol=2e-6)
close("impute(median)|minmax", escala("minmax"),
      MinMaxScaler().fit_transform(SimpleImputer(strategy="median").fit_transform(X)))
Xk = df[["k"]].to_numpy(dtype=float)
close("impute(most_frequent)|robust", escala("robust"),
      RobustScaler().fit_transform(SimpleImputer(strategy="most_frequent").fit_transform(Xk)))
enc = OneHotEncoder(handle_unknown="ignore")
close("onehot", escala("onehot"), enc.fit_transform(df[["cat"]].astype(str)).toarray(), abs_tol=0)

# Statistics: pandas describe() (sample std, linear-interpolated quartiles) and corr().
stats = json.load(open(f"{d}/stats.json"))
desc = df[num].describe()
cols = {c["name"]: c for c in stats["columns"]}
for c in num:
    for key, ref in [("count", "count"), ("mean", "mean"), ("std", "std"), ("min", "min"),
                     ("q25", "25%"), ("median", "50%"), ("q75", "75%"), ("max", "max")]:
        close(f"describe {c}.{key}", cols[c][key], desc.loc[ref, c], rel=1e-9, abs_tol=1e-9)
    close(f"missing {c}", cols[c]["missing"], df[c].isna().sum())
    close(f"distinct {c}", cols[c]["distinct"], df[c].nunique())
close("distinct cat", cols["cat"]["distinct"], df["cat"].nunique())
corr = df[num].corr()
order = stats["numeric"]
close("corr", np.array(stats["correlation"]), corr.loc[order, order].to_numpy(), abs_tol=1e-6)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("all escala statistics and transforms match pandas / scikit-learn")
