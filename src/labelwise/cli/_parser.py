"""The argument parser: every subcommand, its options and their defaults, shown in ``--help``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from labelwise._version import __version__
from labelwise.cli import _handlers as run
from labelwise.cli._train_options import TASKS, add_column_kinds_arg, add_fit_options

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other bad input (exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        # One "labelwise: error:" prefix, as every other error has; the subcommand follows it.
        command = self.prog.removeprefix("labelwise").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"labelwise: error: {where}{message} (see `{self.prog} --help`)\n")


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
    parser.add_argument("--version", action="version", version=f"labelwise {__version__}")
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
    add_column_kinds_arg(cmd)
    cmd.add_argument("--task", choices=TASKS, default="auto", help="override the inferred kind of task")
    cmd.add_argument("--label-sep", default=None, help="separator of multilabel label strings (default: detected)")
    cmd.add_argument(
        "--positive", default=None, help="positive class of a binary task, as `labelwise train --positive`"
    )
    cmd.add_argument(
        "--seed", type=int, default=0, help="seed of the validation split (and of --label-issues' folds and training)"
    )
    cmd.add_argument(
        "--label-issues",
        action="store_true",
        help="also find likely label errors: cross-fit the default model in memory (nothing is written) and rank the "
        "rows whose label its out-of-fold probabilities most contradict (cleanlab's confident learning)",
    )
    cmd.add_argument(
        "--folds", type=int, default=None, help="models cross-fitted by --label-issues (default: 5)", metavar="K"
    )
    cmd.add_argument("--json", action="store_true", help="print JSON")


def _add_train(sub: Any) -> None:
    # Each option's flag is its field name in labelwise.options.FitOptions with "-" for "_" (`--batch-size` is
    # `TrainConfig.batch_size`); the handler passes them to `labelwise.fit` by that name.
    cmd = _command(sub, "train", "train a classifier and tune its decisions on validation data", run.train)
    cmd.add_argument("data", help="CSV/Parquet file or image folder (ROOT/<class>/* or ROOT/{train,valid}/<class>/*)")
    cmd.add_argument("--out", default=None, help="run directory (default: runs/<data name>)")
    _add_data_args(cmd, training=True)
    add_fit_options(cmd)


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
    cmd.add_argument("--out", default="predictions.csv", help="CSV file to write; - for standard output")
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
    cmd.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="longest a request waits, from its arrival, to share a model call",
    )
    cmd.add_argument("--max-body", default="4MiB", help="largest request body (e.g. 4MiB, 512KB); larger gets 413")
    cmd.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch: the run's network; onnx: onnxruntime on RUN/model.onnx from `labelwise export` (RUN may also be "
        "the .onnx file itself; a table run is then served without torch)",
    )
    cmd.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads of one model call (torch or onnxruntime); more help large models on many cores, where the "
        "event loop and the HTTP clients leave cores idle",
    )


def _add_demo(sub: Any) -> None:
    from labelwise.datasets import list_demos

    cmd = _command(sub, "demo", "train and evaluate on embedded data made from scikit-learn's datasets", run.demo)
    cmd.add_argument("name", nargs="?", default="digits", choices=list_demos(), help="which demo")
    cmd.add_argument("--dir", default="labelwise-demo", help="folder for the demo data and run")
    cmd.add_argument("--seed", type=int, default=0, help="random seed")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
