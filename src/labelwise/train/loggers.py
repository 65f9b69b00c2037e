"""Training logs through Lightning's loggers: CSV always, TensorBoard and MLflow on request (``--logger``).

- ``csv``: ``RUN/logs/metrics.csv``, one row per epoch; always on, because ``labelwise evaluate --report`` draws
  the training curves from it.
- ``tensorboard``: event files in ``RUN/logs/tensorboard/`` (``tensorboard --logdir RUN/logs``).
- ``mlflow``: one MLflow run per training in experiment ``labelwise``, stored in ``RUN/mlruns`` (``mlflow ui
  --backend-store-uri RUN/mlruns``), or on the server ``MLFLOW_TRACKING_URI`` names when it is set.

TensorBoard and MLflow need the ``loggers`` extra: ``pip install "labelwise[loggers]"``.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError

__all__ = ["LOGGERS", "check_loggers", "create_loggers", "logging_environment"]

LOGGERS = ("csv", "tensorboard", "mlflow")
_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
_EXPERIMENT = "labelwise"
# MLflow 3 refuses its file store (./mlruns) unless this is set; the database store it recommends needs
# SQLAlchemy, which the `loggers` extra does not bring. A run directory's own log is what a file store is for.
_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


def check_loggers(names: Any) -> tuple[str, ...]:
    """Validate logger names; return them with ``csv`` first (always on) and without repeats.

    Raises:
        ConfigError: not a sequence of names, an unknown name (with the closest known one), or TensorBoard or
            MLflow asked for but not installed (checked here, before any work).

    Example:
        >>> check_loggers(["tensorboard"])
        ('csv', 'tensorboard')
        >>> check_loggers(["tensorbord"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        labelwise.errors.ConfigError: unknown logger 'tensorbord' (did you mean 'tensorboard'?); expected ...
    """
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"loggers={names!r}; expected a list of names among {', '.join(LOGGERS)}, e.g. ['csv'].")
    for name in names:
        if name not in LOGGERS:
            close = difflib.get_close_matches(name, LOGGERS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown logger {name!r}{hint}; expected some of {', '.join(LOGGERS)} (`--logger csv tensorboard`)."
            )
    missing = [name for name in names if name in _PACKAGES and importlib.util.find_spec(_PACKAGES[name]) is None]
    if missing:
        raise ConfigError(
            f"--logger {' '.join(missing)} needs the {' and '.join(_PACKAGES[m] for m in missing)} package, which is "
            'not installed; install it with `pip install "labelwise[loggers]"`, or drop that --logger.'
        )
    return tuple(dict.fromkeys(["csv", *names]))


def create_loggers(names: Sequence[str], *, run_dir: Path) -> list[Any]:
    """Lightning loggers for ``names`` (`check_loggers` output) writing into ``run_dir``.

    CSV comes first: the trainer's ``log_dir`` is the first logger's.
    """
    from lightning.pytorch.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=run_dir, name="logs", version="")]
    if "tensorboard" in names:
        from lightning.pytorch.loggers import TensorBoardLogger

        # default_hp_metric=False: no placeholder "hp_metric" scalar of -1 beside the real curves.
        loggers.append(TensorBoardLogger(save_dir=run_dir, name="logs", version="tensorboard", default_hp_metric=False))
    if "mlflow" in names:
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(
            MLFlowLogger(
                experiment_name=_EXPERIMENT,
                run_name=run_dir.name.removesuffix(".partial"),
                tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or _local_store(run_dir),
            )
        )
    return loggers


def _local_store(run_dir: Path) -> str:
    return f"file:{(run_dir / 'mlruns').resolve()}"


@contextmanager
def logging_environment(names: Sequence[str]) -> Iterator[None]:
    """While training: let MLflow write its local file store (see `_ALLOW_FILE_STORE`), without Lightning's notice
    that it creates the experiment; both restored afterwards."""
    local_mlflow = "mlflow" in names and not os.environ.get("MLFLOW_TRACKING_URI")
    previous = os.environ.get(_ALLOW_FILE_STORE)
    if local_mlflow:
        os.environ[_ALLOW_FILE_STORE] = "true"
    # Lightning says "Experiment with name labelwise not found. Creating it." as a warning on every first run.
    notices = logging.getLogger("lightning.pytorch.loggers.mlflow")
    level = notices.level
    notices.setLevel(logging.ERROR)
    try:
        yield
    finally:
        notices.setLevel(level)
        if local_mlflow:
            if previous is None:
                os.environ.pop(_ALLOW_FILE_STORE, None)
            else:
                os.environ[_ALLOW_FILE_STORE] = previous
