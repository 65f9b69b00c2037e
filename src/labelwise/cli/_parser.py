"""The argument parser: every subcommand, its options and their defaults, shown in ``--help``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from labelwise.cli import _handlers as run

__all__ = ["build_parser"]

_TASKS = ("auto", "binary", "multiclass", "multilabel")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other bad input (exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"labelwise: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a default only where the help text does not already explain it, and not for off-switches."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.default is None
            or action.default is False
            or action.default == argparse.SUPPRESS
        ):
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="labelwise",
        description="Train, evaluate and use binary, multiclass and multilabel classifiers.",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_inspect(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_export(sub)
    _add_check(sub)
    _add_serve(sub)
    _add_demo(sub)
    return parser


def _command(sub: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    cmd = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
    cmd.set_defaults(handler=handler)
    cmd.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return cmd


def _add_data_args(cmd: Any, *, training: bool) -> None:
    cmd.add_argument(
        "--target",
        nargs="+",
        default=None,
        help="label column, or several 0/1 columns (multilabel); default: a column named "
        "label/labels/target/class/y" + ("" if training else " (default: as at training)"),
    )
    if training:
        cmd.add_argument("--image-col", default=None, help="column of image paths, relative to the table's folder")
    cmd.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip unreadable images (they are counted and named) instead of stopping",
    )


def _add_inspect(sub: Any) -> None:
    cmd = _command(
        sub,
        "inspect",
        "report what training would see in the data: the task and why, class counts, rare classes, duplicates and "
        "train/validation leakage, conflicting labels, unreadable images, useless columns",
        run.inspect,
    )
    cmd.add_argument("data", help="CSV/Parquet file or image folder")
    cmd.add_argument(
        "--target",
        nargs="+",
        default=None,
        help="label column, or several 0/1 columns (multilabel); default: a column named label/labels/target/class/y",
    )
    cmd.add_argument("--image-col", default=None, help="column of image paths, relative to the table's folder")
    cmd.add_argument("--task", choices=_TASKS, default="auto", help="override the inferred kind of task")
    cmd.add_argument("--label-sep", default=None, help="separator of multilabel label strings (default: detected)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the validation split, as `labelwise train --seed`")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def _default(name: str) -> Any:
    """The option's default, from its dataclass field (`labelwise.options`): defaults are spelled once."""
    from dataclasses import MISSING, fields

    from labelwise.decide.config import DecideConfig
    from labelwise.options import DataConfig, ModelConfig
    from labelwise.train.config import TrainConfig

    for config in (DataConfig, ModelConfig, TrainConfig, DecideConfig):
        for item in fields(config):
            if item.name == name:
                return item.default if item.default is not MISSING else item.default_factory()  # type: ignore[misc]
    raise KeyError(name)


def _add_train(sub: Any) -> None:
    # Each option's flag is its field name in labelwise.options.FitOptions with "-" for "_" (`--batch-size` is
    # `TrainConfig.batch_size`); the handler passes them to `labelwise.fit` by that name.
    cmd = _command(sub, "train", "train a classifier and tune its decisions on validation data", run.train)
    cmd.add_argument("data", help="CSV/Parquet file or image folder (ROOT/<class>/* or ROOT/{train,valid}/<class>/*)")
    cmd.add_argument("--out", default=None, help="run directory (default: runs/<data name>)")
    _add_data_args(cmd, training=True)
    _add_label_args(cmd)
    _add_model_args(cmd)
    _add_decide_args(cmd)
    _add_training_args(cmd)
    _add_head_loss_args(cmd)
    _add_run_args(cmd)
    _add_scale_out_args(cmd)


def _add_label_args(cmd: Any) -> None:
    cmd.add_argument(
        "--task",
        choices=_TASKS,
        default=_default("task"),
        help="override the inferred kind (multilabel on single-label data lets the model answer none)",
    )
    cmd.add_argument("--label-sep", default=None, help="separator of multilabel label strings (default: detected)")
    cmd.add_argument("--positive", default=None, help="positive class of a binary task (default: True/1, else rarer)")
    cmd.add_argument(
        "--binary-head",
        choices=("one", "two"),
        default=_default("binary_head"),
        help="binary: one logit + sigmoid + BCE, or two logits + softmax + cross-entropy",
    )
    cmd.add_argument(
        "--stream",
        choices=("auto", "on", "off"),
        default=_default("stream"),
        help="read Parquet data in record batches instead of into memory: auto streams when its uncompressed size "
        "exceeds a quarter of the available memory (CSV never streams)",
    )


def _add_model_args(cmd: Any) -> None:
    cmd.add_argument(
        "--model", default=_default("model"), help="auto (mlp for tables, cnn for images), mlp, cnn or a timm name"
    )
    cmd.add_argument(
        "--pretrained",
        action="store_true",
        help="start a timm model from pretrained weights in the local Hugging Face / torch hub cache (no download)",
    )
    cmd.add_argument("--image-size", type=int, default=None, help="resize images to this side (default: from data)")


def _add_training_args(cmd: Any) -> None:
    group = cmd.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: chosen from the data size)")
    group.add_argument("--time-budget", type=float, default=None, help="stop training after this many seconds")
    group.add_argument("--lr", type=float, default=None, help="peak learning rate (default: chosen for the model)")
    group.add_argument("--weight-decay", type=float, default=_default("weight_decay"), help="AdamW weight decay")
    group.add_argument("--batch-size", type=int, default=None, help="batch size (default: chosen from the data size)")
    group.add_argument(
        "--patience", type=int, default=_default("patience"), help="epochs without a better validation loss to stop"
    )
    group.add_argument("--seed", type=int, default=_default("seed"), help="random seed (split, initialisation, order)")
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


def _devices(text: str) -> int | str:
    """``--devices``: an int >= 1 or ``auto``; TrainConfig says what is wrong with any other int."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or 'auto', got {text!r}") from None


def _add_scale_out_args(cmd: Any) -> None:
    from labelwise.train.distributed import PRECISIONS, STRATEGIES

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


def _add_evaluate(sub: Any) -> None:
    cmd = _command(sub, "evaluate", "measure a trained run on labelled data", run.evaluate)
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("data", help="labelled CSV/Parquet file or image folder")
    _add_data_args(cmd, training=False)
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.add_argument(
        "--report",
        default=None,
        metavar="PATH",
        help="also write a self-contained HTML report (figures embedded, no network) to PATH, e.g. report.html",
    )


def _add_check(sub: Any) -> None:
    cmd = _command(
        sub, "check", "check how a run's network, loss and labels fit together, on a batch of labelled data", run.check
    )
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("data", help="labelled CSV/Parquet file or image folder")
    _add_data_args(cmd, training=False)
    cmd.add_argument("--rows", type=int, default=256, help="rows in the checked batch (a seeded sample)")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def _add_predict(sub: Any) -> None:
    cmd = _command(sub, "predict", "write predictions for new data", run.predict)
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("data", help="CSV/Parquet file, or a folder of images (flat or a class tree)")
    cmd.add_argument("--out", default="predictions.csv", help="CSV file to write")
    cmd.add_argument("--id-col", default=None, help="column to copy into `id` (default: image path, else row number)")
    cmd.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images instead of stopping")
    cmd.add_argument(
        "--top-k", type=int, default=None, help="multiclass: write the K most probable classes in the `set` column"
    )
    cmd.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch: the run's network; onnx: onnxruntime on RUN/model.onnx from `labelwise export` (RUN may also be "
        "the .onnx file itself)",
    )


def _add_export(sub: Any) -> None:
    cmd = _command(
        sub,
        "export",
        "write a trained run as one ONNX file: preprocessing, network and calibrated probabilities, with the task, "
        "classes and decision policy in its metadata",
        run.export,
    )
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("--format", choices=("onnx",), default="onnx", help="file format")
    cmd.add_argument(
        "--out", default=None, help="file to write (default: RUN/model.onnx, where `predict --backend onnx` looks)"
    )
    cmd.add_argument("--opset", type=int, default=None, help="ONNX opset, at least 18 (default: the exporter's)")


def _add_serve(sub: Any) -> None:
    cmd = _command(
        sub,
        "serve",
        "serve a trained run as an HTTP JSON API: POST /predict (rows of features, or images as base64 or multipart), "
        "GET /health, GET /metadata; requests are batched across clients; SIGTERM drains in-flight requests",
        run.serve,
    )
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=int, default=8000, help="port to listen on (0 picks a free one)")
    cmd.add_argument("--max-batch", type=int, default=64, help="most rows or images in one model call")
    cmd.add_argument("--max-wait-ms", type=float, default=5.0, help="longest a request waits to share a model call")
    cmd.add_argument("--max-body", default="4MiB", help="largest request body (e.g. 4MiB, 512KB); larger gets 413")


def _add_demo(sub: Any) -> None:
    from labelwise.datasets import list_demos

    cmd = _command(sub, "demo", "train and evaluate on embedded data made from scikit-learn's datasets", run.demo)
    cmd.add_argument("name", nargs="?", default="digits", choices=list_demos(), help="which demo")
    cmd.add_argument("--dir", default="labelwise-demo", help="folder for the demo data and run")
    cmd.add_argument("--seed", type=int, default=0, help="random seed")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
