"""`RunRecord`: what a trained run remembers about how it was made, a frozen value written once.

It is built at the end of `labelwise.fit` from the prepared data, the training result and the validation metrics,
saved into ``labelwise.json`` beside the Task, the preprocessing, the model, the calibration and the policy, and read
back by `labelwise.load`. Nothing edits it after construction: a run saved to a folder is the same record with
``run_dir`` set (`dataclasses.replace`).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, NoReturn

__all__ = ["FrozenDict", "RunRecord", "freeze", "library_versions", "thaw"]


class FrozenDict(dict[str, Any]):
    """A dict that refuses to change after it is built. Unlike `types.MappingProxyType` it pickles (a fitted
    scikit-learn estimator holding a run must), and it still reads and compares as a dict."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a run's record is frozen; build a new one with dataclasses.replace(record, ...)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return FrozenDict, (dict(self),)  # rebuilt whole: unpickling item by item would call __setitem__


def freeze(value: Any) -> Any:
    """A read-only copy of nested dicts and lists (`FrozenDict` and tuples), so a record cannot be edited."""
    if isinstance(value, Mapping):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, as JSON takes them; inverts `freeze`."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """How a run was made and how it scored on its validation rows.

    Attributes:
        target: the label column(s) it was trained on (None for an image folder).
        feature_columns: the table's feature columns, in order.
        training: epochs, stop reason, history, guards' findings, class balance, the split, row counts, skipped
            images, and the options (``config``: `TrainConfig`, ``decide``: `DecideConfig`, ``options``: all four
            option groups of `labelwise.options.FitOptions`).
        train_counts: training rows per class (multilabel: positives), for the head / torso / tail metrics.
        head: the loss the head was trained with and why (``loss``, ``reason``, ``balance``).
        versions: the libraries it was trained with.
        metrics: ``{"valid": {...}}``, the validation metrics of `labelwise.Classifier.evaluate`'s keys.
        run_dir: the folder it was saved to, if any.
    """

    target: Any = None
    feature_columns: tuple[str, ...] = ()
    training: Mapping[str, Any] = field(default_factory=FrozenDict)
    train_counts: tuple[int, ...] | None = None
    head: Mapping[str, Any] = field(default_factory=FrozenDict)
    versions: Mapping[str, str] = field(default_factory=FrozenDict)
    metrics: Mapping[str, Any] = field(default_factory=FrozenDict)
    run_dir: str | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(self, item.name, freeze(getattr(self, item.name)))

    def saved_to(self, run_dir: str) -> RunRecord:
        """This record, of a run saved to ``run_dir``."""
        return replace(self, run_dir=run_dir)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; what ``labelwise.json`` holds beside the Task, preprocessing, model, calibration, policy."""
        data = {item.name: thaw(getattr(self, item.name)) for item in fields(self)}
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Rebuild a record from ``labelwise.json``'s remaining keys; keys of no field are left out.

        Runs of older versions may lack any of the fields (a run saved before the head-loss choice has no ``head``).
        """
        names = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def library_versions() -> dict[str, str]:
    """The versions of the libraries a run is trained with (read from their metadata: importing Lightning, timm and
    torchmetrics takes seconds, which a run that trains without them need not pay)."""
    from importlib.metadata import version

    import torch

    from labelwise._version import __version__

    return {
        "labelwise": __version__,
        "torch": torch.__version__,
        "lightning": version("lightning"),
        "torchmetrics": version("torchmetrics"),
        "timm": version("timm"),
        "python": platform.python_version(),
    }
