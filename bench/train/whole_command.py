#!/usr/bin/env python3
"""The Python equivalent of `escala train --model logistic` with the default pipeline, whole:
read the CSVs (pandas), SimpleImputer(median) + StandardScaler fitted on the training rows,
LogisticRegression() (scikit-learn's defaults), test log-loss.

  whole_command.py TRAIN.csv TEST.csv LABEL

Prints one line: test_logloss test_accuracy (the caller times the whole process).
"""
import sys

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

train_path, test_path, label = sys.argv[1:4]
train = pd.read_csv(train_path)
test = pd.read_csv(test_path)
y = train.pop(label).to_numpy()
yt = test.pop(label).to_numpy()
model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression())
model.fit(train, y)
p = np.clip(model.predict_proba(test)[:, 1], 1e-15, 1 - 1e-15)
logloss = -np.mean(yt * np.log(p) + (1 - yt) * np.log(1 - p))
print(f"{logloss:.6f} {np.mean((p >= 0.5) == (yt > 0.5)):.4f}")
