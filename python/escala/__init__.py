"""escala: machine learning at scale, from Python.

The package drives escala's C++ core (the same readers, feature pipelines, trainers and model
bundles as the ``escala`` command line):

    import escala
    df = escala.read_csv("penguins.csv")                 # a pandas DataFrame, typed columns
    clf = escala.GBDTClassifier(n_estimators=50).fit(df.drop(columns="species"), df.species)
    clf.predict_proba(df.drop(columns="species"))
    clf.to_bundle("penguins.bundle")                     # `escala score --model penguins.bundle`
    model = escala.load("penguins.bundle")               # or an XGBoost model.json

The estimators follow scikit-learn's API (fit, predict, predict_proba, score, get_params,
set_params) and work in its pipelines, grid searches and cross-validation; they pickle as their
bundle's bytes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Union

import numpy as np

from . import _core


class Error(Exception):
    """An error raised by escala's core; ``code`` names its kind ("InvalidArgument",
    "NotFound", "DataLoss", ...: docs/errors.md). The subclasses are also the built-in exception
    Python code expects: bad arguments are ValueError, a missing file FileNotFoundError, an I/O
    failure OSError, a timeout TimeoutError."""

    code: str = "Unknown"


class InvalidArgumentError(Error, ValueError):
    """Bad input: a malformed file, argument, parameter or request."""


class NotFoundError(Error, FileNotFoundError):
    """A file, column, model or version that does not exist."""


class IOFailure(Error, OSError):
    """The operating system refused an I/O operation."""


class DeadlineExceededError(Error, TimeoutError):
    """A timeout: a collective, a rendezvous, a request."""


_core._set_error_classes({-1: Error, 3: InvalidArgumentError, 11: InvalidArgumentError,
                          5: NotFoundError, 100: IOFailure, 4: DeadlineExceededError})

from . import distributed  # noqa: E402,F401
# The estimators, Model and train live in _estimators, which imports scikit-learn (60 MB of
# memory): loaded on first use (PEP 562), so `import escala` for reading data stays light.
_ESTIMATORS = ("GBDTClassifier", "GBDTRegressor", "LinearRegression", "LogisticRegression",
               "MLPClassifier", "MLPRegressor", "Model", "Pipeline", "RandomForestClassifier",
               "RandomForestRegressor", "train")


if TYPE_CHECKING:
    from ._estimators import Model


def __getattr__(name: str) -> Any:
    if name in _ESTIMATORS:
        from . import _estimators
        return getattr(_estimators, name)
    raise AttributeError(f"module 'escala' has no attribute '{name}'")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_ESTIMATORS))


__version__: str = _core.__version__

# escala's logs go to Python's logging (the logger "escala"). The library logs progress at
# "info" on the command line; from Python only warnings and errors are emitted unless asked
# (escala.set_log_level("info"), or ESCALA_LOG_LEVEL in the environment).
_core.log_to_python()
_core.set_log_level(os.environ.get("ESCALA_LOG_LEVEL", "warn"))


def set_log_level(level: str) -> None:
    """Sets escala's log level: trace, debug, info, warn, error or off."""
    _core.set_log_level(level)

__all__ = [
    "Client", "DeadlineExceededError", "Error", "IOFailure", "InvalidArgumentError",
    "NotFoundError", "distributed", "GBDTClassifier", "GBDTRegressor", "LinearRegression", "LogisticRegression",
    "MLPClassifier", "MLPRegressor", "Model", "RandomForestClassifier", "RandomForestRegressor",
    "Pipeline", "Server", "describe", "load", "parameters", "read", "read_array", "read_csv",
    "report",
    "serve", "set_log_level", "set_num_threads", "train", "__version__",
]


def read(paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]) -> Dict[str, Any]:
    """Reads files (CSV, LIBSVM, NPY, IDX; globs and directories) with escala's readers.

    Returns {column name: numpy array}. Numeric columns are arrays that view escala's parsed
    buffers without a copy; a categorical column is (codes, categories), code -1 when missing.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return _core.read_table([os.fspath(p) for p in paths])


def read_array(paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]],
               label: Optional[str] = None):
    """Reads all-numeric files (CSV, NPY, LIBSVM densified) straight into one float32 matrix
    with escala's dense readers, the fastest path: returns (X, y, feature names), y None without
    a label. The arrays own escala's buffers (no copy)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return _core.read_dense([os.fspath(p) for p in paths], label or "")


def read_csv(paths: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]):
    """Reads files as :func:`read` does into a pandas DataFrame (categorical columns as
    ``pandas.Categorical``)."""
    import pandas as pd

    columns = {}
    for name, col in read(paths).items():
        if isinstance(col, tuple):
            codes, categories = col
            columns[name] = pd.Categorical.from_codes(codes, categories=categories)
        else:
            columns[name] = col
    return pd.DataFrame(columns, copy=False)


def load(path: Union[str, os.PathLike]) -> Model:
    """Loads a model bundle (or an XGBoost JSON/UBJSON model) for prediction."""
    from ._estimators import Model
    return Model(_core.Predictor.from_file(os.fspath(path)))


def parameters() -> List[dict]:
    """The declared training parameters: name, default, range, help and group (as
    ``escala params`` prints them)."""
    return _core.parameters()


def _data(X):
    from ._estimators import _columns
    if isinstance(X, (str, os.PathLike)):
        # a categorical column's code -1 (missing) picks the None appended to its categories
        return {k: (np.append(np.asarray(v[1], dtype=object), None)[np.asarray(v[0])]
                    if isinstance(v, tuple) else v) for k, v in read(X).items()}
    return _columns(X)


def describe(X, label: Optional[str] = None):
    """Statistics of every column (as ``escala stats``): a pandas DataFrame indexed by column
    (type, count, missing, mean, std, quantiles, distinct, outliers, correlation with the
    label). X: a DataFrame, a dict of columns or a path."""
    import pandas as pd

    rows, _ = _core.describe(_data(X), label or "")
    return pd.DataFrame(rows).set_index("column")


def report(X, path: Union[str, os.PathLike], label: Optional[str] = None,
           title: str = "escala report") -> None:
    """Writes the HTML report ``escala stats --html`` writes (histograms, correlations)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(_core.report_html(_data(X), label or "", title))


class Server:
    """The embedded prediction server (Open Inference Protocol over gRPC; metrics and health
    over HTTP). Stop it with stop() or a ``with`` block."""

    def __init__(self, core):
        self._s = core

    @property
    def grpc_port(self) -> int:
        return self._s.grpc_port

    @property
    def http_port(self) -> int:
        return self._s.http_port

    def stop(self, grace_seconds: float = 5.0) -> None:
        self._s.stop(grace_seconds)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(models: Optional[Dict[str, Any]] = None, repository: Optional[str] = None,
          grpc_address: str = "127.0.0.1:0", http_address: str = "127.0.0.1:0") -> Server:
    """Starts escala's prediction server in this process. models: {name: a Model, a fitted
    escala estimator, or a path to a bundle / XGBoost / ONNX model}; repository: a model repository
    directory. Port 0 picks a free one (see .grpc_port and .http_port)."""
    entries = []
    for name, m in (models or {}).items():
        if hasattr(m, "model_"):
            m = m.model_
        entries.append((name, m._p if hasattr(m, "_p") else os.fspath(m)))
    return Server(_core.Server(entries, repository or "", grpc_address, http_address))


def set_num_threads(threads: int) -> int:
    """Caps the threads escala's computations use (0: every core); returns the cap."""
    return _core.set_num_threads(int(threads))


class Client:
    """A client of an Open Inference Protocol server (escala's or any other) over gRPC:

        escala.Client("127.0.0.1:8001").infer("penguins", df)   # {output name: numpy array}
    """

    def __init__(self, target: str = "127.0.0.1:8001"):
        self._c = _core.Client(target)

    def ready(self) -> bool:
        return self._c.ready()

    def infer(self, model: str, X, outputs: Optional[List[str]] = None,
              version: str = "") -> Dict[str, np.ndarray]:
        """Sends X (a 2-D array of the model's features, or a DataFrame / dict of its raw
        columns) and returns the outputs by name."""
        from ._estimators import _columns
        x = X if isinstance(X, np.ndarray) else _columns(X)
        return self._c.infer(model, x, outputs or [], version)
