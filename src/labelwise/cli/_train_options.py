"""The options of `labelwise train`: one flag per field of `labelwise.options.FitOptions`, its default read from the
field (so each default is written once), grouped as in ``--help``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["TASKS", "add_column_kinds_arg", "add_fit_options"]

TASKS = ("auto", "binary", "multiclass", "multilabel")


def add_fit_options(cmd: Any) -> None:
    """Every option of `labelwise.fit` as a flag of ``cmd``: ``--batch-size`` is ``TrainConfig.batch_size``."""
    _add_label_args(cmd)
    _add_model_args(cmd)
    _add_decide_args(cmd)
    _add_training_args(cmd)
    _add_head_loss_args(cmd)
    _add_run_args(cmd)
    _add_scale_out_args(cmd)


def _default(name: str) -> Any:
    """The option's default, from its dataclass field (`labelwise.options`): defaults are spelled once."""
    from labelwise.options import option_default

    return option_default(name)


def _add_label_args(cmd: Any) -> None:
    cmd.add_argument(
        "--task",
        choices=TASKS,
        default=_default("task"),
        help="override the inferred kind (multilabel on single-label data lets the model answer none)",
    )
    cmd.add_argument("--label-sep", default=None, help="separator of multilabel label strings (default: detected)")
    cmd.add_argument(
        "--positive",
        default=None,
        help="positive class of a binary task, spelled as in the data (default: the one class named like "
        "yes/true/1/pos, else the rarer)",
    )
    cmd.add_argument(
        "--binary-head",
        choices=("one", "two"),
        default=_default("binary_head"),
        help="binary: one logit + sigmoid + BCE, or two logits + softmax + cross-entropy",
    )
    add_column_kinds_arg(cmd)
    cmd.add_argument(
        "--stream",
        choices=("auto", "on", "off"),
        default=_default("stream"),
        help="read Parquet data in record batches instead of into memory: auto streams when its uncompressed size "
        "exceeds a quarter of the available memory (CSV never streams)",
    )


def add_column_kinds_arg(cmd: Any) -> None:
    """``--column-kinds NAME=KIND ...`` and ``--text-cols NAME ...``, shared by ``train`` and ``inspect``."""
    cmd.add_argument(
        "--column-kinds",
        nargs="+",
        default=_default("column_kinds"),
        metavar="NAME=KIND",
        help="read these feature columns as the kind given (numeric, categorical, boolean, datetime, identifier, "
        "text, ignored) instead of the kind their values suggest; e.g. --column-kinds zip=categorical notes=ignored",
    )
    cmd.add_argument(
        "--text-cols",
        nargs="*",
        default=_default("text_cols"),
        metavar="NAME",
        help="read these columns as free text, and no others (a column not named that reads as text is left out; "
        "--text-cols alone: none). Default: each column's values decide",
    )


def _add_model_args(cmd: Any) -> None:
    cmd.add_argument(
        "--model",
        default=_default("model"),
        help="auto (mlp for tables, cnn for images, a solved linear model for text), mlp, linear (logistic "
        "regression of a table's features, solved), cnn, a timm name, or with --pretrained a Hugging Face text model "
        "(id in the local cache, or folder) that reads the text columns",
    )
    cmd.add_argument(
        "--pretrained",
        action="store_true",
        help="start a timm model or a Hugging Face text model from pretrained weights in the local Hugging Face / "
        "torch hub cache or folder (no download)",
    )
    cmd.add_argument("--image-size", type=int, default=None, help="resize images to this side (default: from data)")


def _add_training_args(cmd: Any) -> None:
    group = cmd.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: chosen from the data size)")
    group.add_argument("--time-budget", type=float, default=None, help="stop training after this many seconds")
    group.add_argument("--lr", type=float, default=None, help="peak learning rate (default: chosen for the model)")
    group.add_argument(
        "--weight-decay",
        type=float,
        default=_default("weight_decay"),
        help="AdamW weight decay (default: 0.05, or the text model's own)",
    )
    group.add_argument("--batch-size", type=int, default=None, help="batch size (default: chosen from the data size)")
    group.add_argument(
        "--patience", type=int, default=_default("patience"), help="epochs without a better validation loss to stop"
    )
    group.add_argument("--seed", type=int, default=_default("seed"), help="random seed (split, initialisation, order)")
    group.add_argument(
        "--folds",
        type=_folds,
        default=_default("folds"),
        help="K >= 2: train K models on K folds and fit calibration and thresholds on every row's out-of-fold "
        "prediction; 1: one model on an 80/20 split; auto (default): K for small in-memory tables, else 1",
    )
    group.add_argument(
        "--label-smoothing", type=float, default=_default("label_smoothing"), help="softmax label smoothing, in [0, 1)"
    )
    group.add_argument(
        "--balance",
        choices=("auto", "none"),
        default=_default("balance"),
        help="auto: weight the loss when classes are strongly imbalanced",
    )
    group.add_argument(
        "--guards",
        choices=("warn", "fail", "off"),
        default=_default("guards"),
        help="when the model collapses onto one class or learns nothing: warn, fail, or off "
        "(non-finite losses always stop training)",
    )
    group.add_argument(
        "--num-workers", type=int, default=_default("num_workers"), help="DataLoader worker processes (0: in process)"
    )


def _add_head_loss_args(cmd: Any) -> None:
    group = cmd.add_argument_group("many classes")
    group.add_argument(
        "--loss",
        choices=("auto", "full", "chunked", "sampled"),
        default=_default("loss"),
        help="softmax over many classes: full logits; chunked (exact, memory-bounded); sampled (candidate "
        "sampling, fast); auto: full while its logits fit, chosen from the class count and memory (the run says why)",
    )
    group.add_argument(
        "--num-sampled", type=int, default=None, help="negatives per step with --loss sampled (default: 4096)"
    )
    group.add_argument(
        "--proposal",
        choices=("frequency", "uniform", "log_uniform"),
        default=_default("proposal"),
        help="what --loss sampled draws negatives from: training label frequency^0.75, uniform, or log-uniform "
        "(Zipf over class ids numbered by decreasing frequency)",
    )


def _add_run_args(cmd: Any) -> None:
    cmd.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed or failed run from RUN.partial (same data and options), from its last finished "
        "epoch; starts afresh when there is none",
    )
    cmd.add_argument(
        "--logger",
        dest="loggers",
        nargs="+",
        default=list(_default("loggers")),
        metavar="NAME",
        help="training logs: csv (RUN/logs/metrics.csv, always on: the --report of `evaluate` reads it), "
        "tensorboard (RUN/logs/tensorboard), mlflow (RUN/mlruns, or $MLFLOW_TRACKING_URI); several allowed, "
        "e.g. --logger csv tensorboard (give DATA before this flag); tensorboard and mlflow need `pip install "
        '"labelwise[loggers]"`',
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")


def _int_or_auto(expected: str) -> Callable[[str], int | str]:
    """An argparse type reading ``auto`` or an int (TrainConfig says what is wrong with an int out of range)."""

    def read(text: str) -> int | str:
        if text == "auto":
            return text
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected} or 'auto', got {text!r}") from None

    return read


_folds = _int_or_auto("a whole number of folds")
_devices = _int_or_auto("an int")


def _add_scale_out_args(cmd: Any) -> None:
    from labelwise.train._choices import PRECISIONS, STRATEGIES

    group = cmd.add_argument_group("devices and machines (through Lightning; see the README's multi-GPU section)")
    group.add_argument(
        "--accelerator",
        choices=("auto", "cpu", "gpu", "mps"),
        default=_default("accelerator"),
        help="auto: a GPU when there is one, else the CPU",
    )
    group.add_argument(
        "--devices",
        type=_devices,
        default=_default("devices"),
        help="GPUs (or CPU processes) per machine, or auto (every visible GPU); each process takes an equal slice "
        "of every --batch-size batch (the steps of one process)",
    )
    group.add_argument(
        "--num-nodes",
        type=int,
        default=_default("num_nodes"),
        help="machines taking part, started by torchrun or SLURM (srun)",
    )
    group.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=_default("strategy"),
        help="auto: DDP when there is more than one process",
    )
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=_default("precision"),
        help="autocast: bf16-mixed (CPU, GPU), 16-mixed (GPU)",
    )


def _add_decide_args(cmd: Any) -> None:
    from labelwise.decide.config import DEFAULT_COVERAGE, DEFAULT_NONE_STRATEGY, NONE_STRATEGIES

    group = cmd.add_argument_group("decisions (tuned on the validation split, saved in the run)")
    group.add_argument(
        "--metric",
        default=_default("metric"),
        help="what binary and per-label thresholds are tuned for: f1, fbeta:B, precision@recall:R, "
        "recall@precision:P, accuracy, balanced_accuracy, mcc, youden",
    )
    group.add_argument("--top-k", type=int, default=None, help="multiclass: also give the K most probable classes")
    group.add_argument(
        "--allow-none",
        nargs="?",
        const=DEFAULT_NONE_STRATEGY,
        default=None,
        choices=NONE_STRATEGIES,
        metavar="STRATEGY",
        help="single-label data: the model may answer none of these. max_prob or energy score the calibrated "
        f"softmax model, one_vs_rest trains one sigmoid per class (default when given: {DEFAULT_NONE_STRATEGY}; "
        "give DATA before this flag, or a STRATEGY after it)",
    )
    group.add_argument(
        "--coverage",
        type=float,
        default=None,
        help=f"with --allow-none: fraction of validation items to answer (default {DEFAULT_COVERAGE})",
    )
    group.add_argument(
        "--selective-accuracy",
        type=float,
        default=None,
        help="with --allow-none, instead of --coverage: accuracy the answered items must reach",
    )
    group.add_argument(
        "--conformal",
        type=float,
        default=None,
        metavar="LEVEL",
        help="give conformal prediction sets that hold the true label with this probability, e.g. 0.9",
    )
    group.add_argument(
        "--conformal-method",
        choices=("auto", "aps", "raps", "max_label"),
        default=_default("conformal_method"),
        help="how --conformal scores a set: aps or raps (single-label), max_label (multilabel); auto picks by task",
    )
