"""scikit-learn compatible estimators over escala's trainers, and the Model of a bundle."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from . import _core

try:  # scikit-learn is optional: without it the estimators still fit and predict
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError:  # pragma: no cover
    class BaseEstimator:  # type: ignore[no-redef]
        pass

    class ClassifierMixin:  # type: ignore[no-redef]
        pass

    class RegressorMixin:  # type: ignore[no-redef]
        pass

_LABEL = "__escala_label__"
_WEIGHT = "__escala_weight__"


def _columns(X, feature_names=None) -> Dict[str, np.ndarray]:
    """X (a DataFrame, a 2-D array of any dtype and order, or a dict of columns) as escala's
    {name: 1-D array}."""
    if _is_columns(X):
        return {str(k): np.asarray(v) for k, v in X.items()}
    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # a pandas DataFrame
        out = {}
        for name in X.columns:
            col = X[name]
            if str(col.dtype) == "category":
                col = col.astype(object).where(col.notna(), None)
                out[str(name)] = np.asarray(col, dtype=object)
            elif col.dtype.kind in "fiub" or _is_masked_numeric(col):
                # pandas' nullable Int64/Float64/boolean: numbers, with pd.NA as NaN
                out[str(name)] = (col.to_numpy(dtype=np.float64, na_value=np.nan)
                                  if _is_masked_numeric(col) else col.to_numpy())
            else:
                out[str(name)] = np.asarray(col.astype(object).where(col.notna(), None),
                                            dtype=object)
        return out
    arr = np.asarray(X)
    if arr.ndim == 1:
        raise ValueError("Expected 2D array, got 1D array instead: reshape your data with "
                         "array.reshape(-1, 1) for one feature or array.reshape(1, -1) for one "
                         "sample")
    if arr.ndim != 2:
        raise ValueError(f"Expected 2D array, got an array of {arr.ndim} dimensions")
    names = feature_names or [f"x{j}" for j in range(arr.shape[1])]
    if arr.dtype.kind not in "fiubOUS":
        raise ValueError(f"dtype {arr.dtype} is not supported")
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    return {n: np.ascontiguousarray(arr[:, j]) for j, n in enumerate(names)}


def _is_columns(X) -> bool:
    """A plain dict of columns (a scipy dok_matrix is a dict too, and is sparse)."""
    if hasattr(X, "tocsr"):
        raise TypeError("A sparse matrix was passed, but escala's estimators need dense data: "
                        "use X.toarray()")
    return isinstance(X, dict)


def _label_column(y: np.ndarray, classifier: bool) -> np.ndarray:
    """The label as escala reads it: a classifier's labels themselves (so that the bundle, and
    a server, name the classes; escala orders them as np.unique does: numbers by value, text by
    code point), a regressor's as float64."""
    if classifier and y.dtype.kind in "OUS":
        return y.astype(object)
    if classifier and y.dtype.kind in "iub":
        return y.astype(np.int64)  # integers name their classes fastest (no float formatting)
    return y.astype(np.float64)


def _numeric_or_text(arr: np.ndarray) -> np.ndarray:
    """An object array as numbers when every value is one, else as text (categories); any
    other object is a TypeError, as scikit-learn's estimators raise."""
    try:
        return arr.astype(np.float64)
    except ValueError:
        ok = np.vectorize(lambda v: v is None or isinstance(v, (str, float, int)), otypes=[bool])
        if not ok(arr).all():
            raise TypeError("argument must be a string or a number") from None
        return arr


def _check_fit_input(X, y, classifier: bool):
    """scikit-learn's own checks of X and y (when it is installed): its messages for empty,
    sparse, complex, 1-D or mis-shaped input, a 2-D y, and a continuous target given to a
    classifier."""
    try:
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import check_X_y, column_or_1d
    except ImportError:  # pragma: no cover
        return X, np.asarray(y)
    if y is None:
        raise ValueError(f"requires y to be passed, but the target y is None")
    if _feature_names(X) is None and not _is_columns(X):
        X, y = check_X_y(X, y, accept_sparse=False, dtype=None, force_all_finite="allow-nan",
                         y_numeric=not classifier)
        if X.dtype.kind == "O":
            X = _numeric_or_text(X)
    else:
        y = column_or_1d(y, warn=True)
    if classifier:
        check_classification_targets(y)
    return X, y



def _check_rows(y: np.ndarray, n: int) -> None:
    if y.ndim != 1:
        raise ValueError("y must be one-dimensional")
    if n < 2:
        raise ValueError(f"n_samples = {n}: escala needs at least 2 rows to fit")
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")


def _one_set(sets, what: str):
    """The one validation set of a list holding it (XGBoost's form), or the set itself."""
    if not isinstance(sets, list):
        return sets
    if len(sets) != 1:
        raise ValueError(f"{what}: escala validates on one set; got a list of {len(sets)}")
    return sets[0]


def _check_sample_weight(sample_weight, n: int, name: str = "sample_weight"
                         ) -> Optional[np.ndarray]:
    """sample_weight as a float64 array of n finite weights >= 0 (a copy: the caller's is left
    as it is), or None; a ValueError naming `name` otherwise."""
    if sample_weight is None:
        return None
    if hasattr(sample_weight, "to_numpy"):  # a pandas Series
        sample_weight = sample_weight.to_numpy()
    try:
        w = np.array(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must hold numbers: {e}") from None
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.ndim != 1:
        raise ValueError(f"{name} must be 1D array or scalar, got shape {w.shape}")
    if w.shape[0] != n:
        raise ValueError(f"{name}.shape == ({w.shape[0]},), expected ({n},): one weight "
                         "per row")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"{name}: row {bad[0]}: weight {w[bad[0]]} is not a finite "
                         "number >= 0")
    return w


def _drop_zero_weights(X, y, w):
    """The rows of weight > 0 (a row of weight 0 trains as one that is not there), and no
    weights when every remaining one is 1."""
    keep = w > 0
    if not keep.all():
        idx = np.flatnonzero(keep)
        if hasattr(X, "iloc"):
            X = X.iloc[idx]
        elif _is_columns(X):
            X = {k: np.asarray(v)[idx] for k, v in X.items()}
        else:
            X = np.asarray(X)[idx]
        y, w = y[idx], w[idx]
    return X, y, (None if np.all(w == 1) else w)


def _all_ranks_any(flag: bool, comm) -> bool:
    if comm is None or comm.size == 1:
        return flag
    return bool(comm.allreduce(np.array([1 if flag else 0], dtype=np.int64))[0] > 0)


def _weight_total(w, n: int, comm) -> float:
    """The weight sum over every rank (the row count without weights): scikit-learn's C is
    l2 = 1 / (C x this)."""
    local = float(n) if w is None else float(np.sum(w))
    if comm is None or comm.size == 1:
        return local
    return float(comm.allreduce(np.array([local], dtype=np.float64))[0])

def _global_classes(y: np.ndarray, comm) -> np.ndarray:
    """The sorted distinct labels over every rank's shard."""
    local = np.unique(y)
    if comm is None or comm.size == 1:
        return local
    import json
    parts = comm.allgather_bytes(json.dumps(local.tolist()).encode())
    values = [v for p in parts for v in json.loads(p)]
    # Without the local dtype: a longer label on another rank must not be cut to fit it.
    return np.unique(np.array(values, dtype=object if local.dtype.kind == "O" else None))


def _check_predict_input(est, X):
    try:
        from sklearn.utils.validation import check_array, check_is_fitted
    except ImportError:  # pragma: no cover
        return X
    check_is_fitted(est, "model_")
    if _feature_names(X) is None and not _is_columns(X):
        X = check_array(X, accept_sparse=False, dtype=None, force_all_finite="allow-nan")
        if X.dtype.kind == "O":
            X = _numeric_or_text(X)
    return X


def _classes_from_names(names, categorical: bool) -> np.ndarray:
    """escala's class names (text) as numpy would give the labels' classes: numbers as int64
    (or float64), text as objects."""
    if categorical:
        return np.asarray(names, dtype=object)
    values = np.array([float(v) for v in names])
    return values.astype(np.int64) if np.all(values == np.round(values)) else values


def _is_masked_numeric(col) -> bool:
    dtype = col.dtype
    return (getattr(dtype, "_is_numeric", False) or str(dtype) == "boolean") and \
        not isinstance(dtype, np.dtype)


def _feature_names(X) -> Optional[list]:
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        return [str(c) for c in X.columns]
    return None


class Model:
    """A trained model (a bundle): predictions on raw columns through its feature pipeline."""

    def __init__(self, predictor: "_core.Predictor"):
        self._p = predictor

    @property
    def task(self) -> str:
        return self._p.task

    @property
    def class_names(self) -> list:
        return list(self._p.class_names)

    @property
    def inputs(self) -> list:
        """The raw columns the model reads, as (name, type) pairs."""
        return list(self._p.inputs)

    @property
    def feature_names(self) -> list:
        """The features after the pipeline (what the model itself sees)."""
        return list(self._p.feature_names)

    @property
    def training_config(self) -> dict:
        return dict(self._p.training_config)

    @property
    def metrics(self) -> dict:
        return dict(self._p.metrics)

    def describe(self) -> str:
        return self._p.describe()

    def predict(self, X) -> np.ndarray:
        """Values (regression), P(y = 1) (binary) or class probabilities: rows x outputs."""
        return self._p.predict(self._inputs(X))

    def contributions(self, X):
        """TreeSHAP contributions (tree ensembles): (array, column names)."""
        return self._p.contributions(self._inputs(X))

    def save(self, path) -> None:
        self._p.save(os.fspath(path))

    def to_onnx(self, path, opset: int = 17) -> None:
        """Writes the model — its feature pipeline and the model — as one ONNX graph (escala
        export --onnx): one input per raw column, outputs ``prediction`` or ``probabilities`` and
        ``label``; checked by the ONNX checker, written atomically (docs/serving.md)."""
        self._p.save_onnx(os.fspath(path), int(opset))

    def to_bytes(self) -> bytes:
        return self._p.serialize()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        return cls(_core.Predictor.from_bytes(data))

    def _inputs(self, X) -> Dict[str, np.ndarray]:
        names = [n for n, _ in self._p.inputs]
        return _columns(X, None if _feature_names(X) else names)

    def __repr__(self) -> str:
        return f"escala.Model({self.describe()})"


def _paths(X):
    """X as a list of paths when it names files (a path, a glob, a directory or a list of
    them), else None."""
    if isinstance(X, (str, os.PathLike)):
        return [os.fspath(X)]
    if isinstance(X, (list, tuple)) and X and all(isinstance(p, (str, os.PathLike)) for p in X):
        return [os.fspath(p) for p in X]
    return None


def train(X, y=None, *, label: Optional[str] = None, eval_set=None, comm=None,
          memory_budget: Optional[int] = None, **params) -> Model:
    """Trains with escala's declared parameters by name (``escala.parameters()``, the CLI's
    flags): ``escala.train(df, label="species", model="gbdt", rounds=50)``.

    X may also name files (a path, glob, directory or a list): escala's readers read them (this
    rank's shard with comm), and with ``memory_budget`` (bytes) training streams them in bounded
    memory, for data larger than memory (``escala train --memory-budget``; the models that can
    stream). eval_set is then a path too."""
    paths = _paths(X)
    if paths is not None:
        if label is None:
            raise ValueError("training from files needs label= naming the label column")
        valid = _paths(eval_set) or [] if eval_set is not None else []
        blob, _ = _core.train_files(paths, label, {k: _text(v) for k, v in params.items()},
                                    valid, None if comm is None else comm._c,
                                    int(memory_budget or 0))
        return Model.from_bytes(blob)
    columns = _columns(X)
    if y is not None:
        label = _LABEL
        columns[label] = np.asarray(y)
    if label is None:
        raise ValueError("give y, or label= naming a column of X")
    valid = None
    if eval_set is not None:
        Xv, yv = eval_set
        valid = _columns(Xv, list(k for k in columns if k != label))
        valid[label] = np.asarray(yv)
    blob, _ = _core.train(columns, label, {k: _text(v) for k, v in params.items()}, valid,
                          None if comm is None else comm._c)
    return Model.from_bytes(blob)


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(str(int(h)) for h in v)
    return str(v)


class _Estimator(BaseEstimator):
    """What every escala estimator shares: fit through escala's library API, predict through
    the bundle's Predictor, pickling as the bundle's bytes."""

    _classifier = False

    def _escala_params(self, n_rows: int, n_classes: int) -> Dict[str, Any]:
        raise NotImplementedError

    def fit(self, X, y, sample_weight=None, eval_set=None, comm=None, memory_budget=None,
            sample_weight_eval_set=None):
        """Fits on X, y; with `comm` (escala.distributed.init()), X and y are this rank's shard
        and every rank gets the same model, trained data-parallel. sample_weight: one finite
        weight >= 0 per row (an array, list or pandas Series; escala's --weight): each row's
        loss counts that many times. Rows of weight 0 are dropped before training, and weights
        that are all 1 train as no weights, so both are exactly what scikit-learn's checks
        expect. eval_set: (X, y) of validation rows (or a list holding that one pair, as
        XGBoost's), which the validation metrics and early stopping use; sample_weight_eval_set
        their weights (an array, or a list holding it).

        X may instead name files (a path, glob or directory, or a list of them: CSV, NPY,
        LIBSVM), read by escala's readers in C++, never as Python objects; y is then the name of
        their label column, sample_weight the name of a weight column, eval_set file paths, and
        with comm each rank reads its shard of the files. The files are read once for their
        labels (the classes and row count the parameters need) and again to train; with
        memory_budget (bytes) the training streams them in bounded memory, for data larger than
        memory (the linear models with their default L-BFGS: docs/training.md)."""
        paths = _paths(X)
        if paths is not None:
            return self._fit_files(paths, y, sample_weight, eval_set, comm, memory_budget)
        if memory_budget is not None:
            raise ValueError("memory_budget: streaming is for X naming files; this X is in "
                             "memory already")
        X, y = _check_fit_input(X, y, self._classifier)
        y = np.asarray(y)
        weights = _check_sample_weight(sample_weight, len(y))
        if weights is not None:
            X, y, weights = _drop_zero_weights(X, y, weights)
        data, extra, n = self._inputs_for_fit(X)
        _check_rows(y, n)
        # Row-count-dependent settings (l2 = 1/(C n), the batch size) use every rank's rows, so
        # that all ranks train the same objective.
        n_all = n if comm is None else int(comm.allreduce(np.array([n], dtype=np.int64))[0])
        self._weight_total = _weight_total(weights, n, comm)
        params = self._fit_params(y, n_all, comm)
        extra[_LABEL] = _label_column(y, self._classifier)
        valid = self._valid_columns(eval_set, sample_weight_eval_set)
        if _all_ranks_any(weights is not None or (valid is not None and _WEIGHT in valid), comm):
            extra[_WEIGHT] = weights if weights is not None else np.ones(n)
            params["weight"] = _WEIGHT
        text = {k: _text(v) for k, v in params.items()}
        c = None if comm is None else comm._c
        if isinstance(data, tuple) and _passes_numbers_through(params):
            # The matrix itself is the model's input: viewed in C++, no table of its columns.
            blob, self.fit_report_ = _core.train_matrix(
                np.ascontiguousarray(data[0], dtype=np.float32), data[1], extra, _LABEL, text,
                valid, c)
        else:
            blob, self.fit_report_ = _core.train(data, _LABEL, text, valid, c)
        self.model_ = Model.from_bytes(blob)
        self.n_iter_ = self.fit_report_.get("epochs", 0)
        if self._classifier and len(self.model_.class_names) != len(self.classes_):
            raise ValueError(f"escala found {len(self.model_.class_names)} classes where numpy "
                             f"finds {len(self.classes_)}: {self.model_.class_names}")
        return self

    def _fit_files(self, paths, label, weight, eval_set, comm, memory_budget):
        """fit() on files: escala's readers and trainers do everything in C++."""
        if not isinstance(label, str):
            raise ValueError("X names files: give y as the name of their label column")
        if weight is not None and not isinstance(weight, str):
            raise ValueError("X names files: give sample_weight as the name of their weight "
                             "column")
        valid = None
        if eval_set is not None:
            valid = _paths(eval_set)
            if valid is None:
                raise ValueError("X names files: give eval_set as file paths too")
        c = None if comm is None else comm._c
        scan = _core.scan_files(paths, label, weight or "", self._classifier, c)
        self._names = list(scan["columns"])
        self.n_features_in_ = len(self._names)
        self.feature_names_in_ = np.asarray(self._names, dtype=object)
        self._numeric, self._clean = False, False  # the columns are not seen before training
        self._weight_total = scan["weight_sum"]
        if self._classifier:
            self.classes_ = _classes_from_names(scan["classes"], scan["categorical"])
            if len(self.classes_) < 2:
                raise ValueError(f"The number of classes has to be greater than one; got "
                                 f"{len(self.classes_)} class in column '{label}'")
            params = {"task": "binary" if len(self.classes_) == 2 else "multiclass",
                      **self._escala_params(scan["rows"], len(self.classes_))}
        else:
            params = {"task": "regression", **self._escala_params(scan["rows"], 0)}
        if weight is not None:
            params["weight"] = weight
        blob, self.fit_report_ = _core.train_files(
            paths, label, {k: _text(v) for k, v in params.items()}, valid or [], c,
            int(memory_budget or 0))
        self.model_ = Model.from_bytes(blob)
        self.n_iter_ = self.fit_report_.get("epochs", 0)
        self._numeric = all(kind != "categorical" for _, kind in self.model_.inputs)
        return self

    def _valid_columns(self, eval_set, sample_weight_eval_set=None):
        if eval_set is None:
            if sample_weight_eval_set is not None:
                raise ValueError("sample_weight_eval_set is given without an eval_set")
            return None
        listed = isinstance(eval_set, list)
        Xv, yv = _one_set(eval_set, "eval_set")
        valid = _columns(Xv, self._names)
        yv = np.asarray(yv)
        valid[_LABEL] = _label_column(yv, self._classifier)
        if sample_weight_eval_set is not None:
            w = (_one_set(sample_weight_eval_set, "sample_weight_eval_set") if listed
                 else sample_weight_eval_set)
            valid[_WEIGHT] = _check_sample_weight(w, len(yv), "sample_weight_eval_set")
        return valid

    def _inputs_for_fit(self, X):
        """What _core.train takes for X (a float matrix goes whole, its columns copied once in
        C++; anything else as columns), the dict the label joins, and the row count. Records
        the input's names and kind."""
        names = _feature_names(X)
        if type(X) is np.ndarray and X.ndim == 2 and X.dtype.kind == "f":
            self._names = [f"x{j}" for j in range(X.shape[1])]
            # One summing pass (NaN propagates); the exact test only when the sum is not finite.
            total = X.sum()
            self._numeric = True
            self._clean = bool(np.isfinite(total)) or not np.isnan(X).any()
            extra: Dict[str, np.ndarray] = {}
            data: Any = (X, self._names, extra)
            n = X.shape[0]
        else:
            columns = _columns(X)
            self._names = list(columns)
            self._numeric = all(c.dtype.kind == "f" for c in columns.values())
            self._clean = _numeric_without_missing(columns)
            data = extra = columns
            n = len(next(iter(columns.values()))) if columns else 0
        self.n_features_in_ = len(self._names)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return data, extra, n

    def _fit_params(self, y, n_all, comm) -> Dict[str, Any]:
        if not self._classifier:
            return {"task": "regression", **self._escala_params(n_all, 0)}
        self.classes_ = _global_classes(y, comm)
        if len(self.classes_) < 2:
            raise ValueError("The number of classes has to be greater than one; got 1 class")
        return {"task": "binary" if len(self.classes_) == 2 else "multiclass",
                **self._escala_params(n_all, len(self.classes_))}

    def _raw(self, X) -> np.ndarray:
        paths = _paths(X)
        if paths is not None:  # files: read and predicted in chunks in C++
            from sklearn.utils.validation import check_is_fitted
            check_is_fitted(self, "model_")
            return self.model_._p.predict_files(paths)
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype.kind == "f"
                and hasattr(self, "model_") and X.shape[1] == self.n_features_in_
                and getattr(self, "_numeric", False) and np.isfinite(X).all()):
            # The low-latency path: the array's columns viewed in place, no validation copies.
            return self.model_._p.predict_matrix(np.ascontiguousarray(X))
        X = _check_predict_input(self, X)
        columns = _columns(X)
        if len(columns) != self.n_features_in_:
            raise ValueError(f"X has {len(columns)} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        if _feature_names(X) is None:  # an array: its columns by position
            columns = dict(zip(self._names, columns.values()))
        return self.model_.predict(columns)

    def to_bundle(self, path) -> None:
        """Writes the fitted model as an escala bundle (``escala score``/``serve`` read it)."""
        self.model_.save(path)

    def to_onnx(self, path, opset: int = 17) -> None:
        """Writes the fitted model (pipeline and model) as one ONNX graph (Model.to_onnx)."""
        self.model_.to_onnx(path, opset)

    def __getstate__(self):
        state = dict(self.__dict__)
        if "model_" in state:
            state["model_"] = state["model_"].to_bytes()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), bytes):
            state["model_"] = Model.from_bytes(state["model_"])
        self.__dict__.update(state)

    def _more_tags(self):
        return {
            "allow_nan": True,
            "poor_score": True,
            # scikit-learn's check_estimator skips these, with the reason (docs/python.md).
            "_xfail_checks": {},
        }


class _Classifier(ClassifierMixin, _Estimator):
    _classifier = True

    def predict_proba(self, X) -> np.ndarray:
        p = self._raw(X)
        if p.shape[1] == 1:
            p = np.hstack([1 - p, p])
        return p.astype(np.float64)

    def decision_function(self, X) -> np.ndarray:
        p = np.clip(self.predict_proba(X), 1e-12, 1 - 1e-12)
        if p.shape[1] == 2:
            return np.log(p[:, 1] / p[:, 0])
        return np.log(p)

    def predict(self, X) -> np.ndarray:
        p = self.predict_proba(X)  # checks that the estimator is fitted first
        return self.classes_[np.argmax(p, axis=1)]


class _Regressor(RegressorMixin, _Estimator):
    def predict(self, X) -> np.ndarray:
        return self._raw(X)[:, 0].astype(np.float64)


def _seed(random_state) -> Dict[str, Any]:
    if random_state is None:
        return {}
    if isinstance(random_state, (int, np.integer)):
        return {"seed": int(random_state)}
    return {"seed": int(np.random.RandomState(random_state).randint(2**31))}


class _GBDT:
    def __init__(self, n_estimators=100, max_depth=6, learning_rate=0.3, max_leaves=0,
                 max_bin=255, reg_lambda=1.0, reg_alpha=0.0, gamma=0.0, min_child_weight=1.0,
                 subsample=1.0, colsample_bytree=1.0, colsample_bynode=1.0,
                 early_stopping_rounds=None, objective="auto", random_state=None):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.max_leaves = max_leaves
        self.max_bin = max_bin
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.colsample_bynode = colsample_bynode
        self.early_stopping_rounds = early_stopping_rounds
        self.objective = objective
        self.random_state = random_state

    def _escala_params(self, n_rows, n_classes):
        p = {"model": "gbdt", "rounds": self.n_estimators, "max_depth": self.max_depth,
             "learning_rate": self.learning_rate, "max_leaves": self.max_leaves,
             "max_bin": self.max_bin, "lambda": self.reg_lambda, "alpha": self.reg_alpha,
             "gamma": self.gamma, "min_child_weight": self.min_child_weight,
             "subsample": self.subsample, "colsample_bytree": self.colsample_bytree,
             "colsample_bynode": self.colsample_bynode, "objective": self.objective}
        if self.early_stopping_rounds:
            p["early_stopping"] = self.early_stopping_rounds
        p.update(_seed(self.random_state))
        return p


class GBDTClassifier(_GBDT, _Classifier):
    """Histogram gradient-boosted trees (escala's gbdt, parameters named as XGBoost's)."""


class GBDTRegressor(_GBDT, _Regressor):
    """Histogram gradient-boosted trees for regression (objective: auto, squared_error,
    absolute_error, huber, poisson)."""


class _Forest:
    def __init__(self, n_estimators=100, max_depth=None, min_samples_leaf=1, max_samples=None,
                 max_features=None, random_state=None):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.max_features = max_features
        self.random_state = random_state

    def _escala_params(self, n_rows, n_classes):
        p = {"model": "random_forest", "rounds": self.n_estimators,
             "min_data_in_leaf": self.min_samples_leaf}
        if self.max_depth is not None:
            p["max_depth"] = min(int(self.max_depth), 30)
        if self.max_samples is not None:
            s = self.max_samples
            p["subsample"] = s / max(n_rows, 1) if isinstance(s, (int, np.integer)) else s
        d = max(self.n_features_in_, 1)
        f = self.max_features
        if isinstance(f, str) and f in ("sqrt", "log2"):
            k = np.sqrt(d) if f == "sqrt" else np.log2(d)
            p["colsample_bynode"] = min(1.0, max(1.0, np.floor(k)) / d)
        elif isinstance(f, (int, np.integer)) and not isinstance(f, bool):
            p["colsample_bynode"] = min(1.0, max(1, int(f)) / d)
        elif isinstance(f, float):
            p["colsample_bynode"] = f
        elif f is not None:  # None: escala's (and scikit-learn's) defaults, sqrt(d) or all of d
            raise ValueError(f"max_features={f!r}: give a fraction, a count, 'sqrt', 'log2' "
                             "or None (the default: sqrt(d) to classify, d for regression)")
        p.update(_seed(self.random_state))
        return p


class RandomForestClassifier(_Forest, _Classifier):
    """A random forest (bootstrap rows per tree, sqrt(d) features per node by default)."""


class RandomForestRegressor(_Forest, _Regressor):
    """A random forest for regression (all features per node by default)."""


class _Float32Gemm:
    """Models whose inference is float32 matrix products (linear, logistic, MLP)."""

    def _more_tags(self):
        tags = _Estimator._more_tags(self)
        why = ("float32 inference: a row's output may differ by ~1e-6 relative with the size of "
               "its batch (the GEMM kernel depends on it)")
        # Its "zeros" case fits a shuffled copy of the rows (the zero-weight rows dropped): float32
        # training sums in another order (and an MLP draws other minibatches), ~1e-6 relative.
        order = ("float32 training: rows in another order change the fit by ~1e-6 relative; the "
                 "check's zero-weight case reorders the rows (weights of 1 are checked exactly)")
        tags["_xfail_checks"] = dict(tags["_xfail_checks"],
                                     check_methods_sample_order_invariance=why,
                                     check_methods_subset_invariance=why,
                                     check_sample_weights_invariance=order)
        return tags


def _passes_numbers_through(params) -> bool:
    """Whether the model's input is the matrix as it is: the pipeline "none", or the trees'
    default (which codes categories; a matrix has none)."""
    pipeline = params.get("pipeline")
    return pipeline == "none" or (pipeline is None and params.get("model") in _TREES)


_TREES = ("gbdt", "random_forest")


def _numeric_without_missing(columns) -> bool:
    return all(c.dtype.kind in "fiub" and not (c.dtype.kind == "f" and np.isnan(c).any())
               for c in columns.values())


def _pipeline(est) -> Dict[str, Any]:
    """The estimator's `pipeline`: "auto" takes the numbers as they are when every column is
    numeric and complete (as scikit-learn's estimators do), and escala's default pipeline
    (impute, standardize, one-hot) otherwise; any other value is a pipeline spec."""
    if est.pipeline != "auto":
        return {"pipeline": est.pipeline}
    return {"pipeline": "none"} if getattr(est, "_clean", False) else {}


class LogisticRegression(_Float32Gemm, _Classifier):
    """L2-regularised logistic (softmax for more than two classes) regression, fitted by
    L-BFGS; C and tol as scikit-learn's (the penalty is 1 / (C n); L-BFGS stops when the
    largest gradient component is at most tol). pipeline: "auto" (see below), or
    an escala pipeline spec (docs/features.md)."""

    def __init__(self, C=1.0, tol=1e-4, max_iter=None, pipeline="auto", random_state=None):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.pipeline = pipeline
        self.random_state = random_state

    def _escala_params(self, n_rows, n_classes):
        p = {"model": "softmax" if n_classes > 2 else "logistic", "optimizer": "lbfgs",
             "l2": 1.0 / (self.C * max(getattr(self, "_weight_total", n_rows), 1e-300)),
             "tol": self.tol, **_pipeline(self)}
        if self.max_iter is not None:
            p["epochs"] = self.max_iter
        p.update(_seed(self.random_state))
        return p


class LinearRegression(_Float32Gemm, _Regressor):
    """Linear least squares; alpha and l1_ratio give ridge, lasso and elastic net (alpha as
    scikit-learn's ElasticNet: the penalty per row)."""

    def __init__(self, alpha=0.0, l1_ratio=0.0, max_iter=None, pipeline="auto"):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.pipeline = pipeline

    def _escala_params(self, n_rows, n_classes):
        p = {"model": "linear", "optimizer": "lbfgs", "l2": self.alpha * (1 - self.l1_ratio),
             "l1": self.alpha * self.l1_ratio, **_pipeline(self)}
        if self.max_iter is not None:
            p["epochs"] = self.max_iter
        return p


class _MLP:
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", alpha=1e-4,
                 learning_rate_init=1e-3, max_iter=200, batch_size=200, early_stopping=True,
                 pipeline="auto", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.pipeline = pipeline
        self.random_state = random_state

    def _escala_params(self, n_rows, n_classes):
        p = {"model": "mlp", "hidden": tuple(self.hidden_layer_sizes),
             "activation": self.activation, "l2": self.alpha, "lr": self.learning_rate_init,
             "epochs": self.max_iter, "batch_size": min(self.batch_size, max(n_rows, 1)),
             "optimizer": "adam", **_pipeline(self)}
        p.update(_seed(self.random_state))
        return p


class MLPClassifier(_MLP, _Float32Gemm, _Classifier):
    """A multi-layer perceptron classifier trained by Adam."""


class MLPRegressor(_MLP, _Float32Gemm, _Regressor):
    """A multi-layer perceptron regressor trained by Adam."""


class Pipeline(BaseEstimator):
    """An escala feature pipeline (docs/features.md) as a scikit-learn transformer:

        escala.Pipeline("impute(median) | standardize | onehot(island, sex)").fit_transform(df)

    fit() fits every step on the columns of X (a DataFrame, an array or a dict of columns);
    transform() returns the float32 feature matrix, named by get_feature_names_out()."""

    def __init__(self, spec: str = "", keep_missing: bool = False):
        self.spec = spec
        self.keep_missing = keep_missing

    def fit(self, X, y=None):
        self._names = _feature_names(X)
        self.pipeline_ = _core.Pipeline(self.spec)
        self.pipeline_.fit(_columns(X), [], self.keep_missing)
        self.n_features_in_ = len(_columns(X))
        return self

    def transform(self, X) -> np.ndarray:
        columns = _columns(X, None if _feature_names(X) else self._names)
        return self.pipeline_.transform(columns)

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.pipeline_.output_names, dtype=object)

    def describe(self) -> str:
        return self.pipeline_.describe()

    def __getstate__(self):
        state = dict(self.__dict__)
        if "pipeline_" in state:
            state["pipeline_"] = state["pipeline_"].serialize()
        return state

    def __setstate__(self, state):
        if isinstance(state.get("pipeline_"), bytes):
            state["pipeline_"] = _core.Pipeline.parse(state["pipeline_"])
        self.__dict__.update(state)
