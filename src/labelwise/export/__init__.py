"""Export a trained classifier to ONNX, and predict from the exported file with onnxruntime.

`export_onnx` writes one ``.onnx`` file holding the preprocessing, the network, the calibration and the
probabilities, with the Task, classes and decision policy in its metadata; `load_onnx` reads it back as a
classifier whose ``predictions_frame`` writes what ``labelwise predict`` writes (for a table run, without
importing torch). Needs the ``onnx`` extra (onnx, onnxruntime, onnxscript).

Names load on first use (PEP 562): `load_onnx` for a table must not import the exporter, which imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelwise._lazy import lazy_exports

if TYPE_CHECKING:
    from labelwise.export._load import load_onnx as load_onnx
    from labelwise.export._names import ONNX_FILE as ONNX_FILE
    from labelwise.export._names import ONNX_FORMAT_VERSION as ONNX_FORMAT_VERSION
    from labelwise.export._onnx import export_onnx as export_onnx
    from labelwise.export._runtime import OnnxClassifier as OnnxClassifier

_EXPORTS = {
    "ONNX_FILE": "labelwise.export._names",
    "ONNX_FORMAT_VERSION": "labelwise.export._names",
    "OnnxClassifier": "labelwise.export._runtime",
    "export_onnx": "labelwise.export._onnx",
    "load_onnx": "labelwise.export._load",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
