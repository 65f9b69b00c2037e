"""Export a trained classifier to ONNX, and predict from the exported file with onnxruntime.

`export_onnx` writes one ``.onnx`` file holding the preprocessing, the network, the calibration and the
probabilities, with the Task, classes and decision policy in its metadata; `load_onnx` reads it back as an
`OnnxClassifier` whose ``predictions_frame`` writes what ``labelwise predict`` writes. Needs the ``onnx`` extra
(onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

from labelwise.export._onnx import ONNX_FILE as ONNX_FILE
from labelwise.export._onnx import ONNX_FORMAT_VERSION as ONNX_FORMAT_VERSION
from labelwise.export._onnx import export_onnx as export_onnx
from labelwise.export._runtime import OnnxClassifier as OnnxClassifier
from labelwise.export._runtime import load_onnx as load_onnx

__all__ = ["ONNX_FILE", "ONNX_FORMAT_VERSION", "OnnxClassifier", "export_onnx", "load_onnx"]
