#!/usr/bin/env python3
"""Reference fits by scikit-learn on its bundled datasets, for tests/unit/train/reference_test.cc.

Usage: train_reference.py DIR
Writes, for each problem, DIR/<name>.csv (standardised features f0.., label y; the same rows both
sides train on) and DIR/<name>.ref (lines "key,value": coefficients, intercepts, test metrics).
Exits 77 when scikit-learn is not installed.
"""
import sys

try:
    import numpy as np
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

out = sys.argv[1]


def write(name, X, y, ref):
    X = StandardScaler().fit_transform(X)
    with open(f"{out}/{name}.csv", "w") as f:
        f.write(",".join(f"f{i}" for i in range(X.shape[1])) + ",y\n")
        for row, label in zip(X, y):
            f.write(",".join(f"{v:.9g}" for v in row) + f",{label:.9g}\n")
    with open(f"{out}/{name}.ref", "w") as f:
        for k, v in ref(X).items():
            for i, x in enumerate(np.ravel(v)):
                f.write(f"{k}{i},{x:.12g}\n")


# Binary logistic regression, C = 1: minimises sum(logloss) + 0.5 |w|^2.
X, y = datasets.load_breast_cancer(return_X_y=True)
def logistic(Xs):
    m = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(Xs, y)
    return {"w": m.coef_, "b": m.intercept_}
write("breast_cancer", X, y, logistic)

# Multinomial (softmax) regression on iris.
X, y = datasets.load_iris(return_X_y=True)
def softmax(Xs):
    m = LogisticRegression(C=1.0, multi_class="multinomial", tol=1e-12, max_iter=100000).fit(Xs, y)
    return {"w": m.coef_.T, "b": m.intercept_}  # features x classes, as escala lays W out
write("iris", X, y, softmax)

# Ridge regression: minimises |y - Xw - b|^2 + alpha |w|^2.
X, y = datasets.load_diabetes(return_X_y=True)
def ridge(Xs):
    m = Ridge(alpha=10.0).fit(Xs, y)
    return {"w": m.coef_, "b": [m.intercept_]}
write("diabetes", X, y, ridge)

# An MLP on the digits: held-out accuracy (the first 1400 rows train, the rest test).
X, y = datasets.load_digits(return_X_y=True)
def mlp(Xs):
    m = MLPClassifier(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=1e-3,
                      batch_size=32, max_iter=60, random_state=0, alpha=1e-4).fit(Xs[:1400], y[:1400])
    return {"accuracy": [m.score(Xs[1400:], y[1400:])]}
write("digits", X, y, mlp)
