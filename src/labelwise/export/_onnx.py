"""Write a trained `Classifier` as one ONNX file: preprocessing, network, calibration and probabilities.

The network part is traced by ``torch.onnx.export(dynamo=True)`` (torch 2.14's default; it exports the MLP, the
compact CNN and timm models with a dynamic batch axis) from a module that runs exactly what
`Classifier.predict_source` runs: ``batch_transform`` -> network -> `Calibration.apply` -> `Task.probabilities`.
The preprocessing graph of `labelwise.export._graph` is joined in front with ``onnx.compose.merge_models``. The
run's ``labelwise.json`` content goes into ``metadata_props``, so the file alone is enough to predict.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from labelwise import artifact
from labelwise._files import check_output_path, write_atomically
from labelwise.data._kind_columns import BooleanColumn
from labelwise.data.tables import NumericColumn, TablePreprocessor
from labelwise.errors import ArtifactError, ConfigError
from labelwise.export._names import (
    FEATURES,
    IMAGES,
    KEY_CLASSES,
    KEY_DECISION,
    KEY_FORMAT,
    KEY_INPUTS,
    KEY_RUN,
    MISSING,
    ONNX_FILE,
    ONNX_FORMAT_VERSION,
    OUTPUTS,
    PIXELS,
    input_name,
)
from labelwise.inputs import ImageColumn

if TYPE_CHECKING:
    import onnx

    from labelwise.classifier import Classifier

__all__ = ["ONNX_FILE", "ONNX_FORMAT_VERSION", "export_onnx", "metadata_keys"]

# 1: inputs one per feature column (float64 / string) or uint8 `pixels`; outputs `probs` and calibrated `logits`.


def metadata_keys() -> list[str]:
    """The ``metadata_props`` keys an exported file holds.

    Example:
        >>> metadata_keys()[:2]
        ['labelwise.format_version', 'labelwise.json']
    """
    return [KEY_FORMAT, KEY_RUN, KEY_INPUTS, KEY_CLASSES, KEY_DECISION]


class _Scorer(nn.Module):
    """What `Classifier.predict_source` computes from encoded inputs: ``(probs, calibrated logits)``."""

    def __init__(self, clf: Classifier) -> None:
        super().__init__()
        self.network = clf.network
        # One input group (`export_onnx` refuses more): its eval transform, None for table features.
        self.transform = clf.inputs.groups[0].transform(train=False)
        self.calibration = clf.calibration
        self.task = clf.task

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.transform(x) if self.transform is not None else x
        logits = self.calibration.apply(self.network(batch).float())
        return self.task.probabilities(logits), logits


def export_onnx(clf: Classifier, path: str | os.PathLike[str], *, opset: int | None = None) -> Path:
    """Write ``clf`` as one ONNX file that maps raw inputs to calibrated probabilities; return its path.

    Inputs: a table model takes one input per feature column, named by the column: float64 ``(N,)`` for numeric
    columns (NaN = missing), string ``(N,)`` for categorical ones (``""`` = missing). An image model takes
    ``pixels``, uint8 ``(N, C, H, W)`` in the trained channels, resized inside to the trained size. Outputs:
    ``probs`` ``(N, num_classes)`` in ``task.classes`` order and the calibrated ``logits`` ``(N, head_width)``, which
    the decision policy (stored with the task and classes in the metadata) takes. The write is atomic.

    Args:
        clf: the trained classifier (`labelwise.fit` or `labelwise.load`).
        path: the ``.onnx`` file to write; its folder must exist.
        opset: ONNX opset of the default domain (default: the exporter's, 18 or newer; Resize needs 18).

    Raises:
        ArtifactError: the network cannot be traced (the unsupported op or Python branch is named), or the file
            cannot be written.
        ConfigError: ``opset`` below 18, a categorical column with ``""`` as a category, or a run that reads an image
            column and other columns together.

    Example:
        >>> import labelwise, pandas as pd, tempfile, pathlib
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5, "y": ["a", "a", "b", "b"] * 5})
        >>> config = labelwise.TrainConfig(epochs=1)
        >>> clf = labelwise.fit(frame, target="y", config=config, progress=False)  # doctest: +SKIP
        >>> export_onnx(clf, pathlib.Path(tempfile.mkdtemp()) / "model.onnx").name  # doctest: +SKIP
        'model.onnx'
    """
    try:
        import onnx
    except ImportError as err:
        raise ConfigError(
            "exporting to ONNX needs onnx, onnxruntime and onnxscript, which are not installed. Install them with "
            "`pip install labelwise[onnx]`."
        ) from err
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int) or opset < 18):
        raise ConfigError(f"opset={opset!r}; expected an int >= 18 (image resizing needs Resize-18), or None.")
    from labelwise.export._graph import check_table_columns

    only = _only_input(clf)
    out = check_output_path(path, option="--out", example=repr(str(Path(path) / ONNX_FILE)))
    if isinstance(only, TablePreprocessor):
        check_table_columns(only)  # before the slow trace
    network = _trace(clf, opset=opset)
    model = onnx.compose.merge_models(_preprocess(clf, network), network, io_map=[(network.graph.input[0].name,) * 2])
    model.producer_name, model.doc_string = "labelwise", "labelwise classifier; see metadata_props"
    onnx.helper.set_model_props(model, _metadata(clf))
    onnx.checker.check_model(model)
    write_atomically(out, model.SerializeToString(), option="--out")
    return out


def _only_input(clf: Classifier) -> ImageColumn | TablePreprocessor:
    """The run's one input group: its image column or its table columns. Refuses a run of several groups."""
    keys = [group.key for group in clf.inputs.groups]
    texts = [str(column.name) for column in clf.inputs.row_columns if column.kind == "text" and column.width]
    if texts:
        raise ConfigError(
            f"this run reads free text ({', '.join(map(repr, texts))}), which it splits into word and character "
            "n-grams in Python; ONNX has no operator for that split, so the export would not read raw text. Serve "
            "the run with `labelwise serve` or predict with `labelwise predict` (no ONNX)."
        )
    if len(keys) > 1:
        raise ConfigError(
            f"this run reads several input groups ({', '.join(keys)}: an image column and other columns together); "
            "the ONNX export holds one (a table, or images). Predict with the torch backend (`--backend torch`), "
            "or train on the image column alone (drop the other columns) to export."
        )
    return clf.inputs.image or cast(TablePreprocessor, clf.inputs.table)  # one group: one of the two is set


def _trace(clf: Classifier, *, opset: int | None) -> onnx.ModelProto:
    scorer = _Scorer(clf).eval()
    clf.network.eval()
    device = next(clf.network.parameters(), torch.empty(0)).device
    only = _only_input(clf)
    if isinstance(only, ImageColumn):
        spec, name = only.spec, IMAGES
        example = torch.zeros(2, spec.channels, spec.size, spec.size, device=device)
    else:
        name, example = FEATURES, torch.zeros(2, only.num_features, device=device)
    try:
        with _quiet(), tempfile.TemporaryDirectory() as scratch:
            program = torch.onnx.export(
                scorer,
                (example,),
                dynamo=True,
                input_names=[name],
                output_names=list(OUTPUTS),
                opset_version=opset,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                artifacts_dir=scratch,  # any report the exporter writes stays out of the user's folder
            )
    except torch.onnx.OnnxExporterError as err:
        raise ArtifactError(
            f"cannot export the network of backbone {clf.model_spec.backbone!r} to ONNX: {_reason(err)}. Expected "
            "a network torch.onnx.export can trace (ops with an ONNX equivalent, no Python branch on tensor values); "
            "rewrite that part of the backbone, or predict with the torch backend (`--backend torch`)."
        ) from err
    if program is None:  # only the legacy exporter returns None
        raise ArtifactError("torch.onnx.export returned no ONNX program; this is a bug, please report it.")
    return program.model_proto


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter prints progress, graph dumps and log lines; a CLI error must stay one line."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _reason(err: BaseException) -> str:
    """The op or Python line that stopped the exporter, from its chain of errors."""
    chain = [err]
    while chain[-1].__cause__ is not None and len(chain) < 20:
        chain.append(chain[-1].__cause__)
    text = "\n".join(str(e) for e in chain)
    if op := re.search(r"No ONNX function found for <OpOverload\(op='([^']+)'", text):
        return f"the op `{op.group(1)}` has no ONNX equivalent"
    branch = re.search(r'raised this error:\s*File "([^"]+)", line (\d+), in \w+\s*\n\s*(.+)', text)
    if branch and "data-dependent" in text:
        code = branch.group(3).strip()
        return f"a Python branch on tensor values at {Path(branch.group(1)).name}:{branch.group(2)} (`{code}`)"
    last = str(chain[-1]).strip().splitlines() or [type(chain[-1]).__name__]
    return f"{type(chain[-1]).__name__}: {last[0]}"


def _preprocess(clf: Classifier, network: onnx.ModelProto) -> onnx.ModelProto:
    from labelwise.export._graph import image_graph, table_graph

    opset = next(o.version for o in network.opset_import if o.domain in ("", "ai.onnx"))
    only = _only_input(clf)
    if isinstance(only, ImageColumn):
        return image_graph(only.spec, pixels_name=PIXELS, opset=opset, ir_version=network.ir_version)
    return table_graph(only, opset=opset, ir_version=network.ir_version)


def _metadata(clf: Classifier) -> dict[str, str]:
    from safetensors.torch import save

    tensors = {name: t.detach().cpu().contiguous() for name, t in clf.network.state_dict().items()}
    # The same bytes `save_artifact` writes, so `predict RUN --backend onnx` can tell a stale export from a fresh one.
    digest = hashlib.sha256(save(tensors)).hexdigest()
    run = {"format_version": artifact.FORMAT_VERSION, "weights": {"sha256": digest}, **clf.metadata()}
    only = _only_input(clf)
    if isinstance(only, ImageColumn):
        inputs: dict[str, Any] = {PIXELS: {"dtype": "uint8", "shape": ["N", only.spec.channels, "H", "W"]}}
    else:
        inputs = {
            input_name(spec.name): {"dtype": "float64", "missing": "NaN"}
            if isinstance(spec, NumericColumn | BooleanColumn)
            else {"dtype": "string", "missing": MISSING}
            for spec in only.specs
            if spec.width  # a column the model leaves out is no input
        }
    return {
        KEY_FORMAT: str(ONNX_FORMAT_VERSION),
        KEY_RUN: _dumps(run),
        KEY_INPUTS: _dumps(inputs),
        KEY_CLASSES: _dumps(list(clf.task.classes)),
        KEY_DECISION: _dumps(clf.policy.to_dict()),
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, default=artifact._json_default)  # the artifact's own JSON rules (tensors, paths)
