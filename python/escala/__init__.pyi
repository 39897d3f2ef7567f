# Type stubs of the escala package (python/escala/__init__.py).
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

__version__: str

class Error(ValueError): ...

_Paths = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]

from . import distributed as distributed

def set_log_level(level: str) -> None: ...
def read(paths: _Paths) -> Dict[str, Any]: ...
def read_csv(paths: _Paths) -> Any: ...
def load(path: Union[str, os.PathLike]) -> Model: ...
def parameters() -> List[dict]: ...
def train(X: Any, y: Any = ..., *, label: Optional[str] = ..., eval_set: Any = ...,
          comm: Any = ..., **params: Any) -> Model: ...

class Model:
    task: str
    class_names: List[str]
    inputs: List[Tuple[str, str]]
    feature_names: List[str]
    training_config: Dict[str, str]
    metrics: Dict[str, float]
    def describe(self) -> str: ...
    def predict(self, X: Any) -> np.ndarray: ...
    def contributions(self, X: Any) -> Tuple[np.ndarray, List[str]]: ...
    def save(self, path: Union[str, os.PathLike]) -> None: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes) -> Model: ...

class _Estimator:
    n_features_in_: int
    model_: Model
    fit_report_: Dict[str, Any]
    def fit(self, X: Any, y: Any, sample_weight: Any = ..., eval_set: Any = ...,
            comm: Any = ...) -> Any: ...
    def predict(self, X: Any) -> np.ndarray: ...
    def score(self, X: Any, y: Any, sample_weight: Any = ...) -> float: ...
    def get_params(self, deep: bool = ...) -> Dict[str, Any]: ...
    def set_params(self, **params: Any) -> Any: ...
    def to_bundle(self, path: Union[str, os.PathLike]) -> None: ...

class _Classifier(_Estimator):
    classes_: np.ndarray
    def predict_proba(self, X: Any) -> np.ndarray: ...
    def decision_function(self, X: Any) -> np.ndarray: ...

class GBDTClassifier(_Classifier):
    def __init__(self, n_estimators: int = ..., max_depth: int = ..., learning_rate: float = ...,
                 max_leaves: int = ..., max_bin: int = ..., reg_lambda: float = ...,
                 reg_alpha: float = ..., gamma: float = ..., min_child_weight: float = ...,
                 subsample: float = ..., colsample_bytree: float = ...,
                 colsample_bynode: float = ..., early_stopping_rounds: Optional[int] = ...,
                 objective: str = ..., random_state: Any = ...) -> None: ...

class GBDTRegressor(_Estimator):
    def __init__(self, n_estimators: int = ..., max_depth: int = ..., learning_rate: float = ...,
                 max_leaves: int = ..., max_bin: int = ..., reg_lambda: float = ...,
                 reg_alpha: float = ..., gamma: float = ..., min_child_weight: float = ...,
                 subsample: float = ..., colsample_bytree: float = ...,
                 colsample_bynode: float = ..., early_stopping_rounds: Optional[int] = ...,
                 objective: str = ..., random_state: Any = ...) -> None: ...

class RandomForestClassifier(_Classifier):
    def __init__(self, n_estimators: int = ..., max_depth: Optional[int] = ...,
                 min_samples_leaf: int = ..., max_samples: Optional[float] = ...,
                 max_features: Any = ..., random_state: Any = ...) -> None: ...

class RandomForestRegressor(_Estimator):
    def __init__(self, n_estimators: int = ..., max_depth: Optional[int] = ...,
                 min_samples_leaf: int = ..., max_samples: Optional[float] = ...,
                 max_features: Any = ..., random_state: Any = ...) -> None: ...

class LogisticRegression(_Classifier):
    def __init__(self, C: float = ..., max_iter: Optional[int] = ...,
                 random_state: Any = ...) -> None: ...

class LinearRegression(_Estimator):
    def __init__(self, alpha: float = ..., l1_ratio: float = ...,
                 max_iter: Optional[int] = ...) -> None: ...

class MLPClassifier(_Classifier):
    def __init__(self, hidden_layer_sizes: Tuple[int, ...] = ..., activation: str = ...,
                 alpha: float = ..., learning_rate_init: float = ..., max_iter: int = ...,
                 batch_size: int = ..., early_stopping: bool = ...,
                 random_state: Any = ...) -> None: ...

class MLPRegressor(_Estimator):
    def __init__(self, hidden_layer_sizes: Tuple[int, ...] = ..., activation: str = ...,
                 alpha: float = ..., learning_rate_init: float = ..., max_iter: int = ...,
                 batch_size: int = ..., early_stopping: bool = ...,
                 random_state: Any = ...) -> None: ...
