"""`labelwise.fit`: labels in, calibrated classifier out.

The stages run in one direction (`labelwise.pipeline`): prepare the data -> train -> finish (calibrate, decide,
measure). This module maps the keywords onto the option dataclasses (`labelwise.options`) and owns the run
directory: training happens in ``RUN.partial``, which becomes ``RUN`` only once the run is complete.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from labelwise import artifact
from labelwise.classifier import Classifier
from labelwise.decide.config import DecideConfig
from labelwise.errors import ConfigError
from labelwise.options import FitOptions
from labelwise.pipeline.finish import finish
from labelwise.pipeline.prepare import Prepared, prepare
from labelwise.pipeline.training import train
from labelwise.train import TrainConfig
from labelwise.train.checkpoints import drop_resume_state, last_checkpoint
from labelwise.train.distributed import check_scale_out, is_global_zero

__all__ = ["fit"]


def fit(
    data: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    options: FitOptions | None = None,
    config: TrainConfig | None = None,
    decide: DecideConfig | None = None,
    **keywords: Any,
) -> Classifier:
    """Train a classifier on labelled data and tune its decisions on the validation split.

    Every option is a field of one of the option dataclasses and is passed by its name: `DataConfig` (``target``,
    ``image_col``, ``task``, ``label_sep``, ``positive``, ``binary_head``, ``stream``, ``skip_bad_images``),
    `ModelConfig` (``model``, ``pretrained``, ``image_size``), `TrainConfig` (``epochs``, ``lr``, ``batch_size``,
    ``time_budget``, ``seed``, ``balance``, ``loss``, ``devices``, ...) and `DecideConfig` (``metric``, ``top_k``,
    ``allow_none``, ``coverage``, ``selective_accuracy``, ``conformal``, ``conformal_method``); see each for what
    the option does. The ``labelwise train`` flags and `LabelwiseClassifier`'s parameters are the same names.

    Args:
        data: a CSV/Parquet path, an image folder tree, or a DataFrame.
        out: run directory to save to; None keeps the model in memory only. Training happens in ``out.partial``
            beside it, which becomes ``out`` when the run is complete: ``out`` never holds half a run.
        resume: continue the run a killed or failed ``fit`` left in ``out.partial`` (same data and options;
            anything else is refused), from the end of its last finished epoch; without one, start afresh.
            Without ``resume``, an interrupted run in ``out.partial`` is an error rather than thrown away.
            Ctrl+C during training stops after the current step: with ``out`` it raises KeyboardInterrupt and keeps
            ``out.partial`` for ``resume``; without, it returns the best epoch so far.
        progress: show a progress bar while training.
        options: all options at once (`labelwise.options.FitOptions`); keywords override its fields.
        config: the training options as one `TrainConfig`; keywords override its fields.
        decide: the decision options as one `DecideConfig`; keywords override its fields.
        **keywords: options by name, e.g. ``target="diagnosis", epochs=20, metric="mcc"``.

    Returns:
        the trained `Classifier`; ``clf.record`` (``clf.info`` as a dict) holds the validation metrics and the
        training record.

    Raises:
        ConfigError: an unknown option (with the closest name) or a value out of range, before any work.
    """
    base = options or FitOptions()
    base = replace(base, train=config or base.train, decide=decide or base.decide)
    resolved = FitOptions.from_keywords(base, **keywords)
    check_scale_out(resolved.train)  # devices, strategy, precision, nodes: refused before any work
    if resume and out is None:
        raise ConfigError("resume=True needs out=: the run directory whose interrupted training to continue.")
    if out is not None:  # refuse a file, or an interrupted run without resume, before reading the data
        artifact.check_training_dir(out, resume=resume, is_resumable=_is_resumable)
    prepared = prepare(data, resolved, resume=resume)
    if out is None:
        with tempfile.TemporaryDirectory(prefix="labelwise-") as scratch:
            return _fit_in(Path(scratch), prepared, resolved, resume=False, progress=progress)
    return _fit_into_run(Path(out), prepared, resolved, resume=resume, progress=progress)


def _fit_into_run(out: Path, prepared: Prepared, options: FitOptions, *, resume: bool, progress: bool) -> Classifier:
    """Train in ``out.partial`` and swap the finished run into ``out``; a rank > 0 trains and writes nothing."""
    if not is_global_zero():
        # A rank > 0 (Lightning re-ran the command, or torchrun / srun started it) trains alongside rank 0 and
        # writes nothing: rank 0 saves the run. It reads RUN.partial only to resume from the same checkpoint.
        return _fit_in(artifact.partial_dir(out), prepared, options, resume=resume, progress=progress)
    with artifact.training_dir(out, resume=resume, is_resumable=_is_resumable) as work:
        clf = _fit_in(work, prepared, options, resume=resume, progress=progress)
        if clf.record.training["stopped"] == "interrupted":
            # Ctrl+C: keep the checkpoints in out.partial for `resume`, rather than saving half a training as a run.
            raise KeyboardInterrupt
        clf.save_into(work)
    drop_resume_state(out)
    return replace(clf, record=clf.record.saved_to(str(out)))


def _is_resumable(work: Path) -> bool:
    return last_checkpoint(work) is not None


def _fit_in(run_dir: Path, prepared: Prepared, options: FitOptions, *, resume: bool, progress: bool) -> Classifier:
    trained = train(prepared, options, run_dir=run_dir, resume=resume, progress=progress)
    return finish(trained, prepared, options)
