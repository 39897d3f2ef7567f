#!/usr/bin/env python3
"""The Python equivalent of `escala train` with the default pipeline, whole: read the CSVs
(pandas), SimpleImputer(median) + StandardScaler fitted on the training rows, then
  lr:  LogisticRegression() (scikit-learn's defaults)                                  (W1)
  mlp: MLPClassifier 64-256-256-1, ReLU, Adam 1e-3, batch 256, 3 epochs                (W2)
and the test log-loss.

  whole_command.py lr|mlp TRAIN.csv TEST.csv LABEL

Prints one line: test_logloss test_accuracy (the caller times the whole process).
"""
import sys

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

kind, train_path, test_path, label = sys.argv[1:5]
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
y = train.pop(label).to_numpy()
yt = test.pop(label).to_numpy()
if kind == "lr":
    estimator = LogisticRegression()
else:
    import warnings
    from sklearn.neural_network import MLPClassifier
    warnings.simplefilter("ignore")  # 3 epochs do not converge, by design
    estimator = MLPClassifier(hidden_layer_sizes=(256, 256), batch_size=256,
                              learning_rate_init=1e-3, max_iter=3, random_state=42)
model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), estimator)
model.fit(train, y)
p = np.clip(model.predict_proba(test)[:, 1], 1e-15, 1 - 1e-15)
logloss = -np.mean(yt * np.log(p) + (1 - yt) * np.log(1 - p))
print(f"{logloss:.6f} {np.mean((p >= 0.5) == (yt > 0.5)):.4f}")
