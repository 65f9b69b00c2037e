"""Preprocessing as ONNX graphs built from the fitted specs, so the exported file takes raw values, not features.

Strings cannot pass through torch, so table preprocessing cannot be traced: it is written here node by node from
the `TablePreprocessor`'s fitted statistics, one graph input per feature column. Numeric columns are float64 (NaN =
missing) and are standardized in float64 before the cast to float32, exactly as `NumericColumn.write` does in
numpy, so the features match bit for bit. Categorical columns are strings (``""`` = missing) mapped by an
``ai.onnx.ml`` LabelEncoder. Images come in as uint8 ``(N, C, H, W)`` of any size and are resized to the spec size
(a no-op at that size); normalization stays in the traced torch part (`image_transforms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from labelwise.data._kind_columns import BooleanColumn, DatetimeColumn
from labelwise.data.images import ImageSpec
from labelwise.data.tables import CategoricalColumn, NumericColumn, TablePreprocessor
from labelwise.errors import ConfigError
from labelwise.export._names import FEATURES, IMAGES, MISSING, OUTPUTS, input_name

__all__ = ["ML_OPSET", "check_table_columns", "image_graph", "table_graph"]

ML_OPSET = 3  # ai.onnx.ml version of LabelEncoder with string keys and int64 values
_FLOAT = TensorProto.FLOAT


@dataclass
class _Builder:
    """Collects nodes and constants; every name it makes starts with ``preprocess/`` so merging never collides."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: list[onnx.TensorProto] = field(default_factory=list)

    def const(self, name: str, value: np.ndarray) -> str:
        full = f"preprocess/{name}"
        self.constants.append(numpy_helper.from_array(value, full))
        return full

    def node(self, op: str, inputs: list[str], name: str, *, domain: str = "", **attrs: Any) -> str:
        full = f"preprocess/{name}"
        self.nodes.append(helper.make_node(op, inputs, [full], name=full, domain=domain, **attrs))
        return full


def table_graph(preprocessor: TablePreprocessor, *, opset: int, ir_version: int) -> onnx.ModelProto:
    """One input per column (float64 numeric, string categorical), output `FEATURES` ``(N, num_features)`` float32.

    Raises:
        ConfigError: a categorical column has the empty string as a category (it spells "missing" here), or a
            column is named like an output (``probs``, ``logits``).
    """
    check_table_columns(preprocessor)
    build = _Builder()
    inputs, pieces = [], []
    for i, spec in enumerate(preprocessor.specs):
        name = input_name(spec.name)
        if isinstance(spec, NumericColumn):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N"]))
            pieces += _numeric(build, spec, name, i)
        elif isinstance(spec, BooleanColumn):  # fed as 0.0/1.0/NaN: `_table_feeds` reads every spelling
            inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N"]))
            as_numeric = NumericColumn(name=spec.name, mean=0.0, std=1.0, fill=spec.fill, indicator=spec.indicator)
            pieces += _numeric(build, as_numeric, name, i)
        elif isinstance(spec, CategoricalColumn):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["N"]))
            pieces += _categorical(build, spec, name, i)
    build.nodes.append(helper.make_node("Concat", pieces, [FEATURES], name="preprocess/concat", axis=1))
    output = helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["N", preprocessor.num_features])
    graph = helper.make_graph(build.nodes, "preprocess", inputs, [output], initializer=build.constants)
    return _model(graph, opset=opset, ir_version=ir_version)


def check_table_columns(preprocessor: TablePreprocessor) -> None:
    """Raise `ConfigError` for columns the ONNX inputs cannot spell; cheap, so `export_onnx` calls it first."""
    clash = [name for name in preprocessor.columns if input_name(name) in OUTPUTS]
    if clash:
        raise ConfigError(
            f"feature column(s) {', '.join(map(repr, clash))} would share a name with the ONNX outputs "
            f"{' and '.join(OUTPUTS)}; expected other column names. Rename those columns and retrain before exporting."
        )
    dates = [spec.name for spec in preprocessor.specs if isinstance(spec, DatetimeColumn)]
    if dates:
        raise ConfigError(
            f"date/time column(s) {', '.join(map(repr, dates))} become calendar features (month, weekday) that the "
            "ONNX graph does not compute. Serve this run with `labelwise serve` or `predict` (no ONNX), or retrain "
            "with --column-kinds NAME=ignored (or NAME=numeric for a number of days) before exporting."
        )
    for spec in preprocessor.specs:
        if isinstance(spec, CategoricalColumn) and MISSING in spec.categories:
            raise ConfigError(
                f"categorical column {spec.name!r} has the empty string as a category, but the ONNX input spells a "
                "missing value as ''. Expected no empty-string category; replace '' in that column (e.g. by 'none') "
                "and retrain before exporting."
            )


def _numeric(build: _Builder, spec: NumericColumn, name: str, i: int) -> list[str]:
    axes = build.const(f"{i}/axes", np.array([1], dtype=np.int64))
    column = build.node("Unsqueeze", [name, axes], f"{i}/column")
    missing = build.node("IsNaN", [column], f"{i}/missing")
    filled = build.node("Where", [missing, build.const(f"{i}/fill", np.array(spec.fill)), column], f"{i}/filled")
    if spec.quantiles is not None and spec.scores is not None:
        knots, scores = np.asarray(spec.quantiles), np.asarray(spec.scores)
        ramps = _ramps(build, filled, knots, f"{i}/quantile")
        steps = build.const(f"{i}/steps", np.diff(scores).reshape(-1, 1))
        scaled = build.node("Add", [build.node("MatMul", [ramps, steps], f"{i}/rise"),
                                    build.const(f"{i}/start", np.array(scores[:1]))], f"{i}/scaled")  # fmt: skip
    else:
        centred = build.node("Sub", [filled, build.const(f"{i}/mean", np.array(spec.mean))], f"{i}/centred")
        scaled = build.node("Div", [centred, build.const(f"{i}/std", np.array(spec.std))], f"{i}/scaled")
    pieces = [build.node("Cast", [scaled], f"{i}/value", to=TensorProto.FLOAT)]
    if spec.edges is not None:
        bins = _ramps(build, filled, np.asarray(spec.edges), f"{i}/bins")
        pieces.append(build.node("Cast", [bins], f"{i}/encoded", to=TensorProto.FLOAT))
    if spec.indicator:
        pieces.append(build.node("Cast", [missing], f"{i}/indicator", to=TensorProto.FLOAT))
    return pieces


def _ramps(build: _Builder, column: str, knots: np.ndarray, name: str) -> str:
    """``(N, K-1)``: how far each value of ``column`` ``(N, 1)`` has come through each interval between the rising
    ``knots``, clipped to [0, 1]: `labelwise.data._columns.piecewise_linear`, and with the knots' score steps the
    linear interpolation ``np.interp`` computes (constant beyond the end knots)."""
    if len(knots) < 2:  # one knot (a constant column): no interval, the start score alone
        return build.node("Mul", [column, build.const(f"{name}/none", np.zeros((1, 0)))], f"{name}/empty")
    shifted = build.node("Sub", [column, build.const(f"{name}/left", knots[:-1])], f"{name}/shifted")
    scaled = build.node("Div", [shifted, build.const(f"{name}/width", np.diff(knots))], f"{name}/scaled")
    low, high = build.const(f"{name}/low", np.array(0.0)), build.const(f"{name}/high", np.array(1.0))
    return build.node("Clip", [scaled, low, high], f"{name}/ramps")


def _categorical(build: _Builder, spec: CategoricalColumn, name: str, i: int) -> list[str]:
    unseen = len(spec.categories)
    fill = spec.categories.index(spec.fill) if spec.fill in spec.categories else unseen
    # Missing takes the fill category; anything not seen at fit time goes to the <unseen> bucket, as in `write`.
    position = build.node(
        "LabelEncoder",
        [name],
        f"{i}/position",
        domain="ai.onnx.ml",
        keys_strings=[*spec.categories, MISSING],
        values_int64s=[*range(unseen), fill],
        default_int64=unseen,
    )
    axes = build.const(f"{i}/axes", np.array([1], dtype=np.int64))
    column = build.node("Unsqueeze", [position, axes], f"{i}/column")
    buckets = build.const(f"{i}/buckets", np.arange(unseen + 1, dtype=np.int64))
    pieces = [build.node("Cast", [build.node("Equal", [column, buckets], f"{i}/equal")], f"{i}/onehot", to=_FLOAT)]
    if spec.counts:
        pieces.append(_frequency(build, spec, name, i))
    if spec.indicator:
        flag = build.node(
            "LabelEncoder", [name], f"{i}/flag", domain="ai.onnx.ml", keys_strings=[MISSING], values_int64s=[1],
            default_int64=0,
        )  # fmt: skip
        pieces.append(build.node("Cast", [build.node("Unsqueeze", [flag, axes], f"{i}/flag2")], f"{i}/ind", to=_FLOAT))
    return pieces


def _frequency(build: _Builder, spec: CategoricalColumn, name: str, i: int) -> str:
    """The ``:frequency`` feature: each value's log training count over the log total, 0 for unseen values."""
    total = np.log1p(sum(spec.counts.values()))
    keys = list(spec.counts)
    frequency = build.node(
        "LabelEncoder", [name], f"{i}/frequency", domain="ai.onnx.ml", keys_strings=[*keys, MISSING],
        values_floats=[float(np.log1p(spec.counts[k]) / total) for k in [*keys, spec.fill]], default_float=0.0,
    )  # fmt: skip
    axes = build.const(f"{i}/frequency_axes", np.array([1], dtype=np.int64))
    return build.node("Unsqueeze", [frequency, axes], f"{i}/frequency2")


def image_graph(spec: ImageSpec, *, pixels_name: str, opset: int, ir_version: int) -> onnx.ModelProto:
    """uint8 ``(N, C, H, W)`` -> `IMAGES` float32 ``(N, C, size, size)`` in [0, 255], rounded as decoded pixels are.

    Resize is bilinear with antialiasing, close to the PIL resize `load_images` uses; at the spec size it is exact.
    """
    build = _Builder()
    pixels = build.node("Cast", [pixels_name], "float", to=TensorProto.FLOAT)
    sizes = build.const("sizes", np.array([spec.size, spec.size], dtype=np.int64))
    resized = build.node(
        "Resize", [pixels, "", "", sizes], "resized", axes=[2, 3], mode="linear", antialias=1,
        coordinate_transformation_mode="half_pixel",
    )  # fmt: skip
    rounded = build.node("Round", [resized], "rounded")
    low, high = build.const("low", np.array(0.0, dtype=np.float32)), build.const("high", np.array(255.0, np.float32))
    build.nodes.append(helper.make_node("Clip", [rounded, low, high], [IMAGES], name="preprocess/clip"))
    source = helper.make_tensor_value_info(pixels_name, TensorProto.UINT8, ["N", spec.channels, "H", "W"])
    output = helper.make_tensor_value_info(IMAGES, TensorProto.FLOAT, ["N", spec.channels, spec.size, spec.size])
    graph = helper.make_graph(build.nodes, "preprocess", [source], [output], initializer=build.constants)
    return _model(graph, opset=opset, ir_version=ir_version)


def _model(graph: onnx.GraphProto, *, opset: int, ir_version: int) -> onnx.ModelProto:
    # merge_models needs both halves on the same IR version and default-domain opset as the traced network.
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="labelwise", ir_version=ir_version)
