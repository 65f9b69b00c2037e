"""The ``labelwise`` command: parse arguments -> call the public API -> format the result. Nothing else.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from labelwise.errors import ArtifactError, LabelwiseError, LabelwiseWarning

__all__ = ["build_parser", "main"]

_TASKS = ("auto", "binary", "multiclass", "multilabel")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (tests call this in process)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except LabelwiseError as err:
        if args.debug:
            traceback.print_exc()
        print(f"labelwise: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"labelwise: interrupted; {_kept_for_resume(args)}", file=sys.stderr)
        return 130
    except SystemExit as err:
        # Lightning turns SIGTERM into SystemExit(None) once the current step is done; that is no success.
        if err.code not in (None, 0):
            raise
        print(f"labelwise: terminated (SIGTERM); {_kept_for_resume(args)}", file=sys.stderr)
        return 143
    except Exception as err:  # noqa: BLE001 - the last line of defence turns any bug into a report request
        if args.debug:
            traceback.print_exc()
        print(f"labelwise: internal error: {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        print(
            "labelwise: this is a bug; please report it with the command you ran (add --debug for the traceback).",
            file=sys.stderr,
        )
        return 1
    finally:
        warnings.showwarning = shown


def _kept_for_resume(args: argparse.Namespace) -> str:
    partial = Path(f"{args.out}.partial") if args.command == "train" and args.out else None
    if partial is not None and (partial / "checkpoints" / "last.ckpt").is_file():
        return f"the finished epochs are kept in {str(partial)!r}; add --resume to the same command to continue."
    return "no run was written."


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Our warnings are messages for the user, not for a developer: one line, no source location.
    if issubclass(category, LabelwiseWarning):
        print(f"labelwise: warning: {_one_line(message)}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno), end="", file=sys.stderr)


def _one_line(err: BaseException | Warning | str) -> str:
    # Messages quote the offending values; a 1 MB CSV cell must not become a 1 MB line on the terminal.
    words = (_shorten(word, _MAX_WORD) for word in str(err).split())
    return _shorten(" ".join(words), _MAX_LINE)


_MAX_WORD = 300  # longer than any path or value a person reads
_MAX_LINE = 3000


def _shorten(text: str, limit: int) -> str:
    """``text``, or its start and end around a note of how much was left out (the found value, then the fix)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 6
    return f"{text[:head]}[...{len(text) - head - tail:,} characters...]{text[-tail:]}"


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
        _inspect,
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


def _add_train(sub: Any) -> None:
    cmd = _command(sub, "train", "train a classifier and tune its decisions on validation data", _train)
    cmd.add_argument("data", help="CSV/Parquet file or image folder (ROOT/<class>/* or ROOT/{train,valid}/<class>/*)")
    _add_data_args(cmd, training=True)
    cmd.add_argument("--out", default=None, help="run directory (default: runs/<data name>)")
    cmd.add_argument(
        "--task",
        choices=_TASKS,
        default="auto",
        help="override the inferred kind (multilabel on single-label data lets the model answer none)",
    )
    cmd.add_argument("--label-sep", default=None, help="separator of multilabel label strings (default: detected)")
    cmd.add_argument("--positive", default=None, help="positive class of a binary task (default: True/1, else rarer)")
    cmd.add_argument(
        "--binary-head",
        choices=("one", "two"),
        default="one",
        help="binary: one logit + sigmoid + BCE, or two logits + softmax + cross-entropy",
    )
    cmd.add_argument("--model", default="auto", help="auto (mlp for tables, cnn for images), mlp, cnn or a timm name")
    cmd.add_argument(
        "--pretrained",
        action="store_true",
        help="start a timm model from pretrained weights in the local Hugging Face / torch hub cache (no download)",
    )
    cmd.add_argument("--image-size", type=int, default=None, help="resize images to this side (default: from data)")
    _add_decide_args(cmd)
    cmd.add_argument(
        "--balance",
        choices=("auto", "none"),
        default="auto",
        help="auto: weight the loss when classes are strongly imbalanced",
    )
    cmd.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: chosen from the data size)")
    cmd.add_argument("--time-budget", type=float, default=None, help="stop training after this many seconds")
    cmd.add_argument("--lr", type=float, default=None, help="peak learning rate (default: chosen for the model)")
    cmd.add_argument("--batch-size", type=int, default=None, help="batch size (default: chosen from the data size)")
    cmd.add_argument("--seed", type=int, default=0, help="random seed (split, initialisation, order)")
    cmd.add_argument(
        "--guards",
        choices=("warn", "fail", "off"),
        default="warn",
        help="when the model collapses onto one class or learns nothing: warn, fail, or off "
        "(non-finite losses always stop training)",
    )
    cmd.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed or failed run from RUN.partial (same data and options), from its last finished "
        "epoch; starts afresh when there is none",
    )
    cmd.add_argument(
        "--logger",
        nargs="+",
        default=["csv"],
        metavar="NAME",
        help="training logs: csv (RUN/logs/metrics.csv, always on: the --report of `evaluate` reads it), "
        "tensorboard (RUN/logs/tensorboard), mlflow (RUN/mlruns, or $MLFLOW_TRACKING_URI); several allowed, "
        "e.g. --logger csv tensorboard (give DATA before this flag); tensorboard and mlflow need `pip install "
        '"labelwise[loggers]"`',
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_decide_args(cmd: Any) -> None:
    from labelwise.decide.config import DEFAULT_COVERAGE, DEFAULT_NONE_STRATEGY, NONE_STRATEGIES

    group = cmd.add_argument_group("decisions (tuned on the validation split, saved in the run)")
    group.add_argument(
        "--metric",
        default="f1",
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


def _add_evaluate(sub: Any) -> None:
    cmd = _command(sub, "evaluate", "measure a trained run on labelled data", _evaluate)
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
        sub, "check", "check how a run's network, loss and labels fit together, on a batch of labelled data", _check
    )
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("data", help="labelled CSV/Parquet file or image folder")
    _add_data_args(cmd, training=False)
    cmd.add_argument("--rows", type=int, default=256, help="rows in the checked batch (a seeded sample)")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def _add_predict(sub: Any) -> None:
    cmd = _command(sub, "predict", "write predictions for new data", _predict)
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
        _export,
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
        _serve,
    )
    cmd.add_argument("run", help="run directory written by `labelwise train`")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=int, default=8000, help="port to listen on (0 picks a free one)")
    cmd.add_argument("--max-batch", type=int, default=64, help="most rows or images in one model call")
    cmd.add_argument("--max-wait-ms", type=float, default=5.0, help="longest a request waits to share a model call")
    cmd.add_argument("--max-body", default="4MiB", help="largest request body (e.g. 4MiB, 512KB); larger gets 413")


def _add_demo(sub: Any) -> None:
    from labelwise.datasets import list_demos

    cmd = _command(sub, "demo", "train and evaluate on embedded data made from scikit-learn's datasets", _demo)
    cmd.add_argument("name", nargs="?", default="digits", choices=list_demos(), help="which demo")
    cmd.add_argument("--dir", default="labelwise-demo", help="folder for the demo data and run")
    cmd.add_argument("--seed", type=int, default=0, help="random seed")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")


# -- handlers --------------------------------------------------------------------------------------
def _inspect(args: argparse.Namespace) -> int:
    from labelwise.data.inspection import inspect_data

    report = inspect_data(
        args.data,
        target=_target(args.target),
        image_col=args.image_col,
        task=args.task,
        label_sep=args.label_sep,
        seed=args.seed,
    )
    print(json.dumps(report, indent=2) if args.json else _format_inspect(report))
    return 0


def _train(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.report import format_training
    from labelwise.train import TrainConfig

    out = args.out = args.out or str(Path("runs") / _data_name(args.data))
    config = TrainConfig(
        epochs=args.epochs,
        time_budget=args.time_budget,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        balance=args.balance,
        guards=args.guards,
        loggers=tuple(args.logger),
    )
    clf = labelwise.fit(
        args.data,
        target=_target(args.target),
        image_col=args.image_col,
        task=args.task,
        label_sep=args.label_sep,
        positive=args.positive,
        binary_head=args.binary_head,
        model=args.model,
        pretrained=args.pretrained,
        image_size=args.image_size,
        metric=args.metric,
        top_k=args.top_k,
        allow_none=args.allow_none,
        coverage=args.coverage,
        selective_accuracy=args.selective_accuracy,
        conformal=args.conformal,
        config=config,
        progress=not args.quiet,
        skip_bad_images=args.skip_bad_images,
        out=out,
        resume=args.resume,
    )
    print(format_training(clf, run_dir=out))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.report import format_metrics

    clf = labelwise.load(args.run)
    if args.report is None:
        metrics = clf.evaluate(args.data, target=_target(args.target))
    else:
        from labelwise.html_report import build_report, check_report_path

        check_report_path(args.report)  # before the work, so that a typo in the path costs nothing
        report = build_report(clf, args.data, target=_target(args.target), run_dir=args.run)
        metrics = report.metrics
        print(f"wrote the report to {report.write(args.report)}", file=sys.stderr)
    print(json.dumps(metrics, indent=2) if args.json else format_metrics(metrics))
    return 0


def _check(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.errors import TrainingError

    report = labelwise.load(args.run).check(args.data, target=_target(args.target), rows=args.rows)
    print(json.dumps(report.to_dict(), indent=2) if args.json else str(report))
    if not report.ok:
        raise TrainingError(f"the check found {len(report.errors)} error(s) in how {args.run!r} is wired; see above.")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.data.sources import load_source

    clf = labelwise.load(args.run) if args.backend == "torch" else _load_onnx(args.run)
    if args.top_k is not None and clf.policy.conformal is not None:
        print(f"labelwise: note: --top-k {args.top_k} replaces the run's conformal sets in `set`.", file=sys.stderr)
    clf.policy = clf.policy.with_top_k(args.top_k, clf.task)
    image_col = getattr(clf.inputs, "image_col", None)
    source = load_source(args.data, target=None, image_col=image_col, id_col=args.id_col, for_training=False)
    frame = clf.predictions_frame(source, skip_bad=args.skip_bad_images)
    _write_csv_atomically(frame, Path(args.out))
    skipped = len(source.ids) - len(frame)
    note = f" ({skipped} unreadable images skipped)" if skipped else ""
    print(f"wrote {len(frame)} predictions to {args.out}{note}", file=sys.stderr)
    return 0


def _load_onnx(run: str) -> Any:
    from labelwise.export import load_onnx

    return load_onnx(run)


def _export(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.export import ONNX_FILE, export_onnx

    out = Path(args.out) if args.out else Path(args.run) / ONNX_FILE
    export_onnx(labelwise.load(args.run), out, opset=args.opset)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.serve import parse_size, serve

    max_body = parse_size(args.max_body)
    clf = labelwise.load(args.run)  # checksums verified before the port is bound: a bad run never listens

    def ready(url: str) -> None:
        print(f"labelwise: serving {args.run} at {url} (POST /predict, GET /health, GET /metadata)", file=sys.stderr)
        sys.stderr.flush()

    serve(
        clf,
        host=args.host,
        port=args.port,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body=max_body,
        on_ready=ready,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.datasets import make_demo
    from labelwise.decide.config import NONE_STRATEGIES
    from labelwise.report import format_comparison, format_metrics, format_training
    from labelwise.train import TrainConfig

    root = Path(args.dir)
    demo = make_demo(args.name, root, seed=args.seed)
    print(f"demo {demo.name}: {demo.description}", file=sys.stderr)
    # The open-set demo trains one run per way of answering "none of these", to compare them on the same data.
    strategies = NONE_STRATEGIES if demo.name == "openset" else (None,)
    results = {}
    for strategy in strategies:
        run_dir = root / demo.name / ("run" if strategy is None else f"run-{strategy}")
        clf = labelwise.fit(
            demo.train,
            target=demo.target,
            image_col=demo.image_col,
            allow_none=strategy,
            out=run_dir,
            resume=True,  # running the demo again after it was killed picks up where it stopped
            config=TrainConfig(seed=args.seed),
            progress=not args.quiet,
        )
        print(format_training(clf, run_dir=str(run_dir)))
        results[strategy or "model"] = metrics = clf.evaluate(demo.test, target=demo.target)
        print(f"\ntest ({demo.test}):\n{format_metrics(metrics)}\n")
    if len(results) > 1:
        print(f"side by side on {demo.test}:\n{format_comparison(results)}")
    return 0


# -- small helpers ---------------------------------------------------------------------------------
def _target(values: list[str] | None) -> str | list[str] | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def _data_name(data: str) -> str:
    path = Path(data)
    return (path.stem if path.suffix else path.name) or "run"


def _write_csv_atomically(frame: Any, path: Path) -> None:
    if path.parent and not path.parent.exists():
        raise ArtifactError(f"the folder of --out {str(path)!r} does not exist; create it or pass another path.")
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            frame.to_csv(handle, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _format_inspect(report: dict[str, Any]) -> str:
    from labelwise.report import format_inspect

    return format_inspect(report)


if __name__ == "__main__":
    raise SystemExit(main())
