"""The names of an exported file's inputs and outputs: what the export writes and the runtime feeds.

A leaf of `labelwise.export`, so that the graph builder (`_graph`), the exporter (`_onnx`) and the runtime
(`_runtime`) share them without importing each other.
"""

from __future__ import annotations

__all__ = [
    "FEATURES",
    "IMAGES",
    "KEY_CLASSES",
    "KEY_DECISION",
    "KEY_FORMAT",
    "KEY_INPUTS",
    "KEY_RUN",
    "MISSING",
    "ONNX_FILE",
    "ONNX_FORMAT_VERSION",
    "OUTPUTS",
    "PIXELS",
    "input_name",
]

ONNX_FORMAT_VERSION = 1
ONNX_FILE = "model.onnx"
# The file's metadata keys.
KEY_FORMAT, KEY_RUN, KEY_INPUTS = "labelwise.format_version", "labelwise.json", "labelwise.inputs"
KEY_CLASSES, KEY_DECISION = "labelwise.classes", "labelwise.decision"

PIXELS = "pixels"  # the ONNX input of an image model: uint8 (N, C, H, W)
MISSING = ""  # how a missing categorical value is spelled in the ONNX input, as an empty CSV cell
OUTPUTS = ("probs", "logits")
# Inner names carry a prefix no column name needs, so a feature column called "features" cannot collide with them.
FEATURES = "labelwise/features"  # the traced network's input: (N, num_features) float32
IMAGES = "labelwise/images"  # the traced network's input: (N, C, size, size) float32 pixels in [0, 255]


def input_name(column: str | int) -> str:
    """The ONNX input of a feature column: its name as a string.

    Example:
        >>> input_name(3)
        '3'
    """
    return str(column)
