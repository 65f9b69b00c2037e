"""One handler per subcommand: call the public API with the parsed options, print the result. Nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["check", "demo", "evaluate", "export", "inspect", "predict", "serve", "train"]


def inspect(args: argparse.Namespace) -> int:
    from labelwise.data.inspection import inspect_data

    # Label issues first: their refusals (a streamed source, too few rows) come before reading everything twice.
    issues = _label_issues(args)
    report = inspect_data(args.data, **_reading(args))
    if issues is not None:
        report["label_issues"] = issues
    print(json.dumps(report, indent=2) if args.json else _format_inspect(report))
    return 0


def _label_issues(args: argparse.Namespace) -> list[Any] | None:
    from labelwise.errors import ConfigError

    if not args.label_issues:
        if args.folds is not None:
            raise ConfigError(
                f"--folds {args.folds} without --label-issues: inspect trains nothing unless asked to find label "
                "errors. Add --label-issues, or drop --folds."
            )
        return None
    from labelwise.cross_fit_issues import cross_fit_label_issues

    return list(cross_fit_label_issues(args.data, folds=5 if args.folds is None else args.folds, **_reading(args)))


def _reading(args: argparse.Namespace) -> dict[str, Any]:
    """How `inspect` reads the data, the same for its report and for cross-fitting the label issues."""
    return {
        "target": _target(args.target),
        "image_col": args.image_col,
        "column_kinds": args.column_kinds,
        "text_cols": args.text_cols,
        "task": args.task,
        "label_sep": args.label_sep,
        "positive": args.positive,
        "seed": args.seed,
    }


def train(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.options import option_fields
    from labelwise.report import format_training
    from labelwise.train.distributed import is_global_zero

    out = args.out = args.out or str(Path("runs") / _data_name(args.data))
    # Every flag of `labelwise train` but these few is an option of labelwise.fit under the same name.
    options = {name: getattr(args, name) for name in option_fields() if hasattr(args, name)}
    options["target"], options["loggers"] = _target(args.target), tuple(args.loggers)
    clf = labelwise.fit(args.data, out=out, resume=args.resume, progress=not args.quiet, **options)
    if not is_global_zero():
        return 0  # a DDP rank > 0: rank 0 wrote the run and prints its summary
    print(format_training(clf, run_dir=out))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.report import format_metrics

    clf = labelwise.load(args.run)
    if args.report is None:
        metrics = clf.evaluate(args.data, target=_target(args.target))
    else:
        from labelwise._files import check_output_path
        from labelwise.html_report import build_report

        check_output_path(args.report, option="--report", example="report.html")  # before the work
        report = build_report(clf, args.data, target=_target(args.target), run_dir=args.run)
        metrics = report.metrics
        print(f"wrote the report to {report.write(args.report)}", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    if clf.task.positive is not None:  # say which class the one-class metrics are about (it may be the majority)
        print(f"positive class {clf.task.positive!r}: f1, precision, recall, roc_auc and pr_auc are about it")
    print(format_metrics(metrics))
    return 0


def check(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.errors import TrainingError

    report = labelwise.load(args.run).check(args.data, target=_target(args.target), rows=args.rows)
    print(json.dumps(report.to_dict(), indent=2) if args.json else str(report))
    if not report.ok:
        raise TrainingError(f"the check found {len(report.errors)} error(s) in how {args.run!r} is wired; see above.")
    return 0


def predict(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise._files import check_output_path, write_atomically
    from labelwise.data.sources import load_source

    check_output_path(args.out, option="--out", example="predictions.csv")  # before the work
    clf = labelwise.load(args.run) if args.backend == "torch" else _load_onnx(args.run)
    if args.top_k is not None and clf.policy.conformal is not None:
        print(f"labelwise: note: --top-k {args.top_k} replaces the run's conformal sets in `set`.", file=sys.stderr)
    _check_ranked_columns(args.top_k, clf.task)
    image_col = getattr(clf.inputs, "image_col", None)
    source = load_source(args.data, target=None, image_col=image_col, id_col=args.id_col, for_training=False)
    frame = clf.predictions_frame(source, skip_bad=args.skip_bad_images, top_k=args.top_k)
    write_atomically(args.out, frame.to_csv(index=False), option="--out")
    _note_unseen(clf.inputs.table, source)
    _note_empty_texts(clf.inputs.row_columns, source)
    skipped = len(source.ids) - len(frame)
    note = f" ({skipped} unreadable images skipped)" if skipped else ""
    where = "standard output" if args.out == "-" else args.out
    print(f"wrote {len(frame)} predictions to {where}{note}", file=sys.stderr)
    return 0


def _note_unseen(table: Any, source: Any) -> None:
    """Say which categorical cells hold values training never saw: they are predicted, as an unseen value."""
    found = table.unseen(source.frame) if table is not None and source.kind == "table" else []
    if found:
        print(
            f"labelwise: note: categorical cells hold values not seen in training, read as one unseen value: "
            f"{'; '.join(found)}.",
            file=sys.stderr,
        )


def _note_empty_texts(columns: Any, source: Any) -> None:
    """Say which text cells are empty: their rows are predicted from the other columns and the intercept alone."""
    import numpy as np

    from labelwise.data._columns import bad_cells
    from labelwise.data._text_column import empty_texts

    if source.kind != "table":
        return
    frame = source.frame
    found = [
        bad_cells(frame[column.name], rows, name=column.name)
        for column in columns
        if column.kind == "text" and column.width and column.name in frame.columns
        for rows in [np.flatnonzero(empty_texts(frame[column.name]))]
        if rows.size
    ]
    if found:
        print(f"labelwise: note: empty text cells, predicted without their text: {'; '.join(found)}.", file=sys.stderr)


def _check_ranked_columns(top_k: int | None, task: Any) -> None:
    """Refuse a --top-k the task cannot give before reading the data (the check `predictions_frame` makes, so
    there is one rule and one message); say so when top-k columns are automatic."""
    from labelwise.decide.config import check_top_k_for
    from labelwise.ranking import AUTO_TOP_K_ABOVE, auto_top_k

    num_classes = task.num_classes
    if top_k is not None:
        check_top_k_for(top_k, task)
    elif (k := auto_top_k(num_classes)) is not None:
        print(
            f"labelwise: note: {num_classes} classes (> {AUTO_TOP_K_ABOVE}): predictions.csv gets top1..top{k} and "
            f"p_top1..p_top{k} instead of one p:<class> column per class; pass --top-k K for another K.",
            file=sys.stderr,
        )


def _load_onnx(run: str, *, threads: int | None = None) -> Any:
    from labelwise.export import load_onnx

    return load_onnx(run, threads=threads)


def export(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.export import ONNX_FILE, export_onnx

    out = Path(args.out) if args.out else Path(args.run) / ONNX_FILE
    export_onnx(labelwise.load(args.run), out, opset=args.opset)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def serve(args: argparse.Namespace) -> int:
    import labelwise
    from labelwise.serve import parse_size, serve

    max_body = parse_size(args.max_body)
    threads = _threads(args.threads)
    # Checksums verified before the port is bound: a bad run never listens.
    if args.backend == "onnx":
        clf = _load_onnx(args.run, threads=threads)
    else:
        import torch

        clf = labelwise.load(args.run)
        torch.set_num_threads(threads)

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


def _threads(threads: int) -> int:
    from labelwise.errors import ConfigError

    if threads < 1:
        raise ConfigError(f"--threads {threads}; expected a number of threads >= 1 (1 suits a small machine).")
    return threads


def demo(args: argparse.Namespace) -> int:
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
            config=TrainConfig(seed=args.seed, epochs=demo.epochs),
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


def _format_inspect(report: dict[str, Any]) -> str:
    from labelwise.report import format_inspect

    return format_inspect(report)
