"""The probe's classifier: standardisation on the training rows, then multinomial logistic regression.

Deterministic (lbfgs, no random state involved), so the same features always give the same
accuracy.
"""
from __future__ import annotations

import warnings

import numpy as np


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Labels predicted for `x_test` by a logistic regression fitted on (x_train, y_train)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x_train), y_train)
    return clf.predict(scaler.transform(x_test))


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(truth)))
