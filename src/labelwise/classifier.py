"""A trained classifier: network + Task + preprocessing + calibration + decision policy, used as one.

`Classifier` composes the functional parts and never re-implements them: the Task turns logits into
probabilities and decisions into labels, the `Calibration` rescales logits, the `Policy` decides (thresholds,
abstention, prediction sets).
`labelwise.fit` (in `labelwise.fitting`) builds one; `load` reads one from a run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from labelwise import artifact
from labelwise._class_file import move_class_list, restore_class_list
from labelwise._predictions import predictions_table as predictions_table
from labelwise.calibrate import Calibration
from labelwise.checking import CheckReport, check
from labelwise.data.sources import Source, load_source, source_from_frame
from labelwise.decide.policy import Decisions, Policy
from labelwise.decide.rule import DecisionRule
from labelwise.errors import ArtifactError, ConfigError, DataError
from labelwise.heads import Fitted, Head, HeadOutputs, Truth, create_head
from labelwise.inputs import Encoded, Inputs, inputs_from_dict
from labelwise.label_issues import LabelIssue, find_label_issues
from labelwise.losses import loss_for
from labelwise.models import ModelSpec, create_network
from labelwise.out_of_fold import load_out_of_fold, save_out_of_fold
from labelwise.ranking import Ranked, output_top_k
from labelwise.record import RunRecord
from labelwise.task import HeadType, Task

__all__ = ["Classifier", "Predictions", "Truth", "load", "predictions_table"]

_INFERENCE_BATCH = 512


@dataclass(frozen=True)
class Predictions:
    """What `Classifier.predict_source` returns for each readable row of the data.

    ``outputs`` is the head's `HeadOutputs` (raw outputs, the policy's `Decisions`, the top classes when ranked);
    ``kept`` marks which source rows were readable (all, unless images were skipped), ``skipped`` names the others.
    """

    outputs: HeadOutputs
    kept: np.ndarray
    skipped: list[tuple[str, str]]

    @property
    def out(self) -> Decisions:
        """The policy's decisions."""
        return self.outputs.out

    @property
    def ranked(self) -> Ranked | None:
        """The top classes, when ranked (`HeadOutputs.ranked`)."""
        return self.outputs.ranked

    @property
    def probs(self) -> torch.Tensor:
        """Calibrated probabilities ``(N, num_classes)``.

        Raises:
            ConfigError: a head that ranks its classes in chunks computes only its top classes (``ranked``).
        """
        if self.out.probs is None:
            raise ConfigError(
                "this run ranks its classes in chunks (trained with --loss chunked or sampled, or one of very many "
                "classes), so it has no probability for every class; read `.ranked` (the top classes) instead."
            )
        return self.out.probs

    @property
    def decisions(self) -> torch.Tensor:
        """Decisions as `Task.decode` takes them (``-1`` = abstained)."""
        return self.out.decisions


@dataclass(frozen=True, eq=False)
class Classifier:
    """A trained classifier. Build with `labelwise.fit`, or `load` from a run directory.

    Example:
        >>> import labelwise, sklearn.datasets
        >>> X, y = sklearn.datasets.load_iris(return_X_y=True, as_frame=True)  # doctest: +SKIP
        >>> clf = labelwise.fit(X.assign(species=y), target="species")  # doctest: +SKIP
        >>> clf.predict(X.head(3))  # doctest: +SKIP
        [0, 0, 0]
    """

    task: Task
    network: nn.Module
    inputs: Inputs
    model_spec: ModelSpec
    fitted: Fitted
    record: RunRecord = field(default_factory=RunRecord)
    out_of_fold: pd.DataFrame | None = field(default=None, repr=False)
    head: Head = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "head", create_head(self.task, self.network))

    @property
    def calibration(self) -> Calibration:
        """How the raw outputs are rescaled before deciding."""
        return self.fitted.calibration

    @property
    def policy(self) -> Policy:
        """The decision policy: thresholds or argmax, abstention, sets."""
        return self.fitted.policy

    @property
    def info(self) -> dict[str, Any]:
        """The run record as a plain dict (a copy: the record itself is frozen); see `RunRecord`."""
        return self.record.to_dict()

    # -- prediction ------------------------------------------------------------------------------
    def predict_source(self, source: Source, *, skip_bad: bool = False, top_k: int | None = None) -> Predictions:
        """Calibrated probabilities and decisions for every readable row of ``source``.

        ``top_k``: also rank each row's ``top_k`` most probable classes (a head that ranks in chunks always does).
        """
        return self._predict(source, self.fitted, skip_bad=skip_bad, top_k=top_k)

    def _predict(self, source: Source, fitted: Fitted, *, skip_bad: bool, top_k: int | None) -> Predictions:
        encoded = self.inputs.encode(source, skip_bad=skip_bad)
        outputs = self.head.predict(self.raw_outputs(encoded), fitted, top_k=top_k)
        return Predictions(outputs, encoded.kept, encoded.skipped)

    def raw_outputs(self, encoded: Encoded) -> torch.Tensor:
        """The head's raw outputs (`Head.raw`) for encoded inputs, in batches, without gradients."""
        self.network.eval()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(encoded.values), _INFERENCE_BATCH):
                batch = self.inputs.batch_transform(encoded.values[start : start + _INFERENCE_BATCH])
                outputs.append(self.head.raw(batch))
        return torch.cat(outputs) if outputs else torch.empty(0, self.head.raw_width)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Calibrated class probabilities ``(N, num_classes)`` in ``task.classes`` order (binary: both columns)."""
        return self.predict_source(self._source(data)).probs.numpy()

    def predict(self, data: Any) -> list[Any]:
        """Labels as the user wrote them; multilabel rows are tuples (empty = none of the labels)."""
        return self.task.decode(self.predict_source(self._source(data)).decisions)

    def predictions_frame(self, source: Source, *, skip_bad: bool = False, top_k: int | None = None) -> pd.DataFrame:
        """The ``predictions.csv`` table, rows in input order.

        Columns: ``id``, ``p:<class>`` per class, ``prediction`` (empty = none / abstained), ``abstained``;
        ``unknown_score`` when the model may abstain (the score its reject rule thresholds); ``set`` (the
        conformal or top-k set, joined like multilabel labels) when the policy gives sets. With ``top_k`` K
        (1 to the number of classes, multiclass), ``top1..topK`` and ``p_top1..p_topK`` follow the ``p:<class>``
        columns and the top-k classes are the ``set``; above `labelwise.ranking.AUTO_TOP_K_ABOVE` classes they
        replace the ``p:<class>`` columns (K = 5 when not given).
        """
        fitted = Fitted(self.calibration, self.policy.with_top_k(top_k, self.task))  # top-k sets replace the run's
        k = output_top_k(top_k, num_classes=self.task.num_classes)
        predicted = self._predict(source, fitted, skip_bad=skip_bad, top_k=k)
        return predictions_table(
            predicted.out, source=source, kept=predicted.kept, task=self.task, ranked=predicted.ranked
        )

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, data: Any, *, target: str | list[str] | None = None) -> dict[str, float]:
        """Metrics on labelled data (the test split); see `labelwise.evaluation` for the keys.

        A model that may abstain (``--allow-none``) takes labels of classes it never saw as "none of these" and
        reports how well it detects them; any other model rejects such labels with a `LabelError`.
        """
        source = self._source(data, target=target, labelled=True)
        return self.evaluate_source(source)

    def evaluate_source(self, source: Source, *, skip_bad: bool = False) -> dict[str, float]:
        """Metrics on a labelled `Source`."""
        self.check_labelled(source)  # before the predictions, which may take a while
        predicted = self.predict_source(source, skip_bad=skip_bad)
        return self.metrics(predicted, self.truth(source, predicted))

    def truth(self, source: Source, predicted: Predictions) -> Truth:
        """The labels of the rows ``predicted`` kept, as this model scores them (see `Truth`).

        Raises:
            DataError: ``source`` has no labels.
            LabelError: a label of a class the model does not know, when the model may not abstain.
        """
        self.check_labelled(source)
        assert source.labels is not None  # noqa: S101 - for mypy: check_labelled raised otherwise
        labels = source.labels[predicted.kept] if not predicted.kept.all() else source.labels
        known = np.ones(len(labels), dtype=bool)
        if self.policy.abstention is not None:
            known = self.task.is_known(labels)
        return Truth(known=known, targets=self.task.encode(labels[known] if not known.all() else labels))

    def metrics(self, predicted: Predictions, truth: Truth) -> dict[str, float]:
        """The metrics of `evaluate` for predictions already made, against their `truth`."""
        return self.head.metrics(predicted.outputs, truth, self.fitted, train_counts=self.train_counts)

    def check_labelled(self, source: Source) -> None:
        """Raise `DataError`, saying which labels to pass, when ``source`` has none."""
        if source.labels is not None:
            return
        trained = self.record.target
        fix = (
            f"Pass `--target` (the model was trained with target {trained!r})."
            if trained
            else "The model was trained on a folder whose labels are its subfolder names: pass a folder tree "
            "ROOT/<class>/* like the training data."
        )
        raise DataError(f"the data has no labels, so there is nothing to evaluate against. {fix}")

    def check(self, data: Any, *, target: str | list[str] | None = None, rows: int = 256, seed: int = 0) -> CheckReport:
        """`labelwise.check` this run's network and Task loss on a seeded sample of ``rows`` labelled rows.

        The loss gets the class weights training would give these labels (``balance`` as the run was trained).
        """
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ConfigError(f"rows={rows!r}; expected a number of rows >= 1 for the checked batch, e.g. 256.")
        source = self._source(data, target=target, labelled=True)
        if source.labels is None:
            raise DataError("the data has no labels, so there is nothing to check the loss against. Pass `--target`.")
        encoded = self.inputs.encode(source)
        labels = source.labels[encoded.kept] if not encoded.kept.all() else source.labels
        targets = self.task.encode(labels)
        sample = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))[:rows]
        from labelwise.pipeline.training import decide_balance  # training's rule, imported only when checking
        from labelwise.train import TrainConfig

        config = TrainConfig(balance=self.record.training.get("config", {}).get("balance", "auto"))
        weights = decide_balance(targets, self.task, config)
        loss = loss_for(self.task, pos_weight=weights.pos_weight, class_weight=weights.class_weight)
        batch = self.inputs.batch_transform(encoded.values[sample])
        return check(self.network, loss, (batch, targets[sample]), task=self.task)

    def label_issues(self) -> list[LabelIssue]:
        """The training rows whose given label the out-of-fold probabilities most contradict, most likely first.

        See `labelwise.label_issues.find_label_issues` for how they are found and what ``score`` means.

        Raises:
            ConfigError: the run has no out-of-fold predictions (it was not cross-fitted, or ranks its classes in
                chunks).
        """
        if self.out_of_fold is None:
            raise ConfigError(_no_out_of_fold(self.task))
        return find_label_issues(self.out_of_fold, self.task)

    def _source(self, data: Any, *, target: str | list[str] | None = None, labelled: bool = False) -> Source:
        if isinstance(data, Source):
            return data
        if target is None and labelled:
            target = self.record.target
        image_col = getattr(self.inputs, "image_col", None)
        if isinstance(data, (str, os.PathLike)):
            return load_source(Path(data), target=target if labelled else None, image_col=image_col, for_training=False)
        if isinstance(data, np.ndarray) and data.ndim == 2:
            columns = list(self.record.feature_columns) or [str(i) for i in range(data.shape[1])]
            data = pd.DataFrame(data, columns=columns[: data.shape[1]])
        if isinstance(data, pd.DataFrame):
            return source_from_frame(data, target=target if labelled else None, image_col=image_col)
        raise DataError(
            f"cannot predict from {type(data).__name__}; expected a DataFrame, a 2-D array of features, "
            "or a path to a CSV/Parquet file or an image folder."
        )

    @property
    def train_counts(self) -> np.ndarray | None:
        """``(C,)`` int64 training rows per class (multilabel: positives); None for runs saved without them."""
        counts = self.record.train_counts
        return None if counts is None else np.asarray(counts, dtype=np.int64)

    # -- storage ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the run directory atomically (``model.safetensors`` + ``labelwise.json``); return its path."""
        with artifact.staging_dir(path) as stage:
            self.save_into(stage)
        return Path(path)

    def save_into(self, stage: Path) -> None:
        """Write the artifact files into an already staged folder (used by training, which stages the run)."""
        metadata = move_class_list(stage, self.metadata())  # a large class list goes beside labelwise.json
        artifact.save_artifact(stage, state_dict=self.network.state_dict(), metadata=metadata)
        if self.out_of_fold is not None:
            save_out_of_fold(stage, self.out_of_fold)

    def metadata(self) -> dict[str, Any]:
        """Everything but the weights, as written to ``labelwise.json``."""
        return {
            "task": self.task.to_dict(),
            "preprocessing": self.inputs.to_dict(),
            "model": self.model_spec.to_dict(),
            "calibration": self.calibration.to_dict(),
            "decision": self.policy.to_dict(),
            **self.record.to_dict(),
        }


def load(path: str | os.PathLike[str]) -> Classifier:
    """Load a run directory written by `Classifier.save` or ``labelwise train``; never unpickles.

    Raises:
        ArtifactError: the folder is missing, incomplete, damaged, of an unknown format version, or its weights
            do not match the checksum in its labelwise.json.
    """
    meta = restore_class_list(Path(path), artifact.load_metadata(path))
    task = Task.from_dict(meta["task"])
    spec = ModelSpec.from_dict(meta["model"])
    network = create_network(spec, task, pretrained=False)  # the run's own weights replace any pretrained ones
    state = artifact.load_weights(path, meta)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ArtifactError(
            f"the weights in {str(path)!r} do not fit the architecture in its labelwise.json ({err}). Retrain the run."
        ) from err
    known = {"format_version", "weights", "classes", "task", "preprocessing", "model", "calibration", "decision"}
    return Classifier(
        task=task,
        network=network.eval(),
        inputs=inputs_from_dict(meta["preprocessing"]),
        model_spec=spec,
        fitted=Fitted(Calibration.from_dict(meta["calibration"]), _policy_from_dict(meta["decision"])),
        record=RunRecord.from_dict({k: v for k, v in meta.items() if k not in known}),
        out_of_fold=load_out_of_fold(Path(path)),
    )


def _no_out_of_fold(task: Task) -> str:
    if task.head is HeadType.RANKED:
        return (
            "this run ranks its classes in chunks (a huge label space), so it kept no out-of-fold probability for "
            "every class to find label errors with; cleanlab's confident learning needs all of them."
        )
    return (
        "this run was not cross-fitted, so it has no out-of-fold predictions to find label errors with (a model "
        "that trained on a row agrees with its label, right or wrong); train with --folds 5 "
        "(`labelwise.fit(..., folds=5)`), or run `labelwise inspect DATA --label-issues`."
    )


def _policy_from_dict(data: dict[str, Any]) -> Policy:
    # Artifacts written before the policy held abstention and sets stored the bare DecisionRule.
    if "rule" not in data:
        return Policy(rule=DecisionRule.from_dict(data))
    return Policy.from_dict(data)
