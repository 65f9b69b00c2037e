"""`LabelwiseClassifier`: `labelwise.fit` and the `Classifier` it returns, as a scikit-learn estimator.

The estimator composes the library and never re-implements it: `labelwise.fit` infers the Task, trains, calibrates
and tunes the decision policy; predictions come from `Classifier.predict_source`. What lives here is the sklearn
contract: array validation (`validate_data`), sklearn's label conventions (sorted ``classes_``, `predict_proba`
columns in that order, multilabel predictions as a 0/1 indicator matrix) and the learned ``*_`` attributes. The
positive class of a binary task is labelwise's (`infer_task`), not sklearn's ``classes_[1]``, so that the estimator,
`labelwise.fit` and ``labelwise train`` tune the threshold for the same class.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sklearn.exceptions
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Tags, check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from labelwise.classifier import Predictions
from labelwise.data.sources import Source
from labelwise.errors import ConfigError, LabelError, NotFittedError, format_rows
from labelwise.fitting import fit as labelwise_fit
from labelwise.task import HeadType, Task, TaskKind

__all__ = ["LabelwiseClassifier"]

_TEXT = "text"  # the column a list of strings becomes

_MAX_SEED = 2**31 - 1


class _NotFittedError(NotFittedError, sklearn.exceptions.NotFittedError):  # type: ignore[misc]  # sklearn is untyped
    """Caught by ``except labelwise.NotFittedError`` and by ``except sklearn.exceptions.NotFittedError`` alike."""


class LabelwiseClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """A labelwise classifier with the scikit-learn estimator interface.

    ``fit(X, y)`` trains with `labelwise.fit` on the features ``X`` (2-D array or DataFrame of numbers; a list or
    1-D array of strings, read as one text column; or a DataFrame with text, categorical or date columns, read as
    ``labelwise train`` reads a table) and labels
    ``y`` in any form the Task accepts: 1-D str/int/bool labels, a list/set of labels per item, delimiter-separated
    label strings, or a 0/1 indicator matrix (array, list of rows or DataFrame of 0/1 columns) for multilabel.
    The validation split, calibration and tuned thresholds are labelwise's own.

    Args:
        task, label_sep, positive, binary_head: how to read ``y``, as `labelwise.options.DataConfig` says;
            ``positive`` None: the one class named like a positive (``True``, ``1``, ``"yes"``, ``"Y"``,
            ``"pos"``...), else the rarer class, as `labelwise.fit` and ``labelwise train`` decide. This may be
            ``classes_[0]``: sklearn's binary metrics take ``classes_[1]`` unless given ``pos_label=positive_``.
        model: ``auto`` (the tabular MLP; for text, the solved linear model), or a registered backbone name
            (`list_backbones`).
        text_cols: the only columns of a DataFrame ``X`` to read as text (None: their values decide).
        epochs, time_budget, lr, weight_decay, batch_size, patience, folds, label_smoothing, balance, num_workers,
            accelerator, guards, loss, num_sampled, proposal, devices, num_nodes, strategy, precision: how to train,
            as `labelwise.train.TrainConfig` says.
        metric, top_k, allow_none, coverage, selective_accuracy, conformal, conformal_method: how to decide, as
            `labelwise.decide.DecideConfig` says; with ``allow_none``, `predict` may answer None ("none of these")
            while `decision_function` still ranks every class.
        random_state: seed of the split, the initial weights and the batch order (``TrainConfig.seed``); an int,
            a ``numpy.random.RandomState``, or None for a fresh seed each fit.

    The parameters are `labelwise.fit`'s options under the same names, except those that do not apply to an array
    of features: ``target`` and ``image_col`` (``y`` holds the labels), ``stream`` and ``skip_bad_images`` (data in
    memory, no images), ``pretrained`` and ``image_size`` (no image backbone), ``loggers`` (a fit has no run folder
    to log into; save ``classifier_`` instead), and ``seed``, spelled ``random_state`` as in scikit-learn.

    Attributes:
        classifier_: the trained `Classifier` (save it with ``classifier_.save(path)``).
        task_: its `Task`.
        classes_: the classes as an array, in `predict_proba` column order (sorted, as sklearn sorts them;
            ``0..C-1`` for an indicator-matrix target).
        positive_: binary: the positive class, the one whose threshold was tuned. Absent otherwise.
        thresholds_: binary: the tuned threshold on P(``positive_``); multilabel: ``(C,)`` per-label thresholds.
            Absent for multiclass, which decides by argmax.
        n_features_in_: number of features seen in `fit`.
        feature_names_in_: the column names, when ``X`` was a DataFrame with string column names.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = LabelwiseClassifier(epochs=5).fit(X, y)
        >>> clf.predict_proba(X[:2]).shape, clf.classes_.tolist()
        ((2, 3), [0, 1, 2])
        >>> bool(clf.score(X, y) > 0.7)
        True
    """

    def __init__(
        self,
        *,
        task: str = "auto",
        label_sep: str | None = None,
        positive: Any = None,
        binary_head: str = "one",
        model: str = "auto",
        text_cols: tuple[str, ...] | None = None,
        epochs: int | None = None,
        time_budget: float | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        batch_size: int | None = None,
        patience: int = 8,
        folds: int | str = "auto",
        label_smoothing: float = 0.0,
        balance: str = "auto",
        num_workers: int = 0,
        accelerator: str = "auto",
        guards: str = "warn",
        loss: str = "auto",
        num_sampled: int | None = None,
        proposal: str = "frequency",
        devices: int | str = 1,
        num_nodes: int = 1,
        strategy: str = "auto",
        precision: str = "32",
        metric: str = "f1",
        top_k: int | None = None,
        allow_none: str | None = None,
        coverage: float | None = None,
        selective_accuracy: float | None = None,
        conformal: float | None = None,
        conformal_method: str = "auto",
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        # sklearn's contract: __init__ stores its arguments verbatim; fit validates them (so clone/set_params work).
        for name, value in locals().items():
            if name != "self":
                setattr(self, name, value)

    def __sklearn_tags__(self) -> Tags:
        """sklearn tags: multilabel indicator targets are supported; NaN in ``X`` is not."""
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X: npt.ArrayLike, y: Any) -> LabelwiseClassifier:
        """Train on features ``X`` ``(N, F)`` and labels ``y`` (see the class docstring for the label forms).

        Returns:
            self, fitted.

        Raises:
            LabelError: ``y`` is None, continuous, NaN, holds one class or mixed types, or has another length than X.
            ConfigError: an option out of range (named as the parameter).
            ValueError: ``X`` is not a finite 2-D array of numbers (sklearn's `validate_data`).
        """
        values = self._table(X, reset=True)
        labels = _labels_from_y(y)
        if len(labels) != len(values):
            raise LabelError(
                f"inconsistent numbers of samples: y has {len(labels)} rows, X has {len(values)}; expected one label "
                "(or one indicator row) per row of X. Pass X and y with the same rows in the same order."
            )
        options = {name: value for name, value in self.get_params().items() if name != "random_state"}
        if self._texts and options["text_cols"] is None:
            options["text_cols"] = (_TEXT,)  # a list of strings is one text column, whatever its values look like
        # labelwise.fit checks every value and names the parameter in its error.
        self.classifier_ = labelwise_fit(
            _source(values, self._columns(), labels=labels), progress=False, seed=self._seed(), **options
        )
        self.task_: Task = self.classifier_.task
        # The Task orders a binary task (negative, positive); sklearn wants classes_ sorted, so the columns of the
        # Task's outputs are permuted into sorted order. Multilabel keeps the Task's order: its indicator columns
        # are y's columns, in y's order.
        single = self.task_.kind is not TaskKind.MULTILABEL
        order = _sorted_order(self.task_.classes) if single else list(range(self.task_.num_classes))
        self._order = np.asarray(order, dtype=np.int64)
        self.classes_ = np.asarray(self.task_.classes)[self._order]
        if self.task_.kind is TaskKind.BINARY:
            self.positive_ = self.task_.positive
        rule = self.classifier_.policy.rule
        if rule.threshold is not None:
            self.thresholds_: float | np.ndarray = rule.threshold
        elif rule.thresholds is not None:
            self.thresholds_ = np.asarray(rule.thresholds)
        return self

    def _seed(self) -> int:
        seed = self.random_state
        if seed is None or isinstance(seed, np.random.RandomState):
            seed = int(check_random_state(seed).randint(_MAX_SEED))
        return int(seed)

    def _columns(self) -> list[str]:
        # The DataFrame's own names when it had them, so `classifier_.save(...)` predicts on a table with those
        # columns; positional names otherwise.
        names = getattr(self, "feature_names_in_", None)
        return [str(n) for n in names] if names is not None else [f"x{i}" for i in range(self.n_features_in_)]

    # -- prediction --------------------------------------------------------------------------------
    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Decisions: labels ``(N,)`` from ``classes_``; multilabel: an ``(N, C)`` int64 0/1 matrix over ``classes_``.

        An ``allow_none`` model answers None where it abstains (the array is then of dtype object).
        """
        out = self._predict(X).out
        if self.task_.kind is TaskKind.MULTILABEL:
            return np.asarray(out.decisions.numpy(), dtype=np.int64)
        indices = out.decisions.numpy()  # into the Task's classes, which classes_ holds in another order
        classes = np.asarray(self.task_.classes)
        abstained = indices < 0
        if not abstained.any():
            return np.asarray(classes[indices])
        labels = classes.astype(object)[np.where(abstained, 0, indices)]
        labels[abstained] = None
        return np.asarray(labels)

    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Calibrated probabilities ``(N, C)`` float64, columns in ``classes_`` order.

        Binary gives both columns; multilabel each label's own probability (rows need not sum to 1).
        """
        return np.asarray(self._predict(X).probs.numpy()[:, self._order], dtype=np.float64)

    def decision_function(self, X: npt.ArrayLike) -> np.ndarray:
        """Calibrated scores whose sign or argmax gives `predict`'s decision.

        Binary ``(N,)``: the calibrated logit of ``positive_`` minus the logit of the tuned threshold, negated
        when ``positive_`` is ``classes_[0]``, so that, as in sklearn, a score above 0 means ``classes_[1]``.
        Multilabel ``(N, C)``: the same per label with its own threshold.
        Multiclass ``(N, C)``: the calibrated logits (argmax = prediction; an ``allow_none`` model's abstentions
        are not reflected).
        """
        predicted = self._predict(X)
        logits = predicted.outputs.logits
        if logits is None:
            raise ConfigError(
                "decision_function needs every class's logit; this model ranks its classes in chunks (trained with "
                "loss='chunked' or 'sampled'). Use predict_proba's top classes via `classifier_.predict_source`."
            )
        logits = logits.double()
        if self.task_.kind is TaskKind.MULTICLASS:
            return np.asarray(logits.numpy()[:, self._order])
        if self.task_.kind is TaskKind.BINARY and self.task_.head is not HeadType.ONE_LOGIT:
            # A one-vs-rest binary head has two sigmoids, normalised; its score is the logit of that probability.
            logits = torch.logit(predicted.probs[:, 1:].double())
        thresholds = torch.logit(torch.as_tensor(self.thresholds_, dtype=torch.float64))
        scores = logits - thresholds
        if self.task_.kind is TaskKind.BINARY:
            sign = 1.0 if self.classes_[1] == self.positive_ else -1.0
            return np.asarray(sign * scores[:, 0].numpy())
        return np.asarray(scores.numpy()[:, self._order])

    def _predict(self, X: npt.ArrayLike) -> Predictions:
        try:
            check_is_fitted(self, "classifier_")
        except sklearn.exceptions.NotFittedError:
            raise _NotFittedError(
                f"this {type(self).__name__} is not fitted yet; predicting needs a trained model. "
                "Call `fit(X, y)` first."
            ) from None
        return self.classifier_.predict_source(_source(self._table(X, reset=False), self._columns()))

    def _table(self, X: Any, *, reset: bool) -> np.ndarray | pd.DataFrame:
        """``X`` as numbers (sklearn's `validate_data`), or as a table when it holds text or other non-numbers."""
        frame = _texts_frame(X)
        if frame is None:
            if reset:
                self._texts = False
            return np.asarray(validate_data(self, X, reset=reset))
        if reset:
            self._texts = not isinstance(X, pd.DataFrame)
            self.n_features_in_ = frame.shape[1]
            self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
            return frame
        missing = [name for name in self.feature_names_in_ if name not in frame.columns]
        if missing:
            raise ValueError(
                f"X lacks the column(s) {missing!r} that fit saw; expected columns {list(self.feature_names_in_)!r}."
            )
        return frame


def _texts_frame(X: Any) -> pd.DataFrame | None:
    """A list or 1-D array of strings as a one-column table, a DataFrame with a non-numeric column as it is;
    None for numbers (which `validate_data` checks)."""
    if isinstance(X, pd.DataFrame):
        numeric = all(pd.api.types.is_numeric_dtype(dtype) for dtype in X.dtypes)
        return None if numeric else X.rename(columns=str).reset_index(drop=True)
    if isinstance(X, str):
        raise ValueError("X is one string; expected a list of strings (one text per item) or a 2-D array.")
    items = X.tolist() if isinstance(X, np.ndarray | pd.Series) and np.ndim(X) == 1 else X
    if isinstance(items, list) and items and all(isinstance(item, str) for item in items):
        return pd.DataFrame({_TEXT: items})
    return None


def _source(
    values: np.ndarray | pd.DataFrame, columns: list[str], *, labels: pd.Series | pd.DataFrame | None = None
) -> Source:
    """A table `Source` over validated features.

    Built directly rather than with `source_from_frame`, which reads a column named ``y``, ``label`` or ``is_valid``
    as the target or the split, as it should for a CSV: here every column of ``X`` is a feature.
    """
    return Source(
        frame=values if isinstance(values, pd.DataFrame) else pd.DataFrame(values, columns=columns),
        kind="table",
        root=Path.cwd(),
        ids=[str(i) for i in range(len(values))],
        feature_columns=columns,
        target=None if labels is None else "y",
        labels=labels,
    )


def _labels_from_y(y: Any) -> pd.Series | pd.DataFrame:
    """``y`` as the Series (one entry per item) or DataFrame (0/1 columns) that `infer_task` reads."""
    if y is None:
        raise LabelError(
            "LabelwiseClassifier requires y to be passed, but the target y is None. "
            "Expected one label per row of X (or a 0/1 indicator matrix); call `fit(X, y)`."
        )
    if isinstance(y, pd.DataFrame):
        _check_not_continuous(y.to_numpy())
        labels: pd.Series | pd.DataFrame = y.reset_index(drop=True)
    elif isinstance(y, pd.Series):
        _check_not_continuous(y.to_numpy())
        labels = y.reset_index(drop=True)
    else:
        array = np.asarray(y) if not isinstance(y, list) else _list_as_array(y)
        _check_not_continuous(array)
        labels = pd.DataFrame(array) if array.ndim == 2 else pd.Series(list(array), dtype=object)
    if isinstance(labels, pd.DataFrame) and labels.shape[1] == 1:
        # sklearn's convention (`column_or_1d(warn=True)`): a column vector is 1-D labels, said with a warning.
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
            "(n_samples,), for example using ravel().",
            sklearn.exceptions.DataConversionWarning,
            stacklevel=3,
        )
        labels = labels.iloc[:, 0]
    return labels


def _list_as_array(y: list[Any]) -> np.ndarray:
    """A list as an array when its rows are equal-length (an indicator matrix as lists); else one object per item."""
    try:
        array = np.asarray(y)
        if array.ndim in (1, 2) and array.dtype != object:
            return array
    except ValueError:  # ragged lists of labels
        pass
    ragged = np.empty(len(y), dtype=object)
    ragged[:] = y
    return ragged


def _check_not_continuous(array: np.ndarray) -> None:
    """Refuse float targets that are not class labels, with the ``Unknown label type`` phrase sklearn tools match."""
    if array.dtype.kind != "f":
        return
    missing = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))
    if missing.size:
        raise LabelError(
            f"Input y contains NaN or infinity in {format_rows(missing.tolist())}; expected a class label in every "
            "row. Drop those rows (from X too) or fill in their labels."
        )
    kind = type_of_target(array)
    if kind.startswith("continuous"):
        found = np.unique(array[array != np.round(array)])
        raise LabelError(
            f"Unknown label type: {kind}; y holds {found.size} distinct non-integer numbers (e.g. "
            f"{found[:3].tolist()}). Expected class labels (str, int, bool), lists of labels, or a 0/1 indicator "
            "matrix. For a numeric target use a regressor, or bin it into classes first."
        )


def _sorted_order(classes: tuple[Any, ...]) -> list[int]:
    """Indices that put ``classes`` in sklearn's order (`numpy.unique`'s, where the labels can be compared)."""
    try:
        return sorted(range(len(classes)), key=lambda i: classes[i])
    except TypeError:  # labels numpy cannot sort either: keep the Task's order
        return list(range(len(classes)))
